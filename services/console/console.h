/*
 * console.h - the console service: a live page and a Server-Sent Events
 * stream of everything on the bus (issue 9).
 *
 * The console owns no data and no database. Each client of GET /stream gets
 * its own watch (libs/bus: one ordered ephemeral consumer per stream of the
 * contracts index), created when it connects and deleted when it leaves, so
 * an idle console holds no consumer at all and never touches the services'
 * durables. Messages go from the nats.c callback into the client's bounded
 * queue and from there, on the client's own HTTP thread, to its socket: a
 * slow client fills its own queue and is dropped, and slows no one else.
 */
#ifndef SHOP_CONSOLE_CONSOLE_H
#define SHOP_CONSOLE_CONSOLE_H

#include "bus/bus.h"
#include "core/status.h"
#include "metrics/metrics.h"
#include "web/web.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_SERVICE_NAME "console"

/* Concurrent /stream clients. Each costs one ordered consumer per stream on
 * the server and a thread here, and each reads every message of the bus
 * (1000 orders/s is about 11,500 messages/s): a handful of browsers is the
 * use, more is refused with 503. */
#define CONSOLE_CLIENTS_MAX 8
/* Events queued for one client that has not taken them yet, in count and
 * in bytes; one more drops the client. Most of a second of the bus at full
 * load, which a client on a working connection always keeps up with. */
#define CONSOLE_QUEUE_MAX 8192
#define CONSOLE_QUEUE_BYTES_MAX (8 * 1024 * 1024)
/* A comment line goes to an idle client this often, so a client that went
 * away is noticed (the write fails) and proxies keep the connection. */
#define CONSOLE_KEEPALIVE_MS 15000
/* The browser's EventSource reconnects after this long (SSE retry:). */
#define CONSOLE_RETRY_MS 2000
/* Longest order id accepted in ?order= (the envelope's subject). */
#define CONSOLE_ORDER_ID_MAX 128
/* Longest ?since= value (RFC 3339 with nanoseconds and an offset fits). */
#define CONSOLE_SINCE_MAX 40

/* POST /orders is forwarded to the gateway (SHOP_CONSOLE_GATEWAY). */
#define CONSOLE_PROXY_TIMEOUT_MS 10000       /* connect, send, and the whole answer */
#define CONSOLE_PROXY_REPLY_MAX (128 * 1024) /* a longer answer is a 502 */
#define CONSOLE_GATEWAY_DEFAULT "gateway:8080"
#define CONSOLE_HOST_MAX 255 /* bytes of the gateway's host name */

/* One queued SSE event, already framed. */
struct console_frame {
	char *text;
	size_t len;
};

/* A bounded FIFO of frames. Not locked: its owner (a client) locks. */
struct console_queue {
	struct console_frame *ring; /* CONSOLE_QUEUE_MAX slots */
	size_t head;                /* next to pop */
	size_t n;
	size_t bytes;
};

void console_queue_init(struct console_queue *q);
void console_queue_release(struct console_queue *q); /* frees every frame */
/* Takes frame on success; SHOP_E_LIMIT (frame left to the caller) when it
 * would pass CONSOLE_QUEUE_MAX or CONSOLE_QUEUE_BYTES_MAX. */
shop_status console_queue_push(struct console_queue *q, struct console_frame frame);
/* The oldest frame (the caller frees its text); false when empty. */
bool console_queue_pop(struct console_queue *q, struct console_frame *ret_frame);

/* The SSE event for one bus message: its JSON as data, one "data:" line per
 * line of it (a line break cannot be inside a data line), then a blank line. */
struct console_frame console_sse_frame(const char *data, size_t len);

/* True when the envelope in data has `subject` equal to order_id. Cheap
 * for the common miss: the JSON is parsed only if the id occurs in it. */
bool console_envelope_is_about(const char *data, size_t len, const char *order_id);

/* True when s is a usable ?order= value: 1..CONSOLE_ORDER_ID_MAX printable
 * ASCII characters. */
bool console_order_id_valid(const char *s);

/* Parses an RFC 3339 timestamp ("2026-11-27T08:55:21Z", fractions and
 * offsets allowed) into milliseconds since the epoch. SHOP_E_INVALID for
 * anything else. */
shop_status console_rfc3339_parse(const char *s, int64_t *ret_ms);

/* The service's shared state. */
struct console {
	struct bus *bus;
	struct bus_service *registry; /* $SRV.* answers; NULL if registering failed */
	const char *gateway_host;
	uint16_t gateway_port;
	pthread_mutex_t mu;
	int clients; /* connected /stream clients, guarded by mu */
	struct metrics_registry *metrics;
	struct metrics_gauge *m_clients;
	struct metrics_counter *m_events;
	struct metrics_counter *m_dropped;
	struct metrics_counter *m_refused;
	struct metrics_counter *m_http;
};

/* Registers the console's metrics (aborts on a programming error). */
void console_metrics_init(struct console *c);

/* GET /stream: answers a stream, 400 for a bad query, 503 when full or
 * the bus is down. */
void console_stream_serve(struct console *c, const struct web_request *req,
			  struct web_response *res);

/* POST /orders: forwards the request to the gateway and its answer back. */
void console_proxy_serve(struct console *c, const struct web_request *req,
			 struct web_response *res);
/* Splits a raw HTTP/1.x answer into its status and body (Content-Length or
 * read to the end; a chunked answer is SHOP_E_INVALID). Exposed for tests. */
shop_status console_http_reply_parse(const char *raw, size_t len, int *ret_status,
				     size_t *ret_body_off, size_t *ret_body_len);

/* The web handler: routes every request of the console. ctx is the console. */
void console_http(void *ctx, const struct web_request *req, struct web_response *res);
/* The console's /readyz JSON, for the registry's status endpoint
 * (bus_service_register); ctx is the struct console. */
char *console_registry_status(void *ctx);

/* The page, embedded at build time from services/console/page/ (generated). */
extern const char console_page_html[];
extern const size_t console_page_html_len;

#endif
