/*
 * inventory_store.c - every SQL statement of the inventory, nothing else.
 *
 * The same statements run on SQLite and PostgreSQL: $n parameters, integers
 * passed as decimal text, ON CONFLICT DO NOTHING, RETURNING, no row locks
 * taken by SELECT. What prevents overselling is not a lock taken up front
 * but the condition inside the UPDATE that takes stock (`available >= q`):
 * on PostgreSQL a concurrent update of the same row waits for the other
 * transaction and then re-checks the condition against the committed row;
 * on SQLite writers are serialised by BEGIN IMMEDIATE. The CHECK
 * (available >= 0) in the schema backs it up.
 *
 * Functions run inside the caller's transaction and write their ret_*
 * arguments only on success.
 */
#include "inventory.h"

#include "core/text.h"

#include <string.h>

#define PRODUCT_COLUMNS "sku, name, price_cents, currency, available, initial_stock, revision"

/* Copies one row of PRODUCT_COLUMNS. A value too long for our buffers can
 * only come from a row we did not write ourselves: SHOP_E_INTERNAL. */
static shop_status product_from_row(const struct db_result *r, int row,
				    struct inventory_product *ret_product)
{
	struct inventory_product p;
	const char *sku = db_result_text(r, row, 0);
	const char *name = db_result_text(r, row, 1);
	const char *currency = db_result_text(r, row, 3);

	memset(&p, 0, sizeof(p));
	if (!sku || !name || !currency || !TEXT_COPY(p.sku, sku) || !TEXT_COPY(p.name, name) ||
	    !TEXT_COPY(p.currency, currency))
		return SHOP_E_INTERNAL;
	p.price_cents = db_result_int(r, row, 2);
	p.available = db_result_int(r, row, 4);
	p.initial_stock = db_result_int(r, row, 5);
	p.revision = db_result_int(r, row, 6);
	*ret_product = p;
	return SHOP_OK;
}

shop_status inventory_store_product_get(struct db *db, const char *sku,
					struct inventory_product *ret_product)
{
	struct db_result *r = NULL;
	shop_status st = db_query(db, "SELECT " PRODUCT_COLUMNS " FROM products WHERE sku = $1",
				  DB_ARGS(sku), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	st = product_from_row(r, 0, ret_product);
out:
	db_result_free(r);
	return st;
}

shop_status inventory_store_product_insert(struct db *db, const struct inventory_seed_product *p,
					   bool *ret_inserted)
{
	int64_t changes = 0;
	/* revision starts at 1 so the seed's StockLevelChanged is newer than
	 * "nothing known" (0) in every reader. */
	shop_status st = db_exec(
		db,
		"INSERT INTO products (sku, name, price_cents, currency, available, "
		"initial_stock, revision) VALUES ($1, $2, $3, $4, $5, $5, 1) "
		"ON CONFLICT (sku) DO NOTHING",
		DB_ARGS(p->sku, p->name, DB_I64(p->price_cents), p->currency, DB_I64(p->stock)),
		&changes);
	if (st != SHOP_OK)
		return st;
	*ret_inserted = changes > 0;
	return SHOP_OK;
}

shop_status inventory_store_stock_take(struct db *db, const char *sku, int64_t quantity,
				       bool *ret_taken, struct inventory_product *ret_product)
{
	struct db_result *r = NULL;
	struct inventory_product p;
	bool taken = false;
	shop_status st = db_query(db,
				  "UPDATE products SET available = available - $2, "
				  "revision = revision + 1 WHERE sku = $1 AND available >= $2 "
				  "RETURNING " PRODUCT_COLUMNS,
				  DB_ARGS(sku, DB_I64(quantity)), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) > 0) {
		st = product_from_row(r, 0, &p);
		if (st != SHOP_OK)
			goto out;
		taken = true;
	}
	*ret_taken = taken;
	if (taken && ret_product)
		*ret_product = p;
out:
	db_result_free(r);
	return st;
}

shop_status inventory_store_stock_give(struct db *db, const char *sku, int64_t quantity,
				       struct inventory_product *ret_product)
{
	struct db_result *r = NULL;
	struct inventory_product p;
	shop_status st =
		db_query(db,
			 "UPDATE products SET available = available + $2, "
			 "revision = revision + 1 WHERE sku = $1 RETURNING " PRODUCT_COLUMNS,
			 DB_ARGS(sku, DB_I64(quantity)), &r);
	if (st != SHOP_OK)
		goto out;
	/* Products are never deleted, and lines reference them. */
	if (db_result_rows(r) == 0) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	st = product_from_row(r, 0, &p);
	if (st != SHOP_OK)
		goto out;
	if (ret_product)
		*ret_product = p;
out:
	db_result_free(r);
	return st;
}

