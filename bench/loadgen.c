/* bench/loadgen.c: bmsgate's own Modbus/TCP load generator, plain or mutual TLS.
 *
 * One thread, one epoll loop (so it can be pinned to one CPU beside the device): N connections,
 * each sending read-holding-registers requests back to back (one outstanding per connection,
 * as a BMS poller does) for a duration, after a warm-up. Every response is checked (transaction
 * id, function code, byte count); exceptions and mismatches count as errors. Latency of every
 * measured transaction is kept (up to a cap, then every k-th), sorted for exact p50/p99.
 *
 *   loadgen --connect 127.0.0.1:1502 -c 16 -d 3 [--warmup 1]
 *           [--tls --ca ca.crt --cert c.crt --key c.key [--servername guard1]]
 *   loadgen --connect ... --tls ... --idle 1000 [--hold-file F]   (memory test: open N, hold)
 * Prints one line: conns=N txns=N tps=X p50_us=X p99_us=X errors=N handshake_fail=N
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CONNS 5000
#define SAMPLE_CAP (8u << 20)
#define RESP_MAX 260

enum state { ST_CONNECTING, ST_HANDSHAKE, ST_READY, ST_WAIT, ST_DEAD };

struct conn {
	int fd;
	SSL *ssl; /* owned; NULL for plain */
	enum state st;
	bool want_write;
	uint16_t tid;
	uint64_t t0;
	uint8_t req[12];
	size_t req_off; /* bytes of req already written (plain) */
	uint8_t resp[RESP_MAX];
	size_t resp_len;
};

struct opts {
	struct sockaddr_in addr;
	int conns;
	double duration, warmup;
	bool tls;
	const char *ca, *cert, *key, *servername;
	int unit, reg, count;
	int idle;
	const char *hold_file;
};

static volatile sig_atomic_t stop_flag;
static void on_stop(int s)
{
	(void)s;
	stop_flag = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct {
	uint32_t *v; /* latency in 100 ns units */
	size_t n, seen, stride;
} samples;

static void sample_add(uint64_t ns)
{
	samples.seen++;
	if (samples.seen % samples.stride != 0)
		return;
	if (samples.n == SAMPLE_CAP) {
		/* Keep every other sample and halve the rate: the distribution stays unbiased. */
		for (size_t i = 0; i < SAMPLE_CAP / 2; i++)
			samples.v[i] = samples.v[2 * i + 1];
		samples.n = SAMPLE_CAP / 2;
		samples.stride *= 2;
	}
	uint64_t u = ns / 100;
	samples.v[samples.n++] = u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (samples.n == 0)
		return 0;
	size_t i = (size_t)(p * (double)(samples.n - 1) + 0.5);
	return samples.v[i] / 10.0; /* microseconds */
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen --connect ADDR:PORT [-c CONNS] [-d SECONDS] [--warmup SECONDS]\n"
		"               [--tls --ca FILE --cert FILE --key FILE [--servername NAME]]\n"
		"               [--unit N] [--register N] [--count N] [--idle N [--hold-file F]]\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->conns = 1;
	o->duration = 3;
	o->warmup = 0.5;
	o->unit = 1;
	o->reg = 100;
	o->count = 2;
	const char *connect_to = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--tls") == 0) {
			o->tls = true;
			continue;
		}
		if (i + 1 >= argc) {
			usage();
			return -1;
		}
		const char *v = argv[++i];
		if (strcmp(a, "--connect") == 0)
			connect_to = v;
		else if (strcmp(a, "-c") == 0)
			o->conns = atoi(v);
		else if (strcmp(a, "-d") == 0)
			o->duration = atof(v);
		else if (strcmp(a, "--warmup") == 0)
			o->warmup = atof(v);
		else if (strcmp(a, "--ca") == 0)
			o->ca = v;
		else if (strcmp(a, "--cert") == 0)
			o->cert = v;
		else if (strcmp(a, "--key") == 0)
			o->key = v;
		else if (strcmp(a, "--servername") == 0)
			o->servername = v;
		else if (strcmp(a, "--unit") == 0)
			o->unit = atoi(v);
		else if (strcmp(a, "--register") == 0)
			o->reg = atoi(v);
		else if (strcmp(a, "--count") == 0)
			o->count = atoi(v);
		else if (strcmp(a, "--idle") == 0)
			o->idle = atoi(v);
		else if (strcmp(a, "--hold-file") == 0)
			o->hold_file = v;
		else {
			fprintf(stderr, "loadgen: unknown option %s\n", a);
			usage();
			return -1;
		}
	}
	if (o->idle > 0)
		o->conns = o->idle;
	if (!connect_to || o->conns < 1 || o->conns > MAX_CONNS || o->duration <= 0 ||
	    o->count < 1 || o->count > 125 || o->unit < 0 || o->unit > 255 || o->reg < 0 ||
	    o->reg > 65535) {
		usage();
		return -1;
	}
	if (o->tls && (!o->ca || !o->cert || !o->key)) {
		fprintf(stderr, "loadgen: --tls needs --ca, --cert and --key\n");
		return -1;
	}
	char host[64];
	const char *colon = strrchr(connect_to, ':');
	if (!colon || (size_t)(colon - connect_to) >= sizeof(host)) {
		fprintf(stderr, "loadgen: --connect '%s': expected ADDR:PORT\n", connect_to);
		return -1;
	}
	memcpy(host, connect_to, (size_t)(colon - connect_to));
	host[colon - connect_to] = '\0';
	o->addr.sin_family = AF_INET;
	o->addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &o->addr.sin_addr) != 1) {
		fprintf(stderr, "loadgen: '%s' is not an IPv4 address\n", host);
		return -1;
	}
	return 0;
}

