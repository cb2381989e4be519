/*
 * test_payments_handlers.c - payments' handlers against real SQLite: the
 * service's tables in one database, the provider's ledger in its own, and a
 * detached runtime (no bus) whose svc_emit writes to the outbox, so every
 * case checks both the payment row and exactly which events were emitted.
 *
 * Handlers run through svc_tx_run, which begins, runs, and commits or rolls
 * back exactly as the consumer loop does; one case goes through
 * svc_handle_envelope to check the route table and the contract decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "db/db.h"
#include "evt/envelope.h"
#include "payments_harness.h"
#include "svc/svc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOTAL 12345
#define CURRENCY PAYMENTS_HARNESS_CURRENCY
#define OUTBOX_MAX 8

struct fixture {
	struct db *db;
	struct payments_provider *provider;
	struct payments_ctx ctx;
	struct svc_spec spec;
	struct svc *svc;
	char order_id[IDS_UUID_SIZE];
	char dir[64]; /* temporary directory of file-backed cases, or "" */
};

static int fixture_open(void **state, const char *db_url, const char *provider_url)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->provider = payments_provider_create(provider_url);
	f->ctx.provider = f->provider;
	payments_harness_spec_fill(&f->spec, &f->ctx, db_url);
	*state = f;
	if (harness_open(&f->spec, db_url, &f->db, &f->svc) != SHOP_OK)
		return -1;
	ids_uuid7(f->order_id);
	return 0;
}

static int setup(void **state)
{
	log_init("payments-test", LOG_LVL_ERROR);
	return fixture_open(state, "sqlite::memory:", "sqlite::memory:");
}

static int setup_files(void **state)
{
	/* The deployed SQLite layout: service file and the derived ledger file. */
	char dir[] = "/tmp/payments-handlers-XXXXXX";
	char db_url[128], provider_url[PAYMENTS_PROVIDER_URL_MAX + 1];
	log_init("payments-test", LOG_LVL_ERROR);
	if (!mkdtemp(dir))
		return -1;
	snprintf(db_url, sizeof(db_url), "sqlite:%s/payments.db", dir);
	if (payments_provider_url_derive(db_url, provider_url, sizeof(provider_url)) != SHOP_OK)
		return -1;
	if (fixture_open(state, db_url, provider_url) != 0)
		return -1;
	struct fixture *f = *state;
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	svc_destroy(f->svc);
	payments_provider_destroy(f->provider);
	db_close(f->db);
	if (f->dir[0]) {
		static const char *const files[] = { "payments.db",
						     "payments.db-wal",
						     "payments.db-shm",
						     "payments-provider.db",
						     "payments-provider.db-wal",
						     "payments-provider.db-shm" };
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			char *path = xasprintf("%s/%s", f->dir, files[i]);
			unlink(path);
			free(path);
		}
		rmdir(f->dir);
	}
	free(f);
	return 0;
}

/* ---- driving handlers ------------------------------------------------- */

static shop_status submit_card(struct fixture *f, const char *card_token)
{
	return payments_harness_submit_card(f->svc, f->db, f->order_id, card_token);
}

static shop_status stock_reserved(struct fixture *f, int64_t total)
{
	return payments_harness_stock_reserved(f->svc, f->db, f->order_id, total);
}

static shop_status order_cancelled(struct fixture *f)
{
	return payments_harness_order_cancelled(f->svc, f->db, f->order_id);
}

/* The card CARD_TOKEN submitted and the order's stock reserved at TOTAL,
 * both handled without error: the charge has been decided. */
static void place_and_reserve(struct fixture *f, const char *card_token)
{
	assert_int_equal(submit_card(f, card_token), SHOP_OK);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
}

/* The visa card submitted, and charged at TOTAL by an earlier
 * delivery that reached the provider and then died before its commit. */
static void place_and_charge_at_the_provider(struct fixture *f,
					     struct payments_provider_charge_result *earlier)
{
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(payments_provider_charge(f->provider, f->order_id, PAYMENTS_CARD_VISA,
						  TOTAL, CURRENCY, earlier),
			 SHOP_OK);
}

/* ---- reading what happened -------------------------------------------- */

