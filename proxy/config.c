/* proxy/config.c: the configuration grammar of guard and tunnel, pure over a text buffer.
 *
 * Line-oriented: every statement is one line of words; `#` starts a comment;
 * words may be "quoted"; `NAME ARG {` opens a block that a line holding `}` closes.
 * The words come from the grammar front end the policy language uses (base/lex.h),
 * and every error becomes a record there (base/diag.h) at the offending token, so
 * that it prints as `file:line:col: error: message` and, for a person, with the source
 * line and a caret under the token. The parser never stops at the first error: an
 * operator fixes a file in one pass (the record store caps how many are kept).
 *
 * No I/O: host names are resolved by the caller's resolver (struct proxy_config_env),
 * and the default node name is the caller's too; proxy/config_file.c reads files.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "engine/route.h"
#include "base/diag.h"
#include "base/lex.h"
#include "base/suggest.h"
#include "proxy/config.h"

#define MAX_WORDS 40
#define MAX_LINE 2048

enum ctx {
	CTX_TOP = 0,
	CTX_DEVICE,
	CTX_AUDIT,
	CTX_LIMITS,
};

/* One word of a statement: its bytes (quotes and escapes resolved) and where it stands. */
struct word {
	char *s;                 /* borrowed: NUL-terminated, in struct stmt's buffer */
	uint8_t kind;            /* enum bms_tok_kind: a word glued from words and commas is a WORD */
	uint32_t line, col, off, width;
};

/* One line's words. Bounded: a line is at most MAX_LINE bytes, so its words fit in buf. */
struct stmt {
	struct word w[MAX_WORDS];
	int n;
	size_t used;
	char buf[MAX_LINE + MAX_WORDS + 2];
};

struct parser {
	const char *name;
	const char *text; /* borrowed: the whole file, for the source lines of error records */
	size_t len;
	unsigned line;    /* of the statement being read */
	struct bms_diag *diag;
	bool oom;         /* an error record could not be stored */
	const struct proxy_config_env *env;
	enum proxy_kind kind;
	enum ctx ctx;
	unsigned block_line;
	struct word block_at;     /* the keyword that opened the block (its text is not kept) */
	struct word dev_at[PROXY_MAX_DEVICES]; /* each device block's name, for the whole-file checks */
	struct proxy_config *cfg;
	struct proxy_device *dev; /* borrowed: the device block being read */
	/* line where each single-valued keyword was first seen, per context, to refuse repeats */
	unsigned seen[4][32];
};

struct keyword {
	const char *word;
	unsigned kinds; /* bit 0: guard, bit 1: tunnel */
};

#define G 1u
#define T 2u

static const struct keyword top_words[] = {
	{ "user", G | T },	   { "log", G | T },	  { "node", G | T },	      { "listen", G | T },
	{ "certificate", G | T }, { "key", G | T },	  { "ca", G | T },	      { "crl", G | T },
	{ "crl-poll", G | T },	   { "crl-stale", G },	  { "policy", G },	  { "malformed", G },	      { "device", G },
	{ "audit", G },	   { "limits", G | T },   { "guard", T },	      { "server-name", T },
	{ "connect-timeout", T }, { "backoff", T },	  { NULL, 0 },
};
static const struct keyword device_words[] = {
	{ "address", G },	 { "units", G },	       { "connections", G },	{ "max-in-flight", G },
	{ "connect-timeout", G }, { "response-timeout", G }, { "connect-delay", G }, { "backoff", G },
	{ "answers", G },
	{ NULL, 0 },
};
static const struct keyword audit_words[] = {
	{ "file", G },	       { "key", G },		     { "sync", G },		  { "fail", G },
	{ "results", G },      { "rotate-size", G },	     { "rotate-age", G },	  { "checkpoint-records", G },
	{ "checkpoint-interval", G }, { "checkpoint-copy", G }, { NULL, 0 },
};
static const struct keyword limit_words[] = {
	{ "connections", G | T },	 { "connections-per-source", G }, { "handshake-timeout", G },
	{ "idle-timeout", G },		 { "requests-in-flight", G },	   { "frame-size", G },
	{ "buffer-size", G | T },	 { "drain-timeout", G },	   { "frame-timeout", G },
	{ NULL, 0 },
};

static const struct keyword *const ctx_words[] = { top_words, device_words, audit_words, limit_words };
static const char *const ctx_names[] = { "top level", "a device block", "the audit block", "the limits block" };

static void loc_of(const struct parser *p, const struct word *at, struct bms_diag_loc *out)
{
	*out = (struct bms_diag_loc){ .file = p->name, .line = at->line, .col = at->col, .width = at->width,
				      .text = p->text, .len = p->len, .off = at->off };
}

/* An error at the word `at`, or about the file as a whole (what is missing) when `at` is NULL.
 * A record that could not be stored is still counted (d->errors), and the parse says -ENOMEM
 * at the end. */
__attribute__((format(printf, 3, 4))) static void perr(struct parser *p, const struct word *at, const char *fmt, ...)
{
	struct bms_diag_loc loc = { .file = p->name };
	if (at)
		loc_of(p, at, &loc);
	va_list ap;
	va_start(ap, fmt);
	if (bms_diag_vadd(p->diag, BMS_DIAG_ERROR, &loc, fmt, ap) < 0)
		p->oom = true;
	va_end(ap);
}

static const char *suggest_keyword(struct parser *p, const char *word)
{
	const char *cands[40];
	size_t n = 0;
	unsigned bit = p->kind == PROXY_GUARD ? G : T;
	for (const struct keyword *k = ctx_words[p->ctx]; k->word && n < 40; k++)
		if (k->kinds & bit)
			cands[n++] = k->word;
	return bms_suggest(word, cands, n);
}

