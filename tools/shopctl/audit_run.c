/*
 * audit_run.c - reads what each service recorded and hands it to the rules.
 *
 * Each database is read with a handful of whole-table queries, kept as
 * results and joined here in C (services never share a database, so no SQL
 * join can cross them): a table's rows are sorted by their first column,
 * the id, with strcmp, never the database's collation, and looked up by
 * binary search. The connections are read-only (db_open_readonly); no
 * transaction is opened, so SQLite never takes the write lock.
 *
 * Orders is read before the gateway: an order the gateway accepted after
 * orders was read is young, and the gateway's status, read later, has had
 * more time to catch up with orders' decision.
 */
#include "audit.h"

#include "bus/bus.h"
#include "core/xalloc.h"
#include "db/db.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* A query's rows, ordered by their first column (an id). */
struct audit_table {
	struct db_result *rows;
	int *order; /* row numbers, sorted by id */
	int n;
};

static int audit_row_cmp(const void *a, const void *b, void *arg)
{
	const struct db_result *rows = arg;
	const char *ka = db_result_text(rows, *(const int *)a, 0);
	const char *kb = db_result_text(rows, *(const int *)b, 0);
	return strcmp(ka ? ka : "", kb ? kb : "");
}

/* Fails with the database's words in err (no password in them). */
static shop_status audit_table_load(struct db *db, const char *sql, struct audit_table *t,
				    char *err, size_t err_size)
{
	*t = (struct audit_table){ 0 };
	if (!db) {
		snprintf(err, err_size, "no database given");
		return SHOP_E_INVALID;
	}
	shop_status st = db_query(db, sql, DB_NOARGS, &t->rows);
	if (st != SHOP_OK) {
		snprintf(err, err_size, "%s", db_last_error(db));
		return st;
	}
	t->n = db_result_rows(t->rows);
	t->order = xcalloc((size_t)t->n + 1, sizeof(*t->order));
	for (int i = 0; i < t->n; i++)
		t->order[i] = i;
	qsort_r(t->order, (size_t)t->n, sizeof(*t->order), audit_row_cmp, t->rows);
	return SHOP_OK;
}

static void audit_table_release(struct audit_table *t)
{
	db_result_free(t->rows);
	free(t->order);
}

