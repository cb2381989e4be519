/*
 * lt_pace.h - the open-model pacer: when each request is meant to leave.
 *
 * Request i of a phase is due at start + i / rate, computed from i every
 * time (never by adding intervals, which drifts). The generator sends every
 * request that is due, however late it is, and measures its latency from
 * this intended time, not from when it actually left: a system (or a
 * generator) that stalls for a second is charged the second for every request
 * that should have left during it. That is what "no coordinated omission"
 * means here.
 */
#ifndef SHOP_LOADTEST_PACE_H
#define SHOP_LOADTEST_PACE_H

#include <stdint.h>

#define LT_NS_PER_S 1000000000LL

struct lt_pace {
	int64_t start_ns; /* monotonic time of request 0 */
	double rate;      /* requests per second, > 0 */
	int64_t total;    /* requests in the phase */
};

/* The monotonic clock every time in the generator is taken from. */
int64_t lt_pace_now_ns(void);

void lt_pace_init(struct lt_pace *p, int64_t start_ns, double rate, int64_t duration_s);
/* The intended send time of request i. */
int64_t lt_pace_due(const struct lt_pace *p, int64_t i);
/* How many requests are due by now (at most total). */
int64_t lt_pace_due_count(const struct lt_pace *p, int64_t now_ns);

#endif
