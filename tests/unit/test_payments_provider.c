/*
 * test_payments_provider.c - the simulated card provider against a real
 * SQLite ledger: each test card's outcome, the flaky card's two transient
 * failures, idempotency by key (one charge per key, whatever is retried),
 * refunds once, and the ledger's URL for each backend.
 *
 * Most cases use a private in-memory ledger (the provider keeps its one
 * connection open, so the ledger lives as long as the provider); the
 * restart case uses a temporary file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/payments/payments_provider.h"

#include "core/ids.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AMOUNT 4200
#define CURRENCY "EUR"
#define RACERS 8

static int setup(void **state)
{
	*state = payments_provider_create("sqlite::memory:");
	return 0;
}

static int teardown(void **state)
{
	payments_provider_destroy(*state);
	return 0;
}

static void new_key(char key[IDS_UUID_SIZE])
{
	ids_uuid7(key);
}

/* AMOUNT in CURRENCY on CARD under KEY. */
static shop_status charge(struct payments_provider *p, const char *key, const char *card,
			  struct payments_provider_charge_result *r)
{
	return payments_provider_charge(p, key, card, AMOUNT, CURRENCY, r);
}

static void visa_is_approved_on_the_first_attempt(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	char key[IDS_UUID_SIZE];
	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_VISA, &r), SHOP_OK);
	assert_int_equal(r.outcome, PAYMENTS_PROVIDER_APPROVED);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(strlen(r.charge_id), PAYMENTS_PROVIDER_ID_SIZE - 1);
	assert_memory_equal(r.charge_id, "ch_", 3);
	assert_true(ids_uuid_valid(r.charge_id + 3));
	assert_null(r.decline_reason);
}

static void declined_card_is_declined_as_card_declined(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	char key[IDS_UUID_SIZE];
	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_DECLINED, &r), SHOP_OK);
	assert_int_equal(r.outcome, PAYMENTS_PROVIDER_DECLINED);
	assert_int_equal(r.attempts, 1);
	assert_string_equal(r.charge_id, "");
	assert_string_equal(r.decline_reason, "card_declined");
}

static void unknown_cards_are_declined(void **state)
{
	struct payments_provider *p = *state;
	static const char *const tokens[] = { "tok_mastercard", "", "TOK_VISA", "tok_visa " };
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		struct payments_provider_charge_result r;
		char key[IDS_UUID_SIZE];
		new_key(key);
		assert_int_equal(charge(p, key, tokens[i], &r), SHOP_OK);
		assert_int_equal(r.outcome, PAYMENTS_PROVIDER_DECLINED);
		assert_string_equal(r.decline_reason, "card_declined");
	}
}

static void flaky_card_fails_twice_then_approves_with_three_attempts_and_one_charge(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	memset(&r, 0x5a, sizeof(r));
	char key[IDS_UUID_SIZE];
	new_key(key);
	for (int i = 0; i < PAYMENTS_PROVIDER_FLAKY_FAILURES; i++) {
		assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_E_UNAVAILABLE);
		assert_int_equal(r.attempts, 0x5a5a5a5a5a5a5a5aLL); /* not written on failure */
	}
	assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_OK);
	assert_int_equal(r.outcome, PAYMENTS_PROVIDER_APPROVED);
	assert_int_equal(r.attempts, 3);
	char first_charge[PAYMENTS_PROVIDER_ID_SIZE];
	memcpy(first_charge, r.charge_id, sizeof(first_charge));

	/* Asked again after the outcome: same charge, no fourth attempt. */
	assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_OK);
	assert_int_equal(r.outcome, PAYMENTS_PROVIDER_APPROVED);
	assert_int_equal(r.attempts, 3);
	assert_string_equal(r.charge_id, first_charge);
}

static void repeated_charges_with_one_key_never_charge_twice(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result first, again;
	char key[IDS_UUID_SIZE];
	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_VISA, &first), SHOP_OK);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(charge(p, key, PAYMENTS_CARD_VISA, &again), SHOP_OK);
		assert_int_equal(again.outcome, PAYMENTS_PROVIDER_APPROVED);
		assert_string_equal(again.charge_id, first.charge_id);
		assert_int_equal(again.attempts, 1);
	}

	/* A different key is a different charge. */
	char other[IDS_UUID_SIZE];
	new_key(other);
	assert_int_equal(charge(p, other, PAYMENTS_CARD_VISA, &again), SHOP_OK);
	assert_string_not_equal(again.charge_id, first.charge_id);
}

