/*
 * test_svc.c - unit tests of the service runtime without a broker: the
 * settle decision table, the retry schedule, the envelope codec, and the
 * outbox + inbox behaviour of svc_emit / svc_handle_envelope on a real
 * in-process SQLite database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "svc/svc.h"

/* ---- a tiny service under test: consumes order_placed, emits stock_released */

static int handled;
static shop_status test_result = SHOP_OK;
/* When set, the handler runs this statement first (a constraint to break). */
static const char *test_statement;
/* When set, only orders of this customer run test_statement / test_result. */
static const char *test_only_customer;
/* When set, the handler refuses the message with this reason. */
static const char *test_reject;

static shop_status test_on_order_placed(struct svc_tx *tx, const void *data)
{
	const struct ct_order_placed *e = data;
	handled++;
	if (test_only_customer && strcmp(e->customer_id, test_only_customer) != 0)
		goto emit;
	if (test_statement) {
		shop_status st = db_exec(tx->db, test_statement, DB_NOARGS, NULL);
		if (st != SHOP_OK)
			return st;
	}
	if (test_result != SHOP_OK)
		return test_result;
	if (test_reject)
		return svc_tx_reject(tx, "%s", test_reject);
emit:;
	struct ct_stock_released r = { 0 };
	snprintf(r.order_id, sizeof(r.order_id), "%s", e->order_id);
	memcpy(r.lines, e->items, sizeof(r.lines[0]) * e->items_len);
	r.lines_len = e->items_len;
	return svc_emit(tx, CT_MSG_STOCK_RELEASED, e->order_id, &r);
}

static const struct svc_route test_routes[] = {
	{ CT_MSG_ORDER_PLACED, test_on_order_placed },
};

/* "inventory" consumes order_placed in the contracts index. */
static const struct svc_spec test_spec = {
	.name = "inventory",
	.routes = test_routes,
	.n_routes = 1,
};

struct fixture {
	struct svc *svc;
	struct db *db;
	char *json;       /* the envelope delivered last */
	char reason[256]; /* ... and the runtime's answer to it */
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	xalloc_init_cjson();
	assert_int_equal(db_open("sqlite::memory:", &f->db), SHOP_OK);
	assert_int_equal(svc_migrate(&test_spec, f->db), SHOP_OK);
	f->svc = svc_create_detached(&test_spec);
	assert_int_equal(
		db_exec(f->db,
			"CREATE TABLE t_rules (k TEXT UNIQUE, n INTEGER NOT NULL CHECK (n > 0))",
			DB_NOARGS, NULL),
		SHOP_OK);
	assert_int_equal(db_exec(f->db, "INSERT INTO t_rules (k, n) VALUES ('taken', 1)", DB_NOARGS,
				 NULL),
			 SHOP_OK);
	handled = 0;
	test_result = SHOP_OK;
	test_statement = NULL;
	test_only_customer = NULL;
	test_reject = NULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	svc_destroy(f->svc);
	db_close(f->db);
	free(f->json);
	free(f);
	return 0;
}

#define ORDER_PLACED "shop.orders.order_placed.v1"

static const char order_placed_data[] =
	"{\"order_id\":\"0192f0c1-7d2a-7abc-8def-0123456789ab\",\"customer_id\":\"c-1\","
	"\"email\":\"ada@example.com\",\"items\":[{\"sku\":\"SKU-CABLE\",\"quantity\":2}],"
	"\"payment\":{\"card_token\":\"tok_visa\"},\"shipping_address\":{\"name\":\"Ada\","
	"\"line1\":\"1 St\",\"city\":\"London\",\"postal_code\":\"N1\",\"country\":\"GB\"}}";

/* An envelope with the given id, type and data, from SOURCE. */
static char *test_envelope_from(const char *id, const char *type, const char *data,
				const char *source)
{
	return xasprintf("{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"%s\","
			 "\"type\":\"%s\",\"time\":\"2026-11-22T10:00:00.000Z\","
			 "\"subject\":\"0192f0c1-7d2a-7abc-8def-0123456789ab\","
			 "\"datacontenttype\":\"application/json\",\"correlationid\":\"corr-1\","
			 "\"causationid\":\"cause-1\",\"traceparent\":"
			 "\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\",\"data\":%s}",
			 id, source, type, data);
}

/* ... from orders, the producer of order_placed (and order_paid). */
static char *test_envelope(const char *id, const char *type, const char *data)
{
	return test_envelope_from(id, type, data, "/shop/orders");
}

static int64_t test_count(struct db *db, const char *sql)
{
	struct db_result *r = NULL;
	assert_int_equal(db_query(db, sql, DB_NOARGS, &r), SHOP_OK);
	int64_t n = db_result_int(r, 0, 0);
	db_result_free(r);
	return n;
}

static shop_status test_handle(struct fixture *f, const char *json)
{
	return svc_handle_envelope(f->svc, f->db, "inventory", json, strlen(json), f->reason,
				   sizeof(f->reason));
}

/* The envelope delivered last, again. */
static shop_status redeliver(struct fixture *f)
{
	return test_handle(f, f->json);
}

/* Delivers an envelope with ID and TYPE around DATA to inventory; the
 * fixture keeps it for redeliver(). */
static shop_status deliver(struct fixture *f, const char *id, const char *type, const char *data)
{
	free(f->json);
	f->json = test_envelope(id, type, data);
	return redeliver(f);
}

static void handled_event_is_claimed_in_the_inbox_and_its_effects_reach_the_outbox(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000001", ORDER_PLACED,
				 order_placed_data),
			 SHOP_OK);
	assert_int_equal(handled, 1);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 1);
	assert_int_equal(test_count(f->db,
				    "SELECT COUNT(*) FROM outbox WHERE published_at_ms IS NULL"),
			 1);
}

