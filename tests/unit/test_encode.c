/* tests/unit/test_encode.c: the request encoders (parsers/modbus_encode.c,
 * parsers/bacnet_encode.c). Each frame is checked byte for byte against the
 * specification's layout, then run through the real decoder; each refusal
 * has its case beside the success it bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parsers/bacnet.h"
#include "parsers/modbus.h"

/* ---- Modbus ---- */

static void modbus_read_holding(void **state)
{
	(void)state;
	uint8_t adu[MODBUS_MAX_ADU];
	size_t n = 0;
	struct modbus_request_spec spec = { .fc = 3, .start = 100, .count = 2 };
	assert_int_equal(modbus_encode_request(0x1234, 7, &spec, adu, sizeof(adu), &n), 0);
	static const uint8_t want[] = { 0x12, 0x34, 0, 0, 0, 6, 7, 3, 0, 100, 0, 2 };
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(adu, want, sizeof(want));
	struct bms_request r;
	assert_int_equal(modbus_decode(adu, n, BMS_DIR_REQUEST, &r), BMS_OK);
	assert_int_equal(r.op, BMS_OP_READ);
	assert_int_equal(r.unit, 7);
	assert_int_equal(r.targets[0].start, 100);
	assert_int_equal(r.targets[0].count, 2);
}

static void modbus_out_of_spec_quantity_is_encoded_for_the_decoder_to_flag(void **state)
{
	(void)state;
	uint8_t adu[MODBUS_MAX_ADU];
	size_t n = 0;
	struct modbus_request_spec spec = { .fc = 3, .start = 0, .count = 200 };
	assert_int_equal(modbus_encode_request(1, 1, &spec, adu, sizeof(adu), &n), 0);
	struct bms_request r;
	assert_int_equal(modbus_decode(adu, n, BMS_DIR_REQUEST, &r), BMS_MALFORMED);
	assert_true(r.anomalies & (1ull << MB_AN_BAD_QUANTITY));
}

static void modbus_writes(void **state)
{
	(void)state;
	uint8_t adu[MODBUS_MAX_ADU];
	size_t n = 0;
	struct bms_request r;

	struct modbus_request_spec coil = { .fc = 5, .start = 9, .coil_on = true };
	assert_int_equal(modbus_encode_request(2, 1, &coil, adu, sizeof(adu), &n), 0);
	static const uint8_t want5[] = { 0, 2, 0, 0, 0, 6, 1, 5, 0, 9, 0xFF, 0x00 };
	assert_memory_equal(adu, want5, sizeof(want5));
	coil.coil_on = false;
	assert_int_equal(modbus_encode_request(2, 1, &coil, adu, sizeof(adu), &n), 0);
	assert_int_equal(adu[10], 0x00);
	assert_int_equal(adu[11], 0x00);

	static const uint8_t reg[2] = { 0x01, 0x2c };
	struct modbus_request_spec one = { .fc = 6, .start = 40, .data = reg, .data_len = 2 };
	assert_int_equal(modbus_encode_request(3, 1, &one, adu, sizeof(adu), &n), 0);
	assert_int_equal(modbus_decode(adu, n, BMS_DIR_REQUEST, &r), BMS_OK);
	assert_int_equal(r.op, BMS_OP_WRITE);
	assert_int_equal(r.targets[0].start, 40);

	static const uint8_t regs[4] = { 0x41, 0xc4, 0x00, 0x00 };
	struct modbus_request_spec many = { .fc = 16, .start = 100, .count = 2, .data = regs, .data_len = 4 };
	assert_int_equal(modbus_encode_request(4, 1, &many, adu, sizeof(adu), &n), 0);
	static const uint8_t want16[] = { 0, 4, 0, 0, 0, 11, 1, 16, 0, 100, 0, 2, 4, 0x41, 0xc4, 0, 0 };
	assert_int_equal(n, sizeof(want16));
	assert_memory_equal(adu, want16, sizeof(want16));
	assert_int_equal(modbus_decode(adu, n, BMS_DIR_REQUEST, &r), BMS_OK);
	assert_int_equal(r.targets[0].count, 2);

	static const uint8_t bits[2] = { 0xff, 0x03 };
	struct modbus_request_spec coils = { .fc = 15, .start = 0, .count = 10, .data = bits, .data_len = 2 };
	assert_int_equal(modbus_encode_request(5, 1, &coils, adu, sizeof(adu), &n), 0);
	assert_int_equal(adu[12], 2); /* byte count: 10 coils in 2 bytes */
	assert_int_equal(modbus_decode(adu, n, BMS_DIR_REQUEST, &r), BMS_OK);

	struct modbus_request_spec rw = { .fc = 23, .start = 10, .count = 3, .write_start = 100, .write_count = 2,
					  .data = regs, .data_len = 4 };
	assert_int_equal(modbus_encode_request(6, 1, &rw, adu, sizeof(adu), &n), 0);
	assert_int_equal(n, 7 + 1 + 8 + 1 + 4);
	assert_int_equal(modbus_decode(adu, n, BMS_DIR_REQUEST, &r), BMS_OK);
	assert_int_equal(r.ntargets, 2);
}

