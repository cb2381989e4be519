/*
 * payments_provider.c - the simulated card provider and its ledger.
 *
 * Every call is one transaction on the provider's own connection, committed
 * before the call returns, whatever the caller's transaction then does: the
 * provider is "another system" (on PostgreSQL without waiting for the flush:
 * see provider_connect for why nothing acted upon can be lost). Each call first touches its ledger row
 * (insert-or-update of updated_at_ms), which on PostgreSQL takes the row lock
 * before anything is read, so two replicas charging or refunding the same key
 * at once are serialised and the second sees what the first committed: one
 * key never gets two charge ids or two refund ids. On SQLite BEGIN IMMEDIATE
 * serialises writers anyway.
 *
 * The ledger's schema belongs to the provider and is applied on first
 * connection when the ledger lives apart (on SQLite a file of its own, see
 * payments_provider_url_derive, which the service's migrations never see).
 * A ledger in the service's own PostgreSQL database is migrated with the
 * service instead (payments_provider_migrated_by_service), by the owner
 * role: the role the provider connects as may not change the schema.
 */
#include "payments_provider.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/text.h"
#include "core/xalloc.h"
#include "db/db.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define OUTCOME_APPROVED "APPROVED"
#define OUTCOME_DECLINED "DECLINED"

/* The ledger's own migrations, applied by db_migrate (which serialises
 * replicas) under names that cannot collide with the service's. */
const struct db_migration payments_provider_migrations[] = {
	{ "payments_provider_001_charges",
	  "CREATE TABLE provider_charges ("
	  " idempotency_key TEXT PRIMARY KEY,"
	  " card_token TEXT NOT NULL,"
	  " amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),"
	  " currency TEXT NOT NULL,"
	  " attempts BIGINT NOT NULL DEFAULT 0,"
	  " outcome TEXT CHECK (outcome IN ('APPROVED', 'DECLINED')),"
	  " charge_id TEXT UNIQUE,"
	  " refunded INTEGER NOT NULL DEFAULT 0 CHECK (refunded IN (0, 1)),"
	  " refund_id TEXT UNIQUE,"
	  " created_at_ms BIGINT NOT NULL,"
	  " updated_at_ms BIGINT NOT NULL)" },
};
const size_t payments_provider_n_migrations = sizeof(payments_provider_migrations) /
					      sizeof(payments_provider_migrations[0]);

/* One ledger connection of the pool. */
struct provider_conn {
	struct db *db; /* NULL until first used, and after a failed connect */
	bool busy;     /* taken by a call (provider_take) */
};

struct payments_provider {
	pthread_mutex_t mu;  /* guards the busy flags, never held during I/O */
	pthread_cond_t free; /* signalled when a connection is given back */
	char *url;
	bool migrated_by_svc; /* the service's migrations hold the ledger's */
	size_t n_conns;       /* the pool's size: 1 on SQLite, see create */
	struct provider_conn conns[PAYMENTS_PROVIDER_CONNS_MAX];
};

struct payments_provider *payments_provider_create(const char *url)
{
	struct payments_provider *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->free, NULL);
	p->url = xstrdup(url);
	/* A SQLite ledger has one writer per file, so more connections would
	 * only wait for each other's lock; and ":memory:" is a database per
	 * connection, so there must be exactly one. */
	p->n_conns = strncmp(url, "sqlite:", 7) == 0 ? 1 : PAYMENTS_PROVIDER_CONNS_MAX;
	return p;
}

void payments_provider_migrated_by_service(struct payments_provider *p)
{
	p->migrated_by_svc = true;
}

void payments_provider_destroy(struct payments_provider *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_conns; i++)
		db_close(p->conns[i].db);
	pthread_cond_destroy(&p->free);
	pthread_mutex_destroy(&p->mu);
	free(p->url);
	free(p);
}

enum payments_provider_outcome payments_provider_decide(const char *token, int64_t attempt)
{
	if (strcmp(token, PAYMENTS_CARD_VISA) == 0)
		return PAYMENTS_PROVIDER_APPROVED;
	if (strcmp(token, PAYMENTS_CARD_FLAKY) == 0)
		return attempt <= PAYMENTS_PROVIDER_FLAKY_FAILURES ? PAYMENTS_PROVIDER_TRANSIENT
								   : PAYMENTS_PROVIDER_APPROVED;
	/* tok_declined, and every card the provider does not know. */
	return PAYMENTS_PROVIDER_DECLINED;
}

