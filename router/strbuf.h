/* A growable output buffer with a hard cap, for rendering stats pages. Once the cap would
 * be exceeded the buffer stops growing and remembers it (the page answers 500 rather than
 * a truncated document). */
#ifndef APPLIANCE_ROUTER_STRBUF_H
#define APPLIANCE_ROUTER_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *data; /* NUL-terminated while not overflowed */
    size_t len, cap, max;
    int overflow;
} strbuf;

void strbuf_init(strbuf *sb, size_t max);
void strbuf_free(strbuf *sb);
void strbuf_append(strbuf *sb, const char *s, size_t n);
void strbuf_puts(strbuf *sb, const char *s);
void strbuf_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with &<>"' escaped for HTML. */
void strbuf_html(strbuf *sb, const char *s);

#endif
