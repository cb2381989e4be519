/*
 * test_notifications_handlers.c - notifications' handlers against a real
 * in-process SQLite database: one e-mail per (order, kind), whatever is
 * redelivered or replayed, and NotificationSent only for a new e-mail.
 *
 * tests/component/test_notifications_pg.c includes this file with its own
 * backend (the backend_* functions below) to run every case on PostgreSQL
 * too, plus a case that races two connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "../../services/notifications/notifications_handlers.h"
#include "../../services/notifications/notifications_store.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "db/db.h"
#include "evt/envelope.h"
#include "svc/svc.h"

#define TEST_URL_MAX 1024

#include "service_harness.h"
#include "service_sqlite_backend.h"

#ifndef TEST_EXTRA_CASES
#define TEST_EXTRA_CASES
#endif

struct fixture {
	struct svc_spec spec;
	struct svc *svc;
	struct db *db;
	char url[TEST_URL_MAX];
	char order[IDS_UUID_SIZE];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->spec = (struct svc_spec){
		.name = NOTIFICATIONS_SERVICE_NAME,
		.default_db_url = "sqlite::memory:",
		.migrations = notifications_migrations,
		.n_migrations = notifications_n_migrations,
		.routes = notifications_routes,
		.n_routes = notifications_n_routes,
	};
	backend_url(f->url, sizeof(f->url), false);
	assert_int_equal(harness_open(&f->spec, f->url, &f->db, &f->svc), SHOP_OK);
	ids_uuid7(f->order);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	svc_destroy(f->svc);
	db_close(f->db);
	backend_release(f->url);
	free(f);
	return 0;
}

static shop_status handle(struct fixture *f, svc_handler_fn fn, const void *msg)
{
	return harness_handle(f->svc, f->db, fn, msg, clock_now_ms(), "test-correlation");
}

/* The fixture's order of 5 items (SKU-1 x 2, SKU-2 x 3) placed by EMAIL. */
static shop_status place(struct fixture *f, const char *email)
{
	static const char *const skus[] = { "SKU-1", "SKU-2" };
	static const int quantities[] = { 2, 3 };
	struct ct_order_placed_v2 m;
	harness_order_placed_v2_fill(&m, f->order, email, 2, skus, quantities);
	return handle(f, notifications_handle_order_placed, &m);
}

/* OrderShipped for the order, with a fresh shipment id. */
static void order_shipped(struct ct_order_shipped *m, const char *order_id)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->order_id, sizeof(m->order_id), "%s", order_id);
	ids_uuid7(m->shipment_id);
}

static shop_status ship(struct fixture *f)
{
	struct ct_order_shipped m;
	order_shipped(&m, f->order);
	return handle(f, notifications_handle_order_shipped, &m);
}

static shop_status cancel(struct fixture *f, const char *reason)
{
	struct ct_order_cancelled m;
	memset(&m, 0, sizeof(m));
	snprintf(m.order_id, sizeof(m.order_id), "%s", f->order);
	snprintf(m.reason, sizeof(m.reason), "%s", reason);
	return handle(f, notifications_handle_order_cancelled, &m);
}

static int64_t count(struct fixture *f, const char *sql, const char *arg)
{
	return harness_query_int(f->db, sql, arg);
}

static int64_t mails(struct fixture *f, const char *kind)
{
	struct db_result *r = NULL;
	assert_int_equal(
		db_query(f->db,
			 "SELECT COUNT(*) FROM notifications WHERE order_id = $1 AND kind = $2",
			 DB_ARGS(f->order, kind), &r),
		SHOP_OK);
	int64_t n = db_result_int(r, 0, 0);
	db_result_free(r);
	return n;
}

static int64_t sent_events(struct fixture *f)
{
	return harness_outbox_count(f->db, ct_messages[CT_MSG_NOTIFICATION_SENT].subject);
}

/* The stored e-mail of a kind: column 0 email, 1 subject_line, 2 body,
 * 3 notification_id. */
static struct db_result *mail_row(struct fixture *f, const char *kind)
{
	struct db_result *r = NULL;
	assert_int_equal(
		db_query(f->db,
			 "SELECT email, subject_line, body, notification_id FROM notifications "
			 "WHERE order_id = $1 AND kind = $2",
			 DB_ARGS(f->order, kind), &r),
		SHOP_OK);
	assert_int_equal(db_result_rows(r), 1);
	return r;
}

