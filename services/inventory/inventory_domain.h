/*
 * inventory_domain.h - the inventory's decisions, with no I/O.
 *
 * An order's lines are normalised before anything touches stock: every SKU
 * is non-empty and short enough, every quantity is in
 * [1, INVENTORY_LINE_QUANTITY_MAX], duplicate SKUs are merged (quantities
 * summed) and the result is sorted by SKU. Taking stock in SKU order is what
 * keeps two replicas reserving overlapping orders from deadlocking on each
 * other's row locks.
 *
 * A merged line may hold more than one contract line can carry (two lines
 * of 1000 make 2000); events list such a line as several lines of the same
 * SKU (inventory_lines_split), never more lines than the order had.
 *
 * A reservation moves only along these edges, everything else is a no-op:
 *
 *   (none) --OrderPlaced, all lines available--> RESERVED
 *   (none) --OrderPlaced, a SKU unknown or short--> REJECTED
 *   (none) --OrderCancelled / PaymentDeclined--> CANCELLED_BEFORE_PLACED
 *   RESERVED --OrderCancelled / PaymentDeclined--> RELEASED
 *
 * so a reservation is released at most once, and a cancellation that
 * overtakes its OrderPlaced leaves a tombstone that makes the late
 * OrderPlaced reserve nothing.
 *
 * Money is integer cents; every sum is computed with an overflow check.
 */
#ifndef SHOP_INVENTORY_DOMAIN_H
#define SHOP_INVENTORY_DOMAIN_H

#include "core/status.h"

#include <stddef.h>
#include <stdint.h>

/* Limits, as contracts/schemas/common.v1.json states them. */
#define INVENTORY_SKU_MAX 32             /* bytes in a SKU */
#define INVENTORY_NAME_MAX 100           /* bytes in a product name */
#define INVENTORY_CURRENCY_MAX 3         /* ISO 4217 code */
#define INVENTORY_REASON_MAX 32          /* bytes in a reason */
#define INVENTORY_LINES_MAX 50           /* lines in one order or event */
#define INVENTORY_LINE_QUANTITY_MAX 1000 /* units in one line */
/* Largest total an event can carry: $defs/amount_cents, 50 lines of 1000
 * units at the unit price ceiling ($defs/cents), so a valid order at valid
 * prices never exceeds it (inventory_handlers.c asserts it equals
 * CT_AMOUNT_CENTS_MAX). */
#define INVENTORY_TOTAL_MAX_CENTS 5000000000000LL

/* Rejection reasons, as the contracts spell them. Unknown SKUs are reported
 * in preference to shortages: a SKU that does not exist is the customer's
 * mistake and will never succeed, a shortage might. */
#define INVENTORY_REASON_UNKNOWN_SKU "unknown_sku"
#define INVENTORY_REASON_OUT_OF_STOCK "out_of_stock"

enum inventory_status {
	INVENTORY_STATUS_NONE = 0, /* no reservation row for the order */
	INVENTORY_STATUS_RESERVED,
	INVENTORY_STATUS_RELEASED,
	INVENTORY_STATUS_REJECTED,
	INVENTORY_STATUS_CANCELLED_BEFORE_PLACED,
};

/* The stored spelling ("RESERVED", ...); NULL for INVENTORY_STATUS_NONE. */
const char *inventory_status_name(enum inventory_status status);
shop_status inventory_status_parse(const char *s, enum inventory_status *ret_status);

/* OrderPlaced reserves only for an order with no reservation row at all:
 * any row means it was decided already (a redelivery under a new event id,
 * or a second replica) or cancelled before it arrived, and reserving again
 * would hold stock twice or forever. The row's insert enforces it (ON
 * CONFLICT DO NOTHING; inventory_ops.c), so there is no function for it. */

/* What OrderCancelled or PaymentDeclined does. */
enum inventory_cancel_action {
	INVENTORY_CANCEL_RELEASE,   /* give the held stock back */
	INVENTORY_CANCEL_TOMBSTONE, /* remember it so a late OrderPlaced reserves nothing */
	INVENTORY_CANCEL_IGNORE,    /* already released, rejected or tombstoned */
};
enum inventory_cancel_action inventory_on_cancel(enum inventory_status status);

struct inventory_line {
	char sku[INVENTORY_SKU_MAX + 1];
	int64_t quantity;
};

struct inventory_priced_line {
	char sku[INVENTORY_SKU_MAX + 1];
	int64_t quantity;
	int64_t unit_price_cents;
};

/* Validates, merges and sorts an order's lines. SHOP_E_INVALID for no lines,
 * an empty or unterminated SKU, or a quantity below 1; SHOP_E_LIMIT for
 * more than INVENTORY_LINES_MAX lines or a line above
 * INVENTORY_LINE_QUANTITY_MAX. out has room for INVENTORY_LINES_MAX lines. */
shop_status inventory_lines_normalize(const struct inventory_line *in, size_t n,
				      struct inventory_line *out, size_t *ret_n);

/* The order's total, sum of quantity * unit price. SHOP_E_LIMIT when it is
 * above INVENTORY_TOTAL_MAX_CENTS (no event could carry it; checked on
 * every step, so nothing overflows), which only a unit price above the
 * contract's ceiling can cause; SHOP_E_INVALID for a negative quantity or
 * price. */
shop_status inventory_total_cents(const struct inventory_priced_line *lines, size_t n,
				  int64_t *ret_total);

/* Splits lines whose quantity is above INVENTORY_LINE_QUANTITY_MAX into
 * several lines of the same SKU and price, each within it, so that an event
 * can carry them. SHOP_E_LIMIT when more than out_max lines would result
 * (never for lines merged from a valid order: see the file comment). */
shop_status inventory_lines_split(const struct inventory_priced_line *in, size_t n,
				  struct inventory_priced_line *out, size_t out_max, size_t *ret_n);

#endif
