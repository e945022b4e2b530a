/* tests/unit/test_inspect.c: the gateway's one pure inspect step (engine_inspect), without
 * sockets. Modbus/TCP: framing (need-more, two frames in one buffer), allow -> forward, deny ->
 * exception 01 with the request's transaction id, unroutable unit -> 0A, malformed -> close or
 * 03 as configured, the frame-size limit, monitor mode, cached roles. BACnet/IP: allow ->
 * forward; deny -> Error class security with read-access-denied / write-access-denied /
 * service-request-denied; an undecodable request -> Reject (or close), a segmented one ->
 * Abort; a refused unconfirmed request dropped and audited; BVLC management never forwarded;
 * BVLC-length framing of a stream; a request decoded by the caller used as given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "load/policy_files.h"
#include "engine/inspect.h"
#include "parsers/bacnet.h"
#include "proxy/config.h"
#include "proxy/preflight.h"

static const char policy_text[] = "device ahu modbus 127.0.0.1 port 5020 unit 1 {\n"
				  "  point sp holding 100 scale 0.1 unit degC range 15..30\n"
				  "}\n"
				  "device trial modbus 127.0.0.1 port 5021 unit 2 mode monitor\n"
				  "role operators {\n"
				  "  certificate-role operator\n"
				  "}\n"
				  "allow operators read ahu\n"
				  "allow operators write ahu.sp\n"
				  "allow operators read trial\n"
				  "device vav bacnet 127.0.0.1:47808 instance 7 {\n"
				  "  point sp analog-value 1\n"
				  "}\n"
				  "role engineers {\n"
				  "  certificate-role engineer\n"
				  "}\n"
				  "allow operators read vav\n"
				  "allow operators write vav.sp\n"
				  "allow engineers management vav\n"
				  "allow engineers discovery vav\n";

static const char conf_text[] = "listen tls 127.0.0.1:8802\n"
				"certificate g.crt\nkey g.key\nca ca.crt\n"
				"policy site.policy\n"
				"device ahu {\n address 127.0.0.1:5020\n units 1\n}\n"
				"device trial {\n address 127.0.0.1:5021\n units 2\n}\n"
				"audit {\n file a.jsonl\n key a.key\n}\n";

struct fixture {
	struct proxy_config cfg;
	struct engine_routes routes; /* built from cfg, as the guard does */
	struct bms_policy *policy;
	struct bms_identity who;
	struct engine_verdict v;
	struct engine_ctx ctx;
};

/* What the guard does with a client's buffered bytes. */
static void inspect_modbus(const struct engine_ctx *ctx, const uint8_t *b, size_t n, struct engine_verdict *v)
{
	struct engine_input in = { .proto = BMS_PROTO_MODBUS, .bytes = b, .len = n };
	engine_inspect(ctx, &in, v);
}

static int setup(void **state)
{
	static struct fixture f;
	struct bms_diag d;
	memset(&f, 0, sizeof(f));
	bms_diag_init(&d);
	if (bms_policy_load_string("site.policy", policy_text, strlen(policy_text), &f.policy, &d) < 0) {
		bms_diag_print(&d, stderr);
		bms_diag_free(&d);
		return -1;
	}
	bms_diag_free(&d);
	if (proxy_config_parse("g.conf", conf_text, PROXY_GUARD, &f.cfg, stderr) < 0)
		return -1;
	f.who.authenticated = true;
	snprintf(f.who.subject, sizeof(f.who.subject), "CN=ctl-1");
	snprintf(f.who.role, sizeof(f.who.role), "operator");
	proxy_config_routes(&f.cfg, &f.routes);
	f.ctx.routes = &f.routes;
	f.ctx.policy = f.policy;
	f.ctx.state = NULL;
	f.ctx.who = &f.who;
	f.ctx.now_us = 1700000000000000LL;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	bms_policy_free(f->policy);
	return 0;
}

