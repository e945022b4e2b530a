/* cmd/gateway_cmd.c: the start-up shared by `bmsgate guard` and `bmsgate tunnel` (see gateway_cmd.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h> /* isatty */

#include "cmd/gateway_cmd.h"
#include "base/diag.h"
#include "proxy/log.h"

static void usage(const struct cmd_gateway *cmd, FILE *out)
{
	fprintf(out,
		"usage: bmsgate %s -c FILE [-n]\n"
		"  -c FILE  configuration file (see docs/gateway.md)\n"
		"  -n       check %s, print `configuration OK`, exit\n"
		"signals: %s\n",
		cmd->name, cmd->check_help, cmd->signals);
}

int cmd_gateway_main(const struct cmd_gateway *cmd, int argc, char **argv)
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
