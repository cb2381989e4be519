/*
 * test_contracts.c - the generated contract codecs agree with the schemas.
 *
 * Every example under contracts/examples (which tests/contracts/check_examples.py
 * runs through a reference JSON Schema validator) is run through the generated
 * C codec as a case of its own: a valid example must parse and encode back to
 * the same JSON, an invalid one must be rejected with an error at the JSON
 * pointer the example names. The focused cases below pin what examples cannot
 * show well: error collection and its limit, UTF-8 and number edge cases,
 * thread-safe pattern compilation, and the message, stream and consumer tables
 * against contracts/index.json. Paths are relative to the repository root,
 * which is the working directory under `make check`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>

#include "contracts_gen.h"
#include "core/status.h"
#include "core/xalloc.h"
#include "evt/ct_versions.h"
#include "evt/envelope.h"

#define EXAMPLES_DIR "contracts/examples"
#define INDEX_PATH "contracts/index.json"
#define ORDER_ID "01932c07-8f3e-7b41-9a2d-5c6e7f801234"

/* ---- helpers ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static cJSON *load_json(const char *path)
{
	char *text = read_file(path);
	cJSON *json = text ? cJSON_Parse(text) : NULL;
	free(text);
	return json;
}

static void print_errors(const struct ct_errors *errs)
{
	for (size_t i = 0; i < errs->len; i++)
		print_message("#   \"%s\": %s\n", errs->item[i].path, errs->item[i].problem);
	if (errs->dropped)
		print_message("#   (%zu more dropped)\n", errs->dropped);
}

/* The error at path, or NULL. */
static const struct ct_error *error_at(const struct ct_errors *errs, const char *path)
{
	for (size_t i = 0; i < errs->len; i++)
		if (strcmp(errs->item[i].path, path) == 0)
			return &errs->item[i];
	return NULL;
}

static void assert_error(const struct ct_errors *errs, const char *path, const char *problem)
{
	const struct ct_error *e = error_at(errs, path);
	if (!e || strcmp(e->problem, problem) != 0) {
		print_message("# expected \"%s\": %s; got:\n", path, problem);
		print_errors(errs);
	}
	assert_non_null(e);
	assert_string_equal(e->problem, problem);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a directory (".json" files only when json_only); NULL if it does not exist. */
static char **list_dir(const char *path, bool json_only, size_t *ret_n)
{
	DIR *d = opendir(path);
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	if (!d)
		return NULL;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if (json_only && (len < 5 || strcmp(de->d_name + len - 5, ".json") != 0))
			continue;
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	*ret_n = n;
	return names ? names : xcalloc(1, sizeof *names);
}

static void free_list(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

/* ---- codecs by example directory name ---- */

struct codec {
	const char *name;
	size_t size;
	ct_parse_fn parse;
	ct_encode_fn encode;
};

static shop_status place_order_request_parse(const cJSON *json, void *out, struct ct_errors *errs)
{
	return ct_place_order_request_parse(json, out, errs);
}

static cJSON *place_order_request_encode(const void *in)
{
	return ct_place_order_request_encode(in);
}

/* The index's "types": not messages, so not in ct_messages. */
static const struct codec type_codecs[] = {
	{ "place_order_request", sizeof(struct ct_place_order_request), place_order_request_parse,
	  place_order_request_encode },
};

/* The envelope is parsed by the event layer, not by a generated codec. */
static const char *const codecless_dirs[] = { "envelope" };

static bool codec_find(const char *name, struct codec *ret)
{
	for (size_t i = 0; i < CT_MSG__COUNT; i++) {
		const struct ct_message *m = &ct_messages[i];
		if (strcmp(m->key, name) == 0) { /* examples/<key>: order_placed_v2 */
			*ret = (struct codec){ m->key, m->data_size, m->parse, m->encode };
			return true;
		}
	}
	for (size_t i = 0; i < sizeof type_codecs / sizeof type_codecs[0]; i++) {
		if (strcmp(type_codecs[i].name, name) == 0) {
			*ret = type_codecs[i];
			return true;
		}
	}
	return false;
}

static bool is_codecless(const char *name)
{
	for (size_t i = 0; i < sizeof codecless_dirs / sizeof codecless_dirs[0]; i++)
		if (strcmp(codecless_dirs[i], name) == 0)
			return true;
	return false;
}

/* ---- one case per example ---- */

struct example {
	char *dir;  /* message or type name */
	char *path; /* contracts/examples/<dir>/<valid|invalid>/<file> */
	char *test_name;
};

static void valid_example_is_accepted_and_round_trips(void **state)
{
	const struct example *ex = *state;
	struct codec c;
	struct ct_errors errs = { 0 };
	assert_true(codec_find(ex->dir, &c));
	cJSON *json = load_json(ex->path);
	assert_non_null(json);
	void *a = xcalloc(1, c.size), *b = xcalloc(1, c.size);

	shop_status st = c.parse(json, a, &errs);
	if (st != SHOP_OK)
		print_errors(&errs);
	assert_int_equal(st, SHOP_OK);
	assert_int_equal(errs.len, 0);

	cJSON *once = c.encode(a);
	assert_non_null(once);
	assert_true(cJSON_Compare(json, once, true)); /* encoding gives back the example */
	assert_int_equal(c.parse(once, b, &errs), SHOP_OK);
	cJSON *twice = c.encode(b);
	assert_true(cJSON_Compare(once, twice, true));

	cJSON_Delete(twice);
	cJSON_Delete(once);
	free(b);
	free(a);
	cJSON_Delete(json);
}

static void invalid_example_is_rejected_at_its_path(void **state)
{
	const struct example *ex = *state;
	struct codec c;
	struct ct_errors errs = { 0 };
	assert_true(codec_find(ex->dir, &c));
	cJSON *doc = load_json(ex->path);
	assert_non_null(doc);
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
	const char *at = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(doc, "expect_error_at"));
	assert_non_null(data);
	assert_non_null(at);
	unsigned char *out = xmalloc(c.size), *before = xmalloc(c.size);
	memset(out, 0xA5, c.size);
	memcpy(before, out, c.size);

	assert_int_equal(c.parse(data, out, &errs), SHOP_E_INVALID);
	assert_memory_equal(out, before, c.size); /* written only on success */
	if (!error_at(&errs, at)) {
		print_message("# expected an error at \"%s\"; got:\n", at);
		print_errors(&errs);
	}
	assert_non_null(error_at(&errs, at));

	free(before);
	free(out);
	cJSON_Delete(doc);
}

/* ---- examples cover the index ---- */

static void every_example_directory_has_a_codec(void **state)
{
	size_t n = 0;
	char **dirs = list_dir(EXAMPLES_DIR, false, &n);
	struct codec c;
	assert_non_null(dirs);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		if (!codec_find(dirs[i], &c) && !is_codecless(dirs[i]))
			fail_msg("examples/%s matches no message or type", dirs[i]);
	}
	free_list(dirs, n);
}

