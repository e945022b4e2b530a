/* policies/compile_int.h: what the files of the policy compiler share, and nothing else uses.
 *
 *   compile.c       the driver: files and includes, tokens -> statements, statement dispatch,
 *                   the compile's diagnostics (pol_diag), bms_policy_compile
 *   parse_values.c  the words inside statements (names, numbers, ranges, hours, addresses)
 *   parse_decl.c    site, timezone, mode, accept, schedule, role, device and point statements
 *   parse_rule.c    allow and deny rules
 *   resolve.c       names resolved once every file is read; per-device rule lists
 *   lint.c          warnings about a policy that compiles
 *
 * The tokenizer, the error records and did-you-mean are the grammar front end (lex.h, diag.h,
 * suggest.h), shared with the other grammars. */
#ifndef BMS_COMPILE_INT_H
#define BMS_COMPILE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/lex.h"
#include "policies/policy_int.h"
#include "base/suggest.h"

#define MAX_INCLUDE_DEPTH 8
#define MAX_RULE_ROLES 16
#define MAX_ITEMS 200000 /* devices, points, roles, rules, schedules each; tokens of one file */

/* A name a rule uses, resolved once every file has been read. */
struct ref {
	struct pol_src src;
	char text[BMS_TOK_MAX + 1];
};

struct rule_refs {
	uint32_t nroles;
	struct ref roles[MAX_RULE_ROLES];
	bool has_device, has_point, has_schedule;
	struct ref device, point, schedule;
	struct pol_src value_src; /* where `value` was written, for checks against the target */
	struct pol_src prio_src;
	bool value_onoff;
};

struct cc {
	struct bms_policy *p;
	struct bms_diag *d;
	const struct bms_policy_source *src; /* borrowed: where files and zones come from */
	EVP_MD_CTX *sha;
	uint32_t cap_files, cap_devices, cap_points, cap_roles, cap_members, cap_schedules, cap_rules;
	struct rule_refs *refs; /* parallel to p->rules */
	bool tz_set, site_set, mode_set;
	struct pol_src tz_src;
	char include_stack[MAX_INCLUDE_DEPTH + 1][BMS_POLICY_KEY_MAX];
	int depth;
	bool oom;
	size_t errors_before;
	uint32_t *dev_sorted; /* device indices by name, while names are resolved */
	/* Every file's text, by file index, held until the compile ends: a diagnostic made after
	 * the file was read (a name resolved, a warning) still shows its source line. Owned; the
	 * texts inside are the source's until released. */
	struct bms_policy_text *texts[POL_MAX_FILES];
	/* the file being read */
	uint16_t file;
	struct bms_tok *toks;
	uint32_t ntoks, pos;
};

/* The tokens of one statement: t[0..n). */
struct stmt {
	struct bms_tok **t;
	uint32_t n;
	struct bms_tok *end; /* the newline (or EOF) that ended it, for "expected X at end of line" */
};

/* Bounded copy: names were checked for length where it matters; elsewhere a cut is fine. */
static inline void cpy(char *dst, size_t n, const char *src)
{
	size_t l = strnlen(src, n - 1);
	memcpy(dst, src, l);
	dst[l] = '\0';
}

static inline struct bms_tok *st_at(const struct stmt *s, uint32_t i)
{
	return i < s->n ? s->t[i] : s->end;
}

static inline bool is(const struct bms_tok *t, const char *w)
{
	return t->kind == BMS_TOK_WORD && strcmp(t->text, w) == 0;
}

static inline struct pol_src pol_here(const struct cc *c, const struct bms_tok *t)
{
	return (struct pol_src){ .file = c->file, .line = t->line, .col = t->col, .off = t->off, .width = t->width };
}

static inline const char *pol_src_file(const struct cc *c, struct pol_src s)
{
	return s.file < c->p->nfiles ? c->p->files[s.file] : "?";
}

