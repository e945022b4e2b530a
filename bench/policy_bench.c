/* bench/policy_bench.c: median time of one policy decision on a generated
 * policy of 1,000 rules over 200 devices, next to the time modbus_decode takes
 * on the same frame, measured in the same run. Run pinned: bench/bench_policy.
 *
 * Method: the frame is a real Modbus/TCP ADU (FC 6, write one register, or
 * FC 16 for the two-register float), decoded by the real decoder; the decision
 * is taken on that decoded request. Each figure is the median over 2,000
 * batches of 1,000 calls (a batch is timed with CLOCK_MONOTONIC and divided). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load/policy_files.h"
#include "parsers/modbus.h"
#include "policies/policy.h"

#define NDEV 200
#define NROLES 10
#define BATCH 1000
#define NBATCH 2000

static volatile unsigned sink;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return v[n / 2];
}

/* 200 devices x 5 points; 5 rules per device (1,000) and a few site-wide ones in front. */
static char *make_policy(size_t *len)
{
	size_t cap = 1 << 20, off = 0;
	char *s = malloc(cap);
	if (s == NULL)
		return NULL;
#define P(...) (off += (size_t)snprintf(s + off, cap - off, __VA_ARGS__))
	P("site \"bench\"\ntimezone Europe/Berlin\nschedule office mon-fri 07:00-19:00\n");
	for (int r = 0; r < NROLES; r++)
		P("role role%d {\n  certificate-role role%d\n  subject \"CN=console-%d,O=Bench\"\n}\n", r, r, r);
	for (int d = 0; d < NDEV; d++) {
		P("device dev%d modbus 10.1.%d.%d unit 1 {\n", d, d / 250, d % 250 + 1);
		P("  point sp holding 100 int16 scale 0.1 unit degC range 15..30\n");
		P("  point fan holding 101 uint16 unit %% range 0..100\n");
		P("  point flow holding 102 float32 unit m3/h range 0..500\n");
		P("  point valve holding 104 uint16 unit %% range 0..100\n");
		P("  point enable coil 5\n");
		P("}\n");
	}
	P("deny anyone management\ndeny anyone file\n");
	for (int d = 0; d < NDEV; d++) {
		P("deny role%d write dev%d.enable\n", d % NROLES, d);
		P("allow role%d write dev%d.valve during office\n", (d + 1) % NROLES, d);
		P("allow role%d write dev%d.fan value 20..100\n", (d + 2) % NROLES, d);
		P("allow role%d read dev%d\n", (d + 3) % NROLES, d);
		P("allow role%d write dev%d.sp value 18..26\n", (d + 4) % NROLES, d);
	}
	*len = off;
	return s;
#undef P
}

