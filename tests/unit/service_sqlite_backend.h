/*
 * service_sqlite_backend.h - the default backend of a service's unit-test
 * suite: in-process SQLite, a fresh :memory: database per test.
 *
 * Included by tests/unit/test_<service>_{handlers,store}.c unless
 * tests/component/service_pg_backend.h came first (TEST_BACKEND_DEFINED),
 * in which case the same cases run on PostgreSQL. A test that needs its
 * database to outlive a connection (a restart) asks for a persistent one and
 * gets a file, removed by backend_release.
 */
#ifndef SHOP_TESTS_SERVICE_SQLITE_BACKEND_H
#define SHOP_TESTS_SERVICE_SQLITE_BACKEND_H

#ifndef TEST_BACKEND_DEFINED
#define TEST_BACKEND_DEFINED 1

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int backend_group_setup(void **state)
{
	(void)state;
	return 0;
}

static int backend_group_teardown(void **state)
{
	(void)state;
	return 0;
}

static void backend_url(char *out, size_t size, bool persistent)
{
	static int seq;
	if (persistent)
		snprintf(out, size, "sqlite:/tmp/shop_test_%ld_%d.db", (long)getpid(), ++seq);
	else
		snprintf(out, size, "sqlite::memory:");
}

static void backend_release(const char *url)
{
	const char *path = url + strlen("sqlite:");
	if (strcmp(path, ":memory:") != 0)
		unlink(path);
}
#endif

#endif
