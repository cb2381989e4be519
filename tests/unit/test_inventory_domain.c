/* test_inventory_domain.c - unit tests of the inventory's pure decisions:
 * line merging and ordering, totals and their ceiling, splitting lines for
 * events, and the reservation state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../services/inventory/inventory_domain.h"
#include "inventory_harness.h" /* line() */

static void lines_are_merged_by_sku_and_sorted(void **state)
{
	struct inventory_line in[] = { line("SKU-MOUSE", 2), line("SKU-CABLE", 1),
				       line("SKU-MOUSE", 3), line("SKU-A", 7),
				       line("SKU-CABLE", 4) };
	struct inventory_line out[INVENTORY_LINES_MAX];
	size_t n = 0;
	assert_int_equal(inventory_lines_normalize(in, 5, out, &n), SHOP_OK);
	assert_int_equal(n, 3);
	assert_string_equal(out[0].sku, "SKU-A");
	assert_int_equal(out[0].quantity, 7);
	assert_string_equal(out[1].sku, "SKU-CABLE");
	assert_int_equal(out[1].quantity, 5);
	assert_string_equal(out[2].sku, "SKU-MOUSE");
	assert_int_equal(out[2].quantity, 5);
}

static void merged_quantities_may_exceed_one_lines_limit(void **state)
{
	struct inventory_line in[] = { line("SKU-CABLE", INVENTORY_LINE_QUANTITY_MAX),
				       line("SKU-CABLE", INVENTORY_LINE_QUANTITY_MAX) };
	struct inventory_line out[INVENTORY_LINES_MAX];
	size_t n = 0;
	assert_int_equal(inventory_lines_normalize(in, 2, out, &n), SHOP_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].quantity, 2 * INVENTORY_LINE_QUANTITY_MAX);
}

static void an_order_without_lines_is_invalid(void **state)
{
	struct inventory_line out[INVENTORY_LINES_MAX];
	size_t n = 99;
	assert_int_equal(inventory_lines_normalize(NULL, 0, out, &n), SHOP_E_INVALID);
	assert_int_equal(n, 99);
}

static void a_line_with_no_sku_or_no_quantity_is_invalid(void **state)
{
	struct inventory_line out[INVENTORY_LINES_MAX];
	size_t n = 0;
	struct inventory_line empty[] = { line("", 1) };
	struct inventory_line zero[] = { line("SKU-CABLE", 0) };
	struct inventory_line negative[] = { line("SKU-CABLE", -3) };
	assert_int_equal(inventory_lines_normalize(empty, 1, out, &n), SHOP_E_INVALID);
	assert_int_equal(inventory_lines_normalize(zero, 1, out, &n), SHOP_E_INVALID);
	assert_int_equal(inventory_lines_normalize(negative, 1, out, &n), SHOP_E_INVALID);
}

static void an_unterminated_sku_is_invalid(void **state)
{
	struct inventory_line in[1];
	struct inventory_line out[INVENTORY_LINES_MAX];
	size_t n = 0;
	memset(in[0].sku, 'A', sizeof(in[0].sku));
	in[0].quantity = 1;
	assert_int_equal(inventory_lines_normalize(in, 1, out, &n), SHOP_E_INVALID);
}

static void too_many_lines_or_too_many_units_are_over_the_limit(void **state)
{
	struct inventory_line in[INVENTORY_LINES_MAX + 1];
	struct inventory_line out[INVENTORY_LINES_MAX];
	size_t n = 0;
	for (size_t i = 0; i < INVENTORY_LINES_MAX + 1; i++)
		in[i] = line("SKU-CABLE", 1);
	assert_int_equal(inventory_lines_normalize(in, INVENTORY_LINES_MAX + 1, out, &n),
			 SHOP_E_LIMIT);
	assert_int_equal(inventory_lines_normalize(in, INVENTORY_LINES_MAX, out, &n), SHOP_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].quantity, INVENTORY_LINES_MAX);

	struct inventory_line big[] = { line("SKU-CABLE", INVENTORY_LINE_QUANTITY_MAX + 1) };
	assert_int_equal(inventory_lines_normalize(big, 1, out, &n), SHOP_E_LIMIT);
}

static struct inventory_priced_line priced(const char *sku, int64_t quantity, int64_t price)
{
	struct inventory_priced_line l;
	memset(&l, 0, sizeof(l));
	snprintf(l.sku, sizeof(l.sku), "%s", sku);
	l.quantity = quantity;
	l.unit_price_cents = price;
	return l;
}

