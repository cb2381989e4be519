/*
 * lt_report.c - the text summary, the JSON report and the SVG picture of a
 * load run (lt_report.h).
 *
 * The SVG is drawn here rather than by a plotting library: three panels
 * sharing the time axis (throughput, latency percentiles on a log scale,
 * consumer lag), each a few polylines. Everything written is escaped, so the
 * file is well-formed XML whatever the strings in the report hold.
 */
#include "lt_report.h"

#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors by kind --------------------------------------------------- */

void lt_errors_add(struct lt_errors *errs, const char *name, int64_t count)
{
	for (size_t i = 0; i < errs->n; i++)
		if (strcmp(errs->e[i].name, name) == 0) {
			errs->e[i].count += count;
			return;
		}
	/* The last slot is kept for "other" once the others are taken. */
	if (errs->n == LT_ERR_KINDS_MAX - 1)
		name = "other";
	if (errs->n == LT_ERR_KINDS_MAX) {
		errs->e[LT_ERR_KINDS_MAX - 1].count += count;
		return;
	}
	snprintf(errs->e[errs->n].name, LT_ERR_NAME_MAX, "%s", name);
	errs->e[errs->n].count = count;
	errs->n++;
}

int64_t lt_errors_total(const struct lt_errors *errs)
{
	int64_t t = 0;
	for (size_t i = 0; i < errs->n; i++)
		t += errs->e[i].count;
	return t;
}

bool lt_phase_holds(const struct lt_report *r, const struct lt_phase *p)
{
	double accept_p99 = (double)lt_hist_percentile(&p->accept, 99) / 1000.0;
	double paid_p99 = (double)lt_hist_percentile(&p->paid_lat, 99) / 1000.0;
	return lt_errors_total(&p->errors) == 0 && p->never_terminal == 0 && p->accepted > 0 &&
	       (r->target_accept_p99_ms <= 0 || accept_p99 <= r->target_accept_p99_ms) &&
	       (r->target_paid_p99_ms <= 0 || paid_p99 <= r->target_paid_p99_ms);
}

/* ---- the headline figure and the ratios ---------------------------------- */

static void lt_report_totals(const struct lt_report *r, int64_t *ret_terminal,
			     int64_t *ret_accepted, double *ret_active_s, double *ret_offer_s)
{
	int64_t terminal = 0, accepted = 0;
	double active = 0, offer = 0;
	for (size_t i = 0; i < r->n_phase; i++) {
		terminal += r->phase[i].shipped + r->phase[i].cancelled;
		accepted += r->phase[i].accepted;
		active += r->phase[i].offer_s + r->phase[i].drain_s;
		offer += r->phase[i].offer_s;
	}
	*ret_terminal = terminal;
	*ret_accepted = accepted;
	*ret_active_s = active;
	*ret_offer_s = offer;
}

double lt_report_throughput_of(const struct lt_report *r, const char **ret_what)
{
	if (r->mode && strcmp(r->mode, "saturate") == 0) {
		*ret_what = "highest saturation step that held";
		return r->best_rate;
	}
	int64_t terminal, accepted;
	double active, offer;
	lt_report_totals(r, &terminal, &accepted, &active, &offer);
	*ret_what = "completed orders per second, offered phase plus drain";
	return active > 0 ? (double)terminal / active : 0;
}

void lt_report_summarise(struct lt_report *r, const struct lt_usage *before,
			 const struct lt_usage *after)
{
	int64_t terminal, accepted;
	double active, offer;
	lt_report_totals(r, &terminal, &accepted, &active, &offer);
	lt_ratios_compute(&r->ceil, before, after, terminal, accepted, active, offer, &r->ratios);
}

/* ---- text ------------------------------------------------------------- */

/* A figure, or "n/a" for the negative "unknown". */
static const char *lt_fmt(char *buf, size_t size, int decimals, double v)
{
	if (v < 0)
		snprintf(buf, size, "n/a");
	else
		snprintf(buf, size, "%.*f", decimals, v);
	return buf;
}

static void lt_text_ceil(FILE *out, const char *name, const struct lt_ceil_rate *c)
{
	char b[32];
	fprintf(out, "  %-34s %12s /s", name, lt_fmt(b, sizeof(b), 0, c->per_s));
	if (c->per_s >= 0)
		fprintf(out, "  (%lld in %.1fs, %lld errors)", (long long)c->count, c->seconds,
			(long long)c->errors);
	if (c->note[0])
		fprintf(out, "  [%s]", c->note);
	fprintf(out, "\n");
}

