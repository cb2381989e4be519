/*
 * bus.c - the connection, the status translation, and declaring streams and
 * durable consumers (see bus.h).
 *
 * The connection is made with retry-on-failed-connect and unlimited
 * reconnects, so bus_connect succeeds while the server is down and the same
 * handle serves the process for its whole life; nats.c re-subscribes and
 * resends buffered data after each reconnect.
 *
 * Declaring is read, then create or update, and is safe when several
 * replicas of a service declare the same stream or durable at the same time:
 * a create that loses the race ("already exists") goes back to reading, and
 * an update with the configuration another replica just wrote is a no-op.
 * (Measured with nats.c 3.10.1 and nats-server 2.10: creating a stream that
 * exists with another configuration fails with JSStreamNameExistErr, while
 * js_AddConsumer and js_UpdateConsumer both create or update a durable.)
 * Nothing here ever deletes a stream or a consumer.
 */
#include "bus_nats.h"
#include "bus_private.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rounds of read / create-or-update before declaring gives up; two are
 * enough for any interleaving of concurrent declarers, one more is slack. */
#define BUS_DECLARE_ATTEMPTS 3

/* nats-server 2.10 answers a create of an existing consumer whose
 * configuration differs with this code; nats.c 3.10 has no name for it. */
#define BUS_JS_CONSUMER_ALREADY_EXISTS 10148

shop_status bus_status_from_nats(natsStatus s, jsErrCode jerr)
{
	/* A JetStream error code is more precise than the NATS_ERR it comes with. */
	switch ((int)jerr) {
	case 0:
		break;
	case JSStreamNotFoundErr:
	case JSConsumerNotFoundErr:
	case JSNoMessageFoundErr:
		return SHOP_E_NOT_FOUND;
	case JSStreamMessageExceedsMaximumErr:
		return SHOP_E_LIMIT;
	case JSClusterNotAvailErr:
	case JSClusterNoPeersErr:
	case JSClusterNotLeaderErr:
	case JSInsufficientResourcesErr:
	case JSStorageResourcesExceededErr:
	case JSMemoryResourcesExceededErr:
	case JSNotEnabledErr:
	case JSNotEnabledForAccountErr:
	case JSStreamStoreFailedErr:
	case JSStreamOfflineErr:
	case JSConsumerOfflineErr:
		return SHOP_E_UNAVAILABLE;
	case JSBadRequestErr:
	case JSInvalidJSONErr:
	case JSStreamInvalidConfig:
	case JSStreamSubjectOverlapErr:
	case JSConsumerBadDurableNameErr:
	case JSStreamReplicasNotSupportedErr:
		return SHOP_E_INVALID;
	default:
		break;
	}
	switch (s) {
	case NATS_OK:
		return SHOP_OK;
	case NATS_TIMEOUT:
		return SHOP_E_TIMEOUT;
	case NATS_CONNECTION_CLOSED:
	case NATS_NO_SERVER:
	case NATS_NOT_YET_CONNECTED:
	case NATS_CONNECTION_DISCONNECTED:
	case NATS_IO_ERROR:
	case NATS_STALE_CONNECTION:
	case NATS_NO_RESPONDERS:       /* no stream listening (yet): JetStream restarting */
	case NATS_MISSED_HEARTBEAT:    /* a pull request was lost with the server */
	case NATS_LIMIT_REACHED:       /* 409 on a pull: too many waiting pulls, leader change */
	case NATS_INSUFFICIENT_BUFFER: /* reconnect buffer full while disconnected */
	case NATS_SLOW_CONSUMER:
	case NATS_DRAINING:
		return SHOP_E_UNAVAILABLE;
	case NATS_NOT_FOUND:
		return SHOP_E_NOT_FOUND;
	case NATS_INVALID_ARG:
	case NATS_INVALID_SUBJECT:
	case NATS_INVALID_TIMEOUT:
	case NATS_INVALID_QUEUE_NAME:
	case NATS_ADDRESS_MISSING:
		return SHOP_E_INVALID;
	case NATS_MAX_PAYLOAD:
		return SHOP_E_LIMIT;
	default:
		return SHOP_E_INTERNAL;
	}
}

