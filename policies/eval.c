/* policies/eval.c: decide one request. No allocation, no I/O, no global state:
 * only the caller's bms_policy_state changes, and only for requests allowed.
 *
 * Semantics (docs/policy-language.md has them for readers):
 * - Each target of a request is decided on its own; the request is allowed only
 *   if every target is. A request without targets (Who-Is, FC 8) is one target
 *   that only device-wide rules match.
 * - For a target, the rules that apply to the device are tried in file order.
 *   A rule applies when the identity holds one of its roles, the operation
 *   matches, the time is inside its window (`during`/`outside`), and the place
 *   matches: an allow rule must contain the whole target (a read of 100-119 is
 *   not allowed by a rule on 100-109), a deny rule need only overlap it.
 * - The first rule that applies decides. A deny rule denies. An allow rule
 *   allows if its limits hold (value, priority, rate, min-interval); if one does
 *   not, that rule denies, and the reason says which limit.
 * - Whatever rule allowed a write, every declared point it writes is held to
 *   the point's `range`.
 * - No rule applies: denied (default deny).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policies/policy_int.h"

/* ---- state ---- */

#define STATE_PROBES 32

void pol_state_reset(struct bms_policy_state *st)
{
	memset(st->slots, 0, (st->mask + 1) * sizeof(*st->slots));
}

/* The slot holding key, or a free one to put it in, or NULL when the probed slots are all busy. */
static struct slot *state_find(struct bms_policy_state *st, uint64_t key, int64_t now, bool *found)
{
	struct slot *spare = NULL;
	*found = false;
	for (size_t i = 0; i < STATE_PROBES; i++) {
		struct slot *s = &st->slots[(key + i) & st->mask];
		if (s->key == key) {
			*found = true;
			return s;
		}
		if (spare == NULL && (s->key == 0 || s->free_after <= now))
			spare = s;
	}
	return spare;
}

/* ---- identity ---- */

