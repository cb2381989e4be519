/*
 * svc.c - the service runtime's lifecycle (see svc.h for what the runtime
 * does, svc_private.h for its files).
 *
 * Threads of a running service:
 *   main        starts everything, then waits for the stop flag
 *   signals     sigwait()s for SIGTERM/SIGINT and raises the stop flag
 *   consumer x  one per durable this service consumes (fetch, handle, settle)
 *   relay       publishes the outbox
 *   task x      one per periodic task
 *   HTTP        libmicrohttpd's: one per connection, or a pool of
 *               WEB_POOL_THREADS for a service that asks (svc_spec.http_pool)
 * Every thread that touches the database owns its connection (struct db is
 * not thread-safe); HTTP threads borrow one from a small pool. The consumer
 * threads are in svc_consume.c, the relay in svc_outbox.c.
 */
#include "svc_private.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/version.h"
#include "core/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The runtime's own tables, applied before the service's migrations. */
static const struct db_migration svc_runtime_migrations[] = {
	{ "000_svc_outbox_inbox",
	  "CREATE TABLE outbox (\n"
	  "  id @AUTO_ID@,\n"
	  "  event_id TEXT NOT NULL UNIQUE,\n"
	  "  subject TEXT NOT NULL,\n"
	  "  payload TEXT NOT NULL,\n"
	  "  created_at_ms BIGINT NOT NULL,\n"
	  "  published_at_ms BIGINT\n"
	  ");\n"
	  "CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at_ms IS NULL;\n"
	  "CREATE INDEX outbox_published ON outbox (published_at_ms) WHERE published_at_ms IS NOT NULL;\n"
	  "CREATE TABLE inbox (\n"
	  "  consumer TEXT NOT NULL,\n"
	  "  event_id TEXT NOT NULL,\n"
	  "  received_at_ms BIGINT NOT NULL,\n"
	  "  PRIMARY KEY (consumer, event_id)\n"
	  ");\n"
	  "CREATE INDEX inbox_received ON inbox (received_at_ms);\n" },
	/* A row JetStream keeps refusing is parked instead of retried forever
	 * (svc_relay_round); the relay's index leaves parked rows out. */
	{ "000_svc_outbox_parking",
	  "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;\n"
	  "ALTER TABLE outbox ADD COLUMN last_error TEXT;\n"
	  "ALTER TABLE outbox ADD COLUMN parked_at_ms BIGINT;\n"
	  "DROP INDEX outbox_unpublished;\n"
	  "CREATE INDEX outbox_unpublished ON outbox (id) "
	  "WHERE published_at_ms IS NULL AND parked_at_ms IS NULL;\n" },
};

void *svc_ctx(const struct svc *svc)
{
	return svc->spec->ctx;
}

const char *svc_name(const struct svc *svc)
{
	return svc->spec->name;
}

/* ---- threads ----------------------------------------------------------- */

static shop_status svc_declare_topology(struct svc *svc);

/* The broker said a stream or durable is not there (it lost its store, or
 * was replaced by an empty one): declare everything again, as at start-up.
 * Several threads notice at once, so it runs at most once every
 * SVC_REDECLARE_INTERVAL_MS; declaring is idempotent. */
void svc_topology_lost(struct svc *svc)
{
	int64_t now = clock_mono_ms();
	pthread_mutex_lock(&svc->lock);
	bool due = svc->redeclared_at_ms == 0 ||
		   now - svc->redeclared_at_ms >= SVC_REDECLARE_INTERVAL_MS;
	if (due)
		svc->redeclared_at_ms = now;
	pthread_mutex_unlock(&svc->lock);
	if (!due || !bus_is_connected(svc->bus))
		return;
	shop_status st = svc_declare_topology(svc);
	if (st == SHOP_OK)
		log_warn(NULL,
			 "a stream or durable was missing on the broker: topology declared again");
	else
		log_warn(NULL, "declaring the topology again: %s", shop_status_name(st));
}

