/*
 * bus_watch.c - named ephemeral pull consumers for observers (see bus.h).
 *
 * Why not nats.c's ordered consumers: nats.c 3.10.1 creates them on the
 * create subject without a consumer name, $JS.API.CONSUMER.CREATE.<stream>.
 * A request there whose body names an existing durable replaces it, and
 * NATS permissions cannot see the body, so a user allowed that subject could
 * replace any service's durable. Here the watch names each consumer itself
 * (BUS_WATCH_NAME_PREFIX and a NUID), so js_AddConsumer sends it on
 * $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>, which the permissions
 * see and tools/natsauth.py lets the console use for any name but a
 * durable's (docs/security.md).
 *
 * Why pull, on a thread of each source's own: the thread alone owns its
 * consumer, so making it again is plain sequential code, not something
 * started from a message callback or nats.c's error handler; and the fetch
 * asks for no more than it delivers, so no flow control is needed. A push
 * consumer would need a deliver subject under the inbox prefix, flow control
 * replies and nats.c's connection-wide error handler for missed heartbeats.
 * The costs are the same as the ordered consumers': one consumer and one
 * thread per source (nats.c gave each ordered subscription a thread).
 *
 * What the ordered consumer gave, kept: each source's consumer has
 * AckPolicy none, memory storage, one replica and an inactivity threshold
 * (BUS_WATCH_INACTIVE_MS), so the server removes it if this process dies.
 * The thread remembers the stream sequence of the last message it delivered
 * and the consumer sequence it came with. It makes a new consumer (a new
 * name, starting at that stream sequence + 1) when the next message's
 * consumer sequence is not the last + 1 (a gap: something was delivered to
 * a pull request that was lost), when a pull request ends in an error (the
 * consumer deleted, no responders, a missed idle heartbeat: its node died)
 * and when the connection reconnected since the consumer was made (whatever
 * was in flight may be lost). So within a source messages come once each
 * and in stream order, whatever happens to the consumer. The old consumer is
 * deleted after a gap; after an error or a reconnect it is only forgotten,
 * and the inactivity threshold removes it: its node may be away, and on
 * nats-server 2.10 a consumer deleted while its node is away can keep that
 * node from catching up with the cluster's metadata when it returns (seen
 * in the cluster cases: the node stayed "not current with the meta leader";
 * nats.c's ordered consumers never deleted the consumers they replaced).
 *
 * A watch starts at a stream sequence, never at a time or "new": the first
 * sequence after the stream's last (from now on), or the first message
 * stored at or after a time, found by a binary search over the stream's
 * stored times (bus_watch_seq_at). The start is fixed before
 * bus_watch_start returns, which creates every first consumer itself, so a
 * caller may tell its client that everything stored from then on will come.
 *
 * Stopping must guarantee that no callback runs afterwards, because the
 * caller frees what the callback uses: bus_watch_stop sets stopping, closes
 * each source's subscription (which ends a waiting fetch at once) and waits
 * until every thread has ended; a thread calls back only after checking
 * stopping under mu, and deletes its consumer on its way out.
 *
 * Invariants: a source's sub is written under mu, by its thread only (after
 * bus_watch_start); once stopping is set no new sub is installed and no
 * callback starts; running only decreases after start, under mu.
 */
#include "bus_private.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bus_watch_src {
	struct bus_watch *watch;
	char *stream;
	char *subject;
	pthread_t thread;
	natsSubscription *sub;             /* bound to the consumer name; NULL: none (mu) */
	char name[BUS_WATCH_NAME_MAX + 1]; /* its consumer, "" when none */
	uint64_t last_sseq;  /* stream sequence of the last message delivered (start - 1 before) */
	uint64_t last_cseq;  /* that message's consumer sequence on the current consumer */
	uint64_t reconnects; /* the connection's reconnect count when the consumer was made */
};

struct bus_watch {
	struct bus *bus;
	bus_watch_fn fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* stopping was set or a thread ended; CLOCK_MONOTONIC */
	bool stopping;
	size_t running;   /* threads that have not ended */
	size_t n_threads; /* threads started: srcs[0 .. n_threads - 1] */
	size_t n_srcs;
	struct bus_watch_src srcs[BUS_WATCH_SOURCES_MAX];
};

static bool bus_watch_stopping(struct bus_watch *w)
{
	pthread_mutex_lock(&w->mu);
	bool stopping = w->stopping;
	pthread_mutex_unlock(&w->mu);
	return stopping;
}

/* Sleeps ms, or less when the watch is being stopped. */
static void bus_watch_pause(struct bus_watch *w, int64_t ms)
{
	struct timespec deadline = clock_mono_deadline(ms);
	pthread_mutex_lock(&w->mu);
	while (!w->stopping && pthread_cond_timedwait(&w->cond, &w->mu, &deadline) == 0)
		;
	pthread_mutex_unlock(&w->mu);
}

