/* cmd/main.c: bmsgate, one binary with subcommands. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmds.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	/* Writes to sockets that a peer can reset at any moment: a write to a reset socket must
	 * be an EPIPE error that closes that one connection, never a SIGPIPE that kills the
	 * process with every other connection. The offline tools keep the Unix default, so
	 * that `bmsgate audit query ... | head` ends quietly when head exits. */
	int sockets;
};

static const struct command commands[] = {
	{ "decode", cmd_decode, "decode Modbus/TCP and BACnet/IP PDUs in a pcap or pcapng capture", 0 },
	{ "policy", cmd_policy, "check, explain and diff policy files", 0 },
	{ "audit", cmd_audit, "keygen, verify, prove, query, summarise and tail the audit trail", 0 },
	{ "guard", cmd_guard, "field side: mutual-TLS server that inspects, decides, audits, forwards", 1 },
	{ "tunnel", cmd_tunnel, "controller side: plain local listener carried over mutual TLS to a guard", 1 },
	{ "replay", cmd_replay, "run a capture's Modbus and BACnet requests through the guard's inspect step and policy", 0 },
	{ "pki", cmd_pki, "site CA: issue guard and controller certificates, revoke, publish the CRL", 0 },
	{ "sim", cmd_sim, "device simulators for demos and tests", 1 },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: bmsgate COMMAND [ARGS...]\n"
		     "       bmsgate help | --version\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n`bmsgate COMMAND --help` describes one command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
		printf("bmsgate %s\n", BMS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0) {
			if (commands[i].sockets)
				signal(SIGPIPE, SIG_IGN);
			return commands[i].run(argc - 1, argv + 1);
		}
	fprintf(stderr, "bmsgate: unknown command '%s'\n", name);
	usage(stderr);
	return 2;
}
