/* parsers/bacnet.h: BACnet/IP decoding: BVLC, NPDU, APDU and service parameters (pure). */
#ifndef BMS_BACNET_H
#define BMS_BACNET_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"
#include "parsers/request.h"

#define BACNET_MAX_NPDU 1497     /* Annex J: largest NPDU on BACnet/IP */
#define BACNET_MAX_DATAGRAM 1507 /* Forwarded-NPDU header (10) + largest NPDU */
#define BACNET_MAX_DEPTH 16      /* opening tags nested deeper than this are malformed */
#define BACNET_MAX_INSTANCE 0x3FFFFFu /* 22-bit object instance */
#define BACNET_MAX_PROPERTY 0x3FFFFFu /* 22-bit property identifier */

/* BVLC functions (Annex J.2). */
enum bacnet_bvlc_function {
	BACNET_BVLC_RESULT = 0x00,
	BACNET_BVLC_WRITE_BDT = 0x01,
	BACNET_BVLC_READ_BDT = 0x02,
	BACNET_BVLC_READ_BDT_ACK = 0x03,
	BACNET_BVLC_FORWARDED_NPDU = 0x04,
	BACNET_BVLC_REGISTER_FD = 0x05,
	BACNET_BVLC_READ_FDT = 0x06,
	BACNET_BVLC_READ_FDT_ACK = 0x07,
	BACNET_BVLC_DELETE_FDT_ENTRY = 0x08,
	BACNET_BVLC_DISTRIBUTE_BROADCAST = 0x09,
	BACNET_BVLC_ORIGINAL_UNICAST = 0x0A,
	BACNET_BVLC_ORIGINAL_BROADCAST = 0x0B,
	BACNET_BVLC_SECURE_BVLL = 0x0C,
};

/* APDU types (clause 20.1). */
enum bacnet_pdu_type {
	BACNET_PDU_CONFIRMED = 0,
	BACNET_PDU_UNCONFIRMED = 1,
	BACNET_PDU_SIMPLE_ACK = 2,
	BACNET_PDU_COMPLEX_ACK = 3,
	BACNET_PDU_SEGMENT_ACK = 4,
	BACNET_PDU_ERROR = 5,
	BACNET_PDU_REJECT = 6,
	BACNET_PDU_ABORT = 7,
};

/* Service choices used by the decoder and the encoders (clause 21). */
enum bacnet_confirmed_service {
	BACNET_SVC_ACKNOWLEDGE_ALARM = 0,
	BACNET_SVC_CONFIRMED_COV_NOTIFICATION = 1,
	BACNET_SVC_CONFIRMED_EVENT_NOTIFICATION = 2,
	BACNET_SVC_GET_ALARM_SUMMARY = 3,
	BACNET_SVC_GET_ENROLLMENT_SUMMARY = 4,
	BACNET_SVC_SUBSCRIBE_COV = 5,
	BACNET_SVC_ATOMIC_READ_FILE = 6,
	BACNET_SVC_ATOMIC_WRITE_FILE = 7,
	BACNET_SVC_ADD_LIST_ELEMENT = 8,
	BACNET_SVC_REMOVE_LIST_ELEMENT = 9,
	BACNET_SVC_CREATE_OBJECT = 10,
	BACNET_SVC_DELETE_OBJECT = 11,
	BACNET_SVC_READ_PROPERTY = 12,
	BACNET_SVC_READ_PROPERTY_CONDITIONAL = 13,
	BACNET_SVC_READ_PROPERTY_MULTIPLE = 14,
	BACNET_SVC_WRITE_PROPERTY = 15,
	BACNET_SVC_WRITE_PROPERTY_MULTIPLE = 16,
	BACNET_SVC_DEVICE_COMMUNICATION_CONTROL = 17,
	BACNET_SVC_CONFIRMED_PRIVATE_TRANSFER = 18,
	BACNET_SVC_CONFIRMED_TEXT_MESSAGE = 19,
	BACNET_SVC_REINITIALIZE_DEVICE = 20,
	BACNET_SVC_VT_OPEN = 21,
	BACNET_SVC_VT_CLOSE = 22,
	BACNET_SVC_VT_DATA = 23,
	BACNET_SVC_AUTHENTICATE = 24,
	BACNET_SVC_REQUEST_KEY = 25,
	BACNET_SVC_READ_RANGE = 26,
	BACNET_SVC_LIFE_SAFETY_OPERATION = 27,
	BACNET_SVC_SUBSCRIBE_COV_PROPERTY = 28,
	BACNET_SVC_GET_EVENT_INFORMATION = 29,
	BACNET_SVC_SUBSCRIBE_COV_PROPERTY_MULTIPLE = 30,
	BACNET_SVC_CONFIRMED_COV_NOTIFICATION_MULTIPLE = 31,
	BACNET_SVC_CONFIRMED_AUDIT_NOTIFICATION = 32,
	BACNET_SVC_AUDIT_LOG_QUERY = 33,
	BACNET_SVC_CONFIRMED_COUNT = 34,
};

