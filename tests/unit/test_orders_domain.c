/*
 * test_orders_domain.c - the order state machine, cell by cell.
 *
 * The table below is the specification: every state (each status, and PAID
 * once more with the customer's cancellation requested once) against every
 * input (the paid deadline as the sweeper finds the order: unmoved), with the
 * decision orders_decide() must return. One test walks all of it;
 * the others restate its rows as sentences, so a failure names the rule that
 * broke, not just a cell.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../services/orders/orders_domain.h"

#define PENDING ORDERS_STATUS_PENDING
#define RESERVED ORDERS_STATUS_RESERVED
#define PAID ORDERS_STATUS_PAID
#define SHIPPED ORDERS_STATUS_SHIPPED
#define CANCELLED ORDERS_STATUS_CANCELLED
/* The table's extra row: a PAID order whose cancellation was requested. */
#define PAID_CR ORDERS_STATUS_COUNT
#define ROWS (ORDERS_STATUS_COUNT + 1)

struct cell {
	enum orders_verdict verdict;
	enum orders_status status; /* the status after the decision */
	enum orders_reason reason;
	bool marks;             /* the decision asks shipping (once more) to cancel */
	enum orders_reason why; /* when it asks first: the request's reason */
};

#define APPLY(to, why) { ORDERS_APPLY, (to), (why), false, ORDERS_REASON_NONE }
#define MARK(why) { ORDERS_APPLY, PAID, ORDERS_REASON_NONE, true, (why) }
#define IGNORE(st) { ORDERS_IGNORE, (st), ORDERS_REASON_NONE, false, ORDERS_REASON_NONE }
#define DEFER(st) { ORDERS_DEFER, (st), ORDERS_REASON_NONE, false, ORDERS_REASON_NONE }
#define NO_REASON ORDERS_REASON_NONE
#define CUSTOMER ORDERS_REASON_CUSTOMER_CANCELLED
#define TIMEOUT ORDERS_REASON_TIMEOUT

static struct orders_state state_of(int row)
{
	bool cr = row == PAID_CR;
	return (struct orders_state){ .status = cr ? PAID : (enum orders_status)row,
				      .cancel_requested = cr,
				      .cancel_reason = cr ? CUSTOMER : NO_REASON,
				      .cancel_requests = cr ? 1 : 0 };
}

static const char *row_name(int row)
{
	return row == PAID_CR ? "PAID (cancellation requested)"
			      : orders_status_name((enum orders_status)row);
}

static struct orders_decision decide(int row, const struct orders_input *in)
{
	struct orders_state st = state_of(row);
	return orders_decide(&st, in);
}