static struct payments_row row_of(struct fixture *f)
{
	struct payments_row row;
	assert_int_equal(payments_store_get(f->db, f->order_id, &row), SHOP_OK);
	return row;
}

struct emitted {
	size_t n;
	char subject[OUTBOX_MAX][128];
	cJSON *env[OUTBOX_MAX]; /* whole envelopes, in outbox order */
};

static void emitted_read(struct fixture *f, struct emitted *out)
{
	struct db_result *r = NULL;
	memset(out, 0, sizeof(*out));
	assert_int_equal(db_query(f->db, "SELECT subject, payload FROM outbox ORDER BY id",
				  DB_NOARGS, &r),
			 SHOP_OK);
	out->n = (size_t)db_result_rows(r);
	assert_true(out->n <= OUTBOX_MAX);
	for (size_t i = 0; i < out->n; i++) {
		snprintf(out->subject[i], sizeof(out->subject[i]), "%s",
			 db_result_text(r, (int)i, 0));
		out->env[i] = cJSON_Parse(db_result_text(r, (int)i, 1));
		assert_non_null(out->env[i]);
	}
	db_result_free(r);
}

static void emitted_free(struct emitted *e)
{
	for (size_t i = 0; i < e->n; i++)
		cJSON_Delete(e->env[i]);
	e->n = 0;
}

static const cJSON *data_of(const struct emitted *e, size_t i)
{
	return cJSON_GetObjectItemCaseSensitive(e->env[i], "data");
}

static const char *data_str(const struct emitted *e, size_t i, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(data_of(e, i), field);
	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static int64_t data_int(const struct emitted *e, size_t i, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(data_of(e, i), field);
	assert_true(cJSON_IsNumber(v));
	return (int64_t)v->valuedouble;
}

/* Event I of E is on SUBJECT, about the fixture's order and payment
 * PAYMENT_ID, for TOTAL in CURRENCY. */
static void assert_payment_event(struct fixture *f, const struct emitted *e, size_t i,
				 const char *subject, const char *payment_id)
{
	assert_string_equal(e->subject[i], subject);
	assert_string_equal(data_str(e, i, "order_id"), f->order_id);
	assert_string_equal(data_str(e, i, "payment_id"), payment_id);
	assert_int_equal(data_int(e, i, "amount_cents"), TOTAL);
	assert_string_equal(data_str(e, i, "currency"), CURRENCY);
}

/* The outbox holds exactly N events, on SUBJECTS in that order, each for
 * AMOUNT cents. */
static void assert_events_for(struct fixture *f, const char *const *subjects, size_t n,
			      int64_t amount)
{
	struct emitted e;
	emitted_read(f, &e);
	assert_int_equal(e.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(e.subject[i], subjects[i]);
		assert_int_equal(data_int(&e, i, "amount_cents"), amount);
	}
	emitted_free(&e);
}

static size_t outbox_count(struct fixture *f)
{
	struct emitted e;
	emitted_read(f, &e);
	size_t n = e.n;
	emitted_free(&e);
	return n;
}

/* ---- cases ------------------------------------------------------------ */

static void submit_card_records_a_new_payment_with_the_card_token(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_NEW);
	assert_string_equal(row.card_token, PAYMENTS_CARD_VISA);
	assert_false(row.has_reservation);
	assert_int_equal(row.attempts, 0);
	assert_string_equal(row.payment_id, "");
	assert_int_equal(outbox_count(f), 0);
}

static void submit_card_twice_keeps_the_first_card(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(submit_card(f, PAYMENTS_CARD_DECLINED), SHOP_OK);
	assert_string_equal(row_of(f).card_token, PAYMENTS_CARD_VISA);
	assert_int_equal(outbox_count(f), 0);
}

/* The two facts of a charge come on two streams, in either order. */
static void stock_reserved_first_waits_and_the_card_charges_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_NEW);
	assert_string_equal(row.card_token, "");
	assert_true(row.has_reservation);
	assert_int_equal(row.reserved_cents, TOTAL);
	assert_string_equal(row.reserved_currency, CURRENCY);
	assert_int_equal(outbox_count(f), 0);

	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_int_equal(row.amount_cents, TOTAL);
	assert_string_equal(row.card_token, ""); /* kept only while waiting */
	static const char *const authorized[] = { "payments.event.payment_authorized.v1" };
	assert_events_for(f, authorized, 1, TOTAL);
}

