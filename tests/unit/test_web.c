/*
 * test_web.c - libs/web against a real server on a real socket.
 *
 * Each case starts the server in-process on 127.0.0.1 with an ephemeral
 * port and a test handler, and talks to it through a tiny HTTP/1.1 client
 * written here: it sends raw bytes (so a test controls chunking, pauses and
 * lying headers) and reads until the server closes (every request says
 * Connection: close). Client threads never call cmocka asserts (they are not
 * thread-safe); they record what they saw and the main thread checks it.
 *
 * Most cases run on both modes (thread per connection and pool); the
 * pending-request cases (suspend, answer from another thread, a client
 * that leaves, the cap, stop) only on the pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/xalloc.h"
#include "web/web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define CLIENTS 50
#define HELD_MAX 64 /* pending requests a fixture keeps handles of */

/* ---- the server side: a handler whose behaviour is picked by path ---- */

struct reply {
	int status; /* 0 when nothing parseable came back */
	char *raw;  /* everything read, NUL-terminated */
	size_t raw_len;
	const char *body; /* inside raw */
	size_t body_len;
	cJSON *json; /* the body parsed, or NULL */
};

/* Replies and scratch buffers belong to the fixture, so a case that fails
 * half-way (cmocka jumps out of it) leaks nothing and the leak check of
 * another case stays about the server alone. */
struct fixture {
	struct web_server *server;
	uint16_t port;
	atomic_int calls;    /* how many times the handler ran */
	atomic_int released; /* stream producers released */
	struct reply reply;
	char *scratch;
	/* Handles of requests the handler left pending, for the case to answer. */
	pthread_mutex_t held_lock;
	struct web_pending *held[HELD_MAX];
	int n_held;
};

/* Keeps a pending request's handle for the case. */
static void hold(struct fixture *f, struct web_pending *p)
{
	pthread_mutex_lock(&f->held_lock);
	if (f->n_held < HELD_MAX) {
		f->held[f->n_held++] = p;
		p = NULL;
	}
	pthread_mutex_unlock(&f->held_lock);
	if (p) { /* more than a case asks for: answered at once */
		struct web_response res = { 0 };
		web_respond_json(&res, 500, NULL);
		web_pending_complete(p, &res);
	}
}

/* The oldest held handle (taken from the fixture), or NULL. */
static struct web_pending *take_held(struct fixture *f)
{
	pthread_mutex_lock(&f->held_lock);
	struct web_pending *p = NULL;
	if (f->n_held > 0) {
		p = f->held[0];
		memmove(f->held, f->held + 1, (size_t)(f->n_held - 1) * sizeof(f->held[0]));
		f->n_held--;
	}
	pthread_mutex_unlock(&f->held_lock);
	return p;
}

static int held_count(struct fixture *f)
{
	pthread_mutex_lock(&f->held_lock);
	int n = f->n_held;
	pthread_mutex_unlock(&f->held_lock);
	return n;
}

/* Answers P with 200 {"answer":N}; returns web_pending_complete's verdict. */
static bool answer(struct web_pending *p, int n)
{
	struct web_response res = { 0 };
	cJSON *body = cJSON_CreateObject();
	cJSON_AddNumberToObject(body, "answer", n);
	web_response_header(&res, "X-Answered", "later");
	web_respond_json(&res, 200, body);
	return web_pending_complete(p, &res);
}

static cJSON *json_string_or_null(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static void echo(const struct web_request *req, struct web_response *res)
{
	size_t len = 0;
	const char *body = web_request_body(req, &len);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "method", web_request_method(req));
	cJSON_AddStringToObject(o, "path", web_request_path(req));
	cJSON_AddStringToObject(o, "body", body);
	cJSON_AddNumberToObject(o, "body_len", (double)len);
	cJSON_AddItemToObject(o, "q", json_string_or_null(web_request_query(req, "q")));
	cJSON_AddItemToObject(o, "flag", json_string_or_null(web_request_query(req, "flag")));
	cJSON_AddItemToObject(o, "x_test", json_string_or_null(web_request_header(req, "x-test")));
	cJSON_AddStringToObject(o, "request_id", web_request_id(req));
	web_respond_json(res, 200, o);
}

/* A stream producer: "event 0\n" .. "event 2\n" with a "nothing yet" (0)
 * before each, then the end; or (idle) one byte, then nothing, forever; or (ticking) one
 * byte every 20 ms, forever. */
enum producer_mode { PRODUCER_THREE, PRODUCER_IDLE, PRODUCER_TICKING };
struct producer {
	struct fixture *f;
	enum producer_mode mode;
	int step;
};

static ssize_t producer_read(void *arg, char *buf, size_t max)
{
	struct producer *p = arg;
	switch (p->mode) {
	case PRODUCER_IDLE:
		if (p->step++ == 0) {
			buf[0] = ':'; /* so that the head is sent */
			return 1;
		}
		clock_sleep_ms(50);
		return 0;
	case PRODUCER_TICKING:
		clock_sleep_ms(20);
		buf[0] = '.';
		return 1;
	case PRODUCER_THREE:
		break;
	}
	int step = p->step++;
	if (step >= 6)
		return WEB_STREAM_END;
	if (step % 2 == 0)
		return 0;
	int n = snprintf(buf, max, "event %d\n", step / 2);
	return n < 0 || (size_t)n >= max ? WEB_STREAM_END : n;
}

static void producer_release(void *arg)
{
	struct producer *p = arg;
	atomic_fetch_add(&p->f->released, 1);
	free(p);
}

static void respond_producer(struct fixture *f, struct web_response *res, enum producer_mode mode)
{
	struct producer *p = xcalloc(1, sizeof(*p));
	p->f = f;
	p->mode = mode;
	web_respond_stream(res, 200, "text/event-stream", producer_read, producer_release, p);
}

