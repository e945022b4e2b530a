/* engine/inspect.h: the one pure, protocol-neutral inspect step of the gateway.
 *
 * Given who is asking, the compiled policy and its state, the route table and either the
 * bytes a client sent or a request the caller has already decoded, it frames one Modbus/TCP
 * ADU or one BVLC message, decodes it, finds the device, decides, fills the audit event, and
 * says what to do. No I/O, no allocation, no clock: the caller passes the time. The guard's
 * callbacks, `replay`, the fuzzers and the unit tests call exactly this.
 *
 * Per protocol (engine/modbus.c, engine/bacnet.c), behind the one entry point:
 *  - Modbus/TCP: framed by the MBAP length; a deny is exception 01 with the request's
 *    transaction id, an unroutable unit 0A, a malformed frame closes or gets 03 (routes.malformed).
 *  - BACnet/IP: framed by the BVLC length (or taken whole as one datagram); a denied confirmed
 *    request gets an Error PDU, class security, with read-access-denied, write-access-denied or
 *    service-request-denied for what was refused; an undecodable confirmed request a Reject
 *    (a segmented one an Abort: it is never forwarded undecided); unconfirmed requests that are
 *    refused are dropped (and audited); BVLC management (BDT/FDT, foreign-device registration,
 *    Distribute-Broadcast, Secure-BVLL) never reaches a device.
 */
#ifndef BMS_ENGINE_INSPECT_H
#define BMS_ENGINE_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "engine/route.h"
#include "parsers/modbus.h" /* the exceptions ENGINE_EXC_* name, and their encoder */
#include "parsers/request.h"
#include "policies/decision.h"
#include "policies/identity.h"
#include "policies/policy.h"

enum engine_action {
	ENGINE_NEED_MORE = 0, /* no whole frame yet: read more (`need` bytes in all) */
	ENGINE_FORWARD,       /* send the frame (bytes [0, consumed)) to `route` once the audit record is durable */
	ENGINE_ANSWER,        /* consume the frame and send `answer` back to the client */
	ENGINE_DROP,          /* consume the frame, send nothing (a refused unconfirmed BACnet request) */
	ENGINE_CLOSE,         /* the stream cannot be trusted any more: close the connection */
};

/* Modbus exception codes the gateway itself sends. */
#define ENGINE_EXC_ILLEGAL_FUNCTION 0x01     /* denied by policy (the Modbus/TCP Security habit) */
#define ENGINE_EXC_ILLEGAL_DATA_VALUE 0x03   /* malformed request, when configured to answer */
#define ENGINE_EXC_PATH_UNAVAILABLE 0x0A     /* device unreachable, or no device for the unit */
#define ENGINE_EXC_TARGET_NO_RESPONSE 0x0B   /* the device did not answer in time */

/* The largest answer the gateway writes: a BACnet Error PDU routed back to SNET/SADR that names
 * an object property (WritePropertyMultiple) is 50 octets; a Modbus exception 9. */
#define ENGINE_ANSWER_MAX 64

struct engine_ctx {
	const struct engine_routes *routes;     /* borrowed */
	const struct bms_policy *policy;        /* borrowed */
	struct bms_policy_state *state;         /* borrowed; may be NULL */
	const struct bms_identity *who;         /* borrowed */
	/* borrowed; may be NULL: the roles of `who`, cached per connection (or per replay) and
	 * refreshed here when the policy was reloaded since */
	struct bms_policy_roles *roles;
	int64_t now_us;
};

struct engine_input {
	uint8_t proto;                 /* enum bms_proto */
	/* BACnet: the bytes are one whole datagram as UDP delivered it (a capture's, the tunnel's
	 * framing): never need-more, consumed whole, a BVLC length that disagrees is malformed.
	 * Otherwise (and always for Modbus/TCP) they are the head of a client's stream. */
	bool datagram;
	const uint8_t *bytes;          /* borrowed */
	size_t len;
	/* Borrowed, may be NULL: these very bytes, already decoded (the capture engine), with the
	 * decoder's result; the step then decodes nothing. */
	const struct bms_request *req;
	int req_result;                /* enum bms_parse_result of that decode */
	/* Borrowed, may be NULL: where the bytes were going (a capture's destination); the BACnet
	 * route is the one at this address. */
	const struct sockaddr *dst;
};

struct engine_verdict {
	uint8_t action;                      /* enum engine_action */
	size_t consumed;                     /* bytes of input this verdict covers */
	size_t need;                         /* ENGINE_NEED_MORE: total bytes wanted */
	const struct engine_route *route;    /* ENGINE_FORWARD: where to (borrowed from ctx->routes) */
	bool audit;                          /* `event` is filled and must be submitted */
	struct audit_event event;            /* points into this verdict, ctx and the input */
	const struct bms_request *req;       /* the decoded request: &own_req or the input's */
	struct bms_decision decision;
	char detail[96];                     /* why a frame was malformed, refused before policy, or not routed */
	uint8_t answer[ENGINE_ANSWER_MAX];
	size_t answer_len;
	uint8_t answer_pdu;                  /* BACnet: BACNET_PDU_ERROR, _REJECT or _ABORT; Modbus: 0 */
	uint32_t answer_code;                /* the exception code, or the BACnet error code / reason */
	struct bms_request own_req;          /* where the step decodes when the input brought no request */
};

/* Inspect one frame at the head of `in`. */
void engine_inspect(const struct engine_ctx *ctx, const struct engine_input *in, struct engine_verdict *v);

/* "forward", "answer", "drop", "close", "incomplete". */
const char *engine_action_name(enum engine_action a);
/* What an ANSWER verdict says, in words: "0x01" (a Modbus exception), "error
 * write-access-denied", "reject invalid-tag", "abort segmentation-not-supported". */
void engine_answer_words(const struct engine_verdict *v, char *buf, size_t cap);

#endif
