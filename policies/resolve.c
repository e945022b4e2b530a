/* policies/resolve.c: after every file is read: names a rule uses -> indexes
 * (roles, schedules, devices, points), the checks that need both the rule and what it names,
 * and the per-device rule lists. */
#include <stdlib.h>
#include <string.h>

#include "policies/compile_int.h"

/* ---- lookups ---- */

int32_t pol_find_device(const struct bms_policy *p, const char *name)
{
	for (uint32_t i = 0; i < p->ndevices; i++)
		if (strcmp(p->devices[i].name, name) == 0)
			return (int32_t)i;
	return -1;
}

int32_t pol_role_find(const struct bms_policy *p, const char *name)
{
	for (uint32_t i = 0; i < p->nroles; i++)
		if (strcmp(p->roles[i].name, name) == 0)
			return (int32_t)i;
	return -1;
}

int32_t pol_find_schedule(const struct bms_policy *p, const char *name)
{
	for (uint32_t i = 0; i < p->nschedules; i++)
		if (p->schedules[i].name[0] && strcmp(p->schedules[i].name, name) == 0)
			return (int32_t)i;
	return -1;
}


/* ---- after every file: resolve names, build indexes, warn ---- */

static int32_t resolve_role(struct cc *c, const struct ref *rf)
{
	int32_t r = pol_role_find(c->p, rf->text);
	if (r >= 0)
		return r;
	/* A role no block declares: the certificate role of that name, with a warning
	 * because it may as well be a typing error. */
	const char *names[POL_MAX_ROLES];
	for (uint32_t k = 0; k < c->p->nroles; k++)
		names[k] = c->p->roles[k].declared ? c->p->roles[k].name : NULL;
	const char *m = bms_suggest(rf->text, names, c->p->nroles);
	if (m)
		WARN_S(c, rf->src, "role '%s' is not declared; it matches clients whose certificate carries role '%s'. "
				   "Did you mean '%s'?", rf->text, rf->text, m);
	else
		WARN_S(c, rf->src, "role '%s' is not declared; it matches clients whose certificate carries role '%s'",
		       rf->text, rf->text);
	if (c->p->nroles >= POL_MAX_ROLES) {
		ERR_S(c, rf->src, "more than %d roles", POL_MAX_ROLES);
		return -1;
	}
	if (pol_grow(c, (void **)&c->p->roles, &c->cap_roles, c->p->nroles, sizeof(struct pol_role)) < 0 ||
	    pol_grow(c, (void **)&c->p->members, &c->cap_members, c->p->nmembers, sizeof(struct pol_member)) < 0)
		return -1;
	struct pol_role *ro = &c->p->roles[c->p->nroles];
	memset(ro, 0, sizeof(*ro));
	cpy(ro->name, sizeof(ro->name), rf->text);
	ro->src = rf->src;
	ro->member_first = c->p->nmembers;
	ro->nmembers = 1;
	struct pol_member *mb = &c->p->members[c->p->nmembers++];
	memset(mb, 0, sizeof(*mb));
	mb->kind = POL_M_CERT_ROLE;
	cpy(mb->text, sizeof(mb->text), rf->text);
	return (int32_t)c->p->nroles++;
}

/* Device names in order, so that resolving 10,000 rules over 5,000 devices is not 50 million compares. */
static int cmp_dev_name(const void *a, const void *b, void *arg)
{
	const struct bms_policy *p = arg;
	return strcmp(p->devices[*(const uint32_t *)a].name, p->devices[*(const uint32_t *)b].name);
}

