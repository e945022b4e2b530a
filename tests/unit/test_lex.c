/* tests/unit/test_lex.c: the grammar front end's tokenizer (base/lex.c): token kinds,
 * positions (line, column, byte offset, width), and its limits: a token over BMS_TOK_MAX bytes,
 * an unclosed string, NUL and control bytes, CRLF line ends. Each with its negative beside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/lex.h"

#define MAXT 64

struct lexed {
	struct bms_diag d;
	struct bms_tok t[MAXT];
	size_t n;
};

/* Every token up to and including EOF. */
static void lex_all(struct lexed *out, const char *text, size_t len, unsigned flags)
{
	struct bms_lexer lx;
	bms_diag_init(&out->d);
	assert_int_equal(bms_lex_init(&lx, "t.conf", text, len, flags, &out->d), 0);
	out->n = 0;
	for (;;) {
		assert_true(out->n < MAXT);
		assert_int_equal(bms_lex_next(&lx, &out->t[out->n]), 0);
		if (out->t[out->n++].kind == BMS_TOK_EOF)
			break;
	}
}

static void tok_is(const struct bms_tok *t, int kind, const char *text, uint32_t line, uint32_t col, uint32_t off,
		   uint32_t width)
{
	assert_int_equal(t->kind, kind);
	assert_string_equal(t->text, text);
	assert_int_equal(t->line, line);
	assert_int_equal(t->col, col);
	assert_int_equal(t->off, off);
	assert_int_equal(t->width, width);
}

static void kinds_and_positions(void **state)
{
	(void)state;
	static const char text[] = "role ops {\n\tsubject \"CN=a, O=b\" # who\n}\nallow a,b read\n";
	struct lexed x;
	lex_all(&x, text, strlen(text), 0);
	assert_int_equal(x.d.n, 0);
	assert_int_equal(x.n, 16);
	tok_is(&x.t[0], BMS_TOK_WORD, "role", 1, 1, 0, 4);
	tok_is(&x.t[1], BMS_TOK_WORD, "ops", 1, 6, 5, 3);
	tok_is(&x.t[2], BMS_TOK_LBRACE, "{", 1, 10, 9, 1);
	tok_is(&x.t[3], BMS_TOK_NL, "", 1, 11, 10, 1);
	/* a tab is one byte and one column; a string's width takes in its quotes */
	tok_is(&x.t[4], BMS_TOK_WORD, "subject", 2, 2, 12, 7);
	tok_is(&x.t[5], BMS_TOK_STRING, "CN=a, O=b", 2, 10, 20, 11);
	/* the newline after a comment is placed at the comment's '#' */
	tok_is(&x.t[6], BMS_TOK_NL, "", 2, 22, 32, 1);
	tok_is(&x.t[7], BMS_TOK_RBRACE, "}", 3, 1, 38, 1);
	tok_is(&x.t[8], BMS_TOK_NL, "", 3, 2, 39, 1);
	tok_is(&x.t[9], BMS_TOK_WORD, "allow", 4, 1, 40, 5);
	tok_is(&x.t[10], BMS_TOK_WORD, "a", 4, 7, 46, 1);
	tok_is(&x.t[11], BMS_TOK_COMMA, ",", 4, 8, 47, 1);
	tok_is(&x.t[12], BMS_TOK_WORD, "b", 4, 9, 48, 1);
	tok_is(&x.t[13], BMS_TOK_WORD, "read", 4, 11, 50, 4);
	tok_is(&x.t[14], BMS_TOK_NL, "", 4, 15, 54, 1);
	tok_is(&x.t[15], BMS_TOK_EOF, "", 5, 1, 55, 1);
	bms_diag_free(&x.d);

	/* EOF stays EOF, at the end, also without a final newline */
	struct bms_lexer lx;
	struct bms_tok t;
	struct bms_diag d;
	bms_diag_init(&d);
	assert_int_equal(bms_lex_init(&lx, "t", "a", 1, 0, &d), 0);
	assert_int_equal(bms_lex_next(&lx, &t), 0);
	tok_is(&t, BMS_TOK_WORD, "a", 1, 1, 0, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(bms_lex_next(&lx, &t), 0);
		tok_is(&t, BMS_TOK_EOF, "", 1, 2, 1, 1);
	}
	assert_string_equal(bms_tok_show(&t), "end of file");
	bms_diag_free(&d);
}

static void braces_and_commas_end_words(void **state)
{
	(void)state;
	struct lexed x;
	lex_all(&x, "a{b}c,d\"e\"#f", 12, 0);
	assert_int_equal(x.d.n, 0);
	const int kinds[] = { BMS_TOK_WORD, BMS_TOK_LBRACE, BMS_TOK_WORD, BMS_TOK_RBRACE, BMS_TOK_WORD,
			      BMS_TOK_COMMA, BMS_TOK_WORD, BMS_TOK_STRING, BMS_TOK_EOF };
	assert_int_equal(x.n, 9);
	for (size_t i = 0; i < 9; i++)
		assert_int_equal(x.t[i].kind, kinds[i]);
	assert_string_equal(x.t[7].text, "e");
	bms_diag_free(&x.d);
	/* negative: other punctuation belongs to words */
	lex_all(&x, "10.0.0.1:502 a..b 07:00-19:00 ahu1.sp *", 39, 0);
	assert_int_equal(x.d.n, 0);
	assert_int_equal(x.n, 6);
	assert_string_equal(x.t[0].text, "10.0.0.1:502");
	assert_string_equal(x.t[3].text, "ahu1.sp");
	bms_diag_free(&x.d);
}

