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

/* Modbus/TCP Security role extension: RoleOID, value Role ::= UTF8String. */
#define PROXY_ROLE_OID "1.3.6.1.4.1.50316.802.1"

/* Why a peer's certificate was refused, filled by the verify callback. */
struct proxy_tls_verr {
	int err;   /* X509_V_ERR_*, 0 = none seen */
	int depth; /* 0 = the peer's own certificate */
	char subject[160];
};

/* Build a server (guard) or client (tunnel) context from the configured files:
 * TLS >= 1.2, the Modbus/TCP Security TLS 1.2 suites, no compression, no
 * renegotiation, peer certificate required and verified to `ca` with the full
 * chain, and when `crl` is set every certificate of the chain checked against it.
 * On failure writes why (which file, what OpenSSL said) into `why`. */
BMS_WUR int proxy_tls_ctx_new(const struct proxy_config *cfg, bool server, SSL_CTX **out, char *why, size_t whylen);

/* Identity from a verified certificate: subject (RFC 2253), SHA-256 of the DER, role. */
BMS_WUR int proxy_tls_identity(X509 *cert, struct bms_identity *id);
/* The role extension alone: 1 found (copied into role), 0 absent, negative when present but not a UTF8String
 * a policy can use (bad DER, too long, control characters). */
BMS_WUR int proxy_tls_role(X509 *cert, char role[static BMS_ROLE_MAX]);

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
