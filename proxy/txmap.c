/* proxy/txmap.c: transaction-id remapping (see txmap.h). */
#include <string.h>

#include "proxy/txmap.h"

void proxy_txmap_init(struct proxy_txmap *m, unsigned cap)
{
	memset(m, 0, sizeof(*m));
	m->cap = cap == 0 ? 1 : cap > PROXY_TXMAP_MAX ? PROXY_TXMAP_MAX : cap;
	m->next = 1;
}

static bool tid_in_use(const struct proxy_txmap *m, uint16_t tid)
{
	for (unsigned i = 0; i < m->cap; i++)
		if (m->slot[i].used && m->slot[i].up_tid == tid)
			return true;
	return false;
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
	/* at most cap ids are taken, so this loop ends within cap + 1 tries */
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
