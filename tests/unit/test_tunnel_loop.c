/* tests/unit/test_tunnel_loop.c: the tunnel's whole loop in this process (tunnel_setup,
 * tunnel_run, tunnel_teardown on a loop of the test's own), in front of the real guard set up
 * on the same loop (guard_setup), with a site PKI made by `bmsgate pki`, and a device and a
 * head-end on threads of blocking sockets over 127.0.0.1: a request relayed and its answer
 * back; the guard refusing the tunnel's certificate, and the tunnel refusing the guard's
 * (neither retried); the guard down (retried with back-off to connect-timeout, then the
 * head-end's connection closed); a head-end that half-closes with an answer still due (once
 * the session is open, and before it is); a stop
 * with a connection open and one with a connection still dialling. Every test ends as
 * libuv's own do: the loop closes with no handle left (uv_loop_close() == 0). The tunnel's
 * diagnostics (stderr) are read back to check what it said, and how often. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "proxy/guard.h"
#include "tests/unit/loop_util.h"
#include "proxy/tunnel.h"

static char dir[64];
static const char *bin;

/* ---- time ---- */

static double now_s(void)
{
	return (double)bms_mono_us() / 1e6;
}

/* ---- a device: answers every read with zeros; a read of register 50 after 300 ms ---- */

#define SLOW_REG 50

struct device {
	int lfd, port;
	pthread_t th;
};

static void *device_main(void *arg)
{
	struct device *d = arg;
	for (;;) {
		int fd = accept(d->lfd, NULL, NULL);
		if (fd < 0)
			return NULL; /* the test shut the listener down */
		uint8_t q[260], a[260];
		while (read_full(fd, q, 7) == 0) {
			size_t len = (size_t)(q[4] << 8 | q[5]);
			if (len < 6 || len > 250 || read_full(fd, q + 7, len - 1) < 0)
				break;
			unsigned reg = (unsigned)(q[8] << 8 | q[9]), qty = (unsigned)(q[10] << 8 | q[11]);
			if (qty > 100)
				break;
			if (reg == SLOW_REG)
				usleep(300000);
			memcpy(a, q, 8);
			a[8] = (uint8_t)(2 * qty);
			memset(a + 9, 0, 2 * qty);
			a[4] = 0;
			a[5] = (uint8_t)(3 + 2 * qty);
			if (write(fd, a, 9 + 2 * qty) < 0)
				break;
		}
		close(fd);
	}
}

static void device_start(struct device *d)
{
	d->lfd = listen_any(&d->port);
	assert_true(d->lfd >= 0);
	assert_int_equal(pthread_create(&d->th, NULL, device_main, d), 0);
}

static void device_stop(struct device *d)
{
	shutdown(d->lfd, SHUT_RDWR);
	pthread_join(d->th, NULL);
	close(d->lfd);
}

/* ---- the head-end on a thread: a script, and what it saw ---- */

enum script {
	H_RELAY,        /* a read and a denied write, both answered; then it closes */
	H_UNANSWERED,   /* a read, then waits for the tunnel to close the connection */
	H_HALF_CLOSE,   /* a read answered (the session is open), two more (the last one slow), a
			 * half-close, then both answers and the close */
	H_EARLY_CLOSE,  /* three reads (the last one slow) and a half-close at once, before the
			 * tunnel's TLS session is up, then every answer and the close */
	H_STOP_OPEN,    /* a read answered, then the test stops the tunnel: the connection closes */
	H_STOP_DIALING, /* connects and waits 350 ms (the tunnel is retrying), then the stop */
};

struct headend {
	int script, port;
	uv_async_t *done; /* the loop is told once: when the script ended, or when it wants the stop */
	/* what it saw, checked on the main thread */
	uint8_t got[128];
	size_t ngot;
	int closed;       /* 1: the tunnel closed the connection (EOF or reset) */
	double took;      /* seconds from connect to that close */
	pthread_t th;
};

static const uint8_t rd100[] = { 0, 1, 0, 0, 0, 6, 1, 3, 0, 100, 0, 1 };
static const uint8_t wr100[] = { 0, 2, 0, 0, 0, 6, 1, 6, 0, 100, 0, 200 };

