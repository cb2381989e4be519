/*
 * test_db.c - component tests of libs/db against real SQLite files and a real
 * PostgreSQL server (started by tests/component/run.sh).
 *
 * The same suite runs once per backend, so a service can trust that its SQL
 * behaves alike on both. Every test gets fresh state: on SQLite a new file in
 * $SHOP_TEST_WORKDIR, on PostgreSQL a new schema (selected with search_path
 * in the URL) inside a database created for this run and dropped at its end,
 * so reruns against the same server never collide. A few tests exist for one
 * backend only (lost sessions, busy locks) and are listed in its group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/status.h"
#include "db/db.h"
#include "db/db_internal.h" /* db_sqlite_busy_timeout_set, for the lock test */
#include "pg_scratch.h"

#define URL_MAX 1024
#define WORKERS 4
#define INCREMENTS 200

struct fixture {
	enum db_backend backend;
	int seq;              /* tests run so far, names the file or schema */
	long long stamp;      /* SQLite: this run, so reruns never meet old files */
	struct pg_scratch pg; /* PostgreSQL: this run's database and a connection to it */
	char url[URL_MAX];    /* this test's URL */
	struct db *db;        /* this test's connection */
};

static struct fixture sqlite_fx = { .backend = DB_SQLITE };
static struct fixture pg_fx = { .backend = DB_POSTGRES };

/* ---- helpers ---- */

static void must_ok(struct db *db, shop_status st, const char *what, int line)
{
	if (st != SHOP_OK)
		fail_msg("line %d: %s: %s: %s", line, what, shop_status_name(st),
			 db_last_error(db));
}
#define MUST(db, call) must_ok((db), (call), #call, __LINE__)

static int64_t query_int_at(struct db *db, const char *sql, int line)
{
	struct db_result *r = NULL;
	must_ok(db, db_query(db, sql, DB_NOARGS, &r), sql, line);
	if (db_result_rows(r) != 1)
		fail_msg("line %d: %s: %d rows", line, sql, db_result_rows(r));
	int64_t v = db_result_int(r, 0, 0);
	db_result_free(r);
	return v;
}
#define QUERY_INT(db, sql) query_int_at((db), (sql), __LINE__)

/* The first cell of SQL's only row, copied into OUT ("<NULL>" for NULL). */
static const char *query_text_at(struct db *db, const char *sql, char *out, size_t size, int line)
{
	struct db_result *r = NULL;
	must_ok(db, db_query(db, sql, DB_NOARGS, &r), sql, line);
	if (db_result_rows(r) != 1)
		fail_msg("line %d: %s: %d rows", line, sql, db_result_rows(r));
	const char *t = db_result_text(r, 0, 0);
	snprintf(out, size, "%s", t ? t : "<NULL>");
	db_result_free(r);
	return out;
}
#define QUERY_TEXT(db, sql, buf) query_text_at((db), (sql), (buf), sizeof(buf), __LINE__)

static const char *workdir(void)
{
	const char *w = getenv("SHOP_TEST_WORKDIR");
	return (w && *w) ? w : "/tmp";
}

static void reopen(struct fixture *f)
{
	db_close(f->db);
	f->db = NULL;
	MUST(NULL, db_open(f->url, &f->db));
}

/* ---- setup ---- */

static int sqlite_group_setup(void **state)
{
	sqlite_fx.stamp = (long long)clock_now_ms();
	return 0;
}

static int pg_group_setup(void **state)
{
	return pg_scratch_create(&pg_fx.pg, "shoptest_db");
}

static int pg_group_teardown(void **state)
{
	pg_scratch_drop(&pg_fx.pg);
	return 0;
}

static int test_setup(void **state)
{
	struct fixture *f = *state;
	f->seq++;
	if (f->backend == DB_SQLITE)
		snprintf(f->url, sizeof(f->url), "sqlite:%s/test_db_%ld_%lld_%d.db", workdir(),
			 (long)getpid(), f->stamp, f->seq);
	else if (pg_scratch_schema_url(&f->pg, f->seq, f->url, sizeof(f->url)) != SHOP_OK)
		return -1;
	if (db_open(f->url, &f->db) != SHOP_OK) {
		fprintf(stderr, "cannot open %s: %s\n", f->url, db_last_error(NULL));
		return -1;
	}
	return 0;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->db);
	f->db = NULL;
	return 0;
}

/* ---- both backends ---- */

static void params_bind_by_number_in_any_order(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	struct db_result *r = NULL;
	MUST(db, db_exec(db, "CREATE TABLE pairs (a TEXT, b TEXT, c TEXT)", DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO pairs (c, b, a) VALUES ($3, $1, $2)",
			 DB_ARGS("one", "two", "three"), NULL));
	MUST(db, db_query(db, "SELECT a, b, c FROM pairs WHERE b = $2 AND c = $1 OR a = $1",
			  DB_ARGS("three", "one"), &r));
	assert_int_equal(db_result_rows(r), 1);
	assert_string_equal(db_result_text(r, 0, 0), "two");
	assert_string_equal(db_result_text(r, 0, 1), "one");
	assert_string_equal(db_result_text(r, 0, 2), "three");
	db_result_free(r);
}

static void null_params_and_null_cells_stay_null(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	struct db_result *r = NULL;
	MUST(db,
	     db_exec(db, "CREATE TABLE n (k TEXT PRIMARY KEY, v TEXT, i BIGINT)", DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO n (k, v, i) VALUES ($1, $2, $3)",
			 DB_ARGS("null", NULL, NULL), NULL));
	MUST(db, db_exec(db, "INSERT INTO n (k, v, i) VALUES ($1, $2, $3)",
			 DB_ARGS("empty", "", "0"), NULL));
	MUST(db, db_query(db, "SELECT k, v, i FROM n ORDER BY k", DB_NOARGS, &r));
	assert_int_equal(db_result_rows(r), 2);
	assert_string_equal(db_result_text(r, 0, 0), "empty");
	assert_string_equal(db_result_text(r, 0, 1), "");
	assert_string_equal(db_result_text(r, 0, 2), "0");
	assert_string_equal(db_result_text(r, 1, 0), "null");
	assert_null(db_result_text(r, 1, 1));
	assert_null(db_result_text(r, 1, 2));
	assert_int_equal(db_result_int(r, 1, 2), 0);
	db_result_free(r);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM n WHERE v IS NULL AND i IS NULL"), 1);
}