static bool member_match(const struct pol_member *m, const struct bms_identity *who)
{
	switch (m->kind) {
	case POL_M_CERT_ROLE:
		return who->authenticated && who->role[0] != '\0' && strcmp(who->role, m->text) == 0;
	case POL_M_SUBJECT:
		return who->authenticated && strcmp(who->subject, m->text) == 0;
	case POL_M_FINGERPRINT:
		return who->authenticated && who->has_fingerprint && memcmp(who->fingerprint, m->fp, 32) == 0;
	case POL_M_ADDRESS: {
		/* Addresses name legacy clients only: a certificate is never outranked by where it comes from. */
		if (who->authenticated)
			return false;
		uint8_t a[16];
		unsigned fam;
		if (who->addr.ss_family == AF_INET) {
			memcpy(a, &((const struct sockaddr_in *)&who->addr)->sin_addr, 4);
			fam = AF_INET;
		} else if (who->addr.ss_family == AF_INET6) {
			const uint8_t *b = ((const struct sockaddr_in6 *)&who->addr)->sin6_addr.s6_addr;
			static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
			if (memcmp(b, mapped, 12) == 0) {
				memcpy(a, b + 12, 4);
				fam = AF_INET;
			} else {
				memcpy(a, b, 16);
				fam = AF_INET6;
			}
		} else {
			return false;
		}
		if (fam != m->family)
			return false;
		unsigned full = m->prefix / 8, rest = m->prefix % 8;
		if (memcmp(a, m->net, full) != 0)
			return false;
		return rest == 0 || ((a[full] ^ m->net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
	}
	}
	return false;
}

uint64_t pol_idx_key(uint8_t kind, const void *data, size_t len)
{
	/* Eight bytes at a time: an identity is looked up on every decision. */
	const uint8_t *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ULL * (kind + 1) ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	uint64_t w = 0;
	memcpy(&w, p + i, len - i);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h ? h : 1;
}

static void idx_lookup(const struct bms_policy *p, uint8_t kind, const void *data, size_t len,
		       const struct bms_identity *who, uint64_t *roles)
{
	uint64_t key = pol_idx_key(kind, data, len);
	for (uint32_t s = (uint32_t)key & p->idx_mask; p->idx[s].hash != 0; s = (s + 1) & p->idx_mask) {
		const struct pol_idx *e = &p->idx[s];
		if (e->hash == key && member_match(&p->members[e->member], who))
			roles[e->role / 64] |= UINT64_C(1) << (e->role % 64);
	}
}

void pol_identity_roles(const struct bms_policy *p, const struct bms_identity *who, uint64_t roles[POL_ROLE_WORDS])
{
	memset(roles, 0, POL_ROLE_WORDS * sizeof(uint64_t));
	if (who == NULL)
		return;
	if (!who->authenticated) {
		for (uint32_t i = 0; i < p->n_addr; i++) {
			uint32_t r = p->addr_members[2 * i], m = p->addr_members[2 * i + 1];
			if (member_match(&p->members[m], who))
				roles[r / 64] |= UINT64_C(1) << (r % 64);
		}
		return;
	}
	if (p->n_cert && who->role[0] != '\0')
		idx_lookup(p, POL_M_CERT_ROLE, who->role, strnlen(who->role, sizeof(who->role)), who, roles);
	if (p->n_subject && who->subject[0] != '\0')
		idx_lookup(p, POL_M_SUBJECT, who->subject, strnlen(who->subject, sizeof(who->subject)), who, roles);
	if (p->n_fp && who->has_fingerprint)
		idx_lookup(p, POL_M_FINGERPRINT, who->fingerprint, 32, who, roles);
}

/* ---- matching ---- */

static bool op_match(const struct pol_rule *r, const struct bms_request *req, unsigned op)
{
	if (r->by_fc) {
		uint8_t fc = req->raw.modbus.fc & 0x7f;
		return req->proto == BMS_PROTO_MODBUS && (r->fcs[fc / 64] >> (fc % 64) & 1);
	}
	if (r->by_service) {
		const struct bacnet_fields *b = &req->raw.bacnet;
		if (req->proto != BMS_PROTO_BACNET || !b->has_service)
			return false;
		if (b->pdu_type == 0)
			return b->service < 64 && (r->svc_confirmed >> b->service & 1);
		if (b->pdu_type == 1)
			return b->service < 64 && (r->svc_unconfirmed >> b->service & 1);
		return false;
	}
	return op < 16 && (r->ops >> op & 1);
}

static bool span(uint32_t ts, uint32_t tc, uint32_t rs, uint64_t rc, bool contain)
{
	uint64_t te = (uint64_t)ts + (tc ? tc : 1), re = (uint64_t)rs + rc;
	if (contain)
		return ts >= rs && te <= re;
	return ts < re && rs < te;
}

static bool place_match(const struct bms_policy *p, const struct pol_rule *r, const struct bms_target *t, bool contain)
{
	switch (r->tkind) {
	case POL_TGT_ALL:
	case POL_TGT_DEVICE:
		return true;
	case POL_TGT_POINT: {
		const struct pol_point *pt = &p->points[r->point];
		if (pt->space == BMS_SPACE_BACNET_OBJECT)
			return t->space == BMS_SPACE_BACNET_OBJECT && t->object_type == pt->object_type &&
			       t->instance == pt->instance && t->property == pt->property;
		return t->space == pt->space && span(t->start, t->count, pt->start, pt->count, contain);
	}
	case POL_TGT_RANGE:
		return t->space == r->space && r->lo <= r->hi &&
		       span(t->start, t->count, r->lo, (uint64_t)r->hi - r->lo + 1, contain);
	case POL_TGT_OBJECT:
		return t->space == BMS_SPACE_BACNET_OBJECT && (r->any_object_type || t->object_type == r->object_type) &&
		       (r->instance == POL_ANY || t->instance == r->instance) &&
		       (r->property == POL_ANY || t->property == r->property);
	}
	return false;
}

struct clock {
	bool known;
	int wday;   /* 0 = Sunday */
	int minute; /* after local midnight */
};

static void clock_get(const struct bms_policy *p, int64_t now_us, struct clock *ck)
{
	if (ck->known)
		return;
	int64_t s = now_us / 1000000 - (now_us % 1000000 < 0);
	int64_t local = s + pol_tz_offset(&p->tz, s);
	int64_t days = local / 86400 - (local % 86400 < 0);
	int64_t sod = local - days * 86400;
	ck->wday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
	ck->minute = (int)(sod / 60);
	ck->known = true;
}

static bool schedule_match(const struct pol_schedule *sc, const struct clock *ck)
{
	int prev = (ck->wday + 6) % 7;
	for (uint32_t i = 0; i < sc->nwin; i++) {
		const struct pol_window *w = &sc->win[i];
		bool today = w->days >> ck->wday & 1, yesterday = w->days >> prev & 1;
		if (w->from < w->to) {
			if (today && ck->minute >= w->from && ck->minute < w->to)
				return true;
		} else if ((today && ck->minute >= w->from) || (yesterday && ck->minute < w->to)) {
			/* A window past midnight belongs to the day it starts on. */
			return true;
		}
	}
	return false;
}

static bool time_match(const struct bms_policy *p, const struct pol_rule *r, int64_t now_us, struct clock *ck)
{
	if (r->schedule < 0)
		return true;
	clock_get(p, now_us, ck);
	return schedule_match(&p->schedules[r->schedule], ck) != r->outside;
}

/* ---- values ---- */

enum vres { V_OK, V_NONE, V_NULL, V_PARTIAL, V_MASK, V_NAN };

static bool written(const struct bms_target *t)
{
	return t->has_value || (t->data != NULL && t->data_len > 0);
}

static uint16_t word_at(const struct bms_target *t, uint32_t i)
{
	return (uint16_t)(t->data[2 * i] << 8 | t->data[2 * i + 1]);
}

static enum vres bacnet_value(const struct bms_value *v, double *out)
{
	switch (v->type) {
	case BMS_VAL_NULL: return V_NULL;
	case BMS_VAL_BOOL: *out = v->b ? 1 : 0; return V_OK;
	case BMS_VAL_UNSIGNED:
	case BMS_VAL_ENUM: *out = (double)v->u; return V_OK;
	case BMS_VAL_SIGNED: *out = (double)v->i; return V_OK;
	case BMS_VAL_REAL: *out = v->d; return isfinite(v->d) ? V_OK : V_NAN;
	}
	return V_NONE;
}

/* The engineering value a target writes to a point it touches. */
static enum vres point_value(const struct pol_point *pt, const struct bms_request *req, const struct bms_target *t,
			     double *out)
{
	if (pt->space == BMS_SPACE_BACNET_OBJECT)
		return t->has_value ? bacnet_value(&t->value, out) : V_NONE;
	if (req->proto == BMS_PROTO_MODBUS && (req->raw.modbus.fc & 0x7f) == 22)
		return V_MASK;
	uint32_t tc = t->count ? t->count : 1;
	if (pt->start < t->start || (uint64_t)pt->start + pt->count > (uint64_t)t->start + tc)
		return V_PARTIAL;
	uint32_t idx = pt->start - t->start;
	if (pt->dtype == POL_T_BIT) {
		if (t->data != NULL && t->data_len > idx / 8) {
			*out = t->data[idx / 8] >> (idx % 8) & 1;
			return V_OK;
		}
		if (t->has_value) {
			*out = t->value.type == BMS_VAL_BOOL ? t->value.b : t->value.u != 0;
			return V_OK;
		}
		return V_NONE;
	}
	uint32_t raw;
	if (t->data != NULL && (size_t)t->data_len >= 2 * ((size_t)idx + pt->count)) {
		raw = word_at(t, idx);
		if (pt->count == 2)
			raw = raw << 16 | word_at(t, idx + 1); /* high word first: the Modbus convention */
	} else if (t->has_value && pt->count == 1 && t->value.type != BMS_VAL_NONE) {
		raw = (uint32_t)(t->value.type == BMS_VAL_SIGNED ? (uint64_t)t->value.i : t->value.u) & 0xffff;
	} else {
		return V_NONE;
	}
	double v;
	switch (pt->dtype) {
	case POL_T_INT16: v = (int16_t)(uint16_t)raw; break;
	case POL_T_UINT32: v = raw; break;
	case POL_T_INT32: v = (int32_t)raw; break;
	case POL_T_FLOAT32: {
		float f;
		memcpy(&f, &raw, sizeof(f));
		if (!isfinite(f))
			return V_NAN;
		v = f;
		break;
	}
	default: v = raw; break;
	}
	*out = v * pt->scale + pt->offset;
	return V_OK;
}

static const char *vres_why(enum vres r)
{
	switch (r) {
	case V_PARTIAL: return "the write covers only part of it";
	case V_MASK: return "a mask write leaves the result to the device";
	case V_NAN: return "the value is not a number";
	default: return "the request carries no value the gateway can read";
	}
}

/* ---- reasons ---- */

/* Reasons are cut at BMS_REASON_MAX by design: one place that says so. */
static void say(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

struct ctx {
	const struct bms_policy *p;
	const struct bms_policy_device *dev;
	const struct bms_request *req;
	const uint64_t *roles;
	const struct bms_identity *who;
	const char *label;
	unsigned op; /* the target's operation: FC 23's read half is a read in a write request */
	struct bms_decision *out;
};

/* Joins strings up to a NULL, cut at n: the common reasons without printf, which costs
 * more than a whole decision. */
static void cat(char *buf, size_t n, ...)
{
	va_list ap;
	size_t len = 0;
	va_start(ap, n);
	for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *)) {
		size_t l = strlen(s);
		if (l > n - 1 - len)
			l = n - 1 - len;
		memcpy(buf + len, s, l);
		len += l;
	}
	va_end(ap);
	buf[len] = '\0';
}

static void who_words(const struct ctx *x, char *buf, size_t n)
{
	if (x->label != NULL) {
		cat(buf, n, x->label, (char *)NULL);
		return;
	}
	for (uint32_t r = 0; r < x->p->nroles; r++)
		if (x->roles[r / 64] >> (r % 64) & 1) {
			cat(buf, n, "role ", x->p->roles[r].name, (char *)NULL);
			return;
		}
	if (x->who == NULL) {
		say(buf, n, "nobody");
	} else if (x->who->authenticated) {
		say(buf, n, "%s%s", x->who->subject[0] ? x->who->subject : "a client without subject",
			 x->who->role[0] ? " (no role of this policy)" : "");
	} else {
		char a[INET6_ADDRSTRLEN] = "?";
		if (x->who->addr.ss_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)&x->who->addr)->sin_addr, a, sizeof(a));
		else if (x->who->addr.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&x->who->addr)->sin6_addr, a, sizeof(a));
		say(buf, n, "address %s", a);
	}
}

