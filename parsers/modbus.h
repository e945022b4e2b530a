/* parsers/modbus.h: Modbus/TCP framing and decoding (pure: no I/O, no allocation).
 *
 * Reference: MODBUS Application Protocol Specification V1.1b3 (2012) and
 * MODBUS Messaging on TCP/IP Implementation Guide V1.0b. See docs/modbus.md.
 */
#ifndef BMS_MODBUS_H
#define BMS_MODBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"
#include "parsers/request.h"

#define MODBUS_MBAP_LEN 7
#define MODBUS_MAX_ADU 260 /* 7-byte MBAP + 253-byte PDU */
#define MODBUS_MIN_ADU 8   /* MBAP + function code */

/* Anomaly bits of struct bms_request.anomalies for Modbus. Their names
 * (modbus_anomaly_name) are stable: JSON output, the audit trail and policy
 * files use them. Bits 0..31 mean "cannot be a valid PDU" and come with
 * BMS_MALFORMED; bits 32..63 are merely notable and never make a frame
 * malformed. Never renumber or rename; append. */
enum modbus_anomaly {
	/* framing and structure: MALFORMED */
	MB_AN_TRUNCATED_HEADER = 0,      /* fewer than 7 bytes of MBAP header */
	MB_AN_BAD_PROTOCOL_ID = 1,       /* MBAP protocol id not 0 */
	MB_AN_BAD_LENGTH = 2,            /* MBAP length outside 2..254 */
	MB_AN_LENGTH_MISMATCH = 3,       /* ADU size differs from 6 + MBAP length */
	MB_AN_PDU_TRUNCATED = 4,         /* PDU shorter than its function code requires */
	MB_AN_PDU_TRAILING_BYTES = 5,    /* PDU longer than its function code implies */
	MB_AN_INVALID_FUNCTION_CODE = 6, /* function code 0, or >= 0x80 in a request */
	MB_AN_BYTE_COUNT_MISMATCH = 7,   /* byte count field disagrees with the bytes present */
	MB_AN_BYTE_COUNT_QUANTITY_MISMATCH = 8, /* byte count disagrees with the quantity */
	MB_AN_BAD_BYTE_COUNT = 9,        /* byte count outside its allowed range / step */
	MB_AN_BAD_QUANTITY = 10,         /* quantity 0 or above the function's limit */
	MB_AN_ADDRESS_OVERFLOW = 11,     /* start address + quantity beyond 65536 */
	MB_AN_BAD_COIL_VALUE = 12,       /* FC 5 value not 0x0000/0xFF00 */
	MB_AN_BAD_DIAG_DATA = 13,        /* FC 8 data wrong size/value for the sub-function */
	MB_AN_BAD_STATUS_VALUE = 14,     /* FC 11/12 status not 0x0000/0xFFFF */
	MB_AN_BAD_REFERENCE_TYPE = 15,   /* FC 20/21 reference type not 6 */
	MB_AN_BAD_FILE_NUMBER = 16,      /* FC 20/21 file number 0 */
	MB_AN_BAD_RECORD_NUMBER = 17,    /* FC 20/21 record number above 9999 */
	MB_AN_BAD_RECORD_LENGTH = 18,    /* FC 20/21 record length 0, or response too large */
	MB_AN_RECORD_OVERFLOW = 19,      /* FC 20/21 record number + length beyond 10000 */
	MB_AN_BAD_FIFO_COUNT = 20,       /* FC 24 FIFO count above 31 */
	MB_AN_BAD_DEVICE_ID_CODE = 21,   /* FC 43/14 read device id code not 1..4 */
	MB_AN_BAD_CONFORMITY_LEVEL = 22, /* FC 43/14 conformity level not 01..03/81..83 */
	MB_AN_BAD_MORE_FOLLOWS = 23,     /* FC 43/14 more follows not 00/FF (00 for code 4) */
	MB_AN_OBJECT_LIST_MISMATCH = 24, /* FC 43/14 objects disagree with their count */
	/* modbus_check_response: MALFORMED as a response to that request */
	MB_AN_RESPONSE_FC_MISMATCH = 25,
	MB_AN_RESPONSE_UNIT_MISMATCH = 26,
	MB_AN_RESPONSE_COUNT_MISMATCH = 27,
	MB_AN_RESPONSE_ECHO_MISMATCH = 28,
	MB_AN_RESPONSE_TID_MISMATCH = 29,
	MB_AN_DIRECTION_MISMATCH = 30,   /* check_response given something other than request, response;
					  * check_answer given a request that cannot be one */
	/* notable, not malformed */
	MB_AN_UNASSIGNED_FUNCTION = 32,  /* a public code the specification does not assign */
	MB_AN_USER_DEFINED_FUNCTION = 33, /* 65..72, 100..110 */
	MB_AN_RESERVED_FUNCTION = 34,    /* 9, 10, 13, 14, 41, 42, 90, 91, 125..127 (legacy/vendor) */
	MB_AN_RESERVED_DIAG_SUBFUNCTION = 35,
	MB_AN_RESERVED_MEI_TYPE = 36,    /* FC 43 MEI type other than 13, 14 */
	MB_AN_UNKNOWN_EXCEPTION_CODE = 37, /* exception code not defined by V1.1b3 (check_answer: nor 07) */
	MB_AN_BROADCAST_UNIT = 38,       /* request to unit 0 (broadcast behind a gateway) */
	MB_AN_NONZERO_PADDING = 39,      /* unused high bits of the last coil byte set */
	MB_AN_TOO_MANY_TARGETS = 40,     /* more ranges than BMS_MAX_TARGETS */
	MB_AN_DIAG_RESTART_COMMS = 41,   /* FC 8/01: restarts the device's serial port */
	MB_AN_DIAG_FORCE_LISTEN_ONLY = 42, /* FC 8/04: silences the device until restarted */
	MB_AN_DIAG_CLEAR_COUNTERS = 43,  /* FC 8/0A, 8/14: clears counters */
	MB_AN_DIAG_CHANGE_DELIMITER = 44, /* FC 8/03: changes the ASCII end-of-message char */
	MB_AN_UNEXPECTED_RESPONSE = 45,  /* a response to FC 8/04, which gets none */
};
#define MODBUS_MALFORMED_MASK 0x00000000FFFFFFFFull

