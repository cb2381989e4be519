/*
 * test_shopctl_audit_pg.c - shopctl audit over real databases, laid out as
 * compose deploys them: orders, inventory and payments (with the provider's
 * ledger) each in a PostgreSQL database of its own, the gateway and
 * notifications in SQLite files, and a dead-letter stream on the
 * nats-server of tests/component/run.sh (a stream of the test's own, since
 * other suites dead-letter into the real one).
 *
 * Each service's schema comes from its own migrations, the ledger from the
 * provider's own charges and refunds. A clean data set passes; then each
 * invariant is broken once, and the audit must report exactly those, each
 * naming its order (or SKU). The audit's connections are read-only, and a
 * writer holding SQLite's write lock does not stop it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "core/clock.h"
#include "db/db.h"
#include "../../services/gateway/gateway_store.h"
#include "../../services/inventory/inventory.h"
#include "../../services/notifications/notifications_store.h"
#include "../../services/orders/orders_store.h"
#include "../../services/payments/payments_provider.h"
#include "pg_scratch.h"
#include "shopctl/audit.h"

#include <limits.h>

#define DEADLINE_MS 60000

struct fixture {
	struct pg_scratch orders, inventory, payments;
	char gateway_path[PATH_MAX], notifications_path[PATH_MAX];
	struct db *gateway_w, *notifications_w; /* the services' writers, for seeding */
	struct payments_provider *provider;
	struct bus *bus;
	char dlq_stream[64], dlq_subject[64];
	struct audit_sources src; /* read-only connections */
	int64_t now_ms;
};

static int sqlite_file(char *path, const char *name, const struct db_migration *m, size_t n,
		       struct db **ret_db)
{
	const char *dir = getenv("SHOP_TEST_WORKDIR");
	snprintf(path, PATH_MAX, "%s/audit-%d-%lld-%s.db", dir ? dir : "/tmp", (int)getpid(),
		 (long long)clock_mono_us(), name);
	char url[PATH_MAX + 8];
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if (db_open(url, ret_db) != SHOP_OK || db_migrate(*ret_db, m, n) != SHOP_OK)
		return -1;
	return 0;
}

static int pg_database(struct pg_scratch *s, const char *prefix, const struct db_migration *m,
		       size_t n)
{
	if (pg_scratch_create(s, prefix) != 0)
		return -1;
	return m && db_migrate(s->admin, m, n) != SHOP_OK ? -1 : 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	*state = f;
	f->now_ms = clock_now_ms();
	if (pg_database(&f->orders, "audit_o", orders_migrations, orders_n_migrations) != 0 ||
	    pg_database(&f->inventory, "audit_i", inventory_migrations, inventory_n_migrations) !=
		    0 ||
	    pg_database(&f->payments, "audit_p", NULL, 0) != 0 ||
	    sqlite_file(f->gateway_path, "gateway", gateway_migrations, gateway_n_migrations,
			&f->gateway_w) != 0 ||
	    sqlite_file(f->notifications_path, "notifications", notifications_migrations,
			notifications_n_migrations, &f->notifications_w) != 0)
		return -1;
	f->provider = payments_provider_create(f->payments.url);
	if (bus_connect(getenv("SHOP_TEST_NATS_URL"), "test-audit", &f->bus) != SHOP_OK)
		return -1;
	snprintf(f->dlq_stream, sizeof(f->dlq_stream), "AUDIT_DLQ_%d_%lld", (int)getpid(),
		 (long long)clock_mono_us());
	snprintf(f->dlq_subject, sizeof(f->dlq_subject), "auditdlq%d%lld", (int)getpid(),
		 (long long)clock_mono_us());
	char filter[80];
	snprintf(filter, sizeof(filter), "%s.>", f->dlq_subject);
	const char *subjects[] = { filter };
	if (bus_ensure_stream(f->bus, f->dlq_stream, subjects, 1, 1) != SHOP_OK)
		return -1;

	char url[PATH_MAX + 8];
	snprintf(url, sizeof(url), "sqlite:%s", f->gateway_path);
	assert_int_equal(db_open_readonly(url, &f->src.gateway), SHOP_OK);
	snprintf(url, sizeof(url), "sqlite:%s", f->notifications_path);
	assert_int_equal(db_open_readonly(url, &f->src.notifications), SHOP_OK);
	assert_int_equal(db_open_readonly(f->orders.url, &f->src.orders), SHOP_OK);
	assert_int_equal(db_open_readonly(f->inventory.url, &f->src.inventory), SHOP_OK);
	assert_int_equal(db_open_readonly(f->payments.url, &f->src.payments), SHOP_OK);
	f->src.bus = f->bus;
	f->src.dead_letter_stream = f->dlq_stream;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->src.gateway);
	db_close(f->src.notifications);
	db_close(f->src.orders);
	db_close(f->src.inventory);
	db_close(f->src.payments);
	db_close(f->gateway_w);
	db_close(f->notifications_w);
	payments_provider_destroy(f->provider);
	bus_close(f->bus);
	pg_scratch_drop(&f->orders);
	pg_scratch_drop(&f->inventory);
	pg_scratch_drop(&f->payments);
	unlink(f->gateway_path);
	unlink(f->notifications_path);
	free(f);
	return 0;
}

