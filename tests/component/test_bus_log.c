/*
 * test_bus_log.c - the distributed logger (libs/bus bus_log.c) and core
 * subscriptions against a real nats-server.
 *
 * The shared server of tests/component/run.sh (SHOP_TEST_NATS_URL) carries
 * the lines of the first cases; the cases where the server stops reading or
 * dies run a private one (nats_box.h). Without SHOP_TEST_NATS_URL every case
 * is skipped. Log lines also go to stderr, which the burst cases send to
 * /dev/null while they run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "nats_box.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a case waits for a line it expects on the bus. */
#define WAIT_MS 5000
/* The slowest a log call may be with the server gone or not reading. The
 * call itself does no I/O but stderr (sent to /dev/null here): measured 5 to
 * 40 ms at worst under AddressSanitizer. A call that waited on the stopped
 * server would wait until the server reads again, which the watchdog below
 * makes happen after RELEASE_MS; the bound sits between the two, with room
 * for a loaded machine. */
#define PROMPT_MS 1000
/* The watchdog resumes a stopped server after this long, so a logger that
 * blocks fails the case instead of hanging it. */
#define RELEASE_MS 5000
/* Lines of the bursts: well past BUS_LOG_QUEUE_MAX, each near log.c's
 * message limit, so ~20 MB: more than the socket buffers and nats.c's
 * pending buffer hold, so a publisher that wrote on the caller's thread
 * would block in the burst. */
#define BURST_LINES 20000
#define BURST_MESSAGE 1000

static const char *test_url;

#define REQUIRE_SERVER()                                                                           \
	do {                                                                                       \
		if (!test_url)                                                                     \
			skip();                                                                    \
	} while (0)

/* What a subscription received: every message, with its subject. */
struct seen {
	pthread_mutex_t mu;
	pthread_cond_t more;
	size_t n;
	char *subjects[64];
	char *data[64];
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	clock_cond_init(&s->more);
}

static void seen_release(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->subjects[i]);
		free(s->data[i]);
	}
	pthread_cond_destroy(&s->more);
	pthread_mutex_destroy(&s->mu);
}

static void seen_on_msg(void *arg, const char *subject, const char *data, size_t len)
{
	struct seen *s = arg;
	pthread_mutex_lock(&s->mu);
	if (s->n < 64) {
		s->subjects[s->n] = xstrdup(subject);
		s->data[s->n] = xstrndup(data, len);
		s->n++;
	}
	pthread_cond_broadcast(&s->more);
	pthread_mutex_unlock(&s->mu);
}

/* Waits until at least n messages were seen; true when they were. */
static bool seen_wait(struct seen *s, size_t n)
{
	struct timespec deadline = clock_mono_deadline(WAIT_MS);
	pthread_mutex_lock(&s->mu);
	while (s->n < n)
		if (pthread_cond_timedwait(&s->more, &s->mu, &deadline) != 0)
			break;
	bool ok = s->n >= n;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static const char *json_str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* A subscription is live once a round trip to the server has passed it. */
static void subscribe_now(struct bus *bus, const char *subject, struct seen *s,
			  struct bus_sub **ret_sub)
{
	assert_true(bus_wait_connected(bus, WAIT_MS));
	assert_int_equal(bus_subscribe(bus, subject, seen_on_msg, s, ret_sub), SHOP_OK);
	char *reply = NULL;
	/* A request nobody answers flushes the SUB before it: no responders. */
	assert_int_not_equal(bus_request(bus, "_test.flush.nobody", 2000, &reply), SHOP_OK);
	free(reply);
}

static void log_lines_reach_logs_service_level_as_json_with_their_ids(void **state)
{
	(void)state;
	REQUIRE_SERVER();
	struct bus *bus = NULL, *tail = NULL;
	struct bus_log *bl = NULL;
	struct bus_sub *sub = NULL;
	struct seen seen;
	seen_init(&seen);
	assert_int_equal(bus_connect(test_url, "test-log", &bus), SHOP_OK);
	assert_int_equal(bus_connect(test_url, "test-tail", &tail), SHOP_OK);
	subscribe_now(tail, "logs.*.warn", &seen, &sub);

	log_init("orders", LOG_LVL_INFO);
	log_set_instance("INSTANCE1");
	assert_int_equal(bus_log_start(bus, "orders", &bl), SHOP_OK);
	log_set_sink(bus_log_sink, bl);
	struct log_ids ids = { .order_id = "ord-7", .correlation_id = "corr-7" };
	log_info(&ids, "not on a warn subject");
	log_debug(&ids, "below the level: nowhere");
	log_warn(&ids, "stock low for %s", "SKU-1");
	assert_true(seen_wait(&seen, 1));
	log_set_sink(NULL, NULL);
	log_warn(NULL, "after the sink is gone: stderr only");
	bus_log_stop(bl);
	log_set_instance(NULL);
	clock_sleep_ms(200); /* anything else would come now */

	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.subjects[0], "logs.orders.warn");
	cJSON *o = cJSON_Parse(seen.data[0]);
	assert_non_null(o);
	assert_string_equal(json_str(o, "service"), "orders");
	assert_string_equal(json_str(o, "instance"), "INSTANCE1");
	assert_string_equal(json_str(o, "level"), "warn");
	assert_string_equal(json_str(o, "msg"), "stock low for SKU-1");
	assert_string_equal(json_str(o, "order_id"), "ord-7");
	assert_string_equal(json_str(o, "correlation_id"), "corr-7");
	assert_non_null(json_str(o, "ts"));
	cJSON_Delete(o);
	bus_unsubscribe(sub);
	bus_close(tail);
	bus_close(bus);
	seen_release(&seen);
}