static void a_decline_is_remembered_for_its_key(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	char key[IDS_UUID_SIZE];
	new_key(key);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(charge(p, key, PAYMENTS_CARD_DECLINED, &r), SHOP_OK);
		assert_int_equal(r.outcome, PAYMENTS_PROVIDER_DECLINED);
		assert_int_equal(r.attempts, 1);
	}
}

static void a_key_reused_for_a_different_request_is_refused(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	char key[IDS_UUID_SIZE];
	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_VISA, &r), SHOP_OK);
	assert_int_equal(payments_provider_charge(p, key, PAYMENTS_CARD_VISA, AMOUNT + 1, CURRENCY,
						  &r),
			 SHOP_E_CONFLICT);
	assert_int_equal(payments_provider_charge(p, key, PAYMENTS_CARD_VISA, AMOUNT, "USD", &r),
			 SHOP_E_CONFLICT);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_DECLINED, &r), SHOP_E_CONFLICT);
	/* Also while a flaky charge is still undecided. */
	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_E_UNAVAILABLE);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_VISA, &r), SHOP_E_CONFLICT);
}

static void bad_arguments_are_refused_before_the_ledger(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	char long_key[PAYMENTS_PROVIDER_KEY_MAX + 2];
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];

	assert_int_equal(payments_provider_charge(p, "", PAYMENTS_CARD_VISA, AMOUNT, CURRENCY, &r),
			 SHOP_E_INVALID);
	assert_int_equal(payments_provider_charge(p, "k1", PAYMENTS_CARD_VISA, -1, CURRENCY, &r),
			 SHOP_E_INVALID);
	assert_int_equal(payments_provider_charge(p, "k1", PAYMENTS_CARD_VISA, AMOUNT, "", &r),
			 SHOP_E_INVALID);
	assert_int_equal(charge(p, long_key, PAYMENTS_CARD_VISA, &r), SHOP_E_LIMIT);
	assert_int_equal(payments_provider_refund(p, "", refund_id), SHOP_E_INVALID);
	assert_int_equal(payments_provider_refund(p, long_key, refund_id), SHOP_E_LIMIT);
}

static void a_charge_is_refunded_once_and_the_refund_id_repeats(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	char key[IDS_UUID_SIZE];
	char first[PAYMENTS_PROVIDER_ID_SIZE], again[PAYMENTS_PROVIDER_ID_SIZE];
	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_VISA, &r), SHOP_OK);
	assert_int_equal(payments_provider_refund(p, key, first), SHOP_OK);
	assert_memory_equal(first, "re_", 3);
	assert_true(ids_uuid_valid(first + 3));
	assert_int_equal(payments_provider_refund(p, key, again), SHOP_OK);
	assert_string_equal(again, first);

	/* The charge itself is unchanged: a repeated charge is not a new one. */
	struct payments_provider_charge_result r2;
	assert_int_equal(charge(p, key, PAYMENTS_CARD_VISA, &r2), SHOP_OK);
	assert_string_equal(r2.charge_id, r.charge_id);
}

static void only_approved_charges_can_be_refunded(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE] = "untouched";
	char key[IDS_UUID_SIZE];

	new_key(key);
	assert_int_equal(payments_provider_refund(p, key, refund_id), SHOP_E_NOT_FOUND);

	assert_int_equal(charge(p, key, PAYMENTS_CARD_DECLINED, &r), SHOP_OK);
	assert_int_equal(payments_provider_refund(p, key, refund_id), SHOP_E_CONFLICT);

	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_E_UNAVAILABLE);
	assert_int_equal(payments_provider_refund(p, key, refund_id), SHOP_E_CONFLICT);
	assert_string_equal(refund_id, "untouched");
}

static void only_an_approved_charge_is_found_by_its_key(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	struct payments_provider_charge_info info = { .amount_cents = -7 };
	char key[IDS_UUID_SIZE], refund_id[PAYMENTS_PROVIDER_ID_SIZE];

	new_key(key);
	assert_int_equal(payments_provider_charge_find(p, key, &info), SHOP_E_NOT_FOUND);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_E_UNAVAILABLE);
	assert_int_equal(payments_provider_charge_find(p, key, &info), SHOP_E_NOT_FOUND);
	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_DECLINED, &r), SHOP_OK);
	assert_int_equal(payments_provider_charge_find(p, key, &info), SHOP_E_NOT_FOUND);
	assert_int_equal(info.amount_cents, -7); /* untouched on failure */

	new_key(key);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_VISA, &r), SHOP_OK);
	assert_int_equal(payments_provider_charge_find(p, key, &info), SHOP_OK);
	assert_string_equal(info.key, key);
	assert_string_equal(info.charge_id, r.charge_id);
	assert_int_equal(info.amount_cents, AMOUNT);
	assert_string_equal(info.currency, CURRENCY);
	assert_false(info.refunded);
	assert_int_equal(payments_provider_refund(p, key, refund_id), SHOP_OK);
	assert_int_equal(payments_provider_charge_find(p, key, &info), SHOP_OK);
	assert_true(info.refunded);
}

