/* cmd/cmd_decode.c: `bmsgate decode CAPTURE`: one line (or one JSON object) per PDU.
 *
 * Reading is libpcap's (pcap and pcapng); everything after it is the pure
 * engine (capture/engine.c). Output goes through one 64 KiB buffer with
 * hand-written number formatting: this command is benchmarked against tshark
 * and a bare libpcap loop, and printf per field would dominate.
 */
#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture/engine.h"
#include "cmd/cmds.h"
#include "parsers/bacnet.h"
#include "parsers/modbus.h"

enum out_mode { OUT_TEXT, OUT_JSON, OUT_QUIET, OUT_COUNT };

/* Formatted "src:port->dst:port" of recently seen IPv4 flows (both directions apart): most PDUs
 * repeat a flow. Direct-mapped on a hash of the key; one cache line an entry, since the lookup
 * per record was mostly a cache miss with bigger ones. IPv6 flows are formatted each time. */
struct flow_text {
	uint32_t src, dst;   /* as in memory */
	uint32_t ports;      /* sport << 16 | dport */
	uint8_t used;
	uint8_t len;
	char s[50];          /* at most 43: "255.255.255.255:65535->255.255.255.255:65535", + 7 for put_u16 */
} __attribute__((aligned(64)));
#define FLOW_CACHE 1024

struct out {
	FILE *f;
	size_t n;
	int err;
	int64_t ts_sec;      /* the second whose digits are in ts_text */
	size_t ts_len;
	char ts_text[24];
	struct flow_text flows[FLOW_CACHE];
	char buf[1 << 18];
};

struct decode_ctx {
	enum out_mode mode;
	struct out out;
};

static void out_flush(struct out *o)
{
	if (o->n > 0 && fwrite(o->buf, 1, o->n, o->f) != o->n)
		o->err = errno ? errno : EIO;
	o->n = 0;
}

/* Every record is far smaller than this: flushing before each keeps appends unchecked-safe. */
#define OUT_RECORD_MAX 8192

static void out_reserve(struct out *o)
{
	if (sizeof(o->buf) - o->n < OUT_RECORD_MAX)
		out_flush(o);
}

static BMS_HOT void out_mem(struct out *o, const char *s, size_t n)
{
	if (n > sizeof(o->buf) - o->n) {
		out_flush(o);
		if (n > sizeof(o->buf)) {
			if (fwrite(s, 1, n, o->f) != n)
				o->err = EIO;
			return;
		}
	}
	memcpy(o->buf + o->n, s, n);
	o->n += n;
}

/* Literals only: the empty-string concatenation refuses anything else at compile time. */
#define OUT_LIT(o, s) out_mem((o), "" s "", sizeof(s) - 1)

static void out_str(struct out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static const char digit_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Decimal digits into the end of tmp[20]; returns the first digit. Two digits per division. */
static inline char *fmt_u64(char tmp[static 20], uint64_t v)
{
	char *p = tmp + 20;
	while (v >= 100) {
		unsigned r = (unsigned)(v % 100);
		v /= 100;
		p -= 2;
		memcpy(p, digit_pairs + 2 * r, 2);
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digit_pairs + 2 * v, 2);
	} else {
		*--p = (char)('0' + v);
	}
	return p;
}

/* Copies n <= cap bytes as a fixed-size copy of cap bytes (inlined moves instead of a call for a
 * variable length): the bytes past n land in free buffer space and are overwritten later.
 * `s` must be readable for cap bytes. */
static BMS_HOT void out_over(struct out *o, const char *s, size_t n, size_t cap)
{
	if (sizeof(o->buf) - o->n >= cap) {
		memcpy(o->buf + o->n, s, cap);
		o->n += n;
		return;
	}
	out_mem(o, s, n);
}

static inline void out_u64(struct out *o, uint64_t v)
{
	char tmp[40]; /* digits end at tmp + 20; the 20 bytes after them keep out_over's read in bounds */
	memset(tmp + 20, 0, 20);
	char *p = fmt_u64(tmp, v);
	out_over(o, p, (size_t)(tmp + 20 - p), 20);
}

/* JSON string body (RFC 8259 7): quote, backslash and control characters escaped. */
static void out_json_str(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	OUT_LIT(o, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			out_mem(o, esc, 2);
		} else if (*p < 0x20) {
			char esc[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
			out_mem(o, esc, 6);
		} else {
			out_mem(o, (const char *)p, 1);
		}
	}
	OUT_LIT(o, "\"");
}

