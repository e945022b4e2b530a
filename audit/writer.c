/* audit/writer.c: the one writer of the log file.
 *
 * Callers format a record body and queue it (audit_submit). A writer thread
 * takes whatever is queued as one batch, wraps each body into its line
 * ({"seq":N,<body>,"prev":"..."}), hashes it into the Merkle tree, appends
 * the batch (and a signed checkpoint when one is due) with one write(), and
 * with sync_always one fdatasync: group commit, so N pending requests cost
 * one sync. Then it publishes how far the log is durable and pokes an
 * eventfd.
 *
 * A batch that fails to write is cut back off the file (ftruncate to where
 * it began), the tree state is restored, and the batch stays queued: the log
 * reports itself failing and the writer retries every second. Sequence
 * numbers therefore never skip.
 *
 * Recovery (audit_open): read the active file (or, if it has no whole line,
 * the newest rotated one), cut a torn last line, check every line's seq, prev
 * and each checkpoint's root against the rebuilt tree, and carry on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"

#define BATCH_MAX_ENTRIES 4096
#define BATCH_MAX_BYTES (1u << 20)
#define RETRY_MS 1000
#define LOUD_EVERY_US (10 * 1000000LL)

/* One queued record. A submitter reserves a slot (and its seq) under the
 * lock, then formats and hashes outside it and marks the slot ready; the
 * writer takes ready slots in seq order. */
struct qent {
	uint64_t seq;
	size_t len;
	char *line;       /* owned: `{"seq":N,` + body; the writer appends `,"prev":"..."}` */
	struct audit_leaf_state hs; /* SHA-256 over 0x00 || line so far; !hs.valid = hash it all */
	bool ready;
};

struct audit_log {
	/* configuration (strings owned) */
	char *path, *node, *copy_path, *dir;
	int sync_always;
	unsigned sync_interval_ms, cp_every_records, cp_every_seconds, rotate_seconds;
	uint64_t rotate_bytes;
	int fail_open;
	size_t qcap;
	EVP_PKEY *key;
	int efd;

	/* shared, under mu */
	pthread_mutex_t mu;
	pthread_cond_t wake;  /* the writer waits here */
	pthread_cond_t done;  /* audit_wait waits here */
	struct qent *q;       /* ring of qcap + internal slack */
	size_t qsize, qhead, qcount;  /* ring; qcount counts reserved slots, ready or not */
	uint64_t next_seq;
	uint64_t ready_count;  /* slots made ready so far; also read without the lock (atomic) */
	uint64_t durable;
	int failing;
	uint64_t dropped;
	bool stopping;
	pthread_t thread;
	bool thread_started;
	/* interval mode: a second thread fdatasyncs every sync_interval_ms, so
	 * that the writer keeps appending while the disk flushes */
	pthread_t sync_thread;
	bool sync_started, sync_stop;
	pthread_cond_t sync_wake;
	bool dirty;                  /* written, not yet fdatasync'ed */
	int fd;                      /* written by the writer under mu; read by the sync thread under mu */

	/* writer thread only (and audit_open before the thread starts) */
	int copy_fd;
	uint64_t file_bytes, file_first_seq;
	int64_t file_started_us;
	struct audit_tree tree;
	uint8_t prev[AUDIT_PREV_BYTES];
	struct audit_checkpoint cp;  /* the last checkpoint written */
	bool have_cp;
	int64_t cp_time_us;
	int64_t last_sync_us;
	int64_t retry_at_us, loud_at_us;
	int close_err;
	char *wbuf;
	size_t wcap;
};

