/* tests/unit/test_pki.c: the site PKI writes what a Modbus/TCP Security peer expects:
 * a role extension OpenSSL parses back, private keys only the owner can read, revoked serials
 * in a CRL signed by the CA, and validity bounds (expired, not yet valid) exactly as asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"

struct fx {
	char dir[PATH_MAX];
	char err[BMS_PKI_ERR_MAX];
};

static void rm_rf(const char *dir)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/bms-pki-XXXXXX";
	if (!f || !mkdtemp(tmpl))
		return -1;
	/* The CA directory is created by init, so point one level below the temp dir. */
	snprintf(f->dir, sizeof(f->dir), "%s/site", tmpl);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", f->dir);
	*strrchr(parent, '/') = '\0';
	rm_rf(parent);
	free(f);
	return 0;
}

static void init_ca(struct fx *f)
{
	struct bms_pki_key_opts k = { BMS_PKI_KEY_EC, 0 };
	int rc = bms_pki_init(f->dir, "Unit Site CA", &k, 0, NULL, f->err);
	if (rc != 0)
		fail_msg("init: %s", f->err);
}

static X509 *load_cert(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	FILE *fp = fopen(p, "r");
	assert_non_null(fp);
	X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

static X509_CRL *load_crl(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/crl.pem", dir);
	FILE *fp = fopen(p, "r");
	assert_non_null(fp);
	X509_CRL *c = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(c);
	return c;
}

static mode_t mode_of(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s%s%s", dir, rel[0] ? "/" : "", rel);
	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 07777;
}

static void issue_ctl(struct fx *f, const char *name, const char *role, struct bms_pki_entry *e)
{
	struct bms_pki_issue_opts o;
	memset(&o, 0, sizeof(o));
	o.kind = BMS_PKI_CONTROLLER;
	o.name = name;
	o.role = role;
	int rc = bms_pki_issue(f->dir, &o, e, f->err);
	if (rc != 0)
		fail_msg("issue %s: %s", name, f->err);
}

/* Verifies cert against the CA (and CRL when crl != NULL); returns the X509_V_ERR code. */
static int verify(struct fx *f, X509 *cert, bool crl)
{
	X509 *ca = load_cert(f->dir, "ca.crt");
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_CRL *c = NULL;
	assert_true(X509_STORE_add_cert(st, ca));
	if (crl) {
		c = load_crl(f->dir);
		assert_true(X509_STORE_add_crl(st, c));
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	assert_true(X509_STORE_CTX_init(ctx, st, cert, NULL));
	int ok = X509_verify_cert(ctx);
	int e = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_CRL_free(c);
	X509_free(ca);
	ERR_clear_error();
	return e;
}

static void init_writes_private_files(void **state)
{
	struct fx *f = *state;
	mode_t old = umask(0); /* the modes must not depend on the caller's umask */
	init_ca(f);
	umask(old);
	assert_int_equal(mode_of(f->dir, ""), 0700);
	assert_int_equal(mode_of(f->dir, "issued"), 0700);
	assert_int_equal(mode_of(f->dir, "ca.key"), 0600);
	assert_int_equal(mode_of(f->dir, "ca.crt"), 0644);
	assert_int_equal(mode_of(f->dir, "crl.pem"), 0644);
	X509 *ca = load_cert(f->dir, "ca.crt");
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(verify(f, ca, true), X509_V_OK);
	X509_free(ca);
	/* A second init must not overwrite the CA. */
	struct bms_pki_key_opts k = { BMS_PKI_KEY_EC, 0 };
	assert_int_equal(bms_pki_init(f->dir, NULL, &k, 0, NULL, f->err), -EEXIST);
	assert_non_null(strstr(f->err, "already holds a site CA"));
}

static void controller_carries_role_extension(void **state)
{
	struct fx *f = *state;
	struct bms_pki_entry e;
	init_ca(f);
	mode_t old = umask(0);
	issue_ctl(f, "hmi-1", "operator", &e);
	umask(old);
	assert_int_equal(mode_of(f->dir, "issued/hmi-1.key"), 0600);
	assert_int_equal(mode_of(f->dir, "issued/hmi-1.crt"), 0644);
	assert_string_equal(e.role, "operator");
	X509 *x = load_cert(f->dir, "issued/hmi-1.crt");

	/* Parse the extension independently of bms_pki_cert_role: OID, non-critical, DER UTF8String. */
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.50316.802.1", 1);
	int i = X509_get_ext_by_OBJ(x, oid, -1);
	assert_true(i >= 0);
	X509_EXTENSION *ext = X509_get_ext(x, i);
	assert_int_equal(X509_EXTENSION_get_critical(ext), 0);
	ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(ext);
	static const uint8_t want[] = { 0x0c, 0x08, 'o', 'p', 'e', 'r', 'a', 't', 'o', 'r' };
	assert_int_equal(ASN1_STRING_length(d), sizeof(want));
	assert_memory_equal(ASN1_STRING_get0_data(d), want, sizeof(want));
	ASN1_OBJECT_free(oid);

	char role[BMS_ROLE_MAX];
	assert_int_equal(bms_pki_cert_role(x, role), 0);
	assert_string_equal(role, "operator");
	/* A controller certificate is for TLS clients, verifies to the CA, and is no CA itself. */
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 0);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(verify(f, x, true), X509_V_OK);
	X509_free(x);
}

static void no_role_and_malformed_roles(void **state)
{
	struct fx *f = *state;
	struct bms_pki_entry e;
	char role[BMS_ROLE_MAX];
	init_ca(f);
	struct bms_pki_issue_opts o;
	memset(&o, 0, sizeof(o));
	o.kind = BMS_PKI_CONTROLLER;
	o.name = "norole";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	X509 *x = load_cert(f->dir, "issued/norole.crt");
	assert_int_equal(bms_pki_cert_role(x, role), -ENOENT);

	/* An IA5String where a UTF8String belongs must be refused, not read. */
	ASN1_OBJECT *oid = OBJ_txt2obj(BMS_ROLE_OID, 1);
	ASN1_OCTET_STRING *bad = ASN1_OCTET_STRING_new();
	static const uint8_t ia5[] = { 0x16, 0x05, 'a', 'd', 'm', 'i', 'n' };
	assert_true(ASN1_OCTET_STRING_set(bad, ia5, sizeof(ia5)));
	X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, bad);
	assert_true(X509_add_ext(x, ext, -1));
	assert_int_equal(bms_pki_cert_role(x, role), -EINVAL);
	X509_EXTENSION_free(ext);
	X509_free(x);

	/* Two role extensions are ambiguous: refused. */
	issue_ctl(f, "twice", "viewer", &e);
	x = load_cert(f->dir, "issued/twice.crt");
	static const uint8_t adm[] = { 0x0c, 0x05, 'a', 'd', 'm', 'i', 'n' };
	assert_true(ASN1_OCTET_STRING_set(bad, adm, sizeof(adm)));
	ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, bad);
	assert_true(X509_add_ext(x, ext, -1));
	assert_int_equal(bms_pki_cert_role(x, role), -EINVAL);
	X509_EXTENSION_free(ext);
	X509_free(x);

	/* Trailing bytes after the UTF8String are refused too. */
	issue_ctl(f, "trail", "viewer", &e);
	x = load_cert(f->dir, "issued/trail.crt");
	int i = X509_get_ext_by_OBJ(x, oid, -1);
	static const uint8_t trailing[] = { 0x0c, 0x02, 'o', 'k', 0x00 };
	assert_true(ASN1_OCTET_STRING_set(X509_EXTENSION_get_data(X509_get_ext(x, i)), trailing,
					  sizeof(trailing)));
	assert_int_equal(bms_pki_cert_role(x, role), -EINVAL);
	X509_free(x);
	ASN1_OCTET_STRING_free(bad);
	ASN1_OBJECT_free(oid);
}

