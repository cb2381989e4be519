/*
 * inventory_ops.c - reserving, releasing and seeding: the domain's decisions
 * carried out with the store's SQL, inside the caller's transaction.
 *
 * Reserving is all or nothing. The lines are normalised (merged, sorted by
 * SKU), every product is read, and the order is rejected with unknown_sku if
 * any SKU does not exist, then with out_of_stock (listing every short SKU)
 * if the levels read are too low; neither touches stock. Only then is the
 * reservation row written and stock taken, line by line in SKU order, each
 * with the conditional UPDATE. Between the read and the UPDATE another
 * replica may have taken the stock; a miss there gives back what this order
 * already took, in the same transaction, and turns the reservation into a
 * rejection, so a committed transaction never holds part of an order.
 *
 * The reservation row is written before any stock is taken and with ON
 * CONFLICT DO NOTHING: if another transaction decided this order first (a
 * second replica, or a cancellation that overtook OrderPlaced) the insert
 * finds its row and this one does nothing. That, plus the status guard on
 * release, is what makes "reserved once, released at most once" hold with
 * several replicas and redeliveries.
 *
 * Reserving reads and writes through struct inventory_stock_ops: here the
 * database, statement by statement; in a consumed batch the batch's locked
 * copy of its products (inventory_batch.c). The decisions are this file's
 * either way.
 */
#include "inventory.h"

#include "core/text.h"

#include <string.h>

static void result_reset(struct inventory_result *r, enum inventory_outcome outcome)
{
	memset(r, 0, sizeof(*r));
	r->outcome = outcome;
}

/* ---- the database as struct inventory_stock_ops ---- */

static shop_status db_product_get(void *ctx, const char *sku, struct inventory_product *ret)
{
	return inventory_store_product_get(ctx, sku, ret);
}

static shop_status db_reservation_insert(void *ctx, const char *order_id,
					 enum inventory_status status, const char *reason,
					 int64_t total_cents, const char *currency, int64_t now_ms,
					 bool *ret_inserted)
{
	return inventory_store_reservation_insert(ctx, order_id, status, reason, total_cents,
						  currency, now_ms, ret_inserted);
}

static shop_status db_reservation_transition(void *ctx, const char *order_id,
					     enum inventory_status from, enum inventory_status to,
					     const char *reason, int64_t now_ms, bool *ret_changed)
{
	return inventory_store_reservation_transition(ctx, order_id, from, to, reason, now_ms,
						      ret_changed);
}

static shop_status db_stock_take(void *ctx, const char *sku, int64_t quantity, bool *ret_taken,
				 struct inventory_product *ret_product)
{
	return inventory_store_stock_take(ctx, sku, quantity, ret_taken, ret_product);
}

static shop_status db_stock_give(void *ctx, const char *sku, int64_t quantity,
				 struct inventory_product *ret_product)
{
	return inventory_store_stock_give(ctx, sku, quantity, ret_product);
}

static shop_status db_line_insert(void *ctx, const char *order_id,
				  const struct inventory_priced_line *line)
{
	return inventory_store_line_insert(ctx, order_id, line);
}

const struct inventory_stock_ops inventory_stock_db = {
	.product_get = db_product_get,
	.reservation_insert = db_reservation_insert,
	.reservation_transition = db_reservation_transition,
	.stock_take = db_stock_take,
	.stock_give = db_stock_give,
	.line_insert = db_line_insert,
};

/* ---- reserving ---- */

/* Records a rejection decided before any stock was taken. */
static shop_status reject(const struct inventory_stock_ops *ops, void *ctx, int64_t now_ms,
			  const char *order_id, const char *reason, struct inventory_result *res)
{
	bool inserted = false;
	shop_status st = ops->reservation_insert(ctx, order_id, INVENTORY_STATUS_REJECTED, reason,
						 0, NULL, now_ms, &inserted);
	if (st != SHOP_OK)
		return st;
	if (!inserted) {
		result_reset(res, INVENTORY_OUTCOME_NOOP);
		return SHOP_OK;
	}
	res->outcome = INVENTORY_OUTCOME_REJECTED;
	return TEXT_COPY(res->reason, reason) ? SHOP_OK : SHOP_E_LIMIT;
}

static void add_sku(struct inventory_result *res, const char *sku)
{
	/* Lines are at most INVENTORY_LINES_MAX, and skus has that many slots;
	 * both strings are at most INVENTORY_SKU_MAX. */
	if (res->n_skus < INVENTORY_LINES_MAX &&
	    text_copy(res->skus[res->n_skus], sizeof(res->skus[0]), sku))
		res->n_skus++;
}

/* Takes stock for every line or, on the first miss, gives back what was
 * taken. *ret_missed is the index of the line that missed, or n when all
 * were taken (levels then hold the new level of each line). */
