/*
 * orders_handlers.c - messages in, order transitions and events out (see
 * orders_handlers.h for the outcomes each handler returns).
 *
 * The shape of every event handler is the same: translate the message into
 * an orders_input plus the facts it brings, and call orders_advance(). That
 * one function holds the read-decide-update-emit loop, so the rules about
 * races, unknown orders and early facts are written once:
 *   - the order is unknown: the PlaceOrder that created it has not been
 *     handled here yet (an event about an order exists only after the order
 *     does), so NOT_READY, never "ignore";
 *   - the guarded update changed nothing: another replica moved the order
 *     between our read and our write; read again and decide again, since
 *     the fact may still apply (a cancel after a reservation) or now be
 *     stale;
 *   - the event for a transition is emitted in the same transaction as the
 *     update and only when the update happened, so each transition is
 *     announced exactly once however many replicas raced for it.
 * The one transition that keeps the status is a PAID order's cancellation
 * request: it sets the mark (or counts one more request) and is announced
 * by OrderCancellationRequested, the question to shipping whose answer
 * (ShipmentCancelled or ShipmentDispatched) decides the order. The
 * customer's cancel asks; so does the sweeper for a PAID order that waited
 * longer than the paid deadline, and it asks again when no answer came.
 * The sweeper's requests are logged as errors: each means a message was
 * lost somewhere between orders and shipping.
 */
#include "orders_handlers.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/text.h"
#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The row holds whatever a valid PlaceOrder carries. */
#define ORDERS_FIELD_SIZE(type, field) sizeof(((type *)0)->field)
_Static_assert(ORDERS_FIELD_SIZE(struct orders_row, customer_id) >=
		       ORDERS_FIELD_SIZE(struct ct_place_order_v2, customer_id),
	       "orders_row.customer_id is smaller than the contract allows");
_Static_assert(ORDERS_FIELD_SIZE(struct orders_row, email) >=
		       ORDERS_FIELD_SIZE(struct ct_place_order_v2, email),
	       "orders_row.email is smaller than the contract allows");
_Static_assert(ORDERS_FIELD_SIZE(struct orders_row, correlation_id) >=
		       ORDERS_FIELD_SIZE(struct evt_envelope, correlationid),
	       "orders_row.correlation_id is smaller than the envelope allows");

static struct log_ids orders_log_ids(const struct svc_tx *tx, const char *order_id)
{
	return (struct log_ids){
		.order_id = order_id,
		.event_id = tx->cause ? tx->cause->id : NULL,
		.correlation_id = tx->cause ? tx->cause->correlationid : tx->correlation_id,
	};
}

static int64_t orders_deadline_ms(const struct svc_tx *tx)
{
	const struct orders_ctx *ctx = svc_ctx(tx->svc);
	return ctx ? ctx->deadline_ms : ORDERS_DEADLINE_DEFAULT_MS;
}

static int64_t orders_paid_deadline_ms(const struct svc *svc)
{
	const struct orders_ctx *ctx = svc_ctx(svc);
	return ctx && ctx->paid_deadline_ms ? ctx->paid_deadline_ms
					    : ORDERS_PAID_DEADLINE_DEFAULT_MS;
}

/* ---- events ------------------------------------------------------------ */

/* The event that announces ROW's new status (after a transition). */
static shop_status orders_emit_transition(struct svc_tx *tx, const struct orders_row *row)
{
	struct log_ids ids = orders_log_ids(tx, row->order_id);
	bool fits = true;

	switch (row->status) {
	case ORDERS_STATUS_RESERVED: {
		struct ct_order_reserved ev = { 0 };
		fits = TEXT_COPY(ev.order_id, row->order_id) &&
		       TEXT_COPY(ev.currency, row->currency);
		ev.total_cents = row->total_cents;
		if (fits)
			return svc_emit(tx, CT_MSG_ORDER_RESERVED, row->order_id, &ev);
		break;
	}
	case ORDERS_STATUS_PAID: {
		struct ct_order_paid ev = { 0 };
		fits = TEXT_COPY(ev.order_id, row->order_id) &&
		       TEXT_COPY(ev.payment_id, row->payment_id);
		if (fits)
			return svc_emit(tx, CT_MSG_ORDER_PAID, row->order_id, &ev);
		break;
	}
	case ORDERS_STATUS_SHIPPED: {
		struct ct_order_shipped ev = { 0 };
		fits = TEXT_COPY(ev.order_id, row->order_id) &&
		       TEXT_COPY(ev.shipment_id, row->shipment_id);
		if (fits)
			return svc_emit(tx, CT_MSG_ORDER_SHIPPED, row->order_id, &ev);
		break;
	}
	case ORDERS_STATUS_CANCELLED: {
		struct ct_order_cancelled ev = { 0 };
		const char *reason = orders_reason_name(row->reason);
		fits = reason && TEXT_COPY(ev.order_id, row->order_id) &&
		       TEXT_COPY(ev.reason, reason);
		if (fits)
			return svc_emit(tx, CT_MSG_ORDER_CANCELLED, row->order_id, &ev);
		break;
	}
	case ORDERS_STATUS_PENDING:
		/* Not reached by a transition; OrderPlaced is emitted on insert. */
		break;
	}
	log_error(&ids, "no event for an order now %s (fits %d)", orders_status_name(row->status),
		  fits);
	return SHOP_E_INTERNAL;
}

