/*
 * db.c - the backend-independent half of db.h: URL dispatch, transaction
 * rules, the migrations runner, results, the statement cache and errors.
 *
 * Invariants: db->in_tx is true exactly between a successful db_begin and the
 * next db_commit or db_rollback; while db->tx_error is set no statement
 * reaches the backend, so a transaction that lost a statement can only be
 * rolled back, on SQLite as on PostgreSQL. The only mutable state outside a
 * struct db is the per-thread text of the last db_open failure.
 */
#include "db_internal.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why this thread's last db_open failed (there is no struct db to hold it). */
static _Thread_local char db_open_error[DB_ERROR_MAX];

#define DB_RESULT_NULL SIZE_MAX

struct db_result {
	int rows;
	int cols;
	size_t *offsets; /* rows * cols offsets into text; DB_RESULT_NULL for NULL */
	size_t offsets_cap;
	char *text;
	size_t text_len;
	size_t text_cap;
};

/* ---- errors ---- */

void db_format_error_v(char out[DB_ERROR_MAX], const char *fmt, va_list ap)
{
	vsnprintf(out, DB_ERROR_MAX, fmt, ap);
	/* Server messages may span lines; a log line must not. */
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	size_t n = strlen(out);
	while (n > 0 && out[n - 1] == ' ')
		out[--n] = '\0';
}

void db_format_error(char out[DB_ERROR_MAX], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	db_format_error_v(out, fmt, ap);
	va_end(ap);
}

void db_set_error(struct db *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	db_format_error_v(db->error, fmt, ap);
	va_end(ap);
}

