/* tests/unit/test_audit_record.c: record bodies are valid JSON whatever the
 * strings hold (escaping, control characters, invalid UTF-8), carry the
 * documented fields, never a secret; time formatting and parsing. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include <jansson.h>

#include "audit/audit_int.h"
#include "parsers/modbus.h"

/* Formats ev as a whole record line ({"seq":0,<body>}) and parses it back. */
static json_t *format_and_parse(const struct audit_event *ev, char *line, size_t cap)
{
	struct audit_buf b;
	audit_buf_init(&b, line, cap);
	audit_buf_lit(&b, "{\"seq\":0,");
	assert_int_equal(audit_format_body(ev, "gw1", 1763798400123456LL, &b), 0);
	audit_buf_lit(&b, ",\"prev\":\"0000000000000000\"}");
	assert_false(b.overflow);
	json_error_t err;
	json_t *o = json_loadb(line, b.len, JSON_REJECT_DUPLICATES, &err);
	if (!o)
		fail_msg("not JSON (%s): %.*s", err.text, (int)b.len, line);
	return o;
}

static void strings_are_escaped_and_utf8_checked(void **state)
{
	(void)state;
	struct bms_identity id = { 0 };
	/* quote, backslash, newline, a control character, DEL, valid UTF-8 (é, an emoji), invalid bytes */
	snprintf(id.subject, sizeof(id.subject), "CN=\"x\\y\"\n\x01\x7f caf\xc3\xa9 \xf0\x9f\x98\x80 \xff\xc0\xaf end");
	snprintf(id.role, sizeof(id.role), "op");
	struct audit_event ev = { .kind = AUDIT_CONN_REFUSED, .peer = &id, .detail = "tls: \"bad\" cert\tx" };
	char line[4096];
	json_t *o = format_and_parse(&ev, line, sizeof(line));
	const char *subj = json_string_value(json_object_get(json_object_get(o, "peer"), "subject"));
	assert_string_equal(subj, "CN=\"x\\y\"\n\x01\x7f caf\xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
	assert_string_equal(json_string_value(json_object_get(o, "detail")), "tls: \"bad\" cert\tx");
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "conn_refused");
	assert_string_equal(json_string_value(json_object_get(o, "time")), "2025-11-22T08:00:00.123456Z");
	/* raw control bytes never reach the line: one record is one line */
	for (const char *p = line; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	json_decref(o);
}

static void bacnet_target_and_values(void **state)
{
	(void)state;
	struct bms_request req = { 0 };
	req.proto = BMS_PROTO_BACNET;
	req.op = BMS_OP_WRITE;
	req.raw.bacnet.has_service = 1;
	req.raw.bacnet.pdu_type = 0;
	req.raw.bacnet.service = 15;
	req.raw.bacnet.password_present = 1;
	req.ntargets = 2;
	req.targets[0] = (struct bms_target){ .space = BMS_SPACE_BACNET_OBJECT, .object_type = 2, .instance = 7,
					      .property = 85, .array_index = BMS_NO_INDEX, .priority = 8,
					      .has_value = true, .value = { .type = BMS_VAL_REAL, .d = 21.5 } };
	req.targets[1] = (struct bms_target){ .space = BMS_SPACE_BACNET_OBJECT, .object_type = 2, .instance = 8,
					      .property = 85, .array_index = 3, .has_value = true,
					      .value = { .type = BMS_VAL_REAL, .d = NAN } };
	struct bms_decision d = { .verdict = BMS_VERDICT_MONITOR_DENY, .rule_file = "b.policy", .rule_line = 9 };
	snprintf(d.reason, sizeof(d.reason), "outside hours");
	struct audit_event ev = { .kind = AUDIT_DECISION, .req = &req, .decision = &d, .device = "vav-3",
				  .result = AUDIT_RESULT_PENDING, .latency_us = 12 };
	char line[4096];
	json_t *o = format_and_parse(&ev, line, sizeof(line));
	assert_string_equal(json_string_value(json_object_get(o, "proto")), "bacnet");
	assert_null(json_object_get(o, "unit")); /* BACnet devices are known by address */
	assert_string_equal(json_string_value(json_object_get(o, "decision")), "monitor-deny");
	assert_string_equal(json_string_value(json_object_get(o, "rule")), "b.policy:9");
	assert_true(json_object_get(o, "password_present") == json_true());
	json_t *t0 = json_array_get(json_object_get(o, "target"), 0), *t1 = json_array_get(json_object_get(o, "target"), 1);
	assert_int_equal(json_integer_value(json_object_get(t0, "instance")), 7);
	assert_int_equal(json_integer_value(json_object_get(t0, "priority")), 8);
	assert_null(json_object_get(t0, "index"));
	assert_true(json_real_value(json_object_get(t0, "value")) == 21.5);
	assert_int_equal(json_integer_value(json_object_get(t1, "index")), 3);
	assert_string_equal(json_string_value(json_object_get(t1, "value")), "NaN");
	/* nothing that looks like a password value */
	assert_null(strstr(line, "\"password\""));
	json_decref(o);
}

static void modbus_coils_and_mask_write(void **state)
{
	(void)state;
	struct bms_request req = { 0 };
	uint8_t coils[2] = { 0x0d, 0x01 }; /* 1,0,1,1,0,0,0,0, 1 */
	req.proto = BMS_PROTO_MODBUS;
	req.op = BMS_OP_WRITE;
	req.unit = 17;
	req.raw.modbus.fc = 15;
	req.ntargets = 1;
	req.targets[0] = (struct bms_target){ .space = BMS_SPACE_COIL, .start = 10, .count = 9, .data = coils, .data_len = 2 };
	struct audit_event ev = { .kind = AUDIT_MALFORMED, .req = &req, .detail = "quantity" };
	req.anomalies = 1;
	char line[4096];
	json_t *o = format_and_parse(&ev, line, sizeof(line));
	json_t *v = json_object_get(json_array_get(json_object_get(o, "target"), 0), "values");
	assert_int_equal(json_array_size(v), 9);
	int want[9] = { 1, 0, 1, 1, 0, 0, 0, 0, 1 };
	for (int i = 0; i < 9; i++)
		assert_int_equal(json_integer_value(json_array_get(v, (size_t)i)), want[i]);
	assert_int_equal(json_integer_value(json_object_get(o, "unit")), 17);
	assert_string_equal(json_string_value(json_object_get(o, "decision")), "malformed");
	assert_int_equal(json_array_size(json_object_get(o, "anomalies")), 1);
	json_decref(o);

	uint8_t masks[4] = { 0x00, 0xf2, 0x00, 0x25 };
	req.raw.modbus.fc = 22;
	req.anomalies = 0;
	req.targets[0] = (struct bms_target){ .space = BMS_SPACE_HOLDING_REGISTER, .start = 4, .count = 1, .data = masks,
					      .data_len = 4 };
	ev.kind = AUDIT_DECISION;
	o = format_and_parse(&ev, line, sizeof(line));
	json_t *t = json_array_get(json_object_get(o, "target"), 0);
	assert_int_equal(json_integer_value(json_object_get(t, "and_mask")), 0xf2);
	assert_int_equal(json_integer_value(json_object_get(t, "or_mask")), 0x25);
	/* a decision without one is a deny with the default rule: the zero value fails closed */
	assert_string_equal(json_string_value(json_object_get(o, "decision")), "deny");
	assert_string_equal(json_string_value(json_object_get(o, "rule")), "default");
	json_decref(o);
}

static void ipv6_address_and_result_record(void **state)
{
	(void)state;
	struct bms_identity id = { 0 };
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&id.addr;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(802);
	inet_pton(AF_INET6, "fd00::5", &s6->sin6_addr);
	id.addr_len = sizeof(*s6);
	struct audit_event ev = { .kind = AUDIT_RESULT, .peer = &id, .ref = 41, .result = AUDIT_RESULT_EXCEPTION,
				  .exception = 2, .latency_us = 1500 };
	char line[4096];
	json_t *o = format_and_parse(&ev, line, sizeof(line));
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "peer"), "address")), "[fd00::5]:802");
	assert_int_equal(json_integer_value(json_object_get(o, "ref")), 41);
	assert_string_equal(json_string_value(json_object_get(o, "result")), "exception");
	assert_int_equal(json_integer_value(json_object_get(o, "exception")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "latency_us")), 1500);
	json_decref(o);
	struct audit_event bad = { .kind = AUDIT_KIND_COUNT };
	struct audit_buf b;
	audit_buf_init(&b, line, sizeof(line));
	assert_int_equal(audit_format_body(&bad, "gw1", 1, &b), -EINVAL);
}