static int parse_uint(struct parser *p, const char *kw, const struct word *w, unsigned min, unsigned max,
		      unsigned *out)
{
	const char *v = w->s;
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)v[0])) {
		perr(p, w, "%s: '%s' is not a number", kw, v);
		return -1;
	}
	unsigned long n = strtoul(v, &end, 10);
	if (errno || *end) {
		perr(p, w, "%s: '%s' is not a number", kw, v);
		return -1;
	}
	if (n < min || n > max) {
		perr(p, w, "%s: %s is out of range (%u..%u)", kw, v, min, max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* Durations need a unit: a bare number is ambiguous to whoever reads the file. */
static int parse_duration(struct parser *p, const char *kw, const struct word *w, unsigned *ms)
{
	const char *v = w->s;
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)v[0])) {
		perr(p, w, "%s: '%s' is not a duration (e.g. 500ms, 10s, 5m)", kw, v);
		return -1;
	}
	unsigned long n = strtoul(v, &end, 10);
	unsigned long mul;
	if (errno)
		goto bad;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else if (*end == '\0') {
		perr(p, w, "%s: '%s' needs a unit (ms, s, m or h)", kw, v);
		return -1;
	} else
		goto bad;
	if (n > 86400000UL / mul) {
		perr(p, w, "%s: '%s' is longer than a day", kw, v);
		return -1;
	}
	*ms = (unsigned)(n * mul);
	return 0;
bad:
	perr(p, w, "%s: '%s' is not a duration (e.g. 500ms, 10s, 5m)", kw, v);
	return -1;
}

/* The audit library counts rotation age and checkpoint interval in whole seconds. */
static int parse_seconds(struct parser *p, const char *kw, const struct word *w, unsigned *ms)
{
	if (parse_duration(p, kw, w, ms) < 0)
		return -1;
	if (*ms < 1000 || *ms % 1000) {
		perr(p, w, "%s: '%s' must be a whole number of seconds (at least 1s)", kw, w->s);
		return -1;
	}
	return 0;
}

static int parse_size(struct parser *p, const char *kw, const struct word *w, unsigned min, unsigned max,
		      unsigned *out)
{
	const char *v = w->s;
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)v[0]))
		goto bad;
	unsigned long n = strtoul(v, &end, 10);
	if (errno)
		goto bad;
	if (*end == 'k' || *end == 'K') {
		n *= 1024;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		n *= 1024 * 1024;
		end++;
	}
	if (*end)
		goto bad;
	if (n < min || n > max) {
		perr(p, w, "%s: %s is out of range (%u..%u bytes)", kw, v, min, max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
bad:
	perr(p, w, "%s: '%s' is not a size (e.g. 4096, 16k)", kw, v);
	return -1;
}

/* Without a resolver (the fuzzer, a test of the grammar alone) only numeric addresses are
 * read, and no resolver, file or socket is touched. */
static int numeric_addr(const char *host, unsigned port, struct proxy_addr *out, const char **why)
{
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)&out->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&out->ss;
	memset(&out->ss, 0, sizeof(out->ss));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		out->len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*in6);
		return 0;
	}
	*why = "not a numeric address, and no resolver was given";
	return -1;
}

/* HOST:PORT or [V6]:PORT. Hosts are resolved once, at load, by the caller's resolver. */
static int parse_addr(struct parser *p, const char *kw, const struct word *w, struct proxy_addr *out,
		      char *host_out, size_t host_cap)
{
	const char *v = w->s;
	char host[256];
	const char *port;
	if (v[0] == '[') {
		const char *rb = strchr(v, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - v - 1) >= sizeof(host))
			goto bad;
		memcpy(host, v + 1, (size_t)(rb - v - 1));
		host[rb - v - 1] = '\0';
		port = rb + 2;
	} else {
		const char *colon = strrchr(v, ':');
		if (!colon || (size_t)(colon - v) >= sizeof(host) || colon == v)
			goto bad;
		memcpy(host, v, (size_t)(colon - v));
		host[colon - v] = '\0';
		port = colon + 1;
	}
	char *end;
	unsigned long pn = strtoul(port, &end, 10);
	if (!isdigit((unsigned char)port[0]) || *end || pn == 0 || pn > 65535) {
		perr(p, w, "%s: '%s' has no valid port (1..65535)", kw, v);
		return -1;
	}
	const char *why = "?";
	int rc = p->env && p->env->resolve ? p->env->resolve(p->env->ctx, host, (unsigned)pn, out, &why)
					   : numeric_addr(host, (unsigned)pn, out, &why);
	if (rc != 0) {
		perr(p, w, "%s: cannot resolve '%s': %s", kw, host, why);
		return -1;
	}
	snprintf(out->text, sizeof(out->text), "%s", v);
	if (host_out)
		snprintf(host_out, host_cap, "%s", host);
	return 0;
bad:
	perr(p, w, "%s: '%s' is not HOST:PORT", kw, v);
	return -1;
}

static int parse_net(struct parser *p, const struct word *w, struct proxy_net *n)
{
	const char *v = w->s;
	char buf[64];
	const char *slash = strchr(v, '/');
	size_t alen = slash ? (size_t)(slash - v) : strlen(v);
	if (alen >= sizeof(buf))
		goto bad;
	memcpy(buf, v, alen);
	buf[alen] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, buf, n->addr) == 1) {
		n->family = AF_INET;
		n->prefix = 32;
	} else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
		n->family = AF_INET6;
		n->prefix = 128;
	} else
		goto bad;
	if (slash) {
		unsigned max = n->prefix;
		char *end;
		unsigned long pl = strtoul(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end || pl > max) {
			perr(p, w, "allow: '%s' has a bad prefix length (0..%u)", v, max);
			return -1;
		}
		n->prefix = (unsigned)pl;
	}
	/* host bits set under the prefix usually mean a typo: say so */
	for (unsigned bit = n->prefix; bit < (n->family == AF_INET ? 32u : 128u); bit++)
		if (n->addr[bit / 8] & (0x80 >> (bit % 8))) {
			perr(p, w, "allow: '%s' has host bits set beyond /%u", v, n->prefix);
			return -1;
		}
	return 0;
