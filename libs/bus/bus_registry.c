/*
 * bus_registry.c - the service registry on the NATS service API (see bus.h):
 * registering an instance, and the requests a tool discovers instances with.
 *
 * nats.c's micro library does the protocol: it answers $SRV.PING, $SRV.INFO
 * and $SRV.STATS (each bare, by service name, and by name and id) and keeps
 * the per-endpoint counters. What this file adds is the shop's one endpoint
 * and a safe way to stop: the status endpoint calls back into the service,
 * and nats.c may still be delivering a request while the service stops from
 * another thread, so unregistering waits for the micro library's done
 * handler, which it calls once the last endpoint's subscription has
 * finished its last callback. If that takes longer than the wait (the
 * broker is unreachable, so the drain cannot finish), the struct is handed
 * over to the done handler, which frees it whenever it comes (at the latest
 * when the connection is closed); the caller's arg must then outlive the
 * connection, as a service's state does.
 */
#include "bus_private.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Poll interval of bus_wait_connected: nats.c has no "wait until connected"
 * call, and a tool waits for it once. */
#define BUS_CONNECTED_POLL_MS 20
/* micro's error code on a status request the instance cannot answer, by
 * analogy with HTTP's 503 (the code travels in Nats-Service-Error-Code). */
#define BUS_SERVICE_UNAVAILABLE_CODE 503
/* Room for an instance id: nats.c draws 22-character NUIDs. */
#define BUS_SERVICE_ID_MAX 64

struct bus_service {
	microService *micro;
	bus_status_fn status;
	void *arg;
	char id[BUS_SERVICE_ID_MAX];
	pthread_mutex_t mu;
	pthread_cond_t done_cond; /* done went true; CLOCK_MONOTONIC */
	bool done;                /* the micro library called its done handler */
	bool orphaned;            /* unregister gave up waiting: the done handler frees */
};

static microError *bus_service_on_status(microRequest *req)
{
	struct bus_service *s = microRequest_GetEndpointState(req);
	char *json = s->status(s->arg);
	if (!json)
		return micro_ErrorfCode(BUS_SERVICE_UNAVAILABLE_CODE, "no status available");
	microError *err = microRequest_Respond(req, json, strlen(json));
	free(json);
	return err;
}

static void bus_service_free(struct bus_service *s)
{
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->done_cond);
	free(s);
}

static void bus_service_on_done(microService *m)
{
	struct bus_service *s = microService_GetState(m);
	pthread_mutex_lock(&s->mu);
	bool orphaned = s->orphaned;
	s->done = true;
	pthread_cond_broadcast(&s->done_cond);
	pthread_mutex_unlock(&s->mu);
	if (orphaned)
		bus_service_free(s);
}

/* The micro library's errors carry text we do not log here (a library does
 * not log); their NATS status is what the caller can act on. */
static shop_status bus_status_from_micro(microError *err)
{
	if (!err)
		return SHOP_OK;
	natsStatus s = microError_Status(err);
	microError_Destroy(err);
	return s == NATS_OK ? SHOP_E_INVALID : bus_status_from_nats(s, 0);
}

shop_status bus_service_register(struct bus *bus, const char *name, const char *version,
				 bus_status_fn status, void *arg, struct bus_service **ret_service)
{
	shop_status st = SHOP_E_INVALID;
	microServiceInfo *info = NULL;
	char subject[BUS_SERVICE_SUBJECT_MAX];
	if (!bus || !name || !version || !status || !ret_service)
		return SHOP_E_INVALID;

	struct bus_service *s = xcalloc(1, sizeof(*s));
	s->status = status;
	s->arg = arg;
	pthread_mutex_init(&s->mu, NULL);
	clock_cond_init(&s->done_cond);
	char description[BUS_SERVICE_SUBJECT_MAX];
	snprintf(description, sizeof(description), "shop service %s", name);
	microServiceConfig cfg = { .Name = name,
				   .Version = version,
				   .Description = description,
				   .DoneHandler = bus_service_on_done,
				   .State = s };
	st = bus_status_from_micro(micro_AddService(&s->micro, bus->nc, &cfg));
	if (st != SHOP_OK)
		goto out;
	/* The status subject names the instance, so it needs the id the
	 * library drew: the endpoint is added once the service exists. */
	st = bus_status_from_micro(microService_GetInfo(&info, s->micro));
	if (st != SHOP_OK)
		goto out;
	snprintf(s->id, sizeof(s->id), "%s", info->Id);
	int n = snprintf(subject, sizeof(subject), "%s.%s.%s.%s", BUS_SERVICE_SUBJECT_PREFIX, name,
			 s->id, BUS_SERVICE_STATUS_ENDPOINT);
	if (n < 0 || (size_t)n >= sizeof(subject)) {
		st = SHOP_E_LIMIT;
		goto out;
	}
	microEndpointConfig ep = { .Name = BUS_SERVICE_STATUS_ENDPOINT,
				   .Subject = subject,
				   .Handler = bus_service_on_status,
				   .State = s };
	st = bus_status_from_micro(microService_AddEndpoint(s->micro, &ep));
	if (st != SHOP_OK)
		goto out;
	*ret_service = s;
	s = NULL;
out:
	microServiceInfo_Destroy(info);
	if (s && s->micro)
		bus_service_unregister(s);
	else if (s)
		bus_service_free(s);
	return st;
}

