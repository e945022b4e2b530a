/* proxy/tls.c: TLS contexts, certificate identity, memory-BIO engine set-up.
 *
 * Modbus/TCP Security (MB-TCP-Security v21, 2018) asks for: TLS 1.2 or later,
 * mutual authentication with X.509v3 certificates, TLS 1.2 suites
 * TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
 * no TLS compression, no renegotiation, and the role carried in the certificate
 * extension 1.3.6.1.4.1.50316.802.1 as a UTF8String.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"
#include "proxy/tls.h"


/* TLS 1.2: the two suites the specification requires first, then the AES-256 siblings. */
static const char tls12_suites[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
				   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

static void ssl_errors(char *buf, size_t len)
{
	unsigned long e;
	size_t off = 0;
	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[256];
		ERR_error_string_n(e, one, sizeof(one));
		/* keep the reason part: "error:0A000086:SSL routines::certificate verify failed" -> last field */
		const char *r = strrchr(one, ':');
		r = r ? r + 1 : one;
		if (off < len) {
			int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", r);
			if (n > 0)
				off += (size_t)n;
		}
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "no detail from OpenSSL");
}

static void subject_cut(X509_NAME *name, char *out, size_t outlen);

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	if (ok)
		return ok;
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct proxy_tls_verr *v = ssl ? SSL_get_app_data(ssl) : NULL;
	if (v && v->err == 0) {
		v->err = X509_STORE_CTX_get_error(xs);
		v->depth = X509_STORE_CTX_get_error_depth(xs);
		X509 *c = X509_STORE_CTX_get_current_cert(xs);
		v->subject[0] = '\0';
		/* whole when it fits, else its start marked as cut: never a prefix that reads as whole */
		size_t full;
		if (c && proxy_tls_subject(X509_get_subject_name(c), v->subject, &full) < 0)
			subject_cut(X509_get_subject_name(c), v->subject, sizeof(v->subject));
	}
	return ok;
}

/* `crl-stale keep`: a CRL past its nextUpdate still counts, instead of refusing every peer;
 * the guard says loudly that it is stale (guard.c). Nothing else is tolerated. */
static int tolerate_expired_crl(int ok, X509_STORE_CTX *xs)
{
	if (!ok && X509_STORE_CTX_get_error(xs) == X509_V_ERR_CRL_HAS_EXPIRED) {
		X509_STORE_CTX_set_error(xs, X509_V_OK);
		return 1;
	}
	return ok;
}

static int verify_cb_keep_stale(int ok, X509_STORE_CTX *xs)
{
	return verify_cb(tolerate_expired_crl(ok, xs), xs);
}

static int load_crl(X509_STORE *store, const char *path, char *why, size_t whylen)
{
	X509_LOOKUP *lk = X509_STORE_add_lookup(store, X509_LOOKUP_file());
	if (!lk) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	int n = X509_load_crl_file(lk, path, X509_FILETYPE_PEM);
	if (n <= 0) {
		char e[256];
		ssl_errors(e, sizeof(e));
		snprintf(why, whylen, "%s: cannot load a CRL: %s", path, e);
		return -1;
	}
	/* every certificate of the chain, not only the leaf: a revoked intermediate CA must also refuse */
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return 0;
}

