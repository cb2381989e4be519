/*
 * gateway.h - the gateway's wiring: the HTTP API (gateway_api.c), the
 * projection of events into its read models (gateway_projection.c), its
 * periodic task, and the state they share (struct gateway_ctx).
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
/* GETs with ?wait= above 0 held at once: each holds a connection and its
 * thread for up to GATEWAY_WAIT_MAX_S, so without a cap long-polls alone
 * could take every one of WEB_CONNECTIONS_MAX. One more is answered at once
 * with 503 too_many_waiters and Retry-After: GATEWAY_LONG_POLL_RETRY_AFTER_S
 * (a plain GET, without ?wait=, is never refused for it). */
#define GATEWAY_LONG_POLLS_MAX 128
#define GATEWAY_LONG_POLL_RETRY_AFTER_S "1"
#define GATEWAY_IDEMPOTENCY_KEY_MAX 255
/* How long a replay by Idempotency-Key is possible: records older than this
 * are deleted, and the key then places a new order. 24 h covers any sane
 * client retry loop. */
#define GATEWAY_IDEMPOTENCY_RETENTION_MS (24LL * 3600 * 1000)
#define GATEWAY_IDEMPOTENCY_PURGE_INTERVAL_MS (10LL * 60 * 1000)

/*
 * The gateway's state behind svc_ctx(), required by gateway_http and
 * gateway_after_commit: what wakes a long-poll. Every commit of the
 * projection bumps generation and wakes every waiting GET, which re-reads
 * its order once; a GET notes the generation before it reads, so a change
 * committed between its read and its wait is never missed.
 */
struct gateway_ctx {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* monotonic clock: clock_cond_init */
	uint64_t generation;    /* projection commits so far */
	int waiting;            /* GETs waiting on changed now */
	int long_polls;         /* GETs with ?wait= admitted and not yet answered */
};

void gateway_ctx_init(struct gateway_ctx *ctx);
void gateway_ctx_release(struct gateway_ctx *ctx);
/* The svc_spec after_commit hook: a projection batch committed. */
void gateway_after_commit(struct svc *svc);
/* The generation now: read it before reading the view. */
uint64_t gateway_changes_seen(struct gateway_ctx *ctx);
/* Waits until the generation differs from SEEN (true) or the monotonic
 * DEADLINE (clock_mono_deadline) passes (false). */
bool gateway_changes_wait(struct gateway_ctx *ctx, uint64_t seen, const struct timespec *deadline);

/* HTTP: ctx is the struct svc, whose svc_ctx() is a struct gateway_ctx. */
void gateway_http(void *ctx, const struct web_request *req, struct web_response *res);
/* The route template of a path, for the runtime's HTTP metrics. */
const char *gateway_route_of(const char *path);
/* The body of GET /orders/{id} for a stored view. SHOP_E_INTERNAL when the
 * row is damaged: items not a JSON array, or a text that is not UTF-8
 * (the API answers 500 and logs it). tests/fuzz/fuzz_rows.c feeds it. */
shop_status gateway_view_json(const char *order_id, const struct gateway_view *v, cJSON **ret_json);

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