static void test_handler(void *ctx, const struct web_request *req, struct web_response *res)
{
	struct fixture *f = ctx;
	const char *path = web_request_path(req);
	atomic_fetch_add(&f->calls, 1);

	if (strcmp(path, "/nostatus") == 0) {
		/* Leaves status 0 but hands over a body and a header, which the
		 * server must discard without leaking. */
		web_respond_json(res, 0, cJSON_CreateString("ignored"));
		web_response_header(res, "X-Ignored", "1");
	} else if (strcmp(path, "/error") == 0) {
		web_respond_error(res, 422, "invalid_input", "bad input", NULL);
	} else if (strcmp(path, "/error-details") == 0) {
		cJSON *details = cJSON_CreateArray();
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "field", "sku");
		cJSON_AddStringToObject(d, "problem", "missing");
		cJSON_AddItemToArray(details, d);
		web_respond_error(res, 422, "invalid_input", "bad input", details);
	} else if (strcmp(path, "/text") == 0) {
		/* A body that is not JSON (a /metrics page): sent as it is, with
		 * its own Content-Type, including a NUL-free text's every byte. */
		web_respond_json(res, 200, cJSON_CreateString("replaced"));
		web_respond_text(res, 200, "text/plain; version=0.0.4",
				 xstrdup("a 1\nb{x=\"y\"} 2\n"), strlen("a 1\nb{x=\"y\"} 2\n"));
	} else if (strcmp(path, "/empty") == 0) {
		web_respond_json(res, 204, NULL);
	} else if (strcmp(path, "/header") == 0) {
		char value[16] = "copied";
		web_response_header(res, "X-Custom", value);
		memset(value, 'x', sizeof(value) - 1); /* the server must hold a copy */
		web_respond_json(res, 200, cJSON_CreateObject());
	} else if (strcmp(path, "/stream") == 0) {
		respond_producer(f, res, PRODUCER_THREE);
	} else if (strcmp(path, "/stream-idle") == 0) {
		respond_producer(f, res, PRODUCER_IDLE);
	} else if (strcmp(path, "/stream-ticking") == 0) {
		respond_producer(f, res, PRODUCER_TICKING);
	} else if (strcmp(path, "/stream-replaced") == 0) {
		/* A handler that changes its mind: the producer must be let go. */
		respond_producer(f, res, PRODUCER_THREE);
		web_respond_error(res, 409, "conflict", "changed its mind", NULL);
	} else if (strcmp(path, "/pending") == 0) {
		/* Answered later by the case, from its own thread. */
		struct web_pending *p = NULL;
		web_response_header(res, "X-Dropped", "1"); /* not sent: the answer is */
		if (web_respond_pending(res, req, &p) == SHOP_OK)
			hold(f, p);
	} else if (strcmp(path, "/pending-quick") == 0) {
		/* Answered before the handler even returns. */
		struct web_pending *p = NULL;
		if (web_respond_pending(res, req, &p) == SHOP_OK)
			answer(p, 7);
	} else if (strcmp(path, "/sleep") == 0) {
		clock_sleep_ms(1000);
		echo(req, res);
	} else {
		echo(req, res);
	}
}

static struct fixture *fixture_new(void)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	atomic_init(&f->calls, 0);
	atomic_init(&f->released, 0);
	pthread_mutex_init(&f->held_lock, NULL);
	return f;
}

static void fixture_free(struct fixture *f)
{
	pthread_mutex_destroy(&f->held_lock);
	free(f);
}

static int server_up(void **state)
{
	struct fixture *f = fixture_new();
	if (web_server_start("127.0.0.1", 0, test_handler, f, &f->server) != SHOP_OK) {
		fixture_free(f);
		return -1;
	}
	f->port = web_server_port(f->server);
	*state = f;
	return f->port ? 0 : -1;
}

static int pool_server_up(void **state)
{
	struct fixture *f = fixture_new();
	if (web_server_start_pool("127.0.0.1", 0, test_handler, f, &f->server) != SHOP_OK) {
		fixture_free(f);
		return -1;
	}
	f->port = web_server_port(f->server);
	*state = f;
	return f->port ? 0 : -1;
}

