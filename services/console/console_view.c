/*
 * console_view.c - the overview the page draws (see console.h), as a pure
 * in-memory model: the collector feeds it what it reads from NATS, the API
 * renders it as JSON. No I/O here, so tests/unit/test_console.c drives it
 * with replies and envelopes of its own.
 *
 * Invariants: every member is guarded by v->mu; every table has a fixed
 * size (a name, instance, order or SKU past it is left out, never grown);
 * an order's timeline holds each event id once, so a replayed message
 * changes nothing.
 */
#include "console.h"

#include "contracts_gen.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const console_state_names[] = { "ready", "not_ready", "gone" };
static const char *const console_order_status_names[] = { "ACCEPTED", "PENDING", "RESERVED",
							  "PAID",     "SHIPPED", "CANCELLED" };

const char *console_order_status_name(enum console_order_status s)
{
	return console_order_status_names[s];
}

static void console_copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static const char *console_json_str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

void console_view_init(struct console_view *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_init(&v->mu, NULL);
	v->pending = xcalloc(ct_n_consumers ? ct_n_consumers : 1, sizeof(*v->pending));
	v->ack_pending = xcalloc(ct_n_consumers ? ct_n_consumers : 1, sizeof(*v->ack_pending));
	v->orders = xcalloc(CONSOLE_ORDERS_MAX, sizeof(*v->orders));
	for (size_t i = 0; i < CONSOLE_ORDER_BUCKETS; i++)
		v->buckets[i] = -1;
	v->registry_ok = true;
	/* The contracts name every service that owns a stream: each is shown
	 * from the start, red until an instance of it answers. */
	for (size_t i = 0; i < ct_n_streams; i++)
		console_view_service_add(v, ct_streams[i].owner);
	console_view_service_add(v, CONSOLE_SERVICE_NAME);
}

void console_view_release(struct console_view *v)
{
	for (size_t i = 0; i < v->n_logs; i++)
		free(v->logs[(v->logs_head + i) % CONSOLE_LOGS_MAX]);
	free(v->pending);
	free(v->ack_pending);
	free(v->orders);
	pthread_mutex_destroy(&v->mu);
}

/* Called under mu (or before the view is shared). */
static size_t console_service_index(struct console_view *v, const char *name)
{
	for (size_t i = 0; i < v->n_services; i++)
		if (strcmp(v->services[i], name) == 0)
			return i;
	return SIZE_MAX;
}

static void console_service_add_locked(struct console_view *v, const char *name)
{
	if (!name || !*name || strlen(name) >= CONSOLE_NAME_MAX ||
	    console_service_index(v, name) != SIZE_MAX || v->n_services == CONSOLE_SERVICES_MAX)
		return;
	/* Sorted, so the page's rows keep their places; the outbox series
	 * move with their names. */
	size_t at = v->n_services;
	while (at > 0 && strcmp(v->services[at - 1], name) > 0)
		at--;
	memmove(v->services[at + 1], v->services[at], (v->n_services - at) * CONSOLE_NAME_MAX);
	memmove(&v->outbox[at + 1], &v->outbox[at], (v->n_services - at) * sizeof(v->outbox[0]));
	console_copy(v->services[at], CONSOLE_NAME_MAX, name);
	memset(&v->outbox[at], 0, sizeof(v->outbox[0]));
	v->n_services++;
}

void console_view_service_add(struct console_view *v, const char *name)
{
	pthread_mutex_lock(&v->mu);
	console_service_add_locked(v, name);
	pthread_mutex_unlock(&v->mu);
}

/* ---- registry ----------------------------------------------------------- */

static struct console_instance *console_instance_find(struct console_view *v, const char *service,
						      const char *id)
{
	for (size_t i = 0; i < v->n_instances; i++)
		if (strcmp(v->instances[i].id, id) == 0 &&
		    strcmp(v->instances[i].service, service) == 0)
			return &v->instances[i];
	return NULL;
}

static void console_instance_set(struct console_instance *in, enum console_instance_state s,
				 int64_t now_ms)
{
	if (in->state != s)
		in->since_ms = now_ms;
	in->state = s;
}

