/* cmd/audit_query.c: reading the trail: `query`, `summary` and `tail`.
 * Records are parsed with jansson (audit_line_parse); checkpoint lines are
 * skipped. A decision's device result arrives later as a "result" record
 * with "ref" = the decision's seq: the table joins it. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/read.h"
#include "cmd/audit_cmds.h"

/* ---- shared: field access and the readable row ---- */

static const char *sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static const char *peer_get(json_t *o, const char *k)
{
	return sget(json_object_get(o, "peer"), k);
}

/* Who: the certificate subject, or the address for a legacy peer. */
static void target_str(json_t *o, char *out, size_t cap)
{
	json_t *ts = json_object_get(o, "target");
	out[0] = '\0';
	if (!json_is_array(ts) || json_array_size(ts) == 0) {
		snprintf(out, cap, "-");
		return;
	}
	struct audit_buf b;
	audit_buf_init(&b, out, cap - 1);
	json_t *t = json_array_get(ts, 0);
	const char *space = sget(t, "space");
	if (strcmp(space, "object") == 0) {
		audit_buf_printf(&b, "obj %lld:%lld prop %lld", (long long)json_integer_value(json_object_get(t, "object_type")),
				 (long long)json_integer_value(json_object_get(t, "instance")),
				 (long long)json_integer_value(json_object_get(t, "property")));
		if (json_object_get(t, "index"))
			audit_buf_printf(&b, "[%lld]", (long long)json_integer_value(json_object_get(t, "index")));
		if (json_object_get(t, "priority"))
			audit_buf_printf(&b, " @%lld", (long long)json_integer_value(json_object_get(t, "priority")));
	} else {
		/* short names keep the table readable; --json has the full ones */
		static const char *const shortn[][2] = { { "holding-register", "hr" }, { "input-register", "ir" },
							 { "discrete-input", "di" }, { "file-record", "file" } };
		for (size_t i = 0; i < sizeof(shortn) / sizeof(shortn[0]); i++)
			if (strcmp(space, shortn[i][0]) == 0)
				space = shortn[i][1];
		audit_buf_printf(&b, "%s %lld+%lld", space, (long long)json_integer_value(json_object_get(t, "start")),
				 (long long)json_integer_value(json_object_get(t, "count")));
	}
	json_t *vals = json_object_get(t, "values");
	json_t *val = json_object_get(t, "value");
	if (json_is_array(vals)) {
		audit_buf_puts(&b, "=");
		for (size_t i = 0; i < json_array_size(vals) && i < 4; i++) {
			char *s = json_dumps(json_array_get(vals, i), JSON_ENCODE_ANY);
			audit_buf_printf(&b, "%s%s", i ? "," : "", s ? s : "?");
			free(s);
		}
		if (json_array_size(vals) > 4)
			audit_buf_puts(&b, ",...");
	} else if (val) {
		char *s = json_dumps(val, JSON_ENCODE_ANY);
		audit_buf_printf(&b, "=%s", s ? s : "?");
		free(s);
	}
	if (json_array_size(ts) > 1)
		audit_buf_printf(&b, " (+%zu more)", json_array_size(ts) - 1);
	b.p[b.overflow ? cap - 1 : b.len] = '\0';
	if (b.overflow)
		memcpy(out + cap - 4, "...", 4);
}

/* a result record, found by the decision it completes */
struct result {
	uint64_t ref;
	char text[48];
};

struct results {
	struct result *v;
	size_t n, cap;
};

static int result_cmp(const void *a, const void *b)
{
	const struct result *x = a, *y = b;
	return x->ref < y->ref ? -1 : x->ref > y->ref;
}

