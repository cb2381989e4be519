/*
 * gateway_api.c - the public HTTP API (documented in README.md).
 *
 *   GET  /products               the catalogue, as projected from inventory
 *   POST /orders                 place an order (202, Location, Idempotency-Key)
 *   GET  /orders/{id}[?wait=N]   status, items, total and timeline; long-polls
 *   POST /orders/{id}/cancel     request cancellation (202, or 409 when final)
 *
 * The gateway never calls another service: a POST writes its read-model row,
 * its idempotency record and the command into its outbox in one SQLite
 * transaction and answers; the relay publishes the command afterwards. So an
 * accepted order is never lost (it is on disk before the 202), and a crash
 * between commit and publish only delays it. Idempotency is race-free on
 * both backends because the key is claimed first in that same transaction,
 * with an INSERT that does nothing when the key is taken (then the record is
 * read and replayed).
 *
 * This file is HTTP alone: it parses a request, asks the domain
 * (gateway_domain.h) and the store (gateway_store.h), and answers. A failed
 * call is answered through one table, gateway_http_status_of; a request the
 * client got wrong (not JSON, an invalid order, a bad header or parameter,
 * a reused key, a wrong method) is refused where it is found, with the code
 * README.md documents for it.
 */
#include "gateway.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "evt/ct_runtime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATEWAY_ORDERS_PREFIX "/orders/"
#define GATEWAY_CANCEL_SUFFIX "/cancel"

/* ---- failures: the one table from status to HTTP ----------------------- */

/* The statuses a store or runtime call returns to the API. INVALID, LIMIT
 * and DUPLICATE come only from the gateway's own writes here (a command the
 * contract refuses, a broken constraint): the client's input was checked
 * before, so they are the gateway's fault. */
static const struct gateway_http_status gateway_http_statuses[] = {
	[SHOP_OK] = { 500, "internal", "unexpected error" }, /* a success is no failure */
	[SHOP_E_INVALID] = { 500, "internal", "unexpected error" },
	[SHOP_E_LIMIT] = { 500, "internal", "unexpected error" },
	[SHOP_E_NOT_FOUND] = { 404, "not_found", "no such order" },
	[SHOP_E_CONFLICT] = { 409, "conflict", "the order does not allow this now" },
	[SHOP_E_DUPLICATE] = { 500, "internal", "unexpected error" },
	[SHOP_E_NOT_READY] = { 503, "unavailable",
			       "the gateway's database is busy or unavailable; retry" },
	[SHOP_E_UNAVAILABLE] = { 503, "unavailable",
				 "the gateway's database is busy or unavailable; retry" },
	[SHOP_E_TIMEOUT] = { 503, "unavailable",
			     "the gateway's database is busy or unavailable; retry" },
	[SHOP_E_INTERNAL] = { 500, "internal", "unexpected error" },
};

const struct gateway_http_status *gateway_http_status_of(shop_status st)
{
	size_t n = sizeof(gateway_http_statuses) / sizeof(gateway_http_statuses[0]);
	if ((size_t)st >= n || !gateway_http_statuses[st].code)
		return &gateway_http_statuses[SHOP_E_INTERNAL];
	return &gateway_http_statuses[st];
}

/* Answers a failed call; MESSAGE (may be NULL) replaces the table's. */
static void gateway_fail(struct web_response *res, shop_status st, const char *message)
{
	const struct gateway_http_status *h = gateway_http_status_of(st);
	web_respond_error(res, h->status, h->code, message ? message : h->message, NULL);
}

static void gateway_method_not_allowed(struct web_response *res, const char *allow)
{
	web_response_header(res, "Allow", allow);
	web_respond_error(res, 405, "method_not_allowed", "method not allowed on this resource",
			  NULL);
}

static cJSON *gateway_details(const struct ct_errors *errs)
{
	cJSON *details = cJSON_CreateArray();
	for (size_t i = 0; i < errs->len; i++) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "field",
					errs->item[i].path[0] ? errs->item[i].path : "/");
		cJSON_AddStringToObject(d, "problem", errs->item[i].problem);
		cJSON_AddItemToArray(details, d);
	}
	return details;
}

/* ---- GET /products ---------------------------------------------------- */

