"""tests/integration/lib/tls_read.py: one Modbus/TCP Security read (FC 3, unit 1, holding 100,
one register) over mutual TLS with the given certificate. Prints one line:
  ok VALUE | exception 0xNN | refused: WHY | closed
usage: tls_read.py PORT CAFILE CERT KEY
"""
import socket
import ssl
import struct
import sys

port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
ctx.load_cert_chain(cert, key)
try:
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1")
    s.sendall(struct.pack(">HHHBBHH", 7, 0, 6, 1, 3, 100, 1))
    ans = b""
    while len(ans) < 9:
        b = s.recv(260)
        if not b:
            break
        ans += b
except (ssl.SSLError, OSError) as e:
    # in TLS 1.3 a refused client certificate shows up at the first read
    print("refused: %s" % e)
    sys.exit(0)
if len(ans) < 9:
    print("closed")
elif ans[7] & 0x80:
    print("exception 0x%02x" % ans[8])
else:
    print("ok %d" % struct.unpack(">H", ans[9:11])[0])
