/*
 * test_pg_roles.c - least privilege on PostgreSQL (started by
 * tests/component/run.sh): a service's migrations run as an owner role and
 * its runtime role may read and write the rows of its tables and nothing
 * else.
 *
 * The group makes the layout infra/postgres/init.sh makes for each service
 * in compose, twice (this "service" and a neighbour): an owner role owning
 * the database and its schema, a runtime role with CONNECT on its own
 * database only and USAGE on the schema. Everything else the runtime role
 * gets comes from svc_migrate_owned, which is what is under test: without
 * its grants the runtime role could not touch a row; with too many it could
 * change the schema. The spec is payments' with the provider's ledger
 * migrated alongside, as services/payments/main.c does when the ledger
 * shares the service's database. Role names carry the process id, so
 * reruns on one server do not meet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../unit/payments_harness.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "db/db.h"
#include "pg_scratch.h"
#include "svc/svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROLE_MAX 64

struct side {
	struct pg_scratch pg;
	char owner_role[ROLE_MAX];
	char runtime_role[ROLE_MAX];
	char owner_url[PG_SCRATCH_URL_MAX];
	char runtime_url[PG_SCRATCH_URL_MAX];
};

struct group {
	struct side mine, neighbour;
	struct db_migration *migrations;
	size_t n_migrations;
	struct payments_ctx ctx;
	struct svc_spec spec;
	struct db *owner;
	struct db *runtime;
};

static struct group g;

/* The server's URL with USER instead of its user and DBNAME as database. */
static void url_as(const char *user, const char *dbname, char *out, size_t size)
{
	const char *server = getenv("SHOP_TEST_PG_URL");
	const char *authority = strstr(server, "://") + 3;
	const char *at = strchr(authority, '@');
	char host_url[PG_SCRATCH_URL_MAX];
	snprintf(host_url, sizeof(host_url), "%.*s%s@%s", (int)(authority - server), server, user,
		 at ? at + 1 : authority);
	pg_scratch_url_for(host_url, dbname, NULL, out, size);
}

/* Runs each of N statements on DB (NULL: on the server's own database). */
static int exec_each(struct db *db, const char *const *sqls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		shop_status st = db ? db_exec(db, sqls[i], DB_NOARGS, NULL)
				    : pg_scratch_server_exec(sqls[i]);
		if (st != SHOP_OK) {
			if (db)
				fprintf(stderr, "%s: %s\n", sqls[i], db_last_error(db));
			return -1;
		}
	}
	return 0;
}

/* init.sh's layout for one service, made by the superuser. */
static int side_create(struct side *s, const char *prefix)
{
	char a[256], b[256], c[256], d[256], e[256];
	if (pg_scratch_create(&s->pg, prefix) != 0)
		return -1;
	snprintf(s->owner_role, sizeof(s->owner_role), "%s_owner", s->pg.name);
	snprintf(s->runtime_role, sizeof(s->runtime_role), "%s_rt", s->pg.name);
	snprintf(a, sizeof(a), "CREATE ROLE %s LOGIN", s->owner_role);
	snprintf(b, sizeof(b), "CREATE ROLE %s LOGIN", s->runtime_role);
	snprintf(c, sizeof(c), "ALTER DATABASE %s OWNER TO %s", s->pg.name, s->owner_role);
	snprintf(d, sizeof(d), "REVOKE ALL ON DATABASE %s FROM PUBLIC", s->pg.name);
	snprintf(e, sizeof(e), "GRANT CONNECT ON DATABASE %s TO %s", s->pg.name, s->runtime_role);
	const char *const server[] = { a, b, c, d, e };
	if (exec_each(NULL, server, 5) != 0)
		return -1;
	snprintf(a, sizeof(a), "ALTER SCHEMA public OWNER TO %s", s->owner_role);
	snprintf(b, sizeof(b), "REVOKE ALL ON SCHEMA public FROM PUBLIC");
	snprintf(c, sizeof(c), "GRANT USAGE ON SCHEMA public TO %s", s->runtime_role);
	const char *const inside[] = { a, b, c };
	if (exec_each(s->pg.admin, inside, 3) != 0)
		return -1;
	url_as(s->owner_role, s->pg.name, s->owner_url, sizeof(s->owner_url));
	url_as(s->runtime_role, s->pg.name, s->runtime_url, sizeof(s->runtime_url));
	return 0;
}