shop_status payments_provider_url_derive(const char *service_url, char *out, size_t out_size)
{
	static const char sqlite_scheme[] = "sqlite:";
	static const char memory[] = ":memory:";
	static const char db_ext[] = ".db";
	size_t len = strlen(service_url);
	size_t scheme_len = sizeof(sqlite_scheme) - 1;

	if (len > PAYMENTS_PROVIDER_URL_MAX)
		return SHOP_E_LIMIT;
	if (strncmp(service_url, sqlite_scheme, scheme_len) != 0 ||
	    strcmp(service_url + scheme_len, memory) == 0) {
		/* PostgreSQL (or a private in-memory database): the same URL. */
		if (len + 1 > out_size)
			return SHOP_E_LIMIT;
		memcpy(out, service_url, len + 1);
		return SHOP_OK;
	}
	if (len == scheme_len)
		return SHOP_E_INVALID;

	/* "x.db" -> "x-provider.db"; anything else gets the suffix appended. */
	size_t ext_len = sizeof(db_ext) - 1;
	size_t stem = len;
	if (len - scheme_len > ext_len && strcmp(service_url + len - ext_len, db_ext) == 0)
		stem = len - ext_len;
	size_t suffix_len = sizeof(PAYMENTS_PROVIDER_SQLITE_SUFFIX) - 1;
	size_t total = len + suffix_len;
	if (total + 1 > out_size)
		return SHOP_E_LIMIT;
	memcpy(out, service_url, stem);
	memcpy(out + stem, PAYMENTS_PROVIDER_SQLITE_SUFFIX, suffix_len);
	memcpy(out + stem + suffix_len, service_url + stem, len - stem);
	out[total] = '\0';
	return SHOP_OK;
}

shop_status payments_provider_url_check(const char *service_url, const char *provider_url)
{
	static const char sqlite_scheme[] = "sqlite:";
	static const char memory[] = "sqlite::memory:";
	if (strncmp(provider_url, sqlite_scheme, sizeof(sqlite_scheme) - 1) == 0 &&
	    strcmp(provider_url, memory) != 0 && strcmp(provider_url, service_url) == 0)
		return SHOP_E_CONFLICT;
	return SHOP_OK;
}

/* libpq's options for the ledger's PostgreSQL sessions: part of the URL, so
 * a session that libpq resets after a lost connection keeps them. */
#define PROVIDER_PG_OPTIONS "options=-csynchronous_commit%3Doff"

/* Opens connection C and the ledger on first use; the caller has taken C.
 *
 * On PostgreSQL the ledger shares the service's database, so its commit
 * records go into the same write-ahead log, before those of the service
 * transaction that acts on a charge. Flushing that commit flushes the
 * ledger's too: nothing the service acted on can be lost, and a ledger
 * commit lost in a crash belonged to a batch that is lost too and
 * redelivered, which asks again under the same key. So the ledger's
 * sessions do not wait for their own flush (synchronous_commit off), which
 * serialised every charge behind one fsync on this one connection. On
 * SQLite the ledger is a file of its own and keeps its commits durable. */
static shop_status provider_connect(const struct payments_provider *p, struct provider_conn *c)
{
	struct db *db = NULL;
	char *url = NULL;
	shop_status st;

	if (c->db)
		return SHOP_OK;
	if (strncmp(p->url, "postgresql://", 13) == 0 || strncmp(p->url, "postgres://", 11) == 0)
		url = xasprintf("%s%c%s", p->url, strchr(p->url, '?') ? '&' : '?',
				PROVIDER_PG_OPTIONS);
	st = db_open(url ? url : p->url, &db);
	if (st != SHOP_OK)
		goto out;
	if (!p->migrated_by_svc)
		st = db_migrate(db, payments_provider_migrations, payments_provider_n_migrations);
	if (st != SHOP_OK)
		goto out;
	c->db = db;
	db = NULL;
out:
	db_close(db);
	free(url);
	return st;
}

/* Takes a free connection for one call, waiting while all are in use, and
 * opens it if it is not yet. The lowest free one is taken, so a quiet
 * provider keeps using the same connection and a busy one opens more, up to
 * n_conns. *RET_CONN is set even on failure: give it back. */
static shop_status provider_take(struct payments_provider *p, struct provider_conn **ret_conn)
{
	struct provider_conn *c = NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (size_t i = 0; i < p->n_conns && !c; i++)
			if (!p->conns[i].busy)
				c = &p->conns[i];
		if (c)
			break;
		pthread_cond_wait(&p->free, &p->mu);
	}
	c->busy = true;
	pthread_mutex_unlock(&p->mu);
	*ret_conn = c;
	return provider_connect(p, c);
}