bad:
	perr(p, w, "allow: '%s' is not an address or network (e.g. 10.0.0.0/24)", v);
	return -1;
}

static int parse_units(struct parser *p, struct proxy_device *d, struct word *w, int n)
{
	int rc = 0;
	for (int i = 0; i < n; i++) {
		char *dash = strchr(w[i].s, '-');
		unsigned lo, hi;
		if (dash) {
			/* each half is checked as a number of its own, reported at the whole range */
			struct word a = w[i], b = w[i];
			*dash = '\0';
			b.s = dash + 1;
			if (parse_uint(p, "units", &a, 0, 255, &lo) || parse_uint(p, "units", &b, 0, 255, &hi)) {
				rc = -1;
				continue;
			}
			if (lo > hi) {
				perr(p, &w[i], "units: range %u-%u is inverted", lo, hi);
				rc = -1;
				continue;
			}
		} else {
			if (parse_uint(p, "units", &w[i], 0, 255, &lo)) {
				rc = -1;
				continue;
			}
			hi = lo;
		}
		for (unsigned u = lo; u <= hi; u++)
			d->units[u / 8] |= (uint8_t)(1u << (u % 8));
	}
	if (rc == 0)
		d->any_unit = false;
	return rc;
}

static int copy_word(struct parser *p, const char *kw, const struct word *w, char *dst, size_t cap)
{
	size_t n = strlen(w->s);
	if (n >= cap) {
		perr(p, w, "%s: '%.40s...' is too long (at most %zu characters)", kw, w->s, cap - 1);
		return -1;
	}
	memcpy(dst, w->s, n + 1);
	return 0;
}

void proxy_config_defaults(struct proxy_config *c, enum proxy_kind kind, const struct proxy_config_env *env)
{
	memset(c, 0, sizeof(*c));
	c->kind = (uint8_t)kind;
	c->crl_poll_ms = 1000;
	c->malformed = PROXY_MALFORMED_CLOSE;
	c->connect_timeout_ms = 5000;
	c->backoff_max_ms = 5000;
	c->limits.connections = 4096;
	c->limits.connections_per_source = 256;
	c->limits.handshake_timeout_ms = 10000;
	c->limits.idle_timeout_ms = 600000;
	c->limits.requests_in_flight = 16;
	c->limits.frame_size = 260;
	c->limits.buffer_size = 65536;
	c->limits.drain_timeout_ms = 5000;
	c->limits.frame_timeout_ms = 5000;
	snprintf(c->audit.sync, sizeof(c->audit.sync), "always");
	snprintf(c->node, sizeof(c->node), "%s", env && env->node[0] ? env->node : "bmsgate");
}

static void device_defaults(struct proxy_device *d, unsigned line)
{
	memset(d, 0, sizeof(*d));
	d->any_unit = true;
	d->connections = 1;
	d->max_in_flight = 1;
	d->connect_timeout_ms = 3000;
	d->response_timeout_ms = 400; /* the 0B before a libmodbus client's 0.5 s (docs/gateway.md) */
	d->connect_delay_ms = 0;
	d->backoff_max_ms = 5000;
	d->line = line;
}

/* Too few values: said at the keyword; too many: at the first one too many. */
/* A keyword that takes one of two words: 0 or 1 for which, or -1 (and the error) for
 * anything else. */
static int either(struct parser *p, const char *kw, const struct word *v, const char *zero, const char *one)
{
	if (strcmp(v->s, zero) == 0)
		return 0;
	if (strcmp(v->s, one) == 0)
		return 1;
	perr(p, v, "%s: '%s' is neither %s nor %s", kw, v->s, zero, one);
	return -1;
}

static int want_args(struct parser *p, const struct word *w, int nargs, int min, int max, const char *usage)
{
	if (nargs < min || nargs > max) {
		perr(p, nargs > max ? &w[1 + max] : &w[0], "%s: expected %s", w[0].s, usage);
		return -1;
	}
	return 0;
}

static bool first_use(struct parser *p, const struct word *w)
{
	const struct keyword *k = ctx_words[p->ctx];
	for (unsigned i = 0; k[i].word && i < 32; i++)
		if (strcmp(k[i].word, w->s) == 0) {
			if (p->seen[p->ctx][i]) {
				perr(p, w, "%s given twice (first at line %u)", w->s, p->seen[p->ctx][i]);
				return false;
			}
			p->seen[p->ctx][i] = p->line;
			return true;
		}
	return true;
}

