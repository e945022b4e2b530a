/* audit/util.c: bounded output buffer, JSON string escaping, RFC 3339 time. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit/audit_int.h"

void audit_buf_init(struct audit_buf *b, char *p, size_t cap)
{
	b->p = p;
	b->len = 0;
	b->cap = cap;
	b->overflow = false;
}

void audit_buf_printf(struct audit_buf *b, const char *fmt, ...)
{
	if (b->overflow)
		return;
	va_list ap;
	va_start(ap, fmt);
	size_t room = b->cap - b->len;
	int n = vsnprintf(b->p + b->len, room, fmt, ap);
	va_end(ap);
	/* vsnprintf needs room for its NUL; a result that filled the room exactly is an overflow too */
	if (n < 0 || (size_t)n >= room) {
		b->overflow = true;
		return;
	}
	b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* 1 for bytes a JSON string holds as they are: printable ASCII but '"' and '\\' */
static const uint8_t plain[256] = {
	[0x20] = 1, [0x21] = 1, /* 0x22 '"' */ [0x23 ... 0x5b] = 1, /* 0x5c '\\' */ [0x5d ... 0x7e] = 1,
};

/* True if none of the 8 bytes of w needs escaping (all are in plain[]).
 * Word-at-a-time tests for a byte below 0x20, above 0x7e, '"' or '\\':
 * they may flag a plain byte after a special one (a borrow or carry), never
 * miss one; a flagged word goes through the table byte by byte. */
static inline bool plain8(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t ctl = (w - ones * 0x20) & ~w;
	uint64_t high = (w + ones) | w;
	uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
	uint64_t quote = (q - ones) & ~q, bslash = (bs - ones) & ~bs;
	return ((ctl | high | quote | bslash) & highs) == 0;
}

void audit_buf_json_strn(struct audit_buf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	audit_buf_put(b, "\"", 1);
	size_t i = 0;
	while (i < n && !b->overflow) {
		/* fast path: copy the run of plain printable ASCII in one go */
		size_t run0 = i;
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (!plain8(w))
				break;
			i += 8;
		}
		while (i < n && plain[s[i]])
			i++;
		if (i > run0)
			audit_buf_put(b, s + run0, i - run0);
		if (i >= n)
			break;
		unsigned char c = s[i];
		size_t run = utf8_seq(s + i, n - i);
		if (run == 0) {
			audit_buf_puts(b, "\\ufffd");
			i++;
			continue;
		}
		if (run > 1) {
			audit_buf_put(b, s + i, run);
			i += run;
			continue;
		}
		switch (c) {
		case '"': audit_buf_puts(b, "\\\""); break;
		case '\\': audit_buf_puts(b, "\\\\"); break;
		case '\n': audit_buf_puts(b, "\\n"); break;
		case '\r': audit_buf_puts(b, "\\r"); break;
		case '\t': audit_buf_puts(b, "\\t"); break;
		default:
			/* control characters (and DEL, which terminals act on) escaped */
			if (c < 0x20 || c == 0x7f)
				audit_buf_printf(b, "\\u%04x", c);
			else
				audit_buf_put(b, &c, 1);
		}
		i++;
	}
	audit_buf_put(b, "\"", 1);
}

void audit_buf_json_str(struct audit_buf *b, const char *s)
{
	audit_buf_json_strn(b, s, strlen(s));
}

int64_t audit_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The date and time of one second, remembered per thread: records arrive
 * many per second and gmtime_r + snprintf for each would dominate. */
static __thread int64_t cached_sec = INT64_MIN;
static __thread char cached_prefix[AUDIT_TIME_LEN + 1];

void audit_format_time(int64_t us, char out[static AUDIT_TIME_LEN + 1])
{
	int64_t sec = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	if (sec == cached_sec) {
		memcpy(out, cached_prefix, AUDIT_TIME_LEN + 1);
		for (int i = 0; i < 6; i++) {
			out[25 - i] = (char)('0' + frac % 10);
			frac /= 10;
		}
		return;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
		/* out of the four-digit-year range RFC 3339 allows */
		snprintf(out, AUDIT_TIME_LEN + 1, "0000-01-01T00:00:00.000000Z");
		return;
	}
	/* the compiler cannot see that gmtime_r keeps every field to two digits: format wide, then copy */
	char tmp[96];
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
	memcpy(out, tmp, AUDIT_TIME_LEN);
	out[AUDIT_TIME_LEN] = '\0';
	memcpy(cached_prefix, out, AUDIT_TIME_LEN + 1);
	cached_sec = sec;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int audit_parse_time(const char *s, int64_t *us)
{
	const char *p = s;
	int Y, M, D, h = 0, m = 0, sec = 0;
	int64_t frac = 0;
	if (digits(&p, 4, &Y) < 0 || *p++ != '-' || digits(&p, 2, &M) < 0 || *p++ != '-' || digits(&p, 2, &D) < 0)
		return -EINVAL;
	int64_t offset = 0;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &m) < 0)
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec) < 0)
				return -EINVAL;
			if (*p == '.') {
				p++;
				int nd = 0;
				while (*p >= '0' && *p <= '9') {
					if (nd < 6) {
						frac = frac * 10 + (*p - '0');
						nd++;
					}
					p++;
				}
				if (nd == 0)
					return -EINVAL;
				for (; nd < 6; nd++)
					frac *= 10;
			}
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, oh, om;
			if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
				return -EINVAL;
			offset = sign * (int64_t)(oh * 3600 + om * 60);
		}
	}
	if (*p != '\0')
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec };
	time_t t = timegm(&tm);
	if (t == (time_t)-1 && !(Y == 1969 && M == 12 && D == 31))
		return -EINVAL;
	*us = ((int64_t)t - offset) * 1000000 + frac;
	return 0;
}
