/*
 * service_harness.h - what the service suites share to drive a detached
 * runtime (no bus) on a real database: opening and migrating it, running a
 * handler in one transaction as the consumer loop does, wrapping messages in
 * envelopes as their producers would publish them, and reading back the
 * events the outbox holds.
 *
 * Included by tests/unit/test_<service>_*.c (and so by the component suites
 * that include those files) and by component suites of their own, after
 * <cmocka.h>. Everything here but harness_open and harness_tx_try asserts,
 * so call it from a case or a setup, never from a group setup or from a
 * thread other than the test's. Every test order ships to one address and
 * pays with one card; a case that cares about other values sets them after
 * the fill.
 */
#ifndef SHOP_TESTS_SERVICE_HARNESS_H
#define SHOP_TESTS_SERVICE_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/xalloc.h"
#include "db/db.h"
#include "evt/ct_versions.h"
#include "evt/envelope.h"
#include "svc/svc.h"

#define HARNESS_REASON_MAX 512

/* Opens URL, migrates SPEC's schema on it and, unless RET_SVC is NULL,
 * creates a detached runtime for SPEC. It does not assert, so group setups
 * can use it too: what failed goes to stderr. */
static inline shop_status harness_open(const struct svc_spec *spec, const char *url,
				       struct db **ret_db, struct svc **ret_svc)
{
	struct db *db = NULL;
	shop_status st = db_open(url, &db);
	if (st != SHOP_OK) {
		fprintf(stderr, "db_open %s: %s\n", url, db_last_error(NULL));
		return st;
	}
	st = svc_migrate(spec, db);
	if (st != SHOP_OK) {
		fprintf(stderr, "migrate %s: %s\n", url, db_last_error(db));
		db_close(db);
		return st;
	}
	struct svc *svc = ret_svc ? svc_create_detached(spec) : NULL;
	if (ret_svc && !svc) {
		db_close(db);
		return SHOP_E_INTERNAL;
	}
	*ret_db = db;
	if (ret_svc)
		*ret_svc = svc;
	return SHOP_OK;
}

/* Runs FN on MSG in one transaction at NOW_MS, committed only when it
 * succeeds, as the consumer loop runs a handler. */
static inline shop_status harness_handle(struct svc *svc, struct db *db, svc_handler_fn fn,
					 const void *msg, int64_t now_ms,
					 const char *correlation_id)
{
	struct svc_tx tx = {
		.svc = svc, .db = db, .correlation_id = correlation_id, .now_ms = now_ms
	};
	assert_int_equal(db_begin(db), SHOP_OK);
	shop_status st = fn(&tx, msg);
	if (st == SHOP_OK)
		assert_int_equal(db_commit(db), SHOP_OK);
	else
		db_rollback(db);
	return st;
}

/* The same without asserting, for racing threads: the first failure of
 * begin, FN or commit. */
static inline shop_status harness_tx_try(struct svc_tx *tx, svc_handler_fn fn, const void *msg)
{
	shop_status st = db_begin(tx->db);
	if (st != SHOP_OK)
		return st;
	st = fn(tx, msg);
	if (st == SHOP_OK)
		st = db_commit(tx->db);
	else
		db_rollback(tx->db);
	return st;
}

struct harness_call {
	svc_handler_fn fn;
	const void *data;
};

static inline shop_status harness_call_in_tx(struct svc_tx *tx, void *arg)
{
	const struct harness_call *c = arg;
	return c->fn(tx, c->data);
}

/* Runs FN on DATA through svc_tx_run on DB, exactly as the runtime does. */
static inline shop_status harness_run(struct svc *svc, struct db *db, svc_handler_fn fn,
				      const void *data)
{
	struct harness_call c = { fn, data };
	return svc_tx_run(svc, db, "corr-test", NULL, harness_call_in_tx, &c);
}

/* The attributes of an envelope; NULL picks the default. */
struct harness_envelope {
	const char *id; /* default: a fresh UUIDv7 */
	/* Default: the type's producer's ("/shop/<producer>"), the only one
	 * consumers take; "/shop/test" for a type the contracts lack. */
	const char *source;
	const char *type;
	const char *subject;
	const char *correlation_id; /* default: the event id */
	const char *causation_id;   /* default: the event id */
};