enum bacnet_unconfirmed_service {
	BACNET_USVC_I_AM = 0,
	BACNET_USVC_I_HAVE = 1,
	BACNET_USVC_COV_NOTIFICATION = 2,
	BACNET_USVC_EVENT_NOTIFICATION = 3,
	BACNET_USVC_PRIVATE_TRANSFER = 4,
	BACNET_USVC_TEXT_MESSAGE = 5,
	BACNET_USVC_TIME_SYNCHRONIZATION = 6,
	BACNET_USVC_WHO_HAS = 7,
	BACNET_USVC_WHO_IS = 8,
	BACNET_USVC_UTC_TIME_SYNCHRONIZATION = 9,
	BACNET_USVC_WRITE_GROUP = 10,
	BACNET_USVC_COV_NOTIFICATION_MULTIPLE = 11,
	BACNET_USVC_AUDIT_NOTIFICATION = 12,
	BACNET_USVC_WHO_AM_I = 13,
	BACNET_USVC_YOU_ARE = 14,
	BACNET_USVC_COUNT = 15,
};

/* Anomaly bits (struct bms_request.anomalies). The names are stable: they appear in JSON
 * output and in the audit trail. Bits marked (info) do not make a datagram malformed. */
enum bacnet_anomaly {
	BACNET_AN_BVLC_TRUNCATED = 0,      /* fewer than 4 octets */
	BACNET_AN_BVLC_BAD_TYPE,           /* type octet is not 0x81 */
	BACNET_AN_BVLC_LENGTH_MISMATCH,    /* BVLC length != datagram length */
	BACNET_AN_BVLC_UNKNOWN_FUNCTION,   /* function 0x0D..0xFF */
	BACNET_AN_BVLC_BAD_LENGTH,         /* fixed-size function with the wrong size */
	BACNET_AN_BVLC_BDT_ENTRY_LENGTH,   /* BDT list not a multiple of 10 octets */
	BACNET_AN_BVLC_FDT_ENTRY_LENGTH,   /* FDT list not a multiple of 10 octets */
	BACNET_AN_BVLC_BAD_RESULT_CODE,    /* BVLC-Result code not defined by Annex J */
	BACNET_AN_BVLC_TOO_LONG,           /* datagram longer than BACNET_MAX_DATAGRAM */
	BACNET_AN_BVLC_SECURE,             /* (info) Secure-BVLL: payload is not decoded */
	BACNET_AN_NPDU_TRUNCATED,          /* NPCI ends before its fields */
	BACNET_AN_NPDU_BAD_VERSION,        /* version octet is not 1 */
	BACNET_AN_NPDU_RESERVED_BITS,      /* control bits 6 or 4 set */
	BACNET_AN_NPDU_BAD_DNET,           /* DNET 0 */
	BACNET_AN_NPDU_BAD_DLEN,           /* DLEN > 8, or a global broadcast with a DADR */
	BACNET_AN_NPDU_BAD_SNET,           /* SNET 0 or 0xFFFF */
	BACNET_AN_NPDU_BAD_SLEN,           /* SLEN 0 or > 8 */
	BACNET_AN_NPDU_ZERO_HOP_COUNT,     /* (info) hop count 0: a router would discard it */
	BACNET_AN_NPDU_UNKNOWN_MESSAGE,    /* (info) reserved network message type 0x14..0x7F */
	BACNET_AN_NPDU_MESSAGE_TRUNCATED,  /* network message parameters truncated or overlong */
	BACNET_AN_APDU_MISSING,            /* no APDU after an NPCI that announces one */
	BACNET_AN_APDU_TRUNCATED,          /* APDU header shorter than its type needs */
	BACNET_AN_APDU_BAD_TYPE,           /* PDU type 8..15 */
	BACNET_AN_APDU_RESERVED_BITS,      /* reserved bits of the APDU header set */
	BACNET_AN_APDU_BAD_MAX_APDU,       /* max-APDU-length-accepted code 6..15 */
	BACNET_AN_APDU_BAD_WINDOW_SIZE,    /* proposed/actual window size 0 or > 127 */
	BACNET_AN_APDU_MOR_WITHOUT_SEG,    /* more-follows set on an unsegmented message */
	BACNET_AN_APDU_SEGMENTED,          /* (info) segmented: parameters are not decoded */
	BACNET_AN_APDU_TRAILING_DATA,      /* octets after a fixed-size APDU */
	BACNET_AN_TAG_TRUNCATED,           /* a tag header or its extended fields run past the end */
	BACNET_AN_TAG_LENGTH_OVERFLOW,     /* a tag's length runs past the end */
	BACNET_AN_TAG_RESERVED,            /* extended tag number 255, or application tag 13..15 */
	BACNET_AN_TAG_BAD_LENGTH,          /* an application tag's length is wrong for its type */
	BACNET_AN_TAG_NESTING_TOO_DEEP,    /* more than BACNET_MAX_DEPTH nested opening tags */
	BACNET_AN_TAG_UNBALANCED,          /* closing tag without opening, mismatched or unclosed */
	BACNET_AN_SERVICE_TRUNCATED,       /* a required service parameter is missing */
	BACNET_AN_SERVICE_UNEXPECTED_TAG,  /* a parameter has the wrong tag */
	BACNET_AN_SERVICE_TRAILING_DATA,   /* octets after the last service parameter */
	BACNET_AN_SERVICE_VALUE_RANGE,     /* a parameter is out of its range (instance, index, ...) */
	BACNET_AN_BAD_PRIORITY,            /* write priority not 1..16 */
	BACNET_AN_TOO_MANY_TARGETS,        /* more than BMS_MAX_TARGETS targets (malformed for writes) */
	BACNET_AN_UNKNOWN_SERVICE,         /* (info) service choice no edition assigns */
	BACNET_AN_WHO_IS_HALF_RANGE,       /* only one of the two range limits */
	BACNET_AN_PASSWORD_TOO_LONG,       /* DCC / Reinitialize password over 20 characters */
	BACNET_AN_UNKNOWN_REASON,          /* (info) reserved Reject / Abort reason 10..63 / 12..63 */
	BACNET_AN_SERVICE_EMPTY_LIST,      /* RPM / WPM with no object or no property */
	BACNET_AN_COUNT
};

