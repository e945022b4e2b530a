/* fuzz/fuzz_session.c: one guard session's state machine (guard.c's session core, the code
 * the command runs) driven without sockets by arbitrary events: peer bytes, half-close,
 * reset, write errors (at once and queued), output that backs up and drains, time passing
 * (timer expiries), device answers (ok, exception, timeout, down, a late answer for a
 * request whose client left), audit records becoming durable or the log failing, drain and
 * the drain deadline. The libuv driver is replaced by a model of peer, kernel, device and
 * audit trail (struct guard_io); the core is not.
 *
 * After the events the model winds the session down as the world would (answers time out,
 * records become durable, the guard drains and its deadline passes) and checks:
 *   - the session ended through the one close path, once (release called once, in state
 *     closing; one conn_closed record if it was accepted, none otherwise);
 *   - every decision recorded `pending` got exactly one result record, and no result names
 *     a decision that was not made;
 *   - nothing is left at the device, in the audit wait list, or counted as a session;
 *   - while it lived, no byte reached the core while it was not reading, and only the
 *     moves of guard.c's state table happened (session_set aborts on any other).
 * Input: byte 0 picks the configuration; then events, one opcode byte and its operands. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "load/policy_files.h"
#include "proxy/guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy_text[] = "device ahu modbus 127.0.0.1 port 5020 unit 1 {\n"
				  "  point sp holding 100 scale 0.1 unit degC range 15..30\n"
				  "  point fan coil 10\n"
				  "}\n"
				  "device vav modbus 127.0.0.1 port 5021 unit 2\n"
				  "role bms {\n"
				  "  address 127.0.0.1\n"
				  "}\n"
				  "allow bms read ahu\n"
				  "allow bms write ahu.sp\n"
				  "allow bms read vav\n";

/* small limits, so that blocking, frame timeouts and the idle timeout are reached */
#define CONF_COMMON                                                                                                   \
	"listen plain 127.0.0.1:5502 allow 127.0.0.0/8\n"                                                          \
	"policy site.policy\n"                                                                                      \
	"device ahu {\n address 127.0.0.1:5020\n units 1\n}\n"                                                      \
	"device vav {\n address 127.0.0.1:5021\n units 2\n}\n"
static const char *const conf_text[] = {
	CONF_COMMON "audit {\n file a.jsonl\n key a.key\n results all\n}\n"
		    "limits {\n requests-in-flight 3\n buffer-size 1024\n frame-timeout 2s\n idle-timeout 30s\n}\n",
	CONF_COMMON "audit {\n file a.jsonl\n key a.key\n results all\n fail open\n}\n"
		    "malformed exception\n"
		    "limits {\n requests-in-flight 1\n frame-size 64\n handshake-timeout 1s\n}\n",
};
#define NCONF (sizeof(conf_text) / sizeof(conf_text[0]))

static struct bms_policy *policy;
static struct proxy_config cfgs[NCONF];

#define MAX_TICKETS 4096
#define MAX_DEV 64
#define KBUF 2048

/* the world around one session */
static struct {
	struct guard g;
	struct gsession *s;
	uint64_t now;
	bool reading, timer_armed, eof_sent, eof_pending, gone, queue_writes;
	int fail_next_write;
	uint64_t timer_at;
	unsigned released, stopped;
	/* the peer's bytes the kernel holds while the session does not read */
	size_t klen;
	uint8_t kbuf[KBUF];
	/* audit trail */
	uint64_t next_ticket, durable;
	int failing, fail_next_record;
	uint64_t ntickets;
	uint8_t results[MAX_TICKETS]; /* per ticket: results recorded */
	unsigned accepted, closed, refused;
	/* device: requests at it, and those whose client left (`owe`: a result is owed) */
	struct greq *at[MAX_DEV];
	unsigned nat;
	struct {
		uint64_t ticket, start_us;
	} orphan[MAX_DEV];
	unsigned norphans;
} w;

static uint64_t m_now_ms(struct guard *g)
{
	(void)g;
	return w.now;
}

