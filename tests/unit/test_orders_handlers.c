/*
 * test_orders_handlers.c - the orders service end to end inside one process:
 * handlers, sweeper and routes against a real in-process SQLite database,
 * with a detached runtime (no bus), checking the order rows and the events
 * left in the outbox.
 *
 * What these prove beyond the domain table: each transition is stored and
 * announced exactly once; an early or unknown fact is NOT_READY and changes
 * nothing (the runtime rolls back and redelivers); the sweeper cancels only
 * what the deadline rule says and in bounded batches, and asks shipping
 * about paid orders left unanswered, a bounded number of times; the route table hands
 * every consumed message to its handler and the inbox turns a redelivery
 * into a no-op.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "orders_harness.h"

struct fixture {
	struct orders_ctx ctx;
	struct svc_spec spec;
	struct svc *svc;
	struct db *db;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	orders_harness_spec_fill(&f->spec, &f->ctx, "sqlite::memory:");
	assert_int_equal(harness_open(&f->spec, "sqlite::memory:", &f->db, &f->svc), SHOP_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->db);
	svc_destroy(f->svc);
	free(f);
	return 0;
}

/* ---- helpers ----------------------------------------------------------- */

/* Calls a handler the way the runtime does: in one transaction, committed
 * only when it succeeds. */
static shop_status run_at(struct fixture *f, svc_handler_fn handle, const void *data, int64_t now,
			  const char *correlation_id)
{
	return harness_handle(f->svc, f->db, handle, data, now, correlation_id);
}

static shop_status run(struct fixture *f, svc_handler_fn handle, const void *data)
{
	return run_at(f, handle, data, clock_now_ms(), NULL);
}

/* A PlaceOrder for a new order; returns its id in order_id. */
static struct ct_place_order_v2 *place_cmd(char order_id[IDS_UUID_SIZE])
{
	struct ct_place_order_v2 *c = xcalloc(1, sizeof(*c));
	ids_uuid7(order_id);
	orders_harness_place_fill(c, order_id);
	return c;
}

/* Places a new order at NOW; returns its id in order_id. */
static void place_at(struct fixture *f, char order_id[IDS_UUID_SIZE], int64_t now,
		     const char *correlation_id)
{
	struct ct_place_order_v2 *c = place_cmd(order_id);
	assert_int_equal(run_at(f, orders_handle_place_order, c, now, correlation_id), SHOP_OK);
	free(c);
}

static void place(struct fixture *f, char order_id[IDS_UUID_SIZE])
{
	place_at(f, order_id, clock_now_ms(), NULL);
}

/* The order's stock reserved: StockReserved handled without error. */
static void reserve_stock(struct fixture *f, const char *order_id)
{
	struct ct_stock_reserved reserved = stock_reserved(order_id);
	assert_int_equal(run(f, orders_handle_stock_reserved, &reserved), SHOP_OK);
}

/* The order paid: PaymentAuthorized (a fresh payment id, copied to PAY)
 * handled without error. */
static void pay_order(struct fixture *f, const char *order_id, char pay[IDS_UUID_SIZE])
{
	struct ct_payment_authorized paid = payment_authorized(order_id, pay);
	assert_int_equal(run(f, orders_handle_payment_authorized, &paid), SHOP_OK);
}

/* The customer's CancelOrder handled without error. */
static void cancel_by_customer(struct fixture *f, const char *order_id)
{
	struct ct_cancel_order cancel = cancel_order(order_id);
	assert_int_equal(run(f, orders_handle_cancel_order, &cancel), SHOP_OK);
}

static struct orders_row order(struct fixture *f, const char *order_id)
{
	struct orders_row row;
	assert_int_equal(orders_store_get(f->db, order_id, &row), SHOP_OK);
	return row;
}

static int64_t count_rows(struct fixture *f, const char *sql, const char *arg)
{
	return harness_query_int(f->db, sql, arg);
}

static int64_t outbox_count(struct fixture *f, const char *subject)
{
	return harness_outbox_count(f->db, subject);
}