static void every_message_and_type_has_valid_and_invalid_examples(void **state)
{
	const char *kinds[] = { "valid", "invalid" };
	for (size_t i = 0; i < CT_MSG__COUNT + sizeof type_codecs / sizeof type_codecs[0]; i++) {
		const char *name = i < CT_MSG__COUNT ? ct_messages[i].key
						     : type_codecs[i - CT_MSG__COUNT].name;
		for (size_t k = 0; k < 2; k++) {
			char path[512];
			size_t n = 0;
			snprintf(path, sizeof path, "%s/%s/%s", EXAMPLES_DIR, name, kinds[k]);
			char **files = list_dir(path, true, &n);
			if (!files || n == 0)
				fail_msg("%s has no %s examples", name, kinds[k]);
			free_list(files, n);
		}
	}
}

/* ---- error collection ---- */

static const char order_json[] =
	"{\"order_id\":\"" ORDER_ID "\",\"customer_id\":\"cus_1\",\"email\":\"ada@example.com\","
	"\"items\":[{\"sku\":\"KB-1\",\"quantity\":1},{\"sku\":\"KB-2\",\"quantity\":2}],"
	"\"payment\":{\"card_token\":\"tok_1\"},"
	"\"shipping_address\":{\"name\":\"Ada\",\"line1\":\"1 Main St\",\"city\":\"London\","
	"\"postal_code\":\"SW1\",\"country\":\"GB\"}}";

static cJSON *order_with_items(size_t n, int quantity)
{
	cJSON *json = cJSON_Parse(order_json);
	cJSON *items = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		cJSON *line = cJSON_CreateObject();
		cJSON_AddStringToObject(line, "sku", "KB-1");
		cJSON_AddNumberToObject(line, "quantity", quantity);
		cJSON_AddItemToArray(items, line);
	}
	cJSON_ReplaceItemInObjectCaseSensitive(json, "items", items);
	return json;
}

static void order_with_three_bad_fields_reports_all_three_paths(void **state)
{
	cJSON *json = cJSON_Parse(order_json);
	struct ct_errors errs = { 0 };
	cJSON_ReplaceItemInObjectCaseSensitive(json, "email", cJSON_CreateString("not-an-email"));
	cJSON *line = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(json, "items"), 1);
	cJSON_ReplaceItemInObjectCaseSensitive(line, "quantity", cJSON_CreateNumber(0));
	cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(json,
										"shipping_address"),
					       "country", cJSON_CreateString("gb"));

	assert_int_equal(ct_order_placed_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_int_equal(errs.len, 3);
	assert_int_equal(errs.dropped, 0);
	assert_error(&errs, "/email", "is not a valid email");
	assert_error(&errs, "/items/1/quantity", "must be an integer between 1 and 1000");
	assert_error(&errs, "/shipping_address/country", "is not a valid country");
	cJSON_Delete(json);
}

