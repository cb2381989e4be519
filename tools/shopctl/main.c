/*
 * shopctl - the operator's command line, talking to NATS directly.
 *
 *   shopctl publish SUBJECT MSG_ID < payload.json
 *       publishes one message with Nats-Msg-Id MSG_ID and waits for the
 *       JetStream ack (the system tests use it to inject duplicated,
 *       out-of-order, poison and forged events; operators to replay a dead
 *       letter by hand); prints "stored STREAM SEQ", or "duplicate STREAM
 *       SEQ" with the sequence of the copy stored before
 *   shopctl services [--json]
 *       lists every service instance that answers the NATS service API's
 *       $SRV.PING: service, instance id, version, endpoints, and whether
 *       its status endpoint says ready; one line per instance, sorted
 *       (shopctl_services.c). Exit status 0 when any answered.
 *   shopctl logs [--json] [--max N] [--seconds S] [PATTERN]
 *       tails the services' log lines from logs.<service>.<level>
 *       (PATTERN, default logs.>; e.g. 'logs.*.error'), one line each
 *       (shopctl_logs.c), until interrupted, N lines or S seconds.
 *
 *   shopctl declare
 *       declares what the contracts index says: the dead-letter stream and
 *       every stream (SHOP_STREAM_REPLICAS replicas, default 1) and every
 *       service's durables, creating or updating each; run as the admin
 *       user by the compose service nats-init before the services start
 *       (their own NATS users may not declare: docs/security.md). Retries
 *       for up to SHOPCTL_DECLARE_WAIT_MS while the cluster elects its
 *       leaders. Exit status 0 when everything is declared.
 *
 *   shopctl audit [--json] [--details N] [--deadline-ms MS] [--allow-dead-letters]
 *       checks the shop's invariants across every service's database, the
 *       provider's ledger and the dead-letter stream (audit.h); prints one
 *       line per check and up to N violations of each (default 10), or one
 *       JSON report. An order is in flight until --deadline-ms after it was
 *       accepted (default SHOP_ORDER_DEADLINE_MS, else 60000). Databases:
 *       SHOP_AUDIT_{GATEWAY,ORDERS,INVENTORY,PAYMENTS,NOTIFICATIONS}_DB, the
 *       URLs db_open takes, each opened read-only.
 *
 *   shopctl dlq list [STREAM[.DURABLE]]
 *   shopctl dlq show SEQ
 *   shopctl dlq replay SEQ | --all [STREAM[.DURABLE]]
 *   shopctl dlq purge [STREAM[.DURABLE]]
 *       the dead letters (shopctl_dlq.c): one line each (sequence, subject
 *       it came from, stream.durable that gave up, deliveries, order,
 *       reason); one with its envelope; replayed on the subject they came
 *       from, through every consumer's inbox, then deleted; or removed.
 *       STREAM[.DURABLE] keeps to the dead letters of that origin.
 *
 * SHOP_NATS_URL names the servers (default nats://127.0.0.1:4222);
 * SHOP_NATS_USER and SHOP_NATS_PASSWORD the NATS user (compose: admin).
 * Exit status: publish: 0 stored, 3 stored earlier (duplicate), 1 error;
 * audit: 0 passed, 1 a violation or a check that could not run; dlq: 0
 * done, 1 error (no such dead letter included); 2 usage.
 */
#include "audit.h"
#include "shopctl.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/xalloc.h"
#include "db/db.h"
#include "svc/svc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest payload shopctl reads from standard input. */
#define SHOPCTL_PAYLOAD_MAX (1024 * 1024)

static int shopctl_usage(void)
{
	fprintf(stderr, "usage: shopctl publish SUBJECT MSG_ID < payload\n"
			"       shopctl services [--json]\n"
			"       shopctl logs [--json] [--max N] [--seconds S] [PATTERN]\n"
			"       shopctl declare\n"
			"       shopctl audit [--json] [--details N] [--deadline-ms MS] "
			"[--allow-dead-letters]\n"
			"       shopctl dlq list [STREAM[.DURABLE]]\n"
			"       shopctl dlq show SEQ\n"
			"       shopctl dlq replay SEQ | --all [STREAM[.DURABLE]]\n"
			"       shopctl dlq purge [STREAM[.DURABLE]]\n");
	return 2;
}

