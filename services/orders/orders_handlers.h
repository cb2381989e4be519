/*
 * orders_handlers.h - what the orders service does with each message, and
 * its deadline sweeper.
 *
 * Every handler runs inside the runtime's transaction together with the
 * inbox record of its message (libs/svc), reads the order, asks the domain
 * (orders_decide) and, only when the answer is APPLY, moves the order with a
 * guarded update and emits the matching event through the outbox. Outcomes:
 *   SHOP_OK            done, or a no-op (duplicate, stale, illegal: ignored)
 *   SHOP_E_NOT_READY   the order, or the state this fact follows, is not
 *                      there yet: redelivered later, dead-lettered at last
 *   SHOP_E_INVALID     the message passed its schema but makes no sense here
 *   SHOP_E_UNAVAILABLE the order kept moving under us: retry
 *   anything else      a database status, passed through
 *
 * The routes and the task are exported as arrays so that main.c and the unit
 * tests wire exactly the same service.
 */
#ifndef SHOP_ORDERS_HANDLERS_H
#define SHOP_ORDERS_HANDLERS_H

#include "orders_domain.h"
#include "orders_store.h"
#include "svc/svc.h"

#include <stddef.h>
#include <stdint.h>

/* SHOP_ORDER_DEADLINE_MS: how long an order may wait for stock and payment
 * before the sweeper cancels it (reason timeout). */
#define ORDERS_DEADLINE_DEFAULT_MS 60000
#define ORDERS_DEADLINE_MIN_MS 1000
#define ORDERS_DEADLINE_MAX_MS 86400000

#define ORDERS_SWEEP_INTERVAL_MS 1000
/* Orders one sweep cancels at most; more wait for the next tick, so one
 * sweep stays short however large a backlog a long outage left behind. */
#define ORDERS_SWEEP_BATCH 100
/* Reads-and-decides of one fact when replicas keep moving the order first.
 * An order's state moves forward at most five times in its life (four
 * statuses and the cancellation mark), so a sixth attempt always finds it
 * still or terminal; exhausting them is a bug. */
#define ORDERS_TRANSITION_ATTEMPTS 6

/* The service state behind svc_ctx(); NULL there means all defaults. */
struct orders_ctx {
	int64_t deadline_ms;
};

/* Routes: each takes the generated struct of its message. */
shop_status orders_handle_place_order(struct svc_tx *tx, const void *data);
shop_status orders_handle_cancel_order(struct svc_tx *tx, const void *data);
shop_status orders_handle_stock_reserved(struct svc_tx *tx, const void *data);
shop_status orders_handle_stock_rejected(struct svc_tx *tx, const void *data);
shop_status orders_handle_payment_authorized(struct svc_tx *tx, const void *data);
shop_status orders_handle_payment_declined(struct svc_tx *tx, const void *data);
shop_status orders_handle_shipment_dispatched(struct svc_tx *tx, const void *data);
shop_status orders_handle_shipment_cancelled(struct svc_tx *tx, const void *data);

/* Applies one fact to an existing order inside tx: read, decide, guarded
 * update, emit. FACTS carries the columns the input brings (its status and
 * reason members are ignored: the domain chooses them). */
shop_status orders_advance(struct svc_tx *tx, const char *order_id, const struct orders_input *in,
			   const struct orders_change *facts);

/* The "deadline-sweeper" task: cancels up to ORDERS_SWEEP_BATCH overdue
 * PENDING/RESERVED orders, each in its own transaction. */
shop_status orders_sweep(struct svc *svc, struct db *db);

extern const struct svc_route orders_routes[];
extern const size_t orders_n_routes;
extern const struct svc_task orders_tasks[];
extern const size_t orders_n_tasks;

#endif
