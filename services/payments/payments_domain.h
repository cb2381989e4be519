/*
 * payments_domain.h - what payments decides, without I/O.
 *
 * A payment moves through a small state machine, one row per order:
 *
 *   (none) --OrderPlaced--> NEW --StockReserved--> CHARGED --OrderCancelled--> REFUNDED
 *                            |                 \-> DECLINED
 *                            \--OrderCancelled--> CANCELLED
 *   (none) --OrderCancelled--> CANCELLED (a tombstone: a late OrderPlaced
 *                                         finds the row and leaves it alone)
 *
 * Messages arrive twice, late or out of order; every (state, message) pair
 * that is not a legal transition is a no-op, except StockReserved before
 * OrderPlaced, which waits (the intent carries the card token the charge
 * needs). Only NEW is ever charged, so a cancelled intent charges nothing
 * and a charged one is never charged again.
 */
#ifndef SHOP_PAYMENTS_DOMAIN_H
#define SHOP_PAYMENTS_DOMAIN_H

#include "core/status.h"

#include <stdbool.h>
#include <stdint.h>

enum payments_status {
	PAYMENTS_NEW,
	PAYMENTS_CHARGED,
	PAYMENTS_DECLINED,
	PAYMENTS_CANCELLED,
	PAYMENTS_REFUNDED,
};
#define PAYMENTS_STATUS_COUNT 5

/* The messages payments consumes. */
enum payments_event {
	PAYMENTS_EV_ORDER_PLACED,
	PAYMENTS_EV_STOCK_RESERVED,
	PAYMENTS_EV_ORDER_CANCELLED,
};
#define PAYMENTS_EVENT_COUNT 3

enum payments_action {
	PAYMENTS_ACT_NONE,      /* duplicate, stale or illegal: nothing to do */
	PAYMENTS_ACT_WAIT,      /* an earlier fact is missing: SHOP_E_NOT_READY */
	PAYMENTS_ACT_CREATE,    /* record the intent (NEW) with the card token */
	PAYMENTS_ACT_CHARGE,    /* charge the reserved total through the provider */
	PAYMENTS_ACT_CANCEL,    /* NEW -> CANCELLED: nothing was charged */
	PAYMENTS_ACT_TOMBSTONE, /* no intent yet: remember the cancellation */
	PAYMENTS_ACT_REFUND,    /* CHARGED -> REFUNDED through the provider */
};

/* The charge outcomes the provider can report back. */
enum payments_charge_outcome {
	PAYMENTS_CHARGE_APPROVED,
	PAYMENTS_CHARGE_DECLINED,
	PAYMENTS_CHARGE_TRANSIENT,
};

/* "NEW", "CHARGED", ... as stored in the payments table. */
const char *payments_status_name(enum payments_status st);
/* SHOP_E_INVALID for a string that is not a status. */
shop_status payments_status_parse(const char *s, enum payments_status *ret_status);

/* The decision table: what event ev does to a payment that exists with
 * status st, or does not exist (exists false; st is then ignored). */
enum payments_action payments_decide(enum payments_event ev, bool exists,
				     enum payments_status st);

/* What a charge outcome makes of a NEW payment: SHOP_OK with CHARGED or
 * DECLINED, or SHOP_E_UNAVAILABLE for a transient failure (the message is
 * retried; the payment stays NEW). */
shop_status payments_status_after_charge(enum payments_charge_outcome outcome,
					 enum payments_status *ret_status);

/* A reserved total payments can charge: not negative. */
bool payments_amount_valid(int64_t amount_cents);

#endif
