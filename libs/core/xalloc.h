/*
 * xalloc.h - allocation that cannot fail.
 *
 * Running out of memory is not an error path this project handles: these
 * wrappers abort with a message, so every error path in the code is for a
 * real failure. cJSON is pointed at the same allocator by xalloc_init_cjson().
 */
#ifndef SHOP_CORE_XALLOC_H
#define SHOP_CORE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh string; aborts on allocation failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xalloc_init_cjson(void);

#endif
