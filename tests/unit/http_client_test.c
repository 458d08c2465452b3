/* lib/http_client against lib/http's server (same loop, 127.0.60.3) and against a python3
 * http.server peer (tests/integration/http/py_server.py, 127.0.60.4): status and body,
 * methods, timeout, cancel (also from inside on_data), many concurrent requests, streamed
 * chunks arriving as they are sent, the body bound, connection reuse, refused
 * connections, freeing the client with requests in flight.
 * test-timeout: 120 */
#include "check.h"
#include "evloop.h"
#include "http.h"
#include "http_client.h"

#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static evloop *loop;
static http_server *srv;
static http_client *cli;
static char base[64];     /* http://127.0.60.3:PORT */
static char pybase[64];   /* http://127.0.60.4:PORT */
static int server_closes; /* on_close calls for deferred answers */
static char last_peer[64];

/* ---- the in-process server ---- */

struct deferred {
    http_conn *c;
    ev_timer *t;
    int chunks_left; /* >0: a stream */
    int sent;
    uint32_t ms;
};

static void deferred_closed(http_conn *c, void *arg)
{
    struct deferred *d = arg;
    server_closes++;
    if (d->t)
        evloop_timer_cancel(loop, d->t);
    free(d);
    (void)c;
}

static void deferred_fire(evloop *l, void *arg)
{
    struct deferred *d = arg;
    d->t = NULL;
    if (d->chunks_left > 0) {
        char b[32];
        int n = snprintf(b, sizeof(b), "chunk %d\n", d->sent++);
        if (http_stream_write(d->c, b, (size_t)n) < 0)
            return;
        if (--d->chunks_left == 0) {
            http_conn_on_close(d->c, NULL, NULL);
            http_stream_end(d->c);
            free(d);
            return;
        }
        d->t = evloop_timer_start(l, d->ms, deferred_fire, d);
        return;
    }
    http_conn_on_close(d->c, NULL, NULL);
    http_respond(d->c, 200, "text/plain", "late\n", 5);
    free(d);
}

static void defer(http_conn *c, uint32_t ms, int chunks)
{
    struct deferred *d = calloc(1, sizeof(*d));
    d->c = c;
    d->ms = ms;
    d->chunks_left = chunks;
    http_conn_on_close(c, deferred_closed, d);
    d->t = evloop_timer_start(loop, ms, deferred_fire, d);
}

static void handler(http_conn *c, const http_request *req, void *arg)
{
    (void)arg;
    snprintf(last_peer, sizeof(last_peer), "%s", http_conn_peer(c));
    char v[32];
    if (strcmp(req->path, "/hello") == 0) {
        http_respond(c, 200, "text/plain", "hello world\n", 12);
    } else if (strcmp(req->path, "/echo") == 0) {
        char extra[256];
        const char *xt = http_request_header(req, "X-Test");
        snprintf(extra, sizeof(extra), "X-Method: %s\r\nX-Test: %s\r\n", req->method, xt ? xt : "");
        http_respond_ex(c, 200, extra, "text/plain", req->body, req->body_len);
    } else if (strcmp(req->path, "/method") == 0) {
        http_respond(c, 200, "text/plain", req->method, strlen(req->method));
    } else if (strcmp(req->path, "/defer") == 0) {
        defer(c,
              http_query_param(req, "ms", v, sizeof(v)) > 0 ? (uint32_t)strtoul(v, NULL, 10) : 100,
              0);
    } else if (strcmp(req->path, "/stream") == 0) {
        http_stream_begin(c, 200, "text/plain");
        defer(c, 100, 5);
    } else if (strcmp(req->path, "/big") == 0) {
        static char big[100000];
        memset(big, 'b', sizeof(big));
        http_respond(c, 200, "text/plain", big, sizeof(big));
    } else {
        http_respond(c, 404, "text/plain", "nope\n", 5);
    }
}

/* ---- helpers ---- */

struct outcome {
    char x_method[32];
    int x_method_len;
    int done;
    int status;
    char error[256];
    char body[4096];
    size_t body_len;
    uint64_t at_ms;
};