static void bad_elements_of_one_array_are_all_reported(void **state)
{
	cJSON *json = order_with_items(5, 0);
	struct ct_errors errs = { 0 };
	assert_int_equal(ct_place_order_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_int_equal(errs.len, 5);
	for (size_t i = 0; i < 5; i++) {
		char path[32];
		snprintf(path, sizeof path, "/items/%zu/quantity", i);
		assert_non_null(error_at(&errs, path));
	}
	cJSON_Delete(json);
}

static void missing_wrong_and_unknown_fields_have_readable_problems(void **state)
{
	cJSON *json = cJSON_Parse(
		"{\"customer_id\":\"\",\"email\":7,\"items\":\"x\",\"payment\":{},"
		"\"shipping_address\":[],\"coupon\":true}");
	struct ct_errors errs = { 0 };
	assert_int_equal(ct_place_order_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_error(&errs, "/order_id", "is required");
	assert_error(&errs, "/customer_id", "must not be empty");
	assert_error(&errs, "/email", "must be a string");
	assert_error(&errs, "/items", "must be an array");
	assert_error(&errs, "/payment/card_token", "is required");
	assert_error(&errs, "/shipping_address", "must be an object");
	assert_error(&errs, "/coupon", "is not allowed");
	assert_int_equal(errs.len, 7);
	cJSON_Delete(json);
}

static void error_limit_drops_rather_than_overflows(void **state)
{
	cJSON *json = order_with_items(CT_PLACE_ORDER_ITEMS_MAX, 0);
	struct ct_errors errs = { 0 };
	cJSON_DeleteItemFromObjectCaseSensitive(json, "email");
	assert_int_equal(ct_place_order_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_int_equal(errs.len, CT_ERRORS_MAX);
	assert_int_equal(errs.dropped, CT_PLACE_ORDER_ITEMS_MAX + 1 - CT_ERRORS_MAX);
	assert_string_equal(errs.item[0].path, "/items/0/quantity");
	cJSON_Delete(json);

	struct ct_errors full = { 0 };
	for (int i = 0; i < CT_ERRORS_MAX + 3; i++)
		ct_errors_add(&full, "/x", "problem %d", i);
	assert_int_equal(full.len, CT_ERRORS_MAX);
	assert_int_equal(full.dropped, 3);
	assert_string_equal(full.item[CT_ERRORS_MAX - 1].problem, "problem 15");
	ct_errors_add(NULL, "/x", "nobody listens");
}

static void long_paths_and_problems_are_cut_not_overflowed(void **state)
{
	char long_text[600];
	struct ct_errors errs = { 0 };
	memset(long_text, 'p', sizeof long_text - 1);
	long_text[sizeof long_text - 1] = '\0';
	ct_errors_add(&errs, long_text, "%s", long_text);
	assert_int_equal(strlen(errs.item[0].path), CT_PATH_MAX - 1);
	assert_int_equal(strlen(errs.item[0].problem), CT_PROBLEM_MAX - 1);

	/* An unknown key as long as the input allows is cut in the pointer too. */
	cJSON *json = cJSON_CreateObject();
	cJSON_AddStringToObject(json, "order_id", ORDER_ID);
	cJSON_AddTrueToObject(json, long_text);
	memset(&errs, 0, sizeof errs);
	assert_int_equal(ct_cancel_order_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_int_equal(errs.len, 1);
	assert_true(strlen(errs.item[0].path) < CT_PATH_MAX);
	assert_memory_equal(errs.item[0].path, "/ppp", 4);
	cJSON_Delete(json);
}

static void unknown_keys_are_reported_as_escaped_utf8_pointers(void **state)
{
	cJSON *json = cJSON_CreateObject();
	struct ct_errors errs = { 0 };
	cJSON_AddStringToObject(json, "order_id", ORDER_ID);
	cJSON_AddTrueToObject(json, "a/b~c");
	cJSON_AddTrueToObject(json, "bad\xff");
	assert_int_equal(ct_cancel_order_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_error(&errs, "/a~1b~0c", "is not allowed");
	assert_error(&errs, "/bad?", "is not allowed");
	cJSON_Delete(json);
}

static void duplicate_keys_are_rejected(void **state)
{
	cJSON *json = cJSON_Parse("{\"order_id\":\"" ORDER_ID "\",\"order_id\":\"" ORDER_ID "\"}");
	struct ct_errors errs = { 0 };
	assert_non_null(json);
	assert_int_equal(ct_cancel_order_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_error(&errs, "/order_id", "must appear only once");
	cJSON_Delete(json);
}

static void non_object_input_is_rejected_at_the_root(void **state)
{
	cJSON *json = cJSON_Parse("[1,2]");
	struct ct_errors errs = { 0 };
	assert_int_equal(ct_cancel_order_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_error(&errs, "", "must be an object");
	assert_int_equal(ct_cancel_order_parse(NULL, NULL, NULL), SHOP_E_INVALID);
	cJSON_Delete(json);
}

static void failed_parse_leaves_out_untouched_and_errs_may_be_null(void **state)
{
	struct ct_cancel_order out, before;
	memset(&out, 'x', sizeof out);
	memcpy(&before, &out, sizeof out);
	cJSON *bad = cJSON_Parse("{\"order_id\":\"nope\"}");
	assert_int_equal(ct_cancel_order_parse(bad, &out, NULL), SHOP_E_INVALID);
	assert_memory_equal(&out, &before, sizeof out);

	cJSON *good = cJSON_Parse("{\"order_id\":\"" ORDER_ID "\"}");
	assert_int_equal(ct_cancel_order_parse(good, NULL, NULL), SHOP_OK); /* validate only */
	assert_int_equal(ct_cancel_order_parse(good, &out, NULL), SHOP_OK);
	assert_string_equal(out.order_id, ORDER_ID);
	cJSON_Delete(good);
	cJSON_Delete(bad);
}

/* ---- strings ---- */

static cJSON *address_named(const char *unit, size_t times)
{
	size_t len = strlen(unit);
	char *name = xmalloc(len * times + 1);
	for (size_t i = 0; i < times; i++)
		memcpy(name + i * len, unit, len);
	name[len * times] = '\0';
	cJSON *json = cJSON_CreateObject();
	cJSON_AddStringToObject(json, "name", name);
	cJSON_AddStringToObject(json, "line1", "1 Main St");
	cJSON_AddStringToObject(json, "city", "Zürich");
	cJSON_AddStringToObject(json, "postal_code", "8001");
	cJSON_AddStringToObject(json, "country", "CH");
	free(name);
	return json;
}

static void multibyte_name_of_max_code_points_is_accepted_and_one_more_is_rejected(void **state)
{
	/* 2, 3 and 4 bytes per character: the buffer holds the 4-byte worst case. */
	const char *units[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
	for (size_t u = 0; u < 3; u++) {
		struct ct_address addr;
		struct ct_errors errs = { 0 };
		cJSON *json = address_named(units[u], CT_ADDRESS_NAME_MAX);
		assert_int_equal(ct_address_parse(json, &addr, &errs), SHOP_OK);
		assert_int_equal(strlen(addr.name), CT_ADDRESS_NAME_MAX * strlen(units[u]));
		cJSON *back = ct_address_encode(&addr);
		assert_true(cJSON_Compare(json, back, true));
		cJSON_Delete(back);
		cJSON_Delete(json);

		json = address_named(units[u], CT_ADDRESS_NAME_MAX + 1);
		assert_int_equal(ct_address_parse(json, &addr, &errs), SHOP_E_INVALID);
		assert_error(&errs, "/name", "must be at most 100 characters");
		cJSON_Delete(json);
	}
	assert_int_equal(sizeof(((struct ct_address *)0)->name), 4 * CT_ADDRESS_NAME_MAX + 1);
}

static void malformed_utf8_is_rejected(void **state)
{
	const char *bad[] = {
		"\xc3\x28",         /* lead byte without continuation */
		"\x80",             /* lone continuation */
		"\xc0\xaf",         /* overlong "/" */
		"\xe0\x80\xaf",     /* overlong, 3 bytes */
		"\xed\xa0\x80",     /* UTF-16 surrogate */
		"\xf4\x90\x80\x80", /* above U+10FFFF */
		"\xe2\x82",         /* cut short */
		"\xfe",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct ct_errors errs = { 0 };
		cJSON *json = address_named(bad[i], 1);
		assert_int_equal(ct_address_parse(json, NULL, &errs), SHOP_E_INVALID);
		assert_error(&errs, "/name", "is not valid UTF-8");
		cJSON_Delete(json);
	}
}

static void enum_and_pattern_problems_name_the_rule(void **state)
{
	struct ct_errors errs = { 0 };
	cJSON *json = cJSON_Parse("{\"order_id\":\"" ORDER_ID
				  "\",\"reason\":\"bored\",\"skus\":[\"ok-sku\"]}");
	assert_int_equal(ct_stock_rejected_parse(json, NULL, &errs), SHOP_E_INVALID);
	assert_error(&errs, "/reason", "must be one of: out_of_stock, unknown_sku");
	assert_error(&errs, "/skus/0", "is not a valid sku");
	cJSON_Delete(json);
	assert_string_equal(CT_STOCK_REJECTED_REASON_OUT_OF_STOCK, "out_of_stock");
}

static void patterns_must_match_the_whole_value(void **state)
{
	/* ^...$ hold for the whole string: a matching prefix or suffix is not
	 * enough, and (unlike Python's $) a trailing newline is not skipped. */
	const char *bad[] = { "KB-1x", "xKB-1", "KB-1\n", "KB 1", "-KB" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct ct_errors errs = { 0 };
		cJSON *json = cJSON_CreateObject();
		cJSON_AddStringToObject(json, "sku", bad[i]);
		cJSON_AddNumberToObject(json, "quantity", 1);
		assert_int_equal(ct_order_line_parse(json, NULL, &errs), SHOP_E_INVALID);
		assert_error(&errs, "/sku", "is not a valid sku");
		cJSON_Delete(json);
	}
}

static void date_times_follow_rfc_3339(void **state)
{
	static const struct {
		const char *value;
		bool ok;
	} cases[] = {
		{ "2026-11-23T09:00:00Z", true },
		{ "2026-11-23t09:00:00z", true },
		{ "2026-11-23T09:00:00.123456789+05:30", true },
		{ "2028-02-29T00:00:00-00:00", true },
		{ "2026-12-31T23:59:60Z", true },
		{ "2026-02-29T09:00:00Z", false },
		{ "2100-02-29T09:00:00Z", false },
		{ "2026-13-01T09:00:00Z", false },
		{ "2026-11-31T09:00:00Z", false },
		{ "2026-11-23T24:00:00Z", false },
		{ "2026-11-23T09:60:00Z", false },
		{ "2026-11-23 09:00:00Z", false },
		{ "2026-11-23T09:00:00.Z", false },
		{ "2026-11-23T09:00:00+0530", false },
		{ "2026-11-23T09:00:00+24:00", false },
		{ "2026-11-23T09:00:00ZZ", false },
		{ "2026-11-23T9:00:00Z", false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct ct_errors errs = { 0 };
		cJSON *json = cJSON_CreateObject();
		cJSON_AddStringToObject(json, "order_id", ORDER_ID);
		cJSON_AddStringToObject(json, "shipment_id", ORDER_ID);
		cJSON_AddStringToObject(json, "dispatch_at", cases[i].value);
		shop_status st = ct_shipment_scheduled_parse(json, NULL, &errs);
		if ((st == SHOP_OK) != cases[i].ok)
			fail_msg("%s should be %s", cases[i].value,
				 cases[i].ok ? "accepted" : "rejected");
		if (!cases[i].ok)
			assert_non_null(error_at(&errs, "/dispatch_at"));
		cJSON_Delete(json);
	}
}

/* ---- numbers ---- */

static shop_status parse_revision(cJSON *revision, struct ct_stock_level_changed *out,
				  struct ct_errors *errs)
{
	cJSON *json = cJSON_Parse("{\"sku\":\"KB-1\",\"name\":\"Keyboard\",\"price_cents\":100,"
				  "\"currency\":\"EUR\",\"available\":0}");
	cJSON_AddItemToObject(json, "revision", revision);
	shop_status st = ct_stock_level_changed_parse(json, out, errs);
	cJSON_Delete(json);
	return st;
}

static void integers_are_exact_and_within_their_bounds(void **state)
{
	struct ct_stock_level_changed out;
	struct ct_errors errs = { 0 };
	assert_int_equal(parse_revision(cJSON_CreateNumber(9007199254740991.0), &out, &errs),
			 SHOP_OK);
	assert_true(out.revision == CT_STOCK_LEVEL_CHANGED_REVISION_MAX);
	assert_int_equal(parse_revision(cJSON_CreateNumber(2.0), &out, &errs), SHOP_OK);
	assert_int_equal(out.revision, 2);

	const double bad[] = { 9007199254740992.0, 1.5, 0.0, -1.0, 1e300, -1e300 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&errs, 0, sizeof errs);
		assert_int_equal(parse_revision(cJSON_CreateNumber(bad[i]), &out, &errs),
				 SHOP_E_INVALID);
		assert_error(&errs, "/revision",
			     "must be an integer between 1 and 9007199254740991");
	}
	memset(&errs, 0, sizeof errs);
	assert_int_equal(parse_revision(cJSON_CreateTrue(), &out, &errs), SHOP_E_INVALID);
	assert_non_null(error_at(&errs, "/revision"));
	memset(&errs, 0, sizeof errs);
	assert_int_equal(parse_revision(cJSON_CreateString("5"), &out, &errs), SHOP_E_INVALID);
	assert_non_null(error_at(&errs, "/revision"));
}

/* ---- encoding ---- */

static void encoding_emits_exactly_the_schema_fields(void **state)
{
	struct ct_order_placed *in = xcalloc(1, sizeof *in);
	const char *fields[] = { "order_id", "customer_id", "email",
				 "items",    "payment",     "shipping_address" };
	in->items_len = 1000; /* more than fit: encoding stops at the array's size */
	cJSON *json = ct_order_placed_encode(in);
	assert_non_null(json);
	assert_int_equal(cJSON_GetArraySize(json), 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(cJSON_GetArrayItem(json, (int)i)->string, fields[i]);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(json, "items")),
			 CT_ORDER_PLACED_ITEMS_MAX);
	assert_int_equal(cJSON_GetArraySize(
				 cJSON_GetObjectItemCaseSensitive(json, "shipping_address")),
			 5);
	cJSON_Delete(json);
	free(in);
	assert_null(ct_order_placed_encode(NULL));
}

static void encoding_an_unterminated_string_stays_inside_the_field(void **state)
{
	struct ct_cancel_order in;
	memset(in.order_id, 'a', sizeof in.order_id);
	cJSON *json = ct_cancel_order_encode(&in);
	assert_non_null(json);
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "order_id"));
	assert_int_equal(strlen(s), sizeof in.order_id - 1);
	cJSON_Delete(json);
}

/* ---- threads ---- */

#define THREADS 8

static void *parse_in_thread(void *arg)
{
	cJSON *json = cJSON_Parse(order_json);
	intptr_t failures = 0;
	for (int i = 0; i < 200; i++) {
		struct ct_errors errs = { 0 };
		if (ct_order_placed_parse(json, NULL, &errs) != SHOP_OK)
			failures++;
	}
	cJSON_Delete(json);
	return (void *)failures;
}

/* Runs first, so the patterns are compiled by racing threads. */
static void patterns_compile_once_under_concurrent_first_use(void **state)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, parse_in_thread, NULL), 0);
	for (int i = 0; i < THREADS; i++) {
		void *failures;
		assert_int_equal(pthread_join(t[i], &failures), 0);
		assert_null(failures);
	}
}

/* ---- tables against the index ---- */

static cJSON *load_index(void)
{
	cJSON *index = load_json(INDEX_PATH);
	if (!index)
		fail_msg("cannot read %s", INDEX_PATH);
	return index;
}

static const char *str(const cJSON *obj, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
	return s ? s : "(missing)";
}

static void message_table_follows_the_index_in_order(void **state)
{
	cJSON *index = load_index();
	const cJSON *messages = cJSON_GetObjectItemCaseSensitive(index, "messages");
	assert_int_equal(cJSON_GetArraySize(messages), CT_MSG__COUNT);
	for (size_t i = 0; i < CT_MSG__COUNT; i++) {
		const cJSON *m = cJSON_GetArrayItem(messages, (int)i);
		const struct ct_message *c = &ct_messages[i];
		assert_int_equal(c->id, i);
		assert_string_equal(c->name, str(m, "name"));
		assert_string_equal(c->title, str(m, "title"));
		/* The key is the name for v1, <name>_v<N> for a later major. */
		if (c->version == 1) {
			assert_string_equal(c->key, c->name);
		} else {
			char want[128];
			snprintf(want, sizeof want, "%s_v%d", c->name, c->version);
			assert_string_equal(c->key, want);
		}
		assert_int_equal(c->kind, strcmp(str(m, "kind"), "event") == 0 ? CT_KIND_EVENT
									       : CT_KIND_COMMAND);
		assert_int_equal(c->version,
				 cJSON_GetObjectItemCaseSensitive(m, "version")->valueint);
		assert_string_equal(c->type, str(m, "type"));
		assert_string_equal(c->subject, str(m, "subject"));
		assert_string_equal(c->stream, str(m, "stream"));
		assert_string_equal(c->producer, str(m, "producer"));
		const cJSON *consumers = cJSON_GetObjectItemCaseSensitive(m, "consumers");
		assert_int_equal(c->n_consumers, cJSON_GetArraySize(consumers));
		for (size_t k = 0; k < c->n_consumers; k++)
			assert_string_equal(c->consumers[k],
					    cJSON_GetArrayItem(consumers, (int)k)->valuestring);
		assert_true(c->data_size > 0);
		assert_non_null(c->parse);
		assert_non_null(c->encode);
	}
	assert_int_equal(ct_messages[CT_MSG_ORDER_PLACED].data_size,
			 sizeof(struct ct_order_placed));
	cJSON_Delete(index);
}

static void every_message_is_found_by_subject_and_by_type(void **state)
{
	for (size_t i = 0; i < CT_MSG__COUNT; i++) {
		assert_ptr_equal(ct_message_by_subject(ct_messages[i].subject), &ct_messages[i]);
		assert_ptr_equal(ct_message_by_type(ct_messages[i].type), &ct_messages[i]);
	}
	assert_ptr_equal(ct_message_by_subject("orders.event.order_placed.v1"),
			 &ct_messages[CT_MSG_ORDER_PLACED]);
	assert_ptr_equal(ct_message_by_type("shop.gateway.place_order.v1"),
			 &ct_messages[CT_MSG_PLACE_ORDER]);
	/* Two majors of one message are two messages. */
	assert_ptr_equal(ct_message_by_subject("orders.event.order_placed.v2"),
			 &ct_messages[CT_MSG_ORDER_PLACED_V2]);
	assert_ptr_equal(ct_message_by_type("shop.gateway.place_order.v2"),
			 &ct_messages[CT_MSG_PLACE_ORDER_V2]);
}

static void unknown_subjects_and_types_find_nothing(void **state)
{
	assert_null(ct_message_by_subject("orders.event.order_placed.v3"));
	assert_null(ct_message_by_subject("orders.event.order_placed"));
	assert_null(
		ct_message_by_subject("shop.orders.order_placed.v1")); /* a type, not a subject */
	assert_null(ct_message_by_subject(""));
	assert_null(ct_message_by_subject(NULL));
	assert_null(ct_message_by_type("orders.event.order_placed.v1"));
	assert_null(ct_message_by_type("shop.orders.order_placed.v9"));
	assert_null(ct_message_by_type(NULL));
}

static void streams_follow_the_index(void **state)
{
	cJSON *index = load_index();
	const cJSON *streams = cJSON_GetObjectItemCaseSensitive(index, "streams");
	assert_int_equal(ct_n_streams, cJSON_GetArraySize(streams));
	for (size_t i = 0; i < ct_n_streams; i++) {
		const cJSON *s = cJSON_GetArrayItem(streams, (int)i);
		const cJSON *subjects = cJSON_GetObjectItemCaseSensitive(s, "subjects");
		assert_string_equal(ct_streams[i].name, str(s, "name"));
		assert_string_equal(ct_streams[i].owner, str(s, "owner"));
		assert_int_equal(ct_streams[i].n_subjects, cJSON_GetArraySize(subjects));
		for (size_t k = 0; k < ct_streams[i].n_subjects; k++)
			assert_string_equal(ct_streams[i].subjects[k],
					    cJSON_GetArrayItem(subjects, (int)k)->valuestring);
		const cJSON *retention = cJSON_GetObjectItemCaseSensitive(s, "retention");
		assert_int_equal(ct_streams[i].workqueue,
				 cJSON_IsString(retention) &&
					 strcmp(retention->valuestring, "workqueue") == 0);
		assert_int_equal(ct_streams[i].confidential,
				 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "confidential")));
	}
	cJSON_Delete(index);
}