static shop_status take_all(const struct inventory_stock_ops *ops, void *ctx,
			    const struct inventory_priced_line *lines, size_t n,
			    struct inventory_product *levels, size_t *ret_missed)
{
	shop_status st = SHOP_OK;
	size_t i;
	for (i = 0; i < n; i++) {
		bool taken = false;
		st = ops->stock_take(ctx, lines[i].sku, lines[i].quantity, &taken, &levels[i]);
		if (st != SHOP_OK)
			return st;
		if (!taken)
			break;
	}
	/* Compensate in the same order the stock was taken: these rows are
	 * already locked by this transaction, so no new lock is waited for. The
	 * revision still grows (it never goes back), but the level is what it
	 * was, so no StockLevelChanged is owed for it. */
	if (i < n) {
		for (size_t j = 0; j < i; j++) {
			st = ops->stock_give(ctx, lines[j].sku, lines[j].quantity, NULL);
			if (st != SHOP_OK)
				return st;
		}
	}
	*ret_missed = i;
	return SHOP_OK;
}

shop_status inventory_reserve(struct db *db, int64_t now_ms, const char *order_id,
			      const struct inventory_line *lines, size_t n_lines,
			      struct inventory_result *ret_result)
{
	return inventory_reserve_on(&inventory_stock_db, db, now_ms, order_id, lines, n_lines,
				    ret_result);
}

shop_status inventory_reserve_on(const struct inventory_stock_ops *ops, void *ctx, int64_t now_ms,
				 const char *order_id, const struct inventory_line *lines,
				 size_t n_lines, struct inventory_result *ret_result)
{
	struct inventory_line merged[INVENTORY_LINES_MAX];
	struct inventory_product products[INVENTORY_LINES_MAX];
	size_t n = 0;
	struct inventory_result *res = ret_result;
	shop_status st;

	/* The result is scratch space until the end: callers only read it when
	 * SHOP_OK is returned, and the transaction is rolled back otherwise. */
	result_reset(res, INVENTORY_OUTCOME_NOOP);

	st = inventory_lines_normalize(lines, n_lines, merged, &n);
	if (st != SHOP_OK)
		return st;

	/* Whether a row for this order exists already (any row means ignore:
	 * inventory_domain.h) is not read first: the insert of the row, below,
	 * finds it (ON CONFLICT DO NOTHING) and this order then does nothing.
	 * Redeliveries are rare, and a read per order was one round trip in
	 * eight on the shop's busiest consumer (docs/performance.md). */

	/* Unknown SKUs first, over all lines, before stock is looked at. */
	for (size_t i = 0; i < n; i++) {
		st = ops->product_get(ctx, merged[i].sku, &products[i]);
		if (st == SHOP_E_NOT_FOUND) {
			add_sku(res, merged[i].sku);
			continue;
		}
		if (st != SHOP_OK)
			return st;
	}
	if (res->n_skus > 0)
		return reject(ops, ctx, now_ms, order_id, INVENTORY_REASON_UNKNOWN_SKU, res);

	/* One order is charged in one currency. The catalogue has only EUR, so
	 * a mix means the data is not what this code was written for. */
	for (size_t i = 1; i < n; i++) {
		if (strcmp(products[i].currency, products[0].currency) != 0)
			return SHOP_E_INVALID;
	}

	for (size_t i = 0; i < n; i++) {
		memcpy(res->lines[i].sku, merged[i].sku, sizeof(res->lines[i].sku));
		res->lines[i].quantity = merged[i].quantity;
		res->lines[i].unit_price_cents = products[i].price_cents;
	}
	res->n_lines = n;
	st = inventory_total_cents(res->lines, n, &res->total_cents);
	if (st != SHOP_OK)
		return st;
	memcpy(res->currency, products[0].currency, sizeof(res->currency));

	/* Shortages as read: report them all, touch nothing. */
	for (size_t i = 0; i < n; i++) {
		if (products[i].available < merged[i].quantity)
			add_sku(res, merged[i].sku);
	}
	if (res->n_skus > 0)
		return reject(ops, ctx, now_ms, order_id, INVENTORY_REASON_OUT_OF_STOCK, res);

	bool inserted = false;
	st = ops->reservation_insert(ctx, order_id, INVENTORY_STATUS_RESERVED, NULL,
				     res->total_cents, res->currency, now_ms, &inserted);
	if (st != SHOP_OK)
		return st;
	if (!inserted) {
		result_reset(res, INVENTORY_OUTCOME_NOOP);
		return SHOP_OK;
	}

	size_t missed = n;
	st = take_all(ops, ctx, res->lines, n, res->levels, &missed);
	if (st != SHOP_OK)
		return st;
	if (missed < n) {
		bool changed = false;
		st = ops->reservation_transition(ctx, order_id, INVENTORY_STATUS_RESERVED,
						 INVENTORY_STATUS_REJECTED,
						 INVENTORY_REASON_OUT_OF_STOCK, now_ms, &changed);
		if (st != SHOP_OK)
			return st;
		/* This transaction inserted the row a moment ago. */
		if (!changed)
			return SHOP_E_INTERNAL;
		char sku[INVENTORY_SKU_MAX + 1];
		memcpy(sku, res->lines[missed].sku, sizeof(sku));
		result_reset(res, INVENTORY_OUTCOME_REJECTED);
		add_sku(res, sku);
		return TEXT_COPY(res->reason, INVENTORY_REASON_OUT_OF_STOCK) ? SHOP_OK
									     : SHOP_E_LIMIT;
	}

	for (size_t i = 0; i < n; i++) {
		st = ops->line_insert(ctx, order_id, &res->lines[i]);
		if (st != SHOP_OK)
			return st;
	}
	res->n_levels = n;
	res->outcome = INVENTORY_OUTCOME_RESERVED;
	return SHOP_OK;
}

