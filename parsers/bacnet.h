/* parsers/bacnet.h: BACnet/IP decoding: BVLC, NPDU, APDU and service parameters (pure). */
#ifndef BMS_BACNET_H
#define BMS_BACNET_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"
#include "parsers/request.h"

#define BACNET_MAX_DATAGRAM 1497 /* BVLC header + largest NPDU on BACnet/IP */

/* Decode one BACnet/IP datagram (the UDP payload). The direction comes from
 * the PDU type: confirmed and unconfirmed requests are requests, acks and
 * errors are responses. Fills *out also when MALFORMED. Never NEED_MORE. */
BMS_WUR enum bms_parse_result bacnet_decode(const uint8_t *dgram, size_t len, struct bms_request *out);

/* Name of an anomaly bit ("bvlc_length_mismatch"...), or NULL. */
const char *bacnet_anomaly_name(unsigned bit);
/* Names of a confirmed / unconfirmed service choice ("readProperty"...), never NULL. */
const char *bacnet_confirmed_service_name(uint8_t service);
const char *bacnet_unconfirmed_service_name(uint8_t service);

#endif
