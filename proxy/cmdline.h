/* proxy/cmdline.h: the start-up that guard and tunnel share: `-c FILE [-n]`,
 * loading the configuration, the `-n` check, and dropping privileges. */
#ifndef BMS_PROXY_CMDLINE_H
#define BMS_PROXY_CMDLINE_H

#include <stdio.h>
#include <sys/types.h>

#include "proxy/config.h"

struct proxy_cmd {
	const char *name;       /* "guard" or "tunnel": usage and the log identity */
	enum proxy_kind kind;
	const char *check_help; /* what `-n` checks, for the usage text */
	const char *signals;    /* what signals do, for the usage text */
	int (*check)(const struct proxy_config *cfg, FILE *out);
	int (*run)(const struct proxy_config *cfg);
};

/* Parses argv, loads the configuration, then checks (`-n`) or runs. Returns the exit status. */
int proxy_cmd_main(const struct proxy_cmd *cmd, int argc, char **argv);

/* After binding: become `user` when running as root ("" = stay). Refuses to go on
 * when root could be regained. */
BMS_WUR int proxy_drop_privileges(const char *user);
/* setgroups(primary group only), setgid, setuid: what the drop does. 0 or -errno. */
BMS_WUR int proxy_become_user(uid_t uid, gid_t gid);

#endif
