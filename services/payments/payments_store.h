/*
 * payments_store.h - the payments table (migrations/001_init.sql,
 * 002_card_submitted.sql).
 *
 * All SQL of the service is here and runs unchanged on SQLite and
 * PostgreSQL. Every call runs inside the caller's transaction (the handler's).
 * State changes are guarded UPDATEs (`... WHERE status = 'NEW'`) that report
 * SHOP_E_CONFLICT when the row was not in the expected state, so a transition
 * happens at most once whatever the interleaving.
 */
#ifndef SHOP_PAYMENTS_STORE_H
#define SHOP_PAYMENTS_STORE_H

#include "payments_domain.h"
#include "payments_provider.h"

#include "core/ids.h"
#include "core/status.h"
#include "db/db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest values kept, in bytes. Order ids are UUIDs (36 ASCII characters by
 * their pattern) and currencies three ASCII letters; payments_handlers.c
 * checks these limits against the contracts at compile time. */
#define PAYMENTS_ORDER_ID_MAX 64
#define PAYMENTS_TOKEN_MAX PAYMENTS_PROVIDER_TOKEN_MAX
#define PAYMENTS_CURRENCY_MAX PAYMENTS_PROVIDER_CURRENCY_MAX
#define PAYMENTS_REASON_MAX 64

/* Embedded from the migrations folder by the build (tools/embed_sql.py). */
extern const struct db_migration payments_migrations[];
extern const size_t payments_n_migrations;

/* One payments row. Text columns that are NULL read as "". */
struct payments_row {
	char order_id[PAYMENTS_ORDER_ID_MAX + 1];
	char card_token[PAYMENTS_TOKEN_MAX + 1];
	enum payments_status status;
	int64_t amount_cents;
	char currency[PAYMENTS_CURRENCY_MAX + 1];
	char payment_id[IDS_UUID_SIZE];
	char charge_id[PAYMENTS_PROVIDER_ID_SIZE];
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	char decline_reason[PAYMENTS_REASON_MAX + 1];
	int64_t attempts;
	int64_t created_at_ms;
	int64_t updated_at_ms;
	/* NEW: what StockReserved carried, when it has arrived. */
	bool has_reservation;
	int64_t reserved_cents;
	char reserved_currency[PAYMENTS_CURRENCY_MAX + 1];
};

/* Inserts a NEW payment with its card (SubmitCard came first) unless a row
 * for the order exists (then leaves it: *ret_inserted false). */
shop_status payments_store_insert_intent(struct db *db, const char *order_id,
					 const char *card_token, int64_t now_ms,
					 bool *ret_inserted);
/* Inserts a NEW payment with its reserved total and no card (StockReserved
 * came first) unless a row exists (*ret_inserted false). */
shop_status payments_store_insert_reserved(struct db *db, const char *order_id,
					   int64_t reserved_cents, const char *currency,
					   int64_t now_ms, bool *ret_inserted);
/* A NEW payment without a card gets one. */
shop_status payments_store_set_card(struct db *db, const char *order_id, const char *card_token,
				    int64_t now_ms);
/* A NEW payment without a reserved total gets one. */
shop_status payments_store_set_reserved(struct db *db, const char *order_id, int64_t reserved_cents,
					const char *currency, int64_t now_ms);
/* Inserts a CANCELLED row with no card token unless a row exists. */
shop_status payments_store_insert_tombstone(struct db *db, const char *order_id, int64_t now_ms,
					    bool *ret_inserted);

/* Reads the row, SHOP_E_NOT_FOUND when there is none. */
shop_status payments_store_get(struct db *db, const char *order_id, struct payments_row *ret_row);
/* Locks the row for the rest of the transaction (a no-op UPDATE: PostgreSQL
 * takes the row lock, waiting for a concurrent writer to commit), then reads
 * it. What it returns cannot change before commit, so a decision made on it
 * holds. The SQL rules allow no SELECT ... FOR UPDATE; this is its portable
 * equivalent. SHOP_E_NOT_FOUND when there is no row. */
shop_status payments_store_lock_get(struct db *db, const char *order_id,
				    struct payments_row *ret_row);

/* Every transition out of NEW clears the card token. */
/* NEW -> CHARGED with what was charged. */
shop_status payments_store_mark_charged(struct db *db, const char *order_id, const char *payment_id,
					const char *charge_id, int64_t amount_cents,
					const char *currency, int64_t attempts, int64_t now_ms);
/* NEW -> DECLINED with the provider's reason. */
shop_status payments_store_mark_declined(struct db *db, const char *order_id, const char *reason,
					 int64_t amount_cents, const char *currency,
					 int64_t attempts, int64_t now_ms);
/* NEW -> CANCELLED. */
shop_status payments_store_mark_cancelled(struct db *db, const char *order_id, int64_t now_ms);
/* FROM (NEW or CANCELLED) -> REFUNDED for a charge the provider holds but the
 * row never recorded: what was charged and its refund, under a new
 * payment id. */
shop_status payments_store_mark_refunded_found(struct db *db, const char *order_id,
					       enum payments_status from, const char *payment_id,
					       const char *charge_id, int64_t amount_cents,
					       const char *currency, const char *refund_id,
					       int64_t now_ms);
/* CHARGED -> REFUNDED with the provider's refund id. */
shop_status payments_store_mark_refunded(struct db *db, const char *order_id, const char *refund_id,
					 int64_t now_ms);

#endif
