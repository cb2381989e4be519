/*
 * gateway.h - the gateway's wiring: the HTTP API (gateway_api.c), the
 * projection of events into its read models (gateway_projection.c), its
 * periodic task, the long-polls (gateway_long_polls.c), and the state they
 * share (struct gateway_ctx).
 *
 * The decisions are in gateway_domain.h and the SQL in gateway_store.h;
 * main.c and the tests wire these exactly as declared here.
 */
#ifndef SHOP_GATEWAY_H
#define SHOP_GATEWAY_H

#include "gateway_domain.h"
#include "gateway_store.h"
#include "svc/svc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GATEWAY_WAIT_MAX_S 30 /* largest ?wait= on GET /orders/{id} */
/* GETs with ?wait= above 0 held at once. A waiting GET holds no thread
 * (its connection is suspended: the pool mode of libs/web), but it holds a
 * connection for up to GATEWAY_WAIT_MAX_S, so without a cap long-polls
 * alone could take every one of WEB_CONNECTIONS_MAX (512). 256 is half of
 * them, under WEB_PENDING_MAX (384), and over the 200 a system case holds
 * at once. One more is answered at once with 503 too_many_waiters and
 * Retry-After: GATEWAY_LONG_POLL_RETRY_AFTER_S (a plain GET, without
 * ?wait=, is never refused for it). */
#define GATEWAY_LONG_POLLS_MAX 256
/* The long-poll thread looks at its waiters at least this often, even
 * when nothing commits and no deadline falls: a waiter whose client has
 * gone is dropped (and its place given back) within this long. */
#define GATEWAY_LONG_POLL_CHECK_MS 1000
#define GATEWAY_LONG_POLL_RETRY_AFTER_S "1"
#define GATEWAY_IDEMPOTENCY_KEY_MAX 255
/* How long a replay by Idempotency-Key is possible: records older than this
 * are deleted, and the key then places a new order. 24 h covers any sane
 * client retry loop. */
#define GATEWAY_IDEMPOTENCY_RETENTION_MS (24LL * 3600 * 1000)
#define GATEWAY_IDEMPOTENCY_PURGE_INTERVAL_MS (10LL * 60 * 1000)

/*
 * The gateway's state behind svc_ctx(), required by gateway_http and
 * gateway_after_commit: the long-polls and what wakes them. A waiting GET
 * is a waiter (its order, its deadline, its pending response) registered
 * with one thread, the long-poll thread (gateway_long_polls.c), which
 * answers it when its order is final or its deadline passes. Every commit
 * of the projection bumps generation and wakes that thread, which re-reads
 * each waiter's order once; a GET notes the generation before its own
 * read, so a change committed between that read and its registration is
 * never missed. Every field is guarded by lock.
 */
struct gateway_waiter;
struct gateway_ctx {
	pthread_mutex_t lock;
	pthread_cond_t changed;       /* monotonic clock: wakes the long-poll thread */
	uint64_t generation;          /* projection commits so far */
	int waiting;                  /* waiters registered and not yet answered */
	int long_polls;               /* GETs with ?wait= admitted and not yet answered */
	struct gateway_waiter *fresh; /* registered, not yet taken by the thread */
	bool stopping;
	bool thread_started;
	pthread_t thread;
};

void gateway_ctx_init(struct gateway_ctx *ctx);
void gateway_ctx_release(struct gateway_ctx *ctx); /* stops the long-polls too */
/* The svc_spec after_commit hook: a projection batch committed. */
void gateway_after_commit(struct svc *svc);
/* The generation now: read it before reading the view. */
uint64_t gateway_changes_seen(struct gateway_ctx *ctx);

/* Long-polls (gateway_long_polls.c). enter takes one of
 * GATEWAY_LONG_POLLS_MAX places (false: none left), leave gives it back
 * for a GET answered at once. gateway_long_poll_wait hands the thread a
 * waiter: the order ORDER_ID, read at generation SEEN and not final then,
 * answered through PENDING by DEADLINE_MS (clock_mono_ms) at the latest;
 * the place is given back when it is answered. The thread starts with the
 * first waiter. */
bool gateway_long_poll_enter(struct gateway_ctx *ctx);
void gateway_long_poll_leave(struct gateway_ctx *ctx);
void gateway_long_poll_wait(struct svc *svc, const char *order_id, uint64_t seen,
			    int64_t deadline_ms, int64_t started_us, struct web_pending *pending);
/* Stops the long-poll thread and lets go of every waiter left, answering
 * each 503 (after web_server_stop, the server has already answered them
 * and this only frees). Idempotent. gateway_stop is it as the svc_spec
 * stop hook. */
void gateway_long_polls_stop(struct gateway_ctx *ctx);
void gateway_stop(struct svc *svc);

/* HTTP: ctx is the struct svc, whose svc_ctx() is a struct gateway_ctx. */
void gateway_http(void *ctx, const struct web_request *req, struct web_response *res);
/* The route template of a path, for the runtime's HTTP metrics. */
const char *gateway_route_of(const char *path);
/* The body of GET /orders/{id} for a stored view. SHOP_E_INTERNAL when the
 * row is damaged: items not a JSON array, or a text that is not UTF-8
 * (the API answers 500 and logs it). tests/fuzz/fuzz_rows.c feeds it. */
shop_status gateway_view_json(const char *order_id, const struct gateway_view *v, cJSON **ret_json);
/* The answer to GET /orders/{id} for a read of the view: ST the read's
 * status, V the view when ST is SHOP_OK. */
void gateway_order_respond(const char *order_id, shop_status st, const struct gateway_view *v,
			   struct web_response *res);
/* Reads the view on a pooled connection, given back at once. */
shop_status gateway_order_read(struct svc *svc, const char *order_id,
			       struct gateway_view *ret_view);

/* How the API answers a failed call: the one table from status to HTTP. */
struct gateway_http_status {
	int status;          /* HTTP */
	const char *code;    /* the error body's code */
	const char *message; /* its message, unless the caller has a better one */
};
const struct gateway_http_status *gateway_http_status_of(shop_status st);

/* Reading a request, before any I/O (and what the fuzz targets in
 * tests/fuzz call, so they test exactly what the gateway accepts). */
struct gateway_refusal {
	int status;       /* HTTP */
	const char *code; /* the error body's code */
	const char *message;
	cJSON *details; /* owned; NULL or an array for web_respond_error */
};
/* POST /orders: the Content-Type, body and Idempotency-Key (NULL when
 * absent) as the gateway checks them. True with the request and its
 * canonical JSON (malloc'd) on success; false with the refusal otherwise. */
bool gateway_order_request_read(const char *content_type, const char *body, size_t len,
				const char *idem_key, struct ct_place_order_request *ret_request,
				char **ret_canonical, struct gateway_refusal *ret_refusal);
/* An Idempotency-Key the gateway accepts: 1 to GATEWAY_IDEMPOTENCY_KEY_MAX
 * printable characters. */
bool gateway_idem_key_valid(const char *key);
/* ?wait= of GET /orders/{id} (NULL when absent: 0); false when invalid. */
bool gateway_wait_read(const char *wait, int64_t *ret_s);

/* The "idempotency-purge" task. */
extern const struct svc_task gateway_tasks[];
extern const size_t gateway_n_tasks;

/* The projection: the handler of every event the gateway consumes. */
shop_status gateway_project(struct svc_tx *tx, const void *data);

#endif
