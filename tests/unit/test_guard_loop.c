/* tests/unit/test_guard_loop.c: the guard's whole loop in this process (guard_setup,
 * guard_run, guard_teardown on a loop of the test's own), with a site PKI made by
 * `bmsgate pki`, a device and TLS clients on threads of blocking sockets over 127.0.0.1:
 * handshake, an allowed request answered by the device, a denied one (exception 01), a
 * device that is down (0A), a client without a certificate (refused), a client that closes
 * with its request in flight, and a drain. Every test ends as libuv's own do: the loop
 * closes with no handle left (uv_loop_close() == 0), and the audit trail says what happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/guard.h"
#include "tests/unit/loop_util.h"

static char dir[64];
static const char *bin;

/* ---- a device: answers every read with zeros, until stopped ---- */

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
			if (len < 2 || len > 250 || read_full(fd, q + 7, len - 1) < 0)
				break;
			unsigned qty = len >= 6 ? (unsigned)(q[10] << 8 | q[11]) : 1;
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

/* ---- a TLS client on a thread: a script of requests and what came back ---- */

enum { C_ALLOW_DENY_DOWN, C_NO_CERT, C_CLOSE_IN_FLIGHT };

struct client {
	int script, port;
	uv_async_t *done;  /* the loop is told when the script ended */
	/* what the script saw, checked on the main thread */
	int handshake;     /* 1 ok, -1 failed */
	uint8_t answers[3][16];
	int nanswers;
	pthread_t th;
};

