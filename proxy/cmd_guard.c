/* proxy/cmd_guard.c: `bmsgate guard [-n] -c FILE`. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "proxy/log.h"
#include "proxy/proxy.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: bmsgate guard -c FILE [-n]\n"
		     "  -c FILE  configuration file (see docs/gateway.md)\n"
		     "  -n       check the configuration, the policy and the TLS files, print `configuration OK`, exit\n"
		     "signals: HUP reloads policy, certificate, key, CA and CRL; TERM drains and stops\n");
}

int cmd_guard(int argc, char **argv)
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
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 2;
	}
	static struct proxy_config cfg;
	if (proxy_config_load(path, PROXY_GUARD, &cfg, stderr) < 0)
		return 1;
	if (check) {
		if (proxy_guard_check(&cfg, stderr) < 0)
			return 1;
		printf("configuration OK\n");
		return 0;
	}
	proxy_log_init("bmsgate guard", cfg.syslog);
	return proxy_guard_run(&cfg);
}