static const char *data_str(const cJSON *envelope, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(envelope,
											   "data"),
							  name);
	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static double data_num(const cJSON *envelope, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(envelope,
											   "data"),
							  name);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static const char *attr(const cJSON *envelope, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(envelope, name);
	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

/* An envelope as another service would publish it; free() it. */
static char *envelope(enum ct_message_id id, const char *subject, const void *data)
{
	struct harness_envelope attrs = { .subject = subject, .correlation_id = "corr-routes" };
	return harness_message_envelope(id, attrs, data);
}

static shop_status deliver_text(struct fixture *f, const char *text)
{
	return harness_deliver(f->svc, f->db, "orders", text, NULL, 0);
}

static shop_status deliver(struct fixture *f, enum ct_message_id id, const char *subject,
			   const void *data)
{
	char *text = envelope(id, subject, data);
	shop_status st = deliver_text(f, text);
	free(text);
	return st;
}

/* ---- placing ----------------------------------------------------------- */

static void place_order_creates_a_pending_order_and_emits_order_placed_with_its_fields(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	int64_t now = clock_now_ms();
	place_at(f, id, now, "corr-place");

	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_PENDING);
	assert_int_equal(row.created_at_ms, now);
	assert_int_equal(row.deadline_at_ms, now + DEADLINE_MS);
	assert_string_equal(row.customer_id, "cust-42");
	assert_string_equal(row.email, "ada@example.com");
	assert_int_equal(row.version, 1);
	assert_int_equal(
		count_rows(
			f,
			"SELECT count(*) FROM orders WHERE items = "
			"'[{\"sku\":\"SKU-1\",\"quantity\":2},{\"sku\":\"SKU-2\",\"quantity\":1}]' "
			"AND order_id = $1",
			id),
		1);

	assert_int_equal(harness_outbox_total(f->db), 1);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_PLACED);
	assert_string_equal(attr(ev, "subject"), id);
	assert_string_equal(attr(ev, "correlationid"), "corr-place");
	struct ct_order_placed_v2 placed;
	struct ct_errors errs = { 0 };
	assert_int_equal(ct_order_placed_v2_parse(cJSON_GetObjectItemCaseSensitive(ev, "data"),
						  &placed, &errs),
			 SHOP_OK);
	struct ct_place_order_v2 *want = place_cmd((char[IDS_UUID_SIZE]){ 0 });
	assert_string_equal(placed.order_id, id);
	assert_string_equal(placed.customer_id, want->customer_id);
	assert_string_equal(placed.email, want->email);
	assert_int_equal(placed.items_len, 2);
	assert_string_equal(placed.items[1].sku, "SKU-2");
	assert_int_equal(placed.items[1].quantity, 1);
	assert_string_equal(placed.shipping_address.postal_code, "N1 9GU");
	assert_string_equal(placed.shipping_address.country, "GB");
	free(want);
	cJSON_Delete(ev);
}

static void place_order_again_changes_nothing_and_emits_nothing(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	struct ct_place_order_v2 *c = place_cmd(id);
	int64_t now = clock_now_ms();
	assert_int_equal(run_at(f, orders_handle_place_order, c, now, NULL), SHOP_OK);
	snprintf(c->email, sizeof(c->email), "someone.else@example.com");
	assert_int_equal(run_at(f, orders_handle_place_order, c, now + 1000, NULL), SHOP_OK);

	struct orders_row row = order(f, id);
	assert_string_equal(row.email, "ada@example.com");
	assert_int_equal(row.deadline_at_ms, now + DEADLINE_MS);
	assert_int_equal(outbox_count(f, SUBJ_PLACED), 1);
	free(c);
}

static void the_deadline_defaults_to_sixty_seconds_without_a_context(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	int64_t now = clock_now_ms();
	f->spec.ctx = NULL;
	place_at(f, id, now, NULL);
	assert_int_equal(order(f, id).deadline_at_ms, now + ORDERS_DEADLINE_DEFAULT_MS);
}

/* ---- the saga ---------------------------------------------------------- */

static void the_happy_path_reaches_shipped_with_one_event_per_step(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	place(f, id);

	reserve_stock(f, id);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_RESERVED);
	assert_int_equal(row.total_cents, 2599);
	assert_string_equal(row.currency, "EUR");
	cJSON *ev = harness_outbox_last(f->db, SUBJ_RESERVED);
	assert_string_equal(data_str(ev, "order_id"), id);
	assert_int_equal((int64_t)data_num(ev, "total_cents"), 2599);
	assert_string_equal(data_str(ev, "currency"), "EUR");
	cJSON_Delete(ev);

	struct ct_payment_authorized paid = payment_authorized(id, pay);
	assert_int_equal(run(f, orders_handle_payment_authorized, &paid), SHOP_OK);
	row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_string_equal(row.payment_id, pay);
	ev = harness_outbox_last(f->db, SUBJ_PAID);
	assert_string_equal(data_str(ev, "payment_id"), pay);
	cJSON_Delete(ev);

	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	assert_int_equal(run(f, orders_handle_shipment_dispatched, &shipped), SHOP_OK);
	row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_SHIPPED);
	assert_string_equal(row.shipment_id, ship);
	assert_int_equal(row.total_cents, 2599);
	assert_string_equal(row.payment_id, pay);
	assert_int_equal(row.version, 4);
	ev = harness_outbox_last(f->db, SUBJ_SHIPPED);
	assert_string_equal(data_str(ev, "shipment_id"), ship);
	assert_string_equal(attr(ev, "subject"), id);
	cJSON_Delete(ev);

	assert_int_equal(harness_outbox_total(f->db), 4);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);
}

static void a_repeated_event_is_acknowledged_and_emits_nothing_more(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	place(f, id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(run(f, orders_handle_stock_reserved, &reserved), SHOP_OK);
	assert_int_equal(run(f, orders_handle_stock_reserved, &reserved), SHOP_OK);
	assert_int_equal(order(f, id).version, 2);
	assert_int_equal(outbox_count(f, SUBJ_RESERVED), 1);
}

static void payment_authorized_before_the_reservation_is_not_ready_and_changes_nothing(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	place(f, id);
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	assert_int_equal(run(f, orders_handle_payment_authorized, &paid), SHOP_E_NOT_READY);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_PENDING);
	assert_string_equal(row.payment_id, "");
	assert_int_equal(harness_outbox_total(f->db), 1);

	/* Redelivered after the reservation, it applies. */
	reserve_stock(f, id);
	assert_int_equal(run(f, orders_handle_payment_authorized, &paid), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_PAID);
}

