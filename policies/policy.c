/* policies/policy.c: FIRST CUT: the API of policy.h so callers can build
 * against it. The compiler and evaluator land next; until then every load
 * fails with an error saying so, and every decision denies (fail closed). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policies/policy.h"

void bms_diag_init(struct bms_diag *d)
{
	memset(d, 0, sizeof(*d));
}

void bms_diag_free(struct bms_diag *d)
{
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void bms_diag_print(const struct bms_diag *d, FILE *out)
{
	static const char *const lv[] = { "error", "warning", "note" };
	for (size_t i = 0; i < d->n; i++)
		fprintf(out, "%s:%u:%u: %s: %s\n", d->v[i].file, d->v[i].line, d->v[i].col,
			lv[d->v[i].level < 3 ? d->v[i].level : 0], d->v[i].msg);
}

static int not_yet(const char *name, struct bms_diag *d)
{
	if (d->n == d->cap) {
		struct bms_diag_entry *v = realloc(d->v, (d->cap + 1) * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		d->v = v;
		d->cap++;
	}
	struct bms_diag_entry *e = &d->v[d->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->file, sizeof(e->file), "%s", name);
	snprintf(e->msg, sizeof(e->msg), "the policy compiler is not built yet");
	d->errors++;
	return -EINVAL;
}

int bms_policy_load_flags(const char *const *files, size_t nfiles, unsigned flags, struct bms_policy **out,
			  struct bms_diag *diags)
{
	(void)flags;
	*out = NULL;
	return not_yet(nfiles ? files[0] : "(none)", diags);
}

int bms_policy_load(const char *const *files, size_t nfiles, struct bms_policy **out, struct bms_diag *diags)
{
	return bms_policy_load_flags(files, nfiles, 0, out, diags);
}

int bms_policy_load_string(const char *name, const char *text, size_t len, struct bms_policy **out,
			   struct bms_diag *diags)
{
	(void)text;
	(void)len;
	*out = NULL;
	return not_yet(name, diags);
}

void bms_policy_free(struct bms_policy *p) { (void)p; }
const char *bms_policy_hash(const struct bms_policy *p) { (void)p; return ""; }
const char *bms_policy_site(const struct bms_policy *p) { (void)p; return ""; }
const char *bms_policy_timezone(const struct bms_policy *p) { (void)p; return "UTC"; }
size_t bms_policy_rule_count(const struct bms_policy *p) { (void)p; return 0; }

const struct bms_policy_device *bms_policy_find_device(const struct bms_policy *p, enum bms_proto proto,
							const struct sockaddr *addr, uint32_t unit)
{
	(void)p; (void)proto; (void)addr; (void)unit;
	return NULL;
}
const struct bms_policy_device *bms_policy_find_device_by_name(const struct bms_policy *p, const char *name)
{
	(void)p; (void)name;
	return NULL;
}
size_t bms_policy_device_count(const struct bms_policy *p) { (void)p; return 0; }
const struct bms_policy_device *bms_policy_device_at(const struct bms_policy *p, size_t i) { (void)p; (void)i; return NULL; }
const char *bms_policy_device_name(const struct bms_policy_device *d) { (void)d; return ""; }
enum bms_proto bms_policy_device_proto(const struct bms_policy_device *d) { (void)d; return BMS_PROTO_NONE; }
void bms_policy_device_addr(const struct bms_policy_device *d, struct sockaddr_storage *out, socklen_t *len)
{
	(void)d;
	memset(out, 0, sizeof(*out));
	*len = 0;
}
bool bms_policy_device_monitor(const struct bms_policy_device *d) { (void)d; return false; }

struct bms_policy_state { int unused; };
struct bms_policy_state *bms_policy_state_new(size_t slots) { (void)slots; return calloc(1, sizeof(struct bms_policy_state)); }
void bms_policy_state_free(struct bms_policy_state *st) { free(st); }

void bms_policy_decide(const struct bms_policy *p, struct bms_policy_state *st, const struct bms_identity *who,
		       const struct bms_policy_device *dev, const struct bms_request *req, int64_t now_unix_us,
		       struct bms_decision *out)
{
	(void)p; (void)st; (void)who; (void)dev; (void)req; (void)now_unix_us;
	memset(out, 0, sizeof(*out));
	out->verdict = BMS_VERDICT_DENY;
	snprintf(out->reason, sizeof(out->reason), "policy engine not built yet: deny");
}
