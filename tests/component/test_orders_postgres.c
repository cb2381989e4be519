/*
 * test_orders_postgres.c - the orders service on a real PostgreSQL server
 * (started by tests/component/run.sh): its migrations and SQL on the backend
 * compose uses, and the races between replicas that SQLite cannot show
 * because it has one writer per file.
 *
 * The group creates its own database (dropped at the end), so reruns never
 * meet old state; each case uses fresh order ids and counts only the events
 * of its own orders. Replicas are separate connections, as separate
 * processes would have.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/orders/orders_handlers.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "db/db.h"
#include "svc/svc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define URL_MAX 1024
#define DEADLINE_MS 60000
#define RACE_ROUNDS 25
#define LOCK_WAIT_POLL_MS 10
#define LOCK_WAIT_MAX_MS 5000

#define SUBJ_PLACED "orders.event.order_placed.v1"
#define SUBJ_RESERVED "orders.event.order_reserved.v1"
#define SUBJ_PAID "orders.event.order_paid.v1"
#define SUBJ_SHIPPED "orders.event.order_shipped.v1"
#define SUBJ_CANCELLED "orders.event.order_cancelled.v1"

struct group {
	char admin_url[URL_MAX];
	char url[URL_MAX]; /* this run's database */
	char dbname[64];
	struct db *db;
	struct orders_ctx ctx;
	struct svc_spec spec;
	struct svc *svc;
};

static struct group g;

static int group_setup(void **state)
{
	const char *base = getenv("SHOP_TEST_PG_URL");
	struct db *admin = NULL;
	char sql[128];
	log_init("orders-test", LOG_LVL_ERROR);
	xalloc_init_cjson();
	if (!base || !*base) {
		fprintf(stderr, "SHOP_TEST_PG_URL is not set (run through tests/component/run.sh)\n");
		return -1;
	}
	const char *slash = strrchr(base, '/');
	if (!slash || (size_t)(slash - base) + sizeof(g.dbname) >= URL_MAX)
		return -1;
	snprintf(g.admin_url, sizeof(g.admin_url), "%s", base);
	snprintf(g.dbname, sizeof(g.dbname), "orders_t%ld_%lld", (long)getpid(),
		 (long long)clock_now_ms());
	snprintf(g.url, sizeof(g.url), "%.*s/%s", (int)(slash - base), base, g.dbname);

	if (db_open(g.admin_url, &admin) != SHOP_OK)
		return -1;
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", g.dbname);
	shop_status st = db_exec(admin, sql, DB_NOARGS, NULL);
	if (st != SHOP_OK)
		fprintf(stderr, "%s: %s\n", sql, db_last_error(admin));
	db_close(admin);
	if (st != SHOP_OK || db_open(g.url, &g.db) != SHOP_OK)
		return -1;

	g.ctx.deadline_ms = DEADLINE_MS;
	g.spec = (struct svc_spec){
		.name = "orders",
		.default_db_url = g.url,
		.migrations = orders_migrations,
		.n_migrations = orders_n_migrations,
		.routes = orders_routes,
		.n_routes = orders_n_routes,
		.tasks = orders_tasks,
		.n_tasks = orders_n_tasks,
		.ctx = &g.ctx,
	};
	if (svc_migrate(&g.spec, g.db) != SHOP_OK) {
		fprintf(stderr, "migrate: %s\n", db_last_error(g.db));
		return -1;
	}
	g.svc = svc_create_detached(&g.spec);
	return 0;
}

static int group_teardown(void **state)
{
	struct db *admin = NULL;
	svc_destroy(g.svc);
	db_close(g.db);
	if (db_open(g.admin_url, &admin) == SHOP_OK) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", g.dbname);
		(void)db_exec(admin, sql, DB_NOARGS, NULL);
	}
	db_close(admin);
	return 0;
}

/* ---- driving handlers on a given connection ---------------------------- */

struct call {
	svc_handler_fn fn;
	const void *data;
};

static shop_status call_in_tx(struct svc_tx *tx, void *arg)
{
	const struct call *c = arg;
	return c->fn(tx, c->data);
}

static shop_status run_on(struct db *db, svc_handler_fn fn, const void *data)
{
	struct call c = { fn, data };
	return svc_tx_run(g.svc, db, "corr-test", NULL, call_in_tx, &c);
}

