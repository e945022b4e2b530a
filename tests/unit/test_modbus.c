/* tests/unit/test_modbus.c: Modbus names, classes, limits swept at their
 * boundaries, exception encoding and the decoder's contract, built in code
 * (the byte vectors live in tests/vectors/modbus, see test_modbus_vectors.c). */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parsers/modbus.h"

/* Builds an ADU around a PDU (fc + data) in `out`; returns its length. */
static size_t adu(uint8_t *out, uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t pdu_len)
{
	out[0] = (uint8_t)(tid >> 8);
	out[1] = (uint8_t)tid;
	out[2] = 0;
	out[3] = 0;
	out[4] = (uint8_t)((pdu_len + 1) >> 8);
	out[5] = (uint8_t)(pdu_len + 1);
	out[6] = unit;
	memcpy(out + 7, pdu, pdu_len);
	return 7 + pdu_len;
}

/* Decodes from an exact-size heap copy so that ASan sees any overread. */
static enum bms_parse_result decode(const uint8_t *buf, size_t len, enum bms_dir dir, struct bms_request *r)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum bms_parse_result res;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	res = modbus_decode(copy, len, dir, r);
	/* Borrowed pointers would dangle: the tests here look only at values. */
	for (unsigned i = 0; i < r->ntargets; i++)
		r->targets[i].data = NULL;
	r->raw.modbus.pdu = NULL;
	free(copy);
	return res;
}

static enum bms_parse_result decode_pdu(const uint8_t *pdu, size_t n, enum bms_dir dir, struct bms_request *r)
{
	uint8_t buf[MODBUS_MAX_ADU + 8];

	assert_true(n <= 253);
	return decode(buf, adu(buf, 0x1234, 1, pdu, n), dir, r);
}

