/* tests/unit/test_policy.c: evaluation semantics of the policy engine.
 * Requests are built by hand, as the decoders would fill them, so these tests
 * depend on the request model only. Each property has its negative beside it. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "load/policy_files.h"
#include "parsers/modbus.h"
#include "policies/policy.h"

/* ---- helpers ---- */

static struct bms_policy *compile(const char *text)
{
	struct bms_diag d;
	bms_diag_init(&d);
	struct bms_policy *p = NULL;
	int rc = bms_policy_load_string("t.policy", text, strlen(text), &p, &d);
	if (rc != 0 || d.errors != 0)
		bms_diag_print(&d, stderr);
	assert_int_equal(rc, 0);
	bms_diag_free(&d);
	return p;
}

static int64_t utc_us(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s };
	return (int64_t)timegm(&tm) * 1000000;
}

/* A Wednesday, 12:00 UTC, in winter: 13:00 in Berlin. */
#define NOON utc_us(2026, 1, 14, 12, 0, 0)

static struct bms_identity cert(const char *role)
{
	struct bms_identity id;
	memset(&id, 0, sizeof(id));
	id.authenticated = true;
	snprintf(id.role, sizeof(id.role), "%s", role);
	snprintf(id.subject, sizeof(id.subject), "CN=test-%s", role);
	return id;
}

static struct bms_identity legacy(const char *ip)
{
	struct bms_identity id;
	memset(&id, 0, sizeof(id));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&id.addr;
	s4->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	id.addr_len = sizeof(*s4);
	return id;
}

struct mreq {
	struct bms_request r;
	uint8_t data[256];
};

/* Modbus write of `count` registers from `start`, every register set to raw `v`
 * (FC 6 for one register, FC 16 for more), as the decoder fills it. */
static void mb_write(struct mreq *m, uint32_t start, uint32_t count, const uint16_t *vals)
{
	memset(m, 0, sizeof(*m));
	m->r.proto = BMS_PROTO_MODBUS;
	m->r.dir = BMS_DIR_REQUEST;
	m->r.op = BMS_OP_WRITE;
	m->r.unit = 1;
	m->r.raw.modbus.fc = count == 1 ? 6 : 16;
	m->r.ntargets = 1;
	struct bms_target *t = &m->r.targets[0];
	t->space = BMS_SPACE_HOLDING_REGISTER;
	t->start = start;
	t->count = count;
	t->array_index = BMS_NO_INDEX;
	for (uint32_t i = 0; i < count; i++) {
		m->data[2 * i] = (uint8_t)(vals[i] >> 8);
		m->data[2 * i + 1] = (uint8_t)vals[i];
	}
	t->data = m->data;
	t->data_len = (uint16_t)(2 * count);
	if (count == 1) {
		t->has_value = true;
		t->value.type = BMS_VAL_UNSIGNED;
		t->value.u = vals[0];
	}
}

static void mb_write1(struct mreq *m, uint32_t addr, uint16_t v)
{
	mb_write(m, addr, 1, &v);
}

static void mb_read(struct mreq *m, uint8_t fc, uint8_t space, uint32_t start, uint32_t count)
{
	memset(m, 0, sizeof(*m));
	m->r.proto = BMS_PROTO_MODBUS;
	m->r.dir = BMS_DIR_REQUEST;
	m->r.op = BMS_OP_READ;
	m->r.unit = 1;
	m->r.raw.modbus.fc = fc;
	m->r.ntargets = 1;
	m->r.targets[0].space = space;
	m->r.targets[0].start = start;
	m->r.targets[0].count = count;
	m->r.targets[0].array_index = BMS_NO_INDEX;
}

/* FC 23 as the decoder fills it: the read range first (no data), then the write range and its data. */
static void mb_read_write(struct mreq *m, uint32_t rstart, uint32_t rcount, uint32_t wstart, uint32_t wcount,
			  const uint16_t *vals)
{
	memset(m, 0, sizeof(*m));
	m->r.proto = BMS_PROTO_MODBUS;
	m->r.dir = BMS_DIR_REQUEST;
	m->r.op = BMS_OP_WRITE;
	m->r.unit = 1;
	m->r.raw.modbus.fc = 23;
	m->r.ntargets = 2;
	struct bms_target *rt = &m->r.targets[0], *wt = &m->r.targets[1];
	rt->space = wt->space = BMS_SPACE_HOLDING_REGISTER;
	rt->start = rstart;
	rt->count = rcount;
	wt->start = wstart;
	wt->count = wcount;
	rt->array_index = wt->array_index = BMS_NO_INDEX;
	for (uint32_t i = 0; i < wcount; i++) {
		m->data[2 * i] = (uint8_t)(vals[i] >> 8);
		m->data[2 * i + 1] = (uint8_t)vals[i];
	}
	wt->data = m->data;
	wt->data_len = (uint16_t)(2 * wcount);
}

static void mb_coil(struct mreq *m, uint32_t addr, bool on)
{
	memset(m, 0, sizeof(*m));
	m->r.proto = BMS_PROTO_MODBUS;
	m->r.dir = BMS_DIR_REQUEST;
	m->r.op = BMS_OP_WRITE;
	m->r.unit = 1;
	m->r.raw.modbus.fc = 5;
	m->r.ntargets = 1;
	struct bms_target *t = &m->r.targets[0];
	t->space = BMS_SPACE_COIL;
	t->start = addr;
	t->count = 1;
	t->array_index = BMS_NO_INDEX;
	t->has_value = true;
	t->value.type = BMS_VAL_BOOL;
	t->value.b = on;
}

/* BACnet WriteProperty of a REAL (or Null when null is true). */
static void bn_write(struct mreq *m, uint16_t otype, uint32_t inst, uint32_t prop, double v, uint8_t prio, bool null)
{
	memset(m, 0, sizeof(*m));
	m->r.proto = BMS_PROTO_BACNET;
	m->r.dir = BMS_DIR_REQUEST;
	m->r.op = BMS_OP_WRITE;
	m->r.raw.bacnet.has_apdu = 1;
	m->r.raw.bacnet.pdu_type = 0;
	m->r.raw.bacnet.has_service = 1;
	m->r.raw.bacnet.service = 15;
	m->r.ntargets = 1;
	struct bms_target *t = &m->r.targets[0];
	t->space = BMS_SPACE_BACNET_OBJECT;
	t->object_type = otype;
	t->instance = inst;
	t->property = prop;
	t->array_index = BMS_NO_INDEX;
	t->priority = prio;
	t->has_value = true;
	t->value.type = null ? BMS_VAL_NULL : BMS_VAL_REAL;
	t->value.d = v;
}