static void a_wildcard_tail_sees_every_level_of_every_service(void **state)
{
	(void)state;
	REQUIRE_SERVER();
	struct bus *bus = NULL;
	struct bus_log *a = NULL, *b = NULL;
	struct bus_sub *sub = NULL;
	struct seen seen;
	seen_init(&seen);
	assert_int_equal(bus_connect(test_url, "test-log2", &bus), SHOP_OK);
	subscribe_now(bus, "logs.>", &seen, &sub);
	assert_int_equal(bus_log_start(bus, "payments", &a), SHOP_OK);
	assert_int_equal(bus_log_start(bus, "shipping", &b), SHOP_OK);
	bus_log_sink(a, LOG_LVL_ERROR, "{\"msg\":\"a\"}", 11);
	assert_true(seen_wait(&seen, 1));
	bus_log_sink(b, LOG_LVL_INFO, "{\"msg\":\"b\"}", 11);
	assert_true(seen_wait(&seen, 2));
	assert_string_equal(seen.subjects[0], "logs.payments.error");
	assert_string_equal(seen.subjects[1], "logs.shipping.info");
	assert_string_equal(seen.data[1], "{\"msg\":\"b\"}");
	uint64_t published = 0, dropped = 0;
	bus_log_counts(a, &published, &dropped);
	assert_int_equal(published, 1);
	assert_int_equal(dropped, 0);
	bus_log_stop(a);
	bus_log_stop(b);
	bus_unsubscribe(sub);
	bus_close(bus);
	seen_release(&seen);
}

static void a_service_name_that_is_not_one_subject_token_is_refused(void **state)
{
	(void)state;
	REQUIRE_SERVER();
	struct bus *bus = NULL;
	struct bus_log *bl = NULL;
	assert_int_equal(bus_connect(test_url, "test-log3", &bus), SHOP_OK);
	assert_int_equal(bus_log_start(bus, "a.b", &bl), SHOP_E_INVALID);
	assert_int_equal(bus_log_start(bus, "*", &bl), SHOP_E_INVALID);
	assert_int_equal(bus_log_start(bus, "", &bl), SHOP_E_INVALID);
	assert_null(bl);
	bus_close(bus);
}

/* Logs BURST_LINES lines through the sink and returns the slowest call in
 * milliseconds; stderr goes to /dev/null meanwhile. */