static void lt_text_ceilings(const struct lt_report *r, FILE *out)
{
	const struct lt_ceilings *c = &r->ceil;
	const struct lt_ratios *q = &r->ratios;
	char a[32], b[32], d[32];
	fprintf(out, "ceilings, measured on this deployment just before the load:\n");
	lt_text_ceil(out, "JetStream async publish, unique id", &c->js_publish);
	lt_text_ceil(out, "JetStream pull, fetch 256 + Ack", &c->js_consume);
	lt_text_ceil(out, "gateway GET /healthz, closed loop", &c->http);
	char name[64];
	snprintf(name, sizeof(name), "PostgreSQL commit (sync_commit=%s)",
		 c->pg_synchronous_commit);
	lt_text_ceil(out, name, &c->pg_commit);
	snprintf(name, sizeof(name), "SQLite WAL commit (synchronous=%s)", c->sqlite_synchronous);
	lt_text_ceil(out, name, &c->sqlite_commit);
	fprintf(out, "the shop against them: %s orders/s completed, %s/s accepted\n",
		lt_fmt(a, sizeof(a), 1, q->completed_per_s),
		lt_fmt(b, sizeof(b), 1, q->accepted_per_s));
	fprintf(out,
		"  bus: %s JetStream messages per order; uses %s of the publish and %s of "
		"the consume ceiling; bound %s orders/s\n",
		lt_fmt(a, sizeof(a), 1, q->events_per_order),
		lt_fmt(b, sizeof(b), 4, q->bus_publish_share),
		lt_fmt(d, sizeof(d), 4, q->bus_consume_share),
		lt_fmt(name, sizeof(name), 0, q->bus_orders_bound));
	fprintf(out, "  gateway: accepted / bare request rate = %s\n",
		lt_fmt(a, sizeof(a), 4, q->gateway_share));
	fprintf(out,
		"  PostgreSQL: %s transactions per order (pg_stat_database, read-only "
		"ones included); uses %s of the commit ceiling; bound %s orders/s\n",
		lt_fmt(a, sizeof(a), 1, q->pg_commits_per_order),
		lt_fmt(b, sizeof(b), 4, q->pg_share), lt_fmt(d, sizeof(d), 0, q->pg_orders_bound));
	fprintf(out,
		"  SQLite: the commit ceiling allows %s commits per completed order "
		"(one writer per file)\n",
		lt_fmt(a, sizeof(a), 1, q->sqlite_commits_per_order_budget));
}

static void lt_text_hist(FILE *out, const char *name, const struct lt_hist *h)
{
	if (h->count == 0) {
		fprintf(out, "  %-22s (none)\n", name);
		return;
	}
	fprintf(out,
		"  %-22s n=%-7lld p50 %9.1f  p90 %9.1f  p99 %9.1f  p99.9 %9.1f  max %9.1f ms\n",
		name, (long long)h->count, (double)lt_hist_percentile(h, 50) / 1000.0,
		(double)lt_hist_percentile(h, 90) / 1000.0,
		(double)lt_hist_percentile(h, 99) / 1000.0,
		(double)lt_hist_percentile(h, 99.9) / 1000.0, (double)h->max / 1000.0);
}

static void lt_text_phase(const struct lt_report *r, const struct lt_phase *p, FILE *out)
{
	fprintf(out,
		"offered %.0f orders/s for %llds: %lld due, %lld sent, %lld accepted (%.1f/s)\n",
		p->rate, (long long)p->duration_s, (long long)p->offered, (long long)p->sent,
		(long long)p->accepted, p->offer_s > 0 ? (double)p->accepted / p->offer_s : 0.0);
	fprintf(out,
		"terminal: %lld shipped, %lld cancelled, %lld never terminal (drain %.1fs); "
		"end-to-end throughput %.1f orders/s\n",
		(long long)p->shipped, (long long)p->cancelled, (long long)p->never_terminal,
		p->drain_s,
		p->offer_s + p->drain_s > 0
			? (double)(p->shipped + p->cancelled) / (p->offer_s + p->drain_s)
			: 0.0);
	lt_text_hist(out, "accept (POST -> 202)", &p->accept);
	lt_text_hist(out, "POST -> PAID", &p->paid_lat);
	lt_text_hist(out, "POST -> terminal", &p->end_lat);
	int64_t errs = lt_errors_total(&p->errors);
	fprintf(out, "errors: %lld", (long long)errs);
	for (size_t i = 0; i < p->errors.n; i++)
		fprintf(out, "%s%s=%lld", i ? ", " : " (", p->errors.e[i].name,
			(long long)p->errors.e[i].count);
	fprintf(out, "%s\n", p->errors.n ? ")" : "");
	fprintf(out, "outcomes (accepted: shipped/cancelled/none):");
	for (int k = 0; k < LT_KIND_COUNT; k++)
		if (p->outcome[k][0] + p->outcome[k][1] + p->outcome[k][2])
			fprintf(out, " %s %lld/%lld/%lld", lt_kind_name((enum lt_kind)k),
				(long long)p->outcome[k][LT_END_SHIPPED],
				(long long)p->outcome[k][LT_END_CANCELLED],
				(long long)p->outcome[k][LT_END_NONE]);
	fprintf(out, "\n");
	(void)r;
}

