/*
 * test_shipping_handlers.c - shipping's handlers and dispatcher against a
 * real in-process SQLite database.
 *
 * Each test builds a detached runtime from the same route and task tables
 * main.c uses, migrates a fresh database, calls handlers inside a
 * transaction as the consumer loop would, and reads the outcome back from
 * the shipments table and the outbox (what would be published).
 *
 * tests/component/test_shipping_pg.c includes this file with its own
 * backend (the backend_* functions below) to run every case on PostgreSQL
 * too, plus cases that race two connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "../../services/shipping/shipping_domain.h"
#include "../../services/shipping/shipping_handlers.h"
#include "../../services/shipping/shipping_store.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "db/db.h"
#include "evt/envelope.h"
#include "svc/svc.h"

#define TEST_DELAY_MS 2000
#define TEST_URL_MAX 1024

#include "service_harness.h"
#include "service_sqlite_backend.h"

#ifndef TEST_EXTRA_CASES
#define TEST_EXTRA_CASES
#endif

struct fixture {
	struct shipping_ctx ctx;
	struct svc_spec spec;
	struct svc *svc;
	struct db *db;
	char url[TEST_URL_MAX];
	int64_t t0; /* a fixed "now" the test's transactions run at */
};

static void fixture_spec(struct fixture *f)
{
	f->ctx.dispatch_delay_ms = TEST_DELAY_MS;
	f->spec = (struct svc_spec){
		.name = SHIPPING_SERVICE_NAME,
		.default_db_url = "sqlite::memory:",
		.migrations = shipping_migrations,
		.n_migrations = shipping_n_migrations,
		.routes = shipping_routes,
		.n_routes = shipping_n_routes,
		.tasks = shipping_tasks,
		.n_tasks = shipping_n_tasks,
		.ctx = &f->ctx,
	};
}

static void fixture_open(struct fixture *f)
{
	assert_int_equal(harness_open(&f->spec, f->url, &f->db, &f->svc), SHOP_OK);
}

static void fixture_close(struct fixture *f)
{
	svc_destroy(f->svc);
	db_close(f->db);
	f->svc = NULL;
	f->db = NULL;
}

static int fixture_setup(void **state, bool persistent)
{
	struct fixture *f = calloc(1, sizeof(*f));
	fixture_spec(f);
	backend_url(f->url, sizeof(f->url), persistent);
	fixture_open(f);
	f->t0 = clock_now_ms();
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fixture_setup(state, false);
}

static int setup_persistent(void **state)
{
	return fixture_setup(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	fixture_close(f);
	backend_release(f->url);
	free(f);
	return 0;
}

/* Runs one handler in its own transaction, committing only on success. */
static shop_status handle(struct fixture *f, svc_handler_fn fn, const void *msg, int64_t now_ms)
{
	return harness_handle(f->svc, f->db, fn, msg, now_ms, "test-correlation");
}

/* An order of SKU-1 x 2, shipping to London. */
static void order_placed(struct ct_order_placed_v2 *m, const char *order_id)
{
	static const char *const skus[] = { "SKU-1" };
	static const int quantities[] = { 2 };
	harness_order_placed_v2_fill(m, order_id, "ada@example.com", 1, skus, quantities);
}

static void order_paid(struct ct_order_paid *m, const char *order_id)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->order_id, sizeof(m->order_id), "%s", order_id);
	ids_uuid7(m->payment_id);
}

static void cancellation_requested(struct ct_order_cancellation_requested *m, const char *order_id)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->order_id, sizeof(m->order_id), "%s", order_id);
	snprintf(m->reason, sizeof(m->reason), "customer_cancelled");
}

static void order_cancelled(struct ct_order_cancelled *m, const char *order_id)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->order_id, sizeof(m->order_id), "%s", order_id);
	snprintf(m->reason, sizeof(m->reason), "customer_cancelled");
}

static shop_status place(struct fixture *f, const char *order_id, int64_t now_ms)
{
	struct ct_order_placed_v2 m;
	order_placed(&m, order_id);
	return handle(f, shipping_handle_order_placed, &m, now_ms);
}

/* OrderPaid: orders moved the order to PAID. */
static shop_status pay(struct fixture *f, const char *order_id, int64_t now_ms)
{
	struct ct_order_paid m;
	order_paid(&m, order_id);
	return handle(f, shipping_handle_order_paid, &m, now_ms);
}

