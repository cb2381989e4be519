/* test_metrics.c - unit tests of libs/metrics: counting under threads,
 * histogram buckets, escaping, the series limit, name checks, and the exact
 * rendered text. tests/metrics/check_promtool.sh checks the format itself
 * with promtool. */
#include <setjmp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/status.h"
#include "metrics/metrics.h"

/* The overflow counter every registry carries, as rendered when unused. */
#define OVERFLOW_HEADER                                                                            \
	"# HELP shop_metrics_series_overflow_total Updates sent to a metric's overflow series "    \
	"(label values \"other\") because it had too many series or the values were too "          \
	"long or not UTF-8.\n"                                                                     \
	"# TYPE shop_metrics_series_overflow_total counter\n"

static char *render(struct metrics_registry *reg)
{
	return metrics_render(reg, NULL);
}

/* Occurrences of needle in haystack. */
static size_t count_of(const char *haystack, const char *needle)
{
	size_t n = 0;
	for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

#define COUNT_THREADS 4
#define COUNT_PER_THREAD 100000
#define COUNT_SUBJECTS 16

struct count_arg {
	struct metrics_counter *counter;
	struct metrics_histogram *histogram;
};

static void *count_worker(void *p)
{
	struct count_arg *arg = p;
	char subjects[COUNT_SUBJECTS][16];
	for (int i = 0; i < COUNT_SUBJECTS; i++)
		snprintf(subjects[i], sizeof(subjects[i]), "s%02d", i);
	for (int i = 0; i < COUNT_PER_THREAD; i++) {
		/* Every thread walks the same subjects, so the first updates
		 * race to create each series. */
		const char *values[] = { subjects[i % COUNT_SUBJECTS] };
		metrics_counter_add(arg->counter, values, 1);
		metrics_histogram_observe(arg->histogram, values, (double)(i % 3));
	}
	return NULL;
}

struct render_arg {
	struct metrics_registry *reg;
	atomic_bool *done;
	int renders;
};

static void *render_worker(void *p)
{
	struct render_arg *arg = p;
	do {
		free(render(arg->reg));
		arg->renders++;
	} while (!atomic_load(arg->done));
	return NULL;
}

static void counting_from_several_threads_loses_nothing(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct count_arg arg;
	assert_int_equal(metrics_counter_register(reg, "t_msgs_total", "Messages.",
						  (const char *const[]){ "subject", NULL },
						  &arg.counter),
			 SHOP_OK);
	assert_int_equal(metrics_histogram_register(reg, "t_values", "Values.",
						    (const char *const[]){ "subject", NULL },
						    (const double[]){ 0.5, 1.5 }, 2,
						    &arg.histogram),
			 SHOP_OK);
	pthread_t threads[COUNT_THREADS], renderer;
	atomic_bool done = false;
	struct render_arg rarg = { .reg = reg, .done = &done };
	/* Scrapes run while the counters move: under -fsanitize=thread this
	 * shows that rendering and series creation do not race. */
	assert_int_equal(pthread_create(&renderer, NULL, render_worker, &rarg), 0);
	for (int i = 0; i < COUNT_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, count_worker, &arg), 0);
	for (int i = 0; i < COUNT_THREADS; i++)
		pthread_join(threads[i], NULL);
	atomic_store(&done, true);
	pthread_join(renderer, NULL);
	assert_true(rarg.renders > 0);

	char *text = render(reg);
	char want[128];
	int per_subject = COUNT_THREADS * COUNT_PER_THREAD / COUNT_SUBJECTS;
	for (int i = 0; i < COUNT_SUBJECTS; i++) {
		snprintf(want, sizeof(want), "t_msgs_total{subject=\"s%02d\"} %d\n", i,
			 per_subject);
		assert_non_null(strstr(text, want));
		snprintf(want, sizeof(want), "t_values_count{subject=\"s%02d\"} %d\n", i,
			 per_subject);
		assert_non_null(strstr(text, want));
	}
	/* One series per subject: none was created twice by racing threads. */
	assert_int_equal(count_of(text, "t_msgs_total{"), COUNT_SUBJECTS);
	free(text);
	metrics_registry_free(reg);
}

