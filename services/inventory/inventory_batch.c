/*
 * inventory_batch.c - a consumed batch's OrderPlaced messages decided on one
 * locked copy of their products, and written with a few statements.
 *
 * Reserving one order one statement at a time is four round trips for a
 * one-line order (the product, the reservation, the stock, the line), and
 * inventory's one consumer thread spent most of its time waiting on them:
 * its queue was the shop's longest in every load test (docs/performance.md).
 * The runtime's batch hooks (svc_batch_hooks) let it do better:
 *
 *   begin  locks every product the batch's orders name, in SKU order (on
 *          PostgreSQL with FOR UPDATE, so no other transaction can change
 *          them until the commit; SQLite's BEGIN IMMEDIATE already keeps
 *          every other writer out), and then reads which of the orders
 *          already have a reservation row. Reading the rows after taking the
 *          locks is what makes the copy true: a replica that reserved one of
 *          these orders held the same locks and committed before ours were
 *          granted, so its row is seen.
 *   decide each OrderPlaced runs inventory_reserve_on on the copy
 *          (inventory_batch_stock), in the order of the batch, so later
 *          orders see what earlier ones took, exactly as one at a time.
 *   end    writes the new reservations (one INSERT that must insert every
 *          one of them), their lines (one INSERT) and the products whose
 *          level changed (one UPDATE), and announces each of those products
 *          once, with its latest level: one StockLevelChanged per product
 *          per batch instead of one per reservation and release. Its cause
 *          (correlation and causation ids) is the last message of the batch
 *          that changed the product. A reader sees the product's revision
 *          jump over the batch's intermediate ones, which the contract
 *          allows: readers keep the highest revision.
 *
 * A reservation row can still appear without the product locks: a
 * cancellation that overtook its order writes a tombstone. Should one
 * land between begin and end, end's INSERT inserts fewer rows than it was
 * given and fails; the runtime then rolls the batch back and handles it
 * message by message, the statement-at-a-time way, which decides correctly.
 * A release in the batch (OrderCancelled) writes what is pending first,
 * releases in the database, and updates the copy from what it returned.
 */
#include "inventory.h"

#include "core/ids.h"
#include "core/text.h"
#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* An order the batch knows to have a reservation row: read in begin,
 * written by a release, or decided here and not yet written (pending). */
struct batch_order {
	char order_id[IDS_UUID_SIZE];
	bool pending;
	enum inventory_status status; /* the rest: pending rows only */
	char reason[INVENTORY_REASON_MAX + 1];
	bool has_reason;
	int64_t total_cents;
	char currency[INVENTORY_CURRENCY_MAX + 1];
	bool has_currency;
	int64_t now_ms;
};

struct batch_line {
	char order_id[IDS_UUID_SIZE];
	struct inventory_priced_line line;
};

struct inventory_batch {
	struct db *db;
	/* The locked products, sorted by SKU, and the revision each has in
	 * the database: a product whose revision moved is written by end. */
	struct inventory_product *products;
	int64_t *stored_revision;
	/* Per product: the last message that changed its level, for end to
	 * announce it with; NULL while unchanged. The envelopes are the
	 * runtime's, alive until the batch is released. */
	const struct evt_envelope **level_cause;
	size_t n_products;
	struct batch_order *orders;
	size_t n_orders, cap_orders;
	struct batch_line *lines; /* of pending reservations */
	size_t n_lines, cap_lines;
};

static atomic_ullong batch_orders_decided;

uint64_t inventory_batch_orders_decided(void)
{
	return atomic_load(&batch_orders_decided);
}

/* ---- the copy ---- */

static int product_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct inventory_product *)elem)->sku);
}

static struct inventory_product *batch_product(struct inventory_batch *b, const char *sku,
					       size_t *ret_index)
{
	struct inventory_product *p = bsearch(sku, b->products, b->n_products, sizeof(*b->products),
					      product_cmp);
	if (p && ret_index)
		*ret_index = (size_t)(p - b->products);
	return p;
}

static struct batch_order *batch_order(struct inventory_batch *b, const char *order_id)
{
	for (size_t i = 0; i < b->n_orders; i++)
		if (strcmp(b->orders[i].order_id, order_id) == 0)
			return &b->orders[i];
	return NULL;
}

/* Adds ORDER_ID as known (not pending); an order known already stays as
 * it is. */
