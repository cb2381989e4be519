/*
 * console_collect.c - fills the overview (console_view.c) from NATS.
 *
 * Two threads and four feeds, all started at start-up and stopped before
 * the connection closes:
 *   - the registry thread: every CONSOLE_REGISTRY_POLL_MS a $SRV.PING round
 *     (replies gathered for CONSOLE_PING_WAIT_MS), then each instance's
 *     status endpoint, one after the other (CONSOLE_STATUS_WAIT_MS each);
 *   - the sampler thread: every CONSOLE_SAMPLE_MS each NATS node's /varz,
 *     each durable's consumer info, and one sample of every series; it also
 *     (re)starts the two watches while they are not running (NATS down or
 *     the streams not declared yet when the console started);
 *   - a watch of every stream from CONSOLE_ORDERS_LOOKBACK_MS ago (orders,
 *     timelines, rates), and one of the stock events from the start of the
 *     inventory stream (so every SKU's latest level is known);
 *   - subscriptions to logs.*.warn and logs.*.error.
 * Callbacks run on the watches' threads and only take the view's lock briefly;
 * the threads hold no lock while they wait on NATS or HTTP.
 */
#include "console.h"

#include "contracts_gen.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool console_monitor_urls_parse(struct console *c, const char *list)
{
	char host[CONSOLE_HOST_MAX + 1];
	uint16_t port = 0;
	const char *path = NULL;
	size_t n = 0;
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len >= CONSOLE_URL_MAX || n == CONSOLE_NATS_NODES_MAX)
			return false;
		memcpy(c->monitor_urls[n], p, len);
		c->monitor_urls[n][len] = '\0';
		if (!console_url_parse(c->monitor_urls[n], host, sizeof(host), &port, &path))
			return false;
		n++;
		p += len + (comma ? 1 : 0);
	}
	c->n_monitor_urls = n;
	return n > 0;
}

/* Waits up to ms unless the console stops; true when it stops. */
static bool console_collect_pause(struct console *c, int64_t ms)
{
	struct timespec deadline = clock_mono_deadline(ms);
	pthread_mutex_lock(&c->mu);
	while (!c->stopping)
		if (pthread_cond_timedwait(&c->stop_cond, &c->mu, &deadline) != 0)
			break;
	bool stopping = c->stopping;
	pthread_mutex_unlock(&c->mu);
	return stopping;
}

static void console_registry_round(struct console *c)
{
	char **replies = NULL;
	size_t n = 0;
	shop_status st = bus_request_gather(c->bus, BUS_SERVICE_PING_SUBJECT, CONSOLE_PING_WAIT_MS,
					    CONSOLE_INSTANCES_MAX, &replies, &n);
	if (st != SHOP_OK) {
		console_view_registry_down(&c->view);
		return;
	}
	console_view_ping_round(&c->view, replies, n, clock_now_ms());
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_Parse(replies[i]);
		const char *name = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(o, "name"));
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id"));
		char subject[BUS_SERVICE_SUBJECT_MAX];
		char *status = NULL;
		if (name && id) {
			int len = snprintf(subject, sizeof(subject), "%s.%s.%s.%s",
					   BUS_SERVICE_SUBJECT_PREFIX, name, id,
					   BUS_SERVICE_STATUS_ENDPOINT);
			if (len > 0 && (size_t)len < sizeof(subject) &&
			    bus_request(c->bus, subject, CONSOLE_STATUS_WAIT_MS, &status) !=
				    SHOP_OK)
				status = NULL;
			console_view_status(&c->view, name, id, status, clock_now_ms());
		}
		free(status);
		cJSON_Delete(o);
	}
	bus_replies_free(replies, n);
}

static void *console_registry_main(void *arg)
{
	struct console *c = arg;
	do {
		int64_t t0 = clock_mono_ms();
		console_registry_round(c);
		int64_t left = CONSOLE_REGISTRY_POLL_MS - (clock_mono_ms() - t0);
		if (left < 1)
			left = 1;
		if (console_collect_pause(c, left))
			break;
	} while (true);
	return NULL;
}

static void console_on_event(void *arg, const char *stream, const char *subject, const char *data,
			     size_t len)
{
	(void)stream;
	(void)subject;
	struct console *c = arg;
	console_view_event(&c->view, data, len);
}

static void console_on_log(void *arg, const char *subject, const char *data, size_t len)
{
	(void)subject;
	struct console *c = arg;
	console_view_log(&c->view, data, len);
}