static void integers_round_trip_as_decimal_text_at_any_magnitude(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	static const int64_t values[] = {
		0,
		1,
		-1,
		-42,
		INT64_C(9007199254740992) /* 2^53 */,
		INT64_C(9007199254740993),
		-INT64_C(9007199254740992),
		INT64_MAX,
		INT64_MIN,
	};
	const size_t n = sizeof(values) / sizeof(values[0]);
	struct db_result *r = NULL;
	MUST(db, db_exec(db, "CREATE TABLE ints (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
			 DB_NOARGS, NULL));
	for (size_t i = 0; i < n; i++)
		MUST(db, db_exec(db, "INSERT INTO ints (k, v) VALUES ($1, $2)",
				 DB_ARGS(DB_I64(i), DB_I64(values[i])), NULL));
	MUST(db, db_query(db, "SELECT v FROM ints ORDER BY k", DB_NOARGS, &r));
	assert_int_equal(db_result_rows(r), (int)n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(db_result_text(r, (int)i, 0), DB_I64(values[i]));
		assert_true(db_result_int(r, (int)i, 0) == values[i]);
	}
	db_result_free(r);
	/* Arithmetic stays exact past 2^53, where a double would round. */
	MUST(db, db_query(db, "SELECT v + 1, v * 2 FROM ints WHERE v = $1",
			  DB_ARGS("9007199254740993"), &r));
	assert_int_equal(db_result_rows(r), 1);
	assert_string_equal(db_result_text(r, 0, 0), "9007199254740994");
	assert_string_equal(db_result_text(r, 0, 1), "18014398509481986");
	db_result_free(r);
}