static int shopctl_publish(const char *subject, const char *msg_id)
{
	int rc = 1;
	struct bus *bus = NULL;
	char *payload = xmalloc(SHOPCTL_PAYLOAD_MAX + 1);
	size_t len = fread(payload, 1, SHOPCTL_PAYLOAD_MAX + 1, stdin);
	if (len > SHOPCTL_PAYLOAD_MAX) {
		fprintf(stderr, "shopctl: payload larger than %d bytes\n", SHOPCTL_PAYLOAD_MAX);
		goto out;
	}
	payload[len] = '\0';
	const char *url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");
	if (bus_connect(url, "shopctl", &bus) != SHOP_OK) {
		fprintf(stderr, "shopctl: cannot connect to %s\n", url);
		goto out;
	}
	struct bus_out msg = { .subject = subject, .msg_id = msg_id, .data = payload, .len = len };
	struct bus_ack ack = { 0 };
	shop_status st = bus_publish(bus, &msg, &ack);
	if (st != SHOP_OK) {
		fprintf(stderr, "shopctl: publish failed: %s\n", shop_status_name(st));
		goto out;
	}
	printf("%s %s %" PRIu64 "\n", ack.duplicate ? "duplicate" : "stored", ack.stream, ack.seq);
	rc = ack.duplicate ? 3 : 0;
out:
	bus_close(bus);
	free(payload);
	return rc;
}

static int shopctl_declare(void)
{
	int rc = 1;
	struct bus *bus = NULL;
	int64_t replicas = 0;
	if (config_int("SHOP_STREAM_REPLICAS", SVC_STREAM_REPLICAS_DEFAULT, 1,
		       SVC_STREAM_REPLICAS_MAX, &replicas) != SHOP_OK) {
		fprintf(stderr, "shopctl declare: SHOP_STREAM_REPLICAS must be 1..%d\n",
			SVC_STREAM_REPLICAS_MAX);
		return 2;
	}
	const char *url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");
	if (bus_connect(url, "shopctl-declare", &bus) != SHOP_OK) {
		fprintf(stderr,
			"shopctl declare: cannot connect to %s (check SHOP_NATS_USER "
			"and SHOP_NATS_PASSWORD)\n",
			url);
		goto out;
	}
	/* A cluster that just started may take a while to elect the leaders
	 * that answer stream requests: retry, as the services used to. */
	int64_t deadline = clock_mono_ms() + SHOPCTL_DECLARE_WAIT_MS;
	shop_status st = SHOP_E_UNAVAILABLE;
	for (;;) {
		st = bus_is_connected(bus) ? svc_topology_declare(bus, (int)replicas, NULL)
					   : SHOP_E_UNAVAILABLE;
		if (st == SHOP_OK || clock_mono_ms() >= deadline)
			break;
		clock_sleep_ms(SHOPCTL_DECLARE_RETRY_MS);
	}
	if (st != SHOP_OK) {
		fprintf(stderr, "shopctl declare: %s after %d s (is this the admin user?)\n",
			shop_status_name(st), SHOPCTL_DECLARE_WAIT_MS / 1000);
		goto out;
	}
	printf("declared %s and %zu streams with %lld replica%s, and %zu durables\n",
	       BUS_DEADLETTER_STREAM, ct_n_streams, (long long)replicas, replicas == 1 ? "" : "s",
	       ct_n_consumers);
	rc = 0;
out:
	bus_close(bus);
	return rc;
}

/* Longest deadline the audit accepts: a week, the streams' retention. */
#define SHOPCTL_DEADLINE_MAX_MS (7LL * 24 * 3600 * 1000)
#define SHOPCTL_DEADLINE_DEFAULT_MS 60000

