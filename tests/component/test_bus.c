/*
 * test_bus.c - component tests of libs/bus against a real nats-server.
 *
 * tests/component/run.sh starts nats-server with JetStream and exports
 * SHOP_TEST_NATS_URL; without it every case is skipped. Each case declares
 * its own streams and durables under names made unique by the process id and
 * a counter, so cases share nothing but the DEADLETTER stream, which every
 * declarer declares identically. What the bus API does not show (stream
 * state, read-back configuration, consumers with a short AckWait) is read or
 * made with nats.c directly on a connection of the test's own.
 *
 * The reconnect case runs a second, private nats-server, kills it with
 * SIGKILL and restarts it on the same store directory; run it under
 * AddressSanitizer (the Makefile's SANITIZE) to catch the stale pull reply
 * bugs old nats.c had on that path.
 *
 * BUS_TEST_FILTER=<glob> runs only the matching cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "nats_box.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_PER_MS INT64_C(1000000)
#define NAME_SIZE 64

static const char *test_url;
static natsConnection *raw_nc;
static jsCtx *raw_js;

/* ---- helpers ---------------------------------------------------------- */

#define NEED_SERVER()                                                                              \
	do {                                                                                       \
		if (!test_url)                                                                     \
			skip();                                                                    \
	} while (0)

/* Names unique to this process and call: stream "BUS_<pid>_<n>", subject
 * prefix "bt<pid>n<n>", durable "D<pid>_<n>". */
struct names {
	char stream[NAME_SIZE];
	char prefix[NAME_SIZE];
	char wildcard[NAME_SIZE + 4];
	char durable[NAME_SIZE];
};

static void names_make(struct names *n)
{
	static int counter;
	int k = ++counter;
	snprintf(n->stream, sizeof(n->stream), "BUS_%d_%d", (int)getpid(), k);
	snprintf(n->prefix, sizeof(n->prefix), "bt%dn%d", (int)getpid(), k);
	snprintf(n->wildcard, sizeof(n->wildcard), "%s.>", n->prefix);
	snprintf(n->durable, sizeof(n->durable), "D%d_%d", (int)getpid(), k);
}

static struct bus *bus_open_to(const char *url)
{
	struct bus *bus = NULL;
	assert_int_equal(bus_connect(url, "test_bus", &bus), SHOP_OK);
	assert_non_null(bus);
	return bus;
}

/* A bus on the shared server and a stream on "<prefix>.>" (N made here). */
static struct bus *stream_open(struct names *n)
{
	names_make(n);
	struct bus *bus = bus_open_to(test_url);
	const char *subjects[] = { n->wildcard };
	assert_int_equal(bus_ensure_stream(bus, n->stream, subjects, 1, 1), SHOP_OK);
	return bus;
}

/* stream_open, and a durable on the given filters (all when NULL). */
static struct bus *fixture_open(struct names *n, const char *const *filters, size_t n_filters)
{
	struct bus *bus = stream_open(n);
	const char *subjects[] = { n->wildcard };
	if (!filters) {
		filters = subjects;
		n_filters = 1;
	}
	assert_int_equal(bus_ensure_consumer(bus, n->stream, n->durable, filters, n_filters),
			 SHOP_OK);
	return bus;
}

/* A binding to DURABLE on STREAM, which must exist. */
static struct bus_consumer *consumer_open(struct bus *bus, const char *stream, const char *durable)
{
	struct bus_consumer *c = NULL;
	assert_int_equal(bus_consumer_open(bus, stream, durable, &c), SHOP_OK);
	assert_non_null(c);
	return c;
}

/* A durable made directly, for what bus_ensure_consumer does not offer. */
static void raw_add_consumer(jsCtx *js, const char *stream, const char *durable,
			     int64_t ack_wait_ms)
{
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = durable;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = ack_wait_ms * NS_PER_MS;
	cc.MaxDeliver = BUS_MAX_DELIVER;
	jsErrCode jerr = 0;
	assert_int_equal(js_AddConsumer(NULL, js, stream, &cc, NULL, &jerr), NATS_OK);
}

static uint64_t raw_stream_msgs(jsCtx *js, const char *stream)
{
	jsStreamInfo *si = NULL;
	assert_int_equal(js_GetStreamInfo(&si, js, stream, NULL, NULL), NATS_OK);
	uint64_t msgs = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return msgs;
}

static void publish_one(struct bus *bus, const char *subject, const char *id, const char *data)
{
	struct bus_out o = { .subject = subject, .msg_id = id, .data = data, .len = strlen(data) };
	assert_int_equal(bus_publish(bus, &o, NULL), SHOP_OK);
}

/* Fetches until want messages arrived or timeout_ms passed; acks none. */
static size_t fetch_some(struct bus_consumer *c, size_t want, int64_t timeout_ms,
			 struct bus_msg ***ret_msgs)
{
	struct bus_msg **all = NULL;
	size_t n_all = 0;
	int64_t deadline = clock_mono_ms() + timeout_ms;
	while (n_all < want && clock_mono_ms() < deadline) {
		struct bus_msg **got = NULL;
		size_t n = 0;
		size_t ask = want - n_all < BUS_FETCH_MAX ? want - n_all : BUS_FETCH_MAX;
		assert_int_equal(bus_fetch(c, ask, 500, &got, &n), SHOP_OK);
		if (n == 0)
			continue;
		all = xrealloc(all, (n_all + n) * sizeof(*all));
		memcpy(all + n_all, got, n * sizeof(*got));
		n_all += n;
		free(got); /* the array only; the messages moved to all */
	}
	*ret_msgs = all;
	return n_all;
}

static void ack_all(struct bus_msg **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(bus_msg_ack(msgs[i]), SHOP_OK);
}

static bool msg_data_is(const struct bus_msg *m, const char *want)
{
	size_t len = 0;
	const char *data = bus_msg_data(m, &len);
	return len == strlen(want) && memcmp(data, want, len) == 0;
}

/* I of a message published with id "<stream>-<I>" (batch_make's ids). */
static unsigned long msg_index(const struct bus_msg *m, const struct names *n)
{
	const char *id = bus_msg_header(m, BUS_HDR_MSG_ID);
	assert_non_null(id);
	return strtoul(id + strlen(n->stream) + 1, NULL, 10);
}

/* COUNT messages on SUBJECT with ids "<stream>-<i>", each carrying DATA
 * or, when DATA is NULL, its own id. */
struct batch {
	size_t n;
	char **ids;
	struct bus_out *out;
};

static void batch_make(struct batch *b, const struct names *n, const char *subject, size_t count,
		       const char *data)
{
	b->n = count;
	b->ids = xcalloc(count, sizeof(*b->ids));
	b->out = xcalloc(count, sizeof(*b->out));
	for (size_t i = 0; i < count; i++) {
		b->ids[i] = xasprintf("%s-%zu", n->stream, i);
		const char *d = data ? data : b->ids[i];
		b->out[i] = (struct bus_out){
			.subject = subject, .msg_id = b->ids[i], .data = d, .len = strlen(d)
		};
	}
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->ids[i]);
	free(b->ids);
	free(b->out);
	memset(b, 0, sizeof(*b));
}

/* A fresh stream holding one message on "<prefix>.<tag>" (id
 * "<stream>-<tag>", DATA), and a consumer bound to the stream's durable
 * or, when ACK_WAIT_MS > 0, to a second durable "<durable>_short" with
 * that AckWait. */
struct single {
	struct names n;
	struct bus *bus;
	char durable[NAME_SIZE + 8];
	char subject[NAME_SIZE + 8];
	struct bus_consumer *c;
};

static void single_open(struct single *s, const char *tag, const char *data, int64_t ack_wait_ms)
{
	char id[NAME_SIZE + 8];
	s->bus = fixture_open(&s->n, NULL, 0);
	if (ack_wait_ms > 0) {
		snprintf(s->durable, sizeof(s->durable), "%s_short", s->n.durable);
		raw_add_consumer(raw_js, s->n.stream, s->durable, ack_wait_ms);
	} else {
		snprintf(s->durable, sizeof(s->durable), "%s", s->n.durable);
	}
	snprintf(s->subject, sizeof(s->subject), "%s.%s", s->n.prefix, tag);
	snprintf(id, sizeof(id), "%s-%s", s->n.stream, tag);
	publish_one(s->bus, s->subject, id, data);
	s->c = consumer_open(s->bus, s->n.stream, s->durable);
}

static void single_close(struct single *s)
{
	bus_consumer_close(s->c);
	bus_close(s->bus);
}

/* The message comes back on C within WAIT_MS as its second delivery, no
 * sooner than AT_LEAST_MS after T0, and is acked. */