/* Stream framer over the bytes at the start of a TCP stream buffer.
 * OK: *frame_len = length of the whole ADU at buf[0].
 * NEED_MORE: *frame_len = total bytes needed before a frame can be cut
 * (MODBUS_MIN_ADU while the length field is not yet there).
 * MALFORMED: the header can never be valid (protocol id, length); *anomalies says why.
 * One frame per call: the caller loops, consuming *frame_len bytes each time. */
BMS_WUR enum bms_parse_result modbus_frame(const uint8_t *buf, size_t len, size_t *frame_len,
					   uint64_t *anomalies);

/* Decode one whole ADU (MBAP header + PDU). `dir` says which side sent it.
 * Fills *out completely, also when the result is MALFORMED (raw fields as far as read;
 * ntargets is 0 on MALFORMED so that nobody acts on half-checked ranges).
 * Never returns NEED_MORE: `len` must be the frame modbus_frame cut. */
BMS_WUR enum bms_parse_result modbus_decode(const uint8_t *adu, size_t len, enum bms_dir dir,
					    struct bms_request *out);

/* Check a decoded response against the decoded request it answers: same
 * transaction, unit and function; byte counts match the requested quantity;
 * FC 5/6/15/16/21/22 and echoing FC 8 sub-functions echo the request.
 * *anomalies receives the bits found (MB_AN_RESPONSE_* malformed ones, or
 * MB_AN_NONZERO_PADDING). Returns MALFORMED when the response cannot answer
 * the request, OK otherwise. An exception response answers any request of its fc. */
BMS_WUR enum bms_parse_result modbus_check_response(const struct bms_request *req,
						    const struct bms_request *rsp,
						    uint64_t *anomalies);

/* Anomaly bits that make modbus_check_answer say an answer is not one to its request: the
 * malformed ones, and two notable ones that are merely notable in a capture but mean, for a
 * gateway that relays the answer, that the device said something no correct device says. */
