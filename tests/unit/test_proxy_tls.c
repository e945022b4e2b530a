/* tests/unit/test_proxy_tls.c: identity from a certificate: the Modbus/TCP Security
 * role extension (present, absent, wrong type, repeated, oversized), the subject in
 * RFC 2253 form and the SHA-256 fingerprint; and transaction-id remapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "parsers/role.h"
#include "pki/pki.h"
#include "proxy/config.h"
#include "proxy/tls.h"
#include "proxy/txmap.h"

static EVP_PKEY *key;

static int setup(void **state)
{
	(void)state;
	key = EVP_EC_gen("P-256");
	return key ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

/* Adds the role OID extension holding `der` (already DER-encoded value) */
static void add_role_der(X509 *c, const unsigned char *der, int len)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(BMS_ROLE_OID, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	assert_non_null(oid);
	assert_non_null(os);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, len), 1);
	X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(c, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
}

static void add_role_string(X509 *c, int type, const char *role)
{
	ASN1_STRING *s = ASN1_STRING_type_new(type);
	unsigned char *der = NULL;
	assert_int_equal(ASN1_STRING_set(s, role, (int)strlen(role)), 1);
	ASN1_TYPE *t = ASN1_TYPE_new();
	assert_non_null(t);
	ASN1_TYPE_set(t, type, s); /* takes s */
	int len = i2d_ASN1_TYPE(t, &der);
	assert_true(len > 0);
	add_role_der(c, der, len);
	OPENSSL_free(der);
	ASN1_TYPE_free(t);
}

static X509 *make_cert(const char *cn)
{
	X509 *c = X509_new();
	assert_non_null(c);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 7);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_NAME *n = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Plant, North", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, n);
	X509_set_pubkey(c, key);
	return c;
}

static void sign(X509 *c)
{
	assert_true(X509_sign(c, key, EVP_sha256()) > 0);
}

/* The guard's contexts release record buffers when a connection is idle (the memory of
 * 1,000 idle connections depends on it); the tunnel's keep theirs (no allocation per record). */
static void ctx_buffer_modes(void **state)
{
	(void)state;
	char dir[] = "/tmp/bms-tlsctx.XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct proxy_config *cfg = calloc(1, sizeof(*cfg));
	assert_non_null(cfg);
	snprintf(cfg->certificate, sizeof(cfg->certificate), "%s/c.pem", dir);
	snprintf(cfg->key, sizeof(cfg->key), "%s/k.pem", dir);
	snprintf(cfg->ca, sizeof(cfg->ca), "%s/c.pem", dir);
	X509 *c = make_cert("ctx-test");
	assert_true(X509_sign(c, key, EVP_sha256()) > 0);
	FILE *f = fopen(cfg->certificate, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, c), 1);
	fclose(f);
	f = fopen(cfg->key, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	char why[256] = "";
	SSL_CTX *server = NULL, *client = NULL;
	assert_int_equal(proxy_tls_ctx_new(cfg, true, &server, why, sizeof(why)), 0);
	assert_int_equal(proxy_tls_ctx_new(cfg, false, &client, why, sizeof(why)), 0);
	assert_true(SSL_CTX_get_mode(server) & SSL_MODE_RELEASE_BUFFERS);
	assert_false(SSL_CTX_get_mode(client) & SSL_MODE_RELEASE_BUFFERS);
	assert_int_equal(SSL_CTX_get_min_proto_version(server), TLS1_2_VERSION);
	SSL_CTX_free(server);
	SSL_CTX_free(client);
	X509_free(c);
	unlink(cfg->certificate);
	unlink(cfg->key);
	rmdir(dir);
	free(cfg);
}

