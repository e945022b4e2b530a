/* audit/writer.c: the one writer of the log file.
 *
 * Callers format a record line ({"seq":N,<body>) and queue it (audit_submit).
 * A writer thread takes whatever is queued as one batch, completes each line
 * with its "prev" locator, hashes it into the Merkle tree and appends the
 * batch (and a signed checkpoint when one is due) with one writev(). With
 * sync_always it then writes whatever arrived meanwhile as well, and only
 * then fdatasyncs once: group commit, so N pending requests cost one sync.
 * Then it publishes how far the log is durable and pokes an eventfd.
 *
 * Hand-off costs, per record, are what limits the throughput (formatting and
 * hashing cost about as much as a write() of the line), so the queue is
 * built for them:
 * - lines live in a byte ring (the arena) with room for their suffix, so a
 *   batch is written from where the callers put it, with no allocation and
 *   no copy per record (a line that does not fit is allocated on its own);
 * - a submitter takes the lock once, to reserve its slot, seq and bytes; it
 *   publishes the filled slot with an atomic flag and wakes the writer only
 *   when the writer sleeps;
 * - the writer runs as SCHED_BATCH: a submission never preempts the caller
 *   that made it (on a shared core the caller keeps queueing, and the writer
 *   takes the lot when the caller waits or its time slice ends).
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
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "base/clock.h"

/* One write: at most this many records and bytes (a bound on the write and
 * on how long the first record of a batch waits for the last). */
#define BATCH_MAX_ENTRIES 4096
#define BATCH_MAX_BYTES (1u << 20)
/* iovecs per writev: records that sit side by side in the arena share one */
#define BATCH_MAX_IOV 256
/* The arena: queue_limit * ARENA_PER_RECORD bytes, within these bounds. */
#define ARENA_PER_RECORD 2048
#define ARENA_MIN (8u << 10)
#define ARENA_MAX (8u << 20)
#define RETRY_MS 1000
#define LOUD_EVERY_US (10 * 1000000LL)
/* Interval mode: how long the writer looks for more work before it sleeps. */
#define SPIN_US 30
/* Interval mode, audit_flush(): a write by the caller's thread that takes longer
 * than this (the disk is slow or throttled) leaves the writing to the writer
 * thread for INLINE_OFF_US, so that the caller's event loop does not stall twice. */
#define INLINE_SLOW_US 5000
#define INLINE_OFF_US (10 * 1000000LL)
/* ... and it leaves a checkpoint due within this long to the writer thread */
#define INLINE_CP_MARGIN_US 100000

/* `,"prev":"<16 hex>"}` and the newline: the writer fills it in after the line. */
#define SUFFIX_LEN (sizeof(",\"prev\":\"\"}\n") - 1 + 2 * AUDIT_PREV_BYTES)

/* One queued record. A submitter reserves a slot (its seq and its bytes)
 * under the lock, then fills it outside the lock and sets `ready`; the writer
 * takes ready slots in seq order and owns them until it frees them. */
struct qent {
	uint64_t seq;
	char *line;       /* `{"seq":N,` + body, SUFFIX_LEN bytes of room after it: borrowed from the arena, or owned if heap */
	size_t len;       /* without the suffix */
	size_t arena_bytes; /* what the slot holds of the arena (its line and any end-of-ring gap before it); 0 if heap */
	bool heap;
	int ready;        /* atomic: line and hs are filled in */
	struct audit_leaf_state hs; /* SHA-256 over the bulk of 0x00 || line; !hs.valid = the writer hashes it all */
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
	char *arena;          /* owned: byte ring of queued lines, in slot order */
	size_t arena_cap, arena_tail, arena_used;
	uint64_t next_seq;
	uint64_t durable;
	int failing;
	uint64_t dropped;
	bool stopping;
	int writer_idle;      /* atomic: the writer sleeps (or is about to): a submitter must wake it */
	/* audit_flush(): a caller's thread writes while the writer thread sleeps; the
	 * writer thread keeps off the file and the tree until it is done */
	bool inline_ok;              /* interval mode, and SIGXFSZ ignored (see audit_open) */
	bool inline_busy;            /* a caller's thread is writing */
	bool writer_waits_inline;    /* the writer thread woke and waits for that write to end */
	int64_t inline_off_until;    /* after a slow inline write: the writer thread writes alone until then */
	unsigned inline_slow_us;
	struct group *inline_g;
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
	int64_t retry_at_us, loud_at_us;
	int close_err;
	char cpline[1024];           /* a checkpoint line (without frontier) */
	struct iovec iov[BATCH_MAX_IOV + 1];
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
	return (int64_t)bms_mono_us();
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Touches every page of p, so that the queue's memory is faulted in by
 * audit_open and not in the decision path (on a virtual machine a first-touch
 * fault costs more than formatting a record). */
static void prefault(void *p, size_t n)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t step = pg > 0 ? (size_t)pg : 4096;
	for (size_t i = 0; i < n; i += step)
		((volatile char *)p)[i] = 0;
}

