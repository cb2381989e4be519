/*
 * db.h - one interface over SQLite and PostgreSQL.
 *
 * A service runs the same SQL on either backend: parameters are written $1,
 * $2, ... in both and passed as text (NULL for SQL NULL); the server or
 * SQLite's type affinity converts them. Times are stored as integer epoch
 * milliseconds computed in C, so no SQL date function is needed.
 *
 * A struct db is one connection and is not thread-safe: every thread that
 * touches the database opens its own. Failures are mapped to shop_status in
 * one function per backend: unique violations become SHOP_E_DUPLICATE, other
 * constraint violations SHOP_E_CONFLICT, lost connections, busy locks and
 * SQLite storage failures (disk full, I/O errors) SHOP_E_UNAVAILABLE (the
 * next call reconnects).
 *
 * URLs: "sqlite:/path/to/file.db" (":memory:" allowed) or
 * "postgresql://user:password@host:port/dbname".
 *
 * Transactions behave the same on both backends: once a statement inside one
 * fails (including SHOP_E_DUPLICATE), further statements and db_commit are
 * refused until db_rollback, as PostgreSQL does. Inside a transaction use
 * INSERT ... ON CONFLICT DO NOTHING when a duplicate is expected. A connection
 * lost inside a transaction loses it: every call returns SHOP_E_UNAVAILABLE
 * until db_rollback, then the caller redoes the work.
 *
 * Environment, read by db_open:
 *   SHOP_SQLITE_SYNCHRONOUS  FULL (default) or NORMAL. In WAL mode NORMAL
 *     skips the fsync at each commit: a power loss or OS crash (not a process
 *     crash) can lose the last transactions, never corrupt the file. Keep FULL
 *     when a commit is acknowledged to a client or a broker.
 *   SHOP_SERVICE  becomes the PostgreSQL application_name (pg_stat_activity).
 */
#ifndef SHOP_DB_DB_H
#define SHOP_DB_DB_H

#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long SQLite waits for another writer before SHOP_E_UNAVAILABLE. */
#define DB_SQLITE_BUSY_TIMEOUT_MS 5000
/* Most parameters one statement may take. */
#define DB_PARAMS_MAX 32
/* Longest error text kept for db_last_error(). */
#define DB_ERROR_MAX 512
/* How long db_open or a reconnect waits for PostgreSQL, unless the URL sets
 * connect_timeout. */
#define DB_PG_CONNECT_TIMEOUT_S 5
/* SQLite: WAL pages after which a writer checkpoints by itself. The
 * runtime checkpoints on its own thread long before (db_checkpoint), so this
 * is a backstop that bounds the WAL if that thread falls behind. */
#define DB_SQLITE_AUTOCHECKPOINT_PAGES 10000
#define DB_SQLITE_AUTOCHECKPOINT_PAGES_STR "10000"
/* Prepared statements kept per connection (least recently used go first). */
#define DB_STMT_CACHE_SIZE 64

enum db_backend { DB_SQLITE, DB_POSTGRES };

struct db;
struct db_result;

/* One migration: applied once, in array order, each in its own transaction,
 * recorded in the schema_migrations table. In its SQL, the token @AUTO_ID@
 * becomes an ever-increasing, never-reused integer primary key
 * (AUTOINCREMENT / GENERATED ALWAYS AS IDENTITY). The SQL may hold several
 * statements, but no BEGIN/COMMIT and nothing that cannot run inside a
 * transaction (CREATE INDEX CONCURRENTLY, VACUUM). db_migrate is safe when
 * several replicas run it at once on the same database. */
struct db_migration {
	const char *name;
	const char *sql;
};

/* An unreachable server is SHOP_E_UNAVAILABLE (retry), a malformed URL
 * SHOP_E_INVALID. */
shop_status db_open(const char *url, struct db **ret_db);
/* The same URLs, for a tool that reads another program's live database
 * (shopctl audit): SQLite opens the file read-only and sets nothing that
 * writes (no journal mode switch, never the write lock; a live WAL is read,
 * not checkpointed); every PostgreSQL session, reconnects included, starts
 * its transactions read-only (default_transaction_read_only). */
shop_status db_open_readonly(const char *url, struct db **ret_db);
void db_close(struct db *db); /* accepts NULL */
enum db_backend db_backend_of(const struct db *db);
/* Why the last call failed, safe to log (no password). db_last_error(NULL)
 * is why this thread's last db_open failed. */
const char *db_last_error(const struct db *db);
/* Cheap liveness check for /readyz; reconnects a lost connection. After a
 * SQLite storage failure (disk full, I/O error: SHOP_E_UNAVAILABLE like a
 * lost server) it also proves that a write commits, so "the database is
 * back" means writes work again, not merely that the file can be read. */
shop_status db_ping(struct db *db);

/* Statements. ret_changes (may be NULL) receives the number of rows changed. */
shop_status db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
		    int64_t *ret_changes);