/* stock_rejected is listed with out_of_stock; a second test covers unknown_sku. */
static const struct cell table[ROWS][ORDERS_INPUT_COUNT] = {
	[PENDING] = {
		[ORDERS_INPUT_PLACED] = IGNORE(PENDING),
		[ORDERS_INPUT_STOCK_RESERVED] = APPLY(RESERVED, NO_REASON),
		[ORDERS_INPUT_STOCK_REJECTED] = APPLY(CANCELLED, ORDERS_REASON_OUT_OF_STOCK),
		[ORDERS_INPUT_PAYMENT_AUTHORIZED] = DEFER(PENDING),
		[ORDERS_INPUT_PAYMENT_DECLINED] = DEFER(PENDING),
		[ORDERS_INPUT_SHIPMENT_DISPATCHED] = DEFER(PENDING),
		[ORDERS_INPUT_CANCEL_REQUESTED] = APPLY(CANCELLED, ORDERS_REASON_CUSTOMER_CANCELLED),
		[ORDERS_INPUT_DEADLINE_PASSED] = APPLY(CANCELLED, ORDERS_REASON_TIMEOUT),
		[ORDERS_INPUT_SHIPMENT_CANCELLED] = IGNORE(PENDING),
		[ORDERS_INPUT_PAID_DEADLINE_PASSED] = IGNORE(PENDING),
	},
	[RESERVED] = {
		[ORDERS_INPUT_PLACED] = IGNORE(RESERVED),
		[ORDERS_INPUT_STOCK_RESERVED] = IGNORE(RESERVED),
		[ORDERS_INPUT_STOCK_REJECTED] = IGNORE(RESERVED),
		[ORDERS_INPUT_PAYMENT_AUTHORIZED] = APPLY(PAID, NO_REASON),
		[ORDERS_INPUT_PAYMENT_DECLINED] = APPLY(CANCELLED, ORDERS_REASON_PAYMENT_DECLINED),
		[ORDERS_INPUT_SHIPMENT_DISPATCHED] = DEFER(RESERVED),
		[ORDERS_INPUT_CANCEL_REQUESTED] = APPLY(CANCELLED, ORDERS_REASON_CUSTOMER_CANCELLED),
		[ORDERS_INPUT_DEADLINE_PASSED] = APPLY(CANCELLED, ORDERS_REASON_TIMEOUT),
		[ORDERS_INPUT_SHIPMENT_CANCELLED] = IGNORE(RESERVED),
		[ORDERS_INPUT_PAID_DEADLINE_PASSED] = IGNORE(RESERVED),
	},
	[PAID] = {
		[ORDERS_INPUT_PLACED] = IGNORE(PAID),
		[ORDERS_INPUT_STOCK_RESERVED] = IGNORE(PAID),
		[ORDERS_INPUT_STOCK_REJECTED] = IGNORE(PAID),
		[ORDERS_INPUT_PAYMENT_AUTHORIZED] = IGNORE(PAID),
		[ORDERS_INPUT_PAYMENT_DECLINED] = IGNORE(PAID),
		[ORDERS_INPUT_SHIPMENT_DISPATCHED] = APPLY(SHIPPED, NO_REASON),
		[ORDERS_INPUT_CANCEL_REQUESTED] = MARK(CUSTOMER),
		[ORDERS_INPUT_DEADLINE_PASSED] = IGNORE(PAID),
		[ORDERS_INPUT_SHIPMENT_CANCELLED] = IGNORE(PAID),
		[ORDERS_INPUT_PAID_DEADLINE_PASSED] = MARK(TIMEOUT),
	},
	[PAID_CR] = {
		[ORDERS_INPUT_PLACED] = IGNORE(PAID),
		[ORDERS_INPUT_STOCK_RESERVED] = IGNORE(PAID),
		[ORDERS_INPUT_STOCK_REJECTED] = IGNORE(PAID),
		[ORDERS_INPUT_PAYMENT_AUTHORIZED] = IGNORE(PAID),
		[ORDERS_INPUT_PAYMENT_DECLINED] = IGNORE(PAID),
		[ORDERS_INPUT_SHIPMENT_DISPATCHED] = APPLY(SHIPPED, NO_REASON),
		[ORDERS_INPUT_CANCEL_REQUESTED] = IGNORE(PAID),
		[ORDERS_INPUT_DEADLINE_PASSED] = IGNORE(PAID),
		[ORDERS_INPUT_SHIPMENT_CANCELLED] = APPLY(CANCELLED, ORDERS_REASON_CUSTOMER_CANCELLED),
		[ORDERS_INPUT_PAID_DEADLINE_PASSED] = MARK(CUSTOMER),
	},
	[SHIPPED] = {
		[ORDERS_INPUT_PLACED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_STOCK_RESERVED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_STOCK_REJECTED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_PAYMENT_AUTHORIZED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_PAYMENT_DECLINED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_SHIPMENT_DISPATCHED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_CANCEL_REQUESTED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_DEADLINE_PASSED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_SHIPMENT_CANCELLED] = IGNORE(SHIPPED),
		[ORDERS_INPUT_PAID_DEADLINE_PASSED] = IGNORE(SHIPPED),
	},
	[CANCELLED] = {
		[ORDERS_INPUT_PLACED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_STOCK_RESERVED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_STOCK_REJECTED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_PAYMENT_AUTHORIZED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_PAYMENT_DECLINED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_SHIPMENT_DISPATCHED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_CANCEL_REQUESTED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_DEADLINE_PASSED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_SHIPMENT_CANCELLED] = IGNORE(CANCELLED),
		[ORDERS_INPUT_PAID_DEADLINE_PASSED] = IGNORE(CANCELLED),
	},
};

