/* cmd/cmd_sim.c: `bmsgate sim modbus`, device simulators for demos and tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmds.h"
#include "sim/modbus_sim.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bmsgate sim modbus [--listen ADDR:PORT] [--model ahu|blank] [--slow-ms N]\n"
		"                          [--max-clients N] [--ready-file FILE] [--fast] [-v]\n"
		"  --listen       IPv4 address and port (default 127.0.0.1:1502; port 0 picks a free one)\n"
		"  --model        ahu: a small air handler (register map in docs/demo.md); blank: all zero\n"
		"  --slow-ms      delay every reply by N ms (the device is single-threaded, like a PLC)\n"
		"  --max-clients  serve at most N connections; further ones are accepted and closed\n"
		"  --ready-file   once listening, write ADDR:PORT to FILE (atomically)\n"
		"  --fast         epoll loop framed by the MBAP length (for benchmarks)\n"
		"Prints 'bmsgate sim modbus: listening on ADDR:PORT ...' when ready; stops on SIGTERM.\n");
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "bmsgate sim: %s '%s' is not a number in %ld..%ld\n", opt, s, lo, hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int parse_listen(const char *s, char *addr, size_t alen, int *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= alen) {
		fprintf(stderr, "bmsgate sim: --listen '%s': expected ADDR:PORT, e.g. 127.0.0.1:1502\n", s);
		return -1;
	}
	memcpy(addr, s, (size_t)(colon - s));
	addr[colon - s] = '\0';
	return parse_int("--listen port", colon + 1, 0, 65535, port);
}

static int sim_modbus(int argc, char **argv)
{
	char addr[64] = "127.0.0.1";
	struct bms_sim_opts o;
	memset(&o, 0, sizeof(o));
	o.addr = addr;
	o.port = 1502;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(a, "--fast") == 0) {
			o.fast = 1;
			continue;
		}
		if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			o.verbose = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "bmsgate sim modbus: %s needs a value (or is unknown)\n", a);
			return 2;
		}
		const char *v = argv[++i];
		if (strcmp(a, "--listen") == 0) {
			if (parse_listen(v, addr, sizeof(addr), &o.port) < 0)
				return 2;
		} else if (strcmp(a, "--model") == 0) {
			if (strcmp(v, "ahu") == 0)
				o.model = BMS_SIM_MODEL_AHU;
			else if (strcmp(v, "blank") == 0)
				o.model = BMS_SIM_MODEL_BLANK;
			else {
				fprintf(stderr, "bmsgate sim modbus: unknown model '%s' (ahu, blank)\n", v);
				return 2;
			}
		} else if (strcmp(a, "--slow-ms") == 0) {
			if (parse_int(a, v, 0, 600000, &o.slow_ms) < 0)
				return 2;
		} else if (strcmp(a, "--max-clients") == 0) {
			if (parse_int(a, v, 1, 1000, &o.max_clients) < 0)
				return 2;
		} else if (strcmp(a, "--ready-file") == 0) {
			o.ready_file = v;
		} else {
			fprintf(stderr, "bmsgate sim modbus: unknown option '%s'\n", a);
			return 2;
		}
	}
	return bms_sim_modbus_run(&o) < 0 ? 1 : 0;
}

int cmd_sim(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "modbus") == 0)
		return sim_modbus(argc - 2, argv + 2);
	fprintf(stderr, "bmsgate sim: unknown simulator '%s' (modbus)\n", argv[1]);
	return 2;
}
