/*
 * bus.h - the JetStream layer: connect, declare, publish, fetch, settle.
 *
 * The caller (libs/svc, or shopctl declare as the NATS admin) declares what
 * the generated contracts index says:
 * one stream per owning domain, the dead-letter stream, and one durable pull
 * consumer per (consuming service, stream) with the subjects that service
 * consumes as filters; this layer knows nothing about particular messages. Every replica of a service binds to the same durable,
 * which is how `--scale payments=3` spreads the work.
 *
 * Connections retry forever (a service may start before the server and
 * outlives any restart of it). Publishing sets Nats-Msg-Id to the event id,
 * so a republished event inside the stream's duplicate window is dropped by
 * the server; a publish that times out may have been stored, and the caller
 * retries it with the same id.
 */
#ifndef SHOP_BUS_BUS_H
#define SHOP_BUS_BUS_H

#include "core/log.h"
#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Settings applied to every stream and consumer (see docs/architecture.md). */
#define BUS_ACK_WAIT_MS 30000          /* unacked message is redelivered after this */
#define BUS_MAX_DELIVER 20             /* deliveries before the consumer gives up */
#define BUS_MAX_ACK_PENDING 1000       /* in-flight messages per durable */
#define BUS_DUPLICATE_WINDOW_MS 120000 /* Nats-Msg-Id dedup window */
#define BUS_STREAM_MAX_AGE_MS (7LL * 24 * 3600 * 1000)
#define BUS_PUBLISH_TIMEOUT_MS 5000
#define BUS_FETCH_MAX 256 /* largest batch one fetch asks for */
#define BUS_DEADLETTER_STREAM "DEADLETTER"
#define BUS_DEADLETTER_PREFIX "deadletter" /* subject: deadletter.<stream>.<durable> */
#define BUS_DLQ_REASON_MAX 1024            /* a longer dead-letter reason is cut */
#define BUS_ACK_STREAM_MAX 64              /* stream name kept from a publish ack */

/* Connection behaviour. A server that stops answering is noticed after
 * BUS_PING_INTERVAL_MS * BUS_MAX_PINGS_OUT (a killed one at once, by the
 * closed socket); the client then retries every BUS_RECONNECT_WAIT_MS plus
 * up to BUS_RECONNECT_JITTER_MS, forever. */
#define BUS_RECONNECT_WAIT_MS 500
#define BUS_RECONNECT_JITTER_MS 250 /* so that replicas do not reconnect in step */
#define BUS_PING_INTERVAL_MS 2000
#define BUS_MAX_PINGS_OUT 2
#define BUS_CONNECT_TIMEOUT_MS 2000 /* one connection attempt to one server */
#define BUS_API_TIMEOUT_MS 5000     /* stream and consumer management requests */
#define BUS_PUBLISH_WINDOW 1024     /* unacknowledged publishes in flight in one batch */
/* A fetch waiting at least this long asks the server for idle heartbeats
 * (every quarter of the wait, at most BUS_FETCH_HEARTBEAT_MAX_MS), so a lost
 * pull request ends the fetch early with SHOP_E_UNAVAILABLE. */
#define BUS_FETCH_HEARTBEAT_MIN_WAIT_MS 2000
#define BUS_FETCH_HEARTBEAT_MAX_MS 5000

/* Headers on every published message. */
#define BUS_HDR_MSG_ID "Nats-Msg-Id"
#define BUS_HDR_CONTENT_TYPE "Content-Type"
#define BUS_CONTENT_TYPE "application/cloudevents+json"

/* Header names on dead-lettered copies. */
#define BUS_HDR_DLQ_REASON "Shop-Dead-Letter-Reason"
#define BUS_HDR_DLQ_STREAM "Shop-Dead-Letter-Stream"
#define BUS_HDR_DLQ_CONSUMER "Shop-Dead-Letter-Consumer"
#define BUS_HDR_DLQ_SEQ "Shop-Dead-Letter-Stream-Seq"
#define BUS_HDR_DLQ_SUBJECT "Shop-Dead-Letter-Subject"
#define BUS_HDR_DLQ_DELIVERIES "Shop-Dead-Letter-Deliveries"
/* On a dead letter of a confidential consumer: its body was not copied. */
#define BUS_HDR_DLQ_BODY "Shop-Dead-Letter-Body"
#define BUS_DLQ_BODY_WITHHELD "withheld"

struct bus;
struct bus_consumer;
struct bus_msg;

/* One message to publish. */
struct bus_out {
	const char *subject;
	const char *msg_id; /* becomes Nats-Msg-Id */
	const char *data;
	size_t len;
};

