/* test_inventory_handlers.c - the inventory's handlers as the runtime calls
 * them: real envelopes through svc_handle_envelope (contract check, inbox
 * claim and handler in one transaction) on a detached runtime over an
 * in-process SQLite database, checking the events that land in the outbox.
 *
 * tests/component/test_inventory_handlers_pg.c runs every case on PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/ids.h"
#include "core/log.h"

#define CONSUMER "inventory"
#define SUBJECT_RESERVED "inventory.event.stock_reserved.v1"
#define SUBJECT_REJECTED "inventory.event.stock_rejected.v1"
#define SUBJECT_RELEASED "inventory.event.stock_released.v1"
#define SUBJECT_LEVEL "inventory.event.stock_level_changed.v1"

#define TEST_URL_MAX 1024

#include "inventory_harness.h"
#include "service_sqlite_backend.h"

#ifndef TEST_EXTRA_CASES
#define TEST_EXTRA_CASES
#endif

static struct svc_spec spec; /* the runtime keeps a pointer to it */

struct fixture {
	char url[TEST_URL_MAX];
	struct svc *svc;
	struct db *db;
	char order_id[IDS_UUID_SIZE];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	inventory_harness_spec_fill(&spec);
	backend_url(f->url, sizeof(f->url), false);
	assert_int_equal(harness_open(&spec, f->url, &f->db, &f->svc), SHOP_OK);
	assert_int_equal(svc_tx_run(f->svc, f->db, NULL, NULL, inventory_harness_run_init, NULL),
			 SHOP_OK);
	ids_uuid7(f->order_id);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->db);
	svc_destroy(f->svc);
	backend_release(f->url);
	free(f);
	return 0;
}

/* An envelope of TYPE around DATA (taken), with a fresh event id unless
 * EVENT_ID is given; returns a malloc'd JSON string. */
static char *envelope(const char *type, const char *subject, const char *event_id, cJSON *data)
{
	char corr[IDS_UUID_SIZE + 8];
	snprintf(corr, sizeof(corr), "corr-%s", subject);
	return harness_envelope_encode(&(struct harness_envelope){ .id = event_id,
								   .type = type,
								   .subject = subject,
								   .correlation_id = corr },
				       data);
}

static cJSON *order_cancelled(const char *order_id, const char *reason)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "order_id", order_id);
	cJSON_AddStringToObject(d, "reason", reason);
	return d;
}

static cJSON *payment_declined(const char *order_id)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "order_id", order_id);
	cJSON_AddStringToObject(d, "reason", "card_declined");
	cJSON_AddNumberToObject(d, "amount_cents", 990);
	cJSON_AddStringToObject(d, "currency", "EUR");
	return d;
}

static shop_status handle(struct fixture *f, const char *json)
{
	return harness_deliver(f->svc, f->db, CONSUMER, json, NULL, 0);
}

/* Handles a fresh envelope of TYPE about the fixture's order. */
static shop_status deliver(struct fixture *f, const char *type, cJSON *data)
{
	char *json = envelope(type, f->order_id, NULL, data);
	shop_status st = handle(f, json);
	free(json);
	return st;
}

static shop_status place(struct fixture *f, size_t n, const char *const *skus,
			 const int *quantities)
{
	return deliver(f, "shop.orders.order_placed.v1",
		       harness_order_placed_json(f->order_id, n, skus, quantities));
}

static const cJSON *data_of(const cJSON *doc, const char *field)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
	assert_non_null(data);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, field);
	assert_non_null(v);
	return v;
}

/* The newest StockRejected, which must give REASON; cJSON_Delete it. */
static cJSON *rejected_for(struct fixture *f, const char *reason)
{
	cJSON *doc = harness_outbox_last(f->db, SUBJECT_REJECTED);
	assert_string_equal(data_of(doc, "reason")->valuestring, reason);
	return doc;
}

