/* policies/compile.c: policy text -> struct bms_policy.
 *
 * The language is line oriented: one statement per line, `#` starts a
 * comment, `{ ... }` holds the points of a device and the members of a role,
 * and a rule may continue on following lines that start with one of its
 * conditions (value, priority, during, outside, limit, min-interval). The
 * whole grammar, with examples, is in docs/policy-language.md.
 *
 * Errors do not stop the compile: a statement with an error is dropped and the
 * next one is read, so one run reports every error. Names are resolved after
 * every file has been read, so rules may name devices declared further down
 * or in a later file.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "policies/policy_int.h"

#define MAX_TOKEN 255
#define MAX_INCLUDE_DEPTH 8
#define MAX_RULE_ROLES 16
#define MAX_ITEMS 200000 /* devices, points, roles, rules, schedules each */

enum tkind { T_WORD, T_STRING, T_COMMA, T_LBRACE, T_RBRACE, T_NL, T_EOF };

struct tok {
	uint8_t kind;
	uint32_t line, col;
	char text[MAX_TOKEN + 1];
};

/* A name a rule uses, resolved once every file has been read. */
struct ref {
	struct pol_src src;
	char text[MAX_TOKEN + 1];
};

struct rule_refs {
	uint32_t nroles;
	struct ref roles[MAX_RULE_ROLES];
	bool has_device, has_point, has_schedule;
	struct ref device, point, schedule;
	struct pol_src value_src; /* where `value` was written, for checks against the target */
	struct pol_src prio_src;
	bool value_onoff;
};

struct cc {
	struct bms_policy *p;
	struct bms_diag *d;
	const struct bms_policy_source *src; /* borrowed: where files and zones come from */
	EVP_MD_CTX *sha;
	uint32_t cap_files, cap_devices, cap_points, cap_roles, cap_members, cap_schedules, cap_rules;
	struct rule_refs *refs; /* parallel to p->rules */
	bool tz_set, site_set, mode_set;
	struct pol_src tz_src;
	char include_stack[MAX_INCLUDE_DEPTH + 1][BMS_POLICY_KEY_MAX];
	int depth;
	bool oom;
	size_t errors_before;
	uint32_t *dev_sorted; /* device indices by name, while names are resolved */
	/* the file being read */
	uint16_t file;
	struct tok *toks;
	uint32_t ntoks, pos;
};

/* Bounded copy: names were checked for length where it matters; elsewhere a cut is fine. */
static void cpy(char *dst, size_t n, const char *src)
{
	size_t l = strnlen(src, n - 1);
	memcpy(dst, src, l);
	dst[l] = '\0';
}

/* ---- diagnostics ---- */

static void diag_at(struct cc *c, uint8_t level, uint16_t file, uint32_t line, uint32_t col, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void diag_at(struct cc *c, uint8_t level, uint16_t file, uint32_t line, uint32_t col, const char *fmt, ...)
{
	struct bms_diag *d = c->d;
	if (level == BMS_DIAG_ERROR)
		d->errors++;
	else if (level == BMS_DIAG_WARNING)
		d->warnings++;
	if (d->n >= BMS_DIAG_LIMIT)
		return;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		struct bms_diag_entry *v = realloc(d->v, ncap * sizeof(*v));
		if (v == NULL) {
			c->oom = true;
			return;
		}
		d->v = v;
		d->cap = ncap;
	}
	struct bms_diag_entry *e = &d->v[d->n++];
	memset(e, 0, sizeof(*e));
	e->level = level;
	e->line = line;
	e->col = col;
	cpy(e->file, sizeof(e->file), file < c->p->nfiles ? c->p->files[file] : "?");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

#define ERR_T(c, t, ...) diag_at((c), BMS_DIAG_ERROR, (c)->file, (t)->line, (t)->col, __VA_ARGS__)
#define WARN_T(c, t, ...) diag_at((c), BMS_DIAG_WARNING, (c)->file, (t)->line, (t)->col, __VA_ARGS__)
#define ERR_S(c, s, ...) diag_at((c), BMS_DIAG_ERROR, (s).file, (s).line, (s).col, __VA_ARGS__)
#define WARN_S(c, s, ...) diag_at((c), BMS_DIAG_WARNING, (s).file, (s).line, (s).col, __VA_ARGS__)

static const char *tok_show(const struct tok *t)
{
	switch (t->kind) {
	case T_NL: return "end of line";
	case T_EOF: return "end of file";
	default: return t->text;
	}
}

/* The closest of `words` to `s`, or NULL when nothing is close enough to suggest. */
static const char *nearest(const char *s, const char *const *words, size_t n)
{
	const char *best = NULL;
	unsigned bd = 8;
	size_t ls = strlen(s);
	for (size_t i = 0; i < n; i++) {
		if (words[i] == NULL || words[i][0] == '\0')
			continue;
		unsigned dd = bms_edit_distance(s, words[i]);
		if (dd < bd) {
			bd = dd;
			best = words[i];
		}
	}
	unsigned allowed = ls <= 3 ? 1 : ls <= 6 ? 2 : 3;
	return bd <= allowed ? best : NULL;
}

static const char *nearest_word(const char *s, const struct pol_word *w)
{
	const char *names[256];
	size_t n = 0;
	for (; w->name != NULL && n < 256; w++)
		names[n++] = w->name;
	return nearest(s, names, n);
}

/* "unknown X 'tok'; did you mean 'Y'?" or "unknown X 'tok' (expected A, B or C)". */
static void err_unknown(struct cc *c, const struct tok *t, const char *what, const char *const *words, size_t n,
			const char *expected)
{
	const char *m = t->kind == T_WORD ? nearest(t->text, words, n) : NULL;
	if (m != NULL)
		ERR_T(c, t, "unknown %s '%s'; did you mean '%s'?", what, tok_show(t), m);
	else if (t->kind == T_NL || t->kind == T_EOF)
		ERR_T(c, t, "expected %s at %s", expected, tok_show(t));
	else
		ERR_T(c, t, "unknown %s '%s' (expected %s)", what, tok_show(t), expected);
}

/* ---- growing arrays ---- */

static int grow(struct cc *c, void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	if (n >= MAX_ITEMS) {
		c->oom = true;
		return -ENOMEM;
	}
	uint32_t ncap = *cap ? *cap * 2 : 16;
	void *v = realloc(*arr, (size_t)ncap * elem);
	if (v == NULL) {
		c->oom = true;
		return -ENOMEM;
	}
	memset((char *)v + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
	*arr = v;
	*cap = ncap;
	return 0;
}

/* ---- lexer ---- */

static bool word_char(int ch)
{
	return ch > ' ' && ch != '{' && ch != '}' && ch != ',' && ch != '"' && ch != '#' && ch != 0x7f;
}

static int lex(struct cc *c, const char *s, size_t len)
{
	uint32_t cap = 0, line = 1, col = 1;
	size_t i = 0;
	c->ntoks = 0;
	for (;;) {
		if (grow(c, (void **)&c->toks, &cap, c->ntoks, sizeof(struct tok)) < 0)
			return -ENOMEM;
		struct tok *t = &c->toks[c->ntoks];
		memset(t, 0, sizeof(*t));
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) {
			i++;
			col++;
		}
		t->line = line;
		t->col = col;
		if (i >= len) {
			t->kind = T_EOF;
			c->ntoks++;
			return 0;
		}
		unsigned char ch = (unsigned char)s[i];
		if (ch == '#') {
			while (i < len && s[i] != '\n')
				i++;
			continue;
		}
		if (ch == '\n') {
			t->kind = T_NL;
			i++;
			line++;
			col = 1;
			c->ntoks++;
			continue;
		}
		if (ch == ',' || ch == '{' || ch == '}') {
			t->kind = ch == ',' ? T_COMMA : ch == '{' ? T_LBRACE : T_RBRACE;
			t->text[0] = (char)ch;
			i++;
			col++;
			c->ntoks++;
			continue;
		}
		size_t k = 0;
		if (ch == '"') {
			t->kind = T_STRING;
			i++;
			col++;
			while (i < len && s[i] != '"' && s[i] != '\n') {
				if (k < MAX_TOKEN)
					t->text[k] = s[i];
				k++;
				i++;
				col++;
			}
			if (i >= len || s[i] != '"') {
				ERR_T(c, t, "string is not closed before the end of the line");
				continue; /* the string is dropped; the newline comes next */
			}
			i++;
			col++;
		} else if (word_char(ch)) {
			t->kind = T_WORD;
			while (i < len && word_char((unsigned char)s[i])) {
				if (k < MAX_TOKEN)
					t->text[k] = s[i];
				k++;
				i++;
				col++;
			}
		} else {
			ERR_T(c, t, "unexpected character 0x%02x", ch);
			i++;
			col++;
			continue;
		}
		if (k > MAX_TOKEN) {
			ERR_T(c, t, "word of %zu characters is longer than %d", k, MAX_TOKEN);
			t->text[MAX_TOKEN] = '\0';
		}
		c->ntoks++;
	}
}

/* ---- token helpers over one statement: toks[0..n) ---- */

struct stmt {
	struct tok **t;
	uint32_t n;
	struct tok *end; /* the newline (or EOF) that ended it, for "expected X at end of line" */
};

static struct tok *st_at(const struct stmt *s, uint32_t i)
{
	return i < s->n ? s->t[i] : s->end;
}

static bool is(const struct tok *t, const char *w)
{
	return t->kind == T_WORD && strcmp(t->text, w) == 0;
}

static bool valid_name(const char *s)
{
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (const char *q = s; *q; q++)
		if (!(isalnum((unsigned char)*q) || *q == '_' || *q == '-'))
			return false;
	return strlen(s) < POL_NAME_MAX;
}

static int want_name(struct cc *c, const struct tok *t, const char *what)
{
	if (t->kind != T_WORD) {
		ERR_T(c, t, "expected a %s name at %s", what, tok_show(t));
		return -1;
	}
	if (!valid_name(t->text)) {
		ERR_T(c, t, "'%s' is not a valid %s name (letters, digits, '_' and '-', starting with a letter, "
			     "at most %d characters)", t->text, what, POL_NAME_MAX - 1);
		return -1;
	}
	return 0;
}

static int parse_double(const char *s, double *out)
{
	if (*s == '\0')
		return -1;
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	if (*e != '\0' || errno != 0 || !isfinite(v))
		return -1;
	/* strtod takes hex floats and "infinity": a policy takes plain decimals only. */
	for (const char *q = s; *q; q++)
		if (!(isdigit((unsigned char)*q) || *q == '.' || *q == '-' || *q == '+' || *q == 'e' || *q == 'E'))
			return -1;
	*out = v;
	return 0;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	if (!isdigit((unsigned char)s[0]))
		return -1;
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (*e != '\0' || errno != 0 || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "LO..HI" or a single number; *inverted set when LO > HI. */
static int parse_drange(struct cc *c, const struct tok *t, double *lo, double *hi, const char *what)
{
	char a[MAX_TOKEN + 1];
	cpy(a, sizeof(a), t->text);
	char *dots = strstr(a, "..");
	if (t->kind != T_WORD) {
		ERR_T(c, t, "expected a %s such as 15..30 at %s", what, tok_show(t));
		return -1;
	}
	if (dots == NULL) {
		if (parse_double(a, lo) < 0) {
			ERR_T(c, t, "'%s' is not a number or a range such as 15..30", t->text);
			return -1;
		}
		*hi = *lo;
		return 0;
	}
	*dots = '\0';
	if (parse_double(a, lo) < 0 || parse_double(dots + 2, hi) < 0) {
		ERR_T(c, t, "'%s' is not a range such as 15..30", t->text);
		return -1;
	}
	if (*lo > *hi)
		WARN_T(c, t, "inverted range %s: it contains no value; did you mean %s..%s?", t->text, dots + 2, a);
	return 0;
}

/* "A-B", "A..B" or "A" over unsigned integers. */
static int parse_urange(struct cc *c, const struct tok *t, uint32_t max, uint32_t *lo, uint32_t *hi, const char *what)
{
	char a[MAX_TOKEN + 1];
	if (t->kind != T_WORD) {
		ERR_T(c, t, "expected %s at %s", what, tok_show(t));
		return -1;
	}
	cpy(a, sizeof(a), t->text);
	char *sep = strstr(a, "..");
	size_t skip = 2;
	if (sep == NULL) {
		sep = strchr(a, '-');
		skip = 1;
	}
	if (sep != NULL)
		*sep = '\0';
	if (parse_u32(a, max, lo) < 0 || (sep != NULL && parse_u32(sep + skip, max, hi) < 0)) {
		ERR_T(c, t, "'%s' is not %s (a whole number 0..%u, or a range such as 100-119)", t->text, what, max);
		return -1;
	}
	if (sep == NULL)
		*hi = *lo;
	else if (*lo > *hi)
		WARN_T(c, t, "inverted range %s: it contains nothing; did you mean %u-%u?", t->text, *hi, *lo);
	return 0;
}

/* ---- time: days and hours ---- */

static const char *const day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
static const char *const day_full[7] = { "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday" };

static int day_index(const char *s)
{
	for (int i = 0; i < 7; i++)
		if (strcasecmp(s, day_names[i]) == 0 || strcasecmp(s, day_full[i]) == 0)
			return i;
	return -1;
}

static int parse_days_word(struct cc *c, const struct tok *t, uint8_t *mask)
{
	if (strcasecmp(t->text, "daily") == 0 || strcasecmp(t->text, "everyday") == 0) {
		*mask |= 0x7f;
		return 0;
	}
	if (strcasecmp(t->text, "weekdays") == 0) {
		*mask |= 0x3e;
		return 0;
	}
	if (strcasecmp(t->text, "weekends") == 0) {
		*mask |= 0x41;
		return 0;
	}
	char a[MAX_TOKEN + 1];
	cpy(a, sizeof(a), t->text);
	char *dash = strchr(a, '-');
	if (dash != NULL)
		*dash = '\0';
	int from = day_index(a), to = dash ? day_index(dash + 1) : from;
	if (from < 0 || to < 0) {
		static const char *const words[] = { "daily", "weekdays", "weekends", "mon", "tue", "wed", "thu",
						     "fri", "sat", "sun", "monday", "tuesday", "wednesday",
						     "thursday", "friday", "saturday", "sunday" };
		const char *bad = from < 0 ? a : dash + 1;
		const char *m = nearest(bad, words, sizeof(words) / sizeof(words[0]));
		if (m)
			ERR_T(c, t, "unknown day '%s'; did you mean '%s'?", bad, m);
		else
			ERR_T(c, t, "unknown day '%s' (expected mon..sun, a range such as mon-fri, daily, weekdays or "
				     "weekends)", bad);
		return -1;
	}
	/* mon-fri; fri-mon wraps over the weekend. */
	for (int dd = from;; dd = (dd + 1) % 7) {
		*mask |= (uint8_t)(1u << dd);
		if (dd == to)
			break;
	}
	return 0;
}

/* mon, mon-fri, daily, weekdays, weekends: days rather than a schedule's name. */
static bool is_days_word(const char *s)
{
	if (strcasecmp(s, "daily") == 0 || strcasecmp(s, "everyday") == 0 || strcasecmp(s, "weekdays") == 0 ||
	    strcasecmp(s, "weekends") == 0)
		return true;
	char a[MAX_TOKEN + 1];
	cpy(a, sizeof(a), s);
	char *dash = strchr(a, '-');
	if (dash != NULL)
		*dash++ = '\0';
	return day_index(a) >= 0 && (dash == NULL || day_index(dash) >= 0);
}

static bool looks_like_hours(const char *s)
{
	return isdigit((unsigned char)s[0]) && strchr(s, ':') != NULL;
}

static int parse_hhmm(const char *s, uint16_t *out)
{
	unsigned h, m;
	char extra;
	if (strlen(s) < 4 || strlen(s) > 5 || sscanf(s, "%u:%u%c", &h, &m, &extra) != 2 || s[strlen(s) - 3] != ':')
		return -1;
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -1;
	*out = (uint16_t)(h * 60 + m);
	return 0;
}

/* DAYS[, DAYS...] HH:MM-HH:MM [, DAYS... HH:MM-HH:MM]... starting at s->t[*i]. */
static int parse_windows(struct cc *c, const struct stmt *s, uint32_t *i, struct pol_schedule *sc)
{
	sc->nwin = 0;
	for (;;) {
		uint8_t days = 0;
		struct tok *t = st_at(s, *i);
		if (t->kind != T_WORD) {
			ERR_T(c, t, "expected days such as mon-fri at %s", tok_show(t));
			return -1;
		}
		if (looks_like_hours(t->text)) {
			days = 0x7f; /* hours alone: every day */
		} else {
			for (;;) {
				if (parse_days_word(c, t, &days) < 0)
					return -1;
				(*i)++;
				if (st_at(s, *i)->kind != T_COMMA)
					break;
				(*i)++;
				t = st_at(s, *i);
			}
			t = st_at(s, *i);
		}
		char a[MAX_TOKEN + 1];
		cpy(a, sizeof(a), t->text);
		char *dash = strchr(a, '-');
		uint16_t from, to;
		if (t->kind != T_WORD || dash == NULL) {
			ERR_T(c, t, "expected hours such as 07:00-19:00 at %s", tok_show(t));
			return -1;
		}
		*dash = '\0';
		if (parse_hhmm(a, &from) < 0 || parse_hhmm(dash + 1, &to) < 0 || from == 1440) {
			ERR_T(c, t, "'%s' is not hours such as 07:00-19:00 (00:00 to 24:00)", t->text);
			return -1;
		}
		if (from == to) {
			ERR_T(c, t, "hours %s start and end at the same time; write 00:00-24:00 for the whole day",
			      t->text);
			return -1;
		}
		if (sc->nwin >= POL_MAX_WINDOWS) {
			ERR_T(c, t, "more than %d windows in one schedule", POL_MAX_WINDOWS);
			return -1;
		}
		sc->win[sc->nwin++] = (struct pol_window){ .days = days, .from = from, .to = to };
		(*i)++;
		if (st_at(s, *i)->kind != T_COMMA)
			return 0;
		(*i)++;
	}
}

/* ---- addresses ---- */

static int parse_ip(const char *s, uint8_t *family, uint8_t addr[16])
{
	struct in_addr a4;
	struct in6_addr a6;
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, &a4) == 1) {
		*family = AF_INET;
		memcpy(addr, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		*family = AF_INET6;
		memcpy(addr, &a6, 16);
		return 0;
	}
	return -1;
}

/* "10.0.0.21", "10.0.0.21:502", "[fd00::5]:502", "fd00::5". */
static int parse_hostport(struct cc *c, const struct tok *t, uint16_t defport, struct sockaddr_storage *ss,
			  socklen_t *len)
{
	char a[MAX_TOKEN + 1];
	cpy(a, sizeof(a), t->text);
	char *host = a, *port = NULL;
	if (a[0] == '[') {
		char *e = strchr(a, ']');
		if (e == NULL)
			goto bad;
		*e = '\0';
		host = a + 1;
		if (e[1] == ':')
			port = e + 2;
		else if (e[1] != '\0')
			goto bad;
	} else if (strchr(a, ':') == strrchr(a, ':') && strchr(a, ':') != NULL) {
		port = strchr(a, ':');
		*port++ = '\0';
	}
	uint8_t fam, ip[16];
	uint32_t pn = defport;
	if (parse_ip(host, &fam, ip) < 0)
		goto bad;
	if (port != NULL && (parse_u32(port, 65535, &pn) < 0 || pn == 0))
		goto bad;
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)pn);
		memcpy(&s4->sin_addr, ip, 4);
		*len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)pn);
		memcpy(&s6->sin6_addr, ip, 16);
		*len = sizeof(*s6);
	}
	return 0;
