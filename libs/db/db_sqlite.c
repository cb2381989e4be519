/*
 * db_sqlite.c - the SQLite backend of db.h.
 *
 * Every connection runs in WAL mode (readers and the one writer do not block
 * each other), with foreign keys enforced and a busy timeout of
 * DB_SQLITE_BUSY_TIMEOUT_MS, after which a waiting writer gets
 * SHOP_E_UNAVAILABLE. synchronous is FULL unless SHOP_SQLITE_SYNCHRONOUS says
 * NORMAL. The trade-off: with FULL every commit fsyncs the WAL, so a
 * committed transaction survives a power loss; with NORMAL commits skip that
 * fsync (the WAL is synced at checkpoints), which is several times faster
 * but a power loss or kernel crash can undo the last commits (the file is
 * never corrupted, and a mere process crash loses nothing). A service that
 * acknowledges a message or answers a client after commit needs FULL to keep
 * that promise.
 *
 * Parameters $1..$n are SQLite named parameters: each is looked up by name,
 * so they may appear in any order and more than once, and a statement must
 * use exactly $1..$n, as PostgreSQL requires. Values are bound as text (or
 * NULL); column affinity turns them into integers where the schema says so.
 * Prepared statements are cached per connection by SQL text and are always
 * reset after use, so no statement keeps a read transaction open.
 *
 * Writers of one file in one process queue on that file's writer lock (a
 * flag, a mutex and a condition variable) from BEGIN IMMEDIATE to the end
 * of the transaction. SQLite's own busy handler would have them poll,
 * sleeping up to 100 ms between tries, so the write lock sat free while
 * writers slept: the gateway has seven writers on one file. A queued writer
 * is woken the moment the lock is given back, and SQLite's busy timeout is
 * left for writers in other processes and for writes outside a transaction.
 *
 * Writers come in two classes (db_writer_first): those someone is waiting
 * for (an HTTP request) and those working through a backlog (a consumer,
 * the relay). When both wait, the lock alternates between them, starting
 * with the first class: a request waits for at most one backlog
 * transaction instead of one per consumer, and no consumer starves. Each
 * class has its own condition variable, so giving the lock back wakes only
 * a writer that may take it.
 */
#include "db_internal.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How much of a statement an error message quotes. */
#define DB_SQLITE_SQL_QUOTE 120
/* Bytes the write probe stores after a storage failure (two pages). */
#define DB_SQLITE_PROBE_BYTES "8192"

/* Database files one process may have open at once: each has a writer lock
 * (see the file comment). */
#define DB_SQLITE_FILES_MAX 64

struct db_sqlite_file {
	char *path; /* as sqlite3_db_filename gives it: absolute */
	int refs;   /* connections open on it */
	pthread_mutex_t lock;
	/* Signalled when the lock is given back, per class (db_writer_first):
	 * [0] backlog writers, [1] first writers. */
	pthread_cond_t given[2];
	int waiting[2];  /* writers waiting for the lock, per class */
	bool taken;      /* a connection of this process is writing */
	bool last_first; /* the last writer to take it was of the first class */
};

static pthread_mutex_t db_sqlite_files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct db_sqlite_file *db_sqlite_files[DB_SQLITE_FILES_MAX];

struct db_sqlite {
	struct db base; /* first, so a struct db * is a struct db_sqlite * */
	sqlite3 *handle;
	struct db_stmt_cache cache;
	struct db_sqlite_file *file; /* NULL for an in-memory database */
	bool writing;                /* this connection holds file's writer lock */
	bool first;                  /* its writer class: see db_writer_first */
	int lock_timeout_ms;         /* longest wait for it */
	/* A statement failed for want of working storage (disk full, I/O
	 * error): db_ping proves a write works before it says the database is
	 * back, since "SELECT 1" still answers from a full disk. */
	bool storage_failed;
};

static struct db_sqlite *db_sqlite_of(struct db *db)
{
	return (struct db_sqlite *)db;
}

/* Whether RC says the file or its disk cannot take writes now: not the fault
 * of the statement, so never a reason to reject the message that ran it. */
