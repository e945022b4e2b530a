/* policies/parse_decl.c: the declaring statements: site, timezone, mode, accept,
 * schedule, role and its members, device and its points. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policies/compile_int.h"

void pol_st_site(struct cc *c, const struct stmt *s)
{
	struct bms_tok *t = st_at(s, 1);
	if (t->kind != BMS_TOK_STRING && t->kind != BMS_TOK_WORD) {
		ERR_T(c, t, "expected the site's name in quotes at %s", bms_tok_show(t));
		return;
	}
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the site name; put a name with spaces in quotes",
		      bms_tok_show(s->t[2]));
		return;
	}
	if (c->site_set)
		WARN_T(c, s->t[0], "site is named a second time; the last name counts");
	c->site_set = true;
	cpy(c->p->site, sizeof(c->p->site), t->text);
}

void pol_st_timezone(struct cc *c, const struct stmt *s)
{
	struct bms_tok *t = st_at(s, 1);
	if (t->kind != BMS_TOK_WORD && t->kind != BMS_TOK_STRING) {
		ERR_T(c, t, "expected a time zone such as Europe/Berlin at %s", bms_tok_show(t));
		return;
	}
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the time zone", bms_tok_show(s->t[2]));
		return;
	}
	if (c->tz_set) {
		ERR_T(c, s->t[0], "the time zone is already set at %s:%u", pol_src_file(c, c->tz_src), c->tz_src.line);
		return;
	}
	char err[256];
	if (strcmp(t->text, "UTC") != 0) {
		if (pol_tz_check_name(t->text, err, sizeof(err)) < 0) {
			ERR_T(c, t, "%s", err);
			return;
		}
		struct bms_policy_text z;
		memset(&z, 0, sizeof(z));
		int rc = c->src->zone(c->src->ctx, t->text, &z, err, sizeof(err));
		if (rc == BMS_POLICY_SOURCE_NOMEM) {
			c->oom = true;
			return;
		}
		if (rc != BMS_POLICY_SOURCE_OK) {
			ERR_T(c, t, "%s", err);
			return;
		}
		rc = pol_tz_parse(&c->p->tz, t->text, (const uint8_t *)z.text, z.len, z.name, err, sizeof(err));
		c->src->release(c->src->ctx, &z);
		if (rc < 0) {
			ERR_T(c, t, "%s", err);
			return;
		}
	}
	c->tz_set = true;
	c->tz_src = pol_here(c, s->t[0]);
}

int pol_parse_mode(struct cc *c, const struct bms_tok *t, int8_t *mode)
{
	static const char *const words[] = { "enforce", "monitor" };
	if (is(t, "enforce"))
		*mode = 0;
	else if (is(t, "monitor"))
		*mode = 1;
	else {
		pol_err_unknown(c, t, "mode", words, 2, "enforce or monitor");
		return -1;
	}
	return 0;
}

void pol_st_mode(struct cc *c, const struct stmt *s)
{
	int8_t m;
	if (pol_parse_mode(c, st_at(s, 1), &m) < 0)
		return;
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the mode", bms_tok_show(s->t[2]));
		return;
	}
	if (c->mode_set)
		WARN_T(c, s->t[0], "the site mode is set a second time; the last one counts");
	c->mode_set = true;
	c->p->site_mode = m;
}

/* accept anomaly modbus|bacnet NAME: let requests the decoder flagged with NAME reach the rules. */
void pol_st_accept(struct cc *c, const struct stmt *s)
{
	struct bms_tok *t = st_at(s, 1);
	if (!is(t, "anomaly")) {
		static const char *const words[] = { "anomaly" };
		pol_err_unknown(c, t, "word after accept", words, 1, "'anomaly'");
		return;
	}
	t = st_at(s, 2);
	enum bms_proto proto = is(t, "modbus") ? BMS_PROTO_MODBUS : is(t, "bacnet") ? BMS_PROTO_BACNET : BMS_PROTO_NONE;
	if (proto == BMS_PROTO_NONE) {
		static const char *const words[] = { "modbus", "bacnet" };
		pol_err_unknown(c, t, "protocol", words, 2, "modbus or bacnet");
		return;
	}
	t = st_at(s, 3);
	const char *names[64];
	for (unsigned b = 0; b < 64; b++) {
		names[b] = bms_anomaly_name(proto, b);
		if (t->kind == BMS_TOK_WORD && names[b] != NULL && strcmp(names[b], t->text) == 0) {
			c->p->accept_anomalies[proto] |= UINT64_C(1) << b;
			if (s->n > 4)
				ERR_T(c, s->t[4], "unexpected '%s' after the anomaly name", bms_tok_show(s->t[4]));
			return;
		}
	}
	pol_err_unknown(c, t, "anomaly", names, 64, "an anomaly name the decoder reports");
}

