/*
 * test_gateway_domain.c - the gateway's decisions, table by table: which
 * status may follow which, which events decide a status, what a repeated
 * Idempotency-Key gets, and how the API answers each failed status.
 *
 * Each table below is the specification; a test walks every cell, so a
 * change to a rule names the cell it broke.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../services/gateway/gateway.h"

#define PENDING GATEWAY_PENDING
#define RESERVED GATEWAY_RESERVED
#define PAID GATEWAY_PAID
#define SHIPPED GATEWAY_SHIPPED
#define CANCELLED GATEWAY_CANCELLED

/* advances[from][to]: may the view move from `from` to `to`? */
static const bool advances[GATEWAY_STATUS_COUNT][GATEWAY_STATUS_COUNT] = {
	/*               PENDING RESERVED PAID   SHIPPED CANCELLED */
	[PENDING] = { false, true, true, true, true },
	[RESERVED] = { false, false, true, true, true },
	[PAID] = { false, false, false, true, true },
	[SHIPPED] = { false, false, false, false, false },
	[CANCELLED] = { false, false, false, false, false },
};

static void the_view_moves_only_forward_and_never_from_a_final_status(void **state)
{
	(void)state;
	for (int from = 0; from < GATEWAY_STATUS_COUNT; from++)
		for (int to = 0; to < GATEWAY_STATUS_COUNT; to++) {
			bool got = gateway_status_advances((enum gateway_status)from,
							   (enum gateway_status)to);
			if (got != advances[from][to])
				fail_msg("%s -> %s: %s, expected %s",
					 gateway_status_name((enum gateway_status)from),
					 gateway_status_name((enum gateway_status)to),
					 got ? "advances" : "stays",
					 advances[from][to] ? "advances" : "stays");
		}
}

static void shipped_and_cancelled_are_final_and_nothing_else_is(void **state)
{
	(void)state;
	static const bool final[GATEWAY_STATUS_COUNT] = {
		[PENDING] = false, [RESERVED] = false, [PAID] = false,
		[SHIPPED] = true,  [CANCELLED] = true,
	};
	for (int s = 0; s < GATEWAY_STATUS_COUNT; s++)
		assert_int_equal(gateway_status_final((enum gateway_status)s), final[s]);
}

static void every_status_name_parses_back_and_unknown_names_do_not(void **state)
{
	(void)state;
	static const char *const names[GATEWAY_STATUS_COUNT] = {
		[PENDING] = "PENDING", [RESERVED] = "RESERVED",   [PAID] = "PAID",
		[SHIPPED] = "SHIPPED", [CANCELLED] = "CANCELLED",
	};
	for (int s = 0; s < GATEWAY_STATUS_COUNT; s++) {
		enum gateway_status parsed = CANCELLED;
		assert_string_equal(gateway_status_name((enum gateway_status)s), names[s]);
		assert_true(gateway_status_parse(names[s], &parsed));
		assert_int_equal(parsed, s);
	}
	enum gateway_status untouched = PAID;
	assert_false(gateway_status_parse("pending", &untouched));
	assert_false(gateway_status_parse("", &untouched));
	assert_false(gateway_status_parse("CANCELLATION_REQUESTED", &untouched));
	assert_int_equal(untouched, PAID);
}

/* Only orders' four status events decide a status; -1: timeline only. */
static const int status_of_event[CT_MSG__COUNT] = {
	[CT_MSG_PLACE_ORDER] = -1,
	[CT_MSG_PLACE_ORDER_V2] = -1,
	[CT_MSG_SUBMIT_CARD] = -1,
	[CT_MSG_CANCEL_ORDER] = -1,
	[CT_MSG_ORDER_PLACED] = -1, /* creates the row PENDING; decides no move */
	[CT_MSG_ORDER_PLACED_V2] = -1,
	[CT_MSG_ORDER_RESERVED] = RESERVED,
	[CT_MSG_ORDER_PAID] = PAID,
	[CT_MSG_ORDER_SHIPPED] = SHIPPED,
	[CT_MSG_ORDER_CANCELLED] = CANCELLED,
	[CT_MSG_ORDER_CANCELLATION_REQUESTED] = -1, /* stays PAID until shipping answers */
	[CT_MSG_STOCK_RESERVED] = -1,
	[CT_MSG_STOCK_REJECTED] = -1,
	[CT_MSG_STOCK_RELEASED] = -1,
	[CT_MSG_STOCK_LEVEL_CHANGED] = -1,
	[CT_MSG_PAYMENT_AUTHORIZED] = -1,
	[CT_MSG_PAYMENT_DECLINED] = -1,
	[CT_MSG_PAYMENT_REFUNDED] = -1,
	[CT_MSG_SHIPMENT_SCHEDULED] = -1,
	[CT_MSG_SHIPMENT_DISPATCHED] = -1,
	[CT_MSG_SHIPMENT_CANCELLED] = -1,
	[CT_MSG_NOTIFICATION_SENT] = -1,
};

static void only_orders_status_events_decide_a_status(void **state)
{
	(void)state;
	_Static_assert(CT_MSG__COUNT == 22, "a new message: say above whether it decides a status");
	for (int id = 0; id < CT_MSG__COUNT; id++) {
		enum gateway_status got = PENDING;
		bool decides = gateway_status_of_event((enum ct_message_id)id, &got);
		if (decides != (status_of_event[id] >= 0) ||
		    (decides && (int)got != status_of_event[id]))
			fail_msg("%s: %s", ct_messages[id].name,
				 decides ? gateway_status_name(got) : "decides nothing");
	}
}