static void duplicate_event_is_acked_without_side_effects(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000002", ORDER_PLACED,
				 order_placed_data),
			 SHOP_OK);
	assert_int_equal(redeliver(f), SHOP_E_DUPLICATE);
	assert_int_equal(handled, 1);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 1);
	assert_int_equal(svc_settle_decide(SHOP_E_DUPLICATE, 2), SVC_ACK);
}

static void failed_handler_rolls_back_inbox_and_outbox(void **state)
{
	struct fixture *f = *state;
	test_result = SHOP_E_NOT_READY;
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000003", ORDER_PLACED,
				 order_placed_data),
			 SHOP_E_NOT_READY);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 0);
	/* The redelivery then succeeds: nothing was remembered from the failure. */
	test_result = SHOP_OK;
	assert_int_equal(redeliver(f), SHOP_OK);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 1);
}

/* A constraint the handler's own writes break is not "already done": the
 * message is dead-lettered with the database's words, and nothing of it
 * (inbox claim, effects, events) is kept. */
static void a_constraint_the_handler_breaks_is_dead_lettered_not_acked(void **state)
{
	struct fixture *f = *state;
	static const char *const broken[] = {
		"INSERT INTO t_rules (k, n) VALUES ('other', 0)",    /* CHECK */
		"INSERT INTO t_rules (k, n) VALUES ('other', NULL)", /* NOT NULL */
		"INSERT INTO t_rules (k, n) VALUES ('taken', 2)",    /* UNIQUE */
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		char id[64];
		snprintf(id, sizeof(id), "0192f0c1-0000-7000-8000-00000000010%zu", i);
		test_statement = broken[i];
		shop_status st = deliver(f, id, ORDER_PLACED, order_placed_data);
		assert_int_equal(st, SHOP_E_CONFLICT);
		assert_int_equal(svc_settle_decide(st, 1), SVC_DEAD_LETTER);
		assert_non_null(strstr(f->reason, "broke a constraint"));
		assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 0);
		assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 0);
	}
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM t_rules"), 1);
	/* The inbox's own duplicate is still the one outcome acked after a
	 * rollback. */
	test_statement = NULL;
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000110", ORDER_PLACED,
				 order_placed_data),
			 SHOP_OK);
	assert_int_equal(redeliver(f), SHOP_E_DUPLICATE);
	assert_int_equal(svc_settle_decide(SHOP_E_DUPLICATE, 1), SVC_ACK);
}

/* A batch is one transaction: the message that fails is undone alone (and
 * settled by its own status), the others commit together, and an event
 * twice in one batch is handled once. The failure costs the batch a second
 * try, with a savepoint per message. */
static void a_batch_commits_once_and_a_failing_message_is_undone_alone(void **state)
{
	struct fixture *f = *state;
	static const char bad_customer[] =
		"{\"order_id\":\"0192f0c1-7d2a-7abc-8def-0123456789ff\",\"customer_id\":\"c-bad\","
		"\"email\":\"ada@example.com\",\"items\":[{\"sku\":\"SKU-CABLE\",\"quantity\":2}],"
		"\"payment\":{\"card_token\":\"tok_visa\"},\"shipping_address\":{\"name\":\"Ada\","
		"\"line1\":\"1 St\",\"city\":\"London\",\"postal_code\":\"N1\",\"country\":\"GB\"}}";
	char *a = test_envelope("0192f0c1-0000-7000-8000-000000000201", ORDER_PLACED,
				order_placed_data);
	char *b = test_envelope("0192f0c1-0000-7000-8000-000000000202", ORDER_PLACED, bad_customer);
	char *c = test_envelope("0192f0c1-0000-7000-8000-000000000203", ORDER_PLACED,
				order_placed_data);
	char *d = test_envelope("0192f0c1-0000-7000-8000-000000000204", ORDER_PLACED, bad_customer);
	const char *batch[] = { a, b, c, "{not json", a, d };
	shop_status st[6];
	test_only_customer = "c-bad";
	test_statement = "INSERT INTO t_rules (k, n) VALUES ('x', 0)"; /* breaks the CHECK */
	assert_int_equal(svc_handle_envelopes(f->svc, f->db, "inventory", batch, 4, st), SHOP_OK);
	assert_int_equal(st[0], SHOP_OK);
	assert_int_equal(st[1], SHOP_E_CONFLICT);
	assert_int_equal(st[2], SHOP_OK);
	assert_int_equal(st[3], SHOP_E_INVALID);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 2);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 2);
	/* b failed the first try (a and b ran), which was rolled back whole;
	 * the second try ran a and c, each under a savepoint. */
	assert_int_equal(svc_batch_replays(f->svc), 1);
	assert_int_equal(handled, 4);

	/* Redelivered with a fresh failure kind: a retried status, the rest
	 * already done. */
	test_statement = NULL;
	test_result = SHOP_E_NOT_READY;
	assert_int_equal(svc_handle_envelopes(f->svc, f->db, "inventory", batch + 4, 2, st),
			 SHOP_OK);
	assert_int_equal(st[0], SHOP_E_DUPLICATE);
	assert_int_equal(st[1], SHOP_E_NOT_READY);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 2);
	assert_int_equal(svc_batch_replays(f->svc), 2);

	/* The same event twice in one batch: the second finds the first's claim. */
	const char *twice[] = { b, b };
	test_result = SHOP_OK;
	test_only_customer = NULL;
	assert_int_equal(svc_handle_envelopes(f->svc, f->db, "inventory", twice, 2, st), SHOP_OK);
	assert_int_equal(st[0], SHOP_OK);
	assert_int_equal(st[1], SHOP_E_DUPLICATE);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 3);
	assert_int_equal(svc_batch_replays(f->svc), 2); /* a duplicate is no failure */
	free(a);
	free(b);
	free(c);
	free(d);
}

/* N envelopes of order_placed with ids ...SERIES01, ...SERIES02, ... and the
 * given data (order_placed_data where DATAS is NULL or an entry is). */
