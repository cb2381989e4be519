/*
 * test_inventory_concurrency.c - the inventory's guarantees on real
 * databases with several connections at once: PostgreSQL (started by
 * tests/component/run.sh) and a SQLite file.
 *
 * Worker threads, each with its own connection like the replicas of the
 * service, reserve overlapping orders with their lines in different orders,
 * cancel some, and race an OrderPlaced against an OrderCancelled of the same
 * order. Afterwards no product has sold more than it had, the stock
 * invariant holds, every order has at most one reservation row, and every
 * raced order holds nothing. The events are checked on PostgreSQL through
 * the real handler and outbox as well.
 *
 * Every test gets a fresh database: a new PostgreSQL database (dropped at
 * the end) or a new SQLite file in $SHOP_TEST_WORKDIR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../services/inventory/inventory.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"

#define URL_MAX 1024
#define WORKERS 6
#define ORDERS_PER_WORKER 40
#define RACED_ORDERS 40
#define RETRIES_MAX 50 /* a transaction retried more often fails the test */

struct fixture {
	enum db_backend backend;
	int seq;
	char dbname[96];
	char url[URL_MAX];
	struct db *db;
};

static struct fixture sqlite_fx = { .backend = DB_SQLITE };
static struct fixture pg_fx = { .backend = DB_POSTGRES };

static struct svc_spec spec;

static void pg_url_with_db(const char *base, const char *dbname, char *out, size_t size)
{
	const char *scheme_end = strstr(base, "://");
	const char *host = scheme_end ? scheme_end + 3 : base;
	size_t host_len = strcspn(host, "/?");
	const char *query = strchr(host + host_len, '?');
	snprintf(out, size, "%.*s/%s%s", (int)(host + host_len - base), base, dbname,
		 query ? query : "");
}

static int test_setup(void **state)
{
	struct fixture *f = *state;
	f->seq++;
	snprintf(f->dbname, sizeof(f->dbname), "inventory_%ld_%lld_%d", (long)getpid(),
		 (long long)clock_now_ms(), f->seq);
	if (f->backend == DB_SQLITE) {
		const char *dir = getenv("SHOP_TEST_WORKDIR");
		snprintf(f->url, sizeof(f->url), "sqlite:%s/%s.db", dir && *dir ? dir : "/tmp",
			 f->dbname);
	} else {
		const char *server = getenv("SHOP_TEST_PG_URL");
		struct db *admin = NULL;
		char sql[160];
		if (!server || !*server) {
			fprintf(stderr, "SHOP_TEST_PG_URL is not set (run under tests/component/run.sh)\n");
			return -1;
		}
		if (db_open(server, &admin) != SHOP_OK) {
			fprintf(stderr, "cannot open %s: %s\n", server, db_last_error(NULL));
			return -1;
		}
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->dbname);
		shop_status st = db_exec(admin, sql, DB_NOARGS, NULL);
		if (st != SHOP_OK)
			fprintf(stderr, "%s: %s\n", sql, db_last_error(admin));
		db_close(admin);
		if (st != SHOP_OK)
			return -1;
		pg_url_with_db(server, f->dbname, f->url, sizeof(f->url));
	}

	spec.name = "inventory";
	spec.migrations = inventory_migrations;
	spec.n_migrations = inventory_n_migrations;
	spec.routes = inventory_routes;
	spec.n_routes = inventory_n_routes;
	spec.init = inventory_init;
	if (db_open(f->url, &f->db) != SHOP_OK) {
		fprintf(stderr, "cannot open %s: %s\n", f->url, db_last_error(NULL));
		return -1;
	}
	if (svc_migrate(&spec, f->db) != SHOP_OK) {
		fprintf(stderr, "migrations: %s\n", db_last_error(f->db));
		return -1;
	}
	return 0;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->db);
	f->db = NULL;
	if (f->backend == DB_SQLITE) {
		static const char *const suffixes[] = { "", "-wal", "-shm" };
		for (size_t i = 0; i < 3; i++) {
			char path[URL_MAX + 8];
			snprintf(path, sizeof(path), "%s%s", f->url + strlen("sqlite:"), suffixes[i]);
			(void)unlink(path);
		}
	} else {
		struct db *admin = NULL;
		if (db_open(getenv("SHOP_TEST_PG_URL"), &admin) == SHOP_OK) {
			char sql[160];
			snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
				 f->dbname);
			(void)db_exec(admin, sql, DB_NOARGS, NULL);
		}
		db_close(admin);
	}
	return 0;
}

