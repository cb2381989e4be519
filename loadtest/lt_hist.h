/*
 * lt_hist.h - log-linear latency histograms, in the manner of HdrHistogram.
 *
 * Values (microseconds here, but the histogram does not care) below
 * 2 * LT_HIST_SUB are counted exactly; above that, every power-of-two range
 * is split into LT_HIST_SUB equal buckets, so a bucket is never wider than
 * 1/LT_HIST_SUB of the values it holds. A percentile is reported as the
 * highest value its bucket can hold (capped at the largest value recorded),
 * so it is never below the true value and at most 1/LT_HIST_SUB (0.8 %)
 * above it. Recording is a shift, a count and an add: cheap enough to do for
 * every request inside the generator's loop.
 */
#ifndef SHOP_LOADTEST_HIST_H
#define SHOP_LOADTEST_HIST_H

#include <stdint.h>

#define LT_HIST_SUB_BITS 7
#define LT_HIST_SUB (1 << LT_HIST_SUB_BITS) /* buckets per power of two: 0.8 % error */
/* Largest value kept apart (2^40 us is 12 days); larger ones land in the top
 * bucket and are counted in `clamped`. */
#define LT_HIST_MAX_BITS 40
#define LT_HIST_BUCKETS ((LT_HIST_MAX_BITS - LT_HIST_SUB_BITS + 1) * LT_HIST_SUB)

struct lt_hist {
	int64_t count;
	int64_t clamped; /* values above the top bucket */
	int64_t min;
	int64_t max;
	double sum;
	int64_t bucket[LT_HIST_BUCKETS];
};

void lt_hist_reset(struct lt_hist *h);
void lt_hist_record(struct lt_hist *h, int64_t value); /* a negative value counts as 0 */
/* Adds every value of src into dst. */
void lt_hist_merge(struct lt_hist *dst, const struct lt_hist *src);
/* The value at or below which q percent (0..100) of the values fall; 0 when empty. */
int64_t lt_hist_percentile(const struct lt_hist *h, double q);
double lt_hist_mean(const struct lt_hist *h);

/* Bucket arithmetic, exposed for the unit tests. */
int lt_hist_index(int64_t value);
int64_t lt_hist_bucket_low(int index);
int64_t lt_hist_bucket_high(int index);

#endif