/* ".uuuuuu": six digits, zero-padded. */
static void out_usec(struct out *o, int32_t usec)
{
	char t[7];
	uint32_t v = (uint32_t)usec % 1000000u;
	t[0] = '.';
	for (int i = 6; i >= 1; i--) {
		t[i] = (char)('0' + v % 10);
		v /= 10;
	}
	out_mem(o, t, 7);
}

/* --- unchecked appends: sink() leaves OUT_RECORD_MAX bytes free before a record, and the
 * fixed part of a record (everything but the anomaly names) is bounded far below that:
 * keys, at most 12 numbers of at most 20 digits, a flow of at most 114 bytes. --- */

#define PUT_LIT(w, s) (memcpy((w), "" s "", sizeof(s) - 1), (w) + sizeof(s) - 1)

/* Number of decimal digits of v: log10 from the bit length, corrected by one compare. */
static inline unsigned ndigits32(uint32_t v)
{
	static const uint32_t pow10[10] = { 0, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
					    1000000000 };
	unsigned t = (unsigned)(32 - __builtin_clz(v | 1)) * 1233u >> 12;
	return t + 1 - (v < pow10[t]);
}

/* Decimal digits at w; returns the end. The digit count is known first, so the digits are
 * written in place, two per division. */
static BMS_HOT char *put_u32(char *w, uint32_t v)
{
	unsigned n = ndigits32(v);
	char *p = w + n;

	while (v >= 100) {
		unsigned r = v % 100;
		v /= 100;
		p -= 2;
		memcpy(p, digit_pairs + 2 * r, 2);
	}
	if (v >= 10)
		memcpy(p - 2, digit_pairs + 2 * v, 2);
	else
		p[-1] = (char)('0' + v);
	return w + n;
}

static BMS_HOT char *put_u64(char *w, uint64_t v)
{
	if (__builtin_expect(v <= UINT32_MAX, 1))
		return put_u32(w, (uint32_t)v);
	char tmp[20];
	char *d = fmt_u64(tmp, v);
	size_t n = (size_t)(tmp + 20 - d);
	memcpy(w, d, n);
	return w + n;
}

/* 0..65535 without a loop or a branch: the five digits are made in a register whatever the
 * value, shifted to drop the leading zeros and stored with one 8-byte move (the bytes past the
 * number land in free buffer space and are overwritten later). In a register, not a byte
 * array: an 8-byte load over bytes just stored one by one stalls (no store forwarding). */
static BMS_HOT char *put_u16(char *w, uint16_t v)
{
	unsigned n = 1u + (v >= 10) + (v >= 100) + (v >= 1000) + (v >= 10000);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	unsigned r = v % 10000u;
	uint16_t hi, lo;
	memcpy(&hi, digit_pairs + 2 * (r / 100), 2);
	memcpy(&lo, digit_pairs + 2 * (r % 100), 2);
	uint64_t x = (uint64_t)('0' + v / 10000u) | (uint64_t)hi << 8 | (uint64_t)lo << 24;
	x >>= 8 * (5 - n);
	memcpy(w, &x, 8);
	return w + n;
#else
	return put_u32(w, v);
#endif
}

/* 0..255 from a table made at start: one load and one 4-byte store (the byte past the digits,
 * the length, lands in free buffer space and is overwritten later). */
struct u8_text {
	char s[3];
	uint8_t len;
};
static struct u8_text u8_texts[256];

static void u8_texts_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		char tmp[20];
		char *d = fmt_u64(tmp, v);
		u8_texts[v].len = (uint8_t)(tmp + 20 - d);
		memcpy(u8_texts[v].s, d, u8_texts[v].len);
	}
}

static BMS_HOT char *put_u8(char *w, uint8_t v)
{
	memcpy(w, &u8_texts[v], 4);
	return w + u8_texts[v].len;
}

#define PUT_KEY(w, lit, v) put_u64(PUT_LIT((w), lit), (v))
/* For fields of at most 16 and 8 bits (the types say so where the macros are used). */
#define PUT_KEY16(w, lit, v) put_u16(PUT_LIT((w), lit), (uint16_t)(v))
#define PUT_KEY8(w, lit, v) put_u8(PUT_LIT((w), lit), (uint8_t)(v))

