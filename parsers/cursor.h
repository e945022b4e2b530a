/* parsers/cursor.h: the one bounds-checked reader every decoder uses.
 *
 * Every read checks the remaining length first; a failed read returns -1 and
 * leaves the cursor where it was, so a caller can report "truncated" at the
 * exact offset. No read ever touches a byte past `len`.
 */
#ifndef BMS_CURSOR_H
#define BMS_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/attr.h"

struct bms_cursor {
	const uint8_t *buf; /* borrowed */
	size_t len;
	size_t off;
};

static inline void bms_cursor_init(struct bms_cursor *c, const uint8_t *buf, size_t len)
{
	c->buf = buf;
	c->len = len;
	c->off = 0;
}

static inline size_t bms_cursor_left(const struct bms_cursor *c)
{
	return c->len - c->off;
}

/* The reads are inline: every decoder calls them per field, and a call per
 * byte read was a measurable share of decode time. */
BMS_WUR static inline int bms_cursor_uint_be(struct bms_cursor *c, size_t n, uint64_t *out)
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

BMS_WUR static inline int bms_cursor_u8(struct bms_cursor *c, uint8_t *out)
{
	if (bms_cursor_left(c) < 1)
		return -1;
	*out = c->buf[c->off++];
	return 0;
}

BMS_WUR static inline int bms_cursor_u16be(struct bms_cursor *c, uint16_t *out)
{
	uint64_t v;

	if (bms_cursor_uint_be(c, 2, &v) != 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

BMS_WUR static inline int bms_cursor_u24be(struct bms_cursor *c, uint32_t *out)
{
	uint64_t v;

	if (bms_cursor_uint_be(c, 3, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

BMS_WUR static inline int bms_cursor_u32be(struct bms_cursor *c, uint32_t *out)
{
	uint64_t v;

	if (bms_cursor_uint_be(c, 4, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

BMS_WUR static inline int bms_cursor_bytes(struct bms_cursor *c, size_t n, const uint8_t **out)
{
	if (bms_cursor_left(c) < n)
		return -1;
	*out = c->buf + c->off;
	c->off += n;
	return 0;
}

BMS_WUR static inline int bms_cursor_skip(struct bms_cursor *c, size_t n)
{
	if (bms_cursor_left(c) < n)
		return -1;
	c->off += n;
	return 0;
}

BMS_WUR static inline int bms_cursor_peek_u8(const struct bms_cursor *c, uint8_t *out)
{
	if (bms_cursor_left(c) < 1)
		return -1;
	*out = c->buf[c->off];
	return 0;
}

BMS_WUR static inline int bms_cursor_sub(struct bms_cursor *c, size_t n, struct bms_cursor *sub)
{
	if (bms_cursor_left(c) < n)
		return -1;
	bms_cursor_init(sub, c->buf + c->off, n);
	c->off += n;
	return 0;
}

#endif
