/*
 * orders_store.h - the orders table: every statement orders runs.
 *
 * The store does not decide anything; it creates an order if absent, reads
 * one, and moves one from a state the caller names to the state the domain
 * chose. That move is a guarded UPDATE (... WHERE status = <from> and the
 * cancellation mark and requests count are as they were): when two replicas race on the same order,
 * one changes the row and the other changes nothing and is told so
 * (ret_moved false), instead of both believing they won. Because states only
 * move forward, the state guard is as strong as a version guard. All calls take a connection the caller has already put in a
 * transaction where it matters (the handlers' and the sweeper's).
 */
#ifndef SHOP_ORDERS_STORE_H
#define SHOP_ORDERS_STORE_H

#include "db/db.h"
#include "orders_domain.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Generated from migrations/ by the build (tools/embed_sql.py). */
extern const struct db_migration orders_migrations[];
extern const size_t orders_n_migrations;

/* Longest text, in bytes, the store reads back into a struct orders_row; a
 * longer value in the table is SHOP_E_INTERNAL (only orders writes it, from
 * contract-checked messages, so it cannot happen without a bug). The
 * contracts bound strings in characters, up to 4 UTF-8 bytes each;
 * orders_handlers.c checks at compile time that these hold what they carry. */
#define ORDERS_ID_MAX 64 /* order, payment and shipment ids: UUIDs */
#define ORDERS_CUSTOMER_ID_MAX (4 * 64)
#define ORDERS_EMAIL_MAX (4 * 254)
#define ORDERS_CURRENCY_MAX 8     /* ISO 4217 is 3; room for a contract change */
#define ORDERS_CORRELATION_MAX 64 /* EVT_REF_MAX */

/* A new order, as PlaceOrder carries it. */
struct orders_new {
	const char *order_id;
	const char *customer_id;
	const char *email;
	const char *items_json;     /* the lines as received, a JSON array */
	const char *correlation_id; /* may be NULL */
	int64_t created_at_ms;
	int64_t deadline_at_ms;
};

/* One order as stored (without the lines, which no decision needs). */
struct orders_row {
	char order_id[ORDERS_ID_MAX + 1];
	enum orders_status status;
	enum orders_reason reason;
	char customer_id[ORDERS_CUSTOMER_ID_MAX + 1];
	char email[ORDERS_EMAIL_MAX + 1];
	bool has_total;
	int64_t total_cents;
	char currency[ORDERS_CURRENCY_MAX + 1]; /* "" until reserved */
	char payment_id[ORDERS_ID_MAX + 1];     /* "" until paid */
	char shipment_id[ORDERS_ID_MAX + 1];    /* "" until shipped */
	bool cancel_requested;                  /* a PAID order's cancel awaits shipping */
	int64_t cancel_requested_at_ms;         /* when it was asked; 0 when not */
	enum orders_reason cancel_reason;       /* why it was asked; NONE when not */
	int cancel_requests;                    /* OrderCancellationRequested sent */
	char correlation_id[ORDERS_CORRELATION_MAX + 1];
	int64_t created_at_ms;
	int64_t updated_at_ms;
	int64_t deadline_at_ms;
	int64_t version;
};

/* What one transition writes: the new status, reason, cancellation mark,
 * request reason and count (from the domain's decision) and the facts the
 * input brings; NULL / has_total false leaves a column as it is. A mark
 * and its reason already set are kept. */
struct orders_change {
	enum orders_status status;
	enum orders_reason reason;
	bool cancel_requested;
	enum orders_reason cancel_reason;
	int cancel_requests;
	bool has_total;
	int64_t total_cents;
	const char *currency;
	const char *payment_id;
	const char *shipment_id;
};

/* An order past its deadline, as the sweeper needs it before its transaction. */
struct orders_due {
	char order_id[ORDERS_ID_MAX + 1];
	char correlation_id[ORDERS_CORRELATION_MAX + 1]; /* "" when unknown */
	bool paid;           /* past the paid deadline, not the stock/payment one */
	int cancel_requests; /* when paid: the count it was found overdue with */
};

/* Inserts the order PENDING unless one with that id exists (then nothing is
 * changed and *ret_inserted is false: a repeated command is not an error). */
shop_status orders_store_insert(struct db *db, const struct orders_new *o, bool *ret_inserted);

/* SHOP_E_NOT_FOUND when no such order. */
shop_status orders_store_get(struct db *db, const char *order_id, struct orders_row *ret_row);

/* Moves the order from state FROM (its status, cancellation mark and
 * requests count) to c's, writes c's facts, bumps the version and updated_at_ms. *ret_moved is
 * false when the order was not in FROM any more (or does not exist): nothing
 * was changed. */
shop_status orders_store_transition(struct db *db, const char *order_id,
				    const struct orders_state *from, const struct orders_change *c,
				    int64_t now_ms, bool *ret_moved);

/* In row: what orders_store_transition wrote, without reading it back. */
void orders_row_apply(struct orders_row *row, const struct orders_change *c, int64_t now_ms);

/* Up to MAX orders in PENDING or RESERVED whose deadline_at_ms < NOW_MS, the
 * longest overdue first. */
shop_status orders_store_find_expired(struct db *db, int64_t now_ms, size_t max,
				      struct orders_due *ret_due, size_t *ret_n);

/* Up to MAX PAID orders whose last move (updated_at_ms) is before
 * BEFORE_MS and that sent fewer than MAX_REQUESTS cancellation requests,
 * the longest overdue first (paid set, with their requests count). */
shop_status orders_store_find_paid_overdue(struct db *db, int64_t before_ms, int max_requests,
					   size_t max, struct orders_due *ret_due, size_t *ret_n);

#endif
