/* policies/suggest.h: the one edit distance behind every did-you-mean
 * (policy keywords and names, guard and tunnel config keywords). */
#ifndef BMS_SUGGEST_H
#define BMS_SUGGEST_H

/* Levenshtein distance, ASCII case folded, capped at 8 (also for words over 63 bytes):
 * a suggestion is only ever made for a distance of 1 or 2. */
unsigned bms_edit_distance(const char *a, const char *b);

#endif
