/* tests/unit/test_diag.c: error records and their printers (base/diag.c). The caret form
 * puts carets under the whole token, lines them up through tabs and multi-byte UTF-8, places a
 * token at the end of a line after its last byte (CRLF or not), cuts long lines around the token,
 * never sends control bytes to the terminal, and says how many records the cap dropped; the
 * one-line form for logs stays one line per record. Each with its negative beside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "load/policy_files.h"
#include "base/diag.h"
#include "policies/policy.h"

/* One error at byte `off` of `text` (its column worked out here), printed in the caret form. */
static char *caret_n(const char *text, size_t len, size_t off, uint32_t width)
{
	uint32_t line = 1, col = 1;
	for (size_t i = 0; i < off; i++) {
		col++;
		if (text[i] == '\n')
			line++, col = 1;
	}
	struct bms_diag d;
	bms_diag_init(&d);
	struct bms_diag_loc at = { .file = "f", .line = line, .col = col, .width = width, .text = text,
				   .len = len, .off = off };
	assert_int_equal(bms_diag_add(&d, BMS_DIAG_ERROR, &at, "m"), 0);
	char *buf = NULL;
	size_t mlen = 0;
	FILE *m = open_memstream(&buf, &mlen);
	assert_non_null(m);
	bms_diag_print_source(&d, m);
	fclose(m);
	bms_diag_free(&d);
	return buf;
}

static char *caret(const char *text, size_t off, uint32_t width)
{
	return caret_n(text, strlen(text), off, width);
}

static void check_n(const char *text, size_t len, size_t off, uint32_t width, const char *want)
{
	char *got = caret_n(text, len, off, width);
	assert_string_equal(got, want);
	free(got);
}

static void check(const char *text, size_t off, uint32_t width, const char *want)
{
	char *got = caret(text, off, width);
	assert_string_equal(got, want);
	free(got);
}

static void carets_under_the_whole_token(void **state)
{
	(void)state;
	check("allow operater read ahu1\n", 6, 8, "f:1:7: error: m\nallow operater read ahu1\n      ^^^^^^^^\n");
	/* negative: a one-byte token gets one caret */
	check("allow a read ahu1\n", 6, 1, "f:1:7: error: m\nallow a read ahu1\n      ^\n");
	/* the second line of a text: only that line is shown */
	check("site x\nmode enforced\n", 12, 8, "f:2:6: error: m\nmode enforced\n     ^^^^^^^^\n");
}

static void tabs_line_up(void **state)
{
	(void)state;
	check("\tpoint\tsp holding 70000\n", 18, 5, "f:1:19: error: m\n\tpoint\tsp holding 70000\n\t     \t           ^^^^^\n");
	/* negative: without tabs, only spaces */
	check("    point sp holding 70000\n", 21, 5,
	      "f:1:22: error: m\n    point sp holding 70000\n                     ^^^^^\n");
}

static void utf8_takes_one_column_per_character(void **state)
{
	(void)state;
	/* "ü" is two bytes, one column: the caret under "x" moves one to the left of its byte offset */
	check("subject \"CN=M\xc3\xbcller\" x\n", 21, 1, "f:1:22: error: m\nsubject \"CN=M\xc3\xbcller\" x\n                    ^\n");
	/* a token with a multi-byte character gets a caret per character */
	check("a M\xc3\xbcller\n", 2, 7, "f:1:3: error: m\na M\xc3\xbcller\n  ^^^^^^\n");
	/* negative: bytes that are not UTF-8, and control bytes (ESC, NUL), are shown as '?' */
	check("a \x1b[31m \xff\x80 b\n", 11, 1, "f:1:12: error: m\na ?[31m ?? b\n           ^\n");
	check_n("a\0b\n", 4, 0, 1, "f:1:1: error: m\na?b\n^\n");
}

static void token_at_end_of_line(void **state)
{
	(void)state;
	/* "expected a value after 'subject' at end of line": the newline, one caret after the word */
	check("    subject\nx\n", 11, 1, "f:1:12: error: m\n    subject\n           ^\n");
	/* CRLF: the '\r' is not shown, and the caret is where it is for LF */
	char *lf = caret("    subject\nx\n", 11, 1), *crlf = caret("    subject\r\nx\r\n", 11, 1);
	assert_string_equal(lf, crlf);
	free(lf);
	free(crlf);
	/* and where the lexer places a CRLF newline, one byte later, the caret stays at the line's end */
	check("    subject\r\nx\r\n", 12, 1, "f:1:13: error: m\n    subject\n           ^\n");
	/* end of file without a final newline */
	check("allow a", 7, 1, "f:1:8: error: m\nallow a\n       ^\n");
	/* negative: a '\r' inside a line is shown (as '?'), not dropped */
	check("a\rb\n", 2, 1, "f:1:3: error: m\na?b\n  ^\n");
}

