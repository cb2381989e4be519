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

#include "../unit/inventory_harness.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "pg_scratch.h"

#define URL_MAX 1024
#define WORKERS 6
#define ORDERS_PER_WORKER 40
#define RACED_ORDERS 40
#define RETRIES_MAX 50 /* a transaction retried more often fails the test */

struct fixture {
	enum db_backend backend;
	struct pg_scratch pg; /* PostgreSQL: this test's database */
	char url[URL_MAX];
	struct db *db;
};

static struct fixture sqlite_fx = { .backend = DB_SQLITE };
static struct fixture pg_fx = { .backend = DB_POSTGRES };

static struct svc_spec spec;

static int test_setup(void **state)
{
	struct fixture *f = *state;
	if (f->backend == DB_SQLITE) {
		static int seq;
		const char *dir = getenv("SHOP_TEST_WORKDIR");
		snprintf(f->url, sizeof(f->url), "sqlite:%s/inventory_%ld_%lld_%d.db",
			 dir && *dir ? dir : "/tmp", (long)getpid(), (long long)clock_now_ms(),
			 ++seq);
	} else {
		if (pg_scratch_create(&f->pg, "inventory") != 0)
			return -1;
		snprintf(f->url, sizeof(f->url), "%s", f->pg.url);
	}
	inventory_harness_spec_fill(&spec);
	return harness_open(&spec, f->url, &f->db, NULL) == SHOP_OK ? 0 : -1;
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
			snprintf(path, sizeof(path), "%s%s", f->url + strlen("sqlite:"),
				 suffixes[i]);
			(void)unlink(path);
		}
	} else {
		pg_scratch_drop(&f->pg);
	}
	return 0;
}

static int64_t query_int(struct db *db, const char *sql)
{
	return harness_query_int(db, sql, NULL);
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
	shop_status failure; /* first non-OK status, SHOP_OK if none */
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
	inventory_harness_seed(f->db, res);
	free(res);
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
	int64_t held_limited =
		query_int(f->db, "SELECT COALESCE(SUM(l.quantity), 0) FROM reservation_lines l "
				 "JOIN reservations r ON r.order_id = l.order_id "
				 "WHERE r.status = 'RESERVED' AND l.sku = 'SKU-LIMITED'");
	assert_int_equal(held_limited, limited);
	assert_true(held_limited <= 3);
	assert_int_equal(query_int(f->db,
				   "SELECT available FROM products WHERE sku = 'SKU-LIMITED'"),
			 3 - held_limited);
	assert_true(query_int(f->db,
			      "SELECT COUNT(*) FROM reservations WHERE status = 'REJECTED'") > 0);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM reservations"),
			 WORKERS * ORDERS_PER_WORKER);
	inventory_harness_assert_invariant(f->db);
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
	assert_int_equal(query_int(f->db,
				   "SELECT available FROM products WHERE sku = 'SKU-HEADSET'"),
			 60);
	inventory_harness_assert_invariant(f->db);
}

/* ---- the handlers through the runtime, on this backend ---- */

/* TYPE about ORDER_ID handled through the runtime, as a delivery would be. */
static shop_status deliver(struct svc *svc, struct db *db, const char *type, const char *order_id,
			   cJSON *data)
{
	char *json = harness_envelope_encode(
		&(struct harness_envelope){
			.type = type, .subject = order_id, .correlation_id = order_id },
		data);
	shop_status st = harness_deliver(svc, db, "inventory", json, NULL, 0);
	free(json);
	return st;
}

static void handlers_emit_through_the_outbox_on_this_backend(void **state)
{
	struct fixture *f = *state;
	struct svc *svc = svc_create_detached(&spec);
	char order_id[IDS_UUID_SIZE];
	ids_uuid7(order_id);

	for (int start = 0; start < 2; start++) /* a restart announces nothing more */
		assert_int_equal(svc_tx_run(svc, f->db, NULL, NULL, inventory_harness_run_init,
					    NULL),
				 SHOP_OK);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM outbox"),
			 (int64_t)inventory_catalogue_len);

	const char *skus[] = { "SKU-LIMITED", "SKU-CABLE" };
	const int quantities[] = { 2, 2 };
	cJSON *d = harness_order_placed_json(order_id, 2, skus, quantities);
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
	assert_int_equal(query_int(f->db,
				   "SELECT available FROM products WHERE sku = 'SKU-LIMITED'"),
			 3);
	assert_int_equal(query_int(f->db,
				   "SELECT revision FROM products WHERE sku = 'SKU-LIMITED'"),
			 3);
	inventory_harness_assert_invariant(f->db);
	svc_destroy(svc);
}