static void init_announces_each_product_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_LEVEL),
			 (int64_t)inventory_catalogue_len);
	cJSON *doc = harness_outbox_last(f->db, SUBJECT_LEVEL);
	const char *sku = cJSON_GetObjectItemCaseSensitive(doc, "subject")->valuestring;
	assert_string_equal(sku, data_of(doc, "sku")->valuestring);
	assert_int_equal(data_of(doc, "revision")->valueint, 1);
	cJSON_Delete(doc);

	/* A restart (the init hook again) announces nothing. */
	assert_int_equal(svc_tx_run(f->svc, f->db, NULL, NULL, inventory_harness_run_init, NULL),
			 SHOP_OK);
	assert_int_equal(harness_outbox_total(f->db), (int64_t)inventory_catalogue_len);
}

static void order_placed_emits_stock_reserved_with_prices_and_new_levels(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-MOUSE", "SKU-CABLE", "SKU-MOUSE" };
	const int q[] = { 1, 2, 1 };
	int64_t before = harness_outbox_total(f->db);

	assert_int_equal(place(f, 3, skus, q), SHOP_OK);
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_RESERVED), 1);
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_REJECTED), 0);
	assert_int_equal(harness_outbox_total(f->db), before + 1 + 2);

	cJSON *doc = harness_outbox_last(f->db, SUBJECT_RESERVED);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "subject")->valuestring,
			    f->order_id);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "type")->valuestring,
			    "shop.inventory.stock_reserved.v1");
	char corr[80];
	snprintf(corr, sizeof(corr), "corr-%s", f->order_id);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "correlationid")->valuestring,
			    corr);
	assert_string_equal(data_of(doc, "order_id")->valuestring, f->order_id);
	assert_int_equal(data_of(doc, "total_cents")->valueint, 2 * 990 + 2 * 2900);
	assert_string_equal(data_of(doc, "currency")->valuestring, "EUR");
	const cJSON *lines = data_of(doc, "lines");
	assert_int_equal(cJSON_GetArraySize(lines), 2);
	const cJSON *first = cJSON_GetArrayItem(lines, 0);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(first, "sku")->valuestring,
			    "SKU-CABLE");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(first, "quantity")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(first, "unit_price_cents")->valueint,
			 990);
	cJSON_Delete(doc);

	doc = harness_outbox_last(f->db, SUBJECT_LEVEL);
	assert_string_equal(data_of(doc, "sku")->valuestring, "SKU-MOUSE");
	assert_int_equal(data_of(doc, "available")->valueint, 1000000 - 2);
	assert_int_equal(data_of(doc, "revision")->valueint, 2);
	cJSON_Delete(doc);
}

static void a_redelivered_order_placed_is_a_duplicate_and_emits_nothing(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-LIMITED" };
	const int q[] = { 1 };
	char *json = envelope("shop.orders.order_placed.v1", f->order_id, NULL,
			      harness_order_placed_json(f->order_id, 1, skus, q));
	assert_int_equal(handle(f, json), SHOP_OK);
	int64_t after_first = harness_outbox_total(f->db);
	assert_int_equal(handle(f, json), SHOP_E_DUPLICATE);
	assert_int_equal(svc_settle_decide(SHOP_E_DUPLICATE, 2), SVC_ACK);
	assert_int_equal(harness_outbox_total(f->db), after_first);
	free(json);

	/* The same order again under a new event id reserves nothing more. */
	assert_int_equal(place(f, 1, skus, q), SHOP_OK);
	assert_int_equal(harness_outbox_total(f->db), after_first);
	assert_int_equal(inventory_harness_available(f->db, "SKU-LIMITED"), 2);
}

static void an_order_that_cannot_be_served_emits_stock_rejected_only(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-CABLE", "SKU-VINTAGE" };
	const int q[] = { 1, 1 };
	int64_t before = harness_outbox_total(f->db);
	assert_int_equal(place(f, 2, skus, q), SHOP_OK);
	assert_int_equal(harness_outbox_total(f->db), before + 1);
	cJSON *doc = rejected_for(f, "out_of_stock");
	const cJSON *bad = data_of(doc, "skus");
	assert_int_equal(cJSON_GetArraySize(bad), 1);
	assert_string_equal(cJSON_GetArrayItem(bad, 0)->valuestring, "SKU-VINTAGE");
	cJSON_Delete(doc);
}

