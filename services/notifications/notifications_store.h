/*
 * notifications_store.h - notifications' SQL: recipients and sent e-mails.
 *
 * Both inserts are ON CONFLICT DO NOTHING and say whether they inserted, so
 * "record the e-mail, and emit NotificationSent only if it is new" is one
 * guarded statement, safe against a concurrent duplicate on PostgreSQL (the
 * second insert waits for the first's unique-key lock and then does nothing)
 * and on SQLite alike.
 */
#ifndef SHOP_NOTIFICATIONS_STORE_H
#define SHOP_NOTIFICATIONS_STORE_H

#include "contracts_gen.h"
#include "core/status.h"
#include "db/db.h"
#include "notifications_domain.h"

#include <stdbool.h>
#include <stdint.h>

/* Embedded from migrations/ by the build (tools/embed_sql.py). */
extern const struct db_migration notifications_migrations[];
extern const size_t notifications_n_migrations;

/* Longest e-mail address kept, in bytes: the contract's 254 characters
 * (what SMTP can carry), each up to 4 bytes of UTF-8. */
#define NOTIFICATIONS_EMAIL_MAX (4 * CT_ORDER_PLACED_EMAIL_MAX)

struct notifications_record {
	const char *notification_id;
	const char *order_id;
	enum notifications_kind kind;
	const char *email;
	const char *subject_line;
	const char *body;
};

/* Stores the recipient of an order; a second copy is ignored. */
shop_status notifications_store_recipient_put(struct db *db, const char *order_id,
					      const char *email, const char *customer_id,
					      int64_t now_ms);
/* The order's e-mail address; SHOP_E_NOT_FOUND when OrderPlaced has not
 * been seen. */
shop_status notifications_store_recipient_email(struct db *db, const char *order_id,
						char ret_email[NOTIFICATIONS_EMAIL_MAX + 1]);
/* Records one e-mail; *ret_inserted is false when the order already has an
 * e-mail of that kind (and nothing was written). */
shop_status notifications_store_record(struct db *db, const struct notifications_record *rec,
				       int64_t now_ms, bool *ret_inserted);

#endif
