/* policies/diff.c: `bmsgate policy diff OLD NEW`.
 *
 * Method (docs/policy-language.md, "Reviewing a change"): both policies decide
 * the same systematic set of representative requests, and every request one
 * allows and the other does not is reported, grouped per role, device, target
 * and operation. The set is built from both files:
 *   roles    every role either file names, and a client holding no role;
 *   devices  every device either file declares (a device missing from one file
 *            is denied there, as the gateway would);
 *   targets  every point, the first and last register of every raw range a
 *            rule names, every BACnet object a rule names, and no target for
 *            operations that take none;
 *   ops      every operation class, and every function code or service a rule names;
 *   values   for writes: every limit of every range on the target (point
 *            range, rule value range), one step inside and one step beyond;
 *   priority every BACnet priority limit, and one beyond;
 *   times    the week at every schedule boundary of either file and one minute
 *            before it, in each file's own time zone (a reference week without
 *            a daylight-saving change).
 * Rate limits and min-intervals are not exercised (each request is decided
 * with fresh counters); changes to them are listed structurally.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policies/policy_diff.h"

#define MAX_TIMES 512
#define MAX_VALUES 32
#define MAX_PRIOS 16
#define MAX_KEYS 4096

struct side {
	const struct bms_policy *p;
	const char *name;
	struct bms_policy_state *st;
};

struct tgt {
	char label[POL_FULL_MAX + 64];
	struct bms_target t;
	bool bit;            /* coil values */
	const struct pol_point *pt; /* for engineering values, or NULL */
};

struct group {
	char head[512];
	int sign;            /* +1: NEW allows, OLD denied; -1: the reverse */
	char values[MAX_VALUES][32];
	int nvalues;
	uint16_t times[64];
	int ntimes;
	uint64_t tbits[MAX_TIMES / 64]; /* which of the sampled times (by index) differ */
	uint8_t prios[MAX_PRIOS];
	int nprios;
	char why_old[BMS_REASON_MAX + 128], why_new[BMS_REASON_MAX + 128];
};