static void token_longer_than_the_limit(void **state)
{
	(void)state;
	char text[BMS_TOK_MAX + 16];
	struct lexed x;
	/* BMS_TOK_MAX bytes: whole, no error */
	memset(text, 'w', BMS_TOK_MAX);
	lex_all(&x, text, BMS_TOK_MAX, 0);
	assert_int_equal(x.d.n, 0);
	assert_int_equal(strlen(x.t[0].text), BMS_TOK_MAX);
	assert_int_equal(x.t[0].width, BMS_TOK_MAX);
	bms_diag_free(&x.d);
	/* one byte more: an error at the word, the word kept cut, its width whole */
	memset(text, 'w', BMS_TOK_MAX + 1);
	lex_all(&x, text, BMS_TOK_MAX + 1, 0);
	assert_int_equal(x.d.errors, 1);
	assert_string_equal(x.d.v[0].msg, "word of 256 characters is longer than 255");
	assert_int_equal(x.d.v[0].line, 1);
	assert_int_equal(x.d.v[0].col, 1);
	assert_int_equal(x.n, 2);
	assert_int_equal(strlen(x.t[0].text), BMS_TOK_MAX);
	assert_int_equal(x.t[0].width, BMS_TOK_MAX + 1);
	bms_diag_free(&x.d);
	/* a string: the limit is on its text, the quotes do not count */
	text[0] = '"';
	memset(text + 1, 's', BMS_TOK_MAX);
	text[BMS_TOK_MAX + 1] = '"';
	lex_all(&x, text, BMS_TOK_MAX + 2, 0);
	assert_int_equal(x.d.n, 0);
	assert_int_equal(x.t[0].kind, BMS_TOK_STRING);
	assert_int_equal(x.t[0].width, BMS_TOK_MAX + 2);
	bms_diag_free(&x.d);
	memset(text + 1, 's', BMS_TOK_MAX + 1);
	text[BMS_TOK_MAX + 2] = '"';
	lex_all(&x, text, BMS_TOK_MAX + 3, 0);
	assert_int_equal(x.d.errors, 1);
	assert_int_equal(strlen(x.t[0].text), BMS_TOK_MAX);
	bms_diag_free(&x.d);
}

static void unclosed_string(void **state)
{
	(void)state;
	struct lexed x;
	/* closed: one string */
	lex_all(&x, "site \"Plant A\"\nmode x\n", 22, 0);
	assert_int_equal(x.d.n, 0);
	assert_int_equal(x.t[1].kind, BMS_TOK_STRING);
	bms_diag_free(&x.d);
	/* unclosed: an error at the quote, the string dropped, the newline and the next line read on */
	lex_all(&x, "site \"Plant A\r\nmode x\n", 22, 0);
	assert_int_equal(x.d.errors, 1);
	assert_string_equal(x.d.v[0].msg, "string is not closed before the end of the line");
	assert_int_equal(x.d.v[0].line, 1);
	assert_int_equal(x.d.v[0].col, 6);
	/* the caret covers the rest of the line, not its '\r' */
	assert_true(x.d.v[0].has_src);
	assert_int_equal(x.d.v[0].tok_at, 5);
	assert_int_equal(x.d.v[0].tok_len, 8);
	assert_int_equal(x.n, 6);
	tok_is(&x.t[0], BMS_TOK_WORD, "site", 1, 1, 0, 4);
	assert_int_equal(x.t[1].kind, BMS_TOK_NL);
	tok_is(&x.t[2], BMS_TOK_WORD, "mode", 2, 1, 15, 4);
	bms_diag_free(&x.d);
	/* unclosed at the end of the text */
	lex_all(&x, "site \"Plant", 11, 0);
	assert_int_equal(x.d.errors, 1);
	assert_int_equal(x.n, 2);
	assert_int_equal(x.t[1].kind, BMS_TOK_EOF);
	bms_diag_free(&x.d);
}

static void escapes_only_when_asked(void **state)
{
	(void)state;
	static const char text[] = "\"a\\\"b\\\\\" c";
	struct lexed x;
	lex_all(&x, text, strlen(text), BMS_LEX_ESCAPES);
	assert_int_equal(x.d.n, 0);
	assert_int_equal(x.n, 3);
	assert_string_equal(x.t[0].text, "a\"b\\");
	assert_int_equal(x.t[0].width, 8);
	assert_string_equal(x.t[1].text, "c");
	bms_diag_free(&x.d);
	/* negative: the policy language has no escapes; the string ends at the second quote */
	lex_all(&x, text, strlen(text), 0);
	assert_string_equal(x.t[0].text, "a\\");
	assert_string_equal(x.t[1].text, "b\\\\");
	assert_int_equal(x.d.errors, 1); /* the last quote opens a string that is never closed */
	bms_diag_free(&x.d);
}