bad:
	ERR_T(c, t, "'%s' is not an IP address with an optional port (10.0.0.21, 10.0.0.21:502, [fd00::21]:502); "
		     "a policy names no host names", t->text);
	return -1;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* ---- lookups ---- */

static int32_t find_device(const struct bms_policy *p, const char *name)
{
	for (uint32_t i = 0; i < p->ndevices; i++)
		if (strcmp(p->devices[i].name, name) == 0)
			return (int32_t)i;
	return -1;
}

int32_t pol_role_find(const struct bms_policy *p, const char *name)
{
	for (uint32_t i = 0; i < p->nroles; i++)
		if (strcmp(p->roles[i].name, name) == 0)
			return (int32_t)i;
	return -1;
}

static int32_t find_schedule(const struct bms_policy *p, const char *name)
{
	for (uint32_t i = 0; i < p->nschedules; i++)
		if (p->schedules[i].name[0] && strcmp(p->schedules[i].name, name) == 0)
			return (int32_t)i;
	return -1;
}

static const char *src_file(const struct cc *c, struct pol_src s)
{
	return s.file < c->p->nfiles ? c->p->files[s.file] : "?";
}

/* ---- statements ---- */

static struct pol_src here(const struct cc *c, const struct tok *t)
{
	return (struct pol_src){ .file = c->file, .line = t->line, .col = t->col };
}

static void st_site(struct cc *c, const struct stmt *s)
{
	struct tok *t = st_at(s, 1);
	if (t->kind != T_STRING && t->kind != T_WORD) {
		ERR_T(c, t, "expected the site's name in quotes at %s", tok_show(t));
		return;
	}
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the site name; put a name with spaces in quotes",
		      tok_show(s->t[2]));
		return;
	}
	if (c->site_set)
		WARN_T(c, s->t[0], "site is named a second time; the last name counts");
	c->site_set = true;
	cpy(c->p->site, sizeof(c->p->site), t->text);
}

static void st_timezone(struct cc *c, const struct stmt *s)
{
	struct tok *t = st_at(s, 1);
	if (t->kind != T_WORD && t->kind != T_STRING) {
		ERR_T(c, t, "expected a time zone such as Europe/Berlin at %s", tok_show(t));
		return;
	}
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the time zone", tok_show(s->t[2]));
		return;
	}
	if (c->tz_set) {
		ERR_T(c, s->t[0], "the time zone is already set at %s:%u", src_file(c, c->tz_src), c->tz_src.line);
		return;
	}
	char err[256];
	if (strcmp(t->text, "UTC") != 0) {
		if (pol_tz_check_name(t->text, err, sizeof(err)) < 0) {
			ERR_T(c, t, "%s", err);
			return;
		}
		struct bms_policy_text z;
		memset(&z, 0, sizeof(z));
		int rc = c->src->zone(c->src->ctx, t->text, &z, err, sizeof(err));
		if (rc == BMS_POLICY_SOURCE_NOMEM) {
			c->oom = true;
			return;
		}
		if (rc != BMS_POLICY_SOURCE_OK) {
			ERR_T(c, t, "%s", err);
			return;
		}
		rc = pol_tz_parse(&c->p->tz, t->text, (const uint8_t *)z.text, z.len, z.name, err, sizeof(err));
		c->src->release(c->src->ctx, &z);
		if (rc < 0) {
			ERR_T(c, t, "%s", err);
			return;
		}
	}
	c->tz_set = true;
	c->tz_src = here(c, s->t[0]);
}