static const char *space_word(uint8_t sp)
{
	switch (sp) {
	case BMS_SPACE_HOLDING_REGISTER: return "holding";
	case BMS_SPACE_INPUT_REGISTER: return "input";
	case BMS_SPACE_COIL: return "coil";
	case BMS_SPACE_DISCRETE_INPUT: return "discrete";
	case BMS_SPACE_FILE_RECORD: return "file record";
	}
	return "?";
}

static void target_words(const struct ctx *x, const struct bms_target *t, char *buf, size_t n)
{
	const struct bms_policy_device *d = x->dev;
	for (uint32_t i = d->point_first; i < d->point_first + d->npoints; i++) {
		const struct pol_point *pt = &x->p->points[i];
		bool same = pt->space == BMS_SPACE_BACNET_OBJECT
				    ? t->space == pt->space && t->object_type == pt->object_type &&
					      t->instance == pt->instance && t->property == pt->property
				    : t->space == pt->space && t->start == pt->start && (t->count ? t->count : 1) == pt->count;
		if (same) {
			cat(buf, n, pt->full, (char *)NULL);
			return;
		}
	}
	if (t->space == BMS_SPACE_NONE) {
		cat(buf, n, d->name, (char *)NULL);
	} else if (t->space == BMS_SPACE_BACNET_OBJECT) {
		const char *ot = pol_word_name(pol_object_types, t->object_type);
		const char *pr = pol_word_name(pol_properties, t->property);
		char o[24], q[24];
		say(o, sizeof(o), "object-type %u", t->object_type);
		say(q, sizeof(q), "property %u", t->property);
		say(buf, n, "%s %u %s on %s", ot ? ot : o, t->instance, pr ? pr : q, d->name);
	} else if (t->count > 1) {
		say(buf, n, "%s %u-%u on %s", space_word(t->space), t->start, t->start + t->count - 1, d->name);
	} else {
		say(buf, n, "%s %u on %s", space_word(t->space), t->start, d->name);
	}
}

