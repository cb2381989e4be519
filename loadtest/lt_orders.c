/*
 * lt_orders.c - the order table (lt_orders.h).
 */
#include "lt_orders.h"

#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define LT_ORDERS_INITIAL_CAP 4096 /* slots; doubled at half full */

void lt_orders_init(struct lt_orders *t)
{
	t->cap = LT_ORDERS_INITIAL_CAP;
	t->used = 0;
	t->slot = xcalloc(t->cap, sizeof(*t->slot));
}

void lt_orders_release(struct lt_orders *t)
{
	free(t->slot);
	t->slot = NULL;
	t->cap = t->used = 0;
}

/* FNV-1a: UUIDv7s share their leading time bits, so hash every byte. */
static uint64_t lt_orders_hash(const char *id)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct lt_order *lt_orders_find_slot(struct lt_order *slot, uint64_t cap, const char *id)
{
	uint64_t i = lt_orders_hash(id) & (cap - 1);
	while (slot[i].id[0] && strcmp(slot[i].id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

static void lt_orders_grow(struct lt_orders *t)
{
	uint64_t cap = t->cap * 2;
	struct lt_order *slot = xcalloc(cap, sizeof(*slot));
	for (uint64_t i = 0; i < t->cap; i++)
		if (t->slot[i].id[0])
			*lt_orders_find_slot(slot, cap, t->slot[i].id) = t->slot[i];
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
}

struct lt_order *lt_orders_get(struct lt_orders *t, const char *id)
{
	if ((t->used + 1) * 2 > t->cap)
		lt_orders_grow(t);
	struct lt_order *o = lt_orders_find_slot(t->slot, t->cap, id);
	if (!o->id[0]) {
		memset(o, 0, sizeof(*o));
		size_t n = strnlen(id, LT_ORDER_ID_SIZE - 1);
		memcpy(o->id, id, n);
		o->id[n] = '\0';
		t->used++;
	}
	return o;
}
