/* status.c - names of the status values, for logs and error bodies. */
#include "status.h"

const char *shop_status_name(shop_status st)
{
	switch (st) {
	case SHOP_OK:
		return "ok";
	case SHOP_E_INVALID:
		return "invalid";
	case SHOP_E_LIMIT:
		return "limit";
	case SHOP_E_NOT_FOUND:
		return "not_found";
	case SHOP_E_CONFLICT:
		return "conflict";
	case SHOP_E_DUPLICATE:
		return "duplicate";
	case SHOP_E_NOT_READY:
		return "not_ready";
	case SHOP_E_UNAVAILABLE:
		return "unavailable";
	case SHOP_E_TIMEOUT:
		return "timeout";
	case SHOP_E_INTERNAL:
		return "internal";
	}
	return "unknown";
}
