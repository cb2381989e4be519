/*
 * notifications_domain.c - kinds, item counts and reason texts (see
 * notifications_domain.h). Pure functions: no database, no clock.
 */
#include "notifications_domain.h"

#include <string.h>

const char *notifications_kind_name(enum notifications_kind kind)
{
	switch (kind) {
	case NOTIFICATIONS_KIND_ORDER_RECEIVED:
		return "order_received";
	case NOTIFICATIONS_KIND_ORDER_SHIPPED:
		return "order_shipped";
	case NOTIFICATIONS_KIND_ORDER_CANCELLED:
		return "order_cancelled";
	}
	return NULL;
}

int64_t notifications_item_count(const int64_t *quantities, size_t n)
{
	int64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (quantities[i] <= 0)
			continue;
		if (total > INT64_MAX - quantities[i])
			return INT64_MAX;
		total += quantities[i];
	}
	return total;
}

/* The reasons orders gives for a cancellation (docs/architecture.md). */
static const struct {
	const char *reason;
	const char *text;
} notifications_reasons[] = {
	{ "out_of_stock", "some of its items are out of stock" },
	{ "unknown_sku", "it contains an item we do not sell" },
	{ "payment_declined", "the payment was declined" },
	{ "customer_cancelled", "you asked us to cancel it" },
	{ "timeout", "it could not be completed in time" },
};

const char *notifications_reason_text(const char *reason)
{
	if (!reason)
		return NULL;
	for (size_t i = 0; i < sizeof(notifications_reasons) / sizeof(notifications_reasons[0]);
	     i++)
		if (strcmp(notifications_reasons[i].reason, reason) == 0)
			return notifications_reasons[i].text;
	return NULL;
}
