/* tests/unit/test_capture_link.c: link layers (Ethernet, VLAN, SLL, SLL2, raw, NULL/LOOP),
 * IPv4/IPv6 (extension headers, fragments) and TCP/UDP headers, each with a negative case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pcap/dlt.h>
#include <cmocka.h>

#include "capture/link.h"

struct pkt {
	uint8_t b[512];
	size_t n;
};

static void put(struct pkt *p, const void *d, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void put8(struct pkt *p, uint8_t v) { put(p, &v, 1); }
static void put16(struct pkt *p, uint16_t v) { put8(p, (uint8_t)(v >> 8)); put8(p, (uint8_t)v); }
static void put32(struct pkt *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p, (uint16_t)v); }

static void eth(struct pkt *p, uint16_t type)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	put(p, macs, 12);
	put16(p, type);
}

/* IPv4 header with total length = 20 + l4len. */
static void ipv4(struct pkt *p, uint8_t proto, size_t l4len, uint16_t frag)
{
	put8(p, 0x45);
	put8(p, 0);
	put16(p, (uint16_t)(20 + l4len));
	put16(p, 1);
	put16(p, frag);
	put8(p, 64);
	put8(p, proto);
	put16(p, 0);
	put32(p, 0x0A000001);
	put32(p, 0x0A000002);
}

static void ipv6(struct pkt *p, uint8_t next, size_t plen)
{
	put32(p, 0x60000000);
	put16(p, (uint16_t)plen);
	put8(p, next);
	put8(p, 64);
	uint8_t a[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	put(p, a, 16);
	a[15] = 2;
	put(p, a, 16);
}

/* TCP header (20 bytes) + payload "MB". */
static void tcp(struct pkt *p, uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags)
{
	put16(p, sport);
	put16(p, dport);
	put32(p, seq);
	put32(p, 77);
	put16(p, (uint16_t)(0x5000 | flags));
	put16(p, 1024);
	put32(p, 0);
	put(p, "MB", 2);
}

/* UDP header + payload "BACnet". */
static void udp(struct pkt *p, uint16_t sport, uint16_t dport)
{
	put16(p, sport);
	put16(p, dport);
	put16(p, 8 + 6);
	put16(p, 0);
	put(p, "BACnet", 6);
}

static void ethernet_ipv4_tcp(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	eth(&p, 0x0800);
	ipv4(&p, 6, 22, 0);
	tcp(&p, 40000, 502, 123456, CAP_TCP_ACK | CAP_TCP_PSH);
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), 0);
	assert_int_equal(out.ipver, 4);
	assert_int_equal(out.l4, 6);
	assert_int_equal(out.sport, 40000);
	assert_int_equal(out.dport, 502);
	assert_int_equal(out.seq, 123456);
	assert_int_equal(out.ack, 77);
	assert_int_equal(out.tcp_flags, CAP_TCP_ACK | CAP_TCP_PSH);
	assert_int_equal(out.payload_len, 2);
	assert_memory_equal(out.payload, "MB", 2);
	assert_int_equal(out.src[0], 10);
	assert_int_equal(out.dst[3], 2);
	/* Ethernet padding after the IP datagram is not payload. */
	put(&p, "\0\0\0\0", 4);
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), 0);
	assert_int_equal(out.payload_len, 2);
	assert_true(out.flags & CAP_PKT_IP_PADDED);
	/* Negative: every truncation of the headers is malformed, never a read past the end. */
	for (size_t n = 0; n < 14 + 20 + 20; n++)
		assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, n, &out), CAP_LINK_MALFORMED);
}

