/*
 * orders_domain.h - the order state machine: which fact moves an order where.
 *
 * Pure: no I/O, no clock, no allocation. The handlers, the sweeper and the
 * unit tests all ask orders_decide() the same question, so the rules live in
 * exactly one table:
 *
 *   PENDING  --stock_reserved-->      RESERVED
 *   RESERVED --payment_authorized-->  PAID
 *   PAID     --shipment_dispatched--> SHIPPED
 *   PENDING  --stock_rejected-->      CANCELLED (out_of_stock | unknown_sku)
 *   RESERVED --payment_declined-->    CANCELLED (payment_declined)
 *   PENDING, RESERVED --cancel_requested--> CANCELLED (customer_cancelled)
 *   PAID     --cancel_requested-->    PAID, cancellation requested (customer_cancelled)
 *   PAID     --paid_deadline_passed--> PAID, cancellation requested (timeout)
 *   PAID, cancellation requested --paid_deadline_passed--> the same, asked again
 *   PAID, cancellation requested --shipment_cancelled--> CANCELLED (the request's reason)
 *   PAID, cancellation requested --shipment_dispatched--> SHIPPED
 *   PENDING, RESERVED --deadline_passed--> CANCELLED (timeout)
 *
 * A paid order is not cancelled at once: its shipment may be leaving at
 * that very moment, and shipping, which owns the dispatch, is the only one
 * that can tell. So the customer's cancel only marks the order (it stays
 * PAID, and the handler emits OrderCancellationRequested); shipping answers
 * with ShipmentCancelled (the order is then cancelled) or had already sent
 * ShipmentDispatched (the order ships: the cancellation lost the race).
 *
 * A paid order has a deadline too, or a lost OrderPaid would hold its stock
 * and money for ever. But only shipping knows whether the parcel left, so
 * the paid deadline cannot cancel either: it asks shipping exactly as the
 * customer's cancel does (reason timeout), and the answer decides. An
 * unanswered request, the customer's or the deadline's, is asked again
 * after the next paid deadline, up to ORDERS_CANCEL_REQUESTS_MAX requests
 * in all; each is a move of its own (the count of requests only grows), so
 * two sweepers cannot both ask. Never cancelling without shipping's answer
 * is what keeps "refunded and shipped" impossible.
 *
 * Invariants: the state (status, cancellation requested, requests sent) only
 * ever moves forward along these arrows, so no state is entered twice and a guard on
 * the current state is as strong as a guard on the version; the mark is set
 * only on a PAID order and never cleared; SHIPPED and CANCELLED are
 * terminal; the reason is set exactly when the status is CANCELLED.
 *
 * One fact is checked against the order before any arrow: a payment
 * authorized for another amount or currency than the order's total (once
 * the reservation priced it) is not this order's payment. It is REJECTed,
 * whatever the status, and changes nothing: a forged or mistaken
 * PaymentAuthorized must never mark an order PAID, and the handler
 * dead-letters it with the reason.
 *
 * Everything else is one of two no-ops. IGNORE: the fact is stale (the
 * order has passed the state it follows), a duplicate, or illegal (anything
 * on a terminal order). DEFER: the fact follows a state the order has not
 * reached yet; it arrived early because it travels on another stream than
 * the fact before it, and will be legal once that one is handled.
 */
#ifndef SHOP_ORDERS_DOMAIN_H
#define SHOP_ORDERS_DOMAIN_H

#include "core/status.h"

#include <stdbool.h>
#include <stdint.h>

/* Declared in saga order: the domain compares them to tell "not yet" from
 * "already passed". CANCELLED is last but is not "after" anything. */
enum orders_status {
	ORDERS_STATUS_PENDING,
	ORDERS_STATUS_RESERVED,
	ORDERS_STATUS_PAID,
	ORDERS_STATUS_SHIPPED,
	ORDERS_STATUS_CANCELLED,
};
#define ORDERS_STATUS_COUNT 5

/* Why an order was cancelled; NONE for every other status. */
enum orders_reason {
	ORDERS_REASON_NONE,
	ORDERS_REASON_OUT_OF_STOCK,
	ORDERS_REASON_UNKNOWN_SKU,
	ORDERS_REASON_PAYMENT_DECLINED,
	ORDERS_REASON_CUSTOMER_CANCELLED,
	ORDERS_REASON_TIMEOUT,
};
#define ORDERS_REASON_COUNT 6

