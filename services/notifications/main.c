/*
 * notifications - records one e-mail per (order, kind) and announces it.
 *
 * Consumes OrderPlaced (order_received, and keeps the recipient),
 * OrderShipped (order_shipped) and OrderCancelled (order_cancelled); emits
 * NotificationSent. E-mails are rendered and stored, not sent: the stored
 * row is what a mailer would deliver, and its unique (order_id, kind) key is
 * what makes a second e-mail impossible.
 *
 * Configuration (environment; read by libs/svc):
 *   SHOP_DB_URL  default sqlite:/var/lib/shop/notifications.db
 * The service has no settings of its own.
 */
#include "notifications_handlers.h"
#include "notifications_store.h"
#include "svc/svc.h"

int main(void)
{
	const struct svc_spec spec = {
		.name = NOTIFICATIONS_SERVICE_NAME,
		.default_db_url = "sqlite:/var/lib/shop/notifications.db",
		.migrations = notifications_migrations,
		.n_migrations = notifications_n_migrations,
		.routes = notifications_routes,
		.n_routes = notifications_n_routes,
	};
	return svc_main(&spec);
}
