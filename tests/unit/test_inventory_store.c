/* test_inventory_store.c - the inventory's reservations against a real
 * in-process SQLite database: all-or-nothing reserving, unknown SKUs before
 * shortages, releasing exactly once, cancellations that overtake their
 * order, the compensation when stock vanishes between check and take, and
 * the stock invariant after a random mix of operations.
 *
 * tests/component/test_inventory_store_pg.c runs every case on PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define NOW_MS 1700000000000LL

#define TEST_URL_MAX 1024

#include "inventory_harness.h"
#include "service_sqlite_backend.h"

#ifndef TEST_EXTRA_CASES
#define TEST_EXTRA_CASES
#endif

struct fixture {
	char url[TEST_URL_MAX];
	struct db *db;
	struct inventory_result res;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	backend_url(f->url, sizeof(f->url), false);
	if (db_open(f->url, &f->db) != SHOP_OK)
		fail_msg("db_open %s: %s", f->url, db_last_error(NULL));
	if (db_migrate(f->db, inventory_migrations, inventory_n_migrations) != SHOP_OK)
		fail_msg("migrate: %s", db_last_error(f->db));
	inventory_harness_seed(f->db, &f->res);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->db);
	backend_release(f->url);
	free(f);
	return 0;
}

/* Ends the transaction an operation ran in, as the runtime ends a
 * handler's: committed on SHOP_OK, rolled back otherwise. */
static shop_status settle(struct fixture *f, shop_status st)
{
	if (st == SHOP_OK)
		assert_int_equal(db_commit(f->db), SHOP_OK);
	else
		db_rollback(f->db);
	return st;
}

/* One operation in its own transaction. */
static shop_status reserve(struct fixture *f, const char *order_id,
			   const struct inventory_line *lines, size_t n)
{
	assert_int_equal(db_begin(f->db), SHOP_OK);
	return settle(f, inventory_reserve(f->db, NOW_MS, order_id, lines, n, &f->res));
}

static shop_status release(struct fixture *f, const char *order_id, const char *reason)
{
	assert_int_equal(db_begin(f->db), SHOP_OK);
	return settle(f, inventory_release(f->db, NOW_MS + 1, order_id, reason, &f->res));
}

/* reserve() and release() succeed with OUTCOME as their result. */
static void assert_reserved_as(struct fixture *f, const char *order_id,
			       const struct inventory_line *lines, size_t n,
			       enum inventory_outcome outcome)
{
	assert_int_equal(reserve(f, order_id, lines, n), SHOP_OK);
	assert_int_equal(f->res.outcome, outcome);
}

static void assert_released_as(struct fixture *f, const char *order_id, const char *reason,
			       enum inventory_outcome outcome)
{
	assert_int_equal(release(f, order_id, reason), SHOP_OK);
	assert_int_equal(f->res.outcome, outcome);
}

/* The last operation rejected its order for REASON, naming exactly the
 * SKUs FIRST and SECOND, in that (sorted) order. */
static void assert_rejected_naming(struct fixture *f, const char *reason, const char *first,
				   const char *second)
{
	assert_string_equal(f->res.reason, reason);
	assert_int_equal(f->res.n_skus, 2);
	assert_string_equal(f->res.skus[0], first);
	assert_string_equal(f->res.skus[1], second);
}

static struct inventory_product product(struct fixture *f, const char *sku)
{
	return inventory_harness_product(f->db, sku);
}

static int64_t available(struct fixture *f, const char *sku)
{
	return inventory_harness_available(f->db, sku);
}

static enum inventory_status status_of(struct fixture *f, const char *order_id)
{
	return inventory_harness_status(f->db, order_id);
}

static int64_t count(struct fixture *f, const char *sql)
{
	return harness_query_int(f->db, sql, NULL);
}