static void assert_redelivered(struct bus_consumer *c, int64_t t0, int64_t wait_ms,
			       int64_t at_least_ms)
{
	struct bus_msg **msgs = NULL;
	size_t got = 0;
	assert_int_equal(bus_fetch(c, 1, wait_ms, &msgs, &got), SHOP_OK);
	assert_int_equal(got, 1);
	assert_true(clock_mono_ms() - t0 >= at_least_ms);
	assert_int_equal(bus_msg_deliveries(msgs[0]), 2);
	ack_all(msgs, 1);
	bus_msgs_free(msgs, 1);
}

/* ---- a private nats-server for the reconnect case ---------------------- */

/* Starts PS and opens a bus on it with a stream for N (made here),
 * retrying while JetStream is still starting. */
static struct bus *private_bus_open(struct nats_box *ps, struct names *n)
{
	nats_box_init(ps, "bus-private");
	nats_box_start(ps);
	names_make(n);
	struct bus *bus = bus_open_to(ps->url);
	const char *subjects[] = { n->wildcard };
	shop_status st = SHOP_E_INTERNAL;
	for (int64_t deadline = clock_mono_ms() + 10000; clock_mono_ms() < deadline;) {
		if ((st = bus_ensure_stream(bus, n->stream, subjects, 1, 1)) == SHOP_OK)
			break;
		clock_sleep_ms(200); /* JetStream may still be starting */
	}
	assert_int_equal(st, SHOP_OK);
	return bus;
}

/* Starts PS again and waits until BUS has reconnected to it. */
static void private_server_restart(struct nats_box *ps, struct bus *bus)
{
	nats_box_start(ps);
	int64_t deadline = clock_mono_ms() + 15000;
	while (!bus_is_connected(bus) && clock_mono_ms() < deadline)
		clock_sleep_ms(50);
	assert_true(bus_is_connected(bus));
}

/* A connection of the test's own to URL, with its JetStream context. */
static void raw_open(const char *url, natsConnection **ret_nc, jsCtx **ret_js)
{
	assert_int_equal(natsConnection_ConnectTo(ret_nc, url), NATS_OK);
	assert_int_equal(natsConnection_JetStream(ret_js, *ret_nc, NULL), NATS_OK);
}

static void raw_close(natsConnection *nc, jsCtx *js)
{
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

/* ---- the cases ---------------------------------------------------------- */

/* The compose deployment names its three NATS nodes in one SHOP_NATS_URL;
 * the loadtest hands the same string to nats.c through this list. */
static void url_list_splits_trims_and_skips_empty_entries(void **state)
{
	(void)state;
	char **urls = NULL;
	size_t n = bus_url_list(" nats://a:4222,nats://b:4222 ,, nats://c:4222\t,", &urls);
	assert_int_equal(n, 3);
	assert_string_equal(urls[0], "nats://a:4222");
	assert_string_equal(urls[1], "nats://b:4222");
	assert_string_equal(urls[2], "nats://c:4222");
	bus_url_list_free(urls, n);
	n = bus_url_list(" , ", &urls);
	assert_int_equal(n, 0);
	bus_url_list_free(urls, n);
}

static void connected_bus_reports_connected(void **state)
{
	NEED_SERVER();
	struct bus *bus = bus_open_to(test_url);
	assert_true(bus_is_connected(bus));
	bus_close(bus);
	bus_close(NULL);
}

static void ensure_stream_twice_is_idempotent_and_reads_back_as_declared(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = stream_open(&n);
	const char *subjects[] = { n.wildcard };

	jsStreamInfo *si = NULL;
	assert_int_equal(js_GetStreamInfo(&si, raw_js, n.stream, NULL, NULL), NATS_OK);
	int64_t created = si->Created;
	jsStreamInfo_Destroy(si);

	assert_int_equal(bus_ensure_stream(bus, n.stream, subjects, 1, 1), SHOP_OK);
	assert_int_equal(js_GetStreamInfo(&si, raw_js, n.stream, NULL, NULL), NATS_OK);
	assert_true(si->Created == created); /* not recreated */
	const jsStreamConfig *cfg = si->Config;
	assert_true(cfg->Duplicates == BUS_DUPLICATE_WINDOW_MS * NS_PER_MS);
	assert_true(cfg->MaxAge == BUS_STREAM_MAX_AGE_MS * NS_PER_MS);
	assert_int_equal(cfg->Storage, js_FileStorage);
	assert_int_equal(cfg->Retention, js_LimitsPolicy);
	assert_int_equal(cfg->Replicas, 1);
	assert_int_equal(cfg->SubjectsLen, 1);
	assert_string_equal(cfg->Subjects[0], n.wildcard);
	jsStreamInfo_Destroy(si);

	/* A changed declaration updates the stream in place. */
	char other[NAME_SIZE + 8];
	snprintf(other, sizeof(other), "%sx.>", n.prefix);
	const char *two[] = { n.wildcard, other };
	assert_int_equal(bus_ensure_stream(bus, n.stream, two, 2, 1), SHOP_OK);
	assert_int_equal(js_GetStreamInfo(&si, raw_js, n.stream, NULL, NULL), NATS_OK);
	assert_true(si->Created == created);
	assert_int_equal(si->Config->SubjectsLen, 2);
	jsStreamInfo_Destroy(si);
	bus_close(bus);
}

struct declarer {
	const struct names *n;
	pthread_barrier_t *start;
	shop_status connect_st, stream_st, consumer_st;
};

static void *declarer_run(void *arg)
{
	struct declarer *d = arg;
	struct bus *bus = NULL;
	d->connect_st = bus_connect(test_url, "test_bus_declarer", &bus);
	pthread_barrier_wait(d->start);
	if (d->connect_st != SHOP_OK)
		return NULL;
	char a[NAME_SIZE + 4], b[NAME_SIZE + 4];
	snprintf(a, sizeof(a), "%s.a", d->n->prefix);
	snprintf(b, sizeof(b), "%s.b", d->n->prefix);
	const char *subjects[] = { d->n->wildcard };
	const char *filters[] = { a, b };
	d->stream_st = bus_ensure_stream(bus, d->n->stream, subjects, 1, 1);
	d->consumer_st = bus_ensure_consumer(bus, d->n->stream, d->n->durable, filters, 2);
	bus_close(bus);
	return NULL;
}

static void three_replicas_declaring_at_once_all_succeed(void **state)
{
	NEED_SERVER();
	for (int round = 0; round < 5; round++) {
		struct names n;
		names_make(&n);
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, 3);
		struct declarer d[3];
		pthread_t t[3];
		for (int i = 0; i < 3; i++) {
			d[i] = (struct declarer){ .n = &n, .start = &start };
			assert_int_equal(pthread_create(&t[i], NULL, declarer_run, &d[i]), 0);
		}
		for (int i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&start);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(d[i].connect_st, SHOP_OK);
			assert_int_equal(d[i].stream_st, SHOP_OK);
			assert_int_equal(d[i].consumer_st, SHOP_OK);
		}
		jsConsumerInfo *ci = NULL;
		assert_int_equal(js_GetConsumerInfo(&ci, raw_js, n.stream, n.durable, NULL, NULL),
				 NATS_OK);
		assert_int_equal(ci->Config->FilterSubjectsLen, 2);
		jsConsumerInfo_Destroy(ci);
	}
}

static void ensure_consumer_sets_ack_wait_max_deliver_and_max_ack_pending(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = fixture_open(&n, NULL, 0);
	const char *filters[] = { n.wildcard };
	assert_int_equal(bus_ensure_consumer(bus, n.stream, n.durable, filters, 1), SHOP_OK);

	jsConsumerInfo *ci = NULL;
	assert_int_equal(js_GetConsumerInfo(&ci, raw_js, n.stream, n.durable, NULL, NULL), NATS_OK);
	const jsConsumerConfig *cfg = ci->Config;
	assert_true(cfg->AckWait == BUS_ACK_WAIT_MS * NS_PER_MS);
	assert_int_equal(cfg->MaxDeliver, BUS_MAX_DELIVER);
	assert_int_equal(cfg->MaxAckPending, BUS_MAX_ACK_PENDING);
	assert_int_equal(cfg->AckPolicy, js_AckExplicit);
	assert_int_equal(cfg->DeliverPolicy, js_DeliverAll);
	assert_string_equal(cfg->Durable, n.durable);
	assert_true(cfg->DeliverSubject == NULL || cfg->DeliverSubject[0] == '\0');
	bool one_filter = (cfg->FilterSubject && strcmp(cfg->FilterSubject, n.wildcard) == 0) ||
			  (cfg->FilterSubjectsLen == 1 &&
			   strcmp(cfg->FilterSubjects[0], n.wildcard) == 0);
	assert_true(one_filter);
	jsConsumerInfo_Destroy(ci);
	bus_close(bus);
}

