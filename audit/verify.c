/* audit/verify.c: `bmsgate audit verify LOG... --key PUB [--checkpoints FILE]`.
 *
 * Recomputes the Merkle tree over every record line of the files, in the
 * order given (rotated files first, the active one last), and checks:
 *   - each record: valid JSON, seq one more than the last, "prev" equal to
 *     the leaf hash of the record before it (this names the line that changed);
 *   - each checkpoint: its Ed25519 signature, its key, its size against the
 *     records before it and its root against the recomputed tree;
 *   - each file after the first: it starts with the previous file's last
 *     checkpoint and the tree frontier (a gap, an overlap or a foreign file
 *     shows here), and the file before it ended with that checkpoint;
 *   - an external checkpoint file: every checkpoint in it matches the log's
 *     tree at its size, and none lies beyond the end of the log (a cut into
 *     signed history);
 *   - the tail: records after the last checkpoint are unsigned. A crash
 *     leaves fewer than the writer's checkpoint-records, stamped within its
 *     checkpoint-interval of the last checkpoint (the policy that checkpoint
 *     records and signs; the writer signs on every open): that is a warning,
 *     or tampering with --strict. More, or later, or records with no
 *     checkpoint at all, are a problem: the guard would have signed them. A
 *     last line without its newline is torn.
 * One fault is reported once: a checkpoint whose size is off by what the
 * seq checks (or an earlier checkpoint) already reported says nothing more.
 * Every problem is printed as FILE:LINE: message. Exit 0 intact, 1 tampered,
 * 2 cannot read.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_int.h"

/* How far a record's time may lie past the last checkpoint's before the writer's interval
 * rule says it would have been signed: the record's clock (the decision) and the checkpoint's
 * (the signing) are the wall clock, the writer's interval is monotonic, and a slow fdatasync
 * lies between them. A clock stepped forward by more than this inside one interval, followed
 * by a crash, is reported too: the message says so. */
#define VERIFY_CLOCK_SLACK_US (60 * INT64_C(1000000))

/* The writer writes a batch of at most this many records (BATCH_MAX_ENTRIES in writer.c) and the
 * checkpoint it makes due in one writev: a process that dies leaves the whole writev or none of
 * it, so fewer than checkpoint-records unsigned records; a write cut short (power lost, which
 * also leaves a torn last line) can keep a batch's records without their checkpoint. */
#define VERIFY_WRITER_BATCH 4096

struct ext_cp {
	struct audit_checkpoint cp;
	uint64_t line;
};

struct vstate {
	const struct audit_verify_opts *o;
	FILE *out;
	unsigned max;
	uint64_t problems, warnings;
	char key_id[AUDIT_KEYID_LEN + 1];

	struct audit_tree tree;
	bool started;          /* the tree state is known */
	bool tree_broken;      /* a line could not be hashed: roots after it mean nothing */
	bool root_mismatch;    /* a checkpoint root already failed: later ones would fail too */
	uint8_t prev[AUDIT_PREV_BYTES];
	bool prev_known;
	uint64_t expect_seq;
	bool seq_known;
	const char *last_file;
	uint64_t last_line;
	uint64_t records, checkpoints;
	uint64_t first_size;

	bool have_cp;
	struct audit_checkpoint cp;
	const char *cp_file;
	uint64_t cp_line;
	bool last_line_was_cp;  /* in the current file */

	/* records after the last checkpoint */
	uint64_t since_cp;
	uint64_t first_unsigned_seq, first_unsigned_line;
	const char *first_unsigned_file;
	int64_t first_unsigned_us, last_unsigned_us;
	uint64_t last_unsigned_line;
	const char *last_unsigned_file;

	/* records reported missing (+) or extra (-) so far: a checkpoint whose size is off by
	 * exactly this much shows nothing new */
	int64_t size_shift;
	bool torn_tail; /* the last file ends in a torn line: a write was cut short */

	/* the last checkpoint that verified before the first problem */
	bool have_good;
	uint64_t good_size;
	const char *good_file;
	uint64_t good_line;

