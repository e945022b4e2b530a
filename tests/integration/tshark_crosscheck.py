#!/usr/bin/env python3
"""tests/integration/tshark_crosscheck.py: `bmsgate decode --json` against tshark, PDU by PDU.

For every capture in ../shared/pcaps-public (beside the repository root; skipped when absent) and
every capture the project made itself (pcaps/, including pcaps/synthetic/), both decoders run over
the same file and their PDUs are paired by frame number (a PDU belongs to the frame that completed
it, as in tshark's reassembly) and by order within the frame. Compared fields:
  Modbus: dir, tid, unit, fc, exception, addr, qty, malformed
  BACnet: bvlc, net_msg, pdu_type, service, invoke_id, object (type, instance), property, priority,
          malformed
Objects and properties: our first target must be one of the objects / properties tshark decoded in
that PDU (tshark lists every object of a message, in its own order), and each side has one iff the
other has. Priority: tshark 4.0 shows it only as a text label ("Priority: (Unsigned) N"), which the
JSON output carries as a key; it is read for WriteProperty, WritePropertyMultiple and WriteGroup only
(elsewhere the label is an event or message priority). Malformed: tshark's verdict is `_ws.malformed` or an expert error in
the Modbus/BACnet layers.
Records of ours marked malformed in frames where tshark decodes nothing of the protocol (scanner
traffic to port 502, non-BACnet datagrams) are counted, not failed: tshark prints no PDU for bytes
it does not recognise, and we report them as malformed by design.

Every difference must be listed in tests/tshark-differences.txt (tab-separated: capture, frame.pdu,
field, ours, tshark's, reason); an unlisted difference fails the capture's test. A protocol whose
decoder is still the placeholder (every PDU of it malformed in every capture) is skipped with a
message. Prints TAP, one test per capture. Python 3 standard library only.
  tshark_crosscheck.py [--dump] [CAPTURE...]   --dump prints unlisted differences in the file format
"""
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PCAPS = os.path.normpath(os.path.join(ROOT, "..", "shared", "pcaps-public"))
BMSGATE = os.path.join(ROOT, "build", "bmsgate")
DIFFS = os.path.join(ROOT, "tests", "tshark-differences.txt")
MODBUS_PORTS = [502, 15020]  # 15020: the project's own loopback captures (pcaps/README.md)
BACNET_PORTS = [47808, 47809]
ERROR_SEVERITY = "8388608"  # PI_ERROR in tshark's JSON
PRIORITY_RE = re.compile(r"^Priority: \(Unsigned\) (\d+)$")


def num(s):
    return int(s, 0) if s.lower().startswith("0x") else int(s)


def short_list(items):
    items = list(items)
    if len(items) > 8:
        return ",".join(items[:8]) + ",...(+%d)" % (len(items) - 8)
    return ",".join(items) or "-"


def pairs_hook(pairs):
    return pairs  # keep duplicate keys and their order: several PDUs share one frame


def walk(node):
    """Yields (key, value) of a pairs tree in document order, depth first."""
    if isinstance(node, list):
        for item in node:
            if isinstance(item, tuple) and len(item) == 2:
                k, v = item
                yield k, v
                if isinstance(v, list):
                    yield from walk(v)
            elif isinstance(item, list):
                yield from walk(item)


def first(node, key):
    for k, v in walk(node):
        if k == key and isinstance(v, str):
            return v
    return None


def all_of(node, key):
    return [v for k, v in walk(node) if k == key and isinstance(v, str)]


def has_error(node):
    return any(k == "_ws.expert.severity" and v == ERROR_SEVERITY for k, v in walk(node))


