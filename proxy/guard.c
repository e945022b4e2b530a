/* proxy/guard.c: the field-side gateway: TLS and legacy listeners, client sessions,
 * the audit-before-forward queue, reload, revocation and shutdown.
 *
 * Every callback is thin: it buffers bytes, calls engine_inspect(), and acts on the
 * verdict. TLS runs over memory BIOs: the engine never touches a socket. A session
 * ends through session_close() only, which records the end once; its memory is
 * freed in the last close callback of its handles.
 *
 * How a session ends, and what happens to the requests it has decided:
 *  - finishing (session_finish): the peer half-closed (EOF, TLS close_notify), sent a
 *    malformed frame, let a frame stall past `frame-timeout`, or the guard drains. No more
 *    input is taken; every request already decided is forwarded and answered as usual (a
 *    half-closed client still gets its answers), then the session closes.
 *  - closing at once (session_close): the peer reset or a write failed, TLS failed, the
 *    certificate was revoked, the drain deadline passed. A decided request not yet at the
 *    device is not forwarded and gets a `not_forwarded` result saying why; one at the device
 *    keeps its slot there and its outcome (answer or timeout) is recorded when it comes, with
 *    detail "client gone".
 * Every decision recorded `pending` thus gets its `result` record on every path.
 * A session that is not being read (limits, finishing) cannot see a reset through a read:
 * its timer polls the socket for one every GUARD_WATCH_MS (no system call otherwise).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "load/policy_files.h"
#include "base/clock.h"
#include "proxy/guard.h"
#include "proxy/privs.h"
#include "proxy/log.h"
#include "proxy/preflight.h"
#include "proxy/proxy.h"

#define PREAUTH_MAX_BYTES 16384 /* ciphertext buffered before the handshake completes */
/* A session that is not being read is checked this often for a reset or hang-up: short
 * enough that a vanished peer's slot and connection count return quickly, long enough
 * that the poll(2) costs nothing measurable (it runs only for such sessions). */
#define GUARD_WATCH_MS 250

/* One read buffer for the whole loop: libuv calls read right after alloc, and a TLS
 * session copies ciphertext into its BIO at once, so no connection holds one while idle. */
static uint8_t g_rbuf[17 * 1024];
static struct engine_verdict g_verdict; /* large (a decoded request); one per loop */

uint64_t guard_now_ms(struct guard *g)
{
	return g->io->now_ms(g);
}

uint64_t guard_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the audit trail and the clock, through the driver ---- */

static void audit_event(struct guard *g, const struct audit_event *ev)
{
	uint64_t t;
	int rc = g->io->record(g, ev, false, &t);
	if (rc < 0)
		proxy_log_warn("audit: a %s record was not queued: %s", audit_kind_name(ev->kind), strerror(-rc));
}

static void audit_simple(struct guard *g, uint8_t kind, const struct bms_identity *peer, const char *detail)
{
	struct audit_event ev = { .kind = kind, .peer = peer, .detail = detail, .proto = BMS_PROTO_MODBUS };
	audit_event(g, &ev);
}

void guard_record_result(struct guard *g, uint64_t ticket, uint64_t start_us, uint8_t result, uint32_t exception,
			 const char *detail)
{
	struct audit_event ev = {
		.kind = AUDIT_RESULT,
		.proto = BMS_PROTO_MODBUS,
		.ref = ticket,
		.result = result,
		.exception = exception,
		.latency_us = bms_mono_us() - start_us,
		.detail = detail,
	};
	audit_event(g, &ev);
}

/* ---- sessions: the one state, its setter, its table ----
 *
 *   from \ to     HANDSHAKING  OPEN  FINISHING  CLOSING
 *   ACCEPTED          tls      plain               refused (limits, source, memory)
 *   HANDSHAKING                 ok                 refused, failed, peer gone, timeout
 *   OPEN                                 ok        at once (reset, write error, revoked, idle, drain deadline)
 *   FINISHING                                      the last decided request completed, or at once
 *   CLOSING       (nothing: the handles close; the memory goes in the last close callback)
 */
static const uint8_t gs_next[GS_NSTATES] = {
	[GS_ACCEPTED] = 1u << GS_HANDSHAKING | 1u << GS_OPEN | 1u << GS_CLOSING,
	[GS_HANDSHAKING] = 1u << GS_OPEN | 1u << GS_CLOSING,
	[GS_OPEN] = 1u << GS_FINISHING | 1u << GS_CLOSING,
	[GS_FINISHING] = 1u << GS_CLOSING,
	[GS_CLOSING] = 0,
};

static const char *const gs_name[GS_NSTATES] = {
	[GS_ACCEPTED] = "accepted", [GS_HANDSHAKING] = "handshaking", [GS_OPEN] = "open",
	[GS_FINISHING] = "finishing", [GS_CLOSING] = "closing",
};

bool guard_session_can(enum gsession_state from, enum gsession_state to)
{
	return from < GS_NSTATES && to < GS_NSTATES && (gs_next[from] & (1u << to)) != 0;
}

const char *guard_session_state_name(enum gsession_state st)
{
	return st < GS_NSTATES ? gs_name[st] : "?";
}

/* The only writer of s->state. A move the table does not allow is a bug in this file: stop
 * rather than forward for a session in a state nobody reasoned about. */
static void session_set(struct gsession *s, enum gsession_state to)
{
	if (!guard_session_can((enum gsession_state)s->state, to)) {
		proxy_log_err("bug: session state %s -> %s", guard_session_state_name((enum gsession_state)s->state),
			      guard_session_state_name(to));
		abort();
	}
	s->state = (uint8_t)to;
}

static bool session_up(const struct gsession *s)
{
	return s->state == GS_OPEN || s->state == GS_FINISHING;
}

/* Reading the peer: open and not held back by a limit. */
static bool session_reading(const struct gsession *s)
{
	return s->state == GS_OPEN && !s->blocked;
}

static const char *session_who(const struct gsession *s)
{
	return s->id.subject[0] ? s->id.subject : s->is_tls ? "connection" : "legacy client";
}

/* ---- sessions: output ---- */

enum gend {
	END_QUIET = 0, /* the audit record says it all */
	END_LOUD,      /* and a diagnostic line: "closing WHO: why" */
	END_REFUSED,   /* never open: "refused WHO: why", a conn_refused record, the TLS alert sent */
};

static void session_close(struct gsession *s, const char *why, enum gend how);

static bool tls_record(void *owner, const uint8_t *buf, size_t n)
{
	struct gsession *s = owner;
	if (s->state == GS_CLOSING)
		return false;
	int rc = s->g->io->write(s, buf, n);
	if (rc < 0) {
		session_close(s, uv_strerror(rc), END_QUIET);
		return false;
	}
	return true;
}

static uint8_t *tls_room(void *owner, size_t *cap);
static bool tls_app(void *owner, size_t n);
static bool tls_opened(void *owner);

static const struct proxy_tls_peer tls_peer = {
	.room = tls_room,
	.app = tls_app,
	.opened = tls_opened,
	.record = tls_record,
};

static void session_flush(struct gsession *s)
{
	if (s->is_tls && s->tls.ssl && s->state != GS_CLOSING)
		(void)proxy_tls_flush(&s->tls, &tls_peer, s);
}