static bool db_sqlite_storage_failure(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_NOLFS:
	case SQLITE_PROTOCOL:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return true;
	default:
		return false;
	}
}

/* The one translation of SQLite result codes (extended codes are on).
 * Storage failures are SHOP_E_UNAVAILABLE, as a PostgreSQL outage is: the
 * caller waits for the database instead of spending the message's
 * deliveries and dead-lettering an innocent message. */
static shop_status db_sqlite_status_of(int rc)
{
	if (db_sqlite_storage_failure(rc))
		return SHOP_E_UNAVAILABLE;
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return SHOP_OK;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
		    rc == SQLITE_CONSTRAINT_ROWID)
			return SHOP_E_DUPLICATE;
		return SHOP_E_CONFLICT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SHOP_E_UNAVAILABLE;
	default:
		return SHOP_E_INTERNAL;
	}
}

static shop_status db_sqlite_fail(struct db_sqlite *db, int rc, const char *sql)
{
	if (db_sqlite_storage_failure(rc))
		db->storage_failed = true;
	db_set_error(&db->base, "sqlite: %s (code %d) in: %.*s", sqlite3_errmsg(db->handle), rc,
		     DB_SQLITE_SQL_QUOTE, sql);
	return db_sqlite_status_of(rc);
}

static shop_status db_sqlite_prepare(struct db_sqlite *db, const char *sql, sqlite3_stmt **ret_stmt)
{
	sqlite3_stmt *stmt = db_stmt_cache_get(&db->cache, sql);
	if (stmt) {
		*ret_stmt = stmt;
		return SHOP_OK;
	}
	const char *tail = NULL;
	int rc = sqlite3_prepare_v3(db->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
	if (rc != SQLITE_OK)
		return db_sqlite_fail(db, rc, sql);
	if (!stmt) {
		db_set_error(&db->base, "sqlite: empty statement");
		return SHOP_E_INTERNAL;
	}
	if (tail && *tail) {
		/* Only whitespace and comments may follow; PostgreSQL refuses a
		 * second statement in a prepared one, so SQLite must too. */
		sqlite3_stmt *extra = NULL;
		rc = sqlite3_prepare_v2(db->handle, tail, -1, &extra, NULL);
		sqlite3_finalize(extra);
		if (rc != SQLITE_OK || extra) {
			sqlite3_finalize(stmt);
			db_set_error(&db->base, "sqlite: several statements in one call in: %.*s",
				     DB_SQLITE_SQL_QUOTE, sql);
			return SHOP_E_INTERNAL;
		}
	}
	sqlite3_finalize(db_stmt_cache_put(&db->cache, sql, stmt));
	*ret_stmt = stmt;
	return SHOP_OK;
}

static shop_status db_sqlite_bind(struct db_sqlite *db, sqlite3_stmt *stmt, const char *sql,
				  int nparams, const char *const *params)
{
	int count = sqlite3_bind_parameter_count(stmt);
	if (count != nparams) {
		db_set_error(&db->base, "sqlite: statement takes %d parameters, %d given in: %.*s",
			     count, nparams, DB_SQLITE_SQL_QUOTE, sql);
		return SHOP_E_INTERNAL;
	}
	for (int k = 1; k <= nparams; k++) {
		char name[16];
		snprintf(name, sizeof(name), "$%d", k);
		int idx = sqlite3_bind_parameter_index(stmt, name);
		if (idx == 0) {
			db_set_error(&db->base, "sqlite: statement does not use %s in: %.*s", name,
				     DB_SQLITE_SQL_QUOTE, sql);
			return SHOP_E_INTERNAL;
		}
		const char *v = params[k - 1];
		int rc = v ? sqlite3_bind_text(stmt, idx, v, -1, SQLITE_TRANSIENT)
			   : sqlite3_bind_null(stmt, idx);
		if (rc != SQLITE_OK)
			return db_sqlite_fail(db, rc, sql);
	}
	return SHOP_OK;
}

static shop_status db_sqlite_run(struct db *base, const char *sql, int nparams,
				 const char *const *params, int64_t *ret_changes,
				 struct db_result **ret_result)
{
	struct db_sqlite *db = db_sqlite_of(base);
	struct db_result *r = NULL;
	sqlite3_stmt *stmt = NULL;
	shop_status st = db_sqlite_prepare(db, sql, &stmt);
	if (st != SHOP_OK)
		return st;
	st = db_sqlite_bind(db, stmt, sql, nparams, params);
	if (st != SHOP_OK)
		goto out;
	int cols = sqlite3_column_count(stmt);
	if (ret_result)
		r = db_result_new(cols);
	sqlite3_int64 before = sqlite3_total_changes64(db->handle);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (!r)
			continue;
		db_result_add_row(r);
		for (int c = 0; c < cols; c++) {
			if (sqlite3_column_type(stmt, c) == SQLITE_NULL)
				continue; /* cells start as NULL */
			/* Integers and reals come back as their decimal text. */
			const char *text = (const char *)sqlite3_column_text(stmt, c);
			int len = sqlite3_column_bytes(stmt, c);
			if (!text) {
				rc = sqlite3_errcode(db->handle);
				if (rc == SQLITE_NOMEM)
					goto step_failed;
				text = "";
				len = 0;
			}
			db_result_set(r, c, text, (size_t)len);
		}
	}
	if (rc != SQLITE_DONE)
		goto step_failed;
	/* sqlite3_changes() keeps the count of the last INSERT, UPDATE or DELETE,
	 * so it is stale after any other statement: trust it only if this one
	 * changed the running total. */
	*ret_changes = sqlite3_total_changes64(db->handle) != before
			       ? (int64_t)sqlite3_changes64(db->handle)
			       : 0;
	if (ret_result) {
		*ret_result = r;
		r = NULL;
	}
	goto out;
step_failed:
	st = db_sqlite_fail(db, rc, sql);
out:
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	db_result_free(r);
	return st;
}

