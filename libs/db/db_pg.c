/*
 * db_pg.c - the PostgreSQL backend of db.h, on libpq.
 *
 * Each statement is prepared once per connection (PQprepare, named
 * "shop_<n>") and then run with PQexecPrepared and text parameters, so the
 * server parses and plans it once. The names live in a small LRU cache keyed
 * by SQL text; an evicted statement is closed on the server.
 *
 * A lost session (libpq reports the connection bad, or the server said it is
 * going away: SQLSTATE class 08, 57P01..57P03) fails the call that saw it
 * with SHOP_E_UNAVAILABLE and marks the connection broken; the next call
 * runs PQreset first, forgetting every cached statement name because the new
 * session has none. A session lost inside a transaction loses the
 * transaction: the common layer refuses everything until db_rollback.
 *
 * Round trips are what a statement costs most on a busy machine (each one
 * wakes the server's process and ours: docs/performance.md), so db_begin
 * sends nothing. The BEGIN goes out with the transaction's first statement,
 * in one pipeline (libpq's pipeline mode: several commands sent before any
 * answer is read), and db_exec_commit sends its statement and the COMMIT the
 * same way. A transaction that ends before any statement ran never reaches
 * the server at all.
 *
 * Messages kept for db_last_error never contain the password: libpq does not
 * put it in its messages, and what we keep is redacted anyway.
 */
#include "db_internal.h"

#include "core/config.h"
#include "core/xalloc.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key of the transaction-level advisory lock that serialises migrations
 * between replicas of a service (each service has its own database). */
#define DB_PG_MIGRATION_LOCK_KEY 32484450158602599 /* "shopmig" in ASCII */
/* How much of a statement an error message quotes. */
#define DB_PG_SQL_QUOTE 120

#define DB_PG_STR_(x) #x
#define DB_PG_STR(x) DB_PG_STR_(x)

struct db_pg_stmt {
	char name[32];
	int nparams;
};

struct db_pg {
	struct db base; /* first, so a struct db * is a struct db_pg * */
	PGconn *conn;
	bool broken;        /* reset before the next call */
	bool begin_pending; /* db_begin's BEGIN, not sent yet */
	uint64_t stmt_seq;
	struct db_stmt_cache cache;
	/* The password as written in the URL, to redact messages that quote the
	 * URL (PQpass gives the decoded one). */
	char *url_password;
};

static struct db_pg *db_pg_of(struct db *db)
{
	return (struct db_pg *)db;
}

/*
 * The one translation of PostgreSQL errors. STATE is the SQLSTATE (NULL when
 * libpq made the error up itself). *ret_lost says whether the session is gone
 * and must be reset before the next call.
 */
static shop_status db_pg_status_of(const PGconn *conn, const char *state, bool *ret_lost)
{
	bool bad = PQstatus(conn) != CONNECTION_OK;
	bool lost = bad || (state && (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
				      strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0));
	*ret_lost = lost;
	if (lost)
		return SHOP_E_UNAVAILABLE;
	if (!state)
		return SHOP_E_INTERNAL;
	if (strcmp(state, "23505") == 0)
		return SHOP_E_DUPLICATE;
	if (strncmp(state, "23", 2) == 0)
		return SHOP_E_CONFLICT;
	/* Serialization failure and deadlock: the transaction was rolled back
	 * and redoing it will succeed. */
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return SHOP_E_UNAVAILABLE;
	/* too_many_connections: the server is up but full right now. */
	if (strcmp(state, "53300") == 0)
		return SHOP_E_UNAVAILABLE;
	return SHOP_E_INTERNAL;
}

static void db_pg_redact(struct db_pg *db, char msg[DB_ERROR_MAX])
{
	db_redact(msg, PQpass(db->conn));
	db_redact(msg, db->url_password);
}

static shop_status db_pg_fail(struct db_pg *db, const PGresult *res, const char *sql)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/* The primary message only: DETAIL may quote row values. */
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg && res && *PQresultErrorMessage(res))
		msg = PQresultErrorMessage(res);
	if (!msg)
		msg = PQerrorMessage(db->conn);
	bool lost = false;
	shop_status st = db_pg_status_of(db->conn, state, &lost);
	if (lost)
		db->broken = true;
	db_set_error(&db->base, "postgres: %s%s%s in: %.*s", state ? state : "", state ? " " : "",
		     msg, DB_PG_SQL_QUOTE, sql);
	db_pg_redact(db, db->base.error);
	return st;
}

