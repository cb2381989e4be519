/*
 * shipping_handlers.h - shipping's message handlers and its dispatcher task.
 *
 * Handlers run inside the runtime's transaction together with the inbox
 * record of their message (struct svc_tx); the dispatcher runs every
 * SHIPPING_DISPATCH_POLL_MS in its own thread and gives each shipment its
 * own transaction. main.c wires the tables below into a struct svc_spec;
 * the unit tests wire the same tables into a detached runtime.
 */
#ifndef SHOP_SHIPPING_HANDLERS_H
#define SHOP_SHIPPING_HANDLERS_H

#include "svc/svc.h"

#include <stddef.h>
#include <stdint.h>

#define SHIPPING_SERVICE_NAME "shipping"
/* How often the dispatcher looks for due shipments: the dispatch happens at
 * most this late after its due time (plus the relay's publishing delay). */
#define SHIPPING_DISPATCH_POLL_MS 200
/* Batches of SHIPPING_DISPATCH_BATCH one dispatcher run takes at most before
 * it yields (a backlog is worked off over several runs, and a run stays
 * short enough not to hold up shutdown). */
#define SHIPPING_DISPATCH_ROUNDS_MAX 16
/* Read-decide-write rounds one message may take. A guarded write that finds
 * the row changed makes the handler decide again; shipment states only move
 * forward from (none) through at most two steps, so three rounds always end. */
#define SHIPPING_DECIDE_ATTEMPTS 3

/* The service state behind svc_ctx(). */
struct shipping_ctx {
	int64_t dispatch_delay_ms; /* SHOP_DISPATCH_DELAY_MS */
};

shop_status shipping_handle_order_placed(struct svc_tx *tx, const void *data);
shop_status shipping_handle_order_paid(struct svc_tx *tx, const void *data);
shop_status shipping_handle_order_cancellation_requested(struct svc_tx *tx, const void *data);
shop_status shipping_handle_order_cancelled(struct svc_tx *tx, const void *data);

/* What one dispatcher pass found and did. */
struct shipping_dispatch_report {
	size_t due;        /* SCHEDULED shipments due at now_ms (at most one batch) */
	size_t dispatched; /* of those, moved to DISPATCHED by this pass */
};
/* One batch: dispatches the shipments due at now_ms, each in its own
 * transaction. The task below calls it with the wall clock; tests with a
 * chosen time. */
shop_status shipping_dispatch_due(struct svc *svc, struct db *db, int64_t now_ms,
				  struct shipping_dispatch_report *ret_report);
/* The "dispatcher" task. */
shop_status shipping_dispatcher_run(struct svc *svc, struct db *db);

extern const struct svc_route shipping_routes[];
extern const size_t shipping_n_routes;
extern const struct svc_task shipping_tasks[];
extern const size_t shipping_n_tasks;

#endif
