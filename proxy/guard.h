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
	bool tls_mode, handshaken, closing, blocked, accepted_audited;
	/* No more input is taken (peer half-closed, malformed frame, frame timeout, shutdown); the
	 * requests already decided complete, then the session closes with finish_why. */
	bool finishing;
	unsigned pending_closes;
	unsigned inflight;        /* requests taken but not answered */
	uint64_t start_ms;        /* accepted */
	uint64_t last_activity_ms;
	uint64_t frame_since_ms;  /* 0, or since when an unfinished frame (or TLS record) waits for its bytes */
	char finish_why[160];
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

struct guard {
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
