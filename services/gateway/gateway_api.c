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
 */
#include "gateway.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATEWAY_ORDERS_PREFIX "/orders/"
#define GATEWAY_CANCEL_SUFFIX "/cancel"

/* The one table from status to HTTP for failures that are not the client's. */
static void gateway_fail(struct web_response *res, shop_status st)
{
	if (st == SHOP_E_UNAVAILABLE || st == SHOP_E_TIMEOUT)
		web_respond_error(res, 503, "unavailable",
				  "the gateway's database is busy or unavailable; retry", NULL);
	else
		web_respond_error(res, 500, "internal", "unexpected error", NULL);
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
		cJSON_AddStringToObject(d, "field", errs->item[i].path[0] ? errs->item[i].path : "/");
		cJSON_AddStringToObject(d, "problem", errs->item[i].problem);
		cJSON_AddItemToArray(details, d);
	}
	return details;
}

/* ---- GET /products ---------------------------------------------------- */

static void gateway_products(struct svc *svc, struct web_response *res)
{
	struct db *db = NULL;
	struct db_result *r = NULL;
	shop_status st = svc_db_acquire(svc, &db);
	if (st == SHOP_OK)
		st = db_query(db,
			      "SELECT sku, name, price_cents, currency, available FROM catalogue "
			      "ORDER BY sku",
			      DB_NOARGS, &r);
	if (st != SHOP_OK) {
		gateway_fail(res, st);
		goto out;
	}
	cJSON *body = cJSON_CreateObject();
	cJSON *products = cJSON_AddArrayToObject(body, "products");
	for (int i = 0; i < db_result_rows(r); i++) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "sku", db_result_text(r, i, 0));
		cJSON_AddStringToObject(p, "name", db_result_text(r, i, 1));
		cJSON_AddNumberToObject(p, "price_cents", (double)db_result_int(r, i, 2));
		cJSON_AddStringToObject(p, "currency", db_result_text(r, i, 3));
		cJSON_AddNumberToObject(p, "available", (double)db_result_int(r, i, 4));
		cJSON_AddItemToArray(products, p);
	}
	web_respond_json(res, 200, body);
out:
	db_result_free(r);
	svc_db_release(svc, db);
}

/* ---- POST /orders ----------------------------------------------------- */

struct gateway_create {
	const struct ct_place_order_request *request;
	const char *idem_key;   /* NULL without the header */
	const char *canonical;  /* the request as compact JSON, compared on replay */
	/* results */
	bool key_conflict;
	bool replayed;
	int status;
	char *response;
	char order_id[IDS_UUID_SIZE];
};

/* Reads the record of c->idem_key, which the caller's insert found taken:
 * the same body replays its answer, another is refused. */
static shop_status gateway_create_replay(struct svc_tx *tx, struct gateway_create *c)
{
	struct db_result *r = NULL;
	shop_status st = db_query(tx->db,
				  "SELECT request, status, response, order_id FROM idempotency_keys "
				  "WHERE idem_key = $1",
				  DB_ARGS(c->idem_key), &r);
	if (st != SHOP_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		/* Purged between the two statements (only a 24 h old key can be):
		 * the client's retry finds the key free. */
		st = SHOP_E_UNAVAILABLE;
		goto out;
	}
	free(c->response);
	c->response = NULL;
	if (strcmp(db_result_text(r, 0, 0), c->canonical) != 0) {
		c->key_conflict = true;
	} else {
		c->replayed = true;
		c->status = (int)db_result_int(r, 0, 1);
		c->response = xstrdup(db_result_text(r, 0, 2));
		snprintf(c->order_id, sizeof(c->order_id), "%s", db_result_text(r, 0, 3));
	}
out:
	db_result_free(r);
	return st;
}