static int parse_mode(struct cc *c, const struct tok *t, int8_t *mode)
{
	static const char *const words[] = { "enforce", "monitor" };
	if (is(t, "enforce"))
		*mode = 0;
	else if (is(t, "monitor"))
		*mode = 1;
	else {
		err_unknown(c, t, "mode", words, 2, "enforce or monitor");
		return -1;
	}
	return 0;
}

static void st_mode(struct cc *c, const struct stmt *s)
{
	int8_t m;
	if (parse_mode(c, st_at(s, 1), &m) < 0)
		return;
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the mode", tok_show(s->t[2]));
		return;
	}
	if (c->mode_set)
		WARN_T(c, s->t[0], "the site mode is set a second time; the last one counts");
	c->mode_set = true;
	c->p->site_mode = m;
}

/* accept anomaly modbus|bacnet NAME: let requests the decoder flagged with NAME reach the rules. */
static void st_accept(struct cc *c, const struct stmt *s)
{
	struct tok *t = st_at(s, 1);
	if (!is(t, "anomaly")) {
		static const char *const words[] = { "anomaly" };
		err_unknown(c, t, "word after accept", words, 1, "'anomaly'");
		return;
	}
	t = st_at(s, 2);
	enum bms_proto proto = is(t, "modbus") ? BMS_PROTO_MODBUS : is(t, "bacnet") ? BMS_PROTO_BACNET : BMS_PROTO_NONE;
	if (proto == BMS_PROTO_NONE) {
		static const char *const words[] = { "modbus", "bacnet" };
		err_unknown(c, t, "protocol", words, 2, "modbus or bacnet");
		return;
	}
	t = st_at(s, 3);
	const char *names[64];
	for (unsigned b = 0; b < 64; b++) {
		names[b] = bms_anomaly_name(proto, b);
		if (t->kind == T_WORD && names[b] != NULL && strcmp(names[b], t->text) == 0) {
			c->p->accept_anomalies[proto] |= UINT64_C(1) << b;
			if (s->n > 4)
				ERR_T(c, s->t[4], "unexpected '%s' after the anomaly name", tok_show(s->t[4]));
			return;
		}
	}
	err_unknown(c, t, "anomaly", names, 64, "an anomaly name the decoder reports");
}

static void st_schedule(struct cc *c, const struct stmt *s)
{
	struct tok *nt = st_at(s, 1);
	if (want_name(c, nt, "schedule") < 0)
		return;
	int32_t prev = find_schedule(c->p, nt->text);
	if (prev >= 0) {
		ERR_T(c, nt, "schedule '%s' is already declared at %s:%u", nt->text,
		      src_file(c, c->p->schedules[prev].src), c->p->schedules[prev].src.line);
		return;
	}
	struct pol_schedule sc;
	memset(&sc, 0, sizeof(sc));
	uint32_t i = 2;
	if (parse_windows(c, s, &i, &sc) < 0)
		return;
	if (i < s->n) {
		ERR_T(c, s->t[i], "unexpected '%s' after the hours", tok_show(s->t[i]));
		return;
	}
	if (grow(c, (void **)&c->p->schedules, &c->cap_schedules, c->p->nschedules, sizeof(sc)) < 0)
		return;
	cpy(sc.name, sizeof(sc.name), nt->text);
	sc.src = here(c, nt);
	c->p->schedules[c->p->nschedules++] = sc;
}

/* role NAME {  -- members follow, one a line, until } */
static int32_t st_role(struct cc *c, const struct stmt *s)
{
	struct tok *nt = st_at(s, 1);
	if (want_name(c, nt, "role") < 0)
		return -1;
	if (is(nt, "anyone")) {
		ERR_T(c, nt, "'anyone' is a reserved word and cannot name a role");
		return -1;
	}
	int32_t prev = pol_role_find(c->p, nt->text);
	if (prev >= 0) {
		ERR_T(c, nt, "role '%s' is already declared at %s:%u", nt->text, src_file(c, c->p->roles[prev].src),
		      c->p->roles[prev].src.line);
		return -1;
	}
	if (c->p->nroles >= POL_MAX_ROLES) {
		ERR_T(c, nt, "more than %d roles", POL_MAX_ROLES);
		return -1;
	}
	if (grow(c, (void **)&c->p->roles, &c->cap_roles, c->p->nroles, sizeof(struct pol_role)) < 0)
		return -1;
	struct pol_role *r = &c->p->roles[c->p->nroles];
	memset(r, 0, sizeof(*r));
	cpy(r->name, sizeof(r->name), nt->text);
	r->declared = true;
	r->src = here(c, nt);
	r->member_first = c->p->nmembers;
	return (int32_t)c->p->nroles++;
}

static int parse_fingerprint(const char *s, uint8_t out[32])
{
	size_t n = 0;
	for (const char *q = s; *q;) {
		if (*q == ':') {
			q++;
			continue;
		}
		if (!isxdigit((unsigned char)q[0]) || !isxdigit((unsigned char)q[1]) || n >= 32)
			return -1;
		char hex[3] = { q[0], q[1], 0 };
		out[n++] = (uint8_t)strtoul(hex, NULL, 16);
		q += 2;
	}
	return n == 32 ? 0 : -1;
}

static void st_member(struct cc *c, const struct stmt *s, int32_t role)
{
	static const char *const words[] = { "certificate-role", "subject", "fingerprint", "address" };
	struct tok *k = s->t[0], *v = st_at(s, 1);
	struct pol_member m;
	memset(&m, 0, sizeof(m));
	if (is(k, "certificate-role"))
		m.kind = POL_M_CERT_ROLE;
	else if (is(k, "subject"))
		m.kind = POL_M_SUBJECT;
	else if (is(k, "fingerprint"))
		m.kind = POL_M_FINGERPRINT;
	else if (is(k, "address") || is(k, "network"))
		m.kind = POL_M_ADDRESS;
	else {
		err_unknown(c, k, "role member", words, 4, "certificate-role, subject, fingerprint or address");
		return;
	}
	if (v->kind != T_WORD && v->kind != T_STRING) {
		ERR_T(c, v, "expected a value after '%s' at %s", k->text, tok_show(v));
		return;
	}
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the %s; one member a line", tok_show(s->t[2]), k->text);
		return;
	}
	switch (m.kind) {
	case POL_M_CERT_ROLE:
	case POL_M_SUBJECT: {
		/* The same limits as the guard's (policies/identity.h): a value the guard would refuse
		 * or ignore in a certificate cannot name anyone here either. */
		size_t lim = m.kind == POL_M_CERT_ROLE ? BMS_ROLE_LEN : BMS_SUBJECT_LEN, len = strlen(v->text);
		if (len > lim) {
			ERR_T(c, v, "%s '%s' is %zu bytes, longer than %zu", k->text, v->text, len, lim);
			return;
		}
		/* OpenSSL's RFC 2253 form, the one the guard matches, escapes every byte above 0x7f
		 * (CN=M\C3\BCller for CN=Müller): such a subject value could never match. */
		for (size_t q = 0; m.kind == POL_M_SUBJECT && q < len; q++)
			if ((unsigned char)v->text[q] >= 0x80) {
				WARN_T(c, v, "subject '%s' never matches: the guard writes subjects in RFC 2253 form with "
					     "each byte above 0x7f escaped as \\XX (e.g. CN=M\\C3\\BCller)", v->text);
				break;
			}
		cpy(m.text, sizeof(m.text), v->text);
		break;
	}
	case POL_M_FINGERPRINT:
		if (parse_fingerprint(v->text, m.fp) < 0) {
			ERR_T(c, v, "'%s' is not a SHA-256 fingerprint (64 hex digits, colons allowed)", v->text);
			return;
		}
		break;
	case POL_M_ADDRESS: {
		char a[MAX_TOKEN + 1];
		cpy(a, sizeof(a), v->text);
		char *slash = strchr(a, '/');
		if (slash != NULL)
			*slash = '\0';
		uint32_t prefix = 0;
		if (parse_ip(a, &m.family, m.net) < 0 ||
		    (slash != NULL && parse_u32(slash + 1, m.family == AF_INET ? 32 : 128, &prefix) < 0)) {
			ERR_T(c, v, "'%s' is not an IP address or network (10.1.2.3, 10.1.2.0/24, fd00::/64)", v->text);
			return;
		}
		m.prefix = (uint8_t)(slash ? prefix : (m.family == AF_INET ? 32 : 128));
		/* Host bits set under the prefix are a typing error worth a word, not a refusal. */
		for (unsigned b = m.prefix; b < (m.family == AF_INET ? 32u : 128u); b++)
			if (m.net[b / 8] & (0x80 >> (b % 8))) {
				WARN_T(c, v, "network %s has host bits set; it means the whole /%u", v->text, m.prefix);
				break;
			}
		break;
	}
	}
	if (grow(c, (void **)&c->p->members, &c->cap_members, c->p->nmembers, sizeof(m)) < 0)
		return;
	c->p->members[c->p->nmembers++] = m;
	c->p->roles[role].nmembers++;
}

static const char *const device_words[] = { "unit", "instance", "port", "mode" };

/* device NAME modbus|bacnet ADDRESS [unit LIST | instance N] [port N] [mode M] [{] */
static int32_t st_device(struct cc *c, const struct stmt *s)
{
	struct tok *nt = st_at(s, 1);
	if (want_name(c, nt, "device") < 0)
		return -1;
	if (is(nt, "all") || is(nt, "anyone")) {
		ERR_T(c, nt, "'%s' is a reserved word and cannot name a device", nt->text);
		return -1;
	}
	int32_t prev = find_device(c->p, nt->text);
	if (prev >= 0) {
		ERR_T(c, nt, "device '%s' is already declared at %s:%u", nt->text, src_file(c, c->p->devices[prev].src),
		      c->p->devices[prev].src.line);
		return -1;
	}
	struct tok *pt = st_at(s, 2);
	uint8_t proto;
	if (is(pt, "modbus"))
		proto = BMS_PROTO_MODBUS;
	else if (is(pt, "bacnet"))
		proto = BMS_PROTO_BACNET;
	else {
		static const char *const words[] = { "modbus", "bacnet" };
		err_unknown(c, pt, "protocol", words, 2, "modbus or bacnet");
		return -1;
	}
	if (grow(c, (void **)&c->p->devices, &c->cap_devices, c->p->ndevices, sizeof(struct bms_policy_device)) < 0)
		return -1;
	struct bms_policy_device *d = &c->p->devices[c->p->ndevices];
	memset(d, 0, sizeof(*d));
	cpy(d->name, sizeof(d->name), nt->text);
	d->proto = proto;
	d->mode = -1;
	d->src = here(c, nt);
	d->point_first = c->p->npoints;
	d->key = pol_hash(d->name, strlen(d->name), 0);
	int32_t idx = (int32_t)c->p->ndevices++;
	uint16_t defport = proto == BMS_PROTO_MODBUS ? 502 : 47808;
	struct tok *at = st_at(s, 3);
	if (at->kind != T_WORD) {
		ERR_T(c, at, "expected the device's IP address at %s", tok_show(at));
		return idx;
	}
	if (parse_hostport(c, at, defport, &d->addr, &d->addr_len) < 0)
		return idx;
	bool has_unit = false;
	for (uint32_t i = 4; i < s->n; i++) {
		struct tok *k = s->t[i], *v = st_at(s, i + 1);
		if (is(k, "unit") || is(k, "units")) {
			if (proto != BMS_PROTO_MODBUS) {
				ERR_T(c, k, "'unit' is for Modbus devices; a BACnet device has an 'instance'");
				return idx;
			}
			uint32_t j = i + 1;
			for (;;) {
				struct tok *u = st_at(s, j);
				uint32_t lo, hi;
				if (is(u, "any")) {
					memset(d->units, 0xff, sizeof(d->units));
				} else {
					if (parse_urange(c, u, 255, &lo, &hi, "a Modbus unit id") < 0)
						return idx;
					for (uint32_t n = lo; n <= hi; n++)
						d->units[n / 64] |= UINT64_C(1) << (n % 64);
				}
				if (st_at(s, j + 1)->kind != T_COMMA)
					break;
				j += 2;
			}
			has_unit = true;
			i = j;
		} else if (is(k, "instance")) {
			if (proto != BMS_PROTO_BACNET) {
				ERR_T(c, k, "'instance' is for BACnet devices; a Modbus device has a 'unit'");
				return idx;
			}
			if (parse_u32(v->text, 4194302, &d->instance) < 0 || v->kind != T_WORD) {
				ERR_T(c, v, "'%s' is not a BACnet device instance (0..4194302)", tok_show(v));
				return idx;
			}
			d->has_instance = true;
			i++;
		} else if (is(k, "port")) {
			uint32_t port;
			if (v->kind != T_WORD || parse_u32(v->text, 65535, &port) < 0 || port == 0) {
				ERR_T(c, v, "'%s' is not a port (1..65535)", tok_show(v));
				return idx;
			}
			set_port(&d->addr, (uint16_t)port);
			i++;
		} else if (is(k, "mode")) {
			if (parse_mode(c, v, &d->mode) < 0)
				return idx;
			i++;
		} else {
			err_unknown(c, k, "device option", device_words, 4, "unit, instance, port, mode or '{'");
			return idx;
		}
	}
	if (proto == BMS_PROTO_MODBUS && !has_unit)
		ERR_T(c, nt, "Modbus device '%s' needs its unit id(s): add 'unit 1' (or 'unit 1-4', or 'unit any')",
		      d->name);
	return idx;
}

