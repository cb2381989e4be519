/*
 * svc.c - the service runtime (see svc.h for what it does and why).
 *
 * Threads of a running service:
 *   main        starts everything, then waits for the stop flag
 *   signals     sigwait()s for SIGTERM/SIGINT and raises the stop flag
 *   consumer x  one per durable this service consumes (fetch, handle, settle)
 *   relay       publishes the outbox
 *   task x      one per periodic task
 *   HTTP        libmicrohttpd's, one per connection
 * Every thread that touches the database owns its connection (struct db is
 * not thread-safe); HTTP threads borrow one from a small pool.
 *
 * Invariants kept here:
 *   - a message is acked only after the transaction holding its effects and
 *     its inbox record committed, so a crash between the two redelivers it
 *     and the inbox turns the redelivery into a no-op;
 *   - an outbox row is marked published only after JetStream acked it, so a
 *     crash or a broker outage republishes it (deduplicated by Nats-Msg-Id).
 */
#include "svc.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	pthread_t thread;
};

struct svc_task_thread {
	struct svc *svc;
	const struct svc_task *task;
	pthread_t thread;
};

struct svc {
	const struct svc_spec *spec;
	char *db_url;
	struct bus *bus;
	int replicas;

	atomic_bool stopping;
	atomic_bool ready;
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t wake;  /* relay wake-up and stop notification */
	bool relay_pending;

	int64_t redeclared_at_ms; /* clock_mono_ms of the last re-declaration */
	atomic_llong outbox_parked; /* rows this process parked */

	/* Group commit (svc_tx_run_grouped): its own lock, so waiting writers
	 * never contend with the relay's wake-ups. */
	pthread_mutex_t group_lock;
	pthread_cond_t group_done;
	struct svc_group_item *group_head, *group_tail;
	bool group_leader;

	struct db *pool[SVC_DB_POOL_MAX];
	size_t pool_len;

	struct web_server *web;
	pthread_t relay_thread;
	bool relay_started;
	struct svc_consumer_thread *consumers;
	size_t n_consumers;
	struct svc_task_thread *tasks;
	size_t n_tasks;
};

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

/* ---- settling ---------------------------------------------------------- */

enum svc_settle svc_settle_decide(shop_status st, uint64_t deliveries)
{
	switch (st) {
	case SHOP_OK:
	case SHOP_E_DUPLICATE: /* only ever the inbox's: see svc_handle */
		return SVC_ACK;
	case SHOP_E_INVALID:
	case SHOP_E_LIMIT:
	case SHOP_E_NOT_FOUND:
	case SHOP_E_CONFLICT: /* a constraint the handler's writes broke */
		return SVC_DEAD_LETTER;
	case SHOP_E_NOT_READY:
	case SHOP_E_UNAVAILABLE:
	case SHOP_E_TIMEOUT:
	case SHOP_E_INTERNAL:
		/* Give up visibly, and early enough that a dead-letter copy
		 * that cannot be stored now still has deliveries left to be
		 * tried again before the server stops delivering. */
		return deliveries >= SVC_GIVE_UP_DELIVERY ? SVC_DEAD_LETTER : SVC_RETRY;
	}
	return SVC_DEAD_LETTER;
}

int64_t svc_retry_delay_ms(uint64_t deliveries)
{
	int64_t delay = SVC_RETRY_BASE_MS;
	for (uint64_t i = 1; i < deliveries && delay < SVC_RETRY_MAX_MS; i++)
		delay *= 2;
	return delay < SVC_RETRY_MAX_MS ? delay : SVC_RETRY_MAX_MS;
}

/* ---- emitting ---------------------------------------------------------- */

static void svc_relay_wake(struct svc *svc)
{
	pthread_mutex_lock(&svc->lock);
	svc->relay_pending = true;
	pthread_cond_broadcast(&svc->wake);
	pthread_mutex_unlock(&svc->lock);
}

shop_status svc_emit(struct svc_tx *tx, enum ct_message_id message, const char *subject,
		     const void *data)
{
	shop_status st = SHOP_E_INVALID;
	const struct ct_message *m = &ct_messages[message];
	cJSON *json = m->encode(data);
	void *check = xcalloc(1, m->data_size);
	char *payload = NULL;
	struct ct_errors errs = { 0 };
	struct evt_envelope env = { 0 };
	const struct evt_envelope *cause = tx->cause;

	if (strcmp(m->producer, tx->svc->spec->name) != 0) {
		log_error(NULL, "refusing to emit %s: the contracts name %s as its producer", m->name,
			  m->producer);
		goto out;
	}
	/* A producer never writes what its consumers would reject. */
	if (m->parse(json, check, &errs) != SHOP_OK) {
		log_error(NULL, "refusing to emit %s: data%s %s", m->name, errs.item[0].path,
			  errs.item[0].problem);
		goto out;
	}
	if (strlen(subject) == 0 || strlen(subject) > EVT_ATTR_MAX) {
		log_error(NULL, "refusing to emit %s: subject length %zu", m->name, strlen(subject));
		goto out;
	}

	ids_uuid7(env.id);
	snprintf(env.source, sizeof(env.source), "/shop/%s", tx->svc->spec->name);
	snprintf(env.type, sizeof(env.type), "%s", m->type);
	clock_rfc3339(clock_now_ms(), env.time);
	snprintf(env.subject, sizeof(env.subject), "%s", subject);
	const char *correlation = cause ? cause->correlationid : tx->correlation_id;
	snprintf(env.correlationid, sizeof(env.correlationid), "%s",
		 correlation && *correlation ? correlation : env.id);
	const char *causation = cause ? cause->id : tx->correlation_id;
	snprintf(env.causationid, sizeof(env.causationid), "%s",
		 causation && *causation ? causation : env.id);
	ids_traceparent_child(cause ? cause->traceparent : tx->traceparent, env.traceparent);

	/* Nor an envelope they would reject: its traceparent and correlation id
	 * can come from a client's headers. */
	if (evt_envelope_build(&env, json, &payload, &errs) != SHOP_OK) {
		log_error(NULL, "refusing to emit %s: envelope%s %s", m->name, errs.item[0].path,
			  errs.item[0].problem);
		goto out;
	}
	st = db_exec(tx->db,
		     "INSERT INTO outbox (event_id, subject, payload, created_at_ms) "
		     "VALUES ($1, $2, $3, $4)",
		     DB_ARGS(env.id, m->subject, payload, DB_I64(clock_now_ms())), NULL);
	if (st == SHOP_OK)
		tx->emitted++;
out:
	free(payload);
	free(check);
	cJSON_Delete(json);
	return st;
}