void db_redact(char msg[DB_ERROR_MAX], const char *secret)
{
	static const char mask[] = "***";
	if (!secret || !*secret)
		return;
	size_t slen = strlen(secret);
	char out[DB_ERROR_MAX];
	size_t o = 0;
	for (const char *p = msg; *p && o + 1 < sizeof(out);) {
		if (strncmp(p, secret, slen) == 0) {
			for (size_t i = 0; mask[i] && o + 1 < sizeof(out); i++)
				out[o++] = mask[i];
			p += slen;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	memcpy(msg, out, o + 1);
}

/* Puts "PREFIX: " before the current error text. */
static void db_prefix_error(struct db *db, const char *prefix)
{
	char old[DB_ERROR_MAX];
	memcpy(old, db->error, sizeof(old));
	db_set_error(db, "%s: %s", prefix, old);
}

const char *db_last_error(const struct db *db)
{
	return db ? db->error : db_open_error;
}

const char *db_i64_format(char buf[DB_I64_SIZE], int64_t v)
{
	snprintf(buf, DB_I64_SIZE, "%" PRId64, v);
	return buf;
}

/* ---- connections ---- */

void db_init(struct db *db, const struct db_ops *ops, enum db_backend backend)
{
	db->ops = ops;
	db->backend = backend;
	db->in_tx = false;
	db->tx_error = SHOP_OK;
	db->tx_refusal_noted = false;
	db->error[0] = '\0';
}

const char *db_url_sqlite_path(const char *url)
{
	static const char sqlite_prefix[] = "sqlite:";
	if (strncmp(url, sqlite_prefix, strlen(sqlite_prefix)) != 0)
		return NULL;
	const char *path = url + strlen(sqlite_prefix);
	if (strncmp(path, "//", 2) == 0) /* sqlite:///abs/path */
		path += 2;
	return path;
}

static shop_status db_open_mode(const char *url, bool readonly, struct db **ret_db)
{
	static const char sqlite_prefix[] = "sqlite:";
	db_open_error[0] = '\0';
	if (!url || !ret_db) {
		db_format_error(db_open_error, "db_open: no URL");
		return SHOP_E_INVALID;
	}
	if (strncmp(url, sqlite_prefix, strlen(sqlite_prefix)) == 0) {
		const char *path = db_url_sqlite_path(url);
		if (!*path) {
			db_format_error(db_open_error, "db_open: sqlite URL without a path");
			return SHOP_E_INVALID;
		}
		return db_sqlite_open(path, readonly, ret_db, db_open_error);
	}
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
		return db_pg_open(url, readonly, ret_db, db_open_error);
	/* Name only the scheme: the rest may hold a password. */
	size_t scheme = strcspn(url, ":");
	db_format_error(db_open_error, "db_open: unknown URL scheme \"%.*s\"",
			(int)(scheme < 20 ? scheme : 20), url);
	return SHOP_E_INVALID;
}

shop_status db_open(const char *url, struct db **ret_db)
{
	return db_open_mode(url, false, ret_db);
}

shop_status db_open_readonly(const char *url, struct db **ret_db)
{
	return db_open_mode(url, true, ret_db);
}

void db_close(struct db *db)
{
	if (db)
		db->ops->close(db);
}

void db_writer_first(struct db *db)
{
	if (db && db->ops->writer_first)
		db->ops->writer_first(db);
}

enum db_backend db_backend_of(const struct db *db)
{
	return db->backend;
}

/* ---- statements and transactions ---- */

/* The answer to any call made after a statement of the transaction failed. */
static shop_status db_tx_refuse(struct db *db)
{
	if (!db->tx_refusal_noted) {
		db_prefix_error(db, "transaction already failed, roll it back");
		db->tx_refusal_noted = true;
	}
	/* A lost connection is worth redoing; anything else is a caller bug. */
	return db->tx_error == SHOP_E_UNAVAILABLE ? SHOP_E_UNAVAILABLE : SHOP_E_INTERNAL;
}

static void db_tx_note(struct db *db, shop_status st)
{
	if (st != SHOP_OK && db->in_tx && db->tx_error == SHOP_OK)
		db->tx_error = st;
}

static shop_status db_run(struct db *db, const char *sql, int nparams, const char *const *params,
			  int64_t *ret_changes, struct db_result **ret_result)
{
	shop_status st;
	if (!db || !sql)
		return SHOP_E_INVALID;
	if (db->in_tx && db->tx_error != SHOP_OK)
		return db_tx_refuse(db);
	if (nparams < 0 || nparams > DB_PARAMS_MAX) {
		db_set_error(db, "%d parameters; at most %d allowed", nparams, DB_PARAMS_MAX);
		st = SHOP_E_LIMIT;
		goto out;
	}
	if (nparams > 0 && !params) {
		db_set_error(db, "%d parameters announced but none given", nparams);
		st = SHOP_E_INVALID;
		goto out;
	}
	int64_t changes = 0;
	struct db_result *result = NULL;
	st = db->ops->run(db, sql, nparams, params, &changes, ret_result ? &result : NULL);
	if (st == SHOP_OK) {
		if (ret_changes)
			*ret_changes = changes;
		if (ret_result)
			*ret_result = result;
	}
out:
	db_tx_note(db, st);
	return st;
}

shop_status db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
		    int64_t *ret_changes)
{
	return db_run(db, sql, nparams, params, ret_changes, NULL);
}

shop_status db_query(struct db *db, const char *sql, int nparams, const char *const *params,
		     struct db_result **ret_result)
{
	if (!ret_result)
		return SHOP_E_INVALID;
	return db_run(db, sql, nparams, params, NULL, ret_result);
}

shop_status db_ping(struct db *db)
{
	struct db_result *r = NULL;
	if (!db)
		return SHOP_E_INVALID;
	shop_status st = db_query(db, "SELECT 1", DB_NOARGS, &r);
	/* A connection that died while idle fails once before it is noticed;
	 * outside a transaction the second try reconnects, so readiness reflects
	 * whether the database is up now, not whether it restarted meanwhile. */
	if (st == SHOP_E_UNAVAILABLE && !db->in_tx)
		st = db_query(db, "SELECT 1", DB_NOARGS, &r);
	db_result_free(r);
	if (st == SHOP_OK && !db->in_tx && db->ops->probe)
		st = db->ops->probe(db);
	return st;
}

shop_status db_begin(struct db *db)
{
	if (!db)
		return SHOP_E_INVALID;
	if (db->in_tx) {
		db_set_error(db, "db_begin inside a transaction");
		return SHOP_E_INTERNAL;
	}
	shop_status st = db->ops->begin(db);
	if (st == SHOP_OK) {
		db->in_tx = true;
		db->tx_error = SHOP_OK;
		db->tx_refusal_noted = false;
	}
	return st;
}

static void db_tx_end(struct db *db)
{
	db->in_tx = false;
	db->tx_error = SHOP_OK;
	db->tx_refusal_noted = false;
}

shop_status db_commit(struct db *db)
{
	shop_status st;
	if (!db)
		return SHOP_E_INVALID;
	if (!db->in_tx) {
		db_set_error(db, "db_commit without db_begin");
		return SHOP_E_INTERNAL;
	}
	if (db->tx_error != SHOP_OK) {
		st = db_tx_refuse(db);
		db->ops->rollback(db);
		goto out;
	}
	st = db->ops->commit(db);
	if (st != SHOP_OK)
		db->ops->rollback(db);
out:
	db_tx_end(db);
	return st;
}

shop_status db_exec_commit(struct db *db, const char *sql, int nparams, const char *const *params,
			   int64_t *ret_changes, bool *ret_over)
{
	*ret_over = false;
	if (!db || !sql)
		return SHOP_E_INVALID;
	if (!db->in_tx) {
		db_set_error(db, "db_exec_commit without db_begin");
		return SHOP_E_INTERNAL;
	}
	if (!db->ops->run_commit || db->tx_error != SHOP_OK || nparams < 0 ||
	    nparams > DB_PARAMS_MAX || (nparams > 0 && !params)) {
		/* The plain path, which also refuses what is wrong. */
		shop_status st = db_exec(db, sql, nparams, params, ret_changes);
		if (st != SHOP_OK)
			return st;
		*ret_over = true;
		return db_commit(db);
	}
	int64_t changes = 0;
	bool over = false;
	shop_status st = db->ops->run_commit(db, sql, nparams, params, &changes, &over);
	if (!over) {
		db_tx_note(db, st); /* the statement failed: the transaction stays */
		return st;
	}
	*ret_over = true;
	if (st == SHOP_OK && ret_changes)
		*ret_changes = changes;
	if (st != SHOP_OK)
		db->ops->rollback(db);
	db_tx_end(db);
	return st;
}

/* One savepoint level, under a fixed name: a batch of messages gives each
 * its own in turn, never nested. */
#define DB_SAVEPOINT_SQL "SAVEPOINT db_item"
#define DB_SAVEPOINT_RELEASE_SQL "RELEASE SAVEPOINT db_item"
#define DB_SAVEPOINT_ROLLBACK_SQL "ROLLBACK TO SAVEPOINT db_item; RELEASE SAVEPOINT db_item"

static shop_status db_savepoint_run(struct db *db, const char *sql)
{
	if (!db)
		return SHOP_E_INVALID;
	if (!db->in_tx) {
		db_set_error(db, "savepoint outside a transaction");
		return SHOP_E_INTERNAL;
	}
	if (db->tx_error != SHOP_OK)
		return db_tx_refuse(db);
	shop_status st = db->ops->script(db, sql);
	db_tx_note(db, st);
	return st;
}

shop_status db_savepoint(struct db *db)
{
	return db_savepoint_run(db, DB_SAVEPOINT_SQL);
}

shop_status db_savepoint_release(struct db *db)
{
	return db_savepoint_run(db, DB_SAVEPOINT_RELEASE_SQL);
}

shop_status db_savepoint_rollback(struct db *db)
{
	if (!db)
		return SHOP_E_INVALID;
	if (!db->in_tx) {
		db_set_error(db, "savepoint rollback outside a transaction");
		return SHOP_E_INTERNAL;
	}
	/* A lost connection or storage took the whole transaction with it. */
	if (db->tx_error == SHOP_E_UNAVAILABLE)
		return SHOP_E_UNAVAILABLE;
	char keep[DB_ERROR_MAX];
	memcpy(keep, db->error, sizeof(keep));
	shop_status st = db->ops->script(db, DB_SAVEPOINT_ROLLBACK_SQL);
	if (st == SHOP_OK) {
		/* The failure is undone: the transaction goes on. The error text
		 * is kept, for the caller's report of what failed. */
		db->tx_error = SHOP_OK;
		db->tx_refusal_noted = false;
		memcpy(db->error, keep, sizeof(keep));
	} else {
		db_tx_note(db, st);
		if (db->tx_error != SHOP_E_UNAVAILABLE)
			db->tx_error = SHOP_E_UNAVAILABLE; /* the transaction is unusable */
	}
	return st;
}

void db_rollback(struct db *db)
{
	if (!db)
		return;
	db->ops->rollback(db);
	db_tx_end(db);
}

shop_status db_checkpoint(struct db *db, int64_t *ret_frames)
{
	if (!db)
		return SHOP_E_INVALID;
	if (ret_frames)
		*ret_frames = 0;
	if (db->backend != DB_SQLITE)
		return SHOP_OK;
	if (db->in_tx) {
		db_set_error(db, "db_checkpoint inside a transaction");
		return SHOP_E_INTERNAL;
	}
	return db_sqlite_checkpoint(db, ret_frames);
}

/* ---- migrations ---- */

static char *db_replace_all(const char *s, const char *token, const char *with)
{
	size_t tlen = strlen(token), wlen = strlen(with), n = 0;
	for (const char *p = strstr(s, token); p; p = strstr(p + tlen, token))
		n++;
	char *out = xmalloc(strlen(s) + n * wlen + 1);
	char *o = out;
	for (const char *p = s;;) {
		const char *hit = strstr(p, token);
		size_t keep = hit ? (size_t)(hit - p) : strlen(p);
		memcpy(o, p, keep);
		o += keep;
		if (!hit)
			break;
		memcpy(o, with, wlen);
		o += wlen;
		p = hit + tlen;
	}
	*o = '\0';
	return out;
}

/* The bookkeeping table, created under the same lock as the migrations so
 * replicas starting together do not race on CREATE TABLE. */
static shop_status db_migrate_table(struct db *db)
{
	shop_status st = db_begin(db);
	if (st != SHOP_OK)
		return st;
	st = db->ops->migration_lock(db);
	if (st == SHOP_OK)
		st = db_exec(db,
			     "CREATE TABLE IF NOT EXISTS schema_migrations ("
			     "name TEXT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
			     DB_NOARGS, NULL);
	if (st == SHOP_OK)
		return db_commit(db);
	db_rollback(db);
	return st;
}

static shop_status db_migrate_one(struct db *db, const struct db_migration *m)
{
	struct db_result *r = NULL;
	char *sql = NULL;
	shop_status st = db_begin(db);
	if (st != SHOP_OK)
		return st;
	st = db->ops->migration_lock(db);
	if (st != SHOP_OK)
		goto out;
	/* Checked again under the lock: another replica may just have done it. */
	st = db_query(db, "SELECT 1 FROM schema_migrations WHERE name = $1", DB_ARGS(m->name), &r);
	if (st != SHOP_OK || db_result_rows(r) > 0)
		goto out;
	sql = db_replace_all(m->sql, "@AUTO_ID@", db->ops->auto_id);
	st = db->ops->script(db, sql);
	db_tx_note(db, st);
	if (st != SHOP_OK)
		goto out;
	st = db_exec(db, "INSERT INTO schema_migrations (name, applied_at_ms) VALUES ($1, $2)",
		     DB_ARGS(m->name, DB_I64(clock_now_ms())), NULL);
	if (st == SHOP_OK) {
		st = db_commit(db);
		goto done;
	}
out:
	db_rollback(db);
done:
	free(sql);
	db_result_free(r);
	return st;
}

shop_status db_migration_lock(struct db *db)
{
	if (!db || !db->in_tx)
		return SHOP_E_INVALID;
	return db->ops->migration_lock(db);
}

shop_status db_migrate(struct db *db, const struct db_migration *migrations, size_t n)
{
	if (!db || (n > 0 && !migrations))
		return SHOP_E_INVALID;
	if (db->in_tx) {
		db_set_error(db, "db_migrate inside a transaction");
		return SHOP_E_INTERNAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!migrations[i].name || !migrations[i].sql || !*migrations[i].name) {
			db_set_error(db, "migration %zu has no name or no SQL", i);
			return SHOP_E_INVALID;
		}
	}
	shop_status st = db_migrate_table(db);
	if (st != SHOP_OK) {
		db_prefix_error(db, "schema_migrations");
		return st;
	}
	for (size_t i = 0; i < n; i++) {
		st = db_migrate_one(db, &migrations[i]);
		if (st != SHOP_OK) {
			char prefix[128];
			snprintf(prefix, sizeof(prefix), "migration %s", migrations[i].name);
			db_prefix_error(db, prefix);
			return st;
		}
	}
	return SHOP_OK;
}

