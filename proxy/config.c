/* proxy/config.c: the configuration grammar of guard and tunnel.
 *
 * Line-oriented: every statement is one line of words; `#` starts a comment;
 * words may be "quoted"; `NAME ARG {` opens a block that a line holding `}` closes.
 * The parser never stops at the first error: it reports each one as
 * `file:line: message` and keeps going, so an operator fixes a file in one pass.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "engine/route.h"
#include "proxy/config.h"
#include "policies/suggest.h"

#define MAX_WORDS 40
#define MAX_LINE 2048

enum ctx {
	CTX_TOP = 0,
	CTX_DEVICE,
	CTX_AUDIT,
	CTX_LIMITS,
};

struct parser {
	const char *name;
	unsigned line;
	unsigned errors;
	FILE *err;
	enum proxy_kind kind;
	enum ctx ctx;
	unsigned block_line;
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

__attribute__((format(printf, 2, 3))) static void perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	if (p->line)
		fprintf(p->err, "%s:%u: ", p->name, p->line);
	else
		fprintf(p->err, "%s: ", p->name);
	va_start(ap, fmt);
	vfprintf(p->err, fmt, ap);
	va_end(ap);
	fputc('\n', p->err);
	p->errors++;
}

static const char *suggest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	unsigned bestd = 3;
	for (size_t i = 0; i < n; i++) {
		unsigned d = bms_edit_distance(word, cands[i]);
		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	return best;
}

static const char *suggest_keyword(struct parser *p, const char *word)
{
	const char *cands[40];
	size_t n = 0;
	unsigned bit = p->kind == PROXY_GUARD ? G : T;
	for (const struct keyword *k = ctx_words[p->ctx]; k->word && n < 40; k++)
		if (k->kinds & bit)
			cands[n++] = k->word;
	return suggest(word, cands, n);
}

/* Split one line into words. Returns the number of words, or -1 (error reported). */
static int split(struct parser *p, char *line, char **words)
{
	int n = 0;
	char *s = line;
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (*s == '\0' || *s == '#')
			return n;
		if (n == MAX_WORDS) {
			perr(p, "too many words on one line (at most %d)", MAX_WORDS);
			return -1;
		}
		if (*s == '"') {
			char *start = ++s, *d = s;
			while (*s && *s != '"') {
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				*d++ = *s++;
			}
			if (*s != '"') {
				perr(p, "unterminated quoted string");
				return -1;
			}
			s++;
			*d = '\0';
			words[n++] = start;
			continue;
		}
		if (*s == '{' || *s == '}') {
			/* braces are words of their own even when glued to a neighbour */
			static char open[] = "{", close[] = "}";
			words[n++] = *s == '{' ? open : close;
			*s++ = '\0';
			continue;
		}
		words[n++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '#' && *s != '{' && *s != '}')
			s++;
		if (*s == '#' || *s == '{' || *s == '}') {
			/* terminate the word, but let the next round see the brace or comment */
			char c = *s;
			*s = '\0';
			if (c == '#')
				return n;
			if (n == MAX_WORDS) {
				perr(p, "too many words on one line (at most %d)", MAX_WORDS);
				return -1;
			}
			static char open2[] = "{", close2[] = "}";
			words[n++] = c == '{' ? open2 : close2;
			s++;
			continue;
		}
		if (*s)
			*s++ = '\0';
	}
}

static int parse_uint(struct parser *p, const char *kw, const char *v, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)v[0])) {
		perr(p, "%s: '%s' is not a number", kw, v);
		return -1;
	}
	unsigned long n = strtoul(v, &end, 10);
	if (errno || *end) {
		perr(p, "%s: '%s' is not a number", kw, v);
		return -1;
	}
	if (n < min || n > max) {
		perr(p, "%s: %s is out of range (%u..%u)", kw, v, min, max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* Durations need a unit: a bare number is ambiguous to whoever reads the file. */
static int parse_duration(struct parser *p, const char *kw, const char *v, unsigned *ms)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)v[0])) {
		perr(p, "%s: '%s' is not a duration (e.g. 500ms, 10s, 5m)", kw, v);
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
		perr(p, "%s: '%s' needs a unit (ms, s, m or h)", kw, v);
		return -1;
	} else
		goto bad;
	if (n > 86400000UL / mul) {
		perr(p, "%s: '%s' is longer than a day", kw, v);
		return -1;
	}
	*ms = (unsigned)(n * mul);
	return 0;