/* OrderCancellationRequested: the customer cancelled the paid order. */
static shop_status request_cancel(struct fixture *f, const char *order_id, int64_t now_ms)
{
	struct ct_order_cancellation_requested m;
	cancellation_requested(&m, order_id);
	return handle(f, shipping_handle_order_cancellation_requested, &m, now_ms);
}

static shop_status cancel(struct fixture *f, const char *order_id, int64_t now_ms)
{
	struct ct_order_cancelled m;
	order_cancelled(&m, order_id);
	return handle(f, shipping_handle_order_cancelled, &m, now_ms);
}

/* A new order whose address came in at t0. */
static void new_placed_order(struct fixture *f, char order[IDS_UUID_SIZE])
{
	ids_uuid7(order);
	assert_int_equal(place(f, order, f->t0), SHOP_OK);
}

/* A new order placed and paid at t0: its shipment is scheduled. */
static void new_paid_order(struct fixture *f, char order[IDS_UUID_SIZE])
{
	new_placed_order(f, order);
	assert_int_equal(pay(f, order, f->t0), SHOP_OK);
}

static int64_t outbox_count(struct fixture *f, enum ct_message_id id)
{
	return harness_outbox_count(f->db, ct_messages[id].subject);
}

static int64_t outbox_total(struct fixture *f)
{
	return harness_outbox_total(f->db);
}

/* The data member of the last event of a kind, as parsed JSON (caller frees). */
static cJSON *outbox_last_data(struct fixture *f, enum ct_message_id id, cJSON **ret_root)
{
	*ret_root = harness_outbox_last(f->db, ct_messages[id].subject);
	return cJSON_GetObjectItemCaseSensitive(*ret_root, "data");
}

static enum shipping_state shipment_state(struct fixture *f, const char *order_id)
{
	struct shipping_shipment s;
	shop_status st = shipping_store_shipment_get(f->db, order_id, &s);
	if (st == SHOP_E_NOT_FOUND)
		return SHIPPING_STATE_NONE;
	assert_int_equal(st, SHOP_OK);
	return s.state;
}

static struct shipping_dispatch_report dispatch_at(struct fixture *f, int64_t now_ms)
{
	struct shipping_dispatch_report rep = { 99, 99 };
	assert_int_equal(shipping_dispatch_due(f->svc, f->db, now_ms, &rep), SHOP_OK);
	return rep;
}

/* A new order placed and paid at t0 whose shipment the dispatcher has
 * sent once it was due. */
static void new_dispatched_order(struct fixture *f, char order[IDS_UUID_SIZE])
{
	new_paid_order(f, order);
	assert_int_equal(dispatch_at(f, f->t0 + TEST_DELAY_MS).dispatched, 1);
}

/* ---- scheduling ---------------------------------------------------------- */

static void order_paid_before_the_address_is_not_ready_and_changes_nothing(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	ids_uuid7(order);
	assert_int_equal(pay(f, order, f->t0), SHOP_E_NOT_READY);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_NONE);
	assert_int_equal(outbox_total(f), 0);

	/* Once OrderPlaced is in (redelivered after a nak), the redelivered
	 * OrderPaid schedules. */
	assert_int_equal(place(f, order, f->t0), SHOP_OK);
	assert_int_equal(pay(f, order, f->t0 + 5), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_SCHEDULED);
}

static void order_paid_schedules_a_shipment_due_after_the_configured_delay(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_paid_order(f, order);

	struct shipping_shipment s;
	assert_int_equal(shipping_store_shipment_get(f->db, order, &s), SHOP_OK);
	assert_int_equal(s.state, SHIPPING_STATE_SCHEDULED);
	assert_true(s.dispatch_at_ms == f->t0 + TEST_DELAY_MS);
	assert_true(ids_uuid_valid(s.shipment_id));
	assert_string_equal(s.correlation_id, "test-correlation");

	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_SCHEDULED), 1);
	cJSON *root = NULL;
	cJSON *data = outbox_last_data(f, CT_MSG_SHIPMENT_SCHEDULED, &root);
	char due[CLOCK_RFC3339_SIZE];
	clock_rfc3339(f->t0 + TEST_DELAY_MS, due);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "dispatch_at")->valuestring,
			    due);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "order_id")->valuestring, order);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "shipment_id")->valuestring,
			    s.shipment_id);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "subject")->valuestring, order);
	cJSON_Delete(root);
}

