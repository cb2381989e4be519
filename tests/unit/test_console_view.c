/*
 * test_console_view.c - the console's overview model
 * (services/console/console_view.c): instances from registry rounds and
 * status answers, NATS nodes, series, orders and their timelines, stock
 * and the latest warnings, rendered as the JSON of /api/overview and
 * /api/orders/<id>. The model is fed by hand here, as the collector
 * feeds it from NATS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/console/console.h"
#include "contracts_gen.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1764787200000LL /* 2025-12-03T18:40:00Z */
#define ORDER "0193a0b4-0000-7000-8000-000000000001"

static struct console_view view;

static int view_setup(void **state)
{
	(void)state;
	console_view_init(&view);
	return 0;
}

static int view_teardown(void **state)
{
	(void)state;
	console_view_release(&view);
	return 0;
}

static char *ping(const char *name, const char *id)
{
	return xasprintf("{\"type\":\"io.nats.micro.v1.ping_response\",\"name\":\"%s\",\"id\":\"%s\","
			 "\"version\":\"0.9.0\",\"metadata\":{}}",
			 name, id);
}

static void round_of(int64_t now_ms, const char *name1, const char *id1, const char *name2,
		     const char *id2)
{
	char *r[2] = { NULL, NULL };
	size_t n = 0;
	if (name1)
		r[n++] = ping(name1, id1);
	if (name2)
		r[n++] = ping(name2, id2);
	console_view_ping_round(&view, r, n, now_ms);
	free(r[0]);
	free(r[1]);
}

/* The overview, and one service of it. */
static cJSON *overview_service(cJSON **ret_root, const char *service)
{
	*ret_root = console_view_overview(&view, T0);
	cJSON *s = NULL;
	cJSON_ArrayForEach(
		s,
		cJSON_GetObjectItem(
			*ret_root,
			"services")) if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s,
											 "service")),
						service) == 0) return s;
	return NULL;
}

static const char *str_of(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
}

static void every_service_of_the_contracts_is_listed_down_before_any_instance_answers(void **state)
{
	(void)state;
	cJSON *root = NULL;
	cJSON *s = overview_service(&root, "payments");
	assert_non_null(s);
	assert_string_equal(str_of(s, "state"), "down");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s, "instances")), 0);
	cJSON_Delete(root);
	s = overview_service(&root, "console");
	assert_non_null(s);
	cJSON_Delete(root);
}

static void an_instance_is_up_once_its_status_says_ready_and_gone_after_missed_rounds(void **state)
{
	(void)state;
	cJSON *root = NULL;
	round_of(T0, "payments", "P1", NULL, NULL);
	cJSON *s = overview_service(&root, "payments");
	/* Answering PING is not enough: its status has not said ready yet. */
	assert_string_equal(str_of(s, "state"), "down");
	cJSON_Delete(root);

	console_view_status(&view, "payments", "P1",
			    "{\"status\":\"ready\",\"database\":true,\"db_backend\":\"postgres\","
			    "\"outbox_backlog\":3}",
			    T0);
	s = overview_service(&root, "payments");
	assert_string_equal(str_of(s, "state"), "up");
	cJSON *in = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "instances"), 0);
	assert_string_equal(str_of(in, "id"), "P1");
	assert_string_equal(str_of(in, "state"), "ready");
	assert_int_equal(cJSON_GetObjectItem(in, "outbox_backlog")->valueint, 3);
	assert_string_equal(str_of(cJSON_GetObjectItem(root, "postgres"), "state"), "up");
	cJSON_Delete(root);

	/* One missed round is not enough (a slow answer), two are. */
	round_of(T0 + 400, NULL, NULL, NULL, NULL);
	s = overview_service(&root, "payments");
	assert_string_equal(str_of(s, "state"), "up");
	cJSON_Delete(root);
	round_of(T0 + 800, NULL, NULL, NULL, NULL);
	s = overview_service(&root, "payments");
	assert_string_equal(str_of(s, "state"), "down");
	in = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "instances"), 0);
	assert_string_equal(str_of(in, "state"), "gone");
	assert_string_equal(str_of(cJSON_GetObjectItem(root, "postgres"), "state"), "unknown");
	cJSON_Delete(root);

	/* A restart is a new instance: up again, the old one still shown
	 * gone until CONSOLE_GONE_KEEP_MS have passed. */
	round_of(T0 + 1200, "payments", "P2", NULL, NULL);
	console_view_status(&view, "payments", "P2", "{\"status\":\"ready\"}", T0 + 1200);
	s = overview_service(&root, "payments");
	assert_string_equal(str_of(s, "state"), "up");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s, "instances")), 2);
	cJSON_Delete(root);
	round_of(T0 + 800 + CONSOLE_GONE_KEEP_MS + 1, "payments", "P2", NULL, NULL);
	s = overview_service(&root, "payments");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s, "instances")), 1);
	cJSON_Delete(root);
}

