/*
 * bus_private.h - what bus.c, bus_publish.c and bus_consume.c share.
 *
 * Not for callers outside libs/bus: it exposes nats.c types. The one
 * translation from natsStatus to shop_status lives in bus.c and every other
 * file goes through it.
 */
#ifndef SHOP_BUS_BUS_PRIVATE_H
#define SHOP_BUS_BUS_PRIVATE_H

#include "bus.h"

#include <nats/nats.h>
#include <pthread.h>

/* Milliseconds to the nanoseconds JetStream configuration and pull requests use. */
#define BUS_NS_PER_MS INT64_C(1000000)

struct bus_batch;

struct bus {
	natsConnection *nc;
	jsCtx *js; /* management, synchronous publishes, consumers */
	/* Asynchronous publishing has its own context: its ack handler and
	 * pending count belong to one batch at a time (batch_mu). */
	pthread_mutex_t batch_mu;
	jsCtx *batch_js; /* created by the first batch */
	/* ack_mu guards current and the batch it points to; the ack handler,
	 * on a nats.c thread, touches a batch only through current. */
	pthread_mutex_t ack_mu;
	pthread_cond_t ack_cond; /* a batch message was settled; CLOCK_MONOTONIC */
	struct bus_batch *current;
	char *user;         /* SHOP_NATS_USER, or NULL: anonymous */
	char *inbox_prefix; /* _INBOX.<user>, or NULL: nats.c's own _INBOX */
};

struct bus_consumer {
	struct bus *bus;
	natsSubscription *sub;
	char *stream;
	char *durable;
	bool confidential; /* dead letters keep no body */
};

struct bus_msg {
	natsMsg *msg;
	uint64_t deliveries;
	uint64_t stream_seq;
};

/* A fresh inbox subject for this connection's replies, in buf (at least
 * BUS_INBOX_MAX bytes): under the user's own prefix when it has one. */
shop_status bus_inbox_new(const struct bus *bus, char *buf, size_t cap);

/* The one place natsStatus (and a JetStream error code, 0 if none) becomes a shop_status. */
shop_status bus_status_from_nats(natsStatus s, jsErrCode jerr);

/* A message to subject with data and the Content-Type header. */
shop_status bus_nats_msg_new(const char *subject, const char *data, size_t len, natsMsg **ret_msg);

/* Publishes m with Nats-Msg-Id msg_id and waits for the store ack, which
 * *ret_ack (may be NULL) receives. */
shop_status bus_publish_msg_sync(struct bus *bus, natsMsg *m, const char *msg_id,
				 struct bus_ack *ret_ack);

#endif
