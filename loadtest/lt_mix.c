/*
 * lt_mix.c - order kinds, their shares and their request bodies (lt_mix.h).
 */
#include "lt_mix.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Products stocked by the million (README.md, "The catalogue"): approved
 * orders alternate between them. */
#define LT_SKU_PLENTY_A "SKU-MOUSE"
#define LT_SKU_PLENTY_B "SKU-CABLE"
#define LT_SKU_NEVER_STOCKED "SKU-VINTAGE"
#define LT_SKU_UNKNOWN "SKU-LOADTEST-UNKNOWN"

static const char *const lt_kind_names[LT_KIND_COUNT] = {
	[LT_KIND_APPROVED] = "approved",
	[LT_KIND_DECLINED] = "declined",
	[LT_KIND_FLAKY] = "flaky",
	[LT_KIND_OUT_OF_STOCK] = "out_of_stock",
	[LT_KIND_UNKNOWN_SKU] = "unknown_sku",
	[LT_KIND_CANCELLED] = "cancelled",
};

const char *lt_kind_name(enum lt_kind k)
{
	return (unsigned)k < LT_KIND_COUNT ? lt_kind_names[k] : "?";
}

shop_status lt_mix_parse(struct lt_mix *mix, const char *spec)
{
	shop_status st = SHOP_E_INVALID;
	char buf[LT_MIX_SPEC_MAX + 1];
	struct lt_mix m = { 0 };

	if (strlen(spec) > LT_MIX_SPEC_MAX)
		goto out;
	memcpy(buf, spec, strlen(spec) + 1);
	char *save = NULL;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (!eq)
			goto out;
		*eq = '\0';
		int k = 0;
		while (k < LT_KIND_COUNT && strcmp(lt_kind_names[k], item) != 0)
			k++;
		if (k == LT_KIND_COUNT)
			goto out;
		char *end = NULL;
		errno = 0;
		long long w = strtoll(eq + 1, &end, 10);
		if (errno || end == eq + 1 || *end || w < 0 || w > 1000000)
			goto out;
		m.weight[k] = w;
	}
	for (int k = 0; k < LT_KIND_COUNT; k++)
		m.total += m.weight[k];
	if (m.total == 0)
		goto out;
	*mix = m;
	st = SHOP_OK;
out:
	return st;
}

enum lt_kind lt_mix_next(struct lt_mix *mix)
{
	/* Smooth weighted round robin: every kind gains its weight, the richest
	 * is chosen and pays the total back. */
	int best = 0;
	for (int k = 0; k < LT_KIND_COUNT; k++) {
		mix->current[k] += mix->weight[k];
		if (mix->current[k] > mix->current[best])
			best = k;
	}
	mix->current[best] -= mix->total;
	return (enum lt_kind)best;
}

size_t lt_mix_body(enum lt_kind k, int64_t seq, char out[LT_BODY_MAX])
{
	const char *sku = seq % 2 ? LT_SKU_PLENTY_B : LT_SKU_PLENTY_A;
	const char *card = "tok_visa";
	if (k == LT_KIND_DECLINED)
		card = "tok_declined";
	else if (k == LT_KIND_FLAKY)
		card = "tok_flaky";
	else if (k == LT_KIND_OUT_OF_STOCK)
		sku = LT_SKU_NEVER_STOCKED;
	else if (k == LT_KIND_UNKNOWN_SKU)
		sku = LT_SKU_UNKNOWN;
	int n = snprintf(out, LT_BODY_MAX,
			 "{\"customer_id\":\"load-%lld\",\"email\":\"load%lld@example.com\","
			 "\"items\":[{\"sku\":\"%s\",\"quantity\":1}],"
			 "\"payment\":{\"card_token\":\"%s\"},"
			 "\"shipping_address\":{\"name\":\"Load Test\",\"line1\":\"1 Bench Street\","
			 "\"city\":\"Lyon\",\"postal_code\":\"69001\",\"country\":\"FR\"}}",
			 (long long)(seq % 1000), (long long)seq, sku, card);
	return n < 0 ? 0 : (size_t)n;
}