static void the_same_request_under_a_taken_key_replays_and_another_is_refused(void **state)
{
	(void)state;
	static const struct {
		const char *first, *request;
		enum gateway_idempotency_verdict verdict;
	} cases[] = {
		{ "{\"customer_id\":\"c-1\"}", "{\"customer_id\":\"c-1\"}",
		  GATEWAY_IDEMPOTENCY_REPLAY },
		{ "{\"customer_id\":\"c-1\"}", "{\"customer_id\":\"c-2\"}",
		  GATEWAY_IDEMPOTENCY_REFUSE },
		{ "{\"customer_id\":\"c-1\"}", "{\"customer_id\":\"c-1\",\"x\":1}",
		  GATEWAY_IDEMPOTENCY_REFUSE },
		{ "{}", "", GATEWAY_IDEMPOTENCY_REFUSE },
	};
	char stored[GATEWAY_FINGERPRINT_SIZE];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* As the record keeps it: the first request's fingerprint. */
		gateway_idempotency_fingerprint(cases[i].first, stored);
		assert_int_equal(gateway_idempotency_decide(stored, cases[i].request),
				 cases[i].verdict);
		/* A record written before fingerprints kept the JSON itself. */
		assert_int_equal(gateway_idempotency_decide(cases[i].first, cases[i].request),
				 cases[i].verdict);
	}
}

/* A record keeps a digest of the request, which holds the card token, and
 * never the request: the token is nowhere in it. */
static void an_idempotency_record_keeps_a_fingerprint_not_the_card_token(void **state)
{
	(void)state;
	static const char request[] = "{\"payment\":{\"card_token\":\"tok_visa\"}}";
	char stored[GATEWAY_FINGERPRINT_SIZE];
	gateway_idempotency_fingerprint(request, stored);
	assert_int_equal(strlen(stored), GATEWAY_FINGERPRINT_SIZE - 1);
	assert_int_equal(strncmp(stored, "sha256:", 7), 0);
	assert_null(strstr(stored, "tok_visa"));
	/* sha256 of the request, as sha256sum would print it. */
	assert_string_equal(stored + 7,
			    "f89efb14f12547e2e4d678386eeacded0c9c39157bd0817d168f50b94dbae6bd");
}

/* How the API answers each status a call can fail with (README.md). */
static void every_failed_status_has_one_http_answer(void **state)
{
	(void)state;
	static const struct {
		shop_status st;
		int http;
		const char *code;
	} table[] = {
		{ SHOP_E_INVALID, 500, "internal" }, /* our own command refused: our fault */
		{ SHOP_E_LIMIT, 500, "internal" },
		{ SHOP_E_NOT_FOUND, 404, "not_found" },
		{ SHOP_E_CONFLICT, 409, "conflict" },
		{ SHOP_E_DUPLICATE, 500, "internal" },
		{ SHOP_E_NOT_READY, 503, "unavailable" },
		{ SHOP_E_UNAVAILABLE, 503, "unavailable" },
		{ SHOP_E_TIMEOUT, 503, "unavailable" },
		{ SHOP_E_INTERNAL, 500, "internal" },
		{ SHOP_OK, 500, "internal" }, /* a success answered as a failure is a bug */
		{ (shop_status)1000, 500, "internal" }, /* and so is a status no one knows */
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct gateway_http_status *h = gateway_http_status_of(table[i].st);
		assert_non_null(h);
		if (h->status != table[i].http || strcmp(h->code, table[i].code) != 0)
			fail_msg("%s: %d %s, expected %d %s", shop_status_name(table[i].st),
				 h->status, h->code, table[i].http, table[i].code);
		assert_non_null(h->message);
	}
	assert_string_equal(gateway_http_status_of(SHOP_E_NOT_FOUND)->message, "no such order");
	assert_string_equal(gateway_http_status_of(SHOP_E_UNAVAILABLE)->message,
			    "the gateway's database is busy or unavailable; retry");
}

/* Metrics label routes by template: an id never becomes a label value. */
static void routes_are_templates_never_ids(void **state)
{
	assert_string_equal(gateway_route_of("/products"), "/products");
	assert_string_equal(gateway_route_of("/orders"), "/orders");
	assert_string_equal(gateway_route_of("/orders/0192f0c1-7d2a-7abc-8def-0123456789ab"),
			    "/orders/{id}");
	assert_string_equal(gateway_route_of("/orders/anything/cancel"), "/orders/{id}/cancel");
	assert_string_equal(gateway_route_of("/orders/"), SVC_HTTP_ROUTE_OTHER);
	assert_string_equal(gateway_route_of("/orders//cancel"), SVC_HTTP_ROUTE_OTHER);
	assert_string_equal(gateway_route_of("/orders/x/y"), SVC_HTTP_ROUTE_OTHER);
	assert_string_equal(gateway_route_of("/nothing"), SVC_HTTP_ROUTE_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_view_moves_only_forward_and_never_from_a_final_status),
		cmocka_unit_test(shipped_and_cancelled_are_final_and_nothing_else_is),
		cmocka_unit_test(every_status_name_parses_back_and_unknown_names_do_not),
		cmocka_unit_test(only_orders_status_events_decide_a_status),
		cmocka_unit_test(the_same_request_under_a_taken_key_replays_and_another_is_refused),
		cmocka_unit_test(an_idempotency_record_keeps_a_fingerprint_not_the_card_token),
		cmocka_unit_test(every_failed_status_has_one_http_answer),
		cmocka_unit_test(routes_are_templates_never_ids),
	};
	return cmocka_run_group_tests_name("gateway_domain", tests, NULL, NULL);
}
