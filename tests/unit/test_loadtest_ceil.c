/* test_loadtest_ceil.c - unit tests of the ratios between the shop's figures
 * and the ceilings measured in the same run, of the report fields that carry
 * them, and of the durable-vs-relaxed comparison of two reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "lt_ceil.h"
#include "lt_report.h"

static struct lt_ceilings ceilings_made_up(void)
{
	struct lt_ceilings c;
	memset(&c, 0, sizeof(c));
	c.measured = true;
	c.js_publish.per_s = 40000;
	c.js_consume.per_s = 80000;
	c.http.per_s = 20000;
	c.pg_commit.per_s = 3000;
	c.sqlite_commit.per_s = 1500;
	return c;
}

static void ratios_divide_the_shops_rates_by_the_ceilings(void **state)
{
	(void)state;
	struct lt_ceilings c = ceilings_made_up();
	struct lt_usage before = { .js_messages = 1000, .pg_commits = 500 };
	/* 1,000 terminal orders in 10 s (8 s offered), 20 messages and 12
	 * transactions per order. */
	struct lt_usage after = { .js_messages = 21000, .pg_commits = 12500 };
	struct lt_ratios r;
	lt_ratios_compute(&c, &before, &after, 1000, 1200, 10, 8, &r);
	assert_float_equal(r.completed_per_s, 100, 1e-9);
	assert_float_equal(r.accepted_per_s, 150, 1e-9);
	assert_float_equal(r.events_per_order, 20, 1e-9);
	assert_float_equal(r.bus_publish_share, 100.0 * 20 / 40000, 1e-12);
	assert_float_equal(r.bus_consume_share, 100.0 * 20 / 80000, 1e-12);
	assert_float_equal(r.bus_orders_bound, 2000, 1e-9);
	assert_float_equal(r.gateway_share, 150.0 / 20000, 1e-12);
	assert_float_equal(r.pg_commits_per_order, 12, 1e-9);
	assert_float_equal(r.pg_share, 1200.0 / 3000, 1e-12);
	assert_float_equal(r.pg_orders_bound, 250, 1e-9);
	assert_float_equal(r.sqlite_commits_per_order_budget, 15, 1e-9);
}

static void an_unknown_input_makes_every_ratio_built_on_it_unknown(void **state)
{
	(void)state;
	struct lt_ceilings c = ceilings_made_up();
	c.pg_commit.per_s = -1; /* PostgreSQL could not be measured */
	struct lt_usage before = { .js_messages = -1, .pg_commits = 10 };
	struct lt_usage after = { .js_messages = 5000, .pg_commits = 1010 };
	struct lt_ratios r;
	lt_ratios_compute(&c, &before, &after, 100, 100, 10, 10, &r);
	assert_true(r.events_per_order < 0);
	assert_true(r.bus_publish_share < 0);
	assert_true(r.bus_orders_bound < 0);
	assert_float_equal(r.pg_commits_per_order, 10, 1e-9);
	assert_true(r.pg_share < 0);
	assert_true(r.pg_orders_bound < 0);
	assert_float_equal(r.gateway_share, 10.0 / 20000, 1e-12);
}

static void no_orders_completed_gives_no_per_order_figures(void **state)
{
	(void)state;
	struct lt_ceilings c = ceilings_made_up();
	struct lt_usage before = { 0, 0 }, after = { 100, 100 };
	struct lt_ratios r;
	lt_ratios_compute(&c, &before, &after, 0, 0, 10, 10, &r);
	assert_float_equal(r.completed_per_s, 0, 1e-12);
	assert_true(r.events_per_order < 0);
	assert_true(r.pg_commits_per_order < 0);
	/* A counter that went backwards (a restarted server) is unknown. */
	struct lt_usage later = { 50, 50 };
	lt_ratios_compute(&c, &after, &later, 10, 10, 10, 10, &r);
	assert_true(r.events_per_order < 0);
	assert_true(r.pg_commits_per_order < 0);
}

static void ceilings_not_measured_give_no_ratios(void **state)
{
	(void)state;
	struct lt_ceilings c;
	memset(&c, 0, sizeof(c));
	struct lt_usage u = { -1, -1 };
	struct lt_ratios r;
	lt_ratios_compute(&c, &u, &u, 100, 100, 10, 10, &r);
	assert_true(r.gateway_share < 0);
	assert_true(r.sqlite_commits_per_order_budget < 0);
	assert_float_equal(r.completed_per_s, 10, 1e-9);
}

static char *report_json_of(struct lt_report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(lt_report_json(r, f), SHOP_OK);
	fclose(f);
	return buf;
}

