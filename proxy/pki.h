/* proxy/pki.h: the site PKI behind `bmsgate pki` (OpenSSL 3 libcrypto, no openssl CLI).
 *
 * One directory holds one site CA and everything it issued. File names are stable and
 * documented in docs/pki.md:
 *   DIR/ca.crt            site CA certificate (PEM, 0644)
 *   DIR/ca.key            site CA private key (PEM, 0600)
 *   DIR/crl.pem           current CRL, replaced atomically (rename) on every change
 *   DIR/index.tsv         one line per issued certificate: serial, status, kind, name, role, ...
 *   DIR/crlnumber         the last CRL number used (decimal)
 *   DIR/issued/NAME.crt   issued certificate (PEM, 0644)
 *   DIR/issued/NAME.key   its private key (PEM, 0600)
 * DIR itself and DIR/issued are 0700. Concurrent invocations serialise on DIR/.lock.
 */
#ifndef BMS_PKI_H
#define BMS_PKI_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <openssl/x509.h>

#include "parsers/cursor.h" /* BMS_WUR */

/* Modbus/TCP Security role extension (MBAPS spec, R-21): a DER UTF8String, non-critical. */
#define BMS_PKI_ROLE_OID "1.3.6.1.4.1.50316.802.1"
#define BMS_PKI_ROLE_MAX 64
#define BMS_PKI_NAME_MAX 64
#define BMS_PKI_ERR_MAX 320
#define BMS_PKI_MAX_SAN 8

enum bms_pki_key { BMS_PKI_KEY_EC = 0, BMS_PKI_KEY_RSA = 1 };
enum bms_pki_kind { BMS_PKI_GUARD = 0, BMS_PKI_CONTROLLER = 1 };

struct bms_pki_key_opts {
	enum bms_pki_key type; /* ECDSA P-256 by default */
	int rsa_bits;          /* 0: 2048 */
};

/* Validity: either `days` from now, or explicit bounds (0 = not set). Explicit bounds may
 * lie in the past or the future, which is how tests get expired and not-yet-valid certs. */
struct bms_pki_validity {
	int days;
	time_t not_before;
	time_t not_after;
};

struct bms_pki_issue_opts {
	enum bms_pki_kind kind;
	const char *name;              /* borrowed; becomes CN and the file names */
	const char *role;              /* borrowed; controller only; NULL = no role extension */
	const char *dns[BMS_PKI_MAX_SAN]; /* borrowed; guard: extra subjectAltName DNS entries */
	size_t ndns;
	const char *ip[BMS_PKI_MAX_SAN];  /* borrowed; guard: subjectAltName IP entries */
	size_t nip;
	struct bms_pki_validity validity;
	struct bms_pki_key_opts key;
};

/* One line of DIR/index.tsv. */
struct bms_pki_entry {
	char serial[80]; /* upper-case hex, as OpenSSL prints it */
	char status;     /* 'V' valid, 'R' revoked */
	enum bms_pki_kind kind;
	char name[BMS_PKI_NAME_MAX + 1];
	char role[BMS_PKI_ROLE_MAX + 1]; /* "" = none */
	time_t not_before;
	time_t not_after;
	time_t revoked_at; /* 0 unless revoked */
	int reason;        /* CRL reason code (RFC 5280 5.3.1), -1 unless revoked */
};

BMS_WUR int bms_pki_init(const char *dir, const char *ca_name, const struct bms_pki_key_opts *key,
			 int days, char err[static BMS_PKI_ERR_MAX]);
BMS_WUR int bms_pki_issue(const char *dir, const struct bms_pki_issue_opts *o,
			  struct bms_pki_entry *out, char err[static BMS_PKI_ERR_MAX]);
/* `what` is a certificate name or a serial (hex, optional 0x). reason: RFC 5280 code. */
BMS_WUR int bms_pki_revoke(const char *dir, const char *what, int reason,
			   struct bms_pki_entry *out, char err[static BMS_PKI_ERR_MAX]);
/* Re-sign DIR/crl.pem from the index; next update in crl_days (0: 30). */
BMS_WUR int bms_pki_crl(const char *dir, int crl_days, char err[static BMS_PKI_ERR_MAX]);
/* Reads the index. *out is malloc'd (caller frees); *n entries. */
BMS_WUR int bms_pki_list(const char *dir, struct bms_pki_entry **out, size_t *n,
			 char err[static BMS_PKI_ERR_MAX]);

/* The role a certificate carries: 0 and the role in buf when present, -ENOENT when the
 * certificate has no role extension, -EINVAL when the extension is not one DER UTF8String
 * of 1..BMS_PKI_ROLE_MAX bytes without control characters (a guard must fail closed). */
BMS_WUR int bms_pki_cert_role(X509 *cert, char buf[static BMS_PKI_ROLE_MAX + 1]);

/* Name checks shared by the CLI and the library; 0 or -EINVAL. */
BMS_WUR int bms_pki_check_name(const char *name);
BMS_WUR int bms_pki_check_role(const char *role);
/* CRL reason by name ("key-compromise", ...) -> RFC 5280 code; -EINVAL if unknown. */
BMS_WUR int bms_pki_reason_code(const char *name, int *code);
const char *bms_pki_reason_name(int code);
/* "2026-01-02", "2026-01-02T03:04:05Z", "now", "now-2d", "+3h", "-90m" -> time_t. */
BMS_WUR int bms_pki_parse_time(const char *s, time_t now, time_t *out);

#endif
