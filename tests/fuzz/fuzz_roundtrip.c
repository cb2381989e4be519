/*
 * fuzz_roundtrip.c - encode(parse(x)) is x, canonically.
 *
 * The first byte picks the codec (fuzz_codec_at), the rest is the document.
 * Wherever the codec accepts x:
 *   - encode(parse(x)) equals x as a JSON value (members in any order,
 *     numbers by value, strings after unescaping): the codec neither drops,
 *     adds nor changes a field, so what a consumer acts on is what the
 *     producer sent;
 *   - its text c is canonical: parse(c) succeeds and encodes to c again, byte
 *     for byte, which the gateway's idempotency replay relies on.
 */
#include "fuzz.h"

#include "core/xalloc.h"

#include <string.h>

static char *fuzz_canonical(const struct fuzz_codec *codec, const cJSON *root, void *msg)
{
	struct ct_errors errs = { 0 };
	memset(msg, 0, codec->data_size);
	if (codec->parse(root, msg, &errs) != SHOP_OK)
		return NULL;
	cJSON *out = codec->encode(msg);
	FUZZ_CHECK(out != NULL);
	FUZZ_CHECK(cJSON_Compare(out, root, true));
	char *text = cJSON_PrintUnformatted(out);
	FUZZ_CHECK(text != NULL);
	cJSON_Delete(out);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct fuzz_codec codec = fuzz_codec_at(data[0]);
	cJSON *root = NULL;
	if (ct_json_parse((const char *)data + 1, size - 1, &root, NULL) != SHOP_OK)
		return 0;
	void *msg = xcalloc(1, codec.data_size);
	char *first = fuzz_canonical(&codec, root, msg);
	cJSON_Delete(root);
	root = NULL;
	if (first) {
		FUZZ_CHECK(ct_json_parse(first, strlen(first), &root, NULL) == SHOP_OK);
		char *second = fuzz_canonical(&codec, root, msg);
		FUZZ_CHECK(second != NULL);
		FUZZ_CHECK(strcmp(first, second) == 0);
		free(second);
		cJSON_Delete(root);
	}
	free(first);
	free(msg);
	return 0;
}