static void provider_give(struct payments_provider *p, struct provider_conn *c)
{
	pthread_mutex_lock(&p->mu);
	c->busy = false;
	pthread_cond_signal(&p->free);
	pthread_mutex_unlock(&p->mu);
}

/* Takes a connection for one ledger transaction and BEGINs it. *ret_began
 * says whether provider_end must roll back. The connection is taken even
 * on failure: provider_end gives it back. */
static shop_status provider_begin(struct payments_provider *p, struct provider_conn **ret_conn,
				  bool *ret_began)
{
	shop_status st = provider_take(p, ret_conn);
	if (st == SHOP_OK)
		st = db_begin((*ret_conn)->db);
	*ret_began = st == SHOP_OK;
	return st;
}

static void provider_end(struct payments_provider *p, struct provider_conn *c, bool rollback)
{
	if (rollback)
		db_rollback(c->db);
	provider_give(p, c);
}

static void provider_id_new(const char *prefix, char out[PAYMENTS_PROVIDER_ID_SIZE])
{
	char uuid[IDS_UUID_SIZE];
	ids_uuid7(uuid);
	memcpy(out, prefix, PAYMENTS_PROVIDER_ID_PREFIX_LEN);
	memcpy(out + PAYMENTS_PROVIDER_ID_PREFIX_LEN, uuid, IDS_UUID_SIZE);
}

static bool provider_text_fits(const char *s, size_t max)
{
	return strnlen(s, max + 1) <= max;
}

/* Copies a ledger id cell; anything that is not one of ours is a bug. */
static shop_status provider_id_copy(const char *cell, char out[PAYMENTS_PROVIDER_ID_SIZE])
{
	if (!cell || strlen(cell) != PAYMENTS_PROVIDER_ID_SIZE - 1)
		return SHOP_E_INTERNAL;
	memcpy(out, cell, PAYMENTS_PROVIDER_ID_SIZE);
	return SHOP_OK;
}

shop_status payments_provider_charge(struct payments_provider *p, const char *key,
				     const char *token, int64_t amount_cents, const char *currency,
				     struct payments_provider_charge_result *ret_result)
{
	struct payments_provider_charge_result res = { 0 };
	struct db_result *row = NULL;
	struct provider_conn *c = NULL;
	/* ended: the transaction is over, committed or (by db_exec_commit)
	 * rolled back, so provider_end must not roll it back. */
	bool began = false, ended = false, over = false;
	shop_status st = SHOP_E_INVALID;

	if (!key || !*key || !token || !currency || !*currency || amount_cents < 0)
		return SHOP_E_INVALID;
	if (!provider_text_fits(key, PAYMENTS_PROVIDER_KEY_MAX) ||
	    !provider_text_fits(token, PAYMENTS_PROVIDER_TOKEN_MAX) ||
	    !provider_text_fits(currency, PAYMENTS_PROVIDER_CURRENCY_MAX))
		return SHOP_E_LIMIT;

	st = provider_begin(p, &c, &began);
	if (st != SHOP_OK)
		goto out;

