/*
 * audit_report.c - what the audit found, per check, and how it is shown.
 *
 * Every violation is counted; only the first details_max of each check are
 * kept, so an audit of a badly broken shop stays bounded in memory and
 * output. A check that could not run (a database away) is a failure of its
 * own, never a pass.
 */
#include "audit.h"

#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>

static const char *const audit_check_names[AUDIT_CHECK_COUNT] = {
	[AUDIT_ORDERS_FINISH] = "orders_finish",
	[AUDIT_CHARGES] = "charges",
	[AUDIT_STOCK] = "stock",
	[AUDIT_NOTIFICATIONS] = "notifications",
	[AUDIT_READ_MODEL] = "read_model",
	[AUDIT_DEAD_LETTERS] = "dead_letters",
};

const char *audit_check_name(enum audit_check c)
{
	return (unsigned)c < AUDIT_CHECK_COUNT ? audit_check_names[c] : "unknown";
}

void audit_report_init(struct audit_report *r, size_t details_max)
{
	*r = (struct audit_report){ 0 };
	r->details_max = details_max < AUDIT_DETAILS_MAX ? details_max : AUDIT_DETAILS_MAX;
}

void audit_report_release(struct audit_report *r)
{
	for (int c = 0; c < AUDIT_CHECK_COUNT; c++)
		free(r->results[c].kept);
}

void audit_report_violation(struct audit_report *r, enum audit_check c, const char *id,
			    const char *fmt, ...)
{
	struct audit_result *res = &r->results[c];
	res->violations++;
	if (res->n_kept >= r->details_max)
		return;
	/* Allocated at the first violation: a clean check costs nothing. */
	if (!res->kept)
		res->kept = xcalloc(r->details_max, sizeof(*res->kept));
	struct audit_violation *v = &res->kept[res->n_kept++];
	snprintf(v->id, sizeof(v->id), "%s", id ? id : ""); /* cut, not dropped, if long */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

void audit_report_more(struct audit_report *r, enum audit_check c, int64_t n)
{
	if (n > 0)
		r->results[c].violations += n;
}

void audit_report_error(struct audit_report *r, enum audit_check c, const char *fmt, ...)
{
	struct audit_result *res = &r->results[c];
	if (res->failed) /* the first cause is the one to fix */
		return;
	res->failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

static bool audit_result_passed(const struct audit_result *res)
{
	return !res->failed && (res->violations == 0 || res->allowed);
}

bool audit_report_passed(const struct audit_report *r)
{
	for (int c = 0; c < AUDIT_CHECK_COUNT; c++)
		if (!audit_result_passed(&r->results[c]))
			return false;
	return true;
}

void audit_report_print(const struct audit_report *r, FILE *out)
{
	for (int c = 0; c < AUDIT_CHECK_COUNT; c++) {
		const struct audit_result *res = &r->results[c];
		const char *name = audit_check_name((enum audit_check)c);
		if (res->failed) {
			fprintf(out, "%-14s ERROR: %s\n", name, res->error);
			continue;
		}
		if (res->violations == 0) {
			fprintf(out, "%-14s ok (%lld checked)\n", name, (long long)res->checked);
			continue;
		}
		fprintf(out, "%-14s %lld violation%s (%lld checked)%s\n", name,
			(long long)res->violations, res->violations == 1 ? "" : "s",
			(long long)res->checked, res->allowed ? ", allowed" : "");
		for (size_t i = 0; i < res->n_kept; i++)
			fprintf(out, "  %s: %s\n", res->kept[i].id, res->kept[i].detail);
		if ((int64_t)res->n_kept < res->violations)
			fprintf(out, "  ... and %lld more\n",
				(long long)(res->violations - (int64_t)res->n_kept));
	}
	fprintf(out, "%s\n", audit_report_passed(r) ? "PASSED" : "FAILED");
}

char *audit_report_json(const struct audit_report *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddBoolToObject(root, "passed", audit_report_passed(r));
	cJSON *checks = cJSON_AddArrayToObject(root, "checks");
	for (int c = 0; c < AUDIT_CHECK_COUNT; c++) {
		const struct audit_result *res = &r->results[c];
		cJSON *check = cJSON_CreateObject();
		cJSON_AddStringToObject(check, "name", audit_check_name((enum audit_check)c));
		cJSON_AddBoolToObject(check, "passed", audit_result_passed(res));
		/* Counts stay far below 2^53, where a double is still exact. */
		cJSON_AddNumberToObject(check, "checked", (double)res->checked);
		cJSON_AddNumberToObject(check, "violations", (double)res->violations);
		cJSON_AddBoolToObject(check, "allowed", res->allowed);
		if (res->failed)
			cJSON_AddStringToObject(check, "error", res->error);
		cJSON *details = cJSON_AddArrayToObject(check, "details");
		for (size_t i = 0; i < res->n_kept; i++) {
			cJSON *v = cJSON_CreateObject();
			cJSON_AddStringToObject(v, "id", res->kept[i].id);
			cJSON_AddStringToObject(v, "detail", res->kept[i].detail);
			cJSON_AddItemToArray(details, v);
		}
		cJSON_AddItemToArray(checks, check);
	}
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!text)
		abort(); /* cJSON fails only when out of memory */
	return text;
}
