/* sim/modbus_sim.c: the Modbus/TCP device simulator behind `bmsgate sim modbus`.
 *
 * Two serving loops over one libmodbus mapping, both answering through modbus_reply():
 *  - the default loop is libmodbus's own: select() over the clients, modbus_receive() frames
 *    a request the way libmodbus does, modbus_reply() answers. What tests and demos use.
 *  - --fast: epoll, frames by the MBAP length into a per-client buffer and answers every whole
 *    request it holds. modbus_receive() costs several recv() and a select() per request, which
 *    made the device the bottleneck of the gateway benchmark; this loop costs one read per batch.
 * A device is single-threaded: --slow-ms delays every reply and stalls every client, as a slow
 * PLC does.
 */
#include "base/clock.h"
#include "sim/modbus_sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS_CAP 1000
#define SELECT_CLIENTS_CAP (FD_SETSIZE - 16)
#define TICK_MS 100
/* MBAP: transaction id 2, protocol id 2, length 2 (unit id + PDU), unit id 1. */
#define MBAP_HEADER 7
#define MBAP_LEN_MAX 254 /* unit id + PDU of at most 253 bytes */
#define ADU_MAX (6 + MBAP_LEN_MAX)

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ---- the air-handler model ---- */

static uint16_t to_reg(double v)
{
	long r = lround(v);
	if (r < -32768)
		r = -32768;
	if (r > 32767)
		r = 32767;
	return (uint16_t)(int16_t)r;
}

void bms_sim_ahu_init(struct bms_sim_ahu *m, modbus_mapping_t *map)
{
	memset(m, 0, sizeof(*m));
	m->sat = 21.0;
	m->filter_pa = 120.0;
	map->tab_registers[BMS_SIM_HR_SAT_SETPOINT] = 180;
	map->tab_registers[BMS_SIM_HR_FAN_SPEED_SP] = 60;
	map->tab_registers[BMS_SIM_HR_DAMPER_MIN] = 20;
	map->tab_registers[BMS_SIM_HR_MODE] = 1;
	map->tab_input_registers[BMS_SIM_IR_RAT] = 220;
	map->tab_input_registers[BMS_SIM_IR_OAT] = 85;
	bms_sim_ahu_tick(m, map, 0);
}

/* First-order drift: supply air moves toward the setpoint (fan on) or the return air (fan off)
 * with a 20 s time constant; fan speed ramps at 20 %/s; the filter clogs slowly while running. */
void bms_sim_ahu_tick(struct bms_sim_ahu *m, modbus_mapping_t *map, double dt)
{
	if (dt < 0)
		dt = 0;
	if (dt > 10)
		dt = 10;
	bool fan = map->tab_bits[BMS_SIM_COIL_FAN_CMD] != 0;
	int mode = map->tab_registers[BMS_SIM_HR_MODE];
	double sp = (int16_t)map->tab_registers[BMS_SIM_HR_SAT_SETPOINT] / 10.0;
	double rat = (int16_t)map->tab_input_registers[BMS_SIM_IR_RAT] / 10.0;
	double spd = map->tab_registers[BMS_SIM_HR_FAN_SPEED_SP];
	if (spd > 100)
		spd = 100;
	double target = (fan && mode != 0) ? sp : rat;
	m->sat += (target - m->sat) * (1.0 - exp(-dt / 20.0));
	double want = fan ? spd : 0;
	double step = 20.0 * dt;
	if (m->fan_pct < want)
		m->fan_pct = fmin(want, m->fan_pct + step);
	else
		m->fan_pct = fmax(want, m->fan_pct - step);
	m->fan_on_s = fan ? m->fan_on_s + dt : 0;
	if (fan)
		m->filter_pa = fmin(400.0, m->filter_pa + 0.05 * dt);
	if (map->tab_bits[BMS_SIM_COIL_ALARM_RESET]) {
		map->tab_bits[BMS_SIM_COIL_ALARM_RESET] = 0;
		m->filter_pa = 120.0; /* "filter changed" */
	}
	map->tab_input_registers[BMS_SIM_IR_SAT] = to_reg(m->sat * 10.0);
	map->tab_input_registers[BMS_SIM_IR_FAN_SPEED] = to_reg(m->fan_pct);
	map->tab_input_registers[BMS_SIM_IR_FILTER_DP] = to_reg(m->filter_pa);
	/* float32 over two registers, high word first (the Modbus convention the policy reads). */
	float f = (float)m->sat;
	uint32_t bits;
	memcpy(&bits, &f, sizeof(bits));
	map->tab_input_registers[BMS_SIM_IR_SAT_FLOAT] = (uint16_t)(bits >> 16);
	map->tab_input_registers[BMS_SIM_IR_SAT_FLOAT + 1] = (uint16_t)bits;
	map->tab_input_bits[BMS_SIM_DI_FAN_STATUS] = m->fan_on_s >= 1.0;
	map->tab_input_bits[BMS_SIM_DI_FILTER_ALARM] = m->filter_pa > 250.0;
	map->tab_input_bits[BMS_SIM_DI_FREEZE_ALARM] = m->sat < 4.0;
}