static void db_pg_release(void *ctx, void *handle)
{
	free(handle);
}

static void db_pg_deallocate(struct db_pg *db, struct db_pg_stmt *s)
{
	/* A protocol-level Close: allowed even in an aborted transaction. A
	 * failure only leaves a statement on the server until the session ends. */
	PQclear(PQclosePrepared(db->conn, s->name));
	free(s);
}

/* Makes sure there is a live session, resetting a lost one. */
static shop_status db_pg_ready(struct db_pg *db)
{
	if (!db->broken && PQstatus(db->conn) == CONNECTION_OK)
		return SHOP_OK;
	if (db->base.in_tx) {
		db_set_error(&db->base, "postgres: connection lost inside a transaction");
		return SHOP_E_UNAVAILABLE;
	}
	/* The statements prepared on the old session died with it. */
	db_stmt_cache_clear(&db->cache, db_pg_release, NULL);
	PQreset(db->conn);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db->broken = true;
		db_set_error(&db->base, "postgres: reconnect failed: %s", PQerrorMessage(db->conn));
		db_pg_redact(db, db->base.error);
		return SHOP_E_UNAVAILABLE;
	}
	db->broken = false;
	return SHOP_OK;
}

static shop_status db_pg_prepare(struct db_pg *db, const char *sql, struct db_pg_stmt **ret_stmt)
{
	shop_status st = SHOP_OK;
	struct db_pg_stmt *s = db_stmt_cache_get(&db->cache, sql);
	if (s) {
		*ret_stmt = s;
		return SHOP_OK;
	}
	s = xcalloc(1, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "shop_%" PRIu64, ++db->stmt_seq);
	PGresult *res = PQprepare(db->conn, s->name, sql, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		st = db_pg_fail(db, res, sql);
		free(s);
		goto out;
	}
	PQclear(res);
	/* The parameter count, so that a wrong count is refused here as on
	 * SQLite rather than by the server as a protocol violation (08P01). */
	res = PQdescribePrepared(db->conn, s->name);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		st = db_pg_fail(db, res, sql);
		db_pg_deallocate(db, s);
		goto out;
	}
	s->nparams = PQnparams(res);
	struct db_pg_stmt *evicted = db_stmt_cache_put(&db->cache, sql, s);
	if (evicted)
		db_pg_deallocate(db, evicted);
	*ret_stmt = s;
out:
	PQclear(res);
	return st;
}

static int64_t db_pg_changes(PGresult *res)
{
	/* A SELECT's tag counts rows returned, not rows changed. */
	if (strncmp(PQcmdStatus(res), "SELECT", 6) == 0)
		return 0;
	const char *n = PQcmdTuples(res);
	return *n ? (int64_t)strtoll(n, NULL, 10) : 0;
}

static struct db_result *db_pg_copy(const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res);
	struct db_result *r = db_result_new(cols);
	for (int i = 0; i < rows; i++) {
		db_result_add_row(r);
		for (int c = 0; c < cols; c++) {
			if (PQgetisnull(res, i, c))
				continue; /* cells start as NULL */
			db_result_set(r, c, PQgetvalue(res, i, c), (size_t)PQgetlength(res, i, c));
		}
	}
	return r;
}

/* The commands of one pipeline, in the order they are sent. */
enum db_pg_cmd { DB_PG_CMD_BEGIN, DB_PG_CMD_STMT, DB_PG_CMD_COMMIT, DB_PG_CMDS };

static bool db_pg_send_simple(PGconn *conn, const char *sql)
{
	return PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
}

/*
 * Runs the prepared statement S in one round trip with what the transaction
 * owes around it: the deferred BEGIN (when BEGIN) and the COMMIT (when
 * COMMIT). *ret_res is the statement's result, NULL when none came (the
 * caller clears it). Returns the failure of BEGIN, of COMMIT or of the
 * pipeline itself, with db->base.error set; the statement's own outcome is
 * the caller's to read from *ret_res. A statement that fails makes the
 * server skip the COMMIT (PGRES_PIPELINE_ABORTED) and leaves the
 * transaction failed, for the caller's rollback, as outside a pipeline.
 */