static void open_charges_are_walked_in_key_order_without_refunded_or_declined_ones(void **state)
{
	struct payments_provider *p = *state;
	struct payments_provider_charge_result r;
	struct payments_provider_charge_info page[2];
	/* Each case has a fresh ledger; keys named to sort in this order. */
	const char *open_a = "key-1", *declined = "key-2", *refunded = "key-3", *open_b = "key-4";
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	size_t n = 99;

	assert_int_equal(payments_provider_open_charges(p, "", 2, page, &n), SHOP_OK);
	assert_int_equal(n, 0);
	assert_int_equal(charge(p, open_a, PAYMENTS_CARD_VISA, &r), SHOP_OK);
	assert_int_equal(charge(p, declined, PAYMENTS_CARD_DECLINED, &r), SHOP_OK);
	assert_int_equal(charge(p, refunded, PAYMENTS_CARD_VISA, &r), SHOP_OK);
	assert_int_equal(payments_provider_refund(p, refunded, refund_id), SHOP_OK);
	assert_int_equal(charge(p, open_b, PAYMENTS_CARD_VISA, &r), SHOP_OK);

	assert_int_equal(payments_provider_open_charges(p, "", 1, page, &n), SHOP_OK);
	assert_int_equal(n, 1);
	assert_string_equal(page[0].key, open_a);
	assert_int_equal(payments_provider_open_charges(p, open_a, 2, page, &n), SHOP_OK);
	assert_int_equal(n, 1);
	assert_string_equal(page[0].key, open_b);
	assert_int_equal(page[0].amount_cents, AMOUNT);
	assert_int_equal(payments_provider_open_charges(p, open_b, 2, page, &n), SHOP_OK);
	assert_int_equal(n, 0);
	assert_int_equal(payments_provider_open_charges(p, "", 0, page, &n), SHOP_E_INVALID);
}

struct racer {
	struct payments_provider *p;
	const char *key;
	shop_status st;
	struct payments_provider_charge_result r;
};

static void *racer_run(void *arg)
{
	struct racer *x = arg;
	x->st = charge(x->p, x->key, PAYMENTS_CARD_VISA, &x->r);
	return NULL;
}

static void threads_charging_one_key_at_once_share_one_charge(void **state)
{
	struct payments_provider *p = *state;
	struct racer racers[RACERS];
	pthread_t threads[RACERS];
	char key[IDS_UUID_SIZE];
	new_key(key);
	for (int i = 0; i < RACERS; i++) {
		racers[i] = (struct racer){ .p = p, .key = key, .st = SHOP_E_INTERNAL };
		assert_int_equal(pthread_create(&threads[i], NULL, racer_run, &racers[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(racers[i].st, SHOP_OK);
		assert_int_equal(racers[i].r.attempts, 1);
		assert_string_equal(racers[i].r.charge_id, racers[0].r.charge_id);
	}
}

static void the_ledger_survives_a_restart_of_the_provider(void **state)
{
	char dir[] = "/tmp/payments-provider-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/ledger.db", dir);
	char *url = xasprintf("sqlite:%s", path);
	struct payments_provider_charge_result r;
	char key[IDS_UUID_SIZE];
	new_key(key);

	struct payments_provider *p = payments_provider_create(url);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_E_UNAVAILABLE);
	payments_provider_destroy(p);

	/* The first attempt was committed: one more failure, then approval. */
	p = payments_provider_create(url);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_E_UNAVAILABLE);
	assert_int_equal(charge(p, key, PAYMENTS_CARD_FLAKY, &r), SHOP_OK);
	assert_int_equal(r.attempts, 3);
	payments_provider_destroy(p);

	char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);
	unlink(wal);
	unlink(shm);
	unlink(path);
	rmdir(dir);
	free(wal);
	free(shm);
	free(url);
	free(path);
}

static void an_unreachable_ledger_is_a_retryable_failure(void **state)
{
	struct payments_provider_charge_result r;
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	struct payments_provider *p = payments_provider_create(
		"sqlite:/nonexistent-dir/for/sure/ledger.db");
	shop_status st = charge(p, "k", PAYMENTS_CARD_VISA, &r);
	assert_int_not_equal(st, SHOP_OK);
	st = payments_provider_refund(p, "k", refund_id);
	assert_int_not_equal(st, SHOP_OK);
	payments_provider_destroy(p);
}

