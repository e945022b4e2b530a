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

#define BMS_WUR __attribute__((warn_unused_result))

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

BMS_WUR int bms_cursor_u8(struct bms_cursor *c, uint8_t *out);
BMS_WUR int bms_cursor_u16be(struct bms_cursor *c, uint16_t *out);
BMS_WUR int bms_cursor_u24be(struct bms_cursor *c, uint32_t *out);
BMS_WUR int bms_cursor_u32be(struct bms_cursor *c, uint32_t *out);
/* Unsigned big-endian integer of 1..8 bytes (BACnet tags carry 1..4, 8 for doubles). */
BMS_WUR int bms_cursor_uint_be(struct bms_cursor *c, size_t n, uint64_t *out);
/* Borrow n bytes: *out points into the buffer; nothing is copied. */
BMS_WUR int bms_cursor_bytes(struct bms_cursor *c, size_t n, const uint8_t **out);
BMS_WUR int bms_cursor_skip(struct bms_cursor *c, size_t n);
/* Look at the next byte without consuming it. */
BMS_WUR int bms_cursor_peek_u8(const struct bms_cursor *c, uint8_t *out);
/* A sub-cursor over the next n bytes; the parent advances past them. */
BMS_WUR int bms_cursor_sub(struct bms_cursor *c, size_t n, struct bms_cursor *sub);

#endif