static shop_status db_sqlite_simple(struct db *base, const char *sql)
{
	int64_t changes;
	return db_sqlite_run(base, sql, 0, NULL, &changes, NULL);
}

static shop_status db_sqlite_script(struct db *base, const char *sql)
{
	struct db_sqlite *db = db_sqlite_of(base);
	char *msg = NULL;
	int rc = sqlite3_exec(db->handle, sql, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		return SHOP_OK;
	rc = sqlite3_extended_errcode(db->handle);
	db_set_error(base, "sqlite: %s (code %d)", msg ? msg : sqlite3_errstr(rc), rc);
	sqlite3_free(msg);
	return db_sqlite_status_of(rc);
}

/* The writer lock of PATH, shared by every connection of this process on
 * that file; NULL when DB_SQLITE_FILES_MAX files are open already. */
static struct db_sqlite_file *db_sqlite_file_attach(const char *path)
{
	struct db_sqlite_file *f = NULL, **slot = NULL;
	pthread_mutex_lock(&db_sqlite_files_lock);
	for (size_t i = 0; i < DB_SQLITE_FILES_MAX && !f; i++) {
		if (!db_sqlite_files[i])
			slot = slot ? slot : &db_sqlite_files[i];
		else if (strcmp(db_sqlite_files[i]->path, path) == 0)
			f = db_sqlite_files[i];
	}
	if (!f && slot) {
		f = xcalloc(1, sizeof(*f));
		f->path = xstrdup(path);
		pthread_mutex_init(&f->lock, NULL);
		clock_cond_init(&f->given[0]);
		clock_cond_init(&f->given[1]);
		*slot = f;
	}
	if (f)
		f->refs++;
	pthread_mutex_unlock(&db_sqlite_files_lock);
	return f;
}

static void db_sqlite_file_detach(struct db_sqlite_file *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&db_sqlite_files_lock);
	if (--f->refs == 0) {
		for (size_t i = 0; i < DB_SQLITE_FILES_MAX; i++)
			if (db_sqlite_files[i] == f)
				db_sqlite_files[i] = NULL;
		pthread_cond_destroy(&f->given[0]);
		pthread_cond_destroy(&f->given[1]);
		pthread_mutex_destroy(&f->lock);
		free(f->path);
		free(f);
	}
	pthread_mutex_unlock(&db_sqlite_files_lock);
}

