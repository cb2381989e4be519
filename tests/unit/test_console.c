/*
 * test_console.c - the console's pure parts: the per-client queue and its
 * bounds, SSE framing, the order filter, the ?since= parser and the parser
 * of the gateway's and NATS monitoring's answers, and the GET that reads a
 * NATS node's /varz, against a local listener that answers as nats-server
 * does (services/console/console_sse.c, console_proxy.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/console/console.h"
#include "core/xalloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct console_frame frame_of(const char *s)
{
	return (struct console_frame){ .text = xstrdup(s), .len = strlen(s) };
}

static void queue_hands_frames_back_in_order(void **state)
{
	struct console_queue q;
	struct console_frame f;
	console_queue_init(&q);
	assert_int_equal(console_queue_push(&q, frame_of("a")), SHOP_OK);
	assert_int_equal(console_queue_push(&q, frame_of("bb")), SHOP_OK);
	assert_int_equal(q.bytes, 3);
	assert_true(console_queue_pop(&q, &f));
	assert_string_equal(f.text, "a");
	free(f.text);
	assert_int_equal(console_queue_push(&q, frame_of("c")), SHOP_OK);
	assert_true(console_queue_pop(&q, &f));
	assert_string_equal(f.text, "bb");
	free(f.text);
	assert_true(console_queue_pop(&q, &f));
	assert_string_equal(f.text, "c");
	free(f.text);
	assert_false(console_queue_pop(&q, &f));
	assert_int_equal(q.bytes, 0);
	console_queue_release(&q);
}

static void queue_refuses_the_frame_past_its_count_and_keeps_what_it_has(void **state)
{
	struct console_queue q;
	struct console_frame f;
	console_queue_init(&q);
	for (size_t i = 0; i < CONSOLE_QUEUE_MAX; i++)
		assert_int_equal(console_queue_push(&q, frame_of("x")), SHOP_OK);
	struct console_frame extra = frame_of("y");
	assert_int_equal(console_queue_push(&q, extra), SHOP_E_LIMIT);
	free(extra.text); /* still the caller's */
	assert_int_equal(q.n, CONSOLE_QUEUE_MAX);
	/* Wrapping around the ring keeps the order. */
	assert_true(console_queue_pop(&q, &f));
	free(f.text);
	assert_int_equal(console_queue_push(&q, frame_of("last")), SHOP_OK);
	for (size_t i = 0; i < CONSOLE_QUEUE_MAX - 1; i++) {
		assert_true(console_queue_pop(&q, &f));
		assert_string_equal(f.text, "x");
		free(f.text);
	}
	assert_true(console_queue_pop(&q, &f));
	assert_string_equal(f.text, "last");
	free(f.text);
	console_queue_release(&q);
}

static void queue_refuses_the_frame_past_its_bytes(void **state)
{
	struct console_queue q;
	console_queue_init(&q);
	struct console_frame big = { .text = xmalloc(CONSOLE_QUEUE_BYTES_MAX / 2 + 1),
				     .len = CONSOLE_QUEUE_BYTES_MAX / 2 };
	struct console_frame big2 = { .text = xmalloc(CONSOLE_QUEUE_BYTES_MAX / 2 + 1),
				      .len = CONSOLE_QUEUE_BYTES_MAX / 2 };
	struct console_frame one = frame_of("z");
	assert_int_equal(console_queue_push(&q, big), SHOP_OK);
	assert_int_equal(console_queue_push(&q, big2), SHOP_OK);
	assert_int_equal(console_queue_push(&q, one), SHOP_E_LIMIT);
	free(one.text);
	console_queue_release(&q); /* frees what it holds */
}

static void assert_frame(const char *data, const char *want)
{
	struct console_frame f = console_sse_frame(data, strlen(data));
	assert_int_equal(f.len, strlen(want));
	assert_string_equal(f.text, want);
	free(f.text);
}

static void sse_frame_is_one_data_line_and_a_blank_line(void **state)
{
	assert_frame("{\"a\":1}", "data: {\"a\":1}\n\n");
	assert_frame("", "data: \n\n");
}

static void sse_frame_splits_every_kind_of_line_break(void **state)
{
	assert_frame("{\n\"a\": 1\n}", "data: {\ndata: \"a\": 1\ndata: }\n\n");
	assert_frame("a\r\nb", "data: a\ndata: b\n\n");
	assert_frame("a\rb\r", "data: a\ndata: b\ndata: \n\n");
	assert_frame("a\n\nb", "data: a\ndata: \ndata: b\n\n");
}

#define ORDER_ID "01932c07-8f3e-7b41-9a2d-5c6e7f801234"

static bool about(const char *json, const char *id)
{
	return console_envelope_is_about(json, strlen(json), id);
}

