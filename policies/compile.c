/* policies/compile.c: policy text -> struct bms_policy.
 *
 * The language is line oriented: one statement per line, `#` starts a
 * comment, `{ ... }` holds the points of a device and the members of a role,
 * and a rule may continue on following lines that start with one of its
 * conditions (value, priority, during, outside, limit, min-interval). The
 * whole grammar, with examples, is in docs/policy-language.md.
 *
 * Errors do not stop the compile: a statement with an error is dropped and the
 * next one is read, so one run reports every error. Names are resolved after
 * every file has been read, so rules may name devices declared further down
 * or in a later file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "policies/compile_int.h"

/* ---- diagnostics ---- */

void pol_diag(struct cc *c, uint8_t level, struct pol_src at, const char *fmt, ...)
{
	const struct bms_policy_text *t = at.file < POL_MAX_FILES ? c->texts[at.file] : NULL;
	struct bms_diag_loc loc = {
		.file = pol_src_file(c, at),
		.line = at.line,
		.col = at.col,
		.width = at.width,
		.text = t != NULL ? t->text : NULL,
		.len = t != NULL ? t->len : 0,
		.off = at.off,
	};
	va_list ap;
	va_start(ap, fmt);
	if (bms_diag_vadd(c->d, level, &loc, fmt, ap) < 0)
		c->oom = true;
	va_end(ap);
}

/* ---- growing arrays ---- */