static void seed_inserts_the_catalogue_once_with_first_revisions(void **state)
{
	struct fixture *f = *state;
	/* setup seeded it: every product came back as a new level. */
	assert_int_equal(f->res.outcome, INVENTORY_OUTCOME_SEEDED);
	assert_int_equal(f->res.n_levels, inventory_catalogue_len);
	assert_true(inventory_catalogue_len >= 6);
	for (size_t i = 0; i < inventory_catalogue_len; i++) {
		struct inventory_product p = product(f, inventory_catalogue[i].sku);
		assert_int_equal(p.available, inventory_catalogue[i].stock);
		assert_int_equal(p.initial_stock, inventory_catalogue[i].stock);
		assert_int_equal(p.revision, 1);
		assert_string_equal(p.currency, "EUR");
	}
	assert_int_equal(available(f, "SKU-VINTAGE"), 0);

	/* A restart seeds nothing and leaves the levels as they are. */
	struct inventory_line l[] = { line("SKU-CABLE", 5) };
	assert_int_equal(reserve(f, "order-1", l, 1), SHOP_OK);
	inventory_harness_seed(f->db, &f->res);
	assert_int_equal(f->res.outcome, INVENTORY_OUTCOME_NOOP);
	assert_int_equal(f->res.n_levels, 0);
	assert_int_equal(available(f, "SKU-CABLE"), 1000000 - 5);
}

static void reserving_takes_every_line_at_catalogue_prices(void **state)
{
	struct fixture *f = *state;
	struct inventory_line l[] = { line("SKU-MOUSE", 2), line("SKU-CABLE", 3),
				      line("SKU-MOUSE", 1) };
	int64_t cable = available(f, "SKU-CABLE"), mouse = available(f, "SKU-MOUSE");

	assert_reserved_as(f, "order-1", l, 3, INVENTORY_OUTCOME_RESERVED);
	assert_int_equal(f->res.n_lines, 2);
	assert_string_equal(f->res.lines[0].sku, "SKU-CABLE");
	assert_int_equal(f->res.lines[0].quantity, 3);
	assert_int_equal(f->res.lines[0].unit_price_cents, 990);
	assert_string_equal(f->res.lines[1].sku, "SKU-MOUSE");
	assert_int_equal(f->res.lines[1].quantity, 3);
	assert_int_equal(f->res.total_cents, 3 * 990 + 3 * 2900);
	assert_string_equal(f->res.currency, "EUR");
	assert_int_equal(f->res.n_levels, 2);
	assert_int_equal(f->res.levels[0].available, cable - 3);
	assert_int_equal(f->res.levels[0].revision, 2);
	assert_int_equal(f->res.levels[1].available, mouse - 3);

	assert_int_equal(available(f, "SKU-CABLE"), cable - 3);
	assert_int_equal(available(f, "SKU-MOUSE"), mouse - 3);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_RESERVED);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM reservation_lines"), 2);
	assert_int_equal(count(f, "SELECT total_cents FROM reservations"), 3 * 990 + 3 * 2900);
	inventory_harness_assert_invariant(f->db);
}

static void reserving_is_all_or_nothing_when_a_later_line_is_short(void **state)
{
	struct fixture *f = *state;
	/* SKU-CABLE sorts first and is plentiful; SKU-VINTAGE has none. */
	struct inventory_line l[] = { line("SKU-VINTAGE", 1), line("SKU-CABLE", 2),
				      line("SKU-LIMITED", 4) };
	struct inventory_product cable = product(f, "SKU-CABLE");

	assert_reserved_as(f, "order-1", l, 3, INVENTORY_OUTCOME_REJECTED);
	assert_rejected_naming(f, INVENTORY_REASON_OUT_OF_STOCK, "SKU-LIMITED", "SKU-VINTAGE");
	assert_int_equal(f->res.n_levels, 0);

	struct inventory_product after = product(f, "SKU-CABLE");
	assert_int_equal(after.available, cable.available);
	assert_int_equal(after.revision, cable.revision);
	assert_int_equal(available(f, "SKU-LIMITED"), 3);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_REJECTED);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM reservation_lines"), 0);
	inventory_harness_assert_invariant(f->db);
}

