/* parsers/request.c: names for the request model's enumerations. */
#include <string.h>

#include "parsers/request.h"
#include "parsers/modbus.h"
#include "parsers/bacnet.h"

static const char *const op_names[BMS_OP_COUNT] = {
	[BMS_OP_NONE] = "none",
	[BMS_OP_READ] = "read",
	[BMS_OP_WRITE] = "write",
	[BMS_OP_COMMAND] = "command",
	[BMS_OP_FILE] = "file",
	[BMS_OP_DISCOVERY] = "discovery",
	[BMS_OP_MANAGEMENT] = "management",
	[BMS_OP_PRIVATE] = "private",
	[BMS_OP_UNKNOWN] = "unknown",
};

const char *bms_op_name(enum bms_op op)
{
	if ((unsigned)op >= BMS_OP_COUNT)
		return "invalid";
	return op_names[op];
}

enum bms_op bms_op_from_name(const char *name)
{
	for (unsigned i = 1; i < BMS_OP_COUNT; i++)
		if (strcmp(op_names[i], name) == 0)
			return (enum bms_op)i;
	return BMS_OP_NONE;
}

const char *bms_space_name(enum bms_space space)
{
	switch (space) {
	case BMS_SPACE_NONE: return "none";
	case BMS_SPACE_COIL: return "coil";
	case BMS_SPACE_DISCRETE_INPUT: return "discrete-input";
	case BMS_SPACE_HOLDING_REGISTER: return "holding-register";
	case BMS_SPACE_INPUT_REGISTER: return "input-register";
	case BMS_SPACE_FILE_RECORD: return "file-record";
	case BMS_SPACE_BACNET_OBJECT: return "object";
	}
	return "invalid";
}

const char *bms_anomaly_name(enum bms_proto proto, unsigned bit)
{
	switch (proto) {
	case BMS_PROTO_MODBUS: return modbus_anomaly_name(bit);
	case BMS_PROTO_BACNET: return bacnet_anomaly_name(bit);
	case BMS_PROTO_NONE: break;
	}
	return NULL;
}
