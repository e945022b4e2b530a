/* base/clock.h: the one monotonic clock (for durations and deadlines; wall time for
 * records is the audit's own, audit_now_us). */
#ifndef BMS_BASE_CLOCK_H
#define BMS_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Microseconds on CLOCK_MONOTONIC: never steps back, whatever the wall clock does. */
static inline uint64_t bms_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