/* KIND as it reaches an order in ROW; the paid deadline as the sweeper
 * finds an order that has not moved since (its own requests count). */
static struct orders_input input_of(enum orders_input_kind kind, int row)
{
	struct orders_input in = { .kind = kind, .reason = ORDERS_REASON_NONE };
	if (kind == ORDERS_INPUT_STOCK_REJECTED)
		in.reason = ORDERS_REASON_OUT_OF_STOCK;
	if (kind == ORDERS_INPUT_PAID_DEADLINE_PASSED)
		in.cancel_requests = state_of(row).cancel_requests;
	return in;
}

static const char *reason_or_dash(enum orders_reason r)
{
	return orders_reason_name(r) ? orders_reason_name(r) : "-";
}

/* Checks one cell against the table, naming it when it differs. The mark
 * after the decision is the one before it, or set by a MARK cell, which
 * also counts one more request; the request's reason is the first one. */
static void expect_cell(int row, enum orders_input_kind kind)
{
	struct orders_input in = input_of(kind, row);
	struct orders_decision d = decide(row, &in);
	const struct cell *want = &table[row][kind];
	struct orders_state cur = state_of(row);
	bool want_mark = cur.cancel_requested || want->marks;
	int want_requests = cur.cancel_requests + (want->marks ? 1 : 0);
	enum orders_reason want_why = cur.cancel_requested ? cur.cancel_reason : want->why;
	if (d.cancel_requests != want_requests || d.cancel_reason != want_why)
		fail_msg("%s on %s: got %d requests (%s), want %d (%s)", orders_input_name(kind),
			 row_name(row), d.cancel_requests, reason_or_dash(d.cancel_reason),
			 want_requests, reason_or_dash(want_why));
	if (d.verdict != want->verdict || d.status != want->status || d.reason != want->reason ||
	    d.cancel_requested != want_mark)
		fail_msg("%s on %s: got %s -> %s (%s, mark %d), want %s -> %s (%s, mark %d)",
			 orders_input_name(kind), row_name(row), orders_verdict_name(d.verdict),
			 orders_status_name(d.status), reason_or_dash(d.reason), d.cancel_requested,
			 orders_verdict_name(want->verdict), orders_status_name(want->status),
			 reason_or_dash(want->reason), want_mark);
}

static void expect_row(enum orders_input_kind kind, const int *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect_cell(rows[i], kind);
}

#define EXPECT(kind, ...)                                                                          \
	expect_row((kind), (const int[]){ __VA_ARGS__ },                                           \
		   sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int))

static void every_cell_of_the_transition_table_is_decided_as_specified(void **state)
{
	for (int row = 0; row < ROWS; row++)
		for (int kind = 0; kind < ORDERS_INPUT_COUNT; kind++)
			expect_cell(row, (enum orders_input_kind)kind);
}

static void placing_an_existing_order_again_is_ignored_in_every_status(void **state)
{
	EXPECT(ORDERS_INPUT_PLACED, PENDING, RESERVED, PAID, SHIPPED, CANCELLED);
	assert_int_equal(table[PENDING][ORDERS_INPUT_PLACED].verdict, ORDERS_IGNORE);
}

static void stock_reserved_moves_pending_to_reserved(void **state)
{
	EXPECT(ORDERS_INPUT_STOCK_RESERVED, PENDING);
	assert_int_equal(table[PENDING][ORDERS_INPUT_STOCK_RESERVED].status, RESERVED);
}

static void stock_reserved_after_pending_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_STOCK_RESERVED, RESERVED, PAID, SHIPPED, CANCELLED);
}

