/* Protocol Buffers wire codec (see pb_wire.h). */
#include "dcs/pb_wire.h"

#include <stdlib.h>
#include <string.h>

void pb_reader_init(pb_reader *r, const uint8_t *data, size_t len)
{
    r->p = data;
    r->end = data ? data + len : data;
}

static int read_varint(pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        /* the 10th byte may only carry the top bit of a 64-bit value */
        if (i == 9 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int pb_next(pb_reader *r, pb_field *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (read_varint(r, &key) != 0 || key >> 32 != 0)
        return -1;
    memset(f, 0, sizeof(*f));
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    if (f->num == 0 || f->num > 536870911u)
        return -1;
    switch (f->wire) {
    case PB_VARINT:
        return read_varint(r, &f->u) == 0 ? 1 : -1;
    case PB_I64:
        if ((size_t)(r->end - r->p) < 8)
            return -1;
        for (int i = 7; i >= 0; i--)
            f->u = (f->u << 8) | r->p[i];
        r->p += 8;
        return 1;
    case PB_I32:
        if ((size_t)(r->end - r->p) < 4)
            return -1;
        for (int i = 3; i >= 0; i--)
            f->u = (f->u << 8) | r->p[i];
        r->p += 4;
        return 1;
    case PB_LEN: {
        uint64_t n;
        if (read_varint(r, &n) != 0 || n > (uint64_t)(r->end - r->p))
            return -1;
        f->ptr = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    default:
        return -1; /* groups (3, 4) and reserved types 6, 7 */
    }
}

void pb_buf_init(pb_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void pb_buf_free(pb_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static bool reserve(pb_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > b->max || b->len > b->max - extra) {
        b->failed = true;
        return false;
    }
    if (b->len + extra <= b->cap)
        return true;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + extra)
        ncap *= 2;
    if (ncap > b->max)
        ncap = b->max;
    uint8_t *nd = realloc(b->data, ncap);
    if (!nd) {
        b->failed = true;
        return false;
    }
    b->data = nd;
    b->cap = ncap;
    return true;
}

void pb_raw(pb_buf *b, const void *data, size_t len)
{
    if (!len || !reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

size_t pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

void pb_varint(pb_buf *b, uint64_t v)
{
    if (!reserve(b, 10))
        return;
    b->len += put_varint(b->data + b->len, v);
}

void pb_tag(pb_buf *b, uint32_t field, int wire)
{
    pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

void pb_u64(pb_buf *b, uint32_t field, uint64_t v)
{
    if (!v)
        return;
    pb_tag(b, field, PB_VARINT);
    pb_varint(b, v);
}

void pb_i64(pb_buf *b, uint32_t field, int64_t v)
{
    pb_u64(b, field, (uint64_t)v); /* int64: two's complement, 10 bytes when negative */
}

void pb_bool(pb_buf *b, uint32_t field, bool v)
{
    pb_u64(b, field, v ? 1 : 0);
}

void pb_bytes_rep(pb_buf *b, uint32_t field, const void *data, size_t len)
{
    pb_tag(b, field, PB_LEN);
    pb_varint(b, len);
    pb_raw(b, data, len);
}

void pb_bytes(pb_buf *b, uint32_t field, const void *data, size_t len)
{
    if (len)
        pb_bytes_rep(b, field, data, len);
}

void pb_str(pb_buf *b, uint32_t field, const char *s)
{
    if (s)
        pb_bytes(b, field, s, strlen(s));
}

size_t pb_begin(pb_buf *b, uint32_t field)
{
    pb_tag(b, field, PB_LEN);
    /* one byte reserved for the length; pb_end moves the body when it needs more */
    if (reserve(b, 1))
        b->data[b->len++] = 0;
    return b->len;
}

void pb_end(pb_buf *b, size_t mark)
{
    if (b->failed || mark == 0 || mark > b->len)
        return;
    size_t body = b->len - mark;
    size_t need = pb_varint_size(body);
    if (need > 1) {
        if (!reserve(b, need - 1))
            return;
        memmove(b->data + mark + need - 1, b->data + mark, body);
        b->len += need - 1;
    }
    put_varint(b->data + mark - 1, body);
}
