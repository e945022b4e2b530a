/* tests/unit/test_bacnet.c: the BACnet tag decoder, the deny encoders, the name tables, and
 * properties every decode must keep (no password copied, no read past the datagram). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parsers/bacnet.h"
#include "parsers/bacnet_tag.h"

/* ---- tag decoder ---- */

static void tag_forms(void **state)
{
	(void)state;
	/* [1] Unsigned 85; app Boolean true; ext tag [20] len 1; app OctetString ext length 6;
	 * [3] opening; [3] closing */
	static const uint8_t b[] = { 0x19, 0x55, 0x11, 0xF9, 0x14, 0x07, 0x65, 0x06, 1, 2, 3, 4, 5, 6, 0x3E, 0x3F };
	struct bms_cursor c;
	struct bacnet_tag t;
	uint64_t u;

	bms_cursor_init(&c, b, sizeof(b));
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	assert_int_equal(t.context, 1);
	assert_int_equal(t.number, 1);
	assert_int_equal(t.len, 1);
	assert_int_equal(bacnet_tag_unsigned(&t, &u), 0);
	assert_int_equal(u, 85);
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	assert_int_equal(t.context, 0);
	assert_int_equal(t.number, BACNET_APP_BOOLEAN);
	assert_int_equal(t.len, 0);
	assert_int_equal(t.lvt, 1);
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	assert_int_equal(t.number, 20);
	assert_int_equal(t.len, 1);
	assert_int_equal(t.data[0], 0x07);
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	assert_int_equal(t.number, BACNET_APP_OCTET_STRING);
	assert_int_equal(t.len, 6);
	assert_ptr_equal(t.data, b + 8);
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	assert_int_equal(t.kind, BACNET_TAG_OPENING);
	assert_int_equal(t.number, 3);
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	assert_int_equal(t.kind, BACNET_TAG_CLOSING);
	assert_int_equal(bms_cursor_left(&c), 0);
	assert_int_equal(bacnet_tag_validate(b, sizeof(b)), 0);
}

