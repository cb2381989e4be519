/* test_loadtest_hist.c - unit tests of the load generator's log-linear histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lt_hist.h"

static struct lt_hist *hist_new(void)
{
	return calloc(1, sizeof(struct lt_hist));
}

static void small_values_are_counted_exactly(void **state)
{
	struct lt_hist *h = hist_new();
	for (int64_t v = 1; v <= 100; v++)
		lt_hist_record(h, v);
	assert_int_equal(lt_hist_percentile(h, 50), 50);
	assert_int_equal(lt_hist_percentile(h, 90), 90);
	assert_int_equal(lt_hist_percentile(h, 99), 99);
	assert_int_equal(lt_hist_percentile(h, 100), 100);
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 100);
	free(h);
}

static void every_bucket_is_contiguous_and_within_the_error_bound(void **state)
{
	int64_t expect_low = 0;
	for (int i = 0; i < LT_HIST_BUCKETS; i++) {
		int64_t low = lt_hist_bucket_low(i), high = lt_hist_bucket_high(i);
		assert_int_equal(low, expect_low); /* no gap, no overlap */
		assert_true(high >= low);
		/* A bucket is at most 1/SUB of the values it holds. */
		assert_true((double)(high - low) <= (double)low / LT_HIST_SUB);
		assert_int_equal(lt_hist_index(low), i);
		assert_int_equal(lt_hist_index(high), i);
		expect_low = high + 1;
	}
}

static void percentiles_of_a_uniform_distribution_are_within_the_bound(void **state)
{
	/* 1,000,000 values 1..1,000,000 us: the q-th percentile is q * 10,000. */
	struct lt_hist *h = hist_new();
	for (int64_t v = 1; v <= 1000000; v++)
		lt_hist_record(h, v);
	const double qs[] = { 50, 90, 99, 99.9 };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double truth = qs[i] * 10000;
		double got = (double)lt_hist_percentile(h, qs[i]);
		assert_true(got >= truth);                             /* never under */
		assert_true(got <= truth * (1.0 + 1.0 / LT_HIST_SUB)); /* at most 0.8 % over */
	}
	assert_int_equal(lt_hist_percentile(h, 100), 1000000);
	assert_true(lt_hist_mean(h) > 500000 - 1 && lt_hist_mean(h) < 500001 + 1);
	free(h);
}

static void a_long_tail_shows_in_the_high_percentiles(void **state)
{
	/* 990 fast requests (2 ms) and 10 slow ones (3 s): p99 is still fast,
	 * p99.9 and max are the slow ones. */
	struct lt_hist *h = hist_new();
	for (int i = 0; i < 990; i++)
		lt_hist_record(h, 2000);
	for (int i = 0; i < 10; i++)
		lt_hist_record(h, 3000000);
	assert_true(lt_hist_percentile(h, 99) <= 2000 * (1 + 1.0 / LT_HIST_SUB));
	assert_true(lt_hist_percentile(h, 99.9) >= 3000000);
	assert_int_equal(lt_hist_percentile(h, 100), 3000000);
	free(h);
}

static void merging_adds_counts_and_keeps_extremes(void **state)
{
	struct lt_hist *a = hist_new(), *b = hist_new();
	lt_hist_record(a, 10);
	lt_hist_record(b, 5);
	lt_hist_record(b, 700000);
	lt_hist_merge(a, b);
	assert_int_equal(a->count, 3);
	assert_int_equal(a->min, 5);
	assert_int_equal(a->max, 700000);
	assert_int_equal(lt_hist_percentile(a, 50), 10);
	free(a);
	free(b);
}

static void empty_negative_and_huge_values_are_safe(void **state)
{
	struct lt_hist *h = hist_new();
	assert_int_equal(lt_hist_percentile(h, 99), 0);
	lt_hist_record(h, -5);
	assert_int_equal(h->min, 0);
	lt_hist_record(h, INT64_MAX);
	assert_int_equal(h->clamped, 1);
	assert_int_equal(lt_hist_percentile(h, 100), INT64_MAX);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_values_are_counted_exactly),
		cmocka_unit_test(every_bucket_is_contiguous_and_within_the_error_bound),
		cmocka_unit_test(percentiles_of_a_uniform_distribution_are_within_the_bound),
		cmocka_unit_test(a_long_tail_shows_in_the_high_percentiles),
		cmocka_unit_test(merging_adds_counts_and_keeps_extremes),
		cmocka_unit_test(empty_negative_and_huge_values_are_safe),
	};
	return cmocka_run_group_tests_name("loadtest_hist", tests, NULL, NULL);
}
