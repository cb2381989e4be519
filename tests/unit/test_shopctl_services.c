/*
 * test_shopctl_services.c - `shopctl services`' pure parts: parsing the registry's
 * $SRV.PING and $SRV.INFO replies and a status answer, sorting, and the
 * text and JSON listings (tools/shopctl/shopctl_services.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../tools/shopctl/shopctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PING_TYPE "io.nats.micro.v1.ping_response"
#define INFO_TYPE "io.nats.micro.v1.info_response"

/* A reply as nats.c 3.10's micro library writes it. */
static const char info_reply[] =
	"{\"type\":\"io.nats.micro.v1.info_response\",\"name\":\"payments\","
	"\"version\":\"0.9.0\",\"id\":\"HY8T1YFE6QURP3TFP1SZDG\",\"metadata\":{},"
	"\"description\":\"shop service payments\",\"endpoints\":[{\"name\":\"status\","
	"\"subject\":\"shop.payments.HY8T1YFE6QURP3TFP1SZDG.status\",\"queue_group\":\"q\"}]}";

static struct shopctl_instance instance_of(const char *service, const char *id,
					   enum shopctl_ready ready)
{
	char json[512];
	struct shopctl_instance inst;
	snprintf(json, sizeof(json),
		 "{\"type\":\"" PING_TYPE "\",\"name\":\"%s\",\"id\":\"%s\",\"version\":\"1.2.3\"}",
		 service, id);
	assert_int_equal(shopctl_instance_parse(json, PING_TYPE, &inst), SHOP_OK);
	inst.ready = ready;
	return inst;
}

static void info_reply_gives_name_id_version_and_the_status_subject(void **state)
{
	(void)state;
	struct shopctl_instance inst;
	assert_int_equal(shopctl_instance_parse(info_reply, INFO_TYPE, &inst), SHOP_OK);
	assert_string_equal(inst.service, "payments");
	assert_string_equal(inst.id, "HY8T1YFE6QURP3TFP1SZDG");
	assert_string_equal(inst.version, "0.9.0");
	assert_int_equal(inst.n_endpoints, 1);
	assert_string_equal(inst.endpoints[0].name, "status");
	assert_string_equal(shopctl_status_subject(&inst),
			    "shop.payments.HY8T1YFE6QURP3TFP1SZDG.status");
	assert_int_equal(inst.ready, SHOPCTL_UNKNOWN);
	shopctl_instance_release(&inst);
}

static void reply_of_another_type_or_without_an_id_is_refused(void **state)
{
	(void)state;
	struct shopctl_instance inst = { 0 };
	assert_int_equal(shopctl_instance_parse(info_reply, PING_TYPE, &inst), SHOP_E_INVALID);
	assert_int_equal(shopctl_instance_parse("{\"type\":\"" PING_TYPE "\",\"name\":\"orders\","
						"\"version\":\"1.0.0\"}",
						PING_TYPE, &inst),
			 SHOP_E_INVALID);
	assert_int_equal(shopctl_instance_parse("not json", PING_TYPE, &inst), SHOP_E_INVALID);
	assert_int_equal(shopctl_instance_parse("[1]", PING_TYPE, &inst), SHOP_E_INVALID);
	assert_null(inst.service);
}

static void endpoints_past_the_limit_are_dropped(void **state)
{
	(void)state;
	char json[4096] = "{\"type\":\"" INFO_TYPE
			  "\",\"name\":\"a\",\"id\":\"b\",\"version\":\"1\","
			  "\"endpoints\":[";
	for (int i = 0; i < SHOPCTL_ENDPOINTS_MAX + 3; i++) {
		char ep[64];
		snprintf(ep, sizeof(ep), "%s{\"name\":\"e%d\"}", i ? "," : "", i);
		strncat(json, ep, sizeof(json) - strlen(json) - 1);
	}
	strncat(json, "]}", sizeof(json) - strlen(json) - 1);
	struct shopctl_instance inst;
	assert_int_equal(shopctl_instance_parse(json, INFO_TYPE, &inst), SHOP_OK);
	assert_int_equal(inst.n_endpoints, SHOPCTL_ENDPOINTS_MAX);
	assert_null(shopctl_status_subject(&inst));
	shopctl_instance_release(&inst);
}

static void status_answer_is_ready_only_when_it_says_so(void **state)
{
	(void)state;
	assert_int_equal(shopctl_ready_parse("{\"service\":\"orders\",\"status\":\"ready\"}"),
			 SHOPCTL_READY);
	assert_int_equal(shopctl_ready_parse("{\"status\":\"not_ready\",\"database\":false}"),
			 SHOPCTL_NOT_READY);
	assert_int_equal(shopctl_ready_parse("{\"database\":true}"), SHOPCTL_UNKNOWN);
	assert_int_equal(shopctl_ready_parse("garbage"), SHOPCTL_UNKNOWN);
	assert_string_equal(shopctl_ready_name(SHOPCTL_NOT_READY), "not_ready");
}

static void listing_is_sorted_by_service_then_id_one_line_each(void **state)
{
	(void)state;
	struct shopctl_instance v[3] = {
		instance_of("payments", "ZZZ", SHOPCTL_READY),
		instance_of("gateway", "QQQ", SHOPCTL_NOT_READY),
		instance_of("payments", "AAA", SHOPCTL_UNKNOWN),
	};
	struct shopctl_instance info;
	assert_int_equal(shopctl_instance_parse(info_reply, INFO_TYPE, &info), SHOP_OK);
	shopctl_instance_take_endpoints(&v[0], &info);
	assert_int_equal(info.n_endpoints, 0);
	shopctl_instance_release(&info);

	shopctl_instances_sort(v, 3);
	char *text = shopctl_instances_text(v, 3);
	assert_string_equal(text, "gateway        QQQ                    1.2.3    - not_ready\n"
				  "payments       AAA                    1.2.3    - unknown\n"
				  "payments       ZZZ                    1.2.3    status ready\n");
	free(text);

	char *json = shopctl_instances_json(v, 3);
	assert_string_equal(
		json,
		"{\"instances\":["
		"{\"service\":\"gateway\",\"id\":\"QQQ\",\"version\":\"1.2.3\",\"endpoints\":[],"
		"\"status\":\"not_ready\"},"
		"{\"service\":\"payments\",\"id\":\"AAA\",\"version\":\"1.2.3\",\"endpoints\":[],"
		"\"status\":\"unknown\"},"
		"{\"service\":\"payments\",\"id\":\"ZZZ\",\"version\":\"1.2.3\","
		"\"endpoints\":[\"status\"],\"status\":\"ready\"}]}");
	free(json);
	for (size_t i = 0; i < 3; i++)
		shopctl_instance_release(&v[i]);
}

static void empty_listing_is_empty_text_and_an_empty_array(void **state)
{
	(void)state;
	char *text = shopctl_instances_text(NULL, 0);
	assert_string_equal(text, "");
	free(text);
	char *json = shopctl_instances_json(NULL, 0);
	assert_string_equal(json, "{\"instances\":[]}");
	free(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(info_reply_gives_name_id_version_and_the_status_subject),
		cmocka_unit_test(reply_of_another_type_or_without_an_id_is_refused),
		cmocka_unit_test(endpoints_past_the_limit_are_dropped),
		cmocka_unit_test(status_answer_is_ready_only_when_it_says_so),
		cmocka_unit_test(listing_is_sorted_by_service_then_id_one_line_each),
		cmocka_unit_test(empty_listing_is_empty_text_and_an_empty_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
