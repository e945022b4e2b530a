/* pki/pki.c: site CA, certificate issue, revocation and CRL with OpenSSL 3 libcrypto.
 *
 * Why libcrypto and not the openssl CLI: a site must be runnable without an openssl
 * incantation, and the role extension, file modes and index must be right every time.
 * Every file that a running guard reads (crl.pem, index.tsv) is replaced by rename(2), so a
 * reader never sees half a file. Private keys are created 0600 with O_EXCL and never exist
 * with a wider mode, whatever the umask.
 */
#include "pki/pki.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "parsers/role.h"

#define INDEX_MAX_LINES 100000
#define INDEX_LINE_MAX 1024
#define DEFAULT_CA_DAYS 3650
#define DEFAULT_CERT_DAYS 825
#define DEFAULT_CRL_DAYS 30
/* Backdate new certificates a little so a peer whose clock runs slightly behind accepts them. */
#define BACKDATE_SECONDS 300

static void errf(char err[static BMS_PKI_ERR_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void errf(char err[static BMS_PKI_ERR_MAX], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, BMS_PKI_ERR_MAX, fmt, ap);
	va_end(ap);
}

/* Appends OpenSSL's first queued error to err, then clears the queue. */
static void errssl(char err[static BMS_PKI_ERR_MAX], const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown OpenSSL error";
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	errf(err, "%s: %s", what, buf);
}

static int path_join(char *out, size_t outlen, const char *dir, const char *a, const char *b)
{
	int n = snprintf(out, outlen, "%s/%s%s", dir, a, b ? b : "");
	return (n < 0 || (size_t)n >= outlen) ? -ENAMETOOLONG : 0;
}

/* ---- names, roles, reasons, times ---- */

int bms_pki_check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > BMS_PKI_NAME_MAX || name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!(isalnum(c) || c == '.' || c == '-' || c == '_'))
			return -EINVAL;
	}
	return 0;
}

/* Roles end up in policy files (`role operator`), so they use the same identifier alphabet. */
int bms_pki_check_role(const char *role)
{
	size_t n = strlen(role);
	if (n == 0 || n > BMS_ROLE_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)role[i];
		if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':'))
			return -EINVAL;
	}
	return 0;
}

static const struct {
	const char *name;
	int code;
} reasons[] = {
	{ "unspecified", 0 },           { "key-compromise", 1 },      { "ca-compromise", 2 },
	{ "affiliation-changed", 3 },   { "superseded", 4 },          { "cessation-of-operation", 5 },
	{ "certificate-hold", 6 },      { "privilege-withdrawn", 9 },
};

int bms_pki_reason_code(const char *name, int *code)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (strcmp(name, reasons[i].name) == 0) {
			*code = reasons[i].code;
			return 0;
		}
	}
	return -EINVAL;
}

const char *bms_pki_reason_name(int code)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].name;
	return NULL;
}

static int parse_offset(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || v < 0 || v > 100LL * 366 * 86400)
		return -EINVAL;
	long long mul;
	switch (*end) {
	case 's': mul = 1; break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	default: return -EINVAL;
	}
	if (end[1] != '\0')
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int bms_pki_parse_time(const char *s, time_t now, time_t *out)
{
	const char *rel = NULL;
	if (strcmp(s, "now") == 0) {
		*out = now;
		return 0;
	}
	if (strncmp(s, "now", 3) == 0)
		rel = s + 3;
	else if (s[0] == '+' || s[0] == '-')
		rel = s;
	if (rel) {
		long long off;
		if ((rel[0] != '+' && rel[0] != '-') || parse_offset(rel + 1, &off) < 0)
			return -EINVAL;
		*out = rel[0] == '+' ? now + (time_t)off : now - (time_t)off;
		return 0;
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	if (!end)
		return -EINVAL;
	if (*end == 'T') {
		end = strptime(end + 1, "%H:%M:%S", &tm);
		if (!end)
			return -EINVAL;
		if (*end == 'Z')
			end++;
	}
	if (*end != '\0' || tm.tm_year < 70 || tm.tm_year > 8000)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

static void fmt_time(time_t t, char buf[static 32])
{
	struct tm tm;
	if (t == 0 || !gmtime_r(&t, &tm)) {
		strcpy(buf, "-");
		return;
	}
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int scan_time(const char *s, time_t *out)
{
	if (strcmp(s, "-") == 0) {
		*out = 0;
		return 0;
	}
	return bms_pki_parse_time(s, 0, out);
}

/* ---- files ---- */

/* Writes data to path through a temporary file and rename(2). The file is created 0600 (O_EXCL),
 * given its group (`gid`, or NO_GROUP to keep the creator's) and only then its `mode`, so a key
 * is never readable by anyone it is not meant for, whatever the umask. */
#define NO_GROUP ((gid_t)-1)
static int write_atomic(const char *path, mode_t mode, gid_t gid, const void *data, size_t len,
			char err[static BMS_PKI_ERR_MAX])
{
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errf(err, "path too long: %s", path);
		return -ENAMETOOLONG;
	}
	(void)unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		errf(err, "cannot create %s: %s", tmp, strerror(e));
		return -e;
	}
	int rc = 0;
	if ((gid != NO_GROUP && fchown(fd, (uid_t)-1, gid) < 0) || fchmod(fd, mode) < 0) {
		rc = -errno;
		goto fail;
	}
	const uint8_t *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			goto fail;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto fail;
	}
	return 0;
fail:
	errf(err, "cannot write %s: %s", path, strerror(-rc));
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	return rc;
}

