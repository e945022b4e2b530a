/* tests/unit/test_modbus_vectors.c: the Modbus decoder, framer, response check and
 * answer check against the byte vectors in tests/vectors/modbus/ (format: docs/modbus.md).
 * One TAP line per vector and per pair, then coverage, catalogue and framer tests.
 * Run from the repository root (tests/run does). */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parsers/modbus.h"

#define VEC_DIR "tests/vectors/modbus/"
#define MAX_VECS 512
#define MAX_KEYS 24
#define MAX_LINE 2048

enum vfile { VF_VALID, VF_MALFORMED };

struct vec {
	char name[64];
	enum vfile file;
	int line;
	enum bms_dir dir;
	enum bms_parse_result result;
	int nkeys;
	char key[MAX_KEYS][24];
	char val[MAX_KEYS][200];
	uint8_t bytes[MODBUS_MAX_ADU + 16];
	size_t len;
};

struct pair {
	char name[64];
	char req[64], rsp[64];
	int line;
	enum bms_parse_result result;
	int nkeys;
	char key[MAX_KEYS][24];
	char val[MAX_KEYS][200];
};

static struct vec vecs[MAX_VECS];
static int nvecs;
static struct pair pairs[MAX_VECS];
static int npairs;
/* answers.txt: its own vectors (bytes only, never decoded as vectors) and its checks */
static struct vec avecs[MAX_VECS];
static int navecs;
static struct pair achecks[MAX_VECS];
static int nachecks;
static char load_error[512];

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Parses hex digits (spaces allowed between bytes); returns the length or -1. */
static int parse_hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*s) {
		if (isspace((unsigned char)*s)) {
			s++;
			continue;
		}
		int hi = hexval(s[0]), lo = s[1] ? hexval(s[1]) : -1;
		if (hi < 0 || lo < 0 || n >= cap)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return (int)n;
}

/* Splits "k=v k=v" tokens into the key/value arrays. */
static int parse_keys(char *s, char key[][24], char val[][200], int *nkeys, const char *where)
{
	char *save = NULL;

	for (char *tok = strtok_r(s, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL || *nkeys >= MAX_KEYS || (size_t)(eq - tok) >= 24 || strlen(eq + 1) >= 200) {
			snprintf(load_error, sizeof(load_error), "%s: bad key token '%s'", where, tok);
			return -1;
		}
		*eq = '\0';
		strcpy(key[*nkeys], tok);
		strcpy(val[*nkeys], eq + 1);
		(*nkeys)++;
	}
	return 0;
}

static int load_vectors(const char *path, enum vfile file)
{
	char line[MAX_LINE], where[300];
	int lineno = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(load_error, sizeof(load_error), "cannot open %s (run from the repository root)", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *colon, *p, name[64], dir[8], res[16];
		int used = 0;
		struct vec *v;

		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		line[strcspn(line, "\r\n")] = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		if (nvecs >= MAX_VECS)
			goto bad;
		colon = strstr(p, " :");
		if (colon == NULL)
			goto bad;
		*colon = '\0';
		if (sscanf(p, "%63s %7s %15s %n", name, dir, res, &used) != 3)
			goto bad;
		v = &vecs[nvecs];
		memset(v, 0, sizeof(*v));
		strcpy(v->name, name);
		v->file = file;
		v->line = lineno;
		if (strcmp(dir, "req") == 0)
			v->dir = BMS_DIR_REQUEST;
		else if (strcmp(dir, "rsp") == 0)
			v->dir = BMS_DIR_RESPONSE;
		else
			goto bad;
		if (strcmp(res, "ok") == 0)
			v->result = BMS_OK;
		else if (strcmp(res, "malformed") == 0)
			v->result = BMS_MALFORMED;
		else
			goto bad;
		if (parse_keys(p + used, v->key, v->val, &v->nkeys, where) != 0)
			goto fail;
		int n = parse_hex(colon + 2, v->bytes, sizeof(v->bytes));
		if (n < 0)
			goto bad;
		v->len = (size_t)n;
		for (int i = 0; i < nvecs; i++)
			if (strcmp(vecs[i].name, v->name) == 0) {
				snprintf(load_error, sizeof(load_error), "%s: duplicate vector name %s", where, v->name);
				goto fail;
			}
		nvecs++;
	}
	fclose(f);
	return 0;
bad:
	snprintf(load_error, sizeof(load_error), "%s: cannot parse line", where);
fail:
	fclose(f);
	return -1;
}

