/* test_core.c - unit tests of libs/core: ids, clock stamps, configuration. */
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/ids.h"
#include "core/sha256.h"
#include "core/text.h"
#include "core/xalloc.h"
#include "core/status.h"

static void uuid7_is_well_formed_versioned_and_unique(void **state)
{
	char a[IDS_UUID_SIZE], b[IDS_UUID_SIZE];
	ids_uuid7(a);
	ids_uuid7(b);
	assert_true(ids_uuid_valid(a));
	assert_int_equal(a[14], '7');
	assert_true(strchr("89ab", a[19]) != NULL);
	assert_string_not_equal(a, b);
}

static void uuid7_sorts_by_creation_time(void **state)
{
	char a[IDS_UUID_SIZE], b[IDS_UUID_SIZE];
	ids_uuid7(a);
	clock_sleep_ms(2);
	ids_uuid7(b);
	assert_true(strcmp(a, b) < 0);
}

static void uuid_validation_rejects_malformed_ids(void **state)
{
	assert_false(ids_uuid_valid(""));
	assert_false(ids_uuid_valid("not-a-uuid"));
	assert_false(ids_uuid_valid("0192f0c1-7d2a-7abc-8def-0123456789ag"));
	assert_false(ids_uuid_valid("0192f0c1x7d2a-7abc-8def-0123456789ab"));
	assert_true(ids_uuid_valid("0192f0c1-7d2a-7abc-8def-0123456789ab"));
}

static void traceparent_child_keeps_trace_and_changes_span(void **state)
{
	char parent[IDS_TRACEPARENT_SIZE], child[IDS_TRACEPARENT_SIZE];
	ids_traceparent_new(parent);
	assert_int_equal(strlen(parent), IDS_TRACEPARENT_SIZE - 1);
	ids_traceparent_child(parent, child);
	assert_memory_equal(parent, child, 3 + 32);
	assert_string_not_equal(parent + 36, child + 36);
}

static void traceparent_child_of_garbage_starts_a_new_trace(void **state)
{
	char child[IDS_TRACEPARENT_SIZE];
	ids_traceparent_child("garbage", child);
	assert_int_equal(strlen(child), IDS_TRACEPARENT_SIZE - 1);
	assert_memory_equal(child, "00-", 3);
}

/* Timed waits run on the monotonic clock, so a wall clock stepped backwards
 * cannot stretch them: the deadline is monotonic time, and a condition made
 * by clock_cond_init times out when that time comes (were it on the wall
 * clock, a monotonic deadline would lie decades in the past and the wait
 * would end at once). */
static void timed_waits_use_the_monotonic_clock(void **state)
{
	struct timespec now, until = clock_mono_deadline(1500);
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ahead_ms = (int64_t)(until.tv_sec - now.tv_sec) * 1000 +
			   (until.tv_nsec - now.tv_nsec) / 1000000;
	assert_true(ahead_ms > 1400 && ahead_ms <= 1500);
	assert_true(until.tv_nsec >= 0 && until.tv_nsec < 1000000000L);

	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond;
	clock_cond_init(&cond);
	int64_t start = clock_mono_ms();
	struct timespec soon = clock_mono_deadline(100);
	pthread_mutex_lock(&mu);
	int rc = 0;
	while (rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&cond, &mu, &soon);
	pthread_mutex_unlock(&mu);
	int64_t waited = clock_mono_ms() - start;
	assert_true(waited >= 95 && waited < 5000);
	pthread_cond_destroy(&cond);
}

/* Every traceparent W3C Trace Context says to ignore starts a new trace
 * (and a valid one: what the gateway writes into an envelope must pass the
 * envelope's own check), while a valid one keeps its trace id. */
static void traceparent_child_ignores_every_invalid_parent(void **state)
{
	static const char *const invalid[] = {
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* uppercase */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version ff */
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* non-hex */
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* 00 is 55 long */
		"00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-0100",  /* short trace */
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* no dash after */
		"",
		NULL,
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		char child[IDS_TRACEPARENT_SIZE];
		assert_false(ids_traceparent_valid(invalid[i]));
		ids_traceparent_child(invalid[i], child);
		assert_true(ids_traceparent_valid(child));
		assert_memory_equal(child, "00-", 3);
		assert_memory_not_equal(child + 3, "4bf92f3577b34da6a3ce929d0e0e4736", 32);
	}
	static const char *const valid[] = {
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", /* unknown flags */
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* later version */
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-says",
	};
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		char child[IDS_TRACEPARENT_SIZE];
		assert_true(ids_traceparent_valid(valid[i]));
		ids_traceparent_child(valid[i], child);
		assert_true(ids_traceparent_valid(child));
		assert_string_equal(child + IDS_TRACEPARENT_SIZE - 4, "-01");
		assert_memory_equal(child, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
	}
}

