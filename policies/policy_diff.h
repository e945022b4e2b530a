/* policies/policy_diff.h: `bmsgate policy diff` (internal to policies/). */
#ifndef BMS_POLICY_DIFF_H
#define BMS_POLICY_DIFF_H

#include <stdio.h>

#include "policies/policy_int.h"

/* Prints what `b` allows that `a` did not and the reverse; returns the number of differences. */
int pol_diff(const struct bms_policy *a, const struct bms_policy *b, const char *name_a, const char *name_b,
	     FILE *out);

#endif
