/* cmd/cmd_audit.c: `bmsgate audit SUBCOMMAND`: keygen and verify here, prove and
 * verify-proof in audit_proof.c, query, summary and tail in audit_query.c. */
#include <stdio.h>
#include <string.h>

#include "audit/read.h"
#include "cmd/audit_cmds.h"
#include "cmd/cmds.h"

static int cmd_keygen(int argc, char **argv);
static int cmd_verify(int argc, char **argv);

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} subs[] = {
	{ "keygen", cmd_keygen, "keygen PRIVATE PUBLIC        make the Ed25519 checkpoint signing key pair" },
	{ "verify", cmd_verify, "verify LOG... --key PUB [--checkpoints FILE] [--strict]" },
	{ "prove", cmd_audit_prove, "prove LOG... --seq N [--size S] | --from S1 [--to S2]" },
	{ "verify-proof", cmd_audit_verify_proof, "verify-proof PROOF --key PUB [--checkpoints FILE] [--record FILE]" },
	{ "query", cmd_audit_query, "query LOG... [--since T] [--until T] [--identity X] [--role R] [--device D]\n"
				    "        [--decision allow|deny|monitor-deny|malformed] [--op OP] [--json]" },
	{ "summary", cmd_audit_summary, "summary LOG...               counts by identity, device, operation, decision; per hour" },
	{ "tail", cmd_audit_tail, "tail [-f] [-n N] [--json] LOG follow the log, also across rotation" },
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

static int cmd_verify(int argc, char **argv)
{
	const char *key = NULL, *cps = NULL;
	struct audit_verify_opts o = { .out = stdout };
	const char **files = calloc((size_t)argc, sizeof(*files));
	size_t n = 0;
	int status = 2;
	if (!files)
		return 2;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			key = argv[++i];
		else if (strcmp(argv[i], "--checkpoints") == 0 && i + 1 < argc)
			cps = argv[++i];
		else if (strcmp(argv[i], "--strict") == 0)
			o.strict = true;
		else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0)
			o.quiet = true;
		else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "bmsgate audit verify: unknown option '%s'\n", argv[i]);
			goto usage;
		} else
			files[n++] = argv[i];
	}
	if (!key || n == 0)
		goto usage;
	char err[512];
	if (audit_key_load(key, false, &o.key, err, sizeof(err)) < 0) {
		fprintf(stderr, "bmsgate audit verify: %s\n", err);
		goto out;
	}
	o.checkpoints_path = cps;
	status = audit_verify(files, n, &o);
	EVP_PKEY_free(o.key);
	goto out;
usage:
	fprintf(stderr, "usage: bmsgate audit verify LOG... --key PUBLIC_KEY [--checkpoints FILE] [--strict] [--quiet]\n"
			"  LOG...: rotated files oldest first, then the active file (e.g. audit.log.* audit.log)\n"
			"  exit 0 intact, 1 tampered, 2 cannot read\n");
	status = 2;
out:
	free(files);
	return status;
}