static void stock_rejected_cancels_pending_with_its_own_reason(void **state)
{
	struct orders_input in = { .kind = ORDERS_INPUT_STOCK_REJECTED,
				   .reason = ORDERS_REASON_OUT_OF_STOCK };
	struct orders_decision d = decide(PENDING, &in);
	assert_int_equal(d.verdict, ORDERS_APPLY);
	assert_int_equal(d.status, CANCELLED);
	assert_int_equal(d.reason, ORDERS_REASON_OUT_OF_STOCK);

	in.reason = ORDERS_REASON_UNKNOWN_SKU;
	d = decide(PENDING, &in);
	assert_int_equal(d.verdict, ORDERS_APPLY);
	assert_int_equal(d.status, CANCELLED);
	assert_int_equal(d.reason, ORDERS_REASON_UNKNOWN_SKU);
}

static void stock_rejected_after_pending_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_STOCK_REJECTED, RESERVED, PAID, SHIPPED, CANCELLED);
}

static void stock_rejected_without_a_stock_reason_changes_nothing(void **state)
{
	static const enum orders_reason not_stock[] = {
		ORDERS_REASON_NONE,
		ORDERS_REASON_PAYMENT_DECLINED,
		ORDERS_REASON_CUSTOMER_CANCELLED,
		ORDERS_REASON_TIMEOUT,
	};
	for (size_t i = 0; i < sizeof(not_stock) / sizeof(not_stock[0]); i++) {
		struct orders_input in = { .kind = ORDERS_INPUT_STOCK_REJECTED,
					   .reason = not_stock[i] };
		struct orders_decision d = decide(PENDING, &in);
		assert_int_equal(d.verdict, ORDERS_IGNORE);
		assert_int_equal(d.status, PENDING);
	}
}

static void payment_authorized_while_pending_is_deferred(void **state)
{
	EXPECT(ORDERS_INPUT_PAYMENT_AUTHORIZED, PENDING);
	assert_int_equal(table[PENDING][ORDERS_INPUT_PAYMENT_AUTHORIZED].verdict, ORDERS_DEFER);
}

static void payment_authorized_moves_reserved_to_paid(void **state)
{
	EXPECT(ORDERS_INPUT_PAYMENT_AUTHORIZED, RESERVED);
}

static void payment_authorized_after_reserved_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_PAYMENT_AUTHORIZED, PAID, SHIPPED, CANCELLED);
}

static void payment_declined_while_pending_is_deferred(void **state)
{
	EXPECT(ORDERS_INPUT_PAYMENT_DECLINED, PENDING);
}

static void payment_declined_cancels_reserved_as_payment_declined(void **state)
{
	EXPECT(ORDERS_INPUT_PAYMENT_DECLINED, RESERVED);
}

static void payment_declined_after_reserved_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_PAYMENT_DECLINED, PAID, SHIPPED, CANCELLED);
}

static void shipment_dispatched_before_payment_is_deferred(void **state)
{
	EXPECT(ORDERS_INPUT_SHIPMENT_DISPATCHED, PENDING, RESERVED);
}

static void shipment_dispatched_moves_paid_to_shipped(void **state)
{
	EXPECT(ORDERS_INPUT_SHIPMENT_DISPATCHED, PAID);
}

static void shipment_dispatched_again_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_SHIPMENT_DISPATCHED, SHIPPED, CANCELLED);
}

static void cancel_of_pending_or_reserved_order_is_customer_cancelled_at_once(void **state)
{
	EXPECT(ORDERS_INPUT_CANCEL_REQUESTED, PENDING, RESERVED);
	assert_int_equal(table[RESERVED][ORDERS_INPUT_CANCEL_REQUESTED].status, CANCELLED);
}

static void cancel_of_paid_order_only_requests_the_cancellation_and_stays_paid(void **state)
{
	struct orders_input in = input_of(ORDERS_INPUT_CANCEL_REQUESTED, PAID);
	struct orders_decision d = decide(PAID, &in);
	assert_int_equal(d.verdict, ORDERS_APPLY);
	assert_int_equal(d.status, PAID);
	assert_int_equal(d.reason, ORDERS_REASON_NONE);
	assert_true(d.cancel_requested);
}