void lt_report_text(const struct lt_report *r, FILE *out)
{
	fprintf(out, "== load test (%s), started %s, durability %s\n", r->mode, r->started_at,
		r->durability ? r->durability : "unknown");
	fprintf(out, "gateway %s, bus %s, mix %s, in-flight bound %lld, timeout %lld ms\n",
		r->gateway, r->nats, r->mix, (long long)r->max_inflight, (long long)r->timeout_ms);
	for (size_t i = 0; i < r->n_phase; i++) {
		if (r->n_phase > 1)
			fprintf(out, "-- step %zu: %s\n", i + 1,
				r->phase[i].holds ? "holds" : "does not hold");
		lt_text_phase(r, &r->phase[i], out);
	}
	int64_t lag_max = 0;
	fprintf(out, "consumer lag (pending + ack pending), last / max:");
	for (size_t i = 0; i < r->n_lag; i++) {
		fprintf(out, " %s %lld/%lld", r->lag[i].durable,
			(long long)(r->lag[i].pending + r->lag[i].ack_pending),
			(long long)r->lag[i].max_total);
		if (r->lag[i].max_total > lag_max)
			lag_max = r->lag[i].max_total;
	}
	fprintf(out, "%s\n",
		r->n_lag ? "" : " (no consumer seen: monitoring unreachable, or no durables)");
	if (r->events_dropped)
		fprintf(out, "WARNING: %lld bus events were dropped by the subscription\n",
			(long long)r->events_dropped);
	if (r->ceil.measured)
		lt_text_ceilings(r, out);
	if (strcmp(r->mode, "saturate") == 0) {
		char acc[32] = "any", paid[32] = "any";
		if (r->target_accept_p99_ms > 0)
			snprintf(acc, sizeof(acc), "<= %.0f ms", r->target_accept_p99_ms);
		if (r->target_paid_p99_ms > 0)
			snprintf(paid, sizeof(paid), "<= %.0f ms", r->target_paid_p99_ms);
		fprintf(out,
			"saturation: highest rate that held (accept p99 %s, paid p99 %s, "
			"zero errors, all terminal): ",
			acc, paid);
		if (r->best_rate > 0)
			fprintf(out, "%.0f orders/s\n", r->best_rate);
		else
			fprintf(out, "none of the steps\n");
	}
}

/* ---- JSON ------------------------------------------------------------- */

static cJSON *lt_json_hist(const struct lt_hist *h)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "count", (double)h->count);
	cJSON_AddNumberToObject(o, "mean_ms", lt_hist_mean(h) / 1000.0);
	cJSON_AddNumberToObject(o, "p50_ms", (double)lt_hist_percentile(h, 50) / 1000.0);
	cJSON_AddNumberToObject(o, "p90_ms", (double)lt_hist_percentile(h, 90) / 1000.0);
	cJSON_AddNumberToObject(o, "p99_ms", (double)lt_hist_percentile(h, 99) / 1000.0);
	cJSON_AddNumberToObject(o, "p999_ms", (double)lt_hist_percentile(h, 99.9) / 1000.0);
	cJSON_AddNumberToObject(o, "max_ms", (double)h->max / 1000.0);
	return o;
}

