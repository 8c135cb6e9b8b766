/*
 * errors.h - the err/errlen convention (src/base/errors.c).
 */
#ifndef REPCTL_ERRORS_H
#define REPCTL_ERRORS_H

#include <stddef.h>

/* err = the formatted message (truncated to errlen).  err may be NULL: the caller does not care. */
void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
