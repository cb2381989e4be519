/*
 * inventory_catalogue.c - the products the inventory seeds on first start.
 *
 * The init hook inserts each product that does not exist yet (existing rows,
 * with whatever stock they have left, are never touched) and emits one
 * StockLevelChanged for each product it inserted, so the gateway's catalogue
 * fills itself on first start and is not disturbed by restarts. Adding a
 * product here adds it on the next start; changing one already seeded does
 * nothing (its row is the truth from then on).
 *
 * All prices are in EUR cents. Stock is chosen for the demo and the load
 * test:
 *
 *   SKU            name                       price (EUR)   stock
 *   SKU-CABLE      USB-C cable                       9.90   1000000  load test
 *   SKU-MOUSE      Wireless mouse                   29.00   1000000  load test
 *   SKU-KEYBOARD   Mechanical keyboard              89.00    100000
 *   SKU-HEADSET    Noise-cancelling headset        159.00        60
 *   SKU-MONITOR    27-inch monitor                 249.00        40
 *   SKU-LIMITED    Limited edition lamp            120.00         3  sells out: out_of_stock
 *   SKU-VINTAGE    Vintage typewriter              450.00         0  always out_of_stock
 *
 * Any other SKU is rejected with unknown_sku.
 */
#include "inventory.h"

const struct inventory_seed_product inventory_catalogue[] = {
	{ "SKU-CABLE", "USB-C cable", 990, "EUR", 1000000 },
	{ "SKU-MOUSE", "Wireless mouse", 2900, "EUR", 1000000 },
	{ "SKU-KEYBOARD", "Mechanical keyboard", 8900, "EUR", 100000 },
	{ "SKU-HEADSET", "Noise-cancelling headset", 15900, "EUR", 60 },
	{ "SKU-MONITOR", "27-inch monitor", 24900, "EUR", 40 },
	{ "SKU-LIMITED", "Limited edition lamp", 12000, "EUR", 3 },
	{ "SKU-VINTAGE", "Vintage typewriter", 45000, "EUR", 0 },
};

const size_t inventory_catalogue_len = sizeof(inventory_catalogue) / sizeof(inventory_catalogue[0]);

_Static_assert(sizeof(inventory_catalogue) / sizeof(inventory_catalogue[0]) <=
		       INVENTORY_CATALOGUE_MAX,
	       "the seed result has room for INVENTORY_CATALOGUE_MAX levels");
