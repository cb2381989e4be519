/*
 * envelope.h - the CloudEvents 1.0 structured-mode envelope every message
 * travels in (contracts/envelope.v1.json is its schema).
 *
 * Beyond the required attributes, every event carries `subject` (the order id
 * for order events, the SKU for stock levels), `correlationid` (one id for
 * everything one request caused), `causationid` (the id of the message that
 * caused this one) and `traceparent` (W3C trace context), so one order can be
 * followed across services in logs and in the gateway's timeline.
 */
#ifndef SHOP_EVT_ENVELOPE_H
#define SHOP_EVT_ENVELOPE_H

#include "contracts_gen.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/status.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define EVT_SPECVERSION "1.0"
#define EVT_DATACONTENTTYPE "application/json"
#define EVT_ATTR_MAX 128             /* source, type and subject, in bytes */
#define EVT_REF_MAX 64               /* correlationid and causationid, in bytes */
#define EVT_TIME_MAX 40              /* RFC 3339 with offset and nanoseconds fits */
#define EVT_MESSAGE_MAX (256 * 1024) /* largest envelope accepted from the bus */

struct evt_envelope {
	char id[IDS_UUID_SIZE];
	char source[EVT_ATTR_MAX + 1];
	char type[EVT_ATTR_MAX + 1];
	char time[EVT_TIME_MAX + 1];
	char subject[EVT_ATTR_MAX + 1];
	char correlationid[EVT_REF_MAX + 1];
	char causationid[EVT_REF_MAX + 1];
	char traceparent[IDS_TRACEPARENT_SIZE];
	const cJSON *data; /* borrowed from the parsed document */
};

/* Parses and validates an envelope: exactly one JSON object (ct_json_parse),
 * every attribute once. On success *ret_root owns the document (env->data
 * points into it; free with cJSON_Delete). Errors name the attribute's JSON
 * pointer. */
shop_status evt_envelope_parse(const char *json, size_t len, cJSON **ret_root,
			       struct evt_envelope *env, struct ct_errors *errs);
/* Serialises env with data (not taken) and reads the result back with
 * evt_envelope_parse, as every consumer will: on success *ret_payload is
 * the malloc'd JSON; SHOP_E_INVALID (with the errors) when a consumer would
 * dead-letter it, so a producer never writes such an envelope. */
shop_status evt_envelope_build(const struct evt_envelope *env, const cJSON *data,
			       char **ret_payload, struct ct_errors *errs);
/* Serialises env with data (not taken). Returns a malloc'd string. */
char *evt_envelope_encode(const struct evt_envelope *env, const cJSON *data);

#endif
