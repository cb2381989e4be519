/*
 * console_api.c - the console's HTTP routes and metrics.
 *
 *   GET  /          the page (services/console/page/index.html, embedded)
 *   GET  /stream    Server-Sent Events: ?order=<id>, ?since=<RFC 3339>
 *   GET  /api/overview     what the page draws (console_view.c), as JSON
 *   GET  /api/orders/<id>  one order's state and timeline, as JSON
 *   POST /orders    forwarded to the gateway (console_proxy.c)
 *   GET  /healthz   the process runs
 *   GET  /readyz    connected to NATS
 *   GET  /metrics   Prometheus text
 * Any other path is 404, a known path with another method 405 with Allow.
 */
#include "console.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONSOLE_LABELS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Constant names: a failure to register is a bug, found at start-up. */
static void console_metrics_must(shop_status st, const char *name)
{
	if (st == SHOP_OK)
		return;
	log_error(NULL, "registering metric %s: %s", name, shop_status_name(st));
	abort();
}

void console_metrics_init(struct console *c)
{
	const struct {
		const char *name;
		const char *help;
		struct metrics_counter **handle;
	} counters[] = {
		{ "shop_console_events_sent_total", "Bus messages sent to stream clients.",
		  &c->m_events },
		{ "shop_console_clients_dropped_total",
		  "Stream clients dropped because their queue was full.", &c->m_dropped },
		{ "shop_console_clients_refused_total",
		  "Stream clients refused because the console was full.", &c->m_refused },
	};
	c->metrics = metrics_registry_new();
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		console_metrics_must(metrics_counter_register(c->metrics, counters[i].name,
							      counters[i].help, NULL,
							      counters[i].handle),
				     counters[i].name);
	console_metrics_must(metrics_gauge_register(c->metrics, "shop_console_stream_clients",
						    "Clients connected to GET /stream.", NULL,
						    &c->m_clients),
			     "shop_console_stream_clients");
	/* The name and labels of every service's (docs/metrics.md). */
	console_metrics_must(metrics_counter_register(c->metrics, "shop_http_requests_total",
						      "HTTP requests answered, by route and status.",
						      CONSOLE_LABELS("service", "route", "status"),
						      &c->m_http),
			     "shop_http_requests_total");
}

struct console_route {
	const char *path;
	const char *method;
	void (*serve)(struct console *c, const struct web_request *req, struct web_response *res);
};

static void console_page_serve(struct console *c, const struct web_request *req,
			       struct web_response *res)
{
	(void)c;
	(void)req;
	char *page = xmalloc(console_page_html_len + 1);
	memcpy(page, console_page_html, console_page_html_len + 1);
	web_respond_text(res, 200, "text/html; charset=utf-8", page, console_page_html_len);
}

static void console_healthz_serve(struct console *c, const struct web_request *req,
				  struct web_response *res)
{
	(void)c;
	(void)req;
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "service", CONSOLE_SERVICE_NAME);
	cJSON_AddStringToObject(body, "status", "ok");
	web_respond_json(res, 200, body);
}

/* Ready: connected to NATS. The /readyz body; *ret_ok tells which. */
static cJSON *console_readiness(struct console *c, bool *ret_ok)
{
	bool broker = bus_is_connected(c->bus);
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "service", CONSOLE_SERVICE_NAME);
	cJSON_AddBoolToObject(body, "broker", broker);
	cJSON_AddStringToObject(body, "status", broker ? "ready" : "not_ready");
	*ret_ok = broker;
	return body;
}

static void console_readyz_serve(struct console *c, const struct web_request *req,
				 struct web_response *res)
{
	(void)req;
	bool ok = false;
	cJSON *body = console_readiness(c, &ok);
	web_respond_json(res, ok ? 200 : 503, body);
}

char *console_registry_status(void *ctx)
{
	bool ok = false;
	cJSON *body = console_readiness(ctx, &ok);
	char *json = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	return json;
}

static void console_metrics_serve(struct console *c, const struct web_request *req,
				  struct web_response *res)
{
	(void)req;
	size_t len = 0;
	char *text = metrics_render(c->metrics, &len);
	web_respond_text(res, 200, METRICS_CONTENT_TYPE, text, len);
}

void console_overview_serve(struct console *c, const struct web_request *req,
			    struct web_response *res)
{
	(void)req;
	web_response_header(res, "Cache-Control", "no-store");
	web_respond_json(res, 200, console_view_overview(&c->view, clock_now_ms()));
}

#define CONSOLE_ORDER_PATH "/api/orders/"

void console_order_serve(struct console *c, const struct web_request *req, struct web_response *res)
{
	const char *id = web_request_path(req) + strlen(CONSOLE_ORDER_PATH);
	cJSON *body = console_order_id_valid(id) ? console_view_order(&c->view, id) : NULL;
	web_response_header(res, "Cache-Control", "no-store");
	if (!body) {
		web_respond_error(res, 404, "not_found",
				  "no such order in the console's memory (the last 4096 orders "
				  "seen on the bus)",
				  NULL);
		return;
	}
	web_respond_json(res, 200, body);
}

static const struct console_route console_routes[] = {
	{ "/", "GET", console_page_serve },
	{ "/stream", "GET", console_stream_serve },
	{ "/orders", "POST", console_proxy_serve },
	{ "/healthz", "GET", console_healthz_serve },
	{ "/readyz", "GET", console_readyz_serve },
	{ "/metrics", "GET", console_metrics_serve },
	{ "/api/overview", "GET", console_overview_serve },
};

void console_http(void *ctx, const struct web_request *req, struct web_response *res)
{
	struct console *c = ctx;
	const char *path = web_request_path(req);
	const char *route = "other"; /* a label, never the raw path */
	const struct console_route *r = NULL;
	for (size_t i = 0; i < sizeof(console_routes) / sizeof(console_routes[0]); i++)
		if (strcmp(console_routes[i].path, path) == 0)
			r = &console_routes[i];
	/* The one route with a parameter; its label is the template. */
	static const struct console_route order_route = { "/api/orders/{id}", "GET",
							  console_order_serve };
	if (!r && strncmp(path, CONSOLE_ORDER_PATH, strlen(CONSOLE_ORDER_PATH)) == 0)
		r = &order_route;
	if (!r) {
		web_respond_error(res, 404, "not_found", "no such resource", NULL);
	} else if (strcmp(web_request_method(req), r->method) != 0) {
		route = r->path;
		web_response_header(res, "Allow", r->method);
		web_respond_error(res, 405, "method_not_allowed", "method not allowed here", NULL);
	} else {
		route = r->path;
		r->serve(c, req, res);
	}
	char status[8];
	snprintf(status, sizeof(status), "%d", res->status);
	metrics_counter_add(c->m_http, CONSOLE_LABELS(CONSOLE_SERVICE_NAME, route, status), 1);
}