/* ---- results ---- */

struct db_result *db_result_new(int cols)
{
	struct db_result *r = xcalloc(1, sizeof(*r));
	r->cols = cols;
	return r;
}

void db_result_add_row(struct db_result *r)
{
	size_t need = (size_t)(r->rows + 1) * (size_t)r->cols;
	if (need > r->offsets_cap) {
		size_t cap = r->offsets_cap ? r->offsets_cap * 2 : 16;
		while (cap < need)
			cap *= 2;
		r->offsets = xrealloc(r->offsets, cap * sizeof(*r->offsets));
		r->offsets_cap = cap;
	}
	size_t first = (size_t)r->rows * (size_t)r->cols;
	for (int c = 0; c < r->cols; c++)
		r->offsets[first + (size_t)c] = DB_RESULT_NULL;
	r->rows++;
}

void db_result_set(struct db_result *r, int col, const char *text, size_t len)
{
	if (r->rows == 0 || col < 0 || col >= r->cols)
		return;
	size_t cell = (size_t)(r->rows - 1) * (size_t)r->cols + (size_t)col;
	if (!text) {
		r->offsets[cell] = DB_RESULT_NULL;
		return;
	}
	if (r->text_len + len + 1 > r->text_cap) {
		size_t cap = r->text_cap ? r->text_cap * 2 : 256;
		while (cap < r->text_len + len + 1)
			cap *= 2;
		r->text = xrealloc(r->text, cap);
		r->text_cap = cap;
	}
	memcpy(r->text + r->text_len, text, len);
	r->text[r->text_len + len] = '\0';
	r->offsets[cell] = r->text_len;
	r->text_len += len + 1;
}

