/*
 * xmalloc.h - allocation that cannot fail: on out-of-memory the process
 * exits with a message (the only sane reaction for a CLI or the
 * coordinator).  Everything returned is freed with free().
 */
#ifndef REPCTL_XMALLOC_H
#define REPCTL_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t nmemb, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
char *xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), malloc, returns_nonnull));

#endif
