/*
 * test_gateway.c - the gateway's read model and idempotency records, driven
 * through the runtime as the consumer loop drives them, and POST /orders
 * and long-polling GET /orders/{id}?wait= through a real HTTP server on a
 * kernel-chosen port (the rest of the API is covered by tests/system).
 *
 * The database is a SQLite file here; tests/component/test_gateway_pg.c
 * includes this file after tests/component/service_pg_backend.h to run
 * every case on PostgreSQL too, and defines GATEWAY_TEST_GATE to hold the
 * two racing POSTs of one Idempotency-Key at the very statement where
 * SELECT-then-INSERT used to let them both through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../services/gateway/gateway.h"
#include "core/log.h"
#include "service_harness.h"
#include "service_sqlite_backend.h"

#define TEST_URL_MAX 1024
#define TEST_REPLY_MAX (64 * 1024) /* every answer of POST /orders is far smaller */
/* Connections handed to the runtime's pool: one for each HTTP pool thread
 * and one for the long-poll thread, all of which may read at once (a
 * detached runtime cannot open more: a request finding none would fail). */
#define TEST_POOL (WEB_POOL_THREADS + 1)

#define CONSUMER "gateway"
#define ORDER_ID "0192f0c1-7d2a-7abc-8def-0123456789ab"
#define PAYMENT_ID "0192f0c1-7d2a-7abc-8def-0123456789cd"

struct fixture {
	struct svc_spec spec;
	struct gateway_ctx ctx;
	char url[TEST_URL_MAX];
	struct db *db;
	struct svc *svc;
	struct web_server *server; /* started by the HTTP cases */
	/* A second gateway process on the same database (a scaled-out replica):
	 * POSTs within one process share a transaction (group commit), so two
	 * transactions race only between processes. */
	struct svc *replica;
	struct web_server *replica_server;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	xalloc_init_cjson();
	f->spec = (struct svc_spec){
		.name = "gateway",
		.migrations = gateway_migrations,
		.n_migrations = gateway_n_migrations,
		.any_route = gateway_project,
		.after_commit = gateway_after_commit,
		.ctx = &f->ctx,
	};
	gateway_ctx_init(&f->ctx);
	/* A file, not :memory:: the HTTP cases use more connections. */
	backend_url(f->url, sizeof(f->url), true);
	assert_int_equal(harness_open(&f->spec, f->url, &f->db, &f->svc), SHOP_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	web_server_stop(f->server);
	web_server_stop(f->replica_server);
	gateway_long_polls_stop(&f->ctx); /* before the svc it reads through goes */
	svc_destroy(f->svc);
	svc_destroy(f->replica);
	db_close(f->db);
	backend_release(f->url);
	gateway_ctx_release(&f->ctx);
	free(f);
	return 0;
}

/* ---- HTTP: the gateway's API on a real server, a raw client ---- */

struct reply {
	int status;
	char raw[TEST_REPLY_MAX];
	cJSON *json; /* the body */
};

/* Serves the API of f->svc on 127.0.0.1. A detached runtime opens no
 * connections of its own (it has no URL): its pool gets TEST_POOL. */
static uint16_t serve_on(struct fixture *f, struct svc *svc, struct web_server **ret_server)
{
	for (int i = 0; i < TEST_POOL; i++) {
		struct db *db = NULL;
		assert_int_equal(db_open(f->url, &db), SHOP_OK);
		svc_db_release(svc, db);
	}
	assert_int_equal(web_server_start_pool("127.0.0.1", 0, gateway_http, svc, ret_server),
			 SHOP_OK);
	return web_server_port(*ret_server);
}

static uint16_t serve(struct fixture *f)
{
	return serve_on(f, f->svc, &f->server);
}

/* The replica's port (see struct fixture). */
static uint16_t serve_replica(struct fixture *f)
{
	f->replica = svc_create_detached(&f->spec);
	return serve_on(f, f->replica, &f->replica_server);
}

/* Sends the whole request REQ and reads the answer into R. Does not
 * assert, so threads may call it. */
static void http_exchange(uint16_t port, const char *req, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return;
	struct timeval tv = { .tv_sec = 10 }; /* a hung server fails, not hangs, the test */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return;
	}
	size_t len = strlen(req), sent = 0, got = 0;
	while (sent < len) {
		ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (n <= 0 && errno != EINTR)
			break;
		sent += n > 0 ? (size_t)n : 0;
	}
	for (;;) {
		ssize_t n = recv(fd, r->raw + got, sizeof(r->raw) - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	r->raw[got] = '\0';
	close(fd);
	if (sscanf(r->raw, "HTTP/1.%*d %d", &r->status) != 1)
		r->status = 0;
	const char *end = strstr(r->raw, "\r\n\r\n");
	r->json = end ? cJSON_Parse(end + 4) : NULL;
}

/* POST /orders with BODY and the extra header lines HEADERS ("" for none);
 * fills R. Does not assert, so threads may call it. */
static void post_order(uint16_t port, const char *headers, const char *body, struct reply *r)
{
	char *req = NULL;
	if (asprintf(&req,
		     "POST /orders HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
		     "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
		     headers, strlen(body), body) < 0) {
		memset(r, 0, sizeof(*r));
		return;
	}
	http_exchange(port, req, r);
	free(req);
}

/* GET PATH; fills R. Does not assert, so threads may call it. */
static void get_path(uint16_t port, const char *path, struct reply *r)
{
	char req[TEST_URL_MAX];
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
		 path);
	http_exchange(port, req, r);
}

static const char *reply_str(const struct reply *r, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->json, name));
}

