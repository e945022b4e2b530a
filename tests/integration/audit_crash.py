#!/usr/bin/env python3
"""Crash test: a real audit writer (build/tools/audit_writer, the gateway's
API) is killed with SIGKILL at random moments, 50 times, on the same log
(with and without rotation, sync always and every 10 ms, 1..32 requests in
flight, records handed to the writer thread or written by the caller's
thread through audit_flush as the guard does). Every time: the log verifies up to its last whole record, every
record acknowledged durable before the kill is in it, and a restarted writer
cuts a torn line (and records that it did), continues the same tree, and
after a clean close the log verifies with everything signed. Prints TAP."""
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from tap import ok  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BMS = os.path.join(ROOT, "build", "bmsgate")
WRITER = os.path.join(ROOT, "build", "tools", "audit_writer")
ROUNDS = int(os.environ.get("AUDIT_CRASH_ROUNDS", "50"))
DEADLINE = time.monotonic() + float(os.environ.get("AUDIT_CRASH_SECONDS", "60"))



def files_of(log):
    d, b = os.path.dirname(log), os.path.basename(log)
    rot = sorted(f for f in os.listdir(d) if re.fullmatch(re.escape(b) + r"\.\d{12,}", f))
    out = [os.path.join(d, f) for f in rot]
    if os.path.exists(log):
        out.append(log)
    return out


def max_seq(files):
    m = -1
    for f in files:
        with open(f, "rb") as fh:
            for line in fh:
                if line.endswith(b"\n") and line.startswith(b'{"seq":'):
                    m = max(m, int(line[7:line.index(b",")]))
    return m


def verify(files):
    p = subprocess.run([BMS, "audit", "verify", *files, "--key", PUB], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


rng = random.Random(int(os.environ.get("AUDIT_CRASH_SEED", str(int(time.time())))))
tmp = tempfile.mkdtemp(prefix="bms-audit-crash-")
try:
    KEY, PUB = os.path.join(tmp, "k"), os.path.join(tmp, "k.pub")
    subprocess.run([BMS, "audit", "keygen", KEY, PUB], check=True, capture_output=True)
    logs = [os.path.join(tmp, "plain", "audit.log"), os.path.join(tmp, "rotating", "audit.log")]
    for lg in logs:
        os.makedirs(os.path.dirname(lg))
    rounds = 0
    problems = []
    recovered_seen = 0
    torn_seen = 0
    acked_checked = 0
    for r in range(ROUNDS):
        if time.monotonic() > DEADLINE:
            break
        log = logs[r % 2]
        args = [WRITER, log, "--key", KEY, "--count", "0", "--print-durable",
                "--inflight", str(rng.choice([1, 4, 16, 32])),
                "--checkpoint-every", str(rng.choice([5, 17, 50])),
                "--sync", rng.choice(["always", "10"]), "--seed", str(r)]
        if r % 4 >= 2:
            # as the guard's loop does: queue a round, one audit_flush (with "10",
            # this thread writes whenever the writer thread sleeps)
            args.append("--flush")
        if log == logs[1]:
            args += ["--rotate-bytes", str(rng.choice([8000, 30000]))]
        before = sum(os.path.getsize(f) for f in files_of(log))
        target = before + rng.randint(200, 60000)
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # wait on the file until it has grown to a random size, then kill at once
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            try:
                if sum(os.path.getsize(f) for f in files_of(log)) >= target:
                    break
            except FileNotFoundError:
                pass  # between rotation steps
            if proc.poll() is not None:
                break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        acked = [int(x) for x in re.findall(rb"^durable (\d+)$", out, re.M)]
        files = files_of(log)
        rc, vout = verify(files)
        if rc != 0:
            problems.append(f"round {r}: after the kill, verify exit {rc}:\n{vout}\n{err.decode()}")
            break
        if "torn" in vout:
            torn_seen += 1
        if acked:
            acked_checked += 1
            if max_seq(files) < acked[-1]:
                problems.append(f"round {r}: seq {acked[-1]} was acknowledged durable but the log ends at {max_seq(files)}")
                break
        # restart: recover, continue the tree, close cleanly
        last = max_seq(files)
        p = subprocess.run([WRITER, log, "--key", KEY, "--count", "3", "--seed", str(1000 + r)] +
                           (["--rotate-bytes", "30000"] if log == logs[1] else []),
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            problems.append(f"round {r}: restart failed ({p.returncode}): {p.stderr}")
            break
        if "cut a torn last line" in p.stderr:
            recovered_seen += 1
        files = files_of(log)
        rc, vout = verify(files)
        if rc != 0 or "warning" in vout:
            problems.append(f"round {r}: after restart and clean close, verify exit {rc}:\n{vout}")
            break
        if max_seq(files) <= last:
            problems.append(f"round {r}: the restarted writer did not continue the sequence ({last} -> {max_seq(files)})")
            break
        rounds += 1
    ok(not problems, f"{rounds} SIGKILL rounds: every log verified after the kill and after restart", "\n".join(problems))
    ok(rounds >= min(ROUNDS, 20), f"at least {min(ROUNDS, 20)} rounds ran within the time bound ({rounds})")
    ok(acked_checked > 0, f"acknowledged-durable records survived the kill ({acked_checked} rounds checked)")
    # a torn line seen by verify after a kill must have been cut and recorded by the restart
    ok(recovered_seen == torn_seen, f"each torn tail ({torn_seen}) was cut and recorded on restart ({recovered_seen})")
    recs = 0
    for lg in logs:
        for f in files_of(lg):
            recs += open(f, "rb").read().count(b'"kind":"log_recovered"')
    ok(recs == recovered_seen, f"log_recovered records in the logs ({recs}) match the cuts ({recovered_seen})")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

sys.exit(tap.done())
