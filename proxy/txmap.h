/* proxy/txmap.h: transaction-id remapping on a shared device connection (pure, no allocation).
 *
 * Many controllers share one device connection; their transaction ids collide.
 * Each forwarded request gets a fresh upstream id from a fixed table of slots;
 * the device's answer is matched back by that id and the controller's own id
 * restored. A request that times out frees its slot at once (one silent request
 * must not hold the connection for the others), but its id is remembered as
 * expired and not handed out again while remembered, so a late answer is
 * recognised as late and can never be taken for a newer request's.
 */
#ifndef BMS_PROXY_TXMAP_H
#define BMS_PROXY_TXMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"

#define PROXY_TXMAP_MAX 64

struct proxy_tx {
	bool used;
	bool orphan;      /* the requester went away: its result is recorded (owed) when the answer or timeout comes */
	uint16_t up_tid;  /* the id the device sees */
	uint16_t orig_tid; /* the controller's id */
	uint8_t unit, fc;
	void *owner;      /* borrowed: the request waiting for this answer */
	uint64_t deadline_ms;
	uint64_t ticket;  /* audit ticket of the decision, for the result record */
	uint64_t start_us;
};

struct proxy_txmap {
	unsigned cap;  /* slots in use at most (the device's max in flight) */
	unsigned used;
	uint16_t next; /* next upstream id to try */
	struct proxy_tx slot[PROXY_TXMAP_MAX];
	/* Ids of timed-out requests whose answer may still come, oldest first. Ids are
	 * handed out in sequence, so one is reused only after 65536 others; this list
	 * makes "never while remembered" a guarantee rather than a likelihood. */
	unsigned nexpired;
	uint16_t expired[PROXY_TXMAP_MAX];
};

void proxy_txmap_init(struct proxy_txmap *m, unsigned cap);
/* A free slot with a fresh upstream id, or NULL when `cap` are in use. */
struct proxy_tx *proxy_txmap_alloc(struct proxy_txmap *m, uint16_t orig_tid);
/* The slot waiting for upstream id `up_tid`, or NULL. */
struct proxy_tx *proxy_txmap_find(struct proxy_txmap *m, uint16_t up_tid);
void proxy_txmap_release(struct proxy_txmap *m, struct proxy_tx *tx);
/* Releases a timed-out slot and remembers its upstream id as expired. */
void proxy_txmap_expire(struct proxy_txmap *m, struct proxy_tx *tx);
/* True when `up_tid` is a remembered expired id (a late answer); forgets it. */
bool proxy_txmap_take_expired(struct proxy_txmap *m, uint16_t up_tid);

/* Read and write the MBAP transaction id of an ADU (the caller checked len >= 2). */
static inline uint16_t proxy_mbap_tid(const uint8_t *adu)
{
	return (uint16_t)(adu[0] << 8 | adu[1]);
}
static inline void proxy_mbap_set_tid(uint8_t *adu, uint16_t tid)
{
	adu[0] = (uint8_t)(tid >> 8);
	adu[1] = (uint8_t)tid;
}

#endif
