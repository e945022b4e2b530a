/* fuzz/fuzz_inspect.c: the gateway's inspect step (engine_inspect) over an arbitrary client
 * input, both protocols, with a small compiled policy and the route table of a guard
 * configuration, once with `malformed close` and once with `malformed exception`.
 * The first byte selects: bit 0 the protocol (0 Modbus/TCP, 1 BACnet/IP), bit 1 for BACnet
 * whether the rest is one datagram (as UDP delivers it) or a stream of BVLC messages.
 * The input is consumed verdict by verdict, as the guard does, and each verdict is checked:
 *   - progress: a verdict that is not NEED_MORE/CLOSE consumes at least one byte,
 *     NEED_MORE asks for more than is there; nothing consumes past the end;
 *   - every verdict but NEED_MORE is audited;
 *   - Modbus: ANSWER is a 9-byte exception carrying the request's tid and unit; FORWARD only a
 *     frame that modbus_frame cuts at exactly `consumed` bytes and modbus_decode calls OK;
 *   - BACnet: ANSWER is an Error, Reject or Abort for the request's invoke id that decodes;
 *     FORWARD only a datagram that bacnet_decode calls OK, an unsegmented request in an
 *     NPDU-carrying BVLC function, to the BACnet route; DROP sends nothing.
 * Nothing is forwarded that was not decoded, and no decision but allow forwards. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/policy_files.h"
#include "engine/inspect.h"
#include "parsers/bacnet.h"
#include "proxy/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

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
				  "allow operators read trial\n"
				  "device vav bacnet 127.0.0.1:47808 instance 7 {\n"
				  "  point sp analog-value 1\n"
				  "}\n"
				  "allow operators read vav\n"
				  "allow operators write vav.sp\n"
				  "allow operators discovery vav\n";

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
static struct engine_routes routes[2]; /* each config's, plus a BACnet route for vav */
static struct sockaddr_in bn_dst;
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
	for (int i = 0; i < 2; i++) {
		proxy_config_routes(&cfgs[i], &routes[i]);
		struct engine_route *r = engine_routes_add(&routes[i], BMS_PROTO_BACNET);
		if (!r)
			abort();
		snprintf(r->name, sizeof(r->name), "vav");
		struct sockaddr_in *a = (struct sockaddr_in *)&r->addr;
		a->sin_family = AF_INET;
		a->sin_port = htons(47808);
		a->sin_addr.s_addr = htonl(0x7f000001);
		r->addr_len = sizeof(*a);
		engine_routes_index(&routes[i]);
		bn_dst = *a;
	}
	pstate = bms_policy_state_new(64);
	if (!pstate)
		abort();
	who.authenticated = true;
	snprintf(who.subject, sizeof(who.subject), "CN=fuzz");
	snprintf(who.role, sizeof(who.role), "operator");
}

static void check_answer(const struct engine_verdict *v, const uint8_t *frame)
{
	const uint8_t *a = v->answer;
	if (v->answer_len != 9 || v->consumed < 8)
		abort();
	/* MBAP tid echoed, protocol 0, length 3 (unit + fc + code), unit echoed, fc | 0x80 */
	if (a[0] != frame[0] || a[1] != frame[1] || a[2] != 0 || a[3] != 0 || a[4] != 0 || a[5] != 3 ||
	    a[6] != frame[6] || a[7] != ((frame[7] & 0x7f) | 0x80))
		abort();
	if (a[8] != ENGINE_EXC_ILLEGAL_FUNCTION && a[8] != ENGINE_EXC_ILLEGAL_DATA_VALUE &&
	    a[8] != ENGINE_EXC_PATH_UNAVAILABLE)
		abort();
}


static void check_forward(const struct engine_verdict *v, const struct engine_routes *rt, const uint8_t *frame,
			  size_t len)
{
	size_t flen = 0;
	uint64_t anomalies = 0;
	static struct bms_request req;
	if (v->consumed == 0 || !v->route || !v->audit)
		abort();
	if (v->route < rt->routes || v->route >= rt->routes + rt->n || v->route->proto != BMS_PROTO_MODBUS)
		abort();
	if (modbus_frame(frame, len, &flen, &anomalies) != BMS_OK || flen != v->consumed)
		abort();
	if (flen > rt->modbus_frame_size)
		abort();
	if (modbus_decode(frame, flen, BMS_DIR_REQUEST, &req) != BMS_OK)
		abort();
	if (v->decision.verdict != BMS_VERDICT_ALLOW && v->decision.verdict != BMS_VERDICT_MONITOR_DENY)
		abort();
}