static void consumer_with_two_filters_receives_only_those_subjects(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = stream_open(&n);
	char a[NAME_SIZE + 4], b[NAME_SIZE + 4], c[NAME_SIZE + 4];
	snprintf(a, sizeof(a), "%s.a", n.prefix);
	snprintf(b, sizeof(b), "%s.b", n.prefix);
	snprintf(c, sizeof(c), "%s.c", n.prefix);
	const char *filters[] = { a, b };
	assert_int_equal(bus_ensure_consumer(bus, n.stream, n.durable, filters, 2), SHOP_OK);

	const char *targets[] = { a, b, c, a, b, c };
	for (size_t i = 0; i < 6; i++) {
		char id[NAME_SIZE + 16];
		snprintf(id, sizeof(id), "%s-%zu", n.stream, i);
		publish_one(bus, targets[i], id, "{}");
	}
	struct bus_consumer *cons = consumer_open(bus, n.stream, n.durable);
	struct bus_msg **msgs = NULL;
	size_t got = fetch_some(cons, 6, 2000, &msgs);
	assert_int_equal(got, 4);
	for (size_t i = 0; i < got; i++) {
		const char *subj = bus_msg_subject(msgs[i]);
		assert_true(strcmp(subj, a) == 0 || strcmp(subj, b) == 0);
	}
	ack_all(msgs, got);
	bus_msgs_free(msgs, got);
	bus_consumer_close(cons);
	assert_int_equal(raw_stream_msgs(raw_js, n.stream), 6);
	bus_close(bus);
}

static void same_msg_id_twice_is_stored_once_and_reported_duplicate(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = fixture_open(&n, NULL, 0);
	char subject[NAME_SIZE + 8];
	snprintf(subject, sizeof(subject), "%s.x", n.prefix);
	struct bus_out o = { .subject = subject,
			     .msg_id = "0192f0c1-7d2a-7abc-8def-0123456789ab",
			     .data = "{\"n\":1}",
			     .len = 7 };
	struct bus_ack first = { .duplicate = true }, again = { 0 };
	assert_int_equal(bus_publish(bus, &o, &first), SHOP_OK);
	assert_false(first.duplicate);
	assert_string_equal(first.stream, n.stream);
	assert_int_equal(first.seq, 1);
	assert_int_equal(bus_publish(bus, &o, &again), SHOP_OK);
	assert_true(again.duplicate);
	/* The ack of a duplicate names the copy stored before. */
	assert_string_equal(again.stream, n.stream);
	assert_int_equal(again.seq, first.seq);
	assert_int_equal(raw_stream_msgs(raw_js, n.stream), 1);

	/* The message carries its id and content type. */
	struct bus_consumer *c = consumer_open(bus, n.stream, n.durable);
	struct bus_msg **msgs = NULL;
	assert_int_equal(fetch_some(c, 1, 2000, &msgs), 1);
	assert_string_equal(bus_msg_header(msgs[0], BUS_HDR_MSG_ID), o.msg_id);
	assert_string_equal(bus_msg_header(msgs[0], BUS_HDR_CONTENT_TYPE), BUS_CONTENT_TYPE);
	assert_null(bus_msg_header(msgs[0], "No-Such-Header"));
	assert_true(msg_data_is(msgs[0], "{\"n\":1}"));
	assert_int_equal(bus_msg_deliveries(msgs[0]), 1);
	assert_int_equal(bus_msg_stream_seq(msgs[0]), 1);
	ack_all(msgs, 1);
	bus_msgs_free(msgs, 1);
	bus_consumer_close(c);
	bus_close(bus);
}

static void batch_of_2000_is_stored_exactly_once_and_a_rerun_only_finds_duplicates(void **state)
{
	NEED_SERVER();
	enum { N = 2000 };
	struct names n;
	struct bus *bus = fixture_open(&n, NULL, 0);
	char subject[NAME_SIZE + 8];
	snprintf(subject, sizeof(subject), "%s.batch", n.prefix);
	struct batch b;
	batch_make(&b, &n, subject, N, "{\"k\":\"v\"}");
	struct bus_out *out = b.out;
	shop_status *st = xcalloc(N, sizeof(*st));
	for (size_t i = 0; i < N; i++)
		st[i] = SHOP_E_INTERNAL;
	assert_int_equal(bus_publish_batch(bus, out, N, st), SHOP_OK);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(st[i], SHOP_OK);
	assert_int_equal(raw_stream_msgs(raw_js, n.stream), N);

	for (size_t i = 0; i < N; i++)
		st[i] = SHOP_E_INTERNAL;
	assert_int_equal(bus_publish_batch(bus, out, N, st), SHOP_OK);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(st[i], SHOP_OK);
	assert_int_equal(raw_stream_msgs(raw_js, n.stream), N);

	/* An empty batch is fine; a malformed message is refused alone. */
	assert_int_equal(bus_publish_batch(bus, out, 0, st), SHOP_OK);
	struct bus_out mixed[2] = { out[0],
				    { .subject = subject, .msg_id = "", .data = "", .len = 0 } };
	assert_int_equal(bus_publish_batch(bus, mixed, 2, st), SHOP_E_INVALID);
	assert_int_equal(st[0], SHOP_OK);
	assert_int_equal(st[1], SHOP_E_INVALID);
	assert_int_equal(raw_stream_msgs(raw_js, n.stream), N);

	batch_free(&b);
	free(st);
	bus_close(bus);
}

static void fetch_from_an_empty_consumer_returns_nothing_after_the_timeout(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = fixture_open(&n, NULL, 0);
	struct bus_consumer *c = consumer_open(bus, n.stream, n.durable);
	assert_string_equal(bus_consumer_stream(c), n.stream);
	assert_string_equal(bus_consumer_durable(c), n.durable);

	/* A short wait, and one long enough to ask for idle heartbeats. */
	const int64_t waits[] = { 1000, BUS_FETCH_HEARTBEAT_MIN_WAIT_MS + 1000 };
	for (size_t w = 0; w < 2; w++) {
		struct bus_msg *sentinel = NULL;
		struct bus_msg **msgs = &sentinel; /* must come back NULL */
		size_t got = 99;
		int64_t t0 = clock_mono_ms();
		assert_int_equal(bus_fetch(c, 10, waits[w], &msgs, &got), SHOP_OK);
		int64_t took = clock_mono_ms() - t0;
		assert_int_equal(got, 0);
		assert_null(msgs);
		assert_in_range(took, waits[w] - 100, waits[w] + 1000);
		bus_msgs_free(msgs, got);
	}

	struct bus_msg **msgs = NULL;
	size_t got = 0;
	assert_int_equal(bus_fetch(c, BUS_FETCH_MAX + 1, 100, &msgs, &got), SHOP_E_LIMIT);
	assert_int_equal(bus_fetch(c, 0, 100, &msgs, &got), SHOP_E_INVALID);
	bus_consumer_close(c);
	bus_close(bus);
}

static void binding_a_missing_durable_is_not_found(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = fixture_open(&n, NULL, 0);
	struct bus_consumer *c = NULL;
	assert_int_equal(bus_consumer_open(bus, n.stream, "NO_SUCH_DURABLE", &c), SHOP_E_NOT_FOUND);
	assert_null(c);
	const char *filters[] = { n.wildcard };
	assert_int_equal(bus_ensure_consumer(bus, "NO_SUCH_STREAM", n.durable, filters, 1),
			 SHOP_E_NOT_FOUND);
	bus_close(bus);
}

static void two_consumers_on_one_durable_split_the_messages(void **state)
{
	NEED_SERVER();
	enum { N = 100 };
	struct names n;
	struct bus *bus_a = fixture_open(&n, NULL, 0);
	struct bus *bus_b = bus_open_to(test_url);
	char subject[NAME_SIZE + 8];
	snprintf(subject, sizeof(subject), "%s.split", n.prefix);
	struct batch b;
	shop_status st[N];
	batch_make(&b, &n, subject, N, "{}");
	assert_int_equal(bus_publish_batch(bus_a, b.out, N, st), SHOP_OK);
	batch_free(&b);

	struct bus_consumer *ca = consumer_open(bus_a, n.stream, n.durable);
	struct bus_consumer *cb = consumer_open(bus_b, n.stream, n.durable);

	/* Alternate small fetches and hold every message unacked: whatever one
	 * binding holds, the durable cannot hand to the other. */
	int seen[N + 1] = { 0 };
	size_t from_a = 0, from_b = 0, total = 0;
	struct bus_msg **held[64];
	size_t held_n[64];
	size_t rounds = 0;
	int64_t deadline = clock_mono_ms() + 10000;
	while (total < N && rounds < 64 && clock_mono_ms() < deadline) {
		struct bus_consumer *c = rounds % 2 ? cb : ca;
		struct bus_msg **msgs = NULL;
		size_t got = 0;
		assert_int_equal(bus_fetch(c, 10, 1000, &msgs, &got), SHOP_OK);
		for (size_t i = 0; i < got; i++) {
			uint64_t seq = bus_msg_stream_seq(msgs[i]);
			assert_in_range(seq, 1, N);
			seen[seq]++;
		}
		if (c == ca)
			from_a += got;
		else
			from_b += got;
		total += got;
		held[rounds] = msgs;
		held_n[rounds] = got;
		rounds++;
	}
	assert_int_equal(total, N);
	assert_true(from_a > 0);
	assert_true(from_b > 0);
	for (size_t s = 1; s <= N; s++)
		assert_int_equal(seen[s], 1);
	for (size_t r = 0; r < rounds; r++) {
		ack_all(held[r], held_n[r]);
		bus_msgs_free(held[r], held_n[r]);
	}
	bus_consumer_close(ca);
	bus_consumer_close(cb);
	bus_close(bus_b);
	bus_close(bus_a);
}