const char *bus_service_id(const struct bus_service *s)
{
	return s->id;
}

void bus_service_unregister(struct bus_service *s)
{
	if (!s)
		return;
	microError_Ignore(microService_Destroy(s->micro));
	struct timespec deadline = clock_mono_deadline(BUS_SERVICE_STOP_WAIT_MS);
	pthread_mutex_lock(&s->mu);
	while (!s->done)
		if (pthread_cond_timedwait(&s->done_cond, &s->mu, &deadline) != 0)
			break;
	bool done = s->done;
	s->orphaned = !done; /* a request may still come: the done handler frees s */
	pthread_mutex_unlock(&s->mu);
	if (done)
		bus_service_free(s);
}

/* ---- discovery ---------------------------------------------------------- */

bool bus_wait_connected(struct bus *bus, int64_t timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	while (!bus_is_connected(bus)) {
		if (clock_mono_ms() >= deadline)
			return false;
		clock_sleep_ms(BUS_CONNECTED_POLL_MS);
	}
	return true;
}

/* A reply's data as a C string; NULL for a reply without data (the
 * server's "no responders" status, or a micro error reply). */
static char *bus_reply_text(natsMsg *m)
{
	int len = natsMsg_GetDataLength(m);
	if (len <= 0)
		return NULL;
	return xstrndup(natsMsg_GetData(m), (size_t)len);
}

shop_status bus_request_gather(struct bus *bus, const char *subject, int64_t wait_ms, size_t max,
			       char ***ret_replies, size_t *ret_n)
{
	shop_status st = SHOP_E_INTERNAL;
	char inbox[BUS_INBOX_MAX];
	natsSubscription *sub = NULL;
	char **replies = xcalloc(max ? max : 1, sizeof(*replies));
	size_t n = 0;
	natsStatus s;

	if (!bus_is_connected(bus)) {
		st = SHOP_E_UNAVAILABLE;
		goto out;
	}
	/* The connection's own inbox prefix: a user may subscribe to no other. */
	st = bus_inbox_new(bus, inbox, sizeof(inbox));
	if (st != SHOP_OK)
		goto out;
	st = SHOP_E_INTERNAL;
	s = natsConnection_SubscribeSync(&sub, bus->nc, inbox);
	if (s == NATS_OK)
		s = natsConnection_PublishRequest(bus->nc, subject, inbox, NULL, 0);
	if (s != NATS_OK) {
		st = bus_status_from_nats(s, 0);
		goto out;
	}
	/* Replies come from every instance, each in its own time: gather until
	 * the wait is over, not until the first. */
	int64_t deadline = clock_mono_ms() + wait_ms;
	while (n < max) {
		int64_t left = deadline - clock_mono_ms();
		natsMsg *m = NULL;
		if (left <= 0)
			break;
		s = natsSubscription_NextMsg(&m, sub, left);
		if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS)
			break;
		if (s != NATS_OK) {
			st = bus_status_from_nats(s, 0);
			goto out;
		}
		char *text = bus_reply_text(m);
		natsMsg_Destroy(m);
		if (text)
			replies[n++] = text;
	}
	*ret_replies = replies;
	*ret_n = n;
	replies = NULL;
	st = SHOP_OK;
out:
	natsSubscription_Destroy(sub);
	bus_replies_free(replies, n);
	return st;
}

shop_status bus_request(struct bus *bus, const char *subject, int64_t timeout_ms, char **ret_reply)
{
	natsMsg *m = NULL;
	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;
	natsStatus s = natsConnection_Request(&m, bus->nc, subject, NULL, 0, timeout_ms);
	if (s != NATS_OK)
		return bus_status_from_nats(s, 0);
	char *text = bus_reply_text(m);
	natsMsg_Destroy(m);
	if (!text)
		return SHOP_E_UNAVAILABLE; /* an error reply: the instance cannot say */
	*ret_reply = text;
	return SHOP_OK;
}

void bus_replies_free(char **replies, size_t n)
{
	if (!replies)
		return;
	for (size_t i = 0; i < n; i++)
		free(replies[i]);
	free(replies);
}
