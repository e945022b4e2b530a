/* parsers/bacnet_tag.c: BACnet tag decoding (clause 20.2.1); layout in bacnet_tag.h.
 *
 * Lengths are never trusted: each one is checked against what is left in the cursor before
 * any content is borrowed, and a failed read leaves the cursor where it was.
 */
#include <string.h>

#include "parsers/bacnet.h"
#include "parsers/bacnet_tag.h"

int bacnet_tag_read_general(struct bms_cursor *c, struct bacnet_tag *t)
{
	struct bms_cursor k = *c; /* work on a copy: the caller's cursor moves only on success */
	uint8_t octet, ext;
	uint32_t len;

	if (bms_cursor_u8(&k, &octet) != 0)
		return BACNET_TAG_ERR(BACNET_AN_TAG_TRUNCATED);
	memset(t, 0, sizeof(*t));
	t->number = octet >> 4;
	t->context = (octet >> 3) & 1;
	t->lvt = octet & 7;
	/* 20.2.1.2: "tag numbers ranging from 15 to 254 ... the Tag Number field shall be B'1111'
	 * and the tag number shall be encoded in the octet immediately following"; 255 is reserved. */
	if (t->number == 0xF) {
		if (bms_cursor_u8(&k, &ext) != 0)
			return BACNET_TAG_ERR(BACNET_AN_TAG_TRUNCATED);
		if (ext == 0xFF)
			return BACNET_TAG_ERR(BACNET_AN_TAG_RESERVED);
		t->number = ext;
	}
	if (t->context && t->lvt == 6) {
		t->kind = BACNET_TAG_OPENING;
		*c = k;
		return 0;
	}
	if (t->context && t->lvt == 7) {
		t->kind = BACNET_TAG_CLOSING;
		*c = k;
		return 0;
	}
	t->kind = BACNET_TAG_PRIMITIVE;
	if (!t->context && t->number == BACNET_APP_BOOLEAN) {
		/* 20.2.3: an application Boolean carries its value in the LVT and has no content. */
		*c = k;
		return 0;
	}
	len = t->lvt;
	if (t->lvt == 5) {
		/* 20.2.1.3.1: 0..253 in one octet; 254 then 16 bits; 255 then 32 bits. */
		if (bms_cursor_u8(&k, &ext) != 0)
			return BACNET_TAG_ERR(BACNET_AN_TAG_TRUNCATED);
		if (ext == 254) {
			uint16_t l16;
			if (bms_cursor_u16be(&k, &l16) != 0)
				return BACNET_TAG_ERR(BACNET_AN_TAG_TRUNCATED);
			len = l16;
		} else if (ext == 255) {
			if (bms_cursor_u32be(&k, &len) != 0)
				return BACNET_TAG_ERR(BACNET_AN_TAG_TRUNCATED);
		} else {
			len = ext;
		}
	}
	if (bms_cursor_bytes(&k, len, &t->data) != 0)
		return BACNET_TAG_ERR(BACNET_AN_TAG_LENGTH_OVERFLOW);
	t->len = len;
	*c = k;
	return 0;
}

/* Is the content length right for an application tag's type? (clause 20.2.2..20.2.14) */
static int app_length_ok(const struct bacnet_tag *t)
{
	switch (t->number) {
	case BACNET_APP_NULL: return t->len == 0;
	case BACNET_APP_BOOLEAN: return t->lvt <= 1;
	case BACNET_APP_UNSIGNED:
	case BACNET_APP_SIGNED:
	case BACNET_APP_ENUMERATED: return t->len >= 1 && t->len <= 8;
	case BACNET_APP_REAL: return t->len == 4;
	case BACNET_APP_DOUBLE: return t->len == 8;
	case BACNET_APP_OCTET_STRING: return 1;
	case BACNET_APP_CHARACTER_STRING: return t->len >= 1; /* the character-set octet */
	case BACNET_APP_BIT_STRING:
		/* 20.2.10: the first octet counts unused bits (0..7) of the last octet. */
		if (t->len == 0 || t->data[0] > 7)
			return 0;
		return t->len > 1 || t->data[0] == 0;
	case BACNET_APP_DATE:
	case BACNET_APP_TIME:
	case BACNET_APP_OBJECT_ID: return t->len == 4;
	}
	return 0;
}