static void poke(struct audit_log *log)
{
	uint64_t one = 1;
	/* a full eventfd counter is still readable: nothing to do on EAGAIN */
	ssize_t n = write(log->efd, &one, sizeof(one));
	(void)n;
}

/* ---- queue (under mu) ---- */

static struct qent *slot(const struct audit_log *log, size_t i)
{
	return &log->q[(log->qhead + i) % log->qsize];
}

static bool slot_ready(const struct qent *e)
{
	return __atomic_load_n(&e->ready, __ATOMIC_ACQUIRE) != 0;
}

/* n contiguous bytes from the arena, or NULL if they do not fit now. The
 * used part is the arena_used bytes before arena_tail (wrapping); a line
 * never wraps: a gap at the end of the ring is charged to the line after it. */
static char *arena_take_locked(struct audit_log *log, size_t n, size_t *charged)
{
	if (log->arena_used == 0)
		log->arena_tail = 0;
	size_t gap = log->arena_tail + n <= log->arena_cap ? 0 : log->arena_cap - log->arena_tail;
	size_t start = gap ? 0 : log->arena_tail;
	if (n > log->arena_cap || gap + n > log->arena_cap - log->arena_used)
		return NULL;
	log->arena_tail = start + n;
	log->arena_used += gap + n;
	*charged = gap + n;
	return log->arena + start;
}

/* Reserves the next slot, its seq and room for a line of up to `maxlen`
 * bytes. Internal records (recovered, dropped) may use the slack above qcap.
 * NULL: the queue is full (*nomem false) or no memory (*nomem true). */
static struct qent *reserve_locked(struct audit_log *log, bool internal, size_t maxlen, bool *nomem)
{
	size_t limit = internal ? log->qsize : log->qcap;
	*nomem = false;
	if (log->qcount >= limit)
		return NULL;
	size_t need = maxlen + SUFFIX_LEN, charged = 0;
	char *line = arena_take_locked(log, need, &charged);
	bool heap = !line;
	if (heap) {
		/* rare (the writer is far behind, or a huge record): under the lock,
		 * so that a failure here leaves nothing reserved */
		line = malloc(need);
		if (!line) {
			*nomem = true;
			return NULL;
		}
	}
	struct qent *e = slot(log, log->qcount);
	e->seq = log->next_seq++;
	e->line = line;
	e->len = 0;
	e->arena_bytes = charged;
	e->heap = heap;
	e->hs.valid = false;
	__atomic_store_n(&e->ready, 0, __ATOMIC_RELAXED);
	log->qcount++;
	return e;
}

static size_t seq_prefix_len(uint64_t seq)
{
	size_t digits = 1;
	while (seq >= 10) {
		seq /= 10;
		digits++;
	}
	return sizeof("{\"seq\":,") - 1 + digits;
}

/* Puts `{"seq":N,` + body at the start of line (cap bytes; the line is seq_prefix_len(seq) + len). */
static size_t make_line(char *line, size_t cap, uint64_t seq, const char *body, size_t len)
{
	struct audit_buf b;
	audit_buf_init(&b, line, cap);
	audit_buf_kv_u64(&b, "{\"seq\":", seq);
	audit_buf_lit(&b, ",");
	audit_buf_put(&b, body, len);
	if (b.overflow)
		abort(); /* cap comes from seq_prefix_len, which is exact: a cut record must never be queued */
	return b.len;
}

/* Wakes the writer if it sleeps (after a fence that orders the caller's
 * publications before the look at the flag). */
