/*
 * console_stream.c - GET /stream: one Server-Sent Events client.
 *
 * A client lives from its request until MHD releases its stream. Its watch
 * (one named ephemeral consumer per stream) is started before the answer
 * is queued, so the first bytes a client reads (the "retry:" line and a
 * comment) mean that every message stored from then on will reach it.
 * Threads and invariants:
 *   - the watch's threads (one per stream) call console_client_on_msg: filter,
 *     frame, push under the client's lock; they never wait for the client.
 *     A full queue marks the client overflowed and stops queueing for it;
 *   - the client's HTTP thread (console_client_read) pops frames and copies
 *     them out, waiting on the condition when there are none; an overflowed
 *     client gets a last "dropped" event and its stream ends;
 *   - console_client_release (MHD, once) stops the watch first, which waits
 *     out any callback in flight, so the queue is freed with no writer left.
 */
#include "console.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "contracts_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sent to an overflowed client before its stream ends. */
static const char console_dropped_event[] =
	"event: dropped\ndata: {\"reason\":\"queue_full\",\"message\":\"this client fell behind "
	"the bus and was dropped; reconnect to start again from now\"}\n\n";

struct console_client {
	struct console *console;
	char order[CONSOLE_ORDER_ID_MAX + 1]; /* "" for every message */
	struct bus_watch *watch;
	pthread_mutex_t mu;
	pthread_cond_t wake; /* a frame was queued or the client overflowed */
	struct console_queue queue;
	bool overflowed;
	/* Only the HTTP thread touches these. */
	bool greeted;
	bool farewell_sent;
	struct console_frame current; /* popped, partly written */
	size_t current_off;
	int64_t last_write_mono_ms;
};

static void console_client_on_msg(void *arg, const char *stream, const char *subject,
				  const char *data, size_t len)
{
	(void)stream;
	(void)subject;
	struct console_client *cl = arg;
	if (cl->order[0] && !console_envelope_is_about(data, len, cl->order))
		return;
	struct console_frame f = console_sse_frame(data, len);
	bool queued = false;
	pthread_mutex_lock(&cl->mu);
	if (!cl->overflowed) {
		queued = console_queue_push(&cl->queue, f) == SHOP_OK;
		cl->overflowed = !queued; /* logged by the HTTP thread, not here */
	}
	pthread_cond_signal(&cl->wake);
	pthread_mutex_unlock(&cl->mu);
	if (!queued)
		free(f.text);
}

/* Copies what is left of the current frame; 0 when there is none. */
static ssize_t console_client_copy(struct console_client *cl, char *buf, size_t max)
{
	size_t left = cl->current.len - cl->current_off;
	if (!cl->current.text || left == 0)
		return 0;
	size_t n = left < max ? left : max;
	memcpy(buf, cl->current.text + cl->current_off, n);
	cl->current_off += n;
	if (cl->current_off == cl->current.len) {
		free(cl->current.text);
		cl->current = (struct console_frame){ 0 };
		cl->current_off = 0;
	}
	return (ssize_t)n;
}

/* Makes text the current frame (copied) and returns its first piece. */
static ssize_t console_client_send_text(struct console_client *cl, const char *text, char *buf,
					size_t max)
{
	cl->current = (struct console_frame){ .text = xstrdup(text), .len = strlen(text) };
	cl->current_off = 0;
	return console_client_copy(cl, buf, max);
}

static ssize_t console_client_read(void *arg, char *buf, size_t max)
{
	struct console_client *cl = arg;
	ssize_t n = console_client_copy(cl, buf, max);
	if (n > 0)
		goto out;
	if (!cl->greeted) {
		char hello[64];
		snprintf(hello, sizeof(hello), "retry: %d\n: connected\n\n", CONSOLE_RETRY_MS);
		cl->greeted = true;
		n = console_client_send_text(cl, hello, buf, max);
		goto out;
	}
	if (cl->farewell_sent)
		return WEB_STREAM_END;

	/* Wait for a frame, at most until the keepalive is due and never past
	 * the web layer's bound, so a stopping server is noticed. */
	int64_t idle_ms = clock_mono_ms() - cl->last_write_mono_ms;
	int64_t wait_ms = CONSOLE_KEEPALIVE_MS - idle_ms;
	if (wait_ms > WEB_STREAM_WAIT_MAX_MS)
		wait_ms = WEB_STREAM_WAIT_MAX_MS;
	struct console_frame f = { 0 };
	bool overflowed = false, got = false;
	pthread_mutex_lock(&cl->mu);
	if (wait_ms > 0 && cl->queue.n == 0 && !cl->overflowed) {
		struct timespec deadline = clock_mono_deadline(wait_ms);
		pthread_cond_timedwait(&cl->wake, &cl->mu, &deadline);
	}
	overflowed = cl->overflowed;
	if (!overflowed)
		got = console_queue_pop(&cl->queue, &f);
	pthread_mutex_unlock(&cl->mu);

	if (overflowed) {
		log_warn(NULL, "stream client dropped: its queue of %d events or %d bytes is full",
			 CONSOLE_QUEUE_MAX, CONSOLE_QUEUE_BYTES_MAX);
		metrics_counter_add(cl->console->m_dropped, NULL, 1);
		cl->farewell_sent = true;
		n = console_client_send_text(cl, console_dropped_event, buf, max);
	} else if (got) {
		metrics_counter_add(cl->console->m_events, NULL, 1);
		cl->current = f;
		cl->current_off = 0;
		n = console_client_copy(cl, buf, max);
	} else if (clock_mono_ms() - cl->last_write_mono_ms >= CONSOLE_KEEPALIVE_MS) {
		n = console_client_send_text(cl, ": keepalive\n\n", buf, max);
	}
out:
	if (n > 0)
		cl->last_write_mono_ms = clock_mono_ms();
	return n;
}

