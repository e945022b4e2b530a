"""tests/integration/lib/gw_clients.py: Modbus/TCP Security clients for the gateway tests.

Run with Debian's python3 (python3-pymodbus). Prints one line per check: "PASS name" or
"FAIL name: detail"; the calling shell script turns them into TAP.

  gw_clients.py pymodbus-tls PORT PKI ROLECERT      allowed, denied, and the connection staying up
  gw_clients.py viewer PORT PKI CERT                a role that may read but not write
  gw_clients.py norole PORT PKI CERT                a certificate without the role extension
  gw_clients.py refused PORT CAFILE CERT|- KEY|- WHY   the guard must refuse the TLS session
  gw_clients.py malformed PORT PKI CERT             a malformed frame closes the connection
  gw_clients.py revoke-live PORT PKI CERT BMSGATE   revoking a connected controller closes it
  gw_clients.py pipelined PORT PKI CERT             many requests in one write, answered by transaction id
"""
import socket
import ssl
import struct
import subprocess
import sys
import time

from pymodbus.client import ModbusTlsClient
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.pdu import ExceptionResponse


def out(ok, name, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)


def context(ca, cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if cert != "-":
        ctx.load_cert_chain(cert, key)
    return ctx


def exc_code(rr):
    return rr.exception_code if isinstance(rr, ExceptionResponse) else None


class TlsClient(ModbusTlsClient):
    """pymodbus 3.0.0's recv() waits in select() on the raw socket, which cannot see bytes that
    OpenSSL has already decrypted: an answer that arrives in one TLS record (as any server sends
    it) is read as its first 8 bytes only. Read what the TLS layer holds before asking select."""

    def recv(self, size):
        if self.socket is not None and self.socket.pending():
            want = self.socket.pending() if size is None else min(size, self.socket.pending())
            return self.socket.recv(want)
        return super().recv(size)


def tls_client(port, pki, name):
    # Modbus/TCP Security carries the MBAP header inside TLS: pymodbus' own "TLS framer"
    # drops the header, so the socket framer is the standard one.
    ctx = context(pki + "/ca.crt", pki + "/issued/%s.crt" % name, pki + "/issued/%s.key" % name)
    c = TlsClient("127.0.0.1", port=port, sslctx=ctx, framer=ModbusSocketFramer,
                        server_hostname="127.0.0.1", timeout=5, retries=0)
    return c


def pymodbus_tls(port, pki, name):
    c = tls_client(port, pki, name)
    out(c.connect(), "pymodbus connects over TLS with a client certificate")
    rr = c.read_holding_registers(100, 2, slave=1)
    out(not rr.isError() and len(rr.registers) == 2, "pymodbus reads holding 100..101 (allowed)", rr)
    rr = c.write_register(100, 225, slave=1)
    out(not rr.isError(), "pymodbus writes 22.5 degC to the setpoint (in range: allowed)", rr)
    rr = c.write_register(100, 900, slave=1)
    out(exc_code(rr) == 1, "pymodbus writes 90.0 degC: exception 01 (out of range: denied)", rr)
    rr = c.read_holding_registers(100, 1, slave=1)
    out(not rr.isError() and rr.registers[0] == 225,
        "the connection stays up after a deny; the setpoint still reads 225", rr)
    rr = c.write_register(101, 99, slave=1)
    out(exc_code(rr) == 1, "pymodbus writes the fan speed: exception 01 (no rule allows it)", rr)
    rr = c.read_coils(0, 4, slave=1)
    out(not rr.isError(), "pymodbus reads coils (allowed: read on the device)", rr)
    rr = c.read_holding_registers(100, 1, slave=9)
    out(exc_code(rr) == 0x0A, "a unit with no device behind it: exception 0A", rr)
    rr = c.write_register(100, 900, slave=2)
    out(not rr.isError(), "monitor-mode device: a would-be deny passes", rr)
    c.close()


def viewer(port, pki, name):
    c = tls_client(port, pki, name)
    out(c.connect(), "viewer connects")
    rr = c.read_holding_registers(100, 1, slave=1)
    out(not rr.isError(), "viewer reads (allowed)", rr)
    rr = c.write_register(100, 200, slave=1)
    out(exc_code(rr) == 1, "viewer writes: exception 01", rr)
    c.close()


def norole(port, pki, name):
    c = tls_client(port, pki, name)
    out(c.connect(), "a certificate without a role connects (the TLS layer accepts it)")
    rr = c.read_holding_registers(100, 1, slave=1)
    out(exc_code(rr) == 1, "no role: even a read gets exception 01", rr)
    rr = c.read_holding_registers(100, 1, slave=1)
    out(exc_code(rr) == 1, "no role: the connection stays up and is denied again", rr)
    c.close()


def raw_tls(port, ctx):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")


def read_until_closed(s, limit=5.0):
    """Returns (bytes received, True if the peer closed or reset within the limit)."""
    got = b""
    deadline = time.time() + limit
    s.settimeout(0.2)
    while time.time() < deadline:
        try:
            b = s.recv(4096)
        except socket.timeout:
            continue
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError) as e:
            return got, True, str(e)
        if not b:
            return got, True, "eof"
        got += b
    return got, False, "still open"


