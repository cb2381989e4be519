/*
 * lt_watch.c - order events from the bus, consumer lag from monitoring
 * (lt_watch.h).
 */
#include "lt_watch.h"

#include "lt_pace.h"
#include "bus/bus.h"
#include "bus/bus_nats.h"
#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LT_WATCH_QUEUE_INITIAL 1024 /* events; the queue doubles as needed */
#define LT_WATCH_CONNECT_TIMEOUT_MS 2000

struct lt_watch {
	natsConnection *nc;
	natsSubscription *sub;
	pthread_mutex_t lock;
	struct lt_event *queue; /* guarded by lock */
	size_t n, cap;
};

/* The one translation of natsStatus for the generator. */
static shop_status lt_watch_status(natsStatus s)
{
	switch (s) {
	case NATS_OK:
		return SHOP_OK;
	case NATS_TIMEOUT:
		return SHOP_E_TIMEOUT;
	case NATS_NO_SERVER:
	case NATS_CONNECTION_CLOSED:
	case NATS_IO_ERROR:
	case NATS_NOT_YET_CONNECTED:
		return SHOP_E_UNAVAILABLE;
	default:
		return SHOP_E_INTERNAL;
	}
}

shop_status lt_watch_parse(const char *subject, const char *data, size_t len,
			   enum lt_event_kind *ret_kind, char ret_order_id[LT_ORDER_ID_SIZE])
{
	shop_status st = SHOP_E_NOT_FOUND;
	cJSON *ev = NULL;
	enum lt_event_kind kind;
	if (strcmp(subject, LT_SUBJECT_PAID) == 0)
		kind = LT_EV_PAID;
	else if (strcmp(subject, LT_SUBJECT_SHIPPED) == 0)
		kind = LT_EV_SHIPPED;
	else if (strcmp(subject, LT_SUBJECT_CANCELLED) == 0)
		kind = LT_EV_CANCELLED;
	else
		goto out;
	st = SHOP_E_INVALID;
	ev = cJSON_ParseWithLength(data, len);
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "subject"));
	if (!id || strlen(id) != LT_ORDER_ID_SIZE - 1)
		goto out;
	memcpy(ret_order_id, id, LT_ORDER_ID_SIZE);
	*ret_kind = kind;
	st = SHOP_OK;
out:
	cJSON_Delete(ev);
	return st;
}

/* libnats' delivery thread: stamp, parse, queue. */
static void lt_watch_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct lt_watch *w = closure;
	struct lt_event e;
	e.seen_ns = lt_pace_now_ns();
	if (lt_watch_parse(natsMsg_GetSubject(msg), natsMsg_GetData(msg),
			   (size_t)natsMsg_GetDataLength(msg), &e.kind, e.order_id) == SHOP_OK) {
		pthread_mutex_lock(&w->lock);
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : LT_WATCH_QUEUE_INITIAL;
			w->queue = xrealloc(w->queue, w->cap * sizeof(*w->queue));
		}
		w->queue[w->n++] = e;
		pthread_mutex_unlock(&w->lock);
	}
	natsMsg_Destroy(msg);
}

shop_status lt_watch_start(const char *url, struct lt_watch **ret_watch)
{
	shop_status st;
	natsOptions *opts = NULL;
	char **urls = NULL;
	size_t n_urls = bus_url_list(url, &urls);
	struct lt_watch *w = xcalloc(1, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);

	/* Every node of a cluster: the watch moves to another when its own
	 * goes away (events published meanwhile are not seen, and the orders
	 * they end count as never terminal). */
	st = n_urls == 0 || n_urls > INT32_MAX ? SHOP_E_INVALID : SHOP_OK;
	if (st == SHOP_OK)
		st = lt_watch_status(natsOptions_Create(&opts));
	if (st == SHOP_OK)
		st = lt_watch_status(
			natsOptions_SetServers(opts, (const char **)urls, (int)n_urls));
	if (st == SHOP_OK)
		st = lt_watch_status(natsOptions_SetName(opts, "shop-loadtest"));
	if (st == SHOP_OK)
		st = lt_watch_status(natsOptions_SetTimeout(opts, LT_WATCH_CONNECT_TIMEOUT_MS));
	if (st == SHOP_OK)
		st = bus_nats_options_auth(opts, NULL);
	/* A run lasts minutes: keep reconnecting rather than lose the events. */
	if (st == SHOP_OK)
		st = lt_watch_status(natsOptions_SetMaxReconnect(opts, -1));
	if (st == SHOP_OK)
		st = lt_watch_status(natsConnection_Connect(&w->nc, opts));
	if (st == SHOP_OK)
		st = lt_watch_status(natsConnection_Subscribe(&w->sub, w->nc,
							      LT_SUBJECT_ORDER_EVENTS,
							      lt_watch_on_msg, w));
	if (st == SHOP_OK)
		st = lt_watch_status(natsSubscription_SetPendingLimits(w->sub,
								       LT_WATCH_PENDING_MSGS,
								       LT_WATCH_PENDING_BYTES));
	/* The subscription is live on the server once the flush returns. */
	if (st == SHOP_OK)
		st = lt_watch_status(
			natsConnection_FlushTimeout(w->nc, LT_WATCH_CONNECT_TIMEOUT_MS));
	if (st != SHOP_OK)
		goto out;
	*ret_watch = w;
	w = NULL;
out:
	natsOptions_Destroy(opts);
	bus_url_list_free(urls, n_urls);
	lt_watch_stop(w);
	return st;
}

