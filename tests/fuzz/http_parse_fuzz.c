/* Fuzzes the HTTP request parser. Input: 2 control bytes, then the request bytes.
 * Byte 0 picks the limits (tiny ones reach the 413/431 paths) and byte 1 seeds the split
 * points. Checks: no crash or sanitizer report; a MORE leaves the buffer untouched; feeding
 * the input in random splits reaches exactly the verdict (result, status, reason, consumed,
 * every field) of parsing it in one shot; pipelined requests are parsed the same way in turn. */
#include "http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void same_request(const http_request *a, const char *abuf, const http_request *b,
                         const char *bbuf)
{
    /* Field pointers point into each own buffer: compare the offsets and the strings. */
    if (a->method - abuf != b->method - bbuf || strcmp(a->method, b->method) != 0 ||
        strcmp(a->target, b->target) != 0 || strcmp(a->path, b->path) != 0 ||
        strcmp(a->query, b->query) != 0 || a->version_minor != b->version_minor ||
        a->nheaders != b->nheaders || a->body_len != b->body_len ||
        memcmp(a->body, b->body, a->body_len) != 0 || a->keep_alive != b->keep_alive ||
        a->body[a->body_len] != '\0')
        abort();
    for (size_t i = 0; i < a->nheaders; i++)
        if (strcmp(a->headers[i].name, b->headers[i].name) != 0 ||
            strcmp(a->headers[i].value, b->headers[i].value) != 0)
            abort();
    if (a->path[0] != '/' && strcmp(a->path, "*") != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    http_limits lim;
    http_limits_default(&lim);
    if (data[0] & 1) {
        lim.max_header_bytes = 32 + (size_t)(data[0] >> 1) * 4;
        lim.max_body_bytes = (size_t)(data[0] >> 3) * 3;
    }
    uint32_t rng = data[1] * 2654435761u + 1;
    data += 2;
    size = size - 2;

    char *orig = malloc(size + 1), *one = malloc(size + 1), *inc = malloc(size + 1);
    memcpy(orig, data, size);
    memcpy(one, data, size);
    memcpy(inc, data, size);
    size_t off = 0;
    for (int round = 0; round < 8 && off <= size; round++) {
        http_request ra, rb;
        size_t ca, cb;
        int sa, sb;
        const char *why_a = NULL, *why_b = NULL;
        enum http_parse_result a =
            http_parse_request_ex(one + off, size - off, &lim, &ra, &ca, &sa, &why_a);
        if (a == HTTP_PARSE_MORE && memcmp(one + off, orig + off, size - off) != 0)
            abort();
        size_t n = 0;
        enum http_parse_result b = HTTP_PARSE_MORE;
        /* The incremental side uses a resume point, as the server does. */
        http_parse_resume resume;
        memset(&resume, 0, sizeof(resume));
        while (b == HTTP_PARSE_MORE && n < size - off) {
            rng = rng * 1103515245u + 12345u;
            size_t step = 1 + (rng >> 16) % 64;
            n = n + step > size - off ? size - off : n + step;
            b = http_parse_request_r(inc + off, n, &lim, &rb, &cb, &sb, &why_b, &resume);
            if (b == HTTP_PARSE_MORE && memcmp(inc + off, orig + off, size - off) != 0)
                abort();
        }
        if (size - off == 0)
            b = http_parse_request_ex(inc + off, 0, &lim, &rb, &cb, &sb, &why_b);
        if (a != b)
            abort();
        /* Same status and the same reason (the same static string). */
        if (a == HTTP_PARSE_ERROR && (sa != sb || !why_a || why_a != why_b))
            abort();
        if (a == HTTP_PARSE_ERROR && sa != 400 && sa != 413 && sa != 414 && sa != 431 &&
            sa != 501 && sa != 505)
            abort();
        if (a != HTTP_PARSE_DONE)
            break;
        if (ca != cb || ca == 0 || ca > size - off)
            abort();
        same_request(&ra, one + off, &rb, inc + off);
        char tmp[64];
        (void)http_query_param(&ra, "a", tmp, sizeof(tmp));
        (void)http_request_header(&ra, "host");
        off += ca;
    }
    free(orig);
    free(one);
    free(inc);
    return 0;
}
