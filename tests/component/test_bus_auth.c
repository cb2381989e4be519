/*
 * test_bus_auth.c - NATS credentials in libs/bus and the generated
 * permissions (infra/nats/auth.conf, tools/natsauth.py) against a real
 * nats-server of the test's own that includes that very file.
 *
 * A service's user waits for the admin to declare (svc_topology_check),
 * then publishes its own event and fetches and acknowledges from its own
 * durable through its own inbox prefix; another domain's event, another
 * service's durable and purging a stream are refused and change nothing.
 * The registry works across users (allow_responses, the console's inbox).
 * The console watches a stream through consumers it names, and may not send
 * a create request on the subject without a name (whose body could replace
 * a durable).
 * Needs the component harness (SHOP_TEST_NATS_URL, for the skip rule only)
 * and runs from the source tree's root, where infra/nats/auth.conf is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "contracts_gen.h"
#include "core/clock.h"
#include "nats_box.h"
#include "svc/svc.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUTH_CONF "infra/nats/auth.conf"
#define WAIT_MS 5000
#define FETCH_WAIT_MS 2000
/* Every user of auth.conf, whose password the server reads from its
 * environment: "<user>-test-password". */
static const char *const users[] = { "admin",     "console",  "observer", "gateway",      "orders",
				     "inventory", "payments", "shipping", "notifications" };

static const char *test_url;

#define REQUIRE_SERVER()                                                                           \
	do {                                                                                       \
		if (!test_url)                                                                     \
			skip();                                                                    \
	} while (0)

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "r");
	assert_non_null(in);
	FILE *out = fopen(to, "w");
	assert_non_null(out);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	fclose(out);
}