static void unique_violation_is_a_duplicate_and_the_transaction_can_be_redone(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	char buf[64];
	MUST(db, db_exec(db, "CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT)", DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO u (k) VALUES ($1)", DB_ARGS("a"), NULL));
	assert_int_equal(db_exec(db, "INSERT INTO u (k) VALUES ($1)", DB_ARGS("a"), NULL),
			 SHOP_E_DUPLICATE);
	assert_true(strlen(db_last_error(db)) > 0);

	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO u (k) VALUES ($1)", DB_ARGS("b"), NULL));
	assert_int_equal(db_exec(db, "INSERT INTO u (k) VALUES ($1)", DB_ARGS("a"), NULL),
			 SHOP_E_DUPLICATE);
	db_rollback(db);

	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO u (k) VALUES ($1)", DB_ARGS("b"), NULL));
	MUST(db, db_exec(db, "INSERT INTO u (k) VALUES ($1) ON CONFLICT DO NOTHING", DB_ARGS("a"),
			 NULL));
	MUST(db, db_commit(db));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM u"), 2);
	assert_string_equal(QUERY_TEXT(db, "SELECT max(k) FROM u", buf), "b");
}

/* A savepoint undoes a failed statement alone: what came before it and what
 * comes after it commit together (PostgreSQL would otherwise refuse every
 * statement after the failure). This is how a consumer commits a batch of
 * messages once while a failing one is rolled back by itself. */
static void a_savepoint_undoes_one_failure_and_the_transaction_commits_the_rest(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	MUST(db, db_exec(db, "CREATE TABLE u (k TEXT PRIMARY KEY, n INTEGER CHECK (n > 0))",
			 DB_NOARGS, NULL));
	MUST(db, db_begin(db));
	MUST(db, db_savepoint(db));
	MUST(db, db_exec(db, "INSERT INTO u (k, n) VALUES ('a', 1)", DB_NOARGS, NULL));
	MUST(db, db_savepoint_release(db));

	MUST(db, db_savepoint(db));
	MUST(db, db_exec(db, "INSERT INTO u (k, n) VALUES ('b', 1)", DB_NOARGS, NULL));
	assert_int_equal(db_exec(db, "INSERT INTO u (k, n) VALUES ('a', 2)", DB_NOARGS, NULL),
			 SHOP_E_DUPLICATE);
	MUST(db, db_savepoint_rollback(db)); /* 'b' goes too: it was in the savepoint */

	MUST(db, db_savepoint(db));
	assert_int_equal(db_exec(db, "INSERT INTO u (k, n) VALUES ('c', 0)", DB_NOARGS, NULL),
			 SHOP_E_CONFLICT);
	MUST(db, db_savepoint_rollback(db));

	MUST(db, db_savepoint(db));
	MUST(db, db_exec(db, "INSERT INTO u (k, n) VALUES ('d', 4)", DB_NOARGS, NULL));
	MUST(db, db_savepoint_release(db));
	MUST(db, db_commit(db));
	char buf[64];
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM u"), 2);
	assert_string_equal(QUERY_TEXT(db,
				       "SELECT string_agg_k FROM (SELECT min(k) || max(k) "
				       "AS string_agg_k FROM u) t",
				       buf),
			    "ad");
	/* Outside a transaction there is nothing to save. */
	assert_int_equal(db_savepoint(db), SHOP_E_INTERNAL);
}

static void a_failed_statement_dooms_the_transaction_on_both_backends(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	MUST(db, db_exec(db, "CREATE TABLE u (k TEXT PRIMARY KEY)", DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO u (k) VALUES ('a')", DB_NOARGS, NULL));
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO u (k) VALUES ('b')", DB_NOARGS, NULL));
	assert_int_equal(db_exec(db, "INSERT INTO u (k) VALUES ('a')", DB_NOARGS, NULL),
			 SHOP_E_DUPLICATE);
	/* What PostgreSQL does to an aborted transaction, SQLite does too. */
	assert_int_equal(db_exec(db, "INSERT INTO u (k) VALUES ('c')", DB_NOARGS, NULL),
			 SHOP_E_INTERNAL);
	assert_int_equal(db_commit(db), SHOP_E_INTERNAL);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM u"), 1);
	assert_int_equal(db_commit(db), SHOP_E_INTERNAL); /* no transaction any more */
	MUST(db, db_begin(db));
	assert_int_equal(db_begin(db), SHOP_E_INTERNAL); /* no nesting */
	db_rollback(db);
}

static void constraint_violations_other_than_unique_are_conflicts(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	MUST(db, db_exec(db, "CREATE TABLE parent (id BIGINT PRIMARY KEY)", DB_NOARGS, NULL));
	MUST(db, db_exec(db,
			 "CREATE TABLE child (id BIGINT PRIMARY KEY, "
			 "parent_id BIGINT NOT NULL REFERENCES parent (id), "
			 "qty BIGINT NOT NULL CHECK (qty >= 0))",
			 DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO parent (id) VALUES (1)", DB_NOARGS, NULL));
	const char *insert = "INSERT INTO child (id, parent_id, qty) VALUES ($1, $2, $3)";
	assert_int_equal(db_exec(db, insert, DB_ARGS("1", "2", "5"), NULL), SHOP_E_CONFLICT);
	assert_int_equal(db_exec(db, insert, DB_ARGS("1", "1", "-1"), NULL), SHOP_E_CONFLICT);
	assert_int_equal(db_exec(db, insert, DB_ARGS("1", "1", NULL), NULL), SHOP_E_CONFLICT);
	MUST(db, db_exec(db, insert, DB_ARGS("1", "1", "0"), NULL));
	assert_int_equal(db_exec(db, insert, DB_ARGS("1", "1", "0"), NULL), SHOP_E_DUPLICATE);
}

static void rollback_discards_changes(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	MUST(db, db_exec(db, "CREATE TABLE t (x BIGINT)", DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO t (x) VALUES (1)", DB_NOARGS, NULL));
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO t (x) VALUES (2)", DB_NOARGS, NULL));
	MUST(db, db_exec(db, "UPDATE t SET x = x + 10", DB_NOARGS, NULL));
	assert_int_equal(QUERY_INT(db, "SELECT sum(x) FROM t"), 23);
	db_rollback(db);
	assert_int_equal(QUERY_INT(db, "SELECT sum(x) FROM t"), 1);
}

static void commit_keeps_changes_for_every_connection(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db, *other = NULL;
	MUST(db, db_exec(db, "CREATE TABLE t (x BIGINT)", DB_NOARGS, NULL));
	MUST(NULL, db_open(f->url, &other));
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO t (x) VALUES (7)", DB_NOARGS, NULL));
	assert_int_equal(QUERY_INT(other, "SELECT count(*) FROM t"), 0);
	MUST(db, db_commit(db));
	assert_int_equal(QUERY_INT(other, "SELECT sum(x) FROM t"), 7);
	db_close(other);
	reopen(f);
	assert_int_equal(QUERY_INT(f->db, "SELECT sum(x) FROM t"), 7);
}

static void exec_counts_the_rows_a_statement_changed(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	int64_t changes = -1;
	MUST(db, db_exec(db, "CREATE TABLE t (x BIGINT)", DB_NOARGS, &changes));
	assert_int_equal(changes, 0);
	for (int i = 1; i <= 3; i++) {
		MUST(db,
		     db_exec(db, "INSERT INTO t (x) VALUES ($1)", DB_ARGS(DB_I64(i)), &changes));
		assert_int_equal(changes, 1);
	}
	MUST(db, db_exec(db, "UPDATE t SET x = x * 10", DB_NOARGS, &changes));
	assert_int_equal(changes, 3);
	MUST(db, db_exec(db, "DELETE FROM t WHERE x >= $1", DB_ARGS("20"), &changes));
	assert_int_equal(changes, 2);
	/* Not the stale count of the DELETE before it. */
	MUST(db, db_exec(db, "SELECT x FROM t", DB_NOARGS, &changes));
	assert_int_equal(changes, 0);
	MUST(db, db_exec(db, "UPDATE t SET x = 0 WHERE x < 0", DB_NOARGS, &changes));
	assert_int_equal(changes, 0);
}

static void conditional_decrement_affects_no_rows_when_it_would_go_negative(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	const char *take = "UPDATE stock SET n = n - $1 WHERE id = $2 AND n >= $1";
	int64_t changes = -1;
	MUST(db, db_exec(db, "CREATE TABLE stock (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
			 DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO stock (id, n) VALUES (1, 5)", DB_NOARGS, NULL));
	MUST(db, db_exec(db, take, DB_ARGS("3", "1"), &changes));
	assert_int_equal(changes, 1);
	MUST(db, db_exec(db, take, DB_ARGS("3", "1"), &changes));
	assert_int_equal(changes, 0);
	assert_int_equal(QUERY_INT(db, "SELECT n FROM stock WHERE id = 1"), 2);
	/* Text parameters compare as numbers: "10" >= "2" as text, not as n. */
	MUST(db, db_exec(db, take, DB_ARGS("10", "1"), &changes));
	assert_int_equal(changes, 0);
	MUST(db, db_exec(db, take, DB_ARGS("2", "1"), &changes));
	assert_int_equal(changes, 1);
	assert_int_equal(QUERY_INT(db, "SELECT n FROM stock WHERE id = 1"), 0);
	MUST(db, db_exec(db, take, DB_ARGS("1", "1"), &changes));
	assert_int_equal(changes, 0);
}

static const struct db_migration migrations_v2[] = {
	{ "0001_items", "CREATE TABLE items (id @AUTO_ID@, name TEXT NOT NULL);\n"
			"CREATE INDEX items_name ON items (name);\n" },
	{ "0002_seed", "INSERT INTO items (name) VALUES ('seed');" },
	{ "0003_qty", "ALTER TABLE items ADD COLUMN qty BIGINT NOT NULL DEFAULT 0;" },
};

static void migrations_apply_once_and_are_skipped_the_second_time(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db, *other = NULL;
	MUST(db, db_migrate(db, migrations_v2, 2));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM items"), 1);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM schema_migrations"), 2);
	MUST(db, db_migrate(db, migrations_v2, 2));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM items"), 1);
	/* A release adds a migration: only that one runs. */
	MUST(db, db_migrate(db, migrations_v2, 3));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM items"), 1);
	assert_int_equal(QUERY_INT(db, "SELECT sum(qty) FROM items"), 0);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM schema_migrations"), 3);
	assert_true(QUERY_INT(db, "SELECT min(applied_at_ms) FROM schema_migrations") >
		    INT64_C(1600000000000));
	/* Another replica starting later finds nothing to do. */
	MUST(NULL, db_open(f->url, &other));
	MUST(other, db_migrate(other, migrations_v2, 3));
	assert_int_equal(QUERY_INT(other, "SELECT count(*) FROM items"), 1);
	db_close(other);
	MUST(db, db_migrate(db, NULL, 0));
}

static void a_failed_migration_leaves_no_trace(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	struct db_result *r = NULL;
	static const struct db_migration bad[] = {
		{ "0001_good", "CREATE TABLE good (x BIGINT);" },
		{ "0002_bad", "CREATE TABLE half (x BIGINT);\nINSERT INTO nowhere VALUES (1);" },
	};
	assert_int_not_equal(db_migrate(db, bad, 2), SHOP_OK);
	assert_non_null(strstr(db_last_error(db), "0002_bad"));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM good"), 0);
	assert_int_not_equal(db_query(db, "SELECT x FROM half", DB_NOARGS, &r), SHOP_OK);
	assert_null(r);
	char buf[64];
	assert_string_equal(QUERY_TEXT(db, "SELECT name FROM schema_migrations", buf), "0001_good");
}

static void auto_id_never_reuses_the_id_of_a_deleted_max_row(void **state)
{
	struct fixture *f = *state;
	static const struct db_migration m[] = {
		{ "0001_events", "CREATE TABLE events (id @AUTO_ID@, body TEXT NOT NULL);" },
	};
	MUST(f->db, db_migrate(f->db, m, 1));
	for (int i = 0; i < 3; i++)
		MUST(f->db,
		     db_exec(f->db, "INSERT INTO events (body) VALUES ($1)", DB_ARGS("e"), NULL));
	assert_int_equal(QUERY_INT(f->db, "SELECT max(id) FROM events"), 3);
	/* A reader that remembers "last seen id = 3" would skip a reused 3. */
	MUST(f->db, db_exec(f->db, "DELETE FROM events WHERE id = 3", DB_NOARGS, NULL));
	reopen(f);
	MUST(f->db, db_exec(f->db, "INSERT INTO events (body) VALUES ($1)", DB_ARGS("e"), NULL));
	assert_int_equal(QUERY_INT(f->db, "SELECT max(id) FROM events"), 4);
	MUST(f->db, db_exec(f->db, "DELETE FROM events", DB_NOARGS, NULL));
	MUST(f->db, db_exec(f->db, "INSERT INTO events (body) VALUES ($1)", DB_ARGS("e"), NULL));
	assert_int_equal(QUERY_INT(f->db, "SELECT max(id) FROM events"), 5);
}

static void statement_cache_stays_correct_across_hundreds_of_distinct_statements(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	struct db_result *r = NULL;
	char sql[128];
	const int n = 300;
	MUST(db, db_exec(db, "CREATE TABLE kv (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)", DB_NOARGS,
			 NULL));
	for (int i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO kv (k, v) VALUES ($1, $2 + %d)", i);
		MUST(db, db_exec(db, sql, DB_ARGS(DB_I64(i), DB_I64(i * 10)), NULL));
		/* A hot statement interleaved with the churn. */
		MUST(db, db_query(db, "SELECT v FROM kv WHERE k = $1", DB_ARGS(DB_I64(i)), &r));
		assert_int_equal(db_result_int(r, 0, 0), i * 11);
		db_result_free(r);
	}
	for (int i = n - 1; i >= 0; i--) {
		snprintf(sql, sizeof(sql), "SELECT v - %d, k FROM kv WHERE k = $1", i);
		MUST(db, db_query(db, sql, DB_ARGS(DB_I64(i)), &r));
		assert_int_equal(db_result_rows(r), 1);
		assert_int_equal(db_result_int(r, 0, 0), i * 10);
		assert_int_equal(db_result_int(r, 0, 1), i);
		db_result_free(r);
	}
	if (db_backend_of(db) == DB_POSTGRES)
		assert_true(QUERY_INT(db, "SELECT count(*) FROM pg_prepared_statements") <=
			    DB_STMT_CACHE_SIZE);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM kv"), n);
}

static void statements_need_exactly_the_params_they_use(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	struct db_result *r = NULL;
	assert_int_equal(db_query(db, "SELECT CAST($1 AS BIGINT)", DB_ARGS("1", "2"), &r),
			 SHOP_E_INTERNAL);
	assert_int_equal(db_query(db, "SELECT CAST($1 AS BIGINT)", DB_NOARGS, &r), SHOP_E_INTERNAL);
	assert_int_equal(db_exec(db, "SELECT 1; SELECT 2", DB_NOARGS, NULL), SHOP_E_INTERNAL);
	assert_int_equal(db_exec(db, "SELECT 1", DB_PARAMS_MAX + 1, NULL, NULL), SHOP_E_LIMIT);
	assert_null(r);
	MUST(db, db_query(db, "SELECT CAST($1 AS BIGINT) * 2", DB_ARGS("21"), &r));
	assert_int_equal(db_result_int(r, 0, 0), 42);
	db_result_free(r);
}

static void ping_answers_on_a_live_connection(void **state)
{
	struct fixture *f = *state;
	MUST(f->db, db_ping(f->db));
	assert_int_equal(db_backend_of(f->db), f->backend);
}

struct worker {
	const char *url;
	int id;
	int done;
	int retries;
	shop_status failure;
	char error[DB_ERROR_MAX];
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct db *db = NULL;
	shop_status st = db_open(w->url, &db);
	if (st != SHOP_OK) {
		w->failure = st;
		snprintf(w->error, sizeof(w->error), "%s", db_last_error(NULL));
		return NULL;
	}
	while (w->done < INCREMENTS) {
		st = db_begin(db);
		if (st == SHOP_OK)
			st = db_exec(db, "UPDATE counter SET n = n + 1 WHERE id = 1", DB_NOARGS,
				     NULL);
		if (st == SHOP_OK)
			st = db_exec(db, "INSERT INTO increments (worker, seq) VALUES ($1, $2)",
				     DB_ARGS(DB_I64(w->id), DB_I64(w->done)), NULL);
		if (st == SHOP_OK)
			st = db_commit(db);
		else
			db_rollback(db);
		if (st == SHOP_OK) {
			w->done++;
		} else if (st == SHOP_E_UNAVAILABLE && w->retries < 10000) {
			w->retries++; /* what a caller does: redo the transaction */
		} else {
			w->failure = st;
			snprintf(w->error, sizeof(w->error), "%s", db_last_error(db));
			break;
		}
	}
	db_close(db);
	return NULL;
}

static void concurrent_writers_with_their_own_connections_lose_no_increment(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	struct worker workers[WORKERS];
	pthread_t threads[WORKERS];
	MUST(db, db_exec(db, "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
			 DB_NOARGS, NULL));
	MUST(db, db_exec(db,
			 "CREATE TABLE increments (worker BIGINT NOT NULL, seq BIGINT NOT NULL, "
			 "PRIMARY KEY (worker, seq))",
			 DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO counter (id, n) VALUES (1, 0)", DB_NOARGS, NULL));
	for (int i = 0; i < WORKERS; i++) {
		workers[i] = (struct worker){ .url = f->url, .id = i };
		assert_int_equal(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < WORKERS; i++) {
		if (workers[i].failure != SHOP_OK)
			fail_msg("worker %d: %s: %s", i, shop_status_name(workers[i].failure),
				 workers[i].error);
		assert_int_equal(workers[i].done, INCREMENTS);
	}
	assert_int_equal(QUERY_INT(db, "SELECT n FROM counter WHERE id = 1"), WORKERS * INCREMENTS);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM increments"), WORKERS * INCREMENTS);
}

struct migrator {
	const char *url;
	pthread_barrier_t *start; /* all replicas connected: go at once */
	shop_status st;
	char error[DB_ERROR_MAX];
};

static const struct db_migration replica_migrations[] = {
	{ "0001_ledger", "CREATE TABLE ledger (id @AUTO_ID@, note TEXT NOT NULL);" },
	{ "0002_seed", "INSERT INTO ledger (note) VALUES ('once');" },
	{ "0003_more",
	  "CREATE TABLE other (x BIGINT);\nINSERT INTO ledger (note) VALUES ('twice');" },
};

static void *migrator_run(void *arg)
{
	struct migrator *m = arg;
	struct db *db = NULL;
	m->st = db_open(m->url, &db);
	pthread_barrier_wait(m->start);
	if (m->st == SHOP_OK)
		m->st = db_migrate(db, replica_migrations, 3);
	if (m->st != SHOP_OK)
		snprintf(m->error, sizeof(m->error), "%s", db_last_error(db));
	db_close(db);
	return NULL;
}

static void replicas_migrating_at_once_apply_each_migration_exactly_once(void **state)
{
	struct fixture *f = *state;
	struct migrator m[WORKERS];
	pthread_t threads[WORKERS];
	pthread_barrier_t start;
	assert_int_equal(pthread_barrier_init(&start, NULL, WORKERS), 0);
	for (int i = 0; i < WORKERS; i++) {
		m[i] = (struct migrator){ .url = f->url, .start = &start };
		assert_int_equal(pthread_create(&threads[i], NULL, migrator_run, &m[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < WORKERS; i++)
		if (m[i].st != SHOP_OK)
			fail_msg("replica %d: %s: %s", i, shop_status_name(m[i].st), m[i].error);
	assert_int_equal(QUERY_INT(f->db, "SELECT count(*) FROM ledger"), 2);
	assert_int_equal(QUERY_INT(f->db, "SELECT count(*) FROM schema_migrations"), 3);
}

static void exec_commit_commits_or_leaves_the_failed_transaction_open(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db, *other = NULL;
	bool over = false;
	MUST(db, db_exec(db, "CREATE TABLE t (k TEXT PRIMARY KEY)", DB_NOARGS, NULL));
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("a"), NULL));
	int64_t changes = 0;
	MUST(db,
	     db_exec_commit(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("b"), &changes, &over));
	assert_true(over);
	assert_int_equal(changes, 1);
	MUST(NULL, db_open(f->url, &other));
	assert_int_equal(QUERY_INT(other, "SELECT count(*) FROM t"), 2);
	db_close(other);

	/* The statement fails: no COMMIT, and the transaction is still open
	 * and failed, so the commit is refused and the rollback undoes it all. */
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("c"), NULL));
	assert_int_equal(db_exec_commit(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("a"), NULL,
					&over),
			 SHOP_E_DUPLICATE);
	assert_false(over);
	assert_int_not_equal(db_commit(db), SHOP_OK);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM t"), 2);

	/* Under a savepoint the transaction goes on after the failure. */
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("d"), NULL));
	MUST(db, db_savepoint(db));
	assert_int_equal(db_exec_commit(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("a"), NULL,
					&over),
			 SHOP_E_DUPLICATE);
	assert_false(over);
	MUST(db, db_savepoint_rollback(db));
	MUST(db, db_exec_commit(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("e"), NULL, &over));
	assert_true(over);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM t"), 4);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM t WHERE k IN ('a', 'b', 'd', 'e')"),
			 4);
	/* Outside a transaction it is a caller bug. */
	assert_int_equal(db_exec_commit(db, "SELECT 1", DB_NOARGS, NULL, &over), SHOP_E_INTERNAL);
	assert_false(over);
}

/* ---- PostgreSQL only ---- */

static void terminate_backend_of(struct fixture *f, struct db *victim)
{
	struct db_result *r = NULL;
	char pid[32];
	QUERY_TEXT(victim, "SELECT pg_backend_pid()", pid);
	/* With a timeout the call returns once the backend is gone. */
	MUST(f->pg.admin,
	     db_query(f->pg.admin, "SELECT pg_terminate_backend($1, 5000)", DB_ARGS(pid), &r));
	assert_string_equal(db_result_text(r, 0, 0), "t");
	db_result_free(r);
}

static void a_terminated_backend_is_unavailable_once_then_reconnects(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	struct db_result *r = NULL;
	char before[32], after[32];
	QUERY_TEXT(db, "SELECT pg_backend_pid()", before);
	terminate_backend_of(f, db);
	assert_int_equal(db_query(db, "SELECT pg_backend_pid()", DB_NOARGS, &r),
			 SHOP_E_UNAVAILABLE);
	assert_null(r);
	assert_true(strlen(db_last_error(db)) > 0);
	/* The cached statement must be prepared again on the new session. */
	QUERY_TEXT(db, "SELECT pg_backend_pid()", after);
	assert_string_not_equal(before, after);
	/* db_ping sees through a connection that died while idle. */
	terminate_backend_of(f, db);
	MUST(db, db_ping(db));
}

static void a_transaction_lost_with_its_connection_must_be_redone(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	char buf[32];
	MUST(db, db_exec(db, "CREATE TABLE t (k TEXT)", DB_NOARGS, NULL));
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("first try"), NULL));
	terminate_backend_of(f, db);
	assert_int_equal(db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("more"), NULL),
			 SHOP_E_UNAVAILABLE);
	/* No statement may slip into autocommit on a new session. */
	assert_int_equal(db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("more"), NULL),
			 SHOP_E_UNAVAILABLE);
	assert_int_equal(db_commit(db), SHOP_E_UNAVAILABLE);
	db_rollback(db);
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("redone"), NULL));
	MUST(db, db_commit(db));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM t"), 1);
	assert_string_equal(QUERY_TEXT(db, "SELECT k FROM t", buf), "redone");
}

