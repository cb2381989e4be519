/*
 * inventory.h - the inventory service's internals: its catalogue, its SQL
 * (inventory_store.c), the reservation operations that combine decisions
 * with SQL (inventory_ops.c) and the message handlers that turn contract
 * messages into those operations and their results into events
 * (inventory_handlers.c).
 *
 * The operations run inside the caller's transaction and report what
 * happened in a result struct instead of emitting, so they are tested
 * against a plain database; the handlers are the only code that emits.
 * A failing operation leaves the transaction to be rolled back by the
 * caller (the runtime does so for any status but SHOP_OK).
 */
#ifndef SHOP_INVENTORY_H
#define SHOP_INVENTORY_H

#include "core/status.h"
#include "db/db.h"
#include "inventory_domain.h"
#include "svc/svc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embedded from services/inventory/migrations/ by the build. */
extern const struct db_migration inventory_migrations[];
extern const size_t inventory_n_migrations;

/* ---- catalogue (inventory_catalogue.c) ---- */

#define INVENTORY_CATALOGUE_MAX 32 /* products the seed may hold */

struct inventory_seed_product {
	const char *sku;
	const char *name;
	int64_t price_cents;
	const char *currency;
	int64_t stock;
};

extern const struct inventory_seed_product inventory_catalogue[];
extern const size_t inventory_catalogue_len;

/* ---- store (inventory_store.c) ---- */

struct inventory_product {
	char sku[INVENTORY_SKU_MAX + 1];
	char name[INVENTORY_NAME_MAX + 1];
	int64_t price_cents;
	char currency[INVENTORY_CURRENCY_MAX + 1];
	int64_t available;
	int64_t initial_stock;
	int64_t revision;
};

/* SHOP_E_NOT_FOUND when the SKU does not exist. */
shop_status inventory_store_product_get(struct db *db, const char *sku,
					struct inventory_product *ret_product);
/* Inserts a product with available = initial_stock = stock and revision 1,
 * unless the SKU exists (then *ret_inserted is false and nothing changes). */
shop_status inventory_store_product_insert(struct db *db, const struct inventory_seed_product *p,
					   bool *ret_inserted);
/* Takes QUANTITY units if that many are available, in one conditional
 * UPDATE (the statement that makes overselling impossible). *ret_taken says
 * whether it did; ret_product receives the new level only when it did. */
shop_status inventory_store_stock_take(struct db *db, const char *sku, int64_t quantity,
				       bool *ret_taken, struct inventory_product *ret_product);
/* Gives QUANTITY units back. SHOP_E_INTERNAL if the SKU has vanished. */
shop_status inventory_store_stock_give(struct db *db, const char *sku, int64_t quantity,
				       struct inventory_product *ret_product);

/* INVENTORY_STATUS_NONE when the order has no reservation row. */
shop_status inventory_store_reservation_status(struct db *db, const char *order_id,
					       enum inventory_status *ret_status);
/* Inserts the order's reservation row unless one exists (ON CONFLICT DO
 * NOTHING: on PostgreSQL a concurrent insert of the same order waits for the
 * other transaction and then finds its row). reason and currency may be NULL. */
shop_status inventory_store_reservation_insert(struct db *db, const char *order_id,
					       enum inventory_status status, const char *reason,
					       int64_t total_cents, const char *currency,
					       int64_t now_ms, bool *ret_inserted);
/* Moves the reservation from FROM to TO (and sets reason when not NULL);
 * *ret_changed is false when it was not in FROM, e.g. another replica got
 * there first. */
shop_status inventory_store_reservation_transition(struct db *db, const char *order_id,
						   enum inventory_status from,
						   enum inventory_status to, const char *reason,
						   int64_t now_ms, bool *ret_changed);
shop_status inventory_store_line_insert(struct db *db, const char *order_id,
					const struct inventory_priced_line *line);
/* The reservation's lines in SKU order; out has room for INVENTORY_LINES_MAX. */
shop_status inventory_store_lines_get(struct db *db, const char *order_id,
				      struct inventory_priced_line *out, size_t *ret_n);
