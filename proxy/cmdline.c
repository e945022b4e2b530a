/* proxy/cmdline.c: the start-up shared by `bmsgate guard` and `bmsgate tunnel` (see cmdline.h). */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "policies/diag.h"
#include "proxy/cmdline.h"
#include "proxy/log.h"

static void usage(const struct proxy_cmd *cmd, FILE *out)
{
	fprintf(out,
		"usage: bmsgate %s -c FILE [-n]\n"
		"  -c FILE  configuration file (see docs/gateway.md)\n"
		"  -n       check %s, print `configuration OK`, exit\n"
		"signals: %s\n",
		cmd->name, cmd->check_help, cmd->signals);
}

int proxy_cmd_main(const struct proxy_cmd *cmd, int argc, char **argv)
{
	const char *path = NULL;
	int check = 0, c;
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:nh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'h':
			usage(cmd, stdout);
			return 0;
		default:
			usage(cmd, stderr);
			return 2;
		}
	}
	if (!path || optind != argc) {
		usage(cmd, stderr);
		return 2;
	}
	/* static: the configuration is large (device and listener tables) */
	static struct proxy_config cfg;
	struct bms_diag d;
	bms_diag_init(&d);
	int rc = proxy_config_load(path, cmd->kind, &cfg, &d);
	/* A person checking (-n) or starting it at a terminal gets the source line and a caret
	 * under each token; a service manager's log gets one line per error. */
	if (check || isatty(STDERR_FILENO))
		bms_diag_print_source(&d, stderr);
	else {
		bms_diag_print(&d, stderr);
		if (d.dropped)
			fprintf(stderr, "%s: and %zu more errors not shown\n", path, d.dropped);
	}
	bms_diag_free(&d);
	if (rc < 0)
		return 1;
	if (check) {
		if (cmd->check(&cfg, stderr) < 0)
			return 1;
		printf("configuration OK\n");
		return 0;
	}
	/* static: the logger keeps the pointer */
	static char ident[32];
	snprintf(ident, sizeof(ident), "bmsgate %s", cmd->name);
	proxy_log_init(ident, cfg.syslog);
	return cmd->run(&cfg);
}

int proxy_become_user(uid_t uid, gid_t gid)
{
	/* the user's primary group only: the guard runs with exactly these ids, and the
	 * start-up checks (proxy/preflight.c) open its files with exactly these too */
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		return -errno;
	return 0;
}

int proxy_drop_privileges(const char *user)
{
	if (!user[0])
		return 0;
	if (geteuid() != 0) {
		proxy_log_info("not running as root: staying user %u (user %s ignored)", (unsigned)geteuid(), user);
		return 0;
	}
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		proxy_log_err("user %s: no such user", user);
		return -1;
	}
	int e = proxy_become_user(pw->pw_uid, pw->pw_gid);
	if (e < 0) {
		proxy_log_err("cannot become user %s: %s", user, strerror(-e));
		return -1;
	}
	if (setuid(0) == 0) {
		proxy_log_err("dropped to %s but could become root again: refusing to run", user);
		return -1;
	}
	proxy_log_info("running as user %s", user);
	return 0;
}
