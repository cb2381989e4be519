/*
 * svc_private.h - what the runtime's files share; not for services.
 *
 * The runtime is one struct svc and four files, one per job:
 *   svc.c          lifecycle: start-up, threads, the connection pool, the
 *                  HTTP probes, the topology, shutdown
 *   svc_consume.c  consuming: decode, inbox claim, the batch transaction,
 *                  the settle table
 *   svc_outbox.c   the outbox: emit, the relay, parking, purge
 *   svc_tx.c       units of work: svc_tx_run and group commit
 *   svc_metrics.c  the service's metrics and /metrics (docs/metrics.md)
 */
#ifndef SHOP_SVC_SVC_PRIVATE_H
#define SHOP_SVC_SVC_PRIVATE_H

#include "svc.h"

#include "bus/bus.h"
#include "metrics/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Pause between attempts while a dependency is still coming up. */
#define SVC_STARTUP_RETRY_MS 1000
/* Pause after a fetch failed (broker gone): the client reconnects meanwhile. */
#define SVC_FETCH_ERROR_PAUSE_MS 500
/* Redelivery delay of messages handed back while the database is down. */
#define SVC_DB_DOWN_REDELIVERY_MS 1000
/* Retry-After (seconds) of a request refused while the service starts. */
#define SVC_NOT_READY_RETRY_AFTER_S "1"
/* Longest reason text carried into a dead-letter header. */
#define SVC_REASON_MAX 512

struct svc_consumer_thread {
	struct svc *svc;
	const struct ct_consumer *consumer;
	bool first; /* the first thread of its durable: it reports the durable's gauges */
	pthread_t thread;
};

struct svc_task_thread {
	struct svc *svc;
	const struct svc_task *task;
	pthread_t thread;
};

/* The outbox rows the relay has still to publish (the backlog): neither
 * published nor parked. */
#define SVC_OUTBOX_PENDING_WHERE "WHERE published_at_ms IS NULL AND parked_at_ms IS NULL"

struct svc {
	const struct svc_spec *spec;
	char *db_url;
	char *db_owner_url;        /* SHOP_DB_OWNER_URL: migrations run there; NULL: on db_url */
	struct db_claim *db_claim; /* SQLite: this process's claim on the file */
	struct bus *bus;
	struct bus_service *registry; /* $SRV.* answers; NULL if registering failed */
	struct bus_log *bus_log;      /* the distributed logger; NULL if it did not start */
	int replicas;
	int consumer_threads; /* per durable (SHOP_CONSUMER_THREADS) */

	atomic_bool stopping;
	atomic_bool ready;
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t wake;  /* relay wake-up and stop notification */
	bool relay_pending;

	int64_t redeclared_at_ms;   /* clock_mono_ms of the last re-declaration */
	atomic_llong outbox_parked; /* rows this process parked */

	/* Group commit (svc_tx_run_grouped): its own lock, so waiting writers
	 * never contend with the relay's wake-ups. */
	pthread_mutex_t group_lock;
	pthread_cond_t group_done;
	struct svc_group_item *group_head, *group_tail;
	bool group_leader;
	atomic_ullong group_commits; /* groups run (tests read it) */
	atomic_ullong batch_replays; /* batches tried again with savepoints (tests read it) */

	struct db *pool[SVC_DB_POOL_MAX]; /* idle connections for HTTP threads */
	size_t pool_len;
	size_t pool_in_use;       /* handed out by svc_db_acquire, not yet back */
	pthread_cond_t pool_free; /* a connection came back */

	struct svc_metrics *metrics; /* registered by svc_new, never NULL */

	struct web_server *web;
	pthread_t relay_thread;
	bool relay_started;
	pthread_t checkpoint_thread; /* SQLite only */
	bool checkpoint_started;
	struct svc_consumer_thread *consumers;
	size_t n_consumers;
	struct svc_task_thread *tasks;
	size_t n_tasks;
};

/* svc.c */
bool svc_stopping(struct svc *svc);
/* Whether the index marks STREAM confidential: its dead letters keep no
 * body (bus_consumer_set_confidential) and its published outbox rows are
 * not kept (svc_purge). */
bool svc_stream_confidential(const char *stream);
/* Sleeps up to ms, waking early when the service stops. */
void svc_pause(struct svc *svc, int64_t ms);
/* Opens a connection, retrying until it works or the service stops (NULL). */
struct db *svc_db_open_retrying(struct svc *svc);
/* The broker said a stream or durable is missing: declare them again. */
void svc_topology_lost(struct svc *svc);

/* svc_consume.c: one thread per durable this service consumes. */
void *svc_consumer_main(void *arg);

/* svc_metrics.c: the series every service has (docs/metrics.md). */
/* A count of rows, computed at each scrape (svc_metrics.c). */
struct svc_metrics_count {
	struct svc *svc;
	const char *sql; /* SELECT count(*) ... */
};

struct svc_metrics {
	struct metrics_registry *reg;
	struct metrics_counter *consumed;                   /* service, durable, subject, outcome */
	struct metrics_counter *published;                  /* service, subject */
	struct metrics_counter *dead_letters;               /* service, durable, subject */
	struct metrics_histogram *handler_s;                /* service, stream, durable */
	struct metrics_histogram *batch_size;               /* service, stream, durable */
	struct metrics_counter *batch_replays;              /* service, durable */
	struct metrics_gauge *outbox_backlog;               /* service; computed */
	struct metrics_gauge *outbox_oldest_s;              /* service; computed */
	struct metrics_gauge *outbox_parked;                /* service; computed */
	struct metrics_gauge *consumer_pending;             /* service, stream, durable; computed */
	struct metrics_counter *http_requests;              /* service, route, status */
	struct metrics_histogram *http_s;                   /* service, route */
	struct svc_metrics_count backlog_rows, parked_rows; /* the computed gauges' queries */
};
struct svc_metrics *svc_metrics_new(struct svc *svc);
void svc_metrics_free(struct svc_metrics *m); /* accepts NULL */
/* Binds the computed per-durable gauges once the durables are known. */
void svc_metrics_bind_consumers(struct svc *svc);
/* Serves GET /metrics. */
void svc_metrics_serve(struct svc *svc, struct web_response *res);
/* Times and counts one HTTP request by route (see svc_spec.http_route). */
void svc_metrics_http(struct svc *svc, const char *route, int status, int64_t started_mono_us);

/* svc_outbox.c */
void svc_relay_wake(struct svc *svc);
/* Outbox rows svc_emit keeps for a consumer's transaction (svc_tx.rows),
 * in emit order. */
struct svc_outbox_rows {
	cJSON *rows; /* array of {"e", "s", "p", "c"}: event id, subject, payload, created */
	size_t n;
};
/* Writes the kept rows into the outbox with one statement, in emit order,
 * and empties the list; SHOP_OK at once when it is empty. */
shop_status svc_outbox_rows_write(struct db *db, struct svc_outbox_rows *r);
/* Writes the rows and commits, in one round trip on PostgreSQL (the commit
 * alone when there are none). *ret_over: see db_exec_commit; false means
 * the rows' statement failed and the transaction is still open. */
shop_status svc_outbox_rows_commit(struct db *db, struct svc_outbox_rows *r, bool *ret_over);
/* Forgets the kept rows (their transaction was rolled back). */
void svc_outbox_rows_clear(struct svc_outbox_rows *r);
void *svc_relay_main(void *arg);

#endif
