/* audit/merkle.h: RFC 6962 / RFC 9162 Merkle tree hashing, the compact
 * range the writer keeps (O(log n) state), and inclusion / consistency proofs.
 *
 *   leaf hash  = SHA-256(0x00 || data)                (RFC 9162 2.1.1)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256()                            (the empty tree)
 *   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
 */
#ifndef BMS_AUDIT_MERKLE_H
#define BMS_AUDIT_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"

#define AUDIT_HASH_LEN 32
#define AUDIT_TREE_MAX_HEIGHT 64
/* A proof over a tree of at most 2^64 leaves has at most 64 hashes. */
#define AUDIT_PROOF_MAX 64

void audit_leaf_hash(const void *data, size_t len, uint8_t out[static AUDIT_HASH_LEN]);
void audit_node_hash(const uint8_t left[static AUDIT_HASH_LEN], const uint8_t right[static AUDIT_HASH_LEN],
		     uint8_t out[static AUDIT_HASH_LEN]);

/* The roots of the perfect subtrees that make up a tree of `size` leaves,
 * largest (leftmost) first: one per set bit of size. This is all a writer
 * needs to append and to compute the root. */
struct audit_tree {
	uint64_t size;
	unsigned n;  /* popcount(size) */
	uint8_t hash[AUDIT_TREE_MAX_HEIGHT][AUDIT_HASH_LEN];
};

void audit_tree_init(struct audit_tree *t);
/* Appends one leaf hash. -EOVERFLOW at 2^64 - 1 leaves. */
BMS_WUR int audit_tree_append(struct audit_tree *t, const uint8_t leaf[static AUDIT_HASH_LEN]);
void audit_tree_root(const struct audit_tree *t, uint8_t out[static AUDIT_HASH_LEN]);
/* Builds a tree state from its subtree roots (as written in a file's first
 * checkpoint): n must equal popcount(size). -EINVAL otherwise. */
BMS_WUR int audit_tree_from_frontier(struct audit_tree *t, uint64_t size, const uint8_t (*hash)[AUDIT_HASH_LEN],
				     unsigned n);

/* Root of the leaves [begin, end) of an array of leaf hashes (MTH). */
void audit_mth(const uint8_t (*leaves)[AUDIT_HASH_LEN], uint64_t begin, uint64_t end,
	       uint8_t out[static AUDIT_HASH_LEN]);

/* RFC 9162 2.1.3.1: the inclusion proof of leaf `index` in the first `size`
 * leaves. *n = number of hashes. -EINVAL if index >= size. */
BMS_WUR int audit_inclusion_proof(const uint8_t (*leaves)[AUDIT_HASH_LEN], uint64_t index, uint64_t size,
				  uint8_t proof[AUDIT_PROOF_MAX][AUDIT_HASH_LEN], unsigned *n);
/* RFC 9162 2.1.4.1: the consistency proof between sizes m <= n. -EINVAL if m > n or m == 0. */
BMS_WUR int audit_consistency_proof(const uint8_t (*leaves)[AUDIT_HASH_LEN], uint64_t m, uint64_t n,
				    uint8_t proof[AUDIT_PROOF_MAX][AUDIT_HASH_LEN], unsigned *count);

/* RFC 9162 2.1.3.2: 0 if the proof shows `leaf` at `index` in the tree of `size` with `root`; -EBADMSG if not. */
BMS_WUR int audit_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[static AUDIT_HASH_LEN],
				   const uint8_t (*proof)[AUDIT_HASH_LEN], unsigned n,
				   const uint8_t root[static AUDIT_HASH_LEN]);
/* RFC 9162 2.1.4.2: 0 if the proof shows the tree (m, root1) is a prefix of (n, root2); -EBADMSG if not. */
BMS_WUR int audit_verify_consistency(uint64_t m, uint64_t n, const uint8_t root1[static AUDIT_HASH_LEN],
				     const uint8_t root2[static AUDIT_HASH_LEN],
				     const uint8_t (*proof)[AUDIT_HASH_LEN], unsigned count);

/* Lower-case hex of len bytes into out (2 * len + 1). */
void audit_hex(const uint8_t *in, size_t len, char *out);
/* Parses exactly 2 * len hex digits. -EINVAL otherwise. */
BMS_WUR int audit_unhex(const char *in, size_t inlen, uint8_t *out, size_t len);

#endif
