/* parsers/cursor.c: bounds-checked big-endian reads over a borrowed byte slice. */
#include "parsers/cursor.h"

int bms_cursor_uint_be(struct bms_cursor *c, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 8 || bms_cursor_left(c) < n)
		return -1;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | c->buf[c->off + i];
	c->off += n;
	*out = v;
	return 0;
}

int bms_cursor_u8(struct bms_cursor *c, uint8_t *out)
{
	if (bms_cursor_left(c) < 1)
		return -1;
	*out = c->buf[c->off++];
	return 0;
}

int bms_cursor_u16be(struct bms_cursor *c, uint16_t *out)
{
	uint64_t v;

	if (bms_cursor_uint_be(c, 2, &v) != 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int bms_cursor_u24be(struct bms_cursor *c, uint32_t *out)
{
	uint64_t v;

	if (bms_cursor_uint_be(c, 3, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int bms_cursor_u32be(struct bms_cursor *c, uint32_t *out)
{
	uint64_t v;

	if (bms_cursor_uint_be(c, 4, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int bms_cursor_bytes(struct bms_cursor *c, size_t n, const uint8_t **out)
{
	if (bms_cursor_left(c) < n)
		return -1;
	*out = c->buf + c->off;
	c->off += n;
	return 0;
}

int bms_cursor_skip(struct bms_cursor *c, size_t n)
{
	if (bms_cursor_left(c) < n)
		return -1;
	c->off += n;
	return 0;
}

int bms_cursor_peek_u8(const struct bms_cursor *c, uint8_t *out)
{
	if (bms_cursor_left(c) < 1)
		return -1;
	*out = c->buf[c->off];
	return 0;
}

int bms_cursor_sub(struct bms_cursor *c, size_t n, struct bms_cursor *sub)
{
	if (bms_cursor_left(c) < n)
		return -1;
	bms_cursor_init(sub, c->buf + c->off, n);
	c->off += n;
	return 0;
}
