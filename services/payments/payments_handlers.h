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
/* Read-decide-write rounds one message may take. Only an insert can lose a
 * race (the first SubmitCard, StockReserved or OrderCancelled of an order,
 * to another of them: the row then exists and the next round sees it under
 * its lock), so two rounds always end. */
#define PAYMENTS_DECIDE_ATTEMPTS 2
/* How often the reconciliation reads the provider's open charges, and how
 * many one tick reads: it walks the whole ledger a page per tick, so a charge
 * left on a cancelled order is refunded within
 * (open charges / PAYMENTS_RECONCILE_BATCH + 1) ticks. */
#define PAYMENTS_RECONCILE_INTERVAL_MS 5000
#define PAYMENTS_RECONCILE_BATCH 64

/* The service state behind svc_ctx(). */
struct payments_ctx {
	struct payments_provider *provider;
	/* Where the reconciliation's walk of the ledger goes on: the last key
	 * it read, "" to start over. Only the reconciliation thread uses it. */
	char reconcile_after[PAYMENTS_PROVIDER_KEY_MAX + 1];
};

shop_status payments_handle_submit_card(struct svc_tx *tx, const void *data);
shop_status payments_handle_stock_reserved(struct svc_tx *tx, const void *data);
shop_status payments_handle_order_cancelled(struct svc_tx *tx, const void *data);

/* The "reconciliation" task: refunds the open ledger charges of cancelled
 * payments, one page of the ledger per tick. Safe with several replicas: each
 * refund happens under the payment's row lock, and the provider refunds a key
 * once whoever asks. */
shop_status payments_reconcile(struct svc *svc, struct db *db);

extern const struct svc_route payments_routes[];
extern const size_t payments_n_routes;
extern const struct svc_task payments_tasks[];
extern const size_t payments_n_tasks;

#endif
