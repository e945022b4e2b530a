/* proxy/tunnel.c: the controller-side tunnel.
 *
 * Listens plain on a local address (the head-end points at it instead of the
 * device) and carries each connection over mutual TLS to a guard, as a Modbus/TCP
 * Security client with its own certificate, verifying the guard's certificate to
 * the site CA and its name. It does not inspect: the guard does. Dialling the
 * guard retries with back-off (100 ms doubling up to `backoff`) until
 * `connect-timeout`; a refused certificate is reported with which certificate and
 * why, and not retried (retrying cannot fix it). Exceptions from the guard are
 * bytes like any other: they pass through unchanged.
 *
 * A head-end connection has one state (enum tsess_state, tunnel.h), written by
 * tsess_set() only and moved along the table below; it ends through tsess_close()
 * only, which writes its diagnostic line once; its memory is freed in the last close
 * callback of its handles. Only TCP connects are retried: once a TLS session was
 * started, any failure (the guard refused our certificate, we refused the guard's)
 * ends the connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/privs.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/stream.h"
#include "proxy/tls.h"
#include "proxy/tunnel.h"

#define TUN_PEND_CAP 2048 /* head-end bytes held while the TLS session is being set up */

struct tsess {
	uv_tcp_t client;
	uv_tcp_t up;                 /* open in DIALING, HANDSHAKING, OPEN, FINISHING; closing in RETRYING */
	uv_timer_t timer;            /* WAITING: the back-off; DIALING..HANDSHAKING: the connect-timeout */
	uv_connect_t creq;
	struct tunnel *t;            /* borrowed */
	struct proxy_list link;
	struct proxy_tls tls;
	struct proxy_tls_verr verr;
	struct proxy_out cout, uout; /* towards the head-end, towards the guard */
	uint8_t state;               /* enum tsess_state; written by tsess_set() only */
	/* flow control, not life: a peer not read because the other side's output is backed up
	 * (or, before OPEN, because pend is full) */
	bool client_blocked, up_blocked;
	bool pend_eof;               /* pend ends with the head-end's half-close (it came before OPEN) */
	unsigned pending_closes;
	unsigned backoff_ms;
	uint64_t start_ms;
	size_t pend_len;
	uint8_t pend[TUN_PEND_CAP];
};

struct tunnel {
	uv_loop_t *loop;             /* borrowed: the caller's */
	struct proxy_config cfg;
	SSL_CTX *ctx;                /* owns; sessions hold their own reference through SSL */
	uv_tcp_t listener;
	uv_signal_t sig_hup, sig_term, sig_int;
	struct proxy_list sessions;
	unsigned nsessions;
	bool stopping;
	uint64_t retry_at_ms; /* after a failed dial, new connections wait until then */
	unsigned streak_ms;
};

/* One read buffer and one plaintext buffer for the loop: libuv calls read right after alloc,
 * and what lands there is written on (or fed to the TLS engine) before the callback returns. */
static uint8_t t_rbuf[17 * 1024];
static uint8_t t_scratch[64 * 1024];

/* ---- sessions: the one state, its setter, its table ----
 *
 *   from \ to    WAITING  DIALING  RETRYING  HANDSHAKING  OPEN  FINISHING  CLOSING
 *   ACCEPTED     streak   dial                                             accept failed, limit
 *   WAITING               back-off over                                    the deadline passed, stop
 *   DIALING                        refused              connected          connect-timeout, stop
 *   RETRYING     closed                                                    connect-timeout, stop
 *   HANDSHAKING                                         ok                 TLS failed, guard gone, timeout
 *   OPEN                                                      head-end EOF reset, write error, guard closed
 *   FINISHING                                                              the guard closed (or failed)
 *   CLOSING      (nothing: the handles close; the memory goes in the last close callback)
 * A refused certificate never goes back to DIALING: there is no move out of HANDSHAKING but
 * OPEN and CLOSING.
 */