static void an_unreachable_server_is_unavailable_and_the_error_hides_the_password(void **state)
{
	struct db *db = NULL;
	const int64_t t0 = clock_mono_ms();
	assert_int_equal(db_open("postgresql://postgres:hunter2secret@127.0.0.1:1/x", &db),
			 SHOP_E_UNAVAILABLE);
	assert_null(db);
	assert_true(clock_mono_ms() - t0 < (DB_PG_CONNECT_TIMEOUT_S + 2) * 1000);
	assert_true(strlen(db_last_error(NULL)) > 0);
	assert_null(strstr(db_last_error(NULL), "hunter2secret"));
	assert_int_equal(db_open("postgresql://127.0.0.1:1/x?password=hunter2secret", &db),
			 SHOP_E_UNAVAILABLE);
	assert_null(strstr(db_last_error(NULL), "hunter2secret"));
	assert_int_equal(db_open("postgresql://u:hunter2secret@[::1/x", &db), SHOP_E_INVALID);
	assert_true(strlen(db_last_error(NULL)) > 0);
	assert_null(strstr(db_last_error(NULL), "hunter2secret"));
	assert_int_equal(db_open("mysql://u:hunter2secret@h/x", &db), SHOP_E_INVALID);
	assert_null(strstr(db_last_error(NULL), "hunter2secret"));
	assert_null(db);
}