/* MBAP + read holding registers */
static size_t read_req(uint8_t *b, uint16_t tid, uint8_t unit, uint16_t addr, uint16_t qty)
{
	const uint8_t r[12] = { (uint8_t)(tid >> 8), (uint8_t)tid, 0, 0, 0, 6, unit, 3,
				(uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(qty >> 8), (uint8_t)qty };
	memcpy(b, r, sizeof(r));
	return sizeof(r);
}

static size_t write_req(uint8_t *b, uint16_t tid, uint8_t unit, uint16_t addr, uint16_t val)
{
	const uint8_t r[12] = { (uint8_t)(tid >> 8), (uint8_t)tid, 0, 0, 0, 6, unit, 6,
				(uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(val >> 8), (uint8_t)val };
	memcpy(b, r, sizeof(r));
	return sizeof(r);
}

static void need_more_until_whole(void **state)
{
	struct fixture *f = *state;
	uint8_t b[32];
	size_t n = read_req(b, 1, 1, 100, 1);
	inspect_modbus(&f->ctx, b, 0, &f->v);
	assert_int_equal(f->v.action, ENGINE_NEED_MORE);
	assert_false(f->v.audit);
	inspect_modbus(&f->ctx, b, 5, &f->v);
	assert_int_equal(f->v.action, ENGINE_NEED_MORE);
	assert_int_equal(f->v.consumed, 0);
	inspect_modbus(&f->ctx, b, n - 1, &f->v);
	assert_int_equal(f->v.action, ENGINE_NEED_MORE);
	assert_int_equal(f->v.need, n);
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
}

static void allowed_read_forwards_one_frame(void **state)
{
	struct fixture *f = *state;
	uint8_t b[64];
	size_t n = read_req(b, 0x1234, 1, 100, 2);
	n += write_req(b + n, 0x1235, 1, 100, 900);
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	assert_int_equal(f->v.consumed, 12); /* only the first of the two frames */
	assert_ptr_equal(f->v.route, &f->routes.routes[0]);
	assert_int_equal(f->v.route->index, 0);
	assert_true(f->v.audit);
	assert_int_equal(f->v.event.kind, AUDIT_DECISION);
	assert_int_equal(f->v.event.result, AUDIT_RESULT_PENDING);
	assert_string_equal(f->v.event.device, "ahu");
	assert_ptr_equal(f->v.event.peer, &f->who);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_ALLOW);
	assert_string_equal(f->v.decision.rule_file, "site.policy");
	assert_int_equal(f->v.decision.rule_line, 8);
	assert_int_equal(f->v.req->op, BMS_OP_READ);
	assert_int_equal(f->v.req->raw.modbus.tid, 0x1234);
	/* the caller moves on by `consumed` and inspects the second frame */
	inspect_modbus(&f->ctx, b + 12, n - 12, &f->v);
	assert_int_equal(f->v.action, ENGINE_ANSWER);
	assert_int_equal(f->v.consumed, 12);
}

static void denied_write_answers_exception_01_with_its_tid(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	size_t n = write_req(b, 0xbeef, 1, 100, 450); /* 45.0 degC, above 30 */
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_ANSWER);
	assert_int_equal(f->v.consumed, n);
	static const uint8_t want[9] = { 0xbe, 0xef, 0, 0, 0, 3, 1, 0x86, 0x01 };
	assert_int_equal(f->v.answer_len, 9);
	assert_memory_equal(f->v.answer, want, 9);
	assert_true(f->v.audit);
	assert_int_equal(f->v.event.kind, AUDIT_DECISION);
	assert_int_equal(f->v.event.result, AUDIT_RESULT_NOT_FORWARDED);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
	assert_non_null(strstr(f->v.decision.reason, "sp"));

	/* the same write in range is allowed */
	n = write_req(b, 0xbef0, 1, 100, 215);
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
}

static void no_role_is_denied(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	char saved[BMS_ROLE_MAX];
	memcpy(saved, f->who.role, sizeof(saved));
	f->who.role[0] = '\0';
	size_t n = read_req(b, 7, 1, 100, 1);
	inspect_modbus(&f->ctx, b, n, &f->v);
	memcpy(f->who.role, saved, sizeof(saved));
	assert_int_equal(f->v.action, ENGINE_ANSWER);
	assert_int_equal(f->v.answer[8], ENGINE_EXC_ILLEGAL_FUNCTION);
	assert_int_equal(f->v.answer[7], 0x83);
}

