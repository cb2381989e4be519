/* test_shopctl_audit.c - unit tests of shopctl audit's pure parts: the stock
 * and money arithmetic, the e-mail rule, and the report (counts, kept
 * details, text and JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "shopctl/audit.h"

static void statuses_map_to_fates(void **state)
{
	assert_int_equal(audit_fate_of("SHIPPED"), AUDIT_FATE_SHIPPED);
	assert_int_equal(audit_fate_of("CANCELLED"), AUDIT_FATE_CANCELLED);
	assert_int_equal(audit_fate_of("PENDING"), AUDIT_FATE_IN_FLIGHT);
	assert_int_equal(audit_fate_of("RESERVED"), AUDIT_FATE_IN_FLIGHT);
	assert_int_equal(audit_fate_of("PAID"), AUDIT_FATE_IN_FLIGHT);
	assert_int_equal(audit_fate_of("shipped"), AUDIT_FATE_UNKNOWN);
	assert_int_equal(audit_fate_of(NULL), AUDIT_FATE_UNKNOWN);
}

static void stock_is_conserved_when_every_unit_is_accounted_for(void **state)
{
	int64_t missing = 99;
	struct audit_stock s = { .initial = 10, .available = 3, .reserved = 2, .shipped = 5 };
	assert_true(audit_stock_conserved(&s, &missing));
	assert_int_equal(missing, 0);
	s.shipped = 4; /* a unit gone */
	assert_false(audit_stock_conserved(&s, &missing));
	assert_int_equal(missing, 1);
	s.shipped = 6; /* a unit made up */
	assert_false(audit_stock_conserved(&s, &missing));
	assert_int_equal(missing, -1);
}

static void negative_stock_is_a_violation_even_when_the_sum_holds(void **state)
{
	int64_t missing = 0;
	struct audit_stock s = { .initial = 5, .available = -1, .reserved = 6, .shipped = 0 };
	assert_false(audit_stock_conserved(&s, &missing));
	assert_int_equal(missing, 0);
}

static void stock_sums_that_overflow_are_violations(void **state)
{
	int64_t missing = 0;
	struct audit_stock s = { .initial = 1, .available = INT64_MAX, .reserved = 1 };
	assert_false(audit_stock_conserved(&s, &missing));
	assert_int_equal(missing, INT64_MIN);
}

static void a_shipped_order_keeps_exactly_one_charge(void **state)
{
	assert_null(audit_money_verdict(AUDIT_FATE_SHIPPED, &(struct audit_ledger){ 1, 0 }));
	assert_string_equal(audit_money_verdict(AUDIT_FATE_SHIPPED, &(struct audit_ledger){ 0, 0 }),
			    "shipped without a successful charge");
	assert_string_equal(audit_money_verdict(AUDIT_FATE_SHIPPED, &(struct audit_ledger){ 1, 1 }),
			    "shipped but its charge was refunded");
	assert_string_equal(audit_money_verdict(AUDIT_FATE_SHIPPED, &(struct audit_ledger){ 2, 1 }),
			    "charged more than once");
}

static void a_cancelled_order_keeps_no_charge(void **state)
{
	assert_null(audit_money_verdict(AUDIT_FATE_CANCELLED, &(struct audit_ledger){ 0, 0 }));
	assert_null(audit_money_verdict(AUDIT_FATE_CANCELLED, &(struct audit_ledger){ 1, 1 }));
	assert_string_equal(audit_money_verdict(AUDIT_FATE_CANCELLED,
						&(struct audit_ledger){ 1, 0 }),
			    "cancelled but its charge was not refunded");
}

static void in_flight_and_unknown_orders_may_hold_one_charge(void **state)
{
	assert_null(audit_money_verdict(AUDIT_FATE_IN_FLIGHT, &(struct audit_ledger){ 1, 0 }));
	assert_null(audit_money_verdict(AUDIT_FATE_UNKNOWN, &(struct audit_ledger){ 1, 1 }));
	assert_string_equal(audit_money_verdict(AUDIT_FATE_UNKNOWN, &(struct audit_ledger){ 2, 2 }),
			    "charged more than once");
	assert_string_equal(audit_money_verdict(AUDIT_FATE_IN_FLIGHT,
						&(struct audit_ledger){ 0, 1 }),
			    "the ledger holds more refunds than charges");
}

static void mails_follow_the_orders_fate(void **state)
{
	assert_null(audit_mails_verdict(AUDIT_FATE_SHIPPED, &(struct audit_mails){ 1, 1, 0 }));
	assert_null(audit_mails_verdict(AUDIT_FATE_CANCELLED, &(struct audit_mails){ 1, 0, 1 }));
	assert_null(audit_mails_verdict(AUDIT_FATE_IN_FLIGHT, &(struct audit_mails){ 0, 0, 0 }));
	assert_null(audit_mails_verdict(AUDIT_FATE_IN_FLIGHT, &(struct audit_mails){ 1, 0, 0 }));
	assert_string_equal(audit_mails_verdict(AUDIT_FATE_SHIPPED,
						&(struct audit_mails){ 1, 0, 0 }),
			    "shipped, no order_shipped recorded");
	assert_string_equal(audit_mails_verdict(AUDIT_FATE_CANCELLED,
						&(struct audit_mails){ 0, 0, 1 }),
			    "cancelled, no order_received recorded");
	assert_string_equal(audit_mails_verdict(AUDIT_FATE_IN_FLIGHT,
						&(struct audit_mails){ 1, 1, 0 }),
			    "a final e-mail recorded for an order still in flight");
}

