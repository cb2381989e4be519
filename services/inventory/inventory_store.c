/*
 * inventory_store.c - every SQL statement of the inventory, nothing else.
 *
 * The same statements run on SQLite and PostgreSQL: $n parameters, integers
 * passed as decimal text, ON CONFLICT DO NOTHING, RETURNING, no row locks
 * taken by SELECT, except a consumed batch's (at the end of this file),
 * which unpack a JSON array each backend's own way and lock the batch's
 * products on PostgreSQL. What prevents overselling is not a lock taken up front
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
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
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

/* ---- a consumed batch's statements (inventory_batch.c) ----
 *
 * Each takes a JSON array as its one parameter, unpacked by the backend's
 * own function (json_array_elements_text / json_to_recordset on
 * PostgreSQL, json_each on SQLite): one round trip, whatever the batch's
 * size. */

/* The rows of a JSON array of strings, as a subquery. */
static const char *json_strings(struct db *db)
{
	return db_backend_of(db) == DB_POSTGRES
		       ? "SELECT json_array_elements_text(CAST($1 AS JSON))"
		       : "SELECT value FROM json_each($1)";
}

shop_status inventory_store_products_lock(struct db *db, const char *skus_json,
					  struct inventory_product **ret_products, size_t *ret_n)
{
	char sql[512];
	struct db_result *r = NULL;
	struct inventory_product *products = NULL;
	bool pg = db_backend_of(db) == DB_POSTGRES;
	/* ORDER BY before FOR UPDATE: PostgreSQL locks the rows in the order
	 * it returns them, so every batch takes its locks in SKU order and two
	 * batches never wait for each other in a circle. Byte order (COLLATE
	 * "C"), the order one order's lines are taken in (strcmp), whatever the
	 * database's collation. SQLite's writers are serialised anyway. */
	snprintf(sql, sizeof(sql),
		 "SELECT " PRODUCT_COLUMNS " FROM products WHERE sku IN (%s) "
		 "ORDER BY sku%s",
		 json_strings(db), pg ? " COLLATE \"C\" FOR UPDATE" : "");
	shop_status st = db_query(db, sql, DB_ARGS(skus_json), &r);
	if (st != SHOP_OK)
		goto out;
	int rows = db_result_rows(r);
	products = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(*products));
	for (int i = 0; i < rows; i++) {
		st = product_from_row(r, i, &products[i]);
		if (st != SHOP_OK)
			goto out;
		/* Callers search the rows by byte order; a database whose
		 * collation sorts otherwise is refused, not guessed at. */
		if (i > 0 && strcmp(products[i - 1].sku, products[i].sku) >= 0) {
			st = SHOP_E_INTERNAL;
			goto out;
		}
	}
	*ret_products = products;
	*ret_n = (size_t)(rows > 0 ? rows : 0);
	products = NULL;
out:
	free(products);
	db_result_free(r);
	return st;
}

shop_status inventory_store_reservations_known(struct db *db, const char *ids_json,
					       shop_status (*each)(void *arg, const char *order_id),
					       void *arg)
{
	char sql[256];
	struct db_result *r = NULL;
	snprintf(sql, sizeof(sql), "SELECT order_id FROM reservations WHERE order_id IN (%s)",
		 json_strings(db));
	shop_status st = db_query(db, sql, DB_ARGS(ids_json), &r);
	for (int i = 0; st == SHOP_OK && i < db_result_rows(r); i++) {
		const char *id = db_result_text(r, i, 0);
		st = id ? each(arg, id) : SHOP_E_INTERNAL;
	}
	db_result_free(r);
	return st;
}

shop_status inventory_store_reservations_insert_json(struct db *db, const char *rows_json,
						     int64_t *ret_inserted)
{
	struct db_result *r = NULL;
	shop_status st = db_query(
		db,
		db_backend_of(db) == DB_POSTGRES
			? "INSERT INTO reservations (order_id, status, reason, total_cents, currency, "
			  "created_at_ms, updated_at_ms) "
			  "SELECT order_id, status, reason, total_cents, currency, now_ms, now_ms "
			  "FROM json_to_recordset(CAST($1 AS JSON)) AS r(order_id TEXT, status TEXT, "
			  "reason TEXT, total_cents BIGINT, currency TEXT, now_ms BIGINT) "
			  "ON CONFLICT (order_id) DO NOTHING RETURNING order_id"
			: "INSERT INTO reservations (order_id, status, reason, total_cents, currency, "
			  "created_at_ms, updated_at_ms) "
			  "SELECT value ->> 'order_id', value ->> 'status', value ->> 'reason', "
			  "value ->> 'total_cents', value ->> 'currency', value ->> 'now_ms', "
			  "value ->> 'now_ms' FROM json_each($1) WHERE true "
			  "ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
		DB_ARGS(rows_json), &r);
	if (st == SHOP_OK)
		*ret_inserted = db_result_rows(r);
	db_result_free(r);
	return st;
}

shop_status inventory_store_lines_insert_json(struct db *db, const char *rows_json)
{
	return db_exec(db,
		       db_backend_of(db) == DB_POSTGRES
			       ? "INSERT INTO reservation_lines (order_id, sku, quantity, "
				 "unit_price_cents) SELECT order_id, sku, quantity, unit_price_cents "
				 "FROM json_to_recordset(CAST($1 AS JSON)) AS l(order_id TEXT, "
				 "sku TEXT, quantity BIGINT, unit_price_cents BIGINT)"
			       : "INSERT INTO reservation_lines (order_id, sku, quantity, "
				 "unit_price_cents) SELECT value ->> 'order_id', value ->> 'sku', "
				 "value ->> 'quantity', value ->> 'unit_price_cents' "
				 "FROM json_each($1)",
		       DB_ARGS(rows_json), NULL);
}

shop_status inventory_store_products_set_json(struct db *db, const char *rows_json,
					      int64_t *ret_updated)
{
	/* Absolute values, not increments: the caller holds the rows' locks
	 * (inventory_store_products_lock), so its copy is what the database
	 * would hold after the same takes. */
	return db_exec(
		db,
		db_backend_of(db) == DB_POSTGRES
			? "UPDATE products SET available = d.available, revision = d.revision "
			  "FROM json_to_recordset(CAST($1 AS JSON)) "
			  "AS d(sku TEXT, available BIGINT, revision BIGINT) "
			  "WHERE products.sku = d.sku"
			: "UPDATE products SET available = d.available, revision = d.revision "
			  "FROM (SELECT value ->> 'sku' AS sku, value ->> 'available' AS "
			  "available, value ->> 'revision' AS revision FROM json_each($1)) AS d "
			  "WHERE products.sku = d.sku",
		DB_ARGS(rows_json), ret_updated);
}
