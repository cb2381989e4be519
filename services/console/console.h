/*
 * console.h - the console service: a live page and a Server-Sent Events
 * stream of everything on the bus (issue 9).
 *
 * The console owns no data and no database. Each client of GET /stream gets
 * its own watch (libs/bus: one named ephemeral consumer per stream of the
 * contracts index), created when it connects and deleted when it leaves, so
 * an idle console holds only its overview's watches (console_collect.c) and
 * never touches the services' durables. Messages go from the watch's callback into the client's bounded
 * queue and from there, on the client's own HTTP thread, to its socket: a
 * slow client fills its own queue and is dropped, and slows no one else.
 */
#ifndef SHOP_CONSOLE_CONSOLE_H
#define SHOP_CONSOLE_CONSOLE_H

#include "bus/bus.h"
#include "core/status.h"
#include "metrics/metrics.h"
#include "web/web.h"

#include <cjson/cJSON.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_SERVICE_NAME "console"

/* Concurrent /stream clients. Each costs one consumer per stream on the
 * server and a thread per stream here (the watch's), and each reads every message of the bus
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

/*
 * The overview (console_view.c, filled by console_collect.c): what the page
 * draws, kept in memory and answered as JSON by GET /api/overview and
 * GET /api/orders/<id>. Everything in it comes from NATS:
 *   - instances from the service registry ($SRV.PING, then each instance's
 *     status endpoint), every CONSOLE_REGISTRY_POLL_MS;
 *   - NATS nodes from their monitoring endpoint (/varz), the servers listed
 *     in SHOP_CONSOLE_NATS_MONITOR;
 *   - per durable pending and ack-pending from JetStream consumer info, per
 *     service the outbox backlog its instances report, sampled every
 *     CONSOLE_SAMPLE_MS into series of CONSOLE_SERIES_POINTS;
 *   - orders, timelines and stock from a watch of the streams;
 *   - the latest warnings and errors from logs.*.warn and logs.*.error.
 */
#define CONSOLE_REGISTRY_POLL_MS 400 /* $SRV.PING round, then status requests */
#define CONSOLE_PING_WAIT_MS 250     /* replies to one PING are gathered this long */
#define CONSOLE_STATUS_WAIT_MS 300   /* one instance's status request */
/* An instance missing from this many PING rounds in a row is gone: with
 * the poll and the wait above, within about 1.2 s of its death. */
#define CONSOLE_GONE_AFTER_MISSES 2
#define CONSOLE_GONE_KEEP_MS 60000     /* a gone instance stays listed (red) this long */
#define CONSOLE_INSTANCES_MAX 64       /* instances listed; more are left out */
#define CONSOLE_SERVICES_MAX 32        /* service names listed */
#define CONSOLE_NAME_MAX 64            /* bytes of a service name, instance id or version */
#define CONSOLE_SAMPLE_MS 1000         /* consumer, outbox and NATS node sampling */
#define CONSOLE_SERIES_POINTS 120      /* samples kept per series: two minutes */
#define CONSOLE_NATS_NODES_MAX 8       /* monitoring URLs in SHOP_CONSOLE_NATS_MONITOR */
#define CONSOLE_URL_MAX 256            /* bytes of one monitoring URL */
#define CONSOLE_MONITOR_TIMEOUT_MS 500 /* one /varz request */
#define CONSOLE_MONITOR_REPLY_MAX (256 * 1024)
#define CONSOLE_NATS_MONITOR_DEFAULT "http://nats:8222"
/* Orders whose state and timeline are kept (the oldest is forgotten first),
 * events kept per order, and how far back the watch starts so that every
 * order in flight when the console starts is seen: orders are swept past
 * their deadline (60 s by default), so two minutes back covers them. */
#define CONSOLE_ORDERS_MAX 4096
#define CONSOLE_TIMELINE_MAX 32
#define CONSOLE_ORDERS_LOOKBACK_MS 120000
/* An order with no event for this long is no longer counted in flight:
 * the sweeper ends every order past its deadline (60 s by default), so one
 * that stays quiet is one the bus never carried further (a command that
 * was dead-lettered). */
#define CONSOLE_IN_FLIGHT_MAX_AGE_MS CONSOLE_ORDERS_LOOKBACK_MS
#define CONSOLE_SKUS_MAX 256      /* SKUs whose stock is shown */
#define CONSOLE_LOGS_MAX 50       /* latest warnings and errors kept */
#define CONSOLE_LOG_LINE_MAX 2048 /* a longer log line is cut */