static void reply_free(struct reply *r)
{
	cJSON_Delete(r->json);
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

static int server_down(void **state)
{
	struct fixture *f = *state;
	web_server_stop(f->server);
	/* Handles a failed case left: completing after the stop only frees. */
	for (struct web_pending *p; (p = take_held(f));)
		answer(p, -1);
	reply_free(&f->reply);
	free(f->scratch);
	fixture_free(f);
	return 0;
}

/* ---- the client side: raw HTTP/1.1 over a socket ---- */

static int client_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	/* A hung server fails the test instead of hanging it. */
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* False when the peer stopped taking data (it may have answered early). */
static bool client_send(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool client_send_str(int fd, const char *s)
{
	return client_send(fd, s, strlen(s));
}

/* Reads until the server closes (or resets after answering) and parses the
 * status line and body into R, freeing what R held. */
static void client_read(int fd, struct reply *r)
{
	size_t cap = 4096;
	reply_free(r);
	r->raw = xmalloc(cap);
	for (;;) {
		if (cap - r->raw_len < 2048) {
			cap *= 2;
			r->raw = xrealloc(r->raw, cap);
		}
		ssize_t n = recv(fd, r->raw + r->raw_len, cap - r->raw_len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		r->raw_len += (size_t)n;
	}
	r->raw[r->raw_len] = '\0';
	if (sscanf(r->raw, "HTTP/1.%*d %d", &r->status) != 1)
		r->status = 0;
	char *end = strstr(r->raw, "\r\n\r\n");
	if (end) {
		r->body = end + 4;
		r->body_len = r->raw_len - (size_t)(r->body - r->raw);
		if (r->body_len > 0)
			r->json = cJSON_ParseWithLength(r->body, r->body_len);
	}
}

/* Copies the value of response header NAME into buf; NULL when absent. */
static const char *reply_header(const struct reply *r, const char *name, char *buf, size_t size)
{
	size_t name_len = strlen(name);
	const char *end = strstr(r->raw, "\r\n\r\n");
	const char *line = strstr(r->raw, "\r\n");
	while (line && end && line < end) {
		line += 2;
		if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
			const char *v = line + name_len + 1;
			while (*v == ' ')
				v++;
			size_t n = strcspn(v, "\r");
			if (n >= size)
				n = size - 1;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return buf;
		}
		line = strstr(line, "\r\n");
	}
	return NULL;
}

static const char *json_str(const cJSON *o, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* One whole exchange: connect, send the request formatted from FMT, read
 * the reply into R (freeing what R held), close. */
static void http(uint16_t port, struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void http(uint16_t port, struct reply *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *request = NULL;
	int n = vasprintf(&request, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	reply_free(r);
	int fd = client_connect(port);
	if (fd >= 0) {
		client_send_str(fd, request);
		client_read(fd, r);
		close(fd);
	}
	free(request);
	assert_true(fd >= 0);
}

static void http_get(uint16_t port, const char *target, struct reply *r)
{
	http(port, r, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target);
}

/* GET /echo sent with X-Request-Id: ID, answered 200; the answer's
 * X-Request-Id is copied into BUF (NULL when it has none). */
static const char *get_with_request_id(struct fixture *f, const char *id, char *buf, size_t size)
{
	struct reply *r = &f->reply;
	http(f->port, r,
	     "GET /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Request-Id: %s\r\n\r\n",
	     id);
	assert_int_equal(r->status, 200);
	return reply_header(r, "X-Request-Id", buf, size);
}

/* The start of a request to the echo handler; the caller adds its own
 * headers and the blank line. */
#define POST_ECHO "POST /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
#define POST_ECHO_CHUNKED POST_ECHO "Transfer-Encoding: chunked\r\n\r\n"

/* A connection to the fixture's server that has sent HEAD. */
static int request_open(struct fixture *f, const char *head)
{
	int fd = client_connect(f->port);
	assert_true(fd >= 0);
	assert_true(client_send_str(fd, head));
	return fd;
}

/* Reads the reply to the request on FD into the fixture, and closes FD. */
static struct reply *request_finish(struct fixture *f, int fd)
{
	client_read(fd, &f->reply);
	close(fd);
	return &f->reply;
}

/* COUNT chunks of CHUNK bytes in chunked encoding: DATA's next bytes each
 * time when ADVANCE, else the same bytes again. False once the peer stops
 * taking data. */
static bool client_send_chunks(int fd, const char *data, size_t chunk, size_t count, bool advance)
{
	char head[24];
	snprintf(head, sizeof(head), "%zx\r\n", chunk);
	for (size_t i = 0; i < count; i++) {
		const char *p = advance ? data + i * chunk : data;
		if (!client_send_str(fd, head) || !client_send(fd, p, chunk) ||
		    !client_send_str(fd, "\r\n"))
			return false;
	}
	return true;
}

/* Sends HEAD, then each of PIECES after a pause, and checks the handler
 * ran once and echoed WANT as the body. */
static void assert_pieces_arrive_whole(struct fixture *f, const char *head,
				       const char *const *pieces, size_t n, const char *want)
{
	int fd = request_open(f, head);
	for (size_t i = 0; i < n; i++) {
		clock_sleep_ms(100);
		assert_true(client_send_str(fd, pieces[i]));
	}
	struct reply *r = request_finish(f, fd);
	assert_int_equal(r->status, 200);
	assert_string_equal(json_str(r->json, "body"), want);
	assert_int_equal(atomic_load(&f->calls), 1);
}

static void assert_error_shape(const struct reply *r, const char *code)
{
	assert_non_null(r->json);
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(r->json, "error");
	assert_true(cJSON_IsObject(error));
	assert_string_equal(json_str(error, "code"), code);
	assert_non_null(json_str(error, "message"));
	assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(error, "details")));
}

/* GET TARGET answered STATUS with an error of CODE in the common shape;
 * returns the error object. */
static const cJSON *get_error(struct fixture *f, const char *target, int status, const char *code)
{
	struct reply *r = &f->reply;
	http_get(f->port, target, r);
	assert_int_equal(r->status, status);
	assert_error_shape(r, code);
	return cJSON_GetObjectItemCaseSensitive(r->json, "error");
}

/* ---- cases ---- */

static void get_returns_the_handlers_json_with_a_request_id(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	char buf[128];
	http_get(f->port, "/echo", r);
	assert_int_equal(r->status, 200);
	assert_non_null(r->json);
	assert_string_equal(json_str(r->json, "method"), "GET");
	assert_string_equal(json_str(r->json, "path"), "/echo");
	assert_string_equal(json_str(r->json, "body"), "");
	assert_non_null(reply_header(r, "X-Request-Id", buf, sizeof(buf)));
	assert_true(ids_uuid_valid(buf));
	assert_int_equal(buf[14], '7');
	assert_string_equal(json_str(r->json, "request_id"), buf);
	assert_string_equal(reply_header(r, "Content-Type", buf, sizeof(buf)), "application/json");
	assert_string_equal(reply_header(r, "Cache-Control", buf, sizeof(buf)), "no-store");
	assert_int_equal(atomic_load(&f->calls), 1);
}

static void valid_incoming_request_id_is_echoed(void **state)
{
	struct fixture *f = *state;
	static const char *const ids[] = {
		"abc-123_X.y", "a",
		"0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char buf[128];
		assert_string_equal(get_with_request_id(f, ids[i], buf, sizeof(buf)), ids[i]);
		assert_string_equal(json_str(f->reply.json, "request_id"), ids[i]);
	}
}

static void invalid_incoming_request_id_is_replaced_by_a_fresh_uuid7(void **state)
{
	struct fixture *f = *state;
	static const char *const ids[] = {
		"01234567890123456789012345678901234567890123456789012345678901234", /* 65 */
		"bad/id",
		"bad id",
		"<script>",
		"",
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char buf[128];
		assert_non_null(get_with_request_id(f, ids[i], buf, sizeof(buf)));
		assert_true(ids_uuid_valid(buf));
		assert_string_equal(json_str(f->reply.json, "request_id"), buf);
	}
}

static void post_body_reaches_the_handler_intact(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	const char *body = "{\"sku\":\"A-1\",\"qty\":2,\"note\":\"caf\xc3\xa9\"}";
	http(f->port, r,
	     "POST /orders HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	     strlen(body), body);
	assert_int_equal(r->status, 200);
	assert_string_equal(json_str(r->json, "method"), "POST");
	assert_string_equal(json_str(r->json, "body"), body);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(r->json, "body_len")->valueint,
			 (int)strlen(body));
}

static void body_sent_in_pieces_with_pauses_reaches_the_handler_whole(void **state)
{
	static const char *const pieces[] = { "abcdefghij", "klmnopqrst", "uvwxyz" };
	assert_pieces_arrive_whole(*state, POST_ECHO "Content-Length: 26\r\n\r\n", pieces, 3,
				   "abcdefghijklmnopqrstuvwxyz");
}

static void chunked_body_sent_with_pauses_reaches_the_handler_whole(void **state)
{
	static const char *const pieces[] = { "5\r\nhello\r\n", "6\r\n world\r\n", "0\r\n\r\n" };
	assert_pieces_arrive_whole(*state, POST_ECHO_CHUNKED, pieces, 3, "hello world");
}

/* LEN printable bytes, owned by the fixture. */
static const char *body_of(struct fixture *f, size_t len)
{
	free(f->scratch);
	char *b = f->scratch = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		b[i] = (char)('a' + i % 26);
	b[len] = '\0';
	return b;
}

static void body_of_exactly_the_limit_is_accepted(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	const char *body = body_of(f, WEB_BODY_MAX);
	http(f->port, r, POST_ECHO "Content-Length: %d\r\n\r\n%s", WEB_BODY_MAX, body);
	assert_int_equal(r->status, 200);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(r->json, "body_len")->valueint,
			 WEB_BODY_MAX);
	assert_string_equal(json_str(r->json, "body"), body);
}

static void chunked_body_of_exactly_the_limit_is_accepted(void **state)
{
	struct fixture *f = *state;
	const char *body = body_of(f, WEB_BODY_MAX);
	int fd = request_open(f, POST_ECHO_CHUNKED);
	assert_true(client_send_chunks(fd, body, 4096, WEB_BODY_MAX / 4096, true));
	assert_true(client_send_str(fd, "0\r\n\r\n"));
	struct reply *r = request_finish(f, fd);
	assert_int_equal(r->status, 200);
	assert_string_equal(json_str(r->json, "body"), body);
}

static void announced_body_over_the_limit_gets_413_and_the_handler_is_not_called(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	char buf[128];
	/* Only the headers are sent: the answer must come without the body
	 * being read at all. */
	http(f->port, r, POST_ECHO "Content-Length: %d\r\n\r\n", WEB_BODY_MAX + 1);
	assert_int_equal(r->status, 413);
	assert_error_shape(r, "payload_too_large");
	assert_non_null(reply_header(r, "X-Request-Id", buf, sizeof(buf)));
	assert_string_equal(reply_header(r, "Content-Type", buf, sizeof(buf)), "application/json");
	assert_int_equal(atomic_load(&f->calls), 0);
}

static void chunked_body_over_the_limit_gets_413_and_the_handler_is_not_called(void **state)
{
	struct fixture *f = *state;
	const char *body = body_of(f, 16384);
	int fd = request_open(f, POST_ECHO_CHUNKED);
	/* 4 x 16 KiB + 1 byte = WEB_BODY_MAX + 1. Send failures are tolerated:
	 * the server may answer and stop reading before the end. */
	if (client_send_chunks(fd, body, 16384, 4, false))
		client_send_str(fd, "1\r\nz\r\n0\r\n\r\n");
	struct reply *r = request_finish(f, fd);
	assert_int_equal(r->status, 413);
	assert_error_shape(r, "payload_too_large");
	assert_int_equal(atomic_load(&f->calls), 0);
}

static void query_args_are_readable_and_decoded(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	http_get(f->port, "/echo?q=hello%20world&flag=1", r);
	assert_int_equal(r->status, 200);
	assert_string_equal(json_str(r->json, "q"), "hello world");
	assert_string_equal(json_str(r->json, "flag"), "1");

	http_get(f->port, "/echo", r);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r->json, "q")));
}