static int m_write(struct gsession *s, const uint8_t *buf, size_t len)
{
	(void)buf;
	if (w.gone || w.fail_next_write) {
		w.fail_next_write = 0;
		return UV_ECONNRESET;
	}
	if (w.queue_writes)
		s->out.queued += len; /* the kernel took none: queued until a drain event */
	return 0;
}

static int m_read(struct gsession *s, bool on)
{
	(void)s;
	w.reading = on;
	return 0;
}

static void m_timer(struct gsession *s, uint64_t ms, bool sooner_only)
{
	(void)s;
	if (sooner_only && w.timer_armed && w.timer_at <= w.now + ms)
		return;
	w.timer_armed = true;
	w.timer_at = w.now + ms;
}

static int m_watch(struct gsession *s, char *why, size_t len)
{
	(void)s;
	if (!w.gone)
		return 0;
	snprintf(why, len, "peer gone while not being read: reset");
	return 1;
}

static void m_release(struct gsession *s)
{
	if (s != w.s || w.released++)
		abort(); /* the close path ran twice */
	w.reading = false;
	w.timer_armed = false;
}

static int m_record(struct guard *g, const struct audit_event *ev, bool batch, uint64_t *ticket)
{
	(void)g;
	*ticket = 0;
	if (batch) {
		if (ev->kind != AUDIT_DECISION)
			abort();
		if (w.fail_next_record || w.failing) {
			w.fail_next_record = 0;
			return -EIO;
		}
		if (w.next_ticket >= MAX_TICKETS)
			return -ENOSPC;
		*ticket = w.next_ticket++;
		w.ntickets = w.next_ticket;
		return 0;
	}
	switch (ev->kind) {
	case AUDIT_RESULT:
		/* a result joins a decision that was made, once */
		if (ev->ref >= w.next_ticket || w.results[ev->ref]++)
			abort();
		break;
	case AUDIT_CONN_ACCEPTED:
		w.accepted++;
		break;
	case AUDIT_CONN_CLOSED:
		w.closed++;
		break;
	case AUDIT_CONN_REFUSED:
		w.refused++;
		break;
	default:
		break;
	}
	return 0;
}

static uint64_t m_durable(struct guard *g, int *failing)
{
	(void)g;
	*failing = w.failing;
	return w.durable;
}

static bool m_fail_open(struct guard *g)
{
	return g->cfg.audit.fail_open;
}

static void m_submit(struct greq *r)
{
	if (w.nat >= MAX_DEV)
		abort(); /* more at the device than requests-in-flight allows */
	r->state = GREQ_SENT;
	w.at[w.nat++] = r;
}

static void at_remove(unsigned i)
{
	w.at[i] = w.at[--w.nat];
}

static void m_cancel(struct greq *r, bool owe)
{
	for (unsigned i = 0; i < w.nat; i++)
		if (w.at[i] == r) {
			at_remove(i);
			if (owe) {
				w.orphan[w.norphans].ticket = r->ticket;
				w.orphan[w.norphans].start_us = r->start_us;
				w.norphans++;
			}
			return;
		}
	abort(); /* cancelled what was never at the device */
}

static void m_stop(struct guard *g)
{
	(void)g;
	w.stopped++;
}

static void m_drain_timer(struct guard *g, uint64_t ms)
{
	(void)g;
	(void)ms;
}

static const struct guard_io model_io = {
	.now_ms = m_now_ms,
	.write = m_write,
	.read = m_read,
	.timer = m_timer,
	.watch = m_watch,
	.release = m_release,
	.record = m_record,
	.durable = m_durable,
	.fail_open = m_fail_open,
	.submit = m_submit,
	.cancel = m_cancel,
	.stop = m_stop,
	.drain_timer = m_drain_timer,
};

static void init(void)
{
	struct bms_diag d;
	bms_diag_init(&d);
	if (bms_policy_load_string("site.policy", policy_text, strlen(policy_text), &policy, &d) < 0) {
		bms_diag_print(&d, stderr);
		abort();
	}
	bms_diag_free(&d);
	for (unsigned i = 0; i < NCONF; i++)
		if (proxy_config_parse("fuzz.conf", conf_text[i], PROXY_GUARD, &cfgs[i], stderr) < 0)
			abort();
}

