/* lib/http server edge cases, in process (server and raw client sockets on one loop,
 * 127.0.60.6): the stream output bound against a client that stops reading, the
 * write-stall timeout, answers the handler gets wrong (twice, bad headers, bad status,
 * 204), http_server_free with a deferred request, listen errors. */
#include "check.h"
#include "evloop.h"
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

static evloop *loop;
static int closes;
static http_conn *held;
static int stream_result;
static size_t stream_written;

static void count_close(http_conn *c, void *arg)
{
    closes++;
    if (c == held)
        held = NULL;
    /* Calls on a closed connection are ignored. */
    http_respond(c, 200, NULL, "x", 1);
    (void)arg;
}

static void pump_stream(evloop *l, void *arg)
{
    static char piece[16384];
    memset(piece, 's', sizeof(piece));
    while (held) {
        int r = http_stream_write(held, piece, sizeof(piece));
        if (r < 0) {
            stream_result = -1;
            return;
        }
        stream_written += sizeof(piece);
        if (stream_written > (size_t)64 * 1024 * 1024) {
            stream_result = 2; /* never stopped: the bound does not work */
            return;
        }
    }
    (void)l;
    (void)arg;
}

static void handler(http_conn *c, const http_request *req, void *arg)
{
    (void)arg;
    if (strcmp(req->path, "/stream") == 0) {
        http_conn_on_close(c, count_close, NULL);
        CHECK(http_stream_begin(c, 200, "text/plain") == 0);
        held = c;
        evloop_timer_start(loop, 0, pump_stream, NULL);
    } else if (strcmp(req->path, "/huge") == 0) {
        size_t n = (size_t)8 * 1024 * 1024;
        char *b = calloc(1, n);
        http_conn_on_close(c, count_close, NULL);
        http_respond(c, 200, "application/octet-stream", b, n);
        free(b);
    } else if (strcmp(req->path, "/twice") == 0) {
        http_respond(c, 200, "text/plain", "one", 3);
        http_respond(c, 200, "text/plain", "two", 3);
    } else if (strcmp(req->path, "/badheader") == 0) {
        http_respond_ex(c, 200, "X-Bad: a\r\nInjected\r\n", "text/plain", "x", 1);
    } else if (strcmp(req->path, "/framing") == 0) {
        http_respond_ex(c, 200, "Content-Length: 5\r\n", "text/plain", "x", 1);
    } else if (strcmp(req->path, "/keepalive") == 0) {
        http_respond_ex(c, 200, "Connection: keep-alive\r\n", "text/plain", "x", 1);
    } else if (strcmp(req->path, "/close") == 0) {
        http_respond_ex(c, 200, "X-A: 1\r\nconnection:  Close \r\n", "text/plain", "x", 1);
    } else if (strcmp(req->path, "/badstatus") == 0) {
        http_respond(c, 99, "text/plain", "x", 1);
    } else if (strcmp(req->path, "/204") == 0) {
        http_respond(c, 204, NULL, "ignored", 7);
    } else if (strcmp(req->path, "/hold") == 0) {
        http_conn_on_close(c, count_close, NULL);
        held = c;
    } else {
        http_respond(c, 404, NULL, NULL, 0);
    }
}

static http_server *start(const http_limits *lim, int *port)
{
    http_server *srv = http_server_new(loop, lim, handler, NULL);
    CHECK(srv != NULL);
    CHECK(http_server_listen(srv, "127.0.60.6", "0") == 0);
    *port = http_server_bound_port(srv);
    CHECK(*port > 0);
    return srv;
}

static int client(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.60.6", &a.sin_addr);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Runs the loop, collecting what fd receives, until `want` appears, EOF, or timeout.
 * Returns 1 on EOF. */
static int collect(int fd, char *buf, size_t cap, size_t *len, const char *want, int timeout_ms)
{
    uint64_t end = evloop_update_now(loop) + (uint64_t)timeout_ms;
    while (evloop_update_now(loop) < end) {
        evloop_run_once(loop, 10);
        for (;;) {
            ssize_t n = recv(fd, buf + *len, cap - 1 - *len, MSG_DONTWAIT);
            if (n > 0) {
                *len += (size_t)n;
                buf[*len] = '\0';
                continue;
            }
            if (n == 0)
                return 1;
            break;
        }
        if (want && strstr(buf, want))
            return 0;
    }
    return 0;
}

static void exchange(int port, const char *request, char *out, size_t cap)
{
    int fd = client(port, 0);
    size_t len = 0;
    out[0] = '\0';
    CHECK(send(fd, request, strlen(request), 0) == (ssize_t)strlen(request));
    collect(fd, out, cap, &len, NULL, 300);
    close(fd);
}

TEST(stream_output_bound_closes_slow_reader)
{
    http_limits lim;
    http_limits_default(&lim);
    lim.max_output_bytes = (size_t)256 * 1024;
    int port;
    http_server *srv = start(&lim, &port);
    int fd = client(port, 4096);
    const char *req = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send(fd, req, strlen(req), 0) == (ssize_t)strlen(req));
    closes = 0;
    stream_result = 0;
    stream_written = 0;
    uint64_t end = evloop_update_now(loop) + 5000;
    while (stream_result == 0 && evloop_update_now(loop) < end)
        evloop_run_once(loop, 10);
    CHECK_EQ_INT(stream_result, -1);
    CHECK_EQ_INT(closes, 1);
    CHECK(held == NULL);
    /* What was accepted is bounded by the limit plus the kernel's socket buffers. */
    CHECK(stream_written < (size_t)16 * 1024 * 1024);
    close(fd);
    http_server_free(srv);
}