/* The facts that can reach an order. */
enum orders_input_kind {
	ORDERS_INPUT_PLACED, /* PlaceOrder for an order that exists */
	ORDERS_INPUT_STOCK_RESERVED,
	ORDERS_INPUT_STOCK_REJECTED, /* carries out_of_stock or unknown_sku */
	ORDERS_INPUT_PAYMENT_AUTHORIZED,
	ORDERS_INPUT_PAYMENT_DECLINED,
	ORDERS_INPUT_SHIPMENT_DISPATCHED,
	ORDERS_INPUT_CANCEL_REQUESTED, /* the customer's CancelOrder */
	ORDERS_INPUT_DEADLINE_PASSED,
	ORDERS_INPUT_SHIPMENT_CANCELLED,   /* shipping's answer to a requested cancellation */
	ORDERS_INPUT_PAID_DEADLINE_PASSED, /* PAID with no answer from shipping for too long */
};
#define ORDERS_INPUT_COUNT 10

/* How many OrderCancellationRequested one order sends at most: the first
 * (the customer's or the paid deadline's) and the repeats after each
 * further paid deadline without an answer. A request shipping never
 * answers was dead-lettered twice over; after the last one the order waits
 * for an operator (and still takes shipping's answer when it comes). */
#define ORDERS_CANCEL_REQUESTS_MAX 3

/* Where an order is: its status, and whether a cancellation of it (when
 * PAID) is waiting for shipping's answer, why, and how often it was asked. */
struct orders_state {
	enum orders_status status;
	bool cancel_requested;
	enum orders_reason cancel_reason; /* customer_cancelled or timeout when requested */
	int cancel_requests; /* OrderCancellationRequested sent; 0 when not requested */
	/* The order's total, known once the reservation priced it (RESERVED
	 * onwards, and a cancelled order that had been reserved). */
	bool has_total;
	int64_t total_cents;
	const char *currency; /* when has_total */
};

struct orders_input {
	enum orders_input_kind kind;
	enum orders_reason reason; /* only for STOCK_REJECTED; NONE otherwise */
	/* Only for PAID_DEADLINE_PASSED: the requests count of the order the
	 * sweeper found overdue. Its deadline runs from the order's last move;
	 * a different count means the order moved since and is not overdue. */
	int cancel_requests;
	/* Only for PAYMENT_AUTHORIZED: what was authorized. */
	bool has_amount;
	int64_t amount_cents;
	const char *currency; /* when has_amount */
};

enum orders_verdict {
	ORDERS_APPLY,  /* move to decision.status (with decision.reason) */
	ORDERS_IGNORE, /* stale, duplicate or illegal: done, nothing changes */
	ORDERS_DEFER,  /* too early: retry once the preceding fact is handled */
	ORDERS_REJECT, /* contradicts the order (a payment of another amount): refused */
};

struct orders_decision {
	enum orders_verdict verdict;
	enum orders_status status;        /* the new status when APPLY, else the current one */
	enum orders_reason reason;        /* set when the new status is CANCELLED */
	bool cancel_requested;            /* the mark after the decision (kept, never cleared) */
	enum orders_reason cancel_reason; /* the request's reason after the decision */
	int cancel_requests;              /* after the decision; one more means: ask shipping */
};

struct orders_decision orders_decide(const struct orders_state *current,
				     const struct orders_input *in);

/* Names as stored in the database and carried in events: "PENDING" ...
 * "CANCELLED"; "out_of_stock" ... "timeout". The name of ORDERS_REASON_NONE
 * is NULL (SQL NULL, no reason). Parsing an unknown name is SHOP_E_INVALID;
 * ret_* is written only on success. */
const char *orders_status_name(enum orders_status st);
shop_status orders_status_parse(const char *name, enum orders_status *ret_status);
const char *orders_reason_name(enum orders_reason reason);
shop_status orders_reason_parse(const char *name, enum orders_reason *ret_reason);
/* "placed", "stock_reserved", ... for logs. */
const char *orders_input_name(enum orders_input_kind kind);
/* "apply", "ignore", "defer", "reject" for logs. */
const char *orders_verdict_name(enum orders_verdict verdict);

#endif
