/*
 * inventory_handlers.c - contract messages in, operations run, events out.
 *
 * Each handler copies the message into the domain's types, runs one
 * operation (inventory_ops.c) inside the message's transaction and turns its
 * result into events through the outbox: StockReserved or StockRejected for
 * OrderPlaced, StockReleased for a release, and one StockLevelChanged per
 * product whose availability changed (in a consumed batch, one per product
 * for the whole batch, emitted when it ends). Nothing is emitted for a
 * no-op, so a redelivered or stale message leaves no trace.
 *
 * Statuses the runtime would ack after rolling back (SHOP_E_DUPLICATE,
 * SHOP_E_CONFLICT) or dead-letter as a bad message (SHOP_E_NOT_FOUND) never
 * leave a handler when they come from the database: they would lose the
 * message. They become SHOP_E_INTERNAL, which is retried.
 */
#include "inventory.h"

#include "core/log.h"
#include "core/text.h"
#include "core/xalloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Our buffers hold anything the contracts allow (SKUs are ASCII by their
 * pattern, so characters are bytes), and events have room for every line
 * and SKU of an order. */
_Static_assert(CT_ORDER_LINE_SKU_MAX <= INVENTORY_SKU_MAX, "a contract SKU fits");
_Static_assert(CT_ORDER_PLACED_V2_ITEMS_MAX <= INVENTORY_LINES_MAX, "an order's lines fit");
_Static_assert(CT_STOCK_RESERVED_LINES_MAX >= INVENTORY_LINES_MAX, "StockReserved has room");
_Static_assert(CT_STOCK_RELEASED_LINES_MAX >= INVENTORY_LINES_MAX, "StockReleased has room");
_Static_assert(CT_STOCK_REJECTED_SKUS_MAX >= INVENTORY_LINES_MAX, "StockRejected has room");
_Static_assert(CT_STOCK_LEVEL_CHANGED_NAME_MAX >= INVENTORY_NAME_MAX, "a product name fits");
/* Every total inventory_total_cents lets through fits StockReserved, and it
 * lets through every order the contracts allow at prices they allow. */
_Static_assert(INVENTORY_TOTAL_MAX_CENTS == CT_AMOUNT_CENTS_MAX, "the contract's total ceiling");
_Static_assert(CT_STOCK_RESERVED_TOTAL_CENTS_MAX >= INVENTORY_TOTAL_MAX_CENTS,
	       "StockReserved carries any total");
_Static_assert(INVENTORY_TOTAL_MAX_CENTS >= (int64_t)CT_ORDER_PLACED_V2_ITEMS_MAX *
						    CT_ORDER_LINE_QUANTITY_MAX * CT_CENTS_MAX,
	       "the largest valid order at the highest valid price is not too large");

/* Why a PaymentDeclined releases stock, in the words of OrderCancelled. */
#define INVENTORY_RELEASE_REASON_DECLINED "payment_declined"

static void ids_of(const struct svc_tx *tx, const char *order_id, struct log_ids *ids)
{
	ids->order_id = order_id;
	ids->event_id = tx->cause ? tx->cause->id : NULL;
	ids->correlation_id = tx->cause ? tx->cause->correlationid : tx->correlation_id;
}

/* The database's words for a failure, when the failure came from it. */
static const char *db_why(const struct svc_tx *tx, shop_status st)
{
	return st == SHOP_E_INVALID || st == SHOP_E_LIMIT ? "-" : db_last_error(tx->db);
}

/* See the file comment. */
static shop_status for_runtime(shop_status st)
{
	switch (st) {
	case SHOP_E_DUPLICATE:
	case SHOP_E_CONFLICT:
	case SHOP_E_NOT_FOUND:
		return SHOP_E_INTERNAL;
	default:
		return st;
	}
}

shop_status inventory_emit_level(struct svc_tx *tx, const struct inventory_product *p)
{
	struct ct_stock_level_changed ev;
	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.sku, p->sku) || !TEXT_COPY(ev.name, p->name) ||
	    !TEXT_COPY(ev.currency, p->currency))
		return SHOP_E_INTERNAL;
	ev.price_cents = p->price_cents;
	ev.available = p->available;
	ev.revision = p->revision;
	/* The subject of a stock level is its SKU. */
	return svc_emit(tx, CT_MSG_STOCK_LEVEL_CHANGED, p->sku, &ev);
}

/* In a batch, a level is recorded and announced once when the batch ends
 * (inventory_batch.c): a popular product reserved forty times in a batch
 * costs one event, not forty, and its readers only want the latest. */