/* The card token travels only on CARDS: a confidential work queue that
 * payments alone reads. */
static void the_card_goes_only_to_payments_on_a_confidential_work_queue(void **state)
{
	const struct ct_message *card = &ct_messages[CT_MSG_SUBMIT_CARD];
	assert_string_equal(card->stream, "CARDS");
	assert_int_equal(card->n_consumers, 1);
	assert_string_equal(card->consumers[0], "payments");
	bool found = false;
	for (size_t i = 0; i < ct_n_streams; i++) {
		if (strcmp(ct_streams[i].name, "CARDS") != 0) {
			assert_false(ct_streams[i].confidential);
			continue;
		}
		found = true;
		assert_true(ct_streams[i].workqueue);
		assert_true(ct_streams[i].confidential);
	}
	assert_true(found);
	/* No message meant to be sent carries it: the v2 structs have no
	 * payment member, which the upgrades below rely on. */
	assert_int_equal(sizeof(struct ct_order_placed_v2) < sizeof(struct ct_order_placed), true);
}

/* A stored v1 is read as v2: every kept field copied, the token gone. */
static void an_order_placed_v1_upgrades_to_v2_without_its_card_token(void **state)
{
	const struct ct_upgrade *up = ct_upgrade_find(CT_MSG_ORDER_PLACED);
	assert_non_null(up);
	assert_int_equal(up->to, CT_MSG_ORDER_PLACED_V2);
	assert_null(ct_upgrade_find(CT_MSG_ORDER_PLACED_V2));
	assert_null(ct_upgrade_find(CT_MSG_STOCK_RESERVED));

	cJSON *json = load_json(EXAMPLES_DIR "/order_placed/valid/two_lines.json");
	struct ct_order_placed *v1 = xcalloc(1, sizeof(*v1));
	struct ct_order_placed_v2 *v2 = xcalloc(1, sizeof(*v2));
	assert_int_equal(ct_order_placed_parse(json, v1, NULL), SHOP_OK);
	assert_true(v1->payment.card_token[0] != '\0');
	up->upgrade(v1, v2);
	cJSON *out = ct_order_placed_v2_encode(v2);
	/* What v2 says is exactly v1 without "payment". */
	cJSON_DeleteItemFromObjectCaseSensitive(json, "payment");
	assert_true(cJSON_Compare(json, out, true));
	char *text = cJSON_PrintUnformatted(out);
	assert_null(strstr(text, v1->payment.card_token));
	free(text);
	cJSON_Delete(out);
	cJSON_Delete(json);
	free(v2);
	free(v1);
}