static int load_pairs_into(const char *path, struct pair *out, int *nout, bool answers)
{
	char line[MAX_LINE], where[300];
	int lineno = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(load_error, sizeof(load_error), "cannot open %s", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p, res[16];
		int used = 0;
		struct pair *q;

		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		line[strcspn(line, "\r\n")] = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		if (answers && strncmp(p, "vec ", 4) == 0) {
			char *colon = strstr(p, " :");
			struct vec *v = &avecs[navecs];
			int n;
			if (navecs >= MAX_VECS || colon == NULL)
				goto bad;
			*colon = '\0';
			memset(v, 0, sizeof(*v));
			if (sscanf(p + 4, "%63s", v->name) != 1)
				goto bad;
			v->line = lineno;
			v->dir = BMS_DIR_RESPONSE;
			n = parse_hex(colon + 2, v->bytes, sizeof(v->bytes));
			if (n < 0)
				goto bad;
			v->len = (size_t)n;
			navecs++;
			continue;
		}
		if (*nout >= MAX_VECS)
			goto bad;
		q = &out[*nout];
		memset(q, 0, sizeof(*q));
		q->line = lineno;
		if (sscanf(p, "%63s %63s %63s %15s %n", q->name, q->req, q->rsp, res, &used) != 4)
			goto bad;
		if (strcmp(res, "ok") == 0)
			q->result = BMS_OK;
		else if (strcmp(res, "malformed") == 0)
			q->result = BMS_MALFORMED;
		else
			goto bad;
		if (parse_keys(p + used, q->key, q->val, &q->nkeys, where) != 0)
			goto fail;
		(*nout)++;
	}
	fclose(f);
	return 0;
bad:
	snprintf(load_error, sizeof(load_error), "%s: cannot parse line", where);
fail:
	fclose(f);
	return -1;
}

static const struct vec *find_vec(const char *name)
{
	for (int i = 0; i < nvecs; i++)
		if (strcmp(vecs[i].name, name) == 0)
			return &vecs[i];
	for (int i = 0; i < navecs; i++)
		if (strcmp(avecs[i].name, name) == 0)
			return &avecs[i];
	return NULL;
}

static const char *pair_key(const struct pair *p, const char *key)
{
	for (int k = 0; k < p->nkeys; k++)
		if (strcmp(p->key[k], key) == 0)
			return p->val[k];
	return NULL;
}

/* modbus_check_answer over exact-size heap copies of two vectors, so ASan sees any overread;
 * the contract every call must keep is asserted here. */
static enum bms_parse_result check_answer_vecs(const struct vec *vq, const struct vec *va, uint64_t *an,
					       struct modbus_answer_fault *fault)
{
	uint8_t *q = malloc(vq->len ? vq->len : 1), *a = malloc(va->len ? va->len : 1);
	enum bms_parse_result res;

	assert_non_null(q);
	assert_non_null(a);
	memcpy(q, vq->bytes, vq->len);
	memcpy(a, va->bytes, va->len);
	memset(fault, 0xA5, sizeof(*fault));
	res = modbus_check_answer(vq->len ? q : NULL, vq->len, va->len ? a : NULL, va->len, an, fault);
	free(q);
	free(a);
	assert_true(res == BMS_OK || res == BMS_MALFORMED);
	assert_int_equal(res == BMS_MALFORMED, (*an & MODBUS_ANSWER_BAD_MASK) != 0);
	/* a bad answer says which field; a good one names none */
	assert_int_equal(res == BMS_MALFORMED, fault->field != NULL);
	for (unsigned b = 0; b < 64; b++)
		if (*an & (1ull << b))
			assert_non_null(modbus_anomaly_name(b));
	return res;
}

/* Decodes a vector from an exact-size heap copy, so ASan sees any overread.
 * The copy is returned for borrowed pointers to stay valid; the caller frees it. */
static uint8_t *decode_vec(const struct vec *v, struct bms_request *out, enum bms_parse_result *res)
{
	uint8_t *copy = malloc(v->len ? v->len : 1);

	assert_non_null(copy);
	if (v->len)
		memcpy(copy, v->bytes, v->len);
	/* Garbage first: decode must fill the whole struct. */
	memset(out, 0xA5, sizeof(*out));
	*res = modbus_decode(v->len ? copy : NULL, v->len, v->dir, out);
	return copy;
}

static uint64_t parse_anomalies(const char *list, const char *ctx)
{
	char buf[200], *save = NULL;
	uint64_t an = 0;

	if (strcmp(list, "-") == 0)
		return 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int bit = modbus_anomaly_from_name(tok);
		if (bit < 0)
			fail_msg("%s: unknown anomaly name '%s'", ctx, tok);
		an |= 1ull << bit;
	}
	return an;
}

static void format_anomalies(uint64_t an, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned b = 0; b < 64; b++) {
		if (!(an & (1ull << b)))
			continue;
		const char *n = modbus_anomaly_name(b);
		off += (size_t)snprintf(buf + off, cap - off, "%s%s", off ? "," : "", n ? n : "UNNAMED");
		if (off >= cap)
			break;
	}
	if (buf[0] == '\0')
		snprintf(buf, cap, "-");
}

static uint8_t space_from_name(const char *s, const char *ctx)
{
	for (unsigned sp = BMS_SPACE_NONE; sp <= BMS_SPACE_BACNET_OBJECT; sp++)
		if (strcmp(bms_space_name((enum bms_space)sp), s) == 0)
			return (uint8_t)sp;
	fail_msg("%s: unknown space '%s'", ctx, s);
	return 0;
}

