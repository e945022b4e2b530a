/* parsers/role.h: the Modbus/TCP Security role (MB-TCP-Security v21, R-21): one limit,
 * one OID, one parser of the extension's value (parsers/role.c). */
#ifndef BMS_PARSERS_ROLE_H
#define BMS_PARSERS_ROLE_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"

/* The one limit on a Modbus/TCP Security role, in bytes: what `bmsgate pki` issues, what the
 * guard takes from a certificate, what a policy's `certificate-role` and rule may name. */
#define BMS_ROLE_LEN 64
#define BMS_ROLE_MAX (BMS_ROLE_LEN + 1) /* buffer: the role and its NUL */

/* The role extension: extnValue is one DER UTF8String. The one spelling of the OID for
 * issuer, guard and tests. */
#define BMS_ROLE_OID "1.3.6.1.4.1.50316.802.1"

/* The extension's value (extnValue contents): 0 and the role, or -EINVAL and why (a static
 * phrase; docs/pki.md lists what each malformed encoding means). Every failure means "no role". */
BMS_WUR int bms_role_parse(const uint8_t *der, size_t len, char role[static BMS_ROLE_MAX], const char **why);

#endif