/* PEM-encodes through a memory BIO, then writes atomically. kind: 'c' cert, 'k' key, 'r' CRL. */
static int write_pem(const char *path, mode_t mode, gid_t gid, char kind, void *obj,
		     char err[static BMS_PKI_ERR_MAX])
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc = -ENOMEM;
	if (!b) {
		errssl(err, "BIO_new");
		return rc;
	}
	int ok = 0;
	if (kind == 'c')
		ok = PEM_write_bio_X509(b, obj);
	else if (kind == 'k')
		ok = PEM_write_bio_PrivateKey(b, obj, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_bio_X509_CRL(b, obj);
	if (!ok) {
		errssl(err, "PEM encoding");
		rc = -EIO;
		goto fail;
	}
	char *data;
	long len = BIO_get_mem_data(b, &data);
	rc = write_atomic(path, mode, gid, data, (size_t)len, err);
fail:
	BIO_free(b);
	return rc;
}

static int lock_dir(const char *dir, int *fd_out, char err[static BMS_PKI_ERR_MAX])
{
	char path[PATH_MAX];
	if (path_join(path, sizeof(path), dir, ".lock", NULL) < 0) {
		errf(err, "path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		errf(err, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		errf(err, "cannot lock %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	*fd_out = fd;
	return 0;
}

static void unlock_dir(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

/* ---- keys and certificates ---- */

static EVP_PKEY *gen_key(const struct bms_pki_key_opts *k, char err[static BMS_PKI_ERR_MAX])
{
	EVP_PKEY *pk;
	if (k && k->type == BMS_PKI_KEY_RSA) {
		int bits = k->rsa_bits ? k->rsa_bits : 2048;
		if (bits < 2048 || bits > 8192) {
			errf(err, "RSA key size %d out of range (2048..8192)", bits);
			return NULL;
		}
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	} else {
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	}
	if (!pk)
		errssl(err, "key generation");
	return pk;
}

/* A random positive 127-bit serial (RFC 5280 4.1.2.2: positive, at most 20 octets). */
static int new_serial(X509 *x, char hex[static 80], char err[static BMS_PKI_ERR_MAX])
{
	unsigned char raw[16];
	int rc = -EIO;
	BIGNUM *bn = NULL;
	char *h = NULL;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		errssl(err, "RAND_bytes");
		return rc;
	}
	raw[0] &= 0x7f;
	raw[0] |= 0x01; /* never a short or zero serial */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
		errssl(err, "serial number");
		goto fail;
	}
	h = BN_bn2hex(bn);
	if (!h || strlen(h) >= 80) {
		errssl(err, "serial number");
		goto fail;
	}
	strcpy(hex, h);
	rc = 0;
fail:
	OPENSSL_free(h);
	BN_free(bn);
	return rc;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value,
		   char err[static BMS_PKI_ERR_MAX])
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (!e) {
		errssl(err, OBJ_nid2sn(nid));
		return -EINVAL;
	}
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (!ok) {
		errssl(err, OBJ_nid2sn(nid));
		return -EIO;
	}
	return 0;
}

/* The role extension: OID 1.3.6.1.4.1.50316.802.1, extnValue = DER UTF8String, non-critical. */
static int add_role_ext(X509 *x, const char *role, char err[static BMS_PKI_ERR_MAX])
{
	int rc = -EIO;
	ASN1_OBJECT *obj = OBJ_txt2obj(BMS_ROLE_OID, 1);
	ASN1_UTF8STRING *s = ASN1_UTF8STRING_new();
	ASN1_OCTET_STRING *der = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e = NULL;
	unsigned char *buf = NULL;
	if (!obj || !s || !der || !ASN1_STRING_set(s, role, (int)strlen(role))) {
		errssl(err, "role extension");
		goto fail;
	}
	int len = i2d_ASN1_UTF8STRING(s, &buf);
	if (len <= 0 || !ASN1_OCTET_STRING_set(der, buf, len)) {
		errssl(err, "role extension");
		goto fail;
	}
	e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, der);
	if (!e || !X509_add_ext(x, e, -1)) {
		errssl(err, "role extension");
		goto fail;
	}
	rc = 0;
fail:
	X509_EXTENSION_free(e);
	OPENSSL_free(buf);
	ASN1_OCTET_STRING_free(der);
	ASN1_UTF8STRING_free(s);
	ASN1_OBJECT_free(obj);
	return rc;
}

int bms_pki_role_of(X509 *cert, char role[static BMS_ROLE_MAX], const char **why)
{
	role[0] = '\0';
	*why = "";
	ASN1_OBJECT *oid = OBJ_txt2obj(BMS_ROLE_OID, 1);
	int rc = 0;
	if (!oid) {
		*why = "out of memory";
		rc = -ENOMEM;
		goto out;
	}
	int idx = X509_get_ext_by_OBJ(cert, oid, -1);
	if (idx < 0)
		goto out;
	/* one role per certificate: a second extension makes the role ambiguous */
	if (X509_get_ext_by_OBJ(cert, oid, idx) >= 0) {
		*why = "the certificate carries more than one role extension";
		rc = -EINVAL;
		goto out;
	}
	const ASN1_OCTET_STRING *der = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
	int len = ASN1_STRING_length(der);
	rc = bms_role_parse(ASN1_STRING_get0_data(der), len > 0 ? (size_t)len : 0, role, why);
	if (rc == 0)
		rc = 1;
out:
	ASN1_OBJECT_free(oid);
	ERR_clear_error();
	return rc;
}