static void the_service_name_becomes_the_application_name(void **state)
{
	struct fixture *f = *state;
	struct db *db = NULL;
	char buf[64];
	setenv("SHOP_SERVICE", "test-db-service", 1);
	shop_status st = db_open(f->url, &db);
	unsetenv("SHOP_SERVICE");
	MUST(NULL, st);
	assert_string_equal(QUERY_TEXT(db, "SELECT current_setting('application_name')", buf),
			    "test-db-service");
	db_close(db);
}

/* The state pg_stat_activity shows for VICTIM's session. */
static const char *session_state(struct fixture *f, const char *pid, char *out, size_t size)
{
	struct db_result *r = NULL;
	MUST(f->pg.admin,
	     db_query(f->pg.admin, "SELECT state FROM pg_stat_activity WHERE pid = CAST($1 AS INT)",
		      DB_ARGS(pid), &r));
	assert_int_equal(db_result_rows(r), 1);
	snprintf(out, size, "%s", db_result_text(r, 0, 0));
	db_result_free(r);
	return out;
}

static void begin_goes_out_with_the_first_statement(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	char pid[32], st[64];
	QUERY_TEXT(db, "SELECT pg_backend_pid()", pid);
	MUST(db, db_exec(db, "CREATE TABLE t (k TEXT)", DB_NOARGS, NULL));
	/* db_begin sends nothing: one round trip fewer per transaction. */
	MUST(db, db_begin(db));
	assert_string_equal(session_state(f, pid, st, sizeof(st)), "idle");
	MUST(db, db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("x"), NULL));
	assert_string_equal(session_state(f, pid, st, sizeof(st)), "idle in transaction");
	MUST(db, db_commit(db));
	assert_string_equal(session_state(f, pid, st, sizeof(st)), "idle");
	/* A transaction with no statement never reaches the server. */
	MUST(db, db_begin(db));
	MUST(db, db_commit(db));
	MUST(db, db_begin(db));
	db_rollback(db);
	/* A savepoint can be the first statement, and the first statement can
	 * fail and be rolled back like any other. */
	MUST(db, db_begin(db));
	MUST(db, db_savepoint(db));
	assert_string_equal(session_state(f, pid, st, sizeof(st)), "idle in transaction");
	MUST(db, db_savepoint_release(db));
	MUST(db, db_commit(db));
	MUST(db, db_begin(db));
	assert_int_equal(db_exec(db, "INSERT INTO nowhere (k) VALUES ($1)", DB_ARGS("x"), NULL),
			 SHOP_E_INTERNAL);
	assert_non_null(strstr(db_last_error(db), "nowhere"));
	db_rollback(db);
	assert_string_equal(session_state(f, pid, st, sizeof(st)), "idle");
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM t"), 1);
}