/* The question to shipping after a PAID order's cancellation was marked, or
 * asked again; with the reason of the first request. */
static shop_status orders_emit_cancellation_requested(struct svc_tx *tx,
						      const struct orders_row *row)
{
	struct ct_order_cancellation_requested ev = { 0 };
	const char *reason = orders_reason_name(row->cancel_reason);
	if (!reason || !TEXT_COPY(ev.order_id, row->order_id) || !TEXT_COPY(ev.reason, reason)) {
		struct log_ids ids = orders_log_ids(tx, row->order_id);
		log_error(&ids, "order_cancellation_requested does not fit");
		return SHOP_E_INTERNAL;
	}
	return svc_emit(tx, CT_MSG_ORDER_CANCELLATION_REQUESTED, row->order_id, &ev);
}

/* ---- the transition loop ----------------------------------------------- */

/* After ROW's cancellation was (again) requested from shipping. A customer's
 * first request is routine; anything the paid deadline asks means shipping
 * has not answered for that long (a dead-lettered OrderPaid or request, or
 * shipping down), which money and stock are waiting on: an error, loudly,
 * with what comes next. */
static void orders_log_asked(const struct svc_tx *tx, const struct log_ids *ids,
			     const struct orders_input *in, const struct orders_row *row)
{
	const char *why = orders_reason_name(row->cancel_reason);
	if (in->kind != ORDERS_INPUT_PAID_DEADLINE_PASSED) {
		log_debug(ids, "%s: order stays PAID, cancellation requested from shipping (%s)",
			  orders_input_name(in->kind), why);
		return;
	}
	int64_t waited = orders_paid_deadline_ms(tx->svc);
	if (row->cancel_requests < ORDERS_CANCEL_REQUESTS_MAX)
		log_error(ids,
			  "PAID order without an answer from shipping for over %lld ms: "
			  "cancellation requested from shipping (%s), request %d of %d",
			  (long long)waited, why, row->cancel_requests, ORDERS_CANCEL_REQUESTS_MAX);
	else
		log_error(ids,
			  "PAID order without an answer from shipping for over %lld ms: "
			  "last cancellation request (%s), %d of %d; if shipping does not answer "
			  "it, the order stays PAID until an operator acts (see the dead-letter "
			  "stream for what was lost)",
			  (long long)waited, why, row->cancel_requests, ORDERS_CANCEL_REQUESTS_MAX);
}

/* A fact the domain refused (ORDERS_REJECT): nothing changes, and the
 * message is dead-lettered with why. */
static shop_status orders_reject(struct svc_tx *tx, const struct log_ids *ids,
				 const struct orders_input *in, const struct orders_row *row)
{
	log_warn(ids, "%s refused: order is %s", orders_input_name(in->kind),
		 orders_status_name(row->status));
	if (in->kind == ORDERS_INPUT_PAYMENT_AUTHORIZED)
		return svc_tx_reject(tx,
				     "payment_authorized for %lld %s does not match the order's "
				     "total of %lld %s: not this order's payment",
				     (long long)in->amount_cents, in->currency ? in->currency : "",
				     (long long)row->total_cents, row->currency);
	return svc_tx_reject(tx, "%s contradicts the order", orders_input_name(in->kind));
}

