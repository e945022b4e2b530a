/* fuzz/fuzz_lex.c: the grammar front end's tokenizer (base/lex.c) and the caret printer
 * (base/diag.c) over arbitrary text. The first byte chooses the flags (bit 0: escapes, the
 * gateway config's strings); the rest is the text. Checks what every grammar relies on: each
 * token lies inside the text and after the one before, its text fits, the tokenizer ends in
 * EOF after at most one token per byte, and every record prints. No file is touched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned flags = data[0] & 1u ? BMS_LEX_ESCAPES : 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	struct bms_diag d;
	struct bms_lexer lx;
	struct bms_tok t;
	bms_diag_init(&d);
	if (bms_lex_init(&lx, "fuzz", text, len, flags, &d) != 0)
		__builtin_trap();
	uint32_t prev_end = 0, prev_line = 1;
	for (size_t n = 0;; n++) {
		if (n > len + 1 || bms_lex_next(&lx, &t) != 0)
			__builtin_trap();
		if (t.off < prev_end || t.off > len || t.line < prev_line || t.col == 0 ||
		    strlen(t.text) > BMS_TOK_MAX)
			__builtin_trap();
		if (t.kind == BMS_TOK_EOF)
			break;
		if (t.width == 0 || t.off + t.width > len)
			__builtin_trap();
		prev_end = t.off + t.width;
		prev_line = t.line;
	}
	for (size_t i = 0; i < d.n; i++) {
		const struct bms_diag_entry *e = &d.v[i];
		if (e->src_len > BMS_DIAG_SRC_MAX || e->tok_at > e->src_len || e->tok_at + e->tok_len > e->src_len)
			__builtin_trap();
		for (size_t k = 0; k < e->src_len; k++)
			if ((unsigned char)e->src[k] < 0x20 && e->src[k] != '\t')
				__builtin_trap(); /* nothing a terminal would obey */
	}
	char *buf = NULL;
	size_t blen = 0;
	FILE *m = open_memstream(&buf, &blen);
	if (m != NULL) {
		bms_diag_print_source(&d, m);
		bms_diag_print(&d, m);
		fclose(m);
	}
	free(buf);
	bms_diag_free(&d);
	return 0;
}
