#!/usr/bin/python3
# tests/integration/lib/raw_client.py: sends one Modbus/TCP request and prints the answer ADU
# as hex ("timeout" or "closed" when there is none), so a test sees exactly the bytes a client
# gets, not what a client library makes of them.
# Usage: raw_client.py PORT TID UNIT HEXPDU
import socket, struct, sys
port, tid, unit, pdu = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), bytes.fromhex(sys.argv[4])
s = socket.create_connection(('127.0.0.1', port), timeout=5)
s.sendall(struct.pack('>HHHB', tid, 0, len(pdu) + 1, unit) + pdu)
buf = b''
try:
    while len(buf) < 6 or len(buf) < 6 + struct.unpack('>H', buf[4:6])[0]:
        d = s.recv(4096)
        if not d:
            print('closed', buf.hex())
            sys.exit(0)
        buf += d
except socket.timeout:
    print('timeout', buf.hex())
    sys.exit(0)
print(buf.hex())
