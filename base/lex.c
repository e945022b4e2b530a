/* base/lex.c: the tokenizer of the line-oriented grammars (see lex.h). */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "base/lex.h"

int bms_lex_init(struct bms_lexer *lx, const char *file, const char *text, size_t len, unsigned flags,
		 struct bms_diag *diag)
{
	memset(lx, 0, sizeof(*lx));
	if (len > BMS_LEX_TEXT_MAX)
		return -EINVAL;
	lx->file = file;
	lx->text = text;
	lx->len = len;
	lx->line = 1;
	lx->col = 1;
	lx->flags = flags;
	lx->diag = diag;
	return 0;
}

void bms_lex_loc(const struct bms_lexer *lx, const struct bms_tok *t, struct bms_diag_loc *out)
{
	*out = (struct bms_diag_loc){ .file = lx->file, .line = t->line, .col = t->col, .width = t->width,
				      .text = lx->text, .len = lx->len, .off = t->off };
}

int bms_lex_error(const struct bms_lexer *lx, const struct bms_tok *t, const char *fmt, ...)
{
	struct bms_diag_loc at;
	bms_lex_loc(lx, t, &at);
	va_list ap;
	va_start(ap, fmt);
	int rc = bms_diag_vadd(lx->diag, BMS_DIAG_ERROR, &at, fmt, ap);
	va_end(ap);
	return rc;
}

const char *bms_tok_show(const struct bms_tok *t)
{
	switch (t->kind) {
	case BMS_TOK_NL: return "end of line";
	case BMS_TOK_EOF: return "end of file";
	default: return t->text;
	}
}

static int word_char(int ch)
{
	return ch > ' ' && ch != '{' && ch != '}' && ch != ',' && ch != '"' && ch != '#' && ch != 0x7f;
}

int bms_lex_next(struct bms_lexer *lx, struct bms_tok *t)
{
	const char *s = lx->text;
	size_t comment = SIZE_MAX; /* where a comment began: the newline after it is placed there */
	for (;;) {
		memset(t, 0, offsetof(struct bms_tok, text) + 1);
		while (lx->i < lx->len && (s[lx->i] == ' ' || s[lx->i] == '\t' || s[lx->i] == '\r')) {
			lx->i++;
			lx->col++;
		}
		t->line = lx->line;
		t->col = lx->col;
		t->off = (uint32_t)(comment != SIZE_MAX ? comment : lx->i);
		t->width = 1;
		if (lx->i >= lx->len) {
			t->kind = BMS_TOK_EOF;
			return 0;
		}
		unsigned char ch = (unsigned char)s[lx->i];
		if (ch == '#') {
			/* The column stays at the '#': "expected X at end of line" points where the words end. */
			comment = lx->i;
			while (lx->i < lx->len && s[lx->i] != '\n')
				lx->i++;
			continue;
		}
		if (ch == '\n') {
			t->kind = BMS_TOK_NL;
			lx->i++;
			lx->line++;
			lx->col = 1;
			return 0;
		}
		if (ch == ',' || ch == '{' || ch == '}') {
			t->kind = ch == ',' ? BMS_TOK_COMMA : ch == '{' ? BMS_TOK_LBRACE : BMS_TOK_RBRACE;
			t->text[0] = (char)ch;
			t->text[1] = '\0';
			lx->i++;
			lx->col++;
			return 0;
		}
		size_t k = 0, start = lx->i;
		if (ch == '"') {
			t->kind = BMS_TOK_STRING;
			lx->i++;
			while (lx->i < lx->len && s[lx->i] != '"' && s[lx->i] != '\n') {
				char c = s[lx->i];
				if ((lx->flags & BMS_LEX_ESCAPES) && c == '\\' && lx->i + 1 < lx->len &&
				    (s[lx->i + 1] == '"' || s[lx->i + 1] == '\\'))
					c = s[++lx->i];
				if (k < BMS_TOK_MAX)
					t->text[k] = c;
				k++;
				lx->i++;
			}
			if (lx->i >= lx->len || s[lx->i] != '"') {
				size_t end = lx->i;
				if (end > start && s[end - 1] == '\r')
					end--;
				t->width = (uint32_t)(end - start);
				lx->col += (uint32_t)(lx->i - start);
				if (bms_lex_error(lx, t, "string is not closed before the end of the line") < 0)
					return -ENOMEM;
				continue; /* the string is dropped; the newline comes next */
			}
			lx->i++;
		} else if (word_char(ch)) {
			t->kind = BMS_TOK_WORD;
			while (lx->i < lx->len && word_char((unsigned char)s[lx->i])) {
				if (k < BMS_TOK_MAX)
					t->text[k] = s[lx->i];
				k++;
				lx->i++;
			}
		} else {
			lx->i++;
			lx->col++;
			if (bms_lex_error(lx, t, "unexpected character 0x%02x", ch) < 0)
				return -ENOMEM;
			continue;
		}
		t->width = (uint32_t)(lx->i - start);
		lx->col += t->width;
		t->text[k < BMS_TOK_MAX ? k : BMS_TOK_MAX] = '\0';
		if (k > BMS_TOK_MAX && !(lx->flags & BMS_LEX_LONG_TOKENS) &&
		    bms_lex_error(lx, t, "word of %zu characters is longer than %d", k, BMS_TOK_MAX) < 0)
			return -ENOMEM;
		return 0;
	}
}
