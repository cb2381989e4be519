/*
 * test_orders_store.c - the orders table and its statements, against a real
 * in-process SQLite database migrated with the service's own migrations.
 *
 * What matters here is what a race or a repetition does to the table: an
 * insert repeated is a no-op, a guarded update whose guard no longer holds
 * changes nothing, and the sweeper's queries see exactly the orders the
 * domain would cancel for their deadline, or ask shipping about for theirs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../services/orders/orders_store.h"
#include "db/db.h"

#define NOW 1700000000000LL

static int setup(void **state)
{
	struct db *db = NULL;
	if (db_open("sqlite::memory:", &db) != SHOP_OK)
		return -1;
	if (db_migrate(db, orders_migrations, orders_n_migrations) != SHOP_OK) {
		fprintf(stderr, "migrate: %s\n", db_last_error(db));
		db_close(db);
		return -1;
	}
	*state = db;
	return 0;
}

static int teardown(void **state)
{
	db_close(*state);
	return 0;
}

static bool insert(struct db *db, const char *id, const char *email, int64_t created,
		   int64_t deadline)
{
	struct orders_new o = {
		.order_id = id,
		.customer_id = "cust-1",
		.email = email,
		.items_json = "[{\"sku\":\"SKU-1\",\"quantity\":2}]",
		.correlation_id = "corr-1",
		.created_at_ms = created,
		.deadline_at_ms = deadline,
	};
	bool inserted = false;
	assert_int_equal(orders_store_insert(db, &o, &inserted), SHOP_OK);
	return inserted;
}

static bool move_from(struct db *db, const char *id, enum orders_status from, bool marked,
		      const struct orders_change *c, int64_t now)
{
	const struct orders_state st = { .status = from,
					 .cancel_requested = marked,
					 .cancel_requests = marked ? 1 : 0 };
	bool moved = true;
	assert_int_equal(orders_store_transition(db, id, &st, c, now, &moved), SHOP_OK);
	return moved;
}

/* From FROM with no cancellation requested. */
static bool move(struct db *db, const char *id, enum orders_status from,
		 const struct orders_change *c, int64_t now)
{
	return move_from(db, id, from, false, c, now);
}

static const struct orders_change to_reserved = {
	.status = ORDERS_STATUS_RESERVED,
	.has_total = true,
	.total_cents = 2599,
	.currency = "EUR",
};
static const struct orders_change to_paid = {
	.status = ORDERS_STATUS_PAID,
	.payment_id = "pay-1",
};
static const struct orders_change to_cancelled = {
	.status = ORDERS_STATUS_CANCELLED,
	.reason = ORDERS_REASON_TIMEOUT,
};
static const struct orders_change to_cancel_requested = {
	.status = ORDERS_STATUS_PAID,
	.cancel_requested = true,
	.cancel_reason = ORDERS_REASON_CUSTOMER_CANCELLED,
	.cancel_requests = 1,
};
static const struct orders_change to_customer_cancelled = {
	.status = ORDERS_STATUS_CANCELLED,
	.reason = ORDERS_REASON_CUSTOMER_CANCELLED,
	.cancel_requested = true,
	.cancel_reason = ORDERS_REASON_CUSTOMER_CANCELLED,
	.cancel_requests = 1,
};

static void inserting_an_order_creates_it_pending_at_version_one(void **state)
{
	struct db *db = *state;
	struct orders_row row;
	assert_true(insert(db, "o-1", "a@example.com", NOW, NOW + 60000));
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_string_equal(row.order_id, "o-1");
	assert_int_equal(row.status, ORDERS_STATUS_PENDING);
	assert_int_equal(row.reason, ORDERS_REASON_NONE);
	assert_string_equal(row.customer_id, "cust-1");
	assert_string_equal(row.email, "a@example.com");
	assert_false(row.has_total);
	assert_string_equal(row.currency, "");
	assert_string_equal(row.payment_id, "");
	assert_string_equal(row.correlation_id, "corr-1");
	assert_int_equal(row.created_at_ms, NOW);
	assert_int_equal(row.updated_at_ms, NOW);
	assert_int_equal(row.deadline_at_ms, NOW + 60000);
	assert_int_equal(row.version, 1);
}

static void inserting_the_same_order_twice_keeps_the_first_and_says_so(void **state)
{
	struct db *db = *state;
	struct orders_row row;
	assert_true(insert(db, "o-1", "first@example.com", NOW, NOW + 60000));
	assert_false(insert(db, "o-1", "second@example.com", NOW + 5, NOW + 60005));
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_string_equal(row.email, "first@example.com");
	assert_int_equal(row.created_at_ms, NOW);
}