static cJSON *lt_json_phase(const struct lt_phase *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "rate", p->rate);
	cJSON_AddNumberToObject(o, "duration_s", (double)p->duration_s);
	cJSON_AddNumberToObject(o, "offered", (double)p->offered);
	cJSON_AddNumberToObject(o, "sent", (double)p->sent);
	cJSON_AddNumberToObject(o, "accepted", (double)p->accepted);
	cJSON_AddNumberToObject(o, "paid", (double)p->paid);
	cJSON_AddNumberToObject(o, "shipped", (double)p->shipped);
	cJSON_AddNumberToObject(o, "cancelled", (double)p->cancelled);
	cJSON_AddNumberToObject(o, "never_terminal", (double)p->never_terminal);
	cJSON_AddNumberToObject(o, "offer_s", p->offer_s);
	cJSON_AddNumberToObject(o, "drain_s", p->drain_s);
	cJSON_AddBoolToObject(o, "holds", p->holds);
	cJSON *lat = cJSON_AddObjectToObject(o, "latency");
	cJSON_AddItemToObject(lat, "accept", lt_json_hist(&p->accept));
	cJSON_AddItemToObject(lat, "paid", lt_json_hist(&p->paid_lat));
	cJSON_AddItemToObject(lat, "terminal", lt_json_hist(&p->end_lat));
	cJSON *errs = cJSON_AddObjectToObject(o, "errors");
	for (size_t i = 0; i < p->errors.n; i++)
		cJSON_AddNumberToObject(errs, p->errors.e[i].name, (double)p->errors.e[i].count);
	cJSON *outc = cJSON_AddObjectToObject(o, "outcomes");
	for (int k = 0; k < LT_KIND_COUNT; k++) {
		cJSON *ko = cJSON_AddObjectToObject(outc, lt_kind_name((enum lt_kind)k));
		cJSON_AddNumberToObject(ko, "shipped", (double)p->outcome[k][LT_END_SHIPPED]);
		cJSON_AddNumberToObject(ko, "cancelled", (double)p->outcome[k][LT_END_CANCELLED]);
		cJSON_AddNumberToObject(ko, "none", (double)p->outcome[k][LT_END_NONE]);
	}
	return o;
}

static cJSON *lt_json_second(const struct lt_second *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "t", s->t);
	cJSON_AddNumberToObject(o, "phase", s->phase);
	cJSON_AddNumberToObject(o, "rate", s->rate);
	cJSON_AddNumberToObject(o, "sent", (double)s->sent);
	cJSON_AddNumberToObject(o, "accepted", (double)s->accepted);
	cJSON_AddNumberToObject(o, "completed", (double)s->completed);
	cJSON_AddNumberToObject(o, "errors", (double)s->errors);
	cJSON_AddNumberToObject(o, "inflight", (double)s->inflight);
	cJSON_AddNumberToObject(o, "awaiting", (double)s->awaiting);
	cJSON_AddNumberToObject(o, "accept_p50_ms", (double)s->accept_p50_us / 1000.0);
	cJSON_AddNumberToObject(o, "accept_p99_ms", (double)s->accept_p99_us / 1000.0);
	cJSON_AddNumberToObject(o, "paid_p99_ms", (double)s->paid_p99_us / 1000.0);
	cJSON_AddNumberToObject(o, "terminal_p50_ms", (double)s->end_p50_us / 1000.0);
	cJSON_AddNumberToObject(o, "terminal_p99_ms", (double)s->end_p99_us / 1000.0);
	if (s->lag >= 0)
		cJSON_AddNumberToObject(o, "consumer_lag", (double)s->lag);
	else
		cJSON_AddNullToObject(o, "consumer_lag");
	if (s->outbox_est >= 0)
		cJSON_AddNumberToObject(o, "gateway_outbox_est", (double)s->outbox_est);
	else
		cJSON_AddNullToObject(o, "gateway_outbox_est");
	return o;
}

/* A figure, or null for the negative "unknown". */
static void lt_json_num(cJSON *o, const char *name, double v)
{
	if (v < 0)
		cJSON_AddNullToObject(o, name);
	else
		cJSON_AddNumberToObject(o, name, v);
}

static cJSON *lt_json_ceil(const struct lt_ceil_rate *c)
{
	cJSON *o = cJSON_CreateObject();
	lt_json_num(o, "per_s", c->per_s);
	cJSON_AddNumberToObject(o, "count", (double)c->count);
	cJSON_AddNumberToObject(o, "seconds", c->seconds);
	cJSON_AddNumberToObject(o, "errors", (double)c->errors);
	if (c->note[0])
		cJSON_AddStringToObject(o, "note", c->note);
	return o;
}