static void on_done(const http_client_result *res, void *arg)
{
    struct outcome *o = arg;
    o->done++;
    o->status = res->status;
    snprintf(o->error, sizeof(o->error), "%s", res->error ? res->error : "");
    o->body_len = res->body_len;
    snprintf(o->body, sizeof(o->body), "%s", res->body);
    o->at_ms = evloop_update_now(loop);
    o->x_method_len = http_client_result_header(res, "x-METHOD", o->x_method, sizeof(o->x_method));
}

/* Runs the loop until *flag != 0 or timeout_ms passes; returns the flag. */
static int run_until(const int *flag, uint64_t timeout_ms)
{
    uint64_t end = evloop_update_now(loop) + timeout_ms;
    while (!*flag && evloop_update_now(loop) < end)
        evloop_run_once(loop, 20);
    return *flag;
}

static void run_for(uint64_t ms)
{
    int never = 0;
    run_until(&never, ms);
}

static void fetch(const char *url, const http_client_opts *o, struct outcome *out)
{
    memset(out, 0, sizeof(*out));
    CHECK(http_client_request(cli, url, o, on_done, out) != NULL);
    CHECK(run_until(&out->done, 10000));
}

/* ---- tests ---- */

TEST(get_status_and_body)
{
    char url[128];
    struct outcome o;
    snprintf(url, sizeof(url), "%s/hello", base);
    fetch(url, NULL, &o);
    CHECK_EQ_INT(o.status, 200);
    CHECK_STR(o.body, "hello world\n");
    CHECK_EQ_INT(o.body_len, 12);
    CHECK_EQ_INT(o.x_method_len, -1);
    snprintf(url, sizeof(url), "%s/missing", base);
    fetch(url, NULL, &o);
    CHECK_EQ_INT(o.status, 404);
    CHECK_STR(o.body, "nope\n");
}

TEST(methods_headers_body)
{
    char url[128];
    struct outcome o;
    static const char *const hdrs[] = {"X-Test: yes", "Content-Type: application/json", NULL};
    http_client_opts opts = {.method = "PUT", .headers = hdrs, .body = "{\"a\":1}", .body_len = 7};
    snprintf(url, sizeof(url), "%s/echo", base);
    fetch(url, &opts, &o);
    CHECK_EQ_INT(o.status, 200);
    CHECK_STR(o.body, "{\"a\":1}");
    /* Response headers are readable. */
    CHECK_EQ_INT(o.x_method_len, 3);
    CHECK_STR(o.x_method, "PUT");
    snprintf(url, sizeof(url), "%s/method", base);
    const char *methods[] = {"GET", "POST", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < 4; i++) {
        http_client_opts m = {.method = methods[i]};
        fetch(url, &m, &o);
        CHECK_EQ_INT(o.status, 200);
        CHECK_STR(o.body, methods[i]);
    }
    http_client_opts head = {.method = "HEAD"};
    fetch(url, &head, &o);
    CHECK_EQ_INT(o.status, 200);
    CHECK_EQ_INT(o.body_len, 0);
    /* A 1 MiB POST body arrives whole (and without waiting for 100-continue). */
    size_t n = 1000000;
    char *big = malloc(n);
    memset(big, 'p', n);
    http_client_opts post = {.method = "POST", .body = big, .body_len = n, .timeout_ms = 5000};
    snprintf(url, sizeof(url), "%s/echo", base);
    uint64_t t0 = evloop_update_now(loop);
    memset(&o, 0, sizeof(o));
    CHECK(http_client_request(cli, url, &post, on_done, &o) != NULL);
    free(big); /* the client copied it */
    CHECK(run_until(&o.done, 10000));
    CHECK_EQ_INT(o.status, 200);
    CHECK_EQ_INT(o.body_len, n);
    CHECK(o.at_ms - t0 < 900);
}