static SSL_CTX *make_ctx(const struct opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* One read() per TLS record instead of two (header, then body): the load generator
	 * shares its core with the device and must not be what limits the gateways. */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_file(ctx, o->cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void build_req(struct conn *c, const struct opts *o)
{
	c->tid++;
	uint8_t *r = c->req;
	r[0] = (uint8_t)(c->tid >> 8);
	r[1] = (uint8_t)c->tid;
	r[2] = 0;
	r[3] = 0;
	r[4] = 0;
	r[5] = 6;
	r[6] = (uint8_t)o->unit;
	r[7] = 3;
	r[8] = (uint8_t)(o->reg >> 8);
	r[9] = (uint8_t)o->reg;
	r[10] = 0;
	r[11] = (uint8_t)o->count;
	c->req_off = 0;
	c->resp_len = 0;
}

static struct {
	uint64_t txns, errors, hs_fail, closed;
	bool measuring;
	int ready; /* connections that finished connecting/handshaking */
} stats;

static void kill_conn(int ep, struct conn *c, bool hs)
{
	if (c->st == ST_DEAD)
		return;
	if (hs)
		stats.hs_fail++;
	else
		stats.closed++;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->st = ST_DEAD;
}

static void set_events(int ep, struct conn *c, bool out)
{
	if (c->want_write == out)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_write = out;
}

/* Checks a whole response; true if it answers c->req correctly. */
static bool check_resp(const struct conn *c, const struct opts *o)
{
	const uint8_t *p = c->resp;
	return p[0] == c->req[0] && p[1] == c->req[1] && p[7] == 3 && p[8] == 2 * o->count &&
	       c->resp_len == 9 + 2 * (size_t)o->count;
}

/* Drives one connection as far as it goes without blocking. */
static void drive(int ep, struct conn *c, const struct opts *o, bool running)
{
	for (;;) {
		switch (c->st) {
		case ST_DEAD:
			return;
		case ST_CONNECTING: {
			int err = 0;
			socklen_t l = sizeof(err);
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err == EINPROGRESS)
				return;
			if (err != 0) {
				kill_conn(ep, c, true);
				return;
			}
			c->st = o->tls ? ST_HANDSHAKE : ST_READY;
			if (!o->tls)
				stats.ready++;
			set_events(ep, c, false);
			break;
		}
		case ST_HANDSHAKE: {
			int r = SSL_do_handshake(c->ssl);
			if (r == 1) {
				c->st = ST_READY;
				stats.ready++;
				set_events(ep, c, false);
				break;
			}
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ) {
				set_events(ep, c, false);
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				set_events(ep, c, true);
				return;
			}
			if (stats.hs_fail == 0)
				ERR_print_errors_fp(stderr);
			ERR_clear_error();
			kill_conn(ep, c, true);
			return;
		}
		case ST_READY:
			if (!running || o->idle > 0) {
				/* Idle connections still read, so a close by the server is noticed. */
				uint8_t b[64];
				ssize_t r = c->ssl ? SSL_read(c->ssl, b, sizeof(b)) : read(c->fd, b, sizeof(b));
				if (r == 0 || (r < 0 && !c->ssl && errno != EAGAIN) ||
				    (r < 0 && c->ssl && SSL_get_error(c->ssl, (int)r) != SSL_ERROR_WANT_READ))
					kill_conn(ep, c, false);
				ERR_clear_error();
				return;
			}
			if (c->req_off == 0) {
				build_req(c, o);
				c->t0 = now_ns();
			}
			if (c->ssl) {
				int r = SSL_write(c->ssl, c->req, sizeof(c->req));
				if (r <= 0) {
					int e = SSL_get_error(c->ssl, r);
					if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
						c->req_off = 1; /* retry the same buffer */
						set_events(ep, c, e == SSL_ERROR_WANT_WRITE);
						return;
					}
					ERR_clear_error();
					kill_conn(ep, c, false);
					return;
				}
			} else {
				ssize_t w = write(c->fd, c->req + c->req_off, sizeof(c->req) - c->req_off);
				if (w < 0 && errno == EAGAIN) {
					set_events(ep, c, true);
					return;
				}
				if (w <= 0) {
					kill_conn(ep, c, false);
					return;
				}
				c->req_off += (size_t)w;
				if (c->req_off < sizeof(c->req)) {
					set_events(ep, c, true);
					return;
				}
			}
			c->st = ST_WAIT;
			set_events(ep, c, false);
			/* The answer cannot be there yet: wait for epoll rather than try a read that
			 * fails with EAGAIN (a system call per transaction on the load generator's
			 * core, which it shares with the device). Bytes OpenSSL already holds would
			 * not wake epoll: read those now. */
			if (!c->ssl || !SSL_has_pending(c->ssl))
				return;
			break;
		case ST_WAIT: {
			size_t want = c->resp_len < 7 ? 7 : 6 + (size_t)((c->resp[4] << 8) | c->resp[5]);
			if (c->resp_len >= 7 && (want > RESP_MAX || want < 9)) {
				stats.errors++;
				kill_conn(ep, c, false);
				return;
			}
			ssize_t r;
			if (c->ssl) {
				r = SSL_read(c->ssl, c->resp + c->resp_len, (int)(want - c->resp_len));
				if (r <= 0) {
					int e = SSL_get_error(c->ssl, (int)r);
					ERR_clear_error();
					if (e == SSL_ERROR_WANT_READ)
						return;
					if (e == SSL_ERROR_WANT_WRITE) {
						set_events(ep, c, true);
						return;
					}
					kill_conn(ep, c, false);
					return;
				}
			} else {
				r = read(c->fd, c->resp + c->resp_len, want - c->resp_len);
				if (r < 0 && errno == EAGAIN)
					return;
				if (r <= 0) {
					kill_conn(ep, c, false);
					return;
				}
			}
			c->resp_len += (size_t)r;
			if (c->resp_len < 7 || c->resp_len < 6 + (size_t)((c->resp[4] << 8) | c->resp[5]))
				break;
			uint64_t t = now_ns();
			if (stats.measuring) {
				if (check_resp(c, o)) {
					stats.txns++;
					sample_add(t - c->t0);
				} else {
					stats.errors++;
				}
			}
			c->st = ST_READY;
			c->req_off = 0;
			break;
		}
		}
	}
}

