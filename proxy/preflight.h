/* proxy/preflight.h: what `guard -n` and the guard's start-up check beyond the grammar,
 * the policy and the TLS files loading: that the guard, once it has dropped privileges, can
 * still do what it will be asked to (re-read its files, rotate its audit log), that its
 * private keys are private, and that every device it forwards to is one the policy knows. */
#ifndef BMS_PROXY_PREFLIGHT_H
#define BMS_PROXY_PREFLIGHT_H

#include <stdint.h>
#include <stdio.h>

#include "engine/route.h"
#include "policies/policy.h"
#include "proxy/config.h"

/* Every problem as `file:line: message` on `out`. `policy` (borrowed, may be NULL when it did
 * not compile) is the one the guard will run with. 0 when there is none, -1 otherwise. */
BMS_WUR int proxy_preflight(const struct proxy_config *cfg, const struct bms_policy *policy, FILE *out);

/* The guard's devices against the policy's: for each `device` block, every unit it routes
 * must find a policy device at its address, port and unit (as engine_inspect looks them up).
 * One `file:line: message` per device that does not; returns how many. */
unsigned proxy_preflight_devices(const struct proxy_config *cfg, const struct bms_policy *policy, FILE *out);

/* The earliest nextUpdate of the CRLs in a PEM file, in seconds since the epoch (0: none
 * says one). -1 when the file holds no readable CRL. */
BMS_WUR int proxy_crl_next_update(const char *path, int64_t *out);

#endif