static bool reply_has_header(const struct reply *r, const char *line)
{
	const char *end = strstr(r->raw, "\r\n\r\n");
	const char *at = strcasestr(r->raw, line);
	return at && end && at < end;
}

static const char *const valid_order =
	"{\"customer_id\":\"c-1\",\"email\":\"ada@example.com\","
	"\"items\":[{\"sku\":\"SKU-CABLE\",\"quantity\":2}],"
	"\"payment\":{\"card_token\":\"tok_visa\"},"
	"\"shipping_address\":{\"name\":\"Ada\",\"line1\":\"1 Loop St\",\"city\":\"London\","
	"\"postal_code\":\"SW1\",\"country\":\"GB\"}}";

static int64_t count(struct fixture *f, const char *sql)
{
	return harness_query_int(f->db, sql, NULL);
}

/* Delivers MSG of message ID about ORDER_ID under EVENT_ID (NULL: fresh). */
static shop_status deliver(struct fixture *f, enum ct_message_id id, const char *event_id,
			   const void *msg)
{
	char *json = harness_order_envelope(id, event_id, ORDER_ID, msg);
	shop_status st = harness_deliver(f->svc, f->db, CONSUMER, json, NULL, 0);
	free(json);
	return st;
}

static shop_status deliver_placed(struct fixture *f)
{
	static const char *const skus[] = { "SKU-CABLE" };
	static const int quantities[] = { 2 };
	struct ct_order_placed *m = xcalloc(1, sizeof(*m));
	harness_order_placed_fill(m, ORDER_ID, "ada@example.com", 1, skus, quantities);
	shop_status st = deliver(f, CT_MSG_ORDER_PLACED, NULL, m);
	free(m);
	return st;
}

static shop_status deliver_paid(struct fixture *f, const char *event_id)
{
	struct ct_order_paid m = { 0 };
	snprintf(m.order_id, sizeof(m.order_id), ORDER_ID);
	snprintf(m.payment_id, sizeof(m.payment_id), PAYMENT_ID);
	return deliver(f, CT_MSG_ORDER_PAID, event_id, &m);
}

static char *view_status(struct fixture *f)
{
	struct db_result *r = NULL;
	assert_int_equal(db_query(f->db, "SELECT status FROM orders_view WHERE order_id = $1",
				  DB_ARGS(ORDER_ID), &r),
			 SHOP_OK);
	char *status = db_result_rows(r) ? xstrdup(db_result_text(r, 0, 0)) : NULL;
	db_result_free(r);
	return status;
}

static int64_t timeline_len(struct fixture *f)
{
	return harness_query_int(f->db, "SELECT COUNT(*) FROM timeline WHERE order_id = $1",
				 ORDER_ID);
}

