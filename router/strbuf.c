/* Capped growable string buffer. */
#include "router/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(strbuf *sb, size_t max)
{
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->max = max;
    sb->overflow = 0;
}

void strbuf_free(strbuf *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

static int reserve(strbuf *sb, size_t extra)
{
    if (sb->overflow)
        return -1;
    size_t need = sb->len + extra + 1;
    if (need > sb->max) {
        sb->overflow = 1;
        return -1;
    }
    if (need <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > sb->max)
        cap = sb->max;
    char *d = realloc(sb->data, cap);
    if (!d) {
        sb->overflow = 1;
        return -1;
    }
    sb->data = d;
    sb->cap = cap;
    return 0;
}

void strbuf_append(strbuf *sb, const char *s, size_t n)
{
    if (reserve(sb, n) < 0)
        return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void strbuf_puts(strbuf *sb, const char *s)
{
    strbuf_append(sb, s, strlen(s));
}

void strbuf_printf(strbuf *sb, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        strbuf_append(sb, small, (size_t)n);
        return;
    }
    if (reserve(sb, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void strbuf_html(strbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            strbuf_puts(sb, "&amp;");
            break;
        case '<':
            strbuf_puts(sb, "&lt;");
            break;
        case '>':
            strbuf_puts(sb, "&gt;");
            break;
        case '"':
            strbuf_puts(sb, "&quot;");
            break;
        case '\'':
            strbuf_puts(sb, "&#39;");
            break;
        default:
            strbuf_append(sb, s, 1);
        }
    }
}