/* Called by nats.c when a connect that failed at first succeeds later. Its
 * presence is what makes natsConnection_Connect return at once instead of
 * retrying synchronously forever. */
static void bus_on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	(void)closure;
}

size_t bus_url_list(const char *url, char ***ret_urls)
{
	size_t n = 0, cap = 4;
	char **urls = xcalloc(cap, sizeof(*urls));
	const char *p = url;
	while (*p) {
		const char *end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		const char *a = p, *b = end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b > a) {
			if (n == cap) {
				cap *= 2;
				urls = xrealloc(urls, cap * sizeof(*urls));
			}
			urls[n++] = xstrndup(a, (size_t)(b - a));
		}
		p = *end ? end + 1 : end;
	}
	*ret_urls = urls;
	return n;
}

void bus_url_list_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A user name is used as a subject token (its inbox, its permissions). */
static bool bus_user_valid(const char *user)
{
	size_t n = strlen(user);
	if (n == 0 || n > BUS_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = user[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

shop_status bus_nats_options_auth(natsOptions *opts, const char **ret_user)
{
	const char *user = config_str(BUS_ENV_USER, NULL);
	const char *password = config_str(BUS_ENV_PASSWORD, NULL);
	char prefix[BUS_INBOX_MAX];

	if (ret_user)
		*ret_user = NULL;
	if (!user || !*user)
		return password && *password ? SHOP_E_INVALID : SHOP_OK;
	if (!bus_user_valid(user) || !password || !*password)
		return SHOP_E_INVALID;
	snprintf(prefix, sizeof(prefix), "%s.%s", BUS_INBOX_PREFIX, user);
	natsStatus s = natsOptions_SetUserInfo(opts, user, password);
	if (s == NATS_OK)
		s = natsOptions_SetCustomInboxPrefix(opts, prefix);
	if (s != NATS_OK)
		return bus_status_from_nats(s, 0);
	if (ret_user)
		*ret_user = user;
	return SHOP_OK;
}

const char *bus_user(const struct bus *bus)
{
	return bus ? bus->user : NULL;
}

shop_status bus_inbox_new(const struct bus *bus, char *buf, size_t cap)
{
	natsInbox *inbox = NULL;
	natsStatus s = natsInbox_Create(&inbox);
	if (s != NATS_OK)
		return bus_status_from_nats(s, 0);
	/* nats.c's inbox is _INBOX.<nuid>: keep the NUID, under our prefix. */
	const char *nuid = strchr(inbox, '.');
	int n = bus->inbox_prefix ? snprintf(buf, cap, "%s%s", bus->inbox_prefix, nuid ? nuid : "")
				  : snprintf(buf, cap, "%s", inbox);
	natsInbox_Destroy(inbox);
	return n < 0 || (size_t)n >= cap ? SHOP_E_LIMIT : SHOP_OK;
}

shop_status bus_connect(const char *url, const char *name, struct bus **ret_bus)
{
	const char *user = NULL;
	shop_status st = SHOP_E_INTERNAL;
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	char **urls = NULL;
	size_t n_urls = 0;
	natsStatus s;

	if (!url || !ret_bus)
		return SHOP_E_INVALID;
	n_urls = bus_url_list(url, &urls);
	if (n_urls == 0 || n_urls > INT32_MAX) {
		st = SHOP_E_INVALID;
		goto out;
	}

	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, (const char **)urls, (int)n_urls);
	if (s == NATS_OK && name && *name)
		s = natsOptions_SetName(opts, name);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, BUS_RECONNECT_WAIT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectJitter(opts, BUS_RECONNECT_JITTER_MS,
						   BUS_RECONNECT_JITTER_MS);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(opts, BUS_PING_INTERVAL_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(opts, BUS_MAX_PINGS_OUT);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts, BUS_CONNECT_TIMEOUT_MS);
	/* A request in flight when the connection drops fails at once instead of
	 * waiting out its timeout; its outcome is unknown either way. */
	if (s == NATS_OK)
		s = natsOptions_SetFailRequestsOnDisconnect(opts, true);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(opts, true, bus_on_connected, NULL);
	if (s != NATS_OK) {
		st = bus_status_from_nats(s, 0);
		goto out;
	}
	st = bus_nats_options_auth(opts, &user);
	if (st != SHOP_OK)
		goto out;
	st = SHOP_E_INTERNAL;

	s = natsConnection_Connect(&nc, opts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		st = bus_status_from_nats(s, 0);
		goto out;
	}

	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = BUS_API_TIMEOUT_MS;
	s = natsConnection_JetStream(&js, nc, &jo);
	if (s != NATS_OK) {
		st = bus_status_from_nats(s, 0);
		goto out;
	}

	struct bus *bus = xcalloc(1, sizeof(*bus));
	bus->nc = nc;
	bus->js = js;
	pthread_mutex_init(&bus->batch_mu, NULL);
	pthread_mutex_init(&bus->ack_mu, NULL);
	clock_cond_init(&bus->ack_cond);
	if (user) {
		char prefix[BUS_INBOX_MAX];
		snprintf(prefix, sizeof(prefix), "%s.%s", BUS_INBOX_PREFIX, user);
		bus->user = xstrdup(user);
		bus->inbox_prefix = xstrdup(prefix);
	}
	nc = NULL;
	js = NULL;
	*ret_bus = bus;
	st = SHOP_OK;
out:
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	bus_url_list_free(urls, n_urls);
	return st;
}

void bus_close(struct bus *bus)
{
	if (!bus)
		return;
	jsCtx_Destroy(bus->batch_js);
	jsCtx_Destroy(bus->js);
	natsConnection_Destroy(bus->nc);
	pthread_mutex_destroy(&bus->batch_mu);
	pthread_mutex_destroy(&bus->ack_mu);
	pthread_cond_destroy(&bus->ack_cond);
	free(bus->user);
	free(bus->inbox_prefix);
	free(bus);
}

bool bus_is_connected(struct bus *bus)
{
	return bus && natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED;
}

/* Same strings, in any order (both lists are small). */
static bool bus_same_set(const char *const *a, size_t na, const char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool found = false;
		for (size_t j = 0; j < nb && !found; j++)
			found = a[i] && b[j] && strcmp(a[i], b[j]) == 0;
		if (!found)
			return false;
	}
	return true;
}

static bool bus_stream_matches(const jsStreamConfig *have, const jsStreamConfig *want)
{
	return have &&
	       bus_same_set((const char *const *)have->Subjects, (size_t)have->SubjectsLen,
			    (const char *const *)want->Subjects, (size_t)want->SubjectsLen) &&
	       have->Retention == want->Retention && have->Storage == want->Storage &&
	       have->MaxAge == want->MaxAge && have->Duplicates == want->Duplicates &&
	       have->Replicas == want->Replicas;
}

static shop_status bus_ensure_stream_with(struct bus *bus, const char *name,
					  const char *const *subjects, size_t n_subjects,
					  int replicas, jsRetentionPolicy retention)
{
	if (!bus || !name || !*name || !subjects || n_subjects == 0 || n_subjects > INT32_MAX ||
	    replicas < 1)
		return SHOP_E_INVALID;
	for (size_t i = 0; i < n_subjects; i++)
		if (!subjects[i] || !*subjects[i])
			return SHOP_E_INVALID;
	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;

	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = (const char **)subjects;
	cfg.SubjectsLen = (int)n_subjects;
	cfg.Retention = retention;
	cfg.Storage = js_FileStorage;
	cfg.Discard = js_DiscardOld;
	cfg.MaxAge = BUS_STREAM_MAX_AGE_MS * BUS_NS_PER_MS;
	cfg.Duplicates = BUS_DUPLICATE_WINDOW_MS * BUS_NS_PER_MS;
	cfg.Replicas = replicas;

	shop_status st = SHOP_E_INTERNAL;
	for (int attempt = 0; attempt < BUS_DECLARE_ATTEMPTS; attempt++) {
		jsStreamInfo *si = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetStreamInfo(&si, bus->js, name, NULL, &jerr);
		if (s == NATS_OK) {
			bool same = bus_stream_matches(si->Config, &cfg);
			jsStreamInfo_Destroy(si);
			if (same)
				return SHOP_OK;
			jerr = 0;
			s = js_UpdateStream(NULL, bus->js, &cfg, NULL, &jerr);
			if (s == NATS_OK)
				return SHOP_OK;
			st = bus_status_from_nats(s, jerr);
			if (st != SHOP_E_NOT_FOUND) /* deleted meanwhile: create it */
				return st;
			continue;
		}
		if (s != NATS_NOT_FOUND)
			return bus_status_from_nats(s, jerr);
		jerr = 0;
		s = js_AddStream(NULL, bus->js, &cfg, NULL, &jerr);
		if (s == NATS_OK)
			return SHOP_OK;
		/* Another declarer created it first, perhaps with an older
		 * configuration: read it again and update. */
		if (jerr != JSStreamNameExistErr)
			return bus_status_from_nats(s, jerr);
		st = SHOP_E_CONFLICT;
	}
	return st;
}

shop_status bus_ensure_stream(struct bus *bus, const char *name, const char *const *subjects,
			      size_t n_subjects, int replicas)
{
	return bus_ensure_stream_with(bus, name, subjects, n_subjects, replicas, js_LimitsPolicy);
}

shop_status bus_ensure_work_queue(struct bus *bus, const char *name, const char *const *subjects,
				  size_t n_subjects, int replicas)
{
	return bus_ensure_stream_with(bus, name, subjects, n_subjects, replicas,
				      js_WorkQueuePolicy);
}

static bool bus_consumer_matches(const jsConsumerConfig *have, const jsConsumerConfig *want,
				 const char *const *filters, size_t n_filters)
{
	if (!have)
		return false;
	/* The server may report one filter in either field. */
	const char *one[1] = { have->FilterSubject };
	const char *const *have_filters = (const char *const *)have->FilterSubjects;
	size_t n_have = (size_t)have->FilterSubjectsLen;
	if (n_have == 0 && have->FilterSubject && *have->FilterSubject) {
		have_filters = one;
		n_have = 1;
	}
	return bus_same_set(have_filters, n_have, filters, n_filters) &&
	       have->AckPolicy == want->AckPolicy && have->DeliverPolicy == want->DeliverPolicy &&
	       have->AckWait == want->AckWait && have->MaxDeliver == want->MaxDeliver &&
	       have->MaxAckPending == want->MaxAckPending &&
	       (have->DeliverSubject == NULL || *have->DeliverSubject == '\0');
}

shop_status bus_ensure_consumer(struct bus *bus, const char *stream, const char *durable,
				const char *const *filter_subjects, size_t n_filters)
{
	if (!bus || !stream || !*stream || !durable || !*durable || !filter_subjects ||
	    n_filters == 0 || n_filters > INT32_MAX)
		return SHOP_E_INVALID;
	for (size_t i = 0; i < n_filters; i++)
		if (!filter_subjects[i] || !*filter_subjects[i])
			return SHOP_E_INVALID;
	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;

	jsConsumerConfig cfg;
	jsConsumerConfig_Init(&cfg);
	cfg.Durable = durable;
	cfg.AckPolicy = js_AckExplicit;
	cfg.DeliverPolicy = js_DeliverAll;
	cfg.AckWait = BUS_ACK_WAIT_MS * BUS_NS_PER_MS;
	cfg.MaxDeliver = BUS_MAX_DELIVER;
	cfg.MaxAckPending = BUS_MAX_ACK_PENDING;
	/* One filter goes in FilterSubject, which every server understands;
	 * several need FilterSubjects (nats-server 2.10). */
	if (n_filters == 1) {
		cfg.FilterSubject = filter_subjects[0];
	} else {
		cfg.FilterSubjects = (const char **)filter_subjects;
		cfg.FilterSubjectsLen = (int)n_filters;
	}

	shop_status st = SHOP_E_INTERNAL;
	for (int attempt = 0; attempt < BUS_DECLARE_ATTEMPTS; attempt++) {
		jsConsumerInfo *ci = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetConsumerInfo(&ci, bus->js, stream, durable, NULL, &jerr);
		if (s == NATS_OK) {
			bool same = bus_consumer_matches(ci->Config, &cfg, filter_subjects,
							 n_filters);
			jsConsumerInfo_Destroy(ci);
			if (same)
				return SHOP_OK;
			jerr = 0;
			s = js_UpdateConsumer(NULL, bus->js, stream, &cfg, NULL, &jerr);
			if (s == NATS_OK)
				return SHOP_OK;
			st = bus_status_from_nats(s, jerr);
			if (st != SHOP_E_NOT_FOUND || jerr == JSStreamNotFoundErr)
				return st;
			continue; /* the consumer was deleted meanwhile: create it */
		}
		if (s != NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
			return bus_status_from_nats(s, jerr);
		jerr = 0;
		s = js_AddConsumer(NULL, bus->js, stream, &cfg, NULL, &jerr);
		if (s == NATS_OK)
			return SHOP_OK;
		if (jerr != JSConsumerNameExistErr && jerr != JSConsumerExistingActiveErr &&
		    (int)jerr != BUS_JS_CONSUMER_ALREADY_EXISTS)
			return bus_status_from_nats(s, jerr);
		st = SHOP_E_CONFLICT; /* lost a race with another declarer: read again */
	}
	return st;
}

shop_status bus_consumer_pending(struct bus *bus, const char *stream, const char *durable,
				 uint64_t *ret_pending, uint64_t *ret_ack_pending)
{
	/* A request made while disconnected would sit in the reconnect buffer
	 * for the whole API timeout: /metrics asks once per durable, and took
	 * half a minute to answer while the NATS cluster was stopped. */
	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetConsumerInfo(&ci, bus->js, stream, durable, NULL, &jerr);
	if (s != NATS_OK)
		return bus_status_from_nats(s, jerr);
	if (ret_pending)
		*ret_pending = ci->NumPending;
	if (ret_ack_pending)
		*ret_ack_pending = (uint64_t)ci->NumAckPending;
	jsConsumerInfo_Destroy(ci);
	return SHOP_OK;
}

shop_status bus_stream_state(struct bus *bus, const char *stream, uint64_t *ret_messages,
			     uint64_t *ret_first_seq, uint64_t *ret_last_seq)
{
	if (!bus_is_connected(bus)) /* fail fast, as bus_consumer_pending */
		return SHOP_E_UNAVAILABLE;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, bus->js, stream, NULL, &jerr);
	if (s != NATS_OK)
		return bus_status_from_nats(s, jerr);
	if (ret_messages)
		*ret_messages = si->State.Msgs;
	if (ret_first_seq)
		*ret_first_seq = si->State.FirstSeq;
	if (ret_last_seq)
		*ret_last_seq = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return SHOP_OK;
}

shop_status bus_stream_delete(struct bus *bus, const char *stream, uint64_t seq)
{
	jsErrCode jerr = 0;
	return bus_status_from_nats(js_DeleteMsg(bus->js, stream, seq, NULL, &jerr), jerr);
}

shop_status bus_stream_purge(struct bus *bus, const char *stream, const char *subject)
{
	jsOptions o;
	jsErrCode jerr = 0;
	jsOptions_Init(&o);
	o.Stream.Purge.Subject = subject;
	return bus_status_from_nats(js_PurgeStream(bus->js, stream, &o, &jerr), jerr);
}

shop_status bus_stream_get(struct bus *bus, const char *stream, uint64_t seq,
			   struct bus_msg **ret_msg)
{
	natsMsg *nm = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetMsg(&nm, bus->js, stream, seq, NULL, &jerr);
	if (s != NATS_OK)
		return bus_status_from_nats(s, jerr);
	struct bus_msg *m = xcalloc(1, sizeof(*m));
	m->msg = nm;
	m->stream_seq = seq;
	*ret_msg = m;
	return SHOP_OK;
}
