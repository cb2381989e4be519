/* ids.c - UUIDv7 and traceparent generation (see ids.h). */
#include "ids.h"

#include "clock.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void ids_random(unsigned char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);
		if (n < 0) {
			/* getrandom only fails on a broken kernel; ids must never repeat. */
			perror("getrandom");
			abort();
		}
		got += (size_t)n;
	}
}

static void ids_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

void ids_uuid7(char out[IDS_UUID_SIZE])
{
	unsigned char b[16];
	uint64_t ms = (uint64_t)clock_now_ms();
	ids_random(b + 6, 10);
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* RFC 9562 variant */
	char hex[33];
	ids_hex(b, 16, hex);
	snprintf(out, IDS_UUID_SIZE, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
}

bool ids_uuid_valid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* n lowercase hex digits, not all of them zero when nonzero is set. */
static bool ids_hex_field(const char *s, size_t n, bool nonzero)
{
	bool seen_nonzero = false;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
		seen_nonzero = seen_nonzero || s[i] != '0';
	}
	return seen_nonzero || !nonzero;
}

bool ids_traceparent_valid(const char *s)
{
	/* vv-<32 trace>-<16 parent>-ff: offsets of the dashes and fields. */
	if (!s || strlen(s) < IDS_TRACEPARENT_SIZE - 1)
		return false;
	if (!ids_hex_field(s, 2, false) || strncmp(s, "ff", 2) == 0 || s[2] != '-' ||
	    !ids_hex_field(s + 3, 32, true) || s[35] != '-' || !ids_hex_field(s + 36, 16, true) ||
	    s[52] != '-' || !ids_hex_field(s + 53, 2, false))
		return false;
	/* Version 00 has exactly these fields; a later one may add some after
	 * a dash, and a receiver reads the ones it knows. */
	if (strncmp(s, "00", 2) == 0)
		return s[55] == '\0';
	return s[55] == '\0' || s[55] == '-';
}

/* The traceparent of a new span of TRACE (32 hex digits). */
static void ids_traceparent_span(const char *trace, char out[IDS_TRACEPARENT_SIZE])
{
	unsigned char span[8];
	char hex[17];
	do {
		ids_random(span, sizeof(span));
		ids_hex(span, sizeof(span), hex);
	} while (!ids_hex_field(hex, 16, true)); /* all zeros is invalid; 2^-64 */
	snprintf(out, IDS_TRACEPARENT_SIZE, "00-%.32s-%s-01", trace, hex);
}

void ids_traceparent_new(char out[IDS_TRACEPARENT_SIZE])
{
	unsigned char trace[16];
	char hex[33];
	do {
		ids_random(trace, sizeof(trace));
		ids_hex(trace, sizeof(trace), hex);
	} while (!ids_hex_field(hex, 32, true));
	ids_traceparent_span(hex, out);
}

void ids_traceparent_child(const char *parent, char out[IDS_TRACEPARENT_SIZE])
{
	if (!ids_traceparent_valid(parent)) {
		ids_traceparent_new(out);
		return;
	}
	ids_traceparent_span(parent + 3, out);
}
