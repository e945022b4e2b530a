/* proxy/stream.h: writing to a libuv stream without copying in the common case,
 * with a byte count of what is still queued so that callers can stop reading a
 * peer whose output is backed up; and a doubly-linked intrusive list. */
#ifndef BMS_PROXY_STREAM_H
#define BMS_PROXY_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "parsers/cursor.h"

struct proxy_out {
	size_t queued;                            /* bytes handed to uv_write, not yet written */
	void (*drained)(struct proxy_out *o);     /* called when queued falls back to 0; may be NULL */
	/* called when a queued write failed (status < 0, e.g. the peer reset the connection); may be
	 * NULL. A peer that is not being read (its reading stopped by a limit) shows a reset only here. */
	void (*failed)(struct proxy_out *o, int status);
	void *owner;                              /* borrowed, for `drained` */
};

/* Writes `len` bytes: tries a direct write first; copies only what the kernel did not take.
 * Returns 0 or a negative libuv error (the caller closes the connection). */
BMS_WUR int proxy_out_write(uv_stream_t *s, struct proxy_out *o, const void *buf, size_t len);

/* The close callback of a handle that owns no memory of its own. */
void proxy_closed_noop(uv_handle_t *h);

struct proxy_list {
	struct proxy_list *prev, *next;
};

static inline void proxy_list_init(struct proxy_list *l)
{
	l->prev = l->next = l;
}
static inline int proxy_list_empty(const struct proxy_list *l)
{
	return l->next == l;
}
static inline void proxy_list_push(struct proxy_list *head, struct proxy_list *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}
static inline void proxy_list_del(struct proxy_list *e)
{
	if (e->next && e->next != e) {
		e->prev->next = e->next;
		e->next->prev = e->prev;
	}
	e->prev = e->next = e;
}
#define proxy_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
