/* parsers/modbus_types.h: the raw Modbus/TCP fields kept beside the request model (types only). */
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
};

#endif
