/*
 * lt_orders.h - what the generator knows about each order it placed.
 *
 * Keyed by the order id the gateway chose (learnt from the 202 body). An
 * event may be seen on the bus before the generator has read the 202 that
 * names its order (both race through the same loop), so an event for an
 * unknown id creates the entry too, unclaimed; the 202 claims it later.
 * Entries of orders placed by someone else stay unclaimed and are ignored.
 * Open addressing on a power-of-two table, grown at half full.
 */
#ifndef SHOP_LOADTEST_ORDERS_H
#define SHOP_LOADTEST_ORDERS_H

#include <stdbool.h>
#include <stdint.h>

#define LT_ORDER_ID_SIZE 37 /* a UUID and its NUL */

enum lt_end { LT_END_NONE, LT_END_SHIPPED, LT_END_CANCELLED };

struct lt_order {
	char id[LT_ORDER_ID_SIZE]; /* "" for a free slot */
	bool claimed;              /* placed by this run */
	uint8_t kind;              /* enum lt_kind */
	uint8_t end;               /* enum lt_end */
	int phase;                 /* saturation step (0 in a plain run) */
	int64_t intended_ns;       /* when the POST was meant to leave */
	int64_t paid_ns;           /* OrderPaid seen, or 0 */
	int64_t end_ns;            /* terminal event seen, or 0 */
};

struct lt_orders {
	struct lt_order *slot;
	uint64_t cap; /* a power of two */
	uint64_t used;
};

void lt_orders_init(struct lt_orders *t);
void lt_orders_release(struct lt_orders *t);
/* The entry for id, created empty (unclaimed) when absent. id must be a UUID. */
struct lt_order *lt_orders_get(struct lt_orders *t, const char *id);

#endif
