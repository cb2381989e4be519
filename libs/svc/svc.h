/*
 * svc.h - the service runtime: everything the six services share.
 *
 * A service describes itself in a struct svc_spec (its name in the contracts,
 * migrations, message handlers, periodic tasks, optional HTTP routes) and
 * calls svc_main(). The runtime then:
 *   - claims a SQLite file for this process (db_claim: a second instance
 *     on the same file stops with an error), opens the database (retrying
 *     until it is reachable), applies the runtime's own migrations (outbox,
 *     inbox) and then the service's, as the schema's owner when
 *     SHOP_DB_OWNER_URL names one (svc_migrate_owned), and from then on
 *     works only as SHOP_DB_URL's role;
 *   - connects to NATS (forever retrying); with credentials
 *     (SHOP_NATS_USER) it waits until the admin has declared the streams it
 *     uses and its durables (svc_topology_check: it may not declare them),
 *     without them it declares every stream of the contracts index and its
 *     own durables itself (svc_topology_declare);
 *   - runs one consumer thread per durable: each message is decoded, checked
 *     against its contract, claimed in the inbox and handled in ONE database
 *     transaction, then settled by the decision table in svc.c;
 *   - on SQLite, checkpoints the WAL on a thread of its own, so writers
 *     never do it while holding the write lock;
 *   - runs the outbox relay: woken when a transaction that emitted commits,
 *     polling as a fallback, publishing with Nats-Msg-Id = event id, marking
 *     rows only after the JetStream ack, purging them after a retention time;
 *   - registers the instance with the NATS service API (libs/bus:
 *     $SRV.PING/INFO/STATS and a status endpoint answering /readyz's JSON),
 *     at once, connected or not;
 *   - serves /healthz and /readyz (and the service's own routes) over HTTP;
 *   - stops cleanly on SIGTERM or SIGINT.
 * A handler or task never publishes: it writes state and calls svc_emit() in
 * the same transaction, which is what makes "state changed" and "event will
 * be published" one atomic fact.
 */
#ifndef SHOP_SVC_SVC_H
#define SHOP_SVC_SVC_H

#include "bus/bus.h"
#include "contracts_gen.h"
#include "core/status.h"
#include "db/db.h"
#include "evt/envelope.h"
#include "web/web.h"

#include <stddef.h>
#include <stdint.h>

/* Consumer threads per durable (SHOP_CONSUMER_THREADS, default 1). More
 * than one overlaps the waits of a service whose handlers spend their time on
 * database round trips and commits; it needs handlers that are safe when
 * two messages of one stream run at once, as replicas already require. It
 * buys nothing on SQLite (one writer) and contention on hot rows. */
#define SVC_CONSUMER_THREADS_MAX 8
/* SHOP_STREAM_REPLICAS: how many NATS nodes hold each stream the service
 * declares (its durables follow the stream). The default suits a single
 * nats-server (tests, a bare binary); the compose cluster sets 3, so that
 * any one of its three nodes can die (docs/configuration.md). JetStream
 * allows at most 5. */
#define SVC_STREAM_REPLICAS_DEFAULT 1
#define SVC_STREAM_REPLICAS_MAX 5
/* The topology of the contracts index on the broker: the dead-letter
 * stream and every stream of ct_streams with `replicas` replicas, and the
 * durables of ct_consumers (only `service`'s, or every one when it is
 * NULL). Idempotent and safe from several processes at once. The admin's
 * job (shopctl declare); a service does it itself only when it connects
 * without credentials (a bare nats-server without users). */
shop_status svc_topology_declare(struct bus *bus, int replicas, const char *service);
/* Whether what `service` needs is declared: the dead-letter stream, the
 * streams it publishes to and consumes from, and its durables; read only
 * (the stream and consumer info its NATS user may ask for). SHOP_E_NOT_FOUND
 * names the first missing one in *ret_missing (a static string, or the
 * table's name). */
shop_status svc_topology_check(struct bus *bus, const char *service, const char **ret_missing);

/* Outbox rows a consumer's transaction keeps in memory before it writes
 * them (one INSERT for all of them; svc_outbox.c). */
#define SVC_OUTBOX_ROWS_MAX 256
#define SVC_FETCH_BATCH 64     /* messages asked for per fetch */
#define SVC_FETCH_WAIT_MS 1000 /* longest wait of one fetch (bounds shutdown time) */
#define SVC_RETRY_BASE_MS 100  /* first redelivery delay; doubles per delivery */
#define SVC_RETRY_MAX_MS 30000 /* longest redelivery delay */
#define SVC_RELAY_BATCH 256    /* outbox rows published per round */
#define SVC_RELAY_POLL_MS 1000 /* relay poll when no commit woke it */
#define SVC_OUTBOX_RETENTION_MS                                                                    \
	(24LL * 3600 * 1000) /* published rows kept (SHOP_OUTBOX_RETENTION_MS) */