void pol_st_schedule(struct cc *c, const struct stmt *s)
{
	struct bms_tok *nt = st_at(s, 1);
	if (pol_want_name(c, nt, "schedule") < 0)
		return;
	int32_t prev = pol_find_schedule(c->p, nt->text);
	if (prev >= 0) {
		ERR_T(c, nt, "schedule '%s' is already declared at %s:%u", nt->text,
		      pol_src_file(c, c->p->schedules[prev].src), c->p->schedules[prev].src.line);
		return;
	}
	struct pol_schedule sc;
	memset(&sc, 0, sizeof(sc));
	uint32_t i = 2;
	if (pol_parse_windows(c, s, &i, &sc) < 0)
		return;
	if (i < s->n) {
		ERR_T(c, s->t[i], "unexpected '%s' after the hours", bms_tok_show(s->t[i]));
		return;
	}
	if (pol_grow(c, (void **)&c->p->schedules, &c->cap_schedules, c->p->nschedules, sizeof(sc)) < 0)
		return;
	cpy(sc.name, sizeof(sc.name), nt->text);
	sc.src = pol_here(c, nt);
	c->p->schedules[c->p->nschedules++] = sc;
}

/* role NAME {  -- members follow, one a line, until } */
int32_t pol_st_role(struct cc *c, const struct stmt *s)
{
	struct bms_tok *nt = st_at(s, 1);
	if (pol_want_name(c, nt, "role") < 0)
		return -1;
	if (is(nt, "anyone")) {
		ERR_T(c, nt, "'anyone' is a reserved word and cannot name a role");
		return -1;
	}
	int32_t prev = pol_role_find(c->p, nt->text);
	if (prev >= 0) {
		ERR_T(c, nt, "role '%s' is already declared at %s:%u", nt->text, pol_src_file(c, c->p->roles[prev].src),
		      c->p->roles[prev].src.line);
		return -1;
	}
	if (c->p->nroles >= POL_MAX_ROLES) {
		ERR_T(c, nt, "more than %d roles", POL_MAX_ROLES);
		return -1;
	}
	if (pol_grow(c, (void **)&c->p->roles, &c->cap_roles, c->p->nroles, sizeof(struct pol_role)) < 0)
		return -1;
	struct pol_role *r = &c->p->roles[c->p->nroles];
	memset(r, 0, sizeof(*r));
	cpy(r->name, sizeof(r->name), nt->text);
	r->declared = true;
	r->src = pol_here(c, nt);
	r->member_first = c->p->nmembers;
	return (int32_t)c->p->nroles++;
}

static int parse_fingerprint(const char *s, uint8_t out[32])
{
	size_t n = 0;
	for (const char *q = s; *q;) {
		if (*q == ':') {
			q++;
			continue;
		}
		if (!isxdigit((unsigned char)q[0]) || !isxdigit((unsigned char)q[1]) || n >= 32)
			return -1;
		char hex[3] = { q[0], q[1], 0 };
		out[n++] = (uint8_t)strtoul(hex, NULL, 16);
		q += 2;
	}
	return n == 32 ? 0 : -1;
}

