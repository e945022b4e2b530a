/* tests/unit/test_modbus_libmodbus.c: real peers. A libmodbus client talks to a
 * libmodbus server through a relay in this process that does what the gateway
 * does: cut the TCP streams with modbus_frame, decode every frame, check each
 * response against its request (modbus_check_response on the decoded pair, and
 * modbus_check_answer on the bytes, as the guard does before it relays an answer). Each exchange is then compared with what the
 * client asked for. Sockets on 127.0.0.1, ports chosen by the kernel. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <modbus.h>

#include "parsers/modbus.h"

#define MAX_LOG 64

/* What the relay saw: one entry per frame, without borrowed pointers. */
struct seen {
	enum bms_dir dir;
	enum bms_parse_result res;
	uint64_t anomalies;
	uint8_t fc, exception, op;
	uint16_t ntargets;
	struct bms_target t0, t1; /* data pointers cleared */
	enum bms_parse_result check;  /* responses: modbus_check_response against the last request */
	uint64_t check_anomalies;
	enum bms_parse_result answer; /* responses: modbus_check_answer over the two frames' bytes */
	uint64_t answer_anomalies;
};

struct relay {
	int listen_fd;
	int server_port;
	struct seen log[MAX_LOG];
	int nlog;
	int framing_errors;
};

struct server {
	modbus_t *ctx;
	int listen_fd;
	modbus_mapping_t *map;
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];

	if (modbus_tcp_accept(s->ctx, &s->listen_fd) < 0)
		return NULL;
	for (;;) {
		int rc = modbus_receive(s->ctx, query);
		if (rc > 0)
			(void)modbus_reply(s->ctx, query, rc, s->map);
		else if (rc < 0)
			break;
	}
	return NULL;
}

