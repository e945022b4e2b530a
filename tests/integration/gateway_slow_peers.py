#!/usr/bin/env python3
"""Time bounds a slow or silent peer must not stretch (issue 11):
 - one request a device never answers costs the controllers queued behind it one
   response-timeout, not two per queued request; a late answer to it is dropped, never taken for
   the next request's;
 - a frame trickled one byte at a time is cut by `frame-timeout` (plain and TLS), audited, while a
   frame split across two reads and a slow stream of whole frames are not;
 - the tunnel keeps retrying an unreachable guard for its whole `connect-timeout`.
Prints TAP."""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import hostile as h  # noqa: E402
from hostile import ok, Peer, read_req, SILENT, LATE  # noqa: E402


def timed_read(g, addr, tid, out, key):
    t0 = time.monotonic()
    p = Peer(g, False)
    p.send(read_req(tid, addr))
    a = p.answers(1, 5.0)
    out[key] = (time.monotonic() - t0, a.get(tid))
    p.close()


def silent_queue(site):
    # one device connection that answers one request at a time: the case of the issue
    g = site.guard("q", device="connections 1\n  max-in-flight 1\n  response-timeout 600ms")
    res = {}
    ths = [threading.Thread(target=timed_read, args=(g, SILENT, 1, res, "silent"))]
    ths[0].start()
    time.sleep(0.1)
    for i, reg in enumerate((11, 12, 13)):
        t = threading.Thread(target=timed_read, args=(g, reg, 10 + i, res, reg))
        t.start()
        ths.append(t)
    for t in ths:
        t.join()
    ok(res["silent"][1] == ("exc", 0x0B), "the silent request gets 0B", res)
    worst = max(res[r][0] for r in (11, 12, 13))
    ok(all(res[r][1] == ("ok", r) for r in (11, 12, 13)), "the three queued behind it are answered right", res)
    # they waited for the silent one's 600 ms, not 1.2 s, 2.4 s, 3.6 s
    ok(worst < 0.9, "queued behind a silent request: the last answer after %.2f s (< 0.9 s; timeout 0.6 s)" % worst, res)
    # a late answer (after the timeout) is dropped; the next request gets its own answer
    res = {}
    a = threading.Thread(target=timed_read, args=(g, LATE, 2, res, "late"))
    a.start()
    time.sleep(0.1)
    b = threading.Thread(target=timed_read, args=(g, 21, 3, res, 21))
    b.start()
    a.join()
    b.join()
    time.sleep(h.LATE_S - 0.6 + 0.1)  # the late answer has come by now
    timed_read(g, 22, 4, res, 22)
    ok(res["late"][1] == ("exc", 0x0B), "a request answered after response-timeout gets 0B", res)
    ok(res[21][1] == ("ok", 21) and res[22][1] == ("ok", 22),
       "the requests after it get their own answers, never the late one", res)
    ok("late answer" in g.log(), "the guard logs the late answer it dropped")
    ok(g.alive() and not g.wait_resolved(), "every pending decision has a result record", g.unresolved())


def trickle(p, data, every):
    for i in range(len(data)):
        try:
            p.sock.sendall(data[i:i + 1])
        except OSError:
            return
        time.sleep(every)


