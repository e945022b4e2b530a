/* cmd/audit_proof.c: `bmsgate audit prove` and `bmsgate audit verify-proof`.
 *
 * prove reads the log (every file from the start) and prints one JSON object:
 *   inclusion:   {"proof":"inclusion","index":N,"tree_size":S,"leaf_hash":H,
 *                 "record":"<the record line>","hashes":[...],"checkpoint":{...}}
 *   consistency: {"proof":"consistency","first":M,"second":N,"hashes":[...],
 *                 "checkpoint1":{...},"checkpoint2":{...}}
 * The checkpoints are the signed ones from the log (or from --checkpoints),
 * so that verify-proof needs only the proof and the public key: a security
 * team holding checkpoints can show a record was in the log, or that the
 * log at a later checkpoint still holds everything an earlier one signed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/read.h"
#include "cmd/audit_cmds.h"

struct loaded {
	uint8_t (*leaves)[AUDIT_HASH_LEN];
	uint64_t n, cap;
	struct audit_checkpoint *cps;
	size_t ncps, cpcap;
	char *record;       /* the line of the wanted seq (owned) */
	size_t record_len;
};

static int add_cp(struct loaded *l, const struct audit_checkpoint *cp)
{
	if (l->ncps == l->cpcap) {
		size_t nc = l->cpcap ? 2 * l->cpcap : 64;
		struct audit_checkpoint *p = realloc(l->cps, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->cps = p;
		l->cpcap = nc;
	}
	l->cps[l->ncps] = *cp;
	l->cps[l->ncps].has_frontier = false;
	l->ncps++;
	return 0;
}

/* Loads every leaf hash and checkpoint; keeps the line of seq `want` (UINT64_MAX: none). */
static int load(const char *const *paths, size_t n, uint64_t want, struct loaded *l)
{
	struct audit_line *ln = malloc(sizeof(*ln));
	if (!ln)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct audit_reader rd;
		r = audit_reader_open(&rd, paths[i]);
		if (r < 0) {
			fprintf(stderr, "cannot read %s: %s\n", paths[i], strerror(-r));
			break;
		}
		bool term;
		while ((r = audit_reader_next(&rd, &term)) == 1 && term) {
			audit_line_parse(rd.buf, rd.len, ln, NULL);
			if (ln->type == AUDIT_LINE_CHECKPOINT && ln->parsed) {
				if (rd.lineno == 1 && ln->cp.has_frontier && ln->cp.size != l->n) {
					fprintf(stderr, "%s:1: starts at tree size %" PRIu64 " but %" PRIu64 " records were read "
							"before it: give every file from the start of the log, in order\n",
						paths[i], ln->cp.size, l->n);
					r = -EINVAL;
					break;
				}
				uint8_t root[AUDIT_HASH_LEN];
				audit_mth((const uint8_t (*)[AUDIT_HASH_LEN])l->leaves, 0, l->n, root);
				/* proving from a log that contradicts its own signatures would mislead: refuse */
				if (ln->cp.size != l->n || memcmp(root, ln->cp.root, AUDIT_HASH_LEN) != 0) {
					fprintf(stderr, "%s:%" PRIu64 ": the records do not match this checkpoint; run "
							"`bmsgate audit verify`\n", paths[i], rd.lineno);
					r = -EINVAL;
					break;
				}
				r = add_cp(l, &ln->cp);
				if (r < 0)
					break;
				continue;
			}
			if (ln->type == AUDIT_LINE_CHECKPOINT)
				continue;
			if (l->n == l->cap) {
				uint64_t nc = l->cap ? 2 * l->cap : 4096;
				void *p = realloc(l->leaves, nc * AUDIT_HASH_LEN);
				if (!p) {
					r = -ENOMEM;
					break;
				}
				l->leaves = p;
				l->cap = nc;
			}
			audit_leaf_hash(rd.buf, rd.len, l->leaves[l->n]);
			if (l->n == want) {
				l->record = malloc(rd.len + 1);
				if (!l->record) {
					r = -ENOMEM;
					break;
				}
				memcpy(l->record, rd.buf, rd.len + 1);
				l->record_len = rd.len;
			}
			l->n++;
		}
		audit_reader_close(&rd);
		if (r > 0)
			r = 0; /* a torn last line: ignored, like the writer does */
		if (r == -E2BIG) {
			fprintf(stderr, "%s: a line is too long: not a bmsgate log\n", paths[i]);
			r = -EINVAL;
		}
	}
	free(ln);
	return r;
}

