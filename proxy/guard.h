/* proxy/guard.h: the guard's run-time objects, shared by guard.c (listeners, client
 * sessions, reload, shutdown) and upstream.c (the per-device connection pool). */
#ifndef BMS_PROXY_GUARD_H
#define BMS_PROXY_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <uv.h>

#include "audit/audit.h"
#include "policies/identity.h"
#include "policies/policy.h"
#include "proxy/config.h"
#include "engine/inspect.h"
#include "proxy/stream.h"
#include "proxy/tls.h"
#include "proxy/txmap.h"

#define GUARD_IN_CAP 512 /* plaintext bytes buffered per client: two largest ADUs */
/* Requests for one device connection gathered in one loop iteration and written with one
 * write() (upstream.c): four of the largest ADUs; a fuller buffer is written at once. */
#define UPCONN_PEND_CAP (4 * MODBUS_MAX_ADU)

struct guard;
struct gsession;
struct gdevice;

enum greq_state {
	GREQ_FREE = 0,
	GREQ_AUDIT_WAIT, /* decided; waiting until its audit record is durable */
	GREQ_QUEUED,     /* waiting for a free slot on a device connection */
	GREQ_SENT,       /* on a device connection, waiting for the answer */
};

/* One forwarded request. Slots belong to their session (a fixed array). */
struct greq {
	struct gsession *s;       /* borrowed: the owning session */
	struct proxy_list link;   /* in guard->audit_wait or device->queue */
	uint8_t state;            /* enum greq_state */
	bool has_ticket;          /* its decision is in the audit trail (not so under fail = open and a failing log) */
	uint16_t orig_tid;
	uint8_t unit, fc;
	uint64_t ticket;          /* audit ticket of the decision */
	uint64_t start_us;
	struct gdevice *dev;      /* borrowed */
	struct proxy_tx *tx;      /* borrowed: the slot on the device connection while SENT */
	uint16_t len;
	uint8_t adu[MODBUS_MAX_ADU];  /* the request as forwarded (upstream.c checks the answer against it) */
	/* AUDIT_RESULT_BAD_ANSWER only: what was wrong with the device's answer, for its result record */
	uint64_t answer_anomalies;
	char answer_detail[96];
};

/* A session's life (guard.c holds the table of allowed moves and the one setter). */
enum gsession_state {
	GS_ACCEPTED = 0, /* the connection was taken; limits and source not yet checked */
	GS_HANDSHAKING,  /* TLS: waiting for a verified client certificate */
	GS_OPEN,         /* requests are read, decided and forwarded */
	GS_FINISHING,    /* no more input; the requests already decided complete, then it closes */
	GS_CLOSING,      /* the close path ran (once); the handles close, memory goes in the last callback */
	GS_NSTATES
};

struct gsession {
	uv_tcp_t tcp;             /* first: handles point back through data */
	uv_timer_t timer;         /* one-shot, at or before the earliest of: handshake, frame, watch, idle */
	struct guard *g;          /* borrowed */
	struct proxy_list link;   /* in guard->sessions */
	struct proxy_tls tls;     /* ssl NULL on a plain (legacy) listener */
	struct proxy_tls_verr verr;
	struct proxy_out out;
	struct bms_identity id;
	struct bms_policy_roles roles; /* id's policy roles, resolved once per policy (inspect refreshes) */
	uint8_t state;            /* enum gsession_state; written by session_set() only */
	bool is_tls;              /* from a TLS listener (fixed at accept) */
	bool blocked;             /* OPEN, but not read: requests_in_flight or buffer-size reached */
	bool ended_loud;          /* the diagnostic line of its end is written (at finish) */
	unsigned pending_closes;
	unsigned inflight;        /* requests taken but not answered */
	uint64_t start_ms;        /* accepted */
	uint64_t last_activity_ms;
	uint64_t frame_since_ms;  /* 0, or since when an unfinished frame (or TLS record) waits for its bytes */
	char finish_why[160];     /* FINISHING: the close's words once the last request completes */
	uint16_t in_len;
	uint8_t in[GUARD_IN_CAP];
	unsigned nreqs;
	struct greq *reqs;        /* owns: requests_in_flight slots, allocated after the handshake */
};