TEST(timeout_fires)
{
    char url[128];
    struct outcome o;
    snprintf(url, sizeof(url), "%s/defer?ms=3000", base);
    http_client_opts opts = {.timeout_ms = 200};
    int closes = server_closes;
    uint64_t t0 = evloop_update_now(loop);
    fetch(url, &opts, &o);
    uint64_t took = o.at_ms - t0;
    CHECK_EQ_INT(o.status, 0);
    CHECK(strstr(o.error, "imeout") || strstr(o.error, "timed out"));
    if (took < 180 || took > 1000)
        CHECK_FAIL_("timeout after %llu ms", (unsigned long long)took);
    /* The server saw the client leave its deferred request. */
    uint64_t end = evloop_update_now(loop) + 3000;
    while (server_closes == closes && evloop_update_now(loop) < end)
        evloop_run_once(loop, 20);
    CHECK_EQ_INT(server_closes, closes + 1);
}

TEST(cancel)
{
    char url[128];
    struct outcome o;
    memset(&o, 0, sizeof(o));
    snprintf(url, sizeof(url), "%s/defer?ms=300", base);
    int closes = server_closes;
    last_peer[0] = '\0';
    http_client_req *r = http_client_request(cli, url, NULL, on_done, &o);
    CHECK(r != NULL);
    /* Let the request reach the server, then cancel it. */
    uint64_t end = evloop_update_now(loop) + 3000;
    while (strcmp(last_peer, "") == 0 && evloop_update_now(loop) < end)
        evloop_run_once(loop, 5);
    http_client_cancel(cli, r);
    end = evloop_update_now(loop) + 3000;
    while (server_closes == closes && evloop_update_now(loop) < end)
        evloop_run_once(loop, 20);
    CHECK_EQ_INT(server_closes, closes + 1);
    run_for(400); /* past the answer time: done must still not run */
    CHECK_EQ_INT(o.done, 0);
    /* Cancel before the loop ever ran for it. */
    r = http_client_request(cli, url, NULL, on_done, &o);
    http_client_cancel(cli, r);
    run_for(400);
    CHECK_EQ_INT(o.done, 0);
}

TEST(many_concurrent)
{
    enum { N = 200 };
    static struct outcome o[N];
    char url[128];
    snprintf(url, sizeof(url), "%s/defer?ms=300", base);
    uint64_t t0 = evloop_update_now(loop);
    for (int i = 0; i < N; i++) {
        memset(&o[i], 0, sizeof(o[i]));
        http_client_opts opts = {.timeout_ms = 10000};
        CHECK(http_client_request(cli, url, &opts, on_done, &o[i]) != NULL);
    }
    int all = 0, ok200 = 0;
    uint64_t end = t0 + 15000;
    while (!all && evloop_update_now(loop) < end) {
        evloop_run_once(loop, 20);
        all = 1;
        for (int i = 0; i < N; i++)
            all &= o[i].done == 1;
    }
    uint64_t last = 0;
    for (int i = 0; i < N; i++) {
        ok200 += o[i].status == 200 && strcmp(o[i].body, "late\n") == 0;
        if (o[i].at_ms > last)
            last = o[i].at_ms;
    }
    CHECK_EQ_INT(ok200, N);
    /* Concurrent: 200 x 300 ms in well under 200 x 300 ms. */
    if (last - t0 > 3000)
        CHECK_FAIL_("%d requests of 300 ms took %llu ms", N, (unsigned long long)(last - t0));
}

/* on_data and done get the same arg: the outcome comes first so on_done can use it. */
struct stream_rec {
    struct outcome o;
    char data[512];
    size_t len;
    uint64_t at[16];
    int n;
    int abort_after; /* return -1 after this many pieces (0: never) */
    int cancel_after;
    http_client_req *req;
    char url2[128];
    struct outcome nested;
};

static int on_piece(const char *data, size_t len, void *arg)
{
    struct stream_rec *s = arg;
    if (s->len + len < sizeof(s->data)) {
        memcpy(s->data + s->len, data, len);
        s->len += len;
        s->data[s->len] = '\0';
    }
    if (s->n < 16)
        s->at[s->n] = evloop_update_now(loop);
    s->n++;
    if (s->abort_after && s->n >= s->abort_after)
        return -1;
    if (s->cancel_after && s->n == s->cancel_after) {
        http_client_cancel(cli, s->req);
        /* Starting a request from inside curl's callback works too. */
        CHECK(http_client_request(cli, s->url2, NULL, on_done, &s->nested) != NULL);
    }
    return 0;
}

