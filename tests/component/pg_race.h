/*
 * pg_race.h - two connections handling conflicting messages at once, as two
 * consumer threads or two replicas of a service would, for the races
 * PostgreSQL can run and SQLite (one writer per file) cannot.
 *
 * pg_race_together releases two threads at once. pg_race handles the first
 * message on the suite's connection and keeps
 * that transaction open while a thread handles the second on a connection
 * of its own, long enough for it to reach the conflicting statement and
 * block on the row; then the first commits and the second carries on.
 * Whatever the interleaving, both must succeed; the caller checks that the
 * outcome is one legal state with one event per transition.
 *
 * Included after <cmocka.h> and tests/unit/service_harness.h (directly or
 * through the unit suite the component suite includes).
 */
#ifndef SHOP_TESTS_PG_RACE_H
#define SHOP_TESTS_PG_RACE_H

#include <pthread.h>

#include "../unit/service_harness.h"

/* How long the open transaction waits (the outcome does not depend on it,
 * only which path the test exercises). */
#define PG_RACE_HOLD_MS 300

struct pg_race_second {
	struct svc_tx tx; /* on the second connection */
	svc_handler_fn fn;
	const void *msg;
	shop_status st;
};

static inline void *pg_race_second_main(void *arg)
{
	struct pg_race_second *r = arg;
	r->st = harness_tx_try(&r->tx, r->fn, r->msg);
	return NULL;
}

/* Runs RUN on A and on B in two threads that wait for each other on START
 * (the structs A and B point to it), so that they go at once; returns when
 * both are done. */
static inline void pg_race_together(pthread_barrier_t *start, void *(*run)(void *), void *a,
				    void *b)
{
	pthread_t ta, tb;
	assert_int_equal(pthread_barrier_init(start, NULL, 2), 0);
	assert_int_equal(pthread_create(&ta, NULL, run, a), 0);
	assert_int_equal(pthread_create(&tb, NULL, run, b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(start);
}

/* FIRST on FIRST_MSG on DB, held open while SECOND on SECOND_MSG runs on a
 * new connection to URL; both at NOW_MS. */
static inline void pg_race(struct svc *svc, struct db *db, const char *url, int64_t now_ms,
			   svc_handler_fn first, const void *first_msg, svc_handler_fn second,
			   const void *second_msg)
{
	struct pg_race_second r = {
		.tx = { .svc = svc, .correlation_id = "racer", .now_ms = now_ms },
		.fn = second,
		.msg = second_msg,
		.st = SHOP_E_INTERNAL,
	};
	assert_int_equal(db_open(url, &r.tx.db), SHOP_OK);

	struct svc_tx tx = { .svc = svc, .db = db, .correlation_id = "first", .now_ms = now_ms };
	assert_int_equal(db_begin(db), SHOP_OK);
	assert_int_equal(first(&tx, first_msg), SHOP_OK);

	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, pg_race_second_main, &r), 0);
	clock_sleep_ms(PG_RACE_HOLD_MS);
	assert_int_equal(db_commit(db), SHOP_OK);
	pthread_join(thread, NULL);
	db_close(r.tx.db);
	assert_int_equal(r.st, SHOP_OK);
}

#endif