static void the_status_only_moves_forward(void **state)
{
	static const struct {
		enum gateway_status from, to;
		bool advances;
	} cases[] = {
		{ GATEWAY_PENDING, GATEWAY_RESERVED, true },
		{ GATEWAY_PENDING, GATEWAY_PAID, true },
		{ GATEWAY_RESERVED, GATEWAY_SHIPPED, true },
		{ GATEWAY_PAID, GATEWAY_CANCELLED, true },
		{ GATEWAY_PAID, GATEWAY_RESERVED, false },
		{ GATEWAY_PAID, GATEWAY_PAID, false },
		{ GATEWAY_SHIPPED, GATEWAY_CANCELLED, false },
		{ GATEWAY_CANCELLED, GATEWAY_SHIPPED, false },
		{ GATEWAY_CANCELLED, GATEWAY_CANCELLED, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(gateway_status_advances(cases[i].from, cases[i].to),
				 cases[i].advances);
}

static void a_late_event_never_moves_the_order_back(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver_placed(f), SHOP_OK);
	assert_int_equal(deliver_paid(f, NULL), SHOP_OK);
	struct ct_order_reserved late = { .total_cents = 1980 };
	snprintf(late.order_id, sizeof(late.order_id), ORDER_ID);
	snprintf(late.currency, sizeof(late.currency), "EUR");
	assert_int_equal(deliver(f, CT_MSG_ORDER_RESERVED, NULL, &late), SHOP_OK);

	char *status = view_status(f);
	assert_string_equal(status, "PAID");
	free(status);
	assert_int_equal(timeline_len(f), 3); /* the late event is still history */
}

static void a_redelivered_event_adds_nothing(void **state)
{
	struct fixture *f = *state;
	char event_id[IDS_UUID_SIZE];
	ids_uuid7(event_id);
	assert_int_equal(deliver_placed(f), SHOP_OK);
	assert_int_equal(deliver_paid(f, event_id), SHOP_OK);
	assert_int_equal(deliver_paid(f, event_id), SHOP_E_DUPLICATE);
	assert_int_equal(timeline_len(f), 2);
}

static void an_event_before_its_order_waits_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver_paid(f, NULL), SHOP_E_NOT_READY);
	assert_null(view_status(f));
	assert_int_equal(timeline_len(f), 0);
	/* Once OrderPlaced is in, the redelivery applies. */
	assert_int_equal(deliver_placed(f), SHOP_OK);
	assert_int_equal(deliver_paid(f, NULL), SHOP_OK);
	char *status = view_status(f);
	assert_string_equal(status, "PAID");
	free(status);
}

static void idempotency_records_expire_after_their_retention(void **state)
{
	struct fixture *f = *state;
	const int64_t now = 1000000000000;
	const char *insert = "INSERT INTO idempotency_keys (idem_key, request, status, response, "
			     "order_id, created_at_ms) VALUES ($1, '{}', 202, '{}', 'o', $2)";
	assert_int_equal(db_exec(f->db, insert,
				 DB_ARGS("old", DB_I64(now - GATEWAY_IDEMPOTENCY_RETENTION_MS - 1)),
				 NULL),
			 SHOP_OK);
	assert_int_equal(db_exec(f->db, insert,
				 DB_ARGS("kept", DB_I64(now - GATEWAY_IDEMPOTENCY_RETENTION_MS)),
				 NULL),
			 SHOP_OK);

	int64_t purged = -1;
	assert_int_equal(gateway_store_idempotency_purge(f->db, now,
							 GATEWAY_IDEMPOTENCY_RETENTION_MS, &purged),
			 SHOP_OK);
	assert_int_equal(purged, 1);
	assert_int_equal(harness_query_int(f->db,
					   "SELECT COUNT(*) FROM idempotency_keys "
					   "WHERE idem_key = $1",
					   "kept"),
			 1);
	assert_int_equal(harness_query_int(f->db, "SELECT COUNT(*) FROM idempotency_keys", NULL),
			 1);
}

