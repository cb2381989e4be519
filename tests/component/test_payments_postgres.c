/*
 * test_payments_postgres.c - payments on a real PostgreSQL server (started by
 * tests/component/run.sh): the service's SQL and the provider's ledger on
 * the backend compose uses, and the races SQLite cannot show because it has
 * one writer per file.
 *
 * The group creates its own database (dropped at the end), so reruns never
 * meet old state; each case uses fresh order ids and counts only its own
 * events. The service and the provider share the database, as deployed
 * (payments_provider_url_derive keeps a PostgreSQL URL), each with its own
 * connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/payments/payments_handlers.h"
#include "../../services/payments/payments_provider.h"
#include "../../services/payments/payments_store.h"

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
#define TOTAL 2599
#define CURRENCY "EUR"
#define RACE_ROUNDS 25
#define REPLICAS 4

struct group {
	char admin_url[URL_MAX];
	char url[URL_MAX]; /* this run's database */
	char dbname[64];
	struct db *db;
	struct db *other[2]; /* two more connections, for the races */
	struct payments_provider *provider;
	struct payments_ctx ctx;
	struct svc_spec spec;
	struct svc *svc;
};

static struct group g;

static int group_setup(void **state)
{
	const char *base = getenv("SHOP_TEST_PG_URL");
	struct db *admin = NULL;
	char sql[128];
	log_init("payments-test", LOG_LVL_ERROR);
	if (!base || !*base) {
		fprintf(stderr, "SHOP_TEST_PG_URL is not set (run through tests/component/run.sh)\n");
		return -1;
	}
	const char *slash = strrchr(base, '/');
	if (!slash || (size_t)(slash - base) + 64 >= URL_MAX)
		return -1;
	snprintf(g.admin_url, sizeof(g.admin_url), "%s", base);
	snprintf(g.dbname, sizeof(g.dbname), "payments_t%ld_%lld", (long)getpid(),
		 (long long)clock_now_ms());
	snprintf(g.url, sizeof(g.url), "%.*s/%s", (int)(slash - base), base, g.dbname);

	if (db_open(g.admin_url, &admin) != SHOP_OK)
		return -1;
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", g.dbname);
	shop_status st = db_exec(admin, sql, DB_NOARGS, NULL);
	if (st != SHOP_OK)
		fprintf(stderr, "%s: %s\n", sql, db_last_error(admin));
	db_close(admin);
	if (st != SHOP_OK || db_open(g.url, &g.db) != SHOP_OK ||
	    db_open(g.url, &g.other[0]) != SHOP_OK || db_open(g.url, &g.other[1]) != SHOP_OK)
		return -1;

	char provider_url[PAYMENTS_PROVIDER_URL_MAX + 1];
	if (payments_provider_url_derive(g.url, provider_url, sizeof(provider_url)) != SHOP_OK ||
	    strcmp(provider_url, g.url) != 0)
		return -1;
	g.provider = payments_provider_create(provider_url);
	g.ctx.provider = g.provider;
	g.spec = (struct svc_spec){
		.name = PAYMENTS_SERVICE_NAME,
		.default_db_url = g.url,
		.migrations = payments_migrations,
		.n_migrations = payments_n_migrations,
		.routes = payments_routes,
		.n_routes = payments_n_routes,
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
	payments_provider_destroy(g.provider);
	db_close(g.other[0]);
	db_close(g.other[1]);
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

static shop_status order_placed_on(struct db *db, const char *order_id, const char *token)
{
	struct ct_order_placed m;
	memset(&m, 0, sizeof(m));
	snprintf(m.order_id, sizeof(m.order_id), "%s", order_id);
	snprintf(m.payment.card_token, sizeof(m.payment.card_token), "%s", token);
	return run_on(db, payments_handle_order_placed, &m);
}

static shop_status stock_reserved_on(struct db *db, const char *order_id)
{
	struct ct_stock_reserved m;
	memset(&m, 0, sizeof(m));
	snprintf(m.order_id, sizeof(m.order_id), "%s", order_id);
	m.total_cents = TOTAL;
	snprintf(m.currency, sizeof(m.currency), CURRENCY);
	return run_on(db, payments_handle_stock_reserved, &m);
}

static shop_status order_cancelled_on(struct db *db, const char *order_id)
{
	struct ct_order_cancelled m;
	memset(&m, 0, sizeof(m));
	snprintf(m.order_id, sizeof(m.order_id), "%s", order_id);
	snprintf(m.reason, sizeof(m.reason), "customer_cancelled");
	return run_on(db, payments_handle_order_cancelled, &m);
}

static enum payments_status status_of(const char *order_id)
{
	struct payments_row row;
	assert_int_equal(payments_store_get(g.db, order_id, &row), SHOP_OK);
	return row.status;
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

/* The provider's ledger row: -1 when the key was never charged, else
 * outcome approved (1/0) and refunded (1/0) as 10 * approved + refunded. */
static int ledger_of(const char *order_id)
{
	struct db_result *r = NULL;
	assert_int_equal(db_query(g.db,
				  "SELECT outcome, refunded FROM provider_charges"
				  " WHERE idempotency_key = $1",
				  DB_ARGS(order_id), &r),
			 SHOP_OK);
	int v = -1;
	if (db_result_rows(r) == 1) {
		const char *outcome = db_result_text(r, 0, 0);
		v = (outcome && strcmp(outcome, "APPROVED") == 0 ? 10 : 0) +
		    (int)db_result_int(r, 0, 1);
	}
	db_result_free(r);
	return v;
}

/* ---- cases ------------------------------------------------------------ */

static void a_charged_order_is_refunded_once_on_postgresql(void **state)
{
	char order_id[IDS_UUID_SIZE];
	ids_uuid7(order_id);
	assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_E_NOT_READY);
	assert_int_equal(order_placed_on(g.db, order_id, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(order_placed_on(g.db, order_id, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_OK);
	assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_OK);
	assert_int_equal(status_of(order_id), PAYMENTS_CHARGED);
	assert_int_equal(order_cancelled_on(g.db, order_id), SHOP_OK);
	assert_int_equal(order_cancelled_on(g.db, order_id), SHOP_OK);
	assert_int_equal(status_of(order_id), PAYMENTS_REFUNDED);
	assert_int_equal(ledger_of(order_id), 11);
	assert_int_equal(events_of(order_id, "payments.event.payment_authorized.v1"), 1);
	assert_int_equal(events_of(order_id, "payments.event.payment_refunded.v1"), 1);
	assert_int_equal(events_of(order_id, ""), 2);
}

static void a_flaky_card_keeps_its_attempts_across_rolled_back_deliveries(void **state)
{
	char order_id[IDS_UUID_SIZE];
	ids_uuid7(order_id);
	assert_int_equal(order_placed_on(g.db, order_id, PAYMENTS_CARD_FLAKY), SHOP_OK);
	assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_E_UNAVAILABLE);
	assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_E_UNAVAILABLE);
	assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_OK);
	struct payments_row row;
	assert_int_equal(payments_store_get(g.db, order_id, &row), SHOP_OK);
	assert_int_equal(row.status, PAYMENTS_CHARGED);
	assert_int_equal(row.attempts, 3);
	assert_int_equal(events_of(order_id, ""), 1);
}

static void declined_cards_and_early_cancellations_charge_nothing(void **state)
{
	char declined[IDS_UUID_SIZE], early[IDS_UUID_SIZE];
	ids_uuid7(declined);
	ids_uuid7(early);
	assert_int_equal(order_placed_on(g.db, declined, PAYMENTS_CARD_DECLINED), SHOP_OK);
	assert_int_equal(stock_reserved_on(g.db, declined), SHOP_OK);
	assert_int_equal(order_cancelled_on(g.db, declined), SHOP_OK);
	assert_int_equal(status_of(declined), PAYMENTS_DECLINED);
	assert_int_equal(events_of(declined, "payments.event.payment_declined.v1"), 1);
	assert_int_equal(events_of(declined, ""), 1);

	assert_int_equal(order_cancelled_on(g.db, early), SHOP_OK);
	assert_int_equal(order_placed_on(g.db, early, PAYMENTS_CARD_VISA), SHOP_OK);
	assert_int_equal(stock_reserved_on(g.db, early), SHOP_OK);
	assert_int_equal(status_of(early), PAYMENTS_CANCELLED);
	assert_int_equal(ledger_of(early), -1);
	assert_int_equal(events_of(early, ""), 0);
}

/* Two consumer threads (or replicas) on their own connections, released
 * together by a barrier. */
struct racer {
	pthread_barrier_t *start;
	struct db *db;
	const char *order_id;
	shop_status (*fn)(struct db *db, const char *order_id);
	shop_status st;
};

static void *racer_run(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->start);
	/* A retryable outcome is redelivered by the runtime: do the same. */
	for (int i = 0; i < 20; i++) {
		r->st = r->fn(r->db, r->order_id);
		if (r->st != SHOP_E_UNAVAILABLE && r->st != SHOP_E_INTERNAL)
			break;
	}
	return NULL;
}