static void the_card_first_waits_and_the_reservation_charges_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(outbox_count(f), 0);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_int_equal(row.attempts, 1);
	assert_string_equal(row.card_token, "");
	static const char *const authorized[] = { "payments.event.payment_authorized.v1" };
	assert_events_for(f, authorized, 1, TOTAL);
}

/* Every message of the pair redelivered, before and after the charge, in
 * both orders: one charge at the provider, one PaymentAuthorized. */
static void redelivered_cards_and_reservations_in_either_order_charge_once(void **state)
{
	struct fixture *f = *state;
	static const char *const authorized[] = { "payments.event.payment_authorized.v1" };
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_NEW);
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_events_for(f, authorized, 1, TOTAL);

	/* The other order on a second order id of the same fixture. */
	ids_uuid7(f->order_id);
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(outbox_count(f), 2); /* one PaymentAuthorized per order */
}

/* The card arrives second and the provider fails for a while: each try is
 * rolled back (the card is not kept), the redelivered SubmitCard tries
 * again, and the approval is recorded once. */
static void a_card_arriving_second_is_retried_through_a_flaky_provider(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	for (int i = 0; i < PAYMENTS_PROVIDER_FLAKY_FAILURES; i++) {
		assert_int_equal(submit_card(f, PAYMENTS_CARD_FLAKY), SHOP_E_UNAVAILABLE);
		struct payments_row row = row_of(f);
		assert_int_equal(row.status, PAYMENTS_NEW);
		assert_string_equal(row.card_token, "");
		assert_int_equal(outbox_count(f), 0);
	}
	assert_int_equal(submit_card(f, PAYMENTS_CARD_FLAKY), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_CHARGED);
	assert_int_equal(row_of(f).attempts, 3);
	assert_int_equal(outbox_count(f), 1);
}

static void order_cancelled_while_waiting_for_the_card_cancels_and_the_card_charges_nothing(
	void **state)
{
	struct fixture *f = *state;
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(order_cancelled(f), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_CANCELLED);
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CANCELLED);
	assert_string_equal(row.card_token, "");
	assert_int_equal(outbox_count(f), 0);
	struct payments_provider_charge_info charge;
	assert_int_equal(payments_provider_charge_find(f->provider, f->order_id, &charge),
			 SHOP_E_NOT_FOUND);
}

static void order_cancelled_while_waiting_for_the_reservation_forgets_the_card(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(order_cancelled(f), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CANCELLED);
	assert_string_equal(row.card_token, "");
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_CANCELLED);
	assert_int_equal(outbox_count(f), 0);
}

static void visa_charges_the_reserved_total_and_emits_payment_authorized(void **state)
{
	struct fixture *f = *state;
	place_and_reserve(f, PAYMENTS_CARD_VISA);

	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_int_equal(row.amount_cents, TOTAL);
	assert_string_equal(row.currency, CURRENCY);
	assert_int_equal(row.attempts, 1);
	assert_true(ids_uuid_valid(row.payment_id));
	assert_memory_equal(row.charge_id, "ch_", 3);

	struct emitted e;
	emitted_read(f, &e);
	assert_int_equal(e.n, 1);
	assert_payment_event(f, &e, 0, "payments.event.payment_authorized.v1", row.payment_id);
	assert_int_equal(data_int(&e, 0, "attempts"), 1);
	const cJSON *subject = cJSON_GetObjectItemCaseSensitive(e.env[0], "subject");
	assert_string_equal(subject->valuestring, f->order_id);
	emitted_free(&e);
}

static void declined_card_declines_and_emits_payment_declined(void **state)
{
	struct fixture *f = *state;
	place_and_reserve(f, PAYMENTS_CARD_DECLINED);

	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_DECLINED);
	assert_string_equal(row.decline_reason, "card_declined");
	assert_string_equal(row.charge_id, "");

	struct emitted e;
	emitted_read(f, &e);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.subject[0], "payments.event.payment_declined.v1");
	assert_string_equal(data_str(&e, 0, "reason"), "card_declined");
	assert_int_equal(data_int(&e, 0, "amount_cents"), TOTAL);
	assert_string_equal(data_str(&e, 0, "currency"), CURRENCY);
	emitted_free(&e);
}