static void payment_declined_before_the_reservation_is_not_ready(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	place(f, id);
	struct ct_payment_declined declined = payment_declined(id);
	assert_int_equal(run(f, orders_handle_payment_declined, &declined), SHOP_E_NOT_READY);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_PENDING);
}

static void shipment_dispatched_before_payment_is_not_ready(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	place(f, id);
	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	assert_int_equal(run(f, orders_handle_shipment_dispatched, &shipped), SHOP_E_NOT_READY);
	reserve_stock(f, id);
	assert_int_equal(run(f, orders_handle_shipment_dispatched, &shipped), SHOP_E_NOT_READY);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_RESERVED);
	assert_int_equal(outbox_count(f, SUBJ_SHIPPED), 0);
}

static void any_fact_about_an_unknown_order_is_not_ready(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	ids_uuid7(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	struct ct_stock_rejected rejected = stock_rejected(id, "out_of_stock");
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	struct ct_payment_declined declined = payment_declined(id);
	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	struct ct_cancel_order cancel = cancel_order(id);

	assert_int_equal(run(f, orders_handle_stock_reserved, &reserved), SHOP_E_NOT_READY);
	assert_int_equal(run(f, orders_handle_stock_rejected, &rejected), SHOP_E_NOT_READY);
	assert_int_equal(run(f, orders_handle_payment_authorized, &paid), SHOP_E_NOT_READY);
	assert_int_equal(run(f, orders_handle_payment_declined, &declined), SHOP_E_NOT_READY);
	assert_int_equal(run(f, orders_handle_shipment_dispatched, &shipped), SHOP_E_NOT_READY);
	assert_int_equal(run(f, orders_handle_cancel_order, &cancel), SHOP_E_NOT_READY);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM orders WHERE order_id = $1", id), 0);
	assert_int_equal(harness_outbox_total(f->db), 0);
}

/* ---- cancellations ----------------------------------------------------- */

static void stock_rejected_cancels_the_order_with_its_reason(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	place(f, id);
	struct ct_stock_rejected rejected = stock_rejected(id, "unknown_sku");
	assert_int_equal(run(f, orders_handle_stock_rejected, &rejected), SHOP_OK);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_UNKNOWN_SKU);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_CANCELLED);
	assert_string_equal(data_str(ev, "reason"), "unknown_sku");
	assert_string_equal(data_str(ev, "order_id"), id);
	cJSON_Delete(ev);
}

static void stock_rejected_with_a_reason_inventory_cannot_give_is_invalid(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	place(f, id);
	struct ct_stock_rejected rejected = stock_rejected(id, "timeout");
	assert_int_equal(run(f, orders_handle_stock_rejected, &rejected), SHOP_E_INVALID);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_PENDING);
}

static void payment_declined_cancels_a_reserved_order_as_payment_declined(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	place(f, id);
	reserve_stock(f, id);
	struct ct_payment_declined declined = payment_declined(id);
	assert_int_equal(run(f, orders_handle_payment_declined, &declined), SHOP_OK);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_PAYMENT_DECLINED);
	assert_int_equal(row.total_cents, 2599);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_CANCELLED);
	assert_string_equal(data_str(ev, "reason"), "payment_declined");
	cJSON_Delete(ev);
}

/* A new order, reserved and paid: PAID with its payment id in PAY. */
static void new_paid_order(struct fixture *f, char id[IDS_UUID_SIZE], char pay[IDS_UUID_SIZE])
{
	place(f, id);
	reserve_stock(f, id);
	pay_order(f, id, pay);
}

static void cancel_after_payment_asks_shipping_and_the_order_stays_paid(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	new_paid_order(f, id, pay);

	cancel_by_customer(f, id);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_int_equal(row.reason, ORDERS_REASON_NONE);
	assert_true(row.cancel_requested);
	assert_int_equal(row.version, 4);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_CANCELLATION_REQUESTED);
	assert_string_equal(data_str(ev, "order_id"), id);
	assert_string_equal(data_str(ev, "reason"), "customer_cancelled");
	assert_string_equal(attr(ev, "subject"), id);
	cJSON_Delete(ev);
}

static void shipment_cancelled_after_the_request_cancels_the_order_as_customer_cancelled(
	void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	new_paid_order(f, id, pay);
	cancel_by_customer(f, id);

	struct ct_shipment_cancelled stopped = shipment_cancelled(id);
	assert_int_equal(run(f, orders_handle_shipment_cancelled, &stopped), SHOP_OK);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_CUSTOMER_CANCELLED);
	assert_true(row.cancel_requested);
	assert_string_equal(row.payment_id, pay);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_CANCELLED);
	assert_string_equal(data_str(ev, "reason"), "customer_cancelled");
	cJSON_Delete(ev);

	/* The same answer again, a late dispatch: nothing more. */
	assert_int_equal(run(f, orders_handle_shipment_cancelled, &stopped), SHOP_OK);
	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	assert_int_equal(run(f, orders_handle_shipment_dispatched, &shipped), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 1);
	assert_int_equal(outbox_count(f, SUBJ_SHIPPED), 0);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1);
}

