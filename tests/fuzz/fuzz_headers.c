/*
 * fuzz_headers.c - the request line and headers as the gateway reads them.
 *
 * The input is a request head: "METHOD target\n" then "Name: value" lines.
 * The path goes to gateway_route_of (the metrics label), the query's wait=
 * to gateway_wait_read; Idempotency-Key, traceparent, X-Request-Id and
 * Content-Type to the functions that read them (with an empty order body
 * for the last). libmicrohttpd has already split and unescaped them by
 * then, so this target splits naively: it fuzzes our readers, not MHD.
 * Properties: a route is one of the templates; wait is 0..30 when
 * accepted; a traceparent child is valid and keeps a valid parent's trace.
 */
#include "fuzz.h"

#include "core/ids.h"
#include "gateway.h"
#include "web/web.h"

#include <string.h>
#include <strings.h>

static void fuzz_header(const char *name, const char *value)
{
	if (strcasecmp(name, "Idempotency-Key") == 0) {
		bool ok = gateway_idem_key_valid(value);
		FUZZ_CHECK(!ok ||
			   (strlen(value) >= 1 && strlen(value) <= GATEWAY_IDEMPOTENCY_KEY_MAX));
	} else if (strcasecmp(name, "traceparent") == 0) {
		char child[IDS_TRACEPARENT_SIZE];
		ids_traceparent_child(value, child);
		FUZZ_CHECK(ids_traceparent_valid(child));
		if (ids_traceparent_valid(value))
			FUZZ_CHECK(memcmp(child + 3, value + 3, 32) == 0);
	} else if (strcasecmp(name, "X-Request-Id") == 0) {
		bool ok = web_request_id_valid(value);
		FUZZ_CHECK(!ok || (strlen(value) >= 1 && strlen(value) <= WEB_REQUEST_ID_MAX));
	} else if (strcasecmp(name, "Content-Type") == 0) {
		struct ct_place_order_request *req = calloc(1, sizeof(*req));
		struct gateway_refusal refusal;
		char *canonical = NULL;
		FUZZ_CHECK(req != NULL);
		FUZZ_CHECK(!gateway_order_request_read(value, "{}", 2, NULL, req, &canonical,
						       &refusal));
		FUZZ_CHECK(refusal.status == 415 || refusal.status == 422);
		cJSON_Delete(refusal.details);
		free(req);
	}
}

static void fuzz_query(char *query)
{
	for (char *p = query, *next; p; p = next) {
		next = strchr(p, '&');
		if (next)
			*next++ = '\0';
		char *eq = strchr(p, '=');
		if (!eq || (size_t)(eq - p) != 4 || strncmp(p, "wait", 4) != 0)
			continue;
		int64_t s = -1;
		if (gateway_wait_read(eq + 1, &s))
			FUZZ_CHECK(s >= 0 && s <= GATEWAY_WAIT_MAX_S);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A C string, as MHD hands every header and argument over. */
	char *head = malloc(size + 1);
	FUZZ_CHECK(head != NULL);
	memcpy(head, data, size);
	head[size] = '\0';

	char *line = head;
	char *eol = strchr(line, '\n');
	if (eol)
		*eol = '\0';
	char *target = strchr(line, ' ');
	if (target) {
		target++;
		char *query = strchr(target, '?');
		if (query)
			*query++ = '\0';
		const char *route = gateway_route_of(target);
		FUZZ_CHECK(route != NULL);
		if (query)
			fuzz_query(query);
	}
	for (line = eol ? eol + 1 : NULL; line && *line; line = eol ? eol + 1 : NULL) {
		eol = strchr(line, '\n');
		if (eol)
			*eol = '\0';
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		const char *value = colon + 1;
		while (*value == ' ')
			value++;
		fuzz_header(line, value);
	}
	free(head);
	return 0;
}