static json_t *cp_json(const struct audit_checkpoint *cp)
{
	char line[1024];
	struct audit_buf b;
	audit_buf_init(&b, line, sizeof(line));
	if (audit_checkpoint_format(cp, &b) < 0)
		return NULL;
	return json_loadb(line, b.len, 0, NULL);
}

static json_t *hashes_json(uint8_t proof[][AUDIT_HASH_LEN], unsigned n)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < n; i++) {
		char h[2 * AUDIT_HASH_LEN + 1];
		audit_hex(proof[i], AUDIT_HASH_LEN, h);
		json_array_append_new(a, json_string(h));
	}
	return a;
}

static const struct audit_checkpoint *find_cp(const struct loaded *l, uint64_t size)
{
	for (size_t i = 0; i < l->ncps; i++)
		if (l->cps[i].size == size)
			return &l->cps[i];
	return NULL;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

int cmd_audit_prove(int argc, char **argv)
{
	uint64_t seq = UINT64_MAX, size = 0, from = 0, to = 0;
	bool have_seq = false, have_size = false, have_from = false, have_to = false;
	const char *cps_path = NULL;
	const char **files = calloc((size_t)argc, sizeof(*files));
	size_t nfiles = 0;
	int status = 2;
	struct loaded l = { 0 };
	uint8_t (*proof)[AUDIT_HASH_LEN] = malloc(AUDIT_PROOF_MAX * AUDIT_HASH_LEN);
	if (!files || !proof)
		goto out;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--seq") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], &seq) < 0)
				goto usage;
			have_seq = true;
		} else if (strcmp(a, "--size") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], &size) < 0)
				goto usage;
			have_size = true;
		} else if (strcmp(a, "--from") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], &from) < 0)
				goto usage;
			have_from = true;
		} else if (strcmp(a, "--to") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], &to) < 0)
				goto usage;
			have_to = true;
		} else if (strcmp(a, "--checkpoints") == 0 && i + 1 < argc) {
			cps_path = argv[++i];
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "bmsgate audit prove: unknown option '%s'\n", a);
			goto usage;
		} else {
			files[nfiles++] = a;
		}
	}
	if (nfiles == 0 || have_seq == have_from)
		goto usage;
	if (load(files, nfiles, have_seq ? seq : UINT64_MAX, &l) < 0)
		goto out;
	if (cps_path) {
		/* checkpoints kept elsewhere (e.g. the writer's copy): usable where they match the records */
		struct audit_reader rd;
		if (audit_reader_open(&rd, cps_path) < 0) {
			fprintf(stderr, "cannot read %s\n", cps_path);
			goto out;
		}
		bool term;
		struct audit_line ln;
		while (audit_reader_next(&rd, &term) == 1 && term) {
			audit_line_parse(rd.buf, rd.len, &ln, NULL);
			if (ln.type == AUDIT_LINE_CHECKPOINT && ln.parsed && ln.cp.size <= l.n && !find_cp(&l, ln.cp.size)) {
				uint8_t root[AUDIT_HASH_LEN];
				audit_mth((const uint8_t (*)[AUDIT_HASH_LEN])l.leaves, 0, ln.cp.size, root);
				if (memcmp(root, ln.cp.root, AUDIT_HASH_LEN) == 0 && add_cp(&l, &ln.cp) < 0)
					break;
			}
		}
		audit_reader_close(&rd);
	}
	if (l.ncps == 0) {
		fprintf(stderr, "bmsgate audit prove: the log has no checkpoint to prove against\n");
		goto out;
	}
	json_t *o = json_object();
	if (have_seq) {
		if (!have_size)
			size = l.cps[l.ncps - 1].size;
		const struct audit_checkpoint *cp = find_cp(&l, size);
		if (!cp) {
			fprintf(stderr, "bmsgate audit prove: no checkpoint of tree size %" PRIu64 " in the log\n", size);
			json_decref(o);
			goto out;
		}
		if (seq >= size || !l.record) {
			fprintf(stderr, "bmsgate audit prove: record %" PRIu64 " is not in the signed tree of size %" PRIu64
					"\n", seq, size);
			json_decref(o);
			status = 1;
			goto out;
		}
		unsigned n;
		if (audit_inclusion_proof((const uint8_t (*)[AUDIT_HASH_LEN])l.leaves, seq, size, proof, &n) < 0) {
			json_decref(o);
			goto out;
		}
		char h[2 * AUDIT_HASH_LEN + 1];
		audit_hex(l.leaves[seq], AUDIT_HASH_LEN, h);
		json_object_set_new(o, "proof", json_string("inclusion"));
		json_object_set_new(o, "index", json_integer((json_int_t)seq));
		json_object_set_new(o, "tree_size", json_integer((json_int_t)size));
		json_object_set_new(o, "leaf_hash", json_string(h));
		json_object_set_new(o, "record", json_stringn(l.record, l.record_len));
		json_object_set_new(o, "hashes", hashes_json(proof, n));
		json_object_set_new(o, "checkpoint", cp_json(cp));
	} else {
		if (!have_to)
			to = l.cps[l.ncps - 1].size;
		const struct audit_checkpoint *c1 = find_cp(&l, from), *c2 = find_cp(&l, to);
		if (!c1 || !c2) {
			fprintf(stderr, "bmsgate audit prove: no checkpoint of tree size %" PRIu64 " in the log%s\n",
				!c1 ? from : to, cps_path ? " or the checkpoint file" : "");
			json_decref(o);
			goto out;
		}
		unsigned n = 0;
		if (from > to || from == 0 ||
		    audit_consistency_proof((const uint8_t (*)[AUDIT_HASH_LEN])l.leaves, from, to, proof, &n) < 0) {
			fprintf(stderr, "bmsgate audit prove: need 0 < --from <= --to\n");
			json_decref(o);
			goto out;
		}
		json_object_set_new(o, "proof", json_string("consistency"));
		json_object_set_new(o, "first", json_integer((json_int_t)from));
		json_object_set_new(o, "second", json_integer((json_int_t)to));
		json_object_set_new(o, "hashes", hashes_json(proof, n));
		json_object_set_new(o, "checkpoint1", cp_json(c1));
		json_object_set_new(o, "checkpoint2", cp_json(c2));
	}
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		goto out;
	puts(s);
	free(s);
	status = 0;
	goto out;
