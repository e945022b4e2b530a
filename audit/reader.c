/* audit/reader.c: reading the log back. A bounded line reader, and the
 * parser of one line (jansson) that verify, query, prove and the writer's
 * recovery all use. It is the fuzzed surface (fuzz/fuzz_audit_record.c):
 * it never trusts a field's presence, type or length. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit_int.h"

int audit_reader_fdopen(struct audit_reader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->buf = malloc(AUDIT_LINE_MAX + 1);
	r->blk = malloc(AUDIT_READER_BLOCK);
	if (!r->buf || !r->blk) {
		audit_reader_close(r);
		return -ENOMEM;
	}
	return 0;
}

int audit_reader_open(struct audit_reader *r, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		memset(r, 0, sizeof(*r));
		r->fd = -1;
		return -errno;
	}
	return audit_reader_fdopen(r, fd);
}

void audit_reader_close(struct audit_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	free(r->blk);
	r->buf = r->blk = NULL;
}

static int fill(struct audit_reader *r)
{
	if (r->eof)
		return 0;
	ssize_t n;
	do
		n = read(r->fd, r->blk, AUDIT_READER_BLOCK);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0) {
		r->eof = true;
		return 0;
	}
	r->bpos = 0;
	r->bfill = (size_t)n;
	return 1;
}

int audit_reader_next(struct audit_reader *r, bool *terminated)
{
	size_t total = 0;  /* bytes of this line seen, kept or not */
	bool too_long = false;
	r->len = 0;
	r->off = r->next_off;
	*terminated = false;
	for (;;) {
		if (r->bpos == r->bfill) {
			int f = fill(r);
			if (f < 0)
				return f;
			if (f == 0)
				break;
		}
		const char *start = r->blk + r->bpos;
		size_t avail = r->bfill - r->bpos;
		const char *nl = memchr(start, '\n', avail);
		size_t take = nl ? (size_t)(nl - start) : avail;
		if (!too_long) {
			if (r->len + take > AUDIT_LINE_MAX) {
				too_long = true;
			} else {
				memcpy(r->buf + r->len, start, take);
				r->len += take;
			}
		}
		total += take;
		r->bpos += take;
		if (nl) {
			r->bpos++;
			total++;
			*terminated = true;
			break;
		}
	}
	if (total == 0)
		return 0;
	r->next_off = r->off + total;
	r->lineno++;
	r->buf[too_long ? 0 : r->len] = '\0';
	if (too_long) {
		r->len = 0;
		return -E2BIG;
	}
	return 1;
}

/* Copies a hex string member of exactly 2*len digits into out. */
static int get_hex(json_t *o, const char *name, uint8_t *out, size_t len)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_string(v))
		return -EINVAL;
	return audit_unhex(json_string_value(v), json_string_length(v), out, len);
}