int proxy_tls_ctx_new(const struct proxy_config *cfg, bool server, SSL_CTX **out, char *why, size_t whylen)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	char e[256];
	*out = NULL;
	ERR_clear_error();
	if (!ctx) {
		snprintf(why, whylen, "cannot create a TLS context");
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		goto ossl;
	if (!SSL_CTX_set_cipher_list(ctx, tls12_suites))
		goto ossl;
	if (!SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384"))
		goto ossl;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* The guard's idle connections hold no record buffers, so 1000 idle peers stay small.
	 * The tunnel carries a few head-end connections: it keeps its two record buffers
	 * (about 34 KiB a connection) rather than allocate and free them for every record. */
	if (server) {
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
		/* No resumption: every connection presents its certificate and is checked against the
		 * CRL of the moment, so a revoked controller cannot come back on an old session. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(ctx, 0);
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->certificate) != 1) {
		ssl_errors(e, sizeof(e));
		snprintf(why, whylen, "%s: cannot load the certificate: %s", cfg->certificate, e);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1) {
		ssl_errors(e, sizeof(e));
		snprintf(why, whylen, "%s: cannot load the private key: %s", cfg->key, e);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(why, whylen, "%s: the key does not match the certificate %s", cfg->key, cfg->certificate);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1) {
		ssl_errors(e, sizeof(e));
		snprintf(why, whylen, "%s: cannot load the CA certificate: %s", cfg->ca, e);
		goto fail;
	}
	if (cfg->crl[0] && load_crl(SSL_CTX_get_cert_store(ctx), cfg->crl, why, whylen))
		goto fail;
	bool keep_stale = server && cfg->crl[0] && cfg->crl_stale == PROXY_CRL_STALE_KEEP;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   keep_stale ? verify_cb_keep_stale : verify_cb);
	if (keep_stale) /* proxy_tls_reverify verifies through the store, without the SSL's callback */
		X509_STORE_set_verify_cb(SSL_CTX_get_cert_store(ctx), tolerate_expired_crl);
	SSL_CTX_set_verify_depth(ctx, 6);
	*out = ctx;
	return 0;
ossl:
	ssl_errors(e, sizeof(e));
	snprintf(why, whylen, "TLS settings refused: %s", e);
fail:
	SSL_CTX_free(ctx);
	return -1;
}

int proxy_tls_subject(X509_NAME *name, char out[static BMS_SUBJECT_MAX], size_t *full)
{
	char *data = NULL;
	int rc = -ENOMEM;
	out[0] = '\0';
	*full = 0;
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return rc;
	/* RFC 2253, the form identities take everywhere in the policy and the audit trail */
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) < 0) {
		rc = -EINVAL;
		goto out;
	}
	long n = BIO_get_mem_data(b, &data);
	if (n < 0) {
		rc = -EINVAL;
		goto out;
	}
	*full = (size_t)n;
	/* A NUL inside would end the subject early: what the policy compared would not be the whole. */
	if (n > 0 && memchr(data, '\0', (size_t)n) != NULL) {
		rc = -EINVAL;
		goto out;
	}
	if ((size_t)n > BMS_SUBJECT_LEN) {
		rc = -E2BIG;
		goto out;
	}
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	rc = 0;
out:
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

/* For messages about a subject that does not fit: its start, then U+2026. OpenSSL's RFC 2253
 * form escapes every byte above 0x7f, so no whole subject ends that way. */
static void subject_cut(X509_NAME *name, char *out, size_t outlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	out[0] = '\0';
	if (!b || outlen < 8)
		goto out;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
		int n = BIO_read(b, out, (int)outlen - 4);
		n = n > 0 ? n : 0;
		out[n] = '\0';
		for (int i = 0; i < n; i++)
			if (out[i] == '\0' || (unsigned char)out[i] >= 0x80)
				out[i] = '?';
		if (BIO_ctrl_pending(b) > 0)
			memcpy(out + n, "\xe2\x80\xa6", 4);
	}
out:
	BIO_free(b);
	ERR_clear_error();
}

int proxy_tls_identity(X509 *cert, struct bms_identity *id, char *note, size_t notelen)
{
	unsigned int mdlen = 0;
	size_t full = 0;
	id->subject[0] = '\0';
	id->role[0] = '\0';
	id->has_fingerprint = false;
	id->authenticated = false;
	note[0] = '\0';
	/* the fingerprint first: a refused certificate is named by it in the refusal record */
	if (X509_digest(cert, EVP_sha256(), id->fingerprint, &mdlen) != 1 || mdlen != 32) {
		ERR_clear_error();
		snprintf(note, notelen, "cannot digest the client certificate");
		return -EINVAL;
	}
	id->has_fingerprint = true;
	int rc = proxy_tls_subject(X509_get_subject_name(cert), id->subject, &full);
	if (rc == -E2BIG) {
		/* Never cut: the first BMS_SUBJECT_LEN bytes of a longer subject may be an allowed
		 * subject, and the rest (",C=ZZ") somebody else's. The refusal names its start. */
		subject_cut(X509_get_subject_name(cert), id->subject, sizeof(id->subject));
		snprintf(note, notelen, "certificate subject of %zu bytes is longer than the %d a guard holds",
			 full, BMS_SUBJECT_LEN);
		return rc;
	}
	if (rc < 0) {
		id->subject[0] = '\0';
		snprintf(note, notelen, "cannot read the certificate subject%s",
			 rc == -EINVAL ? " (it holds a NUL byte)" : "");
		return rc;
	}
	id->authenticated = true;
	/* A malformed role extension is no role: the policy then grants only what needs no role.
	 * The note says why, for the audit record of the accepted connection. */
	const char *why = "";
	if (bms_pki_role_of(cert, id->role, &why) < 0) {
		id->role[0] = '\0';
		snprintf(note, notelen, "role extension ignored (no role): %s", why);
	}
	return 0;
}

int proxy_tls_reverify(SSL_CTX *ctx, SSL *ssl)
{
	X509 *leaf = SSL_get1_peer_certificate(ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* server side: without the leaf */
	int rc = X509_V_ERR_UNSPECIFIED;
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	if (!leaf || !xs)
		goto out;
	if (!X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx), leaf, chain))
		goto out;
	X509_STORE_CTX_set_default(xs, SSL_is_server(ssl) ? "ssl_client" : "ssl_server");
	rc = X509_verify_cert(xs) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(xs);
out:
	X509_STORE_CTX_free(xs);
	X509_free(leaf);
	ERR_clear_error();
	return rc;
}