static void histogram_places_values_in_buckets_and_renders_them_cumulative(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_histogram *h;
	assert_int_equal(metrics_histogram_register(reg, "t_seconds", "Latency.",
						    (const char *const[]){ "route", NULL },
						    (const double[]){ 0.25, 1, 10 }, 3, &h),
			 SHOP_OK);
	const char *const r[] = { "/orders" };
	/* Binary fractions, so the sum is exact. */
	metrics_histogram_observe(h, r, 0.125);
	metrics_histogram_observe(h, r, 0.25); /* "le" is inclusive: in 0.25 */
	metrics_histogram_observe(h, r, 0.5);
	metrics_histogram_observe(h, r, 10);
	metrics_histogram_observe(h, r, 11);        /* only in +Inf */
	metrics_histogram_observe(h, r, 0.0 / 0.0); /* NaN: dropped */
	char *text = render(reg);
	assert_string_equal(text,
			    OVERFLOW_HEADER "# HELP t_seconds Latency.\n"
					    "# TYPE t_seconds histogram\n"
					    "t_seconds_bucket{route=\"/orders\",le=\"0.25\"} 2\n"
					    "t_seconds_bucket{route=\"/orders\",le=\"1\"} 3\n"
					    "t_seconds_bucket{route=\"/orders\",le=\"10\"} 4\n"
					    "t_seconds_bucket{route=\"/orders\",le=\"+Inf\"} 5\n"
					    "t_seconds_sum{route=\"/orders\"} 21.875\n"
					    "t_seconds_count{route=\"/orders\"} 5\n");
	free(text);
	metrics_registry_free(reg);
}

static void standard_bucket_sets_are_accepted_and_increasing(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_histogram *lat, *batch;
	assert_int_equal(metrics_histogram_register(reg, "t_handler_seconds", "Latency.", NULL,
						    metrics_latency_buckets,
						    METRICS_LATENCY_BUCKETS_N, &lat),
			 SHOP_OK);
	assert_int_equal(metrics_histogram_register(reg, "t_batch_size", "Batch.", NULL,
						    metrics_batch_buckets, METRICS_BATCH_BUCKETS_N,
						    &batch),
			 SHOP_OK);
	metrics_histogram_observe(lat, NULL, 0.003);
	metrics_histogram_observe(batch, NULL, 1);
	char *text = render(reg);
	assert_non_null(strstr(text, "t_handler_seconds_bucket{le=\"0.0025\"} 0\n"
				     "t_handler_seconds_bucket{le=\"0.005\"} 1\n"));
	assert_non_null(strstr(text, "t_batch_size_bucket{le=\"1\"} 1\n"));
	assert_non_null(strstr(text, "t_batch_size_bucket{le=\"+Inf\"} 1\n"));
	free(text);
	metrics_registry_free(reg);
}

static void label_values_and_help_are_escaped(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_counter *c;
	assert_int_equal(metrics_counter_register(reg, "t_esc_total",
						  "Back\\slash and\nnewline \"kept\".",
						  (const char *const[]){ "v", NULL }, &c),
			 SHOP_OK);
	metrics_counter_add(c, (const char *const[]){ "a\\b\"c\nd" }, 1);
	metrics_counter_add(c, (const char *const[]){ "caf\xc3\xa9" }, 2); /* UTF-8 as is */
	char *text = render(reg);
	assert_non_null(strstr(text, "# HELP t_esc_total Back\\\\slash and\\nnewline \"kept\".\n"));
	assert_non_null(strstr(text, "t_esc_total{v=\"a\\\\b\\\"c\\nd\"} 1\n"));
	assert_non_null(strstr(text, "t_esc_total{v=\"caf\xc3\xa9\"} 2\n"));
	free(text);
	metrics_registry_free(reg);
}