static void a_session_lost_before_the_first_statement_loses_the_transaction(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	bool over = true;
	MUST(db, db_exec(db, "CREATE TABLE t (k TEXT)", DB_NOARGS, NULL));
	MUST(db, db_begin(db));
	terminate_backend_of(f, db);
	assert_int_equal(db_exec(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("lost"), NULL),
			 SHOP_E_UNAVAILABLE);
	assert_int_equal(db_commit(db), SHOP_E_UNAVAILABLE);
	db_rollback(db);
	/* The same with the COMMIT in the pipeline. */
	MUST(db, db_begin(db));
	terminate_backend_of(f, db);
	assert_int_equal(db_exec_commit(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("lost"), NULL,
					&over),
			 SHOP_E_UNAVAILABLE);
	assert_false(over);
	db_rollback(db);
	MUST(db, db_begin(db));
	MUST(db,
	     db_exec_commit(db, "INSERT INTO t (k) VALUES ($1)", DB_ARGS("redone"), NULL, &over));
	assert_true(over);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM t"), 1);
}

static void a_commit_that_fails_in_the_pipeline_ends_the_transaction(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	bool over = false;
	/* A deferred unique check runs at COMMIT: the statement succeeds and
	 * the COMMIT fails. */
	MUST(db, db_exec(db, "CREATE TABLE u (k INT UNIQUE DEFERRABLE INITIALLY DEFERRED)",
			 DB_NOARGS, NULL));
	MUST(db, db_exec(db, "INSERT INTO u (k) VALUES (1)", DB_NOARGS, NULL));
	MUST(db, db_begin(db));
	assert_int_equal(db_exec_commit(db, "INSERT INTO u (k) VALUES (1)", DB_NOARGS, NULL, &over),
			 SHOP_E_DUPLICATE);
	assert_true(over);
	assert_non_null(strstr(db_last_error(db), "23505"));
	/* Over: a new transaction starts at once, and the failed one left
	 * nothing. */
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO u (k) VALUES (2)", DB_NOARGS, NULL));
	MUST(db, db_commit(db));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM u"), 2);
}

/* ---- SQLite only ---- */

static void a_second_writer_waits_out_the_busy_timeout_then_is_unavailable(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db, *other = NULL;
	MUST(db, db_exec(db, "CREATE TABLE w (x BIGINT)", DB_NOARGS, NULL));
	MUST(NULL, db_open(f->url, &other));
	db_sqlite_busy_timeout_set(other, 200);
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO w (x) VALUES (1)", DB_NOARGS, NULL));
	int64_t t0 = clock_mono_ms();
	assert_int_equal(db_exec(other, "INSERT INTO w (x) VALUES (2)", DB_NOARGS, NULL),
			 SHOP_E_UNAVAILABLE);
	int64_t waited = clock_mono_ms() - t0;
	assert_true(waited >= 150);
	assert_true(waited < DB_SQLITE_BUSY_TIMEOUT_MS);
	assert_int_equal(db_begin(other), SHOP_E_UNAVAILABLE);
	/* WAL: readers are not blocked by the writer, and see committed data only. */
	assert_int_equal(QUERY_INT(other, "SELECT count(*) FROM w"), 0);
	MUST(db, db_commit(db));
	MUST(other, db_exec(other, "INSERT INTO w (x) VALUES (2)", DB_NOARGS, NULL));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM w"), 2);
	db_close(other);
}