/* Plaintext for the peer: as records (flushed by the caller's pass), or straight to the socket. */
static void session_send(struct gsession *s, const uint8_t *buf, size_t len)
{
	if (s->state == GS_CLOSING)
		return;
	if (!s->is_tls) {
		int rc = s->g->io->write(s, buf, len);
		if (rc < 0)
			session_close(s, uv_strerror(rc), END_QUIET);
		return;
	}
	if (proxy_tls_write(&s->tls, buf, len) < 0) {
		char why[160];
		proxy_tls_failure(s->tls.ssl, NULL, why, sizeof(why));
		session_close(s, why, END_QUIET);
	}
}

/* ---- sessions: the one close path ---- */

void guard_session_free(struct gsession *s)
{
	proxy_tls_free(&s->tls);
	free(s->reqs);
	free(s);
}

static void guard_maybe_finish(struct guard *g);

/* Logs once, records once, resolves every decided request, releases the handles. */
static void session_close(struct gsession *s, const char *why, enum gend how)
{
	struct guard *g = s->g;
	if (s->state == GS_CLOSING)
		return;
	bool was_up = session_up(s);
	if (how == END_REFUSED) {
		proxy_log_info("refused %s: %s", s->id.subject[0] ? s->id.subject : "connection", why);
		audit_simple(g, AUDIT_CONN_REFUSED, &s->id, why);
		session_flush(s); /* the TLS alert, so the peer learns why */
		if (s->state == GS_CLOSING)
			return; /* the flush failed and closed it */
	} else if (how == END_LOUD && !s->ended_loud) {
		proxy_log_info("closing %s: %s", session_who(s), why);
	}
	session_set(s, GS_CLOSING);
	char nf[224];
	snprintf(nf, sizeof(nf), "not forwarded: the connection closed first (%s)", why);
	for (unsigned i = 0; s->reqs && i < s->nreqs; i++) {
		struct greq *r = &s->reqs[i];
		bool never_sent = r->state == GREQ_AUDIT_WAIT || r->state == GREQ_QUEUED;
		if (r->state == GREQ_AUDIT_WAIT)
			proxy_list_del(&r->link);
		else if (r->state == GREQ_QUEUED || r->state == GREQ_SENT)
			g->io->cancel(r, r->has_ticket); /* at the device: its outcome is recorded later */
		if (never_sent && r->has_ticket)
			guard_record_result(g, r->ticket, r->start_us, AUDIT_RESULT_NOT_FORWARDED, 0, nf);
		r->state = GREQ_FREE;
	}
	s->inflight = 0;
	if (was_up)
		audit_simple(g, AUDIT_CONN_CLOSED, &s->id, why);
	proxy_list_del(&s->link);
	g->nsessions--;
	g->io->release(s);
	guard_maybe_finish(g);
}

/* ---- sessions: timer, watch, finish ---- */

/* The timer runs at or before the earliest deadline and recomputes when it fires: bring it
 * forward only (no work per request). */
static void session_timer_within(struct gsession *s, uint64_t ms)
{
	if (s->state != GS_CLOSING)
		s->g->io->timer(s, ms, true);
}

/* Stop reading and see the peer's reset through the watch instead. */
static void session_hold(struct gsession *s)
{
	(void)s->g->io->read(s, false);
	session_timer_within(s, GUARD_WATCH_MS);
}

/* No more input; the decided requests complete, then the session closes with `why`. */
static void session_finish(struct gsession *s, const char *why, enum gend how)
{
	if (s->state == GS_CLOSING || s->state == GS_FINISHING)
		return;
	if (s->inflight == 0 || s->state != GS_OPEN) {
		session_close(s, why, how);
		return;
	}
	if (how == END_LOUD) {
		proxy_log_info("closing %s: %s", session_who(s), why);
		s->ended_loud = true;
	}
	session_set(s, GS_FINISHING);
	snprintf(s->finish_why, sizeof(s->finish_why), "%s", why);
	session_hold(s);
}

/* The peer closed its sending side: answer what it asked, then close. */
static void session_eof(struct gsession *s, const char *why)
{
	char w[160];
	if (s->in_len || s->frame_since_ms) {
		snprintf(w, sizeof(w), "%s in the middle of a frame (%u bytes of it)", why, (unsigned)s->in_len);
		why = w;
	}
	s->frame_since_ms = 0; /* it can never complete: not a frame timeout */
	session_finish(s, why, END_QUIET);
}

void guard_session_eof(struct gsession *s)
{
	if (s->state == GS_CLOSING)
		return;
	if (s->state < GS_OPEN) {
		session_close(s, "peer closed the connection during the handshake", END_QUIET);
		return;
	}
	/* for TLS: records already fed were all read; a peer that half-closes still gets its answers */
	session_eof(s, "peer closed the connection");
}

void guard_session_error(struct gsession *s, int err)
{
	session_close(s, uv_strerror(err), END_QUIET);
}

/* A session that is not being read does not see its peer's reset through a read. Returns -1
 * when the session was closed. */
static int session_watch(struct gsession *s)
{
	char why[128];
	if (s->g->io->watch(s, why, sizeof(why)) == 0)
		return 0;
	session_close(s, why, END_QUIET);
	return -1;
}

/* An unfinished frame (or TLS record) waits for its bytes; `progressed`: a frame completed in
 * this pass, so the one now waiting started now. A trickle of bytes never renews the clock. */
static void frame_clock(struct gsession *s, bool partial, bool progressed)
{
	if (!partial) {
		s->frame_since_ms = 0;
		return;
	}
	if (s->frame_since_ms && !progressed)
		return;
	s->frame_since_ms = guard_now_ms(s->g);
	session_timer_within(s, s->g->cfg.limits.frame_timeout_ms);
}

void guard_session_timer(struct gsession *s)
{
	struct guard *g = s->g;
	const struct proxy_limits *l = &g->cfg.limits;
	if (s->state == GS_CLOSING)
		return;
	uint64_t now = guard_now_ms(g);
	bool up = session_up(s);
	if (!up && now - s->start_ms >= l->handshake_timeout_ms) {
		session_close(s, "handshake timeout", END_REFUSED);
		return;
	}
	if (s->frame_since_ms && now - s->frame_since_ms >= l->frame_timeout_ms) {
		char why[160];
		snprintf(why, sizeof(why), "frame-timeout: a frame not completed within %u ms (%u bytes of it)",
			 l->frame_timeout_ms, (unsigned)s->in_len);
		s->frame_since_ms = 0;
		session_finish(s, why, END_LOUD);
		if (s->state == GS_CLOSING)
			return;
	}
	if (up && !session_reading(s) && session_watch(s) < 0)
		return;
	if (up && s->inflight == 0 && now - s->last_activity_ms >= l->idle_timeout_ms) {
		session_close(s, "idle timeout", END_QUIET);
		return;
	}
	/* next: the earliest deadline that applies (idle is rechecked lazily while requests are out) */
	uint64_t next = s->inflight ? l->idle_timeout_ms : l->idle_timeout_ms - (now - s->last_activity_ms);
	if (!up && l->handshake_timeout_ms - (now - s->start_ms) < next)
		next = l->handshake_timeout_ms - (now - s->start_ms);
	if (s->frame_since_ms && l->frame_timeout_ms - (now - s->frame_since_ms) < next)
		next = l->frame_timeout_ms - (now - s->frame_since_ms);
	if (up && !session_reading(s) && GUARD_WATCH_MS < next)
		next = GUARD_WATCH_MS;
	g->io->timer(s, next ? next : 1, false);
}