static void modbus_refusals(void **state)
{
	(void)state;
	uint8_t adu[MODBUS_MAX_ADU];
	size_t n = 0;
	static const uint8_t regs[4] = { 0 };
	struct modbus_request_spec other = { .fc = 8 };
	assert_int_equal(modbus_encode_request(1, 1, &other, adu, sizeof(adu), &n), -EINVAL);
	struct modbus_request_spec short_data = { .fc = 16, .start = 0, .count = 3, .data = regs, .data_len = 4 };
	assert_int_equal(modbus_encode_request(1, 1, &short_data, adu, sizeof(adu), &n), -EINVAL);
	static uint8_t big[400];
	struct modbus_request_spec too_many = { .fc = 16, .start = 0, .count = 200, .data = big, .data_len = 400 };
	assert_int_equal(modbus_encode_request(1, 1, &too_many, adu, sizeof(adu), &n), -EINVAL);
	struct modbus_request_spec no_reg = { .fc = 6, .start = 0 };
	assert_int_equal(modbus_encode_request(1, 1, &no_reg, adu, sizeof(adu), &n), -EINVAL);
	struct modbus_request_spec fits = { .fc = 3, .start = 0, .count = 1 };
	assert_int_equal(modbus_encode_request(1, 1, &fits, adu, 11, &n), -ENOSPC);
	assert_int_equal(modbus_encode_request(1, 1, &fits, adu, 12, &n), 0);
}

/* ---- BACnet ---- */

static void bacnet_read_property(void **state)
{
	(void)state;
	uint8_t d[64];
	size_t n = 0;
	struct bacnet_property_ref ref = { .object_type = 2, .instance = 1, .property = 85,
					   .array_index = BMS_NO_INDEX };
	assert_int_equal(bacnet_encode_read_property(9, &ref, d, sizeof(d), &n), 0);
	/* BVLC 81 0A len; NPDU 01 04; APDU 00 05 09 0C; [0] 0C 00800001; [1] 19 55 */
	static const uint8_t want[] = { 0x81, 0x0a, 0x00, 0x11, 0x01, 0x04, 0x00, 0x05, 0x09,
					0x0c, 0x0c, 0x00, 0x80, 0x00, 0x01, 0x19, 0x55 };
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(d, want, sizeof(want));
	struct bms_request r;
	assert_int_equal(bacnet_decode(d, n, &r), BMS_OK);
	assert_int_equal(r.op, BMS_OP_READ);
	assert_int_equal(r.targets[0].object_type, 2);
	assert_int_equal(r.targets[0].instance, 1);
	assert_int_equal(r.targets[0].property, 85);

	ref.array_index = 3;
	assert_int_equal(bacnet_encode_read_property(9, &ref, d, sizeof(d), &n), 0);
	assert_int_equal(bacnet_decode(d, n, &r), BMS_OK);
	assert_int_equal(r.targets[0].array_index, 3);
}