static void gateway_products(struct svc *svc, struct web_response *res)
{
	struct db *db = NULL;
	struct gateway_product *products = NULL;
	size_t n = 0;
	shop_status st = svc_db_acquire(svc, &db);
	if (st == SHOP_OK)
		st = gateway_store_catalogue_list(db, &products, &n);
	svc_db_release(svc, db);
	if (st != SHOP_OK) {
		gateway_fail(res, st, NULL);
		return;
	}
	cJSON *body = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(body, "products");
	for (size_t i = 0; i < n; i++) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "sku", products[i].sku);
		cJSON_AddStringToObject(p, "name", products[i].name);
		cJSON_AddNumberToObject(p, "price_cents", (double)products[i].price_cents);
		cJSON_AddStringToObject(p, "currency", products[i].currency);
		cJSON_AddNumberToObject(p, "available", (double)products[i].available);
		cJSON_AddItemToArray(list, p);
	}
	gateway_store_catalogue_release(products, n);
	web_respond_json(res, 200, body);
}

/* ---- POST /orders ----------------------------------------------------- */

struct gateway_create {
	const struct ct_place_order_request *request;
	const char *idem_key;  /* NULL without the header */
	const char *canonical; /* the request as compact JSON; its fingerprint is kept */
	/* results */
	bool key_conflict;
	bool replayed;
	int status;
	char *response;
	char order_id[IDS_UUID_SIZE];
};

/* The key c->idem_key was taken when this request tried to claim it: the
 * domain decides between a replay of the first answer and a refusal;
 * nothing is written either way. */
static shop_status gateway_create_replay(struct svc_tx *tx, struct gateway_create *c)
{
	struct gateway_idempotency_record rec = { 0 };
	shop_status st = gateway_store_idempotency_get(tx->db, c->idem_key, &rec);
	if (st == SHOP_E_NOT_FOUND)
		/* Purged between the two statements (only a 24 h old key can be):
		 * the client's retry finds the key free. */
		return SHOP_E_UNAVAILABLE;
	if (st != SHOP_OK)
		return st;
	free(c->response);
	c->response = NULL;
	switch (gateway_idempotency_decide(rec.request, c->canonical)) {
	case GATEWAY_IDEMPOTENCY_REPLAY:
		c->replayed = true;
		c->status = rec.status;
		c->response = rec.response;
		rec.response = NULL;
		snprintf(c->order_id, sizeof(c->order_id), "%s", rec.order_id);
		break;
	case GATEWAY_IDEMPOTENCY_REFUSE:
		c->key_conflict = true;
		break;
	}
	gateway_store_idempotency_release(&rec);
	return SHOP_OK;
}

static shop_status gateway_create_tx(struct svc_tx *tx, void *arg)
{
	struct gateway_create *c = arg;
	struct ct_place_order_v2 *cmd = xcalloc(1, sizeof(*cmd));
	struct ct_submit_card *card = xcalloc(1, sizeof(*card));
	cJSON *items = NULL, *body = NULL;
	char *items_text = NULL;
	shop_status st;

	ids_uuid7(c->order_id);
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "order_id", c->order_id);
	cJSON_AddStringToObject(body, "status", "PENDING");
	c->status = 202;
	c->response = cJSON_PrintUnformatted(body);

	if (c->idem_key) {
		/* The key is claimed first, by the insert itself (see
		 * gateway_store_idempotency_claim): a concurrent request with
		 * the same key waits for this transaction, then replays. */
		bool claimed = false;
		char fingerprint[GATEWAY_FINGERPRINT_SIZE];
		gateway_idempotency_fingerprint(c->canonical, fingerprint);
		st = gateway_store_idempotency_claim(tx->db, c->idem_key, fingerprint, c->status,
						     c->response, c->order_id, tx->now_ms,
						     &claimed);
		if (st != SHOP_OK)
			goto out;
		if (!claimed) {
			st = gateway_create_replay(tx,
						   c); /* replay or refusal: nothing is written */
			goto out;
		}
	}

	const struct ct_place_order_request *q = c->request;
	snprintf(cmd->order_id, sizeof(cmd->order_id), "%s", c->order_id);
	memcpy(cmd->customer_id, q->customer_id, sizeof(cmd->customer_id));
	memcpy(cmd->email, q->email, sizeof(cmd->email));
	memcpy(cmd->items, q->items, sizeof(cmd->items));
	cmd->items_len = q->items_len;
	cmd->shipping_address = q->shipping_address;
	st = svc_emit(tx, CT_MSG_PLACE_ORDER_V2, c->order_id, cmd);
	if (st != SHOP_OK)
		goto out;
	/* The card goes to payments alone, on the confidential stream CARDS,
	 * never in the order that every other service reads (issue 7). Same
	 * transaction: both commands or neither. */
	snprintf(card->order_id, sizeof(card->order_id), "%s", c->order_id);
	memcpy(card->customer_id, q->customer_id, sizeof(card->customer_id));
	card->payment = q->payment;
	st = svc_emit(tx, CT_MSG_SUBMIT_CARD, c->order_id, card);
	if (st != SHOP_OK)
		goto out;

	items = cJSON_CreateArray();
	for (size_t i = 0; i < q->items_len; i++)
		cJSON_AddItemToArray(items, ct_order_line_encode(&q->items[i]));
	items_text = cJSON_PrintUnformatted(items);
	bool created = false;
	st = gateway_store_view_create(tx->db, c->order_id, q->customer_id, items_text, tx->now_ms,
				       &created);
	if (st == SHOP_OK && !created)
		st = SHOP_E_INTERNAL; /* a fresh UUIDv7 taken: impossible */
