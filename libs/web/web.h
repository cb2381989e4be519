/*
 * web.h - a small HTTP server on libmicrohttpd for JSON APIs and probes.
 *
 * The server owns the transport rules so that handlers only decide: bodies
 * are capped while they stream in (413 before the handler runs), every
 * response is JSON with an X-Request-Id, and errors share one shape:
 *   {"error":{"code":"...","message":"...","details":[{"field","problem"}]}}
 * It runs one thread per connection, so a handler may block (the gateway's
 * long-poll GET does) without stalling other clients; WEB_CONNECTIONS_MAX
 * bounds the threads.
 *
 * A response may also be a stream of unknown length (Server-Sent Events):
 * web_respond_stream hands the server a read function that the
 * connection's own thread calls whenever the client can take more, until
 * the stream ends, the client goes away or the server stops.
 */
#ifndef SHOP_WEB_WEB_H
#define SHOP_WEB_WEB_H

#include "core/status.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WEB_BODY_MAX (64 * 1024)    /* larger request bodies get 413 */
#define WEB_CONNECTIONS_MAX 512     /* concurrent connections (threads) */
#define WEB_CONNECTION_TIMEOUT_S 60 /* idle connection is closed after this */
/* The front door: what keeps one client from holding every connection.
 * From one IP address at most WEB_CONNECTIONS_PER_IP_MAX connections are
 * open at once (one more is closed as soon as it is accepted): above the
 * load test's 256 requests in flight, well below WEB_CONNECTIONS_MAX, so
 * others always find some left. A connection must deliver a request's
 * whole head (request line and headers) within WEB_HEADER_DEADLINE_MS of
 * being opened, or of the previous response on a kept-alive connection, and
 * its whole body within WEB_BODY_DEADLINE_MS of the head; otherwise it is
 * cut (closed without an answer), however steadily the bytes trickle in,
 * which MHD's idle timeout alone does not catch. Once the request is in,
 * the handler's time is its own (a long-poll, a stream). A watcher checks
 * every WEB_DEADLINE_CHECK_MS, so a cut comes at most that late. */
#define WEB_CONNECTIONS_PER_IP_MAX 320
#define WEB_HEADER_DEADLINE_MS 10000
#define WEB_BODY_DEADLINE_MS 15000 /* 64 KiB at 4.4 KB/s or faster */
#define WEB_DEADLINE_CHECK_MS 250
#define WEB_REQUEST_ID_MAX 64 /* a longer X-Request-Id is replaced */
#define WEB_HEADERS_MAX 8     /* extra response headers per response */
/* Bytes a stream's read function is offered per call: one SSE event of a
 * typical envelope fits several times over. */
#define WEB_STREAM_BLOCK 16384
/* A stream's read function should return within this long even when it has
 * nothing to send (returning 0): the server checks in between whether it is
 * stopping (so web_server_stop waits at most about this long for a stream)
 * and whether the client has gone (so its producer is released soon). */
#define WEB_STREAM_WAIT_MAX_MS 1000

/* What a stream's read function returns when the stream is over. */
#define WEB_STREAM_END ((ssize_t) - 1)

struct web_server;
struct web_request;

/* A streamed body. read copies up to max bytes into buf and returns how many,
 * or 0 when nothing came within about WEB_STREAM_WAIT_MAX_MS (it is called
 * again), or WEB_STREAM_END. It runs on the connection's own thread and may
 * block that long. release is called exactly once, when the response is
 * done with (stream ended, client gone, server stopped, or the response was
 * never sent), and never while read runs. */
typedef ssize_t (*web_stream_read_fn)(void *arg, char *buf, size_t max);
typedef void (*web_stream_release_fn)(void *arg);

struct web_response {
	int status;
	cJSON *body; /* owned by the response; serialised by the server */
	char *text;  /* or a body already in text (owned), sent as it is */
	size_t text_len;
	struct {
		web_stream_read_fn read; /* or a stream (arg owned through release) */
		web_stream_release_fn release;
		void *arg;
	} stream;
	struct {
		const char *name;
		char *value; /* owned */
	} headers[WEB_HEADERS_MAX];
	size_t n_headers;
};

/* Called once per request with the complete body. The handler fills res;
 * a handler that leaves res->status at 0 produces a 500. */
typedef void (*web_handler_fn)(void *ctx, const struct web_request *req, struct web_response *res);

shop_status web_server_start(const char *bind_addr, uint16_t port, web_handler_fn handler,
			     void *ctx, struct web_server **ret_server);
/* The front door's limits, for tests that cannot wait the real ones out:
 * web_server_start uses the constants above. */
struct web_limits {
	unsigned int connections_per_ip;
	int64_t header_deadline_ms;
	int64_t body_deadline_ms;
};
shop_status web_server_start_limited(const char *bind_addr, uint16_t port, web_handler_fn handler,
				     void *ctx, const struct web_limits *limits,
				     struct web_server **ret_server);
/* Connections cut so far for missing a deadline. */
uint64_t web_server_cut_count(const struct web_server *s);
void web_server_stop(struct web_server *s); /* accepts NULL */
/* The port the server listens on: the one asked for, or the one the kernel
 * chose when web_server_start was given port 0. */
uint16_t web_server_port(const struct web_server *s);

const char *web_request_method(const struct web_request *req);
const char *web_request_path(const struct web_request *req); /* without the query */
const char *web_request_header(const struct web_request *req, const char *name);
const char *web_request_query(const struct web_request *req, const char *name);
const char *web_request_body(const struct web_request *req, size_t *ret_len);
const char *web_request_id(const struct web_request *req);
/* An incoming X-Request-Id the server keeps: 1 to WEB_REQUEST_ID_MAX of
 * [A-Za-z0-9._-]; any other is replaced by a fresh UUID. */
bool web_request_id_valid(const char *s);

/* Sets status and takes ownership of body (may be NULL for no body). */
void web_respond_json(struct web_response *res, int status, cJSON *body);
/* Sets status and a text body (taken: freed with free()), sent with the
 * given Content-Type instead of JSON; for /metrics. */
void web_respond_text(struct web_response *res, int status, const char *content_type, char *text,
		      size_t len);
/* Sets status and a streamed body of unknown length, sent with the given
 * Content-Type (chunked on HTTP/1.1). The response owns arg from here on:
 * release(arg) is called once whatever happens, also if the response is
 * replaced or never sent. */
void web_respond_stream(struct web_response *res, int status, const char *content_type,
			web_stream_read_fn read, web_stream_release_fn release, void *arg);
/* Error body in the shared shape; details may be NULL (taken otherwise). */
void web_respond_error(struct web_response *res, int status, const char *code, const char *message,
		       cJSON *details);
/* Adds a response header. VALUE is copied; NAME is not (pass a literal). A
 * header named like a default one (Content-Type, Cache-Control) replaces it;
 * X-Request-Id belongs to the server and a handler's one is ignored.
 * More than WEB_HEADERS_MAX is a programming error: asserted, then dropped. */
void web_response_header(struct web_response *res, const char *name, const char *value);

#endif
