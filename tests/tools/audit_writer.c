/* tests/tools/audit_writer.c: a real audit writer for tests (crash test, tail,
 * disk full, query fixtures): drives audit/audit.h exactly as the gateway
 * does, with synthetic but realistic events.
 *
 *   audit_writer LOG --key KEY [--node N] [--count N] [--sync always|MS]
 *                [--inflight K] [--rotate-bytes B] [--rotate-seconds S]
 *                [--checkpoint-every N] [--checkpoint-seconds S] [--copy FILE]
 *                [--time-start RFC3339] [--time-step-us U] [--seed S]
 *                [--fail-open] [--queue-limit N] [--fsize-limit BYTES]
 *                [--raise-limit-after-fail] [--print-durable] [--no-lifecycle] [--flush]
 *
 * --flush queues each round's records with audit_queue() and has them written
 * with one audit_flush() before it waits, as the guard's event loop does (with
 * an interval that is a write by this thread whenever the writer thread sleeps).
 *
 * --count 0 writes until killed. --print-durable prints "durable SEQ" after each
 * wait, so a test knows which records were acknowledged before it killed us.
 * Exit: 0 done, 3 the log failed (fail closed), 2 usage / open error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "audit/audit.h"
#include "audit/audit_int.h"

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	/* xorshift64: reproducible from --seed */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char *const subjects[] = { "CN=head-end-1,O=Site North", "CN=scada-2,O=Site North",
					"CN=contractor laptop,O=HVAC Services" };
static const char *const roles[] = { "operator", "engineer", "viewer" };
static const char *const devices[] = { "ahu1", "vav-3", "door-1", "meter-main" };

static void make_identity(struct bms_identity *id, unsigned who)
{
	memset(id, 0, sizeof(*id));
	struct sockaddr_in *sin = (struct sockaddr_in *)&id->addr;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)(40000 + who));
	sin->sin_addr.s_addr = htonl(0x0a000001u + who);
	id->addr_len = sizeof(*sin);
	if (who < 3) {
		id->authenticated = true;
		snprintf(id->subject, sizeof(id->subject), "%s", subjects[who]);
		snprintf(id->role, sizeof(id->role), "%s", roles[who]);
		id->has_fingerprint = true;
		for (int i = 0; i < 32; i++)
			id->fingerprint[i] = (uint8_t)(who * 31 + i);
	}
}