static void read_req(uint8_t q[12], uint16_t tid, uint16_t reg)
{
	const uint8_t t[12] = { (uint8_t)(tid >> 8), (uint8_t)tid, 0, 0, 0, 6, 1, 3, (uint8_t)(reg >> 8), (uint8_t)reg, 0, 1 };
	memcpy(q, t, 12);
}

/* Everything until the close; the close itself and when it came. */
static void read_to_close(struct headend *h, int fd, double t0)
{
	for (;;) {
		ssize_t n = read(fd, h->got + h->ngot, sizeof(h->got) - h->ngot);
		if (n > 0) {
			h->ngot += (size_t)n;
			if (h->ngot < sizeof(h->got))
				continue;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			h->closed = 1;
		break; /* n < 0 otherwise: the receive timeout; closed stays 0 */
	}
	h->took = now_s() - t0;
}

static void *headend_main(void *arg)
{
	struct headend *h = arg;
	int fd = connect_to(h->port);
	double t0 = now_s();
	uint8_t q[36];
	if (fd < 0)
		goto out;
	switch (h->script) {
	case H_RELAY:
		if (write(fd, rd100, sizeof(rd100)) == (ssize_t)sizeof(rd100) && read_full(fd, h->got, 11) == 0)
			h->ngot = 11;
		if (write(fd, wr100, sizeof(wr100)) == (ssize_t)sizeof(wr100) && read_full(fd, h->got + 11, 9) == 0)
			h->ngot += 9;
		break;
	case H_UNANSWERED:
		if (write(fd, rd100, sizeof(rd100)) == (ssize_t)sizeof(rd100))
			read_to_close(h, fd, t0);
		break;
	case H_HALF_CLOSE:
		read_req(q, 41, 100);
		if (write(fd, q, 12) != 12 || read_full(fd, h->got, 11) < 0)
			break;
		h->ngot = 11;
		read_req(q, 42, 101);
		read_req(q + 12, 43, SLOW_REG);
		if (write(fd, q, 24) == 24 && shutdown(fd, SHUT_WR) == 0)
			read_to_close(h, fd, now_s());
		break;
	case H_EARLY_CLOSE:
		read_req(q, 41, 100);
		read_req(q + 12, 42, 101);
		read_req(q + 24, 43, SLOW_REG);
		if (write(fd, q, 36) == 36 && shutdown(fd, SHUT_WR) == 0)
			read_to_close(h, fd, t0);
		break;
	case H_STOP_OPEN:
		if (write(fd, rd100, sizeof(rd100)) == (ssize_t)sizeof(rd100) && read_full(fd, h->got, 11) == 0)
			h->ngot = 11;
		t0 = now_s();
		uv_async_send(h->done); /* the handle is closed after this one: never again */
		read_to_close(h, fd, t0);
		close(fd);
		return NULL;
	case H_STOP_DIALING:
		usleep(350000);
		t0 = now_s();
		uv_async_send(h->done);
		read_to_close(h, fd, t0);
		close(fd);
		return NULL;
	}
	close(fd);
out:
	uv_async_send(h->done);
	return NULL;
}

/* ---- the loop: the tunnel, and the guard in front of the device, on one loop ---- */

struct rig {
	/* the test's choices */
	bool with_guard;
	const char *cert;          /* the tunnel's certificate: "op1" (site CA) or "stranger" (another CA) */
	const char *tunnel_extra;  /* more tunnel configuration lines */
	int script;
	/* the run */
	struct tunnel *t;
	struct guard *g;
	uv_async_t done;
	struct headend h;
	char tlog[1 << 14];        /* the tunnel's (and guard's) diagnostics */
	const char *trail;         /* the guard's audit trail */
};

static void on_done(uv_async_t *a)
{
	struct rig *r = a->data;
	tunnel_stop(r->t);
	if (r->g)
		guard_drain(r->g, "test: the head-end is done");
	uv_close((uv_handle_t *)a, NULL);
}

static void guard_conf(struct proxy_config *cfg, int tls_port, int dev_port, const char *name)
{
	char path[160], text[2048], pol[600];
	snprintf(pol, sizeof(pol),
		 "device ahu modbus 127.0.0.1 port %d unit 1 {\n  point sp holding 100 scale 0.1 unit degC range 15..30\n}\n"
		 "role operators {\n  certificate-role operator\n}\n"
		 "allow operators read ahu\n",
		 dev_port);
	snprintf(path, sizeof(path), "%s/site.policy", dir);
	write_file(path, pol);
	snprintf(text, sizeof(text),
		 "node tunnel-loop\nlisten tls 127.0.0.1:%d\n"
		 "certificate %s/pki/issued/guard.crt\nkey %s/pki/issued/guard.key\nca %s/pki/ca.crt\n"
		 "policy %s/site.policy\n"
		 "device ahu {\n address 127.0.0.1:%d\n units 1\n}\n"
		 "audit {\n file %s/%s.jsonl\n key %s/audit.key\n}\n"
		 "limits {\n drain-timeout 2s\n}\n",
		 tls_port, dir, dir, dir, dir, dev_port, dir, name, dir);
	assert_int_equal(proxy_config_parse(name, text, PROXY_GUARD, cfg, stderr), 0);
}

static void tunnel_conf(struct proxy_config *cfg, int port, int guard_port, const char *certdir, const char *cert,
			const char *extra)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "listen 127.0.0.1:%d\nguard 127.0.0.1:%d\n"
		 "certificate %s/%s/issued/%s.crt\nkey %s/%s/issued/%s.key\nca %s/pki/ca.crt\n%s\n",
		 port, guard_port, dir, certdir, cert, dir, certdir, cert, dir, extra ? extra : "");
	assert_int_equal(proxy_config_parse("tunnel", text, PROXY_TUNNEL, cfg, stderr), 0);
}

