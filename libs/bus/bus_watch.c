/*
 * bus_watch.c - ordered ephemeral consumers for observers (see bus.h).
 *
 * A watch is a set of asynchronous JetStream subscriptions with Ordered
 * set: the server keeps no durable state for them, they need no acks, and
 * nats.c alone keeps them gap-free. Stopping must guarantee that no message
 * callback runs afterwards, because the caller frees what the callback uses:
 * nats.c may be inside the callback when the subscription is unsubscribed
 * from another thread, so every subscription gets a completion callback
 * (natsSubscription_SetOnCompleteCB, called once its last message callback
 * has returned) and stopping waits until all of them have run.
 *
 * A watch from a time starts at a stream sequence, not at the time: the
 * first message stored at or after it, found by a binary search over the
 * stream's stored times (bus_watch_seq_at). nats.c 3.10.1 keeps the start
 * time when it recreates an ordered consumer after a gap or a missed
 * heartbeat and adds the start sequence to it, a configuration the server
 * refuses, so a subscription started by time could go silent for good (seen
 * as a replay that delivered nothing); started by sequence, its
 * recreations stay valid.
 *
 * Invariant: live counts the subscriptions whose completion callback has
 * not run yet; it is guarded by mu and only ever decreases after start.
 */
#include "bus_private.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct bus_watch_sub {
	struct bus_watch *watch;
	natsSubscription *sub;
	char *stream;
};

struct bus_watch {
	bus_watch_fn fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t done; /* live went down; CLOCK_MONOTONIC */
	size_t live;
	size_t n_subs;
	struct bus_watch_sub subs[BUS_WATCH_SOURCES_MAX];
};

static void bus_watch_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)sub;
	const struct bus_watch_sub *ws = closure;
	int len = natsMsg_GetDataLength(msg);
	ws->watch->fn(ws->watch->arg, ws->stream, natsMsg_GetSubject(msg), natsMsg_GetData(msg),
		      len > 0 ? (size_t)len : 0);
	natsMsg_Destroy(msg);
}

static void bus_watch_on_complete(void *closure)
{
	struct bus_watch *w = ((struct bus_watch_sub *)closure)->watch;
	pthread_mutex_lock(&w->mu);
	w->live--;
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->mu);
}

/* The time STREAM stored SEQ at, in ns; SHOP_E_NOT_FOUND for a sequence
 * that holds nothing (deleted or purged). */
static shop_status bus_watch_time_of(struct bus *bus, const char *stream, uint64_t seq,
				     int64_t *ret_ns)
{
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetMsg(&m, bus->js, stream, seq, NULL, &jerr);
	if (s != NATS_OK)
		return bus_status_from_nats(s, jerr);
	*ret_ns = natsMsg_GetTime(m);
	natsMsg_Destroy(m);
	return SHOP_OK;
}

/* The first sequence of STREAM stored at or after SINCE_MS (last + 1 when
 * none is, so what comes next is delivered). Times grow with sequences in a
 * stream, so a binary search finds it in log2(messages) reads. A sequence
 * that holds nothing counts as "before": the replay starts a little early
 * rather than late. */
static shop_status bus_watch_seq_at(struct bus *bus, const char *stream, int64_t since_ms,
				    uint64_t *ret_seq)
{
	uint64_t first = 0, last = 0;
	shop_status st = bus_stream_state(bus, stream, NULL, &first, &last);
	if (st != SHOP_OK)
		return st;
	int64_t since_ns = since_ms * BUS_NS_PER_MS;
	uint64_t lo = first ? first : 1, hi = last + 1; /* the answer is in [lo, hi] */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int64_t t = 0;
		st = bus_watch_time_of(bus, stream, mid, &t);
		if (st == SHOP_E_NOT_FOUND) {
			t = INT64_MIN;
			st = SHOP_OK;
		}
		if (st != SHOP_OK)
			return st;
		if (t >= since_ns)
			hi = mid;
		else
			lo = mid + 1;
	}
	*ret_seq = lo;
	return SHOP_OK;
}

