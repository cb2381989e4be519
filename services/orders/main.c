/*
 * main.c - the orders service: the order aggregate and its state machine.
 *
 * Orders is the only writer of order state. It turns the gateway's commands
 * (PlaceOrder, CancelOrder) and the other services' events (StockReserved,
 * StockRejected, PaymentAuthorized, PaymentDeclined, ShipmentDispatched,
 * ShipmentCancelled) into transitions of one order (orders_domain.h), and
 * announces each one (OrderPlaced, OrderReserved, OrderPaid, OrderShipped,
 * OrderCancelled, and OrderCancellationRequested when a paid order's
 * cancellation must first stop its shipment). A periodic task cancels
 * orders that waited too long for stock or payment, and asks shipping to
 * cancel paid orders it left unanswered too long.
 * It serves no HTTP routes of its own, only the runtime's probes.
 *
 * Configuration (environment; the runtime's own variables are in svc.h and
 * docs/configuration.md):
 *   SHOP_ORDER_DEADLINE_MS  how long a PENDING or RESERVED order may wait
 *                           before it is cancelled with reason timeout;
 *                           default 60000, range 1000..86400000
 *   SHOP_ORDER_PAID_DEADLINE_MS  how long a PAID order may wait for its
 *                           shipment (or for shipping's answer to a
 *                           cancellation request) before orders asks
 *                           shipping to cancel it, reason timeout; well
 *                           beyond shipping's SHOP_DISPATCH_DELAY_MS;
 *                           default 3600000, range 60000..604800000
 *   SHOP_DB_URL             default sqlite:/var/lib/shop/orders.db
 *                           (compose points it at PostgreSQL)
 */
#include "orders_handlers.h"

#include "core/config.h"
#include "core/log.h"
#include "svc/svc.h"

int main(void)
{
	static struct orders_ctx ctx;
	struct svc_spec spec = {
		.name = "orders",
		.default_db_url = "sqlite:/var/lib/shop/orders.db",
		.migrations = orders_migrations,
		.n_migrations = orders_n_migrations,
		.routes = orders_routes,
		.n_routes = orders_n_routes,
		.tasks = orders_tasks,
		.n_tasks = orders_n_tasks,
		.ctx = &ctx,
	};

	log_init("orders", LOG_LVL_INFO);
	if (config_int("SHOP_ORDER_DEADLINE_MS", ORDERS_DEADLINE_DEFAULT_MS, ORDERS_DEADLINE_MIN_MS,
		       ORDERS_DEADLINE_MAX_MS, &ctx.deadline_ms) != SHOP_OK) {
		log_error(NULL, "SHOP_ORDER_DEADLINE_MS must be an integer in [%d, %d]",
			  ORDERS_DEADLINE_MIN_MS, ORDERS_DEADLINE_MAX_MS);
		return 1;
	}
	if (config_int("SHOP_ORDER_PAID_DEADLINE_MS", ORDERS_PAID_DEADLINE_DEFAULT_MS,
		       ORDERS_PAID_DEADLINE_MIN_MS, ORDERS_PAID_DEADLINE_MAX_MS,
		       &ctx.paid_deadline_ms) != SHOP_OK) {
		log_error(NULL, "SHOP_ORDER_PAID_DEADLINE_MS must be an integer in [%d, %d]",
			  ORDERS_PAID_DEADLINE_MIN_MS, ORDERS_PAID_DEADLINE_MAX_MS);
		return 1;
	}
	return svc_main(&spec);
}