static gid_t gid_of(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s%s%s", dir, rel[0] ? "/" : "", rel);
	assert_int_equal(stat(p, &st), 0);
	return st.st_gid;
}

/* `init --group`: the service user (primary group G) can reach and read what the guard
 * re-reads after dropping privileges; the CA key and controller keys stay owner-only. */
static void group_layout_for_a_service_user(void **state)
{
	struct fx *f = *state;
	struct bms_pki_entry e;
	/* a group the caller may give files to: its own (root may give any) */
	gid_t g = getgid() == 0 ? 65534 : getgid();
	char gname[16];
	snprintf(gname, sizeof(gname), "%lu", (unsigned long)g);
	struct bms_pki_key_opts k = { BMS_PKI_KEY_EC, 0 };
	mode_t old = umask(077); /* the layout must not depend on the umask either way */
	assert_int_equal(bms_pki_init(f->dir, "Shared CA", &k, 0, gname, f->err), 0);
	assert_int_equal(mode_of(f->dir, ""), 0750);
	assert_int_equal(gid_of(f->dir, ""), g);
	assert_int_equal(mode_of(f->dir, "issued"), 0750);
	assert_int_equal(gid_of(f->dir, "issued"), g);
	assert_int_equal(mode_of(f->dir, "ca.key"), 0600);
	assert_int_equal(mode_of(f->dir, "ca.crt"), 0644);
	assert_int_equal(mode_of(f->dir, "crl.pem"), 0644);
	struct bms_pki_issue_opts o;
	memset(&o, 0, sizeof(o));
	o.kind = BMS_PKI_GUARD;
	o.name = "guard-1";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	assert_int_equal(mode_of(f->dir, "issued/guard-1.key"), 0640);
	assert_int_equal(gid_of(f->dir, "issued/guard-1.key"), g);
	assert_int_equal(mode_of(f->dir, "issued/guard-1.crt"), 0644);
	issue_ctl(f, "hmi", "operator", &e);
	assert_int_equal(mode_of(f->dir, "issued/hmi.key"), 0600);
	/* a revocation republishes the CRL readable, and leaves the layout alone */
	assert_int_equal(bms_pki_revoke(f->dir, "hmi", 0, NULL, f->err), 0);
	assert_int_equal(mode_of(f->dir, "crl.pem"), 0644);
	assert_int_equal(mode_of(f->dir, ""), 0750);
	/* a second init is refused and does not take the group's access away */
	assert_int_equal(bms_pki_init(f->dir, NULL, &k, 0, NULL, f->err), -EEXIST);
	assert_int_equal(mode_of(f->dir, ""), 0750);
	/* --group is for guards; an unknown group is named */
	o.kind = BMS_PKI_CONTROLLER;
	o.name = "hmi2";
	o.role = "operator";
	o.group = gname;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
	assert_non_null(strstr(f->err, "--group is for --guard"));
	o.kind = BMS_PKI_GUARD;
	o.role = NULL;
	o.group = "no-such-group-bms";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -ENOENT);
	assert_non_null(strstr(f->err, "no-such-group-bms"));
	umask(old);
}

