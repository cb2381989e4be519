/*
 * payments_domain.h - what payments decides, without I/O.
 *
 * A payment moves through a small state machine, one row per order. A
 * charge needs two facts from two streams: the card (SubmitCard, on the
 * confidential stream CARDS: the only place the token travels) and the
 * reserved total (StockReserved, on INVENTORY). NEW holds whichever came
 * first; the second one charges:
 *
 *   (none) --SubmitCard | StockReserved--> NEW (card, or total)
 *   NEW (card) --StockReserved--> CHARGED | DECLINED
 *   NEW (total) --SubmitCard--> CHARGED | DECLINED
 *   CHARGED --OrderCancelled--> REFUNDED
 *   NEW --OrderCancelled, provider has no charge--> CANCELLED
 *   NEW --OrderCancelled, provider has a charge--> REFUNDED
 *   (none) --OrderCancelled--> CANCELLED (a tombstone: a late SubmitCard or
 *                                         StockReserved finds it and does nothing)
 *   CANCELLED --ledger holds an open charge (reconciliation)--> REFUNDED
 *
 * Messages arrive twice, late or out of order; every (state, message) pair
 * that is not a legal transition is a no-op: a second SubmitCard or
 * StockReserved for a NEW row that has that fact already changes nothing.
 * Only NEW is ever charged, and a charge leaves NEW in the transaction
 * that made it, so a payment is charged at most once. The token is kept
 * only while NEW waits for the total: leaving NEW clears it.
 *
 * A NEW row does not prove that nothing was charged: the provider commits a
 * charge on its own connection before the handler's transaction records it,
 * and a handler killed (or whose commit fails) in between leaves the row NEW
 * with the money taken. So money counts as possibly taken until the provider
 * says otherwise: cancelling a NEW intent asks the provider by key first, and
 * a periodic reconciliation refunds any open ledger charge whose payment is
 * CANCELLED (a charge that landed after the question was asked).
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
	PAYMENTS_EV_CARD_SUBMITTED, /* SubmitCard: the card */
	PAYMENTS_EV_STOCK_RESERVED, /* the reserved total */
	PAYMENTS_EV_ORDER_CANCELLED,
	/* Not a message: the reconciliation found an approved, unrefunded
	 * charge for the order on the provider's ledger. */
	PAYMENTS_EV_CHARGE_FOUND,
};
#define PAYMENTS_EVENT_COUNT 4

enum payments_action {
	PAYMENTS_ACT_NONE,         /* duplicate, stale or illegal: nothing to do */
	PAYMENTS_ACT_CREATE,       /* no row: insert NEW with the event's fact */
	PAYMENTS_ACT_RECORD,       /* NEW without the event's fact: add it, wait */
	PAYMENTS_ACT_CHARGE,       /* NEW, and with this event both facts are
				    * there: charge the reserved total to the card */
	PAYMENTS_ACT_CANCEL,       /* NEW: ask the provider by key; REFUNDED when it
				 * holds a charge, else CANCELLED */
	PAYMENTS_ACT_TOMBSTONE,    /* no intent yet: remember the cancellation */
	PAYMENTS_ACT_REFUND,       /* CHARGED -> REFUNDED through the provider */
	PAYMENTS_ACT_REFUND_FOUND, /* CANCELLED -> REFUNDED: give back a charge
				    * the row never recorded */
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

/* What is known of an order's payment when a message arrives. */
struct payments_facts {
	bool exists; /* a row; the rest is ignored without one */
	enum payments_status status;
	bool has_card;        /* NEW: SubmitCard was recorded */
	bool has_reservation; /* NEW: StockReserved's total was recorded */
};

/* The decision table: what event ev does to the payment F describes. */
enum payments_action payments_decide(enum payments_event ev, const struct payments_facts *f);

/* What a charge outcome makes of a NEW payment: SHOP_OK with CHARGED or
 * DECLINED, or SHOP_E_UNAVAILABLE for a transient failure (the message is
 * retried; the payment stays NEW). */
shop_status payments_status_after_charge(enum payments_charge_outcome outcome,
					 enum payments_status *ret_status);

/* A reserved total payments can charge: not negative. */
bool payments_amount_valid(int64_t amount_cents);

#endif
