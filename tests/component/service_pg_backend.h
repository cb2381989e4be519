/*
 * service_pg_backend.h - PostgreSQL for a service's unit-test suite.
 *
 * A service's handler tests (tests/unit/test_<service>_handlers.c) run on
 * in-process SQLite; tests/component/test_<service>_pg.c includes this file
 * and then the unit test file, which picks up the backend_* hooks below
 * instead of its SQLite ones. So the same cases run on both backends, which
 * is the proof that the service's SQL is portable.
 *
 * Isolation: one database per run (pg_scratch.h: named after the pid and the
 * time, dropped in the group teardown), one schema per test inside it,
 * selected with search_path in the connection URL so that every connection
 * to the test's URL, reconnects included, sees only that test's tables.
 */
#ifndef SHOP_TESTS_SERVICE_PG_BACKEND_H
#define SHOP_TESTS_SERVICE_PG_BACKEND_H

#include <stdbool.h>

#include "pg_scratch.h"

#define TEST_BACKEND_DEFINED 1

static struct pg_scratch pg_backend_run; /* this run's database */
static int pg_backend_seq;               /* schemas made so far */

static int backend_group_setup(void **state)
{
	return pg_scratch_create(&pg_backend_run, "svc_test");
}

static int backend_group_teardown(void **state)
{
	pg_scratch_drop(&pg_backend_run);
	return 0;
}

/* A fresh schema; on PostgreSQL every database outlives its connections. */
static void backend_url(char *out, size_t size, bool persistent)
{
	(void)persistent;
	if (pg_scratch_schema_url(&pg_backend_run, ++pg_backend_seq, out, size) != SHOP_OK)
		fail_msg("no schema for test %d: %s", pg_backend_seq,
			 db_last_error(pg_backend_run.admin));
}

static void backend_release(const char *url)
{
	(void)url; /* the schema goes with the run's database */
}

#endif
