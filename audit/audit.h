/* audit/audit.h: the tamper-evident audit trail, writer side (the API the gateway calls).
 *
 * One record per decision and per lifecycle event, as one JSON object per line
 * (docs/audit-format.md names every field). Records are leaves of an RFC 6962
 * Merkle tree; the writer signs checkpoints (tree size, root, time) with
 * Ed25519 and writes them into the log as their own line type.
 *
 * Threads: one writer owns the file: the writer thread, or for a moment the
 * caller of audit_flush() while that thread sleeps. audit_submit() formats the record
 * in the caller's thread (it copies everything it needs: the frame and the
 * policy may change as soon as it returns), queues it and returns at once. It
 * never waits for I/O; when the queue is full it returns -EAGAIN.
 *
 * How the gateway uses it (libuv-free: the gateway polls one fd):
 *
 *     uint64_t t;
 *     if (audit_submit(log, &ev, &t) < 0)          -> refuse (or forward if fail = open)
 *     ... keep the request pending with ticket t ...
 *     on audit_completion_fd() readable: audit_drain_completion_fd(log);
 *         int failing; uint64_t d = audit_durable(log, &failing);
 *         each pending request with t < d          -> forward it
 *         if failing && !audit_fail_open(log)      -> refuse every pending request
 *         if failing && audit_fail_open(log)       -> forward every pending request
 *
 * An event loop that waits for its records saves the hand-off to the writer
 * thread (two context switches a batch) with audit_queue() for the records of
 * one loop iteration and one audit_flush() at its end: with an interval and
 * the writer thread asleep, audit_flush() appends them itself, in the same
 * order and by the same steps, and they are durable when it returns 1.
 *
 * "Durable" means: with sync_always, written and fdatasync'ed (the writer
 * batches: many pending records share one fdatasync); with an interval,
 * written to the file (it survives a crash of the process; a power loss can
 * cost up to sync_interval_ms).
 *
 * Tickets are record sequence numbers: the seq field of the record, which is
 * also the record's leaf index in the Merkle tree. They increase by one per
 * accepted submission and continue across restarts and rotation.
 *
 * Device results arrive after the decision was written: submit an
 * AUDIT_RESULT event with ref = the decision's ticket. `audit query` joins it.
 */
#ifndef BMS_AUDIT_H
#define BMS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"
#include "parsers/request.h"
#include "policies/decision.h"
#include "policies/identity.h"

enum audit_kind {
	AUDIT_DECISION = 1,   /* peer, req, decision, device: allow / deny / monitor-deny */
	AUDIT_MALFORMED,      /* peer, req (raw fields as far as decoded; anomalies), detail */
	AUDIT_RESULT,         /* ref = the decision's ticket, result, exception, latency_us */
	AUDIT_START,          /* detail: version / listeners (free text) */
	AUDIT_STOP,           /* detail: why */
	AUDIT_POLICY_LOADED,  /* detail: policy path; hash: SHA-256 hex of the policy text */
	AUDIT_CERTS_RELOADED, /* detail: what was reloaded (certificate, CA, CRL) */
	AUDIT_CONN_ACCEPTED,  /* peer; proto */
	AUDIT_CONN_REFUSED,   /* peer (address; subject if known); detail: the TLS reason */
	AUDIT_CONN_CLOSED,    /* peer; detail: why (peer closed, idle, error) */
	/* Written by the log itself; callers do not submit these. */
	AUDIT_LOG_RECOVERED,  /* on open: a torn last line was cut (detail says how many bytes) */
	AUDIT_LOG_DROPPED,    /* submissions refused (-EAGAIN) since the last record of this kind */
	/* Submitted by callers again. */
	AUDIT_RELOAD_FAILED,  /* detail: what could not be re-read and why, what stays in force;
			       * hash: the policy still in force (policy reloads) */
	AUDIT_KIND_COUNT
};

/* The device's answer, or why there is none. */
enum audit_result {
	AUDIT_RESULT_NONE = 0,       /* not applicable (lifecycle events) */
	AUDIT_RESULT_PENDING,        /* forwarded; an AUDIT_RESULT record follows */
	AUDIT_RESULT_OK,
	AUDIT_RESULT_EXCEPTION,      /* Modbus exception / BACnet Error, Reject, Abort: `exception` holds the code */
	AUDIT_RESULT_TIMEOUT,
	AUDIT_RESULT_DEVICE_DOWN,    /* could not reach the device */
	AUDIT_RESULT_NOT_FORWARDED,  /* denied or malformed: never reached the device */
	AUDIT_RESULT_BAD_ANSWER,     /* the device answered, but not with an answer to the request:
				      * `anomalies` and `detail` say what was wrong */
	AUDIT_RESULT_COUNT
};