shop_status inventory_store_reservation_status(struct db *db, const char *order_id,
					       enum inventory_status *ret_status)
{
	struct db_result *r = NULL;
	enum inventory_status status = INVENTORY_STATUS_NONE;
	shop_status st = db_query(db, "SELECT status FROM reservations WHERE order_id = $1",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) > 0) {
		/* The CHECK constraint allows only known names. */
		if (inventory_status_parse(db_result_text(r, 0, 0), &status) != SHOP_OK) {
			st = SHOP_E_INTERNAL;
			goto out;
		}
	}
	*ret_status = status;
out:
	db_result_free(r);
	return st;
}

shop_status inventory_store_reservation_insert(struct db *db, const char *order_id,
					       enum inventory_status status, const char *reason,
					       int64_t total_cents, const char *currency,
					       int64_t now_ms, bool *ret_inserted)
{
	int64_t changes = 0;
	const char *name = inventory_status_name(status);
	if (!name)
		return SHOP_E_INTERNAL;
	shop_status st = db_exec(db,
				 "INSERT INTO reservations (order_id, status, reason, total_cents, "
				 "currency, created_at_ms, updated_at_ms) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $6) "
				 "ON CONFLICT (order_id) DO NOTHING",
				 DB_ARGS(order_id, name, reason, DB_I64(total_cents), currency,
					 DB_I64(now_ms)),
				 &changes);
	if (st != SHOP_OK)
		return st;
	*ret_inserted = changes > 0;
	return SHOP_OK;
}

shop_status inventory_store_reservation_transition(struct db *db, const char *order_id,
						   enum inventory_status from,
						   enum inventory_status to, const char *reason,
						   int64_t now_ms, bool *ret_changed)
{
	int64_t changes = 0;
	const char *from_name = inventory_status_name(from);
	const char *to_name = inventory_status_name(to);
	if (!from_name || !to_name)
		return SHOP_E_INTERNAL;
	/* The status in the WHERE clause is the guard: of two replicas releasing
	 * the same reservation, the second waits for the first and then matches
	 * no row, so stock is given back once. */
	shop_status st =
		db_exec(db,
			"UPDATE reservations SET status = $3, reason = COALESCE($4, reason), "
			"updated_at_ms = $5 WHERE order_id = $1 AND status = $2",
			DB_ARGS(order_id, from_name, to_name, reason, DB_I64(now_ms)), &changes);
	if (st != SHOP_OK)
		return st;
	*ret_changed = changes > 0;
	return SHOP_OK;
}

shop_status inventory_store_line_insert(struct db *db, const char *order_id,
					const struct inventory_priced_line *line)
{
	return db_exec(db,
		       "INSERT INTO reservation_lines (order_id, sku, quantity, unit_price_cents) "
		       "VALUES ($1, $2, $3, $4)",
		       DB_ARGS(order_id, line->sku, DB_I64(line->quantity),
			       DB_I64(line->unit_price_cents)),
		       NULL);
}

shop_status inventory_store_lines_get(struct db *db, const char *order_id,
				      struct inventory_priced_line *out, size_t *ret_n)
{
	struct db_result *r = NULL;
	shop_status st = db_query(db,
				  "SELECT sku, quantity, unit_price_cents FROM reservation_lines "
				  "WHERE order_id = $1 ORDER BY sku",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	int rows = db_result_rows(r);
	/* Only inventory_reserve writes lines, at most INVENTORY_LINES_MAX. */
	if (rows < 0 || (size_t)rows > INVENTORY_LINES_MAX) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		const char *sku = db_result_text(r, i, 0);
		if (!sku || !TEXT_COPY(out[i].sku, sku)) {
			st = SHOP_E_INTERNAL;
			goto out;
		}
		out[i].quantity = db_result_int(r, i, 1);
		out[i].unit_price_cents = db_result_int(r, i, 2);
	}
	*ret_n = (size_t)rows;
out:
	db_result_free(r);
	return st;
}

shop_status inventory_store_audit(struct db *db, int64_t *ret_violations)
{
	struct db_result *r = NULL;
	int64_t violations = 0;
	/* A correlated subquery rather than a join, so products with no held
	 * lines count as holding 0 on both backends. */
	shop_status st = db_query(db,
				  "SELECT p.initial_stock, p.available, "
				  "COALESCE((SELECT SUM(l.quantity) FROM reservation_lines l "
				  "JOIN reservations r ON r.order_id = l.order_id "
				  "WHERE l.sku = p.sku AND r.status = 'RESERVED'), 0) "
				  "FROM products p",
				  DB_NOARGS, &r);
	if (st != SHOP_OK)
		goto out;
	for (int i = 0; i < db_result_rows(r); i++) {
		int64_t initial = db_result_int(r, i, 0);
		int64_t available = db_result_int(r, i, 1);
		int64_t held = db_result_int(r, i, 2);
		if (available < 0 || initial != available + held)
			violations++;
	}
	*ret_violations = violations;
out:
	db_result_free(r);
	return st;
}
