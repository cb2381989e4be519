/*
 * notifications_store.c - notifications' SQL (see notifications_store.h).
 * Same statements on SQLite and PostgreSQL: $n text parameters, epoch-ms
 * times from C, ON CONFLICT DO NOTHING.
 */
#include "notifications_store.h"

#include "core/text.h"

#include <string.h>

shop_status notifications_store_recipient_put(struct db *db, const char *order_id,
					      const char *email, const char *customer_id,
					      int64_t now_ms)
{
	return db_exec(db,
		       "INSERT INTO recipients (order_id, email, customer_id, received_at_ms) "
		       "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
		       DB_ARGS(order_id, email, customer_id, DB_I64(now_ms)), NULL);
}

shop_status notifications_store_recipient_email(struct db *db, const char *order_id,
						char ret_email[NOTIFICATIONS_EMAIL_MAX + 1])
{
	struct db_result *r = NULL;
	shop_status st = db_query(db, "SELECT email FROM recipients WHERE order_id = $1",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		st = SHOP_E_NOT_FOUND;
		goto out;
	}
	char email[NOTIFICATIONS_EMAIL_MAX + 1];
	if (!TEXT_COPY(email, db_result_text(r, 0, 0))) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	memcpy(ret_email, email, sizeof(email));
out:
	db_result_free(r);
	return st;
}

shop_status notifications_store_record(struct db *db, const struct notifications_record *rec,
				       int64_t now_ms, bool *ret_inserted)
{
	const char *kind = notifications_kind_name(rec->kind);
	if (!kind)
		return SHOP_E_INTERNAL;
	int64_t changes = 0;
	shop_status st = db_exec(db,
				 "INSERT INTO notifications (notification_id, order_id, kind, email, "
				 "subject_line, body, created_at_ms) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
				 DB_ARGS(rec->notification_id, rec->order_id, kind, rec->email,
					 rec->subject_line, rec->body, DB_I64(now_ms)),
				 &changes);
	if (st != SHOP_OK)
		return st;
	*ret_inserted = changes == 1;
	return SHOP_OK;
}