/* Frees the client; its watch must be stopped (or never started). */
static void console_client_free(struct console_client *cl)
{
	console_queue_release(&cl->queue);
	free(cl->current.text);
	pthread_cond_destroy(&cl->wake);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

static void console_clients_leave(struct console *c)
{
	pthread_mutex_lock(&c->mu);
	c->clients--;
	metrics_gauge_set(c->m_clients, NULL, (double)c->clients);
	pthread_mutex_unlock(&c->mu);
}

static void console_client_release(void *arg)
{
	struct console_client *cl = arg;
	struct console *c = cl->console;
	if (bus_watch_stop(cl->watch) != SHOP_OK) {
		/* A callback may still come: keeping the client is the only safe
		 * choice, and it happens only with a wedged nats.c. */
		log_error(NULL, "stream client: its watch did not stop; its memory is kept");
	} else {
		console_client_free(cl);
	}
	console_clients_leave(c);
	log_info(NULL, "stream client left");
}

/* Takes a client slot; false when CONSOLE_CLIENTS_MAX are connected. */
static bool console_clients_enter(struct console *c)
{
	bool ok = false;
	pthread_mutex_lock(&c->mu);
	if (c->clients < CONSOLE_CLIENTS_MAX) {
		c->clients++;
		ok = true;
		metrics_gauge_set(c->m_clients, NULL, (double)c->clients);
	}
	pthread_mutex_unlock(&c->mu);
	return ok;
}

/* The watch's sources: every stream of the contracts index, each with each
 * of its subjects, but the confidential ones (CARDS), which the console
 * user may not read at all (docs/security.md). */
size_t console_stream_sources(struct bus_watch_source *src, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < ct_n_streams; i++)
		if (!ct_streams[i].confidential)
			for (size_t k = 0; k < ct_streams[i].n_subjects && n < cap; k++)
				src[n++] = (struct bus_watch_source){ ct_streams[i].name,
								      ct_streams[i].subjects[k] };
	return n;
}

void console_stream_serve(struct console *c, const struct web_request *req,
			  struct web_response *res)
{
	const char *order = web_request_query(req, "order");
	const char *since = web_request_query(req, "since");
	int64_t since_ms = -1;
	struct console_client *cl = NULL;
	struct bus_watch_source sources[BUS_WATCH_SOURCES_MAX];

	if (order && *order && !console_order_id_valid(order)) {
		web_respond_error(res, 400, "invalid_order_id",
				  "order must be 1 to 128 printable characters", NULL);
		return;
	}
	if (since && *since && console_rfc3339_parse(since, &since_ms) != SHOP_OK) {
		web_respond_error(res, 400, "invalid_since",
				  "since must be an RFC 3339 time, like 2026-11-27T08:55:21Z",
				  NULL);
		return;
	}
	if (!console_clients_enter(c)) {
		metrics_counter_add(c->m_refused, NULL, 1);
		web_response_header(res, "Retry-After", "5");
		web_respond_error(res, 503, "too_many_clients",
				  "the console serves at most 8 streams at once", NULL);
		return;
	}

	cl = xcalloc(1, sizeof(*cl));
	cl->console = c;
	if (order)
		memcpy(cl->order, order, strlen(order) + 1);
	pthread_mutex_init(&cl->mu, NULL);
	clock_cond_init(&cl->wake);
	console_queue_init(&cl->queue);
	cl->last_write_mono_ms = clock_mono_ms();

	size_t n = console_stream_sources(sources, BUS_WATCH_SOURCES_MAX);
	shop_status st = bus_watch_start(c->bus, sources, n, since_ms, console_client_on_msg, cl,
					 &cl->watch);
	if (st != SHOP_OK) {
		log_warn(NULL, "stream client refused: cannot watch the streams: %s",
			 shop_status_name(st));
		if (st != SHOP_E_TIMEOUT)
			console_client_free(cl); /* else a callback may still use it */
		console_clients_leave(c);
		web_response_header(res, "Retry-After", "2");
		web_respond_error(res, 503, "unavailable",
				  st == SHOP_E_NOT_FOUND
					  ? "the streams do not exist yet: the admin declares them"
					  : "the bus is not reachable now",
				  NULL);
		return;
	}
	log_info(NULL, "stream client joined (order %s, since %s)", *cl->order ? cl->order : "any",
		 since && *since ? since : "now");
	web_response_header(res, "X-Accel-Buffering", "no");
	web_respond_stream(res, 200, "text/event-stream", console_client_read,
			   console_client_release, cl);
}
