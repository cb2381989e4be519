/*
 * metrics_sample.c - prints a registry that exercises every kind of metric
 * and every corner of the rendering, for tests/metrics/check_promtool.sh
 * to feed to `promtool check metrics`.
 *
 * It uses the shop's own metric names (docs/metrics.md), so the check also
 * proves that the names the services will use pass promtool's lint: label
 * values that need escaping, UTF-8, an empty value, negative and
 * fractional gauges, computed gauges (one failing, so left out),
 * histograms with the standard bucket sets and without labels, and a metric
 * pushed past METRICS_SERIES_MAX into its overflow series.
 */
#include "core/status.h"
#include "metrics/metrics.h"

#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                                \
	do {                                                                                       \
		shop_status st_ = (call);                                                          \
		if (st_ != SHOP_OK) {                                                              \
			fprintf(stderr, "%s: %s\n", #call, shop_status_name(st_));                 \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static shop_status backlog(void *arg, double *ret_value)
{
	*ret_value = 42;
	return SHOP_OK;
}

static shop_status pending_unknown(void *arg, double *ret_value)
{
	return SHOP_E_UNAVAILABLE;
}

int main(void)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_counter *consumed, *published, *dead, *http, *started;
	struct metrics_histogram *handler, *batch, *http_seconds, *render_seconds;
	struct metrics_gauge *outbox, *oldest, *pending, *temperature;

	CHECK(metrics_counter_register(reg, "shop_messages_consumed_total",
				       "Messages handled by a durable consumer, by outcome.",
				       (const char *const[]){ "service", "durable", "subject",
							      "outcome", NULL },
				       &consumed));
	CHECK(metrics_counter_register(reg, "shop_messages_published_total",
				       "Messages the outbox relay published.",
				       (const char *const[]){ "service", "subject", NULL },
				       &published));
	CHECK(metrics_counter_register(reg, "shop_dead_letters_total",
				       "Messages sent to the dead letter stream.",
				       (const char *const[]){ "service", "durable", "subject",
							      NULL },
				       &dead));
	CHECK(metrics_counter_register(reg, "shop_http_requests_total",
				       "HTTP requests by route and status.",
				       (const char *const[]){ "service", "route", "status", NULL },
				       &http));
	CHECK(metrics_counter_register(reg, "shop_process_starts_total", "A metric without labels.",
				       NULL, &started));
	CHECK(metrics_histogram_register(reg, "shop_handler_seconds", "Time to handle one message.",
					 (const char *const[]){ "service", "durable", NULL },
					 metrics_latency_buckets, METRICS_LATENCY_BUCKETS_N,
					 &handler));
	CHECK(metrics_histogram_register(reg, "shop_batch_size", "Messages per fetched batch.",
					 (const char *const[]){ "service", "durable", NULL },
					 metrics_batch_buckets, METRICS_BATCH_BUCKETS_N, &batch));
	CHECK(metrics_histogram_register(reg, "shop_http_request_seconds", "HTTP request latency.",
					 (const char *const[]){ "service", "route", NULL },
					 metrics_latency_buckets, METRICS_LATENCY_BUCKETS_N,
					 &http_seconds));
	CHECK(metrics_histogram_register(reg, "shop_sample_render_seconds",
					 "A histogram without labels.", NULL,
					 (const double[]){ 0.001, 0.01 }, 2, &render_seconds));
	CHECK(metrics_gauge_register(reg, "shop_outbox_backlog", "Outbox rows not yet published.",
				     (const char *const[]){ "service", NULL }, &outbox));
	CHECK(metrics_gauge_register(reg, "shop_outbox_oldest_unpublished_seconds",
				     "Age of the oldest unpublished outbox row.",
				     (const char *const[]){ "service", NULL }, &oldest));
	CHECK(metrics_gauge_register(reg, "shop_consumer_pending",
				     "Messages waiting for a durable consumer.",
				     (const char *const[]){ "service", "durable", NULL },
				     &pending));
	CHECK(metrics_gauge_register(reg, "shop_sample_celsius", "A gauge set and added to.",
				     (const char *const[]){ "place", NULL }, &temperature));

	metrics_counter_add(consumed,
			    (const char *const[]){ "orders", "orders-place", "cmd.orders.place",
						   "ok" },
			    3);
	metrics_counter_add(consumed,
			    (const char *const[]){ "orders", "orders-place", "cmd.orders.place",
						   "retry" },
			    1);
	metrics_counter_add(consumed,
			    (const char *const[]){ "orders", "orders-\"q\"", "back\\slash\nnewline",
						   "ok" },
			    1);
	metrics_counter_add(consumed,
			    (const char *const[]){ "orders", "", "caf\xc3\xa9.\xe2\x82\xac", "ok" },
			    1);
	metrics_counter_add(published, (const char *const[]){ "orders", "evt.orders.placed" }, 5);
	metrics_counter_add(dead,
			    (const char *const[]){ "orders", "orders-place", "cmd.orders.place" },
			    1);
	metrics_counter_add(started, NULL, 1);
	/* Past the limit: the overflow series and its counter appear. */
	char route[32];
	for (int i = 0; i < METRICS_SERIES_MAX + 3; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		metrics_counter_add(http, (const char *const[]){ "gateway", route, "200" }, 1);
	}
	for (int i = 0; i < 50; i++) {
		metrics_histogram_observe(handler,
					  (const char *const[]){ "orders", "orders-place" },
					  0.0001 * i * i);
		metrics_histogram_observe(batch, (const char *const[]){ "orders", "orders-place" },
					  (double)(i % 40));
		metrics_histogram_observe(http_seconds,
					  (const char *const[]){ "gateway", "/orders" }, 0.002 * i);
	}
	metrics_histogram_observe(render_seconds, NULL, 0.005);
	CHECK(metrics_gauge_bind(outbox, (const char *const[]){ "orders" }, backlog, NULL));
	CHECK(metrics_gauge_bind(pending, (const char *const[]){ "orders", "orders-place" },
				 pending_unknown, NULL));
	metrics_gauge_set(oldest, (const char *const[]){ "orders" }, 0.125);
	metrics_gauge_set(temperature, (const char *const[]){ "outside" }, -3.5);
	metrics_gauge_add(temperature, (const char *const[]){ "inside" }, 21.1);

	size_t len;
	char *text = metrics_render(reg, &len);
	int rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
	free(text);
	metrics_registry_free(reg);
	return rc;
}
