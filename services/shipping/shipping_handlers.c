/*
 * shipping_handlers.c - turns OrderPlaced, OrderPaid,
 * OrderCancellationRequested and OrderCancelled into shipment decisions, and
 * dispatches due shipments.
 *
 * All four come from the ORDERS stream on one consumer, so they arrive in
 * the order orders emitted them (a nak'd message can still be overtaken by
 * its successors, which the guards below absorb). Shipping owns the pivot
 * of the saga, the dispatch: a paid order's cancellation is decided here,
 * atomically against the dispatcher, by the same guarded SCHEDULED ->
 * CANCELLED / SCHEDULED -> DISPATCHED moves, and orders follows the answer.
 *
 * Each handler reads the order's shipment row, lets shipping_domain.c
 * decide, and applies the decision with a guarded write (shipping_store.c).
 * When the guard finds the row changed by a concurrent writer (another
 * consumer thread, a replica, the dispatcher) the handler reads and decides
 * again, so every outcome is one of the state machine's legal transitions
 * and every event is emitted exactly once, in the transaction of its
 * transition. Nothing here publishes: events go through svc_emit (outbox).
 *
 * The dispatcher is the delayed half of the service. The due time lives in
 * the shipments table, not in a timer, so a restart neither loses a dispatch
 * (the row is still SCHEDULED and still due) nor repeats one (the guarded
 * UPDATE ... WHERE status = 'SCHEDULED' and the ShipmentDispatched event
 * commit together).
 */
#include "shipping_handlers.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/text.h"
#include "core/xalloc.h"
#include "shipping_domain.h"
#include "shipping_store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static struct log_ids shipping_log_ids(const struct svc_tx *tx, const char *order_id)
{
	struct log_ids ids = {
		.order_id = order_id,
		.event_id = tx->cause ? tx->cause->id : NULL,
		.correlation_id = tx->cause ? tx->cause->correlationid : tx->correlation_id,
	};
	return ids;
}

static int64_t shipping_delay_ms(const struct svc_tx *tx)
{
	const struct shipping_ctx *ctx = tx->svc ? svc_ctx(tx->svc) : NULL;
	return ctx ? ctx->dispatch_delay_ms : SHIPPING_DISPATCH_DELAY_DEFAULT_MS;
}

/* The order's shipment state; SHIPPING_STATE_NONE when it has no row. */
static shop_status shipping_state_load(struct db *db, const char *order_id,
				       struct shipping_shipment *ret_shipment)
{
	struct shipping_shipment s;
	shop_status st = shipping_store_shipment_get(db, order_id, &s);
	if (st == SHOP_E_NOT_FOUND) {
		memset(&s, 0, sizeof(s));
		s.state = SHIPPING_STATE_NONE;
		st = SHOP_OK;
	}
	if (st == SHOP_OK)
		*ret_shipment = s;
	return st;
}

/* A new shipment (or tombstone) row for the order, carrying the ids of the
 * message being handled so later events stay in the same trace. */
static shop_status shipping_shipment_new(const struct svc_tx *tx, const char *order_id,
					 enum shipping_state state,
					 struct shipping_shipment *ret_shipment)
{
	struct shipping_shipment s;
	memset(&s, 0, sizeof(s));
	s.state = state;
	const char *correlation_id = tx->cause ? tx->cause->correlationid : tx->correlation_id;
	const char *traceparent = tx->cause ? tx->cause->traceparent : tx->traceparent;
	if (!TEXT_COPY(s.order_id, order_id))
		return SHOP_E_INVALID;
	if (!TEXT_COPY(s.correlation_id, correlation_id) || !TEXT_COPY(s.traceparent, traceparent))
		return SHOP_E_INTERNAL;
	if (state == SHIPPING_STATE_SCHEDULED) {
		char id[IDS_UUID_SIZE];
		ids_uuid7(id);
		if (!TEXT_COPY(s.shipment_id, id))
			return SHOP_E_INTERNAL;
		s.dispatch_at_ms = shipping_dispatch_at(tx->now_ms, shipping_delay_ms(tx));
	}
	*ret_shipment = s;
	return SHOP_OK;
}

/* ------------------------------------------------------------------ */
/* Message -> event field mapping (the only code that knows the contracts). */

