/* JSON writer with Go encoding/json string escaping. */
#include "dcs/v3_jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

void jw_init(jw *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max;
}

void jw_free(jw *w)
{
    free(w->p);
    w->p = NULL;
}

char *jw_take(jw *w, size_t *len)
{
    jw_raw(w, "", 0);
    if (w->err || !w->p) {
        jw_free(w);
        return NULL;
    }
    char *p = w->p;
    p[w->len] = 0;
    if (len)
        *len = w->len;
    w->p = NULL;
    return p;
}

void jw_raw(jw *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if (w->len + n + 1 > w->max) {
        w->err = true;
        return;
    }
    if (!w->p || w->len + n + 1 > w->cap) {
        size_t ncap = w->cap ? w->cap : 512;
        while (ncap < w->len + n + 1)
            ncap *= 2;
        char *np = realloc(w->p, ncap);
        if (!np) {
            w->err = true;
            return;
        }
        w->p = np;
        w->cap = ncap;
    }
    if (n)
        memcpy(w->p + w->len, s, n);
    w->len += n;
}

/* Comma handling: before a value in an array, or before a key in an object. */
static void sep(jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        if (!w->first[w->depth - 1])
            jw_raw(w, ",", 1);
        w->first[w->depth - 1] = false;
    }
}

static void open_(jw *w, const char *c)
{
    sep(w);
    jw_raw(w, c, 1);
    if (w->depth >= JW_MAX_DEPTH) {
        w->err = true;
        return;
    }
    w->first[w->depth++] = true;
}

static void close_(jw *w, const char *c)
{
    if (w->depth > 0)
        w->depth--;
    jw_raw(w, c, 1);
}

void jw_obj(jw *w)
{
    open_(w, "{");
}

void jw_obj_end(jw *w)
{
    close_(w, "}");
}

void jw_arr(jw *w)
{
    open_(w, "[");
}

void jw_arr_end(jw *w)
{
    close_(w, "]");
}

static void str_raw(jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    jw_raw(w, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
            size_t j = i;
            while (j < n) {
                unsigned char d = (unsigned char)s[j];
                if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\' || d == '<' || d == '>' ||
                    d == '&')
                    break;
                j++;
            }
            jw_raw(w, s + i, j - i);
            i = j;
            continue;
        }
        if (c < 0x80) {
            char esc[7];
            switch (c) {
            case '"':
                jw_raw(w, "\\\"", 2);
                break;
            case '\\':
                jw_raw(w, "\\\\", 2);
                break;
            case '\n':
                jw_raw(w, "\\n", 2);
                break;
            case '\r':
                jw_raw(w, "\\r", 2);
                break;
            case '\t':
                jw_raw(w, "\\t", 2);
                break;
            default:
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                jw_raw(w, esc, 6);
            }
            i++;
            continue;
        }
        /* UTF-8: copy a valid sequence, replace an invalid byte by U+FFFD like Go */
        size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
        bool valid = len > 0 && i + len <= n;
        for (size_t k = 1; valid && k < len; k++)
            valid = ((unsigned char)s[i + k] & 0xc0) == 0x80;
        if (valid && len == 3) {
            unsigned char c1 = (unsigned char)s[i + 1];
            valid = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        }
        if (valid && len == 4) {
            unsigned char c1 = (unsigned char)s[i + 1];
            valid = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (!valid) {
            jw_raw(w, "\\ufffd", 6);
            i++;
            continue;
        }
        /* Go escapes U+2028 and U+2029 */
        if (len == 3 && c == 0xe2 && (unsigned char)s[i + 1] == 0x80 &&
            ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            jw_raw(w, (unsigned char)s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
        } else {
            jw_raw(w, s + i, len);
        }
        i += len;
    }
    jw_raw(w, "\"", 1);
}

void jw_key(jw *w, const char *name)
{
    sep(w);
    str_raw(w, name, strlen(name));
    jw_raw(w, ":", 1);
    w->after_key = true;
}

void jw_str(jw *w, const char *s, size_t n)
{
    sep(w);
    str_raw(w, s ? s : "", s ? n : 0);
}

void jw_cstr(jw *w, const char *s)
{
    jw_str(w, s, s ? strlen(s) : 0);
}

void jw_b64(jw *w, const void *p, size_t n)
{
    sep(w);
    size_t need = base64_encoded_size(n);
    char stackbuf[512];
    char *buf = need <= sizeof(stackbuf) ? stackbuf : malloc(need);
    if (!buf) {
        w->err = true;
        return;
    }
    base64_encode(p, n, buf);
    jw_raw(w, "\"", 1);
    jw_raw(w, buf, need - 1);
    jw_raw(w, "\"", 1);
    if (buf != stackbuf)
        free(buf);
}

/* Decimal text of v (negative when neg, in quotes when quoted) into out; returns its
 * length. Every response carries 4+ numbers: snprintf cost ~1100 instructions each. */
static size_t fmt_num(char out[32], uint64_t v, bool neg, bool quoted)
{
    char digits[24];
    size_t n = 0, k = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (quoted)
        out[k++] = '"';
    if (neg)
        out[k++] = '-';
    while (n)
        out[k++] = digits[--n];
    if (quoted)
        out[k++] = '"';
    return k;
}

static void put_num(jw *w, uint64_t mag, bool neg, bool quoted)
{
    char b[32];
    sep(w);
    jw_raw(w, b, fmt_num(b, mag, neg, quoted));
}

/* |v| as unsigned, also for INT64_MIN */
static uint64_t mag64(int64_t v)
{
    return v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
}

void jw_i64_quoted(jw *w, int64_t v)
{
    put_num(w, mag64(v), v < 0, true);
}

void jw_u64_quoted(jw *w, uint64_t v)
{
    put_num(w, v, false, true);
}

void jw_i64(jw *w, int64_t v)
{
    put_num(w, mag64(v), v < 0, false);
}

void jw_u64(jw *w, uint64_t v)
{
    put_num(w, v, false, false);
}

void jw_bool(jw *w, bool v)
{
    sep(w);
    jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}