static void nak_with_delay_redelivers_after_the_delay(void **state)
{
	NEED_SERVER();
	struct single one;
	single_open(&one, "nak", "{}", 0);
	struct bus_consumer *c = one.c;
	struct bus_msg **msgs = NULL;
	assert_int_equal(fetch_some(c, 1, 2000, &msgs), 1);
	assert_int_equal(bus_msg_deliveries(msgs[0]), 1);
	int64_t t0 = clock_mono_ms();
	assert_int_equal(bus_msg_nak(msgs[0], 1000), SHOP_OK);
	bus_msgs_free(msgs, 1);

	size_t got = 0;
	assert_int_equal(bus_fetch(c, 1, 300, &msgs, &got), SHOP_OK);
	assert_int_equal(got, 0); /* not before the delay */
	assert_redelivered(c, t0, 3000, 900);
	single_close(&one);
}

static void unacked_message_comes_back_after_ack_wait(void **state)
{
	NEED_SERVER();
	struct single one;
	single_open(&one, "lost", "{}", 1000);
	struct bus_consumer *c = one.c;
	struct bus_msg **msgs = NULL;
	assert_int_equal(fetch_some(c, 1, 2000, &msgs), 1);
	int64_t t0 = clock_mono_ms();
	bus_msgs_free(msgs, 1); /* dropped without settling, as a crash would */
	assert_redelivered(c, t0, 4000, 800);
	single_close(&one);
}

static void terminated_message_is_not_redelivered(void **state)
{
	NEED_SERVER();
	struct single one;
	single_open(&one, "term", "{}", 500);
	struct bus_msg **msgs = NULL;
	assert_int_equal(fetch_some(one.c, 1, 2000, &msgs), 1);
	assert_int_equal(bus_msg_term(msgs[0]), SHOP_OK);
	bus_msgs_free(msgs, 1);
	size_t got = 0;
	assert_int_equal(bus_fetch(one.c, 1, 2000, &msgs, &got), SHOP_OK); /* 4 x AckWait */
	assert_int_equal(got, 0);
	single_close(&one);
}

static void dead_letter_stores_a_copy_with_its_origin_and_stops_redelivery(void **state)
{
	NEED_SERVER();
	struct single one;
	single_open(&one, "poison", "{\"poison\":true}", 500);
	struct names n = one.n;
	struct bus *bus = one.bus;
	struct bus_consumer *c = one.c;
	const char *durable = one.durable, *subject = one.subject;
	const char *dlq_subjects[] = { BUS_DEADLETTER_PREFIX ".>" };
	assert_int_equal(bus_ensure_stream(bus, BUS_DEADLETTER_STREAM, dlq_subjects, 1, 1),
			 SHOP_OK);
	publish_one(bus, subject, "filler-so-the-seq-is-not-1", "{}");

	struct bus_msg **msgs = NULL;
	assert_int_equal(fetch_some(c, 2, 2000, &msgs), 2);
	struct bus_msg *poison = msgs[0], *filler = msgs[1];
	assert_true(msg_data_is(poison, "{\"poison\":true}"));
	assert_int_equal(bus_msg_ack(filler), SHOP_OK);
	uint64_t seq = bus_msg_stream_seq(poison);
	assert_int_equal(bus_msg_dead_letter(bus, c, poison, "bad\r\npayload"), SHOP_OK);
	/* Repeating it (a retry after a lost answer) stores nothing new. */
	assert_int_equal(bus_msg_dead_letter(bus, c, poison, "bad\r\npayload"), SHOP_OK);
	bus_msgs_free(msgs, 2);

	/* Read the copy through a durable on the dead-letter stream. */
	char dlq_subject[3 * NAME_SIZE], dlq_durable[NAME_SIZE + 8];
	snprintf(dlq_subject, sizeof(dlq_subject), "%s.%s.%s", BUS_DEADLETTER_PREFIX, n.stream,
		 durable);
	snprintf(dlq_durable, sizeof(dlq_durable), "%s_dlq", n.durable);
	const char *dlq_filters[] = { dlq_subject };
	assert_int_equal(bus_ensure_consumer(bus, BUS_DEADLETTER_STREAM, dlq_durable, dlq_filters,
					     1),
			 SHOP_OK);
	struct bus_consumer *dc = consumer_open(bus, BUS_DEADLETTER_STREAM, dlq_durable);
	struct bus_msg **dl = NULL;
	assert_int_equal(fetch_some(dc, 2, 2000, &dl), 1);
	char want_id[3 * NAME_SIZE], want_seq[24];
	snprintf(want_id, sizeof(want_id), "%s:%s:%" PRIu64, n.stream, durable, seq);
	snprintf(want_seq, sizeof(want_seq), "%" PRIu64, seq);
	assert_string_equal(bus_msg_subject(dl[0]), dlq_subject);
	assert_true(msg_data_is(dl[0], "{\"poison\":true}"));
	assert_string_equal(bus_msg_header(dl[0], BUS_HDR_MSG_ID), want_id);
	assert_string_equal(bus_msg_header(dl[0], BUS_HDR_DLQ_REASON), "bad  payload");
	assert_string_equal(bus_msg_header(dl[0], BUS_HDR_DLQ_STREAM), n.stream);
	assert_string_equal(bus_msg_header(dl[0], BUS_HDR_DLQ_CONSUMER), durable);
	assert_string_equal(bus_msg_header(dl[0], BUS_HDR_DLQ_SEQ), want_seq);
	assert_string_equal(bus_msg_header(dl[0], BUS_HDR_DLQ_SUBJECT), subject);
	assert_string_equal(bus_msg_header(dl[0], BUS_HDR_DLQ_DELIVERIES), "1");
	assert_string_equal(bus_msg_header(dl[0], BUS_HDR_CONTENT_TYPE), BUS_CONTENT_TYPE);
	ack_all(dl, 1);
	bus_msgs_free(dl, 1);

	/* The original is settled: nothing comes back after several AckWaits. */
	size_t got = 0;
	assert_int_equal(bus_fetch(c, 1, 2000, &msgs, &got), SHOP_OK);
	assert_int_equal(got, 0);
	bus_consumer_close(dc);
	single_close(&one);
}

static void connecting_where_no_server_runs_gives_a_handle_that_fails_fast(void **state)
{
	char url[64];
	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", nats_box_free_port());
	struct bus *bus = NULL;
	int64_t t0 = clock_mono_ms();
	assert_int_equal(bus_connect(url, "test_bus_nowhere", &bus), SHOP_OK);
	assert_true(clock_mono_ms() - t0 < 3000);
	assert_false(bus_is_connected(bus));

	struct bus_out o = { .subject = "nowhere.x", .msg_id = "nowhere-1", .data = "{}", .len = 2 };
	t0 = clock_mono_ms();
	shop_status st = bus_publish(bus, &o, NULL);
	assert_true(st == SHOP_E_UNAVAILABLE || st == SHOP_E_TIMEOUT);
	shop_status sts[2] = { SHOP_OK, SHOP_OK };
	struct bus_out two[2] = {
		o, { .subject = "nowhere.y", .msg_id = "nowhere-2", .data = "", .len = 0 }
	};
	st = bus_publish_batch(bus, two, 2, sts);
	assert_true(st == SHOP_E_UNAVAILABLE || st == SHOP_E_TIMEOUT);
	for (int i = 0; i < 2; i++)
		assert_true(sts[i] == SHOP_E_UNAVAILABLE || sts[i] == SHOP_E_TIMEOUT);
	assert_true(clock_mono_ms() - t0 < BUS_PUBLISH_TIMEOUT_MS + 1000);

	t0 = clock_mono_ms();
	const char *subjects[] = { "nowhere.>" };
	assert_int_equal(bus_ensure_stream(bus, "NOWHERE", subjects, 1, 1), SHOP_E_UNAVAILABLE);
	assert_int_equal(bus_ensure_consumer(bus, "NOWHERE", "D", subjects, 1), SHOP_E_UNAVAILABLE);
	struct bus_consumer *c = NULL;
	assert_int_equal(bus_consumer_open(bus, "NOWHERE", "D", &c), SHOP_E_UNAVAILABLE);
	/* What /metrics and shopctl ask: at once, not after BUS_API_TIMEOUT_MS. */
	uint64_t a = 0, b = 0, z = 0;
	assert_int_equal(bus_consumer_pending(bus, "NOWHERE", "D", &a, &b), SHOP_E_UNAVAILABLE);
	assert_int_equal(bus_stream_state(bus, "NOWHERE", &a, &b, &z), SHOP_E_UNAVAILABLE);
	assert_true(clock_mono_ms() - t0 < 1000);
	bus_close(bus);
}

