/* proxy/stream.c: try-write first, queue the rest (see stream.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/stream.h"

struct wreq {
	uv_write_t req;
	struct proxy_out *out; /* borrowed: lives until the handle's close callback, after every write callback */
	size_t len;
	uint8_t data[];
};

static void write_done(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct proxy_out *o = w->out;
	o->queued -= w->len;
	free(w);
	/* UV_ECANCELED: the handle is closing; its owner knows */
	if (status < 0 && status != UV_ECANCELED && o->failed)
		o->failed(o, status);
	else if (o->queued == 0 && o->drained && status == 0)
		o->drained(o);
}

int proxy_out_write(uv_stream_t *s, struct proxy_out *o, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (len == 0)
		return 0;
	/* Only write directly when nothing is queued: bytes must leave in order. */
	if (o->queued == 0) {
		uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)len);
		int n = uv_try_write(s, &b, 1);
		if (n == (int)len)
			return 0;
		if (n < 0 && n != UV_EAGAIN)
			return n;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
	struct wreq *w = malloc(sizeof(*w) + len);
	if (!w)
		return UV_ENOMEM;
	memcpy(w->data, p, len);
	w->out = o;
	w->len = len;
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
	int rc = uv_write(&w->req, s, &b, 1, write_done);
	if (rc < 0) {
		free(w);
		return rc;
	}
	o->queued += len;
	return 0;
}

void proxy_closed_noop(uv_handle_t *h)
{
	(void)h;
}