static void total_is_the_sum_of_quantity_times_unit_price(void **state)
{
	struct inventory_priced_line lines[] = { priced("SKU-CABLE", 3, 990),
						 priced("SKU-MOUSE", 2, 2900) };
	int64_t total = -1;
	assert_int_equal(inventory_total_cents(lines, 2, &total), SHOP_OK);
	assert_int_equal(total, 3 * 990 + 2 * 2900);
	assert_int_equal(inventory_total_cents(lines, 0, &total), SHOP_OK);
	assert_int_equal(total, 0);
}

static void total_above_what_an_event_carries_is_refused_without_overflow(void **state)
{
	struct inventory_priced_line at[] = { priced("SKU-A", 1, INVENTORY_TOTAL_MAX_CENTS) };
	struct inventory_priced_line above[] = { priced("SKU-A", 1, INVENTORY_TOTAL_MAX_CENTS),
						 priced("SKU-B", 1, 1) };
	struct inventory_priced_line overflow_mul[] = { priced("SKU-A", INT64_MAX / 2, 3) };
	struct inventory_priced_line overflow_add[] = { priced("SKU-A", 1, INT64_MAX),
							priced("SKU-B", 1, INT64_MAX) };
	int64_t total = -1;
	assert_int_equal(inventory_total_cents(at, 1, &total), SHOP_OK);
	assert_int_equal(total, INVENTORY_TOTAL_MAX_CENTS);
	total = -1;
	assert_int_equal(inventory_total_cents(above, 2, &total), SHOP_E_LIMIT);
	assert_int_equal(inventory_total_cents(overflow_mul, 1, &total), SHOP_E_LIMIT);
	assert_int_equal(inventory_total_cents(overflow_add, 2, &total), SHOP_E_LIMIT);
	assert_int_equal(total, -1);
}

/* $defs/cents in contracts/schemas/common.v1.json: the highest unit price. */
#define UNIT_PRICE_MAX_CENTS 100000000LL

static void the_largest_valid_order_at_the_highest_valid_price_has_a_total(void **state)
{
	/* 50 lines of 1000 keyboards at 89.00 EUR: 4 450 000 EUR, above the
	 * unit price ceiling, far below the total one. */
	struct inventory_priced_line keyboards[INVENTORY_LINES_MAX];
	struct inventory_priced_line dearest[INVENTORY_LINES_MAX];
	for (size_t i = 0; i < INVENTORY_LINES_MAX; i++) {
		keyboards[i] = priced("SKU-KEYBOARD", INVENTORY_LINE_QUANTITY_MAX, 8900);
		dearest[i] = priced("SKU-A", INVENTORY_LINE_QUANTITY_MAX, UNIT_PRICE_MAX_CENTS);
	}
	int64_t total = -1;
	assert_int_equal(inventory_total_cents(keyboards, INVENTORY_LINES_MAX, &total), SHOP_OK);
	assert_int_equal(total, 445000000LL);
	/* Every bound of the contract at once lands exactly on the ceiling. */
	total = -1;
	assert_int_equal(inventory_total_cents(dearest, INVENTORY_LINES_MAX, &total), SHOP_OK);
	assert_int_equal(total, INVENTORY_TOTAL_MAX_CENTS);
	assert_int_equal(INVENTORY_TOTAL_MAX_CENTS,
			 INVENTORY_LINES_MAX * INVENTORY_LINE_QUANTITY_MAX * UNIT_PRICE_MAX_CENTS);
}

static void a_negative_price_or_quantity_is_invalid_in_a_total(void **state)
{
	struct inventory_priced_line price[] = { priced("SKU-A", 1, -1) };
	struct inventory_priced_line quantity[] = { priced("SKU-A", -1, 1) };
	int64_t total = 0;
	assert_int_equal(inventory_total_cents(price, 1, &total), SHOP_E_INVALID);
	assert_int_equal(inventory_total_cents(quantity, 1, &total), SHOP_E_INVALID);
}

static void split_keeps_every_line_within_the_limit_and_the_total_unchanged(void **state)
{
	struct inventory_priced_line in[] = { priced("SKU-A", 2500, 10), priced("SKU-B", 7, 20),
					      priced("SKU-C", 1000, 30) };
	struct inventory_priced_line out[INVENTORY_LINES_MAX];
	size_t n = 0;
	int64_t before = 0, after = 0;
	assert_int_equal(inventory_lines_split(in, 3, out, INVENTORY_LINES_MAX, &n), SHOP_OK);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		assert_true(out[i].quantity >= 1);
		assert_true(out[i].quantity <= INVENTORY_LINE_QUANTITY_MAX);
	}
	assert_string_equal(out[2].sku, "SKU-A");
	assert_int_equal(out[2].quantity, 500);
	assert_string_equal(out[3].sku, "SKU-B");
	assert_int_equal(inventory_total_cents(in, 3, &before), SHOP_OK);
	assert_int_equal(inventory_total_cents(out, n, &after), SHOP_OK);
	assert_int_equal(before, after);
	assert_int_equal(inventory_lines_split(in, 3, out, 4, &n), SHOP_E_LIMIT);
}

