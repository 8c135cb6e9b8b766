/*
 * errors.c - the err/errlen convention every module uses: a function that
 * fails writes "what went wrong; how to fix" into the caller's buffer and
 * returns -1.
 */
#include <stdarg.h>
#include <stdio.h>

#include "errors.h"

void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
