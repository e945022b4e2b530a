/* engine/bacnet.c: the BACnet/IP step: BVLC framing, decode, route by the device's address,
 * decide, and the answers a gateway standing in for the device sends (see inspect.h).
 *
 *  refused                                    wire answer
 *  a confirmed request, by policy or no route Error, class security: read-access-denied (reads),
 *                                             write-access-denied (writes), service-request-denied
 *                                             (anything else); Abort security-error where the
 *                                             service's error type cannot be written
 *  a confirmed request that does not decode   Reject (reason from the anomaly), or close; dropped
 *                                             when its BVLC or NPDU is what is wrong (no return
 *                                             address to trust)
 *  a segmented confirmed request              Abort segmentation-not-supported: never forwarded
 *                                             before it is reassembled and decided
 *  an unconfirmed request, a network message  nothing (dropped); audited like every refusal
 *  BVLC management, a non-request             nothing (dropped); audited; never reaches a device
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"
#include "parsers/bacnet.h"

/* Annex J.2: the BVLC functions that carry an NPDU for a device. Every other one is BBMD and
 * foreign-device management (BDT, FDT, registration, Distribute-Broadcast-To-Network, results)
 * or Secure-BVLL, whose payload cannot be decoded: none of them is forwarded. */
static bool carries_npdu(uint8_t function)
{
	return function == BACNET_BVLC_ORIGINAL_UNICAST || function == BACNET_BVLC_ORIGINAL_BROADCAST ||
	       function == BACNET_BVLC_FORWARDED_NPDU;
}

static bool is_confirmed(const struct bms_request *q)
{
	const struct bacnet_fields *f = &q->raw.bacnet;
	return f->has_apdu && f->pdu_type == BACNET_PDU_CONFIRMED && f->has_invoke_id && f->has_service;
}

/* The BVLC and NPDU anomalies: a request with one of them has no return address to trust (a
 * Reject would go to SNET 0, say), so it is not answered. Bits up to the first APDU one. */
#define ADDRESSING_ANOMALIES ((BACNET_AN(BACNET_AN_APDU_MISSING) - 1) & ~BACNET_INFO_ANOMALIES)

/* A malformed confirmed request that can still be answered. */
static bool answerable(const struct bms_request *q)
{
	return is_confirmed(q) && !(q->anomalies & ADDRESSING_ANOMALIES);
}

/* The error code that names what was refused (clause 18.6: security class). */
static uint32_t denied_code(const struct bms_request *q)
{
	switch (q->op) {
	case BMS_OP_READ:
		return BACNET_ERROR_CODE_READ_ACCESS_DENIED;
	case BMS_OP_WRITE:
		return BACNET_ERROR_CODE_WRITE_ACCESS_DENIED;
	case BMS_OP_FILE:
		return q->raw.bacnet.service == BACNET_SVC_ATOMIC_READ_FILE ? BACNET_ERROR_CODE_READ_ACCESS_DENIED
									    : BACNET_ERROR_CODE_WRITE_ACCESS_DENIED;
	default:
		return BACNET_ERROR_CODE_SERVICE_REQUEST_DENIED;
	}
}

/* Clause 18.8: the Reject reason closest to what the decoder found. */
static uint8_t reject_reason(uint64_t an)
{
	if (an & BACNET_AN(BACNET_AN_SERVICE_TRUNCATED))
		return BACNET_REJECT_MISSING_REQUIRED_PARAMETER;
	if (an & BACNET_AN(BACNET_AN_SERVICE_TRAILING_DATA))
		return BACNET_REJECT_TOO_MANY_ARGUMENTS;
	if (an & (BACNET_AN(BACNET_AN_SERVICE_VALUE_RANGE) | BACNET_AN(BACNET_AN_BAD_PRIORITY) |
		  BACNET_AN(BACNET_AN_PASSWORD_TOO_LONG)))
		return BACNET_REJECT_PARAMETER_OUT_OF_RANGE;
	if (an & (BACNET_AN(BACNET_AN_TAG_TRUNCATED) | BACNET_AN(BACNET_AN_TAG_LENGTH_OVERFLOW) |
		  BACNET_AN(BACNET_AN_TAG_RESERVED) | BACNET_AN(BACNET_AN_TAG_BAD_LENGTH) |
		  BACNET_AN(BACNET_AN_TAG_NESTING_TOO_DEEP) | BACNET_AN(BACNET_AN_TAG_UNBALANCED) |
		  BACNET_AN(BACNET_AN_SERVICE_UNEXPECTED_TAG)))
		return BACNET_REJECT_INVALID_TAG;
	return BACNET_REJECT_OTHER;
}