/* ---- sessions: input ---- */

static void session_block(struct gsession *s)
{
	if (!s->blocked) {
		s->blocked = true;
		session_hold(s);
	}
}

static void session_pump(struct gsession *s);

static void session_unblock(struct gsession *s)
{
	struct guard *g = s->g;
	if (!s->blocked || s->state != GS_OPEN)
		return;
	if (s->inflight >= s->nreqs || s->out.queued > g->cfg.limits.buffer_size)
		return;
	s->blocked = false;
	if (g->io->read(s, true) < 0) {
		session_close(s, "cannot read", END_QUIET);
		return;
	}
	session_pump(s);
}

void guard_session_drained(struct gsession *s)
{
	session_unblock(s);
}

/* A queued write failed: the peer reset (or is gone); also when it is not being read. */
void guard_session_write_failed(struct gsession *s, int status)
{
	char why[96];
	snprintf(why, sizeof(why), "write: %s", uv_strerror(status));
	session_close(s, why, END_QUIET);
}

static struct greq *free_req(struct gsession *s)
{
	for (unsigned i = 0; i < s->nreqs; i++)
		if (s->reqs[i].state == GREQ_FREE)
			return &s->reqs[i];
	return NULL;
}

/* The verdict says forward: record the decision first; the request goes to its device once
 * the record is durable (or at once under fail = open with a failing log). Returns true when
 * it waits for its record. */
static bool act_forward(struct gsession *s, const struct engine_verdict *v, const uint8_t *frame)
{
	struct guard *g = s->g;
	uint64_t ticket = 0;
	int rc = g->io->record(g, &v->event, true, &ticket);
	if (rc < 0 && !g->io->fail_open(g)) {
		uint8_t exc[9];
		proxy_log_err("audit: cannot record a decision (%s): refusing to forward", strerror(-rc));
		size_t n = modbus_encode_exception(v->req->raw.modbus.tid, v->req->raw.modbus.unit, v->req->raw.modbus.fc,
						   ENGINE_EXC_PATH_UNAVAILABLE, exc);
		session_send(s, exc, n);
		return false;
	}
	struct greq *r = free_req(s);
	r->s = s;
	r->has_ticket = rc == 0;
	r->orig_tid = v->req->raw.modbus.tid;
	r->unit = frame[6];
	r->fc = frame[7];
	r->ticket = ticket;
	r->start_us = bms_mono_us();
	r->dev = upstream_device(g, &g->cfg.devices[v->route->index]);
	r->tx = NULL;
	r->len = (uint16_t)v->consumed;
	memcpy(r->adu, frame, v->consumed);
	s->inflight++;
	if (rc < 0) {
		/* fail = open: the operator chose availability over the record */
		g->io->submit(r);
		return false;
	}
	r->state = GREQ_AUDIT_WAIT;
	proxy_list_push(&g->audit_wait, &r->link);
	return true;
}

static void audit_durable_check(struct guard *g);

/* Inspect and act on every whole frame buffered; stop when a limit says so. This function
 * coordinates: the acts are session_send, act_forward and session_finish. */
static void process_input(struct gsession *s)
{
	struct guard *g = s->g;
	struct engine_verdict *v = &g_verdict;
	size_t off = 0;
	bool queued = false, partial = false;
	if (s->state != GS_OPEN || s->in_len == 0)
		return; /* nothing after a malformed frame, a half-close or a frame timeout is taken; and
			 * no plaintext says nothing about a TLS record still arriving (frame_clock) */
	while (s->state == GS_OPEN && off < s->in_len) {
		if (s->inflight >= s->nreqs || s->out.queued > g->cfg.limits.buffer_size) {
			session_block(s);
			break;
		}
		struct engine_ctx ctx = {
			.routes = &g->routes,
			.policy = g->policy,
			.state = g->pstate,
			.who = &s->id,
			.roles = &s->roles,
			.now_us = (int64_t)guard_now_us(),
		};
		struct engine_input in = { .proto = BMS_PROTO_MODBUS, .bytes = s->in + off, .len = s->in_len - off };
		uint64_t t0 = bms_mono_us();
		engine_inspect(&ctx, &in, v);
		if (v->action == ENGINE_NEED_MORE) {
			partial = true;
			break;
		}
		v->event.latency_us = bms_mono_us() - t0; /* the decision's own cost: frame, decode, decide */
		if (v->action == ENGINE_CLOSE) {
			if (v->audit)
				audit_event(g, &v->event);
			/* the requests decided before this frame still complete; nothing after it is read */
			s->frame_since_ms = 0;
			session_finish(s, v->detail[0] ? v->detail : "protocol error", END_LOUD);
			if (s->state == GS_CLOSING || queued)
				goto check_audit;
			return;
		}
		if (v->action == ENGINE_ANSWER || v->action == ENGINE_DROP) {
			if (v->audit)
				audit_event(g, &v->event);
			if (v->answer_len)
				session_send(s, v->answer, v->answer_len);
			off += v->consumed;
			continue;
		}
		queued |= act_forward(s, v, s->in + off);
		off += v->consumed;
	}
	if (s->state == GS_CLOSING)
		return;
	if (off) {
		memmove(s->in, s->in + off, s->in_len - off);
		s->in_len = (uint16_t)(s->in_len - off);
	}
	frame_clock(s, partial, off > 0);
check_audit:
	/* A healthy writer signals its completion fd when these records are durable. A writer
	 * that is already failing (EFBIG, ENOSPC...) signals nothing new for them, so they
	 * would wait until their client gives up: ask once per batch, and refuse now. */
	if (queued) {
		int failing = 0;
		(void)g->io->durable(g, &failing);
		if (failing)
			audit_durable_check(g);
	}
}

/* The TLS handshake completed: identity, then open. */
static bool tls_opened(void *owner)
{
	struct gsession *s = owner;
	struct guard *g = s->g;
	X509 *cert = SSL_get0_peer_certificate(s->tls.ssl);
	if (!cert || SSL_get_verify_result(s->tls.ssl) != X509_V_OK) {
		session_close(s, "no verified client certificate", END_REFUSED);
		return false;
	}
	/* note: why the identity is refused, or why its role extension was ignored */
	char note[192];
	if (proxy_tls_identity(cert, &s->id, note, sizeof(note)) < 0) {
		session_close(s, note[0] ? note : "cannot read the client certificate", END_REFUSED);
		return false;
	}
	/* after the identity, so that the refusal record says whom it turned away */
	if (g->crl_stale && g->cfg.crl_stale == PROXY_CRL_STALE_REFUSE) {
		session_close(s, g->crl_stale_why, END_REFUSED);
		return false;
	}
	session_set(s, GS_OPEN);
	char detail[320];
	snprintf(detail, sizeof(detail), "%s %s%s%s", SSL_get_version(s->tls.ssl), SSL_get_cipher_name(s->tls.ssl),
		 note[0] ? "; " : "", note);
	audit_simple(g, AUDIT_CONN_ACCEPTED, &s->id, detail);
	s->last_activity_ms = guard_now_ms(g);
	return true;
}

static uint8_t *tls_room(void *owner, size_t *cap)
{
	struct gsession *s = owner;
	if (s->state == GS_CLOSING || s->blocked || s->in_len >= sizeof(s->in))
		return NULL;
	*cap = sizeof(s->in) - s->in_len;
	return s->in + s->in_len;
}