static void long_lines_are_cut_around_the_token(void **state)
{
	(void)state;
	char text[600];
	memset(text, 'a', sizeof(text));
	memcpy(text + 300, " BAD ", 5);
	text[599] = '\0';
	char *got = caret(text, 301, 3);
	/* "..." then 40 bytes before the token, the token, and the line up to BMS_DIAG_SRC_MAX bytes */
	char want[512];
	int n = snprintf(want, sizeof(want), "f:1:302: error: m\n...%.*s...\n   %*s^^^\n", BMS_DIAG_SRC_MAX,
			 text + 261, 40, "");
	assert_true(n > 0);
	assert_string_equal(got, want);
	free(got);
	/* a token longer than what is kept: carets up to the cut */
	char word[300];
	memset(word, 'w', sizeof(word));
	word[299] = '\0';
	got = caret(word, 0, 299);
	assert_non_null(strstr(got, "..."));
	char *carets = strrchr(got, '\n');
	*carets = '\0';
	carets = strrchr(got, '\n') + 1;
	assert_int_equal(strspn(carets, "^"), BMS_DIAG_SRC_MAX);
	free(got);
	/* negative: a line that fits is shown whole, without "..." */
	text[100] = '\0';
	got = caret(text, 50, 1);
	assert_null(strstr(got, "..."));
	free(got);
}

static void one_line_form_and_the_cap(void **state)
{
	(void)state;
	struct bms_diag d;
	bms_diag_init(&d);
	static const char text[] = "mode enforced\n";
	struct bms_diag_loc at = { .file = "p", .line = 1, .col = 6, .width = 8, .text = text, .len = 14, .off = 5 };
	struct bms_diag_loc whole = { .file = "q" };
	for (int i = 0; i < BMS_DIAG_LIMIT + 5; i++)
		assert_int_equal(bms_diag_add(&d, i % 2 ? BMS_DIAG_WARNING : BMS_DIAG_ERROR, i == 1 ? &whole : &at,
					      "n%d", i), 0);
	assert_int_equal(d.n, BMS_DIAG_LIMIT);
	assert_int_equal(d.dropped, 5);
	assert_int_equal(d.errors + d.warnings, BMS_DIAG_LIMIT + 5);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	bms_diag_print(&d, m);
	fclose(m);
	/* the log form: exactly one line per record kept, the old format, no source, no count */
	assert_memory_equal(buf, "p:1:6: error: n0\nq: warning: n1\np:1:6: error: n2\n", 49);
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	assert_int_equal(lines, BMS_DIAG_LIMIT);
	assert_null(strstr(buf, "^"));
	free(buf);
	/* the caret form: three lines per record with a line, one for a whole file, then the count */
	m = open_memstream(&buf, &len);
	bms_diag_print_source(&d, m);
	fclose(m);
	assert_memory_equal(buf, "p:1:6: error: n0\nmode enforced\n     ^^^^^^^^\nq: warning: n1\np:1:6", 65);
	const char *tail = "... and 5 more not shown (at most 1000 are kept)\n";
	assert_string_equal(buf + len - strlen(tail), tail);
	free(buf);
	bms_diag_free(&d);
	/* negative: under the cap, no count line */
	bms_diag_init(&d);
	assert_int_equal(bms_diag_add(&d, BMS_DIAG_ERROR, &at, "x"), 0);
	m = open_memstream(&buf, &len);
	bms_diag_print_source(&d, m);
	fclose(m);
	assert_null(strstr(buf, "more not shown"));
	free(buf);
	bms_diag_free(&d);
}

/* The compiler keeps each file's text until it ends, so a diagnostic made after the file was
 * read (a name resolved, a lint warning) still shows its line; one about a file has none. */
static void compiler_diagnostics_carry_their_line(void **state)
{
	(void)state;
	static const char text[] = "device ahu1 modbus 10.0.0.1 unit 1 {\n  point sp holding 1\n}\n"
				   "allow operator read ahu2.sp\n";
	struct bms_policy *p = NULL;
	struct bms_diag d;
	bms_diag_init(&d);
	assert_int_equal(bms_policy_load_string("s.policy", text, strlen(text), &p, &d), -22);
	const struct bms_diag_entry *e = NULL;
	for (size_t i = 0; i < d.n; i++)
		if (strstr(d.v[i].msg, "unknown device 'ahu2'"))
			e = &d.v[i];
	assert_non_null(e);
	assert_true(e->has_src);
	assert_int_equal(e->src_len, 27);
	assert_memory_equal(e->src, "allow operator read ahu2.sp", 27);
	assert_int_equal(e->tok_at, 20);
	assert_int_equal(e->tok_len, 4); /* "ahu2", not "ahu2.sp" */
	/* the warning about the undeclared role, made while resolving too */
	bool warned = false;
	for (size_t i = 0; i < d.n; i++)
		if (d.v[i].level == BMS_DIAG_WARNING && d.v[i].has_src && d.v[i].tok_at == 6 && d.v[i].tok_len == 8)
			warned = true;
	assert_true(warned);
	bms_diag_free(&d);
	/* negative: a file that cannot be read has no line to show */
	const char *missing = "/nonexistent/x.policy";
	bms_diag_init(&d);
	assert_true(bms_policy_load(&missing, 1, &p, &d) < 0);
	assert_true(d.n >= 1);
	assert_int_equal(d.v[0].line, 0);
	assert_false(d.v[0].has_src);
	bms_diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(carets_under_the_whole_token),
		cmocka_unit_test(tabs_line_up),
		cmocka_unit_test(utf8_takes_one_column_per_character),
		cmocka_unit_test(token_at_end_of_line),
		cmocka_unit_test(long_lines_are_cut_around_the_token),
		cmocka_unit_test(one_line_form_and_the_cap),
		cmocka_unit_test(compiler_diagnostics_carry_their_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