static cJSON *lt_json_ceilings(const struct lt_ceilings *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "jetstream_publish", lt_json_ceil(&c->js_publish));
	cJSON_AddItemToObject(o, "jetstream_consume", lt_json_ceil(&c->js_consume));
	cJSON_AddItemToObject(o, "gateway_healthz", lt_json_ceil(&c->http));
	cJSON_AddItemToObject(o, "postgres_commit", lt_json_ceil(&c->pg_commit));
	cJSON_AddItemToObject(o, "sqlite_commit", lt_json_ceil(&c->sqlite_commit));
	cJSON_AddStringToObject(o, "postgres_synchronous_commit", c->pg_synchronous_commit);
	cJSON_AddStringToObject(o, "sqlite_synchronous", c->sqlite_synchronous);
	return o;
}

static cJSON *lt_json_ratios(const struct lt_ratios *q)
{
	cJSON *o = cJSON_CreateObject();
	lt_json_num(o, "completed_per_s", q->completed_per_s);
	lt_json_num(o, "accepted_per_s", q->accepted_per_s);
	lt_json_num(o, "events_per_order", q->events_per_order);
	lt_json_num(o, "bus_publish_share", q->bus_publish_share);
	lt_json_num(o, "bus_consume_share", q->bus_consume_share);
	lt_json_num(o, "bus_orders_bound", q->bus_orders_bound);
	lt_json_num(o, "gateway_share", q->gateway_share);
	lt_json_num(o, "pg_commits_per_order", q->pg_commits_per_order);
	lt_json_num(o, "pg_share", q->pg_share);
	lt_json_num(o, "pg_orders_bound", q->pg_orders_bound);
	lt_json_num(o, "sqlite_commits_per_order_budget", q->sqlite_commits_per_order_budget);
	return o;
}

shop_status lt_report_json(const struct lt_report *r, FILE *out)
{
	shop_status st = SHOP_E_INTERNAL;
	char *text = NULL;
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "mode", r->mode);
	cJSON_AddStringToObject(root, "durability", r->durability ? r->durability : "unknown");
	cJSON_AddStringToObject(root, "started_at", r->started_at);
	cJSON *cfg = cJSON_AddObjectToObject(root, "config");
	cJSON_AddStringToObject(cfg, "gateway", r->gateway);
	cJSON_AddStringToObject(cfg, "nats", r->nats);
	cJSON_AddStringToObject(cfg, "monitor", r->monitor);
	cJSON_AddStringToObject(cfg, "mix", r->mix);
	cJSON_AddNumberToObject(cfg, "max_inflight", (double)r->max_inflight);
	cJSON_AddNumberToObject(cfg, "timeout_ms", (double)r->timeout_ms);
	cJSON_AddNumberToObject(cfg, "drain_max_s", (double)r->drain_max_s);
	cJSON_AddNumberToObject(cfg, "target_accept_p99_ms", r->target_accept_p99_ms);
	cJSON_AddNumberToObject(cfg, "target_paid_p99_ms", r->target_paid_p99_ms);
	cJSON *phases = cJSON_AddArrayToObject(root, "phases");
	for (size_t i = 0; i < r->n_phase; i++)
		cJSON_AddItemToArray(phases, lt_json_phase(&r->phase[i]));
	if (strcmp(r->mode, "saturate") == 0)
		cJSON_AddNumberToObject(root, "best_rate", r->best_rate);
	cJSON *lags = cJSON_AddObjectToObject(root, "consumer_lag");
	for (size_t i = 0; i < r->n_lag; i++) {
		cJSON *l = cJSON_AddObjectToObject(lags, r->lag[i].durable);
		cJSON_AddNumberToObject(l, "num_pending", (double)r->lag[i].pending);
		cJSON_AddNumberToObject(l, "num_ack_pending", (double)r->lag[i].ack_pending);
		cJSON_AddNumberToObject(l, "max_total", (double)r->lag[i].max_total);
	}
	cJSON_AddNumberToObject(root, "events_dropped", (double)r->events_dropped);
	cJSON *secs = cJSON_AddArrayToObject(root, "seconds");
	for (size_t i = 0; i < r->n_sec; i++)
		cJSON_AddItemToArray(secs, lt_json_second(&r->sec[i]));
	const char *what = NULL;
	cJSON *sum = cJSON_AddObjectToObject(root, "summary");
	cJSON_AddStringToObject(sum, "durability", r->durability ? r->durability : "unknown");
	cJSON_AddNumberToObject(sum, "throughput", lt_report_throughput_of(r, &what));
	cJSON_AddStringToObject(sum, "throughput_of", what);
	if (r->ceil.measured) {
		cJSON_AddItemToObject(root, "ceilings", lt_json_ceilings(&r->ceil));
		cJSON_AddItemToObject(root, "ratios", lt_json_ratios(&r->ratios));
	}
	text = cJSON_Print(root);
	if (!text)
		goto out;
	if (fputs(text, out) < 0 || fputc('\n', out) == EOF) {
		st = SHOP_E_UNAVAILABLE;
		goto out;
	}
	st = SHOP_OK;
