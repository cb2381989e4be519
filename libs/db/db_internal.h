/*
 * db_internal.h - what db.c shares with the two backends; not for services.
 *
 * struct db is the part every connection starts with: the backend's
 * operations table, the transaction state the common layer keeps, and the
 * text of the last error. Each backend embeds it as the first member of its
 * own connection struct and converts back with a cast.
 *
 * The common layer (db.c) owns the transaction rules so that both backends
 * refuse the same things: after any statement inside a transaction fails,
 * every further statement and the commit are refused until db_rollback,
 * exactly as PostgreSQL does with an aborted transaction. Backends only run
 * SQL and translate their own error codes.
 *
 * Results are built row by row into one growing text buffer plus an array of
 * offsets, so a result costs three allocations however many cells it has.
 */
#ifndef SHOP_DB_DB_INTERNAL_H
#define SHOP_DB_DB_INTERNAL_H

#include "db.h"

#include <stdarg.h>

/* The file path of a "sqlite:" URL ("" when it has none); NULL for any
 * other scheme. */
const char *db_url_sqlite_path(const char *url);

struct db_ops {
	/* Replacement for @AUTO_ID@ in migration SQL. */
	const char *auto_id;
	/* One statement with $1..$n text parameters. When ret_result is not
	 * NULL the rows are copied into a new result. ret_changes is always
	 * written on success. */
	shop_status (*run)(struct db *db, const char *sql, int nparams, const char *const *params,
			   int64_t *ret_changes, struct db_result **ret_result);
	/* Several statements without parameters (migrations). */
	shop_status (*script)(struct db *db, const char *sql);
	/* Optional: run, then commit the transaction, as one request.
	 * *ret_over false: the statement failed, no COMMIT ran, and the
	 * transaction is open and failed. True: the return value is the
	 * COMMIT's. Without it, db_exec_commit calls run, then commit. */
	shop_status (*run_commit)(struct db *db, const char *sql, int nparams,
				  const char *const *params, int64_t *ret_changes, bool *ret_over);
	shop_status (*begin)(struct db *db);
	shop_status (*commit)(struct db *db);
	/* Must leave the connection outside any transaction, whatever state it
	 * is in (including lost). */
	void (*rollback)(struct db *db);
	/* Serialises migrations between processes, inside the transaction. */
	shop_status (*migration_lock)(struct db *db);
	/* Optional, outside a transaction: proves the database can take writes
	 * again after a failure SELECT 1 would not notice (SQLite's disk full). */
	shop_status (*probe)(struct db *db);
	/* Optional: see db_writer_first. */
	void (*writer_first)(struct db *db);
	void (*close)(struct db *db);
};

struct db {
	const struct db_ops *ops;
	enum db_backend backend;
	bool in_tx;
	/* First failure inside the current transaction; SHOP_OK if none. */
	shop_status tx_error;
	/* Whether db->error already explains a refusal after tx_error. */
	bool tx_refusal_noted;
	char error[DB_ERROR_MAX];
};

void db_init(struct db *db, const struct db_ops *ops, enum db_backend backend);
void db_set_error(struct db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void db_format_error(char out[DB_ERROR_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void db_format_error_v(char out[DB_ERROR_MAX], const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Replaces every occurrence of SECRET (when not NULL or empty) in MSG by
 * "***", in place. Used on server and library messages before keeping them. */
void db_redact(char msg[DB_ERROR_MAX], const char *secret);

/* Result building. */
struct db_result *db_result_new(int cols);
void db_result_add_row(struct db_result *r);
/* Sets a cell of the last added row; TEXT NULL means SQL NULL. */
void db_result_set(struct db_result *r, int col, const char *text, size_t len);

/*
 * Prepared statement cache: a small LRU map from SQL text to a backend handle
 * (sqlite3_stmt *, or the name of a server-side prepared statement).
 * Services run a fixed set of statements over and over, so DB_STMT_CACHE_SIZE
 * entries hold all of them; dynamically built SQL just churns the oldest.
 */
struct db_stmt_cache_entry {
	char *sql; /* NULL when the slot is free */
	uint64_t hash;
	uint64_t last_used;
	void *handle;
};

struct db_stmt_cache {
	struct db_stmt_cache_entry entries[DB_STMT_CACHE_SIZE];
	uint64_t tick;
};

/* The handle cached for SQL, or NULL. */
void *db_stmt_cache_get(struct db_stmt_cache *c, const char *sql);
/* Caches HANDLE under SQL (not present yet). Returns the handle it evicted
 * to make room, which the caller releases, or NULL. */
void *db_stmt_cache_put(struct db_stmt_cache *c, const char *sql, void *handle);
/* Drops SQL's entry and returns its handle (NULL if absent). */
void *db_stmt_cache_remove(struct db_stmt_cache *c, const char *sql);
/* Empties the cache, passing each handle to RELEASE (with CTX). */
void db_stmt_cache_clear(struct db_stmt_cache *c, void (*release)(void *ctx, void *handle),
			 void *ctx);

/* Backends. On failure ERR explains why (no password in it). READONLY: see
 * db_open_readonly. */
shop_status db_sqlite_open(const char *path, bool readonly, struct db **ret_db,
			   char err[DB_ERROR_MAX]);
shop_status db_pg_open(const char *url, bool readonly, struct db **ret_db, char err[DB_ERROR_MAX]);

shop_status db_sqlite_checkpoint(struct db *db, int64_t *ret_frames);

/* Tests only: shortens the SQLite busy timeout of one connection so a lock
 * wait can be tested without waiting DB_SQLITE_BUSY_TIMEOUT_MS. */
void db_sqlite_busy_timeout_set(struct db *db, int ms);
/* Tests only: how many writers of this process wait for DB's file, per
 * class (db_writer_first). */
void db_sqlite_writers_waiting(struct db *db, int *ret_first, int *ret_backlog);

#endif