/* ---- compile.c ---- */
/* Records a diagnostic at `at` (its source line shown in the caret form); out of memory sets c->oom. */
void pol_diag(struct cc *c, uint8_t level, struct pol_src at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define ERR_T(c, t, ...) pol_diag((c), BMS_DIAG_ERROR, pol_here((c), (t)), __VA_ARGS__)
#define WARN_T(c, t, ...) pol_diag((c), BMS_DIAG_WARNING, pol_here((c), (t)), __VA_ARGS__)
#define ERR_S(c, s, ...) pol_diag((c), BMS_DIAG_ERROR, (s), __VA_ARGS__)
#define WARN_S(c, s, ...) pol_diag((c), BMS_DIAG_WARNING, (s), __VA_ARGS__)
/* Grows *arr to hold element n (zeroed); -ENOMEM (and c->oom) past MAX_ITEMS or out of memory. */
int pol_grow(struct cc *c, void **arr, uint32_t *cap, uint32_t n, size_t elem);

/* ---- parse_values.c ---- */
const char *pol_nearest_word(const char *s, const struct pol_word *w);
/* "unknown X 'tok'; did you mean 'Y'?" or "unknown X 'tok' (expected A, B or C)". */
void pol_err_unknown(struct cc *c, const struct bms_tok *t, const char *what, const char *const *words, size_t n,
		     const char *expected);
bool pol_valid_name(const char *s);
int pol_want_name(struct cc *c, const struct bms_tok *t, const char *what);
int pol_parse_double(const char *s, double *out);
int pol_parse_u32(const char *s, uint32_t max, uint32_t *out);
int pol_parse_drange(struct cc *c, const struct bms_tok *t, double *lo, double *hi, const char *what);
int pol_parse_urange(struct cc *c, const struct bms_tok *t, uint32_t max, uint32_t *lo, uint32_t *hi,
		     const char *what);
bool pol_is_days_word(const char *s);
bool pol_looks_like_hours(const char *s);
int pol_parse_windows(struct cc *c, const struct stmt *s, uint32_t *i, struct pol_schedule *sc);
int pol_parse_ip(const char *s, uint8_t *family, uint8_t addr[16]);
int pol_parse_hostport(struct cc *c, const struct bms_tok *t, uint16_t defport, struct sockaddr_storage *ss,
		       socklen_t *len);
void pol_set_port(struct sockaddr_storage *ss, uint16_t port);
int pol_modbus_space(const struct bms_tok *t);
extern const char *const pol_modbus_space_words[4];

/* ---- parse_decl.c ---- */
void pol_st_site(struct cc *c, const struct stmt *s);
void pol_st_timezone(struct cc *c, const struct stmt *s);
int pol_parse_mode(struct cc *c, const struct bms_tok *t, int8_t *mode);
void pol_st_mode(struct cc *c, const struct stmt *s);
void pol_st_accept(struct cc *c, const struct stmt *s);
void pol_st_schedule(struct cc *c, const struct stmt *s);
int32_t pol_st_role(struct cc *c, const struct stmt *s);        /* the role's index, or -1 */
void pol_st_member(struct cc *c, const struct stmt *s, int32_t role);
int32_t pol_st_device(struct cc *c, const struct stmt *s);      /* the device's index, or -1 */
void pol_st_point(struct cc *c, const struct stmt *s, int32_t dev);

/* ---- parse_rule.c ---- */
bool pol_is_cond(const struct bms_tok *t); /* a word that may start a rule's continuation line */
void pol_st_rule(struct cc *c, const struct stmt *s);

/* ---- resolve.c ---- */
int32_t pol_find_device(const struct bms_policy *p, const char *name);
int32_t pol_find_schedule(const struct bms_policy *p, const char *name);
/* Resolves every rule's names and builds the indexes and per-device rule lists. false when a
 * rule did not resolve (errors recorded) or memory ran out (c->oom). */
bool pol_resolve(struct cc *c);

/* ---- lint.c ---- */
/* Warnings about a policy that resolved. `quiet`: errors were found, so only the warnings
 * that cannot be echoes of an error are made. */
void pol_lint(struct cc *c, bool quiet);

#endif
