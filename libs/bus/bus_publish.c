/*
 * bus_publish.c - publishing one message synchronously, or a batch pipelined
 * through nats.c's asynchronous publish (see bus.h).
 *
 * Every message carries Nats-Msg-Id (the event id) and Content-Type; the
 * stream drops a repeat of an id inside its duplicate window and acks it as
 * a duplicate, so retrying after a timeout is always safe.
 *
 * The invariant this file exists for: a message is reported SHOP_OK only
 * when the server acknowledged storing it (or a message with its id). In a
 * batch the ack handler runs on a nats.c thread and finds the message's
 * index by its Nats-Msg-Id, so an ack can only ever mark a message with the
 * very id the server stored. Whatever has no ack when the batch ends is
 * SHOP_E_TIMEOUT: it may or may not be stored, and the caller retries it
 * with the same id. Every asynchronous publish has a MaxWait, so nats.c
 * reports each one (as an ack or as a timeout) and the batch cannot hang;
 * leftovers are taken back from nats.c before the batch returns so they
 * never leak into the next one.
 */
#include "bus_private.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How much longer than a publish's own MaxWait the batch waits for nats.c's
 * timeout of it to be reported (its timer and dispatcher thread may lag). */
#define BUS_BATCH_SLACK_MS 2000
/* How often a batch waiting for room in its window checks the connection. */
#define BUS_BATCH_POLL_MS 100

enum bus_slot { BUS_SLOT_UNSENT, BUS_SLOT_PENDING, BUS_SLOT_DONE };

struct bus_batch {
	const struct bus_out *msgs;
	size_t n;
	unsigned char *state; /* enum bus_slot per message */
	shop_status *status;  /* meaningful when BUS_SLOT_DONE */
	size_t *table;        /* open addressing, msg id -> index + 1, 0 = empty */
	size_t mask;
	size_t in_flight; /* handed to nats.c, not yet reported */
};

shop_status bus_nats_msg_new(const char *subject, const char *data, size_t len, natsMsg **ret_msg)
{
	if (!subject || !*subject || (!data && len))
		return SHOP_E_INVALID;
	if (len > INT32_MAX)
		return SHOP_E_LIMIT;
	natsMsg *m = NULL;
	natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, BUS_HDR_CONTENT_TYPE, BUS_CONTENT_TYPE);
	if (s != NATS_OK) {
		natsMsg_Destroy(m);
		return bus_status_from_nats(s, 0);
	}
	*ret_msg = m;
	return SHOP_OK;
}

shop_status bus_publish_msg_sync(struct bus *bus, natsMsg *m, const char *msg_id,
				 struct bus_ack *ret_ack)
{
	/* Fail fast while disconnected rather than filling the reconnect buffer
	 * with messages the caller will retry anyway. */
	if (!bus_is_connected(bus))
		return SHOP_E_UNAVAILABLE;

	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MsgId = msg_id;
	po.MaxWait = BUS_PUBLISH_TIMEOUT_MS;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_PublishMsg(&pa, bus->js, m, &po, &jerr);
	if (s != NATS_OK)
		return bus_status_from_nats(s, jerr);
	if (ret_ack) {
		ret_ack->duplicate = pa->Duplicate;
		ret_ack->seq = pa->Sequence;
		snprintf(ret_ack->stream, sizeof(ret_ack->stream), "%s",
			 pa->Stream ? pa->Stream : "");
	}
	jsPubAck_Destroy(pa);
	return SHOP_OK;
}

static bool bus_out_valid(const struct bus_out *o)
{
	return o && o->subject && *o->subject && o->msg_id && *o->msg_id && (o->data || !o->len);
}

shop_status bus_publish(struct bus *bus, const struct bus_out *msg, struct bus_ack *ret_ack)
{
	if (!bus || !bus_out_valid(msg))
		return SHOP_E_INVALID;
	natsMsg *m = NULL;
	shop_status st = bus_nats_msg_new(msg->subject, msg->data, msg->len, &m);
	if (st == SHOP_OK)
		st = bus_publish_msg_sync(bus, m, msg->msg_id, ret_ack);
	natsMsg_Destroy(m);
	return st;
}

static size_t bus_hash(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(1099511628211);
	}
	return (size_t)h;
}

static void bus_batch_index(struct bus_batch *b, size_t i)
{
	size_t h = bus_hash(b->msgs[i].msg_id) & b->mask;
	while (b->table[h])
		h = (h + 1) & b->mask;
	b->table[h] = i + 1;
}

