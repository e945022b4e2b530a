/* audit/read.h: reading an audit trail back: lines, checkpoints, keys, time stamps,
 * verification, and the bounded text builder the readers format with. For the audit
 * front ends (cmd/) and the tests; the writer's own internals are in audit_int.h.
 * Line formats are in docs/audit-format.md. */
#ifndef BMS_AUDIT_READ_H
#define BMS_AUDIT_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/merkle.h"

/* Longest line the writer produces and the reader accepts (bytes, without
 * the newline). A rotated file's first line holds up to 64 frontier hashes. */
#define AUDIT_LINE_MAX 16384
#define AUDIT_NODE_MAX 64
#define AUDIT_TIME_LEN 27      /* 2026-11-22T05:04:31.123456Z */
#define AUDIT_KEYID_LEN 16     /* hex of the first 8 bytes of SHA-256(raw public key) */
#define AUDIT_SIG_LEN 64
/* "prev": the first bytes of the previous record's leaf hash. A locator that
 * names the record that changed; the signed Merkle root is the security. */
#define AUDIT_PREV_BYTES 8

/* Bounded output buffer. Overflow is sticky: the result is then rejected. */
struct audit_buf {
	char *p;   /* borrowed */
	size_t len, cap;
	bool overflow;
};
void audit_buf_init(struct audit_buf *b, char *p, size_t cap);
void audit_buf_printf(struct audit_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Inline: the record path puts a few dozen short pieces per record, most of
 * them literals whose length the compiler knows (a few moves, no call). */
static inline void audit_buf_put(struct audit_buf *b, const void *s, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void audit_buf_puts(struct audit_buf *b, const char *s)
{
	audit_buf_put(b, s, strlen(s));
}

/* Decimal without printf (the record path is hot); kv = a literal then the number. */
static inline void audit_buf_u64(struct audit_buf *b, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	audit_buf_put(b, tmp + sizeof(tmp) - n, n);
}

static inline void audit_buf_kv_u64_n(struct audit_buf *b, const char *lit, size_t litlen, uint64_t v)
{
	audit_buf_put(b, lit, litlen);
	audit_buf_u64(b, v);
}

/* lit must be a string literal: its length is known at compile time */
#define audit_buf_kv_u64(b, lit, v) audit_buf_kv_u64_n((b), "" lit, sizeof(lit) - 1, (v))
#define audit_buf_lit(b, lit) audit_buf_put((b), "" lit, sizeof(lit) - 1)
/* A JSON string literal with quotes; invalid UTF-8 becomes U+FFFD. */
void audit_buf_json_str(struct audit_buf *b, const char *s);
void audit_buf_json_strn(struct audit_buf *b, const char *s, size_t n);

/* Time as RFC 3339 UTC with microseconds; out holds AUDIT_TIME_LEN + 1. */
void audit_format_time(int64_t us, char out[static AUDIT_TIME_LEN + 1]);
int64_t audit_now_us(void);
/* Parses RFC 3339 ("...Z" or "+hh:mm", optional fraction), "YYYY-MM-DD HH:MM[:SS]" (UTC) or
 * "YYYY-MM-DD". -EINVAL otherwise. */
BMS_WUR int audit_parse_time(const char *s, int64_t *us);

/* A signed checkpoint. frontier is present only in a file's first line. */
struct audit_checkpoint {
	char node[AUDIT_NODE_MAX + 1];
	uint64_t size;
	uint8_t root[AUDIT_HASH_LEN];
	char time[AUDIT_TIME_LEN + 1];
	char key_id[AUDIT_KEYID_LEN + 1];
	uint8_t sig[AUDIT_SIG_LEN];
	/* The writer's checkpoint policy when it signed (signed with the rest, message version 2):
	 * it signs at least every every_records records and every every_seconds seconds while
	 * records arrive, so `verify` knows how many records a crash may leave unsigned. Absent
	 * (version 1) in lines written before it was recorded. */
	bool has_policy;
	uint32_t every_records, every_seconds;
	unsigned nfrontier;
	bool has_frontier;
	/* with the frontier: the "prev" locator of the tree's last record, so that
	 * a file's first record can be chained without the file before it */
	bool has_prev;
	uint8_t prev[AUDIT_PREV_BYTES];
	uint8_t frontier[AUDIT_TREE_MAX_HEIGHT][AUDIT_HASH_LEN];
};

/* Keys (Ed25519 through EVP_PKEY). */
BMS_WUR int audit_keygen(const char *priv_path, const char *pub_path, char *err, size_t errlen);
BMS_WUR int audit_key_load(const char *path, bool private_key, EVP_PKEY **out, char *err, size_t errlen);
BMS_WUR int audit_key_id(EVP_PKEY *key, char out[static AUDIT_KEYID_LEN + 1]);
/* 0 if the signature verifies, -EBADMSG if not. */
BMS_WUR int audit_checkpoint_verify(EVP_PKEY *key, const struct audit_checkpoint *cp);
/* The checkpoint line (no newline). */
BMS_WUR int audit_checkpoint_format(const struct audit_checkpoint *cp, struct audit_buf *b);

/* Reading lines back (jansson). */
enum audit_line_type {
	AUDIT_LINE_RECORD = 0,     /* a leaf: anything that is not a checkpoint */
	AUDIT_LINE_CHECKPOINT,
};
struct audit_line {
	enum audit_line_type type;
	bool parsed;               /* valid JSON object with the fields its type needs */
	char error[160];           /* why not parsed */
	/* records */
	bool has_seq;
	uint64_t seq;
	bool has_prev;
	uint8_t prev[AUDIT_PREV_BYTES];
	char kind[24];
	int64_t time_us;           /* 0 if absent or unparseable */
	/* checkpoints */
	struct audit_checkpoint cp;
};
/* Classifies and parses one line (without its newline). Never fails for bad
 * input: the result says what was wrong. If root_out is non-NULL and the line
 * is a valid JSON object, *root_out receives it (caller json_decref()s). */
struct json_t;
void audit_line_parse(const char *line, size_t len, struct audit_line *out, struct json_t **root_out);

/* A checkpoint from its JSON object (a checkpoint line, or one embedded in a proof). */
BMS_WUR int audit_checkpoint_from_json(struct json_t *o, struct audit_checkpoint *cp, char *err, size_t errlen);

/* A line reader over a file descriptor with a length limit. Returns 1 with a
 * line in buf/len (*terminated = its newline was there), 0 at EOF, -errno on
 * a read error, -E2BIG for a line over AUDIT_LINE_MAX (the reader then skips
 * to the next newline; off/lineno still count it). */
#define AUDIT_READER_BLOCK 65536
struct audit_reader {
	int fd;           /* owned */
	char *buf;        /* owned: the current line, AUDIT_LINE_MAX + 1 */
	size_t len;
	char *blk;        /* owned: read-ahead block */
	size_t bpos, bfill;
	bool eof;
	uint64_t off;     /* byte offset of the line just read */
	uint64_t next_off;
	uint64_t lineno;  /* 1-based number of the line just read */
};
BMS_WUR int audit_reader_open(struct audit_reader *r, const char *path);
/* Takes ownership of fd. */
BMS_WUR int audit_reader_fdopen(struct audit_reader *r, int fd);
BMS_WUR int audit_reader_next(struct audit_reader *r, bool *terminated);
void audit_reader_close(struct audit_reader *r);

/* Verification (audit/verify.c). Returns the exit status: 0 intact, 1
 * tampered (every problem printed to out as FILE:LINE: message), 2 cannot
 * read. key may be NULL only for a structural check (no signature checked:
 * then status is at best 0 with a warning). */
struct audit_verify_opts {
	EVP_PKEY *key;                  /* borrowed */
	const char *checkpoints_path;   /* NULL, or a file of checkpoint lines kept elsewhere */
	bool strict;                    /* an unsigned or torn tail counts as tampering */
	bool quiet;                     /* problems and the verdict only */
	unsigned max_problems;          /* 0 = 50 */
	FILE *out;
};
int audit_verify(const char *const *paths, size_t npaths, const struct audit_verify_opts *o);

#endif