static void cancel_again_while_a_cancellation_is_requested_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_CANCEL_REQUESTED, PAID_CR);
	assert_int_equal(table[PAID_CR][ORDERS_INPUT_CANCEL_REQUESTED].verdict, ORDERS_IGNORE);
}

static void shipment_cancelled_cancels_a_requested_cancellation_as_customer_cancelled(void **state)
{
	struct orders_input in = input_of(ORDERS_INPUT_SHIPMENT_CANCELLED, PAID_CR);
	struct orders_decision d = decide(PAID_CR, &in);
	assert_int_equal(d.verdict, ORDERS_APPLY);
	assert_int_equal(d.status, CANCELLED);
	assert_int_equal(d.reason, ORDERS_REASON_CUSTOMER_CANCELLED);
}

static void shipment_cancelled_without_a_request_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_SHIPMENT_CANCELLED, PENDING, RESERVED, PAID, SHIPPED, CANCELLED);
}

static void shipment_dispatched_wins_over_a_requested_cancellation(void **state)
{
	EXPECT(ORDERS_INPUT_SHIPMENT_DISPATCHED, PAID_CR);
	assert_int_equal(table[PAID_CR][ORDERS_INPUT_SHIPMENT_DISPATCHED].status, SHIPPED);
}

static void cancel_of_shipped_order_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_CANCEL_REQUESTED, SHIPPED);
}

static void deadline_cancels_pending_and_reserved_orders_as_timeout(void **state)
{
	EXPECT(ORDERS_INPUT_DEADLINE_PASSED, PENDING, RESERVED);
}

static void deadline_after_payment_is_ignored(void **state)
{
	EXPECT(ORDERS_INPUT_DEADLINE_PASSED, PAID, PAID_CR, SHIPPED);
}

static void paid_deadline_asks_shipping_to_cancel_a_paid_order_as_timeout(void **state)
{
	EXPECT(ORDERS_INPUT_PAID_DEADLINE_PASSED, PAID);
	struct orders_state cur = state_of(PAID);
	struct orders_input in = input_of(ORDERS_INPUT_PAID_DEADLINE_PASSED, PAID);
	struct orders_decision d = orders_decide(&cur, &in);
	assert_int_equal(d.verdict, ORDERS_APPLY);
	assert_int_equal(d.status, PAID); /* never cancelled without shipping's answer */
	assert_int_equal(d.reason, ORDERS_REASON_NONE);
	assert_true(d.cancel_requested);
	assert_int_equal(d.cancel_reason, TIMEOUT);
	assert_int_equal(d.cancel_requests, 1);
}

static void paid_deadline_is_ignored_before_payment_and_after_the_end(void **state)
{
	EXPECT(ORDERS_INPUT_PAID_DEADLINE_PASSED, PENDING, RESERVED, SHIPPED, CANCELLED);
}

static void an_unanswered_request_is_asked_again_with_its_reason_up_to_the_last(void **state)
{
	struct orders_state cur = state_of(PAID);
	struct orders_input in = input_of(ORDERS_INPUT_PAID_DEADLINE_PASSED, PAID);
	for (int i = 1; i <= ORDERS_CANCEL_REQUESTS_MAX; i++) {
		struct orders_decision d = orders_decide(&cur, &in);
		assert_int_equal(d.verdict, ORDERS_APPLY);
		assert_int_equal(d.status, PAID);
		assert_int_equal(d.cancel_reason, TIMEOUT);
		assert_int_equal(d.cancel_requests, i);
		cur = (struct orders_state){ .status = d.status,
					     .cancel_requested = d.cancel_requested,
					     .cancel_reason = d.cancel_reason,
					     .cancel_requests = d.cancel_requests };
		in.cancel_requests = cur.cancel_requests;
	}
	/* The last one was sent: only shipping's answer moves it now. */
	assert_int_equal(orders_decide(&cur, &in).verdict, ORDERS_IGNORE);
	struct orders_input answer = input_of(ORDERS_INPUT_SHIPMENT_CANCELLED, PAID);
	struct orders_decision d = orders_decide(&cur, &answer);
	assert_int_equal(d.verdict, ORDERS_APPLY);
	assert_int_equal(d.status, CANCELLED);

	/* A customer's unanswered request is repeated as the customer's. */
	EXPECT(ORDERS_INPUT_PAID_DEADLINE_PASSED, PAID_CR);
}