#define BACNET_AN(bit) (UINT64_C(1) << (bit))

/* The (info) anomalies. A datagram is MALFORMED iff it has any other anomaly, or
 * too_many_targets on an operation other than a read (unchecked targets of a write). */
#define BACNET_INFO_ANOMALIES (BACNET_AN(BACNET_AN_BVLC_SECURE) | BACNET_AN(BACNET_AN_NPDU_ZERO_HOP_COUNT) | \
			       BACNET_AN(BACNET_AN_NPDU_UNKNOWN_MESSAGE) | BACNET_AN(BACNET_AN_APDU_SEGMENTED) | \
			       BACNET_AN(BACNET_AN_UNKNOWN_SERVICE) | BACNET_AN(BACNET_AN_UNKNOWN_REASON) | \
			       BACNET_AN(BACNET_AN_TOO_MANY_TARGETS))

/* Decode one BACnet/IP datagram (the UDP payload). The direction comes from
 * the PDU type: confirmed and unconfirmed requests are requests, acks and
 * errors are responses. Fills *out also when MALFORMED. Never NEED_MORE. */
BMS_WUR enum bms_parse_result bacnet_decode(const uint8_t *dgram, size_t len, struct bms_request *out);

/* Name of an anomaly bit ("bvlc_length_mismatch"...), or NULL. */
const char *bacnet_anomaly_name(unsigned bit);
/* Names of a confirmed / unconfirmed service choice ("readProperty"...), never NULL. */
const char *bacnet_confirmed_service_name(uint8_t service);
const char *bacnet_unconfirmed_service_name(uint8_t service);
/* Operation class of a confirmed / unconfirmed service (BMS_OP_UNKNOWN if unassigned). */
enum bms_op bacnet_confirmed_service_op(uint8_t service);
enum bms_op bacnet_unconfirmed_service_op(uint8_t service);
/* Names of a BVLC function, a network message type, a PDU type ("unknown" if none). */
const char *bacnet_bvlc_function_name(uint8_t function);
const char *bacnet_net_msg_name(uint8_t type);
const char *bacnet_pdu_type_name(uint8_t type);