enum console_instance_state { CONSOLE_READY, CONSOLE_NOT_READY, CONSOLE_GONE };

struct console_instance {
	char service[CONSOLE_NAME_MAX];
	char id[CONSOLE_NAME_MAX];
	char version[CONSOLE_NAME_MAX];
	enum console_instance_state state;
	int misses;          /* PING rounds in a row it did not answer */
	int64_t since_ms;    /* wall clock of its last state change */
	char db_backend[16]; /* "postgres", "sqlite" or "" */
	bool db_ok;
	int64_t outbox_backlog; /* -1: unknown */
};

/* A fixed ring of samples, the oldest dropped first. */
struct console_series {
	int64_t v[CONSOLE_SERIES_POINTS];
	size_t head, n;
};

/* Counts per second of wall clock, for the last CONSOLE_SERIES_POINTS s. */
struct console_rate {
	int64_t sec[CONSOLE_SERIES_POINTS];
	int64_t count[CONSOLE_SERIES_POINTS];
};

struct console_node {
	char url[CONSOLE_URL_MAX];
	bool up;
	char name[CONSOLE_NAME_MAX];
	char version[CONSOLE_NAME_MAX];
	int64_t connections;
	int64_t mem_bytes;
	int64_t in_msgs, out_msgs;
	int64_t since_ms;
};

enum console_order_status {
	CONSOLE_ORDER_ACCEPTED, /* the gateway's command is on the bus */
	CONSOLE_ORDER_PENDING,
	CONSOLE_ORDER_RESERVED,
	CONSOLE_ORDER_PAID,
	CONSOLE_ORDER_SHIPPED,
	CONSOLE_ORDER_CANCELLED,
	CONSOLE_ORDER__COUNT
};

struct console_event {
	char id[CONSOLE_NAME_MAX];
	char title[CONSOLE_NAME_MAX];  /* "OrderPlaced" */
	char source[CONSOLE_NAME_MAX]; /* the producing service */
	char time[CONSOLE_SINCE_MAX + 1];
};

struct console_order {
	char id[CONSOLE_ORDER_ID_MAX + 1]; /* "" for a free slot */
	enum console_order_status status;
	bool tracked;    /* an event that sets the state was seen (else: status unknown) */
	int64_t last_ms; /* time of its latest event */
	int next;        /* next slot in its hash bucket, -1 at the end */
	size_t n_events;
	struct console_event events[CONSOLE_TIMELINE_MAX];
};

struct console_sku {
	char sku[CONSOLE_NAME_MAX];
	char name[128];
	int64_t available;
	int64_t revision;
	int64_t price_cents;
	char currency[8];
	int64_t changed_ms;
};

#define CONSOLE_ORDER_BUCKETS 8192 /* hash buckets of the order table */

struct console_view {
	pthread_mutex_t mu;
	/* Registry */
	struct console_instance instances[CONSOLE_INSTANCES_MAX];
	size_t n_instances;
	char services[CONSOLE_SERVICES_MAX][CONSOLE_NAME_MAX]; /* known names, sorted */
	size_t n_services;
	bool registry_ok; /* the last PING round could be made */
	/* NATS nodes */
	struct console_node nodes[CONSOLE_NATS_NODES_MAX];
	size_t n_nodes;
	/* Series: per durable of the contracts (ct_consumers order), per service */
	struct console_series *pending;     /* ct_n_consumers of them */
	struct console_series *ack_pending; /* ct_n_consumers of them */
	struct console_series outbox[CONSOLE_SERVICES_MAX];
	/* Orders */
	struct console_rate accepted, shipped, cancelled;
	struct console_order *orders; /* CONSOLE_ORDERS_MAX slots, reused oldest first */
	int buckets[CONSOLE_ORDER_BUCKETS];
	size_t next_slot;
	/* Stock */
	struct console_sku skus[CONSOLE_SKUS_MAX];
	size_t n_skus;
	/* Latest warnings and errors: raw JSON lines, a ring */
	char *logs[CONSOLE_LOGS_MAX];
	size_t logs_head, n_logs;
};

void console_view_init(struct console_view *v);
void console_view_release(struct console_view *v);
/* Adds a service name to the list shown (the contracts' services and every
 * name the registry gives). */
