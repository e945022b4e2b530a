"""tests/integration/lib/hostile.py: a site (PKI, audit key, a scripted Modbus device, guard)
for the hostile-peer tests, and raw peers that close, reset, half-close, stop reading or send
garbage at any point of a session, over plain TCP or TLS (an SSLObject over memory BIOs, so that
the test decides what goes on the wire and when: half-close at the TCP level, records trickled
byte by byte).

The device answers FC 3 reads at once with the register's own address as its value, except:
  register 999: never answered (a silent request)
  register 998: answered after LATE_S (a late answer)
  register 997: answered after SLOW_S (an answer in flight for a while)
"""
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

from tap import ok, done  # noqa: F401 (re-exported for the tests that import hostile)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BMS = os.environ.get("BMSGATE", os.path.join(ROOT, "build", "bmsgate"))
if not os.path.isabs(BMS):
    BMS = os.path.join(ROOT, BMS)

SILENT, LATE, SLOW = 999, 998, 997
LATE_S = 0.9
SLOW_S = 0.4



def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def read_req(tid, addr, unit=1, qty=1):
    return struct.pack(">HHHBBHH", tid, 0, 6, unit, 3, addr, qty)


class Device:
    """A scripted Modbus/TCP device (see the module comment). Counts what it answered."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.stop = False
        self.seen = []  # (time, addr)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def answer(self, c, lock, tid, unit, addr):
        val = addr & 0xFFFF
        pdu = struct.pack(">BBH", 3, 2, val)
        try:
            with lock:
                c.sendall(struct.pack(">HHHB", tid, 0, 1 + len(pdu), unit) + pdu)
        except OSError:
            pass

    def serve(self, c):
        lock = threading.Lock()
        buf = b""
        while True:
            try:
                b = c.recv(4096)
            except OSError:
                return
            if not b:
                c.close()
                return
            buf += b
            while len(buf) >= 6:
                ln = struct.unpack(">H", buf[4:6])[0]
                if len(buf) < 6 + ln:
                    break
                f, buf = buf[:6 + ln], buf[6 + ln:]
                tid, _, _, unit, fc = struct.unpack(">HHHBB", f[:8])
                addr = struct.unpack(">H", f[8:10])[0] if len(f) >= 10 else 0
                self.seen.append((time.monotonic(), addr))
                if addr == SILENT:
                    continue
                if addr in (LATE, SLOW):
                    threading.Timer(LATE_S if addr == LATE else SLOW_S, self.answer,
                                    (c, lock, tid, unit, addr)).start()
                    continue
                self.answer(c, lock, tid, unit, addr)


class Site:
    """PKI, audit key, device, policy; guards started from it (see guard())."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="bms-hostile-")
        self.pki = os.path.join(self.tmp, "pki")
        self.procs = []
        run = lambda *a: subprocess.run([BMS] + list(a), check=True, capture_output=True)
        run("pki", "init", self.pki, "--name", "Hostile Test CA")
        run("pki", "issue", self.pki, "--guard", "guard", "--ip", "127.0.0.1")
        run("pki", "issue", self.pki, "--controller", "operator1", "--role", "operator")
        run("audit", "keygen", os.path.join(self.tmp, "audit.key"), os.path.join(self.tmp, "audit.pub"))
        self.dev = Device()
        pol = os.path.join(self.tmp, "site.policy")
        with open(pol, "w") as f:
            f.write("device dev modbus 127.0.0.1 port %d unit 1\n"
                    "role operators {\n  certificate-role operator\n}\n"
                    "role plant_lan {\n  address 127.0.0.0/8\n}\n"
                    "allow operators read dev\nallow plant_lan read dev\n" % self.dev.port)
        os.chmod(pol, 0o600)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.pki + "/ca.crt")
        ctx.load_cert_chain(self.pki + "/issued/operator1.crt", self.pki + "/issued/operator1.key")
        self.ctx = ctx

    def guard(self, name, device="", limits="", results="all"):
        """Writes NAME.conf and starts a guard; returns a Guard."""
        g = Guard(self, name)
        with open(g.conf, "w") as f:
            f.write("""node hostile-test
listen tls 127.0.0.1:%d
listen plain 127.0.0.1:%d allow 127.0.0.1
certificate %s/issued/guard.crt
key %s/issued/guard.key
ca %s/ca.crt
policy %s/site.policy
device dev {
  address 127.0.0.1:%d
  units 1
  %s
}
audit {
  file %s
  key %s/audit.key
  sync 2ms
  results %s
}
limits {
  %s
}
""" % (g.tls, g.plain, self.pki, self.pki, self.pki, self.tmp, self.dev.port, device, g.audit, self.tmp,
       results, limits))
        g.start()
        return g

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.dev.stop = True
        self.dev.ls.close()
        if os.environ.get("KEEP_TMP"):
            print("# kept " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Guard:
    def __init__(self, site, name):
        self.site = site
        self.name = name
        self.conf = os.path.join(site.tmp, name + ".conf")
        self.audit = os.path.join(site.tmp, name + ".audit.jsonl")
        self.logf = os.path.join(site.tmp, name + ".log")
        self.tls = free_port()
        self.plain = free_port()
        self.proc = None

    def start(self):
        log = open(self.logf, "w")
        self.proc = subprocess.Popen([BMS, "guard", "-c", self.conf], stdout=log, stderr=subprocess.STDOUT)
        self.site.procs.append(self.proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            with open(self.logf) as f:
                if f.read().rstrip().endswith(": ready"):
                    return
            time.sleep(0.02)
        raise RuntimeError("guard %s did not start: %s" % (self.name, open(self.logf).read()))

    def log(self):
        with open(self.logf) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def records(self):
        out = []
        try:
            with open(self.audit) as f:
                for line in f:
                    if line.endswith("\n") and line.startswith('{"seq"'):
                        out.append(json.loads(line))
        except FileNotFoundError:
            pass
        return out

    def wait_records(self, want, since=0, limit=3.0):
        """Records from index `since` on, once one satisfies want(record) or `limit` s have
        passed: a record is written by the audit writer after the socket it tells of closed."""
        deadline = time.time() + limit
        while True:
            recs = self.records()[since:]
            if any(want(r) for r in recs) or time.time() > deadline:
                return recs
            time.sleep(0.05)

    def unresolved(self, recs=None):
        """Decisions recorded `pending` that have no `result` record."""
        recs = self.records() if recs is None else recs
        done_refs = {r["ref"] for r in recs if r.get("kind") == "result"}
        return [r["seq"] for r in recs if r.get("kind") == "decision" and r.get("result") == "pending"
                and r["seq"] not in done_refs]

    def wait_resolved(self, limit=4.0):
        """Until every pending decision has its result (they arrive after the device or a timeout)."""
        deadline = time.time() + limit
        while True:
            u = self.unresolved()
            if not u or time.time() > deadline:
                return u
            time.sleep(0.05)

    def serving(self, tls):
        """A fresh client reads register 5 and gets 5."""
        try:
            c = Peer(self, tls)
            c.send(read_req(77, 5))
            a = c.answers(1, 3.0)
            c.close()
            return a.get(77) == ("ok", 5)
        except (OSError, ssl.SSLError) as e:
            return False


class Peer:
    """One raw client. tls: an SSLObject over memory BIOs on a plain socket."""

    def __init__(self, g, tls, rcvbuf=None, handshake=True):
        self.g = g
        self.tls = tls
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", g.tls if tls else g.plain))
        self.buf = b""
        self.eof = False
        if tls:
            self.inc, self.outg = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.obj = g.site.ctx.wrap_bio(self.inc, self.outg, server_hostname="127.0.0.1")
            if handshake:
                self.handshake()

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.push()
                return
            except ssl.SSLWantReadError:
                self.push()
                b = self.sock.recv(65536)
                if not b:
                    raise ConnectionError("eof in handshake")
                self.inc.write(b)

    def push(self):
        d = self.outg.read()
        if d:
            self.sock.sendall(d)

    def wire(self, data):
        """The bytes that carry `data` (TLS records for a TLS peer)."""
        if not self.tls:
            return data
        self.obj.write(data)
        return self.outg.read()

    def send(self, data):
        self.sock.sendall(self.wire(data))

    def recv_plain(self, timeout):
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return None
        if not b:
            self.eof = True
            return b""
        if not self.tls:
            return b
        self.inc.write(b)
        out = b""
        while True:
            try:
                out += self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.eof = True
                break
        return out

    def answers(self, count, limit):
        """Up to `count` answers within `limit` s: {tid: ("ok", value) | ("exc", code)}."""
        got = {}
        deadline = time.time() + limit
        while len(got) < count and time.time() < deadline and not self.eof:
            try:
                b = self.recv_plain(max(0.01, deadline - time.time()))
            except (OSError, ssl.SSLError):
                self.eof = True
                break
            if b is None:
                break
            self.buf += b
            while len(self.buf) >= 6:
                ln = struct.unpack(">H", self.buf[4:6])[0]
                if len(self.buf) < 6 + ln:
                    break
                f, self.buf = self.buf[:6 + ln], self.buf[6 + ln:]
                tid = struct.unpack(">H", f[:2])[0]
                if f[7] & 0x80:
                    got[tid] = ("exc", f[8])
                else:
                    got[tid] = ("ok", struct.unpack(">H", f[9:11])[0])
        return got

    def closed_within(self, limit):
        """True when the guard closes (EOF or reset) within `limit` s; reads and drops answers."""
        deadline = time.time() + limit
        while time.time() < deadline:
            try:
                b = self.recv_plain(0.1)
            except (OSError, ssl.SSLError):
                return True
            if b == b"" or self.eof:
                return True
        return False

    def half_close(self):
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()