out:
	cJSON_Delete(body);
	cJSON_Delete(items);
	free(items_text);
	free(cmd);
	explicit_bzero(card, sizeof(*card));
	free(card);
	return st;
}

bool gateway_idem_key_valid(const char *key)
{
	size_t n = strlen(key);
	if (n == 0 || n > GATEWAY_IDEMPOTENCY_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isprint((unsigned char)key[i]))
			return false;
	return true;
}

static bool gateway_is_json(const char *content_type)
{
	static const char json[] = "application/json";
	if (!content_type || strncasecmp(content_type, json, sizeof(json) - 1) != 0)
		return false;
	char next = content_type[sizeof(json) - 1];
	return next == '\0' || next == ';' || next == ' ';
}

bool gateway_wait_read(const char *wait, int64_t *ret_s)
{
	if (!wait) {
		*ret_s = 0;
		return true;
	}
	char *end = NULL;
	long v = strtol(wait, &end, 10);
	if (!*wait || *end || v < 0 || v > GATEWAY_WAIT_MAX_S)
		return false;
	*ret_s = v;
	return true;
}

bool gateway_order_request_read(const char *content_type, const char *body, size_t len,
				const char *idem_key, struct ct_place_order_request *ret_request,
				char **ret_canonical, struct gateway_refusal *ret_refusal)
{
	cJSON *json = NULL;
	struct ct_place_order_request *request = xcalloc(1, sizeof(*request));
	struct ct_errors errs = { 0 };
	bool ok = false;

	if (!gateway_is_json(content_type)) {
		*ret_refusal = (struct gateway_refusal){ 415, "unsupported_media_type",
							 "Content-Type must be application/json",
							 NULL };
		goto out;
	}
	/* Exactly one JSON value: an order followed by more text is not one the
	 * client can be sure we read as it meant. */
	if (ct_json_parse(body, len, &json, &errs) != SHOP_OK) {
		*ret_refusal = (struct gateway_refusal){ 400, "malformed_json",
							 "the body is not valid JSON",
							 gateway_details(&errs) };
		goto out;
	}
	if (ct_place_order_request_parse(json, request, &errs) != SHOP_OK) {
		*ret_refusal = (struct gateway_refusal){ 422, "invalid_order",
							 "the order is not valid",
							 gateway_details(&errs) };
		goto out;
	}
	if (idem_key && !gateway_idem_key_valid(idem_key)) {
		*ret_refusal = (struct gateway_refusal){
			400, "invalid_idempotency_key",
			"Idempotency-Key must be 1 to 255 printable characters", NULL
		};
		goto out;
	}
	/* Re-encoded from the parsed request: the schema fixes the field order,
	 * so a replay matches whatever the spacing or key order of its body. */
	cJSON *encoded = ct_place_order_request_encode(request);
	*ret_canonical = cJSON_PrintUnformatted(encoded);
	cJSON_Delete(encoded);
	*ret_request = *request;
	ok = true;
out:
	free(request);
	cJSON_Delete(json);
	return ok;
}

static void gateway_order_create(struct svc *svc, const struct web_request *req,
				 struct web_response *res)
{
	char *canonical = NULL;
	struct ct_place_order_request *request = xcalloc(1, sizeof(*request));
	struct gateway_create c = { 0 };
	struct gateway_refusal refusal;