/* tN=space/start/count[/instance] */
static void check_target(const struct bms_target *t, const char *spec, const char *ctx)
{
	char buf[200], *save = NULL, *space, *start, *count, *inst;

	snprintf(buf, sizeof(buf), "%s", spec);
	space = strtok_r(buf, "/", &save);
	start = strtok_r(NULL, "/", &save);
	count = strtok_r(NULL, "/", &save);
	inst = strtok_r(NULL, "/", &save);
	if (space == NULL || start == NULL || count == NULL)
		fail_msg("%s: bad target spec '%s'", ctx, spec);
	if (t->space != space_from_name(space, ctx))
		fail_msg("%s: space %s, want %s", ctx, bms_space_name((enum bms_space)t->space), space);
	if (t->start != strtoul(start, NULL, 0))
		fail_msg("%s: start %u, want %s", ctx, (unsigned)t->start, start);
	if (t->count != strtoul(count, NULL, 0))
		fail_msg("%s: count %u, want %s", ctx, (unsigned)t->count, count);
	if (inst && t->instance != strtoul(inst, NULL, 0))
		fail_msg("%s: instance %u, want %s", ctx, (unsigned)t->instance, inst);
}

struct numfield {
	const char *key;
	size_t off;     /* offset of the value in struct modbus_fields */
	size_t size;    /* 1 or 2 */
	ptrdiff_t has;  /* offset of its has_ flag, or -1 */
};

#define NF(k, m, h) { k, offsetof(struct modbus_fields, m), sizeof(((struct modbus_fields *)0)->m), h }
#define HAS(m) (ptrdiff_t)offsetof(struct modbus_fields, m)
static const struct numfield numfields[] = {
	NF("tid", tid, -1),
	NF("unit", unit, -1),
	NF("fc", fc, HAS(has_fc)),
	NF("exception", exception, -1),
	NF("sub", sub, HAS(has_sub)),
	NF("bc", byte_count, HAS(has_byte_count)),
	NF("addr", addr, HAS(has_addr)),
	NF("qty", qty, HAS(has_qty)),
	NF("value", value, HAS(has_value)),
	NF("value2", value2, -1),
	NF("addr2", addr2, HAS(has_range2)),
	NF("qty2", qty2, HAS(has_range2)),
	NF("devid", devid_code, -1),
	NF("objid", object_id, -1),
	NF("conformity", conformity, -1),
	NF("more", more_follows, -1),
	NF("nobj", nobjects, -1),
	NF("nsub", nsub, -1),
	NF("fifo", fifo_count, -1),
};

static unsigned field_value(const struct modbus_fields *f, const struct numfield *nf)
{
	const uint8_t *p = (const uint8_t *)f + nf->off;
	uint16_t v16;

	if (nf->size == 1)
		return *p;
	memcpy(&v16, p, 2);
	return v16;
}

static void check_numkey(const struct modbus_fields *f, const char *key, const char *val, const char *ctx)
{
	for (size_t i = 0; i < sizeof(numfields) / sizeof(numfields[0]); i++) {
		const struct numfield *nf = &numfields[i];
		if (strcmp(nf->key, key) != 0)
			continue;
		uint8_t has = nf->has >= 0 ? *((const uint8_t *)f + nf->has) : 1;
		if (strcmp(val, "-") == 0) {
			if (nf->has < 0)
				fail_msg("%s: %s cannot be '-'", ctx, key);
			if (has)
				fail_msg("%s: %s present (%u), want absent", ctx, key, field_value(f, nf));
			return;
		}
		if (!has)
			fail_msg("%s: %s absent, want %s", ctx, key, val);
		if (field_value(f, nf) != strtoul(val, NULL, 0))
			fail_msg("%s: %s = %u, want %s", ctx, key, field_value(f, nf), val);
		return;
	}
	fail_msg("%s: unknown key '%s'", ctx, key);
}