static int64_t burst_slowest_ms(void)
{
	char msg[BURST_MESSAGE + 1];
	memset(msg, 'x', BURST_MESSAGE);
	msg[BURST_MESSAGE] = '\0';
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(saved >= 0 && null_fd >= 0);
	dup2(null_fd, STDERR_FILENO);
	int64_t slowest = 0;
	for (int i = 0; i < BURST_LINES; i++) {
		int64_t t0 = clock_mono_ms();
		log_info(NULL, "%d %s", i, msg);
		int64_t took = clock_mono_ms() - t0;
		if (took > slowest)
			slowest = took;
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(null_fd);
	return slowest;
}

/* Resumes the stopped server after RELEASE_MS unless told the burst ended. */
struct watchdog {
	pthread_mutex_t mu;
	pthread_cond_t done_cond;
	bool done;
	pid_t pid;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec deadline = clock_mono_deadline(RELEASE_MS);
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		if (pthread_cond_timedwait(&w->done_cond, &w->mu, &deadline) != 0)
			break;
	if (!w->done)
		kill(w->pid, SIGCONT); /* the process is still ours: not reaped yet */
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* The server stops reading (SIGSTOP: the TCP connection stays up and looks
 * healthy, the worst case for a writer), then dies (SIGKILL): a log call
 * returns promptly in both, and the lines that could not go are dropped
 * and counted. */
static void a_log_call_returns_promptly_when_the_server_stops_reading_or_dies(void **state)
{
	(void)state;
	REQUIRE_SERVER();
	struct nats_box box;
	struct bus *bus = NULL;
	struct bus_log *bl = NULL;
	uint64_t published = 0, dropped = 0;
	nats_box_init(&box, "buslog");
	nats_box_start(&box);
	assert_int_equal(bus_connect(box.url, "test-log4", &bus), SHOP_OK);
	assert_true(bus_wait_connected(bus, WAIT_MS));
	log_init("orders", LOG_LVL_INFO);
	assert_int_equal(bus_log_start(bus, "orders", &bl), SHOP_OK);
	log_set_sink(bus_log_sink, bl);

	struct watchdog wd = { .pid = box.pid };
	pthread_t wd_thread;
	pthread_mutex_init(&wd.mu, NULL);
	clock_cond_init(&wd.done_cond);
	kill(box.pid, SIGSTOP);
	assert_int_equal(pthread_create(&wd_thread, NULL, watchdog_main, &wd), 0);
	int64_t t0 = clock_mono_ms();
	int64_t slowest = burst_slowest_ms();
	int64_t total = clock_mono_ms() - t0;
	pthread_mutex_lock(&wd.mu);
	wd.done = true;
	pthread_cond_signal(&wd.done_cond);
	pthread_mutex_unlock(&wd.mu);
	pthread_join(wd_thread, NULL);
	bus_log_counts(bl, &published, &dropped);
	print_message("# stopped server: %d lines in %lld ms, slowest %lld ms, %llu dropped\n",
		      BURST_LINES, (long long)total, (long long)slowest,
		      (unsigned long long)dropped);
	assert_true(slowest < PROMPT_MS);
	assert_true(dropped > 0); /* the queue filled: the publisher was stuck */
	kill(box.pid, SIGCONT);

	nats_box_kill(&box);
	uint64_t dropped_before = 0;
	bus_log_counts(bl, NULL, &dropped_before);
	slowest = burst_slowest_ms();
	bus_log_counts(bl, &published, &dropped);
	print_message("# dead server: slowest %lld ms, %llu more dropped\n", (long long)slowest,
		      (unsigned long long)(dropped - dropped_before));
	assert_true(slowest < PROMPT_MS);
	assert_true(dropped - dropped_before >= BURST_LINES - BUS_LOG_QUEUE_MAX);

	log_set_sink(NULL, NULL);
	int64_t s0 = clock_mono_ms();
	bus_log_stop(bl);
	/* Stopping gives up on what it cannot send, within its bound. */
	assert_true(clock_mono_ms() - s0 < 3 * BUS_LOG_STOP_WAIT_MS);
	bus_close(bus);
	nats_box_remove(&box);
}

static int group_setup(void **state)
{
	(void)state;
	test_url = getenv("SHOP_TEST_NATS_URL");
	if (test_url && !*test_url)
		test_url = NULL;
	xalloc_init_cjson();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(log_lines_reach_logs_service_level_as_json_with_their_ids),
		cmocka_unit_test(a_wildcard_tail_sees_every_level_of_every_service),
		cmocka_unit_test(a_service_name_that_is_not_one_subject_token_is_refused),
		cmocka_unit_test(a_log_call_returns_promptly_when_the_server_stops_reading_or_dies),
	};
	return cmocka_run_group_tests_name("bus_log", tests, group_setup, NULL);
}