static shop_status gateway_create_tx(struct svc_tx *tx, void *arg)
{
	struct gateway_create *c = arg;
	struct ct_place_order *cmd = xcalloc(1, sizeof(*cmd));
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
		/* The key is claimed first, by the insert itself: a concurrent
		 * request with the same key blocks on this row (PostgreSQL) or on
		 * the write lock (SQLite) until this transaction ends, then finds
		 * the key taken and replays. A SELECT before the INSERT would let
		 * both pass on PostgreSQL and fail one on the unique key. */
		int64_t claimed = 0;
		st = db_exec(tx->db,
			     "INSERT INTO idempotency_keys (idem_key, request, status, response, "
			     "order_id, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) "
			     "ON CONFLICT (idem_key) DO NOTHING",
			     DB_ARGS(c->idem_key, c->canonical, DB_I64(c->status), c->response,
				     c->order_id, DB_I64(tx->now_ms)),
			     &claimed);
		if (st != SHOP_OK)
			goto out;
		if (claimed == 0) {
			st = gateway_create_replay(tx, c); /* replay or refusal: nothing is written */
			goto out;
		}
	}

	const struct ct_place_order_request *q = c->request;
	snprintf(cmd->order_id, sizeof(cmd->order_id), "%s", c->order_id);
	memcpy(cmd->customer_id, q->customer_id, sizeof(cmd->customer_id));
	memcpy(cmd->email, q->email, sizeof(cmd->email));
	memcpy(cmd->items, q->items, sizeof(cmd->items));
	cmd->items_len = q->items_len;
	cmd->payment = q->payment;
	cmd->shipping_address = q->shipping_address;
	st = svc_emit(tx, CT_MSG_PLACE_ORDER, c->order_id, cmd);
	if (st != SHOP_OK)
		goto out;

	items = cJSON_CreateArray();
	for (size_t i = 0; i < q->items_len; i++)
		cJSON_AddItemToArray(items, ct_order_line_encode(&q->items[i]));
	items_text = cJSON_PrintUnformatted(items);
	st = db_exec(tx->db,
		     "INSERT INTO orders_view (order_id, status, customer_id, items, created_at_ms, "
		     "updated_at_ms) VALUES ($1, 'PENDING', $2, $3, $4, $4)",
		     DB_ARGS(c->order_id, q->customer_id, items_text, DB_I64(tx->now_ms)), NULL);
out:
	cJSON_Delete(body);
	cJSON_Delete(items);
	free(items_text);
	free(cmd);
	return st;
}

shop_status gateway_idempotency_purge(struct db *db, int64_t now_ms, int64_t retention_ms,
				      int64_t *ret_purged)
{
	int64_t purged = 0;
	shop_status st = db_exec(db, "DELETE FROM idempotency_keys WHERE created_at_ms < $1",
				 DB_ARGS(DB_I64(now_ms - retention_ms)), &purged);
	if (ret_purged)
		*ret_purged = st == SHOP_OK ? purged : 0;
	return st;
}