def frame_timeout(site):
    g = site.guard("f", limits="frame-timeout 1s")
    for tls in (False, True):
        tr = "tls" if tls else "plain"
        mark = len(g.records())
        p = Peer(g, tls)
        data = p.wire(read_req(1, 5))  # a TLS record, for TLS: cut inside the record
        t0 = time.monotonic()
        th = threading.Thread(target=trickle, args=(p, data, 0.3), daemon=True)
        th.start()
        closed = p.closed_within(5.0)
        took = time.monotonic() - t0
        ok(closed and 0.9 < took < 2.0, "%s: a frame trickled a byte every 0.3 s is cut after %.2f s (frame-timeout 1s)"
           % (tr, took))
        cut = lambda r: r.get("kind") == "conn_closed" and "frame-timeout" in r.get("detail", "")  # noqa: E731
        recs = [r for r in g.wait_records(cut, mark) if r.get("kind") == "conn_closed"]
        ok(any(cut(r) for r in recs), "%s: the cut is audited" % tr, recs)
        p.close()
        # negative: a frame split across two writes 0.5 s apart, six times over 3 s, is served
        p = Peer(g, tls)
        good = 0
        for i in range(6):
            d = p.wire(read_req(50 + i, 30 + i))
            p.sock.sendall(d[:len(d) // 2])
            time.sleep(0.5)
            p.sock.sendall(d[len(d) // 2:])
            good += p.answers(1, 2.0).get(50 + i) == ("ok", 30 + i)
        ok(good == 6, "%s: frames each split across 0.5 s, for 3 s in all: all answered (%d/6)" % (tr, good))
        p.close()
    ok(g.alive() and g.serving(False) and g.serving(True), "the guard serves after the trickles")
    # the keyword is checked
    bad = os.path.join(site.tmp, "bad.conf")
    with open(g.conf) as f, open(bad, "w") as o:
        o.write(f.read().replace("frame-timeout 1s", "frame-timeout 0s"))
    r = subprocess.run([h.BMS, "guard", "-n", "-c", bad], capture_output=True, text=True)
    ok(r.returncode != 0 and "frame-timeout: '0s' must be at least 1ms" in r.stderr + r.stdout,
       "frame-timeout 0s is refused with file:line", r.stderr + r.stdout)


def tunnel_timeout(site):
    dead = h.free_port()  # nothing listens there
    port = h.free_port()
    conf = os.path.join(site.tmp, "t.conf")
    with open(conf, "w") as f:
        f.write("listen 127.0.0.1:%d\nguard 127.0.0.1:%d\ncertificate %s/issued/operator1.crt\n"
                "key %s/issued/operator1.key\nca %s/ca.crt\nconnect-timeout 5s\n" %
                (port, dead, site.pki, site.pki, site.pki))
    logf = os.path.join(site.tmp, "t.log")
    proc = subprocess.Popen([h.BMS, "tunnel", "-c", conf], stdout=open(logf, "w"), stderr=subprocess.STDOUT)
    site.procs.append(proc)
    deadline = time.time() + 10
    while time.time() < deadline and "ready" not in open(logf).read():
        time.sleep(0.02)
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    s.settimeout(10)
    try:
        s.recv(10)
    except OSError:
        pass
    took = time.monotonic() - t0
    s.close()
    ok(4.8 < took < 6.0, "tunnel: an unreachable guard is retried for the whole connect-timeout 5s (gave up after %.2f s)"
       % took, open(logf).read()[-800:])
    proc.terminate()
    proc.wait(5)


def start_tunnel(site, name, guard_port, extra=""):
    port = h.free_port()
    conf = os.path.join(site.tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("listen 127.0.0.1:%d\nguard 127.0.0.1:%d\ncertificate %s/issued/operator1.crt\n"
                "key %s/issued/operator1.key\nca %s/ca.crt\n%s\n" %
                (port, guard_port, site.pki, site.pki, site.pki, extra))
    logf = os.path.join(site.tmp, name + ".log")
    proc = subprocess.Popen([h.BMS, "tunnel", "-c", conf], stdout=open(logf, "w"), stderr=subprocess.STDOUT)
    site.procs.append(proc)
    deadline = time.time() + 10
    while time.time() < deadline and "ready" not in open(logf).read():
        time.sleep(0.02)
    return proc, port, logf


def tunnel_half_close(site):
    """A head-end that half-closes through the tunnel still gets every answer (the tunnel passes
    the half-close on as TLS close_notify; the guard answers, then closes)."""
    g = site.guard("th", device="response-timeout 2s")
    proc, port, logf = start_tunnel(site, "th-t", g.tls)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(read_req(1, 41) + read_req(2, 42) + read_req(3, h.SLOW))
    s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    buf = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            buf += b
    except OSError:
        pass
    s.close()
    ok(len(buf) == 33 and buf[9:11] == b"\x00\x29" and buf[20:22] == b"\x00\x2a",
       "tunnel: a head-end that half-closes after 3 reads gets all 3 answers, then the close", buf.hex())
    ok(proc.poll() is None and g.alive() and not g.wait_resolved(), "tunnel and guard alive, nothing left pending")
    proc.terminate()
    proc.wait(5)


def main():
    site = h.Site()
    try:
        only = [x for x in os.environ.get("HOSTILE_SECTIONS", "").split(",") if x]
        for name, run in (("queue", silent_queue), ("frame", frame_timeout), ("tunnel", tunnel_timeout),
                          ("tunnel-half-close", tunnel_half_close)):
            if not only or name in only:
                run(site)
    finally:
        site.cleanup()
    return h.done()


if __name__ == "__main__":
    sys.exit(main())
