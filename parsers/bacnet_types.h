/* parsers/bacnet_types.h: the raw BACnet/IP fields kept beside the request model (types only). */
#ifndef BMS_BACNET_TYPES_H
#define BMS_BACNET_TYPES_H

#include <stdint.h>

#define BACNET_MAX_MAC 8

struct bacnet_fields {
	/* BVLC */
	uint8_t bvlc_type;       /* 0x81 for BACnet/IP */
	uint8_t bvlc_function;
	uint16_t bvlc_length;
	/* NPDU */
	uint8_t has_npdu;
	uint8_t npdu_version;
	uint8_t npdu_control;
	uint8_t has_dnet, has_snet;
	uint16_t dnet, snet;
	uint8_t dadr_len, sadr_len;
	uint8_t dadr[BACNET_MAX_MAC], sadr[BACNET_MAX_MAC];
	uint8_t hop_count;
	uint8_t has_net_msg;
	uint8_t net_msg_type;
	/* APDU */
	uint8_t has_apdu;
	uint8_t pdu_type;        /* 0..7 */
	uint8_t pdu_flags;       /* low nibble of the first APDU octet (SEG, MOR, SA / NAK, SRV) */
	uint8_t max_segs, max_apdu; /* confirmed request: decoded codes as on the wire */
	uint8_t invoke_id;
	uint8_t has_invoke_id;
	uint8_t sequence_number, window_size; /* segmented messages */
	uint8_t has_service;
	uint8_t service;         /* service choice */
	uint32_t error_class, error_code;   /* Error PDU */
	uint8_t reason;          /* Reject / Abort reason */
	uint8_t password_present; /* DCC / ReinitializeDevice carried a password (its value is never kept) */
};

#endif