/* Credentials. bus_connect reads them from the environment, so every
 * program on libs/bus (the services, the console, shopctl) is configured the
 * same way: SHOP_NATS_USER and SHOP_NATS_PASSWORD, both or neither. With a
 * user, the connection authenticates as it and takes its replies on
 * _INBOX.<user>.>, the only inbox the server lets that user subscribe to
 * (infra/nats/auth.conf, docs/security.md); without one it connects
 * anonymously, as to a bare nats-server (the component tests). */
#define BUS_ENV_USER "SHOP_NATS_USER"
#define BUS_ENV_PASSWORD "SHOP_NATS_PASSWORD"
#define BUS_INBOX_PREFIX "_INBOX"
/* A user name is one subject token of the inbox prefix and of the
 * permissions: [a-z0-9_-], at most this long. */
#define BUS_USER_MAX 64
/* Bytes of an inbox subject: the prefix, the user, a 22-character NUID. */
#define BUS_INBOX_MAX (sizeof(BUS_INBOX_PREFIX) + BUS_USER_MAX + 32)

/* url may list several servers separated by commas (every node of a
 * cluster: the connection moves to another when its server goes away). name
 * shows in the server's monitoring. SHOP_E_INVALID when the credentials in
 * the environment are malformed (a user without a password, or a user that
 * is not a subject token). A wrong password is not noticed here: the
 * connection keeps retrying, and the server logs the refusal. */
shop_status bus_connect(const char *url, const char *name, struct bus **ret_bus);
/* The user the connection authenticates as, or NULL when anonymous. */
const char *bus_user(const struct bus *bus);
void bus_close(struct bus *bus); /* accepts NULL; close its consumers first */
/* Splits "a, b,c" into its trimmed, non-empty URLs, for programs that set up
 * their own nats.c connection (natsOptions_SetServers); returns how many.
 * Free the list with bus_url_list_free. */
size_t bus_url_list(const char *url, char ***ret_urls);
void bus_url_list_free(char **urls, size_t n);
bool bus_is_connected(struct bus *bus);

/* Creates the stream, or updates it to this configuration: file storage,
 * limits retention, BUS_STREAM_MAX_AGE_MS, BUS_DUPLICATE_WINDOW_MS.
 * Declaring is idempotent and safe from several processes at once; like
 * every call that needs the server, it fails fast with SHOP_E_UNAVAILABLE
 * while disconnected. */
shop_status bus_ensure_stream(struct bus *bus, const char *name, const char *const *subjects,
			      size_t n_subjects, int replicas);
/* The same for a work-queue stream: a message is deleted once a consumer
 * acknowledges (or terms) it, and its consumers' filters may not overlap.
 * A stream's retention cannot be changed once it exists; declaring an
 * existing limits stream as a work queue fails. */
shop_status bus_ensure_work_queue(struct bus *bus, const char *name, const char *const *subjects,
				  size_t n_subjects, int replicas);
/* Creates or updates a durable pull consumer: explicit ack, deliver all,
 * BUS_ACK_WAIT_MS, BUS_MAX_DELIVER, BUS_MAX_ACK_PENDING, and the filters. */
shop_status bus_ensure_consumer(struct bus *bus, const char *stream, const char *durable,
				const char *const *filter_subjects, size_t n_filters);

/* Publishes n messages, pipelined (async with a bounded window), and waits for
 * every ack. ret_status[i] is SHOP_OK when stored (or already stored: a
 * duplicate is success), SHOP_E_TIMEOUT or SHOP_E_UNAVAILABLE otherwise
 * (retry with the same id); a message the server refuses for good says so
 * (SHOP_E_LIMIT when too large, SHOP_E_INVALID, SHOP_E_INTERNAL). The return
 * value is SHOP_OK only if every message was stored, else the first failure.
 * Publishing fails fast with SHOP_E_UNAVAILABLE while disconnected. Batches on
 * one bus run one at a time. */
shop_status bus_publish_batch(struct bus *bus, const struct bus_out *msgs, size_t n,
			      shop_status *ret_status);
/* What the server answered to one stored message. */
struct bus_ack {
	bool duplicate; /* a message with its Nats-Msg-Id was stored before */
	uint64_t seq;   /* its stream sequence (the earlier copy's, for a duplicate) */
	char stream[BUS_ACK_STREAM_MAX + 1]; /* the stream that stores it */
};
/* One message, synchronously; *ret_ack (may be NULL) says where it is
 * stored and whether it was a dedup hit. */
shop_status bus_publish(struct bus *bus, const struct bus_out *msg, struct bus_ack *ret_ack);

