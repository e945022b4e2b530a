/* cmd/gateway_cmd.h: the start-up that guard and tunnel share: `-c FILE [-n]`,
 * loading the configuration, the `-n` check, then running. */
#ifndef BMS_CMD_GATEWAY_CMD_H
#define BMS_CMD_GATEWAY_CMD_H

#include <stdio.h>

#include "proxy/config.h"

struct cmd_gateway {
	const char *name;       /* "guard" or "tunnel": usage and the log identity */
	enum proxy_kind kind;
	const char *check_help; /* what `-n` checks, for the usage text */
	const char *signals;    /* what signals do, for the usage text */
	int (*check)(const struct proxy_config *cfg, FILE *out);
	int (*run)(const struct proxy_config *cfg);
};

/* Parses argv, loads the configuration, then checks (`-n`) or runs. Returns the exit status. */
int cmd_gateway_main(const struct cmd_gateway *cmd, int argc, char **argv);

#endif
