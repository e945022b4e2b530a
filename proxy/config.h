/* proxy/config.h: the guard's and the tunnel's configuration file (types and parser).
 *
 * One small grammar for both (relayd habits): one statement per line, `#` comments,
 * `NAME { ... }` blocks for devices, audit settings and limits. Every error is reported
 * as `file:line:col: error: message` in one run (the policy language's front end:
 * base/lex.h, diag.h, suggest.h), with a did-you-mean for misspelt keywords.
 * See docs/gateway.md for the reference.
 */
#ifndef BMS_PROXY_CONFIG_H
#define BMS_PROXY_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "parsers/cursor.h"

#define PROXY_PATH_MAX 512
#define PROXY_NAME_MAX 64
#define PROXY_MAX_LISTENERS 8
#define PROXY_MAX_NETS 32
#define PROXY_MAX_DEVICES 64
#define PROXY_MAX_POLICIES 8

enum proxy_kind {
	PROXY_GUARD = 0,
	PROXY_TUNNEL,
};

struct proxy_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80]; /* as written in the file, for messages */
};

/* A source network for the legacy plain listener: address family, address bytes, prefix. */
struct proxy_net {
	int family;
	uint8_t addr[16];
	unsigned prefix;
};

enum proxy_listen_kind {
	PROXY_LISTEN_TLS = 0,
	PROXY_LISTEN_PLAIN,
};

struct proxy_listener {
	uint8_t kind; /* enum proxy_listen_kind */
	struct proxy_addr addr;
	unsigned nnets; /* plain listeners: sources allowed (identity = address) */
	struct proxy_net nets[PROXY_MAX_NETS];
};

struct proxy_device {
	char name[PROXY_NAME_MAX];
	struct proxy_addr addr;
	bool any_unit;            /* no `units` line: this device takes every unit id not routed elsewhere */
	uint8_t units[32];        /* bit set of Modbus unit ids routed to this device */
	unsigned connections;     /* pool size: connections the guard opens to the device */
	unsigned max_in_flight;   /* requests outstanding per device connection (1 = serialised) */
	unsigned connect_timeout_ms;
	unsigned response_timeout_ms;
	unsigned connect_delay_ms; /* wait after connecting before the first request */
	unsigned backoff_max_ms;   /* reconnect back-off ceiling */
	bool answers_pass;         /* `answers pass`: relay an answer that fails the check (still audited);
				    * the default `answers check` replaces it with exception 0B */
	unsigned line;
	unsigned addr_line;        /* the `address` line, for the check against the policy's devices */
};

/* `crl-stale`: what a guard does while the revocation list in force is stale (a re-read of
 * the TLS files failed since the CRL file changed, or the CRL's nextUpdate has passed). */
enum proxy_crl_stale {
	PROXY_CRL_STALE_REFUSE = 0, /* refuse new TLS sessions until a fresh CRL loads (default) */
	PROXY_CRL_STALE_KEEP,       /* keep accepting against the last good CRL, loudly */
};

/* Lines where file-naming settings were written (0 = not written), so that the checks
 * done after parsing (readable by `user`, key modes...) can say `file:line:`. */
struct proxy_config_lines {
	unsigned user, certificate, key, ca, crl;
	unsigned policies[PROXY_MAX_POLICIES];
	unsigned audit_file, audit_key, checkpoint_copy;
};

enum proxy_malformed {
	PROXY_MALFORMED_CLOSE = 0,
	PROXY_MALFORMED_EXCEPTION, /* answer exception 03 (Illegal Data Value) where a header can be read */
};

struct proxy_limits {
	unsigned connections;          /* in total */
	unsigned connections_per_source;
	unsigned handshake_timeout_ms; /* accept to verified handshake (TLS) */
	unsigned idle_timeout_ms;
	unsigned requests_in_flight;   /* per client connection */
	unsigned frame_size;           /* largest ADU accepted, <= 260 */
	unsigned buffer_size;          /* bytes queued towards one peer before it stops being read */
	unsigned drain_timeout_ms;     /* SIGTERM: how long in-flight requests may take */
	unsigned frame_timeout_ms;     /* a started frame (or TLS record) must complete within this */
};