static void statement_top(struct parser *p, struct word *w, int n)
{
	struct proxy_config *c = p->cfg;
	const char *kw = w[0].s;
	int na = n - 1;
	struct word *a = w + 1;
	bool opens = na > 0 && a[na - 1].kind == BMS_TOK_LBRACE;

	if (strcmp(kw, "device") == 0) {
		if (!opens || na != 2) {
			perr(p, &w[0], "device: expected 'device NAME {'");
			return;
		}
		if (c->ndevices == PROXY_MAX_DEVICES) {
			perr(p, &a[0], "device: too many devices (at most %d)", PROXY_MAX_DEVICES);
			p->dev = NULL;
		} else {
			for (unsigned i = 0; i < c->ndevices; i++)
				if (strcmp(c->devices[i].name, a[0].s) == 0)
					perr(p, &a[0], "device '%s' defined twice (first at line %u)", a[0].s,
					     c->devices[i].line);
			p->dev_at[c->ndevices] = a[0];
			p->dev = &c->devices[c->ndevices++];
			device_defaults(p->dev, p->line);
			if (copy_word(p, "device", &a[0], p->dev->name, sizeof(p->dev->name)))
				p->dev->name[0] = '\0';
		}
		p->ctx = CTX_DEVICE;
		memset(p->seen[CTX_DEVICE], 0, sizeof(p->seen[CTX_DEVICE]));
		p->block_line = p->line;
		p->block_at = w[0];
		return;
	}
	if (strcmp(kw, "audit") == 0 || strcmp(kw, "limits") == 0) {
		if (!opens || na != 1) {
			perr(p, &w[0], "%s: expected '%s {'", kw, kw);
			return;
		}
		if (!first_use(p, &w[0]))
			return;
		p->ctx = kw[0] == 'a' ? CTX_AUDIT : CTX_LIMITS;
		if (p->ctx == CTX_AUDIT)
			c->has_audit = true;
		p->block_line = p->line;
		p->block_at = w[0];
		return;
	}
	if (opens) {
		perr(p, &a[na - 1], "%s does not open a block", kw);
		return;
	}
	if (strcmp(kw, "listen") == 0) {
		if (c->nlisteners == PROXY_MAX_LISTENERS) {
			perr(p, &w[0], "listen: too many listeners (at most %d)", PROXY_MAX_LISTENERS);
			return;
		}
		struct proxy_listener *l = &c->listeners[c->nlisteners];
		memset(l, 0, sizeof(*l));
		if (p->kind == PROXY_TUNNEL) {
			if (want_args(p, w, na, 1, 1, "'listen ADDRESS:PORT'"))
				return;
			l->kind = PROXY_LISTEN_PLAIN;
			if (parse_addr(p, kw, &a[0], &l->addr, NULL, 0) == 0)
				c->nlisteners++;
			return;
		}
		if (na < 2) {
			perr(p, &w[0],
			     "listen: expected 'listen tls ADDRESS:PORT' or 'listen plain ADDRESS:PORT allow NETWORK...'");
			return;
		}
		if (strcmp(a[0].s, "tls") == 0) {
			if (na != 2) {
				perr(p, &a[2], "listen tls: expected 'listen tls ADDRESS:PORT'");
				return;
			}
			l->kind = PROXY_LISTEN_TLS;
		} else if (strcmp(a[0].s, "plain") == 0) {
			l->kind = PROXY_LISTEN_PLAIN;
			if (na < 4 || strcmp(a[2].s, "allow") != 0) {
				perr(p, na >= 3 ? &a[2] : &w[0],
				     "listen plain: expected 'listen plain ADDRESS:PORT allow NETWORK...' "
				     "(a plain listener must say who may use it)");
				return;
			}
			if (na - 3 > PROXY_MAX_NETS) {
				perr(p, &a[3 + PROXY_MAX_NETS], "listen plain: too many networks (at most %d)",
				     PROXY_MAX_NETS);
				return;
			}
			int bad = 0;
			for (int i = 3; i < na; i++)
				if (parse_net(p, &a[i], &l->nets[l->nnets++]))
					bad = 1;
			if (bad)
				return;
		} else {
			static const char *const cands[] = { "tls", "plain" };
			const char *s = bms_suggest(a[0].s, cands, 2);
			if (s)
				perr(p, &a[0], "listen: unknown kind '%s' (did you mean '%s'?)", a[0].s, s);
			else
				perr(p, &a[0], "listen: unknown kind '%s' (tls or plain)", a[0].s);
			return;
		}
		if (parse_addr(p, kw, &a[1], &l->addr, NULL, 0) == 0)
			c->nlisteners++;
		return;
	}
	if (strcmp(kw, "policy") == 0) {
		if (want_args(p, w, na, 1, 1, "'policy FILE'"))
			return;
		if (c->npolicies == PROXY_MAX_POLICIES) {
			perr(p, &w[0], "policy: too many policy files (at most %d)", PROXY_MAX_POLICIES);
			return;
		}
		if (copy_word(p, kw, &a[0], c->policies[c->npolicies], PROXY_PATH_MAX) == 0)
			c->lines.policies[c->npolicies++] = p->line;
		return;
	}
	if (!first_use(p, &w[0]))
		return;
	if (strcmp(kw, "user") == 0) {
		if (want_args(p, w, na, 1, 1, "'user NAME'") == 0 && copy_word(p, kw, &a[0], c->user, sizeof(c->user)) == 0)
			c->lines.user = p->line;
	} else if (strcmp(kw, "node") == 0) {
		if (want_args(p, w, na, 1, 1, "'node NAME'") == 0)
			(void)copy_word(p, kw, &a[0], c->node, sizeof(c->node));
	} else if (strcmp(kw, "log") == 0) {
		if (want_args(p, w, na, 1, 1, "'log stderr' or 'log syslog'"))
			return;
		int k = either(p, kw, &a[0], "stderr", "syslog");
		if (k >= 0)
			c->syslog = k == 1;
	} else if (strcmp(kw, "certificate") == 0 || strcmp(kw, "key") == 0 || strcmp(kw, "ca") == 0 ||
		   strcmp(kw, "crl") == 0) {
		char *dst = kw[0] == 'c' ? (kw[1] == 'e' ? c->certificate : kw[1] == 'a' ? c->ca : c->crl) : c->key;
		unsigned *at = kw[0] == 'c' ? (kw[1] == 'e' ? &c->lines.certificate : kw[1] == 'a' ? &c->lines.ca : &c->lines.crl)
					    : &c->lines.key;
		if (want_args(p, w, na, 1, 1, "a file name") == 0 && copy_word(p, kw, &a[0], dst, PROXY_PATH_MAX) == 0)
			*at = p->line;
	} else if (strcmp(kw, "crl-poll") == 0) {
		if (want_args(p, w, na, 1, 1, "a duration") == 0)
			(void)parse_duration(p, kw, &a[0], &c->crl_poll_ms);
	} else if (strcmp(kw, "crl-stale") == 0) {
		if (want_args(p, w, na, 1, 1, "'crl-stale refuse' or 'crl-stale keep'"))
			return;
		int k = either(p, kw, &a[0], "refuse", "keep");
		if (k >= 0)
			c->crl_stale = k == 0 ? PROXY_CRL_STALE_REFUSE : PROXY_CRL_STALE_KEEP;
	} else if (strcmp(kw, "malformed") == 0) {
		if (want_args(p, w, na, 1, 1, "'malformed close' or 'malformed exception'"))
			return;
		int k = either(p, kw, &a[0], "close", "exception");
		if (k >= 0)
			c->malformed = k == 0 ? PROXY_MALFORMED_CLOSE : PROXY_MALFORMED_EXCEPTION;
	} else if (strcmp(kw, "guard") == 0) {
		if (want_args(p, w, na, 1, 1, "'guard HOST:PORT'") == 0)
			(void)parse_addr(p, kw, &a[0], &c->guard, c->guard_host, sizeof(c->guard_host));
	} else if (strcmp(kw, "server-name") == 0) {
		if (want_args(p, w, na, 1, 1, "'server-name NAME'") == 0)
			(void)copy_word(p, kw, &a[0], c->server_name, sizeof(c->server_name));
	} else if (strcmp(kw, "connect-timeout") == 0) {
		if (want_args(p, w, na, 1, 1, "a duration") == 0)
			(void)parse_duration(p, kw, &a[0], &c->connect_timeout_ms);
	} else if (strcmp(kw, "backoff") == 0) {
		if (want_args(p, w, na, 1, 1, "a duration") == 0)
			(void)parse_duration(p, kw, &a[0], &c->backoff_max_ms);
	}
}

