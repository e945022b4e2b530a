/* parsers/bacnet_tag.h: the bounds-checked BACnet tag decoder (clause 20.2.1).
 *
 * Tag header layout (one to eight octets):
 *
 *  offset size field
 *  0      1    tag octet: bits 7..4 tag number (0xF = extended), bit 3 class
 *              (0 application, 1 context), bits 2..0 length/value/type (LVT)
 *  +1     0/1  extended tag number 15..254 (tag number field 0xF; 255 reserved)
 *  +1     0/1  extended length 0..253, or 254 / 255 announcing ...
 *  +1     0/2  ... a 16-bit length, or
 *  +1     0/4  ... a 32-bit length (all big-endian)
 *  then the content, `len` octets.
 *
 * LVT 0..4 is the length; 5 announces an extended length; on a context tag 6 is an
 * opening tag and 7 a closing tag (no content); on an application Boolean the LVT is the
 * value itself and there is no content.
 */
#ifndef BMS_BACNET_TAG_H
#define BMS_BACNET_TAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parsers/bacnet.h"
#include "parsers/cursor.h"
#include "parsers/request.h"

enum bacnet_tag_kind {
	BACNET_TAG_PRIMITIVE = 0,
	BACNET_TAG_OPENING,
	BACNET_TAG_CLOSING,
};

/* Application tag numbers (clause 20.2.1.4). */
enum bacnet_app_tag {
	BACNET_APP_NULL = 0,
	BACNET_APP_BOOLEAN = 1,
	BACNET_APP_UNSIGNED = 2,
	BACNET_APP_SIGNED = 3,
	BACNET_APP_REAL = 4,
	BACNET_APP_DOUBLE = 5,
	BACNET_APP_OCTET_STRING = 6,
	BACNET_APP_CHARACTER_STRING = 7,
	BACNET_APP_BIT_STRING = 8,
	BACNET_APP_ENUMERATED = 9,
	BACNET_APP_DATE = 10,
	BACNET_APP_TIME = 11,
	BACNET_APP_OBJECT_ID = 12,
};

struct bacnet_tag {
	uint8_t number;        /* tag number 0..254 */
	uint8_t context;       /* 1 = context-specific, 0 = application */
	uint8_t kind;          /* enum bacnet_tag_kind */
	uint8_t lvt;           /* raw LVT; the value of an application Boolean */
	uint32_t len;          /* content length in octets */
	const uint8_t *data;   /* borrowed: the content */
};

#define BACNET_TAG_ERR(bit) (-1 - (int)(bit))
#define BACNET_TAG_ERR_BIT(rc) ((unsigned)(-(rc) - 1))

/* bacnet_tag_read for every header form. */
BMS_WUR int bacnet_tag_read_general(struct bms_cursor *c, struct bacnet_tag *t);

/* Read one tag and borrow its content. Returns 0, or -(1 + anomaly bit) with the cursor
 * unchanged: BACNET_AN_TAG_TRUNCATED, _TAG_LENGTH_OVERFLOW, _TAG_RESERVED.
 * Inline for the one-octet headers (tag number below 15, no extended length), which are
 * nearly every tag on the wire and were a tenth of `decode`'s BACnet time as calls; the
 * others go to bacnet_tag_read_general. Both give the same result (tests/unit/test_bacnet.c). */
BMS_WUR static inline int bacnet_tag_read(struct bms_cursor *c, struct bacnet_tag *t)
{
	struct bms_cursor k = *c; /* the caller's cursor moves only on success */
	uint8_t octet;

	if (bms_cursor_u8(&k, &octet) != 0 || (octet >> 4) == 0xF || (octet & 7) == 5)
		return bacnet_tag_read_general(c, t);
	t->number = octet >> 4;
	t->context = (octet >> 3) & 1;
	t->lvt = octet & 7;
	t->len = 0;
	t->data = NULL;
	if (t->context && t->lvt >= 6) {
		t->kind = t->lvt == 6 ? BACNET_TAG_OPENING : BACNET_TAG_CLOSING;
	} else {
		t->kind = BACNET_TAG_PRIMITIVE;
		/* An application Boolean holds its value in the LVT and has no content. */
		if (t->context || t->number != BACNET_APP_BOOLEAN) {
			if (bms_cursor_bytes(&k, t->lvt, &t->data) != 0)
				return BACNET_TAG_ERR(BACNET_AN_TAG_LENGTH_OVERFLOW);
			t->len = t->lvt;
		}
	}
	*c = k;
	return 0;
}

/* Check a whole tag sequence: every tag readable, application tags of the right size for
 * their type, opening and closing tags balanced and nested at most BACNET_MAX_DEPTH deep.
 * Returns 0 or -(1 + anomaly bit). */
BMS_WUR int bacnet_tag_validate(const uint8_t *p, size_t n);

/* Unsigned / signed content of a primitive tag of 1..8 octets. Return 0 or -1.
 * Inline: every object identifier, property and unsigned parameter is read through it. */
BMS_WUR static inline int bacnet_tag_unsigned(const struct bacnet_tag *t, uint64_t *out)
{
	struct bms_cursor c;

	if (t->kind != BACNET_TAG_PRIMITIVE || t->len < 1 || t->len > 8)
		return -1;
	bms_cursor_init(&c, t->data, t->len);
	return bms_cursor_uint_be(&c, t->len, out);
}
BMS_WUR int bacnet_tag_signed(const struct bacnet_tag *t, int64_t *out);

/* The value of one application-tagged primitive as the request model holds it:
 * Null, Boolean, Unsigned, Signed, Real, Double, Enumerated; anything else BMS_VAL_OTHER. */
void bacnet_tag_value(const struct bacnet_tag *t, struct bms_value *out);

#endif