static const uint8_t ts_next[TS_NSTATES] = {
	[TS_ACCEPTED] = 1u << TS_WAITING | 1u << TS_DIALING | 1u << TS_CLOSING,
	[TS_WAITING] = 1u << TS_DIALING | 1u << TS_CLOSING,
	[TS_DIALING] = 1u << TS_RETRYING | 1u << TS_HANDSHAKING | 1u << TS_CLOSING,
	[TS_RETRYING] = 1u << TS_WAITING | 1u << TS_CLOSING,
	[TS_HANDSHAKING] = 1u << TS_OPEN | 1u << TS_CLOSING,
	[TS_OPEN] = 1u << TS_FINISHING | 1u << TS_CLOSING,
	[TS_FINISHING] = 1u << TS_CLOSING,
	[TS_CLOSING] = 0,
};

static const char *const ts_name[TS_NSTATES] = {
	[TS_ACCEPTED] = "accepted",       [TS_WAITING] = "waiting", [TS_DIALING] = "dialing",
	[TS_RETRYING] = "retrying",       [TS_HANDSHAKING] = "handshaking", [TS_OPEN] = "open",
	[TS_FINISHING] = "finishing",     [TS_CLOSING] = "closing",
};

bool tunnel_session_can(enum tsess_state from, enum tsess_state to)
{
	return from < TS_NSTATES && to < TS_NSTATES && (ts_next[from] & (1u << to)) != 0;
}

const char *tunnel_session_state_name(enum tsess_state st)
{
	return st < TS_NSTATES ? ts_name[st] : "?";
}

/* The only writer of s->state. A move the table does not allow is a bug in this file: stop
 * rather than carry bytes for a connection in a state nobody reasoned about. */
static void tsess_set(struct tsess *s, enum tsess_state to)
{
	if (!tunnel_session_can((enum tsess_state)s->state, to)) {
		proxy_log_err("bug: tunnel session state %s -> %s",
			      tunnel_session_state_name((enum tsess_state)s->state), tunnel_session_state_name(to));
		abort();
	}
	s->state = (uint8_t)to;
}

/* The handle towards the guard is open (not closed, not closing for a retry). */
static bool up_open(enum tsess_state st)
{
	return st == TS_DIALING || st == TS_HANDSHAKING || st == TS_OPEN || st == TS_FINISHING;
}

/* ---- sessions: the one close path ---- */

static void tsess_release(uv_handle_t *h)
{
	struct tsess *s = h->data;
	if (--s->pending_closes > 0)
		return;
	proxy_tls_free(&s->tls);
	free(s);
}

/* Writes the diagnostic line once (`why` NULL: a close with nothing to say, such as a stop),
 * releases every handle; the memory goes in the last close callback. */