/* The answer just encoded (rc its encoder's result), of APDU type `pdu` and code or reason `code`. */
static void answered(struct engine_verdict *v, int rc, uint8_t pdu, uint32_t code)
{
	/* an answer that cannot be written (it always can: ENGINE_ANSWER_MAX) is not sent half */
	if (rc != 0) {
		v->action = ENGINE_DROP;
		v->answer_len = 0;
		return;
	}
	v->action = ENGINE_ANSWER;
	v->answer_pdu = pdu;
	v->answer_code = code;
}

static int reject(struct engine_verdict *v, uint8_t reason)
{
	return bacnet_encode_reject(v->req, reason, v->answer, sizeof(v->answer), &v->answer_len);
}

static int abort_with(struct engine_verdict *v, uint8_t reason)
{
	return bacnet_encode_abort(v->req, reason, v->answer, sizeof(v->answer), &v->answer_len);
}

void engine_bacnet_answer_words(const struct engine_verdict *v, char *buf, size_t cap)
{
	static const char *const rejects[] = {
		"other", "buffer-overflow", "inconsistent-parameters", "invalid-parameter-data-type", "invalid-tag",
		"missing-required-parameter", "parameter-out-of-range", "too-many-arguments",
	};
	static const char *const aborts[] = {
		"other", "buffer-overflow", "invalid-apdu-in-this-state", "preempted-by-higher-priority-task",
		"segmentation-not-supported", "security-error",
	};
	uint32_t c = v->answer_code;
	switch (v->answer_pdu) {
	case BACNET_PDU_ERROR:
		snprintf(buf, cap, "error %s",
			 c == BACNET_ERROR_CODE_READ_ACCESS_DENIED	 ? "read-access-denied"
			 : c == BACNET_ERROR_CODE_WRITE_ACCESS_DENIED	 ? "write-access-denied"
			 : c == BACNET_ERROR_CODE_SERVICE_REQUEST_DENIED ? "service-request-denied"
									 : "other");
		return;
	case BACNET_PDU_REJECT:
		snprintf(buf, cap, "reject %s", c < sizeof(rejects) / sizeof(rejects[0]) ? rejects[c] : "other");
		return;
	case BACNET_PDU_ABORT:
		snprintf(buf, cap, "abort %s", c < sizeof(aborts) / sizeof(aborts[0]) ? aborts[c] : "other");
		return;
	}
	snprintf(buf, cap, "%s", "");
}

/* A refused request: Error for a confirmed one, nothing for the rest. */
static void deny(struct engine_verdict *v)
{
	if (!is_confirmed(v->req)) {
		v->action = ENGINE_DROP;
		return;
	}
	uint32_t code = denied_code(v->req);
	int rc = bacnet_encode_error(v->req, BACNET_ERROR_CLASS_SECURITY, code, v->answer, sizeof(v->answer),
				     &v->answer_len);
	if (rc == -ENOTSUP) /* an error type that names what the decoder did not keep: Abort says it */
		answered(v, abort_with(v, BACNET_ABORT_SECURITY_ERROR), BACNET_PDU_ABORT, BACNET_ABORT_SECURITY_ERROR);
	else
		answered(v, rc, BACNET_PDU_ERROR, code);
}

static enum bms_parse_result decode(const struct engine_input *in, struct engine_verdict *v, size_t n)
{
	if (in->req != NULL && in->req->proto == BMS_PROTO_BACNET && n == in->len) {
		v->req = in->req;
		return (enum bms_parse_result)in->req_result;
	}
	v->req = &v->own_req;
	return bacnet_decode(in->bytes, n, &v->own_req);
}

/* The stream cannot be framed: record what the header allows, then close. */
static void unframeable(const struct engine_input *in, struct engine_verdict *v, size_t n, const char *why)
{
	(void)decode(in, v, n);
	engine_malformed(v, why);
	v->action = ENGINE_CLOSE;
	v->consumed = 0;
}