int db_result_rows(const struct db_result *r)
{
	return r ? r->rows : 0;
}

const char *db_result_text(const struct db_result *r, int row, int col)
{
	if (!r || row < 0 || row >= r->rows || col < 0 || col >= r->cols)
		return NULL;
	size_t off = r->offsets[(size_t)row * (size_t)r->cols + (size_t)col];
	return off == DB_RESULT_NULL ? NULL : r->text + off;
}

int64_t db_result_int(const struct db_result *r, int row, int col)
{
	const char *s = db_result_text(r, row, col);
	if (!s)
		return 0;
	return (int64_t)strtoll(s, NULL, 10);
}

void db_result_free(struct db_result *r)
{
	if (!r)
		return;
	free(r->offsets);
	free(r->text);
	free(r);
}

/* ---- prepared statement cache ---- */

/* FNV-1a: compared before the strings, so a lookup is one strcmp. */
static uint64_t db_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct db_stmt_cache_entry *db_stmt_cache_find(struct db_stmt_cache *c, const char *sql)
{
	uint64_t h = db_hash(sql);
	for (size_t i = 0; i < DB_STMT_CACHE_SIZE; i++) {
		struct db_stmt_cache_entry *e = &c->entries[i];
		if (e->sql && e->hash == h && strcmp(e->sql, sql) == 0)
			return e;
	}
	return NULL;
}