/* The first still-pending message with this id (ids repeat only if the
 * caller repeated them; any of them is then as stored as the others). */
static bool bus_batch_find(const struct bus_batch *b, const char *id, size_t *ret_i)
{
	size_t h = bus_hash(id) & b->mask;
	for (; b->table[h]; h = (h + 1) & b->mask) {
		size_t i = b->table[h] - 1;
		if (b->state[i] == BUS_SLOT_PENDING && strcmp(b->msgs[i].msg_id, id) == 0) {
			*ret_i = i;
			return true;
		}
	}
	return false;
}

/* nats.c calls this once per asynchronous publish, on its own thread, with
 * either the server's ack or the error (a timeout after MaxWait included).
 * It owns msg and must destroy it. */
static void bus_batch_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	struct bus *bus = closure;
	shop_status outcome = SHOP_E_INTERNAL;
	if (pa)
		outcome = SHOP_OK;
	else if (pae)
		outcome = bus_status_from_nats(pae->Err, pae->ErrCode);
	if (outcome == SHOP_OK && !pa)
		outcome = SHOP_E_INTERNAL; /* an error report that claims success */
	const char *id = NULL;
	if (natsMsgHeader_Get(msg, BUS_HDR_MSG_ID, &id) != NATS_OK)
		id = NULL;

	pthread_mutex_lock(&bus->ack_mu);
	struct bus_batch *b = bus->current;
	size_t i;
	if (b && id && bus_batch_find(b, id, &i)) {
		b->state[i] = BUS_SLOT_DONE;
		b->status[i] = outcome;
		b->in_flight--;
		pthread_cond_broadcast(&bus->ack_cond);
	}
	pthread_mutex_unlock(&bus->ack_mu);
	natsMsg_Destroy(msg);
}

static shop_status bus_batch_context(struct bus *bus)
{
	if (bus->batch_js)
		return SHOP_OK;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = BUS_API_TIMEOUT_MS;
	jo.PublishAsync.AckHandler = bus_batch_on_ack;
	jo.PublishAsync.AckHandlerClosure = bus;
	/* MaxPending stays 0 (unlimited): the window below bounds it. */
	return bus_status_from_nats(natsConnection_JetStream(&bus->batch_js, bus->nc, &jo), 0);
}

/* Waits until fewer than BUS_PUBLISH_WINDOW are in flight. Every message in
 * flight is reported by its MaxWait, so this ends; it ends sooner when the
 * connection drops, since then only timeouts can free the window. */
static shop_status bus_batch_wait_window(struct bus *bus, struct bus_batch *b)
{
	int64_t give_up = clock_mono_ms() + BUS_PUBLISH_TIMEOUT_MS + BUS_BATCH_SLACK_MS;
	shop_status st = SHOP_OK;
	pthread_mutex_lock(&bus->ack_mu);
	while (b->in_flight >= BUS_PUBLISH_WINDOW) {
		struct timespec until = clock_mono_deadline(BUS_BATCH_POLL_MS);
		pthread_cond_timedwait(&bus->ack_cond, &bus->ack_mu, &until);
		if (b->in_flight < BUS_PUBLISH_WINDOW)
			break;
		/* Not under ack_mu: nats.c takes its own locks here. */
		pthread_mutex_unlock(&bus->ack_mu);
		if (!bus_is_connected(bus))
			st = SHOP_E_UNAVAILABLE;
		else if (clock_mono_ms() >= give_up)
			st = SHOP_E_TIMEOUT;
		pthread_mutex_lock(&bus->ack_mu);
		if (st != SHOP_OK)
			break;
	}
	pthread_mutex_unlock(&bus->ack_mu);
	return st;
}