static void wake_writer(struct audit_log *log)
{
	int idle = 1;
	if (__atomic_load_n(&log->writer_idle, __ATOMIC_RELAXED) &&
	    __atomic_compare_exchange_n(&log->writer_idle, &idle, 0, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		/* the first to see it idle wakes it (a signal needs a waiter: mu
		 * is held from the flag until the writer waits) */
		pthread_mutex_lock(&log->mu);
		pthread_cond_signal(&log->wake);
		pthread_mutex_unlock(&log->mu);
	}
}

/* Publishes a filled slot; wakes the writer if it sleeps, unless the caller
 * will call audit_flush() (audit_queue). */
static void publish(struct audit_log *log, struct qent *e, bool wake)
{
	__atomic_store_n(&e->ready, 1, __ATOMIC_RELEASE);
	/* pairs with the fence in writer_sleep(): either the writer sees this
	 * slot ready, or this thread sees it idle and signals under the lock */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (wake)
		wake_writer(log);
}

/* The log's own records, queued with mu held (by the writer, or by audit_open
 * before the writer starts): the writer hashes their whole line. */
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
	bool nomem;
	size_t maxlen = seq_prefix_len(log->next_seq) + b.len;
	struct qent *e = reserve_locked(log, internal, maxlen, &nomem);
	if (!e) {
		free(tmp);
		return nomem ? -ENOMEM : -EAGAIN;
	}
	e->len = make_line(e->line, maxlen, e->seq, tmp, b.len);
	*seq = e->seq;
	free(tmp);
	__atomic_store_n(&e->ready, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&log->wake);
	return 0;
}

static int submit(struct audit_log *log, const struct audit_event *ev, uint64_t *ticket, bool wake)
{
	/* the log's own kinds are the log's to write; kinds added after them are callers' again */
	if (!log || !ev || !ticket || ev->kind == 0 || ev->kind == AUDIT_LOG_RECOVERED || ev->kind == AUDIT_LOG_DROPPED ||
	    ev->kind >= AUDIT_KIND_COUNT)
		return -EINVAL;
	/* format outside the lock: the caller's buffers are read here and only here */
	char stackbuf[AUDIT_BODY_MAX];
	struct audit_buf b;
	audit_buf_init(&b, stackbuf, sizeof(stackbuf));
	int r = audit_format_body(ev, log->node, ev->time_us ? ev->time_us : audit_now_us(), &b);
	if (r < 0)
		return r == -ENOSPC ? -E2BIG : r;
	struct qent *e = NULL;
	bool nomem = false;
	size_t maxlen = 0;
	pthread_mutex_lock(&log->mu);
	if (log->stopping) {
		r = -ESHUTDOWN;
	} else {
		/* the seq reserved is next_seq: its length is known under the lock */
		maxlen = seq_prefix_len(log->next_seq) + b.len;
		e = reserve_locked(log, false, maxlen, &nomem);
		if (!e && !nomem)
			log->dropped++;
		if (!e)
			r = nomem ? -ENOMEM : -EAGAIN;
	}
	pthread_mutex_unlock(&log->mu);
	if (!e)
		return r;
	/* outside the lock, in the caller's thread: the line and the bulk of its
	 * hash, so that the writer thread only appends "prev" and finishes the hash */
	uint64_t seq = e->seq;
	e->len = make_line(e->line, maxlen, seq, stackbuf, b.len);
	audit_leaf_begin(&e->hs, e->line, e->len);
	publish(log, e, wake);
	*ticket = seq;
	return 0;
}

int audit_submit(struct audit_log *log, const struct audit_event *ev, uint64_t *ticket)
{
	return submit(log, ev, ticket, true);
}

