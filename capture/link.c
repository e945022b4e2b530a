/* capture/link.c: link layer -> IPv4/IPv6 -> TCP/UDP, all reads bounds-checked.
 *
 * | link type        | header                                   | next protocol            |
 * |------------------|------------------------------------------|--------------------------|
 * | EN10MB           | dst 6, src 6, type/len 2 (+ VLAN tags 4) | ethertype; len <= 1500 = LLC |
 * | LINUX_SLL        | 16 bytes                                 | ethertype at offset 14   |
 * | LINUX_SLL2       | 20 bytes                                 | ethertype at offset 0    |
 * | RAW, IPV4, IPV6  | none                                     | IP version nibble        |
 * | NULL / LOOP      | 4-byte address family (host / network order) | AF_INET, AF_INET6 (BSD values too) |
 */
#include <arpa/inet.h>
#include <pcap/dlt.h>
#include <string.h>

#include "capture/link.h"

/* The headers of every packet go through these parsers: BMS_HOT inlines them into
 * cap_link_parse, so the common path (Ethernet, IPv4, TCP or UDP) runs without a call. */

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define ETH_VLAN 0x8100
#define ETH_QINQ 0x88A8
#define ETH_QINQ_OLD1 0x9100
#define ETH_QINQ_OLD2 0x9200

/* Fields inside a header slice the cursor has already bounds-checked (borrowed with
 * bms_cursor_bytes): one length check per header instead of one per field. */
static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

BMS_HOT static int is_vlan_type(uint16_t t)
{
	return t == ETH_VLAN || t == ETH_QINQ || t == ETH_QINQ_OLD1 || t == ETH_QINQ_OLD2;
}

/* TCP: sport 2, dport 2, seq 4, ack 4, data offset/flags 2, window 2, checksum 2, urgent 2, options. */
BMS_HOT static int parse_tcp(struct bms_cursor *c, struct cap_packet *out)
{
	const uint8_t *h;

	if (bms_cursor_bytes(c, 20, &h))
		return CAP_LINK_MALFORMED;
	out->sport = be16(h);
	out->dport = be16(h + 2);
	out->seq = be32(h + 4);
	out->ack = be32(h + 8);
	size_t doff = (size_t)(h[12] >> 4) * 4;
	/* RFC 9293 3.1: the data offset counts 32-bit words and is at least 5. */
	if (doff < 20 || bms_cursor_skip(c, doff - 20))
		return CAP_LINK_MALFORMED;
	out->tcp_flags = h[13];
	out->payload = c->buf + c->off;
	out->payload_len = bms_cursor_left(c);
	return 0;
}

/* UDP: sport 2, dport 2, length 2 (header included), checksum 2. */
BMS_HOT static int parse_udp(struct bms_cursor *c, struct cap_packet *out)
{
	const uint8_t *h;

	if (bms_cursor_bytes(c, 8, &h))
		return CAP_LINK_MALFORMED;
	out->sport = be16(h);
	out->dport = be16(h + 2);
	uint16_t ulen = be16(h + 4);
	if (ulen < 8)
		return CAP_LINK_MALFORMED;
	size_t want = (size_t)ulen - 8;
	size_t have = bms_cursor_left(c);
	if (have < want) {
		out->flags |= CAP_PKT_TRUNCATED;
		want = have;
	}
	out->payload = c->buf + c->off;
	out->payload_len = want;
	return 0;
}

BMS_HOT static int parse_l4(uint8_t proto, struct bms_cursor *c, struct cap_packet *out)
{
	out->l4 = proto;
	if (proto == 6)
		return parse_tcp(c, out);
	if (proto == 17)
		return parse_udp(c, out);
	return CAP_LINK_NOT_L4;
}

/* Narrow the cursor to an IP datagram of `total` bytes (header included) that began at `start`. */
BMS_HOT static void clamp_ip(struct bms_cursor *c, size_t start, size_t total, struct cap_packet *out)
{
	size_t have = c->len - start;
	if (total == 0) /* length 0: a segmentation-offload capture; trust what was captured */
		return;
	if (have < total)
		out->flags |= CAP_PKT_TRUNCATED;
	else if (have > total) {
		out->flags |= CAP_PKT_IP_PADDED;
		c->len = start + total;
	}
}

