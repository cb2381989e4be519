/*
 * ct_runtime.c - the runtime of the generated codecs (see ct_runtime.h) and
 * the public helpers of contracts_gen.h that are not generated:
 * ct_errors_add, ct_json_parse, ct_message_by_subject and _by_type.
 *
 * Parsing walks the cJSON tree once, keeping the JSON pointer of the value in
 * hand, and records an error for every rule broken instead of stopping at the
 * first, so a client sees all that is wrong with a request at once. Patterns
 * are POSIX extended regular expressions compiled once per process
 * (pthread_once), which the generator only allows in the subset where they
 * mean the same as the ECMA-262 patterns of the schemas. Strings from the
 * input are checked as UTF-8 here (cJSON does not), and paths built from
 * input keys are kept valid UTF-8 since they end up in responses and logs.
 */
#include "ct_runtime.h"

#include "core/xalloc.h"

#include <inttypes.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ct_errors_vadd(struct ct_errors *errs, const char *path, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void ct_errors_vadd(struct ct_errors *errs, const char *path, const char *fmt, va_list ap)
{
	if (!errs)
		return;
	if (errs->len >= CT_ERRORS_MAX) {
		errs->dropped++;
		return;
	}
	struct ct_error *e = &errs->item[errs->len++];
	snprintf(e->path, sizeof e->path, "%s", path ? path : "");
	vsnprintf(e->problem, sizeof e->problem, fmt, ap);
}

void ct_errors_add(struct ct_errors *errs, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ct_errors_vadd(errs, path, fmt, ap);
	va_end(ap);
}

void ct_ctx_init(struct ct_ctx *cx, struct ct_errors *errs)
{
	cx->errs = errs;
	cx->failed = false;
	cx->len = 0;
	cx->path[0] = '\0';
}

void ct_fail(struct ct_ctx *cx, const char *fmt, ...)
{
	va_list ap;
	cx->failed = true;
	va_start(ap, fmt);
	ct_errors_vadd(cx->errs, cx->path, fmt, ap);
	va_end(ap);
}

static const char *ct_s(size_t n)
{
	return n == 1 ? "" : "s";
}

/* Length of the well-formed UTF-8 sequence at s, 0 if there is none: no
 * overlong forms, no surrogates, nothing above U+10FFFF. Never reads past a
 * NUL, which is not a continuation byte. */
static size_t ct_utf8_seq(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return (s[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80
			       ? 4
			       : 0;
	}
	return 0;
}

static bool ct_utf8_count(const char *s, size_t *ret_points, size_t *ret_bytes)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t points = 0;
	while (*p) {
		size_t n = ct_utf8_seq(p);
		if (!n)
			return false;
		p += n;
		points++;
	}
	*ret_points = points;
	*ret_bytes = (size_t)(p - (const unsigned char *)s);
	return true;
}

bool ct_utf8_valid(const char *s)
{
	size_t points = 0, bytes = 0;
	return ct_utf8_count(s, &points, &bytes);
}

static void ct_path_put(struct ct_ctx *cx, const char *bytes, size_t n)
{
	if (cx->len + n >= sizeof cx->path)
		return;
	memcpy(cx->path + cx->len, bytes, n);
	cx->len += n;
	cx->path[cx->len] = '\0';
}

/* Appends "/key" with JSON-pointer escapes. Keys come from the input, so
 * bytes that are not UTF-8 become '?' (paths end up in responses and logs)
 * and a cut falls between characters. */
size_t ct_push_key(struct ct_ctx *cx, const char *key)
{
	size_t mark = cx->len;
	const unsigned char *p = (const unsigned char *)(key ? key : "");
	ct_path_put(cx, "/", 1);
	while (*p) {
		size_t n = ct_utf8_seq(p);
		if (*p == '~')
			ct_path_put(cx, "~0", 2);
		else if (*p == '/')
			ct_path_put(cx, "~1", 2);
		else if (n)
			ct_path_put(cx, (const char *)p, n);
		else
			ct_path_put(cx, "?", 1);
		p += n ? n : 1;
	}
	return mark;
}

void ct_pointer_of_key(const char *key, char out[CT_PATH_MAX])
{
	struct ct_ctx cx;
	ct_ctx_init(&cx, NULL);
	ct_push_key(&cx, key);
	memcpy(out, cx.path, cx.len + 1);
}

size_t ct_push_index(struct ct_ctx *cx, size_t i)
{
	size_t mark = cx->len;
	char buf[24];
	int n = snprintf(buf, sizeof buf, "/%zu", i);
	if (n > 0 && (size_t)n < sizeof buf)
		ct_path_put(cx, buf, (size_t)n);
	return mark;
}

