/*
 * gateway_long_polls.c - GET /orders/{id}?wait=N without a thread per
 * waiting request.
 *
 * The handler (gateway_order_get in gateway_api.c) reads the order; when it
 * is not final yet it leaves the request pending (libs/web's pool mode: the
 * connection is suspended and holds no thread) and registers a waiter here.
 * One thread, the long-poll thread, started with the first waiter, holds
 * them all. It sleeps until the projection commits (gateway_after_commit
 * bumps the generation and wakes it), a waiter arrives, the earliest
 * deadline falls, or GATEWAY_LONG_POLL_CHECK_MS pass; then it re-reads the
 * order of every waiter that has not seen the latest generation, answers
 * those whose order is SHIPPED or CANCELLED or whose deadline has passed,
 * and drops those whose client has gone.
 *
 * Invariants:
 *   - every waiter is answered exactly once (web_pending_complete, which
 *     also lets go of the handle) and gives its GATEWAY_LONG_POLLS_MAX place
 *     back then: by the thread, or by gateway_long_polls_stop once the
 *     thread has ended;
 *   - a waiter belongs to the list it is on: ctx->fresh (under ctx->lock)
 *     until the thread takes it, then the thread's own list, which no other
 *     thread sees; so the reads and the answers happen without the lock;
 *   - a waiter registered with generation G (read before the handler's own
 *     read) is re-read as soon as the thread sees another generation, so a
 *     commit between that read and the registration is never missed.
 * Every commit re-reads every waiter (one row each, on a pooled connection
 * given back at once), whichever order it changed: the projection does not
 * say which orders a batch touched.
 */
#include "gateway.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>

/* The route the HTTP metrics count a long-poll under (gateway_route_of). */
#define GATEWAY_ORDER_ROUTE "/orders/{id}"

struct gateway_waiter {
	struct gateway_waiter *next;
	struct svc *svc;
	struct web_pending *pending;
	char order_id[IDS_UUID_SIZE];
	uint64_t seen;       /* the generation of its last read */
	int64_t deadline_ms; /* clock_mono_ms */
	int64_t started_us;  /* clock_mono_us when the request came, for metrics */
};

bool gateway_long_poll_enter(struct gateway_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	bool admitted = ctx->long_polls < GATEWAY_LONG_POLLS_MAX;
	if (admitted)
		ctx->long_polls++;
	pthread_mutex_unlock(&ctx->lock);
	return admitted;
}

void gateway_long_poll_leave(struct gateway_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->long_polls--;
	pthread_mutex_unlock(&ctx->lock);
}

/* Answers W with RES (taken), gives its place back and frees it. */
static void gateway_waiter_finish(struct gateway_ctx *ctx, struct gateway_waiter *w,
				  struct web_response *res)
{
	int status = res->status;
	if (web_pending_complete(w->pending, res))
		svc_http_observe(w->svc, GATEWAY_ORDER_ROUTE, status, w->started_us);
	pthread_mutex_lock(&ctx->lock);
	ctx->waiting--;
	ctx->long_polls--;
	pthread_mutex_unlock(&ctx->lock);
	free(w);
}

/* Answers W 503: the gateway is stopping (or could not start the thread). */
static void gateway_waiter_refuse(struct gateway_ctx *ctx, struct gateway_waiter *w)
{
	struct web_response res = { 0 };
	web_response_header(&res, "Retry-After", GATEWAY_LONG_POLL_RETRY_AFTER_S);
	web_respond_error(&res, 503, "unavailable", "the gateway cannot wait now; retry", NULL);
	gateway_waiter_finish(ctx, w, &res);
}

/* One round over the thread's waiters at generation G: re-reads those that
 * have not seen G and those past their deadline, answers the final and the
 * late ones, drops those no longer waiting. Returns when the next round is
 * due at the latest (clock_mono_ms). */
