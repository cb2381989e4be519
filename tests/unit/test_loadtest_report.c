/* test_loadtest_report.c - unit tests of the load generator's JSON and SVG
 * writers and of its parsers for bus events and NATS monitoring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "lt_report.h"
#include "lt_watch.h"

#define NAME_MAX_TEST 64
#define DEPTH_MAX_TEST 64

/* A made-up run: two phases, a few seconds, strings that need escaping. */
static struct lt_report *report_new(void)
{
	struct lt_report *r = calloc(1, sizeof(*r));
	r->mode = "saturate";
	r->started_at = "2026-01-01T00:00:00.000Z";
	r->gateway = "http://gateway:8080/?a=<b>&c";
	r->nats = "nats://nats:4222";
	r->monitor = "http://nats:8222";
	r->mix = "approved=80,declined=20";
	r->max_inflight = 256;
	r->target_accept_p99_ms = 50;
	r->target_paid_p99_ms = 250;
	r->n_phase = 2;
	r->phase = calloc(2, sizeof(*r->phase));
	for (size_t p = 0; p < 2; p++) {
		struct lt_phase *ph = &r->phase[p];
		ph->rate = 25.0 * (double)(p + 1);
		ph->duration_s = 10;
		ph->accepted = 250;
		for (int i = 1; i <= 250; i++) {
			lt_hist_record(&ph->accept, i * 100);
			lt_hist_record(&ph->end_lat, i * 10000);
		}
		ph->outcome[LT_KIND_APPROVED][LT_END_SHIPPED] = 200;
		lt_errors_add(&ph->errors, "http_503", 3);
		lt_errors_add(&ph->errors, "timeout", 1);
	}
	r->n_sec = 20;
	r->sec = calloc(r->n_sec, sizeof(*r->sec));
	for (size_t i = 0; i < r->n_sec; i++) {
		r->sec[i].t = (double)(i + 1);
		r->sec[i].rate = 25;
		r->sec[i].accepted = 25;
		r->sec[i].accept_p99_us = 3000 + (int64_t)i * 1000;
		r->sec[i].end_p99_us = 2000000;
		r->sec[i].lag = i % 2 ? -1 : (int64_t)i; /* some seconds without monitoring */
		r->sec[i].outbox_est = -1;
	}
	r->n_lag = 1;
	snprintf(r->lag[0].durable, sizeof(r->lag[0].durable), "ORDERS/payments");
	r->best_rate = 25;
	return r;
}

static void report_free(struct lt_report *r)
{
	free(r->phase);
	free(r->sec);
	free(r);
}

static char *write_to_string(shop_status (*writer)(const struct lt_report *, FILE *),
			     const struct lt_report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(writer(r, f), SHOP_OK);
	fclose(f);
	return buf;
}

static void the_json_report_parses_and_holds_the_figures(void **state)
{
	struct lt_report *r = report_new();
	char *text = write_to_string(lt_report_json, r);
	cJSON *root = cJSON_Parse(text);
	assert_non_null(root);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(root, "mode")), "saturate");
	cJSON *phases = cJSON_GetObjectItem(root, "phases");
	assert_int_equal(cJSON_GetArraySize(phases), 2);
	cJSON *p0 = cJSON_GetArrayItem(phases, 0);
	cJSON *acc = cJSON_GetObjectItem(cJSON_GetObjectItem(p0, "latency"), "accept");
	assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(acc, "count")), 250);
	double p99 = cJSON_GetNumberValue(cJSON_GetObjectItem(acc, "p99_ms"));
	assert_true(p99 >= 24.75 && p99 <= 24.75 * (1 + 1.0 / LT_HIST_SUB));
	cJSON *errs = cJSON_GetObjectItem(p0, "errors");
	assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(errs, "http_503")), 3);
	cJSON *secs = cJSON_GetObjectItem(root, "seconds");
	assert_int_equal(cJSON_GetArraySize(secs), 20);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(secs, 1), "consumer_lag")));
	assert_string_equal(cJSON_GetStringValue(
				    cJSON_GetObjectItem(cJSON_GetObjectItem(root, "config"),
							"gateway")),
			    "http://gateway:8080/?a=<b>&c");
	cJSON_Delete(root);
	free(text);
	report_free(r);
}