static void a_place_order_v1_upgrades_to_v2_without_its_card_token(void **state)
{
	const struct ct_upgrade *up = ct_upgrade_find(CT_MSG_PLACE_ORDER);
	assert_non_null(up);
	assert_int_equal(up->to, CT_MSG_PLACE_ORDER_V2);
	cJSON *json = load_json(EXAMPLES_DIR "/place_order/valid/two_lines.json");
	struct ct_place_order *v1 = xcalloc(1, sizeof(*v1));
	struct ct_place_order_v2 *v2 = xcalloc(1, sizeof(*v2));
	assert_int_equal(ct_place_order_parse(json, v1, NULL), SHOP_OK);
	up->upgrade(v1, v2);
	cJSON *out = ct_place_order_v2_encode(v2);
	cJSON_DeleteItemFromObjectCaseSensitive(json, "payment");
	assert_true(cJSON_Compare(json, out, true));
	cJSON_Delete(out);
	cJSON_Delete(json);
	free(v2);
	free(v1);
}

static const struct ct_consumer *consumer_find(const char *service, const char *stream)
{
	for (size_t i = 0; i < ct_n_consumers; i++)
		if (strcmp(ct_consumers[i].service, service) == 0 &&
		    strcmp(ct_consumers[i].stream, stream) == 0)
			return &ct_consumers[i];
	return NULL;
}