static void path_excludes_the_query(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	http_get(f->port, "/orders/42?q=x", r);
	assert_int_equal(r->status, 200);
	assert_string_equal(json_str(r->json, "path"), "/orders/42");
}

static void request_headers_are_looked_up_case_insensitively(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	http(f->port, r,
	     "GET /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-TEST: yes\r\n\r\n");
	assert_int_equal(r->status, 200);
	assert_string_equal(json_str(r->json, "x_test"), "yes");
}

static void handler_leaving_status_zero_gives_500_internal(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	char buf[128];
	get_error(f, "/nostatus", 500, "internal");
	assert_null(reply_header(r, "X-Ignored", buf, sizeof(buf)));
	assert_non_null(reply_header(r, "X-Request-Id", buf, sizeof(buf)));
}

static void error_details_are_an_empty_array_by_default(void **state)
{
	const cJSON *error = get_error(*state, "/error", 422, "invalid_input");
	assert_string_equal(json_str(error, "message"), "bad input");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(error, "details")), 0);
}

static void error_details_given_by_the_handler_are_kept(void **state)
{
	const cJSON *error = get_error(*state, "/error-details", 422, "invalid_input");
	const cJSON *details = cJSON_GetObjectItemCaseSensitive(error, "details");
	assert_int_equal(cJSON_GetArraySize(details), 1);
	assert_string_equal(json_str(cJSON_GetArrayItem(details, 0), "field"), "sku");
	assert_string_equal(json_str(cJSON_GetArrayItem(details, 0), "problem"), "missing");
}

static void response_without_body_has_no_content_type(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	char buf[128];
	http_get(f->port, "/empty", r);
	assert_int_equal(r->status, 204);
	assert_int_equal(r->body_len, 0);
	assert_null(reply_header(r, "Content-Type", buf, sizeof(buf)));
	assert_non_null(reply_header(r, "X-Request-Id", buf, sizeof(buf)));
	assert_string_equal(reply_header(r, "Cache-Control", buf, sizeof(buf)), "no-store");
}

static void text_body_is_sent_as_it_is_with_its_content_type(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	char buf[128];
	http_get(f->port, "/text", r);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->body_len, strlen("a 1\nb{x=\"y\"} 2\n"));
	assert_memory_equal(r->body, "a 1\nb{x=\"y\"} 2\n", r->body_len);
	assert_string_equal(reply_header(r, "Content-Type", buf, sizeof(buf)),
			    "text/plain; version=0.0.4");
}

static void handler_header_is_sent_with_its_value_copied(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	char buf[128];
	http_get(f->port, "/header", r);
	assert_int_equal(r->status, 200);
	assert_string_equal(reply_header(r, "X-Custom", buf, sizeof(buf)), "copied");
	assert_string_equal(reply_header(r, "Cache-Control", buf, sizeof(buf)), "no-store");
}

struct client_job {
	uint16_t port;
	int n;
	pthread_barrier_t *start;
	bool ok;
	char why[128];
};

static void *concurrent_client(void *arg)
{
	struct client_job *job = arg;
	struct reply r = { 0 };
	char id[32], body[32], q[32], buf[128];
	snprintf(id, sizeof(id), "client-%d", job->n);
	snprintf(body, sizeof(body), "body-of-%d", job->n);
	snprintf(q, sizeof(q), "q-%d", job->n);
	char *request = xasprintf("POST /echo?q=%s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
				  "X-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n%s",
				  q, id, strlen(body), body);
	pthread_barrier_wait(job->start);
	int fd = client_connect(job->port);
	if (fd < 0) {
		snprintf(job->why, sizeof(job->why), "connect failed: %s", strerror(errno));
		free(request);
		return NULL;
	}
	client_send_str(fd, request);
	client_read(fd, &r);
	close(fd);
	free(request);
	const char *got_id = reply_header(&r, "X-Request-Id", buf, sizeof(buf));
	if (r.status != 200 || !r.json)
		snprintf(job->why, sizeof(job->why), "status %d", r.status);
	else if (!got_id || strcmp(got_id, id) != 0)
		snprintf(job->why, sizeof(job->why), "request id %s", got_id ? got_id : "(none)");
	else if (!json_str(r.json, "body") || strcmp(json_str(r.json, "body"), body) != 0)
		snprintf(job->why, sizeof(job->why), "body mismatch");
	else if (!json_str(r.json, "q") || strcmp(json_str(r.json, "q"), q) != 0)
		snprintf(job->why, sizeof(job->why), "query mismatch");
	else
		job->ok = true;
	reply_free(&r);
	return NULL;
}