/* A consumed batch's statements (inventory_batch.c), each one round trip
 * with a JSON array as its parameter. products_lock reads the products
 * SKUS_JSON names, sorted by byte order and, on PostgreSQL, locked until
 * the commit (*ret_products is malloc'd); reservations_known calls EACH for
 * every order of IDS_JSON that has a reservation row; the others write
 * rows of objects with the columns' names (reservations with `now_ms` for
 * both times) and report how many rows they inserted or updated. */
shop_status inventory_store_products_lock(struct db *db, const char *skus_json,
					  struct inventory_product **ret_products, size_t *ret_n);
shop_status inventory_store_reservations_known(struct db *db, const char *ids_json,
					       shop_status (*each)(void *arg, const char *order_id),
					       void *arg);
shop_status inventory_store_reservations_insert_json(struct db *db, const char *rows_json,
						     int64_t *ret_inserted);
shop_status inventory_store_lines_insert_json(struct db *db, const char *rows_json);
shop_status inventory_store_products_set_json(struct db *db, const char *rows_json,
					      int64_t *ret_updated);

/* Counts products that break initial_stock = available + held quantities. */
shop_status inventory_store_audit(struct db *db, int64_t *ret_violations);

/* ---- operations (inventory_ops.c) ---- */

enum inventory_outcome {
	INVENTORY_OUTCOME_NOOP,       /* nothing changed: already decided or stale */
	INVENTORY_OUTCOME_RESERVED,   /* StockReserved + StockLevelChanged per line */
	INVENTORY_OUTCOME_REJECTED,   /* StockRejected */
	INVENTORY_OUTCOME_RELEASED,   /* StockReleased + StockLevelChanged per line */
	INVENTORY_OUTCOME_TOMBSTONED, /* cancelled before placed: nothing to emit */
	INVENTORY_OUTCOME_SEEDED,     /* StockLevelChanged per new product */
};

struct inventory_result {
	enum inventory_outcome outcome;
	char reason[INVENTORY_REASON_MAX + 1];                 /* REJECTED */
	char skus[INVENTORY_LINES_MAX][INVENTORY_SKU_MAX + 1]; /* REJECTED: the SKUs at fault */
	size_t n_skus;
	struct inventory_priced_line lines[INVENTORY_LINES_MAX]; /* RESERVED, RELEASED */
	size_t n_lines;
	int64_t total_cents; /* RESERVED, RELEASED */
	char currency[INVENTORY_CURRENCY_MAX + 1];
	/* New levels of the products touched (RESERVED, RELEASED, SEEDED). */
	struct inventory_product levels[INVENTORY_CATALOGUE_MAX > INVENTORY_LINES_MAX
						? INVENTORY_CATALOGUE_MAX
						: INVENTORY_LINES_MAX];
	size_t n_levels;
};

/*
 * Where reserving reads products and writes its decision: the database,
 * statement by statement (inventory_stock_db, ctx the struct db), or a
 * consumed batch's locked copy of its products, written once when the
 * batch ends (inventory_batch.c, ctx the struct inventory_batch). Each
 * function means what the store function of the same name does.
 */
struct inventory_stock_ops {
	shop_status (*product_get)(void *ctx, const char *sku, struct inventory_product *ret);
	shop_status (*reservation_insert)(void *ctx, const char *order_id,
					  enum inventory_status status, const char *reason,
					  int64_t total_cents, const char *currency, int64_t now_ms,
					  bool *ret_inserted);
	shop_status (*reservation_transition)(void *ctx, const char *order_id,
					      enum inventory_status from, enum inventory_status to,
					      const char *reason, int64_t now_ms,
					      bool *ret_changed);
	shop_status (*stock_take)(void *ctx, const char *sku, int64_t quantity, bool *ret_taken,
				  struct inventory_product *ret_product);
	shop_status (*stock_give)(void *ctx, const char *sku, int64_t quantity,
				  struct inventory_product *ret_product);
	shop_status (*line_insert)(void *ctx, const char *order_id,
				   const struct inventory_priced_line *line);
};

extern const struct inventory_stock_ops inventory_stock_db;