/* Hands message i to nats.c; false when the rest of the batch should not be tried. */
static bool bus_batch_send(struct bus *bus, struct bus_batch *b, size_t i, shop_status *ret_stop)
{
	shop_status st = bus_batch_wait_window(bus, b);
	if (st == SHOP_OK && !bus_is_connected(bus))
		st = SHOP_E_UNAVAILABLE;
	if (st != SHOP_OK) {
		*ret_stop = st;
		return false;
	}
	/* Counted before the call: the ack may arrive before it returns. Only
	 * this thread adds to in_flight, so the window is still open. */
	pthread_mutex_lock(&bus->ack_mu);
	b->state[i] = BUS_SLOT_PENDING;
	b->in_flight++;
	pthread_mutex_unlock(&bus->ack_mu);

	const struct bus_out *o = &b->msgs[i];
	natsMsg *m = NULL;
	st = bus_nats_msg_new(o->subject, o->data, o->len, &m);
	if (st == SHOP_OK) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MsgId = o->msg_id;
		po.MaxWait = BUS_PUBLISH_TIMEOUT_MS;
		/* On success nats.c owns m and clears the pointer. */
		st = bus_status_from_nats(js_PublishMsgAsync(bus->batch_js, &m, &po), 0);
		natsMsg_Destroy(m);
	}
	if (st == SHOP_OK)
		return true;

	/* Not handed over (nats.c gave the message back): no ack will come. */
	pthread_mutex_lock(&bus->ack_mu);
	if (b->state[i] == BUS_SLOT_PENDING) {
		b->state[i] = BUS_SLOT_DONE;
		b->status[i] = st;
		b->in_flight--;
	}
	pthread_mutex_unlock(&bus->ack_mu);
	if (st == SHOP_E_UNAVAILABLE || st == SHOP_E_TIMEOUT) {
		*ret_stop = st;
		return false;
	}
	return true; /* this message is bad; the others may be fine */
}

/* Waits for every handed-over message to be reported, then takes back from
 * nats.c whatever was not, so that nothing of this batch is left behind. */
static void bus_batch_drain(struct bus *bus)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = BUS_PUBLISH_TIMEOUT_MS + BUS_BATCH_SLACK_MS;
	if (js_PublishAsyncComplete(bus->batch_js, &po) == NATS_OK)
		return;
	natsMsgList pending = { 0 };
	if (js_PublishAsyncGetPendingList(&pending, bus->batch_js) == NATS_OK)
		natsMsgList_Destroy(&pending);
	/* An ack handler that was already running still counts as pending
	 * until it returns. */
	po.MaxWait = BUS_BATCH_SLACK_MS;
	js_PublishAsyncComplete(bus->batch_js, &po);
}

shop_status bus_publish_batch(struct bus *bus, const struct bus_out *msgs, size_t n,
			      shop_status *ret_status)
{
	if (!bus || (n && (!msgs || !ret_status)))
		return SHOP_E_INVALID;
	if (n == 0)
		return SHOP_OK;

	/* On the heap: the ack handler reaches it through bus->current. */
	struct bus_batch *b = xcalloc(1, sizeof(*b));
	b->msgs = msgs;
	b->n = n;
	b->state = xcalloc(n, sizeof(*b->state));
	b->status = xcalloc(n, sizeof(*b->status));
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	b->table = xcalloc(cap, sizeof(*b->table));
	b->mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		if (bus_out_valid(&msgs[i])) {
			bus_batch_index(b, i);
		} else {
			b->state[i] = BUS_SLOT_DONE;
			b->status[i] = SHOP_E_INVALID;
		}
	}

	shop_status stop = SHOP_E_UNAVAILABLE; /* for messages never tried */
	pthread_mutex_lock(&bus->batch_mu);
	shop_status st = bus_batch_context(bus);
	if (st != SHOP_OK) {
		stop = st;
		goto unlock;
	}
	pthread_mutex_lock(&bus->ack_mu);
	bus->current = b;
	pthread_mutex_unlock(&bus->ack_mu);

	for (size_t i = 0; i < n; i++) {
		if (b->state[i] == BUS_SLOT_UNSENT && !bus_batch_send(bus, b, i, &stop))
			break;
	}
	bus_batch_drain(bus);

	/* From here on a late report finds no batch and only frees its message. */
	pthread_mutex_lock(&bus->ack_mu);
	bus->current = NULL;
	pthread_mutex_unlock(&bus->ack_mu);
unlock:
	pthread_mutex_unlock(&bus->batch_mu);

	st = SHOP_OK;
	for (size_t i = 0; i < n; i++) {
		shop_status si;
		switch (b->state[i]) {
		case BUS_SLOT_DONE:
			si = b->status[i];
			break;
		case BUS_SLOT_PENDING:
			si = SHOP_E_TIMEOUT;
			break; /* maybe stored */
		default:
			si = stop;
			break;
		}
		ret_status[i] = si;
		if (st == SHOP_OK)
			st = si;
	}
	free(b->state);
	free(b->status);
	free(b->table);
	free(b);
	return st;
}
