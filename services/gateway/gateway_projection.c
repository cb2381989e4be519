/*
 * gateway_projection.c - projects events into the gateway's read models,
 * and wakes the long-poll thread (gateway_long_polls.c) waiting on them.
 *
 * The gateway consumes every event in the contracts index. Each one lands in
 * its order's timeline (deduplicated by event id: a redelivery adds nothing).
 * Orders' own events set the status the API shows (gateway_status_of_event):
 * orders is the only writer of order state, the gateway only mirrors its
 * decisions, and only forward (an old event replayed late never moves an
 * order back). Every other event only lands in the timeline. Stock levels
 * update the catalogue when their per-product revision is newer.
 *
 * The projection runs inside the consumer's batch transaction, so what it
 * wrote is visible only after that commits: the runtime calls
 * gateway_after_commit then (svc_spec.after_commit), never from inside the
 * handler, or a waiter re-read early would find the old row and sleep on.
 *
 * The gateway's one periodic task, the purge of old idempotency records,
 * is here too: like the projection, it is work the gateway does on its own
 * rather than in answer to a request.
 */
#include "gateway.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

/* ---- waking long-polls ------------------------------------------------ */

void gateway_ctx_init(struct gateway_ctx *ctx)
{
	*ctx = (struct gateway_ctx){ .generation = 0 };
	pthread_mutex_init(&ctx->lock, NULL);
	clock_cond_init(&ctx->changed);
}

void gateway_ctx_release(struct gateway_ctx *ctx)
{
	if (!ctx)
		return;
	gateway_long_polls_stop(ctx);
	pthread_cond_destroy(&ctx->changed);
	pthread_mutex_destroy(&ctx->lock);
}

void gateway_after_commit(struct svc *svc)
{
	struct gateway_ctx *ctx = svc_ctx(svc);
	if (!ctx)
		return;
	pthread_mutex_lock(&ctx->lock);
	ctx->generation++;
	if (ctx->waiting > 0) /* the long-poll thread re-reads its waiters */
		pthread_cond_broadcast(&ctx->changed);
	pthread_mutex_unlock(&ctx->lock);
}

uint64_t gateway_changes_seen(struct gateway_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	uint64_t g = ctx->generation;
	pthread_mutex_unlock(&ctx->lock);
	return g;
}

/* ---- the projection --------------------------------------------------- */

/* "/shop/orders" -> "orders": the timeline names the producing service. */
static const char *gateway_source_service(const char *source)
{
	const char *slash = strrchr(source, '/');
	return slash ? slash + 1 : source;
}

static shop_status gateway_view_create(struct svc_tx *tx, const struct ct_order_placed_v2 *e)
{
	cJSON *items = cJSON_CreateArray();
	for (size_t i = 0; i < e->items_len; i++)
		cJSON_AddItemToArray(items, ct_order_line_encode(&e->items[i]));
	char *text = cJSON_PrintUnformatted(items);
	cJSON_Delete(items);
	/* Usually there already: the POST that placed it wrote it. */
	shop_status st = gateway_store_view_create(tx->db, e->order_id, e->customer_id, text,
						   tx->now_ms, NULL);
	free(text);
	return st;
}

static shop_status gateway_view_price(struct svc_tx *tx, const struct ct_stock_reserved *e)
{
	cJSON *items = cJSON_CreateArray();
	for (size_t i = 0; i < e->lines_len; i++)
		cJSON_AddItemToArray(items, ct_priced_line_encode(&e->lines[i]));
	char *text = cJSON_PrintUnformatted(items);
	cJSON_Delete(items);
	bool found = false;
	shop_status st = gateway_store_view_price(tx->db, e->order_id, text, e->total_cents,
						  e->currency, tx->now_ms, &found);
	free(text);
	/* StockReserved travels on another stream than OrderPlaced and may
	 * overtake it: wait for the view row rather than lose the prices. */
	if (st == SHOP_OK && !found)
		st = SHOP_E_NOT_READY;
	return st;
}

/* Moves the view to `to` if that is forward from where it is. An order the
 * view does not know yet is NOT_READY: its OrderPlaced comes first on the
 * same stream, so a retry finds it. */
