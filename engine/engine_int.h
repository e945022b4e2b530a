/* engine/engine_int.h: what inspect.c shares with the per-protocol steps (engine/modbus.c,
 * engine/bacnet.c); not for callers of the engine. */
#ifndef BMS_ENGINE_INT_H
#define BMS_ENGINE_INT_H

#include "engine/inspect.h"

/* The step of one protocol: frame, decode (unless the input brought a request), route, call
 * engine_decide, pick the wire answer. v is reset and its event's header filled. */
void engine_modbus_step(const struct engine_ctx *ctx, const struct engine_input *in, struct engine_verdict *v);
void engine_bacnet_step(const struct engine_ctx *ctx, const struct engine_input *in, struct engine_verdict *v);

/* Records a malformed frame: the event says why; the action is the caller's. */
void engine_malformed(struct engine_verdict *v, const char *why);
/* The request is routed to `r` (NULL: no route, already reasoned): look the device up in the
 * policy, decide with the cached roles when there are some, and name an undeclared device. True
 * when the verdict lets the request through (allow, monitor-deny): the action is then FORWARD. */
bool engine_decide(const struct engine_ctx *ctx, struct engine_verdict *v, const struct engine_route *r,
		   uint32_t unit);
/* A deny that no policy rule made (no route, BVLC management...): the decision says why. */
void engine_refuse(struct engine_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* engine_answer_words for a BACnet answer. */
void engine_bacnet_answer_words(const struct engine_verdict *v, char *buf, size_t cap);
/* Comma-separated names of the anomaly bits, "" when none. */
void engine_anomaly_words(enum bms_proto proto, uint64_t bits, char *buf, size_t len);

#endif
