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
	snprintf(out, IDS_UUID_SIZE, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
		 hex + 16, hex + 20);
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

void ids_traceparent_new(char out[IDS_TRACEPARENT_SIZE])
{
	unsigned char trace[16];
	ids_random(trace, sizeof(trace));
	char hex[33];
	ids_hex(trace, sizeof(trace), hex);
	char buf[IDS_TRACEPARENT_SIZE];
	snprintf(buf, sizeof(buf), "00-%s-0000000000000000-01", hex);
	ids_traceparent_child(buf, out);
}

void ids_traceparent_child(const char *parent, char out[IDS_TRACEPARENT_SIZE])
{
	if (!parent || strlen(parent) != IDS_TRACEPARENT_SIZE - 1 || strncmp(parent, "00-", 3) != 0) {
		ids_traceparent_new(out);
		return;
	}
	unsigned char span[8];
	ids_random(span, sizeof(span));
	char hex[17];
	ids_hex(span, sizeof(span), hex);
	snprintf(out, IDS_TRACEPARENT_SIZE, "00-%.32s-%s-01", parent + 3, hex);
}