int bms_pki_cert_role(X509 *cert, char buf[static BMS_ROLE_MAX])
{
	const char *why;
	int rc = bms_pki_role_of(cert, buf, &why);
	return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

static int set_name(X509_NAME *n, const char *cn, char err[static BMS_PKI_ERR_MAX])
{
	if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)) {
		errssl(err, "subject name");
		return -EINVAL;
	}
	return 0;
}

static int set_validity(X509 *x, time_t nb, time_t na, char err[static BMS_PKI_ERR_MAX])
{
	if (!ASN1_TIME_set(X509_getm_notBefore(x), nb) || !ASN1_TIME_set(X509_getm_notAfter(x), na)) {
		errssl(err, "validity");
		return -EINVAL;
	}
	return 0;
}

/* Resolves days / explicit bounds into [nb, na]. */
static int resolve_validity(const struct bms_pki_validity *v, int def_days, time_t now, time_t *nb,
			    time_t *na, char err[static BMS_PKI_ERR_MAX])
{
	long long days = v->days > 0 ? v->days : def_days;
	if (v->days < 0 || days > 100 * 366) {
		errf(err, "validity of %d days out of range (1..%d)", v->days, 100 * 366);
		return -EINVAL;
	}
	if (v->not_before && v->not_after) {
		*nb = v->not_before;
		*na = v->not_after;
	} else if (v->not_before) {
		*nb = v->not_before;
		*na = v->not_before + (time_t)(days * 86400);
	} else if (v->not_after) {
		*na = v->not_after;
		*nb = now - BACKDATE_SECONDS;
		if (*nb >= *na)
			*nb = *na - 86400;
	} else {
		*nb = now - BACKDATE_SECONDS;
		*na = now + (time_t)(days * 86400);
	}
	if (*na <= *nb) {
		errf(err, "not-after must be later than not-before");
		return -EINVAL;
	}
	return 0;
}

/* ---- the CA on disk ---- */

struct ca {
	X509 *cert;     /* owned */
	EVP_PKEY *key;  /* owned */
};

static void ca_free(struct ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	ca->cert = NULL;
	ca->key = NULL;
}

static int ca_load(const char *dir, struct ca *ca, char err[static BMS_PKI_ERR_MAX])
{
	char cp[PATH_MAX], kp[PATH_MAX];
	ca->cert = NULL;
	ca->key = NULL;
	if (path_join(cp, sizeof(cp), dir, "ca.crt", NULL) < 0 ||
	    path_join(kp, sizeof(kp), dir, "ca.key", NULL) < 0) {
		errf(err, "path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if (access(cp, F_OK) < 0 || access(kp, F_OK) < 0) {
		errf(err, "no site CA in %s (%s missing): run `bmsgate pki init %s` first", dir,
		     access(cp, F_OK) < 0 ? "ca.crt" : "ca.key", dir);
		return -ENOENT;
	}
	FILE *f = fopen(cp, "r");
	if (f) {
		ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!ca->cert) {
		errssl(err, cp);
		return -EINVAL;
	}
	f = fopen(kp, "r");
	if (f) {
		ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!ca->key) {
		errssl(err, kp);
		ca_free(ca);
		return -EINVAL;
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		errf(err, "%s does not match %s", kp, cp);
		ERR_clear_error();
		ca_free(ca);
		return -EINVAL;
	}
	return 0;
}

/* ---- the index ---- */

static const char *kind_name(enum bms_pki_kind k)
{
	return k == BMS_PKI_GUARD ? "guard" : "controller";
}

static int parse_index_line(char *line, struct bms_pki_entry *e)
{
	char *f[9];
	size_t nf = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, "\t", &save); t && nf < 9; t = strtok_r(NULL, "\t", &save))
		f[nf++] = t;
	if (nf != 9 || strtok_r(NULL, "\t", &save) != NULL)
		return -EINVAL;
	memset(e, 0, sizeof(*e));
	if (strlen(f[0]) >= sizeof(e->serial) || strlen(f[0]) == 0)
		return -EINVAL;
	strcpy(e->serial, f[0]);
	if (strcmp(f[1], "V") != 0 && strcmp(f[1], "R") != 0)
		return -EINVAL;
	e->status = f[1][0];
	if (strcmp(f[2], "guard") == 0)
		e->kind = BMS_PKI_GUARD;
	else if (strcmp(f[2], "controller") == 0)
		e->kind = BMS_PKI_CONTROLLER;
	else
		return -EINVAL;
	if (bms_pki_check_name(f[3]) < 0)
		return -EINVAL;
	strcpy(e->name, f[3]);
	if (strcmp(f[4], "-") != 0) {
		if (bms_pki_check_role(f[4]) < 0)
			return -EINVAL;
		strcpy(e->role, f[4]);
	}
	if (scan_time(f[5], &e->not_before) < 0 || scan_time(f[6], &e->not_after) < 0 ||
	    scan_time(f[7], &e->revoked_at) < 0)
		return -EINVAL;
	e->reason = -1;
	if (strcmp(f[8], "-") != 0 && bms_pki_reason_code(f[8], &e->reason) < 0)
		return -EINVAL;
	if (e->status == 'R' && e->revoked_at == 0)
		return -EINVAL;
	return 0;
}