static shop_status emit_levels(struct svc_tx *tx, const struct inventory_result *res)
{
	for (size_t i = 0; i < res->n_levels; i++) {
		const struct inventory_product *p = &res->levels[i];
		if (tx->batch && inventory_batch_level_changed(tx->batch, p->sku, tx->cause))
			continue;
		shop_status st = inventory_emit_level(tx, p);
		if (st != SHOP_OK)
			return st;
	}
	return SHOP_OK;
}

static shop_status emit_reserved(struct svc_tx *tx, const char *order_id,
				 const struct inventory_result *res)
{
	struct ct_stock_reserved ev;
	struct inventory_priced_line lines[INVENTORY_LINES_MAX];
	size_t n = 0;
	shop_status st = inventory_lines_split(res->lines, res->n_lines, lines, INVENTORY_LINES_MAX,
					       &n);
	if (st != SHOP_OK)
		return SHOP_E_INTERNAL;

	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.order_id, order_id) || !TEXT_COPY(ev.currency, res->currency))
		return SHOP_E_INTERNAL;
	for (size_t i = 0; i < n; i++) {
		if (!TEXT_COPY(ev.lines[i].sku, lines[i].sku))
			return SHOP_E_INTERNAL;
		ev.lines[i].quantity = lines[i].quantity;
		ev.lines[i].unit_price_cents = lines[i].unit_price_cents;
	}
	ev.lines_len = n;
	ev.total_cents = res->total_cents;
	st = svc_emit(tx, CT_MSG_STOCK_RESERVED, order_id, &ev);
	if (st != SHOP_OK)
		return st;
	return emit_levels(tx, res);
}

static shop_status emit_rejected(struct svc_tx *tx, const char *order_id,
				 const struct inventory_result *res)
{
	struct ct_stock_rejected ev;
	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.order_id, order_id) || !TEXT_COPY(ev.reason, res->reason))
		return SHOP_E_INTERNAL;
	for (size_t i = 0; i < res->n_skus; i++) {
		if (!TEXT_COPY(ev.skus[i], res->skus[i]))
			return SHOP_E_INTERNAL;
	}
	ev.skus_len = res->n_skus;
	return svc_emit(tx, CT_MSG_STOCK_REJECTED, order_id, &ev);
}

static shop_status emit_released(struct svc_tx *tx, const char *order_id,
				 const struct inventory_result *res)
{
	struct ct_stock_released ev;
	struct inventory_priced_line lines[INVENTORY_LINES_MAX];
	size_t n = 0;
	shop_status st = inventory_lines_split(res->lines, res->n_lines, lines, INVENTORY_LINES_MAX,
					       &n);
	if (st != SHOP_OK)
		return SHOP_E_INTERNAL;

	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.order_id, order_id))
		return SHOP_E_INTERNAL;
	for (size_t i = 0; i < n; i++) {
		if (!TEXT_COPY(ev.lines[i].sku, lines[i].sku))
			return SHOP_E_INTERNAL;
		ev.lines[i].quantity = lines[i].quantity;
	}
	ev.lines_len = n;
	st = svc_emit(tx, CT_MSG_STOCK_RELEASED, order_id, &ev);
	if (st != SHOP_OK)
		return st;
	return emit_levels(tx, res);
}