static void an_unknown_sku_emits_stock_rejected_with_unknown_sku(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-VINTAGE", "SKU-DOES-NOT-EXIST" };
	const int q[] = { 1, 1 };
	assert_int_equal(place(f, 2, skus, q), SHOP_OK);
	cJSON *doc = rejected_for(f, "unknown_sku");
	assert_string_equal(cJSON_GetArrayItem(data_of(doc, "skus"), 0)->valuestring,
			    "SKU-DOES-NOT-EXIST");
	cJSON_Delete(doc);
}

static void order_cancelled_releases_once_with_stock_released_and_levels(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-MONITOR", "SKU-HEADSET" };
	const int q[] = { 2, 1 };
	assert_int_equal(place(f, 2, skus, q), SHOP_OK);
	int64_t before = harness_outbox_total(f->db);

	assert_int_equal(deliver(f, "shop.orders.order_cancelled.v1",
				 order_cancelled(f->order_id, "customer_cancelled")),
			 SHOP_OK);
	assert_int_equal(harness_outbox_total(f->db), before + 1 + 2);
	cJSON *doc = harness_outbox_last(f->db, SUBJECT_RELEASED);
	const cJSON *lines = data_of(doc, "lines");
	assert_int_equal(cJSON_GetArraySize(lines), 2);
	const cJSON *monitor = cJSON_GetArrayItem(lines, 1);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(monitor, "sku")->valuestring,
			    "SKU-MONITOR");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(monitor, "quantity")->valueint, 2);
	cJSON_Delete(doc);
	doc = harness_outbox_last(f->db, SUBJECT_LEVEL);
	assert_string_equal(data_of(doc, "sku")->valuestring, "SKU-MONITOR");
	assert_int_equal(data_of(doc, "available")->valueint, 40);
	assert_int_equal(data_of(doc, "revision")->valueint, 3);
	cJSON_Delete(doc);

	/* Another cancellation, and a decline, release nothing more. */
	assert_int_equal(deliver(f, "shop.orders.order_cancelled.v1",
				 order_cancelled(f->order_id, "customer_cancelled")),
			 SHOP_OK);
	assert_int_equal(deliver(f, "shop.payments.payment_declined.v1",
				 payment_declined(f->order_id)),
			 SHOP_OK);
	assert_int_equal(harness_outbox_total(f->db), before + 3);
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_RELEASED), 1);
}

static void payment_declined_releases_the_reservation(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-LIMITED" };
	const int q[] = { 3 };
	assert_int_equal(place(f, 1, skus, q), SHOP_OK);
	assert_int_equal(deliver(f, "shop.payments.payment_declined.v1",
				 payment_declined(f->order_id)),
			 SHOP_OK);
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_RELEASED), 1);
	assert_int_equal(inventory_harness_available(f->db, "SKU-LIMITED"), 3);
	assert_int_equal(inventory_harness_status(f->db, f->order_id), INVENTORY_STATUS_RELEASED);
}

static void a_cancellation_that_overtakes_its_order_leaves_the_late_order_unreserved(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-LIMITED" };
	const int q[] = { 1 };
	int64_t before = harness_outbox_total(f->db);
	assert_int_equal(deliver(f, "shop.orders.order_cancelled.v1",
				 order_cancelled(f->order_id, "timeout")),
			 SHOP_OK);
	assert_int_equal(place(f, 1, skus, q), SHOP_OK);
	assert_int_equal(harness_outbox_total(f->db), before);
	assert_int_equal(inventory_harness_available(f->db, "SKU-LIMITED"), 3);
}

static void merged_lines_above_one_lines_limit_travel_as_several_lines(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-CABLE", "SKU-CABLE", "SKU-CABLE" };
	const int q[] = { 1000, 1000, 5 };
	assert_int_equal(place(f, 3, skus, q), SHOP_OK);
	cJSON *doc = harness_outbox_last(f->db, SUBJECT_RESERVED);
	const cJSON *lines = data_of(doc, "lines");
	assert_int_equal(cJSON_GetArraySize(lines), 3);
	int64_t units = 0;
	for (int i = 0; i < 3; i++) {
		const cJSON *l = cJSON_GetArrayItem(lines, i);
		assert_true(cJSON_GetObjectItemCaseSensitive(l, "quantity")->valueint <= 1000);
		units += cJSON_GetObjectItemCaseSensitive(l, "quantity")->valueint;
	}
	assert_int_equal(units, 2005);
	assert_int_equal(data_of(doc, "total_cents")->valueint, 2005 * 990);
	cJSON_Delete(doc);

	assert_int_equal(deliver(f, "shop.orders.order_cancelled.v1",
				 order_cancelled(f->order_id, "customer_cancelled")),
			 SHOP_OK);
	doc = harness_outbox_last(f->db, SUBJECT_RELEASED);
	assert_int_equal(cJSON_GetArraySize(data_of(doc, "lines")), 3);
	cJSON_Delete(doc);
}

