/* proxy/cmd_tunnel.c: `bmsgate tunnel [-n] -c FILE`. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "proxy/log.h"
#include "proxy/proxy.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: bmsgate tunnel -c FILE [-n]\n"
		     "  -c FILE  configuration file (see docs/gateway.md)\n"
		     "  -n       check the configuration and the TLS files, print `configuration OK`, exit\n"
		     "signals: HUP reloads certificate, key, CA and CRL for new connections; TERM stops\n");
}

int cmd_tunnel(int argc, char **argv)
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
	if (proxy_config_load(path, PROXY_TUNNEL, &cfg, stderr) < 0)
		return 1;
	if (check) {
		if (proxy_tunnel_check(&cfg, stderr) < 0)
			return 1;
		printf("configuration OK\n");
		return 0;
	}
	proxy_log_init("bmsgate tunnel", cfg.syslog);
	return proxy_tunnel_run(&cfg);
}