static void run_modbus(const struct engine_routes *rt, const uint8_t *data, size_t size)
{
	static struct engine_verdict v;
	struct engine_ctx ctx = {
		.routes = rt, .policy = policy, .state = pstate, .who = &who, .now_us = 1768392000000000LL,
	};
	size_t off = 0;
	while (off < size) {
		const uint8_t *b = data + off;
		size_t len = size - off;
		struct engine_input in = { .proto = BMS_PROTO_MODBUS, .bytes = b, .len = len };
		engine_inspect(&ctx, &in, &v);
		if (v.consumed > len)
			abort();
		switch (v.action) {
		case ENGINE_NEED_MORE:
			if (v.consumed != 0 || v.need <= len || v.audit)
				abort();
			return;
		case ENGINE_CLOSE:
			if (!v.audit)
				abort(); /* every malformed frame is audited */
			return;
		case ENGINE_ANSWER:
			check_answer(&v, b);
			if (!v.audit || v.route)
				abort();
			break;
		case ENGINE_FORWARD:
			check_forward(&v, rt, b, len);
			break;
		default:
			abort(); /* Modbus never drops: every request gets an answer */
		}
		off += v.consumed;
		ctx.now_us += 1000;
	}
}

/* The request's own datagram, decoded again here to check what the verdict says about it. */
static void check_bacnet(const struct engine_verdict *v, const struct engine_routes *rt, const uint8_t *frame)
{
	static struct bms_request req, ans;
	enum bms_parse_result dr = bacnet_decode(frame, v->consumed, &req);
	const struct bacnet_fields *f = &req.raw.bacnet;
	if (!v->audit || v->consumed == 0)
		abort();
	switch (v->action) {
	case ENGINE_FORWARD:
		if (dr != BMS_OK || req.dir != BMS_DIR_REQUEST || f->segmented)
			abort();
		if (f->bvlc_function != BACNET_BVLC_ORIGINAL_UNICAST && f->bvlc_function != BACNET_BVLC_ORIGINAL_BROADCAST &&
		    f->bvlc_function != BACNET_BVLC_FORWARDED_NPDU)
			abort(); /* BVLC management never reaches a device */
		if (v->route < rt->routes || v->route >= rt->routes + rt->n || v->route->proto != BMS_PROTO_BACNET)
			abort();
		if (v->decision.verdict != BMS_VERDICT_ALLOW && v->decision.verdict != BMS_VERDICT_MONITOR_DENY)
			abort();
		if (v->consumed > rt->bacnet_frame_size)
			abort();
		break;
	case ENGINE_ANSWER:
		if (v->route || v->answer_len == 0 || v->answer_len > sizeof(v->answer))
			abort();
		if (f->pdu_type != BACNET_PDU_CONFIRMED || !f->has_invoke_id)
			abort(); /* only a confirmed request is answered */
		if (bacnet_decode(v->answer, v->answer_len, &ans) != BMS_OK)
			abort();
		if (ans.raw.bacnet.invoke_id != f->invoke_id || ans.raw.bacnet.pdu_type != v->answer_pdu)
			abort();
		if (v->answer_pdu == BACNET_PDU_ERROR && ans.raw.bacnet.error_class != BACNET_ERROR_CLASS_SECURITY)
			abort();
		if (v->answer_pdu != BACNET_PDU_ERROR && v->answer_pdu != BACNET_PDU_REJECT &&
		    v->answer_pdu != BACNET_PDU_ABORT)
			abort();
		break;
	case ENGINE_DROP:
		if (v->route || v->answer_len != 0)
			abort();
		break;
	default:
		abort();
	}
}

static void run_bacnet(const struct engine_routes *rt, const uint8_t *data, size_t size, bool datagram)
{
	static struct engine_verdict v;
	struct engine_ctx ctx = {
		.routes = rt, .policy = policy, .state = pstate, .who = &who, .now_us = 1768392000000000LL,
	};
	size_t off = 0;
	while (off < size) {
		const uint8_t *b = data + off;
		size_t len = size - off;
		struct engine_input in = { .proto = BMS_PROTO_BACNET, .datagram = datagram, .bytes = b, .len = len,
					   .dst = (const struct sockaddr *)&bn_dst };
		engine_inspect(&ctx, &in, &v);
		if (v.consumed > len)
			abort();
		if (v.action == ENGINE_NEED_MORE) {
			if (datagram || v.consumed != 0 || v.need <= len || v.audit)
				abort();
			return;
		}
		if (v.action == ENGINE_CLOSE) {
			if (!v.audit)
				abort();
			return;
		}
		check_bacnet(&v, rt, b);
		if (datagram && v.consumed != len)
			abort(); /* a datagram is taken whole */
		off += v.consumed;
		ctx.now_us += 1000;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!policy)
		init();
	if (size == 0)
		return 0;
	uint8_t sel = data[0];
	for (int i = 0; i < 2; i++) {
		if (sel & 1)
			run_bacnet(&routes[i], data + 1, size - 1, (sel & 2) != 0);
		else
			run_modbus(&routes[i], data + 1, size - 1);
	}
	return 0;
}