static shop_status gateway_idempotency_purge_task(struct svc *svc, struct db *db)
{
	int64_t purged = 0;
	shop_status st = gateway_idempotency_purge(db, clock_now_ms(),
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

static bool gateway_idem_key_valid(const char *key)
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

static void gateway_order_create(struct svc *svc, const struct web_request *req,
				 struct web_response *res)
{
	cJSON *json = NULL;
	char *canonical = NULL;
	struct ct_place_order_request *request = xcalloc(1, sizeof(*request));
	struct ct_errors errs = { 0 };
	struct gateway_create c = { 0 };

	if (!gateway_is_json(web_request_header(req, "Content-Type"))) {
		web_respond_error(res, 415, "unsupported_media_type",
				  "Content-Type must be application/json", NULL);
		goto out;
	}
	size_t len = 0;
	const char *body = web_request_body(req, &len);
	/* Exactly one JSON value: an order followed by more text is not one the
	 * client can be sure we read as it meant. */
	if (ct_json_parse(body, len, &json, &errs) != SHOP_OK) {
		web_respond_error(res, 400, "malformed_json", "the body is not valid JSON",
				  gateway_details(&errs));
		goto out;
	}
	if (ct_place_order_request_parse(json, request, &errs) != SHOP_OK) {
		web_respond_error(res, 422, "invalid_order", "the order is not valid",
				  gateway_details(&errs));
		goto out;
	}
	const char *key = web_request_header(req, "Idempotency-Key");
	if (key && !gateway_idem_key_valid(key)) {
		web_respond_error(res, 400, "invalid_idempotency_key",
				  "Idempotency-Key must be 1 to 255 printable characters", NULL);
		goto out;
	}

	/* Re-encoded from the parsed request: the schema fixes the field order,
	 * so a replay matches whatever the spacing or key order of its body. */
	cJSON *encoded = ct_place_order_request_encode(request);
	canonical = cJSON_PrintUnformatted(encoded);
	cJSON_Delete(encoded);
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
		gateway_fail(res, st);
		goto out;
	}
	if (c.key_conflict) {
		web_respond_error(res, 422, "idempotency_key_reused",
				  "this Idempotency-Key was used with a different request body", NULL);
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
	log_info(&ids, c.replayed ? "order request replayed" : "order accepted");
out:
	free(c.response);
	free(canonical);
	free(request);
	cJSON_Delete(json);
}

/* ---- GET /orders/{id} ------------------------------------------------- */

/* Reads the view row; *ret_found false when the order is unknown. */
static shop_status gateway_order_read(struct db *db, const char *order_id, cJSON **ret_body,
				      enum gateway_status *ret_status, bool *ret_found)
{
	struct db_result *r = NULL, *t = NULL;
	shop_status st = db_query(db,
				  "SELECT status, reason, customer_id, items, total_cents, currency, "
				  "created_at_ms, updated_at_ms FROM orders_view WHERE order_id = $1",
				  DB_ARGS(order_id), &r);
	if (st != SHOP_OK)
		goto out;
	*ret_found = db_result_rows(r) > 0;
	if (!*ret_found)
		goto out;
	if (!gateway_status_parse(db_result_text(r, 0, 0), ret_status)) {
		st = SHOP_E_INTERNAL;
		goto out;
	}
	st = db_query(db,
		      "SELECT type, source, time, event_id, detail FROM timeline WHERE order_id = $1 "
		      "ORDER BY time, seq LIMIT $2",
		      DB_ARGS(order_id, DB_I64(GATEWAY_TIMELINE_MAX)), &t);
	if (st != SHOP_OK)
		goto out;

	cJSON *o = cJSON_CreateObject();
	char stamp[CLOCK_RFC3339_SIZE];
	cJSON_AddStringToObject(o, "order_id", order_id);
	cJSON_AddStringToObject(o, "status", db_result_text(r, 0, 0));
	if (db_result_text(r, 0, 1))
		cJSON_AddStringToObject(o, "reason", db_result_text(r, 0, 1));
	cJSON_AddStringToObject(o, "customer_id", db_result_text(r, 0, 2));
	cJSON *items = cJSON_Parse(db_result_text(r, 0, 3));
	cJSON_AddItemToObject(o, "items", items ? items : cJSON_CreateArray());
	if (db_result_text(r, 0, 4))
		cJSON_AddNumberToObject(o, "total_cents", (double)db_result_int(r, 0, 4));
	else
		cJSON_AddNullToObject(o, "total_cents");
	if (db_result_text(r, 0, 5))
		cJSON_AddStringToObject(o, "currency", db_result_text(r, 0, 5));
	else
		cJSON_AddNullToObject(o, "currency");
	clock_rfc3339(db_result_int(r, 0, 6), stamp);
	cJSON_AddStringToObject(o, "created_at", stamp);
	clock_rfc3339(db_result_int(r, 0, 7), stamp);
	cJSON_AddStringToObject(o, "updated_at", stamp);
	cJSON *timeline = cJSON_AddArrayToObject(o, "timeline");
	for (int i = 0; i < db_result_rows(t); i++) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "type", db_result_text(t, i, 0));
		cJSON_AddStringToObject(e, "source", db_result_text(t, i, 1));
		cJSON_AddStringToObject(e, "time", db_result_text(t, i, 2));
		cJSON_AddStringToObject(e, "event_id", db_result_text(t, i, 3));
		if (db_result_text(t, i, 4))
			cJSON_AddStringToObject(e, "detail", db_result_text(t, i, 4));
		cJSON_AddItemToArray(timeline, e);
	}
	*ret_body = o;
out:
	db_result_free(t);
	db_result_free(r);
	return st;
}