static bool has_filter(const struct ct_consumer *c, const char *subject)
{
	for (size_t i = 0; i < c->n_filter_subjects; i++)
		if (strcmp(c->filter_subjects[i], subject) == 0)
			return true;
	return false;
}

/* Derives the durables from the raw index and compares both ways. */
static void consumers_are_exactly_the_durables_the_index_implies(void **state)
{
	cJSON *index = load_index();
	const cJSON *messages = cJSON_GetObjectItemCaseSensitive(index, "messages");
	const cJSON *m;
	size_t filters = 0;
	cJSON_ArrayForEach(m, messages)
	{
		const cJSON *service;
		cJSON_ArrayForEach(service, cJSON_GetObjectItemCaseSensitive(m, "consumers"))
		{
			const struct ct_consumer *c = consumer_find(service->valuestring,
								    str(m, "stream"));
			if (!c || !has_filter(c, str(m, "subject")))
				fail_msg("%s should filter %s on %s", service->valuestring,
					 str(m, "subject"), str(m, "stream"));
			filters++;
		}
	}
	size_t generated = 0;
	for (size_t i = 0; i < ct_n_consumers; i++) {
		const struct ct_consumer *c = &ct_consumers[i];
		assert_string_equal(c->durable, c->service);
		assert_non_null(consumer_find(c->service, c->stream));
		assert_ptr_equal(consumer_find(c->service, c->stream), c); /* one per pair */
		for (size_t k = 0; k < c->n_filter_subjects; k++) {
			const struct ct_message *msg = ct_message_by_subject(c->filter_subjects[k]);
			assert_non_null(msg);
			assert_string_equal(msg->stream, c->stream);
		}
		generated += c->n_filter_subjects;
	}
	assert_int_equal(generated, filters); /* nothing extra */
	cJSON_Delete(index);

	const char *orders_streams[] = { "GATEWAY", "INVENTORY", "PAYMENTS", "SHIPPING" };
	size_t orders = 0;
	for (size_t i = 0; i < ct_n_consumers; i++)
		orders += strcmp(ct_consumers[i].service, "orders") == 0;
	assert_int_equal(orders, 4);
	for (size_t i = 0; i < 4; i++)
		assert_non_null(consumer_find("orders", orders_streams[i]));
	assert_null(consumer_find("orders", "ORDERS"));
	const struct ct_consumer *gw = consumer_find("gateway", "INVENTORY");
	assert_non_null(gw);
	assert_int_equal(gw->n_filter_subjects, 4);
	assert_true(has_filter(gw, "inventory.event.stock_level_changed.v1"));
}