struct world {
	struct bms_policy *p;
	struct bms_policy_state *st;
	struct bms_decision d;
};

static void w_open(struct world *w, const char *text)
{
	memset(w, 0, sizeof(*w));
	w->p = compile(text);
	w->st = bms_policy_state_new(0);
	assert_non_null(w->st);
}

static void w_close(struct world *w)
{
	bms_policy_free(w->p);
	bms_policy_state_free(w->st);
}

static uint8_t decide(struct world *w, const char *dev, const struct bms_identity *who, const struct mreq *m,
		      int64_t now)
{
	const struct bms_policy_device *d = bms_policy_find_device_by_name(w->p, dev);
	assert_non_null(d);
	bms_policy_decide(w->p, w->st, who, d, &m->r, now, &w->d);
	return w->d.verdict;
}

#define HEAD                                                                                                  \
	"timezone Europe/Berlin\n"                                                                              \
	"device ahu1 modbus 10.0.0.21 unit 1 {\n"                                                               \
	"  point supply_air_setpoint holding 100 int16 scale 0.1 unit degC range 15..30\n"                      \
	"  point fan_speed holding 101 uint16 unit % range 0..100\n"                                             \
	"  point flow holding 102 float32 unit m3/h range -10..50\n"                                             \
	"  point fan_enable coil 12\n"                                                                          \
	"}\n"                                                                                                   \
	"device vav3 bacnet 10.0.0.43 instance 3003 {\n"                                                        \
	"  point zone_setpoint analog-value 1 present-value unit degC range 18..26\n"                           \
	"}\n"

/* ---- first match and default deny ---- */

static void test_first_match_wins(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	mb_write1(&m, 100, 245);

	w_open(&w, HEAD "allow operator write ahu1.supply_air_setpoint\n"
			"deny operator write ahu1.supply_air_setpoint\n");
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	assert_int_equal(w.d.rule_line, 11);
	assert_string_equal(w.d.rule_file, "t.policy");
	w_close(&w);

	/* The same two rules the other way round: the deny is first and decides. */
	w_open(&w, HEAD "deny operator write ahu1.supply_air_setpoint\n"
			"allow operator write ahu1.supply_air_setpoint\n");
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_int_equal(w.d.rule_line, 11);
	assert_string_equal(w.d.reason, "role operator may not write ahu1.supply_air_setpoint");
	w_close(&w);
}

static void test_default_deny(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator"), guest = cert("guest");
	w_open(&w, HEAD "allow operator write ahu1.supply_air_setpoint\n");
	mb_write1(&m, 100, 245);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	/* Another role, another operation, another register: nothing allows them. */
	assert_int_equal(decide(&w, "ahu1", &guest, &m, NOON), BMS_VERDICT_DENY);
	assert_null(w.d.rule_file);
	assert_non_null(strstr(w.d.reason, "no rule allows"));
	mb_read(&m, 3, BMS_SPACE_HOLDING_REGISTER, 100, 1);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "no rule allows role operator to read ahu1.supply_air_setpoint");
	mb_write1(&m, 101, 50);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	/* An undeclared device denies too. */
	bms_policy_decide(w.p, w.st, &op, NULL, &m.r, NOON, &w.d);
	assert_int_equal(w.d.verdict, BMS_VERDICT_DENY);
	w_close(&w);
}

/* ---- ranges at their edges ---- */

static void test_point_range_edges_engineering(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "allow operator write ahu1.supply_air_setpoint\n");
	static const struct { uint16_t raw; uint8_t verdict; } cases[] = {
		{ 150, BMS_VERDICT_ALLOW }, { 300, BMS_VERDICT_ALLOW }, { 149, BMS_VERDICT_DENY },
		{ 301, BMS_VERDICT_DENY },  { 225, BMS_VERDICT_ALLOW }, { (uint16_t)-50, BMS_VERDICT_DENY },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mb_write1(&m, 100, cases[i].raw);
		assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), cases[i].verdict);
	}
	mb_write1(&m, 100, 450);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 45.0 degC to ahu1.supply_air_setpoint above its limit 30.0");
	assert_int_equal(w.d.rule_line, 11);
	mb_write1(&m, 100, 149);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 14.9 degC to ahu1.supply_air_setpoint below its limit 15.0");
	/* int16: 0xFFCE is -5.0 degC, below the limit, not 6549.4. */
	mb_write1(&m, 100, 0xFFCE);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write -5.0 degC to ahu1.supply_air_setpoint below its limit 15.0");
	w_close(&w);
}

static void test_rule_value_range_edges(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "allow operator write ahu1.supply_air_setpoint value 18..26\n");
	mb_write1(&m, 100, 180);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	mb_write1(&m, 100, 260);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	mb_write1(&m, 100, 179);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 17.9 degC to ahu1.supply_air_setpoint outside the allowed 18.0..26.0");
	mb_write1(&m, 100, 261);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	w_close(&w);
}

static void test_raw_range_edges(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	uint16_t v[8] = { 0, 1, 2, 3, 4, 5, 6, 500 };
	w_open(&w, HEAD "allow operator write ahu1 holding 200-209 value 0..500\n");
	mb_write1(&m, 200, 0);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	mb_write1(&m, 209, 500);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	mb_write1(&m, 209, 501);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write raw 501.0 to holding 209 on ahu1 outside the allowed 0.0..500.0");
	mb_write1(&m, 210, 1);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	mb_write1(&m, 199, 1);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	/* A multi-register write must lie wholly inside the allowed range: 202-209 yes, 203-210 no. */
	mb_write(&m, 202, 8, v);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	mb_write(&m, 203, 8, v);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_null(w.d.rule_file);
	w_close(&w);
}

static void test_deny_overlap_and_multi_point_write(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "deny operator write ahu1.fan_speed\n"
			"allow operator write ahu1\n");
	/* FC 16 over 100-101 touches the denied fan_speed: a deny needs only overlap. */
	uint16_t v[2] = { 200, 50 };
	mb_write(&m, 100, 2, v);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_int_equal(w.d.rule_line, 11);
	/* Without the deny, each point written is held to its own range. */
	w_close(&w);
	w_open(&w, HEAD "allow operator write ahu1\n");
	mb_write(&m, 100, 2, v);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	v[1] = 101;
	mb_write(&m, 100, 2, v);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 101.0 % to ahu1.fan_speed above its limit 100.0");
	w_close(&w);
}