static shop_status batch_order_add(struct inventory_batch *b, const char *order_id,
				   struct batch_order **ret)
{
	struct batch_order *o = batch_order(b, order_id);
	if (!o) {
		if (b->n_orders == b->cap_orders) {
			b->cap_orders = b->cap_orders ? 2 * b->cap_orders : SVC_FETCH_BATCH;
			b->orders = xrealloc(b->orders, b->cap_orders * sizeof(*b->orders));
		}
		o = &b->orders[b->n_orders];
		memset(o, 0, sizeof(*o));
		if (!TEXT_COPY(o->order_id, order_id))
			return SHOP_E_INTERNAL;
		b->n_orders++;
	}
	if (ret)
		*ret = o;
	return SHOP_OK;
}

static shop_status stock_product_get(void *ctx, const char *sku, struct inventory_product *ret)
{
	/* begin locked every SKU the batch's orders name: one not in the copy
	 * is not in the database either. */
	const struct inventory_product *p = batch_product(ctx, sku, NULL);
	if (!p)
		return SHOP_E_NOT_FOUND;
	*ret = *p;
	return SHOP_OK;
}

static shop_status stock_reservation_insert(void *ctx, const char *order_id,
					    enum inventory_status status, const char *reason,
					    int64_t total_cents, const char *currency,
					    int64_t now_ms, bool *ret_inserted)
{
	struct inventory_batch *b = ctx;
	if (batch_order(b, order_id)) {
		*ret_inserted = false;
		return SHOP_OK;
	}
	struct batch_order *o = NULL;
	shop_status st = batch_order_add(b, order_id, &o);
	if (st != SHOP_OK)
		return st;
	o->pending = true;
	o->status = status;
	o->has_reason = reason != NULL;
	o->has_currency = currency != NULL;
	if ((reason && !TEXT_COPY(o->reason, reason)) ||
	    (currency && !TEXT_COPY(o->currency, currency)))
		return SHOP_E_LIMIT;
	o->total_cents = total_cents;
	o->now_ms = now_ms;
	*ret_inserted = true;
	return SHOP_OK;
}

static shop_status stock_reservation_transition(void *ctx, const char *order_id,
						enum inventory_status from,
						enum inventory_status to, const char *reason,
						int64_t now_ms, bool *ret_changed)
{
	/* Reserving moves only the row it has just decided, still pending. */
	struct batch_order *o = batch_order(ctx, order_id);
	if (!o || !o->pending)
		return SHOP_E_INTERNAL;
	*ret_changed = o->status == from;
	if (!*ret_changed)
		return SHOP_OK;
	o->status = to;
	if (reason) {
		o->has_reason = true;
		if (!TEXT_COPY(o->reason, reason))
			return SHOP_E_LIMIT;
	}
	o->now_ms = now_ms;
	return SHOP_OK;
}

static shop_status stock_take(void *ctx, const char *sku, int64_t quantity, bool *ret_taken,
			      struct inventory_product *ret_product)
{
	struct inventory_product *p = batch_product(ctx, sku, NULL);
	*ret_taken = p && p->available >= quantity;
	if (!*ret_taken)
		return SHOP_OK;
	p->available -= quantity;
	p->revision++;
	if (ret_product)
		*ret_product = *p;
	return SHOP_OK;
}

static shop_status stock_give(void *ctx, const char *sku, int64_t quantity,
			      struct inventory_product *ret_product)
{
	struct inventory_product *p = batch_product(ctx, sku, NULL);
	if (!p)
		return SHOP_E_INTERNAL;
	p->available += quantity;
	p->revision++;
	if (ret_product)
		*ret_product = *p;
	return SHOP_OK;
}

static shop_status stock_line_insert(void *ctx, const char *order_id,
				     const struct inventory_priced_line *line)
{
	struct inventory_batch *b = ctx;
	if (b->n_lines == b->cap_lines) {
		b->cap_lines = b->cap_lines ? 2 * b->cap_lines : SVC_FETCH_BATCH;
		b->lines = xrealloc(b->lines, b->cap_lines * sizeof(*b->lines));
	}
	struct batch_line *l = &b->lines[b->n_lines];
	if (!TEXT_COPY(l->order_id, order_id))
		return SHOP_E_INTERNAL;
	l->line = *line;
	b->n_lines++;
	return SHOP_OK;
}

const struct inventory_stock_ops inventory_batch_stock = {
	.product_get = stock_product_get,
	.reservation_insert = stock_reservation_insert,
	.reservation_transition = stock_reservation_transition,
	.stock_take = stock_take,
	.stock_give = stock_give,
	.line_insert = stock_line_insert,
};

/* ---- reading: begin ---- */

