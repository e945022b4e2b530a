/* cmd/cmd_pki.c: `bmsgate pki`, the site CA for operators (no openssl incantations). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "cmd/cmds.h"
#include "pki/pki.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bmsgate pki init DIR [--name \"Site CA\"] [--group GROUP] [--key ec|rsa] [--rsa-bits N] [--days N]\n"
		"       bmsgate pki issue DIR --guard NAME [--dns NAME]... [--ip ADDR]... [--group GROUP] [VALIDITY] [KEY]\n"
		"       bmsgate pki issue DIR --controller NAME --role ROLE|--no-role [VALIDITY] [KEY]\n"
		"       bmsgate pki revoke DIR NAME|SERIAL [--reason REASON]\n"
		"       bmsgate pki crl DIR [--days N]\n"
		"       bmsgate pki list DIR\n"
		"       bmsgate pki role CERT.pem\n"
		"\n"
		"  VALIDITY: --days N (default 825) | --not-before T --not-after T\n"
		"            T: 2027-01-31, 2027-01-31T12:00:00Z, now, now-2d, now+1h (s, m, h, d)\n"
		"  KEY:      --key ec (ECDSA P-256, default) | --key rsa [--rsa-bits 2048]\n"
		"  REASON:   unspecified key-compromise ca-compromise affiliation-changed superseded\n"
		"            cessation-of-operation certificate-hold privilege-withdrawn\n"
		"  GROUP:    the guard's service group (its user's primary group): DIR and DIR/issued become\n"
		"            0750 and guard keys 0640 with that group, so a guard running as that user re-reads\n"
		"            its certificate, key, CA and CRL; the CA key and controller keys stay 0600\n"
		"Files: DIR/ca.crt DIR/ca.key DIR/crl.pem DIR/index.tsv DIR/issued/NAME.crt DIR/issued/NAME.key\n"
		"(see docs/pki.md). Revoking also republishes DIR/crl.pem.\n");
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "bmsgate pki: %s '%s' is not a number in %d..%d\n", opt, s, lo, hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int parse_key(const char *s, struct bms_pki_key_opts *k)
{
	if (strcmp(s, "ec") == 0)
		k->type = BMS_PKI_KEY_EC;
	else if (strcmp(s, "rsa") == 0)
		k->type = BMS_PKI_KEY_RSA;
	else {
		fprintf(stderr, "bmsgate pki: --key '%s': expected ec or rsa\n", s);
		return -1;
	}
	return 0;
}

/* Option parsing shared by the subcommands: positional words are collected in pos[]. */
struct args {
	const char *pos[2];
	int npos;
	const char *name, *guard, *controller, *role, *reason, *not_before, *not_after, *group;
	bool no_role;
	int days;
	struct bms_pki_key_opts key;
	const char *dns[BMS_PKI_MAX_SAN];
	size_t ndns;
	const char *ip[BMS_PKI_MAX_SAN];
	size_t nip;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		if (o[0] != '-' || strcmp(o, "-") == 0) {
			if (a->npos >= 2) {
				fprintf(stderr, "bmsgate pki: unexpected argument '%s'\n", o);
				return -1;
			}
			a->pos[a->npos++] = o;
			continue;
		}
		if (strcmp(o, "--no-role") == 0) {
			a->no_role = true;
			continue;
		}
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "bmsgate pki: %s needs a value\n", o);
			return -1;
		}
		const char *val = argv[++i];
		if (strcmp(o, "--name") == 0)
			a->name = val;
		else if (strcmp(o, "--guard") == 0)
			a->guard = val;
		else if (strcmp(o, "--controller") == 0)
			a->controller = val;
		else if (strcmp(o, "--role") == 0)
			a->role = val;
		else if (strcmp(o, "--group") == 0)
			a->group = val;
		else if (strcmp(o, "--reason") == 0)
			a->reason = val;
		else if (strcmp(o, "--not-before") == 0)
			a->not_before = val;
		else if (strcmp(o, "--not-after") == 0)
			a->not_after = val;
		else if (strcmp(o, "--days") == 0) {
			if (parse_int(o, val, 1, 100 * 366, &a->days) < 0)
				return -1;
		} else if (strcmp(o, "--key") == 0) {
			if (parse_key(val, &a->key) < 0)
				return -1;
		} else if (strcmp(o, "--rsa-bits") == 0) {
			if (parse_int(o, val, 2048, 8192, &a->key.rsa_bits) < 0)
				return -1;
		} else if (strcmp(o, "--dns") == 0) {
			if (a->ndns >= BMS_PKI_MAX_SAN) {
				fprintf(stderr, "bmsgate pki: at most %d --dns\n", BMS_PKI_MAX_SAN);
				return -1;
			}
			a->dns[a->ndns++] = val;
		} else if (strcmp(o, "--ip") == 0) {
			if (a->nip >= BMS_PKI_MAX_SAN) {
				fprintf(stderr, "bmsgate pki: at most %d --ip\n", BMS_PKI_MAX_SAN);
				return -1;
			}
			a->ip[a->nip++] = val;
		} else {
			fprintf(stderr, "bmsgate pki: unknown option '%s'\n", o);
			return -1;
		}
	}
	return 0;
}