static void the_largest_order_is_reserved_with_a_total_above_any_unit_price(void **state)
{
	struct fixture *f = *state;
	/* 50 lines of 1000 keyboards at 89.00 EUR: a valid order whose total,
	 * 4 450 000 EUR, is more than a unit price may be. It must get a real
	 * answer, not the dead letters and a timeout. */
	const char *skus[INVENTORY_LINES_MAX];
	int q[INVENTORY_LINES_MAX];
	for (size_t i = 0; i < INVENTORY_LINES_MAX; i++) {
		skus[i] = "SKU-KEYBOARD";
		q[i] = INVENTORY_LINE_QUANTITY_MAX;
	}
	const int64_t units = INVENTORY_LINES_MAX * INVENTORY_LINE_QUANTITY_MAX;
	const int64_t before = inventory_harness_available(f->db, "SKU-KEYBOARD");

	assert_int_equal(place(f, INVENTORY_LINES_MAX, skus, q), SHOP_OK);
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_RESERVED), 1);
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_REJECTED), 0);
	cJSON *doc = harness_outbox_last(f->db, SUBJECT_RESERVED);
	assert_int_equal((int64_t)data_of(doc, "total_cents")->valuedouble, 445000000LL);
	const cJSON *lines = data_of(doc, "lines");
	assert_int_equal(cJSON_GetArraySize(lines), INVENTORY_LINES_MAX);
	/* What consumers will read: the event passes its contract. */
	struct ct_stock_reserved ev;
	struct ct_errors errs = { 0 };
	assert_int_equal(ct_stock_reserved_parse(cJSON_GetObjectItemCaseSensitive(doc, "data"), &ev,
						 &errs),
			 SHOP_OK);
	assert_int_equal(ev.total_cents, 445000000LL);
	assert_int_equal(ev.lines_len, INVENTORY_LINES_MAX);
	for (size_t i = 0; i < ev.lines_len; i++) {
		assert_string_equal(ev.lines[i].sku, "SKU-KEYBOARD");
		assert_int_equal(ev.lines[i].quantity, INVENTORY_LINE_QUANTITY_MAX);
		assert_int_equal(ev.lines[i].unit_price_cents, 8900);
	}
	cJSON_Delete(doc);

	assert_int_equal(inventory_harness_available(f->db, "SKU-KEYBOARD"), before - units);
	assert_int_equal(inventory_harness_status(f->db, f->order_id), INVENTORY_STATUS_RESERVED);
}

static void an_order_priced_beyond_the_contract_is_dead_lettered_and_holds_nothing(void **state)
{
	struct fixture *f = *state;
	/* Only a price above the contract's ceiling, written by hand, can make
	 * a valid order's total too large for any event. */
	assert_int_equal(
		db_exec(f->db,
			"UPDATE products SET price_cents = 200000000 WHERE sku = 'SKU-MOUSE'",
			DB_NOARGS, NULL),
		SHOP_OK);
	const char *skus[INVENTORY_LINES_MAX];
	int q[INVENTORY_LINES_MAX];
	for (size_t i = 0; i < INVENTORY_LINES_MAX; i++) {
		skus[i] = "SKU-MOUSE";
		q[i] = INVENTORY_LINE_QUANTITY_MAX;
	}
	int64_t before = harness_outbox_total(f->db);
	shop_status st = place(f, INVENTORY_LINES_MAX, skus, q);
	assert_int_equal(st, SHOP_E_LIMIT);
	assert_int_equal(svc_settle_decide(st, 1), SVC_DEAD_LETTER);
	assert_int_equal(harness_outbox_total(f->db), before);
	assert_int_equal(inventory_harness_available(f->db, "SKU-MOUSE"), 1000000);
}

