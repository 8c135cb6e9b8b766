/*
 * buf.h - a growable byte/string buffer, always NUL-terminated, for SQL
 * text, messages and (later) protocol frames.  Initialise with BUF_INIT or
 * buf_init(); release with buf_free() (safe on an empty buffer).
 */
#ifndef REPCTL_BUF_H
#define REPCTL_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT           \
	{                  \
		NULL, 0, 0 \
	}

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Take ownership of the string; the buffer is left empty.  Free with free(). */
char *buf_steal(struct buf *b);
/* Append s as a JSON string literal (with quotes); NULL appends null. */
void buf_json_str(struct buf *b, const char *s);

#endif