def tshark_pdus(path, modbus_port):
    """{frame: [pdu dict]} from tshark's JSON, fields named as ours. tshark tells a Modbus query
    from a response by one server port (preference mbtcp.tcp.port), hence `modbus_port`."""
    cmd = ["tshark", "-n", "-r", path, "-T", "json", "-Y", "mbtcp or bvlc",
           "-J", "frame tcp udp mbtcp modbus bvlc bacnet bacapp _ws.malformed"]
    if modbus_port != 502:
        cmd += ["-o", "mbtcp.tcp.port:%d" % modbus_port]
    for p in BACNET_PORTS:
        if p != 47808:
            cmd += ["-d", "udp.port==%d,bvlc" % p]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False).stdout
    packets = json.loads(out.decode("utf-8", "replace") or "[]", object_pairs_hook=pairs_hook)
    frames = {}
    for pkt in packets:
        layers = dict(pkt).get("_source")
        layers = dict(layers).get("layers") if layers else None
        if layers is None:
            continue
        frame = num(first(layers, "frame.number"))
        protos = first(layers, "frame.protocols") or ""
        malformed_frame = any(k == "_ws.malformed" for k, _ in layers)
        pdus = []
        tcp = next((v for k, v in layers if k == "tcp"), None)
        dport = num(first(tcp, "tcp.dstport")) if tcp is not None and first(tcp, "tcp.dstport") else None
        current = None
        for k, v in layers:
            if k == "mbtcp":
                current = {"proto": "modbus", "tid": num(first(v, "mbtcp.trans_id")),
                           "unit": num(first(v, "mbtcp.unit_id")), "_err": has_error(v)}
                if dport is not None:
                    current["dir"] = "request" if dport == modbus_port else "response"
                pdus.append(current)
            elif k == "modbus" and current is not None and current["proto"] == "modbus":
                fc = first(v, "modbus.func_code")
                if fc is not None:
                    current["fc"] = num(fc)
                exc = first(v, "modbus.exception_code")
                if exc is not None:
                    current["exception"] = num(exc)
                addr = first(v, "modbus.reference_num") or first(v, "modbus.read_reference_num")
                if addr is not None:
                    current["addr"] = num(addr)
                qty = (first(v, "modbus.word_cnt") or first(v, "modbus.bit_cnt") or
                       first(v, "modbus.read_word_cnt"))
                if qty is not None:
                    current["qty"] = num(qty)
                current["_err"] = current["_err"] or has_error(v)
            elif k == "bvlc":
                current = {"proto": "bacnet", "bvlc": num(first(v, "bvlc.function")), "_err": has_error(v)}
                pdus.append(current)
            elif k == "bacnet" and current is not None and current["proto"] == "bacnet":
                msg = first(v, "bacnet.mesgtyp")
                if msg is not None:
                    current["net_msg"] = num(msg)
                current["_err"] = current["_err"] or has_error(v)
            elif k == "bacapp" and current is not None and current["proto"] == "bacnet":
                fill_bacapp(current, v)
        for p in pdus:
            p["_malformed"] = malformed_frame or p.pop("_err")
            p["_icmp"] = "icmp" in protos.split(":")
        frames[frame] = pdus
    return frames


def fill_bacapp(cur, v):
    t = first(v, "bacapp.type")
    if t is not None:
        cur["pdu_type"] = num(t)
    svc = first(v, "bacapp.confirmed_service")
    if svc is None:
        svc = first(v, "bacapp.unconfirmed_service")
    if svc is not None:
        cur["service"] = num(svc)
    inv = first(v, "bacapp.invoke_id")
    if inv is not None:
        cur["invoke_id"] = num(inv)
    types = [num(x) for x in all_of(v, "bacapp.objectType")]
    insts = [num(x) for x in all_of(v, "bacapp.instance_number")]
    cur["_objects"] = set(zip(types, insts))
    cur["_properties"] = set(num(x) for x in all_of(v, "bacapp.property_identifier"))
    # Only write services carry a command priority; other services' "Priority" labels are event
    # or message priorities, which ours does not report as `priority`.
    confirmed = cur.get("pdu_type") == 0
    if (confirmed and cur.get("service") in (15, 16)) or (cur.get("pdu_type") == 1 and cur.get("service") == 10):
        prios = [int(m.group(1)) for k, _ in walk(v) for m in [PRIORITY_RE.match(k)] if m]
        if prios:
            cur["priority"] = prios[0]


