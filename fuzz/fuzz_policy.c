/* fuzz/fuzz_policy.c: the policy compiler over arbitrary text. Whatever compiles
 * is then asked a few decisions, so the evaluator meets every shape the
 * compiler lets through. The compiler gets its text from a source over the
 * input and touches no file: the input up to its first NUL byte is the policy,
 * the bytes after it are the TZif data of any zone it names (so the time-zone
 * parser is fuzzed too); `include` is refused. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policies/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem_input {
	const char *text, *zone;
	size_t text_len, zone_len;
};

static int mem_read(void *ctx, const char *from, const char *name, struct bms_policy_text *out, char *err,
		    size_t errlen)
{
	const struct mem_input *in = ctx;
	if (from != NULL) {
		snprintf(err, errlen, "include is not available here (policy text given in memory)");
		return BMS_POLICY_SOURCE_MISSING;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->text = in->text;
	out->len = in->text_len;
	return BMS_POLICY_SOURCE_OK;
}

static int mem_zone(void *ctx, const char *zone, struct bms_policy_text *out, char *err, size_t errlen)
{
	const struct mem_input *in = ctx;
	if (in->zone == NULL) {
		snprintf(err, errlen, "unknown time zone '%s' (none in memory)", zone);
		return BMS_POLICY_SOURCE_MISSING;
	}
	snprintf(out->name, sizeof(out->name), "<input>/%s", zone);
	out->text = in->zone;
	out->len = in->zone_len;
	return BMS_POLICY_SOURCE_OK;
}

static void mem_release(void *ctx, struct bms_policy_text *t)
{
	(void)ctx;
	(void)t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bms_diag d;
	struct bms_policy *p = NULL;
	bms_diag_init(&d);
	struct mem_input in = { .text = (const char *)data, .text_len = size };
	const uint8_t *nul = memchr(data, 0, size);
	if (nul != NULL) {
		in.text_len = (size_t)(nul - data);
		in.zone = (const char *)nul + 1;
		in.zone_len = size - in.text_len - 1;
	}
	const struct bms_policy_source src = { .ctx = &in, .read = mem_read, .zone = mem_zone, .release = mem_release };
	const char *name = "fuzz.policy";
	if (bms_policy_compile(&src, &name, 1, &p, &d) == 0) {
		static struct bms_policy_state *st;
		if (st == NULL)
			st = bms_policy_state_new(256);
		struct bms_identity who;
		memset(&who, 0, sizeof(who));
		who.authenticated = true;
		memcpy(who.role, "operator", 9);
		struct bms_request req;
		memset(&req, 0, sizeof(req));
		req.dir = BMS_DIR_REQUEST;
		req.ntargets = 1;
		req.targets[0].count = 2;
		req.targets[0].array_index = BMS_NO_INDEX;
		uint8_t regs[4] = { 0x41, 0xc4, 0x00, 0x00 };
		for (size_t i = 0; i < bms_policy_device_count(p) && i < 8; i++) {
			const struct bms_policy_device *dev = bms_policy_device_at(p, i);
			req.proto = (uint8_t)bms_policy_device_proto(dev);
			for (unsigned op = BMS_OP_READ; op <= BMS_OP_WRITE; op++) {
				req.op = (uint8_t)op;
				req.raw.modbus.fc = op == BMS_OP_WRITE ? 16 : 3;
				req.targets[0].space = req.proto == BMS_PROTO_MODBUS ? BMS_SPACE_HOLDING_REGISTER
										     : BMS_SPACE_BACNET_OBJECT;
				req.targets[0].start = 100;
				req.targets[0].object_type = 2;
				req.targets[0].instance = 1;
				req.targets[0].property = 85;
				req.targets[0].data = op == BMS_OP_WRITE ? regs : NULL;
				req.targets[0].data_len = op == BMS_OP_WRITE ? 4 : 0;
				req.targets[0].has_value = op == BMS_OP_WRITE;
				req.targets[0].value.type = BMS_VAL_REAL;
				req.targets[0].value.d = 24.5;
				struct bms_decision dec;
				bms_policy_decide(p, st, &who, dev, &req, 1768392000000000LL, &dec);
			}
		}
		bms_policy_free(p);
	}
	bms_diag_free(&d);
	return 0;
}