shop_status svc_tx_run(struct svc *svc, struct db *db, const char *correlation_id,
		       const char *traceparent, svc_tx_fn fn, void *arg)
{
	struct svc_tx tx = {
		.svc = svc,
		.db = db,
		.correlation_id = correlation_id,
		.traceparent = traceparent,
		.now_ms = clock_now_ms(),
	};
	shop_status st = db_begin(db);
	if (st != SHOP_OK)
		return st;
	st = fn(&tx, arg);
	if (st != SHOP_OK) {
		db_rollback(db);
		return st;
	}
	st = db_commit(db);
	if (st == SHOP_OK && tx.emitted > 0)
		svc_relay_wake(svc);
	return st;
}

/* ---- group commit ------------------------------------------------------- */

/* One caller's work waiting for, or inside, a shared transaction. */
struct svc_group_item {
	svc_tx_fn fn;
	void *arg;
	const char *correlation_id;
	const char *traceparent;
	shop_status st;
	bool done;
	struct svc_group_item *next;
};

/* Runs a group in one transaction, each item under its own savepoint, and
 * settles every item: its own failure, or the shared commit's outcome. */
static void svc_group_commit(struct svc *svc, struct svc_group_item *group)
{
	struct db *db = NULL;
	struct svc_group_item *it;
	int emitted = 0;
	bool alive = true;
	shop_status st = svc_db_acquire(svc, &db);
	if (st == SHOP_OK)
		st = db_begin(db);
	for (it = group; st == SHOP_OK && alive && it; it = it->next) {
		struct svc_tx tx = { .svc = svc,
				     .db = db,
				     .correlation_id = it->correlation_id,
				     .traceparent = it->traceparent,
				     .now_ms = clock_now_ms() };
		it->st = db_savepoint(db);
		if (it->st == SHOP_OK)
			it->st = it->fn(&tx, it->arg);
		if (it->st == SHOP_OK) {
			it->st = db_savepoint_release(db);
			alive = it->st == SHOP_OK;
			emitted += tx.emitted;
		} else {
			alive = db_savepoint_rollback(db) == SHOP_OK;
		}
		it->done = true; /* its status stands, unless the commit fails */
	}
	if (st == SHOP_OK && alive) {
		st = db_commit(db);
	} else if (st == SHOP_OK) {
		st = SHOP_E_UNAVAILABLE; /* an item lost the transaction */
		db_rollback(db);
	}
	for (it = group; it; it = it->next) {
		if (!it->done || (st != SHOP_OK && it->st == SHOP_OK))
			it->st = st;
		it->done = true;
	}
	if (st == SHOP_OK && emitted > 0 && svc->bus)
		svc_relay_wake(svc);
	svc_db_release(svc, db);
}

/*
 * Group commit, leader and followers: a caller queues its work; if no
 * transaction is being run it becomes the leader, takes everything queued
 * (up to SVC_GROUP_MAX) and runs it as one transaction; callers that arrive
 * meanwhile queue behind it, and the first of them leads the next group.
 * So one commit (one fsync) serves every request that came in while the
 * previous one was writing, and a lone request still commits at once.
 */
shop_status svc_tx_run_grouped(struct svc *svc, const char *correlation_id,
			       const char *traceparent, svc_tx_fn fn, void *arg)
{
	struct svc_group_item self = { .fn = fn, .arg = arg, .correlation_id = correlation_id,
				       .traceparent = traceparent };
	pthread_mutex_lock(&svc->group_lock);
	if (svc->group_tail)
		svc->group_tail->next = &self;
	else
		svc->group_head = &self;
	svc->group_tail = &self;
	while (!self.done) {
		if (svc->group_leader) {
			pthread_cond_wait(&svc->group_done, &svc->group_lock);
			continue;
		}
		svc->group_leader = true;
		struct svc_group_item *group = svc->group_head, *last = group;
		for (size_t n = 1; n < SVC_GROUP_MAX && last->next; n++)
			last = last->next;
		svc->group_head = last->next;
		if (!svc->group_head)
			svc->group_tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&svc->group_lock);
		svc_group_commit(svc, group);
		pthread_mutex_lock(&svc->group_lock);
		svc->group_leader = false;
		pthread_cond_broadcast(&svc->group_done);
	}
	pthread_mutex_unlock(&svc->group_lock);
	return self.st;
}

/* ---- handling one message --------------------------------------------- */

static const struct svc_route *svc_route_find(const struct svc_spec *spec,
					      enum ct_message_id id)
{
	for (size_t i = 0; i < spec->n_routes; i++)
		if (spec->routes[i].message == id)
			return &spec->routes[i];
	return NULL;
}

