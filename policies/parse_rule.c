/* policies/parse_rule.c: allow and deny rules: who, operations, target, conditions.
 * Names are only recorded here (struct rule_refs); resolve.c resolves them once every file is read. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policies/compile_int.h"

/* ---- rules ---- */

static const char *const op_words[] = { "read", "write", "command", "file", "discovery", "management", "private",
					"unknown", "any", "function", "service" };
static const char *const cond_words[] = { "value", "priority", "during", "outside", "limit", "min-interval" };

bool pol_is_cond(const struct bms_tok *t)
{
	for (size_t i = 0; i < sizeof(cond_words) / sizeof(cond_words[0]); i++)
		if (is(t, cond_words[i]))
			return true;
	return false;
}

static int parse_duration(const char *s, int64_t *us)
{
	char *e;
	errno = 0;
	unsigned long long n = strtoull(s, &e, 10);
	if (e == s || errno != 0 || n == 0 || n > 100000000ULL || !isdigit((unsigned char)s[0]))
		return -1;
	int64_t mul;
	if (strcmp(e, "s") == 0)
		mul = 1;
	else if (strcmp(e, "m") == 0 || strcmp(e, "min") == 0)
		mul = 60;
	else if (strcmp(e, "h") == 0)
		mul = 3600;
	else if (strcmp(e, "d") == 0)
		mul = 86400;
	else
		return -1;
	*us = (int64_t)n * mul * 1000000;
	return 0;
}

static uint32_t ref_set(struct cc *c, struct ref *r, const struct bms_tok *t)
{
	r->src = pol_here(c, t);
	cpy(r->text, sizeof(r->text), t->text);
	return 0;
}

/* Operations: any | CLASS[, CLASS...] | function N[-M][, ...] | service NAME[, NAME...] */
static int parse_ops(struct cc *c, const struct stmt *s, uint32_t *i, struct pol_rule *r)
{
	struct bms_tok *t = st_at(s, *i);
	if (is(t, "any")) {
		r->ops = 0xffff;
		(*i)++;
		return 0;
	}
	if (is(t, "function") || is(t, "fc")) {
		r->by_fc = true;
		for (;;) {
			(*i)++;
			uint32_t lo, hi;
			if (pol_parse_urange(c, st_at(s, *i), 255, &lo, &hi, "a Modbus function code") < 0)
				return -1;
			for (uint32_t f = lo; f <= hi; f++)
				r->fcs[f / 64] |= UINT64_C(1) << (f % 64);
			(*i)++;
			if (st_at(s, *i)->kind != BMS_TOK_COMMA)
				return 0;
		}
	}
	if (is(t, "service")) {
		r->by_service = true;
		for (;;) {
			(*i)++;
			struct bms_tok *v = st_at(s, *i);
			int64_t sv = pol_word_find(pol_confirmed_services, v->text);
			if (v->kind == BMS_TOK_WORD && sv >= 0) {
				r->svc_confirmed |= UINT64_C(1) << sv;
			} else if (v->kind == BMS_TOK_WORD && (sv = pol_word_find(pol_unconfirmed_services, v->text)) >= 0) {
				r->svc_unconfirmed |= UINT64_C(1) << sv;
			} else {
				const char *m = NULL;
				if (v->kind == BMS_TOK_WORD) {
					m = pol_nearest_word(v->text, pol_confirmed_services);
					if (m == NULL)
						m = pol_nearest_word(v->text, pol_unconfirmed_services);
				}
				if (m)
					ERR_T(c, v, "unknown BACnet service '%s'; did you mean '%s'?", v->text, m);
				else
					ERR_T(c, v, "expected a BACnet service name (writeProperty, who-Is, ...) at '%s'",
					      bms_tok_show(v));
				return -1;
			}
			(*i)++;
			if (st_at(s, *i)->kind != BMS_TOK_COMMA)
				return 0;
		}
	}
	for (;;) {
		t = st_at(s, *i);
		enum bms_op op = t->kind == BMS_TOK_WORD ? bms_op_from_name(t->text) : BMS_OP_NONE;
		if (op == BMS_OP_NONE) {
			pol_err_unknown(c, t, "operation", op_words, sizeof(op_words) / sizeof(op_words[0]),
				    "read, write, command, file, discovery, management, private, any, function N or "
				    "service NAME");
			return -1;
		}
		r->ops |= (uint16_t)(1u << op);
		(*i)++;
		if (st_at(s, *i)->kind != BMS_TOK_COMMA)
			return 0;
		(*i)++;
	}
}