static SSL *client_tls(struct client *c, SSL_CTX **ctxp, int *fdp)
{
	char p[160];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	*ctxp = ctx;
	snprintf(p, sizeof(p), "%s/pki/ca.crt", dir);
	SSL_CTX_load_verify_locations(ctx, p, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (c->script != C_NO_CERT) {
		snprintf(p, sizeof(p), "%s/pki/issued/op1.crt", dir);
		SSL_CTX_use_certificate_chain_file(ctx, p);
		snprintf(p, sizeof(p), "%s/pki/issued/op1.key", dir);
		SSL_CTX_use_PrivateKey_file(ctx, p, SSL_FILETYPE_PEM);
	}
	int fd = connect_to(c->port);
	*fdp = fd;
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	/* TLS 1.3: the server's verdict on our certificate comes with the first read */
	c->handshake = SSL_connect(ssl) == 1 ? 1 : -1;
	return ssl;
}

static int ask(SSL *ssl, const uint8_t *q, size_t qn, uint8_t *a, size_t an)
{
	if (SSL_write(ssl, q, (int)qn) != (int)qn)
		return -1;
	size_t got = 0;
	while (got < an) {
		int n = SSL_read(ssl, a + got, (int)(an - got));
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	SSL_CTX *ctx;
	int fd;
	SSL *ssl = client_tls(c, &ctx, &fd);
	/* read holding 100 (allowed), write holding 100 (denied), read unit 2 (device down) */
	static const uint8_t rd[] = { 0, 1, 0, 0, 0, 6, 1, 3, 0, 100, 0, 1 };
	static const uint8_t wr[] = { 0, 2, 0, 0, 0, 6, 1, 6, 0, 100, 0, 200 };
	static const uint8_t down[] = { 0, 3, 0, 0, 0, 6, 2, 3, 0, 0, 0, 1 };
	if (c->handshake == 1 && c->script == C_ALLOW_DENY_DOWN) {
		if (ask(ssl, rd, sizeof(rd), c->answers[0], 11) == 0)
			c->nanswers++;
		if (ask(ssl, wr, sizeof(wr), c->answers[1], 9) == 0)
			c->nanswers++;
		if (ask(ssl, down, sizeof(down), c->answers[2], 9) == 0)
			c->nanswers++;
		SSL_shutdown(ssl);
	} else if (c->handshake == 1 && c->script == C_CLOSE_IN_FLIGHT) {
		(void)SSL_write(ssl, rd, sizeof(rd));
		/* once the guard has decided (the record is written before it forwards) */
		char path[160];
		snprintf(path, sizeof(path), "%s/gone.jsonl", dir);
		for (int i = 0; i < 200 && !strstr(read_file(path), "\"kind\":\"decision\""); i++)
			usleep(10000);
		/* a reset, not a half-close: the request is left without its client */
		struct linger l = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	} else if (c->handshake == 1) {
		uint8_t b[16];
		if (SSL_read(ssl, b, sizeof(b)) <= 0)
			c->handshake = -1; /* refused after the handshake (TLS 1.3) */
	}
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	uv_async_send(c->done);
	return NULL;
}

/* ---- the guard's loop ---- */

struct run {
	struct guard *g;
	uv_async_t done;
};

static void on_done(uv_async_t *a)
{
	struct run *r = a->data;
	guard_drain(r->g, "test: the client is done");
	uv_close((uv_handle_t *)a, NULL);
}

static void write_conf(struct proxy_config *cfg, int tls_port, int dev_port, int down_port, const char *name)
{
	char path[160], text[2048], pol[800];
	snprintf(pol, sizeof(pol),
		 "device ahu modbus 127.0.0.1 port %d unit 1 {\n  point sp holding 100 scale 0.1 unit degC range 15..30\n}\n"
		 "device down modbus 127.0.0.1 port %d unit 2\n"
		 "role operators {\n  certificate-role operator\n}\n"
		 "allow operators read ahu\nallow operators read down\n",
		 dev_port, down_port);
	snprintf(path, sizeof(path), "%s/site.policy", dir);
	write_file(path, pol);
	snprintf(text, sizeof(text),
		 "node loop-test\nlisten tls 127.0.0.1:%d\n"
		 "certificate %s/pki/issued/guard.crt\nkey %s/pki/issued/guard.key\nca %s/pki/ca.crt\n"
		 "policy %s/site.policy\n"
		 "device ahu {\n address 127.0.0.1:%d\n units 1\n}\n"
		 "device down {\n address 127.0.0.1:%d\n units 2\n connect-timeout 200ms\n backoff 200ms\n}\n"
		 "audit {\n file %s/%s.jsonl\n key %s/audit.key\n results all\n}\n"
		 "limits {\n drain-timeout 2s\n}\n",
		 tls_port, dir, dir, dir, dir, dev_port, down_port, dir, name, dir);
	assert_int_equal(proxy_config_parse(name, text, PROXY_GUARD, cfg, stderr), 0);
}

/* One guard, one client script; returns the audit trail. */
static const char *run_guard(struct client *c, const char *name)
{
	static struct proxy_config cfg;
	struct device dev;
	struct run r;
	uv_loop_t loop;
	char path[160];
	device_start(&dev);
	int tls_port = free_port(), down_port = free_port();
	write_conf(&cfg, tls_port, dev.port, down_port, name);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(guard_setup(&cfg, &loop, &r.g), 0);
	assert_int_equal(uv_async_init(&loop, &r.done, on_done), 0);
	r.done.data = &r;
	c->port = tls_port;
	c->done = &r.done;
	assert_int_equal(pthread_create(&c->th, NULL, client_main, c), 0);
	guard_run(r.g);
	pthread_join(c->th, NULL);
	assert_int_equal(guard_teardown(r.g), 0);
	/* libuv's own tests' ending: nothing left open on the loop */
	assert_int_equal(uv_loop_close(&loop), 0);
	device_stop(&dev);
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, name);
	return read_file(path);
}

static void test_allow_deny_down(void **state)
{
	(void)state;
	struct client c = { .script = C_ALLOW_DENY_DOWN };
	const char *trail = run_guard(&c, "allow");
	assert_int_equal(c.handshake, 1);
	assert_int_equal(c.nanswers, 3);
	/* the device's answer, its tid restored; the deny; the device down */
	assert_int_equal(c.answers[0][1], 1);
	assert_int_equal(c.answers[0][7], 3);
	assert_int_equal(c.answers[0][8], 2);
	assert_int_equal(c.answers[1][7], 0x86);
	assert_int_equal(c.answers[1][8], 0x01);
	assert_int_equal(c.answers[2][7], 0x83);
	assert_int_equal(c.answers[2][8], 0x0a);
	assert_int_equal(count(trail, "\"conn_accepted\""), 1);
	assert_int_equal(count(trail, "\"conn_closed\""), 1);
	assert_int_equal(count(trail, "\"device_down\""), 1);
	assert_int_equal(count(trail, "\"conn_refused\""), 0);
	assert_int_equal(count(trail, "\"stop\""), 1);
}

static void test_no_certificate_refused(void **state)
{
	(void)state;
	struct client c = { .script = C_NO_CERT };
	const char *trail = run_guard(&c, "nocert");
	assert_int_equal(c.handshake, -1);
	assert_int_equal(count(trail, "\"conn_refused\""), 1);
	assert_int_equal(count(trail, "\"conn_accepted\""), 0);
	assert_int_equal(count(trail, "\"conn_closed\""), 0);
}

static void test_close_in_flight(void **state)
{
	(void)state;
	struct client c = { .script = C_CLOSE_IN_FLIGHT };
	const char *trail = run_guard(&c, "gone");
	assert_int_equal(c.handshake, 1);
	assert_int_equal(count(trail, "\"conn_accepted\""), 1);
	assert_int_equal(count(trail, "\"conn_closed\""), 1);
	/* the decision and its one result, whatever came first: the answer or the reset */
	assert_int_equal(count(trail, "\"kind\":\"decision\""), 1);
	assert_int_equal(count(trail, "\"ref\":"), 1);
}

static int group_setup(void **state)
{
	(void)state;
	char cmd[2048];
	bin = access("build/asan/bmsgate", X_OK) == 0 ? "build/asan/bmsgate" : "build/bmsgate";
	snprintf(dir, sizeof(dir), "/tmp/bms-guard-loop-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "%s pki init %s/pki --name 'Loop CA' >/dev/null && "
		 "%s pki issue %s/pki --guard guard --ip 127.0.0.1 >/dev/null && "
		 "%s pki issue %s/pki --controller op1 --role operator >/dev/null && "
		 "%s audit keygen %s/audit.key %s/audit.pub >/dev/null",
		 bin, dir, bin, dir, bin, dir, bin, dir, dir);
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
		cmocka_unit_test(test_allow_deny_down),
		cmocka_unit_test(test_no_certificate_refused),
		cmocka_unit_test(test_close_in_flight),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
