/* proxy/inspect.c: frame -> decode -> route -> decide -> audit event -> verdict (see inspect.h).
 *
 * A function that parses or coordinates, never both: the decoders parse, the
 * policy decides; this only strings them together and picks the wire answer.
 */
#include <stdio.h>
#include <string.h>

#include "proxy/inspect.h"
#include "proxy/preflight.h"

static void answer_exception(struct proxy_verdict *v, const uint8_t *adu, uint8_t code)
{
	/* MBAP: tid(2) proto(2) len(2) unit(1) then fc(1); the frame was cut, so these bytes exist */
	uint16_t tid = (uint16_t)(adu[0] << 8 | adu[1]);
	v->answer_len = modbus_encode_exception(tid, adu[6], (uint8_t)(adu[7] & 0x7f), code, v->answer);
	v->action = PROXY_ANSWER;
}

static void malformed(const struct proxy_inspect_ctx *ctx, struct proxy_verdict *v, const uint8_t *buf,
		      size_t frame_len, const char *why)
{
	snprintf(v->detail, sizeof(v->detail), "%s", why);
	v->audit = true;
	v->event.kind = AUDIT_MALFORMED;
	v->event.detail = v->detail;
	v->event.result = AUDIT_RESULT_NOT_FORWARDED;
	/* A frame that was cut by its declared length can be answered and the stream goes on;
	 * a header that cannot be framed leaves no way to find the next frame. */
	if (frame_len >= 8 && ctx->cfg->malformed == PROXY_MALFORMED_EXCEPTION) {
		answer_exception(v, buf, PROXY_EXC_ILLEGAL_DATA_VALUE);
		v->consumed = frame_len;
	} else {
		v->action = PROXY_CLOSE;
		v->consumed = 0;
	}
}

static void anomaly_words(enum bms_proto proto, uint64_t bits, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (unsigned b = 0; b < 64 && off < len; b++) {
		if (!(bits & (1ULL << b)))
			continue;
		const char *n = bms_anomaly_name(proto, b);
		int w = snprintf(buf + off, len - off, "%s%s", off ? "," : "", n ? n : "anomaly");
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

void proxy_inspect(const struct proxy_inspect_ctx *ctx, const uint8_t *buf, size_t len, struct proxy_verdict *v)
{
	size_t flen = 0;
	uint64_t anomalies = 0;
	char words[64];

	v->action = PROXY_NEED_MORE;
	v->consumed = 0;
	v->need = 0;
	v->device = NULL;
	v->audit = false;
	v->answer_len = 0;
	v->detail[0] = '\0';
	memset(&v->event, 0, sizeof(v->event));
	memset(&v->decision, 0, sizeof(v->decision));
	v->event.time_us = ctx->now_us;
	v->event.peer = ctx->who;
	v->event.proto = BMS_PROTO_MODBUS;
	v->event.req = &v->req;

	enum bms_parse_result fr = modbus_frame(buf, len, &flen, &anomalies);
	if (fr == BMS_NEED_MORE) {
		if (flen > ctx->cfg->limits.frame_size) {
			memset(&v->req, 0, sizeof(v->req));
			v->req.proto = BMS_PROTO_MODBUS;
			char why[80];
			snprintf(why, sizeof(why), "frame of %zu bytes exceeds frame-size %u", flen,
				 ctx->cfg->limits.frame_size);
			malformed(ctx, v, buf, 0, why);
			return;
		}
		v->need = flen;
		return;
	}
	if (fr == BMS_MALFORMED) {
		/* decode what the header allows, so the audit record names the tid, unit and anomalies */
		enum bms_parse_result ignored = modbus_decode(buf, len < MODBUS_MAX_ADU ? len : MODBUS_MAX_ADU, BMS_DIR_REQUEST, &v->req);
		(void)ignored;
		v->req.anomalies |= anomalies;
		anomaly_words(BMS_PROTO_MODBUS, v->req.anomalies, words, sizeof(words));
		char why[96];
		snprintf(why, sizeof(why), "unframeable MBAP header: %s", words[0] ? words : "bad header");
		malformed(ctx, v, buf, 0, why);
		return;
	}
	if (flen > ctx->cfg->limits.frame_size) {
		enum bms_parse_result ignored = modbus_decode(buf, flen, BMS_DIR_REQUEST, &v->req);
		(void)ignored;
		char why[80];
		snprintf(why, sizeof(why), "frame of %zu bytes exceeds frame-size %u", flen, ctx->cfg->limits.frame_size);
		malformed(ctx, v, buf, 0, why);
		return;
	}
	enum bms_parse_result dr = modbus_decode(buf, flen, BMS_DIR_REQUEST, &v->req);
	if (dr != BMS_OK) {
		anomaly_words(BMS_PROTO_MODBUS, v->req.anomalies, words, sizeof(words));
		char why[96];
		snprintf(why, sizeof(why), "malformed request: %s", words[0] ? words : "undecodable PDU");
		malformed(ctx, v, buf, flen, why);
		return;
	}

	v->consumed = flen;
	v->audit = true;
	v->event.kind = AUDIT_DECISION;
	v->event.decision = &v->decision;
	const struct proxy_device *dev = proxy_config_route(ctx->cfg, buf[6]);
	const struct bms_policy_device *pdev = NULL;
	if (dev) {
		pdev = bms_policy_find_device(ctx->policy, BMS_PROTO_MODBUS, (const struct sockaddr *)&dev->addr.ss,
					      buf[6]);
		v->event.device = pdev ? bms_policy_device_name(pdev) : dev->name;
	}
	if (!dev) {
		/* nothing to forward to: the gateway's own "path unavailable", recorded as a deny */
		v->decision.verdict = BMS_VERDICT_DENY;
		snprintf(v->decision.reason, sizeof(v->decision.reason),
			 "no device is configured for unit %u: no 'device' block of the guard routes it", buf[6]);
		v->event.result = AUDIT_RESULT_NOT_FORWARDED;
		answer_exception(v, buf, PROXY_EXC_PATH_UNAVAILABLE);
		return;
	}
	if (ctx->roles != NULL) {
		if (ctx->roles->serial != bms_policy_serial(ctx->policy))
			bms_policy_resolve(ctx->policy, ctx->who, ctx->roles);
		bms_policy_decide_resolved(ctx->policy, ctx->state, ctx->who, ctx->roles, pdev, &v->req, ctx->now_us,
					   &v->decision);
	} else {
		bms_policy_decide(ctx->policy, ctx->state, ctx->who, pdev, &v->req, ctx->now_us, &v->decision);
	}
	if (!pdev && ctx->policy) {
		/* The policy's words cannot say where: name what the guard could not place, as the
		 * policy language writes a device, so that the fix can be read off the record. */
		char where[64]; /* the longest IPv6 address and " port 65535" */
		proxy_addr_words((const struct sockaddr *)&dev->addr.ss, where, sizeof(where));
		snprintf(v->decision.reason, sizeof(v->decision.reason),
			 "no device is declared at %s unit %u in the policy (guard device '%.40s')", where,
			 buf[6], dev->name);
	}
	switch (v->decision.verdict) {
	case BMS_VERDICT_ALLOW:
	case BMS_VERDICT_MONITOR_DENY:
		v->action = PROXY_FORWARD;
		v->device = dev;
		v->event.result = AUDIT_RESULT_PENDING;
		return;
	default:
		/* fail closed on anything that is not an explicit allow */
		v->event.result = AUDIT_RESULT_NOT_FORWARDED;
		answer_exception(v, buf, PROXY_EXC_ILLEGAL_FUNCTION);
		return;
	}
}
