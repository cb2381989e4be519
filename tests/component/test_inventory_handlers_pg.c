/*
 * test_inventory_handlers_pg.c - the inventory's handler cases on a real
 * PostgreSQL server.
 *
 * Every case of tests/unit/test_inventory_handlers.c runs here unchanged
 * (service_pg_backend.h supplies a fresh schema per test): real envelopes
 * through the runtime's inbox, the handlers, and the events in the outbox.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "service_pg_backend.h"

#include "../unit/test_inventory_handlers.c"