static const char *find_result(const struct results *rs, uint64_t seq)
{
	size_t lo = 0, hi = rs->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (rs->v[mid].ref < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < rs->n && rs->v[lo].ref == seq ? rs->v[lo].text : NULL;
}

/* Column widths: a value longer than its column is printed whole (the row is pushed right)
 * rather than cut, except the target, which is summarised already. RULE holds a policy path and
 * line of 64 characters (/etc/bmsgate/policies/site-north-building-7-hvac.policy:1234); REASON comes last and is
 * never cut: it is the one column that says why. */
#define ROW_FMT "%-27s %6s  %-34s %-12s %-12s %-10s %-28.28s %-12s %-22s %-64s %s\n"

static void print_header(void)
{
	printf(ROW_FMT, "TIME", "SEQ", "PEER", "ROLE", "DEVICE", "OP", "TARGET", "DECISION", "RESULT", "RULE", "REASON");
}

static bool peer_authenticated(json_t *o)
{
	json_t *p = json_object_get(o, "peer");
	return json_is_object(p) && json_is_true(json_object_get(p, "authenticated"));
}

/* The PEER column: a certificate's subject only when the certificate was verified. A refused
 * peer's subject, or one a plain connection could not prove, is no identity: such a peer is
 * shown by its address and marked unauthenticated. */
static void peer_str(json_t *o, char *out, size_t cap)
{
	const char *subject = peer_get(o, "subject"), *addr = peer_get(o, "address");
	if (!json_is_object(json_object_get(o, "peer"))) {
		snprintf(out, cap, "-");
	} else if (peer_authenticated(o)) {
		snprintf(out, cap, "%s", *subject ? subject : *addr ? addr : "-");
	} else if (*subject || strcmp(sget(o, "kind"), "conn_refused") == 0) {
		snprintf(out, cap, "%s (unauthenticated)", *addr ? addr : "?");
	} else {
		snprintf(out, cap, "%s", *addr ? addr : "-");
	}
}

static void print_row(json_t *o, const struct results *rs)
{
	char target[64], peer[320], result[64], seqs[24];
	const char *kind = sget(o, "kind");
	const char *decision = sget(o, "decision");
	json_t *seqv = json_object_get(o, "seq");
	uint64_t seq = (uint64_t)json_integer_value(seqv);
	peer_str(o, peer, sizeof(peer));
	snprintf(seqs, sizeof(seqs), "%" PRIu64, seq);
	/* a role is shown only with the verified certificate that carried it */
	const char *role = peer_authenticated(o) && *peer_get(o, "role") ? peer_get(o, "role") : "-";
	target_str(o, target, sizeof(target));
	const char *res = sget(o, "result");
	const char *joined = rs ? find_result(rs, seq) : NULL;
	if (joined)
		snprintf(result, sizeof(result), "%s", joined);
	else if (*res && json_object_get(o, "exception"))
		snprintf(result, sizeof(result), "%s %lld", res, (long long)json_integer_value(json_object_get(o, "exception")));
	else
		snprintf(result, sizeof(result), "%s", *res ? res : "-");
	const char *op = sget(o, "op");
	if (!*op) {
		/* lifecycle events: say what happened in the op/target columns */
		printf(ROW_FMT, sget(o, "time"), seqs, peer, role, *sget(o, "device") ? sget(o, "device") : "-", kind, "-",
		       *decision ? decision : "-", result, "-", *sget(o, "detail") ? sget(o, "detail") : "-");
		return;
	}
	const char *reason = *sget(o, "reason") ? sget(o, "reason") : *sget(o, "detail") ? sget(o, "detail") : "-";
	printf(ROW_FMT, sget(o, "time"), seqs, peer, role, *sget(o, "device") ? sget(o, "device") : "-", op, target,
	       *decision ? decision : kind, result, *sget(o, "rule") ? sget(o, "rule") : "-", reason);
}

/* ---- filters ---- */

struct filter {
	int64_t since, until;
	bool has_since, has_until;
	const char *identity, *role, *device, *decision, *op, *kind;
};

static bool prefix_ci(const char *s, const char *p)
{
	return strncasecmp(s, p, strlen(p)) == 0;
}

static bool matches(const struct filter *f, json_t *o, int64_t t)
{
	if ((f->has_since && t < f->since) || (f->has_until && t >= f->until))
		return false;
	if (f->identity) {
		const char *subj = peer_get(o, "subject");
		if (!strstr(subj, f->identity) && !prefix_ci(peer_get(o, "fingerprint"), f->identity) &&
		    !prefix_ci(peer_get(o, "address"), f->identity))
			return false;
	}
	if (f->role && strcmp(peer_get(o, "role"), f->role) != 0)
		return false;
	if (f->device && strcmp(sget(o, "device"), f->device) != 0)
		return false;
	if (f->decision && strcmp(sget(o, "decision"), f->decision) != 0)
		return false;
	if (f->op && strcmp(sget(o, "op"), f->op) != 0)
		return false;
	if (f->kind && strcmp(sget(o, "kind"), f->kind) != 0)
		return false;
	return true;
}

/* Calls fn for every record line of the files, in order. */
typedef int (*record_fn)(void *ctx, json_t *o, const struct audit_line *ln, const char *line, size_t len);

static int each_record(const char *const *files, size_t n, record_fn fn, void *ctx)
{
	struct audit_line *ln = malloc(sizeof(*ln));
	if (!ln)
		return 2;
	int status = 0;
	for (size_t i = 0; i < n && status == 0; i++) {
		struct audit_reader rd;
		int r = audit_reader_open(&rd, files[i]);
		if (r < 0) {
			fprintf(stderr, "bmsgate audit: cannot read %s: %s\n", files[i], strerror(-r));
			status = 2;
			break;
		}
		bool term;
		while ((r = audit_reader_next(&rd, &term)) != 0) {
			if (r == -E2BIG) {
				fprintf(stderr, "%s:%" PRIu64 ": line too long, skipped\n", files[i], rd.lineno);
				continue;
			}
			if (r < 0) {
				fprintf(stderr, "bmsgate audit: cannot read %s: %s\n", files[i], strerror(-r));
				status = 2;
				break;
			}
			if (!term)
				break; /* a torn last line: not a record yet */
			json_t *o;
			audit_line_parse(rd.buf, rd.len, ln, &o);
			if (ln->type == AUDIT_LINE_RECORD && ln->parsed)
				status = fn(ctx, o, ln, rd.buf, rd.len);
			else if (ln->type == AUDIT_LINE_RECORD)
				fprintf(stderr, "%s:%" PRIu64 ": not a record (%s), skipped; run `bmsgate audit verify`\n",
					files[i], rd.lineno, ln->error);
			json_decref(o);
			if (status)
				break;
		}
		audit_reader_close(&rd);
	}
	free(ln);
	return status < 0 ? 2 : status;
}

static int collect_result(void *ctx, json_t *o, const struct audit_line *ln, const char *line, size_t len)
{
	(void)line;
	(void)len;
	struct results *rs = ctx;
	if (strcmp(ln->kind, "result") != 0 || !json_is_integer(json_object_get(o, "ref")))
		return 0;
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? 2 * rs->cap : 1024;
		struct result *p = realloc(rs->v, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		rs->v = p;
		rs->cap = nc;
	}
	struct result *r = &rs->v[rs->n++];
	r->ref = (uint64_t)json_integer_value(json_object_get(o, "ref"));
	json_t *ex = json_object_get(o, "exception");
	if (ex)
		snprintf(r->text, sizeof(r->text), "%s %lld (%lld us)", sget(o, "result"), (long long)json_integer_value(ex),
			 (long long)json_integer_value(json_object_get(o, "latency_us")));
	else
		snprintf(r->text, sizeof(r->text), "%s (%lld us)", sget(o, "result"),
			 (long long)json_integer_value(json_object_get(o, "latency_us")));
	return 0;
}

struct query_ctx {
	const struct filter *f;
	bool json;
	const struct results *rs;
	uint64_t shown;
};

static int query_one(void *ctx, json_t *o, const struct audit_line *ln, const char *line, size_t len)
{
	struct query_ctx *q = ctx;
	if (!matches(q->f, o, ln->time_us))
		return 0;
	if (q->json) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
	} else {
		/* results are shown joined to their decision, not as rows of their own */
		if (strcmp(ln->kind, "result") == 0 && !q->f->kind)
			return 0;
		print_row(o, q->rs);
	}
	q->shown++;
	return 0;
}