static void getting_an_unknown_order_is_not_found(void **state)
{
	struct orders_row row;
	assert_int_equal(orders_store_get(*state, "nope", &row), SHOP_E_NOT_FOUND);
}

static void guarded_update_moves_the_order_and_bumps_its_version(void **state)
{
	struct db *db = *state;
	struct orders_row row;
	insert(db, "o-1", "a@example.com", NOW, NOW + 60000);
	assert_true(move(db, "o-1", ORDERS_STATUS_PENDING, &to_reserved, NOW + 10));
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_int_equal(row.status, ORDERS_STATUS_RESERVED);
	assert_true(row.has_total);
	assert_int_equal(row.total_cents, 2599);
	assert_string_equal(row.currency, "EUR");
	assert_int_equal(row.updated_at_ms, NOW + 10);
	assert_int_equal(row.version, 2);
}

static void guarded_update_changes_nothing_when_the_status_moved(void **state)
{
	struct db *db = *state;
	struct orders_row before, after;
	insert(db, "o-1", "a@example.com", NOW, NOW + 60000);
	assert_true(move(db, "o-1", ORDERS_STATUS_PENDING, &to_reserved, NOW + 10));
	assert_int_equal(orders_store_get(db, "o-1", &before), SHOP_OK);

	/* A second replica that read PENDING before the first one committed. */
	assert_false(move(db, "o-1", ORDERS_STATUS_PENDING, &to_cancelled, NOW + 20));
	assert_int_equal(orders_store_get(db, "o-1", &after), SHOP_OK);
	assert_int_equal(after.status, ORDERS_STATUS_RESERVED);
	assert_int_equal(after.reason, ORDERS_REASON_NONE);
	assert_int_equal(after.version, before.version);
	assert_int_equal(after.updated_at_ms, before.updated_at_ms);
}

static void guarded_update_of_an_unknown_order_changes_nothing(void **state)
{
	assert_false(move(*state, "nope", ORDERS_STATUS_PENDING, &to_reserved, NOW));
}

static void later_transitions_keep_the_facts_of_earlier_ones(void **state)
{
	struct db *db = *state;
	struct orders_row row;
	insert(db, "o-1", "a@example.com", NOW, NOW + 60000);
	move(db, "o-1", ORDERS_STATUS_PENDING, &to_reserved, NOW + 10);
	assert_true(move(db, "o-1", ORDERS_STATUS_RESERVED, &to_paid, NOW + 20));
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_int_equal(row.total_cents, 2599);
	assert_string_equal(row.currency, "EUR");
	assert_string_equal(row.payment_id, "pay-1");
	assert_int_equal(row.version, 3);
}

static void assert_rows_equal(const struct orders_row *a, const struct orders_row *b)
{
	assert_string_equal(a->order_id, b->order_id);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->reason, b->reason);
	assert_string_equal(a->customer_id, b->customer_id);
	assert_string_equal(a->email, b->email);
	assert_int_equal(a->has_total, b->has_total);
	assert_int_equal(a->total_cents, b->total_cents);
	assert_string_equal(a->currency, b->currency);
	assert_string_equal(a->payment_id, b->payment_id);
	assert_string_equal(a->shipment_id, b->shipment_id);
	assert_string_equal(a->correlation_id, b->correlation_id);
	assert_int_equal(a->created_at_ms, b->created_at_ms);
	assert_int_equal(a->updated_at_ms, b->updated_at_ms);
	assert_int_equal(a->deadline_at_ms, b->deadline_at_ms);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->cancel_requested, b->cancel_requested);
	assert_int_equal(a->cancel_reason, b->cancel_reason);
	assert_int_equal(a->cancel_requests, b->cancel_requests);
	assert_int_equal(a->cancel_requested_at_ms, b->cancel_requested_at_ms);
}