void console_view_service_add(struct console_view *v, const char *name);
/* One PING round: replies[i] are $SRV.PING answers (JSON). Instances that
 * answered are ready or not as their status last said; the others count a
 * miss, and are gone after CONSOLE_GONE_AFTER_MISSES; gone ones are dropped
 * after CONSOLE_GONE_KEEP_MS. */
void console_view_ping_round(struct console_view *v, char *const *replies, size_t n,
			     int64_t now_ms);
/* The instance's status endpoint answered json (NULL: it did not answer). */
void console_view_status(struct console_view *v, const char *service, const char *id,
			 const char *json, int64_t now_ms);
/* The PING round could not be made (NATS unreachable): nothing is known. */
void console_view_registry_down(struct console_view *v);
/* One NATS node's /varz (NULL: it did not answer). */
void console_view_node(struct console_view *v, size_t i, const char *url, const char *varz,
		       int64_t now_ms);
/* One sample of every series: pending[i] and ack_pending[i] per ct_consumers
 * entry (-1 unknown); the outbox series from the instances' last reports. */
void console_view_sample(struct console_view *v, const int64_t *pending,
			 const int64_t *ack_pending);
/* One message of the streams (CloudEvents JSON). */
void console_view_event(struct console_view *v, const char *data, size_t len);
/* One log line from logs.*.warn or logs.*.error. */
void console_view_log(struct console_view *v, const char *data, size_t len);
/* GET /api/overview's body; now_ms stamps it. */
cJSON *console_view_overview(struct console_view *v, int64_t now_ms);
/* GET /api/orders/<id>'s body, or NULL when the order is not known. */
cJSON *console_view_order(struct console_view *v, const char *order_id);
const char *console_order_status_name(enum console_order_status s);

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
	struct bus_log *bus_log;      /* its own log lines on NATS; NULL if not */
	const char *gateway_host;
	uint16_t gateway_port;
	pthread_mutex_t mu;
	int clients; /* connected /stream clients, guarded by mu */
	struct console_view view;
	/* The collector (console_collect.c) */
	char monitor_urls[CONSOLE_NATS_NODES_MAX][CONSOLE_URL_MAX];
	size_t n_monitor_urls;
	pthread_t registry_thread, sample_thread;
	bool collecting;
	bool stopping; /* guarded by mu; wake is signalled */
	pthread_cond_t stop_cond;
	struct bus_watch *events_watch, *stock_watch;
	struct bus_sub *warn_sub, *error_sub;
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
/* Splits a raw HTTP/1.x answer into its status and body: sized by
 * Content-Length, chunked (decoded in place: raw changes past the head), or
 * read to the end; anything malformed or cut short is SHOP_E_INVALID.
 * Exposed for tests. */
shop_status console_http_reply_parse(char *raw, size_t len, int *ret_status, size_t *ret_body_off,
				     size_t *ret_body_len);

/* The web handler: routes every request of the console. ctx is the console. */
void console_http(void *ctx, const struct web_request *req, struct web_response *res);
/* The console's /readyz JSON, for the registry's status endpoint
 * (bus_service_register); ctx is the struct console. */
char *console_registry_status(void *ctx);

/* Parses SHOP_CONSOLE_NATS_MONITOR (comma-separated http:// URLs) into
 * c->monitor_urls; false when one is malformed or there are too many. */
bool console_monitor_urls_parse(struct console *c, const char *list);
/* Starts the collector's threads, watches and subscriptions; the watches
 * that cannot start yet (NATS down) are retried by the sampler. */
void console_collect_start(struct console *c);
void console_collect_stop(struct console *c);
/* Splits an http://host[:port][/path] URL; false when it is not one. */
bool console_url_parse(const char *url, char *host, size_t host_size, uint16_t *ret_port,
		       const char **ret_path);
/* GET path from host:port within timeout_ms: the body when the status is
 * 200 (malloc'd, NUL-terminated), else NULL. */
char *console_http_get(const char *host, uint16_t port, const char *path, int64_t timeout_ms,
		       size_t max);

/* Every stream of the contracts index, each with each of its subjects, as
 * watch sources (at most cap); how many. */
size_t console_stream_sources(struct bus_watch_source *src, size_t cap);

/* GET /api/overview and GET /api/orders/<id>. */
void console_overview_serve(struct console *c, const struct web_request *req,
			    struct web_response *res);
void console_order_serve(struct console *c, const struct web_request *req,
			 struct web_response *res);

/* The page, embedded at build time from services/console/page/ (generated). */
extern const char console_page_html[];
extern const size_t console_page_html_len;

#endif
