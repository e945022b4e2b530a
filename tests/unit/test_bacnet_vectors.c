/* tests/unit/test_bacnet_vectors.c: every record of tests/vectors/bacnet/NAME.vec is one test.
 *
 * The format is described in docs/bacnet.md. A record names a test, gives the datagram in hex,
 * the expected verdict with the exact set of anomalies, and `check key=value` pairs compared
 * against the decoded request. Run from the repository root (tests/run does).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parsers/bacnet.h"

#define VEC_DIR "tests/vectors/bacnet"
#define MAX_RECORDS 1024
#define MAX_BYTES 2048
#define MAX_CHECKS 48

struct record {
	char name[96];
	char where[600];        /* file:line of the record, for failure messages */
	uint8_t bytes[MAX_BYTES];
	size_t len;
	int expect;             /* BMS_OK or BMS_MALFORMED */
	uint64_t anomalies;     /* exact set expected */
	unsigned nchecks;
	char key[MAX_CHECKS][32];
	char val[MAX_CHECKS][48];
};

static struct record records[MAX_RECORDS];
static unsigned nrecords;

static const char *op_dir(uint8_t d)
{
	return d == BMS_DIR_REQUEST ? "request" : "response";
}

static void value_str(const struct bms_target *t, char *out, size_t cap)
{
	if (!t->has_value) {
		snprintf(out, cap, "none");
		return;
	}
	switch (t->value.type) {
	case BMS_VAL_NULL: snprintf(out, cap, "null"); break;
	case BMS_VAL_BOOL: snprintf(out, cap, "bool:%d", t->value.b ? 1 : 0); break;
	case BMS_VAL_UNSIGNED: snprintf(out, cap, "unsigned:%llu", (unsigned long long)t->value.u); break;
	case BMS_VAL_SIGNED: snprintf(out, cap, "signed:%lld", (long long)t->value.i); break;
	case BMS_VAL_REAL: snprintf(out, cap, "real:%g", t->value.d); break;
	case BMS_VAL_ENUM: snprintf(out, cap, "enum:%llu", (unsigned long long)t->value.u); break;
	case BMS_VAL_OTHER: snprintf(out, cap, "other"); break;
	default: snprintf(out, cap, "none"); break;
	}
}

static void u32_or_none(uint32_t v, char *out, size_t cap)
{
	if (v == BMS_NO_INDEX)
		snprintf(out, cap, "none");
	else
		snprintf(out, cap, "%u", v);
}

