/*
 * svc_outbox.c - the outbox: svc_emit writes an event into the caller's
 * transaction; the relay publishes what was committed.
 *
 * Invariant: an outbox row is marked published only after JetStream acked
 * it, so a crash or a broker outage republishes it (deduplicated by
 * Nats-Msg-Id = event id). A row JetStream keeps refusing is parked rather
 * than retried forever; published rows are purged after the retention time,
 * unpublished ones never.
 */
#include "svc_private.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"

#include "core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void svc_relay_wake(struct svc *svc)
{
	pthread_mutex_lock(&svc->lock);
	svc->relay_pending = true;
	pthread_cond_broadcast(&svc->wake);
	pthread_mutex_unlock(&svc->lock);
}

/*
 * A consumer's transaction writes its outbox rows with one statement before
 * its commit instead of one INSERT per event: each INSERT is a round trip to
 * PostgreSQL, and a batch emits a few events per message. The first try of
 * a batch sends that statement and the COMMIT together (db_exec_commit). The rows are read
 * from a JSON array in the order they were emitted, so their ids (and the
 * relay's publishing order) follow the emit order as before.
 */
static shop_status svc_outbox_rows_run(struct db *db, struct svc_outbox_rows *r, bool commit,
				       bool *ret_over)
{
	char *json = cJSON_PrintUnformatted(r->rows);
	const char *sql =
		db_backend_of(db) == DB_POSTGRES
			? "INSERT INTO outbox (event_id, subject, payload, created_at_ms) "
			  "SELECT r->>'e', r->>'s', r->>'p', CAST(r->>'c' AS BIGINT) "
			  "FROM json_array_elements(CAST($1 AS JSON)) WITH ORDINALITY AS t(r, o) "
			  "ORDER BY o"
			: "INSERT INTO outbox (event_id, subject, payload, created_at_ms) "
			  "SELECT value->>'e', value->>'s', value->>'p', value->>'c' "
			  "FROM json_each($1) ORDER BY key";
	shop_status st = commit ? db_exec_commit(db, sql, DB_ARGS(json), NULL, ret_over)
				: db_exec(db, sql, DB_ARGS(json), NULL);
	free(json);
	svc_outbox_rows_clear(r);
	return st;
}

shop_status svc_outbox_rows_write(struct db *db, struct svc_outbox_rows *r)
{
	bool over = false; /* not asked for: no COMMIT goes with these rows */
	return r->n == 0 ? SHOP_OK : svc_outbox_rows_run(db, r, false, &over);
}

shop_status svc_outbox_rows_commit(struct db *db, struct svc_outbox_rows *r, bool *ret_over)
{
	if (r->n > 0)
		return svc_outbox_rows_run(db, r, true, ret_over);
	*ret_over = true;
	return db_commit(db);
}

void svc_outbox_rows_clear(struct svc_outbox_rows *r)
{
	cJSON_Delete(r->rows);
	r->rows = NULL;
	r->n = 0;
}

/* Keeps one row; past SVC_OUTBOX_ROWS_MAX the kept rows are written first,
 * so memory stays bounded whatever a handler emits. (A failure of that
 * write in a batch's first try is charged to the message emitting then,
 * though the rows may be others' too: the rows are the runtime's own, and
 * only a database that is down refuses them, which every message retries
 * alike.) */
static shop_status svc_outbox_rows_add(struct db *db, struct svc_outbox_rows *r,
				       const char *event_id, const char *subject,
				       const char *payload)
{
	if (r->n >= SVC_OUTBOX_ROWS_MAX) {
		shop_status st = svc_outbox_rows_write(db, r);
		if (st != SHOP_OK)
			return st;
	}
	if (!r->rows)
		r->rows = cJSON_CreateArray();
	cJSON *row = cJSON_CreateObject();
	cJSON_AddStringToObject(row, "e", event_id);
	cJSON_AddStringToObject(row, "s", subject);
	cJSON_AddStringToObject(row, "p", payload);
	cJSON_AddNumberToObject(row, "c", (double)clock_now_ms());
	cJSON_AddItemToArray(r->rows, row);
	r->n++;
	return SHOP_OK;
}

/* Whether the index holds a newer major version of M: its producer has
 * moved on (ct_versions.h), and M stays in the index only so that what is
 * stored of it can still be read. NATS refuses its subject to the producer
 * too (tools/natsauth.py). */
static bool svc_message_superseded(const struct ct_message *m)
{
	for (size_t i = 0; i < CT_MSG__COUNT; i++)
		if (strcmp(ct_messages[i].name, m->name) == 0 &&
		    ct_messages[i].version > m->version)
			return true;
	return false;
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
		log_error(NULL, "refusing to emit %s: the contracts name %s as its producer",
			  m->name, m->producer);
		goto out;
	}
	if (svc_message_superseded(m)) {
		log_error(NULL, "refusing to emit %s v%d: a newer major version replaces it",
			  m->name, m->version);
		goto out;
	}
	/* A producer never writes what its consumers would reject. */
	if (m->parse(json, check, &errs) != SHOP_OK) {
		log_error(NULL, "refusing to emit %s: data%s %s", m->name, errs.item[0].path,
			  errs.item[0].problem);
		goto out;
	}
	if (strlen(subject) == 0 || strlen(subject) > EVT_ATTR_MAX) {
		log_error(NULL, "refusing to emit %s: subject length %zu", m->name,
			  strlen(subject));
		goto out;
	}

	ids_uuid7(env.id);
	/* The producer's source, which its consumers check (svc_consume.c):
	 * this service, since only the producer gets this far. */
	snprintf(env.source, sizeof(env.source), "%s", m->source);
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
	if (tx->rows)
		st = svc_outbox_rows_add(tx->db, tx->rows, env.id, m->subject, payload);
	else
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
				  DB_ARGS(id, error, DB_I64(SVC_RELAY_MAX_ATTEMPTS),
					  DB_I64(now_ms)),
				  &r);
	*ret_parked = st == SHOP_OK && db_result_rows(r) == 1 && db_result_text(r, 0, 0) != NULL;
	db_result_free(r);
	return st;
}