static shop_status db_pg_pipeline(struct db_pg *db, const struct db_pg_stmt *s, const char *sql,
				  int nparams, const char *const *params, bool begin, bool commit,
				  PGresult **ret_res)
{
	PGconn *conn = db->conn;
	PGresult *res[DB_PG_CMDS] = { NULL };
	shop_status st = SHOP_OK;
	*ret_res = NULL;
	if (!PQenterPipelineMode(conn))
		return db_pg_fail(db, NULL, sql);
	bool sent = (!begin || db_pg_send_simple(conn, "BEGIN")) &&
		    PQsendQueryPrepared(conn, s->name, nparams, params, NULL, NULL, 0) == 1 &&
		    (!commit || db_pg_send_simple(conn, "COMMIT")) && PQpipelineSync(conn) == 1;
	if (!sent) {
		st = db_pg_fail(db, NULL, sql);
		db->broken = true; /* what was sent is unknown: start a new session */
		goto out;
	}
	/* Each command's result is followed by a NULL, and the sync's result
	 * ends the pipeline. Two NULLs in a row: the session is gone. */
	int cmd = begin ? DB_PG_CMD_BEGIN : DB_PG_CMD_STMT;
	int nulls = 0;
	for (;;) {
		PGresult *r = PQgetResult(conn);
		if (!r) {
			if (++nulls == 2)
				break;
			cmd = cmd == DB_PG_CMD_STMT && !commit ? DB_PG_CMDS : cmd + 1;
			continue;
		}
		nulls = 0;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (cmd >= DB_PG_CMDS || res[cmd]) {
			PQclear(r); /* more than one result for a command: keep the first */
			continue;
		}
		res[cmd] = r;
	}
	if (begin && PQresultStatus(res[DB_PG_CMD_BEGIN]) != PGRES_COMMAND_OK) {
		st = db_pg_fail(db, res[DB_PG_CMD_BEGIN], "BEGIN");
	} else if (commit && PQresultStatus(res[DB_PG_CMD_STMT]) != PGRES_PIPELINE_ABORTED &&
		   PQresultStatus(res[DB_PG_CMD_STMT]) != PGRES_FATAL_ERROR &&
		   PQresultStatus(res[DB_PG_CMD_COMMIT]) != PGRES_COMMAND_OK) {
		st = db_pg_fail(db, res[DB_PG_CMD_COMMIT], "COMMIT");
	} else if (commit && res[DB_PG_CMD_COMMIT] &&
		   PQresultStatus(res[DB_PG_CMD_COMMIT]) == PGRES_COMMAND_OK &&
		   strcmp(PQcmdStatus(res[DB_PG_CMD_COMMIT]), "COMMIT") != 0) {
		db_set_error(&db->base, "postgres: COMMIT ended in %s",
			     PQcmdStatus(res[DB_PG_CMD_COMMIT]));
		st = SHOP_E_INTERNAL;
	}
	*ret_res = res[DB_PG_CMD_STMT];
	res[DB_PG_CMD_STMT] = NULL;
out:
	/* Refused only with results still unread, which the loop above leaves
	 * only on a lost session: then PQreset starts afresh. */
	if (!PQexitPipelineMode(conn))
		db->broken = true;
	PQclear(res[DB_PG_CMD_BEGIN]);
	PQclear(res[DB_PG_CMD_COMMIT]);
	return st;
}

/* One statement; with COMMIT, the transaction's COMMIT goes with it, and
 * *ret_over (COMMIT only) says whether it ran: the statement succeeded. */