/* A small well-formedness check: every tag closes in order, attributes are
 * quoted, and no raw '<' or '&' appears in text. Enough for what the writer
 * emits (no comments, CDATA or entities beyond the three it uses). */
static void assert_well_formed_xml(const char *s)
{
	char stack[DEPTH_MAX_TEST][NAME_MAX_TEST];
	int depth = 0, roots = 0;
	const char *p = s;
	if (strncmp(p, "<?xml", 5) == 0)
		p = strstr(p, "?>") + 2;
	while (*p) {
		if (*p == '&') {
			assert_true(strncmp(p, "&lt;", 4) == 0 || strncmp(p, "&gt;", 4) == 0 ||
				    strncmp(p, "&amp;", 5) == 0);
			p++;
			continue;
		}
		if (*p != '<') {
			p++;
			continue;
		}
		const char *end = strchr(p, '>');
		assert_non_null(end);
		bool closing = p[1] == '/';
		bool self = end[-1] == '/';
		const char *name = p + (closing ? 2 : 1);
		size_t n = strcspn(name, " />");
		assert_true(n > 0 && n < NAME_MAX_TEST);
		/* Quotes inside the tag come in pairs. */
		int quotes = 0;
		for (const char *q = p; q < end; q++)
			quotes += *q == '"';
		assert_int_equal(quotes % 2, 0);
		if (closing) {
			assert_true(depth > 0);
			depth--;
			assert_int_equal(strlen(stack[depth]), n);
			assert_memory_equal(stack[depth], name, n);
		} else if (!self) {
			if (depth == 0)
				roots++;
			assert_true(depth < DEPTH_MAX_TEST);
			memcpy(stack[depth], name, n);
			stack[depth][n] = '\0';
			depth++;
		}
		p = end + 1;
	}
	assert_int_equal(depth, 0);
	assert_int_equal(roots, 1);
}

static void the_svg_is_well_formed_and_escapes_its_text(void **state)
{
	struct lt_report *r = report_new();
	r->started_at = "<now & then>";
	char *svg = write_to_string(lt_report_svg, r);
	assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	assert_non_null(strstr(svg, "&lt;now &amp; then&gt;"));
	assert_non_null(strstr(svg, "<polyline"));
	assert_well_formed_xml(svg);
	free(svg);
	report_free(r);
}

static void an_empty_run_still_draws_a_well_formed_svg(void **state)
{
	struct lt_report r = { .mode = "run",
			       .started_at = "x",
			       .gateway = "g",
			       .nats = "n",
			       .monitor = "m",
			       .mix = "approved=1" };
	char *svg = write_to_string(lt_report_svg, &r);
	assert_well_formed_xml(svg);
	free(svg);
	char *json = write_to_string(lt_report_json, &r);
	cJSON *root = cJSON_Parse(json);
	assert_non_null(root);
	cJSON_Delete(root);
	free(json);
}

static void order_events_give_their_kind_and_order_id(void **state)
{
	const char *ev = "{\"specversion\":\"1.0\",\"type\":\"shop.orders.order_paid.v1\","
			 "\"subject\":\"01a21c37-6109-777b-9353-304b3057919d\",\"data\":{}}";
	enum lt_event_kind kind;
	char id[LT_ORDER_ID_SIZE];
	assert_int_equal(lt_watch_parse(LT_SUBJECT_PAID, ev, strlen(ev), &kind, id), SHOP_OK);
	assert_int_equal(kind, LT_EV_PAID);
	assert_string_equal(id, "01a21c37-6109-777b-9353-304b3057919d");
	assert_int_equal(lt_watch_parse(LT_SUBJECT_CANCELLED, ev, strlen(ev), &kind, id), SHOP_OK);
	assert_int_equal(kind, LT_EV_CANCELLED);
	assert_int_equal(lt_watch_parse("orders.event.order_reserved.v1", ev, strlen(ev), &kind,
					id),
			 SHOP_E_NOT_FOUND);
	assert_int_equal(lt_watch_parse(LT_SUBJECT_SHIPPED, "{}", 2, &kind, id), SHOP_E_INVALID);
}