int pol_grow(struct cc *c, void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	if (n >= MAX_ITEMS) {
		c->oom = true;
		return -ENOMEM;
	}
	uint32_t ncap = *cap ? *cap * 2 : 16;
	void *v = realloc(*arr, (size_t)ncap * elem);
	if (v == NULL) {
		c->oom = true;
		return -ENOMEM;
	}
	memset((char *)v + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
	*arr = v;
	*cap = ncap;
	return 0;
}


/* ---- files ---- */

static int add_file(struct cc *c, const char *name)
{
	if (c->p->nfiles >= POL_MAX_FILES)
		return -1;
	if (pol_grow(c, (void **)&c->p->files, &c->cap_files, c->p->nfiles, BMS_DIAG_FILE_MAX) < 0)
		return -1;
	cpy(c->p->files[c->p->nfiles], BMS_DIAG_FILE_MAX, name);
	return (int)c->p->nfiles++;
}

static void compile_text(struct cc *c, const char *text, size_t len);

static void st_include(struct cc *c, const struct stmt *s)
{
	struct bms_tok *t = st_at(s, 1);
	if (t->kind != BMS_TOK_STRING && t->kind != BMS_TOK_WORD) {
		ERR_T(c, t, "expected a file name in quotes at %s", bms_tok_show(t));
		return;
	}
	if (s->n > 2) {
		ERR_T(c, s->t[2], "unexpected '%s' after the file name", bms_tok_show(s->t[2]));
		return;
	}
	if (c->depth >= MAX_INCLUDE_DEPTH) {
		ERR_T(c, t, "includes nested deeper than %d", MAX_INCLUDE_DEPTH);
		return;
	}
	/* The source resolves the name (relative names against the including file's folder). */
	const char *cur = c->p->files[c->file];
	struct bms_policy_text *ft = calloc(1, sizeof(*ft));
	if (ft == NULL) {
		c->oom = true;
		return;
	}
	char err[BMS_DIAG_MSG_MAX];
	int rc = c->src->read(c->src->ctx, cur, t->text, ft, err, sizeof(err));
	if (rc == BMS_POLICY_SOURCE_NOMEM) {
		c->oom = true;
		goto drop;
	}
	if (rc == BMS_POLICY_SOURCE_MISSING) {
		ERR_T(c, t, "%s", err);
		goto drop;
	}
	for (int k = 0; ft->key[0] && k <= c->depth; k++)
		if (strcmp(c->include_stack[k], ft->key) == 0) {
			ERR_T(c, t, "include loop: '%s' is already being read (it included %s)", t->text, cur);
			goto drop;
		}
	int fi = add_file(c, ft->name);
	if (fi < 0) {
		ERR_T(c, t, "more than %d policy files", POL_MAX_FILES);
		goto drop;
	}
	if (rc != BMS_POLICY_SOURCE_OK) {
		pol_diag(c, BMS_DIAG_ERROR, (struct pol_src){ .file = (uint16_t)fi }, "%s", err);
		goto drop;
	}
	c->texts[fi] = ft; /* released when the compile ends */
	/* Save the including file's position: the tokens are replaced while the included file is read. */
	struct bms_tok *toks = c->toks;
	uint32_t ntoks = c->ntoks, pos = c->pos;
	uint16_t file = c->file;
	c->toks = NULL;
	c->file = (uint16_t)fi;
	c->depth++;
	cpy(c->include_stack[c->depth], BMS_POLICY_KEY_MAX, ft->key);
	EVP_DigestUpdate(c->sha, ft->name, strlen(ft->name) + 1);
	EVP_DigestUpdate(c->sha, ft->text, ft->len);
	compile_text(c, ft->text, ft->len);
	c->depth--;
	free(c->toks);
	c->toks = toks;
	c->ntoks = ntoks;
	c->pos = pos;
	c->file = file;
	return;
drop:
	if (rc == BMS_POLICY_SOURCE_OK)
		c->src->release(c->src->ctx, ft);
	free(ft);
}

static const char *const top_words[] = { "site", "timezone", "mode", "include", "accept", "schedule",
					 "role", "device", "allow", "deny" };

/* Reads the tokens of one statement into s (pointers into c->toks). */
static int next_stmt(struct cc *c, struct stmt *s, struct bms_tok ***buf, uint32_t *cap)
{
	s->n = 0;
	while (c->toks[c->pos].kind == BMS_TOK_NL)
		c->pos++;
	if (c->toks[c->pos].kind == BMS_TOK_EOF) {
		s->end = &c->toks[c->pos];
		return 0;
	}
	bool rule = is(&c->toks[c->pos], "allow") || is(&c->toks[c->pos], "deny");
	for (;;) {
		struct bms_tok *t = &c->toks[c->pos];
		if (t->kind == BMS_TOK_EOF)
			break;
		if (t->kind == BMS_TOK_NL) {
			/* A rule goes on over lines that start with one of its conditions. */
			uint32_t q = c->pos;
			while (c->toks[q].kind == BMS_TOK_NL)
				q++;
			if (rule && pol_is_cond(&c->toks[q])) {
				c->pos = q;
				continue;
			}
			break;
		}
		if (s->n == *cap) {
			uint32_t ncap = *cap ? *cap * 2 : 32;
			struct bms_tok **nb = realloc(*buf, ncap * sizeof(*nb));
			if (nb == NULL) {
				c->oom = true;
				return -1;
			}
			*buf = nb;
			*cap = ncap;
		}
		(*buf)[s->n++] = t;
		c->pos++;
		/* `{` ends the line's statement; `}` is a statement of its own. */
		if (t->kind == BMS_TOK_LBRACE || (t->kind == BMS_TOK_RBRACE && s->n == 1))
			break;
		if (c->toks[c->pos].kind == BMS_TOK_RBRACE)
			break;
	}
	s->t = *buf;
	s->end = &c->toks[c->pos];
	return (int)s->n;
}

/* The file's tokens into c->toks, ending with BMS_TOK_EOF; lexical errors are recorded. */
static int lex(struct cc *c, const char *text, size_t len)
{
	struct bms_lexer lx;
	uint32_t cap = 0;
	c->ntoks = 0;
	if (bms_lex_init(&lx, c->p->files[c->file], text, len, 0, c->d) < 0) {
		pol_diag(c, BMS_DIAG_ERROR, (struct pol_src){ .file = c->file }, "%zu bytes is too long for a policy file",
			 len);
		return -EINVAL;
	}
	for (;;) {
		if (pol_grow(c, (void **)&c->toks, &cap, c->ntoks, sizeof(struct bms_tok)) < 0)
			return -ENOMEM;
		struct bms_tok *t = &c->toks[c->ntoks];
		if (bms_lex_next(&lx, t) < 0) {
			c->oom = true;
			return -ENOMEM;
		}
		c->ntoks++;
		if (t->kind == BMS_TOK_EOF)
			return 0;
	}
}

static void compile_text(struct cc *c, const char *text, size_t len)
{
	struct bms_tok **buf = NULL;
	uint32_t cap = 0;
	if (lex(c, text, len) < 0)
		return;
	c->pos = 0;
	int32_t dev = -1, role = -1;
	bool in_block = false, skip_block = false;
	struct bms_tok *open = NULL;
	struct stmt s;
	while (!c->oom && next_stmt(c, &s, &buf, &cap) > 0) {
		struct bms_tok *k = s.t[0];
		bool opens = s.t[s.n - 1]->kind == BMS_TOK_LBRACE;
		if (k->kind == BMS_TOK_RBRACE) {
			if (!in_block)
				ERR_T(c, k, "'}' without a device or role block to close");
			in_block = skip_block = false;
			dev = role = -1;
			continue;
		}
		if (opens)
			s.n--; /* the statement proper, without its `{` */
		if (in_block && opens) {
			/* Most likely the block above lacks its `}`: say so, close it, read on. */
			ERR_T(c, open, "the block opened by '%s' on this line is not closed with '}'", open->text);
			in_block = skip_block = false;
			dev = role = -1;
		}
		if (in_block) {
			if (skip_block)
				continue;
			if (dev >= 0) {
				if (is(k, "point"))
					pol_st_point(c, &s, dev);
				else if (is(k, "mode")) {
					if (pol_parse_mode(c, st_at(&s, 1), &c->p->devices[dev].mode) == 0 && s.n > 2)
						ERR_T(c, s.t[2], "unexpected '%s' after the mode", bms_tok_show(s.t[2]));
				} else {
					static const char *const words[] = { "point", "mode" };
					if (is(k, "allow") || is(k, "deny") || is(k, "device") || is(k, "role"))
						ERR_T(c, k, "'%s' cannot go inside a device block (only point and mode can); "
							     "is a '}' missing above?", k->text);
					else
						pol_err_unknown(c, k, "statement", words, 2, "point or mode");
				}
			} else if (role >= 0) {
				pol_st_member(c, &s, role);
			}
			continue;
		}
		if (is(k, "device")) {
			dev = pol_st_device(c, &s);
		} else if (is(k, "role")) {
			role = pol_st_role(c, &s);
			if (role >= 0 && !opens) {
				if (s.n > 2)
					ERR_T(c, s.t[2], "expected '{' after the role name, with one member a line");
				else
					ERR_T(c, s.t[1], "role '%s' needs its members in a block: role %s { ... }",
					      s.t[1]->text, s.t[1]->text);
			}
		} else if (opens) {
			ERR_T(c, s.t[s.n], "'{' after a statement that takes no block (only device and role take one)");
			opens = false;
			if (is(k, "allow") || is(k, "deny"))
				pol_st_rule(c, &s);
		} else if (is(k, "allow") || is(k, "deny")) {
			pol_st_rule(c, &s);
		} else if (is(k, "site")) {
			pol_st_site(c, &s);
		} else if (is(k, "timezone")) {
			pol_st_timezone(c, &s);
		} else if (is(k, "mode")) {
			pol_st_mode(c, &s);
		} else if (is(k, "include")) {
			st_include(c, &s);
			if (c->oom)
				break;
		} else if (is(k, "accept")) {
			pol_st_accept(c, &s);
		} else if (is(k, "schedule")) {
			pol_st_schedule(c, &s);
		} else if (is(k, "point") || is(k, "certificate-role") || is(k, "subject") || is(k, "address")) {
			ERR_T(c, k, "'%s' belongs inside a %s block", k->text, is(k, "point") ? "device" : "role");
		} else {
			pol_err_unknown(c, k, "statement", top_words, sizeof(top_words) / sizeof(top_words[0]),
				    "device, role, schedule, allow, deny, site, timezone, mode, include or accept");
		}
		if (opens) {
			in_block = true;
			open = k;
			skip_block = (is(k, "device") && dev < 0) || (is(k, "role") && role < 0) ||
				     (!is(k, "device") && !is(k, "role"));
			if (!is(k, "device"))
				dev = -1;
			if (!is(k, "role"))
				role = -1;
		} else {
			dev = role = -1;
		}
	}
	if (in_block && open != NULL && !c->oom)
		ERR_T(c, open, "the block opened by '%s' on this line is not closed with '}'", open->text);
	free(buf);
}


/* Diagnostics in file order, then line and column: the order a reader fixes them in. */
static int diag_cmp(const struct bms_diag_entry *a, const struct bms_diag_entry *b, const struct bms_policy *p)
{
	uint32_t fa = 0, fb = 0;
	for (uint32_t i = 0; i < p->nfiles; i++) {
		if (strcmp(p->files[i], a->file) == 0 && fa == 0)
			fa = i + 1;
		if (strcmp(p->files[i], b->file) == 0 && fb == 0)
			fb = i + 1;
	}
	if (fa != fb)
		return fa < fb ? -1 : 1;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

static void sort_diags(struct bms_diag *d, size_t from, const struct bms_policy *p)
{
	/* Insertion sort: stable, and a compile reports at most BMS_DIAG_LIMIT entries. */
	for (size_t i = from + 1; i < d->n; i++) {
		struct bms_diag_entry e = d->v[i];
		size_t j = i;
		while (j > from && diag_cmp(&d->v[j - 1], &e, p) > 0) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = e;
	}
}

static void release_texts(struct cc *c)
{
	for (size_t i = 0; i < POL_MAX_FILES; i++)
		if (c->texts[i] != NULL) {
			c->src->release(c->src->ctx, c->texts[i]);
			free(c->texts[i]);
			c->texts[i] = NULL;
		}
}

void bms_policy_free(struct bms_policy *p)
{
	if (p == NULL)
		return;
	for (uint32_t i = 0; i < p->ndevices; i++)
		free(p->devices[i].rules);
	free(p->files);
	free(p->devices);
	free(p->points);
	free(p->roles);
	free(p->members);
	free(p->schedules);
	free(p->rules);
	free(p->global_rules);
	free(p->idx);
	free(p->addr_members);
	free(p->devidx);
	free(p);
}

int bms_policy_compile(const struct bms_policy_source *src, const char *const *names, size_t nnames,
		       struct bms_policy **out, struct bms_diag *diags)
{
	int rc = -EINVAL;
	*out = NULL;
	size_t first_diag = diags->n, errors_before = diags->errors;
	struct cc c;
	memset(&c, 0, sizeof(c));
	c.d = diags;
	c.errors_before = diags->errors;
	c.src = src;
	c.p = calloc(1, sizeof(*c.p));
	c.sha = EVP_MD_CTX_new();
	if (c.p == NULL || c.sha == NULL || EVP_DigestInit_ex(c.sha, EVP_sha256(), NULL) != 1) {
		rc = -ENOMEM;
		goto fail;
	}
	pol_tz_utc(&c.p->tz);
	{
		/* Serial numbers start at 1 and never repeat in a process, also across threads. */
		static uint64_t serials;
		c.p->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
	}
	for (size_t f = 0; f < nnames && !c.oom; f++) {
		int fi = add_file(&c, names[f]);
		if (fi < 0) {
			pol_diag(&c, BMS_DIAG_ERROR, (struct pol_src){ .file = 0 }, "more than %d policy files", POL_MAX_FILES);
			break;
		}
		c.file = (uint16_t)fi;
		struct bms_policy_text *ft = calloc(1, sizeof(*ft));
		if (ft == NULL) {
			c.oom = true;
			break;
		}
		char err[BMS_DIAG_MSG_MAX];
		int r = src->read(src->ctx, NULL, names[f], ft, err, sizeof(err));
		if (r != BMS_POLICY_SOURCE_OK) {
			free(ft);
			if (r == BMS_POLICY_SOURCE_NOMEM) {
				c.oom = true;
				break;
			}
			pol_diag(&c, BMS_DIAG_ERROR, (struct pol_src){ .file = c.file }, "%s", err);
			continue;
		}
		c.texts[fi] = ft; /* released when the compile ends */
		cpy(c.include_stack[0], BMS_POLICY_KEY_MAX, ft->key[0] ? ft->key : names[f]);
		c.depth = 0;
		EVP_DigestUpdate(c.sha, names[f], strlen(names[f]) + 1);
		EVP_DigestUpdate(c.sha, ft->text, ft->len);
		compile_text(&c, ft->text, ft->len);
		free(c.toks);
		c.toks = NULL;
	}
	if (!c.oom && pol_resolve(&c) && !c.oom)
		/* Warnings about the whole policy wait until it compiles: before that they are mostly
		 * echoes of errors. */
		pol_lint(&c, c.d->errors > c.errors_before);
	if (c.oom) {
		rc = -ENOMEM;
		goto fail;
	}
	unsigned char md[32];
	unsigned mdlen = 0;
	if (EVP_DigestFinal_ex(c.sha, md, &mdlen) != 1 || mdlen != 32) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < 32; i++)
		snprintf(c.p->hash + 2 * i, 3, "%02x", md[i]);
	sort_diags(diags, first_diag, c.p);
	if (diags->errors > errors_before)
		goto fail;
	release_texts(&c);
	EVP_MD_CTX_free(c.sha);
	free(c.refs);
	*out = c.p;
	return 0;
fail:
	if (c.p != NULL)
		sort_diags(diags, first_diag, c.p);
	release_texts(&c);
	EVP_MD_CTX_free(c.sha);
	free(c.refs);
	free(c.toks);
	bms_policy_free(c.p);
	return rc;
}
