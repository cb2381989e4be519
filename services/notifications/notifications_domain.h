/*
 * notifications_domain.h - which e-mails exist and what goes into them,
 * with no I/O.
 *
 * An order gets at most one e-mail of each kind. The kind names are stored
 * in the notifications table (UNIQUE (order_id, kind) enforces "at most one")
 * and published in NotificationSent, so they never change once released.
 */
#ifndef SHOP_NOTIFICATIONS_DOMAIN_H
#define SHOP_NOTIFICATIONS_DOMAIN_H

#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum notifications_kind {
	NOTIFICATIONS_KIND_ORDER_RECEIVED,  /* on OrderPlaced */
	NOTIFICATIONS_KIND_ORDER_SHIPPED,   /* on OrderShipped */
	NOTIFICATIONS_KIND_ORDER_CANCELLED, /* on OrderCancelled */
};

/* "order_received", "order_shipped", "order_cancelled"; NULL if unknown. */
const char *notifications_kind_name(enum notifications_kind kind);

/* The number of items an order holds: the sum of its line quantities,
 * saturating at INT64_MAX; non-positive quantities count as nothing. */
int64_t notifications_item_count(const int64_t *quantities, size_t n);

/* A sentence fragment for a cancellation reason ("some items are out of
 * stock"), or NULL for a reason this version does not know. */
const char *notifications_reason_text(const char *reason);

#endif
