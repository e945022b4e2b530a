/* base/suggest.h: the one did-you-mean of every grammar (policy keywords and names,
 * `policy explain` roles, guard and tunnel config keywords). Part of the front end shared by
 * the grammars (lex.h, diag.h, suggest.h); pure, no allocation. */
#ifndef BMS_SUGGEST_H
#define BMS_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance, ASCII case folded, capped at 8 (also for words over 63 bytes). */
unsigned bms_edit_distance(const char *a, const char *b);

/* The candidate closest to `word`, or NULL when none is close enough to be a typing error:
 * at most 1 edit for a word of up to 3 bytes, 2 up to 6 bytes, 3 beyond. NULL and empty
 * candidates are skipped; of two candidates at the same distance the first listed wins, so
 * a grammar orders its words by how often they are meant. */
const char *bms_suggest(const char *word, const char *const *cands, size_t n);

#endif