/* The row whose id is KEY, or -1. */
static int audit_table_find(const struct audit_table *t, const char *key)
{
	int lo = 0, hi = t->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		const char *k = db_result_text(t->rows, t->order[mid], 0);
		int c = strcmp(k ? k : "", key);
		if (c == 0)
			return t->order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Everything the checks compare, loaded once. A table that failed to load
 * is marked so that only the checks needing it fail. */
struct audit_data {
	struct audit_table orders, gateway, ledger, products, lines, mails;
	bool orders_ok, gateway_ok, ledger_ok, products_ok, lines_ok, mails_ok;
	char orders_err[AUDIT_DETAIL_MAX], gateway_err[AUDIT_DETAIL_MAX],
		ledger_err[AUDIT_DETAIL_MAX], stock_err[AUDIT_DETAIL_MAX],
		mails_err[AUDIT_DETAIL_MAX];
};

/* Every order the gateway accepted: its read model's row, or failing that
 * (never expected: both are written in one transaction) the 202 of an
 * idempotency record. */
#define AUDIT_SQL_GATEWAY                                                                          \
	"SELECT order_id, status, created_at_ms FROM orders_view "                                 \
	"UNION ALL SELECT order_id, NULL, MIN(created_at_ms) FROM idempotency_keys "               \
	"WHERE status = 202 AND order_id NOT IN (SELECT order_id FROM orders_view) "               \
	"GROUP BY order_id"
/* The provider's ledger per order (its idempotency key is the order id). */
#define AUDIT_SQL_LEDGER                                                                           \
	"SELECT idempotency_key, "                                                                 \
	"SUM(CASE WHEN outcome = 'APPROVED' THEN 1 ELSE 0 END), "                                  \
	"SUM(CASE WHEN outcome = 'APPROVED' AND refunded = 1 THEN 1 ELSE 0 END) "                  \
	"FROM provider_charges GROUP BY idempotency_key"
/* Held stock: the lines of RESERVED reservations (RELEASED ones keep their
 * lines for the record but hold nothing). */
#define AUDIT_SQL_LINES                                                                            \
	"SELECT l.sku, l.order_id, l.quantity FROM reservation_lines l "                           \
	"JOIN reservations r ON r.order_id = l.order_id WHERE r.status = 'RESERVED'"
#define AUDIT_SQL_MAILS                                                                            \
	"SELECT order_id, "                                                                        \
	"SUM(CASE WHEN kind = 'order_received' THEN 1 ELSE 0 END), "                               \
	"SUM(CASE WHEN kind = 'order_shipped' THEN 1 ELSE 0 END), "                                \
	"SUM(CASE WHEN kind = 'order_cancelled' THEN 1 ELSE 0 END) "                               \
	"FROM notifications GROUP BY order_id"

static void audit_data_load(const struct audit_sources *src, struct audit_data *d)
{
	d->orders_ok = audit_table_load(src->orders, "SELECT order_id, status FROM orders",
					&d->orders, d->orders_err,
					sizeof(d->orders_err)) == SHOP_OK;
	d->gateway_ok = audit_table_load(src->gateway, AUDIT_SQL_GATEWAY, &d->gateway,
					 d->gateway_err, sizeof(d->gateway_err)) == SHOP_OK;
	d->ledger_ok = audit_table_load(src->payments, AUDIT_SQL_LEDGER, &d->ledger, d->ledger_err,
					sizeof(d->ledger_err)) == SHOP_OK;
	d->products_ok = audit_table_load(src->inventory,
					  "SELECT sku, initial_stock, available FROM products",
					  &d->products, d->stock_err,
					  sizeof(d->stock_err)) == SHOP_OK;
	d->lines_ok = d->products_ok &&
		      audit_table_load(src->inventory, AUDIT_SQL_LINES, &d->lines, d->stock_err,
				       sizeof(d->stock_err)) == SHOP_OK;
	d->mails_ok = audit_table_load(src->notifications, AUDIT_SQL_MAILS, &d->mails, d->mails_err,
				       sizeof(d->mails_err)) == SHOP_OK;
}

static void audit_data_release(struct audit_data *d)
{
	audit_table_release(&d->orders);
	audit_table_release(&d->gateway);
	audit_table_release(&d->ledger);
	audit_table_release(&d->products);
	audit_table_release(&d->lines);
	audit_table_release(&d->mails);
}

/* The check cannot run without a table: report why, once per check. */
static bool audit_need(struct audit_report *r, enum audit_check c, bool ok, const char *what,
		       const char *err)
{
	if (!ok)
		audit_report_error(r, c, "%s database: %s", what, err);
	return ok;
}

static const char *audit_order_status(const struct audit_data *d, const char *id)
{
	int row = audit_table_find(&d->orders, id);
	return row < 0 ? NULL : db_result_text(d->orders.rows, row, 1);
}

/* Every order the gateway accepted ended, or is younger than the deadline;
 * and, once ended, the gateway shows the status orders decided. */
static void audit_check_orders(const struct audit_data *d, const struct audit_options *opt,
			       struct audit_report *r)
{
	bool finish = audit_need(r, AUDIT_ORDERS_FINISH, d->orders_ok, "orders", d->orders_err) &
		      audit_need(r, AUDIT_ORDERS_FINISH, d->gateway_ok, "gateway", d->gateway_err);
	bool model = audit_need(r, AUDIT_READ_MODEL, d->orders_ok, "orders", d->orders_err) &
		     audit_need(r, AUDIT_READ_MODEL, d->gateway_ok, "gateway", d->gateway_err);
	if (!finish || !model)
		return;
	for (int i = 0; i < d->gateway.n; i++) {
		const char *id = db_result_text(d->gateway.rows, i, 0);
		const char *shown = db_result_text(d->gateway.rows, i, 1);
		int64_t age_ms = opt->now_ms - db_result_int(d->gateway.rows, i, 2);
		const char *status = audit_order_status(d, id ? id : "");
		enum audit_fate fate = audit_fate_of(status);
		r->results[AUDIT_ORDERS_FINISH].checked++;
		if ((fate == AUDIT_FATE_UNKNOWN || fate == AUDIT_FATE_IN_FLIGHT) &&
		    age_ms >= opt->deadline_ms)
			audit_report_violation(r, AUDIT_ORDERS_FINISH, id,
					       "%s %lld ms after it was accepted (deadline %lld ms)",
					       status ? status : "unknown to orders",
					       (long long)age_ms, (long long)opt->deadline_ms);
		if (fate != AUDIT_FATE_SHIPPED && fate != AUDIT_FATE_CANCELLED)
			continue;
		r->results[AUDIT_READ_MODEL].checked++;
		if (!shown || strcmp(shown, status) != 0)
			audit_report_violation(r, AUDIT_READ_MODEL, id,
					       "the gateway shows %s, orders decided %s",
					       shown ? shown : "no row", status);
	}
}

/* Order I of orders, joined with its row in T (keyed by order id): its
 * id, its fate, and T's integer columns 1..N in V (zeros when T has no
 * row for it). */
static const char *audit_order_join(const struct audit_data *d, int i, const struct audit_table *t,
				    int64_t *v, int n, enum audit_fate *ret_fate)
{
	const char *id = db_result_text(d->orders.rows, i, 0);
	int row = audit_table_find(t, id ? id : "");
	for (int c = 0; c < n; c++)
		v[c] = row < 0 ? 0 : db_result_int(t->rows, row, c + 1);
	*ret_fate = audit_fate_of(db_result_text(d->orders.rows, i, 1));
	return id;
}

static void audit_check_charges(const struct audit_data *d, struct audit_report *r)
{
	if (!audit_need(r, AUDIT_CHARGES, d->orders_ok, "orders", d->orders_err) ||
	    !audit_need(r, AUDIT_CHARGES, d->ledger_ok, "payments", d->ledger_err))
		return;
	/* Every order, with or without ledger rows (a shipped order needs one)... */
	for (int i = 0; i < d->orders.n; i++) {
		int64_t v[2];
		enum audit_fate fate;
		const char *id = audit_order_join(d, i, &d->ledger, v, 2, &fate);
		struct audit_ledger l = { v[0], v[1] };
		r->results[AUDIT_CHARGES].checked++;
		const char *why = audit_money_verdict(fate, &l);
		if (why)
			audit_report_violation(r, AUDIT_CHARGES, id,
					       "%s (%lld charged, %lld refunded)", why,
					       (long long)l.approved, (long long)l.refunded);
	}
	/* ...and money taken for an order orders never had. */
	for (int i = 0; i < d->ledger.n; i++) {
		const char *id = db_result_text(d->ledger.rows, i, 0);
		if (audit_table_find(&d->orders, id ? id : "") >= 0)
			continue;
		struct audit_ledger l = { db_result_int(d->ledger.rows, i, 1),
					  db_result_int(d->ledger.rows, i, 2) };
		r->results[AUDIT_CHARGES].checked++;
		const char *why = audit_money_verdict(AUDIT_FATE_UNKNOWN, &l);
		if (why)
			audit_report_violation(r, AUDIT_CHARGES, id, "%s, order unknown to orders",
					       why);
	}
}

static void audit_check_stock(const struct audit_data *d, struct audit_report *r)
{
	if (!audit_need(r, AUDIT_STOCK, d->orders_ok, "orders", d->orders_err) ||
	    !audit_need(r, AUDIT_STOCK, d->products_ok && d->lines_ok, "inventory", d->stock_err))
		return;
	struct audit_stock *stock = xcalloc((size_t)d->products.n + 1, sizeof(*stock));
	for (int i = 0; i < d->lines.n; i++) {
		int p = audit_table_find(&d->products, db_result_text(d->lines.rows, i, 0));
		if (p < 0)
			continue; /* a foreign key makes it impossible */
		int64_t q = db_result_int(d->lines.rows, i, 2);
		const char *status = audit_order_status(d, db_result_text(d->lines.rows, i, 1));
		int64_t *into = audit_fate_of(status) == AUDIT_FATE_SHIPPED ? &stock[p].shipped
									    : &stock[p].reserved;
		if (__builtin_add_overflow(*into, q, into))
			*into = INT64_MAX; /* absurd, and reported as not conserved */
	}
	for (int p = 0; p < d->products.n; p++) {
		struct audit_stock *s = &stock[p];
		s->initial = db_result_int(d->products.rows, p, 1);
		s->available = db_result_int(d->products.rows, p, 2);
		int64_t missing = 0;
		r->results[AUDIT_STOCK].checked++;
		if (!audit_stock_conserved(s, &missing))
			audit_report_violation(
				r, AUDIT_STOCK, db_result_text(d->products.rows, p, 0),
				"initial %lld != available %lld + reserved %lld + shipped %lld",
				(long long)s->initial, (long long)s->available,
				(long long)s->reserved, (long long)s->shipped);
	}
	free(stock);
}

static void audit_check_mails(const struct audit_data *d, struct audit_report *r)
{
	if (!audit_need(r, AUDIT_NOTIFICATIONS, d->orders_ok, "orders", d->orders_err) ||
	    !audit_need(r, AUDIT_NOTIFICATIONS, d->mails_ok, "notifications", d->mails_err))
		return;
	for (int i = 0; i < d->orders.n; i++) {
		int64_t v[3];
		enum audit_fate fate;
		const char *id = audit_order_join(d, i, &d->mails, v, 3, &fate);
		struct audit_mails m = { v[0], v[1], v[2] };
		r->results[AUDIT_NOTIFICATIONS].checked++;
		const char *why = audit_mails_verdict(fate, &m);
		if (why)
			audit_report_violation(r, AUDIT_NOTIFICATIONS, id, "%s", why);
	}
}

/* One dead letter's line: the order it names (the CloudEvents subject) and
 * where and why it died, from the headers libs/bus puts on the copy. */
static void audit_dead_letter_describe(struct audit_report *r, const struct bus_msg *m,
				       uint64_t seq)
{
	size_t len = 0;
	const char *data = bus_msg_data(m, &len);
	char id[AUDIT_ID_MAX];
	snprintf(id, sizeof(id), "seq %llu", (unsigned long long)seq);
	cJSON *env = data ? cJSON_ParseWithLength(data, len) : NULL;
	const cJSON *subject = cJSON_GetObjectItemCaseSensitive(env, "subject");
	if (cJSON_IsString(subject) && subject->valuestring[0])
		snprintf(id, sizeof(id), "%s", subject->valuestring);
	cJSON_Delete(env);
	const char *from = bus_msg_header(m, BUS_HDR_DLQ_SUBJECT);
	const char *durable = bus_msg_header(m, BUS_HDR_DLQ_CONSUMER);
	const char *reason = bus_msg_header(m, BUS_HDR_DLQ_REASON);
	audit_report_violation(r, AUDIT_DEAD_LETTERS, id, "seq %llu, %s for %s: %s",
			       (unsigned long long)seq, from ? from : "?", durable ? durable : "?",
			       reason ? reason : "no reason given");
}

static void audit_check_dead_letters(const struct audit_sources *src,
				     const struct audit_options *opt, struct audit_report *r)
{
	struct audit_result *res = &r->results[AUDIT_DEAD_LETTERS];
	if (!src->bus || !src->dead_letter_stream) {
		audit_report_error(r, AUDIT_DEAD_LETTERS, "no connection to NATS");
		return;
	}
	uint64_t n = 0, first = 0, last = 0;
	shop_status st = bus_stream_state(src->bus, src->dead_letter_stream, &n, &first, &last);
	if (st == SHOP_E_NOT_FOUND) /* never declared: nothing was ever dead-lettered */
		return;
	if (st != SHOP_OK) {
		audit_report_error(r, AUDIT_DEAD_LETTERS, "stream %s: %s", src->dead_letter_stream,
				   shop_status_name(st));
		return;
	}
	res->checked = (int64_t)n;
	res->allowed = opt->allow_dead_letters;
	/* Details for the first few; the rest are only counted. */
	uint64_t listed = 0;
	for (uint64_t seq = first; n > 0 && seq <= last && listed < r->details_max; seq++) {
		struct bus_msg *m = NULL;
		st = bus_stream_get(src->bus, src->dead_letter_stream, seq, &m);
		if (st == SHOP_E_NOT_FOUND)
			continue; /* deleted from the middle of the stream */
		if (st != SHOP_OK)
			break; /* still counted below */
		audit_dead_letter_describe(r, m, seq);
		bus_msg_free(m);
		listed++;
	}
	audit_report_more(r, AUDIT_DEAD_LETTERS, (int64_t)(n - listed));
}

void audit_run(const struct audit_sources *src, const struct audit_options *opt,
	       struct audit_report *r)
{
	struct audit_data d = { 0 };
	audit_data_load(src, &d);
	audit_check_orders(&d, opt, r);
	audit_check_charges(&d, r);
	audit_check_stock(&d, r);
	audit_check_mails(&d, r);
	audit_data_release(&d);
	audit_check_dead_letters(src, opt, r);
}