static void order_placed_breaking_its_contract_is_refused_before_the_handler(void **state)
{
	struct fixture *f = *state;
	const char *skus[] = { "SKU-CABLE" };
	const int q[] = { 0 };
	assert_int_equal(place(f, 1, skus, q), SHOP_E_INVALID);
	assert_int_equal(inventory_harness_status(f->db, f->order_id), INVENTORY_STATUS_NONE);
}

/* An order id of our own and the envelope of a message about it. */
static char *batch_msg(char *order_id, const char *type, cJSON *data)
{
	return envelope(type, order_id, NULL, data);
}

static cJSON *placed(const char *order_id, const char *sku, int quantity)
{
	return harness_order_placed_json(order_id, 1, (const char *const[]){ sku },
					 (const int[]){ quantity });
}

/* One fetched batch with reservations, a rejection for want of stock, a
 * release whose stock a later order of the same batch takes, an unknown
 * SKU, a cancellation that overtakes its order, and an order decided
 * already: the batch hooks decide them on one copy of the products, and
 * the outcome is the one-at-a-time outcome, written out below. */
static void a_batch_is_decided_on_one_copy_as_one_at_a_time(void **state)
{
	struct fixture *f = *state;
	char a[IDS_UUID_SIZE], b[IDS_UUID_SIZE], c[IDS_UUID_SIZE], d[IDS_UUID_SIZE];
	char e[IDS_UUID_SIZE], g[IDS_UUID_SIZE];
	ids_uuid7(a), ids_uuid7(b), ids_uuid7(c), ids_uuid7(d), ids_uuid7(e), ids_uuid7(g);
	const char *placed_type = "shop.orders.order_placed.v1";
	const char *cancelled_type = "shop.orders.order_cancelled.v1";
	cJSON *two_lines = harness_order_placed_json(a, 2,
						     (const char *const[]){ "SKU-LIMITED",
									    "SKU-MONITOR" },
						     (const int[]){ 1, 2 });
	char *batch[] = {
		batch_msg(a, placed_type, two_lines),                   /* reserved */
		batch_msg(b, placed_type, placed(b, "SKU-LIMITED", 2)), /* reserved: 0 left */
		batch_msg(c, placed_type, placed(c, "SKU-LIMITED", 1)), /* out of stock */
		batch_msg(a, cancelled_type, order_cancelled(a, "customer_cancelled")),
		batch_msg(d, placed_type, placed(d, "SKU-LIMITED", 1)),      /* A's lamp */
		batch_msg(e, placed_type, placed(e, "SKU-NOPE", 1)),         /* unknown SKU */
		batch_msg(g, cancelled_type, order_cancelled(g, "timeout")), /* tombstone */
		batch_msg(g, placed_type, placed(g, "SKU-HEADSET", 1)),      /* too late */
		batch_msg(b, placed_type, placed(b, "SKU-LIMITED", 2)),      /* decided already */
	};
	const size_t n = sizeof(batch) / sizeof(batch[0]);
	shop_status st[sizeof(batch) / sizeof(batch[0])];
	int64_t before = harness_outbox_total(f->db);
	uint64_t decided = inventory_batch_orders_decided();

	assert_int_equal(svc_handle_envelopes(f->svc, f->db, CONSUMER, (const char *const *)batch,
					      n, st),
			 SHOP_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(st[i], SHOP_OK);
		free(batch[i]);
	}
	/* On the copy, in the first try: every OrderPlaced, no replay. */
	assert_int_equal(inventory_batch_orders_decided() - decided, 7);
	assert_int_equal(svc_batch_replays(f->svc), 0);

	assert_int_equal(inventory_harness_status(f->db, a), INVENTORY_STATUS_RELEASED);
	assert_int_equal(inventory_harness_status(f->db, b), INVENTORY_STATUS_RESERVED);
	assert_int_equal(inventory_harness_status(f->db, c), INVENTORY_STATUS_REJECTED);
	assert_int_equal(inventory_harness_status(f->db, d), INVENTORY_STATUS_RESERVED);
	assert_int_equal(inventory_harness_status(f->db, e), INVENTORY_STATUS_REJECTED);
	assert_int_equal(inventory_harness_status(f->db, g),
			 INVENTORY_STATUS_CANCELLED_BEFORE_PLACED);
	/* Seeded at revision 1; the lamp moved four times, the monitor twice. */
	struct inventory_product lamp = inventory_harness_product(f->db, "SKU-LIMITED");
	struct inventory_product monitor = inventory_harness_product(f->db, "SKU-MONITOR");
	assert_int_equal(lamp.available, 0);
	assert_int_equal(lamp.revision, 5);
	assert_int_equal(monitor.available, 40);
	assert_int_equal(monitor.revision, 3);
	assert_int_equal(inventory_harness_available(f->db, "SKU-HEADSET"), 60);

	/* Reserved A, B, D; rejected C, E; released A; and each product the
	 * batch moved announced once, at the end, with its latest level: the
	 * lamp and the monitor, not the six levels of one at a time. */
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_RESERVED), 3);
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_REJECTED), 2);
	assert_int_equal(harness_outbox_count(f->db, SUBJECT_RELEASED), 1);
	assert_int_equal(harness_outbox_total(f->db), before + 8);
	/* Each has its seeding's event and the batch's. */
	assert_int_equal(harness_outbox_count_for(f->db, "SKU-LIMITED", SUBJECT_LEVEL), 2);
	assert_int_equal(harness_outbox_count_for(f->db, "SKU-MONITOR", SUBJECT_LEVEL), 2);
	assert_int_equal(harness_outbox_count_for(f->db, "SKU-HEADSET", SUBJECT_LEVEL), 1);
	/* Caused by the last message that moved each: D took the lamp A gave
	 * back; A's release was the monitor's last move. */
	char corr[IDS_UUID_SIZE + 8];
	cJSON *doc = harness_outbox_last_for(f->db, "SKU-LIMITED", SUBJECT_LEVEL);
	assert_int_equal(data_of(doc, "available")->valueint, 0);
	assert_int_equal(data_of(doc, "revision")->valueint, 5);
	snprintf(corr, sizeof(corr), "corr-%s", d);
	assert_string_equal(cJSON_GetObjectItem(doc, "correlationid")->valuestring, corr);
	cJSON_Delete(doc);
	doc = harness_outbox_last_for(f->db, "SKU-MONITOR", SUBJECT_LEVEL);
	assert_int_equal(data_of(doc, "available")->valueint, 40);
	assert_int_equal(data_of(doc, "revision")->valueint, 3);
	snprintf(corr, sizeof(corr), "corr-%s", a);
	assert_string_equal(cJSON_GetObjectItem(doc, "correlationid")->valuestring, corr);
	cJSON_Delete(doc);
	doc = harness_outbox_last(f->db, SUBJECT_REJECTED);
	assert_string_equal(data_of(doc, "reason")->valuestring, INVENTORY_REASON_UNKNOWN_SKU);
	cJSON_Delete(doc);
	inventory_harness_assert_invariant(f->db);
}

int main(void)
{
	/* Keep the TAP output readable: handlers log every decision. */
	log_init("inventory", LOG_LVL_ERROR);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(init_announces_each_product_once),
		T(order_placed_emits_stock_reserved_with_prices_and_new_levels),
		T(a_redelivered_order_placed_is_a_duplicate_and_emits_nothing),
		T(an_order_that_cannot_be_served_emits_stock_rejected_only),
		T(an_unknown_sku_emits_stock_rejected_with_unknown_sku),
		T(order_cancelled_releases_once_with_stock_released_and_levels),
		T(payment_declined_releases_the_reservation),
		T(a_cancellation_that_overtakes_its_order_leaves_the_late_order_unreserved),
		T(merged_lines_above_one_lines_limit_travel_as_several_lines),
		T(the_largest_order_is_reserved_with_a_total_above_any_unit_price),
		T(an_order_priced_beyond_the_contract_is_dead_lettered_and_holds_nothing),
		T(order_placed_breaking_its_contract_is_refused_before_the_handler),
		T(a_batch_is_decided_on_one_copy_as_one_at_a_time),
		TEST_EXTRA_CASES
	};
#undef T
	return cmocka_run_group_tests(tests, backend_group_setup, backend_group_teardown);
}