/* The operation as a verb, for "X may not <verb> <target>". */
static const char *op_verb(unsigned op)
{
	switch (op) {
	case BMS_OP_READ: return "read";
	case BMS_OP_WRITE: return "write";
	case BMS_OP_COMMAND: return "command";
	case BMS_OP_FILE: return "transfer files with";
	case BMS_OP_DISCOVERY: return "discover";
	case BMS_OP_MANAGEMENT: return "manage";
	case BMS_OP_PRIVATE: return "send private requests to";
	default: return "send unknown requests to";
	}
}


static void set_rule(struct ctx *x, const struct pol_rule *r)
{
	x->out->rule_file = x->p->files[r->src.file];
	x->out->rule_line = r->src.line;
}

/* ---- the decision ---- */

struct pending {
	uint64_t key;
	int64_t val, free_after;
};

#define MAX_PENDING (2 * BMS_MAX_TARGETS)

static bool pending_has(const struct pending *pd, size_t n, uint64_t key)
{
	for (size_t i = 0; i < n; i++)
		if (pd[i].key == key)
			return true;
	return false;
}

/* Checks the limits of allow rule r for target t. true: within them. false: out->reason says why. */
static bool check_limits(struct ctx *x, struct bms_policy_state *st, const struct pol_rule *r,
			 const struct bms_target *t, int64_t now, struct pending *pd, size_t *npd)
{
	const struct bms_policy *p = x->p;
	char tw[96], a[32], b[32], v[32];
	bool wr = written(t);
	if (r->has_priority && (wr || x->op == BMS_OP_WRITE) && t->space == BMS_SPACE_BACNET_OBJECT) {
		unsigned prio = t->priority ? t->priority : 16; /* no priority given: the standard's default, 16 */
		if (prio < r->plo || prio > r->phi) {
			target_words(x, t, tw, sizeof(tw));
			say(x->out->reason, BMS_REASON_MAX, "write to %s at priority %u outside the allowed %u..%u",
				 tw, prio, r->plo, r->phi);
			return false;
		}
	}
	if (r->has_value && (wr || x->op == BMS_OP_WRITE)) {
		/* Words cost more than the check: they are made only for a deny. */
#define WORDS() (target_words(x, t, tw, sizeof(tw)), pol_fmt_num(a, sizeof(a), r->vlo), pol_fmt_num(b, sizeof(b), r->vhi))
		if (r->tkind == POL_TGT_POINT) {
			const struct pol_point *pt = &p->points[r->point];
			double val = 0;
			enum vres vr = point_value(pt, x->req, t, &val);
			if (vr != V_OK && vr != V_NULL) {
				WORDS();
				say(x->out->reason, BMS_REASON_MAX, "cannot check the value written to %s: %s", pt->full,
					 vres_why(vr));
				return false;
			}
			if (vr == V_OK && !(val >= r->vlo && val <= r->vhi)) {
				pol_fmt_num(v, sizeof(v), val);
				WORDS();
				cat(x->out->reason, BMS_REASON_MAX, "write ", v, pt->unit[0] ? " " : "", pt->unit, " to ",
				    pt->full, " outside the allowed ", a, "..", b, (char *)NULL);
				return false;
			}
		} else if (r->tkind == POL_TGT_OBJECT) {
			double val = 0;
			enum vres vr = t->has_value ? bacnet_value(&t->value, &val) : V_NONE;
			if (vr != V_OK && vr != V_NULL) {
				WORDS();
				say(x->out->reason, BMS_REASON_MAX, "cannot check the value written to %s: %s", tw,
					 vres_why(vr));
				return false;
			}
			if (vr == V_OK && !(val >= r->vlo && val <= r->vhi)) {
				pol_fmt_num(v, sizeof(v), val);
				WORDS();
				say(x->out->reason, BMS_REASON_MAX, "write %s to %s outside the allowed %s..%s", v, tw, a, b);
				return false;
			}
		} else if (r->tkind == POL_TGT_RANGE) {
			/* Raw values: every register (or coil) the request writes. */
			bool bit = t->space == BMS_SPACE_COIL || t->space == BMS_SPACE_DISCRETE_INPUT;
			uint32_t cnt = t->count ? t->count : 1;
			if ((x->req->raw.modbus.fc & 0x7f) == 22) {
				WORDS();
				say(x->out->reason, BMS_REASON_MAX, "cannot check the value written to %s: %s", tw,
					 vres_why(V_MASK));
				return false;
			}
			for (uint32_t i = 0; i < cnt; i++) {
				double val;
				if (bit && t->data != NULL && t->data_len > i / 8)
					val = t->data[i / 8] >> (i % 8) & 1;
				else if (!bit && t->data != NULL && t->data_len >= 2 * (i + 1))
					val = word_at(t, i);
				else if (t->has_value && cnt == 1)
					val = t->value.type == BMS_VAL_BOOL ? t->value.b : (double)t->value.u;
				else {
					WORDS();
				say(x->out->reason, BMS_REASON_MAX, "cannot check the value written to %s: %s",
						 tw, vres_why(V_NONE));
					return false;
				}
				if (bit)
					val = val != 0;
				if (!(val >= r->vlo && val <= r->vhi)) {
					pol_fmt_num(v, sizeof(v), val);
					WORDS();
				say(x->out->reason, BMS_REASON_MAX, "write raw %s to %s %u on %s outside the "
						 "allowed %s..%s", v, space_word(t->space), t->start + i, x->dev->name, a, b);
					return false;
				}
			}
		}
	}
#undef WORDS
	if (r->rate_n) {
		uint64_t key = r->key ^ 0x52415445ULL; /* "RATE" */
		key |= 1;
		if (!pending_has(pd, *npd, key)) {
			bool found = false;
			struct slot *s = st ? state_find(st, key, now, &found) : NULL;
			int64_t T = r->rate_period_us / r->rate_n, tau = r->rate_period_us - T;
			int64_t tat = found && s->val > now ? s->val : now;
			if (s == NULL) {
				say(x->out->reason, BMS_REASON_MAX, "no room to count requests for a rate limit: denied");
				return false;
			}
			if (tat - tau > now) {
				static const char *const per[] = { "second", "minute", "hour", "day" };
				int u = r->rate_period_us == 1000000 ? 0 : r->rate_period_us == 60000000 ? 1
					: r->rate_period_us == 3600000000LL ? 2 : 3;
				target_words(x, t, tw, sizeof(tw));
				say(x->out->reason, BMS_REASON_MAX, "rate limit of %u per %s reached for %s %s",
					 r->rate_n, per[u], op_verb(x->op), tw);
				return false;
			}
			if (*npd < MAX_PENDING)
				pd[(*npd)++] = (struct pending){ key, tat + T, tat + T };
		}
	}
	if (r->interval_us && (wr || x->op == BMS_OP_WRITE)) {
		uint64_t key;
		if (r->tkind == POL_TGT_POINT) {
			key = p->points[r->point].key;
		} else {
			uint32_t parts[5] = { t->space, t->start, t->object_type, t->instance, t->property };
			key = pol_hash(parts, sizeof(parts), x->dev->key);
		}
		key = (key ^ 0x494e54ULL) | 1; /* "INT" */
		if (!pending_has(pd, *npd, key)) {
			bool found = false;
			struct slot *s = st ? state_find(st, key, now, &found) : NULL;
			if (s == NULL) {
				say(x->out->reason, BMS_REASON_MAX, "no room to remember the last write for a "
					 "min-interval: denied");
				return false;
			}
			if (found && now - s->val < r->interval_us) {
				target_words(x, t, tw, sizeof(tw));
				/* Shown cut to tenths: "29.9 s" never reads as if the interval had passed. */
				pol_fmt_num(a, sizeof(a), (double)((now - s->val) / 100000) / 10);
				pol_fmt_num(b, sizeof(b), (double)r->interval_us / 1e6);
				say(x->out->reason, BMS_REASON_MAX, "write to %s %s s after the last one; at least %s s "
					 "apart", tw, a, b);
				return false;
			}
			if (*npd < MAX_PENDING)
				pd[(*npd)++] = (struct pending){ key, now, now + r->interval_us };
		}
	}
	return true;
}