static void a_second_order_paid_schedules_nothing_more(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_paid_order(f, order);
	struct shipping_shipment first;
	assert_int_equal(shipping_store_shipment_get(f->db, order, &first), SHOP_OK);

	assert_int_equal(pay(f, order, f->t0 + 1000), SHOP_OK);
	struct shipping_shipment again;
	assert_int_equal(shipping_store_shipment_get(f->db, order, &again), SHOP_OK);
	assert_string_equal(first.shipment_id, again.shipment_id);
	assert_true(first.dispatch_at_ms == again.dispatch_at_ms);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_SCHEDULED), 1);
}

static void a_second_order_placed_keeps_the_first_address(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_placed_order(f, order);
	struct ct_order_placed_v2 m;
	order_placed(&m, order);
	snprintf(m.shipping_address.city, sizeof(m.shipping_address.city), "Paris");
	assert_int_equal(handle(f, shipping_handle_order_placed, &m, f->t0 + 1), SHOP_OK);

	struct db_result *r = NULL;
	assert_int_equal(db_query(f->db, "SELECT city FROM addresses WHERE order_id = $1",
				  DB_ARGS(order), &r),
			 SHOP_OK);
	assert_int_equal(db_result_rows(r), 1);
	assert_string_equal(db_result_text(r, 0, 0), "London");
	db_result_free(r);
}

/* ---- cancelling ---------------------------------------------------------- */

static void cancellation_before_payment_prevents_the_shipment(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_placed_order(f, order);
	assert_int_equal(cancel(f, order, f->t0 + 1), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_VOIDED);

	assert_int_equal(pay(f, order, f->t0 + 2), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_VOIDED);
	assert_int_equal(outbox_total(f), 0);
	assert_int_equal(dispatch_at(f, f->t0 + 10 * TEST_DELAY_MS).due, 0);
}

static void cancellation_before_the_address_also_prevents_the_shipment(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	ids_uuid7(order);
	/* Nothing about the order has arrived yet; OrderPaid need not wait
	 * for an address it will never use. */
	assert_int_equal(cancel(f, order, f->t0), SHOP_OK);
	assert_int_equal(pay(f, order, f->t0 + 1), SHOP_OK);
	assert_int_equal(place(f, order, f->t0 + 2), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_VOIDED);
	assert_int_equal(outbox_total(f), 0);
}

static void cancellation_of_a_scheduled_shipment_cancels_it_once(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_paid_order(f, order);
	assert_int_equal(cancel(f, order, f->t0 + 1), SHOP_OK);
	assert_int_equal(cancel(f, order, f->t0 + 2), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_CANCELLED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 1);

	/* A cancelled shipment is never dispatched. */
	struct shipping_dispatch_report rep = dispatch_at(f, f->t0 + 10 * TEST_DELAY_MS);
	assert_int_equal(rep.due, 0);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), 0);
}

static void cancellation_after_dispatch_changes_nothing(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_dispatched_order(f, order);
	int64_t before = outbox_total(f);

	assert_int_equal(cancel(f, order, f->t0 + TEST_DELAY_MS + 1), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_DISPATCHED);
	assert_int_equal(outbox_total(f), before);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 0);
}

/* ---- a paid order's cancellation request --------------------------------- */

static void cancellation_request_of_a_scheduled_shipment_cancels_it_and_answers_once(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_paid_order(f, order);
	struct shipping_shipment scheduled;
	assert_int_equal(shipping_store_shipment_get(f->db, order, &scheduled), SHOP_OK);

	assert_int_equal(request_cancel(f, order, f->t0 + 1), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_CANCELLED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 1);
	cJSON *root = NULL;
	cJSON *data = outbox_last_data(f, CT_MSG_SHIPMENT_CANCELLED, &root);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "order_id")->valuestring, order);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "shipment_id")->valuestring,
			    scheduled.shipment_id);
	cJSON_Delete(root);

	/* The request again, then the OrderCancelled orders emits on our
	 * answer: the shipment is cancelled already. */
	assert_int_equal(request_cancel(f, order, f->t0 + 2), SHOP_OK);
	assert_int_equal(cancel(f, order, f->t0 + 3), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_CANCELLED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 1);
}

static void the_dispatcher_after_a_cancellation_request_dispatches_nothing(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_paid_order(f, order);
	assert_int_equal(request_cancel(f, order, f->t0 + 1), SHOP_OK);

	struct shipping_dispatch_report rep = dispatch_at(f, f->t0 + 10 * TEST_DELAY_MS);
	assert_int_equal(rep.due, 0);
	assert_int_equal(rep.dispatched, 0);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_CANCELLED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), 0);
}

