/* tests/unit/test_capture_engine.c: the capture engine end to end on hand-built raw-IP packets:
 * Modbus framing over reassembled streams (split, pipelined, resynchronised after garbage and
 * after a gap, truncated at the end), directions by port, BACnet over UDP, port filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pcap/dlt.h>
#include <cmocka.h>

#include "capture/engine.h"
#include "parsers/modbus.h"

struct rec {
	uint8_t proto, dir;
	int result;
	uint16_t tid;
	uint64_t frame;
	uint64_t req_frame;
	uint64_t anomalies;
	unsigned cap_an;
};

struct sinkbuf {
	struct rec r[64];
	size_t n;
};

static void sink(void *user, const struct cap_pdu *p)
{
	struct sinkbuf *s = user;
	assert_true(s->n < 64);
	struct rec *r = &s->r[s->n++];
	r->proto = p->req->proto;
	r->dir = p->req->dir;
	r->result = p->result;
	r->tid = p->req->proto == BMS_PROTO_MODBUS ? p->req->raw.modbus.tid : 0;
	r->frame = p->frame;
	r->req_frame = p->req_frame;
	r->anomalies = p->req->anomalies;
	r->cap_an = p->cap_anomalies;
}

static struct cap_engine *mk(struct sinkbuf *s)
{
	struct cap_config cfg;
	struct cap_engine *e = NULL;
	memset(s, 0, sizeof(*s));
	cap_config_default(&cfg);
	assert_int_equal(cap_config_add_port(&cfg, BMS_PROTO_MODBUS, 502), 0);
	assert_int_equal(cap_config_add_port(&cfg, BMS_PROTO_BACNET, 47808), 0);
	assert_int_equal(cap_engine_new(&cfg, sink, s, &e), 0);
	return e;
}

/* Raw IPv4 + TCP (or UDP) packet from 10.0.0.1 (client) or 10.0.0.2 (server). */
static size_t pkt(uint8_t *b, int from_server, int udp, uint16_t cport, uint32_t seq, uint32_t ack,
		  uint8_t flags, const uint8_t *data, size_t len)
{
	size_t l4 = udp ? 8 : 20;
	size_t tot = 20 + l4 + len;
	memset(b, 0, tot);
	b[0] = 0x45;
	b[2] = (uint8_t)(tot >> 8);
	b[3] = (uint8_t)tot;
	b[8] = 64;
	b[9] = udp ? 17 : 6;
	b[12] = 10, b[15] = (uint8_t)(from_server ? 2 : 1);
	b[16] = 10, b[19] = (uint8_t)(from_server ? 1 : 2);
	uint16_t srv = udp ? 47808 : 502;
	uint16_t sp = from_server ? srv : cport, dp = from_server ? cport : srv;
	uint8_t *t = b + 20;
	t[0] = (uint8_t)(sp >> 8), t[1] = (uint8_t)sp, t[2] = (uint8_t)(dp >> 8), t[3] = (uint8_t)dp;
	if (udp) {
		t[4] = (uint8_t)((8 + len) >> 8);
		t[5] = (uint8_t)(8 + len);
	} else {
		t[4] = (uint8_t)(seq >> 24), t[5] = (uint8_t)(seq >> 16), t[6] = (uint8_t)(seq >> 8), t[7] = (uint8_t)seq;
		t[8] = (uint8_t)(ack >> 24), t[9] = (uint8_t)(ack >> 16), t[10] = (uint8_t)(ack >> 8), t[11] = (uint8_t)ack;
		t[12] = 0x50;
		t[13] = flags;
	}
	if (len > 0)
		memcpy(t + l4, data, len);
	return tot;
}

static void feed(struct cap_engine *e, int from_server, uint32_t seq, uint32_t ack, uint8_t flags,
		 const uint8_t *data, size_t len)
{
	uint8_t b[1600];
	size_t n = pkt(b, from_server, 0, 40000, seq, ack, flags, data, len);
	assert_int_equal(cap_engine_packet(e, DLT_RAW, 1700000000, 0, b, n), 0);
}

/* FC 3 request, 12 bytes. */
static void req(uint8_t out[12], uint16_t tid)
{
	const uint8_t t[12] = { (uint8_t)(tid >> 8), (uint8_t)tid, 0, 0, 0, 6, 1, 3, 0, 100, 0, 2 };
	memcpy(out, t, 12);
}