#define SVC_INBOX_RETENTION_MS                                                                     \
	(8LL * 24 * 3600 * 1000) /* > stream max age: a redelivery is always caught */
#define SVC_PURGE_INTERVAL_MS 60000
#define SVC_CHECKPOINT_INTERVAL_MS 500 /* SQLite: WAL checkpoint off the writers' path */
#define SVC_HTTP_ROUTE_OTHER "other"   /* route label of a path no template names */
/* Connections for HTTP threads, group commits and metrics: at most this
 * many exist at once (in use or idle); a request that finds them all busy
 * waits up to SVC_DB_ACQUIRE_WAIT_MS, then gets SHOP_E_UNAVAILABLE (503).
 * A service opens at most SVC_DB_POOL_MAX + one per durable + one for the
 * relay + one per task connections to its database. */
#define SVC_DB_POOL_MAX 16
#define SVC_DB_ACQUIRE_WAIT_MS 2000
#define SVC_GROUP_MAX 256 /* requests committed together by svc_tx_run_grouped */
/* A message that keeps failing for a reason that may pass (a fact not yet
 * arrived, a dependency down) is dead-lettered at this delivery, not at the
 * server's last one: if the dead-letter copy cannot be stored then, the
 * message is handed back and the spare deliveries try again. At the very
 * last delivery a failed copy would leave it neither handled nor
 * dead-lettered, because the server stops delivering it. */
#define SVC_DEAD_LETTER_SPARE 4
#define SVC_GIVE_UP_DELIVERY (BUS_MAX_DELIVER - SVC_DEAD_LETTER_SPARE)
/* Relay: a row JetStream refused (not merely timed out) this many times is
 * parked (outbox.parked_at_ms set, its reason kept) so it no longer holds
 * the relay back; docs/runbook.md says how to republish it. */
#define SVC_RELAY_MAX_ATTEMPTS 5
/* Longest refusal text kept with a parked outbox row. */
#define SVC_RELAY_ERROR_MAX 256
/* Fewest milliseconds between two re-declarations of the topology, done when
 * the broker says a stream or durable is gone (a broker that lost its store). */
#define SVC_REDECLARE_INTERVAL_MS 2000

struct svc;
struct svc_outbox_rows;

/* One unit of work: a database transaction and what it emits. */
struct svc_tx {
	struct svc *svc;
	struct db *db;                    /* inside BEGIN ... COMMIT */
	const struct evt_envelope *cause; /* the message being handled, or NULL */
	/* What the handler's data is: cause's message, or the newer major
	 * version it was read as (libs/evt/ct_versions.h); NULL without a
	 * cause. */
	const struct ct_message *message;
	const char *correlation_id; /* when cause is NULL (HTTP, timers); may be NULL */
	const char *traceparent;    /* when cause is NULL; may be NULL */
	int64_t now_ms;             /* wall clock at the start of the transaction */
	int emitted;                /* events written to the outbox so far */
	/* Set by the consumer loop: svc_emit keeps the rows here and the loop
	 * writes them with one statement before the commit (svc_outbox.c).
	 * NULL everywhere else: each row is inserted at once. */
	struct svc_outbox_rows *rows;
	/* Set by the consumer loop: where svc_tx_reject writes why the message
	 * is refused, the reason its dead letter carries. NULL elsewhere. */
	char *reject_reason;
	size_t reject_reason_size;
	/* Set by the consumer loop on a batch's first try when the spec's
	 * batch hooks made a state for it (struct svc_batch_hooks); NULL
	 * everywhere else, and on every retry. */
	void *batch;
};

/* Handles one decoded message (data points to the generated struct of its
 * type). Returns SHOP_OK when done (including "nothing to do": an illegal or
 * stale transition is a no-op, not an error), SHOP_E_NOT_READY when a fact
 * it needs has not arrived yet (redelivered later), SHOP_E_INVALID when the
 * message is well-formed but makes no sense (dead-lettered), and passes
 * database statuses through (SHOP_E_UNAVAILABLE is retried with backoff). */
typedef shop_status (*svc_handler_fn)(struct svc_tx *tx, const void *data);

struct svc_route {
	enum ct_message_id message;
	svc_handler_fn handle;
};

/* A periodic job (sweeper, dispatcher). It runs in its own thread with its
 * own connection every interval_ms, and uses svc_tx_run for its writes. */
typedef shop_status (*svc_task_fn)(struct svc *svc, struct db *db);