static bool svc_consumes(const struct svc_spec *spec, const struct ct_message *m)
{
	for (size_t i = 0; i < m->n_consumers; i++)
		if (strcmp(m->consumers[i], spec->name) == 0)
			return true;
	return false;
}

static void svc_reason_from_errors(const struct ct_errors *errs, const char *what, char *out,
				   size_t size)
{
	if (errs->len == 0) {
		snprintf(out, size, "%s", what);
		return;
	}
	snprintf(out, size, "%s: %s %s%s", what, errs->item[0].path[0] ? errs->item[0].path : "/",
		 errs->item[0].problem, errs->len + errs->dropped > 1 ? " (and more)" : "");
}

/* What a handler's status means to the settle table. SHOP_E_DUPLICATE there
 * means "the inbox has it": the one outcome that is acked after a rollback.
 * From a handler, DUPLICATE and CONFLICT are constraint violations of its
 * own writes (unique, CHECK, NOT NULL, foreign key): handlers write
 * insert-if-absent with ON CONFLICT DO NOTHING and guard their updates, so
 * a violation that reaches the runtime is a message this service cannot
 * apply, and it is dead-lettered with the database's words, not acked. */
static shop_status svc_handler_status(shop_status st, const struct ct_message *m, struct db *db,
				      char *reason, size_t reason_size)
{
	if (st != SHOP_E_DUPLICATE && st != SHOP_E_CONFLICT)
		return st;
	snprintf(reason, reason_size, "%s broke a constraint: %s", m->name, db_last_error(db));
	return SHOP_E_CONFLICT;
}

/* One message of a batch, from its bytes to its outcome. */
struct svc_item {
	const char *bus_subject; /* the subject it came on; NULL in tests */
	const char *json;
	size_t len;
	/* Decoded by svc_item_decode. */
	cJSON *root;
	struct evt_envelope env;
	const struct ct_message *m;
	svc_handler_fn handle;
	void *data;
	struct log_ids ids;
	/* What became of it: the status the settle table reads, and why. */
	shop_status st;
	char reason[SVC_REASON_MAX];
};

/* Decodes and checks one message against the contracts, outside any
 * transaction; a message that fails here is SHOP_E_INVALID with a reason. */
static shop_status svc_item_decode(struct svc *svc, struct svc_item *it)
{
	struct ct_errors errs = { 0 };
	if (evt_envelope_parse(it->json, it->len, &it->root, &it->env, &errs) != SHOP_OK) {
		svc_reason_from_errors(&errs, "malformed envelope", it->reason, sizeof(it->reason));
		return SHOP_E_INVALID;
	}
	it->ids.event_id = it->env.id;
	it->ids.correlation_id = it->env.correlationid;
	it->ids.order_id = it->env.subject;
	it->m = ct_message_by_type(it->env.type);
	if (!it->m) {
		snprintf(it->reason, sizeof(it->reason), "unknown type %s", it->env.type);
		return SHOP_E_INVALID;
	}
	if (it->bus_subject && strcmp(it->bus_subject, it->m->subject) != 0) {
		snprintf(it->reason, sizeof(it->reason), "type %s does not belong on subject %s",
			 it->env.type, it->bus_subject);
		return SHOP_E_INVALID;
	}
	if (!svc_consumes(svc->spec, it->m)) {
		snprintf(it->reason, sizeof(it->reason), "%s does not consume %s", svc->spec->name,
			 it->m->name);
		return SHOP_E_INVALID;
	}
	const struct svc_route *route = svc_route_find(svc->spec, it->m->id);
	it->handle = route ? route->handle : svc->spec->any_route;
	if (!it->handle) {
		snprintf(it->reason, sizeof(it->reason), "no handler for %s in %s", it->m->name,
			 svc->spec->name);
		return SHOP_E_INVALID;
	}
	it->data = xcalloc(1, it->m->data_size);
	if (it->m->parse(it->env.data, it->data, &errs) != SHOP_OK) {
		svc_reason_from_errors(&errs, "data violates the contract", it->reason,
				       sizeof(it->reason));
		return SHOP_E_INVALID;
	}
	return SHOP_OK;
}

/* Claims one decoded message in the inbox and runs its handler, inside the
 * batch's transaction and a savepoint of its own: a message that fails is
 * undone alone and the batch goes on. Returns false when the transaction
 * itself is lost (the connection, or SQLite's storage, failed): the batch
 * must be rolled back whole. */
static bool svc_item_apply(struct svc *svc, struct db *db, const char *consumer,
			   struct svc_item *it, int *emitted)
{
	struct svc_tx tx = { .svc = svc, .db = db, .cause = &it->env, .now_ms = clock_now_ms() };
	int64_t claimed = 0;
	shop_status st = db_savepoint(db);
	if (st != SHOP_OK) {
		it->st = st;
		snprintf(it->reason, sizeof(it->reason), "savepoint: %s", db_last_error(db));
		return false;
	}
	st = db_exec(db,
		     "INSERT INTO inbox (consumer, event_id, received_at_ms) VALUES ($1, $2, $3) "
		     "ON CONFLICT DO NOTHING",
		     DB_ARGS(consumer, it->env.id, DB_I64(tx.now_ms)), &claimed);
	if (st == SHOP_OK && claimed == 0)
		st = SHOP_E_DUPLICATE;
	else if (st == SHOP_OK)
		st = svc_handler_status(it->handle(&tx, it->data), it->m, db, it->reason,
					sizeof(it->reason));
	it->st = st;
	if (st == SHOP_OK) {
		st = db_savepoint_release(db);
		*emitted += tx.emitted;
		if (st != SHOP_OK) {
			it->st = st;
			snprintf(it->reason, sizeof(it->reason), "release: %s", db_last_error(db));
		}
		return st == SHOP_OK;
	}
	if (!it->reason[0])
		snprintf(it->reason, sizeof(it->reason), "%s: %s", it->m->name, shop_status_name(st));
	return db_savepoint_rollback(db) == SHOP_OK;
}

