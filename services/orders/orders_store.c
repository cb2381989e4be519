/*
 * orders_store.c - the SQL of the orders service (see orders_store.h).
 *
 * Every statement runs unchanged on SQLite and PostgreSQL: $n parameters
 * passed as text, integers formatted in C, no date functions, upsert by
 * ON CONFLICT DO NOTHING. The one invariant this file is responsible for is
 * that no UPDATE of the orders table lacks the state guard (status and
 * cancellation mark): the guard is what turns a race between replicas into
 * "one wins, the other is told".
 */
#include "orders_store.h"

#include "core/text.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* The columns orders_store_get reads, in the order row_read expects them. */
#define ORDERS_ROW_COLUMNS                                                                         \
	"order_id, status, reason, customer_id, email, total_cents, currency, payment_id, "        \
	"shipment_id, correlation_id, created_at_ms, updated_at_ms, deadline_at_ms, version, "     \
	"cancel_requested_at_ms, cancel_reason, cancel_requests"

static shop_status row_read(const struct db_result *r, int i, struct orders_row *row)
{
	const char *reason = db_result_text(r, i, 2);
	const char *cancel_reason = db_result_text(r, i, 15);

	memset(row, 0, sizeof(*row));
	/* Any failure here is a value the CHECKs or the writers should have
	 * made impossible. */
	if (!TEXT_COPY(row->order_id, db_result_text(r, i, 0)) ||
	    orders_status_parse(db_result_text(r, i, 1), &row->status) != SHOP_OK ||
	    !TEXT_COPY(row->customer_id, db_result_text(r, i, 3)) ||
	    !TEXT_COPY(row->email, db_result_text(r, i, 4)) ||
	    !TEXT_COPY(row->currency, db_result_text(r, i, 6)) ||
	    !TEXT_COPY(row->payment_id, db_result_text(r, i, 7)) ||
	    !TEXT_COPY(row->shipment_id, db_result_text(r, i, 8)) ||
	    !TEXT_COPY(row->correlation_id, db_result_text(r, i, 9)))
		return SHOP_E_INTERNAL;
	row->reason = ORDERS_REASON_NONE;
	if (reason && orders_reason_parse(reason, &row->reason) != SHOP_OK)
		return SHOP_E_INTERNAL;
	row->has_total = db_result_text(r, i, 5) != NULL;
	row->total_cents = db_result_int(r, i, 5);
	row->created_at_ms = db_result_int(r, i, 10);
	row->updated_at_ms = db_result_int(r, i, 11);
	row->deadline_at_ms = db_result_int(r, i, 12);
	row->version = db_result_int(r, i, 13);
	row->cancel_requested = db_result_text(r, i, 14) != NULL;
	row->cancel_requested_at_ms = row->cancel_requested ? db_result_int(r, i, 14) : 0;
	row->cancel_reason = ORDERS_REASON_NONE;
	if (cancel_reason && orders_reason_parse(cancel_reason, &row->cancel_reason) != SHOP_OK)
		return SHOP_E_INTERNAL;
	int64_t requests = db_result_int(r, i, 16);
	if (requests < 0 || requests > INT_MAX)
		return SHOP_E_INTERNAL;
	row->cancel_requests = (int)requests;
	return SHOP_OK;
}

shop_status orders_store_insert(struct db *db, const struct orders_new *o, bool *ret_inserted)
{
	/* version 1 and updated = created: the row is born PENDING, which is
	 * not a transition. */
	static const char sql[] =
		"INSERT INTO orders (order_id, status, reason, customer_id, email, items, "
		"correlation_id, created_at_ms, updated_at_ms, deadline_at_ms, version) "
		"VALUES ($1, 'PENDING', NULL, $2, $3, $4, $5, $6, $6, $7, 1) "
		"ON CONFLICT (order_id) DO NOTHING";
	int64_t changes = 0;
	shop_status st = db_exec(db, sql,
				 DB_ARGS(o->order_id, o->customer_id, o->email, o->items_json,
					 o->correlation_id, DB_I64(o->created_at_ms),
					 DB_I64(o->deadline_at_ms)),
				 &changes);
	if (st != SHOP_OK)
		return st;
	*ret_inserted = changes > 0;
	return SHOP_OK;
}

