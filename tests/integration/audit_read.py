#!/usr/bin/env python3
"""Reading the trail and the writer's failure modes, end to end with the real
binaries: `audit query` filters (counted independently here with python's
json), `audit summary`, `audit tail -f` across rotation, a log that cannot
be written (RLIMIT_FSIZE: fail closed, loudly; recovery; fail = open with the
refused count recorded), and a log that cannot be opened. Prints TAP."""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from tap import ok  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BMS = os.path.join(ROOT, "build", "bmsgate")
WRITER = os.path.join(ROOT, "build", "tools", "audit_writer")



def run(*args, timeout=60):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def records(path):
    out = []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            if o.get("kind") != "checkpoint":
                out.append(o)
    return out


tmp = tempfile.mkdtemp(prefix="bms-audit-read-")
tail_proc = None
try:
    KEY, PUB = os.path.join(tmp, "k"), os.path.join(tmp, "k.pub")
    run(BMS, "audit", "keygen", KEY, PUB)
    log = os.path.join(tmp, "q.log")
    rc, out, err = run(WRITER, log, "--key", KEY, "--count", "1500", "--inflight", "16", "--time-start",
                       "2026-11-20T08:00:00Z", "--time-step-us", "20000000", "--seed", "7")
    ok(rc == 0, "writer made a query fixture", err)
    recs = records(log)

    # query: each filter against an independent count
    def q(*args):
        rc, out, err = run(BMS, "audit", "query", log, "--json", *args)
        return rc, [json.loads(l) for l in out.splitlines()], err

    rc, got, err = q("--decision", "deny")
    want = [r for r in recs if r.get("decision") == "deny"]
    ok(rc == 0 and len(got) == len(want) > 0 and all(g["decision"] == "deny" for g in got),
       f"query --decision deny: {len(got)} records, as counted independently", err)
    rc, got, err = q("--role", "viewer", "--op", "write")
    want = [r for r in recs if r.get("peer", {}).get("role") == "viewer" and r.get("op") == "write"]
    ok(rc == 0 and [g["seq"] for g in got] == [w["seq"] for w in want] and want,
       f"query --role viewer --op write: {len(got)} records", err)
    rc, got, err = q("--device", "door-1", "--decision", "malformed")
    want = [r for r in recs if r.get("device") == "door-1" and r.get("decision") == "malformed"]
    ok(rc == 0 and [g["seq"] for g in got] == [w["seq"] for w in want],
       f"query --device door-1 --decision malformed: {len(got)} records", err)
    rc, got, err = q("--identity", "scada")
    want = [r for r in recs if "scada" in r.get("peer", {}).get("subject", "")]
    ok(rc == 0 and len(got) == len(want) > 0, f"query --identity (subject substring): {len(got)} records", err)
    rc, got, err = q("--identity", "10.0.0.4")
    want = [r for r in recs if r.get("peer", {}).get("address", "").startswith("10.0.0.4")]
    ok(rc == 0 and len(got) == len(want) > 0, f"query --identity (legacy address): {len(got)} records", err)
    rc, got, err = q("--since", "2026-11-20T09:00:00Z", "--until", "2026-11-20T10:00:00Z")
    want = [r for r in recs if "2026-11-20T09:00:00" <= r["time"] < "2026-11-20T10:00:00"]
    ok(rc == 0 and len(got) == len(want) > 0, f"query --since --until: {len(got)} records in that hour", err)
    rc, out, err = run(BMS, "audit", "query", log, "--decision", "deny")
    rows = [l for l in out.splitlines() if re.match(r"^\d{4}-", l)]
    ok(rc == 0 and out.startswith("TIME") and len(rows) == len([r for r in recs if r.get("decision") == "deny"])
       and all(" deny " in l for l in rows), "query prints a readable table", out[:600])
    allowed = [r for r in recs if r.get("decision") == "allow" and r.get("result") == "pending"]
    results = {r["ref"]: r for r in recs if r["kind"] == "result"}
    joined = next((a for a in allowed if a["seq"] in results), None)
    rc, out, err = run(BMS, "audit", "query", log, "--decision", "allow")
    line = next((l for l in out.splitlines() if re.match(r"^\S+\s+%d\s" % joined["seq"], l)), "")
    ok(joined and results[joined["seq"]]["result"] in line, "the table joins a decision with its device result", line)
    rc, out, err = run(BMS, "audit", "query", log, "--decision", "maybe")
    ok(rc == 2 and "--decision 'maybe'" in err, "a bad filter value: exit 2 and named", err)
    rc, out, err = run(BMS, "audit", "query", log, "--since", "yesterday")
    ok(rc == 2 and "--since 'yesterday'" in err, "a bad time: exit 2 and named", err)

    # summary against independent counts
    rc, out, err = run(BMS, "audit", "summary", log)
    dec = collections.Counter(r["decision"] for r in recs if "decision" in r)
    ok(rc == 0 and all(re.search(r"^\s+%d\s+%s$" % (c, re.escape(d)), out, re.M) for d, c in dec.items()),
       "summary counts by decision match", out[:800])
    denied = collections.Counter(r["peer"]["subject"] or r["peer"]["address"] for r in recs
                                 if r.get("decision") in ("deny", "monitor-deny", "malformed"))
    top, cnt = denied.most_common(1)[0]
    sect = out.split("most denied identities")[1]
    ok(re.search(r"^\s+%d\s+%s$" % (cnt, re.escape(top)), sect, re.M) is not None,
       f"summary names the most denied identity ({top}, {cnt})", sect[:400])
    hours = collections.Counter(r["time"][:13] for r in recs)
    ok(all(re.search(r"^\s+%s\s+%d\s" % (h, c), out, re.M) for h, c in hours.items()),
       f"summary per-hour histogram matches ({len(hours)} hours)", out[-1500:])

    # tail -f across rotation
    rot = os.path.join(tmp, "rot", "audit.log")
    os.makedirs(os.path.dirname(rot))
    run(WRITER, rot, "--key", KEY, "--count", "5", "--no-lifecycle")
    tail_out = os.path.join(tmp, "tail.out")
    tail_proc = subprocess.Popen([BMS, "audit", "tail", "-f", "--json", "-n", "100", rot],
                                 stdout=open(tail_out, "w"), stderr=subprocess.PIPE)
    rc, out, err = run(WRITER, rot, "--key", KEY, "--count", "600", "--rotate-bytes", "15000", "--inflight", "4")
    total = sum(len(records(os.path.join(os.path.dirname(rot), f))) for f in os.listdir(os.path.dirname(rot)))
    rotated = len([f for f in os.listdir(os.path.dirname(rot)) if f.startswith("audit.log.")])
    deadline = time.monotonic() + 15
    seqs = []
    while time.monotonic() < deadline:
        with open(tail_out) as f:
            seqs = [json.loads(l)["seq"] for l in f if l.endswith("\n")]
        if len(seqs) >= total:
            break
        time.sleep(0.05)
    ok(rotated >= 3 and seqs == list(range(total)),
       f"tail -f followed {len(seqs)} of {total} records across {rotated} rotations, in order, none twice",
       f"first {seqs[:5]} last {seqs[-5:]}")
    tail_proc.kill()
    tail_proc.wait()
    tail_proc = None
    rc, out, err = run(BMS, "audit", "tail", "-n", "3", "--json", rot)
    got = [json.loads(l)["seq"] for l in out.splitlines()]
    ok(rc == 0 and got and got[-1] == total - 1 and len(got) <= 3, f"tail -n 3 prints the last records ({got})", err)

    # the table (issue 11): a reason column, a long rule path whole, refused peers not shown
    # as if their certificate had identified them
    hand = os.path.join(tmp, "hand.log")
    longrule = "/etc/bmsgate/policies/site-north-building-7-hvac.policy:1234"
    with open(hand, "w") as f:
        f.write(json.dumps({"seq": 0, "time": "2026-11-20T08:00:00.000000Z", "node": "gw", "kind": "decision",
                            "peer": {"subject": "CN=operator1", "role": "operator", "address": "10.0.0.1:40000",
                                     "authenticated": True}, "proto": "modbus", "device": "ahu1", "unit": 1,
                            "op": "write", "fc": 6, "decision": "deny", "rule": longrule,
                            "reason": "role operator may not write ahu1.fan_enable", "result": "not_forwarded",
                            "prev": "0" * 16}) + "\n")
        f.write(json.dumps({"seq": 1, "time": "2026-11-20T08:00:01.000000Z", "node": "gw", "kind": "conn_refused",
                            "peer": {"subject": "CN=intruder,O=Elsewhere", "role": "operator",
                                     "address": "10.0.0.9:50000", "authenticated": False},
                            "detail": "certificate refused: unable to get local issuer certificate",
                            "prev": "0" * 16}) + "\n")
        f.write(json.dumps({"seq": 2, "time": "2026-11-20T08:00:02.000000Z", "node": "gw", "kind": "decision",
                            "peer": {"subject": "", "role": "", "address": "10.0.0.5:1234", "authenticated": False},
                            "proto": "modbus", "device": "ahu1", "unit": 1, "op": "read", "fc": 3,
                            "decision": "allow", "rule": "site.policy:9", "reason": "allow plant read ahu1",
                            "result": "ok", "prev": "0" * 16}) + "\n")
    rc, out, err = run(BMS, "audit", "query", hand)
    rows = out.splitlines()
    head = rows[0].split()
    ok(rc == 0 and head[-3:] == ["RESULT", "RULE", "REASON"], "query: the table has a REASON column", out)
    r0 = next((l for l in rows if re.match(r"^\S+\s+0\s", l)), "")
    ok(longrule in r0 and r0.endswith("role operator may not write ahu1.fan_enable"),
       "query: a long rule path is shown whole, and the reason beside it", out)
    ok(rows[0].index("REASON") == r0.index("role operator may not"),
       "query: the reason column lines up under its heading with a 60-character rule path", out)
    r1 = next((l for l in rows if re.match(r"^\S+\s+1\s", l)), "")
    ok("10.0.0.9:50000 (unauthenticated)" in r1 and "intruder" not in r1 and " operator " not in r1
       and "unable to get local issuer certificate" in r1,
       "query: a refused peer is shown by address as unauthenticated, without the subject or role it claimed", r1)
    r2 = next((l for l in rows if re.match(r"^\S+\s+2\s", l)), "")
    ok("10.0.0.5:1234 " in r2 and "unauthenticated" not in r2, "query: a legacy peer is shown by its address", r2)
    rc, out, err = run(BMS, "audit", "summary", hand)
    ok(rc == 0 and "CN=intruder" not in out, "summary: a refused peer's claimed subject is not counted as an identity",
       out)

    # a log that cannot be written: fail closed, loudly, and the log stays whole
    full = os.path.join(tmp, "full.log")
    rc, out, err = run(WRITER, full, "--key", KEY, "--count", "3000", "--inflight", "8", "--fsize-limit", "150000")
    ok(rc == 3 and "failing File too large" in out, "disk full: the writer reports failure to the caller (fail closed)",
       out + err)
    ok("failing closed: requests are refused" in err, "disk full: said loudly on stderr", err)
    rc, vout, _ = run(BMS, "audit", "verify", full, "--key", PUB)
    ok(rc == 0 and os.path.getsize(full) <= 150000, "disk full: the log still verifies (no partial batch left)", vout)
    full2 = os.path.join(tmp, "full2.log")
    rc, out, err = run(WRITER, full2, "--key", KEY, "--count", "3000", "--inflight", "8", "--fsize-limit", "150000",
                       "--raise-limit-after-fail")
    rc2, vout, _ = run(BMS, "audit", "verify", full2, "--key", PUB)
    ok(rc == 0 and "recovered" in out and "writable again" in err and rc2 == 0 and "warning" not in vout,
       "space again: the queued records are written, the log verifies and is signed", out + err + vout)
    open_log = os.path.join(tmp, "open.log")
    rc, out, err = run(WRITER, open_log, "--key", KEY, "--count", "3000", "--inflight", "8", "--fsize-limit",
                       "150000", "--raise-limit-after-fail", "--fail-open", "--queue-limit", "100")
    m = re.search(r"^unaudited (\d+)$", out, re.M)
    dropped = [r for r in records(open_log) if r["kind"] == "log_dropped"]
    ok(rc == 0 and "forwarding unaudited (fail = open)" in out and "forwarded UNAUDITED" in err,
       "fail = open: requests pass, and stderr says they are unaudited", out + err)
    ok(m and dropped and sum(int(d["detail"].split()[0]) for d in dropped) == int(m.group(1)),
       "fail = open: the log records how many submissions it refused", f"{out}\n{dropped}")

    # a log that cannot be opened
    rc, out, err = run(WRITER, os.path.join(tmp, "no-such-dir", "a.log"), "--key", KEY, "--count", "1")
    ok(rc == 2 and "cannot open" in err and "No such file or directory" in err, "an unopenable log: refused with the reason", err)
finally:
    if tail_proc:
        tail_proc.kill()
        tail_proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)

sys.exit(tap.done())