static bool is_point_opt(const struct tok *t)
{
	static const char *const opts[] = { "uint16", "int16", "uint32", "int32", "float32", "scale", "offset",
					    "unit", "range" };
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (is(t, opts[i]))
			return true;
	return false;
}

static int modbus_space(const struct tok *t)
{
	if (is(t, "holding") || is(t, "holding-register"))
		return BMS_SPACE_HOLDING_REGISTER;
	if (is(t, "input") || is(t, "input-register"))
		return BMS_SPACE_INPUT_REGISTER;
	if (is(t, "coil"))
		return BMS_SPACE_COIL;
	if (is(t, "discrete") || is(t, "discrete-input"))
		return BMS_SPACE_DISCRETE_INPUT;
	return -1;
}

static const char *const modbus_space_words[] = { "holding", "input", "coil", "discrete" };

static void point_overlaps(struct cc *c, const struct bms_policy_device *d, const struct pol_point *pt,
			   const struct tok *t)
{
	for (uint32_t i = d->point_first; i < c->p->npoints; i++) {
		const struct pol_point *o = &c->p->points[i];
		bool overlap;
		if (pt->space == BMS_SPACE_BACNET_OBJECT)
			overlap = o->space == pt->space && o->object_type == pt->object_type &&
				  o->instance == pt->instance && o->property == pt->property;
		else
			overlap = o->space == pt->space && o->start < pt->start + pt->count &&
				  pt->start < o->start + o->count;
		if (overlap) {
			WARN_T(c, t, "point '%s' overlaps point '%s' declared at %s:%u", pt->full, o->full,
			       src_file(c, o->src), o->src.line);
			return;
		}
	}
}

/* point NAME holding|input ADDR [TYPE] [scale X] [offset X] [unit U] [range LO..HI]
 * point NAME coil|discrete ADDR
 * point NAME OBJECT-TYPE INSTANCE [PROPERTY] [unit U] [range LO..HI] */
static void st_point(struct cc *c, const struct stmt *s, int32_t dev)
{
	struct bms_policy_device *d = &c->p->devices[dev];
	struct tok *nt = st_at(s, 1);
	if (want_name(c, nt, "point") < 0)
		return;
	for (uint32_t i = d->point_first; i < c->p->npoints; i++)
		if (strcmp(c->p->points[i].name, nt->text) == 0) {
			ERR_T(c, nt, "point '%s.%s' is already declared at %s:%u", d->name, nt->text,
			      src_file(c, c->p->points[i].src), c->p->points[i].src.line);
			return;
		}
	struct pol_point pt;
	memset(&pt, 0, sizeof(pt));
	cpy(pt.name, sizeof(pt.name), nt->text);
	snprintf(pt.full, sizeof(pt.full), "%s.%s", d->name, pt.name);
	pt.device = (uint32_t)dev;
	pt.scale = 1.0;
	pt.src = here(c, nt);
	pt.key = pol_hash(pt.full, strlen(pt.full), 0);
	uint32_t i = 2;
	struct tok *kt = st_at(s, i);
	if (d->proto == BMS_PROTO_MODBUS) {
		int sp = modbus_space(kt);
		if (sp < 0) {
			err_unknown(c, kt, "register kind", modbus_space_words, 4, "holding, input, coil or discrete");
			return;
		}
		pt.space = (uint8_t)sp;
		struct tok *at = st_at(s, ++i);
		if (at->kind != T_WORD || parse_u32(at->text, 65535, &pt.start) < 0) {
			ERR_T(c, at, "'%s' is not a Modbus address (0..65535, as sent on the wire)", tok_show(at));
			return;
		}
		i++;
		bool bit = sp == BMS_SPACE_COIL || sp == BMS_SPACE_DISCRETE_INPUT;
		pt.dtype = bit ? POL_T_BIT : POL_T_UINT16;
		pt.count = 1;
	} else {
		if (modbus_space(kt) >= 0) {
			ERR_T(c, kt, "'%s' is a Modbus register kind; '%s' is a BACnet device: name a BACnet object type "
				     "(analog-value, binary-output, ...)", kt->text, d->name);
			return;
		}
		int64_t ot = pol_word_find(pol_object_types, kt->text);
		uint32_t num;
		if (ot < 0 && kt->kind == T_WORD && parse_u32(kt->text, 1023, &num) == 0)
			ot = num;
		if (ot < 0 || kt->kind != T_WORD) {
			const char *m = kt->kind == T_WORD ? nearest_word(kt->text, pol_object_types) : NULL;
			if (m)
				ERR_T(c, kt, "unknown BACnet object type '%s'; did you mean '%s'?", kt->text, m);
			else
				ERR_T(c, kt, "expected a BACnet object type (analog-value, binary-output, ...) at '%s'",
				      tok_show(kt));
			return;
		}
		pt.space = BMS_SPACE_BACNET_OBJECT;
		pt.object_type = (uint16_t)ot;
		struct tok *it = st_at(s, ++i);
		if (it->kind != T_WORD || parse_u32(it->text, 4194302, &pt.instance) < 0) {
			ERR_T(c, it, "'%s' is not a BACnet object instance (0..4194302)", tok_show(it));
			return;
		}
		i++;
		pt.property = 85; /* present-value */
		struct tok *pr = st_at(s, i);
		if (pr->kind == T_WORD && !is_point_opt(pr)) {
			int64_t pv = pol_word_find(pol_properties, pr->text);
			if (pv < 0 && parse_u32(pr->text, 4194303, &num) == 0)
				pv = num;
			if (pv < 0) {
				const char *m = nearest_word(pr->text, pol_properties);
				if (m)
					ERR_T(c, pr, "unknown BACnet property '%s'; did you mean '%s'?", pr->text, m);
				else
					ERR_T(c, pr, "unknown BACnet property or point option '%s'", pr->text);
				return;
			}
			pt.property = (uint32_t)pv;
			i++;
		}
		pt.dtype = POL_T_BACNET;
		pt.count = 0;
	}
	static const char *const opt_words[] = { "uint16", "int16", "uint32", "int32", "float32",
						 "scale", "offset", "unit", "range" };
	for (; i < s->n; i++) {
		struct tok *k = s->t[i], *v = st_at(s, i + 1);
		int dt = is(k, "uint16") ? POL_T_UINT16 : is(k, "int16") ? POL_T_INT16 : is(k, "uint32") ? POL_T_UINT32
		       : is(k, "int32") ? POL_T_INT32 : is(k, "float32") ? POL_T_FLOAT32 : -1;
		if (dt >= 0) {
			if (pt.dtype == POL_T_BIT || pt.dtype == POL_T_BACNET) {
				ERR_T(c, k, "a data type applies to holding and input registers only");
				return;
			}
			pt.dtype = (uint8_t)dt;
			pt.count = dt >= POL_T_UINT32 ? 2 : 1;
			continue;
		}
		if (is(k, "scale") || is(k, "offset")) {
			double x;
			if (v->kind != T_WORD || parse_double(v->text, &x) < 0) {
				ERR_T(c, v, "'%s' is not a number", tok_show(v));
				return;
			}
			if (pt.dtype == POL_T_BIT || pt.dtype == POL_T_BACNET) {
				ERR_T(c, k, "'%s' applies to Modbus registers only", k->text);
				return;
			}
			if (is(k, "scale") && x == 0) {
				ERR_T(c, v, "a scale of 0 would read every value as 0");
				return;
			}
			if (is(k, "scale"))
				pt.scale = x;
			else
				pt.offset = x;
			i++;
			continue;
		}
		if (is(k, "unit")) {
			if (v->kind != T_WORD && v->kind != T_STRING) {
				ERR_T(c, v, "expected an engineering unit such as degC at %s", tok_show(v));
				return;
			}
			if (strlen(v->text) >= sizeof(pt.unit)) {
				ERR_T(c, v, "unit '%s' is longer than %zu characters", v->text, sizeof(pt.unit) - 1);
				return;
			}
			cpy(pt.unit, sizeof(pt.unit), v->text);
			i++;
			continue;
		}
		if (is(k, "range")) {
			if (pt.dtype == POL_T_BIT) {
				ERR_T(c, k, "a coil or discrete input is on or off; it has no range");
				return;
			}
			if (parse_drange(c, v, &pt.lo, &pt.hi, "range") < 0)
				return;
			pt.has_range = true;
			i++;
			continue;
		}
		err_unknown(c, k, "point option", opt_words, 9,
			    d->proto == BMS_PROTO_MODBUS ? "a type (uint16, int16, uint32, int32, float32), scale, "
							   "offset, unit or range"
							 : "unit or range");
		return;
	}
	if (pt.space != BMS_SPACE_BACNET_OBJECT && (uint64_t)pt.start + pt.count > 65536) {
		ERR_T(c, nt, "point '%s' runs past address 65535", pt.full);
		return;
	}
	point_overlaps(c, d, &pt, nt);
	if (grow(c, (void **)&c->p->points, &c->cap_points, c->p->npoints, sizeof(pt)) < 0)
		return;
	c->p->points[c->p->npoints++] = pt;
	d->npoints++;
}

/* ---- rules ---- */

static const char *const op_words[] = { "read", "write", "command", "file", "discovery", "management", "private",
					"unknown", "any", "function", "service" };
static const char *const cond_words[] = { "value", "priority", "during", "outside", "limit", "min-interval" };

