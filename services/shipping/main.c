/*
 * shipping - schedules a shipment once an order is paid and dispatches it
 * after a delay; cancels a shipment not yet dispatched.
 *
 * Consumes, all from the ORDERS stream, OrderPlaced (keeps a copy of the
 * delivery address), OrderPaid (schedules), OrderCancellationRequested
 * (cancels a scheduled shipment, or finds it dispatched) and OrderCancelled
 * (cancels); emits ShipmentScheduled, ShipmentDispatched and
 * ShipmentCancelled. The
 * "dispatcher" task dispatches due shipments; their due time is stored, so
 * the delay survives restarts.
 *
 * Configuration (environment; the runtime's own settings, SHOP_DB_URL
 * among them, are read by libs/svc):
 *   SHOP_DISPATCH_DELAY_MS  time from scheduling to dispatch, in ms;
 *                           default 2000, range 0..86400000 (one day).
 *   SHOP_DB_URL             default sqlite:/var/lib/shop/shipping.db
 */
#include "core/config.h"
#include "shipping_domain.h"
#include "shipping_handlers.h"
#include "shipping_store.h"
#include "svc/svc.h"

int main(void)
{
	static struct shipping_ctx ctx;
	if (config_int("SHOP_DISPATCH_DELAY_MS", SHIPPING_DISPATCH_DELAY_DEFAULT_MS,
		       SHIPPING_DISPATCH_DELAY_MIN_MS, SHIPPING_DISPATCH_DELAY_MAX_MS,
		       &ctx.dispatch_delay_ms) != SHOP_OK)
		return 2; /* config_int named the variable on stderr */

	const struct svc_spec spec = {
		.name = SHIPPING_SERVICE_NAME,
		.default_db_url = "sqlite:/var/lib/shop/shipping.db",
		.migrations = shipping_migrations,
		.n_migrations = shipping_n_migrations,
		.routes = shipping_routes,
		.n_routes = shipping_n_routes,
		.tasks = shipping_tasks,
		.n_tasks = shipping_n_tasks,
		.ctx = &ctx,
	};
	return svc_main(&spec);
}