static size_t fc6(uint8_t *b, uint16_t addr, uint16_t value)
{
	uint8_t f[12] = { 0x12, 0x34, 0, 0, 0, 6, 1, 6, (uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(value >> 8),
			  (uint8_t)value };
	memcpy(b, f, sizeof(f));
	return sizeof(f);
}

struct run {
	const char *what;
	double decide_ns, resolved_ns, decode_ns;
};

static int measure(const struct bms_policy *p, struct bms_policy_state *st, const struct bms_identity *who,
		   const uint8_t *adu, size_t len, const char *dev, uint8_t want, struct run *out)
{
	static double samples[NBATCH];
	struct bms_request req;
	if (modbus_decode(adu, len, BMS_DIR_REQUEST, &req) != BMS_OK) {
		fprintf(stderr, "bench: modbus_decode did not decode the frame\n");
		return -1;
	}
	const struct bms_policy_device *d = bms_policy_find_device_by_name(p, dev);
	struct bms_decision dec;
	bms_policy_decide(p, st, who, d, &req, 1768392000000000LL, &dec);
	if (dec.verdict != want) {
		fprintf(stderr, "bench: %s: expected verdict %s, got %s (%s)\n", out->what,
			bms_verdict_name((enum bms_verdict)want), bms_verdict_name((enum bms_verdict)dec.verdict),
			dec.reason);
		return -1;
	}
	/* Warm up, then time decode and decide in alternating batches so that both see the same machine. */
	double *dec_s = malloc(NBATCH * sizeof(double)), *res_s = malloc(NBATCH * sizeof(double));
	if (dec_s == NULL || res_s == NULL)
		return -1;
	struct bms_policy_roles roles;
	bms_policy_resolve(p, who, &roles);
	for (int b = 0; b < NBATCH; b++) {
		int64_t t0 = now_ns();
		for (int i = 0; i < BATCH; i++) {
			struct bms_request r2;
			sink += (unsigned)modbus_decode(adu, len, BMS_DIR_REQUEST, &r2);
			sink += r2.op;
		}
		int64_t t1 = now_ns();
		for (int i = 0; i < BATCH; i++) {
			bms_policy_decide(p, st, who, d, &req, 1768392000000000LL + i, &dec);
			sink += dec.verdict;
		}
		int64_t t2 = now_ns();
		for (int i = 0; i < BATCH; i++) {
			bms_policy_decide_resolved(p, st, who, &roles, d, &req, 1768392000000000LL + i, &dec);
			sink += dec.verdict;
		}
		int64_t t3 = now_ns();
		dec_s[b] = (double)(t1 - t0) / BATCH;
		samples[b] = (double)(t2 - t1) / BATCH;
		res_s[b] = (double)(t3 - t2) / BATCH;
	}
	out->decode_ns = median(dec_s, NBATCH);
	out->decide_ns = median(samples, NBATCH);
	out->resolved_ns = median(res_s, NBATCH);
	free(dec_s);
	free(res_s);
	return 0;
}

/* bms_policy_find_device, which the gateway calls per request before deciding. */
static double measure_find(const struct bms_policy *p)
{
	static double samples[NBATCH];
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(502);
	inet_pton(AF_INET, "10.1.0.200", &a.sin_addr); /* dev199, the last one declared */
	const struct bms_policy_device *want = bms_policy_find_device_by_name(p, "dev199");
	if (bms_policy_find_device(p, BMS_PROTO_MODBUS, (struct sockaddr *)&a, 1) != want)
		return -1;
	for (int b = 0; b < NBATCH; b++) {
		int64_t t0 = now_ns();
		for (int i = 0; i < BATCH; i++)
			sink += bms_policy_find_device(p, BMS_PROTO_MODBUS, (struct sockaddr *)&a, 1) == want;
		samples[b] = (double)(now_ns() - t0) / BATCH;
	}
	return median(samples, NBATCH);
}

int main(void)
{
	size_t len;
	char *text = make_policy(&len);
	struct bms_diag dg;
	bms_diag_init(&dg);
	struct bms_policy *p = NULL;
	int64_t c0 = now_ns();
	if (text == NULL || bms_policy_load_string("bench.policy", text, len, &p, &dg) < 0) {
		bms_diag_print(&dg, stderr);
		return 1;
	}
	int64_t c1 = now_ns();
	struct bms_policy_state *st = bms_policy_state_new(0);
	struct bms_identity who;
	memset(&who, 0, sizeof(who));
	who.authenticated = true;
	/* dev199.sp is written by role (199+4)%10 = 3; reads of dev199 by role 2. */
	snprintf(who.role, sizeof(who.role), "role3");
	snprintf(who.subject, sizeof(who.subject), "CN=console-3,O=Bench");
	uint8_t adu[16];
	struct run runs[3] = { { "allow: write dev199.sp 24.5 (FC 6)", 0, 0, 0 },
			       { "deny:  write dev199.sp 45.0 (out of range, reason worded)", 0, 0, 0 },
			       { "deny:  write dev199.fan 50 (no rule for this role)", 0, 0, 0 } };
	size_t n = fc6(adu, 100, 245);
	if (measure(p, st, &who, adu, n, "dev199", BMS_VERDICT_ALLOW, &runs[0]) < 0)
		return 1;
	n = fc6(adu, 100, 450);
	if (measure(p, st, &who, adu, n, "dev199", BMS_VERDICT_DENY, &runs[1]) < 0)
		return 1;
	n = fc6(adu, 101, 50);
	if (measure(p, st, &who, adu, n, "dev199", BMS_VERDICT_DENY, &runs[2]) < 0)
		return 1;
	double find_ns = measure_find(p);
	if (find_ns < 0) {
		fprintf(stderr, "bench: bms_policy_find_device did not find dev199\n");
		return 1;
	}
	printf("policy: %zu rules over %zu devices, %d roles; compiled in %.1f ms; "
	       "bms_policy_find_device %.1f ns\n", bms_policy_rule_count(p),
	       bms_policy_device_count(p), NROLES, (double)(c1 - c0) / 1e6, find_ns);
	printf("%-58s %9s %6s %12s %6s %9s\n", "request", "decide ns", "ratio", "resolved ns", "ratio",
	       "decode ns");
	for (int i = 0; i < 3; i++)
		printf("%-58s %9.1f %6.2f %12.1f %6.2f %9.1f\n", runs[i].what, runs[i].decide_ns,
		       runs[i].decide_ns / runs[i].decode_ns, runs[i].resolved_ns, runs[i].resolved_ns / runs[i].decode_ns,
		       runs[i].decode_ns);
	printf("decide: bms_policy_decide (identity matched against every role member on each call)\n"
	       "resolved: bms_policy_decide_resolved (identity resolved once per connection)\n"
	       "decode: modbus_decode on the same ADU in the same run; ratio = decision / decode;\n"
	       "each figure the median of %d batches of %d calls\n", NBATCH, BATCH);
	bms_policy_state_free(st);
	bms_policy_free(p);
	bms_diag_free(&dg);
	free(text);
	return 0;
}
