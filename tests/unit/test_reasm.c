/* tests/unit/test_reasm.c: TCP reassembly: order, retransmission, overlap (first wins), gaps,
 * memory limits per flow and in total, the flow table limit, close reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "capture/link.h"
#include "capture/reasm.h"

#define SYN CAP_TCP_SYN
#define ACK CAP_TCP_ACK
#define FIN CAP_TCP_FIN
#define RST CAP_TCP_RST

struct rec {
	uint8_t got[2][4096];
	size_t n[2];
	unsigned ev[2][64];  /* events of each delivery */
	size_t ndeliv[2];
	unsigned close_ev[8];
	uint16_t close_sport[8];
	size_t ncloses;
};

static void on_data(void *user, struct reasm_flow *f, int dir, const uint8_t *d, size_t len, unsigned ev)
{
	struct rec *r = user;
	(void)f;
	assert_true(len > 0);
	assert_true(r->n[dir] + len <= sizeof(r->got[dir]));
	memcpy(r->got[dir] + r->n[dir], d, len);
	r->n[dir] += len;
	if (r->ndeliv[dir] < 64)
		r->ev[dir][r->ndeliv[dir]] = ev;
	r->ndeliv[dir]++;
}

static void on_close(void *user, struct reasm_flow *f, unsigned ev)
{
	struct rec *r = user;
	if (r->ncloses < 8) {
		r->close_ev[r->ncloses] = ev;
		r->close_sport[r->ncloses] = reasm_flow_key(f)->sport;
	}
	r->ncloses++;
}

static struct reasm_key key_c2s(uint16_t cport)
{
	struct reasm_key k;
	memset(&k, 0, sizeof(k));
	k.ipver = 4;
	k.src[0] = 10, k.src[3] = 1;
	k.dst[0] = 10, k.dst[3] = 2;
	k.sport = cport;
	k.dport = 502;
	return k;
}

static struct reasm_key rev(struct reasm_key k)
{
	struct reasm_key r = k;
	memcpy(r.src, k.dst, 16);
	memcpy(r.dst, k.src, 16);
	r.sport = k.dport;
	r.dport = k.sport;
	return r;
}

static struct reasm *mk(struct rec *r, size_t flows, size_t flow_bytes, size_t total)
{
	struct reasm_config cfg = { .max_flows = flows, .max_flow_bytes = flow_bytes,
				    .max_total_bytes = total, .history_bytes = 256, .app_size = 8 };
	struct reasm_callbacks cb = { .data = on_data, .close = on_close, .user = r };
	struct reasm *ra = NULL;
	memset(r, 0, sizeof(*r));
	assert_int_equal(reasm_new(&cfg, &cb, &ra), 0);
	return ra;
}

/* Client ISN 1000, server ISN 5000: the handshake. */
static void handshake(struct reasm *ra, struct reasm_key k)
{
	assert_int_equal(reasm_tcp(ra, &k, 1000, 0, SYN, NULL, 0), 0);
	struct reasm_key s = rev(k);
	assert_int_equal(reasm_tcp(ra, &s, 5000, 1001, SYN | ACK, NULL, 0), 0);
	assert_int_equal(reasm_tcp(ra, &k, 1001, 5001, ACK, NULL, 0), 0);
}

static void seg(struct reasm *ra, struct reasm_key k, uint32_t seq, const char *s)
{
	assert_int_equal(reasm_tcp(ra, &k, seq, 0, 0, (const uint8_t *)s, strlen(s)), 0);
}

static void in_order(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	handshake(ra, k);
	seg(ra, k, 1001, "abc");
	seg(ra, k, 1004, "def");
	seg(ra, rev(k), 5001, "XY");
	assert_int_equal(r.n[0], 6);
	assert_memory_equal(r.got[0], "abcdef", 6);
	assert_int_equal(r.n[1], 2);
	assert_memory_equal(r.got[1], "XY", 2);
	assert_int_equal(r.ev[0][0] | r.ev[0][1] | r.ev[1][0], 0);
	reasm_free(ra);
}

