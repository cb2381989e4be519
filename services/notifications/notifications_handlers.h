/*
 * notifications_handlers.h - notifications' message handlers.
 *
 * Each handler runs inside the runtime's transaction with the inbox record
 * of its message; main.c and the unit tests wire the route table below.
 */
#ifndef SHOP_NOTIFICATIONS_HANDLERS_H
#define SHOP_NOTIFICATIONS_HANDLERS_H

#include "svc/svc.h"

#include <stddef.h>

#define NOTIFICATIONS_SERVICE_NAME "notifications"

shop_status notifications_handle_order_placed(struct svc_tx *tx, const void *data);
shop_status notifications_handle_order_shipped(struct svc_tx *tx, const void *data);
shop_status notifications_handle_order_cancelled(struct svc_tx *tx, const void *data);

extern const struct svc_route notifications_routes[];
extern const size_t notifications_n_routes;

#endif
