/* tests/unit/test_audit_writer.c: the writer API the gateway uses: tickets,
 * durability, completion fd, checkpoints, reopen continuing the tree, a torn
 * tail cut and recorded, rotation, queue limit, fail closed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/audit_int.h"

struct fx {
	char dir[64];
	char log[128], key[128], pub[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/bms-audit-unit-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->log, sizeof(f->log), "%s/audit.log", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
	snprintf(f->pub, sizeof(f->pub), "%s/key.pub", f->dir);
	char err[256];
	if (audit_keygen(f->key, f->pub, err, sizeof(err)) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* `audit verify --strict` of the files, in order, with the fixture's key: intact, everything signed. */
static void verify_files_strict(const struct fx *f, const char *const *paths, size_t n)
{
	EVP_PKEY *pub;
	char err[256];
	assert_int_equal(audit_key_load(f->pub, false, &pub, err, sizeof(err)), 0);
	FILE *devnull = fopen("/dev/null", "w");
	struct audit_verify_opts o = { .key = pub, .out = devnull, .strict = true };
	assert_int_equal(audit_verify(paths, n, &o), 0);
	fclose(devnull);
	EVP_PKEY_free(pub);
}

static void verify_strict(const struct fx *f)
{
	const char *paths[1] = { f->log };
	verify_files_strict(f, paths, 1);
}

static struct audit_config cfg_for(const struct fx *f)
{
	struct audit_config c = {
		.path = f->log,
		.node = "gw-test",
		.key_path = f->key,
		.sync_always = 1,
		.checkpoint_every_records = 5,
	};
	return c;
}

static void fill_decision(struct bms_identity *id, struct bms_request *req, struct bms_decision *d, uint8_t *data)
{
	memset(id, 0, sizeof(*id));
	id->authenticated = true;
	snprintf(id->subject, sizeof(id->subject), "CN=head-end \"A\",O=Site\\n");
	snprintf(id->role, sizeof(id->role), "operator");
	id->has_fingerprint = true;
	memset(id->fingerprint, 0xab, sizeof(id->fingerprint));
	struct sockaddr_in *sin = (struct sockaddr_in *)&id->addr;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(50123);
	inet_pton(AF_INET, "10.1.2.3", &sin->sin_addr);
	id->addr_len = sizeof(*sin);
	memset(req, 0, sizeof(*req));
	req->proto = BMS_PROTO_MODBUS;
	req->op = BMS_OP_WRITE;
	req->unit = 1;
	req->raw.modbus.fc = 16;
	req->ntargets = 1;
	req->targets[0].space = BMS_SPACE_HOLDING_REGISTER;
	req->targets[0].start = 100;
	req->targets[0].count = 2;
	data[0] = 0x01;
	data[1] = 0x02;
	data[2] = 0xff;
	data[3] = 0xfe;
	req->targets[0].data = data;
	req->targets[0].data_len = 4;
	memset(d, 0, sizeof(*d));
	d->verdict = BMS_VERDICT_DENY;
	d->rule_file = "site.policy";
	d->rule_line = 12;
	snprintf(d->reason, sizeof(d->reason), "write to ahu1.setpoint above its limit 30.0");
}

/* Reads the whole file: lines (records and checkpoints) counted, last record parsed. */
static unsigned count_lines(const char *path, unsigned *checkpoints, json_t **last_record)
{
	struct audit_reader r;
	assert_int_equal(audit_reader_open(&r, path), 0);
	bool term;
	unsigned n = 0, cps = 0;
	if (last_record)
		*last_record = NULL;
	while (audit_reader_next(&r, &term) == 1) {
		assert_true(term);
		struct audit_line ln;
		json_t *o;
		audit_line_parse(r.buf, r.len, &ln, &o);
		assert_true(ln.parsed);
		if (ln.type == AUDIT_LINE_CHECKPOINT) {
			cps++;
			json_decref(o);
		} else if (last_record) {
			json_decref(*last_record);
			*last_record = o;
		} else {
			json_decref(o);
		}
		n++;
	}
	audit_reader_close(&r);
	if (checkpoints)
		*checkpoints = cps;
	return n;
}