static void statement_device(struct parser *p, struct word *w, int n)
{
	struct proxy_device scratch, *d = p->dev ? p->dev : &scratch;
	const char *kw = w[0].s;
	int na = n - 1;
	struct word *a = w + 1;
	if (!p->dev)
		device_defaults(&scratch, p->line);
	if (!first_use(p, &w[0]))
		return;
	if (strcmp(kw, "units") == 0) {
		if (na < 1) {
			perr(p, &w[0], "units: expected one or more unit ids or ranges (e.g. 'units 1 5-7')");
			return;
		}
		(void)parse_units(p, d, a, na);
		return;
	}
	if (na != 1) {
		perr(p, na > 1 ? &a[1] : &w[0], "%s: expected one value", kw);
		return;
	}
	if (strcmp(kw, "address") == 0) {
		if (parse_addr(p, kw, &a[0], &d->addr, NULL, 0) == 0)
			d->addr_line = p->line;
	} else if (strcmp(kw, "connections") == 0)
		(void)parse_uint(p, kw, &a[0], 1, 16, &d->connections);
	else if (strcmp(kw, "max-in-flight") == 0)
		(void)parse_uint(p, kw, &a[0], 1, 64, &d->max_in_flight);
	else if (strcmp(kw, "connect-timeout") == 0)
		(void)parse_duration(p, kw, &a[0], &d->connect_timeout_ms);
	else if (strcmp(kw, "response-timeout") == 0)
		(void)parse_duration(p, kw, &a[0], &d->response_timeout_ms);
	else if (strcmp(kw, "connect-delay") == 0)
		(void)parse_duration(p, kw, &a[0], &d->connect_delay_ms);
	else if (strcmp(kw, "backoff") == 0)
		(void)parse_duration(p, kw, &a[0], &d->backoff_max_ms);
	else if (strcmp(kw, "answers") == 0) {
		/* what the guard does with an answer that does not fit its request (upstream.c) */
		int k = either(p, kw, &a[0], "check", "pass");
		if (k >= 0)
			d->answers_pass = k == 1;
	}
}

static void statement_audit(struct parser *p, struct word *w, int n)
{
	struct proxy_audit_conf *au = &p->cfg->audit;
	const char *kw = w[0].s;
	struct word *v = &w[1];
	if (!first_use(p, &w[0]))
		return;
	if (n != 2) {
		perr(p, n > 2 ? &w[2] : &w[0], "%s: expected one value", kw);
		return;
	}
	if (strcmp(kw, "file") == 0) {
		if (copy_word(p, kw, v, au->file, sizeof(au->file)) == 0)
			p->cfg->lines.audit_file = p->line;
	} else if (strcmp(kw, "key") == 0) {
		if (copy_word(p, kw, v, au->key, sizeof(au->key)) == 0)
			p->cfg->lines.audit_key = p->line;
	} else if (strcmp(kw, "sync") == 0) {
		unsigned ms = 0;
		if (strcmp(v->s, "always") == 0 || parse_duration(p, kw, v, &ms) == 0) {
			if (copy_word(p, kw, v, au->sync, sizeof(au->sync)) == 0)
				au->sync_ms = ms;
		}
	} else if (strcmp(kw, "rotate-size") == 0) {
		/* below 64k a log would rotate every few hundred records: surely a typo */
		unsigned bytes;
		if (parse_size(p, kw, v, 64 * 1024, UINT_MAX, &bytes) == 0)
			au->rotate_bytes = bytes;
	} else if (strcmp(kw, "rotate-age") == 0) {
		unsigned ms;
		if (parse_seconds(p, kw, v, &ms) == 0)
			au->rotate_seconds = ms / 1000;
	} else if (strcmp(kw, "checkpoint-records") == 0) {
		(void)parse_uint(p, kw, v, 1, 1000000, &au->checkpoint_records);
	} else if (strcmp(kw, "checkpoint-interval") == 0) {
		unsigned ms;
		if (parse_seconds(p, kw, v, &ms) == 0)
			au->checkpoint_seconds = ms / 1000;
	} else if (strcmp(kw, "checkpoint-copy") == 0) {
		if (copy_word(p, kw, v, au->checkpoint_copy, sizeof(au->checkpoint_copy)) == 0)
			p->cfg->lines.checkpoint_copy = p->line;
	} else if (strcmp(kw, "results") == 0) {
		int k = either(p, kw, v, "all", "errors");
		if (k >= 0)
			au->results_all = k == 0;
	} else if (strcmp(kw, "fail") == 0) {
		int k = either(p, kw, v, "open", "closed");
		if (k >= 0)
			au->fail_open = k == 0;
	}
}

