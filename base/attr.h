/* base/attr.h: the compiler attributes every room uses. */
#ifndef BMS_BASE_ATTR_H
#define BMS_BASE_ATTR_H

/* A fallible function's result (0 or a negative errno, or a parse result) must be looked at. */
#define BMS_WUR __attribute__((warn_unused_result))
/* For the small helpers on the per-packet path: inlined even where the compiler would not. */
#define BMS_HOT __attribute__((always_inline)) inline

#endif