/* "a.b.c.d:port" or "[v6]:port" at s (at least 56 bytes free); returns the end. */
static char *put_endpoint(char *s, uint8_t ipver, const uint8_t *a, uint16_t port)
{
	if (ipver == 6) {
		*s++ = '[';
		s += cap_addr_str(6, a, s);
		*s++ = ']';
	} else {
		for (int i = 0; i < 4; i++) {
			s = put_u16(s, a[i]);
			*s++ = '.';
		}
		s--;
	}
	*s++ = ':';
	return put_u16(s, port);
}

/* "src:port->dst:port" at w; returns the end. */
static char *put_flow_text(char *w, const struct cap_pdu *p)
{
	w = put_endpoint(w, p->ipver, p->src, p->sport);
	w = PUT_LIT(w, "->");
	return put_endpoint(w, p->ipver, p->dst, p->dport);
}

/* A TCP flow's text, kept in the engine's per-flow scratch (cap_pdu.flow_scratch). */
struct flow_text_tcp {
	uint8_t len;         /* 0: not made yet */
	char s[CAP_FLOW_SCRATCH - 1];
};
_Static_assert(sizeof(struct flow_text_tcp) <= CAP_FLOW_SCRATCH, "fits the engine's scratch");
_Static_assert(sizeof(((struct flow_text_tcp *)0)->s) >= 43 + 7, "an IPv4 flow text and put_u16's overrun");

static char *put_flow(struct out *o, char *w, const struct cap_pdu *p)
{
	if (p->flow_scratch != NULL && p->ipver != 6) {
		struct flow_text_tcp *t = p->flow_scratch;
		if (t->len == 0)
			t->len = (uint8_t)(put_flow_text(t->s, p) - t->s);
		memcpy(w, t->s, sizeof(t->s));
		return w + t->len;
	}
	if (p->ipver == 6)
		return put_flow_text(w, p);
	uint32_t src, dst, ports = (uint32_t)p->sport << 16 | p->dport;
	memcpy(&src, p->src, 4);
	memcpy(&dst, p->dst, 4);
	uint64_t h = ((uint64_t)src << 32 | dst) * 0x9E3779B97F4A7C15ull ^ ports * 0xC2B2AE3D27D4EB4Full;
	struct flow_text *t = &o->flows[(h ^ (h >> 29)) >> 54 & (FLOW_CACHE - 1)];

	if (!t->used || t->src != src || t->dst != dst || t->ports != ports) {
		t->len = (uint8_t)(put_flow_text(t->s, p) - t->s);
		t->src = src;
		t->dst = dst;
		t->ports = ports;
		t->used = 1;
	}
	/* A fixed-size copy (inlined moves); the bytes past len are overwritten later. */
	memcpy(w, t->s, sizeof(t->s));
	return w + t->len;
}

static void out_flow(struct out *o, const struct cap_pdu *p)
{
	out_reserve(o);
	o->n = (size_t)(put_flow(o, o->buf + o->n, p) - o->buf);
}

/* Epoch seconds: the digits are kept while the second does not change; then ".uuuuuu". */
static char *put_ts(struct out *o, char *w, int64_t sec, int32_t usec)
{
	if (o->ts_len == 0 || sec != o->ts_sec) {
		char tmp[20];
		char *d = fmt_u64(tmp, (uint64_t)(sec < 0 ? -sec : sec));
		o->ts_len = 0;
		if (sec < 0)
			o->ts_text[o->ts_len++] = '-';
		memcpy(o->ts_text + o->ts_len, d, (size_t)(tmp + 20 - d));
		o->ts_len += (size_t)(tmp + 20 - d);
		o->ts_sec = sec;
	}
	memcpy(w, o->ts_text, sizeof(o->ts_text));
	w += o->ts_len;
	uint32_t v = (uint32_t)usec % 1000000u;
	w[0] = '.';
	memcpy(w + 1, digit_pairs + 2 * (v / 10000), 2);
	memcpy(w + 3, digit_pairs + 2 * (v / 100 % 100), 2);
	memcpy(w + 5, digit_pairs + 2 * (v % 100), 2);
	return w + 7;
}