def refused(port, ca, cert, key, why):
    ctx = context(ca, cert, key)
    req = struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 100, 1)
    try:
        s = raw_tls(port, ctx)
        # TLS 1.3: the server checks the client certificate after the client thinks it is done,
        # so the refusal shows up on the first read.
        s.sendall(req)
        got, closed, how = read_until_closed(s)
        out(closed and len(got) == 0, "%s: refused, no answer (%s)" % (why, how), got)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError) as e:
        out(True, "%s: refused during the handshake (%s)" % (why, e.__class__.__name__))


def malformed(port, pki, name):
    ctx = context(pki + "/ca.crt", pki + "/issued/%s.crt" % name, pki + "/issued/%s.key" % name)
    s = raw_tls(port, ctx)
    # read holding registers with quantity 0: framed fine, but 1..125 is the law
    s.sendall(struct.pack(">HHHBBHH", 7, 0, 6, 1, 3, 100, 0))
    got, closed, how = read_until_closed(s)
    out(closed and len(got) == 0, "quantity 0: the guard closes the connection without forwarding", got)
    s = raw_tls(port, ctx)
    # protocol id 1: not Modbus at all
    s.sendall(struct.pack(">HHHBBHH", 8, 1, 6, 1, 3, 100, 1))
    got, closed, how = read_until_closed(s)
    out(closed and len(got) == 0, "protocol id 1: the guard closes the connection", got)


def revoke_live(port, pki, name, bmsgate):
    c = tls_client(port, pki, name)
    out(c.connect(), "a controller connects before its certificate is revoked")
    rr = c.read_holding_registers(100, 1, slave=1)
    out(not rr.isError(), "it reads while still valid", rr)
    r = subprocess.run([bmsgate, "pki", "revoke", pki, name, "--reason", "key-compromise"],
                       capture_output=True, text=True)
    out(r.returncode == 0, "bmsgate pki revoke republishes the CRL", r.stderr)
    # the guard notices the new CRL file by itself and closes the connection
    sock = c.socket
    got, closed, how = read_until_closed(sock, limit=8.0) if sock else (b"", True, "closed")
    out(closed, "the guard closes the revoked controller's connection (%s)" % how, got)
    c.close()


def pipelined(port, pki, name):
    ctx = context(pki + "/ca.crt", pki + "/issued/%s.crt" % name, pki + "/issued/%s.key" % name)
    s = raw_tls(port, ctx)
    reqs = b""
    want = {}
    for tid in range(100, 110):
        if tid % 3 == 0:
            reqs += struct.pack(">HHHBBHH", tid, 0, 6, 1, 6, 100, 900)  # denied write
            want[tid] = "deny"
        else:
            reqs += struct.pack(">HHHBBHH", tid, 0, 6, 1, 3, 100, 1)  # allowed read
            want[tid] = "allow"
    s.sendall(reqs)
    s.settimeout(5)
    buf = b""
    seen = {}
    deadline = time.time() + 5
    while len(seen) < len(want) and time.time() < deadline:
        try:
            b = s.recv(4096)
        except socket.timeout:
            break
        if not b:
            break
        buf += b
        while len(buf) >= 7:
            tid, pid, ln = struct.unpack(">HHH", buf[:6])
            if len(buf) < 6 + ln:
                break
            pdu = buf[7:6 + ln]
            buf = buf[6 + ln:]
            seen[tid] = "deny" if pdu[0] == 0x86 and pdu[1] == 1 else "allow" if pdu[0] == 3 else "?%s" % pdu.hex()
    out(seen == want, "10 pipelined requests in one write: each answered under its own transaction id",
        "want %s got %s" % (want, seen))
    s.close()


def main():
    mode = sys.argv[1]
    port = int(sys.argv[2])
    if mode == "pymodbus-tls":
        pymodbus_tls(port, sys.argv[3], sys.argv[4])
    elif mode == "viewer":
        viewer(port, sys.argv[3], sys.argv[4])
    elif mode == "norole":
        norole(port, sys.argv[3], sys.argv[4])
    elif mode == "refused":
        refused(port, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
    elif mode == "malformed":
        malformed(port, sys.argv[3], sys.argv[4])
    elif mode == "revoke-live":
        revoke_live(port, sys.argv[3], sys.argv[4], sys.argv[5])
    elif mode == "pipelined":
        pipelined(port, sys.argv[3], sys.argv[4])
    else:
        print("FAIL usage: unknown mode " + mode)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