/* Places an order at NOW (in the past for the sweeper's cases). */
static void place_at(const char *order_id, int64_t now)
{
	struct ct_place_order *c = xcalloc(1, sizeof(*c));
	snprintf(c->order_id, sizeof(c->order_id), "%s", order_id);
	snprintf(c->customer_id, sizeof(c->customer_id), "cust-42");
	snprintf(c->email, sizeof(c->email), "ada@example.com");
	snprintf(c->items[0].sku, sizeof(c->items[0].sku), "SKU-1");
	c->items[0].quantity = 2;
	c->items_len = 1;
	snprintf(c->payment.card_token, sizeof(c->payment.card_token), "tok_visa");
	snprintf(c->shipping_address.name, sizeof(c->shipping_address.name), "Ada Lovelace");
	snprintf(c->shipping_address.line1, sizeof(c->shipping_address.line1), "1 Main Street");
	snprintf(c->shipping_address.city, sizeof(c->shipping_address.city), "London");
	snprintf(c->shipping_address.postal_code, sizeof(c->shipping_address.postal_code), "N1 9GU");
	snprintf(c->shipping_address.country, sizeof(c->shipping_address.country), "GB");
	struct svc_tx tx = { .svc = g.svc, .db = g.db, .now_ms = now, .correlation_id = "corr-test" };
	assert_int_equal(db_begin(g.db), SHOP_OK);
	assert_int_equal(orders_handle_place_order(&tx, c), SHOP_OK);
	assert_int_equal(db_commit(g.db), SHOP_OK);
	free(c);
}

static void new_order(char order_id[IDS_UUID_SIZE])
{
	ids_uuid7(order_id);
	place_at(order_id, clock_now_ms());
}

static struct ct_stock_reserved stock_reserved(const char *order_id)
{
	struct ct_stock_reserved ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	snprintf(ev.lines[0].sku, sizeof(ev.lines[0].sku), "SKU-1");
	ev.lines[0].quantity = 2;
	ev.lines[0].unit_price_cents = 1000;
	ev.lines_len = 1;
	ev.total_cents = 2000;
	snprintf(ev.currency, sizeof(ev.currency), "EUR");
	return ev;
}

static struct ct_payment_authorized payment_authorized(const char *order_id)
{
	struct ct_payment_authorized ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	ids_uuid7(ev.payment_id);
	ev.amount_cents = 2000;
	snprintf(ev.currency, sizeof(ev.currency), "EUR");
	ev.attempts = 1;
	return ev;
}

static struct ct_shipment_dispatched shipment_dispatched(const char *order_id)
{
	struct ct_shipment_dispatched ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	ids_uuid7(ev.shipment_id);
	return ev;
}

static struct ct_cancel_order cancel_order(const char *order_id)
{
	struct ct_cancel_order cmd = { 0 };
	snprintf(cmd.order_id, sizeof(cmd.order_id), "%s", order_id);
	return cmd;
}

static struct orders_row order(const char *order_id)
{
	struct orders_row row;
	assert_int_equal(orders_store_get(g.db, order_id, &row), SHOP_OK);
	return row;
}

/* Events of one order, by message subject ("" for any). */
static int64_t events_of(const char *order_id, const char *subject)
{
	struct db_result *r = NULL;
	char *pattern = xasprintf("%%\"subject\":\"%s\"%%", order_id);
	assert_int_equal(db_query(g.db,
				  "SELECT COUNT(*) FROM outbox WHERE payload LIKE $1"
				  " AND ($2 = '' OR subject = $2)",
				  DB_ARGS(pattern, subject), &r),
			 SHOP_OK);
	int64_t n = db_result_int(r, 0, 0);
	db_result_free(r);
	free(pattern);
	return n;
}

/* ---- cases: the SQL on PostgreSQL -------------------------------------- */

static void migrations_apply_on_postgresql_and_again_change_nothing(void **state)
{
	assert_int_equal(svc_migrate(&g.spec, g.db), SHOP_OK);
	struct db_result *r = NULL;
	assert_int_equal(db_query(g.db,
				  "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'orders'"
				  " AND indexname = 'orders_status_deadline'",
				  DB_NOARGS, &r),
			 SHOP_OK);
	assert_int_equal(db_result_int(r, 0, 0), 1);
	db_result_free(r);
}