void lt_watch_stop(struct lt_watch *w)
{
	if (!w)
		return;
	if (w->sub) {
		natsSubscription_Unsubscribe(w->sub);
		natsSubscription_Destroy(w->sub);
	}
	natsConnection_Destroy(w->nc);
	pthread_mutex_destroy(&w->lock);
	free(w->queue);
	free(w);
}

size_t lt_watch_take(struct lt_watch *w, struct lt_event **ret_events)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->n;
	*ret_events = w->queue;
	w->queue = NULL;
	w->n = w->cap = 0;
	pthread_mutex_unlock(&w->lock);
	return n;
}

int64_t lt_watch_dropped(struct lt_watch *w)
{
	int64_t dropped = 0;
	if (w && w->sub && natsSubscription_GetDropped(w->sub, &dropped) != NATS_OK)
		dropped = 0;
	return dropped;
}

static int64_t lt_json_int(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* Whether SELF is the leader of the consumer C describes (see the header). */
static bool lt_watch_leads(const cJSON *c, const char *self)
{
	const char *leader = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "cluster"),
						 "leader"));
	return !self || !leader || strcmp(leader, self) == 0;
}

int64_t lt_watch_lag_total(const struct lt_lag *lag, size_t n)
{
	int64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += lag[i].pending + lag[i].ack_pending;
	return total;
}

shop_status lt_watch_parse_jsz(const char *body, size_t len, const char *self, struct lt_lag *lag,
			       size_t *n_lag, int64_t *ret_gateway_seq)
{
	shop_status st = SHOP_E_INVALID;
	int64_t gw_seq = -1;
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *accounts = cJSON_GetObjectItemCaseSensitive(root, "account_details");
	if (!cJSON_IsArray(accounts))
		goto out;
	const cJSON *acc;
	cJSON_ArrayForEach(acc, accounts)
	{
		const cJSON *streams = cJSON_GetObjectItemCaseSensitive(acc, "stream_detail");
		const cJSON *s;
		cJSON_ArrayForEach(s, streams)
		{
			const char *sname = cJSON_GetStringValue(
				cJSON_GetObjectItemCaseSensitive(s, "name"));
			if (!sname)
				continue;
			if (strcmp(sname, "GATEWAY") == 0)
				gw_seq = lt_json_int(cJSON_GetObjectItemCaseSensitive(s, "state"),
						     "last_seq");
			const cJSON *c;
			cJSON_ArrayForEach(c,
					   cJSON_GetObjectItemCaseSensitive(s, "consumer_detail"))
			{
				const char *cname = cJSON_GetStringValue(
					cJSON_GetObjectItemCaseSensitive(c, "name"));
				if (!cname || !lt_watch_leads(c, self))
					continue;
				char key[LT_DURABLE_NAME_MAX];
				snprintf(key, sizeof(key), "%s/%s", sname, cname);
				int64_t pending = lt_json_int(c, "num_pending");
				int64_t ack_pending = lt_json_int(c, "num_ack_pending");
				size_t i = 0;
				while (i < *n_lag && strcmp(lag[i].durable, key) != 0)
					i++;
				if (i == *n_lag) {
					if (*n_lag == LT_DURABLES_MAX)
						continue;
					memset(&lag[i], 0, sizeof(lag[i]));
					memcpy(lag[i].durable, key, sizeof(key));
					(*n_lag)++;
				}
				lag[i].pending = pending;
				lag[i].ack_pending = ack_pending;
				if (pending + ack_pending > lag[i].max_total)
					lag[i].max_total = pending + ack_pending;
			}
		}
	}
	*ret_gateway_seq = gw_seq;
	st = SHOP_OK;
out:
	cJSON_Delete(root);
	return st;
}