static int index_read(const char *dir, struct bms_pki_entry **out, size_t *n,
		      char err[static BMS_PKI_ERR_MAX])
{
	char path[PATH_MAX];
	*out = NULL;
	*n = 0;
	if (path_join(path, sizeof(path), dir, "index.tsv", NULL) < 0) {
		errf(err, "path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		errf(err, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	struct bms_pki_entry *v = NULL;
	size_t cap = 0, cnt = 0, lineno = 0;
	char line[INDEX_LINE_MAX];
	int rc = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			errf(err, "%s:%zu: line longer than %d bytes", path, lineno, INDEX_LINE_MAX);
			rc = -EINVAL;
			goto fail;
		}
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (cnt >= INDEX_MAX_LINES) {
			errf(err, "%s: more than %d entries", path, INDEX_MAX_LINES);
			rc = -E2BIG;
			goto fail;
		}
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct bms_pki_entry *nv = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				errf(err, "out of memory");
				rc = -ENOMEM;
				goto fail;
			}
			v = nv;
			cap = ncap;
		}
		if (parse_index_line(line, &v[cnt]) < 0) {
			errf(err, "%s:%zu: malformed index line", path, lineno);
			rc = -EINVAL;
			goto fail;
		}
		cnt++;
	}
	if (ferror(f)) {
		errf(err, "cannot read %s", path);
		rc = -EIO;
		goto fail;
	}
	fclose(f);
	*out = v;
	*n = cnt;
	return 0;
fail:
	fclose(f);
	free(v);
	return rc;
}

static int index_write(const char *dir, const struct bms_pki_entry *v, size_t n,
		       char err[static BMS_PKI_ERR_MAX])
{
	char path[PATH_MAX];
	if (path_join(path, sizeof(path), dir, "index.tsv", NULL) < 0) {
		errf(err, "path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m) {
		errf(err, "out of memory");
		return -ENOMEM;
	}
	fprintf(m, "# serial\tstatus\tkind\tname\trole\tnot_before\tnot_after\trevoked_at\treason\n");
	for (size_t i = 0; i < n; i++) {
		char nb[32], na[32], ra[32];
		fmt_time(v[i].not_before, nb);
		fmt_time(v[i].not_after, na);
		fmt_time(v[i].revoked_at, ra);
		const char *reason = v[i].reason >= 0 ? bms_pki_reason_name(v[i].reason) : NULL;
		fprintf(m, "%s\t%c\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v[i].serial, v[i].status,
			kind_name(v[i].kind), v[i].name, v[i].role[0] ? v[i].role : "-", nb, na, ra,
			reason ? reason : "-");
	}
	if (fclose(m) != 0) {
		free(buf);
		errf(err, "out of memory");
		return -ENOMEM;
	}
	int rc = write_atomic(path, 0644, NO_GROUP, buf, len, err);
	free(buf);
	return rc;
}

/* ---- CRL ---- */

static int read_crlnumber(const char *dir, long *out)
{
	char path[PATH_MAX];
	*out = 0;
	if (path_join(path, sizeof(path), dir, "crlnumber", NULL) < 0)
		return -ENAMETOOLONG;
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	long v = 0;
	int ok = fscanf(f, "%ld", &v);
	fclose(f);
	if (ok != 1 || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

static int add_revoked(X509_CRL *crl, const struct bms_pki_entry *e, char err[static BMS_PKI_ERR_MAX])
{
	int rc = -EIO;
	X509_REVOKED *r = X509_REVOKED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *t = NULL;
	ASN1_ENUMERATED *reason = NULL;
	if (!r || !BN_hex2bn(&bn, e->serial) || !(serial = BN_to_ASN1_INTEGER(bn, NULL)) ||
	    !X509_REVOKED_set_serialNumber(r, serial) || !(t = ASN1_TIME_set(NULL, e->revoked_at)) ||
	    !X509_REVOKED_set_revocationDate(r, t)) {
		errssl(err, "CRL entry");
		goto fail;
	}
	/* RFC 5280 5.3.1: the reason code "unspecified" SHOULD be absent. */
	if (e->reason > 0) {
		reason = ASN1_ENUMERATED_new();
		if (!reason || !ASN1_ENUMERATED_set(reason, e->reason) ||
		    !X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0)) {
			errssl(err, "CRL reason");
			goto fail;
		}
	}
	if (!X509_CRL_add0_revoked(crl, r)) {
		errssl(err, "CRL entry");
		goto fail;
	}
	r = NULL; /* owned by the CRL now */
	rc = 0;
fail:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	X509_REVOKED_free(r);
	return rc;
}

/* Signs and writes crl.pem for the entries given; caller holds the lock. */
static int crl_write(const char *dir, const struct ca *ca, const struct bms_pki_entry *v, size_t n,
		     int crl_days, char err[static BMS_PKI_ERR_MAX])
{
	int rc = -EIO;
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = NULL, *next = NULL;
	ASN1_INTEGER *num = NULL;
	X509_EXTENSION *aki = NULL;
	char path[PATH_MAX], np[PATH_MAX];
	if (crl_days <= 0)
		crl_days = DEFAULT_CRL_DAYS;
	if (crl_days > 3660) {
		errf(err, "CRL validity of %d days out of range (1..3660)", crl_days);
		rc = -EINVAL;
		goto fail;
	}
	long number;
	if (read_crlnumber(dir, &number) < 0) {
		errf(err, "%s/crlnumber is unreadable or malformed", dir);
		rc = -EINVAL;
		goto fail;
	}
	number++;
	time_t now = time(NULL);
	if (!crl || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
	    !(last = ASN1_TIME_set(NULL, now)) ||
	    !(next = ASN1_TIME_set(NULL, now + (time_t)crl_days * 86400)) ||
	    !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next)) {
		errssl(err, "CRL");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].status != 'R')
			continue;
		rc = add_revoked(crl, &v[i], err);
		if (rc < 0)
			goto fail;
		rc = -EIO;
	}
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	if (!(num = ASN1_INTEGER_new()) || !ASN1_INTEGER_set(num, number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) || !aki ||
	    !X509_CRL_add_ext(crl, aki, -1)) {
		errssl(err, "CRL extensions");
		goto fail;
	}
	X509_CRL_sort(crl);
	if (!X509_CRL_sign(crl, ca->key, EVP_sha256())) {
		errssl(err, "CRL signature");
		goto fail;
	}
	if (path_join(path, sizeof(path), dir, "crl.pem", NULL) < 0 ||
	    path_join(np, sizeof(np), dir, "crlnumber", NULL) < 0) {
		errf(err, "path too long: %s", dir);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	char numbuf[32];
	int nl = snprintf(numbuf, sizeof(numbuf), "%ld\n", number);
	rc = write_atomic(np, 0644, NO_GROUP, numbuf, (size_t)nl, err);
	if (rc < 0)
		goto fail;
	rc = write_pem(path, 0644, NO_GROUP, 'r', crl, err);
fail:
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return rc;
}