out:
	free(text);
	cJSON_Delete(root);
	return st;
}

/* ---- SVG -------------------------------------------------------------- */

#define LT_SVG_WIDTH 960
#define LT_SVG_PANEL_H 220 /* one panel's plot area */
#define LT_SVG_LEFT 70     /* room for the y labels */
#define LT_SVG_RIGHT 170   /* room for the legend */
#define LT_SVG_TOP 40
#define LT_SVG_GAP 60 /* between panels: the x labels and the next title */
#define LT_SVG_PANELS 3

/* A series drawn in a panel: which field of a second, in which colour. */
struct lt_svg_line {
	const char *name;
	const char *colour;
	double (*get)(const struct lt_second *s);
};

static double lt_get_rate(const struct lt_second *s)
{
	return s->rate;
}
static double lt_get_sent(const struct lt_second *s)
{
	return (double)s->sent;
}
static double lt_get_accepted(const struct lt_second *s)
{
	return (double)s->accepted;
}
static double lt_get_completed(const struct lt_second *s)
{
	return (double)s->completed;
}
static double lt_get_errors(const struct lt_second *s)
{
	return (double)s->errors;
}
static double lt_get_acc50(const struct lt_second *s)
{
	return (double)s->accept_p50_us / 1000.0;
}
static double lt_get_acc99(const struct lt_second *s)
{
	return (double)s->accept_p99_us / 1000.0;
}
static double lt_get_paid99(const struct lt_second *s)
{
	return (double)s->paid_p99_us / 1000.0;
}
static double lt_get_end50(const struct lt_second *s)
{
	return (double)s->end_p50_us / 1000.0;
}
static double lt_get_end99(const struct lt_second *s)
{
	return (double)s->end_p99_us / 1000.0;
}
static double lt_get_lag(const struct lt_second *s)
{
	return (double)s->lag;
}
static double lt_get_outbox(const struct lt_second *s)
{
	return (double)s->outbox_est;
}
static double lt_get_awaiting(const struct lt_second *s)
{
	return (double)s->awaiting;
}

static void lt_svg_text(FILE *out, double x, double y, const char *anchor, const char *text)
{
	fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">", x, y, anchor);
	for (const char *p = text; *p; p++) {
		if (*p == '<')
			fputs("&lt;", out);
		else if (*p == '>')
			fputs("&gt;", out);
		else if (*p == '&')
			fputs("&amp;", out);
		else
			fputc(*p, out);
	}
	fputs("</text>\n", out);
}

/* A "nice" axis top: 1, 2 or 5 times a power of ten, at least max. */
static double lt_svg_nice(double max)
{
	if (max <= 0)
		return 1;
	double p = pow(10, floor(log10(max)));
	for (double m = 1; m <= 10; m = m == 1 ? 2 : m == 2 ? 5 : 10)
		if (m * p >= max)
			return m * p;
	return 10 * p;
}