static void unroutable_unit_gets_0A(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	size_t n = read_req(b, 9, 77, 100, 1);
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_ANSWER);
	assert_int_equal(f->v.answer[6], 77);
	assert_int_equal(f->v.answer[8], ENGINE_EXC_PATH_UNAVAILABLE);
	assert_true(f->v.audit);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
	assert_non_null(strstr(f->v.decision.reason, "unit 77"));
}

/* A guard device the policy does not declare: the deny names the address, port and unit the
 * guard could not place (it used to say only "no device is declared at this address and unit"),
 * and the start-up check finds the same mismatch, with the line of its address. */
static const char ghost_conf[] = "listen tls 127.0.0.1:8802\n"
				 "certificate g.crt\nkey g.key\nca ca.crt\n"
				 "policy site.policy\n"
				 "device ahu {\n address 127.0.0.1:5020\n units 1\n}\n"
				 "device ghost {\n units 3 7-9\n address 127.0.0.1:5022\n}\n"
				 "device v6 {\n address [::1]:502\n units 4\n}\n"
				 "device rest {\n address 127.0.0.1:5023\n}\n"
				 "audit {\n file a.jsonl\n key a.key\n}\n";

static void undeclared_device_reason_names_address_port_unit(void **state)
{
	struct fixture *f = *state;
	static struct proxy_config ghost;
	static struct engine_routes ghost_routes;
	assert_int_equal(proxy_config_parse("ghost.conf", ghost_conf, PROXY_GUARD, &ghost, stderr), 0);
	proxy_config_routes(&ghost, &ghost_routes);
	struct engine_ctx ctx = f->ctx;
	ctx.routes = &ghost_routes;
	uint8_t b[16];
	size_t n = read_req(b, 5, 3, 100, 1);
	inspect_modbus(&ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_ANSWER);
	assert_int_equal(f->v.answer[8], ENGINE_EXC_ILLEGAL_FUNCTION);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
	assert_string_equal(f->v.decision.reason,
			    "no device is declared at 127.0.0.1 port 5022 unit 3 in the policy (guard device 'ghost')");
	n = read_req(b, 6, 4, 100, 1);
	inspect_modbus(&ctx, b, n, &f->v);
	assert_string_equal(f->v.decision.reason,
			    "no device is declared at ::1 port 502 unit 4 in the policy (guard device 'v6')");
	/* a declared one still decides by the policy */
	n = read_req(b, 7, 1, 100, 1);
	inspect_modbus(&ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);

	/* the same mismatch, found before any request */
	char *msgs = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&msgs, &len);
	assert_int_equal(proxy_preflight_devices(&ghost, f->policy, m), 3);
	fclose(m);
	assert_string_equal(msgs,
			    "ghost.conf:12: device 'ghost': no device in the policy is declared at 127.0.0.1 port 5022 "
			    "units 3, 7-9: every request for them would be denied; the policy's Modbus devices: ahu at "
			    "127.0.0.1 port 5020, trial at 127.0.0.1 port 5021\n"
			    "ghost.conf:15: device 'v6': no device in the policy is declared at ::1 port 502 unit 4: every "
			    "request for it would be denied; the policy's Modbus devices: ahu at 127.0.0.1 port 5020, trial "
			    "at 127.0.0.1 port 5021\n"
			    "ghost.conf:19: device 'rest': no device in the policy is declared at 127.0.0.1 port 5023 (any "
			    "unit): every request routed to it would be denied; the policy's Modbus devices: ahu at "
			    "127.0.0.1 port 5020, trial at 127.0.0.1 port 5021\n");
	free(msgs);
	/* negative beside it: the fixture's guard devices are all declared */
	msgs = NULL;
	m = open_memstream(&msgs, &len);
	assert_int_equal(proxy_preflight_devices(&f->cfg, f->policy, m), 0);
	fclose(m);
	assert_string_equal(msgs, "");
	free(msgs);
}

static void monitor_mode_forwards_would_be_denials(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	size_t n = write_req(b, 3, 2, 100, 1); /* no rule allows writes to "trial" */
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	assert_ptr_equal(f->v.route, &f->routes.routes[1]);
	assert_int_equal(f->v.route->index, 1);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_MONITOR_DENY);
	assert_string_equal(f->v.event.device, "trial");
}

