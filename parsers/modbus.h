/* parsers/modbus.h: Modbus/TCP framing and decoding (pure: no I/O, no allocation). */
#ifndef BMS_MODBUS_H
#define BMS_MODBUS_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"
#include "parsers/request.h"

#define MODBUS_MBAP_LEN 7
#define MODBUS_MAX_ADU 260 /* 7-byte MBAP + 253-byte PDU */

/* Stream framer over the bytes at the start of a TCP stream buffer.
 * OK: *frame_len = length of the whole ADU at buf[0].
 * NEED_MORE: *frame_len = total bytes needed before a frame can be cut.
 * MALFORMED: the header can never be valid (protocol id, length); *anomalies says why. */
BMS_WUR enum bms_parse_result modbus_frame(const uint8_t *buf, size_t len, size_t *frame_len,
					   uint64_t *anomalies);

/* Decode one whole ADU (MBAP header + PDU). `dir` says which side sent it.
 * Fills *out completely, also when the result is MALFORMED (raw fields as far as read). */
BMS_WUR enum bms_parse_result modbus_decode(const uint8_t *adu, size_t len, enum bms_dir dir,
					    struct bms_request *out);

/* Encode the exception response to a request (fc | 0x80, code) with the
 * request's transaction id and unit. Returns the number of bytes written (9). */
size_t modbus_encode_exception(uint16_t tid, uint8_t unit, uint8_t fc, uint8_t code,
			       uint8_t out[static 9]);

/* Name of an anomaly bit ("bad_protocol_id"...), or NULL. */
const char *modbus_anomaly_name(unsigned bit);
/* Name of a function code ("read_holding_registers"...). */
const char *modbus_fc_name(uint8_t fc);

#endif