static void row_apply_predicts_what_the_update_stored(void **state)
{
	struct db *db = *state;
	struct orders_row predicted, stored;
	insert(db, "o-1", "a@example.com", NOW, NOW + 60000);
	assert_int_equal(orders_store_get(db, "o-1", &predicted), SHOP_OK);
	move(db, "o-1", ORDERS_STATUS_PENDING, &to_reserved, NOW + 10);
	orders_row_apply(&predicted, &to_reserved, NOW + 10);
	assert_int_equal(orders_store_get(db, "o-1", &stored), SHOP_OK);
	assert_rows_equal(&predicted, &stored);

	move(db, "o-1", ORDERS_STATUS_RESERVED, &to_cancelled, NOW + 20);
	orders_row_apply(&predicted, &to_cancelled, NOW + 20);
	assert_int_equal(orders_store_get(db, "o-1", &stored), SHOP_OK);
	assert_rows_equal(&predicted, &stored);

	/* The cancellation mark, set and then kept. */
	insert(db, "o-2", "a@example.com", NOW, NOW + 60000);
	move(db, "o-2", ORDERS_STATUS_PENDING, &to_reserved, NOW + 10);
	move(db, "o-2", ORDERS_STATUS_RESERVED, &to_paid, NOW + 20);
	assert_int_equal(orders_store_get(db, "o-2", &predicted), SHOP_OK);
	move(db, "o-2", ORDERS_STATUS_PAID, &to_cancel_requested, NOW + 30);
	orders_row_apply(&predicted, &to_cancel_requested, NOW + 30);
	assert_int_equal(orders_store_get(db, "o-2", &stored), SHOP_OK);
	assert_rows_equal(&predicted, &stored);
	move_from(db, "o-2", ORDERS_STATUS_PAID, true, &to_customer_cancelled, NOW + 40);
	orders_row_apply(&predicted, &to_customer_cancelled, NOW + 40);
	assert_int_equal(orders_store_get(db, "o-2", &stored), SHOP_OK);
	assert_rows_equal(&predicted, &stored);
	assert_true(stored.cancel_requested_at_ms == NOW + 30);
}

static void the_cancellation_mark_is_set_once_and_guards_the_update(void **state)
{
	struct db *db = *state;
	struct orders_row row;
	insert(db, "o-1", "a@example.com", NOW, NOW + 60000);
	move(db, "o-1", ORDERS_STATUS_PENDING, &to_reserved, NOW + 10);
	move(db, "o-1", ORDERS_STATUS_RESERVED, &to_paid, NOW + 20);
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_false(row.cancel_requested);

	assert_true(move(db, "o-1", ORDERS_STATUS_PAID, &to_cancel_requested, NOW + 30));
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_true(row.cancel_requested);
	assert_true(row.cancel_requested_at_ms == NOW + 30);
	assert_int_equal(row.version, 4);

	/* A second replica that read the order unmarked: the status alone
	 * would let it through, the mark in the guard does not. */
	assert_false(move(db, "o-1", ORDERS_STATUS_PAID, &to_cancel_requested, NOW + 40));
	assert_false(move(db, "o-1", ORDERS_STATUS_PAID, &to_customer_cancelled, NOW + 40));
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_int_equal(row.version, 4);
	assert_true(row.cancel_requested_at_ms == NOW + 30);

	assert_true(
		move_from(db, "o-1", ORDERS_STATUS_PAID, true, &to_customer_cancelled, NOW + 50));
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_true(row.cancel_requested_at_ms == NOW + 30);
}

static void a_repeated_request_is_guarded_by_the_requests_count_and_keeps_its_reason(void **state)
{
	struct db *db = *state;
	struct orders_row row;
	const struct orders_change timeout_asked = {
		.status = ORDERS_STATUS_PAID,
		.cancel_requested = true,
		.cancel_reason = ORDERS_REASON_TIMEOUT,
		.cancel_requests = 1,
	};
	const struct orders_change asked_again = {
		.status = ORDERS_STATUS_PAID,
		.cancel_requested = true,
		.cancel_reason = ORDERS_REASON_CUSTOMER_CANCELLED,
		.cancel_requests = 2,
	};
	const struct orders_state asked_once = { .status = ORDERS_STATUS_PAID,
						 .cancel_requested = true,
						 .cancel_requests = 1 };
	bool moved = false;
	insert(db, "o-1", "a@example.com", NOW, NOW + 60000);
	move(db, "o-1", ORDERS_STATUS_PENDING, &to_reserved, NOW + 10);
	move(db, "o-1", ORDERS_STATUS_RESERVED, &to_paid, NOW + 20);
	assert_true(move(db, "o-1", ORDERS_STATUS_PAID, &timeout_asked, NOW + 30));

	assert_int_equal(orders_store_transition(db, "o-1", &asked_once, &asked_again, NOW + 40,
						 &moved),
			 SHOP_OK);
	assert_true(moved);
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_int_equal(row.cancel_requests, 2);
	assert_int_equal(row.cancel_reason, ORDERS_REASON_TIMEOUT); /* the first one's */
	assert_true(row.cancel_requested_at_ms == NOW + 30);
	assert_int_equal(row.updated_at_ms, NOW + 40);

	/* A second sweeper that found it asked once: status and mark alone
	 * would let it through, the count does not. */
	assert_int_equal(orders_store_transition(db, "o-1", &asked_once, &asked_again, NOW + 50,
						 &moved),
			 SHOP_OK);
	assert_false(moved);
	assert_int_equal(orders_store_get(db, "o-1", &row), SHOP_OK);
	assert_int_equal(row.cancel_requests, 2);
	assert_int_equal(row.updated_at_ms, NOW + 40);
}

