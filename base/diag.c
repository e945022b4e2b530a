/* base/diag.c: error records and their two printers (see diag.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/diag.h"

/* Bytes of the token shown at least when a long line is cut before it. */
#define SRC_CONTEXT 40

void bms_diag_init(struct bms_diag *d)
{
	memset(d, 0, sizeof(*d));
}

void bms_diag_free(struct bms_diag *d)
{
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static const char *level_name(uint8_t level)
{
	switch (level) {
	case BMS_DIAG_WARNING: return "warning";
	case BMS_DIAG_NOTE: return "note";
	default: return "error";
	}
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 if it is none (or encodes a C1 control,
 * which a terminal may obey): the caret form must not send a terminal what it would act on. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char b = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	if (b >= 0xc2 && b <= 0xdf)
		need = 1, lo = b == 0xc2 ? 0xa0 : 0x80;
	else if (b >= 0xe0 && b <= 0xef)
		need = 2, lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
	else if (b >= 0xf0 && b <= 0xf4)
		need = 3, lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n < need + 1 || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k <= need; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return need + 1;
}

/* Copies the source line around the token into e, made safe to print byte for byte. */
static void fill_src(struct bms_diag_entry *e, const struct bms_diag_loc *at)
{
	if (at->text == NULL || at->line == 0 || at->off > at->len)
		return;
	size_t col0 = at->col ? at->col - 1 : 0;
	size_t ls = at->off >= col0 ? at->off - col0 : 0; /* the line's start */
	size_t w = at->width ? at->width : 1;
	size_t ws = ls;
	uint8_t flags = 0;
	if (at->off - ls + (w < SRC_CONTEXT ? w : SRC_CONTEXT) > BMS_DIAG_SRC_MAX) {
		ws = at->off - SRC_CONTEXT;
		flags |= BMS_DIAG_SRC_CUT_START;
	}
	size_t we = ws;
	while (we < at->len && we - ws < BMS_DIAG_SRC_MAX && at->text[we] != '\n')
		we++;
	if (we < at->len && at->text[we] != '\n' && !(at->text[we] == '\r' && (we + 1 == at->len || at->text[we + 1] == '\n')))
		flags |= BMS_DIAG_SRC_CUT_END;
	if (!(flags & BMS_DIAG_SRC_CUT_END) && we > ws && at->text[we - 1] == '\r')
		we--; /* CRLF: the '\r' is part of the line end */
	size_t n = we - ws;
	const unsigned char *s = (const unsigned char *)at->text + ws;
	for (size_t i = 0; i < n;) {
		size_t k = s[i] < 0x80 ? 1 : utf8_len(s + i, n - i);
		if (k > 1) {
			memcpy(e->src + i, s + i, k);
			i += k;
			continue;
		}
		e->src[i] = (s[i] >= 0x20 && s[i] < 0x7f) || s[i] == '\t' ? (char)s[i] : '?';
		i++;
	}
	e->has_src = true;
	e->src_flags = flags;
	e->src_len = (uint16_t)n;
	size_t tok = at->off - ws < n ? at->off - ws : n;
	e->tok_at = (uint16_t)tok;
	e->tok_len = (uint16_t)(w < n - tok ? w : n - tok);
}

int bms_diag_vadd(struct bms_diag *d, uint8_t level, const struct bms_diag_loc *at, const char *fmt, va_list ap)
{
	if (level == BMS_DIAG_ERROR)
		d->errors++;
	else if (level == BMS_DIAG_WARNING)
		d->warnings++;
	if (d->n >= BMS_DIAG_LIMIT) {
		d->dropped++;
		return 0;
	}
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		struct bms_diag_entry *v = realloc(d->v, ncap * sizeof(*v));
		if (v == NULL) {
			d->dropped++;
			return -ENOMEM;
		}
		d->v = v;
		d->cap = ncap;
	}
	struct bms_diag_entry *e = &d->v[d->n++];
	memset(e, 0, sizeof(*e));
	e->level = level;
	e->line = at->line;
	e->col = at->line ? at->col : 0;
	const char *file = at->file ? at->file : "?";
	size_t fl = strnlen(file, sizeof(e->file) - 1);
	memcpy(e->file, file, fl);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	fill_src(e, at);
	return 0;
}

int bms_diag_add(struct bms_diag *d, uint8_t level, const struct bms_diag_loc *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = bms_diag_vadd(d, level, at, fmt, ap);
	va_end(ap);
	return rc;
}

static void print_line(const struct bms_diag_entry *e, FILE *out)
{
	if (e->line == 0)
		fprintf(out, "%s: %s: %s\n", e->file, level_name(e->level), e->msg);
	else
		fprintf(out, "%s:%u:%u: %s: %s\n", e->file, e->line, e->col, level_name(e->level), e->msg);
}

void bms_diag_print(const struct bms_diag *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++)
		print_line(&d->v[i], out);
}

void bms_diag_print_entry(const struct bms_diag_entry *e, FILE *out)
{
	print_line(e, out);
	if (!e->has_src)
		return;
	bool pre = e->src_flags & BMS_DIAG_SRC_CUT_START, post = e->src_flags & BMS_DIAG_SRC_CUT_END;
	fprintf(out, "%s%.*s%s\n", pre ? "..." : "", (int)e->src_len, e->src, post ? "..." : "");
	/* One column per character shown (UTF-8 continuation bytes take none), tabs as tabs. */
	if (pre)
		fputs("   ", out);
	for (size_t i = 0; i < e->tok_at; i++) {
		unsigned char ch = (unsigned char)e->src[i];
		if (ch == '\t')
			fputc('\t', out);
		else if ((ch & 0xc0) != 0x80)
			fputc(' ', out);
	}
	size_t carets = 0;
	for (size_t i = e->tok_at; i < (size_t)e->tok_at + e->tok_len; i++)
		if (((unsigned char)e->src[i] & 0xc0) != 0x80)
			carets++;
	if (carets == 0)
		carets = 1; /* a token past the line's end (end of line, end of file): one caret there */
	for (size_t i = 0; i < carets; i++)
		fputc('^', out);
	fputc('\n', out);
}

void bms_diag_print_source(const struct bms_diag *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++)
		bms_diag_print_entry(&d->v[i], out);
	if (d->dropped)
		fprintf(out, "... and %zu more not shown (at most %d are kept)\n", d->dropped, BMS_DIAG_LIMIT);
}