static void ipv4_header_errors(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	eth(&p, 0x0800);
	ipv4(&p, 6, 22, 0);
	tcp(&p, 40000, 502, 1, 0);
	p.b[14] = 0x44; /* IHL 4: below the minimum */
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), CAP_LINK_MALFORMED);
	p.b[14] = 0x45;
	p.b[14 + 20 + 12] = 0x40; /* TCP data offset 4 */
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), CAP_LINK_MALFORMED);
	p.b[14 + 20 + 12] = 0x50;
	/* IP total length larger than captured: truncated, still parsed. */
	p.b[17] = (uint8_t)(p.b[17] + 10);
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), 0);
	assert_true(out.flags & CAP_PKT_TRUNCATED);
	/* A protocol that is neither TCP nor UDP. */
	struct pkt q = { .n = 0 };
	eth(&q, 0x0800);
	ipv4(&q, 1, 8, 0);
	put(&q, "\x08\0\0\0\0\0\0\0", 8);
	assert_int_equal(cap_link_parse(DLT_EN10MB, q.b, q.n, &out), CAP_LINK_NOT_L4);
}

static void ipv4_fragments_flagged(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	eth(&p, 0x0800);
	ipv4(&p, 17, 14, 0x2000); /* more fragments */
	udp(&p, 47808, 47808);
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), CAP_LINK_FRAGMENT);
	p.b[14 + 6] = 0x00;
	p.b[14 + 7] = 0x10; /* offset 16*8, last fragment */
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), CAP_LINK_FRAGMENT);
	/* Negative: DF set, no offset: a whole datagram. */
	p.b[14 + 6] = 0x40;
	p.b[14 + 7] = 0x00;
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), 0);
	assert_int_equal(out.dport, 47808);
	assert_int_equal(out.payload_len, 6);
}

static void vlan_single_and_stacked(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	eth(&p, 0x88A8);
	put16(&p, 100);     /* S-tag VLAN 100 */
	put16(&p, 0x8100);
	put16(&p, 0x2000 | 200); /* C-tag VLAN 200, priority 1 */
	put16(&p, 0x0800);
	ipv4(&p, 17, 14, 0);
	udp(&p, 50000, 47808);
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), 0);
	assert_int_equal(out.vlan, 100);
	assert_int_equal(out.vlan_depth, 2);
	assert_true(out.flags & CAP_PKT_VLAN);
	assert_memory_equal(out.payload, "BACnet", 6);

	struct pkt s = { .n = 0 };
	eth(&s, 0x8100);
	put16(&s, 7);
	put16(&s, 0x86DD);
	ipv6(&s, 6, 22);
	tcp(&s, 502, 40000, 9, CAP_TCP_ACK);
	assert_int_equal(cap_link_parse(DLT_EN10MB, s.b, s.n, &out), 0);
	assert_int_equal(out.vlan, 7);
	assert_int_equal(out.ipver, 6);
	assert_int_equal(out.sport, 502);

	/* Negative: a tag cut short, and more stacked tags than followed. */
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, 16, &out), CAP_LINK_MALFORMED);
	struct pkt deep = { .n = 0 };
	eth(&deep, 0x8100);
	for (int i = 0; i < CAP_MAX_VLAN_TAGS; i++) {
		put16(&deep, (uint16_t)i);
		put16(&deep, 0x8100);
	}
	put16(&deep, 1);
	put16(&deep, 0x0800);
	ipv4(&deep, 17, 14, 0);
	udp(&deep, 1, 47808);
	assert_int_equal(cap_link_parse(DLT_EN10MB, deep.b, deep.n, &out), CAP_LINK_MALFORMED);
}

static void llc_and_arp_are_not_ip(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	eth(&p, 30); /* 802.3 length: LLC (BACnet/Ethernet) */
	put(&p, "\x82\x82\x03\x01\x00", 5);
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), CAP_LINK_NOT_IP);
	struct pkt a = { .n = 0 };
	eth(&a, 0x0806);
	put(&a, "\0\1\x08\0\6\4\0\1", 8);
	assert_int_equal(cap_link_parse(DLT_EN10MB, a.b, a.n, &out), CAP_LINK_NOT_IP);
	assert_int_equal(cap_link_parse(12345, a.b, a.n, &out), CAP_LINK_LINKTYPE);
}

