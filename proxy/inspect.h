/* proxy/inspect.h: the one pure inspect step of the gateway.
 *
 * Given who is asking, the compiled policy and its state, the configuration
 * (routing, malformed handling, frame limit) and the bytes a client sent, it
 * frames one Modbus/TCP ADU, decodes it, finds the device, decides, fills the
 * audit event, and says what to do. No I/O, no allocation, no clock: the
 * caller passes the time. The guard's callbacks, `replay` and the tests call
 * exactly this.
 */
#ifndef BMS_PROXY_INSPECT_H
#define BMS_PROXY_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "parsers/modbus.h"
#include "parsers/request.h"
#include "policies/decision.h"
#include "policies/identity.h"
#include "policies/policy.h"
#include "proxy/config.h"

enum proxy_action {
	PROXY_NEED_MORE = 0, /* no whole frame yet: read more (`need` bytes in all) */
	PROXY_FORWARD,       /* send the frame (bytes [0, consumed)) to `device` once the audit record is durable */
	PROXY_ANSWER,        /* consume the frame and send `answer` back to the client */
	PROXY_CLOSE,         /* the stream cannot be trusted any more: close the connection */
};

/* Modbus exception codes the gateway itself sends. */
#define PROXY_EXC_ILLEGAL_FUNCTION 0x01     /* denied by policy (the Modbus/TCP Security habit) */
#define PROXY_EXC_ILLEGAL_DATA_VALUE 0x03   /* malformed request, when configured to answer */
#define PROXY_EXC_PATH_UNAVAILABLE 0x0A     /* device unreachable, or no device for the unit */
#define PROXY_EXC_TARGET_NO_RESPONSE 0x0B   /* the device did not answer in time */

struct proxy_inspect_ctx {
	const struct proxy_config *cfg;         /* borrowed */
	const struct bms_policy *policy;        /* borrowed */
	struct bms_policy_state *state;         /* borrowed; may be NULL */
	const struct bms_identity *who;         /* borrowed */
	/* borrowed; may be NULL: the roles of `who`, cached per connection and
	 * refreshed here when the policy was reloaded since */
	struct bms_policy_roles *roles;
	int64_t now_us;
};

struct proxy_verdict {
	uint8_t action;                      /* enum proxy_action */
	size_t consumed;                     /* bytes of input this verdict covers */
	size_t need;                         /* PROXY_NEED_MORE: total bytes wanted */
	const struct proxy_device *device;   /* PROXY_FORWARD: the pool to use (borrowed from cfg) */
	bool audit;                          /* `event` is filled and must be submitted */
	struct audit_event event;            /* points into this verdict and into ctx */
	struct bms_request req;
	struct bms_decision decision;
	char detail[96];                     /* why a frame was malformed or not routed */
	uint8_t answer[9];
	size_t answer_len;
};

/* Inspect the bytes at the head of a client's stream. */
void proxy_inspect(const struct proxy_inspect_ctx *ctx, const uint8_t *buf, size_t len, struct proxy_verdict *v);

#endif