/* Marks every row of the batch that JetStream stored with ONE statement: the
 * ids travel as one array parameter (a PostgreSQL array literal, or a JSON
 * array that SQLite's json_each reads), so the SQL text stays fixed and is
 * prepared once, and a batch of 256 costs one round trip, not 256. */
/* Marks the rows JetStream stored. With COMMIT, the transaction's COMMIT
 * goes out with that statement (db_exec_commit) and *ret_over says whether
 * it ran; without, or when no row is to mark, *ret_over is false and the
 * transaction is the caller's to end. */
static shop_status svc_relay_mark_published(struct db *db, bool pg, const struct db_result *rows,
					    const shop_status *results, int n, const char *now,
					    bool commit, bool *ret_over)
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
	const char *sql = pg ? "UPDATE outbox SET published_at_ms = $1 "
			       "WHERE id = ANY (CAST($2 AS BIGINT[]))"
			     : "UPDATE outbox SET published_at_ms = $1 "
			       "WHERE id IN (SELECT value FROM json_each($2))";
	shop_status st = SHOP_OK;
	*ret_over = false;
	if (marked > 0 && commit)
		st = db_exec_commit(db, sql, DB_ARGS(now, ids), NULL, ret_over);
	else if (marked > 0)
		st = db_exec(db, sql, DB_ARGS(now, ids), NULL);
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
	const char *select_sql = pg ? "SELECT id, event_id, subject, payload FROM outbox "
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
	/* Nearly always every row was stored: then the marks and the COMMIT
	 * go out together, one round trip. */
	bool all_stored = true, over = false;
	for (int i = 0; i < n; i++)
		all_stored = all_stored && results[i] == SHOP_OK;
	st = svc_relay_mark_published(db, pg, rows, results, n, now, all_stored, &over);
	for (int i = 0; i < n && st == SHOP_OK; i++)
		if (results[i] == SHOP_OK)
			metrics_counter_add(svc->metrics->published,
					    (const char *const[]){ svc->spec->name,
								   out[i].subject },
					    1);
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
			log_error(
				NULL,
				"outbox row %s (event %s on %s) parked after %d refusals (%s): "
				"the relay goes on without it; see docs/runbook.md to republish it",
				id, out[i].msg_id, out[i].subject, SVC_RELAY_MAX_ATTEMPTS,
				shop_status_name(results[i]));
		}
	}
	/* Over: committed, or rolled back, with the marks. */
	if (!over && st == SHOP_OK)
		st = db_commit(db);
	else if (!over)
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

bool svc_stream_confidential(const char *stream)
{
	for (size_t i = 0; i < ct_n_streams; i++)
		if (strcmp(ct_streams[i].name, stream) == 0)
			return ct_streams[i].confidential;
	return false;
}

/* Deletes every published row of a message whose stream is confidential,
 * however recent: a SubmitCard row holds a card token, which has no
 * business staying in the gateway's database once JetStream has it (for
 * up to SVC_OUTBOX_RETENTION_MS otherwise). *ret_purged counts them. */
static shop_status svc_purge_confidential(struct db *db, int64_t *ret_purged)
{
	cJSON *subjects = cJSON_CreateArray();
	for (size_t i = 0; i < CT_MSG__COUNT; i++)
		if (svc_stream_confidential(ct_messages[i].stream))
			cJSON_AddItemToArray(subjects, cJSON_CreateString(ct_messages[i].subject));
	shop_status st = SHOP_OK;
	*ret_purged = 0;
	if (cJSON_GetArraySize(subjects) > 0) {
		char *json = cJSON_PrintUnformatted(subjects);
		st = db_exec(
			db,
			db_backend_of(db) == DB_POSTGRES
				? "DELETE FROM outbox WHERE published_at_ms IS NOT NULL AND subject"
				  " IN (SELECT json_array_elements_text(CAST($1 AS JSON)))"
				: "DELETE FROM outbox WHERE published_at_ms IS NOT NULL AND subject"
				  " IN (SELECT value FROM json_each($1))",
			DB_ARGS(json), ret_purged);
		free(json);
	}
	cJSON_Delete(subjects);
	return st;
}

shop_status svc_purge(struct db *db, int64_t now_ms, int64_t outbox_retention_ms,
		      int64_t *ret_outbox_purged, int64_t *ret_inbox_purged)
{
	int64_t outbox_purged = 0, inbox_purged = 0, confidential_purged = 0;
	shop_status st = db_exec(db,
				 "DELETE FROM outbox WHERE published_at_ms IS NOT NULL "
				 "AND published_at_ms < $1",
				 DB_ARGS(DB_I64(now_ms - outbox_retention_ms)), &outbox_purged);
	if (st == SHOP_OK)
		st = svc_purge_confidential(db, &confidential_purged);
	outbox_purged += confidential_purged;
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

void *svc_relay_main(void *arg)
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
				log_warn(NULL,
					 "outbox relay: %zu of %zu events not yet stored, retrying",
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