static void fifty_concurrent_clients_all_get_their_own_responses(void **state)
{
	struct fixture *f = *state;
	pthread_t threads[CLIENTS];
	struct client_job jobs[CLIENTS];
	pthread_barrier_t start;
	assert_int_equal(pthread_barrier_init(&start, NULL, CLIENTS), 0);
	for (int i = 0; i < CLIENTS; i++) {
		jobs[i] = (struct client_job){ .port = f->port, .n = i, .start = &start };
		assert_int_equal(pthread_create(&threads[i], NULL, concurrent_client, &jobs[i]), 0);
	}
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
	int ok = 0;
	for (int i = 0; i < CLIENTS; i++) {
		if (jobs[i].ok)
			ok++;
		else
			print_error("client %d: %s\n", i, jobs[i].why);
	}
	assert_int_equal(ok, CLIENTS);
	assert_int_equal(atomic_load(&f->calls), CLIENTS);
}

struct slow_job {
	uint16_t port;
	int status;
	int64_t elapsed_ms;
};

static void *slow_client(void *arg)
{
	struct slow_job *job = arg;
	struct reply r = { 0 };
	int64_t t0 = clock_mono_ms();
	int fd = client_connect(job->port);
	if (fd >= 0) {
		client_send_str(fd,
				"GET /sleep HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
		client_read(fd, &r);
		close(fd);
		job->status = r.status;
		reply_free(&r);
	}
	job->elapsed_ms = clock_mono_ms() - t0;
	return NULL;
}

static void blocking_handler_does_not_delay_a_concurrent_request(void **state)
{
	struct fixture *f = *state;
	struct slow_job slow = { .port = f->port };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, slow_client, &slow), 0);
	/* Wait until the slow handler is running. */
	int64_t deadline = clock_mono_ms() + 5000;
	while (atomic_load(&f->calls) < 1 && clock_mono_ms() < deadline)
		clock_sleep_ms(5);
	assert_int_equal(atomic_load(&f->calls), 1);

	struct reply *r = &f->reply;
	int64_t t0 = clock_mono_ms();
	http_get(f->port, "/echo", r);
	int64_t fast_ms = clock_mono_ms() - t0;
	assert_int_equal(r->status, 200);
	assert_true(fast_ms < 500);

	pthread_join(t, NULL);
	assert_int_equal(slow.status, 200);
	assert_true(slow.elapsed_ms >= 1000);
}

static void stop_frees_requests_still_in_flight(void **state)
{
	struct fixture *f = *state;
	/* One request mid-body (its buffer is allocated) and one idle
	 * connection when the server stops. */
	int busy = client_connect(f->port);
	int idle = client_connect(f->port);
	assert_true(busy >= 0 && idle >= 0);
	assert_true(client_send_str(busy, "POST /echo HTTP/1.1\r\nHost: test\r\n"
					  "Content-Length: 100\r\n\r\n0123456789"));
	clock_sleep_ms(200);
	web_server_stop(f->server);
	f->server = NULL;

	char c;
	assert_true(recv(busy, &c, 1, 0) <= 0); /* closed without an answer */
	close(busy);
	close(idle);
	assert_int_equal(atomic_load(&f->calls), 0);
#ifdef __SANITIZE_ADDRESS__
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
#endif
}

/* Polls (up to 3 s) until N stream producers were released. */
static bool released_becomes(struct fixture *f, int n)
{
	for (int i = 0; i < 300 && atomic_load(&f->released) != n; i++)
		clock_sleep_ms(10);
	return atomic_load(&f->released) == n;
}

static void streamed_body_arrives_in_order_and_its_producer_is_released_once(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	char type[64];
	http_get(f->port, "/stream", r);
	assert_int_equal(r->status, 200);
	assert_string_equal(reply_header(r, "Content-Type", type, sizeof(type)),
			    "text/event-stream");
	const char *e0 = strstr(r->raw, "event 0\n");
	const char *e1 = strstr(r->raw, "event 1\n");
	const char *e2 = strstr(r->raw, "event 2\n");
	assert_non_null(e0);
	assert_true(e1 > e0 && e2 > e1);
	assert_null(strstr(r->raw, "event 3"));
	assert_true(released_becomes(f, 1));
}

static void stream_producer_is_released_when_the_client_goes_away(void **state)
{
	struct fixture *f = *state;
	int fd = request_open(f, "GET /stream-ticking HTTP/1.1\r\nHost: test\r\n\r\n");
	char buf[256];
	assert_true(recv(fd, buf, sizeof(buf), 0) > 0); /* the stream has started */
	close(fd);
	assert_true(released_becomes(f, 1));
}

static void idle_stream_producer_is_released_soon_after_the_client_goes_away(void **state)
{
	struct fixture *f = *state;
	int fd = request_open(f, "GET /stream-idle HTTP/1.1\r\nHost: test\r\n\r\n");
	char buf[256];
	assert_true(recv(fd, buf, sizeof(buf), 0) > 0); /* the head has come */
	close(fd);
	assert_true(released_becomes(f, 1)); /* without a write to fail */
}

static void stop_ends_a_stream_waiting_for_data_and_releases_it(void **state)
{
	struct fixture *f = *state;
	int fd = request_open(f, "GET /stream-idle HTTP/1.1\r\nHost: test\r\n\r\n");
	clock_sleep_ms(200); /* the producer is waiting */
	int64_t t0 = clock_mono_ms();
	web_server_stop(f->server);
	f->server = NULL;
	int64_t stop_ms = clock_mono_ms() - t0;
	close(fd);
	assert_true(stop_ms < 2 * WEB_STREAM_WAIT_MAX_MS + 500);
	assert_int_equal(atomic_load(&f->released), 1);
}

static void stream_replaced_by_another_response_is_released_unsent(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	http_get(f->port, "/stream-replaced", r);
	assert_int_equal(r->status, 409);
	assert_error_shape(r, "conflict");
	assert_int_equal(atomic_load(&f->released), 1);
}

/* ---- the front door: deadlines and the per-address limit ---- */

/* Small limits, so the cases wait a fraction of a second, not the real 10 s. */
#define TEST_PER_IP 4
#define TEST_HEAD_DEADLINE_MS 400
#define TEST_BODY_DEADLINE_MS 600
/* A cut comes within a watcher round of the deadline, plus scheduling. */
#define TEST_CUT_SLACK_MS (WEB_DEADLINE_CHECK_MS + 750)
#define TEST_TRICKLE_MS 50 /* a byte this often: never idle, never done */

static int limited_server_up(void **state)
{
	static const struct web_limits limits = {
		.connections_per_ip = TEST_PER_IP,
		.header_deadline_ms = TEST_HEAD_DEADLINE_MS,
		.body_deadline_ms = TEST_BODY_DEADLINE_MS,
	};
	struct fixture *f = fixture_new();
	if (web_server_start_limited("127.0.0.1", 0, test_handler, f, &limits, &f->server) !=
	    SHOP_OK) {
		fixture_free(f);
		return -1;
	}
	f->port = web_server_port(f->server);
	*state = f;
	return f->port ? 0 : -1;
}