/* The names are an interface (JSON, audit trail, policy files): pinned here. */
static void anomaly_names_are_stable(void **state)
{
	(void)state;
	static const char *const want[64] = {
		[0] = "truncated_header", [1] = "bad_protocol_id", [2] = "bad_length",
		[3] = "length_mismatch", [4] = "pdu_truncated", [5] = "pdu_trailing_bytes",
		[6] = "invalid_function_code", [7] = "byte_count_mismatch",
		[8] = "byte_count_quantity_mismatch", [9] = "bad_byte_count", [10] = "bad_quantity",
		[11] = "address_overflow", [12] = "bad_coil_value", [13] = "bad_diag_data",
		[14] = "bad_status_value", [15] = "bad_reference_type", [16] = "bad_file_number",
		[17] = "bad_record_number", [18] = "bad_record_length", [19] = "record_overflow",
		[20] = "bad_fifo_count", [21] = "bad_device_id_code", [22] = "bad_conformity_level",
		[23] = "bad_more_follows", [24] = "object_list_mismatch", [25] = "response_fc_mismatch",
		[26] = "response_unit_mismatch", [27] = "response_count_mismatch",
		[28] = "response_echo_mismatch", [29] = "response_tid_mismatch", [30] = "direction_mismatch",
		[32] = "unassigned_function", [33] = "user_defined_function", [34] = "reserved_function",
		[35] = "reserved_diag_subfunction", [36] = "reserved_mei_type",
		[37] = "unknown_exception_code", [38] = "broadcast_unit", [39] = "nonzero_padding",
		[40] = "too_many_targets", [41] = "diag_restart_comms", [42] = "diag_force_listen_only",
		[43] = "diag_clear_counters", [44] = "diag_change_delimiter", [45] = "unexpected_response",
	};

	for (unsigned b = 0; b < 64; b++) {
		const char *n = modbus_anomaly_name(b);
		if (want[b] == NULL) {
			assert_null(n);
			continue;
		}
		assert_non_null(n);
		assert_string_equal(n, want[b]);
		assert_int_equal(modbus_anomaly_from_name(n), (int)b);
		assert_ptr_equal(bms_anomaly_name(BMS_PROTO_MODBUS, b), n);
		for (const char *p = n; *p; p++)
			assert_true(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_');
	}
	assert_null(modbus_anomaly_name(64));
	assert_null(modbus_anomaly_name(1000));
	assert_int_equal(modbus_anomaly_from_name("no_such_anomaly"), -1);
}

static void function_code_names(void **state)
{
	(void)state;
	assert_string_equal(modbus_fc_name(3), "read_holding_registers");
	assert_string_equal(modbus_fc_name(0x83), "read_holding_registers");
	assert_string_equal(modbus_fc_name(23), "read_write_multiple_registers");
	assert_string_equal(modbus_fc_name(43), "encapsulated_interface_transport");
	assert_string_equal(modbus_fc_name(65), "user_defined");
	assert_string_equal(modbus_fc_name(110), "user_defined");
	assert_string_equal(modbus_fc_name(90), "reserved");
	assert_string_equal(modbus_fc_name(30), "unassigned");
	assert_string_equal(modbus_fc_name(0), "invalid");
	assert_string_equal(modbus_fc_name(0x80), "invalid");
	for (unsigned fc = 0; fc < 256; fc++)
		assert_non_null(modbus_fc_name((uint8_t)fc));
	assert_string_equal(modbus_exception_name(1), "illegal_function");
	assert_string_equal(modbus_exception_name(2), "illegal_data_address");
	assert_string_equal(modbus_exception_name(3), "illegal_data_value");
	assert_string_equal(modbus_exception_name(4), "server_device_failure");
	assert_string_equal(modbus_exception_name(5), "acknowledge");
	assert_string_equal(modbus_exception_name(6), "server_device_busy");
	assert_string_equal(modbus_exception_name(8), "memory_parity_error");
	assert_string_equal(modbus_exception_name(0x0A), "gateway_path_unavailable");
	assert_string_equal(modbus_exception_name(0x0B), "gateway_target_device_failed_to_respond");
	assert_string_equal(modbus_exception_name(9), "unknown");
	assert_string_equal(modbus_exception_name(0x0C), "unknown");
	assert_string_equal(modbus_diag_name(0x04), "force_listen_only_mode");
	assert_string_equal(modbus_diag_name(0x14), "clear_overrun_counter_and_flag");
	assert_string_equal(modbus_diag_name(0x13), "reserved");
	assert_string_equal(modbus_mei_name(14), "read_device_identification");
	assert_string_equal(modbus_mei_name(13), "canopen_general_reference");
	assert_string_equal(modbus_mei_name(1), "reserved");
}

/* The operation class of every code, from an independent table of the issue. */
static void operation_classes(void **state)
{
	(void)state;
	for (unsigned fc = 0; fc < 128; fc++) {
		enum bms_op want = BMS_OP_UNKNOWN;
		switch (fc) {
		case 1: case 2: case 3: case 4: case 24: want = BMS_OP_READ; break;
		case 5: case 6: case 15: case 16: case 22: case 23: want = BMS_OP_WRITE; break;
		case 20: case 21: want = BMS_OP_FILE; break;
		case 7: case 8: case 11: case 12: case 43: want = BMS_OP_MANAGEMENT; break;
		case 17: want = BMS_OP_DISCOVERY; break;
		default:
			if ((fc >= 65 && fc <= 72) || (fc >= 100 && fc <= 110))
				want = BMS_OP_PRIVATE;
		}
		assert_int_equal(modbus_fc_op((uint8_t)fc), want);
		assert_int_equal(modbus_fc_op((uint8_t)(fc | 0x80)), want);
	}
}

/* Every code outside the public set decodes OK as an opaque PDU, with exactly one
 * of the three "what kind of code" anomalies, in both directions. */
static void unassigned_codes_decode_opaque(void **state)
{
	(void)state;
	static const uint8_t reserved[] = { 9, 10, 13, 14, 41, 42, 90, 91, 125, 126, 127 };
	static const uint8_t public[] = { 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43 };

	for (unsigned fc = 1; fc < 128; fc++) {
		bool is_public = memchr(public, (int)fc, sizeof(public)) != NULL;
		if (is_public)
			continue;
		uint8_t pdu[] = { (uint8_t)fc, 0xDE, 0xAD, 0xBE };
		bool user = (fc >= 65 && fc <= 72) || (fc >= 100 && fc <= 110);
		bool res = memchr(reserved, (int)fc, sizeof(reserved)) != NULL;
		uint64_t want = 1ull << (user ? MB_AN_USER_DEFINED_FUNCTION
					      : res ? MB_AN_RESERVED_FUNCTION : MB_AN_UNASSIGNED_FUNCTION);
		for (int dir = 0; dir < 2; dir++) {
			struct bms_request r;
			assert_int_equal(decode_pdu(pdu, sizeof(pdu), (enum bms_dir)dir, &r), BMS_OK);
			assert_int_equal(r.anomalies, want);
			assert_int_equal(r.op, user ? BMS_OP_PRIVATE : BMS_OP_UNKNOWN);
			assert_int_equal(r.ntargets, 0);
			assert_int_equal(r.raw.modbus.pdu_len, 3);
			/* and just the function code */
			assert_int_equal(decode_pdu(pdu, 1, (enum bms_dir)dir, &r), BMS_OK);
		}
	}
}

/* Quantity limits at their boundaries, for each function that has one. */
static void quantity_limits(void **state)
{
	(void)state;
	static const struct { uint8_t fc; uint16_t max; } reads[] = { { 1, 2000 }, { 2, 2000 }, { 3, 125 }, { 4, 125 } };
	uint8_t pdu[256];
	struct bms_request r;

	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		const uint16_t qs[] = { 0, 1, reads[i].max, (uint16_t)(reads[i].max + 1), 0xFFFF };
		for (size_t k = 0; k < 5; k++) {
			uint8_t p[] = { reads[i].fc, 0, 0, (uint8_t)(qs[k] >> 8), (uint8_t)qs[k] };
			enum bms_parse_result want = qs[k] >= 1 && qs[k] <= reads[i].max ? BMS_OK : BMS_MALFORMED;
			assert_int_equal(decode_pdu(p, sizeof(p), BMS_DIR_REQUEST, &r), want);
			if (want == BMS_MALFORMED)
				assert_int_equal(r.anomalies, 1ull << MB_AN_BAD_QUANTITY);
			else
				assert_int_equal(r.targets[0].count, qs[k]);
		}
		/* The last address that fits, and one past it. */
		for (int over = 0; over < 2; over++) {
			uint16_t q = reads[i].max, a = (uint16_t)(65536 - q + over);
			uint8_t p[] = { reads[i].fc, (uint8_t)(a >> 8), (uint8_t)a, (uint8_t)(q >> 8), (uint8_t)q };
			assert_int_equal(decode_pdu(p, sizeof(p), BMS_DIR_REQUEST, &r), over ? BMS_MALFORMED : BMS_OK);
			if (over)
				assert_int_equal(r.anomalies, 1ull << MB_AN_ADDRESS_OVERFLOW);
		}
	}
	/* FC 15: 1..1968 coils, byte count ceil(q/8); FC 16: 1..123 registers, 2q bytes. */
	for (int fc = 15; fc <= 16; fc++) {
		uint16_t max = fc == 15 ? 1968 : 123;
		const uint16_t qs[] = { 1, 7, 8, 9, (uint16_t)(max - 1), max, (uint16_t)(max + 1) };
		for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
			uint16_t q = qs[k];
			size_t bc = fc == 15 ? (q + 7u) / 8u : 2u * q;
			if (6 + bc > 253)
				continue; /* cannot be framed at all */
			memset(pdu, 0, sizeof(pdu));
			pdu[0] = (uint8_t)fc;
			pdu[3] = (uint8_t)(q >> 8);
			pdu[4] = (uint8_t)q;
			pdu[5] = (uint8_t)bc;
			enum bms_parse_result want = q <= max ? BMS_OK : BMS_MALFORMED;
			assert_int_equal(decode_pdu(pdu, 6 + bc, BMS_DIR_REQUEST, &r), want);
			if (want == BMS_OK) {
				assert_int_equal(r.targets[0].count, q);
				assert_int_equal(r.targets[0].data_len, bc);
			} else {
				assert_int_equal(r.anomalies, 1ull << MB_AN_BAD_QUANTITY);
			}
			/* one byte too many and too few, with the MBAP length following */
			if (6 + bc + 1 <= 253) {
				pdu[5] = (uint8_t)(bc + 1);
				assert_int_equal(decode_pdu(pdu, 6 + bc + 1, BMS_DIR_REQUEST, &r), BMS_MALFORMED);
				assert_true(r.anomalies & (1ull << MB_AN_BYTE_COUNT_QUANTITY_MISMATCH |
							   1ull << MB_AN_BAD_QUANTITY));
			}
			if (bc > 1) {
				pdu[5] = (uint8_t)(bc - 1);
				assert_int_equal(decode_pdu(pdu, 6 + bc - 1, BMS_DIR_REQUEST, &r), BMS_MALFORMED);
			}
		}
	}
	/* FC 23: read 1..125, write 1..121. */
	for (int rq = 124; rq <= 126; rq++) {
		for (int wq = 120; wq <= 122; wq++) {
			size_t bc = 2u * (size_t)wq;
			if (10 + bc > 253)
				continue;
			memset(pdu, 0, sizeof(pdu));
			pdu[0] = 23;
			pdu[4] = (uint8_t)rq;
			pdu[8] = (uint8_t)wq;
			pdu[9] = (uint8_t)bc;
			enum bms_parse_result want = rq <= 125 && wq <= 121 ? BMS_OK : BMS_MALFORMED;
			assert_int_equal(decode_pdu(pdu, 10 + bc, BMS_DIR_REQUEST, &r), want);
			if (want == BMS_OK) {
				assert_int_equal(r.ntargets, 2);
				assert_int_equal(r.targets[0].count, rq);
				assert_int_equal(r.targets[1].count, wq);
				assert_int_equal(r.op, BMS_OP_WRITE);
			}
		}
	}
	/* FC 24 response: FIFO count 0..31. */
	for (int n = 30; n <= 32; n++) {
		size_t bc = 2u + 2u * (size_t)n;
		memset(pdu, 0, sizeof(pdu));
		pdu[0] = 24;
		pdu[2] = (uint8_t)bc;
		pdu[4] = (uint8_t)n;
		assert_int_equal(decode_pdu(pdu, 3 + bc, BMS_DIR_RESPONSE, &r), n <= 31 ? BMS_OK : BMS_MALFORMED);
	}
}

