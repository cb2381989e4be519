/*
 * test_inventory_store_pg.c - the inventory's reservation cases on a real
 * PostgreSQL server.
 *
 * Every case of tests/unit/test_inventory_store.c runs here unchanged
 * (service_pg_backend.h supplies a fresh schema per test), which is the
 * proof that the inventory's SQL means the same on both backends: the
 * conditional UPDATE ... RETURNING, ON CONFLICT DO NOTHING, the CHECK that
 * refuses negative stock, and the audit query. Races between connections
 * are in test_inventory_concurrency.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "service_pg_backend.h"

#include "../unit/test_inventory_store.c"
