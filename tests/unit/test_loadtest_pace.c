/* test_loadtest_pace.c - unit tests of the open-model pacer and the order mix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lt_mix.h"
#include "lt_pace.h"

static void requests_are_due_at_exact_intervals_from_the_start(void **state)
{
	struct lt_pace p;
	lt_pace_init(&p, 5 * LT_NS_PER_S, 1000, 60);
	assert_int_equal(p.total, 60000);
	assert_int_equal(lt_pace_due(&p, 0), 5 * LT_NS_PER_S);
	assert_int_equal(lt_pace_due(&p, 1), 5 * LT_NS_PER_S + 1000000);
	/* No drift: request 59,999 is due 59.999 s after the start, to the nanosecond. */
	assert_int_equal(lt_pace_due(&p, 59999), 5 * LT_NS_PER_S + 59999LL * 1000000);
}

static void non_integer_intervals_do_not_drift(void **state)
{
	struct lt_pace p;
	lt_pace_init(&p, 0, 3, 3600); /* one every 333,333,333.3 ns */
	assert_int_equal(p.total, 10800);
	assert_int_equal(lt_pace_due(&p, 3), LT_NS_PER_S);
	assert_int_equal(lt_pace_due(&p, 10797), 3599 * LT_NS_PER_S);
	for (int64_t i = 1; i < p.total; i++)
		assert_true(lt_pace_due(&p, i) > lt_pace_due(&p, i - 1));
}

static void due_count_counts_requests_whose_time_has_come(void **state)
{
	struct lt_pace p;
	lt_pace_init(&p, LT_NS_PER_S, 50, 10);
	assert_int_equal(lt_pace_due_count(&p, 0), 0);
	assert_int_equal(lt_pace_due_count(&p, LT_NS_PER_S), 1);            /* request 0 */
	assert_int_equal(lt_pace_due_count(&p, LT_NS_PER_S + 19999999), 1); /* 20 ms apart */
	assert_int_equal(lt_pace_due_count(&p, LT_NS_PER_S + 20000000), 2);
	assert_int_equal(lt_pace_due_count(&p, 2 * LT_NS_PER_S), 51);    /* a stalled second */
	assert_int_equal(lt_pace_due_count(&p, 100 * LT_NS_PER_S), 500); /* never past total */
	/* At every instant, exactly the requests due by then are counted. */
	for (int64_t t = LT_NS_PER_S; t < 3 * LT_NS_PER_S; t += 7777777) {
		int64_t n = lt_pace_due_count(&p, t);
		assert_true(lt_pace_due(&p, n - 1) <= t);
		assert_true(n == p.total || lt_pace_due(&p, n) > t);
	}
}

static void the_mix_deals_every_kind_in_its_share(void **state)
{
	struct lt_mix m;
	int64_t seen[LT_KIND_COUNT] = { 0 };
	assert_int_equal(lt_mix_parse(&m, LT_MIX_DEFAULT), SHOP_OK);
	for (int i = 0; i < 100; i++)
		seen[lt_mix_next(&m)]++;
	assert_int_equal(seen[LT_KIND_APPROVED], 80);
	assert_int_equal(seen[LT_KIND_DECLINED], 5);
	assert_int_equal(seen[LT_KIND_FLAKY], 5);
	assert_int_equal(seen[LT_KIND_OUT_OF_STOCK], 4);
	assert_int_equal(seen[LT_KIND_UNKNOWN_SKU], 2);
	assert_int_equal(seen[LT_KIND_CANCELLED], 4);
}

static void a_bad_mix_is_refused(void **state)
{
	struct lt_mix m;
	assert_int_equal(lt_mix_parse(&m, "approved=1,bogus=2"), SHOP_E_INVALID);
	assert_int_equal(lt_mix_parse(&m, "approved=x"), SHOP_E_INVALID);
	assert_int_equal(lt_mix_parse(&m, "approved=0"), SHOP_E_INVALID);
	assert_int_equal(lt_mix_parse(&m, "approved"), SHOP_E_INVALID);
	assert_int_equal(lt_mix_parse(&m, "declined=1"), SHOP_OK);
	assert_int_equal(lt_mix_next(&m), LT_KIND_DECLINED);
}

static void order_bodies_pick_the_card_and_sku_of_their_kind(void **state)
{
	char body[LT_BODY_MAX];
	assert_true(lt_mix_body(LT_KIND_APPROVED, 1, body) > 0);
	assert_non_null(strstr(body, "tok_visa"));
	assert_non_null(strstr(body, "SKU-CABLE"));
	lt_mix_body(LT_KIND_DECLINED, 2, body);
	assert_non_null(strstr(body, "tok_declined"));
	assert_non_null(strstr(body, "SKU-MOUSE"));
	lt_mix_body(LT_KIND_FLAKY, 2, body);
	assert_non_null(strstr(body, "tok_flaky"));
	lt_mix_body(LT_KIND_OUT_OF_STOCK, 2, body);
	assert_non_null(strstr(body, "SKU-VINTAGE"));
	lt_mix_body(LT_KIND_UNKNOWN_SKU, 2, body);
	assert_non_null(strstr(body, "SKU-LOADTEST-UNKNOWN"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(requests_are_due_at_exact_intervals_from_the_start),
		cmocka_unit_test(non_integer_intervals_do_not_drift),
		cmocka_unit_test(due_count_counts_requests_whose_time_has_come),
		cmocka_unit_test(the_mix_deals_every_kind_in_its_share),
		cmocka_unit_test(a_bad_mix_is_refused),
		cmocka_unit_test(order_bodies_pick_the_card_and_sku_of_their_kind),
	};
	return cmocka_run_group_tests_name("loadtest_pace", tests, NULL, NULL);
}