static void out_of_order(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	handshake(ra, k);
	seg(ra, k, 1007, "ghi");
	seg(ra, k, 1004, "def");
	/* Negative: nothing may be delivered while the first bytes are missing. */
	assert_int_equal(r.n[0], 0);
	assert_true(reasm_stats(ra)->bytes_now > 0);
	seg(ra, k, 1001, "abc");
	assert_int_equal(r.n[0], 9);
	assert_memory_equal(r.got[0], "abcdefghi", 9);
	assert_int_equal(reasm_stats(ra)->out_of_order, 2);
	assert_int_equal(reasm_stats(ra)->bytes_now, 0);
	for (size_t i = 0; i < r.ndeliv[0]; i++)
		assert_int_equal(r.ev[0][i], 0);
	reasm_free(ra);
}

static void retransmission_same_bytes(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	handshake(ra, k);
	seg(ra, k, 1001, "abc");
	seg(ra, k, 1001, "abc");     /* whole retransmission */
	seg(ra, k, 1002, "bcdef");   /* partial: only "def" is new */
	assert_int_equal(r.n[0], 6);
	assert_memory_equal(r.got[0], "abcdef", 6);
	assert_int_equal(reasm_stats(ra)->retransmitted, 2);
	assert_int_equal(reasm_stats(ra)->overlap_diff, 0);
	for (size_t i = 0; i < r.ndeliv[0]; i++)
		assert_int_equal(r.ev[0][i], 0);
	reasm_free(ra);
}

static void retransmission_different_bytes(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	handshake(ra, k);
	seg(ra, k, 1001, "abc");
	seg(ra, k, 1001, "aZc");     /* same range, other bytes: first copy wins */
	seg(ra, k, 1004, "d");
	assert_int_equal(r.n[0], 4);
	assert_memory_equal(r.got[0], "abcd", 4);
	assert_int_equal(reasm_stats(ra)->overlap_diff, 1);
	assert_int_equal(r.ev[0][0], 0);
	assert_true(r.ev[0][1] & REASM_EV_OVERLAP_DIFF);
	reasm_free(ra);
}

static void overlap_in_buffer_first_wins(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	handshake(ra, k);
	seg(ra, k, 1005, "EFGH");    /* buffered: bytes 4..7 */
	seg(ra, k, 1003, "CDxyGHIJ"); /* overlaps 4..7, 4..5 with other bytes; extends to 8..9 */
	seg(ra, k, 1001, "AB");
	assert_int_equal(r.n[0], 10);
	assert_memory_equal(r.got[0], "ABCDEFGHIJ", 10);
	assert_int_equal(reasm_stats(ra)->overlap_diff, 1);
	assert_true(r.ev[0][0] & REASM_EV_OVERLAP_DIFF);
	/* Negative: an overlap with the same bytes raises nothing. */
	seg(ra, k, 1013, "MN");
	seg(ra, k, 1012, "LMN");
	seg(ra, k, 1011, "K");
	assert_memory_equal(r.got[0], "ABCDEFGHIJKLMN", 14);
	assert_int_equal(reasm_stats(ra)->overlap_diff, 1);
	reasm_free(ra);
}

static void gap_skipped_when_acknowledged(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	struct reasm_key s = rev(k);
	handshake(ra, k);
	seg(ra, k, 1001, "abc");
	seg(ra, k, 1007, "ghi");     /* "def" never captured */
	assert_int_equal(r.n[0], 3);
	/* The server acknowledges everything: the hole is lost for good. */
	assert_int_equal(reasm_tcp(ra, &s, 5001, 1010, ACK, NULL, 0), 0);
	assert_int_equal(r.n[0], 6);
	assert_memory_equal(r.got[0], "abcghi", 6);
	assert_true(r.ev[0][1] & REASM_EV_GAP);
	assert_int_equal(reasm_stats(ra)->gaps, 1);
	assert_int_equal(reasm_stats(ra)->gap_bytes, 3);
	/* Later data continues without a new gap flag. */
	seg(ra, k, 1010, "jk");
	assert_int_equal(r.ev[0][2], 0);
	reasm_free(ra);
}

