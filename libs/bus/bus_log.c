/*
 * bus_log.c - the distributed logger and core NATS subscriptions (see bus.h).
 *
 * The logger sits between log.c, which calls bus_log_sink on whatever thread
 * logs, and nats.c, whose publish can wait: it appends to the connection's
 * buffer and, when that is full, writes to the socket on the caller's thread,
 * which blocks for as long as the server does not read (a stopped or
 * overloaded server). So the sink only takes a mutex that nothing holds for
 * longer than a pointer swap, copies the line into a bounded ring and
 * signals; the one publisher thread takes lines out of the ring and is the
 * only thread that calls nats.c here. Invariants:
 *   - the ring holds at most BUS_LOG_QUEUE_MAX lines; one more is dropped
 *     and counted, never waited for;
 *   - the publisher never holds the mutex while it publishes;
 *   - a line is published at most once, in the order it was queued.
 */
#include "bus_private.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bus_log_line {
	char *text;
	size_t len;
	enum log_level level;
};

struct bus_log {
	struct bus *bus;
	char prefix[BUS_LOG_SUBJECT_MAX / 2 + 16]; /* "logs.<service>." */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake; /* a line was queued, or stop */
	struct bus_log_line ring[BUS_LOG_QUEUE_MAX];
	size_t head, n;
	bool stop;
	uint64_t published, dropped; /* guarded by mu */
};

/* Service names become a subject token: no dots, wildcards or spaces. */
static bool bus_log_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= BUS_LOG_SUBJECT_MAX / 2)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_';
		if (!ok)
			return false;
	}
	return true;
}

void bus_log_sink(void *arg, enum log_level level, const char *line, size_t len)
{
	struct bus_log *l = arg;
	char *copy = NULL;
	if (len <= BUS_LOG_LINE_MAX)
		copy = xstrndup(line, len); /* before the lock: the lock stays short */
	pthread_mutex_lock(&l->mu);
	if (!copy || l->n >= BUS_LOG_QUEUE_MAX || l->stop) {
		l->dropped++;
	} else {
		l->ring[(l->head + l->n) % BUS_LOG_QUEUE_MAX] = (struct bus_log_line){
			.text = copy, .len = len, .level = level
		};
		l->n++;
		copy = NULL;
		pthread_cond_signal(&l->wake);
	}
	pthread_mutex_unlock(&l->mu);
	free(copy);
}

/* Takes the oldest line; false when the ring is empty. Called under mu. */
static bool bus_log_pop(struct bus_log *l, struct bus_log_line *ret_line)
{
	if (l->n == 0)
		return false;
	*ret_line = l->ring[l->head];
	l->ring[l->head] = (struct bus_log_line){ 0 };
	l->head = (l->head + 1) % BUS_LOG_QUEUE_MAX;
	l->n--;
	return true;
}

/* Publishes one line; false when it was dropped. */
static bool bus_log_publish(struct bus_log *l, const struct bus_log_line *line)
{
	char subject[BUS_LOG_SUBJECT_MAX];
	/* Down: nats.c would keep the line in its reconnect buffer, which is
	 * for the services' own messages; a log line is dropped instead. */
	if (!bus_is_connected(l->bus))
		return false;
	snprintf(subject, sizeof(subject), "%s%s", l->prefix, log_level_name(line->level));
	return natsConnection_Publish(l->bus->nc, subject, line->text, (int)line->len) == NATS_OK;
}

static void *bus_log_main(void *arg)
{
	struct bus_log *l = arg;
	int64_t stop_deadline = 0;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct bus_log_line line;
		if (!bus_log_pop(l, &line)) {
			if (l->stop)
				break;
			pthread_cond_wait(&l->wake, &l->mu);
			continue;
		}
		if (l->stop && stop_deadline == 0)
			stop_deadline = clock_mono_ms() + BUS_LOG_STOP_WAIT_MS;
		bool late = stop_deadline && clock_mono_ms() > stop_deadline;
		pthread_mutex_unlock(&l->mu);
		bool sent = !late && bus_log_publish(l, &line);
		free(line.text);
		pthread_mutex_lock(&l->mu);
		if (sent)
			l->published++;
		else
			l->dropped++;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

shop_status bus_log_start(struct bus *bus, const char *service, struct bus_log **ret_log)
{
	if (!bus || !service || !ret_log || !bus_log_name_ok(service))
		return SHOP_E_INVALID;
	struct bus_log *l = xcalloc(1, sizeof(*l));
	l->bus = bus;
	snprintf(l->prefix, sizeof(l->prefix), "%s.%s.", BUS_LOG_SUBJECT_PREFIX, service);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->wake, NULL);
	if (pthread_create(&l->thread, NULL, bus_log_main, l) != 0) {
		pthread_cond_destroy(&l->wake);
		pthread_mutex_destroy(&l->mu);
		free(l);
		return SHOP_E_INTERNAL;
	}
	*ret_log = l;
	return SHOP_OK;
}