static void run(struct rig *r, const char *name)
{
	static struct proxy_config gcfg, tcfg;
	struct device dev;
	uv_loop_t loop;
	char path[160];
	int guard_port = free_port(), tport = free_port();
	bool stranger = strcmp(r->cert, "stranger") == 0;
	assert_int_equal(uv_loop_init(&loop), 0);
	if (r->with_guard) {
		device_start(&dev);
		guard_conf(&gcfg, guard_port, dev.port, name);
		assert_int_equal(guard_setup(&gcfg, &loop, &r->g), 0);
	}
	tunnel_conf(&tcfg, tport, guard_port, stranger ? "other" : "pki", r->cert, r->tunnel_extra);

	/* the diagnostics into a file for the run (stderr is put back before any assertion) */
	snprintf(path, sizeof(path), "%s/%s.log", dir, name);
	fflush(stderr);
	int saved = dup(2), lfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && lfd >= 0);
	dup2(lfd, 2);
	close(lfd);
	int setup = tunnel_setup(&tcfg, &loop, &r->t);
	if (setup == 0) {
		uv_async_init(&loop, &r->done, on_done);
		r->done.data = r;
		r->h.script = r->script;
		r->h.port = tport;
		r->h.done = &r->done;
		pthread_create(&r->h.th, NULL, headend_main, &r->h);
		tunnel_run(r->t);
		if (r->g)
			guard_run(r->g); /* the loop ran out already: this records the stop */
		pthread_join(r->h.th, NULL);
		tunnel_teardown(r->t);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	snprintf(r->tlog, sizeof(r->tlog), "%.*s", (int)sizeof(r->tlog) - 1, read_file(path));
	assert_int_equal(setup, 0);
	if (r->g)
		assert_int_equal(guard_teardown(r->g), 0);
	/* libuv's own tests' ending: nothing left open on the loop */
	assert_int_equal(uv_loop_close(&loop), 0);
	if (r->with_guard) {
		device_stop(&dev);
		snprintf(path, sizeof(path), "%s/%s.jsonl", dir, name);
		r->trail = read_file(path);
	}
}

/* The one close path writes one line per connection that ended with something to say. */
static int close_lines(const struct rig *r)
{
	return count(r->tlog, "connection from the head-end closed:");
}

static void test_relay(void **state)
{
	(void)state;
	static struct rig r = { .with_guard = true, .cert = "op1", .script = H_RELAY };
	run(&r, "relay");
	assert_int_equal(r.h.ngot, 20);
	/* the device's answer with the head-end's tid; the guard's exception 01, unchanged */
	static const uint8_t answer[] = { 0, 1, 0, 0, 0, 5, 1, 3, 2, 0, 0 };
	static const uint8_t denied[] = { 0, 2, 0, 0, 0, 3, 1, 0x86, 0x01 };
	assert_memory_equal(r.h.got, answer, sizeof(answer));
	assert_memory_equal(r.h.got + 11, denied, sizeof(denied));
	assert_int_equal(count(r.tlog, "connected to guard 127.0.0.1:"), 1);
	assert_int_equal(count(r.tlog, "retrying in"), 0);
	assert_int_equal(count(r.trail, "\"conn_accepted\""), 1);
	assert_int_equal(count(r.trail, "\"conn_closed\""), 1);
}

