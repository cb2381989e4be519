/*
 * lt_pace.c - intended send times at a constant arrival rate (lt_pace.h).
 */
#include "lt_pace.h"

#include <math.h>
#include <time.h>

int64_t lt_pace_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * LT_NS_PER_S + ts.tv_nsec;
}

void lt_pace_init(struct lt_pace *p, int64_t start_ns, double rate, int64_t duration_s)
{
	p->start_ns = start_ns;
	p->rate = rate;
	p->total = (int64_t)llround(rate * (double)duration_s);
}

int64_t lt_pace_due(const struct lt_pace *p, int64_t i)
{
	/* long double keeps whole nanoseconds exact for any run of hours. */
	return p->start_ns + (int64_t)((long double)i * LT_NS_PER_S / (long double)p->rate);
}

int64_t lt_pace_due_count(const struct lt_pace *p, int64_t now_ns)
{
	if (now_ns < p->start_ns)
		return 0;
	long double elapsed = (long double)(now_ns - p->start_ns);
	int64_t n = (int64_t)floorl(elapsed * (long double)p->rate / LT_NS_PER_S) + 1;
	/* Rounding may put n one past a request whose due time is just after now. */
	while (n > 0 && lt_pace_due(p, n - 1) > now_ns)
		n--;
	while (n < p->total && lt_pace_due(p, n) <= now_ns)
		n++;
	return n > p->total ? p->total : n;
}
