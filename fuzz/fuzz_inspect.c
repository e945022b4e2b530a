/* fuzz/fuzz_inspect.c: the gateway's inspect step (proxy_inspect) over an arbitrary
 * client stream, with a small compiled policy and a guard configuration, once with
 * `malformed close` and once with `malformed exception`. The stream is consumed
 * verdict by verdict, as the guard does, and each verdict is checked:
 *   - progress: a verdict that is not NEED_MORE/CLOSE consumes at least one byte,
 *     NEED_MORE asks for more than is there; nothing consumes past the end;
 *   - ANSWER is a 9-byte Modbus exception carrying the request's tid and unit;
 *   - FORWARD only a frame that modbus_frame cuts at exactly `consumed` bytes and
 *     that modbus_decode calls OK (nothing is forwarded that was not decoded). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/inspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy_text[] = "device ahu modbus 127.0.0.1 port 5020 unit 1 {\n"
				  "  point sp holding 100 scale 0.1 unit degC range 15..30\n"
				  "  point fan coil 10\n"
				  "}\n"
				  "device trial modbus 127.0.0.1 port 5021 unit 2 mode monitor\n"
				  "role operators {\n"
				  "  certificate-role operator\n"
				  "}\n"
				  "allow operators read ahu\n"
				  "allow operators write ahu.sp\n"
				  "allow operators write ahu.fan\n"
				  "allow operators read trial\n";

static const char conf_close[] = "listen tls 127.0.0.1:8802\n"
				 "certificate g.crt\nkey g.key\nca ca.crt\n"
				 "policy site.policy\n"
				 "device ahu {\n address 127.0.0.1:5020\n units 1\n}\n"
				 "device trial {\n address 127.0.0.1:5021\n units 2\n}\n"
				 "audit {\n file a.jsonl\n key a.key\n}\n"
				 "malformed close\n";
/* the same with a smaller frame limit and exception answers for malformed frames */
static const char conf_exception[] = "listen tls 127.0.0.1:8802\n"
				     "certificate g.crt\nkey g.key\nca ca.crt\n"
				     "policy site.policy\n"
				     "device ahu {\n address 127.0.0.1:5020\n units 1\n}\n"
				     "device trial {\n address 127.0.0.1:5021\n units 2\n}\n"
				     "audit {\n file a.jsonl\n key a.key\n}\n"
				     "malformed exception\n"
				     "limits {\n frame-size 64\n}\n";

static struct bms_policy *policy;
static struct bms_policy_state *pstate;
static struct proxy_config cfgs[2];
static struct bms_identity who;

static void init(void)
{
	struct bms_diag d;
	bms_diag_init(&d);
	if (bms_policy_load_string("site.policy", policy_text, strlen(policy_text), &policy, &d) < 0) {
		bms_diag_print(&d, stderr);
		abort();
	}
	bms_diag_free(&d);
	if (proxy_config_parse("close.conf", conf_close, PROXY_GUARD, &cfgs[0], stderr) < 0 ||
	    proxy_config_parse("exception.conf", conf_exception, PROXY_GUARD, &cfgs[1], stderr) < 0)
		abort();
	pstate = bms_policy_state_new(64);
	if (!pstate)
		abort();
	who.authenticated = true;
	snprintf(who.subject, sizeof(who.subject), "CN=fuzz");
	snprintf(who.role, sizeof(who.role), "operator");
}

static void check_answer(const struct proxy_verdict *v, const uint8_t *frame)
{
	const uint8_t *a = v->answer;
	if (v->answer_len != 9 || v->consumed < 8)
		abort();
	/* MBAP tid echoed, protocol 0, length 3 (unit + fc + code), unit echoed, fc | 0x80 */
	if (a[0] != frame[0] || a[1] != frame[1] || a[2] != 0 || a[3] != 0 || a[4] != 0 || a[5] != 3 ||
	    a[6] != frame[6] || a[7] != ((frame[7] & 0x7f) | 0x80))
		abort();
	if (a[8] != PROXY_EXC_ILLEGAL_FUNCTION && a[8] != PROXY_EXC_ILLEGAL_DATA_VALUE &&
	    a[8] != PROXY_EXC_PATH_UNAVAILABLE)
		abort();
}

static void check_forward(const struct proxy_verdict *v, const struct proxy_config *cfg, const uint8_t *frame,
			  size_t len)
{
	size_t flen = 0;
	uint64_t anomalies = 0;
	struct bms_request req;
	if (v->consumed == 0 || !v->device || !v->audit)
		abort();
	if (v->device < cfg->devices || v->device >= cfg->devices + cfg->ndevices)
		abort();
	if (modbus_frame(frame, len, &flen, &anomalies) != BMS_OK || flen != v->consumed)
		abort();
	if (flen > cfg->limits.frame_size)
		abort();
	if (modbus_decode(frame, flen, BMS_DIR_REQUEST, &req) != BMS_OK)
		abort();
	if (v->decision.verdict != BMS_VERDICT_ALLOW && v->decision.verdict != BMS_VERDICT_MONITOR_DENY)
		abort();
}

static void run(const struct proxy_config *cfg, const uint8_t *data, size_t size)
{
	static struct proxy_verdict v;
	struct proxy_inspect_ctx ctx = {
		.cfg = cfg, .policy = policy, .state = pstate, .who = &who, .now_us = 1768392000000000LL,
	};
	size_t off = 0;
	while (off < size) {
		const uint8_t *b = data + off;
		size_t len = size - off;
		proxy_inspect(&ctx, b, len, &v);
		if (v.consumed > len)
			abort();
		switch (v.action) {
		case PROXY_NEED_MORE:
			if (v.consumed != 0 || v.need <= len || v.audit)
				abort();
			return;
		case PROXY_CLOSE:
			if (!v.audit)
				abort(); /* every malformed frame is audited */
			return;
		case PROXY_ANSWER:
			check_answer(&v, b);
			if (!v.audit || v.device)
				abort();
			break;
		case PROXY_FORWARD:
			check_forward(&v, cfg, b, len);
			break;
		default:
			abort();
		}
		off += v.consumed;
		ctx.now_us += 1000;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!policy)
		init();
	run(&cfgs[0], data, size);
	run(&cfgs[1], data, size);
	return 0;
}
