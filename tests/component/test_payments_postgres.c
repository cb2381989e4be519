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

#include "../unit/payments_harness.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "db/db.h"
#include "pg_race.h"
#include "pg_scratch.h"
#include "svc/svc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOTAL 2599
#define CURRENCY PAYMENTS_HARNESS_CURRENCY
#define RACE_ROUNDS 25
#define REPLICAS 4
/* Threads sharing one provider: more than its pool has connections, so
 * some wait for one. */
#define PROVIDER_THREADS (2 * PAYMENTS_PROVIDER_CONNS_MAX)
/* How long a charge that waits for nothing may take before the case calls
 * it held up. */
#define UNBLOCKED_CHARGE_MAX_MS 5000

struct group {
	struct pg_scratch pg; /* this run's database */
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
	log_init("payments-test", LOG_LVL_ERROR);
	if (pg_scratch_create(&g.pg, "payments_t") != 0 ||
	    db_open(g.pg.url, &g.other[0]) != SHOP_OK || db_open(g.pg.url, &g.other[1]) != SHOP_OK)
		return -1;

	char provider_url[PAYMENTS_PROVIDER_URL_MAX + 1];
	if (payments_provider_url_derive(g.pg.url, provider_url, sizeof(provider_url)) != SHOP_OK ||
	    strcmp(provider_url, g.pg.url) != 0)
		return -1;
	g.provider = payments_provider_create(provider_url);
	g.ctx.provider = g.provider;
	payments_harness_spec_fill(&g.spec, &g.ctx, g.pg.url);
	return harness_open(&g.spec, g.pg.url, &g.db, &g.svc) == SHOP_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	svc_destroy(g.svc);
	payments_provider_destroy(g.provider);
	db_close(g.other[0]);
	db_close(g.other[1]);
	db_close(g.db);
	pg_scratch_drop(&g.pg);
	return 0;
}

/* ---- driving handlers on a given connection ---------------------------- */

static shop_status order_placed_on(struct db *db, const char *order_id, const char *token)
{
	return payments_harness_submit_card(g.svc, db, order_id, token);
}

static shop_status visa_submitted_on(struct db *db, const char *order_id)
{
	return payments_harness_submit_card(g.svc, db, order_id, PAYMENTS_CARD_VISA);
}

static shop_status stock_reserved_on(struct db *db, const char *order_id)
{
	return payments_harness_stock_reserved(g.svc, db, order_id, TOTAL);
}

static shop_status order_cancelled_on(struct db *db, const char *order_id)
{
	return payments_harness_order_cancelled(g.svc, db, order_id);
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
	return harness_outbox_count_for(g.db, order_id, subject);
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
	/* The reservation first: recorded, waiting for the card. */
	assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_OK);
	assert_int_equal(status_of(order_id), PAYMENTS_NEW);
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

/* A new order, placed with the visa card, whose next two messages FN_A
 * and FN_B race on two other connections; both must succeed. */
static void race_on_a_new_order(char order_id[IDS_UUID_SIZE],
				shop_status (*fn_a)(struct db *db, const char *order_id),
				shop_status (*fn_b)(struct db *db, const char *order_id))
{
	pthread_barrier_t start;
	ids_uuid7(order_id);
	assert_int_equal(order_placed_on(g.db, order_id, PAYMENTS_CARD_VISA), SHOP_OK);
	struct racer a = { .start = &start, .db = g.other[0], .order_id = order_id, .fn = fn_a };
	struct racer b = { .start = &start, .db = g.other[1], .order_id = order_id, .fn = fn_b };
	pg_race_together(&start, racer_run, &a, &b);
	assert_int_equal(a.st, SHOP_OK);
	assert_int_equal(b.st, SHOP_OK);
}