/* Whether a writer of class FIRST may take F's lock now (F->lock held):
 * it is free, and the other class is not owed its turn. */
static bool db_sqlite_may_take(const struct db_sqlite_file *f, bool first)
{
	if (f->taken)
		return false;
	if (first)
		return !(f->last_first && f->waiting[0] > 0);
	return f->waiting[1] == 0 || f->last_first;
}

/* Wakes one writer that may take F's free lock, if any waits (F->lock
 * held). */
static void db_sqlite_file_wake(struct db_sqlite_file *f)
{
	if (f->waiting[1] > 0 && db_sqlite_may_take(f, true))
		pthread_cond_signal(&f->given[1]);
	else if (f->waiting[0] > 0 && db_sqlite_may_take(f, false))
		pthread_cond_signal(&f->given[0]);
}

/* Waits for the file's writer lock, up to lock_timeout_ms. */
static shop_status db_sqlite_writer_take(struct db_sqlite *db)
{
	struct db_sqlite_file *f = db->file;
	if (!f || db->writing)
		return SHOP_OK;
	struct timespec until = clock_mono_deadline(db->lock_timeout_ms);
	bool timed_out = false;
	int cls = db->first ? 1 : 0;
	pthread_mutex_lock(&f->lock);
	f->waiting[cls]++;
	while (!timed_out && !db_sqlite_may_take(f, db->first))
		timed_out = pthread_cond_timedwait(&f->given[cls], &f->lock, &until) != 0 &&
			    !db_sqlite_may_take(f, db->first);
	f->waiting[cls]--;
	if (!timed_out) {
		f->taken = true;
		f->last_first = db->first;
	} else {
		db_sqlite_file_wake(f); /* a turn owed to this writer passes on */
	}
	pthread_mutex_unlock(&f->lock);
	if (timed_out) {
		db_set_error(&db->base,
			     "sqlite: database busy: another connection of this process kept the "
			     "write lock for %d ms",
			     db->lock_timeout_ms);
		return SHOP_E_UNAVAILABLE;
	}
	db->writing = true;
	return SHOP_OK;
}

static void db_sqlite_file_give(struct db_sqlite_file *f)
{
	pthread_mutex_lock(&f->lock);
	f->taken = false;
	db_sqlite_file_wake(f);
	pthread_mutex_unlock(&f->lock);
}

/* Gives the writer lock back once the transaction is over (committed,
 * rolled back, or never begun). */
static void db_sqlite_writer_give(struct db_sqlite *db)
{
	if (!db->writing || !sqlite3_get_autocommit(db->handle))
		return;
	db->writing = false;
	db_sqlite_file_give(db->file);
}

/* IMMEDIATE takes the write lock now: two deferred transactions that both
 * read and then write would otherwise fail one of them on the upgrade. */
static shop_status db_sqlite_begin(struct db *base)
{
	struct db_sqlite *db = db_sqlite_of(base);
	shop_status st = db_sqlite_writer_take(db);
	if (st != SHOP_OK)
		return st;
	st = db_sqlite_simple(base, "BEGIN IMMEDIATE");
	db_sqlite_writer_give(db); /* only if BEGIN failed */
	return st;
}

static void db_sqlite_rollback(struct db *base)
{
	struct db_sqlite *db = db_sqlite_of(base);
	/* Some errors (disk full, I/O) already rolled the transaction back. */
	if (!sqlite3_get_autocommit(db->handle))
		(void)db_sqlite_simple(base, "ROLLBACK");
	db_sqlite_writer_give(db);
}

/* A COMMIT that fails can leave the transaction open (SQLITE_BUSY): it is
 * lost all the same, so it is rolled back here and the lock given back. */
static shop_status db_sqlite_commit(struct db *base)
{
	shop_status st = db_sqlite_simple(base, "COMMIT");
	if (st != SHOP_OK) {
		char why[DB_ERROR_MAX];
		snprintf(why, sizeof(why), "%s", db_last_error(base));
		db_sqlite_rollback(base);
		db_set_error(base, "%s", why);
	}
	db_sqlite_writer_give(db_sqlite_of(base));
	return st;
}

