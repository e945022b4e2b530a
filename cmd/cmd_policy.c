/* cmd/cmd_policy.c: `bmsgate policy check|explain|diff`. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load/policy_files.h"
#include "cmd/cmds.h"
#include "parsers/bacnet.h"
#include "parsers/modbus.h"
#include "policies/policy_int.h"
#include "policies/policy_diff.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bmsgate policy check FILE...\n"
		"       bmsgate policy explain FILE... [--role R | --cert-role R | --subject S | --fingerprint F |\n"
		"                                       --address A] [--time 'YYYY-MM-DD HH:MM' | --time @UNIX] REQUEST\n"
		"       bmsgate policy diff OLD NEW\n"
		"\n"
		"check:   compiles the files, prints every error and warning as file:line:col with the source line and\n"
		"         a caret under the word; exit 0 clean, 1 errors\n"
		"explain: decides one request and prints the decision, the rule and the reason; exit 0 allow,\n"
		"         1 deny or monitor-deny, 2 bad usage. REQUEST is one argument, for example\n"
		"           'write ahu1.supply_air_setpoint 24.5'\n"
		"           'read vav3.zone_setpoint'\n"
		"           'modbus fc 6 unit 1 addr 100 value 245 [device ahu1]'\n"
		"           'bacnet writeProperty analog-value 1 present-value 21.5 priority 8 [device vav3]'\n"
		"         --time is the site's local time (its `timezone`); the default is now.\n"
		"diff:    what NEW allows that OLD did not and the reverse, per role, device and point\n");
}

static int load_or_print(const char *const *files, size_t n, struct bms_policy **p)
{
	struct bms_diag d;
	bms_diag_init(&d);
	int rc = bms_policy_load(files, n, p, &d);
	if (rc < 0)
		bms_diag_print_source(&d, stderr);
	if (rc < 0)
		fprintf(stderr, "policy: %zu error%s, %zu warning%s\n", d.errors, d.errors == 1 ? "" : "s", d.warnings,
			d.warnings == 1 ? "" : "s");
	bms_diag_free(&d);
	return rc;
}

static int cmd_check(int argc, char **argv)
{
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	struct bms_diag d;
	bms_diag_init(&d);
	struct bms_policy *p = NULL;
	int rc = bms_policy_load((const char *const *)argv, (size_t)argc, &p, &d);
	bms_diag_print_source(&d, stdout);
	if (rc == 0) {
		size_t npoints = p->npoints;
		printf("policy OK: %u device%s, %zu point%s, %u role%s, %u rule%s, %zu warning%s\n", p->ndevices,
		       p->ndevices == 1 ? "" : "s", npoints, npoints == 1 ? "" : "s", p->nroles,
		       p->nroles == 1 ? "" : "s", p->nrules, p->nrules == 1 ? "" : "s", d.warnings,
		       d.warnings == 1 ? "" : "s");
	} else {
		printf("policy has %zu error%s, %zu warning%s\n", d.errors, d.errors == 1 ? "" : "s", d.warnings,
		       d.warnings == 1 ? "" : "s");
	}
	bms_policy_free(p);
	bms_diag_free(&d);
	return rc == 0 ? 0 : 1;
}

/* ---- explain: a request written the way staff speak ---- */

struct req_buf {
	struct bms_request req;
	uint8_t data[256];
	const struct bms_policy_device *dev;
};

static int fail_msg(const char *fmt, const char *a)
{
	fprintf(stderr, "policy explain: ");
	fprintf(stderr, fmt, a);
	fputc('\n', stderr);
	return -1;
}