/* ---- commands ---- */

/* DIR and DIR/issued: 0700, or 0750 with group `gid` when the directory is shared with a
 * service group (the guard's user re-reads its certificate, key, CA and CRL after dropping
 * privileges, so it must be able to reach them). */
static int make_dir(const char *path, gid_t gid, char err[static BMS_PKI_ERR_MAX])
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		errf(err, "cannot create %s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		errf(err, "%s is not a directory", path);
		return -ENOTDIR;
	}
	if (gid != NO_GROUP && chown(path, (uid_t)-1, gid) < 0) {
		int e = errno;
		errf(err, "cannot give %s to group %lu: %s", path, (unsigned long)gid, strerror(e));
		return -e;
	}
	if (chmod(path, gid != NO_GROUP ? 0750 : 0700) < 0) {
		int e = errno;
		errf(err, "cannot chmod %s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

/* --group NAME (or a number) -> gid */
static int group_id(const char *name, gid_t *gid, char err[static BMS_PKI_ERR_MAX])
{
	struct group gr, *res = NULL;
	char buf[4096];
	int e = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
	if (e == 0 && res) {
		*gid = res->gr_gid;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	if (name[0] && *end == '\0' && errno == 0 && v < (unsigned long)NO_GROUP && isdigit((unsigned char)name[0])) {
		*gid = (gid_t)v;
		return 0;
	}
	errf(err, "no group '%s' (create the service user and its group first: adduser --system --group bmsgate)",
	     name);
	return -ENOENT;
}

/* The group DIR is shared with: its group when DIR grants that group r-x (`pki init --group`). */
static gid_t shared_group(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) < 0 || (st.st_mode & 0050) != 0050)
		return NO_GROUP;
	return st.st_gid;
}

int bms_pki_init(const char *dir, const char *ca_name, const struct bms_pki_key_opts *key, int days,
		 const char *group, char err[static BMS_PKI_ERR_MAX])
{
	int rc, lockfd = -1;
	gid_t gid = NO_GROUP;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	char path[PATH_MAX], sub[PATH_MAX];
	err[0] = '\0';
	if (!ca_name || !*ca_name)
		ca_name = "bmsgate site CA";
	if (strlen(ca_name) > 64) {
		errf(err, "CA name '%s' longer than 64 characters", ca_name);
		return -EINVAL;
	}
	if (days < 0 || days > 100 * 366) {
		errf(err, "validity of %d days out of range (1..%d)", days, 100 * 366);
		return -EINVAL;
	}
	if (group && (rc = group_id(group, &gid, err)) < 0)
		return rc;
	/* Created if absent, modes left alone until it is known to hold no CA: a mistaken `init`
	 * on a live site must not take the guard's access away. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		errf(err, "cannot create %s: %s", dir, strerror(e));
		return -e;
	}
	rc = lock_dir(dir, &lockfd, err);
	if (rc < 0)
		return rc;
	if (path_join(path, sizeof(path), dir, "ca.key", NULL) < 0 ||
	    path_join(sub, sizeof(sub), dir, "issued", NULL) < 0) {
		errf(err, "path too long: %s", dir);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	if (access(path, F_OK) == 0) {
		errf(err, "%s already holds a site CA (%s exists); refusing to overwrite it", dir, path);
		rc = -EEXIST;
		goto fail;
	}
	/* shared last, once it is known to hold no other CA */
	if ((rc = make_dir(sub, gid, err)) < 0 || (rc = make_dir(dir, gid, err)) < 0)
		goto fail;
	rc = -EIO;
	pk = gen_key(key, err);
	if (!pk)
		goto fail;
	x = X509_new();
	time_t now = time(NULL);
	char serial[80];
	if (!x || !X509_set_version(x, X509_VERSION_3)) {
		errssl(err, "X509_new");
		goto fail;
	}
	if ((rc = new_serial(x, serial, err)) < 0 ||
	    (rc = set_name(X509_get_subject_name(x), ca_name, err)) < 0 ||
	    (rc = set_name(X509_get_issuer_name(x), ca_name, err)) < 0 ||
	    (rc = set_validity(x, now - BACKDATE_SECONDS,
			       now + (time_t)(days ? days : DEFAULT_CA_DAYS) * 86400, err)) < 0)
		goto fail;
	rc = -EIO;
	if (!X509_set_pubkey(x, pk)) {
		errssl(err, "public key");
		goto fail;
	}
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err)) < 0 ||
	    (rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", err)) < 0 ||
	    (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err)) < 0 ||
	    (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err)) < 0)
		goto fail;
	rc = -EIO;
	if (!X509_sign(x, pk, EVP_sha256())) {
		errssl(err, "CA signature");
		goto fail;
	}
	/* Key first: a crash between the two leaves no certificate without its key. */
	if ((rc = write_pem(path, 0600, NO_GROUP, 'k', pk, err)) < 0) /* the CA key: root only, always */
		goto fail;
	if (path_join(path, sizeof(path), dir, "ca.crt", NULL) < 0) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	if ((rc = write_pem(path, 0644, NO_GROUP, 'c', x, err)) < 0)
		goto fail;
	if ((rc = index_write(dir, NULL, 0, err)) < 0)
		goto fail;
	struct ca ca = { x, pk };
	rc = crl_write(dir, &ca, NULL, 0, 0, err);