enum upconn_state {
	UP_DOWN = 0,
	UP_CONNECTING,
	UP_DELAY,   /* connected, waiting connect-delay before the first request */
	UP_READY,
	UP_CLOSING, /* uv_close issued; back to DOWN in the close callback */
};

struct upconn {
	uv_tcp_t tcp;
	uv_timer_t timer;         /* connect timeout, connect delay, response deadline */
	uv_connect_t creq;
	struct gdevice *dev;      /* borrowed */
	uint8_t state;            /* enum upconn_state */
	bool timer_ready;
	unsigned silent;          /* requests timed out in a row without any answer in between */
	struct proxy_out out;
	struct proxy_txmap map;
	struct proxy_list dirty;  /* in guard->dirty_conns while pend holds bytes */
	uint16_t pend_len;
	uint8_t pend[UPCONN_PEND_CAP]; /* requests sent this loop iteration, not yet written */
	size_t in_len;
	uint8_t in[GUARD_IN_CAP];
};

struct gdevice {
	const struct proxy_device *conf; /* borrowed from guard->cfg */
	struct guard *g;
	struct proxy_list queue;  /* greq waiting for a connection slot */
	unsigned nconns;
	struct upconn *conns;     /* owns */
	unsigned backoff_ms;
	uint64_t retry_at_ms;
	int last_error;           /* libuv error of the last failed connect */
};

/* How the session core acts on the world: the libuv driver in guard.c (the command, the
 * loop tests), or fuzz/fuzz_session.c's model of peer, device and audit trail. Every call
 * is one the core made before through libuv, OpenSSL's socket side, audit/ or upstream.c. */
struct guard_io {
	uint64_t (*now_ms)(struct guard *g);
	/* bytes for the peer's socket, without blocking: 0 or a negative libuv error */
	int (*write)(struct gsession *s, const uint8_t *buf, size_t len);
	int (*read)(struct gsession *s, bool on); /* start or stop reading the peer */
	/* the session's one timer to fire in `ms` (only when that is sooner, with sooner_only) */
	void (*timer)(struct gsession *s, uint64_t ms, bool sooner_only);
	/* a session not being read: 1 when its peer is gone (why says how), else 0 */
	int (*watch)(struct gsession *s, char *why, size_t len);
	/* the close path ran: release the handles; guard_session_free() once they are closed */
	void (*release)(struct gsession *s);
	/* an audit record; batch: a decision that waits for durability (audit_queue) */
	int (*record)(struct guard *g, const struct audit_event *ev, bool batch, uint64_t *ticket);
	uint64_t (*durable)(struct guard *g, int *failing);
	bool (*fail_open)(struct guard *g);
	void (*submit)(struct greq *r);                  /* upstream_submit */
	void (*cancel)(struct greq *r, bool owe_result); /* upstream_cancel */
	void (*stop)(struct guard *g);                   /* drained: the guard's own handles close */
	void (*drain_timer)(struct guard *g, uint64_t ms);
};

struct guard {
	const struct guard_io *io;      /* borrowed, static */
	uv_loop_t *loop;
	struct proxy_config cfg;
	struct engine_routes routes;    /* the inspect step's view of cfg's devices (proxy_config_routes) */
	const char *config_path;

	SSL_CTX *tls_ctx;               /* owns; sessions hold their own reference through SSL */
	struct bms_policy *policy;      /* owns */
	struct bms_policy_state *pstate; /* owns; survives reloads */
	struct audit_log *audit;        /* owns */

	unsigned nlisteners;
	uv_tcp_t listeners[PROXY_MAX_LISTENERS];
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_poll_t audit_poll;
	uv_idle_t audit_flush_idle;     /* before the loop next waits: audit_flush() what was queued */
	bool audit_unflushed;           /* records queued with audit_queue() since the last flush */
	uv_fs_poll_t crl_poll;
	uv_timer_t drain_timer;
	bool crl_polling;
	/* Revocation freshness (guard.c, reload_tls): the CRL file as last loaded, when the CRL
	 * in force expires, and whether it is stale (a re-read failed since the file changed, or
	 * its nextUpdate passed); `crl-stale refuse` then refuses new TLS sessions. */
	struct stat crl_loaded;
	bool crl_loaded_ok;
	int64_t crl_next_update;        /* seconds since the epoch; 0 = none */
	uv_timer_t crl_expiry;
	bool crl_expiry_init;
	bool crl_stale;
	char crl_stale_why[400];