static int64_t query_int(struct db *db, const char *sql)
{
	struct db_result *r = NULL;
	shop_status st = db_query(db, sql, DB_NOARGS, &r);
	if (st != SHOP_OK)
		fail_msg("%s: %s", sql, db_last_error(db));
	int64_t v = db_result_int(r, 0, 0);
	db_result_free(r);
	return v;
}

static struct inventory_line line(const char *sku, int64_t quantity)
{
	struct inventory_line l;
	memset(&l, 0, sizeof(l));
	snprintf(l.sku, sizeof(l.sku), "%s", sku);
	l.quantity = quantity;
	return l;
}

/* One operation in its own transaction, retried like the runtime retries a
 * message while the database says "try again" (busy, deadlock,
 * serialisation). Returns the final status; *retries counts the retries. */
struct op {
	bool cancel;
	const char *order_id;
	const struct inventory_line *lines;
	size_t n;
};

static shop_status run_op(struct db *db, const struct op *op, struct inventory_result *res,
			  int *retries)
{
	for (int attempt = 0; attempt < RETRIES_MAX; attempt++) {
		shop_status st = db_begin(db);
		if (st == SHOP_OK) {
			st = op->cancel ? inventory_release(db, clock_now_ms(), op->order_id,
							    "customer_cancelled", res)
					: inventory_reserve(db, clock_now_ms(), op->order_id,
							    op->lines, op->n, res);
			if (st == SHOP_OK)
				st = db_commit(db);
			else
				db_rollback(db);
		}
		if (st != SHOP_E_UNAVAILABLE)
			return st;
		(*retries)++;
		clock_sleep_ms(1 + attempt % 5);
	}
	return SHOP_E_UNAVAILABLE;
}

struct worker {
	const char *url;
	int id;
	int reserved_limited; /* units of SKU-LIMITED this worker reserved and kept */
	int retries;
	shop_status failure;  /* first non-OK status, SHOP_OK if none */
	pthread_barrier_t *start;
};

/* Orders over the scarce products, lines deliberately in a different order
 * per worker (the service sorts them, which is what avoids deadlocks), some
 * cancelled right after. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct db *db = NULL;
	struct inventory_result *res = calloc(1, sizeof(*res));
	w->failure = db_open(w->url, &db);
	pthread_barrier_wait(w->start);
	if (w->failure != SHOP_OK)
		goto out;
	for (int i = 0; i < ORDERS_PER_WORKER; i++) {
		char order_id[64];
		snprintf(order_id, sizeof(order_id), "w%d-o%d", w->id, i);
		struct inventory_line lines[3];
		if ((w->id + i) % 2) {
			lines[0] = line("SKU-MONITOR", 1);
			lines[1] = line("SKU-LIMITED", 1);
			lines[2] = line("SKU-HEADSET", 2);
		} else {
			lines[0] = line("SKU-HEADSET", 1);
			lines[1] = line("SKU-MONITOR", 2);
			lines[2] = line("SKU-LIMITED", i % 3 == 0 ? 1 : 0);
		}
		size_t n = lines[2].quantity ? 3 : 2;
		struct op place = { .order_id = order_id, .lines = lines, .n = n };
		shop_status st = run_op(db, &place, res, &w->retries);
		if (st != SHOP_OK) {
			w->failure = st;
			goto out;
		}
		bool limited = res->outcome == INVENTORY_OUTCOME_RESERVED && n == 3;
		if (i % 4 == 0) {
			struct op cancel = { .cancel = true, .order_id = order_id };
			st = run_op(db, &cancel, res, &w->retries);
			if (st != SHOP_OK) {
				w->failure = st;
				goto out;
			}
			if (res->outcome == INVENTORY_OUTCOME_RELEASED)
				limited = false;
		}
		w->reserved_limited += limited ? 1 : 0;
	}
out:
	db_close(db);
	free(res);
	return NULL;
}

static void seed(struct fixture *f)
{
	struct inventory_result *res = calloc(1, sizeof(*res));
	assert_int_equal(db_begin(f->db), SHOP_OK);
	assert_int_equal(inventory_seed(f->db, inventory_catalogue, inventory_catalogue_len, res),
			 SHOP_OK);
	assert_int_equal(db_commit(f->db), SHOP_OK);
	free(res);
}

static void assert_invariant_holds(struct fixture *f)
{
	int64_t violations = -1;
	assert_int_equal(inventory_store_audit(f->db, &violations), SHOP_OK);
	assert_int_equal(violations, 0);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM products WHERE available < 0"), 0);
}

static void replicas_reserving_at_once_never_oversell(void **state)
{
	struct fixture *f = *state;
	pthread_t threads[WORKERS];
	struct worker workers[WORKERS];
	pthread_barrier_t start;
	int limited = 0, retries = 0;

	seed(f);
	pthread_barrier_init(&start, NULL, WORKERS);
	for (int i = 0; i < WORKERS; i++) {
		workers[i] = (struct worker){ .url = f->url, .id = i, .start = &start };
		assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(threads[i], NULL);
		if (workers[i].failure != SHOP_OK)
			fail_msg("worker %d: %s", i, shop_status_name(workers[i].failure));
		limited += workers[i].reserved_limited;
		retries += workers[i].retries;
	}
	pthread_barrier_destroy(&start);

	/* Far more orders wanted the scarce products than there were. */
	int64_t held_limited = query_int(
		f->db, "SELECT COALESCE(SUM(l.quantity), 0) FROM reservation_lines l "
		       "JOIN reservations r ON r.order_id = l.order_id "
		       "WHERE r.status = 'RESERVED' AND l.sku = 'SKU-LIMITED'");
	assert_int_equal(held_limited, limited);
	assert_true(held_limited <= 3);
	assert_int_equal(query_int(f->db, "SELECT available FROM products WHERE sku = 'SKU-LIMITED'"),
			 3 - held_limited);
	assert_true(query_int(f->db, "SELECT COUNT(*) FROM reservations WHERE status = 'REJECTED'") >
		    0);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM reservations"),
			 WORKERS * ORDERS_PER_WORKER);
	assert_invariant_holds(f);
	/* Sorted locking: PostgreSQL never had to break a deadlock. */
	if (f->backend == DB_POSTGRES)
		assert_int_equal(retries, 0);
}