static void ipv6_extension_headers(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	eth(&p, 0x86DD);
	ipv6(&p, 0, 8 + 16 + 14);
	/* hop-by-hop (8 bytes) -> destination options (16 bytes) -> UDP */
	put8(&p, 60);
	put8(&p, 0);
	put(&p, "\1\4\0\0\0\0", 6);
	put8(&p, 17);
	put8(&p, 1);
	put(&p, "\1\14\0\0\0\0\0\0\0\0\0\0\0\0", 14);
	udp(&p, 47808, 47809);
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), 0);
	assert_int_equal(out.ipver, 6);
	assert_int_equal(out.l4, 17);
	assert_int_equal(out.dport, 47809);
	assert_memory_equal(out.payload, "BACnet", 6);
	assert_int_equal(out.dst[15], 2);

	/* Negative: an extension header whose length runs past the packet. */
	p.b[14 + 40 + 1] = 200;
	assert_int_equal(cap_link_parse(DLT_EN10MB, p.b, p.n, &out), CAP_LINK_MALFORMED);

	/* A fragment header with an offset: flagged; an atomic fragment passes. */
	struct pkt f = { .n = 0 };
	eth(&f, 0x86DD);
	ipv6(&f, 44, 8 + 14);
	put8(&f, 17);
	put8(&f, 0);
	put16(&f, 0x0001); /* offset 0, M set */
	put32(&f, 42);
	udp(&f, 1, 47808);
	assert_int_equal(cap_link_parse(DLT_EN10MB, f.b, f.n, &out), CAP_LINK_FRAGMENT);
	f.b[14 + 40 + 3] = 0;
	assert_int_equal(cap_link_parse(DLT_EN10MB, f.b, f.n, &out), 0);
	assert_int_equal(out.dport, 47808);

	/* An endless chain of extension headers is refused. */
	struct pkt c = { .n = 0 };
	eth(&c, 0x86DD);
	ipv6(&c, 60, 8 * (CAP_MAX_IPV6_EXT + 1));
	for (int i = 0; i <= CAP_MAX_IPV6_EXT; i++) {
		put8(&c, 60);
		put(&c, "\0\1\4\0\0\0\0", 7);
	}
	assert_int_equal(cap_link_parse(DLT_EN10MB, c.b, c.n, &out), CAP_LINK_MALFORMED);
	/* ESP: encrypted, not TCP/UDP. */
	struct pkt e = { .n = 0 };
	ipv6(&e, 50, 8);
	put(&e, "\0\0\0\1\0\0\0\1", 8);
	assert_int_equal(cap_link_parse(DLT_RAW, e.b, e.n, &out), CAP_LINK_NOT_L4);
}

static void linux_cooked_sll_and_sll2(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	put16(&p, 0);      /* packet type: to us */
	put16(&p, 772);    /* ARPHRD_LOOPBACK */
	put16(&p, 6);
	put(&p, "\0\0\0\0\0\0\0\0", 8);
	put16(&p, 0x0800);
	ipv4(&p, 6, 22, 0);
	tcp(&p, 40000, 15020, 5, CAP_TCP_ACK);
	assert_int_equal(cap_link_parse(DLT_LINUX_SLL, p.b, p.n, &out), 0);
	assert_int_equal(out.dport, 15020);
	/* Negative: a truncated cooked header; a cooked ARP frame. */
	assert_int_equal(cap_link_parse(DLT_LINUX_SLL, p.b, 15, &out), CAP_LINK_MALFORMED);
	p.b[14] = 0x08;
	p.b[15] = 0x06;
	assert_int_equal(cap_link_parse(DLT_LINUX_SLL, p.b, p.n, &out), CAP_LINK_NOT_IP);

	struct pkt q = { .n = 0 };
	put16(&q, 0x86DD); /* protocol */
	put16(&q, 0);
	put32(&q, 1);      /* ifindex */
	put16(&q, 772);
	put8(&q, 0);
	put8(&q, 6);
	put(&q, "\0\0\0\0\0\0\0\0", 8);
	ipv6(&q, 17, 14);
	udp(&q, 47808, 47808);
	assert_int_equal(cap_link_parse(DLT_LINUX_SLL2, q.b, q.n, &out), 0);
	assert_int_equal(out.ipver, 6);
	assert_memory_equal(out.payload, "BACnet", 6);
	assert_int_equal(cap_link_parse(DLT_LINUX_SLL2, q.b, 19, &out), CAP_LINK_MALFORMED);
}