shop_status orders_advance(struct svc_tx *tx, const char *order_id, const struct orders_input *in,
			   const struct orders_change *facts)
{
	struct log_ids ids = orders_log_ids(tx, order_id);
	const char *input = orders_input_name(in->kind);

	for (int attempt = 0; attempt < ORDERS_TRANSITION_ATTEMPTS; attempt++) {
		struct orders_row row;
		shop_status st = orders_store_get(tx->db, order_id, &row);
		if (st == SHOP_E_NOT_FOUND) {
			log_warn(&ids, "%s for an order not placed yet: retrying later", input);
			return SHOP_E_NOT_READY;
		}
		if (st != SHOP_OK)
			return st;

		struct orders_state cur = { .status = row.status,
					    .cancel_requested = row.cancel_requested,
					    .cancel_reason = row.cancel_reason,
					    .cancel_requests = row.cancel_requests,
					    .has_total = row.has_total,
					    .total_cents = row.total_cents,
					    .currency = row.currency };
		struct orders_decision d = orders_decide(&cur, in);
		if (d.verdict == ORDERS_REJECT)
			return orders_reject(tx, &ids, in, &row);
		if (d.verdict == ORDERS_IGNORE) {
			log_debug(&ids, "%s ignored: order is %s", input,
				  orders_status_name(row.status));
			return SHOP_OK;
		}
		if (d.verdict == ORDERS_DEFER) {
			log_debug(&ids, "%s deferred: order is still %s", input,
				  orders_status_name(row.status));
			return SHOP_E_NOT_READY;
		}

		struct orders_change change = *facts;
		change.status = d.status;
		change.reason = d.reason;
		change.cancel_requested = d.cancel_requested;
		change.cancel_reason = d.cancel_reason;
		change.cancel_requests = d.cancel_requests;
		bool asked = d.cancel_requests > cur.cancel_requests;
		bool moved = false;
		st = orders_store_transition(tx->db, order_id, &cur, &change, tx->now_ms, &moved);
		if (st != SHOP_OK)
			return st;
		if (!moved) {
			log_debug(&ids, "%s: order left %s meanwhile; deciding again", input,
				  orders_status_name(row.status));
			continue;
		}
		orders_row_apply(&row, &change, tx->now_ms);
		if (asked) {
			orders_log_asked(tx, &ids, in, &row);
			return orders_emit_cancellation_requested(tx, &row);
		}
		if (cur.cancel_requested && change.status == ORDERS_STATUS_SHIPPED)
			log_warn(&ids,
				 "%s: the shipment left before shipping saw the cancellation "
				 "requested at %lld; the order ships",
				 input, (long long)row.cancel_requested_at_ms);
		log_debug(&ids, "%s: %s -> %s%s%s", input, orders_status_name(cur.status),
			  orders_status_name(change.status), change.reason ? " " : "",
			  change.reason ? orders_reason_name(change.reason) : "");
		return orders_emit_transition(tx, &row);
	}
	log_error(&ids, "%s: order still moving after %d attempts", input,
		  ORDERS_TRANSITION_ATTEMPTS);
	return SHOP_E_UNAVAILABLE;
}

/* ---- commands ---------------------------------------------------------- */

/* The lines as received, as a JSON array; cJSON_free it. */
static char *orders_items_json(const struct ct_order_line *items, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		cJSON *line = cJSON_CreateObject();
		cJSON_AddStringToObject(line, "sku", items[i].sku);
		cJSON_AddNumberToObject(line, "quantity", (double)items[i].quantity);
		cJSON_AddItemToArray(arr, line);
	}
	char *text = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	return text;
}

/*
 * PlaceOrder v2, and v1: a PlaceOrder v1 still on the gateway stream from
 * before the upgrade reaches this handler read as v2 (libs/evt/ct_versions.c
 * drops its card token), so orders emits OrderPlaced v2 for it too and
 * never OrderPlaced v1. Emitting v1 would have kept that order payable the
 * old way, but only by putting its card token on the orders stream again,
 * where inventory, shipping, notifications, the gateway, the console and
 * the observer all read it: the hole issue 7 closes. Such an order gets no
 * SubmitCard (the gateway sent its card inside PlaceOrder v1), so payments
 * never charges it and the deadline sweeper cancels it (timeout), releasing
 * its stock and telling the customer. Draining the gateway stream before
 * upgrading avoids even that (docs/runbook.md).
 */
