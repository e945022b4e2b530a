/* policies/identity.h: who is asking (types only). Filled by proxy/ from a
 * verified certificate or a legacy source address; read by policy and audit. */
#ifndef BMS_IDENTITY_H
#define BMS_IDENTITY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define BMS_SUBJECT_MAX 256
#define BMS_ROLE_MAX 64

struct bms_identity {
	bool authenticated;              /* true: a verified client certificate; false: legacy address only */
	char subject[BMS_SUBJECT_MAX];   /* certificate subject, RFC 2253 form; "" when none */
	char role[BMS_ROLE_MAX];         /* Modbus/TCP Security role (OID 1.3.6.1.4.1.50316.802.1); "" = no role */
	bool has_fingerprint;
	uint8_t fingerprint[32];         /* SHA-256 of the DER certificate */
	struct sockaddr_storage addr;    /* peer address */
	socklen_t addr_len;
};

#endif