/*
 * Handles a fetched batch in ONE transaction: each message is decoded and
 * checked, then claimed and handled under a savepoint of its own, and the
 * batch commits once. One commit (one fsync) for the whole batch is what
 * makes a durable consumer fast; savepoints keep a failing message from
 * taking the others with it. Every item ends with a status for the settle
 * table: a message is acked only if the commit holding its effects
 * succeeded, so a failed commit or a lost transaction turns every handled
 * item back into SHOP_E_UNAVAILABLE (retried; the inbox makes the retry
 * safe).
 */
static void svc_handle_batch(struct svc *svc, struct db *db, const char *consumer,
			     struct svc_item *items, size_t n)
{
	size_t decoded = 0, i = 0;
	int emitted = 0;
	for (i = 0; i < n; i++) {
		items[i].reason[0] = '\0';
		items[i].st = svc_item_decode(svc, &items[i]);
		decoded += items[i].st == SHOP_OK;
	}
	if (decoded == 0)
		goto out;
	shop_status st = db_begin(db);
	if (st != SHOP_OK) {
		for (i = 0; i < n; i++)
			if (items[i].st == SHOP_OK) {
				items[i].st = st;
				snprintf(items[i].reason, sizeof(items[i].reason), "begin: %s",
					 db_last_error(db));
			}
		goto out;
	}
	bool alive = true;
	for (i = 0; i < n && alive; i++)
		if (items[i].st == SHOP_OK)
			alive = svc_item_apply(svc, db, consumer, &items[i], &emitted);
	if (alive) {
		st = db_commit(db);
	} else {
		/* Item i-1 lost the transaction; the ones after it were not tried. */
		st = SHOP_E_UNAVAILABLE;
		db_rollback(db);
		for (; i < n; i++)
			if (items[i].st == SHOP_OK)
				items[i].st = SHOP_E_UNAVAILABLE;
	}
	if (st != SHOP_OK) {
		emitted = 0;
		for (i = 0; i < n; i++)
			if (items[i].st == SHOP_OK) {
				items[i].st = st == SHOP_E_UNAVAILABLE ? st : SHOP_E_INTERNAL;
				snprintf(items[i].reason, sizeof(items[i].reason),
					 "batch not committed: %s", db_last_error(db));
			}
	}
	if (emitted > 0 && svc->bus)
		svc_relay_wake(svc);
out:
	for (i = 0; i < n; i++) {
		struct svc_item *it = &items[i];
		if (it->st == SHOP_OK)
			log_debug(&it->ids, "handled %s", it->m->name);
		else if (it->st != SHOP_E_DUPLICATE)
			log_warn(&it->ids, "%s (%s)", it->reason, shop_status_name(it->st));
	}
}

static void svc_items_release(struct svc_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].data);
		cJSON_Delete(items[i].root);
	}
}

shop_status svc_handle_envelopes(struct svc *svc, struct db *db, const char *consumer,
				 const char *const *jsons, size_t n, shop_status *ret_statuses)
{
	if (n > SVC_FETCH_BATCH)
		return SHOP_E_LIMIT;
	struct svc_item *items = xcalloc(n ? n : 1, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		items[i].json = jsons[i];
		items[i].len = strlen(jsons[i]);
	}
	svc_handle_batch(svc, db, consumer, items, n);
	for (size_t i = 0; i < n; i++)
		ret_statuses[i] = items[i].st;
	svc_items_release(items, n);
	free(items);
	return SHOP_OK;
}

shop_status svc_handle_envelope(struct svc *svc, struct db *db, const char *consumer,
				const char *json, size_t len, char *ret_reason, size_t reason_size)
{
	struct svc_item it = { .json = json, .len = len };
	svc_handle_batch(svc, db, consumer, &it, 1);
	snprintf(ret_reason, reason_size, "%s", it.reason);
	svc_items_release(&it, 1);
	return it.st;
}

static void svc_settle(struct svc *svc, struct bus_consumer *bc, struct bus_msg *msg,
		       shop_status st, const char *reason)
{
	uint64_t deliveries = bus_msg_deliveries(msg);
	switch (svc_settle_decide(st, deliveries)) {
	case SVC_ACK:
		bus_msg_ack(msg);
		return;
	case SVC_RETRY:
		bus_msg_nak(msg, svc_retry_delay_ms(deliveries));
		return;
	case SVC_DEAD_LETTER: {
		static const char gave_up[] = " (gave up after the last allowed delivery)";
		char full[SVC_REASON_MAX + sizeof(gave_up)];
		snprintf(full, sizeof(full), "%s%s", reason,
			 st == SHOP_E_INVALID || st == SHOP_E_LIMIT || st == SHOP_E_NOT_FOUND
				 ? ""
				 : gave_up);
		log_error(NULL, "dead-lettering %s seq %llu: %s", bus_msg_subject(msg),
			  (unsigned long long)bus_msg_stream_seq(msg), full);
		if (bus_msg_dead_letter(svc->bus, bc, msg, full) == SHOP_OK)
			return;
		/* The copy could not be stored: keep the message. It comes back
		 * after the delay, on one of the spare deliveries, and we try
		 * again. Past the last one the server keeps it but stops
		 * delivering: say so loudly, with what an operator needs. */
		if (deliveries >= BUS_MAX_DELIVER)
			log_error(NULL,
				  "%s seq %llu: delivered %llu times and not dead-lettered; "
				  "the server will not deliver it again: republish it by hand",
				  bus_msg_subject(msg), (unsigned long long)bus_msg_stream_seq(msg),
				  (unsigned long long)deliveries);
		bus_msg_nak(msg, SVC_RETRY_MAX_MS);
		return;
	}
	}
}