static void statement_limits(struct parser *p, struct word *w, int n)
{
	struct proxy_limits *l = &p->cfg->limits;
	const char *kw = w[0].s;
	struct word *v = &w[1];
	if (!first_use(p, &w[0]))
		return;
	if (n != 2) {
		perr(p, n > 2 ? &w[2] : &w[0], "%s: expected one value", kw);
		return;
	}
	if (strcmp(kw, "connections") == 0)
		(void)parse_uint(p, kw, v, 1, 1000000, &l->connections);
	else if (strcmp(kw, "connections-per-source") == 0)
		(void)parse_uint(p, kw, v, 1, 1000000, &l->connections_per_source);
	else if (strcmp(kw, "handshake-timeout") == 0)
		(void)parse_duration(p, kw, v, &l->handshake_timeout_ms);
	else if (strcmp(kw, "idle-timeout") == 0)
		(void)parse_duration(p, kw, v, &l->idle_timeout_ms);
	else if (strcmp(kw, "requests-in-flight") == 0)
		(void)parse_uint(p, kw, v, 1, 256, &l->requests_in_flight);
	else if (strcmp(kw, "frame-size") == 0)
		(void)parse_size(p, kw, v, 12, 260, &l->frame_size);
	else if (strcmp(kw, "buffer-size") == 0)
		(void)parse_size(p, kw, v, 1024, 16 * 1024 * 1024, &l->buffer_size);
	else if (strcmp(kw, "drain-timeout") == 0)
		(void)parse_duration(p, kw, v, &l->drain_timeout_ms);
	else if (strcmp(kw, "frame-timeout") == 0) {
		/* 0 would close every connection whose frame spans two reads */
		if (parse_duration(p, kw, v, &l->frame_timeout_ms) == 0 && l->frame_timeout_ms == 0)
			perr(p, v, "%s: '%s' must be at least 1ms", kw, v->s);
	}
}

static bool keyword_known(struct parser *p, const char *kw, bool *other_kind)
{
	unsigned bit = p->kind == PROXY_GUARD ? G : T;
	*other_kind = false;
	for (const struct keyword *k = ctx_words[p->ctx]; k->word; k++)
		if (strcmp(k->word, kw) == 0) {
			if (k->kinds & bit)
				return true;
			*other_kind = true;
		}
	return false;
}

static bool is_brace(const struct word *w)
{
	return w->kind == BMS_TOK_LBRACE || w->kind == BMS_TOK_RBRACE;
}

static void statement(struct parser *p, struct word *w, int n)
{
	p->line = w[0].line;
	if (w[0].kind == BMS_TOK_RBRACE) {
		if (n != 1)
			perr(p, &w[1], "'}' must stand alone on its line");
		if (p->ctx == CTX_TOP) {
			perr(p, &w[0], "'}' without an open block");
			return;
		}
		p->ctx = CTX_TOP;
		p->dev = NULL;
		return;
	}
	if (w[0].kind == BMS_TOK_LBRACE) {
		perr(p, &w[0], "'{' must end the line that names the block");
		return;
	}
	for (int i = 1; i < n - 1; i++)
		if (is_brace(&w[i])) {
			perr(p, &w[i], "'%s' in the middle of a line: one statement per line", w[i].s);
			return;
		}
	if (w[n - 1].kind == BMS_TOK_RBRACE) {
		perr(p, &w[n - 1], "'}' must stand alone on its line");
		return;
	}
	bool other;
	if (!keyword_known(p, w[0].s, &other)) {
		const char *s = other ? NULL : suggest_keyword(p, w[0].s);
		if (other)
			perr(p, &w[0], "'%s' is not a %s setting", w[0].s, p->kind == PROXY_GUARD ? "guard" : "tunnel");
		else if (s)
			perr(p, &w[0], "unknown keyword '%s' in %s (did you mean '%s'?)", w[0].s, ctx_names[p->ctx], s);
		else
			perr(p, &w[0], "unknown keyword '%s' in %s", w[0].s, ctx_names[p->ctx]);
		return;
	}
	if (p->ctx != CTX_TOP && w[n - 1].kind == BMS_TOK_LBRACE) {
		perr(p, &w[n - 1], "blocks do not nest: close the block opened at line %u first", p->block_line);
		return;
	}
	switch (p->ctx) {
	case CTX_TOP:
		statement_top(p, w, n);
		break;
	case CTX_DEVICE:
		statement_device(p, w, n);
		break;
	case CTX_AUDIT:
		statement_audit(p, w, n);
		break;
	case CTX_LIMITS:
		statement_limits(p, w, n);
		break;
	}
}

