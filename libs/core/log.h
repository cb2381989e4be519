/*
 * log.h - structured logs: one JSON object per line on stderr.
 *
 * Every line carries the service name, level and message, and, when known,
 * the order id, event id and correlation id, so `docker compose logs | grep`
 * follows one order across services. Library code does not log; services and
 * the service runtime (libs/svc) do.
 *
 * A line can also go somewhere else: a sink, set by the process once it has
 * one (libs/bus bus_log.c, the distributed logger, publishes each line on
 * logs.<service>.<level>), gets every line that reaches stderr. The sink is
 * called on the logging thread and must return at once; stderr is written
 * whatever the sink does.
 */
#ifndef SHOP_CORE_LOG_H
#define SHOP_CORE_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Identifiers attached to a log line; any member may be NULL. */
struct log_ids {
	const char *order_id;
	const char *event_id;
	const char *correlation_id;
};

/* Every line written, as its JSON without the newline; level is its level.
 * Called on the logging thread with the sink lock held (read side): it must
 * never wait, and never log. */
typedef void (*log_sink_fn)(void *arg, enum log_level level, const char *line, size_t len);

/* Longest instance id kept for the "instance" member (a NUID is 22). */
#define LOG_INSTANCE_MAX 64

void log_init(const char *service, enum log_level min_level);
/* Sets (fn non-NULL) or removes (NULL) the sink. Once it returns the old
 * sink is not running and will not be called again, so its arg may go. */
void log_set_sink(log_sink_fn fn, void *arg);
/* Adds "instance": id to every later line (the registry's instance id, so a
 * line names the process that wrote it); NULL removes it. Cut at
 * LOG_INSTANCE_MAX bytes. */
void log_set_instance(const char *id);
/* "debug", "info", "warn" or "error". */
const char *log_level_name(enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int log_level_parse(const char *s);
void log_write(enum log_level level, const struct log_ids *ids, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(ids, ...) log_write(LOG_LVL_DEBUG, (ids), __VA_ARGS__)
#define log_info(ids, ...) log_write(LOG_LVL_INFO, (ids), __VA_ARGS__)
#define log_warn(ids, ...) log_write(LOG_LVL_WARN, (ids), __VA_ARGS__)
#define log_error(ids, ...) log_write(LOG_LVL_ERROR, (ids), __VA_ARGS__)

#endif
