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

#include "service_pg_backend.h"

static void the_same_mail_handled_on_two_connections_at_once_is_recorded_once(void **state);

#define TEST_EXTRA_CASES T(the_same_mail_handled_on_two_connections_at_once_is_recorded_once),

#include "../unit/test_notifications_handlers.c"
#include "pg_race.h"

static void the_same_mail_handled_on_two_connections_at_once_is_recorded_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place(f, "ada@example.com"), SHOP_OK);
	struct ct_order_shipped m;
	order_shipped(&m, f->order);

	pg_race(f->svc, f->db, f->url, clock_now_ms(), notifications_handle_order_shipped, &m,
		notifications_handle_order_shipped, &m);

	assert_int_equal(mails(f, "order_shipped"), 1);
	assert_int_equal(sent_events(f), 2); /* order_received and one order_shipped */
}