static void nul_and_control_bytes(void **state)
{
	(void)state;
	struct lexed x;
	/* a NUL is not a separator that goes unnoticed: an error at its column, then lexing goes on */
	lex_all(&x, "ab\0cd\x01" "e", 7, 0);
	assert_int_equal(x.d.errors, 2);
	assert_string_equal(x.d.v[0].msg, "unexpected character 0x00");
	assert_int_equal(x.d.v[0].col, 3);
	assert_string_equal(x.d.v[1].msg, "unexpected character 0x01");
	assert_int_equal(x.d.v[1].col, 6);
	assert_int_equal(x.n, 4);
	tok_is(&x.t[0], BMS_TOK_WORD, "ab", 1, 1, 0, 2);
	tok_is(&x.t[1], BMS_TOK_WORD, "cd", 1, 4, 3, 2);
	tok_is(&x.t[2], BMS_TOK_WORD, "e", 1, 7, 6, 1);
	/* the source line shown for it has the NUL as '?' */
	assert_true(x.d.v[0].has_src);
	assert_memory_equal(x.d.v[0].src, "ab?cd?e", 7);
	bms_diag_free(&x.d);
	/* negative: UTF-8 and other bytes above 0x7f are word bytes */
	lex_all(&x, "CN=M\xc3\xbcller", 10, 0);
	assert_int_equal(x.d.n, 0);
	assert_int_equal(x.n, 2);
	assert_int_equal(x.t[0].width, 10);
	bms_diag_free(&x.d);
}

static void crlf_reads_as_lf(void **state)
{
	(void)state;
	static const char lf[] = "device a {\n  point p coil 1\n}\n", crlf[] = "device a {\r\n  point p coil 1\r\n}\r\n";
	struct lexed a, b;
	lex_all(&a, lf, strlen(lf), 0);
	lex_all(&b, crlf, strlen(crlf), 0);
	assert_int_equal(a.d.n, 0);
	assert_int_equal(b.d.n, 0);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_int_equal(a.t[i].kind, b.t[i].kind);
		assert_string_equal(a.t[i].text, b.t[i].text);
		assert_int_equal(a.t[i].line, b.t[i].line);
		if (a.t[i].kind != BMS_TOK_NL && a.t[i].kind != BMS_TOK_EOF)
			assert_int_equal(a.t[i].col, b.t[i].col);
	}
	bms_diag_free(&a.d);
	bms_diag_free(&b.d);
	/* negative: a '\r' inside a line separates words like a space, it is no line end */
	lex_all(&a, "a\rb\n", 4, 0);
	assert_int_equal(a.n, 4);
	assert_int_equal(a.t[1].line, 1);
	assert_string_equal(a.t[1].text, "b");
	bms_diag_free(&a.d);
}

static void lexer_errors_point_into_the_text(void **state)
{
	(void)state;
	struct bms_diag d;
	struct bms_lexer lx;
	struct bms_tok t;
	bms_diag_init(&d);
	assert_int_equal(bms_lex_init(&lx, "g.conf", "listen tlss 1\n", 14, 0, &d), 0);
	assert_int_equal(bms_lex_next(&lx, &t), 0);
	assert_int_equal(bms_lex_next(&lx, &t), 0);
	/* a parser reports at a token through the lexer: file, line, column, source line */
	assert_int_equal(bms_lex_error(&lx, &t, "unknown kind '%s'", t.text), 0);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.v[0].file, "g.conf");
	assert_int_equal(d.v[0].line, 1);
	assert_int_equal(d.v[0].col, 8);
	assert_string_equal(d.v[0].msg, "unknown kind 'tlss'");
	assert_int_equal(d.v[0].tok_at, 7);
	assert_int_equal(d.v[0].tok_len, 4);
	bms_diag_free(&d);
	/* a text too long for 32-bit positions is refused, not wrapped */
	assert_int_equal(bms_lex_init(&lx, "big", "", (size_t)UINT32_MAX, 0, &d), -22);
	assert_int_equal(bms_lex_init(&lx, "ok", "", (size_t)BMS_LEX_TEXT_MAX, 0, &d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kinds_and_positions),
		cmocka_unit_test(braces_and_commas_end_words),
		cmocka_unit_test(token_longer_than_the_limit),
		cmocka_unit_test(unclosed_string),
		cmocka_unit_test(escapes_only_when_asked),
		cmocka_unit_test(nul_and_control_bytes),
		cmocka_unit_test(crlf_reads_as_lf),
		cmocka_unit_test(lexer_errors_point_into_the_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
