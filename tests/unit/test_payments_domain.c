/* test_payments_domain.c - the payment state machine: every (status,
 * message) pair, status names, charge outcomes. Pure: no database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/payments/payments_domain.h"

#include <stdbool.h>

/* The whole table, written out: one row per (message, row exists, status,
 * and for NEW which of the two facts it holds: the card, the total). */
struct decision_case {
	enum payments_event ev;
	bool exists;
	enum payments_status st;
	bool card, reservation;
	enum payments_action want;
};

#define NEW_WITH(card, res) PAYMENTS_NEW, card, res
#define NOT_NEW(st) st, false, false

static const struct decision_case decision_table[] = {
	/* SubmitCard: recorded first, charges second, a redelivery is a no-op. */
	{ PAYMENTS_EV_CARD_SUBMITTED, false, NEW_WITH(false, false), PAYMENTS_ACT_CREATE },
	{ PAYMENTS_EV_CARD_SUBMITTED, true, NEW_WITH(false, false), PAYMENTS_ACT_RECORD },
	{ PAYMENTS_EV_CARD_SUBMITTED, true, NEW_WITH(false, true), PAYMENTS_ACT_CHARGE },
	{ PAYMENTS_EV_CARD_SUBMITTED, true, NEW_WITH(true, false), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CARD_SUBMITTED, true, NEW_WITH(true, true), PAYMENTS_ACT_CHARGE },
	{ PAYMENTS_EV_CARD_SUBMITTED, true, NOT_NEW(PAYMENTS_CHARGED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CARD_SUBMITTED, true, NOT_NEW(PAYMENTS_DECLINED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CARD_SUBMITTED, true, NOT_NEW(PAYMENTS_CANCELLED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CARD_SUBMITTED, true, NOT_NEW(PAYMENTS_REFUNDED), PAYMENTS_ACT_NONE },
	/* StockReserved: the same, with the total as its fact. */
	{ PAYMENTS_EV_STOCK_RESERVED, false, NEW_WITH(false, false), PAYMENTS_ACT_CREATE },
	{ PAYMENTS_EV_STOCK_RESERVED, true, NEW_WITH(false, false), PAYMENTS_ACT_RECORD },
	{ PAYMENTS_EV_STOCK_RESERVED, true, NEW_WITH(false, true), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_STOCK_RESERVED, true, NEW_WITH(true, false), PAYMENTS_ACT_CHARGE },
	{ PAYMENTS_EV_STOCK_RESERVED, true, NEW_WITH(true, true), PAYMENTS_ACT_CHARGE },
	{ PAYMENTS_EV_STOCK_RESERVED, true, NOT_NEW(PAYMENTS_CHARGED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_STOCK_RESERVED, true, NOT_NEW(PAYMENTS_DECLINED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_STOCK_RESERVED, true, NOT_NEW(PAYMENTS_CANCELLED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_STOCK_RESERVED, true, NOT_NEW(PAYMENTS_REFUNDED), PAYMENTS_ACT_NONE },
	/* OrderCancelled refunds a charge, cancels a NEW payment whatever it
	 * holds, remembers an unknown order, and leaves final states alone. */
	{ PAYMENTS_EV_ORDER_CANCELLED, false, NEW_WITH(false, false), PAYMENTS_ACT_TOMBSTONE },
	{ PAYMENTS_EV_ORDER_CANCELLED, true, NEW_WITH(false, false), PAYMENTS_ACT_CANCEL },
	{ PAYMENTS_EV_ORDER_CANCELLED, true, NEW_WITH(false, true), PAYMENTS_ACT_CANCEL },
	{ PAYMENTS_EV_ORDER_CANCELLED, true, NEW_WITH(true, false), PAYMENTS_ACT_CANCEL },
	{ PAYMENTS_EV_ORDER_CANCELLED, true, NEW_WITH(true, true), PAYMENTS_ACT_CANCEL },
	{ PAYMENTS_EV_ORDER_CANCELLED, true, NOT_NEW(PAYMENTS_CHARGED), PAYMENTS_ACT_REFUND },
	{ PAYMENTS_EV_ORDER_CANCELLED, true, NOT_NEW(PAYMENTS_DECLINED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_ORDER_CANCELLED, true, NOT_NEW(PAYMENTS_CANCELLED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_ORDER_CANCELLED, true, NOT_NEW(PAYMENTS_REFUNDED), PAYMENTS_ACT_NONE },
	/* An open ledger charge is given back only for a cancelled payment. */
	{ PAYMENTS_EV_CHARGE_FOUND, false, NEW_WITH(false, false), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CHARGE_FOUND, true, NEW_WITH(false, false), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CHARGE_FOUND, true, NEW_WITH(false, true), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CHARGE_FOUND, true, NEW_WITH(true, false), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CHARGE_FOUND, true, NEW_WITH(true, true), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CHARGE_FOUND, true, NOT_NEW(PAYMENTS_CHARGED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CHARGE_FOUND, true, NOT_NEW(PAYMENTS_DECLINED), PAYMENTS_ACT_NONE },
	{ PAYMENTS_EV_CHARGE_FOUND, true, NOT_NEW(PAYMENTS_CANCELLED), PAYMENTS_ACT_REFUND_FOUND },
	{ PAYMENTS_EV_CHARGE_FOUND, true, NOT_NEW(PAYMENTS_REFUNDED), PAYMENTS_ACT_NONE },
};

static enum payments_action decide(enum payments_event ev, bool exists, enum payments_status st,
				   bool card, bool reservation)
{
	struct payments_facts f = { exists, st, card, reservation };
	return payments_decide(ev, &f);
}

static void every_status_and_message_pair_has_the_designed_decision(void **state)
{
	size_t n = sizeof(decision_table) / sizeof(decision_table[0]);
	/* Every message once without a row, once per status with one, and NEW
	 * with each of the four combinations of the two facts. */
	assert_int_equal(n, PAYMENTS_EVENT_COUNT * (1 + PAYMENTS_STATUS_COUNT - 1 + 4));
	for (size_t i = 0; i < n; i++) {
		const struct decision_case *c = &decision_table[i];
		enum payments_action got = decide(c->ev, c->exists, c->st, c->card, c->reservation);
		if (got != c->want)
			fail_msg("case %zu (event %d, exists %d, %s, card %d, total %d): got action "
				 "%d, want %d",
				 i, (int)c->ev, (int)c->exists, payments_status_name(c->st),
				 (int)c->card, (int)c->reservation, (int)got, (int)c->want);
	}
}

static void a_missing_row_ignores_whatever_status_is_passed(void **state)
{
	for (int s = 0; s < PAYMENTS_STATUS_COUNT; s++) {
		enum payments_status st = (enum payments_status)s;
		assert_int_equal(decide(PAYMENTS_EV_CARD_SUBMITTED, false, st, true, true),
				 PAYMENTS_ACT_CREATE);
		assert_int_equal(decide(PAYMENTS_EV_STOCK_RESERVED, false, st, true, true),
				 PAYMENTS_ACT_CREATE);
		assert_int_equal(decide(PAYMENTS_EV_ORDER_CANCELLED, false, st, true, true),
				 PAYMENTS_ACT_TOMBSTONE);
	}
}

static void only_a_new_payment_is_ever_charged(void **state)
{
	for (int s = 0; s < PAYMENTS_STATUS_COUNT; s++) {
		enum payments_status st = (enum payments_status)s;
		for (int e = 0; e < PAYMENTS_EVENT_COUNT; e++) {
			for (int facts = 0; facts < 4; facts++) {
				enum payments_action a = decide((enum payments_event)e, true, st,
								facts & 1, facts & 2);
				if (a == PAYMENTS_ACT_CHARGE)
					assert_int_equal(st, PAYMENTS_NEW);
				if (a == PAYMENTS_ACT_REFUND)
					assert_int_equal(st, PAYMENTS_CHARGED);
			}
		}
	}
}

static void status_names_round_trip(void **state)
{
	for (int s = 0; s < PAYMENTS_STATUS_COUNT; s++) {
		enum payments_status parsed = PAYMENTS_REFUNDED;
		const char *name = payments_status_name((enum payments_status)s);
		assert_int_equal(payments_status_parse(name, &parsed), SHOP_OK);
		assert_int_equal(parsed, s);
	}
	assert_string_equal(payments_status_name(PAYMENTS_CHARGED), "CHARGED");
}

static void unknown_status_strings_are_refused(void **state)
{
	enum payments_status st = PAYMENTS_NEW;
	assert_int_equal(payments_status_parse("charged", &st), SHOP_E_INVALID);
	assert_int_equal(payments_status_parse("", &st), SHOP_E_INVALID);
	assert_int_equal(payments_status_parse(NULL, &st), SHOP_E_INVALID);
	assert_int_equal(st, PAYMENTS_NEW); /* ret_ untouched on failure */
}

static void approval_charges_decline_declines_and_a_transient_failure_retries(void **state)
{
	enum payments_status st = PAYMENTS_NEW;
	assert_int_equal(payments_status_after_charge(PAYMENTS_CHARGE_APPROVED, &st), SHOP_OK);
	assert_int_equal(st, PAYMENTS_CHARGED);
	assert_int_equal(payments_status_after_charge(PAYMENTS_CHARGE_DECLINED, &st), SHOP_OK);
	assert_int_equal(st, PAYMENTS_DECLINED);
	st = PAYMENTS_NEW;
	assert_int_equal(payments_status_after_charge(PAYMENTS_CHARGE_TRANSIENT, &st),
			 SHOP_E_UNAVAILABLE);
	assert_int_equal(st, PAYMENTS_NEW);
}

static void negative_totals_cannot_be_charged(void **state)
{
	assert_true(payments_amount_valid(0));
	assert_true(payments_amount_valid(12345));
	assert_false(payments_amount_valid(-1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_status_and_message_pair_has_the_designed_decision),
		cmocka_unit_test(a_missing_row_ignores_whatever_status_is_passed),
		cmocka_unit_test(only_a_new_payment_is_ever_charged),
		cmocka_unit_test(status_names_round_trip),
		cmocka_unit_test(unknown_status_strings_are_refused),
		cmocka_unit_test(approval_charges_decline_declines_and_a_transient_failure_retries),
		cmocka_unit_test(negative_totals_cannot_be_charged),
	};
	return cmocka_run_group_tests_name("payments_domain", tests, NULL, NULL);
}