/* An existing owner-only directory is shared by `issue --guard NAME --group G`; without a
 * group the layout stays owner-only, as before. */
static void group_added_on_issue(void **state)
{
	struct fx *f = *state;
	struct bms_pki_entry e;
	init_ca(f);
	struct bms_pki_issue_opts o;
	memset(&o, 0, sizeof(o));
	o.kind = BMS_PKI_GUARD;
	o.name = "plain";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	assert_int_equal(mode_of(f->dir, "issued/plain.key"), 0600);
	assert_int_equal(mode_of(f->dir, ""), 0700);
	gid_t g = getgid() == 0 ? 65534 : getgid();
	char gname[16];
	snprintf(gname, sizeof(gname), "%lu", (unsigned long)g);
	o.name = "shared";
	o.group = gname;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	assert_int_equal(mode_of(f->dir, "issued/shared.key"), 0640);
	assert_int_equal(gid_of(f->dir, "issued/shared.key"), g);
	assert_int_equal(mode_of(f->dir, ""), 0750);
	assert_int_equal(mode_of(f->dir, "issued"), 0750);
	assert_int_equal(mode_of(f->dir, "ca.key"), 0600);
	/* another group for the same directory is refused */
	if (getuid() == 0) {
		o.name = "other";
		o.group = "0";
		assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
		assert_non_null(strstr(f->err, "one service group"));
	}
}