static int32_t find_device_sorted(struct cc *c, const char *name)
{
	if (c->dev_sorted == NULL)
		return pol_find_device(c->p, name);
	uint32_t lo = 0, hi = c->p->ndevices;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int r = strcmp(c->p->devices[c->dev_sorted[mid]].name, name);
		if (r == 0)
			return (int32_t)c->dev_sorted[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int resolve_rule(struct cc *c, uint32_t ri)
{
	struct pol_rule *r = &c->p->rules[ri];
	struct rule_refs *rf = &c->refs[ri];
	for (uint32_t k = 0; k < rf->nroles; k++) {
		int32_t ro = resolve_role(c, &rf->roles[k]);
		if (ro < 0)
			return -1;
		c->p->roles[ro].used = true;
		r->roles[ro / 64] |= UINT64_C(1) << (ro % 64);
	}
	if (rf->has_schedule) {
		int32_t sc = pol_find_schedule(c->p, rf->schedule.text);
		if (sc < 0) {
			const char *names[256];
			size_t n = 0;
			for (uint32_t k = 0; k < c->p->nschedules && n < 256; k++)
				names[n++] = c->p->schedules[k].name;
			const char *m = bms_suggest(rf->schedule.text, names, n);
			if (m)
				ERR_S(c, rf->schedule.src, "unknown schedule '%s'; did you mean '%s'?", rf->schedule.text, m);
			else
				ERR_S(c, rf->schedule.src, "unknown schedule '%s' (declare it with: schedule %s mon-fri "
							   "07:00-19:00)", rf->schedule.text, rf->schedule.text);
			return -1;
		}
		c->p->schedules[sc].used = true;
		r->schedule = sc;
	}
	if (!rf->has_device) {
		if (r->has_value || r->has_priority) {
			ERR_S(c, rf->value_src.line ? rf->value_src : r->src,
			      "a value or priority limit needs a point, a register range or a BACnet object to apply to");
			return -1;
		}
		return 0;
	}
	int32_t d = find_device_sorted(c, rf->device.text);
	if (d < 0) {
		const char *names[1024];
		size_t n = 0;
		for (uint32_t k = 0; k < c->p->ndevices && n < 1024; k++)
			names[n++] = c->p->devices[k].name;
		const char *m = bms_suggest(rf->device.text, names, n);
		if (m)
			ERR_S(c, rf->device.src, "unknown device '%s'; did you mean '%s'?", rf->device.text, m);
		else
			ERR_S(c, rf->device.src, "unknown device '%s'", rf->device.text);
		return -1;
	}
	struct bms_policy_device *dv = &c->p->devices[d];
	dv->used = true;
	r->device = (uint32_t)d;
	if (dv->proto == BMS_PROTO_MODBUS && (r->by_service || r->tkind == POL_TGT_OBJECT)) {
		ERR_S(c, rf->device.src, "'%s' is a Modbus device: BACnet services and objects do not apply to it",
		      dv->name);
		return -1;
	}
	if (dv->proto == BMS_PROTO_BACNET && (r->by_fc || r->tkind == POL_TGT_RANGE)) {
		ERR_S(c, rf->device.src, "'%s' is a BACnet device: Modbus function codes and registers do not apply to it",
		      dv->name);
		return -1;
	}
	if (rf->has_point) {
		int32_t pi = -1;
		const char *names[1024];
		size_t n = 0;
		for (uint32_t k = dv->point_first; k < dv->point_first + dv->npoints; k++) {
			if (strcmp(c->p->points[k].name, rf->point.text) == 0)
				pi = (int32_t)k;
			if (n < 1024)
				names[n++] = c->p->points[k].name;
		}
		if (pi < 0) {
			const char *m = bms_suggest(rf->point.text, names, n);
			if (m)
				ERR_S(c, rf->point.src, "device '%s' has no point '%s'; did you mean '%s'?", dv->name,
				      rf->point.text, m);
			else
				ERR_S(c, rf->point.src, "device '%s' has no point '%s'", dv->name, rf->point.text);
			return -1;
		}
		c->p->points[pi].used = true;
		r->point = (uint32_t)pi;
		const struct pol_point *pt = &c->p->points[pi];
		if (r->has_value && rf->value_onoff != (pt->dtype == POL_T_BIT) && pt->dtype != POL_T_BACNET) {
			ERR_S(c, rf->value_src, pt->dtype == POL_T_BIT ? "'%s' is a coil: its value is on or off"
								      : "'%s' holds a number: write its value range "
									"such as 15..30, not on or off",
			      pt->full);
			return -1;
		}
		if (r->has_value && pt->has_range && (r->vlo < pt->lo || r->vhi > pt->hi) && r->vlo <= r->vhi) {
			char a[32], b[32];
			pol_fmt_num(a, sizeof(a), pt->lo);
			pol_fmt_num(b, sizeof(b), pt->hi);
			WARN_S(c, rf->value_src, "value range goes beyond the range %s..%s of point '%s'; writes outside "
						 "%s..%s stay denied", a, b, pt->full, a, b);
		}
	}
	if (r->has_priority && dv->proto != BMS_PROTO_BACNET) {
		ERR_S(c, rf->prio_src, "'priority' is a BACnet write priority; '%s' is a Modbus device", dv->name);
		return -1;
	}
	if ((r->has_value || r->has_priority) && r->tkind == POL_TGT_DEVICE) {
		ERR_S(c, rf->value_src.line ? rf->value_src : r->src,
		      "a value or priority limit needs a point, a register range or a BACnet object to apply to");
		return -1;
	}
	if (r->tkind == POL_TGT_RANGE && r->has_value && rf->value_onoff !=
	    (r->space == BMS_SPACE_COIL || r->space == BMS_SPACE_DISCRETE_INPUT)) {
		ERR_S(c, rf->value_src, rf->value_onoff ? "'on' and 'off' are values of coils" :
			"a coil's value is on or off");
		return -1;
	}
	return 0;
}

bool pol_resolve(struct cc *c)
{
	struct bms_policy *p = c->p;
	bool ok = true;
	c->dev_sorted = malloc((p->ndevices ? p->ndevices : 1) * sizeof(uint32_t));
	if (c->dev_sorted != NULL) {
		for (uint32_t i = 0; i < p->ndevices; i++)
			c->dev_sorted[i] = i;
		qsort_r(c->dev_sorted, p->ndevices, sizeof(uint32_t), cmp_dev_name, p);
	}
	for (uint32_t i = 0; i < p->nrules; i++)
		if (resolve_rule(c, i) < 0) {
			ok = false;
			p->rules[i].tkind = 0xff; /* unusable; the compile fails anyway */
		}
	free(c->dev_sorted);
	c->dev_sorted = NULL;
	if (c->oom || !ok)
		return false;
	if (pol_build_identity_index(p) < 0 || pol_build_device_index(p) < 0) {
		c->oom = true;
		return false;
	}
	/* Per device, the rules that can apply there, in order: one pass over the rules, not one per device. */
	uint32_t nglobal = 0;
	uint32_t *per_dev = calloc(p->ndevices ? p->ndevices : 1, sizeof(uint32_t));
	if (per_dev == NULL) {
		c->oom = true;
		return false;
	}
	for (uint32_t i = 0; i < p->nrules; i++)
		p->rules[i].tkind == POL_TGT_ALL ? nglobal++ : per_dev[p->rules[i].device]++;
	for (uint32_t d = 0; d < p->ndevices; d++) {
		struct bms_policy_device *dv = &p->devices[d];
		if (dv->mode < 0)
			dv->mode = p->site_mode; /* a device that says nothing follows the site */
		uint32_t n = nglobal + per_dev[d];
		dv->rules = n ? malloc(n * sizeof(uint32_t)) : NULL;
		if (n && dv->rules == NULL) {
			c->oom = true;
			free(per_dev);
			return false;
		}
		dv->nrules = 0;
	}
	free(per_dev);
	for (uint32_t i = 0; i < p->nrules; i++) {
		if (p->rules[i].tkind == POL_TGT_ALL) {
			for (uint32_t d = 0; d < p->ndevices; d++)
				p->devices[d].rules[p->devices[d].nrules++] = i;
		} else {
			struct bms_policy_device *dv = &p->devices[p->rules[i].device];
			dv->rules[dv->nrules++] = i;
		}
	}
	return true;
}