/* E around DATA (taken), encoded; free() it. */
static inline char *harness_envelope_encode(const struct harness_envelope *e, cJSON *data)
{
	struct evt_envelope env;
	memset(&env, 0, sizeof(env));
	if (e->id)
		snprintf(env.id, sizeof(env.id), "%s", e->id);
	else
		ids_uuid7(env.id);
	const struct ct_message *m = ct_message_by_type(e->type);
	const char *source = m ? m->source : "/shop/test";
	snprintf(env.source, sizeof(env.source), "%s", e->source ? e->source : source);
	snprintf(env.type, sizeof(env.type), "%s", e->type);
	clock_rfc3339(clock_now_ms(), env.time);
	snprintf(env.subject, sizeof(env.subject), "%s", e->subject);
	snprintf(env.correlationid, sizeof(env.correlationid), "%s",
		 e->correlation_id ? e->correlation_id : env.id);
	snprintf(env.causationid, sizeof(env.causationid), "%s",
		 e->causation_id ? e->causation_id : env.id);
	ids_traceparent_new(env.traceparent);
	char *json = evt_envelope_encode(&env, data);
	cJSON_Delete(data);
	assert_non_null(json);
	return json;
}

/* MSG, a struct ct_<message> of message ID, in an envelope of its type from
 * its producer ("/shop/<producer>" unless E says otherwise); free() it. */
static inline char *harness_message_envelope(enum ct_message_id id, struct harness_envelope e,
					     const void *msg)
{
	const struct ct_message *m = &ct_messages[id];
	e.type = m->type;
	return harness_envelope_encode(&e, m->encode(msg));
}

/* MSG of message ID about ORDER_ID under EVENT_ID, as the bus delivers it
 * from its producer, inside the order's conversation: correlation and
 * causation are the order id. */
static inline char *harness_order_envelope(enum ct_message_id id, const char *event_id,
					   const char *order_id, const void *msg)
{
	return harness_message_envelope(id,
					(struct harness_envelope){ .id = event_id,
								   .subject = order_id,
								   .correlation_id = order_id,
								   .causation_id = order_id },
					msg);
}

/* Hands JSON to the runtime as CONSUMER's delivery: contract check, route,
 * inbox claim and handler in one transaction. REASON (may be NULL) gets
 * the runtime's explanation. */
static inline shop_status harness_deliver(struct svc *svc, struct db *db, const char *consumer,
					  const char *json, char *reason, size_t size)
{
	char own[HARNESS_REASON_MAX];
	if (!reason) {
		reason = own;
		size = sizeof(own);
	}
	return svc_handle_envelope(svc, db, consumer, json, strlen(json), reason, size);
}

/* The first cell of SQL's first row, as an integer; ARG is its one
 * parameter ($1), or NULL when it has none. */
static inline int64_t harness_query_int(struct db *db, const char *sql, const char *arg)
{
	struct db_result *r = NULL;
	shop_status st = arg ? db_query(db, sql, DB_ARGS(arg), &r)
			     : db_query(db, sql, DB_NOARGS, &r);
	if (st != SHOP_OK)
		fail_msg("%s: %s", sql, db_last_error(db));
	int64_t n = db_result_int(r, 0, 0);
	db_result_free(r);
	return n;
}

/* Events in the outbox on SUBJECT. */
static inline int64_t harness_outbox_count(struct db *db, const char *subject)
{
	return harness_query_int(db, "SELECT COUNT(*) FROM outbox WHERE subject = $1", subject);
}

/* Events in the outbox. */
static inline int64_t harness_outbox_total(struct db *db)
{
	return harness_query_int(db, "SELECT COUNT(*) FROM outbox", NULL);
}

/* A LIKE pattern for an outbox payload whose envelope's subject is KEY;
 * free it. */
static inline char *harness_subject_pattern(const char *key)
{
	return xasprintf("%%\"subject\":\"%s\"%%", key);
}

/* Events about ORDER_ID (their envelope's subject) on SUBJECT, or on any
 * subject when SUBJECT is "". */
static inline int64_t harness_outbox_count_for(struct db *db, const char *order_id,
					       const char *subject)
{
	struct db_result *r = NULL;
	char *pattern = harness_subject_pattern(order_id);
	assert_int_equal(db_query(db,
				  "SELECT COUNT(*) FROM outbox WHERE payload LIKE $1"
				  " AND ($2 = '' OR subject = $2)",
				  DB_ARGS(pattern, subject), &r),
			 SHOP_OK);
	int64_t n = db_result_int(r, 0, 0);
	db_result_free(r);
	free(pattern);
	return n;
}

/* The events about KEY (their envelope's subject: an order id, a SKU) on
 * SUBJECT, newest first: their payloads in column 0. */
