/*
 * gateway_store.c - the SQL of the gateway (see gateway_store.h).
 *
 * Every statement runs unchanged on SQLite and PostgreSQL: $n parameters,
 * integers formatted in C, upserts by ON CONFLICT. The invariants this file
 * keeps: an idempotency key is claimed by the INSERT itself (a SELECT
 * first would let two requests both find it free on PostgreSQL), and the
 * projection's writes are insert-if-absent or guarded, so a redelivered
 * event changes nothing.
 */
#include "gateway_store.h"

#include "core/xalloc.h"

#include <stdlib.h>

/* A copy of a nullable column. */
static char *gateway_store_dup(const struct db_result *r, int row, int col)
{
	const char *s = db_result_text(r, row, col);
	return s ? xstrdup(s) : NULL;
}

/* ---- idempotency records ---- */

shop_status gateway_store_idempotency_claim(struct db *db, const char *key, const char *request,
					    int status, const char *response, const char *order_id,
					    int64_t now_ms, bool *ret_claimed)
{
	int64_t claimed = 0;
	shop_status st =
		db_exec(db,
			"INSERT INTO idempotency_keys (idem_key, request, status, response, "
			"order_id, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) "
			"ON CONFLICT (idem_key) DO NOTHING",
			DB_ARGS(key, request, DB_I64(status), response, order_id, DB_I64(now_ms)),
			&claimed);
	if (st == SHOP_OK)
		*ret_claimed = claimed > 0;
	return st;
}

