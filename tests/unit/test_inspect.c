/* tests/unit/test_inspect.c: the gateway's one pure inspect step, without sockets:
 * framing (need-more, two frames in one buffer), allow -> forward, deny -> exception 01
 * with the request's transaction id, unroutable unit -> 0A, malformed -> close or 03 as
 * configured, the frame-size limit, monitor mode, and the audit event each verdict carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/inspect.h"
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
				  "allow operators read trial\n";

static const char conf_text[] = "listen tls 127.0.0.1:8802\n"
				"certificate g.crt\nkey g.key\nca ca.crt\n"
				"policy site.policy\n"
				"device ahu {\n address 127.0.0.1:5020\n units 1\n}\n"
				"device trial {\n address 127.0.0.1:5021\n units 2\n}\n"
				"audit {\n file a.jsonl\n key a.key\n}\n";

struct fixture {
	struct proxy_config cfg;
	struct bms_policy *policy;
	struct bms_identity who;
	struct proxy_verdict v;
	struct proxy_inspect_ctx ctx;
};

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
	f.ctx.cfg = &f.cfg;
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
	proxy_inspect(&f->ctx, b, 0, &f->v);
	assert_int_equal(f->v.action, PROXY_NEED_MORE);
	assert_false(f->v.audit);
	proxy_inspect(&f->ctx, b, 5, &f->v);
	assert_int_equal(f->v.action, PROXY_NEED_MORE);
	assert_int_equal(f->v.consumed, 0);
	proxy_inspect(&f->ctx, b, n - 1, &f->v);
	assert_int_equal(f->v.action, PROXY_NEED_MORE);
	assert_int_equal(f->v.need, n);
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_FORWARD);
}

static void allowed_read_forwards_one_frame(void **state)
{
	struct fixture *f = *state;
	uint8_t b[64];
	size_t n = read_req(b, 0x1234, 1, 100, 2);
	n += write_req(b + n, 0x1235, 1, 100, 900);
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_FORWARD);
	assert_int_equal(f->v.consumed, 12); /* only the first of the two frames */
	assert_ptr_equal(f->v.device, &f->cfg.devices[0]);
	assert_true(f->v.audit);
	assert_int_equal(f->v.event.kind, AUDIT_DECISION);
	assert_int_equal(f->v.event.result, AUDIT_RESULT_PENDING);
	assert_string_equal(f->v.event.device, "ahu");
	assert_ptr_equal(f->v.event.peer, &f->who);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_ALLOW);
	assert_string_equal(f->v.decision.rule_file, "site.policy");
	assert_int_equal(f->v.decision.rule_line, 8);
	assert_int_equal(f->v.req.op, BMS_OP_READ);
	assert_int_equal(f->v.req.raw.modbus.tid, 0x1234);
	/* the caller moves on by `consumed` and inspects the second frame */
	proxy_inspect(&f->ctx, b + 12, n - 12, &f->v);
	assert_int_equal(f->v.action, PROXY_ANSWER);
	assert_int_equal(f->v.consumed, 12);
}

static void denied_write_answers_exception_01_with_its_tid(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	size_t n = write_req(b, 0xbeef, 1, 100, 450); /* 45.0 degC, above 30 */
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_ANSWER);
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
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_FORWARD);
}

static void no_role_is_denied(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	char saved[BMS_ROLE_MAX];
	memcpy(saved, f->who.role, sizeof(saved));
	f->who.role[0] = '\0';
	size_t n = read_req(b, 7, 1, 100, 1);
	proxy_inspect(&f->ctx, b, n, &f->v);
	memcpy(f->who.role, saved, sizeof(saved));
	assert_int_equal(f->v.action, PROXY_ANSWER);
	assert_int_equal(f->v.answer[8], PROXY_EXC_ILLEGAL_FUNCTION);
	assert_int_equal(f->v.answer[7], 0x83);
}