int bacnet_tag_validate(const uint8_t *p, size_t n)
{
	struct bms_cursor c;
	uint8_t open[BACNET_MAX_DEPTH];
	unsigned depth = 0;

	bms_cursor_init(&c, p, n);
	while (bms_cursor_left(&c) > 0) {
		struct bacnet_tag t;
		int rc = bacnet_tag_read(&c, &t);

		if (rc != 0)
			return rc;
		switch (t.kind) {
		case BACNET_TAG_OPENING:
			if (depth == BACNET_MAX_DEPTH)
				return BACNET_TAG_ERR(BACNET_AN_TAG_NESTING_TOO_DEEP);
			open[depth++] = t.number;
			break;
		case BACNET_TAG_CLOSING:
			/* 20.2.1.3.2: a closing tag carries the number of the opening tag it ends. */
			if (depth == 0 || open[depth - 1] != t.number)
				return BACNET_TAG_ERR(BACNET_AN_TAG_UNBALANCED);
			depth--;
			break;
		default:
			if (!t.context && t.number > BACNET_APP_OBJECT_ID)
				return BACNET_TAG_ERR(BACNET_AN_TAG_RESERVED);
			if (!t.context && !app_length_ok(&t))
				return BACNET_TAG_ERR(BACNET_AN_TAG_BAD_LENGTH);
			break;
		}
	}
	if (depth != 0)
		return BACNET_TAG_ERR(BACNET_AN_TAG_UNBALANCED);
	return 0;
}

int bacnet_tag_signed(const struct bacnet_tag *t, int64_t *out)
{
	uint64_t u;

	if (bacnet_tag_unsigned(t, &u) != 0)
		return -1;
	/* 20.2.5: two's complement in the fewest octets; sign-extend from the top octet. */
	if (t->len < 8 && (u >> (t->len * 8 - 1)) & 1)
		u |= ~UINT64_C(0) << (t->len * 8);
	memcpy(out, &u, sizeof(*out));
	return 0;
}

void bacnet_tag_value(const struct bacnet_tag *t, struct bms_value *out)
{
	uint64_t u;

	memset(out, 0, sizeof(*out));
	out->type = BMS_VAL_OTHER;
	if (t->context || t->kind != BACNET_TAG_PRIMITIVE)
		return;
	switch (t->number) {
	case BACNET_APP_NULL:
		out->type = BMS_VAL_NULL;
		break;
	case BACNET_APP_BOOLEAN:
		out->type = BMS_VAL_BOOL;
		out->b = t->lvt != 0;
		break;
	case BACNET_APP_UNSIGNED:
		if (bacnet_tag_unsigned(t, &out->u) == 0)
			out->type = BMS_VAL_UNSIGNED;
		break;
	case BACNET_APP_ENUMERATED:
		if (bacnet_tag_unsigned(t, &out->u) == 0)
			out->type = BMS_VAL_ENUM;
		break;
	case BACNET_APP_SIGNED:
		if (bacnet_tag_signed(t, &out->i) == 0)
			out->type = BMS_VAL_SIGNED;
		break;
	case BACNET_APP_REAL:
		if (t->len == 4 && bacnet_tag_unsigned(t, &u) == 0) {
			uint32_t u32 = (uint32_t)u;
			float f;
			memcpy(&f, &u32, sizeof(f));
			out->type = BMS_VAL_REAL;
			out->d = f;
		}
		break;
	case BACNET_APP_DOUBLE:
		if (t->len == 8 && bacnet_tag_unsigned(t, &u) == 0) {
			memcpy(&out->d, &u, sizeof(out->d));
			out->type = BMS_VAL_REAL;
		}
		break;
	default:
		break;
	}
}