void ct_pop(struct ct_ctx *cx, size_t mark)
{
	cx->len = mark;
	cx->path[mark] = '\0';
}

/* The patterns of the generated rules, compiled once per process. Never
 * freed: they live as long as the process may parse. */
static regex_t *ct_regex;
static pthread_once_t ct_regex_once = PTHREAD_ONCE_INIT;

static void ct_regex_compile(void)
{
	ct_regex = xcalloc(ct_n_patterns + 1, sizeof(*ct_regex));
	for (size_t i = 0; i < ct_n_patterns; i++) {
		if (regcomp(&ct_regex[i], ct_patterns[i], REG_EXTENDED | REG_NOSUB) != 0) {
			/* The generator checked every pattern: this is a broken build. */
			fprintf(stderr, "fatal: contract pattern %s does not compile\n",
				ct_patterns[i]);
			abort();
		}
	}
}

static bool ct_pattern_match(int i, const char *s)
{
	pthread_once(&ct_regex_once, ct_regex_compile);
	return regexec(&ct_regex[i], s, 0, NULL, 0) == 0;
}

static bool ct_digits(const char *s, int n, int *ret)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

static int ct_days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), T and
 * Z in either case, real calendar dates, second 60 allowed for leap seconds. */
static bool ct_is_date_time(const char *s)
{
	int y, mo, d, h, mi, sec, oh, om;
	if (!ct_digits(s, 4, &y) || s[4] != '-' || !ct_digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !ct_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    !ct_digits(s + 11, 2, &h) || s[13] != ':' || !ct_digits(s + 14, 2, &mi) ||
	    s[16] != ':' || !ct_digits(s + 17, 2, &sec))
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		if (!ct_digits(p + 1, 2, &oh) || p[3] != ':' || !ct_digits(p + 4, 2, &om) ||
		    oh > 23 || om > 59)
			return false;
		p += 6;
	} else {
		return false;
	}
	return *p == '\0' && mo >= 1 && mo <= 12 && d >= 1 && d <= ct_days_in_month(y, mo) &&
	       h <= 23 && mi <= 59 && sec <= 60;
}

static bool ct_is_uuid(const char *s)
{
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = s[i];
		bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			   (c >= 'A' && c <= 'F');
		if (dash ? c != '-' : !hex)
			return false;
	}
	return s[36] == '\0';
}

/* Checks one string against its rule and copies it into dst (size bytes,
 * 4 * max_len + 1). One error per value: the first rule it breaks. */
void ct_read_string(const cJSON *v, char *dst, size_t size, const struct ct_string_rule *r,
		    struct ct_ctx *cx)
{
	size_t points, bytes;
	if (!cJSON_IsString(v) || !v->valuestring) {
		ct_fail(cx, "must be a string");
		return;
	}
	const char *s = v->valuestring;
	if (!ct_utf8_count(s, &points, &bytes)) {
		ct_fail(cx, "is not valid UTF-8");
		return;
	}
	if (points > r->max_len) {
		ct_fail(cx, "must be at most %zu character%s", r->max_len, ct_s(r->max_len));
		return;
	}
	if (points < r->min_len) {
		if (r->min_len == 1)
			ct_fail(cx, "must not be empty");
		else
			ct_fail(cx, "must be at least %zu character%s", r->min_len,
				ct_s(r->min_len));
		return;
	}
	if (r->const_value && strcmp(s, r->const_value) != 0) {
		ct_fail(cx, "must be \"%s\"", r->const_value);
		return;
	}
	if (r->n_values) {
		size_t i = 0;
		while (i < r->n_values && strcmp(s, r->values[i]) != 0)
			i++;
		if (i == r->n_values) {
			ct_fail(cx, "must be one of: %s", r->values_text);
			return;
		}
	}
	if (r->pattern >= 0 && !ct_pattern_match(r->pattern, s)) {
		ct_fail(cx, "is not a valid %s", r->label);
		return;
	}
	if (r->format == CT_FORMAT_DATE_TIME && !ct_is_date_time(s)) {
		ct_fail(cx, "is not a valid RFC 3339 date-time");
		return;
	}
	if (r->format == CT_FORMAT_UUID && !ct_is_uuid(s)) {
		ct_fail(cx, "is not a valid UUID");
		return;
	}
	if (bytes >= size) { /* cannot happen: 4 bytes per code point fit */
		ct_fail(cx, "is too long");
		return;
	}
	memcpy(dst, s, bytes + 1);
}

/* cJSON keeps every number as a double: an integer is a number without a
 * fraction, inside the range where doubles are exact. */