static void replicas_appear_on_their_own_and_an_unknown_service_is_added(void **state)
{
	(void)state;
	cJSON *root = NULL;
	round_of(T0, "payments", "A", "payments", "B");
	round_of(T0 + 400, "payments", "A", "loyalty", "L1");
	console_view_status(&view, "payments", "A", "{\"status\":\"not_ready\"}", T0);
	console_view_status(&view, "payments", "B", NULL, T0); /* no answer */
	cJSON *s = overview_service(&root, "payments");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s, "instances")), 2);
	assert_string_equal(str_of(s, "state"), "down");
	assert_string_equal(str_of(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "instances"), 0),
				   "state"),
			    "not_ready");
	cJSON_Delete(root);
	s = overview_service(&root, "loyalty");
	assert_non_null(s);
	cJSON_Delete(root);
}

static void a_nats_node_is_up_while_it_answers_varz(void **state)
{
	(void)state;
	console_view_node(&view, 0, "http://nats:8222",
			  "{\"server_name\":\"nats-1\",\"version\":\"2.10.27\",\"connections\":9}",
			  T0);
	console_view_node(&view, 1, "http://nats-2:8222", NULL, T0);
	cJSON *root = console_view_overview(&view, T0);
	cJSON *nodes = cJSON_GetObjectItem(root, "nats");
	assert_int_equal(cJSON_GetArraySize(nodes), 2);
	assert_string_equal(str_of(cJSON_GetArrayItem(nodes, 0), "state"), "up");
	assert_string_equal(str_of(cJSON_GetArrayItem(nodes, 0), "name"), "nats-1");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(nodes, 0), "connections")->valueint,
			 9);
	assert_string_equal(str_of(cJSON_GetArrayItem(nodes, 1), "state"), "down");
	cJSON_Delete(root);
}

static void series_keep_the_last_points_and_unknown_is_null(void **state)
{
	(void)state;
	int64_t *p = xcalloc(ct_n_consumers, sizeof(*p));
	int64_t *a = xcalloc(ct_n_consumers, sizeof(*a));
	for (int i = 0; i < CONSOLE_SERIES_POINTS + 5; i++) {
		p[0] = i;
		a[0] = i == CONSOLE_SERIES_POINTS + 4 ? -1 : 1;
		console_view_sample(&view, p, a);
	}
	cJSON *root = console_view_overview(&view, T0);
	cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "consumers"), 0);
	assert_string_equal(str_of(c0, "durable"), ct_consumers[0].durable);
	cJSON *pending = cJSON_GetObjectItem(c0, "pending");
	assert_int_equal(cJSON_GetArraySize(pending), CONSOLE_SERIES_POINTS);
	assert_int_equal(cJSON_GetArrayItem(pending, 0)->valueint, 5);
	assert_int_equal(cJSON_GetArrayItem(pending, CONSOLE_SERIES_POINTS - 1)->valueint,
			 CONSOLE_SERIES_POINTS + 4);
	assert_true(cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetObjectItem(c0, "ack_pending"),
						    CONSOLE_SERIES_POINTS - 1)));
	cJSON_Delete(root);
	free(p);
	free(a);
}

static void feed(enum ct_message_id m, const char *subject, const char *id, const char *time,
		 const char *data)
{
	char *json = xasprintf("{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/shop/%s\","
			       "\"type\":\"%s\",\"time\":\"%s\",\"subject\":\"%s\",\"data\":%s}",
			       id, ct_messages[m].producer, ct_messages[m].type, time, subject,
			       data ? data : "{}");
	console_view_event(&view, json, strlen(json));
	free(json);
}