void *db_stmt_cache_get(struct db_stmt_cache *c, const char *sql)
{
	struct db_stmt_cache_entry *e = db_stmt_cache_find(c, sql);
	if (!e)
		return NULL;
	e->last_used = ++c->tick;
	return e->handle;
}

void *db_stmt_cache_put(struct db_stmt_cache *c, const char *sql, void *handle)
{
	struct db_stmt_cache_entry *victim = &c->entries[0];
	for (size_t i = 0; i < DB_STMT_CACHE_SIZE; i++) {
		struct db_stmt_cache_entry *e = &c->entries[i];
		if (!e->sql) {
			victim = e;
			break;
		}
		if (e->last_used < victim->last_used)
			victim = e;
	}
	void *evicted = victim->sql ? victim->handle : NULL;
	free(victim->sql);
	victim->sql = xstrdup(sql);
	victim->hash = db_hash(sql);
	victim->handle = handle;
	victim->last_used = ++c->tick;
	return evicted;
}

void *db_stmt_cache_remove(struct db_stmt_cache *c, const char *sql)
{
	struct db_stmt_cache_entry *e = db_stmt_cache_find(c, sql);
	if (!e)
		return NULL;
	void *handle = e->handle;
	free(e->sql);
	memset(e, 0, sizeof(*e));
	return handle;
}

void db_stmt_cache_clear(struct db_stmt_cache *c, void (*release)(void *ctx, void *handle),
			 void *ctx)
{
	for (size_t i = 0; i < DB_STMT_CACHE_SIZE; i++) {
		struct db_stmt_cache_entry *e = &c->entries[i];
		if (e->sql) {
			release(ctx, e->handle);
			free(e->sql);
		}
		memset(e, 0, sizeof(*e));
	}
}