/* Rejects options that the subcommand does not take, so a typo never silently does less. */
static int only(const struct args *a, const char *sub, const char *allowed)
{
	struct {
		const char *name;
		bool set;
	} opts[] = {
		{ "name", a->name }, { "guard", a->guard }, { "controller", a->controller },
		{ "role", a->role || a->no_role }, { "reason", a->reason },
		{ "not-before", a->not_before }, { "not-after", a->not_after }, { "days", a->days },
		{ "key", a->key.type || a->key.rsa_bits }, { "dns", a->ndns }, { "ip", a->nip },
		{ "group", a->group },
	};
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		char needle[32];
		snprintf(needle, sizeof(needle), " %s ", opts[i].name);
		if (opts[i].set && !strstr(allowed, needle)) {
			fprintf(stderr, "bmsgate pki %s: --%s does not apply here\n", sub, opts[i].name);
			return -1;
		}
	}
	return 0;
}

static const char *status_word(const struct bms_pki_entry *e, time_t now)
{
	if (e->status == 'R')
		return "revoked";
	if (now > e->not_after)
		return "expired";
	if (now < e->not_before)
		return "not-yet-valid";
	return "valid";
}

static void fmt_day(time_t t, char buf[static 32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%MZ", &tm);
}

static int do_list(const char *dir)
{
	char err[BMS_PKI_ERR_MAX];
	struct bms_pki_entry *v;
	size_t n;
	if (bms_pki_list(dir, &v, &n, err) < 0) {
		fprintf(stderr, "bmsgate pki list: %s\n", err);
		return 1;
	}
	time_t now = time(NULL);
	printf("%-34s %-13s %-10s %-24s %-16s %s\n", "SERIAL", "STATUS", "KIND", "NAME", "ROLE",
	       "NOT-AFTER");
	for (size_t i = 0; i < n; i++) {
		char na[32];
		fmt_day(v[i].not_after, na);
		printf("%-34s %-13s %-10s %-24s %-16s %s\n", v[i].serial, status_word(&v[i], now),
		       v[i].kind == BMS_PKI_GUARD ? "guard" : "controller", v[i].name,
		       v[i].role[0] ? v[i].role : "-", na);
	}
	free(v);
	return 0;
}

static int do_role(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "bmsgate pki role: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		fprintf(stderr, "bmsgate pki role: %s is not a PEM certificate\n", path);
		return 1;
	}
	char role[BMS_ROLE_MAX];
	const char *why = "";
	int rc = bms_pki_role_of(x, role, &why); /* the guard's reading of it */
	X509_free(x);
	if (rc == 0) {
		printf("(no role)\n");
		return 3;
	}
	if (rc < 0) {
		fprintf(stderr, "bmsgate pki role: %s: malformed role extension: %s (a guard gives it no role)\n",
			path, why);
		return 1;
	}
	printf("%s\n", role);
	return 0;
}

