/*
 * shipping_domain.c - the shipment state machine and its decisions (see
 * shipping_domain.h). Pure functions: no database, no clock, no logging.
 */
#include "shipping_domain.h"

#include <stddef.h>
#include <string.h>

static const struct {
	enum shipping_state state;
	const char *name;
} shipping_state_names[] = {
	{ SHIPPING_STATE_SCHEDULED, "SCHEDULED" },
	{ SHIPPING_STATE_DISPATCHED, "DISPATCHED" },
	{ SHIPPING_STATE_CANCELLED, "CANCELLED" },
	{ SHIPPING_STATE_VOIDED, "VOIDED" },
};

#define SHIPPING_N_STATE_NAMES (sizeof(shipping_state_names) / sizeof(shipping_state_names[0]))

const char *shipping_state_name(enum shipping_state state)
{
	for (size_t i = 0; i < SHIPPING_N_STATE_NAMES; i++)
		if (shipping_state_names[i].state == state)
			return shipping_state_names[i].name;
	return NULL;
}

shop_status shipping_state_parse(const char *text, enum shipping_state *ret_state)
{
	if (!text)
		return SHOP_E_INVALID;
	for (size_t i = 0; i < SHIPPING_N_STATE_NAMES; i++) {
		if (strcmp(shipping_state_names[i].name, text) == 0) {
			*ret_state = shipping_state_names[i].state;
			return SHOP_OK;
		}
	}
	return SHOP_E_INVALID;
}

enum shipping_schedule_decision shipping_decide_schedule(enum shipping_state state,
							 bool address_known)
{
	/* The row is checked before the address: a cancelled order needs no
	 * address, so there is no point waiting for its OrderPlaced. */
	switch (state) {
	case SHIPPING_STATE_VOIDED:
	case SHIPPING_STATE_CANCELLED:
		return SHIPPING_SCHEDULE_SKIP_CANCELLED;
	case SHIPPING_STATE_SCHEDULED:
	case SHIPPING_STATE_DISPATCHED:
		return SHIPPING_SCHEDULE_SKIP_EXISTS;
	case SHIPPING_STATE_NONE:
		break;
	}
	return address_known ? SHIPPING_SCHEDULE_CREATE : SHIPPING_SCHEDULE_WAIT_ADDRESS;
}

enum shipping_cancel_decision shipping_decide_cancel(enum shipping_state state)
{
	switch (state) {
	case SHIPPING_STATE_NONE:
		return SHIPPING_CANCEL_REMEMBER;
	case SHIPPING_STATE_SCHEDULED:
		return SHIPPING_CANCEL_SHIPMENT;
	case SHIPPING_STATE_DISPATCHED:
		return SHIPPING_CANCEL_TOO_LATE;
	case SHIPPING_STATE_CANCELLED:
	case SHIPPING_STATE_VOIDED:
		break;
	}
	return SHIPPING_CANCEL_ALREADY;
}

bool shipping_dispatch_is_due(enum shipping_state state, int64_t dispatch_at_ms, int64_t now_ms)
{
	return state == SHIPPING_STATE_SCHEDULED && dispatch_at_ms <= now_ms;
}

int64_t shipping_dispatch_at(int64_t now_ms, int64_t delay_ms)
{
	if (delay_ms < 0)
		delay_ms = 0;
	if (now_ms > INT64_MAX - delay_ms)
		return INT64_MAX;
	return now_ms + delay_ms;
}