def our_pdus(path):
    cmd = [BMSGATE, "decode", "--json"]
    for p in MODBUS_PORTS:
        cmd += ["--modbus-port", str(p)]
    for p in BACNET_PORTS:
        cmd += ["--bacnet-port", str(p)]
    res = subprocess.run(cmd + [path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if res.returncode != 0:
        raise RuntimeError("bmsgate decode exited %d: %s" % (res.returncode, res.stderr.decode().strip()))
    frames = {}
    for line in res.stdout.decode().splitlines():
        rec = json.loads(line)
        frames.setdefault(rec["frame"], []).append(rec)
    return frames


MODBUS_FIELDS = ["dir", "tid", "unit", "fc", "exception", "addr", "qty"]
BACNET_FIELDS = ["bvlc", "net_msg", "pdu_type", "service", "invoke_id", "priority"]


def fmt(v):
    return "-" if v is None else str(v)


def compare_pdu(ours, theirs, where, out):
    """Appends (where, field, ours, tshark) for every difference between two PDUs of one protocol."""
    malformed = ours.get("malformed", False)
    if malformed != theirs["_malformed"]:
        out.append((where, "malformed", str(malformed).lower(), str(theirs["_malformed"]).lower()))
    fields = MODBUS_FIELDS if ours["proto"] == "modbus" else BACNET_FIELDS
    for f in fields:
        a, b = ours.get(f), theirs.get(f)
        if malformed and a is None:
            continue  # a malformed PDU carries only what could be read
        if f in ("addr", "qty") and theirs["_malformed"] and b is not None and a is None:
            continue
        if a != b:
            out.append((where, f, fmt(a), fmt(b)))
    if ours["proto"] == "bacnet":
        obj = (ours["object_type"], ours["instance"]) if "object_type" in ours else None
        tobjs = theirs.get("_objects", set())
        if obj is not None and obj not in tobjs:
            out.append((where, "object", "%d:%d" % obj, short_list("%d:%d" % o for o in sorted(tobjs))))
        elif obj is None and tobjs and not malformed:
            out.append((where, "object", "-", short_list("%d:%d" % o for o in sorted(tobjs))))
        prop = ours.get("property")
        tprops = theirs.get("_properties", set())
        if prop is not None and prop not in tprops:
            out.append((where, "property", str(prop), short_list(str(p) for p in sorted(tprops))))
        elif prop is None and tprops and not malformed:
            out.append((where, "property", "-", short_list(str(p) for p in sorted(tprops))))


def compare(ours_frames, theirs_frames, protos):
    """Returns (differences, counts)."""
    diffs = []
    counts = {"pdus": 0, "extra_malformed": 0, "icmp_quoted": 0}
    for frame in sorted(set(ours_frames) | set(theirs_frames)):
        for proto in protos:
            o = [r for r in ours_frames.get(frame, []) if r["proto"] == proto]
            t = [p for p in theirs_frames.get(frame, []) if p["proto"] == proto]
            icmp = [p for p in t if p["_icmp"]]
            if icmp:
                # tshark dissects the headers an ICMP error quotes; they are not PDUs on the wire.
                counts["icmp_quoted"] += len(icmp)
                t = [p for p in t if not p["_icmp"]]
            if not t and o and all(r.get("malformed") for r in o):
                counts["extra_malformed"] += len(o)
                continue
            counts["pdus"] += max(len(o), len(t))
            if len(o) != len(t):
                diffs.append(("%d" % frame, "pdus/" + proto, str(len(o)), str(len(t))))
            for i, (a, b) in enumerate(zip(o, t)):
                compare_pdu(a, b, "%d.%d" % (frame, i), diffs)
    return diffs, counts


def load_listed():
    listed = {}
    if not os.path.exists(DIFFS):
        return listed
    with open(DIFFS, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 6 or not cols[5].strip():
                print("# %s:%d: want 6 tab-separated columns with a reason" % (DIFFS, n))
                sys.exit(1)
            listed[tuple(cols[:5])] = cols[5]
    return listed


def main(argv):
    dump = "--dump" in argv
    only = [a for a in argv if not a.startswith("--")]
    if shutil.which("tshark") is None:
        print("1..1\nok 1 # SKIP tshark is not installed")
        return 0
    if not os.access(BMSGATE, os.X_OK):
        print("1..1\nnot ok 1 - %s not built" % BMSGATE)
        return 1
    # The public captures beside the clone, when present, and the project's own (pcaps/).
    caps = []
    public = os.path.isdir(PCAPS)
    if public:
        for d, _, files in os.walk(PCAPS):
            for f in files:
                if f.endswith((".pcap", ".pcapng", ".cap")):
                    caps.append(os.path.relpath(os.path.join(d, f), PCAPS))
    own_dir = os.path.join(ROOT, "pcaps")
    for d, _, files in os.walk(own_dir):
        for f in files:
            if f.endswith((".pcap", ".pcapng")):
                caps.append(os.path.relpath(os.path.join(d, f), ROOT))
    caps.sort()
    if only:
        caps = [c for c in caps if any(o in c for o in only)]
    listed = load_listed()
    ours = {}
    errors = {}
    def path_of(c):
        return os.path.join(ROOT, c) if c.startswith("pcaps/") else os.path.join(PCAPS, c)

    for c in caps:
        try:
            ours[c] = our_pdus(path_of(c))
        except (RuntimeError, ValueError) as e:
            errors[c] = str(e)
    # A decoder that is still the placeholder reports every PDU of its protocol malformed.
    placeholder = {}
    for proto in ("modbus", "bacnet"):
        recs = [r for fr in ours.values() for rs in fr.values() for r in rs if r["proto"] == proto]
        placeholder[proto] = bool(recs) and all(r.get("malformed") for r in recs)
    print("1..%d" % (len(caps) + (0 if public else 1)))
    if not public:
        print("ok %d # SKIP public captures not found at %s" % (len(caps) + 1, PCAPS))
    for p, is_ph in placeholder.items():
        if is_ph:
            print("# %s: every PDU malformed in every capture: decoder not landed, not compared" % p)
    totals = {"modbus": [0, 0, 0], "bacnet": [0, 0, 0]}  # pdus, listed, unlisted
    used = set()
    compared = set()
    status = 0
    for n, c in enumerate(caps, 1):
        if c in errors:
            print("not ok %d - %s: %s" % (n, c, errors[c]))
            status = 1
            continue
        # The server port the capture uses (our requests' destination), 502 unless it is another.
        servers = {int(r["flow"].rsplit(":", 1)[1]) for rs in ours[c].values() for r in rs
                   if r["proto"] == "modbus" and r["dir"] == "request"}
        theirs = tshark_pdus(path_of(c), (servers - {502}).pop() if servers - {502} else 502)
        present = {r["proto"] for rs in ours[c].values() for r in rs} | \
                  {p["proto"] for ps in theirs.values() for p in ps}
        protos = [p for p in ("modbus", "bacnet") if p in present and not placeholder[p]]
        if not protos:
            skipped = sorted(p for p in present if placeholder[p])
            why = ("%s decoder not landed (every PDU malformed)" % "/".join(skipped)) if skipped \
                else "no Modbus/TCP or BACnet/IP PDU in this capture"
            print("ok %d - %s # SKIP %s" % (n, c, why))
            continue
        diffs, counts = compare(ours[c], theirs, protos)
        compared.add(c)
        unlisted = []
        nlisted = 0
        for where, field, a, b in diffs:
            proto = "modbus" if field in MODBUS_FIELDS or field.endswith("/modbus") else "bacnet"
            if field in ("malformed",) or field.startswith("pdus/"):
                proto = field.split("/")[1] if "/" in field else proto
            key = (c, where, field, a, b)
            if key in listed:
                used.add(key)
                nlisted += 1
                totals[protos[0] if len(protos) == 1 else proto][1] += 1
            else:
                unlisted.append(key)
                totals[protos[0] if len(protos) == 1 else proto][2] += 1
        for p in protos:
            totals[p][0] += counts["pdus"] if len(protos) == 1 else 0
        note = "%d PDUs compared (%s), %d listed differences" % (counts["pdus"], "+".join(protos), nlisted)
        if counts["extra_malformed"]:
            note += ", %d malformed records where tshark decodes nothing" % counts["extra_malformed"]
        if counts["icmp_quoted"]:
            note += ", %d ICMP-quoted headers ignored" % counts["icmp_quoted"]
        if protos != sorted(present) and any(placeholder[p] for p in present):
            note += " (%s not compared: decoder not landed)" % "/".join(p for p in present if placeholder[p])
        if unlisted:
            status = 1
            print("not ok %d - %s: %d unlisted differences; %s" % (n, c, len(unlisted), note))
            for key in unlisted[:20]:
                print("#   frame %s %s: ours %s, tshark %s" % key[1:])
            if len(unlisted) > 20:
                print("#   ... %d more (run with --dump)" % (len(unlisted) - 20))
            if dump:
                for key in unlisted:
                    print("DIFF\t" + "\t".join(key) + "\t?")
        else:
            print("ok %d - %s: %s" % (n, c, note))
    stale = [k for k in listed if k[0] in compared and k not in used]
    if stale:
        # Not a failure: a decoder got better. The entries should go.
        print("# %d listed differences no longer occur; remove them from %s:" % (len(stale), DIFFS))
        for k in stale[:20]:
            print("#   " + " ".join(k))
    for p, (npdus, nl, nu) in totals.items():
        if not placeholder[p]:
            print("# %s: %d listed differences, %d unlisted" % (p, nl, nu))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
