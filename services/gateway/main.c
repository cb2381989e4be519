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

int main(void)
{
	static struct gateway_ctx ctx;
	struct svc_spec spec = {
		.name = "gateway",
		.default_db_url = "sqlite:/var/lib/shop/gateway.db",
		.migrations = gateway_migrations,
		.n_migrations = gateway_n_migrations,
		.any_route = gateway_project,
		.tasks = gateway_tasks,
		.n_tasks = gateway_n_tasks,
		.http = gateway_http,
		/* A waiting GET is a pending request, holding no thread
		 * (gateway_long_polls.c); a POST holds a pool thread during its
		 * group commit. */
		.http_pool = true,
		.http_route = gateway_route_of,
		.stop = gateway_stop,
		.after_commit = gateway_after_commit,
		.ctx = &ctx,
	};

	gateway_ctx_init(&ctx);
	int rc = svc_main(&spec);
	gateway_ctx_release(&ctx);
	return rc;
}