/* One event. Every pointer is borrowed and read only during audit_submit(). */
struct audit_event {
	uint8_t kind;                         /* enum audit_kind */
	int64_t time_us;                      /* microseconds since the epoch (UTC); 0 = now */
	const struct bms_identity *peer;      /* may be NULL */
	const struct bms_request *req;        /* may be NULL; target data is copied as values */
	const struct bms_decision *decision;  /* may be NULL (AUDIT_DECISION without one records deny) */
	const char *device;                   /* device name from the policy; may be NULL */
	const char *detail;                   /* see enum audit_kind; may be NULL */
	const char *hash;                     /* AUDIT_POLICY_LOADED: hex digest; may be NULL */
	const char *prev_hash;                /* AUDIT_POLICY_LOADED on reload: the digest it replaced; may be NULL */
	uint64_t ref;                         /* AUDIT_RESULT: ticket of the decision it completes */
	uint8_t result;                       /* enum audit_result */
	uint32_t exception;                   /* AUDIT_RESULT_EXCEPTION: the code */
	uint64_t latency_us;                  /* decision: time to decide; result: request to answer */
	uint64_t anomalies;                   /* AUDIT_RESULT: anomaly bits of `proto` found in the device's
					       * answer (AUDIT_RESULT_BAD_ANSWER); 0 = none */
	uint8_t proto;                        /* enum bms_proto, for events without a req (conn_*) */
};

struct audit_config {
	const char *path;                   /* the active log file; rotated files are PATH.<first seq, 12 digits> */
	const char *node;                   /* node name written in every record and checkpoint */
	const char *key_path;               /* Ed25519 private key (PEM, `bmsgate audit keygen`) */
	const char *checkpoint_copy_path;   /* NULL, or a second file that gets every checkpoint line */
	int sync_always;                    /* 1: fdatasync before a ticket completes */
	unsigned sync_interval_ms;          /* when !sync_always: fdatasync at most this often (0 = 10) */
	unsigned checkpoint_every_records;  /* 0 = 1000 */
	unsigned checkpoint_every_seconds;  /* 0 = 10 */
	uint64_t rotate_bytes;              /* 0 = never by size */
	unsigned rotate_seconds;            /* 0 = never by age */
	int fail_open;                      /* 1: `fail = open`; the default 0 fails closed */
	size_t queue_limit;                 /* records queued, not yet written; 0 = 65536. The queue's memory,
					     * about 80 bytes a record plus a ring of 2 KB a record (8 KB..8 MB)
					     * for their lines, is allocated and touched by audit_open */
	unsigned inline_slow_us;            /* an audit_flush() write this slow (us) leaves writing to the
					     * writer thread for 10 s; 0 = 5000 */
};

struct audit_log;

/* Opens (or creates) the log, recovers it after a crash (cuts a torn last line
 * and records that it did), rebuilds the tree state from the file, loads the
 * key and starts the writer thread. Errors: -errno, or -EINVAL for an
 * inconsistent log (see stderr for where). */
BMS_WUR int audit_open(const struct audit_config *cfg, struct audit_log **out);

/* Formats and queues one record; *ticket = its seq. Never blocks on I/O.
 * -EAGAIN: queue full (counted; an AUDIT_LOG_DROPPED record says how many).
 * -EINVAL: bad event. -ESHUTDOWN: the log is closing. */
BMS_WUR int audit_submit(struct audit_log *log, const struct audit_event *ev, uint64_t *ticket);

/* As audit_submit(), but does not wake the writer thread: the caller must call
 * audit_flush() before it waits for the ticket (an event loop: at the end of
 * the iteration that queued it). */
BMS_WUR int audit_queue(struct audit_log *log, const struct audit_event *ev, uint64_t *ticket);

/* Has what is queued written. With an interval (not sync_always), the writer
 * thread asleep, nothing else due (checkpoint, rotation, retry) and SIGXFSZ
 * ignored, the caller's thread appends it with one writev and returns 1: the
 * records are durable (audit_durable() says so; the completion fd does not).
 * Otherwise it wakes the writer thread and returns 0 (the completion fd will
 * tell). A failed write returns -errno: the log is failing, as when the writer
 * thread fails, and the writer thread retries. Writes never fdatasync here. */
int audit_flush(struct audit_log *log);

/* An eventfd, readable when audit_durable() advanced or the failing state
 * changed. Non-blocking; owned by the log (do not close it). */
int audit_completion_fd(struct audit_log *log);
/* Clears the completion fd's readiness. */
void audit_drain_completion_fd(struct audit_log *log);

/* Every ticket below the returned value is durable. *failing (may be NULL) is
 * the positive errno of the current write failure (ENOSPC, EACCES...), 0 when
 * the log is healthy. Monotonic; cheap (a mutex). */
uint64_t audit_durable(struct audit_log *log, int *failing);
int audit_fail_open(const struct audit_log *log);

/* Waits (blocking) until ticket is durable or the log fails: 0, or -errno of
 * the failure. For tools and tests, not for an event loop. */
BMS_WUR int audit_wait(struct audit_log *log, uint64_t ticket);

/* Writes what is queued, a final signed checkpoint, syncs, stops the writer,
 * frees everything. Returns the first write error, if any. log may be NULL. */
BMS_WUR int audit_close(struct audit_log *log);

/* Loads the Ed25519 signing key as audit_open() would (mode 0600 or stricter, PEM, Ed25519)
 * and frees it: for configuration checks. 0, or -errno with why in err. */
BMS_WUR int audit_key_check(const char *path, char *err, size_t errlen);

/* Names used in records: "decision", "malformed"...; "ok", "exception"... */
const char *audit_kind_name(enum audit_kind k);
const char *audit_result_name(enum audit_result r);

#endif
