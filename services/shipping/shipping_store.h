/*
 * shipping_store.h - shipping's SQL: the address copy and the shipments.
 *
 * Every write is guarded so that it is safe against a concurrent writer on
 * PostgreSQL (READ COMMITTED, no FOR UPDATE): inserts use ON CONFLICT DO
 * NOTHING on the order id, transitions use UPDATE ... WHERE status = <from>,
 * and both report SHOP_E_CONFLICT when the guard did not hold, so the caller
 * re-reads and decides again. The same SQL runs on SQLite.
 */
#ifndef SHOP_SHIPPING_STORE_H
#define SHOP_SHIPPING_STORE_H

#include "contracts_gen.h"
#include "core/ids.h"
#include "core/status.h"
#include "db/db.h"
#include "evt/envelope.h"
#include "shipping_domain.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embedded from migrations/ by the build (tools/embed_sql.py). */
extern const struct db_migration shipping_migrations[];
extern const size_t shipping_n_migrations;

/* Room for an order id, shipment id or correlation id (the envelope's
 * reference limit is the largest any of them may be). */
#define SHIPPING_REF_SIZE (EVT_REF_MAX + 1)
/* Most due shipments one dispatcher query returns. */
#define SHIPPING_DISPATCH_BATCH 64

struct shipping_shipment {
	char order_id[SHIPPING_REF_SIZE];
	char shipment_id[SHIPPING_REF_SIZE]; /* "" for a VOIDED tombstone */
	enum shipping_state state;
	int64_t dispatch_at_ms; /* 0 for a VOIDED tombstone */
	char correlation_id[SHIPPING_REF_SIZE];
	char traceparent[IDS_TRACEPARENT_SIZE];
};

/* Stores the delivery address of an order; a second copy is ignored. */
shop_status shipping_store_address_put(struct db *db, const char *order_id,
				       const struct ct_address *address, int64_t now_ms);
shop_status shipping_store_address_known(struct db *db, const char *order_id, bool *ret_known);

/* The order's shipment row; SHOP_E_NOT_FOUND when there is none. */
shop_status shipping_store_shipment_get(struct db *db, const char *order_id,
					struct shipping_shipment *ret_shipment);
/* Inserts s (SCHEDULED, or a VOIDED tombstone); SHOP_E_CONFLICT when the
 * order already has a row. */
shop_status shipping_store_shipment_insert(struct db *db, const struct shipping_shipment *s,
					   int64_t now_ms);
/* from -> to for the order; SHOP_E_CONFLICT when it is not in state from. */
shop_status shipping_store_shipment_move(struct db *db, const char *order_id,
					 enum shipping_state from, enum shipping_state to,
					 int64_t now_ms);
/* Up to cap (and at most SHIPPING_DISPATCH_BATCH) SCHEDULED shipments with
 * dispatch_at_ms <= now_ms, earliest first, into ret_rows[0 .. *ret_n).
 * ret_rows is scratch space: its contents mean something only on SHOP_OK. */
shop_status shipping_store_due(struct db *db, int64_t now_ms, struct shipping_shipment *ret_rows,
			       size_t cap, size_t *ret_n);

#endif