/* An exception response's code, when the decoder read one (it stops before the code of an
 * exception to an invalid function such as 0x80). */
static int modbus_show_exception(const struct modbus_fields *m, int result)
{
	return (m->fc & 0x80) && (m->exception != 0 || result == BMS_OK);
}

/* FC 24 responses carry no quantity field but a FIFO count: the number of registers returned. */
static int modbus_show_fifo(const struct modbus_fields *m, uint8_t dir, int result)
{
	return m->fc == 24 && dir == BMS_DIR_RESPONSE && result == BMS_OK;
}

/* Anomaly names: the decoder's bits, then the capture's. `sep` between names. */
static void out_anomalies(struct out *o, const struct cap_pdu *p, int json)
{
	int first = 1;
	uint64_t bits = p->req->anomalies;

	if (bits == 0 && p->cap_anomalies == 0)
		return;
	for (unsigned b = 0; b < 64 + CAP_AN_COUNT; b++) {
		const char *name;
		char tmp[16];
		if (b < 64) {
			if (!(bits >> b & 1))
				continue;
			name = bms_anomaly_name((enum bms_proto)p->req->proto, b);
			if (name == NULL) {
				snprintf(tmp, sizeof(tmp), "bit_%u", b);
				name = tmp;
			}
		} else {
			if (!(p->cap_anomalies >> (b - 64) & 1))
				continue;
			name = cap_anomaly_name(b - 64);
		}
		if (!first)
			OUT_LIT(o, ",");
		first = 0;
		if (json)
			out_json_str(o, name);
		else
			out_str(o, name);
	}
}

static BMS_HOT void json_key_u64(struct out *o, const char *key, size_t keylen, uint64_t v)
{
	out_mem(o, key, keylen);
	out_u64(o, v);
}

#define JKEY(o, lit, v) json_key_u64((o), lit, sizeof(lit) - 1, (v))

/* The end of a JSON record, `,"op":"read","malformed":false,"anomalies":[`, for each
 * operation class and verdict, with and without the closing `]}\n` of an empty list. */
struct json_tail {
	uint8_t len, len_closed;
	char s[64];
};
static struct json_tail json_tails[BMS_OP_COUNT][2];

static void json_tails_init(void)
{
	for (unsigned op = 0; op < BMS_OP_COUNT; op++) {
		for (int bad = 0; bad < 2; bad++) {
			struct json_tail *t = &json_tails[op][bad];
			int n = snprintf(t->s, sizeof(t->s), ",\"op\":\"%s\",\"malformed\":%s,\"anomalies\":[",
					 bms_op_name((enum bms_op)op), bad ? "true" : "false");
			t->len = (uint8_t)n;
			memcpy(t->s + n, "]}\n", 3);
			t->len_closed = (uint8_t)(n + 3);
		}
	}
}