/* Reloads: policy_loaded carries the hash it replaced; a failed reload is its own kind. */
static void reload_records(void **state)
{
	(void)state;
	char line[4096];
	struct audit_event ev = { .kind = AUDIT_POLICY_LOADED, .detail = "site.policy", .hash = "ab12", .prev_hash = "cd34" };
	json_t *o = format_and_parse(&ev, line, sizeof(line));
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "policy_loaded");
	assert_string_equal(json_string_value(json_object_get(o, "hash")), "ab12");
	assert_string_equal(json_string_value(json_object_get(o, "prev_hash")), "cd34");
	json_decref(o);
	/* negative beside it: no prev_hash field unless one is given (the start-up's record) */
	ev.prev_hash = NULL;
	o = format_and_parse(&ev, line, sizeof(line));
	assert_null(json_object_get(o, "prev_hash"));
	json_decref(o);
	struct audit_event f = { .kind = AUDIT_RELOAD_FAILED, .detail = "CRL (file changed): denied", .hash = "ab12" };
	o = format_and_parse(&f, line, sizeof(line));
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "reload_failed");
	assert_string_equal(json_string_value(json_object_get(o, "detail")), "CRL (file changed): denied");
	json_decref(o);
	assert_string_equal(audit_kind_name(AUDIT_RELOAD_FAILED), "reload_failed");
}

