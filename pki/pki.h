/* pki/pki.h: the site PKI behind `bmsgate pki` (OpenSSL 3 libcrypto, no openssl CLI).
 *
 * One directory holds one site CA and everything it issued. File names are stable and
 * documented in docs/pki.md:
 *   DIR/ca.crt            site CA certificate (PEM, 0644)
 *   DIR/ca.key            site CA private key (PEM, 0600, owner only in every layout)
 *   DIR/crl.pem           current CRL, replaced atomically (rename) on every change (0644)
 *   DIR/index.tsv         one line per issued certificate: serial, status, kind, name, role, ...
 *   DIR/crlnumber         the last CRL number used (decimal)
 *   DIR/issued/NAME.crt   issued certificate (PEM, 0644)
 *   DIR/issued/NAME.key   its private key (PEM, 0600)
 * DIR itself and DIR/issued are 0700. Shared with a service group (`init --group G`, or
 * `issue --guard NAME --group G`): DIR and DIR/issued 0750 owner:G and guard keys 0640
 * owner:G, so a guard running as a user whose primary group is G re-reads its certificate,
 * key, CA and CRL after dropping privileges; controller keys and the CA key stay 0600.
 * Concurrent invocations serialise on DIR/.lock.
 */
#ifndef BMS_PKI_H
#define BMS_PKI_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <openssl/x509.h>

#include "parsers/cursor.h" /* BMS_WUR */
#include "policies/identity.h"

/* The role extension (BMS_ROLE_OID, a DER UTF8String, non-critical) and its limit
 * BMS_ROLE_LEN are policies/identity.h's: one spelling for issuer, guard and policy. */
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
	const char *group;             /* borrowed; guard only: share DIR and the key with this group;
					* NULL: the group DIR is already shared with, if any */
};

/* One line of DIR/index.tsv. */
struct bms_pki_entry {
	char serial[80]; /* upper-case hex, as OpenSSL prints it */
	char status;     /* 'V' valid, 'R' revoked */
	enum bms_pki_kind kind;
	char name[BMS_PKI_NAME_MAX + 1];
	char role[BMS_ROLE_MAX]; /* "" = none */
	time_t not_before;
	time_t not_after;
	time_t revoked_at; /* 0 unless revoked */
	int reason;        /* CRL reason code (RFC 5280 5.3.1), -1 unless revoked */
};

/* group: NULL, or a group name or number to share DIR with (see the layout above). */
BMS_WUR int bms_pki_init(const char *dir, const char *ca_name, const struct bms_pki_key_opts *key,
			 int days, const char *group, char err[static BMS_PKI_ERR_MAX]);
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

/* The role extension of a certificate: 1 found (copied into role), 0 absent, -EINVAL present
 * but not a role (why: a static phrase, from bms_role_parse), -ENOMEM. The guard's identity
 * (proxy/tls.c) and `pki role` both read roles through this. */
BMS_WUR int bms_pki_role_of(X509 *cert, char role[static BMS_ROLE_MAX], const char **why);
/* The same as 0 / -ENOENT / -EINVAL: 0 and the role in
 * buf when present, -ENOENT when the certificate has no role extension, -EINVAL when the
 * extension is not one DER UTF8String of 1..BMS_ROLE_LEN bytes of UTF-8 without control
 * characters (the guard then gives no role). */
BMS_WUR int bms_pki_cert_role(X509 *cert, char buf[static BMS_ROLE_MAX]);

/* Name checks shared by the CLI and the library; 0 or -EINVAL. */
BMS_WUR int bms_pki_check_name(const char *name);
BMS_WUR int bms_pki_check_role(const char *role);
/* CRL reason by name ("key-compromise", ...) -> RFC 5280 code; -EINVAL if unknown. */
BMS_WUR int bms_pki_reason_code(const char *name, int *code);
const char *bms_pki_reason_name(int code);
/* "2026-01-02", "2026-01-02T03:04:05Z", "now", "now-2d", "+3h", "-90m" -> time_t. */
BMS_WUR int bms_pki_parse_time(const char *s, time_t now, time_t *out);

#endif