/* How many times the connection reconnected so far (0 if it cannot say:
 * at worst one needless new consumer). */
static uint64_t bus_watch_reconnects(struct bus *bus)
{
	natsStatistics *stats = NULL;
	uint64_t n = 0;
	if (natsStatistics_Create(&stats) == NATS_OK &&
	    natsConnection_GetStats(bus->nc, stats) == NATS_OK)
		(void)natsStatistics_GetCounts(stats, NULL, NULL, NULL, NULL, &n);
	natsStatistics_Destroy(stats);
	return n;
}

static void bus_watch_api_options(jsOptions *o)
{
	jsOptions_Init(o);
	o->Wait = BUS_WATCH_API_TIMEOUT_MS;
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

/* The first sequence of STREAM stored at or after SINCE_MS, or, for
 * SINCE_MS < 0, the one after the last (last + 1 either way when none is,
 * so what comes next is delivered). Times grow with sequences in a stream,
 * so a binary search finds it in log2(messages) reads. A sequence that
 * holds nothing counts as "before": the replay starts a little early rather
 * than late. */
static shop_status bus_watch_seq_at(struct bus *bus, const char *stream, int64_t since_ms,
				    uint64_t *ret_seq)
{
	uint64_t first = 0, last = 0;
	shop_status st = bus_stream_state(bus, stream, NULL, &first, &last);
	if (st != SHOP_OK)
		return st;
	if (since_ms < 0) {
		*ret_seq = last + 1;
		return SHOP_OK;
	}
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

/* A consumer name of our own: the prefix and a NUID (nats.c's inbox is
 * _INBOX.<nuid>). */
static shop_status bus_watch_name_new(char *buf, size_t cap)
{
	natsInbox *inbox = NULL;
	natsStatus s = natsInbox_Create(&inbox);
	if (s != NATS_OK)
		return bus_status_from_nats(s, 0);
	const char *nuid = strrchr(inbox, '.');
	int n = snprintf(buf, cap, "%s%s", BUS_WATCH_NAME_PREFIX, nuid ? nuid + 1 : inbox);
	natsInbox_Destroy(inbox);
	return n < 0 || (size_t)n >= cap ? SHOP_E_LIMIT : SHOP_OK;
}

/* Deletes the source's consumer on the server, if connected (else the
 * server removes it after BUS_WATCH_INACTIVE_MS), and forgets its name. */
static void bus_watch_consumer_delete(struct bus_watch_src *ws)
{
	if (ws->name[0] && bus_is_connected(ws->watch->bus)) {
		jsOptions o;
		bus_watch_api_options(&o);
		(void)js_DeleteConsumer(ws->watch->bus->js, ws->stream, ws->name, &o, NULL);
	}
	ws->name[0] = '\0';
}

/* Drops the subscription (the thread's, or bus_watch_start's before the
 * threads run) and, with DELETE, deletes the consumer; without, forgets it
 * and leaves it to the server's inactivity threshold. */
static void bus_watch_src_drop(struct bus_watch_src *ws, bool delete)
{
	pthread_mutex_lock(&ws->watch->mu);
	natsSubscription *sub = ws->sub;
	ws->sub = NULL;
	pthread_mutex_unlock(&ws->watch->mu);
	natsSubscription_Destroy(sub); /* bound, not created by it: the consumer stays */
	if (delete)
		bus_watch_consumer_delete(ws);
	ws->name[0] = '\0';
}

/* Makes a consumer under a new name that delivers from last_sseq + 1, and
 * binds a pull subscription to it. */
static shop_status bus_watch_src_make(struct bus_watch_src *ws)
{
	struct bus *bus = ws->watch->bus;
	jsOptions o;
	jsErrCode jerr = 0;
	natsSubscription *sub = NULL;

	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;
	shop_status st = bus_watch_name_new(ws->name, sizeof(ws->name));
	if (st != SHOP_OK) {
		ws->name[0] = '\0';
		return st;
	}
	/* Read before the consumer exists: a reconnect in between makes
	 * another one, needlessly but safely. */
	ws->reconnects = bus_watch_reconnects(bus);

	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Name = ws->name;
	cc.AckPolicy = js_AckNone;
	cc.DeliverPolicy = js_DeliverByStartSequence;
	cc.OptStartSeq = ws->last_sseq + 1;
	cc.FilterSubject = ws->subject;
	cc.InactiveThreshold = BUS_WATCH_INACTIVE_MS * BUS_NS_PER_MS;
	cc.MemoryStorage = true;
	cc.Replicas = 1;
	bus_watch_api_options(&o);
	natsStatus s = js_AddConsumer(NULL, bus->js, ws->stream, &cc, &o, &jerr);
	if (s != NATS_OK) {
		/* A request that timed out may have made it; it is left to the
		 * inactivity threshold, not deleted: a timeout says a node may be
		 * away, and a consumer deleted while its node is away can keep
		 * that node from catching up with the metadata when it returns
		 * (nats-server 2.10, fixed in 2.12; docs/runbook.md). */
		ws->name[0] = '\0';
		return bus_status_from_nats(s, jerr);
	}

	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = ws->stream;
	so.Consumer = ws->name;         /* bind: nats.c deletes only what it created */
	so.Config.MemoryStorage = true; /* nats.c checks it against the consumer's */
	jerr = 0;
	s = js_PullSubscribe(&sub, bus->js, NULL, NULL, &o, &so, &jerr);
	if (s != NATS_OK) {
		bus_watch_consumer_delete(ws);
		return bus_status_from_nats(s, jerr);
	}
	ws->last_cseq = 0;
	pthread_mutex_lock(&ws->watch->mu);
	bool stopping = ws->watch->stopping;
	if (!stopping)
		ws->sub = sub;
	pthread_mutex_unlock(&ws->watch->mu);
	if (stopping) {
		natsSubscription_Destroy(sub);
		bus_watch_consumer_delete(ws);
		return SHOP_E_UNAVAILABLE;
	}
	return SHOP_OK;
}

/* What is waiting, up to BUS_WATCH_FETCH_MAX; only when nothing is, one
 * pull request for a single message that waits BUS_WATCH_WAIT_MS with idle
 * heartbeats (a request for a whole batch would hold its first message back
 * until the batch is full or the request expires; bus_fetch does the same).
 * NATS_OK with an empty list is an idle wait. */
static natsStatus bus_watch_fetch(natsSubscription *sub, natsMsgList *list)
{
	jsFetchRequest req;
	jsFetchRequest_Init(&req);
	req.Batch = BUS_WATCH_FETCH_MAX;
	req.NoWait = true;
	natsStatus s = natsSubscription_FetchRequest(list, sub, &req);
	if (s == NATS_OK && list->Count > 0)
		return NATS_OK;
	natsMsgList_Destroy(list);
	if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_NOT_FOUND)
		return s;
	jsFetchRequest_Init(&req);
	req.Batch = 1;
	req.Expires = BUS_WATCH_WAIT_MS * BUS_NS_PER_MS;
	req.Heartbeat = BUS_WATCH_HEARTBEAT_MS * BUS_NS_PER_MS;
	s = natsSubscription_FetchRequest(list, sub, &req);
	if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) {
		natsMsgList_Destroy(list);
		return NATS_OK;
	}
	return s;
}

