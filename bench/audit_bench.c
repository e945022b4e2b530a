/* bench/audit_bench.c: audit trail throughput, each figure beside a reference
 * measured in the same run on the same file system (bench/bench_audit pins it):
 *
 *   interval: records/s through audit_submit with sync every 10 ms, until the
 *             last one is durable (written)  vs  plain write(), one call per
 *             record, of the very same bytes (the lines the log holds).
 *             Target: ratio >= 0.5.
 *   always:   records/s with sync = always and 64 requests in flight (each one
 *             forwarded only once durable)  vs  write() + fdatasync() per record.
 *             Target: ratio >= 20.
 *   verify:   records/s of audit_verify (signatures checked) over the log.
 *
 *   audit_bench DIR [RECORDS] [SYNC_RECORDS]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "audit/audit.h"
#include "audit/audit_int.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct fixture {
	struct bms_identity id;
	struct bms_request req;
	struct bms_decision d;
	uint8_t data[8];
	struct audit_event ev;
};

/* A typical decision: an authenticated operator writing two registers. */
static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->id.authenticated = true;
	snprintf(f->id.subject, sizeof(f->id.subject), "CN=head-end-1,OU=BMS,O=Site North,C=DE");
	snprintf(f->id.role, sizeof(f->id.role), "operator");
	f->id.has_fingerprint = true;
	for (int i = 0; i < 32; i++)
		f->id.fingerprint[i] = (uint8_t)(i * 7);
	struct sockaddr_in *sin = (struct sockaddr_in *)&f->id.addr;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(50123);
	sin->sin_addr.s_addr = htonl(0x0a010203);
	f->id.addr_len = sizeof(*sin);
	f->req.proto = BMS_PROTO_MODBUS;
	f->req.op = BMS_OP_WRITE;
	f->req.unit = 1;
	f->req.raw.modbus.fc = 16;
	f->req.ntargets = 1;
	f->req.targets[0].space = BMS_SPACE_HOLDING_REGISTER;
	f->req.targets[0].start = 1200;
	f->req.targets[0].count = 2;
	memcpy(f->data, "\x00\xd7\x01\x02", 4);
	f->req.targets[0].data = f->data;
	f->req.targets[0].data_len = 4;
	f->d.verdict = BMS_VERDICT_ALLOW;
	f->d.rule_file = "/etc/bmsgate/site.policy";
	f->d.rule_line = 42;
	snprintf(f->d.reason, sizeof(f->d.reason), "operator may write ahu1.supply_air_setpoint within 12.0..30.0");
	f->ev = (struct audit_event){ .kind = AUDIT_DECISION, .peer = &f->id, .req = &f->req, .decision = &f->d,
				      .device = "ahu1", .result = AUDIT_RESULT_PENDING, .latency_us = 17 };
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int open_log(const char *path, const char *key, int always, size_t qlimit, struct audit_log **log)
{
	unlink(path);
	struct audit_config c = { .path = path, .node = "bench", .key_path = key, .sync_always = always,
				  .sync_interval_ms = 10, .checkpoint_every_records = 1000, .queue_limit = qlimit };
	return audit_open(&c, log);
}