static void test_float32_and_partial(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "allow operator write ahu1\n");
	float f = 50.0f;
	uint32_t u;
	memcpy(&u, &f, 4);
	uint16_t v[2] = { (uint16_t)(u >> 16), (uint16_t)u };
	mb_write(&m, 102, 2, v);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	f = 50.5f;
	memcpy(&u, &f, 4);
	v[0] = (uint16_t)(u >> 16), v[1] = (uint16_t)u;
	mb_write(&m, 102, 2, v);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 50.5 m3/h to ahu1.flow above its limit 50.0");
	/* NaN is no number in any range. */
	v[0] = 0x7fc0, v[1] = 0;
	mb_write(&m, 102, 2, v);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	/* Half a float cannot be checked. */
	mb_write1(&m, 103, 0);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "cannot check the value written to ahu1.flow: the write covers only part of it");
	/* A mask write (FC 22) leaves the value to the device: uncheckable against a range. */
	mb_write1(&m, 100, 0);
	m.r.raw.modbus.fc = 22;
	m.r.targets[0].has_value = false;
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	w_close(&w);
}

static void test_coil_values(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "allow operator write ahu1.fan_enable value on\n");
	mb_coil(&m, 12, true);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	mb_coil(&m, 12, false);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	mb_coil(&m, 13, true);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	w_close(&w);
}

/* ---- BACnet ---- */

static void test_bacnet_priority_and_range(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "allow operator write vav3.zone_setpoint priority 8..16\n");
	bn_write(&m, 2, 1, 85, 21.5, 8, false);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_ALLOW);
	bn_write(&m, 2, 1, 85, 21.5, 16, false);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_ALLOW);
	bn_write(&m, 2, 1, 85, 21.5, 0, false); /* no priority given: 16 */
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_ALLOW);
	bn_write(&m, 2, 1, 85, 21.5, 7, false);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write to vav3.zone_setpoint at priority 7 outside the allowed 8..16");
	bn_write(&m, 2, 1, 85, 26.0, 8, false);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_ALLOW);
	bn_write(&m, 2, 1, 85, 26.5, 8, false);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 26.5 degC to vav3.zone_setpoint above its limit 26.0");
	/* Relinquish (Null) falls back to a lower priority: no value to hold to the range. */
	bn_write(&m, 2, 1, 85, 0, 8, true);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_ALLOW);
	/* Another object is not the point. */
	bn_write(&m, 2, 2, 85, 21.5, 8, false);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_DENY);
	/* A Modbus request sent to a BACnet device is refused. */
	mb_write1(&m, 100, 245);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_DENY);
	w_close(&w);
}

static void test_bacnet_service_rule(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "deny anyone service writeProperty on vav3\n"
			"allow operator write vav3\n");
	bn_write(&m, 2, 1, 85, 21.5, 8, false);
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_int_equal(w.d.rule_line, 11);
	m.r.raw.bacnet.service = 16; /* WritePropertyMultiple: not the denied service */
	assert_int_equal(decide(&w, "vav3", &op, &m, NOON), BMS_VERDICT_ALLOW);
	w_close(&w);
}

/* ---- time windows ---- */

static void test_window_across_midnight(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	mb_write1(&m, 100, 200);
	/* Berlin in January is UTC+1. 2026-01-12 is a Monday. */
	w_open(&w, HEAD "schedule night mon-fri 22:00-06:00\n"
			"allow operator write ahu1.supply_air_setpoint during night\n");
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 1, 12, 21, 0, 0)), BMS_VERDICT_ALLOW); /* Mon 22:00 */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 1, 13, 4, 59, 0)), BMS_VERDICT_ALLOW); /* Tue 05:59 */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 1, 13, 5, 0, 0)), BMS_VERDICT_DENY);   /* Tue 06:00 */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 1, 12, 20, 59, 0)), BMS_VERDICT_DENY); /* Mon 21:59 */
	assert_non_null(strstr(w.d.reason, "at this time"));
	/* Saturday 03:00 belongs to Friday night's window; Monday 03:00 would be Sunday's, not listed. */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 1, 17, 2, 0, 0)), BMS_VERDICT_ALLOW);
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 1, 12, 2, 0, 0)), BMS_VERDICT_DENY);
	/* Saturday 22:00 is not a weekday evening. */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 1, 17, 21, 30, 0)), BMS_VERDICT_DENY);
	w_close(&w);

	/* outside: the complement. */
	w_open(&w, HEAD "deny operator write ahu1 outside mon-fri 07:00-19:00\n"
			"allow operator write ahu1\n");
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 1, 14, 18, 0, 0)), BMS_VERDICT_DENY); /* 19:00 */
	w_close(&w);
}

static void test_window_across_dst_berlin(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	mb_write1(&m, 100, 200);
	w_open(&w, HEAD "allow operator write ahu1.supply_air_setpoint during sun 03:00-04:00\n");
	/* 2026-03-29: at 01:00 UTC Berlin goes from 02:00 CET to 03:00 CEST. */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 29, 0, 30, 0)), BMS_VERDICT_DENY);  /* 01:30 CET */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 29, 0, 59, 59)), BMS_VERDICT_DENY); /* 01:59:59 */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 29, 1, 0, 0)), BMS_VERDICT_ALLOW);  /* 03:00 CEST */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 29, 1, 59, 0)), BMS_VERDICT_ALLOW); /* 03:59 CEST */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 29, 2, 0, 0)), BMS_VERDICT_DENY);   /* 04:00 CEST */
	/* 2026-10-25: at 01:00 UTC Berlin goes back from 03:00 CEST to 02:00 CET. */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 10, 25, 0, 30, 0)), BMS_VERDICT_DENY);  /* 02:30 CEST */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 10, 25, 1, 30, 0)), BMS_VERDICT_DENY);  /* 02:30 CET */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 10, 25, 2, 0, 0)), BMS_VERDICT_ALLOW);  /* 03:00 CET */
	w_close(&w);
	/* Office hours hold by the wall clock in winter and summer. */
	w_open(&w, HEAD "allow operator write ahu1.supply_air_setpoint during daily 07:00-19:00\n");
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 27, 5, 30, 0)), BMS_VERDICT_DENY);  /* Fri 06:30 CET */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 30, 5, 30, 0)), BMS_VERDICT_ALLOW); /* Mon 07:30 CEST */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 30, 16, 59, 0)), BMS_VERDICT_ALLOW); /* 18:59 CEST */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 30, 17, 0, 0)), BMS_VERDICT_DENY);  /* 19:00 CEST */
	/* Far beyond the TZif transitions, the zone's rule still applies (2050-07-01 is CEST). */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2050, 7, 1, 5, 30, 0)), BMS_VERDICT_ALLOW);
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2050, 12, 1, 5, 30, 0)), BMS_VERDICT_DENY);
	w_close(&w);
}

