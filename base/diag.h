/* base/diag.h: error records shared by every grammar's parser and checker (the policy
 * compiler and the gateway config), after nftables' src/erec.c: one record type that
 * names where (file:line:col, the offending token's width, the source line around it) and
 * what, collected without stopping so that one run reports every error, capped at
 * BMS_DIAG_LIMIT records. Two printers: one line per record for logs (bms_diag_print), and
 * for a person the line, the source line and a caret under the token (bms_diag_print_source).
 *
 * Part of the grammar front end (lex.h, diag.h, suggest.h): pure apart from the printers'
 * FILE, allocation only in bms_diag_add. */
#ifndef BMS_DIAG_H
#define BMS_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/attr.h"

enum bms_diag_level {
	BMS_DIAG_ERROR = 0,
	BMS_DIAG_WARNING,
	BMS_DIAG_NOTE,     /* follows an error or warning: "first declared here" */
};

#define BMS_DIAG_FILE_MAX 256
#define BMS_DIAG_MSG_MAX 320
#define BMS_DIAG_SRC_MAX 160  /* bytes of the source line kept per record, around the token */
#define BMS_DIAG_LIMIT 1000   /* records kept; the rest are counted in `dropped` */

/* Where a record points, as a parser knows it; everything borrowed for the call only. */
struct bms_diag_loc {
	const char *file;       /* as messages name it */
	uint32_t line, col;     /* 1-based; line 0 = the file as a whole (no column, no source) */
	uint32_t width;         /* bytes of the offending token (quotes included); 0 counts as 1 */
	const char *text;       /* the whole text the line is in, or NULL: no source line shown */
	size_t len;
	size_t off;             /* byte offset of the token in text; col - 1 bytes after its line's start */
};

#define BMS_DIAG_SRC_CUT_START 0x1u /* src starts after the line's start */
#define BMS_DIAG_SRC_CUT_END 0x2u   /* the line goes on after src */

struct bms_diag_entry {
	uint8_t level;                  /* enum bms_diag_level */
	uint32_t line, col;             /* 1-based; 0 = the file as a whole */
	char file[BMS_DIAG_FILE_MAX];
	char msg[BMS_DIAG_MSG_MAX];
	/* For the caret form: the bytes of the source line around the token (control bytes and
	 * bytes that are not UTF-8 made '?'; the '\r' of a CRLF dropped), and the token's place in them. */
	bool has_src;
	uint8_t src_flags;              /* BMS_DIAG_SRC_CUT_* */
	uint16_t src_len;
	uint16_t tok_at, tok_len;       /* the token is src[tok_at .. tok_at + tok_len), clipped to src */
	char src[BMS_DIAG_SRC_MAX];
};

struct bms_diag {
	struct bms_diag_entry *v;       /* owned; grows up to BMS_DIAG_LIMIT entries */
	size_t n, cap;
	size_t errors, warnings;        /* every record made, kept or not */
	size_t dropped;                 /* records not kept: past BMS_DIAG_LIMIT */
};

void bms_diag_init(struct bms_diag *d);
void bms_diag_free(struct bms_diag *d);

/* Records one error, warning or note. 0, or -ENOMEM when it could not be stored (it is still
 * counted). Past BMS_DIAG_LIMIT records it is counted and dropped, and 0 is returned. */
BMS_WUR int bms_diag_add(struct bms_diag *d, uint8_t level, const struct bms_diag_loc *at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
BMS_WUR int bms_diag_vadd(struct bms_diag *d, uint8_t level, const struct bms_diag_loc *at, const char *fmt,
			  va_list ap) __attribute__((format(printf, 4, 0)));

/* One line per entry, in the order kept: "file:line:col: error: message" (or "file: error:
 * message" for a whole file). For logs: the guard sends each line to syslog. */
void bms_diag_print(const struct bms_diag *d, FILE *out);
/* For a person (nftables style): each entry's line, then its source line and carets under
 * the whole token, the caret line keeping the source line's tabs so that it lines up; then,
 * when records were dropped, how many. */
void bms_diag_print_source(const struct bms_diag *d, FILE *out);
/* One entry in the caret form (the building block of bms_diag_print_source). */
void bms_diag_print_entry(const struct bms_diag_entry *e, FILE *out);

#endif
