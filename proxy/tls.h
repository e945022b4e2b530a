/* proxy/tls.h: OpenSSL contexts for Modbus/TCP Security, identity from certificates,
 * and a memory-BIO TLS engine that never touches a socket (the caller pumps bytes).
 */
#ifndef BMS_PROXY_TLS_H
#define BMS_PROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "parsers/cursor.h"
#include "policies/identity.h"
#include "proxy/config.h"

/* Why a peer's certificate was refused, filled by the verify callback. */
struct proxy_tls_verr {
	int err;   /* X509_V_ERR_*, 0 = none seen */
	int depth; /* 0 = the peer's own certificate */
	char subject[BMS_SUBJECT_MAX]; /* whole, or its start ending in U+2026 when longer */
};

/* Build a server (guard) or client (tunnel) context from the configured files:
 * TLS >= 1.2, the Modbus/TCP Security TLS 1.2 suites, no compression, no
 * renegotiation, peer certificate required and verified to `ca` with the full
 * chain, and when `crl` is set every certificate of the chain checked against it.
 * On failure writes why (which file, what OpenSSL said) into `why`. */
BMS_WUR int proxy_tls_ctx_new(const struct proxy_config *cfg, bool server, SSL_CTX **out, char *why, size_t whylen);

/* Identity from a verified certificate: subject (RFC 2253, whole), SHA-256 of the DER, role.
 * 0: id is the certificate's, and `note` is "" or why its role extension was ignored (a
 * malformed one is no role). Negative: the connection must be refused, `note` says why
 * (-E2BIG: the subject is longer than BMS_SUBJECT_LEN; it is never cut), id is not
 * authenticated, its subject at most the start of the real one ending in U+2026, and its
 * fingerprint (when has_fingerprint) names the refused certificate. */
BMS_WUR int proxy_tls_identity(X509 *cert, struct bms_identity *id, char *note, size_t notelen);
/* The role extension alone: 1 found (copied into role), 0 absent, -EINVAL present but not a
 * role (why: a static phrase), -ENOMEM. docs/pki.md lists what each malformed encoding means. */
BMS_WUR int proxy_tls_role(X509 *cert, char role[static BMS_ROLE_MAX], const char **why);
/* The pure parser under it: the extension's value (extnValue contents). 0 or -EINVAL and why. */
BMS_WUR int proxy_tls_role_value(const uint8_t *der, size_t len, char role[static BMS_ROLE_MAX], const char **why);
/* A name in RFC 2253 form, whole: 0, -E2BIG when longer than BMS_SUBJECT_LEN (full = its
 * length; out is ""), -EINVAL when it cannot be printed or holds a NUL, -ENOMEM. */
BMS_WUR int proxy_tls_subject(X509_NAME *name, char out[static BMS_SUBJECT_MAX], size_t *full);

/* Re-verify a connected peer's chain against ctx's current store (after a CRL or CA reload).
 * Returns X509_V_OK or the verify error. */
int proxy_tls_reverify(SSL_CTX *ctx, SSL *ssl);

/* The most useful words for why a handshake failed: the verify result when the
 * peer certificate was refused, else the OpenSSL error queue (consumed). */
void proxy_tls_failure(SSL *ssl, const struct proxy_tls_verr *verr, char *buf, size_t len);

/* One TLS connection over memory BIOs. */
struct proxy_tls {
	SSL *ssl;  /* owns */
	BIO *rbio; /* owned by ssl: ciphertext from the peer */
	BIO *wbio; /* owned by ssl: ciphertext for the peer */
};

/* `verr` (borrowed, may be NULL) receives the first verify failure. `host` (client only) is the name
 * or address the server's certificate must carry. */
BMS_WUR int proxy_tls_start(struct proxy_tls *t, SSL_CTX *ctx, bool server, const char *host,
			    struct proxy_tls_verr *verr);
void proxy_tls_free(struct proxy_tls *t);

#endif