static bool tls_app(void *owner, size_t n)
{
	struct gsession *s = owner;
	s->in_len = (uint16_t)(s->in_len + n);
	process_input(s);
	return s->state != GS_CLOSING;
}

/* Whatever is buffered is taken as far as the state allows: TLS records through the one pump,
 * then the frames. */
static void session_pump(struct gsession *s)
{
	process_input(s);
	if (!s->is_tls || s->state == GS_CLOSING)
		return;
	char why[256];
	switch (proxy_tls_pump(&s->tls, &tls_peer, s)) {
	case PROXY_TLS_WAIT:
		break;
	case PROXY_TLS_STOPPED:
		return;
	case PROXY_TLS_PEER_DONE:
		session_eof(s, "peer closed the TLS session");
		return;
	case PROXY_TLS_HS_FAILED:
		proxy_tls_failure(s->tls.ssl, &s->verr, why, sizeof(why));
		if (s->verr.err)
			snprintf(s->id.subject, sizeof(s->id.subject), "%s", s->verr.subject);
		session_close(s, why, END_REFUSED);
		return;
	case PROXY_TLS_FAILED:
		proxy_tls_failure(s->tls.ssl, &s->verr, why, sizeof(why));
		session_close(s, why, END_QUIET);
		return;
	}
	/* an unfinished TLS record is an unfinished frame too (a record trickled byte by byte) */
	if (!s->in_len && session_reading(s) && !s->frame_since_ms && proxy_tls_partial(&s->tls))
		frame_clock(s, true, false);
}

uint8_t *guard_session_room(struct gsession *s, size_t *cap)
{
	if (s->is_tls) {
		/* one read buffer for the whole loop: the bytes go into the TLS engine at once */
		*cap = sizeof(g_rbuf);
		return g_rbuf;
	}
	*cap = sizeof(s->in) - s->in_len;
	return s->in + s->in_len;
}

void guard_session_input(struct gsession *s, const uint8_t *buf, size_t n)
{
	if (s->state == GS_CLOSING || n == 0)
		return;
	s->last_activity_ms = guard_now_ms(s->g);
	if (!s->is_tls) {
		/* read where guard_session_room said: straight into the frame buffer */
		s->in_len = (uint16_t)(s->in_len + n);
		process_input(s);
		return;
	}
	if (s->state < GS_OPEN && proxy_tls_buffered(&s->tls) + n > PREAUTH_MAX_BYTES) {
		session_close(s, "too many bytes before the handshake completed", END_REFUSED);
		return;
	}
	if (proxy_tls_feed(&s->tls, buf, n) < 0) {
		session_close(s, "out of memory", END_QUIET);
		return;
	}
	session_pump(s);
}

/* ---- requests: audit completion, device answers ---- */

static void audit_durable_check(struct guard *g)
{
	int failing = 0;
	uint64_t durable = g->io->durable(g, &failing);
	bool refuse = failing && !g->io->fail_open(g);
	if (failing)
		proxy_log_err("audit trail failing (%s): %s", strerror(failing),
			      refuse ? "refusing to forward" : "forwarding anyway (fail = open)");
	while (!proxy_list_empty(&g->audit_wait)) {
		struct greq *r = proxy_container_of(g->audit_wait.next, struct greq, link);
		if (!failing && r->ticket >= durable)
			break;
		proxy_list_del(&r->link);
		if (refuse) {
			guard_complete(r, NULL, 0, AUDIT_RESULT_NOT_FORWARDED, ENGINE_EXC_PATH_UNAVAILABLE);
			continue;
		}
		if (!r->dev) {
			guard_complete(r, NULL, 0, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_PATH_UNAVAILABLE);
			continue;
		}
		g->io->submit(r);
	}
}

void guard_audit_ready(struct guard *g)
{
	audit_durable_check(g);
}

static void request_finish(struct greq *r, const uint8_t *adu, size_t len, uint8_t result, uint8_t exception,
			   const char *detail)
{
	struct gsession *s = r->s;
	struct guard *g = s->g;
	if (r->state == GREQ_FREE)
		return;
	r->state = GREQ_FREE;
	r->tx = NULL;
	if (s->state == GS_CLOSING)
		return;
	if (adu) {
		session_send(s, adu, len);
	} else {
		uint8_t exc[9];
		size_t n = modbus_encode_exception(r->orig_tid, r->unit, r->fc, exception, exc);
		session_send(s, exc, n);
	}
	session_flush(s);
	if (s->state == GS_CLOSING && !detail)
		detail = "client gone: the answer could not be delivered";
	/* `results errors` (the default) records only the answers that are not a plain success:
	 * exceptions, timeouts, an unreachable device, an answer that did not reach the client;
	 * `results all` records every one. */
	if (!r->has_ticket || (!g->cfg.audit.results_all && result == AUDIT_RESULT_OK && !detail))
		goto done;
	struct audit_event ev = {
		.kind = AUDIT_RESULT,
		.peer = &s->id,
		.proto = BMS_PROTO_MODBUS,
		.ref = r->ticket,
		.result = result,
		.exception = exception,
		.latency_us = bms_mono_us() - r->start_us,
		.anomalies = result == AUDIT_RESULT_BAD_ANSWER ? r->answer_anomalies : 0,
		/* a bad answer's own words say what was wrong (and what the client got) */
		.detail = result == AUDIT_RESULT_BAD_ANSWER ? r->answer_detail : detail,
	};
	audit_event(g, &ev);
done:
	if (s->state == GS_CLOSING)
		return;
	if (s->inflight)
		s->inflight--;
	s->last_activity_ms = guard_now_ms(g);
	if (s->state == GS_FINISHING) {
		if (s->inflight == 0)
			session_close(s, s->finish_why, END_QUIET);
		return;
	}
	session_unblock(s);
}

void guard_complete(struct greq *r, const uint8_t *adu, size_t len, uint8_t result, uint8_t exception)
{
	request_finish(r, adu, len, result, exception, NULL);
}

/* ---- accepting ---- */

static unsigned count_source(struct guard *g, const struct sockaddr_storage *a)
{
	unsigned n = 0;
	for (struct proxy_list *e = g->sessions.next; e != &g->sessions; e = e->next) {
		struct gsession *o = proxy_container_of(e, struct gsession, link);
		if (o->id.addr.ss_family != a->ss_family)
			continue;
		if (a->ss_family == AF_INET &&
		    ((const struct sockaddr_in *)(const void *)&o->id.addr)->sin_addr.s_addr ==
			    ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr)
			n++;
		else if (a->ss_family == AF_INET6 &&
			 memcmp(&((const struct sockaddr_in6 *)(const void *)&o->id.addr)->sin6_addr,
				&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr, 16) == 0)
			n++;
	}
	return n;
}