bool svc_stopping(struct svc *svc)
{
	return atomic_load(&svc->stopping);
}

/* Sleeps up to ms, waking early when the service stops. */
void svc_pause(struct svc *svc, int64_t ms)
{
	struct timespec until = clock_mono_deadline(ms);
	pthread_mutex_lock(&svc->lock);
	while (!svc_stopping(svc) &&
	       pthread_cond_timedwait(&svc->wake, &svc->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&svc->lock);
}

static struct db *svc_db_open_url_retrying(struct svc *svc, const char *url)
{
	while (!svc_stopping(svc)) {
		struct db *db = NULL;
		if (db_open(url, &db) == SHOP_OK)
			return db;
		log_warn(NULL, "database not reachable yet: %s", db_last_error(db));
		db_close(db);
		svc_pause(svc, SVC_STARTUP_RETRY_MS);
	}
	return NULL;
}

/* Opens a connection, retrying until it works or the service stops. */
struct db *svc_db_open_retrying(struct svc *svc)
{
	return svc_db_open_url_retrying(svc, svc->db_url);
}

/* SQLite only: the checkpointer. Every SVC_CHECKPOINT_INTERVAL_MS it copies
 * committed WAL frames into the database file (a passive checkpoint, which
 * waits for nobody), so the commits of consumers and requests never pay for
 * it while holding the one write lock. */
static void *svc_checkpoint_main(void *arg)
{
	struct svc *svc = arg;
	struct db *db = svc_db_open_retrying(svc);
	while (db && !svc_stopping(svc)) {
		if (db_checkpoint(db, NULL) != SHOP_OK)
			log_warn(NULL, "WAL checkpoint: %s", db_last_error(db));
		svc_pause(svc, SVC_CHECKPOINT_INTERVAL_MS);
	}
	db_close(db);
	return NULL;
}

static void *svc_task_main(void *arg)
{
	struct svc_task_thread *tt = arg;
	struct svc *svc = tt->svc;
	struct db *db = svc_db_open_retrying(svc);

	while (db && !svc_stopping(svc)) {
		shop_status st = tt->task->run(svc, db);
		if (st != SHOP_OK)
			log_warn(NULL, "task %s: %s (%s)", tt->task->name, shop_status_name(st),
				 db_last_error(db));
		svc_pause(svc, tt->task->interval_ms);
	}
	db_close(db);
	return NULL;
}

/* ---- connection pool --------------------------------------------------- */

/* At most SVC_DB_POOL_MAX connections exist for the HTTP threads (in use
 * or idle): a burst of requests waits for one rather than opening a
 * connection per request until PostgreSQL refuses more. */
shop_status svc_db_acquire(struct svc *svc, struct db **ret_db)
{
	struct db *db = NULL;
	shop_status st = SHOP_OK;
	struct timespec until = clock_mono_deadline(SVC_DB_ACQUIRE_WAIT_MS);
	pthread_mutex_lock(&svc->lock);
	while (svc->pool_len == 0 && svc->pool_in_use >= SVC_DB_POOL_MAX && st == SHOP_OK)
		if (pthread_cond_timedwait(&svc->pool_free, &svc->lock, &until) == ETIMEDOUT &&
		    svc->pool_len == 0 && svc->pool_in_use >= SVC_DB_POOL_MAX)
			st = SHOP_E_UNAVAILABLE;
	if (st == SHOP_OK) {
		if (svc->pool_len > 0)
			db = svc->pool[--svc->pool_len];
		svc->pool_in_use++;
	}
	pthread_mutex_unlock(&svc->lock);
	if (st != SHOP_OK)
		return st; /* every connection busy for SVC_DB_ACQUIRE_WAIT_MS */
	if (!db) {
		st = db_open(svc->db_url, &db);
		/* Someone waits for every write of an HTTP thread: it goes before
		 * the consumers' and the relay's on SQLite (db_writer_first). */
		if (st == SHOP_OK)
			db_writer_first(db);
		if (st != SHOP_OK) {
			db_close(db);
			pthread_mutex_lock(&svc->lock);
			svc->pool_in_use--;
			pthread_cond_signal(&svc->pool_free);
			pthread_mutex_unlock(&svc->lock);
			return st;
		}
	}
	*ret_db = db;
	return SHOP_OK;
}

void svc_db_release(struct svc *svc, struct db *db)
{
	if (!db)
		return;
	pthread_mutex_lock(&svc->lock);
	/* A connection given without svc_db_acquire (tests stock the pool of a
	 * detached runtime this way) is not counted in use. */
	if (svc->pool_in_use > 0)
		svc->pool_in_use--;
	if (svc->pool_len < SVC_DB_POOL_MAX) {
		svc->pool[svc->pool_len++] = db;
		db = NULL;
	}
	pthread_cond_signal(&svc->pool_free);
	pthread_mutex_unlock(&svc->lock);
	db_close(db);
}

/* ---- HTTP: probes, then the service's routes --------------------------- */

/* Ready: schema migrated and streams declared, database and broker
 * reachable now. Adds what it found to body (the /readyz answer, which the
 * registry's status endpoint also gives) and returns whether all is well. */
static bool svc_readiness(struct svc *svc, cJSON *body)
{
	struct db *db = NULL;
	bool db_ok = svc_db_acquire(svc, &db) == SHOP_OK && db_ping(db) == SHOP_OK;
	svc_db_release(svc, db);
	/* svc->bus is written by the main thread while this server
	 * already runs: read it only after ready, which is stored after
	 * it (so the atomic orders the two; ThreadSanitizer saw the
	 * plain read race the write). Before that the broker counts as
	 * not ready, as the service is not. */
	bool started = atomic_load(&svc->ready);
	bool bus_ok = started && svc->bus && bus_is_connected(svc->bus);
	cJSON_AddBoolToObject(body, "database", db_ok);
	cJSON_AddBoolToObject(body, "broker", bus_ok);
	cJSON_AddBoolToObject(body, "started", started);
	bool ok = db_ok && bus_ok && started;
	cJSON_AddStringToObject(body, "status", ok ? "ready" : "not_ready");
	return ok;
}

/* The registry's status endpoint (libs/bus): the JSON of /readyz, plus
 * what the console draws and can only learn from the instance: its
 * database's kind ("db_backend": "postgres" or "sqlite") and its outbox
 * backlog ("outbox_backlog", rows not yet published), both absent when the
 * database cannot be asked. */
static char *svc_registry_status(void *arg)
{
	struct svc *svc = arg;
	struct db *db = NULL;
	struct db_result *r = NULL;
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "service", svc->spec->name);
	svc_readiness(svc, body);
	if (svc_db_acquire(svc, &db) == SHOP_OK) {
		cJSON_AddStringToObject(body, "db_backend",
					db_backend_of(db) == DB_POSTGRES ? "postgres" : "sqlite");
		if (db_query(db, "SELECT count(*) FROM outbox " SVC_OUTBOX_PENDING_WHERE, DB_NOARGS,
			     &r) == SHOP_OK)
			cJSON_AddNumberToObject(body, "outbox_backlog",
						(double)db_result_int(r, 0, 0));
		db_result_free(r);
		svc_db_release(svc, db);
	}
	char *json = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	return json;
}

