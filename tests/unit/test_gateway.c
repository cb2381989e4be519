/*
 * test_gateway.c - the gateway's read model and idempotency records on an
 * in-process SQLite database, driven through the runtime as the consumer
 * loop drives them. The HTTP API itself is covered by tests/system.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/gateway/gateway.h"
#include "core/log.h"
#include "service_harness.h"

#define CONSUMER "gateway"
#define ORDER_ID "0192f0c1-7d2a-7abc-8def-0123456789ab"
#define PAYMENT_ID "0192f0c1-7d2a-7abc-8def-0123456789cd"

struct fixture {
	struct svc_spec spec;
	struct db *db;
	struct svc *svc;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	xalloc_init_cjson();
	f->spec = (struct svc_spec){
		.name = "gateway",
		.migrations = gateway_migrations,
		.n_migrations = gateway_n_migrations,
		.any_route = gateway_project,
	};
	assert_int_equal(harness_open(&f->spec, "sqlite::memory:", &f->db, &f->svc), SHOP_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	svc_destroy(f->svc);
	db_close(f->db);
	free(f);
	return 0;
}

/* Delivers MSG of message ID about ORDER_ID under EVENT_ID (NULL: fresh). */
static shop_status deliver(struct fixture *f, enum ct_message_id id, const char *event_id,
			   const void *msg)
{
	char *json = harness_order_envelope(id, event_id, ORDER_ID, msg);
	shop_status st = harness_deliver(f->svc, f->db, CONSUMER, json, NULL, 0);
	free(json);
	return st;
}

static shop_status deliver_placed(struct fixture *f)
{
	static const char *const skus[] = { "SKU-CABLE" };
	static const int quantities[] = { 2 };
	struct ct_order_placed *m = xcalloc(1, sizeof(*m));
	harness_order_placed_fill(m, ORDER_ID, "ada@example.com", 1, skus, quantities);
	shop_status st = deliver(f, CT_MSG_ORDER_PLACED, NULL, m);
	free(m);
	return st;
}

static shop_status deliver_paid(struct fixture *f, const char *event_id)
{
	struct ct_order_paid m = { 0 };
	snprintf(m.order_id, sizeof(m.order_id), ORDER_ID);
	snprintf(m.payment_id, sizeof(m.payment_id), PAYMENT_ID);
	return deliver(f, CT_MSG_ORDER_PAID, event_id, &m);
}

static char *view_status(struct fixture *f)
{
	struct db_result *r = NULL;
	assert_int_equal(db_query(f->db, "SELECT status FROM orders_view WHERE order_id = $1",
				  DB_ARGS(ORDER_ID), &r),
			 SHOP_OK);
	char *status = db_result_rows(r) ? xstrdup(db_result_text(r, 0, 0)) : NULL;
	db_result_free(r);
	return status;
}

static int64_t timeline_len(struct fixture *f)
{
	return harness_query_int(f->db, "SELECT COUNT(*) FROM timeline WHERE order_id = $1",
				 ORDER_ID);
}

static void the_status_only_moves_forward(void **state)
{
	static const struct {
		enum gateway_status from, to;
		bool advances;
	} cases[] = {
		{ GATEWAY_PENDING, GATEWAY_RESERVED, true },
		{ GATEWAY_PENDING, GATEWAY_PAID, true },
		{ GATEWAY_RESERVED, GATEWAY_SHIPPED, true },
		{ GATEWAY_PAID, GATEWAY_CANCELLED, true },
		{ GATEWAY_PAID, GATEWAY_RESERVED, false },
		{ GATEWAY_PAID, GATEWAY_PAID, false },
		{ GATEWAY_SHIPPED, GATEWAY_CANCELLED, false },
		{ GATEWAY_CANCELLED, GATEWAY_SHIPPED, false },
		{ GATEWAY_CANCELLED, GATEWAY_CANCELLED, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(gateway_status_advances(cases[i].from, cases[i].to),
				 cases[i].advances);
}

static void a_late_event_never_moves_the_order_back(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver_placed(f), SHOP_OK);
	assert_int_equal(deliver_paid(f, NULL), SHOP_OK);
	struct ct_order_reserved late = { .total_cents = 1980 };
	snprintf(late.order_id, sizeof(late.order_id), ORDER_ID);
	snprintf(late.currency, sizeof(late.currency), "EUR");
	assert_int_equal(deliver(f, CT_MSG_ORDER_RESERVED, NULL, &late), SHOP_OK);

	char *status = view_status(f);
	assert_string_equal(status, "PAID");
	free(status);
	assert_int_equal(timeline_len(f), 3); /* the late event is still history */
}

static void a_redelivered_event_adds_nothing(void **state)
{
	struct fixture *f = *state;
	char event_id[IDS_UUID_SIZE];
	ids_uuid7(event_id);
	assert_int_equal(deliver_placed(f), SHOP_OK);
	assert_int_equal(deliver_paid(f, event_id), SHOP_OK);
	assert_int_equal(deliver_paid(f, event_id), SHOP_E_DUPLICATE);
	assert_int_equal(timeline_len(f), 2);
}

static void an_event_before_its_order_waits_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(deliver_paid(f, NULL), SHOP_E_NOT_READY);
	assert_null(view_status(f));
	assert_int_equal(timeline_len(f), 0);
	/* Once OrderPlaced is in, the redelivery applies. */
	assert_int_equal(deliver_placed(f), SHOP_OK);
	assert_int_equal(deliver_paid(f, NULL), SHOP_OK);
	char *status = view_status(f);
	assert_string_equal(status, "PAID");
	free(status);
}

static void idempotency_records_expire_after_their_retention(void **state)
{
	struct fixture *f = *state;
	const int64_t now = 1000000000000;
	const char *insert = "INSERT INTO idempotency_keys (idem_key, request, status, response, "
			     "order_id, created_at_ms) VALUES ($1, '{}', 202, '{}', 'o', $2)";
	assert_int_equal(db_exec(f->db, insert,
				 DB_ARGS("old", DB_I64(now - GATEWAY_IDEMPOTENCY_RETENTION_MS - 1)),
				 NULL),
			 SHOP_OK);
	assert_int_equal(db_exec(f->db, insert,
				 DB_ARGS("kept", DB_I64(now - GATEWAY_IDEMPOTENCY_RETENTION_MS)), NULL),
			 SHOP_OK);

	int64_t purged = -1;
	assert_int_equal(gateway_idempotency_purge(f->db, now, GATEWAY_IDEMPOTENCY_RETENTION_MS,
						   &purged),
			 SHOP_OK);
	assert_int_equal(purged, 1);
	assert_int_equal(harness_query_int(f->db, "SELECT COUNT(*) FROM idempotency_keys "
						  "WHERE idem_key = $1",
					   "kept"),
			 1);
	assert_int_equal(harness_query_int(f->db, "SELECT COUNT(*) FROM idempotency_keys", NULL),
			 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_status_only_moves_forward),
		cmocka_unit_test_setup_teardown(a_late_event_never_moves_the_order_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_redelivered_event_adds_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(an_event_before_its_order_waits_and_writes_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(idempotency_records_expire_after_their_retention,
						setup, teardown),
	};
	log_init("gateway-test", LOG_LVL_ERROR);
	return cmocka_run_group_tests_name("gateway", tests, NULL, NULL);
}
