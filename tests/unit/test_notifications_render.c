/*
 * test_notifications_render.c - the e-mail texts and the pure helpers
 * behind them: what each kind says, and what rendering refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../services/notifications/notifications_domain.h"
#include "../../services/notifications/notifications_render.h"

#define ORDER "0192f0c1-7d2a-7abc-8def-0123456789ab"

static struct notifications_mail rendered(const struct notifications_facts *facts)
{
	struct notifications_mail m;
	assert_int_equal(notifications_render(facts, &m), SHOP_OK);
	return m;
}

static void order_received_names_the_order_and_counts_its_items(void **state)
{
	struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_RECEIVED,
					 .order_id = ORDER,
					 .item_count = 3 };
	struct notifications_mail m = rendered(&f);
	assert_string_equal(m.subject, "We received your order " ORDER);
	assert_non_null(strstr(m.body, ORDER));
	assert_non_null(strstr(m.body, "with 3 items"));
}

static void order_received_says_item_for_a_single_item(void **state)
{
	struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_RECEIVED,
					 .order_id = ORDER,
					 .item_count = 1 };
	struct notifications_mail m = rendered(&f);
	assert_non_null(strstr(m.body, "with 1 item\n"));
}

static void order_shipped_names_the_order(void **state)
{
	struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_SHIPPED,
					 .order_id = ORDER };
	struct notifications_mail m = rendered(&f);
	assert_string_equal(m.subject, "Your order " ORDER " has shipped");
	assert_non_null(strstr(m.body, "your order " ORDER " is on its way"));
}

static void order_cancelled_explains_every_known_reason(void **state)
{
	const char *const reasons[] = { "out_of_stock", "unknown_sku", "payment_declined",
					"customer_cancelled", "timeout" };
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_CANCELLED,
						 .order_id = ORDER,
						 .reason = reasons[i] };
		struct notifications_mail m = rendered(&f);
		const char *text = notifications_reason_text(reasons[i]);
		assert_non_null(text);
		assert_string_equal(m.subject, "Your order " ORDER " was cancelled");
		assert_non_null(strstr(m.body, ORDER));
		assert_non_null(strstr(m.body, text));
	}
	struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_CANCELLED,
					 .order_id = ORDER,
					 .reason = "payment_declined" };
	struct notifications_mail m = rendered(&f);
	assert_non_null(strstr(m.body, "because the payment was declined"));
}

static void order_cancelled_shows_an_unknown_plain_reason_verbatim(void **state)
{
	struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_CANCELLED,
					 .order_id = ORDER,
					 .reason = "fraud_suspected" };
	struct notifications_mail m = rendered(&f);
	assert_non_null(strstr(m.body, "(reason: fraud_suspected)"));
}

static void order_cancelled_never_echoes_an_unsafe_or_missing_reason(void **state)
{
	const char *const bad[] = {
		"two words", "line\nbreak", "", NULL,
		"a-reason-that-is-far-too-long-to-be-shown-in-an-email-to-a-customer"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_CANCELLED,
						 .order_id = ORDER,
						 .reason = bad[i] };
		struct notifications_mail m = rendered(&f);
		assert_non_null(strstr(m.body, "for a reason we could not name"));
		if (bad[i] && *bad[i])
			assert_null(strstr(m.body, bad[i]));
	}
}

static void an_order_id_that_could_break_a_header_is_refused(void **state)
{
	const char *const bad[] = {
		"", NULL, "abc\r\nBcc: everyone@example.com", "has space",
		"0192f0c1-7d2a-7abc-8def-0123456789ab-0192f0c1-7d2a-7abc-8def-0123456789ab"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_SHIPPED,
						 .order_id = bad[i] };
		struct notifications_mail m;
		memset(&m, 'x', sizeof(m));
		assert_int_equal(notifications_render(&f, &m), SHOP_E_INVALID);
		assert_int_equal(m.subject[0], 'x'); /* untouched on failure */
	}
}

static void an_unknown_kind_is_refused(void **state)
{
	struct notifications_facts f = { .kind = (enum notifications_kind)42, .order_id = ORDER };
	struct notifications_mail m;
	assert_int_equal(notifications_render(&f, &m), SHOP_E_INVALID);
	assert_null(notifications_kind_name((enum notifications_kind)42));
}

static void longest_inputs_fit_the_named_limits(void **state)
{
	char id[NOTIFICATIONS_ORDER_ID_MAX + 1];
	memset(id, 'A', NOTIFICATIONS_ORDER_ID_MAX);
	id[NOTIFICATIONS_ORDER_ID_MAX] = '\0';
	char reason[NOTIFICATIONS_REASON_MAX + 1];
	memset(reason, 'r', NOTIFICATIONS_REASON_MAX);
	reason[NOTIFICATIONS_REASON_MAX] = '\0';

	struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_RECEIVED,
					 .order_id = id,
					 .item_count = INT64_MAX };
	struct notifications_mail m = rendered(&f);
	assert_true(strlen(m.subject) <= NOTIFICATIONS_SUBJECT_MAX);
	f.kind = NOTIFICATIONS_KIND_ORDER_CANCELLED;
	f.reason = reason;
	m = rendered(&f);
	assert_non_null(strstr(m.body, reason));
	assert_true(strlen(m.body) <= NOTIFICATIONS_BODY_MAX);
}

static void rendering_is_deterministic(void **state)
{
	struct notifications_facts f = { .kind = NOTIFICATIONS_KIND_ORDER_CANCELLED,
					 .order_id = ORDER,
					 .reason = "timeout" };
	struct notifications_mail a = rendered(&f), b = rendered(&f);
	assert_string_equal(a.subject, b.subject);
	assert_string_equal(a.body, b.body);
}

static void item_count_sums_quantities_and_saturates(void **state)
{
	const int64_t q[] = { 2, 3, 0, -4, 5 };
	assert_int_equal(notifications_item_count(q, 5), 10);
	assert_int_equal(notifications_item_count(q, 0), 0);
	const int64_t huge[] = { INT64_MAX, 1 };
	assert_true(notifications_item_count(huge, 2) == INT64_MAX);
}

static void kind_names_are_the_stored_and_published_ones(void **state)
{
	assert_string_equal(notifications_kind_name(NOTIFICATIONS_KIND_ORDER_RECEIVED),
			    "order_received");
	assert_string_equal(notifications_kind_name(NOTIFICATIONS_KIND_ORDER_SHIPPED),
			    "order_shipped");
	assert_string_equal(notifications_kind_name(NOTIFICATIONS_KIND_ORDER_CANCELLED),
			    "order_cancelled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(order_received_names_the_order_and_counts_its_items),
		cmocka_unit_test(order_received_says_item_for_a_single_item),
		cmocka_unit_test(order_shipped_names_the_order),
		cmocka_unit_test(order_cancelled_explains_every_known_reason),
		cmocka_unit_test(order_cancelled_shows_an_unknown_plain_reason_verbatim),
		cmocka_unit_test(order_cancelled_never_echoes_an_unsafe_or_missing_reason),
		cmocka_unit_test(an_order_id_that_could_break_a_header_is_refused),
		cmocka_unit_test(an_unknown_kind_is_refused),
		cmocka_unit_test(longest_inputs_fit_the_named_limits),
		cmocka_unit_test(rendering_is_deterministic),
		cmocka_unit_test(item_count_sums_quantities_and_saturates),
		cmocka_unit_test(kind_names_are_the_stored_and_published_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
