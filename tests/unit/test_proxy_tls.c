/* tests/unit/test_proxy_tls.c: identity from a certificate: the Modbus/TCP Security
 * role extension (present, absent, wrong type, repeated, oversized), the subject in
 * RFC 2253 form and the SHA-256 fingerprint; and transaction-id remapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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
	ASN1_OBJECT *oid = OBJ_txt2obj(PROXY_ROLE_OID, 1);
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
	char role[BMS_ROLE_MAX];
	assert_int_equal(proxy_tls_role(c, role), 1);
	assert_string_equal(role, "operator");

	struct bms_identity id;
	memset(&id, 0, sizeof(id));
	assert_int_equal(proxy_tls_identity(c, &id), 0);
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
	char role[BMS_ROLE_MAX] = "stale";
	assert_int_equal(proxy_tls_role(c, role), 0);
	assert_string_equal(role, "");
	struct bms_identity id;
	assert_int_equal(proxy_tls_identity(c, &id), 0);
	assert_string_equal(id.role, "");
	X509_free(c);
}

static void role_wrong_type_is_no_role(void **state)
{
	(void)state;
	X509 *c = make_cert("ctl-3");
	add_role_string(c, V_ASN1_IA5STRING, "operator");
	sign(c);
	char role[BMS_ROLE_MAX];
	assert_true(proxy_tls_role(c, role) < 0);
	struct bms_identity id;
	assert_int_equal(proxy_tls_identity(c, &id), 0);
	assert_string_equal(id.role, "");
	X509_free(c);
}

static void role_repeated_or_bad_refused(void **state)
{
	(void)state;
	char role[BMS_ROLE_MAX];
	X509 *c = make_cert("ctl-4");
	add_role_string(c, V_ASN1_UTF8STRING, "operator");
	add_role_string(c, V_ASN1_UTF8STRING, "admin");
	sign(c);
	assert_true(proxy_tls_role(c, role) < 0);
	X509_free(c);

	char longrole[BMS_ROLE_MAX + 10];
	memset(longrole, 'r', sizeof(longrole) - 1);
	longrole[sizeof(longrole) - 1] = '\0';
	c = make_cert("ctl-5");
	add_role_string(c, V_ASN1_UTF8STRING, longrole);
	sign(c);
	assert_true(proxy_tls_role(c, role) < 0);
	X509_free(c);

	c = make_cert("ctl-6");
	add_role_string(c, V_ASN1_UTF8STRING, "op\nerator");
	sign(c);
	assert_true(proxy_tls_role(c, role) < 0);
	X509_free(c);

	/* a UTF8String header claiming more bytes than there are */
	static const unsigned char trunc[] = { 0x0c, 0x10, 'o', 'p' };
	c = make_cert("ctl-7");
	add_role_der(c, trunc, sizeof(trunc));
	sign(c);
	assert_true(proxy_tls_role(c, role) < 0);
	X509_free(c);

	/* trailing bytes after the string */
	static const unsigned char trail[] = { 0x0c, 0x02, 'o', 'p', 0x00 };
	c = make_cert("ctl-8");
	add_role_der(c, trail, sizeof(trail));
	sign(c);
	assert_true(proxy_tls_role(c, role) < 0);
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
		cmocka_unit_test(txmap_remaps_and_bounds),
		cmocka_unit_test(txmap_never_reuses_a_reserved_id),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