TEST(write_stall_timeout)
{
    http_limits lim;
    http_limits_default(&lim);
    lim.idle_timeout_ms = 300;
    int port;
    http_server *srv = start(&lim, &port);
    int fd = client(port, 4096);
    const char *req = "GET /huge HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send(fd, req, strlen(req), 0) == (ssize_t)strlen(req));
    closes = 0;
    uint64_t t0 = evloop_update_now(loop);
    uint64_t end = t0 + 5000;
    while (closes == 0 && evloop_update_now(loop) < end)
        evloop_run_once(loop, 10);
    uint64_t took = evloop_update_now(loop) - t0;
    CHECK_EQ_INT(closes, 1);
    if (took < 250 || took > 2000)
        CHECK_FAIL_("stalled reader closed after %llu ms", (unsigned long long)took);
    close(fd);
    http_server_free(srv);
}

TEST(handler_mistakes)
{
    int port;
    http_server *srv = start(NULL, &port);
    char out[2048];
    exchange(port, "GET /twice HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
    CHECK(strstr(out, "\r\n\r\none") != NULL);
    CHECK(strstr(out, "two") == NULL);
    exchange(port, "GET /badheader HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
    CHECK(strstr(out, "Injected") == NULL);
    exchange(port, "GET /framing HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 500 ", 13) == 0);
    exchange(port, "GET /keepalive HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 500 ", 13) == 0);
    /* The handler's Connection: close is kept (once) and the connection really closes:
     * the pipelined second request gets no answer. */
    exchange(port, "GET /close HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\n",
             out, sizeof(out));
    CHECK_STR(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n"
                   "X-A: 1\r\nconnection:  Close \r\n\r\nx");
    exchange(port, "GET /badstatus HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 500 ", 13) == 0);
    exchange(port, "GET /204 HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
    CHECK_STR(out, "HTTP/1.1 204 No Content\r\n\r\n");
    exchange(port, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
    CHECK_STR(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    http_server_free(srv);
}

TEST(free_with_deferred_request)
{
    int port;
    http_server *srv = start(NULL, &port);
    int fd = client(port, 0);
    const char *req = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send(fd, req, strlen(req), 0) == (ssize_t)strlen(req));
    held = NULL;
    closes = 0;
    uint64_t end = evloop_update_now(loop) + 3000;
    while (!held && evloop_update_now(loop) < end)
        evloop_run_once(loop, 10);
    CHECK(held != NULL);
    http_server_free(srv);
    CHECK_EQ_INT(closes, 1);
    CHECK(held == NULL);
    char buf[64];
    size_t len = 0;
    buf[0] = '\0';
    CHECK(collect(fd, buf, sizeof(buf), &len, NULL, 1000) == 1); /* EOF, no answer */
    CHECK_EQ_INT(len, 0);
    close(fd);
}

TEST(listen_errors)
{
    http_server *srv = http_server_new(loop, NULL, handler, NULL);
    errno = 0;
    CHECK_EQ_INT(http_server_listen(srv, "no such host name.invalid", "80"), -1);
    CHECK_EQ_INT(http_server_listen(srv, "127.0.60.6", "notaport"), -1);
    CHECK_EQ_INT(http_server_bound_port(srv), -1);
    /* A port already taken by another listener without SO_REUSEPORT. */
    CHECK(http_server_listen(srv, "127.0.60.6", "0") == 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", http_server_bound_port(srv));
    http_server *other = http_server_new(loop, NULL, handler, NULL);
    CHECK_EQ_INT(http_server_listen(other, "127.0.60.6", port), -1);
    CHECK_EQ_INT(errno, EADDRINUSE);
    http_server_free(other);
    http_server_free(srv);
}

int main(void)
{
    loop = evloop_new();
    RUN(stream_output_bound_closes_slow_reader);
    RUN(write_stall_timeout);
    RUN(handler_mistakes);
    RUN(free_with_deferred_request);
    RUN(listen_errors);
    evloop_free(loop);
    return check_done();
}