static void malformed_closes_or_answers_as_configured(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	size_t n = read_req(b, 0x0102, 1, 100, 0); /* quantity 0: the specification says 1..125 */
	f->routes.malformed = ENGINE_MALFORMED_CLOSE;
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_CLOSE);
	assert_true(f->v.audit);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);
	assert_non_null(strstr(f->v.detail, "malformed request"));

	f->routes.malformed = ENGINE_MALFORMED_ANSWER;
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_ANSWER);
	assert_int_equal(f->v.consumed, n);
	static const uint8_t want[9] = { 0x01, 0x02, 0, 0, 0, 3, 1, 0x83, 0x03 };
	assert_memory_equal(f->v.answer, want, 9);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);

	/* a header that cannot be framed leaves no next frame to find: close even in exception mode */
	b[2] = 0;
	b[3] = 1; /* protocol id 1 */
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_CLOSE);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);
	assert_non_null(strstr(f->v.detail, "unframeable"));
	f->routes.malformed = ENGINE_MALFORMED_CLOSE;
}

static void frame_size_limit(void **state)
{
	struct fixture *f = *state;
	/* FC 16, two registers: 7 + 1 + 4 + 1 + 4 = 17 bytes */
	const uint8_t b[17] = { 0, 5, 0, 0, 0, 11, 1, 16, 0, 100, 0, 2, 4, 0, 200, 0, 201 };
	unsigned saved = f->routes.modbus_frame_size;
	f->routes.modbus_frame_size = 16;
	inspect_modbus(&f->ctx, b, 9, &f->v); /* the header already says too long: no need to wait */
	assert_int_equal(f->v.action, ENGINE_CLOSE);
	assert_non_null(strstr(f->v.detail, "exceeds frame-size 16"));
	inspect_modbus(&f->ctx, b, sizeof(b), &f->v);
	assert_int_equal(f->v.action, ENGINE_CLOSE);
	f->routes.modbus_frame_size = saved;
	inspect_modbus(&f->ctx, b, sizeof(b), &f->v);
	assert_int_not_equal(f->v.action, ENGINE_CLOSE);
}

/* Roles cached per connection decide as the plain path does, and follow a
 * reload: a policy that drops the write rule denies the cached connection. */
static void cached_roles_follow_a_reload(void **state)
{
	struct fixture *f = *state;
	static const char reloaded[] = "device ahu modbus 127.0.0.1:5020 unit 1 {\n"
				       "  point sp holding 100 int16 scale 0.1 unit degC range 15..30\n"
				       "}\n"
				       "role operators {\n"
				       "  certificate-role operator\n"
				       "}\n"
				       "allow operators read ahu\n";
	struct bms_policy_roles roles;
	struct bms_policy *p2 = NULL;
	struct bms_diag d;
	uint8_t b[16];
	size_t n = write_req(b, 1, 1, 100, 215);

	memset(&roles, 0, sizeof(roles));
	f->ctx.roles = &roles;
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	assert_int_equal(roles.serial, bms_policy_serial(f->policy));

	bms_diag_init(&d);
	assert_true(bms_policy_load_string("site.policy", reloaded, strlen(reloaded), &p2, &d) >= 0);
	bms_diag_free(&d);
	f->ctx.policy = p2;
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(roles.serial, bms_policy_serial(p2));
	assert_int_equal(f->v.action, ENGINE_ANSWER);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
	n = read_req(b, 2, 1, 100, 1);
	inspect_modbus(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);

	f->ctx.policy = f->policy;
	f->ctx.roles = NULL;
	bms_policy_free(p2);
}

/* ---- BACnet/IP ---- */

/* The fixture's routes and a BACnet one for vav at 127.0.0.1:47808, the datagram's destination. */
static struct engine_routes bn_routes;
static struct sockaddr_in bn_dst;