static const char *const wdays[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static void add_time(uint16_t *times, int *n, int m)
{
	m = ((m % (7 * 1440)) + 7 * 1440) % (7 * 1440);
	for (int i = 0; i < *n; i++)
		if (times[i] == m)
			return;
	if (*n < MAX_TIMES)
		times[(*n)++] = (uint16_t)m;
}

static void schedule_times(const struct bms_policy *p, uint16_t *times, int *n)
{
	for (uint32_t s = 0; s < p->nschedules; s++)
		for (uint32_t w = 0; w < p->schedules[s].nwin; w++) {
			const struct pol_window *win = &p->schedules[s].win[w];
			for (int d = 0; d < 7; d++) {
				if (!(win->days >> d & 1))
					continue;
				int end_day = win->from < win->to ? d : d + 1;
				add_time(times, n, d * 1440 + win->from);
				add_time(times, n, d * 1440 + win->from - 1);
				add_time(times, n, end_day * 1440 + win->to);
				add_time(times, n, end_day * 1440 + win->to - 1);
			}
		}
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* UTC microseconds of a local minute of the reference week (Sunday 2026-01-04 .. Saturday 2026-01-10). */
static int64_t week_utc(const struct bms_policy *p, int mow)
{
	int64_t local = 1767484800 + (int64_t)mow * 60; /* 2026-01-04 00:00 as if UTC */
	int64_t guess = local - pol_tz_offset(&p->tz, local);
	return (local - pol_tz_offset(&p->tz, guess)) * 1000000;
}

static void add_value(double *v, int *n, double x)
{
	for (int i = 0; i < *n; i++)
		if (fabs(v[i] - x) < 1e-9)
			return;
	if (*n < MAX_VALUES)
		v[(*n)++] = x;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Values worth trying for writes to target t on device named dev in both policies. */
static void target_values(const struct side *s, const char *dev, const struct tgt *t, double *v, int *n)
{
	double step = t->pt ? fabs(t->pt->scale) : 1;
	if (t->pt && t->pt->dtype == POL_T_BACNET)
		step = 0.1;
	for (int k = 0; k < 2; k++) {
		const struct bms_policy *p = s[k].p;
		const struct bms_policy_device *d = bms_policy_find_device_by_name(p, dev);
		if (d == NULL)
			continue;
		if (t->pt) {
			for (uint32_t i = d->point_first; i < d->point_first + d->npoints; i++) {
				const struct pol_point *pt = &p->points[i];
				if (strcmp(pt->name, t->pt->name) != 0 || !pt->has_range)
					continue;
				add_value(v, n, pt->lo), add_value(v, n, pt->hi);
				add_value(v, n, pt->lo - step), add_value(v, n, pt->hi + step);
				add_value(v, n, (pt->lo + pt->hi) / 2);
			}
		}
		for (uint32_t r = 0; r < p->nrules; r++) {
			const struct pol_rule *ru = &p->rules[r];
			if (!ru->has_value || ru->tkind == POL_TGT_ALL || ru->device != (uint32_t)(d - p->devices))
				continue;
			bool mine = ru->tkind == POL_TGT_POINT ? t->pt && strcmp(p->points[ru->point].name, t->pt->name) == 0
							       : true;
			if (!mine)
				continue;
			add_value(v, n, ru->vlo), add_value(v, n, ru->vhi);
			add_value(v, n, ru->vlo - step), add_value(v, n, ru->vhi + step);
		}
	}
	if (*n == 0)
		add_value(v, n, t->pt && t->pt->dtype != POL_T_BACNET ? t->pt->offset : 0);
	qsort(v, (size_t)*n, sizeof(double), cmp_d);
}

/* Writes engineering value x into the target the way a client would send it. */
static bool set_value(struct tgt *t, uint8_t *buf, double x)
{
	struct bms_target *bt = &t->t;
	if (t->bit) {
		bt->has_value = true;
		bt->value.type = BMS_VAL_BOOL;
		bt->value.b = x != 0;
		return true;
	}
	if (bt->space == BMS_SPACE_BACNET_OBJECT) {
		bt->has_value = true;
		bt->value.type = BMS_VAL_REAL;
		bt->value.d = x;
		return true;
	}
	const struct pol_point *pt = t->pt;
	double raw = pt ? (x - pt->offset) / pt->scale : x;
	uint32_t count = bt->count ? bt->count : 1;
	if (pt && pt->dtype == POL_T_FLOAT32) {
		float f = (float)raw;
		uint32_t u;
		memcpy(&u, &f, 4);
		buf[0] = (uint8_t)(u >> 24), buf[1] = (uint8_t)(u >> 16), buf[2] = (uint8_t)(u >> 8), buf[3] = (uint8_t)u;
	} else {
		long long r = llround(raw);
		bool sgn = pt && (pt->dtype == POL_T_INT16 || pt->dtype == POL_T_INT32);
		bool wide = pt && pt->count == 2;
		long long lo = sgn ? (wide ? INT32_MIN : -32768) : 0, hi = sgn ? (wide ? INT32_MAX : 32767)
									    : (wide ? 4294967295LL : 65535);
		if (r < lo || r > hi)
			return false; /* the register cannot carry it: no client can send it */
		uint32_t u = (uint32_t)r;
		if (wide) {
			buf[0] = (uint8_t)(u >> 24), buf[1] = (uint8_t)(u >> 16), buf[2] = (uint8_t)(u >> 8);
			buf[3] = (uint8_t)u;
		} else {
			for (uint32_t i = 0; i < count && i < 64; i++)
				buf[2 * i] = (uint8_t)(u >> 8), buf[2 * i + 1] = (uint8_t)u;
		}
	}
	bt->data = buf;
	bt->data_len = (uint16_t)(2 * count);
	bt->has_value = count == 1;
	bt->value.type = BMS_VAL_UNSIGNED;
	bt->value.u = (uint64_t)(buf[0] << 8 | buf[1]);
	return true;
}

static void fmt_mow(char *b, size_t n, int m)
{
	snprintf(b, n, "%s %02d:%02d", wdays[m / 1440], (m % 1440) / 60, m % 60);
}

struct ctx {
	struct side s[2];
	struct group *g;
	int ng;
	long evaluated;
	uint16_t times[MAX_TIMES];
	int ntimes;
};

static struct group *group_for(struct ctx *c, const char *head, int sign)
{
	for (int i = 0; i < c->ng; i++)
		if (c->g[i].sign == sign && strcmp(c->g[i].head, head) == 0)
			return &c->g[i];
	if (c->ng >= MAX_KEYS)
		return NULL;
	struct group *g = &c->g[c->ng++];
	memset(g, 0, sizeof(*g));
	snprintf(g->head, sizeof(g->head), "%s", head);
	g->sign = sign;
	return g;
}

static void why(char *b, size_t n, const struct side *s, const struct bms_decision *d)
{
	if (d->rule_file)
		snprintf(b, n, "%s %s:%u: %s", bms_verdict_name((enum bms_verdict)d->verdict), d->rule_file, d->rule_line,
			 d->reason);
	else
		snprintf(b, n, "%s by default in %s: %s", bms_verdict_name((enum bms_verdict)d->verdict), s->name,
			 d->reason);
}

/* Decides req in both policies at every sampled time; records differences under head. */
static void compare(struct ctx *c, const uint64_t *roles[2], const char *label, const char *dev,
		    struct bms_request *req, const char *head, const char *value_label, int prio)
{
	const struct bms_policy_device *d[2];
	for (int k = 0; k < 2; k++)
		d[k] = bms_policy_find_device_by_name(c->s[k].p, dev);
	for (int ti = 0; ti < c->ntimes; ti++) {
		struct bms_decision dec[2];
		for (int k = 0; k < 2; k++) {
			pol_state_reset(c->s[k].st); /* fresh counters: each request is decided on its own */
			pol_decide_roles(c->s[k].p, c->s[k].st, roles[k], label, d[k], req,
					 week_utc(c->s[k].p, c->times[ti]), &dec[k]);
		}
		c->evaluated++;
		bool a = dec[0].verdict == BMS_VERDICT_ALLOW, b = dec[1].verdict == BMS_VERDICT_ALLOW;
		if (a == b)
			continue;
		struct group *g = group_for(c, head, b ? 1 : -1);
		if (g == NULL)
			return;
		if (g->why_old[0] == '\0') {
			why(g->why_old, sizeof(g->why_old), &c->s[0], &dec[0]);
			why(g->why_new, sizeof(g->why_new), &c->s[1], &dec[1]);
		}
		if (value_label != NULL) {
			bool have = false;
			for (int i = 0; i < g->nvalues; i++)
				have |= strcmp(g->values[i], value_label) == 0;
			if (!have && g->nvalues < MAX_VALUES)
				snprintf(g->values[g->nvalues++], sizeof(g->values[0]), "%s", value_label);
		}
		if (prio > 0) {
			bool have = false;
			for (int i = 0; i < g->nprios; i++)
				have |= g->prios[i] == prio;
			if (!have && g->nprios < MAX_PRIOS)
				g->prios[g->nprios++] = (uint8_t)prio;
		}
		if (!(g->tbits[ti / 64] >> (ti % 64) & 1))
			g->ntimes++;
		g->tbits[ti / 64] |= UINT64_C(1) << (ti % 64);
	}
}

static void build_targets(struct ctx *c, const char *dev, uint8_t proto, struct tgt *out, int *n, int max)
{
	*n = 0;
	for (int k = 1; k >= 0; k--) {
		const struct bms_policy *p = c->s[k].p;
		const struct bms_policy_device *d = bms_policy_find_device_by_name(p, dev);
		if (d == NULL)
			continue;
		for (uint32_t i = d->point_first; i < d->point_first + d->npoints && *n < max; i++) {
			const struct pol_point *pt = &p->points[i];
			bool seen = false;
			for (int j = 0; j < *n; j++)
				seen |= out[j].pt != NULL && strcmp(out[j].pt->name, pt->name) == 0;
			if (seen)
				continue;
			struct tgt *t = &out[(*n)++];
			memset(t, 0, sizeof(*t));
			snprintf(t->label, sizeof(t->label), "%s", pt->full);
			t->pt = pt;
			t->bit = pt->dtype == POL_T_BIT;
			t->t.space = pt->space;
			t->t.start = pt->start;
			t->t.count = pt->count;
			t->t.object_type = pt->object_type;
			t->t.instance = pt->instance;
			t->t.property = pt->property;
			t->t.array_index = BMS_NO_INDEX;
		}
		for (uint32_t r = 0; r < p->nrules && *n + 2 < max; r++) {
			const struct pol_rule *ru = &p->rules[r];
			if (ru->tkind == POL_TGT_ALL || ru->device != (uint32_t)(d - p->devices))
				continue;
			if (ru->tkind == POL_TGT_RANGE && ru->lo <= ru->hi) {
				uint32_t ends[2] = { ru->lo, ru->hi };
				for (int e = 0; e < (ru->lo == ru->hi ? 1 : 2); e++) {
					bool seen = false;
					for (int j = 0; j < *n; j++)
						seen |= out[j].pt == NULL && out[j].t.space == ru->space &&
							out[j].t.start == ends[e] && out[j].t.count == 1;
					if (seen)
						continue;
					struct tgt *t = &out[(*n)++];
					memset(t, 0, sizeof(*t));
					static const char *const sp[] = { "", "coil", "discrete", "holding", "input" };
					snprintf(t->label, sizeof(t->label), "%s %s %u", dev, ru->space <= 4 ? sp[ru->space] : "?",
						 ends[e]);
					t->bit = ru->space == BMS_SPACE_COIL || ru->space == BMS_SPACE_DISCRETE_INPUT;
					t->t.space = ru->space;
					t->t.start = ends[e];
					t->t.count = 1;
					t->t.array_index = BMS_NO_INDEX;
				}
			} else if (ru->tkind == POL_TGT_OBJECT) {
				uint16_t ot = ru->any_object_type ? 0 : ru->object_type;
				uint32_t in = ru->instance == POL_ANY ? 0 : ru->instance;
				uint32_t pr = ru->property == POL_ANY ? 85 : ru->property;
				bool seen = false;
				for (int j = 0; j < *n; j++)
					seen |= out[j].t.space == BMS_SPACE_BACNET_OBJECT && out[j].t.object_type == ot &&
						out[j].t.instance == in && out[j].t.property == pr;
				if (seen)
					continue;
				struct tgt *t = &out[(*n)++];
				memset(t, 0, sizeof(*t));
				const char *on = pol_word_name(pol_object_types, ot), *pn = pol_word_name(pol_properties, pr);
				snprintf(t->label, sizeof(t->label), "%s %s %u %s", dev, on ? on : "object", in, pn ? pn : "property");
				t->t.space = BMS_SPACE_BACNET_OBJECT;
				t->t.object_type = ot;
				t->t.instance = in;
				t->t.property = pr;
				t->t.array_index = BMS_NO_INDEX;
			}
		}
	}
	(void)proto;
}

static uint8_t modbus_fc_for(unsigned op, uint8_t space, uint32_t count)
{
	if (op == BMS_OP_READ)
		return space == BMS_SPACE_COIL ? 1 : space == BMS_SPACE_DISCRETE_INPUT ? 2 : space == BMS_SPACE_INPUT_REGISTER ? 4 : 3;
	if (op == BMS_OP_WRITE)
		return space == BMS_SPACE_COIL ? 5 : count > 1 ? 16 : 6;
	switch (op) {
	case BMS_OP_FILE: return 20;
	case BMS_OP_DISCOVERY: return 43;
	case BMS_OP_MANAGEMENT: return 8;
	case BMS_OP_PRIVATE: return 65;
	default: return 0;
	}
}

static void bacnet_service_for(unsigned op, uint8_t *pdu, uint8_t *svc)
{
	*pdu = 0;
	switch (op) {
	case BMS_OP_READ: *svc = 12; break;
	case BMS_OP_WRITE: *svc = 15; break;
	case BMS_OP_FILE: *svc = 6; break;
	case BMS_OP_DISCOVERY: *pdu = 1, *svc = 8; break;
	case BMS_OP_MANAGEMENT: *svc = 20; break;
	case BMS_OP_PRIVATE: *svc = 18; break;
	default: *svc = 0; break;
	}
}

static void fmt_num(char *b, size_t n, double v, const struct tgt *t)
{
	if (t->bit) {
		snprintf(b, n, "%s", v != 0 ? "on" : "off");
		return;
	}
	pol_fmt_num(b, n, v);
	if (t->pt && t->pt->unit[0]) {
		size_t l = strlen(b);
		snprintf(b + l, n - l, " %s", t->pt->unit);
	}
}

static void one_role(struct ctx *c, const uint64_t *roles[2], const char *label)
{
	static const unsigned ops[] = { BMS_OP_READ, BMS_OP_WRITE, BMS_OP_COMMAND, BMS_OP_FILE, BMS_OP_DISCOVERY,
					BMS_OP_MANAGEMENT, BMS_OP_PRIVATE };
	static const char *const opname[] = { "", "read", "write", "command", "file", "discovery", "management", "private" };
	for (int k = 0; k < 2; k++) {
		const struct bms_policy *p = c->s[k].p;
		for (uint32_t di = 0; di < p->ndevices; di++) {
			const struct bms_policy_device *dv = &p->devices[di];
			if (k == 0 && bms_policy_find_device_by_name(c->s[1].p, dv->name) != NULL)
				continue; /* a device in both files is done once, from NEW */
			struct tgt tg[256];
			int nt;
			build_targets(c, dv->name, dv->proto, tg, &nt, 256);
			static uint8_t buf[256];
			for (size_t oi = 0; oi < sizeof(ops) / sizeof(ops[0]); oi++) {
				unsigned op = ops[oi];
				bool needs_target = op == BMS_OP_READ || op == BMS_OP_WRITE;
				int ntry = needs_target ? nt : 1;
				for (int ti = 0; ti < ntry; ti++) {
					struct bms_request req;
					memset(&req, 0, sizeof(req));
					req.proto = dv->proto;
					req.dir = BMS_DIR_REQUEST;
					req.op = (uint8_t)op;
					struct tgt *t = needs_target ? &tg[ti] : NULL;
					if (t != NULL) {
						if (op == BMS_OP_WRITE && (t->t.space == BMS_SPACE_DISCRETE_INPUT ||
									   t->t.space == BMS_SPACE_INPUT_REGISTER))
							continue; /* Modbus has no write to these */
						req.ntargets = 1;
						req.targets[0] = t->t;
					}
					if (dv->proto == BMS_PROTO_MODBUS) {
						req.raw.modbus.fc = modbus_fc_for(op, t ? t->t.space : 0, t ? t->t.count : 0);
						req.unit = 1;
					} else {
						req.raw.bacnet.has_apdu = req.raw.bacnet.has_service = 1;
						bacnet_service_for(op, &req.raw.bacnet.pdu_type, &req.raw.bacnet.service);
					}
					char head[512];
					snprintf(head, sizeof(head), "%s: %s %s", label, opname[op], t ? t->label : dv->name);
					if (op != BMS_OP_WRITE) {
						compare(c, roles, label, dv->name, &req, head, NULL, 0);
						continue;
					}
					double vals[MAX_VALUES];
					int nv = 0;
					if (t->bit) {
						vals[nv++] = 0;
						vals[nv++] = 1;
					} else {
						target_values(c->s, dv->name, t, vals, &nv);
					}
					uint8_t prios[MAX_PRIOS + 2];
					int np = 0;
					if (dv->proto == BMS_PROTO_BACNET) {
						prios[np++] = 16;
						for (int k2 = 0; k2 < 2; k2++)
							for (uint32_t r = 0; r < c->s[k2].p->nrules; r++) {
								const struct pol_rule *ru = &c->s[k2].p->rules[r];
								if (!ru->has_priority)
									continue;
								int cand[4] = { ru->plo, ru->phi, ru->plo - 1, ru->phi + 1 };
								for (int q = 0; q < 4; q++) {
									bool have = cand[q] < 1 || cand[q] > 16;
									for (int z = 0; z < np; z++)
										have |= prios[z] == cand[q];
									if (!have && np < MAX_PRIOS)
										prios[np++] = (uint8_t)cand[q];
								}
							}
					} else {
						prios[np++] = 0;
					}
					for (int vi = 0; vi < nv; vi++)
						for (int pi = 0; pi < np; pi++) {
							struct tgt tv = *t;
							if (!set_value(&tv, buf, vals[vi]))
								continue;
							tv.t.priority = prios[pi];
							req.targets[0] = tv.t;
							char vl[48];
							fmt_num(vl, sizeof(vl), vals[vi], t);
							compare(c, roles, label, dv->name, &req, head, vl,
								dv->proto == BMS_PROTO_BACNET ? prios[pi] : 0);
						}
				}
			}
			/* Function codes and services that rules name explicitly. */
			for (int k2 = 0; k2 < 2; k2++)
				for (uint32_t r = 0; r < c->s[k2].p->nrules; r++) {
					const struct pol_rule *ru = &c->s[k2].p->rules[r];
					if (!ru->by_fc && !ru->by_service)
						continue;
					for (unsigned code = 0; code < 256; code++) {
						bool fc = ru->by_fc && (ru->fcs[code / 64] >> (code % 64) & 1) &&
							  dv->proto == BMS_PROTO_MODBUS;
						bool sc = ru->by_service && code < 64 && (ru->svc_confirmed >> code & 1) &&
							  dv->proto == BMS_PROTO_BACNET;
						bool su = ru->by_service && code < 64 && (ru->svc_unconfirmed >> code & 1) &&
							  dv->proto == BMS_PROTO_BACNET;
						if (!fc && !sc && !su)
							continue;
						struct bms_request req;
						memset(&req, 0, sizeof(req));
						req.proto = dv->proto;
						req.dir = BMS_DIR_REQUEST;
						req.op = BMS_OP_UNKNOWN;
						char head[512];
						if (fc) {
							req.raw.modbus.fc = (uint8_t)code;
							snprintf(head, sizeof(head), "%s: function %u on %s", label, code, dv->name);
						} else {
							req.raw.bacnet.has_apdu = req.raw.bacnet.has_service = 1;
							req.raw.bacnet.pdu_type = su ? 1 : 0;
							req.raw.bacnet.service = (uint8_t)code;
							const char *nm = pol_word_name(su ? pol_unconfirmed_services : pol_confirmed_services, code);
							snprintf(head, sizeof(head), "%s: service %s on %s", label, nm ? nm : "?", dv->name);
						}
						compare(c, roles, label, dv->name, &req, head, NULL, 0);
					}
				}
		}
	}
}

static void print_groups(const struct ctx *c, int sign, FILE *out)
{
	for (int i = 0; i < c->ng; i++) {
		const struct group *g = &c->g[i];
		if (g->sign != sign)
			continue;
		fprintf(out, "  %s\n", g->head);
		if (g->nvalues > 0) {
			fprintf(out, "      values:");
			for (int v = 0; v < g->nvalues; v++)
				fprintf(out, "%s %s", v ? "," : "", g->values[v]);
			fprintf(out, "\n");
		}
		if (g->nprios > 0) {
			fprintf(out, "      priorities:");
			for (int v = 0; v < g->nprios; v++)
				fprintf(out, "%s %u", v ? "," : "", g->prios[v]);
			fprintf(out, "\n");
		}
		if (g->ntimes < c->ntimes && c->ntimes > 1) {
			/* Runs of sampled times that differ, with no agreeing sample between: "mon 19:00-20:00". */
			fprintf(out, "      at:");
			int shown = 0;
			for (int x = 0; x < c->ntimes; x++) {
				if (!(g->tbits[x / 64] >> (x % 64) & 1))
					continue;
				int j = x;
				while (j + 1 < c->ntimes && (g->tbits[(j + 1) / 64] >> ((j + 1) % 64) & 1))
					j++;
				char b1[16], b2[16];
				fmt_mow(b1, sizeof(b1), c->times[x]);
				int end = c->times[j] + 1;
				snprintf(b2, sizeof(b2), "%02d:%02d", (end % 1440) / 60, end % 60);
				if (shown < 14)
					fprintf(out, "%s %s-%s", shown ? "," : "", b1, b2);
				shown++;
				x = j;
			}
			fprintf(out, "%s (site time)\n", shown > 14 ? ", ..." : "");
		}
		fprintf(out, "      old: %s\n      new: %s\n", g->why_old, g->why_new);
	}
}

/* Structural changes the sampled requests do not show: modes, members, limits. */
static int structural(const struct bms_policy *a, const struct bms_policy *b, FILE *out)
{
	int n = 0;
	if (a->site_mode != b->site_mode) {
		fprintf(out, "  site mode: %s -> %s\n", a->site_mode ? "monitor" : "enforce", b->site_mode ? "monitor" : "enforce");
		n++;
	}
	if (strcmp(a->tz.name, b->tz.name) != 0) {
		fprintf(out, "  time zone: %s -> %s\n", a->tz.name, b->tz.name);
		n++;
	}
	for (uint32_t i = 0; i < b->ndevices; i++) {
		const struct bms_policy_device *db = &b->devices[i], *da = bms_policy_find_device_by_name(a, db->name);
		if (da == NULL) {
			fprintf(out, "  device %s: new\n", db->name);
			n++;
			continue;
		}
		int ma = da->mode >= 0 ? da->mode : a->site_mode, mb = db->mode >= 0 ? db->mode : b->site_mode;
		if (ma != mb) {
			fprintf(out, "  device %s: mode %s -> %s\n", db->name, ma ? "monitor" : "enforce", mb ? "monitor" : "enforce");
			n++;
		}
		if (da->addr_len != db->addr_len || memcmp(&da->addr, &db->addr, db->addr_len) != 0 ||
		    memcmp(da->units, db->units, sizeof(da->units)) != 0 || da->instance != db->instance) {
			fprintf(out, "  device %s: address, unit or instance changed\n", db->name);
			n++;
		}
	}
	for (uint32_t i = 0; i < a->ndevices; i++)
		if (bms_policy_find_device_by_name(b, a->devices[i].name) == NULL) {
			fprintf(out, "  device %s: removed\n", a->devices[i].name);
			n++;
		}
	for (int k = 0; k < 2; k++) {
		const struct bms_policy *p = k ? b : a, *o = k ? a : b;
		for (uint32_t i = 0; i < p->nroles; i++) {
			const struct pol_role *r = &p->roles[i];
			int32_t oi = pol_role_find(o, r->name);
			for (uint32_t m = 0; m < r->nmembers; m++) {
				const struct pol_member *mm = &p->members[r->member_first + m];
				bool found = false;
				if (oi >= 0) {
					const struct pol_role *orr = &o->roles[oi];
					for (uint32_t q = 0; q < orr->nmembers; q++) {
						const struct pol_member *om = &o->members[orr->member_first + q];
						found |= om->kind == mm->kind && strcmp(om->text, mm->text) == 0 &&
							 memcmp(om->fp, mm->fp, 32) == 0 && memcmp(om->net, mm->net, 16) == 0 &&
							 om->prefix == mm->prefix;
					}
				}
				if (found)
					continue;
				static const char *const kinds[] = { "certificate-role", "subject", "fingerprint", "address" };
				char what[300];
				if (mm->kind == POL_M_FINGERPRINT)
					snprintf(what, sizeof(what), "%02x%02x%02x%02x...", mm->fp[0], mm->fp[1], mm->fp[2], mm->fp[3]);
				else if (mm->kind == POL_M_ADDRESS) {
					char ip[INET6_ADDRSTRLEN] = "?";
					inet_ntop(mm->family, mm->net, ip, sizeof(ip));
					snprintf(what, sizeof(what), "%s/%u", ip, mm->prefix);
				}
				else
					snprintf(what, sizeof(what), "\"%s\"", mm->text);
				fprintf(out, "  role %s: member %s %s %s\n", r->name, kinds[mm->kind], what, k ? "added" : "removed");
				n++;
			}
		}
	}
	/* Rate limits and intervals, matched by the rule's place and role set. */
	for (uint32_t i = 0; i < b->nrules; i++) {
		const struct pol_rule *rb = &b->rules[i];
		if (!rb->rate_n && !rb->interval_us)
			continue;
		bool same = false;
		for (uint32_t j = 0; j < a->nrules; j++)
			same |= strcmp(a->rules[j].text, rb->text) == 0;
		if (!same) {
			fprintf(out, "  limits in NEW not in OLD as written: %s (%s:%u)\n", rb->text, b->files[rb->src.file],
				rb->src.line);
			n++;
		}
	}
	for (uint32_t j = 0; j < a->nrules; j++) {
		const struct pol_rule *ra = &a->rules[j];
		if (!ra->rate_n && !ra->interval_us)
			continue;
		bool same = false;
		for (uint32_t i = 0; i < b->nrules; i++)
			same |= strcmp(b->rules[i].text, ra->text) == 0;
		if (!same) {
			fprintf(out, "  limits in OLD not in NEW as written: %s (%s:%u)\n", ra->text, a->files[ra->src.file],
				ra->src.line);
			n++;
		}
	}
	return n;
}

int pol_diff(const struct bms_policy *a, const struct bms_policy *b, const char *name_a, const char *name_b,
	     FILE *out)
{
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.s[0] = (struct side){ a, name_a, NULL };
	c.s[1] = (struct side){ b, name_b, NULL };
	c.g = calloc(MAX_KEYS, sizeof(*c.g));
	c.s[0].st = bms_policy_state_new(64);
	c.s[1].st = bms_policy_state_new(64);
	if (c.g == NULL || c.s[0].st == NULL || c.s[1].st == NULL) {
		free(c.g);
		bms_policy_state_free(c.s[0].st);
		bms_policy_state_free(c.s[1].st);
		return -1;
	}
	add_time(c.times, &c.ntimes, 3 * 1440 + 12 * 60); /* Wednesday noon: a time for policies without schedules */
	schedule_times(a, c.times, &c.ntimes);
	schedule_times(b, c.times, &c.ntimes);
	qsort(c.times, (size_t)c.ntimes, sizeof(uint16_t), cmp_u16);

	/* Roles by name across both files, then a client that holds none. */
	const char *names[2 * POL_MAX_ROLES + 1];
	int nn = 0;
	for (int k = 1; k >= 0; k--) {
		const struct bms_policy *p = k ? b : a;
		for (uint32_t i = 0; i < p->nroles; i++) {
			bool have = false;
			for (int j = 0; j < nn; j++)
				have |= strcmp(names[j], p->roles[i].name) == 0;
			if (!have)
				names[nn++] = p->roles[i].name;
		}
	}
	for (int i = 0; i <= nn; i++) {
		uint64_t ra[POL_ROLE_WORDS] = { 0 }, rb[POL_ROLE_WORDS] = { 0 };
		char label[POL_NAME_MAX + 16];
		if (i < nn) {
			int32_t x = pol_role_find(a, names[i]), y = pol_role_find(b, names[i]);
			if (x >= 0)
				ra[x / 64] |= UINT64_C(1) << (x % 64);
			if (y >= 0)
				rb[y / 64] |= UINT64_C(1) << (y % 64);
			snprintf(label, sizeof(label), "role %s", names[i]);
		} else {
			snprintf(label, sizeof(label), "a client with no role");
		}
		const uint64_t *roles[2] = { ra, rb };
		one_role(&c, roles, label);
	}
	for (int k = 0; k < 2; k++)
		bms_policy_state_free(c.s[k].st);

	int plus = 0, minus = 0;
	for (int i = 0; i < c.ng; i++)
		plus += c.g[i].sign > 0, minus += c.g[i].sign < 0;
	fprintf(out, "Compared %s (OLD) and %s (NEW) on %ld representative requests (%d roles and a client with no "
		     "role; every device, point, rule range, value limit and schedule boundary; %d local times).\n",
		name_a, name_b, c.evaluated, nn, c.ntimes);
	fprintf(out, "\nNEW allows what OLD denied:%s\n", plus ? "" : " nothing");
	print_groups(&c, 1, out);
	fprintf(out, "\nOLD allowed what NEW denies:%s\n", minus ? "" : " nothing");
	print_groups(&c, -1, out);
	fprintf(out, "\nOther changes:\n");
	int other = structural(a, b, out);
	if (other == 0)
		fprintf(out, "  none\n");
	free(c.g);
	return plus + minus + other;
}
