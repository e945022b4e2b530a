#!/usr/bin/env python3
"""pcaps/make-synthetic.py: writes the small synthetic captures of pcaps/synthetic/ (Python stdlib only).

Each capture isolates one thing `bmsgate decode` must get right, with hand-built packets whose
expected decoding is known exactly (tests/integration/decode_synthetic.sh checks it):
  reasm.pcap       one Modbus/TCP connection: split ADUs, pipelining, out-of-order segments,
                   retransmissions (same and different bytes), a segment lost from the capture
                   (then acknowledged), FIN
  vlan-ipv6.pcap   802.1ad + 802.1Q stacked tags, IPv6 with extension headers, Modbus and BACnet
  sll.pcap, sll2.pcap, raw.pcap, null.pcap, loop.pcap   the other link types, Modbus + BACnet
  modbus.pcapng    pcapng (SHB, IDB, EPB) with a request and its response
  ipfrag.pcap      a BACnet datagram in two IPv4 fragments (flagged, not reassembled) and a whole one
Run it from the repository root: python3 pcaps/make-synthetic.py  (output is deterministic)
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synthetic")
T0 = 1700000000


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ident=1, frag=0):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                      bytes(src), bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(src, dst, next_hdr, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_hdr, 64, bytes(src), bytes(dst)) + payload


def tcp(sport, dport, seq, ack, flags, data=b""):
    off = 5 << 12
    return struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off | flags, 65535, 0, 0) + data


def udp(sport, dport, data):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def eth(payload, ethertype=0x0800, tags=()):
    hdr = bytes.fromhex("020000000002020000000001")
    for tpid, vid in tags:
        hdr += struct.pack("!HH", tpid, vid)
    return hdr + struct.pack("!H", ethertype) + payload


def pcap(path, linktype, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, fr in enumerate(frames):
            ts = T0 + i
            f.write(struct.pack("<IIII", ts, (i * 1000) % 1000000, len(fr), len(fr)) + fr)


def pcapng(path, linktype, frames):
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(0x00000001, struct.pack("<HHI", linktype, 0, 65535)))
        for i, fr in enumerate(frames):
            us = (T0 + i) * 1000000 + 250
            f.write(block(0x00000006, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(fr), len(fr)) + fr))


def mb_req(tid, unit=1, fc=3, addr=0, qty=2):
    return struct.pack("!HHHBBHH", tid, 0, 6, unit, fc, addr, qty)


def mb_rsp(tid, unit=1, qty=2):
    data = bytes(range(2 * qty))
    return struct.pack("!HHHBBB", tid, 0, 3 + len(data), unit, 3, len(data)) + data


# BACnet/IP ReadProperty(device,1 / present-value) request, invoke id 5: BVLC 4, NPDU 2, APDU 11.
BACNET_RP = bytes.fromhex("810a0011" "0104" "0005010c" "0c02000001" "1955")

C4, S4 = [10, 0, 0, 1], [10, 0, 0, 2]
C6 = [0xFD] + [0] * 14 + [1]
S6 = [0xFD] + [0] * 14 + [2]
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def reasm_frames():
    """The client's ISN is 1000, the server's 5000. Comments number the PDUs by tid."""
    fr = []
    c = lambda seq, ack, flags, data=b"": fr.append(eth(ipv4(C4, S4, 6, tcp(40000, 502, seq, ack, flags, data))))
    s = lambda seq, ack, flags, data=b"": fr.append(eth(ipv4(S4, C4, 6, tcp(502, 40000, seq, ack, flags, data))))
    cs, ss = 1001, 5001
    c(1000, 0, SYN)
    s(5000, cs, SYN | ACK)
    c(cs, ss, ACK)
    # tid 1: whole request, whole response
    r = mb_req(1); c(cs, ss, PSH | ACK, r); cs += len(r)
    a = mb_rsp(1); s(ss, cs, PSH | ACK, a); ss += len(a)
    # tid 2: request split after 5 bytes (inside the MBAP header)
    r = mb_req(2, addr=100, qty=10); c(cs, ss, PSH | ACK, r[:5]); c(cs + 5, ss, PSH | ACK, r[5:]); cs += len(r)
    a = mb_rsp(2, qty=10); s(ss, cs, PSH | ACK, a); ss += len(a)
    # tids 3 and 4: pipelined in one segment
    r = mb_req(3, addr=3) + mb_req(4, addr=4); c(cs, ss, PSH | ACK, r); cs += len(r)
    a = mb_rsp(3) + mb_rsp(4); s(ss, cs, PSH | ACK, a); ss += len(a)
    # tid 5: two segments, the second captured first
    r = mb_req(5, addr=5); c(cs + 6, ss, PSH | ACK, r[6:]); c(cs, ss, PSH | ACK, r[:6]); cs += len(r)
    # tid 6: sent twice, same bytes (a retransmission: decoded once)
    r = mb_req(6, addr=6); c(cs, ss, PSH | ACK, r); c(cs, ss, PSH | ACK, r); cs += len(r)
    # tid 7, then a copy of its bytes with another address: first copy wins, flagged on tid 8
    r = mb_req(7, addr=7); c(cs, ss, PSH | ACK, r); c(cs, ss, PSH | ACK, mb_req(7, addr=0x0777)); cs += len(r)
    r = mb_req(8, addr=8); c(cs, ss, PSH | ACK, r); cs += len(r)
    # tid 9 is lost from the capture; tid 10 follows; the server acknowledges both: a gap before 10
    lost = mb_req(9, addr=9); cs_lost = cs; cs += len(lost)
    r = mb_req(10, addr=10); c(cs, ss, PSH | ACK, r); cs += len(r)
    s(ss, cs, ACK)
    # responses to 5..8 and 10 in one segment
    a = b"".join(mb_rsp(t) for t in (5, 6, 7, 8, 10)); s(ss, cs, PSH | ACK, a); ss += len(a)
    # close
    c(cs, ss, FIN | ACK); s(ss, cs + 1, FIN | ACK); c(cs + 1, ss + 1, ACK)
    assert cs_lost
    return fr


def main():
    os.makedirs(OUT, exist_ok=True)
    pcap(os.path.join(OUT, "reasm.pcap"), 1, reasm_frames())

    hop_dst = bytes([6, 0]) + b"\x01\x04\0\0\0\0"          # hop-by-hop, 8 bytes, next: dest options
    dst_udp = bytes([17, 0]) + b"\x01\x04\0\0\0\0"          # destination options, 8 bytes, next: UDP
    tags = [(0x88A8, 100), (0x8100, 200)]
    fr = [
        eth(ipv6(C6, S6, 6, tcp(40001, 502, 1, 1, PSH | ACK, mb_req(21, addr=21))), 0x86DD, tags),
        eth(ipv6(S6, C6, 6, tcp(502, 40001, 1, 13, PSH | ACK, mb_rsp(21))), 0x86DD, tags),
        eth(ipv6(C6, S6, 0, hop_dst.replace(b"\x06", b"\x3c", 1) + dst_udp + udp(47808, 47808, BACNET_RP)), 0x86DD, tags),
    ]
    pcap(os.path.join(OUT, "vlan-ipv6.pcap"), 1, fr)

    ip_mb = [ipv4(C4, S4, 6, tcp(40002, 502, 1, 1, PSH | ACK, mb_req(31, addr=31))),
             ipv4(S4, C4, 6, tcp(502, 40002, 1, 13, PSH | ACK, mb_rsp(31))),
             ipv4(C4, S4, 17, udp(47808, 47808, BACNET_RP))]
    sll = [struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, 0x0800) + p for p in ip_mb]
    sll2 = [struct.pack("!HHIHBB8s", 0x0800, 0, 1, 772, 0, 6, b"\0" * 8) + p for p in ip_mb]
    pcap(os.path.join(OUT, "sll.pcap"), 113, sll)
    pcap(os.path.join(OUT, "sll2.pcap"), 276, sll2)
    pcap(os.path.join(OUT, "raw.pcap"), 101, ip_mb)
    pcap(os.path.join(OUT, "null.pcap"), 0, [struct.pack("<I", 2) + p for p in ip_mb])
    pcap(os.path.join(OUT, "loop.pcap"), 108, [struct.pack("!I", 2) + p for p in ip_mb])
    pcapng(os.path.join(OUT, "modbus.pcapng"), 1, [eth(p) for p in ip_mb[:2]])

    dgram = udp(47808, 47808, BACNET_RP)
    fr = [eth(ipv4(C4, S4, 17, dgram[:16], ident=7, frag=0x2000)),    # first fragment, more follow
          eth(ipv4(C4, S4, 17, dgram[16:], ident=7, frag=2)),         # offset 16 bytes
          eth(ipv4(C4, S4, 17, dgram, ident=8))]
    pcap(os.path.join(OUT, "ipfrag.pcap"), 1, fr)


if __name__ == "__main__":
    main()
