/* lib/http parser: a table of requests with their verdicts (each also fed byte by byte,
 * which must reach the same verdict at the same point), then the decoded fields: path
 * decoding, query/form parameters, chunked bodies, pipelining, keep-alive rules. */
#include "check.h"
#include "http.h"

#include <stdlib.h>

struct parse_case {
    const char *name;
    const char *in;
    int result; /* HTTP_PARSE_* */
    int status; /* for ERROR */
};

#define H11 "Host: x\r\n"
static const struct parse_case cases[] = {
    {"get", "GET / HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_DONE, 0},
    {"get 1.0 no host", "GET / HTTP/1.0\r\n\r\n", HTTP_PARSE_DONE, 0},
    {"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_DONE, 0},
    {"absolute form", "GET http://a:1/v2/keys?x=1 HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_DONE, 0},
    {"absolute no path", "GET http://a:1 HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_DONE, 0},
    {"absolute empty authority", "GET http:///x HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"options star", "OPTIONS * HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_DONE, 0},
    {"get star", "GET * HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"authority form", "CONNECT a:80 HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"partial", "GET / HTTP/1.1\r\nHost: x\r\n", HTTP_PARSE_MORE, 0},
    {"partial line", "GET / HT", HTTP_PARSE_MORE, 0},
    {"http/2.0", "GET / HTTP/2.0\r\n\r\n", HTTP_PARSE_ERROR, 505},
    {"http/1.2", "GET / HTTP/1.2\r\n\r\n", HTTP_PARSE_ERROR, 505},
    {"http/0.9 style", "GET /\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"lowercase proto", "GET / http/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"version junk", "GET / HTTP/1.1x\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"double space", "GET  / HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"tab separator", "GET\t/ HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"bad method char", "G(T / HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"empty method", " / HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HTTP_PARSE_ERROR, 400},
    {"target no slash", "GET abc HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"target fragment", "GET /a#b HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"target non-ascii", "GET /\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"target ctl", "GET /a\x01 HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"pct nul", "GET /a%00b HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"pct short", "GET /a%4 HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"pct bad hex", "GET /a%zz HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_ERROR, 400},
    {"pct in query ok", "GET /a?x=%zz HTTP/1.1\r\n" H11 "\r\n", HTTP_PARSE_DONE, 0},
    {"bare lf", "GET / HTTP/1.1\n" H11 "\n", HTTP_PARSE_ERROR, 400},
    {"bare cr in header", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"lf in value", "GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"tab before colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"obs-fold", "GET / HTTP/1.1\r\n" H11 "X-A: 1\r\n 2\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"obs-fold tab", "GET / HTTP/1.1\r\n" H11 "X-A: 1\r\n\t2\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"ws before first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"empty name", "GET / HTTP/1.1\r\n" H11 ": x\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"no colon", "GET / HTTP/1.1\r\n" H11 "X-A\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"nul in value", "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"del in value", "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"obs-text value ok", "GET / HTTP/1.1\r\n" H11 "X-A: \xe9t\xe9\r\n\r\n", HTTP_PARSE_DONE, 0},
    {"empty value ok", "GET / HTTP/1.1\r\n" H11 "X-A:\r\n\r\n", HTTP_PARSE_DONE, 0},
    {"1.1 no host tolerated", "GET / HTTP/1.1\r\n\r\n", HTTP_PARSE_DONE, 0},
    {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"cl body", "POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\n\r\nabc", HTTP_PARSE_DONE, 0},
    {"cl short body", "POST / HTTP/1.1\r\n" H11 "Content-Length: 4\r\n\r\nabc", HTTP_PARSE_MORE, 0},
    {"cl sign", "POST / HTTP/1.1\r\n" H11 "Content-Length: +3\r\n\r\nabc", HTTP_PARSE_ERROR, 400},
    {"cl hex", "POST / HTTP/1.1\r\n" H11 "Content-Length: 0x3\r\n\r\nabc", HTTP_PARSE_ERROR, 400},
    {"cl empty", "POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n", HTTP_PARSE_ERROR, 400},
    {"cl list", "POST / HTTP/1.1\r\n" H11 "Content-Length: 3, 3\r\n\r\nabc", HTTP_PARSE_ERROR, 400},
    {"cl dup same", "POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\nContent-Length: 03\r\n\r\nabc",
     HTTP_PARSE_DONE, 0},
    {"cl dup differ",
     "POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
     HTTP_PARSE_ERROR, 400},
    {"cl too big", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1048577\r\n\r\n", HTTP_PARSE_ERROR,
     413},
    {"cl huge", "POST / HTTP/1.1\r\n" H11 "Content-Length: 99999999999999999999999999\r\n\r\n",
     HTTP_PARSE_ERROR, 413},
    {"chunked", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
     HTTP_PARSE_DONE, 0},
    {"chunked upper", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
     HTTP_PARSE_DONE, 0},
    {"chunked ext+trailer",
     "POST / HTTP/1.1\r\n" H11
     "Transfer-Encoding: chunked\r\n\r\nA;foo=bar\r\n0123456789\r\n0 ; x\r\nX-T: 1\r\n\r\n",
     HTTP_PARSE_DONE, 0},
    {"chunked partial", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n3\r\nab",
     HTTP_PARSE_MORE, 0},
    {"chunked no crlf after data",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
     HTTP_PARSE_ERROR, 400},
    {"chunked bad size", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
     HTTP_PARSE_ERROR, 400},
    {"chunked size too big",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n",
     HTTP_PARSE_ERROR, 413},
    {"chunked trailer fold",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n 2\r\n\r\n",
     HTTP_PARSE_ERROR, 400},
    {"te + cl", "POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     HTTP_PARSE_ERROR, 400},
    {"te twice",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     HTTP_PARSE_ERROR, 400},
    {"te gzip", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n",
     HTTP_PARSE_ERROR, 501},
    {"te identity", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: identity\r\n\r\n",
     HTTP_PARSE_ERROR, 501},
    {"te in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     HTTP_PARSE_ERROR, 400},
};

static void check_case(const struct parse_case *pc, size_t inlen)
{
    http_limits lim;
    http_limits_default(&lim);
    http_request req;
    size_t consumed;
    int status;
    char *one = malloc(inlen + 1);
    memcpy(one, pc->in, inlen);
    enum http_parse_result r = http_parse_request(one, inlen, &lim, &req, &consumed, &status);
    if ((int)r != pc->result || (r == HTTP_PARSE_ERROR && status != pc->status)) {
        free(one);
        CHECK_FAIL_("case '%s': result %d status %d, want %d %d", pc->name, r, status, pc->result,
                    pc->status);
    }
    /* Growing prefixes: MORE until the same verdict as the whole input. */
    char *grow = malloc(inlen + 1);
    memcpy(grow, pc->in, inlen);
    for (size_t n = 0; n <= inlen; n++) {
        size_t c2;
        int s2;
        http_request req2;
        enum http_parse_result r2 = http_parse_request(grow, n, &lim, &req2, &c2, &s2);
        if (r2 == HTTP_PARSE_MORE)
            continue;
        int ok = r2 == r && s2 == status && (r != HTTP_PARSE_DONE || c2 == consumed);
        free(grow);
        free(one);
        if (!ok)
            CHECK_FAIL_("case '%s': prefix %zu gives %d/%d, whole gives %d/%d", pc->name, n, r2, s2,
                        r, status);
        return;
    }
    free(grow);
    free(one);
    CHECK(r == HTTP_PARSE_MORE);
}

TEST(table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* "nul in value" holds a NUL: measure by the terminating CRLFCRLF instead. */
        size_t n = strlen(cases[i].in);
        if (strcmp(cases[i].name, "nul in value") == 0)
            n = sizeof("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n") - 1;
        check_case(&cases[i], n);
    }
}

static enum http_parse_result parse_str(char *buf, http_request *req, size_t *consumed, int *st)
{
    http_limits lim;
    http_limits_default(&lim);
    return http_parse_request(buf, strlen(buf), &lim, req, consumed, st);
}

TEST(fields)
{
    char buf[] = "POST /v2/keys/a%20b%2Fc?recursive=true&x=a%2Bb+c&flag HTTP/1.1\r\n"
                 "Host: example\r\ncontent-type:  text/plain \t\r\nX-Empty:\r\n"
                 "Content-Length: 5\r\n\r\nhelloGET";
    http_request req;
    size_t consumed, len = strlen(buf);
    int st;
    CHECK_EQ_INT(parse_str(buf, &req, &consumed, &st), HTTP_PARSE_DONE);
    CHECK_EQ_INT(consumed, len - 3);
    CHECK_STR(req.method, "POST");
    CHECK_STR(req.target, "/v2/keys/a%20b%2Fc?recursive=true&x=a%2Bb+c&flag");
    CHECK_STR(req.path, "/v2/keys/a b/c");
    CHECK_STR(req.query, "recursive=true&x=a%2Bb+c&flag");
    CHECK_EQ_INT(req.version_minor, 1);
    CHECK_EQ_INT(req.nheaders, 4);
    CHECK_STR(http_request_header(&req, "CONTENT-TYPE"), "text/plain");
    CHECK_STR(http_request_header(&req, "x-empty"), "");
    CHECK(http_request_header(&req, "missing") == NULL);
    CHECK_EQ_INT(req.body_len, 5);
    CHECK_STR(req.body, "hello");
    CHECK_EQ_INT(req.keep_alive, 1);
    char out[16];
    CHECK_EQ_INT(http_query_param(&req, "recursive", out, sizeof(out)), 4);
    CHECK_STR(out, "true");
    CHECK_EQ_INT(http_query_param(&req, "x", out, sizeof(out)), 5);
    CHECK_STR(out, "a+b c");
    CHECK_EQ_INT(http_query_param(&req, "flag", out, sizeof(out)), 0);
    CHECK_STR(out, "");
    CHECK_EQ_INT(http_query_param(&req, "nope", out, sizeof(out)), -1);
    CHECK_EQ_INT(http_query_param(&req, "recursive", out, 4), -2);
    CHECK_EQ_INT(http_query_param(&req, "recursive", out, 5), 4);
}

TEST(query_param_errors)
{
    char buf[] = "GET /?a=%zz&b=%00&c=%4&d=%41 HTTP/1.0\r\n\r\n";
    http_request req;
    size_t consumed;
    int st;
    CHECK_EQ_INT(parse_str(buf, &req, &consumed, &st), HTTP_PARSE_DONE);
    char out[8];
    CHECK_EQ_INT(http_query_param(&req, "a", out, sizeof(out)), -2);
    CHECK_EQ_INT(http_query_param(&req, "b", out, sizeof(out)), -2);
    CHECK_EQ_INT(http_query_param(&req, "c", out, sizeof(out)), -2);
    CHECK_EQ_INT(http_query_param(&req, "d", out, sizeof(out)), 1);
    CHECK_STR(out, "A");
    CHECK_STR(req.path, "/");
    CHECK_EQ_INT(http_form_param("value=x%3Dy&ttl=30", 18, "ttl", out, sizeof(out)), 2);
    CHECK_STR(out, "30");
    CHECK_EQ_INT(http_form_param("value=x%3Dy&ttl=30", 18, "value", out, sizeof(out)), 3);
    CHECK_STR(out, "x=y");
    CHECK_EQ_INT(http_form_param("value=x%3Dy&ttl=30", 15, "ttl", out, sizeof(out)), 0);
}

TEST(absolute_form_and_no_query)
{
    char buf[] = "GET http://h:8008/patroni HTTP/1.1\r\nHost: h\r\n\r\n";
    http_request req;
    size_t consumed;
    int st;
    CHECK_EQ_INT(parse_str(buf, &req, &consumed, &st), HTTP_PARSE_DONE);
    CHECK_STR(req.path, "/patroni");
    CHECK_STR(req.query, "");
    CHECK_STR(req.target, "http://h:8008/patroni");
    char buf2[] = "GET HTTP://h?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ_INT(parse_str(buf2, &req, &consumed, &st), HTTP_PARSE_DONE);
    CHECK_STR(req.path, "/");
    CHECK_STR(req.query, "x=1");
}

TEST(chunked_body_decoded)
{
    char buf[] = "PUT /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5;name=val\r\nhello\r\n1\r\n \r\n00006\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n"
                 "GET / HTTP/1.1\r\n";
    http_request req;
    size_t consumed;
    int st;
    CHECK_EQ_INT(parse_str(buf, &req, &consumed, &st), HTTP_PARSE_DONE);
    CHECK_EQ_INT(req.body_len, 12);
    CHECK_STR(req.body, "hello world!");
    CHECK_STR(buf + consumed, "GET / HTTP/1.1\r\n");
    /* Trailers are not exposed as headers. */
    CHECK(http_request_header(&req, "X-Trailer") == NULL);
    CHECK_STR(http_request_header(&req, "transfer-encoding"), "chunked");
}

TEST(pipelined_requests)
{
    char buf[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n"
                 "Connection: close\r\n\r\nGET /c";
    size_t len = strlen(buf), off = 0;
    const char *paths[] = {"/a", "/b"};
    int keep[] = {1, 0};
    http_limits lim;
    http_limits_default(&lim);
    for (int i = 0; i < 2; i++) {
        http_request req;
        size_t consumed;
        int st;
        CHECK_EQ_INT(http_parse_request(buf + off, len - off, &lim, &req, &consumed, &st),
                     HTTP_PARSE_DONE);
        CHECK_STR(req.path, paths[i]);
        CHECK_EQ_INT(req.keep_alive, keep[i]);
        CHECK_EQ_INT(req.body_len, 0);
        CHECK_STR(req.body, "");
        off += consumed;
    }
    http_request req;
    size_t consumed;
    int st;
    CHECK_EQ_INT(http_parse_request(buf + off, len - off, &lim, &req, &consumed, &st),
                 HTTP_PARSE_MORE);
}

TEST(keep_alive_rules)
{
    struct {
        const char *in;
        int keep;
    } k[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade, close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", k[i].in);
        http_request req;
        size_t consumed;
        int st;
        CHECK_EQ_INT(parse_str(buf, &req, &consumed, &st), HTTP_PARSE_DONE);
        if (req.keep_alive != k[i].keep)
            CHECK_FAIL_("'%s': keep_alive %d", k[i].in, req.keep_alive);
    }
}

TEST(limits)
{
    http_limits lim;
    http_limits_default(&lim);
    lim.max_header_bytes = 64;
    lim.max_body_bytes = 10;
    http_request req;
    size_t consumed;
    int st;
    char big[200];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nX-Long: %060d\r\n\r\n", 0);
    CHECK_EQ_INT(http_parse_request(big, strlen(big), &lim, &req, &consumed, &st),
                 HTTP_PARSE_ERROR);
    CHECK_EQ_INT(st, 431);
    /* A header section of exactly the limit is fine. */
    char exact[65];
    snprintf(exact, sizeof(exact), "GET / HTTP/1.1\r\nHost: x\r\nX: %032d\r\n\r\n", 0);
    CHECK_EQ_INT(strlen(exact), 64);
    CHECK_EQ_INT(http_parse_request(exact, 64, &lim, &req, &consumed, &st), HTTP_PARSE_DONE);
    /* No end of headers within the limit, even while it is still incomplete. */
    char partial[100];
    memset(partial, 'a', sizeof(partial));
    partial[0] = 'G', partial[1] = 'E', partial[2] = 'T', partial[3] = ' ', partial[4] = '/';
    CHECK_EQ_INT(http_parse_request(partial, sizeof(partial), &lim, &req, &consumed, &st),
                 HTTP_PARSE_ERROR);
    CHECK_EQ_INT(st, 431);
    char body[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
    CHECK_EQ_INT(http_parse_request(body, strlen(body), &lim, &req, &consumed, &st),
                 HTTP_PARSE_ERROR);
    CHECK_EQ_INT(st, 413);
    char chunked[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n";
    CHECK_EQ_INT(http_parse_request(chunked, strlen(chunked), &lim, &req, &consumed, &st),
                 HTTP_PARSE_ERROR);
    CHECK_EQ_INT(st, 413);
    /* More than HTTP_MAX_HEADERS fields. */
    http_limits_default(&lim);
    char many[4096] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "H%d: v\r\n", i);
    strcat(many, "\r\n");
    CHECK_EQ_INT(http_parse_request(many, strlen(many), &lim, &req, &consumed, &st),
                 HTTP_PARSE_ERROR);
    CHECK_EQ_INT(st, 431);
    /* A path that does not fit HTTP_MAX_PATH. */
    char *longpath = malloc(HTTP_MAX_PATH + 64);
    strcpy(longpath, "GET /");
    memset(longpath + 5, 'p', HTTP_MAX_PATH);
    strcpy(longpath + 5 + HTTP_MAX_PATH, " HTTP/1.1\r\nHost: x\r\n\r\n");
    enum http_parse_result r =
        http_parse_request(longpath, strlen(longpath), &lim, &req, &consumed, &st);
    free(longpath);
    CHECK_EQ_INT(r, HTTP_PARSE_ERROR);
    CHECK_EQ_INT(st, 414);
}

TEST(more_leaves_buffer_untouched)
{
    char buf[] = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc";
    char copy[sizeof(buf)];
    memcpy(copy, buf, sizeof(buf));
    http_request req;
    size_t consumed;
    int st;
    CHECK_EQ_INT(parse_str(buf, &req, &consumed, &st), HTTP_PARSE_MORE);
    CHECK(memcmp(buf, copy, sizeof(buf)) == 0);
}

TEST(error_reasons)
{
    struct {
        const char *in;
        const char *reason;
    } k[] = {
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "whitespace between header field name and colon"},
        {"GET / HTTP/1.1\r\nA: 1\r\n 2\r\n\r\n", "obs-fold: header line starting with whitespace"},
        {"GET / HTTP/1.1\nHost: x\n\n", "line not ended by CRLF"},
        {"GET / HTTP/1.1\r\nA\r\n\r\n", "header line without a colon"},
        {"GET / HTTP/1.1\r\nA: \x01\r\n\r\n", "control character in a header field value"},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "Content-Length fields with different values"},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         "Transfer-Encoding with Content-Length, twice, or in HTTP/1.0"},
        {"GET /%zz HTTP/1.1\r\n\r\n", "malformed percent-escape or %00 in the path"},
        {"GET / HTTP/3.0\r\n\r\n", "HTTP version other than 1.0 and 1.1"},
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", k[i].in);
        http_request req;
        size_t consumed;
        int st;
        const char *why = NULL;
        CHECK_EQ_INT(http_parse_request_ex(buf, strlen(buf), NULL, &req, &consumed, &st, &why),
                     HTTP_PARSE_ERROR);
        CHECK_STR(why, k[i].reason);
    }
    http_limits lim;
    http_limits_default(&lim);
    lim.max_header_bytes = 20;
    char buf[] = "GET / HTTP/1.1\r\nHost: xxxxxxxx\r\n\r\n";
    http_request req;
    size_t consumed;
    int st;
    const char *why = NULL;
    CHECK_EQ_INT(http_parse_request_ex(buf, strlen(buf), &lim, &req, &consumed, &st, &why),
                 HTTP_PARSE_ERROR);
    CHECK_EQ_INT(st, 431);
    CHECK_STR(why, "header section above max_header_bytes");
}

/* A 120 kB body in 1-byte chunks (720 kB on the wire) fed a few bytes at a time: with a
 * resume point the parse is linear (a rescan from the start on every call would be about
 * 10^11 steps and time out). Same verdict and body as one shot. */
TEST(resume_makes_slow_chunked_upload_linear)
{
    size_t nchunks = 120000;
    size_t cap = 128 + nchunks * 6 + 16;
    char *wire = malloc(cap), *copy = malloc(cap);
    size_t n = (size_t)snprintf(wire, cap,
                                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < nchunks; i++) {
        static const char frame[6] = {'1', '\r', '\n', 'x', '\r', '\n'};
        memcpy(wire + n, frame, sizeof(frame));
        wire[n + 3] = (char)('a' + i % 26);
        n += sizeof(frame);
    }
    n += (size_t)snprintf(wire + n, cap - n, "0\r\n\r\n");
    memcpy(copy, wire, n);
    http_limits lim;
    http_limits_default(&lim);
    http_parse_resume resume;
    memset(&resume, 0, sizeof(resume));
    http_request req;
    size_t consumed = 0;
    int st = 0;
    const char *why = NULL;
    enum http_parse_result r = HTTP_PARSE_MORE;
    size_t len = 0, calls = 0;
    while (r == HTTP_PARSE_MORE && len < n) {
        len = len + 7 > n ? n : len + 7;
        calls++;
        r = http_parse_request_r(wire, len, &lim, &req, &consumed, &st, &why, &resume);
    }
    CHECK_EQ_INT(r, HTTP_PARSE_DONE);
    CHECK_EQ_INT(consumed, n);
    CHECK_EQ_INT(req.body_len, nchunks);
    CHECK(req.body[0] == 'a' && req.body[25] == 'z' && req.body[26] == 'a');
    CHECK(calls > 100000);
    http_request one;
    CHECK_EQ_INT(http_parse_request(copy, n, &lim, &one, &consumed, &st), HTTP_PARSE_DONE);
    CHECK_EQ_INT(one.body_len, req.body_len);
    CHECK(memcmp(one.body, req.body, req.body_len) == 0);
    free(wire);
    free(copy);
}

TEST(chunk_line_bound)
{
    char *buf = malloc(8192);
    int k =
        snprintf(buf, 8192, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    memset(buf + k, 'e', 5000);
    http_request req;
    size_t consumed;
    int st;
    const char *why = NULL;
    CHECK_EQ_INT(http_parse_request_ex(buf, (size_t)k + 5000, NULL, &req, &consumed, &st, &why),
                 HTTP_PARSE_ERROR);
    free(buf);
    CHECK_EQ_INT(st, 400);
    CHECK_STR(why, "chunk size line longer than 4096 bytes");
}

TEST(status_reasons)
{
    CHECK_STR(http_status_reason(200), "OK");
    CHECK_STR(http_status_reason(503), "Service Unavailable");
    CHECK_STR(http_status_reason(431), "Request Header Fields Too Large");
    CHECK_STR(http_status_reason(299), "OK");
    CHECK_STR(http_status_reason(599), "Server Error");
}

int main(void)
{
    RUN(table);
    RUN(fields);
    RUN(query_param_errors);
    RUN(absolute_form_and_no_query);
    RUN(chunked_body_decoded);
    RUN(pipelined_requests);
    RUN(keep_alive_rules);
    RUN(limits);
    RUN(more_leaves_buffer_untouched);
    RUN(error_reasons);
    RUN(resume_makes_slow_chunked_upload_linear);
    RUN(chunk_line_bound);
    RUN(status_reasons);
    return check_done();
}