void console_view_ping_round(struct console_view *v, char *const *replies, size_t n, int64_t now_ms)
{
	pthread_mutex_lock(&v->mu);
	v->registry_ok = true;
	for (size_t i = 0; i < v->n_instances; i++)
		v->instances[i].misses++;
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_Parse(replies[i]);
		const char *name = console_json_str(o, "name");
		const char *id = console_json_str(o, "id");
		const char *version = console_json_str(o, "version");
		if (name && id && *name && *id && strlen(name) < CONSOLE_NAME_MAX &&
		    strlen(id) < CONSOLE_NAME_MAX) {
			console_service_add_locked(v, name);
			struct console_instance *in = console_instance_find(v, name, id);
			if (!in && v->n_instances < CONSOLE_INSTANCES_MAX) {
				in = &v->instances[v->n_instances++];
				memset(in, 0, sizeof(*in));
				console_copy(in->service, sizeof(in->service), name);
				console_copy(in->id, sizeof(in->id), id);
				in->state = CONSOLE_NOT_READY; /* until its status says */
				in->since_ms = now_ms;
				in->outbox_backlog = -1;
			}
			if (in) {
				console_copy(in->version, sizeof(in->version), version);
				in->misses = 0;
				if (in->state == CONSOLE_GONE) /* answering again */
					console_instance_set(in, CONSOLE_NOT_READY, now_ms);
			}
		}
		cJSON_Delete(o);
	}
	/* Gone after enough misses; dropped once gone long enough. */
	size_t kept = 0;
	for (size_t i = 0; i < v->n_instances; i++) {
		struct console_instance *in = &v->instances[i];
		if (in->misses >= CONSOLE_GONE_AFTER_MISSES) {
			console_instance_set(in, CONSOLE_GONE, now_ms);
			in->outbox_backlog = -1;
		}
		if (in->state == CONSOLE_GONE && now_ms - in->since_ms > CONSOLE_GONE_KEEP_MS)
			continue;
		v->instances[kept++] = *in;
	}
	v->n_instances = kept;
	pthread_mutex_unlock(&v->mu);
}

void console_view_status(struct console_view *v, const char *service, const char *id,
			 const char *json, int64_t now_ms)
{
	cJSON *o = json ? cJSON_Parse(json) : NULL;
	pthread_mutex_lock(&v->mu);
	struct console_instance *in = console_instance_find(v, service, id);
	if (in && in->state != CONSOLE_GONE) {
		const char *status = console_json_str(o, "status");
		bool ready = status && strcmp(status, "ready") == 0;
		/* No answer in time is not ready: the instance answers PING but
		 * cannot say it is well. */
		console_instance_set(in, ready ? CONSOLE_READY : CONSOLE_NOT_READY, now_ms);
		const cJSON *db = cJSON_GetObjectItemCaseSensitive(o, "database");
		in->db_ok = cJSON_IsTrue(db);
		console_copy(in->db_backend, sizeof(in->db_backend),
			     console_json_str(o, "db_backend"));
		const cJSON *backlog = cJSON_GetObjectItemCaseSensitive(o, "outbox_backlog");
		in->outbox_backlog = cJSON_IsNumber(backlog) ? (int64_t)backlog->valuedouble : -1;
	}
	pthread_mutex_unlock(&v->mu);
	cJSON_Delete(o);
}

void console_view_registry_down(struct console_view *v)
{
	pthread_mutex_lock(&v->mu);
	v->registry_ok = false;
	pthread_mutex_unlock(&v->mu);
}

/* ---- NATS nodes --------------------------------------------------------- */

static int64_t console_json_int(const cJSON *o, const char *key)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(n) ? (int64_t)n->valuedouble : 0;
}