bad:
	perr(p, "%s: '%s' is not a duration (e.g. 500ms, 10s, 5m)", kw, v);
	return -1;
}

/* The audit library counts rotation age and checkpoint interval in whole seconds. */
static int parse_seconds(struct parser *p, const char *kw, const char *v, unsigned *ms)
{
	if (parse_duration(p, kw, v, ms) < 0)
		return -1;
	if (*ms < 1000 || *ms % 1000) {
		perr(p, "%s: '%s' must be a whole number of seconds (at least 1s)", kw, v);
		return -1;
	}
	return 0;
}

static int parse_size(struct parser *p, const char *kw, const char *v, unsigned min, unsigned max, unsigned *out)
{
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
		perr(p, "%s: %s is out of range (%u..%u bytes)", kw, v, min, max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
bad:
	perr(p, "%s: '%s' is not a size (e.g. 4096, 16k)", kw, v);
	return -1;
}

/* HOST:PORT or [V6]:PORT. Hosts are resolved once, at load. */
static int parse_addr(struct parser *p, const char *kw, const char *v, struct proxy_addr *out, char *host_out,
		      size_t host_cap)
{
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
	unsigned portn;
	char *end;
	unsigned long pn = strtoul(port, &end, 10);
	if (!isdigit((unsigned char)port[0]) || *end || pn == 0 || pn > 65535) {
		perr(p, "%s: '%s' has no valid port (1..65535)", kw, v);
		return -1;
	}
	portn = (unsigned)pn;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
#ifdef BMS_FUZZING
	/* the fuzzer must not wait on a resolver for every random host name */
	hints.ai_flags |= AI_NUMERICHOST;
#endif
	struct addrinfo *res = NULL;
	char pbuf[8];
	snprintf(pbuf, sizeof(pbuf), "%u", portn);
	int rc = getaddrinfo(host, pbuf, &hints, &res);
	if (rc != 0 || !res) {
		perr(p, "%s: cannot resolve '%s': %s", kw, host, gai_strerror(rc));
		return -1;
	}
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(out->text, sizeof(out->text), "%s", v);
	if (host_out)
		snprintf(host_out, host_cap, "%s", host);
	return 0;
bad:
	perr(p, "%s: '%s' is not HOST:PORT", kw, v);
	return -1;
}

static int parse_net(struct parser *p, const char *v, struct proxy_net *n)
{
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
			perr(p, "allow: '%s' has a bad prefix length (0..%u)", v, max);
			return -1;
		}
		n->prefix = (unsigned)pl;
	}
	/* host bits set under the prefix usually mean a typo: say so */
	for (unsigned bit = n->prefix; bit < (n->family == AF_INET ? 32u : 128u); bit++)
		if (n->addr[bit / 8] & (0x80 >> (bit % 8))) {
			perr(p, "allow: '%s' has host bits set beyond /%u", v, n->prefix);
			return -1;
		}
	return 0;
bad:
	perr(p, "allow: '%s' is not an address or network (e.g. 10.0.0.0/24)", v);
	return -1;
}