static int parse_filter_arg(struct filter *f, int argc, char **argv, int *i, bool *ok)
{
	const char *a = argv[*i];
	*ok = true;
	if (*i + 1 >= argc)
		return 0;
	const char *v = argv[*i + 1];
	if (strcmp(a, "--since") == 0 || strcmp(a, "--until") == 0) {
		int64_t t;
		if (audit_parse_time(v, &t) < 0) {
			fprintf(stderr, "bmsgate audit: %s '%s': want RFC 3339 (2026-11-22T05:00:00Z) or 2026-11-22\n", a, v);
			*ok = false;
			return 1;
		}
		if (a[2] == 's') {
			f->since = t;
			f->has_since = true;
		} else {
			f->until = t;
			f->has_until = true;
		}
	} else if (strcmp(a, "--identity") == 0) {
		f->identity = v;
	} else if (strcmp(a, "--role") == 0) {
		f->role = v;
	} else if (strcmp(a, "--device") == 0) {
		f->device = v;
	} else if (strcmp(a, "--decision") == 0) {
		static const char *const ok_values[] = { "allow", "deny", "monitor-deny", "malformed" };
		bool found = false;
		for (size_t k = 0; k < 4; k++)
			found |= strcmp(v, ok_values[k]) == 0;
		if (!found) {
			fprintf(stderr, "bmsgate audit: --decision '%s': one of allow, deny, monitor-deny, malformed\n", v);
			*ok = false;
			return 1;
		}
		f->decision = v;
	} else if (strcmp(a, "--op") == 0) {
		if (bms_op_from_name(v) == BMS_OP_NONE && strcmp(v, "none") != 0) {
			fprintf(stderr, "bmsgate audit: --op '%s': one of read, write, command, file, discovery, management, "
					"private, unknown\n", v);
			*ok = false;
			return 1;
		}
		f->op = v;
	} else if (strcmp(a, "--kind") == 0) {
		f->kind = v;
	} else {
		return 0;
	}
	(*i)++;
	return 1;
}