static void cancellation_request_after_dispatch_emits_nothing(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_dispatched_order(f, order);
	int64_t before = outbox_total(f);

	/* ShipmentDispatched is already on its way to orders: it decides. */
	assert_int_equal(request_cancel(f, order, f->t0 + TEST_DELAY_MS + 1), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_DISPATCHED);
	assert_int_equal(outbox_total(f), before);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 0);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), 1);
}

static void
cancellation_request_before_any_shipment_answers_and_a_later_order_paid_schedules_nothing(
	void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_placed_order(f, order);
	/* OrderPaid was overtaken by the request (a nak'd redelivery). */
	assert_int_equal(request_cancel(f, order, f->t0 + 1), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_VOIDED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 1);
	cJSON *root = NULL;
	cJSON *data = outbox_last_data(f, CT_MSG_SHIPMENT_CANCELLED, &root);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "order_id")->valuestring, order);
	assert_true(
		ids_uuid_valid(cJSON_GetObjectItemCaseSensitive(data, "shipment_id")->valuestring));
	cJSON_Delete(root);

	assert_int_equal(pay(f, order, f->t0 + 2), SHOP_OK);
	assert_int_equal(request_cancel(f, order, f->t0 + 3), SHOP_OK);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_VOIDED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_SCHEDULED), 0);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 1);
	assert_int_equal(dispatch_at(f, f->t0 + 10 * TEST_DELAY_MS).due, 0);
}

/* ---- dispatching --------------------------------------------------------- */

static void dispatcher_picks_only_due_shipments(void **state)
{
	struct fixture *f = *state;
	char early[IDS_UUID_SIZE], late[IDS_UUID_SIZE];
	ids_uuid7(early);
	ids_uuid7(late);
	assert_int_equal(place(f, early, f->t0), SHOP_OK);
	assert_int_equal(place(f, late, f->t0), SHOP_OK);
	assert_int_equal(pay(f, early, f->t0), SHOP_OK);
	assert_int_equal(pay(f, late, f->t0 + 1000), SHOP_OK);

	struct shipping_dispatch_report rep = dispatch_at(f, f->t0 + TEST_DELAY_MS - 1);
	assert_int_equal(rep.due, 0);
	assert_int_equal(rep.dispatched, 0);

	rep = dispatch_at(f, f->t0 + TEST_DELAY_MS);
	assert_int_equal(rep.due, 1);
	assert_int_equal(rep.dispatched, 1);
	assert_int_equal(shipment_state(f, early), SHIPPING_STATE_DISPATCHED);
	assert_int_equal(shipment_state(f, late), SHIPPING_STATE_SCHEDULED);

	cJSON *root = NULL;
	cJSON *data = outbox_last_data(f, CT_MSG_SHIPMENT_DISPATCHED, &root);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "order_id")->valuestring, early);
	/* The timer-driven event stays in the order's correlation. */
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "correlationid")->valuestring,
			    "test-correlation");
	cJSON_Delete(root);

	rep = dispatch_at(f, f->t0 + 1000 + TEST_DELAY_MS);
	assert_int_equal(rep.dispatched, 1);
	assert_int_equal(shipment_state(f, late), SHIPPING_STATE_DISPATCHED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), 2);
}

static void a_second_dispatcher_run_dispatches_nothing(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE];
	new_dispatched_order(f, order);

	struct shipping_dispatch_report rep = dispatch_at(f, f->t0 + 10 * TEST_DELAY_MS);
	assert_int_equal(rep.due, 0);
	assert_int_equal(rep.dispatched, 0);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), 1);
}

static void dispatcher_works_off_a_backlog_larger_than_one_batch(void **state)
{
	struct fixture *f = *state;
	enum { N = SHIPPING_DISPATCH_BATCH + 5 };
	for (int i = 0; i < N; i++) {
		char order[IDS_UUID_SIZE];
		new_placed_order(f, order);
		/* Due in the past, so the wall-clock task finds them due. */
		assert_int_equal(pay(f, order, f->t0 - 10 * TEST_DELAY_MS), SHOP_OK);
	}
	assert_int_equal(shipping_dispatcher_run(f->svc, f->db), SHOP_OK);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), N);
	assert_int_equal(dispatch_at(f, INT64_MAX).due, 0);
}