static const struct pol_point *find_point(const struct bms_policy *p, const char *dotted,
					  const struct bms_policy_device **dev)
{
	char name[POL_FULL_MAX];
	snprintf(name, sizeof(name), "%s", dotted);
	char *dot = strchr(name, '.');
	if (dot == NULL)
		return NULL;
	*dot = '\0';
	*dev = bms_policy_find_device_by_name(p, name);
	if (*dev == NULL)
		return NULL;
	for (uint32_t i = (*dev)->point_first; i < (*dev)->point_first + (*dev)->npoints; i++)
		if (strcmp(p->points[i].name, dot + 1) == 0)
			return &p->points[i];
	return NULL;
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

/* Engineering value -> the raw register words a device would receive. */
static int encode_point_value(const struct pol_point *pt, double v, uint8_t *out)
{
	double raw = (v - pt->offset) / pt->scale;
	switch (pt->dtype) {
	case POL_T_FLOAT32: {
		float f = (float)raw;
		uint32_t u;
		memcpy(&u, &f, 4);
		put16(out, (uint16_t)(u >> 16));
		put16(out + 2, (uint16_t)u);
		return 0;
	}
	case POL_T_INT16:
		if (lround(raw) < -32768 || lround(raw) > 32767)
			return -1;
		put16(out, (uint16_t)(int16_t)lround(raw));
		return 0;
	case POL_T_UINT32:
	case POL_T_INT32: {
		long long r = llround(raw);
		if (pt->dtype == POL_T_UINT32 ? (r < 0 || r > 4294967295LL) : (r < INT32_MIN || r > INT32_MAX))
			return -1;
		uint32_t u = (uint32_t)r;
		put16(out, (uint16_t)(u >> 16));
		put16(out + 2, (uint16_t)u);
		return 0;
	}
	default:
		if (lround(raw) < 0 || lround(raw) > 65535)
			return -1;
		put16(out, (uint16_t)lround(raw));
		return 0;
	}
}

static enum bms_op fc_op(unsigned fc)
{
	switch (fc) {
	case 1: case 2: case 3: case 4: case 24: return BMS_OP_READ;
	case 5: case 6: case 15: case 16: case 22: case 23: return BMS_OP_WRITE;
	case 20: case 21: return BMS_OP_FILE;
	case 17: case 43: return BMS_OP_DISCOVERY;
	case 7: case 8: case 11: case 12: return BMS_OP_MANAGEMENT;
	}
	if ((fc >= 65 && fc <= 72) || (fc >= 100 && fc <= 110))
		return BMS_OP_PRIVATE;
	return BMS_OP_UNKNOWN;
}

static enum bms_op service_op(bool confirmed, unsigned s)
{
	if (!confirmed) {
		switch (s) {
		case 0: case 1: case 7: case 8: case 13: case 14: return BMS_OP_DISCOVERY;
		case 6: case 9: return BMS_OP_MANAGEMENT;
		case 10: return BMS_OP_WRITE;
		case 4: return BMS_OP_PRIVATE;
		case 5: return BMS_OP_COMMAND;
		default: return BMS_OP_READ;
		}
	}
	switch (s) {
	case 12: case 13: case 14: case 26: case 5: case 28: case 30: case 3: case 4: case 29: case 33:
		return BMS_OP_READ;
	case 15: case 16: case 8: case 9: return BMS_OP_WRITE;
	case 6: case 7: return BMS_OP_FILE;
	case 10: case 11: case 17: case 20: return BMS_OP_MANAGEMENT;
	case 18: return BMS_OP_PRIVATE;
	default: return BMS_OP_COMMAND;
	}
}

static int parse_num(const char *s, double *v)
{
	char *e;
	*v = strtod(s, &e);
	return (*e == '\0' && e != s && isfinite(*v)) ? 0 : -1;
}

/* Build the request model the decoders would produce for `text`. */
static int build_request(const struct bms_policy *p, const char *text, struct req_buf *rb)
{
	char copy[512];
	char *w[32];
	int n = 0;
	snprintf(copy, sizeof(copy), "%s", text);
	for (char *tok = strtok(copy, " \t"); tok != NULL && n < 32; tok = strtok(NULL, " \t"))
		w[n++] = tok;
	memset(rb, 0, sizeof(*rb));
	struct bms_request *r = &rb->req;
	r->dir = BMS_DIR_REQUEST;
	struct bms_target *t = &r->targets[0];
	t->array_index = BMS_NO_INDEX;
	if (n == 0)
		return fail_msg("empty request%s", "");
	if (strcmp(w[0], "read") == 0 || strcmp(w[0], "write") == 0) {
		bool wr = w[0][0] == 'w';
		if (n < 2)
			return fail_msg("say which point: %s DEVICE.POINT", w[0]);
		const struct pol_point *pt = find_point(p, w[1], &rb->dev);
		if (pt == NULL)
			return fail_msg("no point '%s' in this policy (write it as device.point)", w[1]);
		r->proto = rb->dev->proto;
		r->op = wr ? BMS_OP_WRITE : BMS_OP_READ;
		r->ntargets = 1;
		t->space = pt->space;
		int i = 2;
		if (pt->space == BMS_SPACE_BACNET_OBJECT) {
			t->object_type = pt->object_type;
			t->instance = pt->instance;
			t->property = pt->property;
			r->raw.bacnet.has_apdu = 1;
			r->raw.bacnet.pdu_type = 0;
			r->raw.bacnet.has_service = 1;
			r->raw.bacnet.service = wr ? 15 : 12;
			if (wr) {
				if (i >= n)
					return fail_msg("say the value to write%s", "");
				if (strcmp(w[i], "null") == 0 || strcmp(w[i], "relinquish") == 0) {
					t->value.type = BMS_VAL_NULL;
				} else if (parse_num(w[i], &t->value.d) == 0) {
					t->value.type = BMS_VAL_REAL;
				} else if (strcmp(w[i], "active") == 0 || strcmp(w[i], "inactive") == 0) {
					t->value.type = BMS_VAL_ENUM;
					t->value.u = w[i][0] == 'a';
				} else {
					return fail_msg("'%s' is not a number, active, inactive or null", w[i]);
				}
				t->has_value = true;
				i++;
			}
			if (i + 1 < n && strcmp(w[i], "priority") == 0) {
				t->priority = (uint8_t)atoi(w[i + 1]);
				i += 2;
			}
		} else {
			t->start = pt->start;
			t->count = pt->count;
			bool bit = pt->dtype == POL_T_BIT;
			unsigned fc = wr ? (bit ? 5 : pt->count == 1 ? 6 : 16)
					 : (pt->space == BMS_SPACE_COIL ? 1 : pt->space == BMS_SPACE_DISCRETE_INPUT ? 2
					    : pt->space == BMS_SPACE_HOLDING_REGISTER ? 3 : 4);
			r->raw.modbus.fc = (uint8_t)fc;
			r->raw.modbus.addr = (uint16_t)pt->start;
			r->raw.modbus.qty = (uint16_t)pt->count;
			for (int u = 0; u < 256; u++)
				if (rb->dev->units[u / 64] >> (u % 64) & 1) {
					r->unit = (uint32_t)u;
					break;
				}
			r->raw.modbus.unit = (uint8_t)r->unit;
			if (wr) {
				if (i >= n)
					return fail_msg("say the value to write%s", "");
				double v;
				if (bit) {
					bool on = strcmp(w[i], "on") == 0 || strcmp(w[i], "1") == 0 || strcmp(w[i], "true") == 0;
					bool off = strcmp(w[i], "off") == 0 || strcmp(w[i], "0") == 0 || strcmp(w[i], "false") == 0;
					if (!on && !off)
						return fail_msg("'%s' is not on or off", w[i]);
					t->has_value = true;
					t->value.type = BMS_VAL_BOOL;
					t->value.b = on;
				} else {
					if (parse_num(w[i], &v) < 0)
						return fail_msg("'%s' is not a number", w[i]);
					if (encode_point_value(pt, v, rb->data) < 0)
						return fail_msg("%s does not fit the point's register type", w[i]);
					t->data = rb->data;
					t->data_len = (uint16_t)(2 * pt->count);
					if (pt->count == 1) {
						t->has_value = true;
						t->value.type = BMS_VAL_UNSIGNED;
						t->value.u = (uint64_t)(rb->data[0] << 8 | rb->data[1]);
					}
				}
				i++;
			}
		}
		if (i < n)
			return fail_msg("unexpected '%s' at the end of the request", w[i]);
		return 0;
	}
	if (strcmp(w[0], "modbus") == 0) {
		long fc = -1, unit = -1, addr = 0, count = 1;
		bool has_value = false;
		double value = 0;
		const char *devname = NULL;
		for (int i = 1; i < n; i++) {
			const char *k = w[i], *v = i + 1 < n ? w[i + 1] : NULL;
			if (v == NULL)
				return fail_msg("'%s' needs a value", k);
			if (strcmp(k, "fc") == 0 || strcmp(k, "function") == 0)
				fc = strtol(v, NULL, 0);
			else if (strcmp(k, "unit") == 0)
				unit = strtol(v, NULL, 0);
			else if (strcmp(k, "addr") == 0 || strcmp(k, "address") == 0)
				addr = strtol(v, NULL, 0);
			else if (strcmp(k, "count") == 0)
				count = strtol(v, NULL, 0);
			else if (strcmp(k, "value") == 0) {
				if (parse_num(v, &value) < 0)
					return fail_msg("'%s' is not a number", v);
				has_value = true;
			} else if (strcmp(k, "device") == 0)
				devname = v;
			else
				return fail_msg("unknown word '%s' (fc, unit, addr, count, value, device)", k);
			i++;
		}
		/* Counts past what Modbus allows are let through to the decoder, which says what is wrong. */
		if (fc < 1 || fc > 127 || addr < 0 || addr > 65535 || count < 1 || count > 2000 || unit > 255 ||
		    (has_value && count > 123))
			return fail_msg("give fc 1..127, addr 0..65535, count 1..2000 (1..123 with a value), unit 0..255%s", "");
		if (devname != NULL) {
			rb->dev = bms_policy_find_device_by_name(p, devname);
			if (rb->dev == NULL)
				return fail_msg("no device '%s' in this policy", devname);
		} else {
			for (size_t d = 0; d < bms_policy_device_count(p); d++) {
				const struct bms_policy_device *dv = bms_policy_device_at(p, d);
				if (dv->proto != BMS_PROTO_MODBUS || (unit >= 0 && !(dv->units[unit / 64] >> (unit % 64) & 1)))
					continue;
				if (rb->dev != NULL)
					return fail_msg("several Modbus devices have this unit id: add 'device NAME'%s", "");
				rb->dev = dv;
			}
			if (rb->dev == NULL)
				return fail_msg("no Modbus device in this policy has this unit id%s", "");
		}
		if (unit < 0)
			for (int u = 0; u < 256; u++)
				if (rb->dev->units[u / 64] >> (u % 64) & 1) {
					unit = u;
					break;
				}
		r->proto = BMS_PROTO_MODBUS;
		r->unit = (uint32_t)unit;
		r->op = (uint8_t)fc_op((unsigned)fc);
		r->raw.modbus.fc = (uint8_t)fc;
		r->raw.modbus.unit = (uint8_t)unit;
		r->raw.modbus.addr = (uint16_t)addr;
		r->raw.modbus.qty = (uint16_t)count;
		int space = fc == 1 || fc == 5 || fc == 15 ? BMS_SPACE_COIL : fc == 2 ? BMS_SPACE_DISCRETE_INPUT
			  : fc == 3 || fc == 6 || fc == 16 || fc == 22 || fc == 23 ? BMS_SPACE_HOLDING_REGISTER
			  : fc == 4 ? BMS_SPACE_INPUT_REGISTER : BMS_SPACE_NONE;
		if (space != BMS_SPACE_NONE) {
			r->ntargets = 1;
			t->space = (uint8_t)space;
			t->start = (uint32_t)addr;
			t->count = fc == 5 || fc == 6 ? 1 : (uint32_t)count;
			if (has_value && r->op == BMS_OP_WRITE) {
				if (space == BMS_SPACE_COIL) {
					for (uint32_t b = 0; b < t->count; b++)
						if (value != 0)
							rb->data[b / 8] |= (uint8_t)(1u << (b % 8));
					t->data = rb->data;
					t->data_len = (uint16_t)((t->count + 7) / 8);
				} else {
					if (value < 0 || value > 65535)
						return fail_msg("a raw register value is 0..65535%s", "");
					for (uint32_t k = 0; k < t->count; k++)
						put16(rb->data + 2 * k, (uint16_t)value);
					t->data = rb->data;
					t->data_len = (uint16_t)(2 * t->count);
				}
				if (t->count == 1) {
					t->has_value = true;
					t->value.type = BMS_VAL_UNSIGNED;
					t->value.u = (uint64_t)value;
				}
			}
		}
		return 0;
	}
	if (strcmp(w[0], "bacnet") == 0) {
		if (n < 2)
			return fail_msg("say the BACnet service%s", "");
		int64_t sv = pol_word_find(pol_confirmed_services, w[1]);
		bool confirmed = sv >= 0;
		if (!confirmed)
			sv = pol_word_find(pol_unconfirmed_services, w[1]);
		if (sv < 0)
			return fail_msg("unknown BACnet service '%s'", w[1]);
		r->proto = BMS_PROTO_BACNET;
		r->op = (uint8_t)service_op(confirmed, (unsigned)sv);
		r->raw.bacnet.has_apdu = 1;
		r->raw.bacnet.pdu_type = confirmed ? 0 : 1;
		r->raw.bacnet.has_service = 1;
		r->raw.bacnet.service = (uint8_t)sv;
		const char *devname = NULL;
		int i = 2;
		if (i + 1 < n && pol_word_find(pol_object_types, w[i]) >= 0) {
			r->ntargets = 1;
			t->space = BMS_SPACE_BACNET_OBJECT;
			t->object_type = (uint16_t)pol_word_find(pol_object_types, w[i]);
			t->instance = (uint32_t)strtoul(w[i + 1], NULL, 10);
			t->property = 85;
			i += 2;
			if (i < n && pol_word_find(pol_properties, w[i]) >= 0)
				t->property = (uint32_t)pol_word_find(pol_properties, w[i++]);
			if (i < n && strcmp(w[i], "priority") != 0 && strcmp(w[i], "device") != 0) {
				if (strcmp(w[i], "null") == 0)
					t->value.type = BMS_VAL_NULL;
				else if (parse_num(w[i], &t->value.d) == 0)
					t->value.type = BMS_VAL_REAL;
				else
					return fail_msg("'%s' is not a number or null", w[i]);
				t->has_value = true;
				i++;
			}
		}
		for (; i < n; i += 2) {
			if (i + 1 >= n)
				return fail_msg("'%s' needs a value", w[i]);
			if (strcmp(w[i], "priority") == 0)
				t->priority = (uint8_t)atoi(w[i + 1]);
			else if (strcmp(w[i], "device") == 0)
				devname = w[i + 1];
			else
				return fail_msg("unexpected '%s' (priority N, device NAME)", w[i]);
		}
		if (devname != NULL) {
			rb->dev = bms_policy_find_device_by_name(p, devname);
			if (rb->dev == NULL)
				return fail_msg("no device '%s' in this policy", devname);
		} else {
			for (size_t d = 0; d < bms_policy_device_count(p); d++) {
				const struct bms_policy_device *dv = bms_policy_device_at(p, d);
				if (dv->proto != BMS_PROTO_BACNET)
					continue;
				if (rb->dev != NULL)
					return fail_msg("several BACnet devices: add 'device NAME'%s", "");
				rb->dev = dv;
			}
			if (rb->dev == NULL)
				return fail_msg("no BACnet device in this policy%s", "");
		}
		return 0;
	}
	return fail_msg("a request starts with read, write, modbus or bacnet, not '%s'", w[0]);
}

/* The Modbus request explained is the one the gateway would see: the frame a client
 * would send is built and run through the real decoder (parsers/modbus.c), so
 * op classes, targets and anomalies are the decoder's, not this file's guess. */
static int through_decoder(struct req_buf *rb)
{
	static uint8_t adu[MODBUS_MAX_ADU];
	struct bms_request *r = &rb->req;
	const struct bms_target *t = &r->targets[0];
	struct modbus_request_spec spec = {
		.fc = r->raw.modbus.fc,
		.start = (uint16_t)t->start,
		.count = (uint16_t)t->count,
		.coil_on = t->value.b,
		.data = t->data,
		.data_len = t->data ? t->data_len : 0,
	};
	size_t n = 0;
	int rc = modbus_encode_request(0x0001, (uint8_t)r->unit, &spec, adu, sizeof(adu), &n);
	if (rc == -EINVAL)
		return 0; /* another function code, or nothing to encode it from: explained as built */
	if (rc < 0)
		return fail_msg("cannot build the Modbus frame for this request%s", "");
	struct bms_request dec;
	if (modbus_decode(adu, n, BMS_DIR_REQUEST, &dec) == BMS_NEED_MORE)
		return fail_msg("the Modbus decoder wants more bytes for this request%s", "");
	*r = dec;
	return 0;
}

/* The same for BACnet ReadProperty and WriteProperty, built by the parsers' own request
 * encoders (parsers/bacnet_encode.c). Other services are explained as built. */
static int through_bacnet_decoder(struct req_buf *rb)
{
	static uint8_t d[BACNET_MAX_DATAGRAM];
	struct bms_request *r = &rb->req;
	const struct bms_target *t = &r->targets[0];
	uint8_t svc = r->raw.bacnet.service;
	if (r->raw.bacnet.pdu_type != BACNET_PDU_CONFIRMED ||
	    (svc != BACNET_SVC_READ_PROPERTY && svc != BACNET_SVC_WRITE_PROPERTY) || r->ntargets != 1)
		return 0;
	struct bacnet_property_ref ref = {
		.object_type = t->object_type,
		.instance = t->instance,
		.property = t->property,
		.array_index = BMS_NO_INDEX,
	};
	size_t n = 0;
	int rc = svc == BACNET_SVC_READ_PROPERTY
			 ? bacnet_encode_read_property(1, &ref, d, sizeof(d), &n)
			 : t->has_value ? bacnet_encode_write_property(1, &ref, &t->value, t->priority, d, sizeof(d), &n)
					: -EINVAL;
	if (rc == -EINVAL)
		return 0; /* a value with no primitive encoding: explained as built */
	if (rc < 0)
		return fail_msg("cannot build the BACnet frame for this request%s", "");
	struct bms_request dec;
	/* Malformed or not, this is what the gateway would decide on (its anomalies deny it). */
	enum bms_parse_result pr = bacnet_decode(d, n, &dec);
	(void)pr;
	*r = dec;
	return 0;
}

/* "2026-03-29 02:30" (site time), "2026-03-29T02:30:00", or "@1774747800" (Unix seconds). */
static int parse_time(const struct bms_policy *p, const char *s, int64_t *us)
{
	if (s[0] == '@') {
		char *e;
		long long v = strtoll(s + 1, &e, 10);
		if (*e != '\0')
			return -1;
		*us = v * 1000000;
		return 0;
	}
	int Y, M, D, h, m, sec = 0;
	char sep;
	if (sscanf(s, "%d-%d-%d%c%d:%d:%d", &Y, &M, &D, &sep, &h, &m, &sec) < 6 || (sep != ' ' && sep != 'T'))
		return -1;
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec };
	int64_t local = (int64_t)timegm(&tm);
	int64_t guess = local - pol_tz_offset(&p->tz, local);
	*us = (local - pol_tz_offset(&p->tz, guess)) * 1000000;
	return 0;
}