static void split_and_pipelined(void **state)
{
	(void)state;
	struct sinkbuf s;
	struct cap_engine *e = mk(&s);
	uint8_t a[36];
	req(a, 1);
	req(a + 12, 2);
	req(a + 24, 3);
	feed(e, 0, 1000, 0, CAP_TCP_ACK, a, 2);       /* frame 1: inside the header */
	feed(e, 0, 1002, 0, CAP_TCP_ACK, a + 2, 5);   /* frame 2: still the header */
	assert_int_equal(s.n, 0);
	feed(e, 0, 1007, 0, CAP_TCP_ACK, a + 7, 23);  /* frame 3: ends tid 1, whole tid 2, part of tid 3 */
	assert_int_equal(s.n, 2);
	feed(e, 0, 1030, 0, CAP_TCP_ACK, a + 30, 6);  /* frame 4: the rest of tid 3 */
	assert_int_equal(s.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(s.r[i].tid, i + 1);
		assert_int_equal(s.r[i].result, BMS_OK);
		assert_int_equal(s.r[i].dir, BMS_DIR_REQUEST);
		assert_int_equal(s.r[i].cap_an, 0);
	}
	assert_int_equal(s.r[0].frame, 3);
	assert_int_equal(s.r[1].frame, 3);
	assert_int_equal(s.r[2].frame, 4);
	/* The server's bytes are responses. */
	uint8_t rsp[13] = { 0, 1, 0, 0, 0, 7, 1, 3, 4, 0, 1, 0, 2 };
	feed(e, 1, 5000, 1036, CAP_TCP_ACK, rsp, sizeof(rsp));
	assert_int_equal(s.n, 4);
	assert_int_equal(s.r[3].dir, BMS_DIR_RESPONSE);
	assert_int_equal(s.r[3].result, BMS_OK);
	cap_engine_finish(e);
	assert_int_equal(s.n, 4);
	cap_engine_free(e);
}

static void garbage_then_resync(void **state)
{
	(void)state;
	struct sinkbuf s;
	struct cap_engine *e = mk(&s);
	uint8_t b[64];
	const char *junk = "GET / HTTP/1.0\r\n\r\n";
	size_t j = strlen(junk);
	memcpy(b, junk, j);
	req(b + j, 7);
	feed(e, 0, 1, 0, CAP_TCP_ACK, b, j + 12);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.r[0].result, BMS_MALFORMED);   /* one record for the junk, not one per byte */
	assert_int_equal(s.r[1].result, BMS_OK);
	assert_int_equal(s.r[1].tid, 7);
	assert_true(s.r[1].cap_an & CAP_AN_STREAM_RESYNC);
	/* Negative: once in sync, the next frame carries no resync flag. */
	req(b, 8);
	feed(e, 0, (uint32_t)(1 + j + 12), 0, CAP_TCP_ACK, b, 12);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.r[2].cap_an, 0);
	assert_true(cap_engine_stats(e)->resync_bytes > 0);
	cap_engine_free(e);
}

static void gap_inside_an_adu(void **state)
{
	(void)state;
	struct sinkbuf s;
	struct cap_engine *e = mk(&s);
	uint8_t a[24];
	req(a, 1);
	req(a + 12, 2);
	feed(e, 0, 100, 0, CAP_TCP_ACK, a, 8);          /* first 8 bytes of tid 1 */
	/* bytes 8..11 of tid 1 are never captured */
	feed(e, 0, 112, 0, CAP_TCP_ACK, a + 12, 12);    /* tid 2, after the hole: waits */
	assert_int_equal(s.n, 0);
	feed(e, 1, 900, 124, CAP_TCP_ACK, NULL, 0);     /* the server has it all: the hole is lost */
	assert_int_equal(s.n, 2);
	assert_int_equal(s.r[0].result, BMS_MALFORMED); /* what there was of tid 1 */
	assert_int_equal(s.r[0].tid, 1);
	assert_true(s.r[0].cap_an & CAP_AN_TCP_GAP);
	assert_int_equal(s.r[1].result, BMS_OK);        /* tid 2 whole, also after lost bytes */
	assert_int_equal(s.r[1].tid, 2);
	assert_true(s.r[1].cap_an & CAP_AN_TCP_GAP);
	cap_engine_free(e);
}