/* The runtime's own routes, answered whatever state the service is in. */
static bool svc_http_own(const char *path)
{
	return strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
	       strcmp(path, "/metrics") == 0;
}

static void svc_http_dispatch(struct svc *svc, const struct web_request *req,
			      struct web_response *res)
{
	const char *path = web_request_path(req);

	if (svc_http_own(path)) {
		if (strcmp(web_request_method(req), "GET") != 0) {
			web_response_header(res, "Allow", "GET");
			web_respond_error(res, 405, "method_not_allowed", "use GET", NULL);
			return;
		}
		if (strcmp(path, "/metrics") == 0) {
			svc_metrics_serve(svc, res);
			return;
		}
		cJSON *body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "service", svc->spec->name);
		if (strcmp(path, "/healthz") == 0) {
			cJSON_AddStringToObject(body, "status", "ok");
			cJSON_AddNumberToObject(body, "outbox_parked",
						(double)atomic_load(&svc->outbox_parked));
			web_respond_json(res, 200, body);
			return;
		}
		bool ok = svc_readiness(svc, body);
		web_respond_json(res, ok ? 200 : 503, body);
		return;
	}
	/* A service's own routes read tables that migrations create and state
	 * that start-up prepares: until then a request would fail with "no such
	 * table" or worse. 503 tells a client (and a load balancer) to come back. */
	if (!atomic_load(&svc->ready)) {
		web_response_header(res, "Retry-After", SVC_NOT_READY_RETRY_AFTER_S);
		web_respond_error(res, 503, "not_ready", "the service is starting", NULL);
		return;
	}
	if (svc->spec->http) {
		svc->spec->http(svc, req, res);
		return;
	}
	web_respond_error(res, 404, "not_found", "no such resource", NULL);
}