TEST(streaming_chunks_arrive_as_sent)
{
    static struct stream_rec s;
    memset(&s, 0, sizeof(s));
    char url[128];
    snprintf(url, sizeof(url), "%s/stream", base);
    http_client_opts opts = {.on_data = on_piece};
    uint64_t t0 = evloop_update_now(loop);
    CHECK(http_client_request(cli, url, &opts, on_done, &s) != NULL);
    CHECK(run_until(&s.o.done, 5000));
    struct outcome o = s.o;
    CHECK_EQ_INT(o.status, 200);
    CHECK_STR(s.data, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    CHECK_EQ_INT(o.body_len, 0);
    CHECK(s.n >= 5);
    /* Five chunks 100 ms apart: the first arrives long before the end. */
    if (!(s.at[0] - t0 < 350 && o.at_ms - s.at[0] >= 300))
        CHECK_FAIL_("first chunk at %llu ms, end at %llu ms", (unsigned long long)(s.at[0] - t0),
                    (unsigned long long)(o.at_ms - t0));
}

TEST(stream_abort_and_cancel_from_callback)
{
    static struct stream_rec s;
    memset(&s, 0, sizeof(s));
    char url[128];
    snprintf(url, sizeof(url), "%s/stream", base);
    http_client_opts opts = {.on_data = on_piece};
    /* on_data returning -1 ends the transfer with an error. */
    s.abort_after = 2;
    CHECK(http_client_request(cli, url, &opts, on_done, &s) != NULL);
    CHECK(run_until(&s.o.done, 5000));
    CHECK_EQ_INT(s.o.status, 0);
    CHECK(strstr(s.o.error, "data callback") != NULL);
    CHECK_EQ_INT(s.n, 2);

    memset(&s, 0, sizeof(s));
    s.cancel_after = 1;
    snprintf(s.url2, sizeof(s.url2), "%s/hello", base);
    s.req = http_client_request(cli, url, &opts, on_done, &s);
    CHECK(s.req != NULL);
    CHECK(run_until(&s.nested.done, 5000));
    CHECK_EQ_INT(s.nested.status, 200);
    run_for(700);
    CHECK_EQ_INT(s.o.done, 0);
    CHECK_EQ_INT(s.n, 1);
}

TEST(body_bound)
{
    char url[128];
    struct outcome o;
    snprintf(url, sizeof(url), "%s/big", base);
    http_client_opts opts = {.max_body_bytes = 1000};
    fetch(url, &opts, &o);
    CHECK_EQ_INT(o.status, 0);
    CHECK(strstr(o.error, "max_body_bytes") != NULL);
    CHECK_EQ_INT(o.body_len, 0);
    http_client_opts roomy = {.max_body_bytes = 100000};
    fetch(url, &roomy, &o);
    CHECK_EQ_INT(o.status, 200);
    CHECK_EQ_INT(o.body_len, 100000);
}

static char chain_peer[5][64];
static int chain_n;
static void chain_done(const http_client_result *res, void *arg)
{
    (void)res;
    snprintf(chain_peer[chain_n], sizeof(chain_peer[0]), "%s", last_peer);
    if (++chain_n < 5)
        http_client_request(cli, arg, NULL, chain_done, arg);
}

TEST(connection_reuse)
{
    static char url[128];
    snprintf(url, sizeof(url), "%s/hello", base);
    chain_n = 0;
    CHECK(http_client_request(cli, url, NULL, chain_done, url) != NULL);
    uint64_t end = evloop_update_now(loop) + 5000;
    while (chain_n < 5 && evloop_update_now(loop) < end)
        evloop_run_once(loop, 20);
    CHECK_EQ_INT(chain_n, 5);
    for (int i = 1; i < 5; i++)
        CHECK_STR(chain_peer[i], chain_peer[0]);
}

TEST(result_header_lookup)
{
    static const char h[] = "Content-Type: text/plain\r\nX-Two:  two words \t\r\nX-Empty:\r\n"
                            "x-two: second\r\n";
    http_client_result res = {.status = 200, .headers = h, .headers_len = sizeof(h) - 1};
    char out[16];
    CHECK_EQ_INT(http_client_result_header(&res, "x-two", out, sizeof(out)), 9);
    CHECK_STR(out, "two words");
    CHECK_EQ_INT(http_client_result_header(&res, "CONTENT-TYPE", out, sizeof(out)), 10);
    CHECK_STR(out, "text/plain");
    CHECK_EQ_INT(http_client_result_header(&res, "x-empty", out, sizeof(out)), 0);
    CHECK_STR(out, "");
    CHECK_EQ_INT(http_client_result_header(&res, "x-tw", out, sizeof(out)), -1);
    CHECK_EQ_INT(http_client_result_header(&res, "x-two", out, 9), -2);
    http_client_result none = {.status = 0, .headers = "", .headers_len = 0};
    CHECK_EQ_INT(http_client_result_header(&none, "x-two", out, sizeof(out)), -1);
}

TEST(refused_connection)
{
    struct outcome o;
    /* 127.0.60.5:1 has no listener. */
    fetch("http://127.0.60.5:1/", NULL, &o);
    CHECK_EQ_INT(o.status, 0);
    CHECK(o.error[0] != '\0');
}

TEST(python_peer)
{
    char url[128];
    struct outcome o;
    snprintf(url, sizeof(url), "%s/hello", pybase);
    fetch(url, NULL, &o);
    CHECK_EQ_INT(o.status, 200);
    CHECK_STR(o.body, "hello from python\n");
    /* Reuse: two sequential requests from the same client port. */
    char p1[sizeof(o.body)], p2[sizeof(o.body)];
    snprintf(url, sizeof(url), "%s/peer", pybase);
    fetch(url, NULL, &o);
    snprintf(p1, sizeof(p1), "%s", o.body);
    fetch(url, NULL, &o);
    snprintf(p2, sizeof(p2), "%s", o.body);
    CHECK_STR(p1, p2);
    /* Timeout against a peer that is merely slow. */
    snprintf(url, sizeof(url), "%s/sleep?ms=2000", pybase);
    http_client_opts t = {.timeout_ms = 300};
    uint64_t t0 = evloop_update_now(loop);
    fetch(url, &t, &o);
    CHECK_EQ_INT(o.status, 0);
    CHECK(o.at_ms - t0 < 1500);
    /* Streamed chunks from python arrive as it writes them (200 ms apart). */
    static struct stream_rec s;
    memset(&s, 0, sizeof(s));
    snprintf(url, sizeof(url), "%s/chunks?n=4&ms=200", pybase);
    http_client_opts st = {.on_data = on_piece, .timeout_ms = 5000};
    t0 = evloop_update_now(loop);
    CHECK(http_client_request(cli, url, &st, on_done, &s) != NULL);
    CHECK(run_until(&s.o.done, 5000));
    CHECK_EQ_INT(s.o.status, 200);
    CHECK_STR(s.data, "part 0\npart 1\npart 2\npart 3\n");
    if (!(s.n >= 4 && s.at[0] - t0 < 500 && s.at[3] - s.at[0] >= 450))
        CHECK_FAIL_("pieces %d, first at %llu ms, fourth %llu ms later", s.n,
                    (unsigned long long)(s.at[0] - t0), (unsigned long long)(s.at[3] - s.at[0]));
}

static int free_done_calls;
static void count_done(const http_client_result *res, void *arg)
{
    (void)res;
    (void)arg;
    free_done_calls++;
}

TEST(free_with_requests_in_flight)
{
    http_client *c2 = http_client_new(loop);
    char url[128];
    snprintf(url, sizeof(url), "%s/defer?ms=200", base);
    for (int i = 0; i < 5; i++)
        CHECK(http_client_request(c2, url, NULL, count_done, NULL) != NULL);
    run_for(50);
    http_client_free(c2);
    run_for(400);
    CHECK_EQ_INT(free_done_calls, 0);
}

/* The client freed from inside its own callbacks: done (with other requests in flight)
 * and on_data. ASan reports any use after free or leak. */
static http_client *doomed;
static int doomed_done;
static void free_in_done(const http_client_result *res, void *arg)
{
    (void)res;
    (void)arg;
    doomed_done++;
    http_client_free(doomed);
}
static int free_in_data(const char *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    (void)arg;
    doomed_done++;
    http_client_free(doomed);
    return 0;
}

TEST(free_from_inside_callbacks)
{
    char fast[128], slow[128], stream[128];
    snprintf(fast, sizeof(fast), "%s/hello", base);
    snprintf(slow, sizeof(slow), "%s/defer?ms=300", base);
    snprintf(stream, sizeof(stream), "%s/stream", base);
    doomed = http_client_new(loop);
    doomed_done = 0;
    CHECK(http_client_request(doomed, fast, NULL, free_in_done, NULL) != NULL);
    CHECK(http_client_request(doomed, slow, NULL, free_in_done, NULL) != NULL);
    run_for(600);
    CHECK_EQ_INT(doomed_done, 1); /* the slow one was cancelled by the free */

    doomed = http_client_new(loop);
    doomed_done = 0;
    http_client_opts o = {.on_data = free_in_data};
    CHECK(http_client_request(doomed, stream, &o, free_in_done, NULL) != NULL);
    run_for(800);
    CHECK_EQ_INT(doomed_done, 1); /* on_data once; neither on_data nor done again */
}

/* ---- setup ---- */

static pid_t py_pid;
static int py_stdin = -1;

__attribute__((noinline)) static int start_python(void)
{
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {"python3", "tests/integration/http/py_server.py", "127.0.60.4", NULL};
    volatile int rc = posix_spawnp(&py_pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0)
        return -1;
    py_stdin = in[1];
    char line[64] = "";
    size_t n = 0;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    while (n < sizeof(line) - 1 && !memchr(line, '\n', n) && poll(&p, 1, 10000) > 0) {
        ssize_t r = read(out[0], line + n, sizeof(line) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        line[n] = '\0';
    }
    close(out[0]);
    if (strncmp(line, "ready ", 6) != 0)
        return -1;
    long port = strtol(line + 6, NULL, 10);
    if (port <= 0 || port > 65535)
        return -1;
    snprintf(pybase, sizeof(pybase), "http://127.0.60.4:%ld", port);
    return 0;
}

int main(void)
{
    loop = evloop_new();
    srv = http_server_new(loop, NULL, handler, NULL);
    if (!srv || http_server_listen(srv, "127.0.60.3", "0") < 0) {
        printf("not ok 1 - server listens on 127.0.60.3\n");
        return 1;
    }
    snprintf(base, sizeof(base), "http://127.0.60.3:%d", http_server_bound_port(srv));
    cli = http_client_new(loop);
    int py = start_python();
    RUN(get_status_and_body);
    RUN(methods_headers_body);
    RUN(timeout_fires);
    RUN(cancel);
    RUN(many_concurrent);
    RUN(streaming_chunks_arrive_as_sent);
    RUN(stream_abort_and_cancel_from_callback);
    RUN(body_bound);
    RUN(connection_reuse);
    RUN(result_header_lookup);
    RUN(refused_connection);
    if (py == 0) {
        RUN(python_peer);
    } else {
        check_number++;
        check_failed++;
        printf("not ok %d - python_peer: py_server.py did not start\n", check_number);
    }
    RUN(free_with_requests_in_flight);
    RUN(free_from_inside_callbacks);
    http_client_free(cli);
    http_server_free(srv);
    evloop_free(loop);
    if (py_stdin >= 0) {
        close(py_stdin);
        waitpid(py_pid, NULL, 0);
    }
    return check_done();
}