usage:
	fprintf(stderr, "usage: bmsgate audit prove LOG... --seq N [--size TREE_SIZE] [--checkpoints FILE]\n"
			"       bmsgate audit prove LOG... --from TREE_SIZE [--to TREE_SIZE] [--checkpoints FILE]\n"
			"  LOG...: every file from the start of the log, oldest first; sizes are checkpoint sizes\n");
out:
	free(proof);
	free(files);
	free(l.leaves);
	free(l.cps);
	free(l.record);
	return status;
}

/* ---- verify-proof ---- */

static int hashes_from_json(json_t *a, uint8_t (*out)[AUDIT_HASH_LEN], unsigned *n)
{
	if (!json_is_array(a) || json_array_size(a) > AUDIT_PROOF_MAX)
		return -EINVAL;
	*n = (unsigned)json_array_size(a);
	for (unsigned i = 0; i < *n; i++) {
		json_t *h = json_array_get(a, i);
		if (!json_is_string(h) || audit_unhex(json_string_value(h), json_string_length(h), out[i], AUDIT_HASH_LEN) < 0)
			return -EINVAL;
	}
	return 0;
}

static int get_size(json_t *o, const char *name, uint64_t *out)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EINVAL;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A checkpoint from the proof, its signature checked, and (with a held file) found there. */
static int proof_cp(json_t *o, const char *name, EVP_PKEY *key, const char *held, struct audit_checkpoint *cp)
{
	char err[200];
	if (audit_checkpoint_from_json(json_object_get(o, name), cp, err, sizeof(err)) < 0) {
		printf("FAILED: \"%s\": %s\n", name, err);
		return 1;
	}
	char id[AUDIT_KEYID_LEN + 1];
	if (audit_key_id(key, id) < 0 || strcmp(id, cp->key_id) != 0) {
		printf("FAILED: \"%s\" names key %s, not the given key %s\n", name, cp->key_id, id);
		return 1;
	}
	if (audit_checkpoint_verify(key, cp) < 0) {
		printf("FAILED: the signature of \"%s\" (tree size %" PRIu64 ") does not verify\n", name, cp->size);
		return 1;
	}
	if (held) {
		struct audit_reader rd;
		if (audit_reader_open(&rd, held) < 0) {
			fprintf(stderr, "cannot read %s\n", held);
			return 2;
		}
		bool term, found = false;
		struct audit_line ln;
		while (!found && audit_reader_next(&rd, &term) == 1) {
			audit_line_parse(rd.buf, rd.len, &ln, NULL);
			found = ln.type == AUDIT_LINE_CHECKPOINT && ln.parsed && ln.cp.size == cp->size &&
				memcmp(ln.cp.root, cp->root, AUDIT_HASH_LEN) == 0;
		}
		audit_reader_close(&rd);
		if (!found) {
			printf("FAILED: \"%s\" (tree size %" PRIu64 ") is not among the checkpoints in %s\n", name, cp->size,
			       held);
			return 1;
		}
	}
	return 0;
}