static bool closed(void)
{
	return w.s->state == GS_CLOSING;
}

/* What the kernel holds reaches a session that reads (libuv would deliver it now). */
static void deliver(void)
{
	while (!closed() && w.reading && (w.klen || w.eof_pending)) {
		if (w.klen == 0) {
			w.eof_pending = false;
			guard_session_eof(w.s);
			continue;
		}
		size_t cap = 0;
		uint8_t *room = guard_session_room(w.s, &cap);
		if (cap == 0)
			return; /* libuv: UV_ENOBUFS, nothing read */
		size_t n = w.klen < cap ? w.klen : cap;
		memcpy(room, w.kbuf, n);
		memmove(w.kbuf, w.kbuf + n, w.klen - n);
		w.klen -= n;
		guard_session_input(w.s, room, n);
	}
}

static void device_answer(unsigned pick, uint8_t how)
{
	if (w.nat == 0)
		return;
	struct greq *r = w.at[pick % w.nat];
	at_remove(pick % w.nat);
	switch (how % 5) {
	case 0: {
		uint8_t adu[MODBUS_MAX_ADU];
		memcpy(adu, r->adu, r->len);
		adu[0] = (uint8_t)(r->orig_tid >> 8);
		adu[1] = (uint8_t)r->orig_tid;
		guard_complete(r, adu, r->len, AUDIT_RESULT_OK, 0);
		break;
	}
	case 1: {
		uint8_t exc[9] = { (uint8_t)(r->orig_tid >> 8), (uint8_t)r->orig_tid, 0, 0, 0, 3, r->unit,
				   (uint8_t)(r->fc | 0x80), 2 };
		guard_complete(r, exc, sizeof(exc), AUDIT_RESULT_EXCEPTION, 2);
		break;
	}
	case 2:
		guard_complete(r, NULL, 0, AUDIT_RESULT_TIMEOUT, ENGINE_EXC_TARGET_NO_RESPONSE);
		break;
	case 3:
		guard_complete(r, NULL, 0, AUDIT_RESULT_DEVICE_DOWN, ENGINE_EXC_PATH_UNAVAILABLE);
		break;
	default:
		snprintf(r->answer_detail, sizeof(r->answer_detail), "fuzz: the answer did not fit");
		guard_complete(r, NULL, 0, AUDIT_RESULT_BAD_ANSWER, ENGINE_EXC_TARGET_NO_RESPONSE);
		break;
	}
}

/* upstream.c's part for a request whose client left: its outcome, when it comes, is recorded */
static void orphan_outcome(void)
{
	if (w.norphans == 0)
		return;
	w.norphans--;
	guard_record_result(&w.g, w.orphan[w.norphans].ticket, w.orphan[w.norphans].start_us, AUDIT_RESULT_TIMEOUT, 0,
			    "client gone");
}

static void advance(uint64_t ms)
{
	w.now += ms;
	if (!closed() && w.timer_armed && w.now >= w.timer_at) {
		w.timer_armed = false;
		guard_session_timer(w.s);
	}
}