struct racer {
	const char *url;
	bool cancel;
	int outcomes[INVENTORY_OUTCOME_SEEDED + 1]; /* how each of its operations ended */
	int retries;
	shop_status failure;
	pthread_barrier_t *start;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct db *db = NULL;
	struct inventory_result *res = calloc(1, sizeof(*res));
	struct inventory_line lines[] = { line("SKU-HEADSET", 1) };
	r->failure = db_open(r->url, &db);
	for (int i = 0; i < RACED_ORDERS; i++) {
		char order_id[32];
		snprintf(order_id, sizeof(order_id), "raced-%d", i);
		/* Both sides start each order together. */
		pthread_barrier_wait(r->start);
		if (r->failure != SHOP_OK)
			continue;
		struct op op = { .cancel = r->cancel, .order_id = order_id, .lines = lines, .n = 1 };
		r->failure = run_op(db, &op, res, &r->retries);
		if (r->failure == SHOP_OK)
			r->outcomes[res->outcome]++;
	}
	db_close(db);
	free(res);
	return NULL;
}

static void a_cancellation_racing_its_order_never_leaves_stock_held(void **state)
{
	struct fixture *f = *state;
	pthread_t threads[2];
	struct racer racers[2];
	pthread_barrier_t start;

	seed(f);
	pthread_barrier_init(&start, NULL, 2);
	for (int i = 0; i < 2; i++) {
		racers[i] = (struct racer){ .url = f->url, .cancel = i == 1, .start = &start };
		assert_int_equal(pthread_create(&threads[i], NULL, racer_main, &racers[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(threads[i], NULL);
		if (racers[i].failure != SHOP_OK)
			fail_msg("racer %d: %s", i, shop_status_name(racers[i].failure));
	}
	pthread_barrier_destroy(&start);
	print_message("# placed first %d times, cancelled first %d times\n",
		      racers[0].outcomes[INVENTORY_OUTCOME_RESERVED],
		      racers[1].outcomes[INVENTORY_OUTCOME_TOMBSTONED]);

	/* Whichever came first, the cancellation wins: nothing is held. */
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM reservations"), RACED_ORDERS);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM reservations WHERE status IN "
					  "('RESERVED', 'REJECTED')"),
			 0);
	assert_int_equal(query_int(f->db, "SELECT available FROM products WHERE sku = 'SKU-HEADSET'"),
			 60);
	assert_invariant_holds(f);
}

/* ---- the handlers through the runtime, on this backend ---- */

static shop_status run_init(struct svc_tx *tx, void *arg)
{
	return inventory_init(tx);
}

static char *order_envelope(const char *type, const char *order_id, cJSON *data)
{
	struct evt_envelope env;
	memset(&env, 0, sizeof(env));
	ids_uuid7(env.id);
	snprintf(env.source, sizeof(env.source), "/shop/test");
	snprintf(env.type, sizeof(env.type), "%s", type);
	clock_rfc3339(clock_now_ms(), env.time);
	snprintf(env.subject, sizeof(env.subject), "%s", order_id);
	snprintf(env.correlationid, sizeof(env.correlationid), "%s", order_id);
	snprintf(env.causationid, sizeof(env.causationid), "%s", env.id);
	ids_traceparent_new(env.traceparent);
	char *json = evt_envelope_encode(&env, data);
	cJSON_Delete(data);
	return json;
}

static shop_status deliver(struct svc *svc, struct db *db, const char *type, const char *order_id,
			   cJSON *data)
{
	char reason[256];
	char *json = order_envelope(type, order_id, data);
	shop_status st = svc_handle_envelope(svc, db, "inventory", json, strlen(json), reason,
					     sizeof(reason));
	free(json);
	return st;
}

static void handlers_emit_through_the_outbox_on_this_backend(void **state)
{
	struct fixture *f = *state;
	struct svc *svc = svc_create_detached(&spec);
	char order_id[IDS_UUID_SIZE];
	ids_uuid7(order_id);

	assert_int_equal(svc_tx_run(svc, f->db, NULL, NULL, run_init, NULL), SHOP_OK);
	assert_int_equal(svc_tx_run(svc, f->db, NULL, NULL, run_init, NULL), SHOP_OK);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM outbox"),
			 (int64_t)inventory_catalogue_len);

	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "order_id", order_id);
	cJSON_AddStringToObject(d, "customer_id", "cust-1");
	cJSON_AddStringToObject(d, "email", "ada@example.com");
	cJSON *items = cJSON_AddArrayToObject(d, "items");
	const char *skus[] = { "SKU-LIMITED", "SKU-CABLE" };
	for (int i = 0; i < 2; i++) {
		cJSON *it = cJSON_CreateObject();
		cJSON_AddStringToObject(it, "sku", skus[i]);
		cJSON_AddNumberToObject(it, "quantity", 2);
		cJSON_AddItemToArray(items, it);
	}
	cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "payment"), "card_token", "tok_visa");
	cJSON *a = cJSON_AddObjectToObject(d, "shipping_address");
	cJSON_AddStringToObject(a, "name", "Ada Lovelace");
	cJSON_AddStringToObject(a, "line1", "1 Main St");
	cJSON_AddStringToObject(a, "city", "London");
	cJSON_AddStringToObject(a, "postal_code", "N1 1AA");
	cJSON_AddStringToObject(a, "country", "GB");
	assert_int_equal(deliver(svc, f->db, "shop.orders.order_placed.v1", order_id, d), SHOP_OK);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM outbox WHERE subject = "
					  "'inventory.event.stock_reserved.v1'"),
			 1);
	assert_int_equal(query_int(f->db, "SELECT total_cents FROM reservations"),
			 2 * 12000 + 2 * 990);

	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "order_id", order_id);
	cJSON_AddStringToObject(c, "reason", "customer_cancelled");
	assert_int_equal(deliver(svc, f->db, "shop.orders.order_cancelled.v1", order_id, c),
			 SHOP_OK);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM outbox WHERE subject = "
					  "'inventory.event.stock_released.v1'"),
			 1);
	/* 7 seeded levels, StockReserved + 2 levels, StockReleased + 2 levels. */
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM outbox"),
			 (int64_t)inventory_catalogue_len + 6);
	assert_int_equal(query_int(f->db, "SELECT available FROM products WHERE sku = 'SKU-LIMITED'"),
			 3);
	assert_int_equal(query_int(f->db, "SELECT revision FROM products WHERE sku = 'SKU-LIMITED'"),
			 3);
	assert_invariant_holds(f);
	svc_destroy(svc);
}

#define T(name, fx) cmocka_unit_test_prestate_setup_teardown(name, test_setup, test_teardown, fx)
#define ALL_TESTS(fx)                                                  \
	T(replicas_reserving_at_once_never_oversell, fx),              \
	T(a_cancellation_racing_its_order_never_leaves_stock_held, fx), \
	T(handlers_emit_through_the_outbox_on_this_backend, fx)

int main(void)
{
	log_init("inventory", LOG_LVL_ERROR);
	const struct CMUnitTest sqlite_tests[] = { ALL_TESTS(&sqlite_fx) };
	const struct CMUnitTest pg_tests[] = { ALL_TESTS(&pg_fx) };
	int failed = cmocka_run_group_tests_name("inventory_sqlite", sqlite_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("inventory_postgres", pg_tests, NULL, NULL);
	return failed;
}
