/*
 * gateway.h - the gateway's internal interface: the HTTP API (gateway_api.c)
 * and the projection of events into its read models (gateway_projection.c).
 */
#ifndef SHOP_GATEWAY_H
#define SHOP_GATEWAY_H

#include "svc/svc.h"

#include <stddef.h>

#define GATEWAY_WAIT_MAX_S 30         /* largest ?wait= on GET /orders/{id} */
#define GATEWAY_WAIT_POLL_MS 50       /* how often a long-poll re-reads the read model */
#define GATEWAY_IDEMPOTENCY_KEY_MAX 255
#define GATEWAY_TIMELINE_MAX 200      /* timeline entries returned per order */
/* How long a replay by Idempotency-Key is possible: records older than this
 * are deleted, and the key then places a new order. 24 h covers any sane
 * client retry loop. */
#define GATEWAY_IDEMPOTENCY_RETENTION_MS (24LL * 3600 * 1000)
#define GATEWAY_IDEMPOTENCY_PURGE_INTERVAL_MS (10LL * 60 * 1000)

extern const struct db_migration gateway_migrations[];
extern const size_t gateway_n_migrations;

/* Order statuses as the API shows them, in lifecycle order. */
enum gateway_status {
	GATEWAY_PENDING,
	GATEWAY_RESERVED,
	GATEWAY_PAID,
	GATEWAY_SHIPPED,
	GATEWAY_CANCELLED,
};

const char *gateway_status_name(enum gateway_status s);
bool gateway_status_parse(const char *s, enum gateway_status *ret);
/* The read model only moves forward: true when `to` may follow `from`. */
bool gateway_status_advances(enum gateway_status from, enum gateway_status to);

void gateway_http(void *ctx, const struct web_request *req, struct web_response *res);
/* Deletes idempotency records created before now_ms - retention_ms;
 * *ret_purged (may be NULL) gets how many. */
shop_status gateway_idempotency_purge(struct db *db, int64_t now_ms, int64_t retention_ms,
				      int64_t *ret_purged);
extern const struct svc_task gateway_tasks[];
extern const size_t gateway_n_tasks;
shop_status gateway_project(struct svc_tx *tx, const void *data);

#endif