/* A bad answer: result bad_answer, the anomalies by name (the proto's), the detail; a result
 * without anomalies carries no anomalies field. */
static void bad_answer_result_record(void **state)
{
	(void)state;
	struct audit_event ev = { .kind = AUDIT_RESULT, .proto = BMS_PROTO_MODBUS, .ref = 7,
				  .result = AUDIT_RESULT_BAD_ANSWER, .latency_us = 900,
				  .anomalies = 1ull << MB_AN_RESPONSE_COUNT_MISMATCH | 1ull << MB_AN_BYTE_COUNT_MISMATCH,
				  .detail = "byte count 127, want 2; answered 0B" };
	char line[4096];
	json_t *o = format_and_parse(&ev, line, sizeof(line));
	assert_string_equal(json_string_value(json_object_get(o, "result")), "bad_answer");
	json_t *an = json_object_get(o, "anomalies");
	assert_int_equal(json_array_size(an), 2);
	assert_string_equal(json_string_value(json_array_get(an, 0)), "byte_count_mismatch");
	assert_string_equal(json_string_value(json_array_get(an, 1)), "response_count_mismatch");
	assert_string_equal(json_string_value(json_object_get(o, "detail")), "byte count 127, want 2; answered 0B");
	assert_null(json_object_get(o, "exception"));
	json_decref(o);
	ev.result = AUDIT_RESULT_OK;
	ev.anomalies = 0;
	ev.detail = NULL;
	o = format_and_parse(&ev, line, sizeof(line));
	assert_string_equal(json_string_value(json_object_get(o, "result")), "ok");
	assert_null(json_object_get(o, "anomalies"));
	json_decref(o);
}

/* How one byte among plain ASCII is written (a lone byte >= 0x80 is not UTF-8). */
static void escape_one(unsigned c, char *out, size_t cap)
{
	if (c == '"' || c == '\\')
		snprintf(out, cap, "\\%c", c);
	else if (c == '\n')
		snprintf(out, cap, "\\n");
	else if (c == '\r')
		snprintf(out, cap, "\\r");
	else if (c == '\t')
		snprintf(out, cap, "\\t");
	else if (c < 0x20 || c == 0x7f)
		snprintf(out, cap, "\\u%04x", c);
	else if (c >= 0x80)
		snprintf(out, cap, "\\ufffd");
	else
		snprintf(out, cap, "%c", c);
}