static void event(uint8_t op, const uint8_t *arg, size_t argn)
{
	switch (op % 16) {
	case 0: case 1: case 2: case 3: /* peer bytes */
		if (w.eof_sent || w.gone)
			return;
		for (size_t i = 0; i < argn && w.klen < KBUF; i++)
			w.kbuf[w.klen++] = arg[i];
		break;
	case 4: /* half-close */
		if (!w.eof_sent && !w.gone)
			w.eof_sent = w.eof_pending = true;
		break;
	case 5: /* reset: a read sees it at once; a session not reading only through its watch */
		if (w.gone)
			return;
		w.gone = true;
		w.klen = 0;
		w.eof_pending = false;
		if (w.reading)
			guard_session_error(w.s, UV_ECONNRESET);
		break;
	case 6: /* the next write fails at once */
		w.fail_next_write = 1;
		break;
	case 7: /* the kernel stops or starts taking writes; a drain empties the queue */
		w.queue_writes = argn && (arg[0] & 1);
		if (!w.queue_writes && w.s->out.queued) {
			w.s->out.queued = 0;
			guard_session_drained(w.s);
		}
		break;
	case 8: /* a queued write fails */
		if (w.s->out.queued)
			guard_session_write_failed(w.s, UV_EPIPE);
		break;
	case 9: /* time passes */
		advance(argn ? (uint64_t)arg[0] * (argn > 1 ? arg[1] : 1) * 10u : 1);
		break;
	case 10: /* a device answers */
		device_answer(argn ? arg[0] : 0, argn > 1 ? arg[1] : 0);
		break;
	case 11: /* records up to here are durable */
		w.durable = w.next_ticket;
		guard_audit_ready(&w.g);
		break;
	case 12: /* the audit log fails, or the next record cannot be queued */
		if (argn && (arg[0] & 1))
			w.fail_next_record = 1;
		else {
			w.failing = EIO;
			guard_audit_ready(&w.g);
		}
		break;
	case 13:
		guard_drain(&w.g, "fuzz: drain");
		break;
	case 14:
		if (w.g.draining)
			guard_drain_deadline(&w.g);
		break;
	default:
		orphan_outcome();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!policy)
		init();
	if (size < 1)
		return 0;
	memset(&w, 0, sizeof(w));
	struct guard *g = &w.g;
	const struct proxy_config *cfg = &cfgs[data[0] % NCONF];
	memcpy(&g->cfg, cfg, sizeof(*cfg));
	g->io = &model_io;
	g->policy = policy;
	g->pstate = bms_policy_state_new(0);
	if (!g->pstate)
		abort();
	proxy_list_init(&g->sessions);
	proxy_list_init(&g->audit_wait);
	g->ndevices = g->cfg.ndevices;
	for (unsigned i = 0; i < g->ndevices; i++) {
		g->devices[i].conf = &g->cfg.devices[i];
		g->devices[i].g = g;
		proxy_list_init(&g->devices[i].queue);
	}
	w.now = 1000;
	struct gsession *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	w.s = s;
	s->g = g;
	struct sockaddr_in *a = (struct sockaddr_in *)(void *)&s->id.addr;
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(0x7f000001);
	a->sin_port = htons(40000);
	s->id.addr_len = sizeof(*a);
	guard_session_start(s, &g->cfg.listeners[0], NULL);

	size_t off = 1;
	while (off < size && !closed()) {
		uint8_t op = data[off++];
		size_t argn = off < size ? data[off++] % 32 : 0;
		if (argn > size - off)
			argn = size - off;
		event(op, data + off, argn);
		off += argn;
		if (!closed())
			deliver();
	}
	/* wind down as the world would: what was decided becomes durable or fails, answers
	 * come or time out, the guard drains and its deadline passes */
	for (unsigned round = 0; !closed() && round < 64; round++) {
		w.durable = w.next_ticket;
		guard_audit_ready(g);
		while (!closed() && w.nat)
			device_answer(0, round < 32 ? 0 : 2);
		if (round == 8)
			guard_drain(g, "fuzz: the end");
		if (round == 16)
			guard_drain_deadline(g);
		if (!closed())
			advance(1000);
		if (!closed())
			deliver();
	}
	while (w.norphans)
		orphan_outcome();

	/* the one close path, once */
	if (!closed() || w.released != 1 || g->nsessions != 0 || !proxy_list_empty(&g->sessions))
		abort();
	if (w.closed != (w.accepted ? 1u : 0u) || w.accepted > 1 || (w.refused && w.accepted))
		abort();
	/* every decision resolved, once */
	for (uint64_t t = 0; t < w.ntickets; t++)
		if (w.results[t] != 1)
			abort();
	if (w.nat != 0 || !proxy_list_empty(&g->audit_wait) || s->inflight != 0)
		abort();
	for (unsigned i = 0; i < s->nreqs; i++)
		if (s->reqs[i].state != GREQ_FREE)
			abort();
	if (g->draining && w.stopped != 1)
		abort();
	guard_session_free(s);
	bms_policy_state_free(g->pstate);
	return 0;
}