/* The same front door on the pool, and at most TEST_PENDING_MAX pending. */
#define TEST_PENDING_MAX 3
static int limited_pool_server_up(void **state)
{
	static const struct web_limits limits = {
		.connections_per_ip = TEST_PER_IP,
		.header_deadline_ms = TEST_HEAD_DEADLINE_MS,
		.body_deadline_ms = TEST_BODY_DEADLINE_MS,
		.mode = WEB_MODE_POOL,
		.pending_max = TEST_PENDING_MAX,
	};
	struct fixture *f = fixture_new();
	if (web_server_start_limited("127.0.0.1", 0, test_handler, f, &limits, &f->server) !=
	    SHOP_OK) {
		fixture_free(f);
		return -1;
	}
	f->port = web_server_port(f->server);
	*state = f;
	return f->port ? 0 : -1;
}

/* Sends one byte of PIECE every TEST_TRICKLE_MS (wrapping round) until the
 * server closes the connection or LIMIT_MS pass; returns how long the
 * connection lasted, or -1 if it outlived LIMIT_MS. Whatever came back
 * lands in the fixture's reply. */
static int64_t trickle_until_closed(struct fixture *f, int fd, const char *piece, int64_t limit_ms)
{
	int64_t t0 = clock_mono_ms();
	size_t len = strlen(piece);
	for (size_t i = 0; clock_mono_ms() - t0 < limit_ms; i++) {
		if (!client_send(fd, piece + i % len, 1))
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, TEST_TRICKLE_MS) > 0)
			break; /* an answer, or the close */
	}
	int64_t lasted = clock_mono_ms() - t0;
	if (lasted >= limit_ms)
		return -1;
	client_read(fd, &f->reply);
	return lasted;
}

static void a_trickled_request_head_is_cut_at_its_deadline(void **state)
{
	struct fixture *f = *state;
	int fd = request_open(f, "GET /echo HTTP/1.1\r\nHost: test\r\n");
	int64_t lasted = trickle_until_closed(f, fd, "X-Slow: aaaa\r\n", 5000);
	close(fd);
	print_message("# cut after %lld ms\n", (long long)lasted);
	assert_true(lasted >= TEST_HEAD_DEADLINE_MS - TEST_TRICKLE_MS);
	assert_true(lasted < TEST_HEAD_DEADLINE_MS + TEST_CUT_SLACK_MS);
	assert_int_equal(f->reply.status, 0); /* cut, not answered */
	assert_int_equal(atomic_load(&f->calls), 0);
	assert_int_equal(web_server_cut_count(f->server), 1);
}

static void a_trickled_request_body_is_cut_at_its_deadline(void **state)
{
	struct fixture *f = *state;
	int fd = request_open(f, POST_ECHO "Content-Length: 1000\r\n\r\n");
	int64_t lasted = trickle_until_closed(f, fd, "x", 5000);
	close(fd);
	print_message("# cut after %lld ms\n", (long long)lasted);
	assert_true(lasted >= TEST_BODY_DEADLINE_MS - TEST_TRICKLE_MS);
	assert_true(lasted < TEST_BODY_DEADLINE_MS + TEST_CUT_SLACK_MS);
	assert_int_equal(atomic_load(&f->calls), 0);
	assert_int_equal(web_server_cut_count(f->server), 1);
}

/* Deadlines are for getting the request in: a handler that takes longer
 * than both (a long-poll) is not cut. */
static void a_slow_handler_is_not_cut_by_the_deadlines(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	http_get(f->port, "/sleep", r);
	assert_int_equal(r->status, 200);
	assert_int_equal(web_server_cut_count(f->server), 0);
}

/* A kept-alive connection's next request head has the same deadline,
 * counted from the previous response. */
static void an_idle_kept_alive_connection_is_closed_at_the_head_deadline(void **state)
{
	struct fixture *f = *state;
	int fd = request_open(f, "GET /echo HTTP/1.1\r\nHost: test\r\n\r\n");
	int64_t t0 = clock_mono_ms();
	struct reply *r = request_finish(f, fd); /* reads until the server closes */
	int64_t lasted = clock_mono_ms() - t0;
	assert_int_equal(r->status, 200);
	assert_true(lasted >= TEST_HEAD_DEADLINE_MS - TEST_TRICKLE_MS);
	assert_true(lasted < TEST_HEAD_DEADLINE_MS + TEST_CUT_SLACK_MS);
}

/* A connection from ADDR (a loopback address) to PORT, or -1. */
static int client_connect_from(uint16_t port, const char *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in me = { .sin_family = AF_INET };
	inet_pton(AF_INET, addr, &me.sin_addr);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* True when the server closes FD within MS without a byte of answer. */
static bool closed_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, ms) <= 0)
		return false;
	char c;
	return recv(fd, &c, 1, 0) <= 0;
}

static void one_address_gets_its_share_of_connections_and_others_still_get_in(void **state)
{
	struct fixture *f = *state;
	int held[TEST_PER_IP];
	for (int i = 0; i < TEST_PER_IP; i++) {
		held[i] = client_connect_from(f->port, "127.0.0.2");
		assert_true(held[i] >= 0);
		assert_false(closed_within(held[i], 50)); /* accepted and kept */
	}
	/* One more from the same address: accepted by the kernel, closed by
	 * the server at once. */
	int extra = client_connect_from(f->port, "127.0.0.2");
	assert_true(extra >= 0);
	assert_true(closed_within(extra, 2000));
	close(extra);
	/* Another address still gets in and is answered. */
	int other = client_connect_from(f->port, "127.0.0.3");
	assert_true(other >= 0);
	assert_true(client_send_str(other, "GET /echo HTTP/1.1\r\nHost: test\r\n"
					   "Connection: close\r\n\r\n"));
	struct reply *r = request_finish(f, other);
	assert_int_equal(r->status, 200);
	for (int i = 0; i < TEST_PER_IP; i++)
		close(held[i]);
}

/* ---- pending requests (pool mode) ---- */

/* A client on its own thread: GET PATH, the reply kept. */
struct waiting_client {
	uint16_t port;
	const char *path;
	struct reply reply;
	atomic_bool done;
	pthread_t thread;
};

static void *waiting_client_main(void *arg)
{
	struct waiting_client *w = arg;
	int fd = client_connect(w->port);
	if (fd >= 0) {
		char request[256];
		snprintf(request, sizeof(request),
			 "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", w->path);
		client_send_str(fd, request);
		client_read(fd, &w->reply);
		close(fd);
	}
	atomic_store(&w->done, true);
	return NULL;
}

static void waiting_clients_start(struct waiting_client *w, int n, uint16_t port, const char *path)
{
	for (int i = 0; i < n; i++) {
		w[i] = (struct waiting_client){ .port = port, .path = path };
		atomic_init(&w[i].done, false);
		assert_int_equal(pthread_create(&w[i].thread, NULL, waiting_client_main, &w[i]), 0);
	}
}