static void every_byte_at_every_offset_is_escaped(void **state)
{
	/* the escaper skips plain text 8 bytes at a time: a byte that needs
	 * escaping must be caught wherever it sits in (or after) such a word */
	(void)state;
	const char plain[] = "abcdefghijklmnopqrstuvwxyz0123456789 ~!#";
	size_t n = sizeof(plain) - 1;
	for (size_t pos = 0; pos < n; pos++) {
		for (unsigned c = 0; c < 256; c++) {
			char in[64], out[128], want[128], esc[16];
			memcpy(in, plain, n);
			in[pos] = (char)c;
			escape_one(c, esc, sizeof(esc));
			snprintf(want, sizeof(want), "\"%.*s%s%s\"", (int)pos, plain, esc, plain + pos + 1);
			struct audit_buf b;
			audit_buf_init(&b, out, sizeof(out));
			audit_buf_json_strn(&b, in, n);
			assert_false(b.overflow);
			if (b.len != strlen(want) || memcmp(out, want, b.len) != 0)
				fail_msg("byte 0x%02x at %zu: %.*s, want %s", c, pos, (int)b.len, out, want);
		}
	}
}

static void check_peer(const struct bms_identity *id, const char *want_addr)
{
	struct audit_event ev = { .kind = AUDIT_CONN_ACCEPTED, .peer = id };
	char line[4096];
	json_t *o = format_and_parse(&ev, line, sizeof(line));
	json_t *p = json_object_get(o, "peer");
	assert_string_equal(json_string_value(json_object_get(p, "subject")), id->subject);
	assert_string_equal(json_string_value(json_object_get(p, "role")), id->role);
	assert_string_equal(json_string_value(json_object_get(p, "address")), want_addr);
	assert_int_equal(json_is_true(json_object_get(p, "authenticated")), id->authenticated);
	json_t *fp = json_object_get(p, "fingerprint");
	if (id->has_fingerprint) {
		char hex[65];
		audit_hex(id->fingerprint, 32, hex);
		assert_string_equal(json_string_value(fp), hex);
	} else {
		assert_null(fp);
	}
	json_decref(o);
}

static void peer_of_each_record_is_its_own(void **state)
{
	/* the formatter reuses the last peer object when the identity is the same:
	 * every field that differs must give a new one, and returning to an
	 * identity must give its own again */
	(void)state;
	struct bms_identity base = { .authenticated = true, .has_fingerprint = true };
	snprintf(base.subject, sizeof(base.subject), "CN=head-end-1,O=Site");
	snprintf(base.role, sizeof(base.role), "operator");
	memset(base.fingerprint, 0x5a, sizeof(base.fingerprint));
	struct sockaddr_in *sin = (struct sockaddr_in *)&base.addr;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(50123);
	inet_pton(AF_INET, "10.1.2.3", &sin->sin_addr);
	base.addr_len = sizeof(*sin);

	struct bms_identity v[9];
	const char *addr[9];
	for (int i = 0; i < 9; i++) {
		v[i] = base;
		addr[i] = "10.1.2.3:50123";
	}
	snprintf(v[1].subject, sizeof(v[1].subject), "CN=head-end-1,O=Sit");   /* shorter */
	snprintf(v[2].subject, sizeof(v[2].subject), "CN=head-end-1,O=Site2"); /* longer */
	snprintf(v[3].role, sizeof(v[3].role), "operators");
	v[4].fingerprint[31] ^= 1;
	v[5].has_fingerprint = false;
	v[6].authenticated = false;
	((struct sockaddr_in *)&v[7].addr)->sin_port = htons(50124);
	addr[7] = "10.1.2.3:50124";
	v[8].addr_len = 0;
	addr[8] = "";
	/* base, then each variant after base and after itself */
	for (int i = 0; i < 9; i++) {
		check_peer(&base, addr[0]);
		check_peer(&v[i], addr[i]);
		check_peer(&v[i], addr[i]);
	}
	check_peer(&base, addr[0]);
	/* the same struct changed in place between two records */
	struct bms_identity w = base;
	check_peer(&w, addr[0]);
	w.subject[3] = 'X';
	check_peer(&w, addr[0]);
}

static void buffer_overflow_is_reported(void **state)
{
	(void)state;
	char small[40];
	struct audit_buf b;
	audit_buf_init(&b, small, sizeof(small));
	struct audit_event ev = { .kind = AUDIT_START, .detail = "a detail longer than forty bytes in all, surely" };
	assert_int_equal(audit_format_body(&ev, "gw1", 1, &b), -ENOSPC);
	assert_true(b.len <= sizeof(small));
}

