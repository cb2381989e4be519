/*
 * lt_ratio.c - the shop's figures as ratios of the ceilings measured in the
 * same run, and the durable-vs-relaxed comparison of two reports
 * (lt_ceil.h). Pure: no I/O but the FILE the caller hands in.
 *
 * A negative input means "unknown" and makes every ratio built on it
 * negative, so a ceiling that failed never turns into a plausible figure.
 */
#include "lt_ceil.h"

#include <cjson/cJSON.h>
#include <string.h>

static double lt_div(double a, double b)
{
	return a >= 0 && b > 0 ? a / b : -1;
}

static double lt_mul(double a, double b)
{
	return a >= 0 && b >= 0 ? a * b : -1;
}

static double lt_delta(int64_t before, int64_t after)
{
	return before >= 0 && after >= before ? (double)(after - before) : -1;
}

void lt_ratios_compute(const struct lt_ceilings *c, const struct lt_usage *before,
		       const struct lt_usage *after, int64_t terminal, int64_t accepted,
		       double active_s, double offer_s, struct lt_ratios *ret)
{
	struct lt_ratios r;
	double pub = c->measured ? c->js_publish.per_s : -1;
	double con = c->measured ? c->js_consume.per_s : -1;
	double http = c->measured ? c->http.per_s : -1;
	double pg = c->measured ? c->pg_commit.per_s : -1;
	double lite = c->measured ? c->sqlite_commit.per_s : -1;

	r.completed_per_s = lt_div((double)terminal, active_s);
	r.accepted_per_s = lt_div((double)accepted, offer_s);
	/* Per terminal order: every event stored during the load, including
	 * those of orders that had not ended by the end of the drain, so it
	 * reads a little high when some never did. */
	r.events_per_order = lt_div(lt_delta(before->js_messages, after->js_messages),
				    (double)terminal);
	r.pg_commits_per_order = lt_div(lt_delta(before->pg_commits, after->pg_commits),
					(double)terminal);
	double events_per_s = lt_mul(r.completed_per_s, r.events_per_order);
	r.bus_publish_share = lt_div(events_per_s, pub);
	r.bus_consume_share = lt_div(events_per_s, con);
	r.bus_orders_bound = lt_div(pub, r.events_per_order);
	r.gateway_share = lt_div(r.accepted_per_s, http);
	r.pg_share = lt_div(lt_mul(r.completed_per_s, r.pg_commits_per_order), pg);
	r.pg_orders_bound = lt_div(pg, r.pg_commits_per_order);
	r.sqlite_commits_per_order_budget = lt_div(lite, r.completed_per_s);
	*ret = r;
}

double lt_report_throughput(const char *json)
{
	double v = -1;
	cJSON *root = cJSON_Parse(json);
	const cJSON *sum = cJSON_GetObjectItemCaseSensitive(root, "summary");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(sum, "throughput");
	if (cJSON_IsNumber(t) && t->valuedouble >= 0)
		v = t->valuedouble;
	cJSON_Delete(root);
	return v;
}

static const char *lt_json_str(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a),
							  b);
	return cJSON_IsString(x) ? x->valuestring : "?";
}

shop_status lt_compare_reports(const char *durable_json, const char *relaxed_json, FILE *out,
			       double *ret_ratio)
{
	double d = lt_report_throughput(durable_json);
	double r = lt_report_throughput(relaxed_json);
	if (d < 0 || r < 0)
		return SHOP_E_INVALID;
	cJSON *dj = cJSON_Parse(durable_json), *rj = cJSON_Parse(relaxed_json);
	const char *what = lt_json_str(dj, "summary", "throughput_of");
	fprintf(out, "durable (%s): %.1f orders/s (%s)\n", lt_json_str(dj, "summary", "durability"),
		d, what);
	fprintf(out, "relaxed (%s): %.1f orders/s (%s)\n", lt_json_str(rj, "summary", "durability"),
		r, lt_json_str(rj, "summary", "throughput_of"));
	double ratio = lt_div(d, r);
	if (ratio >= 0)
		fprintf(out, "durable / relaxed: %.2f (target >= %.2f: %s)\n", ratio,
			LT_DURABLE_TARGET, ratio >= LT_DURABLE_TARGET ? "met" : "missed");
	else
		fprintf(out, "durable / relaxed: n/a (relaxed completed nothing)\n");
	cJSON_Delete(dj);
	cJSON_Delete(rj);
	if (ret_ratio)
		*ret_ratio = ratio;
	return SHOP_OK;
}