/* Every request is counted and timed by route: the runtime's own by path,
 * the service's by the template its http_route gives (never the raw path:
 * ids in it would make a series per order). */
static void svc_http(void *ctx, const struct web_request *req, struct web_response *res)
{
	struct svc *svc = ctx;
	int64_t started = clock_mono_us();
	const char *path = web_request_path(req);
	svc_http_dispatch(svc, req, res);
	if (web_response_is_pending(res))
		return; /* counted when answered: svc_http_observe */
	const char *route = svc_http_own(path)      ? path
			    : svc->spec->http_route ? svc->spec->http_route(path)
						    : SVC_HTTP_ROUTE_OTHER;
	svc_metrics_http(svc, route, res->status, started);
}

void svc_http_observe(struct svc *svc, const char *route, int status, int64_t started_mono_us)
{
	svc_metrics_http(svc, route, status, started_mono_us);
}

/* ---- startup and shutdown ---------------------------------------------- */

static struct svc *svc_new(const struct svc_spec *spec)
{
	struct svc *svc = xcalloc(1, sizeof(*svc));
	svc->spec = spec;
	pthread_mutex_init(&svc->lock, NULL);
	clock_cond_init(&svc->wake);
	clock_cond_init(&svc->pool_free);
	pthread_mutex_init(&svc->group_lock, NULL);
	pthread_cond_init(&svc->group_done, NULL);
	svc->metrics = svc_metrics_new(svc);
	return svc;
}

struct svc *svc_create_detached(const struct svc_spec *spec)
{
	return svc_new(spec);
}

void svc_destroy(struct svc *svc)
{
	if (!svc)
		return;
	for (size_t i = 0; i < svc->pool_len; i++)
		db_close(svc->pool[i]);
	pthread_mutex_destroy(&svc->lock);
	pthread_cond_destroy(&svc->wake);
	pthread_cond_destroy(&svc->pool_free);
	pthread_mutex_destroy(&svc->group_lock);
	pthread_cond_destroy(&svc->group_done);
	free(svc->consumers);
	free(svc->tasks);
	free(svc->db_url);
	free(svc->db_owner_url);
	db_claim_release(svc->db_claim);
	svc_metrics_free(svc->metrics);
	free(svc);
}

shop_status svc_migrate(const struct svc_spec *spec, struct db *db)
{
	shop_status st = db_migrate(db, svc_runtime_migrations,
				    sizeof(svc_runtime_migrations) /
					    sizeof(svc_runtime_migrations[0]));
	if (st == SHOP_OK)
		st = db_migrate(db, spec->migrations, spec->n_migrations);
	return st;
}

/* The grants of svc_migrate_owned, each built by the server's format() so
 * that the schema and role names are quoted by PostgreSQL itself ($1 the
 * schema, $2 the runtime role). schema_migrations is read-only to the
 * runtime: it may look, never record or erase a migration. */
