/* value.h -- internal functions of the value type (value.c) for the runtime. */
#ifndef ATOLL_VALUE_H
#define ATOLL_VALUE_H

#include "../core/core.h"

/* Appends the compact JSON text of v (null for NULL) to b. The runtime's encoder for
 * every reply and push, and atoll_dump's: jansson's own dumper formats each integer
 * through snprintf and went through a callback per token, which made it a fifth of a
 * level-up's user-space CPU. */
void atoll__value_write(atoll__buf *b, const atoll_value *v);

#endif /* ATOLL_VALUE_H */
