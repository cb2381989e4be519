/*
 * envelope.c - CloudEvents 1.0 structured-mode envelope (see envelope.h).
 *
 * The envelope is the one JSON document not produced by the contract
 * generator: its `data` member is any message, which the generator's
 * subset of JSON Schema cannot express. The checks here mirror
 * contracts/envelope.v1.json, and test_envelope runs the envelope examples
 * from contracts/ through them so the two cannot drift apart.
 */
#include "envelope.h"

#include "core/xalloc.h"
#include "ct_runtime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool evt_time_valid(const char *s)
{
	/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t n = strlen(s);
	if (n < sizeof(shape))
		return false;
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return false;
	}
	const char *p = s + sizeof(shape) - 1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0';
	if ((*p == '+' || *p == '-') && strlen(p) == 6)
		return isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
		       p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]);
	return false;
}

static bool evt_traceparent_valid(const char *s)
{
	if (strlen(s) != IDS_TRACEPARENT_SIZE - 1 || strncmp(s, "00-", 3) != 0 || s[35] != '-' ||
	    s[52] != '-' || s[53] != '0' || (s[54] != '0' && s[54] != '1'))
		return false;
	for (int i = 3; i < 52; i++) {
		if (i == 35)
			continue;
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	}
	return true;
}

/* Copies a required string attribute, checking its length; records an error otherwise. */
static void evt_take(const cJSON *root, const char *name, char *out, size_t size, size_t min,
		     struct ct_errors *errs)
{
	char path[CT_PATH_MAX];
	snprintf(path, sizeof(path), "/%s", name);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
	out[0] = '\0';
	if (!v) {
		ct_errors_add(errs, path, "is required");
		return;
	}
	if (!cJSON_IsString(v)) {
		ct_errors_add(errs, path, "must be a string");
		return;
	}
	size_t len = strlen(v->valuestring);
	if (len < min || len >= size) {
		ct_errors_add(errs, path, "must be %zu to %zu characters", min, size - 1);
		return;
	}
	memcpy(out, v->valuestring, len + 1);
}

static const char *const evt_attributes[] = {
	"specversion",     "id",   "source",        "type",        "time",        "subject",
	"datacontenttype", "data", "correlationid", "causationid", "traceparent",
};

shop_status evt_envelope_parse(const char *json, size_t len, cJSON **ret_root,
			       struct evt_envelope *env, struct ct_errors *errs)
{
	shop_status st = SHOP_E_INVALID;
	size_t errors_before = errs->len + errs->dropped;
	cJSON *root = NULL;

	if (len > EVT_MESSAGE_MAX) {
		ct_errors_add(errs, "", "message is larger than %d bytes", EVT_MESSAGE_MAX);
		goto out;
	}
	if (ct_json_parse(json, len, &root, errs) != SHOP_OK)
		goto out;
	if (!cJSON_IsObject(root)) {
		ct_errors_add(errs, "", "is not a JSON object");
		goto out;
	}
	memset(env, 0, sizeof(*env));

	char specversion[8];
	evt_take(root, "specversion", specversion, sizeof(specversion), 1, errs);
	if (specversion[0] && strcmp(specversion, EVT_SPECVERSION) != 0)
		ct_errors_add(errs, "/specversion", "must be \"%s\"", EVT_SPECVERSION);
	evt_take(root, "id", env->id, sizeof(env->id), 1, errs);
	if (env->id[0] && !ids_uuid_valid(env->id))
		ct_errors_add(errs, "/id", "must be a UUID");
	evt_take(root, "source", env->source, sizeof(env->source), 1, errs);
	evt_take(root, "type", env->type, sizeof(env->type), 1, errs);
	evt_take(root, "time", env->time, sizeof(env->time), 1, errs);
	if (env->time[0] && !evt_time_valid(env->time))
		ct_errors_add(errs, "/time", "must be an RFC 3339 date-time");
	evt_take(root, "subject", env->subject, sizeof(env->subject), 1, errs);
	char ctype[sizeof(EVT_DATACONTENTTYPE)];
	evt_take(root, "datacontenttype", ctype, sizeof(ctype), 1, errs);
	if (ctype[0] && strcmp(ctype, EVT_DATACONTENTTYPE) != 0)
		ct_errors_add(errs, "/datacontenttype", "must be \"%s\"", EVT_DATACONTENTTYPE);
	evt_take(root, "correlationid", env->correlationid, sizeof(env->correlationid), 1, errs);
	evt_take(root, "causationid", env->causationid, sizeof(env->causationid), 1, errs);
	evt_take(root, "traceparent", env->traceparent, sizeof(env->traceparent), 1, errs);
	if (env->traceparent[0] && !evt_traceparent_valid(env->traceparent))
		ct_errors_add(errs, "/traceparent", "must be a W3C traceparent");

	env->data = cJSON_GetObjectItemCaseSensitive(root, "data");
	if (!env->data)
		ct_errors_add(errs, "/data", "is required");
	else if (!cJSON_IsObject(env->data))
		ct_errors_add(errs, "/data", "must be an object");

	for (const cJSON *m = root->child; m; m = m->next) {
		bool known = false;
		for (size_t i = 0; i < sizeof(evt_attributes) / sizeof(evt_attributes[0]); i++)
			known = known || strcmp(m->string, evt_attributes[i]) == 0;
		/* cJSON keeps both copies and the lookups above read the first;
		 * another reader may take the last, so a duplicate is malformed.
		 * Reported once, at its second appearance. */
		bool again = false;
		for (const cJSON *p = root->child; p != m && !again; p = p->next)
			again = strcmp(p->string, m->string) == 0;
		/* The name is the sender's: escaped and made valid UTF-8, as
		 * the codecs do, since it goes into the dead-letter reason and
		 * the log (fuzz_envelope found raw bytes there). */
		char path[CT_PATH_MAX];
		ct_pointer_of_key(m->string, path);
		if (!known)
			ct_errors_add(errs, path, "is not allowed");
		else if (again)
			ct_errors_add(errs, path, "must appear only once");
	}

	if (errs->len + errs->dropped != errors_before)
		goto out;
	*ret_root = root;
	root = NULL;
	st = SHOP_OK;
out:
	cJSON_Delete(root);
	return st;
}

shop_status evt_envelope_build(const struct evt_envelope *env, const cJSON *data,
			       char **ret_payload, struct ct_errors *errs)
{
	char *payload = evt_envelope_encode(env, data);
	cJSON *root = NULL;
	struct evt_envelope check;
	shop_status st = evt_envelope_parse(payload, strlen(payload), &root, &check, errs);
	cJSON_Delete(root);
	if (st != SHOP_OK) {
		free(payload);
		return st;
	}
	*ret_payload = payload;
	return SHOP_OK;
}

char *evt_envelope_encode(const struct evt_envelope *env, const cJSON *data)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "specversion", EVT_SPECVERSION);
	cJSON_AddStringToObject(o, "id", env->id);
	cJSON_AddStringToObject(o, "source", env->source);
	cJSON_AddStringToObject(o, "type", env->type);
	cJSON_AddStringToObject(o, "time", env->time);
	cJSON_AddStringToObject(o, "subject", env->subject);
	cJSON_AddStringToObject(o, "datacontenttype", EVT_DATACONTENTTYPE);
	cJSON_AddStringToObject(o, "correlationid", env->correlationid);
	cJSON_AddStringToObject(o, "causationid", env->causationid);
	cJSON_AddStringToObject(o, "traceparent", env->traceparent);
	cJSON_AddItemToObject(o, "data", cJSON_Duplicate(data, true));
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}