static int open_conn(int ep, struct conn *c, const struct opts *o, SSL_CTX *ctx)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&o->addr, sizeof(o->addr)) < 0 &&
	    errno != EINPROGRESS) {
		int e = errno;
		close(c->fd);
		return -e;
	}
	if (ctx) {
		c->ssl = SSL_new(ctx);
		if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
			close(c->fd);
			return -ENOMEM;
		}
		if (o->servername) {
			SSL_set_tlsext_host_name(c->ssl, o->servername);
			SSL_set1_host(c->ssl, o->servername);
		}
		SSL_set_connect_state(c->ssl);
	}
	c->st = ST_CONNECTING;
	c->want_write = true;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ? -errno : 0;
}

static void run_loop(int ep, struct conn *cs, const struct opts *o, uint64_t until, bool running)
{
	struct epoll_event evs[256];
	while (!stop_flag) {
		uint64_t t = now_ns();
		if (until && t >= until)
			return;
		int ms = until ? (int)((until - t) / 1000000u) + 1 : 200;
		int n = epoll_wait(ep, evs, 256, ms);
		if (n < 0 && errno != EINTR)
			return;
		for (int i = 0; i < n; i++)
			drive(ep, evs[i].data.ptr, o, running);
		(void)cs;
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse(argc, argv, &o) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o.conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	SSL_CTX *ctx = NULL;
	if (o.tls && !(ctx = make_ctx(&o)))
		return 1;
	samples.v = malloc(SAMPLE_CAP * sizeof(uint32_t));
	samples.stride = 1;
	struct conn *cs = calloc((size_t)o.conns, sizeof(*cs));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!samples.v || !cs || ep < 0)
		return 1;
	for (int i = 0; i < o.conns; i++) {
		int r = open_conn(ep, &cs[i], &o, ctx);
		if (r < 0) {
			fprintf(stderr, "loadgen: connection %d: %s\n", i, strerror(-r));
			cs[i].st = ST_DEAD;
			stats.hs_fail++;
		}
		/* Bound the handshakes in flight so a 1000-connection idle test does not trip the
		 * server's pre-authentication limits all at once. */
		if (o.idle > 0 && (i + 1) % 50 == 0)
			while (!stop_flag && stats.ready + (int)stats.hs_fail + (int)stats.closed < i + 1)
				run_loop(ep, cs, &o, now_ns() + 50000000u, false);
	}
	/* Wait for every connection to be up (or failed), at most 10 s. */
	uint64_t deadline = now_ns() + 10000000000ull;
	while (!stop_flag && stats.ready + (int)stats.hs_fail + (int)stats.closed < o.conns &&
	       now_ns() < deadline)
		run_loop(ep, cs, &o, now_ns() + 20000000u, false);
	if (o.idle > 0) {
		int up = 0;
		for (int i = 0; i < o.conns; i++)
			up += cs[i].st == ST_READY;
		printf("idle_conns=%d handshake_fail=%llu\n", up, (unsigned long long)stats.hs_fail);
		fflush(stdout);
		if (o.hold_file) {
			FILE *f = fopen(o.hold_file, "w");
			if (f) {
				fprintf(f, "%d\n", up);
				fclose(f);
			}
		}
		/* Hold until told to stop (or the duration, as a safety net). */
		run_loop(ep, cs, &o, now_ns() + (uint64_t)(o.duration * 1e9), false);
		return up == o.conns ? 0 : 1;
	}
	/* Kick every ready connection, warm up, then measure. */
	for (int i = 0; i < o.conns; i++)
		drive(ep, &cs[i], &o, true);
	run_loop(ep, cs, &o, now_ns() + (uint64_t)(o.warmup * 1e9), true);
	stats.measuring = true;
	uint64_t t0 = now_ns();
	run_loop(ep, cs, &o, t0 + (uint64_t)(o.duration * 1e9), true);
	double secs = (double)(now_ns() - t0) / 1e9;
	stats.measuring = false;
	qsort(samples.v, samples.n, sizeof(uint32_t), cmp_u32);
	int alive = 0;
	for (int i = 0; i < o.conns; i++)
		alive += cs[i].st != ST_DEAD;
	printf("conns=%d alive=%d txns=%llu tps=%.0f p50_us=%.1f p99_us=%.1f errors=%llu handshake_fail=%llu closed=%llu\n",
	       o.conns, alive, (unsigned long long)stats.txns, (double)stats.txns / secs, pct(0.50),
	       pct(0.99), (unsigned long long)stats.errors, (unsigned long long)stats.hs_fail,
	       (unsigned long long)stats.closed);
	for (int i = 0; i < o.conns; i++)
		if (cs[i].st != ST_DEAD) {
			if (cs[i].ssl)
				SSL_free(cs[i].ssl);
			close(cs[i].fd);
		}
	free(cs);
	free(samples.v);
	SSL_CTX_free(ctx);
	close(ep);
	return stats.txns > 0 && stats.errors == 0 ? 0 : 1;
}
