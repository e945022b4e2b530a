/* engine/inspect.c: the entry point and what both protocols share: reset the verdict, hand
 * the input to its protocol's step, decide (see inspect.h).
 *
 * A function that parses or coordinates, never both: the decoders parse, the policy
 * decides; this only strings them together, and the protocol files pick the wire answer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"

void engine_anomaly_words(enum bms_proto proto, uint64_t bits, char *buf, size_t len)
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

void engine_malformed(struct engine_verdict *v, const char *why)
{
	snprintf(v->detail, sizeof(v->detail), "%s", why);
	v->audit = true;
	v->event.kind = AUDIT_MALFORMED;
	v->event.detail = v->detail;
	v->event.result = AUDIT_RESULT_NOT_FORWARDED;
}

void engine_refuse(struct engine_verdict *v, const char *fmt, ...)
{
	va_list ap;
	v->audit = true;
	v->event.kind = AUDIT_DECISION;
	v->event.decision = &v->decision;
	v->event.result = AUDIT_RESULT_NOT_FORWARDED;
	v->decision.verdict = BMS_VERDICT_DENY;
	va_start(ap, fmt);
	vsnprintf(v->decision.reason, sizeof(v->decision.reason), fmt, ap);
	va_end(ap);
}

bool engine_decide(const struct engine_ctx *ctx, struct engine_verdict *v, const struct engine_route *r, uint32_t unit)
{
	const struct bms_policy_device *pdev = NULL;
	v->audit = true;
	v->event.kind = AUDIT_DECISION;
	v->event.decision = &v->decision;
	pdev = bms_policy_find_device(ctx->policy, (enum bms_proto)r->proto, (const struct sockaddr *)&r->addr, unit);
	v->event.device = pdev ? bms_policy_device_name(pdev) : r->name;
	if (ctx->roles != NULL) {
		if (ctx->roles->serial != bms_policy_serial(ctx->policy))
			bms_policy_resolve(ctx->policy, ctx->who, ctx->roles);
		bms_policy_decide_resolved(ctx->policy, ctx->state, ctx->who, ctx->roles, pdev, v->req, ctx->now_us,
					   &v->decision);
	} else {
		bms_policy_decide(ctx->policy, ctx->state, ctx->who, pdev, v->req, ctx->now_us, &v->decision);
	}
	if (!pdev && ctx->policy) {
		/* The policy's words cannot say where: name what the gateway could not place, as the
		 * policy language writes a device, so that the fix can be read off the record. */
		char where[64]; /* the longest IPv6 address and " port 65535" */
		engine_addr_words((const struct sockaddr *)&r->addr, where, sizeof(where));
		if (r->proto == BMS_PROTO_MODBUS)
			snprintf(v->decision.reason, sizeof(v->decision.reason),
				 "no device is declared at %s unit %u in the policy (guard device '%.40s')", where, unit,
				 r->name);
		else
			snprintf(v->decision.reason, sizeof(v->decision.reason),
				 "no device is declared at %s in the policy (guard device '%.40s')", where, r->name);
	}
	if (v->decision.verdict == BMS_VERDICT_ALLOW || v->decision.verdict == BMS_VERDICT_MONITOR_DENY) {
		v->action = ENGINE_FORWARD;
		v->route = r;
		v->event.result = AUDIT_RESULT_PENDING;
		return true;
	}
	/* fail closed on anything that is not an explicit allow */
	v->event.result = AUDIT_RESULT_NOT_FORWARDED;
	return false;
}

void engine_inspect(const struct engine_ctx *ctx, const struct engine_input *in, struct engine_verdict *v)
{
	v->action = ENGINE_NEED_MORE;
	v->consumed = 0;
	v->need = 0;
	v->route = NULL;
	v->audit = false;
	v->answer_len = 0;
	v->answer_pdu = 0;
	v->answer_code = 0;
	v->detail[0] = '\0';
	/* what the caller decoded, if anything, until the step decodes (need-more: it does not) */
	v->req = in->req != NULL && in->req->proto == in->proto ? in->req : &v->own_req;
	memset(&v->event, 0, sizeof(v->event));
	memset(&v->decision, 0, sizeof(v->decision));
	v->event.time_us = ctx->now_us;
	v->event.peer = ctx->who;
	v->event.proto = in->proto;
	switch (in->proto) {
	case BMS_PROTO_MODBUS:
		engine_modbus_step(ctx, in, v);
		break;
	case BMS_PROTO_BACNET:
		engine_bacnet_step(ctx, in, v);
		break;
	default:
		/* nothing the gateway can frame: it cannot find the next message either */
		bms_request_reset(&v->own_req, BMS_PROTO_NONE);
		engine_malformed(v, "no inspect step for this protocol");
		v->action = ENGINE_CLOSE;
		break;
	}
	v->event.req = v->req;
}

const char *engine_action_name(enum engine_action a)
{
	switch (a) {
	case ENGINE_FORWARD:
		return "forward";
	case ENGINE_ANSWER:
		return "answer";
	case ENGINE_DROP:
		return "drop";
	case ENGINE_CLOSE:
		return "close";
	case ENGINE_NEED_MORE:
		break;
	}
	return "incomplete";
}

void engine_answer_words(const struct engine_verdict *v, char *buf, size_t cap)
{
	if (v->action != ENGINE_ANSWER || v->answer_len == 0) {
		snprintf(buf, cap, "%s", "");
		return;
	}
	if (v->event.proto == BMS_PROTO_BACNET) {
		engine_bacnet_answer_words(v, buf, cap);
		return;
	}
	snprintf(buf, cap, "0x%02x", (unsigned)v->answer_code);
}