	const char *now = DB_I64(clock_now_ms());
	/* Insert-or-touch: either way the row is ours (locked) until commit,
	 * and RETURNING reads it back in the same round trip (the new row, or
	 * the one a request with this key left). */
	st = db_query(c->db,
		      "INSERT INTO provider_charges (idempotency_key, card_token, amount_cents,"
		      " currency, attempts, refunded, created_at_ms, updated_at_ms)"
		      " VALUES ($1, $2, $3, $4, 0, 0, $5, $5)"
		      " ON CONFLICT (idempotency_key) DO UPDATE SET updated_at_ms = $5"
		      " RETURNING card_token, amount_cents, currency, attempts, outcome, charge_id",
		      DB_ARGS(key, token, DB_I64(amount_cents), currency, now), &row);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(row) != 1) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	const char *stored_token = db_result_text(row, 0, 0);
	const char *stored_currency = db_result_text(row, 0, 2);
	if (!stored_token || strcmp(stored_token, token) != 0 ||
	    db_result_int(row, 0, 1) != amount_cents || !stored_currency ||
	    strcmp(stored_currency, currency) != 0) {
		st = SHOP_E_CONFLICT; /* a reused key for a different request */
		goto out;
	}

	const char *outcome = db_result_text(row, 0, 4);
	if (outcome) {
		/* Decided before: the same answer, no new attempt, no new charge. */
		res.attempts = db_result_int(row, 0, 3);
		if (strcmp(outcome, OUTCOME_APPROVED) == 0) {
			res.outcome = PAYMENTS_PROVIDER_APPROVED;
			st = provider_id_copy(db_result_text(row, 0, 5), res.charge_id);
			if (st != SHOP_OK)
				goto out;
		} else {
			res.outcome = PAYMENTS_PROVIDER_DECLINED;
			res.decline_reason = PAYMENTS_PROVIDER_DECLINE_REASON;
		}
		st = db_commit(c->db);
		ended = true;
		goto out;
	}

	/* The decision is written and committed in one round trip. */
	int64_t attempt = db_result_int(row, 0, 3) + 1;
	res.attempts = attempt;
	res.outcome = payments_provider_decide(token, attempt);
	switch (res.outcome) {
	case PAYMENTS_PROVIDER_APPROVED:
		provider_id_new("ch_", res.charge_id);
		st = db_exec_commit(
			c->db,
			"UPDATE provider_charges SET attempts = $2, outcome = 'APPROVED',"
			" charge_id = $3, updated_at_ms = $4 WHERE idempotency_key = $1",
			DB_ARGS(key, DB_I64(attempt), res.charge_id, now), NULL, &over);
		break;
	case PAYMENTS_PROVIDER_DECLINED:
		res.decline_reason = PAYMENTS_PROVIDER_DECLINE_REASON;
		st = db_exec_commit(c->db,
				    "UPDATE provider_charges SET attempts = $2, outcome = 'DECLINED',"
				    " updated_at_ms = $3 WHERE idempotency_key = $1",
				    DB_ARGS(key, DB_I64(attempt), now), NULL, &over);
		break;
	case PAYMENTS_PROVIDER_TRANSIENT:
		st = db_exec_commit(c->db,
				    "UPDATE provider_charges SET attempts = $2, updated_at_ms = $3"
				    " WHERE idempotency_key = $1",
				    DB_ARGS(key, DB_I64(attempt), now), NULL, &over);
		break;
	}
	ended = over;
	if (st != SHOP_OK)
		goto out;
	/* The attempt is on the ledger; the caller retries with the same key. */
	if (res.outcome == PAYMENTS_PROVIDER_TRANSIENT)
		st = SHOP_E_UNAVAILABLE;
out:
	provider_end(p, c, began && !ended);
	db_result_free(row);
	if (st == SHOP_OK)
		*ret_result = res;
	return st;
}

shop_status payments_provider_refund(struct payments_provider *p, const char *key,
				     char ret_refund_id[PAYMENTS_PROVIDER_ID_SIZE])
{
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE] = { 0 };
	struct db_result *row = NULL;
	struct provider_conn *c = NULL;
	bool began = false, committed = false;
	int64_t changes = 0;
	shop_status st;

	if (!key || !*key)
		return SHOP_E_INVALID;
	if (!provider_text_fits(key, PAYMENTS_PROVIDER_KEY_MAX))
		return SHOP_E_LIMIT;

	st = provider_begin(p, &c, &began);
	if (st != SHOP_OK)
		goto out;

	const char *now = DB_I64(clock_now_ms());
	/* Touch first: the row lock serialises concurrent refunds of one key. */
	st = db_exec(c->db,
		     "UPDATE provider_charges SET updated_at_ms = $2 WHERE idempotency_key = $1",
		     DB_ARGS(key, now), &changes);
	if (st != SHOP_OK)
		goto out;
	if (changes == 0) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	st = db_query(c->db,
		      "SELECT outcome, refunded, refund_id FROM provider_charges"
		      " WHERE idempotency_key = $1",
		      DB_ARGS(key), &row);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(row) != 1) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	const char *outcome = db_result_text(row, 0, 0);
	if (!outcome || strcmp(outcome, OUTCOME_APPROVED) != 0) {
		st = SHOP_E_CONFLICT; /* nothing was captured, nothing to give back */
		goto out;
	}
	if (db_result_int(row, 0, 1) != 0) {
		st = provider_id_copy(db_result_text(row, 0, 2), refund_id);
		if (st != SHOP_OK)
			goto out;
	} else {
		provider_id_new("re_", refund_id);
		st = db_exec(c->db,
			     "UPDATE provider_charges SET refunded = 1, refund_id = $2,"
			     " updated_at_ms = $3 WHERE idempotency_key = $1 AND refunded = 0",
			     DB_ARGS(key, refund_id, now), &changes);
		if (st != SHOP_OK)
			goto out;
		if (changes != 1) {
			st = SHOP_E_INTERNAL; /* impossible under the row lock */
			goto out;
		}
	}
	st = db_commit(c->db);
	committed = st == SHOP_OK;