	size_t len = 0;
	const char *body = web_request_body(req, &len);
	const char *key = web_request_header(req, "Idempotency-Key");
	if (!gateway_order_request_read(web_request_header(req, "Content-Type"), body, len, key,
					request, &canonical, &refusal)) {
		web_respond_error(res, refusal.status, refusal.code, refusal.message,
				  refusal.details);
		goto out;
	}
	c.request = request;
	c.idem_key = key;
	c.canonical = canonical;
	char traceparent[IDS_TRACEPARENT_SIZE];
	ids_traceparent_child(web_request_header(req, "traceparent"), traceparent);
	/* Committed together with the other requests that arrive meanwhile:
	 * one fsync for all of them, each answered after it. */
	shop_status st = svc_tx_run_grouped(svc, web_request_id(req), traceparent,
					    gateway_create_tx, &c);
	if (st != SHOP_OK) {
		gateway_fail(res, st, NULL);
		goto out;
	}
	if (c.key_conflict) {
		web_respond_error(res, 422, "idempotency_key_reused",
				  "this Idempotency-Key was used with a different request body",
				  NULL);
		goto out;
	}
	char location[sizeof(GATEWAY_ORDERS_PREFIX) + IDS_UUID_SIZE];
	snprintf(location, sizeof(location), GATEWAY_ORDERS_PREFIX "%s", c.order_id);
	web_response_header(res, "Location", location);
	web_response_header(res, "traceparent", traceparent);
	if (c.replayed)
		web_response_header(res, "Idempotent-Replayed", "true");
	web_respond_json(res, c.status, cJSON_Parse(c.response));
	struct log_ids ids = { .order_id = c.order_id, .correlation_id = web_request_id(req) };
	log_debug(&ids, c.replayed ? "order request replayed" : "order accepted");
out:
	free(c.response);
	free(canonical);
	free(request);
}

/* ---- GET /orders/{id} ------------------------------------------------- */

/* Whether the strings of a stored view can go into JSON as they are. */
static bool gateway_view_texts_valid(const struct gateway_view *v)
{
	const char *texts[] = { v->reason, v->customer_id, v->currency };
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i] && !ct_utf8_valid(texts[i]))
			return false;
	for (size_t i = 0; i < v->timeline_len; i++) {
		const struct gateway_timeline_entry *t = &v->timeline[i];
		const char *entry[] = { t->type, t->source, t->time, t->event_id, t->detail };
		for (size_t j = 0; j < sizeof(entry) / sizeof(entry[0]); j++)
			if (entry[j] && !ct_utf8_valid(entry[j]))
				return false;
	}
	return true;
}

shop_status gateway_view_json(const char *order_id, const struct gateway_view *v, cJSON **ret_json)
{
	/* The row is read back from the gateway's own file, but a damaged
	 * file or a hand edit must give a clear error, not a response that is
	 * not JSON (bytes that are not UTF-8) or not the documented shape. */
	cJSON *items = v->items ? cJSON_Parse(v->items) : cJSON_CreateArray();
	if (!cJSON_IsArray(items) || !gateway_view_texts_valid(v) ||
	    (v->items && !ct_utf8_valid(v->items))) {
		cJSON_Delete(items);
		return SHOP_E_INTERNAL;
	}
	cJSON *o = cJSON_CreateObject();
	char stamp[CLOCK_RFC3339_SIZE];
	cJSON_AddStringToObject(o, "order_id", order_id);
	cJSON_AddStringToObject(o, "status", gateway_status_name(v->status));
	if (v->reason)
		cJSON_AddStringToObject(o, "reason", v->reason);
	cJSON_AddStringToObject(o, "customer_id", v->customer_id ? v->customer_id : "");
	cJSON_AddItemToObject(o, "items", items);
	if (v->has_total)
		cJSON_AddNumberToObject(o, "total_cents", (double)v->total_cents);
	else
		cJSON_AddNullToObject(o, "total_cents");
	if (v->currency)
		cJSON_AddStringToObject(o, "currency", v->currency);
	else
		cJSON_AddNullToObject(o, "currency");
	clock_rfc3339(v->created_at_ms, stamp);
	cJSON_AddStringToObject(o, "created_at", stamp);
	clock_rfc3339(v->updated_at_ms, stamp);
	cJSON_AddStringToObject(o, "updated_at", stamp);
	cJSON *timeline = cJSON_AddArrayToObject(o, "timeline");
	for (size_t i = 0; i < v->timeline_len; i++) {
		const struct gateway_timeline_entry *t = &v->timeline[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "type", t->type);
		cJSON_AddStringToObject(e, "source", t->source);
		cJSON_AddStringToObject(e, "time", t->time);
		cJSON_AddStringToObject(e, "event_id", t->event_id);
		if (t->detail)
			cJSON_AddStringToObject(e, "detail", t->detail);
		cJSON_AddItemToArray(timeline, e);
	}
	*ret_json = o;
	return SHOP_OK;
}