static void tag_failures_leave_cursor(void **state)
{
	(void)state;
	static const struct {
		uint8_t b[8];
		size_t n;
		unsigned bit;
	} cases[] = {
		{ { 0x65, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0x00 }, 7, BACNET_AN_TAG_LENGTH_OVERFLOW },
		{ { 0x65, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, 6, BACNET_AN_TAG_LENGTH_OVERFLOW },
		{ { 0x65, 0xFE, 0x00 }, 3, BACNET_AN_TAG_TRUNCATED },
		{ { 0x65 }, 1, BACNET_AN_TAG_TRUNCATED },
		{ { 0xF9 }, 1, BACNET_AN_TAG_TRUNCATED },
		{ { 0xF9, 0xFF, 0x00 }, 3, BACNET_AN_TAG_RESERVED },
		{ { 0x44, 0x00 }, 2, BACNET_AN_TAG_LENGTH_OVERFLOW },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bms_cursor c;
		struct bacnet_tag t;
		int rc;

		bms_cursor_init(&c, cases[i].b, cases[i].n);
		rc = bacnet_tag_read(&c, &t);
		assert_true(rc < 0);
		assert_int_equal(BACNET_TAG_ERR_BIT(rc), cases[i].bit);
		assert_int_equal(c.off, 0);
		assert_int_equal(BACNET_TAG_ERR_BIT(bacnet_tag_validate(cases[i].b, cases[i].n)), cases[i].bit);
	}
	{
		struct bms_cursor c;
		struct bacnet_tag t;
		bms_cursor_init(&c, cases[0].b, 0);
		assert_int_equal(BACNET_TAG_ERR_BIT(bacnet_tag_read(&c, &t)), BACNET_AN_TAG_TRUNCATED);
	}
}

/* The inline reader (one-octet headers) and the general one agree on every first octet and
 * every length, content and failure: the inline one is only a shortcut. */
static void tag_read_inline_matches_general(void **state)
{
	(void)state;
	uint8_t b[12];

	for (unsigned first = 0; first < 256; first++) {
		for (size_t n = 0; n <= sizeof(b); n++) {
			for (unsigned fill = 0; fill < 2; fill++) {
				struct bms_cursor c1, c2;
				struct bacnet_tag t1, t2;
				int r1, r2;

				b[0] = (uint8_t)first;
				for (size_t i = 1; i < sizeof(b); i++)
					b[i] = fill ? (uint8_t)(0xFE - i) : (uint8_t)i;
				bms_cursor_init(&c1, b, n);
				bms_cursor_init(&c2, b, n);
				memset(&t1, 0x5A, sizeof(t1));
				memset(&t2, 0x5A, sizeof(t2));
				r1 = bacnet_tag_read(&c1, &t1);
				r2 = bacnet_tag_read_general(&c2, &t2);
				assert_int_equal(r1, r2);
				assert_int_equal(c1.off, c2.off);
				if (r1 == 0)
					assert_memory_equal(&t1, &t2, sizeof(t1));
			}
		}
	}
}

static void tag_nesting_limit(void **state)
{
	(void)state;
	uint8_t b[2 * (BACNET_MAX_DEPTH + 1)];
	size_t n = 0;

	/* tag numbers 0..14: 15 would announce an extended tag number */
	for (unsigned i = 0; i < BACNET_MAX_DEPTH; i++)
		b[n++] = (uint8_t)(((i % 15) << 4) | 0x0E);
	for (unsigned i = BACNET_MAX_DEPTH; i-- > 0;)
		b[n++] = (uint8_t)(((i % 15) << 4) | 0x0F);
	assert_int_equal(bacnet_tag_validate(b, n), 0);
	/* one level more */
	n = 0;
	for (unsigned i = 0; i <= BACNET_MAX_DEPTH; i++)
		b[n++] = (uint8_t)(((i % 15) << 4) | 0x0E);
	for (unsigned i = BACNET_MAX_DEPTH + 1; i-- > 0;)
		b[n++] = (uint8_t)(((i % 15) << 4) | 0x0F);
	assert_int_equal(BACNET_TAG_ERR_BIT(bacnet_tag_validate(b, n)), BACNET_AN_TAG_NESTING_TOO_DEEP);
	/* mismatched and unclosed */
	b[0] = 0x1E;
	b[1] = 0x2F;
	assert_int_equal(BACNET_TAG_ERR_BIT(bacnet_tag_validate(b, 2)), BACNET_AN_TAG_UNBALANCED);
	assert_int_equal(BACNET_TAG_ERR_BIT(bacnet_tag_validate(b, 1)), BACNET_AN_TAG_UNBALANCED);
}

static void tag_values(void **state)
{
	(void)state;
	static const uint8_t sneg[] = { 0x31, 0xFB };          /* Signed -5 */
	static const uint8_t spos[] = { 0x32, 0x00, 0x80 };    /* Signed 128 */
	static const uint8_t real[] = { 0x44, 0x42, 0x90, 0x00, 0x00 }; /* Real 72.0 */
	static const uint8_t dbl[] = { 0x55, 0x08, 0xBF, 0xD0, 0, 0, 0, 0, 0, 0 }; /* Double -0.25 */
	static const uint8_t enm[] = { 0x91, 0x01 };
	static const uint8_t date[] = { 0xA4, 124, 1, 1, 1 };
	struct bms_cursor c;
	struct bacnet_tag t;
	struct bms_value v;

	bms_cursor_init(&c, sneg, sizeof(sneg));
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	bacnet_tag_value(&t, &v);
	assert_int_equal(v.type, BMS_VAL_SIGNED);
	assert_int_equal(v.i, -5);
	bms_cursor_init(&c, spos, sizeof(spos));
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	bacnet_tag_value(&t, &v);
	assert_int_equal(v.i, 128);
	bms_cursor_init(&c, real, sizeof(real));
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	bacnet_tag_value(&t, &v);
	assert_int_equal(v.type, BMS_VAL_REAL);
	assert_true(v.d == 72.0);
	bms_cursor_init(&c, dbl, sizeof(dbl));
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	bacnet_tag_value(&t, &v);
	assert_int_equal(v.type, BMS_VAL_REAL);
	assert_true(v.d == -0.25);
	bms_cursor_init(&c, enm, sizeof(enm));
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	bacnet_tag_value(&t, &v);
	assert_int_equal(v.type, BMS_VAL_ENUM);
	assert_int_equal(v.u, 1);
	bms_cursor_init(&c, date, sizeof(date));
	assert_int_equal(bacnet_tag_read(&c, &t), 0);
	bacnet_tag_value(&t, &v);
	assert_int_equal(v.type, BMS_VAL_OTHER);
}

/* ---- encoders ---- */

static struct bms_request decoded(const uint8_t *b, size_t n)
{
	struct bms_request r;
	assert_int_equal(bacnet_decode(b, n, &r), BMS_OK);
	return r;
}

/* WriteProperty AV1 PV 72.0 priority 8, invoke id 0x2A */
static const uint8_t wp[] = { 0x81, 0x0A, 0x00, 0x17, 0x01, 0x04, 0x00, 0x05, 0x2A, 0x0F, 0x0C, 0x00, 0x80,
			      0x00, 0x01, 0x19, 0x55, 0x3E, 0x44, 0x42, 0x90, 0x00, 0x00, 0x3F, 0x49, 0x08 };

static void encode_error_write_access_denied(void **state)
{
	(void)state;
	uint8_t wp_ok[sizeof(wp)];
	struct bms_request req, rep;
	uint8_t out[64];
	size_t n = 0;
	static const uint8_t want[] = { 0x81, 0x0A, 0x00, 0x0D, 0x01, 0x00, 0x50, 0x2A, 0x0F, 0x91, 0x04, 0x91, 0x28 };

	memcpy(wp_ok, wp, sizeof(wp));
	wp_ok[3] = sizeof(wp);
	req = decoded(wp_ok, sizeof(wp_ok));
	assert_int_equal(bacnet_encode_error(&req, BACNET_ERROR_CLASS_SECURITY, BACNET_ERROR_CODE_WRITE_ACCESS_DENIED,
					     out, sizeof(out), &n), 0);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	/* our own reply decodes as the Error it claims to be */
	rep = decoded(out, n);
	assert_int_equal(rep.dir, BMS_DIR_RESPONSE);
	assert_int_equal(rep.raw.bacnet.pdu_type, BACNET_PDU_ERROR);
	assert_int_equal(rep.raw.bacnet.invoke_id, 0x2A);
	assert_int_equal(rep.raw.bacnet.service, BACNET_SVC_WRITE_PROPERTY);
	assert_int_equal(rep.raw.bacnet.error_class, 4);
	assert_int_equal(rep.raw.bacnet.error_code, 40);
	/* every capacity below the size fails cleanly, and never writes past cap */
	for (size_t cap = 0; cap < sizeof(want); cap++) {
		uint8_t *small = malloc(cap ? cap : 1);
		size_t m = 99;
		assert_non_null(small);
		assert_int_equal(bacnet_encode_error(&req, 4, 40, small, cap, &m), -ENOSPC);
		assert_int_equal(m, 99);
		free(small);
	}
}

static void encode_error_routed_and_wpm(void **state)
{
	(void)state;
	/* WPM from SNET 7 / SADR 0x19, for AV1 PV [index 3] */
	static const uint8_t wpm[] = { 0x81, 0x0A, 0x00, 0x1F, 0x01, 0x0C, 0x00, 0x07, 0x01, 0x19, 0x00, 0x05, 0x03, 0x10,
				       0x0C, 0x00, 0x80, 0x00, 0x01, 0x1E, 0x09, 0x55, 0x19, 0x03, 0x2E, 0x44, 0x42,
				       0x90, 0x00, 0x00, 0x2F, 0x1F };
	uint8_t buf[sizeof(wpm)];
	struct bms_request req, rep;
	uint8_t out[64];
	size_t n;
	static const uint8_t want[] = { 0x81, 0x0A, 0x00, 0x1F, 0x01, 0x20, 0x00, 0x07, 0x01, 0x19, 0xFF, 0x50, 0x03, 0x10,
					0x0E, 0x91, 0x04, 0x91, 0x28, 0x0F, 0x1E, 0x0C, 0x00, 0x80, 0x00, 0x01, 0x19,
					0x55, 0x29, 0x03, 0x1F };

	memcpy(buf, wpm, sizeof(wpm));
	buf[3] = sizeof(wpm);
	req = decoded(buf, sizeof(buf));
	assert_int_equal(req.raw.bacnet.snet, 7);
	assert_int_equal(bacnet_encode_error(&req, 4, 40, out, sizeof(out), &n), 0);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	rep = decoded(out, n);
	assert_int_equal(rep.raw.bacnet.dnet, 7);
	assert_int_equal(rep.raw.bacnet.dadr_len, 1);
	assert_int_equal(rep.raw.bacnet.dadr[0], 0x19);
	assert_int_equal(rep.raw.bacnet.error_class, 4);
	assert_int_equal(rep.raw.bacnet.error_code, 40);
}

static void encode_reject_abort(void **state)
{
	(void)state;
	uint8_t buf[sizeof(wp)];
	struct bms_request req, rep, unconf;
	uint8_t out[16];
	size_t n;
	static const uint8_t whois[] = { 0x81, 0x0B, 0x00, 0x08, 0x01, 0x00, 0x10, 0x08 };

	memcpy(buf, wp, sizeof(wp));
	buf[3] = sizeof(wp);
	req = decoded(buf, sizeof(buf));
	assert_int_equal(bacnet_encode_reject(&req, 9, out, sizeof(out), &n), 0);
	assert_int_equal(n, 9);
	rep = decoded(out, n);
	assert_int_equal(rep.raw.bacnet.pdu_type, BACNET_PDU_REJECT);
	assert_int_equal(rep.raw.bacnet.invoke_id, 0x2A);
	assert_int_equal(rep.raw.bacnet.reason, 9);
	assert_int_equal(bacnet_encode_abort(&req, 5, out, sizeof(out), &n), 0);
	assert_int_equal(out[6], 0x71);
	rep = decoded(out, n);
	assert_int_equal(rep.raw.bacnet.pdu_type, BACNET_PDU_ABORT);
	assert_int_equal(rep.raw.bacnet.reason, 5);
	assert_int_equal(bacnet_encode_abort(&req, 5, out, 8, &n), -ENOSPC);
	/* unconfirmed requests get no reply: they are dropped and audited */
	unconf = decoded(whois, sizeof(whois));
	assert_int_equal(bacnet_encode_error(&unconf, 4, 40, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(bacnet_encode_reject(&unconf, 9, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(bacnet_encode_abort(&unconf, 4, out, sizeof(out), &n), -EINVAL);
}

/* ---- names ---- */

static void names_complete(void **state)
{
	(void)state;
	for (unsigned s = 0; s < BACNET_SVC_CONFIRMED_COUNT; s++) {
		assert_string_not_equal(bacnet_confirmed_service_name((uint8_t)s), "unknown");
		assert_int_not_equal(bacnet_confirmed_service_op((uint8_t)s), BMS_OP_UNKNOWN);
		assert_int_not_equal(bacnet_confirmed_service_op((uint8_t)s), BMS_OP_NONE);
	}
	for (unsigned s = BACNET_SVC_CONFIRMED_COUNT; s < 256; s++) {
		assert_string_equal(bacnet_confirmed_service_name((uint8_t)s), "unknown");
		assert_int_equal(bacnet_confirmed_service_op((uint8_t)s), BMS_OP_UNKNOWN);
	}
	for (unsigned s = 0; s < BACNET_USVC_COUNT; s++) {
		assert_string_not_equal(bacnet_unconfirmed_service_name((uint8_t)s), "unknown");
		assert_int_not_equal(bacnet_unconfirmed_service_op((uint8_t)s), BMS_OP_UNKNOWN);
	}
	assert_string_equal(bacnet_unconfirmed_service_name(BACNET_USVC_COUNT), "unknown");
	assert_string_equal(bacnet_confirmed_service_name(12), "readProperty");
	assert_string_equal(bacnet_unconfirmed_service_name(8), "who-Is");
	assert_int_equal(bacnet_confirmed_service_op(15), BMS_OP_WRITE);
	assert_int_equal(bacnet_confirmed_service_op(7), BMS_OP_FILE);
	assert_int_equal(bacnet_confirmed_service_op(17), BMS_OP_MANAGEMENT);
	assert_int_equal(bacnet_confirmed_service_op(18), BMS_OP_PRIVATE);
	assert_int_equal(bacnet_confirmed_service_op(27), BMS_OP_COMMAND);
	assert_int_equal(bacnet_unconfirmed_service_op(14), BMS_OP_DISCOVERY);
	assert_string_equal(bacnet_bvlc_function_name(0x0C), "secure-bvll");
	assert_string_equal(bacnet_bvlc_function_name(0x0D), "unknown");
	assert_string_equal(bacnet_net_msg_name(0x13), "network-number-is");
	assert_string_equal(bacnet_net_msg_name(0x90), "proprietary");
	assert_string_equal(bacnet_pdu_type_name(7), "abort");
}

static void anomaly_names_stable(void **state)
{
	(void)state;
	for (unsigned b = 0; b < BACNET_AN_COUNT; b++) {
		const char *n = bacnet_anomaly_name(b);
		assert_non_null(n);
		for (const char *p = n; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
		for (unsigned o = 0; o < b; o++)
			assert_string_not_equal(n, bacnet_anomaly_name(o));
		assert_string_equal(bms_anomaly_name(BMS_PROTO_BACNET, b), n);
	}
	for (unsigned b = BACNET_AN_COUNT; b < 70; b++)
		assert_null(bacnet_anomaly_name(b));
	assert_string_equal(bacnet_anomaly_name(BACNET_AN_BVLC_LENGTH_MISMATCH), "bvlc_length_mismatch");
	assert_string_equal(bacnet_anomaly_name(BACNET_AN_TOO_MANY_TARGETS), "too_many_targets");
}

/* ---- properties of every decode ---- */

static void password_never_copied(void **state)
{
	(void)state;
	/* DeviceCommunicationControl disable, password "Sup3rS3cret!" */
	static const uint8_t dcc[] = { 0x81, 0x0A, 0x00, 0x19, 0x01, 0x04, 0x00, 0x05, 0x01, 0x11, 0x19, 0x01,
				       0x2D, 0x0D, 0x00, 'S', 'u', 'p', '3', 'r', 'S', '3', 'c', 'r', 'e', 't', '!' };
	static const uint8_t ri[] = { 0x81, 0x0A, 0x00, 0x17, 0x01, 0x04, 0x00, 0x05, 0x02, 0x14, 0x09, 0x00,
				      0x1D, 0x0D, 0x00, 'S', 'u', 'p', '3', 'r', 'S', '3', 'c', 'r', 'e', 't', '!' };
	const uint8_t *frames[2] = { dcc, ri };
	size_t sizes[2] = { sizeof(dcc), sizeof(ri) };

	for (int i = 0; i < 2; i++) {
		uint8_t frame[64];
		struct bms_request r;
		memcpy(frame, frames[i], sizes[i]);
		frame[3] = (uint8_t)sizes[i];
		memset(&r, 0xA5, sizeof(r));
		assert_int_equal(bacnet_decode(frame, sizes[i], &r), BMS_OK);
		assert_int_equal(r.raw.bacnet.password_present, 1);
		assert_null(memmem(&r, sizeof(r), "Sup3r", 5));
		assert_int_equal(r.ntargets, 0); /* no borrowed pointer into the frame either */
	}
}

/* Every prefix of a valid datagram and every single-bit corruption decodes without reading past
 * the buffer (ASan watches: each input sits in its own exact-size allocation). */
static void prefixes_and_bit_flips(void **state)
{
	(void)state;
	static const uint8_t rpm_ack[] = { 0x81, 0x0A, 0x00, 0x23, 0x01, 0x00, 0x30, 0x03, 0x0E, 0x0C, 0x00, 0x00,
					   0x00, 0x05, 0x1E, 0x29, 0x55, 0x4E, 0x44, 0x3F, 0xC0, 0x00, 0x00, 0x4F,
					   0x29, 0x1C, 0x5E, 0x91, 0x02, 0x91, 0x20, 0x5F, 0x1F, 0xF9, 0x14 };
	size_t n = sizeof(rpm_ack);
	uint8_t *copy;
	struct bms_request r;

	copy = malloc(n);
	assert_non_null(copy);
	memcpy(copy, rpm_ack, n);
	copy[3] = (uint8_t)(n - 2); /* drop the trailing extended tag: that one is the bit-flip seed's */
	assert_int_equal(bacnet_decode(copy, n - 2, &r), BMS_OK);
	assert_int_equal(r.ntargets, 2);
	free(copy);
	for (size_t len = 0; len < n - 2; len++) {
		copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, rpm_ack, len);
		assert_int_equal(bacnet_decode(copy, len, &r), BMS_MALFORMED);
		assert_true(r.anomalies != 0);
		free(copy);
	}
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			copy = malloc(n);
			assert_non_null(copy);
			memcpy(copy, rpm_ack, n);
			copy[3] = (uint8_t)n;
			copy[i] ^= (uint8_t)(1u << bit);
			enum bms_parse_result rc = bacnet_decode(copy, n, &r);
			assert_true(rc == BMS_OK || rc == BMS_MALFORMED);
			assert_true(rc == BMS_OK || r.anomalies != 0);
			assert_true(r.ntargets <= BMS_MAX_TARGETS);
			free(copy);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tag_forms),
		cmocka_unit_test(tag_failures_leave_cursor),
		cmocka_unit_test(tag_read_inline_matches_general),
		cmocka_unit_test(tag_nesting_limit),
		cmocka_unit_test(tag_values),
		cmocka_unit_test(encode_error_write_access_denied),
		cmocka_unit_test(encode_error_routed_and_wpm),
		cmocka_unit_test(encode_reject_abort),
		cmocka_unit_test(names_complete),
		cmocka_unit_test(anomaly_names_stable),
		cmocka_unit_test(password_never_copied),
		cmocka_unit_test(prefixes_and_bit_flips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
