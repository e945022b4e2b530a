/* proxy/upstream.c: the per-device connection pool of the guard.
 *
 * Legacy devices often accept one or two TCP connections, so every controller's
 * requests to a device share a small pool. Each request gets a fresh transaction
 * id on the device connection (txmap.c) and its own id back on the answer.
 * `max-in-flight 1` serialises a device that cannot pipeline. Connections open on
 * demand; a failed connect backs off (100 ms doubling up to `backoff`), and while
 * a device is known down requests are answered at once with exception 0x0A.
 * A request the device does not answer within `response-timeout` gets 0x0B and
 * frees its slot at once, so one silent request costs the requests queued behind
 * it one timeout, not two; its id is remembered (txmap.c) so that a late answer is
 * recognised and dropped. Two timeouts in a row with no answer at all in between
 * mean the device lost track of the connection: it is reset.
 * A request whose client went away while it was at the device keeps its slot until
 * the answer or the timeout, and that outcome is still recorded (detail "client gone").
 * Requests taken for a connection in one loop iteration (a batch of audit
 * completions releases many at once) are gathered and written with one write()
 * when the iteration's I/O is done (the check phase), not one write() each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/modbus.h"
#include "proxy/guard.h"
#include "proxy/log.h"

static void device_kick(struct gdevice *d);

#define CLIENT_GONE "client gone"

/* The requester left while its request was at the device: what the device did is still recorded. */
static void record_gone(struct upconn *c, struct proxy_tx *tx, uint8_t result, uint32_t exc, const char *detail)
{
	if (!tx->orphan)
		return; /* abandoned with its result already recorded, or owned */
	tx->orphan = false;
	guard_record_result(c->dev->g, tx->ticket, tx->start_us, result, exc, detail);
}

static void fail_queue(struct gdevice *d, uint8_t result, uint8_t exc)
{
	while (!proxy_list_empty(&d->queue)) {
		struct greq *r = proxy_container_of(d->queue.next, struct greq, link);
		proxy_list_del(&r->link);
		guard_complete(r, NULL, 0, result, exc);
	}
}

static bool any_active(const struct gdevice *d, bool count_closing)
{
	for (unsigned i = 0; i < d->nconns; i++) {
		uint8_t st = d->conns[i].state;
		if (st == UP_CONNECTING || st == UP_DELAY || st == UP_READY || (count_closing && st == UP_CLOSING))
			return true;
	}
	return false;
}

static void on_conn_closed(uv_handle_t *h)
{
	struct upconn *c = h->data;
	c->state = UP_DOWN;
	c->in_len = 0;
	device_kick(c->dev);
}

