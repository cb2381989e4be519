/*
 * shopctl.h - what shopctl's files share: the `services` subcommand's
 * model of an instance, and the pure functions that parse the registry's
 * replies and format the listing (unit-tested in tests/unit/test_shopctl_services.c).
 */
#ifndef SHOP_TOOLS_SHOPCTL_H
#define SHOP_TOOLS_SHOPCTL_H

#include "bus/bus.h"
#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest wait for $SRV.PING replies: every instance on a working broker
 * answers within milliseconds, one that has not by then counts as gone. */
#define SHOPCTL_DISCOVERY_WAIT_MS 1000
/* Per instance: its $SRV.INFO, then its status endpoint. The status wait is
 * longer than a service's wait for a database connection (svc.h's
 * SVC_DB_ACQUIRE_WAIT_MS), which a busy instance may spend answering. */
#define SHOPCTL_INFO_TIMEOUT_MS 1000
#define SHOPCTL_STATUS_TIMEOUT_MS 3000
/* Waiting for the first connection to NATS. */
#define SHOPCTL_CONNECT_WAIT_MS 3000
/* shopctl declare: how long it keeps trying (a cluster that has just
 * started elects its JetStream leaders first; compose starts nothing that
 * needs the streams before it succeeds), and how often. */
#define SHOPCTL_DECLARE_WAIT_MS 120000
#define SHOPCTL_DECLARE_RETRY_MS 1000
/* Instances listed at most; replies past it are ignored. */
#define SHOPCTL_INSTANCES_MAX 256
/* Endpoints kept per instance (the shop's have one). */
#define SHOPCTL_ENDPOINTS_MAX 16

/* What the status endpoint said. */
enum shopctl_ready { SHOPCTL_UNKNOWN, SHOPCTL_READY, SHOPCTL_NOT_READY };

struct shopctl_endpoint {
	char *name;
	char *subject;
};

struct shopctl_instance {
	char *service;
	char *id;
	char *version;
	struct shopctl_endpoint endpoints[SHOPCTL_ENDPOINTS_MAX];
	size_t n_endpoints;
	enum shopctl_ready ready;
};

/* Parses a $SRV.PING or $SRV.INFO reply (type names which; endpoints come
 * with INFO only) into ret, which the caller releases. SHOP_E_INVALID when it
 * is not JSON of that type with a name, id and version. */
shop_status shopctl_instance_parse(const char *json, const char *type,
				   struct shopctl_instance *ret);
void shopctl_instance_release(struct shopctl_instance *inst);
/* Takes the endpoints of an INFO reply (src) into dst, leaving src without. */
void shopctl_instance_take_endpoints(struct shopctl_instance *dst, struct shopctl_instance *src);
/* The subject of the instance's status endpoint, or NULL. */
const char *shopctl_status_subject(const struct shopctl_instance *inst);
/* Reads the "status" of a /readyz JSON answer. */
enum shopctl_ready shopctl_ready_parse(const char *json);
const char *shopctl_ready_name(enum shopctl_ready r);
/* Sorts by service name, then instance id. */
void shopctl_instances_sort(struct shopctl_instance *v, size_t n);
/* One line per instance: service, id, version, endpoints (comma-separated,
 * "-" if none) and status, separated by spaces and padded into columns. */
char *shopctl_instances_text(const struct shopctl_instance *v, size_t n);
/* {"instances":[{"service","id","version","endpoints":[...],"status"}]} */
char *shopctl_instances_json(const struct shopctl_instance *v, size_t n);

/* shopctl services [--json]: exit status 0 when any instance answered. */
int shopctl_services(int json);

/* Dead letters (shopctl_dlq.c), in the dead-letter stream STREAM. ONLY is
 * "STREAM" or "STREAM.DURABLE" of their origin, or NULL for all of them. */
/* Longest order id a listing line shows. */
#define SHOPCTL_DLQ_ORDER_MAX 128
/* One line per dead letter, oldest first; *ret_n counts them. */
shop_status shopctl_dlq_list(struct bus *bus, const char *stream, const char *only, FILE *out,
			     size_t *ret_n);
/* The line of the one at SEQ, then its envelope. */
shop_status shopctl_dlq_show(struct bus *bus, const char *stream, uint64_t seq, FILE *out);
/* Whether dead letter M was stored without its body (a confidential
 * stream's: BUS_HDR_DLQ_BODY). */
bool shopctl_dlq_withheld(const struct bus_msg *m);
/* Publishes the one at SEQ on the subject it came from, then deletes it;
 * SHOP_E_NOT_FOUND when there is none, SHOP_E_INVALID when it does not say
 * where it came from, or has no body to replay (a confidential stream's:
 * said on stderr, and the letter is kept). --all stops at the first it
 * cannot replay. */
shop_status shopctl_dlq_replay(struct bus *bus, const char *stream, uint64_t seq, FILE *out);
shop_status shopctl_dlq_replay_all(struct bus *bus, const char *stream, const char *only, FILE *out,
				   size_t *ret_n);
shop_status shopctl_dlq_purge(struct bus *bus, const char *stream, const char *only);

/* shopctl logs: the subject tailed when no pattern is given. */
#define SHOPCTL_LOGS_DEFAULT_PATTERN BUS_LOG_SUBJECT_PREFIX ".>"
/* One printed line for a log message: "TS LEVEL SERVICE/INSTANCE MESSAGE"
 * then " order=ID" and " correlation=ID" when the line has them (the
 * correlation id only when it is not the order id); a message that is not
 * a JSON object is printed as "SUBJECT DATA". The caller frees it. */
char *shopctl_log_line_text(const char *subject, const char *data, size_t len);
/* shopctl logs [--json] [--max N] [--seconds S] [PATTERN]: prints each
 * line until a signal, N lines (0: no limit) or S seconds (0: no limit).
 * Exit status 0 unless it could not subscribe. */
int shopctl_logs(const char *pattern, bool json, int64_t max, int64_t seconds);

#endif