int cmd_audit_query(int argc, char **argv)
{
	struct filter f = { 0 };
	bool json = false;
	const char **files = calloc((size_t)argc, sizeof(*files));
	size_t n = 0;
	int status = 2;
	if (!files)
		return 2;
	for (int i = 1; i < argc; i++) {
		bool ok;
		if (parse_filter_arg(&f, argc, argv, &i, &ok)) {
			if (!ok)
				goto out;
			continue;
		}
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "bmsgate audit query: unknown option '%s'\n", argv[i]);
			goto usage;
		} else
			files[n++] = argv[i];
	}
	if (n == 0)
		goto usage;
	struct results rs = { 0 };
	if (!json) {
		status = each_record(files, n, collect_result, &rs);
		if (status)
			goto out_rs;
		if (rs.n)
			qsort(rs.v, rs.n, sizeof(*rs.v), result_cmp);
		print_header();
	}
	struct query_ctx q = { .f = &f, .json = json, .rs = &rs };
	status = each_record(files, n, query_one, &q);
	if (!json && status == 0)
		printf("(%" PRIu64 " records)\n", q.shown);
out_rs:
	free(rs.v);
	goto out;
usage:
	fprintf(stderr, "usage: bmsgate audit query LOG... [--since T] [--until T] [--identity X] [--role R] [--device D]\n"
			"       [--decision allow|deny|monitor-deny|malformed] [--op read|write|...] [--kind K] [--json]\n"
			"  --identity matches a substring of the certificate subject, or a prefix of the fingerprint or address\n");
out:
	free(files);
	return status;
}

/* ---- summary ---- */

struct summary {
	json_t *by_kind, *by_decision, *by_identity, *by_device, *by_op, *denied_identity, *denied_triple, *hours,
		*hour_denied;
	uint64_t records;
	const struct filter *f;
};

static void bump(json_t *map, const char *key)
{
	json_t *v = json_object_get(map, key);
	if (v)
		json_integer_set(v, json_integer_value(v) + 1);
	else
		json_object_set_new(map, key, json_integer(1));
}

static int summary_one(void *ctx, json_t *o, const struct audit_line *ln, const char *line, size_t len)
{
	(void)line;
	(void)len;
	struct summary *s = ctx;
	if (!matches(s->f, o, ln->time_us))
		return 0;
	s->records++;
	bump(s->by_kind, ln->kind);
	const char *decision = sget(o, "decision");
	char hour[16] = "?";
	const char *t = sget(o, "time");
	if (strlen(t) >= 13) {
		memcpy(hour, t, 13);
		hour[13] = '\0';
	}
	bump(s->hours, hour);
	if (!*decision)
		return 0;
	bump(s->by_decision, decision);
	char peer[320];
	peer_str(o, peer, sizeof(peer));
	bump(s->by_identity, peer);
	bump(s->by_device, *sget(o, "device") ? sget(o, "device") : "-");
	bump(s->by_op, *sget(o, "op") ? sget(o, "op") : "-");
	if (strcmp(decision, "deny") == 0 || strcmp(decision, "monitor-deny") == 0 || strcmp(decision, "malformed") == 0) {
		char triple[512];
		snprintf(triple, sizeof(triple), "%s  %s  %s", peer, *sget(o, "device") ? sget(o, "device") : "-",
			 *sget(o, "op") ? sget(o, "op") : "-");
		bump(s->denied_identity, peer);
		bump(s->denied_triple, triple);
		bump(s->hour_denied, hour);
	}
	return 0;
}