static inline struct db_result *harness_outbox_about(struct db *db, const char *key,
						     const char *subject)
{
	struct db_result *r = NULL;
	char *pattern = harness_subject_pattern(key);
	assert_int_equal(db_query(db,
				  "SELECT payload FROM outbox WHERE payload LIKE $1 AND subject = $2"
				  " ORDER BY id DESC",
				  DB_ARGS(pattern, subject), &r),
			 SHOP_OK);
	free(pattern);
	return r;
}

/* The one event about ORDER_ID (its envelope's subject) on SUBJECT, parsed;
 * cJSON_Delete it. */
static inline cJSON *harness_outbox_for(struct db *db, const char *order_id, const char *subject)
{
	struct db_result *r = harness_outbox_about(db, order_id, subject);
	assert_int_equal(db_result_rows(r), 1);
	cJSON *root = cJSON_Parse(db_result_text(r, 0, 0));
	db_result_free(r);
	assert_non_null(root);
	return root;
}

/* The newest event about KEY on SUBJECT, parsed; cJSON_Delete it. */
static inline cJSON *harness_outbox_last_for(struct db *db, const char *key, const char *subject)
{
	struct db_result *r = harness_outbox_about(db, key, subject);
	assert_true(db_result_rows(r) >= 1);
	cJSON *root = cJSON_Parse(db_result_text(r, 0, 0));
	db_result_free(r);
	assert_non_null(root);
	return root;
}

/* The newest envelope in the outbox on SUBJECT, parsed; cJSON_Delete it. */
static inline cJSON *harness_outbox_last(struct db *db, const char *subject)
{
	struct db_result *r = NULL;
	assert_int_equal(db_query(db,
				  "SELECT payload FROM outbox WHERE subject = $1"
				  " ORDER BY id DESC LIMIT 1",
				  DB_ARGS(subject), &r),
			 SHOP_OK);
	assert_int_equal(db_result_rows(r), 1);
	cJSON *root = cJSON_Parse(db_result_text(r, 0, 0));
	db_result_free(r);
	assert_non_null(root);
	return root;
}

/* The address every test order ships to. */
static inline void harness_address_fill(struct ct_address *a)
{
	snprintf(a->name, sizeof(a->name), "Ada Lovelace");
	snprintf(a->line1, sizeof(a->line1), "1 Main Street");
	snprintf(a->city, sizeof(a->city), "London");
	snprintf(a->postal_code, sizeof(a->postal_code), "N1 9GU");
	snprintf(a->country, sizeof(a->country), "GB");
}

/* An OrderPlaced for ORDER_ID by EMAIL with N lines given as sku, quantity
 * pairs, paid with the visa test card. */
static inline void harness_order_placed_fill(struct ct_order_placed *m, const char *order_id,
					     const char *email, size_t n, const char *const *skus,
					     const int *quantities)
{
	assert_true(n <= CT_ORDER_PLACED_ITEMS_MAX);
	memset(m, 0, sizeof(*m));
	snprintf(m->order_id, sizeof(m->order_id), "%s", order_id);
	snprintf(m->customer_id, sizeof(m->customer_id), "cust-1");
	snprintf(m->email, sizeof(m->email), "%s", email);
	for (size_t i = 0; i < n; i++) {
		snprintf(m->items[i].sku, sizeof(m->items[i].sku), "%s", skus[i]);
		m->items[i].quantity = quantities[i];
	}
	m->items_len = n;
	snprintf(m->payment.card_token, sizeof(m->payment.card_token), "tok_visa");
	harness_address_fill(&m->shipping_address);
}

/* The same order as OrderPlaced v2 (no card), what orders emits now; read
 * from the v1 by the runtime's own upgrade. */
static inline void harness_order_placed_v2_fill(struct ct_order_placed_v2 *m, const char *order_id,
						const char *email, size_t n,
						const char *const *skus, const int *quantities)
{
	struct ct_order_placed *v1 = xcalloc(1, sizeof(*v1));
	harness_order_placed_fill(v1, order_id, email, n, skus, quantities);
	memset(m, 0, sizeof(*m));
	ct_upgrade_find(CT_MSG_ORDER_PLACED)->upgrade(v1, m);
	free(v1);
}

/* The same as the data of an envelope; the caller owns it. */
static inline cJSON *harness_order_placed_json(const char *order_id, size_t n,
					       const char *const *skus, const int *quantities)
{
	struct ct_order_placed *m = xcalloc(1, sizeof(*m));
	harness_order_placed_fill(m, order_id, "ada@example.com", n, skus, quantities);
	cJSON *data = ct_order_placed_encode(m);
	free(m);
	assert_non_null(data);
	return data;
}

#endif