static void write_json(struct out *o, const struct cap_pdu *p)
{
	const struct bms_request *q = p->req;
	char *w = o->buf + o->n;

	w = PUT_LIT(w, "{\"ts\":");
	w = put_ts(o, w, p->ts_sec, p->ts_usec);
	w = PUT_KEY(w, ",\"frame\":", p->frame);
	if (p->req_frame != 0)
		w = PUT_KEY(w, ",\"req_frame\":", p->req_frame);
	w = PUT_LIT(w, ",\"flow\":\"");
	w = put_flow(o, w, p);
	if (q->proto == BMS_PROTO_MODBUS) {
		const struct modbus_fields *m = &q->raw.modbus;
		if (q->dir == BMS_DIR_REQUEST)
			w = PUT_LIT(w, "\",\"proto\":\"modbus\",\"dir\":\"request\"");
		else
			w = PUT_LIT(w, "\",\"proto\":\"modbus\",\"dir\":\"response\"");
		if (p->len >= MODBUS_MBAP_LEN) {
			w = PUT_KEY16(w, ",\"tid\":", m->tid);
			w = PUT_KEY8(w, ",\"unit\":", m->unit);
		}
		if (m->has_fc) {
			w = PUT_KEY8(w, ",\"fc\":", m->fc & 0x7F);
			if (modbus_show_exception(m, p->result))
				w = PUT_KEY8(w, ",\"exception\":", m->exception);
			if (m->has_addr)
				w = PUT_KEY16(w, ",\"addr\":", m->addr);
			if (m->has_qty)
				w = PUT_KEY16(w, ",\"qty\":", m->qty);
			else if (modbus_show_fifo(m, q->dir, p->result))
				w = PUT_KEY16(w, ",\"qty\":", m->fifo_count);
		}
	} else {
		const struct bacnet_fields *b = &q->raw.bacnet;
		if (q->dir == BMS_DIR_REQUEST)
			w = PUT_LIT(w, "\",\"proto\":\"bacnet\",\"dir\":\"request\"");
		else
			w = PUT_LIT(w, "\",\"proto\":\"bacnet\",\"dir\":\"response\"");
		if (p->len >= 2)
			w = PUT_KEY8(w, ",\"bvlc\":", b->bvlc_function);
		if (b->has_net_msg)
			w = PUT_KEY8(w, ",\"net_msg\":", b->net_msg_type);
		if (b->has_apdu)
			w = PUT_KEY8(w, ",\"pdu_type\":", b->pdu_type);
		if (b->has_service)
			w = PUT_KEY8(w, ",\"service\":", b->service);
		if (b->has_invoke_id)
			w = PUT_KEY8(w, ",\"invoke_id\":", b->invoke_id);
		if (q->ntargets > 0 && q->targets[0].space == BMS_SPACE_BACNET_OBJECT) {
			const struct bms_target *t = &q->targets[0];
			w = PUT_KEY16(w, ",\"object_type\":", t->object_type);
			w = PUT_KEY(w, ",\"instance\":", t->instance);
			if (t->property != BMS_NO_INDEX)
				w = PUT_KEY(w, ",\"property\":", t->property);
			if (t->array_index != BMS_NO_INDEX)
				w = PUT_KEY(w, ",\"array_index\":", t->array_index);
			if (t->priority != 0)
				w = PUT_KEY8(w, ",\"priority\":", t->priority);
		}
	}
	int anomalies = q->anomalies != 0 || p->cap_anomalies != 0;
	if (q->op < BMS_OP_COUNT) {
		const struct json_tail *t = &json_tails[q->op][p->result != BMS_OK];
		memcpy(w, t->s, sizeof(t->s));
		w += anomalies ? t->len : t->len_closed;
		o->n = (size_t)(w - o->buf);
		if (!anomalies)
			return;
	} else {
		o->n = (size_t)(w - o->buf);
		OUT_LIT(o, ",\"op\":\"");
		out_str(o, bms_op_name((enum bms_op)q->op));
		out_str(o, p->result == BMS_OK ? "\",\"malformed\":false,\"anomalies\":[" : "\",\"malformed\":true,\"anomalies\":[");
	}
	/* The names go through the checked appends: their number is not bounded by this function. */
	out_anomalies(o, p, 1);
	OUT_LIT(o, "]}\n");
}