static void revoke_puts_serial_in_crl(void **state)
{
	struct fx *f = *state;
	struct bms_pki_entry a, b, r;
	init_ca(f);
	issue_ctl(f, "keep", "operator", &a);
	issue_ctl(f, "lost", "operator", &b);
	assert_int_equal(bms_pki_revoke(f->dir, "lost", 1, &r, f->err), 0);
	assert_string_equal(r.serial, b.serial);
	assert_int_equal(r.status, 'R');

	X509_CRL *crl = load_crl(f->dir);
	X509 *ca = load_cert(f->dir, "ca.crt");
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	X509 *lost = load_cert(f->dir, "issued/lost.crt");
	X509 *keep = load_cert(f->dir, "issued/keep.crt");
	X509_REVOKED *rev = NULL;
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, X509_get_serialNumber(lost)), 1);
	int crit = 0;
	ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
	assert_non_null(reason);
	assert_int_equal(ASN1_ENUMERATED_get(reason), 1); /* keyCompromise */
	ASN1_ENUMERATED_free(reason);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, X509_get_serialNumber(keep)), 0);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
	assert_int_equal(verify(f, lost, true), X509_V_ERR_CERT_REVOKED);
	assert_int_equal(verify(f, keep, true), X509_V_OK);

	/* Revoking again says so; revoking by serial works; unknown names are an error. */
	assert_int_equal(bms_pki_revoke(f->dir, "lost", 0, NULL, f->err), -EALREADY);
	assert_int_equal(bms_pki_revoke(f->dir, "nobody", 0, NULL, f->err), -ENOENT);
	char ser[90];
	snprintf(ser, sizeof(ser), "0x%s", a.serial);
	assert_int_equal(bms_pki_revoke(f->dir, ser, 0, NULL, f->err), 0);
	X509_CRL_free(crl);
	crl = load_crl(f->dir);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
	/* CRL numbers increase with every publication (init, revoke, revoke). */
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_non_null(num);
	assert_int_equal(ASN1_INTEGER_get(num), 3);
	ASN1_INTEGER_free(num);

	struct bms_pki_entry *v;
	size_t n;
	assert_int_equal(bms_pki_list(f->dir, &v, &n, f->err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].status, 'R');
	assert_int_equal(v[1].status, 'R');
	assert_int_equal(v[1].reason, 1);
	free(v);

	/* A revoked name may be issued again; the old certificate stays beside it by serial. */
	struct bms_pki_entry c;
	issue_ctl(f, "lost", "viewer", &c);
	assert_string_not_equal(c.serial, b.serial);
	char old[PATH_MAX + 128];
	snprintf(old, sizeof(old), "%s/issued/lost.crt.%s", f->dir, b.serial);
	assert_int_equal(access(old, F_OK), 0);
	X509_free(lost);
	X509_free(keep);
	X509_free(ca);
	X509_CRL_free(crl);
}

static void validity_bounds_are_exact(void **state)
{
	struct fx *f = *state;
	struct bms_pki_entry e;
	init_ca(f);
	time_t now = time(NULL);
	struct bms_pki_issue_opts o;
	memset(&o, 0, sizeof(o));
	o.kind = BMS_PKI_CONTROLLER;
	o.role = "operator";
	o.name = "expired";
	o.validity.not_before = now - 10 * 86400;
	o.validity.not_after = now - 86400;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	X509 *x = load_cert(f->dir, "issued/expired.crt");
	assert_true(X509_cmp_time(X509_get0_notAfter(x), &now) < 0);
	assert_int_equal(verify(f, x, true), X509_V_ERR_CERT_HAS_EXPIRED);
	X509_free(x);

	o.name = "future";
	o.validity.not_before = now + 86400;
	o.validity.not_after = now + 2 * 86400;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	x = load_cert(f->dir, "issued/future.crt");
	assert_int_equal(verify(f, x, true), X509_V_ERR_CERT_NOT_YET_VALID);
	X509_free(x);

	o.name = "days";
	o.validity.not_before = 0;
	o.validity.not_after = 0;
	o.validity.days = 7;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	assert_true(e.not_after - now >= 7 * 86400 - 5 && e.not_after - now <= 7 * 86400 + 5);

	o.name = "backwards";
	o.validity.days = 0;
	o.validity.not_before = now;
	o.validity.not_after = now - 1;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
	assert_non_null(strstr(f->err, "not-after"));
}

static void guard_has_server_san(void **state)
{
	struct fx *f = *state;
	struct bms_pki_entry e;
	init_ca(f);
	struct bms_pki_issue_opts o;
	memset(&o, 0, sizeof(o));
	o.kind = BMS_PKI_GUARD;
	o.name = "guard-1";
	o.dns[0] = "ahu.plant.example";
	o.ndns = 1;
	o.ip[0] = "127.0.0.1";
	o.ip[1] = "::1";
	o.nip = 2;
	o.key.type = BMS_PKI_KEY_RSA;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	X509 *x = load_cert(f->dir, "issued/guard-1.crt");
	assert_int_equal(X509_check_host(x, "guard-1", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "ahu.plant.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "other.example", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
	assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), EVP_PKEY_RSA);
	char role[BMS_ROLE_MAX];
	assert_int_equal(bms_pki_cert_role(x, role), -ENOENT);
	assert_int_equal(verify(f, x, true), X509_V_OK);
	X509_free(x);

	/* A ',' would smuggle another SAN entry into the extension: refused. */
	o.name = "guard-2";
	o.nip = 0;
	o.dns[0] = "a.example,IP:10.0.0.1";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
	o.dns[0] = "ok.example";
	o.ip[0] = "10.0.0.300";
	o.nip = 1;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
	assert_non_null(strstr(f->err, "10.0.0.300"));
}