struct proxy_audit_conf {
	char file[PROXY_PATH_MAX];
	char key[PROXY_PATH_MAX];       /* signing key for checkpoints; "" = none */
	char sync[32];                  /* "always" or a duration */
	unsigned sync_ms;               /* the interval of `sync DURATION`; 0 with "always" */
	bool fail_open;
	bool results_all;               /* `results all`: a result record for every answer, not only failures */
	uint64_t rotate_bytes;          /* `rotate-size`: 0 = never by size */
	unsigned rotate_seconds;        /* `rotate-age`: 0 = never by age */
	unsigned checkpoint_records;    /* `checkpoint-records`: 0 = the audit library's default (1000) */
	unsigned checkpoint_seconds;    /* `checkpoint-interval`: 0 = the audit library's default (10 s) */
	char checkpoint_copy[PROXY_PATH_MAX]; /* `checkpoint-copy`: "" = none */
};

struct proxy_config {
	char path[PROXY_PATH_MAX];
	uint8_t kind; /* enum proxy_kind */

	char user[PROXY_NAME_MAX]; /* "" = keep the current user */
	bool syslog;
	char node[PROXY_NAME_MAX];

	unsigned nlisteners;
	struct proxy_listener listeners[PROXY_MAX_LISTENERS];

	char certificate[PROXY_PATH_MAX];
	char key[PROXY_PATH_MAX];
	char ca[PROXY_PATH_MAX];
	char crl[PROXY_PATH_MAX];
	unsigned crl_poll_ms; /* how often the CRL file's change time is checked */
	uint8_t crl_stale;    /* enum proxy_crl_stale */
	struct proxy_config_lines lines;

	/* guard */
	unsigned npolicies;
	char policies[PROXY_MAX_POLICIES][PROXY_PATH_MAX];
	uint8_t malformed; /* enum proxy_malformed */
	unsigned ndevices;
	struct proxy_device devices[PROXY_MAX_DEVICES];
	struct proxy_audit_conf audit;
	bool has_audit;

	/* tunnel */
	struct proxy_addr guard;
	char guard_host[PROXY_NAME_MAX * 4]; /* as written: the name the guard's certificate must carry */
	char server_name[PROXY_NAME_MAX * 4];
	unsigned connect_timeout_ms;
	unsigned backoff_max_ms;

	struct proxy_limits limits;
};

struct bms_diag;

/* What the grammar needs from outside it: the resolver for host names (hosts are resolved
 * once, at load) and the default `node`. With resolve NULL only numeric addresses are read. */
struct proxy_config_env {
	/* HOST, PORT -> out->ss and out->len; 0, or -1 with *why saying what failed. */
	int (*resolve)(void *ctx, const char *host, unsigned port, struct proxy_addr *out, const char **why);
	void *ctx;
	char node[PROXY_NAME_MAX]; /* "" = "bmsgate" */
};

/* The grammar, pure over text[0..len) (no I/O; proxy/config_file.c reads files). Defaults
 * first, then every statement; every error is recorded in d (base/diag.h) at its token,
 * `name:line:col`, or of the file as a whole. 0; -EINVAL when d got an error; -ENOMEM. */
BMS_WUR int proxy_config_parse_text(const char *name, const char *text, size_t len, enum proxy_kind kind,
				    const struct proxy_config_env *env, struct proxy_config *cfg, struct bms_diag *d);
/* The values a file that says nothing gets (env may be NULL). */
void proxy_config_defaults(struct proxy_config *cfg, enum proxy_kind kind, const struct proxy_config_env *env);

/* proxy/config_file.c: the readers around the grammar. */
/* The system's: getaddrinfo for host names, gethostname for the node. */
void proxy_config_env_system(struct proxy_config_env *env);
/* Reads FILE (at most 1 MiB) and parses it with the system's env into *cfg; why it could not be
 * read is a record of d too. 0, or negative when there was at least one error. */
BMS_WUR int proxy_config_load(const char *path, enum proxy_kind kind, struct proxy_config *cfg, struct bms_diag *d);
/* The same over a C string (tests), every error as one `name:line:col: error: message` line on err. */
BMS_WUR int proxy_config_parse(const char *name, const char *text, enum proxy_kind kind,
			       struct proxy_config *cfg, FILE *err);

struct audit_config;
/* Fills the audit library's settings from the `audit {` block. The strings are
 * borrowed from cfg, which must outlive the audit log. */
void proxy_config_audit(const struct proxy_config *cfg, struct audit_config *ac);

struct engine_routes;
/* The inspect step's route table (engine/route.h) from the `device` blocks, `malformed` and
 * `frame-size`: route i is cfg->devices[i] (its `index`). */
void proxy_config_routes(const struct proxy_config *cfg, struct engine_routes *rt);
/* True when the address is inside one of the listener's networks. */
bool proxy_net_match(const struct proxy_listener *l, const struct sockaddr *sa);

#endif