static void test_window_across_dst_new_york(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	mb_write1(&m, 100, 200);
	const char *text = "timezone America/New_York\n"
			   "device ahu1 modbus 10.0.0.21 unit 1 {\n"
			   "  point supply_air_setpoint holding 100 int16 scale 0.1 unit degC range 15..30\n"
			   "}\n"
			   "allow operator write ahu1.supply_air_setpoint during sat 22:00-03:00\n";
	w_open(&w, text);
	/* 2026-03-08 (Sunday) 02:00 EST -> 03:00 EDT at 07:00 UTC: the Saturday night window ends at 03:00 EDT. */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 8, 3, 0, 0)), BMS_VERDICT_ALLOW);  /* Sat 22:00 EST */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 8, 6, 59, 0)), BMS_VERDICT_ALLOW); /* Sun 01:59 EST */
	assert_int_equal(decide(&w, "ahu1", &op, &m, utc_us(2026, 3, 8, 7, 0, 0)), BMS_VERDICT_DENY);   /* Sun 03:00 EDT */
	w_close(&w);
}

/* ---- rate limits and intervals ---- */

static void test_rate_limit(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "allow operator write ahu1.supply_air_setpoint limit 3 per minute\n"
			"allow operator write ahu1.fan_speed\n");
	mb_write1(&m, 100, 200);
	int64_t t = NOON;
	for (int i = 0; i < 3; i++)
		assert_int_equal(decide(&w, "ahu1", &op, &m, t + i), BMS_VERDICT_ALLOW);
	assert_int_equal(decide(&w, "ahu1", &op, &m, t + 3), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "rate limit of 3 per minute reached for write ahu1.supply_air_setpoint");
	assert_int_equal(w.d.rule_line, 11);
	/* Another rule keeps its own count. */
	struct mreq f;
	mb_write1(&f, 101, 50);
	assert_int_equal(decide(&w, "ahu1", &op, &f, t + 4), BMS_VERDICT_ALLOW);
	/* A denied request does not count; after a third of the minute, one more passes, then not two. */
	assert_int_equal(decide(&w, "ahu1", &op, &m, t + 19999999), BMS_VERDICT_DENY);
	assert_int_equal(decide(&w, "ahu1", &op, &m, t + 20000000), BMS_VERDICT_ALLOW);
	assert_int_equal(decide(&w, "ahu1", &op, &m, t + 20000001), BMS_VERDICT_DENY);
	/* No state at all: a rate-limited rule fails closed. */
	const struct bms_policy_device *d = bms_policy_find_device_by_name(w.p, "ahu1");
	bms_policy_decide(w.p, NULL, &op, d, &m.r, t, &w.d);
	assert_int_equal(w.d.verdict, BMS_VERDICT_DENY);
	w_close(&w);
}

static void test_min_interval(void **state)
{
	(void)state;
	struct world w;
	struct mreq m, r;
	struct bms_identity op = cert("operator");
	w_open(&w, HEAD "allow operator read ahu1\n"
			"allow operator write ahu1.supply_air_setpoint min-interval 30s\n");
	mb_write1(&m, 100, 200);
	mb_read(&r, 3, BMS_SPACE_HOLDING_REGISTER, 100, 1);
	int64_t t = NOON;
	assert_int_equal(decide(&w, "ahu1", &op, &m, t), BMS_VERDICT_ALLOW);
	assert_int_equal(decide(&w, "ahu1", &op, &r, t + 1), BMS_VERDICT_ALLOW); /* reads are not writes */
	assert_int_equal(decide(&w, "ahu1", &op, &m, t + 29999999), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write to ahu1.supply_air_setpoint 29.9 s after the last one; at least 30.0 s apart");
	assert_int_equal(decide(&w, "ahu1", &op, &m, t + 30000000), BMS_VERDICT_ALLOW);
	assert_int_equal(decide(&w, "ahu1", &op, &m, t + 30000001), BMS_VERDICT_DENY);
	w_close(&w);
}

/* ---- modes ---- */

static void test_monitor_mode(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	w_open(&w, "device ahu1 modbus 10.0.0.21 unit 1 mode monitor {\n"
		   "  point sp holding 100 int16 scale 0.1 unit degC range 15..30\n"
		   "}\n"
		   "device ahu2 modbus 10.0.0.22 unit 1 {\n"
		   "  point sp holding 100 int16 scale 0.1 unit degC range 15..30\n"
		   "}\n"
		   "allow operator write ahu1.sp\n"
		   "allow operator write ahu2.sp\n");
	mb_write1(&m, 100, 450);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_MONITOR_DENY);
	assert_string_equal(w.d.reason, "write 45.0 degC to ahu1.sp above its limit 30.0");
	assert_int_equal(decide(&w, "ahu2", &op, &m, NOON), BMS_VERDICT_DENY);
	mb_write1(&m, 100, 250);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	w_close(&w);
	/* Site-wide monitor, one device back to enforce. */
	w_open(&w, "mode monitor\n"
		   "device ahu1 modbus 10.0.0.21 unit 1\n"
		   "device ahu2 modbus 10.0.0.22 unit 1 mode enforce\n"
		   "allow operator read ahu1\n"
		   "allow operator read ahu2\n");
	mb_write1(&m, 100, 450);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_MONITOR_DENY);
	assert_int_equal(decide(&w, "ahu2", &op, &m, NOON), BMS_VERDICT_DENY);
	w_close(&w);
}

/* ---- reload ---- */

