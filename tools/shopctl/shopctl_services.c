/*
 * shopctl_services.c - `shopctl services`: every instance the NATS service
 * registry finds, with its version, endpoints and readiness.
 *
 * Discovery is the micro protocol's own: one $SRV.PING to every service,
 * gathering the replies that arrive within SHOPCTL_DISCOVERY_WAIT_MS (an
 * instance that has not answered by then is not listed: it is gone, or its
 * connection is). Each instance found is then asked, by its name and id, for
 * its $SRV.INFO (the endpoints) and on its status endpoint for its readiness
 * (the JSON of its /readyz); an instance that answers PING but not those in
 * time is listed with status "unknown". The parsing and formatting are pure
 * functions, apart from the requests.
 */
#include "shopctl.h"

#include "bus/bus.h"
#include "core/config.h"
#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The micro protocol's reply types (nats.c names them in nats.h). */
#define SHOPCTL_PING_TYPE MICRO_PING_RESPONSE_TYPE
#define SHOPCTL_INFO_TYPE MICRO_INFO_RESPONSE_TYPE

static char *shopctl_json_string(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) && v->valuestring[0] ? xstrdup(v->valuestring) : NULL;
}

shop_status shopctl_instance_parse(const char *json, const char *type, struct shopctl_instance *ret)
{
	shop_status st = SHOP_E_INVALID;
	struct shopctl_instance inst = { 0 };
	cJSON *root = cJSON_Parse(json);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
	if (!cJSON_IsString(t) || strcmp(t->valuestring, type) != 0)
		goto out;
	inst.service = shopctl_json_string(root, "name");
	inst.id = shopctl_json_string(root, "id");
	inst.version = shopctl_json_string(root, "version");
	if (!inst.service || !inst.id || !inst.version)
		goto out;
	const cJSON *ep = NULL;
	cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(root, "endpoints"))
	{
		char *name = shopctl_json_string(ep, "name");
		if (!name)
			continue;
		if (inst.n_endpoints == SHOPCTL_ENDPOINTS_MAX) {
			free(name);
			break;
		}
		inst.endpoints[inst.n_endpoints++] = (struct shopctl_endpoint){
			.name = name, .subject = shopctl_json_string(ep, "subject")
		};
	}
	*ret = inst;
	inst = (struct shopctl_instance){ 0 };
	st = SHOP_OK;
out:
	shopctl_instance_release(&inst);
	cJSON_Delete(root);
	return st;
}

static void shopctl_endpoints_release(struct shopctl_instance *inst)
{
	for (size_t i = 0; i < inst->n_endpoints; i++) {
		free(inst->endpoints[i].name);
		free(inst->endpoints[i].subject);
	}
	inst->n_endpoints = 0;
}

void shopctl_instance_release(struct shopctl_instance *inst)
{
	if (!inst)
		return;
	free(inst->service);
	free(inst->id);
	free(inst->version);
	shopctl_endpoints_release(inst);
	*inst = (struct shopctl_instance){ 0 };
}

void shopctl_instance_take_endpoints(struct shopctl_instance *dst, struct shopctl_instance *src)
{
	shopctl_endpoints_release(dst);
	memcpy(dst->endpoints, src->endpoints, sizeof(dst->endpoints));
	dst->n_endpoints = src->n_endpoints;
	src->n_endpoints = 0;
}

const char *shopctl_status_subject(const struct shopctl_instance *inst)
{
	for (size_t i = 0; i < inst->n_endpoints; i++)
		if (strcmp(inst->endpoints[i].name, BUS_SERVICE_STATUS_ENDPOINT) == 0)
			return inst->endpoints[i].subject;
	return NULL;
}

enum shopctl_ready shopctl_ready_parse(const char *json)
{
	enum shopctl_ready r = SHOPCTL_UNKNOWN;
	cJSON *root = cJSON_Parse(json);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "status");
	if (cJSON_IsString(s))
		r = strcmp(s->valuestring, "ready") == 0 ? SHOPCTL_READY : SHOPCTL_NOT_READY;
	cJSON_Delete(root);
	return r;
}

const char *shopctl_ready_name(enum shopctl_ready r)
{
	switch (r) {
	case SHOPCTL_READY:
		return "ready";
	case SHOPCTL_NOT_READY:
		return "not_ready";
	default:
		return "unknown";
	}
}

static int shopctl_instance_cmp(const void *a, const void *b)
{
	const struct shopctl_instance *x = a, *y = b;
	int c = strcmp(x->service, y->service);
	return c ? c : strcmp(x->id, y->id);
}