/* [on] [all | DEVICE | DEVICE.POINT | DEVICE SPACE A[-B] | DEVICE OBJTYPE INST|* [PROP|*]] */
static int parse_target(struct cc *c, const struct stmt *s, uint32_t *i, struct pol_rule *r, struct rule_refs *rf)
{
	struct bms_tok *t = st_at(s, *i);
	if (is(t, "on"))
		t = st_at(s, ++*i);
	r->tkind = POL_TGT_ALL;
	if (*i >= s->n || pol_is_cond(t))
		return 0;
	if (is(t, "all")) {
		(*i)++;
		return 0;
	}
	if (t->kind != BMS_TOK_WORD) {
		ERR_T(c, t, "expected a device or device.point at %s", bms_tok_show(t));
		return -1;
	}
	char a[BMS_TOK_MAX + 1];
	cpy(a, sizeof(a), t->text);
	char *dot = strchr(a, '.');
	if (dot != NULL) {
		*dot = '\0';
		struct bms_tok dt = *t;
		cpy(dt.text, sizeof(dt.text), a);
		dt.width = (uint32_t)(dot - a);
		ref_set(c, &rf->device, &dt);
		rf->has_device = true;
		if (strcmp(dot + 1, "*") == 0) {
			r->tkind = POL_TGT_DEVICE;
		} else {
			struct bms_tok ptk = *t;
			ptk.col += (uint32_t)(dot + 1 - a);
			ptk.off += (uint32_t)(dot + 1 - a);
			ptk.width = t->width > (uint32_t)(dot + 1 - a) ? t->width - (uint32_t)(dot + 1 - a) : 1;
			cpy(ptk.text, sizeof(ptk.text), dot + 1);
			ref_set(c, &rf->point, &ptk);
			rf->has_point = true;
			r->tkind = POL_TGT_POINT;
		}
		(*i)++;
		return 0;
	}
	ref_set(c, &rf->device, t);
	rf->has_device = true;
	r->tkind = POL_TGT_DEVICE;
	(*i)++;
	t = st_at(s, *i);
	if (*i >= s->n || pol_is_cond(t))
		return 0;
	int sp = pol_modbus_space(t);
	if (sp >= 0) {
		r->tkind = POL_TGT_RANGE;
		r->space = (uint8_t)sp;
		(*i)++;
		if (pol_parse_urange(c, st_at(s, *i), 65535, &r->lo, &r->hi, "a Modbus address") < 0)
			return -1;
		(*i)++;
		return 0;
	}
	if (is(t, "object")) { /* `object *`: any object */
		r->tkind = POL_TGT_OBJECT;
		r->any_object_type = true;
		r->instance = POL_ANY;
		r->property = POL_ANY;
		(*i)++;
		if (is(st_at(s, *i), "*"))
			(*i)++;
		return 0;
	}
	int64_t ot = t->kind == BMS_TOK_WORD ? pol_word_find(pol_object_types, t->text) : -1;
	if (ot >= 0) {
		r->tkind = POL_TGT_OBJECT;
		r->object_type = (uint16_t)ot;
		r->instance = POL_ANY;
		r->property = POL_ANY;
		struct bms_tok *it = st_at(s, ++*i);
		if (*i >= s->n || pol_is_cond(it))
			return 0;
		if (!is(it, "*") && (it->kind != BMS_TOK_WORD || pol_parse_u32(it->text, 4194302, &r->instance) < 0)) {
			ERR_T(c, it, "'%s' is not a BACnet object instance (0..4194302) or *", bms_tok_show(it));
			return -1;
		}
		struct bms_tok *pr = st_at(s, ++*i);
		if (*i >= s->n || pol_is_cond(pr))
			return 0;
		if (!is(pr, "*")) {
			int64_t pv = pol_word_find(pol_properties, pr->text);
			uint32_t num;
			if (pv < 0 && pr->kind == BMS_TOK_WORD && pol_parse_u32(pr->text, 4194303, &num) == 0)
				pv = num;
			if (pv < 0 || pr->kind != BMS_TOK_WORD) {
				const char *m = pr->kind == BMS_TOK_WORD ? pol_nearest_word(pr->text, pol_properties) : NULL;
				if (m)
					ERR_T(c, pr, "unknown BACnet property '%s'; did you mean '%s'?", pr->text, m);
				else
					ERR_T(c, pr, "expected a BACnet property or a condition at '%s'", bms_tok_show(pr));
				return -1;
			}
			r->property = (uint32_t)pv;
		}
		(*i)++;
		return 0;
	}
	/* Nothing known: suggest from every word that may follow a device. */
	const char *words[128];
	size_t n = 0;
	for (size_t k = 0; k < 4; k++)
		words[n++] = pol_modbus_space_words[k];
	for (size_t k = 0; k < sizeof(cond_words) / sizeof(cond_words[0]); k++)
		words[n++] = cond_words[k];
	for (const struct pol_word *w = pol_object_types; w->name && n < 128; w++)
		words[n++] = w->name;
	pol_err_unknown(c, t, "target", words, n,
		    "a condition (value, priority, during, outside, limit, min-interval), a register kind or a "
		    "BACnet object type");
	return -1;
}