static void exactly_the_last_units_can_be_reserved_and_then_no_more(void **state)
{
	struct fixture *f = *state;
	struct inventory_line three[] = { line("SKU-LIMITED", 3) };
	struct inventory_line one[] = { line("SKU-LIMITED", 1) };
	assert_reserved_as(f, "order-1", three, 1, INVENTORY_OUTCOME_RESERVED);
	assert_int_equal(available(f, "SKU-LIMITED"), 0);
	assert_reserved_as(f, "order-2", one, 1, INVENTORY_OUTCOME_REJECTED);
	assert_string_equal(f->res.reason, INVENTORY_REASON_OUT_OF_STOCK);
	assert_int_equal(available(f, "SKU-LIMITED"), 0);
	inventory_harness_assert_invariant(f->db);
}

static void unknown_skus_are_rejected_first_without_touching_stock(void **state)
{
	struct fixture *f = *state;
	/* Also short on SKU-VINTAGE: unknown_sku still wins. */
	struct inventory_line l[] = { line("SKU-CABLE", 1), line("SKU-NOPE", 1),
				      line("SKU-VINTAGE", 1), line("SKU-ALSO-NOPE", 2) };
	struct inventory_product cable = product(f, "SKU-CABLE");

	assert_reserved_as(f, "order-1", l, 4, INVENTORY_OUTCOME_REJECTED);
	assert_rejected_naming(f, INVENTORY_REASON_UNKNOWN_SKU, "SKU-ALSO-NOPE", "SKU-NOPE");
	assert_int_equal(product(f, "SKU-CABLE").revision, cable.revision);
	assert_int_equal(available(f, "SKU-CABLE"), cable.available);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_REJECTED);
	inventory_harness_assert_invariant(f->db);
}

static void the_same_order_placed_twice_is_reserved_once(void **state)
{
	struct fixture *f = *state;
	struct inventory_line l[] = { line("SKU-HEADSET", 5) };
	assert_reserved_as(f, "order-1", l, 1, INVENTORY_OUTCOME_RESERVED);
	assert_reserved_as(f, "order-1", l, 1, INVENTORY_OUTCOME_NOOP);
	assert_int_equal(available(f, "SKU-HEADSET"), 60 - 5);
	inventory_harness_assert_invariant(f->db);
}

static void a_rejected_order_placed_again_stays_rejected(void **state)
{
	struct fixture *f = *state;
	struct inventory_line l[] = { line("SKU-LIMITED", 2) };
	struct inventory_line all[] = { line("SKU-LIMITED", 3) };
	assert_int_equal(reserve(f, "order-1", all, 1), SHOP_OK);
	assert_reserved_as(f, "order-2", l, 1, INVENTORY_OUTCOME_REJECTED);
	/* Stock comes back; the second order was decided already. */
	assert_int_equal(release(f, "order-1", "customer_cancelled"), SHOP_OK);
	assert_reserved_as(f, "order-2", l, 1, INVENTORY_OUTCOME_NOOP);
	assert_int_equal(available(f, "SKU-LIMITED"), 3);
	inventory_harness_assert_invariant(f->db);
}

static void a_reservation_is_released_exactly_once(void **state)
{
	struct fixture *f = *state;
	struct inventory_line l[] = { line("SKU-MONITOR", 4), line("SKU-KEYBOARD", 1) };
	struct inventory_product monitor = product(f, "SKU-MONITOR");
	assert_int_equal(reserve(f, "order-1", l, 2), SHOP_OK);
	assert_int_equal(available(f, "SKU-MONITOR"), 36);

	assert_released_as(f, "order-1", "customer_cancelled", INVENTORY_OUTCOME_RELEASED);
	assert_int_equal(f->res.n_lines, 2);
	assert_string_equal(f->res.lines[0].sku, "SKU-KEYBOARD");
	assert_string_equal(f->res.lines[1].sku, "SKU-MONITOR");
	assert_int_equal(f->res.lines[1].quantity, 4);
	assert_int_equal(f->res.n_levels, 2);
	assert_int_equal(f->res.levels[1].available, 40);
	assert_int_equal(f->res.levels[1].revision, monitor.revision + 2);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_RELEASED);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM reservations WHERE reason = "
				  "'customer_cancelled'"),
			 1);

	/* A second cancellation, or a decline after it, gives nothing back. */
	assert_released_as(f, "order-1", "customer_cancelled", INVENTORY_OUTCOME_NOOP);
	assert_released_as(f, "order-1", "payment_declined", INVENTORY_OUTCOME_NOOP);
	assert_int_equal(available(f, "SKU-MONITOR"), 40);
	assert_int_equal(product(f, "SKU-MONITOR").revision, monitor.revision + 2);
	inventory_harness_assert_invariant(f->db);
}