int cmd_pki(int argc, char **argv)
{
	struct args a;
	char err[BMS_PKI_ERR_MAX];
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (parse_args(argc - 2, argv + 2, &a) < 0)
		return 2;
	const char *dir = a.pos[0];
	if (!dir) {
		fprintf(stderr, "bmsgate pki %s: missing DIR\n", sub);
		usage(stderr);
		return 2;
	}
	if (strcmp(sub, "init") == 0) {
		if (a.npos != 1 || only(&a, sub, " name group key days ") < 0)
			return 2;
		if (bms_pki_init(dir, a.name, &a.key, a.days, a.group, err) < 0) {
			fprintf(stderr, "bmsgate pki init: %s\n", err);
			return 1;
		}
		printf("site CA created: %s/ca.crt (key %s/ca.key, CRL %s/crl.pem)\n", dir, dir, dir);
		if (a.group)
			printf("shared with group %s: guard keys will be 0640 for it; the CA key stays owner-only\n",
			       a.group);
		return 0;
	}
	if (strcmp(sub, "issue") == 0) {
		if (a.npos != 1 ||
		    only(&a, sub, " guard controller role dns ip group days not-before not-after key ") < 0)
			return 2;
		struct bms_pki_issue_opts o;
		memset(&o, 0, sizeof(o));
		if ((a.guard != NULL) == (a.controller != NULL)) {
			fprintf(stderr, "bmsgate pki issue: give exactly one of --guard NAME or --controller NAME\n");
			return 2;
		}
		if (a.controller) {
			if (!a.role && !a.no_role) {
				fprintf(stderr, "bmsgate pki issue: --controller needs --role ROLE (or --no-role for a certificate without one)\n");
				return 2;
			}
			if (a.group) {
				fprintf(stderr, "bmsgate pki issue: --group is for --guard: a controller's key goes to another machine and stays owner-only\n");
				return 2;
			}
			if (a.role && a.no_role) {
				fprintf(stderr, "bmsgate pki issue: --role and --no-role exclude each other\n");
				return 2;
			}
			o.kind = BMS_PKI_CONTROLLER;
			o.name = a.controller;
			o.role = a.role;
		} else {
			if (a.role || a.no_role) {
				fprintf(stderr, "bmsgate pki issue: a guard certificate carries no role (--role is for --controller)\n");
				return 2;
			}
			o.kind = BMS_PKI_GUARD;
			o.name = a.guard;
		}
		memcpy(o.dns, a.dns, sizeof(o.dns));
		o.ndns = a.ndns;
		memcpy(o.ip, a.ip, sizeof(o.ip));
		o.nip = a.nip;
		o.key = a.key;
		o.group = a.group;
		o.validity.days = a.days;
		time_t now = time(NULL);
		if (a.days && (a.not_before && a.not_after)) {
			fprintf(stderr, "bmsgate pki issue: --days with both --not-before and --not-after says the same thing twice\n");
			return 2;
		}
		if (a.not_before && bms_pki_parse_time(a.not_before, now, &o.validity.not_before) < 0) {
			fprintf(stderr, "bmsgate pki issue: --not-before '%s': expected 2027-01-31, 2027-01-31T12:00:00Z, now, now-2d, +1h\n", a.not_before);
			return 2;
		}
		if (a.not_after && bms_pki_parse_time(a.not_after, now, &o.validity.not_after) < 0) {
			fprintf(stderr, "bmsgate pki issue: --not-after '%s': expected 2027-01-31, 2027-01-31T12:00:00Z, now, now-2d, +1h\n", a.not_after);
			return 2;
		}
		struct bms_pki_entry e;
		if (bms_pki_issue(dir, &o, &e, err) < 0) {
			fprintf(stderr, "bmsgate pki issue: %s\n", err);
			return 1;
		}
		printf("issued %s certificate '%s' serial %s%s%s: %s/issued/%s.crt, key %s/issued/%s.key\n",
		       o.kind == BMS_PKI_GUARD ? "guard" : "controller", e.name, e.serial,
		       e.role[0] ? " role " : "", e.role, dir, e.name, dir, e.name);
		return 0;
	}
	if (strcmp(sub, "revoke") == 0) {
		if (only(&a, sub, " reason ") < 0)
			return 2;
		if (a.npos != 2) {
			fprintf(stderr, "bmsgate pki revoke: give DIR and one NAME or SERIAL\n");
			return 2;
		}
		int reason = 0;
		if (a.reason && bms_pki_reason_code(a.reason, &reason) < 0) {
			fprintf(stderr, "bmsgate pki revoke: unknown reason '%s' (see `bmsgate pki help`)\n", a.reason);
			return 2;
		}
		struct bms_pki_entry e;
		if (bms_pki_revoke(dir, a.pos[1], reason, &e, err) < 0) {
			fprintf(stderr, "bmsgate pki revoke: %s\n", err);
			return 1;
		}
		printf("revoked '%s' serial %s (%s); CRL republished: %s/crl.pem\n", e.name, e.serial,
		       bms_pki_reason_name(e.reason), dir);
		return 0;
	}
	if (strcmp(sub, "crl") == 0) {
		if (a.npos != 1 || only(&a, sub, " days ") < 0)
			return 2;
		if (bms_pki_crl(dir, a.days, err) < 0) {
			fprintf(stderr, "bmsgate pki crl: %s\n", err);
			return 1;
		}
		printf("CRL published: %s/crl.pem\n", dir);
		return 0;
	}
	if (strcmp(sub, "list") == 0) {
		if (a.npos != 1 || only(&a, sub, " ") < 0)
			return 2;
		return do_list(dir);
	}
	if (strcmp(sub, "role") == 0) {
		if (a.npos != 1 || only(&a, sub, " ") < 0)
			return 2;
		return do_role(dir);
	}
	fprintf(stderr, "bmsgate pki: unknown subcommand '%s'\n", sub);
	usage(stderr);
	return 2;
}
