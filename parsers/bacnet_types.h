/* parsers/bacnet_types.h: the raw BACnet/IP fields kept beside the request model (types only).
 *
 * Everything here is a copy of a value seen on the wire, except `password_present`, which
 * records that DeviceCommunicationControl / ReinitializeDevice carried a password: the
 * password itself is never copied, so it can never reach a log or the audit trail.
 */
#ifndef BMS_BACNET_TYPES_H
#define BMS_BACNET_TYPES_H

#include <stdint.h>

#define BACNET_MAX_MAC 8

struct bacnet_fields {
	/* BVLC (Annex J) */
	uint8_t bvlc_type;       /* 0x81 for BACnet/IP */
	uint8_t bvlc_function;
	uint16_t bvlc_length;
	uint16_t bvlc_result;    /* BVLC-Result code */
	uint16_t bvlc_ttl;       /* Register-Foreign-Device time-to-live, seconds */
	uint16_t bvlc_entries;   /* Write-BDT / Read-BDT-Ack / Read-FDT-Ack: number of entries */
	uint8_t has_bvlc_addr;   /* Forwarded-NPDU original source / Delete-FDT-Entry address */
	uint8_t bvlc_addr[6];    /* IPv4 address (4) + UDP port (2), network order */
	/* NPDU (clause 6) */
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
	uint16_t net_msg_vendor;  /* proprietary network messages 0x80..0xFF */
	/* APDU (clause 20) */
	uint8_t has_apdu;
	uint8_t pdu_type;        /* 0..7 */
	uint8_t pdu_flags;       /* low nibble of the first APDU octet (SEG, MOR, SA / NAK, SRV) */
	uint8_t max_segs, max_apdu; /* confirmed request: codes as on the wire */
	uint8_t invoke_id;
	uint8_t has_invoke_id;
	uint8_t segmented;       /* SEG bit set: parameters span several datagrams and are not decoded */
	uint8_t sequence_number, window_size; /* segmented messages and SegmentACK */
	uint8_t has_service;
	uint8_t service;         /* service choice (also the error choice of an Error PDU) */
	uint32_t error_class, error_code;   /* Error PDU */
	uint8_t has_reason;
	uint8_t reason;          /* Reject / Abort reason */
	uint8_t password_present; /* DCC / ReinitializeDevice carried a password (its value is never kept) */
	/* Service parameters that are not a target */
	uint8_t has_range;       /* Who-Is / Who-Has device instance range */
	uint32_t range_low, range_high;
	uint8_t has_vendor;      /* private transfers, I-Am, Who-Am-I */
	uint16_t vendor_id;
	uint32_t service_number; /* private transfers */
	uint32_t enable_disable; /* DeviceCommunicationControl */
	uint8_t has_duration;
	uint32_t duration;       /* DeviceCommunicationControl, minutes */
	uint32_t reinit_state;   /* ReinitializeDevice */
	uint8_t has_datetime;    /* (UTC)TimeSynchronization: Date and Time as on the wire */
	uint8_t date[4], time[4];
	int32_t file_start;      /* AtomicRead/WriteFile start position or record (signed: -1 = append) */
	uint32_t group_number;   /* WriteGroup */
	uint32_t process_id;     /* SubscribeCOV*, notifications */
	uint32_t max_apdu_accepted; /* I-Am */
	uint32_t segmentation_supported; /* I-Am */
	uint16_t targets_total;  /* targets seen, also beyond BMS_MAX_TARGETS */
};

#endif