int main(int argc, char **argv)
{
	struct audit_config cfg = { .node = "gw-test", .sync_always = 1 };
	long long count = 100;
	unsigned inflight = 1;
	int64_t tstart = 0, tstep = 0;
	bool print_durable = false, raise_after_fail = false, lifecycle = true, flush = false;
	long long fsize_limit = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
		if (ARG("--key"))
			cfg.key_path = v;
		else if (ARG("--node"))
			cfg.node = v;
		else if (ARG("--count"))
			count = atoll(v);
		else if (ARG("--sync")) {
			if (strcmp(v, "always") == 0) {
				cfg.sync_always = 1;
			} else {
				cfg.sync_always = 0;
				cfg.sync_interval_ms = (unsigned)atoi(v);
			}
		} else if (ARG("--inflight"))
			inflight = (unsigned)atoi(v);
		else if (ARG("--rotate-bytes"))
			cfg.rotate_bytes = (uint64_t)atoll(v);
		else if (ARG("--rotate-seconds"))
			cfg.rotate_seconds = (unsigned)atoi(v);
		else if (ARG("--checkpoint-every"))
			cfg.checkpoint_every_records = (unsigned)atoi(v);
		else if (ARG("--checkpoint-seconds"))
			cfg.checkpoint_every_seconds = (unsigned)atoi(v);
		else if (ARG("--copy"))
			cfg.checkpoint_copy_path = v;
		else if (ARG("--queue-limit"))
			cfg.queue_limit = (size_t)atoll(v);
		else if (ARG("--seed"))
			rng_state = (uint64_t)atoll(v) * 2654435761u + 1;
		else if (ARG("--time-start")) {
			if (audit_parse_time(v, &tstart) < 0) {
				fprintf(stderr, "bad --time-start\n");
				return 2;
			}
		} else if (ARG("--time-step-us"))
			tstep = atoll(v);
		else if (ARG("--fsize-limit"))
			fsize_limit = atoll(v);
		else if (strcmp(a, "--fail-open") == 0)
			cfg.fail_open = 1;
		else if (strcmp(a, "--print-durable") == 0)
			print_durable = true;
		else if (strcmp(a, "--raise-limit-after-fail") == 0)
			raise_after_fail = true;
		else if (strcmp(a, "--flush") == 0)
			flush = true;
		else if (strcmp(a, "--no-lifecycle") == 0)
			lifecycle = false;
		else if (a[0] != '-' && !cfg.path)
			cfg.path = a;
		else {
			fprintf(stderr, "audit_writer: bad argument '%s'\n", a);
			return 2;
		}
#undef ARG
	}
	if (!cfg.path || !cfg.key_path || inflight == 0) {
		fprintf(stderr, "usage: audit_writer LOG --key KEY [options]: see the comment in tests/tools/audit_writer.c\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* what a gateway must do too: an over-limit write must fail, not kill */
	signal(SIGXFSZ, SIG_IGN);
	struct audit_log *log;
	int r = audit_open(&cfg, &log);
	if (r < 0) {
		fprintf(stderr, "audit_writer: cannot open %s: %s\n", cfg.path, strerror(-r));
		return 2;
	}
	if (fsize_limit > 0) {
		struct rlimit rl;
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = (rlim_t)fsize_limit;
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
			perror("setrlimit");
			return 2;
		}
	}
	int status = 0;
	uint64_t t;
	int64_t now_sim = tstart;
	uint64_t *tickets = calloc(inflight, sizeof(*tickets));
	uint64_t last_ok = 0, unaudited = 0;
	bool open_failing = false;
	if (!tickets)
		return 2;
	if (lifecycle) {
		struct audit_event ev = { .kind = AUDIT_START, .detail = "audit_writer test driver", .time_us = now_sim };
		struct audit_event pol = { .kind = AUDIT_POLICY_LOADED, .detail = "/etc/bmsgate/site.policy",
					   .hash = "9f2c1e0b7a4d3c2b1a09f8e7d6c5b4a39f2c1e0b7a4d3c2b1a09f8e7d6c5b4a3",
					   .time_us = now_sim };
		if (audit_submit(log, &ev, &t) < 0 || audit_submit(log, &pol, &t) < 0)
			status = 3;
	}
	for (long long i = 0; status == 0 && (count == 0 || i < count);) {
		unsigned k = 0;
		for (; k < inflight && (count == 0 || i < count); k++, i++) {
			struct bms_identity id;
			struct bms_request req;
			struct bms_decision d;
			uint8_t data[8];
			unsigned who = (unsigned)(rnd() % 4);
			make_identity(&id, who);
			memset(&req, 0, sizeof(req));
			memset(&d, 0, sizeof(d));
			const char *device = devices[rnd() % 4];
			bool bacnet = strcmp(device, "door-1") == 0;
			req.proto = bacnet ? BMS_PROTO_BACNET : BMS_PROTO_MODBUS;
			req.op = rnd() % 3 == 0 ? BMS_OP_WRITE : BMS_OP_READ;
			req.ntargets = 1;
			struct bms_target *tg = &req.targets[0];
			if (bacnet) {
				req.raw.bacnet.has_service = 1;
				req.raw.bacnet.service = req.op == BMS_OP_WRITE ? 15 : 12;
				tg->space = BMS_SPACE_BACNET_OBJECT;
				tg->object_type = 4;
				tg->instance = (uint32_t)(rnd() % 8);
				tg->property = 85;
				tg->array_index = BMS_NO_INDEX;
				if (req.op == BMS_OP_WRITE) {
					tg->priority = 8;
					tg->has_value = true;
					tg->value.type = BMS_VAL_ENUM;
					tg->value.u = rnd() % 2;
				}
			} else {
				req.unit = 1;
				tg->space = BMS_SPACE_HOLDING_REGISTER;
				tg->start = (uint32_t)(rnd() % 200);
				if (req.op == BMS_OP_WRITE) {
					req.raw.modbus.fc = 16;
					tg->count = 2;
					for (int b = 0; b < 4; b++)
						data[b] = (uint8_t)rnd();
					tg->data = data;
					tg->data_len = 4;
				} else {
					req.raw.modbus.fc = 3;
					tg->count = (uint32_t)(1 + rnd() % 10);
				}
			}
			unsigned roll = (unsigned)(rnd() % 20);
			struct audit_event ev = { .peer = &id, .req = &req, .device = device, .time_us = now_sim,
						  .latency_us = 5 + rnd() % 40 };
			if (roll == 0) {
				ev.kind = AUDIT_MALFORMED;
				ev.detail = "length field disagrees with the function code";
				ev.result = AUDIT_RESULT_NOT_FORWARDED;
			} else {
				ev.kind = AUDIT_DECISION;
				ev.decision = &d;
				d.rule_file = "site.policy";
				if (who == 2 && req.op == BMS_OP_WRITE) {
					d.verdict = BMS_VERDICT_DENY;
					d.rule_line = 40;
					snprintf(d.reason, sizeof(d.reason), "role viewer may not write %s", device);
				} else if (roll == 1) {
					d.verdict = BMS_VERDICT_MONITOR_DENY;
					d.rule_line = 33;
					snprintf(d.reason, sizeof(d.reason), "outside hours 06:00-20:00 (monitor mode)");
				} else {
					d.verdict = BMS_VERDICT_ALLOW;
					d.rule_line = 12 + (unsigned)(rnd() % 5);
					snprintf(d.reason, sizeof(d.reason), "allowed by rule");
				}
				ev.result = d.verdict == BMS_VERDICT_DENY ? AUDIT_RESULT_NOT_FORWARDED : AUDIT_RESULT_PENDING;
			}
			r = flush ? audit_queue(log, &ev, &tickets[k]) : audit_submit(log, &ev, &tickets[k]);
			if (r == -EAGAIN && cfg.fail_open && open_failing) {
				/* fail = open: the gateway forwards it unaudited; the log counts it */
				unaudited++;
				tickets[k] = k ? tickets[k - 1] : last_ok;
				continue;
			}
			if (r < 0) {
				fprintf(stderr, "audit_writer: submit: %s\n", strerror(-r));
				status = 3;
				break;
			}
			last_ok = tickets[k];
			if (ev.result == AUDIT_RESULT_PENDING && rnd() % 2 == 0) {
				/* the device answered: the result record refers to the decision */
				struct audit_event res = { .kind = AUDIT_RESULT, .ref = tickets[k], .time_us = now_sim,
							   .latency_us = 800 + rnd() % 4000 };
				res.result = rnd() % 10 == 0 ? AUDIT_RESULT_EXCEPTION : AUDIT_RESULT_OK;
				res.exception = res.result == AUDIT_RESULT_EXCEPTION ? 2 : 0;
				uint64_t rt;
				r = flush ? audit_queue(log, &res, &rt) : audit_submit(log, &res, &rt);
				if (r == -EAGAIN && cfg.fail_open && open_failing) {
					unaudited++;
				} else if (r < 0) {
					status = 3;
					break;
				}
			}
			if (tstart)
				now_sim += tstep;
		}
		if (status || k == 0)
			break;
		if (flush)
			(void)audit_flush(log); /* a failure shows in audit_wait, as the writer thread's does */
		if (open_failing)
			continue; /* fail = open: nothing waits for the log */
		r = audit_wait(log, tickets[k - 1]);
		if (r < 0 && cfg.fail_open) {
			printf("failing %s: forwarding unaudited (fail = open)\n", strerror(-r));
			open_failing = true;
			continue;
		}
		if (r < 0) {
			printf("failing %s\n", strerror(-r));
			if (!raise_after_fail) {
				status = 3;
				break;
			}
			struct rlimit rl;
			getrlimit(RLIMIT_FSIZE, &rl);
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
				status = 3;
				break;
			}
			/* the writer retries on its own; the queued records must now become durable */
			int failing = 1;
			for (int tries = 0; tries < 100; tries++) {
				uint64_t d = audit_durable(log, &failing);
				if (d > tickets[k - 1] && !failing)
					break;
				usleep(50 * 1000);
			}
			if (failing || audit_durable(log, NULL) <= tickets[k - 1]) {
				printf("not recovered\n");
				status = 3;
				break;
			}
			printf("recovered\n");
			raise_after_fail = false;
		}
		if (print_durable)
			printf("durable %llu\n", (unsigned long long)tickets[k - 1]);
	}
	if (open_failing && status == 0) {
		printf("unaudited %llu\n", (unsigned long long)unaudited);
		if (raise_after_fail) {
			struct rlimit rl;
			getrlimit(RLIMIT_FSIZE, &rl);
			rl.rlim_cur = rl.rlim_max;
			int failing = 1;
			for (int tries = 0; setrlimit(RLIMIT_FSIZE, &rl) == 0 && tries < 100; tries++) {
				if (audit_durable(log, &failing) > last_ok && !failing)
					break;
				usleep(50 * 1000);
			}
			if (failing) {
				printf("not recovered\n");
				status = 3;
			} else {
				printf("recovered\n");
			}
		}
	}
	if (lifecycle && status == 0) {
		struct audit_event ev = { .kind = AUDIT_STOP, .detail = "done", .time_us = now_sim };
		if (audit_submit(log, &ev, &t) < 0)
			status = 3;
	}
	free(tickets);
	r = audit_close(log);
	if (r < 0 && status == 0) {
		fprintf(stderr, "audit_writer: close: %s\n", strerror(-r));
		status = 3;
	}
	return status;
}
