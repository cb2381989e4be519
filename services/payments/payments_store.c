/*
 * payments_store.c - SQL for the payments table.
 *
 * Times are epoch milliseconds computed by the caller; parameters are text
 * ($1 style) on both backends. Reads copy cells into fixed buffers and treat
 * a cell that does not fit as SHOP_E_INTERNAL: every value was written by this
 * service after its length was checked, so an oversized one is a bug.
 */
#include "payments_store.h"

#include "core/text.h"

#include <stdio.h>
#include <string.h>

#define PAYMENTS_COLUMNS                                                                           \
	"order_id, card_token, status, amount_cents, currency, payment_id, charge_id,"             \
	" refund_id, decline_reason, attempts, created_at_ms, updated_at_ms,"                      \
	" reserved_cents, reserved_currency"

shop_status payments_store_insert_intent(struct db *db, const char *order_id,
					 const char *card_token, int64_t now_ms, bool *ret_inserted)
{
	int64_t changes = 0;
	shop_status st = db_exec(db,
				 "INSERT INTO payments (order_id, card_token, status, attempts,"
				 " created_at_ms, updated_at_ms) VALUES ($1, $2, 'NEW', 0, $3, $3)"
				 " ON CONFLICT (order_id) DO NOTHING",
				 DB_ARGS(order_id, card_token, DB_I64(now_ms)), &changes);
	if (st == SHOP_OK)
		*ret_inserted = changes > 0;
	return st;
}

shop_status payments_store_insert_reserved(struct db *db, const char *order_id,
					   int64_t reserved_cents, const char *currency,
					   int64_t now_ms, bool *ret_inserted)
{
	int64_t changes = 0;
	shop_status st = db_exec(db,
				 "INSERT INTO payments (order_id, card_token, status, attempts,"
				 " reserved_cents, reserved_currency, created_at_ms, updated_at_ms)"
				 " VALUES ($1, '', 'NEW', 0, $2, $3, $4, $4)"
				 " ON CONFLICT (order_id) DO NOTHING",
				 DB_ARGS(order_id, DB_I64(reserved_cents), currency,
					 DB_I64(now_ms)),
				 &changes);
	if (st == SHOP_OK)
		*ret_inserted = changes > 0;
	return st;
}

shop_status payments_store_insert_tombstone(struct db *db, const char *order_id, int64_t now_ms,
					    bool *ret_inserted)
{
	int64_t changes = 0;
	shop_status st =
		db_exec(db,
			"INSERT INTO payments (order_id, card_token, status, attempts,"
			" created_at_ms, updated_at_ms) VALUES ($1, '', 'CANCELLED', 0, $2, $2)"
			" ON CONFLICT (order_id) DO NOTHING",
			DB_ARGS(order_id, DB_I64(now_ms)), &changes);
	if (st == SHOP_OK)
		*ret_inserted = changes > 0;
	return st;
}

static shop_status store_row_read(const struct db_result *r, struct payments_row *row)
{
	/* Only this service writes these columns: a value that does not fit, or
	 * an unknown status, is a bug. */
	if (!TEXT_COPY(row->order_id, db_result_text(r, 0, 0)) ||
	    !TEXT_COPY(row->card_token, db_result_text(r, 0, 1)) ||
	    payments_status_parse(db_result_text(r, 0, 2), &row->status) != SHOP_OK ||
	    !TEXT_COPY(row->currency, db_result_text(r, 0, 4)) ||
	    !TEXT_COPY(row->payment_id, db_result_text(r, 0, 5)) ||
	    !TEXT_COPY(row->charge_id, db_result_text(r, 0, 6)) ||
	    !TEXT_COPY(row->refund_id, db_result_text(r, 0, 7)) ||
	    !TEXT_COPY(row->decline_reason, db_result_text(r, 0, 8)) ||
	    !TEXT_COPY(row->reserved_currency, db_result_text(r, 0, 13)))
		return SHOP_E_INTERNAL;
	row->has_reservation = db_result_text(r, 0, 12) != NULL;
	row->reserved_cents = db_result_int(r, 0, 12);
	row->amount_cents = db_result_int(r, 0, 3);
	row->attempts = db_result_int(r, 0, 9);
	row->created_at_ms = db_result_int(r, 0, 10);
	row->updated_at_ms = db_result_int(r, 0, 11);
	return SHOP_OK;
}

