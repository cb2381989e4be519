/*
 * svc_metrics.c - the metrics every service has, and GET /metrics.
 *
 * Names, labels and meanings are those of docs/metrics.md. Counters and
 * histograms are updated where things happen (the consumer loop, the relay,
 * the HTTP wrapper); the gauges that describe state elsewhere (outbox rows
 * in the database, a durable's backlog on the broker) are computed when
 * /metrics is read, so an idle service costs nothing and a scrape costs a
 * few queries. A computed gauge whose source is down is left out of that
 * scrape rather than reported as zero.
 */
#include "svc_private.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Registration of the runtime's own constant names cannot fail unless the
 * code is wrong: fail loudly at start-up, not with a half-wired service. */
static void svc_metrics_must(shop_status st, const char *name)
{
	if (st == SHOP_OK)
		return;
	fprintf(stderr, "svc: registering metric %s: %s\n", name, shop_status_name(st));
	abort();
}

#define SVC_LABELS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* One integer the outbox query gives; fails when the database does. */
static shop_status svc_metrics_outbox_query(struct svc *svc, const char *sql, int64_t *ret_value,
					    bool *ret_null)
{
	struct db *db = NULL;
	struct db_result *r = NULL;
	shop_status st = svc_db_acquire(svc, &db);
	if (st == SHOP_OK)
		st = db_query(db, sql, DB_NOARGS, &r);
	if (st == SHOP_OK) {
		*ret_null = db_result_text(r, 0, 0) == NULL;
		*ret_value = db_result_int(r, 0, 0);
	}
	db_result_free(r);
	svc_db_release(svc, db);
	return st;
}

static shop_status svc_metrics_count_rows(void *arg, double *ret_value)
{
	const struct svc_metrics_count *c = arg;
	int64_t n = 0;
	bool null = false;
	shop_status st = svc_metrics_outbox_query(c->svc, c->sql, &n, &null);
	if (st == SHOP_OK)
		*ret_value = (double)n;
	return st;
}

static shop_status svc_metrics_oldest(void *arg, double *ret_value)
{
	int64_t oldest = 0;
	bool none = false;
	shop_status st = svc_metrics_outbox_query(
		arg, "SELECT min(created_at_ms) FROM outbox " SVC_OUTBOX_PENDING_WHERE, &oldest,
		&none);
	if (st == SHOP_OK) {
		int64_t age_ms = none ? 0 : clock_now_ms() - oldest;
		*ret_value = age_ms > 0 ? (double)age_ms / 1000.0 : 0.0;
	}
	return st;
}

static shop_status svc_metrics_pending(void *arg, double *ret_value)
{
	const struct svc_consumer_thread *ct = arg;
	uint64_t pending = 0;
	if (!ct->svc->bus)
		return SHOP_E_UNAVAILABLE;
	shop_status st = bus_consumer_pending(ct->svc->bus, ct->consumer->stream,
					      ct->consumer->durable, &pending, NULL);
	if (st == SHOP_OK)
		*ret_value = (double)pending;
	return st;
}