static void tsess_close(struct tsess *s, const char *why)
{
	struct tunnel *t = s->t;
	enum tsess_state was = (enum tsess_state)s->state;
	if (was == TS_CLOSING)
		return;
	tsess_set(s, TS_CLOSING);
	if (why)
		proxy_log_info("connection from the head-end closed: %s", why);
	proxy_list_del(&s->link);
	t->nsessions--;
	s->pending_closes = 2;
	uv_close((uv_handle_t *)&s->client, tsess_release);
	uv_close((uv_handle_t *)&s->timer, tsess_release);
	if (up_open(was)) {
		s->pending_closes++;
		uv_close((uv_handle_t *)&s->up, tsess_release);
	} else if (was == TS_RETRYING) {
		s->pending_closes++; /* up_closed_for_retry sees CLOSING and releases */
	}
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void up_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static bool tls_opened(void *owner);

/* ---- the TLS pump's callbacks (proxy_tls_pump) ---- */

static uint8_t *tls_room(void *owner, size_t *cap)
{
	struct tsess *s = owner;
	if (s->state == TS_CLOSING || s->up_blocked)
		return NULL;
	*cap = sizeof(t_scratch);
	return t_scratch;
}

/* Plaintext from the guard goes to the head-end as it comes. */
static bool tls_app(void *owner, size_t n)
{
	struct tsess *s = owner;
	int rc = proxy_out_write((uv_stream_t *)&s->client, &s->cout, t_scratch, n);
	if (rc < 0) {
		tsess_close(s, uv_strerror(rc));
		return false;
	}
	if (s->cout.queued > s->t->cfg.limits.buffer_size) {
		s->up_blocked = true;
		uv_read_stop((uv_stream_t *)&s->up);
	}
	return true;
}

static bool tls_record(void *owner, const uint8_t *buf, size_t n)
{
	struct tsess *s = owner;
	if (s->state == TS_CLOSING)
		return false;
	int rc = proxy_out_write((uv_stream_t *)&s->up, &s->uout, buf, n);
	if (rc < 0) {
		tsess_close(s, uv_strerror(rc));
		return false;
	}
	return true;
}

static const struct proxy_tls_peer tls_peer = {
	.room = tls_room,
	.app = tls_app,
	.opened = tls_opened,
	.record = tls_record,
};

/* Records to the guard; a guard that does not take them stops the head-end being read. */
static void up_flush(struct tsess *s)
{
	if (s->state == TS_CLOSING || !proxy_tls_flush(&s->tls, &tls_peer, s))
		return;
	if (s->uout.queued > s->t->cfg.limits.buffer_size && !s->client_blocked) {
		s->client_blocked = true;
		uv_read_stop((uv_stream_t *)&s->client);
	}
}

static void send_plain(struct tsess *s, const uint8_t *buf, size_t len)
{
	if (proxy_tls_write(&s->tls, buf, len) < 0) {
		char why[256];
		proxy_tls_failure(s->tls.ssl, &s->verr, why, sizeof(why));
		tsess_close(s, why);
		return;
	}
	up_flush(s);
}

/* The head-end sent all it will send: say so to the guard with close_notify (TLS's half-close).
 * The guard answers what it was sent and then closes, which ends this session. */
static void client_done(struct tsess *s)
{
	tsess_set(s, TS_FINISHING);
	uv_read_stop((uv_stream_t *)&s->client);
	proxy_tls_shutdown(&s->tls);
	up_flush(s);
}

static bool tls_opened(void *owner)
{
	struct tsess *s = owner;
	tsess_set(s, TS_OPEN);
	uv_timer_stop(&s->timer);
	proxy_log_info("connected to guard %s (%s, %s)", s->t->cfg.guard.text, SSL_get_version(s->tls.ssl),
		       SSL_get_cipher_name(s->tls.ssl));
	if (s->pend_len) {
		size_t n = s->pend_len;
		s->pend_len = 0;
		send_plain(s, s->pend, n);
		if (s->state == TS_CLOSING)
			return false;
	}
	if (s->pend_eof) {
		client_done(s);
		return s->state != TS_CLOSING;
	}
	if (s->client_blocked && s->uout.queued <= s->t->cfg.limits.buffer_size) {
		s->client_blocked = false;
		uv_read_start((uv_stream_t *)&s->client, client_alloc, client_read);
	}
	return true;
}

static void up_pump(struct tsess *s)
{
	char why[256];
	switch (proxy_tls_pump(&s->tls, &tls_peer, s)) {
	case PROXY_TLS_WAIT:
		up_flush(s); /* the back-pressure check on what was just sent */
		return;
	case PROXY_TLS_STOPPED:
		return;
	case PROXY_TLS_PEER_DONE:
		tsess_close(s, "the guard closed the session");
		return;
	case PROXY_TLS_HS_FAILED:
		proxy_tls_failure(s->tls.ssl, &s->verr, why, sizeof(why));
		/* name both ends: the operator must know whose certificate to look at */
		proxy_log_err("TLS handshake with guard %s (expected name %s) failed: %s%s", s->t->cfg.guard.text,
			      s->t->cfg.server_name, why,
			      s->verr.err ? " [the guard's certificate]"
					  : " [if the guard refused us: check our certificate " /* */
					    "and that the guard trusts its CA]");
		tsess_close(s, "TLS handshake failed");
		return;
	case PROXY_TLS_FAILED:
		proxy_tls_failure(s->tls.ssl, &s->verr, why, sizeof(why));
		proxy_log_warn("TLS to guard %s: %s", s->t->cfg.guard.text, why);
		tsess_close(s, why);
		return;
	}
}

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = (char *)t_rbuf;
	buf->len = sizeof(t_rbuf);
}

