/*
 * lt_run.h - one load run: the offered-load phase(s), the drains, the
 * per-second series. main.c parses the command line into a config and
 * writes the report this fills.
 */
#ifndef SHOP_LOADTEST_RUN_H
#define SHOP_LOADTEST_RUN_H

#include "core/status.h"
#include "lt_report.h"

#include <stdbool.h>
#include <stdint.h>

/* Defaults; README.md explains each knob. */
#define LT_DEFAULT_RATE 1000
#define LT_DEFAULT_DURATION_S 60
/* Requests in flight at once. By Little's law 256 carries 1,000 orders/s
 * with accept latencies up to a quarter second on average; it stays below
 * the gateway's WEB_CONNECTIONS_MAX (512), so refusals are the generator's
 * own, counted as "inflight_bound", never the gateway's. */
#define LT_DEFAULT_MAX_INFLIGHT 256
#define LT_DEFAULT_TIMEOUT_MS 10000 /* one HTTP request, connection included */
#define LT_DEFAULT_DRAIN_S 60       /* longest wait for orders to end after the load */
#define LT_DEFAULT_P99_ACCEPT_MS 50 /* issue 6's targets, used by saturate */
#define LT_DEFAULT_P99_PAID_MS 250
#define LT_SAT_STEPS_MAX 16 /* saturate never runs more steps than this */
#define LT_DURATION_MAX_S 3600
#define LT_RATE_MAX 100000
#define LT_INFLIGHT_MAX 4096
#define LT_RESPONSE_MAX (64 * 1024)               /* an order answer is ~100 bytes */
#define LT_MONITOR_RESPONSE_MAX (8 * 1024 * 1024) /* /jsz with every consumer */

struct lt_config {
	const char *gateway; /* http://gateway:8080 */
	const char *nats;    /* nats://nats-1:4222,... (every node) */
	const char *monitor; /* http://nats-1:8222 */
	const char *mix;
	double rate;
	int64_t duration_s;
	int64_t max_inflight;
	int64_t timeout_ms;
	int64_t drain_max_s;
	bool saturate;
	double sat_start, sat_factor, sat_max;
	int64_t sat_step_s;
	double p99_accept_ms, p99_paid_ms;
};

/* Runs the load described by cfg and fills report (which it owns until
 * lt_run_report_release). SHOP_E_UNAVAILABLE when the bus or the gateway
 * cannot be reached at the start; a run that started always returns SHOP_OK,
 * whatever it measured. */
shop_status lt_run(const struct lt_config *cfg, struct lt_report *report);
void lt_run_report_release(struct lt_report *report);
/* Ends the current phase early (from a signal handler). */
void lt_run_stop(void);

#endif
