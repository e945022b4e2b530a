/* audit/audit_int.h: shared between the files of audit/ (not for other layers): what the
 * writer and the record formatter need beyond the reading API of audit/read.h. */
#ifndef BMS_AUDIT_INT_H
#define BMS_AUDIT_INT_H

#include "audit/read.h"

/* Longest record body audit_submit formats; bounded so that a line always fits. */
#define AUDIT_BODY_MAX 12288

/* A leaf hash in two steps, so that the caller's thread can hash the bulk of
 * a record and the writer only its last bytes: begin absorbs the whole
 * 64-byte blocks of 0x00 || data into st (the SHA-256 chaining value, 40
 * bytes); finish absorbs the rest of data, then more, and writes the leaf
 * hash of data || more. finish leaves st as it was (a failed write is
 * retried from the same state). */
struct audit_leaf_state {
	uint32_t h[8];
	uint32_t absorbed;  /* bytes of 0x00 || data absorbed: a multiple of 64 */
	bool valid;
};
void audit_leaf_begin(struct audit_leaf_state *st, const void *data, size_t len);
void audit_leaf_finish(const struct audit_leaf_state *st, const void *data, size_t len, const void *more,
		       size_t morelen, uint8_t out[static AUDIT_HASH_LEN]);

/* The record body (everything between `{"seq":N,` and `,"prev":...}`). */
BMS_WUR int audit_format_body(const struct audit_event *ev, const char *node, int64_t time_us, struct audit_buf *b);

/* The exact bytes that are signed; returns their length (or -ENOSPC). */
BMS_WUR int audit_checkpoint_message(const struct audit_checkpoint *cp, char *out, size_t cap);
BMS_WUR int audit_checkpoint_sign(EVP_PKEY *key, struct audit_checkpoint *cp);
/* The writer thread waits for work (tests: audit_flush() can only write
 * itself then). */
bool audit_writer_asleep(struct audit_log *log);

#endif
