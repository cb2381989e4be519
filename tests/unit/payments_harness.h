/*
 * payments_harness.h - what the payments suites share: the service's spec as
 * main.c wires it, and the three messages it consumes, built and handled
 * through svc_tx_run on a given connection as the runtime would.
 *
 * Included after <cmocka.h> by tests/unit/test_payments_handlers.c and
 * tests/component/test_payments_postgres.c.
 */
#ifndef SHOP_TESTS_PAYMENTS_HARNESS_H
#define SHOP_TESTS_PAYMENTS_HARNESS_H

#include <stdint.h>
#include <stdio.h>

#include "../../services/payments/payments_handlers.h"
#include "../../services/payments/payments_provider.h"
#include "../../services/payments/payments_store.h"
#include "service_harness.h"

#define PAYMENTS_HARNESS_CURRENCY "EUR"

/* The spec main.c wires, on DB_URL, charging through CTX's provider. */
static inline void payments_harness_spec_fill(struct svc_spec *spec, struct payments_ctx *ctx,
					      const char *db_url)
{
	*spec = (struct svc_spec){
		.name = PAYMENTS_SERVICE_NAME,
		.default_db_url = db_url,
		.migrations = payments_migrations,
		.n_migrations = payments_n_migrations,
		.routes = payments_routes,
		.n_routes = payments_n_routes,
		.tasks = payments_tasks,
		.n_tasks = payments_n_tasks,
		.ctx = ctx,
	};
}

/* SubmitCard for ORDER_ID with CARD_TOKEN, handled on DB. */
static inline shop_status payments_harness_submit_card(struct svc *svc, struct db *db,
						       const char *order_id, const char *card_token)
{
	struct ct_submit_card m;
	memset(&m, 0, sizeof(m));
	snprintf(m.order_id, sizeof(m.order_id), "%s", order_id);
	snprintf(m.customer_id, sizeof(m.customer_id), "cust-1");
	snprintf(m.payment.card_token, sizeof(m.payment.card_token), "%s", card_token);
	return harness_run(svc, db, payments_handle_submit_card, &m);
}

/* StockReserved for ORDER_ID: one SKU-1 at TOTAL. */
static inline void payments_harness_stock_reserved_fill(struct ct_stock_reserved *m,
							const char *order_id, int64_t total)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->order_id, sizeof(m->order_id), "%s", order_id);
	snprintf(m->lines[0].sku, sizeof(m->lines[0].sku), "SKU-1");
	m->lines[0].quantity = 1;
	m->lines[0].unit_price_cents = total;
	m->lines_len = 1;
	m->total_cents = total;
	snprintf(m->currency, sizeof(m->currency), PAYMENTS_HARNESS_CURRENCY);
}

/* The same, handled on DB. */
static inline shop_status payments_harness_stock_reserved(struct svc *svc, struct db *db,
							  const char *order_id, int64_t total)
{
	struct ct_stock_reserved m;
	payments_harness_stock_reserved_fill(&m, order_id, total);
	return harness_run(svc, db, payments_handle_stock_reserved, &m);
}

/* OrderCancelled for ORDER_ID by its customer, handled on DB. */
static inline shop_status payments_harness_order_cancelled(struct svc *svc, struct db *db,
							   const char *order_id)
{
	struct ct_order_cancelled m;
	memset(&m, 0, sizeof(m));
	snprintf(m.order_id, sizeof(m.order_id), "%s", order_id);
	snprintf(m.reason, sizeof(m.reason), "customer_cancelled");
	return harness_run(svc, db, payments_handle_order_cancelled, &m);
}

#endif