struct svc_metrics *svc_metrics_new(struct svc *svc)
{
	struct svc_metrics *m = xcalloc(1, sizeof(*m));
	const char *name = svc->spec->name;
	m->reg = metrics_registry_new();
	svc_metrics_must(metrics_counter_register(m->reg, "shop_messages_consumed_total",
						  "Messages a durable consumer settled, by outcome.",
						  SVC_LABELS("service", "durable", "subject",
							     "outcome"),
						  &m->consumed),
			 "consumed");
	svc_metrics_must(metrics_counter_register(m->reg, "shop_messages_published_total",
						  "Messages the relay published (acknowledged by "
						  "JetStream).",
						  SVC_LABELS("service", "subject"), &m->published),
			 "published");
	svc_metrics_must(metrics_counter_register(m->reg, "shop_dead_letters_total",
						  "Messages sent to the dead-letter stream.",
						  SVC_LABELS("service", "durable", "subject"),
						  &m->dead_letters),
			 "dead letters");
	svc_metrics_must(
		metrics_histogram_register(
			m->reg, "shop_handler_seconds",
			"Time from a message's delivery (its batch's fetch) to its settling.",
			SVC_LABELS("service", "stream", "durable"), metrics_latency_buckets,
			METRICS_LATENCY_BUCKETS_N, &m->handler_s),
		"handler");
	svc_metrics_must(metrics_histogram_register(m->reg, "shop_batch_size",
						    "Messages per fetched batch (one transaction).",
						    SVC_LABELS("service", "stream", "durable"),
						    metrics_batch_buckets, METRICS_BATCH_BUCKETS_N,
						    &m->batch_size),
			 "batch size");
	svc_metrics_must(
		metrics_counter_register(m->reg, "shop_batch_replays_total",
					 "Batches tried again, a savepoint per message, after "
					 "a message failed.",
					 SVC_LABELS("service", "durable"), &m->batch_replays),
		"batch replays");
	svc_metrics_must(metrics_gauge_register(m->reg, "shop_outbox_backlog",
						"Outbox rows not yet published (parked ones apart).",
						SVC_LABELS("service"), &m->outbox_backlog),
			 "outbox backlog");
	svc_metrics_must(
		metrics_gauge_register(m->reg, "shop_outbox_oldest_unpublished_seconds",
				       "Age of the oldest unpublished outbox row; 0 when none.",
				       SVC_LABELS("service"), &m->outbox_oldest_s),
		"outbox oldest");
	svc_metrics_must(metrics_gauge_register(m->reg, "shop_outbox_parked",
						"Outbox rows parked after JetStream refused them.",
						SVC_LABELS("service"), &m->outbox_parked),
			 "outbox parked");
	svc_metrics_must(metrics_gauge_register(m->reg, "shop_consumer_pending",
						"Messages the durable has not delivered yet.",
						SVC_LABELS("service", "stream", "durable"),
						&m->consumer_pending),
			 "consumer pending");
	svc_metrics_must(metrics_counter_register(m->reg, "shop_http_requests_total",
						  "HTTP requests answered, by route and status.",
						  SVC_LABELS("service", "route", "status"),
						  &m->http_requests),
			 "http requests");
	svc_metrics_must(metrics_histogram_register(
				 m->reg, "shop_http_request_seconds",
				 "HTTP request latency, from the complete request to the response.",
				 SVC_LABELS("service", "route"), metrics_latency_buckets,
				 METRICS_LATENCY_BUCKETS_N, &m->http_s),
			 "http seconds");
	m->backlog_rows = (struct svc_metrics_count){
		svc, "SELECT count(*) FROM outbox " SVC_OUTBOX_PENDING_WHERE
	};
	m->parked_rows = (struct svc_metrics_count){
		svc, "SELECT count(*) FROM outbox WHERE parked_at_ms IS NOT NULL"
	};
	svc_metrics_must(metrics_gauge_bind(m->outbox_backlog, SVC_LABELS(name),
					    svc_metrics_count_rows, &m->backlog_rows),
			 "outbox backlog");
	svc_metrics_must(metrics_gauge_bind(m->outbox_oldest_s, SVC_LABELS(name),
					    svc_metrics_oldest, svc),
			 "outbox oldest");
	svc_metrics_must(metrics_gauge_bind(m->outbox_parked, SVC_LABELS(name),
					    svc_metrics_count_rows, &m->parked_rows),
			 "outbox parked");
	return m;
}

void svc_metrics_free(struct svc_metrics *m)
{
	if (!m)
		return;
	metrics_registry_free(m->reg);
	free(m);
}

void svc_metrics_bind_consumers(struct svc *svc)
{
	for (size_t i = 0; i < svc->n_consumers; i++) {
		struct svc_consumer_thread *ct = &svc->consumers[i];
		if (!ct->first)
			continue;
		svc_metrics_must(metrics_gauge_bind(svc->metrics->consumer_pending,
						    SVC_LABELS(svc->spec->name,
							       ct->consumer->stream,
							       ct->consumer->durable),
						    svc_metrics_pending, ct),
				 "consumer pending");
	}
}

void svc_metrics_serve(struct svc *svc, struct web_response *res)
{
	size_t len = 0;
	char *text = metrics_render(svc->metrics->reg, &len);
	web_respond_text(res, 200, METRICS_CONTENT_TYPE, text, len);
}

void svc_metrics_http(struct svc *svc, const char *route, int status, int64_t started_mono_us)
{
	char code[16];
	snprintf(code, sizeof(code), "%d", status);
	metrics_counter_add(svc->metrics->http_requests, SVC_LABELS(svc->spec->name, route, code),
			    1);
	double seconds = (double)(clock_mono_us() - started_mono_us) / 1e6;
	metrics_histogram_observe(svc->metrics->http_s, SVC_LABELS(svc->spec->name, route),
				  seconds);
}