static void tickets_become_durable_and_record_fields(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct bms_identity id;
	struct bms_request req;
	struct bms_decision d;
	uint8_t data[4];
	fill_decision(&id, &req, &d, data);
	struct audit_event ev = { .kind = AUDIT_DECISION, .peer = &id, .req = &req, .decision = &d, .device = "ahu1",
				  .result = AUDIT_RESULT_NOT_FORWARDED, .latency_us = 42 };
	uint64_t t[12];
	for (int i = 0; i < 12; i++) {
		assert_int_equal(audit_submit(log, &ev, &t[i]), 0);
		/* the frame buffer is reused at once: the record must already hold its copy */
		if (i == 11)
			memset(data, 0, sizeof(data));
		/* one at a time, so that checkpoints land at 5 and 10 exactly (a burst
		 * is one batch and gets one checkpoint at its end) */
		if (i < 10)
			assert_int_equal(audit_wait(log, t[i]), 0);
	}
	for (int i = 0; i < 12; i++)
		assert_int_equal(t[i], (uint64_t)i);
	struct pollfd p = { .fd = audit_completion_fd(log), .events = POLLIN };
	assert_int_equal(audit_wait(log, t[11]), 0);
	assert_int_equal(poll(&p, 1, 1000), 1);
	audit_drain_completion_fd(log);
	int failing = -1;
	assert_true(audit_durable(log, &failing) >= 12);
	assert_int_equal(failing, 0);
	assert_int_equal(audit_close(log), 0);

	unsigned cps;
	json_t *last;
	unsigned lines = count_lines(f->log, &cps, &last);
	/* 12 records; checkpoints at open (size 0: a new log is signed from its first line, with the
	 * writer's checkpoint policy), at 5, 10 and the final one at close (12) */
	assert_int_equal(lines, 16);
	assert_int_equal(cps, 4);
	{
		FILE *lf = fopen(f->log, "r");
		char first[1024];
		assert_non_null(lf);
		assert_non_null(fgets(first, sizeof(first), lf));
		fclose(lf);
		assert_non_null(strstr(first, "{\"kind\":\"checkpoint\""));
		assert_non_null(strstr(first, "\"size\":0,"));
		assert_non_null(strstr(first, "\"every_records\":5,\"every_seconds\":"));
	}
	assert_int_equal(json_integer_value(json_object_get(last, "seq")), 11);
	assert_string_equal(json_string_value(json_object_get(last, "kind")), "decision");
	assert_string_equal(json_string_value(json_object_get(last, "decision")), "deny");
	assert_string_equal(json_string_value(json_object_get(last, "rule")), "site.policy:12");
	assert_string_equal(json_string_value(json_object_get(last, "device")), "ahu1");
	assert_string_equal(json_string_value(json_object_get(last, "op")), "write");
	assert_string_equal(json_string_value(json_object_get(last, "result")), "not_forwarded");
	json_t *peer = json_object_get(last, "peer");
	assert_string_equal(json_string_value(json_object_get(peer, "subject")), "CN=head-end \"A\",O=Site\\n");
	assert_string_equal(json_string_value(json_object_get(peer, "address")), "10.1.2.3:50123");
	assert_string_equal(json_string_value(json_object_get(peer, "role")), "operator");
	json_t *vals = json_object_get(json_array_get(json_object_get(last, "target"), 0), "values");
	assert_int_equal(json_array_size(vals), 2);
	assert_int_equal(json_integer_value(json_array_get(vals, 0)), 0x0102);
	assert_int_equal(json_integer_value(json_array_get(vals, 1)), 0xfffe);
	json_decref(last);
}

static void reopen_continues_and_torn_tail_is_cut(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct audit_event ev = { .kind = AUDIT_START, .detail = "unit" };
	uint64_t t;
	for (int i = 0; i < 7; i++)
		assert_int_equal(audit_submit(log, &ev, &t), 0);
	assert_int_equal(audit_close(log), 0);

	/* a torn last line, as a crash mid-write leaves it */
	int fd = open(f->log, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	const char torn[] = "{\"seq\":7,\"time\":\"2026-";
	assert_int_equal(write(fd, torn, sizeof(torn) - 1), (ssize_t)(sizeof(torn) - 1));
	close(fd);

	assert_int_equal(audit_open(&c, &log), 0);
	ev.kind = AUDIT_STOP;
	assert_int_equal(audit_submit(log, &ev, &t), 0);
	/* seq 7 is the log's own record of the cut; ours continues after it */
	assert_int_equal(t, 8);
	assert_int_equal(audit_close(log), 0);

	json_t *last;
	count_lines(f->log, NULL, &last);
	assert_int_equal(json_integer_value(json_object_get(last, "seq")), 8);
	json_decref(last);
	/* the recovery record is there, with the byte count */
	FILE *fp = fopen(f->log, "r");
	char line[4096];
	bool found = false;
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, "\"kind\":\"log_recovered\"") && strstr(line, "22 bytes"))
			found = true;
	fclose(fp);
	assert_true(found);
}