/* Deny replies for the gateway (pure). Each answers `req`, which must be a decoded confirmed
 * request (else -EINVAL), with BVLC Original-Unicast-NPDU + NPDU + APDU in buf[0..cap).
 * A request that came through a router (SNET present) is answered to SNET/SADR.
 * Returns 0 and the size in *out_len, -ENOSPC if cap is too small. bacnet_encode_error returns
 * -ENOTSUP where the service's error type names what this decoder did not keep
 * (SubscribeCOVPropertyMultiple; a segmented WritePropertyMultiple): answer with Reject or Abort. */
#define BACNET_ERROR_CLASS_SECURITY 4
#define BACNET_ERROR_CODE_READ_ACCESS_DENIED 27
#define BACNET_ERROR_CODE_SERVICE_REQUEST_DENIED 29
#define BACNET_ERROR_CODE_WRITE_ACCESS_DENIED 40
/* Reject reasons (clause 18.8) and Abort reasons (clause 18.9) the gateway sends. */
#define BACNET_REJECT_OTHER 0
#define BACNET_REJECT_INVALID_TAG 4
#define BACNET_REJECT_MISSING_REQUIRED_PARAMETER 5
#define BACNET_REJECT_PARAMETER_OUT_OF_RANGE 6
#define BACNET_REJECT_TOO_MANY_ARGUMENTS 7
#define BACNET_ABORT_SEGMENTATION_NOT_SUPPORTED 4
#define BACNET_ABORT_SECURITY_ERROR 5
BMS_WUR int bacnet_encode_error(const struct bms_request *req, uint32_t error_class, uint32_t error_code,
				uint8_t *buf, size_t cap, size_t *out_len);
BMS_WUR int bacnet_encode_reject(const struct bms_request *req, uint8_t reason,
				 uint8_t *buf, size_t cap, size_t *out_len);
/* Abort sent by the server side (SRV = 1), as a gateway standing in for the device does. */
BMS_WUR int bacnet_encode_abort(const struct bms_request *req, uint8_t reason,
				uint8_t *buf, size_t cap, size_t *out_len);

/* Confirmed requests as a client sends them (pure; for `policy explain`, tests and peers):
 * BVLC Original-Unicast-NPDU, NPDU expecting a reply, max APDU 1476, no segmentation.
 * 0 and the size in *out_len; -EINVAL for an identifier that does not fit its field or a
 * value type with no primitive encoding here; -ENOSPC if cap is too small. Faithful, not
 * judging: a priority over 16 is written as given, for the decoder to flag. */
struct bacnet_property_ref {
	uint16_t object_type;  /* 0..1023 */
	uint32_t instance;     /* 0..BACNET_MAX_INSTANCE */
	uint32_t property;
	uint32_t array_index;  /* BMS_NO_INDEX: none */
};
BMS_WUR int bacnet_encode_read_property(uint8_t invoke_id, const struct bacnet_property_ref *ref, uint8_t *buf,
					size_t cap, size_t *out_len);
/* `priority`: 0 for none. */
BMS_WUR int bacnet_encode_write_property(uint8_t invoke_id, const struct bacnet_property_ref *ref,
					 const struct bms_value *v, uint8_t priority, uint8_t *buf, size_t cap,
					 size_t *out_len);

#endif