static const char svc_grants_sql[] =
	"SELECT format('GRANT USAGE ON SCHEMA %1$I TO %2$I', $1::text, $2::text),"
	" format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %1$I TO %2$I',"
	" $1::text, $2::text),"
	" format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %1$I TO %2$I', $1::text, $2::text),"
	" format('REVOKE INSERT, UPDATE, DELETE ON %1$I.schema_migrations FROM %2$I',"
	" $1::text, $2::text)";

shop_status svc_migrate_owned(const struct svc_spec *spec, struct db *owner, struct db *runtime)
{
	struct db_result *who = NULL, *where = NULL, *grants = NULL;
	bool began = false;
	shop_status st = SHOP_E_INVALID;
	if (db_backend_of(owner) != DB_POSTGRES || db_backend_of(runtime) != DB_POSTGRES)
		goto out;
	st = svc_migrate(spec, owner);
	if (st != SHOP_OK)
		goto out;
	st = db_query(runtime, "SELECT current_user", DB_NOARGS, &who);
	if (st == SHOP_OK)
		st = db_query(owner, "SELECT current_schema(), current_user", DB_NOARGS, &where);
	if (st != SHOP_OK)
		goto out;
	const char *role = db_result_text(who, 0, 0);
	const char *schema = db_result_text(where, 0, 0);
	if (!role || !schema) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	/* One role for both: it owns everything already. */
	if (strcmp(role, db_result_text(where, 0, 1)) == 0)
		goto out;
	st = db_query(owner, svc_grants_sql, DB_ARGS(schema, role), &grants);
	if (st == SHOP_OK)
		st = db_begin(owner);
	began = st == SHOP_OK;
	if (st == SHOP_OK)
		st = db_migration_lock(owner);
	for (int i = 0; i < 4 && st == SHOP_OK; i++)
		st = db_exec(owner, db_result_text(grants, 0, i), DB_NOARGS, NULL);
	if (st == SHOP_OK) {
		began = false;
		st = db_commit(owner);
	}
out:
	if (began)
		db_rollback(owner);
	db_result_free(who);
	db_result_free(where);
	db_result_free(grants);
	return st;
}

static shop_status svc_init_tx(struct svc_tx *tx, void *arg)
{
	const struct svc_spec *spec = arg;
	return spec->init(tx);
}

/* Migrations, on the owner's connection when there is one (closed once
 * done: the service keeps no session that can change the schema), then
 * the init hook as the runtime role; retried while the database is
 * unreachable. */
static shop_status svc_prepare_database(struct svc *svc)
{
	shop_status st = SHOP_E_UNAVAILABLE;
	struct db *db = svc_db_open_retrying(svc);
	struct db *owner = NULL;
	if (db && svc->db_owner_url)
		owner = svc_db_open_url_retrying(svc, svc->db_owner_url);
	while (db && (owner || !svc->db_owner_url) && !svc_stopping(svc)) {
		st = owner ? svc_migrate_owned(svc->spec, owner, db) : svc_migrate(svc->spec, db);
		if (st == SHOP_OK && svc->spec->init)
			st = svc_tx_run(svc, db, NULL, NULL, svc_init_tx, (void *)svc->spec);
		if (st != SHOP_E_UNAVAILABLE)
			break;
		log_warn(NULL, "database not ready for migrations: %s",
			 db_last_error(owner ? owner : db));
		svc_pause(svc, SVC_STARTUP_RETRY_MS);
	}
	if (st != SHOP_OK && db) {
		/* A runtime role without DDL rights cannot migrate: say which
		 * setting is missing rather than only "permission denied". */
		log_error(NULL, "migrations failed: %s%s",
			  owner ? db_last_error(owner) : db_last_error(db),
			  owner ? ""
				: " (if SHOP_DB_URL's role may not change the schema, "
				  "set SHOP_DB_OWNER_URL to the owner's)");
	}
	db_close(owner);
	db_close(db);
	return st;
}

