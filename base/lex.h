/* base/lex.h: the tokenizer of the line-oriented grammars (the policy language and the gateway
 * config), over a text buffer held by the caller. Tokens: words, "quoted strings", `,`, `{`, `}`,
 * newlines and the end; `#` starts a comment to the end of the line; spaces, tabs and '\r' (so
 * CRLF files read as LF files) separate tokens. Each token knows its line, column (bytes from
 * the line's start, 1-based) and byte offset and width in the text, so that an error record
 * (diag.h) can show the line with a caret under the token.
 *
 * A word is any run of bytes above ' ' other than `{ } , " #` and DEL. A string runs to the
 * next `"` on the same line (with BMS_LEX_ESCAPES, `\"` and `\\` stand for `"` and `\`).
 * Lexical errors are recorded in the lexer's bms_diag and the tokenizer goes on, so that one
 * run reports every error: a byte that starts no token (NUL, a control byte, DEL) is skipped;
 * an unclosed string is dropped (the newline comes next); a word or string longer than
 * BMS_TOK_MAX bytes is kept cut to BMS_TOK_MAX.
 *
 * How a grammar uses the front end (the policy compiler does this; the gateway config is next):
 *
 *   struct bms_diag d; bms_diag_init(&d);
 *   struct bms_lexer lx; bms_lex_init(&lx, "guard.conf", text, len, BMS_LEX_ESCAPES, &d);
 *   struct bms_tok t;
 *   while (bms_lex_next(&lx, &t) == 0 && t.kind != BMS_TOK_EOF)
 *           ... on a bad word: bms_lex_error(&lx, &t, "unknown keyword '%s'%s", t.text, ...);
 *           ... did-you-mean: bms_suggest(t.text, words, nwords)
 *   ... checks of the whole file: bms_diag_add(&d, BMS_DIAG_ERROR, &(struct bms_diag_loc){ .file = name }, ...)
 *   bms_diag_print_source(&d, stderr) for a person (`guard -n`), bms_diag_print for the log;
 *   d.errors decides; bms_diag_free(&d).
 *
 * The text must outlive every bms_lex_error call; records copy what they show.
 *
 * Pure: no I/O, no allocation (bms_diag_add allocates its records). */
#ifndef BMS_LEX_H
#define BMS_LEX_H

#include <stddef.h>
#include <stdint.h>

#include "base/diag.h"

#define BMS_TOK_MAX 255
#define BMS_LEX_TEXT_MAX (UINT32_MAX - 1) /* offsets and columns are 32-bit */

enum bms_tok_kind {
	BMS_TOK_WORD = 0,
	BMS_TOK_STRING,  /* text without the quotes */
	BMS_TOK_COMMA,
	BMS_TOK_LBRACE,
	BMS_TOK_RBRACE,
	BMS_TOK_NL,
	BMS_TOK_EOF,     /* returned again on every later call */
};

struct bms_tok {
	uint8_t kind;            /* enum bms_tok_kind */
	uint32_t line, col;      /* 1-based; a newline is at the column after its line's last byte */
	uint32_t off;            /* byte offset of the token's first byte (a string's opening quote) */
	uint32_t width;          /* bytes it covers in the text, quotes included (1 for NL and EOF) */
	char text[BMS_TOK_MAX + 1]; /* NUL-terminated; punctuation holds itself; NL and EOF "" */
};

#define BMS_LEX_ESCAPES 0x1u /* \" and \\ in strings (the gateway config) */
/* A token over BMS_TOK_MAX bytes is no error: t->text holds its first BMS_TOK_MAX bytes and the
 * caller reads the whole token from text[off, off + width) (the gateway config, whose paths may
 * be 511 bytes long and whose lines are bounded instead). */
#define BMS_LEX_LONG_TOKENS 0x2u

struct bms_lexer {
	const char *file;        /* borrowed: names the text in error records */
	const char *text;        /* borrowed */
	size_t len, i;
	uint32_t line, col;
	unsigned flags;          /* BMS_LEX_* */
	struct bms_diag *diag;   /* borrowed: lexical errors are recorded here */
};

/* 0, or -EINVAL when the text is longer than BMS_LEX_TEXT_MAX. */
BMS_WUR int bms_lex_init(struct bms_lexer *lx, const char *file, const char *text, size_t len, unsigned flags,
			 struct bms_diag *diag);
/* The next token into *t. 0, or -ENOMEM when a lexical error could not be recorded. */
BMS_WUR int bms_lex_next(struct bms_lexer *lx, struct bms_tok *t);
/* Where t is, for bms_diag_add: a parser reports at a token with this. */
void bms_lex_loc(const struct bms_lexer *lx, const struct bms_tok *t, struct bms_diag_loc *out);
/* Records an error at t (a parser's "expected X at Y"). 0 or -ENOMEM, as bms_diag_add. */
BMS_WUR int bms_lex_error(const struct bms_lexer *lx, const struct bms_tok *t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* How a message names t: its text, or "end of line", "end of file". */
const char *bms_tok_show(const struct bms_tok *t);

#endif
