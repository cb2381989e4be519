/*
 * payments - charges the reserved total of an order through the simulated
 * card provider, and refunds it when the order is cancelled after payment.
 *
 * Consumes SubmitCard (the card token, from the confidential stream CARDS:
 * no other service ever sees it), StockReserved (the total to charge;
 * whichever of the two arrives second charges) and OrderCancelled (refunds
 * a charge, or cancels an uncharged payment); emits
 * PaymentAuthorized, PaymentDeclined and PaymentRefunded. A periodic
 * reconciliation refunds any charge the provider's ledger holds for a
 * cancelled payment.
 *
 * Configuration (environment; the runtime's own settings are read by
 * libs/svc):
 *   SHOP_DB_URL                    the service's database; default
 *                                  sqlite:/var/lib/shop/payments.db
 *   SHOP_PAYMENTS_PROVIDER_DB_URL  the simulated provider's ledger; default
 *                                  derived from SHOP_DB_URL: the same
 *                                  PostgreSQL database, or a sibling SQLite
 *                                  file (payments.db -> payments-provider.db,
 *                                  since one SQLite file has one writer and
 *                                  the handler's transaction holds it while
 *                                  it calls the provider).
 * The provider connects on first use, so a database still starting is a
 * retried message, not a failed start. A ledger in the service's own
 * PostgreSQL database is migrated with the service's tables.
 */
#include "core/config.h"
#include "core/xalloc.h"
#include "payments_handlers.h"
#include "payments_provider.h"
#include "payments_store.h"
#include "svc/svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	static struct payments_ctx ctx;
	char derived[PAYMENTS_PROVIDER_URL_MAX + 1];
	const char *service_url = config_str("SHOP_DB_URL", PAYMENTS_DEFAULT_DB_URL);

	if (payments_provider_url_derive(service_url, derived, sizeof(derived)) != SHOP_OK) {
		fprintf(stderr, "payments: SHOP_DB_URL is not a usable database URL\n");
		return 2;
	}
	const char *provider_url = config_str("SHOP_PAYMENTS_PROVIDER_DB_URL", derived);
	if (payments_provider_url_check(service_url, provider_url) != SHOP_OK) {
		fprintf(stderr,
			"payments: SHOP_PAYMENTS_PROVIDER_DB_URL must not be the service's "
			"own SQLite file (one writer per file: charges would never commit)\n");
		return 2;
	}
	ctx.provider = payments_provider_create(provider_url);

	/* A ledger in the service's own PostgreSQL database is migrated with
	 * the service, by the owner role (SHOP_DB_OWNER_URL): the role both
	 * connect as at run time cannot create its table. */
	size_t n_migrations = payments_n_migrations;
	struct db_migration *migrations = xcalloc(payments_n_migrations +
							  payments_provider_n_migrations,
						  sizeof(*migrations));
	memcpy(migrations, payments_migrations, payments_n_migrations * sizeof(*migrations));
	if (strcmp(provider_url, service_url) == 0 && strncmp(service_url, "sqlite:", 7) != 0) {
		memcpy(migrations + n_migrations, payments_provider_migrations,
		       payments_provider_n_migrations * sizeof(*migrations));
		n_migrations += payments_provider_n_migrations;
		payments_provider_migrated_by_service(ctx.provider);
	}

	const struct svc_spec spec = {
		.name = PAYMENTS_SERVICE_NAME,
		.default_db_url = PAYMENTS_DEFAULT_DB_URL,
		.migrations = migrations,
		.n_migrations = n_migrations,
		.routes = payments_routes,
		.n_routes = payments_n_routes,
		.tasks = payments_tasks,
		.n_tasks = payments_n_tasks,
		.ctx = &ctx,
	};
	int rc = svc_main(&spec);
	payments_provider_destroy(ctx.provider);
	free(migrations);
	return rc;
}