shop_status orders_store_get(struct db *db, const char *order_id, struct orders_row *ret_row)
{
	static const char sql[] = "SELECT " ORDERS_ROW_COLUMNS " FROM orders WHERE order_id = $1";
	struct db_result *r = NULL;
	struct orders_row row;
	shop_status st = db_query(db, sql, DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	st = row_read(r, 0, &row);
	if (st == SHOP_OK)
		*ret_row = row;
out:
	db_result_free(r);
	return st;
}

shop_status orders_store_transition(struct db *db, const char *order_id,
				    const struct orders_state *from, const struct orders_change *c,
				    int64_t now_ms, bool *ret_moved)
{
	/* COALESCE keeps what an earlier transition stored when this one brings
	 * nothing for that column (NULL parameter); so is a cancellation mark
	 * kept once set. The mark is part of the guard (two spellings of the
	 * statement, one per "IS [NOT] NULL"), so that of two replicas handling
	 * two CancelOrders of one PAID order only one marks it and asks
	 * shipping: the status alone does not change on that move. The count
	 * of requests sent is in the guard for the same reason: a repeated
	 * request changes neither status nor mark, and only grows it. */
#define ORDERS_TRANSITION_SQL(mark_guard)                                                          \
	"UPDATE orders SET status = $1, reason = $2, "                                             \
	"total_cents = COALESCE($3, total_cents), currency = COALESCE($4, currency), "             \
	"payment_id = COALESCE($5, payment_id), shipment_id = COALESCE($6, shipment_id), "         \
	"cancel_requested_at_ms = COALESCE(cancel_requested_at_ms, $10), "                         \
	"cancel_reason = COALESCE(cancel_reason, $11), cancel_requests = $12, "                    \
	"updated_at_ms = $7, version = version + 1 "                                               \
	"WHERE order_id = $8 AND status = $9 AND cancel_requests = $13 "                           \
	"AND cancel_requested_at_ms " mark_guard
	static const char sql_unmarked[] = ORDERS_TRANSITION_SQL("IS NULL");
	static const char sql_marked[] = ORDERS_TRANSITION_SQL("IS NOT NULL");
#undef ORDERS_TRANSITION_SQL
	int64_t changes = 0;
	shop_status st = db_exec(db, from->cancel_requested ? sql_marked : sql_unmarked,
				 DB_ARGS(orders_status_name(c->status),
					 orders_reason_name(c->reason),
					 c->has_total ? DB_I64(c->total_cents) : NULL, c->currency,
					 c->payment_id, c->shipment_id, DB_I64(now_ms), order_id,
					 orders_status_name(from->status),
					 c->cancel_requested ? DB_I64(now_ms) : NULL,
					 orders_reason_name(c->cancel_reason),
					 DB_I64(c->cancel_requests), DB_I64(from->cancel_requests)),
				 &changes);
	if (st != SHOP_OK)
		return st;
	*ret_moved = changes > 0;
	return SHOP_OK;
}

/* Mirrors the UPDATE above; kept beside it so the two change together. */
void orders_row_apply(struct orders_row *row, const struct orders_change *c, int64_t now_ms)
{
	row->status = c->status;
	row->reason = c->reason;
	if (c->has_total) {
		row->has_total = true;
		row->total_cents = c->total_cents;
	}
	if (c->currency)
		snprintf(row->currency, sizeof(row->currency), "%s", c->currency);
	if (c->payment_id)
		snprintf(row->payment_id, sizeof(row->payment_id), "%s", c->payment_id);
	if (c->shipment_id)
		snprintf(row->shipment_id, sizeof(row->shipment_id), "%s", c->shipment_id);
	if (c->cancel_requested && !row->cancel_requested) {
		row->cancel_requested = true;
		row->cancel_requested_at_ms = now_ms;
	}
	if (row->cancel_reason == ORDERS_REASON_NONE)
		row->cancel_reason = c->cancel_reason;
	row->cancel_requests = c->cancel_requests;
	row->updated_at_ms = now_ms;
	row->version++;
}

shop_status orders_store_find_expired(struct db *db, int64_t now_ms, size_t max,
				      struct orders_due *ret_due, size_t *ret_n)
{
	/* Both statuses by name, so each is a range scan of the
	 * (status, deadline_at_ms) index. */
	static const char sql[] = "SELECT order_id, correlation_id FROM orders "
				  "WHERE status IN ('PENDING', 'RESERVED') AND deadline_at_ms < $1 "
				  "ORDER BY deadline_at_ms, order_id LIMIT $2";
	struct db_result *r = NULL;
	size_t n = 0;
	shop_status st = db_query(db, sql, DB_ARGS(DB_I64(now_ms), DB_I64(max)), &r);
	if (st != SHOP_OK)
		goto out;
	for (int i = 0; i < db_result_rows(r) && n < max; i++) {
		/* Only this service writes these columns: a value that does not
		 * fit is a bug. */
		if (!TEXT_COPY(ret_due[n].order_id, db_result_text(r, i, 0)) ||
		    !TEXT_COPY(ret_due[n].correlation_id, db_result_text(r, i, 1))) {
			st = SHOP_E_INTERNAL;
			goto out;
		}
		ret_due[n].paid = false;
		ret_due[n].cancel_requests = 0;
		n++;
	}
	*ret_n = n;
out:
	db_result_free(r);
	return st;
}

shop_status orders_store_find_paid_overdue(struct db *db, int64_t before_ms, int max_requests,
					   size_t max, struct orders_due *ret_due, size_t *ret_n)
{
	/* A range scan of the (status, updated_at_ms) index; the requests
	 * count filters the few rows it yields. */
	static const char sql[] =
		"SELECT order_id, correlation_id, cancel_requests FROM orders "
		"WHERE status = 'PAID' AND updated_at_ms < $1 AND cancel_requests < $2 "
		"ORDER BY updated_at_ms, order_id LIMIT $3";
	struct db_result *r = NULL;
	size_t n = 0;
	shop_status st = db_query(db, sql,
				  DB_ARGS(DB_I64(before_ms), DB_I64(max_requests), DB_I64(max)),
				  &r);
	if (st != SHOP_OK)
		goto out;
	for (int i = 0; i < db_result_rows(r) && n < max; i++) {
		int64_t requests = db_result_int(r, i, 2);
		/* Only this service writes these columns: a value that does not
		 * fit is a bug. */
		if (!TEXT_COPY(ret_due[n].order_id, db_result_text(r, i, 0)) ||
		    !TEXT_COPY(ret_due[n].correlation_id, db_result_text(r, i, 1)) ||
		    requests < 0 || requests >= max_requests) {
			st = SHOP_E_INTERNAL;
			goto out;
		}
		ret_due[n].paid = true;
		ret_due[n].cancel_requests = (int)requests;
		n++;
	}
	*ret_n = n;
out:
	db_result_free(r);
	return st;
}