static int64_t gateway_long_polls_round(struct gateway_ctx *ctx, struct gateway_waiter **list,
					uint64_t g)
{
	int64_t now = clock_mono_ms();
	int64_t next = now + GATEWAY_LONG_POLL_CHECK_MS;
	struct gateway_waiter **link = list;
	while (*link) {
		struct gateway_waiter *w = *link;
		struct web_response res = { 0 };
		bool done = false;
		if (!web_pending_waiting(w->pending)) {
			/* The client has gone (or the server is stopping): there is
			 * nobody to answer; completing only lets go of the handle. */
			web_respond_json(&res, 503, NULL);
			done = true;
		} else if (w->seen != g || now >= w->deadline_ms) {
			struct gateway_view view = { 0 };
			w->seen = g;
			shop_status st = gateway_order_read(w->svc, w->order_id, &view);
			if (st != SHOP_OK || gateway_status_final(view.status) ||
			    clock_mono_ms() >= w->deadline_ms) {
				gateway_order_respond(w->order_id, st, &view, &res);
				done = true;
			}
			gateway_store_view_release(&view);
		}
		if (done) {
			*link = w->next;
			gateway_waiter_finish(ctx, w, &res);
			continue;
		}
		if (w->deadline_ms < next)
			next = w->deadline_ms;
		link = &w->next;
	}
	return next;
}

static void *gateway_long_polls_main(void *arg)
{
	struct gateway_ctx *ctx = arg;
	struct gateway_waiter *mine = NULL;
	pthread_mutex_lock(&ctx->lock);
	while (!ctx->stopping) {
		while (ctx->fresh) {
			struct gateway_waiter *w = ctx->fresh;
			ctx->fresh = w->next;
			w->next = mine;
			mine = w;
		}
		uint64_t g = ctx->generation;
		pthread_mutex_unlock(&ctx->lock);
		int64_t next = gateway_long_polls_round(ctx, &mine, g);
		int64_t in_ms = next - clock_mono_ms();
		struct timespec until = clock_mono_deadline(in_ms > 0 ? in_ms : 0);
		pthread_mutex_lock(&ctx->lock);
		int rc = 0;
		while (!ctx->stopping && !ctx->fresh && ctx->generation == g && rc == 0)
			rc = pthread_cond_timedwait(&ctx->changed, &ctx->lock, &until);
	}
	pthread_mutex_unlock(&ctx->lock);
	while (mine) {
		struct gateway_waiter *w = mine;
		mine = w->next;
		gateway_waiter_refuse(ctx, w);
	}
	return NULL;
}

void gateway_long_poll_wait(struct svc *svc, const char *order_id, uint64_t seen,
			    int64_t deadline_ms, int64_t started_us, struct web_pending *pending)
{
	struct gateway_ctx *ctx = svc_ctx(svc);
	struct gateway_waiter *w = xcalloc(1, sizeof(*w));
	w->svc = svc;
	w->pending = pending;
	snprintf(w->order_id, sizeof(w->order_id), "%s", order_id);
	w->seen = seen;
	w->deadline_ms = deadline_ms;
	w->started_us = started_us;

	pthread_mutex_lock(&ctx->lock);
	ctx->waiting++;
	bool registered = !ctx->stopping;
	if (registered && !ctx->thread_started) {
		registered = pthread_create(&ctx->thread, NULL, gateway_long_polls_main, ctx) == 0;
		ctx->thread_started = registered;
		if (!registered)
			log_error(NULL, "cannot start the long-poll thread");
	}
	if (registered) {
		w->next = ctx->fresh;
		ctx->fresh = w;
		pthread_cond_broadcast(&ctx->changed);
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!registered)
		gateway_waiter_refuse(ctx, w);
}

void gateway_long_polls_stop(struct gateway_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->stopping = true;
	bool join = ctx->thread_started;
	ctx->thread_started = false;
	struct gateway_waiter *left = ctx->fresh;
	ctx->fresh = NULL;
	pthread_cond_broadcast(&ctx->changed);
	pthread_mutex_unlock(&ctx->lock);
	if (join)
		pthread_join(ctx->thread, NULL);
	while (left) {
		struct gateway_waiter *w = left;
		left = w->next;
		gateway_waiter_refuse(ctx, w);
	}
}

void gateway_stop(struct svc *svc)
{
	gateway_long_polls_stop(svc_ctx(svc));
}