static void bn_setup(struct fixture *f, struct engine_ctx *ctx)
{
	bn_routes = f->routes;
	struct engine_route *r = engine_routes_add(&bn_routes, BMS_PROTO_BACNET);
	assert_non_null(r);
	snprintf(r->name, sizeof(r->name), "vav");
	struct sockaddr_in *a = (struct sockaddr_in *)&r->addr;
	a->sin_family = AF_INET;
	a->sin_port = htons(47808);
	a->sin_addr.s_addr = htonl(0x7f000001);
	r->addr_len = sizeof(*a);
	engine_routes_index(&bn_routes);
	bn_dst = *a;
	*ctx = f->ctx;
	ctx->routes = &bn_routes;
}

static void bn_inspect(const struct engine_ctx *ctx, const uint8_t *b, size_t n, bool datagram, struct engine_verdict *v)
{
	struct engine_input in = { .proto = BMS_PROTO_BACNET, .datagram = datagram, .bytes = b, .len = n,
				   .dst = (const struct sockaddr *)&bn_dst };
	engine_inspect(ctx, &in, v);
}

static size_t bn_read(uint8_t *b, uint8_t invoke, uint16_t type, uint32_t inst)
{
	struct bacnet_property_ref ref = { .object_type = type, .instance = inst, .property = 85,
					   .array_index = BMS_NO_INDEX };
	size_t n = 0;
	assert_int_equal(bacnet_encode_read_property(invoke, &ref, b, 64, &n), 0);
	return n;
}

static size_t bn_write(uint8_t *b, uint8_t invoke, uint16_t type, uint32_t inst)
{
	struct bacnet_property_ref ref = { .object_type = type, .instance = inst, .property = 85,
					   .array_index = BMS_NO_INDEX };
	struct bms_value val = { .type = BMS_VAL_REAL, .d = 21.5 };
	size_t n = 0;
	assert_int_equal(bacnet_encode_write_property(invoke, &ref, &val, 8, b, 64, &n), 0);
	return n;
}

/* The gateway's answer, decoded: an Error/Reject/Abort for `invoke`, of type `pdu`. */
static void assert_bn_answer(const struct engine_verdict *v, uint8_t pdu, uint8_t invoke, uint32_t code)
{
	static struct bms_request a;
	assert_int_equal(v->action, ENGINE_ANSWER);
	assert_true(v->answer_len > 0 && v->answer_len <= sizeof(v->answer));
	assert_int_equal(bacnet_decode(v->answer, v->answer_len, &a), BMS_OK);
	assert_int_equal(a.raw.bacnet.bvlc_function, BACNET_BVLC_ORIGINAL_UNICAST);
	assert_int_equal(a.raw.bacnet.pdu_type, pdu);
	assert_int_equal(a.raw.bacnet.invoke_id, invoke);
	if (pdu == BACNET_PDU_ERROR) {
		assert_int_equal(a.raw.bacnet.error_class, BACNET_ERROR_CLASS_SECURITY);
		assert_int_equal(a.raw.bacnet.error_code, code);
	} else {
		assert_int_equal(a.raw.bacnet.reason, code);
	}
	assert_int_equal(v->answer_pdu, pdu);
	assert_int_equal(v->answer_code, code);
}

static void bacnet_read_allowed_forwards_denied_gets_read_access_denied(void **state)
{
	struct fixture *f = *state;
	struct engine_ctx ctx;
	uint8_t b[64];
	bn_setup(f, &ctx);
	size_t n = bn_read(b, 9, 2, 1); /* analog-value 1 present-value */
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	assert_int_equal(f->v.consumed, n);
	assert_ptr_equal(f->v.route, &bn_routes.routes[2]);
	assert_true(f->v.audit);
	assert_int_equal(f->v.event.kind, AUDIT_DECISION);
	assert_int_equal(f->v.event.proto, BMS_PROTO_BACNET);
	assert_string_equal(f->v.event.device, "vav");
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_ALLOW);
	/* negative: a client without a role is refused with read-access-denied, its invoke id kept */
	struct bms_identity nobody = f->who;
	nobody.role[0] = '\0';
	ctx.who = &nobody;
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_bn_answer(&f->v, BACNET_PDU_ERROR, 9, BACNET_ERROR_CODE_READ_ACCESS_DENIED);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
	assert_int_equal(f->v.event.result, AUDIT_RESULT_NOT_FORWARDED);
	assert_null(f->v.route);
}