static void gap_waits_without_ack_until_finish(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	struct reasm_key s = rev(k);
	handshake(ra, k);
	seg(ra, k, 1001, "abc");
	seg(ra, k, 1007, "ghi");
	/* An ACK short of the hole proves nothing: keep waiting for a retransmission. */
	assert_int_equal(reasm_tcp(ra, &s, 5001, 1004, ACK, NULL, 0), 0);
	assert_int_equal(r.n[0], 3);
	reasm_finish(ra);
	assert_int_equal(r.n[0], 6);
	assert_true(r.ev[0][1] & REASM_EV_GAP);
	assert_int_equal(r.ncloses, 1);
	assert_true(r.close_ev[0] & REASM_EV_END);
	reasm_free(ra);
}

static void late_bytes_of_a_skipped_hole_are_not_compared(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	struct reasm_key s = rev(k);
	handshake(ra, k);
	seg(ra, k, 1001, "abc");
	seg(ra, k, 1007, "ghi");
	assert_int_equal(reasm_tcp(ra, &s, 5001, 1010, ACK, NULL, 0), 0); /* hole 1004..1006 given up */
	/* The missing bytes turn up late: too late to deliver, and nothing to compare them with. */
	seg(ra, k, 1004, "def");
	seg(ra, k, 1010, "jk");
	assert_memory_equal(r.got[0], "abcghijk", 8);
	assert_int_equal(reasm_stats(ra)->overlap_diff, 0);
	assert_int_equal(r.ev[0][2], 0);
	reasm_free(ra);
}

static void midstream_pickup(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	/* No handshake: the first segment seen sets the sequence. */
	seg(ra, k, 777777, "abc");
	seg(ra, k, 777780, "def");
	assert_memory_equal(r.got[0], "abcdef", 6);
	assert_int_equal(r.ev[0][0], 0);
	reasm_free(ra);
}

static void sequence_wraps(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	seg(ra, k, 0xFFFFFFFEu, "ab");
	seg(ra, k, 2, "ef");         /* after the wrap, out of order */
	seg(ra, k, 0, "cd");
	assert_int_equal(r.n[0], 6);
	assert_memory_equal(r.got[0], "abcdef", 6);
	assert_int_equal(reasm_stats(ra)->gaps, 0);
	reasm_free(ra);
}

static void memory_limit_per_flow(void **state)
{
	(void)state;
	struct rec r;
	char big[201];
	memset(big, 'x', 200);
	big[200] = '\0';
	/* Each buffered piece costs its bytes plus a small header: two fit, three do not. */
	struct reasm *ra = mk(&r, 16, 520, 1 << 20);
	struct reasm_key k = key_c2s(40000);
	handshake(ra, k);
	seg(ra, k, 1101, big);       /* hole 1001..1100 */
	seg(ra, k, 1301, big);
	assert_int_equal(r.n[0], 0);
	seg(ra, k, 1501, big);       /* over the limit: stop waiting for the hole */
	assert_int_equal(r.n[0], 600);
	assert_true(r.ev[0][0] & REASM_EV_GAP);
	assert_true(reasm_stats(ra)->bytes_peak <= 520);
	assert_int_equal(reasm_stats(ra)->bytes_now, 0);
	/* Negative: a segment bigger than the whole per-flow limit is dropped and flagged, never buffered. */
	char huge[601];
	memset(huge, 'y', 600);
	huge[600] = '\0';
	seg(ra, k, 1801, "zz");      /* hole 1701..1800 then 2 bytes: buffered */
	seg(ra, k, 2001, huge);
	assert_true(reasm_stats(ra)->memcap_drops >= 1);
	assert_true(reasm_stats(ra)->bytes_peak <= 520);
	seg(ra, k, 2601, "ok");
	assert_memory_equal(r.got[0] + r.n[0] - 2, "ok", 2);
	assert_true(r.ev[0][r.ndeliv[0] - 1] & (REASM_EV_MEMCAP | REASM_EV_GAP));
	reasm_free(ra);
}

