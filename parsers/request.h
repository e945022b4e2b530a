/* parsers/request.h: the protocol-neutral request model (types only).
 *
 * Both decoders fill a struct bms_request; the policy engine, the audit
 * trail, `decode`, `replay` and the gateway read it. It holds no pointer it
 * owns: `data` fields borrow from the frame that was decoded and are valid
 * only as long as that frame is.
 */
#ifndef BMS_REQUEST_H
#define BMS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "parsers/modbus_types.h"
#include "parsers/bacnet_types.h"

/* Three-way parse result: every decoder and framer returns one of these. */
enum bms_parse_result {
	BMS_MALFORMED = -1, /* the bytes can never become a valid PDU; anomalies say why */
	BMS_OK = 0,
	BMS_NEED_MORE = 1, /* a valid prefix; the out-parameter says how many bytes in total */
};

enum bms_proto {
	BMS_PROTO_NONE = 0,
	BMS_PROTO_MODBUS,
	BMS_PROTO_BACNET,
};

enum bms_dir {
	BMS_DIR_REQUEST = 0,
	BMS_DIR_RESPONSE,
};

/* Operation class: what a request does to a building, which is what policy speaks of. */
enum bms_op {
	BMS_OP_NONE = 0,    /* nothing an operator would name (e.g. BVLC housekeeping, acks) */
	BMS_OP_READ,        /* read values: Modbus 1-4, 24; BACnet ReadProperty, RPM, ReadRange, COV subscriptions */
	BMS_OP_WRITE,       /* change stored values: Modbus 5, 6, 15, 16, 22, 23; BACnet WriteProperty, WPM, WriteGroup, list elements */
	BMS_OP_COMMAND,     /* make the device act: BACnet AcknowledgeAlarm, LifeSafetyOperation, text messages */
	BMS_OP_FILE,        /* file transfer: Modbus 20, 21; BACnet AtomicRead/WriteFile */
	BMS_OP_DISCOVERY,   /* who is there: Modbus 43/14, 17; BACnet Who-Is/I-Am, Who-Has/I-Have, Who-Am-I/You-Are */
	BMS_OP_MANAGEMENT,  /* device housekeeping: Modbus 7, 8, 11, 12, 43/13; BACnet DCC, Reinitialize, time sync, Create/DeleteObject */
	BMS_OP_PRIVATE,     /* vendor or user-defined: Modbus 65-72, 100-110; BACnet private transfers */
	BMS_OP_UNKNOWN,     /* a code no specification assigns; decoded opaque */
};
#define BMS_OP_COUNT 9

/* What a target addresses. */
enum bms_space {
	BMS_SPACE_NONE = 0,
	BMS_SPACE_COIL,
	BMS_SPACE_DISCRETE_INPUT,
	BMS_SPACE_HOLDING_REGISTER,
	BMS_SPACE_INPUT_REGISTER,
	BMS_SPACE_FILE_RECORD,  /* Modbus 20/21: `instance` = file number, `start` = record, `count` = length */
	BMS_SPACE_BACNET_OBJECT,
};

enum bms_value_type {
	BMS_VAL_NONE = 0,
	BMS_VAL_NULL,       /* BACnet Null: relinquish a priority */
	BMS_VAL_BOOL,
	BMS_VAL_UNSIGNED,
	BMS_VAL_SIGNED,
	BMS_VAL_REAL,       /* BACnet REAL and Double */
	BMS_VAL_ENUM,
	BMS_VAL_OTHER,      /* strings, dates, constructed data: present but not numeric */
};

struct bms_value {
	uint8_t type; /* enum bms_value_type */
	union {
		bool b;
		uint64_t u;
		int64_t i;
		double d;
	};
};

#define BMS_NO_INDEX UINT32_MAX
#define BMS_MAX_TARGETS 32

struct bms_target {
	uint8_t space;         /* enum bms_space */
	uint8_t priority;      /* BACnet write priority 1..16; 0 = none given */
	uint16_t object_type;  /* BACnet object type */
	uint32_t instance;     /* BACnet object instance; Modbus file number */
	uint32_t property;     /* BACnet property identifier */
	uint32_t array_index;  /* BACnet array index, or BMS_NO_INDEX */
	uint32_t start;        /* Modbus first address as on the wire (0-based); file record number */
	uint32_t count;        /* Modbus number of coils/registers/records; 0 for BACnet */
	/* Written data, borrowed from the frame. Modbus registers: count * 2 bytes
	 * big-endian; coils: packed bits, LSB first; FC 22: AND mask then OR mask. */
	const uint8_t *data;
	uint16_t data_len;
	/* The single written value where one exists: Modbus FC 5 (coil 0/1) and 6;
	 * BACnet WriteProperty/WPM (first primitive of the value). */
	bool has_value;
	struct bms_value value;
};

struct bms_request {
	uint8_t proto;        /* enum bms_proto */
	uint8_t dir;          /* enum bms_dir */
	uint8_t op;           /* enum bms_op */
	uint32_t unit;        /* Modbus unit id; BACnet: 0 (the device is known by address) */
	uint64_t anomalies;   /* protocol-specific bits: see modbus_anomaly_name(), bacnet_anomaly_name() */
	uint16_t ntargets;    /* more than BMS_MAX_TARGETS sets the protocol's too-many-targets anomaly */
	/* Only targets[0 .. ntargets-1] are defined (see bms_request_reset). */
	struct bms_target targets[BMS_MAX_TARGETS];
	union {               /* the member of `proto` (see bms_request_reset) */
		struct modbus_fields modbus;
		struct bacnet_fields bacnet;
	} raw;
};

/* What a decoder does first: clears the header and the raw fields of its protocol, nothing
 * else. Targets past ntargets and, for Modbus, the bytes of `raw` past `raw.modbus` stay as
 * they were (clearing them per PDU was a measurable share of `decode`); readers bound every
 * loop by ntargets and read only the raw member of `proto`. Test and fuzz builds fill what is
 * left with a pattern, so that a reader that strays sees garbage and fails its test. */
static inline void bms_request_reset(struct bms_request *r, enum bms_proto proto)
{
#if defined(BMS_TESTING) || defined(BMS_FUZZING)
	memset(r->targets, 0xA5, sizeof(r->targets));
	memset(&r->raw, 0xA5, sizeof(r->raw));
#endif
	memset(r, 0, offsetof(struct bms_request, targets));
	if (proto == BMS_PROTO_MODBUS) {
		memset(&r->raw.modbus, 0, sizeof(r->raw.modbus));
	} else {
		/* In two halves: GCC makes one memset of this size a rep stos, slow to start for
		 * 144 bytes; halves become vector stores. */
		memset(&r->raw, 0, sizeof(r->raw) / 2);
		memset((char *)&r->raw + sizeof(r->raw) / 2, 0, sizeof(r->raw) - sizeof(r->raw) / 2);
	}
	r->proto = (uint8_t)proto;
}

const char *bms_op_name(enum bms_op op);
const char *bms_space_name(enum bms_space space);
/* Parses an operation class name ("read", "write", ...); returns BMS_OP_NONE if unknown. */
enum bms_op bms_op_from_name(const char *name);
/* Name of one anomaly bit of a protocol, or NULL if the bit has no name. */
const char *bms_anomaly_name(enum bms_proto proto, unsigned bit);

#endif
