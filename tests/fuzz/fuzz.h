/*
 * fuzz.h - what the libFuzzer targets in tests/fuzz share.
 *
 * A target is one file, fuzz_<name>.c, defining LLVMFuzzerTestOneInput; the
 * Makefile builds each with -fsanitize=fuzzer,address,undefined (UBSan not
 * recovering) and runs it from the seeds, dictionary and regression inputs
 * that tools/fuzz.sh names. A property a target checks beyond "no sanitizer
 * report" fails through FUZZ_CHECK, which aborts, so libFuzzer keeps the
 * input as a crash.
 */
#ifndef SHOP_TESTS_FUZZ_H
#define SHOP_TESTS_FUZZ_H

#include "contracts_gen.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                    \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                     \
			abort();                                                            \
		}                                                                           \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every codec a fuzz target drives: the messages of ct_messages, then the
 * HTTP bodies (place_order_request), which have no entry there. */
struct fuzz_codec {
	const char *name;
	size_t data_size;
	ct_parse_fn parse;
	ct_encode_fn encode;
};

static shop_status fuzz_place_order_request_parse(const cJSON *json, void *out,
						  struct ct_errors *errs)
{
	return ct_place_order_request_parse(json, out, errs);
}

static cJSON *fuzz_place_order_request_encode(const void *in)
{
	return ct_place_order_request_encode(in);
}

#define FUZZ_N_CODECS (CT_MSG__COUNT + 1)

/* The codec number I (any byte: taken modulo FUZZ_N_CODECS). */
static inline struct fuzz_codec fuzz_codec_at(size_t i)
{
	i %= FUZZ_N_CODECS;
	if (i < CT_MSG__COUNT)
		return (struct fuzz_codec){ ct_messages[i].name, ct_messages[i].data_size,
					    ct_messages[i].parse, ct_messages[i].encode };
	return (struct fuzz_codec){ "place_order_request", sizeof(struct ct_place_order_request),
				    fuzz_place_order_request_parse,
				    fuzz_place_order_request_encode };
}

#endif