void console_view_node(struct console_view *v, size_t i, const char *url, const char *varz,
		       int64_t now_ms)
{
	if (i >= CONSOLE_NATS_NODES_MAX)
		return;
	cJSON *o = varz ? cJSON_Parse(varz) : NULL;
	pthread_mutex_lock(&v->mu);
	if (i >= v->n_nodes)
		v->n_nodes = i + 1;
	struct console_node *nd = &v->nodes[i];
	console_copy(nd->url, sizeof(nd->url), url);
	bool up = cJSON_IsObject(o);
	if (up != nd->up || nd->since_ms == 0)
		nd->since_ms = now_ms;
	nd->up = up;
	if (up) {
		console_copy(nd->name, sizeof(nd->name), console_json_str(o, "server_name"));
		console_copy(nd->version, sizeof(nd->version), console_json_str(o, "version"));
		nd->connections = console_json_int(o, "connections");
		nd->mem_bytes = console_json_int(o, "mem");
		nd->in_msgs = console_json_int(o, "in_msgs");
		nd->out_msgs = console_json_int(o, "out_msgs");
	}
	pthread_mutex_unlock(&v->mu);
	cJSON_Delete(o);
}

/* ---- series ------------------------------------------------------------- */

static void console_series_push(struct console_series *s, int64_t value)
{
	s->v[(s->head + s->n) % CONSOLE_SERIES_POINTS] = value;
	if (s->n < CONSOLE_SERIES_POINTS)
		s->n++;
	else
		s->head = (s->head + 1) % CONSOLE_SERIES_POINTS;
}

static cJSON *console_series_json(const struct console_series *s)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < s->n; i++) {
		int64_t x = s->v[(s->head + i) % CONSOLE_SERIES_POINTS];
		cJSON_AddItemToArray(a, x < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)x));
	}
	return a;
}

void console_view_sample(struct console_view *v, const int64_t *pending, const int64_t *ack_pending)
{
	pthread_mutex_lock(&v->mu);
	for (size_t i = 0; i < ct_n_consumers; i++) {
		console_series_push(&v->pending[i], pending[i]);
		console_series_push(&v->ack_pending[i], ack_pending[i]);
	}
	/* A service's backlog is the sum of what its live instances report;
	 * unknown (null) when none reports. */
	for (size_t s = 0; s < v->n_services; s++) {
		int64_t sum = -1;
		for (size_t i = 0; i < v->n_instances; i++) {
			const struct console_instance *in = &v->instances[i];
			if (strcmp(in->service, v->services[s]) == 0 && in->outbox_backlog >= 0)
				sum = (sum < 0 ? 0 : sum) + in->outbox_backlog;
		}
		console_series_push(&v->outbox[s], sum);
	}
	pthread_mutex_unlock(&v->mu);
}

static void console_rate_add(struct console_rate *r, int64_t sec)
{
	size_t i = (size_t)(sec % CONSOLE_SERIES_POINTS);
	if (sec < 0)
		return;
	if (r->sec[i] != sec) {
		r->sec[i] = sec;
		r->count[i] = 0;
	}
	r->count[i]++;
}

/* The counts of the CONSOLE_SERIES_POINTS whole seconds before now_s. */
static cJSON *console_rate_json(const struct console_rate *r, int64_t now_s)
{
	cJSON *a = cJSON_CreateArray();
	for (int64_t s = now_s - CONSOLE_SERIES_POINTS; s < now_s; s++) {
		size_t i = (size_t)(s % CONSOLE_SERIES_POINTS);
		cJSON_AddItemToArray(a,
				     cJSON_CreateNumber(r->sec[i] == s ? (double)r->count[i] : 0));
	}
	return a;
}

/* ---- orders and stock --------------------------------------------------- */

static size_t console_order_hash(const char *id)
{
	size_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return h % CONSOLE_ORDER_BUCKETS;
}

static struct console_order *console_order_find(struct console_view *v, const char *id)
{
	for (int k = v->buckets[console_order_hash(id)]; k >= 0; k = v->orders[k].next)
		if (strcmp(v->orders[k].id, id) == 0)
			return &v->orders[k];
	return NULL;
}

/* The order's slot, taking the oldest slot (and forgetting its order) for
 * a new one. */
