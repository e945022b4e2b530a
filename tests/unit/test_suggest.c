/* tests/unit/test_suggest.c: the one did-you-mean (base/suggest.c): a word one or two edits
 * away is suggested, nothing is when nothing is close, and of two at the same distance the first
 * listed wins. Each with its negative beside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/suggest.h"

static const char *const words[] = { "site", "timezone", "mode", "include", "accept", "schedule",
				     "role", "device", "allow", "deny" };
#define NW (sizeof(words) / sizeof(words[0]))

static void one_edit_away(void **state)
{
	(void)state;
	assert_string_equal(bms_suggest("devise", words, NW), "device");   /* substitution */
	assert_string_equal(bms_suggest("alow", words, NW), "allow");      /* deletion */
	assert_string_equal(bms_suggest("sitee", words, NW), "site");      /* insertion */
	assert_string_equal(bms_suggest("DEVICE", words, NW), "device");   /* case is folded */
	assert_int_equal(bms_edit_distance("devise", "device"), 1);
	assert_int_equal(bms_edit_distance("raed", "read"), 2);           /* a swap is two edits */
	/* negative: the same words are not suggested for something else */
	assert_null(bms_suggest("point", words, NW));
	assert_null(bms_suggest("devise", NULL, 0));
}

static void nothing_close(void **state)
{
	(void)state;
	assert_null(bms_suggest("xyzzy", words, NW));
	/* how close is close grows with the word: a 3-byte word may be 1 edit off, not 2 */
	static const char *const three[] = { "any", "all" };
	assert_string_equal(bms_suggest("anx", three, 2), "any");
	assert_null(bms_suggest("axx", three, 2));
	/* up to 6 bytes, 2 edits; beyond, 3 */
	static const char *const six[] = { "outside", "during" };
	assert_string_equal(bms_suggest("durxxg", six, 2), "during");
	assert_null(bms_suggest("dxxxxg", six, 2));
	assert_string_equal(bms_suggest("ouxxxde", six, 2), "outside");
	assert_null(bms_suggest("oxxxxde", six, 2));
	/* words past 63 bytes are never close (the distance is capped) */
	char longw[80];
	memset(longw, 'a', 79);
	longw[79] = '\0';
	const char *const one[] = { longw };
	assert_int_equal(bms_edit_distance(longw, longw), 8);
	assert_null(bms_suggest(longw, one, 1));
	/* NULL and empty candidates are skipped, not suggested */
	static const char *const holes[] = { NULL, "", "role" };
	assert_string_equal(bms_suggest("rol", holes, 3), "role");
	assert_null(bms_suggest("", holes, 2));
}

static void ties_go_to_the_first_listed(void **state)
{
	(void)state;
	static const char *const ab[] = { "bat", "cut" }, *const ba[] = { "cut", "bat" };
	assert_int_equal(bms_edit_distance("cat", "bat"), 1);
	assert_int_equal(bms_edit_distance("cat", "cut"), 1);
	assert_string_equal(bms_suggest("cat", ab, 2), "bat");
	assert_string_equal(bms_suggest("cat", ba, 2), "cut");
	/* negative: a closer word later in the list beats an earlier one that is further */
	static const char *const far_near[] = { "cart", "cat" };
	assert_string_equal(bms_suggest("cbt", far_near, 2), "cat");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_edit_away),
		cmocka_unit_test(nothing_close),
		cmocka_unit_test(ties_go_to_the_first_listed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