static void order_placed_records_the_order_received_mail_and_announces_it(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	assert_int_equal(mails(f, "order_received"), 1);
	assert_int_equal(sent_events(f), 1);

	struct db_result *r = mail_row(f, "order_received");
	assert_string_equal(db_result_text(r, 0, 0), "ada@example.com");
	assert_non_null(strstr(db_result_text(r, 0, 1), f->order));
	assert_non_null(strstr(db_result_text(r, 0, 2), "with 5 items"));

	struct db_result *o = NULL;
	assert_int_equal(db_query(f->db, "SELECT payload FROM outbox WHERE subject = $1",
				  DB_ARGS(ct_messages[CT_MSG_NOTIFICATION_SENT].subject), &o),
			 SHOP_OK);
	cJSON *root = cJSON_Parse(db_result_text(o, 0, 0));
	cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "kind")->valuestring,
			    "order_received");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "order_id")->valuestring,
			    f->order);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "email")->valuestring,
			    "ada@example.com");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "notification_id")->valuestring,
			    db_result_text(r, 0, 3));
	cJSON_Delete(root);
	db_result_free(o);
	db_result_free(r);
}

static void order_placed_handled_twice_records_one_mail_and_one_event(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	assert_int_equal(mails(f, "order_received"), 1);
	assert_int_equal(sent_events(f), 1);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM recipients WHERE order_id = $1", f->order),
			 1);
}

static void order_shipped_before_the_recipient_is_not_ready_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(ship(f), SHOP_E_NOT_READY);
	assert_int_equal(cancel(f, "timeout"), SHOP_E_NOT_READY);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM notifications WHERE order_id = $1",
			       f->order),
			 0);
	assert_int_equal(sent_events(f), 0);
}

static void order_shipped_mails_the_recipient_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	assert_int_equal(ship(f), SHOP_OK);
	assert_int_equal(ship(f), SHOP_OK);
	assert_int_equal(mails(f, "order_shipped"), 1);
	assert_int_equal(sent_events(f), 2); /* order_received and order_shipped */

	struct db_result *r = mail_row(f, "order_shipped");
	assert_string_equal(db_result_text(r, 0, 0), "ada@example.com");
	assert_non_null(strstr(db_result_text(r, 0, 1), "has shipped"));
	db_result_free(r);
}

static void order_cancelled_mails_the_reason_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	assert_int_equal(cancel(f, "out_of_stock"), SHOP_OK);
	/* A second cancellation (say, the sweeper's timeout after a customer
	 * cancel) is still one e-mail: the first reason stands. */
	assert_int_equal(cancel(f, "timeout"), SHOP_OK);
	assert_int_equal(mails(f, "order_cancelled"), 1);
	assert_int_equal(sent_events(f), 2);

	struct db_result *r = mail_row(f, "order_cancelled");
	assert_non_null(strstr(db_result_text(r, 0, 2), "out of stock"));
	assert_null(strstr(db_result_text(r, 0, 2), "in time"));
	db_result_free(r);
}

static void later_mails_go_to_the_first_recorded_address(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	assert_int_equal(place(f, "mallory@example.com"), SHOP_OK);
	assert_int_equal(ship(f), SHOP_OK);
	struct db_result *r = mail_row(f, "order_shipped");
	assert_string_equal(db_result_text(r, 0, 0), "ada@example.com");
	db_result_free(r);
}

/* An OrderShipped envelope as the bus would deliver it. */
static char *shipped_envelope(const char *event_id, const char *order_id)
{
	struct ct_order_shipped m;
	order_shipped(&m, order_id);
	return harness_order_envelope(CT_MSG_ORDER_SHIPPED, event_id, order_id, &m);
}

static void a_replayed_event_with_a_new_id_still_sends_no_second_mail(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	char first[IDS_UUID_SIZE], replay[IDS_UUID_SIZE];
	ids_uuid7(first);
	ids_uuid7(replay);

	char *a = shipped_envelope(first, f->order);
	char *b = shipped_envelope(replay, f->order);
	assert_int_equal(harness_deliver(f->svc, f->db, "notifications", a, NULL, 0), SHOP_OK);
	/* The same event again: the inbox catches it. */
	assert_int_equal(harness_deliver(f->svc, f->db, "notifications", a, NULL, 0),
			 SHOP_E_DUPLICATE);
	/* The same fact under a new event id: the unique (order, kind) key
	 * catches it. */
	assert_int_equal(harness_deliver(f->svc, f->db, "notifications", b, NULL, 0), SHOP_OK);
	free(a);
	free(b);
	assert_int_equal(mails(f, "order_shipped"), 1);
	assert_int_equal(sent_events(f), 2);
}

int main(void)
{
	log_init(NOTIFICATIONS_SERVICE_NAME, LOG_LVL_WARN); /* keep the TAP output readable */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(order_placed_records_the_order_received_mail_and_announces_it),
		T(order_placed_handled_twice_records_one_mail_and_one_event),
		T(order_shipped_before_the_recipient_is_not_ready_and_writes_nothing),
		T(order_shipped_mails_the_recipient_once),
		T(order_cancelled_mails_the_reason_once),
		T(later_mails_go_to_the_first_recorded_address),
		T(a_replayed_event_with_a_new_id_still_sends_no_second_mail),
		TEST_EXTRA_CASES
	};
#undef T
	return cmocka_run_group_tests(tests, backend_group_setup, backend_group_teardown);
}