static shop_status db_pg_exec(struct db_pg *db, const char *sql, int nparams,
			      const char *const *params, bool commit, int64_t *ret_changes,
			      struct db_result **ret_result, bool *ret_over)
{
	struct db *base = &db->base;
	struct db_pg_stmt *s = NULL;
	PGresult *res = NULL;
	shop_status st = db_pg_ready(db);
	if (st == SHOP_OK)
		st = db_pg_prepare(db, sql, &s);
	if (st != SHOP_OK)
		return st;
	if (s->nparams != nparams) {
		db_set_error(base, "postgres: statement takes %d parameters, %d given in: %.*s",
			     s->nparams, nparams, DB_PG_SQL_QUOTE, sql);
		return SHOP_E_INTERNAL;
	}
	bool begin = db->begin_pending;
	db->begin_pending = false; /* sent now, or the transaction failed */
	shop_status piped = SHOP_OK;
	if (begin || commit)
		piped = db_pg_pipeline(db, s, sql, nparams, params, begin, commit, &res);
	else
		res = PQexecPrepared(db->conn, s->name, nparams, params, NULL, NULL, 0);
	ExecStatusType es = PQresultStatus(res);
	bool ran = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK;
	if (ret_over)
		*ret_over = ran;
	if (piped != SHOP_OK && (ran || es == PGRES_PIPELINE_ABORTED || !res)) {
		st = piped; /* the statement did not fail by itself */
		goto out;
	}
	if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
		st = db_pg_fail(db, res, sql);
		/* "cached plan must not change result type" after a table changed
		 * shape: prepare afresh next time. */
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (!db->broken && state && strcmp(state, "0A000") == 0) {
			struct db_pg_stmt *old = db_stmt_cache_remove(&db->cache, sql);
			if (old)
				db_pg_deallocate(db, old);
		}
		goto out;
	}
	*ret_changes = db_pg_changes(res);
	if (ret_result)
		*ret_result = db_pg_copy(res);
out:
	PQclear(res);
	return st;
}

static shop_status db_pg_run(struct db *base, const char *sql, int nparams,
			     const char *const *params, int64_t *ret_changes,
			     struct db_result **ret_result)
{
	return db_pg_exec(db_pg_of(base), sql, nparams, params, false, ret_changes, ret_result,
			  NULL);
}

static shop_status db_pg_run_commit(struct db *base, const char *sql, int nparams,
				    const char *const *params, int64_t *ret_changes, bool *ret_over)
{
	return db_pg_exec(db_pg_of(base), sql, nparams, params, true, ret_changes, NULL, ret_over);
}

/* A statement without parameters through the simple protocol (several
 * statements allowed); RET_TAG (may be NULL) receives the command tag of
 * the last one. */
static shop_status db_pg_simple(struct db_pg *db, const char *sql, char *ret_tag, size_t tag_size)
{
	shop_status st = db_pg_ready(db);
	if (st != SHOP_OK)
		return st;
	/* The simple protocol takes several statements in one message: the
	 * deferred BEGIN rides in front, and the tag is still the last one's. */
	char *joined = NULL;
	if (db->begin_pending) {
		db->begin_pending = false;
		joined = xasprintf("BEGIN; %s", sql);
	}
	PGresult *res = PQexec(db->conn, joined ? joined : sql);
	free(joined);
	ExecStatusType es = PQresultStatus(res);
	if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK && es != PGRES_EMPTY_QUERY)
		st = db_pg_fail(db, res, sql);
	else if (ret_tag)
		snprintf(ret_tag, tag_size, "%s", PQcmdStatus(res));
	PQclear(res);
	return st;
}

static shop_status db_pg_script(struct db *base, const char *sql)
{
	return db_pg_simple(db_pg_of(base), sql, NULL, 0);
}

static shop_status db_pg_begin(struct db *base)
{
	struct db_pg *db = db_pg_of(base);
	/* A lost session is found now, as when BEGIN went out at once. */
	shop_status st = db_pg_ready(db);
	if (st == SHOP_OK)
		db->begin_pending = true;
	return st;
}

static shop_status db_pg_commit(struct db *base)
{
	struct db_pg *db = db_pg_of(base);
	char tag[32];
	if (db->begin_pending) { /* nothing ran: nothing to commit */
		db->begin_pending = false;
		return SHOP_OK;
	}
	shop_status st = db_pg_simple(db, "COMMIT", tag, sizeof(tag));
	/* COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK. */
	if (st == SHOP_OK && strcmp(tag, "COMMIT") != 0) {
		db_set_error(base, "postgres: COMMIT ended in %s", tag);
		st = SHOP_E_INTERNAL;
	}
	return st;
}

static void db_pg_rollback(struct db *base)
{
	struct db_pg *db = db_pg_of(base);
	db->begin_pending = false;
	if (db->broken || PQstatus(db->conn) != CONNECTION_OK ||
	    PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return; /* nothing to roll back, or the server already did */
	PGresult *res = PQexec(db->conn, "ROLLBACK");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char keep[DB_ERROR_MAX];
		memcpy(keep, base->error, sizeof(keep));
		(void)db_pg_fail(db, res, "ROLLBACK");
		/* Keep the error that led to the rollback; note only a lost session. */
		memcpy(base->error, keep, sizeof(keep));
	}
	PQclear(res);
}