static void bacnet_write_property_values(void **state)
{
	(void)state;
	uint8_t d[64];
	size_t n = 0;
	struct bms_request r;
	struct bacnet_property_ref ref = { .object_type = 2, .instance = 1, .property = 85,
					   .array_index = BMS_NO_INDEX };
	const struct bms_value values[] = {
		{ .type = BMS_VAL_REAL, .d = 21.5 },   { .type = BMS_VAL_NULL },
		{ .type = BMS_VAL_BOOL, .b = true },   { .type = BMS_VAL_UNSIGNED, .u = 70000 },
		{ .type = BMS_VAL_SIGNED, .i = -300 }, { .type = BMS_VAL_ENUM, .u = 300 },
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		assert_int_equal(bacnet_encode_write_property(4, &ref, &values[i], 8, d, sizeof(d), &n), 0);
		assert_int_equal(bacnet_decode(d, n, &r), BMS_OK);
		assert_int_equal(r.op, BMS_OP_WRITE);
		assert_int_equal(r.targets[0].priority, 8);
		assert_true(r.targets[0].has_value);
		const struct bms_value *got = &r.targets[0].value;
		assert_int_equal(got->type, values[i].type);
		switch (got->type) {
		case BMS_VAL_REAL: assert_true(got->d == 21.5); break;
		case BMS_VAL_BOOL: assert_true(got->b); break;
		case BMS_VAL_UNSIGNED: case BMS_VAL_ENUM: assert_int_equal(got->u, values[i].u); break;
		case BMS_VAL_SIGNED: assert_int_equal(got->i, -300); break;
		default: break;
		}
	}
	/* no priority: no [4] */
	assert_int_equal(bacnet_encode_write_property(4, &ref, &values[0], 0, d, sizeof(d), &n), 0);
	assert_int_equal(d[n - 1], 0x3f);
	assert_int_equal(bacnet_decode(d, n, &r), BMS_OK);
	assert_int_equal(r.targets[0].priority, 0);
}

static void bacnet_refusals_and_faithful_priority(void **state)
{
	(void)state;
	uint8_t d[64];
	size_t n = 0;
	struct bms_request r;
	struct bacnet_property_ref ref = { .object_type = 2, .instance = 1, .property = 85,
					   .array_index = BMS_NO_INDEX };
	const struct bms_value real = { .type = BMS_VAL_REAL, .d = 1.0 };
	const struct bms_value other = { .type = BMS_VAL_OTHER };
	assert_int_equal(bacnet_encode_write_property(1, &ref, &other, 0, d, sizeof(d), &n), -EINVAL);
	struct bacnet_property_ref bad = ref;
	bad.instance = BACNET_MAX_INSTANCE + 1;
	assert_int_equal(bacnet_encode_read_property(1, &bad, d, sizeof(d), &n), -EINVAL);
	bad = ref;
	bad.object_type = 1024;
	assert_int_equal(bacnet_encode_read_property(1, &bad, d, sizeof(d), &n), -EINVAL);
	assert_int_equal(bacnet_encode_read_property(1, &ref, d, 16, &n), -ENOSPC);
	assert_int_equal(bacnet_encode_read_property(1, &ref, d, 17, &n), 0);
	/* priority 17 is written as given; the decoder is the one that refuses it */
	assert_int_equal(bacnet_encode_write_property(1, &ref, &real, 17, d, sizeof(d), &n), 0);
	assert_int_equal(bacnet_decode(d, n, &r), BMS_MALFORMED);
	assert_true(r.anomalies & BACNET_AN(BACNET_AN_BAD_PRIORITY));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(modbus_read_holding),
		cmocka_unit_test(modbus_out_of_spec_quantity_is_encoded_for_the_decoder_to_flag),
		cmocka_unit_test(modbus_writes),
		cmocka_unit_test(modbus_refusals),
		cmocka_unit_test(bacnet_read_property),
		cmocka_unit_test(bacnet_write_property_values),
		cmocka_unit_test(bacnet_refusals_and_faithful_priority),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
