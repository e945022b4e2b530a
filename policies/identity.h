/* policies/identity.h: who is asking (types only). Filled by proxy/ from a
 * verified certificate or a legacy source address; read by policy and audit. */
#ifndef BMS_IDENTITY_H
#define BMS_IDENTITY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* The one limit on a certificate subject in RFC 2253 form, in bytes. The guard refuses a
 * certificate whose subject is longer (it is never cut: a cut subject could be somebody
 * else's), and a policy `subject` value may be at most this long. */
#define BMS_SUBJECT_LEN 255
#define BMS_SUBJECT_MAX (BMS_SUBJECT_LEN + 1) /* buffer: the subject and its NUL */

/* BMS_ROLE_LEN, BMS_ROLE_MAX, BMS_ROLE_OID: the role's one limit and OID. */
#include "parsers/role.h"

struct bms_identity {
	bool authenticated;              /* true: a verified client certificate; false: legacy address only */
	char subject[BMS_SUBJECT_MAX];   /* certificate subject, RFC 2253 form, whole; "" when none */
	char role[BMS_ROLE_MAX];         /* Modbus/TCP Security role (BMS_ROLE_OID); "" = no role */
	bool has_fingerprint;
	uint8_t fingerprint[32];         /* SHA-256 of the DER certificate */
	struct sockaddr_storage addr;    /* peer address */
	socklen_t addr_len;
};

#endif