static void unknown_card_is_declined(void **state)
{
	struct fixture *f = *state;
	place_and_reserve(f, "tok_amex");
	assert_int_equal(row_of(f).status, PAYMENTS_DECLINED);
}

static void flaky_card_is_retried_until_the_third_attempt_authorizes_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_FLAKY), SHOP_OK);
	for (int i = 0; i < PAYMENTS_PROVIDER_FLAKY_FAILURES; i++) {
		/* The runtime rolls back and redelivers later; nothing changed
		 * here, but the provider counted the attempt. */
		assert_int_equal(stock_reserved(f, TOTAL), SHOP_E_UNAVAILABLE);
		assert_int_equal(row_of(f).status, PAYMENTS_NEW);
		assert_int_equal(outbox_count(f), 0);
	}
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_int_equal(row.attempts, 3);

	/* One charge at the provider: asking again returns the same one. */
	struct payments_provider_charge_result r;
	assert_int_equal(payments_provider_charge(f->provider, f->order_id, PAYMENTS_CARD_FLAKY,
						  TOTAL, CURRENCY, &r),
			 SHOP_OK);
	assert_string_equal(r.charge_id, row.charge_id);
	assert_int_equal(r.attempts, 3);

	struct emitted e;
	emitted_read(f, &e);
	assert_int_equal(e.n, 1);
	assert_int_equal(data_int(&e, 0, "attempts"), 3);
	emitted_free(&e);
}

static void stock_reserved_again_after_the_charge_changes_nothing(void **state)
{
	struct fixture *f = *state;
	place_and_reserve(f, PAYMENTS_CARD_VISA);
	struct payments_row before = row_of(f);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	struct payments_row after = row_of(f);
	assert_string_equal(after.payment_id, before.payment_id);
	assert_string_equal(after.charge_id, before.charge_id);
	assert_int_equal(outbox_count(f), 1);
}

static void a_charge_made_before_a_crash_is_reused_not_repeated(void **state)
{
	struct fixture *f = *state;
	struct payments_provider_charge_result earlier;
	place_and_charge_at_the_provider(f, &earlier);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_string_equal(row.charge_id, earlier.charge_id);
	assert_int_equal(row.attempts, 1);
}

static void a_reservation_with_a_different_total_for_a_charged_key_is_refused(void **state)
{
	struct fixture *f = *state;
	struct payments_provider_charge_result earlier;
	place_and_charge_at_the_provider(f, &earlier);
	assert_int_equal(stock_reserved(f, TOTAL + 1), SHOP_E_INVALID);
	assert_int_equal(row_of(f).status, PAYMENTS_NEW);
	assert_int_equal(outbox_count(f), 0);
}

static void order_cancelled_after_the_charge_refunds_once(void **state)
{
	struct fixture *f = *state;
	place_and_reserve(f, PAYMENTS_CARD_VISA);
	struct payments_row charged = row_of(f);

	assert_int_equal(order_cancelled(f), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_REFUNDED);
	assert_memory_equal(row.refund_id, "re_", 3);

	/* The provider has exactly this refund: asking again returns it. */
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	assert_int_equal(payments_provider_refund(f->provider, f->order_id, refund_id), SHOP_OK);
	assert_string_equal(refund_id, row.refund_id);

	/* A second cancellation (or a late reservation) does nothing. */
	assert_int_equal(order_cancelled(f), SHOP_OK);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_REFUNDED);

	struct emitted e;
	emitted_read(f, &e);
	assert_int_equal(e.n, 2);
	assert_payment_event(f, &e, 1, "payments.event.payment_refunded.v1", charged.payment_id);
	emitted_free(&e);
}

static void order_cancelled_before_the_charge_cancels_and_a_late_reservation_charges_nothing(
	void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(order_cancelled(f), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_CANCELLED);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_CANCELLED);
	assert_int_equal(outbox_count(f), 0);
	/* The provider never saw the order. */
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	assert_int_equal(payments_provider_refund(f->provider, f->order_id, refund_id),
			 SHOP_E_NOT_FOUND);
}

