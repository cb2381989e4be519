/*
 * text.h - copying strings into the fixed-size fields of generated message
 * structs and of rows read back from a database.
 *
 * Those fields are sized by the contracts' maxLength, so a value that does
 * not fit is never truncated (a cut order id is another order's id): the
 * copy fails and the caller decides whether that is bad input or a bug.
 */
#ifndef SHOP_CORE_TEXT_H
#define SHOP_CORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Copies src (NULL counts as "") into dst[size] when it fits with its NUL.
 * Otherwise returns false and leaves dst empty (when size > 0). */
bool text_copy(char *dst, size_t size, const char *src);

/* text_copy into an array whose size the compiler knows. Given a pointer,
 * sizeof would be the pointer's size: that fails to compile instead. */
#define TEXT_IS_ARRAY(a) (!__builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])))
#define TEXT_COPY(dst, src)                                                                        \
	text_copy((dst), sizeof(dst) + 0 * sizeof(struct {                                         \
					       _Static_assert(TEXT_IS_ARRAY(dst),                  \
							      "TEXT_COPY needs an array");         \
					       int unused;                                         \
				       }),                                                         \
		  (src))

#endif
