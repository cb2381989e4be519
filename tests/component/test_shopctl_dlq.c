/*
 * test_shopctl_dlq.c - `shopctl dlq` (tools/shopctl/shopctl_dlq.c) against
 * the real nats-server of tests/component/run.sh.
 *
 * Dead letters are made the way the services make them: a message fetched
 * from a durable and given up with bus_msg_dead_letter. The dead-letter
 * stream is shared with the other suites, so every listing and purge here
 * keeps to this run's own stream (the STREAM[.DURABLE] filter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "core/clock.h"
#include "shopctl/shopctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_SIZE 64
#define FETCH_WAIT_MS 3000

struct fixture {
	struct bus *bus;
	char stream[NAME_SIZE];
	char subject[NAME_SIZE];
	char wildcard[NAME_SIZE];
	char durable[NAME_SIZE];
	struct bus_consumer *c;
};

static int fixture_setup(void **state)
{
	static int counter;
	const char *url = getenv("SHOP_TEST_NATS_URL");
	if (!url || !*url)
		return -1;
	struct fixture *f = calloc(1, sizeof(*f));
	int k = ++counter;
	snprintf(f->stream, sizeof(f->stream), "DLQT_%d_%d", (int)getpid(), k);
	snprintf(f->wildcard, sizeof(f->wildcard), "dlqt%dn%d.>", (int)getpid(), k);
	snprintf(f->subject, sizeof(f->subject), "dlqt%dn%d.event.v1", (int)getpid(), k);
	snprintf(f->durable, sizeof(f->durable), "worker");
	const char *subjects[] = { f->wildcard };
	const char *dlq_subjects[] = { BUS_DEADLETTER_PREFIX ".>" };
	if (bus_connect(url, "test_shopctl_dlq", &f->bus) != SHOP_OK ||
	    bus_ensure_stream(f->bus, f->stream, subjects, 1, 1) != SHOP_OK ||
	    bus_ensure_stream(f->bus, BUS_DEADLETTER_STREAM, dlq_subjects, 1, 1) != SHOP_OK ||
	    bus_ensure_consumer(f->bus, f->stream, f->durable, subjects, 1) != SHOP_OK ||
	    bus_consumer_open(f->bus, f->stream, f->durable, &f->c) != SHOP_OK)
		return -1;
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	bus_consumer_close(f->c);
	bus_close(f->bus);
	free(f);
	return 0;
}

static void publish(struct fixture *f, const char *id, const char *data)
{
	struct bus_out o = {
		.subject = f->subject, .msg_id = id, .data = data, .len = strlen(data)
	};
	assert_int_equal(bus_publish(f->bus, &o, NULL), SHOP_OK);
}

/* The next message of the durable, within FETCH_WAIT_MS. */
static struct bus_msg *fetch_one(struct fixture *f)
{
	int64_t deadline = clock_mono_ms() + FETCH_WAIT_MS;
	while (clock_mono_ms() < deadline) {
		struct bus_msg **msgs = NULL;
		size_t n = 0;
		assert_int_equal(bus_fetch(f->c, 1, 500, &msgs, &n), SHOP_OK);
		if (n == 1) {
			struct bus_msg *m = msgs[0];
			free(msgs);
			return m;
		}
	}
	fail_msg("no message on %s within %d ms", f->stream, FETCH_WAIT_MS);
	return NULL;
}

/* Publishes DATA and dead-letters it with REASON, as a service would. */
static void dead_letter(struct fixture *f, const char *id, const char *data, const char *reason)
{
	publish(f, id, data);
	struct bus_msg *m = fetch_one(f);
	assert_int_equal(bus_msg_dead_letter(f->bus, f->c, m, reason), SHOP_OK);
	bus_msg_free(m);
}

/* What FN wrote to a memory stream, as a string the caller frees. */
#define CAPTURE(out_text, call)                                                                    \
	do {                                                                                       \
		size_t cap_len_ = 0;                                                               \
		FILE *out = open_memstream(&(out_text), &cap_len_);                                \
		assert_non_null(out);                                                              \
		assert_int_equal((call), SHOP_OK);                                                 \
		fclose(out);                                                                       \
	} while (0)

/* The sequence of the first line of a listing. */
static uint64_t first_seq(const char *listing)
{
	return strtoull(listing, NULL, 10);
}