#define MODBUS_ANSWER_BAD_MASK                                                                  \
	(MODBUS_MALFORMED_MASK | 1ull << MB_AN_UNKNOWN_EXCEPTION_CODE | 1ull << MB_AN_UNEXPECTED_RESPONSE)

/* The first inconsistent field modbus_check_answer found, for a message that quotes it. */
struct modbus_answer_fault {
	const char *field; /* static text ("byte count", "function code", ...); NULL when consistent */
	uint32_t got;      /* the value in the answer (a length: the bytes there are) */
	uint32_t want;     /* the value the request implies, when has_want */
	bool has_want;
};

/* Check a device's answer ADU against the request ADU it answers (both whole frames as
 * modbus_frame cut them; the request one the guard decoded OK and forwarded), without
 * decoding either into a request model: same transaction, unit and function (or its
 * exception with one code byte in the defined set); the MBAP length matches the frame;
 * byte counts match both the bytes that follow and the quantity requested; writes and
 * echoing FC 8 sub-functions echo the request; FC 20/24/43 answers are consistent with
 * their own counts. Opaque function codes are checked only for transaction, unit, code.
 * OK, or MALFORMED when any MODBUS_ANSWER_BAD_MASK bit is set in *anomalies (notable
 * bits such as nonzero_padding may come with OK). `fault` may be NULL. Pure. */
BMS_WUR enum bms_parse_result modbus_check_answer(const uint8_t *req, size_t req_len, const uint8_t *ans,
						  size_t ans_len, uint64_t *anomalies,
						  struct modbus_answer_fault *fault);

/* Fill the address range of a read response's targets from its request (the
 * response PDU carries only data): FC 1-4, 23 get start/count of the read
 * range, FC 20 the file/record of each sub-request, FC 24 the FIFO pointer.
 * Call after modbus_check_response returned OK. */
void modbus_pair_response(const struct bms_request *req, struct bms_request *rsp);

/* Encode the exception response to a request (fc | 0x80, code) with the
 * request's transaction id and unit. Returns the number of bytes written (9). */
size_t modbus_encode_exception(uint16_t tid, uint8_t unit, uint8_t fc, uint8_t code,
			       uint8_t out[static 9]);

/* Name of an anomaly bit ("bad_protocol_id"...), or NULL. */
const char *modbus_anomaly_name(unsigned bit);
/* The bit of an anomaly name, or -1. */
int modbus_anomaly_from_name(const char *name);
/* Name of a function code ("read_holding_registers"...); the exception bit is
 * ignored; "user_defined", "reserved", "unassigned" or "invalid" otherwise. */
const char *modbus_fc_name(uint8_t fc);
/* Name of an exception code ("illegal_data_address"...), or "unknown". */
const char *modbus_exception_name(uint8_t code);
/* Name of an FC 8 sub-function ("force_listen_only_mode"...), or "reserved". */
const char *modbus_diag_name(uint16_t sub);
/* Name of an FC 43 MEI type ("read_device_identification"...), or "reserved". */
const char *modbus_mei_name(uint8_t mei);
/* Operation class of a function code (exception bit ignored). */
enum bms_op modbus_fc_op(uint8_t fc);

/* What modbus_encode_request builds (parsers/modbus_encode.c). */
struct modbus_request_spec {
	uint8_t fc;                    /* 1-6, 15, 16, 23 */
	uint16_t start, count;         /* FC 23: the read half */
	uint16_t write_start, write_count; /* FC 23 only */
	bool coil_on;                  /* FC 5 */
	const uint8_t *data;           /* borrowed: FC 6 the register (2 bytes); 15/16/23 the values */
	size_t data_len;
};
/* A request ADU as a client sends it, with any start and quantity (the decoder judges
 * them). 0 and the size in *out_len; -EINVAL for another function code or data that
 * does not fit one frame; -ENOSPC when cap is too small. Pure. */
BMS_WUR int modbus_encode_request(uint16_t tid, uint8_t unit, const struct modbus_request_spec *spec, uint8_t *out,
				  size_t cap, size_t *out_len);

#endif