static void envelopes_make(char **out, size_t n, int series, const char *const *datas)
{
	for (size_t i = 0; i < n; i++) {
		char id[64];
		snprintf(id, sizeof(id), "0192f0c1-0000-7000-8000-000000000%d%02zu", series, i + 1);
		out[i] = test_envelope(id, ORDER_PLACED,
				       datas && datas[i] ? datas[i] : order_placed_data);
	}
}

static void envelopes_free(char **e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i]);
}

static void statuses_are(const shop_status *st, const shop_status *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(st[i], want[i]);
}

/* A batch in which nothing fails is tried once: every handler runs once, no
 * second try, and a message the inbox already has is skipped, not failed. */
static void a_batch_without_failures_is_tried_once(void **state)
{
	struct fixture *f = *state;
	char *e[3];
	envelopes_make(e, 3, 3, NULL);
	const char *batch[] = { e[0], e[1], e[0], e[2] };
	shop_status st[4];
	assert_int_equal(svc_handle_envelopes(f->svc, f->db, "inventory", batch, 4, st), SHOP_OK);
	statuses_are(st, (const shop_status[]){ SHOP_OK, SHOP_OK, SHOP_E_DUPLICATE, SHOP_OK }, 4);
	assert_int_equal(handled, 3);
	assert_int_equal(svc_batch_replays(f->svc), 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 3);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 3);
	envelopes_free(e, 3);
}

/* A batch's events are written with one statement before its commit, in
 * the order they were emitted, so the relay publishes them in that order. */
static void a_batchs_events_are_written_in_emit_order(void **state)
{
	struct fixture *f = *state;
	char *e[3];
	envelopes_make(e, 3, 4, NULL);
	const char *batch[] = { e[2], e[0], e[1] };
	shop_status st[3];
	assert_int_equal(svc_handle_envelopes(f->svc, f->db, "inventory", batch, 3, st), SHOP_OK);
	statuses_are(st, (const shop_status[]){ SHOP_OK, SHOP_OK, SHOP_OK }, 3);
	struct db_result *r = NULL;
	assert_int_equal(
		db_query(f->db,
			 "SELECT group_concat(substr(json_extract(payload, '$.causationid'), 34),"
			 " ',') FROM (SELECT payload FROM outbox ORDER BY id)",
			 DB_NOARGS, &r),
		SHOP_OK);
	assert_string_equal(db_result_text(r, 0, 0), "403,401,402");
	db_result_free(r);
	envelopes_free(e, 3);
}

/* When the batch's events cannot be written, no one message is to blame
 * yet: the careful try writes each message's events under its savepoint and
 * finds the one whose events the database refuses. */
static void a_refused_event_is_charged_to_the_message_that_emitted_it(void **state)
{
	struct fixture *f = *state;
	static const char bad_sku[] =
		"{\"order_id\":\"0192f0c1-7d2a-7abc-8def-0123456789ab\",\"customer_id\":\"c-1\","
		"\"email\":\"ada@example.com\",\"items\":[{\"sku\":\"SKU-REFUSED\",\"quantity\":2}],"
		"\"payment\":{\"card_token\":\"tok_visa\"},\"shipping_address\":{\"name\":\"Ada\","
		"\"line1\":\"1 St\",\"city\":\"London\",\"postal_code\":\"N1\",\"country\":\"GB\"}}";
	assert_int_equal(db_exec(f->db,
				 "CREATE TRIGGER refuse BEFORE INSERT ON outbox "
				 "WHEN NEW.payload LIKE '%SKU-REFUSED%' "
				 "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
				 DB_NOARGS, NULL),
			 SHOP_OK);
	char *e[3];
	envelopes_make(e, 3, 5, (const char *const[]){ NULL, bad_sku, NULL });
	const char *batch[] = { e[0], e[1], e[2] };
	shop_status st[3];
	assert_int_equal(svc_handle_envelopes(f->svc, f->db, "inventory", batch, 3, st), SHOP_OK);
	statuses_are(st, (const shop_status[]){ SHOP_OK, SHOP_E_CONFLICT, SHOP_OK }, 3);
	assert_int_equal(svc_batch_replays(f->svc), 1);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 2);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 2);
	assert_int_equal(
		test_count(f->db, "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%SKU-REFUSED%'"),
		0);
	envelopes_free(e, 3);
}

/* ---- group commit ---- */

#define GROUP_CALLERS 16
#define GROUP_QUEUE_WAIT_MS 30000 /* a wedged queue fails the test, not hangs it */

static atomic_bool group_leading; /* caller 0 is inside the first group */

struct group_caller {
	struct svc *svc;
	int n;          /* caller number: odd ones fail */
	shop_status st; /* what svc_tx_run_grouped returned */
	pthread_t thread;
};

static shop_status group_work(struct svc_tx *tx, void *arg)
{
	struct group_caller *c = arg;
	if (c->n == 0) {
		/* The first caller leads the first group: hold it until every
		 * other caller is queued behind it, so they make the next group. */
		atomic_store(&group_leading, true);
		int64_t give_up = clock_mono_ms() + GROUP_QUEUE_WAIT_MS;
		while (svc_group_waiting(c->svc) < GROUP_CALLERS - 1 && clock_mono_ms() < give_up)
			clock_sleep_ms(1);
	}
	shop_status st = db_exec(tx->db, "INSERT INTO t_rules (k, n) VALUES ($1, 1)",
				 DB_ARGS(DB_I64(c->n)), NULL);
	if (st != SHOP_OK)
		return st;
	if (c->n % 2 == 1)
		return SHOP_E_CONFLICT; /* its insert must be undone, the others' kept */
	struct ct_stock_released r = { .lines_len = 1 };
	snprintf(r.order_id, sizeof(r.order_id), "0192f0c1-7d2a-7abc-8def-0123456789%02d", c->n);
	snprintf(r.lines[0].sku, sizeof(r.lines[0].sku), "SKU-CABLE");
	r.lines[0].quantity = 1;
	return svc_emit(tx, CT_MSG_STOCK_RELEASED, r.order_id, &r);
}

