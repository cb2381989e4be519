/*
 * bus_consume.c - binding to durable pull consumers, fetching, settling and
 * dead-lettering (see bus.h).
 *
 * A bus_consumer binds to a durable that bus_ensure_consumer declared; it
 * never creates one, and closing it destroys only the local subscription
 * (natsSubscription_Unsubscribe would delete a consumer the subscribe had
 * created, and nothing here relies on which one did). Fetch waits at most
 * the caller's timeout; a fetch waiting when the server dies returns no
 * messages or SHOP_E_UNAVAILABLE (missed heartbeats), a fetch while
 * disconnected returns SHOP_E_UNAVAILABLE at once rather than queueing a
 * pull request for a server that may be gone, and the first fetch after the
 * reconnect sends a new pull request.
 *
 * A dead-lettered message is first stored, synchronously, as a copy on
 * deadletter.<stream>.<durable> under the id "<stream>:<durable>:<seq>", and
 * only then terminated: if the copy cannot be stored the original stays
 * unacknowledged and comes back, and repeating the copy is deduplicated.
 */
#include "bus_private.h"

#include "core/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shop_status bus_consumer_open(struct bus *bus, const char *stream, const char *durable,
			      struct bus_consumer **ret_consumer)
{
	if (!bus || !stream || !*stream || !durable || !*durable || !ret_consumer)
		return SHOP_E_INVALID;
	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;

	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = durable; /* bind only: fails if the durable does not exist */
	so.ManualAck = true;
	natsSubscription *sub = NULL;
	jsErrCode jerr = 0;
	/* No subject: a bound consumer's filters are its own. */
	natsStatus s = js_PullSubscribe(&sub, bus->js, NULL, NULL, NULL, &so, &jerr);
	if (s != NATS_OK)
		return bus_status_from_nats(s, jerr);

	struct bus_consumer *c = xcalloc(1, sizeof(*c));
	c->bus = bus;
	c->sub = sub;
	c->stream = xstrdup(stream);
	c->durable = xstrdup(durable);
	*ret_consumer = c;
	return SHOP_OK;
}

void bus_consumer_close(struct bus_consumer *c)
{
	if (!c)
		return;
	natsSubscription_Destroy(c->sub); /* never Unsubscribe: see the top of this file */
	free(c->stream);
	free(c->durable);
	free(c);
}

const char *bus_consumer_stream(const struct bus_consumer *c)
{
	return c ? c->stream : NULL;
}

const char *bus_consumer_durable(const struct bus_consumer *c)
{
	return c ? c->durable : NULL;
}

static struct bus_msg *bus_msg_wrap(natsMsg *msg)
{
	struct bus_msg *m = xcalloc(1, sizeof(*m));
	m->msg = msg;
	/* The metadata is parsed from the reply subject; a JetStream delivery
	 * always has it. Without it the message still gets settled normally. */
	m->deliveries = 1;
	jsMsgMetaData *meta = NULL;
	if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
		m->deliveries = meta->NumDelivered;
		m->stream_seq = meta->Sequence.Stream;
	}
	jsMsgMetaData_Destroy(meta);
	return m;
}

shop_status bus_fetch(struct bus_consumer *c, size_t max, int64_t timeout_ms,
		      struct bus_msg ***ret_msgs, size_t *ret_n)
{
	if (!c || !ret_msgs || !ret_n || max == 0 || timeout_ms <= 0)
		return SHOP_E_INVALID;
	if (max > BUS_FETCH_MAX)
		return SHOP_E_LIMIT;
	/* A pull request sent now would wait in the reconnect buffer and reach
	 * the server after this fetch gave up on it. */
	if (!bus_is_connected(c->bus))
		return SHOP_E_UNAVAILABLE;

	/* First take what is already waiting, up to max, without waiting. Only
	 * when nothing is, wait for one message: nats.c keeps a waiting pull
	 * request open until its whole batch is filled or it expires, so asking
	 * for max while idle would hold the first message back for up to
	 * timeout_ms. Under load the first request always has work. */
	natsMsgList list = { 0 };
	jsFetchRequest req;
	jsFetchRequest_Init(&req);
	req.Batch = (int)max;
	req.NoWait = true;
	natsStatus s = natsSubscription_FetchRequest(&list, c->sub, &req);
	/* A pull request that died with its server leaves its missed heartbeat
	 * to be reported by the next call on the subscription, this one: it is
	 * about the old request, not this one, so ask again. */
	if (s == NATS_MISSED_HEARTBEAT) {
		natsMsgList_Destroy(&list);
		s = natsSubscription_FetchRequest(&list, c->sub, &req);
	}
	if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND || (s == NATS_OK && list.Count == 0)) {
		natsMsgList_Destroy(&list);
		jsFetchRequest_Init(&req);
		req.Batch = 1;
		req.Expires = timeout_ms * BUS_NS_PER_MS;
		if (timeout_ms >= BUS_FETCH_HEARTBEAT_MIN_WAIT_MS) {
			int64_t hb = timeout_ms / 4;
			req.Heartbeat = (hb < BUS_FETCH_HEARTBEAT_MAX_MS
						 ? hb
						 : BUS_FETCH_HEARTBEAT_MAX_MS) *
					BUS_NS_PER_MS;
		}
		s = natsSubscription_FetchRequest(&list, c->sub, &req);
	}
	/* nats.c returns NATS_OK whenever it collected messages; an expired
	 * pull request with none is the normal empty answer. */
	if (s != NATS_OK) {
		natsMsgList_Destroy(&list);
		if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) {
			*ret_msgs = NULL;
			*ret_n = 0;
			return SHOP_OK;
		}
		return bus_status_from_nats(s, 0);
	}

	size_t n = list.Count > 0 ? (size_t)list.Count : 0;
	struct bus_msg **msgs = n ? xcalloc(n, sizeof(*msgs)) : NULL;
	for (size_t i = 0; i < n; i++) {
		msgs[i] = bus_msg_wrap(list.Msgs[i]);
		list.Msgs[i] = NULL; /* now owned by msgs[i] */
	}
	natsMsgList_Destroy(&list);
	*ret_msgs = msgs;
	*ret_n = n;
	return SHOP_OK;
}