void pol_st_member(struct cc *c, const struct stmt *s, int32_t role)
{
	static const char *const words[] = { "certificate-role", "subject", "fingerprint", "address" };
	struct bms_tok *k = s->t[0], *v = st_at(s, 1);
	struct pol_member m;
	memset(&m, 0, sizeof(m));
	if (is(k, "certificate-role"))
		m.kind = POL_M_CERT_ROLE;
	else if (is(k, "subject"))
		m.kind = POL_M_SUBJECT;
	else if (is(k, "fingerprint"))
		m.kind = POL_M_FINGERPRINT;
	else if (is(k, "address") || is(k, "network"))
		m.kind = POL_M_ADDRESS;
	else {
		pol_err_unknown(c, k, "role member", words, 4, "certificate-role, subject, fingerprint or address");
		return;
	}
	if (v->kind != BMS_TOK_WORD && v->kind != BMS_TOK_STRING) {
		ERR_T(c, v, "expected a value after '%s' at %s", k->text, bms_tok_show(v));
		return;
	}
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the %s; one member a line", bms_tok_show(s->t[2]), k->text);
		return;
	}
	switch (m.kind) {
	case POL_M_CERT_ROLE:
	case POL_M_SUBJECT: {
		/* The same limits as the guard's (policies/identity.h): a value the guard would refuse
		 * or ignore in a certificate cannot name anyone here either. */
		size_t lim = m.kind == POL_M_CERT_ROLE ? BMS_ROLE_LEN : BMS_SUBJECT_LEN, len = strlen(v->text);
		if (len > lim) {
			ERR_T(c, v, "%s '%s' is %zu bytes, longer than %zu", k->text, v->text, len, lim);
			return;
		}
		/* OpenSSL's RFC 2253 form, the one the guard matches, escapes every byte above 0x7f
		 * (CN=M\C3\BCller for CN=Müller): such a subject value could never match. */
		for (size_t q = 0; m.kind == POL_M_SUBJECT && q < len; q++)
			if ((unsigned char)v->text[q] >= 0x80) {
				WARN_T(c, v, "subject '%s' never matches: the guard writes subjects in RFC 2253 form with "
					     "each byte above 0x7f escaped as \\XX (e.g. CN=M\\C3\\BCller)", v->text);
				break;
			}
		cpy(m.text, sizeof(m.text), v->text);
		break;
	}
	case POL_M_FINGERPRINT:
		if (parse_fingerprint(v->text, m.fp) < 0) {
			ERR_T(c, v, "'%s' is not a SHA-256 fingerprint (64 hex digits, colons allowed)", v->text);
			return;
		}
		break;
	case POL_M_ADDRESS: {
		char a[BMS_TOK_MAX + 1];
		cpy(a, sizeof(a), v->text);
		char *slash = strchr(a, '/');
		if (slash != NULL)
			*slash = '\0';
		uint32_t prefix = 0;
		if (pol_parse_ip(a, &m.family, m.net) < 0 ||
		    (slash != NULL && pol_parse_u32(slash + 1, m.family == AF_INET ? 32 : 128, &prefix) < 0)) {
			ERR_T(c, v, "'%s' is not an IP address or network (10.1.2.3, 10.1.2.0/24, fd00::/64)", v->text);
			return;
		}
		m.prefix = (uint8_t)(slash ? prefix : (m.family == AF_INET ? 32 : 128));
		/* Host bits set under the prefix are a typing error worth a word, not a refusal. */
		for (unsigned b = m.prefix; b < (m.family == AF_INET ? 32u : 128u); b++)
			if (m.net[b / 8] & (0x80 >> (b % 8))) {
				WARN_T(c, v, "network %s has host bits set; it means the whole /%u", v->text, m.prefix);
				break;
			}
		break;
	}
	}
	if (pol_grow(c, (void **)&c->p->members, &c->cap_members, c->p->nmembers, sizeof(m)) < 0)
		return;
	c->p->members[c->p->nmembers++] = m;
	c->p->roles[role].nmembers++;
}

static const char *const device_words[] = { "unit", "instance", "port", "mode" };