static void race(struct racer *a, struct racer *b)
{
	pthread_barrier_t start;
	pthread_t ta, tb;
	pthread_barrier_init(&start, NULL, 2);
	a->start = b->start = &start;
	assert_int_equal(pthread_create(&ta, NULL, racer_run, a), 0);
	assert_int_equal(pthread_create(&tb, NULL, racer_run, b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&start);
}

static void a_cancellation_racing_the_charge_never_leaves_money_taken(void **state)
{
	struct db *da = g.other[0], *dbb = g.other[1];
	int refunded = 0, cancelled = 0;
	for (int round = 0; round < RACE_ROUNDS; round++) {
		char order_id[IDS_UUID_SIZE];
		ids_uuid7(order_id);
		assert_int_equal(order_placed_on(g.db, order_id, PAYMENTS_CARD_VISA), SHOP_OK);
		struct racer charge = { .db = da, .order_id = order_id, .fn = stock_reserved_on };
		struct racer cancel = { .db = dbb, .order_id = order_id, .fn = order_cancelled_on };
		race(&charge, &cancel);
		assert_int_equal(charge.st, SHOP_OK);
		assert_int_equal(cancel.st, SHOP_OK);
		/* Either the charge won and was refunded, or the cancellation won
		 * and nothing was charged; never a charge on a cancelled order. */
		enum payments_status st = status_of(order_id);
		if (st == PAYMENTS_REFUNDED) {
			refunded++;
			assert_int_equal(ledger_of(order_id), 11);
			assert_int_equal(events_of(order_id, "payments.event.payment_authorized.v1"),
					 1);
			assert_int_equal(events_of(order_id, "payments.event.payment_refunded.v1"),
					 1);
		} else {
			cancelled++;
			assert_int_equal(st, PAYMENTS_CANCELLED);
			assert_int_equal(ledger_of(order_id), -1);
			assert_int_equal(events_of(order_id, ""), 0);
		}
	}
	print_message("# %d rounds: %d charged then refunded, %d cancelled first\n", RACE_ROUNDS,
		      refunded, cancelled);
}

static void duplicate_reservations_on_two_replicas_charge_once(void **state)
{
	struct db *da = g.other[0], *dbb = g.other[1];
	for (int round = 0; round < RACE_ROUNDS; round++) {
		char order_id[IDS_UUID_SIZE];
		ids_uuid7(order_id);
		assert_int_equal(order_placed_on(g.db, order_id, PAYMENTS_CARD_VISA), SHOP_OK);
		struct racer a = { .db = da, .order_id = order_id, .fn = stock_reserved_on };
		struct racer b = { .db = dbb, .order_id = order_id, .fn = stock_reserved_on };
		race(&a, &b);
		assert_int_equal(a.st, SHOP_OK);
		assert_int_equal(b.st, SHOP_OK);
		assert_int_equal(status_of(order_id), PAYMENTS_CHARGED);
		assert_int_equal(events_of(order_id, ""), 1);
	}
}

struct replica {
	pthread_barrier_t *start;
	struct payments_provider *provider;
	const char *key;
	shop_status st;
	struct payments_provider_charge_result r;
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	shop_status refund_st;
};

static void *replica_run(void *arg)
{
	struct replica *x = arg;
	pthread_barrier_wait(x->start);
	x->st = payments_provider_charge(x->provider, x->key, PAYMENTS_CARD_VISA, TOTAL, CURRENCY,
					 &x->r);
	x->refund_st = payments_provider_refund(x->provider, x->key, x->refund_id);
	return NULL;
}

static void providers_of_several_replicas_charge_and_refund_a_key_once(void **state)
{
	struct replica reps[REPLICAS];
	pthread_t threads[REPLICAS];
	pthread_barrier_t start;
	char key[IDS_UUID_SIZE];
	ids_uuid7(key);
	pthread_barrier_init(&start, NULL, REPLICAS);
	for (int i = 0; i < REPLICAS; i++) {
		/* One provider (one connection) each, as separate processes have. */
		reps[i] = (struct replica){ .start = &start,
					    .provider = payments_provider_create(g.url),
					    .key = key };
		assert_int_equal(pthread_create(&threads[i], NULL, replica_run, &reps[i]), 0);
	}
	for (int i = 0; i < REPLICAS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < REPLICAS; i++)
		payments_provider_destroy(reps[i].provider);
	for (int i = 0; i < REPLICAS; i++) {
		assert_int_equal(reps[i].st, SHOP_OK);
		assert_int_equal(reps[i].refund_st, SHOP_OK);
		assert_int_equal(reps[i].r.attempts, 1);
		assert_string_equal(reps[i].r.charge_id, reps[0].r.charge_id);
		assert_string_equal(reps[i].refund_id, reps[0].refund_id);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_charged_order_is_refunded_once_on_postgresql),
		cmocka_unit_test(a_flaky_card_keeps_its_attempts_across_rolled_back_deliveries),
		cmocka_unit_test(declined_cards_and_early_cancellations_charge_nothing),
		cmocka_unit_test(a_cancellation_racing_the_charge_never_leaves_money_taken),
		cmocka_unit_test(duplicate_reservations_on_two_replicas_charge_once),
		cmocka_unit_test(providers_of_several_replicas_charge_and_refund_a_key_once),
	};
	return cmocka_run_group_tests_name("payments_postgres", tests, group_setup, group_teardown);
}