static void limits_are_named_after_the_schemas(void **state)
{
	assert_int_equal(CT_PLACE_ORDER_ITEMS_MAX, 50);
	assert_int_equal(CT_PLACE_ORDER_REQUEST_ITEMS_MAX, 50);
	assert_int_equal(CT_ADDRESS_NAME_MAX, 100);
	assert_int_equal(CT_EMAIL_MAX, 254);
	assert_int_equal(CT_ORDER_LINE_QUANTITY_MIN, 1);
	assert_int_equal(CT_ORDER_LINE_QUANTITY_MAX, 1000);
	assert_int_equal(CT_STOCK_REJECTED_SKUS_ITEM_MAX, 32);
	assert_true(CT_STOCK_LEVEL_CHANGED_REVISION_MAX == INT64_C(9007199254740991));
	assert_int_equal(sizeof(((struct ct_place_order *)0)->email), 4 * 254 + 1);
	assert_int_equal(sizeof(((struct ct_place_order *)0)->items) / sizeof(struct ct_order_line),
			 50);
}

/* ---- one JSON value, read whole ---- */

static void json_text_must_be_exactly_one_value(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1} garbage",
		"{\"a\":1}{\"a\":1}",
		"{\"a\":1}\x00",
		"[1] 2",
		"{\"a\":",
		"",
		"   ",
	};
	static const size_t bad_len[] = { 15, 14, 8, 5, 5, 0, 3 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ct_errors errs = { 0 };
		cJSON *root = NULL;
		assert_int_equal(ct_json_parse(bad[i], bad_len[i], &root, &errs), SHOP_E_INVALID);
		assert_null(root);
		assert_int_equal(errs.len, 1);
		assert_string_equal(errs.item[0].path, "");
	}
	struct ct_errors errs = { 0 };
	cJSON *root = NULL;
	const char *spaced = " \r\n\t{\"a\":1} \r\n\t";
	assert_int_equal(ct_json_parse(spaced, strlen(spaced), &root, &errs), SHOP_OK);
	assert_true(cJSON_IsObject(root));
	cJSON_Delete(root);
	/* The length is the limit, not a NUL: the valid prefix of a longer buffer. */
	root = NULL;
	assert_int_equal(ct_json_parse("{\"a\":1} x", 7, &root, &errs), SHOP_OK);
	cJSON_Delete(root);
	assert_int_equal(errs.len, 0);
}

static void json_strings_holding_nul_are_rejected(void **state)
{
	/* cJSON would end "ab\u0000c" at "ab"; another reader sees four characters. */
	const char *nul = "{\"name\":\"ab\\u0000c\"}";
	struct ct_errors errs = { 0 };
	cJSON *root = NULL;
	assert_int_equal(ct_json_parse(nul, strlen(nul), &root, &errs), SHOP_E_INVALID);
	assert_null(root);
	assert_error(&errs, "", "has a string holding a NUL character (\\u0000)");
	/* An escaped backslash followed by "u0000" is six ordinary characters. */
	const char *text = "{\"name\":\"a\\\\u0000\",\"q\":\"\\\"\\\\\"}";
	assert_int_equal(ct_json_parse(text, strlen(text), &root, NULL), SHOP_OK);
	assert_string_equal(cJSON_GetObjectItem(root, "name")->valuestring, "a\\u0000");
	cJSON_Delete(root);
}

/* ---- the envelope ---- */