/* Every declared point the target writes stays within its range, whichever rule allowed the write. */
static bool check_points(struct ctx *x, const struct bms_target *t)
{
	if (!written(t) && x->op != BMS_OP_WRITE)
		return true;
	const struct bms_policy_device *d = x->dev;
	for (uint32_t i = d->point_first; i < d->point_first + d->npoints; i++) {
		const struct pol_point *pt = &x->p->points[i];
		if (!pt->has_range || pt->space != t->space)
			continue;
		if (pt->space == BMS_SPACE_BACNET_OBJECT) {
			if (t->object_type != pt->object_type || t->instance != pt->instance || t->property != pt->property)
				continue;
		} else if (!span(t->start, t->count, pt->start, pt->count, false)) {
			continue;
		}
		double v = 0;
		enum vres vr = point_value(pt, x->req, t, &v);
		if (vr == V_NULL)
			continue; /* BACnet relinquish: the device falls back to a lower priority, not to a new value */
		if (vr != V_OK) {
			say(x->out->reason, BMS_REASON_MAX, "cannot check the value written to %s: %s", pt->full,
				 vres_why(vr));
			return false;
		}
		char vs[32], ls[32];
		if (v < pt->lo || v > pt->hi) {
			pol_fmt_num(vs, sizeof(vs), v);
			pol_fmt_num(ls, sizeof(ls), v < pt->lo ? pt->lo : pt->hi);
			cat(x->out->reason, BMS_REASON_MAX, "write ", vs, pt->unit[0] ? " " : "", pt->unit, " to ", pt->full,
			    v < pt->lo ? " below" : " above", " its limit ", ls, (char *)NULL);
			return false;
		}
	}
	return true;
}

