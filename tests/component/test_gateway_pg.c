/*
 * test_gateway_pg.c - the gateway's cases on a real PostgreSQL server, with
 * the race SQLite cannot run: two POSTs of one Idempotency-Key at once.
 *
 * Every case of tests/unit/test_gateway.c runs here unchanged
 * (service_pg_backend.h supplies the databases). For the race, the gate
 * below holds a lock on idempotency_keys that lets reads through and makes
 * writes wait, and opens it only once both requests wait on it: so both
 * are inside their transactions, at their first write to the table, at
 * once. When the check was a SELECT before the INSERT, both SELECTs found
 * nothing there and the second INSERT failed on the key (a 500); claiming
 * the key with INSERT ... ON CONFLICT DO NOTHING makes the second wait for
 * the first, find the key taken and replay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "service_pg_backend.h"

#define GATEWAY_TEST_GATE 1
#define GATE_WAIT_MS 10000 /* both requests reach the lock long before this */
#define GATE_POLL_MS 10

struct fixture;
static void gate_close(struct fixture *f);
static void gate_open(struct fixture *f, int waiting);

#include "../unit/test_gateway.c"

static struct db *gate_db; /* holds the lock between gate_close and gate_open */

static void gate_close(struct fixture *f)
{
	assert_int_equal(db_open(f->url, &gate_db), SHOP_OK);
	assert_int_equal(db_begin(gate_db), SHOP_OK);
	/* SHARE ROW EXCLUSIVE: SELECTs pass, INSERTs wait. */
	assert_int_equal(db_exec(gate_db, "LOCK TABLE idempotency_keys IN SHARE ROW EXCLUSIVE MODE",
				 DB_NOARGS, NULL),
			 SHOP_OK);
}

static void gate_open(struct fixture *f, int waiting)
{
	int64_t deadline = clock_mono_ms() + GATE_WAIT_MS;
	int64_t n = 0;
	while ((n = harness_query_int(f->db,
				      "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND "
				      "relation = 'idempotency_keys'::regclass",
				      NULL)) < waiting &&
	       clock_mono_ms() < deadline)
		clock_sleep_ms(GATE_POLL_MS);
	assert_int_equal(db_commit(gate_db), SHOP_OK);
	db_close(gate_db);
	gate_db = NULL;
	assert_int_equal(n, waiting);
}