void guard_session_start(struct gsession *s, const struct proxy_listener *l, const char *failed)
{
	struct guard *g = s->g;
	proxy_list_push(&g->sessions, &s->link);
	g->nsessions++;
	s->state = GS_ACCEPTED;
	s->is_tls = l->kind == PROXY_LISTEN_TLS;
	s->start_ms = s->last_activity_ms = guard_now_ms(g);
	if (failed) {
		session_close(s, failed, END_QUIET);
		return;
	}
	if (g->nsessions > g->cfg.limits.connections) {
		session_close(s, "connection limit reached", END_REFUSED);
		return;
	}
	if (count_source(g, &s->id.addr) > g->cfg.limits.connections_per_source) {
		session_close(s, "per-source connection limit reached", END_REFUSED);
		return;
	}
	s->nreqs = g->cfg.limits.requests_in_flight;
	if (!s->is_tls) {
		if (!proxy_net_match(l, (const struct sockaddr *)&s->id.addr)) {
			session_close(s, "source address not allowed on the plain listener", END_REFUSED);
			return;
		}
	} else if (proxy_tls_start(&s->tls, g->tls_ctx, true, NULL, &s->verr) < 0) {
		session_close(s, "out of memory", END_REFUSED);
		return;
	}
	s->reqs = calloc(s->nreqs, sizeof(*s->reqs));
	if (!s->reqs) {
		session_close(s, "out of memory", END_REFUSED);
		return;
	}
	if (!s->is_tls) {
		s->id.authenticated = false;
		session_set(s, GS_OPEN);
		audit_simple(g, AUDIT_CONN_ACCEPTED, &s->id, "plain Modbus/TCP (legacy listener)");
	} else {
		session_set(s, GS_HANDSHAKING);
	}
	g->io->timer(s, s->is_tls ? g->cfg.limits.handshake_timeout_ms : g->cfg.limits.idle_timeout_ms, false);
	if (g->io->read(s, true) < 0)
		session_close(s, "cannot read", END_QUIET);
}

/* ---- the libuv driver: thin callbacks around the session core above ---- */

static void on_session_timer(uv_timer_t *t)
{
	guard_session_timer(t->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	size_t cap;
	(void)suggested;
	buf->base = (char *)guard_session_room(h->data, &cap);
	buf->len = cap;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct gsession *s = st->data;
	if (n == 0 || n == UV_ENOBUFS)
		return;
	if (n == UV_EOF)
		guard_session_eof(s);
	else if (n < 0)
		guard_session_error(s, (int)n);
	else
		guard_session_input(s, (const uint8_t *)buf->base, (size_t)n);
}

static void on_out_drained(struct proxy_out *o)
{
	guard_session_drained(o->owner);
}

static void on_out_failed(struct proxy_out *o, int status)
{
	guard_session_write_failed(o->owner, status);
}

static void uvio_closed(uv_handle_t *h)
{
	struct gsession *s = h->data;
	if (--s->pending_closes == 0)
		guard_session_free(s);
}

static uint64_t uvio_now_ms(struct guard *g)
{
	return uv_now(g->loop);
}

static int uvio_write(struct gsession *s, const uint8_t *buf, size_t len)
{
	return proxy_out_write((uv_stream_t *)&s->tcp, &s->out, buf, len);
}

static int uvio_read(struct gsession *s, bool on)
{
	if (!on)
		return uv_read_stop((uv_stream_t *)&s->tcp);
	return uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
}

static void uvio_timer(struct gsession *s, uint64_t ms, bool sooner_only)
{
	if (!sooner_only || !uv_is_active((uv_handle_t *)&s->timer) || uv_timer_get_due_in(&s->timer) > ms)
		uv_timer_start(&s->timer, on_session_timer, ms, 0);
}

/* A reset or hang-up on a socket that is not being read (poll(2), no read). */
static int uvio_watch(struct gsession *s, char *why, size_t len)
{
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&s->tcp, &fd) < 0)
		return 0;
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	if (poll(&p, 1, 0) != 1 || !(p.revents & (POLLERR | POLLHUP)))
		return 0; /* POLLRDHUP alone: a half-close; that peer still gets its answers */
	int err = 0;
	socklen_t elen = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	snprintf(why, len, "peer gone while not being read: %s", err ? strerror(err) : "hang-up");
	return 1;
}

static void uvio_release(struct gsession *s)
{
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->pending_closes = 2;
	uv_close((uv_handle_t *)&s->tcp, uvio_closed);
	uv_close((uv_handle_t *)&s->timer, uvio_closed);
}

static void on_audit_flush_idle(uv_idle_t *h);

static int uvio_record(struct guard *g, const struct audit_event *ev, bool batch, uint64_t *ticket)
{
	if (!batch)
		return g->audit ? audit_submit(g->audit, ev, ticket) : 0;
	int rc = audit_queue(g->audit, ev, ticket);
	if (rc == 0 && !g->audit_unflushed) {
		g->audit_unflushed = true;
		uv_idle_start(&g->audit_flush_idle, on_audit_flush_idle);
	}
	return rc;
}

static uint64_t uvio_durable(struct guard *g, int *failing)
{
	return audit_durable(g->audit, failing);
}

static bool uvio_fail_open(struct guard *g)
{
	return audit_fail_open(g->audit);
}

static void uvio_stop(struct guard *g);
static void uvio_drain_timer(struct guard *g, uint64_t ms);

static const struct guard_io uv_io = {
	.now_ms = uvio_now_ms,
	.write = uvio_write,
	.read = uvio_read,
	.timer = uvio_timer,
	.watch = uvio_watch,
	.release = uvio_release,
	.record = uvio_record,
	.durable = uvio_durable,
	.fail_open = uvio_fail_open,
	.submit = upstream_submit,
	.cancel = upstream_cancel,
	.stop = uvio_stop,
	.drain_timer = uvio_drain_timer,
};

/* Before the loop waits again, the records queued since it last waited are
 * written, by this thread when the audit writer thread sleeps (no hand-off: at
 * one connection that is two context switches per request), and what they
 * release goes to the devices at once. An idle handle, not a check handle: it
 * runs before the next wait wherever the record was queued (a check handle
 * started from another check or close callback would wait for the next event). */
static void on_audit_flush_idle(uv_idle_t *h)
{
	struct guard *g = h->data;
	uv_idle_stop(h);
	/* releasing can queue more (a refused request unblocks its session) */
	while (g->audit_unflushed) {
		g->audit_unflushed = false;
		if (audit_flush(g->audit) != 0)
			audit_durable_check(g);
	}
	/* upstream's own check handle, started now, would run only after the wait */
	upstream_flush(g);
}

static void on_audit_ready(uv_poll_t *p, int status, int events)
{
	struct guard *g = p->data;
	(void)events;
	if (status < 0)
		return;
	audit_drain_completion_fd(g->audit);
	audit_durable_check(g);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct guard *g = server->loop->data;
	const struct proxy_listener *l = server->data;
	if (status < 0 || g->draining)
		return;
	struct gsession *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->g = g;
	s->out.owner = s;
	s->out.drained = on_out_drained;
	s->out.failed = on_out_failed;
	uv_tcp_init(g->loop, &s->tcp);
	uv_timer_init(g->loop, &s->timer);
	s->tcp.data = s;
	s->timer.data = s;
	if (uv_accept(server, (uv_stream_t *)&s->tcp) < 0) {
		guard_session_start(s, l, "accept failed");
		return;
	}
	int alen = sizeof(s->id.addr);
	uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&s->id.addr, &alen);
	s->id.addr_len = (socklen_t)alen;
	uv_tcp_nodelay(&s->tcp, 1);
	guard_session_start(s, l, NULL);
}

/* ---- reload and revocation ---- */