/* device NAME modbus|bacnet ADDRESS [unit LIST | instance N] [port N] [mode M] [{] */
int32_t pol_st_device(struct cc *c, const struct stmt *s)
{
	struct bms_tok *nt = st_at(s, 1);
	if (pol_want_name(c, nt, "device") < 0)
		return -1;
	if (is(nt, "all") || is(nt, "anyone")) {
		ERR_T(c, nt, "'%s' is a reserved word and cannot name a device", nt->text);
		return -1;
	}
	int32_t prev = pol_find_device(c->p, nt->text);
	if (prev >= 0) {
		ERR_T(c, nt, "device '%s' is already declared at %s:%u", nt->text, pol_src_file(c, c->p->devices[prev].src),
		      c->p->devices[prev].src.line);
		return -1;
	}
	struct bms_tok *pt = st_at(s, 2);
	uint8_t proto;
	if (is(pt, "modbus"))
		proto = BMS_PROTO_MODBUS;
	else if (is(pt, "bacnet"))
		proto = BMS_PROTO_BACNET;
	else {
		static const char *const words[] = { "modbus", "bacnet" };
		pol_err_unknown(c, pt, "protocol", words, 2, "modbus or bacnet");
		return -1;
	}
	if (pol_grow(c, (void **)&c->p->devices, &c->cap_devices, c->p->ndevices, sizeof(struct bms_policy_device)) < 0)
		return -1;
	struct bms_policy_device *d = &c->p->devices[c->p->ndevices];
	memset(d, 0, sizeof(*d));
	cpy(d->name, sizeof(d->name), nt->text);
	d->proto = proto;
	d->mode = -1;
	d->src = pol_here(c, nt);
	d->point_first = c->p->npoints;
	d->key = pol_hash(d->name, strlen(d->name), 0);
	int32_t idx = (int32_t)c->p->ndevices++;
	uint16_t defport = proto == BMS_PROTO_MODBUS ? 502 : 47808;
	struct bms_tok *at = st_at(s, 3);
	if (at->kind != BMS_TOK_WORD) {
		ERR_T(c, at, "expected the device's IP address at %s", bms_tok_show(at));
		return idx;
	}
	if (pol_parse_hostport(c, at, defport, &d->addr, &d->addr_len) < 0)
		return idx;
	bool has_unit = false;
	for (uint32_t i = 4; i < s->n; i++) {
		struct bms_tok *k = s->t[i], *v = st_at(s, i + 1);
		if (is(k, "unit") || is(k, "units")) {
			if (proto != BMS_PROTO_MODBUS) {
				ERR_T(c, k, "'unit' is for Modbus devices; a BACnet device has an 'instance'");
				return idx;
			}
			uint32_t j = i + 1;
			for (;;) {
				struct bms_tok *u = st_at(s, j);
				uint32_t lo, hi;
				if (is(u, "any")) {
					memset(d->units, 0xff, sizeof(d->units));
				} else {
					if (pol_parse_urange(c, u, 255, &lo, &hi, "a Modbus unit id") < 0)
						return idx;
					for (uint32_t n = lo; n <= hi; n++)
						d->units[n / 64] |= UINT64_C(1) << (n % 64);
				}
				if (st_at(s, j + 1)->kind != BMS_TOK_COMMA)
					break;
				j += 2;
			}
			has_unit = true;
			i = j;
		} else if (is(k, "instance")) {
			if (proto != BMS_PROTO_BACNET) {
				ERR_T(c, k, "'instance' is for BACnet devices; a Modbus device has a 'unit'");
				return idx;
			}
			if (pol_parse_u32(v->text, 4194302, &d->instance) < 0 || v->kind != BMS_TOK_WORD) {
				ERR_T(c, v, "'%s' is not a BACnet device instance (0..4194302)", bms_tok_show(v));
				return idx;
			}
			d->has_instance = true;
			i++;
		} else if (is(k, "port")) {
			uint32_t port;
			if (v->kind != BMS_TOK_WORD || pol_parse_u32(v->text, 65535, &port) < 0 || port == 0) {
				ERR_T(c, v, "'%s' is not a port (1..65535)", bms_tok_show(v));
				return idx;
			}
			pol_set_port(&d->addr, (uint16_t)port);
			i++;
		} else if (is(k, "mode")) {
			if (pol_parse_mode(c, v, &d->mode) < 0)
				return idx;
			i++;
		} else {
			pol_err_unknown(c, k, "device option", device_words, 4, "unit, instance, port, mode or '{'");
			return idx;
		}
	}
	if (proto == BMS_PROTO_MODBUS && !has_unit)
		ERR_T(c, nt, "Modbus device '%s' needs its unit id(s): add 'unit 1' (or 'unit 1-4', or 'unit any')",
		      d->name);
	return idx;
}

static bool is_point_opt(const struct bms_tok *t)
{
	static const char *const opts[] = { "uint16", "int16", "uint32", "int32", "float32", "scale", "offset",
					    "unit", "range" };
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (is(t, opts[i]))
			return true;
	return false;
}


