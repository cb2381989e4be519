/*
 * lt_watch.h - what the generator sees of the back end besides HTTP: the
 * order events on the bus, and the consumers' lag from NATS monitoring.
 *
 * Events: a plain (core NATS) subscription to the ORDERS stream's event
 * subjects. JetStream stores what the orders service publishes and the same
 * publish reaches every core subscriber, so the generator sees each event
 * the moment it is published, creates no consumer, and leaves nothing behind.
 * libnats delivers on its own thread; the handler stamps the arrival time
 * and queues (kind, order id) under a mutex, and the generator's loop takes
 * the whole queue at once. A republished event (a relay retry) is seen
 * twice: the caller keeps the first.
 */
#ifndef SHOP_LOADTEST_WATCH_H
#define SHOP_LOADTEST_WATCH_H

#include "core/status.h"
#include "lt_orders.h"
#include "lt_report.h"

#include <stddef.h>
#include <stdint.h>

/* The order events that end a stage of an order (contracts/index.json). */
#define LT_SUBJECT_ORDER_EVENTS "orders.event.>"
#define LT_SUBJECT_PAID "orders.event.order_paid.v1"
#define LT_SUBJECT_SHIPPED "orders.event.order_shipped.v1"
#define LT_SUBJECT_CANCELLED "orders.event.order_cancelled.v1"
/* What the subscription may hold before libnats drops events (counted). */
#define LT_WATCH_PENDING_MSGS 1000000
#define LT_WATCH_PENDING_BYTES (1024LL * 1024 * 1024)

enum lt_event_kind { LT_EV_PAID, LT_EV_SHIPPED, LT_EV_CANCELLED };

struct lt_event {
	enum lt_event_kind kind;
	char order_id[LT_ORDER_ID_SIZE];
	int64_t seen_ns; /* monotonic, when libnats handed it over */
};

struct lt_watch;

shop_status lt_watch_start(const char *url, struct lt_watch **ret_watch);
void lt_watch_stop(struct lt_watch *w); /* accepts NULL */
/* Moves every queued event into *ret_events (freed by the caller). */
size_t lt_watch_take(struct lt_watch *w, struct lt_event **ret_events);
/* Events libnats dropped because the loop fell behind. */
int64_t lt_watch_dropped(struct lt_watch *w);

/* Parses one CloudEvents message on subject: the event kind and its order
 * id (the envelope's `subject`). SHOP_E_NOT_FOUND for events that end no
 * stage, SHOP_E_INVALID for a body that is not such an envelope. */
shop_status lt_watch_parse(const char *subject, const char *data, size_t len,
			   enum lt_event_kind *ret_kind, char ret_order_id[LT_ORDER_ID_SIZE]);

/* Parses one node's /jsz?consumers=true: updates lag (adding durables as
 * seen, up to LT_DURABLES_MAX) and returns the GATEWAY stream's last
 * sequence (-1 when absent). SELF is the answering node's server name: on
 * a cluster every node lists every replicated consumer, but only its
 * leader knows how much is pending (a follower says 0), so a consumer is
 * taken only from the node that leads it. A consumer without cluster
 * information (a single server), or SELF NULL, is taken as it is. */
shop_status lt_watch_parse_jsz(const char *body, size_t len, const char *self, struct lt_lag *lag,
			       size_t *n_lag, int64_t *ret_gateway_seq);
/* The total lag over lag[0..n). */
int64_t lt_watch_lag_total(const struct lt_lag *lag, size_t n);

#endif
