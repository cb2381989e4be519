/*
 * test_orders_postgres.c - the orders service on a real PostgreSQL server
 * (started by tests/component/run.sh): its migrations and SQL on the backend
 * compose uses, and the races between replicas that SQLite cannot show
 * because it has one writer per file.
 *
 * The group creates its own database (dropped at the end), so reruns never
 * meet old state; each case uses fresh order ids and counts only the events
 * of its own orders. Replicas are separate connections, as separate
 * processes would have.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../unit/orders_harness.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "db/db.h"
#include "pg_race.h"
#include "pg_scratch.h"
#include "svc/svc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RACE_ROUNDS 25

struct group {
	struct pg_scratch pg; /* this run's database */
	struct db *db;
	struct orders_ctx ctx;
	struct svc_spec spec;
	struct svc *svc;
};

static struct group g;

static int group_setup(void **state)
{
	log_init("orders-test", LOG_LVL_ERROR);
	xalloc_init_cjson();
	if (pg_scratch_create(&g.pg, "orders_t") != 0)
		return -1;
	orders_harness_spec_fill(&g.spec, &g.ctx, g.pg.url);
	return harness_open(&g.spec, g.pg.url, &g.db, &g.svc) == SHOP_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	svc_destroy(g.svc);
	db_close(g.db);
	pg_scratch_drop(&g.pg);
	return 0;
}

/* ---- driving handlers on a given connection ---------------------------- */

static shop_status run_on(struct db *db, svc_handler_fn fn, const void *data)
{
	return harness_run(g.svc, db, fn, data);
}

/* Places an order at NOW (in the past for the sweeper's cases). */
static void place_at(const char *order_id, int64_t now)
{
	struct ct_place_order_v2 *c = xcalloc(1, sizeof(*c));
	orders_harness_place_fill(c, order_id);
	assert_int_equal(harness_handle(g.svc, g.db, orders_handle_place_order, c, now,
					"corr-test"),
			 SHOP_OK);
	free(c);
}

static void new_order(char order_id[IDS_UUID_SIZE])
{
	ids_uuid7(order_id);
	place_at(order_id, clock_now_ms());
}

static struct orders_row order(const char *order_id)
{
	struct orders_row row;
	assert_int_equal(orders_store_get(g.db, order_id, &row), SHOP_OK);
	return row;
}

/* Events of one order, by message subject ("" for any). */
static int64_t events_of(const char *order_id, const char *subject)
{
	return harness_outbox_count_for(g.db, order_id, subject);
}

/* ---- cases: the SQL on PostgreSQL -------------------------------------- */

static void migrations_apply_on_postgresql_and_again_change_nothing(void **state)
{
	assert_int_equal(svc_migrate(&g.spec, g.db), SHOP_OK);
	struct db_result *r = NULL;
	assert_int_equal(db_query(g.db,
				  "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'orders'"
				  " AND indexname = 'orders_status_deadline'",
				  DB_NOARGS, &r),
			 SHOP_OK);
	assert_int_equal(db_result_int(r, 0, 0), 1);
	db_result_free(r);
	assert_int_equal(db_query(g.db,
				  "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'orders'"
				  " AND indexname = 'orders_status_updated'",
				  DB_NOARGS, &r),
			 SHOP_OK);
	assert_int_equal(db_result_int(r, 0, 0), 1);
	db_result_free(r);
}

static void an_order_goes_from_placed_to_shipped_on_postgresql(void **state)
{
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	new_order(id);
	place_at(id, clock_now_ms()); /* the command again: nothing */
	struct ct_stock_reserved reserved = stock_reserved(id);
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	assert_int_equal(run_on(g.db, orders_handle_payment_authorized, &paid), SHOP_E_NOT_READY);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);
	assert_int_equal(run_on(g.db, orders_handle_payment_authorized, &paid), SHOP_OK);
	assert_int_equal(run_on(g.db, orders_handle_shipment_dispatched, &shipped), SHOP_OK);

	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_SHIPPED);
	assert_int_equal(row.total_cents, ORDER_TOTAL_CENTS);
	assert_string_equal(row.currency, "EUR");
	assert_string_equal(row.payment_id, paid.payment_id);
	assert_string_equal(row.shipment_id, shipped.shipment_id);
	assert_int_equal(row.version, 4);
	assert_int_equal(events_of(id, SUBJ_PLACED), 1);
	assert_int_equal(events_of(id, SUBJ_RESERVED), 1);
	assert_int_equal(events_of(id, SUBJ_PAID), 1);
	assert_int_equal(events_of(id, SUBJ_SHIPPED), 1);
	assert_int_equal(events_of(id, ""), 4);
}