static void a_dispatch_before_shipping_saw_the_request_ships_the_order(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	new_paid_order(f, id, pay);
	cancel_by_customer(f, id);

	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	assert_int_equal(run(f, orders_handle_shipment_dispatched, &shipped), SHOP_OK);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_SHIPPED);
	assert_int_equal(row.reason, ORDERS_REASON_NONE);
	assert_string_equal(row.shipment_id, ship);
	assert_true(row.cancel_requested); /* the record of a cancellation that lost */
	assert_int_equal(outbox_count(f, SUBJ_SHIPPED), 1);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);

	/* Nothing can cancel it now. */
	cancel_by_customer(f, id);
	struct ct_shipment_cancelled stopped = shipment_cancelled(id);
	assert_int_equal(run(f, orders_handle_shipment_cancelled, &stopped), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_SHIPPED);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1);
}

static void a_repeated_cancel_of_a_paid_order_asks_shipping_once(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	new_paid_order(f, id, pay);
	cancel_by_customer(f, id);
	int64_t requested_at = order(f, id).cancel_requested_at_ms;
	cancel_by_customer(f, id);
	cancel_by_customer(f, id);

	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_int_equal(row.version, 4);
	assert_true(row.cancel_requested_at_ms == requested_at);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);
}

static void cancel_of_a_reserved_order_cancels_it_at_once(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	place(f, id);
	reserve_stock(f, id);
	cancel_by_customer(f, id);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_CUSTOMER_CANCELLED);
	assert_false(row.cancel_requested);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 1);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 0);
}

static void shipment_cancelled_without_a_request_changes_nothing(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	new_paid_order(f, id, pay);
	struct ct_shipment_cancelled stopped = shipment_cancelled(id);
	assert_int_equal(run(f, orders_handle_shipment_cancelled, &stopped), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_PAID);
	assert_int_equal(order(f, id).version, 3);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);
}

static void cancel_of_a_shipped_order_changes_nothing(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	place(f, id);
	reserve_stock(f, id);
	pay_order(f, id, pay);
	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	assert_int_equal(run(f, orders_handle_shipment_dispatched, &shipped), SHOP_OK);

	cancel_by_customer(f, id);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_SHIPPED);
	assert_int_equal(order(f, id).version, 4);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);
}

static void facts_after_a_cancellation_are_acknowledged_without_effect(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	place(f, id);
	cancel_by_customer(f, id);
	cancel_by_customer(f, id);
	reserve_stock(f, id);

	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_false(row.has_total);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 1);
	assert_int_equal(outbox_count(f, SUBJ_RESERVED), 0);
}

/* ---- the sweeper ------------------------------------------------------- */

static void the_sweeper_cancels_only_expired_pending_and_reserved_orders_as_timeout(void **state)
{
	struct fixture *f = *state;
	char pending[IDS_UUID_SIZE], reserved_id[IDS_UUID_SIZE], paid_id[IDS_UUID_SIZE];
	char fresh[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	int64_t long_ago = clock_now_ms() - 2 * DEADLINE_MS;

	/* The sweep goes by deadline, then order id; two ids of one
	 * millisecond (UUIDv7) compare at random, so the reserved order's
	 * deadline comes a millisecond later to be the last one swept. */
	place_at(f, pending, long_ago, "corr-pending");
	place_at(f, reserved_id, long_ago + 1, "corr-reserved");
	place_at(f, paid_id, long_ago, "corr-paid");
	place(f, fresh);
	reserve_stock(f, reserved_id);
	reserve_stock(f, paid_id);
	pay_order(f, paid_id, pay);

	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);

	struct orders_row row = order(f, pending);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_TIMEOUT);
	row = order(f, reserved_id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_TIMEOUT);
	assert_int_equal(order(f, paid_id).status, ORDERS_STATUS_PAID);
	assert_int_equal(order(f, fresh).status, ORDERS_STATUS_PENDING);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 2);

	/* The timeout belongs to the story of the request that placed it. */
	cJSON *ev = harness_outbox_for(f->db, reserved_id, SUBJ_CANCELLED);
	assert_string_equal(data_str(ev, "reason"), "timeout");
	assert_string_equal(data_str(ev, "order_id"), reserved_id);
	assert_string_equal(attr(ev, "correlationid"), "corr-reserved");
	cJSON_Delete(ev);

	/* A second sweep finds nothing left to do. */
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 2);
}

static void the_sweeper_works_through_a_backlog_one_bounded_batch_per_run(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	int64_t long_ago = clock_now_ms() - 2 * DEADLINE_MS;
	for (int i = 0; i < ORDERS_SWEEP_BATCH + 5; i++)
		place_at(f, id, long_ago + i, NULL);

	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), ORDERS_SWEEP_BATCH);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_PENDING); /* the newest waits */
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), ORDERS_SWEEP_BATCH + 5);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_CANCELLED);
}

/* A paid order, placed, reserved and paid at AT (long ago for the paid
 * deadline's cases), under CORRELATION_ID. */