/* FC 5: only 0x0000 and 0xFF00, every other value of the high byte 0xFF or 0x00 rejected. */
static void coil_values(void **state)
{
	(void)state;
	struct bms_request r;

	for (unsigned v = 0; v < 0x10000; v += (v < 0x200 || v > 0xFE00) ? 1 : 251) {
		uint8_t p[] = { 5, 0, 1, (uint8_t)(v >> 8), (uint8_t)v };
		bool ok = v == 0 || v == 0xFF00;
		assert_int_equal(decode_pdu(p, sizeof(p), BMS_DIR_REQUEST, &r), ok ? BMS_OK : BMS_MALFORMED);
		if (ok) {
			assert_true(r.targets[0].has_value);
			assert_int_equal(r.targets[0].value.b, v == 0xFF00);
		}
	}
}

/* Every diagnostics sub-function with data 00 00: decodes, reserved ones flagged. */
static void diagnostics_subfunctions(void **state)
{
	(void)state;
	struct bms_request r;

	for (unsigned sub = 0; sub < 0x40; sub++) {
		uint8_t p[] = { 8, 0, (uint8_t)sub, 0, 0 };
		bool reserved = (sub >= 5 && sub <= 9) || sub == 0x13 || sub > 0x14;
		assert_int_equal(decode_pdu(p, sizeof(p), BMS_DIR_REQUEST, &r), BMS_OK);
		assert_int_equal(r.op, BMS_OP_MANAGEMENT);
		assert_int_equal(r.raw.modbus.sub, sub);
		assert_int_equal((r.anomalies >> MB_AN_RESERVED_DIAG_SUBFUNCTION) & 1, reserved);
		assert_int_equal(strcmp(modbus_diag_name((uint16_t)sub), "reserved") == 0, reserved);
	}
}