enum charge { NO_CHARGE, CHARGE_KEPT, CHARGE_REFUNDED };

/* One order as each service would hold it: orders' status, the gateway's
 * (NULL: no row), accepted AGE_MS ago, the ledger, and the e-mails by the
 * first letters of their kinds ("r", "s", "c"). */
static void order(struct fixture *f, const char *id, const char *status, const char *shown,
		  int64_t age_ms, enum charge charge, const char *mails)
{
	const char *created = DB_I64(f->now_ms - age_ms);
	const char *reason = strcmp(status, "CANCELLED") == 0 ? "customer_cancelled" : NULL;
	assert_int_equal(db_exec(f->orders.admin,
				 "INSERT INTO orders (order_id, status, reason, customer_id, email, "
				 "items, created_at_ms, updated_at_ms, deadline_at_ms) "
				 "VALUES ($1, $2, $3, 'c', 'a@example.com', '[]', $4, $4, $4)",
				 DB_ARGS(id, status, reason, created), NULL),
			 SHOP_OK);
	if (shown)
		assert_int_equal(db_exec(f->gateway_w,
					 "INSERT INTO orders_view (order_id, status, customer_id, "
					 "items, created_at_ms, updated_at_ms) "
					 "VALUES ($1, $2, 'c', '[]', $3, $3)",
					 DB_ARGS(id, shown, created), NULL),
				 SHOP_OK);
	struct payments_provider_charge_result res;
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	if (charge != NO_CHARGE)
		assert_int_equal(payments_provider_charge(f->provider, id, "tok_visa", 100, "EUR",
							  &res),
				 SHOP_OK);
	if (charge == CHARGE_REFUNDED)
		assert_int_equal(payments_provider_refund(f->provider, id, refund_id), SHOP_OK);
	static const char *const kinds[] = {
		['r'] = "order_received", ['s'] = "order_shipped", ['c'] = "order_cancelled"
	};
	for (const char *k = mails; *k; k++) {
		char mail_id[128];
		snprintf(mail_id, sizeof(mail_id), "%s-%c", id, *k);
		assert_int_equal(
			db_exec(f->notifications_w,
				"INSERT INTO notifications (notification_id, order_id, kind, "
				"email, subject_line, body, created_at_ms) "
				"VALUES ($1, $2, $3, 'a@example.com', 's', 'b', $4)",
				DB_ARGS(mail_id, id, kinds[(unsigned char)*k], created), NULL),
			SHOP_OK);
	}
}