static int cmd_explain(int argc, char **argv)
{
	const char *files[POL_MAX_FILES];
	size_t nfiles = 0;
	const char *role = NULL, *cert_role = NULL, *subject = NULL, *fp = NULL, *addr = NULL, *when = NULL;
	const char *request = NULL;
	for (int i = 0; i < argc; i++) {
		const char **opt = strcmp(argv[i], "--role") == 0 ? &role : strcmp(argv[i], "--cert-role") == 0 ? &cert_role
			: strcmp(argv[i], "--subject") == 0 ? &subject : strcmp(argv[i], "--fingerprint") == 0 ? &fp
			: strcmp(argv[i], "--address") == 0 ? &addr : strcmp(argv[i], "--time") == 0 ? &when : NULL;
		if (opt != NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "policy explain: %s needs a value\n", argv[i]);
				return 2;
			}
			*opt = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			fprintf(stderr, "policy explain: unknown option %s\n", argv[i]);
			return 2;
		} else if (nfiles < POL_MAX_FILES) {
			files[nfiles++] = argv[i];
		}
	}
	if (nfiles < 2) {
		usage(stderr);
		return 2;
	}
	request = files[--nfiles];
	if ((role != NULL) + (cert_role != NULL || subject != NULL || fp != NULL) + (addr != NULL) != 1) {
		fprintf(stderr, "policy explain: say who asks: --role R, or --cert-role/--subject/--fingerprint, or "
				"--address A\n");
		return 2;
	}
	/* Never cut: a cut subject or role would explain somebody else's identity. */
	if (subject != NULL && strlen(subject) > BMS_SUBJECT_LEN) {
		fprintf(stderr, "policy explain: --subject '%s' is %zu bytes, longer than %d: a guard refuses such a certificate\n",
			subject, strlen(subject), BMS_SUBJECT_LEN);
		return 2;
	}
	if (cert_role != NULL && strlen(cert_role) > BMS_ROLE_LEN) {
		fprintf(stderr, "policy explain: --cert-role '%s' is %zu bytes, longer than %d: a guard reads it as no role\n",
			cert_role, strlen(cert_role), BMS_ROLE_LEN);
		return 2;
	}
	struct bms_policy *p = NULL;
	if (load_or_print(files, nfiles, &p) < 0)
		return 2;
	int rc = 2;
	int64_t now;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	if (when != NULL && parse_time(p, when, &now) < 0) {
		fprintf(stderr, "policy explain: --time '%s' is not 'YYYY-MM-DD HH:MM' or @UNIXSECONDS\n", when);
		goto out;
	}
	static struct req_buf rb;
	if (build_request(p, request, &rb) < 0 || (rb.req.proto == BMS_PROTO_MODBUS && through_decoder(&rb) < 0) ||
	    (rb.req.proto == BMS_PROTO_BACNET && through_bacnet_decoder(&rb) < 0))
		goto out;
	struct bms_policy_state *st = bms_policy_state_new(64);
	struct bms_decision dec;
	if (st == NULL)
		goto out;
	if (role != NULL) {
		int32_t r = pol_role_find(p, role);
		if (r < 0) {
			const char *names[POL_MAX_ROLES];
			for (uint32_t k = 0; k < p->nroles; k++)
				names[k] = p->roles[k].name;
			const char *best = bms_suggest(role, names, p->nroles);
			fprintf(stderr, "policy explain: no role '%s' in this policy%s%s%s\n", role,
				best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
			bms_policy_state_free(st);
			goto out;
		}
		uint64_t roles[POL_ROLE_WORDS] = { 0 };
		roles[r / 64] |= UINT64_C(1) << (r % 64);
		char label[96];
		snprintf(label, sizeof(label), "role %s", p->roles[r].name);
		pol_decide_roles(p, st, roles, label, rb.dev, &rb.req, now, &dec);
	} else {
		struct bms_identity who;
		memset(&who, 0, sizeof(who));
		if (addr != NULL) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&who.addr;
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&who.addr;
			if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
				s4->sin_family = AF_INET;
				who.addr_len = sizeof(*s4);
			} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
				s6->sin6_family = AF_INET6;
				who.addr_len = sizeof(*s6);
			} else {
				fprintf(stderr, "policy explain: '%s' is not an IP address\n", addr);
				bms_policy_state_free(st);
				goto out;
			}
		} else {
			who.authenticated = true;
			snprintf(who.role, sizeof(who.role), "%s", cert_role ? cert_role : "");
			snprintf(who.subject, sizeof(who.subject), "%s", subject ? subject : "");
			if (fp != NULL) {
				size_t k = 0;
				for (const char *q = fp; *q && k < 32; q++) {
					if (*q == ':')
						continue;
					unsigned b;
					if (sscanf(q, "%2x", &b) != 1)
						break;
					who.fingerprint[k++] = (uint8_t)b;
					q++;
				}
				who.has_fingerprint = k == 32;
			}
		}
		bms_policy_decide(p, st, &who, rb.dev, &rb.req, now, &dec);
	}
	bms_policy_state_free(st);
	printf("decision: %s\n", bms_verdict_name((enum bms_verdict)dec.verdict));
	if (dec.rule_file != NULL)
		printf("rule:     %s:%u\n", dec.rule_file, dec.rule_line);
	else
		printf("rule:     none (deny by default)\n");
	printf("reason:   %s\n", dec.reason);
	rc = dec.verdict == BMS_VERDICT_ALLOW ? 0 : 1;
out:
	bms_policy_free(p);
	return rc;
}

static int cmd_diff(int argc, char **argv)
{
	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	struct bms_policy *a = NULL, *b = NULL;
	int rc = 2;
	if (load_or_print((const char *const *)&argv[0], 1, &a) < 0 ||
	    load_or_print((const char *const *)&argv[1], 1, &b) < 0)
		goto out;
	rc = pol_diff(a, b, argv[0], argv[1], stdout) > 0 ? 1 : 0;
out:
	bms_policy_free(a);
	bms_policy_free(b);
	return rc;
}

int cmd_policy(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 2, argv + 2);
	if (strcmp(argv[1], "explain") == 0)
		return cmd_explain(argc - 2, argv + 2);
	if (strcmp(argv[1], "diff") == 0)
		return cmd_diff(argc - 2, argv + 2);
	fprintf(stderr, "bmsgate policy: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