static void an_order_goes_from_placed_to_shipped_on_postgresql(void **state)
{
	char id[IDS_UUID_SIZE];
	new_order(id);
	place_at(id, clock_now_ms()); /* the command again: nothing */
	struct ct_stock_reserved reserved = stock_reserved(id);
	struct ct_payment_authorized paid = payment_authorized(id);
	struct ct_shipment_dispatched shipped = shipment_dispatched(id);
	assert_int_equal(run_on(g.db, orders_handle_payment_authorized, &paid), SHOP_E_NOT_READY);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);
	assert_int_equal(run_on(g.db, orders_handle_payment_authorized, &paid), SHOP_OK);
	assert_int_equal(run_on(g.db, orders_handle_shipment_dispatched, &shipped), SHOP_OK);

	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_SHIPPED);
	assert_int_equal(row.total_cents, 2000);
	assert_string_equal(row.currency, "EUR");
	assert_string_equal(row.payment_id, paid.payment_id);
	assert_string_equal(row.shipment_id, shipped.shipment_id);
	assert_int_equal(row.version, 4);
	assert_int_equal(events_of(id, SUBJ_PLACED), 1);
	assert_int_equal(events_of(id, SUBJ_RESERVED), 1);
	assert_int_equal(events_of(id, SUBJ_PAID), 1);
	assert_int_equal(events_of(id, SUBJ_SHIPPED), 1);
	assert_int_equal(events_of(id, ""), 4);
}

static void the_sweeper_cancels_expired_orders_on_postgresql(void **state)
{
	char expired[IDS_UUID_SIZE], fresh[IDS_UUID_SIZE];
	ids_uuid7(expired);
	place_at(expired, clock_now_ms() - 2 * DEADLINE_MS);
	new_order(fresh);
	assert_int_equal(orders_sweep(g.svc, g.db), SHOP_OK);
	struct orders_row row = order(expired);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_TIMEOUT);
	assert_int_equal(order(fresh).status, ORDERS_STATUS_PENDING);
	assert_int_equal(events_of(expired, SUBJ_CANCELLED), 1);
	assert_int_equal(events_of(fresh, SUBJ_CANCELLED), 0);
}

/* ---- cases: replicas racing -------------------------------------------- */

/* A replica handling one message on its own connection, in a thread. */
struct replica {
	pthread_barrier_t *start; /* NULL: go at once */
	struct db *db;
	svc_handler_fn fn;        /* NULL: run the deadline sweeper instead */
	const void *data;
	shop_status st;
};

static void *replica_run(void *arg)
{
	struct replica *r = arg;
	if (r->start)
		pthread_barrier_wait(r->start);
	/* A retryable outcome is redelivered by the runtime: do the same. */
	for (int i = 0; i < 20; i++) {
		r->st = r->fn ? run_on(r->db, r->fn, r->data) : orders_sweep(g.svc, r->db);
		if (r->st != SHOP_E_UNAVAILABLE)
			break;
	}
	return NULL;
}

/* Waits until some session of this database waits for a row lock. */
static bool lock_wait_seen(struct db *observer)
{
	for (int64_t waited = 0; waited < LOCK_WAIT_MAX_MS; waited += LOCK_WAIT_POLL_MS) {
		struct db_result *r = NULL;
		assert_int_equal(db_query(observer,
					  "SELECT COUNT(*) FROM pg_stat_activity"
					  " WHERE datname = current_database() AND wait_event_type = 'Lock'",
					  DB_NOARGS, &r),
				 SHOP_OK);
		int64_t n = db_result_int(r, 0, 0);
		db_result_free(r);
		if (n > 0)
			return true;
		clock_sleep_ms(LOCK_WAIT_POLL_MS);
	}
	return false;
}

/* Replica A has moved the order but not committed; replica B decides on the
 * old status and blocks in its guarded UPDATE. When A commits, B's update
 * finds the guard false and changes nothing, so B must read again and decide
 * on what A did. B runs FN_B (or the sweeper when FN_B is NULL); returns
 * B's status. */
static shop_status interleave(svc_handler_fn fn_a, const void *data_a, svc_handler_fn fn_b,
			      const void *data_b)
{
	struct db *da = NULL, *observer = NULL;
	struct replica b = { .fn = fn_b, .data = data_b };
	pthread_t tb;
	assert_int_equal(db_open(g.url, &da), SHOP_OK);
	assert_int_equal(db_open(g.url, &b.db), SHOP_OK);
	assert_int_equal(db_open(g.url, &observer), SHOP_OK);

	struct svc_tx tx = { .svc = g.svc, .db = da, .now_ms = clock_now_ms(),
			     .correlation_id = "corr-test" };
	assert_int_equal(db_begin(da), SHOP_OK);
	assert_int_equal(fn_a(&tx, data_a), SHOP_OK);

	assert_int_equal(pthread_create(&tb, NULL, replica_run, &b), 0);
	bool waited = lock_wait_seen(observer);
	assert_int_equal(db_commit(da), SHOP_OK);
	pthread_join(tb, NULL);
	db_close(observer);
	db_close(b.db);
	db_close(da);
	assert_true(waited);
	return b.st;
}