static int get_u64(json_t *o, const char *name, uint64_t *out)
{
	json_t *v = json_object_get(o, name);
	/* jansson integers are signed 64-bit: sizes and seqs beyond 2^63 cannot occur in a real log */
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EINVAL;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_str(json_t *o, const char *name, char *out, size_t cap)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_string(v) || json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v))
		return -EINVAL;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int audit_checkpoint_from_json(struct json_t *o, struct audit_checkpoint *cp, char *err, size_t errlen)
{
	const char *what = NULL;
	memset(cp, 0, sizeof(*cp));
	if (!json_is_object(o))
		what = "kind";
	else if (get_str(o, "node", cp->node, sizeof(cp->node)) < 0)
		what = "node";
	else if (get_u64(o, "size", &cp->size) < 0)
		what = "size";
	else if (get_hex(o, "root", cp->root, AUDIT_HASH_LEN) < 0)
		what = "root";
	else if (get_str(o, "time", cp->time, sizeof(cp->time)) < 0)
		what = "time";
	else if (get_str(o, "key", cp->key_id, sizeof(cp->key_id)) < 0)
		what = "key";
	else if (get_hex(o, "sig", cp->sig, AUDIT_SIG_LEN) < 0)
		what = "sig";
	if (what) {
		snprintf(err, errlen, "checkpoint has no valid \"%s\"", what);
		return -EINVAL;
	}
	json_t *er = json_object_get(o, "every_records"), *es = json_object_get(o, "every_seconds");
	if (er || es) {
		uint64_t r = 0, sec = 0;
		if (!er || !es || get_u64(o, "every_records", &r) < 0 || get_u64(o, "every_seconds", &sec) < 0 ||
		    r == 0 || r > UINT32_MAX || sec == 0 || sec > UINT32_MAX) {
			snprintf(err, errlen, "checkpoint has no valid \"every_records\" and \"every_seconds\" pair");
			return -EINVAL;
		}
		cp->has_policy = true;
		cp->every_records = (uint32_t)r;
		cp->every_seconds = (uint32_t)sec;
	}
	json_t *fr = json_object_get(o, "frontier");
	if (fr) {
		size_t n = json_array_size(fr);
		if (!json_is_array(fr) || n > AUDIT_TREE_MAX_HEIGHT) {
			snprintf(err, errlen, "checkpoint \"frontier\" is not an array of at most %d hashes",
				 AUDIT_TREE_MAX_HEIGHT);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			json_t *h = json_array_get(fr, i);
			if (!json_is_string(h) ||
			    audit_unhex(json_string_value(h), json_string_length(h), cp->frontier[i], AUDIT_HASH_LEN) < 0) {
				snprintf(err, errlen, "checkpoint \"frontier\"[%zu] is not a hash", i);
				return -EINVAL;
			}
		}
		cp->has_frontier = true;
		cp->nfrontier = (unsigned)n;
		if (json_object_get(o, "prev")) {
			if (get_hex(o, "prev", cp->prev, AUDIT_PREV_BYTES) < 0) {
				snprintf(err, errlen, "checkpoint \"prev\" is not %d hex digits", 2 * AUDIT_PREV_BYTES);
				return -EINVAL;
			}
			cp->has_prev = true;
		}
	}
	return 0;
}

static void parse_checkpoint(json_t *o, struct audit_line *out)
{
	if (audit_checkpoint_from_json(o, &out->cp, out->error, sizeof(out->error)) == 0)
		out->parsed = true;
}

static void parse_record(json_t *o, struct audit_line *out)
{
	json_t *kind = json_object_get(o, "kind");
	if (json_is_string(kind)) {
		size_t n = json_string_length(kind);
		if (n >= sizeof(out->kind))
			n = sizeof(out->kind) - 1;
		memcpy(out->kind, json_string_value(kind), n);
		out->kind[n] = '\0';
	}
	if (get_u64(o, "seq", &out->seq) == 0)
		out->has_seq = true;
	if (get_hex(o, "prev", out->prev, AUDIT_PREV_BYTES) == 0)
		out->has_prev = true;
	json_t *t = json_object_get(o, "time");
	if (json_is_string(t) && audit_parse_time(json_string_value(t), &out->time_us) < 0)
		out->time_us = 0;
	if (!out->has_seq)
		snprintf(out->error, sizeof(out->error), "record has no valid \"seq\"");
	else if (!out->has_prev)
		snprintf(out->error, sizeof(out->error), "record has no valid \"prev\"");
	else if (!json_is_string(kind))
		snprintf(out->error, sizeof(out->error), "record has no \"kind\"");
	else
		out->parsed = true;
}

void audit_line_parse(const char *line, size_t len, struct audit_line *out, struct json_t **root_out)
{
	memset(out, 0, sizeof(*out));
	out->type = AUDIT_LINE_RECORD;
	if (root_out)
		*root_out = NULL;
	json_error_t jerr;
	/* JSON_REJECT_DUPLICATES: a second "seq" or "kind" must not let a reader
	 * and a writer disagree about what a line says */
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		snprintf(out->error, sizeof(out->error), "not valid JSON (column %d: %.100s)", jerr.column, jerr.text);
		return;
	}
	if (!json_is_object(o)) {
		snprintf(out->error, sizeof(out->error), "not a JSON object");
		json_decref(o);
		return;
	}
	json_t *kind = json_object_get(o, "kind");
	if (json_is_string(kind) && strcmp(json_string_value(kind), "checkpoint") == 0) {
		out->type = AUDIT_LINE_CHECKPOINT;
		snprintf(out->kind, sizeof(out->kind), "checkpoint");
		parse_checkpoint(o, out);
	} else {
		parse_record(o, out);
	}
	if (root_out)
		*root_out = o;
	else
		json_decref(o);
}