/* How many messages the durable has not delivered yet (JetStream's
 * num_pending) and how many it delivered and awaits acks for
 * (num_ack_pending); either pointer may be NULL. For metrics: one API
 * request to the server, or SHOP_E_UNAVAILABLE at once while disconnected. */
shop_status bus_consumer_pending(struct bus *bus, const char *stream, const char *durable,
				 uint64_t *ret_pending, uint64_t *ret_ack_pending);

/* What STREAM holds: its message count and the sequences of its first and
 * last messages (any pointer may be NULL); SHOP_E_NOT_FOUND for no such
 * stream. One API request; SHOP_E_UNAVAILABLE at once while disconnected. */
shop_status bus_stream_state(struct bus *bus, const char *stream, uint64_t *ret_messages,
			     uint64_t *ret_first_seq, uint64_t *ret_last_seq);
/* The message STREAM stores at SEQ, read directly (no consumer):
 * SHOP_E_NOT_FOUND for a sequence that holds none. Free it with
 * bus_msg_free. Its deliveries read 0. */
shop_status bus_stream_get(struct bus *bus, const char *stream, uint64_t seq,
			   struct bus_msg **ret_msg);
void bus_msg_free(struct bus_msg *m); /* accepts NULL */
/* Deletes the message STREAM stores at SEQ (SHOP_E_NOT_FOUND if none). */
shop_status bus_stream_delete(struct bus *bus, const char *stream, uint64_t seq);
/* Removes every message of STREAM, or only those on SUBJECT (a filter,
 * wildcards allowed) when it is not NULL. */
shop_status bus_stream_purge(struct bus *bus, const char *stream, const char *subject);

/* Binds to an existing durable (SHOP_E_NOT_FOUND if there is none); several
 * processes may bind the same one. A consumer is used by one thread at a
 * time, and its messages are settled before it is closed. */
shop_status bus_consumer_open(struct bus *bus, const char *stream, const char *durable,
			      struct bus_consumer **ret_consumer);
void bus_consumer_close(struct bus_consumer *c); /* keeps the durable; accepts NULL */
const char *bus_consumer_stream(const struct bus_consumer *c);
const char *bus_consumer_durable(const struct bus_consumer *c);

/* Up to max (<= BUS_FETCH_MAX) messages, waiting at most timeout_ms for the
 * first. No message before the timeout is SHOP_OK with *ret_n == 0.
 * While disconnected it returns SHOP_E_UNAVAILABLE at once: back off.
 * The array and messages are freed by bus_msgs_free. */
shop_status bus_fetch(struct bus_consumer *c, size_t max, int64_t timeout_ms,
		      struct bus_msg ***ret_msgs, size_t *ret_n);
void bus_msgs_free(struct bus_msg **msgs, size_t n);

const char *bus_msg_subject(const struct bus_msg *m);
const char *bus_msg_data(const struct bus_msg *m, size_t *ret_len);
uint64_t bus_msg_deliveries(const struct bus_msg *m); /* 1 on first delivery */
uint64_t bus_msg_stream_seq(const struct bus_msg *m);
/* A header of the message, or NULL. */
const char *bus_msg_header(const struct bus_msg *m, const char *name);

shop_status bus_msg_ack(struct bus_msg *m);
shop_status bus_msg_nak(struct bus_msg *m, int64_t delay_ms);
shop_status bus_msg_term(struct bus_msg *m);
/* Copies m to deadletter.<stream>.<durable> with the reason and origin in
 * headers (Nats-Msg-Id "<stream>:<durable>:<seq>", so repeating it is safe),
 * waits for the store ack, then terms m. */
shop_status bus_msg_dead_letter(struct bus *bus, struct bus_consumer *c, struct bus_msg *m,
				const char *reason);
/* Marks C as reading a confidential stream: its dead letters then carry the
 * headers above, the reason and the original subject, but no body, and
 * BUS_HDR_DLQ_BODY: BUS_DLQ_BODY_WITHHELD, so what the stream keeps from
 * everyone else (a card token) never lands in the dead-letter stream, which
 * operators and the console read. Such a letter cannot be replayed. */
void bus_consumer_set_confidential(struct bus_consumer *c, bool confidential);

/*
 * Watching streams without touching anyone's durable (the console): one
 * ephemeral pull consumer per source, named by the watch itself
 * (BUS_WATCH_NAME_PREFIX and a random id, so it is created on the named
 * create subject that the NATS permissions can tell from a durable's),
 * created by bus_watch_start and deleted by bus_watch_stop (or by the
 * server BUS_WATCH_INACTIVE_MS after the process died). Within one source
 * messages arrive once each and in stream order: after a gap, a lost
 * consumer, a missed heartbeat or a reconnect the watch makes a new
 * consumer from the message after the last it delivered. Each source is
 * read and delivered on a thread of its own, so across sources there is no
 * order.
 */