static void paid_at(struct fixture *f, char id[IDS_UUID_SIZE], int64_t at,
		    const char *correlation_id)
{
	char pay[IDS_UUID_SIZE];
	place_at(f, id, at, correlation_id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(run_at(f, orders_handle_stock_reserved, &reserved, at, NULL), SHOP_OK);
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	assert_int_equal(run_at(f, orders_handle_payment_authorized, &paid, at, NULL), SHOP_OK);
}

/* Moves the order's last move MS into the past, as if nothing had happened
 * to it for that long. */
static void age(struct fixture *f, const char *id, int64_t ms)
{
	int64_t changed = 0;
	assert_int_equal(db_exec(f->db,
				 "UPDATE orders SET updated_at_ms = updated_at_ms - $1 "
				 "WHERE order_id = $2",
				 DB_ARGS(DB_I64(ms), id), &changed),
			 SHOP_OK);
	assert_int_equal(changed, 1);
}

static void the_paid_deadline_asks_shipping_and_its_answer_cancels_the_order_as_timeout(void **state)
{
	struct fixture *f = *state;
	char stuck[IDS_UUID_SIZE], fresh[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	/* Past the stock/payment deadline too: that one must not touch it. */
	paid_at(f, stuck, clock_now_ms() - 2 * PAID_DEADLINE_MS, "corr-stuck");
	new_paid_order(f, fresh, pay); /* waiting for its dispatch, as it should */

	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	struct orders_row row = order(f, stuck);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_true(row.cancel_requested);
	assert_int_equal(row.cancel_reason, ORDERS_REASON_TIMEOUT);
	assert_int_equal(row.cancel_requests, 1);
	assert_false(order(f, fresh).cancel_requested);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_CANCELLATION_REQUESTED);
	assert_string_equal(data_str(ev, "order_id"), stuck);
	assert_string_equal(data_str(ev, "reason"), "timeout");
	assert_string_equal(attr(ev, "correlationid"), "corr-stuck");
	cJSON_Delete(ev);

	/* The request restarted the deadline: the next sweep asks nothing. */
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1);

	/* Shipping answers as it answers a customer's request. */
	struct ct_shipment_cancelled stopped = shipment_cancelled(stuck);
	assert_int_equal(run(f, orders_handle_shipment_cancelled, &stopped), SHOP_OK);
	row = order(f, stuck);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_TIMEOUT);
	ev = harness_outbox_last(f->db, SUBJ_CANCELLED);
	assert_string_equal(data_str(ev, "order_id"), stuck);
	assert_string_equal(data_str(ev, "reason"), "timeout");
	cJSON_Delete(ev);
	assert_int_equal(order(f, fresh).status, ORDERS_STATUS_PAID);
}

static void a_dispatch_answering_the_paid_deadline_ships_the_order(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	paid_at(f, id, clock_now_ms() - 2 * PAID_DEADLINE_MS, NULL);
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);

	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	assert_int_equal(run(f, orders_handle_shipment_dispatched, &shipped), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_SHIPPED);
	assert_int_equal(outbox_count(f, SUBJ_SHIPPED), 1);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLED), 0);
	age(f, id, 2 * PAID_DEADLINE_MS);
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1);
}

static void an_unanswered_request_is_repeated_after_each_paid_deadline_up_to_the_last(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	paid_at(f, id, clock_now_ms() - 2 * PAID_DEADLINE_MS, NULL);

	for (int i = 1; i <= ORDERS_CANCEL_REQUESTS_MAX; i++) {
		assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
		assert_int_equal(order(f, id).cancel_requests, i);
		assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), i);
		cJSON *ev = harness_outbox_last(f->db, SUBJ_CANCELLATION_REQUESTED);
		assert_string_equal(data_str(ev, "reason"), "timeout");
		cJSON_Delete(ev);
		age(f, id, PAID_DEADLINE_MS + 1);
	}
	/* The last request went out: the sweeper asks no more. */
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), ORDERS_CANCEL_REQUESTS_MAX);
	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_int_equal(row.cancel_requests, ORDERS_CANCEL_REQUESTS_MAX);

	/* A late answer still decides the order. */
	struct ct_shipment_cancelled stopped = shipment_cancelled(id);
	assert_int_equal(run(f, orders_handle_shipment_cancelled, &stopped), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(order(f, id).reason, ORDERS_REASON_TIMEOUT);
}

static void a_customers_unanswered_request_is_repeated_as_customer_cancelled(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	new_paid_order(f, id, pay);
	cancel_by_customer(f, id);
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1); /* not yet */

	age(f, id, PAID_DEADLINE_MS + 1);
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 2);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_CANCELLATION_REQUESTED);
	assert_string_equal(data_str(ev, "reason"), "customer_cancelled");
	cJSON_Delete(ev);
	struct orders_row row = order(f, id);
	assert_int_equal(row.cancel_requests, 2);
	assert_int_equal(row.cancel_reason, ORDERS_REASON_CUSTOMER_CANCELLED);
}

static void the_paid_deadline_defaults_to_an_hour_without_a_context(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	paid_at(f, id, clock_now_ms() - 2 * PAID_DEADLINE_MS, NULL);
	f->spec.ctx = NULL;

	/* Paid longer ago than the tests' deadline, not than an hour. */
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 0);
	age(f, id, ORDERS_PAID_DEADLINE_DEFAULT_MS);
	assert_int_equal(orders_sweep(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_CANCELLATION_REQUESTED), 1);
	assert_int_equal(ORDERS_PAID_DEADLINE_DEFAULT_MS, 3600000);
}

static void the_sweeper_task_is_wired_every_second(void **state)
{
	assert_int_equal(orders_n_tasks, 1);
	assert_string_equal(orders_tasks[0].name, "deadline-sweeper");
	assert_int_equal(orders_tasks[0].interval_ms, 1000);
	assert_ptr_equal(orders_tasks[0].run, orders_sweep);
}