static int parse_units(struct parser *p, struct proxy_device *d, char **w, int n)
{
	int rc = 0;
	for (int i = 0; i < n; i++) {
		char *dash = strchr(w[i], '-');
		unsigned lo, hi;
		if (dash) {
			*dash = '\0';
			if (parse_uint(p, "units", w[i], 0, 255, &lo) || parse_uint(p, "units", dash + 1, 0, 255, &hi)) {
				rc = -1;
				continue;
			}
			if (lo > hi) {
				perr(p, "units: range %u-%u is inverted", lo, hi);
				rc = -1;
				continue;
			}
		} else {
			if (parse_uint(p, "units", w[i], 0, 255, &lo)) {
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

static int copy_word(struct parser *p, const char *kw, const char *v, char *dst, size_t cap)
{
	if (strlen(v) >= cap) {
		perr(p, "%s: '%.40s...' is too long (at most %zu characters)", kw, v, cap - 1);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static void defaults(struct proxy_config *c, enum proxy_kind kind)
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
	if (gethostname(c->node, sizeof(c->node)) != 0)
		snprintf(c->node, sizeof(c->node), "bmsgate");
	c->node[sizeof(c->node) - 1] = '\0';
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

static int want_args(struct parser *p, const char *kw, int nargs, int min, int max, const char *usage)
{
	if (nargs < min || nargs > max) {
		perr(p, "%s: expected %s", kw, usage);
		return -1;
	}
	return 0;
}

static bool first_use(struct parser *p, const char *kw)
{
	const struct keyword *k = ctx_words[p->ctx];
	for (unsigned i = 0; k[i].word && i < 32; i++)
		if (strcmp(k[i].word, kw) == 0) {
			if (p->seen[p->ctx][i]) {
				perr(p, "%s given twice (first at line %u)", kw, p->seen[p->ctx][i]);
				return false;
			}
			p->seen[p->ctx][i] = p->line;
			return true;
		}
	return true;
}

static void statement_top(struct parser *p, char **w, int n)
{
	struct proxy_config *c = p->cfg;
	const char *kw = w[0];
	int na = n - 1;
	char **a = w + 1;
	bool opens = na > 0 && strcmp(a[na - 1], "{") == 0;

	if (strcmp(kw, "device") == 0) {
		if (!opens || na != 2) {
			perr(p, "device: expected 'device NAME {'");
			return;
		}
		if (c->ndevices == PROXY_MAX_DEVICES) {
			perr(p, "device: too many devices (at most %d)", PROXY_MAX_DEVICES);
			p->dev = NULL;
		} else {
			for (unsigned i = 0; i < c->ndevices; i++)
				if (strcmp(c->devices[i].name, a[0]) == 0)
					perr(p, "device '%s' defined twice (first at line %u)", a[0], c->devices[i].line);
			p->dev = &c->devices[c->ndevices++];
			device_defaults(p->dev, p->line);
			if (copy_word(p, "device", a[0], p->dev->name, sizeof(p->dev->name)))
				p->dev->name[0] = '\0';
		}
		p->ctx = CTX_DEVICE;
		memset(p->seen[CTX_DEVICE], 0, sizeof(p->seen[CTX_DEVICE]));
		p->block_line = p->line;
		return;
	}
	if (strcmp(kw, "audit") == 0 || strcmp(kw, "limits") == 0) {
		if (!opens || na != 1) {
			perr(p, "%s: expected '%s {'", kw, kw);
			return;
		}
		if (!first_use(p, kw))
			return;
		p->ctx = kw[0] == 'a' ? CTX_AUDIT : CTX_LIMITS;
		if (p->ctx == CTX_AUDIT)
			c->has_audit = true;
		p->block_line = p->line;
		return;
	}
	if (opens) {
		perr(p, "%s does not open a block", kw);
		return;
	}
	if (strcmp(kw, "listen") == 0) {
		if (c->nlisteners == PROXY_MAX_LISTENERS) {
			perr(p, "listen: too many listeners (at most %d)", PROXY_MAX_LISTENERS);
			return;
		}
		struct proxy_listener *l = &c->listeners[c->nlisteners];
		memset(l, 0, sizeof(*l));
		if (p->kind == PROXY_TUNNEL) {
			if (want_args(p, kw, na, 1, 1, "'listen ADDRESS:PORT'"))
				return;
			l->kind = PROXY_LISTEN_PLAIN;
			if (parse_addr(p, kw, a[0], &l->addr, NULL, 0) == 0)
				c->nlisteners++;
			return;
		}
		if (na < 2) {
			perr(p, "listen: expected 'listen tls ADDRESS:PORT' or 'listen plain ADDRESS:PORT allow NETWORK...'");
			return;
		}
		if (strcmp(a[0], "tls") == 0) {
			if (na != 2) {
				perr(p, "listen tls: expected 'listen tls ADDRESS:PORT'");
				return;
			}
			l->kind = PROXY_LISTEN_TLS;
		} else if (strcmp(a[0], "plain") == 0) {
			l->kind = PROXY_LISTEN_PLAIN;
			if (na < 4 || strcmp(a[2], "allow") != 0) {
				perr(p, "listen plain: expected 'listen plain ADDRESS:PORT allow NETWORK...' "
					"(a plain listener must say who may use it)");
				return;
			}
			if (na - 3 > PROXY_MAX_NETS) {
				perr(p, "listen plain: too many networks (at most %d)", PROXY_MAX_NETS);
				return;
			}
			int bad = 0;
			for (int i = 3; i < na; i++)
				if (parse_net(p, a[i], &l->nets[l->nnets++]))
					bad = 1;
			if (bad)
				return;
		} else {
			const char *cands[] = { "tls", "plain" };
			const char *s = suggest(a[0], cands, 2);
			if (s)
				perr(p, "listen: unknown kind '%s' (did you mean '%s'?)", a[0], s);
			else
				perr(p, "listen: unknown kind '%s' (tls or plain)", a[0]);
			return;
		}
		if (parse_addr(p, kw, a[1], &l->addr, NULL, 0) == 0)
			c->nlisteners++;
		return;
	}
	if (strcmp(kw, "policy") == 0) {
		if (want_args(p, kw, na, 1, 1, "'policy FILE'"))
			return;
		if (c->npolicies == PROXY_MAX_POLICIES) {
			perr(p, "policy: too many policy files (at most %d)", PROXY_MAX_POLICIES);
			return;
		}
		if (copy_word(p, kw, a[0], c->policies[c->npolicies], PROXY_PATH_MAX) == 0)
			c->lines.policies[c->npolicies++] = p->line;
		return;
	}
	if (!first_use(p, kw))
		return;
	if (strcmp(kw, "user") == 0) {
		if (want_args(p, kw, na, 1, 1, "'user NAME'") == 0 &&
		    copy_word(p, kw, a[0], c->user, sizeof(c->user)) == 0)
			c->lines.user = p->line;
	} else if (strcmp(kw, "node") == 0) {
		if (want_args(p, kw, na, 1, 1, "'node NAME'") == 0)
			(void)copy_word(p, kw, a[0], c->node, sizeof(c->node));
	} else if (strcmp(kw, "log") == 0) {
		if (want_args(p, kw, na, 1, 1, "'log stderr' or 'log syslog'"))
			return;
		if (strcmp(a[0], "stderr") == 0)
			c->syslog = false;
		else if (strcmp(a[0], "syslog") == 0)
			c->syslog = true;
		else
			perr(p, "log: '%s' is neither stderr nor syslog", a[0]);
	} else if (strcmp(kw, "certificate") == 0 || strcmp(kw, "key") == 0 || strcmp(kw, "ca") == 0 ||
		   strcmp(kw, "crl") == 0) {
		char *dst = kw[0] == 'c' ? (kw[1] == 'e' ? c->certificate : kw[1] == 'a' ? c->ca : c->crl) : c->key;
		unsigned *at = kw[0] == 'c' ? (kw[1] == 'e' ? &c->lines.certificate : kw[1] == 'a' ? &c->lines.ca : &c->lines.crl)
					    : &c->lines.key;
		if (want_args(p, kw, na, 1, 1, "a file name") == 0 && copy_word(p, kw, a[0], dst, PROXY_PATH_MAX) == 0)
			*at = p->line;
	} else if (strcmp(kw, "crl-poll") == 0) {
		if (want_args(p, kw, na, 1, 1, "a duration") == 0)
			(void)parse_duration(p, kw, a[0], &c->crl_poll_ms);
	} else if (strcmp(kw, "crl-stale") == 0) {
		if (want_args(p, kw, na, 1, 1, "'crl-stale refuse' or 'crl-stale keep'"))
			return;
		if (strcmp(a[0], "refuse") == 0)
			c->crl_stale = PROXY_CRL_STALE_REFUSE;
		else if (strcmp(a[0], "keep") == 0)
			c->crl_stale = PROXY_CRL_STALE_KEEP;
		else
			perr(p, "crl-stale: '%s' is neither refuse nor keep", a[0]);
	} else if (strcmp(kw, "malformed") == 0) {
		if (want_args(p, kw, na, 1, 1, "'malformed close' or 'malformed exception'"))
			return;
		if (strcmp(a[0], "close") == 0)
			c->malformed = PROXY_MALFORMED_CLOSE;
		else if (strcmp(a[0], "exception") == 0)
			c->malformed = PROXY_MALFORMED_EXCEPTION;
		else
			perr(p, "malformed: '%s' is neither close nor exception", a[0]);
	} else if (strcmp(kw, "guard") == 0) {
		if (want_args(p, kw, na, 1, 1, "'guard HOST:PORT'") == 0)
			(void)parse_addr(p, kw, a[0], &c->guard, c->guard_host, sizeof(c->guard_host));
	} else if (strcmp(kw, "server-name") == 0) {
		if (want_args(p, kw, na, 1, 1, "'server-name NAME'") == 0)
			(void)copy_word(p, kw, a[0], c->server_name, sizeof(c->server_name));
	} else if (strcmp(kw, "connect-timeout") == 0) {
		if (want_args(p, kw, na, 1, 1, "a duration") == 0)
			(void)parse_duration(p, kw, a[0], &c->connect_timeout_ms);
	} else if (strcmp(kw, "backoff") == 0) {
		if (want_args(p, kw, na, 1, 1, "a duration") == 0)
			(void)parse_duration(p, kw, a[0], &c->backoff_max_ms);
	}
}

static void statement_device(struct parser *p, char **w, int n)
{
	struct proxy_device scratch, *d = p->dev ? p->dev : &scratch;
	const char *kw = w[0];
	int na = n - 1;
	char **a = w + 1;
	if (!p->dev)
		device_defaults(&scratch, p->line);
	if (!first_use(p, kw))
		return;
	if (strcmp(kw, "units") == 0) {
		if (na < 1) {
			perr(p, "units: expected one or more unit ids or ranges (e.g. 'units 1 5-7')");
			return;
		}
		(void)parse_units(p, d, a, na);
		return;
	}
	if (na != 1) {
		perr(p, "%s: expected one value", kw);
		return;
	}
	if (strcmp(kw, "address") == 0) {
		if (parse_addr(p, kw, a[0], &d->addr, NULL, 0) == 0)
			d->addr_line = p->line;
	} else if (strcmp(kw, "connections") == 0)
		(void)parse_uint(p, kw, a[0], 1, 16, &d->connections);
	else if (strcmp(kw, "max-in-flight") == 0)
		(void)parse_uint(p, kw, a[0], 1, 64, &d->max_in_flight);
	else if (strcmp(kw, "connect-timeout") == 0)
		(void)parse_duration(p, kw, a[0], &d->connect_timeout_ms);
	else if (strcmp(kw, "response-timeout") == 0)
		(void)parse_duration(p, kw, a[0], &d->response_timeout_ms);
	else if (strcmp(kw, "connect-delay") == 0)
		(void)parse_duration(p, kw, a[0], &d->connect_delay_ms);
	else if (strcmp(kw, "backoff") == 0)
		(void)parse_duration(p, kw, a[0], &d->backoff_max_ms);
	else if (strcmp(kw, "answers") == 0) {
		/* what the guard does with an answer that does not fit its request (upstream.c) */
		if (strcmp(a[0], "check") == 0)
			d->answers_pass = false;
		else if (strcmp(a[0], "pass") == 0)
			d->answers_pass = true;
		else
			perr(p, "answers: '%s' is neither check nor pass", a[0]);
	}
}

static void statement_audit(struct parser *p, char **w, int n)
{
	struct proxy_audit_conf *au = &p->cfg->audit;
	const char *kw = w[0];
	if (!first_use(p, kw))
		return;
	if (n != 2) {
		perr(p, "%s: expected one value", kw);
		return;
	}
	if (strcmp(kw, "file") == 0) {
		if (copy_word(p, kw, w[1], au->file, sizeof(au->file)) == 0)
			p->cfg->lines.audit_file = p->line;
	} else if (strcmp(kw, "key") == 0) {
		if (copy_word(p, kw, w[1], au->key, sizeof(au->key)) == 0)
			p->cfg->lines.audit_key = p->line;
	} else if (strcmp(kw, "sync") == 0) {
		unsigned ms = 0;
		if (strcmp(w[1], "always") == 0 || parse_duration(p, kw, w[1], &ms) == 0) {
			if (copy_word(p, kw, w[1], au->sync, sizeof(au->sync)) == 0)
				au->sync_ms = ms;
		}
	} else if (strcmp(kw, "rotate-size") == 0) {
		/* below 64k a log would rotate every few hundred records: surely a typo */
		unsigned bytes;
		if (parse_size(p, kw, w[1], 64 * 1024, UINT_MAX, &bytes) == 0)
			au->rotate_bytes = bytes;
	} else if (strcmp(kw, "rotate-age") == 0) {
		unsigned ms;
		if (parse_seconds(p, kw, w[1], &ms) == 0)
			au->rotate_seconds = ms / 1000;
	} else if (strcmp(kw, "checkpoint-records") == 0) {
		(void)parse_uint(p, kw, w[1], 1, 1000000, &au->checkpoint_records);
	} else if (strcmp(kw, "checkpoint-interval") == 0) {
		unsigned ms;
		if (parse_seconds(p, kw, w[1], &ms) == 0)
			au->checkpoint_seconds = ms / 1000;
	} else if (strcmp(kw, "checkpoint-copy") == 0) {
		if (copy_word(p, kw, w[1], au->checkpoint_copy, sizeof(au->checkpoint_copy)) == 0)
			p->cfg->lines.checkpoint_copy = p->line;
	} else if (strcmp(kw, "results") == 0) {
		if (strcmp(w[1], "all") == 0)
			au->results_all = true;
		else if (strcmp(w[1], "errors") == 0)
			au->results_all = false;
		else
			perr(p, "results: '%s' is neither all nor errors", w[1]);
	} else if (strcmp(kw, "fail") == 0) {
		if (strcmp(w[1], "open") == 0)
			au->fail_open = true;
		else if (strcmp(w[1], "closed") == 0)
			au->fail_open = false;
		else
			perr(p, "fail: '%s' is neither open nor closed", w[1]);
	}
}

static void statement_limits(struct parser *p, char **w, int n)
{
	struct proxy_limits *l = &p->cfg->limits;
	const char *kw = w[0];
	if (!first_use(p, kw))
		return;
	if (n != 2) {
		perr(p, "%s: expected one value", kw);
		return;
	}
	const char *v = w[1];
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
			perr(p, "%s: '%s' must be at least 1ms", kw, v);
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

static void statement(struct parser *p, char **w, int n)
{
	if (strcmp(w[0], "}") == 0) {
		if (n != 1)
			perr(p, "'}' must stand alone on its line");
		if (p->ctx == CTX_TOP) {
			perr(p, "'}' without an open block");
			return;
		}
		p->ctx = CTX_TOP;
		p->dev = NULL;
		return;
	}
	if (strcmp(w[0], "{") == 0) {
		perr(p, "'{' must end the line that names the block");
		return;
	}
	for (int i = 1; i < n - 1; i++)
		if (strcmp(w[i], "{") == 0 || strcmp(w[i], "}") == 0) {
			perr(p, "'%s' in the middle of a line: one statement per line", w[i]);
			return;
		}
	if (strcmp(w[n - 1], "}") == 0) {
		perr(p, "'}' must stand alone on its line");
		return;
	}
	bool other;
	if (!keyword_known(p, w[0], &other)) {
		const char *s = other ? NULL : suggest_keyword(p, w[0]);
		if (other)
			perr(p, "'%s' is not a %s setting", w[0], p->kind == PROXY_GUARD ? "guard" : "tunnel");
		else if (s)
			perr(p, "unknown keyword '%s' in %s (did you mean '%s'?)", w[0], ctx_names[p->ctx], s);
		else
			perr(p, "unknown keyword '%s' in %s", w[0], ctx_names[p->ctx]);
		return;
	}
	if (p->ctx != CTX_TOP && strcmp(w[n - 1], "{") == 0) {
		perr(p, "blocks do not nest: close the block opened at line %u first", p->block_line);
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

static void check_whole(struct parser *p)
{
	struct proxy_config *c = p->cfg;
	p->line = 0;
	if (c->nlisteners == 0)
		perr(p, "no 'listen' line: nothing to accept connections on");
	if (c->kind == PROXY_GUARD) {
		bool tls = false;
		for (unsigned i = 0; i < c->nlisteners; i++)
			if (c->listeners[i].kind == PROXY_LISTEN_TLS)
				tls = true;
		if (tls) {
			if (!c->certificate[0])
				perr(p, "a TLS listener needs 'certificate FILE'");
			if (!c->key[0])
				perr(p, "a TLS listener needs 'key FILE'");
			if (!c->ca[0])
				perr(p, "a TLS listener needs 'ca FILE' (the site CA that signs client certificates)");
		}
		if (c->ndevices == 0)
			perr(p, "no 'device' block: nothing to forward to");
		if (c->npolicies == 0)
			perr(p, "no 'policy FILE' line: the guard denies nothing without one and refuses to start");
		if (!c->has_audit || !c->audit.file[0])
			perr(p, "no audit file: add 'audit {' with 'file PATH' '}'");
		else if (!c->audit.key[0])
			perr(p, "no audit signing key: add 'key PATH' to the audit block (make one with "
				"'bmsgate audit keygen PRIVATE PUBLIC')");
		if (c->audit.checkpoint_copy[0] && strcmp(c->audit.checkpoint_copy, c->audit.file) == 0)
			perr(p, "audit: checkpoint-copy '%s' is the audit file itself: name another file",
			     c->audit.checkpoint_copy);
		unsigned catch_all = 0;
		for (unsigned i = 0; i < c->ndevices; i++) {
			const struct proxy_device *d = &c->devices[i];
			if (d->addr.len == 0) {
				p->line = d->line;
				perr(p, "device '%s' has no 'address HOST:PORT'", d->name);
				p->line = 0;
			}
			if (d->any_unit)
				catch_all++;
			for (unsigned j = 0; j < i; j++) {
				const struct proxy_device *e = &c->devices[j];
				if (d->any_unit || e->any_unit)
					continue;
				for (unsigned u = 0; u < 256; u++)
					if ((d->units[u / 8] & e->units[u / 8]) & (1u << (u % 8))) {
						p->line = d->line;
						perr(p, "device '%s': unit %u is also routed to device '%s' (line %u)",
						     d->name, u, e->name, e->line);
						p->line = 0;
						break;
					}
			}
		}
		if (catch_all > 1)
			perr(p, "%u devices have no 'units' line: only one device may take every unit", catch_all);
	} else {
		if (c->nlisteners > 1)
			perr(p, "a tunnel has one 'listen' address; run one tunnel per guard");
		if (c->guard.len == 0)
			perr(p, "no 'guard HOST:PORT' line: nowhere to carry connections");
		if (!c->certificate[0])
			perr(p, "no 'certificate FILE': the tunnel needs its own certificate");
		if (!c->key[0])
			perr(p, "no 'key FILE'");
		if (!c->ca[0])
			perr(p, "no 'ca FILE' (the site CA that signed the guard's certificate)");
		if (!c->server_name[0])
			snprintf(c->server_name, sizeof(c->server_name), "%s", c->guard_host);
	}
}

int proxy_config_parse(const char *name, const char *text, enum proxy_kind kind, struct proxy_config *cfg, FILE *err)
{
	struct parser p = { .name = name, .err = err, .kind = kind, .cfg = cfg };
	char line[MAX_LINE + 2];
	char *words[MAX_WORDS];
	defaults(cfg, kind);
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);
	const char *s = text;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		p.line++;
		if (len > MAX_LINE) {
			perr(&p, "line longer than %d characters", MAX_LINE);
		} else if (memchr(s, '\0', len)) {
			perr(&p, "NUL byte in line");
		} else {
			memcpy(line, s, len);
			line[len] = '\0';
			int n = split(&p, line, words);
			if (n > 0)
				statement(&p, words, n);
		}
		s += len;
		if (*s == '\n')
			s++;
	}
	if (p.ctx != CTX_TOP) {
		unsigned at = p.block_line;
		p.line = at;
		perr(&p, "block opened here is never closed with '}'");
	}
	check_whole(&p);
	return p.errors ? -1 : 0;
}

int proxy_config_load(const char *path, enum proxy_kind kind, struct proxy_config *cfg, FILE *err)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	int rc = -1;
	if (!f) {
		fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
		defaults(cfg, kind);
		return -1;
	}
	/* config files are small; a bound keeps a wrong path (a device, a log) from eating memory */
	const size_t cap = 1 << 20;
	buf = malloc(cap + 1);
	if (!buf) {
		fprintf(err, "%s: out of memory\n", path);
		goto fail;
	}
	size_t n = fread(buf, 1, cap + 1, f);
	if (ferror(f)) {
		fprintf(err, "%s: cannot read: %s\n", path, strerror(errno));
		goto fail;
	}
	if (n > cap) {
		fprintf(err, "%s: larger than %zu bytes: not a configuration file?\n", path, cap);
		goto fail;
	}
	buf[n] = '\0';
	if (strlen(buf) != n) {
		fprintf(err, "%s: contains a NUL byte: not a configuration file?\n", path);
		goto fail;
	}
	rc = proxy_config_parse(path, buf, kind, cfg, err);
fail:
	if (rc != 0 && cfg->path[0] == '\0')
		defaults(cfg, kind);
	free(buf);
	fclose(f);
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