static bool roles_match(const struct pol_rule *r, const uint64_t *roles)
{
	if (r->anyone)
		return true;
	uint64_t any = 0;
	for (int w = 0; w < POL_ROLE_WORDS; w++)
		any |= r->roles[w] & roles[w];
	return any != 0;
}

static void decide(const struct bms_policy *p, struct bms_policy_state *st, const uint64_t *roles,
		   const struct bms_identity *who, const char *who_label, const struct bms_policy_device *dev,
		   const struct bms_request *req, int64_t now, struct bms_decision *out)
{
	out->verdict = BMS_VERDICT_DENY;
	out->rule_file = NULL;
	out->rule_line = 0;
	out->reason[0] = '\0';
	struct ctx x = { .p = p, .dev = dev, .req = req, .roles = roles, .who = who, .label = who_label, .out = out };
	bool monitor = p != NULL && p->site_mode == 1;
	char ww[96], tw[96];
	if (p == NULL) {
		say(out->reason, BMS_REASON_MAX, "no policy is loaded");
		return;
	}
	if (dev == NULL) {
		say(out->reason, BMS_REASON_MAX, "no device is declared at this address and unit");
		goto deny;
	}
	monitor = (dev->mode >= 0 ? dev->mode : p->site_mode) == 1;
	if (req->dir != BMS_DIR_REQUEST) {
		say(out->reason, BMS_REASON_MAX, "not a request");
		goto deny;
	}
	if (req->proto != dev->proto) {
		say(out->reason, BMS_REASON_MAX, "%s request to %s device %s",
			 req->proto == BMS_PROTO_MODBUS ? "Modbus" : req->proto == BMS_PROTO_BACNET ? "BACnet" : "unknown",
			 dev->proto == BMS_PROTO_MODBUS ? "Modbus" : "BACnet", dev->name);
		goto deny;
	}
	if (req->ntargets > BMS_MAX_TARGETS) {
		say(out->reason, BMS_REASON_MAX, "request has %u targets; at most %d can be checked",
			 req->ntargets, BMS_MAX_TARGETS);
		goto deny;
	}
	uint64_t bad = req->anomalies & ~p->accept_anomalies[req->proto];
	if (bad != 0) {
		unsigned bit = (unsigned)__builtin_ctzll(bad);
		const char *name = bms_anomaly_name((enum bms_proto)req->proto, bit);
		if (name != NULL)
			say(out->reason, BMS_REASON_MAX, "the decoder flagged this request (%s): it cannot be "
				 "checked", name);
		else
			say(out->reason, BMS_REASON_MAX, "the decoder flagged this request (anomaly bit %u): it "
				 "cannot be checked", bit);
		goto deny;
	}

	struct clock ck = { .known = false };
	struct pending pd[MAX_PENDING];
	size_t npd = 0;
	const struct pol_rule *first = NULL;
	static const struct bms_target none = { .space = BMS_SPACE_NONE, .array_index = BMS_NO_INDEX };
	uint16_t nt = req->ntargets ? req->ntargets : 1;
	for (uint16_t ti = 0; ti < nt; ti++) {
		const struct bms_target *t = req->ntargets ? &req->targets[ti] : &none;
		const struct pol_rule *hit = NULL, *near = NULL;
		/* FC 23 reads one range and writes another: the range it only reads is a read, held to
		 * the read rules and to nothing that constrains written values (a `range`, a rule's
		 * `value`, `priority`, `min-interval`). */
		unsigned op = req->op;
		if (req->proto == BMS_PROTO_MODBUS && (req->raw.modbus.fc & 0x7f) == 23 && !written(t))
			op = BMS_OP_READ;
		x.op = op;
		for (uint32_t k = 0; k < dev->nrules; k++) {
			const struct pol_rule *r = &p->rules[dev->rules[k]];
			if (!op_match(r, req, op) || !roles_match(r, roles) || !place_match(p, r, t, r->allow))
				continue;
			if (!time_match(p, r, now, &ck)) {
				if (near == NULL && r->allow)
					near = r;
				continue;
			}
			hit = r;
			break;
		}
		if (hit == NULL) {
			/* Default deny: no rule decided, not even one that allowed an earlier target. */
			out->rule_file = NULL;
			out->rule_line = 0;
			who_words(&x, ww, sizeof(ww));
			target_words(&x, t, tw, sizeof(tw));
			if (near != NULL)
				say(out->reason, BMS_REASON_MAX, "no rule allows %s to %s %s at this time (%s:%u allows "
					 "it at other times)", ww, op_verb(op), tw, p->files[near->src.file], near->src.line);
			else
				cat(out->reason, BMS_REASON_MAX, "no rule allows ", ww, " to ", op_verb(op), " ", tw, (char *)NULL);
			goto deny;
		}
		set_rule(&x, hit);
		if (!hit->allow) {
			who_words(&x, ww, sizeof(ww));
			target_words(&x, t, tw, sizeof(tw));
			cat(out->reason, BMS_REASON_MAX, ww, " may not ", op_verb(op), " ", tw, (char *)NULL);
			goto deny;
		}
		if (!check_limits(&x, st, hit, t, now, pd, &npd) || !check_points(&x, t))
			goto deny;
		if (first == NULL)
			first = hit;
	}
	/* Allowed: now, and only now, the counters move. */
	for (size_t i = 0; i < npd; i++) {
		bool found;
		struct slot *s = state_find(st, pd[i].key, now, &found);
		if (s != NULL)
			*s = (struct slot){ pd[i].key, pd[i].val, pd[i].free_after };
	}
	set_rule(&x, first);
	out->verdict = BMS_VERDICT_ALLOW;
	/* The allowing rule's own words (shorter than BMS_REASON_MAX by construction). */
	_Static_assert(sizeof(first->text) <= BMS_REASON_MAX, "rule text fits a reason");
	/* A constant size compiles to a few vector moves; a variable one to `rep movs`, slower here. */
	memcpy(out->reason, first->text, sizeof(first->text));
	return;
deny:
	if (monitor)
		out->verdict = BMS_VERDICT_MONITOR_DENY;
}