static void check_fields(const struct bms_request *r, const uint8_t *buf, size_t len, int nkeys,
			 char key[][24], char val[][200], bool check_nt, const char *ctx)
{
	uint64_t want_an = 0;
	int ntkeys = 0;
	char tctx[300];

	for (int k = 0; k < nkeys; k++) {
		const char *K = key[k], *V = val[k];
		if (strcmp(K, "anomalies") == 0) {
			want_an = parse_anomalies(V, ctx);
		} else if (strcmp(K, "op") == 0) {
			if (strcmp(bms_op_name((enum bms_op)r->op), V) != 0)
				fail_msg("%s: op %s, want %s", ctx, bms_op_name((enum bms_op)r->op), V);
		} else if (strcmp(K, "nt") == 0) {
			if (r->ntargets != strtoul(V, NULL, 0))
				fail_msg("%s: ntargets %u, want %s", ctx, r->ntargets, V);
		} else if (strcmp(K, "frame") == 0) {
			/* checked by the caller */
		} else if (K[0] == 't' && isdigit((unsigned char)K[1]) && K[2] == '\0') {
			unsigned i = (unsigned)(K[1] - '0');
			snprintf(tctx, sizeof(tctx), "%s: target %u", ctx, i);
			if (i >= r->ntargets)
				fail_msg("%s missing (ntargets %u)", tctx, r->ntargets);
			check_target(&r->targets[i], V, tctx);
			ntkeys++;
		} else if (K[0] == 'd' && isdigit((unsigned char)K[1]) && K[2] == '\0') {
			unsigned i = (unsigned)(K[1] - '0');
			uint8_t want[300];
			int n = parse_hex(V, want, sizeof(want));
			assert_true(n >= 0);
			if (i >= r->ntargets)
				fail_msg("%s: data of missing target %u", ctx, i);
			const struct bms_target *t = &r->targets[i];
			if (t->data_len != (unsigned)n || (n && (t->data == NULL || memcmp(t->data, want, (size_t)n) != 0)))
				fail_msg("%s: target %u data differs (len %u, want %d)", ctx, i, t->data_len, n);
		} else if (K[0] == 'v' && isdigit((unsigned char)K[1]) && K[2] == '\0') {
			unsigned i = (unsigned)(K[1] - '0');
			if (i >= r->ntargets)
				fail_msg("%s: value of missing target %u", ctx, i);
			const struct bms_target *t = &r->targets[i];
			if (!t->has_value)
				fail_msg("%s: target %u has no value", ctx, i);
			if (V[0] == 'b' && V[1] == ':') {
				if (t->value.type != BMS_VAL_BOOL || t->value.b != (strtoul(V + 2, NULL, 0) != 0))
					fail_msg("%s: target %u value not bool %s", ctx, i, V + 2);
			} else if (V[0] == 'u' && V[1] == ':') {
				if (t->value.type != BMS_VAL_UNSIGNED || t->value.u != strtoull(V + 2, NULL, 0))
					fail_msg("%s: target %u value not unsigned %s", ctx, i, V + 2);
			} else {
				fail_msg("%s: bad value spec %s", ctx, V);
			}
		} else {
			check_numkey(&r->raw.modbus, K, V, ctx);
		}
	}
	if (r->anomalies != want_an) {
		char got[600], want[600];
		format_anomalies(r->anomalies, got, sizeof(got));
		format_anomalies(want_an, want, sizeof(want));
		fail_msg("%s: anomalies %s, want %s", ctx, got, want);
	}
	if (check_nt && r->ntargets != ntkeys)
		fail_msg("%s: %u targets, the vector lists %d", ctx, r->ntargets, ntkeys);
	/* Borrowed pointers point into the frame. */
	for (unsigned i = 0; i < r->ntargets && i < BMS_MAX_TARGETS; i++) {
		const struct bms_target *t = &r->targets[i];
		if (t->data_len)
			assert_true(t->data >= buf && t->data + t->data_len <= buf + len);
	}
	if (r->raw.modbus.pdu_len)
		assert_true(r->raw.modbus.pdu >= buf && r->raw.modbus.pdu + r->raw.modbus.pdu_len <= buf + len);
}

static const char *result_name(enum bms_parse_result r)
{
	return r == BMS_OK ? "ok" : r == BMS_MALFORMED ? "malformed" : "need-more";
}

static void run_vector(void **state)
{
	const struct vec *v = *state;
	struct bms_request r;
	enum bms_parse_result res, fres;
	size_t flen = 0;
	uint64_t fan = 99;
	char ctx[128];
	const char *want_frame = NULL;
	uint8_t *copy;

	snprintf(ctx, sizeof(ctx), "%s (line %d)", v->name, v->line);
	copy = decode_vec(v, &r, &res);
	if (res != v->result) {
		char got[600];
		format_anomalies(r.anomalies, got, sizeof(got));
		free(copy);
		fail_msg("%s: result %s, want %s (anomalies %s)", ctx, result_name(res), result_name(v->result), got);
	}
	assert_int_equal(r.proto, BMS_PROTO_MODBUS);
	assert_int_equal(r.dir, v->dir);
	/* The three-way contract: malformed exactly when a malformed bit is set, and no
	 * half-checked targets then. Every bit set has a name. */
	assert_int_equal(res == BMS_MALFORMED, (r.anomalies & MODBUS_MALFORMED_MASK) != 0);
	if (res == BMS_MALFORMED)
		assert_int_equal(r.ntargets, 0);
	assert_true(r.ntargets <= BMS_MAX_TARGETS);
	for (unsigned b = 0; b < 64; b++)
		if (r.anomalies & (1ull << b))
			assert_non_null(modbus_anomaly_name(b));
	check_fields(&r, copy, v->len, v->nkeys, (char(*)[24])v->key, (char(*)[200])v->val,
		     v->result == BMS_OK, ctx);

	/* The framer over the same bytes. */
	for (int k = 0; k < v->nkeys; k++)
		if (strcmp(v->key[k], "frame") == 0)
			want_frame = v->val[k];
	fres = modbus_frame(copy, v->len, &flen, &fan);
	if (want_frame == NULL && v->result == BMS_OK)
		want_frame = "ok";
	if (want_frame) {
		const char *got = fres == BMS_OK ? "ok" : fres == BMS_NEED_MORE ? "need" : "malformed";
		if (strcmp(got, want_frame) != 0)
			fail_msg("%s: framer says %s, want %s", ctx, got, want_frame);
	}
	if (fres == BMS_OK) {
		assert_true(flen >= MODBUS_MIN_ADU && flen <= MODBUS_MAX_ADU && flen <= v->len);
		if (v->result == BMS_OK)
			assert_int_equal(flen, v->len);
		assert_int_equal(fan, 0);
	} else if (fres == BMS_NEED_MORE) {
		assert_true(flen > v->len && flen <= MODBUS_MAX_ADU);
		assert_int_equal(fan, 0);
	} else {
		assert_true(fan != 0 && (fan & MODBUS_MALFORMED_MASK) == fan);
		assert_true((r.anomalies & fan) == fan);
	}
	free(copy);
}