shop_status orders_handle_place_order(struct svc_tx *tx, const void *data)
{
	const struct ct_place_order_v2 *cmd = data;
	struct log_ids ids = orders_log_ids(tx, cmd->order_id);
	struct ct_order_placed_v2 *ev = NULL;
	bool inserted = false;
	char *items = orders_items_json(cmd->items, cmd->items_len);
	struct orders_new o = {
		.order_id = cmd->order_id,
		.customer_id = cmd->customer_id,
		.email = cmd->email,
		.items_json = items,
		.correlation_id = ids.correlation_id,
		.created_at_ms = tx->now_ms,
		.deadline_at_ms = tx->now_ms + orders_deadline_ms(tx),
	};
	shop_status st = orders_store_insert(tx->db, &o, &inserted);
	if (st != SHOP_OK)
		goto out;
	if (!inserted) {
		/* The same command again (a gateway retry with a new event id):
		 * the order and its OrderPlaced exist already. */
		log_debug(&ids, "place_order for an existing order: nothing to do");
		goto out;
	}

	/* OrderPlaced carries the command's fields unchanged. */
	ev = xcalloc(1, sizeof(*ev)); /* 50 lines and an address: not for the stack */
	if (!TEXT_COPY(ev->order_id, cmd->order_id) ||
	    !TEXT_COPY(ev->customer_id, cmd->customer_id) || !TEXT_COPY(ev->email, cmd->email) ||
	    cmd->items_len > sizeof(ev->items) / sizeof(ev->items[0])) {
		log_error(&ids, "place_order does not fit order_placed");
		st = SHOP_E_INTERNAL;
		goto out;
	}
	for (size_t i = 0; i < cmd->items_len; i++)
		ev->items[i] = cmd->items[i];
	ev->items_len = cmd->items_len;
	ev->shipping_address = cmd->shipping_address;
	st = svc_emit(tx, CT_MSG_ORDER_PLACED_V2, cmd->order_id, ev);
	if (st == SHOP_OK)
		log_debug(&ids, "order placed: PENDING until %lld", (long long)o.deadline_at_ms);
out:
	free(ev);
	cJSON_free(items);
	return st;
}

shop_status orders_handle_cancel_order(struct svc_tx *tx, const void *data)
{
	const struct ct_cancel_order *cmd = data;
	struct orders_input in = { .kind = ORDERS_INPUT_CANCEL_REQUESTED };
	struct orders_change facts = { 0 };
	return orders_advance(tx, cmd->order_id, &in, &facts);
}

/* ---- events of other services ------------------------------------------ */

shop_status orders_handle_stock_reserved(struct svc_tx *tx, const void *data)
{
	const struct ct_stock_reserved *ev = data;
	struct orders_input in = { .kind = ORDERS_INPUT_STOCK_RESERVED };
	struct orders_change facts = {
		.has_total = true,
		.total_cents = ev->total_cents,
		.currency = ev->currency,
	};
	return orders_advance(tx, ev->order_id, &in, &facts);
}

shop_status orders_handle_stock_rejected(struct svc_tx *tx, const void *data)
{
	const struct ct_stock_rejected *ev = data;
	struct orders_input in = { .kind = ORDERS_INPUT_STOCK_REJECTED };
	struct orders_change facts = { 0 };

	/* The schema allows only stock reasons; refuse anything else rather
	 * than cancel an order for a reason nobody defined. */
	if (orders_reason_parse(ev->reason, &in.reason) != SHOP_OK ||
	    (in.reason != ORDERS_REASON_OUT_OF_STOCK && in.reason != ORDERS_REASON_UNKNOWN_SKU)) {
		struct log_ids ids = orders_log_ids(tx, ev->order_id);
		log_warn(&ids, "stock_rejected with reason '%s'", ev->reason);
		return SHOP_E_INVALID;
	}
	return orders_advance(tx, ev->order_id, &in, &facts);
}

shop_status orders_handle_payment_authorized(struct svc_tx *tx, const void *data)
{
	const struct ct_payment_authorized *ev = data;
	/* Its amount is checked against the order's total (orders_decide). */
	struct orders_input in = { .kind = ORDERS_INPUT_PAYMENT_AUTHORIZED,
				   .has_amount = true,
				   .amount_cents = ev->amount_cents,
				   .currency = ev->currency };
	struct orders_change facts = { .payment_id = ev->payment_id };
	return orders_advance(tx, ev->order_id, &in, &facts);
}

shop_status orders_handle_payment_declined(struct svc_tx *tx, const void *data)
{
	const struct ct_payment_declined *ev = data;
	struct orders_input in = { .kind = ORDERS_INPUT_PAYMENT_DECLINED };
	struct orders_change facts = { 0 };
	return orders_advance(tx, ev->order_id, &in, &facts);
}