shop_status inventory_handle_order_placed(struct svc_tx *tx, const void *data)
{
	const struct ct_order_placed_v2 *msg = data;
	struct inventory_line lines[INVENTORY_LINES_MAX];
	struct inventory_result *res = xcalloc(1, sizeof(*res));
	struct log_ids ids;
	shop_status st = SHOP_E_INVALID;

	ids_of(tx, msg->order_id, &ids);
	if (msg->items_len > INVENTORY_LINES_MAX)
		goto out;
	for (size_t i = 0; i < msg->items_len; i++) {
		if (!TEXT_COPY(lines[i].sku, msg->items[i].sku))
			goto out;
		lines[i].quantity = msg->items[i].quantity;
	}

	/* On a batch's first try the runtime hands us its copy of the products
	 * (inventory_batch.c); on a retry, and outside the consumer, the
	 * database is asked statement by statement. Same decisions either way. */
	st = tx->batch ? inventory_batch_reserve(tx->batch, tx->now_ms, msg->order_id, lines,
						 msg->items_len, res)
		       : inventory_reserve(tx->db, tx->now_ms, msg->order_id, lines, msg->items_len,
					   res);
	if (st == SHOP_E_LIMIT) {
		/* Not reachable from a valid order at valid prices (see the
		 * assertions at the top): only a catalogue price above the
		 * contract's unit price ceiling gets here. No StockReserved could
		 * carry the total and no rejection reason says "too large", so the
		 * message goes to the dead letters, and the order to its deadline. */
		log_warn(&ids, "order total above %lld cents: a unit price breaks the contract",
			 (long long)INVENTORY_TOTAL_MAX_CENTS);
		goto out;
	}
	if (st != SHOP_OK) {
		log_warn(&ids, "reserving failed: %s (%s)", shop_status_name(st), db_why(tx, st));
		st = for_runtime(st);
		goto out;
	}

	switch (res->outcome) {
	case INVENTORY_OUTCOME_RESERVED:
		log_debug(&ids, "reserved %zu line(s), total %" PRId64 ".%02" PRId64 " %s",
			  res->n_lines, res->total_cents / 100, res->total_cents % 100,
			  res->currency);
		st = emit_reserved(tx, msg->order_id, res);
		break;
	case INVENTORY_OUTCOME_REJECTED:
		log_debug(&ids, "rejected: %s (%s%s)", res->reason, res->skus[0],
			  res->n_skus > 1 ? ", ..." : "");
		st = emit_rejected(tx, msg->order_id, res);
		break;
	default:
		log_debug(&ids, "order already decided or cancelled: nothing to reserve");
		st = SHOP_OK;
		break;
	}
	st = for_runtime(st);
out:
	free(res);
	return st;
}

static shop_status release(struct svc_tx *tx, const char *order_id, const char *reason)
{
	struct inventory_result *res = xcalloc(1, sizeof(*res));
	struct log_ids ids;
	shop_status st;

	ids_of(tx, order_id, &ids);
	/* In a batch, what it has decided is written first, so the release
	 * sees it, and its copy then learns what the release changed. */
	st = tx->batch ? inventory_batch_flush(tx->batch) : SHOP_OK;
	if (st == SHOP_OK)
		st = inventory_release(tx->db, tx->now_ms, order_id, reason, res);
	if (st == SHOP_OK && tx->batch)
		st = inventory_batch_note_release(tx->batch, order_id, res);
	if (st != SHOP_OK) {
		log_warn(&ids, "releasing failed: %s (%s)", shop_status_name(st), db_why(tx, st));
		goto out;
	}
	switch (res->outcome) {
	case INVENTORY_OUTCOME_RELEASED:
		log_debug(&ids, "released %zu line(s): %s", res->n_lines, reason);
		st = emit_released(tx, order_id, res);
		break;
	case INVENTORY_OUTCOME_TOMBSTONED:
		log_debug(&ids, "cancelled before placed (%s): a late OrderPlaced reserves nothing",
			  reason);
		break;
	default:
		log_debug(&ids, "nothing held to release");
		break;
	}
out:
	free(res);
	return for_runtime(st);
}

shop_status inventory_handle_order_cancelled(struct svc_tx *tx, const void *data)
{
	const struct ct_order_cancelled *msg = data;
	return release(tx, msg->order_id, msg->reason);
}

shop_status inventory_handle_payment_declined(struct svc_tx *tx, const void *data)
{
	const struct ct_payment_declined *msg = data;
	return release(tx, msg->order_id, INVENTORY_RELEASE_REASON_DECLINED);
}

shop_status inventory_init(struct svc_tx *tx)
{
	struct inventory_result *res = xcalloc(1, sizeof(*res));
	shop_status st = inventory_seed(tx->db, inventory_catalogue, inventory_catalogue_len, res);
	if (st != SHOP_OK) {
		log_error(NULL, "seeding the catalogue failed: %s (%s)", shop_status_name(st),
			  db_why(tx, st));
		goto out;
	}
	if (res->n_levels > 0)
		log_info(NULL, "seeded %zu product(s)", res->n_levels);
	st = emit_levels(tx, res);
out:
	free(res);
	return st;
}

const struct svc_route inventory_routes[] = {
	{ CT_MSG_ORDER_PLACED_V2, inventory_handle_order_placed },
	{ CT_MSG_ORDER_CANCELLED, inventory_handle_order_cancelled },
	{ CT_MSG_PAYMENT_DECLINED, inventory_handle_payment_declined },
};

const size_t inventory_n_routes = sizeof(inventory_routes) / sizeof(inventory_routes[0]);
