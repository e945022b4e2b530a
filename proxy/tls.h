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

/* ---- the pump: one for every TLS endpoint (guard, tunnel, the relay to come) ----
 *
 * As BearSSL's br_ssl_engine_current_state and tools/sslio.c: the engine never touches a
 * socket, and one loop asks it what it wants and serves that:
 *   handshake not done    -> run it; the records it made go to the peer (send record)
 *   it needs peer bytes   -> stop; the caller feeds them when they come (receive record)
 *   plaintext is ready    -> read it where the endpoint has room (receive app data)
 *   records wait in wbio  -> hand them to the endpoint's writer (send record)
 * The endpoint writes its own plaintext with proxy_tls_write (send app data) and then
 * flushes. Callbacks get `owner` back; a callback returning false stops the pump at once
 * (its session closed, refused, or stopped reading), and nothing more is touched. */
struct proxy_tls_peer {
	/* Where the next plaintext may go; NULL stops reading (a limit, a full buffer). */
	uint8_t *(*room)(void *owner, size_t *cap);
	/* `n` bytes of plaintext landed where room() said. */
	bool (*app)(void *owner, size_t n);
	/* The handshake completed (may refuse the peer). */
	bool (*opened)(void *owner);
	/* Ciphertext for the peer: write it (without blocking). */
	bool (*record)(void *owner, const uint8_t *buf, size_t n);
};

enum proxy_tls_end {
	PROXY_TLS_WAIT = 0,   /* the engine waits for peer bytes or for room; its records were sent */
	PROXY_TLS_STOPPED,    /* a callback said stop */
	PROXY_TLS_PEER_DONE,  /* the peer's close_notify (TLS's half-close); records sent */
	PROXY_TLS_HS_FAILED,  /* the handshake failed; its alert was sent (proxy_tls_failure says why) */
	PROXY_TLS_FAILED,     /* the session failed after the handshake (proxy_tls_failure says why) */
};

/* Runs the engine as far as it goes now. */
enum proxy_tls_end proxy_tls_pump(struct proxy_tls *t, const struct proxy_tls_peer *p, void *owner);
/* Every record waiting in wbio to p->record. false: a write failed (the callback closed). */
bool proxy_tls_flush(struct proxy_tls *t, const struct proxy_tls_peer *p, void *owner);
/* Ciphertext from the peer into the engine: 0, or -ENOMEM. */
BMS_WUR int proxy_tls_feed(struct proxy_tls *t, const void *buf, size_t n);
/* Plaintext for the peer, all of it, as records waiting for the next flush: 0 or -EIO. */
BMS_WUR int proxy_tls_write(struct proxy_tls *t, const void *buf, size_t n);
/* Our close_notify, waiting for the next flush (TLS's half-close). */
void proxy_tls_shutdown(struct proxy_tls *t);
bool proxy_tls_opened(const struct proxy_tls *t);
/* Ciphertext fed and not yet read by the engine (the pre-authentication bound counts it). */
size_t proxy_tls_buffered(const struct proxy_tls *t);
/* A record is still arriving, or decrypted bytes wait: input is not at a boundary. */
bool proxy_tls_partial(const struct proxy_tls *t);

#endif