static void bacnet_write_outside_the_rule_gets_write_access_denied(void **state)
{
	struct fixture *f = *state;
	struct engine_ctx ctx;
	uint8_t b[64];
	bn_setup(f, &ctx);
	size_t n = bn_write(b, 21, 2, 1); /* vav.sp: allowed */
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	assert_int_equal(f->v.req->op, BMS_OP_WRITE);
	n = bn_write(b, 22, 2, 2); /* analog-value 2: no rule */
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_bn_answer(&f->v, BACNET_PDU_ERROR, 22, BACNET_ERROR_CODE_WRITE_ACCESS_DENIED);
	assert_non_null(strstr(f->v.decision.reason, "analog-value 2"));
}

/* DeviceCommunicationControl (service 17), enable-disable [1] = disable */
static const uint8_t dcc[] = { 0x81, 0x0a, 0x00, 0x0b, 0x01, 0x04, 0x00, 0x05, 0x33, 0x11, 0x19, 0x01 };

static void bacnet_management_denied_gets_service_request_denied(void **state)
{
	struct fixture *f = *state;
	struct engine_ctx ctx;
	uint8_t b[sizeof(dcc)];
	bn_setup(f, &ctx);
	memcpy(b, dcc, sizeof(b));
	b[3] = sizeof(b);
	bn_inspect(&ctx, b, sizeof(b), true, &f->v);
	assert_int_equal(f->v.req->op, BMS_OP_MANAGEMENT);
	assert_bn_answer(&f->v, BACNET_PDU_ERROR, 0x33, BACNET_ERROR_CODE_SERVICE_REQUEST_DENIED);
	/* negative: the engineer's rule lets it through */
	struct bms_identity eng = f->who;
	snprintf(eng.role, sizeof(eng.role), "engineer");
	ctx.who = &eng;
	bn_inspect(&ctx, b, sizeof(b), true, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	assert_int_equal(f->v.answer_len, 0);
}

static void bacnet_undecodable_request_is_rejected_or_closes(void **state)
{
	struct fixture *f = *state;
	struct engine_ctx ctx;
	uint8_t b[64];
	bn_setup(f, &ctx);
	size_t n = bn_read(b, 5, 2, 1);
	b[n++] = 0x3f; /* a stray octet after the last parameter */
	b[3] = (uint8_t)n;
	bn_routes.malformed = ENGINE_MALFORMED_ANSWER;
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);
	assert_true(f->v.audit);
	assert_non_null(strstr(f->v.detail, "malformed request: "));
	assert_int_equal(f->v.action, ENGINE_ANSWER);
	assert_int_equal(f->v.answer_pdu, BACNET_PDU_REJECT);
	assert_bn_answer(&f->v, BACNET_PDU_REJECT, 5, f->v.answer_code);
	assert_int_not_equal(f->v.answer_code, BACNET_REJECT_OTHER); /* the reason names the fault */
	/* `malformed close` closes instead, still audited */
	bn_routes.malformed = ENGINE_MALFORMED_CLOSE;
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_int_equal(f->v.action, ENGINE_CLOSE);
	assert_true(f->v.audit);
	assert_int_equal(f->v.answer_len, 0);
	/* negative: the same request without the stray octet is decided, not rejected */
	n = bn_read(b, 5, 2, 1);
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_int_equal(f->v.event.kind, AUDIT_DECISION);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	/* a segmented confirmed request is never forwarded undecided: Abort */
	n = bn_read(b, 6, 2, 1);
	memmove(b + 9, b + 8, n - 8); /* room for sequence number and window size */
	memmove(b + 10, b + 9, n - 8);
	b[6] = 0x08 | 0x04;           /* confirmed, SEG and MOR */
	b[8] = 6;                      /* invoke id */
	b[9] = 0;                      /* sequence number */
	b[10] = 1;                     /* proposed window size */
	n += 2;
	b[3] = (uint8_t)n;
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_int_not_equal(f->v.action, ENGINE_FORWARD);
	assert_true(f->v.audit);
	assert_bn_answer(&f->v, BACNET_PDU_ABORT, 6, BACNET_ABORT_SEGMENTATION_NOT_SUPPORTED);
}