static void clear_errors(void **state)
{
	struct fx *f = *state;
	struct bms_pki_entry e;
	struct bms_pki_issue_opts o;
	memset(&o, 0, sizeof(o));
	o.kind = BMS_PKI_CONTROLLER;
	o.name = "hmi";
	o.role = "operator";
	/* No CA yet. */
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -ENOENT);
	assert_non_null(strstr(f->err, "pki init"));
	assert_int_equal(bms_pki_revoke(f->dir, "hmi", 0, NULL, f->err), -ENOENT);
	init_ca(f);
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	/* Duplicate name. */
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EEXIST);
	assert_non_null(strstr(f->err, "already exists"));
	/* Bad roles and names. */
	o.name = "hmi2";
	o.role = "oper ator";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
	assert_non_null(strstr(f->err, "bad role 'oper ator'"));
	o.role = "";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
	/* the role limit is BMS_ROLE_LEN, the guard's and the policy's: 64 issued and read back, 65 refused */
	char r64[BMS_ROLE_LEN + 2];
	memset(r64, 'q', BMS_ROLE_LEN);
	r64[BMS_ROLE_LEN] = '\0';
	o.name = "hmi64";
	o.role = r64;
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), 0);
	assert_string_equal(e.role, r64);
	X509 *x = load_cert(f->dir, "issued/hmi64.crt");
	char back[BMS_ROLE_MAX];
	assert_int_equal(bms_pki_cert_role(x, back), 0);
	assert_string_equal(back, r64);
	X509_free(x);
	strcat(r64, "q");
	o.name = "hmi65";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
	assert_non_null(strstr(f->err, "1..64"));
	o.name = "hmi2";
	o.role = "operator";
	o.name = "../evil";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL);
	assert_non_null(strstr(f->err, "bad certificate name"));
	o.kind = BMS_PKI_GUARD;
	o.name = "g";
	assert_int_equal(bms_pki_issue(f->dir, &o, &e, f->err), -EINVAL); /* guards carry no role */
}

static void parses_times(void **state)
{
	(void)state;
	time_t t, now = 1000000000;
	assert_int_equal(bms_pki_parse_time("now", now, &t), 0);
	assert_int_equal(t, now);
	assert_int_equal(bms_pki_parse_time("now-2d", now, &t), 0);
	assert_int_equal(t, now - 2 * 86400);
	assert_int_equal(bms_pki_parse_time("+90m", now, &t), 0);
	assert_int_equal(t, now + 90 * 60);
	assert_int_equal(bms_pki_parse_time("2027-01-31", now, &t), 0);
	assert_int_equal(t, 1801353600);
	assert_int_equal(bms_pki_parse_time("2027-01-31T12:00:00Z", now, &t), 0);
	assert_int_equal(t, 1801353600 + 12 * 3600);
	assert_int_equal(bms_pki_parse_time("now-2", now, &t), -EINVAL);
	assert_int_equal(bms_pki_parse_time("now-2dd", now, &t), -EINVAL);
	assert_int_equal(bms_pki_parse_time("2027-13-01", now, &t), -EINVAL);
	assert_int_equal(bms_pki_parse_time("tomorrow", now, &t), -EINVAL);
	int code;
	assert_int_equal(bms_pki_reason_code("key-compromise", &code), 0);
	assert_int_equal(code, 1);
	assert_int_equal(bms_pki_reason_code("keyCompromise", &code), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(init_writes_private_files, setup, teardown),
		cmocka_unit_test_setup_teardown(controller_carries_role_extension, setup, teardown),
		cmocka_unit_test_setup_teardown(no_role_and_malformed_roles, setup, teardown),
		cmocka_unit_test_setup_teardown(group_layout_for_a_service_user, setup, teardown),
		cmocka_unit_test_setup_teardown(group_added_on_issue, setup, teardown),
		cmocka_unit_test_setup_teardown(revoke_puts_serial_in_crl, setup, teardown),
		cmocka_unit_test_setup_teardown(validity_bounds_are_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(guard_has_server_san, setup, teardown),
		cmocka_unit_test_setup_teardown(clear_errors, setup, teardown),
		cmocka_unit_test(parses_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