static shop_status db_pg_migration_lock(struct db *base)
{
	/* Released by the end of the transaction, whichever way it ends. */
	return db_pg_simple(db_pg_of(base),
			    "SELECT pg_advisory_xact_lock(" DB_PG_STR(DB_PG_MIGRATION_LOCK_KEY) ")",
			    NULL, 0);
}

static void db_pg_close(struct db *base)
{
	struct db_pg *db = db_pg_of(base);
	db_stmt_cache_clear(&db->cache, db_pg_release, NULL);
	PQfinish(db->conn); /* the server drops the session's statements */
	free(db->url_password);
	free(db);
}

static const struct db_ops db_pg_ops = {
	.auto_id = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
	.run = db_pg_run,
	.run_commit = db_pg_run_commit,
	.script = db_pg_script,
	.begin = db_pg_begin,
	.commit = db_pg_commit,
	.rollback = db_pg_rollback,
	.migration_lock = db_pg_migration_lock,
	.close = db_pg_close,
};

/* Server notices (e.g. "relation already exists, skipping") would go to
 * stderr; library code does not log. */
static void db_pg_notice_ignore(void *arg, const char *message)
{
}

/* The password as written in URL ("scheme://user:password@host..." or
 * "...?password=..."), or NULL. */
static char *db_pg_url_password(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return NULL;
	p += 3;
	const char *q = strstr(p, "password=");
	if (q) {
		q += strlen("password=");
		return xstrndup(q, strcspn(q, "&"));
	}
	size_t auth_len = strcspn(p, "/?");
	const char *at = NULL;
	for (const char *c = p; c < p + auth_len; c++)
		if (*c == '@')
			at = c;
	if (!at)
		return NULL;
	const char *colon = memchr(p, ':', (size_t)(at - p));
	if (!colon || colon + 1 == at)
		return NULL;
	return xstrndup(colon + 1, (size_t)(at - colon - 1));
}

shop_status db_pg_open(const char *url, bool readonly, struct db **ret_db, char err[DB_ERROR_MAX])
{
	shop_status st;
	char *password = db_pg_url_password(url);
	char *parse_error = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &parse_error);
	if (!opts) {
		/* libpq may quote the whole URL here. */
		db_format_error(err, "postgres: invalid URL: %s",
				parse_error ? parse_error : "out of memory");
		db_redact(err, password);
		PQfreemem(parse_error);
		free(password);
		return SHOP_E_INVALID;
	}
	PQconninfoFree(opts);

	/* Defaults first: with expand_dbname the URL (dbname) comes later and
	 * overrides them, so a connect_timeout in the URL wins. */
	const char *keys[5], *values[5];
	int k = 0;
	keys[k] = "connect_timeout";
	values[k++] = DB_PG_STR(DB_PG_CONNECT_TIMEOUT_S);
	/* A startup option, not a SET after connecting: PQreset keeps it, so
	 * a reconnected session is read-only too. */
	if (readonly) {
		keys[k] = "options";
		values[k++] = "-c default_transaction_read_only=on";
	}
	const char *service = config_str("SHOP_SERVICE", NULL);
	if (service) {
		keys[k] = "application_name";
		values[k++] = service;
	}
	keys[k] = "dbname";
	values[k++] = url;
	keys[k] = NULL;
	values[k] = NULL;

	struct db_pg *db = xcalloc(1, sizeof(*db));
	db_init(&db->base, &db_pg_ops, DB_POSTGRES);
	db->url_password = password;
	db->conn = PQconnectdbParams(keys, values, 1);
	if (!db->conn) {
		db_format_error(err, "postgres: out of memory");
		st = SHOP_E_INTERNAL;
		goto fail;
	}
	PQsetNoticeProcessor(db->conn, db_pg_notice_ignore, NULL);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_format_error(err, "postgres: cannot connect: %s", PQerrorMessage(db->conn));
		db_pg_redact(db, err);
		st = SHOP_E_UNAVAILABLE;
		goto fail;
	}
	*ret_db = &db->base;
	return SHOP_OK;
fail:
	PQfinish(db->conn);
	free(db->url_password);
	free(db);
	return st;
}
