/* Varint byte buffers and the snapshot checksum. */
#include "dcs/store_cmd_buf.h"

#include <stdlib.h>
#include <string.h>

void cw_init(cmd_writer *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max;
}

void cw_free(cmd_writer *w)
{
    free(w->p);
    w->p = NULL;
    w->len = w->cap = 0;
}

void cw_raw(cmd_writer *w, const void *p, size_t n)
{
    if (w->err || n == 0)
        return;
    if (n > w->max - w->len || w->len > w->max) {
        w->err = true;
        return;
    }
    if (w->len + n > w->cap) {
        size_t ncap = w->cap ? w->cap : 256;
        while (ncap < w->len + n)
            ncap *= 2;
        uint8_t *np = realloc(w->p, ncap);
        if (!np) {
            w->err = true;
            return;
        }
        w->p = np;
        w->cap = ncap;
    }
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

void cw_u8(cmd_writer *w, uint8_t v)
{
    cw_raw(w, &v, 1);
}

void cw_u32le(cmd_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    cw_raw(w, b, 4);
}

void cw_uvar(cmd_writer *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    cw_raw(w, b, n);
}

void cw_svar(cmd_writer *w, int64_t v)
{
    cw_uvar(w, ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0)); /* zigzag */
}

void cw_bytes(cmd_writer *w, const void *p, size_t n)
{
    cw_uvar(w, n);
    cw_raw(w, p, n);
}

void cr_init(cmd_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = false;
}

size_t cr_left(const cmd_reader *r)
{
    return r->err ? 0 : r->len - r->off;
}

uint8_t cr_u8(cmd_reader *r)
{
    if (r->err || r->off >= r->len) {
        r->err = true;
        return 0;
    }
    return r->p[r->off++];
}

uint32_t cr_u32le(cmd_reader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)cr_u8(r) << (8 * i);
    return v;
}

uint64_t cr_uvar(cmd_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = cr_u8(r);
        if (r->err)
            return 0;
        if (shift == 63 && b > 1) { /* would overflow 64 bits */
            r->err = true;
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->err = true;
    return 0;
}

int64_t cr_svar(cmd_reader *r)
{
    uint64_t u = cr_uvar(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

void cr_bytes(cmd_reader *r, const uint8_t **p, size_t *n)
{
    uint64_t len = cr_uvar(r);
    *p = NULL;
    *n = 0;
    if (r->err)
        return;
    if (len > r->len - r->off) {
        r->err = true;
        return;
    }
    if (len)
        *p = r->p + r->off;
    *n = (size_t)len;
    r->off += (size_t)len;
}