static void the_schema_refuses_a_cancellation_mark_before_payment(void **state)
{
	struct db *db = *state;
	const struct orders_change reserved_marked = {
		.status = ORDERS_STATUS_RESERVED,
		.has_total = true,
		.total_cents = 1,
		.currency = "EUR",
		.cancel_requested = true,
	};
	const struct orders_state pending = { .status = ORDERS_STATUS_PENDING };
	bool moved = false;
	insert(db, "o-1", "a@example.com", NOW, NOW + 60000);
	assert_int_not_equal(orders_store_transition(db, "o-1", &pending, &reserved_marked, NOW,
						     &moved),
			     SHOP_OK);
}

static void the_schema_refuses_a_cancelled_order_without_a_reason(void **state)
{
	struct db *db = *state;
	const struct orders_change no_reason = { .status = ORDERS_STATUS_CANCELLED };
	const struct orders_change reason_not_cancelled = {
		.status = ORDERS_STATUS_PAID,
		.reason = ORDERS_REASON_TIMEOUT,
	};
	const struct orders_state pending = { .status = ORDERS_STATUS_PENDING };
	bool moved = false;
	insert(db, "o-1", "a@example.com", NOW, NOW + 60000);
	assert_int_not_equal(orders_store_transition(db, "o-1", &pending, &no_reason, NOW, &moved),
			     SHOP_OK);
	assert_int_not_equal(orders_store_transition(db, "o-1", &pending, &reason_not_cancelled,
						     NOW, &moved),
			     SHOP_OK);
}

static void sweeper_query_finds_only_expired_pending_and_reserved_orders(void **state)
{
	struct db *db = *state;
	struct orders_due due[8];
	size_t n = 99;
	const struct orders_change to_shipped = { .status = ORDERS_STATUS_SHIPPED,
						  .shipment_id = "ship-1" };

	insert(db, "pending-expired", "a@example.com", NOW - 100, NOW - 2);
	insert(db, "reserved-expired", "a@example.com", NOW - 100, NOW - 1);
	move(db, "reserved-expired", ORDERS_STATUS_PENDING, &to_reserved, NOW - 50);
	insert(db, "paid-expired", "a@example.com", NOW - 100, NOW - 3);
	move(db, "paid-expired", ORDERS_STATUS_PENDING, &to_reserved, NOW - 50);
	move(db, "paid-expired", ORDERS_STATUS_RESERVED, &to_paid, NOW - 40);
	insert(db, "shipped-expired", "a@example.com", NOW - 100, NOW - 3);
	move(db, "shipped-expired", ORDERS_STATUS_PENDING, &to_reserved, NOW - 50);
	move(db, "shipped-expired", ORDERS_STATUS_RESERVED, &to_paid, NOW - 40);
	move(db, "shipped-expired", ORDERS_STATUS_PAID, &to_shipped, NOW - 30);
	insert(db, "cancelled-expired", "a@example.com", NOW - 100, NOW - 3);
	move(db, "cancelled-expired", ORDERS_STATUS_PENDING, &to_cancelled, NOW - 50);
	insert(db, "pending-due-now", "a@example.com", NOW - 100, NOW);
	insert(db, "pending-future", "a@example.com", NOW, NOW + 60000);

	assert_int_equal(orders_store_find_expired(db, NOW, 8, due, &n), SHOP_OK);
	assert_int_equal(n, 2);
	assert_string_equal(due[0].order_id, "pending-expired");
	assert_string_equal(due[0].correlation_id, "corr-1");
	assert_string_equal(due[1].order_id, "reserved-expired");
}

static void sweeper_query_returns_at_most_max_longest_overdue_first(void **state)
{
	struct db *db = *state;
	struct orders_due due[3];
	size_t n = 0;
	char id[16];
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "o-%d", i);
		insert(db, id, "a@example.com", NOW - 1000, NOW - 100 + i);
	}
	assert_int_equal(orders_store_find_expired(db, NOW, 3, due, &n), SHOP_OK);
	assert_int_equal(n, 3);
	assert_string_equal(due[0].order_id, "o-0");
	assert_string_equal(due[1].order_id, "o-1");
	assert_string_equal(due[2].order_id, "o-2");
}