static char *read_small_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 20;
	char *buf = malloc(cap + 1);
	size_t n = buf ? fread(buf, 1, cap + 1, f) : 0;
	fclose(f);
	if (!buf || n > cap) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int cmd_audit_verify_proof(int argc, char **argv)
{
	const char *proof_path = NULL, *key_path = NULL, *held = NULL, *record_path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			key_path = argv[++i];
		else if (strcmp(argv[i], "--checkpoints") == 0 && i + 1 < argc)
			held = argv[++i];
		else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc)
			record_path = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1]) {
			proof_path = NULL;
			break;
		} else
			proof_path = argv[i];
	}
	if (!proof_path || !key_path) {
		fprintf(stderr, "usage: bmsgate audit verify-proof PROOF.json --key PUBLIC_KEY [--checkpoints FILE] "
				"[--record FILE]\n"
				"  --checkpoints: the proof's checkpoints must be among these (the ones you hold)\n"
				"  --record: a record line someone claims was logged; checked against the proven leaf\n"
				"  exit 0 proven, 1 not proven / not in the log, 2 cannot read\n");
		return 2;
	}
	char err[512];
	EVP_PKEY *key = NULL;
	if (audit_key_load(key_path, false, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "bmsgate audit verify-proof: %s\n", err);
		return 2;
	}
	int status = 2;
	json_error_t jerr;
	json_t *o = json_load_file(proof_path, JSON_REJECT_DUPLICATES, &jerr);
	uint8_t (*hashes)[AUDIT_HASH_LEN] = malloc(AUDIT_PROOF_MAX * AUDIT_HASH_LEN);
	if (!o || !hashes) {
		fprintf(stderr, "bmsgate audit verify-proof: cannot read %s: %s\n", proof_path, o ? "" : jerr.text);
		goto out;
	}
	status = 1;
	const char *kind = json_string_value(json_object_get(o, "proof"));
	unsigned n;
	if (!kind || hashes_from_json(json_object_get(o, "hashes"), hashes, &n) < 0) {
		printf("FAILED: not a bmsgate proof (\"proof\" and \"hashes\" needed)\n");
		goto out;
	}
	if (strcmp(kind, "inclusion") == 0) {
		struct audit_checkpoint cp;
		uint64_t index, size;
		uint8_t leaf[AUDIT_HASH_LEN];
		json_t *lh = json_object_get(o, "leaf_hash");
		if (get_size(o, "index", &index) < 0 || get_size(o, "tree_size", &size) < 0 || !json_is_string(lh) ||
		    audit_unhex(json_string_value(lh), json_string_length(lh), leaf, AUDIT_HASH_LEN) < 0) {
			printf("FAILED: inclusion proof needs index, tree_size and leaf_hash\n");
			goto out;
		}
		int r = proof_cp(o, "checkpoint", key, held, &cp);
		if (r) {
			status = r;
			goto out;
		}
		if (cp.size != size) {
			printf("FAILED: the proof is for tree size %" PRIu64 " but its checkpoint signs size %" PRIu64 "\n",
			       size, cp.size);
			goto out;
		}
		json_t *rec = json_object_get(o, "record");
		if (json_is_string(rec)) {
			uint8_t h[AUDIT_HASH_LEN];
			audit_leaf_hash(json_string_value(rec), json_string_length(rec), h);
			if (memcmp(h, leaf, AUDIT_HASH_LEN) != 0) {
				printf("FAILED: the \"record\" in the proof does not hash to its leaf_hash\n");
				goto out;
			}
		}
		if (audit_verify_inclusion(index, size, leaf, (const uint8_t (*)[AUDIT_HASH_LEN])hashes, n, cp.root) < 0) {
			printf("FAILED: the inclusion proof does not lead to the signed root of tree size %" PRIu64 "\n", size);
			goto out;
		}
		if (record_path) {
			size_t len;
			char *claimed = read_small_file(record_path, &len);
			if (!claimed) {
				fprintf(stderr, "cannot read %s\n", record_path);
				status = 2;
				goto out;
			}
			while (len && (claimed[len - 1] == '\n' || claimed[len - 1] == '\r'))
				len--;
			uint8_t h[AUDIT_HASH_LEN];
			audit_leaf_hash(claimed, len, h);
			struct audit_line ln;
			audit_line_parse(claimed, len, &ln, NULL);
			free(claimed);
			if (memcmp(h, leaf, AUDIT_HASH_LEN) != 0) {
				printf("NOT IN LOG: the signed log (tree size %" PRIu64 ", %s) holds a different record at seq "
				       "%" PRIu64 ": the record in %s was not logged as it reads%s\n",
				       size, cp.time, index, record_path,
				       ln.has_seq && ln.seq != index ? " (and its seq differs from the proof's index)" : "");
				goto out;
			}
		}
		char root[2 * AUDIT_HASH_LEN + 1];
		audit_hex(cp.root, AUDIT_HASH_LEN, root);
		printf("OK: record %" PRIu64 " is in the log of node %s at tree size %" PRIu64 " (root %s, signed %s by key "
		       "%s)\n",
		       index, cp.node, size, root, cp.time, cp.key_id);
		status = 0;
	} else if (strcmp(kind, "consistency") == 0) {
		struct audit_checkpoint c1, c2;
		uint64_t m, nn;
		if (get_size(o, "first", &m) < 0 || get_size(o, "second", &nn) < 0) {
			printf("FAILED: consistency proof needs first and second\n");
			goto out;
		}
		int r = proof_cp(o, "checkpoint1", key, held, &c1);
		if (r == 0)
			r = proof_cp(o, "checkpoint2", key, NULL, &c2);
		if (r) {
			status = r;
			goto out;
		}
		if (c1.size != m || c2.size != nn) {
			printf("FAILED: the proof's sizes (%" PRIu64 ", %" PRIu64 ") are not its checkpoints' (%" PRIu64
			       ", %" PRIu64 ")\n", m, nn, c1.size, c2.size);
			goto out;
		}
		if (audit_verify_consistency(m, nn, c1.root, c2.root, (const uint8_t (*)[AUDIT_HASH_LEN])hashes, n) < 0) {
			printf("FAILED: the log at tree size %" PRIu64 " does not extend the log at tree size %" PRIu64
			       ": history was rewritten between the two checkpoints\n", nn, m);
			goto out;
		}
		printf("OK: the log at tree size %" PRIu64 " (signed %s) extends the log at tree size %" PRIu64
		       " (signed %s): nothing signed was changed or removed\n", nn, c2.time, m, c1.time);
		status = 0;
	} else {
		printf("FAILED: unknown proof kind '%s'\n", kind);
	}
out:
	free(hashes);
	json_decref(o);
	EVP_PKEY_free(key);
	return status;
}