/* ---- batches decided on their locked copy, racing each other ---- */

#define BATCH_WORKERS 4
#define BATCHES_PER_WORKER 12
#define BATCH_LEN 8 /* messages per batch: 6 placed, 2 cancelled */
#define SHARED_ORDERS (BATCHES_PER_WORKER * 2)

/* Worker 0 places the even ones while worker 1 cancels them, batch by
 * batch; workers 2 and 3 do the same with the odd ones. */
static char shared_ids[SHARED_ORDERS][IDS_UUID_SIZE];

struct batcher {
	const char *url;
	int id;
	int retries;      /* messages handled again after SHOP_E_UNAVAILABLE */
	uint64_t replays; /* batches its runtime tried again message by message */
	shop_status failure;
	pthread_barrier_t *start;
};

/* Not inlined: GCC would then see an id as any part of its caller's array
 * and warn about truncation that cannot happen. */
__attribute__((noinline)) static char *placed_json(const char *order_id, size_t n,
						   const char *const *skus, const int *quantities)
{
	return harness_envelope_encode(
		&(struct harness_envelope){ .type = "shop.orders.order_placed.v1",
					    .subject = order_id,
					    .correlation_id = order_id },
		harness_order_placed_json(order_id, n, skus, quantities));
}

__attribute__((noinline)) static char *cancelled_json(const char *order_id)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "order_id", order_id);
	cJSON_AddStringToObject(c, "reason", "customer_cancelled");
	return harness_envelope_encode(
		&(struct harness_envelope){ .type = "shop.orders.order_cancelled.v1",
					    .subject = order_id,
					    .correlation_id = order_id },
		c);
}

/* Handles the batch as the consumer loop does, and again what the database
 * said to retry (a deadlock broken, a busy SQLite file), as redelivery would. */
static shop_status handle_until_done(struct svc *svc, struct db *db, char **jsons, size_t n,
				     int *retries)
{
	shop_status st[BATCH_LEN];
	for (int attempt = 0; attempt < RETRIES_MAX && n > 0; attempt++) {
		if (svc_handle_envelopes(svc, db, "inventory", (const char *const *)jsons, n, st) !=
		    SHOP_OK)
			return SHOP_E_INTERNAL;
		size_t left = 0;
		for (size_t i = 0; i < n; i++) {
			if (st[i] == SHOP_E_UNAVAILABLE)
				jsons[left++] = jsons[i];
			else if (st[i] != SHOP_OK && st[i] != SHOP_E_DUPLICATE)
				return st[i];
		}
		*retries += (int)left;
		n = left;
		if (n > 0)
			clock_sleep_ms(1 + attempt % 5);
	}
	return n == 0 ? SHOP_OK : SHOP_E_UNAVAILABLE;
}

static void *batcher_main(void *arg)
{
	struct batcher *w = arg;
	struct db *db = NULL;
	struct svc *svc = svc_create_detached(&spec);
	w->failure = svc ? db_open(w->url, &db) : SHOP_E_INTERNAL;
	pthread_barrier_wait(w->start);
	for (int k = 0; k < BATCHES_PER_WORKER && w->failure == SHOP_OK; k++) {
		char *batch[BATCH_LEN], *all[BATCH_LEN];
		char ids[BATCH_LEN][IDS_UUID_SIZE];
		size_t n = 0;
		for (int i = 0; i < BATCH_LEN - 2; i++) {
			ids_uuid7(ids[i]);
			/* The scarce products, in a different order per worker and
			 * batch: the copy locks them in SKU order whatever the
			 * lines say. */
			static const char *const forward[] = { "SKU-MONITOR", "SKU-LIMITED",
							       "SKU-HEADSET" };
			static const char *const backward[] = { "SKU-HEADSET", "SKU-LIMITED",
								"SKU-MONITOR" };
			static const int q_forward[] = { 1, 1, 2 }, q_backward[] = { 2, 1, 1 };
			bool back = (w->id + i) % 2;
			/* Every third order wants the lamp as well. */
			bool lamp = (w->id + k + i) % 3 == 0;
			const char *skus[3];
			int q[3];
			size_t m = 0;
			for (size_t j = 0; j < 3; j++) {
				if (j == 1 && !lamp)
					continue;
				skus[m] = back ? backward[j] : forward[j];
				q[m++] = back ? q_backward[j] : q_forward[j];
			}
			batch[n++] = placed_json(ids[i], m, skus, q);
		}
		/* Its own first order of the batch, cancelled in the same batch,
		 * and a shared one (see shared_ids). */
		batch[n++] = cancelled_json(ids[0]);
		const char *shared = shared_ids[(size_t)k * 2 + (size_t)w->id / 2];
		if (w->id % 2 == 0)
			batch[n++] = placed_json(shared, 1, (const char *const[]){ "SKU-CABLE" },
						 (const int[]){ 1 });
		else
			batch[n++] = cancelled_json(shared);
		memcpy(all, batch, sizeof(batch));
		w->failure = handle_until_done(svc, db, batch, n, &w->retries);
		for (size_t i = 0; i < n; i++)
			free(all[i]);
	}
	w->replays = svc ? svc_batch_replays(svc) : 0;
	db_close(db);
	svc_destroy(svc);
	return NULL;
}

