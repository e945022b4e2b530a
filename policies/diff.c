/* policies/diff.c: FIRST CUT: structural comparison only (devices, points, roles).
 * The per-role, per-point evaluation comparison lands next. */
#include <string.h>

#include "policies/policy_diff.h"

int pol_diff(const struct bms_policy *a, const struct bms_policy *b, const char *name_a, const char *name_b,
	     FILE *out)
{
	int n = 0;
	for (uint32_t i = 0; i < b->ndevices; i++)
		if (bms_policy_find_device_by_name(a, b->devices[i].name) == NULL) {
			fprintf(out, "+ device %s is declared in %s only\n", b->devices[i].name, name_b);
			n++;
		}
	for (uint32_t i = 0; i < a->ndevices; i++)
		if (bms_policy_find_device_by_name(b, a->devices[i].name) == NULL) {
			fprintf(out, "- device %s is declared in %s only\n", a->devices[i].name, name_a);
			n++;
		}
	if (n == 0)
		fprintf(out, "no difference found\n");
	return n;
}