static void up_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct tsess *s = st->data;
	if (s->state == TS_CLOSING || n == 0)
		return;
	if (n < 0) {
		if (s->state == TS_HANDSHAKING)
			proxy_log_err("guard %s closed the connection during the handshake: it refused our certificate, "
				      "or it is not a guard", s->t->cfg.guard.text);
		tsess_close(s, n == UV_EOF ? "the guard closed the connection" : uv_strerror((int)n));
		return;
	}
	if (proxy_tls_feed(&s->tls, buf->base, (size_t)n) < 0) {
		tsess_close(s, "out of memory");
		return;
	}
	up_pump(s);
}

static void on_up_drained(struct proxy_out *o)
{
	struct tsess *s = o->owner;
	/* before OPEN the head-end's bytes wait in pend (tls_opened resumes); FINISHING reads no more */
	if (s->state != TS_OPEN || !s->client_blocked)
		return;
	s->client_blocked = false;
	uv_read_start((uv_stream_t *)&s->client, client_alloc, client_read);
}

static void on_client_drained(struct proxy_out *o)
{
	struct tsess *s = o->owner;
	if (s->state == TS_CLOSING || !s->up_blocked)
		return;
	s->up_blocked = false;
	uv_read_start((uv_stream_t *)&s->up, up_alloc, up_read);
	up_pump(s);
}

/* A queued write failed (the peer reset): that one session ends, also while its peer is not read. */
static void on_out_failed(struct proxy_out *o, int status)
{
	tsess_close(o->owner, uv_strerror(status));
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct tsess *s = h->data;
	(void)suggested;
	if (s->state == TS_OPEN) {
		buf->base = (char *)t_rbuf;
		buf->len = sizeof(t_rbuf);
	} else {
		buf->base = (char *)s->pend + s->pend_len;
		buf->len = sizeof(s->pend) - s->pend_len;
	}
}

static void client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct tsess *s = st->data;
	if (s->state == TS_CLOSING || n == 0)
		return;
	if (n == UV_ENOBUFS) {
		s->client_blocked = true;
		uv_read_stop(st);
		return;
	}
	if (n == UV_EOF) {
		/* a half-close: the head-end may still read the answers to what it sent */
		if (s->state == TS_OPEN) {
			client_done(s);
		} else {
			s->pend_eof = true; /* passed on once the session is open */
			uv_read_stop(st);
		}
		return;
	}
	if (n < 0) {
		tsess_close(s, uv_strerror((int)n));
		return;
	}
	if (s->state != TS_OPEN) {
		s->pend_len += (size_t)n;
		if (s->pend_len == sizeof(s->pend)) {
			s->client_blocked = true;
			uv_read_stop(st);
		}
		return;
	}
	send_plain(s, (const uint8_t *)buf->base, (size_t)n);
}

/* ---- dialling the guard: connect, back-off, deadline ---- */

static void dial(struct tsess *s);

static void on_timer(uv_timer_t *h)
{
	struct tsess *s = h->data;
	switch ((enum tsess_state)s->state) {
	case TS_WAITING:
		dial(s); /* back-off over */
		return;
	case TS_DIALING:
	case TS_RETRYING:
	case TS_HANDSHAKING:
		proxy_log_err("guard %s: no TLS session within %u ms", s->t->cfg.guard.text,
			      s->t->cfg.connect_timeout_ms);
		tsess_close(s, "guard unreachable");
		return;
	default:
		return; /* OPEN stopped it; CLOSING closes it */
	}
}

