/* HTTP/1.1 request parser (RFC 9112), strict and bounded.
 *
 * Two passes. The scan reads buf left to right without writing and records offsets; each
 * verdict (error, limit, done) depends only on the bytes before the point where it is
 * taken, so parsing a growing buffer gives the same answer as parsing the whole input at
 * once (the fuzzer checks this), and a MORE leaves buf untouched for the next call. Only a
 * complete request is then "materialized": NUL terminators written, the chunked body
 * decoded in place, the path percent-decoded into req->path_buf. */
#include "http.h"

#include <string.h>
#include <strings.h>

/* Wire bytes a chunked body may take beyond twice its decoded size: chunk-size lines,
 * extensions and trailers of a reasonable client fit easily. */
#define CHUNKED_SLACK 65536
/* A chunk-size line (size and extensions) longer than this is refused: with a resume point
 * only the unfinished line is scanned again on each call, so its length must be bounded. */
#define CHUNK_LINE_MAX 4096

void http_limits_default(http_limits *lim)
{
    lim->max_header_bytes = 8192;
    lim->max_body_bytes = (size_t)1024 * 1024;
    lim->header_timeout_ms = 10000;
    lim->idle_timeout_ms = 60000;
    lim->max_connections = 1024;
    lim->max_output_bytes = (size_t)4 * 1024 * 1024;
}

/* ---- character classes (RFC 9110 5.6.2, 5.5) ---- */

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP, HTAB, obs-text: anything but control characters. */
static int is_field_char(unsigned char c)
{
    return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

/* request-target bytes: visible ASCII except '#' (a fragment is never sent). */
static int is_target_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '#';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..n) into out (outsz bytes, NUL included). plus_space: '+' is a
 * space (form encoding). Returns the length, -1 for a malformed escape or %00, -2 when
 * out is too small. */
