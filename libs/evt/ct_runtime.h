/*
 * ct_runtime.h - the runtime the generated codecs (contracts_gen.c, written
 * by tools/contractgen.py) are built on: the rule types the generator fills
 * in, the parse context that keeps the JSON pointer of the value in hand,
 * and the checks and encoding helpers every reader and encoder calls.
 *
 * contracts_gen.c includes this, and envelope.c for ct_pointer_of_key;
 * everyone else uses contracts_gen.h.
 * The generated file defines ct_patterns and ct_n_patterns, the POSIX
 * extended regular expressions the rules index into.
 */
#ifndef SHOP_EVT_CT_RUNTIME_H
#define SHOP_EVT_CT_RUNTIME_H

#include "contracts_gen.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defined by the generated file: ct_n_patterns patterns, then NULL. */
extern const char *const ct_patterns[];
extern const size_t ct_n_patterns;

/* 2^53 - 1: beyond it doubles skip integers, so a JSON number there is not
 * the integer it spells. */
#define CT_SAFE_INT INT64_C(9007199254740991)

enum ct_format { CT_FORMAT_NONE, CT_FORMAT_DATE_TIME, CT_FORMAT_UUID };

struct ct_string_rule {
	size_t min_len, max_len;   /* code points */
	int pattern;               /* index into ct_patterns, -1 for none */
	const char *label;         /* names the value in "is not a valid <label>" */
	const char *const *values; /* enum */
	size_t n_values;
	const char *values_text;
	const char *const_value;
	enum ct_format format;
};

struct ct_int_rule {
	int64_t min, max;
};

/* Where a parse is: the JSON pointer of the current value, and the sink. */
struct ct_ctx {
	struct ct_errors *errs; /* NULL: only failed is kept */
	bool failed;
	size_t len;
	char path[CT_PATH_MAX];
};

/* Starts a parse at the root; errs may be NULL (only failed is kept). */
void ct_ctx_init(struct ct_ctx *cx, struct ct_errors *errs);

/* Records an error at the current path and marks the parse failed. */
void ct_fail(struct ct_ctx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Enter a member or an element: the path grows, the mark restores it (ct_pop). */
size_t ct_push_key(struct ct_ctx *cx, const char *key);
size_t ct_push_index(struct ct_ctx *cx, size_t i);
/* The JSON pointer "/KEY" of a member of the root, as ct_push_key writes it:
 * escaped, bytes that are not UTF-8 as '?', cut between characters. */
void ct_pointer_of_key(const char *key, char out[CT_PATH_MAX]);
/* Whether S (NUL-terminated) is well-formed UTF-8: what a string must be
 * before it goes into JSON the shop sends. */
bool ct_utf8_valid(const char *s);
void ct_pop(struct ct_ctx *cx, size_t mark);

/* Checks one string against its rule and copies it into dst (size bytes,
 * 4 * max_len + 1). One error per value: the first rule it breaks. */
void ct_read_string(const cJSON *v, char *dst, size_t size, const struct ct_string_rule *r,
		    struct ct_ctx *cx);

/* An integer within the rule, from a JSON number without a fraction. */
void ct_read_int(const cJSON *v, int64_t *dst, const struct ct_int_rule *r, struct ct_ctx *cx);

/* True when v is an object; an error otherwise. */
bool ct_object_begin(const cJSON *v, struct ct_ctx *cx);

/* Member names: the key test, the duplicate check, the required check. */
bool ct_key_is(const cJSON *it, const char *key);
bool ct_key_once(bool *seen, struct ct_ctx *cx);
void ct_require(bool seen, const char *key, struct ct_ctx *cx);

/* Checks the type and the bounds; elements are read only when they fit. */
bool ct_array_begin(const cJSON *v, size_t min, size_t max, size_t *ret_n, struct ct_ctx *cx);

/* Encoding helpers: each takes ownership of item, also when it fails. */
bool ct_put(cJSON *obj, const char *key, cJSON *item);
bool ct_append(cJSON *arr, cJSON *item);
cJSON *ct_new_string(const char *buf, size_t size);
cJSON *ct_new_int(int64_t v);

#endif
