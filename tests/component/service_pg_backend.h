/*
 * service_pg_backend.h - PostgreSQL for a service's unit-test suite.
 *
 * A service's handler tests (tests/unit/test_<service>_handlers.c) run on
 * in-process SQLite; tests/component/test_<service>_pg.c includes this file
 * and then the unit test file, which picks up the backend_* hooks below
 * instead of its SQLite ones. So the same cases run on both backends, which
 * is the proof that the service's SQL is portable.
 *
 * Isolation: one database per run (named after the pid and the time, dropped
 * in the group teardown), one schema per test inside it, selected with
 * search_path in the connection URL so that every connection to the test's
 * URL, reconnects included, sees only that test's tables.
 */
#ifndef SHOP_TESTS_SERVICE_PG_BACKEND_H
#define SHOP_TESTS_SERVICE_PG_BACKEND_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "db/db.h"

#define TEST_BACKEND_DEFINED 1
#define PG_BACKEND_URL_MAX 1024
#define PG_BACKEND_NAME_MAX 64

static char pg_backend_db[PG_BACKEND_NAME_MAX];   /* this run's database */
static char pg_backend_url[PG_BACKEND_URL_MAX];   /* ... and its URL */
static struct db *pg_backend_admin;               /* connection to it */
static int pg_backend_seq;                        /* schemas made so far */

/* server with its database replaced by dbname and, if extra is not NULL,
 * extra added to the query string. */
static void pg_backend_url_for(const char *server, const char *dbname, const char *extra,
			       char *out, size_t size)
{
	const char *authority = strstr(server, "://");
	authority = authority ? authority + 3 : server;
	size_t prefix = (size_t)(authority - server) + strcspn(authority, "/?");
	const char *query = strchr(server + prefix, '?');
	const char *sep = query ? "&" : "?";
	snprintf(out, size, "%.*s/%s%s%s%s", (int)prefix, server, dbname, query ? query : "",
		 extra ? sep : "", extra ? extra : "");
}

static int backend_group_setup(void **state)
{
	const char *server = getenv("SHOP_TEST_PG_URL");
	if (!server || !*server) {
		fprintf(stderr, "SHOP_TEST_PG_URL is not set (run under tests/component/run.sh)\n");
		return -1;
	}
	snprintf(pg_backend_db, sizeof(pg_backend_db), "svc_test_%ld_%lld", (long)getpid(),
		 (long long)clock_now_ms());
	struct db *root = NULL;
	if (db_open(server, &root) != SHOP_OK) {
		fprintf(stderr, "cannot open %s: %s\n", server, db_last_error(NULL));
		return -1;
	}
	char sql[PG_BACKEND_NAME_MAX + 32];
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", pg_backend_db);
	shop_status st = db_exec(root, sql, DB_NOARGS, NULL);
	if (st != SHOP_OK)
		fprintf(stderr, "%s: %s\n", sql, db_last_error(root));
	db_close(root);
	if (st != SHOP_OK)
		return -1;
	pg_backend_url_for(server, pg_backend_db, NULL, pg_backend_url, sizeof(pg_backend_url));
	if (db_open(pg_backend_url, &pg_backend_admin) != SHOP_OK) {
		fprintf(stderr, "cannot open %s: %s\n", pg_backend_url, db_last_error(NULL));
		return -1;
	}
	return 0;
}

static int backend_group_teardown(void **state)
{
	db_close(pg_backend_admin);
	pg_backend_admin = NULL;
	struct db *root = NULL;
	if (db_open(getenv("SHOP_TEST_PG_URL"), &root) == SHOP_OK) {
		char sql[PG_BACKEND_NAME_MAX + 48];
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_backend_db);
		(void)db_exec(root, sql, DB_NOARGS, NULL);
	}
	db_close(root);
	return 0;
}

/* A fresh schema; on PostgreSQL every database outlives its connections. */
static void backend_url(char *out, size_t size, bool persistent)
{
	(void)persistent;
	char schema[PG_BACKEND_NAME_MAX], sql[PG_BACKEND_NAME_MAX + 32], extra[PG_BACKEND_NAME_MAX + 32];
	snprintf(schema, sizeof(schema), "t%d", ++pg_backend_seq);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	if (db_exec(pg_backend_admin, sql, DB_NOARGS, NULL) != SHOP_OK)
		fail_msg("%s: %s", sql, db_last_error(pg_backend_admin));
	/* "options=-csearch_path=<schema>", with the '=' inside the value
	 * percent-encoded. */
	snprintf(extra, sizeof(extra), "options=-csearch_path%%3D%s", schema);
	pg_backend_url_for(pg_backend_url, pg_backend_db, extra, out, size);
}

static void backend_release(const char *url)
{
	(void)url; /* the schema goes with the run's database */
}

#endif
