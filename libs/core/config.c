/* config.c - environment settings (see config.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

const char *config_str(const char *name, const char *default_value)
{
	const char *v = getenv(name);
	return (v && *v) ? v : default_value;
}

shop_status config_int(const char *name, int64_t default_value, int64_t min, int64_t max,
		       int64_t *ret_value)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		*ret_value = default_value;
		return SHOP_OK;
	}
	char *end = NULL;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max) {
		fprintf(stderr, "config: %s=%s is not an integer in [%" PRId64 ", %" PRId64 "]\n",
			name, v, min, max);
		return SHOP_E_INVALID;
	}
	*ret_value = (int64_t)n;
	return SHOP_OK;
}