static void a_body_with_text_after_the_order_is_malformed(void **state)
{
	struct fixture *f = *state;
	uint16_t port = serve(f);
	struct reply r;
	char body[2048];
	snprintf(body, sizeof(body), "%s garbage", valid_order);
	post_order(port, "", body, &r);
	assert_int_equal(r.status, 400);
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(r.json, "error");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(error, "code")),
			    "malformed_json");
	cJSON_Delete(r.json);
	snprintf(body, sizeof(body), "%s%s", valid_order, valid_order);
	post_order(port, "", body, &r);
	assert_int_equal(r.status, 400);
	cJSON_Delete(r.json);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM orders_view"), 0);
	assert_int_equal(harness_outbox_total(f->db), 0);
	/* Whitespace after it is still one value. */
	snprintf(body, sizeof(body), "%s \r\n", valid_order);
	post_order(port, "", body, &r);
	assert_int_equal(r.status, 202);
	cJSON_Delete(r.json);
}

/* A view row damaged in the gateway's own file (items that are not a JSON
 * array, text that is not UTF-8) is a 500 with the error shape, never a
 * body that is not JSON or not the documented shape. */
static void a_damaged_view_row_is_a_500_not_a_malformed_body(void **state)
{
	struct fixture *f = *state;
	uint16_t port = serve(f);
	struct reply r;
	post_order(port, "", valid_order, &r);
	assert_int_equal(r.status, 202);
	char path[128];
	snprintf(path, sizeof(path), "/orders/%s", reply_str(&r, "order_id"));
	char *order_id = strdup(reply_str(&r, "order_id"));
	cJSON_Delete(r.json);
	get_path(port, path, &r);
	assert_int_equal(r.status, 200);
	cJSON_Delete(r.json);
	static const char *const damage[] = {
		"UPDATE orders_view SET items = '{\"sku\":\"SKU-CABLE\"}' WHERE order_id = $1",
		"UPDATE orders_view SET items = '[1' WHERE order_id = $1",
		"UPDATE orders_view SET items = '[]', customer_id = CAST(X'63FF' AS TEXT) "
		"WHERE order_id = $1",
	};
	/* Text that is not UTF-8 can only be stored on SQLite: PostgreSQL checks
	 * the encoding of what it stores (and reads X'..' as bytea). */
	size_t n = sizeof(damage) / sizeof(damage[0]);
	if (db_backend_of(f->db) == DB_POSTGRES)
		n--;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(db_exec(f->db, damage[i], DB_ARGS(order_id), NULL), SHOP_OK);
		get_path(port, path, &r);
		assert_int_equal(r.status, 500);
		const cJSON *error = cJSON_GetObjectItemCaseSensitive(r.json, "error");
		assert_non_null(cJSON_GetObjectItem(error, "code"));
		cJSON_Delete(r.json);
	}
	free(order_id);
}

/* The header from the issue: uppercase hex. The order is accepted under a
 * new trace and its command is one orders will take, not dead-letter. */
static void an_invalid_traceparent_starts_a_new_trace_and_the_command_is_valid(void **state)
{
	struct fixture *f = *state;
	uint16_t port = serve(f);
	struct reply r;
	post_order(port, "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01\r\n",
		   valid_order, &r);
	assert_int_equal(r.status, 202);
	cJSON_Delete(r.json);

	struct db_result *q = NULL;
	assert_int_equal(db_query(f->db, "SELECT payload FROM outbox", DB_NOARGS, &q), SHOP_OK);
	assert_int_equal(db_result_rows(q), 2); /* PlaceOrder v2 and SubmitCard */
	for (int i = 0; i < 2; i++) {
		const char *payload = db_result_text(q, i, 0);
		cJSON *root = NULL;
		struct evt_envelope env;
		struct ct_errors errs = { 0 };
		assert_int_equal(evt_envelope_parse(payload, strlen(payload), &root, &env, &errs),
				 SHOP_OK);
		assert_true(ids_traceparent_valid(env.traceparent));
		assert_null(strstr(env.traceparent, "4bf92f3577b34da6a3ce929d0e0e4736"));
		const struct ct_message *m = ct_message_by_type(env.type);
		assert_non_null(m);
		void *cmd = xcalloc(1, m->data_size);
		assert_int_equal(m->parse(env.data, cmd, &errs), SHOP_OK);
		free(cmd);
		cJSON_Delete(root);
	}
	db_result_free(q);
}

/* Issue 7: the order goes to orders without the card, and the card goes to
 * payments alone on CARDS, both in the POST's one transaction. */