static void an_order_s_timeline_is_in_time_order_once_per_event_and_its_state_moves_on(void **state)
{
	(void)state;
	feed(CT_MSG_PLACE_ORDER, ORDER, "e1", "2025-12-03T18:40:00.100Z", NULL);
	feed(CT_MSG_ORDER_PLACED, ORDER, "e2", "2025-12-03T18:40:00.200Z", NULL);
	/* Streams are read side by side: shipping's event comes before the
	 * order's own states that precede it. */
	feed(CT_MSG_SHIPMENT_SCHEDULED, ORDER, "e5", "2025-12-03T18:40:00.500Z", NULL);
	feed(CT_MSG_ORDER_PAID, ORDER, "e4", "2025-12-03T18:40:00.400Z", NULL);
	feed(CT_MSG_ORDER_RESERVED, ORDER, "e3", "2025-12-03T18:40:00.300Z", NULL);
	feed(CT_MSG_ORDER_RESERVED, ORDER, "e3", "2025-12-03T18:40:00.300Z", NULL); /* replayed */

	cJSON *o = console_view_order(&view, ORDER);
	assert_non_null(o);
	assert_string_equal(str_of(o, "status"), "PAID");
	cJSON *tl = cJSON_GetObjectItem(o, "timeline");
	assert_int_equal(cJSON_GetArraySize(tl), 5);
	const char *want[] = { "PlaceOrder", "OrderPlaced", "OrderReserved", "OrderPaid",
			       "ShipmentScheduled" };
	for (int i = 0; i < 5; i++)
		assert_string_equal(str_of(cJSON_GetArrayItem(tl, i), "type"), want[i]);
	assert_string_equal(str_of(cJSON_GetArrayItem(tl, 4), "source"), "shipping");
	cJSON_Delete(o);

	cJSON *root = console_view_overview(&view, 1764787201000LL);
	cJSON *orders = cJSON_GetObjectItem(root, "orders");
	assert_int_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(orders, "in_flight"), "PAID")->valueint, 1);
	cJSON *acc = cJSON_GetObjectItem(orders, "accepted_per_s");
	assert_int_equal(cJSON_GetArraySize(acc), CONSOLE_SERIES_POINTS);
	assert_int_equal(cJSON_GetArrayItem(acc, CONSOLE_SERIES_POINTS - 1)->valueint, 1);
	cJSON_Delete(root);

	feed(CT_MSG_ORDER_SHIPPED, ORDER, "e6", "2025-12-03T18:40:02.000Z", NULL);
	feed(CT_MSG_ORDER_PAID, ORDER, "e4b", "2025-12-03T18:40:02.100Z",
	     NULL); /* late: no effect */
	o = console_view_order(&view, ORDER);
	assert_string_equal(str_of(o, "status"), "SHIPPED");
	cJSON_Delete(o);
	root = console_view_overview(&view, 1764787203000LL);
	orders = cJSON_GetObjectItem(root, "orders");
	assert_int_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(orders, "in_flight"), "PAID")->valueint, 0);
	cJSON *shipped = cJSON_GetObjectItem(orders, "shipped_per_s");
	assert_int_equal(cJSON_GetArrayItem(shipped, CONSOLE_SERIES_POINTS - 1)->valueint, 1);
	cJSON_Delete(root);
	assert_null(console_view_order(&view, "no-such-order"));
}

static void the_oldest_order_is_forgotten_when_the_table_is_full(void **state)
{
	(void)state;
	char id[64], eid[64];
	for (int i = 0; i <= CONSOLE_ORDERS_MAX; i++) {
		snprintf(id, sizeof(id), "order-%d", i);
		snprintf(eid, sizeof(eid), "ev-%d", i);
		feed(CT_MSG_ORDER_PLACED, id, eid, "2025-12-03T18:40:00.000Z", NULL);
	}
	assert_null(console_view_order(&view, "order-0"));
	cJSON *o = console_view_order(&view, "order-1");
	assert_non_null(o);
	cJSON_Delete(o);
	o = console_view_order(&view, "order-4096");
	assert_non_null(o);
	cJSON_Delete(o);
	cJSON *root = console_view_overview(&view, T0);
	cJSON *in_flight = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "orders"), "in_flight");
	assert_int_equal(cJSON_GetObjectItem(in_flight, "PENDING")->valueint, CONSOLE_ORDERS_MAX);
	cJSON_Delete(root);
	/* Quiet past the bound: no longer in flight. */
	root = console_view_overview(&view, T0 + CONSOLE_IN_FLIGHT_MAX_AGE_MS + 1);
	in_flight = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "orders"), "in_flight");
	assert_int_equal(cJSON_GetObjectItem(in_flight, "PENDING")->valueint, 0);
	cJSON_Delete(root);
}