shop_status orders_handle_shipment_dispatched(struct svc_tx *tx, const void *data)
{
	const struct ct_shipment_dispatched *ev = data;
	struct orders_input in = { .kind = ORDERS_INPUT_SHIPMENT_DISPATCHED };
	struct orders_change facts = { .shipment_id = ev->shipment_id };
	return orders_advance(tx, ev->order_id, &in, &facts);
}

shop_status orders_handle_shipment_cancelled(struct svc_tx *tx, const void *data)
{
	const struct ct_shipment_cancelled *ev = data;
	struct orders_input in = { .kind = ORDERS_INPUT_SHIPMENT_CANCELLED };
	struct orders_change facts = { 0 };
	return orders_advance(tx, ev->order_id, &in, &facts);
}

/* ---- the deadline sweeper ---------------------------------------------- */

static shop_status orders_sweep_one(struct svc_tx *tx, void *arg)
{
	const struct orders_due *due = arg;
	struct orders_input in = { .kind = ORDERS_INPUT_DEADLINE_PASSED };
	struct orders_change facts = { 0 };
	/* The deadline never changes, so it is still past; the status may not
	 * be (paid or cancelled since the query), which the domain sorts out.
	 * The paid deadline runs from the order's last move, so it is still
	 * past only if the order has not moved: the domain compares the
	 * requests count found here with the one it reads. */
	if (due->paid) {
		in.kind = ORDERS_INPUT_PAID_DEADLINE_PASSED;
		in.cancel_requests = due->cancel_requests;
	}
	return orders_advance(tx, due->order_id, &in, &facts);
}

shop_status orders_sweep(struct svc *svc, struct db *db)
{
	struct orders_due due[2 * ORDERS_SWEEP_BATCH];
	size_t n = 0, n_paid = 0;
	shop_status first = SHOP_OK;
	int64_t now = clock_now_ms();
	shop_status st = orders_store_find_expired(db, now, ORDERS_SWEEP_BATCH, due, &n);
	if (st != SHOP_OK)
		return st;
	st = orders_store_find_paid_overdue(db, now - orders_paid_deadline_ms(svc),
					    ORDERS_CANCEL_REQUESTS_MAX, ORDERS_SWEEP_BATCH, due + n,
					    &n_paid);
	if (st != SHOP_OK)
		return st;
	n += n_paid;

	for (size_t i = 0; i < n; i++) {
		/* One transaction per order: one failure does not undo the others,
		 * and the relay can publish each cancellation as it commits. */
		st = svc_tx_run(svc, db, due[i].correlation_id[0] ? due[i].correlation_id : NULL,
				NULL, orders_sweep_one, &due[i]);
		if (st == SHOP_OK)
			continue;
		struct log_ids ids = { .order_id = due[i].order_id,
				       .correlation_id = due[i].correlation_id };
		log_warn(&ids, "%s not applied: %s", due[i].paid ? "paid deadline" : "timeout",
			 shop_status_name(st));
		if (first == SHOP_OK)
			first = st;
		/* The database is gone: the rest would fail the same way. */
		if (st == SHOP_E_UNAVAILABLE)
			break;
	}
	return first;
}

/* ---- wiring ------------------------------------------------------------ */

const struct svc_route orders_routes[] = {
	{ CT_MSG_PLACE_ORDER_V2, orders_handle_place_order },
	{ CT_MSG_CANCEL_ORDER, orders_handle_cancel_order },
	{ CT_MSG_STOCK_RESERVED, orders_handle_stock_reserved },
	{ CT_MSG_STOCK_REJECTED, orders_handle_stock_rejected },
	{ CT_MSG_PAYMENT_AUTHORIZED, orders_handle_payment_authorized },
	{ CT_MSG_PAYMENT_DECLINED, orders_handle_payment_declined },
	{ CT_MSG_SHIPMENT_DISPATCHED, orders_handle_shipment_dispatched },
	{ CT_MSG_SHIPMENT_CANCELLED, orders_handle_shipment_cancelled },
};
const size_t orders_n_routes = sizeof(orders_routes) / sizeof(orders_routes[0]);

const struct svc_task orders_tasks[] = {
	{ "deadline-sweeper", ORDERS_SWEEP_INTERVAL_MS, orders_sweep },
};
const size_t orders_n_tasks = sizeof(orders_tasks) / sizeof(orders_tasks[0]);
