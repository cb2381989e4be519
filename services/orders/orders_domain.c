/*
 * orders_domain.c - the order state machine (see orders_domain.h).
 *
 * orders_decide() is written as one switch per input so that each row of the
 * table in the header is one case here, and the unit test walks the full
 * status x input grid against it. No I/O and no globals: the same question
 * always gets the same answer, which is what lets two replicas that read the
 * same status make the same decision.
 */
#include "orders_domain.h"

#include <stddef.h>
#include <string.h>

static const char *const status_names[ORDERS_STATUS_COUNT] = {
	[ORDERS_STATUS_PENDING] = "PENDING",     [ORDERS_STATUS_RESERVED] = "RESERVED",
	[ORDERS_STATUS_PAID] = "PAID",           [ORDERS_STATUS_SHIPPED] = "SHIPPED",
	[ORDERS_STATUS_CANCELLED] = "CANCELLED",
};

static const char *const reason_names[ORDERS_REASON_COUNT] = {
	[ORDERS_REASON_NONE] = NULL,
	[ORDERS_REASON_OUT_OF_STOCK] = "out_of_stock",
	[ORDERS_REASON_UNKNOWN_SKU] = "unknown_sku",
	[ORDERS_REASON_PAYMENT_DECLINED] = "payment_declined",
	[ORDERS_REASON_CUSTOMER_CANCELLED] = "customer_cancelled",
	[ORDERS_REASON_TIMEOUT] = "timeout",
};

static const char *const input_names[ORDERS_INPUT_COUNT] = {
	[ORDERS_INPUT_PLACED] = "placed",
	[ORDERS_INPUT_STOCK_RESERVED] = "stock_reserved",
	[ORDERS_INPUT_STOCK_REJECTED] = "stock_rejected",
	[ORDERS_INPUT_PAYMENT_AUTHORIZED] = "payment_authorized",
	[ORDERS_INPUT_PAYMENT_DECLINED] = "payment_declined",
	[ORDERS_INPUT_SHIPMENT_DISPATCHED] = "shipment_dispatched",
	[ORDERS_INPUT_CANCEL_REQUESTED] = "cancel_requested",
	[ORDERS_INPUT_DEADLINE_PASSED] = "deadline_passed",
	[ORDERS_INPUT_SHIPMENT_CANCELLED] = "shipment_cancelled",
	[ORDERS_INPUT_PAID_DEADLINE_PASSED] = "paid_deadline_passed",
};

/* A move to TO; the cancellation mark is kept (it is never cleared). */
static struct orders_decision decision_apply(const struct orders_state *current,
					     enum orders_status to, enum orders_reason reason)
{
	return (struct orders_decision){ .verdict = ORDERS_APPLY,
					 .status = to,
					 .reason = reason,
					 .cancel_requested = current->cancel_requested,
					 .cancel_reason = current->cancel_reason,
					 .cancel_requests = current->cancel_requests };
}

/* A PAID order stays PAID and (once more) asks shipping to stop its
 * shipment; the first request's reason is kept for the repeats. */
static struct orders_decision decision_ask_shipping(const struct orders_state *current,
						    enum orders_reason why)
{
	struct orders_decision d = decision_apply(current, ORDERS_STATUS_PAID, ORDERS_REASON_NONE);
	d.cancel_requested = true;
	if (!current->cancel_requested)
		d.cancel_reason = why;
	d.cancel_requests = current->cancel_requests + 1;
	return d;
}

static struct orders_decision decision_keep(enum orders_verdict verdict,
					    const struct orders_state *current)
{
	return (struct orders_decision){ .verdict = verdict,
					 .status = current->status,
					 .reason = ORDERS_REASON_NONE,
					 .cancel_requested = current->cancel_requested,
					 .cancel_reason = current->cancel_reason,
					 .cancel_requests = current->cancel_requests };
}

/* Moves forward from exactly one status: before it is too early, after it
 * is stale. CANCELLED is never "before": a cancelled order will not reach
 * any state, so waiting for it would only end in the dead-letter stream. */
static struct orders_decision forward_from(const struct orders_state *current,
					   enum orders_status from, enum orders_status to,
					   enum orders_reason reason)
{
	if (current->status == from)
		return decision_apply(current, to, reason);
	if (current->status != ORDERS_STATUS_CANCELLED && current->status < from)
		return decision_keep(ORDERS_DEFER, current);
	return decision_keep(ORDERS_IGNORE, current);
}

/* Whether IN, a payment, is for CURRENT's total; true while either side
 * does not know its amount. */
static bool orders_payment_matches(const struct orders_state *current,
				   const struct orders_input *in)
{
	if (!in->has_amount || !current->has_total)
		return true;
	return in->amount_cents == current->total_cents && in->currency && current->currency &&
	       strcmp(in->currency, current->currency) == 0;
}