/* Who-Is, no range */
static const uint8_t who_is[] = { 0x81, 0x0b, 0x00, 0x08, 0x01, 0x00, 0x10, 0x08 };

static void bacnet_unconfirmed_refused_is_dropped_and_audited(void **state)
{
	struct fixture *f = *state;
	struct engine_ctx ctx;
	bn_setup(f, &ctx);
	bn_inspect(&ctx, who_is, sizeof(who_is), true, &f->v);
	assert_int_equal(f->v.action, ENGINE_DROP);
	assert_int_equal(f->v.consumed, sizeof(who_is));
	assert_int_equal(f->v.answer_len, 0);
	assert_true(f->v.audit);
	assert_int_equal(f->v.event.kind, AUDIT_DECISION);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
	assert_int_equal(f->v.event.result, AUDIT_RESULT_NOT_FORWARDED);
	/* negative: allowed for the engineer, it is forwarded */
	struct bms_identity eng = f->who;
	snprintf(eng.role, sizeof(eng.role), "engineer");
	ctx.who = &eng;
	bn_inspect(&ctx, who_is, sizeof(who_is), true, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
}

static void bacnet_bvlc_management_never_forwarded(void **state)
{
	struct fixture *f = *state;
	struct engine_ctx ctx;
	bn_setup(f, &ctx);
	struct bms_identity eng = f->who; /* allowed management and discovery on vav */
	snprintf(eng.role, sizeof(eng.role), "engineer");
	ctx.who = &eng;
	static const uint8_t register_fd[] = { 0x81, 0x05, 0x00, 0x06, 0x00, 0x3c };
	static const uint8_t read_bdt[] = { 0x81, 0x02, 0x00, 0x04 };
	static const uint8_t write_bdt[] = { 0x81, 0x01, 0x00, 0x0e, 127, 0, 0, 1, 0xba, 0xc0, 255, 255, 255, 255 };
	static const uint8_t distribute[] = { 0x81, 0x09, 0x00, 0x08, 0x01, 0x00, 0x10, 0x08 };
	const uint8_t *m[] = { register_fd, read_bdt, write_bdt, distribute };
	const size_t mlen[] = { sizeof(register_fd), sizeof(read_bdt), sizeof(write_bdt), sizeof(distribute) };
	for (unsigned i = 0; i < 4; i++) {
		bn_inspect(&ctx, m[i], mlen[i], true, &f->v);
		assert_int_equal(f->v.action, ENGINE_DROP);
		assert_true(f->v.audit);
		assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
		assert_non_null(strstr(f->v.decision.reason, "BACnet/IP management"));
	}
	/* negative: the same Who-Is in an Original-Broadcast-NPDU is the engineer's to send */
	bn_inspect(&ctx, who_is, sizeof(who_is), true, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
}

static void bacnet_stream_framing_and_unrouted(void **state)
{
	struct fixture *f = *state;
	struct engine_ctx ctx;
	uint8_t b[128];
	bn_setup(f, &ctx);
	size_t n1 = bn_read(b, 1, 2, 1);
	size_t n2 = bn_read(b + n1, 2, 2, 1);
	/* a stream: the BVLC length cuts the first, the second waits for its last octet */
	bn_inspect(&ctx, b, 3, false, &f->v);
	assert_int_equal(f->v.action, ENGINE_NEED_MORE);
	assert_false(f->v.audit);
	bn_inspect(&ctx, b, n1 + n2 - 1, false, &f->v);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	assert_int_equal(f->v.consumed, n1);
	bn_inspect(&ctx, b + n1, n2 - 1, false, &f->v);
	assert_int_equal(f->v.action, ENGINE_NEED_MORE);
	assert_int_equal(f->v.need, n2);
	/* a type octet that is not 0x81 leaves no way to find the next message: close */
	b[n1] = 0x82;
	bn_inspect(&ctx, b + n1, n2, false, &f->v);
	assert_int_equal(f->v.action, ENGINE_CLOSE);
	assert_true(f->v.audit);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);
	/* as one datagram, a BVLC length that disagrees is malformed, never need-more */
	bn_inspect(&ctx, b, n1 - 1, true, &f->v);
	assert_int_not_equal(f->v.action, ENGINE_NEED_MORE);
	assert_int_not_equal(f->v.action, ENGINE_FORWARD);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);
	/* a destination no route names: denied with the address, answered as a deny */
	bn_dst.sin_port = htons(47809);
	bn_inspect(&ctx, b, n1, true, &f->v);
	bn_dst.sin_port = htons(47808);
	assert_bn_answer(&f->v, BACNET_PDU_ERROR, 1, BACNET_ERROR_CODE_READ_ACCESS_DENIED);
	assert_string_equal(f->v.decision.reason,
			    "no BACnet device is configured at 127.0.0.1 port 47809: no 'device' block of the guard routes it");
}

