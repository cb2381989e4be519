/*
 * payments_domain.c - the payment state machine as a table.
 *
 * Pure functions only: the handlers read the row, ask here what to do, and
 * carry it out, so every (state, message) pair is tested without a database
 * or a bus. The table is total: every pair has an answer, and anything not
 * named a transition is a no-op.
 */
#include "payments_domain.h"

#include <string.h>

static const char *const status_names[PAYMENTS_STATUS_COUNT] = {
	[PAYMENTS_NEW] = "NEW",           [PAYMENTS_CHARGED] = "CHARGED",
	[PAYMENTS_DECLINED] = "DECLINED", [PAYMENTS_CANCELLED] = "CANCELLED",
	[PAYMENTS_REFUNDED] = "REFUNDED",
};

const char *payments_status_name(enum payments_status st)
{
	if ((unsigned)st >= PAYMENTS_STATUS_COUNT)
		return "UNKNOWN";
	return status_names[st];
}

shop_status payments_status_parse(const char *s, enum payments_status *ret_status)
{
	if (!s)
		return SHOP_E_INVALID;
	for (int i = 0; i < PAYMENTS_STATUS_COUNT; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*ret_status = (enum payments_status)i;
			return SHOP_OK;
		}
	}
	return SHOP_E_INVALID;
}

/* SubmitCard or StockReserved: each brings one of the two facts a charge
 * needs. Whichever makes them two charges; the first is recorded; one that
 * is already there (a redelivery) changes nothing. A row that is no longer
 * NEW (charged, declined, a cancellation's tombstone) is left alone. */
static enum payments_action payments_decide_arrival(bool brings_card,
						    const struct payments_facts *f)
{
	if (!f->exists)
		return PAYMENTS_ACT_CREATE;
	if (f->status != PAYMENTS_NEW)
		return PAYMENTS_ACT_NONE;
	bool card = f->has_card || brings_card;
	bool reservation = f->has_reservation || !brings_card;
	if (card && reservation)
		return PAYMENTS_ACT_CHARGE;
	bool already = brings_card ? f->has_card : f->has_reservation;
	return already ? PAYMENTS_ACT_NONE : PAYMENTS_ACT_RECORD;
}

enum payments_action payments_decide(enum payments_event ev, const struct payments_facts *f)
{
	bool exists = f->exists;
	enum payments_status st = f->status;
	switch (ev) {
	case PAYMENTS_EV_CARD_SUBMITTED:
		return payments_decide_arrival(true, f);
	case PAYMENTS_EV_STOCK_RESERVED:
		return payments_decide_arrival(false, f);
	case PAYMENTS_EV_ORDER_CANCELLED:
		if (!exists)
			return PAYMENTS_ACT_TOMBSTONE;
		if (st == PAYMENTS_NEW)
			return PAYMENTS_ACT_CANCEL; /* charged or not: the provider knows */
		if (st == PAYMENTS_CHARGED)
			return PAYMENTS_ACT_REFUND;
		return PAYMENTS_ACT_NONE; /* declined, already cancelled or refunded */
	case PAYMENTS_EV_CHARGE_FOUND:
		/* Only a cancelled payment owes the money back. NEW and CHARGED
		 * are still in the saga (a cancellation will ask the provider),
		 * a refunded one was given back already, and a declined key or a
		 * missing row cannot hold an approved charge. */
		return exists && st == PAYMENTS_CANCELLED ? PAYMENTS_ACT_REFUND_FOUND
							  : PAYMENTS_ACT_NONE;
	}
	return PAYMENTS_ACT_NONE;
}

shop_status payments_status_after_charge(enum payments_charge_outcome outcome,
					 enum payments_status *ret_status)
{
	switch (outcome) {
	case PAYMENTS_CHARGE_APPROVED:
		*ret_status = PAYMENTS_CHARGED;
		return SHOP_OK;
	case PAYMENTS_CHARGE_DECLINED:
		*ret_status = PAYMENTS_DECLINED;
		return SHOP_OK;
	case PAYMENTS_CHARGE_TRANSIENT:
		return SHOP_E_UNAVAILABLE;
	}
	return SHOP_E_INTERNAL;
}

bool payments_amount_valid(int64_t amount_cents)
{
	return amount_cents >= 0;
}