/* A decimal option value in [min, max]. */
static bool shopctl_parse_int(const char *text, int64_t min, int64_t max, int64_t *ret_value)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max)
		return false;
	*ret_value = v;
	return true;
}

/* The database of one service, read-only; NULL (and a message) when its
 * variable is unset or it cannot be opened, which fails the checks that
 * need it rather than the whole audit. */
static struct db *shopctl_audit_open(const char *var)
{
	const char *url = config_str(var, NULL);
	struct db *db = NULL;
	if (!url)
		fprintf(stderr, "shopctl audit: %s is not set\n", var);
	else if (db_open_readonly(url, &db) != SHOP_OK)
		fprintf(stderr, "shopctl audit: %s: %s\n", var, db_last_error(NULL));
	return db;
}

static int shopctl_audit(int argc, char **argv)
{
	bool json = false;
	int64_t details = AUDIT_DETAILS_DEFAULT;
	struct audit_options opt = { .now_ms = clock_now_ms() };
	if (config_int("SHOP_ORDER_DEADLINE_MS", SHOPCTL_DEADLINE_DEFAULT_MS, 1,
		       SHOPCTL_DEADLINE_MAX_MS, &opt.deadline_ms) != SHOP_OK) {
		fprintf(stderr, "shopctl audit: SHOP_ORDER_DEADLINE_MS is not a deadline\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		bool has_value = i + 1 < argc;
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--allow-dead-letters") == 0)
			opt.allow_dead_letters = true;
		else if (strcmp(argv[i], "--details") == 0 && has_value &&
			 shopctl_parse_int(argv[i + 1], 0, AUDIT_DETAILS_MAX, &details))
			i++;
		else if (strcmp(argv[i], "--deadline-ms") == 0 && has_value &&
			 shopctl_parse_int(argv[i + 1], 1, SHOPCTL_DEADLINE_MAX_MS,
					   &opt.deadline_ms))
			i++;
		else
			return shopctl_usage();
	}
	struct audit_sources src = {
		.gateway = shopctl_audit_open("SHOP_AUDIT_GATEWAY_DB"),
		.orders = shopctl_audit_open("SHOP_AUDIT_ORDERS_DB"),
		.inventory = shopctl_audit_open("SHOP_AUDIT_INVENTORY_DB"),
		.payments = shopctl_audit_open("SHOP_AUDIT_PAYMENTS_DB"),
		.notifications = shopctl_audit_open("SHOP_AUDIT_NOTIFICATIONS_DB"),
		.dead_letter_stream = BUS_DEADLETTER_STREAM,
	};
	const char *url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");
	if (bus_connect(url, "shopctl-audit", &src.bus) != SHOP_OK)
		fprintf(stderr, "shopctl audit: cannot connect to %s\n", url);
	struct audit_report report;
	audit_report_init(&report, (size_t)details);
	audit_run(&src, &opt, &report);
	if (json) {
		char *text = audit_report_json(&report);
		printf("%s\n", text);
		free(text);
	} else {
		audit_report_print(&report, stdout);
	}
	int rc = audit_report_passed(&report) ? 0 : 1;
	audit_report_release(&report);
	bus_close(src.bus);
	db_close(src.gateway);
	db_close(src.orders);
	db_close(src.inventory);
	db_close(src.payments);
	db_close(src.notifications);
	return rc;
}

/* A dead letter's stream sequence. */
static bool shopctl_parse_seq(const char *text, uint64_t *ret_seq)
{
	int64_t v = 0;
	if (!shopctl_parse_int(text, 1, INT64_MAX, &v))
		return false;
	*ret_seq = (uint64_t)v;
	return true;
}

static int shopctl_dlq(int argc, char **argv)
{
	const char *cmd = argv[2];
	const char *arg = argc > 3 ? argv[3] : NULL;
	const char *only = NULL;
	uint64_t seq = 0;
	bool all = false;
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "purge") == 0) {
		if (argc > 4)
			return shopctl_usage();
		only = arg;
	} else if (strcmp(cmd, "show") == 0) {
		if (argc != 4 || !shopctl_parse_seq(arg, &seq))
			return shopctl_usage();
	} else if (strcmp(cmd, "replay") == 0) {
		all = arg && strcmp(arg, "--all") == 0;
		if (all ? argc > 5 : argc != 4 || !shopctl_parse_seq(arg, &seq))
			return shopctl_usage();
		only = all && argc == 5 ? argv[4] : NULL;
	} else {
		return shopctl_usage();
	}
	struct bus *bus = NULL;
	const char *url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");
	if (bus_connect(url, "shopctl-dlq", &bus) != SHOP_OK) {
		fprintf(stderr, "shopctl dlq: cannot connect to %s\n", url);
		return 1;
	}
	size_t n = 0;
	shop_status st;
	const char *dlq = BUS_DEADLETTER_STREAM;
	if (strcmp(cmd, "list") == 0)
		st = shopctl_dlq_list(bus, dlq, only, stdout, &n);
	else if (strcmp(cmd, "show") == 0)
		st = shopctl_dlq_show(bus, dlq, seq, stdout);
	else if (strcmp(cmd, "purge") == 0)
		st = shopctl_dlq_purge(bus, dlq, only);
	else if (all)
		st = shopctl_dlq_replay_all(bus, dlq, only, stdout, &n);
	else
		st = shopctl_dlq_replay(bus, dlq, seq, stdout);
	if (st == SHOP_OK && (strcmp(cmd, "list") == 0 || all))
		fprintf(stderr, "%zu dead letter%s%s\n", n, n == 1 ? "" : "s",
			all ? " replayed" : "");
	if (st != SHOP_OK)
		fprintf(stderr, "shopctl dlq %s: %s\n", cmd,
			st == SHOP_E_NOT_FOUND && seq ? "no dead letter at that sequence"
						      : shop_status_name(st));
	bus_close(bus);
	return st == SHOP_OK ? 0 : 1;
}