static void role_present(void **state)
{
	(void)state;
	X509 *c = make_cert("ctl-1");
	add_role_string(c, V_ASN1_UTF8STRING, "operator");
	sign(c);
	char role[BMS_ROLE_MAX], note[192];
	const char *why;
	assert_int_equal(bms_pki_role_of(c, role, &why), 1);
	assert_string_equal(role, "operator");

	struct bms_identity id;
	memset(&id, 0, sizeof(id));
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), 0);
	assert_true(id.authenticated);
	assert_string_equal(id.role, "operator");
	/* RFC 2253: most specific first, separators escaped */
	assert_string_equal(id.subject, "CN=ctl-1,O=Plant\\, North");
	unsigned char fp[32];
	unsigned int n = 0;
	assert_int_equal(X509_digest(c, EVP_sha256(), fp, &n), 1);
	assert_true(id.has_fingerprint);
	assert_memory_equal(id.fingerprint, fp, 32);
	X509_free(c);
}

static void role_absent(void **state)
{
	(void)state;
	X509 *c = make_cert("ctl-2");
	sign(c);
	char role[BMS_ROLE_MAX] = "stale", note[192];
	const char *why;
	assert_int_equal(bms_pki_role_of(c, role, &why), 0);
	assert_string_equal(role, "");
	struct bms_identity id;
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), 0);
	assert_string_equal(id.role, "");
	X509_free(c);
}

static void role_wrong_type_is_no_role(void **state)
{
	(void)state;
	X509 *c = make_cert("ctl-3");
	add_role_string(c, V_ASN1_IA5STRING, "operator");
	sign(c);
	char role[BMS_ROLE_MAX], note[192];
	const char *why;
	assert_true(bms_pki_role_of(c, role, &why) < 0);
	struct bms_identity id;
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), 0);
	assert_string_equal(id.role, "");
	/* the accepted connection's record says why the role was ignored */
	assert_string_equal(note, "role extension ignored (no role): an IA5String, not a UTF8String");
	X509_free(c);
}

static void role_repeated_or_bad_refused(void **state)
{
	(void)state;
	char role[BMS_ROLE_MAX];
	const char *why;
	X509 *c = make_cert("ctl-4");
	add_role_string(c, V_ASN1_UTF8STRING, "operator");
	add_role_string(c, V_ASN1_UTF8STRING, "admin");
	sign(c);
	assert_true(bms_pki_role_of(c, role, &why) < 0);
	X509_free(c);

	char longrole[BMS_ROLE_MAX + 10];
	memset(longrole, 'r', sizeof(longrole) - 1);
	longrole[sizeof(longrole) - 1] = '\0';
	c = make_cert("ctl-5");
	add_role_string(c, V_ASN1_UTF8STRING, longrole);
	sign(c);
	assert_true(bms_pki_role_of(c, role, &why) < 0);
	X509_free(c);

	c = make_cert("ctl-6");
	add_role_string(c, V_ASN1_UTF8STRING, "op\nerator");
	sign(c);
	assert_true(bms_pki_role_of(c, role, &why) < 0);
	X509_free(c);

	/* a UTF8String header claiming more bytes than there are */
	static const unsigned char trunc[] = { 0x0c, 0x10, 'o', 'p' };
	c = make_cert("ctl-7");
	add_role_der(c, trunc, sizeof(trunc));
	sign(c);
	assert_true(bms_pki_role_of(c, role, &why) < 0);
	X509_free(c);

	/* trailing bytes after the string */
	static const unsigned char trail[] = { 0x0c, 0x02, 'o', 'p', 0x00 };
	c = make_cert("ctl-8");
	add_role_der(c, trail, sizeof(trail));
	sign(c);
	assert_true(bms_pki_role_of(c, role, &why) < 0);
	X509_free(c);
}

/* ---- the role at its limit, and malformed encodings (docs/pki.md says what each means) ---- */