static void product(struct fixture *f, const char *sku, int64_t initial, int64_t available)
{
	assert_int_equal(db_exec(f->inventory.admin,
				 "INSERT INTO products (sku, name, price_cents, currency, available, "
				 "initial_stock) VALUES ($1, $1, 100, 'EUR', $2, $3)",
				 DB_ARGS(sku, DB_I64(available), DB_I64(initial)), NULL),
			 SHOP_OK);
}

static void reservation(struct fixture *f, const char *id, const char *status, const char *sku,
			int64_t quantity)
{
	assert_int_equal(db_exec(f->inventory.admin,
				 "INSERT INTO reservations (order_id, status, created_at_ms, "
				 "updated_at_ms) VALUES ($1, $2, 0, 0)",
				 DB_ARGS(id, status), NULL),
			 SHOP_OK);
	assert_int_equal(db_exec(f->inventory.admin,
				 "INSERT INTO reservation_lines (order_id, sku, quantity, "
				 "unit_price_cents) VALUES ($1, $2, $3, 100)",
				 DB_ARGS(id, sku, DB_I64(quantity)), NULL),
			 SHOP_OK);
}

/* Three orders, one of each fate, and stock that adds up: SKU-1 holds
 * 10 = 7 available + 1 reserved (C) + 2 shipped (A); B's was released. */
static void clean_data(struct fixture *f)
{
	order(f, "order-A", "SHIPPED", "SHIPPED", 5000, CHARGE_KEPT, "rs");
	order(f, "order-B", "CANCELLED", "CANCELLED", 5000, CHARGE_REFUNDED, "rc");
	order(f, "order-C", "PAID", "PAID", 1000, CHARGE_KEPT, "r");
	product(f, "SKU-1", 10, 7);
	product(f, "SKU-2", 5, 5);
	reservation(f, "order-A", "RESERVED", "SKU-1", 2);
	reservation(f, "order-B", "RELEASED", "SKU-1", 1);
	reservation(f, "order-C", "RESERVED", "SKU-1", 1);
}

static void audit(struct fixture *f, bool allow_dead_letters, struct audit_report *r)
{
	struct audit_options opt = { .now_ms = f->now_ms,
				     .deadline_ms = DEADLINE_MS,
				     .allow_dead_letters = allow_dead_letters };
	audit_report_init(r, AUDIT_DETAILS_DEFAULT);
	audit_run(&f->src, &opt, r);
}

/* Exactly one violation in check C, naming ID. */
static void assert_one(const struct audit_report *r, enum audit_check c, const char *id)
{
	const struct audit_result *res = &r->results[c];
	assert_false(res->failed);
	assert_int_equal(res->violations, 1);
	assert_int_equal(res->n_kept, 1);
	assert_string_equal(res->kept[0].id, id);
}

static void a_clean_shop_passes_every_check(void **state)
{
	struct fixture *f = *state;
	clean_data(f);
	struct audit_report r;
	audit(f, false, &r);
	for (int c = 0; c < AUDIT_CHECK_COUNT; c++) {
		assert_false(r.results[c].failed);
		assert_int_equal(r.results[c].violations, 0);
	}
	assert_int_equal(r.results[AUDIT_ORDERS_FINISH].checked, 3);
	assert_int_equal(r.results[AUDIT_READ_MODEL].checked, 2);
	assert_int_equal(r.results[AUDIT_CHARGES].checked, 3);
	assert_int_equal(r.results[AUDIT_STOCK].checked, 2);
	assert_int_equal(r.results[AUDIT_NOTIFICATIONS].checked, 3);
	assert_true(audit_report_passed(&r));
	audit_report_release(&r);
}

