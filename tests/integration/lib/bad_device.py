#!/usr/bin/python3
# tests/integration/lib/bad_device.py: a Modbus/TCP device that answers some requests wrongly,
# for gateway_answers.sh. Each answer is chosen by the request's register address:
#   FC 3, address 100: correct (one register, 42)
#   FC 3, address 101: byte count 127 with one byte of data
#   FC 3, address 102: 252 bytes of PDU for a one-register read (byte count 250)
#   FC 3, address 103: exception with code 0x55, which no specification defines
#   FC 6, address 100: a wrong echo (the value written plus one)
#   FC 6, address 101: the correct echo
#   anything else: exception 01
# Usage: bad_device.py READY_FILE  (listens on 127.0.0.1, a free port; writes "127.0.0.1:PORT").
import socket, struct, sys, threading

def answer(tid, unit, pdu):
    fc = pdu[0]
    addr, value = struct.unpack('>HH', pdu[1:5]) if len(pdu) >= 5 else (None, None)
    if fc == 3 and addr == 100:
        body = bytes([3, 2, 0, 42])
    elif fc == 3 and addr == 101:
        body = bytes([3, 127, 0])
    elif fc == 3 and addr == 102:
        body = bytes([3, 250]) + bytes(range(250))
    elif fc == 3 and addr == 103:
        body = bytes([0x83, 0x55])
    elif fc == 6 and addr == 100:
        body = bytes([6]) + struct.pack('>HH', addr, (value + 1) & 0xFFFF)
    elif fc == 6 and addr == 101:
        body = bytes(pdu)
    else:
        body = bytes([fc | 0x80, 1])
    return struct.pack('>HHHB', tid, 0, len(body) + 1, unit) + body

def serve(conn):
    buf = b''
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while len(buf) >= 7:
                tid, proto, length, unit = struct.unpack('>HHHB', buf[:7])
                if len(buf) < 6 + length:
                    break
                pdu, buf = buf[7:6 + length], buf[6 + length:]
                conn.sendall(answer(tid, unit, pdu))

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 0))
s.listen(8)
with open(sys.argv[1] + '.tmp', 'w') as f:
    f.write('127.0.0.1:%d\n' % s.getsockname()[1])
import os
os.rename(sys.argv[1] + '.tmp', sys.argv[1])
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