static void write_text(struct out *o, const struct cap_pdu *p)
{
	const struct bms_request *q = p->req;
	char tbuf[64];
	struct tm tm;
	time_t t = (time_t)p->ts_sec;

	if (gmtime_r(&t, &tm) != NULL)
		strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	else
		snprintf(tbuf, sizeof(tbuf), "%" PRId64, p->ts_sec);
	out_str(o, tbuf);
	out_usec(o, p->ts_usec);
	OUT_LIT(o, "Z #");
	out_u64(o, p->frame);
	OUT_LIT(o, " ");
	out_flow(o, p);
	if (q->proto == BMS_PROTO_MODBUS) {
		const struct modbus_fields *m = &q->raw.modbus;
		out_str(o, q->dir == BMS_DIR_REQUEST ? " modbus request" : " modbus response");
		if (p->len >= MODBUS_MBAP_LEN) {
			JKEY(o, " tid=", m->tid);
			JKEY(o, " unit=", m->unit);
		}
		if (m->has_fc) {
			JKEY(o, " fc=", m->fc & 0x7F);
			OUT_LIT(o, " (");
			out_str(o, modbus_fc_name(m->fc & 0x7F));
			OUT_LIT(o, ")");
			if (modbus_show_exception(m, p->result)) {
				JKEY(o, " exception=", m->exception);
				OUT_LIT(o, " (");
				out_str(o, modbus_exception_name(m->exception));
				OUT_LIT(o, ")");
			}
			if (m->has_addr)
				JKEY(o, " addr=", m->addr);
			if (m->has_qty)
				JKEY(o, " qty=", m->qty);
			else if (modbus_show_fifo(m, q->dir, p->result))
				JKEY(o, " qty=", m->fifo_count);
		}
	} else {
		const struct bacnet_fields *b = &q->raw.bacnet;
		out_str(o, q->dir == BMS_DIR_REQUEST ? " bacnet request" : " bacnet response");
		if (p->len >= 2)
			JKEY(o, " bvlc=", b->bvlc_function);
		if (b->has_net_msg)
			JKEY(o, " net_msg=", b->net_msg_type);
		if (b->has_apdu)
			JKEY(o, " pdu_type=", b->pdu_type);
		if (b->has_service) {
			JKEY(o, " service=", b->service);
			OUT_LIT(o, " (");
			out_str(o, b->pdu_type == 1 ? bacnet_unconfirmed_service_name(b->service)
						    : bacnet_confirmed_service_name(b->service));
			OUT_LIT(o, ")");
		}
		if (b->has_invoke_id)
			JKEY(o, " invoke_id=", b->invoke_id);
		if (q->ntargets > 0 && q->targets[0].space == BMS_SPACE_BACNET_OBJECT) {
			const struct bms_target *tg = &q->targets[0];
			JKEY(o, " object=", tg->object_type);
			JKEY(o, ":", tg->instance);
			if (tg->property != BMS_NO_INDEX)
				JKEY(o, " property=", tg->property);
			if (tg->array_index != BMS_NO_INDEX)
				JKEY(o, "[", tg->array_index), OUT_LIT(o, "]");
			if (tg->priority != 0)
				JKEY(o, " priority=", tg->priority);
		}
	}
	if (p->req_frame != 0)
		JKEY(o, " request=#", p->req_frame);
	OUT_LIT(o, " op=");
	out_str(o, bms_op_name((enum bms_op)q->op));
	if (q->anomalies != 0 || p->cap_anomalies != 0) {
		OUT_LIT(o, " anomalies=");
		out_anomalies(o, p, 0);
	}
	if (p->result != BMS_OK)
		OUT_LIT(o, " MALFORMED");
	OUT_LIT(o, "\n");
}

static void sink(void *user, const struct cap_pdu *p)
{
	struct decode_ctx *c = user;

	switch (c->mode) {
	case OUT_JSON:
		out_reserve(&c->out);
		write_json(&c->out, p);
		break;
	case OUT_TEXT:
		out_reserve(&c->out);
		write_text(&c->out, p);
		break;
	case OUT_QUIET:
	case OUT_COUNT:
		break;
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bmsgate decode CAPTURE [--json] [--modbus-port N]... [--bacnet-port N]... [--quiet|--count]\n"
		   "                      [--max-flows N] [--max-flow-bytes N] [--max-buffer-bytes N]\n"
		   "  Decodes every Modbus/TCP and BACnet/IP PDU of a pcap or pcapng capture.\n"
		   "  --json          one JSON object per PDU (JSON Lines); default: one readable line per PDU\n"
		   "  --modbus-port N Modbus/TCP server port (repeatable; default 502)\n"
		   "  --bacnet-port N BACnet/IP UDP port (repeatable; default 47808)\n"
		   "  --max-flows N          TCP flows tracked at once (default 4096; the least recently used is evicted)\n"
		   "  --max-flow-bytes N     out-of-order bytes buffered per flow (default 65536)\n"
		   "  --max-buffer-bytes N   out-of-order bytes buffered in total (default 16777216)\n"
		   "  --quiet         decode, print nothing (exit status only)\n"
		   "  --count         print only the totals\n"
		   "Exit status: 0 decoded, 1 usage error, 2 the capture cannot be read, 3 out of memory.\n");
}

static int parse_port(const char *opt, const char *s, uint16_t *out)
{
	char *end;
	unsigned long v;

	if (s == NULL) {
		fprintf(stderr, "bmsgate decode: %s needs a port number\n", opt);
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v == 0 || v > 65535) {
		fprintf(stderr, "bmsgate decode: %s: '%s' is not a port number (1..65535)\n", opt, s);
		return -EINVAL;
	}
	*out = (uint16_t)v;
	return 0;
}

