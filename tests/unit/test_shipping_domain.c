/*
 * test_shipping_domain.c - shipping's decisions, without a database.
 *
 * Every shipment state against PaymentAuthorized, OrderCancelled and the
 * dispatcher's due check; the sentences name the rules of
 * services/shipping/shipping_domain.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../services/shipping/shipping_domain.h"

static void payment_without_an_address_waits_for_it(void **state)
{
	assert_int_equal(shipping_decide_schedule(SHIPPING_STATE_NONE, false),
			 SHIPPING_SCHEDULE_WAIT_ADDRESS);
}

static void payment_with_an_address_and_no_shipment_schedules_one(void **state)
{
	assert_int_equal(shipping_decide_schedule(SHIPPING_STATE_NONE, true),
			 SHIPPING_SCHEDULE_CREATE);
}

static void payment_for_a_cancelled_order_schedules_nothing_even_without_address(void **state)
{
	assert_int_equal(shipping_decide_schedule(SHIPPING_STATE_VOIDED, false),
			 SHIPPING_SCHEDULE_SKIP_CANCELLED);
	assert_int_equal(shipping_decide_schedule(SHIPPING_STATE_VOIDED, true),
			 SHIPPING_SCHEDULE_SKIP_CANCELLED);
	assert_int_equal(shipping_decide_schedule(SHIPPING_STATE_CANCELLED, true),
			 SHIPPING_SCHEDULE_SKIP_CANCELLED);
}

static void payment_for_an_existing_shipment_is_a_duplicate(void **state)
{
	assert_int_equal(shipping_decide_schedule(SHIPPING_STATE_SCHEDULED, true),
			 SHIPPING_SCHEDULE_SKIP_EXISTS);
	assert_int_equal(shipping_decide_schedule(SHIPPING_STATE_DISPATCHED, true),
			 SHIPPING_SCHEDULE_SKIP_EXISTS);
}

static void cancel_decisions_follow_the_state_machine(void **state)
{
	assert_int_equal(shipping_decide_cancel(SHIPPING_STATE_NONE), SHIPPING_CANCEL_REMEMBER);
	assert_int_equal(shipping_decide_cancel(SHIPPING_STATE_SCHEDULED),
			 SHIPPING_CANCEL_SHIPMENT);
	assert_int_equal(shipping_decide_cancel(SHIPPING_STATE_DISPATCHED),
			 SHIPPING_CANCEL_TOO_LATE);
	assert_int_equal(shipping_decide_cancel(SHIPPING_STATE_CANCELLED), SHIPPING_CANCEL_ALREADY);
	assert_int_equal(shipping_decide_cancel(SHIPPING_STATE_VOIDED), SHIPPING_CANCEL_ALREADY);
}

static void only_scheduled_shipments_at_or_past_their_time_are_due(void **state)
{
	assert_true(shipping_dispatch_is_due(SHIPPING_STATE_SCHEDULED, 1000, 1000));
	assert_true(shipping_dispatch_is_due(SHIPPING_STATE_SCHEDULED, 1000, 5000));
	assert_false(shipping_dispatch_is_due(SHIPPING_STATE_SCHEDULED, 1000, 999));
	assert_false(shipping_dispatch_is_due(SHIPPING_STATE_DISPATCHED, 1000, 5000));
	assert_false(shipping_dispatch_is_due(SHIPPING_STATE_CANCELLED, 1000, 5000));
	assert_false(shipping_dispatch_is_due(SHIPPING_STATE_VOIDED, 0, 5000));
}

static void dispatch_time_adds_the_delay_and_saturates(void **state)
{
	assert_int_equal(shipping_dispatch_at(1000, 2000), 3000);
	assert_int_equal(shipping_dispatch_at(1000, 0), 1000);
	assert_int_equal(shipping_dispatch_at(1000, -5), 1000);
	assert_true(shipping_dispatch_at(INT64_MAX - 10, 2000) == INT64_MAX);
}

static void state_names_round_trip_and_unknown_text_is_rejected(void **state)
{
	const enum shipping_state all[] = { SHIPPING_STATE_SCHEDULED, SHIPPING_STATE_DISPATCHED,
					    SHIPPING_STATE_CANCELLED, SHIPPING_STATE_VOIDED };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		enum shipping_state back = SHIPPING_STATE_NONE;
		assert_int_equal(shipping_state_parse(shipping_state_name(all[i]), &back), SHOP_OK);
		assert_int_equal(back, all[i]);
	}
	enum shipping_state untouched = SHIPPING_STATE_SCHEDULED;
	assert_null(shipping_state_name(SHIPPING_STATE_NONE));
	assert_int_equal(shipping_state_parse("scheduled", &untouched), SHOP_E_INVALID);
	assert_int_equal(shipping_state_parse(NULL, &untouched), SHOP_E_INVALID);
	assert_int_equal(untouched, SHIPPING_STATE_SCHEDULED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(payment_without_an_address_waits_for_it),
		cmocka_unit_test(payment_with_an_address_and_no_shipment_schedules_one),
		cmocka_unit_test(
			payment_for_a_cancelled_order_schedules_nothing_even_without_address),
		cmocka_unit_test(payment_for_an_existing_shipment_is_a_duplicate),
		cmocka_unit_test(cancel_decisions_follow_the_state_machine),
		cmocka_unit_test(only_scheduled_shipments_at_or_past_their_time_are_due),
		cmocka_unit_test(dispatch_time_adds_the_delay_and_saturates),
		cmocka_unit_test(state_names_round_trip_and_unknown_text_is_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