	struct ext_cp *ext;
	size_t next_ext, next_ext_cmp, next_ext_n;
	const char *ext_path;
};

static void vmsg(struct vstate *v, bool problem, const char *file, uint64_t line, const char *fmt, va_list ap)
{
	if (problem)
		v->problems++;
	else
		v->warnings++;
	if (problem && v->problems > v->max) {
		if (v->problems == v->max + 1)
			fprintf(v->out, "... further problems not shown\n");
		return;
	}
	if (line)
		fprintf(v->out, "%s:%" PRIu64 ": %s", file, line, problem ? "" : "warning: ");
	else
		fprintf(v->out, "%s: %s", file, problem ? "" : "warning: ");
	vfprintf(v->out, fmt, ap);
	fputc('\n', v->out);
}

static void problem(struct vstate *v, const char *file, uint64_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct vstate *v, const char *file, uint64_t line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(v, true, file, line, fmt, ap);
	va_end(ap);
}

static void warning(struct vstate *v, const char *file, uint64_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void warning(struct vstate *v, const char *file, uint64_t line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(v, v->o->strict, file, line, fmt, ap);
	va_end(ap);
}

static void info(struct vstate *v, const char *file, uint64_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void info(struct vstate *v, const char *file, uint64_t line, const char *fmt, ...)
{
	if (v->o->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (line)
		fprintf(v->out, "%s:%" PRIu64 ": ", file, line);
	else
		fprintf(v->out, "%s: ", file);
	vfprintf(v->out, fmt, ap);
	fputc('\n', v->out);
	va_end(ap);
}

static void where_last_cp(const struct vstate *v, char *out, size_t cap)
{
	if (v->have_cp)
		snprintf(out, cap, "the checkpoint at %s:%" PRIu64 " (size %" PRIu64 ")", v->cp_file, v->cp_line,
			 v->cp.size);
	else
		snprintf(out, cap, "the start of the log");
}

/* Compares the tree with external checkpoints whose size it has reached. */
static void check_ext(struct vstate *v)
{
	while (v->next_ext < v->next_ext_n && v->ext[v->next_ext].cp.size <= v->tree.size) {
		struct ext_cp *e = &v->ext[v->next_ext++];
		if (e->cp.size < v->first_size)
			continue; /* before the first file given: nothing to compare with */
		if (e->cp.size < v->tree.size)
			continue; /* jumped over by a gap, which is reported already */
		if (v->tree_broken)
			continue;
		uint8_t root[AUDIT_HASH_LEN];
		audit_tree_root(&v->tree, root);
		if (memcmp(root, e->cp.root, AUDIT_HASH_LEN) != 0)
			problem(v, v->ext_path, e->line,
				"the log at tree size %" PRIu64 " (%s:%" PRIu64 ") differs from this signed checkpoint "
				"(%s): the log was rewritten at or before that point",
				e->cp.size, v->last_file ? v->last_file : "?", v->last_line, e->cp.time);
	}
}

static int check_sig(struct vstate *v, const char *file, uint64_t line, const struct audit_checkpoint *cp)
{
	if (!v->o->key)
		return 0;
	if (strcmp(cp->key_id, v->key_id) != 0) {
		problem(v, file, line,
			"checkpoint (size %" PRIu64 ") names key %s, not the given key %s: a file from another log, "
			"or the wrong --key",
			cp->size, cp->key_id, v->key_id);
		return -1;
	}
	if (audit_checkpoint_verify(v->o->key, cp) < 0) {
		problem(v, file, line, "checkpoint (size %" PRIu64 "): the signature does not verify: the line was altered",
			cp->size);
		return -1;
	}
	return 0;
}

static void note_good(struct vstate *v, const char *file, uint64_t line)
{
	if (v->problems == 0) {
		v->have_good = true;
		v->good_size = v->tree.size;
		v->good_file = file;
		v->good_line = line;
	}
}

static void adopt_frontier(struct vstate *v, const struct audit_checkpoint *cp)
{
	if (audit_tree_from_frontier(&v->tree, cp->size, (const uint8_t (*)[AUDIT_HASH_LEN])cp->frontier, cp->nfrontier) < 0)
		return;
	v->started = true;
	v->tree_broken = false;
	v->root_mismatch = false;
	v->prev_known = false;
	v->expect_seq = cp->size;
	v->seq_known = true;
}

static void on_checkpoint(struct vstate *v, const char *file, uint64_t line, struct audit_line *ln, bool first_line)
{
	struct audit_checkpoint *cp = &ln->cp;
	v->checkpoints++;
	if (!ln->parsed) {
		problem(v, file, line, "checkpoint line cannot be read (%s): the line was altered", ln->error);
		return;
	}
	bool sig_ok = check_sig(v, file, line, cp) == 0;
	if (first_line && cp->has_frontier) {
		struct audit_tree t;
		uint8_t root[AUDIT_HASH_LEN];
		if (audit_tree_from_frontier(&t, cp->size, (const uint8_t (*)[AUDIT_HASH_LEN])cp->frontier, cp->nfrontier) < 0) {
			problem(v, file, line, "the frontier has %u hashes; a tree of size %" PRIu64 " has %d", cp->nfrontier,
				cp->size, __builtin_popcountll(cp->size));
			return;
		}
		audit_tree_root(&t, root);
		if (memcmp(root, cp->root, AUDIT_HASH_LEN) != 0) {
			problem(v, file, line, "the frontier does not hash to the checkpoint's root: the line was altered");
			return;
		}
		if (!v->started) {
			if (!sig_ok)
				return;
			adopt_frontier(v, cp);
			if (cp->has_prev) {
				memcpy(v->prev, cp->prev, AUDIT_PREV_BYTES);
				v->prev_known = true;
			}
			v->first_size = cp->size;
			info(v, file, line,
			     "starts at tree size %" PRIu64 " (rotated): records before it are in earlier files, not given",
			     cp->size);
		} else {
			uint8_t cur[AUDIT_HASH_LEN];
			audit_tree_root(&v->tree, cur);
			if (cp->size > v->tree.size) {
				problem(v, file, line,
					"rotation gap: this file starts at tree size %" PRIu64 " but the file before it "
					"ends at size %" PRIu64 ": records %" PRIu64 "..%" PRIu64 " (a file?) are missing",
					cp->size, v->tree.size, v->tree.size, cp->size - 1);
			} else if (cp->size < v->tree.size) {
				problem(v, file, line,
					"this file starts at tree size %" PRIu64 ", before the end of the file before it "
					"(size %" PRIu64 "): files out of order, repeated or swapped",
					cp->size, v->tree.size);
			} else if (!v->tree_broken && memcmp(cur, cp->root, AUDIT_HASH_LEN) != 0) {
				problem(v, file, line,
					"this file does not continue the file before it: same size %" PRIu64
					", different root (a file of another log swapped in, or the previous file changed)",
					cp->size);
			} else {
				/* continuous: keep prev and seq from the previous file */
				v->since_cp = 0;
				v->have_cp = true;
				v->cp = *cp;
				v->cp_file = file;
				v->cp_line = line;
				if (sig_ok)
					note_good(v, file, line);
				return;
			}
			if (sig_ok)
				adopt_frontier(v, cp);
		}
		v->since_cp = 0;
		v->have_cp = true;
		v->cp = *cp;
		v->cp_file = file;
		v->cp_line = line;
		if (sig_ok)
			note_good(v, file, line);
		check_ext(v);
		return;
	}
	if (!v->started) {
		v->started = true;
		v->expect_seq = 0;
		v->seq_known = true;
		v->prev_known = true;
		memset(v->prev, 0, sizeof(v->prev));
	}
	char where[256];
	where_last_cp(v, where, sizeof(where));
	int64_t delta = (int64_t)(cp->size - v->tree.size);
	if (cp->size != v->tree.size && delta == v->size_shift) {
		v->root_mismatch = true; /* reported already, at the record or an earlier checkpoint */
	} else if (cp->size != v->tree.size) {
		int64_t fresh = delta - v->size_shift;
		v->size_shift = delta;
		if (fresh > 0)
			problem(v, file, line,
				"checkpoint says tree size %" PRIu64 " but %" PRIu64 " records precede it: %" PRId64
				" record(s) deleted since %s",
				cp->size, v->tree.size, fresh, where);
		else
			problem(v, file, line,
				"checkpoint says tree size %" PRIu64 " but %" PRIu64 " records precede it: %" PRId64
				" record(s) inserted since %s",
				cp->size, v->tree.size, -fresh, where);
		v->root_mismatch = true;
	} else if (!v->tree_broken && !v->root_mismatch) {
		uint8_t root[AUDIT_HASH_LEN];
		audit_tree_root(&v->tree, root);
		if (memcmp(root, cp->root, AUDIT_HASH_LEN) != 0) {
			problem(v, file, line,
				"checkpoint (size %" PRIu64 "): the root does not match the records: a record after %s "
				"was changed, inserted, deleted or moved",
				cp->size, where);
			v->root_mismatch = true;
		} else if (sig_ok) {
			note_good(v, file, line);
		}
	}
	v->have_cp = true;
	v->cp = *cp;
	v->cp_file = file;
	v->cp_line = line;
	v->since_cp = 0;
}

static void on_record(struct vstate *v, const char *file, uint64_t line, const char *buf, size_t len,
		      const struct audit_line *ln)
{
	if (!v->started) {
		v->started = true;
		v->expect_seq = 0;
		v->seq_known = true;
		v->prev_known = true;
		memset(v->prev, 0, sizeof(v->prev));
	}
	bool keep_prev = false;
	if (!ln->parsed) {
		problem(v, file, line, "not a valid record (%s): the line was altered or inserted", ln->error);
	} else {
		if (v->seq_known && ln->seq != v->expect_seq) {
			if (ln->seq > v->expect_seq) {
				char range[64];
				if (ln->seq - v->expect_seq == 1)
					snprintf(range, sizeof(range), "record %" PRIu64 " was", v->expect_seq);
				else
					snprintf(range, sizeof(range), "records %" PRIu64 "..%" PRIu64 " were", v->expect_seq,
						 ln->seq - 1);
				problem(v, file, line, "seq %" PRIu64 " where %" PRIu64 " was expected: %s deleted or moved",
					ln->seq, v->expect_seq, range);
				v->size_shift += (int64_t)(ln->seq - v->expect_seq);
			} else {
				problem(v, file, line,
					"seq %" PRIu64 " after seq %" PRIu64 ": a record was inserted, duplicated or moved "
					"(reordered)",
					ln->seq, v->expect_seq - 1);
				/* One line too many: the records after it still follow the one before it,
				 * so they are not reported again as deleted or as having a wrong prev. */
				v->size_shift -= 1;
				keep_prev = true;
			}
		} else if (v->prev_known && memcmp(ln->prev, v->prev, AUDIT_PREV_BYTES) != 0) {
			if (v->last_file)
				problem(v, file, line,
					"\"prev\" does not match the record before it (%s:%" PRIu64
					"): that record was changed (or this line's prev was)",
					v->last_file, v->last_line);
			else
				problem(v, file, line, "\"prev\" of the first record is not zero: the line was altered");
		}
		if (!keep_prev)
			v->expect_seq = ln->seq + 1;
	}
	if (!ln->parsed)
		v->expect_seq++;
	if (v->since_cp++ == 0) {
		v->first_unsigned_seq = ln->parsed ? ln->seq : v->tree.size;
		v->first_unsigned_file = file;
		v->first_unsigned_line = line;
		v->first_unsigned_us = ln->parsed ? ln->time_us : 0;
		v->last_unsigned_us = INT64_MIN;
	}
	if (ln->parsed && ln->time_us > v->last_unsigned_us) {
		v->last_unsigned_us = ln->time_us;
		v->last_unsigned_file = file;
		v->last_unsigned_line = line;
	}
	uint8_t leaf[AUDIT_HASH_LEN];
	audit_leaf_hash(buf, len, leaf);
	if (audit_tree_append(&v->tree, leaf) < 0)
		v->tree_broken = true;
	if (!keep_prev)
		memcpy(v->prev, leaf, AUDIT_PREV_BYTES);
	v->prev_known = true;
	v->records++;
	v->last_file = file;
	v->last_line = line;
	check_ext(v);
}

static int ext_cmp(const void *a, const void *b)
{
	const struct ext_cp *x = a, *y = b;
	return x->cp.size < y->cp.size ? -1 : x->cp.size > y->cp.size;
}

static int load_ext(struct vstate *v, const char *path)
{
	struct audit_reader rd;
	int r = audit_reader_open(&rd, path);
	if (r < 0) {
		fprintf(v->out, "cannot read %s: %s\n", path, strerror(-r));
		return 2;
	}
	size_t cap = 0;
	bool term;
	struct audit_line *ln = malloc(sizeof(*ln));
	if (!ln) {
		audit_reader_close(&rd);
		return 2;
	}
	int status = 0;
	while ((r = audit_reader_next(&rd, &term)) != 0) {
		if (r == -E2BIG) {
			problem(v, path, rd.lineno, "line too long for a checkpoint");
			continue;
		}
		if (r < 0) {
			fprintf(v->out, "cannot read %s: %s\n", path, strerror(-r));
			status = 2;
			break;
		}
		if (!term) {
			warning(v, path, rd.lineno, "torn last line (%zu bytes without a newline) ignored", rd.len);
			break;
		}
		audit_line_parse(rd.buf, rd.len, ln, NULL);
		if (ln->type != AUDIT_LINE_CHECKPOINT || !ln->parsed) {
			problem(v, path, rd.lineno, "not a checkpoint line%s%s", ln->parsed ? "" : ": ",
				ln->parsed ? "" : ln->error);
			continue;
		}
		if (check_sig(v, path, rd.lineno, &ln->cp) < 0)
			continue;
		if (v->next_ext_n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct ext_cp *n = realloc(v->ext, ncap * sizeof(*n));
			if (!n) {
				status = 2;
				break;
			}
			v->ext = n;
			cap = ncap;
		}
		v->ext[v->next_ext_n].cp = ln->cp;
		v->ext[v->next_ext_n].line = rd.lineno;
		v->next_ext_n++;
	}
	free(ln);
	audit_reader_close(&rd);
	if (v->next_ext_n)
		qsort(v->ext, v->next_ext_n, sizeof(*v->ext), ext_cmp);
	return status;
}

/* Verifies one file; returns 2 if it cannot be read, else 0. */
static int verify_file(struct vstate *v, const char *path, size_t fi, size_t nfiles)
{
	struct audit_reader rd;
	int r = audit_reader_open(&rd, path);
	if (r < 0) {
		fprintf(v->out, "cannot read %s: %s\n", path, strerror(-r));
		return 2;
	}
	struct audit_line *ln = malloc(sizeof(*ln));
	if (!ln) {
		audit_reader_close(&rd);
		return 2;
	}
	bool term, first = true;
	int status = 0;
	v->last_line_was_cp = false;
	while ((r = audit_reader_next(&rd, &term)) != 0) {
		if (r == -E2BIG) {
			problem(v, path, rd.lineno, "line longer than %d bytes: not written by bmsgate", AUDIT_LINE_MAX);
			v->tree_broken = true;
			v->prev_known = false;
			v->last_line_was_cp = false;
			first = false;
			continue;
		}
		if (r < 0) {
			fprintf(v->out, "cannot read %s: %s\n", path, strerror(-r));
			status = 2;
			break;
		}
		if (!term) {
			if (fi + 1 == nfiles)
				v->torn_tail = true;
			if (fi + 1 == nfiles)
				warning(v, path, rd.lineno,
					"the last line is torn (%" PRIu64 " bytes without a newline): a crash while writing "
					"leaves this, and the writer cuts it when it restarts; a cut made by hand looks the same",
					rd.next_off - rd.off);
			else
				problem(v, path, rd.lineno,
					"this file ends in a torn line (%" PRIu64 " bytes) although another file follows: "
					"it was cut",
					rd.next_off - rd.off);
			break;
		}
		audit_line_parse(rd.buf, rd.len, ln, NULL);
		if (first && fi > 0 && !(ln->type == AUDIT_LINE_CHECKPOINT && ln->parsed && ln->cp.has_frontier))
			problem(v, path, rd.lineno,
				"this file does not start with the previous file's checkpoint and frontier: files out of "
				"order, or a file that does not continue the one before it");
		if (ln->type == AUDIT_LINE_CHECKPOINT) {
			on_checkpoint(v, path, rd.lineno, ln, first);
			v->last_line_was_cp = ln->parsed && ln->cp.size == v->tree.size;
		} else {
			on_record(v, path, rd.lineno, rd.buf, rd.len, ln);
			v->last_line_was_cp = false;
		}
		first = false;
	}
	if (status == 0 && first && rd.lineno == 0)
		info(v, path, 0, "empty file");
	if (status == 0 && fi + 1 < nfiles && !first && !v->last_line_was_cp)
		problem(v, path, rd.lineno,
			"this file does not end with a checkpoint of its full size although another file follows: "
			"its tail was cut or changed");
	free(ln);
	audit_reader_close(&rd);
	return status;
}

/* The records after the last checkpoint: what a crash can leave (a warning), or what the
 * writer's own rules say it would have signed by then (a problem). */
static void check_unsigned_tail(struct vstate *v, const char *last)
{
	uint64_t n = v->since_cp;
	const char *file = v->first_unsigned_file ? v->first_unsigned_file : last;
	uint64_t line = v->first_unsigned_line;
	char first[AUDIT_TIME_LEN + 1] = "?", lastt[AUDIT_TIME_LEN + 1] = "?";
	if (v->first_unsigned_us)
		audit_format_time(v->first_unsigned_us, first);
	if (v->last_unsigned_us != INT64_MIN)
		audit_format_time(v->last_unsigned_us, lastt);
	char span[96];
	snprintf(span, sizeof(span), "seq %" PRIu64 "..%" PRIu64 ", from %s", v->first_unsigned_seq,
		 v->first_unsigned_seq + n - 1, first);
	if (!v->have_cp) {
		problem(v, file, line,
			"no signature covers any of the %" PRIu64 " record(s) (%s): every checkpoint was stripped, or "
			"the guard stopped before its first (it signs after checkpoint-records records or "
			"checkpoint-interval, 1000 and 10 s by default); nothing here can be verified",
			n, span);
		return;
	}
	char where[256];
	where_last_cp(v, where, sizeof(where));
	const struct audit_checkpoint *cp = &v->cp;
	int64_t cp_us = 0;
	bool cp_time = audit_parse_time(cp->time, &cp_us) == 0;
	uint64_t may = cp->has_policy ? (uint64_t)cp->every_records - 1 + (v->torn_tail ? VERIFY_WRITER_BATCH : 0) : 0;
	if (cp->has_policy && n > may) {
		problem(v, file, line,
			"%" PRIu64 " record(s) after %s, signed %s, carry no signature (%s): the guard signs at least "
			"every %u records (as that checkpoint records), so a crash leaves at most %" PRIu64 " unsigned: "
			"checkpoints were stripped, or records appended",
			n, where, cp->time, span, (unsigned)cp->every_records, may);
		return;
	}
	if (cp->has_policy && cp_time && !v->torn_tail && v->last_unsigned_us != INT64_MIN &&
	    v->last_unsigned_us > cp_us + (int64_t)cp->every_seconds * 1000000 + VERIFY_CLOCK_SLACK_US) {
		problem(v, v->last_unsigned_file, v->last_unsigned_line,
			"%" PRIu64 " record(s) after %s, signed %s, carry no signature (%s), this one from %s, %" PRId64
			" s after that checkpoint: the guard signs within %u s while records arrive (as that checkpoint "
			"records): checkpoints were stripped, or records appended (or the guard's clock jumped forward "
			"just before a crash)",
			n, where, cp->time, span, lastt, (v->last_unsigned_us - cp_us) / 1000000,
			(unsigned)cp->every_seconds);
		return;
	}
	if (cp->has_policy)
		warning(v, file, line,
			"%" PRIu64 " record(s) after %s are not covered by a signature (%s): a crash leaves this (up to "
			"%" PRIu64 " records within %u s of a checkpoint; the writer signs them when it restarts); "
			"without --checkpoints a cut cannot be told from a crash",
			n, where, span, may, (unsigned)cp->every_seconds);
	else
		warning(v, file, line,
			"%" PRIu64 " record(s) after %s are not covered by a signature (%s): a crash leaves this (the "
			"writer signs them when it restarts); that checkpoint does not record how often the writer "
			"signs, and without --checkpoints a cut cannot be told from a crash",
			n, where, span);
}

int audit_verify(const char *const *paths, size_t npaths, const struct audit_verify_opts *o)
{
	struct vstate *v = calloc(1, sizeof(*v));
	if (!v)
		return 2;
	v->o = o;
	v->out = o->out ? o->out : stdout;
	v->max = o->max_problems ? o->max_problems : 50;
	audit_tree_init(&v->tree);
	int status = 0;
	if (o->key && audit_key_id(o->key, v->key_id) < 0) {
		fprintf(v->out, "cannot use the given key\n");
		status = 2;
		goto out;
	}
	if (o->checkpoints_path) {
		v->ext_path = o->checkpoints_path;
		status = load_ext(v, o->checkpoints_path);
		if (status)
			goto out;
	}
	for (size_t i = 0; i < npaths; i++) {
		status = verify_file(v, paths[i], i, npaths);
		if (status)
			goto out;
	}
	check_ext(v);
	/* external checkpoints past the end: signed history that the log no longer holds */
	for (size_t i = 0; i < v->next_ext_n; i++) {
		const struct ext_cp *e = &v->ext[i];
		if (e->cp.size > v->tree.size) {
			problem(v, v->ext_path, e->line,
				"the log ends at tree size %" PRIu64 " but this checkpoint (signed %s) covers size %" PRIu64
				": signed history was cut off the end of the log (records %" PRIu64 "..%" PRIu64 ")",
				v->tree.size, e->cp.time, e->cp.size, v->tree.size, e->cp.size - 1);
			break; /* the largest one says it all; they are sorted, report the first past the end */
		}
	}
	const char *last = npaths ? paths[npaths - 1] : "-";
	if (v->since_cp > 0 && v->started)
		check_unsigned_tail(v, last);
	if (!o->key)
		warning(v, last, 0, "no --key: signatures were not checked");
	char root[2 * AUDIT_HASH_LEN + 1];
	uint8_t r[AUDIT_HASH_LEN];
	audit_tree_root(&v->tree, r);
	audit_hex(r, AUDIT_HASH_LEN, root);
	if (v->problems) {
		fprintf(v->out, "TAMPERED: %" PRIu64 " problem(s) in %zu file(s), %" PRIu64 " records read",
			v->problems, npaths, v->records);
		if (v->have_good)
			fprintf(v->out, "; signed history verifies up to tree size %" PRIu64 " (%s:%" PRIu64 ")",
				v->good_size, v->good_file, v->good_line);
		else
			fprintf(v->out, "; no signed checkpoint verified before the first problem");
		fputc('\n', v->out);
		status = 1;
	} else {
		fprintf(v->out, "OK: %" PRIu64 " records in %zu file(s), tree size %" PRIu64 ", root %s", v->records, npaths,
			v->tree.size, root);
		if (v->have_cp)
			fprintf(v->out, "; signed up to size %" PRIu64 " (%s:%" PRIu64 ", %s, key %s)", v->cp.size, v->cp_file,
				v->cp_line, v->cp.time, v->cp.key_id);
		if (v->warnings)
			fprintf(v->out, "; %" PRIu64 " warning(s)", v->warnings);
		if (!o->checkpoints_path && v->started)
			fprintf(v->out, "; its end is vouched for only by --checkpoints (a cut right after a checkpoint "
				"looks whole)");
		fputc('\n', v->out);
	}
out:
	free(v->ext);
	free(v);
	return status;
}
