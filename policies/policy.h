/* policies/policy.h: compile policy files; decide one request for one identity.
 *
 * Life cycle, as the gateway uses it:
 *
 *   struct bms_diag diags; bms_diag_init(&diags);
 *   struct bms_policy *p;
 *   if (bms_policy_load(files, n, &p, &diags) < 0) { print diags; keep the old policy; }   -- load/policy_files.h
 *   else { swap p in (an atomic pointer store); free the old one when no decision borrows it; }
 *   struct bms_policy_state *st = bms_policy_state_new(0);   -- once per process, kept across reloads
 *   per request:
 *     dev = bms_policy_find_device(p, proto, upstream_addr, unit);   -- NULL: not declared
 *     bms_policy_decide(p, st, &identity, dev, &request, now_us, &decision);
 *
 * A compiled policy is immutable: any number of threads may read it. The
 * state is not locked: decisions that share one state must come from one
 * thread (the gateway's event loop) or be serialised by the caller.
 *
 * Rate-limit and minimum-interval state is keyed by stable names (the rule's
 * text, the device and point names), never by addresses into a compiled
 * policy, so a reloaded policy finds the counters its predecessor left.
 */
#ifndef BMS_POLICY_H
#define BMS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "parsers/cursor.h"
#include "parsers/request.h"
#include "policies/decision.h"
#include "base/diag.h"
#include "policies/identity.h"

/* ---- diagnostics: every error and warning of one compile (base/diag.h) ---- */

/* ---- compile ---- */

struct bms_policy;          /* immutable compiled policy (opaque) */
struct bms_policy_device;   /* a device declared in the policy; borrowed from its policy */
struct bms_policy_state;    /* rate-limit and min-interval state; survives reload */

/* Where policy text and time-zone data come from. The compiler is pure: it
 * opens no file, resolves no path and reads no zoneinfo; a source does that
 * (load/policy_files.c reads the file system, the fuzzers serve memory). */
#define BMS_POLICY_KEY_MAX 4096
#define BMS_POLICY_FILE_MAX (4u << 20)   /* bytes of one policy file */
#define BMS_POLICY_ZONE_MAX (256u * 1024) /* bytes of TZif data read for one zone */
struct bms_policy_text {
	char name[BMS_DIAG_FILE_MAX];  /* as diagnostics name it (and as hashed) */
	char key[BMS_POLICY_KEY_MAX];  /* one file under any name (a resolved path): include loops */
	const char *text;              /* borrowed from the source until release() */
	size_t len;
	void *handle;                  /* the source's own */
};
enum bms_policy_source_result {
	BMS_POLICY_SOURCE_OK = 0,
	BMS_POLICY_SOURCE_MISSING = -1, /* `err` is about the reference: shown where it was written */
	BMS_POLICY_SOURCE_REFUSED = -2, /* `err` is about the file itself (out->name is set) */
	BMS_POLICY_SOURCE_NOMEM = -3,
};
struct bms_policy_source {
	void *ctx;
	/* One policy file: `from` is the including file (as named in diagnostics), NULL for
	 * a file given to the compiler. Returns enum bms_policy_source_result. */
	int (*read)(void *ctx, const char *from, const char *name, struct bms_policy_text *out, char *err,
		    size_t errlen);
	/* The TZif data of a zone name already checked to be a plain name; out->name names
	 * it in messages. Returns enum bms_policy_source_result. */
	int (*zone)(void *ctx, const char *zone, struct bms_policy_text *out, char *err, size_t errlen);
	void (*release)(void *ctx, struct bms_policy_text *t);
};

/* Compiles the named files (in order; each may `include` more) from `src` into one policy.
 * 0: *out is a new policy (free with bms_policy_free); diags may hold warnings.
 * <0: *out is NULL and diags holds every error found (-EINVAL), or -ENOMEM. */
BMS_WUR int bms_policy_compile(const struct bms_policy_source *src, const char *const *names, size_t nnames,
			       struct bms_policy **out, struct bms_diag *diags);

void bms_policy_free(struct bms_policy *p);

/* SHA-256 of the source files as read (each file's path and bytes, in load
 * order, includes where they were included), 64 lowercase hex digits. For
 * the audit record "policy loaded". */
