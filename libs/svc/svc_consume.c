/*
 * svc_consume.c - consuming: one thread per durable fetches a batch, handles
 * it in one database transaction and settles every message.
 *
 * Invariant: a message is acked only after the transaction holding its
 * effects and its inbox record committed, so a crash between the two
 * redelivers it and the inbox turns the redelivery into a no-op. Settling is
 * a decision table (svc_settle_decide): ack, retry with backoff, or
 * dead-letter with the reason.
 */
#include "svc_private.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "evt/ct_versions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- settling ---------------------------------------------------------- */

enum svc_settle svc_settle_decide(shop_status st, uint64_t deliveries)
{
	switch (st) {
	case SHOP_OK:
	case SHOP_E_DUPLICATE: /* only ever the inbox's: see svc_handler_status */
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

/* ---- handling one message --------------------------------------------- */

static const struct svc_route *svc_route_find(const struct svc_spec *spec, enum ct_message_id id)
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
	/* The first try's claim (svc_batch_claim): the inbox took its event id. */
	bool claimed;
	/* What became of it: the status the settle table reads, and why. */
	shop_status st;
	char reason[SVC_REASON_MAX];
};

/* An older major version the service has no route for is read as the
 * newest it can be upgraded to (libs/evt/ct_versions.h): the handler of
 * OrderPlaced v2 also gets the stored v1s, without their card token. What
 * the old struct held is wiped before it is freed, so a dropped field (the
 * token) does not linger in freed memory. it->m becomes the message the
 * data now is; the checks above (subject, source, consumer) were made on
 * the one that arrived. */
static void svc_item_upgrade(const struct svc_spec *spec, struct svc_item *it)
{
	const struct ct_upgrade *up;
	while (!svc_route_find(spec, it->m->id) && (up = ct_upgrade_find(it->m->id)) != NULL) {
		const struct ct_message *to = &ct_messages[up->to];
		void *newer = xcalloc(1, to->data_size);
		up->upgrade(it->data, newer);
		explicit_bzero(it->data, it->m->data_size);
		free(it->data);
		it->data = newer;
		it->m = to;
	}
}

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
	/* Who sent it: the producer the contracts name for its type, whose
	 * source ("/shop/<service>") the runtime stamps on every event it
	 * emits. Anything else is a forgery, or a bug in whoever sent it;
	 * either way not the producer's word, so it is refused for good. */
	if (strcmp(it->env.source, it->m->source) != 0) {
		snprintf(it->reason, sizeof(it->reason), "source %s is not the producer of %s (%s)",
			 it->env.source, it->env.type, it->m->source);
		return SHOP_E_INVALID;
	}
	if (!svc_consumes(svc->spec, it->m)) {
		snprintf(it->reason, sizeof(it->reason), "%s does not consume %s", svc->spec->name,
			 it->m->name);
		return SHOP_E_INVALID;
	}
	it->data = xcalloc(1, it->m->data_size);
	if (it->m->parse(it->env.data, it->data, &errs) != SHOP_OK) {
		svc_reason_from_errors(&errs, "data violates the contract", it->reason,
				       sizeof(it->reason));
		return SHOP_E_INVALID;
	}
	svc_item_upgrade(svc->spec, it);
	const struct svc_route *route = svc_route_find(svc->spec, it->m->id);
	it->handle = route ? route->handle : svc->spec->any_route;
	if (!it->handle) {
		snprintf(it->reason, sizeof(it->reason), "no handler for %s v%d in %s", it->m->name,
			 it->m->version, svc->spec->name);
		return SHOP_E_INVALID;
	}
	return SHOP_OK;
}

/* What became of one message's try inside the batch's transaction. */
enum svc_apply {
	SVC_APPLY_DONE,   /* handled, or found in the inbox: nothing to undo */
	SVC_APPLY_FAILED, /* it->st says why; see svc_item_apply for what was undone */
	SVC_APPLY_LOST,   /* the transaction itself is gone: roll the batch back */
};