static void run_pair(void **state)
{
	const struct pair *p = *state;
	const struct vec *vq = find_vec(p->req), *vr = find_vec(p->rsp);
	struct bms_request q, r;
	enum bms_parse_result rq, rr, res;
	uint64_t an = 0, want = 0;
	char ctx[128], got[600], wants[600];
	uint8_t *cq, *cr;

	snprintf(ctx, sizeof(ctx), "%s (pairs.txt line %d)", p->name, p->line);
	if (vq == NULL || vr == NULL)
		fail_msg("%s: unknown vector %s", ctx, vq ? p->rsp : p->req);
	cq = decode_vec(vq, &q, &rq);
	cr = decode_vec(vr, &r, &rr);
	assert_int_equal(rq, BMS_OK);
	assert_int_equal(rr, BMS_OK);
	res = modbus_check_response(&q, &r, &an);
	for (int k = 0; k < p->nkeys; k++)
		if (strcmp(p->key[k], "anomalies") == 0)
			want = parse_anomalies(p->val[k], ctx);
	format_anomalies(an, got, sizeof(got));
	format_anomalies(want, wants, sizeof(wants));
	if (res != p->result || an != want) {
		free(cq);
		free(cr);
		fail_msg("%s: %s with %s, want %s with %s", ctx, result_name(res), got, result_name(p->result), wants);
	}
	/* The answer checker, over the same bytes, agrees (answer=ok|malformed where it does not). */
	{
		struct modbus_answer_fault fault;
		uint64_t aan = 0;
		const char *aw = pair_key(p, "answer");
		enum bms_parse_result want_ar = aw ? (strcmp(aw, "ok") == 0 ? BMS_OK : BMS_MALFORMED) : p->result;
		enum bms_parse_result ar = check_answer_vecs(vq, vr, &aan, &fault);
		if (ar != want_ar) {
			format_anomalies(aan, got, sizeof(got));
			free(cq);
			free(cr);
			fail_msg("%s: modbus_check_answer says %s with %s (%s), want %s", ctx, result_name(ar), got,
				 fault.field ? fault.field : "-", result_name(want_ar));
		}
	}
	if (res == BMS_OK) {
		modbus_pair_response(&q, &r);
		for (int k = 0; k < p->nkeys; k++) {
			if (p->key[k][0] == 't') {
				unsigned i = (unsigned)(p->key[k][1] - '0');
				if (i >= r.ntargets)
					fail_msg("%s: response has no target %u", ctx, i);
				check_target(&r.targets[i], p->val[k], ctx);
			}
		}
	}
	free(cq);
	free(cr);
}

static void run_answer(void **state)
{
	const struct pair *p = *state;
	const struct vec *vq = find_vec(p->req), *va = find_vec(p->rsp);
	struct modbus_answer_fault fault;
	uint64_t an = 0, want = 0;
	const char *wf = pair_key(p, "field"), *wg = pair_key(p, "got"), *ww = pair_key(p, "want");
	char ctx[128], got[600], wants[600], field[200];

	snprintf(ctx, sizeof(ctx), "%s (answers.txt line %d)", p->name, p->line);
	if (vq == NULL || va == NULL)
		fail_msg("%s: unknown vector %s", ctx, vq ? p->rsp : p->req);
	enum bms_parse_result res = check_answer_vecs(vq, va, &an, &fault);
	if (pair_key(p, "anomalies"))
		want = parse_anomalies(pair_key(p, "anomalies"), ctx);
	format_anomalies(an, got, sizeof(got));
	format_anomalies(want, wants, sizeof(wants));
	if (res != p->result || an != want)
		fail_msg("%s: %s with %s (field %s), want %s with %s", ctx, result_name(res), got,
			 fault.field ? fault.field : "-", result_name(p->result), wants);
	if (wf) {
		snprintf(field, sizeof(field), "%s", wf);
		for (char *c = field; *c; c++)
			if (*c == '_')
				*c = ' ';
		if (fault.field == NULL || strcmp(fault.field, field) != 0)
			fail_msg("%s: field '%s', want '%s'", ctx, fault.field ? fault.field : "-", field);
	}
	if (wg && fault.got != strtoul(wg, NULL, 0))
		fail_msg("%s: got %u, want %s", ctx, fault.got, wg);
	if (ww && (!fault.has_want || fault.want != strtoul(ww, NULL, 0)))
		fail_msg("%s: want %s%u, want %s", ctx, fault.has_want ? "" : "(none) ", fault.want, ww);
	if (wg && !ww && fault.has_want)
		fail_msg("%s: a want of %u, the vector gives none", ctx, fault.want);
}