const char *bms_policy_hash(const struct bms_policy *p);
const char *bms_policy_site(const struct bms_policy *p);      /* `site "..."`, or "" */
const char *bms_policy_timezone(const struct bms_policy *p);  /* `timezone ...`, or "UTC" */
size_t bms_policy_rule_count(const struct bms_policy *p);

/* ---- devices ---- */

#define BMS_POLICY_ANY_UNIT UINT32_MAX

/* Which declared device is at this upstream address? Modbus: address, port
 * (502 when the policy gives none) and `unit` must all match a declaration.
 * BACnet: address and port (47808) must match, and `unit` is the device
 * instance if the caller knows it, or BMS_POLICY_ANY_UNIT to match by address.
 * NULL if none matches: the caller denies (bms_policy_decide does, with dev NULL). */
const struct bms_policy_device *bms_policy_find_device(const struct bms_policy *p, enum bms_proto proto,
							const struct sockaddr *addr, uint32_t unit);
const struct bms_policy_device *bms_policy_find_device_by_name(const struct bms_policy *p, const char *name);
size_t bms_policy_device_count(const struct bms_policy *p);
const struct bms_policy_device *bms_policy_device_at(const struct bms_policy *p, size_t i);
const char *bms_policy_device_name(const struct bms_policy_device *d);
enum bms_proto bms_policy_device_proto(const struct bms_policy_device *d);
/* The device's declared upstream address and port, for the gateway to connect to. */
void bms_policy_device_addr(const struct bms_policy_device *d, struct sockaddr_storage *out, socklen_t *len);
/* True when this device (or the site, if the device says nothing) runs in monitor mode. */
bool bms_policy_device_monitor(const struct bms_policy_device *d);

/* ---- state ---- */

/* A fixed table of `slots` counters (rounded up to a power of two; 0 = 4096),
 * allocated once. NULL on allocation failure. A decision that needs a counter
 * and finds the table full denies (fail closed) and says so. */
struct bms_policy_state *bms_policy_state_new(size_t slots);
void bms_policy_state_free(struct bms_policy_state *st);

/* ---- decide ---- */

/* Decides one decoded request. Pure apart from `st` (counters of requests it
 * allowed); never allocates, never blocks. `st` may be NULL: rules with rate
 * limits or minimum intervals then deny, saying why. `dev` NULL (undeclared
 * device) denies. A request whose decoder flagged an anomaly denies unless the
 * policy accepts that anomaly by name; more targets than the model holds
 * always denies. The decision borrows rule_file from `p`: keep `p` alive
 * until the decision has been recorded.
 *
 * Verdicts: ALLOW; DENY; MONITOR_DENY when the device (or site) is in monitor
 * mode and enforcing would have denied: the request passes and is recorded as
 * such. */
void bms_policy_decide(const struct bms_policy *p, struct bms_policy_state *st, const struct bms_identity *who,
		       const struct bms_policy_device *dev, const struct bms_request *req, int64_t now_unix_us,
		       struct bms_decision *out);

/* ---- optional fast path: resolve an identity once per connection ----
 *
 * bms_policy_decide works out which of the policy's roles the identity holds
 * on every call (string compares against every role member). A caller that
 * keeps a connection's identity may resolve it once and pass the result; it
 * carries the serial of the policy it was resolved against, so after a reload
 * a stale resolution is detected and redone on the spot (never trusted). */
struct bms_policy_roles {
	uint64_t serial;   /* the policy's serial number; 0 = not resolved */
	uint64_t bits[4];
};
/* The serial a resolution must carry to be current for this policy. */
uint64_t bms_policy_serial(const struct bms_policy *p);
void bms_policy_resolve(const struct bms_policy *p, const struct bms_identity *who, struct bms_policy_roles *out);
void bms_policy_decide_resolved(const struct bms_policy *p, struct bms_policy_state *st,
				const struct bms_identity *who, const struct bms_policy_roles *roles,
				const struct bms_policy_device *dev, const struct bms_request *req, int64_t now_unix_us,
				struct bms_decision *out);

#endif
