/*
 * log.h - structured logs: one JSON object per line on stderr.
 *
 * Every line carries the service name, level and message, and, when known,
 * the order id, event id and correlation id, so `docker compose logs | grep`
 * follows one order across services. Library code does not log; services and
 * the service runtime (libs/svc) do.
 */
#ifndef SHOP_CORE_LOG_H
#define SHOP_CORE_LOG_H

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Identifiers attached to a log line; any member may be NULL. */
struct log_ids {
	const char *order_id;
	const char *event_id;
	const char *correlation_id;
};

void log_init(const char *service, enum log_level min_level);
/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int log_level_parse(const char *s);
void log_write(enum log_level level, const struct log_ids *ids, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(ids, ...) log_write(LOG_LVL_DEBUG, (ids), __VA_ARGS__)
#define log_info(ids, ...) log_write(LOG_LVL_INFO, (ids), __VA_ARGS__)
#define log_warn(ids, ...) log_write(LOG_LVL_WARN, (ids), __VA_ARGS__)
#define log_error(ids, ...) log_write(LOG_LVL_ERROR, (ids), __VA_ARGS__)

#endif