/* Every consistent answer cut short (its MBAP length left as is) is inconsistent; every
 * single-bit flip of it keeps the checker's contract; under ASan from exact-size copies. */
static void answer_prefix_and_bitflip_sweep(void **state)
{
	(void)state;
	unsigned checks = 0;

	for (int i = 0; i < nachecks; i++) {
		const struct pair *p = &achecks[i];
		const struct vec *vq = find_vec(p->req), *va = find_vec(p->rsp);
		struct modbus_answer_fault fault;
		struct vec cut;
		uint64_t an;

		if (p->result != BMS_OK || vq == NULL || va == NULL)
			continue;
		for (size_t n = 0; n < va->len; n++) {
			cut = *va;
			cut.len = n;
			assert_int_equal(check_answer_vecs(vq, &cut, &an, &fault), BMS_MALFORMED);
			checks++;
		}
		for (size_t bit = 0; bit < 8 * va->len; bit++) {
			cut = *va;
			cut.bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			(void)check_answer_vecs(vq, &cut, &an, &fault);
			cut = *vq;
			cut.bytes[bit % (8 * vq->len) / 8] ^= (uint8_t)(1u << (bit % 8));
			(void)check_answer_vecs(&cut, va, &an, &fault);
			checks += 2;
		}
	}
	print_message("# %u answer checks\n", checks);
}

/* Category of a vector: function code (43 with its MEI type), 0x80 for exceptions. */
static int category(const struct vec *v)
{
	if (v->len < 8)
		return -1;
	uint8_t fc = v->bytes[7];
	if (fc & 0x80)
		return v->dir == BMS_DIR_RESPONSE ? 0x80 : -1;
	if (fc == 43)
		return v->len >= 9 ? 43 * 256 + v->bytes[8] : -1;
	return fc;
}

/* Every public function code has a positive and a negative vector in each
 * direction (exception responses: response only). */
static void coverage_per_function_code(void **state)
{
	(void)state;
	static const int cats[] = { 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24,
				    43 * 256 + 13, 43 * 256 + 14, 0x80 };
	int missing = 0;

	for (size_t i = 0; i < sizeof(cats) / sizeof(cats[0]); i++) {
		for (int dir = 0; dir < 2; dir++) {
			int pos = 0, neg = 0;
			if (cats[i] == 0x80 && dir == BMS_DIR_REQUEST)
				continue;
			for (int k = 0; k < nvecs; k++) {
				if ((int)vecs[k].dir != dir || category(&vecs[k]) != cats[i])
					continue;
				if (vecs[k].result == BMS_OK)
					pos++;
				else
					neg++;
			}
			if (pos == 0 || neg == 0) {
				print_error("fc %d/%d %s: %d positive, %d negative vectors\n", cats[i] > 255 ? 43 : cats[i],
					    cats[i] > 255 ? cats[i] & 0xFF : 0, dir ? "response" : "request", pos, neg);
				missing++;
			}
		}
	}
	assert_int_equal(missing, 0);
}

/* Every public function code (and exceptions) has an answer check that passes and one that
 * fails, by the request's function code. */
static void answer_coverage_per_function_code(void **state)
{
	(void)state;
	static const int cats[] = { 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24,
				    43 * 256 + 13, 43 * 256 + 14, 0x80 };
	int missing = 0;

	for (size_t i = 0; i < sizeof(cats) / sizeof(cats[0]); i++) {
		int pos = 0, neg = 0;
		for (int k = 0; k < nachecks; k++) {
			const struct vec *q = find_vec(achecks[k].req), *a = find_vec(achecks[k].rsp);
			int cat;
			if (q == NULL || a == NULL || q->len < 8 || a->len < 8)
				continue;
			cat = (a->bytes[7] & 0x80) ? 0x80 : q->bytes[7] == 43 && q->len > 8 ? 43 * 256 + q->bytes[8] : q->bytes[7];
			if (cat != cats[i])
				continue;
			if (achecks[k].result == BMS_OK)
				pos++;
			else
				neg++;
		}
		if (pos == 0 || neg == 0) {
			print_error("answers to fc %d: %d passing, %d failing checks\n", cats[i], pos, neg);
			missing++;
		}
	}
	assert_int_equal(missing, 0);
}

/* malformed.txt is the catalogue: at least 40 entries, all malformed, each
 * naming at least one malformed anomaly; valid.txt holds only OK vectors. */
static void malformed_catalogue(void **state)
{
	(void)state;
	int n = 0;

	for (int k = 0; k < nvecs; k++) {
		const struct vec *v = &vecs[k];
		if (v->file == VF_VALID) {
			assert_int_equal(v->result, BMS_OK);
			continue;
		}
		assert_int_equal(v->result, BMS_MALFORMED);
		uint64_t want = 0;
		for (int i = 0; i < v->nkeys; i++)
			if (strcmp(v->key[i], "anomalies") == 0)
				want = parse_anomalies(v->val[i], v->name);
		if ((want & MODBUS_MALFORMED_MASK) == 0)
			fail_msg("%s: a malformed vector must name its malformed anomaly", v->name);
		n++;
	}
	print_message("# %d malformed vectors\n", n);
	assert_true(n >= 40);
}

