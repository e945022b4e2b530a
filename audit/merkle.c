/* audit/merkle.c: RFC 6962 / 9162 hashing, compact range, proofs.
 *
 * SHA-256 through OpenSSL's SHA256_* functions. They are deprecated in
 * OpenSSL 3 in favour of EVP, deliberately used here: the writer hashes every
 * record and a tree node per record, and an EVP context per hash (allocation,
 * provider dispatch, cleanse) cost 0.4 us per record on top of 0.9 us of
 * hashing (measured, bench/bench_audit). A plain SHA256_CTX is also a value:
 * the caller's thread can hash the bulk of a record and hand the chaining
 * value to the writer without an allocation. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_int.h"
#include "audit/merkle.h"

/* A failure of SHA256_* means the library is broken, and a hash we cannot
 * compute must not look like one we could: abort. */
static void sha256_prefixed(uint8_t prefix, const void *a, size_t alen, const void *b, size_t blen,
			    uint8_t out[static AUDIT_HASH_LEN])
{
	SHA256_CTX c;
	if (SHA256_Init(&c) != 1 || SHA256_Update(&c, &prefix, 1) != 1 || (alen && SHA256_Update(&c, a, alen) != 1) ||
	    (blen && SHA256_Update(&c, b, blen) != 1) || SHA256_Final(out, &c) != 1)
		abort();
}

void audit_leaf_begin(struct audit_leaf_state *st, const void *data, size_t len)
{
	static const uint8_t zero = 0x00;
	/* whole blocks only: then the context holds no buffered bytes, and its
	 * chaining value and length are all there is to keep */
	size_t whole = (1 + len) / 64 * 64;
	SHA256_CTX c;
	if (whole > UINT32_MAX || SHA256_Init(&c) != 1 || SHA256_Update(&c, &zero, 1) != 1 ||
	    (whole > 1 && SHA256_Update(&c, data, whole - 1) != 1))
		abort();
	if (whole == 0) {
		st->valid = false; /* shorter than a block: finish hashes it all */
		return;
	}
	memcpy(st->h, c.h, sizeof(st->h));
	st->absorbed = (uint32_t)whole;
	st->valid = true;
}

void audit_leaf_finish(const struct audit_leaf_state *st, const void *data, size_t len, const void *more,
		       size_t morelen, uint8_t out[static AUDIT_HASH_LEN])
{
	if (!st->valid || st->absorbed - 1 > len) {
		sha256_prefixed(0x00, data, len, more, morelen, out);
		return;
	}
	/* the context as SHA256_Update left it after `absorbed` bytes: chaining
	 * value and bit count (SHA256_CTX is a public struct of openssl/sha.h) */
	SHA256_CTX c;
	size_t done = st->absorbed - 1;
	if (SHA256_Init(&c) != 1)
		abort();
	memcpy(c.h, st->h, sizeof(st->h));
	uint64_t bits = (uint64_t)st->absorbed * 8;
	c.Nl = (SHA_LONG)bits;
	c.Nh = (SHA_LONG)(bits >> 32);
	c.num = 0;
	if ((len > done && SHA256_Update(&c, (const uint8_t *)data + done, len - done) != 1) ||
	    (morelen && SHA256_Update(&c, more, morelen) != 1) || SHA256_Final(out, &c) != 1)
		abort();
}

void audit_leaf_hash(const void *data, size_t len, uint8_t out[static AUDIT_HASH_LEN])
{
	sha256_prefixed(0x00, data, len, NULL, 0, out);
}

void audit_node_hash(const uint8_t left[static AUDIT_HASH_LEN], const uint8_t right[static AUDIT_HASH_LEN],
		     uint8_t out[static AUDIT_HASH_LEN])
{
	/* one buffer, one update; out may alias left or right */
	uint8_t m[2 * AUDIT_HASH_LEN];
	memcpy(m, left, AUDIT_HASH_LEN);
	memcpy(m + AUDIT_HASH_LEN, right, AUDIT_HASH_LEN);
	sha256_prefixed(0x01, m, sizeof(m), NULL, 0, out);
}

static void empty_root(uint8_t out[static AUDIT_HASH_LEN])
{
	/* MTH({}) = SHA-256() with no prefix (RFC 9162 2.1.1). */
	SHA256_CTX c;
	if (SHA256_Init(&c) != 1 || SHA256_Final(out, &c) != 1)
		abort();
}

