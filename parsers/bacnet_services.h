/* parsers/bacnet_services.h: service parameter decoding, called by bacnet.c (internal).
 *
 * Each function decodes the parameters of one APDU whose tag structure bacnet_tag_validate()
 * has already accepted (balanced, bounded, every length inside the slice), fills targets and
 * raw fields of *r, and returns 0, or -1 with the anomaly that explains why set in *r.
 */
#ifndef BMS_BACNET_SERVICES_H
#define BMS_BACNET_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"
#include "parsers/request.h"

BMS_WUR int bacnet_svc_confirmed(struct bms_request *r, uint8_t service, const uint8_t *p, size_t n);
BMS_WUR int bacnet_svc_unconfirmed(struct bms_request *r, uint8_t service, const uint8_t *p, size_t n);
BMS_WUR int bacnet_svc_complex_ack(struct bms_request *r, uint8_t service, const uint8_t *p, size_t n);
BMS_WUR int bacnet_svc_error(struct bms_request *r, uint8_t service, const uint8_t *p, size_t n);

#endif