static void paid_deadline_found_before_the_order_moved_is_ignored(void **state)
{
	/* The sweeper found it unasked; the customer's cancel asked since. */
	struct orders_state cur = state_of(PAID_CR);
	struct orders_input in = input_of(ORDERS_INPUT_PAID_DEADLINE_PASSED, PAID);
	struct orders_decision d = orders_decide(&cur, &in);
	assert_int_equal(d.verdict, ORDERS_IGNORE);
	assert_int_equal(d.cancel_requests, 1);
	assert_int_equal(d.cancel_reason, CUSTOMER);
}

static void shipment_cancelled_after_a_timeout_request_cancels_as_timeout(void **state)
{
	struct orders_state cur = { .status = PAID,
				    .cancel_requested = true,
				    .cancel_reason = TIMEOUT,
				    .cancel_requests = 2 };
	struct orders_input in = input_of(ORDERS_INPUT_SHIPMENT_CANCELLED, PAID);
	struct orders_decision d = orders_decide(&cur, &in);
	assert_int_equal(d.verdict, ORDERS_APPLY);
	assert_int_equal(d.status, CANCELLED);
	assert_int_equal(d.reason, TIMEOUT);
	/* And a customer's cancel meanwhile asks nothing more. */
	in = input_of(ORDERS_INPUT_CANCEL_REQUESTED, PAID);
	assert_int_equal(orders_decide(&cur, &in).verdict, ORDERS_IGNORE);
}

static void anything_on_cancelled_is_ignored(void **state)
{
	for (int kind = 0; kind < ORDERS_INPUT_COUNT; kind++) {
		struct orders_input in = input_of((enum orders_input_kind)kind, CANCELLED);
		struct orders_decision d = decide(CANCELLED, &in);
		assert_int_equal(d.verdict, ORDERS_IGNORE);
		assert_int_equal(d.status, CANCELLED);
	}
}

static void anything_on_shipped_is_ignored(void **state)
{
	for (int kind = 0; kind < ORDERS_INPUT_COUNT; kind++) {
		struct orders_input in = input_of((enum orders_input_kind)kind, SHIPPED);
		assert_int_equal(decide(SHIPPED, &in).verdict, ORDERS_IGNORE);
	}
}

static void an_applied_decision_moves_forward_and_has_a_reason_exactly_when_cancelled(void **state)
{
	for (int row = 0; row < ROWS; row++) {
		struct orders_state cur = state_of(row);
		for (int kind = 0; kind < ORDERS_INPUT_COUNT; kind++) {
			struct orders_input in = input_of((enum orders_input_kind)kind, row);
			struct orders_decision d = orders_decide(&cur, &in);
			/* The mark is never cleared, and set only on PAID. */
			assert_true(d.cancel_requested || !cur.cancel_requested);
			assert_true(!d.cancel_requested || cur.cancel_requested ||
				    d.status == PAID);
			/* Requests only grow, one at a time, bounded; a request
			 * has its reason. */
			assert_true(d.cancel_requests == cur.cancel_requests ||
				    d.cancel_requests == cur.cancel_requests + 1);
			assert_true(d.cancel_requests <= ORDERS_CANCEL_REQUESTS_MAX);
			assert_int_equal(d.cancel_requested, d.cancel_requests > 0);
			assert_int_equal(d.cancel_requested, d.cancel_reason != ORDERS_REASON_NONE);
			if (d.verdict != ORDERS_APPLY) {
				assert_int_equal(d.status, cur.status);
				assert_int_equal(d.cancel_requested, cur.cancel_requested);
				assert_int_equal(d.cancel_requests, cur.cancel_requests);
				continue;
			}
			assert_int_not_equal(cur.status, CANCELLED);
			assert_int_not_equal(cur.status, SHIPPED);
			/* Forward: a later status, or the same one asked (again). */
			assert_true(d.status == CANCELLED || (int)d.status == (int)cur.status + 1 ||
				    (d.status == cur.status &&
				     d.cancel_requests == cur.cancel_requests + 1));
			assert_int_equal(d.status == CANCELLED, d.reason != ORDERS_REASON_NONE);
		}
	}
}

