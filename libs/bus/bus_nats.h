/*
 * bus_nats.h - the credentials of libs/bus for programs that make their own
 * nats.c connection (the load generator), so that they authenticate exactly
 * as bus_connect does: SHOP_NATS_USER and SHOP_NATS_PASSWORD from the
 * environment, replies under _INBOX.<user> (bus.h).
 */
#ifndef SHOP_BUS_BUS_NATS_H
#define SHOP_BUS_BUS_NATS_H

#include "core/status.h"

#include <nats/nats.h>

/* Sets the user, password and inbox prefix of the environment's
 * credentials on opts; nothing when no user is set. *ret_user (may be NULL)
 * is the user or NULL, pointing into the environment. SHOP_E_INVALID for
 * malformed credentials (bus_connect's rules). */
shop_status bus_nats_options_auth(natsOptions *opts, const char **ret_user);

#endif