/* After a storage failure: writes and commits DB_SQLITE_PROBE_BYTES (more
 * than a page, so new pages or WAL frames are needed, as a real write
 * would), then deletes them. Until that works the database counts as down. */
static shop_status db_sqlite_probe(struct db *base)
{
	struct db_sqlite *db = db_sqlite_of(base);
	if (!db->storage_failed)
		return SHOP_OK;
	shop_status st = db_sqlite_simple(base,
					  "CREATE TABLE IF NOT EXISTS db_write_probe (filler BLOB)");
	if (st == SHOP_OK)
		st = db_sqlite_begin(base);
	if (st != SHOP_OK)
		return st;
	st = db_sqlite_simple(base,
			      "INSERT INTO db_write_probe VALUES (zeroblob(" DB_SQLITE_PROBE_BYTES
			      "))");
	if (st == SHOP_OK)
		st = db_sqlite_simple(base, "DELETE FROM db_write_probe");
	if (st == SHOP_OK)
		st = db_sqlite_commit(base);
	if (st != SHOP_OK) {
		db_sqlite_rollback(base);
		return st;
	}
	db->storage_failed = false;
	return SHOP_OK;
}

/* BEGIN IMMEDIATE already serialises writers, migrations included. */
static shop_status db_sqlite_migration_lock(struct db *base)
{
	return SHOP_OK;
}

static void db_sqlite_release(void *ctx, void *handle)
{
	sqlite3_finalize(handle);
}

static void db_sqlite_close(struct db *base)
{
	struct db_sqlite *db = db_sqlite_of(base);
	db_stmt_cache_clear(&db->cache, db_sqlite_release, NULL);
	sqlite3_close_v2(db->handle); /* rolls back an open transaction */
	if (db->writing)
		db_sqlite_file_give(db->file);
	db_sqlite_file_detach(db->file);
	free(db);
}

static void db_sqlite_writer_first(struct db *base)
{
	db_sqlite_of(base)->first = true;
}

static const struct db_ops db_sqlite_ops = {
	.auto_id = "INTEGER PRIMARY KEY AUTOINCREMENT",
	.run = db_sqlite_run,
	.script = db_sqlite_script,
	.begin = db_sqlite_begin,
	.commit = db_sqlite_commit,
	.rollback = db_sqlite_rollback,
	.migration_lock = db_sqlite_migration_lock,
	.probe = db_sqlite_probe,
	.writer_first = db_sqlite_writer_first,
	.close = db_sqlite_close,
};

/* Runs a PRAGMA outside the statement cache; OUT (if not NULL) receives the
 * first column of its first row. */
