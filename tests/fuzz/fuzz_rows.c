/*
 * fuzz_rows.c - rows the gateway reads back from its own database.
 *
 * The first byte picks the column the rest of the input stands for, as a
 * damaged file or a hand edit could leave it; the other columns hold what
 * the gateway writes. Read back as SQLite gives text (up to its first NUL):
 *   0  orders_view.items (a JSON array of lines)
 *   1  orders_view.reason        2  orders_view.customer_id
 *   3  orders_view.currency      4  timeline.detail
 *   5  orders_view.status, through gateway_status_parse
 * gateway_view_json either refuses the row (the API then answers 500) or
 * builds a body that prints as valid UTF-8 JSON, parses back, and has an
 * array of items; a status parses only from its own name.
 */
#include "fuzz.h"

#include "gateway.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *text = strndup((const char *)data + 1, size - 1);
	FUZZ_CHECK(text != NULL);
	uint8_t column = data[0] % 6;

	if (column == 5) {
		enum gateway_status s;
		if (gateway_status_parse(text, &s))
			FUZZ_CHECK(strcmp(gateway_status_name(s), text) == 0);
		free(text);
		return 0;
	}

	struct gateway_timeline_entry entry = {
		.type = "OrderPlaced",
		.source = "orders",
		.time = "2026-11-22T10:00:00.000Z",
		.event_id = "0192f0c1-0000-7000-8000-000000000001",
		.detail = column == 4 ? text : NULL,
	};
	struct gateway_view v = {
		.status = GATEWAY_CANCELLED,
		.reason = column == 1 ? text : "payment_declined",
		.customer_id = column == 2 ? text : "cust-42",
		.items = column == 0 ? text : "[{\"sku\":\"SKU-CABLE\",\"quantity\":1}]",
		.has_total = true,
		.total_cents = 990,
		.currency = column == 3 ? text : "EUR",
		.created_at_ms = 1764000000000,
		.updated_at_ms = 1764000000100,
		.timeline = &entry,
		.timeline_len = 1,
	};
	cJSON *json = NULL;
	if (gateway_view_json("0192f0c1-7d2a-7abc-8def-0123456789ab", &v, &json) == SHOP_OK) {
		char *out = cJSON_PrintUnformatted(json);
		FUZZ_CHECK(out != NULL && fuzz_utf8_valid(out));
		cJSON *back = cJSON_Parse(out);
		FUZZ_CHECK(back != NULL);
		FUZZ_CHECK(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(back, "items")));
		cJSON_Delete(back);
		free(out);
		cJSON_Delete(json);
	}
	free(text);
	return 0;
}