static int parse_conditions(struct cc *c, const struct stmt *s, uint32_t i, struct pol_rule *r, struct rule_refs *rf)
{
	for (; i < s->n; i++) {
		struct bms_tok *k = s->t[i], *v = st_at(s, i + 1);
		if (k->kind == BMS_TOK_COMMA) {
			ERR_T(c, k, "a rule names one device or point; write one rule for each");
			return -1;
		}
		if (!r->allow && !is(k, "during") && !is(k, "outside") && pol_is_cond(k)) {
			ERR_T(c, k, "'%s' limits what an allow rule lets through; a deny rule denies whatever it matches",
			      k->text);
			return -1;
		}
		if (is(k, "value")) {
			rf->value_src = pol_here(c, v);
			if (is(v, "on") || is(v, "off")) {
				r->vlo = r->vhi = is(v, "on") ? 1 : 0;
				rf->value_onoff = true;
			} else if (pol_parse_drange(c, v, &r->vlo, &r->vhi, "value range") < 0) {
				return -1;
			}
			r->has_value = true;
			i++;
		} else if (is(k, "priority")) {
			rf->prio_src = pol_here(c, k);
			uint32_t lo, hi;
			if (pol_parse_urange(c, v, 16, &lo, &hi, "a BACnet priority") < 0)
				return -1;
			if (lo < 1) {
				ERR_T(c, v, "BACnet priorities run from 1 (highest) to 16 (lowest); '%s' includes 0", v->text);
				return -1;
			}
			r->has_priority = true;
			r->plo = (uint8_t)lo;
			r->phi = (uint8_t)hi;
			i++;
		} else if (is(k, "during") || is(k, "outside")) {
			if (r->schedule >= 0 || rf->has_schedule) {
				ERR_T(c, k, "a rule takes one 'during' or 'outside'; name a schedule with several windows");
				return -1;
			}
			r->outside = is(k, "outside");
			i++;
			struct bms_tok *after = st_at(s, i + 1);
			bool windows = after->kind == BMS_TOK_COMMA || (after->kind == BMS_TOK_WORD && pol_looks_like_hours(after->text));
			if (v->kind == BMS_TOK_WORD && !pol_looks_like_hours(v->text) && !pol_is_days_word(v->text) && !windows) {
				ref_set(c, &rf->schedule, v);
				rf->has_schedule = true;
				continue;
			}
			struct pol_schedule sc;
			memset(&sc, 0, sizeof(sc));
			if (pol_parse_windows(c, s, &i, &sc) < 0)
				return -1;
			i--;
			if (pol_grow(c, (void **)&c->p->schedules, &c->cap_schedules, c->p->nschedules, sizeof(sc)) < 0)
				return -1;
			sc.src = pol_here(c, v);
			sc.used = true;
			r->schedule = (int32_t)c->p->nschedules;
			c->p->schedules[c->p->nschedules++] = sc;
		} else if (is(k, "limit")) {
			uint32_t n;
			struct bms_tok *per = st_at(s, i + 2), *unit = st_at(s, i + 3);
			if (v->kind != BMS_TOK_WORD || pol_parse_u32(v->text, 1000000, &n) < 0 || n == 0) {
				ERR_T(c, v, "'%s' is not a count of requests (1..1000000)", bms_tok_show(v));
				return -1;
			}
			if (!is(per, "per")) {
				ERR_T(c, per, "expected 'per' after the count, as in 'limit 10 per minute', at '%s'",
				      bms_tok_show(per));
				return -1;
			}
			static const char *const units[] = { "second", "minute", "hour", "day" };
			static const int64_t secs[] = { 1, 60, 3600, 86400 };
			int u = -1;
			for (int k2 = 0; k2 < 4; k2++)
				if (is(unit, units[k2]))
					u = k2;
			if (u < 0) {
				pol_err_unknown(c, unit, "period", units, 4, "second, minute, hour or day");
				return -1;
			}
			r->rate_n = n;
			r->rate_period_us = secs[u] * 1000000;
			i += 3;
		} else if (is(k, "min-interval")) {
			if (v->kind != BMS_TOK_WORD || parse_duration(v->text, &r->interval_us) < 0) {
				ERR_T(c, v, "'%s' is not a duration such as 30s, 5m, 1h or 1d", bms_tok_show(v));
				return -1;
			}
			i++;
		} else {
			pol_err_unknown(c, k, "condition", cond_words, sizeof(cond_words) / sizeof(cond_words[0]),
				    "value, priority, during, outside, limit or min-interval");
			return -1;
		}
	}
	return 0;
}