/* A server with JetStream and the generated users, on a free port. */
static void auth_box_start(struct nats_box *b)
{
	char path[PATH_MAX + 32], store[PATH_MAX + 8], log_path[PATH_MAX + 16];
	nats_box_init(b, "busauth");
	snprintf(path, sizeof(path), "%s/auth.conf", b->dir);
	copy_file(AUTH_CONF, path);
	snprintf(path, sizeof(path), "%s/nats.conf", b->dir);
	snprintf(store, sizeof(store), "%s/js", b->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "listen: 127.0.0.1:%d\njetstream { store_dir: \"%s\" }\ninclude ./auth.conf\n",
		b->port, store);
	fclose(f);
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		char var[64], value[64];
		snprintf(var, sizeof(var), "SHOP_NATS_PASSWORD_%s", users[i]);
		for (char *p = var; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		snprintf(value, sizeof(value), "%s-test-password", users[i]);
		setenv(var, value, 1);
	}
	nats_box_log_path(b, log_path, sizeof(log_path));
	char *argv[] = { "nats-server", "-c", path, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	assert_int_equal(posix_spawnp(&b->pid, "nats-server", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int64_t deadline = clock_mono_ms() + NATS_BOX_START_MAX_MS;
	while (!nats_box_accepts(b) && clock_mono_ms() < deadline)
		clock_sleep_ms(50);
	assert_true(nats_box_accepts(b));
}

/* A connection as user (NULL: anonymous), credentials set only for the call. */
static struct bus *connect_as(const struct nats_box *b, const char *user)
{
	struct bus *bus = NULL;
	char password[64];
	if (user) {
		snprintf(password, sizeof(password), "%s-test-password", user);
		setenv(BUS_ENV_USER, user, 1);
		setenv(BUS_ENV_PASSWORD, password, 1);
	}
	assert_int_equal(bus_connect(b->url, user ? user : "anonymous", &bus), SHOP_OK);
	unsetenv(BUS_ENV_USER);
	unsetenv(BUS_ENV_PASSWORD);
	return bus;
}

static uint64_t messages_in(struct bus *admin, const char *stream)
{
	uint64_t n = 0;
	assert_int_equal(bus_stream_state(admin, stream, &n, NULL, NULL), SHOP_OK);
	return n;
}

static void credentials_must_be_whole_and_a_user_a_subject_token(void **state)
{
	(void)state;
	struct bus *bus = NULL;
	setenv(BUS_ENV_USER, "payments", 1);
	unsetenv(BUS_ENV_PASSWORD);
	assert_int_equal(bus_connect("nats://127.0.0.1:1", "t", &bus), SHOP_E_INVALID);
	setenv(BUS_ENV_USER, "pay.ments", 1);
	setenv(BUS_ENV_PASSWORD, "x", 1);
	assert_int_equal(bus_connect("nats://127.0.0.1:1", "t", &bus), SHOP_E_INVALID);
	unsetenv(BUS_ENV_USER);
	assert_int_equal(bus_connect("nats://127.0.0.1:1", "t", &bus), SHOP_E_INVALID);
	unsetenv(BUS_ENV_PASSWORD);
	assert_int_equal(bus_connect("nats://127.0.0.1:1", "t", &bus), SHOP_OK);
	assert_null(bus_user(bus));
	bus_close(bus);
}

static void a_connection_without_credentials_is_refused(void **state)
{
	(void)state;
	REQUIRE_SERVER();
	struct nats_box box;
	auth_box_start(&box);
	struct bus *anonymous = connect_as(&box, NULL);
	assert_false(bus_wait_connected(anonymous, FETCH_WAIT_MS));
	struct bus *admin = connect_as(&box, "admin");
	assert_true(bus_wait_connected(admin, WAIT_MS));
	assert_string_equal(bus_user(admin), "admin");
	bus_close(anonymous);
	bus_close(admin);
	nats_box_remove(&box);
}

static void a_service_waits_for_the_admin_then_uses_only_what_is_its_own(void **state)
{
	(void)state;
	REQUIRE_SERVER();
	struct nats_box box;
	auth_box_start(&box);
	struct bus *admin = connect_as(&box, "admin");
	struct bus *payments = connect_as(&box, "payments");
	assert_true(bus_wait_connected(admin, WAIT_MS));
	assert_true(bus_wait_connected(payments, WAIT_MS));

	/* Nothing declared yet: the service sees what is missing, and may not
	 * declare it itself. */
	const char *missing = NULL;
	assert_int_equal(svc_topology_check(payments, "payments", &missing), SHOP_E_NOT_FOUND);
	assert_string_equal(missing, BUS_DEADLETTER_STREAM);
	assert_int_not_equal(svc_topology_declare(payments, 1, "payments"), SHOP_OK);
	assert_int_equal(svc_topology_declare(admin, 1, NULL), SHOP_OK);
	assert_int_equal(svc_topology_check(payments, "payments", &missing), SHOP_OK);

	/* Its own event is stored. */
	const struct ct_message *own = &ct_messages[CT_MSG_PAYMENT_AUTHORIZED];
	struct bus_out out = {
		.subject = own->subject, .msg_id = "auth-own", .data = "{}", .len = 2
	};
	struct bus_ack ack = { 0 };
	assert_int_equal(bus_publish(payments, &out, &ack), SHOP_OK);
	assert_string_equal(ack.stream, own->stream);

	/* It fetches and acknowledges from its own durable, the replies coming
	 * to its own inbox prefix: the cards, on the work queue only it reads. */
	const struct ct_message *card = &ct_messages[CT_MSG_SUBMIT_CARD];
	out = (struct bus_out){
		.subject = card->subject, .msg_id = "auth-card", .data = "{}", .len = 2
	};
	assert_int_equal(bus_publish(admin, &out, NULL), SHOP_OK);
	struct bus_consumer *mine = NULL;
	assert_int_equal(bus_consumer_open(payments, card->stream, "payments", &mine), SHOP_OK);
	struct bus_msg **msgs = NULL;
	size_t n = 0;
	assert_int_equal(bus_fetch(mine, 1, FETCH_WAIT_MS, &msgs, &n), SHOP_OK);
	assert_int_equal(n, 1);
	assert_int_equal(bus_msg_ack(msgs[0]), SHOP_OK);
	bus_msgs_free(msgs, n);
	bus_consumer_close(mine);
	/* A work queue: the acknowledged card is gone from the stream (the
	 * ack is asynchronous: give the server a moment). */
	uint64_t left = 1;
	for (int i = 0; i < 50 && (left = messages_in(admin, card->stream)) > 0; i++)
		usleep(20 * 1000);
	assert_int_equal(left, 0);

	/* An OrderPlaced waits for inventory on ORDERS. */
	const struct ct_message *placed = &ct_messages[CT_MSG_ORDER_PLACED_V2];
	out = (struct bus_out){
		.subject = placed->subject, .msg_id = "auth-placed", .data = "{}", .len = 2
	};
	assert_int_equal(bus_publish(admin, &out, NULL), SHOP_OK);

	/* Another domain's event is refused and not stored. */
	uint64_t before = messages_in(admin, placed->stream);
	const struct ct_message *paid = &ct_messages[CT_MSG_ORDER_PAID];
	out = (struct bus_out){
		.subject = paid->subject, .msg_id = "auth-forged", .data = "{}", .len = 2
	};
	assert_int_not_equal(bus_publish(payments, &out, NULL), SHOP_OK);
	assert_int_equal(messages_in(admin, placed->stream), before);

	/* Another service's durable gives it nothing: the OrderPlaced above
	 * waits there for inventory (nats.c binds without the consumer info it
	 * was refused; the pull request is refused too), and stays undelivered. */
	uint64_t pending = 0;
	assert_int_equal(bus_consumer_pending(admin, placed->stream, "inventory", &pending, NULL),
			 SHOP_OK);
	assert_int_equal(pending, 1);
	struct bus_consumer *theirs = NULL;
	if (bus_consumer_open(payments, placed->stream, "inventory", &theirs) == SHOP_OK) {
		n = 0;
		msgs = NULL;
		shop_status st = bus_fetch(theirs, 1, FETCH_WAIT_MS, &msgs, &n);
		assert_true(st != SHOP_OK || n == 0);
		bus_msgs_free(msgs, n);
		bus_consumer_close(theirs);
	}
	assert_int_equal(bus_consumer_pending(admin, placed->stream, "inventory", &pending, NULL),
			 SHOP_OK);
	assert_int_equal(pending, 1);
	/* And no stream is purged. */
	before = messages_in(admin, own->stream);
	assert_int_not_equal(bus_stream_purge(payments, own->stream, NULL), SHOP_OK);
	assert_int_equal(messages_in(admin, own->stream), before);

	bus_close(payments);
	bus_close(admin);
	nats_box_remove(&box);
}

static char *status_ready(void *arg)
{
	(void)arg;
	return strdup("{\"ready\":true}");
}

/* A service answers the registry's ping (allow_responses) and the console
 * gathers the answers on its own inbox prefix (bus_inbox_new). */
static void the_registry_works_across_users(void **state)
{
	(void)state;
	REQUIRE_SERVER();
	struct nats_box box;
	auth_box_start(&box);
	struct bus *console = connect_as(&box, "console");
	struct bus *payments = connect_as(&box, "payments");
	assert_true(bus_wait_connected(console, WAIT_MS));
	assert_true(bus_wait_connected(payments, WAIT_MS));
	struct bus_service *reg = NULL;
	assert_int_equal(bus_service_register(payments, "payments", "0.0.0", status_ready, NULL,
					      &reg),
			 SHOP_OK);
	char **replies = NULL;
	size_t n = 0;
	int64_t deadline = clock_mono_ms() + WAIT_MS;
	do {
		bus_replies_free(replies, n);
		replies = NULL;
		n = 0;
		assert_int_equal(bus_request_gather(console, BUS_SERVICE_PING_SUBJECT, 500, 8,
						    &replies, &n),
				 SHOP_OK);
	} while (n == 0 && clock_mono_ms() < deadline);
	assert_int_equal(n, 1);
	assert_non_null(strstr(replies[0], "payments"));
	bus_replies_free(replies, n);
	bus_service_unregister(reg);
	bus_close(payments);
	bus_close(console);
	nats_box_remove(&box);
}

/* What a watch delivered: a count. */
struct watch_count {
	pthread_mutex_t mu;
	size_t n;
};

static void watch_count_one(void *arg, const char *stream, const char *subject, const char *data,
			    size_t len)
{
	(void)stream;
	(void)subject;
	(void)data;
	(void)len;
	struct watch_count *c = arg;
	pthread_mutex_lock(&c->mu);
	c->n++;
	pthread_mutex_unlock(&c->mu);
}

static size_t watch_count_wait(struct watch_count *c, size_t want, int64_t timeout_ms)
{
	size_t n = 0;
	for (int64_t deadline = clock_mono_ms() + timeout_ms;; clock_sleep_ms(20)) {
		pthread_mutex_lock(&c->mu);
		n = c->n;
		pthread_mutex_unlock(&c->mu);
		if (n >= want || clock_mono_ms() >= deadline)
			return n;
	}
}

/* The asynchronous errors of a raw connection: was a permission refused? */
static pthread_mutex_t refused_mu = PTHREAD_MUTEX_INITIALIZER;
static bool refused;

static void note_refusal(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	(void)nc;
	(void)sub;
	(void)closure;
	pthread_mutex_lock(&refused_mu);
	if (err == NATS_NOT_PERMITTED)
		refused = true;
	pthread_mutex_unlock(&refused_mu);
}

static bool was_refused(int64_t timeout_ms)
{
	bool r = false;
	for (int64_t deadline = clock_mono_ms() + timeout_ms;; clock_sleep_ms(20)) {
		pthread_mutex_lock(&refused_mu);
		r = refused;
		pthread_mutex_unlock(&refused_mu);
		if (r || clock_mono_ms() >= deadline)
			return r;
	}
}

/* The console reads a stream through its watch (consumers it names
 * itself), while a create request on the subject without a consumer name,
 * whose body names a service's durable, is refused by the server and leaves
 * that durable as it was. */
static void the_console_watches_but_may_not_create_a_consumer_without_a_name(void **state)
{
	(void)state;
	REQUIRE_SERVER();
	struct nats_box box;
	auth_box_start(&box);
	struct bus *admin = connect_as(&box, "admin");
	struct bus *console = connect_as(&box, "console");
	assert_true(bus_wait_connected(admin, WAIT_MS));
	assert_true(bus_wait_connected(console, WAIT_MS));
	assert_int_equal(svc_topology_declare(admin, 1, NULL), SHOP_OK);

	const struct ct_message *placed = &ct_messages[CT_MSG_ORDER_PLACED];
	struct watch_count seen = { .mu = PTHREAD_MUTEX_INITIALIZER };
	const struct bus_watch_source src = { placed->stream, placed->subject };
	struct bus_watch *w = NULL;
	assert_int_equal(bus_watch_start(console, &src, 1, -1, watch_count_one, &seen, &w),
			 SHOP_OK);
	struct bus_out out = {
		.subject = placed->subject, .msg_id = "auth-watched", .data = "{}", .len = 2
	};
	assert_int_equal(bus_publish(admin, &out, NULL), SHOP_OK);
	assert_int_equal(watch_count_wait(&seen, 1, WAIT_MS), 1);
	assert_int_equal(bus_watch_stop(w), SHOP_OK);

	/* The console's credentials on a raw connection, with its inbox. */
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	assert_int_equal(natsOptions_Create(&opts), NATS_OK);
	assert_int_equal(natsOptions_SetURL(opts, box.url), NATS_OK);
	assert_int_equal(natsOptions_SetUserInfo(opts, "console", "console-test-password"),
			 NATS_OK);
	assert_int_equal(natsOptions_SetCustomInboxPrefix(opts, BUS_INBOX_PREFIX ".console"),
			 NATS_OK);
	assert_int_equal(natsOptions_SetErrorHandler(opts, note_refusal, NULL), NATS_OK);
	assert_int_equal(natsConnection_Connect(&nc, opts), NATS_OK);
	char subject[128], body[256];
	snprintf(subject, sizeof(subject), "$JS.API.CONSUMER.CREATE.%s", placed->stream);
	snprintf(body, sizeof(body),
		 "{\"stream_name\":\"%s\",\"config\":{\"name\":\"inventory\","
		 "\"ack_policy\":\"none\",\"deliver_policy\":\"new\",\"filter_subject\":\"%s\"}}",
		 placed->stream, placed->subject);
	natsMsg *reply = NULL;
	assert_int_not_equal(natsConnection_RequestString(&reply, nc, subject, body, FETCH_WAIT_MS),
			     NATS_OK);
	assert_null(reply);
	assert_true(was_refused(WAIT_MS));
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);

	/* inventory's durable is the one the admin declared, message and all. */
	uint64_t pending = 0;
	assert_int_equal(bus_consumer_pending(admin, placed->stream, "inventory", &pending, NULL),
			 SHOP_OK);
	assert_int_equal(pending, 1);
	natsConnection *anc = NULL;
	jsCtx *ajs = NULL;
	jsConsumerInfo *ci = NULL;
	assert_int_equal(natsOptions_Create(&opts), NATS_OK);
	assert_int_equal(natsOptions_SetURL(opts, box.url), NATS_OK);
	assert_int_equal(natsOptions_SetUserInfo(opts, "admin", "admin-test-password"), NATS_OK);
	assert_int_equal(natsConnection_Connect(&anc, opts), NATS_OK);
	assert_int_equal(natsConnection_JetStream(&ajs, anc, NULL), NATS_OK);
	assert_int_equal(js_GetConsumerInfo(&ci, ajs, placed->stream, "inventory", NULL, NULL),
			 NATS_OK);
	assert_string_equal(ci->Config->Durable, "inventory");
	assert_int_equal(ci->Config->AckPolicy, js_AckExplicit);
	jsConsumerInfo_Destroy(ci);
	jsCtx_Destroy(ajs);
	natsConnection_Destroy(anc);
	natsOptions_Destroy(opts);

	bus_close(console);
	bus_close(admin);
	nats_box_remove(&box);
}

int main(void)
{
	test_url = getenv("SHOP_TEST_NATS_URL");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(credentials_must_be_whole_and_a_user_a_subject_token),
		cmocka_unit_test(a_connection_without_credentials_is_refused),
		cmocka_unit_test(a_service_waits_for_the_admin_then_uses_only_what_is_its_own),
		cmocka_unit_test(the_registry_works_across_users),
		cmocka_unit_test(the_console_watches_but_may_not_create_a_consumer_without_a_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