static void envelope_filter_matches_the_subject_only(void **state)
{
	assert_true(about("{\"type\":\"t\",\"subject\":\"" ORDER_ID "\",\"data\":{}}", ORDER_ID));
	/* The id elsewhere (data, correlationid) is not the subject. */
	assert_false(
		about("{\"subject\":\"SKU-MOUSE\",\"correlationid\":\"" ORDER_ID "\"}", ORDER_ID));
	assert_false(
		about("{\"subject\":\"x\",\"data\":{\"subject\":\"" ORDER_ID "\"}}", ORDER_ID));
	/* A prefix of the id is another order. */
	assert_false(about("{\"subject\":\"" ORDER_ID "0\"}", ORDER_ID));
	assert_false(about("{\"subject\":\"" ORDER_ID, ORDER_ID)); /* not JSON */
	assert_false(about("{\"subject\":\"" ORDER_ID "\"}", ""));
}

static void order_id_must_be_short_printable_ascii(void **state)
{
	char long_id[CONSOLE_ORDER_ID_MAX + 2];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_true(console_order_id_valid(ORDER_ID));
	assert_false(console_order_id_valid(""));
	assert_false(console_order_id_valid("a b"));
	assert_false(console_order_id_valid("a\nb"));
	assert_false(console_order_id_valid(long_id));
	long_id[CONSOLE_ORDER_ID_MAX] = '\0';
	assert_true(console_order_id_valid(long_id));
}

static int64_t since(const char *s)
{
	int64_t ms = -42;
	assert_int_equal(console_rfc3339_parse(s, &ms), SHOP_OK);
	return ms;
}

static void rfc3339_times_parse_to_epoch_milliseconds(void **state)
{
	assert_int_equal(since("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(since("2026-11-27T08:55:21Z"), INT64_C(1795769721000));
	assert_int_equal(since("2026-11-27T08:55:21.097Z"), INT64_C(1795769721097));
	assert_int_equal(since("2026-11-27T08:55:21.1Z"), INT64_C(1795769721100));
	assert_int_equal(since("2026-11-27T08:55:21.123456789Z"), INT64_C(1795769721123));
	assert_int_equal(since("2026-11-27T09:55:21+01:00"), INT64_C(1795769721000));
	assert_int_equal(since("2026-11-27T03:25:21-05:30"), INT64_C(1795769721000));
	assert_int_equal(since("2024-02-29t00:00:00z"), INT64_C(1709164800000));
}

static void malformed_times_are_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"now",
		"2026-11-27",
		"2026-11-27T08:55:21",
		"2026-11-27T08:55Z",
		"2026-13-01T00:00:00Z",
		"2026-02-30T00:00:00Z",
		"2025-02-29T00:00:00Z",
		"2026-11-27T24:00:00Z",
		"2026-11-27T08:60:00Z",
		"2026-11-27T08:55:60Z",
		"2026-11-27T08:55:21.Z",
		"2026-11-27T08:55:21+0100",
		"2026-11-27T08:55:21Z ",
		"2026-11-27T08:55:21+24:00",
		"+2026-11-27T08:55:21Z",
		"2026-11-27T08:55:21.0000000000000000000000000000000Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = -42;
		if (console_rfc3339_parse(bad[i], &ms) != SHOP_E_INVALID)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(ms, -42);
	}
}

static shop_status reply(const char *raw, int *status, char *body, size_t size)
{
	size_t off = 0, n = 0;
	char *copy = xstrdup(raw); /* a chunked body is decoded in place */
	shop_status st = console_http_reply_parse(copy, strlen(copy), status, &off, &n);
	if (st == SHOP_OK)
		snprintf(body, size, "%.*s", (int)n, copy + off);
	free(copy);
	return st;
}

static void gateway_answer_gives_status_and_body(void **state)
{
	int status = 0;
	char body[128];
	assert_int_equal(reply("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
			       "content-length: 7\r\n\r\n{\"a\":1}",
			       &status, body, sizeof(body)),
			 SHOP_OK);
	assert_int_equal(status, 202);
	assert_string_equal(body, "{\"a\":1}");
	/* Without Content-Length the body runs to the end (Connection: close). */
	assert_int_equal(reply("HTTP/1.0 422 Unprocessable\r\n\r\n{}", &status, body, sizeof(body)),
			 SHOP_OK);
	assert_int_equal(status, 422);
	assert_string_equal(body, "{}");
	/* Bytes after the announced length are not the body. */
	assert_int_equal(reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk", &status, body,
			       sizeof(body)),
			 SHOP_OK);
	assert_string_equal(body, "{}");
}