shop_status payments_store_get(struct db *db, const char *order_id, struct payments_row *ret_row)
{
	struct payments_row row = { 0 };
	struct db_result *r = NULL;
	shop_status st = db_query(db,
				  "SELECT " PAYMENTS_COLUMNS " FROM payments WHERE order_id = $1",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	st = store_row_read(r, &row);
out:
	db_result_free(r);
	if (st == SHOP_OK)
		*ret_row = row;
	return st;
}

shop_status payments_store_lock_get(struct db *db, const char *order_id,
				    struct payments_row *ret_row)
{
	int64_t changes = 0;
	shop_status st =
		db_exec(db, "UPDATE payments SET updated_at_ms = updated_at_ms WHERE order_id = $1",
			DB_ARGS(order_id), &changes);
	if (st != SHOP_OK)
		return st;
	if (changes == 0)
		return SHOP_E_NOT_FOUND;
	return payments_store_get(db, order_id, ret_row);
}

/* Runs a guarded transition: exactly one row must change. */
static shop_status store_transition(struct db *db, const char *sql, int nparams,
				    const char *const *params)
{
	int64_t changes = 0;
	shop_status st = db_exec(db, sql, nparams, params, &changes);
	if (st != SHOP_OK)
		return st;
	return changes == 1 ? SHOP_OK : SHOP_E_CONFLICT;
}

shop_status payments_store_set_card(struct db *db, const char *order_id, const char *card_token,
				    int64_t now_ms)
{
	return store_transition(db,
				"UPDATE payments SET card_token = $2, updated_at_ms = $3"
				" WHERE order_id = $1 AND status = 'NEW' AND card_token = ''",
				DB_ARGS(order_id, card_token, DB_I64(now_ms)));
}

shop_status payments_store_set_reserved(struct db *db, const char *order_id, int64_t reserved_cents,
					const char *currency, int64_t now_ms)
{
	return store_transition(db,
				"UPDATE payments SET reserved_cents = $2, reserved_currency = $3,"
				" updated_at_ms = $4"
				" WHERE order_id = $1 AND status = 'NEW' AND reserved_cents IS NULL",
				DB_ARGS(order_id, DB_I64(reserved_cents), currency,
					DB_I64(now_ms)));
}

shop_status payments_store_mark_charged(struct db *db, const char *order_id, const char *payment_id,
					const char *charge_id, int64_t amount_cents,
					const char *currency, int64_t attempts, int64_t now_ms)
{
	return store_transition(
		db,
		"UPDATE payments SET status = 'CHARGED', card_token = '', payment_id = $2,"
		" charge_id = $3, amount_cents = $4, currency = $5, attempts = $6,"
		" updated_at_ms = $7 WHERE order_id = $1 AND status = 'NEW'",
		DB_ARGS(order_id, payment_id, charge_id, DB_I64(amount_cents), currency,
			DB_I64(attempts), DB_I64(now_ms)));
}

shop_status payments_store_mark_declined(struct db *db, const char *order_id, const char *reason,
					 int64_t amount_cents, const char *currency,
					 int64_t attempts, int64_t now_ms)
{
	return store_transition(
		db,
		"UPDATE payments SET status = 'DECLINED', card_token = '', decline_reason = $2,"
		" amount_cents = $3, currency = $4, attempts = $5, updated_at_ms = $6"
		" WHERE order_id = $1 AND status = 'NEW'",
		DB_ARGS(order_id, reason, DB_I64(amount_cents), currency, DB_I64(attempts),
			DB_I64(now_ms)));
}

shop_status payments_store_mark_cancelled(struct db *db, const char *order_id, int64_t now_ms)
{
	return store_transition(
		db,
		"UPDATE payments SET status = 'CANCELLED', card_token = '', updated_at_ms = $2"
		" WHERE order_id = $1 AND status = 'NEW'",
		DB_ARGS(order_id, DB_I64(now_ms)));
}

shop_status payments_store_mark_refunded_found(struct db *db, const char *order_id,
					       enum payments_status from, const char *payment_id,
					       const char *charge_id, int64_t amount_cents,
					       const char *currency, const char *refund_id,
					       int64_t now_ms)
{
	return store_transition(
		db,
		"UPDATE payments SET status = 'REFUNDED', card_token = '', payment_id = $3,"
		" charge_id = $4, amount_cents = $5, currency = $6, refund_id = $7,"
		" updated_at_ms = $8 WHERE order_id = $1 AND status = $2",
		DB_ARGS(order_id, payments_status_name(from), payment_id, charge_id,
			DB_I64(amount_cents), currency, refund_id, DB_I64(now_ms)));
}

shop_status payments_store_mark_refunded(struct db *db, const char *order_id, const char *refund_id,
					 int64_t now_ms)
{
	return store_transition(db,
				"UPDATE payments SET status = 'REFUNDED', refund_id = $2,"
				" updated_at_ms = $3 WHERE order_id = $1 AND status = 'CHARGED'",
				DB_ARGS(order_id, refund_id, DB_I64(now_ms)));
}