static void a_cancellation_racing_the_charge_never_leaves_money_taken(void **state)
{
	int refunded = 0, cancelled = 0;
	for (int round = 0; round < RACE_ROUNDS; round++) {
		char order_id[IDS_UUID_SIZE];
		race_on_a_new_order(order_id, stock_reserved_on, order_cancelled_on);
		/* Either the charge won and was refunded, or the cancellation won
		 * and nothing was charged; never a charge on a cancelled order. */
		enum payments_status st = status_of(order_id);
		if (st == PAYMENTS_REFUNDED) {
			refunded++;
			assert_int_equal(ledger_of(order_id), 11);
			assert_int_equal(events_of(order_id,
						   "payments.event.payment_authorized.v1"),
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

/* Issue 7: SubmitCard (CARDS) and StockReserved (INVENTORY) come on two
 * durables, so two consumer threads or replicas may take them at the same
 * moment for an order payments has never seen. Whichever inserts the row
 * waits; the other finds it under the lock and charges: once, always. */
static void the_card_and_the_reservation_racing_on_a_new_order_charge_once(void **state)
{
	for (int round = 0; round < RACE_ROUNDS; round++) {
		char order_id[IDS_UUID_SIZE];
		pthread_barrier_t start;
		ids_uuid7(order_id);
		struct racer a = { .start = &start,
				   .db = g.other[0],
				   .order_id = order_id,
				   .fn = visa_submitted_on };
		struct racer b = { .start = &start,
				   .db = g.other[1],
				   .order_id = order_id,
				   .fn = stock_reserved_on };
		pg_race_together(&start, racer_run, &a, &b);
		assert_int_equal(a.st, SHOP_OK);
		assert_int_equal(b.st, SHOP_OK);
		assert_int_equal(status_of(order_id), PAYMENTS_CHARGED);
		/* Redelivered afterwards, each changes nothing. */
		assert_int_equal(visa_submitted_on(g.db, order_id), SHOP_OK);
		assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_OK);
		assert_int_equal(events_of(order_id, ""), 1);
		assert_int_equal(events_of(order_id, "payments.event.payment_authorized.v1"), 1);
		struct payments_row row;
		assert_int_equal(payments_store_get(g.db, order_id, &row), SHOP_OK);
		assert_string_equal(row.card_token, "");
	}
}

static void duplicate_reservations_on_two_replicas_charge_once(void **state)
{
	for (int round = 0; round < RACE_ROUNDS; round++) {
		char order_id[IDS_UUID_SIZE];
		race_on_a_new_order(order_id, stock_reserved_on, stock_reserved_on);
		assert_int_equal(status_of(order_id), PAYMENTS_CHARGED);
		assert_int_equal(events_of(order_id, ""), 1);
	}
}

/* The handler charges on its own connection and its COMMIT fails after the
 * provider's commit: the session is terminated by the server in between, as
 * when payments is killed or PostgreSQL drops it. Then the order is
 * cancelled before the reservation comes back. */
static void a_charge_whose_handler_commit_failed_is_refunded_when_the_order_is_cancelled(
	void **state)
{
	char order_id[IDS_UUID_SIZE];
	struct db *doomed = NULL;
	struct db_result *r = NULL;
	struct ct_stock_reserved msg;
	ids_uuid7(order_id);
	assert_int_equal(order_placed_on(g.db, order_id, PAYMENTS_CARD_VISA), SHOP_OK);

	assert_int_equal(db_open(g.pg.url, &doomed), SHOP_OK);
	assert_int_equal(db_query(doomed, "SELECT pg_backend_pid()::text", DB_NOARGS, &r), SHOP_OK);
	char pid[DB_I64_SIZE];
	snprintf(pid, sizeof(pid), "%s", db_result_text(r, 0, 0));
	db_result_free(r);
	r = NULL;

	payments_harness_stock_reserved_fill(&msg, order_id, TOTAL);
	struct svc_tx tx = { .svc = g.svc, .db = doomed, .now_ms = clock_now_ms() };
	assert_int_equal(db_begin(doomed), SHOP_OK);
	assert_int_equal(payments_handle_stock_reserved(&tx, &msg), SHOP_OK);
	/* The provider has committed; the handler has not. The second argument
	 * waits until the session is gone, so COMMIT cannot win the race. */
	assert_int_equal(db_query(g.other[0], "SELECT pg_terminate_backend($1::int, 10000)::text",
				  DB_ARGS(pid), &r),
			 SHOP_OK);
	assert_string_equal(db_result_text(r, 0, 0), "true");
	db_result_free(r);
	assert_int_not_equal(db_commit(doomed), SHOP_OK);
	db_close(doomed);
	assert_int_equal(status_of(order_id), PAYMENTS_NEW);
	assert_int_equal(ledger_of(order_id), 10); /* approved, not refunded */

	assert_int_equal(order_cancelled_on(g.db, order_id), SHOP_OK);
	assert_int_equal(status_of(order_id), PAYMENTS_REFUNDED);
	assert_int_equal(ledger_of(order_id), 11);
	/* The late reservation and a second cancellation change nothing. */
	assert_int_equal(stock_reserved_on(g.db, order_id), SHOP_OK);
	assert_int_equal(order_cancelled_on(g.db, order_id), SHOP_OK);
	assert_int_equal(status_of(order_id), PAYMENTS_REFUNDED);
	assert_int_equal(ledger_of(order_id), 11);
	assert_int_equal(events_of(order_id, "payments.event.payment_authorized.v1"), 0);
	assert_int_equal(events_of(order_id, "payments.event.payment_refunded.v1"), 1);
	assert_int_equal(events_of(order_id, ""), 1);
}

/* The ledger's sessions commit without waiting for their own flush (see
 * payments_provider.c), the service's own do, and a ledger session that
 * libpq had to reset after its backend died keeps the setting. */
static void the_ledger_alone_skips_its_own_flush_even_after_a_reconnect(void **state)
{
	char setting[16], pid[DB_I64_SIZE], again[DB_I64_SIZE];
	struct db_result *r = NULL;
	assert_int_equal(payments_provider_session_text(
				 g.provider, "SELECT current_setting('synchronous_commit')",
				 setting, sizeof(setting)),
			 SHOP_OK);
	assert_string_equal(setting, "off");
	assert_int_equal(db_query(g.db, "SELECT current_setting('synchronous_commit')", DB_NOARGS,
				  &r),
			 SHOP_OK);
	assert_string_equal(db_result_text(r, 0, 0), "on");
	db_result_free(r);
	r = NULL;

	assert_int_equal(payments_provider_session_text(g.provider, "SELECT pg_backend_pid()::text",
							pid, sizeof(pid)),
			 SHOP_OK);
	assert_int_equal(db_query(g.other[0], "SELECT pg_terminate_backend($1::int, 10000)::text",
				  DB_ARGS(pid), &r),
			 SHOP_OK);
	assert_string_equal(db_result_text(r, 0, 0), "true");
	db_result_free(r);
	/* The first use finds the session gone; the next one resets it. */
	shop_status st = SHOP_E_UNAVAILABLE;
	for (int i = 0; i < 3 && st != SHOP_OK; i++)
		st = payments_provider_session_text(g.provider, "SELECT pg_backend_pid()::text",
						    again, sizeof(again));
	assert_int_equal(st, SHOP_OK);
	assert_string_not_equal(again, pid);
	assert_int_equal(payments_provider_session_text(
				 g.provider, "SELECT current_setting('synchronous_commit')",
				 setting, sizeof(setting)),
			 SHOP_OK);
	assert_string_equal(setting, "off");
}

/* One replica's reconciliation: a whole walk of the ledger from its start. */
struct reconciler {
	pthread_barrier_t *start;
	struct svc *svc;
	struct payments_ctx *ctx;
	struct db *db;
	shop_status st;
};

static void *reconciler_run(void *arg)
{
	struct reconciler *x = arg;
	x->ctx->reconcile_after[0] = '\0';
	pthread_barrier_wait(x->start);
	do {
		x->st = payments_reconcile(x->svc, x->db);
	} while (x->st == SHOP_OK && x->ctx->reconcile_after[0]);
	return NULL;
}

static void reconciliations_on_two_replicas_refund_each_late_charge_once(void **state)
{
	enum { ORDERS = 3 };
	char ids[ORDERS][IDS_UUID_SIZE];
	struct payments_ctx other_ctx = { .provider = payments_provider_create(g.pg.url) };
	struct svc_spec other_spec;
	payments_harness_spec_fill(&other_spec, &other_ctx, g.pg.url);
	struct svc *other_svc = svc_create_detached(&other_spec);
	assert_non_null(other_svc);

	for (int round = 0; round < RACE_ROUNDS; round++) {
		for (int i = 0; i < ORDERS; i++) {
			struct payments_provider_charge_result late;
			ids_uuid7(ids[i]);
			assert_int_equal(order_placed_on(g.db, ids[i], PAYMENTS_CARD_VISA),
					 SHOP_OK);
			assert_int_equal(order_cancelled_on(g.db, ids[i]), SHOP_OK);
			assert_int_equal(status_of(ids[i]), PAYMENTS_CANCELLED);
			/* A charge still in flight when the cancellation asked. */
			assert_int_equal(payments_provider_charge(g.provider, ids[i],
								  PAYMENTS_CARD_VISA, TOTAL,
								  CURRENCY, &late),
					 SHOP_OK);
		}
		pthread_barrier_t start;
		struct reconciler a = {
			.start = &start, .svc = g.svc, .ctx = &g.ctx, .db = g.other[0]
		};
		struct reconciler b = {
			.start = &start, .svc = other_svc, .ctx = &other_ctx, .db = g.other[1]
		};
		pg_race_together(&start, reconciler_run, &a, &b);
		assert_int_equal(a.st, SHOP_OK);
		assert_int_equal(b.st, SHOP_OK);
		for (int i = 0; i < ORDERS; i++) {
			assert_int_equal(status_of(ids[i]), PAYMENTS_REFUNDED);
			assert_int_equal(ledger_of(ids[i]), 11);
			assert_int_equal(events_of(ids[i], "payments.event.payment_refunded.v1"),
					 1);
			assert_int_equal(events_of(ids[i], ""), 1);
		}
	}
	svc_destroy(other_svc);
	payments_provider_destroy(other_ctx.provider);
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

/* N threads charge and refund one key at once, each with a provider of its
 * own (SHARED NULL: as separate processes have, one connection each) or all
 * with SHARED (as one process's consumer threads): the key is charged and
 * refunded once, every thread seeing the same charge and refund ids. */
static void threads_charge_and_refund_a_key_once(int n, struct payments_provider *shared)
{
	struct replica *reps = xcalloc((size_t)n, sizeof(*reps));
	pthread_t *threads = xcalloc((size_t)n, sizeof(*threads));
	pthread_barrier_t start;
	char key[IDS_UUID_SIZE];
	ids_uuid7(key);
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		reps[i] = (struct replica){ .start = &start,
					    .provider = shared ? shared
							       : payments_provider_create(g.pg.url),
					    .key = key };
		assert_int_equal(pthread_create(&threads[i], NULL, replica_run, &reps[i]), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < n && !shared; i++)
		payments_provider_destroy(reps[i].provider);
	for (int i = 0; i < n; i++) {
		assert_int_equal(reps[i].st, SHOP_OK);
		assert_int_equal(reps[i].refund_st, SHOP_OK);
		assert_int_equal(reps[i].r.attempts, 1);
		assert_string_equal(reps[i].r.charge_id, reps[0].r.charge_id);
		assert_string_equal(reps[i].refund_id, reps[0].refund_id);
	}
	free(threads);
	free(reps);
}

static void providers_of_several_replicas_charge_and_refund_a_key_once(void **state)
{
	threads_charge_and_refund_a_key_once(REPLICAS, NULL);
}

/* One provider shared by consumer threads, as in one payments process:
 * more threads than connections charge and refund one key at once. The
 * pool hands each call a connection of its own, and the ledger's row lock
 * still lets the key be charged and refunded once. */
static void threads_of_one_provider_charge_and_refund_a_key_once(void **state)
{
	threads_charge_and_refund_a_key_once(PROVIDER_THREADS, g.provider);
}

struct charger {
	const char *key;
	const char *card;
	shop_status st;
	struct payments_provider_charge_result r;
	atomic_bool done;
};

static void *charger_run(void *arg)
{
	struct charger *c = arg;
	c->st = payments_provider_charge(g.provider, c->key, c->card, TOTAL, CURRENCY, &c->r);
	atomic_store(&c->done, true);
	return NULL;
}

/* A charge that waits for its key's row lock (another replica charging the
 * same order) holds one connection of the pool, not the provider: another
 * order's charge goes through meanwhile. With one connection behind a
 * mutex, it waited for the lock to be let go. */
static void a_charge_waiting_for_its_key_holds_up_no_other_charge(void **state)
{
	char held[IDS_UUID_SIZE], other[IDS_UUID_SIZE];
	struct payments_provider_charge_result r;
	ids_uuid7(held);
	ids_uuid7(other);
	/* A first, failed attempt gives the held key its ledger row. */
	assert_int_equal(payments_provider_charge(g.provider, held, PAYMENTS_CARD_FLAKY, TOTAL,
						  CURRENCY, &r),
			 SHOP_E_UNAVAILABLE);
	/* "Another replica" holds the row. */
	struct db_result *lock = NULL;
	assert_int_equal(db_begin(g.other[0]), SHOP_OK);
	assert_int_equal(db_query(g.other[0],
				  "SELECT attempts FROM provider_charges"
				  " WHERE idempotency_key = $1 FOR UPDATE",
				  DB_ARGS(held), &lock),
			 SHOP_OK);
	assert_int_equal(db_result_rows(lock), 1);
	db_result_free(lock);

	pthread_t waiting, free_one;
	struct charger w = { .key = held, .card = PAYMENTS_CARD_FLAKY };
	struct charger f = { .key = other, .card = PAYMENTS_CARD_VISA };
	atomic_init(&w.done, false);
	atomic_init(&f.done, false);
	assert_int_equal(pthread_create(&waiting, NULL, charger_run, &w), 0);
	bool seen_waiting = pg_race_lock_wait_seen(g.other[1]);
	assert_int_equal(pthread_create(&free_one, NULL, charger_run, &f), 0);
	int64_t waited = 0;
	while (!atomic_load(&f.done) && waited < UNBLOCKED_CHARGE_MAX_MS) {
		clock_sleep_ms(PG_RACE_LOCK_WAIT_POLL_MS);
		waited += PG_RACE_LOCK_WAIT_POLL_MS;
	}
	bool went_through = atomic_load(&f.done);
	bool first_still_waiting = !atomic_load(&w.done);
	/* Let go before asserting, so a failure leaves no thread blocked. */
	db_rollback(g.other[0]);
	pthread_join(waiting, NULL);
	pthread_join(free_one, NULL);

	assert_true(seen_waiting);
	assert_true(went_through);
	assert_true(first_still_waiting);
	assert_int_equal(f.st, SHOP_OK);
	assert_int_equal(f.r.outcome, PAYMENTS_PROVIDER_APPROVED);
	/* The waiting one then made its (second, again failing) attempt. */
	assert_int_equal(w.st, SHOP_E_UNAVAILABLE);
	assert_int_equal(payments_provider_charge(g.provider, held, PAYMENTS_CARD_FLAKY, TOTAL,
						  CURRENCY, &r),
			 SHOP_OK);
	assert_int_equal(r.attempts, PAYMENTS_PROVIDER_FLAKY_FAILURES + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_charged_order_is_refunded_once_on_postgresql),
		cmocka_unit_test(a_flaky_card_keeps_its_attempts_across_rolled_back_deliveries),
		cmocka_unit_test(declined_cards_and_early_cancellations_charge_nothing),
		cmocka_unit_test(a_cancellation_racing_the_charge_never_leaves_money_taken),
		cmocka_unit_test(duplicate_reservations_on_two_replicas_charge_once),
		cmocka_unit_test(the_card_and_the_reservation_racing_on_a_new_order_charge_once),
		cmocka_unit_test(providers_of_several_replicas_charge_and_refund_a_key_once),
		cmocka_unit_test(threads_of_one_provider_charge_and_refund_a_key_once),
		cmocka_unit_test(a_charge_waiting_for_its_key_holds_up_no_other_charge),
		cmocka_unit_test(
			a_charge_whose_handler_commit_failed_is_refunded_when_the_order_is_cancelled),
		cmocka_unit_test(reconciliations_on_two_replicas_refund_each_late_charge_once),
		cmocka_unit_test(the_ledger_alone_skips_its_own_flush_even_after_a_reconnect),
	};
	return cmocka_run_group_tests_name("payments_postgres", tests, group_setup, group_teardown);
}