static void a_post_sends_the_order_without_its_card_and_the_card_alone_on_cards(void **state)
{
	struct fixture *f = *state;
	uint16_t port = serve(f);
	struct reply r;
	post_order(port, "", valid_order, &r);
	assert_int_equal(r.status, 202);
	const char *order_id = reply_str(&r, "order_id");

	struct db_result *q = NULL;
	assert_int_equal(db_query(f->db, "SELECT subject, payload FROM outbox ORDER BY id",
				  DB_NOARGS, &q),
			 SHOP_OK);
	assert_int_equal(db_result_rows(q), 2);
	assert_string_equal(db_result_text(q, 0, 0), "gateway.command.place_order.v2");
	assert_null(strstr(db_result_text(q, 0, 1), "tok_visa"));
	assert_null(strstr(db_result_text(q, 0, 1), "card_token"));
	assert_string_equal(db_result_text(q, 1, 0), "cards.command.submit_card.v1");
	const char *payload = db_result_text(q, 1, 1);
	cJSON *root = NULL;
	struct evt_envelope env;
	struct ct_errors errs = { 0 };
	assert_int_equal(evt_envelope_parse(payload, strlen(payload), &root, &env, &errs), SHOP_OK);
	struct ct_submit_card card;
	assert_int_equal(ct_submit_card_parse(env.data, &card, &errs), SHOP_OK);
	assert_string_equal(card.order_id, order_id);
	assert_string_equal(card.payment.card_token, "tok_visa");
	assert_string_equal(env.subject, order_id);
	cJSON_Delete(root);
	db_result_free(q);
	cJSON_Delete(r.json);
}

static void a_key_reused_with_another_body_is_refused(void **state)
{
	struct fixture *f = *state;
	uint16_t port = serve(f);
	struct reply first, again, other;
	post_order(port, "Idempotency-Key: k-1\r\n", valid_order, &first);
	post_order(port, "Idempotency-Key: k-1\r\n", valid_order, &again);
	assert_int_equal(first.status, 202);
	assert_int_equal(again.status, 202);
	assert_true(reply_has_header(&again, "Idempotent-Replayed: true"));
	assert_string_equal(reply_str(&first, "order_id"), reply_str(&again, "order_id"));
	char body[2048];
	snprintf(body, sizeof(body), "%s", valid_order);
	strstr(body, "\"c-1\"")[3] = '2'; /* another customer */
	post_order(port, "Idempotency-Key: k-1\r\n", body, &other);
	assert_int_equal(other.status, 422);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM orders_view"), 1);
	assert_int_equal(harness_outbox_total(f->db), 2); /* one order: PlaceOrder, SubmitCard */
	/* What the record keeps: a fingerprint of the request, not the request
	 * with its card token. */
	assert_int_equal(count(f, "SELECT COUNT(*) FROM idempotency_keys WHERE request LIKE "
				  "'sha256:%' AND request NOT LIKE '%tok_visa%'"),
			 1);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM idempotency_keys"), 1);
	cJSON_Delete(first.json);
	cJSON_Delete(again.json);
	cJSON_Delete(other.json);
}

/* GATEWAY_TEST_GATE: gate_close(f) makes every insert into
 * idempotency_keys wait; gate_open(f, n) lets them go once n wait. Without
 * one (SQLite, which has a single writer anyway) the two POSTs just race. */
#ifndef GATEWAY_TEST_GATE
static void gate_close(struct fixture *f)
{
	(void)f;
}

static void gate_open(struct fixture *f, int waiting)
{
	(void)f;
	(void)waiting;
}
#endif

struct racer {
	pthread_barrier_t *start;
	uint16_t port;
	struct reply reply;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->start);
	post_order(r->port, "Idempotency-Key: race-1\r\n", valid_order, &r->reply);
	return NULL;
}

