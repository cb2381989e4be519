/*
 * audit_rules.c - the audit's invariants as pure functions of one order's
 * or one SKU's rows (no I/O), so each rule is unit-tested on its own.
 *
 * Counts come from databases and may be anything a bug left there, so the
 * arithmetic checks for overflow instead of trusting the sum.
 */
#include "audit.h"

#include <string.h>

enum audit_fate audit_fate_of(const char *status)
{
	if (!status)
		return AUDIT_FATE_UNKNOWN;
	if (strcmp(status, "SHIPPED") == 0)
		return AUDIT_FATE_SHIPPED;
	if (strcmp(status, "CANCELLED") == 0)
		return AUDIT_FATE_CANCELLED;
	if (strcmp(status, "PENDING") == 0 || strcmp(status, "RESERVED") == 0 ||
	    strcmp(status, "PAID") == 0)
		return AUDIT_FATE_IN_FLIGHT;
	return AUDIT_FATE_UNKNOWN;
}

bool audit_stock_conserved(const struct audit_stock *s, int64_t *ret_missing)
{
	int64_t sum = 0, missing = 0;
	if (__builtin_add_overflow(s->available, s->reserved, &sum) ||
	    __builtin_add_overflow(sum, s->shipped, &sum) ||
	    __builtin_sub_overflow(s->initial, sum, &missing)) {
		*ret_missing = INT64_MIN;
		return false;
	}
	*ret_missing = missing;
	return missing == 0 && s->initial >= 0 && s->available >= 0 && s->reserved >= 0 &&
	       s->shipped >= 0;
}

const char *audit_money_verdict(enum audit_fate fate, const struct audit_ledger *l)
{
	if (l->approved < 0 || l->refunded < 0 || l->refunded > l->approved)
		return "the ledger holds more refunds than charges";
	if (l->approved > 1)
		return "charged more than once";
	int64_t kept = l->approved - l->refunded;
	if (fate == AUDIT_FATE_SHIPPED && l->approved == 0)
		return "shipped without a successful charge";
	if (fate == AUDIT_FATE_SHIPPED && kept == 0)
		return "shipped but its charge was refunded";
	if (fate == AUDIT_FATE_CANCELLED && kept > 0)
		return "cancelled but its charge was not refunded";
	return NULL;
}

const char *audit_mails_verdict(enum audit_fate fate, const struct audit_mails *m)
{
	if (m->received > 1)
		return "order_received recorded more than once";
	if (m->shipped > 1)
		return "order_shipped recorded more than once";
	if (m->cancelled > 1)
		return "order_cancelled recorded more than once";
	if (m->shipped && m->cancelled)
		return "both order_shipped and order_cancelled recorded";
	switch (fate) {
	case AUDIT_FATE_SHIPPED:
		if (!m->received || !m->shipped)
			return m->received ? "shipped, no order_shipped recorded"
					   : "shipped, no order_received recorded";
		return NULL;
	case AUDIT_FATE_CANCELLED:
		if (!m->received || !m->cancelled)
			return m->received ? "cancelled, no order_cancelled recorded"
					   : "cancelled, no order_received recorded";
		return NULL;
	case AUDIT_FATE_IN_FLIGHT:
		if (m->shipped || m->cancelled)
			return "a final e-mail recorded for an order still in flight";
		return NULL;
	case AUDIT_FATE_UNKNOWN:
		return NULL;
	}
	return NULL;
}
