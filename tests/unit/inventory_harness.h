/*
 * inventory_harness.h - what the inventory suites share: order lines, the
 * service's spec as main.c wires it, its init hook as a transaction body,
 * seeding the catalogue, and the stock invariant every case ends with.
 *
 * Included after <cmocka.h> by tests/unit/test_inventory_*.c and
 * tests/component/test_inventory_concurrency.c. line() keeps its short name:
 * cases build arrays of lines inline.
 */
#ifndef SHOP_TESTS_INVENTORY_HARNESS_H
#define SHOP_TESTS_INVENTORY_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../services/inventory/inventory.h"
#include "service_harness.h"

static inline struct inventory_line line(const char *sku, int64_t quantity)
{
	struct inventory_line l;
	memset(&l, 0, sizeof(l));
	snprintf(l.sku, sizeof(l.sku), "%s", sku);
	l.quantity = quantity;
	return l;
}

/* The spec main.c wires (filled in at run time: the counts are extern). */
static inline void inventory_harness_spec_fill(struct svc_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->name = "inventory";
	spec->default_db_url = "sqlite::memory:";
	spec->migrations = inventory_migrations;
	spec->n_migrations = inventory_n_migrations;
	spec->routes = inventory_routes;
	spec->n_routes = inventory_n_routes;
	spec->init = inventory_init;
	spec->batch = &inventory_batch_hooks;
}

/* The init hook as svc_tx_run runs it at start-up. */
static inline shop_status inventory_harness_run_init(struct svc_tx *tx, void *arg)
{
	(void)arg;
	return inventory_init(tx);
}

/* Seeds the whole catalogue in one transaction; RES says what happened. */
static inline void inventory_harness_seed(struct db *db, struct inventory_result *res)
{
	assert_int_equal(db_begin(db), SHOP_OK);
	assert_int_equal(inventory_seed(db, inventory_catalogue, inventory_catalogue_len, res),
			 SHOP_OK);
	assert_int_equal(db_commit(db), SHOP_OK);
}

static inline struct inventory_product inventory_harness_product(struct db *db, const char *sku)
{
	struct inventory_product p;
	assert_int_equal(inventory_store_product_get(db, sku, &p), SHOP_OK);
	return p;
}

static inline int64_t inventory_harness_available(struct db *db, const char *sku)
{
	return inventory_harness_product(db, sku).available;
}

/* The reservation status of ORDER_ID (INVENTORY_STATUS_NONE if unseen). */
static inline enum inventory_status inventory_harness_status(struct db *db, const char *order_id)
{
	enum inventory_status s;
	assert_int_equal(inventory_store_reservation_status(db, order_id, &s), SHOP_OK);
	return s;
}

/* The audit finds nothing and no product has gone below zero. */
static inline void inventory_harness_assert_invariant(struct db *db)
{
	int64_t violations = -1;
	assert_int_equal(inventory_store_audit(db, &violations), SHOP_OK);
	assert_int_equal(violations, 0);
	assert_int_equal(harness_query_int(db, "SELECT COUNT(*) FROM products WHERE available < 0",
					   NULL),
			 0);
}

#endif
