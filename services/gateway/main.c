/*
 * main.c - the gateway: the shop's HTTP API and its read models.
 *
 * Configuration (environment):
 *   SHOP_DB_URL      database (default sqlite:/var/lib/shop/gateway.db)
 *   SHOP_NATS_URL    NATS servers (default nats://127.0.0.1:4222)
 *   SHOP_HTTP_PORT   API and probes (default 8080)
 *   SHOP_LOG_LEVEL   debug, info, warn or error (default info)
 * and the runtime's settings listed in docs/configuration.md.
 */
#include "gateway.h"

static const struct svc_spec gateway_spec = {
	.name = "gateway",
	.default_db_url = "sqlite:/var/lib/shop/gateway.db",
	.migrations = gateway_migrations,
	.n_migrations = 0, /* set in main: the count is not a constant expression */
	.any_route = gateway_project,
	.http = gateway_http,
};

int main(void)
{
	struct svc_spec spec = gateway_spec;
	spec.n_migrations = gateway_n_migrations;
	spec.tasks = gateway_tasks;
	spec.n_tasks = gateway_n_tasks;
	return svc_main(&spec);
}