/* Writers of one file in one process queue for its writer lock and are
 * woken when it is given back; SQLite's busy handler (here set to give up at
 * once) is never what they wait in. */
struct queued_writer {
	struct db *db;
	atomic_bool done;
	shop_status begin, commit;
};

static void *queued_writer_run(void *arg)
{
	struct queued_writer *w = arg;
	w->begin = db_begin(w->db);
	if (w->begin == SHOP_OK) {
		w->commit = db_exec(w->db, "INSERT INTO w (x) VALUES (2)", DB_NOARGS, NULL);
		if (w->commit == SHOP_OK)
			w->commit = db_commit(w->db);
		else
			db_rollback(w->db);
	}
	atomic_store(&w->done, true);
	return NULL;
}

static void a_writer_of_this_process_queues_for_the_lock_not_sqlites_busy_handler(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	struct queued_writer w = { .begin = SHOP_E_INTERNAL, .commit = SHOP_E_INTERNAL };
	pthread_t thread;
	MUST(db, db_exec(db, "CREATE TABLE w (x BIGINT)", DB_NOARGS, NULL));
	MUST(NULL, db_open(f->url, &w.db));
	MUST(w.db, db_exec(w.db, "PRAGMA busy_timeout = 0", DB_NOARGS, NULL));
	MUST(db, db_begin(db));
	MUST(db, db_exec(db, "INSERT INTO w (x) VALUES (1)", DB_NOARGS, NULL));
	assert_int_equal(pthread_create(&thread, NULL, queued_writer_run, &w), 0);
	clock_sleep_ms(100);
	assert_false(atomic_load(&w.done)); /* still queued, not refused */
	MUST(db, db_commit(db));
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(w.begin, SHOP_OK);
	assert_int_equal(w.commit, SHOP_OK);
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM w"), 2);
	/* Given back on commit: this connection writes again at once. */
	MUST(db, db_begin(db));
	MUST(db, db_commit(db));
	db_close(w.db);
}

struct ordered_writer {
	struct db *db;
	const char *name;
	atomic_int *next; /* the order in which the writers got the lock */
	int order;
	shop_status st;
};

static void *ordered_writer_run(void *arg)
{
	struct ordered_writer *w = arg;
	w->st = db_begin(w->db);
	if (w->st != SHOP_OK)
		return NULL;
	w->order = atomic_fetch_add(w->next, 1);
	w->st = db_exec(w->db, "INSERT INTO w (name) VALUES ($1)", DB_ARGS(w->name), NULL);
	if (w->st == SHOP_OK)
		w->st = db_commit(w->db);
	else
		db_rollback(w->db);
	return NULL;
}

/* Waits until FIRST and BACKLOG writers queue for DB's file. */
static void writers_wait_for(struct db *db, int first, int backlog)
{
	int f = -1, b = -1;
	for (int i = 0; i < 500 && (f != first || b != backlog); i++) {
		db_sqlite_writers_waiting(db, &f, &b);
		if (f != first || b != backlog)
			clock_sleep_ms(10);
	}
	if (f != first || b != backlog)
		fail_msg("writers waiting: %d first and %d backlog, wanted %d and %d", f, b, first,
			 backlog);
}

static void writers_someone_waits_for_go_first_but_never_twice_while_a_consumer_waits(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	atomic_int next = 0;
	struct ordered_writer w[3] = {
		{ .name = "consumer", .next = &next, .order = -1 },
		{ .name = "request 1", .next = &next, .order = -1 },
		{ .name = "request 2", .next = &next, .order = -1 },
	};
	pthread_t threads[3];
	MUST(db, db_exec(db, "CREATE TABLE w (name TEXT)", DB_NOARGS, NULL));
	for (int i = 0; i < 3; i++) {
		MUST(NULL, db_open(f->url, &w[i].db));
		if (i > 0)
			db_writer_first(w[i].db);
	}
	/* The consumer queues first and the requests after it: the requests
	 * still go first, then the consumer has its turn before the second. */
	MUST(db, db_begin(db));
	assert_int_equal(pthread_create(&threads[0], NULL, ordered_writer_run, &w[0]), 0);
	writers_wait_for(db, 0, 1);
	assert_int_equal(pthread_create(&threads[1], NULL, ordered_writer_run, &w[1]), 0);
	writers_wait_for(db, 1, 1);
	assert_int_equal(pthread_create(&threads[2], NULL, ordered_writer_run, &w[2]), 0);
	writers_wait_for(db, 2, 1);
	MUST(db, db_commit(db));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		MUST(w[i].db, w[i].st);
		db_close(w[i].db);
	}
	assert_int_equal(w[0].order, 1);
	assert_true((w[1].order == 0 && w[2].order == 2) || (w[1].order == 2 && w[2].order == 0));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM w"), 3);
}