/* A payment for another amount or currency than the order's total is no
 * payment of this order: refused in every state that knows the total, and
 * nothing moves. The same payment for the total is decided as the table
 * says; before the total is known (PENDING) it waits, as the table says. */
static void a_payment_for_another_amount_or_currency_is_rejected_wherever_the_total_is_known(
	void **state)
{
	const struct {
		int64_t cents;
		const char *currency;
	} wrong[] = { { 2598, "EUR" }, { 2600, "EUR" }, { 0, "EUR" }, { 2599, "USD" } };
	for (int row = 0; row < ROWS; row++) {
		struct orders_state cur = state_of(row);
		cur.has_total = row != PENDING;
		cur.total_cents = 2599;
		cur.currency = "EUR";
		struct orders_input right = input_of(ORDERS_INPUT_PAYMENT_AUTHORIZED, row);
		right.has_amount = true;
		right.amount_cents = 2599;
		right.currency = "EUR";
		struct orders_decision want = decide(row, &right);
		struct orders_decision d = orders_decide(&cur, &right);
		assert_int_equal(d.verdict, want.verdict);
		assert_int_equal(d.status, want.status);
		for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
			struct orders_input in = right;
			in.amount_cents = wrong[i].cents;
			in.currency = wrong[i].currency;
			d = orders_decide(&cur, &in);
			if (row == PENDING) {
				assert_int_equal(d.verdict, ORDERS_DEFER);
				continue;
			}
			if (d.verdict != ORDERS_REJECT)
				fail_msg("%s, paid %lld %s for 2599 EUR: %s, not reject",
					 row_name(row), (long long)wrong[i].cents,
					 wrong[i].currency, orders_verdict_name(d.verdict));
			assert_int_equal(d.status, cur.status);
			assert_int_equal(d.cancel_requested, cur.cancel_requested);
			assert_int_equal(d.cancel_requests, cur.cancel_requests);
		}
	}
	/* Every other input carries no amount and is never rejected. */
	for (int row = 0; row < ROWS; row++) {
		struct orders_state cur = state_of(row);
		cur.has_total = true;
		cur.total_cents = 2599;
		cur.currency = "EUR";
		for (int kind = 0; kind < ORDERS_INPUT_COUNT; kind++) {
			struct orders_input in = input_of((enum orders_input_kind)kind, row);
			assert_int_not_equal(orders_decide(&cur, &in).verdict, ORDERS_REJECT);
		}
	}
}

static void status_and_reason_names_round_trip(void **state)
{
	for (int i = 0; i < ORDERS_STATUS_COUNT; i++) {
		enum orders_status st = PENDING;
		assert_int_equal(orders_status_parse(orders_status_name((enum orders_status)i),
						     &st),
				 SHOP_OK);
		assert_int_equal(st, i);
	}
	for (int i = 1; i < ORDERS_REASON_COUNT; i++) {
		enum orders_reason r = ORDERS_REASON_NONE;
		assert_int_equal(orders_reason_parse(orders_reason_name((enum orders_reason)i), &r),
				 SHOP_OK);
		assert_int_equal(r, i);
	}
	assert_string_equal(orders_status_name(RESERVED), "RESERVED");
	assert_string_equal(orders_reason_name(ORDERS_REASON_CUSTOMER_CANCELLED),
			    "customer_cancelled");
	assert_null(orders_reason_name(ORDERS_REASON_NONE));
}