/* The provider committed the charge, then the handler died before its own
 * commit: the row is NEW but the money is taken. */
static void order_cancelled_after_an_unrecorded_charge_refunds_it(void **state)
{
	struct fixture *f = *state;
	struct payments_provider_charge_result earlier;
	struct payments_provider_charge_info ledger;
	place_and_charge_at_the_provider(f, &earlier);
	assert_int_equal(row_of(f).status, PAYMENTS_NEW);

	assert_int_equal(order_cancelled(f), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_REFUNDED);
	assert_string_equal(row.charge_id, earlier.charge_id);
	assert_memory_equal(row.refund_id, "re_", 3);
	assert_int_equal(row.amount_cents, TOTAL);
	assert_int_equal(payments_provider_charge_find(f->provider, f->order_id, &ledger), SHOP_OK);
	assert_true(ledger.refunded);

	/* The reservation redelivered late charges nothing again. */
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(order_cancelled(f), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_REFUNDED);
	struct emitted e;
	emitted_read(f, &e);
	assert_int_equal(e.n, 1);
	assert_payment_event(f, &e, 0, "payments.event.payment_refunded.v1", row.payment_id);
	emitted_free(&e);
}

static void reconciliation_refunds_a_charge_that_landed_after_the_cancellation(void **state)
{
	struct fixture *f = *state;
	struct payments_provider_charge_result late;
	struct payments_provider_charge_info ledger;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(order_cancelled(f), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_CANCELLED);
	/* A charge still in flight when the cancellation asked lands now. */
	assert_int_equal(payments_provider_charge(f->provider, f->order_id, PAYMENTS_CARD_VISA,
						  TOTAL, CURRENCY, &late),
			 SHOP_OK);

	assert_int_equal(payments_reconcile(f->svc, f->db), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_REFUNDED);
	assert_string_equal(row.charge_id, late.charge_id);
	assert_int_equal(payments_provider_charge_find(f->provider, f->order_id, &ledger), SHOP_OK);
	assert_true(ledger.refunded);
	assert_memory_equal(row.refund_id, "re_", 3);

	/* A second pass finds nothing open. */
	assert_int_equal(payments_reconcile(f->svc, f->db), SHOP_OK);
	assert_int_equal(payments_reconcile(f->svc, f->db), SHOP_OK);
	struct emitted e;
	emitted_read(f, &e);
	assert_int_equal(e.n, 1);
	assert_payment_event(f, &e, 0, "payments.event.payment_refunded.v1", row.payment_id);
	emitted_free(&e);
}

static void reconciliation_leaves_paid_and_undecided_payments_alone(void **state)
{
	struct fixture *f = *state;
	struct payments_provider_charge_result earlier;
	char paid[IDS_UUID_SIZE];
	/* A paid order, and one whose charge is not recorded yet: its
	 * reservation will be redelivered and record it. */
	place_and_reserve(f, PAYMENTS_CARD_VISA);
	memcpy(paid, f->order_id, sizeof(paid));
	ids_uuid7(f->order_id);
	place_and_charge_at_the_provider(f, &earlier);

	assert_int_equal(payments_reconcile(f->svc, f->db), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_NEW);
	struct payments_row row;
	assert_int_equal(payments_store_get(f->db, paid, &row), SHOP_OK);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_int_equal(outbox_count(f), 1); /* only the paid order's PaymentAuthorized */
}

static void order_cancelled_before_anything_leaves_a_tombstone_the_card_keeps(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(order_cancelled(f), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CANCELLED);
	assert_string_equal(row.card_token, "");

	place_and_reserve(f, PAYMENTS_CARD_VISA);
	row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CANCELLED);
	assert_string_equal(row.card_token, "");
	assert_int_equal(outbox_count(f), 0);
}

static void order_cancelled_after_a_decline_changes_nothing(void **state)
{
	struct fixture *f = *state;
	place_and_reserve(f, PAYMENTS_CARD_DECLINED);
	assert_int_equal(order_cancelled(f), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_DECLINED);
	assert_int_equal(outbox_count(f), 1); /* only PaymentDeclined */
}