/* The decoded value of one check key, as text; returns 0 if the key is known. */
static int field(const struct bms_request *r, const char *key, char *out, size_t cap)
{
	const struct bacnet_fields *f = &r->raw.bacnet;
	unsigned idx;
	char sub[32];

#define U(name, has, expr) \
	if (strcmp(key, name) == 0) { \
		if (has) \
			snprintf(out, cap, "%lld", (long long)(expr)); \
		else \
			snprintf(out, cap, "none"); \
		return 0; \
	}
	U("bvlc", 1, f->bvlc_function)
	U("bvlc_result", f->bvlc_function == 0, f->bvlc_result)
	U("bvlc_ttl", f->bvlc_function == 5, f->bvlc_ttl)
	U("bvlc_entries", 1, f->bvlc_entries)
	U("bvlc_addr_port", f->has_bvlc_addr, (f->bvlc_addr[4] << 8) | f->bvlc_addr[5])
	U("pdu_type", f->has_apdu, f->pdu_type)
	U("service", f->has_service, f->service)
	U("invoke_id", f->has_invoke_id, f->invoke_id)
	U("ntargets", 1, r->ntargets)
	U("targets_total", 1, f->targets_total)
	U("dnet", f->has_dnet, f->dnet)
	U("dadr_len", f->has_dnet, f->dadr_len)
	U("snet", f->has_snet, f->snet)
	U("sadr_len", f->has_snet, f->sadr_len)
	U("hop_count", f->has_dnet, f->hop_count)
	U("net_msg", f->has_net_msg, f->net_msg_type)
	U("net_vendor", f->has_net_msg && f->net_msg_type >= 0x80, f->net_msg_vendor)
	U("max_segs", f->has_apdu && f->pdu_type == 0, f->max_segs)
	U("max_apdu", f->has_apdu && f->pdu_type == 0, f->max_apdu)
	U("segmented", 1, f->segmented)
	U("seq", f->segmented || f->pdu_type == 4, f->sequence_number)
	U("window", f->segmented || f->pdu_type == 4, f->window_size)
	U("error_class", f->has_apdu && f->pdu_type == 5, f->error_class)
	U("error_code", f->has_apdu && f->pdu_type == 5, f->error_code)
	U("reason", f->has_reason, f->reason)
	U("password_present", 1, f->password_present)
	U("range_low", f->has_range, f->range_low)
	U("range_high", f->has_range, f->range_high)
	U("vendor_id", f->has_vendor, f->vendor_id)
	U("service_number", 1, f->service_number)
	U("enable_disable", 1, f->enable_disable)
	U("duration", f->has_duration, f->duration)
	U("reinit_state", 1, f->reinit_state)
	U("file_start", 1, f->file_start)
	U("group_number", 1, f->group_number)
	U("process_id", 1, f->process_id)
	U("max_apdu_accepted", 1, f->max_apdu_accepted)
	U("segmentation_supported", 1, f->segmentation_supported)
	U("has_datetime", 1, f->has_datetime)
#undef U
	if (strcmp(key, "op") == 0) {
		snprintf(out, cap, "%s", bms_op_name((enum bms_op)r->op));
		return 0;
	}
	if (strcmp(key, "dir") == 0) {
		snprintf(out, cap, "%s", op_dir(r->dir));
		return 0;
	}
	if (sscanf(key, "t%u.%31s", &idx, sub) == 2) {
		const struct bms_target *t;
		if (idx >= r->ntargets) {
			snprintf(out, cap, "absent");
			return 0;
		}
		t = &r->targets[idx];
		if (strcmp(sub, "object_type") == 0)
			snprintf(out, cap, "%u", t->object_type);
		else if (strcmp(sub, "instance") == 0)
			u32_or_none(t->instance, out, cap);
		else if (strcmp(sub, "property") == 0)
			u32_or_none(t->property, out, cap);
		else if (strcmp(sub, "array_index") == 0)
			u32_or_none(t->array_index, out, cap);
		else if (strcmp(sub, "priority") == 0)
			snprintf(out, cap, "%u", t->priority);
		else if (strcmp(sub, "start") == 0)
			u32_or_none(t->start, out, cap);
		else if (strcmp(sub, "count") == 0)
			snprintf(out, cap, "%u", t->count);
		else if (strcmp(sub, "data_len") == 0)
			snprintf(out, cap, "%u", t->data_len);
		else if (strcmp(sub, "value") == 0)
			value_str(t, out, cap);
		else
			return -1;
		return 0;
	}
	return -1;
}

static int anomaly_bit(const char *name)
{
	for (unsigned b = 0; b < 64; b++) {
		const char *n = bacnet_anomaly_name(b);
		if (n != NULL && strcmp(n, name) == 0)
			return (int)b;
	}
	return -1;
}

static void anomaly_list(uint64_t set, char *out, size_t cap)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned b = 0; b < 64 && off < cap; b++)
		if (set & BACNET_AN(b))
			off += (size_t)snprintf(out + off, cap - off, " %s", bacnet_anomaly_name(b));
}

static void run_record(void **state)
{
	const struct record *rec = *state;
	struct bms_request r;
	enum bms_parse_result rc;
	char want[512], got[512];

	rc = bacnet_decode(rec->bytes, rec->len, &r);
	anomaly_list(rec->anomalies, want, sizeof(want));
	anomaly_list(r.anomalies, got, sizeof(got));
	if ((int)rc != rec->expect || r.anomalies != rec->anomalies)
		fail_msg("%s: %s: expected %s [%s ], got %s [%s ]", rec->where, rec->name,
			 rec->expect == BMS_OK ? "ok" : "malformed", want,
			 rc == BMS_OK ? "ok" : rc == BMS_MALFORMED ? "malformed" : "need-more", got);
	assert_int_equal(r.proto, BMS_PROTO_BACNET);
	assert_true(r.ntargets <= BMS_MAX_TARGETS);
	for (unsigned i = 0; i < rec->nchecks; i++) {
		char v[64];
		if (field(&r, rec->key[i], v, sizeof(v)) != 0)
			fail_msg("%s: unknown check key %s", rec->where, rec->key[i]);
		if (strcmp(v, rec->val[i]) != 0)
			fail_msg("%s: %s: %s = %s, expected %s", rec->where, rec->name, rec->key[i], v, rec->val[i]);
	}
}

