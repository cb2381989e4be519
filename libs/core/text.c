/*
 * text.c - see text.h.
 */
#include "core/text.h"

#include <string.h>

bool text_copy(char *dst, size_t size, const char *src)
{
	if (size == 0)
		return false;
	size_t len = src ? strlen(src) : 0;
	if (len >= size) {
		dst[0] = '\0';
		return false;
	}
	memcpy(dst, src ? src : "", len);
	dst[len] = '\0';
	return true;
}