/* allow|deny WHO OPS [TARGET] [CONDITIONS] */
void pol_st_rule(struct cc *c, const struct stmt *s)
{
	struct pol_rule r;
	memset(&r, 0, sizeof(r));
	struct rule_refs rf;
	memset(&rf, 0, sizeof(rf));
	r.allow = is(s->t[0], "allow");
	r.schedule = -1;
	r.src = pol_here(c, s->t[0]);
	uint32_t i = 1;
	struct bms_tok *t = st_at(s, i);
	if (is(t, "anyone") || is(t, "everyone")) {
		r.anyone = true;
		i++;
	} else {
		for (;;) {
			t = st_at(s, i);
			if (pol_want_name(c, t, "role") < 0)
				return;
			if (rf.nroles >= MAX_RULE_ROLES) {
				ERR_T(c, t, "more than %d roles in one rule", MAX_RULE_ROLES);
				return;
			}
			ref_set(c, &rf.roles[rf.nroles++], t);
			i++;
			if (st_at(s, i)->kind != BMS_TOK_COMMA)
				break;
			i++;
		}
	}
	if (parse_ops(c, s, &i, &r) < 0 || parse_target(c, s, &i, &r, &rf) < 0 ||
	    parse_conditions(c, s, i, &r, &rf) < 0)
		return;
	/* The rule's words, for messages and as its state key: stable as long as the rule reads the same. */
	size_t off = 0;
	char full[4096];
	full[0] = '\0';
	for (uint32_t k = 0; k < s->n && off < sizeof(full) - 1; k++) {
		const struct bms_tok *w = s->t[k];
		bool glue = w->kind == BMS_TOK_COMMA;
		int m = snprintf(full + off, sizeof(full) - off, "%s%s%s%s", k == 0 || glue ? "" : " ",
				 w->kind == BMS_TOK_STRING ? "\"" : "", w->text, w->kind == BMS_TOK_STRING ? "\"" : "");
		if (m < 0)
			break;
		off += (size_t)m;
		if (off >= sizeof(full))
			off = sizeof(full) - 1;
	}
	r.key = pol_hash(full, strlen(full), 0);
	cpy(r.text, sizeof(r.text), full);
	if (strlen(full) >= sizeof(r.text))
		memcpy(r.text + sizeof(r.text) - 4, "...", 4);
	r.text_len = (uint8_t)strlen(r.text);
	if (pol_grow(c, (void **)&c->p->rules, &c->cap_rules, c->p->nrules, sizeof(r)) < 0)
		return;
	/* The names a rule uses live beside it until they are resolved. */
	struct rule_refs *nr = realloc(c->refs, (size_t)c->cap_rules * sizeof(*nr));
	if (nr == NULL) {
		c->oom = true;
		return;
	}
	c->refs = nr;
	c->refs[c->p->nrules] = rf;
	c->p->rules[c->p->nrules++] = r;
}