/* IPv4 (RFC 791): ver/ihl 1, tos 1, total length 2, id 2, flags/offset 2, ttl 1, proto 1, csum 2, src 4, dst 4, options. */
BMS_HOT static int parse_ipv4(struct bms_cursor *c, struct cap_packet *out)
{
	size_t start = c->off;
	const uint8_t *h;

	if (bms_cursor_bytes(c, 20, &h))
		return CAP_LINK_MALFORMED;
	uint8_t vihl = h[0];
	uint16_t total = be16(h + 2);
	uint16_t frag = be16(h + 6);
	uint8_t proto = h[9];
	size_t ihl = (size_t)(vihl & 0x0F) * 4;
	if ((vihl >> 4) != 4 || ihl < 20 || (total != 0 && total < ihl))
		return CAP_LINK_MALFORMED;
	out->ipver = 4;
	memcpy(out->src, h + 12, 4);
	memcpy(out->dst, h + 16, 4);
	if (bms_cursor_skip(c, ihl - 20))
		return CAP_LINK_MALFORMED;
	clamp_ip(c, start, total, out);
	out->l4 = proto;
	/* More-fragments set or a non-zero offset: one piece of a datagram we do not reassemble. */
	if ((frag & 0x2000) || (frag & 0x1FFF))
		return CAP_LINK_FRAGMENT;
	return parse_l4(proto, c, out);
}

/* IPv6 (RFC 8200): ver/class/flow 4, payload length 2, next header 1, hop limit 1, src 16, dst 16, extension headers. */
BMS_HOT static int parse_ipv6(struct bms_cursor *c, struct cap_packet *out)
{
	size_t start = c->off;
	const uint8_t *h;

	if (bms_cursor_bytes(c, 40, &h))
		return CAP_LINK_MALFORMED;
	if ((h[0] >> 4) != 6)
		return CAP_LINK_MALFORMED;
	uint16_t plen = be16(h + 4);
	uint8_t next = h[6];
	out->ipver = 6;
	memcpy(out->src, h + 8, 16);
	memcpy(out->dst, h + 24, 16);
	clamp_ip(c, start, plen ? (size_t)plen + 40 : 0, out);
	for (int i = 0; i < CAP_MAX_IPV6_EXT; i++) {
		uint8_t nh, hlen;
		uint16_t offflag;

		switch (next) {
		case 0:   /* hop-by-hop options */
		case 43:  /* routing */
		case 60:  /* destination options */
		case 135: /* mobility */
		case 139: /* HIP */
		case 140: /* shim6 */
		case 253: case 254: /* experimental (RFC 3692) */
			/* Length in 8-octet units, not counting the first 8 octets. */
			if (bms_cursor_u8(c, &nh) || bms_cursor_u8(c, &hlen) ||
			    bms_cursor_skip(c, (size_t)hlen * 8 + 6))
				return CAP_LINK_MALFORMED;
			next = nh;
			break;
		case 51: /* AH: length in 4-octet units, minus 2 (RFC 4302 2.2) */
			if (bms_cursor_u8(c, &nh) || bms_cursor_u8(c, &hlen) ||
			    bms_cursor_skip(c, ((size_t)hlen + 2) * 4 - 2))
				return CAP_LINK_MALFORMED;
			next = nh;
			break;
		case 44: /* fragment: next 1, reserved 1, offset/M 2, id 4 */
			if (bms_cursor_u8(c, &nh) || bms_cursor_skip(c, 1) ||
			    bms_cursor_u16be(c, &offflag) || bms_cursor_skip(c, 4))
				return CAP_LINK_MALFORMED;
			out->l4 = nh;
			/* An atomic fragment (offset 0, M clear) holds the whole datagram (RFC 6946). */
			if ((offflag >> 3) != 0 || (offflag & 1))
				return CAP_LINK_FRAGMENT;
			next = nh;
			break;
		default:
			return parse_l4(next, c, out);
		}
	}
	return CAP_LINK_MALFORMED;
}

BMS_HOT static int parse_ip_by_version(struct bms_cursor *c, struct cap_packet *out)
{
	uint8_t b;

	if (bms_cursor_peek_u8(c, &b))
		return CAP_LINK_MALFORMED;
	if ((b >> 4) == 4)
		return parse_ipv4(c, out);
	if ((b >> 4) == 6)
		return parse_ipv6(c, out);
	return CAP_LINK_NOT_IP;
}

