/* audit/cmd_audit.c: `bmsgate audit SUBCOMMAND`. */
#include <stdio.h>
#include <string.h>

#include "audit/audit_int.h"
#include "cmds.h"

static int cmd_keygen(int argc, char **argv);

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} subs[] = {
	{ "keygen", cmd_keygen, "keygen PRIVATE PUBLIC        make the Ed25519 checkpoint signing key pair" },
	{ "verify", audit_cmd_verify, "verify LOG... --key PUB [--checkpoints FILE] [--strict]" },
	{ "prove", audit_cmd_prove, "prove LOG... --seq N [--size S] | --from S1 [--to S2]" },
	{ "verify-proof", audit_cmd_verify_proof, "verify-proof PROOF --key PUB [--checkpoints FILE] [--record FILE]" },
	{ "query", audit_cmd_query, "query LOG... [--since T] [--until T] [--identity X] [--role R] [--device D]\n"
				    "        [--decision allow|deny|monitor-deny|malformed] [--op OP] [--json]" },
	{ "summary", audit_cmd_summary, "summary LOG...               counts by identity, device, operation, decision; per hour" },
	{ "tail", audit_cmd_tail, "tail [-f] [-n N] [--json] LOG follow the log, also across rotation" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: bmsgate audit SUBCOMMAND [ARGS...]\n\n");
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		fprintf(out, "  %s\n", subs[i].summary);
}

static int cmd_keygen(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bmsgate audit keygen PRIVATE_KEY_FILE PUBLIC_KEY_FILE\n");
		return 2;
	}
	char err[512];
	if (audit_keygen(argv[1], argv[2], err, sizeof(err)) < 0) {
		fprintf(stderr, "bmsgate audit keygen: %s\n", err);
		return 1;
	}
	char id[AUDIT_KEYID_LEN + 1] = "";
	EVP_PKEY *k = NULL;
	if (audit_key_load(argv[2], false, &k, err, sizeof(err)) == 0 && audit_key_id(k, id) == 0)
		printf("wrote %s (mode 600) and %s; key id %s\n", argv[1], argv[2], id);
	EVP_PKEY_free(k);
	return 0;
}

int cmd_audit(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(argc - 1, argv + 1);
	fprintf(stderr, "bmsgate audit: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
