/* tests/unit/test_txmap.c: a timed-out request frees its slot at once (one silent request
 * must not hold a device connection for the others), and its id stays remembered so that
 * the device's late answer is recognised as late, never matched to a newer request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/txmap.h"

static void expired_slot_frees_at_once(void **state)
{
	(void)state;
	struct proxy_txmap m;
	proxy_txmap_init(&m, 1); /* max-in-flight 1 */
	struct proxy_tx *a = proxy_txmap_alloc(&m, 7);
	assert_non_null(a);
	uint16_t at = a->up_tid;
	assert_null(proxy_txmap_alloc(&m, 8)); /* full while a waits */
	proxy_txmap_expire(&m, a);
	assert_int_equal(m.used, 0);
	/* the next request gets the slot now, with another id */
	struct proxy_tx *b = proxy_txmap_alloc(&m, 8);
	assert_non_null(b);
	assert_int_not_equal(b->up_tid, at);
	/* a late answer for a's id: not b's, and recognised as a late one (once) */
	assert_null(proxy_txmap_find(&m, at));
	assert_true(proxy_txmap_take_expired(&m, at));
	assert_false(proxy_txmap_take_expired(&m, at));
	/* an id nobody used is neither */
	assert_false(proxy_txmap_take_expired(&m, (uint16_t)(b->up_tid + 100)));
	/* a live slot is not expired */
	assert_false(proxy_txmap_take_expired(&m, b->up_tid));
	assert_ptr_equal(proxy_txmap_find(&m, b->up_tid), b);
}

static void expired_id_never_reissued_while_remembered(void **state)
{
	(void)state;
	struct proxy_txmap m;
	proxy_txmap_init(&m, 1);
	struct proxy_tx *a = proxy_txmap_alloc(&m, 1);
	uint16_t at = a->up_tid;
	proxy_txmap_expire(&m, a);
	/* 70000 allocations wrap the 16-bit id space */
	for (unsigned i = 0; i < 70000; i++) {
		struct proxy_tx *t = proxy_txmap_alloc(&m, (uint16_t)i);
		assert_non_null(t);
		assert_int_not_equal(t->up_tid, at);
		proxy_txmap_release(&m, t);
	}
	assert_true(proxy_txmap_take_expired(&m, at));
	/* forgotten: the id may be handed out again */
	bool seen = false;
	for (unsigned i = 0; i < 70000 && !seen; i++) {
		struct proxy_tx *t = proxy_txmap_alloc(&m, 0);
		seen = t->up_tid == at;
		proxy_txmap_release(&m, t);
	}
	assert_true(seen);
}

static void expired_list_is_bounded(void **state)
{
	(void)state;
	struct proxy_txmap m;
	proxy_txmap_init(&m, 1);
	uint16_t ids[PROXY_TXMAP_MAX + 1];
	for (unsigned i = 0; i < PROXY_TXMAP_MAX + 1; i++) {
		struct proxy_tx *t = proxy_txmap_alloc(&m, 0);
		assert_non_null(t);
		ids[i] = t->up_tid;
		proxy_txmap_expire(&m, t);
	}
	assert_int_equal(m.nexpired, PROXY_TXMAP_MAX);
	/* the oldest was forgotten, the newest are remembered */
	assert_false(proxy_txmap_take_expired(&m, ids[0]));
	assert_true(proxy_txmap_take_expired(&m, ids[PROXY_TXMAP_MAX]));
	assert_true(proxy_txmap_take_expired(&m, ids[1]));
	assert_int_equal(m.nexpired, PROXY_TXMAP_MAX - 2);
	/* a second expire of a released slot changes nothing */
	struct proxy_tx *t = proxy_txmap_alloc(&m, 0);
	proxy_txmap_release(&m, t);
	proxy_txmap_expire(&m, t);
	assert_int_equal(m.nexpired, PROXY_TXMAP_MAX - 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(expired_slot_frees_at_once),
		cmocka_unit_test(expired_id_never_reissued_while_remembered),
		cmocka_unit_test(expired_list_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
