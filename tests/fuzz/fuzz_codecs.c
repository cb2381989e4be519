/*
 * fuzz_codecs.c - every generated codec on bytes from the bus.
 *
 * The first byte picks the codec (fuzz_codec_at), the rest is the document,
 * read as a consumer reads it: ct_json_parse, then the codec's parser. A
 * parse that fails must leave an error; one that succeeds is encoded, so the
 * encoder runs on every struct a parser can fill. Every error is valid UTF-8
 * (it goes into responses, logs and dead-letter reasons).
 */
#include "fuzz.h"

#include "core/xalloc.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct fuzz_codec codec = fuzz_codec_at(data[0]);
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	struct ct_errors errs = { 0 };
	cJSON *root = NULL;
	if (ct_json_parse(text, len, &root, &errs) != SHOP_OK) {
		FUZZ_CHECK(errs.len == 1);
		return 0;
	}
	void *msg = xcalloc(1, codec.data_size);
	shop_status st = codec.parse(root, msg, &errs);
	if (st == SHOP_OK) {
		FUZZ_CHECK(errs.len == 0 && errs.dropped == 0);
		cJSON *out = codec.encode(msg);
		FUZZ_CHECK(out != NULL);
		char *printed = cJSON_PrintUnformatted(out);
		FUZZ_CHECK(printed != NULL);
		free(printed);
		cJSON_Delete(out);
	} else {
		FUZZ_CHECK(errs.len > 0);
		fuzz_check_errors(&errs);
	}
	free(msg);
	cJSON_Delete(root);
	return 0;
}