static void a_cancellation_before_the_order_makes_it_reserve_nothing(void **state)
{
	struct fixture *f = *state;
	struct inventory_line l[] = { line("SKU-LIMITED", 1) };
	assert_released_as(f, "order-1", "timeout", INVENTORY_OUTCOME_TOMBSTONED);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_CANCELLED_BEFORE_PLACED);

	assert_reserved_as(f, "order-1", l, 1, INVENTORY_OUTCOME_NOOP);
	assert_int_equal(available(f, "SKU-LIMITED"), 3);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_CANCELLED_BEFORE_PLACED);

	/* And the tombstone itself is not released twice either. */
	assert_released_as(f, "order-1", "timeout", INVENTORY_OUTCOME_NOOP);
	inventory_harness_assert_invariant(f->db);
}

static void cancelling_a_rejected_order_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct inventory_line l[] = { line("SKU-VINTAGE", 1) };
	assert_reserved_as(f, "order-1", l, 1, INVENTORY_OUTCOME_REJECTED);
	assert_released_as(f, "order-1", "out_of_stock", INVENTORY_OUTCOME_NOOP);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_REJECTED);
	inventory_harness_assert_invariant(f->db);
}

static void stock_taken_between_check_and_update_rejects_and_gives_back(void **state)
{
	struct fixture *f = *state;
	/* Stand-in for another replica: the moment this order takes its
	 * SKU-CABLE, every SKU-MOUSE is taken, after the availability check
	 * passed. The conditional UPDATE must miss and the cable come back. */
	if (db_backend_of(f->db) == DB_SQLITE) {
		assert_int_equal(
			db_exec(f->db,
				"CREATE TRIGGER steal AFTER UPDATE OF available ON products "
				"WHEN NEW.sku = 'SKU-CABLE' AND NEW.available < OLD.available "
				"BEGIN UPDATE products SET available = 0 "
				"WHERE sku = 'SKU-MOUSE'; END",
				DB_NOARGS, NULL),
			SHOP_OK);
	} else {
		assert_int_equal(
			db_exec(f->db,
				"CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql AS "
				"$body$ BEGIN UPDATE products SET available = 0 "
				"WHERE sku = 'SKU-MOUSE'; RETURN NULL; END $body$",
				DB_NOARGS, NULL),
			SHOP_OK);
		assert_int_equal(db_exec(f->db,
					 "CREATE TRIGGER steal AFTER UPDATE OF available ON products "
					 "FOR EACH ROW WHEN (NEW.sku = 'SKU-CABLE' AND "
					 "NEW.available < OLD.available) EXECUTE FUNCTION steal()",
					 DB_NOARGS, NULL),
				 SHOP_OK);
	}
	struct inventory_line l[] = { line("SKU-MOUSE", 1), line("SKU-CABLE", 2) };
	int64_t cable = available(f, "SKU-CABLE");

	assert_reserved_as(f, "order-1", l, 2, INVENTORY_OUTCOME_REJECTED);
	assert_string_equal(f->res.reason, INVENTORY_REASON_OUT_OF_STOCK);
	assert_int_equal(f->res.n_skus, 1);
	assert_string_equal(f->res.skus[0], "SKU-MOUSE");
	assert_int_equal(f->res.n_levels, 0);
	assert_int_equal(available(f, "SKU-CABLE"), cable);
	assert_int_equal(available(f, "SKU-MOUSE"), 0);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_REJECTED);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM reservations WHERE reason = "
				  "'out_of_stock'"),
			 1);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM reservation_lines"), 0);
}