static void *group_caller_main(void *arg)
{
	struct group_caller *c = arg;
	c->st = svc_tx_run_grouped(c->svc, NULL, NULL, group_work, c);
	return NULL;
}

/* Concurrent callers share commits (fewer commits than callers), each gets
 * its own outcome, and a failing caller's writes are undone alone. */
static void concurrent_grouped_transactions_share_commits_and_keep_their_own_outcomes(void **state)
{
	struct fixture *f = *state;
	char url[128];
	snprintf(url, sizeof(url), "sqlite:/tmp/test_svc_group_%ld.db", (long)getpid());
	struct db *db = NULL, *observer = NULL;
	assert_int_equal(db_open(url, &db), SHOP_OK);
	assert_int_equal(svc_migrate(&test_spec, db), SHOP_OK);
	assert_int_equal(db_exec(db, "CREATE TABLE t_rules (k TEXT UNIQUE, n INTEGER NOT NULL)",
				 DB_NOARGS, NULL),
			 SHOP_OK);
	svc_db_release(f->svc, db); /* the detached runtime's pool: no URL of its own */
	assert_int_equal(db_open(url, &observer), SHOP_OK);
	uint64_t before = svc_group_commits(f->svc);

	/* Caller 0 first, and leading, before the others start. */
	struct group_caller callers[GROUP_CALLERS];
	atomic_store(&group_leading, false);
	for (int i = 0; i < GROUP_CALLERS; i++) {
		callers[i] = (struct group_caller){ .svc = f->svc, .n = i };
		assert_int_equal(pthread_create(&callers[i].thread, NULL, group_caller_main,
						&callers[i]),
				 0);
		while (i == 0 && !atomic_load(&group_leading))
			clock_sleep_ms(1);
	}
	for (int i = 0; i < GROUP_CALLERS; i++)
		pthread_join(callers[i].thread, NULL);

	uint64_t commits = svc_group_commits(f->svc) - before;
	for (int i = 0; i < GROUP_CALLERS; i++)
		assert_int_equal(callers[i].st, i % 2 ? SHOP_E_CONFLICT : SHOP_OK);
	assert_int_equal(test_count(observer, "SELECT COUNT(*) FROM t_rules"), GROUP_CALLERS / 2);
	assert_int_equal(test_count(observer, "SELECT COUNT(*) FROM t_rules WHERE k % 2 = 1"), 0);
	assert_int_equal(test_count(observer, "SELECT COUNT(*) FROM outbox"), GROUP_CALLERS / 2);
	/* The leader's group, then everybody else's. */
	assert_int_equal(commits, 2);
	db_close(observer);
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < 3; i++) {
		char path[160];
		snprintf(path, sizeof(path), "%s%s", url + strlen("sqlite:"), suffixes[i]);
		unlink(path);
	}
}

/* ---- the connection pool ---- */

struct pool_waiter {
	struct svc *svc;
	shop_status st;
	struct db *db;
	int64_t waited_ms;
};

static void *pool_waiter_main(void *arg)
{
	struct pool_waiter *w = arg;
	int64_t start = clock_mono_ms();
	w->st = svc_db_acquire(w->svc, &w->db);
	w->waited_ms = clock_mono_ms() - start;
	return NULL;
}

/* At most SVC_DB_POOL_MAX connections are handed out: one more waits until
 * one comes back, and gives up (unavailable) after SVC_DB_ACQUIRE_WAIT_MS. */
static void the_pool_hands_out_at_most_its_bound_and_makes_the_next_one_wait(void **state)
{
	struct fixture *f = *state;
	struct db *held[SVC_DB_POOL_MAX];
	/* The detached runtime has no URL: stock its pool by hand. */
	for (int i = 0; i < SVC_DB_POOL_MAX; i++) {
		struct db *db = NULL;
		assert_int_equal(db_open("sqlite::memory:", &db), SHOP_OK);
		svc_db_release(f->svc, db);
	}
	for (int i = 0; i < SVC_DB_POOL_MAX; i++)
		assert_int_equal(svc_db_acquire(f->svc, &held[i]), SHOP_OK);

	/* Full: the next caller waits out the bound and is told unavailable. */
	struct pool_waiter late = { .svc = f->svc };
	pool_waiter_main(&late);
	assert_int_equal(late.st, SHOP_E_UNAVAILABLE);
	assert_true(late.waited_ms >= SVC_DB_ACQUIRE_WAIT_MS - 50);

	/* A connection given back goes to the one waiting. */
	struct pool_waiter w = { .svc = f->svc };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, pool_waiter_main, &w), 0);
	clock_sleep_ms(100);
	struct db *back = held[0];
	svc_db_release(f->svc, back);
	pthread_join(t, NULL);
	assert_int_equal(w.st, SHOP_OK);
	assert_ptr_equal(w.db, back);
	assert_true(w.waited_ms < SVC_DB_ACQUIRE_WAIT_MS);
	held[0] = w.db;
	for (int i = 0; i < SVC_DB_POOL_MAX; i++)
		svc_db_release(f->svc, held[i]);
}

/* ---- after_commit ---- */

static struct db *hook_observer; /* another connection: sees only committed rows */
static int hook_calls;
static int64_t hook_seen_inbox; /* inbox rows the observer saw at the last call */

static void test_after_commit(struct svc *svc)
{
	(void)svc;
	hook_calls++;
	hook_seen_inbox = test_count(hook_observer, "SELECT COUNT(*) FROM inbox");
}

/* The hook runs once per batch, after its commit (another connection
 * already sees the batch's inbox records), and not for a batch that
 * handled nothing: only duplicates and rejects, only failures, or a
 * commit that failed. */