struct kv {
	const char *k;
	json_int_t v;
};

static int kv_by_count(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return strcmp(x->k, y->k);
}

static int kv_by_key(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->k, ((const struct kv *)b)->k);
}

static void print_map(const char *title, json_t *map, size_t top, bool by_key)
{
	size_t n = json_object_size(map), i = 0;
	printf("\n%s\n", title);
	if (n == 0) {
		printf("  (none)\n");
		return;
	}
	struct kv *v = calloc(n, sizeof(*v));
	if (!v)
		return;
	const char *k;
	json_t *val;
	json_object_foreach(map, k, val) {
		v[i].k = k;
		v[i].v = json_integer_value(val);
		i++;
	}
	qsort(v, n, sizeof(*v), by_key ? kv_by_key : kv_by_count);
	for (i = 0; i < n && i < top; i++)
		printf("  %8lld  %s\n", (long long)v[i].v, v[i].k);
	if (n > top)
		printf("  ... %zu more\n", n - top);
	free(v);
}

int cmd_audit_summary(int argc, char **argv)
{
	struct filter f = { 0 };
	const char **files = calloc((size_t)argc, sizeof(*files));
	size_t n = 0;
	int status = 2;
	if (!files)
		return 2;
	for (int i = 1; i < argc; i++) {
		bool ok;
		if (parse_filter_arg(&f, argc, argv, &i, &ok)) {
			if (!ok)
				goto out;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "bmsgate audit summary: unknown option '%s'\n", argv[i]);
			n = 0;
			break;
		}
		files[n++] = argv[i];
	}
	if (n == 0) {
		fprintf(stderr, "usage: bmsgate audit summary LOG... [the filters of `bmsgate audit query`]\n");
		goto out;
	}
	struct summary s = { .f = &f };
	s.by_kind = json_object();
	s.by_decision = json_object();
	s.by_identity = json_object();
	s.by_device = json_object();
	s.by_op = json_object();
	s.denied_identity = json_object();
	s.denied_triple = json_object();
	s.hours = json_object();
	s.hour_denied = json_object();
	status = each_record(files, n, summary_one, &s);
	if (status == 0) {
		printf("%" PRIu64 " records\n", s.records);
		print_map("by kind", s.by_kind, 50, false);
		print_map("by decision", s.by_decision, 10, false);
		print_map("by identity (decisions)", s.by_identity, 20, false);
		print_map("by device (decisions)", s.by_device, 20, false);
		print_map("by operation (decisions)", s.by_op, 20, false);
		print_map("most denied identities (deny, monitor-deny, malformed)", s.denied_identity, 10, false);
		print_map("most denied identity / device / operation", s.denied_triple, 10, false);
		/* per-hour histogram: all records and denials, bars scaled to the busiest hour */
		printf("\nper hour (UTC)      records   denied\n");
		size_t nh = json_object_size(s.hours), i = 0;
		struct kv *v = calloc(nh ? nh : 1, sizeof(*v));
		const char *k;
		json_t *val;
		json_int_t max = 1;
		json_object_foreach(s.hours, k, val) {
			v[i].k = k;
			v[i].v = json_integer_value(val);
			if (v[i].v > max)
				max = v[i].v;
			i++;
		}
		qsort(v, nh, sizeof(*v), kv_by_key);
		for (i = 0; i < nh; i++) {
			json_int_t d = json_integer_value(json_object_get(s.hour_denied, v[i].k));
			int bar = (int)((v[i].v * 40 + max - 1) / max);
			int dbar = (int)((d * 40 + max - 1) / max);
			printf("  %-14s %9lld %8lld  ", v[i].k, (long long)v[i].v, (long long)d);
			for (int c = 0; c < bar; c++)
				putchar(c < dbar ? 'x' : '#');
			putchar('\n');
		}
		if (nh)
			printf("  (# = records, x = denied)\n");
		free(v);
	}
	json_decref(s.by_kind);
	json_decref(s.by_decision);
	json_decref(s.by_identity);
	json_decref(s.by_device);
	json_decref(s.by_op);
	json_decref(s.denied_identity);
	json_decref(s.denied_triple);
	json_decref(s.hours);
	json_decref(s.hour_denied);
out:
	free(files);
	return status;
}

/* ---- tail ---- */

struct tailbuf {
	char *buf; /* AUDIT_LINE_MAX + block */
	size_t len;
	bool skipping; /* inside an over-long line */
};