static void rotation_starts_files_with_the_last_checkpoint(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	c.rotate_bytes = 2000;
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct audit_event ev = { .kind = AUDIT_CONN_ACCEPTED, .detail = "a connection with some words in it" };
	uint64_t t = 0;
	for (int i = 0; i < 60; i++) {
		assert_int_equal(audit_submit(log, &ev, &t), 0);
		assert_int_equal(audit_wait(log, t), 0);
	}
	assert_int_equal(audit_close(log), 0);
	char name[256];
	snprintf(name, sizeof(name), "%s.000000000000", f->log);
	struct stat st;
	assert_int_equal(stat(name, &st), 0);
	/* the active file starts with a checkpoint that carries the frontier */
	FILE *fp = fopen(f->log, "r");
	char line[AUDIT_LINE_MAX];
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	assert_non_null(strstr(line, "\"kind\":\"checkpoint\""));
	assert_non_null(strstr(line, "\"frontier\":["));
	/* reopening continues the tree from the active file alone */
	assert_int_equal(audit_open(&c, &log), 0);
	uint64_t t2;
	assert_int_equal(audit_submit(log, &ev, &t2), 0);
	assert_int_equal(t2, t + 1);
	assert_int_equal(audit_close(log), 0);
}

/* A crash in the log's first rotation, after the rename and before the new
 * file's header: the only rotated file is the first, which begins with a
 * record, not a checkpoint. Opening continues it (found by the crash test). */
static void a_crash_in_the_first_rotation_is_recovered(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct audit_event ev = { .kind = AUDIT_CONN_ACCEPTED, .detail = "first file" };
	uint64_t t = 0;
	for (int i = 0; i < 7; i++)
		assert_int_equal(audit_submit(log, &ev, &t), 0);
	assert_int_equal(audit_close(log), 0);
	char name[256];
	snprintf(name, sizeof(name), "%s.000000000000", f->log);
	assert_int_equal(rename(f->log, name), 0);
	int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(audit_open(&c, &log), 0);
	uint64_t t2;
	assert_int_equal(audit_submit(log, &ev, &t2), 0);
	assert_int_equal(t2, t + 1);
	assert_int_equal(audit_close(log), 0);
	const char *paths[2] = { name, f->log };
	verify_files_strict(f, paths, 2);
}

static void queue_limit_refuses_and_is_recorded(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	c.queue_limit = 4;
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct audit_event ev = { .kind = AUDIT_CONN_CLOSED };
	uint64_t t;
	int refused = 0;
	for (int i = 0; i < 2000; i++)
		if (audit_submit(log, &ev, &t) == -EAGAIN)
			refused++;
	assert_int_equal(audit_close(log), 0);
	if (refused) {
		FILE *fp = fopen(f->log, "r");
		char line[4096];
		bool found = false;
		while (fgets(line, sizeof(line), fp))
			if (strstr(line, "\"kind\":\"log_dropped\""))
				found = true;
		fclose(fp);
		assert_true(found);
	}
	/* with 4 slots and 2000 submissions from a tight loop, some must have been refused */
	assert_true(refused > 0);
}

static void bad_events_and_configs_are_refused(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	struct audit_log *log;
	c.node = "bad node\n";
	assert_int_equal(audit_open(&c, &log), -EINVAL);
	c = cfg_for(f);
	c.key_path = f->pub; /* a public key cannot sign */
	assert_true(audit_open(&c, &log) < 0);
	c = cfg_for(f);
	assert_int_equal(audit_open(&c, &log), 0);
	uint64_t t;
	struct audit_event ev = { .kind = 0 };
	assert_int_equal(audit_submit(log, &ev, &t), -EINVAL);
	ev.kind = AUDIT_LOG_RECOVERED; /* the log's own kinds are not for callers */
	assert_int_equal(audit_submit(log, &ev, &t), -EINVAL);
	assert_int_equal(audit_close(log), 0);
	/* a private key others can read is refused */
	assert_int_equal(chmod(f->key, 0644), 0);
	assert_int_equal(audit_open(&c, &log), -EPERM);
	assert_int_equal(chmod(f->key, 0600), 0);
}