/* The one way a device connection ends: every request still on it is answered with `exc`. */
static void conn_reset(struct upconn *c, uint8_t result, uint8_t exc)
{
	if (c->state == UP_DOWN || c->state == UP_CLOSING)
		return;
	c->state = UP_CLOSING;
	uv_timer_stop(&c->timer);
	proxy_list_del(&c->dirty);
	c->pend_len = 0; /* never written: their requests are answered below */
	for (unsigned i = 0; i < c->map.cap; i++) {
		struct proxy_tx *tx = &c->map.slot[i];
		if (!tx->used)
			continue;
		struct greq *r = tx->owner;
		record_gone(c, tx, result, exc, CLIENT_GONE);
		proxy_txmap_release(&c->map, tx);
		if (r) {
			r->tx = NULL;
			guard_complete(r, NULL, 0, result, exc);
		}
	}
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* Writes what conn_send gathered; on failure the connection ends like any other. */
static void conn_flush(struct upconn *c)
{
	proxy_list_del(&c->dirty);
	size_t n = c->pend_len;
	c->pend_len = 0;
	if (!n || c->state != UP_READY)
		return;
	int rc = proxy_out_write((uv_stream_t *)&c->tcp, &c->out, c->pend, n);
	if (rc < 0) {
		proxy_log_warn("device %s: write: %s", c->dev->conf->name, uv_strerror(rc));
		conn_reset(c, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_PATH_UNAVAILABLE);
	}
}

void upstream_flush(struct guard *g)
{
	while (!proxy_list_empty(&g->dirty_conns))
		conn_flush(proxy_container_of(g->dirty_conns.next, struct upconn, dirty));
}

static void on_flush_check(uv_check_t *h)
{
	upstream_flush(h->data);
	uv_check_stop(h);
}

static void conn_failed(struct upconn *c, int err)
{
	struct gdevice *d = c->dev;
	d->last_error = err;
	d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : 100;
	if (d->backoff_ms > d->conf->backoff_max_ms)
		d->backoff_ms = d->conf->backoff_max_ms;
	d->retry_at_ms = guard_now_ms(d->g) + d->backoff_ms;
	proxy_log_warn("device %s (%s): cannot connect: %s; next try in %u ms", d->conf->name, d->conf->addr.text,
		       uv_strerror(err), d->backoff_ms);
	conn_reset(c, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_PATH_UNAVAILABLE);
	/* nothing else can carry the queue: answer it now rather than let controllers time out */
	if (!any_active(d, false))
		fail_queue(d, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_PATH_UNAVAILABLE);
}

static void arm_response_timer(struct upconn *c);

static void on_timer(uv_timer_t *t)
{
	struct upconn *c = t->data;
	uint64_t now = guard_now_ms(c->dev->g);
	switch (c->state) {
	case UP_CONNECTING:
		conn_failed(c, UV_ETIMEDOUT);
		return;
	case UP_DELAY:
		c->state = UP_READY;
		device_kick(c->dev);
		/* from a timer callback the check handle would run only after the loop's next wait,
		 * which may be a response timeout away: write what the kick released now */
		upstream_flush(c->dev->g);
		return;
	case UP_READY:
		break;
	default:
		return;
	}
	bool expired = false;
	for (unsigned i = 0; i < c->map.cap && c->state == UP_READY; i++) {
		struct proxy_tx *tx = &c->map.slot[i];
		if (!tx->used || tx->deadline_ms > now)
			continue;
		/* free the slot now (the next request need not wait another timeout); the id is
		 * remembered so that a late answer is recognised and dropped */
		struct greq *r = tx->owner;
		record_gone(c, tx, AUDIT_RESULT_TIMEOUT, 0, CLIENT_GONE);
		proxy_txmap_expire(&c->map, tx);
		c->silent++;
		expired = true;
		if (r) {
			r->tx = NULL;
			guard_complete(r, NULL, 0, AUDIT_RESULT_TIMEOUT, ENGINE_EXC_TARGET_NO_RESPONSE);
		}
	}
	if (c->state != UP_READY)
		return; /* a completion closed the guard's last session and the pool with it */
	if (c->silent >= 2) {
		/* a second timeout without any answer in between: the device lost track; start afresh */
		proxy_log_warn("device %s: %u requests in a row unanswered within %u ms; resetting the connection",
			       c->dev->conf->name, c->silent, c->dev->conf->response_timeout_ms);
		conn_reset(c, AUDIT_RESULT_TIMEOUT, ENGINE_EXC_TARGET_NO_RESPONSE);
		return;
	}
	arm_response_timer(c);
	if (expired) {
		device_kick(c->dev);
		upstream_flush(c->dev->g); /* as above: not after the next wait */
	}
}

static void arm_response_timer(struct upconn *c)
{
	uint64_t now = guard_now_ms(c->dev->g), first = UINT64_MAX;
	for (unsigned i = 0; i < c->map.cap; i++)
		if (c->map.slot[i].used && c->map.slot[i].deadline_ms < first)
			first = c->map.slot[i].deadline_ms;
	if (first == UINT64_MAX) {
		uv_timer_stop(&c->timer);
		return;
	}
	uv_timer_start(&c->timer, on_timer, first > now ? first - now : 0, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct upconn *c = h->data;
	(void)suggested;
	buf->base = (char *)c->in + c->in_len;
	buf->len = sizeof(c->in) - c->in_len;
}

/* The device's answer against the request it answers (modbus_check_answer: function, unit,
 * byte counts against the quantity and the MBAP length, echoes, exception codes). A bad one
 * completes the request as bad_answer, with what was wrong in its result record, and the
 * client gets exception 0B (the device gave no usable answer) or, with `answers pass`, the
 * answer as the device sent it. True when the answer is good and still to be relayed. */
static bool answer_fits(struct upconn *c, struct greq *r, uint8_t *adu, size_t flen)
{
	struct modbus_answer_fault why;
	uint64_t an = 0;

	if (modbus_check_answer(r->adu, r->len, adu, flen, &an, &why) == BMS_OK)
		return true;
	bool pass = c->dev->conf->answers_pass;
	char want[24] = "";
	if (why.has_want)
		snprintf(want, sizeof(want), ", want %u", why.want);
	snprintf(r->answer_detail, sizeof(r->answer_detail), "function %u answer: %s %u%s; %s", r->fc,
		 why.field ? why.field : "answer", why.got, want, pass ? "passed on" : "answered 0B");
	r->answer_anomalies = an;
	proxy_log_warn("device %s: %s", c->dev->conf->name, r->answer_detail);
	if (pass) {
		proxy_mbap_set_tid(adu, r->orig_tid);
		guard_complete(r, adu, flen, AUDIT_RESULT_BAD_ANSWER, 0);
	} else {
		guard_complete(r, NULL, 0, AUDIT_RESULT_BAD_ANSWER, ENGINE_EXC_TARGET_NO_RESPONSE);
	}
	return false;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct upconn *c = st->data;
	(void)buf;
	if (c->state != UP_READY && c->state != UP_DELAY)
		return;
	if (n < 0) {
		if (n != UV_EOF)
			proxy_log_warn("device %s: read: %s", c->dev->conf->name, uv_strerror((int)n));
		conn_reset(c, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_TARGET_NO_RESPONSE);
		return;
	}
	c->in_len += (size_t)n;
	size_t off = 0;
	bool answered = false;
	while (off < c->in_len) {
		size_t flen = 0;
		uint64_t anom = 0;
		enum bms_parse_result fr = modbus_frame(c->in + off, c->in_len - off, &flen, &anom);
		if (fr == BMS_NEED_MORE)
			break;
		if (fr == BMS_MALFORMED || flen < 8) {
			proxy_log_warn("device %s: unframeable answer; resetting the connection", c->dev->conf->name);
			conn_reset(c, AUDIT_RESULT_EXCEPTION, ENGINE_EXC_TARGET_NO_RESPONSE);
			return;
		}
		uint8_t *adu = c->in + off;
		struct proxy_tx *tx = proxy_txmap_find(&c->map, proxy_mbap_tid(adu));
		off += flen;
		c->silent = 0; /* it answers: a timeout was that request's, not a lost connection */
		if (!tx) {
			/* no request waits for this id: a late answer to a timed-out one, or noise; drop it */
			if (proxy_txmap_take_expired(&c->map, proxy_mbap_tid(adu)))
				proxy_log_info("device %s: late answer (after %u ms) dropped", c->dev->conf->name,
					       c->dev->conf->response_timeout_ms);
			continue;
		}
		struct greq *r = tx->owner;
		if (!r) /* the client left: record what the device did */
			record_gone(c, tx, adu[7] & 0x80 ? AUDIT_RESULT_EXCEPTION : AUDIT_RESULT_OK,
				    adu[7] & 0x80 && flen > 8 ? adu[8] : 0, CLIENT_GONE);
		proxy_txmap_release(&c->map, tx);
		answered = true;
		if (!r)
			continue;
		r->tx = NULL;
		if (!answer_fits(c, r, adu, flen))
			continue; /* audited as bad_answer; replaced with 0B, or passed on with `answers pass` */
		proxy_mbap_set_tid(adu, r->orig_tid);
		if (adu[7] & 0x80)
			guard_complete(r, adu, flen, AUDIT_RESULT_EXCEPTION, flen > 8 ? adu[8] : 0);
		else
			guard_complete(r, adu, flen, AUDIT_RESULT_OK, 0);
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	if (c->state != UP_READY && c->state != UP_DELAY)
		return;
	if (answered) {
		arm_response_timer(c);
		device_kick(c->dev);
	}
}

static void on_connect(uv_connect_t *req, int status)
{
	struct upconn *c = req->data;
	if (c->state != UP_CONNECTING)
		return; /* timed out already, handle closing */
	uv_timer_stop(&c->timer);
	if (status < 0) {
		conn_failed(c, status);
		return;
	}
	struct gdevice *d = c->dev;
	d->backoff_ms = 0;
	d->retry_at_ms = 0;
	uv_tcp_nodelay(&c->tcp, 1);
	int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (rc < 0) {
		conn_failed(c, rc);
		return;
	}
	if (d->conf->connect_delay_ms) {
		c->state = UP_DELAY;
		uv_timer_start(&c->timer, on_timer, d->conf->connect_delay_ms, 0);
	} else {
		c->state = UP_READY;
	}
	device_kick(d);
}

static void conn_start(struct upconn *c)
{
	struct gdevice *d = c->dev;
	int rc = uv_tcp_init(d->g->loop, &c->tcp);
	if (rc < 0) {
		proxy_log_err("device %s: %s", d->conf->name, uv_strerror(rc));
		return;
	}
	c->tcp.data = c;
	c->creq.data = c;
	c->in_len = 0;
	c->out.queued = 0;
	c->silent = 0;
	proxy_txmap_init(&c->map, d->conf->max_in_flight);
	c->state = UP_CONNECTING;
	rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&d->conf->addr.ss, on_connect);
	if (rc < 0) {
		conn_failed(c, rc);
		return;
	}
	uv_timer_start(&c->timer, on_timer, d->conf->connect_timeout_ms, 0);
}

static void conn_send(struct upconn *c, struct greq *r)
{
	struct proxy_tx *tx = proxy_txmap_alloc(&c->map, r->orig_tid);
	tx->owner = r;
	tx->ticket = r->ticket;
	tx->start_us = r->start_us;
	tx->deadline_ms = guard_now_ms(c->dev->g) + c->dev->conf->response_timeout_ms;
	r->tx = tx;
	r->state = GREQ_SENT;
	proxy_mbap_set_tid(r->adu, tx->up_tid);
	if (!uv_is_active((uv_handle_t *)&c->timer))
		arm_response_timer(c);
	if (c->pend_len + r->len > sizeof(c->pend)) {
		conn_flush(c);
		if (c->state != UP_READY)
			return; /* the reset answered r too */
	}
	memcpy(c->pend + c->pend_len, r->adu, r->len);
	c->pend_len = (uint16_t)(c->pend_len + r->len);
	if (proxy_list_empty(&c->dirty)) {
		struct guard *g = c->dev->g;
		proxy_list_push(&g->dirty_conns, &c->dirty);
		uv_check_start(&g->flush_check, on_flush_check);
	}
}

static void device_kick(struct gdevice *d)
{
	while (!proxy_list_empty(&d->queue)) {
		struct upconn *best = NULL;
		for (unsigned i = 0; i < d->nconns; i++) {
			struct upconn *c = &d->conns[i];
			if (c->state == UP_READY && c->map.used < c->map.cap && (!best || c->map.used < best->map.used))
				best = c;
		}
		if (best) {
			struct greq *r = proxy_container_of(d->queue.next, struct greq, link);
			proxy_list_del(&r->link);
			conn_send(best, r);
			continue;
		}
		/* no free slot: open another connection of the pool if the device is not backing off */
		uint64_t now = guard_now_ms(d->g);
		bool can_try = now >= d->retry_at_ms;
		if (can_try)
			for (unsigned i = 0; i < d->nconns; i++)
				if (d->conns[i].state == UP_DOWN) {
					conn_start(&d->conns[i]);
					return;
				}
		if (!any_active(d, true) && !can_try)
			fail_queue(d, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_PATH_UNAVAILABLE);
		return;
	}
}

void upstream_submit(struct greq *r)
{
	r->state = GREQ_QUEUED;
	proxy_list_push(&r->dev->queue, &r->link);
	device_kick(r->dev);
}

void upstream_cancel(struct greq *r, bool owe_result)
{
	if (r->state == GREQ_QUEUED)
		proxy_list_del(&r->link);
	else if (r->state == GREQ_SENT && r->tx) {
		r->tx->owner = NULL;
		r->tx->orphan = owe_result;
		r->tx = NULL;
	}
}

int upstream_init(struct guard *g)
{
	proxy_list_init(&g->dirty_conns);
	if (uv_check_init(g->loop, &g->flush_check) < 0)
		return -1;
	g->flush_check.data = g;
	g->ndevices = g->cfg.ndevices;
	for (unsigned i = 0; i < g->ndevices; i++) {
		struct gdevice *d = &g->devices[i];
		memset(d, 0, sizeof(*d));
		d->conf = &g->cfg.devices[i];
		d->g = g;
		proxy_list_init(&d->queue);
		d->nconns = d->conf->connections;
		d->conns = calloc(d->nconns, sizeof(*d->conns));
		if (!d->conns)
			return -1;
		for (unsigned j = 0; j < d->nconns; j++) {
			struct upconn *c = &d->conns[j];
			c->dev = d;
			c->state = UP_DOWN;
			proxy_list_init(&c->dirty);
			proxy_txmap_init(&c->map, d->conf->max_in_flight);
			if (uv_timer_init(g->loop, &c->timer) < 0)
				return -1;
			c->timer.data = c;
			c->timer_ready = true;
		}
	}
	return 0;
}

struct gdevice *upstream_device(struct guard *g, const struct proxy_device *conf)
{
	for (unsigned i = 0; i < g->ndevices; i++)
		if (g->devices[i].conf == conf)
			return &g->devices[i];
	return NULL;
}

void upstream_close_all(struct guard *g)
{
	if (g->flush_check.loop && !uv_is_closing((uv_handle_t *)&g->flush_check))
		uv_close((uv_handle_t *)&g->flush_check, proxy_closed_noop);
	for (unsigned i = 0; i < g->ndevices; i++) {
		struct gdevice *d = &g->devices[i];
		fail_queue(d, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_PATH_UNAVAILABLE);
		for (unsigned j = 0; j < d->nconns; j++) {
			struct upconn *c = &d->conns[j];
			/* the guard stops: a request still at the device was not answered in time, the
			 * device is not down */
			for (unsigned k = 0; c->state != UP_DOWN && c->state != UP_CLOSING && k < c->map.cap; k++)
				if (c->map.slot[k].used)
					record_gone(c, &c->map.slot[k], AUDIT_RESULT_TIMEOUT, 0,
						    "client gone; the guard stopped before the device answered");
			conn_reset(c, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_PATH_UNAVAILABLE);
			/* no new connection after this: the kick in the close callback finds an empty queue */
			if (c->timer_ready && !uv_is_closing((uv_handle_t *)&c->timer))
				uv_close((uv_handle_t *)&c->timer, proxy_closed_noop);
		}
	}
}

void upstream_free(struct guard *g)
{
	for (unsigned i = 0; i < g->ndevices; i++) {
		free(g->devices[i].conns);
		g->devices[i].conns = NULL;
	}
}
