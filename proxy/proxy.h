/* proxy/proxy.h: entry points of the guard and the tunnel, for their commands. */
#ifndef BMS_PROXY_H
#define BMS_PROXY_H

#include <stdio.h>

#include "proxy/config.h"

/* Runs the guard until SIGTERM/SIGINT has drained it. Returns the exit status. */
int proxy_guard_run(const struct proxy_config *cfg);
/* What `-n` checks beyond the grammar: the policy compiles and the TLS files load. */
int proxy_guard_check(const struct proxy_config *cfg, FILE *out);

int proxy_tunnel_run(const struct proxy_config *cfg);
int proxy_tunnel_check(const struct proxy_config *cfg, FILE *out);

#endif
