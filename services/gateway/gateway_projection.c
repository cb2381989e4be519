/*
 * gateway_projection.c - projects events into the gateway's read models.
 *
 * The gateway consumes every event in the contracts index. Each one lands in
 * its order's timeline (deduplicated by event id: a redelivery adds nothing).
 * Orders' own events set the status the API shows: orders is the only writer
 * of order state, the gateway only mirrors its decisions, and only forward
 * (an old event replayed late never moves an order back). Every other event,
 * OrderCancellationRequested among them (the order stays PAID until
 * shipping answers), only lands in the timeline. Stock levels update
 * the catalogue when their per-product revision is newer.
 */
#include "gateway.h"

#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

static const char *const gateway_status_names[] = {
	[GATEWAY_PENDING] = "PENDING",	 [GATEWAY_RESERVED] = "RESERVED", [GATEWAY_PAID] = "PAID",
	[GATEWAY_SHIPPED] = "SHIPPED",	 [GATEWAY_CANCELLED] = "CANCELLED",
};

const char *gateway_status_name(enum gateway_status s)
{
	return gateway_status_names[s];
}

bool gateway_status_parse(const char *s, enum gateway_status *ret)
{
	for (size_t i = 0; i < sizeof(gateway_status_names) / sizeof(gateway_status_names[0]); i++) {
		if (strcmp(s, gateway_status_names[i]) == 0) {
			*ret = (enum gateway_status)i;
			return true;
		}
	}
	return false;
}

bool gateway_status_advances(enum gateway_status from, enum gateway_status to)
{
	if (from == GATEWAY_SHIPPED || from == GATEWAY_CANCELLED)
		return false; /* terminal */
	if (to == GATEWAY_CANCELLED)
		return true;
	return to > from;
}

/* "/shop/orders" -> "orders": the timeline names the producing service. */
static const char *gateway_source_service(const char *source)
{
	const char *slash = strrchr(source, '/');
	return slash ? slash + 1 : source;
}

static shop_status gateway_catalogue_update(struct svc_tx *tx, const struct ct_stock_level_changed *e)
{
	/* Insert, or overwrite only with a newer revision: events about one
	 * product may be redelivered or arrive out of order. */
	return db_exec(tx->db,
		       "INSERT INTO catalogue (sku, name, price_cents, currency, available, revision) "
		       "VALUES ($1, $2, $3, $4, $5, $6) "
		       "ON CONFLICT (sku) DO UPDATE SET name = excluded.name, "
		       "price_cents = excluded.price_cents, currency = excluded.currency, "
		       "available = excluded.available, revision = excluded.revision "
		       "WHERE catalogue.revision < excluded.revision",
		       DB_ARGS(e->sku, e->name, DB_I64(e->price_cents), e->currency,
			       DB_I64(e->available), DB_I64(e->revision)),
		       NULL);
}

static shop_status gateway_view_create(struct svc_tx *tx, const struct ct_order_placed *e)
{
	cJSON *items = cJSON_CreateArray();
	for (size_t i = 0; i < e->items_len; i++)
		cJSON_AddItemToArray(items, ct_order_line_encode(&e->items[i]));
	char *text = cJSON_PrintUnformatted(items);
	cJSON_Delete(items);
	shop_status st = db_exec(tx->db,
				 "INSERT INTO orders_view (order_id, status, customer_id, items, "
				 "created_at_ms, updated_at_ms) VALUES ($1, 'PENDING', $2, $3, $4, $4) "
				 "ON CONFLICT (order_id) DO NOTHING",
				 DB_ARGS(e->order_id, e->customer_id, text, DB_I64(tx->now_ms)), NULL);
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
	int64_t changed = 0;
	shop_status st = db_exec(tx->db,
				 "UPDATE orders_view SET items = $2, total_cents = $3, currency = $4, "
				 "updated_at_ms = $5 WHERE order_id = $1",
				 DB_ARGS(e->order_id, text, DB_I64(e->total_cents), e->currency,
					 DB_I64(tx->now_ms)),
				 &changed);
	free(text);
	/* StockReserved travels on another stream than OrderPlaced and may
	 * overtake it: wait for the view row rather than lose the prices. */
	if (st == SHOP_OK && changed == 0)
		st = SHOP_E_NOT_READY;
	return st;
}

/* Moves the view to `to` if that is forward from where it is. An order the
 * view does not know yet is NOT_READY: its OrderPlaced comes first on the
 * same stream, so a retry finds it. */
static shop_status gateway_view_advance(struct svc_tx *tx, const char *order_id,
					enum gateway_status to, const char *reason)
{
	struct db_result *r = NULL;
	shop_status st = db_query(tx->db, "SELECT status FROM orders_view WHERE order_id = $1",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	enum gateway_status from;
	if (db_result_rows(r) == 0) {
		st = SHOP_E_NOT_READY;
		goto out;
	}
	if (!gateway_status_parse(db_result_text(r, 0, 0), &from)) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	if (!gateway_status_advances(from, to))
		goto out; /* stale or duplicate: nothing to do */
	st = db_exec(tx->db,
		     "UPDATE orders_view SET status = $2, reason = $3, updated_at_ms = $4 "
		     "WHERE order_id = $1",
		     DB_ARGS(order_id, gateway_status_name(to), reason, DB_I64(tx->now_ms)), NULL);
out:
	db_result_free(r);
	return st;
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
	const struct ct_message *m = ct_message_by_type(ev->type);
	shop_status st;

	if (m->id == CT_MSG_STOCK_LEVEL_CHANGED)
		return gateway_catalogue_update(tx, data);

	const cJSON *order_id_json = cJSON_GetObjectItemCaseSensitive(ev->data, "order_id");
	if (!cJSON_IsString(order_id_json))
		return SHOP_E_INVALID; /* every other event is about one order */
	const char *order_id = order_id_json->valuestring;

	st = db_exec(tx->db,
		     "INSERT INTO timeline (order_id, event_id, type, source, time, detail) "
		     "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
		     DB_ARGS(order_id, ev->id, m->title, gateway_source_service(ev->source), ev->time,
			     gateway_detail(m, data)),
		     NULL);
	if (st != SHOP_OK)
		return st;

	switch (m->id) {
	case CT_MSG_ORDER_PLACED:
		return gateway_view_create(tx, data);
	case CT_MSG_STOCK_RESERVED:
		return gateway_view_price(tx, data);
	case CT_MSG_ORDER_RESERVED: {
		const struct ct_order_reserved *e = data;
		st = db_exec(tx->db,
			     "UPDATE orders_view SET total_cents = $2, currency = $3 WHERE order_id = $1",
			     DB_ARGS(order_id, DB_I64(e->total_cents), e->currency), NULL);
		return st != SHOP_OK ? st : gateway_view_advance(tx, order_id, GATEWAY_RESERVED, NULL);
	}
	case CT_MSG_ORDER_PAID:
		return gateway_view_advance(tx, order_id, GATEWAY_PAID, NULL);
	case CT_MSG_ORDER_SHIPPED:
		return gateway_view_advance(tx, order_id, GATEWAY_SHIPPED, NULL);
	case CT_MSG_ORDER_CANCELLED:
		return gateway_view_advance(tx, order_id, GATEWAY_CANCELLED,
					    ((const struct ct_order_cancelled *)data)->reason);
	default:
		return SHOP_OK;
	}
}