static struct console_order *console_order_get(struct console_view *v, const char *id)
{
	struct console_order *o = console_order_find(v, id);
	if (o)
		return o;
	int k = (int)v->next_slot;
	v->next_slot = (v->next_slot + 1) % CONSOLE_ORDERS_MAX;
	o = &v->orders[k];
	if (o->id[0]) {
		int *p = &v->buckets[console_order_hash(o->id)];
		while (*p != k)
			p = &v->orders[*p].next;
		*p = o->next;
	}
	memset(o, 0, sizeof(*o));
	console_copy(o->id, sizeof(o->id), id);
	size_t b = console_order_hash(id);
	o->next = v->buckets[b];
	v->buckets[b] = k;
	return o;
}

/* What an order event says of the order's state; -1 for an event that
 * does not move it. */
static int console_status_of(enum ct_message_id m)
{
	switch (m) {
	case CT_MSG_PLACE_ORDER:
	case CT_MSG_PLACE_ORDER_V2:
		return CONSOLE_ORDER_ACCEPTED;
	case CT_MSG_ORDER_PLACED:
	case CT_MSG_ORDER_PLACED_V2:
		return CONSOLE_ORDER_PENDING;
	case CT_MSG_ORDER_RESERVED:
		return CONSOLE_ORDER_RESERVED;
	case CT_MSG_ORDER_PAID:
		return CONSOLE_ORDER_PAID;
	case CT_MSG_ORDER_SHIPPED:
		return CONSOLE_ORDER_SHIPPED;
	case CT_MSG_ORDER_CANCELLED:
		return CONSOLE_ORDER_CANCELLED;
	default:
		return -1;
	}
}

static bool console_status_final(enum console_order_status s)
{
	return s == CONSOLE_ORDER_SHIPPED || s == CONSOLE_ORDER_CANCELLED;
}

static void console_stock_apply(struct console_view *v, const cJSON *data, int64_t now_ms)
{
	const char *sku = console_json_str(data, "sku");
	int64_t revision = console_json_int(data, "revision");
	if (!sku || !*sku || strlen(sku) >= CONSOLE_NAME_MAX)
		return;
	struct console_sku *k = NULL;
	for (size_t i = 0; i < v->n_skus && !k; i++)
		if (strcmp(v->skus[i].sku, sku) == 0)
			k = &v->skus[i];
	if (!k) {
		if (v->n_skus == CONSOLE_SKUS_MAX)
			return;
		/* Sorted by SKU, so the table keeps its order. */
		size_t at = v->n_skus;
		while (at > 0 && strcmp(v->skus[at - 1].sku, sku) > 0)
			at--;
		memmove(&v->skus[at + 1], &v->skus[at], (v->n_skus - at) * sizeof(v->skus[0]));
		k = &v->skus[at];
		memset(k, 0, sizeof(*k));
		console_copy(k->sku, sizeof(k->sku), sku);
		v->n_skus++;
	}
	/* The highest revision wins: events of one SKU may come replayed. */
	if (revision <= k->revision)
		return;
	k->revision = revision;
	k->available = console_json_int(data, "available");
	k->price_cents = console_json_int(data, "price_cents");
	console_copy(k->name, sizeof(k->name), console_json_str(data, "name"));
	console_copy(k->currency, sizeof(k->currency), console_json_str(data, "currency"));
	k->changed_ms = now_ms;
}