void proxy_tls_failure(SSL *ssl, const struct proxy_tls_verr *verr, char *buf, size_t len)
{
	if (verr && verr->err) {
		snprintf(buf, len, "certificate refused: %s (%s, depth %d)", X509_verify_cert_error_string(verr->err),
			 verr->subject[0] ? verr->subject : "no subject", verr->depth);
		ERR_clear_error();
		return;
	}
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (v != X509_V_OK) {
		snprintf(buf, len, "certificate refused: %s", X509_verify_cert_error_string(v));
		ERR_clear_error();
		return;
	}
	ssl_errors(buf, len);
}

int proxy_tls_start(struct proxy_tls *t, SSL_CTX *ctx, bool server, const char *host, struct proxy_tls_verr *verr)
{
	memset(t, 0, sizeof(*t));
	t->ssl = SSL_new(ctx);
	if (!t->ssl)
		return -1;
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		t->ssl = NULL;
		return -1;
	}
	/* an empty memory BIO reads as "retry", not end of file */
	BIO_set_mem_eof_return(t->rbio, -1);
	BIO_set_mem_eof_return(t->wbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_app_data(t->ssl, verr);
	if (server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (host && host[0]) {
			unsigned char ip[16];
			bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
			if (is_ip) {
				if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1)
					goto fail;
			} else {
				if (SSL_set1_host(t->ssl, host) != 1 || SSL_set_tlsext_host_name(t->ssl, host) != 1)
					goto fail;
			}
		}
	}
	return 0;
fail:
	proxy_tls_free(t);
	return -1;
}

void proxy_tls_free(struct proxy_tls *t)
{
	if (t->ssl)
		SSL_free(t->ssl); /* frees both BIOs */
	t->ssl = NULL;
	t->rbio = t->wbio = NULL;
}

/* ---- the pump (tls.h) ---- */

/* Records leave through one buffer for the whole process: every endpoint writes them to its
 * socket at once (proxy_out_write copies only what the kernel did not take). */
static uint8_t tls_out[64 * 1024];

bool proxy_tls_flush(struct proxy_tls *t, const struct proxy_tls_peer *p, void *owner)
{
	while (t->ssl && BIO_ctrl_pending(t->wbio) > 0) {
		int n = BIO_read(t->wbio, tls_out, (int)sizeof(tls_out));
		if (n <= 0)
			break;
		if (!p->record(owner, tls_out, (size_t)n))
			return false;
	}
	return true;
}

bool proxy_tls_opened(const struct proxy_tls *t)
{
	return t->ssl && SSL_is_init_finished(t->ssl);
}

enum proxy_tls_end proxy_tls_pump(struct proxy_tls *t, const struct proxy_tls_peer *p, void *owner)
{
	if (!SSL_is_init_finished(t->ssl)) {
		ERR_clear_error();
		int r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			int e = SSL_get_error(t->ssl, r);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				/* the alert tells the peer why; proxy_tls_failure reads the error queue after */
				return proxy_tls_flush(t, p, owner) ? PROXY_TLS_HS_FAILED : PROXY_TLS_STOPPED;
			}
			return proxy_tls_flush(t, p, owner) ? PROXY_TLS_WAIT : PROXY_TLS_STOPPED;
		}
		if (!p->opened(owner))
			return PROXY_TLS_STOPPED;
	}
	for (;;) {
		size_t cap = 0;
		uint8_t *room = p->room(owner, &cap);
		if (!room || cap == 0)
			break;
		ERR_clear_error();
		int n = SSL_read(t->ssl, room, cap > INT32_MAX ? INT32_MAX : (int)cap);
		if (n > 0) {
			if (!p->app(owner, (size_t)n))
				return PROXY_TLS_STOPPED;
			continue;
		}
		int e = SSL_get_error(t->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			break;
		if (e == SSL_ERROR_ZERO_RETURN)
			return proxy_tls_flush(t, p, owner) ? PROXY_TLS_PEER_DONE : PROXY_TLS_STOPPED;
		return PROXY_TLS_FAILED;
	}
	return proxy_tls_flush(t, p, owner) ? PROXY_TLS_WAIT : PROXY_TLS_STOPPED;
}

int proxy_tls_feed(struct proxy_tls *t, const void *buf, size_t n)
{
	if (n > INT32_MAX || BIO_write(t->rbio, buf, (int)n) != (int)n)
		return -ENOMEM;
	return 0;
}

int proxy_tls_write(struct proxy_tls *t, const void *buf, size_t n)
{
	ERR_clear_error();
	/* SSL_MODE_ENABLE_PARTIAL_WRITE: a memory BIO takes everything, so a short count is a failure */
	if (n > INT32_MAX || SSL_write(t->ssl, buf, (int)n) != (int)n)
		return -EIO;
	return 0;
}

void proxy_tls_shutdown(struct proxy_tls *t)
{
	ERR_clear_error();
	(void)SSL_shutdown(t->ssl);
}

size_t proxy_tls_buffered(const struct proxy_tls *t)
{
	return t->ssl ? BIO_ctrl_pending(t->rbio) : 0;
}

bool proxy_tls_partial(const struct proxy_tls *t)
{
	return t->ssl && (SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) > 0);
}