static void gateway_order_get(struct svc *svc, const struct web_request *req, const char *order_id,
			      struct web_response *res)
{
	int64_t wait_s = 0;
	const char *wait = web_request_query(req, "wait");
	if (wait) {
		char *end = NULL;
		long v = strtol(wait, &end, 10);
		if (!*wait || *end || v < 0 || v > GATEWAY_WAIT_MAX_S) {
			web_respond_error(res, 400, "invalid_wait",
					  "wait must be a whole number of seconds from 0 to 30", NULL);
			return;
		}
		wait_s = v;
	}
	if (!ids_uuid_valid(order_id)) {
		web_respond_error(res, 404, "not_found", "no such order", NULL);
		return;
	}

	/* Long-poll: re-read until the order is final or the time is up. The
	 * connection is released between reads so waiting clients hold none. */
	int64_t deadline = clock_mono_ms() + wait_s * 1000;
	for (;;) {
		struct db *db = NULL;
		cJSON *body = NULL;
		enum gateway_status status = GATEWAY_PENDING;
		bool found = false;
		shop_status st = svc_db_acquire(svc, &db);
		if (st == SHOP_OK)
			st = gateway_order_read(db, order_id, &body, &status, &found);
		svc_db_release(svc, db);
		if (st != SHOP_OK) {
			gateway_fail(res, st);
			return;
		}
		if (!found) {
			web_respond_error(res, 404, "not_found", "no such order", NULL);
			return;
		}
		bool final = status == GATEWAY_SHIPPED || status == GATEWAY_CANCELLED;
		if (final || clock_mono_ms() >= deadline) {
			web_respond_json(res, 200, body);
			return;
		}
		cJSON_Delete(body);
		clock_sleep_ms(GATEWAY_WAIT_POLL_MS);
	}
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
	cJSON *view = NULL;
	enum gateway_status status = GATEWAY_PENDING;
	bool found = false;

	if (!ids_uuid_valid(order_id)) {
		web_respond_error(res, 404, "not_found", "no such order", NULL);
		return;
	}
	shop_status st = svc_db_acquire(svc, &db);
	if (st == SHOP_OK)
		st = gateway_order_read(db, order_id, &view, &status, &found);
	if (st != SHOP_OK) {
		gateway_fail(res, st);
		goto out;
	}
	if (!found) {
		web_respond_error(res, 404, "not_found", "no such order", NULL);
		goto out;
	}
	if (status == GATEWAY_SHIPPED || status == GATEWAY_CANCELLED) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the order is already %s", gateway_status_name(status));
		web_respond_error(res, 409, "conflict", msg, NULL);
		goto out;
	}
	/* Orders decides: if the order moved on meanwhile (shipped), the
	 * command is a no-op there and the timeline shows what happened. */
	char traceparent[IDS_TRACEPARENT_SIZE];
	ids_traceparent_child(web_request_header(req, "traceparent"), traceparent);
	st = svc_tx_run_grouped(svc, web_request_id(req), traceparent, gateway_cancel_tx,
				(void *)order_id);
	if (st != SHOP_OK) {
		gateway_fail(res, st);
		goto out;
	}
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "order_id", order_id);
	cJSON_AddStringToObject(body, "status", gateway_status_name(status));
	cJSON_AddStringToObject(body, "cancellation", "requested");
	char location[sizeof(GATEWAY_ORDERS_PREFIX) + IDS_UUID_SIZE];
	snprintf(location, sizeof(location), GATEWAY_ORDERS_PREFIX "%s", order_id);
	web_response_header(res, "Location", location);
	web_respond_json(res, 202, body);
out:
	cJSON_Delete(view);
	svc_db_release(svc, db);
}

/* ---- routing ---------------------------------------------------------- */

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
	web_respond_error(res, 404, "not_found", "no such resource", NULL);
}