/* Issue 7 on PostgreSQL, through the runtime: a PlaceOrder v1 stored before
 * the upgrade and a v2 of another order in one batch; both are placed, each
 * with one OrderPlaced v2, and no row orders wrote holds the v1's token. */
static void place_order_v1_and_v2_in_one_batch_emit_order_placed_v2_only_on_postgresql(void **state)
{
	char old_id[IDS_UUID_SIZE], new_id[IDS_UUID_SIZE];
	ids_uuid7(old_id);
	ids_uuid7(new_id);
	struct ct_place_order *v1 = xcalloc(1, sizeof(*v1));
	struct ct_place_order_v2 *v2 = xcalloc(1, sizeof(*v2));
	orders_harness_place_v1_fill(v1, old_id);
	orders_harness_place_fill(v2, new_id);
	char *batch[2] = {
		harness_message_envelope(CT_MSG_PLACE_ORDER,
					 (struct harness_envelope){ .subject = old_id }, v1),
		harness_message_envelope(CT_MSG_PLACE_ORDER_V2,
					 (struct harness_envelope){ .subject = new_id }, v2),
	};
	shop_status st[2];
	assert_int_equal(svc_handle_envelopes(g.svc, g.db, "orders", (const char *const *)batch, 2,
					      st),
			 SHOP_OK);
	assert_int_equal(st[0], SHOP_OK);
	assert_int_equal(st[1], SHOP_OK);
	assert_int_equal(order(old_id).status, ORDERS_STATUS_PENDING);
	assert_int_equal(order(new_id).status, ORDERS_STATUS_PENDING);
	assert_int_equal(events_of(old_id, SUBJ_PLACED), 1);
	assert_int_equal(events_of(new_id, SUBJ_PLACED), 1);
	assert_int_equal(events_of(old_id, "orders.event.order_placed.v1"), 0);
	assert_int_equal(
		harness_query_int(g.db,
				  "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%' || $1 || '%'",
				  ORDERS_HARNESS_V1_TOKEN),
		0);
	assert_int_equal(
		harness_query_int(g.db,
				  "SELECT COUNT(*) FROM orders WHERE items LIKE '%' || $1 || '%'",
				  ORDERS_HARNESS_V1_TOKEN),
		0);
	free(batch[0]);
	free(batch[1]);
	free(v2);
	free(v1);
}

/* Through the runtime (contract checks, inbox, the batch transaction) on
 * PostgreSQL: a batch with a PaymentAuthorized for another amount, one
 * from another source than payments, and the real one. The two forgeries
 * are refused with their reasons and leave no trace; the real one pays. */
