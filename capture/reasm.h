/* capture/reasm.h: TCP stream reassembly per flow (pure: no libpcap, no I/O).
 *
 * The caller feeds TCP segments in capture order; reassembly hands each
 * direction's bytes to a callback in sequence order, exactly once, with event
 * flags that say what happened on the way (a gap, an overlap whose bytes
 * differ, a segment dropped for memory). Choices, documented in docs/decode.md:
 * - Overlaps: FIRST WINS. Bytes already delivered or already buffered are kept;
 *   a later copy of the same sequence range is compared and, if it differs,
 *   REASM_EV_OVERLAP_DIFF is raised on the next delivery of that direction.
 *   Delivered bytes are compared against a per-direction history window of
 *   `history_bytes`; older bytes cannot be compared.
 * - Gaps: a hole is skipped (REASM_EV_GAP on the data after it) when the peer
 *   has acknowledged bytes beyond it (so the capture lost them), when the
 *   direction's buffer limit is reached, or when the flow closes.
 * - Memory: out-of-order bytes are bounded per flow and in total; over a limit
 *   the flow's holes are skipped, and a segment that still does not fit is
 *   dropped (REASM_EV_MEMCAP | REASM_EV_GAP). Nothing ever grows past a limit.
 * - Flows: at most `max_flows`; a new flow beyond that evicts the least
 *   recently used one (flushed and closed with REASM_EV_EVICTED).
 */
#ifndef BMS_CAP_REASM_H
#define BMS_CAP_REASM_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"

struct reasm_key {
	uint8_t ipver;
	uint16_t vlan;
	uint16_t sport, dport;
	uint8_t src[16], dst[16];
};

struct reasm_config {
	size_t max_flows;       /* flows tracked at once (>= 1) */
	size_t max_flow_bytes;  /* out-of-order bytes buffered per flow, both directions */
	size_t max_total_bytes; /* out-of-order bytes buffered over all flows */
	size_t history_bytes;   /* delivered bytes kept per direction for comparing retransmissions (rounded up to a power of two, 0 = none) */
	size_t app_size;        /* bytes of zeroed caller state per flow */
};

/* Events passed with delivered data (and to the close callback). */
#define REASM_EV_GAP 0x01u          /* bytes are missing before this data */
#define REASM_EV_OVERLAP_DIFF 0x02u /* a retransmitted/overlapping copy differed; the first copy was kept */
#define REASM_EV_MEMCAP 0x04u       /* a segment was dropped: a memory limit was reached */
#define REASM_EV_FIN 0x10u          /* close: both directions finished */
#define REASM_EV_RST 0x20u          /* close: reset */
#define REASM_EV_EVICTED 0x40u      /* close: the flow table was full */
#define REASM_EV_REUSED 0x80u       /* close: a new SYN reused the ports */
#define REASM_EV_END 0x100u         /* close: reasm_finish (end of capture) */

struct reasm_flow;

struct reasm_callbacks {
	/* In-order bytes of direction `dir` (0 = the key's src -> dst). `data` is borrowed for the call. */
	void (*data)(void *user, struct reasm_flow *flow, int dir, const uint8_t *data, size_t len,
		     unsigned events);
	/* The flow is going away (after every byte was delivered); `events` holds the reason. */
	void (*close)(void *user, struct reasm_flow *flow, unsigned events);
	void *user;
};

struct reasm_stats {
	uint64_t flows;          /* flows created */
	uint64_t evicted;
	uint64_t segments;       /* segments fed with payload */
	uint64_t retransmitted;  /* segments wholly or partly already seen */
	uint64_t overlap_diff;   /* overlaps whose bytes differed */
	uint64_t out_of_order;   /* segments buffered */
	uint64_t gaps;           /* holes skipped */
	uint64_t gap_bytes;      /* bytes never seen in the holes skipped (when known) */
	uint64_t memcap_drops;   /* segments dropped for memory */
	size_t flows_now;
	size_t bytes_now;        /* out-of-order bytes buffered now */
	size_t bytes_peak;
};

struct reasm;

BMS_WUR int reasm_new(const struct reasm_config *cfg, const struct reasm_callbacks *cb, struct reasm **out);
/* Feed one TCP segment. Returns 0, or -ENOMEM when a new flow could not be allocated (the
 * segment is then ignored). Segments that create nothing (a bare ACK of no flow) are ignored. */
BMS_WUR int reasm_tcp(struct reasm *r, const struct reasm_key *key, uint32_t seq, uint32_t ack,
		      uint8_t tcp_flags, const uint8_t *data, size_t len);
/* Flush and close every flow (REASM_EV_END). */
void reasm_finish(struct reasm *r);
/* Frees everything without callbacks; NULL is fine. */
void reasm_free(struct reasm *r);
const struct reasm_stats *reasm_stats(const struct reasm *r);

const struct reasm_key *reasm_flow_key(const struct reasm_flow *f);
void *reasm_flow_app(struct reasm_flow *f);

#endif