/* Publishes out[0..n) until all are stored or timeout_ms passed (the
 * server may still be loading its streams after a restart). */
static shop_status publish_until_stored(struct bus *bus, const struct bus_out *out, size_t n,
					int64_t timeout_ms)
{
	shop_status *st = xcalloc(n, sizeof(*st));
	shop_status r = SHOP_E_INTERNAL;
	int64_t deadline = clock_mono_ms() + timeout_ms;
	do {
		r = bus_publish_batch(bus, out, n, st);
		if (r != SHOP_OK)
			clock_sleep_ms(200);
	} while (r != SHOP_OK && clock_mono_ms() < deadline);
	free(st);
	return r;
}

struct long_fetch {
	struct bus_consumer *c;
	int64_t timeout_ms;
	shop_status st;
	size_t n;
	int64_t took_ms;
};

static void *long_fetch_run(void *arg)
{
	struct long_fetch *lf = arg;
	struct bus_msg **msgs = NULL;
	int64_t t0 = clock_mono_ms();
	lf->st = bus_fetch(lf->c, 10, lf->timeout_ms, &msgs, &lf->n);
	lf->took_ms = clock_mono_ms() - t0;
	if (lf->st == SHOP_OK)
		bus_msgs_free(msgs, lf->n);
	return NULL;
}

static void consumer_loop_survives_a_server_kill_and_restart(void **state)
{
	NEED_SERVER();
	enum { N = 100 };
	struct nats_box ps;
	struct names n;
	struct bus *bus = private_bus_open(&ps, &n);
	shop_status st = SHOP_E_INTERNAL;
	natsConnection *pnc = NULL;
	jsCtx *pjs = NULL;
	raw_open(ps.url, &pnc, &pjs);
	raw_add_consumer(pjs, n.stream, n.durable, 2000); /* so held messages return soon */
	raw_close(pnc, pjs);

	char subject[NAME_SIZE + 8];
	snprintf(subject, sizeof(subject), "%s.rc", n.prefix);
	struct batch b;
	batch_make(&b, &n, subject, 2 * N, NULL);
	const struct bus_out *out = b.out;
	assert_int_equal(publish_until_stored(bus, out, N, 10000), SHOP_OK);

	/* Consume part of it, and hold one message unsettled across the kill. */
	struct bus_consumer *c = consumer_open(bus, n.stream, n.durable);
	bool seen[2 * N] = { false };
	size_t n_seen = 0;
	struct bus_msg **msgs = NULL;
	size_t got = fetch_some(c, 41, 5000, &msgs);
	assert_int_equal(got, 41);
	struct bus_msg *held = msgs[40];
	char held_id[NAME_SIZE + 16];
	snprintf(held_id, sizeof(held_id), "%s", bus_msg_header(held, BUS_HDR_MSG_ID));
	for (size_t i = 0; i < 40; i++) {
		unsigned long k = msg_index(msgs[i], &n);
		assert_true(k < 2 * N);
		if (!seen[k]) {
			seen[k] = true;
			n_seen++;
		}
		assert_int_equal(bus_msg_ack(msgs[i]), SHOP_OK);
	}

	/* A long fetch (with idle heartbeats) on a durable with nothing to
	 * deliver is waiting when the server dies. */
	char idle_subject[NAME_SIZE + 8], idle_durable[NAME_SIZE + 8];
	snprintf(idle_subject, sizeof(idle_subject), "%s.idle", n.prefix);
	snprintf(idle_durable, sizeof(idle_durable), "%s_idle", n.durable);
	const char *idle_filters[] = { idle_subject };
	assert_int_equal(bus_ensure_consumer(bus, n.stream, idle_durable, idle_filters, 1),
			 SHOP_OK);
	struct bus_consumer *idle = consumer_open(bus, n.stream, idle_durable);
	struct long_fetch lf = { .c = idle, .timeout_ms = 4000 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, long_fetch_run, &lf), 0);
	clock_sleep_ms(500);
	nats_box_kill(&ps);
	int64_t deadline = clock_mono_ms() + 5000;
	while (bus_is_connected(bus) && clock_mono_ms() < deadline)
		clock_sleep_ms(20);
	assert_false(bus_is_connected(bus));
	pthread_join(t, NULL);
	assert_true(lf.st == SHOP_OK || lf.st == SHOP_E_UNAVAILABLE);
	assert_int_equal(lf.n, 0);
	assert_true(lf.took_ms <= lf.timeout_ms + 1000);

	/* While the server is gone: the dead-letter copy cannot be stored, so
	 * the held message is not terminated; publishing and fetching fail
	 * fast. */
	st = bus_msg_dead_letter(bus, c, held, "during the outage");
	assert_true(st == SHOP_E_UNAVAILABLE || st == SHOP_E_TIMEOUT);
	st = bus_publish(bus, &out[N], NULL);
	assert_true(st == SHOP_E_UNAVAILABLE || st == SHOP_E_TIMEOUT);
	bus_msgs_free(msgs, got);
	for (int i = 0; i < 3; i++) {
		struct bus_msg **none = NULL;
		size_t k = 0;
		int64_t t0 = clock_mono_ms();
		st = bus_fetch(c, 10, 100, &none, &k);
		assert_int_equal(st, SHOP_E_UNAVAILABLE);
		assert_true(clock_mono_ms() - t0 < 100);
	}

	private_server_restart(&ps, bus);
	assert_int_equal(publish_until_stored(bus, out + N, N, 15000), SHOP_OK);

	/* The same loop carries on: every message of both halves arrives
	 * (the 40 acked before the kill may come again, acks are not fsynced),
	 * and the held one comes back as a redelivery. */
	bool held_back = false;
	deadline = clock_mono_ms() + 30000;
	while ((n_seen < 2 * N || !held_back) && clock_mono_ms() < deadline) {
		struct bus_msg **batch = NULL;
		size_t k = 0;
		st = bus_fetch(c, 50, 1000, &batch, &k);
		assert_true(st == SHOP_OK || st == SHOP_E_UNAVAILABLE);
		if (st == SHOP_E_UNAVAILABLE)
			clock_sleep_ms(100); /* what a consumer loop does: back off */
		for (size_t i = 0; i < k; i++) {
			const char *id = bus_msg_header(batch[i], BUS_HDR_MSG_ID);
			unsigned long idx = msg_index(batch[i], &n);
			assert_true(idx < 2 * N);
			if (!seen[idx]) {
				seen[idx] = true;
				n_seen++;
			}
			if (strcmp(id, held_id) == 0 && bus_msg_deliveries(batch[i]) >= 2)
				held_back = true;
			assert_int_equal(bus_msg_ack(batch[i]), SHOP_OK);
		}
		bus_msgs_free(batch, k);
	}
	assert_int_equal(n_seen, 2 * N);
	assert_true(held_back);

	/* The binding whose fetch missed its heartbeats works again too. */
	struct bus_msg **none = NULL;
	size_t k = 99;
	assert_int_equal(bus_fetch(idle, 10, 500, &none, &k), SHOP_OK);
	assert_int_equal(k, 0);

	/* Everything acknowledged to the publisher survived the SIGKILL. */
	raw_open(ps.url, &pnc, &pjs);
	assert_int_equal(raw_stream_msgs(pjs, n.stream), 2 * N);
	raw_close(pnc, pjs);

	bus_consumer_close(idle);
	bus_consumer_close(c);
	bus_close(bus);
	nats_box_remove(&ps);
	batch_free(&b);
}

struct batch_run {
	struct bus *bus;
	const struct bus_out *out;
	size_t n;
	shop_status *st;
	shop_status result;
	int64_t took_ms;
};

static void *batch_run(void *arg)
{
	struct batch_run *br = arg;
	int64_t t0 = clock_mono_ms();
	br->result = bus_publish_batch(br->bus, br->out, br->n, br->st);
	br->took_ms = clock_mono_ms() - t0;
	return NULL;
}

