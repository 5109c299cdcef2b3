/*
 * The one clock deadlines are measured on: CLOCK_MONOTONIC in
 * milliseconds. It never jumps when an operator or NTP sets the time, so
 * a deadline measured on it means "this long from now" on this node.
 * Wall-clock time (time(2)) is only for what people read (log stamps,
 * the at_s of a failure report), never for deciding when.
 */
#ifndef VMC_CLOCK_H
#define VMC_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t vmc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