/* The guard refuses a certificate from another CA: the head-end's connection closes at once
 * (not at connect-timeout), the guard saw exactly one try, and the tunnel said so once. */
static void test_guard_refuses_certificate(void **state)
{
	(void)state;
	static struct rig r = { .with_guard = true, .cert = "stranger", .script = H_UNANSWERED,
				.tunnel_extra = "connect-timeout 3s\nbackoff 100ms" };
	run(&r, "refused");
	assert_int_equal(r.h.closed, 1);
	assert_int_equal(r.h.ngot, 0);
	assert_true(r.h.took < 1.5);
	assert_int_equal(count(r.trail, "\"conn_refused\""), 1);
	assert_int_equal(count(r.trail, "\"conn_accepted\""), 0);
	assert_int_equal(count(r.tlog, "retrying in"), 0);
	assert_int_equal(close_lines(&r), 1);
}

/* The tunnel refuses the guard's certificate (not the name it expects): it says whose
 * certificate and why, once, and does not try again. */
static void test_tunnel_refuses_guard(void **state)
{
	(void)state;
	static struct rig r = { .with_guard = true, .cert = "op1", .script = H_UNANSWERED,
				.tunnel_extra = "server-name wrong.example\nconnect-timeout 3s\nbackoff 100ms" };
	run(&r, "wrongname");
	assert_int_equal(r.h.closed, 1);
	assert_int_equal(r.h.ngot, 0);
	assert_true(r.h.took < 1.5);
	assert_int_equal(count(r.tlog, "(expected name wrong.example) failed: certificate refused: hostname mismatch"), 1);
	assert_int_equal(count(r.tlog, "[the guard's certificate]"), 1);
	assert_int_equal(count(r.tlog, "connection from the head-end closed: TLS handshake failed"), 1);
	assert_int_equal(close_lines(&r), 1);
	assert_int_equal(count(r.tlog, "retrying in"), 0);
	assert_int_equal(count(r.trail, "\"conn_accepted\""), 0);
}

/* Nothing listens where the guard should be: tries at 0, 100, 300, 500 and (cut to the
 * deadline) 700 ms, then the head-end's connection is closed. */
static void test_guard_down(void **state)
{
	(void)state;
	static struct rig r = { .with_guard = false, .cert = "op1", .script = H_UNANSWERED,
				.tunnel_extra = "connect-timeout 700ms\nbackoff 200ms" };
	run(&r, "down");
	assert_int_equal(r.h.closed, 1);
	assert_true(r.h.took > 0.65);
	assert_true(r.h.took < 2.5);
	assert_int_equal(count(r.tlog, "connection refused; retrying in 100 ms"), 1);
	assert_true(count(r.tlog, "connection refused; retrying in 200 ms") >= 2);
	assert_int_equal(count(r.tlog, "connection from the head-end closed: guard unreachable"), 1);
	assert_int_equal(close_lines(&r), 1);
}

/* The head-end half-closes with the slow answer still due: the tunnel passes the half-close
 * on (close_notify), relays every answer, then closes once the guard has. Once while the
 * session is open (FINISHING), once before it is (the half-close waits in pend). */
static void check_half_close(struct rig *r)
{
	assert_int_equal(r->h.closed, 1);
	assert_int_equal(r->h.ngot, 33);
	assert_int_equal(r->h.got[1], 41);
	assert_int_equal(r->h.got[12], 42);
	assert_int_equal(r->h.got[23], 43);
	assert_true(r->h.took > 0.25); /* the close waited for the slow answer */
	assert_int_equal(close_lines(r), 1);
	assert_int_equal(count(r->trail, "\"conn_closed\""), 1);
	/* the half-close reached the guard as close_notify, not as the TCP connection's end */
	assert_int_equal(count(r->trail, "peer closed the TLS session"), 1);
}