static bool is_cond(const struct tok *t)
{
	for (size_t i = 0; i < sizeof(cond_words) / sizeof(cond_words[0]); i++)
		if (is(t, cond_words[i]))
			return true;
	return false;
}

static int parse_duration(const char *s, int64_t *us)
{
	char *e;
	errno = 0;
	unsigned long long n = strtoull(s, &e, 10);
	if (e == s || errno != 0 || n == 0 || n > 100000000ULL || !isdigit((unsigned char)s[0]))
		return -1;
	int64_t mul;
	if (strcmp(e, "s") == 0)
		mul = 1;
	else if (strcmp(e, "m") == 0 || strcmp(e, "min") == 0)
		mul = 60;
	else if (strcmp(e, "h") == 0)
		mul = 3600;
	else if (strcmp(e, "d") == 0)
		mul = 86400;
	else
		return -1;
	*us = (int64_t)n * mul * 1000000;
	return 0;
}

static uint32_t ref_set(struct cc *c, struct ref *r, const struct tok *t)
{
	r->src = here(c, t);
	cpy(r->text, sizeof(r->text), t->text);
	return 0;
}

/* Operations: any | CLASS[, CLASS...] | function N[-M][, ...] | service NAME[, NAME...] */
static int parse_ops(struct cc *c, const struct stmt *s, uint32_t *i, struct pol_rule *r)
{
	struct tok *t = st_at(s, *i);
	if (is(t, "any")) {
		r->ops = 0xffff;
		(*i)++;
		return 0;
	}
	if (is(t, "function") || is(t, "fc")) {
		r->by_fc = true;
		for (;;) {
			(*i)++;
			uint32_t lo, hi;
			if (parse_urange(c, st_at(s, *i), 255, &lo, &hi, "a Modbus function code") < 0)
				return -1;
			for (uint32_t f = lo; f <= hi; f++)
				r->fcs[f / 64] |= UINT64_C(1) << (f % 64);
			(*i)++;
			if (st_at(s, *i)->kind != T_COMMA)
				return 0;
		}
	}
	if (is(t, "service")) {
		r->by_service = true;
		for (;;) {
			(*i)++;
			struct tok *v = st_at(s, *i);
			int64_t sv = pol_word_find(pol_confirmed_services, v->text);
			if (v->kind == T_WORD && sv >= 0) {
				r->svc_confirmed |= UINT64_C(1) << sv;
			} else if (v->kind == T_WORD && (sv = pol_word_find(pol_unconfirmed_services, v->text)) >= 0) {
				r->svc_unconfirmed |= UINT64_C(1) << sv;
			} else {
				const char *m = NULL;
				if (v->kind == T_WORD) {
					m = nearest_word(v->text, pol_confirmed_services);
					if (m == NULL)
						m = nearest_word(v->text, pol_unconfirmed_services);
				}
				if (m)
					ERR_T(c, v, "unknown BACnet service '%s'; did you mean '%s'?", v->text, m);
				else
					ERR_T(c, v, "expected a BACnet service name (writeProperty, who-Is, ...) at '%s'",
					      tok_show(v));
				return -1;
			}
			(*i)++;
			if (st_at(s, *i)->kind != T_COMMA)
				return 0;
		}
	}
	for (;;) {
		t = st_at(s, *i);
		enum bms_op op = t->kind == T_WORD ? bms_op_from_name(t->text) : BMS_OP_NONE;
		if (op == BMS_OP_NONE) {
			err_unknown(c, t, "operation", op_words, sizeof(op_words) / sizeof(op_words[0]),
				    "read, write, command, file, discovery, management, private, any, function N or "
				    "service NAME");
			return -1;
		}
		r->ops |= (uint16_t)(1u << op);
		(*i)++;
		if (st_at(s, *i)->kind != T_COMMA)
			return 0;
		(*i)++;
	}
}

/* [on] [all | DEVICE | DEVICE.POINT | DEVICE SPACE A[-B] | DEVICE OBJTYPE INST|* [PROP|*]] */
static int parse_target(struct cc *c, const struct stmt *s, uint32_t *i, struct pol_rule *r, struct rule_refs *rf)
{
	struct tok *t = st_at(s, *i);
	if (is(t, "on"))
		t = st_at(s, ++*i);
	r->tkind = POL_TGT_ALL;
	if (*i >= s->n || is_cond(t))
		return 0;
	if (is(t, "all")) {
		(*i)++;
		return 0;
	}
	if (t->kind != T_WORD) {
		ERR_T(c, t, "expected a device or device.point at %s", tok_show(t));
		return -1;
	}
	char a[MAX_TOKEN + 1];
	cpy(a, sizeof(a), t->text);
	char *dot = strchr(a, '.');
	if (dot != NULL) {
		*dot = '\0';
		struct tok dt = *t;
		cpy(dt.text, sizeof(dt.text), a);
		ref_set(c, &rf->device, &dt);
		rf->has_device = true;
		if (strcmp(dot + 1, "*") == 0) {
			r->tkind = POL_TGT_DEVICE;
		} else {
			struct tok ptk = *t;
			ptk.col += (uint32_t)(dot + 1 - a);
			cpy(ptk.text, sizeof(ptk.text), dot + 1);
			ref_set(c, &rf->point, &ptk);
			rf->has_point = true;
			r->tkind = POL_TGT_POINT;
		}
		(*i)++;
		return 0;
	}
	ref_set(c, &rf->device, t);
	rf->has_device = true;
	r->tkind = POL_TGT_DEVICE;
	(*i)++;
	t = st_at(s, *i);
	if (*i >= s->n || is_cond(t))
		return 0;
	int sp = modbus_space(t);
	if (sp >= 0) {
		r->tkind = POL_TGT_RANGE;
		r->space = (uint8_t)sp;
		(*i)++;
		if (parse_urange(c, st_at(s, *i), 65535, &r->lo, &r->hi, "a Modbus address") < 0)
			return -1;
		(*i)++;
		return 0;
	}
	if (is(t, "object")) { /* `object *`: any object */
		r->tkind = POL_TGT_OBJECT;
		r->any_object_type = true;
		r->instance = POL_ANY;
		r->property = POL_ANY;
		(*i)++;
		if (is(st_at(s, *i), "*"))
			(*i)++;
		return 0;
	}
	int64_t ot = t->kind == T_WORD ? pol_word_find(pol_object_types, t->text) : -1;
	if (ot >= 0) {
		r->tkind = POL_TGT_OBJECT;
		r->object_type = (uint16_t)ot;
		r->instance = POL_ANY;
		r->property = POL_ANY;
		struct tok *it = st_at(s, ++*i);
		if (*i >= s->n || is_cond(it))
			return 0;
		if (!is(it, "*") && (it->kind != T_WORD || parse_u32(it->text, 4194302, &r->instance) < 0)) {
			ERR_T(c, it, "'%s' is not a BACnet object instance (0..4194302) or *", tok_show(it));
			return -1;
		}
		struct tok *pr = st_at(s, ++*i);
		if (*i >= s->n || is_cond(pr))
			return 0;
		if (!is(pr, "*")) {
			int64_t pv = pol_word_find(pol_properties, pr->text);
			uint32_t num;
			if (pv < 0 && pr->kind == T_WORD && parse_u32(pr->text, 4194303, &num) == 0)
				pv = num;
			if (pv < 0 || pr->kind != T_WORD) {
				const char *m = pr->kind == T_WORD ? nearest_word(pr->text, pol_properties) : NULL;
				if (m)
					ERR_T(c, pr, "unknown BACnet property '%s'; did you mean '%s'?", pr->text, m);
				else
					ERR_T(c, pr, "expected a BACnet property or a condition at '%s'", tok_show(pr));
				return -1;
			}
			r->property = (uint32_t)pv;
		}
		(*i)++;
		return 0;
	}
	/* Nothing known: suggest from every word that may follow a device. */
	const char *words[128];
	size_t n = 0;
	for (size_t k = 0; k < 4; k++)
		words[n++] = modbus_space_words[k];
	for (size_t k = 0; k < sizeof(cond_words) / sizeof(cond_words[0]); k++)
		words[n++] = cond_words[k];
	for (const struct pol_word *w = pol_object_types; w->name && n < 128; w++)
		words[n++] = w->name;
	err_unknown(c, t, "target", words, n,
		    "a condition (value, priority, during, outside, limit, min-interval), a register kind or a "
		    "BACnet object type");
	return -1;
}

static int parse_conditions(struct cc *c, const struct stmt *s, uint32_t i, struct pol_rule *r, struct rule_refs *rf)
{
	for (; i < s->n; i++) {
		struct tok *k = s->t[i], *v = st_at(s, i + 1);
		if (k->kind == T_COMMA) {
			ERR_T(c, k, "a rule names one device or point; write one rule for each");
			return -1;
		}
		if (!r->allow && !is(k, "during") && !is(k, "outside") && is_cond(k)) {
			ERR_T(c, k, "'%s' limits what an allow rule lets through; a deny rule denies whatever it matches",
			      k->text);
			return -1;
		}
		if (is(k, "value")) {
			rf->value_src = here(c, v);
			if (is(v, "on") || is(v, "off")) {
				r->vlo = r->vhi = is(v, "on") ? 1 : 0;
				rf->value_onoff = true;
			} else if (parse_drange(c, v, &r->vlo, &r->vhi, "value range") < 0) {
				return -1;
			}
			r->has_value = true;
			i++;
		} else if (is(k, "priority")) {
			rf->prio_src = here(c, k);
			uint32_t lo, hi;
			if (parse_urange(c, v, 16, &lo, &hi, "a BACnet priority") < 0)
				return -1;
			if (lo < 1) {
				ERR_T(c, v, "BACnet priorities run from 1 (highest) to 16 (lowest); '%s' includes 0", v->text);
				return -1;
			}
			r->has_priority = true;
			r->plo = (uint8_t)lo;
			r->phi = (uint8_t)hi;
			i++;
		} else if (is(k, "during") || is(k, "outside")) {
			if (r->schedule >= 0 || rf->has_schedule) {
				ERR_T(c, k, "a rule takes one 'during' or 'outside'; name a schedule with several windows");
				return -1;
			}
			r->outside = is(k, "outside");
			i++;
			struct tok *after = st_at(s, i + 1);
			bool windows = after->kind == T_COMMA || (after->kind == T_WORD && looks_like_hours(after->text));
			if (v->kind == T_WORD && !looks_like_hours(v->text) && !is_days_word(v->text) && !windows) {
				ref_set(c, &rf->schedule, v);
				rf->has_schedule = true;
				continue;
			}
			struct pol_schedule sc;
			memset(&sc, 0, sizeof(sc));
			if (parse_windows(c, s, &i, &sc) < 0)
				return -1;
			i--;
			if (grow(c, (void **)&c->p->schedules, &c->cap_schedules, c->p->nschedules, sizeof(sc)) < 0)
				return -1;
			sc.src = here(c, v);
			sc.used = true;
			r->schedule = (int32_t)c->p->nschedules;
			c->p->schedules[c->p->nschedules++] = sc;
		} else if (is(k, "limit")) {
			uint32_t n;
			struct tok *per = st_at(s, i + 2), *unit = st_at(s, i + 3);
			if (v->kind != T_WORD || parse_u32(v->text, 1000000, &n) < 0 || n == 0) {
				ERR_T(c, v, "'%s' is not a count of requests (1..1000000)", tok_show(v));
				return -1;
			}
			if (!is(per, "per")) {
				ERR_T(c, per, "expected 'per' after the count, as in 'limit 10 per minute', at '%s'",
				      tok_show(per));
				return -1;
			}
			static const char *const units[] = { "second", "minute", "hour", "day" };
			static const int64_t secs[] = { 1, 60, 3600, 86400 };
			int u = -1;
			for (int k2 = 0; k2 < 4; k2++)
				if (is(unit, units[k2]))
					u = k2;
			if (u < 0) {
				err_unknown(c, unit, "period", units, 4, "second, minute, hour or day");
				return -1;
			}
			r->rate_n = n;
			r->rate_period_us = secs[u] * 1000000;
			i += 3;
		} else if (is(k, "min-interval")) {
			if (v->kind != T_WORD || parse_duration(v->text, &r->interval_us) < 0) {
				ERR_T(c, v, "'%s' is not a duration such as 30s, 5m, 1h or 1d", tok_show(v));
				return -1;
			}
			i++;
		} else {
			err_unknown(c, k, "condition", cond_words, sizeof(cond_words) / sizeof(cond_words[0]),
				    "value, priority, during, outside, limit or min-interval");
			return -1;
		}
	}
	return 0;
}