fail:
	X509_free(x);
	EVP_PKEY_free(pk);
	unlock_dir(lockfd);
	return rc;
}

static int check_san(const struct bms_pki_issue_opts *o, char err[static BMS_PKI_ERR_MAX])
{
	if (o->ndns > BMS_PKI_MAX_SAN || o->nip > BMS_PKI_MAX_SAN) {
		errf(err, "at most %d --dns and %d --ip entries", BMS_PKI_MAX_SAN, BMS_PKI_MAX_SAN);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->ndns; i++) {
		const char *d = o->dns[i];
		size_t n = strlen(d);
		bool ok = n > 0 && n <= 253;
		for (size_t k = 0; ok && k < n; k++) {
			unsigned char c = (unsigned char)d[k];
			ok = isalnum(c) || c == '.' || c == '-' || (c == '*' && k == 0);
		}
		if (!ok) {
			errf(err, "bad DNS name '%s' (letters, digits, '.', '-')", d);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < o->nip; i++) {
		unsigned char a[16];
		if (inet_pton(AF_INET, o->ip[i], a) != 1 && inet_pton(AF_INET6, o->ip[i], a) != 1) {
			errf(err, "bad IP address '%s'", o->ip[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/* subjectAltName value: the name itself when it is a valid DNS label sequence, then the rest.
 * All parts were validated, so no ',' or ':' can smuggle in another entry. */
static int san_string(const struct bms_pki_issue_opts *o, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	bool name_is_dns = strchr(o->name, '_') == NULL;
	for (size_t i = 0; i < o->ndns + o->nip + 1; i++) {
		const char *pre, *val;
		if (i == 0) {
			if (!name_is_dns)
				continue;
			pre = "DNS:";
			val = o->name;
		} else if (i <= o->ndns) {
			pre = "DNS:";
			val = o->dns[i - 1];
		} else {
			pre = "IP:";
			val = o->ip[i - 1 - o->ndns];
		}
		int n = snprintf(buf + off, len - off, "%s%s%s", off ? "," : "", pre, val);
		if (n < 0 || (size_t)n >= len - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	return off ? 0 : -ENOENT;
}

int bms_pki_issue(const char *dir, const struct bms_pki_issue_opts *o, struct bms_pki_entry *out,
		  char err[static BMS_PKI_ERR_MAX])
{
	int rc, lockfd = -1;
	struct ca ca = { NULL, NULL };
	struct bms_pki_entry *v = NULL, *nv;
	size_t n = 0;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	char cp[PATH_MAX], kp[PATH_MAX], san[4096];
	err[0] = '\0';
	if (bms_pki_check_name(o->name) < 0) {
		errf(err, "bad certificate name '%s' (1..%d of letters, digits, '.', '-', '_'; not starting with '.' or '-')",
		     o->name, BMS_PKI_NAME_MAX);
		return -EINVAL;
	}
	if (o->role && bms_pki_check_role(o->role) < 0) {
		errf(err, "bad role '%s' (1..%d of letters, digits, '.', '-', '_', ':')", o->role,
		     BMS_ROLE_LEN);
		return -EINVAL;
	}
	if (o->kind == BMS_PKI_GUARD && o->role) {
		errf(err, "a guard certificate carries no role (--role is for --controller)");
		return -EINVAL;
	}
	gid_t gid = NO_GROUP;
	if (o->group && o->kind != BMS_PKI_GUARD) {
		errf(err, "--group is for --guard: a controller's key goes to another machine and stays owner-only");
		return -EINVAL;
	}
	if (o->group && (rc = group_id(o->group, &gid, err)) < 0)
		return rc;
	if ((rc = check_san(o, err)) < 0)
		return rc;
	time_t now = time(NULL), nb, na;
	if ((rc = resolve_validity(&o->validity, DEFAULT_CERT_DAYS, now, &nb, &na, err)) < 0)
		return rc;
	if ((rc = ca_load(dir, &ca, err)) < 0)
		return rc;
	if ((rc = lock_dir(dir, &lockfd, err)) < 0)
		goto fail;
	if ((rc = index_read(dir, &v, &n, err)) < 0)
		goto fail;
	/* A guard key's group: --group, else the group DIR is shared with (pki init --group). */
	gid_t dgid = shared_group(dir);
	if (gid != NO_GROUP && dgid != NO_GROUP && gid != dgid) {
		errf(err, "%s is shared with group %lu, not '%s': one PKI directory serves one service group", dir,
		     (unsigned long)dgid, o->group);
		rc = -EINVAL;
		goto fail;
	}
	if (gid == NO_GROUP && o->kind == BMS_PKI_GUARD)
		gid = dgid;
	if (o->kind == BMS_PKI_GUARD && gid != NO_GROUP) {
		char sub[PATH_MAX];
		if (path_join(sub, sizeof(sub), dir, "issued", NULL) < 0) {
			errf(err, "path too long: %s", dir);
			rc = -ENAMETOOLONG;
			goto fail;
		}
		if ((rc = make_dir(dir, gid, err)) < 0 || (rc = make_dir(sub, gid, err)) < 0)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, o->name) == 0 && v[i].status == 'V') {
			errf(err, "a certificate named '%s' already exists (serial %s); revoke it first to reissue",
			     o->name, v[i].serial);
			rc = -EEXIST;
			goto fail;
		}
	}
	rc = -EIO;
	if (!(pk = gen_key(&o->key, err)))
		goto fail;
	struct bms_pki_entry e;
	memset(&e, 0, sizeof(e));
	if (!(x = X509_new()) || !X509_set_version(x, X509_VERSION_3)) {
		errssl(err, "X509_new");
		goto fail;
	}
	if ((rc = new_serial(x, e.serial, err)) < 0 ||
	    (rc = set_name(X509_get_subject_name(x), o->name, err)) < 0 ||
	    (rc = set_validity(x, nb, na, err)) < 0)
		goto fail;
	rc = -EIO;
	if (!X509_set_issuer_name(x, X509_get_subject_name(ca.cert)) || !X509_set_pubkey(x, pk)) {
		errssl(err, "certificate");
		goto fail;
	}
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca.cert, x, NULL, NULL, 0);
	bool rsa = o->key.type == BMS_PKI_KEY_RSA;
	if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", err)) < 0 ||
	    (rc = add_ext(x, &ctx, NID_key_usage,
			  rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature",
			  err)) < 0 ||
	    (rc = add_ext(x, &ctx, NID_ext_key_usage,
			  o->kind == BMS_PKI_GUARD ? "serverAuth" : "clientAuth", err)) < 0 ||
	    (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err)) < 0 ||
	    (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err)) < 0)
		goto fail;
	if (o->kind == BMS_PKI_GUARD || o->ndns || o->nip) {
		rc = san_string(o, san, sizeof(san));
		if (rc == -ENAMETOOLONG) {
			errf(err, "subjectAltName too long");
			goto fail;
		}
		if (rc == 0 && (rc = add_ext(x, &ctx, NID_subject_alt_name, san, err)) < 0)
			goto fail;
	}
	if (o->kind == BMS_PKI_CONTROLLER && o->role && (rc = add_role_ext(x, o->role, err)) < 0)
		goto fail;
	rc = -EIO;
	if (!X509_sign(x, ca.key, EVP_sha256())) {
		errssl(err, "certificate signature");
		goto fail;
	}
	e.status = 'V';
	e.kind = o->kind;
	strcpy(e.name, o->name);
	if (o->role)
		strcpy(e.role, o->role);
	e.not_before = nb;
	e.not_after = na;
	e.reason = -1;
	if (path_join(cp, sizeof(cp), dir, "issued/", o->name) < 0 ||
	    path_join(kp, sizeof(kp), dir, "issued/", o->name) < 0 ||
	    strlen(cp) + 5 > sizeof(cp)) {
		errf(err, "path too long: %s", dir);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	strcat(cp, ".crt");
	strcat(kp, ".key");
	/* A revoked predecessor's files are kept beside, named by its serial. */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, o->name) != 0)
			continue;
		char old[PATH_MAX + 100];
		snprintf(old, sizeof(old), "%s.%s", cp, v[i].serial);
		(void)rename(cp, old);
		snprintf(old, sizeof(old), "%s.%s", kp, v[i].serial);
		(void)rename(kp, old);
	}
	/* A guard's key is read again by the guard after it drops to its service user: group read
	 * for the directory's group. A controller's key goes to another machine: owner only. */
	bool shared = o->kind == BMS_PKI_GUARD && gid != NO_GROUP;
	if ((rc = write_pem(kp, shared ? 0640 : 0600, shared ? gid : NO_GROUP, 'k', pk, err)) < 0 ||
	    (rc = write_pem(cp, 0644, NO_GROUP, 'c', x, err)) < 0)
		goto fail;
	if (!(nv = realloc(v, (n + 1) * sizeof(*v)))) {
		errf(err, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	v = nv;
	v[n++] = e;
	if ((rc = index_write(dir, v, n, err)) < 0)
		goto fail;
	if (out)
		*out = e;
	rc = 0;
fail:
	free(v);
	X509_free(x);
	EVP_PKEY_free(pk);
	ca_free(&ca);
	unlock_dir(lockfd);
	return rc;
}

/* Serial comparison by value, so "0x00ab" and "AB" name the same certificate. */
static bool serial_eq(const char *a, const char *b)
{
	BIGNUM *x = NULL, *y = NULL;
	if (strncmp(a, "0x", 2) == 0 || strncmp(a, "0X", 2) == 0)
		a += 2;
	size_t la = strlen(a);
	if (la == 0 || la > 64 || strspn(a, "0123456789abcdefABCDEF") != la)
		return false;
	bool eq = BN_hex2bn(&x, a) && BN_hex2bn(&y, b) && BN_cmp(x, y) == 0;
	BN_free(x);
	BN_free(y);
	return eq;
}

int bms_pki_revoke(const char *dir, const char *what, int reason, struct bms_pki_entry *out,
		   char err[static BMS_PKI_ERR_MAX])
{
	int rc, lockfd = -1;
	struct ca ca = { NULL, NULL };
	struct bms_pki_entry *v = NULL;
	size_t n = 0;
	err[0] = '\0';
	if (!bms_pki_reason_name(reason)) {
		errf(err, "unknown revocation reason code %d", reason);
		return -EINVAL;
	}
	if ((rc = ca_load(dir, &ca, err)) < 0)
		return rc;
	if ((rc = lock_dir(dir, &lockfd, err)) < 0)
		goto fail;
	if ((rc = index_read(dir, &v, &n, err)) < 0)
		goto fail;
	/* A name means its current (valid) certificate; a serial means exactly that one. */
	ssize_t hit = -1;
	bool already = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, what) == 0) {
			if (v[i].status == 'V')
				hit = (ssize_t)i;
			else
				already = true;
		}
	}
	if (hit < 0) {
		for (size_t i = 0; i < n; i++) {
			if (serial_eq(what, v[i].serial)) {
				if (v[i].status == 'V')
					hit = (ssize_t)i;
				else
					already = true;
			}
		}
	}
	if (hit < 0) {
		if (already)
			errf(err, "'%s' is already revoked", what);
		else
			errf(err, "no certificate named '%s' or with that serial in %s (see `bmsgate pki list %s`)",
			     what, dir, dir);
		rc = already ? -EALREADY : -ENOENT;
		goto fail;
	}
	v[hit].status = 'R';
	v[hit].revoked_at = time(NULL);
	v[hit].reason = reason;
	/* CRL first: if writing it fails the index still says valid and a retry redoes both. */
	if ((rc = crl_write(dir, &ca, v, n, 0, err)) < 0)
		goto fail;
	if ((rc = index_write(dir, v, n, err)) < 0)
		goto fail;
	if (out)
		*out = v[hit];