static void loud(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void loud(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bmsgate: audit: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void poke(struct audit_log *log)
{
	uint64_t one = 1;
	/* a full eventfd counter is still readable: nothing to do on EAGAIN */
	ssize_t n = write(log->efd, &one, sizeof(one));
	(void)n;
}

/* ---- queue (under mu) ---- */

/* Reserves the next slot and seq. Internal records (recovered, dropped) may use the slack above qcap. */
static struct qent *reserve_locked(struct audit_log *log, bool internal)
{
	size_t limit = internal ? log->qsize : log->qcap;
	if (log->qcount >= limit)
		return NULL;
	struct qent *e = &log->q[(log->qhead + log->qcount) % log->qsize];
	e->seq = log->next_seq++;
	e->ready = false;
	e->line = NULL;
	e->hs.valid = false;
	log->qcount++;
	return e;
}

/* Room for `{"seq":<20 digits>,` in front of a body. */
#define LINE_PREFIX_MAX 32

/* Puts `{"seq":N,` + body at the start of line (which has LINE_PREFIX_MAX + len bytes). */
static size_t make_line(char *line, uint64_t seq, const char *body, size_t len)
{
	struct audit_buf b;
	audit_buf_init(&b, line, LINE_PREFIX_MAX + len);
	audit_buf_kv_u64(&b, "{\"seq\":", seq);
	audit_buf_lit(&b, ",");
	audit_buf_put(&b, body, len);
	return b.len;
}

static int enqueue_event_locked(struct audit_log *log, const struct audit_event *ev, bool internal, uint64_t *seq)
{
	char *tmp = malloc(AUDIT_BODY_MAX);
	if (!tmp)
		return -ENOMEM;
	struct audit_buf b;
	audit_buf_init(&b, tmp, AUDIT_BODY_MAX);
	int r = audit_format_body(ev, log->node, ev->time_us ? ev->time_us : audit_now_us(), &b);
	if (r < 0) {
		free(tmp);
		return r;
	}
	char *line = malloc(LINE_PREFIX_MAX + b.len);
	struct qent *e = line ? reserve_locked(log, internal) : NULL;
	if (!e) {
		free(line);
		free(tmp);
		return line ? -EAGAIN : -ENOMEM;
	}
	e->len = make_line(line, e->seq, tmp, b.len);
	e->line = line;
	e->ready = true;
	__atomic_add_fetch(&log->ready_count, 1, __ATOMIC_RELEASE);
	*seq = e->seq;
	free(tmp);
	pthread_cond_signal(&log->wake);
	return 0;
}

int audit_submit(struct audit_log *log, const struct audit_event *ev, uint64_t *ticket)
{
	if (!log || !ev || !ticket || ev->kind == 0 || ev->kind >= AUDIT_LOG_RECOVERED)
		return -EINVAL;
	/* format outside the lock: the caller's buffers are read here and only here */
	char stackbuf[AUDIT_BODY_MAX];
	struct audit_buf b;
	audit_buf_init(&b, stackbuf, sizeof(stackbuf));
	int r = audit_format_body(ev, log->node, ev->time_us ? ev->time_us : audit_now_us(), &b);
	if (r < 0)
		return r == -ENOSPC ? -E2BIG : r;
	/* allocated before the slot is reserved: once reserved, nothing may fail */
	char *line = malloc(LINE_PREFIX_MAX + b.len);
	if (!line)
		return -ENOMEM;
	struct qent *e = NULL;
	pthread_mutex_lock(&log->mu);
	if (log->stopping) {
		r = -ESHUTDOWN;
	} else {
		e = reserve_locked(log, false);
		if (!e) {
			log->dropped++;
			r = -EAGAIN;
		}
	}
	uint64_t seq = e ? e->seq : 0;
	pthread_mutex_unlock(&log->mu);
	if (!e) {
		free(line);
		return r;
	}
	/* outside the lock, in the caller's thread: the line and the bulk of its
	 * hash, so that the writer thread only appends "prev" and finishes the hash */
	size_t len = make_line(line, seq, stackbuf, b.len);
	struct audit_leaf_state hs;
	audit_leaf_begin(&hs, line, len);
	pthread_mutex_lock(&log->mu);
	e->line = line;
	e->len = len;
	e->hs = hs;
	e->ready = true;
	__atomic_add_fetch(&log->ready_count, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->mu);
	*ticket = seq;
	return 0;
}

int audit_completion_fd(struct audit_log *log)
{
	return log->efd;
}

void audit_drain_completion_fd(struct audit_log *log)
{
	uint64_t v;
	ssize_t n = read(log->efd, &v, sizeof(v));
	(void)n;
}

uint64_t audit_durable(struct audit_log *log, int *failing)
{
	pthread_mutex_lock(&log->mu);
	uint64_t d = log->durable;
	if (failing)
		*failing = log->failing;
	pthread_mutex_unlock(&log->mu);
	return d;
}

int audit_fail_open(const struct audit_log *log)
{
	return log->fail_open;
}

int audit_wait(struct audit_log *log, uint64_t ticket)
{
	pthread_mutex_lock(&log->mu);
	while (log->durable <= ticket && !log->failing && log->thread_started)
		pthread_cond_wait(&log->done, &log->mu);
	int r = log->durable > ticket ? 0 : log->failing ? -log->failing : -ESHUTDOWN;
	pthread_mutex_unlock(&log->mu);
	return r;
}

/* ---- file helpers (writer) ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int r = fsync(dfd) < 0 ? -errno : 0;
	close(dfd);
	return r;
}

static void rotated_name(const struct audit_log *log, uint64_t first_seq, char *out, size_t cap)
{
	snprintf(out, cap, "%s.%012" PRIu64, log->path, first_seq);
}

static int make_checkpoint(struct audit_log *log, int64_t now_real)
{
	struct audit_checkpoint *cp = &log->cp;
	memset(cp, 0, sizeof(*cp));
	snprintf(cp->node, sizeof(cp->node), "%s", log->node);
	cp->size = log->tree.size;
	audit_tree_root(&log->tree, cp->root);
	audit_format_time(now_real, cp->time);
	int r = audit_checkpoint_sign(log->key, cp);
	if (r < 0)
		return r;
	log->have_cp = true;
	return 0;
}

static int append_checkpoint_line(struct audit_log *log, struct audit_buf *b, bool frontier)
{
	log->cp.has_frontier = frontier;
	log->cp.has_prev = frontier;
	if (frontier) {
		log->cp.nfrontier = log->tree.n;
		for (unsigned i = 0; i < log->tree.n; i++)
			memcpy(log->cp.frontier[i], log->tree.hash[i], AUDIT_HASH_LEN);
		memcpy(log->cp.prev, log->prev, AUDIT_PREV_BYTES);
	}
	int r = audit_checkpoint_format(&log->cp, b);
	log->cp.has_frontier = false;
	log->cp.has_prev = false;
	if (r < 0)
		return r;
	audit_buf_put(b, "\n", 1);
	return b->overflow ? -ENOSPC : 0;
}

static int copy_checkpoint(struct audit_log *log)
{
	if (log->copy_fd < 0)
		return 0;
	char line[1024];
	struct audit_buf b;
	audit_buf_init(&b, line, sizeof(line));
	int r = append_checkpoint_line(log, &b, false);
	if (r < 0)
		return r;
	r = write_all(log->copy_fd, line, b.len);
	if (r == 0 && log->sync_always && fdatasync(log->copy_fd) < 0)
		r = -errno;
	return r;
}

/* Creates the active file, starting with the last checkpoint and the tree's frontier. */
static int start_file(struct audit_log *log)
{
	int fd = open(log->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	char *line = malloc(AUDIT_LINE_MAX);
	int r = -ENOMEM;
	if (!line)
		goto fail;
	struct audit_buf b;
	audit_buf_init(&b, line, AUDIT_LINE_MAX);
	r = append_checkpoint_line(log, &b, true);
	if (r < 0)
		goto fail;
	r = write_all(fd, line, b.len);
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (r == 0)
		r = sync_dir(log->dir);
	if (r < 0)
		goto fail;
	free(line);
	pthread_mutex_lock(&log->mu);
	log->fd = fd;
	pthread_mutex_unlock(&log->mu);
	log->file_bytes = b.len;
	log->file_first_seq = log->tree.size;
	log->file_started_us = mono_us();
	return 0;
fail:
	free(line);
	close(fd);
	unlink(log->path);
	return r;
}

/* Closes the active file with a checkpoint and renames it PATH.<first seq>. */
static int rotate(struct audit_log *log)
{
	char name[4096];
	int r = 0;
	if (log->tree.size == log->file_first_seq)
		return 0; /* no record in this file: nothing to rotate */
	if (!log->have_cp || log->cp.size != log->tree.size) {
		char line[1024];
		struct audit_buf b;
		audit_buf_init(&b, line, sizeof(line));
		r = make_checkpoint(log, audit_now_us());
		if (r == 0)
			r = append_checkpoint_line(log, &b, false);
		if (r == 0)
			r = write_all(log->fd, line, b.len);
		if (r < 0) {
			if (ftruncate(log->fd, (off_t)log->file_bytes) < 0) { /* the next batch write will fail too */
			}
			return r;
		}
		log->file_bytes += b.len;
		log->cp_time_us = mono_us();
		r = copy_checkpoint(log);
		if (r < 0)
			loud("cannot append checkpoint to %s: %s", log->copy_path, strerror(-r));
	}
	if (fdatasync(log->fd) < 0)
		return -errno;
	rotated_name(log, log->file_first_seq, name, sizeof(name));
	if (rename(log->path, name) < 0)
		return -errno;
	pthread_mutex_lock(&log->mu);
	close(log->fd);
	log->fd = -1;
	log->dirty = false; /* synced just above */
	pthread_mutex_unlock(&log->mu);
	r = start_file(log);
	if (r < 0)
		loud("rotated %s to %s but cannot start a new file: %s", log->path, name, strerror(-r));
	return r;
}

/* ---- the writer thread ---- */

struct batch {
	struct qent ents[BATCH_MAX_ENTRIES];
	size_t n;
};

static void wrap_record(struct audit_log *log, struct qent *e, struct audit_buf *b)
{
	size_t start = b->len;
	char suffix[2 * AUDIT_PREV_BYTES + 16];
	struct audit_buf sb;
	audit_buf_init(&sb, suffix, sizeof(suffix));
	audit_buf_lit(&sb, ",\"prev\":\"");
	audit_hex(log->prev, AUDIT_PREV_BYTES, suffix + sb.len);
	sb.len += 2 * AUDIT_PREV_BYTES;
	audit_buf_lit(&sb, "\"}");
	audit_buf_put(b, e->line, e->len);
	audit_buf_put(b, suffix, sb.len);
	/* the leaf is the line without its newline */
	uint8_t leaf[AUDIT_HASH_LEN];
	if (e->hs.valid) {
		audit_leaf_finish(&e->hs, suffix, sb.len, leaf);
	} else {
		audit_leaf_hash(b->p + start, b->len - start, leaf);
	}
	if (audit_tree_append(&log->tree, leaf) < 0)
		abort(); /* 2^64 records */
	memcpy(log->prev, leaf, AUDIT_PREV_BYTES);
	audit_buf_put(b, "\n", 1);
}

/* Writes one batch (possibly empty) and a checkpoint if due or forced.
 * 0 on success; on failure the file and tree are as before. */
static int write_batch(struct audit_log *log, struct batch *bt, bool force_cp)
{
	struct audit_tree saved_tree = log->tree;
	uint8_t saved_prev[AUDIT_PREV_BYTES];
	struct audit_checkpoint saved_cp = log->cp;
	bool saved_have_cp = log->have_cp;
	memcpy(saved_prev, log->prev, sizeof(saved_prev));
	int r;
	bool wrote_cp = false;

	if (log->fd < 0) {
		r = start_file(log);
		if (r < 0)
			return r;
	}
	struct audit_buf b;
	audit_buf_init(&b, log->wbuf, log->wcap);
	for (size_t i = 0; i < bt->n; i++)
		wrap_record(log, &bt->ents[i], &b);
	int64_t now = mono_us();
	uint64_t since_cp = log->tree.size - (log->have_cp ? log->cp.size : 0);
	if (since_cp > 0 && (force_cp || since_cp >= log->cp_every_records ||
			     now - log->cp_time_us >= (int64_t)log->cp_every_seconds * 1000000)) {
		r = make_checkpoint(log, audit_now_us());
		if (r == 0)
			r = append_checkpoint_line(log, &b, false);
		if (r < 0)
			goto fail;
		wrote_cp = true;
	}
	if (b.overflow) {
		r = -ENOSPC; /* cannot happen: wcap covers a full batch; refuse rather than write a cut line */
		goto fail;
	}
	if (b.len == 0)
		return 0;
	r = write_all(log->fd, b.p, b.len);
	if (r == 0 && log->sync_always && fdatasync(log->fd) < 0)
		r = -errno;
	if (r < 0) {
		/* cut whatever part of the batch reached the file, so the next attempt appends whole lines */
		if (ftruncate(log->fd, (off_t)log->file_bytes) < 0)
			loud("cannot cut a partial write off %s: %s", log->path, strerror(errno));
		goto fail;
	}
	log->file_bytes += b.len;
	if (log->sync_always) {
		log->last_sync_us = now;
	} else {
		pthread_mutex_lock(&log->mu);
		log->dirty = true;
		pthread_mutex_unlock(&log->mu);
	}
	if (wrote_cp) {
		log->cp_time_us = now;
		int cr = copy_checkpoint(log);
		if (cr < 0)
			loud("cannot append checkpoint to %s: %s", log->copy_path, strerror(-cr));
	}
	return 0;
fail:
	log->tree = saved_tree;
	memcpy(log->prev, saved_prev, sizeof(saved_prev));
	log->cp = saved_cp;
	log->have_cp = saved_have_cp;
	return r;
}

static bool rotate_due(const struct audit_log *log, int64_t now)
{
	if (log->fd < 0 || log->tree.size == log->file_first_seq)
		return false;
	return (log->rotate_bytes && log->file_bytes >= log->rotate_bytes) ||
	       (log->rotate_seconds && now - log->file_started_us >= (int64_t)log->rotate_seconds * 1000000);
}

/* When the writer must next wake up with nothing queued (monotonic us), or INT64_MAX. */
static int64_t next_deadline(const struct audit_log *log)
{
	int64_t d = INT64_MAX;
	if (log->failing)
		d = log->retry_at_us;
	if (log->tree.size > (log->have_cp ? log->cp.size : 0)) {
		int64_t t = log->cp_time_us + (int64_t)log->cp_every_seconds * 1000000;
		d = t < d ? t : d;
	}
	if (log->rotate_seconds && log->fd >= 0 && log->tree.size > log->file_first_seq) {
		int64_t t = log->file_started_us + (int64_t)log->rotate_seconds * 1000000;
		d = t < d ? t : d;
	}
	return d;
}

static void *writer_main(void *arg)
{
	struct audit_log *log = arg;
	struct batch *bt = malloc(sizeof(*bt));
	if (!bt) {
		pthread_mutex_lock(&log->mu);
		log->failing = ENOMEM;
		log->close_err = -ENOMEM;
		pthread_cond_broadcast(&log->done);
		pthread_mutex_unlock(&log->mu);
		poke(log);
		return NULL;
	}
	pthread_mutex_lock(&log->mu);
	bool spun = false;
	for (;;) {
		int64_t now = mono_us();
		bool retry_wait = log->failing && now < log->retry_at_us && !log->stopping;
		bool head_ready = log->qcount > 0 && log->q[log->qhead].ready;
		if (!head_ready && !retry_wait && !log->stopping && !spun && !log->sync_always) {
			/* Interval mode: before sleeping, look for more work for a few microseconds
			 * (yielding the core): under load a record arrives before a wake-up could,
			 * and a caller that must wake a sleeping writer pays a system call per
			 * record. Not with sync = always: there records gather during each
			 * fdatasync, and an early grab would only make the next batch smaller. */
			uint64_t seen = __atomic_load_n(&log->ready_count, __ATOMIC_ACQUIRE);
			pthread_mutex_unlock(&log->mu);
			for (int64_t t0 = mono_us(); mono_us() - t0 < 30;) {
				if (__atomic_load_n(&log->ready_count, __ATOMIC_ACQUIRE) != seen)
					break;
				sched_yield();
			}
			pthread_mutex_lock(&log->mu);
			spun = true;
			continue;
		}
		if ((!head_ready || retry_wait) && !log->stopping) {
			int64_t d = next_deadline(log);
			if (d > now) {
				if (d == INT64_MAX) {
					pthread_cond_wait(&log->wake, &log->mu);
				} else {
					struct timespec ts = { .tv_sec = d / 1000000, .tv_nsec = (d % 1000000) * 1000 };
					pthread_cond_timedwait(&log->wake, &log->mu, &ts);
				}
				spun = false;
				continue;
			}
		}
		spun = false;
		bool stopping = log->stopping;
		bt->n = 0;
		size_t bytes = 0;
		while (bt->n < log->qcount && bt->n < BATCH_MAX_ENTRIES && bytes < BATCH_MAX_BYTES) {
			struct qent *e = &log->q[(log->qhead + bt->n) % log->qsize];
			if (!e->ready)
				break; /* its submitter is still formatting it: the next round takes it */
			bt->ents[bt->n] = *e;
			e->hs.valid = false; /* the batch uses the midstate; a retry hashes the whole line */
			bytes += e->len + 64;
			bt->n++;
		}
		bool last = stopping && bt->n == log->qcount;
		pthread_mutex_unlock(&log->mu);

		int r = write_batch(log, bt, last);
		now = mono_us();
		if (r == 0 && last && !log->sync_always && log->fd >= 0 && fdatasync(log->fd) < 0)
			loud("fdatasync %s failed: %s", log->path, strerror(errno));
		if (r == 0 && rotate_due(log, now)) {
			int rr = rotate(log);
			if (rr < 0 && log->fd >= 0) {
				loud("cannot rotate %s: %s; still writing to it", log->path, strerror(-rr));
				log->file_started_us = now; /* try again one period later, not in a loop */
			}
			/* fd < 0: the next batch retries start_file and fails loudly if it cannot */
		}

		pthread_mutex_lock(&log->mu);
		if (r < 0) {
			if (!log->failing || now >= log->loud_at_us) {
				loud("cannot write %s: %s; %s", log->path, strerror(-r),
				     log->fail_open ? "fail = open: requests are forwarded UNAUDITED until it recovers"
						    : "failing closed: requests are refused until it recovers");
				log->loud_at_us = now + LOUD_EVERY_US;
			}
			bool changed = log->failing != -r;
			log->failing = -r;
			log->retry_at_us = now + RETRY_MS * 1000;
			if (log->close_err == 0 && stopping)
				log->close_err = r;
			pthread_cond_broadcast(&log->done);
			if (changed)
				poke(log);
			if (stopping)
				break; /* closing: give up; what was queued is reported lost by audit_close */
			continue;
		}
		if (log->failing)
			loud("%s is writable again; %llu queued records written", log->path, (unsigned long long)bt->n);
		log->failing = 0;
		for (size_t i = 0; i < bt->n; i++) {
			struct qent *e = &log->q[(log->qhead + i) % log->qsize];
			free(e->line);
			e->line = NULL;
			e->ready = false;
		}
		log->qhead = (log->qhead + bt->n) % log->qsize;
		log->qcount -= bt->n;
		if (bt->n) {
			log->durable = bt->ents[bt->n - 1].seq + 1;
			pthread_cond_broadcast(&log->done);
			poke(log);
		}
		if (log->dropped) {
			char detail[96];
			uint64_t seq;
			snprintf(detail, sizeof(detail), "%llu submissions refused: queue full",
				 (unsigned long long)log->dropped);
			struct audit_event ev = { .kind = AUDIT_LOG_DROPPED, .detail = detail };
			if (enqueue_event_locked(log, &ev, true, &seq) == 0)
				log->dropped = 0;
		}
		if (last && log->qcount == 0)
			break; /* closing, and nothing left: not even the log's own dropped-count record */
	}
	log->thread_started = false;
	pthread_cond_broadcast(&log->done);
	pthread_mutex_unlock(&log->mu);
	free(bt);
	return NULL;
}

/* ---- interval mode: the sync thread ---- */

static void *sync_main(void *arg)
{
	struct audit_log *log = arg;
	pthread_mutex_lock(&log->mu);
	while (!log->sync_stop) {
		int64_t d = mono_us() + (int64_t)log->sync_interval_ms * 1000;
		struct timespec ts = { .tv_sec = d / 1000000, .tv_nsec = (d % 1000000) * 1000 };
		pthread_cond_timedwait(&log->sync_wake, &log->mu, &ts);
		if (log->sync_stop || !log->dirty || log->fd < 0)
			continue;
		/* a dup keeps the file open even if the writer rotates meanwhile; fdatasync
		 * through any descriptor flushes the file */
		int fd = dup(log->fd);
		log->dirty = false;
		pthread_mutex_unlock(&log->mu);
		int r = fd < 0 ? -errno : fdatasync(fd) < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
		pthread_mutex_lock(&log->mu);
		if (r < 0) {
			/* the tickets were released already (interval mode promises a written file,
			 * not a synced one): say loudly that a power loss could now cost records */
			log->dirty = true;
			loud("fdatasync %s failed: %s; records written in the last %u ms may be lost on power failure",
			     log->path, strerror(-r), log->sync_interval_ms);
		}
	}
	pthread_mutex_unlock(&log->mu);
	return NULL;
}

/* ---- recovery ---- */

struct scan {
	struct audit_tree tree;
	uint8_t prev[AUDIT_PREV_BYTES];
	struct audit_checkpoint cp;
	bool have_cp;
	uint64_t lines;
	uint64_t whole_bytes; /* offset after the last whole line */
	uint64_t torn_bytes;  /* bytes after it (a torn last line) */
	bool started;         /* tree state known (first file, or a frontier line seen) */
	uint64_t first_seq;   /* seq of the file's first record: its frontier header's size, or 0 */
};

/* Reads one file into the scan state. Errors name the line. */
static int scan_file(const char *path, struct scan *s, bool first_file, char *err, size_t errlen)
{
	struct audit_reader rd;
	int r = audit_reader_open(&rd, path);
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	struct audit_line *ln = malloc(sizeof(*ln));
	if (!ln) {
		audit_reader_close(&rd);
		return -ENOMEM;
	}
	bool term;
	while ((r = audit_reader_next(&rd, &term)) != 0) {
		if (r == -E2BIG) {
			snprintf(err, errlen, "%s:%" PRIu64 ": line longer than %d bytes", path, rd.lineno, AUDIT_LINE_MAX);
			r = -EINVAL;
			goto out;
		}
		if (r < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
			goto out;
		}
		if (!term) {
			s->torn_bytes = rd.next_off - rd.off;
			break;
		}
		audit_line_parse(rd.buf, rd.len, ln, NULL);
		if (!ln->parsed) {
			snprintf(err, errlen, "%s:%" PRIu64 ": %s", path, rd.lineno, ln->error);
			r = -EINVAL;
			goto out;
		}
		if (ln->type == AUDIT_LINE_CHECKPOINT) {
			if (!s->started && ln->cp.has_frontier && rd.lineno == 1) {
				uint8_t root[AUDIT_HASH_LEN];
				if (audit_tree_from_frontier(&s->tree, ln->cp.size,
							     (const uint8_t (*)[AUDIT_HASH_LEN])ln->cp.frontier,
							     ln->cp.nfrontier) < 0) {
					snprintf(err, errlen, "%s:1: frontier does not match size", path);
					r = -EINVAL;
					goto out;
				}
				s->started = true;
				s->first_seq = ln->cp.size;
				audit_tree_root(&s->tree, root);
				if (memcmp(root, ln->cp.root, AUDIT_HASH_LEN) != 0) {
					snprintf(err, errlen, "%s:1: frontier does not hash to the checkpoint root", path);
					r = -EINVAL;
					goto out;
				}
				/* prev continues from the last record of the previous file, which the
				 * header repeats; without it the first record's prev is not checked */
				if (ln->cp.has_prev)
					memcpy(s->prev, ln->cp.prev, sizeof(s->prev));
				else
					memset(s->prev, 0, sizeof(s->prev));
			} else {
				uint8_t root[AUDIT_HASH_LEN];
				audit_tree_root(&s->tree, root);
				if (ln->cp.size != s->tree.size || memcmp(root, ln->cp.root, AUDIT_HASH_LEN) != 0) {
					snprintf(err, errlen, "%s:%" PRIu64 ": checkpoint (size %" PRIu64
						 ") does not match the records before it", path, rd.lineno, ln->cp.size);
					r = -EINVAL;
					goto out;
				}
			}
			s->cp = ln->cp;
			s->cp.has_frontier = false;
			s->cp.has_prev = false;
			s->have_cp = true;
		} else {
			if (!s->started && !first_file) {
				snprintf(err, errlen, "%s: does not start with a checkpoint", path);
				r = -EINVAL;
				goto out;
			}
			s->started = true;
			if (ln->seq != s->tree.size) {
				snprintf(err, errlen, "%s:%" PRIu64 ": seq %" PRIu64 " where %" PRIu64 " was expected", path,
					 rd.lineno, ln->seq, s->tree.size);
				r = -EINVAL;
				goto out;
			}
			static const uint8_t zero[AUDIT_PREV_BYTES];
			bool prev_unknown = memcmp(s->prev, zero, sizeof(zero)) == 0 && s->tree.size > 0;
			if (!prev_unknown && memcmp(ln->prev, s->prev, AUDIT_PREV_BYTES) != 0) {
				snprintf(err, errlen, "%s:%" PRIu64 ": \"prev\" does not match the record before it", path,
					 rd.lineno);
				r = -EINVAL;
				goto out;
			}
			uint8_t leaf[AUDIT_HASH_LEN];
			audit_leaf_hash(rd.buf, rd.len, leaf);
			if (audit_tree_append(&s->tree, leaf) < 0) {
				r = -EOVERFLOW;
				goto out;
			}
			memcpy(s->prev, leaf, AUDIT_PREV_BYTES);
		}
		s->lines++;
		s->whole_bytes = rd.next_off;
	}
	r = 0;
out:
	free(ln);
	audit_reader_close(&rd);
	return r;
}

/* The newest rotated file PATH.<12+ digits>, by its number. */
static int newest_rotated(const struct audit_log *log, char *out, size_t cap)
{
	char *pcopy = strdup(log->path);
	if (!pcopy)
		return -ENOMEM;
	const char *base = basename(pcopy);
	size_t blen = strlen(base);
	DIR *d = opendir(log->dir);
	int found = 0;
	uint64_t best = 0;
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			const char *n = de->d_name;
			if (strncmp(n, base, blen) != 0 || n[blen] != '.')
				continue;
			const char *num = n + blen + 1;
			size_t nd = strspn(num, "0123456789");
			if (nd < 12 || num[nd] != '\0')
				continue;
			uint64_t v = strtoull(num, NULL, 10);
			if (!found || v > best) {
				best = v;
				found = 1;
			}
		}
		closedir(d);
	}
	free(pcopy);
	if (found)
		rotated_name(log, best, out, cap);
	return found;
}

static int recover(struct audit_log *log)
{
	char err[512] = "";
	struct scan *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	audit_tree_init(&s->tree);
	int r;
	int fd = open(log->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0) {
		r = -errno;
		loud("cannot open %s: %s", log->path, strerror(-r));
		goto out;
	}
	r = scan_file(log->path, s, true, err, sizeof(err));
	if (r < 0)
		goto bad;
	uint64_t torn = s->torn_bytes;
	if (torn) {
		if (ftruncate(fd, (off_t)s->whole_bytes) < 0 || fsync(fd) < 0) {
			r = -errno;
			loud("cannot cut the torn last line off %s: %s", log->path, strerror(-r));
			goto out;
		}
		loud("%s: cut a torn last line (%" PRIu64 " bytes at offset %" PRIu64 ")", log->path, torn,
		     s->whole_bytes);
	}
	if (s->lines == 0) {
		/* no whole line: a new log, or a crash during rotation. Continue the newest rotated file. */
		char rot[4096];
		int f = newest_rotated(log, rot, sizeof(rot));
		if (f < 0) {
			r = f;
			goto out;
		}
		if (f) {
			struct scan *rs = calloc(1, sizeof(*rs));
			if (!rs) {
				r = -ENOMEM;
				goto out;
			}
			audit_tree_init(&rs->tree);
			r = scan_file(rot, rs, false, err, sizeof(err));
			if (r == 0 && rs->torn_bytes) {
				snprintf(err, sizeof(err), "%.400s: rotated file ends in a torn line", rot);
				r = -EINVAL;
			}
			if (r < 0) {
				free(rs);
				goto bad;
			}
			rs->torn_bytes = torn;
			free(s);
			s = rs;
			/* the empty active file is recreated with the checkpoint header below */
			close(fd);
			fd = -1;
			if (unlink(log->path) < 0 && errno != ENOENT) {
				r = -errno;
				goto out;
			}
		}
	}
	log->tree = s->tree;
	memcpy(log->prev, s->prev, sizeof(log->prev));
	log->cp = s->cp;
	log->have_cp = s->have_cp;
	log->cp_time_us = mono_us();
	log->fd = fd;
	log->file_bytes = s->whole_bytes;
	log->file_first_seq = s->first_seq;
	log->file_started_us = mono_us();
	if (fd < 0) {
		/* continuing a rotated file: it must end in a checkpoint of its full size */
		if (!log->have_cp || log->cp.size != log->tree.size) {
			r = make_checkpoint(log, audit_now_us());
			if (r < 0)
				goto out;
			char rot[4096];
			if (newest_rotated(log, rot, sizeof(rot)) == 1) {
				int rfd = open(rot, O_WRONLY | O_APPEND | O_CLOEXEC);
				char line[1024];
				struct audit_buf b;
				audit_buf_init(&b, line, sizeof(line));
				r = rfd < 0 ? -errno : append_checkpoint_line(log, &b, false);
				if (r == 0)
					r = write_all(rfd, line, b.len);
				if (r == 0 && fdatasync(rfd) < 0)
					r = -errno;
				if (rfd >= 0)
					close(rfd);
				if (r < 0)
					goto out;
			}
		}
		r = start_file(log);
		if (r < 0) {
			loud("cannot create %s: %s", log->path, strerror(-r));
			goto out;
		}
	}
	log->next_seq = log->durable = log->tree.size;
	if (torn) {
		char detail[160];
		uint64_t seq;
		snprintf(detail, sizeof(detail), "cut a torn last line: %" PRIu64 " bytes at offset %" PRIu64, torn,
			 s->whole_bytes);
		struct audit_event ev = { .kind = AUDIT_LOG_RECOVERED, .detail = detail };
		r = enqueue_event_locked(log, &ev, true, &seq);
		if (r < 0)
			goto out;
	}
	r = 0;
	goto out;
bad:
	loud("%s; refusing to append to a log that does not verify (run `bmsgate audit verify`; move the file "
	     "aside to start a new log)", err);
	if (r != -ENOMEM)
		r = -EINVAL;
out:
	if (r < 0 && fd >= 0 && log->fd != fd)
		close(fd);
	free(s);
	return r;
}

/* ---- open / close ---- */

static bool node_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > AUDIT_NODE_MAX)
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == len;
}