static shop_status batch_lock_products(struct inventory_batch *b, const char *skus_json)
{
	shop_status st = inventory_store_products_lock(b->db, skus_json, &b->products,
						       &b->n_products);
	if (st != SHOP_OK)
		return st;
	b->stored_revision = xcalloc(b->n_products ? b->n_products : 1,
				     sizeof(*b->stored_revision));
	b->level_cause = xcalloc(b->n_products ? b->n_products : 1, sizeof(*b->level_cause));
	for (size_t i = 0; i < b->n_products; i++)
		b->stored_revision[i] = b->products[i].revision;
	return SHOP_OK;
}

static shop_status batch_order_known(void *arg, const char *order_id)
{
	return batch_order_add(arg, order_id, NULL);
}

static void batch_free(struct inventory_batch *b)
{
	if (!b)
		return;
	free(b->products);
	free(b->stored_revision);
	free(b->level_cause);
	free(b->orders);
	free(b->lines);
	free(b);
}

static shop_status batch_begin(struct svc_tx *tx, const struct svc_batch_msg *msgs, size_t n,
			       void **ret_state)
{
	struct inventory_batch *b = NULL;
	cJSON *skus = cJSON_CreateArray();
	cJSON *ids = cJSON_CreateArray();
	char *skus_json = NULL, *ids_json = NULL;
	size_t placed = 0;
	shop_status st = SHOP_OK;

	for (size_t i = 0; i < n; i++) {
		if (msgs[i].message != CT_MSG_ORDER_PLACED_V2)
			continue;
		const struct ct_order_placed_v2 *m = msgs[i].data;
		cJSON_AddItemToArray(ids, cJSON_CreateString(m->order_id));
		for (size_t j = 0; j < m->items_len; j++)
			cJSON_AddItemToArray(skus, cJSON_CreateString(m->items[j].sku));
		placed++;
	}
	/* Nothing to reserve (a batch of releases): no copy, no statements. */
	if (placed == 0)
		goto out;
	skus_json = cJSON_PrintUnformatted(skus);
	ids_json = cJSON_PrintUnformatted(ids);
	b = xcalloc(1, sizeof(*b));
	b->db = tx->db;
	st = batch_lock_products(b, skus_json);
	if (st == SHOP_OK)
		st = inventory_store_reservations_known(b->db, ids_json, batch_order_known, b);
out:
	if (st == SHOP_OK) {
		*ret_state = b;
		b = NULL;
	}
	batch_free(b);
	free(skus_json);
	free(ids_json);
	cJSON_Delete(skus);
	cJSON_Delete(ids);
	return st;
}

/* ---- writing: end, and before a release ---- */

static shop_status batch_write_orders(struct inventory_batch *b)
{
	cJSON *rows = cJSON_CreateArray();
	size_t pending = 0;
	int64_t inserted = 0;
	char *json = NULL;
	shop_status st = SHOP_OK;

	for (size_t i = 0; i < b->n_orders; i++) {
		const struct batch_order *o = &b->orders[i];
		if (!o->pending)
			continue;
		cJSON *row = cJSON_CreateObject();
		cJSON_AddStringToObject(row, "order_id", o->order_id);
		cJSON_AddStringToObject(row, "status", inventory_status_name(o->status));
		cJSON_AddItemToObject(row, "reason",
				      o->has_reason ? cJSON_CreateString(o->reason)
						    : cJSON_CreateNull());
		cJSON_AddNumberToObject(row, "total_cents", (double)o->total_cents);
		cJSON_AddItemToObject(row, "currency",
				      o->has_currency ? cJSON_CreateString(o->currency)
						      : cJSON_CreateNull());
		cJSON_AddNumberToObject(row, "now_ms", (double)o->now_ms);
		cJSON_AddItemToArray(rows, row);
		pending++;
	}
	if (pending == 0)
		goto out;
	json = cJSON_PrintUnformatted(rows);
	st = inventory_store_reservations_insert_json(b->db, json, &inserted);
	if (st != SHOP_OK)
		goto out;
	/* A row another transaction wrote since begin (a tombstone: see the
	 * file comment): this batch's decision for that order is void. */
	if ((size_t)inserted != pending) {
		st = SHOP_E_CONFLICT;
		goto out;
	}
	for (size_t i = 0; i < b->n_orders; i++)
		b->orders[i].pending = false;
out:
	free(json);
	cJSON_Delete(rows);
	return st;
}