	struct proxy_list sessions;
	unsigned nsessions;
	struct proxy_list audit_wait;   /* greq in ticket order */

	unsigned ndevices;
	struct gdevice devices[PROXY_MAX_DEVICES];
	uv_check_t flush_check;         /* writes dirty_conns once per loop iteration */
	struct proxy_list dirty_conns;  /* upconn with pending requests */

	bool draining, stopped;
	int exit_code;
};

/* guard.c, for upstream.c */
/* The request is done: send `adu` (the device's answer, own tid restored) to the client, or,
 * when adu is NULL, the exception `exception`; record the result; free the slot. */
void guard_complete(struct greq *r, const uint8_t *adu, size_t len, uint8_t result, uint8_t exception);
/* A result for a decision whose session is gone (peer unknown now; `ref` joins it to the decision). */
void guard_record_result(struct guard *g, uint64_t ticket, uint64_t start_us, uint8_t result, uint32_t exception,
			 const char *detail);
uint64_t guard_now_ms(struct guard *g);
uint64_t guard_now_us(void);

/* The session core, for its drivers (guard.c's libuv callbacks, fuzz/fuzz_session.c). */
/* A zeroed session with g, out and id.addr set, taken by a listener: limits, then
 * HANDSHAKING (TLS) or OPEN (plain); `failed` (the accept failed) closes it at once. */
void guard_session_start(struct gsession *s, const struct proxy_listener *l, const char *failed);
/* Where the next bytes from the peer go (plain: the frame buffer itself). */
uint8_t *guard_session_room(struct gsession *s, size_t *cap);
/* n bytes from the peer at buf (plain: where guard_session_room said). */
void guard_session_input(struct gsession *s, const uint8_t *buf, size_t n);
void guard_session_eof(struct gsession *s);             /* the peer half-closed */
void guard_session_error(struct gsession *s, int err);  /* a read failed (reset): libuv error */
void guard_session_timer(struct gsession *s);           /* its timer fired */
void guard_session_drained(struct gsession *s);         /* its output queue emptied */
void guard_session_write_failed(struct gsession *s, int status);
void guard_session_free(struct gsession *s);            /* after release: the memory */
bool guard_session_can(enum gsession_state from, enum gsession_state to);
const char *guard_session_state_name(enum gsession_state st);
void guard_audit_ready(struct guard *g);                /* records became durable (or the log fails) */
void guard_drain(struct guard *g, const char *why);     /* finish every session, then stop */
void guard_drain_deadline(struct guard *g);             /* close the sessions still finishing */

/* The guard's life, for proxy_guard_run and the loop tests (tests/unit/test_guard_loop.c):
 * set up on a given loop, run until drained (guard_drain, SIGTERM), tear down. */
BMS_WUR int guard_setup(const struct proxy_config *cfg, uv_loop_t *loop, struct guard **out);
void guard_run(struct guard *g);
BMS_WUR int guard_teardown(struct guard *g); /* 0, or -1 when the audit log failed to close */

/* upstream.c */
BMS_WUR int upstream_init(struct guard *g);
void upstream_submit(struct greq *r);    /* queue a request for its device and send when a slot frees */
/* The session is closing: forget the request. A request at the device keeps its slot until the
 * answer or the timeout; with owe_result its outcome is then recorded ("client gone"). */
void upstream_cancel(struct greq *r, bool owe_result);
void upstream_flush(struct guard *g);     /* send what this iteration released, now */
void upstream_close_all(struct guard *g);
void upstream_free(struct guard *g);
struct gdevice *upstream_device(struct guard *g, const struct proxy_device *conf);

#endif