/* FC 20 with 35 sub-requests: the targets stop at BMS_MAX_TARGETS, flagged. */
static void too_many_targets(void **state)
{
	(void)state;
	uint8_t pdu[2 + 35 * 7];
	struct bms_request r;

	pdu[0] = 20;
	pdu[1] = 35 * 7;
	for (int i = 0; i < 35; i++) {
		uint8_t *s = pdu + 2 + i * 7;
		s[0] = 6;
		s[1] = 0, s[2] = (uint8_t)(i + 1); /* file */
		s[3] = 0, s[4] = (uint8_t)i;       /* record */
		s[5] = 0, s[6] = 1;                /* length */
	}
	assert_int_equal(decode_pdu(pdu, sizeof(pdu), BMS_DIR_REQUEST, &r), BMS_OK);
	assert_int_equal(r.ntargets, BMS_MAX_TARGETS);
	assert_int_equal(r.raw.modbus.nsub, 35);
	assert_int_equal(r.anomalies, 1ull << MB_AN_TOO_MANY_TARGETS);
	assert_int_equal(r.targets[31].instance, 32);
	assert_int_equal(r.op, BMS_OP_FILE);
}

static void exception_round_trip(void **state)
{
	(void)state;
	uint8_t out[9];
	struct bms_request r;

	assert_int_equal(modbus_encode_exception(0xBEEF, 7, 16, 0x01, out), 9);
	static const uint8_t want[9] = { 0xBE, 0xEF, 0, 0, 0, 3, 7, 0x90, 0x01 };
	assert_memory_equal(out, want, 9);
	assert_int_equal(decode(out, 9, BMS_DIR_RESPONSE, &r), BMS_OK);
	assert_int_equal(r.raw.modbus.tid, 0xBEEF);
	assert_int_equal(r.unit, 7);
	assert_int_equal(r.raw.modbus.fc, 0x90);
	assert_int_equal(r.raw.modbus.exception, 1);
	assert_int_equal(r.op, BMS_OP_WRITE);
	assert_int_equal(r.anomalies, 0);
	/* The gateway codes of the design (0A, 0B). */
	for (uint8_t code = 0x0A; code <= 0x0B; code++) {
		modbus_encode_exception(1, 1, 3, code, out);
		assert_int_equal(decode(out, 9, BMS_DIR_RESPONSE, &r), BMS_OK);
		assert_int_equal(r.raw.modbus.exception, code);
	}
}

