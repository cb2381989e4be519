/*
 * payments_handlers.h - payments' message handlers.
 *
 * Handlers run inside the runtime's transaction together with the inbox
 * record of their message (struct svc_tx). Charges and refunds go through
 * the provider in svc_ctx() (struct payments_ctx), which commits on its own
 * path: a retried message meets the provider's memory of earlier attempts.
 * main.c wires the route table below into a struct svc_spec; the unit tests
 * wire the same table into a detached runtime.
 */
#ifndef SHOP_PAYMENTS_HANDLERS_H
#define SHOP_PAYMENTS_HANDLERS_H

#include "payments_provider.h"
#include "svc/svc.h"

#include <stddef.h>

#define PAYMENTS_SERVICE_NAME "payments"
#define PAYMENTS_DEFAULT_DB_URL "sqlite:/var/lib/shop/payments.db"
/* Read-decide-write rounds one message may take. Only the tombstone insert
 * can lose a race (to a concurrent OrderPlaced: the row then exists and the
 * next round sees it under its lock), so two rounds always end. */
#define PAYMENTS_DECIDE_ATTEMPTS 2

/* The service state behind svc_ctx(). */
struct payments_ctx {
	struct payments_provider *provider;
};

shop_status payments_handle_order_placed(struct svc_tx *tx, const void *data);
shop_status payments_handle_stock_reserved(struct svc_tx *tx, const void *data);
shop_status payments_handle_order_cancelled(struct svc_tx *tx, const void *data);

extern const struct svc_route payments_routes[];
extern const size_t payments_n_routes;

#endif