void bus_log_counts(struct bus_log *l, uint64_t *ret_published, uint64_t *ret_dropped)
{
	pthread_mutex_lock(&l->mu);
	if (ret_published)
		*ret_published = l->published;
	if (ret_dropped)
		*ret_dropped = l->dropped;
	pthread_mutex_unlock(&l->mu);
}

void bus_log_stop(struct bus_log *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
	/* The thread may sit in a write to a server that does not read (nats.c
	 * writes without a deadline): past the wait it is left to the process's
	 * exit, with its memory. */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 2 * BUS_LOG_STOP_WAIT_MS / 1000;
	if (pthread_timedjoin_np(l->thread, NULL, &deadline) != 0) {
		pthread_detach(l->thread);
		return;
	}
	/* Flushed so that the last lines leave before the connection closes. */
	if (bus_is_connected(l->bus))
		(void)natsConnection_FlushTimeout(l->bus->nc, BUS_LOG_STOP_WAIT_MS);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* ---- core NATS subscriptions -------------------------------------------- */

struct bus_sub {
	natsSubscription *sub;
	bus_sub_fn fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t done_cond; /* CLOCK_MONOTONIC */
	bool done;                /* nats.c's on-complete callback ran */
	bool orphaned;            /* unsubscribe gave up waiting: the callback frees */
};

static void bus_sub_free(struct bus_sub *s)
{
	natsSubscription_Destroy(s->sub);
	pthread_cond_destroy(&s->done_cond);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void bus_sub_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	(void)nc;
	(void)sub;
	struct bus_sub *s = closure;
	int len = natsMsg_GetDataLength(m);
	s->fn(s->arg, natsMsg_GetSubject(m), natsMsg_GetData(m), len > 0 ? (size_t)len : 0);
	natsMsg_Destroy(m);
}

/* nats.c calls this once the subscription is closed and its last message
 * callback has returned. */
static void bus_sub_on_complete(void *closure)
{
	struct bus_sub *s = closure;
	pthread_mutex_lock(&s->mu);
	bool orphaned = s->orphaned;
	s->done = true;
	pthread_cond_broadcast(&s->done_cond);
	pthread_mutex_unlock(&s->mu);
	if (orphaned)
		bus_sub_free(s);
}

shop_status bus_subscribe(struct bus *bus, const char *subject, bus_sub_fn fn, void *arg,
			  struct bus_sub **ret_sub)
{
	if (!bus || !subject || !*subject || !fn || !ret_sub)
		return SHOP_E_INVALID;
	struct bus_sub *s = xcalloc(1, sizeof(*s));
	s->fn = fn;
	s->arg = arg;
	pthread_mutex_init(&s->mu, NULL);
	clock_cond_init(&s->done_cond);
	natsStatus ns = natsConnection_Subscribe(&s->sub, bus->nc, subject, bus_sub_on_msg, s);
	if (ns == NATS_OK)
		ns = natsSubscription_SetOnCompleteCB(s->sub, bus_sub_on_complete, s);
	if (ns != NATS_OK) {
		if (s->sub)
			natsSubscription_Unsubscribe(s->sub);
		bus_sub_free(s); /* no callback yet: nothing was delivered to s */
		return bus_status_from_nats(ns, 0);
	}
	*ret_sub = s;
	return SHOP_OK;
}

void bus_unsubscribe(struct bus_sub *s)
{
	if (!s)
		return;
	(void)natsSubscription_Unsubscribe(s->sub);
	struct timespec deadline = clock_mono_deadline(BUS_WATCH_STOP_WAIT_MS);
	pthread_mutex_lock(&s->mu);
	while (!s->done)
		if (pthread_cond_timedwait(&s->done_cond, &s->mu, &deadline) != 0)
			break;
	bool done = s->done;
	s->orphaned = !done;
	pthread_mutex_unlock(&s->mu);
	if (done)
		bus_sub_free(s);
}