static void point_overlaps(struct cc *c, const struct bms_policy_device *d, const struct pol_point *pt,
			   const struct bms_tok *t)
{
	for (uint32_t i = d->point_first; i < c->p->npoints; i++) {
		const struct pol_point *o = &c->p->points[i];
		bool overlap;
		if (pt->space == BMS_SPACE_BACNET_OBJECT)
			overlap = o->space == pt->space && o->object_type == pt->object_type &&
				  o->instance == pt->instance && o->property == pt->property;
		else
			overlap = o->space == pt->space && o->start < pt->start + pt->count &&
				  pt->start < o->start + o->count;
		if (overlap) {
			WARN_T(c, t, "point '%s' overlaps point '%s' declared at %s:%u", pt->full, o->full,
			       pol_src_file(c, o->src), o->src.line);
			return;
		}
	}
}

/* point NAME holding|input ADDR [TYPE] [scale X] [offset X] [unit U] [range LO..HI]
 * point NAME coil|discrete ADDR
 * point NAME OBJECT-TYPE INSTANCE [PROPERTY] [unit U] [range LO..HI] */
void pol_st_point(struct cc *c, const struct stmt *s, int32_t dev)
{
	struct bms_policy_device *d = &c->p->devices[dev];
	struct bms_tok *nt = st_at(s, 1);
	if (pol_want_name(c, nt, "point") < 0)
		return;
	for (uint32_t i = d->point_first; i < c->p->npoints; i++)
		if (strcmp(c->p->points[i].name, nt->text) == 0) {
			ERR_T(c, nt, "point '%s.%s' is already declared at %s:%u", d->name, nt->text,
			      pol_src_file(c, c->p->points[i].src), c->p->points[i].src.line);
			return;
		}
	struct pol_point pt;
	memset(&pt, 0, sizeof(pt));
	cpy(pt.name, sizeof(pt.name), nt->text);
	snprintf(pt.full, sizeof(pt.full), "%s.%s", d->name, pt.name);
	pt.device = (uint32_t)dev;
	pt.scale = 1.0;
	pt.src = pol_here(c, nt);
	pt.key = pol_hash(pt.full, strlen(pt.full), 0);
	uint32_t i = 2;
	struct bms_tok *kt = st_at(s, i);
	if (d->proto == BMS_PROTO_MODBUS) {
		int sp = pol_modbus_space(kt);
		if (sp < 0) {
			pol_err_unknown(c, kt, "register kind", pol_modbus_space_words, 4, "holding, input, coil or discrete");
			return;
		}
		pt.space = (uint8_t)sp;
		struct bms_tok *at = st_at(s, ++i);
		if (at->kind != BMS_TOK_WORD || pol_parse_u32(at->text, 65535, &pt.start) < 0) {
			ERR_T(c, at, "'%s' is not a Modbus address (0..65535, as sent on the wire)", bms_tok_show(at));
			return;
		}
		i++;
		bool bit = sp == BMS_SPACE_COIL || sp == BMS_SPACE_DISCRETE_INPUT;
		pt.dtype = bit ? POL_T_BIT : POL_T_UINT16;
		pt.count = 1;
	} else {
		if (pol_modbus_space(kt) >= 0) {
			ERR_T(c, kt, "'%s' is a Modbus register kind; '%s' is a BACnet device: name a BACnet object type "
				     "(analog-value, binary-output, ...)", kt->text, d->name);
			return;
		}
		int64_t ot = pol_word_find(pol_object_types, kt->text);
		uint32_t num;
		if (ot < 0 && kt->kind == BMS_TOK_WORD && pol_parse_u32(kt->text, 1023, &num) == 0)
			ot = num;
		if (ot < 0 || kt->kind != BMS_TOK_WORD) {
			const char *m = kt->kind == BMS_TOK_WORD ? pol_nearest_word(kt->text, pol_object_types) : NULL;
			if (m)
				ERR_T(c, kt, "unknown BACnet object type '%s'; did you mean '%s'?", kt->text, m);
			else
				ERR_T(c, kt, "expected a BACnet object type (analog-value, binary-output, ...) at '%s'",
				      bms_tok_show(kt));
			return;
		}
		pt.space = BMS_SPACE_BACNET_OBJECT;
		pt.object_type = (uint16_t)ot;
		struct bms_tok *it = st_at(s, ++i);
		if (it->kind != BMS_TOK_WORD || pol_parse_u32(it->text, 4194302, &pt.instance) < 0) {
			ERR_T(c, it, "'%s' is not a BACnet object instance (0..4194302)", bms_tok_show(it));
			return;
		}
		i++;
		pt.property = 85; /* present-value */
		struct bms_tok *pr = st_at(s, i);
		if (pr->kind == BMS_TOK_WORD && !is_point_opt(pr)) {
			int64_t pv = pol_word_find(pol_properties, pr->text);
			if (pv < 0 && pol_parse_u32(pr->text, 4194303, &num) == 0)
				pv = num;
			if (pv < 0) {
				const char *m = pol_nearest_word(pr->text, pol_properties);
				if (m)
					ERR_T(c, pr, "unknown BACnet property '%s'; did you mean '%s'?", pr->text, m);
				else
					ERR_T(c, pr, "unknown BACnet property or point option '%s'", pr->text);
				return;
			}
			pt.property = (uint32_t)pv;
			i++;
		}
		pt.dtype = POL_T_BACNET;
		pt.count = 0;
	}
	static const char *const opt_words[] = { "uint16", "int16", "uint32", "int32", "float32",
						 "scale", "offset", "unit", "range" };
	for (; i < s->n; i++) {
		struct bms_tok *k = s->t[i], *v = st_at(s, i + 1);
		int dt = is(k, "uint16") ? POL_T_UINT16 : is(k, "int16") ? POL_T_INT16 : is(k, "uint32") ? POL_T_UINT32
		       : is(k, "int32") ? POL_T_INT32 : is(k, "float32") ? POL_T_FLOAT32 : -1;
		if (dt >= 0) {
			if (pt.dtype == POL_T_BIT || pt.dtype == POL_T_BACNET) {
				ERR_T(c, k, "a data type applies to holding and input registers only");
				return;
			}
			pt.dtype = (uint8_t)dt;
			pt.count = dt >= POL_T_UINT32 ? 2 : 1;
			continue;
		}
		if (is(k, "scale") || is(k, "offset")) {
			double x;
			if (v->kind != BMS_TOK_WORD || pol_parse_double(v->text, &x) < 0) {
				ERR_T(c, v, "'%s' is not a number", bms_tok_show(v));
				return;
			}
			if (pt.dtype == POL_T_BIT || pt.dtype == POL_T_BACNET) {
				ERR_T(c, k, "'%s' applies to Modbus registers only", k->text);
				return;
			}
			if (is(k, "scale") && x == 0) {
				ERR_T(c, v, "a scale of 0 would read every value as 0");
				return;
			}
			if (is(k, "scale"))
				pt.scale = x;
			else
				pt.offset = x;
			i++;
			continue;
		}
		if (is(k, "unit")) {
			if (v->kind != BMS_TOK_WORD && v->kind != BMS_TOK_STRING) {
				ERR_T(c, v, "expected an engineering unit such as degC at %s", bms_tok_show(v));
				return;
			}
			if (strlen(v->text) >= sizeof(pt.unit)) {
				ERR_T(c, v, "unit '%s' is longer than %zu characters", v->text, sizeof(pt.unit) - 1);
				return;
			}
			cpy(pt.unit, sizeof(pt.unit), v->text);
			i++;
			continue;
		}
		if (is(k, "range")) {
			if (pt.dtype == POL_T_BIT) {
				ERR_T(c, k, "a coil or discrete input is on or off; it has no range");
				return;
			}
			if (pol_parse_drange(c, v, &pt.lo, &pt.hi, "range") < 0)
				return;
			pt.has_range = true;
			i++;
			continue;
		}
		pol_err_unknown(c, k, "point option", opt_words, 9,
			    d->proto == BMS_PROTO_MODBUS ? "a type (uint16, int16, uint32, int32, float32), scale, "
							   "offset, unit or range"
							 : "unit or range");
		return;
	}
	if (pt.space != BMS_SPACE_BACNET_OBJECT && (uint64_t)pt.start + pt.count > 65536) {
		ERR_T(c, nt, "point '%s' runs past address 65535", pt.full);
		return;
	}
	point_overlaps(c, d, &pt, nt);
	if (pol_grow(c, (void **)&c->p->points, &c->cap_points, c->p->npoints, sizeof(pt)) < 0)
		return;
	c->p->points[c->p->npoints++] = pt;
	d->npoints++;
}