static void batches_racing_each_other_and_cancellations_never_oversell(void **state)
{
	struct fixture *f = *state;
	pthread_t threads[BATCH_WORKERS];
	struct batcher workers[BATCH_WORKERS];
	pthread_barrier_t start;
	int retries = 0;
	uint64_t replays = 0, decided = inventory_batch_orders_decided();

	seed(f);
	for (size_t i = 0; i < SHARED_ORDERS; i++)
		ids_uuid7(shared_ids[i]);
	pthread_barrier_init(&start, NULL, BATCH_WORKERS);
	for (int i = 0; i < BATCH_WORKERS; i++) {
		workers[i] = (struct batcher){ .url = f->url, .id = i, .start = &start };
		assert_int_equal(pthread_create(&threads[i], NULL, batcher_main, &workers[i]), 0);
	}
	for (int i = 0; i < BATCH_WORKERS; i++) {
		pthread_join(threads[i], NULL);
		if (workers[i].failure != SHOP_OK)
			fail_msg("batcher %d: %s", i, shop_status_name(workers[i].failure));
		retries += workers[i].retries;
		replays += workers[i].replays;
	}
	pthread_barrier_destroy(&start);
	print_message("# %d message(s) handled again, %llu batch(es) replayed one by one\n",
		      retries, (unsigned long long)replays);

	/* Most orders were decided on a batch's copy (a replayed batch decides
	 * its orders one by one, in the database). */
	assert_true(inventory_batch_orders_decided() - decided >=
		    BATCH_WORKERS * BATCHES_PER_WORKER * (BATCH_LEN - 2) / 2);
	/* Every order has its one row: the workers' own and the shared ones. */
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM reservations"),
			 BATCH_WORKERS * BATCHES_PER_WORKER * (BATCH_LEN - 2) + SHARED_ORDERS);
	/* The scarce lamp sold out, and never below zero. */
	assert_int_equal(
		query_int(f->db, "SELECT available FROM products WHERE sku = 'SKU-LIMITED'"),
		3 - query_int(f->db, "SELECT COALESCE(SUM(l.quantity), 0) FROM reservation_lines l "
				     "JOIN reservations r ON r.order_id = l.order_id "
				     "WHERE r.status = 'RESERVED' AND l.sku = 'SKU-LIMITED'"));
	assert_true(query_int(f->db,
			      "SELECT COUNT(*) FROM reservations WHERE status = 'REJECTED'") > 0);
	/* Each order cancelled in its own batch holds nothing, and whichever of
	 * a shared order's two messages came first, the cancellation won. */
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM reservations r "
					  "JOIN reservation_lines l ON l.order_id = r.order_id "
					  "WHERE r.status = 'RESERVED' AND l.sku = 'SKU-CABLE'"),
			 0);
	inventory_harness_assert_invariant(f->db);
}

#define T(name, fx) cmocka_unit_test_prestate_setup_teardown(name, test_setup, test_teardown, fx)
#define ALL_TESTS(fx)                                                                              \
	T(replicas_reserving_at_once_never_oversell, fx),                                          \
		T(a_cancellation_racing_its_order_never_leaves_stock_held, fx),                    \
		T(handlers_emit_through_the_outbox_on_this_backend, fx),                           \
		T(batches_racing_each_other_and_cancellations_never_oversell, fx)

int main(void)
{
	log_init("inventory", LOG_LVL_ERROR);
	const struct CMUnitTest sqlite_tests[] = { ALL_TESTS(&sqlite_fx) };
	const struct CMUnitTest pg_tests[] = { ALL_TESTS(&pg_fx) };
	int failed = cmocka_run_group_tests_name("inventory_sqlite", sqlite_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("inventory_postgres", pg_tests, NULL, NULL);
	return failed;
}