/* Claims one decoded message in the inbox and runs its handler inside the
 * batch's transaction, its events kept in ROWS. Careful, it runs under a
 * savepoint of its own and its rows are written before the savepoint is
 * released, so a message that fails (its rows included) is undone alone and
 * the batch goes on (FAILED); LOST when even the savepoint cannot be taken
 * or undone (the connection, or SQLite's storage, failed). Not careful,
 * there is no savepoint and the rows wait for the end of the batch; a
 * FAILED message leaves the transaction holding part of its writes: the
 * caller must roll the whole batch back. */
static enum svc_apply svc_item_apply(struct svc *svc, struct db *db, const char *consumer,
				     struct svc_item *it, bool careful, void *batch,
				     struct svc_outbox_rows *rows, int *emitted)
{
	struct svc_tx tx = { .svc = svc,
			     .db = db,
			     .cause = &it->env,
			     .message = it->m,
			     .now_ms = clock_now_ms(),
			     .rows = rows,
			     .reject_reason = it->reason,
			     .reject_reason_size = sizeof(it->reason),
			     .batch = batch };
	int64_t claimed = it->claimed;
	shop_status st = careful ? db_savepoint(db) : SHOP_OK;
	if (st != SHOP_OK) {
		it->st = st;
		snprintf(it->reason, sizeof(it->reason), "savepoint: %s", db_last_error(db));
		return SVC_APPLY_LOST;
	}
	/* The first try claimed the whole batch at once (svc_batch_claim). */
	if (careful)
		st = db_exec(db,
			     "INSERT INTO inbox (consumer, event_id, received_at_ms) "
			     "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
			     DB_ARGS(consumer, it->env.id, DB_I64(tx.now_ms)), &claimed);
	if (st == SHOP_OK && claimed == 0) {
		st = SHOP_E_DUPLICATE;
	} else if (st == SHOP_OK) {
		st = it->handle(&tx, it->data);
		if (st == SHOP_OK && careful)
			st = svc_outbox_rows_write(db, rows);
		st = svc_handler_status(st, it->m, db, it->reason, sizeof(it->reason));
	}
	/* A failure's rows go with it (careful: only its own are kept; not
	 * careful: the whole try is rolled back). The inbox's duplicate ran no
	 * handler and added none. */
	if (st != SHOP_OK && st != SHOP_E_DUPLICATE)
		svc_outbox_rows_clear(rows);
	it->st = st;
	if (st == SHOP_OK && careful && db_savepoint_release(db) != SHOP_OK) {
		it->st = SHOP_E_UNAVAILABLE;
		snprintf(it->reason, sizeof(it->reason), "release: %s", db_last_error(db));
		return SVC_APPLY_LOST;
	}
	if (st == SHOP_OK) {
		*emitted += tx.emitted;
		return SVC_APPLY_DONE;
	}
	/* The inbox's duplicate wrote nothing: nothing to undo either way. */
	if (st == SHOP_E_DUPLICATE && !careful)
		return SVC_APPLY_DONE;
	if (!it->reason[0])
		snprintf(it->reason, sizeof(it->reason), "%s: %s", it->m->name,
			 shop_status_name(st));
	if (!careful)
		return SVC_APPLY_FAILED;
	return db_savepoint_rollback(db) == SHOP_OK ? SVC_APPLY_FAILED : SVC_APPLY_LOST;
}

/*
 * The first try claims every message of the batch in the inbox with one
 * statement instead of one INSERT each (a round trip per message on
 * PostgreSQL). The ids the inbox took come back (RETURNING); an event twice
 * in the batch is taken once, by its first copy. Fails as a whole: the
 * caller then tries the batch carefully, claiming message by message.
 */
