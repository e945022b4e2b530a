/* policies/lint.c: warnings about a policy that compiles: shadowed rules, devices
 * no rule applies to, roles and schedules declared and unused, hours without a time zone, devices
 * at one address. */
#include <string.h>

#include "policies/compile_int.h"

/* Does rule a decide every request rule b could match? (Then b can never match.) */
static bool covers(const struct bms_policy *p, const struct pol_rule *a, const struct pol_rule *b)
{
	if (a->schedule >= 0 && !(b->schedule == a->schedule && b->outside == a->outside))
		return false;
	if (!a->anyone) {
		if (b->anyone)
			return false;
		for (int w = 0; w < POL_ROLE_WORDS; w++)
			if (b->roles[w] & ~a->roles[w])
				return false;
	}
	/* operations */
	if (a->ops != 0xffff) {
		if (a->by_fc != b->by_fc || a->by_service != b->by_service)
			return false;
		if (a->by_fc) {
			for (int w = 0; w < 4; w++)
				if (b->fcs[w] & ~a->fcs[w])
					return false;
		} else if (a->by_service) {
			if ((b->svc_confirmed & ~a->svc_confirmed) || (b->svc_unconfirmed & ~a->svc_unconfirmed))
				return false;
		} else if (b->ops & ~a->ops) {
			return false;
		}
	}
	/* place */
	if (a->tkind == POL_TGT_ALL)
		return true;
	if (b->tkind == POL_TGT_ALL || a->device != b->device)
		return false;
	if (a->tkind == POL_TGT_DEVICE)
		return true;
	const struct pol_point *bp = b->tkind == POL_TGT_POINT ? &p->points[b->point] : NULL;
	switch (a->tkind) {
	case POL_TGT_POINT: {
		const struct pol_point *ap = &p->points[a->point];
		if (bp != NULL)
			return bp == ap;
		if (b->tkind == POL_TGT_RANGE && ap->space != BMS_SPACE_BACNET_OBJECT)
			return b->space == ap->space && b->lo >= ap->start && b->hi < ap->start + ap->count &&
			       b->lo <= b->hi;
		return false;
	}
	case POL_TGT_RANGE:
		if (a->lo > a->hi)
			return false;
		if (bp != NULL)
			return bp->space == a->space && bp->start >= a->lo && bp->start + bp->count - 1 <= a->hi;
		return b->tkind == POL_TGT_RANGE && b->space == a->space && b->lo >= a->lo && b->hi <= a->hi;
	case POL_TGT_OBJECT: {
		uint16_t bt;
		uint32_t bi, bpr;
		bool bany;
		if (bp != NULL) {
			bt = bp->object_type, bi = bp->instance, bpr = bp->property, bany = false;
		} else if (b->tkind == POL_TGT_OBJECT) {
			bt = b->object_type, bi = b->instance, bpr = b->property, bany = b->any_object_type;
		} else {
			return false;
		}
		if (!a->any_object_type && (bany || bt != a->object_type))
			return false;
		if (a->instance != POL_ANY && bi != a->instance)
			return false;
		if (a->property != POL_ANY && bpr != a->property)
			return false;
		return true;
	}
	}
	return false;
}


void pol_lint(struct cc *c, bool quiet)
{
	struct bms_policy *p = c->p;
	/* Devices at one place: the first declared gets every request. */
	for (uint32_t d = 0; d < p->ndevices; d++) {
		const struct bms_policy_device *dv = &p->devices[d];
		if (dv->proto == BMS_PROTO_BACNET) {
			/* Two declarations at one address and port are told apart by instance only. */
			for (uint32_t o = 0; o < d; o++) {
				const struct bms_policy_device *ov = &p->devices[o];
				if (ov->proto == dv->proto && ov->addr_len == dv->addr_len &&
				    memcmp(&ov->addr, &dv->addr, dv->addr_len) == 0 &&
				    (!ov->has_instance || !dv->has_instance || ov->instance == dv->instance))
					WARN_S(c, dv->src, "device '%s' has the same address as '%s'; requests go to "
							   "the first one declared", dv->name, ov->name);
			}
		} else {
			for (uint32_t o = 0; o < d; o++) {
				const struct bms_policy_device *ov = &p->devices[o];
				bool share = false;
				for (int w = 0; w < 4; w++)
					share |= (ov->units[w] & dv->units[w]) != 0;
				if (ov->proto == dv->proto && share && ov->addr_len == dv->addr_len &&
				    memcmp(&ov->addr, &dv->addr, dv->addr_len) == 0)
					WARN_S(c, dv->src, "device '%s' shares address and unit id with '%s'; requests go "
							   "to the first one declared", dv->name, ov->name);
			}
		}
	}
	/* Shadowed rules: an earlier rule that decides everything this one covers. Only rules that
	 * can meet share a device's list, so each list is searched, not every pair in the file. */
	for (uint32_t b = 0; b < p->nrules && !quiet; b++) {
		const struct pol_rule *rb = &p->rules[b];
		const uint32_t *list = NULL;
		uint32_t nlist = 0;
		if (rb->tkind != POL_TGT_ALL) {
			list = p->devices[rb->device].rules;
			nlist = p->devices[rb->device].nrules;
		}
		for (uint32_t k = 0;; k++) {
			uint32_t a;
			if (list != NULL) {
				if (k >= nlist || list[k] >= b)
					break;
				a = list[k];
			} else {
				/* a rule on every device is covered only by an earlier rule on every device */
				if (k >= b)
					break;
				a = k;
				if (p->rules[a].tkind != POL_TGT_ALL)
					continue;
			}
			if (covers(p, &p->rules[a], rb)) {
				WARN_S(c, rb->src, "this rule can never match: the rule at %s:%u decides every "
						   "request it covers", pol_src_file(c, p->rules[a].src), p->rules[a].src.line);
				break;
			}
		}
	}
	for (uint32_t d = 0; d < p->ndevices && !quiet; d++)
		if (p->devices[d].nrules == 0)
			WARN_S(c, p->devices[d].src, "no rule applies to device '%s': every request to it is denied",
			       p->devices[d].name);
	for (uint32_t i = 0; i < p->nroles; i++) {
		const struct pol_role *r = &p->roles[i];
		if (r->declared && !r->used && !quiet)
			WARN_S(c, r->src, "role '%s' is declared but no rule names it", r->name);
		if (r->declared && r->nmembers == 0)
			WARN_S(c, r->src, "role '%s' has no members: nobody holds it", r->name);
	}
	/* Hours without a zone are UTC hours: in most buildings an hour or two off the wall clock. */
	if (!c->tz_set && !quiet)
		for (uint32_t i = 0; i < p->nschedules; i++)
			if (p->schedules[i].used) {
				WARN_S(c, p->schedules[i].src, "no timezone is set: these hours are UTC, not the site's "
							       "wall clock (add e.g. 'timezone Europe/Berlin')");
				break;
			}
	for (uint32_t i = 0; i < p->nschedules; i++)
		if (!p->schedules[i].used && !quiet)
			WARN_S(c, p->schedules[i].src, "schedule '%s' is declared but no rule uses it",
			       p->schedules[i].name);
}