static void test_reload_keeps_state(void **state)
{
	(void)state;
	struct mreq m;
	struct bms_identity op = cert("operator");
	struct bms_decision d;
	struct bms_policy_state *st = bms_policy_state_new(0);
	struct bms_policy *p1 = compile(HEAD "allow operator write ahu1.supply_air_setpoint limit 2 per hour\n");
	mb_write1(&m, 100, 200);
	bms_policy_decide(p1, st, &op, bms_policy_find_device_by_name(p1, "ahu1"), &m.r, NOON, &d);
	assert_int_equal(d.verdict, BMS_VERDICT_ALLOW);
	bms_policy_decide(p1, st, &op, bms_policy_find_device_by_name(p1, "ahu1"), &m.r, NOON + 1, &d);
	assert_int_equal(d.verdict, BMS_VERDICT_ALLOW);
	/* Reload: a new rule above moves ours down a line; its count survives. */
	struct bms_policy *p2 = compile(HEAD "allow operator read ahu1\n"
					     "allow operator write ahu1.supply_air_setpoint limit 2 per hour\n");
	bms_policy_free(p1);
	bms_policy_decide(p2, st, &op, bms_policy_find_device_by_name(p2, "ahu1"), &m.r, NOON + 2, &d);
	assert_int_equal(d.verdict, BMS_VERDICT_DENY);
	assert_int_equal(d.rule_line, 12);
	/* A reload that fails leaves the caller with its old policy: nothing is returned. */
	struct bms_diag dg;
	bms_diag_init(&dg);
	struct bms_policy *p3 = (struct bms_policy *)&dg;
	const char *bad = HEAD "allow operator wrte ahu1\nallow operator write ahu9\n";
	assert_int_equal(bms_policy_load_string("t.policy", bad, strlen(bad), &p3, &dg), -22);
	assert_null(p3);
	assert_int_equal(dg.errors, 2);
	bms_diag_free(&dg);
	/* A changed rule is a new rule: it starts counting afresh. */
	struct bms_policy *p4 = compile(HEAD "allow operator write ahu1.supply_air_setpoint limit 3 per hour\n");
	bms_policy_decide(p4, st, &op, bms_policy_find_device_by_name(p4, "ahu1"), &m.r, NOON + 3, &d);
	assert_int_equal(d.verdict, BMS_VERDICT_ALLOW);
	bms_policy_free(p2);
	bms_policy_free(p4);
	bms_policy_state_free(st);
}

/* ---- requests that cannot be checked ---- */

static void test_uncheckable_requests(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	/* The first anomaly the Modbus decoder names. */
	unsigned bit = 0;
	while (bit < 64 && bms_anomaly_name(BMS_PROTO_MODBUS, bit) == NULL)
		bit++;
	assert_true(bit < 64);
	const char *name = bms_anomaly_name(BMS_PROTO_MODBUS, bit);
	w_open(&w, HEAD "allow operator read ahu1\n");
	mb_read(&m, 3, BMS_SPACE_HOLDING_REGISTER, 100, 1);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	m.r.anomalies = UINT64_C(1) << bit;
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	char want[BMS_REASON_MAX];
	snprintf(want, sizeof(want), "the decoder flagged this request (%s): it cannot be checked", name);
	assert_string_equal(w.d.reason, want);
	m.r.anomalies = 0;
	m.r.ntargets = BMS_MAX_TARGETS + 1;
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "request has 33 targets; at most 32 can be checked");
	w_close(&w);
	/* Accepting that anomaly by name lets such a request reach the rules. */
	char text[2048];
	snprintf(text, sizeof(text), "%saccept anomaly modbus %s\nallow operator read ahu1\n", HEAD, name);
	w_open(&w, text);
	mb_read(&m, 3, BMS_SPACE_HOLDING_REGISTER, 100, 1);
	m.r.anomalies = UINT64_C(1) << bit;
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	w_close(&w);
}

/* ---- FC 23: a read half and a write half ---- */

static void test_read_write_multiple(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator");
	uint16_t fan = 50;
	w_open(&w, HEAD "allow operator read ahu1\n"
			"allow operator write ahu1.fan_speed\n");
	/* Reading 100-103 touches the setpoint's and the flow's ranges: a range constrains what is
	 * written, and this request writes only fan_speed, within its range. */
	mb_read_write(&m, 100, 4, 101, 1, &fan);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	assert_string_equal(w.d.rule_file, "t.policy");
	assert_int_equal(w.d.rule_line, 11);
	/* The write half is still held to its point's range, and the rule that allowed it is named. */
	fan = 101;
	mb_read_write(&m, 100, 4, 101, 1, &fan);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 101.0 % to ahu1.fan_speed above its limit 100.0");
	assert_int_equal(w.d.rule_line, 12);
	/* A write half no rule allows is a default deny: no rule is named, not the read half's. */
	uint16_t sp = 200;
	mb_read_write(&m, 100, 4, 100, 1, &sp);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_null(w.d.rule_file);
	assert_int_equal(w.d.rule_line, 0);
	assert_string_equal(w.d.reason, "no rule allows role operator to write ahu1.supply_air_setpoint");
	/* The same with a read half on registers without points: still no rule named. */
	mb_read_write(&m, 110, 2, 100, 1, &sp);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_null(w.d.rule_file);
	assert_int_equal(w.d.rule_line, 0);
	w_close(&w);

	/* The read half needs a read rule: a write rule does not let it read. */
	w_open(&w, HEAD "allow operator write ahu1\n");
	fan = 50;
	mb_read_write(&m, 100, 1, 101, 1, &fan);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_null(w.d.rule_file);
	assert_string_equal(w.d.reason, "no rule allows role operator to read ahu1.supply_air_setpoint");
	w_close(&w);

	/* An explicit deny of the write half is named as the deciding rule. */
	w_open(&w, HEAD "allow operator read ahu1\n"
			"deny operator write ahu1.fan_speed\n"
			"allow operator write ahu1\n");
	mb_read_write(&m, 100, 4, 101, 1, &fan);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_DENY);
	assert_int_equal(w.d.rule_line, 12);
	assert_string_equal(w.d.reason, "role operator may not write ahu1.fan_speed");
	w_close(&w);

	/* A rule by function code covers both halves; its value and min-interval bind the written
	 * registers only (the read half holds 0 at 100, outside 1..60, and is not a write). */
	w_open(&w, HEAD "allow operator fc 23 ahu1 holding 100-109 value 1..60 min-interval 30s\n");
	mb_read_write(&m, 100, 4, 105, 1, &fan);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON), BMS_VERDICT_ALLOW);
	/* The next one within 30 s: the written register's interval holds, the read half adds none. */
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON + 1000000), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write to holding 105 on ahu1 1.0 s after the last one; at least 30.0 s apart");
	mb_read_write(&m, 105, 1, 106, 1, &fan);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON + 2000000), BMS_VERDICT_ALLOW);
	fan = 61;
	mb_read_write(&m, 100, 4, 107, 1, &fan);
	assert_int_equal(decide(&w, "ahu1", &op, &m, NOON + 3000000), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write raw 61.0 to holding 107 on ahu1 outside the allowed 1.0..60.0");
	w_close(&w);
}