static shop_status svc_batch_claim(struct db *db, const char *consumer, struct svc_item *items,
				   size_t n)
{
	cJSON *ids = cJSON_CreateArray();
	struct db_result *r = NULL;
	for (size_t i = 0; i < n; i++) {
		items[i].claimed = false;
		if (items[i].st == SHOP_OK)
			cJSON_AddItemToArray(ids, cJSON_CreateString(items[i].env.id));
	}
	char *json = cJSON_PrintUnformatted(ids);
	shop_status st = db_query(
		db,
		db_backend_of(db) == DB_POSTGRES
			? "INSERT INTO inbox (consumer, event_id, received_at_ms) "
			  "SELECT $1, e, $2 FROM json_array_elements_text(CAST($3 AS JSON)) AS t(e) "
			  "ON CONFLICT DO NOTHING RETURNING event_id"
			: "INSERT INTO inbox (consumer, event_id, received_at_ms) "
			  "SELECT $1, value, $2 FROM json_each($3) WHERE true "
			  "ON CONFLICT DO NOTHING RETURNING event_id",
		DB_ARGS(consumer, DB_I64(clock_now_ms()), json), &r);
	/* Each id returned marks the first message that carries it. */
	for (int row = 0; st == SHOP_OK && row < db_result_rows(r); row++) {
		const char *id = db_result_text(r, row, 0);
		for (size_t i = 0; i < n; i++)
			if (items[i].st == SHOP_OK && !items[i].claimed && id &&
			    strcmp(items[i].env.id, id) == 0) {
				items[i].claimed = true;
				break;
			}
	}
	db_result_free(r);
	free(json);
	cJSON_Delete(ids);
	return st;
}

/* The spec's batch hooks' state for the first try (svc_batch_hooks): begin
 * sees every message the inbox claimed. *ret_state stays NULL when the spec
 * has no hooks or begin made none. */
static shop_status svc_batch_hooks_begin(struct svc *svc, struct db *db,
					 struct svc_outbox_rows *rows, const struct svc_item *items,
					 size_t n, void **ret_state)
{
	const struct svc_batch_hooks *hooks = svc->spec->batch;
	*ret_state = NULL;
	if (!hooks)
		return SHOP_OK;
	struct svc_batch_msg *msgs = xcalloc(n ? n : 1, sizeof(*msgs));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (items[i].st == SHOP_OK && items[i].claimed)
			msgs[k++] = (struct svc_batch_msg){ items[i].m->id, items[i].data };
	struct svc_tx tx = { .svc = svc, .db = db, .now_ms = clock_now_ms(), .rows = rows };
	shop_status st = k > 0 ? hooks->begin(&tx, msgs, k, ret_state) : SHOP_OK;
	free(msgs);
	return st;
}

/* End may emit too (inventory announces a batch's levels there): its
 * events count with the handlers' in *EMITTED. */
static shop_status svc_batch_hooks_end(struct svc *svc, struct db *db, struct svc_outbox_rows *rows,
				       void *state, int *emitted)
{
	struct svc_tx tx = { .svc = svc, .db = db, .now_ms = clock_now_ms(), .rows = rows };
	shop_status st = state ? svc->spec->batch->end(&tx, state) : SHOP_OK;
	*emitted += tx.emitted;
	return st;
}

static void svc_batch_hooks_release(struct svc *svc, void *state)
{
	if (state)
		svc->spec->batch->release(state);
}

/* Opens the batch's transaction; when it cannot, every message still to
 * handle takes the reason and is retried. */
static bool svc_batch_begin(struct db *db, struct svc_item *items, size_t n)
{
	shop_status st = db_begin(db);
	if (st == SHOP_OK)
		return true;
	for (size_t i = 0; i < n; i++)
		if (items[i].st == SHOP_OK) {
			items[i].st = st;
			snprintf(items[i].reason, sizeof(items[i].reason), "begin: %s",
				 db_last_error(db));
		}
	return false;
}