fail:
	free(v);
	ca_free(&ca);
	unlock_dir(lockfd);
	return rc;
}

int bms_pki_crl(const char *dir, int crl_days, char err[static BMS_PKI_ERR_MAX])
{
	int rc, lockfd = -1;
	struct ca ca = { NULL, NULL };
	struct bms_pki_entry *v = NULL;
	size_t n = 0;
	err[0] = '\0';
	if ((rc = ca_load(dir, &ca, err)) < 0)
		return rc;
	if ((rc = lock_dir(dir, &lockfd, err)) < 0)
		goto fail;
	if ((rc = index_read(dir, &v, &n, err)) < 0)
		goto fail;
	rc = crl_write(dir, &ca, v, n, crl_days, err);
fail:
	free(v);
	ca_free(&ca);
	unlock_dir(lockfd);
	return rc;
}

int bms_pki_list(const char *dir, struct bms_pki_entry **out, size_t *n,
		 char err[static BMS_PKI_ERR_MAX])
{
	char path[PATH_MAX];
	err[0] = '\0';
	if (path_join(path, sizeof(path), dir, "ca.crt", NULL) < 0) {
		errf(err, "path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if (access(path, F_OK) < 0) {
		errf(err, "no site CA in %s (ca.crt missing): run `bmsgate pki init %s` first", dir, dir);
		return -ENOENT;
	}
	return index_read(dir, out, n, err);
}