static void each_broken_invariant_is_reported_once_with_its_order(void **state)
{
	struct fixture *f = *state;
	clean_data(f);
	/* Still pending long past its deadline. */
	order(f, "order-D", "PENDING", "PENDING", 2 * DEADLINE_MS, NO_CHARGE, "r");
	/* Cancelled, and its money kept. */
	order(f, "order-E", "CANCELLED", "CANCELLED", 5000, CHARGE_KEPT, "rc");
	/* Shipped, and never told. */
	order(f, "order-F", "SHIPPED", "SHIPPED", 5000, CHARGE_KEPT, "r");
	/* Shipped, but the gateway still shows it paid. */
	order(f, "order-G", "SHIPPED", "PAID", 5000, CHARGE_KEPT, "rs");
	/* A unit of SKU-2 gone. */
	assert_int_equal(db_exec(f->inventory.admin,
				 "UPDATE products SET available = 4 WHERE sku = 'SKU-2'", DB_NOARGS,
				 NULL),
			 SHOP_OK);
	/* A dead letter naming order-H. */
	char subject[96];
	snprintf(subject, sizeof(subject), "%s.ORDERS.payments", f->dlq_subject);
	const char *data = "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"subject\":\"order-H\"}";
	struct bus_out msg = {
		.subject = subject, .msg_id = "dlq-1", .data = data, .len = strlen(data)
	};
	assert_int_equal(bus_publish(f->bus, &msg, NULL), SHOP_OK);

	struct audit_report r;
	audit(f, false, &r);
	assert_one(&r, AUDIT_ORDERS_FINISH, "order-D");
	assert_one(&r, AUDIT_CHARGES, "order-E");
	assert_one(&r, AUDIT_STOCK, "SKU-2");
	assert_one(&r, AUDIT_NOTIFICATIONS, "order-F");
	assert_one(&r, AUDIT_READ_MODEL, "order-G");
	assert_one(&r, AUDIT_DEAD_LETTERS, "order-H");
	assert_false(audit_report_passed(&r));
	audit_report_release(&r);

	/* Allowed, the dead letter is still listed, and fails nothing. */
	audit(f, true, &r);
	assert_one(&r, AUDIT_DEAD_LETTERS, "order-H");
	assert_true(r.results[AUDIT_DEAD_LETTERS].allowed);
	audit_report_release(&r);
}

static void the_audit_only_reads_and_a_writer_does_not_stop_it(void **state)
{
	struct fixture *f = *state;
	clean_data(f);
	/* Its connections refuse writes, on both backends. */
	assert_int_not_equal(db_exec(f->src.orders, "DELETE FROM orders", DB_NOARGS, NULL),
			     SHOP_OK);
	assert_int_not_equal(db_exec(f->src.gateway, "DELETE FROM orders_view", DB_NOARGS, NULL),
			     SHOP_OK);
	/* The gateway's writer holds SQLite's write lock throughout. */
	assert_int_equal(db_begin(f->gateway_w), SHOP_OK);
	int64_t started = clock_mono_ms();
	struct audit_report r;
	audit(f, false, &r);
	assert_true(audit_report_passed(&r));
	assert_true(clock_mono_ms() - started < DB_SQLITE_BUSY_TIMEOUT_MS);
	audit_report_release(&r);
	db_rollback(f->gateway_w);
}

static void a_database_that_cannot_be_read_fails_its_checks(void **state)
{
	struct fixture *f = *state;
	clean_data(f);
	db_close(f->src.notifications);
	f->src.notifications = NULL;
	struct audit_report r;
	audit(f, false, &r);
	assert_true(r.results[AUDIT_NOTIFICATIONS].failed);
	assert_false(r.results[AUDIT_CHARGES].failed);
	assert_false(audit_report_passed(&r));
	audit_report_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_clean_shop_passes_every_check, setup, teardown),
		cmocka_unit_test_setup_teardown(
			each_broken_invariant_is_reported_once_with_its_order, setup, teardown),
		cmocka_unit_test_setup_teardown(the_audit_only_reads_and_a_writer_does_not_stop_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_database_that_cannot_be_read_fails_its_checks,
						setup, teardown),
	};
	return cmocka_run_group_tests_name("shopctl_audit_pg", tests, NULL, NULL);
}