void bus_msg_free(struct bus_msg *m)
{
	if (m) {
		natsMsg_Destroy(m->msg);
		free(m);
	}
}

void bus_msgs_free(struct bus_msg **msgs, size_t n)
{
	if (!msgs)
		return;
	for (size_t i = 0; i < n; i++)
		bus_msg_free(msgs[i]);
	free(msgs);
}

const char *bus_msg_subject(const struct bus_msg *m)
{
	return m ? natsMsg_GetSubject(m->msg) : NULL;
}

const char *bus_msg_data(const struct bus_msg *m, size_t *ret_len)
{
	if (!m)
		return NULL;
	int len = natsMsg_GetDataLength(m->msg);
	if (ret_len)
		*ret_len = len > 0 ? (size_t)len : 0;
	return natsMsg_GetData(m->msg);
}

uint64_t bus_msg_deliveries(const struct bus_msg *m)
{
	return m ? m->deliveries : 0;
}

uint64_t bus_msg_stream_seq(const struct bus_msg *m)
{
	return m ? m->stream_seq : 0;
}

const char *bus_msg_header(const struct bus_msg *m, const char *name)
{
	const char *v = NULL;
	if (!m || !name || natsMsgHeader_Get(m->msg, name, &v) != NATS_OK)
		return NULL;
	return v;
}

/* Ack, nak and term are fire and forget: a lost one means a redelivery,
 * which consumers absorb anyway. */
shop_status bus_msg_ack(struct bus_msg *m)
{
	if (!m)
		return SHOP_E_INVALID;
	return bus_status_from_nats(natsMsg_Ack(m->msg, NULL), 0);
}

shop_status bus_msg_nak(struct bus_msg *m, int64_t delay_ms)
{
	if (!m)
		return SHOP_E_INVALID;
	natsStatus s = delay_ms > 0 ? natsMsg_NakWithDelay(m->msg, delay_ms, NULL)
				    : natsMsg_Nak(m->msg, NULL);
	return bus_status_from_nats(s, 0);
}

shop_status bus_msg_term(struct bus_msg *m)
{
	if (!m)
		return SHOP_E_INVALID;
	return bus_status_from_nats(natsMsg_Term(m->msg, NULL), 0);
}

/* A header value is one line: the reason is cut to BUS_DLQ_REASON_MAX and
 * control characters become spaces. */
static char *bus_header_value(const char *s)
{
	if (!s)
		s = "";
	size_t len = strnlen(s, BUS_DLQ_REASON_MAX);
	char *v = xstrndup(s, len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			v[i] = ' ';
	return v;
}

void bus_consumer_set_confidential(struct bus_consumer *c, bool confidential)
{
	if (c)
		c->confidential = confidential;
}

shop_status bus_msg_dead_letter(struct bus *bus, struct bus_consumer *c, struct bus_msg *m,
				const char *reason)
{
	if (!bus || !c || !m)
		return SHOP_E_INVALID;
	/* Without its sequence the copy's id would collide with other copies. */
	if (m->stream_seq == 0)
		return SHOP_E_INTERNAL;

	shop_status st;
	natsMsg *copy = NULL;
	char *subject = xasprintf("%s.%s.%s", BUS_DEADLETTER_PREFIX, c->stream, c->durable);
	char *msg_id = xasprintf("%s:%s:%" PRIu64, c->stream, c->durable, m->stream_seq);
	char *why = bus_header_value(reason);
	char seq[24], deliveries[24];
	snprintf(seq, sizeof(seq), "%" PRIu64, m->stream_seq);
	snprintf(deliveries, sizeof(deliveries), "%" PRIu64, m->deliveries);

	size_t len = 0;
	const char *data = c->confidential ? NULL : bus_msg_data(m, &len);
	st = bus_nats_msg_new(subject, data, len, &copy);
	if (st != SHOP_OK)
		goto out;
	const char *orig_subject = natsMsg_GetSubject(m->msg);
	const char *content_type = bus_msg_header(m, BUS_HDR_CONTENT_TYPE);
	natsStatus s = NATS_OK;
	if (c->confidential) {
		s = natsMsgHeader_Delete(copy, BUS_HDR_CONTENT_TYPE); /* there is no content */
		if (s == NATS_OK)
			s = natsMsgHeader_Set(copy, BUS_HDR_DLQ_BODY, BUS_DLQ_BODY_WITHHELD);
	} else if (content_type)
		s = natsMsgHeader_Set(copy, BUS_HDR_CONTENT_TYPE, content_type);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, BUS_HDR_DLQ_REASON, why);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, BUS_HDR_DLQ_STREAM, c->stream);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, BUS_HDR_DLQ_CONSUMER, c->durable);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, BUS_HDR_DLQ_SEQ, seq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, BUS_HDR_DLQ_SUBJECT, orig_subject ? orig_subject : "");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, BUS_HDR_DLQ_DELIVERIES, deliveries);
	if (s != NATS_OK) {
		st = bus_status_from_nats(s, 0);
		goto out;
	}

	/* Stored first; only then give up on the original. */
	st = bus_publish_msg_sync(bus, copy, msg_id, NULL);
	if (st != SHOP_OK)
		goto out;
	st = bus_msg_term(m);
out:
	natsMsg_Destroy(copy);
	free(subject);
	free(msg_id);
	free(why);
	return st;
}