shop_status svc_topology_declare(struct bus *bus, int replicas, const char *service)
{
	static const char *const dlq_subjects[] = { BUS_DEADLETTER_PREFIX ".>" };
	shop_status st = bus_ensure_stream(bus, BUS_DEADLETTER_STREAM, dlq_subjects, 1, replicas);
	for (size_t i = 0; i < ct_n_streams && st == SHOP_OK; i++)
		st = (ct_streams[i].workqueue
			      ? bus_ensure_work_queue
			      : bus_ensure_stream)(bus, ct_streams[i].name, ct_streams[i].subjects,
						   ct_streams[i].n_subjects, replicas);
	for (size_t i = 0; i < ct_n_consumers && st == SHOP_OK; i++) {
		const struct ct_consumer *c = &ct_consumers[i];
		if (!service || strcmp(c->service, service) == 0)
			st = bus_ensure_consumer(bus, c->stream, c->durable, c->filter_subjects,
						 c->n_filter_subjects);
	}
	return st;
}

/* Whether `service` publishes to or consumes from stream s. */
static bool svc_uses_stream(const char *service, const struct ct_stream *s)
{
	if (strcmp(s->owner, service) == 0)
		return true;
	for (size_t i = 0; i < ct_n_consumers; i++)
		if (strcmp(ct_consumers[i].service, service) == 0 &&
		    strcmp(ct_consumers[i].stream, s->name) == 0)
			return true;
	return false;
}

shop_status svc_topology_check(struct bus *bus, const char *service, const char **ret_missing)
{
	const char *missing = BUS_DEADLETTER_STREAM;
	shop_status st = bus_stream_state(bus, BUS_DEADLETTER_STREAM, NULL, NULL, NULL);
	for (size_t i = 0; i < ct_n_streams && st == SHOP_OK; i++) {
		if (!svc_uses_stream(service, &ct_streams[i]))
			continue;
		missing = ct_streams[i].name;
		st = bus_stream_state(bus, ct_streams[i].name, NULL, NULL, NULL);
	}
	for (size_t i = 0; i < ct_n_consumers && st == SHOP_OK; i++) {
		if (strcmp(ct_consumers[i].service, service) != 0)
			continue;
		missing = ct_consumers[i].stream;
		st = bus_consumer_pending(bus, ct_consumers[i].stream, ct_consumers[i].durable,
					  NULL, NULL);
	}
	if (st == SHOP_E_NOT_FOUND && ret_missing)
		*ret_missing = missing;
	return st;
}

/* A service with NATS credentials may not declare (its user has no right
 * to: infra/nats/auth.conf); it checks that the admin did. Without them it
 * is its own admin, on a broker without users. */
static shop_status svc_declare_topology(struct svc *svc)
{
	if (!bus_user(svc->bus))
		return svc_topology_declare(svc->bus, svc->replicas, svc->spec->name);
	const char *missing = NULL;
	shop_status st = svc_topology_check(svc->bus, svc->spec->name, &missing);
	if (st == SHOP_E_NOT_FOUND)
		log_warn(NULL,
			 "stream %s or a durable of %s on it is not declared: the admin declares "
			 "them (shopctl declare, the nats-init container in compose)",
			 missing, svc->spec->name);
	return st;
}

static void *svc_signal_main(void *arg)
{
	struct svc *svc = arg;
	sigset_t set;
	int sig = 0;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigwait(&set, &sig);
	log_info(NULL, "signal %d: stopping", sig);
	atomic_store(&svc->stopping, true);
	pthread_mutex_lock(&svc->lock);
	pthread_cond_broadcast(&svc->wake);
	pthread_mutex_unlock(&svc->lock);
	return NULL;
}