static void card_rules_are_deterministic(void **state)
{
	for (int64_t attempt = 1; attempt <= 5; attempt++) {
		assert_int_equal(payments_provider_decide(PAYMENTS_CARD_VISA, attempt),
				 PAYMENTS_PROVIDER_APPROVED);
		assert_int_equal(payments_provider_decide(PAYMENTS_CARD_DECLINED, attempt),
				 PAYMENTS_PROVIDER_DECLINED);
		assert_int_equal(payments_provider_decide("tok_other", attempt),
				 PAYMENTS_PROVIDER_DECLINED);
		assert_int_equal(payments_provider_decide(PAYMENTS_CARD_FLAKY, attempt),
				 attempt <= 2 ? PAYMENTS_PROVIDER_TRANSIENT
					      : PAYMENTS_PROVIDER_APPROVED);
	}
}

static void ledger_url_follows_the_service_database(void **state)
{
	char out[PAYMENTS_PROVIDER_URL_MAX + 1];
	assert_int_equal(payments_provider_url_derive("sqlite:/var/lib/shop/payments.db", out,
						      sizeof(out)),
			 SHOP_OK);
	assert_string_equal(out, "sqlite:/var/lib/shop/payments-provider.db");
	assert_int_equal(payments_provider_url_derive("sqlite:/data/pay", out, sizeof(out)),
			 SHOP_OK);
	assert_string_equal(out, "sqlite:/data/pay-provider");
	assert_int_equal(payments_provider_url_derive("sqlite:.db", out, sizeof(out)), SHOP_OK);
	assert_string_equal(out, "sqlite:.db-provider");
	assert_int_equal(payments_provider_url_derive("sqlite::memory:", out, sizeof(out)),
			 SHOP_OK);
	assert_string_equal(out, "sqlite::memory:");
	const char *pg = "postgresql://payments:secret@postgres:5432/payments";
	assert_int_equal(payments_provider_url_derive(pg, out, sizeof(out)), SHOP_OK);
	assert_string_equal(out, pg);

	assert_int_equal(payments_provider_url_derive("sqlite:", out, sizeof(out)), SHOP_E_INVALID);
	char small[16];
	assert_int_equal(payments_provider_url_derive("sqlite:/a/b/c.db", small, sizeof(small)),
			 SHOP_E_LIMIT);
}

static void a_ledger_in_the_service_sqlite_file_is_refused(void **state)
{
	const char *svc_url = "sqlite:/var/lib/shop/payments.db";
	assert_int_equal(payments_provider_url_check(svc_url, svc_url), SHOP_E_CONFLICT);
	assert_int_equal(payments_provider_url_check(svc_url,
						     "sqlite:/var/lib/shop/payments-provider.db"),
			 SHOP_OK);
	assert_int_equal(payments_provider_url_check("sqlite::memory:", "sqlite::memory:"),
			 SHOP_OK);
	const char *pg = "postgresql://payments@postgres/payments";
	assert_int_equal(payments_provider_url_check(pg, pg), SHOP_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(visa_is_approved_on_the_first_attempt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(declined_card_is_declined_as_card_declined, setup,
						teardown),
		cmocka_unit_test_setup_teardown(unknown_cards_are_declined, setup, teardown),
		cmocka_unit_test_setup_teardown(
			flaky_card_fails_twice_then_approves_with_three_attempts_and_one_charge,
			setup, teardown),
		cmocka_unit_test_setup_teardown(repeated_charges_with_one_key_never_charge_twice,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_decline_is_remembered_for_its_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_key_reused_for_a_different_request_is_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(bad_arguments_are_refused_before_the_ledger, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_charge_is_refunded_once_and_the_refund_id_repeats,
						setup, teardown),
		cmocka_unit_test_setup_teardown(only_approved_charges_can_be_refunded, setup,
						teardown),
		cmocka_unit_test_setup_teardown(only_an_approved_charge_is_found_by_its_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			open_charges_are_walked_in_key_order_without_refunded_or_declined_ones,
			setup, teardown),
		cmocka_unit_test_setup_teardown(threads_charging_one_key_at_once_share_one_charge,
						setup, teardown),
		cmocka_unit_test(the_ledger_survives_a_restart_of_the_provider),
		cmocka_unit_test(an_unreachable_ledger_is_a_retryable_failure),
		cmocka_unit_test(card_rules_are_deterministic),
		cmocka_unit_test(ledger_url_follows_the_service_database),
		cmocka_unit_test(a_ledger_in_the_service_sqlite_file_is_refused),
	};
	return cmocka_run_group_tests_name("payments_provider", tests, NULL, NULL);
}