static void up_closed_for_retry(uv_handle_t *h)
{
	struct tsess *s = h->data;
	if (s->state == TS_CLOSING) {
		tsess_release(h);
		return;
	}
	tsess_set(s, TS_WAITING);
	struct tunnel *t = s->t;
	uint64_t now = uv_now(t->loop), spent = now - s->start_ms;
	/* Keep trying until connect-timeout has passed: a back-off that would end after the
	 * deadline is cut to it, for one last try there (giving up as soon as the next back-off
	 * did not fit ended the tries at 3.1 s of a 5 s timeout: 100+200+400+800+1600 ms). */
	if (spent >= t->cfg.connect_timeout_ms) {
		proxy_log_err("guard %s unreachable for %u ms: giving up on this connection", t->cfg.guard.text,
			      (unsigned)spent);
		tsess_close(s, "guard unreachable");
		return;
	}
	uint64_t left = t->cfg.connect_timeout_ms - spent;
	uv_timer_start(&s->timer, on_timer, s->backoff_ms < left ? s->backoff_ms : left, 0);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct tsess *s = req->data;
	struct tunnel *t = s->t;
	if (s->state != TS_DIALING)
		return; /* closed meanwhile (the request is cancelled) */
	if (status < 0) {
		s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 100;
		if (s->backoff_ms > t->cfg.backoff_max_ms)
			s->backoff_ms = t->cfg.backoff_max_ms;
		t->streak_ms = s->backoff_ms;
		t->retry_at_ms = uv_now(t->loop) + s->backoff_ms;
		proxy_log_warn("guard %s: %s; retrying in %u ms", t->cfg.guard.text, uv_strerror(status), s->backoff_ms);
		tsess_set(s, TS_RETRYING);
		uv_close((uv_handle_t *)&s->up, up_closed_for_retry);
		return;
	}
	t->streak_ms = 0;
	t->retry_at_ms = 0;
	tsess_set(s, TS_HANDSHAKING);
	uv_tcp_nodelay(&s->up, 1);
	if (proxy_tls_start(&s->tls, t->ctx, false, t->cfg.server_name, &s->verr) < 0) {
		tsess_close(s, "out of memory");
		return;
	}
	uv_read_start((uv_stream_t *)&s->up, up_alloc, up_read);
	up_pump(s); /* sends the ClientHello */
}

static void dial(struct tsess *s)
{
	struct tunnel *t = s->t;
	tsess_set(s, TS_DIALING);
	uv_tcp_init(t->loop, &s->up);
	s->up.data = s;
	s->creq.data = s;
	/* the try at the deadline itself gets a moment to connect (a loopback or LAN connect
	 * answers within it); an unsigned left that underflowed would have waited for ever */
	uint64_t spent = uv_now(t->loop) - s->start_ms, left = 1;
	if (spent < t->cfg.connect_timeout_ms)
		left = t->cfg.connect_timeout_ms - spent;
	uv_timer_start(&s->timer, on_timer, left < 100 ? 100 : left, 0);
	int rc = uv_tcp_connect(&s->creq, &s->up, (const struct sockaddr *)&t->cfg.guard.ss, on_connect);
	if (rc < 0)
		on_connect(&s->creq, rc);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct tunnel *t = server->data;
	if (status < 0 || t->stopping)
		return;
	struct tsess *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->t = t;
	s->state = TS_ACCEPTED;
	s->cout.owner = s->uout.owner = s;
	s->cout.drained = on_client_drained;
	s->uout.drained = on_up_drained;
	s->cout.failed = s->uout.failed = on_out_failed;
	uv_tcp_init(t->loop, &s->client);
	uv_timer_init(t->loop, &s->timer);
	s->client.data = s->timer.data = s;
	proxy_list_push(&t->sessions, &s->link);
	t->nsessions++;
	s->start_ms = uv_now(t->loop);
	if (uv_accept(server, (uv_stream_t *)&s->client) < 0) {
		tsess_close(s, "accept failed");
		return;
	}
	if (t->nsessions > t->cfg.limits.connections) {
		proxy_log_warn("connection limit (%u) reached: refusing a head-end connection", t->cfg.limits.connections);
		tsess_close(s, NULL);
		return;
	}
	uv_tcp_nodelay(&s->client, 1);
	uv_read_start((uv_stream_t *)&s->client, client_alloc, client_read);
	uint64_t now = uv_now(t->loop);
	if (t->retry_at_ms > now) {
		/* the guard was unreachable a moment ago: wait out the back-off rather than hammer it */
		tsess_set(s, TS_WAITING);
		s->backoff_ms = t->streak_ms;
		uv_timer_start(&s->timer, on_timer, t->retry_at_ms - now, 0);
		return;
	}
	dial(s);
}

/* ---- the tunnel's life: set-up, run, stop, tear-down ---- */

