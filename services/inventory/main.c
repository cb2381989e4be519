/*
 * main.c - the inventory service: products, prices, stock and reservations.
 *
 * Consumes OrderPlaced (reserve every line or none), OrderCancelled and
 * PaymentDeclined (release a held reservation exactly once, or remember the
 * cancellation so a late OrderPlaced reserves nothing), and emits
 * StockReserved, StockRejected, StockReleased and StockLevelChanged through
 * its outbox. On first start it seeds the catalogue (inventory_catalogue.c)
 * and announces each product with a StockLevelChanged. The routes live in
 * inventory_handlers.c so the unit tests drive exactly these.
 *
 * Configuration: the inventory has no settings of its own; the runtime
 * (libs/svc) reads, from the environment:
 *   SHOP_DB_URL                database; default sqlite:/var/lib/shop/inventory.db
 *                              (compose: postgresql://inventory:...@postgres/inventory)
 *   SHOP_NATS_URL              NATS server(s); default nats://127.0.0.1:4222
 *   SHOP_HTTP_BIND, SHOP_HTTP_PORT  health probes; default 0.0.0.0:8080
 *   SHOP_STREAM_REPLICAS       replicas of the streams it declares; default 1
 *   SHOP_OUTBOX_RETENTION_MS   how long published events are kept; default 24 h
 *   SHOP_LOG_LEVEL             debug, info (default), warn or error
 */
#include "inventory.h"

#include "svc/svc.h"

int main(void)
{
	const struct svc_spec spec = {
		.name = "inventory",
		.default_db_url = "sqlite:/var/lib/shop/inventory.db",
		.migrations = inventory_migrations,
		.n_migrations = inventory_n_migrations,
		.routes = inventory_routes,
		.n_routes = inventory_n_routes,
		.init = inventory_init,
		.batch = &inventory_batch_hooks,
	};
	return svc_main(&spec);
}