static void time_round_trip(void **state)
{
	(void)state;
	char ts[AUDIT_TIME_LEN + 1];
	int64_t us;
	audit_format_time(0, ts);
	assert_string_equal(ts, "1970-01-01T00:00:00.000000Z");
	audit_format_time(1763798400123456LL, ts);
	assert_string_equal(ts, "2025-11-22T08:00:00.123456Z");
	/* the cached second: another microsecond of the same second */
	audit_format_time(1763798400000007LL, ts);
	assert_string_equal(ts, "2025-11-22T08:00:00.000007Z");
	assert_int_equal(audit_parse_time("2025-11-22T08:00:00.123456Z", &us), 0);
	assert_int_equal(us, 1763798400123456LL);
	assert_int_equal(audit_parse_time("2025-11-22T09:00:00+01:00", &us), 0);
	assert_int_equal(us, 1763798400000000LL);
	assert_int_equal(audit_parse_time("2025-11-22 08:00", &us), 0);
	assert_int_equal(us, 1763798400000000LL);
	assert_int_equal(audit_parse_time("2025-11-22", &us), 0);
	assert_int_equal(us, 1763769600000000LL);
	assert_int_equal(audit_parse_time("2025-11-22T08:00:00.5Z", &us), 0);
	assert_int_equal(us, 1763798400500000LL);
	assert_int_equal(audit_parse_time("2025-13-22", &us), -EINVAL);
	assert_int_equal(audit_parse_time("2025-11-22T08", &us), -EINVAL);
	assert_int_equal(audit_parse_time("2025-11-22T08:00:00.Z", &us), -EINVAL);
	assert_int_equal(audit_parse_time("2025-11-22T08:00:00Zjunk", &us), -EINVAL);
	assert_int_equal(audit_parse_time("yesterday", &us), -EINVAL);
}

static void line_parser_classifies(void **state)
{
	(void)state;
	struct audit_line ln;
	const char *rec = "{\"seq\":5,\"time\":\"2025-11-22T08:00:00.000000Z\",\"kind\":\"start\",\"prev\":\"00112233445566ff\"}";
	audit_line_parse(rec, strlen(rec), &ln, NULL);
	assert_true(ln.parsed);
	assert_int_equal(ln.type, AUDIT_LINE_RECORD);
	assert_int_equal(ln.seq, 5);
	assert_int_equal(ln.prev[7], 0xff);
	assert_int_equal(ln.time_us, 1763798400000000LL);
	const char *dup = "{\"seq\":5,\"seq\":6,\"kind\":\"start\",\"prev\":\"0011223344556677\"}";
	audit_line_parse(dup, strlen(dup), &ln, NULL);
	assert_false(ln.parsed); /* a duplicated key could make readers disagree */
	const char *cp = "{\"kind\":\"checkpoint\",\"node\":\"n\",\"size\":3,\"root\":\"00\"}";
	audit_line_parse(cp, strlen(cp), &ln, NULL);
	assert_int_equal(ln.type, AUDIT_LINE_CHECKPOINT);
	assert_false(ln.parsed);
	assert_non_null(strstr(ln.error, "root"));
	audit_line_parse("[1]", 3, &ln, NULL);
	assert_false(ln.parsed);
	const char *neg = "{\"seq\":-1,\"kind\":\"x\",\"prev\":\"0011223344556677\"}";
	audit_line_parse(neg, strlen(neg), &ln, NULL);
	assert_false(ln.parsed);
	assert_non_null(strstr(ln.error, "seq"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strings_are_escaped_and_utf8_checked),
		cmocka_unit_test(bacnet_target_and_values),
		cmocka_unit_test(modbus_coils_and_mask_write),
		cmocka_unit_test(ipv6_address_and_result_record),
		cmocka_unit_test(reload_records),
		cmocka_unit_test(bad_answer_result_record),
		cmocka_unit_test(every_byte_at_every_offset_is_escaped),
		cmocka_unit_test(peer_of_each_record_is_its_own),
		cmocka_unit_test(buffer_overflow_is_reported),
		cmocka_unit_test(time_round_trip),
		cmocka_unit_test(line_parser_classifies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