static shop_status shipping_emit_scheduled(struct svc_tx *tx, const struct shipping_shipment *s)
{
	struct ct_shipment_scheduled ev;
	memset(&ev, 0, sizeof(ev));
	char due[CLOCK_RFC3339_SIZE];
	clock_rfc3339(s->dispatch_at_ms, due);
	if (!TEXT_COPY(ev.order_id, s->order_id) || !TEXT_COPY(ev.shipment_id, s->shipment_id) ||
	    !TEXT_COPY(ev.dispatch_at, due))
		return SHOP_E_INTERNAL;
	return svc_emit(tx, CT_MSG_SHIPMENT_SCHEDULED, s->order_id, &ev);
}

static shop_status shipping_emit_dispatched(struct svc_tx *tx, const struct shipping_shipment *s)
{
	struct ct_shipment_dispatched ev;
	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.order_id, s->order_id) || !TEXT_COPY(ev.shipment_id, s->shipment_id))
		return SHOP_E_INTERNAL;
	return svc_emit(tx, CT_MSG_SHIPMENT_DISPATCHED, s->order_id, &ev);
}

static shop_status shipping_emit_cancelled(struct svc_tx *tx, const struct shipping_shipment *s)
{
	struct ct_shipment_cancelled ev;
	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.order_id, s->order_id) || !TEXT_COPY(ev.shipment_id, s->shipment_id))
		return SHOP_E_INTERNAL;
	return svc_emit(tx, CT_MSG_SHIPMENT_CANCELLED, s->order_id, &ev);
}

/* ------------------------------------------------------------------ */

shop_status shipping_handle_order_placed(struct svc_tx *tx, const void *data)
{
	const struct ct_order_placed_v2 *msg = data;
	struct log_ids ids = shipping_log_ids(tx, msg->order_id);
	shop_status st = shipping_store_address_put(tx->db, msg->order_id, &msg->shipping_address,
						    tx->now_ms);
	if (st != SHOP_OK) {
		log_warn(&ids, "storing the delivery address failed: %s", shop_status_name(st));
		return st;
	}
	log_debug(&ids, "delivery address stored");
	return SHOP_OK;
}

shop_status shipping_handle_order_paid(struct svc_tx *tx, const void *data)
{
	const struct ct_order_paid *msg = data;
	const char *order_id = msg->order_id;
	struct log_ids ids = shipping_log_ids(tx, order_id);
	shop_status st = SHOP_E_INTERNAL;

	for (int attempt = 0; attempt < SHIPPING_DECIDE_ATTEMPTS; attempt++) {
		struct shipping_shipment cur;
		st = shipping_state_load(tx->db, order_id, &cur);
		if (st != SHOP_OK)
			goto out;
		bool address_known = false;
		if (cur.state == SHIPPING_STATE_NONE) {
			st = shipping_store_address_known(tx->db, order_id, &address_known);
			if (st != SHOP_OK)
				goto out;
		}
		switch (shipping_decide_schedule(cur.state, address_known)) {
		case SHIPPING_SCHEDULE_WAIT_ADDRESS:
			/* OrderPaid follows OrderPlaced on the orders stream,
			 * but an OrderPlaced that failed here (nak'd) is
			 * redelivered after it: the address may simply not be
			 * here yet. Redelivery brings it back. */
			log_debug(&ids, "order paid before the address arrived; retrying later");
			st = SHOP_E_NOT_READY;
			goto out;
		case SHIPPING_SCHEDULE_SKIP_CANCELLED:
			log_debug(&ids, "order paid after its cancellation; nothing to ship");
			st = SHOP_OK;
			goto out;
		case SHIPPING_SCHEDULE_SKIP_EXISTS:
			log_debug(&ids, "shipment already %s; nothing to do",
				  shipping_state_name(cur.state));
			st = SHOP_OK;
			goto out;
		case SHIPPING_SCHEDULE_CREATE:
			break;
		}

		struct shipping_shipment s;
		st = shipping_shipment_new(tx, order_id, SHIPPING_STATE_SCHEDULED, &s);
		if (st != SHOP_OK)
			goto out;
		st = shipping_store_shipment_insert(tx->db, &s, tx->now_ms);
		if (st == SHOP_E_CONFLICT)
			continue; /* a concurrent writer got there first: decide again */
		if (st != SHOP_OK)
			goto out;
		st = shipping_emit_scheduled(tx, &s);
		if (st != SHOP_OK)
			goto out;
		log_debug(&ids, "shipment %s scheduled, due in %lld ms", s.shipment_id,
			  (long long)(s.dispatch_at_ms - tx->now_ms));
		goto out;
	}
	log_error(&ids, "shipment state kept changing while scheduling");
	st = SHOP_E_INTERNAL;
out:
	return st;
}