/* ---- serving ---- */

struct sim {
	const struct bms_sim_opts *o;
	modbus_t *ctx;          /* owned */
	modbus_mapping_t *map;  /* owned */
	struct bms_sim_ahu ahu;
	double last_tick;
	int listen_fd;          /* owned */
	int nclients;
	unsigned long requests;
};

static double now_s(void)
{
	return (double)bms_mono_us() / 1e6;
}

static void model_step(struct sim *s)
{
	double t = now_s();
	if (s->o->model == BMS_SIM_MODEL_AHU)
		bms_sim_ahu_tick(&s->ahu, s->map, t - s->last_tick);
	s->last_tick = t;
}

static void slow_down(const struct sim *s)
{
	if (s->o->slow_ms <= 0)
		return;
	struct timespec ts = { s->o->slow_ms / 1000, (long)(s->o->slow_ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop_flag)
		;
}

static int write_ready(const struct sim *s, const char *addr, int port)
{
	printf("bmsgate sim modbus: listening on %s:%d (model %s%s)\n", addr, port,
	       s->o->model == BMS_SIM_MODEL_AHU ? "ahu" : "blank",
	       s->o->max_clients ? ", limited clients" : "");
	fflush(stdout);
	if (!s->o->ready_file)
		return 0;
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp", s->o->ready_file);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s:%d\n", addr, port);
	if (fclose(f) != 0 || rename(tmp, s->o->ready_file) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}

static int client_limit(const struct sim *s, int cap)
{
	int lim = s->o->max_clients > 0 ? s->o->max_clients : MAX_CLIENTS_CAP;
	return lim < cap ? lim : cap;
}

static int accept_one(struct sim *s, int cap)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* A device that is out of connections closes new ones, which is what the gateway must survive. */
	if (s->nclients >= client_limit(s, cap)) {
		if (s->o->verbose)
			fprintf(stderr, "sim: connection refused: %d clients already\n", s->nclients);
		close(fd);
		return -EMFILE;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->nclients++;
	return fd;
}

static int serve_select(struct sim *s)
{
	int clients[SELECT_CLIENTS_CAP];
	int n = 0;
	uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
	while (!stop_flag) {
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(s->listen_fd, &rd);
		int maxfd = s->listen_fd;
		for (int i = 0; i < n; i++) {
			FD_SET(clients[i], &rd);
			if (clients[i] > maxfd)
				maxfd = clients[i];
		}
		struct timeval tv = { 0, TICK_MS * 1000 };
		int r = select(maxfd + 1, &rd, NULL, NULL, &tv);
		model_step(s);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("sim: select");
			return -errno;
		}
		if (FD_ISSET(s->listen_fd, &rd)) {
			int fd = accept_one(s, SELECT_CLIENTS_CAP);
			if (fd >= 0 && fd >= FD_SETSIZE) {
				close(fd);
				s->nclients--;
			} else if (fd >= 0) {
				clients[n++] = fd;
			}
		}
		for (int i = 0; i < n; i++) {
			if (!FD_ISSET(clients[i], &rd))
				continue;
			modbus_set_socket(s->ctx, clients[i]);
			int len = modbus_receive(s->ctx, req);
			if (len > 0) {
				s->requests++;
				slow_down(s);
				model_step(s);
				if (modbus_reply(s->ctx, req, len, s->map) >= 0)
					continue;
			} else if (len == 0) {
				continue; /* not for this unit; nothing to answer */
			}
			if (s->o->verbose)
				fprintf(stderr, "sim: client closed (%s)\n", modbus_strerror(errno));
			close(clients[i]);
			clients[i] = clients[--n];
			s->nclients--;
			i--;
		}
	}
	for (int i = 0; i < n; i++)
		close(clients[i]);
	return 0;
}

/* --fast: per-client input buffer, framed by the MBAP length. */
struct fclient {
	int fd;
	size_t len;
	uint8_t buf[4 * ADU_MAX];
};

static void fclose_client(struct sim *s, int ep, struct fclient *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	s->nclients--;
}