/* All OK vectors, back to back, as one TCP stream. */
static size_t build_stream(uint8_t *buf, size_t cap, int *idx, int maxn, int *n)
{
	size_t len = 0;

	*n = 0;
	for (int k = 0; k < nvecs && *n < maxn; k++) {
		if (vecs[k].result != BMS_OK)
			continue;
		assert_true(len + vecs[k].len <= cap);
		memcpy(buf + len, vecs[k].bytes, vecs[k].len);
		len += vecs[k].len;
		idx[(*n)++] = k;
	}
	return len;
}

/* Cuts frames out of a growing buffer; `step(i)` says how many bytes arrive next. */
static void feed_stream(size_t (*step)(unsigned i))
{
	static uint8_t stream[MAX_VECS * (MODBUS_MAX_ADU + 16)];
	static uint8_t rx[MODBUS_MAX_ADU * 2];
	int idx[MAX_VECS], n, got = 0;
	size_t total = build_stream(stream, sizeof(stream), idx, MAX_VECS, &n);
	size_t fed = 0, have = 0;
	unsigned call = 0;

	assert_true(n > 50);
	while (fed < total || have > 0) {
		size_t s = step(call++);
		if (s > total - fed)
			s = total - fed;
		/* The receiver never holds more than one frame plus one read. */
		assert_true(have + s <= sizeof(rx));
		memcpy(rx + have, stream + fed, s);
		have += s;
		fed += s;
		for (;;) {
			size_t flen = 0;
			uint64_t an = 0;
			enum bms_parse_result fr = modbus_frame(rx, have, &flen, &an);
			if (fr == BMS_NEED_MORE) {
				assert_true(flen > have);
				assert_true(flen <= MODBUS_MAX_ADU);
				/* With the length field in, the need is exact. */
				if (have >= 6)
					assert_int_equal(flen, vecs[idx[got]].len);
				break;
			}
			assert_int_equal(fr, BMS_OK);
			assert_int_equal(an, 0);
			assert_true(got < n);
			const struct vec *v = &vecs[idx[got]];
			assert_int_equal(flen, v->len);
			assert_memory_equal(rx, v->bytes, flen);
			struct bms_request r;
			assert_int_equal(modbus_decode(rx, flen, v->dir, &r), BMS_OK);
			got++;
			/* Progress: every OK consumes at least a minimal ADU. */
			assert_true(flen >= MODBUS_MIN_ADU);
			memmove(rx, rx + flen, have - flen);
			have -= flen;
		}
		if (fed == total && have > 0)
			fail_msg("%zu bytes left over at end of stream", have);
	}
	assert_int_equal(got, n);
}

static size_t one_byte(unsigned i)
{
	(void)i;
	return 1;
}

static size_t whole_frames_and_more(unsigned i)
{
	(void)i;
	return MODBUS_MAX_ADU; /* several frames in one read, cut across frame borders */
}

static size_t odd_sizes(unsigned i)
{
	/* A fixed pseudo-random sequence of read sizes 1..37. */
	return 1 + (i * 2654435761u >> 7) % 37;
}

static void framer_byte_at_a_time(void **state)
{
	(void)state;
	feed_stream(one_byte);
}

static void framer_several_frames_per_read(void **state)
{
	(void)state;
	feed_stream(whole_frames_and_more);
}

static void framer_odd_read_sizes(void **state)
{
	(void)state;
	feed_stream(odd_sizes);
}

/* Several frames in one buffer, cut in place by a caller loop. */
static void framer_loop_over_one_buffer(void **state)
{
	(void)state;
	static uint8_t stream[MAX_VECS * (MODBUS_MAX_ADU + 16)];
	int idx[MAX_VECS], n, got = 0;
	size_t total = build_stream(stream, sizeof(stream), idx, MAX_VECS, &n), off = 0;

	while (off < total) {
		size_t flen = 0;
		uint64_t an = 0;
		assert_int_equal(modbus_frame(stream + off, total - off, &flen, &an), BMS_OK);
		assert_int_equal(flen, vecs[idx[got]].len);
		off += flen;
		got++;
	}
	assert_int_equal(off, total);
	assert_int_equal(got, n);
}

/* The framer rejects a bad header as soon as the bad field is in, not later. */
static void framer_fails_early(void **state)
{
	(void)state;
	static const uint8_t bad_proto[] = { 0x00, 0x01, 0x00, 0x01 };
	static const uint8_t bad_len[] = { 0x00, 0x01, 0x00, 0x00, 0x01, 0x00 };
	static const uint8_t partial[] = { 0x00, 0x01, 0x00 };
	size_t flen;
	uint64_t an;

	assert_int_equal(modbus_frame(bad_proto, 4, &flen, &an), BMS_MALFORMED);
	assert_int_equal(an, 1ull << MB_AN_BAD_PROTOCOL_ID);
	assert_int_equal(modbus_frame(bad_proto, 3, &flen, &an), BMS_NEED_MORE);
	assert_int_equal(modbus_frame(bad_len, 6, &flen, &an), BMS_MALFORMED);
	assert_int_equal(an, 1ull << MB_AN_BAD_LENGTH);
	assert_int_equal(modbus_frame(partial, 3, &flen, &an), BMS_NEED_MORE);
	assert_int_equal(flen, MODBUS_MIN_ADU);
	assert_int_equal(modbus_frame(NULL, 0, &flen, &an), BMS_NEED_MORE);
	assert_int_equal(flen, MODBUS_MIN_ADU);
}

