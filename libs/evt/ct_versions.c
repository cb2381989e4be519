/*
 * ct_versions.c - the upgrades from one major version of a message to the
 * next (ct_versions.h).
 *
 * Written by hand, not generated: what a new version means for the old
 * one's fields is a decision, and it is reviewed here. Each field kept is
 * copied between members the compiler checks to be the same size (both
 * come from the same $defs, so the same limits), so a schema change that
 * makes them differ fails the build instead of cutting a value.
 *
 * PlaceOrder v1 and OrderPlaced v1 carried the customer's card token; v2
 * does not (the gateway hands it to payments alone in SubmitCard). Their
 * upgrades drop it. The orders service therefore emits OrderPlaced v2 for a
 * PlaceOrder v1 stored before the upgrade (it never forwards the token
 * again), and every reader of OrderPlaced reads a stored v1 as v2.
 */
#include "evt/ct_versions.h"

#include <string.h>

#define CT_COPY(out, in, field)                                                                    \
	do {                                                                                       \
		_Static_assert(sizeof((out)->field) == sizeof((in)->field),                        \
			       "a kept field has the same size in both versions");                 \
		memcpy(&(out)->field, &(in)->field, sizeof((out)->field));                         \
	} while (0)

static void ct_place_order_v1_to_v2(const void *in_, void *out_)
{
	const struct ct_place_order *in = in_;
	struct ct_place_order_v2 *out = out_;
	CT_COPY(out, in, order_id);
	CT_COPY(out, in, customer_id);
	CT_COPY(out, in, email);
	CT_COPY(out, in, items);
	out->items_len = in->items_len;
	CT_COPY(out, in, shipping_address);
	/* payment (the card token): dropped. */
}

static void ct_order_placed_v1_to_v2(const void *in_, void *out_)
{
	const struct ct_order_placed *in = in_;
	struct ct_order_placed_v2 *out = out_;
	CT_COPY(out, in, order_id);
	CT_COPY(out, in, customer_id);
	CT_COPY(out, in, email);
	CT_COPY(out, in, items);
	out->items_len = in->items_len;
	CT_COPY(out, in, shipping_address);
	/* payment (the card token): dropped. */
}

static const struct ct_upgrade ct_upgrades[] = {
	{ CT_MSG_PLACE_ORDER, CT_MSG_PLACE_ORDER_V2, ct_place_order_v1_to_v2 },
	{ CT_MSG_ORDER_PLACED, CT_MSG_ORDER_PLACED_V2, ct_order_placed_v1_to_v2 },
};

const struct ct_upgrade *ct_upgrade_find(enum ct_message_id from)
{
	for (size_t i = 0; i < sizeof(ct_upgrades) / sizeof(ct_upgrades[0]); i++)
		if (ct_upgrades[i].from == from)
			return &ct_upgrades[i];
	return NULL;
}
