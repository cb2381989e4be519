/*
 * test_shopctl_logs.c - `shopctl logs`' line format (tools/shopctl/shopctl_logs.c):
 * one printed line per log message from the bus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../tools/shopctl/shopctl.h"

#include <stdlib.h>
#include <string.h>

static void check_line(const char *subject, const char *json, const char *want)
{
	char *got = shopctl_log_line_text(subject, json, strlen(json));
	assert_string_equal(got, want);
	free(got);
}

static void line_shows_time_level_service_instance_message_and_order(void **state)
{
	(void)state;
	check_line("logs.payments.warn",
		   "{\"ts\":\"2026-12-03T18:00:00.123Z\",\"level\":\"warn\",\"service\":\"payments\","
		   "\"instance\":\"HY8T1YFE6QURP3TFP1SZDG\",\"msg\":\"card declined\","
		   "\"order_id\":\"ord-1\",\"correlation_id\":\"ord-1\"}",
		   "2026-12-03T18:00:00.123Z warn  payments/HY8T1YFE6QURP3TFP1SZDG card declined "
		   "order=ord-1");
}

static void correlation_id_is_shown_when_it_is_not_the_order_id(void **state)
{
	(void)state;
	check_line("logs.gateway.error",
		   "{\"ts\":\"T\",\"level\":\"error\",\"service\":\"gateway\",\"msg\":\"m\","
		   "\"correlation_id\":\"c-9\"}",
		   "T error gateway m correlation=c-9");
}

static void a_message_that_is_not_json_is_shown_with_its_subject(void **state)
{
	(void)state;
	check_line("logs.x.info", "plain text", "logs.x.info plain text");
	check_line("logs.x.info", "[1,2]", "logs.x.info [1,2]");
}

static void default_pattern_is_every_logs_subject(void **state)
{
	(void)state;
	assert_string_equal(SHOPCTL_LOGS_DEFAULT_PATTERN, "logs.>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(line_shows_time_level_service_instance_message_and_order),
		cmocka_unit_test(correlation_id_is_shown_when_it_is_not_the_order_id),
		cmocka_unit_test(a_message_that_is_not_json_is_shown_with_its_subject),
		cmocka_unit_test(default_pattern_is_every_logs_subject),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