static void side_drop(struct side *s)
{
	char sql[256];
	char owner[ROLE_MAX], runtime[ROLE_MAX];
	bool had = s->pg.name[0] != '\0';
	memcpy(owner, s->owner_role, sizeof(owner));
	memcpy(runtime, s->runtime_role, sizeof(runtime));
	pg_scratch_drop(&s->pg);
	if (!had || !owner[0])
		return;
	snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", runtime);
	(void)pg_scratch_server_exec(sql);
	snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", owner);
	(void)pg_scratch_server_exec(sql);
}

static int group_setup(void **state)
{
	log_init("pg-roles-test", LOG_LVL_ERROR);
	if (side_create(&g.mine, "roles_mine") != 0 || side_create(&g.neighbour, "roles_next") != 0)
		return -1;
	g.n_migrations = payments_n_migrations + payments_provider_n_migrations;
	g.migrations = xcalloc(g.n_migrations, sizeof(*g.migrations));
	memcpy(g.migrations, payments_migrations, payments_n_migrations * sizeof(*g.migrations));
	memcpy(g.migrations + payments_n_migrations, payments_provider_migrations,
	       payments_provider_n_migrations * sizeof(*g.migrations));
	payments_harness_spec_fill(&g.spec, &g.ctx, g.mine.runtime_url);
	g.spec.migrations = g.migrations;
	g.spec.n_migrations = g.n_migrations;
	if (db_open(g.mine.owner_url, &g.owner) != SHOP_OK ||
	    db_open(g.mine.runtime_url, &g.runtime) != SHOP_OK) {
		fprintf(stderr, "cannot open as the service's roles: %s\n", db_last_error(NULL));
		return -1;
	}
	/* The neighbour has a table with a row of its own. */
	struct db *next_owner = NULL;
	shop_status st = db_open(g.neighbour.owner_url, &next_owner);
	if (st == SHOP_OK)
		st = db_exec(next_owner, "CREATE TABLE secrets (v TEXT)", DB_NOARGS, NULL);
	db_close(next_owner);
	return st == SHOP_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	db_close(g.owner);
	db_close(g.runtime);
	free(g.migrations);
	side_drop(&g.mine);
	side_drop(&g.neighbour);
	return 0;
}

/* A statement the runtime role must be refused, for want of privilege. */
static void assert_refused(const char *sql)
{
	shop_status st = db_exec(g.runtime, sql, DB_NOARGS, NULL);
	if (st == SHOP_OK)
		fail_msg("the runtime role was allowed: %s", sql);
	if (!strstr(db_last_error(g.runtime), "permission denied") &&
	    !strstr(db_last_error(g.runtime), "must be owner"))
		fail_msg("%s failed for another reason: %s", sql, db_last_error(g.runtime));
}

/* ---- cases --------------------------------------------------------------- */

/* Ordered first: before the owner migrated, the runtime role cannot. */
static void runtime_role_cannot_run_the_migrations(void **state)
{
	assert_int_not_equal(svc_migrate(&g.spec, g.runtime), SHOP_OK);
	assert_non_null(strstr(db_last_error(g.runtime), "permission denied"));
}