static void invalid_lines_are_refused_and_change_nothing(void **state)
{
	struct fixture *f = *state;
	struct inventory_line zero[] = { line("SKU-CABLE", 0) };
	assert_int_equal(reserve(f, "order-1", zero, 1), SHOP_E_INVALID);
	assert_int_equal(reserve(f, "order-1", NULL, 0), SHOP_E_INVALID);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_NONE);
}

static void the_largest_order_is_reserved_though_its_total_exceeds_any_unit_price(void **state)
{
	struct fixture *f = *state;
	/* 50 full lines of keyboards: 50000 * 89.00 EUR = 4 450 000 EUR, more
	 * than a unit price may be but a total any event can carry. */
	struct inventory_line l[INVENTORY_LINES_MAX];
	for (size_t i = 0; i < INVENTORY_LINES_MAX; i++)
		l[i] = line("SKU-KEYBOARD", INVENTORY_LINE_QUANTITY_MAX);
	int64_t keyboard = available(f, "SKU-KEYBOARD");
	const int64_t units = INVENTORY_LINES_MAX * INVENTORY_LINE_QUANTITY_MAX;

	assert_reserved_as(f, "order-1", l, INVENTORY_LINES_MAX, INVENTORY_OUTCOME_RESERVED);
	assert_int_equal(f->res.n_lines, 1);
	assert_int_equal(f->res.lines[0].quantity, units);
	assert_int_equal(f->res.lines[0].unit_price_cents, 8900);
	assert_int_equal(f->res.total_cents, 445000000LL);
	assert_int_equal(available(f, "SKU-KEYBOARD"), keyboard - units);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_RESERVED);
	assert_int_equal(count(f, "SELECT total_cents FROM reservations"), 445000000LL);
	inventory_harness_assert_invariant(f->db);
}

static void a_price_beyond_the_contract_makes_a_total_too_large_and_holds_nothing(void **state)
{
	struct fixture *f = *state;
	/* No valid order at valid prices reaches INVENTORY_TOTAL_MAX_CENTS; a
	 * price above the contract's ceiling (2 000 000 EUR, written by hand:
	 * StockLevelChanged could not announce it) makes 50000 mice do. */
	assert_int_equal(db_begin(f->db), SHOP_OK);
	assert_int_equal(
		db_exec(f->db,
			"UPDATE products SET price_cents = 200000000 WHERE sku = 'SKU-MOUSE'",
			DB_NOARGS, NULL),
		SHOP_OK);
	assert_int_equal(db_commit(f->db), SHOP_OK);
	struct inventory_line l[INVENTORY_LINES_MAX];
	for (size_t i = 0; i < INVENTORY_LINES_MAX; i++)
		l[i] = line("SKU-MOUSE", INVENTORY_LINE_QUANTITY_MAX);
	int64_t mouse = available(f, "SKU-MOUSE");
	assert_int_equal(reserve(f, "order-1", l, INVENTORY_LINES_MAX), SHOP_E_LIMIT);
	assert_int_equal(available(f, "SKU-MOUSE"), mouse);
	assert_int_equal(status_of(f, "order-1"), INVENTORY_STATUS_NONE);
}

static void a_store_product_lookup_of_an_unknown_sku_is_not_found(void **state)
{
	struct fixture *f = *state;
	struct inventory_product p;
	assert_int_equal(inventory_store_product_get(f->db, "SKU-NOPE", &p), SHOP_E_NOT_FOUND);
}

