#!/usr/bin/env python3
"""Hostile peers against a live guard, on the plain legacy listener and on TLS: each peer
behaviour (close, reset with SO_LINGER 0, half-close, stop reading, garbage) at each point of a
session (handshake, pipelined requests beyond requests-in-flight, answers in flight, 0B pending
behind a silent device, SIGTERM drain). After each: the guard is alive and serving, and every
decision recorded `pending` has its `result` record. Includes the exact case of issue 11: more
reads than requests-in-flight in one write, then close (a SIGPIPE killed the guard). Prints TAP."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import hostile as h  # noqa: E402
from hostile import ok, Peer, read_req, SILENT, SLOW, LATE  # noqa: E402

GARBAGE = b"\x00\x01\x00\x01\x00\x06\x01\x03\x00\x05\x00\x01"  # protocol id 1: cannot be framed


def after(g, what, tls):
    """The guard survived, serves both listeners, and left no decision without its result."""
    alive = g.alive()
    ok(alive, "%s: the guard is alive" % what, g.log()[-1500:])
    if not alive:
        return False
    ok(g.serving(tls) and g.serving(not tls), "%s: the guard still serves plain and TLS clients" % what)
    u = g.wait_resolved()
    ok(not u, "%s: every pending decision has a result record" % what, "unresolved seq: %s" % u)
    return True


def by_kind(g, kind, since):
    return [r for r in g.records()[since:] if r.get("kind") == kind]


def handshake_cases(g):
    # TLS: mid-handshake; plain: right after connect (its "handshake" is the accept)
    for tls in (False, True):
        tr = "tls" if tls else "plain"
        for how in ("close", "reset", "half-close", "garbage"):
            p = Peer(g, tls, handshake=False)
            if tls:
                p.obj_hello = None
                try:
                    p.obj.do_handshake()
                except Exception:
                    pass
                p.push()  # the ClientHello, then the peer misbehaves
            if how == "close":
                p.close()
            elif how == "reset":
                p.reset()
            elif how == "half-close":
                p.half_close()
                ok(p.closed_within(4.0 if tls else 2.0) if tls else True,
                   "%s handshake, half-close: the guard ends the session" % tr)
                p.close()
            else:
                p.sock.sendall(GARBAGE * 4)
                ok(p.closed_within(4.0), "%s handshake, garbage: the guard closes" % tr)
                p.close()
            if not after(g, "%s handshake, %s" % (tr, how), tls):
                return False
        # stop reading during the handshake: the handshake timeout (2 s here) refuses it
        if tls:
            p = Peer(g, tls, handshake=False)
            try:
                p.obj.do_handshake()
            except Exception:
                pass
            p.push()
            time.sleep(2.3)
            recs = [r for r in g.records() if r.get("kind") == "conn_refused"]
            ok(any("handshake timeout" in r.get("detail", "") for r in recs),
               "tls handshake, stop reading: refused by the handshake timeout (audited)", recs[-3:])
            p.close()
            if not after(g, "tls handshake, stop reading", tls):
                return False
    return True


def pipelined_cases(g):
    for tls in (False, True):
        tr = "tls" if tls else "plain"
        ten = b"".join(read_req(100 + i, 10 + i) for i in range(10))
        # the exact case of issue 11: more reads than requests-in-flight (2) in one write, then close
        for how in ("close", "reset"):
            p = Peer(g, tls)
            p.send(ten)
            p.close() if how == "close" else p.reset()
            time.sleep(0.3)
            if not after(g, "%s: 10 pipelined reads (requests-in-flight 2), then %s" % (tr, how), tls):
                return False
        # half-close: every answer still comes, then the guard closes
        p = Peer(g, tls)
        p.send(ten)
        p.half_close()
        a = p.answers(10, 4.0)
        want = {100 + i: ("ok", 10 + i) for i in range(10)}
        ok(a == want, "%s: 10 pipelined reads then half-close: all 10 answered" % tr, "got %s" % a)
        ok(p.closed_within(2.0), "%s: then the guard closes the half-closed session" % tr)
        p.close()
        if not after(g, "%s: pipelined, half-close" % tr, tls):
            return False
        # garbage right behind allowed requests: the decided ones are answered (and recorded)
        mark = len(g.records())
        p = Peer(g, tls)
        p.send(ten + GARBAGE)
        a = p.answers(10, 4.0)
        ok(a == want, "%s: 10 reads and a malformed frame in one write: the 10 decided are answered" % tr,
           "got %s" % a)
        ok(p.closed_within(2.0), "%s: then the guard closes (malformed frame)" % tr)
        p.close()
        bad = lambda r: r.get("kind") == "malformed"  # noqa: E731
        ok(any(bad(r) for r in g.wait_records(bad, mark)), "%s: the malformed frame is audited" % tr)
        if not after(g, "%s: pipelined, garbage behind" % tr, tls):
            return False
        # stop reading: a flood that is never read, the guard's output backs up; then reset
        p = Peer(g, tls, rcvbuf=4096)
        p.sock.setblocking(False)
        flood = p.wire(b"".join(read_req(i & 0xFFFF, 20) for i in range(6000)))
        sent, deadline = 0, time.time() + 1.5
        while sent < len(flood) and time.time() < deadline:
            try:
                sent += p.sock.send(flood[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.02)
        time.sleep(0.5)
        ok(g.alive(), "%s: a flood of reads that is never read: the guard is alive (sent %d bytes)" % (tr, sent))
        p.reset()
        time.sleep(0.3)
        if not after(g, "%s: flood never read, then reset" % tr, tls):
            return False
    return True


def inflight_cases(g, addr, label, want):
    """Two requests at the device (addr), then each behaviour."""
    for tls in (False, True):
        tr = "tls" if tls else "plain"
        two = read_req(1, addr) + read_req(2, addr)
        for how in ("close", "reset", "half-close", "stop-reading", "garbage"):
            mark = len(g.records())
            p = Peer(g, tls)
            me = "%s:%d" % p.sock.getsockname()
            p.send(two)
            time.sleep(0.1)  # at the device now
            if how == "close":
                p.close()
            elif how == "reset":
                p.reset()
            elif how == "half-close":
                p.half_close()
                a = p.answers(2, 3.0)
                ok(a == {1: want, 2: want}, "%s, %s, half-close: both answers still come" % (tr, label), a)
                ok(p.closed_within(2.0), "%s, %s, half-close: then the guard closes" % (tr, label))
                p.close()
            elif how == "stop-reading":
                time.sleep(1.0)
                p.close()
            else:
                p.send(GARBAGE)
                a = p.answers(2, 3.0)
                ok(a == {1: want, 2: want}, "%s, %s, garbage behind: both decided requests answered" % (tr, label), a)
                p.close()
            if not after(g, "%s, %s, %s" % (tr, label, how), tls):
                return False
            mine = {r["seq"] for r in by_kind(g, "decision", mark) if r.get("peer", {}).get("address") == me}
            res = [r for r in by_kind(g, "result", mark) if r["ref"] in mine]
            kind = "ok" if want[0] == "ok" else "timeout"
            ok(len(res) == 2 and all(r["result"] == kind for r in res),
               "%s, %s, %s: both results say what the device did (%s)" % (tr, label, how, kind), res)
            if how == "reset":
                # a reset peer is known to be gone; one that only closed is not, until a write fails
                gone = [r for r in res if r.get("detail", "").startswith("client gone")]
                ok(len(gone) == 2, "%s, %s, reset: recorded with detail 'client gone'" % (tr, label), res)
    return True


def watch_case(g):
    """Requests-in-flight full behind a silent device, so the guard does not read the session;
    the peer resets: the guard sees it before the 0B is due (its timer polls such a session)."""
    for tls in (False, True):
        tr = "tls" if tls else "plain"
        mark = len(g.records())
        p = Peer(g, tls)
        p.send(read_req(1, SILENT) + read_req(2, SILENT) + read_req(3, SILENT))
        time.sleep(0.05)
        t0 = time.time()
        p.reset()
        deadline = t0 + 2
        closed = []
        while time.time() < deadline and not closed:
            closed = [r for r in by_kind(g, "conn_closed", mark) if "not being read" in r.get("detail", "")]
            time.sleep(0.02)
        ok(closed and time.time() - t0 < 0.45,
           "%s: a reset of a session not being read is seen before its 0B is due (%.2f s)" % (tr, time.time() - t0),
           closed)
        if not after(g, "%s: reset while not read" % tr, tls):
            return False
    return True


def drain_case(site):
    """SIGTERM with requests at the device: those answered within drain-timeout are answered; the
    deadline cuts a silent one (0B, result timeout 'drain deadline'); peers that close or reset
    meanwhile are recorded 'client gone'; the guard exits 0 and leaves nothing pending."""
    g = site.guard("drain", device="connections 4\n  max-in-flight 8\n  response-timeout 5s",
                   limits="requests-in-flight 4\n  drain-timeout 1500ms")
    peers = {}
    for tls in (False, True):
        tr = "tls" if tls else "plain"
        a = Peer(g, tls)
        a.send(read_req(1, SLOW))           # answered within the drain
        b = Peer(g, tls)
        b.send(read_req(2, SILENT))         # cut by the drain deadline
        c = Peer(g, tls)
        c.send(read_req(3, SLOW))           # resets during the drain
        d = Peer(g, tls)
        d.send(read_req(4, LATE))           # closes during the drain
        e = Peer(g, tls)
        e.send(read_req(5, LATE))           # half-closes during the drain
        peers[tr] = (a, b, c, d, e)
    time.sleep(0.1)
    g.proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    for tr, (a, b, c, d, e) in peers.items():
        c.reset()
        d.close()
        e.half_close()
    for tr, (a, b, c, d, e) in peers.items():
        ok(a.answers(1, 3.0) == {1: ("ok", SLOW)}, "%s, drain: a request answered within drain-timeout is answered" % tr)
        ok(e.answers(1, 3.0) == {5: ("ok", LATE)}, "%s, drain: a half-closed peer still gets its answer" % tr)
        ok(b.answers(1, 3.0) == {2: ("exc", 0x0B)}, "%s, drain: the deadline cuts a request at the device: 0B" % tr)
        for p in (a, b, e):
            p.close()
    try:
        rc = g.proc.wait(6)
    except Exception:
        rc = None
    ok(rc == 0, "drain: the guard exits 0 (not killed by a signal)", "exit %s\n%s" % (rc, g.log()[-1500:]))
    recs = g.records()
    u = g.unresolved(recs)
    ok(not u, "drain: every pending decision has a result record", "unresolved %s" % u)
    results = [r for r in recs if r.get("kind") == "result"]
    cut = [r for r in results if "drain deadline" in r.get("detail", "")]
    ok(len(cut) == 2 and all(r["result"] == "timeout" for r in cut),
       "drain: the two cut requests are recorded timeout, detail 'drain deadline'", cut)
    gone = [r for r in results if r.get("detail", "").startswith("client gone")]
    ok(len(gone) == 2 and all(r["result"] == "ok" for r in gone),
       "drain: the two requests whose peers reset are recorded ok, 'client gone'", gone)
    r = os.system("%s audit verify %s --key %s >/dev/null 2>&1" % (h.BMS, g.audit, os.path.join(site.tmp, "audit.pub")))
    ok(r == 0, "drain: the audit log verifies")


def main():
    site = h.Site()
    try:
        g = site.guard("m", device="connections 2\n  max-in-flight 4\n  response-timeout 1s",
                       limits="requests-in-flight 2\n  handshake-timeout 2s\n  buffer-size 1k")
        # HOSTILE_SECTIONS=a,b runs only those (to see each fail on its own against old code)
        only = [x for x in os.environ.get("HOSTILE_SECTIONS", "").split(",") if x]
        sections = [
            ("handshake", lambda: handshake_cases(g)),
            ("pipelined", lambda: pipelined_cases(g)),
            ("inflight", lambda: inflight_cases(g, SLOW, "answers in flight", ("ok", SLOW))),
            ("silent", lambda: inflight_cases(g, SILENT, "0B pending (silent device)", ("exc", 0x0B))),
            ("watch", lambda: watch_case(g)),
        ]
        for name, run in sections:
            if (not only or name in only) and not run():
                break  # the guard died: the rest would only repeat it
        if not only or "drain" in only:
            drain_case(site)
    finally:
        site.cleanup()
    return h.done()


if __name__ == "__main__":
    sys.exit(main())
