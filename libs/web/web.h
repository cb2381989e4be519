/*
 * web.h - a small HTTP server on libmicrohttpd for JSON APIs and probes.
 *
 * The server owns the transport rules so that handlers only decide: bodies
 * are capped while they stream in (413 before the handler runs), every
 * response is JSON with an X-Request-Id, and errors share one shape:
 *   {"error":{"code":"...","message":"...","details":[{"field","problem"}]}}
 * It runs in one of two modes (enum web_mode):
 *   - thread per connection (web_server_start): a handler may block
 *     without stalling other clients, and a response may be a stream of
 *     unknown length (Server-Sent Events: the console), whose read function
 *     the connection's own thread calls whenever the client can take more,
 *     until the stream ends, the client goes away or the server stops;
 *     WEB_CONNECTIONS_MAX bounds the threads;
 *   - pool (web_server_start_pool): an epoll event loop on WEB_POOL_THREADS
 *     threads serves every connection. A handler that blocks holds one of
 *     them, and with it the other connections that thread serves (a POST's
 *     group commit does, for a few milliseconds; that is expected), so a
 *     request that must wait for something (the gateway's long-poll GET)
 *     answers web_respond_pending instead: its connection is suspended, it
 *     holds no thread, and any thread answers it later with
 *     web_pending_complete. Streams are for the other mode (a stream in
 *     pool mode is answered 500).
 * Both keep the same front door (the limits below) and the same shapes.
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
/* Pool mode: the event loop's threads. Handlers there only compute and
 * read or commit a database (milliseconds), so a few threads keep two
 * cores busy; 8 leaves room for as many POSTs waiting on one group commit
 * (which groups at most as many requests as there are threads) while the
 * others keep answering. */
#define WEB_POOL_THREADS 8
/* Pool mode: requests answered web_respond_pending and not yet sent, at
 * most. Each holds only its connection and a few hundred bytes, so the cap
 * is about connections: above the gateway's GATEWAY_LONG_POLLS_MAX (256)
 * with room for a service's other waits, and under WEB_CONNECTIONS_MAX so
 * pending requests never take every connection. One more is refused at
 * once: 503 "busy" with Retry-After: WEB_PENDING_RETRY_AFTER_S. */
#define WEB_PENDING_MAX 384
#define WEB_PENDING_RETRY_AFTER_S "1"
/* web_server_stop answers every pending request 503 "stopping" and gives
 * the answers this long to go out before it closes what is left. */
#define WEB_STOP_GRACE_MS 1000

/* What a stream's read function returns when the stream is over. */
#define WEB_STREAM_END ((ssize_t) - 1)

struct web_server;
struct web_request;
struct web_pending;

enum web_mode {
	WEB_MODE_THREADS, /* one thread per connection (the default) */
	WEB_MODE_POOL,    /* WEB_POOL_THREADS threads on epoll; pending requests */
};

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
	struct web_pending *pending; /* set by web_respond_pending; see there */
};

/* Called once per request with the complete body. The handler fills res;
 * a handler that leaves res->status at 0 produces a 500. */
typedef void (*web_handler_fn)(void *ctx, const struct web_request *req, struct web_response *res);

/* Thread per connection. */
shop_status web_server_start(const char *bind_addr, uint16_t port, web_handler_fn handler,
			     void *ctx, struct web_server **ret_server);
/* Pool mode (see the top of this file). */
shop_status web_server_start_pool(const char *bind_addr, uint16_t port, web_handler_fn handler,
				  void *ctx, struct web_server **ret_server);
/* The mode and the front door's limits, for tests that cannot wait the real
 * ones out: web_server_start and web_server_start_pool use the constants
 * above. pending_max 0 means WEB_PENDING_MAX. */
struct web_limits {
	unsigned int connections_per_ip;
	int64_t header_deadline_ms;
	int64_t body_deadline_ms;
	enum web_mode mode;
	unsigned int pending_max;
};
shop_status web_server_start_limited(const char *bind_addr, uint16_t port, web_handler_fn handler,
				     void *ctx, const struct web_limits *limits,
				     struct web_server **ret_server);
/* Connections cut so far for missing a deadline. */
uint64_t web_server_cut_count(const struct web_server *s);
/* Pool mode: requests pending now (answered web_respond_pending, their
 * connection still open and not yet done with). */
unsigned int web_server_pending_count(const struct web_server *s);
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

/*
 * Pending requests (pool mode). A handler that cannot answer yet calls
 * web_respond_pending and returns: the server suspends the connection (it
 * holds no thread, and has no deadline but the client's patience and
 * WEB_CONNECTION_TIMEOUT_S once resumed), and *ret_pending is the handle.
 * Later, any thread builds a response in a struct web_response of its own
 * (web_respond_json and friends) and hands it to web_pending_complete,
 * which queues it and resumes the connection; MHD sends it from its own
 * thread.
 *
 * Ownership: a pending request is reference-counted, with exactly two
 * references. One is the server's, dropped when MHD is done with the
 * request (sent, client gone, server stopped). The other is the caller's,
 * dropped by web_pending_complete, which must be called exactly once per
 * handle, whatever happened meanwhile: after the client went away or the
 * server stopped (even after web_server_stop returned) it only frees the
 * response and returns false. So neither side can use the other's memory
 * after it is gone.
 *
 * A client that closes its connection while pending is noticed within
 * WEB_DEADLINE_CHECK_MS: its connection is closed and freed, and
 * web_pending_waiting turns false, so the holder may answer it early.
 * web_server_stop answers every request still pending 503 "stopping".
 *
 * web_respond_pending returns SHOP_OK, or refuses with res already set:
 * SHOP_E_LIMIT (503 "busy", Retry-After: WEB_PENDING_RETRY_AFTER_S) when
 * WEB_PENDING_MAX requests are pending or the server is stopping,
 * SHOP_E_INVALID (500) in thread-per-connection mode. After SHOP_OK the
 * handler must leave res alone.
 */
shop_status web_respond_pending(struct web_response *res, const struct web_request *req,
				struct web_pending **ret_pending);
/* Answers with RES (its parts are taken; RES is left empty) and lets go of
 * the handle. True when the answer will be sent; false when the request is
 * no longer waiting (client gone, server stopped): RES is freed. A status
 * outside 100..599 becomes a 500, as a handler's would. */
bool web_pending_complete(struct web_pending *p, struct web_response *res);
/* False once the request can no longer be answered (client gone, server
 * stopping): the holder should web_pending_complete it soon. */
bool web_pending_waiting(struct web_pending *p);
/* True when the handler answered web_respond_pending (for its caller, such
 * as a runtime that counts responses by status). */
bool web_response_is_pending(const struct web_response *res);

#endif