/* allow|deny WHO OPS [TARGET] [CONDITIONS] */
static void st_rule(struct cc *c, const struct stmt *s)
{
	struct pol_rule r;
	memset(&r, 0, sizeof(r));
	struct rule_refs rf;
	memset(&rf, 0, sizeof(rf));
	r.allow = is(s->t[0], "allow");
	r.schedule = -1;
	r.src = here(c, s->t[0]);
	uint32_t i = 1;
	struct tok *t = st_at(s, i);
	if (is(t, "anyone") || is(t, "everyone")) {
		r.anyone = true;
		i++;
	} else {
		for (;;) {
			t = st_at(s, i);
			if (want_name(c, t, "role") < 0)
				return;
			if (rf.nroles >= MAX_RULE_ROLES) {
				ERR_T(c, t, "more than %d roles in one rule", MAX_RULE_ROLES);
				return;
			}
			ref_set(c, &rf.roles[rf.nroles++], t);
			i++;
			if (st_at(s, i)->kind != T_COMMA)
				break;
			i++;
		}
	}
	if (parse_ops(c, s, &i, &r) < 0 || parse_target(c, s, &i, &r, &rf) < 0 ||
	    parse_conditions(c, s, i, &r, &rf) < 0)
		return;
	/* The rule's words, for messages and as its state key: stable as long as the rule reads the same. */
	size_t off = 0;
	char full[4096];
	full[0] = '\0';
	for (uint32_t k = 0; k < s->n && off < sizeof(full) - 1; k++) {
		const struct tok *w = s->t[k];
		bool glue = w->kind == T_COMMA;
		int m = snprintf(full + off, sizeof(full) - off, "%s%s%s%s", k == 0 || glue ? "" : " ",
				 w->kind == T_STRING ? "\"" : "", w->text, w->kind == T_STRING ? "\"" : "");
		if (m < 0)
			break;
		off += (size_t)m;
		if (off >= sizeof(full))
			off = sizeof(full) - 1;
	}
	r.key = pol_hash(full, strlen(full), 0);
	cpy(r.text, sizeof(r.text), full);
	if (strlen(full) >= sizeof(r.text))
		memcpy(r.text + sizeof(r.text) - 4, "...", 4);
	r.text_len = (uint8_t)strlen(r.text);
	if (grow(c, (void **)&c->p->rules, &c->cap_rules, c->p->nrules, sizeof(r)) < 0)
		return;
	/* The names a rule uses live beside it until they are resolved. */
	struct rule_refs *nr = realloc(c->refs, (size_t)c->cap_rules * sizeof(*nr));
	if (nr == NULL) {
		c->oom = true;
		return;
	}
	c->refs = nr;
	c->refs[c->p->nrules] = rf;
	c->p->rules[c->p->nrules++] = r;
}

/* ---- files ---- */

static int add_file(struct cc *c, const char *name)
{
	if (c->p->nfiles >= POL_MAX_FILES)
		return -1;
	if (grow(c, (void **)&c->p->files, &c->cap_files, c->p->nfiles, BMS_DIAG_FILE_MAX) < 0)
		return -1;
	cpy(c->p->files[c->p->nfiles], BMS_DIAG_FILE_MAX, name);
	return (int)c->p->nfiles++;
}

static void compile_text(struct cc *c, const char *text, size_t len);

static void st_include(struct cc *c, const struct stmt *s)
{
	struct tok *t = st_at(s, 1);
	if (t->kind != T_STRING && t->kind != T_WORD) {
		ERR_T(c, t, "expected a file name in quotes at %s", tok_show(t));
		return;
	}
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the file name", tok_show(s->t[2]));
		return;
	}
	if (c->depth >= MAX_INCLUDE_DEPTH) {
		ERR_T(c, t, "includes nested deeper than %d", MAX_INCLUDE_DEPTH);
		return;
	}
	/* The source resolves the name (relative names against the including file's folder). */
	const char *cur = c->p->files[c->file];
	struct bms_policy_text ft;
	memset(&ft, 0, sizeof(ft));
	char err[BMS_DIAG_MSG_MAX];
	int rc = c->src->read(c->src->ctx, cur, t->text, &ft, err, sizeof(err));
	if (rc == BMS_POLICY_SOURCE_NOMEM) {
		c->oom = true;
		return;
	}
	if (rc == BMS_POLICY_SOURCE_MISSING) {
		ERR_T(c, t, "%s", err);
		return;
	}
	for (int k = 0; ft.key[0] && k <= c->depth; k++)
		if (strcmp(c->include_stack[k], ft.key) == 0) {
			ERR_T(c, t, "include loop: '%s' is already being read (it included %s)", t->text, cur);
			if (rc == BMS_POLICY_SOURCE_OK)
				c->src->release(c->src->ctx, &ft);
			return;
		}
	int fi = add_file(c, ft.name);
	if (fi < 0) {
		ERR_T(c, t, "more than %d policy files", POL_MAX_FILES);
		if (rc == BMS_POLICY_SOURCE_OK)
			c->src->release(c->src->ctx, &ft);
		return;
	}
	if (rc != BMS_POLICY_SOURCE_OK) {
		diag_at(c, BMS_DIAG_ERROR, (uint16_t)fi, 0, 0, "%s", err);
		return;
	}
	/* Save the including file's position: the tokens are replaced while the included file is read. */
	struct tok *toks = c->toks;
	uint32_t ntoks = c->ntoks, pos = c->pos;
	uint16_t file = c->file;
	c->toks = NULL;
	c->file = (uint16_t)fi;
	c->depth++;
	cpy(c->include_stack[c->depth], BMS_POLICY_KEY_MAX, ft.key);
	EVP_DigestUpdate(c->sha, ft.name, strlen(ft.name) + 1);
	EVP_DigestUpdate(c->sha, ft.text, ft.len);
	compile_text(c, ft.text, ft.len);
	c->depth--;
	c->src->release(c->src->ctx, &ft);
	free(c->toks);
	c->toks = toks;
	c->ntoks = ntoks;
	c->pos = pos;
	c->file = file;
}

static const char *const top_words[] = { "site", "timezone", "mode", "include", "accept", "schedule",
					 "role", "device", "allow", "deny" };

/* Reads the tokens of one statement into s (pointers into c->toks). */
static int next_stmt(struct cc *c, struct stmt *s, struct tok ***buf, uint32_t *cap)
{
	s->n = 0;
	while (c->toks[c->pos].kind == T_NL)
		c->pos++;
	if (c->toks[c->pos].kind == T_EOF) {
		s->end = &c->toks[c->pos];
		return 0;
	}
	bool rule = is(&c->toks[c->pos], "allow") || is(&c->toks[c->pos], "deny");
	for (;;) {
		struct tok *t = &c->toks[c->pos];
		if (t->kind == T_EOF)
			break;
		if (t->kind == T_NL) {
			/* A rule goes on over lines that start with one of its conditions. */
			uint32_t q = c->pos;
			while (c->toks[q].kind == T_NL)
				q++;
			if (rule && is_cond(&c->toks[q])) {
				c->pos = q;
				continue;
			}
			break;
		}
		if (s->n == *cap) {
			uint32_t ncap = *cap ? *cap * 2 : 32;
			struct tok **nb = realloc(*buf, ncap * sizeof(*nb));
			if (nb == NULL) {
				c->oom = true;
				return -1;
			}
			*buf = nb;
			*cap = ncap;
		}
		(*buf)[s->n++] = t;
		c->pos++;
		/* `{` ends the line's statement; `}` is a statement of its own. */
		if (t->kind == T_LBRACE || (t->kind == T_RBRACE && s->n == 1))
			break;
		if (c->toks[c->pos].kind == T_RBRACE)
			break;
	}
	s->t = *buf;
	s->end = &c->toks[c->pos];
	return (int)s->n;
}

static void compile_text(struct cc *c, const char *text, size_t len)
{
	struct tok **buf = NULL;
	uint32_t cap = 0;
	if (lex(c, text, len) < 0)
		return;
	c->pos = 0;
	int32_t dev = -1, role = -1;
	bool in_block = false, skip_block = false;
	struct tok *open = NULL;
	struct stmt s;
	while (!c->oom && next_stmt(c, &s, &buf, &cap) > 0) {
		struct tok *k = s.t[0];
		bool opens = s.t[s.n - 1]->kind == T_LBRACE;
		if (k->kind == T_RBRACE) {
			if (!in_block)
				ERR_T(c, k, "'}' without a device or role block to close");
			in_block = skip_block = false;
			dev = role = -1;
			continue;
		}
		if (opens)
			s.n--; /* the statement proper, without its `{` */
		if (in_block && opens) {
			/* Most likely the block above lacks its `}`: say so, close it, read on. */
			ERR_T(c, open, "the block opened by '%s' on this line is not closed with '}'", open->text);
			in_block = skip_block = false;
			dev = role = -1;
		}
		if (in_block) {
			if (skip_block)
				continue;
			if (dev >= 0) {
				if (is(k, "point"))
					st_point(c, &s, dev);
				else if (is(k, "mode")) {
					if (parse_mode(c, st_at(&s, 1), &c->p->devices[dev].mode) == 0 && s.n > 2)
						ERR_T(c, s.t[2], "unexpected '%s' after the mode", tok_show(s.t[2]));
				} else {
					static const char *const words[] = { "point", "mode" };
					if (is(k, "allow") || is(k, "deny") || is(k, "device") || is(k, "role"))
						ERR_T(c, k, "'%s' cannot go inside a device block (only point and mode can); "
							     "is a '}' missing above?", k->text);
					else
						err_unknown(c, k, "statement", words, 2, "point or mode");
				}
			} else if (role >= 0) {
				st_member(c, &s, role);
			}
			continue;
		}
		if (is(k, "device")) {
			dev = st_device(c, &s);
		} else if (is(k, "role")) {
			role = st_role(c, &s);
			if (role >= 0 && !opens) {
				if (s.n > 2)
					ERR_T(c, s.t[2], "expected '{' after the role name, with one member a line");
				else
					ERR_T(c, s.t[1], "role '%s' needs its members in a block: role %s { ... }",
					      s.t[1]->text, s.t[1]->text);
			}
		} else if (opens) {
			ERR_T(c, s.t[s.n], "'{' after a statement that takes no block (only device and role take one)");
			opens = false;
			if (is(k, "allow") || is(k, "deny"))
				st_rule(c, &s);
		} else if (is(k, "allow") || is(k, "deny")) {
			st_rule(c, &s);
		} else if (is(k, "site")) {
			st_site(c, &s);
		} else if (is(k, "timezone")) {
			st_timezone(c, &s);
		} else if (is(k, "mode")) {
			st_mode(c, &s);
		} else if (is(k, "include")) {
			st_include(c, &s);
			if (c->oom)
				break;
		} else if (is(k, "accept")) {
			st_accept(c, &s);
		} else if (is(k, "schedule")) {
			st_schedule(c, &s);
		} else if (is(k, "point") || is(k, "certificate-role") || is(k, "subject") || is(k, "address")) {
			ERR_T(c, k, "'%s' belongs inside a %s block", k->text, is(k, "point") ? "device" : "role");
		} else {
			err_unknown(c, k, "statement", top_words, sizeof(top_words) / sizeof(top_words[0]),
				    "device, role, schedule, allow, deny, site, timezone, mode, include or accept");
		}
		if (opens) {
			in_block = true;
			open = k;
			skip_block = (is(k, "device") && dev < 0) || (is(k, "role") && role < 0) ||
				     (!is(k, "device") && !is(k, "role"));
			if (!is(k, "device"))
				dev = -1;
			if (!is(k, "role"))
				role = -1;
		} else {
			dev = role = -1;
		}
	}
	if (in_block && open != NULL && !c->oom)
		ERR_T(c, open, "the block opened by '%s' on this line is not closed with '}'", open->text);
	free(buf);
}

