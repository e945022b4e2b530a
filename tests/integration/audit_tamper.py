#!/usr/bin/env python3
"""Every kind of tampering with the audit trail is detected by `bmsgate audit
verify` and located (the message names the file and line), and an untouched
log verifies. Also: the Merkle root and the Ed25519 signature are checked
independently (python hashlib, the openssl command line), and inclusion and
consistency proofs verify, and fail when altered. Prints TAP."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from tap import ok  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BMS = os.path.join(ROOT, "build", "bmsgate")
WRITER = os.path.join(ROOT, "build", "tools", "audit_writer")



def run(*args):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def verify(files, *extra):
    return run(BMS, "audit", "verify", *files, "--key", PUB, *extra)


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def write_lines(path, lines, tail=b"\n"):
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + (tail if lines else b""))


def is_cp(line):
    return line.startswith(b'{"kind":"checkpoint"')


def find_record(lines, seq):
    for i, l in enumerate(lines):
        if l.startswith(b'{"seq":%d,' % seq):
            return i
    raise KeyError(seq)


tmp = tempfile.mkdtemp(prefix="bms-audit-tamper-")
try:
    KEY, PUB = os.path.join(tmp, "k"), os.path.join(tmp, "k.pub")
    rc, out = run(BMS, "audit", "keygen", KEY, PUB)
    ok(rc == 0 and oct(os.stat(KEY).st_mode & 0o777) == "0o600", "keygen writes the private key with mode 600", out)
    rc, out = run(BMS, "audit", "keygen", KEY, os.path.join(tmp, "other.pub"))
    ok(rc != 0 and "refusing to overwrite" in out, "keygen refuses to overwrite a key", out)
    KEY2, PUB2 = os.path.join(tmp, "k2"), os.path.join(tmp, "k2.pub")
    run(BMS, "audit", "keygen", KEY2, PUB2)

    base = os.path.join(tmp, "base.log")
    cps = os.path.join(tmp, "base.cps")
    rc, out = run(WRITER, base, "--key", KEY, "--count", "300", "--inflight", "4", "--checkpoint-every", "40",
                  "--copy", cps, "--time-start", "2026-11-20T08:00:00Z", "--time-step-us", "1000000")
    ok(rc == 0, "writer produced a log", out)
    base_lines = lines_of(base)

    rc, out = verify([base], "--checkpoints", cps)
    ok(rc == 0 and out.startswith("OK:"), "an untouched log verifies (exit 0)", out)

    # independent computation: RFC 6962 over the record lines with hashlib
    def mth(leaves):
        if len(leaves) == 0:
            return hashlib.sha256(b"").digest()
        if len(leaves) == 1:
            return leaves[0]
        k = 1
        while k * 2 < len(leaves):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()

    leaves = [hashlib.sha256(b"\x00" + l).digest() for l in base_lines if not is_cp(l)]
    cp_objs = [json.loads(l) for l in base_lines if is_cp(l)]
    good = all(mth(leaves[:c["size"]]).hex() == c["root"] for c in cp_objs)
    ok(good and len(cp_objs) >= 3, "every checkpoint root equals an independent RFC 6962 computation (hashlib)",
       json.dumps(cp_objs[-1]))

    # the signature with stock openssl: the signed message is documented text
    last = cp_objs[-1]
    # version 2 (the checkpoint policy signed too); version 1 for lines without it
    if "every_records" in last:
        msg = (f"bmsgate-audit-checkpoint/2\n{last['node']}\n{last['size']}\n{last['root']}\n{last['time']}\n"
               f"{last['every_records']}\n{last['every_seconds']}\n")
    else:
        msg = f"bmsgate-audit-checkpoint/1\n{last['node']}\n{last['size']}\n{last['root']}\n{last['time']}\n"
    mf, sf = os.path.join(tmp, "msg"), os.path.join(tmp, "sig")
    open(mf, "w").write(msg)
    open(sf, "wb").write(bytes.fromhex(last["sig"]))
    rc, out = run("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", PUB, "-rawin", "-in", mf, "-sigfile", sf)
    ok(rc == 0 and "Success" in out, "openssl pkeyutl verifies a checkpoint signature", out)

    def tampered(name, mutate, expect_re, extra=(), files=None, want_rc=1):
        path = os.path.join(tmp, name + ".log")
        lines = list(base_lines)
        tail = mutate(lines)
        write_lines(path, lines, tail if tail is not None else b"\n")
        rc, out = verify(files(path) if files else [path], *extra)
        m = re.search(expect_re, out, re.M)
        ok(rc == want_rc and m is not None, f"{name}: exit {want_rc} and located ({expect_re})", f"rc={rc}\n{out}")
        return out

    # 1. one changed byte inside a value: the next record's prev names the line
    def change_value(lines):
        i = find_record(lines, 100)
        lines[i] = lines[i].replace(b'"latency_us":', b'"latency_us":9', 1)
    i100 = find_record(base_lines, 100) + 1
    out = tampered("changed-byte", change_value,
                   rf"changed-byte\.log:{i100 + 1}: \"prev\" does not match the record before it \(.*changed-byte\.log:{i100}\)")
    ok("the root does not match the records" in out, "changed-byte: the next checkpoint's root fails too", out)

    # 2. a changed byte that breaks the JSON
    def break_json(lines):
        i = find_record(lines, 50)
        lines[i] = lines[i][:-1] + b"]"
    tampered("broken-json", break_json, rf"broken-json\.log:{find_record(base_lines, 50) + 1}: not a valid record")

    # 3. a deleted record
    def delete(lines):
        del lines[find_record(lines, 120)]
    tampered("deleted", delete,
             rf"deleted\.log:{find_record(base_lines, 120) + 1}: seq 121 where 120 was expected: record 120 was deleted")

    # 4. an inserted record (a copy of another one)
    def insert(lines):
        lines.insert(find_record(lines, 200), lines[find_record(lines, 10)])
    tampered("inserted", insert,
             rf"inserted\.log:{find_record(base_lines, 200) + 1}: seq 10 after seq 199: a record was inserted")

    # 5. two records swapped
    def reorder(lines):
        a, b = find_record(lines, 150), find_record(lines, 151)
        lines[a], lines[b] = lines[b], lines[a]
    tampered("reordered", reorder,
             rf"reordered\.log:{find_record(base_lines, 150) + 1}: seq 151 where 150 was expected")

    # 6. a careful forgery: records changed and seq/prev recomputed after them;
    # only the signed checkpoint can catch it, and it names the span
    def rechain(lines):
        i = find_record(lines, 90)
        lines[i] = lines[i].replace(b'"decision":"deny"', b'"decision":"allow"').replace(
            b'"decision":"allow"', b'"decision":"allow"')
        obj = json.loads(lines[i])
        obj["reason"] = "forged"
        body = json.dumps(obj, separators=(",", ":")).encode()
        lines[i] = body
        prev = hashlib.sha256(b"\x00" + lines[i]).digest()[:8].hex()
        for j in range(i + 1, len(lines)):
            if is_cp(lines[j]):
                break
            o = json.loads(lines[j])
            o["prev"] = prev
            lines[j] = json.dumps(o, separators=(",", ":")).encode()
            prev = hashlib.sha256(b"\x00" + lines[j]).digest()[:8].hex()
    cp_before = max(k for k, l in enumerate(base_lines[:find_record(base_lines, 90)]) if is_cp(l)) + 1
    tampered("rechained", rechain,
             rf"rechained\.log:\d+: checkpoint \(size \d+\): the root does not match the records: a record after the checkpoint at .*rechained\.log:{cp_before} ")

    # 7. a checkpoint's signature altered
    def bad_sig(lines):
        i = [k for k, l in enumerate(lines) if is_cp(l)][1]
        o = json.loads(lines[i])
        o["sig"] = ("0" if o["sig"][0] != "0" else "1") + o["sig"][1:]
        lines[i] = json.dumps(o, separators=(",", ":")).encode()
    second_cp = [k for k, l in enumerate(base_lines) if is_cp(l)][1] + 1
    tampered("bad-signature", bad_sig, rf"bad-signature\.log:{second_cp}: checkpoint \(size \d+\): the signature does not verify")

    # 8. truncated tails
    last_cp = max(k for k, l in enumerate(base_lines) if is_cp(l))
    prev_cp = max(k for k, l in enumerate(base_lines[:last_cp]) if is_cp(l))

    def cut_unsigned(lines):
        # a crash: the writer had appended records after the last checkpoint
        del lines[prev_cp + 6:]
    out = tampered("unsigned-tail", cut_unsigned, r"warning: 5 record\(s\) after the checkpoint at .* are not covered by a signature",
                   want_rc=0)
    path = os.path.join(tmp, "unsigned-tail.log")
    rc, out = verify([path], "--strict")
    ok(rc == 1, "unsigned tail with --strict: exit 1", out)
    rc, out = verify([path], "--checkpoints", cps)
    ok(rc == 1 and re.search(r"base\.cps:\d+: the log ends at tree size \d+ but this checkpoint .* signed history was cut", out),
       "cut into signed history: exposed by the checkpoints kept elsewhere", out)

    def torn(lines):
        lines[-1] = lines[-1][:37]
        return b""
    tampered("torn", torn, r"torn\.log:\d+: warning: the last line is torn \(37 bytes without a newline\)", want_rc=0)

    # 8b. unsigned records the guard would have signed by now (issue 11): its checkpoint policy
    # (every 40 records, every 10 s here) is signed into each checkpoint
    ok(all(c.get("every_records") == 40 and c.get("every_seconds") == 10 for c in cp_objs),
       "every checkpoint records the writer's checkpoint policy", json.dumps(cp_objs[-1]))
    cp_lines = [k for k, l in enumerate(base_lines) if is_cp(l)]

    nrec = sum(1 for l in base_lines if not is_cp(l))

    def strip_all(lines):
        lines[:] = [l for l in lines if not is_cp(l)]
    tampered("stripped-all", strip_all,
             rf"stripped-all\.log:1: no signature covers any of the {nrec} record\(s\) \(seq 0\.\.{nrec - 1}, from "
             r"2026-11-20T08:00:00\.000000Z\): every checkpoint was stripped")

    def strip_after_second(lines):
        keep = set(cp_lines[:2])
        lines[:] = [l for k, l in enumerate(lines) if not is_cp(l) or k in keep]
    s2 = cp_objs[1]["size"]
    tampered("stripped-later", strip_after_second,
             rf"stripped-later\.log:{cp_lines[1] + 2}: {nrec - s2} record\(s\) after the checkpoint at "
             rf".*stripped-later\.log:{cp_lines[1] + 1} \(size {s2}\), signed .*, carry no signature \(seq "
             rf"{s2}\.\.{nrec - 1}, from .*\): the guard signs at least every 40 records .* at most 39 unsigned")

    # at the edge: 39 unsigned records are what a crash can leave; 40 are not (the next
    # checkpoint comes 40 records or more after this one)
    cpk = cp_lines[3]
    sk = cp_objs[3]["size"]
    assert cp_objs[4]["size"] - sk >= 40

    def crash39(lines):
        del lines[cpk + 40:]
    tampered("unsigned-39", crash39, rf"warning: 39 record\(s\) after the checkpoint at .* are not covered by a "
             rf"signature \(seq {sk}\.\.{sk + 38}, .*up to 39 records within 10 s", want_rc=0)

    def strip40(lines):
        del lines[cpk + 41:]
    tampered("unsigned-40", strip40, r"unsigned-40\.log:\d+: 40 record\(s\) after the checkpoint .* carry no signature")

    def strip40_torn(lines):
        del lines[cpk + 42:]
        lines[-1] = lines[-1][:50]
        return b""
    tampered("unsigned-40-torn", strip40_torn, r"warning: 40 record\(s\) after the checkpoint .* not covered by a "
             r"signature", want_rc=0)

    # by time: a record stamped long after the last checkpoint was not left by a crash
    def append_at(lines, seconds):
        cp = json.loads(lines[cpk])
        del lines[cpk + 11:]
        rec = json.loads(lines[-1])
        t0 = int(subprocess.run(["date", "-u", "-d", cp["time"], "+%s"], capture_output=True, text=True).stdout)
        rec["seq"] += 1
        rec["time"] = subprocess.run(["date", "-u", "-d", "@%d" % (t0 + seconds), "+%Y-%m-%dT%H:%M:%S.000000Z"],
                                     capture_output=True, text=True).stdout.strip()
        rec["prev"] = hashlib.sha256(b"\x00" + lines[-1]).digest()[:8].hex()
        lines.append(json.dumps(rec, separators=(",", ":")).encode())
    tampered("late-record", lambda lines: append_at(lines, 300),
             rf"late-record\.log:{cpk + 12}: 11 record\(s\) after the checkpoint .* this one from .*, (299|300) s after "
             r"that checkpoint: the guard signs within 10 s")
    tampered("recent-record", lambda lines: append_at(lines, 30),
             r"warning: 11 record\(s\) after the checkpoint .* not covered by a signature", want_rc=0)

    # the writer signs on every open: what a crash left unsigned is covered before anything new
    reopen = os.path.join(tmp, "reopen.log")
    run(WRITER, reopen, "--key", KEY, "--count", "20", "--checkpoint-every", "1000")
    rl = [l for l in lines_of(reopen) if not is_cp(l)]
    write_lines(reopen, rl)
    rc, out = run(WRITER, reopen, "--key", KEY, "--count", "5", "--checkpoint-every", "1000")
    after = lines_of(reopen)
    ok(rc == 0 and is_cp(after[len(rl)]) and json.loads(after[len(rl)])["size"] == len(rl),
       "the writer signs the records a crash left unsigned when it reopens the log", out)
    rc, out = verify([reopen])
    ok(rc == 0 and out.startswith("OK:"), "a reopened log verifies", out)

    # one fault, one report
    out = tampered("deleted-once", delete, r"TAMPERED: 1 problem\(s\)")
    ok("deleted since" not in out, "deleted-once: the later checkpoints do not report the deletion again", out)
    out = tampered("inserted-once", insert, r"TAMPERED: 1 problem\(s\)")
    ok("were deleted" not in out and "prev" not in out,
       "inserted-once: the records after the insertion are not reported as deleted or changed", out)

    # 9. rotation: a set of files verifies as one history; a missing or swapped file is named
    rot = os.path.join(tmp, "rot", "audit.log")
    os.makedirs(os.path.dirname(rot))
    rc, out = run(WRITER, rot, "--key", KEY, "--count", "400", "--checkpoint-every", "30", "--rotate-bytes", "20000")
    files = sorted(f for f in os.listdir(os.path.dirname(rot)) if f.startswith("audit.log."))
    files = [os.path.join(os.path.dirname(rot), f) for f in files] + [rot]
    ok(rc == 0 and len(files) >= 4, f"writer rotated into {len(files)} files", out)
    rc, out = verify(files)
    ok(rc == 0, "a rotated set verifies as one history", out)
    rc, out = verify(files[1:])
    ok(rc == 0 and "records before it are in earlier files, not given" in out,
       "a suffix of the set verifies from its first file's checkpoint", out)
    rc, out = verify(files[:1] + files[2:])
    ok(rc == 1 and re.search(re.escape(files[2]) + r":1: rotation gap: this file starts at tree size \d+ but the file before it ends at size \d+", out),
       "a missing rotated file: rotation gap named", out)
    rc, out = verify([files[1], files[0]] + files[2:])
    ok(rc == 1 and re.search(re.escape(files[0]) + r":1: this file does not start with the previous file's checkpoint", out),
       "files in the wrong order: named", out)
    other = os.path.join(tmp, "other", "audit.log")
    os.makedirs(os.path.dirname(other))
    run(WRITER, other, "--key", KEY2, "--count", "400", "--checkpoint-every", "30", "--rotate-bytes", "20000")
    ofiles = sorted(os.path.join(os.path.dirname(other), f) for f in os.listdir(os.path.dirname(other))
                    if f.startswith("audit.log."))
    rc, out = verify(files[:1] + ofiles[1:2] + files[2:])
    ok(rc == 1 and re.search(re.escape(ofiles[1]) + r":1: checkpoint \(size \d+\) names key [0-9a-f]+, not the given key", out),
       "a file of another log swapped in: named", out)
    rc, out = verify([files[0] + "-missing"])
    ok(rc == 2 and "cannot read" in out, "a missing file: exit 2", out)
    # a rotated file cut at its end
    cut = os.path.join(tmp, "cut-rotated")
    shutil.copy(files[1], cut)
    cl = lines_of(cut)
    write_lines(cut, cl[:-3])
    rc, out = verify([files[0], cut] + files[2:])
    ok(rc == 1 and "does not end with a checkpoint of its full size" in out, "a rotated file cut at its end: named", out)

    rc, out = run(BMS, "audit", "verify", base, "--key", PUB2)
    ok(rc == 1 and "not the given key" in out, "verify with another key: exit 1", out)

    # 10. proofs
    proof = os.path.join(tmp, "proof.json")
    rc, out = run(BMS, "audit", "prove", base, "--seq", "77")
    open(proof, "w").write(out)
    ok(rc == 0 and json.loads(out)["proof"] == "inclusion", "prove prints an inclusion proof", out)
    rc, out = run(BMS, "audit", "verify-proof", proof, "--key", PUB, "--checkpoints", cps)
    ok(rc == 0 and out.startswith("OK: record 77 is in the log"), "the inclusion proof verifies without the log", out)
    p = json.loads(open(proof).read())
    p["hashes"][0] = p["hashes"][0][::-1]
    bad = os.path.join(tmp, "bad-proof.json")
    open(bad, "w").write(json.dumps(p))
    rc, out = run(BMS, "audit", "verify-proof", bad, "--key", PUB)
    ok(rc == 1 and "FAILED" in out, "an altered inclusion proof fails", out)
    claimed = os.path.join(tmp, "claimed")
    open(claimed, "wb").write(base_lines[find_record(base_lines, 77)].replace(b'"latency_us":', b'"latency_us":1') + b"\n")
    rc, out = run(BMS, "audit", "verify-proof", proof, "--key", PUB, "--record", claimed)
    ok(rc == 1 and out.startswith("NOT IN LOG"), "a record that differs from the logged one is shown not in the log", out)
    open(claimed, "wb").write(base_lines[find_record(base_lines, 77)] + b"\n")
    rc, out = run(BMS, "audit", "verify-proof", proof, "--key", PUB, "--record", claimed)
    ok(rc == 0, "the logged record itself is proven", out)
    sizes = [c["size"] for c in cp_objs]
    rc, out = run(BMS, "audit", "prove", base, "--from", str(sizes[1]), "--to", str(sizes[-1]))
    open(proof, "w").write(out)
    rc2, out2 = run(BMS, "audit", "verify-proof", proof, "--key", PUB)
    ok(rc == 0 and rc2 == 0 and "extends the log at tree size" in out2, "a consistency proof between two checkpoints verifies", out + out2)
    p = json.loads(out)
    p["hashes"][-1] = "00" * 32
    open(bad, "w").write(json.dumps(p))
    rc, out = run(BMS, "audit", "verify-proof", bad, "--key", PUB)
    ok(rc == 1 and "FAILED" in out, "an altered consistency proof fails", out)
    rc, out = run(BMS, "audit", "verify-proof", proof, "--key", PUB2)
    ok(rc == 1 and "not the given key" in out, "a proof checked with another key fails", out)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

sys.exit(tap.done())