static void role_limit_through_certificate(void **state)
{
	(void)state;
	char role[BMS_ROLE_LEN + 2], note[192];
	struct bms_identity id;
	memset(role, 'r', BMS_ROLE_LEN);
	role[BMS_ROLE_LEN] = '\0';
	X509 *c = make_cert("ctl-64");
	add_role_string(c, V_ASN1_UTF8STRING, role); /* what `bmsgate pki issue --role` allows */
	sign(c);
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), 0);
	assert_string_equal(id.role, role);
	assert_string_equal(note, "");
	X509_free(c);
	strcat(role, "r");
	c = make_cert("ctl-65");
	add_role_string(c, V_ASN1_UTF8STRING, role);
	sign(c);
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), 0);
	assert_string_equal(id.role, "");
	assert_true(id.authenticated);
	assert_string_equal(note, "role extension ignored (no role): the role is longer than 64 bytes");
	X509_free(c);
}

static void role_not_utf8_is_no_role(void **state)
{
	(void)state;
	char note[192];
	struct bms_identity id;
	/* 0xff is never UTF-8: it used to be taken as part of the role */
	static const unsigned char bad[] = { 0x0c, 0x09, 'o', 'p', 'e', 'r', 'a', 't', 'o', 'r', 0xff };
	X509 *c = make_cert("ctl-ff");
	add_role_der(c, bad, sizeof(bad));
	sign(c);
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), 0);
	assert_string_equal(id.role, "");
	assert_string_equal(note, "role extension ignored (no role): the role is not valid UTF-8");
	X509_free(c);
	/* well-formed UTF-8 beyond ASCII is a role, byte for byte */
	static const unsigned char good[] = { 0x0c, 0x0a, 'B', 'e', 'd', 'i', 'e', 'n', 'e', 'r', 0xc3, 0xbc };
	c = make_cert("ctl-u");
	add_role_der(c, good, sizeof(good));
	sign(c);
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), 0);
	assert_string_equal(id.role, "Bediener\xc3\xbc");
	assert_string_equal(note, "");
	X509_free(c);
}

struct role_vec {
	const char *name;
	const char *der; /* hex */
	const char *role; /* NULL: no role */
	const char *why;
};

