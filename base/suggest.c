/* base/suggest.c: did-you-mean (see suggest.h). */
#include <string.h>

#include "base/suggest.h"

unsigned bms_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 8;
	unsigned row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned ca = (unsigned char)a[i - 1], cb = (unsigned char)b[j - 1];
			if (ca >= 'A' && ca <= 'Z')
				ca += 32;
			if (cb >= 'A' && cb <= 'Z')
				cb += 32;
			unsigned best = diag + (ca != cb);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] > 8 ? 8 : row[lb];
}

const char *bms_suggest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	unsigned bd = 8;
	size_t lw = strlen(word);
	for (size_t i = 0; i < n; i++) {
		if (cands[i] == NULL || cands[i][0] == '\0')
			continue;
		unsigned dd = bms_edit_distance(word, cands[i]);
		if (dd < bd) {
			bd = dd;
			best = cands[i];
		}
	}
	unsigned allowed = lw <= 3 ? 1 : lw <= 6 ? 2 : 3;
	return bd <= allowed ? best : NULL;
}
