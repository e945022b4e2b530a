/* load/policy_files.h: policy files from the file system, compiled (load/policy_files.c).
 * The one place where policy text, includes and zoneinfo are read for the pure compiler of
 * policies/; the guard (on start and SIGHUP), `policy`, `replay` and the tests load through it. */
#ifndef BMS_LOAD_POLICY_FILES_H
#define BMS_LOAD_POLICY_FILES_H

#include <stddef.h>

#include "policies/policy.h"

/* The file-system source: bms_policy_compile over files.
 * A file that anyone but its owner may write, or that another user owns than
 * the one running, is refused (an error in diags) unless BMS_POLICY_TRUST_ANY_OWNER
 * is passed to bms_policy_load_flags. Zones come from $TZDIR or /usr/share/zoneinfo. */
BMS_WUR int bms_policy_load(const char *const *files, size_t nfiles, struct bms_policy **out,
			    struct bms_diag *diags);
#define BMS_POLICY_TRUST_ANY_OWNER 0x1u  /* tests and fuzzing: skip the file ownership check */
BMS_WUR int bms_policy_load_flags(const char *const *files, size_t nfiles, unsigned flags,
				  struct bms_policy **out, struct bms_diag *diags);
/* Compiles policy text held in memory, named `name` in diagnostics; `include` is refused;
 * zones still come from the zoneinfo directory. */
BMS_WUR int bms_policy_load_string(const char *name, const char *text, size_t len,
				   struct bms_policy **out, struct bms_diag *diags);

#endif