/* The checks of the file as a whole (wireguard-tools' finishing step): what is missing is said
 * of the file; what is wrong with one device block, at its name. */
static void check_whole(struct parser *p)
{
	struct proxy_config *c = p->cfg;
	if (c->nlisteners == 0)
		perr(p, NULL, "no 'listen' line: nothing to accept connections on");
	if (c->kind == PROXY_GUARD) {
		bool tls = false;
		for (unsigned i = 0; i < c->nlisteners; i++)
			if (c->listeners[i].kind == PROXY_LISTEN_TLS)
				tls = true;
		if (tls) {
			if (!c->certificate[0])
				perr(p, NULL, "a TLS listener needs 'certificate FILE'");
			if (!c->key[0])
				perr(p, NULL, "a TLS listener needs 'key FILE'");
			if (!c->ca[0])
				perr(p, NULL, "a TLS listener needs 'ca FILE' (the site CA that signs client certificates)");
		}
		if (c->ndevices == 0)
			perr(p, NULL, "no 'device' block: nothing to forward to");
		if (c->npolicies == 0)
			perr(p, NULL, "no 'policy FILE' line: the guard denies nothing without one and refuses to start");
		if (!c->has_audit || !c->audit.file[0])
			perr(p, NULL, "no audit file: add 'audit {' with 'file PATH' '}'");
		else if (!c->audit.key[0])
			perr(p, NULL, "no audit signing key: add 'key PATH' to the audit block (make one with "
					   "'bmsgate audit keygen PRIVATE PUBLIC')");
		if (c->audit.checkpoint_copy[0] && strcmp(c->audit.checkpoint_copy, c->audit.file) == 0)
			perr(p, NULL, "audit: checkpoint-copy '%s' is the audit file itself: name another file",
				  c->audit.checkpoint_copy);
		unsigned catch_all = 0;
		for (unsigned i = 0; i < c->ndevices; i++) {
			const struct proxy_device *d = &c->devices[i];
			if (d->addr.len == 0)
				perr(p, &p->dev_at[i], "device '%s' has no 'address HOST:PORT'", d->name);
			if (d->any_unit)
				catch_all++;
			for (unsigned j = 0; j < i; j++) {
				const struct proxy_device *e = &c->devices[j];
				if (d->any_unit || e->any_unit)
					continue;
				for (unsigned u = 0; u < 256; u++)
					if ((d->units[u / 8] & e->units[u / 8]) & (1u << (u % 8))) {
						perr(p, &p->dev_at[i], "device '%s': unit %u is also routed to device '%s' (line %u)",
							  d->name, u, e->name, e->line);
						break;
					}
			}
		}
		if (catch_all > 1)
			perr(p, NULL, "%u devices have no 'units' line: only one device may take every unit", catch_all);
	} else {
		if (c->nlisteners > 1)
			perr(p, NULL, "a tunnel has one 'listen' address; run one tunnel per guard");
		if (c->guard.len == 0)
			perr(p, NULL, "no 'guard HOST:PORT' line: nowhere to carry connections");
		if (!c->certificate[0])
			perr(p, NULL, "no 'certificate FILE': the tunnel needs its own certificate");
		if (!c->key[0])
			perr(p, NULL, "no 'key FILE'");
		if (!c->ca[0])
			perr(p, NULL, "no 'ca FILE' (the site CA that signed the guard's certificate)");
		if (!c->server_name[0])
			snprintf(c->server_name, sizeof(c->server_name), "%s", c->guard_host);
	}
}

/* Appends token t to the line's words. The words of the old grammar were runs of bytes up
 * to a space, `#`, `{` or `}`: the lexer cuts at `,` too, so a word and the commas touching
 * it are glued back into one word (config has no comma syntax: `a,b.jsonl` is a file name). */
static int add_word(struct parser *p, struct stmt *st, const struct bms_tok *t)
{
	bool glue_kind = t->kind == BMS_TOK_WORD || t->kind == BMS_TOK_COMMA;
	struct word *last = st->n ? &st->w[st->n - 1] : NULL;
	bool glue = glue_kind && last && (last->kind == BMS_TOK_WORD || last->kind == BMS_TOK_COMMA) &&
		    last->off + last->width == t->off;
	if (!glue && st->n == MAX_WORDS) {
		struct word at = { .s = (char *)"", .line = t->line, .col = t->col, .off = t->off, .width = t->width };
		perr(p, &at, "too many words on one line (at most %d)", MAX_WORDS);
		return -1;
	}
	/* The bytes from the text itself: a token over BMS_TOK_MAX bytes is whole there. */
	const char *src = p->text + t->off;
	size_t n = t->width;
	if (t->kind == BMS_TOK_STRING) {
		src++;
		n -= 2;
	}
	/* a line is at most MAX_LINE bytes, so this only guards against a lexer that disagrees */
	if (st->used + n + 1 > sizeof(st->buf))
		return -1;
	char *dst;
	if (glue) {
		dst = last->s + strlen(last->s);
		st->used--; /* over the NUL of the word glued to */
	} else
		dst = st->buf + st->used;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (t->kind == BMS_TOK_STRING && src[i] == '\\' && i + 1 < n && (src[i + 1] == '"' || src[i + 1] == '\\'))
			i++;
		dst[k++] = src[i];
	}
	dst[k] = '\0';
	st->used += k + 1;
	if (glue) {
		last->width = t->off + t->width - last->off;
		last->kind = BMS_TOK_WORD;
	} else
		st->w[st->n++] = (struct word){ .s = dst, .kind = t->kind == BMS_TOK_COMMA ? BMS_TOK_WORD : t->kind,
						.line = t->line, .col = t->col, .off = t->off, .width = t->width };
	return 0;
}

