/*
 * fuzz_envelope.c - the CloudEvents envelope as every consumer reads it.
 *
 * The input is a whole NATS payload: evt_envelope_parse, then, for a known
 * type, the data through that message's parser, as the runtime dispatches
 * it. An accepted envelope must survive the producer's path unchanged:
 * evt_envelope_build of its attributes and data is accepted and parses back
 * to the same attributes. Every error is valid UTF-8: the runtime puts it in
 * the dead-letter reason and the log.
 */
#include "fuzz.h"

#include "core/xalloc.h"
#include "evt/envelope.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ct_errors errs = { 0 };
	struct evt_envelope env;
	cJSON *root = NULL;
	if (evt_envelope_parse((const char *)data, size, &root, &env, &errs) != SHOP_OK) {
		FUZZ_CHECK(errs.len > 0 || errs.dropped > 0);
		fuzz_check_errors(&errs);
		return 0;
	}
	FUZZ_CHECK(errs.len == 0 && env.data != NULL);

	const struct ct_message *m = ct_message_by_type(env.type);
	if (m) {
		void *msg = xcalloc(1, m->data_size);
		if (m->parse(env.data, msg, &errs) != SHOP_OK) {
			fuzz_check_errors(&errs);
		} else {
			cJSON *out = m->encode(msg);
			FUZZ_CHECK(out != NULL);
			cJSON_Delete(out);
		}
		free(msg);
	}

	char *payload = NULL;
	struct ct_errors again_errs = { 0 };
	FUZZ_CHECK(evt_envelope_build(&env, env.data, &payload, &again_errs) == SHOP_OK);
	cJSON *again = NULL;
	struct evt_envelope env2;
	FUZZ_CHECK(evt_envelope_parse(payload, strlen(payload), &again, &env2, &again_errs) ==
		   SHOP_OK);
	env2.data = env.data;
	FUZZ_CHECK(memcmp(&env, &env2, sizeof(env)) == 0);
	cJSON_Delete(again);
	free(payload);
	cJSON_Delete(root);
	return 0;
}
