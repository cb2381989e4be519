/*
 * test_shipping_pg.c - shipping's handler tests on a real PostgreSQL server,
 * plus the races SQLite cannot show.
 *
 * Every case of tests/unit/test_shipping_handlers.c runs here unchanged on
 * PostgreSQL (service_pg_backend.h supplies the databases). The extra cases
 * hold one transaction open on one connection while a second connection
 * handles the conflicting message, as two consumer threads or two replicas
 * would: OrderPaid and OrderCancelled come from one stream, but replicas
 * sharing the consumer handle them at the same time, and PostgreSQL runs
 * them at once (READ COMMITTED, no FOR UPDATE). Whatever the interleaving, the outcome
 * must be one legal state and one event per transition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>

#include "service_pg_backend.h"

static void cancellation_racing_a_payment_still_cancels_the_shipment(void **state);
static void payment_racing_a_cancellation_schedules_nothing(void **state);
static void two_dispatchers_racing_dispatch_once(void **state);

#define TEST_EXTRA_CASES                                                                \
	T(cancellation_racing_a_payment_still_cancels_the_shipment),                      \
		T(payment_racing_a_cancellation_schedules_nothing),                       \
		T(two_dispatchers_racing_dispatch_once),

#include "../unit/test_shipping_handlers.c"
#include "pg_race.h"

/* A new order whose OrderPaid and OrderCancelled race: with PAYMENT_FIRST
 * OrderPaid holds its transaction open on the fixture's connection while
 * the cancellation runs on a second one, else the other way round. */
static void race_payment_and_cancellation(struct fixture *f, char order[IDS_UUID_SIZE],
					  bool payment_first)
{
	struct ct_order_paid paid;
	struct ct_order_cancelled cancelled;
	new_placed_order(f, order);
	order_paid(&paid, order);
	order_cancelled(&cancelled, order);
	if (payment_first)
		pg_race(f->svc, f->db, f->url, f->t0, shipping_handle_order_paid, &paid,
			shipping_handle_order_cancelled, &cancelled);
	else
		pg_race(f->svc, f->db, f->url, f->t0, shipping_handle_order_cancelled, &cancelled,
			shipping_handle_order_paid, &paid);
}

static void cancellation_racing_a_payment_still_cancels_the_shipment(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	race_payment_and_cancellation(f, order, true);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_CANCELLED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_SCHEDULED), 1);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 1);
	assert_int_equal(dispatch_at(f, f->t0 + 10 * TEST_DELAY_MS).due, 0);
}

static void payment_racing_a_cancellation_schedules_nothing(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	race_payment_and_cancellation(f, order, false);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_VOIDED);
	assert_int_equal(outbox_total(f), 0);
}

struct dispatcher {
	struct fixture *f;
	struct db *db;
	struct shipping_dispatch_report report;
	shop_status st;
};

static void *dispatcher_main(void *arg)
{
	struct dispatcher *d = arg;
	d->st = shipping_dispatch_due(d->f->svc, d->db, d->f->t0 + TEST_DELAY_MS, &d->report);
	return NULL;
}

static void two_dispatchers_racing_dispatch_once(void **state)
{
	struct fixture *f = *state;
	enum { ORDERS = 20, DISPATCHERS = 2 };
	for (int i = 0; i < ORDERS; i++) {
		char order[IDS_UUID_SIZE];
		new_paid_order(f, order);
	}
	struct dispatcher d[DISPATCHERS];
	pthread_t threads[DISPATCHERS];
	for (int i = 0; i < DISPATCHERS; i++) {
		d[i] = (struct dispatcher){ .f = f, .st = SHOP_E_INTERNAL };
		assert_int_equal(db_open(f->url, &d[i].db), SHOP_OK);
	}
	for (int i = 0; i < DISPATCHERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, dispatcher_main, &d[i]), 0);
	size_t dispatched = 0;
	for (int i = 0; i < DISPATCHERS; i++) {
		pthread_join(threads[i], NULL);
		db_close(d[i].db);
		assert_int_equal(d[i].st, SHOP_OK);
		dispatched += d[i].report.dispatched;
	}
	assert_int_equal(dispatched, ORDERS);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), ORDERS);
}