static shop_status bus_watch_subscribe(struct bus *bus, struct bus_watch *w,
				       const struct bus_watch_source *src, int64_t since_ms)
{
	struct bus_watch_sub *ws = &w->subs[w->n_subs];
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = src->stream;
	so.Ordered = true;
	if (since_ms < 0) {
		so.Config.DeliverPolicy = js_DeliverNew;
	} else {
		uint64_t seq = 0;
		shop_status st = bus_watch_seq_at(bus, src->stream, since_ms, &seq);
		if (st != SHOP_OK)
			return st;
		so.Config.DeliverPolicy = js_DeliverByStartSequence;
		so.Config.OptStartSeq = seq;
	}
	ws->watch = w;
	ws->stream = xstrdup(src->stream);
	jsErrCode jerr = 0;
	natsStatus s = js_Subscribe(&ws->sub, bus->js, src->subject, bus_watch_on_msg, ws, NULL,
				    &so, &jerr);
	if (s == NATS_OK) {
		/* Counted before the callback is set: it may run at once if the
		 * connection closes under us. */
		pthread_mutex_lock(&w->mu);
		w->live++;
		pthread_mutex_unlock(&w->mu);
		s = natsSubscription_SetOnCompleteCB(ws->sub, bus_watch_on_complete, ws);
		if (s != NATS_OK) {
			/* Already closed: no completion callback will come. */
			pthread_mutex_lock(&w->mu);
			w->live--;
			pthread_mutex_unlock(&w->mu);
			natsSubscription_Destroy(ws->sub);
			ws->sub = NULL;
		}
	}
	if (s != NATS_OK) {
		free(ws->stream);
		ws->stream = NULL;
		return bus_status_from_nats(s, jerr);
	}
	w->n_subs++;
	return SHOP_OK;
}

shop_status bus_watch_start(struct bus *bus, const struct bus_watch_source *sources, size_t n,
			    int64_t since_ms, bus_watch_fn fn, void *arg,
			    struct bus_watch **ret_watch)
{
	shop_status st = SHOP_OK;
	struct bus_watch *w = NULL;

	if (!bus || !sources || n == 0 || !fn || !ret_watch)
		return SHOP_E_INVALID;
	if (n > BUS_WATCH_SOURCES_MAX)
		return SHOP_E_LIMIT;
	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;

	w = xcalloc(1, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	clock_cond_init(&w->done);
	for (size_t i = 0; i < n && st == SHOP_OK; i++)
		st = bus_watch_subscribe(bus, w, &sources[i], since_ms);
	if (st != SHOP_OK)
		goto out;
	*ret_watch = w;
	w = NULL;
out:
	if (w && bus_watch_stop(w) != SHOP_OK)
		st = SHOP_E_TIMEOUT; /* callbacks may still come: w and arg stay */
	return st;
}

shop_status bus_watch_stop(struct bus_watch *w)
{
	shop_status st = SHOP_OK;
	if (!w)
		return SHOP_OK;
	/* Unsubscribe deletes the ephemeral consumer on the server; while
	 * disconnected it fails there, and the server forgets the consumer
	 * after its inactivity threshold. Either way the subscription closes
	 * locally and its completion callback follows. */
	for (size_t i = 0; i < w->n_subs; i++)
		(void)natsSubscription_Unsubscribe(w->subs[i].sub);
	struct timespec deadline = clock_mono_deadline(BUS_WATCH_STOP_WAIT_MS);
	pthread_mutex_lock(&w->mu);
	while (w->live > 0 && st == SHOP_OK)
		if (pthread_cond_timedwait(&w->done, &w->mu, &deadline) != 0 && w->live > 0)
			st = SHOP_E_TIMEOUT;
	pthread_mutex_unlock(&w->mu);
	if (st != SHOP_OK)
		return st; /* a callback may still use w: keep it */
	for (size_t i = 0; i < w->n_subs; i++) {
		natsSubscription_Destroy(w->subs[i].sub);
		free(w->subs[i].stream);
	}
	pthread_cond_destroy(&w->done);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return SHOP_OK;
}