static shop_status batch_write_lines(struct inventory_batch *b)
{
	if (b->n_lines == 0)
		return SHOP_OK;
	cJSON *rows = cJSON_CreateArray();
	for (size_t i = 0; i < b->n_lines; i++) {
		const struct batch_line *l = &b->lines[i];
		cJSON *row = cJSON_CreateObject();
		cJSON_AddStringToObject(row, "order_id", l->order_id);
		cJSON_AddStringToObject(row, "sku", l->line.sku);
		cJSON_AddNumberToObject(row, "quantity", (double)l->line.quantity);
		cJSON_AddNumberToObject(row, "unit_price_cents", (double)l->line.unit_price_cents);
		cJSON_AddItemToArray(rows, row);
	}
	char *json = cJSON_PrintUnformatted(rows);
	shop_status st = inventory_store_lines_insert_json(b->db, json);
	if (st == SHOP_OK)
		b->n_lines = 0;
	free(json);
	cJSON_Delete(rows);
	return st;
}

static shop_status batch_write_products(struct inventory_batch *b)
{
	cJSON *rows = cJSON_CreateArray();
	size_t changed = 0;
	int64_t updated = 0;
	char *json = NULL;
	shop_status st = SHOP_OK;

	for (size_t i = 0; i < b->n_products; i++) {
		const struct inventory_product *p = &b->products[i];
		if (p->revision == b->stored_revision[i])
			continue;
		cJSON *row = cJSON_CreateObject();
		cJSON_AddStringToObject(row, "sku", p->sku);
		cJSON_AddNumberToObject(row, "available", (double)p->available);
		cJSON_AddNumberToObject(row, "revision", (double)p->revision);
		cJSON_AddItemToArray(rows, row);
		changed++;
	}
	if (changed == 0)
		goto out;
	json = cJSON_PrintUnformatted(rows);
	st = inventory_store_products_set_json(b->db, json, &updated);
	if (st != SHOP_OK)
		goto out;
	if ((size_t)updated != changed) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	for (size_t i = 0; i < b->n_products; i++)
		b->stored_revision[i] = b->products[i].revision;
out:
	free(json);
	cJSON_Delete(rows);
	return st;
}

shop_status inventory_batch_flush(struct inventory_batch *b)
{
	shop_status st = batch_write_orders(b);
	if (st == SHOP_OK)
		st = batch_write_lines(b);
	if (st == SHOP_OK)
		st = batch_write_products(b);
	return st;
}

shop_status inventory_batch_note_release(struct inventory_batch *b, const char *order_id,
					 const struct inventory_result *res)
{
	/* Released, tombstoned or found decided: the order has a row now. */
	shop_status st = batch_order_add(b, order_id, NULL);
	for (size_t i = 0; st == SHOP_OK && i < res->n_levels; i++) {
		size_t at = 0;
		struct inventory_product *p = batch_product(b, res->levels[i].sku, &at);
		if (!p)
			continue;
		*p = res->levels[i];
		b->stored_revision[at] = p->revision;
	}
	return st;
}

/* ---- the hooks ---- */

bool inventory_batch_level_changed(struct inventory_batch *b, const char *sku,
				   const struct evt_envelope *cause)
{
	size_t at = 0;
	if (!batch_product(b, sku, &at))
		return false;
	b->level_cause[at] = cause;
	return true;
}

/* One StockLevelChanged per product the batch changed, each as if emitted
 * by the last message that changed it. */
static shop_status batch_emit_levels(struct svc_tx *tx, struct inventory_batch *b)
{
	for (size_t i = 0; i < b->n_products; i++) {
		if (!b->level_cause[i])
			continue;
		struct svc_tx by = *tx;
		by.cause = b->level_cause[i];
		by.emitted = 0;
		shop_status st = inventory_emit_level(&by, &b->products[i]);
		tx->emitted += by.emitted;
		if (st != SHOP_OK)
			return st;
	}
	return SHOP_OK;
}

static shop_status batch_end(struct svc_tx *tx, void *state)
{
	shop_status st = inventory_batch_flush(state);
	return st == SHOP_OK ? batch_emit_levels(tx, state) : st;
}

static void batch_release(void *state)
{
	batch_free(state);
}

const struct svc_batch_hooks inventory_batch_hooks = {
	.begin = batch_begin,
	.end = batch_end,
	.release = batch_release,
};

shop_status inventory_batch_reserve(struct inventory_batch *b, int64_t now_ms, const char *order_id,
				    const struct inventory_line *lines, size_t n_lines,
				    struct inventory_result *ret_result)
{
	shop_status st = inventory_reserve_on(&inventory_batch_stock, b, now_ms, order_id, lines,
					      n_lines, ret_result);
	if (st == SHOP_OK)
		atomic_fetch_add(&batch_orders_decided, 1);
	return st;
}