static void stock_keeps_the_highest_revision_of_each_sku(void **state)
{
	(void)state;
	feed(CT_MSG_STOCK_LEVEL_CHANGED, "SKU-B", "s1", "2025-12-03T18:40:00.000Z",
	     "{\"sku\":\"SKU-B\",\"name\":\"Bee\",\"price_cents\":100,\"currency\":\"EUR\","
	     "\"available\":5,\"revision\":2}");
	feed(CT_MSG_STOCK_LEVEL_CHANGED, "SKU-B", "s0", "2025-12-03T18:39:00.000Z",
	     "{\"sku\":\"SKU-B\",\"name\":\"Bee\",\"price_cents\":100,\"currency\":\"EUR\","
	     "\"available\":9,\"revision\":1}");
	feed(CT_MSG_STOCK_LEVEL_CHANGED, "SKU-A", "s2", "2025-12-03T18:40:00.000Z",
	     "{\"sku\":\"SKU-A\",\"name\":\"Ay\",\"price_cents\":1,\"currency\":\"EUR\","
	     "\"available\":0,\"revision\":7}");
	cJSON *root = console_view_overview(&view, T0);
	cJSON *stock = cJSON_GetObjectItem(root, "stock");
	assert_int_equal(cJSON_GetArraySize(stock), 2);
	assert_string_equal(str_of(cJSON_GetArrayItem(stock, 0), "sku"), "SKU-A");
	cJSON *b = cJSON_GetArrayItem(stock, 1);
	assert_int_equal(cJSON_GetObjectItem(b, "available")->valueint, 5);
	assert_int_equal(cJSON_GetObjectItem(b, "revision")->valueint, 2);
	cJSON_Delete(root);
}

static void the_latest_warnings_come_newest_first_and_at_most_the_limit(void **state)
{
	(void)state;
	char line[128];
	for (int i = 0; i < CONSOLE_LOGS_MAX + 3; i++) {
		snprintf(line, sizeof(line),
			 "{\"level\":\"warn\",\"service\":\"orders\",\"msg\":\"%d\"}", i);
		console_view_log(&view, line, strlen(line));
	}
	console_view_log(&view, "not json", 8);
	cJSON *root = console_view_overview(&view, T0);
	cJSON *logs = cJSON_GetObjectItem(root, "logs");
	assert_int_equal(cJSON_GetArraySize(logs), CONSOLE_LOGS_MAX);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(logs, 0)), "not json");
	char want[16];
	snprintf(want, sizeof(want), "%d", CONSOLE_LOGS_MAX + 2);
	assert_string_equal(str_of(cJSON_GetArrayItem(logs, 1), "msg"), want);
	cJSON_Delete(root);
}

static void monitor_urls_are_a_comma_separated_list_of_http_urls(void **state)
{
	(void)state;
	static struct console c;
	assert_true(console_monitor_urls_parse(&c, "http://nats:8222"));
	assert_int_equal(c.n_monitor_urls, 1);
	assert_true(console_monitor_urls_parse(
		&c, "http://nats-1:8222,http://nats-2:8222,http://nats-3:8222"));
	assert_int_equal(c.n_monitor_urls, 3);
	assert_string_equal(c.monitor_urls[2], "http://nats-3:8222");
	assert_false(console_monitor_urls_parse(&c, ""));
	assert_false(console_monitor_urls_parse(&c, "nats:8222"));
	assert_false(console_monitor_urls_parse(&c, "http://nats:8222,,http://x:1"));
	assert_false(console_monitor_urls_parse(&c, "http://nats:0"));
	assert_false(console_monitor_urls_parse(
		&c, "http://a:1,http://a:1,http://a:1,http://a:1,http://a:1,http://a:1,http://a:1,"
		    "http://a:1,http://a:1"));
	char host[64];
	uint16_t port = 0;
	const char *path = NULL;
	assert_true(console_url_parse("http://nats", host, sizeof(host), &port, &path));
	assert_string_equal(host, "nats");
	assert_int_equal(port, 80);
	assert_string_equal(path, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, view_setup, view_teardown)
		T(every_service_of_the_contracts_is_listed_down_before_any_instance_answers),
		T(an_instance_is_up_once_its_status_says_ready_and_gone_after_missed_rounds),
		T(replicas_appear_on_their_own_and_an_unknown_service_is_added),
		T(a_nats_node_is_up_while_it_answers_varz),
		T(series_keep_the_last_points_and_unknown_is_null),
		T(an_order_s_timeline_is_in_time_order_once_per_event_and_its_state_moves_on),
		T(the_oldest_order_is_forgotten_when_the_table_is_full),
		T(stock_keeps_the_highest_revision_of_each_sku),
		T(the_latest_warnings_come_newest_first_and_at_most_the_limit),
		cmocka_unit_test(monitor_urls_are_a_comma_separated_list_of_http_urls),
#undef T
	};
	xalloc_init_cjson();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