out:
	provider_end(p, c, began && !committed);
	db_result_free(row);
	if (st == SHOP_OK)
		memcpy(ret_refund_id, refund_id, PAYMENTS_PROVIDER_ID_SIZE);
	return st;
}

/* Reads ledger row i of r (key, charge_id, amount_cents, currency,
 * refunded); the provider wrote every cell, so a misfit is a bug. */
static shop_status provider_info_read(const struct db_result *r, int i,
				      struct payments_provider_charge_info *out)
{
	memset(out, 0, sizeof(*out));
	if (!TEXT_COPY(out->key, db_result_text(r, i, 0)) ||
	    provider_id_copy(db_result_text(r, i, 1), out->charge_id) != SHOP_OK ||
	    !TEXT_COPY(out->currency, db_result_text(r, i, 3)))
		return SHOP_E_INTERNAL;
	out->amount_cents = db_result_int(r, i, 2);
	out->refunded = db_result_int(r, i, 4) != 0;
	return SHOP_OK;
}

/* Reads are single statements: no BEGIN, just a connection of the pool. */
shop_status payments_provider_charge_find(struct payments_provider *p, const char *key,
					  struct payments_provider_charge_info *ret_info)
{
	struct payments_provider_charge_info info;
	struct db_result *r = NULL;
	struct provider_conn *c = NULL;
	shop_status st;

	if (!key || !*key)
		return SHOP_E_INVALID;
	if (!provider_text_fits(key, PAYMENTS_PROVIDER_KEY_MAX))
		return SHOP_E_LIMIT;
	st = provider_take(p, &c);
	if (st != SHOP_OK)
		goto out;
	st = db_query(c->db,
		      "SELECT idempotency_key, charge_id, amount_cents, currency, refunded"
		      " FROM provider_charges WHERE idempotency_key = $1 AND outcome = 'APPROVED'",
		      DB_ARGS(key), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) != 1) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	st = provider_info_read(r, 0, &info);
out:
	provider_give(p, c);
	db_result_free(r);
	if (st == SHOP_OK)
		*ret_info = info;
	return st;
}

shop_status payments_provider_open_charges(struct payments_provider *p, const char *after_key,
					   size_t max,
					   struct payments_provider_charge_info *ret_infos,
					   size_t *ret_n)
{
	struct db_result *r = NULL;
	struct provider_conn *c = NULL;
	size_t n = 0;
	shop_status st;

	if (!after_key || max == 0)
		return SHOP_E_INVALID;
	if (!provider_text_fits(after_key, PAYMENTS_PROVIDER_KEY_MAX))
		return SHOP_E_LIMIT;
	st = provider_take(p, &c);
	if (st != SHOP_OK)
		goto out;
	st = db_query(c->db,
		      "SELECT idempotency_key, charge_id, amount_cents, currency, refunded"
		      " FROM provider_charges WHERE outcome = 'APPROVED' AND refunded = 0"
		      " AND idempotency_key > $1 ORDER BY idempotency_key LIMIT $2",
		      DB_ARGS(after_key, DB_I64((int64_t)max)), &r);
	if (st != SHOP_OK)
		goto out;
	for (int i = 0; i < db_result_rows(r) && n < max; i++) {
		st = provider_info_read(r, i, &ret_infos[n]);
		if (st != SHOP_OK)
			goto out;
		n++;
	}
out:
	provider_give(p, c);
	db_result_free(r);
	if (st == SHOP_OK)
		*ret_n = n;
	return st;
}

shop_status payments_provider_session_text(struct payments_provider *p, const char *sql, char *out,
					   size_t out_size)
{
	struct db_result *r = NULL;
	struct provider_conn *c = NULL;
	shop_status st = provider_take(p, &c);
	if (st == SHOP_OK)
		st = db_query(c->db, sql, DB_NOARGS, &r);
	if (st == SHOP_OK && (db_result_rows(r) != 1 || !db_result_text(r, 0, 0)))
		st = SHOP_E_NOT_FOUND;
	if (st == SHOP_OK && !text_copy(out, out_size, db_result_text(r, 0, 0)))
		st = SHOP_E_LIMIT;
	provider_give(p, c);
	db_result_free(r);
	return st;
}
