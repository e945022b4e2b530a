/* engine/modbus.c: the Modbus/TCP step: MBAP framing, decode, route by unit id, decide,
 * and the exception the gateway answers with (see inspect.h). */
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"
#include "parsers/modbus.h"

static void answer_exception(struct engine_verdict *v, const uint8_t *adu, uint8_t code)
{
	/* MBAP: tid(2) proto(2) len(2) unit(1) then fc(1); the frame was cut, so these bytes exist */
	uint16_t tid = (uint16_t)(adu[0] << 8 | adu[1]);
	v->answer_len = modbus_encode_exception(tid, adu[6], (uint8_t)(adu[7] & 0x7f), code, v->answer);
	v->answer_code = code;
	v->action = ENGINE_ANSWER;
}

static void malformed(const struct engine_ctx *ctx, struct engine_verdict *v, const uint8_t *buf, size_t frame_len,
		      const char *why)
{
	engine_malformed(v, why);
	/* A frame that was cut by its declared length can be answered and the stream goes on;
	 * a header that cannot be framed leaves no way to find the next frame. */
	if (frame_len >= 8 && ctx->routes->malformed == ENGINE_MALFORMED_ANSWER) {
		answer_exception(v, buf, ENGINE_EXC_ILLEGAL_DATA_VALUE);
		v->consumed = frame_len;
	} else {
		v->action = ENGINE_CLOSE;
		v->consumed = 0;
	}
}

/* The request of buf[0, n): the input's own when it decoded exactly these bytes, else decoded here. */
static enum bms_parse_result decode(const struct engine_input *in, struct engine_verdict *v, size_t n)
{
	if (in->req != NULL && in->req->proto == BMS_PROTO_MODBUS && n == in->len) {
		v->req = in->req;
		return (enum bms_parse_result)in->req_result;
	}
	v->req = &v->own_req;
	return modbus_decode(in->bytes, n, BMS_DIR_REQUEST, &v->own_req);
}

void engine_modbus_step(const struct engine_ctx *ctx, const struct engine_input *in, struct engine_verdict *v)
{
	const uint8_t *buf = in->bytes;
	size_t len = in->len, flen = 0;
	unsigned limit = ctx->routes->modbus_frame_size;
	uint64_t anomalies = 0;
	char words[64], why[96];

	/* the frame is cut by its header alone (7 bytes read), so this costs nothing next to a decode */
	enum bms_parse_result fr = modbus_frame(buf, len, &flen, &anomalies);
	if (fr == BMS_NEED_MORE) {
		if (flen > limit) {
			if (in->req != NULL && in->req->proto == BMS_PROTO_MODBUS) {
				v->req = in->req;
			} else {
				bms_request_reset(&v->own_req, BMS_PROTO_MODBUS);
				v->own_req.dir = BMS_DIR_REQUEST;
			}
			snprintf(why, sizeof(why), "frame of %zu bytes exceeds frame-size %u", flen, limit);
			malformed(ctx, v, buf, 0, why);
			return;
		}
		v->need = flen;
		return;
	}
	if (fr == BMS_MALFORMED) {
		/* decode what the header allows, so the audit record names the tid, unit and anomalies */
		(void)decode(in, v, len < MODBUS_MAX_ADU ? len : MODBUS_MAX_ADU);
		if (v->req == &v->own_req)
			v->own_req.anomalies |= anomalies;
		engine_anomaly_words(BMS_PROTO_MODBUS, v->req->anomalies | anomalies, words, sizeof(words));
		snprintf(why, sizeof(why), "unframeable MBAP header: %s", words[0] ? words : "bad header");
		malformed(ctx, v, buf, 0, why);
		return;
	}
	if (flen > limit) {
		(void)decode(in, v, flen);
		snprintf(why, sizeof(why), "frame of %zu bytes exceeds frame-size %u", flen, limit);
		malformed(ctx, v, buf, 0, why);
		return;
	}
	if (decode(in, v, flen) != BMS_OK) {
		engine_anomaly_words(BMS_PROTO_MODBUS, v->req->anomalies, words, sizeof(words));
		snprintf(why, sizeof(why), "malformed request: %s", words[0] ? words : "undecodable PDU");
		malformed(ctx, v, buf, flen, why);
		return;
	}

	v->consumed = flen;
	const struct engine_route *r = engine_route_modbus(ctx->routes, buf[6]);
	if (!r) {
		/* nothing to forward to: the gateway's own "path unavailable", recorded as a deny */
		engine_refuse(v, "no device is configured for unit %u: no 'device' block of the guard routes it", buf[6]);
		answer_exception(v, buf, ENGINE_EXC_PATH_UNAVAILABLE);
		return;
	}
	if (!engine_decide(ctx, v, r, buf[6]))
		answer_exception(v, buf, ENGINE_EXC_ILLEGAL_FUNCTION);
}