static void forged_payments_are_refused_with_their_reasons_and_the_real_one_pays_on_postgresql(
	void **state)
{
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], forged_pay[IDS_UUID_SIZE];
	new_order(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);

	struct ct_payment_authorized cheap = payment_authorized(id, forged_pay);
	cheap.amount_cents = 1;
	struct ct_payment_authorized real = payment_authorized(id, pay);
	struct harness_envelope attrs = { .subject = id, .correlation_id = id };
	char *wrong_amount = harness_message_envelope(CT_MSG_PAYMENT_AUTHORIZED, attrs, &cheap);
	attrs.source = "/shop/inventory";
	char *wrong_source = harness_message_envelope(CT_MSG_PAYMENT_AUTHORIZED, attrs, &real);
	attrs.source = NULL;
	char *right = harness_message_envelope(CT_MSG_PAYMENT_AUTHORIZED, attrs, &real);
	const char *batch[] = { wrong_amount, wrong_source, right };
	shop_status st[3];
	assert_int_equal(svc_handle_envelopes(g.svc, g.db, "orders", batch, 3, st), SHOP_OK);
	assert_int_equal(st[0], SHOP_E_INVALID);
	assert_int_equal(st[1], SHOP_E_INVALID);
	assert_int_equal(st[2], SHOP_OK);

	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_string_equal(row.payment_id, pay);
	assert_int_equal(events_of(id, SUBJ_PAID), 1);

	/* One at a time, for the reasons the dead letters carry. */
	char reason[HARNESS_REASON_MAX];
	assert_int_equal(harness_deliver(g.svc, g.db, "orders", wrong_amount, reason,
					 sizeof(reason)),
			 SHOP_E_INVALID);
	assert_non_null(strstr(reason, "payment_authorized for 1 EUR does not match the order's "
				       "total of 2599 EUR"));
	assert_int_equal(harness_deliver(g.svc, g.db, "orders", wrong_source, reason,
					 sizeof(reason)),
			 SHOP_E_INVALID);
	assert_string_equal(reason, "source /shop/inventory is not the producer of "
				    "shop.payments.payment_authorized.v1 (/shop/payments)");
	assert_int_equal(harness_deliver(g.svc, g.db, "orders", right, reason, sizeof(reason)),
			 SHOP_E_DUPLICATE);
	assert_int_equal(order(id).version, row.version);
	assert_int_equal(events_of(id, ""), 3);
	free(wrong_amount);
	free(wrong_source);
	free(right);
}

/* A wrong amount never pays a reserved order on PostgreSQL, and the order
 * still takes the real payment afterwards. */
static void a_payment_for_another_amount_leaves_the_order_reserved_on_postgresql(void **state)
{
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	new_order(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	paid.amount_cents = ORDER_TOTAL_CENTS + 1;
	assert_int_equal(run_on(g.db, orders_handle_payment_authorized, &paid), SHOP_E_INVALID);
	assert_int_equal(order(id).status, ORDERS_STATUS_RESERVED);
	assert_string_equal(order(id).payment_id, "");
	assert_int_equal(events_of(id, SUBJ_PAID), 0);
	paid.amount_cents = ORDER_TOTAL_CENTS;
	assert_int_equal(run_on(g.db, orders_handle_payment_authorized, &paid), SHOP_OK);
	assert_int_equal(order(id).status, ORDERS_STATUS_PAID);
}

static void the_sweeper_cancels_expired_orders_on_postgresql(void **state)
{
	char expired[IDS_UUID_SIZE], fresh[IDS_UUID_SIZE];
	ids_uuid7(expired);
	place_at(expired, clock_now_ms() - 2 * DEADLINE_MS);
	new_order(fresh);
	assert_int_equal(orders_sweep(g.svc, g.db), SHOP_OK);
	struct orders_row row = order(expired);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_TIMEOUT);
	assert_int_equal(order(fresh).status, ORDERS_STATUS_PENDING);
	assert_int_equal(events_of(expired, SUBJ_CANCELLED), 1);
	assert_int_equal(events_of(fresh, SUBJ_CANCELLED), 0);
}

/* A new order, reserved and paid (its payment id in PAY). */
static void new_paid_order(char id[IDS_UUID_SIZE], char pay[IDS_UUID_SIZE])
{
	new_order(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);
	assert_int_equal(run_on(g.db, orders_handle_payment_authorized, &paid), SHOP_OK);
}

static void a_paid_orders_cancellation_waits_for_shipping_on_postgresql(void **state)
{
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], other[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	new_paid_order(id, pay);
	struct ct_cancel_order cancel = cancel_order(id);
	assert_int_equal(run_on(g.db, orders_handle_cancel_order, &cancel), SHOP_OK);
	assert_int_equal(run_on(g.db, orders_handle_cancel_order, &cancel), SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_true(row.cancel_requested);
	assert_int_equal(events_of(id, SUBJ_CANCELLATION_REQUESTED), 1);
	assert_int_equal(events_of(id, SUBJ_CANCELLED), 0);

	struct ct_shipment_cancelled stopped = shipment_cancelled(id);
	assert_int_equal(run_on(g.db, orders_handle_shipment_cancelled, &stopped), SHOP_OK);
	row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_CUSTOMER_CANCELLED);
	assert_int_equal(events_of(id, SUBJ_CANCELLED), 1);

	/* The other way the race ends: the shipment had left. */
	new_paid_order(other, pay);
	cancel = cancel_order(other);
	assert_int_equal(run_on(g.db, orders_handle_cancel_order, &cancel), SHOP_OK);
	struct ct_shipment_dispatched shipped = shipment_dispatched(other, ship);
	assert_int_equal(run_on(g.db, orders_handle_shipment_dispatched, &shipped), SHOP_OK);
	assert_int_equal(order(other).status, ORDERS_STATUS_SHIPPED);
	assert_int_equal(events_of(other, SUBJ_SHIPPED), 1);
	assert_int_equal(events_of(other, SUBJ_CANCELLED), 0);
}