/* From an ethertype on: VLAN tags (TCI 2, inner type 2), then IP. */
BMS_HOT static int parse_ethertype(uint16_t type, struct bms_cursor *c, struct cap_packet *out)
{
	int tags = 0;

	while (is_vlan_type(type)) {
		uint16_t tci;

		if (tags == CAP_MAX_VLAN_TAGS)
			return CAP_LINK_MALFORMED;
		if (bms_cursor_u16be(c, &tci) || bms_cursor_u16be(c, &type))
			return CAP_LINK_MALFORMED;
		if (tags == 0)
			out->vlan = tci & 0x0FFF;
		tags++;
		out->flags |= CAP_PKT_VLAN;
	}
	out->vlan_depth = (uint8_t)tags;
	if (type == ETH_IPV4)
		return parse_ipv4(c, out);
	if (type == ETH_IPV6)
		return parse_ipv6(c, out);
	return CAP_LINK_NOT_IP;
}

BMS_HOT static int parse_null(struct bms_cursor *c, struct cap_packet *out, int network_order)
{
	const uint8_t *b;
	uint32_t fam;

	if (bms_cursor_bytes(c, 4, &b))
		return CAP_LINK_MALFORMED;
	uint32_t be = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	uint32_t le = (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
	/* DLT_NULL is in the capturing host's byte order, which the file does not say: the
	 * family is small, so whichever reading is small is the right one. */
	fam = network_order ? be : (le < 0x10000 ? le : be);
	if (fam == 2)
		return parse_ipv4(c, out);
	/* AF_INET6: 10 on Linux, 24 NetBSD/OpenBSD, 28 FreeBSD, 30 Darwin. */
	if (fam == 10 || fam == 24 || fam == 28 || fam == 30)
		return parse_ipv6(c, out);
	return CAP_LINK_NOT_IP;
}

int cap_link_parse(int dlt, const uint8_t *buf, size_t len, struct cap_packet *out)
{
	struct bms_cursor c;
	uint16_t type;

	memset(out, 0, sizeof(*out));
	bms_cursor_init(&c, buf, len);
	switch (dlt) {
	case DLT_EN10MB: {
		const uint8_t *h;
		if (bms_cursor_bytes(&c, 14, &h))
			return CAP_LINK_MALFORMED;
		type = be16(h + 12);
	}
		/* IEEE 802.3 length field: an LLC frame (BACnet/Ethernet, STP), not IP. */
		if (type <= 1500)
			return CAP_LINK_NOT_IP;
		return parse_ethertype(type, &c, out);
	case DLT_LINUX_SLL:
		/* packet type 2, ARPHRD 2, address length 2, address 8, protocol 2 */
		if (bms_cursor_skip(&c, 14) || bms_cursor_u16be(&c, &type))
			return CAP_LINK_MALFORMED;
		return parse_ethertype(type, &c, out);
	case DLT_LINUX_SLL2:
		/* protocol 2, reserved 2, ifindex 4, ARPHRD 2, packet type 1, address length 1, address 8 */
		if (bms_cursor_u16be(&c, &type) || bms_cursor_skip(&c, 18))
			return CAP_LINK_MALFORMED;
		return parse_ethertype(type, &c, out);
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		return parse_ip_by_version(&c, out);
	case DLT_NULL:
		return parse_null(&c, out, 0);
	case DLT_LOOP:
		return parse_null(&c, out, 1);
	default:
		return CAP_LINK_LINKTYPE;
	}
}

const char *cap_link_err_name(int err)
{
	switch (err) {
	case 0: return "ok";
	case CAP_LINK_LINKTYPE: return "unsupported_link_type";
	case CAP_LINK_NOT_IP: return "not_ip";
	case CAP_LINK_NOT_L4: return "not_tcp_udp";
	case CAP_LINK_FRAGMENT: return "ip_fragment";
	case CAP_LINK_MALFORMED: return "malformed_header";
	}
	return "unknown";
}

size_t cap_addr_str(uint8_t ipver, const uint8_t addr[static 16], char *out)
{
	if (inet_ntop(ipver == 6 ? AF_INET6 : AF_INET, addr, out, 46) == NULL) {
		out[0] = '?';
		out[1] = '\0';
	}
	return strlen(out);
}