/* ---- through the runtime ----------------------------------------------- */

/* A PlaceOrder v1 stored before the upgrade (with the card token) is read
 * as v2: orders emits OrderPlaced v2, never v1, and the token appears in
 * nothing it writes. */
static void a_place_order_v1_emits_order_placed_v2_without_the_card_token(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	ids_uuid7(id);
	struct ct_place_order *v1 = xcalloc(1, sizeof(*v1));
	orders_harness_place_v1_fill(v1, id);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER, id, v1), SHOP_OK);
	free(v1);

	assert_int_equal(order(f, id).status, ORDERS_STATUS_PENDING);
	assert_int_equal(harness_outbox_total(f->db), 1);
	assert_int_equal(outbox_count(f, SUBJ_PLACED), 1);
	assert_int_equal(outbox_count(f, "orders.event.order_placed.v1"), 0);
	assert_int_equal(
		count_rows(f, "SELECT count(*) FROM outbox WHERE payload LIKE '%' || $1 || '%'",
			   ORDERS_HARNESS_V1_TOKEN),
		0);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_PLACED);
	struct ct_order_placed_v2 placed;
	assert_int_equal(ct_order_placed_v2_parse(cJSON_GetObjectItemCaseSensitive(ev, "data"),
						  &placed, NULL),
			 SHOP_OK);
	assert_string_equal(placed.order_id, id);
	assert_int_equal(placed.items_len, 2);
	assert_string_equal(placed.shipping_address.country, "GB");
	cJSON_Delete(ev);
}

/* The same order as v1 and as v2 (a gateway retry across the upgrade): one
 * order, one OrderPlaced, whichever comes first. */
static void place_order_v1_then_v2_of_one_order_places_it_once(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	ids_uuid7(id);
	struct ct_place_order *v1 = xcalloc(1, sizeof(*v1));
	struct ct_place_order_v2 *v2 = xcalloc(1, sizeof(*v2));
	orders_harness_place_v1_fill(v1, id);
	orders_harness_place_fill(v2, id);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER, id, v1), SHOP_OK);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER_V2, id, v2), SHOP_OK);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER, id, v1), SHOP_OK);
	assert_int_equal(outbox_count(f, SUBJ_PLACED), 1);
	assert_int_equal(harness_outbox_total(f->db), 1);
	free(v2);
	free(v1);
}

static void every_consumed_message_reaches_its_handler_through_the_routes(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], other[IDS_UUID_SIZE], third[IDS_UUID_SIZE];
	char pay[IDS_UUID_SIZE], ship[IDS_UUID_SIZE];
	struct ct_place_order_v2 *c = place_cmd(id);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER_V2, id, c), SHOP_OK);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(deliver(f, CT_MSG_STOCK_RESERVED, id, &reserved), SHOP_OK);
	struct ct_payment_authorized paid = payment_authorized(id, pay);
	assert_int_equal(deliver(f, CT_MSG_PAYMENT_AUTHORIZED, id, &paid), SHOP_OK);
	struct ct_shipment_dispatched shipped = shipment_dispatched(id, ship);
	assert_int_equal(deliver(f, CT_MSG_SHIPMENT_DISPATCHED, id, &shipped), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_SHIPPED);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_SHIPPED);
	assert_string_equal(attr(ev, "correlationid"), "corr-routes");
	cJSON_Delete(ev);
	free(c);

	c = place_cmd(other);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER_V2, other, c), SHOP_OK);
	struct ct_stock_rejected rejected = stock_rejected(other, "out_of_stock");
	assert_int_equal(deliver(f, CT_MSG_STOCK_REJECTED, other, &rejected), SHOP_OK);
	assert_int_equal(order(f, other).reason, ORDERS_REASON_OUT_OF_STOCK);
	free(c);

	c = place_cmd(third);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER_V2, third, c), SHOP_OK);
	reserved = stock_reserved(third);
	assert_int_equal(deliver(f, CT_MSG_STOCK_RESERVED, third, &reserved), SHOP_OK);
	struct ct_payment_declined declined = payment_declined(third);
	assert_int_equal(deliver(f, CT_MSG_PAYMENT_DECLINED, third, &declined), SHOP_OK);
	assert_int_equal(order(f, third).reason, ORDERS_REASON_PAYMENT_DECLINED);
	free(c);

	c = place_cmd(third);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER_V2, third, c), SHOP_OK);
	struct ct_cancel_order cancel = cancel_order(third);
	assert_int_equal(deliver(f, CT_MSG_CANCEL_ORDER, third, &cancel), SHOP_OK);
	assert_int_equal(order(f, third).reason, ORDERS_REASON_CUSTOMER_CANCELLED);
	free(c);

	char fourth[IDS_UUID_SIZE];
	c = place_cmd(fourth);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER_V2, fourth, c), SHOP_OK);
	reserved = stock_reserved(fourth);
	assert_int_equal(deliver(f, CT_MSG_STOCK_RESERVED, fourth, &reserved), SHOP_OK);
	paid = payment_authorized(fourth, pay);
	assert_int_equal(deliver(f, CT_MSG_PAYMENT_AUTHORIZED, fourth, &paid), SHOP_OK);
	cancel = cancel_order(fourth);
	assert_int_equal(deliver(f, CT_MSG_CANCEL_ORDER, fourth, &cancel), SHOP_OK);
	assert_true(order(f, fourth).cancel_requested);
	struct ct_shipment_cancelled stopped = shipment_cancelled(fourth);
	assert_int_equal(deliver(f, CT_MSG_SHIPMENT_CANCELLED, fourth, &stopped), SHOP_OK);
	assert_int_equal(order(f, fourth).status, ORDERS_STATUS_CANCELLED);
	free(c);
	assert_int_equal(orders_n_routes, 8);
}

