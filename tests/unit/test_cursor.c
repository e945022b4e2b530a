/* tests/unit/test_cursor.c: the bounds-checked cursor never reads past its slice
 * and leaves itself unchanged when a read fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parsers/cursor.h"

static void reads_big_endian(void **state)
{
	(void)state;
	static const uint8_t b[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 };
	struct bms_cursor c;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;

	bms_cursor_init(&c, b, sizeof(b));
	assert_int_equal(bms_cursor_u8(&c, &u8), 0);
	assert_int_equal(u8, 0x01);
	assert_int_equal(bms_cursor_u16be(&c, &u16), 0);
	assert_int_equal(u16, 0x0203);
	assert_int_equal(bms_cursor_u32be(&c, &u32), 0);
	assert_int_equal(u32, 0x04050607);
	assert_int_equal(bms_cursor_left(&c), 0);
}

static void failed_read_leaves_cursor_unchanged(void **state)
{
	(void)state;
	static const uint8_t b[] = { 0xAA, 0xBB, 0xCC };
	struct bms_cursor c;
	uint32_t u32 = 0x12345678;
	const uint8_t *p = NULL;

	bms_cursor_init(&c, b, sizeof(b));
	assert_int_equal(bms_cursor_skip(&c, 1), 0);
	assert_int_equal(bms_cursor_u32be(&c, &u32), -1);
	assert_int_equal(u32, 0x12345678);
	assert_int_equal(c.off, 1);
	assert_int_equal(bms_cursor_bytes(&c, 3, &p), -1);
	assert_null(p);
	assert_int_equal(c.off, 1);
	assert_int_equal(bms_cursor_bytes(&c, 2, &p), 0);
	assert_ptr_equal(p, b + 1);
}

static void sub_cursor_is_bounded(void **state)
{
	(void)state;
	static const uint8_t b[] = { 1, 2, 3, 4 };
	struct bms_cursor c, sub;
	uint8_t u8;
	uint16_t u16;

	bms_cursor_init(&c, b, sizeof(b));
	assert_int_equal(bms_cursor_sub(&c, 5, &sub), -1);
	assert_int_equal(bms_cursor_sub(&c, 1, &sub), 0);
	assert_int_equal(bms_cursor_u8(&sub, &u8), 0);
	assert_int_equal(bms_cursor_u8(&sub, &u8), -1);
	assert_int_equal(bms_cursor_u16be(&c, &u16), 0);
	assert_int_equal(u16, 0x0203);
}

static void uint_be_rejects_bad_widths(void **state)
{
	(void)state;
	static const uint8_t b[9] = { 0 };
	struct bms_cursor c;
	uint64_t v;

	bms_cursor_init(&c, b, sizeof(b));
	assert_int_equal(bms_cursor_uint_be(&c, 0, &v), -1);
	assert_int_equal(bms_cursor_uint_be(&c, 9, &v), -1);
	assert_int_equal(bms_cursor_uint_be(&c, 8, &v), 0);
	assert_int_equal(bms_cursor_uint_be(&c, 2, &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_big_endian),
		cmocka_unit_test(failed_read_leaves_cursor_unchanged),
		cmocka_unit_test(sub_cursor_is_bounded),
		cmocka_unit_test(uint_be_rejects_bad_widths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
