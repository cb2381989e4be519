/*
 * test_notifications_pg.c - notifications' handler tests on a real
 * PostgreSQL server, plus a race SQLite cannot show.
 *
 * Every case of tests/unit/test_notifications_handlers.c runs here
 * unchanged on PostgreSQL (service_pg_backend.h supplies the databases).
 * The extra case handles the same fact on two connections at once, as two
 * replicas would after a replay: the unique (order_id, kind) key makes the
 * second insert wait for the first and then do nothing, so there is one
 * e-mail and one NotificationSent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "service_pg_backend.h"

static void the_same_mail_handled_on_two_connections_at_once_is_recorded_once(void **state);

#define TEST_EXTRA_CASES T(the_same_mail_handled_on_two_connections_at_once_is_recorded_once),

#include "../unit/test_notifications_handlers.c"

#define RACE_HOLD_MS 300

struct racer {
	struct fixture *f;
	struct db *db;
	const struct ct_order_shipped *msg;
	shop_status st;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct svc_tx tx = { .svc = r->f->svc, .db = r->db, .correlation_id = "racer",
			     .now_ms = clock_now_ms() };
	r->st = db_begin(r->db);
	if (r->st != SHOP_OK)
		return NULL;
	r->st = notifications_handle_order_shipped(&tx, r->msg);
	if (r->st == SHOP_OK)
		r->st = db_commit(r->db);
	else
		db_rollback(r->db);
	return NULL;
}

static void the_same_mail_handled_on_two_connections_at_once_is_recorded_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	struct ct_order_shipped m;
	memset(&m, 0, sizeof(m));
	snprintf(m.order_id, sizeof(m.order_id), "%s", f->order);
	ids_uuid7(m.shipment_id);

	struct racer r = { .f = f, .msg = &m, .st = SHOP_E_INTERNAL };
	assert_int_equal(db_open(f->url, &r.db), SHOP_OK);
	struct svc_tx tx = { .svc = f->svc, .db = f->db, .correlation_id = "first",
			     .now_ms = clock_now_ms() };
	assert_int_equal(db_begin(f->db), SHOP_OK);
	assert_int_equal(notifications_handle_order_shipped(&tx, &m), SHOP_OK);

	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, racer_main, &r), 0);
	clock_sleep_ms(RACE_HOLD_MS);
	assert_int_equal(db_commit(f->db), SHOP_OK);
	pthread_join(thread, NULL);
	db_close(r.db);
	assert_int_equal(r.st, SHOP_OK);

	assert_int_equal(mails(f, "order_shipped"), 1);
	assert_int_equal(sent_events(f), 2); /* order_received and one order_shipped */
}
