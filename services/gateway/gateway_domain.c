/*
 * gateway_domain.c - the gateway's pure decisions (see gateway_domain.h).
 */
#include "gateway_domain.h"

#include <string.h>

static const char *const gateway_status_names[GATEWAY_STATUS_COUNT] = {
	[GATEWAY_PENDING] = "PENDING", [GATEWAY_RESERVED] = "RESERVED",   [GATEWAY_PAID] = "PAID",
	[GATEWAY_SHIPPED] = "SHIPPED", [GATEWAY_CANCELLED] = "CANCELLED",
};

const char *gateway_status_name(enum gateway_status s)
{
	return gateway_status_names[s];
}

bool gateway_status_parse(const char *s, enum gateway_status *ret)
{
	for (size_t i = 0; i < GATEWAY_STATUS_COUNT; i++) {
		if (strcmp(s, gateway_status_names[i]) == 0) {
			*ret = (enum gateway_status)i;
			return true;
		}
	}
	return false;
}

bool gateway_status_final(enum gateway_status s)
{
	return s == GATEWAY_SHIPPED || s == GATEWAY_CANCELLED;
}

bool gateway_status_advances(enum gateway_status from, enum gateway_status to)
{
	if (gateway_status_final(from))
		return false;
	if (to == GATEWAY_CANCELLED)
		return true;
	return to > from;
}

bool gateway_status_of_event(enum ct_message_id id, enum gateway_status *ret_status)
{
	switch (id) {
	case CT_MSG_ORDER_RESERVED:
		*ret_status = GATEWAY_RESERVED;
		return true;
	case CT_MSG_ORDER_PAID:
		*ret_status = GATEWAY_PAID;
		return true;
	case CT_MSG_ORDER_SHIPPED:
		*ret_status = GATEWAY_SHIPPED;
		return true;
	case CT_MSG_ORDER_CANCELLED:
		*ret_status = GATEWAY_CANCELLED;
		return true;
	default:
		return false;
	}
}

void gateway_idempotency_fingerprint(const char *request, char out[GATEWAY_FINGERPRINT_SIZE])
{
	size_t prefix = sizeof(GATEWAY_FINGERPRINT_PREFIX) - 1;
	memcpy(out, GATEWAY_FINGERPRINT_PREFIX, prefix);
	sha256_hex(request, strlen(request), out + prefix);
}

enum gateway_idempotency_verdict gateway_idempotency_decide(const char *stored, const char *request)
{
	char mine[GATEWAY_FINGERPRINT_SIZE];
	size_t prefix = sizeof(GATEWAY_FINGERPRINT_PREFIX) - 1;
	if (strncmp(stored, GATEWAY_FINGERPRINT_PREFIX, prefix) != 0)
		return strcmp(stored, request) == 0 ? GATEWAY_IDEMPOTENCY_REPLAY
						    : GATEWAY_IDEMPOTENCY_REFUSE;
	gateway_idempotency_fingerprint(request, mine);
	return strcmp(stored, mine) == 0 ? GATEWAY_IDEMPOTENCY_REPLAY : GATEWAY_IDEMPOTENCY_REFUSE;
}