static void svc_start_workers(struct svc *svc)
{
	const struct svc_spec *spec = svc->spec;
	size_t durables = 0;
	for (size_t i = 0; i < ct_n_consumers; i++)
		if (strcmp(ct_consumers[i].service, spec->name) == 0)
			durables++;
	/* Several threads per durable work as replicas in one process do: each
	 * binds the durable, and JetStream hands each its own messages. */
	svc->n_consumers = durables * (size_t)svc->consumer_threads;
	svc->consumers = xcalloc(svc->n_consumers, sizeof(*svc->consumers));
	for (size_t i = 0, k = 0; i < ct_n_consumers; i++) {
		if (strcmp(ct_consumers[i].service, spec->name) != 0)
			continue;
		for (int t = 0; t < svc->consumer_threads; t++, k++) {
			svc->consumers[k] = (struct svc_consumer_thread){
				.svc = svc, .consumer = &ct_consumers[i], .first = t == 0
			};
			pthread_create(&svc->consumers[k].thread, NULL, svc_consumer_main,
				       &svc->consumers[k]);
		}
	}
	svc_metrics_bind_consumers(svc);
	pthread_create(&svc->relay_thread, NULL, svc_relay_main, svc);
	svc->relay_started = true;
	if (strncmp(svc->db_url, "sqlite:", strlen("sqlite:")) == 0) {
		pthread_create(&svc->checkpoint_thread, NULL, svc_checkpoint_main, svc);
		svc->checkpoint_started = true;
	}
	svc->n_tasks = spec->n_tasks;
	svc->tasks = xcalloc(spec->n_tasks, sizeof(*svc->tasks));
	for (size_t i = 0; i < spec->n_tasks; i++) {
		svc->tasks[i] = (struct svc_task_thread){ .svc = svc, .task = &spec->tasks[i] };
		pthread_create(&svc->tasks[i].thread, NULL, svc_task_main, &svc->tasks[i]);
	}
}

static void svc_join_workers(struct svc *svc)
{
	for (size_t i = 0; i < svc->n_consumers; i++)
		pthread_join(svc->consumers[i].thread, NULL);
	if (svc->relay_started)
		pthread_join(svc->relay_thread, NULL);
	if (svc->checkpoint_started)
		pthread_join(svc->checkpoint_thread, NULL);
	for (size_t i = 0; i < svc->n_tasks; i++)
		pthread_join(svc->tasks[i].thread, NULL);
}

/* Every later log line also goes out on logs.<service>.<level> (libs/bus),
 * named by the registry's instance id. Without it the service still logs to
 * stderr. */
static void svc_logs_on_bus(struct svc *svc)
{
	if (svc->registry)
		log_set_instance(bus_service_id(svc->registry));
	shop_status st = bus_log_start(svc->bus, svc->spec->name, &svc->bus_log);
	if (st != SHOP_OK) {
		log_warn(NULL, "log lines not published on NATS: %s", shop_status_name(st));
		return;
	}
	log_set_sink(bus_log_sink, svc->bus_log);
}