static void rfc3339_stamps_are_utc_with_milliseconds(void **state)
{
	char ts[CLOCK_RFC3339_SIZE];
	clock_rfc3339(1700000000123LL, ts);
	assert_string_equal(ts, "2023-11-14T22:13:20.123Z");
	clock_rfc3339(0, ts);
	assert_string_equal(ts, "1970-01-01T00:00:00.000Z");
}

static void config_int_takes_default_value_and_range(void **state)
{
	int64_t v = 0;
	unsetenv("SHOP_TEST_N");
	assert_int_equal(config_int("SHOP_TEST_N", 7, 1, 10, &v), SHOP_OK);
	assert_int_equal(v, 7);
	setenv("SHOP_TEST_N", "9", 1);
	assert_int_equal(config_int("SHOP_TEST_N", 7, 1, 10, &v), SHOP_OK);
	assert_int_equal(v, 9);
	setenv("SHOP_TEST_N", "11", 1);
	assert_int_equal(config_int("SHOP_TEST_N", 7, 1, 10, &v), SHOP_E_INVALID);
	setenv("SHOP_TEST_N", "3x", 1);
	assert_int_equal(config_int("SHOP_TEST_N", 7, 1, 10, &v), SHOP_E_INVALID);
	assert_int_equal(v, 9); /* unchanged on error */
	unsetenv("SHOP_TEST_N");
}

static void text_copy_fits_or_fails_without_truncating(void **state)
{
	char buf[4] = "xyz";
	assert_true(TEXT_COPY(buf, "abc"));
	assert_string_equal(buf, "abc");
	assert_false(TEXT_COPY(buf, "abcd")); /* no room for the NUL */
	assert_string_equal(buf, "");
	assert_true(TEXT_COPY(buf, NULL));
	assert_string_equal(buf, "");
	assert_false(text_copy(buf, 0, "a"));
}

static void config_str_treats_empty_as_unset(void **state)
{
	setenv("SHOP_TEST_S", "", 1);
	assert_string_equal(config_str("SHOP_TEST_S", "dflt"), "dflt");
	setenv("SHOP_TEST_S", "x", 1);
	assert_string_equal(config_str("SHOP_TEST_S", "dflt"), "x");
	unsetenv("SHOP_TEST_S");
}

/* FIPS 180-2's examples (one block, a tail that needs a second block, a
 * million bytes that end on a block boundary) and the empty message. */
static void sha256_matches_the_standards_examples(void **state)
{
	static const struct {
		const char *text;
		const char *hex;
	} cases[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	char hex[SHA256_HEX_SIZE];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sha256_hex(cases[i].text, strlen(cases[i].text), hex);
		assert_string_equal(hex, cases[i].hex);
	}
	size_t million = 1000000;
	char *a = xmalloc(million);
	memset(a, 'a', million);
	sha256_hex(a, million, hex);
	free(a);
	assert_string_equal(hex,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sha256_matches_the_standards_examples),
		cmocka_unit_test(uuid7_is_well_formed_versioned_and_unique),
		cmocka_unit_test(uuid7_sorts_by_creation_time),
		cmocka_unit_test(uuid_validation_rejects_malformed_ids),
		cmocka_unit_test(traceparent_child_keeps_trace_and_changes_span),
		cmocka_unit_test(traceparent_child_of_garbage_starts_a_new_trace),
		cmocka_unit_test(traceparent_child_ignores_every_invalid_parent),
		cmocka_unit_test(rfc3339_stamps_are_utc_with_milliseconds),
		cmocka_unit_test(timed_waits_use_the_monotonic_clock),
		cmocka_unit_test(config_int_takes_default_value_and_range),
		cmocka_unit_test(config_str_treats_empty_as_unset),
		cmocka_unit_test(text_copy_fits_or_fails_without_truncating),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