static void memory_limit_total(void **state)
{
	(void)state;
	struct rec r;
	char big[401];
	memset(big, 'x', 400);
	big[400] = '\0';
	const char *b300 = big + 100;
	/* A buffered piece of 300 bytes costs 300 + a 16-byte header; two fit in 700, three do not. */
	struct reasm *ra = mk(&r, 16, 4096, 700);
	struct reasm_key a = key_c2s(40000), b = key_c2s(40001), c = key_c2s(40002);
	handshake(ra, a);
	handshake(ra, b);
	handshake(ra, c);
	seg(ra, a, 1101, b300);      /* flow a waits for 1001..1100 */
	seg(ra, b, 1101, b300);      /* flow b too */
	assert_int_equal(r.n[0], 0);
	seg(ra, b, 1501, b300);      /* over the total: b gives up its own hole, frees, then fits */
	assert_int_equal(r.n[0], 300);
	assert_true(r.ev[0][0] & REASM_EV_GAP);
	assert_int_equal(reasm_stats(ra)->memcap_drops, 0);
	assert_true(reasm_stats(ra)->bytes_now <= 700);
	/* Flow a was not flushed by b's pressure: it still delivers in order once its hole fills. */
	char fill[101];
	memset(fill, 'f', 100);
	fill[100] = '\0';
	seg(ra, a, 1001, fill);
	assert_int_equal(r.n[0], 700);
	assert_int_equal(r.ev[0][1] | r.ev[0][2], 0);
	/* Negative: c's piece cannot fit beside b's, even after c flushed itself: dropped, flagged. */
	seg(ra, c, 1101, big);
	assert_int_equal(reasm_stats(ra)->memcap_drops, 1);
	assert_true(reasm_stats(ra)->bytes_peak <= 700);
	seg(ra, c, 1501, "ok");
	assert_memory_equal(r.got[0] + r.n[0] - 2, "ok", 2);
	assert_true(r.ev[0][r.ndeliv[0] - 1] & REASM_EV_MEMCAP);
	assert_true(r.ev[0][r.ndeliv[0] - 1] & REASM_EV_GAP);
	reasm_free(ra);
}

/* A segment that fills several holes between buffered pieces is stored as several pieces, each
 * with its own header: the limit holds for every piece, not only for the segment as a whole. */
static void memory_limit_holds_for_each_piece(void **state)
{
	(void)state;
	struct rec r;
	/* pieces of 10 bytes cost 10 + 16; three held = 78. The 50-byte segment below passes a
	 * whole-segment check (78 + 66 <= 150) but needs three new pieces (78 + 78 > 150). */
	struct reasm *ra = mk(&r, 16, 150, 1 << 20);
	struct reasm_key k = key_c2s(40000);
	handshake(ra, k);
	seg(ra, k, 1011, "AAAAAAAAAA"); /* hole 1001..1010 keeps everything buffered */
	seg(ra, k, 1031, "BBBBBBBBBB");
	seg(ra, k, 1051, "CCCCCCCCCC");
	assert_int_equal(reasm_stats(ra)->bytes_now, 78);
	seg(ra, k, 1021, "xxxxxxxxxxBBBBBBBBBByyyyyyyyyyCCCCCCCCCCzzzzzzzzzz");
	assert_true(reasm_stats(ra)->bytes_peak <= 150);
	assert_true(reasm_stats(ra)->bytes_now <= 150);
	assert_int_equal(reasm_stats(ra)->memcap_drops, 1);
	/* the pieces that fitted are delivered once the hole fills; the dropped one is a flagged gap */
	seg(ra, k, 1001, "0123456789");
	assert_int_equal(r.n[0], 60);
	assert_memory_equal(r.got[0], "0123456789AAAAAAAAAAxxxxxxxxxxBBBBBBBBBByyyyyyyyyyCCCCCCCCCC", 60);
	assert_true(r.ev[0][0] & REASM_EV_MEMCAP);
	reasm_finish(ra);
	assert_int_equal(reasm_stats(ra)->bytes_now, 0);
	reasm_free(ra);
}