static void role_value_vectors(void **state)
{
	(void)state;
	static const struct role_vec v[] = {
		{ "operator", "0c086f70657261746f72", "operator", NULL },
		{ "empty value", "", NULL, "the extension value is empty or cut short" },
		{ "tag only", "0c", NULL, "the extension value is empty or cut short" },
		{ "empty string", "0c00", NULL, "the role is empty" },
		{ "PrintableString", "13026f70", NULL, "a PrintableString, not a UTF8String" },
		{ "IA5String", "16026f70", NULL, "an IA5String, not a UTF8String" },
		{ "BMPString", "1e02006f", NULL, "a BMPString, not a UTF8String" },
		{ "OCTET STRING", "04026f70", NULL, "an OCTET STRING, not a UTF8String" },
		{ "INTEGER", "020101", NULL, "not a UTF8String" },
		{ "constructed (BER)", "2c040c026f70", NULL, "a constructed UTF8String (BER, not DER)" },
		{ "indefinite length", "0c806f700000", NULL, "the UTF8String's length is not in DER form" },
		{ "long form for a short length", "0c81026f70", NULL, "the UTF8String's length is not in DER form" },
		{ "long form with a leading zero", "0c8200026f70", NULL, "the UTF8String's length is not in DER form" },
		{ "cut short", "0c106f70", NULL, "the UTF8String is cut short" },
		{ "trailing byte", "0c026f7000", NULL, "bytes follow the UTF8String" },
		{ "second string after it", "0c026f700c0161", NULL, "bytes follow the UTF8String" },
		{ "embedded NUL", "0c036f0070", NULL, "the role holds a NUL byte" },
		{ "NUL at the end", "0c036f7000", NULL, "the role holds a NUL byte" },
		{ "newline", "0c036f0a70", NULL, "the role holds a control character" },
		{ "DEL", "0c036f7f70", NULL, "the role holds a control character" },
		{ "C1 control U+0085", "0c03c2856f", NULL, "the role holds a control character" },
		{ "lone continuation byte", "0c026f80", NULL, "the role is not valid UTF-8" },
		{ "overlong '/'", "0c02c0af", NULL, "the role is not valid UTF-8" },
		{ "overlong 3-byte", "0c03e080af", NULL, "the role is not valid UTF-8" },
		{ "surrogate U+D800", "0c03eda080", NULL, "the role is not valid UTF-8" },
		{ "beyond U+10FFFF", "0c04f4908080", NULL, "the role is not valid UTF-8" },
		{ "cut sequence", "0c026fe2", NULL, "the role is not valid UTF-8" },
		{ "U+FFFD itself is a character", "0c03efbfbd", "\xef\xbf\xbd", NULL },
		{ "4-byte U+1F600", "0c04f09f9880", "\xf0\x9f\x98\x80", NULL },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t der[300];
		size_t n = strlen(v[i].der) / 2;
		for (size_t k = 0; k < n; k++) {
			unsigned b;
			assert_int_equal(sscanf(v[i].der + 2 * k, "%2x", &b), 1);
			der[k] = (uint8_t)b;
		}
		char role[BMS_ROLE_MAX] = "stale";
		const char *why = "unset";
		int rc = bms_role_parse(der, n, role, &why);
		if (v[i].role) {
			if (rc != 0)
				fail_msg("%s: refused: %s", v[i].name, why);
			assert_string_equal(role, v[i].role);
		} else {
			if (rc != -EINVAL)
				fail_msg("%s: accepted as '%s'", v[i].name, role);
			assert_string_equal(role, "");
			if (strcmp(why, v[i].why) != 0)
				fail_msg("%s: why '%s', want '%s'", v[i].name, why, v[i].why);
		}
	}
	/* the length edge in long form: 0x81 0x40 would be 64 in non-minimal form; 64 bytes in short form pass */
	uint8_t der[2 + BMS_ROLE_LEN + 1];
	char role[BMS_ROLE_MAX];
	const char *why;
	der[0] = 0x0c;
	der[1] = BMS_ROLE_LEN;
	memset(der + 2, 'a', BMS_ROLE_LEN + 1);
	assert_int_equal(bms_role_parse(der, 2 + BMS_ROLE_LEN, role, &why), 0);
	assert_int_equal(strlen(role), BMS_ROLE_LEN);
	der[1] = BMS_ROLE_LEN + 1;
	assert_int_equal(bms_role_parse(der, 2 + BMS_ROLE_LEN + 1, role, &why), -EINVAL);
	assert_string_equal(why, "the role is longer than 64 bytes");
}

/* ---- the subject: whole, or the connection is refused ---- */

/* A certificate whose subject prints (RFC 2253) to exactly `len` bytes, into expect:
 * "CN=ctl,OU=uuu...,OU=...,O=Plant\, North" and ",C=ZZ" after it when with_c. RFC 5280's
 * upper bounds keep each attribute at 64 characters, so the length is made of several OUs. */
static X509 *cert_subject_len(size_t len, bool with_c, char *expect, size_t explen)
{
	static const char tail[] = ",O=Plant\\, North";
	size_t r = len - 6 - (sizeof(tail) - 1); /* after "CN=ctl" and the O */
	size_t parts[16], np = 0;
	while (r > 0) {
		assert_true(r >= 5 && np < 16);
		size_t k = r - 4 > 60 ? 60 : r - 4;
		if (r - 4 - k > 0 && r - 4 - k < 5)
			k -= 5;
		parts[np++] = k;
		r -= 4 + k;
	}
	X509 *c = X509_new();
	assert_non_null(c);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 9);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_NAME *nm = X509_get_subject_name(c);
	if (with_c)
		assert_int_equal(X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC, (const unsigned char *)"ZZ", -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"Plant, North", -1, -1, 0), 1);
	char ou[64];
	/* added from the last part printed to the first, so that the printed order is parts[0..] */
	for (size_t i = np; i-- > 0;) {
		memset(ou, (int)('a' + i), parts[i]);
		ou[parts[i]] = '\0';
		assert_int_equal(X509_NAME_add_entry_by_txt(nm, "OU", MBSTRING_ASC, (const unsigned char *)ou, -1, -1, 0), 1);
	}
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"ctl", -1, -1, 0), 1);
	X509_set_issuer_name(c, nm);
	X509_set_pubkey(c, key);
	sign(c);
	size_t off = (size_t)snprintf(expect, explen, "CN=ctl");
	for (size_t i = 0; i < np; i++) {
		off += (size_t)snprintf(expect + off, explen - off, ",OU=");
		memset(expect + off, (int)('a' + i), parts[i]);
		off += parts[i];
		expect[off] = '\0';
	}
	snprintf(expect + off, explen - off, "%s%s", tail, with_c ? ",C=ZZ" : "");
	assert_int_equal(strlen(expect), len + (with_c ? 5 : 0));
	return c;
}

