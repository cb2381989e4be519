/*
 * config.h - service settings from environment variables.
 *
 * A setting that is present but malformed or out of range is a startup error
 * with a message naming the variable; an absent one takes its documented
 * default. docs/configuration.md lists every variable.
 */
#ifndef SHOP_CORE_CONFIG_H
#define SHOP_CORE_CONFIG_H

#include "status.h"

#include <stdint.h>

/* The value of NAME, or DEFAULT when unset or empty. Never NULL if DEFAULT is not. */
const char *config_str(const char *name, const char *default_value);
/* Parses NAME as a decimal integer in [MIN, MAX]; DEFAULT when unset. */
shop_status config_int(const char *name, int64_t default_value, int64_t min, int64_t max,
		       int64_t *ret_value);

#endif