static void after_commit_runs_after_a_committed_batch_that_handled_a_message(void **state)
{
	(void)state;
	char url[128];
	snprintf(url, sizeof(url), "sqlite:/tmp/test_svc_hook_%ld.db", (long)getpid());
	struct svc_spec spec = test_spec;
	spec.after_commit = test_after_commit;
	struct db *db = NULL;
	assert_int_equal(db_open(url, &db), SHOP_OK);
	assert_int_equal(svc_migrate(&spec, db), SHOP_OK);
	/* A deferred foreign key fails at COMMIT, not at the statement. */
	assert_int_equal(db_exec(db, "CREATE TABLE t_parent (id INTEGER PRIMARY KEY)", DB_NOARGS,
				 NULL),
			 SHOP_OK);
	assert_int_equal(db_exec(db,
				 "CREATE TABLE t_child (p INTEGER REFERENCES t_parent (id) "
				 "DEFERRABLE INITIALLY DEFERRED)",
				 DB_NOARGS, NULL),
			 SHOP_OK);
	assert_int_equal(db_open(url, &hook_observer), SHOP_OK);
	struct svc *svc = svc_create_detached(&spec);
	hook_calls = 0;
	hook_seen_inbox = -1;
	char *a = test_envelope("0192f0c1-0000-7000-8000-000000000301", ORDER_PLACED,
				order_placed_data);
	char *b = test_envelope("0192f0c1-0000-7000-8000-000000000302", ORDER_PLACED,
				order_placed_data);
	char *c = test_envelope("0192f0c1-0000-7000-8000-000000000303", ORDER_PLACED,
				order_placed_data);
	char *d = test_envelope("0192f0c1-0000-7000-8000-000000000304", ORDER_PLACED,
				order_placed_data);
	shop_status st[2];

	const char *both[] = { a, b };
	assert_int_equal(svc_handle_envelopes(svc, db, "inventory", both, 2, st), SHOP_OK);
	assert_int_equal(st[0], SHOP_OK);
	assert_int_equal(st[1], SHOP_OK);
	assert_int_equal(hook_calls, 1);
	assert_int_equal(hook_seen_inbox, 2);

	const char *nothing_new[] = { a, "{not json" };
	assert_int_equal(svc_handle_envelopes(svc, db, "inventory", nothing_new, 2, st), SHOP_OK);
	assert_int_equal(st[0], SHOP_E_DUPLICATE);
	assert_int_equal(st[1], SHOP_E_INVALID);
	assert_int_equal(hook_calls, 1);

	test_result = SHOP_E_NOT_READY;
	assert_int_equal(svc_handle_envelopes(svc, db, "inventory", (const char *[]){ c }, 1, st),
			 SHOP_OK);
	assert_int_equal(st[0], SHOP_E_NOT_READY);
	assert_int_equal(hook_calls, 1);

	test_result = SHOP_OK;
	test_statement = "INSERT INTO t_child (p) VALUES (42)"; /* no such parent */
	assert_int_equal(svc_handle_envelopes(svc, db, "inventory", (const char *[]){ d }, 1, st),
			 SHOP_OK);
	assert_int_not_equal(st[0], SHOP_OK); /* the commit failed: retried */
	assert_int_equal(hook_calls, 1);
	assert_int_equal(test_count(hook_observer, "SELECT COUNT(*) FROM inbox"), 2);

	test_statement = NULL;
	assert_int_equal(svc_handle_envelopes(svc, db, "inventory", (const char *[]){ d }, 1, st),
			 SHOP_OK);
	assert_int_equal(st[0], SHOP_OK);
	assert_int_equal(hook_calls, 2);
	assert_int_equal(hook_seen_inbox, 3);

	svc_destroy(svc);
	db_close(hook_observer);
	hook_observer = NULL;
	db_close(db);
	free(a);
	free(b);
	free(c);
	free(d);
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < 3; i++) {
		char path[160];
		snprintf(path, sizeof(path), "%s%s", url + strlen("sqlite:"), suffixes[i]);
		unlink(path);
	}
}

static void malformed_envelope_is_invalid_with_a_reason(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(test_handle(f, "{not json"), SHOP_E_INVALID);
	assert_non_null(strstr(f->reason, "malformed envelope"));
	assert_int_equal(deliver(f, "not-a-uuid", ORDER_PLACED, order_placed_data), SHOP_E_INVALID);
	assert_non_null(strstr(f->reason, "/id"));
	assert_int_equal(handled, 0);
}

static void data_violating_the_contract_is_invalid_and_names_the_path(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000004", ORDER_PLACED,
				 "{\"order_id\":\"0192f0c1-7d2a-7abc-8def-0123456789ab\"}"),
			 SHOP_E_INVALID);
	assert_non_null(strstr(f->reason, "data violates the contract"));
	assert_int_equal(handled, 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 0);
}

static void unknown_type_and_unconsumed_messages_are_invalid(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000005", "shop.nothing.v1",
				 "{}"),
			 SHOP_E_INVALID);
	/* order_paid exists, but inventory does not consume it. */
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000006",
				 "shop.orders.order_paid.v1",
				 "{\"order_id\":\"0192f0c1-7d2a-7abc-8def-0123456789ab\","
				 "\"payment_id\":\"0192f0c1-7d2a-7abc-8def-0123456789ac\"}"),
			 SHOP_E_INVALID);
	assert_non_null(strstr(f->reason, "does not consume"));
}

/* The contracts name one producer per type, and its source is
 * "/shop/<producer>": an event from anyone else is refused for good, with a
 * reason that names both, before its handler or the inbox see it. */