/* Reads the record lines of a log into one buffer (lines end in \n), checkpoints left out. */
static char *record_bytes(const char *path, size_t *len, size_t *nlines)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap), line[AUDIT_LINE_MAX + 2];
	*nlines = 0;
	while (buf && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "{\"seq\":", 7) != 0)
			continue;
		size_t l = strlen(line);
		if (n + l > cap) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		memcpy(buf + n, line, l);
		n += l;
		(*nlines)++;
	}
	fclose(f);
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: audit_bench DIR [RECORDS] [SYNC_RECORDS]\n");
		return 2;
	}
	const char *dir = argv[1];
	long nrec = argc > 2 ? atol(argv[2]) : 200000;
	long nsync = argc > 3 ? atol(argv[3]) : 300;
	char key[512], pub[512], logp[512], refp[512];
	snprintf(key, sizeof(key), "%s/bench.key", dir);
	snprintf(pub, sizeof(pub), "%s/bench.pub", dir);
	snprintf(logp, sizeof(logp), "%s/bench.log", dir);
	snprintf(refp, sizeof(refp), "%s/reference.out", dir);
	unlink(key);
	unlink(pub);
	char err[256];
	if (audit_keygen(key, pub, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	struct fixture fx;
	fixture_init(&fx);
	struct audit_log *log;
	uint64_t t = 0;

	/* The machine is shared: each figure is the best of REPS runs, audit and
	 * reference alternating, so that both see the same background load. */
	int reps = getenv("AUDIT_BENCH_REPS") ? atoi(getenv("AUDIT_BENCH_REPS")) : 3;
	double t_interval = 1e30, t_write = 1e30;
	size_t len = 0, nlines = 0;
	char *bytes = NULL;
	for (int rep = 0; rep < reps; rep++) {
		/* interval (10 ms): submit as fast as the queue takes them; done when the last is durable */
		if (open_log(logp, key, 0, (size_t)nrec + 16, &log) < 0)
			return 2;
		double t0 = now_s();
		for (long i = 0; i < nrec; i++) {
			int r;
			while ((r = audit_submit(log, &fx.ev, &t)) == -EAGAIN)
				if (audit_wait(log, t) < 0)
					return 3;
			if (r < 0)
				return 3;
		}
		if (audit_wait(log, t) < 0)
			return 3;
		double dt = now_s() - t0;
		t_interval = dt < t_interval ? dt : t_interval;
		if (audit_close(log) < 0)
			return 3;
		if (getenv("AUDIT_BENCH_INTERVAL_ONLY"))
			continue;

		/* reference: the same record bytes, one write() per record, no sync */
		if (!bytes) {
			bytes = record_bytes(logp, &len, &nlines);
			if (!bytes || nlines != (size_t)nrec) {
				fprintf(stderr, "read back %zu of %ld records\n", nlines, nrec);
				return 2;
			}
		}
		int fd = open(refp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		t0 = now_s();
		for (size_t off = 0; off < len;) {
			const char *nl = memchr(bytes + off, '\n', len - off);
			size_t l = (size_t)(nl - (bytes + off)) + 1;
			if (write(fd, bytes + off, l) != (ssize_t)l)
				return 3;
			off += l;
		}
		dt = now_s() - t0;
		t_write = dt < t_write ? dt : t_write;
		close(fd);
	}
	if (getenv("AUDIT_BENCH_INTERVAL_ONLY")) {
		/* for profiling the submit / writer path alone */
		printf("interval 10 ms %.0f records/s\n", (double)nrec / t_interval);
		return 0;
	}

	/* verify speed over the interval run's log */
	EVP_PKEY *pk;
	if (audit_key_load(pub, false, &pk, err, sizeof(err)) < 0)
		return 2;
	FILE *devnull = fopen("/dev/null", "w");
	const char *paths[1] = { logp };
	struct audit_verify_opts vo = { .key = pk, .out = devnull, .quiet = true };
	double t0 = now_s();
	int vr = audit_verify(paths, 1, &vo);
	double t_verify = now_s() - t0;
	fclose(devnull);
	EVP_PKEY_free(pk);
	if (vr != 0) {
		fprintf(stderr, "verify failed on the bench log (%d)\n", vr);
		return 3;
	}

	/* sync = always against write() + fdatasync() per record, alternating, REPS
	 * times each; the disk's flush time varies from one moment to the next, so
	 * the ratio is taken of the medians, not of a lucky run of either */
	double r_fs[16], r_al[16];
	int sreps = reps < 16 ? reps : 16;
	long nalways = nsync * 40;
	for (int rep = 0; rep < sreps; rep++) {
		int fd = open(refp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		size_t off = 0;
		t0 = now_s();
		for (long i = 0; i < nsync; i++) {
			const char *nl = memchr(bytes + off, '\n', len - off);
			size_t l = (size_t)(nl - (bytes + off)) + 1;
			if (write(fd, bytes + off, l) != (ssize_t)l || fdatasync(fd) < 0)
				return 3;
			off += l;
		}
		r_fs[rep] = (double)nsync / (now_s() - t0);
		close(fd);

		/* always, 64 in flight: a request is forwarded (its slot freed) only once durable */
		if (open_log(logp, key, 1, 1024, &log) < 0)
			return 2;
		uint64_t window[64];
		unsigned head = 0, count = 0;
		long done = 0, submitted = 0;
		t0 = now_s();
		while (done < nalways) {
			while (count < 64 && submitted < nalways) {
				if (audit_submit(log, &fx.ev, &window[(head + count) % 64]) < 0)
					return 3;
				count++;
				submitted++;
			}
			if (audit_wait(log, window[head]) < 0)
				return 3;
			uint64_t d = audit_durable(log, NULL);
			while (count && window[head] < d) {
				head = (head + 1) % 64;
				count--;
				done++;
			}
		}
		r_al[rep] = (double)nalways / (now_s() - t0);
		if (audit_close(log) < 0)
			return 3;
	}
	free(bytes);
	qsort(r_fs, (size_t)sreps, sizeof(double), dbl_cmp);
	qsort(r_al, (size_t)sreps, sizeof(double), dbl_cmp);

	double r_interval = (double)nrec / t_interval, r_write = (double)nrec / t_write;
	double r_always = r_al[sreps / 2], r_fsync1 = r_fs[sreps / 2];
	double r_verify = (double)nrec / t_verify;
	printf("records: %ld per run, %.0f bytes each on average; best of %d runs, alternating with the reference\n",
	       nrec, (double)len / (double)nrec, reps);
	printf("interval 10 ms      %10.0f records/s   plain write() per record %10.0f records/s   ratio %.2f  (target >= 0.5) %s\n",
	       r_interval, r_write, r_interval / r_write, r_interval / r_write >= 0.5 ? "MET" : "MISSED");
	printf("always, 64 in flight %9.0f records/s   write()+fdatasync() each  %9.0f records/s   ratio %.1f  (target >= 20) %s"
	       "  (medians of %d)\n",
	       r_always, r_fsync1, r_always / r_fsync1, r_always / r_fsync1 >= 20 ? "MET" : "MISSED", sreps);
	printf("verify              %10.0f records/s   (signatures checked, %ld records)\n", r_verify, nrec);
	unlink(logp);
	unlink(refp);
	unlink(key);
	unlink(pub);
	return 0;
}
