/*
 * console_sse.c - the pure parts of the console's stream: the per-client
 * queue, SSE framing, the order filter and the ?since= parser. No I/O and
 * no locks, so tests/unit/test_console.c checks each on its own.
 */
#include "console.h"

#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void console_queue_init(struct console_queue *q)
{
	memset(q, 0, sizeof(*q));
	q->ring = xcalloc(CONSOLE_QUEUE_MAX, sizeof(*q->ring));
}

void console_queue_release(struct console_queue *q)
{
	struct console_frame f;
	if (!q->ring)
		return;
	while (console_queue_pop(q, &f))
		free(f.text);
	free(q->ring);
	q->ring = NULL;
}

shop_status console_queue_push(struct console_queue *q, struct console_frame frame)
{
	if (q->n >= CONSOLE_QUEUE_MAX || frame.len > CONSOLE_QUEUE_BYTES_MAX - q->bytes)
		return SHOP_E_LIMIT;
	q->ring[(q->head + q->n) % CONSOLE_QUEUE_MAX] = frame;
	q->n++;
	q->bytes += frame.len;
	return SHOP_OK;
}

bool console_queue_pop(struct console_queue *q, struct console_frame *ret_frame)
{
	if (q->n == 0)
		return false;
	*ret_frame = q->ring[q->head];
	q->ring[q->head] = (struct console_frame){ 0 };
	q->head = (q->head + 1) % CONSOLE_QUEUE_MAX;
	q->n--;
	q->bytes -= ret_frame->len;
	return true;
}

/* SSE ends a line at CR, LF or CRLF; each piece between becomes a data line. */
struct console_frame console_sse_frame(const char *data, size_t len)
{
	static const char prefix[] = "data: ";
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' || (data[i] == '\r' && (i + 1 == len || data[i + 1] != '\n')))
			lines++;
	/* Every line gets the prefix and a newline, plus the blank line. */
	size_t cap = len + lines * (sizeof(prefix) - 1 + 1) + 1 + 1;
	char *out = xmalloc(cap);
	size_t o = 0;
	memcpy(out, prefix, sizeof(prefix) - 1);
	o += sizeof(prefix) - 1;
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		if (ch == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue; /* CRLF: the LF ends the line */
		if (ch == '\r' || ch == '\n') {
			out[o++] = '\n';
			memcpy(out + o, prefix, sizeof(prefix) - 1);
			o += sizeof(prefix) - 1;
		} else {
			out[o++] = ch;
		}
	}
	out[o++] = '\n';
	out[o++] = '\n';
	out[o] = '\0';
	return (struct console_frame){ .text = out, .len = o };
}

bool console_envelope_is_about(const char *data, size_t len, const char *order_id)
{
	size_t id_len = strlen(order_id);
	if (id_len == 0 || !memmem(data, len, order_id, id_len))
		return false;
	cJSON *root = cJSON_ParseWithLength(data, len);
	const char *subject = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(root, "subject"));
	bool about = subject && strcmp(subject, order_id) == 0;
	cJSON_Delete(root);
	return about;
}

bool console_order_id_valid(const char *s)
{
	size_t n = strnlen(s, CONSOLE_ORDER_ID_MAX + 1);
	if (n == 0 || n > CONSOLE_ORDER_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* Reads exactly n digits at *p into *ret and advances; false otherwise. */
static bool console_digits(const char **p, int n, int *ret)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return false;
		v = v * 10 + (ch - '0');
	}
	*p += n;
	*ret = v;
	return true;
}

static bool console_expect(const char **p, const char *set)
{
	if (**p == '\0' || !strchr(set, **p))
		return false;
	(*p)++;
	return true;
}

shop_status console_rfc3339_parse(const char *s, int64_t *ret_ms)
{
	int year, mon, day, hour, min, sec, oh = 0, om = 0, ms = 0;
	const char *p = s;
	if (strnlen(s, CONSOLE_SINCE_MAX + 1) > CONSOLE_SINCE_MAX)
		return SHOP_E_INVALID;
	if (!console_digits(&p, 4, &year) || !console_expect(&p, "-") ||
	    !console_digits(&p, 2, &mon) || !console_expect(&p, "-") ||
	    !console_digits(&p, 2, &day) || !console_expect(&p, "Tt ") ||
	    !console_digits(&p, 2, &hour) || !console_expect(&p, ":") ||
	    !console_digits(&p, 2, &min) || !console_expect(&p, ":") ||
	    !console_digits(&p, 2, &sec))
		return SHOP_E_INVALID;
	if (*p == '.') {
		p++;
		int digits = 0;
		for (; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		if (digits == 0)
			return SHOP_E_INVALID;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	int sign = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (!console_digits(&p, 2, &oh) || !console_expect(&p, ":") ||
		    !console_digits(&p, 2, &om) || oh > 23 || om > 59)
			return SHOP_E_INVALID;
	} else {
		return SHOP_E_INVALID;
	}
	/* Leap seconds (sec 60) are not accepted: JetStream could not use them. */
	if (*p != '\0' || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
	    sec > 59)
		return SHOP_E_INVALID;
	struct tm tm = { .tm_year = year - 1900,
			 .tm_mon = mon - 1,
			 .tm_mday = day,
			 .tm_hour = hour,
			 .tm_min = min,
			 .tm_sec = sec };
	time_t t = timegm(&tm);
	/* timegm normalises 31 February into March: a changed day is invalid. */
	if (t == (time_t)-1 || tm.tm_mday != day || tm.tm_mon != mon - 1)
		return SHOP_E_INVALID;
	int64_t offset_s = sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
	*ret_ms = ((int64_t)t - offset_s) * 1000 + ms;
	return SHOP_OK;
}