static void subject_at_the_limit_is_whole(void **state)
{
	(void)state;
	char want[600], note[192];
	struct bms_identity id;
	X509 *c = cert_subject_len(BMS_SUBJECT_LEN, false, want, sizeof(want));
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), 0);
	assert_true(id.authenticated);
	assert_string_equal(id.subject, want);
	assert_int_equal(strlen(id.subject), BMS_SUBJECT_LEN);
	X509_free(c);
}

static void subject_over_the_limit_is_refused(void **state)
{
	(void)state;
	char want[600], note[192];
	struct bms_identity id;
	X509 *c = cert_subject_len(BMS_SUBJECT_LEN + 1, false, want, sizeof(want));
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), -E2BIG);
	assert_false(id.authenticated);
	assert_string_equal(id.role, "");
	/* the refusal record names the certificate by its fingerprint */
	unsigned char fp[32];
	unsigned int fpn = 0;
	assert_int_equal(X509_digest(c, EVP_sha256(), fp, &fpn), 1);
	assert_true(id.has_fingerprint);
	assert_memory_equal(id.fingerprint, fp, 32);
	assert_string_equal(note, "certificate subject of 256 bytes is longer than the 255 a guard holds");
	/* the refusal record names its start, marked as cut (U+2026), never a prefix that reads whole */
	size_t n = strlen(id.subject);
	assert_true(n > 3 && n <= BMS_SUBJECT_LEN);
	assert_memory_equal(id.subject + n - 3, "\xe2\x80\xa6", 3);
	assert_memory_equal(id.subject, want, n - 3);
	X509_free(c);
}

/* The attack: an allowed subject of 255 bytes plus ",C=ZZ" used to be cut back to the allowed one. */
static void subject_plus_suffix_is_not_the_allowed_one(void **state)
{
	(void)state;
	char allowed[600], longer[600], note[192];
	struct bms_identity id;
	X509 *a = cert_subject_len(BMS_SUBJECT_LEN, false, allowed, sizeof(allowed));
	X509 *c = cert_subject_len(BMS_SUBJECT_LEN, true, longer, sizeof(longer));
	assert_memory_equal(longer, allowed, BMS_SUBJECT_LEN);
	assert_int_equal(proxy_tls_identity(c, &id, note, sizeof(note)), -E2BIG);
	assert_false(id.authenticated);
	assert_string_not_equal(id.subject, allowed);
	assert_non_null(strstr(note, "260 bytes"));
	X509_free(a);
	X509_free(c);
}