int svc_main(const struct svc_spec *spec)
{
	int rc = 1;
	int64_t port = 8080, replicas = SVC_STREAM_REPLICAS_DEFAULT, threads = 1;
	struct svc *svc = svc_new(spec);
	pthread_t signal_thread;

	int level = log_level_parse(config_str("SHOP_LOG_LEVEL", "info"));
	log_init(spec->name, level < 0 ? LOG_LVL_INFO : (enum log_level)level);
	xalloc_init_cjson();

	/* Signals go to the signal thread only: every thread created after
	 * this inherits the blocked mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_create(&signal_thread, NULL, svc_signal_main, svc);

	if (config_int("SHOP_HTTP_PORT", 8080, 1, 65535, &port) != SHOP_OK ||
	    config_int("SHOP_STREAM_REPLICAS", SVC_STREAM_REPLICAS_DEFAULT, 1,
		       SVC_STREAM_REPLICAS_MAX, &replicas) != SHOP_OK ||
	    config_int("SHOP_CONSUMER_THREADS", 1, 1, SVC_CONSUMER_THREADS_MAX, &threads) !=
		    SHOP_OK)
		goto out;
	svc->replicas = (int)replicas;
	svc->consumer_threads = (int)threads;
	svc->db_url = xstrdup(config_str("SHOP_DB_URL", spec->default_db_url));
	const char *owner_url = config_str("SHOP_DB_OWNER_URL", NULL);
	if (owner_url && strncmp(svc->db_url, "sqlite:", strlen("sqlite:")) == 0) {
		log_error(NULL, "SHOP_DB_OWNER_URL is for PostgreSQL; SHOP_DB_URL is SQLite");
		goto out;
	}
	if (owner_url)
		svc->db_owner_url = xstrdup(owner_url);
	/* Before anything else touches the file, and before the HTTP port, so
	 * a second instance says why it stops rather than "address in use". */
	char holder[DB_CLAIM_HOLDER_MAX];
	shop_status claimed = db_claim(svc->db_url, &svc->db_claim, holder, sizeof(holder));
	if (claimed == SHOP_E_CONFLICT) {
		log_error(NULL,
			  "refusing to start: %s is in use by another instance (%s). A service "
			  "on SQLite runs as one instance per database file; to run replicas, "
			  "use PostgreSQL (docs/configuration.md)",
			  svc->db_url, holder);
		goto out;
	}
	if (claimed != SHOP_OK) {
		log_error(NULL, "cannot claim the database file of %s: %s", svc->db_url, holder);
		goto out;
	}
	const char *nats_url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");

	shop_status (*start)(const char *, uint16_t, web_handler_fn, void *,
			     struct web_server **) = spec->http_pool ? web_server_start_pool
								     : web_server_start;
	if (start(config_str("SHOP_HTTP_BIND", "0.0.0.0"), (uint16_t)port, svc_http, svc,
		  &svc->web) != SHOP_OK) {
		log_error(NULL, "cannot listen on port %lld", (long long)port);
		goto out;
	}
	log_info(NULL, "starting: http port %lld, nats %s", (long long)port, nats_url);

	if (svc_prepare_database(svc) != SHOP_OK)
		goto out;
	if (bus_connect(nats_url, spec->name, &svc->bus) != SHOP_OK) {
		log_error(NULL, "cannot create a NATS connection to %s", nats_url);
		goto out;
	}
	/* The registry only subscribes, so it is done at once, connected or not;
	 * a service that cannot register still serves (it is merely not listed). */
	shop_status reg = bus_service_register(svc->bus, spec->name, SHOP_VERSION,
					       svc_registry_status, svc, &svc->registry);
	if (reg != SHOP_OK)
		log_warn(NULL, "not registered with the NATS service API: %s",
			 shop_status_name(reg));
	else
		log_info(NULL, "registered as instance %s", bus_service_id(svc->registry));
	svc_logs_on_bus(svc);
	while (!svc_stopping(svc) && svc_declare_topology(svc) != SHOP_OK) {
		log_warn(NULL, "streams not declared yet (is NATS up?); retrying");
		svc_pause(svc, SVC_STARTUP_RETRY_MS);
	}
	if (!svc_stopping(svc)) {
		svc_start_workers(svc);
		atomic_store(&svc->ready, true);
		log_info(NULL, "ready");
	}

	pthread_mutex_lock(&svc->lock);
	while (!svc_stopping(svc))
		pthread_cond_wait(&svc->wake, &svc->lock);
	pthread_mutex_unlock(&svc->lock);
	rc = 0;
out:
	atomic_store(&svc->stopping, true);
	pthread_mutex_lock(&svc->lock);
	pthread_cond_broadcast(&svc->wake);
	pthread_mutex_unlock(&svc->lock);
	svc_join_workers(svc);
	web_server_stop(svc->web);
	if (spec->stop)
		spec->stop(svc);
	/* Before the connection goes: a status request in flight uses svc. */
	bus_service_unregister(svc->registry);
	log_set_sink(NULL, NULL);
	bus_log_stop(svc->bus_log);
	bus_close(svc->bus);
	/* The signal thread may still wait in sigwait(): wake it. */
	pthread_kill(signal_thread, SIGTERM);
	pthread_join(signal_thread, NULL);
	log_info(NULL, "stopped");
	svc_destroy(svc);
	return rc;
}