static void migrations_run_as_the_owner_and_the_runtime_role_reads_and_writes_rows(void **state)
{
	assert_int_equal(svc_migrate_owned(&g.spec, g.owner, g.runtime), SHOP_OK);
	/* The outbox's identity column needs the sequence: INSERT proves it. */
	assert_int_equal(db_exec(g.runtime,
				 "INSERT INTO outbox (event_id, subject, payload, created_at_ms)"
				 " VALUES ('e1', 's', '{}', 1)",
				 DB_NOARGS, NULL),
			 SHOP_OK);
	int64_t changed = 0;
	assert_int_equal(db_exec(g.runtime,
				 "UPDATE outbox SET published_at_ms = 2 WHERE event_id = 'e1'",
				 DB_NOARGS, &changed),
			 SHOP_OK);
	assert_int_equal(changed, 1);
	assert_int_equal(db_exec(g.runtime, "DELETE FROM outbox WHERE event_id = 'e1'", DB_NOARGS,
				 &changed),
			 SHOP_OK);
	assert_int_equal(changed, 1);
	/* The service's own tables and the provider's ledger too. */
	struct payments_provider *p = payments_provider_create(g.mine.runtime_url);
	payments_provider_migrated_by_service(p);
	struct payments_provider_charge_result r;
	assert_int_equal(payments_provider_charge(p, "key-1", PAYMENTS_CARD_VISA, 100, "EUR", &r),
			 SHOP_OK);
	assert_int_equal(r.outcome, PAYMENTS_PROVIDER_APPROVED);
	payments_provider_destroy(p);
	struct db_result *res = NULL;
	assert_int_equal(db_query(g.runtime, "SELECT count(*) FROM provider_charges", DB_NOARGS,
				  &res),
			 SHOP_OK);
	assert_int_equal(db_result_int(res, 0, 0), 1);
	db_result_free(res);
	assert_int_equal(db_query(g.runtime, "SELECT count(*) FROM payments", DB_NOARGS, &res),
			 SHOP_OK);
	db_result_free(res);
	/* It may read which migrations ran (nothing more). */
	assert_int_equal(db_query(g.runtime, "SELECT count(*) FROM schema_migrations", DB_NOARGS,
				  &res),
			 SHOP_OK);
	assert_int_equal(db_result_int(res, 0, 0), (int64_t)g.n_migrations + 2);
	db_result_free(res);
}

static void runtime_role_cannot_create_alter_drop_or_truncate(void **state)
{
	assert_refused("CREATE TABLE intruder (v TEXT)");
	assert_refused("CREATE INDEX intruder ON outbox (subject)");
	assert_refused("ALTER TABLE outbox ADD COLUMN intruder TEXT");
	assert_refused("ALTER TABLE provider_charges DROP COLUMN card_token");
	assert_refused("DROP TABLE inbox");
	assert_refused("DROP TABLE provider_charges");
	assert_refused("TRUNCATE provider_charges");
	assert_refused("CREATE SCHEMA intruder");
	assert_refused("CREATE TEMP TABLE intruder (v TEXT)");
	assert_refused("INSERT INTO schema_migrations (name, applied_at_ms) VALUES ('x', 1)");
	assert_refused("DELETE FROM schema_migrations");
}

static void runtime_role_cannot_reach_another_services_database(void **state)
{
	char url[PG_SCRATCH_URL_MAX];
	struct db *db = NULL;
	url_as(g.mine.runtime_role, g.neighbour.pg.name, url, sizeof(url));
	assert_int_not_equal(db_open(url, &db), SHOP_OK);
	assert_non_null(strstr(db_last_error(NULL), "permission denied"));
	db_close(db);
	/* Nor does the owner of one reach the other's. */
	db = NULL;
	url_as(g.mine.owner_role, g.neighbour.pg.name, url, sizeof(url));
	assert_int_not_equal(db_open(url, &db), SHOP_OK);
	db_close(db);
}

/* A later release adds a table: migrating again applies it as the owner and
 * the runtime role can use it at once, still without changing it. */
static void a_later_migration_is_granted_to_the_runtime_role(void **state)
{
	struct db_migration *more = xcalloc(g.n_migrations + 1, sizeof(*more));
	memcpy(more, g.migrations, g.n_migrations * sizeof(*more));
	more[g.n_migrations] = (struct db_migration){
		"zz_test_later", "CREATE TABLE later (id @AUTO_ID@, v TEXT NOT NULL)"
	};
	struct svc_spec spec = g.spec;
	spec.migrations = more;
	spec.n_migrations = g.n_migrations + 1;
	assert_int_equal(svc_migrate_owned(&spec, g.owner, g.runtime), SHOP_OK);
	assert_int_equal(db_exec(g.runtime, "INSERT INTO later (v) VALUES ('a')", DB_NOARGS, NULL),
			 SHOP_OK);
	assert_refused("DROP TABLE later");
	/* And again, as a restarted replica does: nothing to do, no error. */
	assert_int_equal(svc_migrate_owned(&spec, g.owner, g.runtime), SHOP_OK);
	free(more);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(runtime_role_cannot_run_the_migrations),
		cmocka_unit_test(
			migrations_run_as_the_owner_and_the_runtime_role_reads_and_writes_rows),
		cmocka_unit_test(runtime_role_cannot_create_alter_drop_or_truncate),
		cmocka_unit_test(runtime_role_cannot_reach_another_services_database),
		cmocka_unit_test(a_later_migration_is_granted_to_the_runtime_role),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