static void waiting_clients_join(struct waiting_client *w, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(w[i].thread, NULL);
}

static void waiting_clients_free(struct waiting_client *w, int n)
{
	for (int i = 0; i < n; i++)
		reply_free(&w[i].reply);
}

/* Polls (up to 5 s) until the handler holds N pending requests. */
static bool held_becomes(struct fixture *f, int n)
{
	for (int i = 0; i < 500 && held_count(f) != n; i++)
		clock_sleep_ms(10);
	return held_count(f) == n;
}

/* Polls (up to 5 s) until the server counts N pending requests. */
static bool pending_becomes(struct fixture *f, unsigned int n)
{
	for (int i = 0; i < 500 && web_server_pending_count(f->server) != n; i++)
		clock_sleep_ms(10);
	return web_server_pending_count(f->server) == n;
}

static void a_pending_request_is_answered_when_another_thread_completes_it(void **state)
{
	struct fixture *f = *state;
	struct waiting_client w;
	char buf[128];
	waiting_clients_start(&w, 1, f->port, "/pending");
	assert_true(held_becomes(f, 1));
	assert_int_equal(web_server_pending_count(f->server), 1);
	clock_sleep_ms(200);
	assert_false(atomic_load(&w.done)); /* suspended, not answered */

	assert_true(answer(take_held(f), 42));
	waiting_clients_join(&w, 1);
	assert_int_equal(w.reply.status, 200);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(w.reply.json, "answer")->valueint, 42);
	assert_string_equal(reply_header(&w.reply, "X-Answered", buf, sizeof(buf)), "later");
	assert_null(reply_header(&w.reply, "X-Dropped", buf, sizeof(buf)));
	assert_non_null(reply_header(&w.reply, "X-Request-Id", buf, sizeof(buf)));
	assert_string_equal(reply_header(&w.reply, "Content-Type", buf, sizeof(buf)),
			    "application/json");
	assert_true(pending_becomes(f, 0));
	waiting_clients_free(&w, 1);
}

static void a_pending_request_answered_before_its_handler_returns_is_sent(void **state)
{
	struct fixture *f = *state;
	struct reply *r = &f->reply;
	http_get(f->port, "/pending-quick", r);
	assert_int_equal(r->status, 200);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(r->json, "answer")->valueint, 7);
	assert_true(pending_becomes(f, 0));
}

/* Many more pending requests than pool threads: none holds a thread, so
 * another request is answered at once, and each gets its own answer. */
#define HELD_MANY (4 * WEB_POOL_THREADS)
static void pending_requests_hold_no_thread(void **state)
{
	struct fixture *f = *state;
	struct waiting_client w[HELD_MANY];
	waiting_clients_start(w, HELD_MANY, f->port, "/pending");
	assert_true(held_becomes(f, HELD_MANY));

	struct reply *r = &f->reply;
	int64_t t0 = clock_mono_ms();
	http_get(f->port, "/echo", r);
	int64_t took = clock_mono_ms() - t0;
	assert_int_equal(r->status, 200);
	assert_true(took < 500);

	/* Answered from this thread, in the order they came: each client
	 * finds its own number. */
	struct web_pending *order[HELD_MANY];
	for (int i = 0; i < HELD_MANY; i++)
		order[i] = take_held(f);
	for (int i = 0; i < HELD_MANY; i++)
		assert_true(answer(order[i], 1000 + i));
	waiting_clients_join(w, HELD_MANY);
	int sum = 0;
	for (int i = 0; i < HELD_MANY; i++) {
		assert_int_equal(w[i].reply.status, 200);
		sum += cJSON_GetObjectItemCaseSensitive(w[i].reply.json, "answer")->valueint;
	}
	assert_int_equal(sum, HELD_MANY * 1000 + HELD_MANY * (HELD_MANY - 1) / 2);
	assert_true(pending_becomes(f, 0));
	waiting_clients_free(w, HELD_MANY);
}

/* The client closes while its request is pending: the server closes its
 * side soon (the pending count falls), the handle says so, and completing
 * it afterwards only frees the answer (ASan would see a use after free). */