static void the_json_report_carries_durability_ceilings_and_ratios(void **state)
{
	(void)state;
	struct lt_phase phase;
	memset(&phase, 0, sizeof(phase));
	phase.rate = 100;
	phase.accepted = 1000;
	phase.shipped = 900;
	phase.cancelled = 100;
	phase.offer_s = 10;
	phase.drain_s = 10;
	struct lt_report r;
	memset(&r, 0, sizeof(r));
	r.mode = "run";
	r.started_at = "2026-01-01T00:00:00.000Z";
	r.gateway = r.nats = r.monitor = r.mix = "x";
	r.phase = &phase;
	r.n_phase = 1;
	r.durability = "relaxed";
	r.ceil = ceilings_made_up();
	snprintf(r.ceil.pg_synchronous_commit, sizeof(r.ceil.pg_synchronous_commit), "off");
	r.ceil.sqlite_commit.per_s = -1;
	snprintf(r.ceil.sqlite_commit.note, sizeof(r.ceil.sqlite_commit.note), "no file");
	struct lt_usage before = { 0, 0 }, after = { 20000, -1 };
	lt_report_summarise(&r, &before, &after);

	char *text = report_json_of(&r);
	cJSON *root = cJSON_Parse(text);
	assert_non_null(root);
	assert_string_equal(cJSON_GetObjectItem(root, "durability")->valuestring, "relaxed");
	cJSON *sum = cJSON_GetObjectItem(root, "summary");
	assert_string_equal(cJSON_GetObjectItem(sum, "durability")->valuestring, "relaxed");
	assert_float_equal(cJSON_GetObjectItem(sum, "throughput")->valuedouble, 50, 1e-9);
	cJSON *ceil = cJSON_GetObjectItem(root, "ceilings");
	assert_float_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ceil, "jetstream_publish"),
					       "per_s")
				   ->valuedouble,
			   40000, 1e-9);
	cJSON *lite = cJSON_GetObjectItem(ceil, "sqlite_commit");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(lite, "per_s")));
	assert_string_equal(cJSON_GetObjectItem(lite, "note")->valuestring, "no file");
	assert_string_equal(cJSON_GetObjectItem(ceil, "postgres_synchronous_commit")->valuestring,
			    "off");
	cJSON *ratios = cJSON_GetObjectItem(root, "ratios");
	assert_float_equal(cJSON_GetObjectItem(ratios, "events_per_order")->valuedouble, 20, 1e-9);
	assert_float_equal(cJSON_GetObjectItem(ratios, "gateway_share")->valuedouble, 100.0 / 20000,
			   1e-12);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(ratios, "pg_commits_per_order")));
	cJSON_Delete(root);
	free(text);

	/* The text summary names the mode and prints the unknown as n/a. */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	lt_report_text(&r, f);
	fclose(f);
	assert_non_null(strstr(buf, "durability relaxed"));
	assert_non_null(strstr(buf, "sync_commit=off"));
	assert_non_null(strstr(buf, "n/a"));
	free(buf);
}

static void saturate_reports_the_best_rate_as_throughput(void **state)
{
	(void)state;
	struct lt_report r;
	memset(&r, 0, sizeof(r));
	r.mode = "saturate";
	r.best_rate = 338;
	const char *what = NULL;
	assert_float_equal(lt_report_throughput_of(&r, &what), 338, 1e-9);
	assert_non_null(strstr(what, "saturation"));
}

static void compare_prints_durable_over_relaxed_and_the_target(void **state)
{
	(void)state;
	const char *d = "{\"summary\":{\"durability\":\"durable\",\"throughput\":170,"
			"\"throughput_of\":\"x\"}}";
	const char *rl = "{\"summary\":{\"durability\":\"relaxed\",\"throughput\":200,"
			 "\"throughput_of\":\"x\"}}";
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	double ratio = 0;
	assert_int_equal(lt_compare_reports(d, rl, f, &ratio), SHOP_OK);
	fclose(f);
	assert_float_equal(ratio, 0.85, 1e-9);
	assert_non_null(strstr(buf, "durable / relaxed: 0.85"));
	assert_non_null(strstr(buf, "met"));
	free(buf);

	f = open_memstream(&buf, &len);
	assert_int_equal(lt_compare_reports(d, "{\"mode\":\"run\"}", f, &ratio), SHOP_E_INVALID);
	assert_int_equal(lt_compare_reports("not json", rl, f, &ratio), SHOP_E_INVALID);
	fclose(f);
	free(buf);
	assert_float_equal(lt_report_throughput("{\"summary\":{\"throughput\":-3}}"), -1, 1e-12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ratios_divide_the_shops_rates_by_the_ceilings),
		cmocka_unit_test(an_unknown_input_makes_every_ratio_built_on_it_unknown),
		cmocka_unit_test(no_orders_completed_gives_no_per_order_figures),
		cmocka_unit_test(ceilings_not_measured_give_no_ratios),
		cmocka_unit_test(the_json_report_carries_durability_ceilings_and_ratios),
		cmocka_unit_test(saturate_reports_the_best_rate_as_throughput),
		cmocka_unit_test(compare_prints_durable_over_relaxed_and_the_target),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