static void subject_helper_edges(void **state)
{
	(void)state;
	char want[600], out[BMS_SUBJECT_MAX];
	size_t full = 0;
	X509 *c = cert_subject_len(BMS_SUBJECT_LEN, false, want, sizeof(want));
	assert_int_equal(proxy_tls_subject(X509_get_subject_name(c), out, &full), 0);
	assert_int_equal(full, BMS_SUBJECT_LEN);
	assert_string_equal(out, want);
	X509_free(c);
	c = cert_subject_len(BMS_SUBJECT_LEN + 40, false, want, sizeof(want));
	assert_int_equal(proxy_tls_subject(X509_get_subject_name(c), out, &full), -E2BIG);
	assert_int_equal(full, BMS_SUBJECT_LEN + 40);
	assert_string_equal(out, "");
	X509_free(c);
	/* non-ASCII is printed escaped, so a whole subject is ASCII (what the policy warning relies on) */
	c = X509_new();
	X509_NAME *nm = X509_get_subject_name(c);
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)"M\xc3\xbcller", -1, -1, 0), 1);
	assert_int_equal(proxy_tls_subject(nm, out, &full), 0);
	assert_string_equal(out, "CN=M\\C3\\BCller");
	X509_free(c);
}

static void txmap_remaps_and_bounds(void **state)
{
	(void)state;
	struct proxy_txmap m;
	proxy_txmap_init(&m, 3);
	/* three controllers all using transaction id 1 */
	struct proxy_tx *a = proxy_txmap_alloc(&m, 1);
	struct proxy_tx *b = proxy_txmap_alloc(&m, 1);
	struct proxy_tx *c = proxy_txmap_alloc(&m, 1);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_not_equal(a->up_tid, b->up_tid);
	assert_int_not_equal(b->up_tid, c->up_tid);
	assert_int_not_equal(a->up_tid, c->up_tid);
	assert_int_equal(a->orig_tid, 1);
	/* full: the device's max in flight is a hard cap */
	assert_null(proxy_txmap_alloc(&m, 9));
	assert_ptr_equal(proxy_txmap_find(&m, b->up_tid), b);
	uint16_t bt = b->up_tid;
	proxy_txmap_release(&m, b);
	assert_null(proxy_txmap_find(&m, bt));
	/* released twice is harmless */
	proxy_txmap_release(&m, b);
	assert_int_equal(m.used, 2);
	struct proxy_tx *d = proxy_txmap_alloc(&m, 77);
	assert_non_null(d);
	assert_int_equal(d->orig_tid, 77);
	assert_int_not_equal(d->up_tid, a->up_tid);
	assert_int_not_equal(d->up_tid, c->up_tid);
}

static void txmap_never_reuses_a_reserved_id(void **state)
{
	(void)state;
	struct proxy_txmap m;
	proxy_txmap_init(&m, 2);
	struct proxy_tx *held = proxy_txmap_alloc(&m, 5); /* e.g. a timed-out request whose answer may come late */
	assert_non_null(held);
	/* 70000 allocations wrap the 16-bit id space: the held id must never be handed out again */
	for (unsigned i = 0; i < 70000; i++) {
		struct proxy_tx *t = proxy_txmap_alloc(&m, (uint16_t)i);
		assert_non_null(t);
		assert_int_not_equal(t->up_tid, held->up_tid);
		proxy_txmap_release(&m, t);
	}
	uint8_t adu[7] = { 0x12, 0x34, 0, 0, 0, 1, 1 };
	assert_int_equal(proxy_mbap_tid(adu), 0x1234);
	proxy_mbap_set_tid(adu, 0xbeef);
	assert_int_equal(adu[0], 0xbe);
	assert_int_equal(adu[1], 0xef);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ctx_buffer_modes),
		cmocka_unit_test(role_present),
		cmocka_unit_test(role_absent),
		cmocka_unit_test(role_wrong_type_is_no_role),
		cmocka_unit_test(role_repeated_or_bad_refused),
		cmocka_unit_test(role_limit_through_certificate),
		cmocka_unit_test(role_not_utf8_is_no_role),
		cmocka_unit_test(role_value_vectors),
		cmocka_unit_test(subject_at_the_limit_is_whole),
		cmocka_unit_test(subject_over_the_limit_is_refused),
		cmocka_unit_test(subject_plus_suffix_is_not_the_allowed_one),
		cmocka_unit_test(subject_helper_edges),
		cmocka_unit_test(txmap_remaps_and_bounds),
		cmocka_unit_test(txmap_never_reuses_a_reserved_id),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
