/*
 * pg_race.h - two connections handling conflicting messages at once, as two
 * consumer threads or two replicas of a service would, for the races
 * PostgreSQL can run and SQLite (one writer per file) cannot.
 *
 * pg_race_together releases two threads at once. pg_race handles the first
 * message on the suite's connection and keeps that transaction open while a
 * thread handles the second on a connection of its own, until a third
 * connection sees the second waiting for a lock (pg_race_lock_wait_seen):
 * it has reached the conflicting statement and blocks on the row or key
 * the first holds. Then the first commits and the second carries on. A
 * fixed pause instead would pass whether or not the second ever got there.
 * Both must succeed; the caller checks that the outcome is one legal state
 * with one event per transition.
 *
 * Included after <cmocka.h> and tests/unit/service_harness.h (directly or
 * through the unit suite the component suite includes).
 */
#ifndef SHOP_TESTS_PG_RACE_H
#define SHOP_TESTS_PG_RACE_H

#include <pthread.h>
#include <stdbool.h>

#include "../unit/service_harness.h"

/* How often, and how long at most, to look for the second connection
 * waiting on a lock before calling the race not run. */
#define PG_RACE_LOCK_WAIT_POLL_MS 10
#define PG_RACE_LOCK_WAIT_MAX_MS 10000

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

/* Waits until some session of OBSERVER's database waits for a lock: a row
 * lock, or the transaction of an uncommitted key it conflicts with. OBSERVER
 * must be outside a transaction, which would freeze what pg_stat_activity
 * shows it. */
static inline bool pg_race_lock_wait_seen(struct db *observer)
{
	for (int64_t waited = 0; waited < PG_RACE_LOCK_WAIT_MAX_MS;
	     waited += PG_RACE_LOCK_WAIT_POLL_MS) {
		struct db_result *r = NULL;
		assert_int_equal(
			db_query(observer,
				 "SELECT COUNT(*) FROM pg_stat_activity"
				 " WHERE datname = current_database() AND wait_event_type = 'Lock'",
				 DB_NOARGS, &r),
			SHOP_OK);
		int64_t n = db_result_int(r, 0, 0);
		db_result_free(r);
		if (n > 0)
			return true;
		clock_sleep_ms(PG_RACE_LOCK_WAIT_POLL_MS);
	}
	return false;
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
	struct db *observer = NULL;
	assert_int_equal(db_open(url, &r.tx.db), SHOP_OK);
	assert_int_equal(db_open(url, &observer), SHOP_OK);

	struct svc_tx tx = { .svc = svc, .db = db, .correlation_id = "first", .now_ms = now_ms };
	assert_int_equal(db_begin(db), SHOP_OK);
	assert_int_equal(first(&tx, first_msg), SHOP_OK);

	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, pg_race_second_main, &r), 0);
	bool waited = pg_race_lock_wait_seen(observer);
	assert_int_equal(db_commit(db), SHOP_OK);
	pthread_join(thread, NULL);
	db_close(observer);
	db_close(r.tx.db);
	assert_true(waited);
	assert_int_equal(r.st, SHOP_OK);
}

#endif