shop_status gateway_store_idempotency_get(struct db *db, const char *key,
					  struct gateway_idempotency_record *ret_record)
{
	struct db_result *r = NULL;
	shop_status st = db_query(db,
				  "SELECT request, status, response, order_id FROM idempotency_keys "
				  "WHERE idem_key = $1",
				  DB_ARGS(key), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	ret_record->request = xstrdup(db_result_text(r, 0, 0));
	ret_record->status = (int)db_result_int(r, 0, 1);
	ret_record->response = xstrdup(db_result_text(r, 0, 2));
	ret_record->order_id = xstrdup(db_result_text(r, 0, 3));
out:
	db_result_free(r);
	return st;
}

void gateway_store_idempotency_release(struct gateway_idempotency_record *r)
{
	if (!r)
		return;
	free(r->request);
	free(r->response);
	free(r->order_id);
	r->request = r->response = r->order_id = NULL;
}

shop_status gateway_store_idempotency_purge(struct db *db, int64_t now_ms, int64_t retention_ms,
					    int64_t *ret_purged)
{
	int64_t purged = 0;
	shop_status st = db_exec(db, "DELETE FROM idempotency_keys WHERE created_at_ms < $1",
				 DB_ARGS(DB_I64(now_ms - retention_ms)), &purged);
	if (ret_purged)
		*ret_purged = st == SHOP_OK ? purged : 0;
	return st;
}

/* ---- the orders view and timeline ---- */

shop_status gateway_store_view_create(struct db *db, const char *order_id, const char *customer_id,
				      const char *items_json, int64_t now_ms, bool *ret_created)
{
	int64_t created = 0;
	shop_status st =
		db_exec(db,
			"INSERT INTO orders_view (order_id, status, customer_id, items, "
			"created_at_ms, updated_at_ms) VALUES ($1, 'PENDING', $2, $3, $4, $4) "
			"ON CONFLICT (order_id) DO NOTHING",
			DB_ARGS(order_id, customer_id, items_json, DB_I64(now_ms)), &created);
	if (st == SHOP_OK && ret_created)
		*ret_created = created > 0;
	return st;
}

shop_status gateway_store_view_price(struct db *db, const char *order_id, const char *items_json,
				     int64_t total_cents, const char *currency, int64_t now_ms,
				     bool *ret_found)
{
	int64_t changed = 0;
	shop_status st = db_exec(
		db,
		"UPDATE orders_view SET items = $2, total_cents = $3, currency = $4, "
		"updated_at_ms = $5 WHERE order_id = $1",
		DB_ARGS(order_id, items_json, DB_I64(total_cents), currency, DB_I64(now_ms)),
		&changed);
	if (st == SHOP_OK)
		*ret_found = changed > 0;
	return st;
}

shop_status gateway_store_view_total(struct db *db, const char *order_id, int64_t total_cents,
				     const char *currency)
{
	return db_exec(db,
		       "UPDATE orders_view SET total_cents = $2, currency = $3 WHERE order_id = $1",
		       DB_ARGS(order_id, DB_I64(total_cents), currency), NULL);
}

shop_status gateway_store_view_status(struct db *db, const char *order_id,
				      enum gateway_status *ret_status)
{
	struct db_result *r = NULL;
	shop_status st = db_query(db, "SELECT status FROM orders_view WHERE order_id = $1",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0)
		st = SHOP_E_NOT_FOUND;
	else if (!gateway_status_parse(db_result_text(r, 0, 0), ret_status))
		st = SHOP_E_INTERNAL;
out:
	db_result_free(r);
	return st;
}

shop_status gateway_store_view_set_status(struct db *db, const char *order_id,
					  enum gateway_status status, const char *reason,
					  int64_t now_ms)
{
	return db_exec(db,
		       "UPDATE orders_view SET status = $2, reason = $3, updated_at_ms = $4 "
		       "WHERE order_id = $1",
		       DB_ARGS(order_id, gateway_status_name(status), reason, DB_I64(now_ms)),
		       NULL);
}

shop_status gateway_store_view_get(struct db *db, const char *order_id,
				   struct gateway_view *ret_view)
{
	struct db_result *r = NULL, *t = NULL;
	struct gateway_view v = { 0 };
	shop_status st =
		db_query(db,
			 "SELECT status, reason, customer_id, items, total_cents, currency, "
			 "created_at_ms, updated_at_ms FROM orders_view WHERE order_id = $1",
			 DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	if (!gateway_status_parse(db_result_text(r, 0, 0), &v.status)) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	st = db_query(db,
		      "SELECT type, source, time, event_id, detail FROM timeline WHERE order_id = $1 "
		      "ORDER BY time, seq LIMIT $2",
		      DB_ARGS(order_id, DB_I64(GATEWAY_TIMELINE_MAX)), &t);
	if (st != SHOP_OK)
		goto out;
	v.reason = gateway_store_dup(r, 0, 1);
	v.customer_id = gateway_store_dup(r, 0, 2);
	v.items = gateway_store_dup(r, 0, 3);
	v.has_total = db_result_text(r, 0, 4) != NULL;
	v.total_cents = v.has_total ? db_result_int(r, 0, 4) : 0;
	v.currency = gateway_store_dup(r, 0, 5);
	v.created_at_ms = db_result_int(r, 0, 6);
	v.updated_at_ms = db_result_int(r, 0, 7);
	v.timeline_len = (size_t)db_result_rows(t);
	v.timeline = xcalloc(v.timeline_len ? v.timeline_len : 1, sizeof(*v.timeline));
	for (size_t i = 0; i < v.timeline_len; i++) {
		struct gateway_timeline_entry *e = &v.timeline[i];
		int row = (int)i;
		e->type = gateway_store_dup(t, row, 0);
		e->source = gateway_store_dup(t, row, 1);
		e->time = gateway_store_dup(t, row, 2);
		e->event_id = gateway_store_dup(t, row, 3);
		e->detail = gateway_store_dup(t, row, 4);
	}
	*ret_view = v;
out:
	db_result_free(t);
	db_result_free(r);
	return st;
}

void gateway_store_view_release(struct gateway_view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->timeline_len; i++) {
		struct gateway_timeline_entry *e = &v->timeline[i];
		free(e->type);
		free(e->source);
		free(e->time);
		free(e->event_id);
		free(e->detail);
	}
	free(v->timeline);
	free(v->reason);
	free(v->customer_id);
	free(v->items);
	free(v->currency);
	*v = (struct gateway_view){ 0 };
}

shop_status gateway_store_timeline_add(struct db *db, const char *order_id, const char *event_id,
				       const char *type, const char *source, const char *time,
				       const char *detail)
{
	return db_exec(db,
		       "INSERT INTO timeline (order_id, event_id, type, source, time, detail) "
		       "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
		       DB_ARGS(order_id, event_id, type, source, time, detail), NULL);
}

/* ---- the catalogue ---- */

shop_status gateway_store_catalogue_put(struct db *db, const char *sku, const char *name,
					int64_t price_cents, const char *currency,
					int64_t available, int64_t revision)
{
	return db_exec(
		db,
		"INSERT INTO catalogue (sku, name, price_cents, currency, available, revision) "
		"VALUES ($1, $2, $3, $4, $5, $6) "
		"ON CONFLICT (sku) DO UPDATE SET name = excluded.name, "
		"price_cents = excluded.price_cents, currency = excluded.currency, "
		"available = excluded.available, revision = excluded.revision "
		"WHERE catalogue.revision < excluded.revision",
		DB_ARGS(sku, name, DB_I64(price_cents), currency, DB_I64(available),
			DB_I64(revision)),
		NULL);
}

shop_status gateway_store_catalogue_list(struct db *db, struct gateway_product **ret_products,
					 size_t *ret_n)
{
	struct db_result *r = NULL;
	shop_status st = db_query(db,
				  "SELECT sku, name, price_cents, currency, available FROM catalogue "
				  "ORDER BY sku",
				  DB_NOARGS, &r);
	if (st != SHOP_OK)
		goto out;
	size_t n = (size_t)db_result_rows(r);
	struct gateway_product *products = xcalloc(n ? n : 1, sizeof(*products));
	for (size_t i = 0; i < n; i++) {
		int row = (int)i;
		products[i].sku = gateway_store_dup(r, row, 0);
		products[i].name = gateway_store_dup(r, row, 1);
		products[i].price_cents = db_result_int(r, row, 2);
		products[i].currency = gateway_store_dup(r, row, 3);
		products[i].available = db_result_int(r, row, 4);
	}
	*ret_products = products;
	*ret_n = n;
out:
	db_result_free(r);
	return st;
}

void gateway_store_catalogue_release(struct gateway_product *products, size_t n)
{
	for (size_t i = 0; products && i < n; i++) {
		free(products[i].sku);
		free(products[i].name);
		free(products[i].currency);
	}
	free(products);
}