#define BUS_WATCH_SOURCES_MAX 16       /* consumers (and threads) in one watch */
#define BUS_WATCH_STOP_WAIT_MS 5000    /* longest wait for the last callback at stop */
#define BUS_WATCH_NAME_PREFIX "watch_" /* consumer name: the prefix and a NUID */
#define BUS_WATCH_NAME_MAX 64          /* bytes of a consumer name */
#define BUS_WATCH_FETCH_MAX 256        /* messages one pull request may bring */
#define BUS_WATCH_WAIT_MS 5000         /* an idle pull request waits this long */
#define BUS_WATCH_HEARTBEAT_MS 1000    /* idle heartbeats while it waits; two missed: made again */
#define BUS_WATCH_INACTIVE_MS 30000    /* the server deletes a consumer nobody pulls from */
#define BUS_WATCH_RETRY_MS 500         /* pause before making a consumer again after an error */
#define BUS_WATCH_API_TIMEOUT_MS 1500  /* consumer create, bind and delete requests */

struct bus_watch;

/* One stream to watch, and the subject filter of its consumer. */
struct bus_watch_source {
	const char *stream;
	const char *subject;
};

/* Called on the source's thread for each message, one call at a time per
 * source; it must not block (a slow callback holds that source back).
 * data is valid only during the call. */
typedef void (*bus_watch_fn)(void *arg, const char *stream, const char *subject, const char *data,
			     size_t len);

/* Starts one consumer per source, delivering messages stored from
 * now on (since_ms < 0) or from wall-clock time since_ms (milliseconds since
 * the epoch). On failure nothing is left behind and fn will not be called
 * again: SHOP_E_UNAVAILABLE while disconnected, SHOP_E_NOT_FOUND for a
 * missing stream, SHOP_E_LIMIT beyond BUS_WATCH_SOURCES_MAX. */
shop_status bus_watch_start(struct bus *bus, const struct bus_watch_source *sources, size_t n,
			    int64_t since_ms, bus_watch_fn fn, void *arg,
			    struct bus_watch **ret_watch);
/* Stops the threads, deletes the consumers (the server deletes them later
 * if it cannot be reached now) and waits until no callback runs or will
 * run, so
 * the caller may free arg once it returns SHOP_OK. SHOP_E_TIMEOUT after
 * BUS_WATCH_STOP_WAIT_MS: a callback may still come, so arg must be kept
 * (the watch itself is then kept too). Never call it from fn. Accepts NULL. */
shop_status bus_watch_stop(struct bus_watch *w);

/*
 * The service registry: the NATS service API ("micro": $SRV.PING, $SRV.INFO,
 * $SRV.STATS). A registered instance answers those with its name, an
 * instance id nats.c draws (a NUID, unique per process), its version and its
 * endpoints, and counts the requests each endpoint served. Its one endpoint,
 * "status", answers on shop.<service>.<id>.status with the JSON of the
 * instance's /readyz, so an operator can ask any instance whether it is ready
 * without reaching its HTTP port.
 *
 * Registering subscribes only: it works while the connection is still
 * trying its first connect (nats.c sends the subscriptions once connected,
 * and again after every reconnect), so a service registers at start and
 * never waits for the broker.
 */
#define BUS_SERVICE_SUBJECT_PREFIX "shop"    /* status subject: shop.<service>.<id>.status */
#define BUS_SERVICE_PING_SUBJECT "$SRV.PING" /* every instance of every service answers */
#define BUS_SERVICE_STATUS_ENDPOINT "status"
#define BUS_SERVICE_STOP_WAIT_MS 2000 /* longest wait for the last request at unregister */
#define BUS_SERVICE_SUBJECT_MAX 256   /* bytes of a status subject */

struct bus_service;

/* The instance's readiness as JSON (what /readyz answers), in memory the
 * registry frees, or NULL when it cannot be had. Called on a nats.c thread
 * for each status request: it may take a short while (a database ping),
 * never long. */
typedef char *(*bus_status_fn)(void *arg);

/* Registers this process as an instance of service name (letters, digits,
 * '-' and '_'). status(arg) answers the status endpoint. SHOP_E_INVALID for a
 * bad name, SHOP_E_UNAVAILABLE when the connection is closed. */