static void the_database_itself_refuses_negative_stock(void **state)
{
	struct fixture *f = *state;
	/* The CHECK behind the conditional UPDATE: a path that forgot the
	 * condition would fail rather than oversell. */
	assert_int_equal(db_begin(f->db), SHOP_OK);
	assert_int_not_equal(db_exec(f->db,
				     "UPDATE products SET available = available - 1 "
				     "WHERE sku = 'SKU-VINTAGE'",
				     DB_NOARGS, NULL),
			     SHOP_OK);
	db_rollback(f->db);
	assert_int_equal(available(f, "SKU-VINTAGE"), 0);
}

/* A small deterministic generator, so a failure reproduces. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define RANDOM_OPS 500
#define RANDOM_ORDERS 120

static void the_invariant_holds_after_a_random_mix_of_operations(void **state)
{
	struct fixture *f = *state;
	/* Mostly the scarce products, so shortages and releases happen often. */
	static const char *const skus[] = { "SKU-LIMITED", "SKU-HEADSET", "SKU-MONITOR",
					    "SKU-VINTAGE", "SKU-CABLE",   "SKU-UNKNOWN" };
	static const char *const reasons[] = { "customer_cancelled", "payment_declined",
					       "timeout" };
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	int reserved = 0, rejected = 0, released = 0, tombstoned = 0;

	for (int op = 0; op < RANDOM_OPS; op++) {
		char order_id[32];
		snprintf(order_id, sizeof(order_id), "order-%d",
			 (int)(rng_next(&seed) % RANDOM_ORDERS));
		if (rng_next(&seed) % 3 != 0) {
			struct inventory_line l[4];
			size_t n = 1 + rng_next(&seed) % 4;
			for (size_t i = 0; i < n; i++)
				l[i] = line(skus[rng_next(&seed) % 6], 1 + rng_next(&seed) % 12);
			assert_int_equal(reserve(f, order_id, l, n), SHOP_OK);
			reserved += f->res.outcome == INVENTORY_OUTCOME_RESERVED;
			rejected += f->res.outcome == INVENTORY_OUTCOME_REJECTED;
		} else {
			assert_int_equal(release(f, order_id, reasons[rng_next(&seed) % 3]),
					 SHOP_OK);
			released += f->res.outcome == INVENTORY_OUTCOME_RELEASED;
			tombstoned += f->res.outcome == INVENTORY_OUTCOME_TOMBSTONED;
		}
		inventory_harness_assert_invariant(f->db);
	}
	/* The mix really exercised every path. */
	assert_true(reserved > 0);
	assert_true(rejected > 0);
	assert_true(released > 0);
	assert_true(tombstoned > 0);
	/* Every order decided at most once: one row per order id. */
	assert_true(count(f, "SELECT COUNT(*) FROM reservations") <= RANDOM_ORDERS);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(seed_inserts_the_catalogue_once_with_first_revisions),
		T(reserving_takes_every_line_at_catalogue_prices),
		T(reserving_is_all_or_nothing_when_a_later_line_is_short),
		T(exactly_the_last_units_can_be_reserved_and_then_no_more),
		T(unknown_skus_are_rejected_first_without_touching_stock),
		T(the_same_order_placed_twice_is_reserved_once),
		T(a_rejected_order_placed_again_stays_rejected),
		T(a_reservation_is_released_exactly_once),
		T(a_cancellation_before_the_order_makes_it_reserve_nothing),
		T(cancelling_a_rejected_order_changes_nothing),
		T(stock_taken_between_check_and_update_rejects_and_gives_back),
		T(invalid_lines_are_refused_and_change_nothing),
		T(the_largest_order_is_reserved_though_its_total_exceeds_any_unit_price),
		T(a_price_beyond_the_contract_makes_a_total_too_large_and_holds_nothing),
		T(a_store_product_lookup_of_an_unknown_sku_is_not_found),
		T(the_database_itself_refuses_negative_stock),
		T(the_invariant_holds_after_a_random_mix_of_operations),
		TEST_EXTRA_CASES
	};
#undef T
	return cmocka_run_group_tests(tests, backend_group_setup, backend_group_teardown);
}