static void envelope_fill(struct evt_envelope *env)
{
	memset(env, 0, sizeof(*env));
	snprintf(env->id, sizeof(env->id), "%s", ORDER_ID);
	snprintf(env->source, sizeof(env->source), "/shop/gateway");
	snprintf(env->type, sizeof(env->type), "shop.gateway.cancel_order.v1");
	snprintf(env->time, sizeof(env->time), "2026-11-22T10:00:00.123Z");
	snprintf(env->subject, sizeof(env->subject), "%s", ORDER_ID);
	snprintf(env->correlationid, sizeof(env->correlationid), "req-1");
	snprintf(env->causationid, sizeof(env->causationid), "req-1");
	snprintf(env->traceparent, sizeof(env->traceparent),
		 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

static void envelope_with_a_duplicate_attribute_is_rejected(void **state)
{
	struct evt_envelope env;
	envelope_fill(&env);
	cJSON *data = cJSON_CreateObject();
	char *good = evt_envelope_encode(&env, data);
	cJSON_Delete(data);
	/* The same envelope with a second, different subject after the first. */
	size_t len = strlen(good);
	char dup[2048];
	assert_true(len + 64 < sizeof(dup));
	snprintf(dup, sizeof(dup), "%.*s,\"subject\":\"other\"}", (int)(len - 1), good);
	struct ct_errors errs = { 0 };
	cJSON *root = NULL;
	assert_int_equal(evt_envelope_parse(good, len, &root, &env, &errs), SHOP_OK);
	cJSON_Delete(root);
	root = NULL;
	assert_int_equal(evt_envelope_parse(dup, strlen(dup), &root, &env, &errs), SHOP_E_INVALID);
	assert_null(root);
	assert_error(&errs, "/subject", "must appear only once");

	struct ct_errors trailing_errs = { 0 };
	snprintf(dup, sizeof(dup), "%s garbage", good);
	assert_int_equal(evt_envelope_parse(dup, strlen(dup), &root, &env, &trailing_errs),
			 SHOP_E_INVALID);
	assert_int_equal(trailing_errs.len, 1);
	assert_string_equal(trailing_errs.item[0].path, "");
	free(good);
}

static void envelope_build_refuses_what_a_consumer_would_reject(void **state)
{
	cJSON *data = cJSON_CreateObject();
	struct evt_envelope env;
	char *payload = NULL;
	struct ct_errors errs = { 0 };

	envelope_fill(&env);
	assert_int_equal(evt_envelope_build(&env, data, &payload, &errs), SHOP_OK);
	assert_non_null(payload);
	free(payload);
	payload = NULL;

	/* The header the issue reproduced with: uppercase hex. */
	snprintf(env.traceparent, sizeof(env.traceparent),
		 "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");
	assert_int_equal(evt_envelope_build(&env, data, &payload, &errs), SHOP_E_INVALID);
	assert_null(payload);
	assert_error(&errs, "/traceparent", "must be a W3C traceparent");

	struct ct_errors errs2 = { 0 };
	envelope_fill(&env);
	env.subject[0] = '\0';
	assert_int_equal(evt_envelope_build(&env, data, &payload, &errs2), SHOP_E_INVALID);
	assert_null(payload);
	assert_string_equal(errs2.item[0].path, "/subject");
	cJSON_Delete(data);
}

/* ---- main: the focused cases, then one case per example ---- */

static const struct CMUnitTest focused[] = {
	cmocka_unit_test(patterns_compile_once_under_concurrent_first_use),
	cmocka_unit_test(every_example_directory_has_a_codec),
	cmocka_unit_test(json_text_must_be_exactly_one_value),
	cmocka_unit_test(json_strings_holding_nul_are_rejected),
	cmocka_unit_test(envelope_with_a_duplicate_attribute_is_rejected),
	cmocka_unit_test(envelope_build_refuses_what_a_consumer_would_reject),
	cmocka_unit_test(every_message_and_type_has_valid_and_invalid_examples),
	cmocka_unit_test(order_with_three_bad_fields_reports_all_three_paths),
	cmocka_unit_test(bad_elements_of_one_array_are_all_reported),
	cmocka_unit_test(missing_wrong_and_unknown_fields_have_readable_problems),
	cmocka_unit_test(error_limit_drops_rather_than_overflows),
	cmocka_unit_test(long_paths_and_problems_are_cut_not_overflowed),
	cmocka_unit_test(unknown_keys_are_reported_as_escaped_utf8_pointers),
	cmocka_unit_test(duplicate_keys_are_rejected),
	cmocka_unit_test(non_object_input_is_rejected_at_the_root),
	cmocka_unit_test(failed_parse_leaves_out_untouched_and_errs_may_be_null),
	cmocka_unit_test(multibyte_name_of_max_code_points_is_accepted_and_one_more_is_rejected),
	cmocka_unit_test(malformed_utf8_is_rejected),
	cmocka_unit_test(enum_and_pattern_problems_name_the_rule),
	cmocka_unit_test(patterns_must_match_the_whole_value),
	cmocka_unit_test(date_times_follow_rfc_3339),
	cmocka_unit_test(integers_are_exact_and_within_their_bounds),
	cmocka_unit_test(encoding_emits_exactly_the_schema_fields),
	cmocka_unit_test(encoding_an_unterminated_string_stays_inside_the_field),
	cmocka_unit_test(message_table_follows_the_index_in_order),
	cmocka_unit_test(every_message_is_found_by_subject_and_by_type),
	cmocka_unit_test(unknown_subjects_and_types_find_nothing),
	cmocka_unit_test(streams_follow_the_index),
	cmocka_unit_test(consumers_are_exactly_the_durables_the_index_implies),
	cmocka_unit_test(the_card_goes_only_to_payments_on_a_confidential_work_queue),
	cmocka_unit_test(an_order_placed_v1_upgrades_to_v2_without_its_card_token),
	cmocka_unit_test(a_place_order_v1_upgrades_to_v2_without_its_card_token),
	cmocka_unit_test(limits_are_named_after_the_schemas),
};

/* Appends one case per example file of every directory that has a codec. */
static size_t add_example_cases(struct CMUnitTest **tests, size_t n, struct example **examples,
				size_t *n_examples)
{
	size_t n_dirs = 0;
	char **dirs = list_dir(EXAMPLES_DIR, false, &n_dirs);
	const char *kinds[] = { "valid", "invalid" };
	struct codec c;
	for (size_t d = 0; dirs && d < n_dirs; d++) {
		if (!codec_find(dirs[d], &c))
			continue; /* every_example_directory_has_a_codec reports strays */
		for (size_t k = 0; k < 2; k++) {
			char *dir = xasprintf("%s/%s/%s", EXAMPLES_DIR, dirs[d], kinds[k]);
			size_t n_files = 0;
			char **files = list_dir(dir, true, &n_files);
			for (size_t f = 0; files && f < n_files; f++) {
				struct example ex = { .dir = xstrdup(dirs[d]),
						      .path = xasprintf("%s/%s", dir, files[f]) };
				if (k == 0) {
					ex.test_name = xasprintf(
						"examples/%s/valid/%s is accepted and round-trips",
						dirs[d], files[f]);
				} else {
					cJSON *doc = load_json(ex.path);
					const char *at = cJSON_GetStringValue(
						cJSON_GetObjectItemCaseSensitive(doc,
										 "expect_error_at"));
					ex.test_name = xasprintf(
						"examples/%s/invalid/%s is rejected at %s", dirs[d],
						files[f],
						at ? (*at ? at : "the root")
						   : "(no expect_error_at)");
					cJSON_Delete(doc);
				}
				*examples = xrealloc(*examples,
						     (*n_examples + 1) * sizeof **examples);
				(*examples)[(*n_examples)++] = ex;
				*tests = xrealloc(*tests, (n + 1) * sizeof **tests);
				(*tests)[n++] = (struct CMUnitTest){
					.name = NULL,
					.test_func =
						k == 0 ? valid_example_is_accepted_and_round_trips
						       : invalid_example_is_rejected_at_its_path,
				};
			}
			free_list(files, n_files);
			free(dir);
		}
	}
	free_list(dirs, n_dirs);
	return n;
}

int main(void)
{
	size_t n_focused = sizeof focused / sizeof focused[0];
	struct CMUnitTest *tests = xmalloc(n_focused * sizeof *tests);
	struct example *examples = NULL;
	size_t n_examples = 0;
	memcpy(tests, focused, sizeof focused);
	size_t n = add_example_cases(&tests, n_focused, &examples, &n_examples);
	/* examples may have moved while growing: point the cases at them now. */
	for (size_t i = 0; i < n_examples; i++) {
		tests[n_focused + i].name = examples[i].test_name;
		tests[n_focused + i].initial_state = &examples[i];
	}

	int failed = _cmocka_run_group_tests("contracts", tests, n, NULL, NULL);

	for (size_t i = 0; i < n_examples; i++) {
		free(examples[i].dir);
		free(examples[i].path);
		free(examples[i].test_name);
	}
	free(examples);
	free(tests);
	return failed;
}
