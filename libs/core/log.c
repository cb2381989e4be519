/*
 * log.c - JSON-lines logger (see log.h).
 *
 * Lines are built whole in memory and written with one write(2) so that lines
 * from different threads never interleave. The sink and the instance id are
 * read under a read lock, so any number of threads log at once and setting
 * either waits only for the lines being written.
 */
#include "log.h"

#include "clock.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A log message longer than this is cut; it is a message, not a payload. */
#define LOG_MESSAGE_MAX 1024

static const char *log_service = "shop";
static enum log_level log_min = LOG_LVL_INFO;

static const char *const log_level_names[] = { "debug", "info", "warn", "error" };

static pthread_rwlock_t log_lock = PTHREAD_RWLOCK_INITIALIZER; /* sink, arg, instance */
static log_sink_fn log_sink;
static void *log_sink_arg;
static char log_instance[LOG_INSTANCE_MAX + 1];

void log_set_sink(log_sink_fn fn, void *arg)
{
	pthread_rwlock_wrlock(&log_lock);
	log_sink = fn;
	log_sink_arg = arg;
	pthread_rwlock_unlock(&log_lock);
}

void log_set_instance(const char *id)
{
	pthread_rwlock_wrlock(&log_lock);
	snprintf(log_instance, sizeof(log_instance), "%s", id ? id : "");
	pthread_rwlock_unlock(&log_lock);
}

const char *log_level_name(enum log_level level)
{
	return log_level_names[level];
}

void log_init(const char *service, enum log_level min_level)
{
	log_service = service;
	log_min = min_level;
}

int log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++)
		if (strcmp(s, log_level_names[i]) == 0)
			return (int)i;
	return -1;
}

void log_write(enum log_level level, const struct log_ids *ids, const char *fmt, ...)
{
	if (level < log_min)
		return;

	char msg[LOG_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	char ts[CLOCK_RFC3339_SIZE];
	clock_rfc3339(clock_now_ms(), ts);

	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "ts", ts);
	cJSON_AddStringToObject(o, "level", log_level_names[level]);
	cJSON_AddStringToObject(o, "service", log_service);
	pthread_rwlock_rdlock(&log_lock);
	if (log_instance[0])
		cJSON_AddStringToObject(o, "instance", log_instance);
	cJSON_AddStringToObject(o, "msg", msg);
	if (ids && ids->order_id && *ids->order_id)
		cJSON_AddStringToObject(o, "order_id", ids->order_id);
	if (ids && ids->event_id && *ids->event_id)
		cJSON_AddStringToObject(o, "event_id", ids->event_id);
	if (ids && ids->correlation_id && *ids->correlation_id)
		cJSON_AddStringToObject(o, "correlation_id", ids->correlation_id);
	char *line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);

	size_t len = strlen(line);
	if (log_sink)
		log_sink(log_sink_arg, level, line, len);
	pthread_rwlock_unlock(&log_lock);
	line = xrealloc(line, len + 2);
	line[len] = '\n';
	line[len + 1] = '\0';
	/* A short write to stderr has nowhere to be reported; drop it. */
	ssize_t w = write(STDERR_FILENO, line, len + 1);
	(void)w;
	free(line);
}