void audit_tree_init(struct audit_tree *t)
{
	t->size = 0;
	t->n = 0;
}

int audit_tree_append(struct audit_tree *t, const uint8_t leaf[static AUDIT_HASH_LEN])
{
	if (t->size == UINT64_MAX)
		return -EOVERFLOW;
	memcpy(t->hash[t->n], leaf, AUDIT_HASH_LEN);
	t->n++;
	/* Each trailing one bit of the old size is a perfect subtree of the same
	 * height as the one just completed: merge right to left. */
	for (uint64_t s = t->size; s & 1; s >>= 1) {
		audit_node_hash(t->hash[t->n - 2], t->hash[t->n - 1], t->hash[t->n - 2]);
		t->n--;
	}
	t->size++;
	return 0;
}

void audit_tree_root(const struct audit_tree *t, uint8_t out[static AUDIT_HASH_LEN])
{
	if (t->n == 0) {
		empty_root(out);
		return;
	}
	uint8_t r[AUDIT_HASH_LEN];
	memcpy(r, t->hash[t->n - 1], AUDIT_HASH_LEN);
	for (unsigned i = t->n - 1; i-- > 0;)
		audit_node_hash(t->hash[i], r, r);
	memcpy(out, r, AUDIT_HASH_LEN);
}

int audit_tree_from_frontier(struct audit_tree *t, uint64_t size, const uint8_t (*hash)[AUDIT_HASH_LEN], unsigned n)
{
	if ((unsigned)__builtin_popcountll(size) != n || n > AUDIT_TREE_MAX_HEIGHT)
		return -EINVAL;
	t->size = size;
	t->n = n;
	for (unsigned i = 0; i < n; i++)
		memcpy(t->hash[i], hash[i], AUDIT_HASH_LEN);
	return 0;
}

void audit_mth(const uint8_t (*leaves)[AUDIT_HASH_LEN], uint64_t begin, uint64_t end, uint8_t out[static AUDIT_HASH_LEN])
{
	/* Appending the range to a fresh compact range and folding it is MTH:
	 * the fold joins the perfect subtrees exactly as the k-split does. */
	struct audit_tree t;
	audit_tree_init(&t);
	for (uint64_t i = begin; i < end; i++)
		if (audit_tree_append(&t, leaves[i]) < 0)
			abort(); /* cannot happen below 2^64 leaves */
	audit_tree_root(&t, out);
}