/* Reads the view on a pooled connection, given back at once so that a
 * waiting GET holds none. */
shop_status gateway_order_read(struct svc *svc, const char *order_id, struct gateway_view *ret_view)
{
	struct db *db = NULL;
	shop_status st = svc_db_acquire(svc, &db);
	if (st == SHOP_OK)
		st = gateway_store_view_get(db, order_id, ret_view);
	svc_db_release(svc, db);
	return st;
}

void gateway_order_respond(const char *order_id, shop_status st, const struct gateway_view *v,
			   struct web_response *res)
{
	if (st != SHOP_OK) {
		gateway_fail(res, st, NULL);
		return;
	}
	cJSON *json = NULL;
	if (gateway_view_json(order_id, v, &json) == SHOP_OK) {
		web_respond_json(res, 200, json);
		return;
	}
	struct log_ids ids = { .order_id = order_id };
	log_error(&ids, "the stored view of this order is damaged "
			"(items not a JSON array, or text not UTF-8)");
	gateway_fail(res, SHOP_E_INTERNAL, NULL);
}

/* GET /orders/{id}[?wait=N]. Without wait, or when the order is final
 * already, it answers at once. Otherwise the request is left pending (it
 * holds no thread: libs/web's pool mode) and handed to the long-poll thread
 * (gateway_long_polls.c), which answers it when the order is final or the
 * time is up. */
static void gateway_order_get(struct svc *svc, const struct web_request *req, const char *order_id,
			      struct web_response *res)
{
	struct gateway_ctx *ctx = svc_ctx(svc);
	int64_t started_us = clock_mono_us();
	int64_t wait_s = 0;
	if (!gateway_wait_read(web_request_query(req, "wait"), &wait_s)) {
		web_respond_error(res, 400, "invalid_wait",
				  "wait must be a whole number of seconds from 0 to 30", NULL);
		return;
	}
	if (!ids_uuid_valid(order_id)) {
		gateway_fail(res, SHOP_E_NOT_FOUND, NULL);
		return;
	}
	if (wait_s > 0 && !gateway_long_poll_enter(ctx)) {
		web_response_header(res, "Retry-After", GATEWAY_LONG_POLL_RETRY_AFTER_S);
		web_respond_error(res, 503, "too_many_waiters",
				  "too many GETs are waiting (?wait=); retry, or ask without wait",
				  NULL);
		return;
	}
	/* The generation before the read: a commit after it wakes the
	 * long-poll thread to read again, so none is missed in between. */
	uint64_t seen = gateway_changes_seen(ctx);
	struct gateway_view view = { 0 };
	shop_status st = gateway_order_read(svc, order_id, &view);
	bool wait = wait_s > 0 && st == SHOP_OK && !gateway_status_final(view.status);
	if (!wait)
		gateway_order_respond(order_id, st, &view, res);
	gateway_store_view_release(&view);
	if (wait_s == 0)
		return;
	struct web_pending *pending = NULL;
	if (!wait || web_respond_pending(res, req, &pending) != SHOP_OK) {
		/* Answered now: by the read, or refused by the server (503 busy). */
		gateway_long_poll_leave(ctx);
		return;
	}
	gateway_long_poll_wait(svc, order_id, seen, clock_mono_ms() + wait_s * 1000, started_us,
			       pending);
}

/* ---- POST /orders/{id}/cancel ----------------------------------------- */

static shop_status gateway_cancel_tx(struct svc_tx *tx, void *arg)
{
	struct ct_cancel_order cmd = { 0 };
	snprintf(cmd.order_id, sizeof(cmd.order_id), "%s", (const char *)arg);
	return svc_emit(tx, CT_MSG_CANCEL_ORDER, cmd.order_id, &cmd);
}

