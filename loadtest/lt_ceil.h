/*
 * lt_ceil.h - the building blocks' ceilings, measured on the deployment
 * under test just before the load, and the shop's figures as ratios of them.
 *
 * Each ceiling runs for a few seconds and cleans up after itself:
 *   - JetStream async publish with a unique Nats-Msg-Id into a scratch
 *     stream (file storage, like the shop's) that the tool creates and
 *     deletes; then a pull consumer on it, fetch batch + Ack;
 *   - a bare gateway request (GET /healthz), closed loop with a fixed number
 *     of connections: a ceiling, not a latency measurement;
 *   - the commit rate of a small transaction (a business row and an
 *     outbox-like row) on PostgreSQL (the loadtest role's own database) and on
 *     SQLite in WAL mode (a file on a docker volume, the disk the services'
 *     SQLite files live on), with whatever durability the deployment runs
 *     with: db_open applies SHOP_SQLITE_SYNCHRONOUS as the services do, and
 *     a PostgreSQL session inherits the server's synchronous_commit.
 *
 * lt_ratios_compute is pure (the unit tests call it): a rate that could not
 * be measured is negative, and every ratio that needs it is then negative
 * too, which the writers print as "n/a" / JSON null.
 */
#ifndef SHOP_LOADTEST_CEIL_H
#define SHOP_LOADTEST_CEIL_H

#include "core/status.h"

#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define LT_CEIL_DEFAULT_SECONDS 3
#define LT_CEIL_SECONDS_MAX 30
#define LT_CEIL_STREAM "LTCEIL" /* the scratch stream, deleted after */
#define LT_CEIL_SUBJECT "ltceil.msg"
#define LT_CEIL_DURABLE "ltceil"
#define LT_CEIL_MSG_SIZE 512         /* about one CloudEvents envelope */
#define LT_CEIL_PUB_MAX_PENDING 4096 /* async publishes awaiting their ack */
#define LT_CEIL_PUB_MSGS_MAX 1000000 /* a bound on the scratch stream's size */
#define LT_CEIL_FETCH_BATCH 256      /* as the services fetch (BUS_FETCH_MAX) */
#define LT_CEIL_HTTP_CONNECTIONS 16  /* closed loop: requests outstanding */
#define LT_CEIL_PG_CONNECTIONS 4     /* committing threads on PostgreSQL */
#define LT_CEIL_NOTE_MAX 160
#define LT_CEIL_SETTING_MAX 32

/* One ceiling: a rate (negative when it could not be measured, with why in
 * note), how many operations it counted and over how long. */
struct lt_ceil_rate {
	double per_s;
	int64_t count;
	double seconds;
	int64_t errors;
	char note[LT_CEIL_NOTE_MAX];
};

struct lt_ceilings {
	bool measured; /* false: --ceilings not asked for */
	struct lt_ceil_rate js_publish, js_consume, http, pg_commit, sqlite_commit;
	/* The durability each database actually ran with, as it reported it. */
	char pg_synchronous_commit[LT_CEIL_SETTING_MAX];
	char sqlite_synchronous[LT_CEIL_SETTING_MAX];
};

/* Counters read from the deployment before and after the load, so that the
 * ratios use what an order cost in this run. Negative: unknown. */
struct lt_usage {
	int64_t js_messages; /* messages JetStream stored during the load (/jsz) */
	int64_t pg_commits;  /* transactions committed in the services' databases */
};

/* The shop's figures against the ceilings. Negative: not computable. */
struct lt_ratios {
	double completed_per_s; /* terminal orders / (offer + drain) seconds */
	double accepted_per_s;  /* 202s / offer seconds */
	double events_per_order;
	double bus_publish_share; /* completed/s x events per order / publish ceiling */
	double bus_consume_share; /* the same against the consume ceiling */
	double bus_orders_bound;  /* publish ceiling / events per order */
	double gateway_share;     /* accepted/s / bare request ceiling */
	double pg_commits_per_order;
	double pg_share;        /* completed/s x commits per order / commit ceiling */
	double pg_orders_bound; /* commit ceiling / commits per order */
	double sqlite_commits_per_order_budget; /* SQLite ceiling / completed per s */
};

/* Measures every ceiling for seconds each. nats and monitor as in
 * lt_config; gateway the base URL; pg_url and sqlite_path may be NULL (not
 * measured). Always fills what it could; SHOP_OK even when a ceiling failed
 * (its note says why). */
struct lt_ceil_config {
	const char *nats, *gateway, *pg_url, *sqlite_path;
	int64_t seconds;
};
shop_status lt_ceil_measure(const struct lt_ceil_config *cfg, struct lt_ceilings *ret);

/* Counters for lt_usage: each leaves its field at -1 when unreachable. */
void lt_ceil_usage_sample(const char *monitor, const char *pg_url, struct lt_usage *ret);

/* GETs URL and parses its body as JSON (at most LT_CEIL_BODY_MAX, 1 MiB);
 * NULL when it does not answer in timeout_ms or answers something else.
 * cJSON_Delete the result. */
cJSON *lt_http_get_json(const char *url, int64_t timeout_ms);

/* Pure. before/after: usage sampled around the load; terminal and accepted:
 * orders over all phases; active_s, offer_s: seconds of offered load plus
 * drains, and of offered load alone. */
void lt_ratios_compute(const struct lt_ceilings *c, const struct lt_usage *before,
		       const struct lt_usage *after, int64_t terminal, int64_t accepted,
		       double active_s, double offer_s, struct lt_ratios *ret);

/* Pure: the headline throughput of a JSON report (its "summary": the best
 * rate that held for saturate, completed orders per second for run), or a
 * negative value when the text is not such a report. */
double lt_report_throughput(const char *json);
/* Pure: reads two JSON reports (durable, relaxed) and prints their
 * throughputs and the ratio (issue 6's target: >= LT_DURABLE_TARGET).
 * SHOP_E_INVALID when either is not a report. */
#define LT_DURABLE_TARGET 0.8
shop_status lt_compare_reports(const char *durable_json, const char *relaxed_json, FILE *out,
			       double *ret_ratio);

#endif