static void truncated_at_end(void **state)
{
	(void)state;
	struct sinkbuf s;
	struct cap_engine *e = mk(&s);
	uint8_t a[12];
	req(a, 9);
	feed(e, 0, 1, 0, CAP_TCP_ACK, a, 10);
	assert_int_equal(s.n, 0);
	cap_engine_finish(e);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.r[0].result, BMS_MALFORMED);
	assert_true(s.r[0].cap_an & CAP_AN_STREAM_TRUNCATED);
	cap_engine_free(e);
}

static void bacnet_udp_and_port_filters(void **state)
{
	(void)state;
	struct sinkbuf s;
	struct cap_engine *e = mk(&s);
	uint8_t b[128];
	/* ReadProperty request and its ComplexACK. */
	static const uint8_t rp[] = { 0x81, 0x0a, 0x00, 0x11, 0x01, 0x04, 0x00, 0x05, 0x01, 0x0c,
				      0x0c, 0x02, 0x00, 0x00, 0x01, 0x19, 0x55 };
	static const uint8_t ack[] = { 0x81, 0x0a, 0x00, 0x17, 0x01, 0x00, 0x30, 0x01, 0x0c, 0x0c, 0x02,
				       0x00, 0x00, 0x01, 0x19, 0x55, 0x3e, 0x44, 0x41, 0xac, 0x00, 0x00, 0x3f };
	size_t n = pkt(b, 0, 1, 47808, 0, 0, 0, rp, sizeof(rp));
	assert_int_equal(cap_engine_packet(e, DLT_RAW, 1, 0, b, n), 0);
	n = pkt(b, 1, 1, 47808, 0, 0, 0, ack, sizeof(ack));
	assert_int_equal(cap_engine_packet(e, DLT_RAW, 2, 0, b, n), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.r[0].proto, BMS_PROTO_BACNET);
	assert_int_equal(s.r[0].dir, BMS_DIR_REQUEST);
	assert_int_equal(s.r[0].result, BMS_OK);
	assert_int_equal(s.r[1].dir, BMS_DIR_RESPONSE);
	assert_int_equal(s.r[1].result, BMS_OK);
	/* Negative: other ports are not ours: UDP 47809 and TCP 503 pass by undecoded. */
	n = pkt(b, 0, 1, 47809, 0, 0, 0, rp, sizeof(rp));
	b[20 + 2] = 0xba, b[20 + 3] = 0xc1;           /* destination port 47809 too */
	assert_int_equal(cap_engine_packet(e, DLT_RAW, 3, 0, b, n), 0);
	uint8_t a[12];
	req(a, 1);
	n = pkt(b, 0, 0, 40001, 1, 0, CAP_TCP_ACK, a, 12);
	b[20 + 3] = 0xf7;                             /* destination port 503 */
	assert_int_equal(cap_engine_packet(e, DLT_RAW, 4, 0, b, n), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(cap_engine_stats(e)->packets, 4);
	cap_engine_free(e);
}

/* FC 3 response with `regs` registers. */
static size_t rsp3(uint8_t *out, uint16_t tid, uint8_t regs)
{
	size_t n = 9 + 2u * regs;
	memset(out, 0, n);
	out[0] = (uint8_t)(tid >> 8), out[1] = (uint8_t)tid;
	out[5] = (uint8_t)(3 + 2 * regs);
	out[6] = 1, out[7] = 3, out[8] = (uint8_t)(2 * regs);
	return n;
}

static void responses_paired_and_checked(void **state)
{
	(void)state;
	struct sinkbuf s;
	struct cap_engine *e = mk(&s);
	uint8_t a[12], b[64];
	uint32_t cs = 1, ss = 1;
	req(a, 5);                                     /* FC 3, 2 registers */
	feed(e, 0, cs, ss, CAP_TCP_ACK, a, 12), cs += 12;
	size_t n = rsp3(b, 5, 2);
	feed(e, 1, ss, cs, CAP_TCP_ACK, b, n), ss += (uint32_t)n;
	assert_int_equal(s.n, 2);
	assert_int_equal(s.r[1].result, BMS_OK);
	assert_int_equal(s.r[1].req_frame, 1);
	/* Negative: an answer with 3 registers to a request for 2 is malformed as a response. */
	req(a, 6);
	feed(e, 0, cs, ss, CAP_TCP_ACK, a, 12), cs += 12;
	n = rsp3(b, 6, 3);
	feed(e, 1, ss, cs, CAP_TCP_ACK, b, n), ss += (uint32_t)n;
	assert_int_equal(s.n, 4);
	assert_int_equal(s.r[3].result, BMS_MALFORMED);
	assert_int_equal(s.r[3].req_frame, 3);
	assert_true(s.r[3].anomalies & (1ull << MB_AN_RESPONSE_COUNT_MISMATCH));
	/* A reused transaction id: the response goes to the request it answers (qty 2, not qty 1). */
	req(a, 9);
	a[11] = 1;                                     /* qty 1 */
	feed(e, 0, cs, ss, CAP_TCP_ACK, a, 12), cs += 12;
	req(a, 9);                                     /* qty 2 */
	feed(e, 0, cs, ss, CAP_TCP_ACK, a, 12), cs += 12;
	n = rsp3(b, 9, 2);
	feed(e, 1, ss, cs, CAP_TCP_ACK, b, n), ss += (uint32_t)n;
	assert_int_equal(s.n, 7);
	assert_int_equal(s.r[6].result, BMS_OK);
	assert_int_equal(s.r[6].req_frame, 6);
	/* An unsolicited response is decoded on its own, not paired. */
	n = rsp3(b, 77, 1);
	feed(e, 1, ss, cs, CAP_TCP_ACK, b, n);
	assert_int_equal(s.n, 8);
	assert_int_equal(s.r[7].result, BMS_OK);
	assert_int_equal(s.r[7].req_frame, 0);
	cap_engine_free(e);
}

/* Without a sink the engine counts what it would have reported: the same PDUs, the same
 * malformed ones (a bad response found by pairing, junk bytes, a BACnet datagram). */
static void no_sink_counts_alike(void **state)
{
	(void)state;
	struct sinkbuf s;
	struct cap_engine *with = mk(&s), *without = NULL;
	struct cap_config cfg;
	cap_config_default(&cfg);
	assert_int_equal(cap_config_add_port(&cfg, BMS_PROTO_MODBUS, 502), 0);
	assert_int_equal(cap_config_add_port(&cfg, BMS_PROTO_BACNET, 47808), 0);
	assert_int_equal(cap_engine_new(&cfg, NULL, NULL, &without), 0);
	static const uint8_t rp[] = { 0x81, 0x0a, 0x00, 0x11, 0x01, 0x04, 0x00, 0x05, 0x01, 0x0c,
				      0x0c, 0x02, 0x00, 0x00, 0x01, 0x19, 0x55 };
	struct cap_engine *both[2] = { with, without };
	for (int i = 0; i < 2; i++) {
		struct cap_engine *e = both[i];
		uint8_t a[12], b[64];
		uint32_t cs = 1, ss = 1;
		req(a, 5);
		feed(e, 0, cs, ss, CAP_TCP_ACK, a, 12), cs += 12;
		size_t n = rsp3(b, 5, 3);              /* 3 registers for 2: malformed by pairing */
		feed(e, 1, ss, cs, CAP_TCP_ACK, b, n), ss += (uint32_t)n;
		feed(e, 0, cs, ss, CAP_TCP_ACK, (const uint8_t *)"junk", 4), cs += 4;
		n = pkt(b, 0, 1, 47808, 0, 0, 0, rp, sizeof(rp));
		assert_int_equal(cap_engine_packet(e, DLT_RAW, 1, 0, b, n), 0);
		cap_engine_finish(e);
	}
	const struct cap_stats *a = cap_engine_stats(with), *b = cap_engine_stats(without);
	size_t bad = 0;
	for (size_t i = 0; i < s.n; i++)
		bad += s.r[i].result != BMS_OK;
	assert_int_equal(s.n, 4);
	assert_int_equal(bad, 2);
	assert_int_equal(a->modbus_pdus + a->bacnet_pdus, s.n);
	assert_int_equal(a->malformed, bad);
	assert_int_equal(b->packets, a->packets);
	assert_int_equal(b->modbus_pdus, a->modbus_pdus);
	assert_int_equal(b->bacnet_pdus, a->bacnet_pdus);
	assert_int_equal(b->malformed, a->malformed);
	assert_int_equal(b->resync_bytes, a->resync_bytes);
	cap_engine_free(with);
	cap_engine_free(without);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(split_and_pipelined),
		cmocka_unit_test(garbage_then_resync),
		cmocka_unit_test(gap_inside_an_adu),
		cmocka_unit_test(truncated_at_end),
		cmocka_unit_test(bacnet_udp_and_port_filters),
		cmocka_unit_test(responses_paired_and_checked),
		cmocka_unit_test(no_sink_counts_alike),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