static int load_policy(const struct proxy_config *cfg, struct bms_policy **out, bool log_errors, FILE *errs)
{
	struct bms_diag diags;
	const char *files[PROXY_MAX_POLICIES];
	for (unsigned i = 0; i < cfg->npolicies; i++)
		files[i] = cfg->policies[i];
	bms_diag_init(&diags);
	int rc = bms_policy_load(files, cfg->npolicies, out, &diags);
	if (rc < 0 || diags.warnings) {
		if (errs)
			bms_diag_print(&diags, errs);
		else if (log_errors) {
			char *buf = NULL;
			size_t len = 0;
			FILE *m = open_memstream(&buf, &len);
			if (m) {
				bms_diag_print(&diags, m);
				fclose(m);
				for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
					proxy_log(rc < 0 ? LOG_ERR : LOG_WARNING, "%s", line);
				free(buf);
			}
		}
	}
	bms_diag_free(&diags);
	return rc;
}

static void revocation_sweep(struct guard *g)
{
	struct proxy_list *e = g->sessions.next;
	while (e != &g->sessions) {
		struct gsession *s = proxy_container_of(e, struct gsession, link);
		e = e->next; /* session_close unlinks s */
		if (!s->is_tls || !session_up(s))
			continue;
		int v = proxy_tls_reverify(g->tls_ctx, s->tls.ssl);
		if (v == X509_V_OK)
			continue;
		char why[200];
		snprintf(why, sizeof(why), "certificate no longer valid: %s", X509_verify_cert_error_string(v));
		session_close(s, why, END_LOUD);
	}
}

/* snprintf for texts that may be cut (audit details, log words): cutting is the intent */
__attribute__((format(printf, 3, 4))) static void cut_to(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	(void)n;
}

/* Lines of a diagnostics buffer to the log, and folded into one line (for an audit detail). */
static void log_lines(int level, char *buf, char *fold, size_t cap)
{
	size_t off = 0;
	if (fold && cap)
		fold[0] = '\0';
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		proxy_log(level, "%s", line);
		if (fold && off < cap) {
			int w = snprintf(fold + off, cap - off, "%s%s", off ? "; " : "", line);
			if (w > 0)
				off += (size_t)w;
		}
	}
}