static void list_and_show_say_where_each_came_from_and_why(void **state)
{
	struct fixture *f = *state;
	dead_letter(f, "e-1", "{\"id\":\"e-1\",\"subject\":\"order-1\"}", "no such SKU");
	dead_letter(f, "e-2", "{\"id\":\"e-2\",\"subject\":\"order-2\"}", "amount\nmismatch");
	char *text = NULL;
	size_t n = 0;
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, f->stream, out, &n));
	assert_int_equal(n, 2);
	char want[256];
	snprintf(want, sizeof(want),
		 "%s %s.worker deliveries=1 order=order-1 reason: no such SKU\n", f->subject,
		 f->stream);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "order=order-2 reason: amount mismatch\n"));
	uint64_t seq = first_seq(text);
	free(text);
	/* The durable's name narrows it the same; another durable has none. */
	char only[NAME_SIZE * 2];
	snprintf(only, sizeof(only), "%s.worker", f->stream);
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, only, out, &n));
	assert_int_equal(n, 2);
	free(text);
	snprintf(only, sizeof(only), "%s.other", f->stream);
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, only, out, &n));
	assert_int_equal(n, 0);
	free(text);

	CAPTURE(text, shopctl_dlq_show(f->bus, BUS_DEADLETTER_STREAM, seq, out));
	assert_non_null(
		strstr(text, "reason: no such SKU\n{\"id\":\"e-1\",\"subject\":\"order-1\"}\n"));
	free(text);
	FILE *sink = fopen("/dev/null", "w");
	assert_int_equal(shopctl_dlq_show(f->bus, BUS_DEADLETTER_STREAM, UINT64_MAX / 2, sink),
			 SHOP_E_NOT_FOUND);
	fclose(sink);
	assert_int_equal(shopctl_dlq_purge(f->bus, BUS_DEADLETTER_STREAM, f->stream), SHOP_OK);
}

static void a_replay_goes_back_to_its_subject_once_and_leaves_the_list(void **state)
{
	struct fixture *f = *state;
	const char *data = "{\"id\":\"e-3\",\"subject\":\"order-3\"}";
	dead_letter(f, "e-3", data, "database was read-only");
	char *text = NULL;
	size_t n = 0;
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, f->stream, out, &n));
	assert_int_equal(n, 1);
	uint64_t seq = first_seq(text);
	free(text);

	CAPTURE(text, shopctl_dlq_replay(f->bus, BUS_DEADLETTER_STREAM, seq, out));
	/* The durable that gave up gets the same envelope on the same subject,
	 * stored where the line says. */
	struct bus_msg *m = fetch_one(f);
	assert_string_equal(bus_msg_subject(m), f->subject);
	char want[256];
	snprintf(want, sizeof(want), "%" PRIu64 " replayed on %s as %s %" PRIu64 "\n", seq,
		 f->subject, f->stream, bus_msg_stream_seq(m));
	assert_string_equal(text, want);
	free(text);
	size_t len = 0;
	const char *got = bus_msg_data(m, &len);
	assert_int_equal(len, strlen(data));
	assert_memory_equal(got, data, len);
	assert_int_equal(bus_msg_ack(m), SHOP_OK);
	bus_msg_free(m);

	/* It left the list; replaying it again finds nothing. */
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, f->stream, out, &n));
	assert_int_equal(n, 0);
	free(text);
	FILE *sink = fopen("/dev/null", "w");
	assert_int_equal(shopctl_dlq_replay(f->bus, BUS_DEADLETTER_STREAM, seq, sink),
			 SHOP_E_NOT_FOUND);
	fclose(sink);
	struct bus_msg **none = NULL;
	assert_int_equal(bus_fetch(f->c, 1, 1000, &none, &n), SHOP_OK);
	assert_int_equal(n, 0);
}

/* A consumer of a confidential stream (CARDS) dead-letters without the
 * body: the token stays out of the dead-letter stream, show says so, and a
 * replay is refused, the letter kept. */