static void lt_svg_panel(const struct lt_report *r, FILE *out, int index, const char *title,
			 const char *unit, bool log_scale, const struct lt_svg_line *lines,
			 size_t n_lines)
{
	double x0 = LT_SVG_LEFT, x1 = LT_SVG_WIDTH - LT_SVG_RIGHT;
	double y0 = LT_SVG_TOP + index * (LT_SVG_PANEL_H + LT_SVG_GAP);
	double y1 = y0 + LT_SVG_PANEL_H;
	double tmax = r->n_sec ? r->sec[r->n_sec - 1].t : 1;
	if (tmax <= 0)
		tmax = 1;
	double vmax = 0;
	for (size_t i = 0; i < r->n_sec; i++)
		for (size_t l = 0; l < n_lines; l++) {
			double v = lines[l].get(&r->sec[i]);
			if (v > vmax)
				vmax = v;
		}
	/* Log scale: decades from 1 ms up to the first power of ten above max. */
	double hi = lt_svg_nice(vmax);
	if (log_scale)
		hi = ceil(log10(vmax > 10 ? vmax : 10));
	char label[64];
	lt_svg_text(out, x0, y0 - 10, "start", title);
	fprintf(out,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n",
		x0, y0, x1 - x0, y1 - y0);
	/* y grid: five steps, or one per decade. */
	int ysteps = log_scale ? (int)hi : 5;
	for (int i = 0; i <= ysteps; i++) {
		double y = y1 - (y1 - y0) * i / ysteps;
		double v = log_scale ? pow(10, i) : hi * i / ysteps;
		fprintf(out,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
			x0, y, x1, y);
		snprintf(label, sizeof(label), "%g%s", v, unit);
		lt_svg_text(out, x0 - 4, y + 4, "end", label);
	}
	for (int i = 0; i <= 6; i++) {
		double x = x0 + (x1 - x0) * i / 6;
		snprintf(label, sizeof(label), "%.0fs", tmax * i / 6);
		lt_svg_text(out, x, y1 + 16, "middle", label);
	}
	for (size_t l = 0; l < n_lines; l++) {
		fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
			lines[l].colour);
		for (size_t i = 0; i < r->n_sec; i++) {
			double v = lines[l].get(&r->sec[i]);
			/* Unknown (monitoring unreachable), or on the log scale a
			 * second in which nothing completed: no point, not a zero. */
			if (v < 0 || (log_scale && v <= 0))
				continue;
			double f;
			if (log_scale)
				f = v <= 1 ? 0 : log10(v) / hi;
			else
				f = v / hi;
			double x = x0 + (x1 - x0) * r->sec[i].t / tmax;
			fprintf(out, "%.1f,%.1f ", x, y1 - (y1 - y0) * f);
		}
		fputs("\"/>\n", out);
		double ly = y0 + 14 + 16 * (double)l;
		fprintf(out,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
			x1 + 10, ly - 4, x1 + 28, ly - 4, lines[l].colour);
		lt_svg_text(out, x1 + 32, ly, "start", lines[l].name);
	}
}

shop_status lt_report_svg(const struct lt_report *r, FILE *out)
{
	static const struct lt_svg_line tput[] = {
		{ "offered rate", "#999", lt_get_rate },
		{ "sent", "#1f77b4", lt_get_sent },
		{ "accepted (202)", "#2ca02c", lt_get_accepted },
		{ "completed (terminal)", "#d62728", lt_get_completed },
		{ "errors", "#ff7f0e", lt_get_errors },
	};
	static const struct lt_svg_line lat[] = {
		{ "accept p50", "#98df8a", lt_get_acc50 },
		{ "accept p99", "#2ca02c", lt_get_acc99 },
		{ "to PAID p99", "#9467bd", lt_get_paid99 },
		{ "to terminal p50", "#ff9896", lt_get_end50 },
		{ "to terminal p99", "#d62728", lt_get_end99 },
	};
	static const struct lt_svg_line backlog[] = {
		{ "awaiting terminal", "#d62728", lt_get_awaiting },
		{ "consumer lag", "#1f77b4", lt_get_lag },
		{ "gateway outbox (est.)", "#ff7f0e", lt_get_outbox },
	};
	int height = LT_SVG_TOP + LT_SVG_PANELS * (LT_SVG_PANEL_H + LT_SVG_GAP);
	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		LT_SVG_WIDTH, height, LT_SVG_WIDTH, height);
	char title[160];
	snprintf(title, sizeof(title),
		 "Throughput per second (orders/s), %s, %s durability, started %s", r->mode,
		 r->durability ? r->durability : "unknown", r->started_at);
	lt_svg_panel(r, out, 0, title, "", false, tput, sizeof(tput) / sizeof(tput[0]));
	lt_svg_panel(
		r, out, 1,
		"Latency from the intended send time, of what completed in each second (log scale)",
		"ms", true, lat, sizeof(lat) / sizeof(lat[0]));
	lt_svg_panel(r, out, 2,
		     "Backlog: orders awaiting a terminal event, consumer lag (messages)", "",
		     false, backlog, sizeof(backlog) / sizeof(backlog[0]));
	if (fputs("</svg>\n", out) < 0)
		return SHOP_E_UNAVAILABLE;
	return SHOP_OK;
}