static void raw_and_null_loopback(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	ipv4(&p, 17, 14, 0);
	udp(&p, 47808, 47808);
	assert_int_equal(cap_link_parse(DLT_RAW, p.b, p.n, &out), 0);
	assert_int_equal(cap_link_parse(DLT_IPV4, p.b, p.n, &out), 0);
	p.b[0] = 0x55; /* version 5 */
	assert_int_equal(cap_link_parse(DLT_RAW, p.b, p.n, &out), CAP_LINK_NOT_IP);

	struct pkt n = { .n = 0 };
	put(&n, "\x02\0\0\0", 4); /* AF_INET, little-endian host */
	ipv4(&n, 17, 14, 0);
	udp(&n, 47808, 47808);
	assert_int_equal(cap_link_parse(DLT_NULL, n.b, n.n, &out), 0);
	memcpy(n.b, "\0\0\0\x02", 4); /* big-endian host */
	assert_int_equal(cap_link_parse(DLT_NULL, n.b, n.n, &out), 0);
	assert_int_equal(cap_link_parse(DLT_LOOP, n.b, n.n, &out), 0);
	memcpy(n.b, "\x1e\0\0\0", 4); /* AF_INET6 on Darwin, but an IPv4 packet follows */
	assert_int_equal(cap_link_parse(DLT_NULL, n.b, n.n, &out), CAP_LINK_MALFORMED);
	memcpy(n.b, "\x07\0\0\0", 4); /* an unknown family */
	assert_int_equal(cap_link_parse(DLT_NULL, n.b, n.n, &out), CAP_LINK_NOT_IP);
}

static void udp_lengths(void **state)
{
	(void)state;
	struct pkt p = { .n = 0 };
	struct cap_packet out;
	ipv4(&p, 17, 14, 0);
	udp(&p, 47808, 47808);
	p.b[20 + 5] = 7; /* UDP length below its own header */
	assert_int_equal(cap_link_parse(DLT_RAW, p.b, p.n, &out), CAP_LINK_MALFORMED);
	p.b[20 + 5] = 40; /* longer than what was captured */
	assert_int_equal(cap_link_parse(DLT_RAW, p.b, p.n, &out), 0);
	assert_true(out.flags & CAP_PKT_TRUNCATED);
	assert_int_equal(out.payload_len, 6);
}

static void addresses_print(void **state)
{
	(void)state;
	char s[64];
	uint8_t a4[16] = { 192, 168, 1, 20 };
	uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	assert_int_equal(cap_addr_str(4, a4, s), strlen("192.168.1.20"));
	assert_string_equal(s, "192.168.1.20");
	cap_addr_str(6, a6, s);
	assert_string_equal(s, "2001:db8::1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ethernet_ipv4_tcp),
		cmocka_unit_test(ipv4_header_errors),
		cmocka_unit_test(ipv4_fragments_flagged),
		cmocka_unit_test(vlan_single_and_stacked),
		cmocka_unit_test(llc_and_arp_are_not_ip),
		cmocka_unit_test(ipv6_extension_headers),
		cmocka_unit_test(linux_cooked_sll_and_sll2),
		cmocka_unit_test(raw_and_null_loopback),
		cmocka_unit_test(udp_lengths),
		cmocka_unit_test(addresses_print),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
