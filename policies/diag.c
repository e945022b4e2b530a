/* policies/diag.c: the list of errors and warnings one compile produces. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "policies/policy.h"

void bms_diag_init(struct bms_diag *d)
{
	memset(d, 0, sizeof(*d));
}

void bms_diag_free(struct bms_diag *d)
{
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static const char *level_name(uint8_t level)
{
	switch (level) {
	case BMS_DIAG_WARNING: return "warning";
	case BMS_DIAG_NOTE: return "note";
	default: return "error";
	}
}

void bms_diag_print(const struct bms_diag *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct bms_diag_entry *e = &d->v[i];
		if (e->line == 0)
			fprintf(out, "%s: %s: %s\n", e->file, level_name(e->level), e->msg);
		else
			fprintf(out, "%s:%u:%u: %s: %s\n", e->file, e->line, e->col, level_name(e->level), e->msg);
	}
}