/* ---- identities ---- */

static void test_identities(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	w_open(&w, HEAD "role ops {\n"
			"  certificate-role operator\n"
			"  subject \"CN=head-end,O=Site\"\n"
			"  fingerprint 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
			"  address 192.168.10.0/24\n"
			"}\n"
			"allow ops read ahu1\n");
	mb_read(&m, 3, BMS_SPACE_HOLDING_REGISTER, 100, 1);
	struct bms_identity a = cert("operator");
	assert_int_equal(decide(&w, "ahu1", &a, &m, NOON), BMS_VERDICT_ALLOW);
	struct bms_identity b = cert("viewer");
	assert_int_equal(decide(&w, "ahu1", &b, &m, NOON), BMS_VERDICT_DENY);
	snprintf(b.subject, sizeof(b.subject), "CN=head-end,O=Site");
	assert_int_equal(decide(&w, "ahu1", &b, &m, NOON), BMS_VERDICT_ALLOW);
	struct bms_identity c = cert("");
	c.has_fingerprint = true;
	for (int i = 0; i < 32; i++)
		c.fingerprint[i] = (uint8_t)((i % 16) * 0x11);
	assert_int_equal(decide(&w, "ahu1", &c, &m, NOON), BMS_VERDICT_ALLOW);
	c.fingerprint[31] ^= 1;
	assert_int_equal(decide(&w, "ahu1", &c, &m, NOON), BMS_VERDICT_DENY);
	struct bms_identity l = legacy("192.168.10.77");
	assert_int_equal(decide(&w, "ahu1", &l, &m, NOON), BMS_VERDICT_ALLOW);
	l = legacy("192.168.11.77");
	assert_int_equal(decide(&w, "ahu1", &l, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "no rule allows address 192.168.11.77 to read ahu1.supply_air_setpoint");
	/* An authenticated client is never given a role for its address alone. */
	struct bms_identity t = legacy("192.168.10.77");
	t.authenticated = true;
	assert_int_equal(decide(&w, "ahu1", &t, &m, NOON), BMS_VERDICT_DENY);
	w_close(&w);
}

/* ---- identity limits: the same as the guard's (policies/identity.h), at the edge ---- */

/* Compiles and returns how many errors; the first error message in msg. */
static size_t compile_errors(const char *text, char *msg, size_t msglen)
{
	struct bms_diag d;
	bms_diag_init(&d);
	struct bms_policy *p = NULL;
	int rc = bms_policy_load_string("t.policy", text, strlen(text), &p, &d);
	size_t e = d.errors;
	assert_true(rc < 0 || e == 0);
	msg[0] = '\0';
	for (size_t i = 0; i < d.n; i++)
		if (d.v[i].level == BMS_DIAG_ERROR) {
			snprintf(msg, msglen, "%s", d.v[i].msg);
			break;
		}
	bms_diag_free(&d);
	bms_policy_free(p);
	return e;
}

static void test_identity_limits(void **state)
{
	(void)state;
	static char text[4096], msg[BMS_DIAG_MSG_MAX];
	char role[BMS_ROLE_LEN + 2], subj[BMS_SUBJECT_LEN + 2];
	struct mreq m;
	mb_read(&m, 3, BMS_SPACE_HOLDING_REGISTER, 100, 1);

	/* certificate-role: BMS_ROLE_LEN (64, what `bmsgate pki` issues) is accepted and matches */
	memset(role, 'r', BMS_ROLE_LEN);
	role[BMS_ROLE_LEN] = '\0';
	snprintf(text, sizeof(text), "%srole ops {\n  certificate-role %s\n}\nallow ops read ahu1\n", HEAD, role);
	struct world w;
	w_open(&w, text);
	struct bms_identity a = cert(role);
	assert_int_equal(strlen(a.role), BMS_ROLE_LEN);
	assert_int_equal(decide(&w, "ahu1", &a, &m, NOON), BMS_VERDICT_ALLOW);
	a.role[BMS_ROLE_LEN - 1] = 's';
	assert_int_equal(decide(&w, "ahu1", &a, &m, NOON), BMS_VERDICT_DENY);
	w_close(&w);
	/* ... and one more is refused, with its length */
	strcat(role, "r");
	snprintf(text, sizeof(text), "%srole ops {\n  certificate-role %s\n}\nallow ops read ahu1\n", HEAD, role);
	assert_int_equal(compile_errors(text, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "is 65 bytes, longer than 64"));

	/* a rule may name a certificate role directly: the same 64, one more is refused */
	role[BMS_ROLE_LEN] = '\0';
	snprintf(text, sizeof(text), "%sallow %s read ahu1\n", HEAD, role);
	w_open(&w, text);
	a = cert(role);
	assert_int_equal(decide(&w, "ahu1", &a, &m, NOON), BMS_VERDICT_ALLOW);
	w_close(&w);
	strcat(role, "r");
	snprintf(text, sizeof(text), "%sallow %s read ahu1\n", HEAD, role);
	assert_int_equal(compile_errors(text, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "at most 64 characters"));

	/* subject: BMS_SUBJECT_LEN (255) is accepted and matches only whole */
	memset(subj, 'x', BMS_SUBJECT_LEN);
	memcpy(subj, "CN=", 3);
	subj[BMS_SUBJECT_LEN] = '\0';
	snprintf(text, sizeof(text), "%srole ops {\n  subject \"%s\"\n}\nallow ops read ahu1\n", HEAD, subj);
	w_open(&w, text);
	struct bms_identity b = cert("");
	memcpy(b.subject, subj, BMS_SUBJECT_MAX);
	assert_int_equal(strlen(b.subject), BMS_SUBJECT_LEN);
	assert_int_equal(decide(&w, "ahu1", &b, &m, NOON), BMS_VERDICT_ALLOW);
	b.subject[BMS_SUBJECT_LEN - 1] = '\0';
	assert_int_equal(decide(&w, "ahu1", &b, &m, NOON), BMS_VERDICT_DENY);
	w_close(&w);
	/* ... and one more is refused */
	strcat(subj, "x");
	snprintf(text, sizeof(text), "%srole ops {\n  subject \"%s\"\n}\nallow ops read ahu1\n", HEAD, subj);
	assert_int_equal(compile_errors(text, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "longer than 255"));

	/* a subject with raw non-ASCII bytes can never match the guard's RFC 2253 form: a warning */
	struct bms_diag d;
	bms_diag_init(&d);
	struct bms_policy *p = NULL;
	const char *u = HEAD "role ops {\n  subject \"CN=M\xc3\xbcller\"\n}\nallow ops read ahu1\n";
	assert_int_equal(bms_policy_load_string("t.policy", u, strlen(u), &p, &d), 0);
	assert_int_equal(d.errors, 0);
	bool warned = false;
	for (size_t i = 0; i < d.n; i++)
		warned |= strstr(d.v[i].msg, "never matches") != NULL && strstr(d.v[i].msg, "\\C3\\BC") != NULL;
	assert_true(warned);
	bms_diag_free(&d);
	bms_policy_free(p);
	/* its escaped spelling is what a certificate of CN=Müller presents, and it is no warning */
	const char *e = HEAD "role ops {\n  subject \"CN=M\\C3\\BCller\"\n}\nallow ops read ahu1\n";
	bms_diag_init(&d);
	assert_int_equal(bms_policy_load_string("t.policy", e, strlen(e), &p, &d), 0);
	for (size_t i = 0; i < d.n; i++)
		assert_null(strstr(d.v[i].msg, "never matches"));
	bms_diag_free(&d);
	bms_policy_free(p);
}

static void test_find_device(void **state)
{
	(void)state;
	struct bms_policy *p = compile("device a modbus 10.0.0.21 unit 1-3\n"
				       "device b modbus 10.0.0.21:1502 unit 1\n"
				       "device v bacnet 10.0.0.43 instance 3003\n"
				       "allow x read a\nallow x read b\nallow x read v\n");
	struct sockaddr_in s;
	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	inet_pton(AF_INET, "10.0.0.21", &s.sin_addr);
	s.sin_port = htons(502);
	const struct bms_policy_device *d = bms_policy_find_device(p, BMS_PROTO_MODBUS, (struct sockaddr *)&s, 3);
	assert_non_null(d);
	assert_string_equal(bms_policy_device_name(d), "a");
	assert_null(bms_policy_find_device(p, BMS_PROTO_MODBUS, (struct sockaddr *)&s, 4));
	/* Port 0: "any port"; the first declaration at the address with that unit. */
	s.sin_port = 0;
	d = bms_policy_find_device(p, BMS_PROTO_MODBUS, (struct sockaddr *)&s, 1);
	assert_non_null(d);
	assert_string_equal(bms_policy_device_name(d), "a");
	/* An IPv4-mapped IPv6 address is the IPv4 device. */
	struct sockaddr_in6 m6;
	memset(&m6, 0, sizeof(m6));
	m6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.0.0.21", &m6.sin6_addr);
	m6.sin6_port = htons(502);
	d = bms_policy_find_device(p, BMS_PROTO_MODBUS, (struct sockaddr *)&m6, 2);
	assert_non_null(d);
	assert_string_equal(bms_policy_device_name(d), "a");
	s.sin_port = htons(1502);
	d = bms_policy_find_device(p, BMS_PROTO_MODBUS, (struct sockaddr *)&s, 1);
	assert_non_null(d);
	assert_string_equal(bms_policy_device_name(d), "b");
	inet_pton(AF_INET, "10.0.0.43", &s.sin_addr);
	s.sin_port = htons(47808);
	d = bms_policy_find_device(p, BMS_PROTO_BACNET, (struct sockaddr *)&s, BMS_POLICY_ANY_UNIT);
	assert_non_null(d);
	assert_string_equal(bms_policy_device_name(d), "v");
	assert_null(bms_policy_find_device(p, BMS_PROTO_BACNET, (struct sockaddr *)&s, 3004));
	assert_null(bms_policy_find_device(p, BMS_PROTO_MODBUS, (struct sockaddr *)&s, 1));
	assert_int_equal(strlen(bms_policy_hash(p)), 64);
	bms_policy_free(p);
}

static void test_resolved_identity(void **state)
{
	(void)state;
	struct mreq m;
	struct bms_decision d;
	struct bms_identity op = cert("operator");
	struct bms_policy *p1 = compile(HEAD "allow operator read ahu1\n");
	struct bms_policy *p2 = compile(HEAD "role operator {\n  subject \"CN=someone-else\"\n}\n"
					     "allow operator read ahu1\n");
	mb_read(&m, 3, BMS_SPACE_HOLDING_REGISTER, 100, 1);
	struct bms_policy_roles roles;
	bms_policy_resolve(p1, &op, &roles);
	bms_policy_decide_resolved(p1, NULL, &op, &roles, bms_policy_find_device_by_name(p1, "ahu1"), &m.r, NOON, &d);
	assert_int_equal(d.verdict, BMS_VERDICT_ALLOW);
	/* Resolved against p1, used with p2 (a reload where 'operator' now means another subject):
	 * the stale resolution is detected and the identity resolved again, so it is denied. */
	bms_policy_decide_resolved(p2, NULL, &op, &roles, bms_policy_find_device_by_name(p2, "ahu1"), &m.r, NOON, &d);
	assert_int_equal(d.verdict, BMS_VERDICT_DENY);
	bms_policy_free(p1);
	bms_policy_free(p2);
}

/* Every form of the grammar that compiles, each shown to mean what the documentation says. */
static void test_grammar_forms(void **state)
{
	(void)state;
	struct world w;
	struct mreq m;
	struct bms_identity op = cert("operator"), eng = cert("engineer");
	w_open(&w, "site \"Forms\"   # a comment after a statement\n"
		   "timezone UTC\n"
		   "device gw modbus [fd00::21]:1502 unit 1, 5, 7-9 mode enforce {\n"
		   "    point t1 input 30 float32 scale 2 offset -10 unit \"deg C\" range -5..95\n"
		   "    point door coil 3\n"
		   "}\n"
		   "device v bacnet 10.0.0.43:47809 instance 7 {\n"
		   "    point sp analog-value 1 relinquish-default range 10..30\n"
		   "}\n"
		   "schedule early weekdays 05:00-07:00, weekends 06:00-08:00\n"
		   "allow operator, engineer read on all\n"
		   "allow engineer function 8, 65-72 on gw\n"
		   "allow operator write gw coil 0-7 value on\n"
		   "allow operator write v analog-value * present-value\n"
		   "    priority 9..16\n"
		   "\n"
		   "    value 10..20\n"
		   "allow engineer write v object *\n"
		   "allow engineer write gw.* during early\n");
	const struct bms_policy_device *gw = bms_policy_find_device_by_name(w.p, "gw");
	struct sockaddr_in6 s6;
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "fd00::21", &s6.sin6_addr);
	s6.sin6_port = htons(1502);
	assert_ptr_equal(bms_policy_find_device(w.p, BMS_PROTO_MODBUS, (struct sockaddr *)&s6, 8), gw);
	assert_null(bms_policy_find_device(w.p, BMS_PROTO_MODBUS, (struct sockaddr *)&s6, 6));
	/* read on all: any device, any target */
	mb_read(&m, 4, BMS_SPACE_INPUT_REGISTER, 30, 2);
	assert_int_equal(decide(&w, "gw", &op, &m, NOON), BMS_VERDICT_ALLOW);
	/* function 8 and 65-72 for the engineer only */
	memset(&m, 0, sizeof(m));
	m.r.proto = BMS_PROTO_MODBUS;
	m.r.op = BMS_OP_MANAGEMENT;
	m.r.raw.modbus.fc = 8;
	assert_int_equal(decide(&w, "gw", &eng, &m, NOON), BMS_VERDICT_ALLOW);
	m.r.raw.modbus.fc = 70;
	assert_int_equal(decide(&w, "gw", &eng, &m, NOON), BMS_VERDICT_ALLOW);
	m.r.raw.modbus.fc = 73;
	assert_int_equal(decide(&w, "gw", &eng, &m, NOON), BMS_VERDICT_DENY);
	m.r.raw.modbus.fc = 8;
	assert_int_equal(decide(&w, "gw", &op, &m, NOON), BMS_VERDICT_DENY);
	/* raw coil range with value on: FC 5 on coil 3 on, then off, then coil 8 */
	mb_coil(&m, 3, true);
	assert_int_equal(decide(&w, "gw", &op, &m, NOON), BMS_VERDICT_ALLOW);
	mb_coil(&m, 3, false);
	assert_int_equal(decide(&w, "gw", &op, &m, NOON), BMS_VERDICT_DENY);
	mb_coil(&m, 8, true);
	assert_int_equal(decide(&w, "gw", &op, &m, NOON), BMS_VERDICT_DENY);
	/* a rule continued over lines, with a blank line between: priority and value both apply */
	bn_write(&m, 2, 99, 85, 15, 9, false);
	assert_int_equal(decide(&w, "v", &op, &m, NOON), BMS_VERDICT_ALLOW);
	bn_write(&m, 2, 99, 85, 21, 9, false);
	assert_int_equal(decide(&w, "v", &op, &m, NOON), BMS_VERDICT_DENY);
	bn_write(&m, 2, 99, 85, 15, 8, false);
	assert_int_equal(decide(&w, "v", &op, &m, NOON), BMS_VERDICT_DENY);
	/* the point on relinquish-default (property 104) holds its range under `object *` */
	bn_write(&m, 2, 1, 104, 31, 16, false);
	assert_int_equal(decide(&w, "v", &eng, &m, NOON), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 31.0 to v.sp above its limit 30.0");
	bn_write(&m, 2, 1, 104, 30, 16, false);
	assert_int_equal(decide(&w, "v", &eng, &m, NOON), BMS_VERDICT_ALLOW);
	/* float32 with scale and offset: raw 52.5 -> 52.5 * 2 - 10 = 95.0 allowed, 52.75 -> 95.5 not */
	w_close(&w);
	w_open(&w, "device gw modbus 10.0.0.1 unit 1 {\n"
		   "    point t1 holding 30 float32 scale 2 offset -10 unit \"deg C\" range -5..95\n"
		   "}\n"
		   "allow engineer write gw.* during weekdays 05:00-07:00, weekends 06:00-08:00\n");
	float f = 52.5f;
	uint32_t u;
	memcpy(&u, &f, 4);
	uint16_t v[2] = { (uint16_t)(u >> 16), (uint16_t)u };
	mb_write(&m, 30, 2, v);
	assert_int_equal(decide(&w, "gw", &eng, &m, utc_us(2026, 1, 14, 6, 0, 0)), BMS_VERDICT_ALLOW); /* Wed 06:00 */
	assert_int_equal(decide(&w, "gw", &eng, &m, utc_us(2026, 1, 14, 7, 0, 0)), BMS_VERDICT_DENY);  /* Wed 07:00 */
	assert_int_equal(decide(&w, "gw", &eng, &m, utc_us(2026, 1, 17, 7, 30, 0)), BMS_VERDICT_ALLOW); /* Sat 07:30 */
	f = 52.75f;
	memcpy(&u, &f, 4);
	v[0] = (uint16_t)(u >> 16), v[1] = (uint16_t)u;
	mb_write(&m, 30, 2, v);
	assert_int_equal(decide(&w, "gw", &eng, &m, utc_us(2026, 1, 14, 6, 0, 0)), BMS_VERDICT_DENY);
	assert_string_equal(w.d.reason, "write 95.5 deg C to gw.t1 above its limit 95.0");
	w_close(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_default_deny),
		cmocka_unit_test(test_point_range_edges_engineering),
		cmocka_unit_test(test_rule_value_range_edges),
		cmocka_unit_test(test_raw_range_edges),
		cmocka_unit_test(test_deny_overlap_and_multi_point_write),
		cmocka_unit_test(test_float32_and_partial),
		cmocka_unit_test(test_coil_values),
		cmocka_unit_test(test_bacnet_priority_and_range),
		cmocka_unit_test(test_bacnet_service_rule),
		cmocka_unit_test(test_window_across_midnight),
		cmocka_unit_test(test_window_across_dst_berlin),
		cmocka_unit_test(test_window_across_dst_new_york),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_min_interval),
		cmocka_unit_test(test_monitor_mode),
		cmocka_unit_test(test_reload_keeps_state),
		cmocka_unit_test(test_uncheckable_requests),
		cmocka_unit_test(test_read_write_multiple),
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_identity_limits),
		cmocka_unit_test(test_find_device),
		cmocka_unit_test(test_resolved_identity),
		cmocka_unit_test(test_grammar_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