static void flow_table_limit(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 2, 4096, 65536);
	struct reasm_key a = key_c2s(40000), b = key_c2s(40001), c = key_c2s(40002);
	seg(ra, a, 1, "a");
	seg(ra, b, 1, "b");
	seg(ra, a, 2, "a");           /* a is now the most recently used */
	assert_int_equal(reasm_stats(ra)->flows_now, 2);
	assert_int_equal(r.ncloses, 0);
	seg(ra, c, 1, "c");           /* evicts b, the least recently used */
	assert_int_equal(reasm_stats(ra)->flows_now, 2);
	assert_int_equal(reasm_stats(ra)->evicted, 1);
	assert_int_equal(r.ncloses, 1);
	assert_true(r.close_ev[0] & REASM_EV_EVICTED);
	assert_int_equal(r.close_sport[0], 40001);
	/* Negative: a bare ACK of an unknown flow creates nothing (so cannot evict). */
	struct reasm_key d = key_c2s(40003);
	assert_int_equal(reasm_tcp(ra, &d, 1, 1, ACK, NULL, 0), 0);
	assert_int_equal(reasm_stats(ra)->flows, 3);
	reasm_free(ra);
}

static void fin_rst_and_reuse(void **state)
{
	(void)state;
	struct rec r;
	struct reasm *ra = mk(&r, 16, 4096, 65536);
	struct reasm_key k = key_c2s(40000);
	struct reasm_key s = rev(k);
	handshake(ra, k);
	seg(ra, k, 1001, "ab");
	assert_int_equal(reasm_tcp(ra, &k, 1003, 5001, FIN | ACK, NULL, 0), 0);
	assert_int_equal(r.ncloses, 0);   /* one direction finished is not the end */
	assert_int_equal(reasm_tcp(ra, &s, 5001, 1004, FIN | ACK, NULL, 0), 0);
	assert_int_equal(r.ncloses, 1);
	assert_true(r.close_ev[0] & REASM_EV_FIN);
	assert_int_equal(reasm_stats(ra)->flows_now, 0);
	/* RST closes at once. */
	handshake(ra, k);
	assert_int_equal(reasm_tcp(ra, &s, 5001, 0, RST, NULL, 0), 0);
	assert_int_equal(r.ncloses, 2);
	assert_true(r.close_ev[1] & REASM_EV_RST);
	/* A new SYN with another ISN on open ports closes the old connection. */
	handshake(ra, k);
	assert_int_equal(reasm_tcp(ra, &k, 9000, 0, SYN, NULL, 0), 0);
	assert_int_equal(r.ncloses, 3);
	assert_true(r.close_ev[2] & REASM_EV_REUSED);
	/* Negative: a retransmitted SYN (same ISN) is not a new connection. */
	assert_int_equal(reasm_tcp(ra, &k, 9000, 0, SYN, NULL, 0), 0);
	assert_int_equal(r.ncloses, 3);
	reasm_free(ra);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(in_order),
		cmocka_unit_test(out_of_order),
		cmocka_unit_test(retransmission_same_bytes),
		cmocka_unit_test(retransmission_different_bytes),
		cmocka_unit_test(overlap_in_buffer_first_wins),
		cmocka_unit_test(gap_skipped_when_acknowledged),
		cmocka_unit_test(gap_waits_without_ack_until_finish),
		cmocka_unit_test(late_bytes_of_a_skipped_hole_are_not_compared),
		cmocka_unit_test(midstream_pickup),
		cmocka_unit_test(sequence_wraps),
		cmocka_unit_test(memory_limit_per_flow),
		cmocka_unit_test(memory_limit_total),
		cmocka_unit_test(memory_limit_holds_for_each_piece),
		cmocka_unit_test(flow_table_limit),
		cmocka_unit_test(fin_rst_and_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