static void batch_cut_by_a_server_kill_reports_ok_only_for_stored_messages(void **state)
{
	NEED_SERVER();
	enum { N = 20000, KILL_AFTER = 1000 };
	struct nats_box ps;
	struct names n;
	struct bus *bus = private_bus_open(&ps, &n);
	const char *subjects[] = { n.wildcard };
	assert_int_equal(bus_ensure_consumer(bus, n.stream, n.durable, subjects, 1), SHOP_OK);

	char subject[NAME_SIZE + 8];
	snprintf(subject, sizeof(subject), "%s.cut", n.prefix);
	struct batch b;
	batch_make(&b, &n, subject, N, NULL);
	const struct bus_out *out = b.out;
	shop_status *sts = xcalloc(N, sizeof(*sts));

	/* Watch the subject on plain NATS to kill the server mid-batch. */
	natsConnection *watch_nc = NULL;
	natsSubscription *watch = NULL;
	assert_int_equal(natsConnection_ConnectTo(&watch_nc, ps.url), NATS_OK);
	assert_int_equal(natsConnection_SubscribeSync(&watch, watch_nc, subject), NATS_OK);
	assert_int_equal(natsConnection_Flush(watch_nc), NATS_OK);

	struct batch_run br = { .bus = bus, .out = out, .n = N, .st = sts };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, batch_run, &br), 0);
	int seen = 0;
	int64_t deadline = clock_mono_ms() + 10000;
	while (seen < KILL_AFTER && clock_mono_ms() < deadline) {
		natsMsg *m = NULL;
		if (natsSubscription_NextMsg(&m, watch, 100) == NATS_OK) {
			seen++;
			natsMsg_Destroy(m);
		}
	}
	nats_box_kill(&ps);
	natsSubscription_Destroy(watch);
	natsConnection_Destroy(watch_nc);
	pthread_join(t, NULL);
	assert_int_equal(seen, KILL_AFTER);

	size_t ok = 0;
	for (size_t i = 0; i < N; i++) {
		assert_true(sts[i] == SHOP_OK || sts[i] == SHOP_E_TIMEOUT ||
			    sts[i] == SHOP_E_UNAVAILABLE);
		ok += sts[i] == SHOP_OK;
	}
	assert_true(br.result != SHOP_OK);
	assert_true(ok < N);
	assert_true(br.took_ms < 2 * BUS_PUBLISH_TIMEOUT_MS + 2000);

	/* After the restart, every message reported stored is in the stream. */
	private_server_restart(&ps, bus);
	natsConnection *pnc = NULL;
	jsCtx *pjs = NULL;
	raw_open(ps.url, &pnc, &pjs);
	jsStreamInfo *si = NULL;
	for (deadline = clock_mono_ms() + 10000; clock_mono_ms() < deadline;) {
		if (js_GetStreamInfo(&si, pjs, n.stream, NULL, NULL) == NATS_OK)
			break;
		clock_sleep_ms(200);
	}
	assert_non_null(si);
	size_t stored = (size_t)si->State.Msgs;
	jsStreamInfo_Destroy(si);
	assert_true(stored >= ok);

	/* Read it all, acking as it comes (at most BUS_MAX_ACK_PENDING are
	 * handed out unacknowledged). */
	struct bus_consumer *c = consumer_open(bus, n.stream, n.durable);
	bool *present = xcalloc(N, sizeof(*present));
	size_t got = 0;
	for (deadline = clock_mono_ms() + 20000; got < stored && clock_mono_ms() < deadline;) {
		struct bus_msg **msgs = NULL;
		size_t k = 0;
		assert_int_equal(bus_fetch(c, BUS_FETCH_MAX, 500, &msgs, &k), SHOP_OK);
		for (size_t i = 0; i < k; i++) {
			unsigned long idx = msg_index(msgs[i], &n);
			assert_true(idx < N);
			assert_false(present[idx]);
			present[idx] = true;
			assert_int_equal(bus_msg_ack(msgs[i]), SHOP_OK);
		}
		got += k;
		bus_msgs_free(msgs, k);
	}
	assert_int_equal(got, stored);
	for (size_t i = 0; i < N; i++)
		if (sts[i] == SHOP_OK)
			assert_true(present[i]);

	/* The relay's retry of the same ids completes the stream, once each. */
	assert_int_equal(publish_until_stored(bus, out, N, 20000), SHOP_OK);
	assert_int_equal(raw_stream_msgs(pjs, n.stream), N);

	raw_close(pnc, pjs);
	bus_consumer_close(c);
	bus_close(bus);
	nats_box_remove(&ps);
	batch_free(&b);
	free(sts);
	free(present);
}

/* ---- watching: named ephemeral consumers -------------------------------- */

#define WATCH_SEEN_MAX 64

/* What a watch delivered, filled on the watch's threads. */
struct watch_seen {
	pthread_mutex_t mu;
	size_t n;
	char *data[WATCH_SEEN_MAX];
	char stream[NAME_SIZE];
};

static void watch_seen_init(struct watch_seen *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
}

static void watch_seen_free(struct watch_seen *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->data[i]);
	pthread_mutex_destroy(&w->mu);
}

static void watch_record(void *arg, const char *stream, const char *subject, const char *data,
			 size_t len)
{
	struct watch_seen *w = arg;
	pthread_mutex_lock(&w->mu);
	if (w->n < WATCH_SEEN_MAX) {
		w->data[w->n++] = xstrndup(data, len);
		snprintf(w->stream, sizeof(w->stream), "%s", stream);
	}
	pthread_mutex_unlock(&w->mu);
}

static size_t watch_seen_count(struct watch_seen *w)
{
	pthread_mutex_lock(&w->mu);
	size_t n = w->n;
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* Waits up to timeout_ms for at least want messages; returns how many came. */
static size_t watch_wait(struct watch_seen *w, size_t want, int64_t timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	while (watch_seen_count(w) < want && clock_mono_ms() < deadline)
		clock_sleep_ms(10);
	return watch_seen_count(w);
}

static int64_t raw_stream_consumers(jsCtx *js, const char *stream)
{
	jsStreamInfo *si = NULL;
	assert_int_equal(js_GetStreamInfo(&si, js, stream, NULL, NULL), NATS_OK);
	int64_t n = (int64_t)si->State.Consumers;
	jsStreamInfo_Destroy(si);
	return n;
}

/* The server deletes a consumer on request, but polls keep it honest. */
static bool stream_has_consumers(jsCtx *js, const char *stream, int64_t want)
{
	for (int i = 0; i < 100 && raw_stream_consumers(js, stream) != want; i++)
		clock_sleep_ms(20);
	return raw_stream_consumers(js, stream) == want;
}

static void publish_numbered(struct bus *bus, const struct names *n, const char *tag, int count)
{
	char subject[NAME_SIZE + 8], id[NAME_SIZE * 2], data[32];
	snprintf(subject, sizeof(subject), "%s.w", n->prefix);
	for (int i = 0; i < count; i++) {
		snprintf(id, sizeof(id), "%s-%s-%d", n->stream, tag, i);
		snprintf(data, sizeof(data), "%s-%d", tag, i);
		publish_one(bus, subject, id, data);
	}
}

static void watch_delivers_new_messages_in_order_and_leaves_no_consumer_behind(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = fixture_open(&n, NULL, 0);
	struct watch_seen seen;
	watch_seen_init(&seen);
	publish_numbered(bus, &n, "old", 2);

	const struct bus_watch_source src = { n.stream, n.wildcard };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(bus, &src, 1, -1, watch_record, &seen, &w), SHOP_OK);
	assert_true(stream_has_consumers(raw_js, n.stream, 2)); /* the durable and the watch */
	publish_numbered(bus, &n, "new", 5);
	assert_int_equal(watch_wait(&seen, 5, 5000), 5);
	clock_sleep_ms(200); /* nothing more comes */
	assert_int_equal(bus_watch_stop(w), SHOP_OK);
	assert_int_equal(seen.n, 5);
	for (size_t i = 0; i < 5; i++) {
		char want[32];
		snprintf(want, sizeof(want), "new-%zu", i);
		assert_string_equal(seen.data[i], want);
	}
	assert_string_equal(seen.stream, n.stream);
	assert_true(stream_has_consumers(raw_js, n.stream, 1)); /* the durable is untouched */

	struct bus_consumer *c = consumer_open(bus, n.stream, n.durable);
	struct bus_msg **msgs = NULL;
	assert_int_equal(fetch_some(c, 7, 2000, &msgs), 7); /* it still has everything */
	ack_all(msgs, 7);
	bus_msgs_free(msgs, 7);
	bus_consumer_close(c);
	watch_seen_free(&seen);
	bus_close(bus);
}