static int parse_hex(struct record *rec, const char *s)
{
	while (*s) {
		unsigned v;
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '|') {
			s++;
			continue;
		}
		if (sscanf(s, "%2x", &v) != 1 || s[1] == '\0' || s[1] == ' ' || rec->len >= MAX_BYTES)
			return -1;
		rec->bytes[rec->len++] = (uint8_t)v;
		s += 2;
	}
	return 0;
}

/* Reads one .vec file into records[]; any syntax error fails the whole run. */
static int load_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	static char line[65536];
	unsigned lineno = 0;
	struct record *rec = NULL;

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *p = line, *tok, *save = NULL;
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		if (strncmp(p, "test ", 5) == 0) {
			if (nrecords >= MAX_RECORDS)
				goto bad;
			rec = &records[nrecords++];
			memset(rec, 0, sizeof(*rec));
			rec->expect = -2;
			snprintf(rec->name, sizeof(rec->name), "%s", p + 5);
			snprintf(rec->where, sizeof(rec->where), "%s:%u", path, lineno);
		} else if (rec == NULL) {
			goto bad;
		} else if (strncmp(p, "hex ", 4) == 0) {
			if (parse_hex(rec, p + 4) != 0)
				goto bad;
		} else if (strncmp(p, "expect ", 7) == 0) {
			tok = strtok_r(p + 7, " ", &save);
			if (tok == NULL)
				goto bad;
			if (strcmp(tok, "ok") == 0)
				rec->expect = BMS_OK;
			else if (strcmp(tok, "malformed") == 0)
				rec->expect = BMS_MALFORMED;
			else
				goto bad;
			while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
				int b = anomaly_bit(tok);
				if (b < 0) {
					fprintf(stderr, "%s:%u: unknown anomaly %s\n", path, lineno, tok);
					goto bad;
				}
				rec->anomalies |= BACNET_AN(b);
			}
		} else if (strncmp(p, "tshark-differs ", 15) == 0) {
			continue; /* read by tests/integration/bacnet_vectors_tshark.py */
		} else if (strncmp(p, "check ", 6) == 0) {
			for (tok = strtok_r(p + 6, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
				char *eq = strchr(tok, '=');
				if (eq == NULL || rec->nchecks >= MAX_CHECKS)
					goto bad;
				*eq = '\0';
				snprintf(rec->key[rec->nchecks], sizeof(rec->key[0]), "%s", tok);
				snprintf(rec->val[rec->nchecks], sizeof(rec->val[0]), "%s", eq + 1);
				rec->nchecks++;
			}
		} else {
			goto bad;
		}
	}
	fclose(fp);
	return 0;
bad:
	fprintf(stderr, "%s:%u: cannot parse: %s\n", path, lineno, line);
	fclose(fp);
	return -1;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(void)
{
	struct dirent **ents;
	struct CMUnitTest *tests;
	int n = scandir(VEC_DIR, &ents, NULL, by_name);
	int rc, bad = 0;

	if (n < 0) {
		printf("not ok 1 - cannot open %s (run from the repository root)\n", VEC_DIR);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *d = ents[i]->d_name;
		size_t l = strlen(d);
		if (!bad && l > 4 && strcmp(d + l - 4, ".vec") == 0) {
			char path[512];
			snprintf(path, sizeof(path), "%s/%s", VEC_DIR, d);
			if (load_file(path) != 0) {
				printf("not ok 1 - %s does not parse\n", path);
				bad = 1;
			}
		}
		free(ents[i]);
	}
	free(ents);
	if (bad)
		return 1;
	for (unsigned i = 0; i < nrecords; i++) {
		if (records[i].expect == -2 || records[i].len == 0) {
			printf("not ok 1 - %s: record without hex or expect\n", records[i].where);
			return 1;
		}
	}
	tests = calloc(nrecords ? nrecords : 1, sizeof(*tests));
	if (tests == NULL)
		return 2;
	for (unsigned i = 0; i < nrecords; i++) {
		tests[i].name = records[i].name;
		tests[i].test_func = run_record;
		tests[i].initial_state = &records[i];
	}
	rc = _cmocka_run_group_tests("bacnet_vectors", tests, nrecords, NULL, NULL);
	free(tests);
	return rc;
}