/* Answers every whole request in c->buf; -1 closes the client (bad framing or send error). */
static int fast_drain(struct sim *s, struct fclient *c)
{
	size_t off = 0;
	while (c->len - off >= MBAP_HEADER) {
		const uint8_t *h = c->buf + off;
		uint16_t proto = (uint16_t)(h[2] << 8 | h[3]);
		uint16_t mlen = (uint16_t)(h[4] << 8 | h[5]);
		/* Modbus Messaging on TCP/IP 1.1b3, 3.1.3: protocol id 0; length counts unit id + PDU. */
		if (proto != 0 || mlen < 2 || mlen > MBAP_LEN_MAX)
			return -1;
		size_t adu = 6 + (size_t)mlen;
		if (c->len - off < adu)
			break;
		/* modbus_reply trusts the counts inside the PDU; a zero-padded full-size copy keeps
		 * every read it can make inside this array. */
		uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH + 8];
		memset(req, 0, sizeof(req));
		memcpy(req, h, adu);
		s->requests++;
		slow_down(s);
		modbus_set_socket(s->ctx, c->fd);
		if (modbus_reply(s->ctx, req, (int)adu, s->map) < 0)
			return -1;
		off += adu;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return 0;
}

static int serve_epoll(struct sim *s)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0) {
		close(ep);
		return -errno;
	}
	struct fclient **all = calloc(MAX_CLIENTS_CAP, sizeof(*all));
	if (!all) {
		close(ep);
		return -ENOMEM;
	}
	struct epoll_event evs[64];
	while (!stop_flag) {
		int n = epoll_wait(ep, evs, 64, TICK_MS);
		model_step(s);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("sim: epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++) {
			struct fclient *c = evs[i].data.ptr;
			if (!c) {
				int fd = accept_one(s, MAX_CLIENTS_CAP);
				if (fd < 0)
					continue;
				c = calloc(1, sizeof(*c));
				int slot = 0;
				while (slot < MAX_CLIENTS_CAP && all[slot])
					slot++;
				struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
				if (!c || slot == MAX_CLIENTS_CAP || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
					free(c);
					close(fd);
					s->nclients--;
					continue;
				}
				c->fd = fd;
				all[slot] = c;
				continue;
			}
			ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0 || (c->len += (size_t)r, fast_drain(s, c) < 0)) {
				for (int k = 0; k < MAX_CLIENTS_CAP; k++)
					if (all[k] == c)
						all[k] = NULL;
				fclose_client(s, ep, c);
			}
		}
	}
	for (int k = 0; k < MAX_CLIENTS_CAP; k++)
		if (all[k])
			fclose_client(s, ep, all[k]);
	free(all);
	close(ep);
	return 0;
}

int bms_sim_modbus_run(const struct bms_sim_opts *o)
{
	struct sim s;
	int rc = -1;
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.listen_fd = -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: select/epoll_wait return EINTR and the loop ends */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	s.ctx = modbus_new_tcp(o->addr, o->port);
	s.map = modbus_mapping_new(BMS_SIM_TABLE_SIZE, BMS_SIM_TABLE_SIZE, BMS_SIM_TABLE_SIZE,
				   BMS_SIM_TABLE_SIZE);
	if (!s.ctx || !s.map) {
		fprintf(stderr, "bmsgate sim modbus: %s\n", modbus_strerror(errno));
		goto fail;
	}
	/* A client that stops mid-frame must not hold the single-threaded device forever. */
	modbus_set_indication_timeout(s.ctx, 2, 0);
	if (o->model == BMS_SIM_MODEL_AHU)
		bms_sim_ahu_init(&s.ahu, s.map);
	s.last_tick = now_s();
	s.listen_fd = modbus_tcp_listen(s.ctx, 128);
	if (s.listen_fd < 0) {
		fprintf(stderr, "bmsgate sim modbus: cannot listen on %s:%d: %s\n", o->addr, o->port,
			modbus_strerror(errno));
		goto fail;
	}
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	if (getsockname(s.listen_fd, (struct sockaddr *)&sin, &sl) < 0) {
		perror("bmsgate sim modbus: getsockname");
		goto fail;
	}
	char abuf[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sin.sin_addr, abuf, sizeof(abuf));
	int e = write_ready(&s, abuf, ntohs(sin.sin_port));
	if (e < 0) {
		fprintf(stderr, "bmsgate sim modbus: cannot write ready file %s: %s\n", o->ready_file,
			strerror(-e));
		goto fail;
	}
	rc = o->fast ? serve_epoll(&s) : serve_select(&s);
	if (o->verbose)
		fprintf(stderr, "bmsgate sim modbus: stopped after %lu requests\n", s.requests);
fail:
	if (s.listen_fd >= 0)
		close(s.listen_fd);
	if (s.map)
		modbus_mapping_free(s.map);
	if (s.ctx) {
		modbus_set_socket(s.ctx, -1);
		modbus_free(s.ctx);
	}
	return rc;
}
