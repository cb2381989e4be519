/*
 * test_saga_table.c - contracts/saga.json says what orders_decide() does.
 *
 * The event catalog draws the saga's flows from contracts/saga.json
 * (tools/catalog.py), so that file must be the state machine, not a copy
 * that may drift: this test walks every state (each status, and PAID once
 * more with a cancellation requested) against every input (stock_rejected
 * with each reason) and checks that orders_decide() applies exactly the rows
 * of the file, to the status, reason and request they name, and nothing
 * else (every other cell is IGNORE or DEFER). The names of statuses,
 * reasons and inputs in the file must be the C names, all of them.
 *
 * Run from the repository root (as `make check` does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "../../services/orders/orders_domain.h"

#define SAGA_PATH "contracts/saga.json"
#define SAGA_MAX_BYTES (1 << 20)

static cJSON *saga;

static int load_saga(void **state)
{
	(void)state;
	FILE *f = fopen(SAGA_PATH, "rb");
	if (!f)
		return -1;
	char *buf = malloc(SAGA_MAX_BYTES);
	size_t n = buf ? fread(buf, 1, SAGA_MAX_BYTES - 1, f) : 0;
	fclose(f);
	if (!buf)
		return -1;
	buf[n] = '\0';
	saga = cJSON_Parse(buf);
	free(buf);
	return saga ? 0 : -1;
}

static int free_saga(void **state)
{
	(void)state;
	cJSON_Delete(saga);
	return 0;
}

static const char *str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static enum orders_input_kind input_kind(const char *name)
{
	for (int k = 0; k < ORDERS_INPUT_COUNT; k++)
		if (name && strcmp(name, orders_input_name((enum orders_input_kind)k)) == 0)
			return (enum orders_input_kind)k;
	fail_msg("saga.json names an input the C does not have: %s", name ? name : "(none)");
	return ORDERS_INPUT_COUNT;
}

/* The row of saga.json for (status, requested, input, reason), or NULL. */
static const cJSON *row_for(enum orders_status st, bool requested, enum orders_input_kind kind,
			    enum orders_reason reason)
{
	const cJSON *row;
	cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(saga, "transitions"))
	{
		enum orders_status from;
		assert_int_equal(orders_status_parse(str(row, "from"), &from), SHOP_OK);
		bool row_requested = cJSON_IsTrue(
			cJSON_GetObjectItemCaseSensitive(row, "requested"));
		const char *with = str(row, "with_reason");
		if (from != st || row_requested != requested || input_kind(str(row, "on")) != kind)
			continue;
		if (with &&
		    (!orders_reason_name(reason) || strcmp(with, orders_reason_name(reason)) != 0))
			continue;
		return row;
	}
	return NULL;
}

static void names_are_the_c_names(void **state)
{
	(void)state;
	const cJSON *statuses = cJSON_GetObjectItemCaseSensitive(saga, "statuses");
	assert_int_equal(cJSON_GetArraySize(statuses), ORDERS_STATUS_COUNT);
	for (int i = 0; i < ORDERS_STATUS_COUNT; i++)
		assert_string_equal(cJSON_GetArrayItem(statuses, i)->valuestring,
				    orders_status_name((enum orders_status)i));
	const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(saga, "reasons");
	assert_int_equal(cJSON_GetArraySize(reasons), ORDERS_REASON_COUNT - 1);
	for (int i = 1; i < ORDERS_REASON_COUNT; i++)
		assert_string_equal(cJSON_GetArrayItem(reasons, i - 1)->valuestring,
				    orders_reason_name((enum orders_reason)i));
	const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(saga, "inputs");
	assert_int_equal(cJSON_GetArraySize(inputs), ORDERS_INPUT_COUNT);
	for (int i = 0; i < ORDERS_INPUT_COUNT; i++)
		assert_string_equal(str(cJSON_GetArrayItem(inputs, i), "name"),
				    orders_input_name((enum orders_input_kind)i));
}

static void check_cell(enum orders_status st, bool requested, enum orders_input_kind kind,
		       enum orders_reason reason, int *applied)
{
	struct orders_state cur = { .status = st };
	if (requested) {
		cur.cancel_requested = true;
		cur.cancel_reason = ORDERS_REASON_CUSTOMER_CANCELLED;
		cur.cancel_requests = 1;
	}
	struct orders_input in = { .kind = kind,
				   .reason = reason,
				   .cancel_requests = cur.cancel_requests };
	struct orders_decision d = orders_decide(&cur, &in);
	const cJSON *row = row_for(st, requested, kind, reason);
	print_message("# %s%s + %s%s%s: %s\n", orders_status_name(st),
		      requested ? " (requested)" : "", orders_input_name(kind), reason ? " " : "",
		      reason ? orders_reason_name(reason) : "", orders_verdict_name(d.verdict));
	if (!row) {
		assert_int_not_equal(d.verdict, ORDERS_APPLY);
		return;
	}
	(*applied)++;
	assert_int_equal(d.verdict, ORDERS_APPLY);
	enum orders_status to;
	assert_int_equal(orders_status_parse(str(row, "to"), &to), SHOP_OK);
	assert_int_equal(d.status, to);
	const char *why = str(row, "reason");
	if (to == ORDERS_STATUS_CANCELLED) {
		assert_non_null(why);
		if (strcmp(why, "the request's") == 0)
			assert_int_equal(d.reason, cur.cancel_reason);
		else
			assert_string_equal(orders_reason_name(d.reason), why);
	} else {
		assert_null(why);
		assert_int_equal(d.reason, ORDERS_REASON_NONE);
	}
	const char *request = str(row, "request");
	if (request) {
		assert_true(d.cancel_requested);
		assert_int_equal(d.cancel_requests, cur.cancel_requests + 1);
		if (strcmp(request, "again") == 0)
			assert_int_equal(d.cancel_reason, cur.cancel_reason);
		else
			assert_string_equal(orders_reason_name(d.cancel_reason), request);
	} else {
		assert_int_equal(d.cancel_requests, cur.cancel_requests);
	}
}

static void every_cell_applies_exactly_the_rows_of_the_file(void **state)
{
	(void)state;
	int applied = 0;
	for (int s = 0; s < ORDERS_STATUS_COUNT; s++) {
		for (int r = 0; r < 2; r++) {
			bool requested = r == 1;
			if (requested && s != ORDERS_STATUS_PAID)
				continue; /* the mark exists only on a PAID order */
			for (int k = 0; k < ORDERS_INPUT_COUNT; k++) {
				if (k != ORDERS_INPUT_STOCK_REJECTED) {
					check_cell((enum orders_status)s, requested,
						   (enum orders_input_kind)k, ORDERS_REASON_NONE,
						   &applied);
					continue;
				}
				check_cell((enum orders_status)s, requested,
					   (enum orders_input_kind)k, ORDERS_REASON_OUT_OF_STOCK,
					   &applied);
				check_cell((enum orders_status)s, requested,
					   (enum orders_input_kind)k, ORDERS_REASON_UNKNOWN_SKU,
					   &applied);
			}
		}
	}
	/* Every row was some cell: none is unreachable or a duplicate. */
	assert_int_equal(applied,
			 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(saga, "transitions")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_are_the_c_names),
		cmocka_unit_test(every_cell_applies_exactly_the_rows_of_the_file),
	};
	return cmocka_run_group_tests(tests, load_saga, free_saga);
}