static void an_event_whose_source_is_not_its_producer_is_invalid_with_the_reason(void **state)
{
	struct fixture *f = *state;
	const char *forged[] = {
		"/shop/payments",    "/shop/orders/",      "/shop/ORDERS", "/shop", "orders", "/x",
		"/shop/orders-evil", "https://shop/orders"
	};
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		free(f->json);
		f->json = test_envelope_from("0192f0c1-0000-7000-8000-000000000071", ORDER_PLACED,
					     order_placed_data, forged[i]);
		assert_int_equal(redeliver(f), SHOP_E_INVALID);
		char want[256];
		snprintf(want, sizeof(want),
			 "source %s is not the producer of shop.orders.order_placed.v1 "
			 "(/shop/orders)",
			 forged[i]);
		assert_string_equal(f->reason, want);
		assert_int_equal(svc_settle_decide(SHOP_E_INVALID, 1), SVC_DEAD_LETTER);
	}
	assert_int_equal(handled, 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 0);
	/* The same event from its producer is handled. */
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000071", ORDER_PLACED,
				 order_placed_data),
			 SHOP_OK);
	assert_int_equal(handled, 1);
}

/* A forged event in a batch is refused alone: the others are handled in
 * the same transaction, and the batch is not tried again for it (it never
 * reached a handler). */
static void a_forged_event_in_a_batch_is_refused_alone(void **state)
{
	struct fixture *f = *state;
	char *e[3];
	envelopes_make(e, 3, 7, NULL);
	char *forged = test_envelope_from("0192f0c1-0000-7000-8000-000000000799", ORDER_PLACED,
					  order_placed_data, "/shop/payments");
	const char *batch[] = { e[0], forged, e[1], e[2] };
	shop_status st[4];
	assert_int_equal(svc_handle_envelopes(f->svc, f->db, "inventory", batch, 4, st), SHOP_OK);
	statuses_are(st, (const shop_status[]){ SHOP_OK, SHOP_E_INVALID, SHOP_OK, SHOP_OK }, 4);
	assert_int_equal(handled, 3);
	assert_int_equal(svc_batch_replays(f->svc), 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 3);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox WHERE event_id = "
					   "'0192f0c1-0000-7000-8000-000000000799'"),
			 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 3);
	free(forged);
	envelopes_free(e, 3);
}

/* A handler that refuses a message (svc_tx_reject) gives its dead letter
 * its words; the message's writes are undone. */
static void a_handler_refusal_is_invalid_with_the_handlers_reason(void **state)
{
	struct fixture *f = *state;
	test_reject = "order c-1 is not ours";
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000072", ORDER_PLACED,
				 order_placed_data),
			 SHOP_E_INVALID);
	assert_string_equal(f->reason, "order c-1 is not ours");
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 0);
	/* Outside a consumer there is no dead letter: the call only says no. */
	struct svc_tx tx = { .svc = f->svc, .db = f->db };
	assert_int_equal(svc_tx_reject(&tx, "%s", "nowhere to write"), SHOP_E_INVALID);
}

static void emitted_event_carries_causation_correlation_and_trace(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver(f, "0192f0c1-0000-7000-8000-000000000007", ORDER_PLACED,
				 order_placed_data),
			 SHOP_OK);
	struct db_result *r = NULL;
	assert_int_equal(db_query(f->db, "SELECT subject, payload, event_id FROM outbox", DB_NOARGS,
				  &r),
			 SHOP_OK);
	assert_string_equal(db_result_text(r, 0, 0), "inventory.event.stock_released.v1");
	cJSON *root = NULL;
	struct evt_envelope env;
	struct ct_errors errs = { 0 };
	const char *payload = db_result_text(r, 0, 1);
	assert_int_equal(evt_envelope_parse(payload, strlen(payload), &root, &env, &errs), SHOP_OK);
	assert_string_equal(env.id, db_result_text(r, 0, 2));
	assert_string_equal(env.causationid, "0192f0c1-0000-7000-8000-000000000007");
	assert_string_equal(env.correlationid, "corr-1");
	assert_string_equal(env.source, "/shop/inventory");
	assert_string_equal(env.type, "shop.inventory.stock_released.v1");
	assert_memory_equal(env.traceparent, "00-0af7651916cd43dd8448eb211c80319c-", 36);
	assert_string_not_equal(env.traceparent,
				"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	cJSON_Delete(root);
	db_result_free(r);
}

static shop_status test_emit_invalid(struct svc_tx *tx, void *arg)
{
	struct ct_stock_released r = { 0 }; /* empty order_id and no lines break the contract */
	return svc_emit(tx, CT_MSG_STOCK_RELEASED, "x", &r);
}

static shop_status test_emit_foreign(struct svc_tx *tx, void *arg)
{
	struct ct_order_reserved r = { .total_cents = 100 };
	snprintf(r.order_id, sizeof(r.order_id), "0192f0c1-7d2a-7abc-8def-0123456789ab");
	snprintf(r.currency, sizeof(r.currency), "EUR");
	return svc_emit(tx, CT_MSG_ORDER_RESERVED, r.order_id, &r); /* orders' event */
}

static void emitting_another_services_event_is_refused(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(svc_tx_run(f->svc, f->db, NULL, NULL, test_emit_foreign, NULL),
			 SHOP_E_INVALID);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 0);
}

/* OrderPlaced as orders would emit it: VERSION 1 (with the card) or 2. */
static shop_status test_emit_order_placed(struct svc_tx *tx, void *arg)
{
	enum ct_message_id id = *(const int *)arg == 1 ? CT_MSG_ORDER_PLACED
						       : CT_MSG_ORDER_PLACED_V2;
	const struct ct_message *m = &ct_messages[id];
	cJSON *json = cJSON_Parse(order_placed_data);
	if (id == CT_MSG_ORDER_PLACED_V2)
		cJSON_DeleteItemFromObject(json, "payment");
	void *data = xcalloc(1, m->data_size);
	struct ct_errors errs = { 0 };
	assert_int_equal(m->parse(json, data, &errs), SHOP_OK);
	shop_status st = svc_emit(tx, id, "0192f0c1-7d2a-7abc-8def-0123456789ab", data);
	free(data);
	cJSON_Delete(json);
	return st;
}

/* A producer sends only the newest major version of its message: OrderPlaced
 * v1 stays in the index so that stored ones can be read, but orders may not
 * write it (the card token is not to travel on ORDERS again). */
