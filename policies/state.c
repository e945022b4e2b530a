/* policies/state.c: the allocations of the engine's run-time side: the counter
 * table and the identity index. Kept out of eval.c so that the evaluator
 * provably calls no allocator (tests/integration/policy_noalloc.sh checks its symbols). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policies/policy_int.h"

struct bms_policy_state *bms_policy_state_new(size_t slots)
{
	size_t n = 64;
	if (slots == 0)
		slots = 4096;
	if (slots > ((size_t)1 << 24))
		return NULL;
	while (n < slots)
		n <<= 1;
	struct bms_policy_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->slots = calloc(n, sizeof(*st->slots));
	if (st->slots == NULL) {
		free(st);
		return NULL;
	}
	st->mask = n - 1;
	return st;
}

void bms_policy_state_free(struct bms_policy_state *st)
{
	if (st == NULL)
		return;
	free(st->slots);
	free(st);
}

int pol_build_identity_index(struct bms_policy *p)
{
	uint32_t n = 0, na = 0;
	for (uint32_t m = 0; m < p->nmembers; m++)
		p->members[m].kind == POL_M_ADDRESS ? na++ : n++;
	uint32_t size = 16;
	while (size < 2 * n)
		size <<= 1;
	p->idx = calloc(size, sizeof(*p->idx));
	p->addr_members = calloc(na ? 2 * na : 1, sizeof(uint32_t));
	if (p->idx == NULL || p->addr_members == NULL)
		return -ENOMEM;
	p->idx_mask = size - 1;
	for (uint32_t r = 0; r < p->nroles; r++)
		for (uint32_t k = 0; k < p->roles[r].nmembers; k++) {
			uint32_t mi = p->roles[r].member_first + k;
			const struct pol_member *m = &p->members[mi];
			uint64_t key;
			switch (m->kind) {
			case POL_M_ADDRESS:
				p->addr_members[2 * p->n_addr] = r;
				p->addr_members[2 * p->n_addr + 1] = mi;
				p->n_addr++;
				continue;
			case POL_M_FINGERPRINT:
				key = pol_idx_key(m->kind, m->fp, 32);
				p->n_fp++;
				break;
			default:
				key = pol_idx_key(m->kind, m->text, strlen(m->text));
				m->kind == POL_M_CERT_ROLE ? p->n_cert++ : p->n_subject++;
				break;
			}
			uint32_t s = (uint32_t)key & p->idx_mask;
			while (p->idx[s].hash != 0)
				s = (s + 1) & p->idx_mask;
			p->idx[s] = (struct pol_idx){ key, r, mi };
		}
	return 0;
}


int pol_build_device_index(struct bms_policy *p)
{
	uint32_t size = 16;
	while (size < 2 * p->ndevices)
		size <<= 1;
	p->devidx = calloc(size, sizeof(*p->devidx));
	if (p->devidx == NULL)
		return -ENOMEM;
	p->devidx_mask = size - 1;
	for (uint32_t d = 0; d < p->ndevices; d++) {
		uint64_t key = pol_addr_key((const struct sockaddr *)&p->devices[d].addr, true);
		uint32_t s = (uint32_t)key & p->devidx_mask;
		while (p->devidx[s].key != 0)
			s = (s + 1) & p->devidx_mask;
		p->devidx[s] = (struct pol_devidx){ key, d };
	}
	return 0;
}