struct orders_decision orders_decide(const struct orders_state *current,
				     const struct orders_input *in)
{
	switch (in->kind) {
	case ORDERS_INPUT_PLACED:
		/* The order exists, so this is the command again: creation is an
		 * insert-if-absent in the store, never a transition. */
		return decision_keep(ORDERS_IGNORE, current);
	case ORDERS_INPUT_STOCK_RESERVED:
		return forward_from(current, ORDERS_STATUS_PENDING, ORDERS_STATUS_RESERVED,
				    ORDERS_REASON_NONE);
	case ORDERS_INPUT_STOCK_REJECTED:
		/* Only a stock reason may cancel from here; anything else would
		 * break "reason says why", and the handler refuses such a message
		 * as invalid before it asks. */
		if (in->reason != ORDERS_REASON_OUT_OF_STOCK &&
		    in->reason != ORDERS_REASON_UNKNOWN_SKU)
			return decision_keep(ORDERS_IGNORE, current);
		return forward_from(current, ORDERS_STATUS_PENDING, ORDERS_STATUS_CANCELLED,
				    in->reason);
	case ORDERS_INPUT_PAYMENT_AUTHORIZED:
		/* Checked before the arrows, in every status: a payment that is
		 * not for the order's total is no payment of this order. Before
		 * the total is known it waits (DEFER) and is checked then. */
		if (!orders_payment_matches(current, in))
			return decision_keep(ORDERS_REJECT, current);
		return forward_from(current, ORDERS_STATUS_RESERVED, ORDERS_STATUS_PAID,
				    ORDERS_REASON_NONE);
	case ORDERS_INPUT_PAYMENT_DECLINED:
		return forward_from(current, ORDERS_STATUS_RESERVED, ORDERS_STATUS_CANCELLED,
				    ORDERS_REASON_PAYMENT_DECLINED);
	case ORDERS_INPUT_SHIPMENT_DISPATCHED:
		/* Also with a cancellation requested: the parcel left before
		 * shipping saw the request, so the cancellation lost the race
		 * and the order ships (the mark stays as its record). */
		return forward_from(current, ORDERS_STATUS_PAID, ORDERS_STATUS_SHIPPED,
				    ORDERS_REASON_NONE);
	case ORDERS_INPUT_CANCEL_REQUESTED:
		/* Before payment nothing can have shipped: cancel at once. */
		if (current->status == ORDERS_STATUS_PENDING ||
		    current->status == ORDERS_STATUS_RESERVED)
			return decision_apply(current, ORDERS_STATUS_CANCELLED,
					      ORDERS_REASON_CUSTOMER_CANCELLED);
		/* After payment the shipment may be leaving right now, and only
		 * shipping can stop it: ask, and stay PAID until it answers. A
		 * second request while one is pending asks nothing more. */
		if (current->status == ORDERS_STATUS_PAID && !current->cancel_requested)
			return decision_ask_shipping(current, ORDERS_REASON_CUSTOMER_CANCELLED);
		return decision_keep(ORDERS_IGNORE, current);
	case ORDERS_INPUT_SHIPMENT_CANCELLED:
		/* Shipping cancels a paid order's shipment only when asked, so
		 * this answers a request of ours: the order is cancelled now.
		 * Anywhere else it is a duplicate or stale (a shipment cancelled
		 * because the order was already cancelled): nothing to do. It
		 * never comes early: shipping sends it only after our request.
		 * The order is cancelled for the reason it was asked: the
		 * customer's, or the paid deadline's (timeout). */
		if (current->status == ORDERS_STATUS_PAID && current->cancel_requested)
			return decision_apply(current, ORDERS_STATUS_CANCELLED,
					      current->cancel_reason != ORDERS_REASON_NONE
						      ? current->cancel_reason
						      : ORDERS_REASON_CUSTOMER_CANCELLED);
		return decision_keep(ORDERS_IGNORE, current);
	case ORDERS_INPUT_DEADLINE_PASSED:
		/* This deadline bounds the wait for stock and payment only: a
		 * paid order has its own (below), which asks shipping. */
		if (current->status == ORDERS_STATUS_PENDING ||
		    current->status == ORDERS_STATUS_RESERVED)
			return decision_apply(current, ORDERS_STATUS_CANCELLED,
					      ORDERS_REASON_TIMEOUT);
		return decision_keep(ORDERS_IGNORE, current);
	case ORDERS_INPUT_PAID_DEADLINE_PASSED:
		/* Overdue only as the sweeper found it: a move since (paid just
		 * now, a customer's request, another sweeper's repeat) restarted
		 * the deadline. After the last request, only shipping's answer
		 * or an operator moves the order. */
		if (current->status != ORDERS_STATUS_PAID ||
		    current->cancel_requests != in->cancel_requests ||
		    current->cancel_requests >= ORDERS_CANCEL_REQUESTS_MAX)
			return decision_keep(ORDERS_IGNORE, current);
		return decision_ask_shipping(current, ORDERS_REASON_TIMEOUT);
	}
	return decision_keep(ORDERS_IGNORE, current);
}

const char *orders_status_name(enum orders_status st)
{
	if ((unsigned)st >= ORDERS_STATUS_COUNT)
		return "UNKNOWN";
	return status_names[st];
}

shop_status orders_status_parse(const char *name, enum orders_status *ret_status)
{
	if (!name)
		return SHOP_E_INVALID;
	for (int i = 0; i < ORDERS_STATUS_COUNT; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*ret_status = (enum orders_status)i;
			return SHOP_OK;
		}
	}
	return SHOP_E_INVALID;
}

const char *orders_reason_name(enum orders_reason reason)
{
	if ((unsigned)reason >= ORDERS_REASON_COUNT)
		return NULL;
	return reason_names[reason];
}

shop_status orders_reason_parse(const char *name, enum orders_reason *ret_reason)
{
	if (!name)
		return SHOP_E_INVALID;
	for (int i = 0; i < ORDERS_REASON_COUNT; i++) {
		if (reason_names[i] && strcmp(name, reason_names[i]) == 0) {
			*ret_reason = (enum orders_reason)i;
			return SHOP_OK;
		}
	}
	return SHOP_E_INVALID;
}

const char *orders_input_name(enum orders_input_kind kind)
{
	if ((unsigned)kind >= ORDERS_INPUT_COUNT)
		return "unknown";
	return input_names[kind];
}

const char *orders_verdict_name(enum orders_verdict verdict)
{
	switch (verdict) {
	case ORDERS_APPLY:
		return "apply";
	case ORDERS_IGNORE:
		return "ignore";
	case ORDERS_DEFER:
		return "defer";
	case ORDERS_REJECT:
		return "reject";
	}
	return "unknown";
}