static void a_client_that_leaves_while_pending_is_let_go_and_completing_it_later_is_safe(
	void **state)
{
	struct fixture *f = *state;
	int fd = request_open(f, "GET /pending HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_true(held_becomes(f, 1));
	assert_int_equal(web_server_pending_count(f->server), 1);
	close(fd);
	assert_true(pending_becomes(f, 0));
	struct web_pending *p = take_held(f);
	assert_false(web_pending_waiting(p));
	assert_false(answer(p, 1));

	/* The server goes on serving. */
	http_get(f->port, "/echo", &f->reply);
	assert_int_equal(f->reply.status, 200);
#ifdef __SANITIZE_ADDRESS__
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
#endif
}

/* With the cap's worth pending, one more is refused at once, 503 busy with
 * Retry-After, and the held ones are still answered. */
static void a_pending_request_over_the_cap_gets_503_busy_with_retry_after(void **state)
{
	struct fixture *f = *state;
	struct waiting_client w[TEST_PENDING_MAX];
	char buf[32];
	waiting_clients_start(w, TEST_PENDING_MAX, f->port, "/pending");
	assert_true(held_becomes(f, TEST_PENDING_MAX));
	assert_int_equal(web_server_pending_count(f->server), TEST_PENDING_MAX);

	int64_t t0 = clock_mono_ms();
	get_error(f, "/pending", 503, "busy");
	assert_true(clock_mono_ms() - t0 < 500);
	assert_string_equal(reply_header(&f->reply, "Retry-After", buf, sizeof(buf)),
			    WEB_PENDING_RETRY_AFTER_S);
	assert_int_equal(held_count(f), TEST_PENDING_MAX);

	for (int i = 0; i < TEST_PENDING_MAX; i++)
		assert_true(answer(take_held(f), i));
	waiting_clients_join(w, TEST_PENDING_MAX);
	for (int i = 0; i < TEST_PENDING_MAX; i++)
		assert_int_equal(w[i].reply.status, 200);
	/* Places given back: a new one is held again. */
	assert_true(pending_becomes(f, 0));
	waiting_clients_free(w, TEST_PENDING_MAX);
	waiting_clients_start(w, 1, f->port, "/pending");
	assert_true(held_becomes(f, 1));
	assert_true(answer(take_held(f), 0));
	waiting_clients_join(w, 1);
	assert_int_equal(w[0].reply.status, 200);
	waiting_clients_free(w, 1);
}

/* Stop answers every pending request 503 "stopping" and returns promptly;
 * the handles completed after it only free their answers. */
static void stop_answers_pending_requests_and_later_completions_are_safe(void **state)
{
	struct fixture *f = *state;
	struct waiting_client w[3];
	waiting_clients_start(w, 3, f->port, "/pending");
	assert_true(held_becomes(f, 3));
	int64_t t0 = clock_mono_ms();
	web_server_stop(f->server);
	f->server = NULL;
	int64_t took = clock_mono_ms() - t0;
	waiting_clients_join(w, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(w[i].reply.status, 503);
		assert_error_shape(&w[i].reply, "stopping");
	}
	assert_true(took < WEB_STOP_GRACE_MS + 1000);
	for (struct web_pending *p; (p = take_held(f));)
		assert_false(answer(p, 0));
	waiting_clients_free(w, 3);
#ifdef __SANITIZE_ADDRESS__
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
#endif
}

static void a_pending_response_on_a_thread_per_connection_server_is_a_500(void **state)
{
	struct fixture *f = *state;
	get_error(f, "/pending", 500, "internal");
	assert_int_equal(held_count(f), 0);
}

static void a_stream_on_a_pool_server_is_a_500_and_its_producer_released(void **state)
{
	struct fixture *f = *state;
	get_error(f, "/stream", 500, "internal");
	assert_true(released_becomes(f, 1));
}

static void server_start_rejects_a_malformed_address(void **state)
{
	struct web_server *s = NULL;
	assert_int_equal(web_server_start("not-an-address", 0, test_handler, NULL, &s),
			 SHOP_E_INVALID);
	assert_null(s);
	assert_int_equal(web_server_start("127.0.0.1", 0, NULL, NULL, &s), SHOP_E_INVALID);
	assert_null(s);
	web_server_stop(NULL);
}

#define WEB_TEST(name) cmocka_unit_test_setup_teardown(name, server_up, server_down)
#define POOL_TEST(name) cmocka_unit_test_setup_teardown(name, pool_server_up, server_down)
#define LIMITED_TEST(name) cmocka_unit_test_setup_teardown(name, limited_server_up, server_down)
#define LIMITED_POOL_TEST(name)                                                                    \
	cmocka_unit_test_setup_teardown(name, limited_pool_server_up, server_down)

int main(void)
{
	xalloc_init_cjson();
	const struct CMUnitTest tests[] = {
		WEB_TEST(get_returns_the_handlers_json_with_a_request_id),
		WEB_TEST(valid_incoming_request_id_is_echoed),
		WEB_TEST(invalid_incoming_request_id_is_replaced_by_a_fresh_uuid7),
		WEB_TEST(post_body_reaches_the_handler_intact),
		WEB_TEST(body_sent_in_pieces_with_pauses_reaches_the_handler_whole),
		WEB_TEST(chunked_body_sent_with_pauses_reaches_the_handler_whole),
		WEB_TEST(body_of_exactly_the_limit_is_accepted),
		WEB_TEST(chunked_body_of_exactly_the_limit_is_accepted),
		WEB_TEST(announced_body_over_the_limit_gets_413_and_the_handler_is_not_called),
		WEB_TEST(chunked_body_over_the_limit_gets_413_and_the_handler_is_not_called),
		WEB_TEST(query_args_are_readable_and_decoded),
		WEB_TEST(path_excludes_the_query),
		WEB_TEST(request_headers_are_looked_up_case_insensitively),
		WEB_TEST(handler_leaving_status_zero_gives_500_internal),
		WEB_TEST(error_details_are_an_empty_array_by_default),
		WEB_TEST(error_details_given_by_the_handler_are_kept),
		WEB_TEST(response_without_body_has_no_content_type),
		WEB_TEST(text_body_is_sent_as_it_is_with_its_content_type),
		WEB_TEST(handler_header_is_sent_with_its_value_copied),
		WEB_TEST(fifty_concurrent_clients_all_get_their_own_responses),
		WEB_TEST(blocking_handler_does_not_delay_a_concurrent_request),
		WEB_TEST(stop_frees_requests_still_in_flight),
		WEB_TEST(streamed_body_arrives_in_order_and_its_producer_is_released_once),
		WEB_TEST(stream_producer_is_released_when_the_client_goes_away),
		WEB_TEST(idle_stream_producer_is_released_soon_after_the_client_goes_away),
		WEB_TEST(stop_ends_a_stream_waiting_for_data_and_releases_it),
		WEB_TEST(stream_replaced_by_another_response_is_released_unsent),
		cmocka_unit_test(server_start_rejects_a_malformed_address),
		LIMITED_TEST(a_trickled_request_head_is_cut_at_its_deadline),
		LIMITED_TEST(a_trickled_request_body_is_cut_at_its_deadline),
		LIMITED_TEST(a_slow_handler_is_not_cut_by_the_deadlines),
		LIMITED_TEST(an_idle_kept_alive_connection_is_closed_at_the_head_deadline),
		LIMITED_TEST(one_address_gets_its_share_of_connections_and_others_still_get_in),
		WEB_TEST(a_pending_response_on_a_thread_per_connection_server_is_a_500),
		/* The pool: the same transport rules and front door ... */
		POOL_TEST(get_returns_the_handlers_json_with_a_request_id),
		POOL_TEST(post_body_reaches_the_handler_intact),
		POOL_TEST(body_sent_in_pieces_with_pauses_reaches_the_handler_whole),
		POOL_TEST(chunked_body_sent_with_pauses_reaches_the_handler_whole),
		POOL_TEST(body_of_exactly_the_limit_is_accepted),
		POOL_TEST(announced_body_over_the_limit_gets_413_and_the_handler_is_not_called),
		POOL_TEST(chunked_body_over_the_limit_gets_413_and_the_handler_is_not_called),
		POOL_TEST(handler_leaving_status_zero_gives_500_internal),
		POOL_TEST(fifty_concurrent_clients_all_get_their_own_responses),
		POOL_TEST(stop_frees_requests_still_in_flight),
		POOL_TEST(a_stream_on_a_pool_server_is_a_500_and_its_producer_released),
		LIMITED_POOL_TEST(a_trickled_request_head_is_cut_at_its_deadline),
		LIMITED_POOL_TEST(a_trickled_request_body_is_cut_at_its_deadline),
		LIMITED_POOL_TEST(an_idle_kept_alive_connection_is_closed_at_the_head_deadline),
		LIMITED_POOL_TEST(
			one_address_gets_its_share_of_connections_and_others_still_get_in),
		/* ... and pending requests. */
		POOL_TEST(a_pending_request_is_answered_when_another_thread_completes_it),
		POOL_TEST(a_pending_request_answered_before_its_handler_returns_is_sent),
		POOL_TEST(pending_requests_hold_no_thread),
		POOL_TEST(
			a_client_that_leaves_while_pending_is_let_go_and_completing_it_later_is_safe),
		LIMITED_POOL_TEST(a_pending_request_over_the_cap_gets_503_busy_with_retry_after),
		POOL_TEST(stop_answers_pending_requests_and_later_completions_are_safe),
	};
	return cmocka_run_group_tests_name("web", tests, NULL, NULL);
}