static shop_status gateway_view_advance(struct svc_tx *tx, const char *order_id,
					enum gateway_status to, const char *reason)
{
	enum gateway_status from;
	shop_status st = gateway_store_view_status(tx->db, order_id, &from);
	if (st == SHOP_E_NOT_FOUND)
		return SHOP_E_NOT_READY;
	if (st != SHOP_OK)
		return st;
	if (!gateway_status_advances(from, to))
		return SHOP_OK; /* stale or duplicate: nothing to do */
	return gateway_store_view_set_status(tx->db, order_id, to, reason, tx->now_ms);
}

/* A short human detail for some timeline entries (reasons, kinds). */
static const char *gateway_detail(const struct ct_message *m, const void *data)
{
	switch (m->id) {
	case CT_MSG_ORDER_CANCELLED:
		return ((const struct ct_order_cancelled *)data)->reason;
	case CT_MSG_ORDER_CANCELLATION_REQUESTED:
		return ((const struct ct_order_cancellation_requested *)data)->reason;
	case CT_MSG_STOCK_REJECTED:
		return ((const struct ct_stock_rejected *)data)->reason;
	case CT_MSG_PAYMENT_DECLINED:
		return ((const struct ct_payment_declined *)data)->reason;
	case CT_MSG_NOTIFICATION_SENT:
		return ((const struct ct_notification_sent *)data)->kind;
	default:
		return NULL;
	}
}

shop_status gateway_project(struct svc_tx *tx, const void *data)
{
	const struct evt_envelope *ev = tx->cause;
	/* What data is: an OrderPlaced v1 arrives read as v2 (tx->message). */
	const struct ct_message *m = tx->message ? tx->message : ct_message_by_type(ev->type);
	shop_status st;

	if (m->id == CT_MSG_STOCK_LEVEL_CHANGED) {
		const struct ct_stock_level_changed *e = data;
		return gateway_store_catalogue_put(tx->db, e->sku, e->name, e->price_cents,
						   e->currency, e->available, e->revision);
	}

	const cJSON *order_id_json = cJSON_GetObjectItemCaseSensitive(ev->data, "order_id");
	if (!cJSON_IsString(order_id_json))
		return SHOP_E_INVALID; /* every other event is about one order */
	const char *order_id = order_id_json->valuestring;

	st = gateway_store_timeline_add(tx->db, order_id, ev->id, m->title,
					gateway_source_service(ev->source), ev->time,
					gateway_detail(m, data));
	if (st != SHOP_OK)
		return st;

	switch (m->id) {
	case CT_MSG_ORDER_PLACED_V2:
		return gateway_view_create(tx, data);
	case CT_MSG_STOCK_RESERVED:
		return gateway_view_price(tx, data);
	case CT_MSG_ORDER_RESERVED: {
		const struct ct_order_reserved *e = data;
		st = gateway_store_view_total(tx->db, order_id, e->total_cents, e->currency);
		if (st != SHOP_OK)
			return st;
		break;
	}
	default:
		break;
	}
	enum gateway_status to;
	if (!gateway_status_of_event(m->id, &to))
		return SHOP_OK;
	const char *reason = m->id == CT_MSG_ORDER_CANCELLED
				     ? ((const struct ct_order_cancelled *)data)->reason
				     : NULL;
	return gateway_view_advance(tx, order_id, to, reason);
}

/* ---- the idempotency purge -------------------------------------------- */

static shop_status gateway_idempotency_purge_task(struct svc *svc, struct db *db)
{
	int64_t purged = 0;
	shop_status st = gateway_store_idempotency_purge(db, clock_now_ms(),
							 GATEWAY_IDEMPOTENCY_RETENTION_MS, &purged);
	if (st == SHOP_OK && purged > 0)
		log_info(NULL, "purged %lld idempotency records older than %lld ms",
			 (long long)purged, (long long)GATEWAY_IDEMPOTENCY_RETENTION_MS);
	return st;
}

const struct svc_task gateway_tasks[] = {
	{ "idempotency-purge", GATEWAY_IDEMPOTENCY_PURGE_INTERVAL_MS,
	  gateway_idempotency_purge_task },
};
const size_t gateway_n_tasks = sizeof(gateway_tasks) / sizeof(gateway_tasks[0]);