static void a_failing_provider_rolls_back_and_leaves_the_intent_new(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	struct payments_provider *good = f->ctx.provider;
	f->ctx.provider = payments_provider_create("sqlite:/nonexistent-dir/for/sure/ledger.db");
	assert_int_not_equal(stock_reserved(f, TOTAL), SHOP_OK);
	payments_provider_destroy(f->ctx.provider);
	f->ctx.provider = good;
	assert_int_equal(row_of(f).status, PAYMENTS_NEW);
	assert_int_equal(outbox_count(f), 0);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_CHARGED);
}

/* Through the runtime: envelope decoding, contract check, route, inbox. */
static shop_status deliver_reservation(struct fixture *f, const struct ct_stock_reserved *m,
				       char **ret_json)
{
	char reason[HARNESS_REASON_MAX] = "";
	struct harness_envelope attrs = { .subject = f->order_id };
	char *json = harness_message_envelope(CT_MSG_STOCK_RESERVED, attrs, m);
	shop_status st = harness_deliver(f->svc, f->db, "payments", json, reason, sizeof(reason));
	if (st != SHOP_OK)
		print_message("delivery: %s (%s)\n", shop_status_name(st), reason);
	if (ret_json)
		*ret_json = json;
	else
		free(json);
	return st;
}

static void a_redelivered_reservation_through_the_runtime_charges_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);

	struct ct_stock_reserved m;
	payments_harness_stock_reserved_fill(&m, f->order_id, TOTAL);
	char *json = NULL;
	assert_int_equal(deliver_reservation(f, &m, &json), SHOP_OK);
	assert_int_equal(harness_deliver(f->svc, f->db, "payments", json, NULL, 0),
			 SHOP_E_DUPLICATE);
	free(json);
	assert_int_equal(row_of(f).status, PAYMENTS_CHARGED);
	assert_int_equal(outbox_count(f), 1);
}

/* SubmitCard through the runtime (CARDS is a work queue, but a redelivery
 * before the ack still happens): decoded, routed, and the inbox drops the
 * second copy; the reservation then charges once. */
static void a_redelivered_card_through_the_runtime_charges_once(void **state)
{
	struct fixture *f = *state;
	struct ct_submit_card m;
	memset(&m, 0, sizeof(m));
	snprintf(m.order_id, sizeof(m.order_id), "%s", f->order_id);
	snprintf(m.customer_id, sizeof(m.customer_id), "cust-1");
	snprintf(m.payment.card_token, sizeof(m.payment.card_token), PAYMENTS_CARD_VISA);
	struct harness_envelope attrs = { .subject = f->order_id };
	char *json = harness_message_envelope(CT_MSG_SUBMIT_CARD, attrs, &m);
	assert_int_equal(harness_deliver(f->svc, f->db, "payments", json, NULL, 0), SHOP_OK);
	assert_int_equal(harness_deliver(f->svc, f->db, "payments", json, NULL, 0),
			 SHOP_E_DUPLICATE);
	free(json);
	assert_int_equal(stock_reserved(f, TOTAL), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_CHARGED);
	assert_int_equal(outbox_count(f), 1);
}

/* A StockReserved for the largest order of keyboards: 50 lines of 1000 at
 * 89.00 EUR, a total above the unit price ceiling of the contracts. */
#define LARGE_LINES 50
#define LARGE_QUANTITY 1000
#define LARGE_PRICE 8900
#define LARGE_TOTAL ((int64_t)LARGE_LINES * LARGE_QUANTITY * LARGE_PRICE)

static shop_status deliver_large_reservation(struct fixture *f)
{
	struct ct_stock_reserved m;
	payments_harness_stock_reserved_fill(&m, f->order_id, LARGE_TOTAL);
	for (int i = 0; i < LARGE_LINES; i++) {
		snprintf(m.lines[i].sku, sizeof(m.lines[i].sku), "SKU-KEYBOARD");
		m.lines[i].quantity = LARGE_QUANTITY;
		m.lines[i].unit_price_cents = LARGE_PRICE;
	}
	m.lines_len = LARGE_LINES;
	return deliver_reservation(f, &m, NULL);
}