static long pct_decode(const char *src, size_t n, char *out, size_t outsz, int plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval((unsigned char)src[i + 1]);
            int lo = hexval((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return -1;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (o + 1 >= outsz)
            return -2;
        out[o++] = (char)c;
    }
    if (outsz == 0)
        return -2;
    out[o] = '\0';
    return (long)o;
}

/* ---- scan ---- */

enum scan_result { SCAN_DONE, SCAN_MORE, SCAN_ERROR };

struct field {
    size_t name, name_len, value, value_len;
};

struct scan {
    const char *buf;
    size_t len;
    size_t pos;
    /* Scanning stops at end = min(len, limit). Running out of bytes at the limit is the
     * limit_status error; before it, MORE. */
    size_t end, limit;
    int limit_status;
    const char *limit_why;
    int status;
    const char *why;

    size_t method, method_len, target, target_len;
    int minor;
    struct field f[HTTP_MAX_HEADERS];
    size_t nf;
    size_t head_end; /* just past the blank line */
    int chunked;
    size_t content_length;
    size_t body_end;
    http_parse_resume *resume; /* NULL, or where the chunked scan may continue */
};

static enum scan_result out_of_data(struct scan *s)
{
    if (s->end == s->limit) {
        s->status = s->limit_status;
        s->why = s->limit_why;
        return SCAN_ERROR;
    }
    return SCAN_MORE;
}

static enum scan_result fail(struct scan *s, int status, const char *why)
{
    s->status = status;
    s->why = why;
    return SCAN_ERROR;
}

static const char *bad_name_char(unsigned char c, int at_line_start)
{
    if ((c == ' ' || c == '\t') && at_line_start)
        return "obs-fold: header line starting with whitespace";
    if (c == ' ' || c == '\t')
        return "whitespace between header field name and colon";
    if (c == '\r' || c == '\n')
        return "header line without a colon";
    return "invalid character in a header field name";
}

static void set_window(struct scan *s, size_t limit, int limit_status, const char *limit_why)
{
    s->limit = limit;
    s->limit_status = limit_status;
    s->limit_why = limit_why;
    s->end = s->len < limit ? s->len : limit;
}

#define NEED(s)                                                                                    \
    do {                                                                                           \
        if ((s)->pos >= (s)->end)                                                                  \
            return out_of_data(s);                                                                 \
    } while (0)

static unsigned char cur(const struct scan *s)
{
    return (unsigned char)s->buf[s->pos];
}

/* Expects CR LF at pos. */
static enum scan_result expect_crlf(struct scan *s)
{
    NEED(s);
    if (cur(s) != '\r')
        return fail(s, 400, "line not ended by CRLF");
    s->pos++;
    NEED(s);
    if (cur(s) != '\n')
        return fail(s, 400, "CR not followed by LF");
    s->pos++;
    return SCAN_DONE;
}

static int target_ok_for_method(const struct scan *s)
{
    const char *t = s->buf + s->target;
    size_t n = s->target_len;
    if (t[0] == '/')
        return 1;
    if (n == 1 && t[0] == '*')
        return s->method_len == 7 && memcmp(s->buf + s->method, "OPTIONS", 7) == 0;
    return 0;
}

/* Offset and length of the path inside an origin- or absolute-form target; sets *root when
 * an absolute-form target has an empty path (it means "/"). 0 for a target of no known
 * form. */
static int target_path(const char *t, size_t n, size_t *off, size_t *len, int *root)
{
    *root = 0;
    size_t start = 0;
    if (t[0] != '/' && !(n == 1 && t[0] == '*')) {
        size_t scheme;
        if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
            scheme = 7;
        else if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
            scheme = 8;
        else
            return 0;
        size_t a = scheme;
        while (a < n && t[a] != '/' && t[a] != '?')
            a++;
        if (a == scheme)
            return 0; /* empty authority */
        start = a;
        if (start == n || t[start] == '?')
            *root = 1;
    }
    size_t e = start;
    while (e < n && t[e] != '?')
        e++;
    *off = start;
    *len = e - start;
    return 1;
}

static enum scan_result scan_request_line(struct scan *s)
{
    /* RFC 9112 2.2: ignore empty lines before the request line (they count toward the
     * header limit, so they are bounded). */
    for (;;) {
        NEED(s);
        if (cur(s) != '\r')
            break;
        enum scan_result r = expect_crlf(s);
        if (r != SCAN_DONE)
            return r;
    }
    s->method = s->pos;
    for (;;) {
        NEED(s);
        unsigned char c = cur(s);
        if (c == ' ')
            break;
        if (!is_tchar(c))
            return fail(s, 400, "invalid character in the method");
        s->pos++;
    }
    s->method_len = s->pos - s->method;
    if (s->method_len == 0)
        return fail(s, 400, "empty method");
    s->pos++;
    s->target = s->pos;
    for (;;) {
        NEED(s);
        unsigned char c = cur(s);
        if (c == ' ')
            break;
        if (!is_target_char(c))
            return fail(s, 400, "invalid character in the request target");
        s->pos++;
    }
    s->target_len = s->pos - s->target;
    if (s->target_len == 0)
        return fail(s, 400, "empty request target");
    size_t off, len;
    int root;
    if (!target_path(s->buf + s->target, s->target_len, &off, &len, &root))
        return fail(s, 400, "request target is neither origin-form nor absolute-form");
    if (s->buf[s->target] == '*' && !target_ok_for_method(s))
        return fail(s, 400, "asterisk-form target on a method other than OPTIONS");
    /* Validate the path's escapes now so the verdict is taken at this position. */
    char tmp[HTTP_MAX_PATH];
    long d = pct_decode(s->buf + s->target + off, len, tmp, sizeof(tmp), 0);
    if (d == -1)
        return fail(s, 400, "malformed percent-escape or %00 in the path");
    if (d == -2)
        return fail(s, 414, "decoded path longer than HTTP_MAX_PATH");
    s->pos++;
    static const char proto[] = "HTTP/";
    for (size_t i = 0; i < 5; i++) {
        NEED(s);
        if (cur(s) != (unsigned char)proto[i])
            return fail(s, 400, "malformed HTTP version");
        s->pos++;
    }
    int digits[2];
    for (int i = 0; i < 2; i++) {
        if (i == 1) {
            NEED(s);
            if (cur(s) != '.')
                return fail(s, 400, "malformed HTTP version");
            s->pos++;
        }
        NEED(s);
        if (cur(s) < '0' || cur(s) > '9')
            return fail(s, 400, "malformed HTTP version");
        digits[i] = cur(s) - '0';
        s->pos++;
    }
    if (digits[0] != 1 || digits[1] > 1)
        return fail(s, 505, "HTTP version other than 1.0 and 1.1");
    s->minor = digits[1];
    return expect_crlf(s);
}

/* One header (or trailer) field line, or the blank line ending the section (*blank = 1).
 * fld may be NULL (trailers are validated, not kept). */
static enum scan_result scan_field(struct scan *s, struct field *fld, int *blank)
{
    *blank = 0;
    NEED(s);
    if (cur(s) == '\r') {
        *blank = 1;
        return expect_crlf(s);
    }
    /* A line starting with whitespace is obs-fold (or whitespace before the first field
     * name); both are rejected (RFC 9112 5.2, 2.2). */
    size_t name = s->pos;
    for (;;) {
        NEED(s);
        unsigned char c = cur(s);
        if (c == ':')
            break;
        if (!is_tchar(c))
            return fail(s, 400, bad_name_char(c, s->pos == name));
        s->pos++;
    }
    size_t name_len = s->pos - name;
    if (name_len == 0)
        return fail(s, 400, "empty header field name");
    s->pos++;
    for (;;) {
        NEED(s);
        if (cur(s) != ' ' && cur(s) != '\t')
            break;
        s->pos++;
    }
    size_t value = s->pos, value_end = s->pos;
    for (;;) {
        NEED(s);
        unsigned char c = cur(s);
        if (c == '\r')
            break;
        if (!is_field_char(c))
            return fail(s, 400, "control character in a header field value");
        s->pos++;
        if (c != ' ' && c != '\t')
            value_end = s->pos;
    }
    enum scan_result r = expect_crlf(s);
    if (r != SCAN_DONE)
        return r;
    if (fld) {
        fld->name = name;
        fld->name_len = name_len;
        fld->value = value;
        fld->value_len = value_end - value;
    }
    return SCAN_DONE;
}

static int field_is(const struct scan *s, const struct field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(s->buf + f->name, name, n) == 0;
}

/* Does the comma-separated list in field f contain token tok (case-insensitive)? */
static int list_has_token(const struct scan *s, const struct field *f, const char *tok)
{
    const char *v = s->buf + f->value;
    size_t n = f->value_len, tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t st = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > st && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - st == tl && strncasecmp(v + st, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* Message framing and the header checks that need the whole section (RFC 9112 6). */
static enum scan_result check_headers(struct scan *s, const http_limits *lim, int *keep_alive)
{
    int hosts = 0, te = 0, have_cl = 0, conn_close = 0, conn_keep = 0;
    size_t cl = 0;
    for (size_t i = 0; i < s->nf; i++) {
        const struct field *f = &s->f[i];
        if (field_is(s, f, "host")) {
            hosts++;
        } else if (field_is(s, f, "content-length")) {
            const char *v = s->buf + f->value;
            if (f->value_len == 0)
                return fail(s, 400, "empty Content-Length");
            size_t n = 0;
            int too_big = 0;
            for (size_t k = 0; k < f->value_len; k++) {
                if (v[k] < '0' || v[k] > '9')
                    return fail(s, 400, "Content-Length is not digits only");
                if (!too_big) {
                    n = n * 10 + (size_t)(v[k] - '0');
                    if (n > lim->max_body_bytes)
                        too_big = 1;
                }
            }
            if (too_big)
                return fail(s, 413, "Content-Length above max_body_bytes");
            if (have_cl && n != cl)
                return fail(s, 400, "Content-Length fields with different values");
            have_cl = 1;
            cl = n;
        } else if (field_is(s, f, "transfer-encoding")) {
            te++;
            if (f->value_len != 7 || strncasecmp(s->buf + f->value, "chunked", 7) != 0)
                te = 1000; /* unknown coding, decided below after the 400 cases */
        } else if (field_is(s, f, "connection")) {
            conn_close |= list_has_token(s, f, "close");
            conn_keep |= list_has_token(s, f, "keep-alive");
        }
    }
    /* Two Host fields are ambiguous: 400. A missing Host in HTTP/1.1 is accepted although
     * RFC 9112 3.2 says 400: Patroni's REST API (python http.server) accepts it, and
     * health checkers written against it may omit it; nothing here routes by Host. */
    if (hosts > 1)
        return fail(s, 400, "more than one Host field");
    if (te) {
        /* TE with CL is a smuggling vector; chunked twice is invalid; HTTP/1.0 has no
         * chunked coding. */
        if (have_cl || s->minor == 0 || (te > 1 && te < 1000))
            return fail(s, 400, "Transfer-Encoding with Content-Length, twice, or in HTTP/1.0");
        if (te >= 1000)
            return fail(s, 501, "Transfer-Encoding other than chunked");
        s->chunked = 1;
    }
    s->content_length = cl;
    if (s->minor == 1)
        *keep_alive = !conn_close;
    else
        *keep_alive = conn_keep && !conn_close;
    return SCAN_DONE;
}

/* Chunked body (RFC 9112 7.1): sizes in hex, extensions ignored, trailers validated and
 * dropped. The decoded size is checked against max_body_bytes as each size is read. */
static enum scan_result scan_chunked(struct scan *s, const http_limits *lim)
{
    size_t wire_limit = (size_t)-1;
    if (lim->max_body_bytes <= ((size_t)-1 - CHUNKED_SLACK) / 2 - s->head_end)
        wire_limit = s->head_end + lim->max_body_bytes * 2 + CHUNKED_SLACK;
    set_window(s, wire_limit, 413,
               "chunked body above its wire bound (2 * max_body_bytes + 64 KiB)");
    size_t total = 0;
    http_parse_resume *rp = s->resume;
    if (rp && rp->head_end == s->head_end && rp->chunk_pos > s->head_end &&
        rp->chunk_pos <= s->len) {
        s->pos = rp->chunk_pos; /* chunks before this were scanned by an earlier call */
        total = rp->chunk_total;
    }
    for (;;) {
        size_t size = 0, ndig = 0, line = s->pos;
        if (rp) {
            rp->head_end = s->head_end;
            rp->chunk_pos = s->pos;
            rp->chunk_total = total;
        }
        for (;;) {
            NEED(s);
            if (s->pos - line >= CHUNK_LINE_MAX)
                return fail(s, 400, "chunk size line longer than 4096 bytes");
            int h = hexval(cur(s));
            if (h < 0)
                break;
            size = size * 16 + (size_t)h;
            ndig++;
            if (size > lim->max_body_bytes - total)
                return fail(s, 413, "chunked body above max_body_bytes");
            s->pos++;
        }
        if (ndig == 0)
            return fail(s, 400, "chunk size is not hexadecimal");
        /* chunk-ext: BWS ";" ... up to CR, any field characters; ignored. */
        for (;;) {
            NEED(s);
            if (s->pos - line >= CHUNK_LINE_MAX)
                return fail(s, 400, "chunk size line longer than 4096 bytes");
            if (cur(s) != ' ' && cur(s) != '\t')
                break;
            s->pos++;
        }
        if (cur(s) == ';') {
            for (;;) {
                NEED(s);
                if (s->pos - line >= CHUNK_LINE_MAX)
                    return fail(s, 400, "chunk size line longer than 4096 bytes");
                unsigned char c = cur(s);
                if (c == '\r')
                    break;
                if (!is_field_char(c))
                    return fail(s, 400, "control character in a chunk extension");
                s->pos++;
            }
        }
        enum scan_result r = expect_crlf(s);
        if (r != SCAN_DONE)
            return r;
        if (size == 0)
            break;
        total += size;
        /* Skip the data without looking at it, then its CRLF. */
        if (s->end - s->pos < size) {
            s->pos = s->end;
            return out_of_data(s);
        }
        s->pos += size;
        r = expect_crlf(s);
        if (r != SCAN_DONE)
            return r;
    }
    /* Trailer section: bounded by max_header_bytes of its own (431 beyond). */
    size_t tlimit = s->pos + lim->max_header_bytes;
    if (tlimit < s->limit)
        set_window(s, tlimit, 431, "trailer section above max_header_bytes");
    for (;;) {
        int blank;
        enum scan_result r = scan_field(s, NULL, &blank);
        if (r != SCAN_DONE)
            return r;
        if (blank)
            break;
    }
    s->content_length = total;
    s->body_end = s->pos;
    return SCAN_DONE;
}

static enum scan_result scan(struct scan *s, const http_limits *lim, int *keep_alive)
{
    set_window(s, lim->max_header_bytes, 431, "header section above max_header_bytes");
    enum scan_result r = scan_request_line(s);
    if (r != SCAN_DONE)
        return r;
    for (;;) {
        struct field fld;
        int blank;
        r = scan_field(s, &fld, &blank);
        if (r != SCAN_DONE)
            return r;
        if (blank)
            break;
        if (s->nf == HTTP_MAX_HEADERS)
            return fail(s, 431, "more than HTTP_MAX_HEADERS header fields");
        s->f[s->nf++] = fld;
    }
    s->head_end = s->pos;
    r = check_headers(s, lim, keep_alive);
    if (r != SCAN_DONE)
        return r;
    if (s->chunked)
        return scan_chunked(s, lim);
    if (s->len - s->head_end < s->content_length)
        return SCAN_MORE;
    s->body_end = s->head_end + s->content_length;
    return SCAN_DONE;
}

/* ---- materialize ---- */

/* Decodes the (validated) chunked body in place, starting one byte before head_end (the
 * LF of the blank line, no longer needed), and NUL-terminates it. Every chunk's size line
 * is at least 3 bytes, so the output never overtakes the input. */
static void dechunk(char *buf, const struct scan *s, http_request *req)
{
    size_t in = s->head_end, out = s->head_end - 1;
    char *body = buf + out;
    for (;;) {
        size_t size = 0;
        int h;
        while ((h = hexval((unsigned char)buf[in])) >= 0) {
            size = size * 16 + (size_t)h;
            in++;
        }
        while (buf[in] != '\n')
            in++;
        in++;
        if (size == 0)
            break;
        memmove(buf + out, buf + in, size);
        out += size;
        in += size + 2;
    }
    buf[out] = '\0';
    req->body = body;
    req->body_len = (size_t)(buf + out - body);
}

enum http_parse_result http_parse_request(char *buf, size_t len, const http_limits *lim,
                                          http_request *req, size_t *consumed, int *error_status)
{
    return http_parse_request_ex(buf, len, lim, req, consumed, error_status, NULL);
}

enum http_parse_result http_parse_request_ex(char *buf, size_t len, const http_limits *lim,
                                             http_request *req, size_t *consumed, int *error_status,
                                             const char **reason)
{
    return http_parse_request_r(buf, len, lim, req, consumed, error_status, reason, NULL);
}

enum http_parse_result http_parse_request_r(char *buf, size_t len, const http_limits *lim,
                                            http_request *req, size_t *consumed, int *error_status,
                                            const char **reason, http_parse_resume *resume)
{
    http_limits dflt;
    if (!lim) {
        http_limits_default(&dflt);
        lim = &dflt;
    }
    struct scan s;
    memset(&s, 0, sizeof(s));
    s.buf = buf;
    s.len = len;
    s.resume = resume;
    int keep_alive = 0;
    *consumed = 0;
    *error_status = 0;
    enum scan_result r = scan(&s, lim, &keep_alive);
    if (r == SCAN_MORE)
        return HTTP_PARSE_MORE;
    if (r == SCAN_ERROR) {
        *error_status = s.status;
        if (reason)
            *reason = s.why ? s.why : http_status_reason(s.status);
        return HTTP_PARSE_ERROR;
    }

    buf[s.method + s.method_len] = '\0';
    buf[s.target + s.target_len] = '\0';
    req->method = buf + s.method;
    req->target = buf + s.target;
    size_t off = 0, plen = 0;
    int root = 0;
    target_path(req->target, s.target_len, &off, &plen, &root);
    if (root) {
        strcpy(req->path_buf, "/");
    } else {
        (void)pct_decode(req->target + off, plen, req->path_buf, sizeof(req->path_buf), 0);
    }
    req->path = req->path_buf;
    const char *q = memchr(req->target, '?', s.target_len);
    req->query = q ? q + 1 : req->target + s.target_len;
    req->version_minor = s.minor;
    req->nheaders = s.nf;
    for (size_t i = 0; i < s.nf; i++) {
        buf[s.f[i].name + s.f[i].name_len] = '\0';
        buf[s.f[i].value + s.f[i].value_len] = '\0';
        req->headers[i].name = buf + s.f[i].name;
        req->headers[i].value = buf + s.f[i].value;
    }
    if (s.chunked) {
        dechunk(buf, &s, req);
    } else {
        char *body = buf + s.head_end - 1;
        memmove(body, buf + s.head_end, s.content_length);
        body[s.content_length] = '\0';
        req->body = body;
        req->body_len = s.content_length;
    }
    req->keep_alive = keep_alive;
    *consumed = s.body_end;
    return HTTP_PARSE_DONE;
}

/* ---- helpers on a parsed request ---- */

const char *http_request_header(const http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* Does the raw, form-encoded key k[0..n) decode to name? */
static int key_matches(const char *k, size_t n, const char *name)
{
    char tmp[256];
    long d = pct_decode(k, n, tmp, sizeof(tmp), 1);
    return d >= 0 && strcmp(tmp, name) == 0;
}

int http_form_param(const char *data, size_t len, const char *name, char *out, size_t outsz)
{
    size_t i = 0;
    while (i < len) {
        size_t st = i;
        while (i < len && data[i] != '&')
            i++;
        size_t e = i;
        i++;
        const char *eq = memchr(data + st, '=', e - st);
        size_t klen = eq ? (size_t)(eq - (data + st)) : e - st;
        if (e == st || !key_matches(data + st, klen, name))
            continue;
        if (!eq) {
            if (outsz == 0)
                return -2;
            out[0] = '\0';
            return 0;
        }
        long d = pct_decode(eq + 1, (size_t)(data + e - (eq + 1)), out, outsz, 1);
        return d < 0 ? -2 : (int)d;
    }
    return -1;
}

int http_query_param(const http_request *req, const char *name, char *out, size_t outsz)
{
    return http_form_param(req->query, strlen(req->query), name, out, outsz);
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 425:
        return "Too Early";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        break;
    }
    if (status >= 200 && status < 300)
        return "OK";
    if (status >= 300 && status < 400)
        return "Redirection";
    if (status >= 400 && status < 500)
        return "Client Error";
    return "Server Error";
}
