/* tests/unit/test_audit_merkle.c: RFC 6962 / 9162 hashing against the
 * published Certificate Transparency test vectors (the leaves "", 00, 10,
 * 2021, ... and their roots and proofs, as in transparency-dev/merkle
 * testonly data), and every proof for every pair up to 70 leaves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "audit/audit_int.h"
#include "audit/merkle.h"

static const char *const ct_leaves_hex[] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
};

/* root of the first n leaves, n = 0..8 */
static const char *const ct_roots[] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct vec_proof {
	uint64_t a, b; /* inclusion: index, size; consistency: m, n */
	unsigned n;
	const char *hash[4];
};

static const struct vec_proof ct_inclusion[] = {
	{ 0, 8, 3, { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5, 8, 3, { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
		     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
};

static const struct vec_proof ct_consistency[] = {
	{ 2, 8, 2, { "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3, { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
};

static void unhex_ok(const char *s, uint8_t *out, size_t len)
{
	assert_int_equal(audit_unhex(s, strlen(s), out, len), 0);
}

static void ct_leaf_hashes(uint8_t leaves[8][AUDIT_HASH_LEN])
{
	for (int i = 0; i < 8; i++) {
		uint8_t data[16];
		size_t n = strlen(ct_leaves_hex[i]) / 2;
		if (n)
			unhex_ok(ct_leaves_hex[i], data, n);
		audit_leaf_hash(data, n, leaves[i]);
	}
}

static void roots_match_published_vectors(void **state)
{
	(void)state;
	uint8_t leaves[8][AUDIT_HASH_LEN], root[AUDIT_HASH_LEN], want[AUDIT_HASH_LEN];
	ct_leaf_hashes(leaves);
	struct audit_tree t;
	audit_tree_init(&t);
	for (unsigned n = 0; n <= 8; n++) {
		if (n)
			assert_int_equal(audit_tree_append(&t, leaves[n - 1]), 0);
		unhex_ok(ct_roots[n], want, AUDIT_HASH_LEN);
		audit_tree_root(&t, root);
		assert_memory_equal(root, want, AUDIT_HASH_LEN);
		audit_mth((const uint8_t (*)[AUDIT_HASH_LEN])leaves, 0, n, root);
		assert_memory_equal(root, want, AUDIT_HASH_LEN);
		assert_int_equal(t.n, (unsigned)__builtin_popcount(n));
	}
}

static void proofs_match_published_vectors(void **state)
{
	(void)state;
	uint8_t leaves[8][AUDIT_HASH_LEN], proof[AUDIT_PROOF_MAX][AUDIT_HASH_LEN], want[AUDIT_HASH_LEN];
	uint8_t r1[AUDIT_HASH_LEN], r2[AUDIT_HASH_LEN];
	const uint8_t (*L)[AUDIT_HASH_LEN] = (const uint8_t (*)[AUDIT_HASH_LEN])leaves;
	ct_leaf_hashes(leaves);
	for (size_t v = 0; v < sizeof(ct_inclusion) / sizeof(ct_inclusion[0]); v++) {
		const struct vec_proof *p = &ct_inclusion[v];
		unsigned n;
		assert_int_equal(audit_inclusion_proof(L, p->a, p->b, proof, &n), 0);
		assert_int_equal(n, p->n);
		for (unsigned i = 0; i < n; i++) {
			unhex_ok(p->hash[i], want, AUDIT_HASH_LEN);
			assert_memory_equal(proof[i], want, AUDIT_HASH_LEN);
		}
		unhex_ok(ct_roots[p->b], r1, AUDIT_HASH_LEN);
		assert_int_equal(audit_verify_inclusion(p->a, p->b, leaves[p->a], (const uint8_t (*)[32])proof, n, r1), 0);
	}
	for (size_t v = 0; v < sizeof(ct_consistency) / sizeof(ct_consistency[0]); v++) {
		const struct vec_proof *p = &ct_consistency[v];
		unsigned n;
		assert_int_equal(audit_consistency_proof(L, p->a, p->b, proof, &n), 0);
		assert_int_equal(n, p->n);
		for (unsigned i = 0; i < n; i++) {
			unhex_ok(p->hash[i], want, AUDIT_HASH_LEN);
			assert_memory_equal(proof[i], want, AUDIT_HASH_LEN);
		}
		unhex_ok(ct_roots[p->a], r1, AUDIT_HASH_LEN);
		unhex_ok(ct_roots[p->b], r2, AUDIT_HASH_LEN);
		assert_int_equal(audit_verify_consistency(p->a, p->b, r1, r2, (const uint8_t (*)[32])proof, n), 0);
	}
}

#define BIG 70

static void every_proof_verifies_and_mangled_ones_do_not(void **state)
{
	(void)state;
	static uint8_t leaves[BIG][AUDIT_HASH_LEN], roots[BIG + 1][AUDIT_HASH_LEN];
	uint8_t proof[AUDIT_PROOF_MAX][AUDIT_HASH_LEN];
	const uint8_t (*L)[AUDIT_HASH_LEN] = (const uint8_t (*)[AUDIT_HASH_LEN])leaves;
	const uint8_t (*P)[AUDIT_HASH_LEN] = (const uint8_t (*)[AUDIT_HASH_LEN])proof;
	struct audit_tree t;
	audit_tree_init(&t);
	audit_tree_root(&t, roots[0]);
	for (unsigned i = 0; i < BIG; i++) {
		uint8_t d[2] = { (uint8_t)i, (uint8_t)(i * 7) };
		audit_leaf_hash(d, sizeof(d), leaves[i]);
		assert_int_equal(audit_tree_append(&t, leaves[i]), 0);
		audit_tree_root(&t, roots[i + 1]);
	}
	for (uint64_t n = 1; n <= BIG; n++) {
		for (uint64_t i = 0; i < n; i++) {
			unsigned k;
			assert_int_equal(audit_inclusion_proof(L, i, n, proof, &k), 0);
			assert_int_equal(audit_verify_inclusion(i, n, leaves[i], P, k, roots[n]), 0);
			/* wrong index, wrong size, wrong leaf, flipped byte, one hash short, one too many */
			if (n > 1) {
				assert_int_not_equal(audit_verify_inclusion((i + 1) % n, n, leaves[i], P, k, roots[n]), 0);
				assert_int_not_equal(audit_verify_inclusion(i, n, leaves[(i + 1) % n], P, k, roots[n]), 0);
				proof[k - 1][5] ^= 1;
				assert_int_not_equal(audit_verify_inclusion(i, n, leaves[i], P, k, roots[n]), 0);
				proof[k - 1][5] ^= 1;
				assert_int_not_equal(audit_verify_inclusion(i, n, leaves[i], P, k - 1, roots[n]), 0);
			}
			if (k < AUDIT_PROOF_MAX) {
				memset(proof[k], 0xab, AUDIT_HASH_LEN);
				assert_int_not_equal(audit_verify_inclusion(i, n, leaves[i], P, k + 1, roots[n]), 0);
			}
			/* the proof of a smaller tree does not show inclusion in the bigger one.
			 * (RFC 9162 binds size and root only together: the same path can fit
			 * (n + 1, root of n), which is why checkpoints sign both.) */
			if (n < BIG)
				assert_int_not_equal(audit_verify_inclusion(i, n + 1, leaves[i], P, k, roots[n + 1]), 0);
		}
		for (uint64_t m = 1; m <= n; m++) {
			unsigned k;
			assert_int_equal(audit_consistency_proof(L, m, n, proof, &k), 0);
			assert_int_equal(audit_verify_consistency(m, n, roots[m], roots[n], P, k), 0);
			if (m < n) {
				assert_true(k > 0);
				proof[0][3] ^= 0x80;
				assert_int_not_equal(audit_verify_consistency(m, n, roots[m], roots[n], P, k), 0);
				proof[0][3] ^= 0x80;
				assert_int_not_equal(audit_verify_consistency(m, n, roots[m], roots[n], P, k - 1), 0);
				assert_int_not_equal(audit_verify_consistency(m, n, roots[m - 1], roots[n], P, k), 0);
				assert_int_not_equal(audit_verify_consistency(m, n, roots[m], roots[n - 1], P, k), 0);
			} else {
				assert_int_equal(k, 0);
			}
		}
	}
	assert_int_equal(audit_verify_consistency(0, 8, roots[0], roots[8], NULL, 0), 0);
	assert_int_not_equal(audit_verify_consistency(5, 3, roots[5], roots[3], NULL, 0), 0);
	unsigned k;
	assert_int_equal(audit_inclusion_proof(L, 8, 8, proof, &k), -EINVAL);
	assert_int_equal(audit_consistency_proof(L, 0, 8, proof, &k), -EINVAL);
	assert_int_equal(audit_consistency_proof(L, 9, 8, proof, &k), -EINVAL);
}

static void frontier_round_trip(void **state)
{
	(void)state;
	struct audit_tree a, b;
	uint8_t leaf[AUDIT_HASH_LEN], r1[AUDIT_HASH_LEN], r2[AUDIT_HASH_LEN];
	audit_tree_init(&a);
	for (unsigned i = 0; i < 1000; i++) {
		audit_leaf_hash(&i, sizeof(i), leaf);
		assert_int_equal(audit_tree_append(&a, leaf), 0);
		if (i % 97 == 0) {
			assert_int_equal(audit_tree_from_frontier(&b, a.size, (const uint8_t (*)[32])a.hash, a.n), 0);
			audit_tree_root(&a, r1);
			audit_tree_root(&b, r2);
			assert_memory_equal(r1, r2, AUDIT_HASH_LEN);
		}
	}
	/* a frontier of the wrong shape is refused */
	assert_int_equal(audit_tree_from_frontier(&b, 1000, (const uint8_t (*)[32])a.hash, a.n + 1), -EINVAL);
}

static void hex_round_trip_and_rejects(void **state)
{
	(void)state;
	uint8_t in[4] = { 0x00, 0xab, 0x10, 0xff }, out[4];
	char h[9];
	audit_hex(in, 4, h);
	assert_string_equal(h, "00ab10ff");
	assert_int_equal(audit_unhex(h, 8, out, 4), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(audit_unhex("00ab10f", 7, out, 4), -EINVAL);
	assert_int_equal(audit_unhex("00ab10fg", 8, out, 4), -EINVAL);
}

/* SHA-256(0x00 || data || more) through EVP, independently of merkle.c */
static void leaf_by_evp(const uint8_t *data, size_t len, const uint8_t *more, size_t morelen, uint8_t out[32])
{
	uint8_t buf[1 + 400];
	assert_true(1 + len + morelen <= sizeof(buf));
	buf[0] = 0x00;
	memcpy(buf + 1, data, len);
	memcpy(buf + 1 + len, more, morelen);
	unsigned olen = 0;
	assert_int_equal(EVP_Digest(buf, 1 + len + morelen, out, &olen, EVP_sha256(), NULL), 1);
	assert_int_equal(olen, 32);
}

static void two_step_leaf_hash_matches_one_step(void **state)
{
	/* the writer's split: the caller absorbs the whole blocks of a line, the
	 * writer the rest and the suffix, possibly twice (a retried write) */
	(void)state;
	uint8_t data[300], more[40];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 7);
	for (size_t i = 0; i < sizeof(more); i++)
		more[i] = (uint8_t)('a' + i % 26);
	for (size_t len = 0; len <= sizeof(data); len++) {
		size_t morelen = len % (sizeof(more) + 1);
		struct audit_leaf_state st;
		uint8_t want[32], got[32], again[32], one[32];
		leaf_by_evp(data, len, more, morelen, want);
		audit_leaf_begin(&st, data, len);
		/* a state exists once the prefix byte and the line fill a block */
		assert_int_equal(st.valid, 1 + len >= 64);
		audit_leaf_finish(&st, data, len, more, morelen, got);
		assert_memory_equal(got, want, 32);
		audit_leaf_finish(&st, data, len, more, morelen, again);
		assert_memory_equal(again, want, 32);
		if (morelen == 0) {
			audit_leaf_hash(data, len, one);
			assert_memory_equal(one, want, 32);
		}
	}
	/* the empty leaf: the root of a one-leaf tree in the published vectors */
	struct audit_leaf_state st;
	uint8_t got[32], want[32];
	audit_leaf_begin(&st, "", 0);
	audit_leaf_finish(&st, "", 0, NULL, 0, got);
	unhex_ok(ct_roots[1], want, 32);
	assert_memory_equal(got, want, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roots_match_published_vectors),
		cmocka_unit_test(proofs_match_published_vectors),
		cmocka_unit_test(every_proof_verifies_and_mangled_ones_do_not),
		cmocka_unit_test(frontier_round_trip),
		cmocka_unit_test(hex_round_trip_and_rejects),
		cmocka_unit_test(two_step_leaf_hash_matches_one_step),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