void pol_decide_roles(const struct bms_policy *p, struct bms_policy_state *st, const uint64_t roles[POL_ROLE_WORDS],
		      const char *who_label, const struct bms_policy_device *dev, const struct bms_request *req,
		      int64_t now_unix_us, struct bms_decision *out)
{
	decide(p, st, roles, NULL, who_label, dev, req, now_unix_us, out);
}

void bms_policy_decide(const struct bms_policy *p, struct bms_policy_state *st, const struct bms_identity *who,
		       const struct bms_policy_device *dev, const struct bms_request *req, int64_t now_unix_us,
		       struct bms_decision *out)
{
	uint64_t roles[POL_ROLE_WORDS] = { 0 };
	if (p != NULL)
		pol_identity_roles(p, who, roles);
	decide(p, st, roles, who, NULL, dev, req, now_unix_us, out);
}

uint64_t bms_policy_serial(const struct bms_policy *p)
{
	return p ? p->serial : 0;
}

void bms_policy_resolve(const struct bms_policy *p, const struct bms_identity *who, struct bms_policy_roles *out)
{
	_Static_assert(sizeof(out->bits) == POL_ROLE_WORDS * sizeof(uint64_t), "role words");
	pol_identity_roles(p, who, out->bits);
	out->serial = p->serial;
}

void bms_policy_decide_resolved(const struct bms_policy *p, struct bms_policy_state *st,
				const struct bms_identity *who, const struct bms_policy_roles *roles,
				const struct bms_policy_device *dev, const struct bms_request *req, int64_t now_unix_us,
				struct bms_decision *out)
{
	if (p == NULL || roles == NULL || roles->serial != p->serial) {
		bms_policy_decide(p, st, who, dev, req, now_unix_us, out);
		return;
	}
	decide(p, st, roles->bits, who, NULL, dev, req, now_unix_us, out);
}