static void split_of_merged_lines_never_needs_more_lines_than_the_order_had(void **state)
{
	struct inventory_line in[INVENTORY_LINES_MAX];
	struct inventory_line merged[INVENTORY_LINES_MAX];
	struct inventory_priced_line p[INVENTORY_LINES_MAX], out[INVENTORY_LINES_MAX];
	size_t n = 0, m = 0;
	/* The worst case: every line full, many of one SKU. */
	for (size_t i = 0; i < INVENTORY_LINES_MAX; i++)
		in[i] = line(i % 3 ? "SKU-A" : "SKU-B", INVENTORY_LINE_QUANTITY_MAX - (i % 2));
	assert_int_equal(inventory_lines_normalize(in, INVENTORY_LINES_MAX, merged, &n), SHOP_OK);
	for (size_t i = 0; i < n; i++)
		p[i] = priced(merged[i].sku, merged[i].quantity, 1);
	assert_int_equal(inventory_lines_split(p, n, out, INVENTORY_LINES_MAX, &m), SHOP_OK);
	assert_true(m <= INVENTORY_LINES_MAX);
}

static void cancel_releases_only_a_held_reservation_and_remembers_an_unseen_order(void **state)
{
	assert_int_equal(inventory_on_cancel(INVENTORY_STATUS_NONE), INVENTORY_CANCEL_TOMBSTONE);
	assert_int_equal(inventory_on_cancel(INVENTORY_STATUS_RESERVED), INVENTORY_CANCEL_RELEASE);
	assert_int_equal(inventory_on_cancel(INVENTORY_STATUS_RELEASED), INVENTORY_CANCEL_IGNORE);
	assert_int_equal(inventory_on_cancel(INVENTORY_STATUS_REJECTED), INVENTORY_CANCEL_IGNORE);
	assert_int_equal(inventory_on_cancel(INVENTORY_STATUS_CANCELLED_BEFORE_PLACED),
			 INVENTORY_CANCEL_IGNORE);
}

static void status_names_round_trip_and_unknown_names_are_refused(void **state)
{
	enum inventory_status all[] = { INVENTORY_STATUS_RESERVED, INVENTORY_STATUS_RELEASED,
					INVENTORY_STATUS_REJECTED,
					INVENTORY_STATUS_CANCELLED_BEFORE_PLACED };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		enum inventory_status back = INVENTORY_STATUS_NONE;
		assert_int_equal(inventory_status_parse(inventory_status_name(all[i]), &back),
				 SHOP_OK);
		assert_int_equal(back, all[i]);
	}
	enum inventory_status s = INVENTORY_STATUS_RESERVED;
	assert_null(inventory_status_name(INVENTORY_STATUS_NONE));
	assert_int_equal(inventory_status_parse("reserved", &s), SHOP_E_INVALID);
	assert_int_equal(inventory_status_parse(NULL, &s), SHOP_E_INVALID);
	assert_int_equal(s, INVENTORY_STATUS_RESERVED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_are_merged_by_sku_and_sorted),
		cmocka_unit_test(merged_quantities_may_exceed_one_lines_limit),
		cmocka_unit_test(an_order_without_lines_is_invalid),
		cmocka_unit_test(a_line_with_no_sku_or_no_quantity_is_invalid),
		cmocka_unit_test(an_unterminated_sku_is_invalid),
		cmocka_unit_test(too_many_lines_or_too_many_units_are_over_the_limit),
		cmocka_unit_test(total_is_the_sum_of_quantity_times_unit_price),
		cmocka_unit_test(total_above_what_an_event_carries_is_refused_without_overflow),
		cmocka_unit_test(the_largest_valid_order_at_the_highest_valid_price_has_a_total),
		cmocka_unit_test(a_negative_price_or_quantity_is_invalid_in_a_total),
		cmocka_unit_test(split_keeps_every_line_within_the_limit_and_the_total_unchanged),
		cmocka_unit_test(split_of_merged_lines_never_needs_more_lines_than_the_order_had),
		cmocka_unit_test(
			cancel_releases_only_a_held_reservation_and_remembers_an_unseen_order),
		cmocka_unit_test(status_names_round_trip_and_unknown_names_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
