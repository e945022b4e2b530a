/* parsers/bacnet.c: placeholder until the BACnet decoder lands: rejects everything. */
#include <string.h>

#include "parsers/bacnet.h"

enum bms_parse_result bacnet_decode(const uint8_t *dgram, size_t len, struct bms_request *out)
{
	(void)dgram;
	(void)len;
	memset(out, 0, sizeof(*out));
	out->proto = BMS_PROTO_BACNET;
	return BMS_MALFORMED;
}

const char *bacnet_anomaly_name(unsigned bit)
{
	(void)bit;
	return NULL;
}

const char *bacnet_confirmed_service_name(uint8_t service)
{
	(void)service;
	return "unknown";
}

const char *bacnet_unconfirmed_service_name(uint8_t service)
{
	(void)service;
	return "unknown";
}