/* OrderPlaced: reserves every line or none. Unknown SKUs are rejected
 * before stock is looked at; then shortages. SHOP_E_INVALID for lines that
 * break the rules of inventory_lines_normalize or mix currencies. */
shop_status inventory_reserve(struct db *db, int64_t now_ms, const char *order_id,
			      const struct inventory_line *lines, size_t n_lines,
			      struct inventory_result *ret_result);
/* inventory_reserve on OPS and CTX (see struct inventory_stock_ops). */
shop_status inventory_reserve_on(const struct inventory_stock_ops *ops, void *ctx, int64_t now_ms,
				 const char *order_id, const struct inventory_line *lines,
				 size_t n_lines, struct inventory_result *ret_result);
/* OrderCancelled / PaymentDeclined: releases a held reservation exactly
 * once, or leaves a tombstone if the order has not been seen yet. */
shop_status inventory_release(struct db *db, int64_t now_ms, const char *order_id,
			      const char *reason, struct inventory_result *ret_result);
/* Inserts the catalogue's missing products; the levels are the new ones. */
shop_status inventory_seed(struct db *db, const struct inventory_seed_product *catalogue, size_t n,
			   struct inventory_result *ret_result);

/* ---- a consumed batch's orders decided together (inventory_batch.c) ---- */

/*
 * The runtime's batch hooks (struct svc_batch_hooks) for the durable that
 * receives OrderPlaced: when a batch holds OrderPlaced messages, begin locks
 * every product they name (in SKU order, FOR UPDATE on PostgreSQL) and reads
 * which of their orders already have a reservation, with two statements;
 * each OrderPlaced is then decided on that copy (inventory_reserve_on with
 * inventory_batch_stock), and end writes the reservations, their lines and
 * the new levels with three statements, instead of four or more statements
 * per order. A release in the same batch writes what is pending first
 * (inventory_batch_flush), releases in the database, and tells the copy the
 * new levels (inventory_batch_note_release). The handlers do not announce
 * a level a batch changed: they record it (inventory_batch_level_changed),
 * and end emits one StockLevelChanged per product the batch changed, with
 * its latest level, instead of one per reservation and release.
 */
extern const struct svc_batch_hooks inventory_batch_hooks;
extern const struct inventory_stock_ops inventory_batch_stock;

struct inventory_batch;
/* inventory_reserve on the batch's copy. */
shop_status inventory_batch_reserve(struct inventory_batch *batch, int64_t now_ms,
				    const char *order_id, const struct inventory_line *lines,
				    size_t n_lines, struct inventory_result *ret_result);
/* Writes what the batch has decided so far (end does the same). */
shop_status inventory_batch_flush(struct inventory_batch *batch);
/* After inventory_release on ORDER_ID: the order now has a reservation row,
 * and the levels RES carries are the products' new ones. */
shop_status inventory_batch_note_release(struct inventory_batch *batch, const char *order_id,
					 const struct inventory_result *res);
/* Records that the message CAUSE changed SKU's level, for end to announce
 * once. Returns false when SKU is not in the batch's copy (a release of
 * products no OrderPlaced of the batch names): the caller announces it. */
bool inventory_batch_level_changed(struct inventory_batch *batch, const char *sku,
				   const struct evt_envelope *cause);
/* For tests: orders decided on a batch's copy since the process started. */
uint64_t inventory_batch_orders_decided(void);

/* ---- handlers (inventory_handlers.c) ---- */

/* OrderPlaced, OrderCancelled and PaymentDeclined, for the spec in main.c. */
extern const struct svc_route inventory_routes[];
extern const size_t inventory_n_routes;

shop_status inventory_handle_order_placed(struct svc_tx *tx, const void *data);
shop_status inventory_handle_order_cancelled(struct svc_tx *tx, const void *data);
shop_status inventory_handle_payment_declined(struct svc_tx *tx, const void *data);
/* The spec's init hook: seeds the catalogue, emitting one StockLevelChanged
 * per product the first time it is inserted. */
shop_status inventory_init(struct svc_tx *tx);
/* Emits P's StockLevelChanged inside TX (its subject is the SKU). */
shop_status inventory_emit_level(struct svc_tx *tx, const struct inventory_product *p);

#endif
