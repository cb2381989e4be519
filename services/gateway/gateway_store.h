/*
 * gateway_store.h - the gateway's tables: every statement the gateway runs.
 *
 * Three kinds of data, all the gateway's own (migrations/001_init.sql):
 *   idempotency_keys  the first request's fingerprint and answer under each
 *                     Idempotency-Key, kept GATEWAY_IDEMPOTENCY_RETENTION_MS
 *   orders_view,      the read model of orders and their timelines,
 *   timeline          projected from events (gateway_projection.c)
 *   catalogue         the products with price and stock, from inventory
 *
 * The store decides nothing: the projection and the API ask the domain
 * (gateway_domain.h) and then call these. Writers that may see an event
 * twice or out of order write insert-if-absent or guard their update, so a
 * redelivery changes nothing. Every call takes a connection the caller has
 * put in a transaction where it matters. Strings handed back are the
 * caller's and are freed by the matching _release.
 */
#ifndef SHOP_GATEWAY_STORE_H
#define SHOP_GATEWAY_STORE_H

#include "db/db.h"
#include "gateway_domain.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Generated from migrations/ by the build (tools/embed_sql.py). */
extern const struct db_migration gateway_migrations[];
extern const size_t gateway_n_migrations;

#define GATEWAY_TIMELINE_MAX 200 /* timeline entries read per order */

/* ---- idempotency records ---- */

/* Claims KEY for the request REQUEST (its fingerprint, see
 * gateway_idempotency_fingerprint), answered with
 * STATUS and RESPONSE for ORDER_ID, unless the key is taken: then nothing
 * is written and *ret_claimed is false. A concurrent claim of the same key
 * waits for this transaction (the row lock on PostgreSQL, the write lock
 * on SQLite) and then finds it taken. */
shop_status gateway_store_idempotency_claim(struct db *db, const char *key, const char *request,
					    int status, const char *response, const char *order_id,
					    int64_t now_ms, bool *ret_claimed);

/* The first request under a key, and its answer. */
struct gateway_idempotency_record {
	char *request;  /* its fingerprint (canonical JSON in a record made before them) */
	int status;     /* HTTP */
	char *response; /* the body */
	char *order_id;
};

/* The record of KEY; SHOP_E_NOT_FOUND when there is none (never claimed,
 * or purged). Release it with gateway_store_idempotency_release. */
shop_status gateway_store_idempotency_get(struct db *db, const char *key,
					  struct gateway_idempotency_record *ret_record);
void gateway_store_idempotency_release(struct gateway_idempotency_record *r); /* accepts NULL */

/* Deletes records created before now_ms - retention_ms; *ret_purged (may
 * be NULL) gets how many. */
shop_status gateway_store_idempotency_purge(struct db *db, int64_t now_ms, int64_t retention_ms,
					    int64_t *ret_purged);

/* ---- the orders view and timeline ---- */

/* Inserts the order PENDING with its lines (a JSON array), unless the view
 * has it (then *ret_created, which may be NULL, is false). */
shop_status gateway_store_view_create(struct db *db, const char *order_id, const char *customer_id,
				      const char *items_json, int64_t now_ms, bool *ret_created);

/* Replaces the lines with the priced ones and sets the total; *ret_found is
 * false (nothing written) when the view does not have the order. */
shop_status gateway_store_view_price(struct db *db, const char *order_id, const char *items_json,
				     int64_t total_cents, const char *currency, int64_t now_ms,
				     bool *ret_found);

/* Sets the total only (leaves updated_at_ms). */
shop_status gateway_store_view_total(struct db *db, const char *order_id, int64_t total_cents,
				     const char *currency);

/* The order's status; SHOP_E_NOT_FOUND when the view does not have it,
 * SHOP_E_INTERNAL for a status the domain does not know. */
shop_status gateway_store_view_status(struct db *db, const char *order_id,
				      enum gateway_status *ret_status);

/* Sets status and reason (NULL: none). The caller decided it is forward. */
shop_status gateway_store_view_set_status(struct db *db, const char *order_id,
					  enum gateway_status status, const char *reason,
					  int64_t now_ms);

struct gateway_timeline_entry {
	char *type;
	char *source; /* the producing service */
	char *time;   /* RFC 3339, from the envelope */
	char *event_id;
	char *detail; /* NULL when the event has none */
};

/* One order as the view holds it, with its timeline in order. */
struct gateway_view {
	enum gateway_status status;
	char *reason; /* NULL unless cancelled */
	char *customer_id;
	char *items; /* a JSON array */
	bool has_total;
	int64_t total_cents;
	char *currency; /* NULL until reserved */
	int64_t created_at_ms;
	int64_t updated_at_ms;
	struct gateway_timeline_entry *timeline;
	size_t timeline_len; /* at most GATEWAY_TIMELINE_MAX */
};

/* SHOP_E_NOT_FOUND when the view does not have the order. */
shop_status gateway_store_view_get(struct db *db, const char *order_id,
				   struct gateway_view *ret_view);
void gateway_store_view_release(struct gateway_view *v); /* accepts NULL */

/* Adds an event to the order's timeline unless it is there (by event id);
 * DETAIL may be NULL. */
shop_status gateway_store_timeline_add(struct db *db, const char *order_id, const char *event_id,
				       const char *type, const char *source, const char *time,
				       const char *detail);

/* ---- the catalogue ---- */

struct gateway_product {
	char *sku;
	char *name;
	int64_t price_cents;
	char *currency;
	int64_t available;
};

/* Inserts the product, or overwrites it if REVISION is newer than the one
 * stored: stock levels of one product may be redelivered or arrive out of
 * order. */
shop_status gateway_store_catalogue_put(struct db *db, const char *sku, const char *name,
					int64_t price_cents, const char *currency,
					int64_t available, int64_t revision);

/* Every product, by SKU; free the array with gateway_store_catalogue_release. */
shop_status gateway_store_catalogue_list(struct db *db, struct gateway_product **ret_products,
					 size_t *ret_n);
void gateway_store_catalogue_release(struct gateway_product *products, size_t n);

#endif