static void a_mail_recorded_twice_is_a_violation_whatever_the_fate(void **state)
{
	assert_string_equal(audit_mails_verdict(AUDIT_FATE_SHIPPED,
						&(struct audit_mails){ 2, 1, 0 }),
			    "order_received recorded more than once");
	assert_string_equal(audit_mails_verdict(AUDIT_FATE_UNKNOWN,
						&(struct audit_mails){ 1, 0, 2 }),
			    "order_cancelled recorded more than once");
	assert_string_equal(audit_mails_verdict(AUDIT_FATE_SHIPPED,
						&(struct audit_mails){ 1, 1, 1 }),
			    "both order_shipped and order_cancelled recorded");
}

static void the_report_counts_every_violation_and_keeps_the_first_few(void **state)
{
	struct audit_report r;
	audit_report_init(&r, 2);
	r.results[AUDIT_STOCK].checked = 7;
	for (int i = 0; i < 5; i++)
		audit_report_violation(&r, AUDIT_STOCK, "SKU-X", "violation %d", i);
	audit_report_more(&r, AUDIT_STOCK, 3);
	assert_int_equal(r.results[AUDIT_STOCK].violations, 8);
	assert_int_equal(r.results[AUDIT_STOCK].n_kept, 2);
	assert_string_equal(r.results[AUDIT_STOCK].kept[1].detail, "violation 1");
	assert_false(audit_report_passed(&r));

	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	audit_report_print(&r, out);
	fclose(out);
	assert_non_null(strstr(text,
			       "stock          8 violations (7 checked)\n"
			       "  SKU-X: violation 0\n  SKU-X: violation 1\n  ... and 6 more\n"));
	assert_non_null(strstr(text, "charges        ok (0 checked)\n"));
	assert_non_null(strstr(text, "\nFAILED\n"));
	free(text);
	audit_report_release(&r);
}

static void allowed_violations_are_shown_but_pass_and_errors_fail(void **state)
{
	struct audit_report r;
	audit_report_init(&r, AUDIT_DETAILS_DEFAULT);
	r.results[AUDIT_DEAD_LETTERS].allowed = true;
	audit_report_violation(&r, AUDIT_DEAD_LETTERS, "order-1", "poison");
	assert_true(audit_report_passed(&r));
	audit_report_error(&r, AUDIT_CHARGES, "payments database: %s", "down");
	audit_report_error(&r, AUDIT_CHARGES, "a later cause");
	assert_false(audit_report_passed(&r));
	assert_string_equal(r.results[AUDIT_CHARGES].error, "payments database: down");
	audit_report_release(&r);
}

static void the_json_report_holds_each_check_with_its_details(void **state)
{
	struct audit_report r;
	audit_report_init(&r, AUDIT_DETAILS_MAX + 5); /* clamped */
	assert_int_equal(r.details_max, AUDIT_DETAILS_MAX);
	r.results[AUDIT_CHARGES].checked = 3;
	audit_report_violation(&r, AUDIT_CHARGES, "order-\"1\"", "cancelled but %s", "charged");
	audit_report_error(&r, AUDIT_STOCK, "inventory database: gone");
	char *text = audit_report_json(&r);
	cJSON *root = cJSON_Parse(text);
	assert_non_null(root);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "passed")));
	const cJSON *checks = cJSON_GetObjectItem(root, "checks");
	assert_int_equal(cJSON_GetArraySize(checks), AUDIT_CHECK_COUNT);
	const cJSON *charges = cJSON_GetArrayItem(checks, AUDIT_CHARGES);
	assert_string_equal(cJSON_GetObjectItem(charges, "name")->valuestring, "charges");
	assert_int_equal(cJSON_GetObjectItem(charges, "checked")->valueint, 3);
	assert_int_equal(cJSON_GetObjectItem(charges, "violations")->valueint, 1);
	const cJSON *detail = cJSON_GetArrayItem(cJSON_GetObjectItem(charges, "details"), 0);
	assert_string_equal(cJSON_GetObjectItem(detail, "id")->valuestring, "order-\"1\"");
	assert_string_equal(cJSON_GetObjectItem(detail, "detail")->valuestring,
			    "cancelled but charged");
	const cJSON *stock = cJSON_GetArrayItem(checks, AUDIT_STOCK);
	assert_string_equal(cJSON_GetObjectItem(stock, "error")->valuestring,
			    "inventory database: gone");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(stock, "passed")));
	cJSON_Delete(root);
	free(text);
	audit_report_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(statuses_map_to_fates),
		cmocka_unit_test(stock_is_conserved_when_every_unit_is_accounted_for),
		cmocka_unit_test(negative_stock_is_a_violation_even_when_the_sum_holds),
		cmocka_unit_test(stock_sums_that_overflow_are_violations),
		cmocka_unit_test(a_shipped_order_keeps_exactly_one_charge),
		cmocka_unit_test(a_cancelled_order_keeps_no_charge),
		cmocka_unit_test(in_flight_and_unknown_orders_may_hold_one_charge),
		cmocka_unit_test(mails_follow_the_orders_fate),
		cmocka_unit_test(a_mail_recorded_twice_is_a_violation_whatever_the_fate),
		cmocka_unit_test(the_report_counts_every_violation_and_keeps_the_first_few),
		cmocka_unit_test(allowed_violations_are_shown_but_pass_and_errors_fail),
		cmocka_unit_test(the_json_report_holds_each_check_with_its_details),
	};
	return cmocka_run_group_tests_name("shopctl_audit", tests, NULL, NULL);
}
