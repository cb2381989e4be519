/*
 * fuzz_place_order.c - the body of POST /orders as the gateway reads it.
 *
 * The input is the request body; gateway_order_request_read checks it exactly
 * as gateway_order_create does (Content-Type application/json, no
 * Idempotency-Key). A refusal must be one of the documented ones; an
 * accepted order's canonical JSON must be accepted again and be its own
 * canonical form, since an idempotent replay compares those bytes. The
 * refusal's details (paths from the client's keys) are valid UTF-8.
 */
#include "fuzz.h"

#include "gateway.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ct_place_order_request *req = calloc(1, sizeof(*req));
	struct gateway_refusal refusal;
	char *canonical = NULL;
	FUZZ_CHECK(req != NULL);
	if (!gateway_order_request_read("application/json", (const char *)data, size, NULL, req,
					&canonical, &refusal)) {
		FUZZ_CHECK(refusal.status == 400 || refusal.status == 422);
		FUZZ_CHECK(cJSON_IsArray(refusal.details));
		FUZZ_CHECK(cJSON_GetArraySize(refusal.details) > 0);
		char *details = cJSON_PrintUnformatted(refusal.details);
		FUZZ_CHECK(details != NULL && fuzz_utf8_valid(details));
		free(details);
		cJSON_Delete(refusal.details);
		free(req);
		return 0;
	}
	FUZZ_CHECK(canonical != NULL);
	char *again = NULL;
	FUZZ_CHECK(gateway_order_request_read("application/json; charset=utf-8", canonical,
					      strlen(canonical), "key", req, &again, &refusal));
	FUZZ_CHECK(strcmp(canonical, again) == 0);
	free(again);
	free(canonical);
	free(req);
	return 0;
}