/* ---- after every file: resolve names, build indexes, warn ---- */

static int32_t resolve_role(struct cc *c, const struct ref *rf)
{
	int32_t r = pol_role_find(c->p, rf->text);
	if (r >= 0)
		return r;
	/* A role no block declares: the certificate role of that name, with a warning
	 * because it may as well be a typing error. */
	const char *names[POL_MAX_ROLES];
	for (uint32_t k = 0; k < c->p->nroles; k++)
		names[k] = c->p->roles[k].declared ? c->p->roles[k].name : NULL;
	const char *m = nearest(rf->text, names, c->p->nroles);
	if (m)
		WARN_S(c, rf->src, "role '%s' is not declared; it matches clients whose certificate carries role '%s'. "
				   "Did you mean '%s'?", rf->text, rf->text, m);
	else
		WARN_S(c, rf->src, "role '%s' is not declared; it matches clients whose certificate carries role '%s'",
		       rf->text, rf->text);
	if (c->p->nroles >= POL_MAX_ROLES) {
		ERR_S(c, rf->src, "more than %d roles", POL_MAX_ROLES);
		return -1;
	}
	if (grow(c, (void **)&c->p->roles, &c->cap_roles, c->p->nroles, sizeof(struct pol_role)) < 0 ||
	    grow(c, (void **)&c->p->members, &c->cap_members, c->p->nmembers, sizeof(struct pol_member)) < 0)
		return -1;
	struct pol_role *ro = &c->p->roles[c->p->nroles];
	memset(ro, 0, sizeof(*ro));
	cpy(ro->name, sizeof(ro->name), rf->text);
	ro->src = rf->src;
	ro->member_first = c->p->nmembers;
	ro->nmembers = 1;
	struct pol_member *mb = &c->p->members[c->p->nmembers++];
	memset(mb, 0, sizeof(*mb));
	mb->kind = POL_M_CERT_ROLE;
	cpy(mb->text, sizeof(mb->text), rf->text);
	return (int32_t)c->p->nroles++;
}

/* Device names in order, so that resolving 10,000 rules over 5,000 devices is not 50 million compares. */
static int cmp_dev_name(const void *a, const void *b, void *arg)
{
	const struct bms_policy *p = arg;
	return strcmp(p->devices[*(const uint32_t *)a].name, p->devices[*(const uint32_t *)b].name);
}

