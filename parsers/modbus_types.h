/* parsers/modbus_types.h: the raw Modbus/TCP fields kept beside the request model (types only).
 *
 * Every field is as on the wire. The `has_*` flags say whether a field was
 * present in this PDU (a read response carries no address, an FC 5 request no
 * quantity), so that consumers such as `decode --json` print only what the
 * frame said. `pdu` borrows from the decoded frame.
 */
#ifndef BMS_MODBUS_TYPES_H
#define BMS_MODBUS_TYPES_H

#include <stdint.h>

struct modbus_fields {
	uint16_t tid;         /* MBAP transaction id */
	uint16_t proto_id;    /* MBAP protocol id (must be 0) */
	uint16_t length;      /* MBAP length: unit id + PDU bytes */
	uint8_t unit;         /* MBAP unit id */
	uint8_t fc;           /* function code as on the wire (0x80 bit set for exceptions) */
	uint8_t exception;    /* exception code of an exception response; 0 = none */
	uint8_t has_sub;      /* 1 when `sub` holds a sub-function (FC 8) or MEI type (FC 43) */
	uint16_t sub;         /* FC 8 sub-function or FC 43 MEI type */
	uint16_t byte_count;  /* byte count field where the function has one */
	uint16_t addr;        /* first address of the (first) range, as on the wire */
	uint16_t qty;         /* quantity of the (first) range */
	/* Additions beyond the lead's placeholder. */
	uint8_t has_fc;          /* the function code byte was read */
	uint8_t has_byte_count;  /* `byte_count` was on the wire */
	uint8_t has_addr;        /* `addr` was on the wire (FC 1-6, 15, 16, 22, 23 read range, 24) */
	uint8_t has_qty;         /* `qty` was on the wire (FC 1-4, 15, 16, 23 read quantity; FC 24 response FIFO count) */
	uint8_t has_value;       /* `value` was on the wire (FC 5, 6; FC 22 AND mask) */
	uint16_t value;          /* FC 5/6 value as on the wire; FC 22 AND mask; FC 11 status */
	uint16_t value2;         /* FC 22 OR mask; FC 11/12 event count */
	uint16_t addr2;          /* FC 23 write starting address */
	uint16_t qty2;           /* FC 23 quantity to write */
	uint8_t has_range2;      /* addr2/qty2 were on the wire (FC 23 request) */
	uint8_t devid_code;      /* FC 43/14 read device id code (1..4) */
	uint8_t object_id;       /* FC 43/14 object id (request) or next object id (response) */
	uint8_t conformity;      /* FC 43/14 response conformity level */
	uint8_t more_follows;    /* FC 43/14 response more-follows (0x00/0xFF) */
	uint8_t nobjects;        /* FC 43/14 response number of objects */
	uint16_t nsub;           /* FC 20/21 sub-requests/responses present (may exceed the target cap) */
	uint16_t fifo_count;     /* FC 24 response FIFO count */
	/* The PDU bytes after the function code, borrowed from the frame (for
	 * echo checks and opaque functions). NULL when the frame had no PDU. */
	const uint8_t *pdu;
	uint16_t pdu_len;
};

#endif