void ct_read_int(const cJSON *v, int64_t *dst, const struct ct_int_rule *r, struct ct_ctx *cx)
{
	if (!cJSON_IsNumber(v))
		goto bad;
	double d = v->valuedouble;
	if (!(d >= -(double)CT_SAFE_INT && d <= (double)CT_SAFE_INT))
		goto bad;
	int64_t n = (int64_t)d;
	if ((double)n != d || n < r->min || n > r->max)
		goto bad;
	*dst = n;
	return;
bad:
	ct_fail(cx, "must be an integer between %" PRId64 " and %" PRId64, r->min, r->max);
}

bool ct_object_begin(const cJSON *v, struct ct_ctx *cx)
{
	if (cJSON_IsObject(v))
		return true;
	ct_fail(cx, "must be an object");
	return false;
}

/* True when a string of the valid JSON TEXT[LEN] spells a NUL (\u0000). */
static bool ct_json_has_nul(const char *text, size_t len)
{
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '"') {
			in_string = !in_string;
		} else if (in_string && text[i] == '\\') {
			if (i + 5 < len && text[i + 1] == 'u' &&
			    memcmp(text + i + 2, "0000", 4) == 0)
				return true;
			i++; /* the escaped character, which may be a quote */
		}
	}
	return false;
}

shop_status ct_json_parse(const char *text, size_t len, cJSON **ret_root, struct ct_errors *errs)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!root) {
		ct_errors_add(errs, "", "is not valid JSON");
		return SHOP_E_INVALID;
	}
	size_t used = (size_t)(end - text);
	while (used < len && (text[used] == ' ' || text[used] == '\t' || text[used] == '\n' ||
			      text[used] == '\r'))
		used++;
	if (used < len) {
		ct_errors_add(errs, "", "has more after the JSON value (at byte %zu)", used);
		cJSON_Delete(root);
		return SHOP_E_INVALID;
	}
	if (ct_json_has_nul(text, len)) {
		ct_errors_add(errs, "", "has a string holding a NUL character (\\u0000)");
		cJSON_Delete(root);
		return SHOP_E_INVALID;
	}
	*ret_root = root;
	return SHOP_OK;
}

bool ct_key_is(const cJSON *it, const char *key)
{
	return it->string && strcmp(it->string, key) == 0;
}

/* cJSON keeps duplicate keys; readers of JSON disagree on which one wins, so
 * a duplicate is an error rather than a guess. */
bool ct_key_once(bool *seen, struct ct_ctx *cx)
{
	if (*seen) {
		ct_fail(cx, "must appear only once");
		return false;
	}
	*seen = true;
	return true;
}

void ct_require(bool seen, const char *key, struct ct_ctx *cx)
{
	if (seen)
		return;
	size_t mark = ct_push_key(cx, key);
	ct_fail(cx, "is required");
	ct_pop(cx, mark);
}

/* Checks the type and the bounds; elements are read only when they fit. */
bool ct_array_begin(const cJSON *v, size_t min, size_t max, size_t *ret_n, struct ct_ctx *cx)
{
	if (!cJSON_IsArray(v)) {
		ct_fail(cx, "must be an array");
		return false;
	}
	size_t n = 0;
	for (const cJSON *el = v->child; el; el = el->next)
		n++;
	if (n > max) {
		ct_fail(cx, "must have at most %zu item%s", max, ct_s(max));
		return false;
	}
	if (n < min)
		ct_fail(cx, "must have at least %zu item%s", min, ct_s(min));
	*ret_n = n;
	return true;
}

/* Encoding helpers: each takes ownership of item, also when it fails. */
bool ct_put(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return false;
	if (!cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

bool ct_append(cJSON *arr, cJSON *item)
{
	if (!item)
		return false;
	if (!cJSON_AddItemToArray(arr, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

cJSON *ct_new_string(const char *buf, size_t size)
{
	if (memchr(buf, '\0', size))
		return cJSON_CreateString(buf);
	/* Not terminated (a caller's bug): encode what fits, never read past it. */
	char *copy = xstrndup(buf, size - 1);
	cJSON *item = cJSON_CreateString(copy);
	free(copy);
	return item;
}

cJSON *ct_new_int(int64_t v)
{
	return cJSON_CreateNumber((double)v);
}

const struct ct_message *ct_message_by_subject(const char *subject)
{
	for (size_t i = 0; subject && i < CT_MSG__COUNT; i++)
		if (strcmp(ct_messages[i].subject, subject) == 0)
			return &ct_messages[i];
	return NULL;
}

const struct ct_message *ct_message_by_type(const char *type)
{
	for (size_t i = 0; type && i < CT_MSG__COUNT; i++)
		if (strcmp(ct_messages[i].type, type) == 0)
			return &ct_messages[i];
	return NULL;
}