static void emitting_a_superseded_version_is_refused(void **state)
{
	struct fixture *f = *state;
	const struct svc_spec orders = { .name = "orders" };
	struct svc *svc = svc_create_detached(&orders);
	const int v1 = 1, v2 = 2;
	assert_int_equal(svc_tx_run(svc, f->db, NULL, NULL, test_emit_order_placed, (void *)&v1),
			 SHOP_E_INVALID);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 0);
	assert_int_equal(svc_tx_run(svc, f->db, NULL, NULL, test_emit_order_placed, (void *)&v2),
			 SHOP_OK);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 1);
	svc_destroy(svc);
}

static void emitting_data_that_breaks_the_contract_is_refused_and_rolled_back(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(svc_tx_run(f->svc, f->db, NULL, NULL, test_emit_invalid, NULL),
			 SHOP_E_INVALID);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox"), 0);
}

static void purge_drops_old_published_rows_and_old_inbox_records_only(void **state)
{
	struct fixture *f = *state;
	const int64_t now = 1000000000000, keep = 3600000;
	/* published long ago, published recently, never published (and older
	 * than everything: an unpublished row is never purged) */
	const char *rows =
		"INSERT INTO outbox (event_id, subject, payload, created_at_ms, published_at_ms) VALUES "
		"('e-old', 's', '{}', 1, $1), ('e-new', 's', '{}', 1, $2), ('e-unsent', 's', '{}', 0, NULL)";
	assert_int_equal(db_exec(f->db, rows, DB_ARGS(DB_I64(now - keep - 1), DB_I64(now - keep)),
				 NULL),
			 SHOP_OK);
	const char *inbox = "INSERT INTO inbox (consumer, event_id, received_at_ms) VALUES "
			    "('c', 'i-old', $1), ('c', 'i-new', $2)";
	assert_int_equal(db_exec(f->db, inbox,
				 DB_ARGS(DB_I64(now - SVC_INBOX_RETENTION_MS - 1),
					 DB_I64(now - SVC_INBOX_RETENTION_MS)),
				 NULL),
			 SHOP_OK);

	int64_t outbox_purged = -1, inbox_purged = -1;
	assert_int_equal(svc_purge(f->db, now, keep, &outbox_purged, &inbox_purged), SHOP_OK);
	assert_int_equal(outbox_purged, 1);
	assert_int_equal(inbox_purged, 1);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox WHERE event_id = 'e-old'"),
			 0);
	assert_int_equal(
		test_count(f->db,
			   "SELECT COUNT(*) FROM outbox WHERE event_id IN ('e-new', 'e-unsent')"),
		2);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox WHERE event_id = 'i-new'"),
			 1);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM inbox"), 1);
}

/* A published card (SubmitCard, on the confidential CARDS stream) is not
 * kept for the retention period like other rows: the next purge deletes
 * it, however recent. One not yet published stays until it is. */
static void purge_drops_a_confidential_row_once_published_however_recent(void **state)
{
	struct fixture *f = *state;
	const int64_t now = 1000000000000, keep = 3600000;
	const char *card = ct_messages[CT_MSG_SUBMIT_CARD].subject;
	const char *plain = ct_messages[CT_MSG_ORDER_PLACED_V2].subject;
	/* The premise: the index marks CARDS confidential, and only it. */
	for (size_t i = 0; i < ct_n_streams; i++)
		assert_int_equal(ct_streams[i].confidential,
				 strcmp(ct_streams[i].name,
					ct_messages[CT_MSG_SUBMIT_CARD].stream) == 0);
	const char *rows =
		"INSERT INTO outbox (event_id, subject, payload, created_at_ms, published_at_ms) VALUES "
		"('card-sent', $1, '{}', $3, $3), ('card-unsent', $1, '{}', $3, NULL),"
		" ('plain-sent', $2, '{}', $3, $3)";
	assert_int_equal(db_exec(f->db, rows, DB_ARGS(card, plain, DB_I64(now - 1)), NULL),
			 SHOP_OK);

	int64_t outbox_purged = -1;
	assert_int_equal(svc_purge(f->db, now, keep, &outbox_purged, NULL), SHOP_OK);
	assert_int_equal(outbox_purged, 1);
	assert_int_equal(test_count(f->db,
				    "SELECT COUNT(*) FROM outbox WHERE event_id = 'card-sent'"),
			 0);
	assert_int_equal(test_count(f->db, "SELECT COUNT(*) FROM outbox WHERE event_id IN "
					   "('card-unsent', 'plain-sent')"),
			 2);
}

static void settle_table_acks_retries_and_dead_letters(void **state)
{
	assert_int_equal(svc_settle_decide(SHOP_OK, 1), SVC_ACK);
	assert_int_equal(svc_settle_decide(SHOP_E_DUPLICATE, 1), SVC_ACK);
	assert_int_equal(svc_settle_decide(SHOP_E_CONFLICT, 1), SVC_DEAD_LETTER);
	assert_int_equal(svc_settle_decide(SHOP_E_INVALID, 1), SVC_DEAD_LETTER);
	assert_int_equal(svc_settle_decide(SHOP_E_NOT_FOUND, 1), SVC_DEAD_LETTER);
	assert_int_equal(svc_settle_decide(SHOP_E_UNAVAILABLE, 1), SVC_RETRY);
	assert_int_equal(svc_settle_decide(SHOP_E_TIMEOUT, 1), SVC_RETRY);
}

/* Retried failures are given up with deliveries to spare, so that a
 * dead-letter copy that cannot be stored at that moment is tried again on
 * a later delivery instead of being stranded by the server's last one. */