/* Two POSTs with one key on two gateway replicas sharing the database. */
static void two_concurrent_posts_with_one_key_place_one_order(void **state)
{
	struct fixture *f = *state;
	pthread_barrier_t start;
	/* One request to each replica: two transactions that race. */
	struct racer a = { .start = &start, .port = serve(f) }, b = a;
	b.port = serve_replica(f);
	pthread_t ta, tb;
	gate_close(f);
	assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
	assert_int_equal(pthread_create(&ta, NULL, racer_main, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, racer_main, &b), 0);
	gate_open(f, 2);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&start);

	assert_int_equal(a.reply.status, 202);
	assert_int_equal(b.reply.status, 202);
	assert_non_null(reply_str(&a.reply, "order_id"));
	assert_non_null(reply_str(&b.reply, "order_id"));
	assert_string_equal(reply_str(&a.reply, "order_id"), reply_str(&b.reply, "order_id"));
	/* Exactly one of them is the replay. */
	assert_true(reply_has_header(&a.reply, "Idempotent-Replayed: true") !=
		    reply_has_header(&b.reply, "Idempotent-Replayed: true"));
	assert_int_equal(count(f, "SELECT COUNT(*) FROM orders_view"), 1);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM idempotency_keys"), 1);
	assert_int_equal(harness_outbox_total(f->db), 2); /* one order: PlaceOrder, SubmitCard */
	cJSON_Delete(a.reply.json);
	cJSON_Delete(b.reply.json);
}

/* ---- long-polls ---- */

#define WAKE_WITHIN_MS 500 /* a woken GET answers well within this */
#define WAITER_TIMEOUT_MS 5000

struct poller {
	uint16_t port;
	const char *path;
	struct reply reply;
	int64_t done_ms; /* clock_mono_ms when the answer was in */
	pthread_t thread;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	get_path(p->port, p->path, &p->reply);
	p->done_ms = clock_mono_ms();
	return NULL;
}

static int waiting_gets(struct fixture *f)
{
	pthread_mutex_lock(&f->ctx.lock);
	int n = f->ctx.waiting;
	pthread_mutex_unlock(&f->ctx.lock);
	return n;
}

/* Until N GETs are waiters of the long-poll thread. */
static void await_waiting_gets(struct fixture *f, int n)
{
	int64_t deadline = clock_mono_ms() + WAITER_TIMEOUT_MS;
	while (waiting_gets(f) != n && clock_mono_ms() < deadline)
		clock_sleep_ms(1);
	assert_int_equal(waiting_gets(f), n);
}

/* A GET waiting on a PENDING order sleeps; a projected change that is not
 * final wakes it to re-read once and sleep again; the final status wakes it
 * to answer at once, right after the commit that made it visible. */
static void a_waiting_get_answers_as_soon_as_the_final_status_is_committed(void **state)
{
	struct fixture *f = *state;
	struct poller p = { .port = serve(f), .path = "/orders/" ORDER_ID "?wait=10" };
	assert_int_equal(deliver_placed(f), SHOP_OK);
	assert_int_equal(pthread_create(&p.thread, NULL, poller_main, &p), 0);
	await_waiting_gets(f, 1);

	uint64_t before = gateway_changes_seen(&f->ctx);
	assert_int_equal(deliver_paid(f, NULL), SHOP_OK);
	assert_true(gateway_changes_seen(&f->ctx) > before);
	await_waiting_gets(f, 1); /* woken to re-read PAID (or about to be): waits on */
	assert_int_equal(p.done_ms, 0);

	struct ct_order_cancelled cancelled = { 0 };
	snprintf(cancelled.order_id, sizeof(cancelled.order_id), ORDER_ID);
	snprintf(cancelled.reason, sizeof(cancelled.reason), "customer_cancelled");
	int64_t committed_ms = 0;
	assert_int_equal(deliver(f, CT_MSG_ORDER_CANCELLED, NULL, &cancelled), SHOP_OK);
	committed_ms = clock_mono_ms();
	pthread_join(p.thread, NULL);

	print_message("# answered %lld ms after the commit\n",
		      (long long)(p.done_ms - committed_ms));
	assert_int_equal(p.reply.status, 200);
	assert_string_equal(reply_str(&p.reply, "status"), "CANCELLED");
	assert_string_equal(reply_str(&p.reply, "reason"), "customer_cancelled");
	assert_true(p.done_ms - committed_ms < WAKE_WITHIN_MS);
	cJSON_Delete(p.reply.json);
}

/* With nothing committed, a waiting GET sleeps until its deadline and then
 * answers with the order as it is. */