static void a_total_above_any_unit_price_is_reserved_and_paid_through_the_routes(void **state)
{
	struct fixture *f = *state;
	/* The largest order of keyboards: 50 lines of 1000 at 89.00 EUR, a
	 * total above the unit price ceiling of the contracts. */
	const int64_t total = INT64_C(50) * 1000 * 8900;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE];
	struct ct_place_order_v2 *c = place_cmd(id);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER_V2, id, c), SHOP_OK);
	free(c);

	struct ct_stock_reserved reserved = { 0 };
	snprintf(reserved.order_id, sizeof(reserved.order_id), "%s", id);
	for (size_t i = 0; i < 50; i++) {
		snprintf(reserved.lines[i].sku, sizeof(reserved.lines[i].sku), "SKU-KEYBOARD");
		reserved.lines[i].quantity = 1000;
		reserved.lines[i].unit_price_cents = 8900;
	}
	reserved.lines_len = 50;
	reserved.total_cents = total;
	snprintf(reserved.currency, sizeof(reserved.currency), "EUR");
	assert_int_equal(deliver(f, CT_MSG_STOCK_RESERVED, id, &reserved), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_RESERVED);
	assert_int_equal(order(f, id).total_cents, total);
	cJSON *ev = harness_outbox_last(f->db, SUBJ_RESERVED);
	assert_int_equal((int64_t)data_num(ev, "total_cents"), total);
	cJSON_Delete(ev);

	struct ct_payment_authorized paid = payment_authorized(id, pay);
	paid.amount_cents = total;
	assert_int_equal(deliver(f, CT_MSG_PAYMENT_AUTHORIZED, id, &paid), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_PAID);
	assert_int_equal(order(f, id).total_cents, total);
}

static void a_redelivered_message_is_a_duplicate_with_no_second_effect(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	struct ct_place_order_v2 *c = place_cmd(id);
	char *text = envelope(CT_MSG_PLACE_ORDER_V2, id, c);
	assert_int_equal(deliver_text(f, text), SHOP_OK);
	assert_int_equal(deliver_text(f, text), SHOP_E_DUPLICATE);
	assert_int_equal(outbox_count(f, SUBJ_PLACED), 1);
	free(text);
	free(c);
}

static void a_not_ready_message_leaves_no_inbox_record_so_its_redelivery_applies(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE];
	struct ct_place_order_v2 *c = place_cmd(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	char *early = envelope(CT_MSG_STOCK_RESERVED, id, &reserved);
	assert_int_equal(deliver_text(f, early), SHOP_E_NOT_READY);
	assert_int_equal(deliver(f, CT_MSG_PLACE_ORDER_V2, id, c), SHOP_OK);
	assert_int_equal(deliver_text(f, early), SHOP_OK);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_RESERVED);
	free(early);
	free(c);
}

/* PaymentAuthorized about ORDER_ID for CENTS in CURRENCY (a fresh payment
 * id, copied to PAY), in its envelope from payments; free() it. */
static char *payment_envelope(const char *order_id, int64_t cents, const char *currency,
			      char pay[IDS_UUID_SIZE])
{
	struct ct_payment_authorized ev = payment_authorized(order_id, pay);
	ev.amount_cents = cents;
	snprintf(ev.currency, sizeof(ev.currency), "%s", currency);
	return envelope(CT_MSG_PAYMENT_AUTHORIZED, order_id, &ev);
}

/* TEXT through the runtime as the bus delivers it; its answer's reason in
 * REASON (HARNESS_REASON_MAX bytes). */
static shop_status deliver_why(struct fixture *f, const char *text, char *reason)
{
	return harness_deliver(f->svc, f->db, "orders", text, reason, HARNESS_REASON_MAX);
}

static void reason_has(const char *reason, const char *want)
{
	if (!strstr(reason, want))
		fail_msg("reason \"%s\" does not say \"%s\"", reason, want);
}

/* A PaymentAuthorized that is not for the order's total (a forged event, or
 * a bug in payments) is refused for good with the reason, and the order is
 * not paid: nothing changes, no event, no inbox record. The payment for
 * the total still pays it afterwards. */