/* Delivers the fetched messages in order while each is the next of the
 * consumer; false at the first that is not (a gap), or once stopping. */
static bool bus_watch_deliver(struct bus_watch_src *ws, natsMsgList *list)
{
	struct bus_watch *w = ws->watch;
	for (int i = 0; i < list->Count; i++) {
		natsMsg *msg = list->Msgs[i];
		jsMsgMetaData *meta = NULL;
		bool next = natsMsg_GetMetaData(&meta, msg) == NATS_OK &&
			    meta->Sequence.Consumer == ws->last_cseq + 1 &&
			    meta->Sequence.Stream > ws->last_sseq;
		if (next) {
			ws->last_cseq = meta->Sequence.Consumer;
			ws->last_sseq = meta->Sequence.Stream;
		}
		jsMsgMetaData_Destroy(meta);
		if (!next || bus_watch_stopping(w))
			return false;
		int len = natsMsg_GetDataLength(msg);
		w->fn(w->arg, ws->stream, natsMsg_GetSubject(msg), natsMsg_GetData(msg),
		      len > 0 ? (size_t)len : 0);
	}
	return true;
}

static void *bus_watch_run(void *closure)
{
	struct bus_watch_src *ws = closure;
	struct bus_watch *w = ws->watch;

	while (!bus_watch_stopping(w)) {
		if (!ws->name[0] && bus_watch_src_make(ws) != SHOP_OK) {
			bus_watch_pause(w, BUS_WATCH_RETRY_MS);
			continue;
		}
		natsMsgList list = { 0 };
		natsStatus s = bus_watch_fetch(ws->sub, &list);
		bool fresh = s == NATS_OK && bus_watch_deliver(ws, &list);
		natsMsgList_Destroy(&list);
		if (fresh && bus_watch_reconnects(w->bus) == ws->reconnects)
			continue;
		/* Stopping closed the subscription under the fetch: not a fault,
		 * the consumer is deleted below. */
		if (bus_watch_stopping(w))
			break;
		/* A gap, an error or a reconnect: a new consumer from the last
		 * message delivered. Pause after an error, which may last
		 * (the stream's node is gone until the cluster elects another).
		 * The old consumer is deleted only after a gap, when it answered
		 * and nothing reconnected: after an error or a reconnect its node
		 * may be away, and it is left to the inactivity threshold (see
		 * bus_watch_src_make). */
		bus_watch_src_drop(ws,
				   s == NATS_OK && bus_watch_reconnects(w->bus) == ws->reconnects);
		if (s != NATS_OK)
			bus_watch_pause(w, BUS_WATCH_RETRY_MS);
	}
	bus_watch_src_drop(ws, true);
	pthread_mutex_lock(&w->mu);
	w->running--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void bus_watch_free(struct bus_watch *w)
{
	for (size_t i = 0; i < w->n_srcs; i++) {
		free(w->srcs[i].stream);
		free(w->srcs[i].subject);
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

shop_status bus_watch_start(struct bus *bus, const struct bus_watch_source *sources, size_t n,
			    int64_t since_ms, bus_watch_fn fn, void *arg,
			    struct bus_watch **ret_watch)
{
	shop_status st = SHOP_OK;
	struct bus_watch *w = NULL;
	size_t i;

	if (!bus || !sources || n == 0 || !fn || !ret_watch)
		return SHOP_E_INVALID;
	for (i = 0; i < n; i++)
		if (!sources[i].stream || !*sources[i].stream || !sources[i].subject ||
		    !*sources[i].subject)
			return SHOP_E_INVALID;
	if (n > BUS_WATCH_SOURCES_MAX)
		return SHOP_E_LIMIT;
	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;

	w = xcalloc(1, sizeof(*w));
	w->bus = bus;
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	clock_cond_init(&w->cond);
	/* Every first consumer is made here, so that the start is fixed and a
	 * missing stream is reported, before any thread runs. */
	for (i = 0; i < n && st == SHOP_OK; i++) {
		struct bus_watch_src *ws = &w->srcs[i];
		ws->watch = w;
		ws->stream = xstrdup(sources[i].stream);
		ws->subject = xstrdup(sources[i].subject);
		w->n_srcs++;
		uint64_t start = 0;
		st = bus_watch_seq_at(bus, ws->stream, since_ms, &start);
		if (st == SHOP_OK) {
			ws->last_sseq = start - 1;
			st = bus_watch_src_make(ws);
		}
	}
	for (i = 0; i < w->n_srcs && st == SHOP_OK; i++) {
		pthread_mutex_lock(&w->mu);
		w->running++;
		pthread_mutex_unlock(&w->mu);
		if (pthread_create(&w->srcs[i].thread, NULL, bus_watch_run, &w->srcs[i]) != 0) {
			pthread_mutex_lock(&w->mu);
			w->running--;
			pthread_mutex_unlock(&w->mu);
			st = SHOP_E_INTERNAL;
			break;
		}
		w->n_threads++;
	}
	if (st == SHOP_OK) {
		*ret_watch = w;
		return SHOP_OK;
	}
	/* The sources without a thread are dropped here, the others by their
	 * threads as they stop. */
	for (size_t k = w->n_threads; k < w->n_srcs; k++)
		bus_watch_src_drop(&w->srcs[k], true);
	if (bus_watch_stop(w) != SHOP_OK)
		st = SHOP_E_TIMEOUT; /* a callback may still come: w and arg stay */
	return st;
}

shop_status bus_watch_stop(struct bus_watch *w)
{
	shop_status st = SHOP_OK;
	if (!w)
		return SHOP_OK;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->cond);
	/* Closing a subscription wakes the fetch waiting on it; the thread
	 * destroys it. */
	for (size_t i = 0; i < w->n_srcs; i++)
		if (w->srcs[i].sub)
			(void)natsSubscription_Unsubscribe(w->srcs[i].sub);
	struct timespec deadline = clock_mono_deadline(BUS_WATCH_STOP_WAIT_MS);
	while (w->running > 0 && st == SHOP_OK)
		if (pthread_cond_timedwait(&w->cond, &w->mu, &deadline) != 0 && w->running > 0)
			st = SHOP_E_TIMEOUT;
	pthread_mutex_unlock(&w->mu);
	if (st != SHOP_OK)
		return st; /* a thread may still use w: keep it */
	for (size_t i = 0; i < w->n_threads; i++)
		pthread_join(w->srcs[i].thread, NULL);
	bus_watch_free(w);
	return SHOP_OK;
}