static void unroutable_unit_gets_0A(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	size_t n = read_req(b, 9, 77, 100, 1);
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_ANSWER);
	assert_int_equal(f->v.answer[6], 77);
	assert_int_equal(f->v.answer[8], PROXY_EXC_PATH_UNAVAILABLE);
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
	assert_int_equal(proxy_config_parse("ghost.conf", ghost_conf, PROXY_GUARD, &ghost, stderr), 0);
	struct proxy_inspect_ctx ctx = f->ctx;
	ctx.cfg = &ghost;
	uint8_t b[16];
	size_t n = read_req(b, 5, 3, 100, 1);
	proxy_inspect(&ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_ANSWER);
	assert_int_equal(f->v.answer[8], PROXY_EXC_ILLEGAL_FUNCTION);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
	assert_string_equal(f->v.decision.reason,
			    "no device is declared at 127.0.0.1 port 5022 unit 3 in the policy (guard device 'ghost')");
	n = read_req(b, 6, 4, 100, 1);
	proxy_inspect(&ctx, b, n, &f->v);
	assert_string_equal(f->v.decision.reason,
			    "no device is declared at ::1 port 502 unit 4 in the policy (guard device 'v6')");
	/* a declared one still decides by the policy */
	n = read_req(b, 7, 1, 100, 1);
	proxy_inspect(&ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_FORWARD);

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
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_FORWARD);
	assert_ptr_equal(f->v.device, &f->cfg.devices[1]);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_MONITOR_DENY);
	assert_string_equal(f->v.event.device, "trial");
}

static void malformed_closes_or_answers_as_configured(void **state)
{
	struct fixture *f = *state;
	uint8_t b[16];
	size_t n = read_req(b, 0x0102, 1, 100, 0); /* quantity 0: the specification says 1..125 */
	f->cfg.malformed = PROXY_MALFORMED_CLOSE;
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_CLOSE);
	assert_true(f->v.audit);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);
	assert_non_null(strstr(f->v.detail, "malformed request"));

	f->cfg.malformed = PROXY_MALFORMED_EXCEPTION;
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_ANSWER);
	assert_int_equal(f->v.consumed, n);
	static const uint8_t want[9] = { 0x01, 0x02, 0, 0, 0, 3, 1, 0x83, 0x03 };
	assert_memory_equal(f->v.answer, want, 9);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);

	/* a header that cannot be framed leaves no next frame to find: close even in exception mode */
	b[2] = 0;
	b[3] = 1; /* protocol id 1 */
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_CLOSE);
	assert_int_equal(f->v.event.kind, AUDIT_MALFORMED);
	assert_non_null(strstr(f->v.detail, "unframeable"));
	f->cfg.malformed = PROXY_MALFORMED_CLOSE;
}

static void frame_size_limit(void **state)
{
	struct fixture *f = *state;
	/* FC 16, two registers: 7 + 1 + 4 + 1 + 4 = 17 bytes */
	const uint8_t b[17] = { 0, 5, 0, 0, 0, 11, 1, 16, 0, 100, 0, 2, 4, 0, 200, 0, 201 };
	unsigned saved = f->cfg.limits.frame_size;
	f->cfg.limits.frame_size = 16;
	proxy_inspect(&f->ctx, b, 9, &f->v); /* the header already says too long: no need to wait */
	assert_int_equal(f->v.action, PROXY_CLOSE);
	assert_non_null(strstr(f->v.detail, "exceeds frame-size 16"));
	proxy_inspect(&f->ctx, b, sizeof(b), &f->v);
	assert_int_equal(f->v.action, PROXY_CLOSE);
	f->cfg.limits.frame_size = saved;
	proxy_inspect(&f->ctx, b, sizeof(b), &f->v);
	assert_int_not_equal(f->v.action, PROXY_CLOSE);
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
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_FORWARD);
	assert_int_equal(roles.serial, bms_policy_serial(f->policy));

	bms_diag_init(&d);
	assert_true(bms_policy_load_string("site.policy", reloaded, strlen(reloaded), &p2, &d) >= 0);
	bms_diag_free(&d);
	f->ctx.policy = p2;
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(roles.serial, bms_policy_serial(p2));
	assert_int_equal(f->v.action, PROXY_ANSWER);
	assert_int_equal(f->v.decision.verdict, BMS_VERDICT_DENY);
	n = read_req(b, 2, 1, 100, 1);
	proxy_inspect(&f->ctx, b, n, &f->v);
	assert_int_equal(f->v.action, PROXY_FORWARD);

	f->ctx.policy = f->policy;
	f->ctx.roles = NULL;
	bms_policy_free(p2);
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
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