static void free_log(struct audit_log *log)
{
	if (log->q) {
		for (size_t i = 0; i < log->qcount; i++) {
			struct qent *e = &log->q[(log->qhead + i) % log->qsize];
			free(e->line);
		}
		free(log->q);
	}
	if (log->fd >= 0)
		close(log->fd);
	if (log->copy_fd >= 0)
		close(log->copy_fd);
	if (log->efd >= 0)
		close(log->efd);
	EVP_PKEY_free(log->key);
	free(log->path);
	free(log->node);
	free(log->copy_path);
	free(log->dir);
	free(log->wbuf);
	pthread_mutex_destroy(&log->mu);
	pthread_cond_destroy(&log->wake);
	pthread_cond_destroy(&log->sync_wake);
	pthread_cond_destroy(&log->done);
	free(log);
}

int audit_open(const struct audit_config *cfg, struct audit_log **out)
{
	*out = NULL;
	if (!cfg || !cfg->path || !cfg->node || !cfg->key_path)
		return -EINVAL;
	if (!node_ok(cfg->node)) {
		loud("node name '%s' must be 1-%d characters of A-Z a-z 0-9 . _ : -", cfg->node, AUDIT_NODE_MAX);
		return -EINVAL;
	}
	struct audit_log *log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	log->fd = log->copy_fd = log->efd = -1;
	pthread_mutex_init(&log->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&log->wake, &ca);
	pthread_cond_init(&log->sync_wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&log->done, NULL);
	int r = -ENOMEM;
	char *pcopy = strdup(cfg->path);
	log->path = strdup(cfg->path);
	log->node = strdup(cfg->node);
	log->copy_path = cfg->checkpoint_copy_path ? strdup(cfg->checkpoint_copy_path) : NULL;
	if (pcopy)
		log->dir = strdup(dirname(pcopy));
	free(pcopy);
	if (!log->path || !log->node || !log->dir || (cfg->checkpoint_copy_path && !log->copy_path))
		goto fail;
	log->sync_always = cfg->sync_always;
	log->sync_interval_ms = cfg->sync_interval_ms ? cfg->sync_interval_ms : 10;
	log->cp_every_records = cfg->checkpoint_every_records ? cfg->checkpoint_every_records : 1000;
	log->cp_every_seconds = cfg->checkpoint_every_seconds ? cfg->checkpoint_every_seconds : 10;
	log->rotate_bytes = cfg->rotate_bytes;
	log->rotate_seconds = cfg->rotate_seconds;
	log->fail_open = cfg->fail_open;
	log->qcap = cfg->queue_limit ? cfg->queue_limit : 65536;
	log->qsize = log->qcap + 16; /* slack for the log's own records */
	log->q = calloc(log->qsize, sizeof(*log->q));
	log->wcap = BATCH_MAX_BYTES + 2 * (AUDIT_LINE_MAX + 1);
	log->wbuf = malloc(log->wcap);
	if (!log->q || !log->wbuf)
		goto fail;
	char err[512];
	r = audit_key_load(cfg->key_path, true, &log->key, err, sizeof(err));
	if (r < 0) {
		loud("%s", err);
		goto fail;
	}
	log->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (log->efd < 0) {
		r = -errno;
		goto fail;
	}
	if (log->copy_path) {
		log->copy_fd = open(log->copy_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (log->copy_fd < 0) {
			r = -errno;
			loud("cannot open checkpoint copy %s: %s", log->copy_path, strerror(-r));
			goto fail;
		}
	}
	r = recover(log);
	if (r < 0)
		goto fail;
	log->last_sync_us = mono_us();

	/* the writer takes no signal: they belong to the caller's threads, and a
	 * blocked SIGXFSZ turns an over-limit write into EFBIG instead of death */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	log->thread_started = true;
	r = -pthread_create(&log->thread, NULL, writer_main, log);
	if (r == 0 && !log->sync_always) {
		r = -pthread_create(&log->sync_thread, NULL, sync_main, log);
		if (r == 0) {
			log->sync_started = true;
		} else {
			/* no sync thread: stop the writer again and fail */
			pthread_mutex_lock(&log->mu);
			log->stopping = true;
			pthread_cond_signal(&log->wake);
			pthread_mutex_unlock(&log->mu);
			pthread_join(log->thread, NULL);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		log->thread_started = false;
		goto fail;
	}
	*out = log;
	return 0;
fail:
	free_log(log);
	return r;
}

int audit_close(struct audit_log *log)
{
	if (!log)
		return 0;
	pthread_mutex_lock(&log->mu);
	log->stopping = true;
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->mu);
	pthread_join(log->thread, NULL);
	if (log->sync_started) {
		pthread_mutex_lock(&log->mu);
		log->sync_stop = true;
		pthread_cond_signal(&log->sync_wake);
		pthread_mutex_unlock(&log->mu);
		pthread_join(log->sync_thread, NULL);
	}
	int r = log->close_err;
	if (log->fd >= 0 && log->dirty && fdatasync(log->fd) < 0 && r == 0)
		r = -errno;
	if (log->copy_fd >= 0 && fdatasync(log->copy_fd) < 0 && r == 0)
		r = -errno;
	if (log->qcount)
		loud("closing with %zu records not written to %s", log->qcount, log->path);
	free_log(log);
	return r;
}
