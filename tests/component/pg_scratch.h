/*
 * pg_scratch.h - a scratch PostgreSQL database for a component suite, on the
 * server tests/component/run.sh starts (SHOP_TEST_PG_URL).
 *
 * pg_scratch_create makes a database named after a prefix, the process id,
 * the time and a counter, so reruns and suites running side by side against
 * the same server never meet each other's state, and opens a connection to
 * it (admin) for the suite's own chores. pg_scratch_drop closes that
 * connection and drops the database WITH (FORCE), so sessions a failed case
 * left open cannot keep it alive. pg_scratch_schema_url makes a fresh schema
 * inside it and gives a URL whose every connection, reconnects included,
 * sees only that schema (search_path in the URL).
 *
 * Group setups must not assert, so these print what went wrong to stderr and
 * return -1 (or the status) instead.
 */
#ifndef SHOP_TESTS_PG_SCRATCH_H
#define SHOP_TESTS_PG_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "db/db.h"

#define PG_SCRATCH_URL_MAX 1024
#define PG_SCRATCH_NAME_MAX 64

struct pg_scratch {
	char name[PG_SCRATCH_NAME_MAX]; /* the database, "" when there is none */
	char url[PG_SCRATCH_URL_MAX];   /* a URL to it */
	struct db *admin;               /* a connection to it */
};

/* SERVER's URL with its database replaced by DBNAME and, when EXTRA is not
 * NULL, EXTRA added to the query string. */
static inline void pg_scratch_url_for(const char *server, const char *dbname, const char *extra,
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

/* Runs SQL on the server's own database: CREATE and DROP DATABASE cannot
 * run inside the database they name. */
static inline shop_status pg_scratch_server_exec(const char *sql)
{
	const char *server = getenv("SHOP_TEST_PG_URL");
	struct db *root = NULL;
	if (!server || !*server) {
		fprintf(stderr, "SHOP_TEST_PG_URL is not set (run under tests/component/run.sh)\n");
		return SHOP_E_INVALID;
	}
	shop_status st = db_open(server, &root);
	if (st != SHOP_OK) {
		fprintf(stderr, "cannot open %s: %s\n", server, db_last_error(NULL));
		return st;
	}
	st = db_exec(root, sql, DB_NOARGS, NULL);
	if (st != SHOP_OK)
		fprintf(stderr, "%s: %s\n", sql, db_last_error(root));
	db_close(root);
	return st;
}

/* A new database "<prefix>_<pid>_<ms>_<n>" and a connection to it. */
static inline int pg_scratch_create(struct pg_scratch *s, const char *prefix)
{
	static int created;
	char sql[PG_SCRATCH_NAME_MAX + 32];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s_%ld_%lld_%d", prefix, (long)getpid(),
		 (long long)clock_now_ms(), ++created);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", s->name);
	if (pg_scratch_server_exec(sql) != SHOP_OK) {
		s->name[0] = '\0';
		return -1;
	}
	pg_scratch_url_for(getenv("SHOP_TEST_PG_URL"), s->name, NULL, s->url, sizeof(s->url));
	if (db_open(s->url, &s->admin) != SHOP_OK) {
		fprintf(stderr, "cannot open %s: %s\n", s->url, db_last_error(NULL));
		return -1;
	}
	return 0;
}

/* Closes the connection and drops the database; a scratch that was never
 * created is fine. */
static inline void pg_scratch_drop(struct pg_scratch *s)
{
	char sql[PG_SCRATCH_NAME_MAX + 48];
	db_close(s->admin);
	s->admin = NULL;
	if (!s->name[0])
		return;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", s->name);
	(void)pg_scratch_server_exec(sql);
	s->name[0] = '\0';
}

/* A fresh schema "t<seq>" in the scratch database; OUT gets a URL whose
 * connections see only that schema. */
static inline shop_status pg_scratch_schema_url(const struct pg_scratch *s, int seq, char *out,
						size_t size)
{
	char schema[32], sql[64], extra[64];
	snprintf(schema, sizeof(schema), "t%d", seq);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	shop_status st = db_exec(s->admin, sql, DB_NOARGS, NULL);
	if (st != SHOP_OK) {
		fprintf(stderr, "%s: %s\n", sql, db_last_error(s->admin));
		return st;
	}
	/* "options=-csearch_path=<schema>", with the '=' inside the value
	 * percent-encoded. */
	snprintf(extra, sizeof(extra), "options=-csearch_path%%3D%s", schema);
	pg_scratch_url_for(s->url, s->name, extra, out, size);
	return SHOP_OK;
}

#endif