int proxy_config_parse_text(const char *name, const char *text, size_t len, enum proxy_kind kind,
			    const struct proxy_config_env *env, struct proxy_config *cfg, struct bms_diag *d)
{
	struct parser p = { .name = name, .text = text, .len = len, .diag = d, .env = env, .kind = kind, .cfg = cfg };
	struct stmt line_words, *st = &line_words; /* one line's words: about 3 kB */
	size_t errors0 = d->errors;
	int rc = 0;
	proxy_config_defaults(cfg, kind, env);
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);
	st->n = 0;
	st->used = 0;
	struct bms_lexer lx;
	if (bms_lex_init(&lx, name, text, len, BMS_LEX_ESCAPES | BMS_LEX_LONG_TOKENS, d) < 0) {
		perr(&p, NULL, "%zu bytes is too long for a configuration file", len);
		return -EINVAL;
	}
	/* One statement per line. A line with a lexical error (a stray control byte, an unclosed
	 * string) or over its bounds is reported and skipped whole, as before: its words are not
	 * read, so one broken line gives one error, not a cascade. */
	uint32_t cur_line = 0;
	size_t line_errors = d->errors;
	bool skip = false;
	struct bms_tok t;
	for (;;) {
		if (bms_lex_next(&lx, &t) < 0) {
			rc = -ENOMEM;
			break;
		}
		if (t.line != cur_line) {
			cur_line = t.line;
			size_t ls = t.off - (t.col - 1), le;
			const char *nl = memchr(text + ls, '\n', len - ls);
			le = nl ? (size_t)(nl - text) : len;
			if (le - ls > MAX_LINE) {
				struct word at = { .s = (char *)"", .line = t.line, .col = 1, .off = (uint32_t)ls, .width = 1 };
				perr(&p, &at, "line longer than %d characters", MAX_LINE);
				skip = true;
			}
		}
		if (t.kind == BMS_TOK_NL || t.kind == BMS_TOK_EOF) {
			if (!skip && st->n > 0 && d->errors == line_errors)
				statement(&p, st->w, st->n);
			st->n = 0;
			st->used = 0;
			skip = false;
			line_errors = d->errors;
			if (t.kind == BMS_TOK_EOF)
				break;
			continue;
		}
		if (!skip && add_word(&p, st, &t) < 0)
			skip = true;
	}
	if (p.ctx != CTX_TOP) {
		p.line = p.block_line;
		perr(&p, &p.block_at, "block opened here is never closed with '}'");
	}
	check_whole(&p);
	if (rc == 0 && p.oom)
		rc = -ENOMEM;
	if (rc == 0 && d->errors > errors0)
		rc = -EINVAL;
	return rc;
}

/* every device gets its route, under its whole name */
_Static_assert(ENGINE_MAX_ROUTES >= PROXY_MAX_DEVICES, "a route per device");
_Static_assert(ENGINE_NAME_MAX >= PROXY_NAME_MAX, "device names fit a route");

void proxy_config_routes(const struct proxy_config *cfg, struct engine_routes *rt)
{
	engine_routes_init(rt);
	rt->malformed = cfg->malformed == PROXY_MALFORMED_EXCEPTION ? ENGINE_MALFORMED_ANSWER : ENGINE_MALFORMED_CLOSE;
	rt->modbus_frame_size = cfg->limits.frame_size;
	for (unsigned i = 0; i < cfg->ndevices && i < ENGINE_MAX_ROUTES; i++) {
		const struct proxy_device *d = &cfg->devices[i];
		/* the config's devices are Modbus/TCP ones (BACnet devices come with its live path) */
		struct engine_route *r = engine_routes_add(rt, BMS_PROTO_MODBUS);
		snprintf(r->name, sizeof(r->name), "%s", d->name);
		r->addr = d->addr.ss;
		r->addr_len = d->addr.len;
		r->any_unit = d->any_unit;
		memcpy(r->units, d->units, sizeof(r->units));
	}
	engine_routes_index(rt);
}

bool proxy_net_match(const struct proxy_listener *l, const struct sockaddr *sa)
{
	const uint8_t *a;
	int fam;
	uint8_t mapped[4];
	if (sa->sa_family == AF_INET) {
		fam = AF_INET;
		a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			memcpy(mapped, &in6->s6_addr[12], 4);
			fam = AF_INET;
			a = mapped;
		} else {
			fam = AF_INET6;
			a = in6->s6_addr;
		}
	} else
		return false;
	for (unsigned i = 0; i < l->nnets; i++) {
		const struct proxy_net *n = &l->nets[i];
		if (n->family != fam)
			continue;
		unsigned full = n->prefix / 8, rest = n->prefix % 8;
		if (memcmp(a, n->addr, full) != 0)
			continue;
		if (rest && ((a[full] ^ n->addr[full]) & (uint8_t)(0xff << (8 - rest))))
			continue;
		return true;
	}
	return false;
}

void proxy_config_audit(const struct proxy_config *cfg, struct audit_config *ac)
{
	const struct proxy_audit_conf *au = &cfg->audit;
	memset(ac, 0, sizeof(*ac));
	ac->path = au->file;
	ac->node = cfg->node;
	ac->key_path = au->key[0] ? au->key : NULL;
	ac->checkpoint_copy_path = au->checkpoint_copy[0] ? au->checkpoint_copy : NULL;
	ac->sync_always = strcmp(au->sync, "always") == 0;
	ac->sync_interval_ms = ac->sync_always ? 0 : au->sync_ms;
	ac->checkpoint_every_records = au->checkpoint_records;
	ac->checkpoint_every_seconds = au->checkpoint_seconds;
	ac->rotate_bytes = au->rotate_bytes;
	ac->rotate_seconds = au->rotate_seconds;
	ac->fail_open = au->fail_open;
}
