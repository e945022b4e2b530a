/* parsers/modbus.c: placeholder until the Modbus decoder lands: rejects everything. */
#include <string.h>

#include "parsers/modbus.h"

enum bms_parse_result modbus_frame(const uint8_t *buf, size_t len, size_t *frame_len, uint64_t *anomalies)
{
	(void)buf;
	(void)len;
	*frame_len = 0;
	*anomalies = 0;
	return BMS_MALFORMED;
}

enum bms_parse_result modbus_decode(const uint8_t *adu, size_t len, enum bms_dir dir, struct bms_request *out)
{
	(void)adu;
	(void)len;
	memset(out, 0, sizeof(*out));
	out->proto = BMS_PROTO_MODBUS;
	out->dir = (uint8_t)dir;
	return BMS_MALFORMED;
}

size_t modbus_encode_exception(uint16_t tid, uint8_t unit, uint8_t fc, uint8_t code, uint8_t out[static 9])
{
	out[0] = (uint8_t)(tid >> 8);
	out[1] = (uint8_t)tid;
	out[2] = 0;
	out[3] = 0;
	out[4] = 0;
	out[5] = 3;
	out[6] = unit;
	out[7] = (uint8_t)(fc | 0x80);
	out[8] = code;
	return 9;
}

const char *modbus_anomaly_name(unsigned bit)
{
	(void)bit;
	return NULL;
}

const char *modbus_fc_name(uint8_t fc)
{
	(void)fc;
	return "unknown";
}