/* ---- threads ----------------------------------------------------------- */

static shop_status svc_declare_topology(struct svc *svc);

/* The broker said a stream or durable is not there (it lost its store, or
 * was replaced by an empty one): declare everything again, as at start-up.
 * Several threads notice at once, so it runs at most once every
 * SVC_REDECLARE_INTERVAL_MS; declaring is idempotent. */
static void svc_topology_lost(struct svc *svc)
{
	int64_t now = clock_mono_ms();
	pthread_mutex_lock(&svc->lock);
	bool due = svc->redeclared_at_ms == 0 || now - svc->redeclared_at_ms >= SVC_REDECLARE_INTERVAL_MS;
	if (due)
		svc->redeclared_at_ms = now;
	pthread_mutex_unlock(&svc->lock);
	if (!due || !bus_is_connected(svc->bus))
		return;
	shop_status st = svc_declare_topology(svc);
	if (st == SHOP_OK)
		log_warn(NULL, "a stream or durable was missing on the broker: topology declared again");
	else
		log_warn(NULL, "declaring the topology again: %s", shop_status_name(st));
}

static bool svc_stopping(struct svc *svc)
{
	return atomic_load(&svc->stopping);
}

/* Sleeps up to ms, waking early when the service stops. */
static void svc_pause(struct svc *svc, int64_t ms)
{
	struct timespec until = clock_mono_deadline(ms);
	pthread_mutex_lock(&svc->lock);
	while (!svc_stopping(svc) &&
	       pthread_cond_timedwait(&svc->wake, &svc->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&svc->lock);
}

/* Opens a connection, retrying until it works or the service stops. */
static struct db *svc_db_open_retrying(struct svc *svc)
{
	while (!svc_stopping(svc)) {
		struct db *db = NULL;
		if (db_open(svc->db_url, &db) == SHOP_OK)
			return db;
		log_warn(NULL, "database not reachable yet: %s", db_last_error(db));
		db_close(db);
		svc_pause(svc, SVC_STARTUP_RETRY_MS);
	}
	return NULL;
}

/* While our own database is down, fetching would only spend deliveries: a
 * message that failed for that reason MaxDeliver times would be dead-lettered
 * though nothing is wrong with it. So the consumer stops fetching until the
 * database answers again, however long that takes. */
static void svc_wait_for_db(struct svc *svc, struct db *db)
{
	log_warn(NULL, "database unreachable: %s; consuming paused", db_last_error(db));
	while (!svc_stopping(svc) && db_ping(db) != SHOP_OK)
		svc_pause(svc, SVC_STARTUP_RETRY_MS);
	if (!svc_stopping(svc))
		log_info(NULL, "database reachable again; consuming resumed");
}

static void *svc_consumer_main(void *arg)
{
	struct svc_consumer_thread *ct = arg;
	struct svc *svc = ct->svc;
	const struct ct_consumer *cons = ct->consumer;
	struct db *db = svc_db_open_retrying(svc);
	struct bus_consumer *bc = NULL;
	struct svc_item *items = xcalloc(SVC_FETCH_BATCH, sizeof(*items));

	while (db && !svc_stopping(svc)) {
		if (!bc) {
			/* Re-declare before binding: a broker that lost its state
			 * (a new node, a wiped volume) gets the durable back, and
			 * the streams too when it lost those. */
			shop_status bst = bus_ensure_consumer(svc->bus, cons->stream, cons->durable,
							      cons->filter_subjects,
							      cons->n_filter_subjects);
			if (bst == SHOP_OK)
				bst = bus_consumer_open(svc->bus, cons->stream, cons->durable, &bc);
			if (bst != SHOP_OK) {
				if (bst == SHOP_E_NOT_FOUND)
					svc_topology_lost(svc);
				svc_pause(svc, SVC_STARTUP_RETRY_MS);
				continue;
			}
		}
		struct bus_msg **msgs = NULL;
		size_t n = 0;
		shop_status st = bus_fetch(bc, SVC_FETCH_BATCH, SVC_FETCH_WAIT_MS, &msgs, &n);
		if (st != SHOP_OK) {
			if (st == SHOP_E_NOT_FOUND || st == SHOP_E_INTERNAL) {
				bus_consumer_close(bc);
				bc = NULL;
			}
			svc_pause(svc, SVC_FETCH_ERROR_PAUSE_MS);
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			items[i] = (struct svc_item){ .bus_subject = bus_msg_subject(msgs[i]) };
			items[i].json = bus_msg_data(msgs[i], &items[i].len);
		}
		svc_handle_batch(svc, db, cons->durable, items, n);
		/* Unavailable and our own database does not answer: not the
		 * messages' fault. Hand them back and wait for the database. */
		bool db_down = false;
		for (size_t i = 0; i < n && !db_down; i++)
			db_down = items[i].st == SHOP_E_UNAVAILABLE && db_ping(db) != SHOP_OK;
		for (size_t i = 0; i < n; i++) {
			if (db_down && items[i].st == SHOP_E_UNAVAILABLE)
				bus_msg_nak(msgs[i], SVC_DB_DOWN_REDELIVERY_MS);
			else
				svc_settle(svc, bc, msgs[i], items[i].st, items[i].reason);
		}
		svc_items_release(items, n);
		bus_msgs_free(msgs, n);
		if (db_down)
			svc_wait_for_db(svc, db);
	}
	bus_consumer_close(bc);
	db_close(db);
	free(items);
	return NULL;
}

/* Whether a publish failure is JetStream refusing the message itself (it
 * will refuse it again), as opposed to the broker being away or slow. */
static bool svc_relay_refused(shop_status st)
{
	return st == SHOP_E_LIMIT || st == SHOP_E_INVALID || st == SHOP_E_INTERNAL;
}

/* Counts one refusal of an outbox row; the SVC_RELAY_MAX_ATTEMPTS-th parks
 * it. Returns SHOP_OK and *ret_parked when it was parked by this call. */
static shop_status svc_relay_note_refusal(struct db *db, const char *id, shop_status why,
					  int64_t now_ms, bool *ret_parked)
{
	struct db_result *r = NULL;
	char error[SVC_RELAY_ERROR_MAX];
	snprintf(error, sizeof(error), "JetStream refused it: %s", shop_status_name(why));
	shop_status st = db_query(db,
				  "UPDATE outbox SET attempts = attempts + 1, last_error = $2, "
				  "parked_at_ms = CASE WHEN attempts + 1 >= CAST($3 AS BIGINT) "
				  "THEN CAST($4 AS BIGINT) ELSE NULL END "
				  "WHERE id = $1 RETURNING parked_at_ms",
				  DB_ARGS(id, error, DB_I64(SVC_RELAY_MAX_ATTEMPTS), DB_I64(now_ms)), &r);
	*ret_parked = st == SHOP_OK && db_result_rows(r) == 1 && db_result_text(r, 0, 0) != NULL;
	db_result_free(r);
	return st;
}

/* Marks every row of the batch that JetStream stored with ONE statement: the
 * ids travel as one array parameter (a PostgreSQL array literal, or a JSON
 * array that SQLite's json_each reads), so the SQL text stays fixed and is
 * prepared once, and a batch of 256 costs one round trip, not 256. */
static shop_status svc_relay_mark_published(struct db *db, bool pg, const struct db_result *rows,
					    const shop_status *results, int n, const char *now)
{
	/* Each id is at most 20 digits plus a separator. */
	char *ids = xmalloc((size_t)n * (DB_I64_SIZE + 1) + 3);
	size_t len = 0, marked = 0;
	ids[len++] = pg ? '{' : '[';
	for (int i = 0; i < n; i++) {
		if (results[i] != SHOP_OK)
			continue;
		const char *id = db_result_text(rows, i, 0);
		size_t id_len = strlen(id);
		if (marked++ > 0)
			ids[len++] = ',';
		memcpy(ids + len, id, id_len);
		len += id_len;
	}
	ids[len++] = pg ? '}' : ']';
	ids[len] = '\0';
	shop_status st = SHOP_OK;
	if (marked > 0)
		st = db_exec(db,
			     pg ? "UPDATE outbox SET published_at_ms = $1 "
				  "WHERE id = ANY (CAST($2 AS BIGINT[]))"
				: "UPDATE outbox SET published_at_ms = $1 "
				  "WHERE id IN (SELECT value FROM json_each($2))",
			     DB_ARGS(now, ids), NULL);
	free(ids);
	return st;
}

/* One relay round: publishes up to SVC_RELAY_BATCH unpublished rows in id
 * order, marks the ones JetStream stored, and counts a refusal against each
 * row JetStream refused (parking it after SVC_RELAY_MAX_ATTEMPTS). A row
 * that merely timed out is retried without counting: the broker being away
 * says nothing about the row. *ret_rows is how many rows it read,
 * *ret_failed how many are still to publish, *ret_broker_lost whether a
 * failure looked like a missing stream. */
static shop_status svc_relay_round(struct svc *svc, struct db *db, size_t *ret_rows,
				   size_t *ret_failed, bool *ret_broker_lost)
{
	shop_status st;
	struct db_result *rows = NULL;
	struct bus_out *out = NULL;
	shop_status *results = NULL;
	/* On PostgreSQL, replicas share the table: lock the batch so two
	 * relays never publish the same rows at once. SQLite services run one
	 * instance per file, and holding SQLite's single write lock while
	 * publishing would stall every writer, so there the read is unlocked. */
	bool pg = db_backend_of(db) == DB_POSTGRES;
	const char *select_sql =
		pg ? "SELECT id, event_id, subject, payload FROM outbox "
		     "WHERE published_at_ms IS NULL AND parked_at_ms IS NULL "
		     "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
		   : "SELECT id, event_id, subject, payload FROM outbox "
		     "WHERE published_at_ms IS NULL AND parked_at_ms IS NULL "
		     "ORDER BY id LIMIT $1";

	*ret_rows = 0;
	*ret_failed = 0;
	*ret_broker_lost = false;
	if (pg && (st = db_begin(db)) != SHOP_OK)
		return st;
	st = db_query(db, select_sql, DB_ARGS(DB_I64(SVC_RELAY_BATCH)), &rows);
	if (st != SHOP_OK)
		goto out;
	int n = db_result_rows(rows);
	if (n == 0)
		goto out;
	out = xcalloc((size_t)n, sizeof(*out));
	results = xcalloc((size_t)n, sizeof(*results));
	for (int i = 0; i < n; i++) {
		out[i].msg_id = db_result_text(rows, i, 1);
		out[i].subject = db_result_text(rows, i, 2);
		out[i].data = db_result_text(rows, i, 3);
		out[i].len = strlen(out[i].data);
	}
	bus_publish_batch(svc->bus, out, (size_t)n, results);

	if (!pg && (st = db_begin(db)) != SHOP_OK)
		goto out;
	int64_t now_ms = clock_now_ms();
	char now[DB_I64_SIZE];
	db_i64_format(now, now_ms);
	st = svc_relay_mark_published(db, pg, rows, results, n, now);
	for (int i = 0; i < n && st == SHOP_OK; i++) {
		const char *id = db_result_text(rows, i, 0);
		if (results[i] == SHOP_OK)
			continue;
		(*ret_failed)++;
		if (results[i] == SHOP_E_UNAVAILABLE || results[i] == SHOP_E_NOT_FOUND)
			*ret_broker_lost = true;
		if (!svc_relay_refused(results[i]))
			continue;
		bool parked = false;
		st = svc_relay_note_refusal(db, id, results[i], now_ms, &parked);
		if (parked) {
			atomic_fetch_add(&svc->outbox_parked, 1);
			log_error(NULL,
				  "outbox row %s (event %s on %s) parked after %d refusals (%s): "
				  "the relay goes on without it; see docs/runbook.md to republish it",
				  id, out[i].msg_id, out[i].subject, SVC_RELAY_MAX_ATTEMPTS,
				  shop_status_name(results[i]));
		}
	}
	if (st == SHOP_OK)
		st = db_commit(db);
	else
		db_rollback(db);
	*ret_rows = (size_t)n;
	pg = false; /* committed or rolled back above */
out:
	if (pg)
		db_rollback(db);
	free(out);
	free(results);
	db_result_free(rows);
	return st;
}

shop_status svc_purge(struct db *db, int64_t now_ms, int64_t outbox_retention_ms,
		      int64_t *ret_outbox_purged, int64_t *ret_inbox_purged)
{
	int64_t outbox_purged = 0, inbox_purged = 0;
	shop_status st = db_exec(db, "DELETE FROM outbox WHERE published_at_ms IS NOT NULL "
				     "AND published_at_ms < $1",
				 DB_ARGS(DB_I64(now_ms - outbox_retention_ms)), &outbox_purged);
	if (st == SHOP_OK)
		st = db_exec(db, "DELETE FROM inbox WHERE received_at_ms < $1",
			     DB_ARGS(DB_I64(now_ms - SVC_INBOX_RETENTION_MS)), &inbox_purged);
	if (ret_outbox_purged)
		*ret_outbox_purged = outbox_purged;
	if (ret_inbox_purged)
		*ret_inbox_purged = inbox_purged;
	return st;
}

static void svc_relay_purge(struct db *db, int64_t retention_ms)
{
	int64_t outbox_purged = 0, inbox_purged = 0;
	if (svc_purge(db, clock_now_ms(), retention_ms, &outbox_purged, &inbox_purged) != SHOP_OK)
		log_warn(NULL, "purging the outbox and inbox: %s", db_last_error(db));
	else if (outbox_purged || inbox_purged)
		log_info(NULL, "purged %lld published outbox rows and %lld inbox records",
			 (long long)outbox_purged, (long long)inbox_purged);
}

static void *svc_relay_main(void *arg)
{
	struct svc *svc = arg;
	struct db *db = svc_db_open_retrying(svc);
	int64_t retention_ms = SVC_OUTBOX_RETENTION_MS;
	int64_t last_purge = clock_mono_ms();

	config_int("SHOP_OUTBOX_RETENTION_MS", SVC_OUTBOX_RETENTION_MS, 0, INT64_MAX / 2,
		   &retention_ms);
	while (db && !svc_stopping(svc)) {
		size_t rows = 0, failed = 0;
		bool broker_lost = false;
		shop_status st = svc_relay_round(svc, db, &rows, &failed, &broker_lost);
		if (broker_lost)
			svc_topology_lost(svc);
		if (st != SHOP_OK || failed > 0) {
			if (st != SHOP_OK)
				log_warn(NULL, "outbox relay: %s", db_last_error(db));
			else
				log_warn(NULL, "outbox relay: %zu of %zu events not yet stored, retrying",
					 failed, rows);
			svc_pause(svc, SVC_FETCH_ERROR_PAUSE_MS);
			continue;
		}
		if (clock_mono_ms() - last_purge >= SVC_PURGE_INTERVAL_MS) {
			svc_relay_purge(db, retention_ms);
			last_purge = clock_mono_ms();
		}
		if (rows == SVC_RELAY_BATCH)
			continue; /* more waiting: no sleep */
		/* Sleep until a commit wakes us, or poll as a fallback (rows
		 * written by another replica, or by a crashed predecessor). */
		struct timespec until = clock_mono_deadline(SVC_RELAY_POLL_MS);
		pthread_mutex_lock(&svc->lock);
		while (!svc->relay_pending && !svc_stopping(svc) &&
		       pthread_cond_timedwait(&svc->wake, &svc->lock, &until) != ETIMEDOUT)
			;
		svc->relay_pending = false;
		pthread_mutex_unlock(&svc->lock);
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

shop_status svc_db_acquire(struct svc *svc, struct db **ret_db)
{
	struct db *db = NULL;
	pthread_mutex_lock(&svc->lock);
	if (svc->pool_len > 0)
		db = svc->pool[--svc->pool_len];
	pthread_mutex_unlock(&svc->lock);
	if (!db) {
		shop_status st = db_open(svc->db_url, &db);
		if (st != SHOP_OK) {
			db_close(db);
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
	if (svc->pool_len < SVC_DB_POOL_MAX) {
		svc->pool[svc->pool_len++] = db;
		db = NULL;
	}
	pthread_mutex_unlock(&svc->lock);
	db_close(db);
}

/* ---- HTTP: probes, then the service's routes --------------------------- */

static void svc_http(void *ctx, const struct web_request *req, struct web_response *res)
{
	struct svc *svc = ctx;
	const char *path = web_request_path(req);

	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
		if (strcmp(web_request_method(req), "GET") != 0) {
			web_response_header(res, "Allow", "GET");
			web_respond_error(res, 405, "method_not_allowed", "use GET", NULL);
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
		/* Ready: schema migrated and streams declared, database and
		 * broker reachable now. */
		struct db *db = NULL;
		bool db_ok = svc_db_acquire(svc, &db) == SHOP_OK && db_ping(db) == SHOP_OK;
		svc_db_release(svc, db);
		bool bus_ok = svc->bus && bus_is_connected(svc->bus);
		bool started = atomic_load(&svc->ready);
		cJSON_AddBoolToObject(body, "database", db_ok);
		cJSON_AddBoolToObject(body, "broker", bus_ok);
		cJSON_AddBoolToObject(body, "started", started);
		bool ok = db_ok && bus_ok && started;
		cJSON_AddStringToObject(body, "status", ok ? "ready" : "not_ready");
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

/* ---- startup and shutdown ---------------------------------------------- */

static struct svc *svc_new(const struct svc_spec *spec)
{
	struct svc *svc = xcalloc(1, sizeof(*svc));
	svc->spec = spec;
	pthread_mutex_init(&svc->lock, NULL);
	clock_cond_init(&svc->wake);
	pthread_mutex_init(&svc->group_lock, NULL);
	pthread_cond_init(&svc->group_done, NULL);
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
	pthread_mutex_destroy(&svc->group_lock);
	pthread_cond_destroy(&svc->group_done);
	free(svc->consumers);
	free(svc->tasks);
	free(svc->db_url);
	free(svc);
}

shop_status svc_migrate(const struct svc_spec *spec, struct db *db)
{
	shop_status st = db_migrate(db, svc_runtime_migrations,
				    sizeof(svc_runtime_migrations) / sizeof(svc_runtime_migrations[0]));
	if (st == SHOP_OK)
		st = db_migrate(db, spec->migrations, spec->n_migrations);
	return st;
}

static shop_status svc_init_tx(struct svc_tx *tx, void *arg)
{
	const struct svc_spec *spec = arg;
	return spec->init(tx);
}

/* Migrations and the init hook, retried while the database is unreachable. */
static shop_status svc_prepare_database(struct svc *svc)
{
	shop_status st = SHOP_E_UNAVAILABLE;
	struct db *db = svc_db_open_retrying(svc);
	while (db && !svc_stopping(svc)) {
		st = svc_migrate(svc->spec, db);
		if (st == SHOP_OK && svc->spec->init)
			st = svc_tx_run(svc, db, NULL, NULL, svc_init_tx, (void *)svc->spec);
		if (st != SHOP_E_UNAVAILABLE)
			break;
		log_warn(NULL, "database not ready for migrations: %s", db_last_error(db));
		svc_pause(svc, SVC_STARTUP_RETRY_MS);
	}
	if (st != SHOP_OK && db)
		log_error(NULL, "migrations failed: %s", db_last_error(db));
	db_close(db);
	return st;
}

/* Every stream of the contracts index plus the dead-letter stream, then
 * this service's durables. Each service declares all streams so that any
 * start order works; the calls are idempotent. */
static shop_status svc_declare_topology(struct svc *svc)
{
	static const char *const dlq_subjects[] = { BUS_DEADLETTER_PREFIX ".>" };
	shop_status st = bus_ensure_stream(svc->bus, BUS_DEADLETTER_STREAM, dlq_subjects, 1,
					   svc->replicas);
	for (size_t i = 0; i < ct_n_streams && st == SHOP_OK; i++)
		st = bus_ensure_stream(svc->bus, ct_streams[i].name, ct_streams[i].subjects,
				       ct_streams[i].n_subjects, svc->replicas);
	for (size_t i = 0; i < ct_n_consumers && st == SHOP_OK; i++) {
		const struct ct_consumer *c = &ct_consumers[i];
		if (strcmp(c->service, svc->spec->name) == 0)
			st = bus_ensure_consumer(svc->bus, c->stream, c->durable, c->filter_subjects,
						 c->n_filter_subjects);
	}
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
	for (size_t i = 0; i < ct_n_consumers; i++)
		if (strcmp(ct_consumers[i].service, spec->name) == 0)
			svc->n_consumers++;
	svc->consumers = xcalloc(svc->n_consumers, sizeof(*svc->consumers));
	for (size_t i = 0, k = 0; i < ct_n_consumers; i++) {
		if (strcmp(ct_consumers[i].service, spec->name) != 0)
			continue;
		svc->consumers[k] = (struct svc_consumer_thread){ .svc = svc, .consumer = &ct_consumers[i] };
		pthread_create(&svc->consumers[k].thread, NULL, svc_consumer_main, &svc->consumers[k]);
		k++;
	}
	pthread_create(&svc->relay_thread, NULL, svc_relay_main, svc);
	svc->relay_started = true;
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
	for (size_t i = 0; i < svc->n_tasks; i++)
		pthread_join(svc->tasks[i].thread, NULL);
}

int svc_main(const struct svc_spec *spec)
{
	int rc = 1;
	int64_t port = 8080, replicas = 1;
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
	    config_int("SHOP_STREAM_REPLICAS", 1, 1, 5, &replicas) != SHOP_OK)
		goto out;
	svc->replicas = (int)replicas;
	svc->db_url = xstrdup(config_str("SHOP_DB_URL", spec->default_db_url));
	const char *nats_url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");

	if (web_server_start(config_str("SHOP_HTTP_BIND", "0.0.0.0"), (uint16_t)port, svc_http, svc,
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
	bus_close(svc->bus);
	/* The signal thread may still wait in sigwait(): wake it. */
	pthread_kill(signal_thread, SIGTERM);
	pthread_join(signal_thread, NULL);
	log_info(NULL, "stopped");
	svc_destroy(svc);
	return rc;
}