static void tail_line(const char *line, size_t len, bool json, uint64_t *shown)
{
	struct audit_line ln;
	json_t *o;
	audit_line_parse(line, len, &ln, &o);
	if (ln.type == AUDIT_LINE_RECORD && ln.parsed) {
		if (json) {
			fwrite(line, 1, len, stdout);
			fputc('\n', stdout);
		} else if (strcmp(ln.kind, "result") != 0) {
			print_row(o, NULL);
		} else {
			printf("%-27s %6" PRIu64 "  result of %lld: %s\n", sget(o, "time"), ln.seq,
			       (long long)json_integer_value(json_object_get(o, "ref")), sget(o, "result"));
		}
		(*shown)++;
	}
	json_decref(o);
}

/* Feeds bytes; prints every whole line. Keeps a partial last line for later. */
static void tail_feed(struct tailbuf *t, const char *p, size_t n, bool json, uint64_t *shown)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (!t->skipping) {
			if (t->len + take > AUDIT_LINE_MAX) {
				t->skipping = true;
				t->len = 0;
			} else {
				memcpy(t->buf + t->len, p, take);
				t->len += take;
			}
		}
		p += take;
		n -= take;
		if (nl) {
			if (!t->skipping)
				tail_line(t->buf, t->len, json, shown);
			t->len = 0;
			t->skipping = false;
			p++;
			n--;
		}
	}
}

static int drain(int fd, struct tailbuf *t, bool json, uint64_t *shown)
{
	char blk[65536];
	ssize_t r;
	int got = 0;
	while ((r = read(fd, blk, sizeof(blk))) > 0) {
		tail_feed(t, blk, (size_t)r, json, shown);
		got = 1;
	}
	return r < 0 ? -errno : got;
}

/* The rotated files of path (PATH.<first seq, 12+ digits>) numbered above
 * `after`, in order; *n of them. The writer names a file by its first seq. */
static int rotated_after(const char *path, uint64_t after, uint64_t *out, size_t cap, size_t *n)
{
	char *dcopy = strdup(path), *bcopy = strdup(path);
	*n = 0;
	if (!dcopy || !bcopy) {
		free(dcopy);
		free(bcopy);
		return -ENOMEM;
	}
	const char *dir = dirname(dcopy), *base = basename(bcopy);
	size_t blen = strlen(base);
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) && *n < cap) {
			const char *nm = de->d_name;
			if (strncmp(nm, base, blen) != 0 || nm[blen] != '.')
				continue;
			const char *num = nm + blen + 1;
			size_t nd = strspn(num, "0123456789");
			if (nd < 12 || num[nd])
				continue;
			uint64_t v = strtoull(num, NULL, 10);
			if (v > after || after == UINT64_MAX)
				out[(*n)++] = v;
		}
		closedir(d);
	}
	free(dcopy);
	free(bcopy);
	for (size_t i = 1; i < *n; i++) /* insertion sort: a handful of files */
		for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
			uint64_t tmp = out[j];
			out[j] = out[j - 1];
			out[j - 1] = tmp;
		}
	return 0;
}

/* The number of the rotated file that is the inode we were reading, or UINT64_MAX. */
static uint64_t rotated_number_of(const char *path, const struct stat *st)
{
	uint64_t nums[4096];
	size_t n;
	if (rotated_after(path, UINT64_MAX, nums, 4096, &n) < 0)
		return UINT64_MAX;
	for (size_t i = n; i-- > 0;) {
		char name[4096];
		struct stat rs;
		snprintf(name, sizeof(name), "%s.%012" PRIu64, path, nums[i]);
		if (stat(name, &rs) == 0 && rs.st_ino == st->st_ino && rs.st_dev == st->st_dev)
			return nums[i];
	}
	return UINT64_MAX;
}

/* Prints every record of a whole (rotated, closed) file. */
static int tail_whole_file(const char *name, struct tailbuf *t, bool json, uint64_t *shown)
{
	int fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	t->len = 0;
	t->skipping = false;
	int r = drain(fd, t, json, shown);
	close(fd);
	return r < 0 ? r : 0;
}

