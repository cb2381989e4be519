/*
 * shopctl_logs.c - `shopctl logs [PATTERN]`: tails the services' log lines
 * from the bus (libs/bus bus_log.c publishes each on logs.<service>.<level>).
 *
 * One core NATS subscription to PATTERN (default logs.>); each message
 * becomes one printed line: time, level, service/instance, message and the
 * ids the line carries, or with --json the line's JSON as it came. Core NATS
 * keeps nothing: the tail shows what is logged from the moment it
 * subscribed. It runs until SIGINT or SIGTERM, or until --max lines were
 * printed, or --seconds passed (what scripts and the tests use).
 */
#include "shopctl.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A member of the line, or "" when it is missing or not a string. */
static const char *shopctl_log_str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
	return s ? s : "";
}

char *shopctl_log_line_text(const char *subject, const char *data, size_t len)
{
	size_t cap = len + strlen(subject) + 64;
	char *out = xmalloc(cap);
	cJSON *o = cJSON_ParseWithLength(data, len);
	if (!cJSON_IsObject(o)) {
		/* Not the logger's JSON: shown as it came, so nothing is hidden. */
		snprintf(out, cap, "%s %.*s", subject, (int)len, data);
		goto out;
	}
	const char *instance = shopctl_log_str(o, "instance");
	const char *order = shopctl_log_str(o, "order_id");
	const char *corr = shopctl_log_str(o, "correlation_id");
	cap += strlen(instance) + strlen(order) + strlen(corr);
	out = xrealloc(out, cap);
	int n = snprintf(out, cap, "%s %-5s %s%s%s %s", shopctl_log_str(o, "ts"),
			 shopctl_log_str(o, "level"), shopctl_log_str(o, "service"),
			 *instance ? "/" : "", instance, shopctl_log_str(o, "msg"));
	if (*order && n > 0 && (size_t)n < cap)
		n += snprintf(out + n, cap - (size_t)n, " order=%s", order);
	/* The correlation id of an order's messages is the order's id: said
	 * once unless it differs. */
	if (*corr && strcmp(corr, order) != 0 && n > 0 && (size_t)n < cap)
		snprintf(out + n, cap - (size_t)n, " correlation=%s", corr);
out:
	cJSON_Delete(o);
	return out;
}

struct shopctl_tail {
	pthread_mutex_t mu;
	pthread_cond_t more; /* a line was printed */
	bool json;
	bool stop; /* a signal came */
	int64_t printed;
};

static void shopctl_tail_on_msg(void *arg, const char *subject, const char *data, size_t len)
{
	struct shopctl_tail *t = arg;
	char *text = t->json ? NULL : shopctl_log_line_text(subject, data, len);
	pthread_mutex_lock(&t->mu);
	if (text)
		printf("%s\n", text);
	else
		printf("%.*s\n", (int)len, data);
	fflush(stdout);
	t->printed++;
	pthread_cond_signal(&t->more);
	pthread_mutex_unlock(&t->mu);
	free(text);
}

/* Ends the tail when SIGINT or SIGTERM comes (the other threads block both). */
static void *shopctl_tail_signals(void *arg)
{
	struct shopctl_tail *t = arg;
	sigset_t set;
	int sig = 0;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &sig);
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_signal(&t->more);
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int shopctl_logs(const char *pattern, bool json, int64_t max, int64_t seconds)
{
	int rc = 1;
	struct bus *bus = NULL;
	struct bus_sub *sub = NULL;
	struct shopctl_tail t = { .json = json };
	pthread_t sig_thread;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_mutex_init(&t.mu, NULL);
	clock_cond_init(&t.more);

	const char *url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");
	if (bus_connect(url, "shopctl-logs", &bus) != SHOP_OK ||
	    !bus_wait_connected(bus, SHOPCTL_CONNECT_WAIT_MS)) {
		fprintf(stderr, "shopctl logs: cannot connect to %s\n", url);
		goto out;
	}
	shop_status st = bus_subscribe(bus, pattern, shopctl_tail_on_msg, &t, &sub);
	if (st != SHOP_OK) {
		fprintf(stderr, "shopctl logs: cannot subscribe to %s: %s\n", pattern,
			shop_status_name(st));
		goto out;
	}
	pthread_create(&sig_thread, NULL, shopctl_tail_signals, &t);
	pthread_detach(sig_thread);
	struct timespec deadline = clock_mono_deadline(seconds > 0 ? seconds * 1000 : 0);
	pthread_mutex_lock(&t.mu);
	while (!t.stop && (max == 0 || t.printed < max)) {
		if (seconds > 0) {
			if (pthread_cond_timedwait(&t.more, &t.mu, &deadline) != 0)
				break;
		} else {
			pthread_cond_wait(&t.more, &t.mu);
		}
	}
	pthread_mutex_unlock(&t.mu);
	rc = 0;
out:
	bus_unsubscribe(sub);
	bus_close(bus);
	return rc;
}
