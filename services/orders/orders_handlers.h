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
 *   SHOP_E_INVALID     the message passed its schema but makes no sense here,
 *                      or contradicts the order (the domain's REJECT: a
 *                      PaymentAuthorized for another amount or currency than
 *                      the order's total); dead-lettered with the reason
 *                      (svc_tx_reject), the order untouched
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

/* SHOP_ORDER_PAID_DEADLINE_MS: how long a PAID order may go without a move
 * (shipped, or shipping's answer to a cancellation request) before the
 * sweeper asks shipping to cancel it (reason timeout), and again after each
 * further such wait while unanswered (ORDERS_CANCEL_REQUESTS_MAX in all).
 * It must be well beyond shipping's SHOP_DISPATCH_DELAY_MS plus any backlog
 * shipping may be allowed to have, or orders merely waiting for their
 * dispatch get cancelled: an hour by default, against 2 s of delay; at
 * least a minute. Orders cannot read shipping's setting: the operator
 * keeps the two apart (docs/configuration.md). */
#define ORDERS_PAID_DEADLINE_DEFAULT_MS 3600000
#define ORDERS_PAID_DEADLINE_MIN_MS 60000
#define ORDERS_PAID_DEADLINE_MAX_MS 604800000 /* a week */

#define ORDERS_SWEEP_INTERVAL_MS 1000
/* Orders one sweep cancels at most, and PAID orders it asks about at most;
 * more wait for the next tick, so one sweep stays short however large a
 * backlog a long outage left behind. */
#define ORDERS_SWEEP_BATCH 100
/* Reads-and-decides of one fact when replicas keep moving the order first.
 * An order's state moves forward at most 4 + ORDERS_CANCEL_REQUESTS_MAX
 * times in its life (four statuses and each cancellation request), so one
 * attempt more always finds it still or terminal; exhausting them is a bug. */
#define ORDERS_TRANSITION_ATTEMPTS (5 + ORDERS_CANCEL_REQUESTS_MAX)

/* The service state behind svc_ctx(); NULL there means all defaults. */
struct orders_ctx {
	int64_t deadline_ms;      /* SHOP_ORDER_DEADLINE_MS */
	int64_t paid_deadline_ms; /* SHOP_ORDER_PAID_DEADLINE_MS */
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
 * PENDING/RESERVED orders, and asks shipping to cancel up to as many PAID
 * orders past their paid deadline, each in its own transaction. */
shop_status orders_sweep(struct svc *svc, struct db *db);

extern const struct svc_route orders_routes[];
extern const size_t orders_n_routes;
extern const struct svc_task orders_tasks[];
extern const size_t orders_n_tasks;

#endif