static void a_payment_for_another_amount_is_dead_lettered_with_the_reason_and_pays_nothing(
	void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], reason[HARNESS_REASON_MAX];
	place(f, id);
	reserve_stock(f, id);
	int64_t events = harness_outbox_total(f->db);
	int64_t inbox = count_rows(f, "SELECT count(*) FROM inbox", NULL);

	char *less = payment_envelope(id, ORDER_TOTAL_CENTS - 1, "EUR", pay);
	assert_int_equal(deliver_why(f, less, reason), SHOP_E_INVALID);
	reason_has(reason,
		   "payment_authorized for 2598 EUR does not match the order's total of 2599 EUR");
	char *dollars = payment_envelope(id, ORDER_TOTAL_CENTS, "USD", pay);
	assert_int_equal(deliver_why(f, dollars, reason), SHOP_E_INVALID);
	reason_has(reason, "for 2599 USD does not match the order's total of 2599 EUR");
	assert_int_equal(svc_settle_decide(SHOP_E_INVALID, 1), SVC_DEAD_LETTER);

	struct orders_row row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_RESERVED);
	assert_string_equal(row.payment_id, "");
	assert_int_equal(row.version, 2);
	assert_int_equal(harness_outbox_total(f->db), events);
	assert_int_equal(outbox_count(f, SUBJ_PAID), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM inbox", NULL), inbox);

	/* A redelivery is refused again (nothing was recorded); the real one pays. */
	assert_int_equal(deliver_why(f, less, reason), SHOP_E_INVALID);
	char *right = payment_envelope(id, ORDER_TOTAL_CENTS, "EUR", pay);
	assert_int_equal(deliver_why(f, right, reason), SHOP_OK);
	row = order(f, id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_string_equal(row.payment_id, pay);
	assert_int_equal(outbox_count(f, SUBJ_PAID), 1);

	/* Paid now, a payment of another amount is still no payment of it. */
	assert_int_equal(deliver_why(f, less, reason), SHOP_E_INVALID);
	assert_int_equal(order(f, id).status, ORDERS_STATUS_PAID);
	assert_int_equal(outbox_count(f, SUBJ_PAID), 1);
	free(less);
	free(dollars);
	free(right);
}

/* Before the reservation priced the order there is nothing to compare
 * with: the payment waits (NOT_READY, as any early payment) and is checked
 * when it comes back. */
static void a_payment_for_another_amount_before_the_reservation_is_refused_once_priced(void **state)
{
	struct fixture *f = *state;
	char id[IDS_UUID_SIZE], pay[IDS_UUID_SIZE], reason[HARNESS_REASON_MAX];
	place(f, id);
	char *wrong = payment_envelope(id, 1, "EUR", pay);
	assert_int_equal(deliver_why(f, wrong, reason), SHOP_E_NOT_READY);
	reserve_stock(f, id);
	assert_int_equal(deliver_why(f, wrong, reason), SHOP_E_INVALID);
	reason_has(reason, "payment_authorized for 1 EUR does not match");
	assert_int_equal(order(f, id).status, ORDERS_STATUS_RESERVED);
	free(wrong);
}

int main(void)
{
	log_init("orders-test", LOG_LVL_ERROR);
	xalloc_init_cjson();
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(place_order_creates_a_pending_order_and_emits_order_placed_with_its_fields),
		T(place_order_again_changes_nothing_and_emits_nothing),
		T(the_deadline_defaults_to_sixty_seconds_without_a_context),
		T(the_happy_path_reaches_shipped_with_one_event_per_step),
		T(a_repeated_event_is_acknowledged_and_emits_nothing_more),
		T(payment_authorized_before_the_reservation_is_not_ready_and_changes_nothing),
		T(payment_declined_before_the_reservation_is_not_ready),
		T(shipment_dispatched_before_payment_is_not_ready),
		T(any_fact_about_an_unknown_order_is_not_ready),
		T(stock_rejected_cancels_the_order_with_its_reason),
		T(stock_rejected_with_a_reason_inventory_cannot_give_is_invalid),
		T(payment_declined_cancels_a_reserved_order_as_payment_declined),
		T(cancel_after_payment_asks_shipping_and_the_order_stays_paid),
		T(shipment_cancelled_after_the_request_cancels_the_order_as_customer_cancelled),
		T(a_dispatch_before_shipping_saw_the_request_ships_the_order),
		T(a_repeated_cancel_of_a_paid_order_asks_shipping_once),
		T(cancel_of_a_reserved_order_cancels_it_at_once),
		T(shipment_cancelled_without_a_request_changes_nothing),
		T(cancel_of_a_shipped_order_changes_nothing),
		T(facts_after_a_cancellation_are_acknowledged_without_effect),
		T(the_sweeper_cancels_only_expired_pending_and_reserved_orders_as_timeout),
		T(the_sweeper_works_through_a_backlog_one_bounded_batch_per_run),
		T(the_paid_deadline_asks_shipping_and_its_answer_cancels_the_order_as_timeout),
		T(a_dispatch_answering_the_paid_deadline_ships_the_order),
		T(an_unanswered_request_is_repeated_after_each_paid_deadline_up_to_the_last),
		T(a_customers_unanswered_request_is_repeated_as_customer_cancelled),
		T(the_paid_deadline_defaults_to_an_hour_without_a_context),
		T(the_sweeper_task_is_wired_every_second),
		T(a_place_order_v1_emits_order_placed_v2_without_the_card_token),
		T(place_order_v1_then_v2_of_one_order_places_it_once),
		T(every_consumed_message_reaches_its_handler_through_the_routes),
		T(a_total_above_any_unit_price_is_reserved_and_paid_through_the_routes),
		T(a_redelivered_message_is_a_duplicate_with_no_second_effect),
		T(a_not_ready_message_leaves_no_inbox_record_so_its_redelivery_applies),
		T(a_payment_for_another_amount_is_dead_lettered_with_the_reason_and_pays_nothing),
		T(a_payment_for_another_amount_before_the_reservation_is_refused_once_priced),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
