/*
 * shipping_store.c - shipping's SQL (see shipping_store.h).
 *
 * Parameters go as text ($1, $2, ...) and times as epoch milliseconds made
 * in C, so the same statements run on SQLite and PostgreSQL. Rows read back
 * are copied whole into fixed buffers; a value that does not fit is
 * reported as SHOP_E_INTERNAL rather than cut, because a cut id is a
 * different id.
 */
#include "shipping_store.h"

#include "core/text.h"

#include <string.h>

#define SHIPPING_STR_(x) #x
#define SHIPPING_STR(x) SHIPPING_STR_(x)

shop_status shipping_store_address_put(struct db *db, const char *order_id,
				       const struct ct_address *address, int64_t now_ms)
{
	/* The first copy wins: OrderPlaced is the only source and a redelivery
	 * carries the same address. */
	return db_exec(db,
		       "INSERT INTO addresses (order_id, name, line1, city, postal_code, country, "
		       "received_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
		       DB_ARGS(order_id, address->name, address->line1, address->city,
			       address->postal_code, address->country, DB_I64(now_ms)),
		       NULL);
}

shop_status shipping_store_address_known(struct db *db, const char *order_id, bool *ret_known)
{
	struct db_result *r = NULL;
	shop_status st = db_query(db, "SELECT 1 FROM addresses WHERE order_id = $1",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	*ret_known = db_result_rows(r) > 0;
out:
	db_result_free(r);
	return st;
}

/* Columns in the order every SELECT below lists them. */
#define SHIPPING_COLUMNS                                                                           \
	"order_id, shipment_id, status, dispatch_at_ms, correlation_id, traceparent"

static shop_status shipping_row_read(const struct db_result *r, int row,
				     struct shipping_shipment *ret_shipment)
{
	struct shipping_shipment s;
	memset(&s, 0, sizeof(s));
	if (shipping_state_parse(db_result_text(r, row, 2), &s.state) != SHOP_OK)
		return SHOP_E_INTERNAL;
	if (!TEXT_COPY(s.order_id, db_result_text(r, row, 0)) ||
	    !TEXT_COPY(s.shipment_id, db_result_text(r, row, 1)) ||
	    !TEXT_COPY(s.correlation_id, db_result_text(r, row, 4)) ||
	    !TEXT_COPY(s.traceparent, db_result_text(r, row, 5)))
		return SHOP_E_INTERNAL;
	s.dispatch_at_ms = db_result_int(r, row, 3);
	*ret_shipment = s;
	return SHOP_OK;
}

shop_status shipping_store_shipment_get(struct db *db, const char *order_id,
					struct shipping_shipment *ret_shipment)
{
	struct db_result *r = NULL;
	shop_status st = db_query(db,
				  "SELECT " SHIPPING_COLUMNS " FROM shipments WHERE order_id = $1",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	st = shipping_row_read(r, 0, ret_shipment);
out:
	db_result_free(r);
	return st;
}

shop_status shipping_store_shipment_insert(struct db *db, const struct shipping_shipment *s,
					   int64_t now_ms)
{
	const char *status = shipping_state_name(s->state);
	if (!status)
		return SHOP_E_INTERNAL;
	/* A tombstone has neither a shipment id nor a due time (the CHECK in
	 * 001_init.sql insists on it). */
	bool voided = s->state == SHIPPING_STATE_VOIDED;
	char due[DB_I64_SIZE];
	db_i64_format(due, s->dispatch_at_ms);
	int64_t changes = 0;
	shop_status st = db_exec(
		db,
		"INSERT INTO shipments (order_id, shipment_id, status, dispatch_at_ms, "
		"correlation_id, traceparent, created_at_ms, updated_at_ms) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING",
		DB_ARGS(s->order_id, voided ? NULL : s->shipment_id, status, voided ? NULL : due,
			s->correlation_id, s->traceparent, DB_I64(now_ms)),
		&changes);
	if (st != SHOP_OK)
		return st;
	return changes == 1 ? SHOP_OK : SHOP_E_CONFLICT;
}

shop_status shipping_store_shipment_move(struct db *db, const char *order_id,
					 enum shipping_state from, enum shipping_state to,
					 int64_t now_ms)
{
	const char *from_name = shipping_state_name(from);
	const char *to_name = shipping_state_name(to);
	if (!from_name || !to_name)
		return SHOP_E_INTERNAL;
	/* The status guard is the whole concurrency story: of two writers
	 * (dispatcher and a cancellation, or two dispatcher replicas) the second
	 * waits for the first's row lock and then finds the guard false. */
	int64_t changes = 0;
	shop_status st = db_exec(db,
				 "UPDATE shipments SET status = $3, updated_at_ms = $4 "
				 "WHERE order_id = $1 AND status = $2",
				 DB_ARGS(order_id, from_name, to_name, DB_I64(now_ms)), &changes);
	if (st != SHOP_OK)
		return st;
	return changes == 1 ? SHOP_OK : SHOP_E_CONFLICT;
}

shop_status shipping_store_due(struct db *db, int64_t now_ms, struct shipping_shipment *ret_rows,
			       size_t cap, size_t *ret_n)
{
	struct db_result *r = NULL;
	/* status = 'SCHEDULED' is written out literally so SQLite can use the
	 * partial index shipments_due. */
	shop_status st = db_query(db,
				  "SELECT " SHIPPING_COLUMNS " FROM shipments "
				  "WHERE status = 'SCHEDULED' AND dispatch_at_ms <= $1 "
				  "ORDER BY dispatch_at_ms, order_id "
				  "LIMIT " SHIPPING_STR(SHIPPING_DISPATCH_BATCH),
				  DB_ARGS(DB_I64(now_ms)), &r);
	if (st != SHOP_OK)
		goto out;
	size_t rows = (size_t)db_result_rows(r);
	size_t n = rows < cap ? rows : cap;
	for (size_t i = 0; i < n; i++) {
		st = shipping_row_read(r, (int)i, &ret_rows[i]);
		if (st != SHOP_OK)
			goto out;
	}
	*ret_n = n;
out:
	db_result_free(r);
	return st;
}