int audit_queue(struct audit_log *log, const struct audit_event *ev, uint64_t *ticket)
{
	return submit(log, ev, ticket, false);
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

static int writev_all(int fd, struct iovec *iov, size_t n)
{
	while (n) {
		ssize_t w = writev(fd, iov, (int)n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	struct iovec one = { .iov_base = (void *)(uintptr_t)p, .iov_len = n };
	return n ? writev_all(fd, &one, 1) : 0;
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
	cp->has_policy = true;
	cp->every_records = log->cp_every_records;
	cp->every_seconds = log->cp_every_seconds;
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

/* Signs every record so far: a checkpoint line appended to `fd` (the active file, at
 * file_bytes; with `sync`, made durable before it counts), then its copy. A failed write
 * is cut off again so the file still ends with a whole line. */
static int sign_now(struct audit_log *log, int fd, bool sync)
{
	char line[1024];
	struct audit_buf b;
	audit_buf_init(&b, line, sizeof(line));
	int r = make_checkpoint(log, audit_now_us());
	if (r == 0)
		r = append_checkpoint_line(log, &b, false);
	if (r == 0)
		r = write_all(fd, line, b.len);
	if (r == 0 && sync && fdatasync(fd) < 0)
		r = -errno;
	if (r < 0) {
		if (ftruncate(fd, (off_t)log->file_bytes) < 0) { /* the next write fails too, and says so */
		}
		return r;
	}
	log->file_bytes += b.len;
	log->cp_time_us = mono_us();
	int cr = copy_checkpoint(log);
	if (cr < 0)
		loud("cannot append checkpoint to %s: %s", log->copy_path, strerror(-cr));
	return 0;
}

/* Closes the active file with a checkpoint and renames it PATH.<first seq>. */
static int rotate(struct audit_log *log)
{
	char name[4096];
	int r = 0;
	if (log->tree.size == log->file_first_seq)
		return 0; /* no record in this file: nothing to rotate */
	if (!log->have_cp || log->cp.size != log->tree.size) {
		r = sign_now(log, log->fd, false);
		if (r < 0)
			return r;
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

/* How many slots from index `from` on are ready, within one write's limits
 * and at most max. Only the writer moves qhead: no lock needed to read it. */
static size_t take(const struct audit_log *log, size_t from, size_t max)
{
	size_t n = 0, bytes = 0, niov = 0;
	const char *end = NULL;
	while (n < max && from + n < log->qsize && bytes < BATCH_MAX_BYTES) {
		const struct qent *e = slot(log, from + n);
		if (!slot_ready(e))
			break; /* its submitter is still filling it: a later pass takes it */
		if (e->line != end) {
			if (niov == BATCH_MAX_IOV)
				break;
			niov++;
		}
		end = e->line + e->len + SUFFIX_LEN;
		bytes += e->len + SUFFIX_LEN;
		n++;
	}
	return n;
}

/* Completes a queued line in place with "prev" and its newline, and adds its leaf to the tree. */
static void wrap_record(struct audit_log *log, struct qent *e)
{
	char *suffix = e->line + e->len;
	size_t n = 0;
	memcpy(suffix, ",\"prev\":\"", sizeof(",\"prev\":\"") - 1);
	n += sizeof(",\"prev\":\"") - 1;
	audit_hex(log->prev, AUDIT_PREV_BYTES, suffix + n); /* its NUL is overwritten just below */
	n += 2 * AUDIT_PREV_BYTES;
	memcpy(suffix + n, "\"}", 2);
	n += 2;
	/* the leaf is the line without its newline */
	uint8_t leaf[AUDIT_HASH_LEN];
	audit_leaf_finish(&e->hs, e->line, e->len, suffix, n, leaf);
	suffix[n] = '\n';
	if (audit_tree_append(&log->tree, leaf) < 0)
		abort(); /* 2^64 records */
	memcpy(log->prev, leaf, AUDIT_PREV_BYTES);
}

/* A group: the records written between two syncs (with sync_always; with an
 * interval, one write). What to restore if any part of it fails. */
struct group {
	struct audit_tree tree;
	uint8_t prev[AUDIT_PREV_BYTES];
	struct audit_checkpoint cp;
	bool have_cp;
	uint64_t file_bytes;
	size_t n;          /* records written: slots [0, n) from qhead */
	uint64_t written;  /* bytes written */
	bool wrote_cp;
};

static int group_begin(struct audit_log *log, struct group *g)
{
	if (log->fd < 0) {
		int r = start_file(log);
		if (r < 0)
			return r;
	}
	g->tree = log->tree;
	memcpy(g->prev, log->prev, sizeof(g->prev));
	g->cp = log->cp;
	g->have_cp = log->have_cp;
	g->file_bytes = log->file_bytes;
	g->n = 0;
	g->written = 0;
	g->wrote_cp = false;
	return 0;
}

/* Cuts whatever part of the group reached the file, so that the next attempt appends whole lines. */
static void group_rollback(struct audit_log *log, const struct group *g)
{
	if (g->written && log->fd >= 0 && ftruncate(log->fd, (off_t)g->file_bytes) < 0)
		loud("cannot cut a partial write off %s: %s", log->path, strerror(errno));
	log->file_bytes = g->file_bytes;
	log->tree = g->tree;
	memcpy(log->prev, g->prev, sizeof(g->prev));
	log->cp = g->cp;
	log->have_cp = g->have_cp;
}

/* Writes the n ready slots after the group's, and a checkpoint if due or
 * forced, with one writev. The caller rolls the group back on failure. */
static int write_pass(struct audit_log *log, struct group *g, size_t n, bool force_cp)
{
	size_t niov = 0, bytes = 0;
	const char *end = NULL;
	for (size_t i = g->n; i < g->n + n; i++) {
		struct qent *e = slot(log, i);
		wrap_record(log, e);
		size_t l = e->len + SUFFIX_LEN;
		if (niov && e->line == end)
			log->iov[niov - 1].iov_len += l;
		else
			log->iov[niov++] = (struct iovec){ .iov_base = e->line, .iov_len = l };
		end = e->line + l;
		bytes += l;
	}
	g->n += n;
	int64_t now = mono_us();
	uint64_t since_cp = log->tree.size - (log->have_cp ? log->cp.size : 0);
	if (since_cp > 0 && (force_cp || since_cp >= log->cp_every_records ||
			     now - log->cp_time_us >= (int64_t)log->cp_every_seconds * 1000000)) {
		struct audit_buf b;
		audit_buf_init(&b, log->cpline, sizeof(log->cpline));
		int r = make_checkpoint(log, audit_now_us());
		if (r == 0)
			r = append_checkpoint_line(log, &b, false);
		if (r < 0)
			return r;
		log->iov[niov++] = (struct iovec){ .iov_base = log->cpline, .iov_len = b.len };
		bytes += b.len;
		g->wrote_cp = true;
	}
	if (bytes == 0)
		return 0;
	int r = writev_all(log->fd, log->iov, niov);
	g->written += bytes; /* possibly in part: the rollback cuts it */
	if (r < 0)
		return r;
	log->file_bytes += bytes;
	return 0;
}

/* Writes the ready records at the head of the queue (and a checkpoint when
 * due or forced). With sync_always, records that became ready during the
 * write join the group, and one fdatasync covers it all. 0 on success (g->n
 * records written); on failure the file and tree are as before. */
static int write_group(struct audit_log *log, struct group *g, bool stopping, size_t queued)
{
	g->n = 0;
	int r = group_begin(log, g);
	if (r < 0)
		return r;
	size_t n = take(log, 0, BATCH_MAX_ENTRIES);
	/* closing: the pass that takes the last queued record ends in a checkpoint */
	r = write_pass(log, g, n, stopping && n == queued);
	while (r == 0 && log->sync_always && !g->wrote_cp && g->n < BATCH_MAX_ENTRIES) {
		/* group commit: what arrived while this group was written shares its fdatasync */
		n = take(log, g->n, BATCH_MAX_ENTRIES - g->n);
		if (n == 0)
			break;
		r = write_pass(log, g, n, stopping && g->n + n == queued);
	}
	if (r == 0 && log->sync_always && g->written && fdatasync(log->fd) < 0)
		r = -errno;
	if (r < 0) {
		group_rollback(log, g);
		return r;
	}
	if (g->wrote_cp) {
		log->cp_time_us = mono_us();
		int cr = copy_checkpoint(log);
		if (cr < 0)
			loud("cannot append checkpoint to %s: %s", log->copy_path, strerror(-cr));
	}
	return 0;
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

/* Sleeps (mu held) until signalled or the deadline. Unless it only waits to
 * retry, it first says it is idle, so that the next submission wakes it. */
static void writer_sleep(struct audit_log *log, int64_t deadline, bool retry_wait)
{
	if (!retry_wait) {
		__atomic_store_n(&log->writer_idle, 1, __ATOMIC_RELAXED);
		/* pairs with the fence in publish(): either this sees the slot
		 * ready, or its submitter sees the flag */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (slot_ready(slot(log, 0))) {
			__atomic_store_n(&log->writer_idle, 0, __ATOMIC_RELAXED);
			return;
		}
	}
	if (deadline == INT64_MAX) {
		pthread_cond_wait(&log->wake, &log->mu);
	} else {
		struct timespec ts = { .tv_sec = deadline / 1000000, .tv_nsec = (deadline % 1000000) * 1000 };
		pthread_cond_timedwait(&log->wake, &log->mu, &ts);
	}
	__atomic_store_n(&log->writer_idle, 0, __ATOMIC_RELAXED);
}

/* Waits until there is something to write (a ready record, a checkpoint or
 * rotation due, a retry due, or closing). Takes and releases mu. */
static void wait_for_work(struct audit_log *log, bool spin, bool *stopping, size_t *queued)
{
	bool spun = false;
	pthread_mutex_lock(&log->mu);
	for (;;) {
		if (log->inline_busy) {
			/* a caller's thread is writing (audit_flush): the file and the tree are its until it is done */
			log->writer_waits_inline = true;
			pthread_cond_wait(&log->wake, &log->mu);
			log->writer_waits_inline = false;
			continue;
		}
		int64_t now = mono_us();
		bool retry_wait = log->failing && now < log->retry_at_us && !log->stopping;
		bool head_ready = slot_ready(slot(log, 0));
		if (log->stopping || (head_ready && !retry_wait))
			break;
		if (!retry_wait && spin && !spun) {
			/* Interval mode, with a core of its own: before sleeping, look for
			 * more work for a few microseconds. Under load a record arrives
			 * before a wake-up could, and a caller that must wake a sleeping
			 * writer pays a system call. Not on a shared core (the caller
			 * cannot queue while the writer spins), and not with sync = always:
			 * there records gather during each fdatasync. */
			pthread_mutex_unlock(&log->mu);
			for (int64_t t0 = now; mono_us() - t0 < SPIN_US && !slot_ready(slot(log, 0));)
				cpu_relax();
			pthread_mutex_lock(&log->mu);
			spun = true;
			continue;
		}
		int64_t d = next_deadline(log);
		if (d <= now)
			break;
		writer_sleep(log, d, retry_wait);
		spun = false;
	}
	*stopping = log->stopping;
	*queued = log->qcount;
	pthread_mutex_unlock(&log->mu);
}

/* After a group: on success frees its slots and publishes how far the log is
 * durable; on failure says so (loudly, at most every LOUD_EVERY_US). Takes
 * and releases mu. Returns true when the writer is done (closing); *changed:
 * durable advanced or the failing state changed (the completion fd's news). */
static bool finish_group(struct audit_log *log, const struct group *g, int r, bool stopping, size_t queued,
			 bool dirty, bool *changed)
{
	int64_t now = mono_us();
	bool wake = false, finished = false;
	pthread_mutex_lock(&log->mu);
	if (r < 0) {
		if (!log->failing || now >= log->loud_at_us) {
			loud("cannot write %s: %s; %s", log->path, strerror(-r),
			     log->fail_open ? "fail = open: requests are forwarded UNAUDITED until it recovers"
					    : "failing closed: requests are refused until it recovers");
			log->loud_at_us = now + LOUD_EVERY_US;
		}
		wake = log->failing != -r;
		log->failing = -r;
		log->retry_at_us = now + RETRY_MS * 1000;
		if (log->close_err == 0 && stopping)
			log->close_err = r;
		pthread_cond_broadcast(&log->done);
		finished = stopping; /* closing: give up; what was queued is reported lost by audit_close */
		goto out;
	}
	if (log->failing)
		loud("%s is writable again; %zu queued records written", log->path, g->n);
	wake = log->failing != 0;
	log->failing = 0;
	if (dirty)
		log->dirty = true;
	if (g->n) {
		log->durable = slot(log, g->n - 1)->seq + 1;
		for (size_t i = 0; i < g->n; i++) {
			struct qent *e = slot(log, i);
			if (e->heap)
				free(e->line);
			e->line = NULL;
			log->arena_used -= e->arena_bytes;
			__atomic_store_n(&e->ready, 0, __ATOMIC_RELAXED);
		}
		log->qhead = (log->qhead + g->n) % log->qsize;
		log->qcount -= g->n;
		pthread_cond_broadcast(&log->done);
		wake = true;
	}
	if (log->dropped) {
		char detail[96];
		uint64_t seq;
		snprintf(detail, sizeof(detail), "%llu submissions refused: queue full", (unsigned long long)log->dropped);
		struct audit_event ev = { .kind = AUDIT_LOG_DROPPED, .detail = detail };
		if (enqueue_event_locked(log, &ev, true, &seq) == 0)
			log->dropped = 0;
	}
	/* closing, and nothing left: not even the log's own dropped-count record */
	finished = stopping && g->n == queued && log->qcount == 0;
out:
	if (finished) {
		log->thread_started = false;
		pthread_cond_broadcast(&log->done);
	}
	pthread_mutex_unlock(&log->mu);
	*changed = wake;
	return finished;
}

static void *writer_main(void *arg)
{
	struct audit_log *log = arg;
	/* No wake-up preemption: a submission makes the writer runnable but lets
	 * the submitter go on queueing (on a shared core it would otherwise switch
	 * to the writer at every first record and write batches of one). On an
	 * idle core the writer still runs at once. Best effort: without it only
	 * the batches are smaller. */
	struct sched_param sp = { .sched_priority = 0 };
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	cpu_set_t cpus;
	bool spin = !log->sync_always && (sched_getaffinity(0, sizeof(cpus), &cpus) < 0 || CPU_COUNT(&cpus) > 1);
	struct group *g = malloc(sizeof(*g));
	if (!g) {
		pthread_mutex_lock(&log->mu);
		log->failing = ENOMEM;
		log->close_err = -ENOMEM;
		log->thread_started = false;
		pthread_cond_broadcast(&log->done);
		pthread_mutex_unlock(&log->mu);
		poke(log);
		return NULL;
	}
	for (;;) {
		bool stopping;
		size_t queued;
		wait_for_work(log, spin, &stopping, &queued);
		int r = write_group(log, g, stopping, queued);
		bool dirty = r == 0 && g->written && !log->sync_always;
		int64_t now = mono_us();
		if (r == 0 && stopping && g->n == queued && !log->sync_always && log->fd >= 0) {
			if (fdatasync(log->fd) < 0)
				loud("fdatasync %s failed: %s", log->path, strerror(errno));
			else
				dirty = false;
		}
		if (r == 0 && rotate_due(log, now)) {
			int rr = rotate(log);
			if (rr < 0 && log->fd >= 0) {
				loud("cannot rotate %s: %s; still writing to it", log->path, strerror(-rr));
				log->file_started_us = now; /* try again one period later, not in a loop */
			}
			/* fd < 0: the next group retries start_file and fails loudly if it cannot */
			if (rr == 0)
				dirty = false; /* the rotated file was synced; the new one holds only its header */
		}
		bool changed;
		bool finished = finish_group(log, g, r, stopping, queued, dirty, &changed);
		/* outside the lock: a system call, and the gateway reads durable when woken */
		if (changed)
			poke(log);
		if (finished)
			break;
	}
	free(g);
	return NULL;
}

/* ---- interval mode: writes by the caller's thread ---- */

/* Whether the n ready records at the head can be written by a caller's thread
 * now: nothing the writer thread must do first or next (a checkpoint, a
 * rotation, a new file, a retry, closing). Under mu, with the writer asleep. */
static bool inline_fits_locked(const struct audit_log *log, size_t n, int64_t now)
{
	if (!log->inline_ok || log->inline_busy || log->stopping || log->failing || log->fd < 0 || log->dropped ||
	    now < log->inline_off_until || n == 0)
		return false;
	uint64_t since_cp = log->tree.size - (log->have_cp ? log->cp.size : 0);
	if (since_cp + n >= log->cp_every_records)
		return false;
	if (next_deadline(log) <= now + INLINE_CP_MARGIN_US)
		return false;
	if (log->rotate_bytes) {
		uint64_t bytes = 0;
		for (size_t i = 0; i < n; i++)
			bytes += slot(log, i)->len + SUFFIX_LEN;
		if (log->file_bytes + bytes >= log->rotate_bytes)
			return false;
	}
	return true;
}

bool audit_writer_asleep(struct audit_log *log)
{
	return __atomic_load_n(&log->writer_idle, __ATOMIC_RELAXED) != 0;
}

int audit_flush(struct audit_log *log)
{
	/* orders this thread's publications (audit_queue) before the look at writer_idle */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!log->inline_ok) {
		wake_writer(log);
		return 0;
	}
	int64_t t0 = mono_us();
	pthread_mutex_lock(&log->mu);
	size_t n = take(log, 0, BATCH_MAX_ENTRIES);
	/* writer_idle under mu: the writer thread is in (or just woke from) its
	 * wait and reads nothing of the writer's state until it has mu again */
	bool mine = __atomic_load_n(&log->writer_idle, __ATOMIC_RELAXED) && inline_fits_locked(log, n, t0);
	if (mine)
		log->inline_busy = true;
	pthread_mutex_unlock(&log->mu);
	if (!mine) {
		wake_writer(log);
		return 0;
	}
	/* the writer thread's own steps, for what is queued now: one writev, no fdatasync */
	struct group *g = log->inline_g;
	int r = write_group(log, g, false, n);
	bool changed;
	(void)finish_group(log, g, r, false, n, r == 0 && g->written, &changed);
	int64_t took = mono_us() - t0;
	pthread_mutex_lock(&log->mu);
	log->inline_busy = false;
	if (took >= (int64_t)log->inline_slow_us)
		log->inline_off_until = t0 + took + INLINE_OFF_US;
	/* the writer thread woke and waits for this write to end, or sleeps and has
	 * work (records queued meanwhile, the dropped-count record, a failure to retry) */
	bool more = log->qcount > 0 || log->failing;
	if (log->writer_waits_inline)
		pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->mu);
	if (more)
		wake_writer(log);
	/* a failure changed the failing state: the completion fd says so, as from the writer */
	if (r < 0) {
		poke(log);
		return r;
	}
	return 1;
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

/* The newest rotated file PATH.<12+ digits>, by its number (its first seq,
 * in *first_seq if not NULL). */
static int newest_rotated(const struct audit_log *log, char *out, size_t cap, uint64_t *first_seq)
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
	if (found && first_seq)
		*first_seq = best;
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
		uint64_t rot_first = 0;
		int f = newest_rotated(log, rot, sizeof(rot), &rot_first);
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
			/* the file that holds seq 0 (a crash in the first rotation) begins
			 * with a record; every later one with its checkpoint header */
			r = scan_file(rot, rs, rot_first == 0, err, sizeof(err));
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
			if (newest_rotated(log, rot, sizeof(rot), NULL) == 1) {
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
		/* a fresh signature (this run's time and checkpoint policy) heads the new file */
		r = make_checkpoint(log, audit_now_us());
		if (r < 0)
			goto out;
		r = start_file(log);
		if (r < 0) {
			loud("cannot create %s: %s", log->path, strerror(-r));
			goto out;
		}
	} else {
		/* Every open signs the log (a new one at size 0): what a crash left unsigned is covered
		 * at once, and the line records when this run began and its checkpoint policy, which is
		 * what lets `verify` tell a crash's unsigned tail from stripped signatures, and a log
		 * with records but no checkpoint at all is never one the writer left. */
		r = sign_now(log, fd, true);
		if (r < 0) {
			loud("cannot sign %s on open: %s", log->path, strerror(-r));
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
		for (size_t i = 0; i < log->qcount; i++)
			if (slot(log, i)->heap)
				free(slot(log, i)->line);
		free(log->q);
	}
	free(log->arena);
	if (log->fd >= 0)
		close(log->fd);
	if (log->copy_fd >= 0)
		close(log->copy_fd);
	if (log->efd >= 0)
		close(log->efd);
	EVP_PKEY_free(log->key);
	free(log->inline_g);
	free(log->path);
	free(log->node);
	free(log->copy_path);
	free(log->dir);
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
	/* adaptive: the critical sections are a few dozen instructions, and a
	 * submitter that finds the writer holding the lock does better to spin
	 * briefly than to sleep in the kernel */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&log->mu, &ma);
	pthread_mutexattr_destroy(&ma);
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
	log->inline_slow_us = cfg->inline_slow_us ? cfg->inline_slow_us : INLINE_SLOW_US;
	log->qcap = cfg->queue_limit ? cfg->queue_limit : 65536;
	log->qsize = log->qcap + 16; /* slack for the log's own records */
	log->q = calloc(log->qsize, sizeof(*log->q));
	/* enough for the records that gather while the writer waits for the
	 * core or the disk; a line that does not fit is allocated on its own */
	log->arena_cap = log->qcap < ARENA_MAX / ARENA_PER_RECORD ? log->qcap * ARENA_PER_RECORD : ARENA_MAX;
	if (log->arena_cap < ARENA_MIN)
		log->arena_cap = ARENA_MIN;
	log->arena = malloc(log->arena_cap);
	if (!log->q || !log->arena)
		goto fail;
	prefault(log->q, log->qsize * sizeof(*log->q));
	prefault(log->arena, log->arena_cap);
	char err[512];
	r = audit_key_load(cfg->key_path, true, &log->key, err, sizeof(err));
	if (r < 0) {
		loud("%s", err);
		goto fail;
	}
	log->inline_g = malloc(sizeof(*log->inline_g));
	if (!log->inline_g)
		goto fail;
	/* Writes by a caller's thread (audit_flush) only with an interval (never an
	 * fdatasync in the caller's thread) and with SIGXFSZ ignored: the writer
	 * thread blocks it, so a write past RLIMIT_FSIZE fails with EFBIG, which a
	 * caller's thread must get too instead of the signal's default, death. */
	struct sigaction xfsz;
	log->inline_ok = !log->sync_always && sigaction(SIGXFSZ, NULL, &xfsz) == 0 && xfsz.sa_handler == SIG_IGN;
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