static void unknown_names_are_invalid_and_leave_the_output_alone(void **state)
{
	enum orders_status st = PAID;
	enum orders_reason r = ORDERS_REASON_TIMEOUT;
	assert_int_equal(orders_status_parse("pending", &st), SHOP_E_INVALID);
	assert_int_equal(orders_status_parse("", &st), SHOP_E_INVALID);
	assert_int_equal(orders_status_parse(NULL, &st), SHOP_E_INVALID);
	assert_int_equal(st, PAID);
	assert_int_equal(orders_reason_parse("card_declined", &r), SHOP_E_INVALID);
	assert_int_equal(orders_reason_parse(NULL, &r), SHOP_E_INVALID);
	assert_int_equal(r, ORDERS_REASON_TIMEOUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_cell_of_the_transition_table_is_decided_as_specified),
		cmocka_unit_test(placing_an_existing_order_again_is_ignored_in_every_status),
		cmocka_unit_test(stock_reserved_moves_pending_to_reserved),
		cmocka_unit_test(stock_reserved_after_pending_is_ignored),
		cmocka_unit_test(stock_rejected_cancels_pending_with_its_own_reason),
		cmocka_unit_test(stock_rejected_after_pending_is_ignored),
		cmocka_unit_test(stock_rejected_without_a_stock_reason_changes_nothing),
		cmocka_unit_test(payment_authorized_while_pending_is_deferred),
		cmocka_unit_test(payment_authorized_moves_reserved_to_paid),
		cmocka_unit_test(payment_authorized_after_reserved_is_ignored),
		cmocka_unit_test(payment_declined_while_pending_is_deferred),
		cmocka_unit_test(payment_declined_cancels_reserved_as_payment_declined),
		cmocka_unit_test(payment_declined_after_reserved_is_ignored),
		cmocka_unit_test(shipment_dispatched_before_payment_is_deferred),
		cmocka_unit_test(shipment_dispatched_moves_paid_to_shipped),
		cmocka_unit_test(shipment_dispatched_again_is_ignored),
		cmocka_unit_test(cancel_of_pending_or_reserved_order_is_customer_cancelled_at_once),
		cmocka_unit_test(
			cancel_of_paid_order_only_requests_the_cancellation_and_stays_paid),
		cmocka_unit_test(cancel_again_while_a_cancellation_is_requested_is_ignored),
		cmocka_unit_test(
			shipment_cancelled_cancels_a_requested_cancellation_as_customer_cancelled),
		cmocka_unit_test(shipment_cancelled_without_a_request_is_ignored),
		cmocka_unit_test(shipment_dispatched_wins_over_a_requested_cancellation),
		cmocka_unit_test(cancel_of_shipped_order_is_ignored),
		cmocka_unit_test(deadline_cancels_pending_and_reserved_orders_as_timeout),
		cmocka_unit_test(deadline_after_payment_is_ignored),
		cmocka_unit_test(paid_deadline_asks_shipping_to_cancel_a_paid_order_as_timeout),
		cmocka_unit_test(paid_deadline_is_ignored_before_payment_and_after_the_end),
		cmocka_unit_test(
			an_unanswered_request_is_asked_again_with_its_reason_up_to_the_last),
		cmocka_unit_test(paid_deadline_found_before_the_order_moved_is_ignored),
		cmocka_unit_test(shipment_cancelled_after_a_timeout_request_cancels_as_timeout),
		cmocka_unit_test(anything_on_cancelled_is_ignored),
		cmocka_unit_test(anything_on_shipped_is_ignored),
		cmocka_unit_test(
			an_applied_decision_moves_forward_and_has_a_reason_exactly_when_cancelled),
		cmocka_unit_test(
			a_payment_for_another_amount_or_currency_is_rejected_wherever_the_total_is_known),
		cmocka_unit_test(status_and_reason_names_round_trip),
		cmocka_unit_test(unknown_names_are_invalid_and_leave_the_output_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