static void inconsistent_log_is_refused(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct audit_event ev = { .kind = AUDIT_START };
	uint64_t t;
	for (int i = 0; i < 3; i++)
		assert_int_equal(audit_submit(log, &ev, &t), 0);
	assert_int_equal(audit_close(log), 0);
	/* append a whole line that does not continue the sequence */
	FILE *fp = fopen(f->log, "a");
	fprintf(fp, "{\"seq\":9,\"kind\":\"start\",\"prev\":\"0000000000000000\"}\n");
	fclose(fp);
	assert_int_equal(audit_open(&c, &log), -EINVAL);
}

struct thread_arg {
	struct audit_log *log;
	int n;
	int fails;
};

static void *submit_many(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < a->n; i++) {
		char detail[32];
		snprintf(detail, sizeof(detail), "thread record %d", i);
		struct audit_event ev = { .kind = AUDIT_CONN_ACCEPTED, .detail = detail };
		uint64_t t;
		if (audit_submit(a->log, &ev, &t) < 0)
			a->fails++;
	}
	return NULL;
}


static void concurrent_submitters_keep_seq_order(void **state)
{
	/* submitters reserve a seq under the lock and fill their slot outside it: the
	 * writer must still write in seq order with nothing lost, whatever the
	 * interleaving; with sync = always also when records arrive while a group
	 * is being written (they join it before its fdatasync) */
	struct fx *f = *state;
	for (int always = 0; always <= 1; always++) {
		unlink(f->log);
		struct audit_config c = cfg_for(f);
		c.sync_always = always;
		c.checkpoint_every_records = 333;
		int per_thread = always ? 600 : 3000;
		struct audit_log *log;
		assert_int_equal(audit_open(&c, &log), 0);
		pthread_t th[4];
		struct thread_arg a[4];
		for (int i = 0; i < 4; i++) {
			a[i] = (struct thread_arg){ .log = log, .n = per_thread };
			assert_int_equal(pthread_create(&th[i], NULL, submit_many, &a[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			assert_int_equal(pthread_join(th[i], NULL), 0);
			assert_int_equal(a[i].fails, 0);
		}
		assert_int_equal(audit_close(log), 0);
		verify_strict(f);
		json_t *last;
		count_lines(f->log, NULL, &last);
		assert_int_equal(json_integer_value(json_object_get(last, "seq")), 4 * per_thread - 1);
		json_decref(last);
	}
}

static void large_records_outside_the_arena_are_written_in_order(void **state)
{
	/* queued lines live in a byte ring sized from the queue limit; one that
	 * does not fit is allocated on its own. Here every large record (over 8 KB
	 * escaped, more than the ring of a 4-record queue holds) takes that path,
	 * between small ones that stay in the ring. */
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	c.queue_limit = 4;
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	char detail[1025], hash[257], device[257];
	memset(detail, 0x01, 1024);
	detail[1024] = '\0';
	memset(hash, 0x02, 256);
	hash[256] = '\0';
	memset(device, 0x03, 256);
	device[256] = '\0';
	struct audit_event big = { .kind = AUDIT_POLICY_LOADED, .detail = detail, .hash = hash, .device = device };
	struct audit_event small = { .kind = AUDIT_CONN_CLOSED, .detail = "small" };
	uint64_t t = 0;
	for (int i = 0; i < 40; i++) {
		const struct audit_event *ev = i % 3 == 1 ? &big : &small;
		int r;
		while ((r = audit_submit(log, ev, &t)) == -EAGAIN)
			assert_int_equal(audit_wait(log, t), 0);
		assert_int_equal(r, 0);
	}
	assert_int_equal(audit_wait(log, t), 0);
	assert_int_equal(audit_close(log), 0);
	verify_strict(f);

	/* every record in seq order, the large ones whole */
	struct audit_reader rd;
	assert_int_equal(audit_reader_open(&rd, f->log), 0);
	bool term;
	uint64_t next = 0;
	unsigned bigs = 0;
	while (audit_reader_next(&rd, &term) == 1) {
		struct audit_line ln;
		json_t *o;
		audit_line_parse(rd.buf, rd.len, &ln, &o);
		assert_true(ln.parsed);
		if (ln.type == AUDIT_LINE_RECORD && strcmp(ln.kind, "log_dropped") != 0) {
			assert_int_equal(ln.seq, next);
			if (strcmp(ln.kind, "policy_loaded") == 0) {
				assert_true(rd.len > 8192);
				assert_string_equal(json_string_value(json_object_get(o, "detail")), detail);
				assert_string_equal(json_string_value(json_object_get(o, "hash")), hash);
				bigs++;
			}
		}
		if (ln.type == AUDIT_LINE_RECORD)
			next = ln.seq + 1;
		json_decref(o);
	}
	audit_reader_close(&rd);
	assert_int_equal(bigs, 13);
}

/* Waits (on the writer's state, not on time) until the writer thread sleeps. */
static void until_writer_asleep(struct audit_log *log)
{
	for (int i = 0; i < 2000000 && !audit_writer_asleep(log); i++)
		sched_yield();
	assert_true(audit_writer_asleep(log));
}

/* As the guard's loop: once the writer thread sleeps, queue one record (*t its
 * ticket) and flush; returns what audit_flush() says (1 written here, 0 handed
 * to the writer thread, -errno failed). */
static int queue_and_flush(struct audit_log *log, const struct audit_event *ev, uint64_t *t)
{
	until_writer_asleep(log);
	assert_int_equal(audit_queue(log, ev, t), 0);
	return audit_flush(log);
}

/* audit_queue + audit_flush with an interval: while the writer thread sleeps,
 * the caller's thread writes, and the records are durable when audit_flush
 * returns (no completion fd news: no hand-off); what must be the writer
 * thread's (a checkpoint) is handed to it. The log is the same either way. */
static void flush_writes_in_the_callers_thread_while_the_writer_sleeps(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	c.sync_always = 0;
	c.sync_interval_ms = 5;
	void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct audit_event ev = { .kind = AUDIT_START, .detail = "inline" };
	unsigned inline_writes = 0;
	for (uint64_t i = 0; i < 12; i++) {
		until_writer_asleep(log);
		uint64_t t;
		assert_int_equal(audit_queue(log, &ev, &t), 0);
		assert_int_equal(t, i);
		/* queued, not written: nothing woke the writer */
		assert_true(audit_durable(log, NULL) <= t);
		int r = audit_flush(log);
		if (i % 5 == 4) {
			/* this record completes 5 since the last checkpoint: the writer thread's job */
			assert_int_equal(r, 0);
			assert_int_equal(audit_wait(log, t), 0);
			struct pollfd p = { .fd = audit_completion_fd(log), .events = POLLIN };
			assert_int_equal(poll(&p, 1, 1000), 1);
			audit_drain_completion_fd(log);
			continue;
		}
		assert_int_equal(r, 1);
		inline_writes++;
		int failing = -1;
		assert_true(audit_durable(log, &failing) > t);
		assert_int_equal(failing, 0);
		struct pollfd p = { .fd = audit_completion_fd(log), .events = POLLIN };
		assert_int_equal(poll(&p, 1, 0), 0);
	}
	assert_int_equal(inline_writes, 10);
	assert_int_equal(audit_close(log), 0);
	unsigned cps;
	/* 12 records; checkpoints at open, 5, 10 and at close, as in the writer thread's log */
	assert_int_equal(count_lines(f->log, &cps, NULL), 16);
	assert_int_equal(cps, 4);
	verify_strict(f);
	signal(SIGXFSZ, old);
}

/* Never in the caller's thread: with sync = always (an fdatasync), and when
 * SIGXFSZ is not ignored (a write past the file-size limit would kill the
 * process instead of failing). The writer thread writes, woken by audit_flush. */
static void flush_leaves_fdatasync_and_unguarded_signals_to_the_writer(void **state)
{
	struct fx *f = *state;
	struct audit_event ev = { .kind = AUDIT_START, .detail = "writer" };
	void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
	for (int pass = 0; pass < 2; pass++) {
		struct audit_config c = cfg_for(f);
		if (pass == 1) {
			c.sync_always = 0;
			signal(SIGXFSZ, SIG_DFL);
		}
		struct audit_log *log;
		assert_int_equal(audit_open(&c, &log), 0);
		for (int i = 0; i < 3; i++) {
			uint64_t t;
			assert_int_equal(queue_and_flush(log, &ev, &t), 0);
			assert_int_equal(audit_wait(log, t), 0);
		}
		assert_int_equal(audit_close(log), 0);
	}
	signal(SIGXFSZ, old);
	verify_strict(f);
}

/* A write in the caller's thread that takes as long as inline_slow_us leaves
 * the writing to the writer thread for a while (the disk pushes back: the
 * caller's event loop must not stall on every request). */
static void a_slow_flush_hands_writing_back_to_the_writer(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	c.sync_always = 0;
	c.inline_slow_us = 1; /* any real write takes a microsecond */
	void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct audit_event ev = { .kind = AUDIT_START, .detail = "slow" };
	uint64_t t;
	assert_int_equal(queue_and_flush(log, &ev, &t), 1);
	assert_int_equal(queue_and_flush(log, &ev, &t), 0);
	assert_int_equal(audit_wait(log, t), 0);
	assert_int_equal(audit_close(log), 0);
	signal(SIGXFSZ, old);
	verify_strict(f);
}

/* A failed write in the caller's thread (EFBIG past the file-size limit)
 * loses nothing: the log reports itself failing (the gateway refuses), the
 * record stays queued, and the writer thread writes it once it can. */
static void a_failed_flush_keeps_the_record_for_the_writer(void **state)
{
	struct fx *f = *state;
	struct audit_config c = cfg_for(f);
	c.sync_always = 0;
	void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
	struct audit_log *log;
	assert_int_equal(audit_open(&c, &log), 0);
	struct audit_event ev = { .kind = AUDIT_START, .detail = "limit" };
	uint64_t t;
	assert_int_equal(queue_and_flush(log, &ev, &t), 1);
	struct stat st;
	assert_int_equal(stat(f->log, &st), 0);
	off_t whole = st.st_size;
	struct rlimit saved, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	lim = saved;
	lim.rlim_cur = (rlim_t)st.st_size + 10; /* less than a record */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(queue_and_flush(log, &ev, &t), -EFBIG);
	int failing = 0;
	assert_true(audit_durable(log, &failing) <= t);
	assert_int_equal(failing, EFBIG);
	/* the partial write was cut: the file holds whole lines only */
	assert_int_equal(stat(f->log, &st), 0);
	assert_int_equal(st.st_size, whole);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	/* the writer thread retries (every second) and succeeds: the completion fd says when */
	for (int i = 0; i < 10 && audit_durable(log, &failing) <= t; i++) {
		struct pollfd p = { .fd = audit_completion_fd(log), .events = POLLIN };
		assert_int_equal(poll(&p, 1, 3000), 1);
		audit_drain_completion_fd(log);
	}
	assert_true(audit_durable(log, &failing) > t);
	assert_int_equal(failing, 0);
	assert_int_equal(audit_close(log), 0);
	signal(SIGXFSZ, old);
	verify_strict(f);
	json_t *last;
	count_lines(f->log, NULL, &last);
	assert_int_equal(json_integer_value(json_object_get(last, "seq")), (json_int_t)t);
	json_decref(last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(tickets_become_durable_and_record_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(reopen_continues_and_torn_tail_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(rotation_starts_files_with_the_last_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(a_crash_in_the_first_rotation_is_recovered, setup, teardown),
		cmocka_unit_test_setup_teardown(queue_limit_refuses_and_is_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_events_and_configs_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(inconsistent_log_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_submitters_keep_seq_order, setup, teardown),
		cmocka_unit_test_setup_teardown(large_records_outside_the_arena_are_written_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(flush_writes_in_the_callers_thread_while_the_writer_sleeps, setup, teardown),
		cmocka_unit_test_setup_teardown(flush_leaves_fdatasync_and_unguarded_signals_to_the_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(a_slow_flush_hands_writing_back_to_the_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(a_failed_flush_keeps_the_record_for_the_writer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