static void retried_failures_are_dead_lettered_before_the_last_delivery(void **state)
{
	assert_true(SVC_GIVE_UP_DELIVERY < BUS_MAX_DELIVER);
	assert_int_equal(svc_settle_decide(SHOP_E_NOT_READY, SVC_GIVE_UP_DELIVERY - 1), SVC_RETRY);
	assert_int_equal(svc_settle_decide(SHOP_E_NOT_READY, SVC_GIVE_UP_DELIVERY),
			 SVC_DEAD_LETTER);
	assert_int_equal(svc_settle_decide(SHOP_E_INTERNAL, SVC_GIVE_UP_DELIVERY), SVC_DEAD_LETTER);
	assert_int_equal(svc_settle_decide(SHOP_E_UNAVAILABLE, BUS_MAX_DELIVER - 1),
			 SVC_DEAD_LETTER);
	/* Each later delivery (a failed copy naks the message) tries again. */
	for (uint64_t d = SVC_GIVE_UP_DELIVERY; d <= BUS_MAX_DELIVER; d++)
		assert_int_equal(svc_settle_decide(SHOP_E_TIMEOUT, d), SVC_DEAD_LETTER);
}

static void retry_delay_doubles_from_the_base_up_to_the_cap(void **state)
{
	assert_int_equal(svc_retry_delay_ms(1), SVC_RETRY_BASE_MS);
	assert_int_equal(svc_retry_delay_ms(2), 2 * SVC_RETRY_BASE_MS);
	assert_int_equal(svc_retry_delay_ms(4), 8 * SVC_RETRY_BASE_MS);
	assert_int_equal(svc_retry_delay_ms(BUS_MAX_DELIVER), SVC_RETRY_MAX_MS);
	assert_int_equal(svc_retry_delay_ms(1000), SVC_RETRY_MAX_MS);
}

static void envelope_round_trips_through_encode_and_parse(void **state)
{
	struct evt_envelope env = { 0 }, back;
	ids_uuid7(env.id);
	snprintf(env.source, sizeof(env.source), "/shop/orders");
	snprintf(env.type, sizeof(env.type), "shop.orders.order_paid.v1");
	clock_rfc3339(clock_now_ms(), env.time);
	snprintf(env.subject, sizeof(env.subject), "subject-1");
	snprintf(env.correlationid, sizeof(env.correlationid), "corr");
	snprintf(env.causationid, sizeof(env.causationid), "cause");
	ids_traceparent_new(env.traceparent);
	cJSON *data = cJSON_Parse("{\"a\":1}");
	char *text = evt_envelope_encode(&env, data);
	cJSON *root = NULL;
	struct ct_errors errs = { 0 };
	assert_int_equal(evt_envelope_parse(text, strlen(text), &root, &back, &errs), SHOP_OK);
	assert_string_equal(back.id, env.id);
	assert_string_equal(back.time, env.time);
	assert_string_equal(back.traceparent, env.traceparent);
	assert_true(cJSON_Compare(back.data, data, true));
	cJSON_Delete(root);
	cJSON_Delete(data);
	free(text);
}

static void envelope_rejects_unknown_attributes_and_reports_every_problem(void **state)
{
	const char *json = "{\"specversion\":\"0.3\",\"id\":\"x\",\"extra\":1,\"data\":[]}";
	cJSON *root = NULL;
	struct evt_envelope env;
	struct ct_errors errs = { 0 };
	assert_int_equal(evt_envelope_parse(json, strlen(json), &root, &env, &errs),
			 SHOP_E_INVALID);
	assert_null(root);
	bool saw_extra = false, saw_spec = false, saw_data = false;
	for (size_t i = 0; i < errs.len; i++) {
		saw_extra |= strcmp(errs.item[i].path, "/extra") == 0;
		saw_spec |= strcmp(errs.item[i].path, "/specversion") == 0;
		saw_data |= strcmp(errs.item[i].path, "/data") == 0;
	}
	assert_true(saw_extra && saw_spec && saw_data);
	assert_true(errs.len + errs.dropped >= 8);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(handled_event_is_claimed_in_the_inbox_and_its_effects_reach_the_outbox),
		T(duplicate_event_is_acked_without_side_effects),
		T(failed_handler_rolls_back_inbox_and_outbox),
		T(a_constraint_the_handler_breaks_is_dead_lettered_not_acked),
		T(a_batch_commits_once_and_a_failing_message_is_undone_alone),
		T(a_batch_without_failures_is_tried_once),
		T(a_batchs_events_are_written_in_emit_order),
		T(a_refused_event_is_charged_to_the_message_that_emitted_it),
		T(concurrent_grouped_transactions_share_commits_and_keep_their_own_outcomes),
		T(the_pool_hands_out_at_most_its_bound_and_makes_the_next_one_wait),
		T(after_commit_runs_after_a_committed_batch_that_handled_a_message),
		T(malformed_envelope_is_invalid_with_a_reason),
		T(data_violating_the_contract_is_invalid_and_names_the_path),
		T(unknown_type_and_unconsumed_messages_are_invalid),
		T(an_event_whose_source_is_not_its_producer_is_invalid_with_the_reason),
		T(a_forged_event_in_a_batch_is_refused_alone),
		T(a_handler_refusal_is_invalid_with_the_handlers_reason),
		T(emitted_event_carries_causation_correlation_and_trace),
		T(emitting_data_that_breaks_the_contract_is_refused_and_rolled_back),
		T(emitting_a_superseded_version_is_refused),
		T(emitting_another_services_event_is_refused),
		T(purge_drops_old_published_rows_and_old_inbox_records_only),
		T(purge_drops_a_confidential_row_once_published_however_recent),
		cmocka_unit_test(settle_table_acks_retries_and_dead_letters),
		cmocka_unit_test(retried_failures_are_dead_lettered_before_the_last_delivery),
		cmocka_unit_test(retry_delay_doubles_from_the_base_up_to_the_cap),
		cmocka_unit_test(envelope_round_trips_through_encode_and_parse),
		cmocka_unit_test(envelope_rejects_unknown_attributes_and_reports_every_problem),
	};
#undef T
	return cmocka_run_group_tests_name("svc", tests, NULL, NULL);
}