void shopctl_instances_sort(struct shopctl_instance *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), shopctl_instance_cmp);
}

char *shopctl_instances_text(const struct shopctl_instance *v, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		abort(); /* out of memory, as xmalloc would */
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%-14s %-22s %-8s ", v[i].service, v[i].id, v[i].version);
		for (size_t e = 0; e < v[i].n_endpoints; e++)
			fprintf(f, "%s%s", e ? "," : "", v[i].endpoints[e].name);
		fprintf(f, "%s %s\n", v[i].n_endpoints ? "" : "-", shopctl_ready_name(v[i].ready));
	}
	fclose(f);
	return text;
}

char *shopctl_instances_json(const struct shopctl_instance *v, size_t n)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(root, "instances");
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "service", v[i].service);
		cJSON_AddStringToObject(o, "id", v[i].id);
		cJSON_AddStringToObject(o, "version", v[i].version);
		cJSON *eps = cJSON_AddArrayToObject(o, "endpoints");
		for (size_t e = 0; e < v[i].n_endpoints; e++)
			cJSON_AddItemToArray(eps, cJSON_CreateString(v[i].endpoints[e].name));
		cJSON_AddStringToObject(o, "status", shopctl_ready_name(v[i].ready));
		cJSON_AddItemToArray(list, o);
	}
	char *json = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return json;
}

/* Asks one instance for its endpoints, then its status endpoint for its
 * readiness; what does not answer in time stays unknown. */
static void shopctl_instance_query(struct bus *bus, struct shopctl_instance *inst)
{
	char subject[BUS_SERVICE_SUBJECT_MAX];
	char *reply = NULL;
	struct shopctl_instance info = { 0 };
	snprintf(subject, sizeof(subject), "$SRV.INFO.%s.%s", inst->service, inst->id);
	if (bus_request(bus, subject, SHOPCTL_INFO_TIMEOUT_MS, &reply) == SHOP_OK &&
	    shopctl_instance_parse(reply, SHOPCTL_INFO_TYPE, &info) == SHOP_OK)
		shopctl_instance_take_endpoints(inst, &info);
	shopctl_instance_release(&info);
	free(reply);
	reply = NULL;
	const char *status = shopctl_status_subject(inst);
	if (status && bus_request(bus, status, SHOPCTL_STATUS_TIMEOUT_MS, &reply) == SHOP_OK)
		inst->ready = shopctl_ready_parse(reply);
	free(reply);
}

int shopctl_services(int json)
{
	int rc = 1;
	struct bus *bus = NULL;
	char **replies = NULL;
	size_t n_replies = 0, n = 0;
	struct shopctl_instance *v = xcalloc(SHOPCTL_INSTANCES_MAX, sizeof(*v));
	const char *url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");
	if (bus_connect(url, "shopctl", &bus) != SHOP_OK ||
	    !bus_wait_connected(bus, SHOPCTL_CONNECT_WAIT_MS)) {
		fprintf(stderr, "shopctl: cannot connect to %s\n", url);
		goto out;
	}
	shop_status st = bus_request_gather(bus, "$SRV.PING", SHOPCTL_DISCOVERY_WAIT_MS,
					    SHOPCTL_INSTANCES_MAX, &replies, &n_replies);
	if (st != SHOP_OK) {
		fprintf(stderr, "shopctl: $SRV.PING failed: %s\n", shop_status_name(st));
		goto out;
	}
	for (size_t i = 0; i < n_replies; i++)
		if (shopctl_instance_parse(replies[i], SHOPCTL_PING_TYPE, &v[n]) == SHOP_OK)
			n++;
	for (size_t i = 0; i < n; i++)
		shopctl_instance_query(bus, &v[i]);
	shopctl_instances_sort(v, n);
	char *text = json ? shopctl_instances_json(v, n) : shopctl_instances_text(v, n);
	fputs(text, stdout);
	if (json)
		fputc('\n', stdout);
	free(text);
	if (n == 0)
		fprintf(stderr, "shopctl: no service instance answered within %d ms\n",
			SHOPCTL_DISCOVERY_WAIT_MS);
	rc = n ? 0 : 1;
out:
	for (size_t i = 0; i < n; i++)
		shopctl_instance_release(&v[i]);
	free(v);
	bus_replies_free(replies, n_replies);
	bus_close(bus);
	return rc;
}
