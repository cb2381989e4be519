/*
 * test_shipping_pg.c - shipping's handler tests on a real PostgreSQL server,
 * plus the races SQLite cannot show.
 *
 * Every case of tests/unit/test_shipping_handlers.c runs here unchanged on
 * PostgreSQL (service_pg_backend.h supplies the databases). The extra cases
 * hold one transaction open on one connection while a second connection
 * handles the conflicting message, as two consumer threads or two replicas
 * would: OrderPaid and a cancellation come from one stream, but replicas
 * sharing the consumer handle them at the same time, and the dispatcher
 * runs beside the consumers whatever the stream says; PostgreSQL runs them
 * at once (READ COMMITTED, no FOR UPDATE). Whatever the interleaving, the
 * outcome must be one legal state and one event per transition. The race
 * that matters most is the pivot: a paid order's cancellation request
 * against the dispatcher, where exactly one of them may win.
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
static void a_dispatcher_blocked_behind_a_cancellation_request_dispatches_nothing(void **state);
static void cancellation_requests_racing_the_dispatcher_have_exactly_one_winner(void **state);

#define TEST_EXTRA_CASES                                                                           \
	T(cancellation_racing_a_payment_still_cancels_the_shipment),                               \
		T(payment_racing_a_cancellation_schedules_nothing),                                \
		T(two_dispatchers_racing_dispatch_once),                                           \
		T(a_dispatcher_blocked_behind_a_cancellation_request_dispatches_nothing),          \
		T(cancellation_requests_racing_the_dispatcher_have_exactly_one_winner),

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

/* The request has moved the shipment to CANCELLED but not committed; the
 * dispatcher read it SCHEDULED and due, and blocks in its guarded UPDATE.
 * Once the request commits, the guard is false: nothing is dispatched. */
static void a_dispatcher_blocked_behind_a_cancellation_request_dispatches_nothing(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_paid_order(f, order);
	struct ct_order_cancellation_requested req;
	cancellation_requested(&req, order);

	struct dispatcher d = { .f = f, .st = SHOP_E_INTERNAL };
	struct db *observer = NULL;
	assert_int_equal(db_open(f->url, &d.db), SHOP_OK);
	assert_int_equal(db_open(f->url, &observer), SHOP_OK);
	struct svc_tx tx = {
		.svc = f->svc, .db = f->db, .correlation_id = "first", .now_ms = f->t0 + 1
	};
	assert_int_equal(db_begin(f->db), SHOP_OK);
	assert_int_equal(shipping_handle_order_cancellation_requested(&tx, &req), SHOP_OK);
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, dispatcher_main, &d), 0);
	bool waited = pg_race_lock_wait_seen(observer);
	assert_int_equal(db_commit(f->db), SHOP_OK);
	pthread_join(thread, NULL);
	db_close(observer);
	db_close(d.db);

	assert_true(waited); /* the dispatcher did block on the row */
	assert_int_equal(d.st, SHOP_OK);
	assert_int_equal(d.report.dispatched, 0);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_CANCELLED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 1);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), 0);
}

#define PIVOT_RACE_ROUNDS 20

struct pivot_racer {
	pthread_barrier_t *start;
	struct fixture *f;
	struct db *db;
	const struct ct_order_cancellation_requested *req; /* NULL: the dispatcher */
	struct shipping_dispatch_report report;
	shop_status st;
};

static void *pivot_racer_main(void *arg)
{
	struct pivot_racer *r = arg;
	pthread_barrier_wait(r->start);
	if (r->req) {
		struct svc_tx tx = { .svc = r->f->svc,
				     .db = r->db,
				     .correlation_id = "racer",
				     .now_ms = r->f->t0 + TEST_DELAY_MS };
		r->st = harness_tx_try(&tx, shipping_handle_order_cancellation_requested, r->req);
	} else {
		r->st = shipping_dispatch_due(r->f->svc, r->db, r->f->t0 + TEST_DELAY_MS,
					      &r->report);
	}
	return NULL;
}

/* A due shipment, its cancellation request and the dispatcher released at
 * once, many times: each round ends either dispatched (ShipmentDispatched,
 * no answer: orders ships the order) or cancelled (ShipmentCancelled, no
 * dispatch: orders cancels it), never both, never neither. */
static void cancellation_requests_racing_the_dispatcher_have_exactly_one_winner(void **state)
{
	struct fixture *f = *state;
	struct pivot_racer req = { .f = f, .st = SHOP_E_INTERNAL };
	struct pivot_racer disp = { .f = f, .st = SHOP_E_INTERNAL };
	int cancelled = 0, dispatched = 0;
	assert_int_equal(db_open(f->url, &req.db), SHOP_OK);
	assert_int_equal(db_open(f->url, &disp.db), SHOP_OK);
	for (int round = 0; round < PIVOT_RACE_ROUNDS; round++) {
		char order[IDS_UUID_SIZE];
		struct ct_order_cancellation_requested m;
		pthread_barrier_t start;
		new_paid_order(f, order);
		cancellation_requested(&m, order);
		req.req = &m;
		req.start = disp.start = &start;
		pg_race_together(&start, pivot_racer_main, &req, &disp);
		assert_int_equal(req.st, SHOP_OK);
		assert_int_equal(disp.st, SHOP_OK);

		int64_t n_cancelled = harness_outbox_count_for(
			f->db, order, ct_messages[CT_MSG_SHIPMENT_CANCELLED].subject);
		int64_t n_dispatched = harness_outbox_count_for(
			f->db, order, ct_messages[CT_MSG_SHIPMENT_DISPATCHED].subject);
		assert_int_equal(n_cancelled + n_dispatched, 1);
		assert_int_equal(shipment_state(f, order), n_cancelled ? SHIPPING_STATE_CANCELLED
								       : SHIPPING_STATE_DISPATCHED);
		if (n_cancelled)
			cancelled++;
		else
			dispatched++;
	}
	print_message("# %d rounds: %d cancelled first, %d dispatched first\n", PIVOT_RACE_ROUNDS,
		      cancelled, dispatched);
	db_close(req.db);
	db_close(disp.db);
}