static void a_waiting_get_answers_at_its_deadline_when_nothing_changes(void **state)
{
	struct fixture *f = *state;
	struct poller p = { .port = serve(f), .path = "/orders/" ORDER_ID "?wait=1" };
	assert_int_equal(deliver_placed(f), SHOP_OK);
	int64_t start_ms = clock_mono_ms();
	assert_int_equal(pthread_create(&p.thread, NULL, poller_main, &p), 0);
	await_waiting_gets(f, 1);
	pthread_join(p.thread, NULL);

	int64_t took = p.done_ms - start_ms;
	print_message("# answered after %lld ms\n", (long long)took);
	assert_int_equal(p.reply.status, 200);
	assert_string_equal(reply_str(&p.reply, "status"), "PENDING");
	assert_true(took >= 1000 && took < 1000 + WAKE_WITHIN_MS);
	assert_int_equal(waiting_gets(f), 0);
	cJSON_Delete(p.reply.json);
}

static int long_polls(struct fixture *f)
{
	pthread_mutex_lock(&f->ctx.lock);
	int n = f->ctx.long_polls;
	pthread_mutex_unlock(&f->ctx.lock);
	return n;
}

static void add_long_polls(struct fixture *f, int n)
{
	pthread_mutex_lock(&f->ctx.lock);
	f->ctx.long_polls += n;
	pthread_mutex_unlock(&f->ctx.lock);
}

/* A waiting GET takes one of GATEWAY_LONG_POLLS_MAX places for as long as
 * it waits; with every place taken one more is answered at once, 503 with
 * Retry-After, while a GET without ?wait= is still served. */
static void a_waiting_get_over_the_cap_gets_503_with_retry_after_at_once(void **state)
{
	struct fixture *f = *state;
	struct poller p = { .port = serve(f), .path = "/orders/" ORDER_ID "?wait=3" };
	assert_int_equal(deliver_placed(f), SHOP_OK);
	assert_int_equal(pthread_create(&p.thread, NULL, poller_main, &p), 0);
	await_waiting_gets(f, 1);
	assert_int_equal(long_polls(f), 1);
	/* The other places, as if taken by as many more waiting GETs. */
	add_long_polls(f, GATEWAY_LONG_POLLS_MAX - 1);

	struct reply r;
	int64_t t0 = clock_mono_ms();
	get_path(p.port, "/orders/" ORDER_ID "?wait=30", &r);
	int64_t took = clock_mono_ms() - t0;
	assert_int_equal(r.status, 503);
	assert_true(took < WAKE_WITHIN_MS);
	assert_true(reply_has_header(&r, "Retry-After: " GATEWAY_LONG_POLL_RETRY_AFTER_S));
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(r.json, "error");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "code")),
			    "too_many_waiters");
	cJSON_Delete(r.json);
	get_path(p.port, "/orders/" ORDER_ID, &r);
	assert_int_equal(r.status, 200);
	cJSON_Delete(r.json);

	add_long_polls(f, -(GATEWAY_LONG_POLLS_MAX - 1));
	pthread_join(p.thread, NULL);
	assert_int_equal(p.reply.status, 200);
	cJSON_Delete(p.reply.json);
	assert_int_equal(long_polls(f), 0); /* its place given back */
}

/* Three times as many waiting GETs as the server has threads: none holds
 * one, so a POST and a plain GET are still answered at once, and each
 * waiting GET is answered when the order is final. */
