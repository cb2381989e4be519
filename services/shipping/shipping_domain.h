/*
 * shipping_domain.h - what shipping decides, with no I/O.
 *
 * One shipment per order. Its life is a one-way street:
 *
 *   (none) --OrderPaid--> SCHEDULED --dispatcher--> DISPATCHED
 *      |                      |
 *      +--cancel--> VOIDED    +--cancel--> CANCELLED
 *
 * "cancel" is OrderCancellationRequested (a paid order: shipping decides
 * whether it is still possible) or OrderCancelled (an order cancelled
 * before payment, or after shipping answered a request). SCHEDULED ->
 * DISPATCHED and SCHEDULED -> CANCELLED are the same guarded move from
 * SCHEDULED, so a cancellation and the dispatcher cannot both win.
 *
 * VOIDED is a tombstone: the order was cancelled before any shipment was
 * scheduled, so an OrderPaid arriving later schedules nothing. Keeping
 * the tombstone in the shipments table (same primary key as a real shipment)
 * is what makes a cancellation and a payment handled at the same moment by
 * two threads or replicas safe: both insert the same key, one of them wins,
 * the other finds the row. Every state except SCHEDULED is final, so every
 * decision below is a guarded transition and anything else is a no-op.
 */
#ifndef SHOP_SHIPPING_DOMAIN_H
#define SHOP_SHIPPING_DOMAIN_H

#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SHOP_DISPATCH_DELAY_MS: time from scheduling to dispatch. */
#define SHIPPING_DISPATCH_DELAY_DEFAULT_MS 2000
#define SHIPPING_DISPATCH_DELAY_MIN_MS 0
#define SHIPPING_DISPATCH_DELAY_MAX_MS 86400000 /* one day */

enum shipping_state {
	SHIPPING_STATE_NONE,       /* no row: nothing known about the order's shipment */
	SHIPPING_STATE_SCHEDULED,  /* waiting for its dispatch time */
	SHIPPING_STATE_DISPATCHED, /* final: handed to the carrier */
	SHIPPING_STATE_CANCELLED,  /* final: was scheduled, cancelled before dispatch */
	SHIPPING_STATE_VOIDED,     /* final: cancelled before anything was scheduled */
};

/* The status column's text; NULL for SHIPPING_STATE_NONE (no row). */
const char *shipping_state_name(enum shipping_state state);
/* SHOP_E_INVALID for text that is no stored status. */
shop_status shipping_state_parse(const char *text, enum shipping_state *ret_state);

/* What to do with OrderPaid. */
enum shipping_schedule_decision {
	SHIPPING_SCHEDULE_CREATE,         /* schedule a shipment now */
	SHIPPING_SCHEDULE_WAIT_ADDRESS,   /* OrderPlaced not seen yet: retry later */
	SHIPPING_SCHEDULE_SKIP_CANCELLED, /* the order was cancelled first: nothing to ship */
	SHIPPING_SCHEDULE_SKIP_EXISTS,    /* already scheduled (or further): duplicate */
};
enum shipping_schedule_decision shipping_decide_schedule(enum shipping_state state,
							 bool address_known);

/* What to do with OrderCancellationRequested or OrderCancelled. */
enum shipping_cancel_decision {
	SHIPPING_CANCEL_SHIPMENT, /* SCHEDULED -> CANCELLED, emit ShipmentCancelled */
	SHIPPING_CANCEL_REMEMBER, /* no shipment yet: leave a VOIDED tombstone (and
				   * answer a request with ShipmentCancelled) */
	SHIPPING_CANCEL_TOO_LATE, /* already dispatched: nothing to undo or emit */
	SHIPPING_CANCEL_ALREADY,  /* already cancelled or voided: duplicate */
};
enum shipping_cancel_decision shipping_decide_cancel(enum shipping_state state);

/* Whether the dispatcher should dispatch a shipment now (the SQL of the
 * dispatcher's batch query says the same; this is its readable form). */
bool shipping_dispatch_is_due(enum shipping_state state, int64_t dispatch_at_ms, int64_t now_ms);
/* now + delay, saturating instead of overflowing. delay < 0 counts as 0. */
int64_t shipping_dispatch_at(int64_t now_ms, int64_t delay_ms);

#endif
