/* parsers/role.c: the Modbus/TCP Security role, from the bytes of its certificate extension
 * (pure: no OpenSSL, no allocation; pki/ finds the extension in a certificate and hands its
 * value here, so that `bmsgate pki role` says exactly what a guard makes of it).
 */
#include <errno.h>
#include <string.h>

#include "parsers/cursor.h"
#include "parsers/role.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The role extension's value, by byte (MB-TCP-Security v21 R-21: Role ::= UTF8String, DER):
 *   offset 0   1 byte   tag: 0x0c (UTF8String, universal, primitive); anything else is not a role
 *   offset 1   1..5     length: short form (< 0x80) or minimal long form (0x81..0x84 then the
 *                       length big-endian); 0x80 (indefinite) is BER, not DER
 *   then       length   the role: 1..BMS_ROLE_LEN bytes of well-formed UTF-8 (RFC 3629: no
 *                       overlong form, no surrogate, at most U+10FFFF) without a control
 *                       character (C0, DEL, C1; NUL included), and nothing after it
 * Every way to fail is "no role": the policy then grants only what needs no role. */
static int utf8_char(struct bms_cursor *c, uint32_t *cp)
{
	uint8_t b0, b;
	if (bms_cursor_u8(c, &b0) < 0)
		return -1;
	if (b0 < 0x80) {
		*cp = b0;
		return 0;
	}
	size_t more;
	uint32_t v, min;
	if (b0 >= 0xc2 && b0 <= 0xdf) {
		more = 1, v = b0 & 0x1f, min = 0x80;
	} else if (b0 >= 0xe0 && b0 <= 0xef) {
		more = 2, v = b0 & 0x0f, min = 0x800;
	} else if (b0 >= 0xf0 && b0 <= 0xf4) {
		more = 3, v = b0 & 0x07, min = 0x10000;
	} else {
		return -1; /* a continuation byte first, 0xc0/0xc1 (always overlong) or 0xf5.. */
	}
	for (size_t i = 0; i < more; i++) {
		if (bms_cursor_u8(c, &b) < 0 || (b & 0xc0) != 0x80)
			return -1;
		v = (v << 6) | (b & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*cp = v;
	return 0;
}

int bms_role_parse(const uint8_t *der, size_t len, char role[static BMS_ROLE_MAX], const char **why)
{
	struct bms_cursor c;
	uint8_t tag, l0;
	uint64_t n;
	role[0] = '\0';
	bms_cursor_init(&c, der, len);
	if (bms_cursor_u8(&c, &tag) < 0 || bms_cursor_u8(&c, &l0) < 0) {
		*why = "the extension value is empty or cut short";
		return -EINVAL;
	}
	if (tag != 0x0c) {
		*why = tag == 0x2c ? "a constructed UTF8String (BER, not DER)"
		       : tag == 0x13 ? "a PrintableString, not a UTF8String"
		       : tag == 0x16 ? "an IA5String, not a UTF8String"
		       : tag == 0x1e ? "a BMPString, not a UTF8String"
		       : tag == 0x04 ? "an OCTET STRING, not a UTF8String"
				      : "not a UTF8String";
		return -EINVAL;
	}
	if (l0 < 0x80) {
		n = l0;
	} else if (l0 == 0x80 || l0 > 0x84 || bms_cursor_uint_be(&c, l0 & 0x7f, &n) < 0 || n < 0x80 ||
		   n >> (8 * ((l0 & 0x7f) - 1)) == 0) {
		/* indefinite, too many length bytes, cut short, or not the shortest form */
		*why = "the UTF8String's length is not in DER form";
		return -EINVAL;
	}
	if (n != bms_cursor_left(&c)) {
		*why = n > bms_cursor_left(&c) ? "the UTF8String is cut short" : "bytes follow the UTF8String";
		return -EINVAL;
	}
	if (n == 0) {
		*why = "the role is empty";
		return -EINVAL;
	}
	if (n > BMS_ROLE_LEN) {
		*why = "the role is longer than " STR(BMS_ROLE_LEN) " bytes";
		return -EINVAL;
	}
	const uint8_t *text = der + c.off;
	while (bms_cursor_left(&c) > 0) {
		uint32_t cp;
		if (utf8_char(&c, &cp) < 0) {
			*why = "the role is not valid UTF-8";
			return -EINVAL;
		}
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			*why = cp == 0 ? "the role holds a NUL byte" : "the role holds a control character";
			return -EINVAL;
		}
	}
	memcpy(role, text, (size_t)n);
	role[n] = '\0';
	return 0;
}