int cmd_audit_tail(int argc, char **argv)
{
	bool follow = false, json = false;
	long lines = 10;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0)
			follow = true;
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			char *end;
			lines = strtol(argv[++i], &end, 10);
			if (*end || lines < 0 || lines > 100000)
				path = NULL, i = argc;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			path = NULL;
			break;
		} else
			path = argv[i];
	}
	if (!path) {
		fprintf(stderr, "usage: bmsgate audit tail [-f] [-n LINES] [--json] LOG\n"
				"  -f follows the file, also when the writer rotates it\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && follow && errno == ENOENT) {
		/* the active file may be between rotation steps: wait for it */
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		fprintf(stderr, "bmsgate audit tail: cannot open %s: %s\n", path, strerror(errno));
		return 2;
	}
	struct tailbuf t = { .buf = malloc(AUDIT_LINE_MAX + 1) };
	if (!t.buf) {
		close(fd);
		return 2;
	}
	uint64_t shown = 0;
	if (!json)
		print_header();
	/* the last N records: find where they start by counting newlines back from the end */
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		off_t pos = st.st_size;
		long need = lines + 1; /* the newline ending the last line, then `lines` more */
		char blk[65536];
		off_t start = 0;
		while (pos > 0 && need > 0) {
			size_t n = pos > (off_t)sizeof(blk) ? sizeof(blk) : (size_t)pos;
			pos -= (off_t)n;
			if (pread(fd, blk, n, pos) != (ssize_t)n)
				break;
			for (size_t i = n; i-- > 0;)
				if (blk[i] == '\n' && --need == 0) {
					start = pos + (off_t)i + 1;
					break;
				}
		}
		/* checkpoint lines count among the newlines: a few more records may show; that is fine */
		if (lseek(fd, start, SEEK_SET) < 0)
			start = 0;
	}
	int status = 0;
	if (drain(fd, &t, json, &shown) < 0)
		status = 2;
	while (follow && status == 0) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		int g = drain(fd, &t, json, &shown);
		if (g < 0) {
			status = 2;
			break;
		}
		if (g)
			continue;
		struct stat cur, now;
		if (fstat(fd, &cur) < 0)
			break;
		if (stat(path, &now) < 0)
			continue; /* renamed away, new file not there yet */
		if (now.st_ino != cur.st_ino || now.st_dev != cur.st_dev) {
			/* rotated: finish the old file, then every file rotated after it (the writer
			 * may have rotated more than once since we looked), then the new active one */
			if (drain(fd, &t, json, &shown) < 0)
				status = 2;
			uint64_t mine = rotated_number_of(path, &cur);
			close(fd);
			t.len = 0;
			t.skipping = false;
			fd = open(path, O_RDONLY | O_CLOEXEC);
			while (fd < 0 && errno == ENOENT) {
				nanosleep(&ts, NULL);
				fd = open(path, O_RDONLY | O_CLOEXEC);
			}
			if (fd < 0) {
				status = 2;
				break;
			}
			/* Every file rotated after ours and before the one just opened, in order. The
			 * writer may rotate again while we list, so list until we meet the file we
			 * hold open (by inode): whatever comes before it was missed, and is printed. */
			struct stat held;
			if (mine != UINT64_MAX && fstat(fd, &held) == 0) {
				uint64_t done = mine;
				for (bool met = false; !met && status == 0;) {
					uint64_t nums[4096];
					size_t nn = 0;
					if (rotated_after(path, done, nums, 4096, &nn) < 0 || nn == 0)
						break;
					for (size_t i = 0; i < nn && !met; i++) {
						char name[4096];
						struct stat rs;
						snprintf(name, sizeof(name), "%s.%012" PRIu64, path, nums[i]);
						if (stat(name, &rs) == 0 && rs.st_ino == held.st_ino && rs.st_dev == held.st_dev) {
							met = true; /* ours, rotated meanwhile: read on through fd */
							break;
						}
						if (tail_whole_file(name, &t, json, &shown) < 0)
							status = 2;
						done = nums[i];
					}
				}
				t.len = 0;
				t.skipping = false;
			}
		} else if (now.st_size < lseek(fd, 0, SEEK_CUR)) {
			/* cut: a restarted writer cut the torn line we hold the start of. Read on
			 * from where that line began, which is where the writer goes on. */
			off_t at = lseek(fd, 0, SEEK_CUR) - (off_t)t.len;
			t.len = 0;
			t.skipping = false;
			if (at > now.st_size)
				at = now.st_size;
			if (lseek(fd, at, SEEK_SET) < 0)
				status = 2;
		}
	}
	if (fd >= 0)
		close(fd);
	free(t.buf);
	return status;
}