static void audit_reload_failed(struct guard *g, const char *detail, const char *hash)
{
	struct audit_event ev = { .kind = AUDIT_RELOAD_FAILED, .detail = detail, .hash = hash };
	audit_event(g, &ev);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static const char *stale_policy_words(const struct guard *g)
{
	return g->cfg.crl_stale == PROXY_CRL_STALE_REFUSE ? "new TLS sessions are refused until it loads (crl-stale refuse)"
							   : "new TLS sessions are still accepted against the last good CRL "
							     "(crl-stale keep)";
}

static void crl_mark_stale(struct guard *g, const char *why)
{
	cut_to(g->crl_stale_why, sizeof(g->crl_stale_why), "revocation list cannot be refreshed: %s", why);
	g->crl_stale = true;
	proxy_log_err("CRL %s is stale (%s): %s", g->cfg.crl, why, stale_policy_words(g));
}

static void crl_schedule_expiry(struct guard *g);

static void on_crl_expiry(uv_timer_t *t)
{
	struct guard *g = t->data;
	int64_t now = (int64_t)time(NULL);
	if (g->crl_next_update == 0 || g->draining)
		return;
	if (now < g->crl_next_update) {
		crl_schedule_expiry(g); /* woke early (a wall clock that moved): wait again */
		return;
	}
	char why[200], detail[600];
	time_t tt = (time_t)g->crl_next_update;
	struct tm tm;
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	cut_to(why, sizeof(why), "its nextUpdate (%s) has passed; publish a fresh one ('bmsgate pki crl DIR')", when);
	crl_mark_stale(g, why);
	cut_to(detail, sizeof(detail), "CRL %s: %s; %s", g->cfg.crl, why, stale_policy_words(g));
	audit_reload_failed(g, detail, NULL);
}

static void crl_schedule_expiry(struct guard *g)
{
	if (!g->crl_expiry_init || g->crl_next_update == 0)
		return;
	int64_t left = g->crl_next_update - (int64_t)time(NULL);
	if (left < 0)
		left = 0;
	/* at most a day at a time: the loop's clock is monotonic, nextUpdate is wall-clock time */
	if (left > 86400)
		left = 86400;
	uv_timer_start(&g->crl_expiry, on_crl_expiry, (uint64_t)left * 1000u + 1000u, 0);
}

/* After the TLS files loaded: remember the CRL file as loaded and when it expires. */
static void crl_loaded(struct guard *g)
{
	if (!g->cfg.crl[0])
		return;
	g->crl_loaded_ok = stat(g->cfg.crl, &g->crl_loaded) == 0;
	if (proxy_crl_next_update(g->cfg.crl, &g->crl_next_update) < 0)
		g->crl_next_update = 0;
	g->crl_stale = false;
	g->crl_stale_why[0] = '\0';
	if (g->crl_next_update && g->crl_next_update <= (int64_t)time(NULL)) {
		if (g->crl_expiry_init)
			on_crl_expiry(&g->crl_expiry);
		return;
	}
	crl_schedule_expiry(g);
}

/* A failed re-read of the TLS files. The CRL in force is stale when the CRL file is no
 * longer the one that was loaded (it changed, or is gone): the new list, which may revoke
 * someone, is not in force. A failure that leaves the CRL file as it was (a bad certificate
 * on SIGHUP) does not make the CRL stale. */
static void crl_reload_failed(struct guard *g, const char *why)
{
	struct stat now;
	if (!g->cfg.crl[0])
		return;
	if (g->crl_loaded_ok && stat(g->cfg.crl, &now) == 0 && same_file(&now, &g->crl_loaded))
		return;
	crl_mark_stale(g, why);
}

static void reload_tls(struct guard *g, const char *what)
{
	SSL_CTX *ctx = NULL;
	char why[512];
	if (proxy_tls_ctx_new(&g->cfg, true, &ctx, why, sizeof(why)) < 0) {
		char detail[1024];
		proxy_log_err("reload of %s failed, keeping the previous ones: %s", what, why);
		crl_reload_failed(g, why);
		cut_to(detail, sizeof(detail), "%s: %s; keeping the previous ones%s%s", what, why,
			 g->crl_stale ? "; the CRL in force is stale: " : "", g->crl_stale ? stale_policy_words(g) : "");
		audit_reload_failed(g, detail, NULL);
		return;
	}
	bool was_stale = g->crl_stale;
	SSL_CTX_free(g->tls_ctx); /* live sessions keep theirs through their SSL object */
	g->tls_ctx = ctx;
	crl_loaded(g);
	proxy_log_info("reloaded %s", what);
	if (was_stale && !g->crl_stale)
		proxy_log_info("CRL %s is fresh again: new TLS sessions are accepted", g->cfg.crl);
	audit_simple(g, AUDIT_CERTS_RELOADED, NULL, what);
	revocation_sweep(g);
}

static void reload(struct guard *g)
{
	struct bms_policy *p = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int rc = load_policy(&g->cfg, &p, false, m ? m : stderr);
	if (m)
		fclose(m);
	if (rc < 0) {
		char errs[800], detail[1024];
		if (buf)
			log_lines(LOG_ERR, buf, errs, sizeof(errs));
		else
			cut_to(errs, sizeof(errs), "see the log");
		proxy_log_err("policy reload failed: keeping the running policy (sha256 %.16s...)", bms_policy_hash(g->policy));
		cut_to(detail, sizeof(detail), "policy %s: %s; the running policy stays", g->cfg.policies[0], errs);
		audit_reload_failed(g, detail, bms_policy_hash(g->policy));
	} else {
		char prev[80], warn[700], detail[1024];
		if (buf)
			log_lines(LOG_WARNING, buf, NULL, 0);
		snprintf(prev, sizeof(prev), "%s", bms_policy_hash(g->policy));
		/* The guard's devices against the new policy. Not a reason to keep the old one: a
		 * site that took a device out of the policy to stop all access to it must get that. */
		warn[0] = '\0';
		free(buf);
		buf = NULL;
		m = open_memstream(&buf, &len);
		if (m) {
			unsigned nbad = proxy_preflight_devices(&g->cfg, p, m);
			fclose(m);
			if (nbad && buf)
				log_lines(LOG_WARNING, buf, warn, sizeof(warn));
		}
		/* decisions copy what they need into the audit record at once: nothing borrows the old one now */
		bms_policy_free(g->policy);
		g->policy = p;
		cut_to(detail, sizeof(detail), "%s%s%s", g->cfg.policies[0], warn[0] ? " (warning: " : "",
			 warn[0] ? warn : "");
		if (warn[0] && strlen(detail) < sizeof(detail) - 1)
			strcat(detail, ")");
		struct audit_event ev = {
			.kind = AUDIT_POLICY_LOADED,
			.detail = detail,
			.hash = bms_policy_hash(p),
			.prev_hash = prev,
		};
		audit_event(g, &ev);
		proxy_log_info("policy reloaded (%zu rules, sha256 %.16s...%s)", bms_policy_rule_count(p), bms_policy_hash(p),
			       strcmp(prev, bms_policy_hash(p)) == 0 ? ", unchanged" : "");
	}
	free(buf);
	bool has_tls = false;
	for (unsigned i = 0; i < g->cfg.nlisteners; i++)
		if (g->cfg.listeners[i].kind == PROXY_LISTEN_TLS)
			has_tls = true;
	if (has_tls)
		reload_tls(g, "certificate, key, CA and CRL");
}

static void on_crl_change(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *curr)
{
	struct guard *g = h->data;
	(void)prev;
	(void)curr;
	if (status < 0) {
		char why[300], detail[700];
		cut_to(why, sizeof(why), "%s: %s", g->cfg.crl, uv_strerror(status));
		proxy_log_err("CRL %s cannot be read: %s", g->cfg.crl, uv_strerror(status));
		crl_reload_failed(g, why);
		cut_to(detail, sizeof(detail), "CRL (file changed): %s; keeping the previous one%s%s", why,
			 g->crl_stale ? "; the CRL in force is stale: " : "", g->crl_stale ? stale_policy_words(g) : "");
		audit_reload_failed(g, detail, NULL);
		return;
	}
	reload_tls(g, "CRL (file changed)");
}

/* ---- shutdown ---- */

static void close_if(uv_handle_t *h)
{
	if (h->loop && !uv_is_closing(h))
		uv_close(h, proxy_closed_noop);
}

/* Every session is gone after a drain: the guard's own handles close, and the loop ends. */
static void uvio_stop(struct guard *g)
{
	upstream_close_all(g);
	close_if((uv_handle_t *)&g->sig_hup);
	close_if((uv_handle_t *)&g->sig_term);
	close_if((uv_handle_t *)&g->sig_int);
	close_if((uv_handle_t *)&g->drain_timer);
	if (g->crl_polling)
		close_if((uv_handle_t *)&g->crl_poll);
	if (g->crl_expiry_init)
		close_if((uv_handle_t *)&g->crl_expiry);
	close_if((uv_handle_t *)&g->audit_poll);
	close_if((uv_handle_t *)&g->audit_flush_idle);
}

static void guard_maybe_finish(struct guard *g)
{
	if (!g->draining || g->stopped || g->nsessions > 0)
		return;
	g->stopped = true;
	g->io->stop(g);
}

void guard_drain_deadline(struct guard *g)
{
	static const char why[] = "guard shutting down (drain deadline)";
	proxy_log_warn("drain deadline reached: closing %u connections with requests in flight", g->nsessions);
	while (!proxy_list_empty(&g->sessions)) {
		struct gsession *s = proxy_container_of(g->sessions.next, struct gsession, link);
		snprintf(s->finish_why, sizeof(s->finish_why), "%s", why);
		/* a request at the device is cut: its client gets 0B and the record says so; the
		 * device's answer, if it comes, is not waited for */
		for (unsigned i = 0; s->reqs && i < s->nreqs && s->state != GS_CLOSING; i++) {
			struct greq *r = &s->reqs[i];
			if (r->state != GREQ_SENT)
				continue;
			g->io->cancel(r, false);
			request_finish(r, NULL, 0, AUDIT_RESULT_TIMEOUT, ENGINE_EXC_TARGET_NO_RESPONSE,
				       "drain deadline: the device had not answered when the guard stopped");
		}
		/* the rest were never forwarded: recorded so by the close */
		session_close(s, why, END_QUIET);
	}
	guard_maybe_finish(g);
}

static void on_drain_deadline(uv_timer_t *t)
{
	guard_drain_deadline(t->data);
}

static void uvio_drain_timer(struct guard *g, uint64_t ms)
{
	uv_timer_start(&g->drain_timer, on_drain_deadline, ms, 0);
}

void guard_drain(struct guard *g, const char *why)
{
	if (g->draining)
		return;
	g->draining = true;
	proxy_log_info("%s: draining %u connections", why, g->nsessions);
	for (unsigned i = 0; i < g->nlisteners; i++)
		close_if((uv_handle_t *)&g->listeners[i]);
	struct proxy_list *e = g->sessions.next;
	while (e != &g->sessions) {
		struct gsession *s = proxy_container_of(e, struct gsession, link);
		e = e->next; /* session_finish may close (and unlink) s */
		s->frame_since_ms = 0;
		session_finish(s, "guard shutting down", END_QUIET);
	}
	g->io->drain_timer(g, g->cfg.limits.drain_timeout_ms);
	guard_maybe_finish(g);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct guard *g = h->data;
	if (signum == SIGHUP) {
		proxy_log_info("SIGHUP: reloading policy and certificates");
		reload(g);
		return;
	}
	guard_drain(g, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start-up ---- */


int proxy_guard_check(const struct proxy_config *cfg, FILE *out)
{
	int rc = 0;
	struct bms_policy *p = NULL;
	if (load_policy(cfg, &p, false, out) < 0)
		rc = -1;
	for (unsigned i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].kind == PROXY_LISTEN_TLS) {
			SSL_CTX *ctx = NULL;
			char why[512];
			if (proxy_tls_ctx_new(cfg, true, &ctx, why, sizeof(why)) < 0) {
				fprintf(out, "%s: %s\n", cfg->path, why);
				rc = -1;
			}
			SSL_CTX_free(ctx);
			break;
		}
	/* what the guard would trip over after start-up: the same checks proxy_guard_run makes */
	if (proxy_preflight(cfg, p, out) < 0)
		rc = -1;
	bms_policy_free(p);
	return rc;
}

static int open_audit(struct guard *g)
{
	struct audit_config ac;
	proxy_config_audit(&g->cfg, &ac);
	int rc = audit_open(&ac, &g->audit);
	if (rc < 0) {
		proxy_log_err("audit log %s: %s", g->cfg.audit.file, strerror(-rc));
		return -1;
	}
	return 0;
}

/* Set-up: policy, TLS, checks, audit log, listeners, devices, signals; everything bound and
 * loaded on `loop`. On failure every handle it opened is closed again (the loop is run until
 * they are) and nothing is left to tear down. */
int guard_setup(const struct proxy_config *cfg, uv_loop_t *loop, struct guard **out)
{
	struct guard *g = calloc(1, sizeof(*g));
	char why[512];
	*out = NULL;
	if (!g)
		return -ENOMEM;
	memcpy(&g->cfg, cfg, sizeof(*cfg));
	proxy_config_routes(&g->cfg, &g->routes);
	g->io = &uv_io;
	g->loop = loop;
	g->loop->data = g;
	proxy_list_init(&g->sessions);
	proxy_list_init(&g->audit_wait);

	if (load_policy(&g->cfg, &g->policy, true, NULL) < 0) {
		proxy_log_err("policy: cannot start without a valid policy");
		goto out;
	}
	g->pstate = bms_policy_state_new(0);
	if (!g->pstate)
		goto out;
	bool has_tls = false;
	for (unsigned i = 0; i < g->cfg.nlisteners; i++)
		if (g->cfg.listeners[i].kind == PROXY_LISTEN_TLS)
			has_tls = true;
	if (has_tls && proxy_tls_ctx_new(&g->cfg, true, &g->tls_ctx, why, sizeof(why)) < 0) {
		proxy_log_err("%s", why);
		goto out;
	}
	if (has_tls && !g->cfg.crl[0])
		proxy_log_warn("no 'crl' configured: revoked certificates are not refused");
	{
		/* what `guard -n` checks, again: a guard that would fail after the privilege drop
		 * (or forward to a device the policy does not know) does not start */
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		int bad = m ? proxy_preflight(&g->cfg, g->policy, m) : -1;
		if (m)
			fclose(m);
		if (buf)
			log_lines(LOG_ERR, buf, NULL, 0);
		free(buf);
		if (bad < 0) {
			proxy_log_err("cannot start: fix the configuration above (bmsgate guard -n -c %s)", g->cfg.path);
			goto out;
		}
	}
	if (open_audit(g) < 0)
		goto out;

	for (unsigned i = 0; i < g->cfg.nlisteners; i++) {
		uv_tcp_t *t = &g->listeners[i];
		const struct proxy_listener *l = &g->cfg.listeners[i];
		uv_tcp_init(g->loop, t);
		t->data = (void *)(uintptr_t)l;
		g->nlisteners++;
		int e = uv_tcp_bind(t, (const struct sockaddr *)&l->addr.ss, 0);
		if (e == 0)
			e = uv_listen((uv_stream_t *)t, 511, on_connection);
		if (e < 0) {
			proxy_log_err("listen %s: %s", l->addr.text, uv_strerror(e));
			goto out_loop;
		}
	}
	if (upstream_init(g) < 0)
		goto out_loop;
	if (proxy_drop_privileges(g->cfg.user) < 0)
		goto out_loop;

	uv_signal_init(g->loop, &g->sig_hup);
	uv_signal_init(g->loop, &g->sig_term);
	uv_signal_init(g->loop, &g->sig_int);
	g->sig_hup.data = g->sig_term.data = g->sig_int.data = g;
	uv_signal_start(&g->sig_hup, on_signal, SIGHUP);
	uv_signal_start(&g->sig_term, on_signal, SIGTERM);
	uv_signal_start(&g->sig_int, on_signal, SIGINT);
	uv_timer_init(g->loop, &g->drain_timer);
	g->drain_timer.data = g;
	uv_poll_init(g->loop, &g->audit_poll, audit_completion_fd(g->audit));
	g->audit_poll.data = g;
	uv_poll_start(&g->audit_poll, UV_READABLE, on_audit_ready);
	uv_idle_init(g->loop, &g->audit_flush_idle);
	g->audit_flush_idle.data = g;
	if (has_tls && g->cfg.crl[0]) {
		uv_fs_poll_init(g->loop, &g->crl_poll);
		g->crl_poll.data = g;
		uv_fs_poll_start(&g->crl_poll, on_crl_change, g->cfg.crl, g->cfg.crl_poll_ms);
		g->crl_polling = true;
		uv_timer_init(g->loop, &g->crl_expiry);
		g->crl_expiry.data = g;
		g->crl_expiry_init = true;
	}
	{
		char detail[256];
		size_t off = (size_t)snprintf(detail, sizeof(detail), "bmsgate %s guard listening on", BMS_VERSION);
		for (unsigned i = 0; i < g->cfg.nlisteners && off < sizeof(detail); i++)
			off += (size_t)snprintf(detail + off, sizeof(detail) - off, " %s %s",
						g->cfg.listeners[i].kind == PROXY_LISTEN_TLS ? "tls" : "plain",
						g->cfg.listeners[i].addr.text);
		audit_simple(g, AUDIT_START, NULL, detail);
		struct audit_event ev = { .kind = AUDIT_POLICY_LOADED, .detail = g->cfg.policies[0],
					  .hash = bms_policy_hash(g->policy) };
		audit_event(g, &ev);
		proxy_log_info("%s", detail + strlen("bmsgate ") + strlen(BMS_VERSION) + 1);
	}
	if (has_tls && g->cfg.crl[0])
		crl_loaded(g);
	*out = g;
	return 0;
out_loop:
	g->draining = true;
	for (unsigned i = 0; i < g->nlisteners; i++)
		close_if((uv_handle_t *)&g->listeners[i]);
	g->stopped = false;
	guard_maybe_finish(g);
	uv_run(g->loop, UV_RUN_DEFAULT);
out:
	if (guard_teardown(g) < 0)
		proxy_log_err("the audit log opened for this start did not close cleanly");
	return -1;
}

/* Runs until a drain has closed every session and handle. */
void guard_run(struct guard *g)
{
	uv_run(g->loop, UV_RUN_DEFAULT);
	audit_simple(g, AUDIT_STOP, NULL, "stopped");
}

/* After the loop ran out: the audit log closed (its error is the exit status), memory freed.
 * The loop itself is the caller's. */
int guard_teardown(struct guard *g)
{
	int rc = 0;
	if (g->audit) {
		int e = audit_close(g->audit);
		if (e < 0) {
			proxy_log_err("audit log: closing: %s", strerror(-e));
			rc = -1;
		}
	}
	upstream_free(g);
	SSL_CTX_free(g->tls_ctx);
	bms_policy_free(g->policy);
	bms_policy_state_free(g->pstate);
	if (g->loop && g->loop->data == g)
		g->loop->data = NULL;
	free(g);
	return rc;
}

int proxy_guard_run(const struct proxy_config *cfg)
{
	struct guard *g;
	/* A file-size limit (ulimit -f) must be a write error (EFBIG), not a silent death
	 * by SIGXFSZ. The audit writer thread blocks it for the log itself; this covers
	 * the guard's own writes, such as diagnostics on a stderr redirected to a file. */
	signal(SIGXFSZ, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	if (guard_setup(cfg, loop, &g) < 0) {
		uv_loop_close(loop);
		return 1;
	}
	/* readiness line for scripts and supervisors: everything is bound and loaded */
	proxy_log_info("ready");
	guard_run(g);
	uv_loop_close(loop);
	return guard_teardown(g) < 0 ? 1 : 0;
}