static int32_t find_device_sorted(struct cc *c, const char *name)
{
	if (c->dev_sorted == NULL)
		return find_device(c->p, name);
	uint32_t lo = 0, hi = c->p->ndevices;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int r = strcmp(c->p->devices[c->dev_sorted[mid]].name, name);
		if (r == 0)
			return (int32_t)c->dev_sorted[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int resolve_rule(struct cc *c, uint32_t ri)
{
	struct pol_rule *r = &c->p->rules[ri];
	struct rule_refs *rf = &c->refs[ri];
	for (uint32_t k = 0; k < rf->nroles; k++) {
		int32_t ro = resolve_role(c, &rf->roles[k]);
		if (ro < 0)
			return -1;
		c->p->roles[ro].used = true;
		r->roles[ro / 64] |= UINT64_C(1) << (ro % 64);
	}
	if (rf->has_schedule) {
		int32_t sc = find_schedule(c->p, rf->schedule.text);
		if (sc < 0) {
			const char *names[256];
			size_t n = 0;
			for (uint32_t k = 0; k < c->p->nschedules && n < 256; k++)
				names[n++] = c->p->schedules[k].name;
			const char *m = nearest(rf->schedule.text, names, n);
			if (m)
				ERR_S(c, rf->schedule.src, "unknown schedule '%s'; did you mean '%s'?", rf->schedule.text, m);
			else
				ERR_S(c, rf->schedule.src, "unknown schedule '%s' (declare it with: schedule %s mon-fri "
							   "07:00-19:00)", rf->schedule.text, rf->schedule.text);
			return -1;
		}
		c->p->schedules[sc].used = true;
		r->schedule = sc;
	}
	if (!rf->has_device) {
		if (r->has_value || r->has_priority) {
			ERR_S(c, rf->value_src.line ? rf->value_src : r->src,
			      "a value or priority limit needs a point, a register range or a BACnet object to apply to");
			return -1;
		}
		return 0;
	}
	int32_t d = find_device_sorted(c, rf->device.text);
	if (d < 0) {
		const char *names[1024];
		size_t n = 0;
		for (uint32_t k = 0; k < c->p->ndevices && n < 1024; k++)
			names[n++] = c->p->devices[k].name;
		const char *m = nearest(rf->device.text, names, n);
		if (m)
			ERR_S(c, rf->device.src, "unknown device '%s'; did you mean '%s'?", rf->device.text, m);
		else
			ERR_S(c, rf->device.src, "unknown device '%s'", rf->device.text);
		return -1;
	}
	struct bms_policy_device *dv = &c->p->devices[d];
	dv->used = true;
	r->device = (uint32_t)d;
	if (dv->proto == BMS_PROTO_MODBUS && (r->by_service || r->tkind == POL_TGT_OBJECT)) {
		ERR_S(c, rf->device.src, "'%s' is a Modbus device: BACnet services and objects do not apply to it",
		      dv->name);
		return -1;
	}
	if (dv->proto == BMS_PROTO_BACNET && (r->by_fc || r->tkind == POL_TGT_RANGE)) {
		ERR_S(c, rf->device.src, "'%s' is a BACnet device: Modbus function codes and registers do not apply to it",
		      dv->name);
		return -1;
	}
	if (rf->has_point) {
		int32_t pi = -1;
		const char *names[1024];
		size_t n = 0;
		for (uint32_t k = dv->point_first; k < dv->point_first + dv->npoints; k++) {
			if (strcmp(c->p->points[k].name, rf->point.text) == 0)
				pi = (int32_t)k;
			if (n < 1024)
				names[n++] = c->p->points[k].name;
		}
		if (pi < 0) {
			const char *m = nearest(rf->point.text, names, n);
			if (m)
				ERR_S(c, rf->point.src, "device '%s' has no point '%s'; did you mean '%s'?", dv->name,
				      rf->point.text, m);
			else
				ERR_S(c, rf->point.src, "device '%s' has no point '%s'", dv->name, rf->point.text);
			return -1;
		}
		c->p->points[pi].used = true;
		r->point = (uint32_t)pi;
		const struct pol_point *pt = &c->p->points[pi];
		if (r->has_value && rf->value_onoff != (pt->dtype == POL_T_BIT) && pt->dtype != POL_T_BACNET) {
			ERR_S(c, rf->value_src, pt->dtype == POL_T_BIT ? "'%s' is a coil: its value is on or off"
								      : "'%s' holds a number: write its value range "
									"such as 15..30, not on or off",
			      pt->full);
			return -1;
		}
		if (r->has_value && pt->has_range && (r->vlo < pt->lo || r->vhi > pt->hi) && r->vlo <= r->vhi) {
			char a[32], b[32];
			pol_fmt_num(a, sizeof(a), pt->lo);
			pol_fmt_num(b, sizeof(b), pt->hi);
			WARN_S(c, rf->value_src, "value range goes beyond the range %s..%s of point '%s'; writes outside "
						 "%s..%s stay denied", a, b, pt->full, a, b);
		}
	}
	if (r->has_priority && dv->proto != BMS_PROTO_BACNET) {
		ERR_S(c, rf->prio_src, "'priority' is a BACnet write priority; '%s' is a Modbus device", dv->name);
		return -1;
	}
	if ((r->has_value || r->has_priority) && r->tkind == POL_TGT_DEVICE) {
		ERR_S(c, rf->value_src.line ? rf->value_src : r->src,
		      "a value or priority limit needs a point, a register range or a BACnet object to apply to");
		return -1;
	}
	if (r->tkind == POL_TGT_RANGE && r->has_value && rf->value_onoff !=
	    (r->space == BMS_SPACE_COIL || r->space == BMS_SPACE_DISCRETE_INPUT)) {
		ERR_S(c, rf->value_src, rf->value_onoff ? "'on' and 'off' are values of coils" :
			"a coil's value is on or off");
		return -1;
	}
	return 0;
}

/* Does rule a decide every request rule b could match? (Then b can never match.) */
static bool covers(const struct bms_policy *p, const struct pol_rule *a, const struct pol_rule *b)
{
	if (a->schedule >= 0 && !(b->schedule == a->schedule && b->outside == a->outside))
		return false;
	if (!a->anyone) {
		if (b->anyone)
			return false;
		for (int w = 0; w < POL_ROLE_WORDS; w++)
			if (b->roles[w] & ~a->roles[w])
				return false;
	}
	/* operations */
	if (a->ops != 0xffff) {
		if (a->by_fc != b->by_fc || a->by_service != b->by_service)
			return false;
		if (a->by_fc) {
			for (int w = 0; w < 4; w++)
				if (b->fcs[w] & ~a->fcs[w])
					return false;
		} else if (a->by_service) {
			if ((b->svc_confirmed & ~a->svc_confirmed) || (b->svc_unconfirmed & ~a->svc_unconfirmed))
				return false;
		} else if (b->ops & ~a->ops) {
			return false;
		}
	}
	/* place */
	if (a->tkind == POL_TGT_ALL)
		return true;
	if (b->tkind == POL_TGT_ALL || a->device != b->device)
		return false;
	if (a->tkind == POL_TGT_DEVICE)
		return true;
	const struct pol_point *bp = b->tkind == POL_TGT_POINT ? &p->points[b->point] : NULL;
	switch (a->tkind) {
	case POL_TGT_POINT: {
		const struct pol_point *ap = &p->points[a->point];
		if (bp != NULL)
			return bp == ap;
		if (b->tkind == POL_TGT_RANGE && ap->space != BMS_SPACE_BACNET_OBJECT)
			return b->space == ap->space && b->lo >= ap->start && b->hi < ap->start + ap->count &&
			       b->lo <= b->hi;
		return false;
	}
	case POL_TGT_RANGE:
		if (a->lo > a->hi)
			return false;
		if (bp != NULL)
			return bp->space == a->space && bp->start >= a->lo && bp->start + bp->count - 1 <= a->hi;
		return b->tkind == POL_TGT_RANGE && b->space == a->space && b->lo >= a->lo && b->hi <= a->hi;
	case POL_TGT_OBJECT: {
		uint16_t bt;
		uint32_t bi, bpr;
		bool bany;
		if (bp != NULL) {
			bt = bp->object_type, bi = bp->instance, bpr = bp->property, bany = false;
		} else if (b->tkind == POL_TGT_OBJECT) {
			bt = b->object_type, bi = b->instance, bpr = b->property, bany = b->any_object_type;
		} else {
			return false;
		}
		if (!a->any_object_type && (bany || bt != a->object_type))
			return false;
		if (a->instance != POL_ANY && bi != a->instance)
			return false;
		if (a->property != POL_ANY && bpr != a->property)
			return false;
		return true;
	}
	}
	return false;
}

static void finish(struct cc *c)
{
	struct bms_policy *p = c->p;
	bool ok = true;
	c->dev_sorted = malloc((p->ndevices ? p->ndevices : 1) * sizeof(uint32_t));
	if (c->dev_sorted != NULL) {
		for (uint32_t i = 0; i < p->ndevices; i++)
			c->dev_sorted[i] = i;
		qsort_r(c->dev_sorted, p->ndevices, sizeof(uint32_t), cmp_dev_name, p);
	}
	for (uint32_t i = 0; i < p->nrules; i++)
		if (resolve_rule(c, i) < 0) {
			ok = false;
			p->rules[i].tkind = 0xff; /* unusable; the compile fails anyway */
		}
	free(c->dev_sorted);
	c->dev_sorted = NULL;
	if (c->oom || !ok)
		return;
	if (pol_build_identity_index(p) < 0 || pol_build_device_index(p) < 0) {
		c->oom = true;
		return;
	}
	/* Warnings about the whole policy wait until it compiles: before that they are mostly echoes of errors. */
	bool quiet = c->d->errors > c->errors_before;
	/* Per device, the rules that can apply there, in order: one pass over the rules, not one per device. */
	uint32_t nglobal = 0;
	uint32_t *per_dev = calloc(p->ndevices ? p->ndevices : 1, sizeof(uint32_t));
	if (per_dev == NULL) {
		c->oom = true;
		return;
	}
	for (uint32_t i = 0; i < p->nrules; i++)
		p->rules[i].tkind == POL_TGT_ALL ? nglobal++ : per_dev[p->rules[i].device]++;
	for (uint32_t d = 0; d < p->ndevices; d++) {
		struct bms_policy_device *dv = &p->devices[d];
		if (dv->mode < 0)
			dv->mode = p->site_mode; /* a device that says nothing follows the site */
		uint32_t n = nglobal + per_dev[d];
		dv->rules = n ? malloc(n * sizeof(uint32_t)) : NULL;
		if (n && dv->rules == NULL) {
			c->oom = true;
			free(per_dev);
			return;
		}
		dv->nrules = 0;
		if (dv->proto == BMS_PROTO_BACNET) {
			/* Two declarations at one address and port are told apart by instance only. */
			for (uint32_t o = 0; o < d; o++) {
				const struct bms_policy_device *ov = &p->devices[o];
				if (ov->proto == dv->proto && ov->addr_len == dv->addr_len &&
				    memcmp(&ov->addr, &dv->addr, dv->addr_len) == 0 &&
				    (!ov->has_instance || !dv->has_instance || ov->instance == dv->instance))
					WARN_S(c, dv->src, "device '%s' has the same address as '%s'; requests go to "
							   "the first one declared", dv->name, ov->name);
			}
		} else {
			for (uint32_t o = 0; o < d; o++) {
				const struct bms_policy_device *ov = &p->devices[o];
				bool share = false;
				for (int w = 0; w < 4; w++)
					share |= (ov->units[w] & dv->units[w]) != 0;
				if (ov->proto == dv->proto && share && ov->addr_len == dv->addr_len &&
				    memcmp(&ov->addr, &dv->addr, dv->addr_len) == 0)
					WARN_S(c, dv->src, "device '%s' shares address and unit id with '%s'; requests go "
							   "to the first one declared", dv->name, ov->name);
			}
		}
	}
	free(per_dev);
	for (uint32_t i = 0; i < p->nrules; i++) {
		if (p->rules[i].tkind == POL_TGT_ALL) {
			for (uint32_t d = 0; d < p->ndevices; d++)
				p->devices[d].rules[p->devices[d].nrules++] = i;
		} else {
			struct bms_policy_device *dv = &p->devices[p->rules[i].device];
			dv->rules[dv->nrules++] = i;
		}
	}
	/* Shadowed rules: an earlier rule that decides everything this one covers. Only rules that
	 * can meet share a device's list, so each list is searched, not every pair in the file. */
	for (uint32_t b = 0; b < p->nrules && !quiet; b++) {
		const struct pol_rule *rb = &p->rules[b];
		const uint32_t *list = NULL;
		uint32_t nlist = 0;
		if (rb->tkind != POL_TGT_ALL) {
			list = p->devices[rb->device].rules;
			nlist = p->devices[rb->device].nrules;
		}
		for (uint32_t k = 0;; k++) {
			uint32_t a;
			if (list != NULL) {
				if (k >= nlist || list[k] >= b)
					break;
				a = list[k];
			} else {
				/* a rule on every device is covered only by an earlier rule on every device */
				if (k >= b)
					break;
				a = k;
				if (p->rules[a].tkind != POL_TGT_ALL)
					continue;
			}
			if (covers(p, &p->rules[a], rb)) {
				WARN_S(c, rb->src, "this rule can never match: the rule at %s:%u decides every "
						   "request it covers", src_file(c, p->rules[a].src), p->rules[a].src.line);
				break;
			}
		}
	}
	for (uint32_t d = 0; d < p->ndevices && !quiet; d++)
		if (p->devices[d].nrules == 0)
			WARN_S(c, p->devices[d].src, "no rule applies to device '%s': every request to it is denied",
			       p->devices[d].name);
	for (uint32_t i = 0; i < p->nroles; i++) {
		const struct pol_role *r = &p->roles[i];
		if (r->declared && !r->used && !quiet)
			WARN_S(c, r->src, "role '%s' is declared but no rule names it", r->name);
		if (r->declared && r->nmembers == 0)
			WARN_S(c, r->src, "role '%s' has no members: nobody holds it", r->name);
	}
	/* Hours without a zone are UTC hours: in most buildings an hour or two off the wall clock. */
	if (!c->tz_set && !quiet)
		for (uint32_t i = 0; i < p->nschedules; i++)
			if (p->schedules[i].used) {
				WARN_S(c, p->schedules[i].src, "no timezone is set: these hours are UTC, not the site's "
							       "wall clock (add e.g. 'timezone Europe/Berlin')");
				break;
			}
	for (uint32_t i = 0; i < p->nschedules; i++)
		if (!p->schedules[i].used && !quiet)
			WARN_S(c, p->schedules[i].src, "schedule '%s' is declared but no rule uses it",
			       p->schedules[i].name);
}

/* Diagnostics in file order, then line and column: the order a reader fixes them in. */
static int diag_cmp(const struct bms_diag_entry *a, const struct bms_diag_entry *b, const struct bms_policy *p)
{
	uint32_t fa = 0, fb = 0;
	for (uint32_t i = 0; i < p->nfiles; i++) {
		if (strcmp(p->files[i], a->file) == 0 && fa == 0)
			fa = i + 1;
		if (strcmp(p->files[i], b->file) == 0 && fb == 0)
			fb = i + 1;
	}
	if (fa != fb)
		return fa < fb ? -1 : 1;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

static void sort_diags(struct bms_diag *d, size_t from, const struct bms_policy *p)
{
	/* Insertion sort: stable, and a compile reports at most BMS_DIAG_LIMIT entries. */
	for (size_t i = from + 1; i < d->n; i++) {
		struct bms_diag_entry e = d->v[i];
		size_t j = i;
		while (j > from && diag_cmp(&d->v[j - 1], &e, p) > 0) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = e;
	}
}

void bms_policy_free(struct bms_policy *p)
{
	if (p == NULL)
		return;
	for (uint32_t i = 0; i < p->ndevices; i++)
		free(p->devices[i].rules);
	free(p->files);
	free(p->devices);
	free(p->points);
	free(p->roles);
	free(p->members);
	free(p->schedules);
	free(p->rules);
	free(p->global_rules);
	free(p->idx);
	free(p->addr_members);
	free(p->devidx);
	free(p);
}

int bms_policy_compile(const struct bms_policy_source *src, const char *const *names, size_t nnames,
		       struct bms_policy **out, struct bms_diag *diags)
{
	int rc = -EINVAL;
	*out = NULL;
	size_t first_diag = diags->n, errors_before = diags->errors;
	struct cc c;
	memset(&c, 0, sizeof(c));
	c.d = diags;
	c.errors_before = diags->errors;
	c.src = src;
	c.p = calloc(1, sizeof(*c.p));
	c.sha = EVP_MD_CTX_new();
	if (c.p == NULL || c.sha == NULL || EVP_DigestInit_ex(c.sha, EVP_sha256(), NULL) != 1) {
		rc = -ENOMEM;
		goto fail;
	}
	pol_tz_utc(&c.p->tz);
	{
		/* Serial numbers start at 1 and never repeat in a process, also across threads. */
		static uint64_t serials;
		c.p->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
	}
	for (size_t f = 0; f < nnames && !c.oom; f++) {
		int fi = add_file(&c, names[f]);
		if (fi < 0) {
			diag_at(&c, BMS_DIAG_ERROR, 0, 0, 0, "more than %d policy files", POL_MAX_FILES);
			break;
		}
		c.file = (uint16_t)fi;
		struct bms_policy_text ft;
		memset(&ft, 0, sizeof(ft));
		char err[BMS_DIAG_MSG_MAX];
		int r = src->read(src->ctx, NULL, names[f], &ft, err, sizeof(err));
		if (r == BMS_POLICY_SOURCE_NOMEM) {
			c.oom = true;
			break;
		}
		if (r != BMS_POLICY_SOURCE_OK) {
			diag_at(&c, BMS_DIAG_ERROR, c.file, 0, 0, "%s", err);
			continue;
		}
		cpy(c.include_stack[0], BMS_POLICY_KEY_MAX, ft.key[0] ? ft.key : names[f]);
		c.depth = 0;
		EVP_DigestUpdate(c.sha, names[f], strlen(names[f]) + 1);
		EVP_DigestUpdate(c.sha, ft.text, ft.len);
		compile_text(&c, ft.text, ft.len);
		src->release(src->ctx, &ft);
		free(c.toks);
		c.toks = NULL;
	}
	if (!c.oom)
		finish(&c);
	if (c.oom) {
		rc = -ENOMEM;
		goto fail;
	}
	unsigned char md[32];
	unsigned mdlen = 0;
	if (EVP_DigestFinal_ex(c.sha, md, &mdlen) != 1 || mdlen != 32) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < 32; i++)
		snprintf(c.p->hash + 2 * i, 3, "%02x", md[i]);
	sort_diags(diags, first_diag, c.p);
	if (diags->errors > errors_before)
		goto fail;
	EVP_MD_CTX_free(c.sha);
	free(c.refs);
	*out = c.p;
	return 0;
fail:
	if (c.p != NULL)
		sort_diags(diags, first_diag, c.p);
	EVP_MD_CTX_free(c.sha);
	free(c.refs);
	free(c.toks);
	bms_policy_free(c.p);
	return rc;
}
