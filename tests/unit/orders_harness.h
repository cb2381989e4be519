/*
 * orders_harness.h - what the orders suites share: the service's spec as
 * main.c wires it, the subjects of its events, and the messages other
 * services send it about one order, all telling one consistent story (two
 * items, reserved at 2599 EUR cents, paid that amount).
 *
 * Included after <cmocka.h> by tests/unit/test_orders_handlers.c and
 * tests/component/test_orders_postgres.c. The builders keep the short names
 * of the messages they build: cases read as the saga they play.
 */
#ifndef SHOP_TESTS_ORDERS_HARNESS_H
#define SHOP_TESTS_ORDERS_HARNESS_H

#include <stdint.h>
#include <stdio.h>

#include "../../services/orders/orders_handlers.h"
#include "service_harness.h"

#define SUBJ_PLACED "orders.event.order_placed.v2"
#define SUBJ_RESERVED "orders.event.order_reserved.v1"
#define SUBJ_PAID "orders.event.order_paid.v1"
#define SUBJ_SHIPPED "orders.event.order_shipped.v1"
#define SUBJ_CANCELLED "orders.event.order_cancelled.v1"
#define SUBJ_CANCELLATION_REQUESTED "orders.event.order_cancellation_requested.v1"

#define DEADLINE_MS 60000
#define PAID_DEADLINE_MS 600000 /* far from DEADLINE_MS: each case knows which it meets */
#define ORDER_TOTAL_CENTS 2599  /* what stock_reserved prices the order at */

/* The spec main.c wires, on DB_URL, with CTX's deadlines set to DEADLINE_MS
 * and PAID_DEADLINE_MS. */
static inline void orders_harness_spec_fill(struct svc_spec *spec, struct orders_ctx *ctx,
					    const char *db_url)
{
	ctx->deadline_ms = DEADLINE_MS;
	ctx->paid_deadline_ms = PAID_DEADLINE_MS;
	*spec = (struct svc_spec){
		.name = "orders",
		.default_db_url = db_url,
		.migrations = orders_migrations,
		.n_migrations = orders_n_migrations,
		.routes = orders_routes,
		.n_routes = orders_n_routes,
		.tasks = orders_tasks,
		.n_tasks = orders_n_tasks,
		.ctx = ctx,
	};
}

/* PlaceOrder (v2: no card) for ORDER_ID: SKU-1 x 2 and SKU-2 x 1 for
 * ada@example.com. */
static inline void orders_harness_place_fill(struct ct_place_order_v2 *c, const char *order_id)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->order_id, sizeof(c->order_id), "%s", order_id);
	snprintf(c->customer_id, sizeof(c->customer_id), "cust-42");
	snprintf(c->email, sizeof(c->email), "ada@example.com");
	snprintf(c->items[0].sku, sizeof(c->items[0].sku), "SKU-1");
	c->items[0].quantity = 2;
	snprintf(c->items[1].sku, sizeof(c->items[1].sku), "SKU-2");
	c->items[1].quantity = 1;
	c->items_len = 2;
	harness_address_fill(&c->shipping_address);
}

/* The same order as a PlaceOrder v1, as stored before the upgrade: with
 * the card token ORDERS_HARNESS_V1_TOKEN. */
#define ORDERS_HARNESS_V1_TOKEN "tok_visa_from_v1"
static inline void orders_harness_place_v1_fill(struct ct_place_order *c, const char *order_id)
{
	struct ct_place_order_v2 v2;
	orders_harness_place_fill(&v2, order_id);
	memset(c, 0, sizeof(*c));
	memcpy(c->order_id, v2.order_id, sizeof(c->order_id));
	memcpy(c->customer_id, v2.customer_id, sizeof(c->customer_id));
	memcpy(c->email, v2.email, sizeof(c->email));
	memcpy(c->items, v2.items, sizeof(c->items));
	c->items_len = v2.items_len;
	c->shipping_address = v2.shipping_address;
	snprintf(c->payment.card_token, sizeof(c->payment.card_token), ORDERS_HARNESS_V1_TOKEN);
}

static inline struct ct_stock_reserved stock_reserved(const char *order_id)
{
	struct ct_stock_reserved ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	snprintf(ev.lines[0].sku, sizeof(ev.lines[0].sku), "SKU-1");
	ev.lines[0].quantity = 2;
	ev.lines[0].unit_price_cents = 1000;
	snprintf(ev.lines[1].sku, sizeof(ev.lines[1].sku), "SKU-2");
	ev.lines[1].quantity = 1;
	ev.lines[1].unit_price_cents = 599;
	ev.lines_len = 2;
	ev.total_cents = ORDER_TOTAL_CENTS;
	snprintf(ev.currency, sizeof(ev.currency), "EUR");
	return ev;
}

static inline struct ct_stock_rejected stock_rejected(const char *order_id, const char *reason)
{
	struct ct_stock_rejected ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
	snprintf(ev.skus[0], sizeof(ev.skus[0]), "SKU-2");
	ev.skus_len = 1;
	return ev;
}

/* With a fresh payment id, also copied to PAYMENT_ID. */
static inline struct ct_payment_authorized payment_authorized(const char *order_id,
							      char *payment_id)
{
	struct ct_payment_authorized ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	ids_uuid7(payment_id);
	snprintf(ev.payment_id, sizeof(ev.payment_id), "%s", payment_id);
	ev.amount_cents = ORDER_TOTAL_CENTS;
	snprintf(ev.currency, sizeof(ev.currency), "EUR");
	ev.attempts = 1;
	return ev;
}

static inline struct ct_payment_declined payment_declined(const char *order_id)
{
	struct ct_payment_declined ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	snprintf(ev.reason, sizeof(ev.reason), "card_declined");
	ev.amount_cents = ORDER_TOTAL_CENTS;
	snprintf(ev.currency, sizeof(ev.currency), "EUR");
	return ev;
}

/* With a fresh shipment id, also copied to SHIPMENT_ID. */
static inline struct ct_shipment_dispatched shipment_dispatched(const char *order_id,
								char *shipment_id)
{
	struct ct_shipment_dispatched ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	ids_uuid7(shipment_id);
	snprintf(ev.shipment_id, sizeof(ev.shipment_id), "%s", shipment_id);
	return ev;
}

/* Shipping's answer to a requested cancellation: the shipment (a fresh id)
 * will not leave. */
static inline struct ct_shipment_cancelled shipment_cancelled(const char *order_id)
{
	struct ct_shipment_cancelled ev = { 0 };
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
	ids_uuid7(ev.shipment_id);
	return ev;
}

static inline struct ct_cancel_order cancel_order(const char *order_id)
{
	struct ct_cancel_order cmd = { 0 };
	snprintf(cmd.order_id, sizeof(cmd.order_id), "%s", order_id);
	return cmd;
}

#endif