static void paid_query_finds_paid_orders_unmoved_since_before_and_not_asked_enough(void **state)
{
	struct db *db = *state;
	struct orders_due due[8];
	size_t n = 99;
	const struct orders_change asked_max = {
		.status = ORDERS_STATUS_PAID,
		.cancel_requested = true,
		.cancel_reason = ORDERS_REASON_TIMEOUT,
		.cancel_requests = 3,
	};
	const struct orders_state unasked = { .status = ORDERS_STATUS_PAID };
	bool moved = false;

	insert(db, "paid-old", "a@example.com", NOW - 100, NOW + 60000);
	move(db, "paid-old", ORDERS_STATUS_PENDING, &to_reserved, NOW - 90);
	move(db, "paid-old", ORDERS_STATUS_RESERVED, &to_paid, NOW - 80);
	insert(db, "asked-old", "a@example.com", NOW - 100, NOW + 60000);
	move(db, "asked-old", ORDERS_STATUS_PENDING, &to_reserved, NOW - 90);
	move(db, "asked-old", ORDERS_STATUS_RESERVED, &to_paid, NOW - 85);
	move(db, "asked-old", ORDERS_STATUS_PAID, &to_cancel_requested, NOW - 70);
	insert(db, "asked-enough", "a@example.com", NOW - 100, NOW + 60000);
	move(db, "asked-enough", ORDERS_STATUS_PENDING, &to_reserved, NOW - 90);
	move(db, "asked-enough", ORDERS_STATUS_RESERVED, &to_paid, NOW - 85);
	assert_int_equal(orders_store_transition(db, "asked-enough", &unasked, &asked_max, NOW - 75,
						 &moved),
			 SHOP_OK);
	assert_true(moved);
	insert(db, "paid-at-before", "a@example.com", NOW - 100, NOW + 60000);
	move(db, "paid-at-before", ORDERS_STATUS_PENDING, &to_reserved, NOW - 90);
	move(db, "paid-at-before", ORDERS_STATUS_RESERVED, &to_paid, NOW - 50);
	insert(db, "reserved-old", "a@example.com", NOW - 100, NOW - 1);
	move(db, "reserved-old", ORDERS_STATUS_PENDING, &to_reserved, NOW - 90);

	assert_int_equal(orders_store_find_paid_overdue(db, NOW - 50, 3, 8, due, &n), SHOP_OK);
	assert_int_equal(n, 2);
	assert_string_equal(due[0].order_id, "paid-old");
	assert_true(due[0].paid);
	assert_int_equal(due[0].cancel_requests, 0);
	assert_string_equal(due[0].correlation_id, "corr-1");
	assert_string_equal(due[1].order_id, "asked-old");
	assert_true(due[1].paid);
	assert_int_equal(due[1].cancel_requests, 1);

	assert_int_equal(orders_store_find_paid_overdue(db, NOW - 50, 3, 1, due, &n), SHOP_OK);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].order_id, "paid-old");
}

static void sweeper_query_on_an_empty_table_finds_nothing(void **state)
{
	struct orders_due due[2];
	size_t n = 99;
	assert_int_equal(orders_store_find_expired(*state, NOW, 2, due, &n), SHOP_OK);
	assert_int_equal(n, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(inserting_an_order_creates_it_pending_at_version_one),
		T(inserting_the_same_order_twice_keeps_the_first_and_says_so),
		T(getting_an_unknown_order_is_not_found),
		T(guarded_update_moves_the_order_and_bumps_its_version),
		T(guarded_update_changes_nothing_when_the_status_moved),
		T(guarded_update_of_an_unknown_order_changes_nothing),
		T(later_transitions_keep_the_facts_of_earlier_ones),
		T(row_apply_predicts_what_the_update_stored),
		T(the_cancellation_mark_is_set_once_and_guards_the_update),
		T(a_repeated_request_is_guarded_by_the_requests_count_and_keeps_its_reason),
		T(the_schema_refuses_a_cancellation_mark_before_payment),
		T(the_schema_refuses_a_cancelled_order_without_a_reason),
		T(sweeper_query_finds_only_expired_pending_and_reserved_orders),
		T(sweeper_query_returns_at_most_max_longest_overdue_first),
		T(paid_query_finds_paid_orders_unmoved_since_before_and_not_asked_enough),
		T(sweeper_query_on_an_empty_table_finds_nothing),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