/* Starts whichever watch is not running yet; quiet until it works. */
static void console_watches_ensure(struct console *c)
{
	if (!c->events_watch) {
		struct bus_watch_source sources[BUS_WATCH_SOURCES_MAX];
		size_t n = console_stream_sources(sources, BUS_WATCH_SOURCES_MAX);
		if (bus_watch_start(c->bus, sources, n, clock_now_ms() - CONSOLE_ORDERS_LOOKBACK_MS,
				    console_on_event, c, &c->events_watch) != SHOP_OK)
			c->events_watch = NULL;
		else
			log_info(NULL, "watching the streams for the overview");
	}
	if (!c->stock_watch) {
		const struct ct_message *m = &ct_messages[CT_MSG_STOCK_LEVEL_CHANGED];
		struct bus_watch_source src = { m->stream, m->subject };
		/* From the start of the stream: a SKU's level is its last event,
		 * however old. */
		if (bus_watch_start(c->bus, &src, 1, 0, console_on_event, c, &c->stock_watch) !=
		    SHOP_OK)
			c->stock_watch = NULL;
	}
}

static void console_sample(struct console *c)
{
	int64_t *pending = xcalloc(ct_n_consumers ? ct_n_consumers : 1, sizeof(*pending));
	int64_t *ack = xcalloc(ct_n_consumers ? ct_n_consumers : 1, sizeof(*ack));
	char host[CONSOLE_HOST_MAX + 1];
	uint16_t port = 0;
	const char *path = NULL;

	for (size_t i = 0; i < c->n_monitor_urls; i++) {
		char *varz = NULL;
		if (console_url_parse(c->monitor_urls[i], host, sizeof(host), &port, &path))
			varz = console_http_get(host, port, "/varz", CONSOLE_MONITOR_TIMEOUT_MS,
						CONSOLE_MONITOR_REPLY_MAX);
		console_view_node(&c->view, i, c->monitor_urls[i], varz, clock_now_ms());
		free(varz);
	}
	for (size_t i = 0; i < ct_n_consumers; i++) {
		uint64_t p = 0, a = 0;
		bool ok = bus_consumer_pending(c->bus, ct_consumers[i].stream,
					       ct_consumers[i].durable, &p, &a) == SHOP_OK;
		pending[i] = ok ? (int64_t)p : -1;
		ack[i] = ok ? (int64_t)a : -1;
	}
	console_view_sample(&c->view, pending, ack);
	free(pending);
	free(ack);
}

static void *console_sample_main(void *arg)
{
	struct console *c = arg;
	do {
		int64_t t0 = clock_mono_ms();
		console_watches_ensure(c);
		console_sample(c);
		int64_t left = CONSOLE_SAMPLE_MS - (clock_mono_ms() - t0);
		if (left < 1)
			left = 1;
		if (console_collect_pause(c, left))
			break;
	} while (true);
	return NULL;
}

void console_collect_start(struct console *c)
{
	char subject[BUS_LOG_SUBJECT_MAX];
	/* Subscribing works before the first connect: nats.c sends it then. */
	snprintf(subject, sizeof(subject), "%s.*.%s", BUS_LOG_SUBJECT_PREFIX,
		 log_level_name(LOG_LVL_WARN));
	if (bus_subscribe(c->bus, subject, console_on_log, c, &c->warn_sub) != SHOP_OK)
		log_warn(NULL, "cannot subscribe to %s", subject);
	snprintf(subject, sizeof(subject), "%s.*.%s", BUS_LOG_SUBJECT_PREFIX,
		 log_level_name(LOG_LVL_ERROR));
	if (bus_subscribe(c->bus, subject, console_on_log, c, &c->error_sub) != SHOP_OK)
		log_warn(NULL, "cannot subscribe to %s", subject);
	pthread_create(&c->registry_thread, NULL, console_registry_main, c);
	pthread_create(&c->sample_thread, NULL, console_sample_main, c);
	c->collecting = true;
}

void console_collect_stop(struct console *c)
{
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->stop_cond);
	pthread_mutex_unlock(&c->mu);
	if (c->collecting) {
		pthread_join(c->registry_thread, NULL);
		pthread_join(c->sample_thread, NULL);
		c->collecting = false;
	}
	/* A watch that does not stop may still call back: the view (in the
	 * static console) outlives it. */
	(void)bus_watch_stop(c->events_watch);
	(void)bus_watch_stop(c->stock_watch);
	c->events_watch = c->stock_watch = NULL;
	bus_unsubscribe(c->warn_sub);
	bus_unsubscribe(c->error_sub);
	c->warn_sub = c->error_sub = NULL;
}
