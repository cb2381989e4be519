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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,        \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF): what an error's path and problem must be, since they are put
 * into JSON responses, logs and dead-letter reasons. */
static inline bool fuzz_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned char c = *p;
		size_t n = c < 0x80                 ? 1
			   : c >= 0xC2 && c <= 0xDF ? 2
			   : c >= 0xE0 && c <= 0xEF ? 3
			   : c >= 0xF0 && c <= 0xF4 ? 4
						    : 0;
		if (!n)
			return false;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xC0) != 0x80)
				return false;
		if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) ||
		    (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
			return false;
		p += n;
	}
	return true;
}

/* Every kept error is terminated and valid UTF-8. */
static inline void fuzz_check_errors(const struct ct_errors *errs)
{
	FUZZ_CHECK(errs->len <= CT_ERRORS_MAX);
	for (size_t i = 0; i < errs->len; i++) {
		const struct ct_error *e = &errs->item[i];
		FUZZ_CHECK(memchr(e->path, '\0', sizeof e->path) != NULL);
		FUZZ_CHECK(memchr(e->problem, '\0', sizeof e->problem) != NULL);
		FUZZ_CHECK(fuzz_utf8_valid(e->path));
		FUZZ_CHECK(fuzz_utf8_valid(e->problem));
	}
}

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