static void scheduled_shipment_survives_a_restart_and_is_dispatched_once(void **state)
{
	struct fixture *f = *state; /* set up with a database that outlives a connection */
	char order[IDS_UUID_SIZE];
	new_paid_order(f, order);
	fixture_close(f); /* the process dies before the dispatch time */

	fixture_open(f);
	assert_int_equal(dispatch_at(f, f->t0 + 1).due, 0);
	assert_int_equal(dispatch_at(f, f->t0 + TEST_DELAY_MS).dispatched, 1);
	fixture_close(f); /* ... and again right after dispatching */

	fixture_open(f);
	assert_int_equal(dispatch_at(f, f->t0 + 10 * TEST_DELAY_MS).due, 0);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_DISPATCHED), 1);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_SCHEDULED), 1);
}

/* ---- through the runtime ------------------------------------------------- */

/* An OrderPaid envelope as the bus would deliver it. */
static char *order_paid_envelope(const char *event_id, const char *order_id)
{
	struct ct_order_paid m;
	order_paid(&m, order_id);
	return harness_order_envelope(CT_MSG_ORDER_PAID, event_id, order_id, &m);
}

static void redelivered_order_paid_envelope_is_a_duplicate_and_schedules_once(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE], event[IDS_UUID_SIZE];
	ids_uuid7(order);
	ids_uuid7(event);
	assert_int_equal(place(f, order, f->t0), SHOP_OK);

	char *json = order_paid_envelope(event, order);
	assert_int_equal(harness_deliver(f->svc, f->db, "shipping", json, NULL, 0), SHOP_OK);
	assert_int_equal(harness_deliver(f->svc, f->db, "shipping", json, NULL, 0),
			 SHOP_E_DUPLICATE);
	free(json);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_SCHEDULED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_SCHEDULED), 1);

	/* The event OrderPaid caused is part of the same conversation. */
	cJSON *root = NULL;
	outbox_last_data(f, CT_MSG_SHIPMENT_SCHEDULED, &root);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "causationid")->valuestring,
			    event);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "correlationid")->valuestring,
			    order);
	cJSON_Delete(root);
}

static void a_cancellation_request_reaches_its_handler_through_the_routes(void **state)
{
	struct fixture *f = *state;
	char order[IDS_UUID_SIZE], event[IDS_UUID_SIZE];
	new_paid_order(f, order);
	ids_uuid7(event);
	struct ct_order_cancellation_requested m;
	cancellation_requested(&m, order);
	char *json = harness_order_envelope(CT_MSG_ORDER_CANCELLATION_REQUESTED, event, order, &m);
	assert_int_equal(harness_deliver(f->svc, f->db, "shipping", json, NULL, 0), SHOP_OK);
	free(json);
	assert_int_equal(shipment_state(f, order), SHIPPING_STATE_CANCELLED);
	assert_int_equal(outbox_count(f, CT_MSG_SHIPMENT_CANCELLED), 1);
}

int main(void)
{
	log_init(SHIPPING_SERVICE_NAME, LOG_LVL_WARN); /* keep the TAP output readable */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(order_paid_before_the_address_is_not_ready_and_changes_nothing),
		T(order_paid_schedules_a_shipment_due_after_the_configured_delay),
		T(a_second_order_paid_schedules_nothing_more),
		T(a_second_order_placed_keeps_the_first_address),
		T(cancellation_before_payment_prevents_the_shipment),
		T(cancellation_before_the_address_also_prevents_the_shipment),
		T(cancellation_of_a_scheduled_shipment_cancels_it_once),
		T(cancellation_after_dispatch_changes_nothing),
		T(cancellation_request_of_a_scheduled_shipment_cancels_it_and_answers_once),
		T(the_dispatcher_after_a_cancellation_request_dispatches_nothing),
		T(cancellation_request_after_dispatch_emits_nothing),
		T(cancellation_request_before_any_shipment_answers_and_a_later_order_paid_schedules_nothing),
		T(dispatcher_picks_only_due_shipments),
		T(a_second_dispatcher_run_dispatches_nothing),
		T(dispatcher_works_off_a_backlog_larger_than_one_batch),
		cmocka_unit_test_setup_teardown(
			scheduled_shipment_survives_a_restart_and_is_dispatched_once,
			setup_persistent, teardown),
		T(redelivered_order_paid_envelope_is_a_duplicate_and_schedules_once),
		T(a_cancellation_request_reaches_its_handler_through_the_routes),
		TEST_EXTRA_CASES
	};
#undef T
	return cmocka_run_group_tests(tests, backend_group_setup, backend_group_teardown);
}