void tunnel_stop(struct tunnel *t)
{
	if (t->stopping)
		return;
	t->stopping = true;
	proxy_log_info("stopping: closing %u connections", t->nsessions);
	uv_close((uv_handle_t *)&t->listener, proxy_closed_noop);
	while (!proxy_list_empty(&t->sessions))
		tsess_close(proxy_container_of(t->sessions.next, struct tsess, link), NULL);
	uv_close((uv_handle_t *)&t->sig_hup, proxy_closed_noop);
	uv_close((uv_handle_t *)&t->sig_term, proxy_closed_noop);
	uv_close((uv_handle_t *)&t->sig_int, proxy_closed_noop);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct tunnel *t = h->data;
	if (signum == SIGHUP) {
		SSL_CTX *ctx = NULL;
		char why[512];
		if (proxy_tls_ctx_new(&t->cfg, false, &ctx, why, sizeof(why)) < 0) {
			proxy_log_err("reload failed, keeping the previous certificates: %s", why);
			return;
		}
		SSL_CTX_free(t->ctx);
		t->ctx = ctx;
		proxy_log_info("reloaded certificate, key, CA and CRL (for new connections)");
		return;
	}
	tunnel_stop(t);
}

int proxy_tunnel_check(const struct proxy_config *cfg, FILE *out)
{
	SSL_CTX *ctx = NULL;
	char why[512];
	if (proxy_tls_ctx_new(cfg, false, &ctx, why, sizeof(why)) < 0) {
		fprintf(out, "%s: %s\n", cfg->path, why);
		return -1;
	}
	SSL_CTX_free(ctx);
	return 0;
}

int tunnel_setup(const struct proxy_config *cfg, uv_loop_t *loop, struct tunnel **out)
{
	char why[512];
	*out = NULL;
	struct tunnel *t = calloc(1, sizeof(*t)); /* the configuration is large: not on the stack */
	if (!t)
		return -ENOMEM;
	memcpy(&t->cfg, cfg, sizeof(*cfg));
	t->loop = loop;
	proxy_list_init(&t->sessions);
	if (proxy_tls_ctx_new(&t->cfg, false, &t->ctx, why, sizeof(why)) < 0) {
		proxy_log_err("%s", why);
		goto fail;
	}
	uv_tcp_init(t->loop, &t->listener);
	t->listener.data = t;
	int e = uv_tcp_bind(&t->listener, (const struct sockaddr *)&t->cfg.listeners[0].addr.ss, 0);
	if (e == 0)
		e = uv_listen((uv_stream_t *)&t->listener, 511, on_connection);
	if (e < 0) {
		proxy_log_err("listen %s: %s", t->cfg.listeners[0].addr.text, uv_strerror(e));
		goto fail_loop;
	}
	if (proxy_drop_privileges(t->cfg.user) < 0)
		goto fail_loop;
	uv_signal_init(t->loop, &t->sig_hup);
	uv_signal_init(t->loop, &t->sig_term);
	uv_signal_init(t->loop, &t->sig_int);
	t->sig_hup.data = t->sig_term.data = t->sig_int.data = t;
	uv_signal_start(&t->sig_hup, on_signal, SIGHUP);
	uv_signal_start(&t->sig_term, on_signal, SIGTERM);
	uv_signal_start(&t->sig_int, on_signal, SIGINT);
	proxy_log_info("listening on %s, carrying to guard %s (name %s)", t->cfg.listeners[0].addr.text,
		       t->cfg.guard.text, t->cfg.server_name);
	*out = t;
	return 0;
fail_loop:
	uv_close((uv_handle_t *)&t->listener, proxy_closed_noop);
	uv_run(t->loop, UV_RUN_DEFAULT);
fail:
	tunnel_teardown(t);
	return -1;
}

void tunnel_run(struct tunnel *t)
{
	uv_run(t->loop, UV_RUN_DEFAULT);
}

void tunnel_teardown(struct tunnel *t)
{
	SSL_CTX_free(t->ctx);
	free(t);
}

int proxy_tunnel_run(const struct proxy_config *cfg)
{
	struct tunnel *t;
	uv_loop_t *loop = uv_default_loop();
	if (tunnel_setup(cfg, loop, &t) < 0) {
		uv_loop_close(loop);
		return 1;
	}
	/* readiness line for scripts and supervisors: bound, certificates loaded */
	proxy_log_info("ready");
	tunnel_run(t);
	uv_loop_close(loop);
	tunnel_teardown(t);
	return 0;
}
