/* A small server on lib/http for the integration tests and the benchmark.
 *
 *   test_server HOST PORT [header_timeout_ms idle_timeout_ms max_connections max_body]
 *
 * Prints "ready PORT" on stdout once listening; SIGTERM/SIGINT end it cleanly (the server
 * and loop are freed, so the sanitizer build reports leaks). Routes:
 *   GET|HEAD /hello            200 "hello world\n"
 *   ANY /echo...               200, the body back; X-Method, X-Path (decoded), X-Query-A
 *   GET /defer?ms=N            answered N ms later from a timer (deferred answer)
 *   GET /stream?n=N&ms=M       N chunks "chunk I\n", one every M ms, then the end
 *   GET /watch                 a chunk every 100 ms until the client leaves (on_close)
 *   GET /big?n=N               N bytes of 'x'
 *   GET /status?code=N         status N, empty body
 *   GET /stats                 "closed=C requests=R"
 *   anything else              404 */
#include "evloop.h"
#include "http.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static evloop *loop;
static long closed_count, request_count;

struct pending {
    http_conn *conn;
    ev_timer *timer;
    int kind; /* 0 deferred answer, 1 stream */
    int left, sent;
    long ms;
    struct pending *next, **prevp;
};
static struct pending *pendings;

static void pending_unlink(struct pending *p)
{
    *p->prevp = p->next;
    if (p->next)
        p->next->prevp = p->prevp;
}

static void pending_closed(http_conn *c, void *arg)
{
    struct pending *p = arg;
    closed_count++;
    if (p->timer)
        evloop_timer_cancel(loop, p->timer);
    pending_unlink(p);
    free(p);
    (void)c;
}

static void pending_fire(evloop *l, void *arg)
{
    struct pending *p = arg;
    p->timer = NULL;
    if (p->kind == 0) {
        char body[64];
        int n = snprintf(body, sizeof(body), "deferred %ld\n", p->ms);
        http_conn *c = p->conn;
        http_conn_on_close(c, NULL, NULL);
        pending_unlink(p);
        free(p);
        http_respond(c, 200, "text/plain", body, (size_t)n);
        return;
    }
    char chunk[64];
    int n = snprintf(chunk, sizeof(chunk), "chunk %d\n", p->sent++);
    if (http_stream_write(p->conn, chunk, (size_t)n) < 0)
        return; /* pending_closed already ran */
    if (p->left > 0 && --p->left == 0) {
        http_conn *c = p->conn;
        http_conn_on_close(c, NULL, NULL);
        pending_unlink(p);
        free(p);
        http_stream_end(c);
        return;
    }
    p->timer = evloop_timer_start(l, (uint64_t)p->ms, pending_fire, p);
}

static struct pending *pending_new(http_conn *c, int kind, long ms, int left)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->conn = c;
    p->kind = kind;
    p->ms = ms;
    p->left = left;
    p->next = pendings;
    if (pendings)
        pendings->prevp = &p->next;
    p->prevp = &pendings;
    pendings = p;
    http_conn_on_close(c, pending_closed, p);
    p->timer = evloop_timer_start(loop, (uint64_t)ms, pending_fire, p);
    return p;
}

static long qnum(const http_request *req, const char *name, long dflt)
{
    char v[32];
    if (http_query_param(req, name, v, sizeof(v)) <= 0)
        return dflt;
    return strtol(v, NULL, 10);
}

static void handle(http_conn *c, const http_request *req, void *arg)
{
    (void)arg;
    request_count++;
    const char *p = req->path;
    if (strcmp(p, "/hello") == 0) {
        http_respond(c, 200, "text/plain", "hello world\n", 12);
    } else if (strncmp(p, "/echo", 5) == 0) {
        char extra[2048], a[256] = "";
        (void)http_query_param(req, "a", a, sizeof(a));
        snprintf(extra, sizeof(extra), "X-Method: %s\r\nX-Path: %s\r\nX-Query-A: %s\r\n",
                 req->method, req->path, a);
        http_respond_ex(c, 200, extra, "application/octet-stream", req->body, req->body_len);
    } else if (strcmp(p, "/defer") == 0) {
        if (!pending_new(c, 0, qnum(req, "ms", 100), 0))
            http_respond(c, 500, NULL, NULL, 0);
    } else if (strcmp(p, "/stream") == 0 || strcmp(p, "/watch") == 0) {
        int watch = p[1] == 'w';
        if (http_stream_begin(c, 200, "text/plain") < 0)
            return;
        int n = watch ? 0 : (int)qnum(req, "n", 3);
        if (!watch && n <= 0) {
            http_stream_end(c);
            return;
        }
        if (!pending_new(c, 1, watch ? 100 : qnum(req, "ms", 100), n))
            http_stream_end(c);
    } else if (strcmp(p, "/big") == 0) {
        long n = qnum(req, "n", 1000);
        if (n < 0 || n > 64L * 1024 * 1024) {
            http_respond(c, 400, "text/plain", "bad n\n", 6);
            return;
        }
        char *b = malloc((size_t)n + 1);
        if (!b) {
            http_respond(c, 500, NULL, NULL, 0);
            return;
        }
        memset(b, 'x', (size_t)n);
        http_respond(c, 200, "application/octet-stream", b, (size_t)n);
        free(b);
    } else if (strcmp(p, "/status") == 0) {
        http_respond(c, (int)qnum(req, "code", 200), NULL, NULL, 0);
    } else if (strcmp(p, "/stats") == 0) {
        char body[96];
        int n =
            snprintf(body, sizeof(body), "closed=%ld requests=%ld\n", closed_count, request_count);
        http_respond(c, 200, "text/plain", body, (size_t)n);
    } else {
        http_respond(c, 404, "text/plain", "not found\n", 10);
    }
}

static void on_signal(evloop *l, int fd, uint32_t events, void *arg)
{
    struct signalfd_siginfo si;
    (void)!read(fd, &si, sizeof(si));
    evloop_stop(l);
    (void)events;
    (void)arg;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST PORT [header_ms idle_ms max_conns max_body]\n", argv[0]);
        return 2;
    }
    http_limits lim;
    http_limits_default(&lim);
    if (argc > 3)
        lim.header_timeout_ms = (uint32_t)strtoul(argv[3], NULL, 10);
    if (argc > 4)
        lim.idle_timeout_ms = (uint32_t)strtoul(argv[4], NULL, 10);
    if (argc > 5)
        lim.max_connections = (uint32_t)strtoul(argv[5], NULL, 10);
    if (argc > 6)
        lim.max_body_bytes = strtoul(argv[6], NULL, 10);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    loop = evloop_new();
    http_server *srv = http_server_new(loop, &lim, handle, NULL);
    if (!loop || !srv || sfd < 0 || http_server_listen(srv, argv[1], argv[2]) < 0) {
        perror("test_server: listen");
        return 1;
    }
    evloop_add_fd(loop, sfd, EPOLLIN, on_signal, NULL);
    printf("ready %d\n", http_server_bound_port(srv));
    fflush(stdout);
    evloop_run(loop);
    http_server_free(srv);
    evloop_del_fd(loop, sfd);
    close(sfd);
    evloop_free(loop);
    return 0;
}