static void gateway_order_cancel(struct svc *svc, const struct web_request *req,
				 const char *order_id, struct web_response *res)
{
	struct db *db = NULL;
	enum gateway_status status = GATEWAY_PENDING;

	if (!ids_uuid_valid(order_id)) {
		gateway_fail(res, SHOP_E_NOT_FOUND, NULL);
		return;
	}
	shop_status st = svc_db_acquire(svc, &db);
	if (st == SHOP_OK)
		st = gateway_store_view_status(db, order_id, &status);
	svc_db_release(svc, db);
	if (st != SHOP_OK) {
		gateway_fail(res, st, NULL);
		return;
	}
	if (gateway_status_final(status)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the order is already %s", gateway_status_name(status));
		gateway_fail(res, SHOP_E_CONFLICT, msg);
		return;
	}
	/* Orders decides: if the order moved on meanwhile (shipped), the
	 * command is a no-op there and the timeline shows what happened. */
	char traceparent[IDS_TRACEPARENT_SIZE];
	ids_traceparent_child(web_request_header(req, "traceparent"), traceparent);
	st = svc_tx_run_grouped(svc, web_request_id(req), traceparent, gateway_cancel_tx,
				(void *)order_id);
	if (st != SHOP_OK) {
		gateway_fail(res, st, NULL);
		return;
	}
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "order_id", order_id);
	cJSON_AddStringToObject(body, "status", gateway_status_name(status));
	cJSON_AddStringToObject(body, "cancellation", "requested");
	char location[sizeof(GATEWAY_ORDERS_PREFIX) + IDS_UUID_SIZE];
	snprintf(location, sizeof(location), GATEWAY_ORDERS_PREFIX "%s", order_id);
	web_response_header(res, "Location", location);
	web_respond_json(res, 202, body);
}

/* ---- routing ---------------------------------------------------------- */

/* Route templates for metrics: the same matching as gateway_http, and an
 * order id never becomes a label value. */
const char *gateway_route_of(const char *path)
{
	if (strcmp(path, "/products") == 0 || strcmp(path, "/orders") == 0)
		return path[1] == 'p' ? "/products" : "/orders";
	size_t prefix = strlen(GATEWAY_ORDERS_PREFIX);
	if (strncmp(path, GATEWAY_ORDERS_PREFIX, prefix) != 0 || !path[prefix])
		return SVC_HTTP_ROUTE_OTHER;
	const char *slash = strchr(path + prefix, '/');
	if (!slash)
		return "/orders/{id}";
	if (slash > path + prefix && strcmp(slash, GATEWAY_CANCEL_SUFFIX) == 0)
		return "/orders/{id}/cancel";
	return SVC_HTTP_ROUTE_OTHER;
}

void gateway_http(void *ctx, const struct web_request *req, struct web_response *res)
{
	struct svc *svc = ctx;
	const char *path = web_request_path(req);
	const char *method = web_request_method(req);
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

	if (strcmp(path, "/products") == 0) {
		if (get)
			gateway_products(svc, res);
		else
			gateway_method_not_allowed(res, "GET");
		return;
	}
	if (strcmp(path, "/orders") == 0) {
		if (post)
			gateway_order_create(svc, req, res);
		else
			gateway_method_not_allowed(res, "POST");
		return;
	}
	size_t prefix = strlen(GATEWAY_ORDERS_PREFIX);
	if (strncmp(path, GATEWAY_ORDERS_PREFIX, prefix) == 0) {
		const char *rest = path + prefix;
		const char *slash = strchr(rest, '/');
		char id[IDS_UUID_SIZE + 1];
		size_t id_len = slash ? (size_t)(slash - rest) : strlen(rest);
		if (id_len > 0 && id_len < sizeof(id)) {
			memcpy(id, rest, id_len);
			id[id_len] = '\0';
			if (!slash) {
				if (get)
					gateway_order_get(svc, req, id, res);
				else
					gateway_method_not_allowed(res, "GET");
				return;
			}
			if (strcmp(slash, GATEWAY_CANCEL_SUFFIX) == 0) {
				if (post)
					gateway_order_cancel(svc, req, id, res);
				else
					gateway_method_not_allowed(res, "POST");
				return;
			}
		}
	}
	gateway_fail(res, SHOP_E_NOT_FOUND, "no such resource");
}
