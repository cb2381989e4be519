/*
 * lt_hist.c - log-linear histograms (see lt_hist.h for the layout and the
 * error bound).
 *
 * Index of a value v: below 2 * SUB it is v itself (exact buckets). Above,
 * with m the position of v's highest bit, the bucket is (m - B) * SUB plus the
 * top B + 1 bits of v, which lie in [SUB, 2 * SUB): consecutive powers of two
 * continue where the previous one stopped, and a bucket of the range
 * [2^m, 2^(m+1)) is 2^(m - B) wide.
 */
#include "lt_hist.h"

#include <math.h>
#include <string.h>

void lt_hist_reset(struct lt_hist *h)
{
	memset(h, 0, sizeof(*h));
}

static int lt_hist_top_bit(uint64_t v)
{
	return 63 - __builtin_clzll(v);
}

int lt_hist_index(int64_t value)
{
	if (value < 0)
		value = 0;
	if (value < 2 * LT_HIST_SUB)
		return (int)value;
	int m = lt_hist_top_bit((uint64_t)value);
	if (m >= LT_HIST_MAX_BITS)
		return LT_HIST_BUCKETS - 1;
	int shift = m - LT_HIST_SUB_BITS;
	return shift * LT_HIST_SUB + (int)(value >> shift);
}

/* The shift of a bucket's range: 0 for the exact ones. */
static int lt_hist_shift(int index)
{
	if (index < 2 * LT_HIST_SUB)
		return 0;
	return index / LT_HIST_SUB - 1;
}

int64_t lt_hist_bucket_low(int index)
{
	int shift = lt_hist_shift(index);
	if (shift == 0)
		return index;
	int64_t top = index - shift * LT_HIST_SUB;
	return top << shift;
}

int64_t lt_hist_bucket_high(int index)
{
	return lt_hist_bucket_low(index) + ((int64_t)1 << lt_hist_shift(index)) - 1;
}

void lt_hist_record(struct lt_hist *h, int64_t value)
{
	if (value < 0)
		value = 0;
	int i = lt_hist_index(value);
	if (i == LT_HIST_BUCKETS - 1 && value > lt_hist_bucket_high(i))
		h->clamped++;
	h->bucket[i]++;
	if (h->count == 0 || value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
	h->count++;
	h->sum += (double)value;
}

void lt_hist_merge(struct lt_hist *dst, const struct lt_hist *src)
{
	if (src->count == 0)
		return;
	for (int i = 0; i < LT_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->clamped += src->clamped;
	dst->sum += src->sum;
}

int64_t lt_hist_percentile(const struct lt_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 100)
		q = 100;
	/* The rank of the value asked for, 1-based: at least the first value. */
	int64_t rank = (int64_t)ceil((q / 100.0) * (double)h->count);
	if (rank < 1)
		rank = 1;
	int64_t seen = 0;
	for (int i = 0; i < LT_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			/* The top bucket also holds the clamped values: only max is honest there. */
			if (i == LT_HIST_BUCKETS - 1)
				return h->max;
			int64_t v = lt_hist_bucket_high(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

double lt_hist_mean(const struct lt_hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