shop_status bus_service_register(struct bus *bus, const char *name, const char *version,
				 bus_status_fn status, void *arg, struct bus_service **ret_service);
/* The instance id the registry answers with. */
const char *bus_service_id(const struct bus_service *s);
/* Stops answering and waits (up to BUS_SERVICE_STOP_WAIT_MS) until no status
 * call runs or will run, so arg may be freed afterwards. Past the wait (the
 * broker unreachable) a late call stays possible until bus_close: keep arg
 * until then. Call it before bus_close. Accepts NULL. */
void bus_service_unregister(struct bus_service *s);

/* Discovery, for operators' tools: requests on subject (a $SRV.PING or
 * $SRV.INFO) and gathers every reply that arrives within wait_ms, up to max
 * of them. ret_replies[i] is a NUL-terminated copy; free the array with
 * bus_replies_free. No reply is SHOP_OK with *ret_n == 0. */
shop_status bus_request_gather(struct bus *bus, const char *subject, int64_t wait_ms, size_t max,
			       char ***ret_replies, size_t *ret_n);
/* One request with an empty body; the first reply, NUL-terminated, for the
 * caller to free. SHOP_E_TIMEOUT when none came within timeout_ms,
 * SHOP_E_UNAVAILABLE when no one listens. */
shop_status bus_request(struct bus *bus, const char *subject, int64_t timeout_ms, char **ret_reply);
void bus_replies_free(char **replies, size_t n); /* accepts NULL */
/* Waits up to timeout_ms for the connection to be up; true when it is. */
bool bus_wait_connected(struct bus *bus, int64_t timeout_ms);

/*
 * The distributed logger (bus_log.c): every log line of a process also goes
 * out on core NATS (not JetStream: nothing stored, no ack) on
 * logs.<service>.<level>, so `shopctl logs 'logs.*.error'` or the console
 * tails the whole shop with a wildcard. The subject is not an event
 * contract: it has no schema in contracts/, only this prefix.
 *
 * A log call never waits for NATS: the sink copies the line into a bounded
 * queue (BUS_LOG_QUEUE_MAX lines) and a thread of its own publishes from
 * there. A full queue drops the line, and so does the thread while the
 * connection is down (a line is worth little once late, and nats.c's
 * reconnect buffer is kept for what matters). Lost lines are counted.
 */
#define BUS_LOG_SUBJECT_PREFIX "logs" /* logs.<service>.<level> */
#define BUS_LOG_QUEUE_MAX 1024        /* lines waiting for the publisher thread */
#define BUS_LOG_LINE_MAX 4096         /* a longer line is dropped, not cut (log.c cuts messages) */
#define BUS_LOG_SUBJECT_MAX 128       /* bytes of logs.<service>.<level> */
#define BUS_LOG_STOP_WAIT_MS 1000     /* longest flush of what is queued at stop */

struct bus_log;

/* Starts the publisher thread for service (letters, digits, '-', '_').
 * SHOP_E_INVALID for a bad name. Set it as the log sink with
 * log_set_sink(bus_log_sink, log). */
shop_status bus_log_start(struct bus *bus, const char *service, struct bus_log **ret_log);
/* The log sink (core/log.h's log_sink_fn; arg is the struct bus_log):
 * copies the line into the queue or drops it; never waits for NATS. */
void bus_log_sink(void *arg, enum log_level level, const char *line, size_t len);
/* Lines published so far, and lines dropped (queue full, too long, or the
 * connection down); either pointer may be NULL. */
void bus_log_counts(struct bus_log *log, uint64_t *ret_published, uint64_t *ret_dropped);
/* Publishes what is queued if it can (at most BUS_LOG_STOP_WAIT_MS), stops
 * the thread and frees. Remove it as the sink first. Accepts NULL. */
void bus_log_stop(struct bus_log *log);

/* A core NATS subscription (no JetStream) with a callback, for tails of the
 * logs subjects: shopctl logs and the console. */
struct bus_sub;
/* Called on a nats.c thread per message; must not block for long. */
typedef void (*bus_sub_fn)(void *arg, const char *subject, const char *data, size_t len);
/* Subscribes to subject (wildcards allowed). Works while disconnected (nats.c
 * subscribes once connected). */
shop_status bus_subscribe(struct bus *bus, const char *subject, bus_sub_fn fn, void *arg,
			  struct bus_sub **ret_sub);
/* Unsubscribes and waits (up to BUS_WATCH_STOP_WAIT_MS) until no callback
 * runs or will run; past that the subscription is kept and arg must be kept
 * until bus_close. Accepts NULL. */
void bus_unsubscribe(struct bus_sub *sub);

#endif