/*
 * Handles a fetched batch in ONE transaction and one commit: one fsync for
 * the whole batch is what makes a durable consumer fast. Every item ends
 * with a status for the settle table, and a message is acked only if the
 * commit holding its effects succeeded, so a failed commit or a lost
 * transaction turns every handled item back into SHOP_E_UNAVAILABLE
 * (retried; the inbox makes the retry safe).
 *
 * The first try takes no savepoints: nearly every batch succeeds whole, and
 * a savepoint and its release are two more round trips per message (a
 * quarter of the shop's PostgreSQL statements, docs/performance.md). It
 * claims all its messages in the inbox with one statement, and its events
 * are kept in memory and written with one statement sent together with the
 * commit (db_exec_commit), rather than one INSERT each. When a message fails, the try is
 * rolled back whole, that message keeps its status (what it would have had
 * under a savepoint: the messages before it were applied, the same as now),
 * and the batch is tried again without it, carefully: a savepoint per
 * message, its events written before the savepoint is released, so one more
 * failure is undone alone. (When the events' statement is what failed, no
 * message is blamed and all of them are tried carefully.) Handlers are
 * idempotent, as redelivery already requires, so running one again after a
 * rollback is safe.
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
	if (decoded == 0 || !svc_batch_begin(db, items, n))
		goto out;
	struct svc_outbox_rows rows = { 0 };
	enum svc_apply a = SVC_APPLY_DONE;
	size_t blamed = n; /* the message that failed the first try; n: none */
	void *batch = NULL;
	if (svc_batch_claim(db, consumer, items, n) != SHOP_OK ||
	    svc_batch_hooks_begin(svc, db, &rows, items, n, &batch) != SHOP_OK)
		a = SVC_APPLY_FAILED;
	for (i = 0; i < n && a == SVC_APPLY_DONE; i++)
		if (items[i].st == SHOP_OK) {
			a = svc_item_apply(svc, db, consumer, &items[i], false, batch, &rows,
					   &emitted);
			blamed = a == SVC_APPLY_DONE ? n : i;
		}
	/* What the handlers left in the hooks' state is written before the
	 * events and the commit; should that fail, no one message is to blame
	 * (the careful try below, without the state, finds out). */
	if (a == SVC_APPLY_DONE && svc_batch_hooks_end(svc, db, &rows, batch, &emitted) != SHOP_OK)
		a = SVC_APPLY_FAILED;
	svc_batch_hooks_release(svc, batch);
	/* The try's events, all with one statement, and the commit, in one
	 * round trip. Should the events' statement fail, no one message is to
	 * blame yet: the careful try below finds which. */
	shop_status st = SHOP_E_UNAVAILABLE;
	if (a == SVC_APPLY_DONE) {
		bool over = false;
		st = svc_outbox_rows_commit(db, &rows, &over);
		if (!over)
			a = SVC_APPLY_FAILED;
	}
	if (a != SVC_APPLY_DONE) {
		/* The blamed message keeps its status, the others start over. */
		db_rollback(db);
		svc_outbox_rows_clear(&rows);
		emitted = 0;
		atomic_fetch_add(&svc->batch_replays, 1);
		metrics_counter_add(svc->metrics->batch_replays,
				    (const char *const[]){ svc->spec->name, consumer }, 1);
		for (size_t j = 0; j < n; j++)
			if (j != blamed && items[j].st == SHOP_E_DUPLICATE)
				items[j].st = SHOP_OK;
		if (!svc_batch_begin(db, items, n))
			goto out;
		a = SVC_APPLY_DONE;
		for (i = 0; i < n && a != SVC_APPLY_LOST; i++)
			if (items[i].st == SHOP_OK)
				a = svc_item_apply(svc, db, consumer, &items[i], true, NULL, &rows,
						   &emitted);
		svc_outbox_rows_clear(&rows); /* written item by item; empty unless lost */
		st = SHOP_E_UNAVAILABLE;
		if (a != SVC_APPLY_LOST) {
			st = db_commit(db);
		} else {
			/* Item i-1 lost the transaction; the ones after it were not
			 * tried. */
			db_rollback(db);
			for (; i < n; i++)
				if (items[i].st == SHOP_OK)
					items[i].st = SHOP_E_UNAVAILABLE;
		}
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
	/* After the commit, never before: a reader woken earlier could look
	 * before the change is visible and then sleep past it. */
	size_t handled = 0;
	for (i = 0; i < n; i++)
		handled += items[i].st == SHOP_OK;
	if (handled > 0 && svc->spec->after_commit)
		svc->spec->after_commit(svc);
out:
	for (i = 0; i < n; i++) {
		struct svc_item *it = &items[i];
		if (it->st == SHOP_OK)
			log_debug(&it->ids, "handled %s", it->m->name);
		else if (it->st != SHOP_E_DUPLICATE)
			log_warn(&it->ids, "%s (%s)", it->reason, shop_status_name(it->st));
	}
}