static void series_beyond_the_limit_go_to_one_overflow_series(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_counter *c;
	assert_int_equal(metrics_counter_register(reg, "t_ids_total", "Ids.",
						  (const char *const[]){ "id", "kind", NULL }, &c),
			 SHOP_OK);
	char id[32];
	for (int i = 0; i < METRICS_SERIES_MAX + 10; i++) {
		snprintf(id, sizeof(id), "id%04d", i);
		metrics_counter_add(c, (const char *const[]){ id, "k" }, 1);
	}
	/* A series made before the limit still counts on its own. */
	metrics_counter_add(c, (const char *const[]){ "id0000", "k" }, 1);
	/* Values that could not be rendered overflow too, even below a limit. */
	char long_value[METRICS_VALUE_MAX + 2];
	memset(long_value, 'x', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	metrics_counter_add(c, (const char *const[]){ long_value, "k" }, 1);
	metrics_counter_add(c, (const char *const[]){ "bad\xff", "k" }, 1);

	char *text = render(reg);
	assert_int_equal(count_of(text, "\nt_ids_total{"), METRICS_SERIES_MAX + 1);
	assert_non_null(strstr(text, "t_ids_total{id=\"id0000\",kind=\"k\"} 2\n"));
	assert_non_null(strstr(text, "t_ids_total{id=\"other\",kind=\"other\"} 12\n"));
	assert_null(strstr(text, "id0512"));
	assert_null(strstr(text, "xxxx"));
	assert_non_null(
		strstr(text, "shop_metrics_series_overflow_total{metric=\"t_ids_total\"} 12\n"));
	free(text);
	metrics_registry_free(reg);
}

static shop_status gauge_fixed(void *arg, double *ret_value)
{
	*ret_value = *(double *)arg;
	return SHOP_OK;
}

static shop_status gauge_failing(void *arg, double *ret_value)
{
	return SHOP_E_UNAVAILABLE;
}

static void computed_gauges_are_read_at_render_and_left_out_when_they_fail(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_gauge *g;
	assert_int_equal(metrics_gauge_register(reg, "t_pending", "Pending.",
						(const char *const[]){ "durable", NULL }, &g),
			 SHOP_OK);
	double pending = 3;
	assert_int_equal(metrics_gauge_bind(g, (const char *const[]){ "a" }, gauge_fixed, &pending),
			 SHOP_OK);
	assert_int_equal(metrics_gauge_bind(g, (const char *const[]){ "b" }, gauge_failing, NULL),
			 SHOP_OK);
	assert_int_equal(metrics_gauge_bind(g, (const char *const[]){ "a" }, gauge_fixed, &pending),
			 SHOP_E_DUPLICATE);
	assert_int_equal(metrics_gauge_bind(g, (const char *const[]){ "bad\xff" }, gauge_fixed,
					    &pending),
			 SHOP_E_INVALID);
	metrics_gauge_set(g, (const char *const[]){ "a" }, 99); /* ignored: computed */
	metrics_gauge_set(g, (const char *const[]){ "c" }, -1.5);
	metrics_gauge_add(g, (const char *const[]){ "c" }, 0.25);
	pending = 7;
	char *text = render(reg);
	assert_string_equal(text, OVERFLOW_HEADER "# HELP t_pending Pending.\n"
						  "# TYPE t_pending gauge\n"
						  "t_pending{durable=\"a\"} 7\n"
						  "t_pending{durable=\"c\"} -1.25\n");
	free(text);
	metrics_registry_free(reg);
}

static void computed_gauge_cannot_bind_beyond_the_limit(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_gauge *g;
	assert_int_equal(metrics_gauge_register(reg, "t_full", "Full.",
						(const char *const[]){ "k", NULL }, &g),
			 SHOP_OK);
	char k[32];
	for (int i = 0; i < METRICS_SERIES_MAX; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		metrics_gauge_set(g, (const char *const[]){ k }, 1);
	}
	double v = 1;
	assert_int_equal(metrics_gauge_bind(g, (const char *const[]){ "one_more" }, gauge_fixed,
					    &v),
			 SHOP_E_LIMIT);
	metrics_gauge_set(g, (const char *const[]){ "one_more" }, 1); /* now "other" exists */
	assert_int_equal(metrics_gauge_bind(g, (const char *const[]){ "other" }, gauge_fixed, &v),
			 SHOP_E_LIMIT);
	metrics_registry_free(reg);
}

static void invalid_names_and_buckets_are_refused(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_counter *c;
	struct metrics_gauge *g;
	struct metrics_histogram *h;
	static const char *const bad_counters[] = {
		"", "9_total", "a-b_total", "CamelCase_total", "a:b_total", "no_suffix", "_total",
	};
	for (size_t i = 0; i < sizeof(bad_counters) / sizeof(bad_counters[0]); i++)
		assert_int_equal(metrics_counter_register(reg, bad_counters[i], "H.", NULL, &c),
				 SHOP_E_INVALID);
	/* Only a trailing _count is reserved. */
	assert_int_equal(metrics_counter_register(reg, "x_count_total", "H.", NULL, &c), SHOP_OK);
	assert_int_equal(metrics_counter_register(reg, NULL, "H.", NULL, &c), SHOP_E_INVALID);
	assert_int_equal(metrics_counter_register(reg, "no_help_total", "", NULL, &c),
			 SHOP_E_INVALID);
	assert_int_equal(metrics_counter_register(reg, "no_help_total", NULL, NULL, &c),
			 SHOP_E_INVALID);

	assert_int_equal(metrics_gauge_register(reg, "g_total", "H.", NULL, &g), SHOP_E_INVALID);
	assert_int_equal(metrics_gauge_register(reg, "g_count", "H.", NULL, &g), SHOP_E_INVALID);
	assert_int_equal(metrics_gauge_register(reg, "g_sum", "H.", NULL, &g), SHOP_E_INVALID);
	assert_int_equal(metrics_gauge_register(reg, "g_bucket", "H.", NULL, &g), SHOP_E_INVALID);

	static const char *const bad_labels[] = { "le", "quantile", "__name", "1x", "a-b", "" };
	for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++)
		assert_int_equal(metrics_gauge_register(reg, "g", "H.",
							(const char *const[]){ bad_labels[i],
									       NULL },
							&g),
				 SHOP_E_INVALID);
	assert_int_equal(metrics_gauge_register(reg, "g", "H.",
						(const char *const[]){ "a", "a", NULL }, &g),
			 SHOP_E_INVALID);
	assert_int_equal(metrics_gauge_register(reg, "g", "H.",
						(const char *const[]){ "a", "b", "c", "d", "e", "f",
								       "g", "h", "i", NULL },
						&g),
			 SHOP_E_INVALID);

	assert_int_equal(metrics_histogram_register(reg, "h", "H.", NULL, (const double[]){ 1, 1 },
						    2, &h),
			 SHOP_E_INVALID);
	assert_int_equal(metrics_histogram_register(reg, "h", "H.", NULL, (const double[]){ 2, 1 },
						    2, &h),
			 SHOP_E_INVALID);
	assert_int_equal(metrics_histogram_register(reg, "h", "H.", NULL,
						    (const double[]){ 1.0 / 0.0 }, 1, &h),
			 SHOP_E_INVALID);
	assert_int_equal(metrics_histogram_register(reg, "h", "H.", NULL, NULL, 0, &h),
			 SHOP_E_INVALID);

	/* Taken names: one's own, and the overflow counter's. */
	assert_int_equal(metrics_gauge_register(reg, "g", "H.", NULL, &g), SHOP_OK);
	assert_int_equal(metrics_histogram_register(reg, "g", "H.", NULL, (const double[]){ 1 }, 1,
						    &h),
			 SHOP_E_DUPLICATE);
	assert_int_equal(metrics_counter_register(reg, "shop_metrics_series_overflow_total", "H.",
						  NULL, &c),
			 SHOP_E_DUPLICATE);
	metrics_registry_free(reg);
}