static void check_invariants(const struct bms_request *r, enum bms_parse_result res, const uint8_t *buf, size_t len)
{
	assert_true(res == BMS_OK || res == BMS_MALFORMED);
	assert_int_equal(res == BMS_MALFORMED, (r->anomalies & MODBUS_MALFORMED_MASK) != 0);
	assert_true(r->ntargets <= BMS_MAX_TARGETS);
	if (res == BMS_MALFORMED)
		assert_int_equal(r->ntargets, 0);
	for (unsigned b = 0; b < 64; b++)
		if (r->anomalies & (1ull << b))
			assert_non_null(modbus_anomaly_name(b));
	for (unsigned i = 0; i < r->ntargets; i++) {
		const struct bms_target *t = &r->targets[i];
		if (t->data_len)
			assert_true(t->data >= buf && t->data + t->data_len <= buf + len);
		if (t->space != BMS_SPACE_FILE_RECORD)
			assert_true((uint64_t)t->start + t->count <= 65536u);
	}
}

/* Every prefix of every OK vector, with its MBAP length left as is (length_mismatch or
 * truncated_header) and with the length rewritten to fit (any verdict, invariants hold);
 * then every single-bit flip. Each from an exact-size heap copy, under ASan. */
static void prefix_and_bitflip_sweep(void **state)
{
	(void)state;
	unsigned decodes = 0;

	for (int k = 0; k < nvecs; k++) {
		const struct vec *v = &vecs[k];
		if (v->result != BMS_OK)
			continue;
		for (size_t p = 0; p < v->len; p++) {
			for (int fix = 0; fix < 2; fix++) {
				uint8_t *b = malloc(p ? p : 1);
				struct bms_request r;
				assert_non_null(b);
				memcpy(b, v->bytes, p);
				if (fix && p >= 6) {
					b[4] = (uint8_t)((p - 6) >> 8);
					b[5] = (uint8_t)(p - 6);
				}
				enum bms_parse_result res = modbus_decode(p ? b : NULL, p, v->dir, &r);
				check_invariants(&r, res, b, p);
				if (!fix || p < 6) {
					assert_int_equal(res, BMS_MALFORMED);
					uint64_t want = p < 7 ? 1ull << MB_AN_TRUNCATED_HEADER : 1ull << MB_AN_LENGTH_MISMATCH;
					assert_int_equal(r.anomalies & MODBUS_MALFORMED_MASK, want);
				}
				free(b);
				decodes++;
			}
		}
		for (size_t bit = 0; bit < 8 * v->len; bit++) {
			uint8_t *b = malloc(v->len);
			struct bms_request r;
			assert_non_null(b);
			memcpy(b, v->bytes, v->len);
			b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			for (int dir = 0; dir < 2; dir++) {
				enum bms_parse_result res = modbus_decode(b, v->len, (enum bms_dir)dir, &r);
				check_invariants(&r, res, b, v->len);
				decodes++;
			}
			free(b);
		}
	}
	print_message("# %u decodes\n", decodes);
}

static void report_load_error(void **state)
{
	(void)state;
	fail_msg("%s", load_error);
}

int main(void)
{
	static struct CMUnitTest tests[3 * MAX_VECS + 16];
	size_t n = 0;

	if (load_vectors(VEC_DIR "valid.txt", VF_VALID) != 0 ||
	    load_vectors(VEC_DIR "malformed.txt", VF_MALFORMED) != 0 ||
	    load_pairs_into(VEC_DIR "pairs.txt", pairs, &npairs, false) != 0 ||
	    load_pairs_into(VEC_DIR "answers.txt", achecks, &nachecks, true) != 0) {
		tests[n++] = (struct CMUnitTest){ "load_vectors", report_load_error, NULL, NULL, NULL };
		return _cmocka_run_group_tests("modbus_vectors", tests, n, NULL, NULL);
	}
	for (int i = 0; i < nvecs; i++)
		tests[n++] = (struct CMUnitTest){ vecs[i].name, run_vector, NULL, NULL, &vecs[i] };
	for (int i = 0; i < npairs; i++)
		tests[n++] = (struct CMUnitTest){ pairs[i].name, run_pair, NULL, NULL, &pairs[i] };
	for (int i = 0; i < nachecks; i++)
		tests[n++] = (struct CMUnitTest){ achecks[i].name, run_answer, NULL, NULL, &achecks[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(coverage_per_function_code);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(answer_coverage_per_function_code);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(answer_prefix_and_bitflip_sweep);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(malformed_catalogue);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(framer_byte_at_a_time);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(framer_several_frames_per_read);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(framer_odd_read_sizes);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(framer_loop_over_one_buffer);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(framer_fails_early);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(prefix_and_bitflip_sweep);
	return _cmocka_run_group_tests("modbus_vectors", tests, n, NULL, NULL);
}