static void test_half_close(void **state)
{
	(void)state;
	static struct rig r = { .with_guard = true, .cert = "op1", .script = H_HALF_CLOSE };
	run(&r, "half");
	check_half_close(&r);
}

static void test_half_close_before_open(void **state)
{
	(void)state;
	static struct rig r = { .with_guard = true, .cert = "op1", .script = H_EARLY_CLOSE };
	run(&r, "early");
	check_half_close(&r);
}

/* A stop closes the open connection at once; the loop ends with nothing left. */
static void test_stop_open(void **state)
{
	(void)state;
	static struct rig r = { .with_guard = true, .cert = "op1", .script = H_STOP_OPEN };
	run(&r, "stop");
	assert_int_equal(r.h.ngot, 11);
	assert_int_equal(r.h.closed, 1);
	assert_true(r.h.took < 1.5);
	assert_int_equal(count(r.tlog, "stopping: closing 1 connections"), 1);
	assert_int_equal(close_lines(&r), 0); /* a stop closes quietly */
	assert_int_equal(count(r.trail, "\"conn_closed\""), 1);
}

/* A stop while the connection waits for a guard that is down (back-off between tries). */
static void test_stop_dialing(void **state)
{
	(void)state;
	static struct rig r = { .with_guard = false, .cert = "op1", .script = H_STOP_DIALING,
				.tunnel_extra = "connect-timeout 5s\nbackoff 200ms" };
	run(&r, "stopdial");
	assert_int_equal(r.h.closed, 1);
	assert_true(r.h.took < 1.5);
	assert_true(count(r.tlog, "retrying in") >= 2);
	assert_int_equal(count(r.tlog, "stopping: closing 1 connections"), 1);
	assert_int_equal(close_lines(&r), 0);
}

/* The table itself: every state reaches CLOSING, CLOSING is the end, nothing returns to
 * ACCEPTED, and a handshake (a refused certificate) never leads back to dialling. */
static void test_state_table(void **state)
{
	(void)state;
	for (int s = 0; s < TS_NSTATES; s++) {
		assert_false(tunnel_session_can((enum tsess_state)s, TS_ACCEPTED));
		assert_int_equal(tunnel_session_can((enum tsess_state)s, TS_CLOSING), s != TS_CLOSING);
		assert_false(tunnel_session_can(TS_CLOSING, (enum tsess_state)s));
		assert_string_not_equal(tunnel_session_state_name((enum tsess_state)s), "?");
	}
	assert_false(tunnel_session_can(TS_HANDSHAKING, TS_DIALING));
	assert_false(tunnel_session_can(TS_HANDSHAKING, TS_RETRYING));
	assert_false(tunnel_session_can(TS_HANDSHAKING, TS_WAITING));
	assert_false(tunnel_session_can(TS_OPEN, TS_DIALING));
	assert_true(tunnel_session_can(TS_DIALING, TS_RETRYING));
	assert_true(tunnel_session_can(TS_RETRYING, TS_WAITING));
	assert_true(tunnel_session_can(TS_WAITING, TS_DIALING));
	assert_false(tunnel_session_can(TS_NSTATES, TS_CLOSING));
	assert_string_equal(tunnel_session_state_name(TS_NSTATES), "?");
}

static int group_setup(void **state)
{
	(void)state;
	char cmd[2048];
	bin = access("build/asan/bmsgate", X_OK) == 0 ? "build/asan/bmsgate" : "build/bmsgate";
	snprintf(dir, sizeof(dir), "/tmp/bms-tunnel-loop-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "%s pki init %s/pki --name 'Loop CA' >/dev/null && "
		 "%s pki issue %s/pki --guard guard --ip 127.0.0.1 >/dev/null && "
		 "%s pki issue %s/pki --controller op1 --role operator >/dev/null && "
		 "%s pki init %s/other --name 'Other CA' >/dev/null && "
		 "%s pki issue %s/other --controller stranger --role operator >/dev/null && "
		 "%s audit keygen %s/audit.key %s/audit.pub >/dev/null",
		 bin, dir, bin, dir, bin, dir, bin, dir, bin, dir, bin, dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_table),
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_guard_refuses_certificate),
		cmocka_unit_test(test_tunnel_refuses_guard),
		cmocka_unit_test(test_guard_down),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_half_close_before_open),
		cmocka_unit_test(test_stop_open),
		cmocka_unit_test(test_stop_dialing),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