static void a_total_above_any_unit_price_is_authorized_and_refunded_in_full(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(deliver_large_reservation(f), SHOP_OK);
	struct payments_row row = row_of(f);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_int_equal(row.amount_cents, LARGE_TOTAL);

	assert_int_equal(order_cancelled(f), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_REFUNDED);

	static const char *const subjects[] = { "payments.event.payment_authorized.v1",
						"payments.event.payment_refunded.v1" };
	assert_events_for(f, subjects, 2, LARGE_TOTAL);
}

static void a_total_above_any_unit_price_is_declined_with_its_amount(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(submit_card(f, PAYMENTS_CARD_DECLINED), SHOP_OK);
	assert_int_equal(deliver_large_reservation(f), SHOP_OK);
	assert_int_equal(row_of(f).status, PAYMENTS_DECLINED);

	static const char *const subjects[] = { "payments.event.payment_declined.v1" };
	assert_events_for(f, subjects, 1, LARGE_TOTAL);
}

/* The same sagas on files, as deployed on SQLite: the handler's transaction
 * holds the service file's write lock while the provider commits to its own
 * file (on one file the provider would wait for the handler forever). */
static void on_sqlite_files_a_flaky_card_still_authorizes_once(void **state)
{
	flaky_card_is_retried_until_the_third_attempt_authorizes_once(state);
}

static void on_sqlite_files_a_cancelled_charge_is_refunded(void **state)
{
	order_cancelled_after_the_charge_refunds_once(state);
}

static void on_sqlite_files_a_late_charge_on_a_cancelled_order_is_reconciled(void **state)
{
	reconciliation_refunds_a_charge_that_landed_after_the_cancellation(state);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(submit_card_records_a_new_payment_with_the_card_token),
		T(submit_card_twice_keeps_the_first_card),
		T(stock_reserved_first_waits_and_the_card_charges_once),
		T(the_card_first_waits_and_the_reservation_charges_once),
		T(redelivered_cards_and_reservations_in_either_order_charge_once),
		T(a_card_arriving_second_is_retried_through_a_flaky_provider),
		T(order_cancelled_while_waiting_for_the_card_cancels_and_the_card_charges_nothing),
		T(order_cancelled_while_waiting_for_the_reservation_forgets_the_card),
		T(a_redelivered_card_through_the_runtime_charges_once),
		T(visa_charges_the_reserved_total_and_emits_payment_authorized),
		T(declined_card_declines_and_emits_payment_declined),
		T(unknown_card_is_declined),
		T(flaky_card_is_retried_until_the_third_attempt_authorizes_once),
		T(stock_reserved_again_after_the_charge_changes_nothing),
		T(a_charge_made_before_a_crash_is_reused_not_repeated),
		T(a_reservation_with_a_different_total_for_a_charged_key_is_refused),
		T(order_cancelled_after_the_charge_refunds_once),
		T(order_cancelled_before_the_charge_cancels_and_a_late_reservation_charges_nothing),
		T(order_cancelled_after_an_unrecorded_charge_refunds_it),
		T(reconciliation_refunds_a_charge_that_landed_after_the_cancellation),
		T(reconciliation_leaves_paid_and_undecided_payments_alone),
		T(order_cancelled_before_anything_leaves_a_tombstone_the_card_keeps),
		T(order_cancelled_after_a_decline_changes_nothing),
		T(a_failing_provider_rolls_back_and_leaves_the_intent_new),
		T(a_redelivered_reservation_through_the_runtime_charges_once),
		T(a_total_above_any_unit_price_is_authorized_and_refunded_in_full),
		T(a_total_above_any_unit_price_is_declined_with_its_amount),
		cmocka_unit_test_setup_teardown(on_sqlite_files_a_flaky_card_still_authorizes_once,
						setup_files, teardown),
		cmocka_unit_test_setup_teardown(on_sqlite_files_a_cancelled_charge_is_refunded,
						setup_files, teardown),
		cmocka_unit_test_setup_teardown(
			on_sqlite_files_a_late_charge_on_a_cancelled_order_is_reconciled,
			setup_files, teardown),
	};
	return cmocka_run_group_tests_name("payments_handlers", tests, NULL, NULL);
}
