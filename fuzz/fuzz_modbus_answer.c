/* fuzz/fuzz_modbus_answer.c: modbus_check_answer over an arbitrary request and answer.
 *
 * Input: one byte N, then N bytes of request ADU, then the answer ADU (the rest). Both are
 * handed over as exact-size heap copies, so that ASan sees a read past either. Invariants
 * that must hold for any input abort the run: the verdict agrees with the anomaly bits,
 * a bad answer names its field, every bit has a name, and the check is a pure function
 * (the same inputs give the same answer twice). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/modbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (c == NULL)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct modbus_answer_fault f1;
	uint64_t an1 = 0, an2 = 0;
	size_t qlen;

	if (size < 1)
		return 0;
	qlen = data[0];
	if (qlen > size - 1)
		qlen = size - 1;
	uint8_t *q = copy(data + 1, qlen), *a = copy(data + 1 + qlen, size - 1 - qlen);
	size_t alen = size - 1 - qlen;
	enum bms_parse_result r1 = modbus_check_answer(q, qlen, a, alen, &an1, &f1);
	enum bms_parse_result r2 = modbus_check_answer(q, qlen, a, alen, &an2, NULL);

	if (r1 != BMS_OK && r1 != BMS_MALFORMED)
		abort();
	if ((r1 == BMS_MALFORMED) != ((an1 & MODBUS_ANSWER_BAD_MASK) != 0))
		abort();
	if ((r1 == BMS_MALFORMED) != (f1.field != NULL))
		abort();
	for (unsigned b = 0; b < 64; b++)
		if ((an1 & (1ull << b)) && modbus_anomaly_name(b) == NULL)
			abort();
	if (r1 != r2 || an1 != an2)
		abort();
	/* A consistent answer is a whole frame the framer cuts at exactly its length. */
	if (r1 == BMS_OK) {
		size_t flen = 0;
		uint64_t fan = 0;
		if (modbus_frame(a, alen, &flen, &fan) != BMS_OK || flen != alen)
			abort();
	}
	free(q);
	free(a);
	return 0;
}