static void monitoring_gives_lag_per_durable_and_the_gateway_sequence(void **state)
{
	const char *jsz = "{\"account_details\":[{\"stream_detail\":["
			  "{\"name\":\"GATEWAY\",\"state\":{\"last_seq\":120},\"consumer_detail\":["
			  "{\"name\":\"orders\",\"num_pending\":7,\"num_ack_pending\":3}]},"
			  "{\"name\":\"ORDERS\",\"state\":{\"last_seq\":99},\"consumer_detail\":["
			  "{\"name\":\"payments\",\"num_pending\":10,\"num_ack_pending\":0}]}]}]}";
	struct lt_lag lag[LT_DURABLES_MAX];
	size_t n = 0;
	int64_t seq = 0;
	assert_int_equal(lt_watch_parse_jsz(jsz, strlen(jsz), NULL, lag, &n, &seq), SHOP_OK);
	assert_int_equal(n, 2);
	assert_int_equal(lt_watch_lag_total(lag, n), 20);
	assert_int_equal(seq, 120);
	assert_string_equal(lag[0].durable, "GATEWAY/orders");
	assert_int_equal(lag[0].max_total, 10);
	assert_int_equal(lt_watch_parse_jsz("nope", 4, NULL, lag, &n, &seq), SHOP_E_INVALID);
}

/* On a cluster every node lists every consumer, and a follower says nothing
 * is pending: a consumer's figures are taken from its leader only. */
static void on_a_cluster_a_consumers_lag_comes_from_its_leader(void **state)
{
	(void)state;
	const char *on_n1 = "{\"account_details\":[{\"stream_detail\":["
			    "{\"name\":\"ORDERS\",\"state\":{\"last_seq\":50},\"consumer_detail\":["
			    "{\"name\":\"inventory\",\"num_pending\":0,\"num_ack_pending\":4,"
			    "\"cluster\":{\"leader\":\"n2\"}},"
			    "{\"name\":\"payments\",\"num_pending\":9,\"num_ack_pending\":1,"
			    "\"cluster\":{\"leader\":\"n1\"}}]}]}]}";
	const char *on_n2 = "{\"account_details\":[{\"stream_detail\":["
			    "{\"name\":\"ORDERS\",\"state\":{\"last_seq\":50},\"consumer_detail\":["
			    "{\"name\":\"inventory\",\"num_pending\":3000,\"num_ack_pending\":64,"
			    "\"cluster\":{\"leader\":\"n2\"}},"
			    "{\"name\":\"payments\",\"num_pending\":0,\"num_ack_pending\":0,"
			    "\"cluster\":{\"leader\":\"n1\"}}]}]}]}";
	struct lt_lag lag[LT_DURABLES_MAX];
	size_t n = 0;
	int64_t seq = 0;
	assert_int_equal(lt_watch_parse_jsz(on_n1, strlen(on_n1), "n1", lag, &n, &seq), SHOP_OK);
	assert_int_equal(lt_watch_parse_jsz(on_n2, strlen(on_n2), "n2", lag, &n, &seq), SHOP_OK);
	assert_int_equal(n, 2);
	assert_string_equal(lag[0].durable, "ORDERS/payments");
	assert_int_equal(lag[0].pending, 9);
	assert_string_equal(lag[1].durable, "ORDERS/inventory");
	assert_int_equal(lag[1].pending, 3000);
	assert_int_equal(lag[1].ack_pending, 64);
	assert_int_equal(lt_watch_lag_total(lag, n), 9 + 1 + 3000 + 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_json_report_parses_and_holds_the_figures),
		cmocka_unit_test(the_svg_is_well_formed_and_escapes_its_text),
		cmocka_unit_test(an_empty_run_still_draws_a_well_formed_svg),
		cmocka_unit_test(order_events_give_their_kind_and_order_id),
		cmocka_unit_test(monitoring_gives_lag_per_durable_and_the_gateway_sequence),
		cmocka_unit_test(on_a_cluster_a_consumers_lag_comes_from_its_leader),
	};
	return cmocka_run_group_tests_name("loadtest_report", tests, NULL, NULL);
}