/* What replay does: the capture engine's request goes in, and is not decoded again. */
static void a_decoded_request_is_used_not_decoded_again(void **state)
{
	struct fixture *f = *state;
	struct engine_ctx ctx;
	static struct bms_request q;
	uint8_t b[64];
	bn_setup(f, &ctx);
	size_t n = bn_read(b, 4, 2, 1);
	assert_int_equal(bacnet_decode(b, n, &q), BMS_OK);
	struct engine_input in = { .proto = BMS_PROTO_BACNET, .datagram = true, .bytes = b, .len = n,
				   .req = &q, .req_result = BMS_OK, .dst = (const struct sockaddr *)&bn_dst };
	engine_inspect(&ctx, &in, &f->v);
	assert_ptr_equal(f->v.req, &q);
	assert_ptr_equal(f->v.event.req, &q);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	/* the caller's result is believed: a request it called malformed is not forwarded */
	in.req_result = BMS_MALFORMED;
	engine_inspect(&ctx, &in, &f->v);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);
	assert_int_not_equal(f->v.action, ENGINE_FORWARD);
	/* negative: without one, the step decodes into its own */
	bn_inspect(&ctx, b, n, true, &f->v);
	assert_ptr_equal(f->v.req, &f->v.own_req);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	/* Modbus too */
	uint8_t m[16];
	size_t mn = read_req(m, 7, 1, 100, 1);
	assert_int_equal(modbus_decode(m, mn, BMS_DIR_REQUEST, &q), BMS_OK);
	struct engine_input mi = { .proto = BMS_PROTO_MODBUS, .bytes = m, .len = mn, .req = &q, .req_result = BMS_OK };
	engine_inspect(&f->ctx, &mi, &f->v);
	assert_ptr_equal(f->v.req, &q);
	assert_int_equal(f->v.action, ENGINE_FORWARD);
	inspect_modbus(&f->ctx, m, mn, &f->v);
	assert_ptr_equal(f->v.req, &f->v.own_req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(need_more_until_whole),
		cmocka_unit_test(allowed_read_forwards_one_frame),
		cmocka_unit_test(denied_write_answers_exception_01_with_its_tid),
		cmocka_unit_test(no_role_is_denied),
		cmocka_unit_test(unroutable_unit_gets_0A),
		cmocka_unit_test(undeclared_device_reason_names_address_port_unit),
		cmocka_unit_test(monitor_mode_forwards_would_be_denials),
		cmocka_unit_test(malformed_closes_or_answers_as_configured),
		cmocka_unit_test(frame_size_limit),
		cmocka_unit_test(cached_roles_follow_a_reload),
		cmocka_unit_test(bacnet_read_allowed_forwards_denied_gets_read_access_denied),
		cmocka_unit_test(bacnet_write_outside_the_rule_gets_write_access_denied),
		cmocka_unit_test(bacnet_management_denied_gets_service_request_denied),
		cmocka_unit_test(bacnet_undecodable_request_is_rejected_or_closes),
		cmocka_unit_test(bacnet_unconfirmed_refused_is_dropped_and_audited),
		cmocka_unit_test(bacnet_bvlc_management_never_forwarded),
		cmocka_unit_test(bacnet_stream_framing_and_unrouted),
		cmocka_unit_test(a_decoded_request_is_used_not_decoded_again),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
