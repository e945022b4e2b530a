/* proxy/txmap.c: transaction-id remapping (see txmap.h). */
#include <string.h>

#include "proxy/txmap.h"

void proxy_txmap_init(struct proxy_txmap *m, unsigned cap)
{
	memset(m, 0, sizeof(*m));
	m->cap = cap == 0 ? 1 : cap > PROXY_TXMAP_MAX ? PROXY_TXMAP_MAX : cap;
	m->next = 1;
}

static int expired_index(const struct proxy_txmap *m, uint16_t tid)
{
	for (unsigned i = 0; i < m->nexpired; i++)
		if (m->expired[i] == tid)
			return (int)i;
	return -1;
}

static bool tid_in_use(const struct proxy_txmap *m, uint16_t tid)
{
	for (unsigned i = 0; i < m->cap; i++)
		if (m->slot[i].used && m->slot[i].up_tid == tid)
			return true;
	return m->nexpired && expired_index(m, tid) >= 0;
}

struct proxy_tx *proxy_txmap_alloc(struct proxy_txmap *m, uint16_t orig_tid)
{
	if (m->used >= m->cap)
		return NULL;
	struct proxy_tx *free_slot = NULL;
	for (unsigned i = 0; i < m->cap; i++)
		if (!m->slot[i].used) {
			free_slot = &m->slot[i];
			break;
		}
	if (!free_slot)
		return NULL;
	/* at most cap + PROXY_TXMAP_MAX ids are taken, so this loop ends within that + 1 tries */
	uint16_t tid = m->next;
	while (tid_in_use(m, tid))
		tid++;
	m->next = (uint16_t)(tid + 1);
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = true;
	free_slot->up_tid = tid;
	free_slot->orig_tid = orig_tid;
	m->used++;
	return free_slot;
}

struct proxy_tx *proxy_txmap_find(struct proxy_txmap *m, uint16_t up_tid)
{
	for (unsigned i = 0; i < m->cap; i++)
		if (m->slot[i].used && m->slot[i].up_tid == up_tid)
			return &m->slot[i];
	return NULL;
}

void proxy_txmap_release(struct proxy_txmap *m, struct proxy_tx *tx)
{
	if (!tx->used)
		return;
	tx->used = false;
	tx->owner = NULL;
	m->used--;
}

void proxy_txmap_expire(struct proxy_txmap *m, struct proxy_tx *tx)
{
	if (!tx->used)
		return;
	uint16_t tid = tx->up_tid;
	proxy_txmap_release(m, tx);
	/* oldest first; when full the oldest is forgotten (rare: 64 timeouts without an answer) */
	if (m->nexpired == PROXY_TXMAP_MAX) {
		memmove(m->expired, m->expired + 1, (PROXY_TXMAP_MAX - 1) * sizeof(m->expired[0]));
		m->nexpired--;
	}
	m->expired[m->nexpired++] = tid;
}

bool proxy_txmap_take_expired(struct proxy_txmap *m, uint16_t up_tid)
{
	int i = expired_index(m, up_tid);
	if (i < 0)
		return false;
	memmove(m->expired + i, m->expired + i + 1, (m->nexpired - (unsigned)i - 1) * sizeof(m->expired[0]));
	m->nexpired--;
	return true;
}