void console_view_event(struct console_view *v, const char *data, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(data, len);
	const char *type = console_json_str(root, "type");
	const char *id = console_json_str(root, "id");
	const char *subject = console_json_str(root, "subject");
	const char *time = console_json_str(root, "time");
	const struct ct_message *m = NULL;
	for (size_t i = 0; type && i < CT_MSG__COUNT && !m; i++)
		if (strcmp(ct_messages[i].type, type) == 0)
			m = &ct_messages[i];
	int64_t at_ms = -1;
	if (!m || !id || !time || console_rfc3339_parse(time, &at_ms) != SHOP_OK)
		goto out;
	pthread_mutex_lock(&v->mu);
	if (m->id == CT_MSG_STOCK_LEVEL_CHANGED) {
		console_stock_apply(v, cJSON_GetObjectItemCaseSensitive(root, "data"), at_ms);
	} else if (subject && console_order_id_valid(subject)) {
		struct console_order *o = console_order_get(v, subject);
		bool seen = false;
		for (size_t i = 0; i < o->n_events && !seen; i++)
			seen = strcmp(o->events[i].id, id) == 0;
		if (!seen) {
			if (o->n_events < CONSOLE_TIMELINE_MAX) {
				struct console_event *e = &o->events[o->n_events++];
				console_copy(e->id, sizeof(e->id), id);
				console_copy(e->title, sizeof(e->title), m->title);
				console_copy(e->source, sizeof(e->source), m->producer);
				console_copy(e->time, sizeof(e->time), time);
			}
			int s = console_status_of(m->id);
			/* A final state stays; otherwise the further state wins
			 * (streams are read side by side, so a later state of
			 * the order may come first). */
			if (s >= 0 &&
			    (!o->tracked || (!console_status_final(o->status) &&
					     (s > (int)o->status ||
					      console_status_final((enum console_order_status)s)))))
				o->status = (enum console_order_status)s;
			o->tracked = o->tracked || s >= 0;
			if (at_ms > o->last_ms)
				o->last_ms = at_ms;
			if (m->id == CT_MSG_PLACE_ORDER || m->id == CT_MSG_PLACE_ORDER_V2)
				console_rate_add(&v->accepted, at_ms / 1000);
			else if (m->id == CT_MSG_ORDER_SHIPPED)
				console_rate_add(&v->shipped, at_ms / 1000);
			else if (m->id == CT_MSG_ORDER_CANCELLED)
				console_rate_add(&v->cancelled, at_ms / 1000);
		}
	}
	pthread_mutex_unlock(&v->mu);
out:
	cJSON_Delete(root);
}

void console_view_log(struct console_view *v, const char *data, size_t len)
{
	if (len > CONSOLE_LOG_LINE_MAX)
		len = CONSOLE_LOG_LINE_MAX;
	char *line = xstrndup(data, len);
	pthread_mutex_lock(&v->mu);
	if (v->n_logs == CONSOLE_LOGS_MAX) {
		free(v->logs[v->logs_head]);
		v->logs_head = (v->logs_head + 1) % CONSOLE_LOGS_MAX;
		v->n_logs--;
	}
	v->logs[(v->logs_head + v->n_logs) % CONSOLE_LOGS_MAX] = line;
	v->n_logs++;
	pthread_mutex_unlock(&v->mu);
}

/* ---- rendering ---------------------------------------------------------- */

static cJSON *console_services_json(struct console_view *v)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t s = 0; s < v->n_services; s++) {
		cJSON *svc = cJSON_CreateObject();
		cJSON *list = cJSON_CreateArray();
		int ready = 0;
		cJSON_AddStringToObject(svc, "service", v->services[s]);
		for (size_t i = 0; i < v->n_instances; i++) {
			const struct console_instance *in = &v->instances[i];
			if (strcmp(in->service, v->services[s]) != 0)
				continue;
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "id", in->id);
			cJSON_AddStringToObject(o, "version", in->version);
			cJSON_AddStringToObject(o, "state", console_state_names[in->state]);
			cJSON_AddNumberToObject(o, "since_ms", (double)in->since_ms);
			if (in->db_backend[0]) {
				cJSON_AddStringToObject(o, "db_backend", in->db_backend);
				cJSON_AddBoolToObject(o, "database", in->db_ok);
			}
			if (in->outbox_backlog >= 0)
				cJSON_AddNumberToObject(o, "outbox_backlog",
							(double)in->outbox_backlog);
			cJSON_AddItemToArray(list, o);
			ready += in->state == CONSOLE_READY;
		}
		/* Up: at least one instance ready. */
		cJSON_AddStringToObject(svc, "state", ready > 0 ? "up" : "down");
		cJSON_AddNumberToObject(svc, "ready", ready);
		cJSON_AddItemToObject(svc, "instances", list);
		cJSON_AddItemToObject(svc, "outbox_backlog", console_series_json(&v->outbox[s]));
		cJSON_AddItemToArray(a, svc);
	}
	return a;
}