static shop_status release_held(struct db *db, int64_t now_ms, const char *order_id,
				const char *reason, struct inventory_result *res)
{
	bool changed = false;
	shop_status st = inventory_store_reservation_transition(db, order_id,
								INVENTORY_STATUS_RESERVED,
								INVENTORY_STATUS_RELEASED, reason,
								now_ms, &changed);
	if (st != SHOP_OK)
		return st;
	if (!changed) /* another replica released it first */
		return SHOP_OK;

	st = inventory_store_lines_get(db, order_id, res->lines, &res->n_lines);
	if (st != SHOP_OK)
		return st;
	/* Lines come back in SKU order: the same lock order as reserving. */
	for (size_t i = 0; i < res->n_lines; i++) {
		st = inventory_store_stock_give(db, res->lines[i].sku, res->lines[i].quantity,
						&res->levels[i]);
		if (st != SHOP_OK)
			return st;
	}
	res->n_levels = res->n_lines;
	st = inventory_total_cents(res->lines, res->n_lines, &res->total_cents);
	if (st != SHOP_OK)
		return st;
	if (res->n_levels > 0)
		memcpy(res->currency, res->levels[0].currency, sizeof(res->currency));
	res->outcome = INVENTORY_OUTCOME_RELEASED;
	return SHOP_OK;
}

shop_status inventory_release(struct db *db, int64_t now_ms, const char *order_id,
			      const char *reason, struct inventory_result *ret_result)
{
	enum inventory_status status;
	struct inventory_result *res = ret_result;
	bool inserted = false;
	shop_status st;

	result_reset(res, INVENTORY_OUTCOME_NOOP);
	st = inventory_store_reservation_status(db, order_id, &status);
	if (st != SHOP_OK)
		return st;

	switch (inventory_on_cancel(status)) {
	case INVENTORY_CANCEL_IGNORE:
		return SHOP_OK;
	case INVENTORY_CANCEL_RELEASE:
		return release_held(db, now_ms, order_id, reason, res);
	case INVENTORY_CANCEL_TOMBSTONE:
		break;
	}

	st = inventory_store_reservation_insert(db, order_id,
						INVENTORY_STATUS_CANCELLED_BEFORE_PLACED, reason, 0,
						NULL, now_ms, &inserted);
	if (st != SHOP_OK)
		return st;
	if (inserted) {
		res->outcome = INVENTORY_OUTCOME_TOMBSTONED;
		return SHOP_OK;
	}
	/* OrderPlaced was being handled by another replica at the same time and
	 * committed first (the insert waited for it). Decide again on what it
	 * left: a new statement sees the committed row. */
	st = inventory_store_reservation_status(db, order_id, &status);
	if (st != SHOP_OK)
		return st;
	if (inventory_on_cancel(status) == INVENTORY_CANCEL_RELEASE)
		return release_held(db, now_ms, order_id, reason, res);
	return SHOP_OK;
}

shop_status inventory_seed(struct db *db, const struct inventory_seed_product *catalogue, size_t n,
			   struct inventory_result *ret_result)
{
	struct inventory_result *res = ret_result;
	shop_status st;

	result_reset(res, INVENTORY_OUTCOME_NOOP);
	if (n > INVENTORY_CATALOGUE_MAX)
		return SHOP_E_LIMIT;
	for (size_t i = 0; i < n; i++) {
		bool inserted = false;
		st = inventory_store_product_insert(db, &catalogue[i], &inserted);
		if (st != SHOP_OK)
			return st;
		if (!inserted)
			continue;
		st = inventory_store_product_get(db, catalogue[i].sku, &res->levels[res->n_levels]);
		if (st != SHOP_OK)
			return st == SHOP_E_NOT_FOUND ? SHOP_E_INTERNAL : st;
		res->n_levels++;
	}
	if (res->n_levels > 0)
		res->outcome = INVENTORY_OUTCOME_SEEDED;
	return SHOP_OK;
}