struct svc_task {
	const char *name;
	int64_t interval_ms;
	svc_task_fn run;
};

/* One message of a consumed batch, as a service's batch hooks see it. */
struct svc_batch_msg {
	enum ct_message_id message;
	const void *data; /* the generated struct of its type */
};

/*
 * A service's batch hooks, for a consumer whose handlers would otherwise
 * make the same round trips once per message (inventory: docs/performance.md).
 * On a consumed batch's first try, begin runs inside the batch's
 * transaction before any handler, with every message the inbox claimed, and
 * may return a state (NULL: none, the handlers run as usual); every handler
 * of that try then finds it in tx->batch, and end runs after the last
 * handler, before the commit, to write what they left in it (end may emit:
 * its tx has no cause of its own, so an event it emits on a message's
 * behalf is emitted with a copy of the tx whose cause is that message's
 * envelope, alive until release). release frees
 * the state, whatever happened. When begin, end or any handler fails, the
 * try is rolled back and the batch is tried again message by message,
 * with tx->batch NULL: a handler must come to the same outcome with or
 * without the state.
 */
struct svc_batch_hooks {
	shop_status (*begin)(struct svc_tx *tx, const struct svc_batch_msg *msgs, size_t n,
			     void **ret_state);
	shop_status (*end)(struct svc_tx *tx, void *state);
	void (*release)(void *state);
};

struct svc_spec {
	const char *name;           /* producer / consumer name in contracts/index.json */
	const char *default_db_url; /* overridden by SHOP_DB_URL */
	const struct db_migration *migrations;
	size_t n_migrations;
	const struct svc_route *routes;
	size_t n_routes;
	svc_handler_fn any_route; /* handles consumed messages without a route, or NULL */
	const struct svc_task *tasks;
	size_t n_tasks;
	/* Runs once after migrations (seeding), in a transaction; may emit. NULL: none. */
	shop_status (*init)(struct svc_tx *tx);
	/* Extra HTTP routes; NULL: only /healthz, /readyz and /metrics. ctx is
	 * the struct svc. */
	web_handler_fn http;
	/* Serve HTTP in the web server's pool mode (web_server_start_pool), so
	 * that http may answer web_respond_pending; false: a thread per
	 * connection. A pending answer is not in the HTTP metrics until the
	 * service reports it (svc_http_observe). */
	bool http_pool;
	/* Called once when the service stops, after its HTTP server has
	 * stopped and before the runtime lets go of its database pool: stops
	 * the service's own threads (the gateway's long-polls). NULL: none. */
	void (*stop)(struct svc *svc);
	/* The route template of a path, for metrics labels ("/orders/{id}");
	 * it must return one of a few constant strings, never the path itself.
	 * NULL: every path of the service is SVC_HTTP_ROUTE_OTHER. */
	const char *(*http_route)(const char *path);
	void *ctx; /* service state, svc_ctx() returns it */
	/* Called by a consumer thread after a batch transaction committed
	 * that handled at least one message (not after a batch that failed,
	 * rolled back, or held only duplicates and rejects), so what the
	 * handlers wrote is visible to every connection when it runs. For
	 * waking readers of what the handlers changed; it must not block.
	 * NULL: none. */
	void (*after_commit)(struct svc *svc);
	/* NULL: every message is handled on its own (see svc_batch_hooks). */
	const struct svc_batch_hooks *batch;
};

int svc_main(const struct svc_spec *spec);
/* Counts one HTTP response in the metrics, as the runtime does for every
 * response its handler gives at once: for a service that answers a pending
 * request later. started_mono_us: clock_mono_us() when the request came. */
void svc_http_observe(struct svc *svc, const char *route, int status, int64_t started_mono_us);

void *svc_ctx(const struct svc *svc);
const char *svc_name(const struct svc *svc);

/* Writes one event to the outbox inside tx. data is the generated struct of
 * the message's type; only the message's producer in the contracts index may
 * emit it, and only in its newest major version (an older one is in the
 * index to be read, not sent: SHOP_E_INVALID). It is encoded and validated against the contract (a
 * producer never publishes what its consumers would reject: SHOP_E_INVALID
 * and a log line name the violation). subject is the CloudEvents subject:
 * the order id for order events. */
shop_status svc_emit(struct svc_tx *tx, enum ct_message_id message, const char *subject,
		     const void *data);

/* For a handler that finds a well-formed message it must refuse for good,
 * because it contradicts what this service knows (a payment for another
 * amount than the order's): says why, in the words of the dead letter, and
 * returns SHOP_E_INVALID for the handler to return. Outside the consumer
 * loop (no message, or a test's svc_tx) the reason is only logged. */