static int connect_local(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int listen_local(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One direction of the relay: bytes in, whole frames decoded and forwarded. */
struct half {
	uint8_t buf[MODBUS_MAX_ADU * 2];
	size_t have;
	enum bms_dir dir;
};

static void record(struct relay *r, const struct bms_request *q, enum bms_parse_result res,
		   const struct bms_request *last_req, bool have_req)
{
	struct seen *s;

	if (r->nlog >= MAX_LOG)
		return;
	s = &r->log[r->nlog++];
	memset(s, 0, sizeof(*s));
	s->dir = (enum bms_dir)q->dir;
	s->res = res;
	s->anomalies = q->anomalies;
	s->fc = q->raw.modbus.fc;
	s->exception = q->raw.modbus.exception;
	s->op = q->op;
	s->ntargets = q->ntargets;
	if (q->ntargets > 0)
		s->t0 = q->targets[0];
	if (q->ntargets > 1)
		s->t1 = q->targets[1];
	s->t0.data = s->t1.data = NULL;
	s->check = BMS_NEED_MORE; /* "not checked" */
	if (q->dir == BMS_DIR_RESPONSE && have_req && res == BMS_OK)
		s->check = modbus_check_response(last_req, q, &s->check_anomalies);
}

/* Frames what is buffered; returns -1 when the stream cannot be framed. */
static int pump(struct relay *r, struct half *h, int out_fd, struct bms_request *last_req, uint8_t *last_frame,
		size_t *last_len, bool *have_req)
{
	for (;;) {
		size_t flen = 0;
		uint64_t an = 0;
		struct bms_request q;
		enum bms_parse_result fr = modbus_frame(h->buf, h->have, &flen, &an);

		if (fr == BMS_NEED_MORE)
			return 0;
		if (fr == BMS_MALFORMED) {
			r->framing_errors++;
			return -1;
		}
		enum bms_parse_result res = modbus_decode(h->buf, flen, h->dir, &q);
		record(r, &q, res, last_req, *have_req);
		/* What the guard does with an answer: check its bytes against the request's. */
		if (h->dir == BMS_DIR_RESPONSE && r->nlog > 0) {
			struct seen *s = &r->log[r->nlog - 1];
			s->answer = *have_req ? modbus_check_answer(last_frame, *last_len, h->buf, flen,
								     &s->answer_anomalies, NULL)
					      : BMS_NEED_MORE;
		}
		if (h->dir == BMS_DIR_REQUEST && res == BMS_OK) {
			/* Keep the request and its bytes: it borrows from them. */
			memcpy(last_frame, h->buf, flen);
			*last_len = flen;
			if (modbus_decode(last_frame, flen, BMS_DIR_REQUEST, last_req) != BMS_OK)
				return -1;
			*have_req = true;
		}
		if (write_all(out_fd, h->buf, flen) != 0)
			return -1;
		memmove(h->buf, h->buf + flen, h->have - flen);
		h->have -= flen;
	}
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	static struct half up = { .dir = BMS_DIR_REQUEST }, down = { .dir = BMS_DIR_RESPONSE };
	static struct bms_request last_req;
	static uint8_t last_frame[MODBUS_MAX_ADU];
	size_t last_len = 0;
	bool have_req = false;
	int cfd = accept(r->listen_fd, NULL, NULL);
	int sfd = cfd >= 0 ? connect_local(r->server_port) : -1;

	up.have = down.have = 0;
	while (cfd >= 0 && sfd >= 0) {
		struct pollfd p[2] = { { .fd = cfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, 5000) <= 0)
			break; /* nothing for 5 s: the test fails on the log */
		for (int i = 0; i < 2; i++) {
			struct half *h = i == 0 ? &up : &down;
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(p[i].fd, h->buf + h->have, sizeof(h->buf) - h->have);
			if (n <= 0)
				goto done;
			h->have += (size_t)n;
			if (pump(r, h, i == 0 ? sfd : cfd, &last_req, last_frame, &last_len, &have_req) != 0)
				goto done;
		}
	}
done:
	if (cfd >= 0)
		close(cfd);
	if (sfd >= 0)
		close(sfd);
	return NULL;
}

/* The request at log[i] and the response after it. */
static void expect_exchange(const struct relay *r, int *i, uint8_t fc, uint8_t op, uint8_t space, uint32_t start,
			    uint32_t count, uint8_t exception)
{
	assert_true(*i + 1 < r->nlog);
	const struct seen *q = &r->log[*i], *s = &r->log[*i + 1];
	print_message("# fc %u: request %s, response fc 0x%02x exception %u check %d\n", fc,
		      q->res == BMS_OK ? "ok" : "malformed", s->fc, s->exception, s->check);
	assert_int_equal(q->dir, BMS_DIR_REQUEST);
	assert_int_equal(q->res, BMS_OK);
	assert_int_equal(q->fc, fc);
	assert_int_equal(q->op, op);
	if (space != BMS_SPACE_NONE) {
		assert_true(q->ntargets >= 1);
		assert_int_equal(q->t0.space, space);
		assert_int_equal(q->t0.start, start);
		assert_int_equal(q->t0.count, count);
	}
	assert_int_equal(s->dir, BMS_DIR_RESPONSE);
	assert_int_equal(s->res, BMS_OK);
	assert_int_equal(s->fc, exception ? (fc | 0x80) : fc);
	assert_int_equal(s->exception, exception);
	assert_int_equal(s->check, BMS_OK);
	/* The guard's answer check passes every answer libmodbus's server gives. */
	assert_int_equal(s->answer, BMS_OK);
	assert_int_equal(s->answer_anomalies, 0);
	*i += 2;
}

static void libmodbus_client_through_decoder(void **state)
{
	(void)state;
	static struct relay r;
	struct server srv = { 0 };
	pthread_t st, rt;
	int relay_port = 0, srv_port = 0;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	uint8_t bits[64], id[64];
	uint16_t regs[64];

	memset(&r, 0, sizeof(r));
	srv.map = modbus_mapping_new(100, 100, 100, 100);
	assert_non_null(srv.map);
	srv.ctx = modbus_new_tcp("127.0.0.1", 0);
	assert_non_null(srv.ctx);
	srv.listen_fd = modbus_tcp_listen(srv.ctx, 1);
	assert_true(srv.listen_fd >= 0);
	assert_int_equal(getsockname(srv.listen_fd, (struct sockaddr *)&a, &alen), 0);
	srv_port = ntohs(a.sin_port);
	r.server_port = srv_port;
	r.listen_fd = listen_local(&relay_port);
	assert_true(r.listen_fd >= 0);
	assert_int_equal(pthread_create(&st, NULL, server_main, &srv), 0);
	assert_int_equal(pthread_create(&rt, NULL, relay_main, &r), 0);

	modbus_t *c = modbus_new_tcp("127.0.0.1", relay_port);
	assert_non_null(c);
	modbus_set_response_timeout(c, 2, 0);
	modbus_set_slave(c, 1);
	assert_int_equal(modbus_connect(c), 0);
	for (int i = 0; i < 64; i++)
		regs[i] = (uint16_t)(0x100 + i), bits[i] = (uint8_t)(i % 3 == 0);

	assert_int_equal(modbus_read_bits(c, 0, 16, bits), 16);                  /* FC 1 */
	assert_int_equal(modbus_read_input_bits(c, 3, 10, bits), 10);            /* FC 2 */
	assert_int_equal(modbus_read_registers(c, 0, 10, regs), 10);             /* FC 3 */
	assert_int_equal(modbus_read_input_registers(c, 2, 5, regs), 5);         /* FC 4 */
	assert_int_equal(modbus_write_bit(c, 5, 1), 1);                          /* FC 5 */
	assert_int_equal(modbus_write_register(c, 1, 0x1234), 1);                /* FC 6 */
	assert_int_equal(modbus_write_bits(c, 0, 10, bits), 10);                 /* FC 15 */
	assert_int_equal(modbus_write_registers(c, 0, 5, regs), 5);              /* FC 16 */
	assert_true(modbus_report_slave_id(c, sizeof(id), id) > 0);              /* FC 17 */
	assert_int_equal(modbus_mask_write_register(c, 2, 0x00F2, 0x0025), 1);   /* FC 22 */
	assert_int_equal(modbus_write_and_read_registers(c, 4, 3, regs, 0, 6, regs), 6); /* FC 23 */
	assert_int_equal(modbus_read_registers(c, 95, 10, regs), -1);            /* exception 02 */
	{
		uint8_t raw[] = { 1, 11 };                                       /* FC 11: not served */
		uint8_t rsp[MODBUS_TCP_MAX_ADU_LENGTH];
		assert_true(modbus_send_raw_request(c, raw, sizeof(raw)) > 0);
		/* libmodbus hands raw exception responses back whole: 9 bytes */
		assert_int_equal(modbus_receive_confirmation(c, rsp), 9);
	}
	{
		uint8_t raw[] = { 1, 65 };                                       /* user-defined 65 */
		uint8_t rsp[MODBUS_TCP_MAX_ADU_LENGTH];
		assert_true(modbus_send_raw_request(c, raw, sizeof(raw)) > 0);
		/* libmodbus hands raw exception responses back whole: 9 bytes */
		assert_int_equal(modbus_receive_confirmation(c, rsp), 9);
	}
	modbus_close(c);
	modbus_free(c);
	pthread_join(rt, NULL);
	pthread_join(st, NULL);
	close(r.listen_fd);
	modbus_close(srv.ctx);
	modbus_free(srv.ctx);
	modbus_mapping_free(srv.map);

	assert_int_equal(r.framing_errors, 0);
	assert_int_equal(r.nlog, 2 * 14);
	int i = 0;
	expect_exchange(&r, &i, 1, BMS_OP_READ, BMS_SPACE_COIL, 0, 16, 0);
	expect_exchange(&r, &i, 2, BMS_OP_READ, BMS_SPACE_DISCRETE_INPUT, 3, 10, 0);
	expect_exchange(&r, &i, 3, BMS_OP_READ, BMS_SPACE_HOLDING_REGISTER, 0, 10, 0);
	expect_exchange(&r, &i, 4, BMS_OP_READ, BMS_SPACE_INPUT_REGISTER, 2, 5, 0);
	assert_true(r.log[i].t0.has_value && r.log[i].t0.value.b);
	expect_exchange(&r, &i, 5, BMS_OP_WRITE, BMS_SPACE_COIL, 5, 1, 0);
	assert_true(r.log[i].t0.has_value && r.log[i].t0.value.u == 0x1234);
	expect_exchange(&r, &i, 6, BMS_OP_WRITE, BMS_SPACE_HOLDING_REGISTER, 1, 1, 0);
	expect_exchange(&r, &i, 15, BMS_OP_WRITE, BMS_SPACE_COIL, 0, 10, 0);
	expect_exchange(&r, &i, 16, BMS_OP_WRITE, BMS_SPACE_HOLDING_REGISTER, 0, 5, 0);
	expect_exchange(&r, &i, 17, BMS_OP_DISCOVERY, BMS_SPACE_NONE, 0, 0, 0);
	expect_exchange(&r, &i, 22, BMS_OP_WRITE, BMS_SPACE_HOLDING_REGISTER, 2, 1, 0);
	/* FC 23: the read range first, then the write range. */
	assert_int_equal(r.log[i].ntargets, 2);
	assert_int_equal(r.log[i].t1.start, 4);
	assert_int_equal(r.log[i].t1.count, 3);
	expect_exchange(&r, &i, 23, BMS_OP_WRITE, BMS_SPACE_HOLDING_REGISTER, 0, 6, 0);
	expect_exchange(&r, &i, 3, BMS_OP_READ, BMS_SPACE_HOLDING_REGISTER, 95, 10, 2);
	expect_exchange(&r, &i, 11, BMS_OP_MANAGEMENT, BMS_SPACE_NONE, 0, 0, 1);
	assert_int_equal(r.log[i].anomalies, 1ull << MB_AN_USER_DEFINED_FUNCTION);
	expect_exchange(&r, &i, 65, BMS_OP_PRIVATE, BMS_SPACE_NONE, 0, 0, 1);
	/* Nothing notable in what libmodbus sends, apart from the user-defined code. */
	for (int k = 0; k < r.nlog; k++)
		if (r.log[k].fc != 65 && r.log[k].fc != (65 | 0x80))
			assert_int_equal(r.log[k].anomalies, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(libmodbus_client_through_decoder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