/* A size limit: 1 .. 2^40, decimal. */
static int parse_limit(const char *opt, const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL) {
		fprintf(stderr, "bmsgate decode: %s needs a number\n", opt);
		return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *s == '\0' || *s == '-' || *end != '\0' || v == 0 || v > (1ull << 40)) {
		fprintf(stderr, "bmsgate decode: %s: '%s' is not a number in 1..%llu\n", opt, s, 1ull << 40);
		return -EINVAL;
	}
	*out = (size_t)v;
	return 0;
}

static int dlt_supported(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB: case DLT_LINUX_SLL: case DLT_LINUX_SLL2: case DLT_RAW:
	case DLT_IPV4: case DLT_IPV6: case DLT_NULL: case DLT_LOOP:
		return 1;
	}
	return 0;
}

/* pcap_open_offline, with the reading made cheaper (libpcap reads every packet with two
 * freads): the FILE's locking is left to us (each fread took and released the stream lock,
 * two atomic operations; this command is single-threaded, so the lock guards nothing), and
 * the stdio buffer is CAPTURE_BUF bytes instead of one 4 KiB page per read system call. Both
 * were about a tenth of the time of a bare read loop each. Errors read as pcap_open_offline's
 * ("FILE: reason"); "-" is the standard input, as there. *buf (owned) is freed by the caller
 * after pcap_close. */
#define CAPTURE_BUF (256 * 1024)
static pcap_t *open_capture(const char *file, char errbuf[static PCAP_ERRBUF_SIZE], char **buf)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	pcap_t *pc;

	*buf = NULL;
	if (f == NULL) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s: %s", file, strerror(errno));
		return NULL;
	}
	__fsetlocking(f, FSETLOCKING_BYCALLER);
	/* glibc ignores the size unless given the buffer; without one, the default buffering.
	 * Not on stdin, which pcap_close leaves open (it would keep a freed buffer). */
	if (f != stdin)
		*buf = malloc(CAPTURE_BUF);
	if (*buf != NULL && setvbuf(f, *buf, _IOFBF, CAPTURE_BUF) != 0) {
		free(*buf);
		*buf = NULL;
	}
	pc = pcap_fopen_offline(f, errbuf);
	if (pc == NULL && f != stdin)
		fclose(f);
	return pc;
}

static void print_counts(FILE *f, const struct cap_engine *e)
{
	const struct cap_stats *s = cap_engine_stats(e);
	const struct reasm_stats *r = cap_engine_reasm_stats(e);

	fprintf(f, "packets %" PRIu64 " bytes %" PRIu64 " pdus %" PRIu64 " modbus %" PRIu64 " bacnet %" PRIu64
		   " malformed %" PRIu64 "\n",
		s->packets, s->bytes, s->modbus_pdus + s->bacnet_pdus, s->modbus_pdus, s->bacnet_pdus, s->malformed);
	fprintf(f, "skipped: not_ip %" PRIu64 " not_tcp_udp %" PRIu64 " ip_fragment %" PRIu64
		   " malformed_header %" PRIu64 "\n",
		s->link_err[-CAP_LINK_NOT_IP], s->link_err[-CAP_LINK_NOT_L4], s->link_err[-CAP_LINK_FRAGMENT],
		s->link_err[-CAP_LINK_MALFORMED]);
	fprintf(f, "tcp: flows %" PRIu64 " segments %" PRIu64 " retransmitted %" PRIu64 " out_of_order %" PRIu64
		   " overlap_differs %" PRIu64 " gaps %" PRIu64 " gap_bytes %" PRIu64 " memcap_drops %" PRIu64
		   " evicted %" PRIu64 " resync_bytes %" PRIu64 " peak_buffered %zu\n",
		r->flows, r->segments, r->retransmitted, r->out_of_order, r->overlap_diff, r->gaps, r->gap_bytes,
		r->memcap_drops, r->evicted, s->resync_bytes, r->bytes_peak);
}