static void a_cancel_blocked_behind_a_reservation_decides_again_and_cancels_it(void **state)
{
	char id[IDS_UUID_SIZE];
	new_order(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	struct ct_cancel_order cancel = cancel_order(id);
	assert_int_equal(interleave(orders_handle_stock_reserved, &reserved,
				    orders_handle_cancel_order, &cancel),
			 SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
	assert_int_equal(row.reason, ORDERS_REASON_CUSTOMER_CANCELLED);
	assert_int_equal(row.total_cents, 2000); /* A's facts survived B's transition */
	assert_int_equal(row.version, 3);
	assert_int_equal(events_of(id, SUBJ_RESERVED), 1);
	assert_int_equal(events_of(id, SUBJ_CANCELLED), 1);
}

static void a_duplicate_reservation_blocked_behind_the_first_is_ignored(void **state)
{
	char id[IDS_UUID_SIZE];
	new_order(id);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(interleave(orders_handle_stock_reserved, &reserved,
				    orders_handle_stock_reserved, &reserved),
			 SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_RESERVED);
	assert_int_equal(row.version, 2);
	assert_int_equal(events_of(id, SUBJ_RESERVED), 1);
}

static void a_timeout_blocked_behind_a_payment_leaves_the_order_paid(void **state)
{
	char id[IDS_UUID_SIZE];
	ids_uuid7(id);
	place_at(id, clock_now_ms() - 2 * DEADLINE_MS);
	struct ct_stock_reserved reserved = stock_reserved(id);
	assert_int_equal(run_on(g.db, orders_handle_stock_reserved, &reserved), SHOP_OK);

	/* The sweeper reads RESERVED past its deadline while the payment holds
	 * the row; once the payment commits, the timeout no longer applies. */
	struct ct_payment_authorized paid = payment_authorized(id);
	assert_int_equal(interleave(orders_handle_payment_authorized, &paid, NULL, NULL), SHOP_OK);
	struct orders_row row = order(id);
	assert_int_equal(row.status, ORDERS_STATUS_PAID);
	assert_int_equal(row.version, 3);
	assert_int_equal(events_of(id, SUBJ_PAID), 1);
	assert_int_equal(events_of(id, SUBJ_CANCELLED), 0);
}

static void cancels_and_reservations_racing_freely_end_consistent(void **state)
{
	struct replica a = { 0 }, b = { 0 };
	int cancelled_first = 0, reserved_first = 0;
	assert_int_equal(db_open(g.url, &a.db), SHOP_OK);
	assert_int_equal(db_open(g.url, &b.db), SHOP_OK);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		char id[IDS_UUID_SIZE];
		pthread_barrier_t start;
		pthread_t ta, tb;
		new_order(id);
		struct ct_stock_reserved reserved = stock_reserved(id);
		struct ct_cancel_order cancel = cancel_order(id);
		a.fn = orders_handle_stock_reserved;
		a.data = &reserved;
		b.fn = orders_handle_cancel_order;
		b.data = &cancel;
		pthread_barrier_init(&start, NULL, 2);
		a.start = b.start = &start;
		assert_int_equal(pthread_create(&ta, NULL, replica_run, &a), 0);
		assert_int_equal(pthread_create(&tb, NULL, replica_run, &b), 0);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		pthread_barrier_destroy(&start);

		assert_int_equal(a.st, SHOP_OK);
		assert_int_equal(b.st, SHOP_OK);
		struct orders_row row = order(id);
		assert_int_equal(row.status, ORDERS_STATUS_CANCELLED);
		assert_int_equal(row.reason, ORDERS_REASON_CUSTOMER_CANCELLED);
		assert_int_equal(events_of(id, SUBJ_CANCELLED), 1);
		/* Either the reservation came first and was announced, or the
		 * cancellation did and the reservation was ignored. */
		int64_t announced = events_of(id, SUBJ_RESERVED);
		assert_int_equal(announced, row.version == 3 ? 1 : 0);
		if (announced)
			reserved_first++;
		else
			cancelled_first++;
	}
	print_message("# %d rounds: %d reserved then cancelled, %d cancelled first\n", RACE_ROUNDS,
		      reserved_first, cancelled_first);
	db_close(a.db);
	db_close(b.db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(migrations_apply_on_postgresql_and_again_change_nothing),
		cmocka_unit_test(an_order_goes_from_placed_to_shipped_on_postgresql),
		cmocka_unit_test(the_sweeper_cancels_expired_orders_on_postgresql),
		cmocka_unit_test(a_cancel_blocked_behind_a_reservation_decides_again_and_cancels_it),
		cmocka_unit_test(a_duplicate_reservation_blocked_behind_the_first_is_ignored),
		cmocka_unit_test(a_timeout_blocked_behind_a_payment_leaves_the_order_paid),
		cmocka_unit_test(cancels_and_reservations_racing_freely_end_consistent),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
