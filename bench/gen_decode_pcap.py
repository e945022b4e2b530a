#!/usr/bin/env python3
"""bench/gen_decode_pcap.py OUT [PACKETS]: a large, realistic Modbus/TCP + BACnet/IP capture for
bench_decode (Python stdlib only; deterministic). Modbus: many client connections to port 502 with
handshake, FC 3/4/1/16/6 request-response pairs (some pipelined), bare ACKs and FIN; connections
interleave 32 at a time. BACnet/IP: ReadProperty and its ComplexACK, WriteProperty with priority,
Who-Is/I-Am. Packets are well-formed; checksums are left zero (no reader checks them)."""
import random
import struct
import sys

T0 = 1700000000


def main():
    out = sys.argv[1]
    target = int(sys.argv[2]) if len(sys.argv) > 2 else 350000
    rnd = random.Random(502)
    frames = []
    eth_hdr = bytes.fromhex("020000000002020000000001") + b"\x08\x00"

    def ip4(src, dst, proto, payload):
        return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0, src, dst) + payload

    def tcp(sp, dp, seq, ack, flags, data=b""):
        return struct.pack("!HHIIHHHH", sp, dp, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (5 << 12) | flags, 65535, 0, 0) + data

    def udp(sp, dp, data):
        return struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data

    server = bytes([10, 0, 0, 2])

    def modbus_txn(tid, unit):
        fc = rnd.choice((3, 3, 3, 4, 4, 1, 16, 6))
        addr = rnd.randrange(0, 1000)
        if fc in (3, 4):
            q = rnd.randrange(1, 40)
            req = struct.pack("!BHH", fc, addr, q)
            rsp = struct.pack("!BB", fc, 2 * q) + bytes(2 * q)
        elif fc == 1:
            q = rnd.randrange(1, 200)
            req = struct.pack("!BHH", fc, addr, q)
            n = (q + 7) // 8
            rsp = struct.pack("!BB", fc, n) + bytes(n)
        elif fc == 16:
            q = rnd.randrange(1, 20)
            req = struct.pack("!BHHB", fc, addr, q, 2 * q) + bytes(2 * q)
            rsp = struct.pack("!BHH", fc, addr, q)
        else:
            req = struct.pack("!BHH", fc, addr, rnd.randrange(0, 65536))
            rsp = req
        mk = lambda pdu: struct.pack("!HHHB", tid, 0, len(pdu) + 1, unit) + pdu
        return mk(req), mk(rsp)

    class Flow:
        def __init__(self, k):
            self.c = bytes([10, 1, (k >> 8) & 255, k & 255])
            self.port = 20000 + (k % 40000)
            self.cs, self.ss = rnd.randrange(1 << 32), rnd.randrange(1 << 32)
            self.left = rnd.randrange(20, 80)
            self.tid = rnd.randrange(65536)
            self.unit = rnd.randrange(1, 248)
            self.state = 0

        def step(self, emit):
            if self.state == 0:
                emit(ip4(self.c, server, 6, tcp(self.port, 502, self.cs, 0, 0x02)))
                emit(ip4(server, self.c, 6, tcp(502, self.port, self.ss, self.cs + 1, 0x12)))
                self.cs += 1
                self.ss += 1
                emit(ip4(self.c, server, 6, tcp(self.port, 502, self.cs, self.ss, 0x10)))
                self.state = 1
                return True
            if self.left > 0:
                k = 2 if rnd.random() < 0.1 else 1  # sometimes two requests in one segment
                reqs, rsps = [], []
                for _ in range(k):
                    self.tid = (self.tid + 1) & 0xFFFF
                    a, b = modbus_txn(self.tid, self.unit)
                    reqs.append(a)
                    rsps.append(b)
                req, rsp = b"".join(reqs), b"".join(rsps)
                emit(ip4(self.c, server, 6, tcp(self.port, 502, self.cs, self.ss, 0x18, req)))
                self.cs += len(req)
                emit(ip4(server, self.c, 6, tcp(502, self.port, self.ss, self.cs, 0x18, rsp)))
                self.ss += len(rsp)
                if rnd.random() < 0.3:
                    emit(ip4(self.c, server, 6, tcp(self.port, 502, self.cs, self.ss, 0x10)))
                self.left -= k
                return True
            emit(ip4(self.c, server, 6, tcp(self.port, 502, self.cs, self.ss, 0x11)))
            emit(ip4(server, self.c, 6, tcp(502, self.port, self.ss, self.cs + 1, 0x11)))
            emit(ip4(self.c, server, 6, tcp(self.port, 502, self.cs + 1, self.ss + 1, 0x10)))
            return False

    def bacnet(emit):
        dev = bytes([10, 2, 0, rnd.randrange(1, 250)])
        ws = bytes([10, 2, 1, 10])
        inv = rnd.randrange(256)
        inst = rnd.randrange(0, 4000)
        oid = struct.pack("!I", (rnd.choice((0, 1, 2, 3, 4, 5)) << 22) | inst)
        r = rnd.random()
        if r < 0.6:
            apdu = bytes([0, 5, inv, 12]) + b"\x0c" + oid + b"\x19\x55"
            ack = bytes([0x30, inv, 12]) + b"\x0c" + oid + b"\x19\x55\x3e\x44" + struct.pack("!f", rnd.random() * 100) + b"\x3f"
            pairs = [(ws, dev, apdu), (dev, ws, ack)]
        elif r < 0.8:
            apdu = bytes([0, 5, inv, 15]) + b"\x0c" + oid + b"\x19\x55\x3e\x44" + struct.pack("!f", 21.5) + b"\x3f\x49\x08"
            pairs = [(ws, dev, apdu), (dev, ws, bytes([0x20, inv, 15]))]
        else:
            whois = bytes([0x10, 8])
            iam = bytes([0x10, 0]) + b"\xc4" + struct.pack("!I", (8 << 22) | inst) + b"\x22\x05\xc4\x91\x03\x21\x07"
            pairs = [(ws, bytes([10, 2, 255, 255]), whois), (dev, bytes([10, 2, 255, 255]), iam)]
        for s, d, a in pairs:
            npdu = b"\x01\x04" if a[0] == 0 else b"\x01\x00"
            fn = 0x0B if d[3] == 255 else 0x0A
            bv = struct.pack("!BBH", 0x81, fn, 4 + len(npdu) + len(a)) + npdu + a
            emit(ip4(s, d, 17, udp(47808, 47808, bv)))

    active = [Flow(k) for k in range(32)]
    nextk = 32

    def emit(p):
        frames.append(eth_hdr + p)

    while len(frames) < target:
        if rnd.random() < 0.25:
            bacnet(emit)
            continue
        i = rnd.randrange(len(active))
        if not active[i].step(emit):
            active[i] = Flow(nextk)
            nextk += 1
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        hdr = struct.Struct("<IIII")
        for i, fr in enumerate(frames):
            us = i * 137
            f.write(hdr.pack(T0 + us // 1000000, us % 1000000, len(fr), len(fr)))
            f.write(fr)


if __name__ == "__main__":
    main()
