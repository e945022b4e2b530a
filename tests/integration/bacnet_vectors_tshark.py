#!/usr/bin/env python3
"""tests/integration/bacnet_vectors_tshark.py: the BACnet test vectors, end to end and against tshark.

Every record of tests/vectors/bacnet/*.vec is written into one pcap (text2pcap, UDP 47808), then
  1. `bmsgate decode --json` must give each record the verdict the record expects (the pcap path
     agrees with the unit test), and
  2. for every `expect ok` record, tshark must read the same datagram the same way: not malformed,
     same BVLC function, PDU type, service choice and invoke id; our first object and property must
     be among those tshark decodes, and we report one iff tshark does.
A record may carry `tshark-differs FIELD: reason` where tshark and bmsgate differ by convention or
tshark is wrong; that field is then not compared for that record. Prints TAP, one test per record
compared. Python 3 standard library only.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BMSGATE = os.path.join(ROOT, "build", "bmsgate")


def records():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "vectors", "bacnet", "*.vec"))):
        rec = None
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if line.startswith("test "):
                rec = {"name": "%s:%s" % (os.path.basename(path), line[5:]), "differs": set()}
                out.append(rec)
            elif line.startswith("hex "):
                rec["bytes"] = bytes.fromhex(line[4:].replace("|", " ").replace(" ", ""))
            elif line.startswith("expect "):
                rec["ok"] = line.split()[1] == "ok"
            elif line.startswith("tshark-differs "):
                rec["differs"].add(line.split()[1].rstrip(":"))
    return out


def tshark_frames(pcap):
    fields = ["frame.number", "_ws.malformed", "_ws.expert.severity", "bvlc.function", "bacapp.type",
              "bacapp.confirmed_service", "bacapp.unconfirmed_service", "bacapp.invoke_id",
              "bacapp.objectType", "bacapp.instance_number", "bacapp.property_identifier"]
    cmd = ["tshark", "-n", "-r", pcap, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout.decode()
    frames = {}
    for line in out.splitlines():
        c = line.split("\t")
        c += [""] * (len(fields) - len(c))
        ints = lambda s: [int(x, 0) for x in s.split(",") if x]
        frames[int(c[0])] = {
            "malformed": bool(c[1]) or "8388608" in c[2].split(","),
            "bvlc": ints(c[3])[0] if c[3] else None,
            "pdu_type": ints(c[4])[0] if c[4] else None,
            "service": (ints(c[5]) or ints(c[6]) or [None])[0],
            "invoke_id": ints(c[7])[0] if c[7] else None,
            "objects": set(zip(ints(c[8]), ints(c[9]))),
            "properties": set(ints(c[10])),
        }
    return frames


def main():
    if shutil.which("tshark") is None or shutil.which("text2pcap") is None:
        print("1..1\nok 1 # SKIP tshark/text2pcap not installed")
        return 0
    if not os.access(BMSGATE, os.X_OK):
        print("1..1\nnot ok 1 - %s not built" % BMSGATE)
        return 1
    recs = [r for r in records() if len(r["bytes"]) <= 1400]  # text2pcap builds one Ethernet frame each
    with tempfile.TemporaryDirectory() as tmp:
        txt = os.path.join(tmp, "v.txt")
        pcap = os.path.join(tmp, "v.pcap")
        with open(txt, "w") as f:
            for r in recs:
                b = r["bytes"]
                for i in range(0, len(b), 16):
                    f.write("%06x %s\n" % (i, " ".join("%02x" % x for x in b[i:i + 16])))
                f.write("\n")
        subprocess.run(["text2pcap", "-q", "-u", "47808,47808", txt, pcap], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        res = subprocess.run([BMSGATE, "decode", "--json", pcap], stdout=subprocess.PIPE, check=True)
        ours = {}
        for line in res.stdout.decode().splitlines():
            rec = json.loads(line)
            ours[rec["frame"]] = rec
        theirs = tshark_frames(pcap)
    print("1..%d" % len(recs))
    status = 0
    for n, r in enumerate(recs, 1):
        o, t, why = ours.get(n), theirs.get(n), []
        if o is None:
            why.append("bmsgate decode printed no PDU")
        elif o["malformed"] == r["ok"]:
            why.append("bmsgate decode says malformed=%s, the record expects %s" %
                       (str(o["malformed"]).lower(), "ok" if r["ok"] else "malformed"))
        elif r["ok"] and t is None:
            why.append("tshark printed nothing")
        elif r["ok"]:
            d = r["differs"]
            if "malformed" not in d and t["malformed"]:
                why.append("tshark finds it malformed")
            for f in ("bvlc", "pdu_type", "service", "invoke_id"):
                if f not in d and f in o and o[f] != t[f]:
                    why.append("%s: ours %s, tshark %s" % (f, o[f], t[f]))
            obj = (o["object_type"], o["instance"]) if "object_type" in o else None
            if "object" not in d and "malformed" not in d:
                if (obj is None) != (not t["objects"]) or (obj is not None and obj not in t["objects"]):
                    why.append("object: ours %s, tshark %s" % (obj, sorted(t["objects"])))
            if "property" not in d and "malformed" not in d:
                prop = o.get("property")
                if (prop is None) != (not t["properties"]) or (prop is not None and prop not in t["properties"]):
                    why.append("property: ours %s, tshark %s" % (prop, sorted(t["properties"])))
        if why:
            status = 1
            print("not ok %d - %s: %s" % (n, r["name"], "; ".join(why)))
        else:
            print("ok %d - %s%s" % (n, r["name"], "" if r["ok"] else " (malformed, as expected)"))
    return status


if __name__ == "__main__":
    sys.exit(main())