static void gateway_answer_that_cannot_be_trusted_is_invalid(void **state)
{
	int status = 0;
	char body[64];
	static const char *const bad[] = {
		"",
		"HTTP/1.1 202 Accepted\r\nContent-Length: 7\r\n",       /* head not ended */
		"HTTP/1.1 202 Accepted\r\nContent-Length: 7\r\n\r\n{}", /* cut short */
		/* chunked, but malformed or cut short */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000\r\n{}\r\n0\r\n\r\n",
		/* both framings, or a coding that is not read */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 999 No\r\n\r\n",
		"SMTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (reply(bad[i], &status, body, sizeof(body)) != SHOP_E_INVALID)
			fail_msg("accepted answer %zu", i);
}

/* NATS's monitoring answers a page longer than 2 KB chunked, as a cluster
 * node's /varz is (its routes and cluster block): the console read such an
 * answer as invalid and showed every node of the three-node cluster down. */
static void chunked_answer_is_decoded(void **state)
{
	int status = 0;
	char body[128];
	assert_int_equal(reply("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n"
			       "5\r\n{\"a\":\r\nA;ext=1\r\n\"0123456\"}\r\n0\r\n\r\n",
			       &status, body, sizeof(body)),
			 SHOP_OK);
	assert_int_equal(status, 200);
	assert_string_equal(body, "{\"a\":\"0123456\"}");
	/* Trailers after the last chunk are skipped; hex in either case. */
	assert_int_equal(reply("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
			       "b\r\n{\"x\":[1,2]}\r\n0\r\nX-Trailer: y\r\n\r\n",
			       &status, body, sizeof(body)),
			 SHOP_OK);
	assert_string_equal(body, "{\"x\":[1,2]}");
	assert_int_equal(
		reply("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		      &status, body, sizeof(body)),
		SHOP_OK);
	assert_int_equal(status, 204);
	assert_string_equal(body, "");
}

/* A one-shot HTTP server on 127.0.0.1: answers its one connection with
 * `answer` after reading the request head, then closes. */
struct one_shot {
	int fd;
	uint16_t port;
	const char *answer;
	char request[512];
	pthread_t thread;
};

static void *one_shot_main(void *arg)
{
	struct one_shot *o = arg;
	int c = accept(o->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	size_t len = 0;
	while (len < sizeof(o->request) - 1 && !strstr(o->request, "\r\n\r\n")) {
		ssize_t n = recv(c, o->request + len, sizeof(o->request) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		o->request[len] = '\0';
	}
	/* Sent in pieces, as a server flushing its chunks would. */
	size_t total = strlen(o->answer), sent = 0;
	while (sent < total) {
		size_t piece = total - sent < 700 ? total - sent : 700;
		ssize_t n = send(c, o->answer + sent, piece, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	close(c);
	return NULL;
}

static void one_shot_start(struct one_shot *o, const char *answer)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	memset(o->request, 0, sizeof(o->request));
	o->answer = answer;
	o->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(o->fd >= 0);
	assert_int_equal(bind(o->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(o->fd, 1), 0);
	assert_int_equal(getsockname(o->fd, (struct sockaddr *)&a, &alen), 0);
	o->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&o->thread, NULL, one_shot_main, o), 0);
}

static void one_shot_stop(struct one_shot *o)
{
	pthread_join(o->thread, NULL);
	close(o->fd);
}

/* A /varz of a cluster node, as long as the real one (about 2 KB), sent as
 * nats-server sends it: chunked. */
static void http_get_reads_a_chunked_varz(void **state)
{
	char json[3000], answer[3400];
	int n = snprintf(json, sizeof(json),
			 "{\"server_name\":\"nats-2\",\"version\":\"2.10.0\",\"routes\":3,"
			 "\"cluster\":{\"name\":\"shop\",\"urls\":[\"nats-1:6222\",\"nats-3:6222\"]},"
			 "\"pad\":\"");
	while (n < 2100)
		json[n++] = 'x';
	n += snprintf(json + n, sizeof(json) - (size_t)n, "\"}");
	/* Go's net/http: a first chunk of its 2 KB buffer, then the rest. */
	snprintf(answer, sizeof(answer),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n%x\r\n%.*s\r\n%x\r\n%s\r\n0\r\n\r\n",
		 2048, 2048, json, n - 2048, json + 2048);
	struct one_shot o;
	one_shot_start(&o, answer);
	char *body = console_http_get("127.0.0.1", o.port, "/varz", 2000, 256 * 1024);
	one_shot_stop(&o);
	assert_non_null(body);
	assert_string_equal(body, json);
	assert_non_null(strstr(o.request, "GET /varz HTTP/1.1\r\n"));
	free(body);

	/* A status other than 200 is no answer. */
	one_shot_start(&o, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}");
	body = console_http_get("127.0.0.1", o.port, "/varz", 2000, 256 * 1024);
	one_shot_stop(&o);
	assert_null(body);
}

int main(void)
{
	xalloc_init_cjson();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(queue_hands_frames_back_in_order),
		cmocka_unit_test(queue_refuses_the_frame_past_its_count_and_keeps_what_it_has),
		cmocka_unit_test(queue_refuses_the_frame_past_its_bytes),
		cmocka_unit_test(sse_frame_is_one_data_line_and_a_blank_line),
		cmocka_unit_test(sse_frame_splits_every_kind_of_line_break),
		cmocka_unit_test(envelope_filter_matches_the_subject_only),
		cmocka_unit_test(order_id_must_be_short_printable_ascii),
		cmocka_unit_test(rfc3339_times_parse_to_epoch_milliseconds),
		cmocka_unit_test(malformed_times_are_invalid),
		cmocka_unit_test(gateway_answer_gives_status_and_body),
		cmocka_unit_test(gateway_answer_that_cannot_be_trusted_is_invalid),
		cmocka_unit_test(chunked_answer_is_decoded),
		cmocka_unit_test(http_get_reads_a_chunked_varz),
	};
	return cmocka_run_group_tests_name("console", tests, NULL, NULL);
}
