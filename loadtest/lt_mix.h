/*
 * lt_mix.h - the kinds of order the generator places, and in what shares.
 *
 * Each kind is a way through the saga (README.md lists the test cards and
 * SKUs). The approved paths buy the two products stocked by the million, so
 * a long run never drains the limited ones and turns approved orders into
 * out-of-stock ones. Kinds are dealt by smooth weighted round robin: with
 * weights 80/5/... every window of 100 requests holds exactly that mix, spread
 * out, and the same run places the same orders in the same order.
 */
#ifndef SHOP_LOADTEST_MIX_H
#define SHOP_LOADTEST_MIX_H

#include "core/status.h"

#include <stddef.h>
#include <stdint.h>

enum lt_kind {
	LT_KIND_APPROVED,     /* tok_visa, plentiful SKU: SHIPPED */
	LT_KIND_DECLINED,     /* tok_declined: CANCELLED (payment_declined) */
	LT_KIND_FLAKY,        /* tok_flaky: two retried failures, then SHIPPED */
	LT_KIND_OUT_OF_STOCK, /* SKU-VINTAGE (never stocked): CANCELLED (out_of_stock) */
	LT_KIND_UNKNOWN_SKU,  /* a SKU inventory does not know: CANCELLED (unknown_sku) */
	LT_KIND_CANCELLED, /* tok_visa, then POST /cancel at once: CANCELLED (or SHIPPED if late) */
	LT_KIND_COUNT,
};

/* The default shares, in percent (README.md explains them). */
#define LT_MIX_DEFAULT "approved=80,declined=5,flaky=5,out_of_stock=4,unknown_sku=2,cancelled=4"
#define LT_MIX_SPEC_MAX 256 /* longest --mix string accepted */
#define LT_BODY_MAX 1024    /* an order body; the real ones are about 300 bytes */

struct lt_mix {
	int64_t weight[LT_KIND_COUNT];
	int64_t total;
	int64_t current[LT_KIND_COUNT]; /* round-robin state */
};

const char *lt_kind_name(enum lt_kind k);
/* Parses "name=weight,..." (names as lt_kind_name; unnamed kinds weigh 0).
 * SHOP_E_INVALID for an unknown name, a bad number or all weights zero. */
shop_status lt_mix_parse(struct lt_mix *mix, const char *spec);
/* The next kind in the mix. */
enum lt_kind lt_mix_next(struct lt_mix *mix);
/* Writes the POST /orders body for request number seq of this kind; returns its length. */
size_t lt_mix_body(enum lt_kind k, int64_t seq, char out[LT_BODY_MAX]);

#endif