static int db_sqlite_pragma(sqlite3 *h, const char *sql, char *out, size_t out_size)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(h, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return rc;
	if (out)
		out[0] = '\0';
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(stmt, 0);
		if (out && text && !out[0])
			snprintf(out, out_size, "%s", text);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

shop_status db_sqlite_open(const char *path, bool readonly, struct db **ret_db,
			   char err[DB_ERROR_MAX])
{
	shop_status st;
	const char *sync = config_str("SHOP_SQLITE_SYNCHRONOUS", "FULL");
	if (strcasecmp(sync, "FULL") != 0 && strcasecmp(sync, "NORMAL") != 0) {
		db_format_error(err, "SHOP_SQLITE_SYNCHRONOUS=%.32s is not FULL or NORMAL", sync);
		return SHOP_E_INVALID;
	}
	struct db_sqlite *db = xcalloc(1, sizeof(*db));
	db_init(&db->base, &db_sqlite_ops, DB_SQLITE);
	/* NOMUTEX: a connection is used by one thread only (see db.h). */
	int rc = sqlite3_open_v2(path, &db->handle,
				 (readonly ? SQLITE_OPEN_READONLY
					   : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
					 SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		db_format_error(err, "sqlite: cannot open %s: %s", path,
				db->handle ? sqlite3_errmsg(db->handle) : sqlite3_errstr(rc));
		st = db_sqlite_status_of(rc);
		goto fail;
	}
	sqlite3_extended_result_codes(db->handle, 1);
	db->lock_timeout_ms = DB_SQLITE_BUSY_TIMEOUT_MS;
	const char *file = sqlite3_db_filename(db->handle, "main");
	if (file && file[0] && !(db->file = db_sqlite_file_attach(file))) {
		db_format_error(err, "sqlite: cannot open %s: more than %d database files open",
				path, DB_SQLITE_FILES_MAX);
		st = SHOP_E_LIMIT;
		goto fail;
	}
	/* Before the first PRAGMA: switching to WAL needs a lock that another
	 * process opening the same file may hold for a moment. */
	sqlite3_busy_timeout(db->handle, DB_SQLITE_BUSY_TIMEOUT_MS);
	/* A reader of another program's file keeps that program's settings:
	 * the journal mode and synchronous are the writer's business, and
	 * query_only refuses any write this connection might still try. */
	char mode[16] = "";
	if (readonly)
		rc = db_sqlite_pragma(db->handle, "PRAGMA query_only=ON", NULL, 0);
	else
		rc = db_sqlite_pragma(db->handle, "PRAGMA journal_mode=WAL", mode, sizeof(mode));
	if (!readonly && rc == SQLITE_OK && strcasecmp(mode, "wal") != 0 &&
	    strcasecmp(mode, "memory") != 0) {
		db_format_error(err, "sqlite: %s: journal_mode is %s, WAL is required", path, mode);
		st = SHOP_E_INTERNAL;
		goto fail;
	}
	if (!readonly && rc == SQLITE_OK)
		rc = db_sqlite_pragma(db->handle,
				      strcasecmp(sync, "NORMAL") == 0 ? "PRAGMA synchronous=NORMAL"
								      : "PRAGMA synchronous=FULL",
				      NULL, 0);
	if (!readonly && rc == SQLITE_OK)
		rc = db_sqlite_pragma(db->handle, "PRAGMA foreign_keys=ON", NULL, 0);
	/* Checkpoints belong to the runtime's checkpointer (db_checkpoint), not
	 * to whichever writer crosses the threshold while holding the write
	 * lock; the automatic one stays only as a backstop for a WAL that the
	 * checkpointer cannot keep small. */
	if (!readonly && rc == SQLITE_OK)
		rc = db_sqlite_pragma(
			db->handle, "PRAGMA wal_autocheckpoint=" DB_SQLITE_AUTOCHECKPOINT_PAGES_STR,
			NULL, 0);
	if (rc != SQLITE_OK) {
		db_format_error(err, "sqlite: cannot set up %s: %s", path,
				sqlite3_errmsg(db->handle));
		st = db_sqlite_status_of(rc);
		goto fail;
	}
	*ret_db = &db->base;
	return SHOP_OK;
fail:
	sqlite3_close_v2(db->handle);
	db_sqlite_file_detach(db->file);
	free(db);
	return st;
}

shop_status db_sqlite_checkpoint(struct db *base, int64_t *ret_frames)
{
	struct db_sqlite *db = db_sqlite_of(base);
	int log = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(db->handle, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
					   &done);
	if (rc != SQLITE_OK)
		return db_sqlite_fail(db, rc, "wal_checkpoint(PASSIVE)");
	if (ret_frames)
		*ret_frames = done > 0 ? done : 0;
	return SHOP_OK;
}

void db_sqlite_writers_waiting(struct db *db, int *ret_first, int *ret_backlog)
{
	struct db_sqlite_file *f = db_sqlite_of(db)->file;
	*ret_first = *ret_backlog = 0;
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	*ret_first = f->waiting[1];
	*ret_backlog = f->waiting[0];
	pthread_mutex_unlock(&f->lock);
}

void db_sqlite_busy_timeout_set(struct db *db, int ms)
{
	if (db && db->backend == DB_SQLITE) {
		sqlite3_busy_timeout(db_sqlite_of(db)->handle, ms);
		db_sqlite_of(db)->lock_timeout_ms = ms;
	}
}