static uint64_t split_point(uint64_t n)
{
	/* the largest power of two smaller than n (n >= 2) */
	uint64_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

/* PATH(m, D[begin:end]) of RFC 9162 2.1.3.1, appended leaf-side first. */
static int path(const uint8_t (*leaves)[AUDIT_HASH_LEN], uint64_t m, uint64_t begin, uint64_t end,
		uint8_t proof[AUDIT_PROOF_MAX][AUDIT_HASH_LEN], unsigned *n)
{
	uint64_t len = end - begin;
	if (len <= 1)
		return 0;
	uint64_t k = split_point(len);
	int r;
	if (m < k) {
		r = path(leaves, m, begin, begin + k, proof, n);
		if (r < 0)
			return r;
		if (*n >= AUDIT_PROOF_MAX)
			return -EOVERFLOW;
		audit_mth(leaves, begin + k, end, proof[(*n)++]);
	} else {
		r = path(leaves, m - k, begin + k, end, proof, n);
		if (r < 0)
			return r;
		if (*n >= AUDIT_PROOF_MAX)
			return -EOVERFLOW;
		audit_mth(leaves, begin, begin + k, proof[(*n)++]);
	}
	return 0;
}

int audit_inclusion_proof(const uint8_t (*leaves)[AUDIT_HASH_LEN], uint64_t index, uint64_t size,
			  uint8_t proof[AUDIT_PROOF_MAX][AUDIT_HASH_LEN], unsigned *n)
{
	*n = 0;
	if (index >= size)
		return -EINVAL;
	return path(leaves, index, 0, size, proof, n);
}

/* SUBPROOF(m, D[begin:end], b) of RFC 9162 2.1.4.1. */
static int subproof(const uint8_t (*leaves)[AUDIT_HASH_LEN], uint64_t m, uint64_t begin, uint64_t end, int b,
		    uint8_t proof[AUDIT_PROOF_MAX][AUDIT_HASH_LEN], unsigned *n)
{
	uint64_t len = end - begin;
	if (m == len) {
		if (b)
			return 0;
		if (*n >= AUDIT_PROOF_MAX)
			return -EOVERFLOW;
		audit_mth(leaves, begin, end, proof[(*n)++]);
		return 0;
	}
	uint64_t k = split_point(len);
	int r;
	if (m <= k) {
		r = subproof(leaves, m, begin, begin + k, b, proof, n);
		if (r < 0)
			return r;
		if (*n >= AUDIT_PROOF_MAX)
			return -EOVERFLOW;
		audit_mth(leaves, begin + k, end, proof[(*n)++]);
	} else {
		r = subproof(leaves, m - k, begin + k, end, 0, proof, n);
		if (r < 0)
			return r;
		if (*n >= AUDIT_PROOF_MAX)
			return -EOVERFLOW;
		audit_mth(leaves, begin, begin + k, proof[(*n)++]);
	}
	return 0;
}

int audit_consistency_proof(const uint8_t (*leaves)[AUDIT_HASH_LEN], uint64_t m, uint64_t n,
			    uint8_t proof[AUDIT_PROOF_MAX][AUDIT_HASH_LEN], unsigned *count)
{
	*count = 0;
	if (m == 0 || m > n)
		return -EINVAL;
	return subproof(leaves, m, 0, n, 1, proof, count);
}

int audit_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[static AUDIT_HASH_LEN],
			   const uint8_t (*proof)[AUDIT_HASH_LEN], unsigned n, const uint8_t root[static AUDIT_HASH_LEN])
{
	/* RFC 9162 2.1.3.2, step by step. */
	if (index >= size)
		return -EBADMSG;
	uint64_t fn = index, sn = size - 1;
	uint8_t r[AUDIT_HASH_LEN];
	memcpy(r, leaf, AUDIT_HASH_LEN);
	for (unsigned i = 0; i < n; i++) {
		if (sn == 0)
			return -EBADMSG;
		if ((fn & 1) || fn == sn) {
			audit_node_hash(proof[i], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			audit_node_hash(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(r, root, AUDIT_HASH_LEN) != 0)
		return -EBADMSG;
	return 0;
}

static int is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

int audit_verify_consistency(uint64_t m, uint64_t n, const uint8_t root1[static AUDIT_HASH_LEN],
			     const uint8_t root2[static AUDIT_HASH_LEN], const uint8_t (*proof)[AUDIT_HASH_LEN],
			     unsigned count)
{
	if (m > n)
		return -EBADMSG;
	if (m == n) /* the same tree: no proof, equal roots */
		return count == 0 && memcmp(root1, root2, AUDIT_HASH_LEN) == 0 ? 0 : -EBADMSG;
	if (m == 0) /* the empty tree is a prefix of every tree */
		return count == 0 ? 0 : -EBADMSG;
	/* RFC 9162 2.1.4.2 */
	if (count == 0)
		return -EBADMSG;
	const uint8_t *first;
	unsigned i = 0;
	if (is_pow2(m)) {
		first = root1; /* prepended first_hash */
	} else {
		first = proof[0];
		i = 1;
	}
	uint64_t fn = m - 1, sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	uint8_t fr[AUDIT_HASH_LEN], sr[AUDIT_HASH_LEN];
	memcpy(fr, first, AUDIT_HASH_LEN);
	memcpy(sr, first, AUDIT_HASH_LEN);
	for (; i < count; i++) {
		if (sn == 0)
			return -EBADMSG;
		if ((fn & 1) || fn == sn) {
			audit_node_hash(proof[i], fr, fr);
			audit_node_hash(proof[i], sr, sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			audit_node_hash(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, root1, AUDIT_HASH_LEN) != 0 || memcmp(sr, root2, AUDIT_HASH_LEN) != 0)
		return -EBADMSG;
	return 0;
}

void audit_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int audit_unhex(const char *in, size_t inlen, uint8_t *out, size_t len)
{
	if (inlen != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int h = hexval(in[2 * i]), l = hexval(in[2 * i + 1]);
		if (h < 0 || l < 0)
			return -EINVAL;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return 0;
}