#define MANY_WAITERS (3 * WEB_POOL_THREADS)
static void many_waiting_gets_hold_no_thread_and_each_is_answered_when_the_order_is_final(
	void **state)
{
	struct fixture *f = *state;
	uint16_t port = serve(f);
	assert_int_equal(deliver_placed(f), SHOP_OK);
	struct poller *p = xcalloc(MANY_WAITERS, sizeof(*p));
	for (int i = 0; i < MANY_WAITERS; i++) {
		p[i].port = port;
		p[i].path = "/orders/" ORDER_ID "?wait=20";
		assert_int_equal(pthread_create(&p[i].thread, NULL, poller_main, &p[i]), 0);
	}
	await_waiting_gets(f, MANY_WAITERS);
	assert_int_equal(long_polls(f), MANY_WAITERS);

	struct reply *r = xcalloc(1, sizeof(*r));
	int64_t t0 = clock_mono_ms();
	post_order(port, "", valid_order, r);
	int64_t post_ms = clock_mono_ms() - t0;
	assert_int_equal(r->status, 202);
	cJSON_Delete(r->json);
	t0 = clock_mono_ms();
	get_path(port, "/orders/" ORDER_ID, r);
	int64_t get_ms = clock_mono_ms() - t0;
	assert_int_equal(r->status, 200);
	assert_string_equal(reply_str(r, "status"), "PENDING");
	cJSON_Delete(r->json);
	free(r);
	print_message("# with %d waiting: POST %lld ms, GET %lld ms\n", MANY_WAITERS,
		      (long long)post_ms, (long long)get_ms);
	assert_true(post_ms < WAKE_WITHIN_MS && get_ms < WAKE_WITHIN_MS);

	struct ct_order_cancelled cancelled = { 0 };
	snprintf(cancelled.order_id, sizeof(cancelled.order_id), ORDER_ID);
	snprintf(cancelled.reason, sizeof(cancelled.reason), "customer_cancelled");
	assert_int_equal(deliver(f, CT_MSG_ORDER_CANCELLED, NULL, &cancelled), SHOP_OK);
	int64_t committed_ms = clock_mono_ms();
	int64_t slowest = 0;
	for (int i = 0; i < MANY_WAITERS; i++) {
		pthread_join(p[i].thread, NULL);
		assert_int_equal(p[i].reply.status, 200);
		assert_string_equal(reply_str(&p[i].reply, "status"), "CANCELLED");
		if (p[i].done_ms - committed_ms > slowest)
			slowest = p[i].done_ms - committed_ms;
		cJSON_Delete(p[i].reply.json);
	}
	free(p);
	print_message("# the last answered %lld ms after the commit\n", (long long)slowest);
	assert_true(slowest < 2 * WAKE_WITHIN_MS);
	assert_int_equal(waiting_gets(f), 0);
	assert_int_equal(long_polls(f), 0);
}

/* A client that hangs up while waiting gives its place back soon (the
 * server notices, then the long-poll thread's next look), not at its
 * deadline. */
static void a_waiting_get_whose_client_hangs_up_gives_its_place_back(void **state)
{
	struct fixture *f = *state;
	uint16_t port = serve(f);
	assert_int_equal(deliver_placed(f), SHOP_OK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	static const char req[] = "GET /orders/" ORDER_ID "?wait=30 HTTP/1.1\r\nHost: test\r\n\r\n";
	assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(req) - 1));
	await_waiting_gets(f, 1);
	assert_int_equal(long_polls(f), 1);
	int64_t t0 = clock_mono_ms();
	close(fd);
	while (long_polls(f) != 0 && clock_mono_ms() - t0 < WAITER_TIMEOUT_MS)
		clock_sleep_ms(10);
	print_message("# place given back %lld ms after the hang-up\n",
		      (long long)(clock_mono_ms() - t0));
	assert_int_equal(long_polls(f), 0);
	assert_int_equal(waiting_gets(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_status_only_moves_forward),
		cmocka_unit_test_setup_teardown(a_late_event_never_moves_the_order_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_redelivered_event_adds_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(an_event_before_its_order_waits_and_writes_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(idempotency_records_expire_after_their_retention,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_body_with_text_after_the_order_is_malformed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_damaged_view_row_is_a_500_not_a_malformed_body,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			an_invalid_traceparent_starts_a_new_trace_and_the_command_is_valid, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			a_post_sends_the_order_without_its_card_and_the_card_alone_on_cards, setup,
			teardown),
		cmocka_unit_test_setup_teardown(a_key_reused_with_another_body_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			a_waiting_get_over_the_cap_gets_503_with_retry_after_at_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(two_concurrent_posts_with_one_key_place_one_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_waiting_get_answers_as_soon_as_the_final_status_is_committed, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			a_waiting_get_answers_at_its_deadline_when_nothing_changes, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			many_waiting_gets_hold_no_thread_and_each_is_answered_when_the_order_is_final,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_waiting_get_whose_client_hangs_up_gives_its_place_back, setup, teardown),
	};
	log_init("gateway-test", LOG_LVL_ERROR);
	return cmocka_run_group_tests_name("gateway", tests, backend_group_setup,
					   backend_group_teardown);
}