shop_status db_query(struct db *db, const char *sql, int nparams, const char *const *params,
		     struct db_result **ret_result);

int db_result_rows(const struct db_result *r);
/* The text of a cell, or NULL for SQL NULL. Valid until db_result_free. */
const char *db_result_text(const struct db_result *r, int row, int col);
/* A cell as an integer; 0 for NULL. */
int64_t db_result_int(const struct db_result *r, int row, int col);
void db_result_free(struct db_result *r); /* accepts NULL */

/* Transactions. db_begin takes the write lock up front on SQLite
 * (BEGIN IMMEDIATE) so that two writers never deadlock on an upgrade. */
shop_status db_begin(struct db *db);
shop_status db_commit(struct db *db);
void db_rollback(struct db *db);
/* db_exec, then db_commit if it succeeded: on PostgreSQL in one round trip
 * (the COMMIT is pipelined behind the statement). *ret_over says which
 * happened. False: the statement failed, nothing was committed, and the
 * transaction is still open and failed, as after a failed db_exec (roll it
 * back, or to its savepoint). True: the COMMIT ran, the return value is its
 * outcome, and the transaction is over either way. */
shop_status db_exec_commit(struct db *db, const char *sql, int nparams, const char *const *params,
			   int64_t *ret_changes, bool *ret_over);

/* Puts this connection in the class of writers someone is waiting for (an
 * HTTP request), as opposed to writers working through a backlog (the
 * default: a consumer, the relay). On SQLite, where the writers of one
 * process queue for the file, the lock alternates between the classes when
 * both wait, first class first. On PostgreSQL nothing changes. */
void db_writer_first(struct db *db);

/* A savepoint inside a transaction (one level: release or roll back before
 * the next). db_savepoint_rollback undoes everything since db_savepoint,
 * a failed statement included, and the transaction goes on as if it had not
 * happened. It fails (SHOP_E_UNAVAILABLE) when the failure took the whole
 * transaction with it (a lost connection, SQLite's storage): then only
 * db_rollback is left. */
shop_status db_savepoint(struct db *db);
shop_status db_savepoint_release(struct db *db);
shop_status db_savepoint_rollback(struct db *db);

shop_status db_migrate(struct db *db, const struct db_migration *migrations, size_t n);
/* Inside a transaction: takes the lock db_migrate holds while it applies a
 * migration (released at the end of the transaction), for other schema
 * chores that replicas starting together must not run at once (on
 * PostgreSQL two GRANTs on one table at once fail with "tuple concurrently
 * updated"). */
shop_status db_migration_lock(struct db *db);

/* SQLite: copies committed WAL frames into the database file without
 * waiting for readers or writers (a passive checkpoint), so writers never
 * pay for it; *ret_frames (may be NULL) gets how many. PostgreSQL: nothing
 * to do. */
shop_status db_checkpoint(struct db *db, int64_t *ret_frames);

/* One process per SQLite file. SQLite itself lets any number of processes
 * open a file, and two instances of a service on one file would each run
 * the relay and the consumers as if alone: duplicate publishes at best, and
 * on a shared volume over a network filesystem a corrupted file. So a
 * service claims its file for the life of the process: an exclusive
 * flock() on "<file>" DB_CLAIM_SUFFIX beside it, which the kernel drops
 * when the process ends however it ends (a SIGKILL included: the next start
 * is never locked out by a dead holder; the file itself stays). The claim
 * file holds "<host> pid <pid>" of the holder, for the refusal's message.
 * A PostgreSQL URL or ":memory:" needs no claim: SHOP_OK and *ret_claim
 * NULL. SHOP_E_CONFLICT when another process holds the file (ret_holder,
 * which may be NULL, gets its "<host> pid <pid>"); SHOP_E_UNAVAILABLE when
 * the claim file cannot be opened or locked (ret_holder gets why). flock()
 * is only as good as the filesystem's: local disks and Docker volumes on
 * one host, not NFS. */
#define DB_CLAIM_SUFFIX ".lock"
#define DB_CLAIM_HOLDER_MAX 160 /* "<host> pid <pid>" as read back from the claim file */
struct db_claim;
shop_status db_claim(const char *url, struct db_claim **ret_claim, char *ret_holder,
		     size_t holder_size);
void db_claim_release(struct db_claim *claim); /* accepts NULL */

/* Argument-list helpers: db_exec(db, sql, DB_ARGS(a, b), NULL). */
#define DB_ARGS(...)                                                                               \
	(int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)),                \
		(const char *const[])                                                              \
	{                                                                                          \
		__VA_ARGS__                                                                        \
	}
#define DB_NOARGS 0, NULL
/* An integer as a parameter: DB_I64(n) is a string valid for the statement. */
#define DB_I64_SIZE 24
#define DB_I64(v) db_i64_format((char[DB_I64_SIZE]){ 0 }, (int64_t)(v))
const char *db_i64_format(char buf[DB_I64_SIZE], int64_t v);

#endif