void engine_bacnet_step(const struct engine_ctx *ctx, const struct engine_input *in, struct engine_verdict *v)
{
	const uint8_t *buf = in->bytes;
	size_t len = in->len, flen;
	unsigned limit = ctx->routes->bacnet_frame_size;
	char why[96], words[64], where[64];

	if (in->datagram) {
		flen = len;
	} else {
		/* J.2: "BVLC Length: the length, in octets, of the entire BVLL message" frames a stream */
		if (len < 4) {
			v->need = 4;
			return;
		}
		flen = (size_t)buf[2] << 8 | buf[3];
		if (buf[0] != 0x81 || flen < 4) {
			snprintf(why, sizeof(why), "unframeable BVLC header: %s",
				 buf[0] != 0x81 ? "bvlc_bad_type" : "bvlc_length_mismatch");
			unframeable(in, v, len < limit ? len : limit, why);
			return;
		}
		if (flen > limit) {
			snprintf(why, sizeof(why), "frame of %zu bytes exceeds the BACnet frame size %u", flen, limit);
			unframeable(in, v, len < limit ? len : limit, why);
			return;
		}
		if (len < flen) {
			v->need = flen;
			return;
		}
	}
	v->consumed = flen;
	if (flen > limit) {
		(void)decode(in, v, flen);
		snprintf(why, sizeof(why), "datagram of %zu bytes exceeds the BACnet frame size %u", flen, limit);
		engine_malformed(v, why);
		v->action = ctx->routes->malformed == ENGINE_MALFORMED_CLOSE ? ENGINE_CLOSE : ENGINE_DROP;
		v->consumed = v->action == ENGINE_CLOSE ? 0 : flen;
		return;
	}
	enum bms_parse_result dr = decode(in, v, flen);
	const struct bms_request *q = v->req;
	const struct bacnet_fields *f = &q->raw.bacnet;
	if (dr != BMS_OK) {
		engine_anomaly_words(BMS_PROTO_BACNET, q->anomalies & ~BACNET_INFO_ANOMALIES, words, sizeof(words));
		snprintf(why, sizeof(why), "malformed request: %s", words[0] ? words : "undecodable datagram");
		engine_malformed(v, why);
		if (ctx->routes->malformed == ENGINE_MALFORMED_CLOSE) {
			v->action = ENGINE_CLOSE;
			v->consumed = 0;
		} else if (answerable(q) && f->segmented) {
			answered(v, abort_with(v, BACNET_ABORT_SEGMENTATION_NOT_SUPPORTED), BACNET_PDU_ABORT,
				 BACNET_ABORT_SEGMENTATION_NOT_SUPPORTED);
		} else if (answerable(q)) {
			uint8_t reason = reject_reason(q->anomalies);
			answered(v, reject(v, reason), BACNET_PDU_REJECT, reason);
		} else {
			v->action = ENGINE_DROP;
		}
		return;
	}
	if (!carries_npdu(f->bvlc_function)) {
		engine_refuse(v, "BVLC %s is BACnet/IP management: the guard never forwards it to a device",
			      bacnet_bvlc_function_name(f->bvlc_function));
		v->action = ENGINE_DROP;
		return;
	}
	if (q->dir != BMS_DIR_REQUEST) {
		engine_refuse(v, "a BACnet %s is not a request: the guard forwards requests only",
			      f->has_apdu ? bacnet_pdu_type_name(f->pdu_type) : bacnet_net_msg_name(f->net_msg_type));
		v->action = ENGINE_DROP;
		return;
	}
	if (f->segmented) {
		/* DESIGN: a segmented request is never forwarded before it is reassembled and decided */
		engine_refuse(v, "segmented %s request: the guard does not reassemble requests, so it forwards none",
			      bacnet_confirmed_service_name(f->service));
		answered(v, is_confirmed(q) ? abort_with(v, BACNET_ABORT_SEGMENTATION_NOT_SUPPORTED) : -EINVAL,
			 BACNET_PDU_ABORT, BACNET_ABORT_SEGMENTATION_NOT_SUPPORTED);
		return;
	}
	const struct engine_route *r = engine_route_addr(ctx->routes, BMS_PROTO_BACNET, in->dst);
	if (!r) {
		if (in->dst)
			engine_addr_words(in->dst, where, sizeof(where));
		else
			snprintf(where, sizeof(where), "no address (the datagram's destination is not known)");
		engine_refuse(v, "no BACnet device is configured at %s: no 'device' block of the guard routes it", where);
		deny(v);
		return;
	}
	/* the device is known by its address (the route's); its instance is not on every request */
	if (!engine_decide(ctx, v, r, BMS_POLICY_ANY_UNIT))
		deny(v);
}