static void connections_use_wal_full_sync_and_foreign_keys(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db, *other = NULL;
	char buf[32];
	assert_string_equal(QUERY_TEXT(db, "PRAGMA journal_mode", buf), "wal");
	assert_int_equal(QUERY_INT(db, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(QUERY_INT(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(QUERY_INT(db, "PRAGMA busy_timeout"), DB_SQLITE_BUSY_TIMEOUT_MS);

	setenv("SHOP_SQLITE_SYNCHRONOUS", "normal", 1);
	shop_status st = db_open(f->url, &other);
	setenv("SHOP_SQLITE_SYNCHRONOUS", "fast", 1);
	struct db *never = NULL;
	shop_status bad = db_open(f->url, &never);
	unsetenv("SHOP_SQLITE_SYNCHRONOUS");
	MUST(NULL, st);
	assert_int_equal(QUERY_INT(other, "PRAGMA synchronous"), 1); /* NORMAL */
	db_close(other);
	assert_int_equal(bad, SHOP_E_INVALID);
	assert_null(never);
	assert_non_null(strstr(db_last_error(NULL), "SHOP_SQLITE_SYNCHRONOUS"));

	assert_int_equal(db_open("sqlite:", &never), SHOP_E_INVALID);
	MUST(NULL, db_open("sqlite::memory:", &never));
	MUST(never, db_ping(never));
	db_close(never);
}

/* A full disk (here: the file at its max_page_count) fails writes with
 * SQLITE_FULL. That is the database being unavailable, as a PostgreSQL
 * outage is, not a bug (SHOP_E_INTERNAL would spend the message's
 * deliveries and dead-letter it); and since "SELECT 1" still answers from a
 * full disk, db_ping reports the database down until a write commits again. */
static void a_full_disk_is_unavailable_until_a_write_commits_again(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	MUST(db, db_exec(db, "CREATE TABLE big (b BLOB)", DB_NOARGS, NULL));
	MUST(db, db_ping(db));
	char pragma[64];
	snprintf(pragma, sizeof(pragma), "PRAGMA max_page_count = %lld",
		 (long long)QUERY_INT(db, "PRAGMA page_count"));
	QUERY_INT(db, pragma);

	assert_int_equal(db_exec(db, "INSERT INTO big VALUES (zeroblob(200000))", DB_NOARGS, NULL),
			 SHOP_E_UNAVAILABLE);
	assert_non_null(strstr(db_last_error(db), "full"));
	MUST(db, db_begin(db));
	assert_int_equal(db_exec(db, "INSERT INTO big VALUES (zeroblob(200000))", DB_NOARGS, NULL),
			 SHOP_E_UNAVAILABLE);
	db_rollback(db);
	assert_int_equal(db_ping(db), SHOP_E_UNAVAILABLE);
	assert_int_equal(db_ping(db), SHOP_E_UNAVAILABLE); /* still full: still down */

	QUERY_INT(db, "PRAGMA max_page_count = 1000000");
	MUST(db, db_ping(db));
	MUST(db, db_exec(db, "INSERT INTO big VALUES (zeroblob(200000))", DB_NOARGS, NULL));
	assert_int_equal(QUERY_INT(db, "SELECT count(*) FROM big"), 1);
}

/* Writers never checkpoint below the backstop (the runtime's checkpointer
 * does it, off their path), and db_checkpoint copies committed frames into
 * the file without a writer's help. */
static void writers_leave_checkpoints_to_db_checkpoint(void **state)
{
	struct fixture *f = *state;
	struct db *db = f->db;
	assert_int_equal(QUERY_INT(db, "PRAGMA wal_autocheckpoint"),
			 DB_SQLITE_AUTOCHECKPOINT_PAGES);
	MUST(db, db_exec(db, "CREATE TABLE c (b BLOB)", DB_NOARGS, NULL));
	for (int i = 0; i < 50; i++)
		MUST(db, db_exec(db, "INSERT INTO c VALUES (zeroblob(8192))", DB_NOARGS, NULL));
	int64_t frames = 0;
	MUST(db, db_checkpoint(db, &frames));
	assert_true(frames >= 100); /* 50 rows of two pages each, at least */
	/* Everything is in the file now: a second checkpoint finds nothing new. */
	int64_t again = -1;
	MUST(db, db_checkpoint(db, &again));
	assert_true(again >= frames); /* reports the WAL's frames, all checkpointed */
	MUST(db, db_begin(db));
	assert_int_equal(db_checkpoint(db, NULL), SHOP_E_INTERNAL);
	db_rollback(db);
}

/* ---- groups ---- */

#define T(fn, fx) cmocka_unit_test_prestate_setup_teardown(fn, test_setup, test_teardown, fx)
#define COMMON_TESTS(fx)                                                                           \
	T(params_bind_by_number_in_any_order, fx), T(null_params_and_null_cells_stay_null, fx),    \
		T(integers_round_trip_as_decimal_text_at_any_magnitude, fx),                       \
		T(unique_violation_is_a_duplicate_and_the_transaction_can_be_redone, fx),          \
		T(a_failed_statement_dooms_the_transaction_on_both_backends, fx),                  \
		T(a_savepoint_undoes_one_failure_and_the_transaction_commits_the_rest, fx),        \
		T(constraint_violations_other_than_unique_are_conflicts, fx),                      \
		T(rollback_discards_changes, fx),                                                  \
		T(commit_keeps_changes_for_every_connection, fx),                                  \
		T(exec_counts_the_rows_a_statement_changed, fx),                                   \
		T(conditional_decrement_affects_no_rows_when_it_would_go_negative, fx),            \
		T(migrations_apply_once_and_are_skipped_the_second_time, fx),                      \
		T(a_failed_migration_leaves_no_trace, fx),                                         \
		T(auto_id_never_reuses_the_id_of_a_deleted_max_row, fx),                           \
		T(statement_cache_stays_correct_across_hundreds_of_distinct_statements, fx),       \
		T(statements_need_exactly_the_params_they_use, fx),                                \
		T(ping_answers_on_a_live_connection, fx),                                          \
		T(concurrent_writers_with_their_own_connections_lose_no_increment, fx),            \
		T(replicas_migrating_at_once_apply_each_migration_exactly_once, fx),               \
		T(exec_commit_commits_or_leaves_the_failed_transaction_open, fx)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {
		COMMON_TESTS(&sqlite_fx),
		T(a_second_writer_waits_out_the_busy_timeout_then_is_unavailable, &sqlite_fx),
		T(a_writer_of_this_process_queues_for_the_lock_not_sqlites_busy_handler,
		  &sqlite_fx),
		T(writers_someone_waits_for_go_first_but_never_twice_while_a_consumer_waits,
		  &sqlite_fx),
		T(connections_use_wal_full_sync_and_foreign_keys, &sqlite_fx),
		T(a_full_disk_is_unavailable_until_a_write_commits_again, &sqlite_fx),
		T(writers_leave_checkpoints_to_db_checkpoint, &sqlite_fx),
	};
	const struct CMUnitTest pg_tests[] = {
		COMMON_TESTS(&pg_fx),
		T(a_terminated_backend_is_unavailable_once_then_reconnects, &pg_fx),
		T(a_transaction_lost_with_its_connection_must_be_redone, &pg_fx),
		T(an_unreachable_server_is_unavailable_and_the_error_hides_the_password, &pg_fx),
		T(the_service_name_becomes_the_application_name, &pg_fx),
		T(begin_goes_out_with_the_first_statement, &pg_fx),
		T(a_session_lost_before_the_first_statement_loses_the_transaction, &pg_fx),
		T(a_commit_that_fails_in_the_pipeline_ends_the_transaction, &pg_fx),
	};
	int failed = cmocka_run_group_tests_name("db_sqlite", sqlite_tests, sqlite_group_setup,
						 NULL);
	failed += cmocka_run_group_tests_name("db_postgres", pg_tests, pg_group_setup,
					      pg_group_teardown);
	return failed;
}