static void a_confidential_dead_letter_keeps_no_body_and_is_not_replayed(void **state)
{
	struct fixture *f = *state;
	static const char secret[] = "{\"id\":\"c-1\",\"subject\":\"order-9\","
				     "\"data\":{\"payment\":{\"card_token\":\"tok_secret\"}}}";
	bus_consumer_set_confidential(f->c, true);
	dead_letter(f, "c-1", secret, "data violates the contract");
	char *text = NULL;
	size_t n = 0;
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, f->stream, out, &n));
	assert_int_equal(n, 1);
	char want[256];
	snprintf(want, sizeof(want),
		 "%s %s.worker deliveries=1 order=- reason: data violates the contract\n",
		 f->subject, f->stream);
	assert_non_null(strstr(text, want)); /* reason and subject are kept */
	uint64_t seq = first_seq(text);
	free(text);

	struct bus_msg *m = NULL;
	assert_int_equal(bus_stream_get(f->bus, BUS_DEADLETTER_STREAM, seq, &m), SHOP_OK);
	size_t len = 0;
	bus_msg_data(m, &len);
	assert_int_equal(len, 0);
	assert_true(shopctl_dlq_withheld(m));
	assert_string_equal(bus_msg_header(m, BUS_HDR_DLQ_BODY), BUS_DLQ_BODY_WITHHELD);
	assert_string_equal(bus_msg_header(m, BUS_HDR_DLQ_SUBJECT), f->subject);
	bus_msg_free(m);

	CAPTURE(text, shopctl_dlq_show(f->bus, BUS_DEADLETTER_STREAM, seq, out));
	assert_null(strstr(text, "tok_secret"));
	assert_non_null(strstr(text, "no body"));
	free(text);

	size_t cap = 0;
	char *replayed = NULL;
	FILE *out = open_memstream(&replayed, &cap);
	assert_int_equal(shopctl_dlq_replay(f->bus, BUS_DEADLETTER_STREAM, seq, out),
			 SHOP_E_INVALID);
	fclose(out);
	assert_string_equal(replayed, "");
	free(replayed);
	/* Still there, and nothing went back to the stream. */
	assert_int_equal(bus_stream_get(f->bus, BUS_DEADLETTER_STREAM, seq, &m), SHOP_OK);
	bus_msg_free(m);
	uint64_t msgs = 0;
	assert_int_equal(bus_stream_state(f->bus, f->stream, &msgs, NULL, NULL), SHOP_OK);
	assert_int_equal(msgs, 1); /* the original, termed but kept by a limits stream */
	assert_int_equal(shopctl_dlq_purge(f->bus, BUS_DEADLETTER_STREAM, f->stream), SHOP_OK);
}

static void replay_all_and_purge_keep_to_their_origin(void **state)
{
	struct fixture *f = *state;
	dead_letter(f, "e-4", "{\"id\":\"e-4\"}", "first");
	dead_letter(f, "e-5", "{\"id\":\"e-5\"}", "second");
	char *text = NULL;
	size_t n = 0;
	CAPTURE(text, shopctl_dlq_replay_all(f->bus, BUS_DEADLETTER_STREAM, f->stream, out, &n));
	assert_int_equal(n, 2);
	free(text);
	for (int i = 0; i < 2; i++) {
		struct bus_msg *m = fetch_one(f);
		assert_int_equal(bus_msg_ack(m), SHOP_OK);
		bus_msg_free(m);
	}
	dead_letter(f, "e-6", "{\"id\":\"e-6\"}", "third");
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, f->stream, out, &n));
	assert_int_equal(n, 1);
	free(text);
	/* A purge of another origin leaves this one's. */
	assert_int_equal(shopctl_dlq_purge(f->bus, BUS_DEADLETTER_STREAM, "NO_SUCH_ORIGIN"),
			 SHOP_OK);
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, f->stream, out, &n));
	assert_int_equal(n, 1);
	free(text);
	assert_int_equal(shopctl_dlq_purge(f->bus, BUS_DEADLETTER_STREAM, f->stream), SHOP_OK);
	CAPTURE(text, shopctl_dlq_list(f->bus, BUS_DEADLETTER_STREAM, f->stream, out, &n));
	assert_int_equal(n, 0);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(list_and_show_say_where_each_came_from_and_why,
						fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			a_replay_goes_back_to_its_subject_once_and_leaves_the_list, fixture_setup,
			fixture_teardown),
		cmocka_unit_test_setup_teardown(
			a_confidential_dead_letter_keeps_no_body_and_is_not_replayed, fixture_setup,
			fixture_teardown),
		cmocka_unit_test_setup_teardown(replay_all_and_purge_keep_to_their_origin,
						fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests_name("shopctl_dlq", tests, NULL, NULL);
}
