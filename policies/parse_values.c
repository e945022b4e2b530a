/* policies/parse_values.c: the words inside statements: names, numbers, ranges,
 * days and hours, addresses, register kinds; and the "unknown X" message with its suggestion. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policies/compile_int.h"

const char *pol_nearest_word(const char *s, const struct pol_word *w)
{
	const char *names[256];
	size_t n = 0;
	for (; w->name != NULL && n < 256; w++)
		names[n++] = w->name;
	return bms_suggest(s, names, n);
}

/* "unknown X 'tok'; did you mean 'Y'?" or "unknown X 'tok' (expected A, B or C)". */
void pol_err_unknown(struct cc *c, const struct bms_tok *t, const char *what, const char *const *words, size_t n,
		     const char *expected)
{
	const char *m = t->kind == BMS_TOK_WORD ? bms_suggest(t->text, words, n) : NULL;
	if (m != NULL)
		ERR_T(c, t, "unknown %s '%s'; did you mean '%s'?", what, bms_tok_show(t), m);
	else if (t->kind == BMS_TOK_NL || t->kind == BMS_TOK_EOF)
		ERR_T(c, t, "expected %s at %s", expected, bms_tok_show(t));
	else
		ERR_T(c, t, "unknown %s '%s' (expected %s)", what, bms_tok_show(t), expected);
}

bool pol_valid_name(const char *s)
{
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (const char *q = s; *q; q++)
		if (!(isalnum((unsigned char)*q) || *q == '_' || *q == '-'))
			return false;
	return strlen(s) < POL_NAME_MAX;
}

int pol_want_name(struct cc *c, const struct bms_tok *t, const char *what)
{
	if (t->kind != BMS_TOK_WORD) {
		ERR_T(c, t, "expected a %s name at %s", what, bms_tok_show(t));
		return -1;
	}
	if (!pol_valid_name(t->text)) {
		ERR_T(c, t, "'%s' is not a valid %s name (letters, digits, '_' and '-', starting with a letter, "
			     "at most %d characters)", t->text, what, POL_NAME_MAX - 1);
		return -1;
	}
	return 0;
}

int pol_parse_double(const char *s, double *out)
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

int pol_parse_u32(const char *s, uint32_t max, uint32_t *out)
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
int pol_parse_drange(struct cc *c, const struct bms_tok *t, double *lo, double *hi, const char *what)
{
	char a[BMS_TOK_MAX + 1];
	cpy(a, sizeof(a), t->text);
	char *dots = strstr(a, "..");
	if (t->kind != BMS_TOK_WORD) {
		ERR_T(c, t, "expected a %s such as 15..30 at %s", what, bms_tok_show(t));
		return -1;
	}
	if (dots == NULL) {
		if (pol_parse_double(a, lo) < 0) {
			ERR_T(c, t, "'%s' is not a number or a range such as 15..30", t->text);
			return -1;
		}
		*hi = *lo;
		return 0;
	}
	*dots = '\0';
	if (pol_parse_double(a, lo) < 0 || pol_parse_double(dots + 2, hi) < 0) {
		ERR_T(c, t, "'%s' is not a range such as 15..30", t->text);
		return -1;
	}
	if (*lo > *hi)
		WARN_T(c, t, "inverted range %s: it contains no value; did you mean %s..%s?", t->text, dots + 2, a);
	return 0;
}

/* "A-B", "A..B" or "A" over unsigned integers. */
int pol_parse_urange(struct cc *c, const struct bms_tok *t, uint32_t max, uint32_t *lo, uint32_t *hi, const char *what)
{
	char a[BMS_TOK_MAX + 1];
	if (t->kind != BMS_TOK_WORD) {
		ERR_T(c, t, "expected %s at %s", what, bms_tok_show(t));
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
	if (pol_parse_u32(a, max, lo) < 0 || (sep != NULL && pol_parse_u32(sep + skip, max, hi) < 0)) {
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

static int parse_days_word(struct cc *c, const struct bms_tok *t, uint8_t *mask)
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
	char a[BMS_TOK_MAX + 1];
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
		const char *m = bms_suggest(bad, words, sizeof(words) / sizeof(words[0]));
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
bool pol_is_days_word(const char *s)
{
	if (strcasecmp(s, "daily") == 0 || strcasecmp(s, "everyday") == 0 || strcasecmp(s, "weekdays") == 0 ||
	    strcasecmp(s, "weekends") == 0)
		return true;
	char a[BMS_TOK_MAX + 1];
	cpy(a, sizeof(a), s);
	char *dash = strchr(a, '-');
	if (dash != NULL)
		*dash++ = '\0';
	return day_index(a) >= 0 && (dash == NULL || day_index(dash) >= 0);
}

bool pol_looks_like_hours(const char *s)
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
int pol_parse_windows(struct cc *c, const struct stmt *s, uint32_t *i, struct pol_schedule *sc)
{
	sc->nwin = 0;
	for (;;) {
		uint8_t days = 0;
		struct bms_tok *t = st_at(s, *i);
		if (t->kind != BMS_TOK_WORD) {
			ERR_T(c, t, "expected days such as mon-fri at %s", bms_tok_show(t));
			return -1;
		}
		if (pol_looks_like_hours(t->text)) {
			days = 0x7f; /* hours alone: every day */
		} else {
			for (;;) {
				if (parse_days_word(c, t, &days) < 0)
					return -1;
				(*i)++;
				if (st_at(s, *i)->kind != BMS_TOK_COMMA)
					break;
				(*i)++;
				t = st_at(s, *i);
			}
			t = st_at(s, *i);
		}
		char a[BMS_TOK_MAX + 1];
		cpy(a, sizeof(a), t->text);
		char *dash = strchr(a, '-');
		uint16_t from, to;
		if (t->kind != BMS_TOK_WORD || dash == NULL) {
			ERR_T(c, t, "expected hours such as 07:00-19:00 at %s", bms_tok_show(t));
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
		if (st_at(s, *i)->kind != BMS_TOK_COMMA)
			return 0;
		(*i)++;
	}
}

/* ---- addresses ---- */

int pol_parse_ip(const char *s, uint8_t *family, uint8_t addr[16])
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
int pol_parse_hostport(struct cc *c, const struct bms_tok *t, uint16_t defport, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	char a[BMS_TOK_MAX + 1];
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
	if (pol_parse_ip(host, &fam, ip) < 0)
		goto bad;
	if (port != NULL && (pol_parse_u32(port, 65535, &pn) < 0 || pn == 0))
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

void pol_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}


int pol_modbus_space(const struct bms_tok *t)
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

const char *const pol_modbus_space_words[] = { "holding", "input", "coil", "discrete" };