/* Longest --seconds of shopctl logs: a day. */
#define SHOPCTL_LOGS_SECONDS_MAX 86400
/* Largest --max of shopctl logs. */
#define SHOPCTL_LOGS_MAX_MAX 1000000000

static int shopctl_logs_cmd(int argc, char **argv)
{
	bool json = false;
	int64_t max = 0, seconds = 0;
	const char *pattern = SHOPCTL_LOGS_DEFAULT_PATTERN;
	bool have_pattern = false;
	for (int i = 2; i < argc; i++) {
		bool has_value = i + 1 < argc;
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--max") == 0 && has_value &&
			   shopctl_parse_int(argv[i + 1], 1, SHOPCTL_LOGS_MAX_MAX, &max)) {
			i++;
		} else if (strcmp(argv[i], "--seconds") == 0 && has_value &&
			   shopctl_parse_int(argv[i + 1], 1, SHOPCTL_LOGS_SECONDS_MAX, &seconds)) {
			i++;
		} else if (argv[i][0] != '-' && !have_pattern) {
			pattern = argv[i];
			have_pattern = true;
		} else {
			return shopctl_usage();
		}
	}
	return shopctl_logs(pattern, json, max, seconds);
}

int main(int argc, char **argv)
{
	xalloc_init_cjson();
	if (argc == 4 && strcmp(argv[1], "publish") == 0)
		return shopctl_publish(argv[2], argv[3]);
	if (argc == 2 && strcmp(argv[1], "declare") == 0)
		return shopctl_declare();
	if (argc >= 2 && strcmp(argv[1], "logs") == 0)
		return shopctl_logs_cmd(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "audit") == 0)
		return shopctl_audit(argc, argv);
	if (argc >= 3 && strcmp(argv[1], "dlq") == 0)
		return shopctl_dlq(argc, argv);
	if (argc >= 2 && argc <= 3 && strcmp(argv[1], "services") == 0) {
		if (argc == 3 && strcmp(argv[2], "--json") != 0)
			return shopctl_usage();
		return shopctl_services(argc == 3);
	}
	return shopctl_usage();
}