/* Why shipping is cancelling: the order's cancellation was requested (a
 * question orders waits on) or the order is already cancelled. */
enum shipping_cancel_cause {
	SHIPPING_CANCEL_BY_REQUEST,
	SHIPPING_CANCEL_BY_ORDER,
};

/* ShipmentCancelled for an order that had no shipment yet, so that orders
 * gets its answer; the id names this cancellation only (the tombstone has
 * none to give). */
static shop_status shipping_emit_cancelled_unscheduled(struct svc_tx *tx,
						       const struct shipping_shipment *tomb)
{
	struct shipping_shipment s = *tomb;
	char id[IDS_UUID_SIZE];
	ids_uuid7(id);
	if (!TEXT_COPY(s.shipment_id, id))
		return SHOP_E_INTERNAL;
	return shipping_emit_cancelled(tx, &s);
}

static shop_status shipping_cancel(struct svc_tx *tx, const char *order_id,
				   enum shipping_cancel_cause cause)
{
	struct log_ids ids = shipping_log_ids(tx, order_id);
	const bool requested = cause == SHIPPING_CANCEL_BY_REQUEST;
	shop_status st = SHOP_E_INTERNAL;

	for (int attempt = 0; attempt < SHIPPING_DECIDE_ATTEMPTS; attempt++) {
		struct shipping_shipment cur;
		st = shipping_state_load(tx->db, order_id, &cur);
		if (st != SHOP_OK)
			goto out;
		switch (shipping_decide_cancel(cur.state)) {
		case SHIPPING_CANCEL_REMEMBER: {
			/* No shipment yet: a tombstone makes a later (or
			 * concurrent) OrderPaid find the row and schedule
			 * nothing. After a request (its OrderPaid was overtaken
			 * by a redelivery) orders still waits for an answer. */
			struct shipping_shipment tomb;
			st = shipping_shipment_new(tx, order_id, SHIPPING_STATE_VOIDED, &tomb);
			if (st != SHOP_OK)
				goto out;
			st = shipping_store_shipment_insert(tx->db, &tomb, tx->now_ms);
			if (st == SHOP_E_CONFLICT)
				continue;
			if (st != SHOP_OK)
				goto out;
			if (requested)
				st = shipping_emit_cancelled_unscheduled(tx, &tomb);
			if (st == SHOP_OK)
				log_debug(&ids, "order %s before shipping; remembered",
					  requested ? "cancellation requested" : "cancelled");
			goto out;
		}
		case SHIPPING_CANCEL_SHIPMENT:
			/* The same guarded move the dispatcher makes from
			 * SCHEDULED: exactly one of the two wins. */
			st = shipping_store_shipment_move(tx->db, order_id,
							  SHIPPING_STATE_SCHEDULED,
							  SHIPPING_STATE_CANCELLED, tx->now_ms);
			if (st == SHOP_E_CONFLICT)
				continue; /* the dispatcher won: decide again (too late) */
			if (st != SHOP_OK)
				goto out;
			st = shipping_emit_cancelled(tx, &cur);
			if (st == SHOP_OK)
				log_debug(&ids, "shipment %s cancelled", cur.shipment_id);
			goto out;
		case SHIPPING_CANCEL_TOO_LATE:
			/* The shipment left before the cancellation reached us.
			 * Nothing is undone and nothing is emitted: the
			 * ShipmentDispatched of the dispatch is already on its
			 * way to orders, which ships the order and keeps the
			 * request only as a record. (OrderCancelled cannot find
			 * a dispatched shipment: orders cancels a paid order
			 * only on our ShipmentCancelled.) */
			log_warn(&ids, "order %s after shipment %s was dispatched; too late",
				 requested ? "cancellation requested" : "cancelled",
				 cur.shipment_id);
			st = SHOP_OK;
			goto out;
		case SHIPPING_CANCEL_ALREADY:
			/* Cancelled already: by the request whose OrderCancelled
			 * this is, or a duplicate. */
			log_debug(&ids, "shipment already %s; nothing to do",
				  shipping_state_name(cur.state));
			st = SHOP_OK;
			goto out;
		}
	}
	log_error(&ids, "shipment state kept changing while cancelling");
	st = SHOP_E_INTERNAL;
out:
	return st;
}

shop_status shipping_handle_order_cancellation_requested(struct svc_tx *tx, const void *data)
{
	const struct ct_order_cancellation_requested *msg = data;
	return shipping_cancel(tx, msg->order_id, SHIPPING_CANCEL_BY_REQUEST);
}