/* PostgreSQL as the instances on it see it: up when one that is live
 * reaches its database, down when every live one fails to, unknown when no
 * live instance uses it. */
static const char *console_postgres_state(const struct console_view *v)
{
	int reach = 0, fail = 0;
	for (size_t i = 0; i < v->n_instances; i++) {
		const struct console_instance *in = &v->instances[i];
		if (in->state == CONSOLE_GONE || strcmp(in->db_backend, "postgres") != 0)
			continue;
		if (in->db_ok)
			reach++;
		else
			fail++;
	}
	return reach ? "up" : fail ? "down" : "unknown";
}

static cJSON *console_nodes_json(const struct console_view *v)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct console_node *nd = &v->nodes[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "url", nd->url);
		cJSON_AddStringToObject(o, "state", nd->up ? "up" : "down");
		cJSON_AddNumberToObject(o, "since_ms", (double)nd->since_ms);
		if (nd->name[0])
			cJSON_AddStringToObject(o, "name", nd->name);
		if (nd->version[0])
			cJSON_AddStringToObject(o, "version", nd->version);
		if (nd->up) {
			cJSON_AddNumberToObject(o, "connections", (double)nd->connections);
			cJSON_AddNumberToObject(o, "mem_bytes", (double)nd->mem_bytes);
			cJSON_AddNumberToObject(o, "in_msgs", (double)nd->in_msgs);
			cJSON_AddNumberToObject(o, "out_msgs", (double)nd->out_msgs);
		}
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *console_consumers_json(const struct console_view *v)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < ct_n_consumers; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "service", ct_consumers[i].service);
		cJSON_AddStringToObject(o, "stream", ct_consumers[i].stream);
		cJSON_AddStringToObject(o, "durable", ct_consumers[i].durable);
		cJSON_AddItemToObject(o, "pending", console_series_json(&v->pending[i]));
		cJSON_AddItemToObject(o, "ack_pending", console_series_json(&v->ack_pending[i]));
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *console_orders_json(const struct console_view *v, int64_t now_ms)
{
	cJSON *o = cJSON_CreateObject();
	int64_t counts[CONSOLE_ORDER__COUNT] = { 0 };
	for (size_t k = 0; k < CONSOLE_ORDERS_MAX; k++)
		if (v->orders[k].id[0] && v->orders[k].tracked &&
		    now_ms - v->orders[k].last_ms <= CONSOLE_IN_FLIGHT_MAX_AGE_MS)
			counts[v->orders[k].status]++;
	cJSON *in_flight = cJSON_CreateObject();
	for (int s = 0; s < CONSOLE_ORDER__COUNT; s++)
		if (!console_status_final((enum console_order_status)s))
			cJSON_AddNumberToObject(in_flight, console_order_status_names[s],
						(double)counts[s]);
	cJSON_AddItemToObject(o, "in_flight", in_flight);
	cJSON_AddItemToObject(o, "accepted_per_s", console_rate_json(&v->accepted, now_ms / 1000));
	cJSON_AddItemToObject(o, "shipped_per_s", console_rate_json(&v->shipped, now_ms / 1000));
	cJSON_AddItemToObject(o, "cancelled_per_s",
			      console_rate_json(&v->cancelled, now_ms / 1000));
	/* The most recent orders first, for the page's list. */
	cJSON *recent = cJSON_CreateArray();
	for (size_t i = 0; i < CONSOLE_ORDERS_MAX && cJSON_GetArraySize(recent) < 20; i++) {
		size_t k = (v->next_slot + CONSOLE_ORDERS_MAX - 1 - i) % CONSOLE_ORDERS_MAX;
		if (!v->orders[k].id[0])
			break;
		if (!v->orders[k].tracked)
			continue;
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "order_id", v->orders[k].id);
		cJSON_AddStringToObject(r, "status",
					console_order_status_names[v->orders[k].status]);
		cJSON_AddItemToArray(recent, r);
	}
	cJSON_AddItemToObject(o, "recent", recent);
	return o;
}