static void watch_from_a_time_replays_what_was_stored_since(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = stream_open(&n);
	struct watch_seen seen;
	watch_seen_init(&seen);
	publish_numbered(bus, &n, "before", 2);
	clock_sleep_ms(50);
	int64_t since = clock_now_ms();
	clock_sleep_ms(50);
	publish_numbered(bus, &n, "after", 3);

	const struct bus_watch_source src = { n.stream, n.wildcard };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(bus, &src, 1, since, watch_record, &seen, &w), SHOP_OK);
	assert_int_equal(watch_wait(&seen, 3, 5000), 3);
	publish_numbered(bus, &n, "live", 1);
	assert_int_equal(watch_wait(&seen, 4, 5000), 4);
	clock_sleep_ms(200);
	assert_int_equal(bus_watch_stop(w), SHOP_OK);
	assert_int_equal(seen.n, 4);
	assert_string_equal(seen.data[0], "after-0");
	assert_string_equal(seen.data[2], "after-2");
	assert_string_equal(seen.data[3], "live-0");
	assert_true(stream_has_consumers(raw_js, n.stream, 0));
	watch_seen_free(&seen);
	bus_close(bus);
}

static void watch_of_a_missing_stream_fails_and_leaves_no_consumer(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = stream_open(&n);
	struct watch_seen seen;
	watch_seen_init(&seen);
	char missing[NAME_SIZE + 8];
	snprintf(missing, sizeof(missing), "%s_NONE", n.stream);
	const struct bus_watch_source src[] = { { n.stream, n.wildcard },
						{ missing, "nowhere.>" } };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(bus, src, 2, -1, watch_record, &seen, &w),
			 SHOP_E_NOT_FOUND);
	assert_null(w);
	assert_true(stream_has_consumers(raw_js, n.stream, 0));
	assert_int_equal(bus_watch_stop(NULL), SHOP_OK);
	watch_seen_free(&seen);
	bus_close(bus);
}

/* How many consumers of STREAM a watch made (named BUS_WATCH_NAME_PREFIX...);
 * the last one's name in ret_name (may be NULL). */
static int watch_consumers(jsCtx *js, const char *stream, char *ret_name, size_t cap)
{
	jsConsumerNamesList *list = NULL;
	int n = 0;
	natsStatus s = js_ConsumerNames(&list, js, stream, NULL, NULL);
	if (s == NATS_NOT_FOUND)
		return 0;
	assert_int_equal(s, NATS_OK);
	for (int i = 0; i < list->Count; i++)
		if (strncmp(list->List[i], BUS_WATCH_NAME_PREFIX, strlen(BUS_WATCH_NAME_PREFIX)) ==
		    0) {
			if (ret_name)
				snprintf(ret_name, cap, "%s", list->List[i]);
			n++;
		}
	jsConsumerNamesList_Destroy(list);
	return n;
}

/* Waits until STREAM has exactly one watch consumer, other than AVOID (may
 * be NULL), and puts its name in ret_name. */
static bool watch_consumer_wait(jsCtx *js, const char *stream, const char *avoid, char *ret_name,
				size_t cap)
{
	for (int64_t deadline = clock_mono_ms() + 10000; clock_mono_ms() < deadline;
	     clock_sleep_ms(20))
		if (watch_consumers(js, stream, ret_name, cap) == 1 &&
		    (!avoid || strcmp(avoid, ret_name) != 0))
			return true;
	return false;
}

/* The watch delivered exactly tag0-0 .. tag0-(n0-1), then tag1-0 ..
 * tag1-(n1-1), in this order, each once. */
static void watch_seen_exactly(struct watch_seen *seen, const char *tag0, int n0, const char *tag1,
			       int n1)
{
	pthread_mutex_lock(&seen->mu);
	size_t got = seen->n;
	pthread_mutex_unlock(&seen->mu);
	assert_int_equal(got, (size_t)(n0 + n1));
	for (int i = 0; i < n0 + n1; i++) {
		char want[32];
		snprintf(want, sizeof(want), "%s-%d", i < n0 ? tag0 : tag1, i < n0 ? i : i - n0);
		assert_string_equal(seen->data[i], want);
	}
}

/* The console's user may not use the create subject without a name (a name
 * in its body could replace a durable): a watch names its consumers, so
 * they are created on $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>, and
 * the server lists them by that name. */
static void watch_consumers_are_named_and_made_on_the_named_create_subject(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = stream_open(&n);
	struct watch_seen seen;
	watch_seen_init(&seen);
	char legacy_subj[NAME_SIZE * 2], named_subj[NAME_SIZE * 2];
	snprintf(legacy_subj, sizeof(legacy_subj), "$JS.API.CONSUMER.CREATE.%s", n.stream);
	snprintf(named_subj, sizeof(named_subj), "$JS.API.CONSUMER.CREATE.%s.>", n.stream);
	natsSubscription *legacy = NULL, *named = NULL;
	assert_int_equal(natsConnection_SubscribeSync(&legacy, raw_nc, legacy_subj), NATS_OK);
	assert_int_equal(natsConnection_SubscribeSync(&named, raw_nc, named_subj), NATS_OK);
	assert_int_equal(natsConnection_Flush(raw_nc), NATS_OK);

	const struct bus_watch_source src = { n.stream, n.wildcard };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(bus, &src, 1, -1, watch_record, &seen, &w), SHOP_OK);
	char name[BUS_WATCH_NAME_MAX + 1];
	assert_int_equal(watch_consumers(raw_js, n.stream, name, sizeof(name)), 1);
	jsConsumerInfo *ci = NULL;
	assert_int_equal(js_GetConsumerInfo(&ci, raw_js, n.stream, name, NULL, NULL), NATS_OK);
	assert_true(ci->Config->Durable == NULL || ci->Config->Durable[0] == '\0');
	assert_int_equal(ci->Config->AckPolicy, js_AckNone);
	assert_true(ci->Config->MemoryStorage);
	assert_int_equal(ci->Config->InactiveThreshold, BUS_WATCH_INACTIVE_MS * NS_PER_MS);
	assert_string_equal(ci->Config->FilterSubject, n.wildcard);
	assert_true(ci->Config->DeliverSubject == NULL || ci->Config->DeliverSubject[0] == '\0');
	jsConsumerInfo_Destroy(ci);

	natsMsg *req = NULL;
	assert_int_equal(natsSubscription_NextMsg(&req, named, 2000), NATS_OK);
	char want[NAME_SIZE * 4 + BUS_WATCH_NAME_MAX];
	snprintf(want, sizeof(want), "$JS.API.CONSUMER.CREATE.%s.%s.%s", n.stream, name,
		 n.wildcard);
	assert_string_equal(natsMsg_GetSubject(req), want);
	natsMsg_Destroy(req);
	req = NULL;
	assert_int_equal(natsSubscription_NextMsg(&req, legacy, 200), NATS_TIMEOUT);

	publish_numbered(bus, &n, "named", 3);
	assert_int_equal(watch_wait(&seen, 3, 5000), 3);
	assert_int_equal(bus_watch_stop(w), SHOP_OK);
	watch_seen_exactly(&seen, "named", 3, "", 0);
	assert_true(stream_has_consumers(raw_js, n.stream, 0));
	natsSubscription_Destroy(legacy);
	natsSubscription_Destroy(named);
	watch_seen_free(&seen);
	bus_close(bus);
}

/* An idle watch keeps its consumer: its pull requests expire and its idle
 * heartbeats come, and neither makes it start over. */
static void idle_watch_keeps_its_consumer(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = stream_open(&n);
	struct watch_seen seen;
	watch_seen_init(&seen);
	const struct bus_watch_source src = { n.stream, n.wildcard };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(bus, &src, 1, -1, watch_record, &seen, &w), SHOP_OK);
	char first[BUS_WATCH_NAME_MAX + 1], later[BUS_WATCH_NAME_MAX + 1];
	assert_true(watch_consumer_wait(raw_js, n.stream, NULL, first, sizeof(first)));
	clock_sleep_ms(2 * BUS_WATCH_WAIT_MS + 1000);
	assert_true(watch_consumer_wait(raw_js, n.stream, NULL, later, sizeof(later)));
	assert_string_equal(first, later);
	publish_numbered(bus, &n, "idle", 2);
	assert_int_equal(watch_wait(&seen, 2, 5000), 2);
	assert_int_equal(bus_watch_stop(w), SHOP_OK);
	watch_seen_exactly(&seen, "idle", 2, "", 0);
	watch_seen_free(&seen);
	bus_close(bus);
}

/* The server deletes the watch's consumer (an operator, a node that died):
 * the watch makes another from the message after the last it delivered,
 * so what was stored meanwhile still comes, in order and once. */