int cmd_decode(int argc, char **argv)
{
	struct cap_config cfg;
	struct decode_ctx *ctx = NULL;
	struct cap_engine *e = NULL;
	pcap_t *pc = NULL;
	char errbuf[PCAP_ERRBUF_SIZE];
	const char *file = NULL;
	char *capbuf = NULL; /* owned: the capture FILE's buffer, freed after pcap_close */
	int status = 1, err;
	uint16_t port;

	cap_config_default(&cfg);
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		fprintf(stderr, "bmsgate decode: out of memory\n");
		return 3;
	}
	ctx->mode = OUT_TEXT;
	ctx->out.f = stdout;
	json_tails_init();
	u8_texts_init();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			ctx->mode = OUT_JSON;
		} else if (strcmp(a, "--quiet") == 0) {
			ctx->mode = OUT_QUIET;
		} else if (strcmp(a, "--count") == 0) {
			ctx->mode = OUT_COUNT;
		} else if (strcmp(a, "--modbus-port") == 0 || strcmp(a, "--bacnet-port") == 0) {
			int mb = a[2] == 'm';
			if (parse_port(a, i + 1 < argc ? argv[i + 1] : NULL, &port))
				goto fail;
			i++;
			if (cap_config_add_port(&cfg, mb ? BMS_PROTO_MODBUS : BMS_PROTO_BACNET, port)) {
				fprintf(stderr, "bmsgate decode: at most %d ports for %s\n", CAP_MAX_PORTS, a);
				goto fail;
			}
		} else if (strcmp(a, "--max-flows") == 0 || strcmp(a, "--max-flow-bytes") == 0 ||
			   strcmp(a, "--max-buffer-bytes") == 0) {
			size_t *lim = strcmp(a, "--max-flows") == 0 ? &cfg.reasm.max_flows
				    : strcmp(a, "--max-flow-bytes") == 0 ? &cfg.reasm.max_flow_bytes
									: &cfg.reasm.max_total_bytes;
			if (parse_limit(a, i + 1 < argc ? argv[i + 1] : NULL, lim))
				goto fail;
			i++;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			status = 0;
			goto fail;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "bmsgate decode: unknown option '%s'\n", a);
			usage(stderr);
			goto fail;
		} else if (file == NULL) {
			file = a;
		} else {
			fprintf(stderr, "bmsgate decode: one capture at a time ('%s' and '%s')\n", file, a);
			goto fail;
		}
	}
	if (file == NULL) {
		usage(stderr);
		goto fail;
	}
	if (cap_config_default_ports(&cfg))
		goto fail;

	status = 2;
	pc = open_capture(file, errbuf, &capbuf);
	if (pc == NULL) {
		fprintf(stderr, "bmsgate decode: cannot read capture %s: %s\n", file, errbuf);
		goto fail;
	}
	int dlt = pcap_datalink(pc);
	if (!dlt_supported(dlt)) {
		const char *n = pcap_datalink_val_to_name(dlt);
		fprintf(stderr, "bmsgate decode: %s: link type %d (%s) is not supported\n", file, dlt, n ? n : "unknown");
		goto fail;
	}
	/* --quiet and --count write no record: the engine only counts (no sink). */
	err = cap_engine_new(&cfg, ctx->mode == OUT_QUIET || ctx->mode == OUT_COUNT ? NULL : sink, ctx, &e);
	if (err) {
		fprintf(stderr, "bmsgate decode: out of memory\n");
		status = 3;
		goto fail;
	}
	struct pcap_pkthdr *h;
	const u_char *data;
	int rc;
	while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
		if (cap_engine_packet(e, dlt, h->ts.tv_sec, (int32_t)h->ts.tv_usec, data, h->caplen)) {
			fprintf(stderr, "bmsgate decode: out of memory at packet %" PRIu64 "\n",
				cap_engine_stats(e)->packets);
			status = 3;
			break;
		}
	}
	cap_engine_finish(e);
	out_flush(&ctx->out);
	if (rc == PCAP_ERROR) {
		fprintf(stderr, "bmsgate decode: %s: after packet %" PRIu64 ": %s\n", file,
			cap_engine_stats(e)->packets, pcap_geterr(pc));
		status = 2;
	} else if (status != 3) {
		status = 0;
	}
	if (ctx->mode == OUT_COUNT)
		print_counts(stdout, e);
	if (fflush(stdout) != 0 || ctx->out.err) {
		fprintf(stderr, "bmsgate decode: writing the output failed: %s\n", strerror(ctx->out.err ? ctx->out.err : errno));
		status = 2;
	}
fail:
	cap_engine_free(e);
	if (pc != NULL)
		pcap_close(pc);
	free(capbuf);
	free(ctx);
	return status;
}