static cJSON *console_stock_json(const struct console_view *v)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < v->n_skus; i++) {
		const struct console_sku *k = &v->skus[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "sku", k->sku);
		cJSON_AddStringToObject(o, "name", k->name);
		cJSON_AddNumberToObject(o, "available", (double)k->available);
		cJSON_AddNumberToObject(o, "price_cents", (double)k->price_cents);
		cJSON_AddStringToObject(o, "currency", k->currency);
		cJSON_AddNumberToObject(o, "revision", (double)k->revision);
		cJSON_AddNumberToObject(o, "changed_ms", (double)k->changed_ms);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *console_logs_json(const struct console_view *v)
{
	cJSON *a = cJSON_CreateArray();
	/* Newest first. */
	for (size_t i = v->n_logs; i-- > 0;) {
		const char *line = v->logs[(v->logs_head + i) % CONSOLE_LOGS_MAX];
		cJSON *o = cJSON_Parse(line);
		cJSON_AddItemToArray(a, cJSON_IsObject(o) ? o : cJSON_CreateString(line));
		if (!cJSON_IsObject(o))
			cJSON_Delete(o);
	}
	return a;
}

cJSON *console_view_overview(struct console_view *v, int64_t now_ms)
{
	cJSON *o = cJSON_CreateObject();
	pthread_mutex_lock(&v->mu);
	cJSON_AddNumberToObject(o, "now_ms", (double)now_ms);
	cJSON_AddNumberToObject(o, "sample_ms", CONSOLE_SAMPLE_MS);
	cJSON_AddBoolToObject(o, "registry", v->registry_ok);
	cJSON_AddItemToObject(o, "services", console_services_json(v));
	cJSON_AddItemToObject(o, "nats", console_nodes_json(v));
	cJSON *pg = cJSON_CreateObject();
	cJSON_AddStringToObject(pg, "state", console_postgres_state(v));
	cJSON_AddItemToObject(o, "postgres", pg);
	cJSON_AddItemToObject(o, "consumers", console_consumers_json(v));
	cJSON_AddItemToObject(o, "orders", console_orders_json(v, now_ms));
	cJSON_AddItemToObject(o, "stock", console_stock_json(v));
	cJSON_AddItemToObject(o, "logs", console_logs_json(v));
	pthread_mutex_unlock(&v->mu);
	return o;
}

cJSON *console_view_order(struct console_view *v, const char *order_id)
{
	cJSON *o = NULL;
	pthread_mutex_lock(&v->mu);
	const struct console_order *ord = console_order_find(v, order_id);
	if (!ord)
		goto out;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "order_id", ord->id);
	cJSON_AddStringToObject(o, "status",
				ord->tracked ? console_order_status_names[ord->status] : "UNKNOWN");
	cJSON *events = cJSON_AddArrayToObject(o, "timeline");
	/* In time order: streams are read side by side, so arrival order is
	 * not time order across services. RFC 3339 UTC stamps sort as text. */
	size_t idx[CONSOLE_TIMELINE_MAX];
	for (size_t i = 0; i < ord->n_events; i++) {
		size_t j = i;
		while (j > 0 && strcmp(ord->events[idx[j - 1]].time, ord->events[i].time) > 0) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = i;
	}
	for (size_t i = 0; i < ord->n_events; i++) {
		const struct console_event *e = &ord->events[idx[i]];
		cJSON *ev = cJSON_CreateObject();
		cJSON_AddStringToObject(ev, "event_id", e->id);
		cJSON_AddStringToObject(ev, "type", e->title);
		cJSON_AddStringToObject(ev, "source", e->source);
		cJSON_AddStringToObject(ev, "time", e->time);
		cJSON_AddItemToArray(events, ev);
	}
out:
	pthread_mutex_unlock(&v->mu);
	return o;
}