static void watch_delivers_everything_in_order_when_its_consumer_is_deleted(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = stream_open(&n);
	struct watch_seen seen;
	watch_seen_init(&seen);
	const struct bus_watch_source src = { n.stream, n.wildcard };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(bus, &src, 1, -1, watch_record, &seen, &w), SHOP_OK);
	publish_numbered(bus, &n, "before", 5);
	assert_int_equal(watch_wait(&seen, 5, 5000), 5);

	char first[BUS_WATCH_NAME_MAX + 1], second[BUS_WATCH_NAME_MAX + 1];
	assert_true(watch_consumer_wait(raw_js, n.stream, NULL, first, sizeof(first)));
	assert_int_equal(js_DeleteConsumer(raw_js, n.stream, first, NULL, NULL), NATS_OK);
	publish_numbered(bus, &n, "after", 5);
	assert_int_equal(watch_wait(&seen, 10, 10000), 10);
	assert_true(watch_consumer_wait(raw_js, n.stream, first, second, sizeof(second)));
	clock_sleep_ms(300); /* nothing more comes */
	assert_int_equal(bus_watch_stop(w), SHOP_OK);
	watch_seen_exactly(&seen, "before", 5, "after", 5);
	assert_true(stream_has_consumers(raw_js, n.stream, 0));
	watch_seen_free(&seen);
	bus_close(bus);
}

/* Another client's pull request takes messages from the watch's consumer:
 * the consumer sequences the watch then sees skip, and it makes a new
 * consumer from its last message, so it still delivers each once, in
 * order. */
static void watch_fills_a_gap_in_its_consumer_sequence(void **state)
{
	NEED_SERVER();
	struct names n;
	struct bus *bus = stream_open(&n);
	struct watch_seen seen;
	watch_seen_init(&seen);
	const struct bus_watch_source src = { n.stream, n.wildcard };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(bus, &src, 1, -1, watch_record, &seen, &w), SHOP_OK);
	char name[BUS_WATCH_NAME_MAX + 1];
	assert_true(watch_consumer_wait(raw_js, n.stream, NULL, name, sizeof(name)));
	clock_sleep_ms(200); /* its pull request waits at the server first */

	natsInbox *inbox = NULL;
	assert_int_equal(natsInbox_Create(&inbox), NATS_OK);
	natsSubscription *thief = NULL;
	assert_int_equal(natsConnection_SubscribeSync(&thief, raw_nc, inbox), NATS_OK);
	char next[NAME_SIZE * 2 + BUS_WATCH_NAME_MAX];
	snprintf(next, sizeof(next), "$JS.API.CONSUMER.MSG.NEXT.%s.%s", n.stream, name);
	const char *pull = "{\"batch\":3,\"expires\":5000000000}";
	assert_int_equal(natsConnection_PublishRequestString(raw_nc, next, inbox, pull), NATS_OK);
	assert_int_equal(natsConnection_Flush(raw_nc), NATS_OK);
	clock_sleep_ms(100);

	publish_numbered(bus, &n, "gap", 10);
	assert_int_equal(watch_wait(&seen, 10, 10000), 10);
	clock_sleep_ms(300);
	assert_int_equal(bus_watch_stop(w), SHOP_OK);
	int stolen = 0;
	assert_int_equal(natsSubscription_GetPending(thief, &stolen, NULL), NATS_OK);
	assert_true(stolen >= 1); /* the gap was there */
	watch_seen_exactly(&seen, "gap", 10, "", 0);
	natsSubscription_Destroy(thief);
	natsInbox_Destroy(inbox);
	watch_seen_free(&seen);
	bus_close(bus);
}

/* The server is killed and restarted (its memory consumers are gone): once
 * reconnected, the watch goes on from the message after the last it
 * delivered. */
static void watch_goes_on_in_order_after_a_server_kill_and_restart(void **state)
{
	NEED_SERVER();
	struct nats_box ps;
	struct names n;
	struct bus *bus = private_bus_open(&ps, &n);
	struct watch_seen seen;
	watch_seen_init(&seen);
	const struct bus_watch_source src = { n.stream, n.wildcard };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(bus, &src, 1, -1, watch_record, &seen, &w), SHOP_OK);
	publish_numbered(bus, &n, "up", 5);
	assert_int_equal(watch_wait(&seen, 5, 5000), 5);

	nats_box_kill(&ps);
	int64_t deadline = clock_mono_ms() + 5000;
	while (bus_is_connected(bus) && clock_mono_ms() < deadline)
		clock_sleep_ms(20);
	assert_false(bus_is_connected(bus));
	private_server_restart(&ps, bus);
	char subject[NAME_SIZE + 8], id[NAME_SIZE * 2], data[32];
	snprintf(subject, sizeof(subject), "%s.w", n.prefix);
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "%s-again-%d", n.stream, i);
		snprintf(data, sizeof(data), "again-%d", i);
		struct bus_out o = {
			.subject = subject, .msg_id = id, .data = data, .len = strlen(data)
		};
		shop_status st = SHOP_E_INTERNAL;
		for (deadline = clock_mono_ms() + 10000; clock_mono_ms() < deadline;
		     clock_sleep_ms(200))
			if ((st = bus_publish(bus, &o, NULL)) == SHOP_OK)
				break; /* JetStream may still be starting */
		assert_int_equal(st, SHOP_OK);
	}
	assert_int_equal(watch_wait(&seen, 10, 15000), 10);
	clock_sleep_ms(300);
	assert_int_equal(bus_watch_stop(w), SHOP_OK);
	watch_seen_exactly(&seen, "up", 5, "again", 5);
	watch_seen_free(&seen);
	bus_close(bus);
	nats_box_remove(&ps);
}

/* ---- runner ------------------------------------------------------------- */

static int group_setup(void **state)
{
	test_url = getenv("SHOP_TEST_NATS_URL");
	if (!test_url || !*test_url) {
		test_url = NULL;
		return 0;
	}
	if (natsConnection_ConnectTo(&raw_nc, test_url) != NATS_OK ||
	    natsConnection_JetStream(&raw_js, raw_nc, NULL) != NATS_OK)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	jsCtx_Destroy(raw_js);
	natsConnection_Destroy(raw_nc);
	/* No nats_Close here, on purpose. nats.c 3.10.1 frees through a garbage
	 * collector thread that nats_CloseAndWait stops as soon as its list is
	 * empty, while the dispatcher threads of the connections' internal
	 * subscriptions (request replies, publish acks) may still be freeing
	 * their subscription: its five control messages (530 bytes, allocated in
	 * natsMsg_createWithPadding) then reach a collector that is gone and are
	 * reported as a leak, about one run in a few on a loaded machine. Left
	 * open, what nats.c still holds at exit is reachable from its globals or
	 * its threads, and a message this code fails to destroy is still
	 * reported. */
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(url_list_splits_trims_and_skips_empty_entries),
		cmocka_unit_test(connected_bus_reports_connected),
		cmocka_unit_test(ensure_stream_twice_is_idempotent_and_reads_back_as_declared),
		cmocka_unit_test(three_replicas_declaring_at_once_all_succeed),
		cmocka_unit_test(ensure_consumer_sets_ack_wait_max_deliver_and_max_ack_pending),
		cmocka_unit_test(consumer_with_two_filters_receives_only_those_subjects),
		cmocka_unit_test(same_msg_id_twice_is_stored_once_and_reported_duplicate),
		cmocka_unit_test(
			batch_of_2000_is_stored_exactly_once_and_a_rerun_only_finds_duplicates),
		cmocka_unit_test(fetch_from_an_empty_consumer_returns_nothing_after_the_timeout),
		cmocka_unit_test(binding_a_missing_durable_is_not_found),
		cmocka_unit_test(two_consumers_on_one_durable_split_the_messages),
		cmocka_unit_test(nak_with_delay_redelivers_after_the_delay),
		cmocka_unit_test(unacked_message_comes_back_after_ack_wait),
		cmocka_unit_test(terminated_message_is_not_redelivered),
		cmocka_unit_test(dead_letter_stores_a_copy_with_its_origin_and_stops_redelivery),
		cmocka_unit_test(connecting_where_no_server_runs_gives_a_handle_that_fails_fast),
		cmocka_unit_test(consumer_loop_survives_a_server_kill_and_restart),
		cmocka_unit_test(batch_cut_by_a_server_kill_reports_ok_only_for_stored_messages),
		cmocka_unit_test(
			watch_delivers_new_messages_in_order_and_leaves_no_consumer_behind),
		cmocka_unit_test(watch_from_a_time_replays_what_was_stored_since),
		cmocka_unit_test(watch_of_a_missing_stream_fails_and_leaves_no_consumer),
		cmocka_unit_test(watch_consumers_are_named_and_made_on_the_named_create_subject),
		cmocka_unit_test(idle_watch_keeps_its_consumer),
		cmocka_unit_test(watch_delivers_everything_in_order_when_its_consumer_is_deleted),
		cmocka_unit_test(watch_fills_a_gap_in_its_consumer_sequence),
		cmocka_unit_test(watch_goes_on_in_order_after_a_server_kill_and_restart),
	};
	if (getenv("BUS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BUS_TEST_FILTER"));
	return cmocka_run_group_tests_name("bus", tests, group_setup, group_teardown);
}
