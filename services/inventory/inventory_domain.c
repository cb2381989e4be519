/*
 * inventory_domain.c - line normalisation, totals and the reservation state
 * machine (see inventory_domain.h). Pure functions: no I/O, no clock, no
 * allocation, so every rule here is tested without a database.
 */
#include "inventory_domain.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
	[INVENTORY_STATUS_NONE] = NULL,
	[INVENTORY_STATUS_RESERVED] = "RESERVED",
	[INVENTORY_STATUS_RELEASED] = "RELEASED",
	[INVENTORY_STATUS_REJECTED] = "REJECTED",
	[INVENTORY_STATUS_CANCELLED_BEFORE_PLACED] = "CANCELLED_BEFORE_PLACED",
};

const char *inventory_status_name(enum inventory_status status)
{
	if ((size_t)status >= sizeof(status_names) / sizeof(status_names[0]))
		return NULL;
	return status_names[status];
}

shop_status inventory_status_parse(const char *s, enum inventory_status *ret_status)
{
	if (!s)
		return SHOP_E_INVALID;
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (status_names[i] && strcmp(status_names[i], s) == 0) {
			*ret_status = (enum inventory_status)i;
			return SHOP_OK;
		}
	}
	return SHOP_E_INVALID;
}

enum inventory_cancel_action inventory_on_cancel(enum inventory_status status)
{
	switch (status) {
	case INVENTORY_STATUS_NONE:
		return INVENTORY_CANCEL_TOMBSTONE;
	case INVENTORY_STATUS_RESERVED:
		return INVENTORY_CANCEL_RELEASE;
	case INVENTORY_STATUS_RELEASED:
	case INVENTORY_STATUS_REJECTED:
	case INVENTORY_STATUS_CANCELLED_BEFORE_PLACED:
		break;
	}
	return INVENTORY_CANCEL_IGNORE;
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(((const struct inventory_line *)a)->sku,
		      ((const struct inventory_line *)b)->sku);
}

shop_status inventory_lines_normalize(const struct inventory_line *in, size_t n,
				      struct inventory_line *out, size_t *ret_n)
{
	if (n == 0)
		return SHOP_E_INVALID;
	if (n > INVENTORY_LINES_MAX)
		return SHOP_E_LIMIT;
	for (size_t i = 0; i < n; i++) {
		/* memchr, not strlen: a caller's SKU need not be terminated inside
		 * the array if it filled it completely. */
		if (!memchr(in[i].sku, '\0', sizeof(in[i].sku)) || in[i].sku[0] == '\0')
			return SHOP_E_INVALID;
		if (in[i].quantity < 1)
			return SHOP_E_INVALID;
		if (in[i].quantity > INVENTORY_LINE_QUANTITY_MAX)
			return SHOP_E_LIMIT;
	}

	struct inventory_line sorted[INVENTORY_LINES_MAX];
	memcpy(sorted, in, n * sizeof(*in));
	qsort(sorted, n, sizeof(sorted[0]), line_cmp);

	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && strcmp(sorted[m - 1].sku, sorted[i].sku) == 0) {
			/* At most INVENTORY_LINES_MAX * INVENTORY_LINE_QUANTITY_MAX:
			 * far from overflowing. */
			sorted[m - 1].quantity += sorted[i].quantity;
		} else {
			sorted[m++] = sorted[i];
		}
	}
	memcpy(out, sorted, m * sizeof(sorted[0]));
	*ret_n = m;
	return SHOP_OK;
}

shop_status inventory_total_cents(const struct inventory_priced_line *lines, size_t n,
				  int64_t *ret_total)
{
	int64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t line_total;
		if (lines[i].quantity < 0 || lines[i].unit_price_cents < 0)
			return SHOP_E_INVALID;
		if (__builtin_mul_overflow(lines[i].quantity, lines[i].unit_price_cents,
					   &line_total) ||
		    __builtin_add_overflow(total, line_total, &total) ||
		    total > INVENTORY_TOTAL_MAX_CENTS)
			return SHOP_E_LIMIT;
	}
	*ret_total = total;
	return SHOP_OK;
}

shop_status inventory_lines_split(const struct inventory_priced_line *in, size_t n,
				  struct inventory_priced_line *out, size_t out_max, size_t *ret_n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t left = in[i].quantity;
		if (left < 1)
			return SHOP_E_INVALID;
		while (left > 0) {
			int64_t q = left < INVENTORY_LINE_QUANTITY_MAX
					    ? left
					    : INVENTORY_LINE_QUANTITY_MAX;
			if (m == out_max)
				return SHOP_E_LIMIT;
			out[m] = in[i];
			out[m].quantity = q;
			m++;
			left -= q;
		}
	}
	*ret_n = m;
	return SHOP_OK;
}