shop_status svc_tx_reject(struct svc_tx *tx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Runs fn inside a fresh transaction on db: begin, fn, commit (rollback when
 * fn fails), then wakes the relay if anything was emitted. */
typedef shop_status (*svc_tx_fn)(struct svc_tx *tx, void *arg);
shop_status svc_tx_run(struct svc *svc, struct db *db, const char *correlation_id,
		       const char *traceparent, svc_tx_fn fn, void *arg);

/* svc_tx_run for request handlers, with group commit: fn runs in a
 * transaction shared with the other callers that arrived meanwhile (up to
 * SVC_GROUP_MAX), under a savepoint of its own, and the call returns after
 * the shared commit: fn's own failure (its writes undone alone), the
 * commit's failure, or SHOP_OK once its writes are durable. fn runs on
 * another caller's thread and must not keep tx beyond the call. */
shop_status svc_tx_run_grouped(struct svc *svc, const char *correlation_id, const char *traceparent,
			       svc_tx_fn fn, void *arg);
/* For tests: how many callers wait for the next group, and how many groups
 * have run (each one transaction). */
size_t svc_group_waiting(struct svc *svc);
uint64_t svc_group_commits(struct svc *svc);
/* For tests: how many consumed batches had a failing message and were tried
 * again with a savepoint per message (svc_consume.c). */
uint64_t svc_batch_replays(struct svc *svc);

/* Connections for HTTP handler threads: take one (waiting while
 * SVC_DB_POOL_MAX are in use), give it back. */
shop_status svc_db_acquire(struct svc *svc, struct db **ret_db);
void svc_db_release(struct svc *svc, struct db *db);

/* For tests and tools: a runtime with no bus, threads or HTTP. svc_emit and
 * svc_tx_run work (events land in the outbox of the db they are given);
 * nothing is published. */
struct svc *svc_create_detached(const struct svc_spec *spec);
void svc_destroy(struct svc *svc); /* accepts NULL */
/* Applies the runtime's migrations (outbox, inbox), then the service's. */
shop_status svc_migrate(const struct svc_spec *spec, struct db *db);
/* PostgreSQL with two roles (SHOP_DB_OWNER_URL): svc_migrate on owner, a
 * connection as the role that owns the schema, then grants the role runtime
 * is connected as what the service needs and nothing more: USAGE on the
 * schema, SELECT, INSERT, UPDATE and DELETE on its tables, USAGE on its
 * sequences (identity columns), and only SELECT on schema_migrations. So
 * the runtime role can neither change the schema (CREATE, ALTER, DROP,
 * TRUNCATE) nor forge the migration record. Safe for replicas starting
 * together (under the migration lock). */
shop_status svc_migrate_owned(const struct svc_spec *spec, struct db *owner, struct db *runtime);
/* Handles one envelope as the consumer loop would, minus the bus: contract
 * check, inbox claim and handler in one transaction. consumer is the durable
 * name recorded in the inbox. Returns the handler's status (SHOP_E_DUPLICATE
 * for an inbox hit). */
shop_status svc_handle_envelope(struct svc *svc, struct db *db, const char *consumer,
				const char *json, size_t len, char *ret_reason, size_t reason_size);

/* Handles n (<= SVC_FETCH_BATCH) envelopes as the consumer loop handles a
 * fetched batch: one transaction, a savepoint per message, one commit.
 * ret_statuses[i] is what the settle table would be given for jsons[i]. */
shop_status svc_handle_envelopes(struct svc *svc, struct db *db, const char *consumer,
				 const char *const *jsons, size_t n, shop_status *ret_statuses);

/* Deletes outbox rows published before now_ms - outbox_retention_ms, and
 * every published row of a confidential stream's message however recent
 * (never an unpublished one, however old), and inbox records received before
 * now_ms - SVC_INBOX_RETENTION_MS. The relay calls it every
 * SVC_PURGE_INTERVAL_MS; the counts may be NULL. */
shop_status svc_purge(struct db *db, int64_t now_ms, int64_t outbox_retention_ms,
		      int64_t *ret_outbox_purged, int64_t *ret_inbox_purged);

/* The settle decision for a handler outcome, exposed for unit tests. */
enum svc_settle { SVC_ACK, SVC_RETRY, SVC_DEAD_LETTER };
enum svc_settle svc_settle_decide(shop_status st, uint64_t deliveries);
_Static_assert(SVC_GIVE_UP_DELIVERY >= 2 && SVC_GIVE_UP_DELIVERY < BUS_MAX_DELIVER,
	       "a retried message gets more than one try and spare deliveries to dead-letter it");
int64_t svc_retry_delay_ms(uint64_t deliveries);

#endif