/* The whole output struct is written on every path, MALFORMED included. */
static void decode_fills_everything(void **state)
{
	(void)state;
	static const uint8_t bad[] = { 0, 1, 0, 7, 0, 6, 1, 3 };
	static const uint8_t read[] = { 0, 1, 0, 0, 0, 6, 1, 3, 0, 10, 0, 2 };
	struct bms_request r, zero;
	struct bms_target want;

	memset(&r, 0xA5, sizeof(r));
	assert_int_equal(modbus_decode(bad, sizeof(bad), BMS_DIR_REQUEST, &r), BMS_MALFORMED);
	assert_int_equal(r.anomalies, 1ull << MB_AN_BAD_PROTOCOL_ID);
	assert_int_equal(r.proto, BMS_PROTO_MODBUS);
	assert_int_equal(r.raw.modbus.proto_id, 7);
	assert_int_equal(r.raw.modbus.fc, 3);
	assert_int_equal(r.op, BMS_OP_READ);
	assert_int_equal(r.ntargets, 0);
	/* everything else zero, except the targets past ntargets (undefined by contract) */
	memset(&zero, 0, sizeof(zero));
	r.anomalies = 0, r.proto = 0, r.op = 0, r.unit = 0;
	r.raw.modbus.tid = 0, r.raw.modbus.proto_id = 0, r.raw.modbus.length = 0, r.raw.modbus.unit = 0;
	r.raw.modbus.fc = 0, r.raw.modbus.has_fc = 0;
	assert_memory_equal(&r, &zero, offsetof(struct bms_request, targets));
	assert_memory_equal(&r.raw.modbus, &zero.raw.modbus, sizeof(r.raw.modbus));

	/* A target the decoder adds is wholly defined, whatever the slot held before. */
	memset(&r, 0xA5, sizeof(r));
	assert_int_equal(modbus_decode(read, sizeof(read), BMS_DIR_REQUEST, &r), BMS_OK);
	assert_int_equal(r.ntargets, 1);
	memset(&want, 0, sizeof(want));
	want.space = BMS_SPACE_HOLDING_REGISTER;
	want.start = 10;
	want.count = 2;
	want.array_index = BMS_NO_INDEX;
	assert_memory_equal(&r.targets[0], &want, sizeof(want));
}

/* check_response refuses what is not a Modbus request/response pair. */
static void check_response_needs_a_pair(void **state)
{
	(void)state;
	static const uint8_t req[] = { 0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1 };
	static const uint8_t rsp[] = { 0, 1, 0, 0, 0, 5, 1, 3, 2, 0, 7 };
	struct bms_request q, s, other;
	uint64_t an = 0;

	assert_int_equal(modbus_decode(req, sizeof(req), BMS_DIR_REQUEST, &q), BMS_OK);
	assert_int_equal(modbus_decode(rsp, sizeof(rsp), BMS_DIR_RESPONSE, &s), BMS_OK);
	assert_int_equal(modbus_check_response(&q, &s, &an), BMS_OK);
	assert_int_equal(an, 0);
	modbus_pair_response(&q, &s);
	assert_int_equal(s.targets[0].start, 0);
	assert_int_equal(s.targets[0].count, 1);
	assert_int_equal(modbus_check_response(&s, &q, &an), BMS_MALFORMED);
	assert_int_equal(an, 1ull << MB_AN_DIRECTION_MISMATCH);
	memset(&other, 0, sizeof(other));
	other.proto = BMS_PROTO_BACNET;
	other.dir = BMS_DIR_RESPONSE;
	assert_int_equal(modbus_check_response(&q, &other, &an), BMS_MALFORMED);
	assert_int_equal(an, 1ull << MB_AN_DIRECTION_MISMATCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(anomaly_names_are_stable),
		cmocka_unit_test(function_code_names),
		cmocka_unit_test(operation_classes),
		cmocka_unit_test(unassigned_codes_decode_opaque),
		cmocka_unit_test(quantity_limits),
		cmocka_unit_test(coil_values),
		cmocka_unit_test(diagnostics_subfunctions),
		cmocka_unit_test(too_many_targets),
		cmocka_unit_test(exception_round_trip),
		cmocka_unit_test(decode_fills_everything),
		cmocka_unit_test(check_response_needs_a_pair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