static void registry_holds_a_bounded_number_of_metrics(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_gauge *g;
	char name[32];
	/* The overflow counter takes one place. */
	for (int i = 0; i < METRICS_METRICS_MAX - 1; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		assert_int_equal(metrics_gauge_register(reg, name, "H.", NULL, &g), SHOP_OK);
	}
	assert_int_equal(metrics_gauge_register(reg, "one_more", "H.", NULL, &g), SHOP_E_LIMIT);
	metrics_registry_free(reg);
}

static void render_is_sorted_and_stable(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_counter *zc, *ac;
	struct metrics_gauge *mg;
	assert_int_equal(metrics_counter_register(reg, "z_total", "Z.",
						  (const char *const[]){ "subject", "outcome",
									 NULL },
						  &zc),
			 SHOP_OK);
	assert_int_equal(metrics_gauge_register(reg, "m_gauge", "M.", NULL, &mg), SHOP_OK);
	assert_int_equal(metrics_counter_register(reg, "a_total", "A.", NULL, &ac), SHOP_OK);
	metrics_counter_add(zc, (const char *const[]){ "orders.b", "ok" }, 1);
	metrics_counter_add(zc, (const char *const[]){ "orders.a", "retry" }, 2);
	metrics_counter_add(zc, (const char *const[]){ "orders.a", "ok" }, 3);
	metrics_counter_add(zc, (const char *const[]){ NULL, "ok" }, 4); /* NULL is "" */
	metrics_gauge_set(mg, NULL, 0.1);
	static const char want[] = "# HELP a_total A.\n"
				   "# TYPE a_total counter\n"
				   "a_total 0\n"
				   "# HELP m_gauge M.\n"
				   "# TYPE m_gauge gauge\n"
				   "m_gauge 0.1\n" OVERFLOW_HEADER "# HELP z_total Z.\n"
				   "# TYPE z_total counter\n"
				   "z_total{subject=\"\",outcome=\"ok\"} 4\n"
				   "z_total{subject=\"orders.a\",outcome=\"ok\"} 3\n"
				   "z_total{subject=\"orders.a\",outcome=\"retry\"} 2\n"
				   "z_total{subject=\"orders.b\",outcome=\"ok\"} 1\n";
	size_t len;
	char *first = metrics_render(reg, &len);
	assert_string_equal(first, want);
	assert_int_equal(len, strlen(want));
	char *second = render(reg);
	assert_string_equal(first, second);
	free(first);
	free(second);
	metrics_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counting_from_several_threads_loses_nothing),
		cmocka_unit_test(histogram_places_values_in_buckets_and_renders_them_cumulative),
		cmocka_unit_test(standard_bucket_sets_are_accepted_and_increasing),
		cmocka_unit_test(label_values_and_help_are_escaped),
		cmocka_unit_test(series_beyond_the_limit_go_to_one_overflow_series),
		cmocka_unit_test(computed_gauges_are_read_at_render_and_left_out_when_they_fail),
		cmocka_unit_test(computed_gauge_cannot_bind_beyond_the_limit),
		cmocka_unit_test(invalid_names_and_buckets_are_refused),
		cmocka_unit_test(registry_holds_a_bounded_number_of_metrics),
		cmocka_unit_test(render_is_sorted_and_stable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
