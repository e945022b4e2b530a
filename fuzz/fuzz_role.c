/* fuzz/fuzz_role.c: the role extension's parser (parsers/role.c) over arbitrary bytes.
 * Invariants: it accepts or refuses with a reason; an accepted role is 1..BMS_ROLE_LEN bytes,
 * NUL-terminated, with no control byte, and is exactly the string's bytes of a DER UTF8String
 * that ends the input; a refused one leaves an empty role. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/role.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char role[BMS_ROLE_MAX + 8];
	memset(role, 'x', sizeof(role));
	const char *why = NULL;
	int rc = bms_role_parse(data, size, role, &why);
	if (rc != 0) {
		if (rc != -22 || why == NULL || why[0] == '\0' || role[0] != '\0')
			abort();
		return 0;
	}
	size_t n = strnlen(role, sizeof(role));
	if (n == 0 || n > BMS_ROLE_LEN || size < 2 || data[0] != 0x0c)
		abort();
	if (memcmp(role, data + size - n, n) != 0)
		abort(); /* the role is the string's bytes, and they end the value */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)role[i] < 0x20 || (unsigned char)role[i] == 0x7f)
			abort();
	return 0;
}