/* A paid order whose every move was at AT (long ago for the paid deadline). */
static void paid_at(char id[IDS_UUID_SIZE], int64_t at)
{
	char pay[IDS_UUID_SIZE];
	ids_uuid7(id);
	place_at(id, at);
	struct ct_stock_reserved reserved = stock_reserved(id);
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	assert_int_equal(harness_handle(g.svc, g.db, orders_handle_stock_reserved, &reserved, at,
					NULL),
			 SHOP_OK);
	assert_int_equal(harness_handle(g.svc, g.db, orders_handle_payment_authorized, &paid, at,
					NULL),
			 SHOP_OK);
}

/* As if the order had not moved for MS more. */
static void age(const char *id, int64_t ms)
{
	int64_t changed = 0;
	assert_int_equal(db_exec(g.db,
				 "UPDATE orders SET updated_at_ms = updated_at_ms - $1 "
				 "WHERE order_id = $2",
				 DB_ARGS(DB_I64(ms), id), &changed),
			 SHOP_OK);
	assert_int_equal(changed, 1);
}

static void the_paid_deadline_asks_shipping_again_and_again_on_postgresql(void **state)
{
	char id[IDS_UUID_SIZE], fresh[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	paid_at(id, clock_now_ms() - 2 * PAID_DEADLINE_MS);
	new_paid_order(fresh, pay);

	assert_int_equal(orders_sweep(g.svc, g.db), SHOP_OK);
	assert_int_equal(orders_sweep(g.svc, g.db), SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_int_equal(row.cancel_reason, ORDERS_REASON_TIMEOUT);
	assert_int_equal(row.cancel_requests, 1);
	assert_int_equal(events_of(id, SUBJ_CANCELLATION_REQUESTED), 1);
	assert_int_equal(events_of(fresh, SUBJ_CANCELLATION_REQUESTED), 0);

	for (int i = 2; i <= ORDERS_CANCEL_REQUESTS_MAX + 1; i++) {
		age(id, PAID_DEADLINE_MS + 1);
		assert_int_equal(orders_sweep(g.svc, g.db), SHOP_OK);
	}
	assert_int_equal(order(id).cancel_requests, ORDERS_CANCEL_REQUESTS_MAX);
	assert_int_equal(events_of(id, SUBJ_CANCELLATION_REQUESTED), ORDERS_CANCEL_REQUESTS_MAX);

	struct ct_shipment_cancelled stopped = shipment_cancelled(id);
	assert_int_equal(run_on(g.db, orders_handle_shipment_cancelled, &stopped), SHOP_OK);
	row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_TIMEOUT);
	assert_int_equal(events_of(id, SUBJ_CANCELLED), 1);
}

/* ---- cases: replicas racing -------------------------------------------- */

/* A replica handling one message on its own connection, in a thread. */
struct replica {
	pthread_barrier_t *start; /* NULL: go at once */
	struct db *db;
	svc_handler_fn fn; /* NULL: run the deadline sweeper instead */
	const void *data;
	shop_status st;
};

static void *replica_run(void *arg)
{
	struct replica *r = arg;
	if (r->start)
		pthread_barrier_wait(r->start);
	/* A retryable outcome is redelivered by the runtime: do the same. */
	for (int i = 0; i < 20; i++) {
		r->st = r->fn ? run_on(r->db, r->fn, r->data) : orders_sweep(g.svc, r->db);
		if (r->st != SHOP_E_UNAVAILABLE)
			break;
	}
	return NULL;
}

/* Replica A has moved the order but not committed; replica B decides on the
 * old status and blocks in its guarded UPDATE. When A commits, B's update
 * finds the guard false and changes nothing, so B must read again and decide
 * on what A did. B runs FN_B (or the sweeper when FN_B is NULL); returns
 * B's status. */
static shop_status interleave(svc_handler_fn fn_a, const void *data_a, svc_handler_fn fn_b,
			      const void *data_b)
{
	struct db *da = NULL, *observer = NULL;
	struct replica b = { .fn = fn_b, .data = data_b };
	pthread_t tb;
	assert_int_equal(db_open(g.pg.url, &da), SHOP_OK);
	assert_int_equal(db_open(g.pg.url, &b.db), SHOP_OK);
	assert_int_equal(db_open(g.pg.url, &observer), SHOP_OK);

	struct svc_tx tx = {
		.svc = g.svc, .db = da, .now_ms = clock_now_ms(), .correlation_id = "corr-test"
	};
	assert_int_equal(db_begin(da), SHOP_OK);
	assert_int_equal(fn_a(&tx, data_a), SHOP_OK);

	assert_int_equal(pthread_create(&tb, NULL, replica_run, &b), 0);
	bool waited = pg_race_lock_wait_seen(observer);
	assert_int_equal(db_commit(da), SHOP_OK);
	pthread_join(tb, NULL);
	db_close(observer);
	db_close(b.db);
	db_close(da);
	assert_true(waited);
	return b.st;
}

static void a_cancel_blocked_behind_a_reservation_decides_again_and_cancels_it(void **state)
{
	char id[IDS_UUID_SIZE];
	new_order(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	struct ct_cancel_order cancel = cancel_order(id);
	assert_int_equal(interleave(orders_handle_stock_reserved, &reserved,
				    orders_handle_cancel_order, &cancel),
			 SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_CUSTOMER_CANCELLED);
	/* A's facts survived B's transition. */
	assert_int_equal(row.total_cents, ORDER_TOTAL_CENTS);
	assert_int_equal(row.version, 3);
	assert_int_equal(events_of(id, SUBJ_RESERVED), 1);
	assert_int_equal(events_of(id, SUBJ_CANCELLED), 1);
}

static void a_second_cancel_of_a_paid_order_blocked_behind_the_first_asks_nothing_more(void **state)
{
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	new_paid_order(id, pay);
	struct ct_cancel_order cancel = cancel_order(id);
	/* B read PAID without the mark and blocks on the row; A's commit
	 * leaves the status PAID, so only the mark in the guard stops B. */
	assert_int_equal(interleave(orders_handle_cancel_order, &cancel, orders_handle_cancel_order,
				    &cancel),
			 SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_true(row.cancel_requested);
	assert_int_equal(row.version, 4);
	assert_int_equal(events_of(id, SUBJ_CANCELLATION_REQUESTED), 1);
}

static void a_duplicate_reservation_blocked_behind_the_first_is_ignored(void **state)
{
	char id[IDS_UUID_SIZE];
	new_order(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(interleave(orders_handle_stock_reserved, &reserved,
				    orders_handle_stock_reserved, &reserved),
			 SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_RESERVED);
	assert_int_equal(row.version, 2);
	assert_int_equal(events_of(id, SUBJ_RESERVED), 1);
}

static void a_timeout_blocked_behind_a_payment_leaves_the_order_paid(void **state)
{
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	ids_uuid7(id);
	place_at(id, clock_now_ms() - 2 * DEADLINE_MS);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);

	/* The sweeper reads RESERVED past its deadline while the payment holds
	 * the row; once the payment commits, the timeout no longer applies. */
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	assert_int_equal(interleave(orders_handle_payment_authorized, &paid, NULL, NULL), SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_int_equal(row.version, 3);
	assert_int_equal(events_of(id, SUBJ_PAID), 1);
	assert_int_equal(events_of(id, SUBJ_CANCELLED), 0);
}

/* Another replica's sweeper, as a handler: the paid deadline of an order it
 * found asked once. */
static shop_status paid_deadline_after_one_request(struct svc_tx *tx, const void *data)
{
	struct orders_input in = { .kind = ORDERS_INPUT_PAID_DEADLINE_PASSED,
				   .cancel_requests = 1 };
	struct orders_change facts = { 0 };
	return orders_advance(tx, data, &in, &facts);
}

static void a_repeat_blocked_behind_another_sweepers_repeat_asks_nothing_more(void **state)
{
	char id[IDS_UUID_SIZE];
	paid_at(id, clock_now_ms() - 2 * PAID_DEADLINE_MS);
	assert_int_equal(orders_sweep(g.svc, g.db), SHOP_OK);
	age(id, PAID_DEADLINE_MS + 1);

	/* Both found it asked once and overdue; B blocks on A's row lock. A's
	 * commit leaves status and mark as they were, so only the requests
	 * count in the guard stops B from asking a third time. */
	assert_int_equal(interleave(paid_deadline_after_one_request, id, NULL, NULL), SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_int_equal(row.cancel_requests, 2);
	assert_int_equal(events_of(id, SUBJ_CANCELLATION_REQUESTED), 2);
}

static void cancels_and_reservations_racing_freely_end_consistent(void **state)
{
	struct replica a = { 0 }, b = { 0 };
	int cancelled_first = 0, reserved_first = 0;
	assert_int_equal(db_open(g.pg.url, &a.db), SHOP_OK);
	assert_int_equal(db_open(g.pg.url, &b.db), SHOP_OK);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		char id[IDS_UUID_SIZE];
		pthread_barrier_t start;
		new_order(id);
		struct ct_stock_reserved reserved = stock_reserved(id);
		struct ct_cancel_order cancel = cancel_order(id);
		a.fn = orders_handle_stock_reserved;
		a.data = &reserved;
		b.fn = orders_handle_cancel_order;
		b.data = &cancel;
		a.start = b.start = &start;
		pg_race_together(&start, replica_run, &a, &b);

		assert_int_equal(a.st, SHOP_OK);
		assert_int_equal(b.st, SHOP_OK);
		struct orders_row row = order(id);
		assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
		assert_int_equal(row.reason, ORDERS_REASON_CUSTOMER_CANCELLED);
		assert_int_equal(events_of(id, SUBJ_CANCELLED), 1);
		/* Either the reservation came first and was announced, or the
		 * cancellation did and the reservation was ignored. */
		int64_t announced = events_of(id, SUBJ_RESERVED);
		assert_int_equal(announced, row.version == 3 ? 1 : 0);
		if (announced)
			reserved_first++;
		else
			cancelled_first++;
	}
	print_message("# %d rounds: %d reserved then cancelled, %d cancelled first\n", RACE_ROUNDS,
		      reserved_first, cancelled_first);
	db_close(a.db);
	db_close(b.db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(migrations_apply_on_postgresql_and_again_change_nothing),
		cmocka_unit_test(an_order_goes_from_placed_to_shipped_on_postgresql),
		cmocka_unit_test(
			place_order_v1_and_v2_in_one_batch_emit_order_placed_v2_only_on_postgresql),
		cmocka_unit_test(
			forged_payments_are_refused_with_their_reasons_and_the_real_one_pays_on_postgresql),
		cmocka_unit_test(
			a_payment_for_another_amount_leaves_the_order_reserved_on_postgresql),
		cmocka_unit_test(the_sweeper_cancels_expired_orders_on_postgresql),
		cmocka_unit_test(a_paid_orders_cancellation_waits_for_shipping_on_postgresql),
		cmocka_unit_test(
			a_cancel_blocked_behind_a_reservation_decides_again_and_cancels_it),
		cmocka_unit_test(
			a_second_cancel_of_a_paid_order_blocked_behind_the_first_asks_nothing_more),
		cmocka_unit_test(a_duplicate_reservation_blocked_behind_the_first_is_ignored),
		cmocka_unit_test(a_timeout_blocked_behind_a_payment_leaves_the_order_paid),
		cmocka_unit_test(the_paid_deadline_asks_shipping_again_and_again_on_postgresql),
		cmocka_unit_test(a_repeat_blocked_behind_another_sweepers_repeat_asks_nothing_more),
		cmocka_unit_test(cancels_and_reservations_racing_freely_end_consistent),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