uint64_t svc_batch_replays(struct svc *svc)
{
	return atomic_load(&svc->batch_replays);
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

/* Settles one message; returns the outcome label of
 * shop_messages_consumed_total (docs/metrics.md). */
static const char *svc_settle(struct svc *svc, struct bus_consumer *bc, struct bus_msg *msg,
			      shop_status st, const char *reason)
{
	uint64_t deliveries = bus_msg_deliveries(msg);
	switch (svc_settle_decide(st, deliveries)) {
	case SVC_ACK:
		bus_msg_ack(msg);
		return st == SHOP_E_DUPLICATE ? "duplicate" : "ok";
	case SVC_RETRY:
		bus_msg_nak(msg, svc_retry_delay_ms(deliveries));
		return "retry";
	case SVC_DEAD_LETTER: {
		static const char gave_up[] = " (gave up after the last allowed delivery)";
		char full[SVC_REASON_MAX + sizeof(gave_up)];
		snprintf(full, sizeof(full), "%s%s", reason,
			 st == SHOP_E_INVALID || st == SHOP_E_LIMIT || st == SHOP_E_NOT_FOUND
				 ? ""
				 : gave_up);
		log_error(NULL, "dead-lettering %s seq %llu: %s", bus_msg_subject(msg),
			  (unsigned long long)bus_msg_stream_seq(msg), full);
		if (bus_msg_dead_letter(svc->bus, bc, msg, full) == SHOP_OK) {
			metrics_counter_add(svc->metrics->dead_letters,
					    (const char *const[]){ svc->spec->name,
								   bus_consumer_durable(bc),
								   bus_msg_subject(msg) },
					    1);
			return "dead_letter";
		}
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
		return "dead_letter_failed";
	}
	}
	return "retry";
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

void *svc_consumer_main(void *arg)
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
			 * the streams too when it lost those.
			 * A service with NATS credentials may not declare: it
			 * binds, and waits for the admin while the durable is
			 * missing. */
			shop_status bst = bus_user(svc->bus)
						  ? SHOP_OK
						  : bus_ensure_consumer(svc->bus, cons->stream,
									cons->durable,
									cons->filter_subjects,
									cons->n_filter_subjects);
			if (bst == SHOP_OK)
				bst = bus_consumer_open(svc->bus, cons->stream, cons->durable, &bc);
			if (bst == SHOP_OK)
				bus_consumer_set_confidential(bc, svc_stream_confidential(
									  cons->stream));
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
		if (n == 0) {
			bus_msgs_free(msgs, n);
			continue;
		}
		int64_t fetched_us = clock_mono_us();
		/* A durable's name is unique in its stream only (the gateway has
		 * one "gateway" per stream): series need both. */
		const char *const who[] = { svc->spec->name, cons->stream, cons->durable };
		metrics_histogram_observe(svc->metrics->batch_size, who, (double)n);
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
			const char *outcome = "db_down";
			if (db_down && items[i].st == SHOP_E_UNAVAILABLE)
				bus_msg_nak(msgs[i], SVC_DB_DOWN_REDELIVERY_MS);
			else
				outcome = svc_settle(svc, bc, msgs[i], items[i].st,
						     items[i].reason);
			metrics_counter_add(svc->metrics->consumed,
					    (const char *const[]){ svc->spec->name, cons->durable,
								   items[i].bus_subject, outcome },
					    1);
			metrics_histogram_observe(svc->metrics->handler_s, who,
						  (double)(clock_mono_us() - fetched_us) / 1e6);
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