shop_status shipping_handle_order_cancelled(struct svc_tx *tx, const void *data)
{
	const struct ct_order_cancelled *msg = data;
	return shipping_cancel(tx, msg->order_id, SHIPPING_CANCEL_BY_ORDER);
}

/* ------------------------------------------------------------------ */
/* The dispatcher. */

struct shipping_dispatch_job {
	const struct shipping_shipment *shipment;
	bool dispatched;
};

static shop_status shipping_dispatch_one(struct svc_tx *tx, void *arg)
{
	struct shipping_dispatch_job *job = arg;
	const struct shipping_shipment *s = job->shipment;
	struct log_ids ids = shipping_log_ids(tx, s->order_id);
	shop_status st = shipping_store_shipment_move(tx->db, s->order_id, SHIPPING_STATE_SCHEDULED,
						      SHIPPING_STATE_DISPATCHED, tx->now_ms);
	if (st == SHOP_E_CONFLICT) {
		/* Cancelled, or dispatched by another replica, since the batch
		 * was read: nothing to do. */
		log_debug(&ids, "shipment %s no longer scheduled; skipped", s->shipment_id);
		return SHOP_OK;
	}
	if (st != SHOP_OK)
		return st;
	st = shipping_emit_dispatched(tx, s);
	if (st != SHOP_OK)
		return st;
	job->dispatched = true;
	log_debug(&ids, "shipment %s dispatched", s->shipment_id);
	return SHOP_OK;
}

static const char *shipping_nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

shop_status shipping_dispatch_due(struct svc *svc, struct db *db, int64_t now_ms,
				  struct shipping_dispatch_report *ret_report)
{
	struct shipping_dispatch_report report = { 0, 0 };
	struct shipping_shipment *rows = xcalloc(SHIPPING_DISPATCH_BATCH, sizeof(*rows));
	shop_status first_error = SHOP_OK;

	shop_status st = shipping_store_due(db, now_ms, rows, SHIPPING_DISPATCH_BATCH, &report.due);
	if (st != SHOP_OK)
		goto out;
	for (size_t i = 0; i < report.due; i++) {
		struct shipping_dispatch_job job = { .shipment = &rows[i], .dispatched = false };
		st = svc_tx_run(svc, db, shipping_nonempty(rows[i].correlation_id),
				shipping_nonempty(rows[i].traceparent), shipping_dispatch_one,
				&job);
		if (st == SHOP_OK) {
			report.dispatched += job.dispatched;
			continue;
		}
		struct log_ids ids = { .order_id = rows[i].order_id,
				       .correlation_id = shipping_nonempty(
					       rows[i].correlation_id) };
		log_warn(&ids, "dispatching shipment %s failed: %s", rows[i].shipment_id,
			 shop_status_name(st));
		/* The row stays SCHEDULED and due, so the next run retries it.
		 * With the database gone the rest of the batch would fail the
		 * same way; any other failure is this row's alone. */
		if (first_error == SHOP_OK)
			first_error = st;
		if (st == SHOP_E_UNAVAILABLE || st == SHOP_E_TIMEOUT)
			break;
	}
	st = first_error;
	if (st == SHOP_OK)
		*ret_report = report;
out:
	free(rows);
	return st;
}

shop_status shipping_dispatcher_run(struct svc *svc, struct db *db)
{
	shop_status st = SHOP_OK;
	for (int round = 0; round < SHIPPING_DISPATCH_ROUNDS_MAX; round++) {
		struct shipping_dispatch_report report;
		st = shipping_dispatch_due(svc, db, clock_now_ms(), &report);
		if (st != SHOP_OK || report.due < SHIPPING_DISPATCH_BATCH)
			break;
	}
	return st;
}

const struct svc_route shipping_routes[] = {
	{ CT_MSG_ORDER_PLACED_V2, shipping_handle_order_placed },
	{ CT_MSG_ORDER_PAID, shipping_handle_order_paid },
	{ CT_MSG_ORDER_CANCELLATION_REQUESTED, shipping_handle_order_cancellation_requested },
	{ CT_MSG_ORDER_CANCELLED, shipping_handle_order_cancelled },
};
const size_t shipping_n_routes = sizeof(shipping_routes) / sizeof(shipping_routes[0]);

const struct svc_task shipping_tasks[] = {
	{ "dispatcher", SHIPPING_DISPATCH_POLL_MS, shipping_dispatcher_run },
};
const size_t shipping_n_tasks = sizeof(shipping_tasks) / sizeof(shipping_tasks[0]);
