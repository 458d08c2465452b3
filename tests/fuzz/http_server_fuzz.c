/* Fuzzes the HTTP server's connection state machine: fuzzed client bytes, split at fuzzed
 * points, go through a socketpair adopted by the server, whose handler answers in fuzzed
 * ways (at once, deferred, streamed, left streaming, twice, with bad headers, 204). The
 * client end keeps reading, so output never stalls; at the end the client half-closes and
 * the server is freed. Checks: no crash, leak or sanitizer report, and everything the
 * server writes starts with an HTTP/1.1 status line.
 *
 * Input: byte 0 picks the limits, byte 1 the number of handler modes (1..8) followed by
 * the modes, then segments of [length byte][bytes]; a zero length runs the loop a while. */
#include "evloop.h"
#include "http.h"
#include "log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static evloop *loop;
static uint8_t modes[8];
static size_t nmodes, next_mode;

struct pending {
    http_conn *c;
    ev_timer *t;
    int stream;
};

static void pending_closed(http_conn *c, void *arg)
{
    struct pending *p = arg;
    if (p->t)
        evloop_timer_cancel(loop, p->t);
    free(p);
    (void)c;
}

static void pending_fire(evloop *l, void *arg)
{
    struct pending *p = arg;
    p->t = NULL;
    http_conn *c = p->c;
    http_conn_on_close(c, NULL, NULL);
    int stream = p->stream;
    free(p);
    if (stream) {
        if (http_stream_write(c, "tail", 4) == 0)
            http_stream_end(c);
    } else {
        http_respond(c, 200, "text/plain", "late", 4);
    }
    (void)l;
}

static void defer(http_conn *c, int stream)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    p->c = c;
    p->stream = stream;
    http_conn_on_close(c, pending_closed, p);
    p->t = evloop_timer_start(loop, 0, pending_fire, p);
}

static void handler(http_conn *c, const http_request *req, void *arg)
{
    (void)arg;
    uint8_t m = nmodes ? modes[next_mode++ % nmodes] : 0;
    switch (m % 7) {
    case 0:
        http_respond(c, 200, "text/plain", req->body, req->body_len);
        break;
    case 1:
        defer(c, 0);
        break;
    case 2:
        if (http_stream_begin(c, 200, "text/plain") == 0 &&
            http_stream_write(c, req->path, strlen(req->path)) == 0 &&
            http_stream_write(c, req->body, req->body_len) == 0)
            http_stream_end(c);
        break;
    case 3:
        if (http_stream_begin(c, 200, NULL) == 0 && http_stream_write(c, "x", 1) == 0)
            defer(c, 1);
        break;
    case 4:
        http_respond(c, 201, NULL, "a", 1);
        http_respond(c, 202, NULL, "b", 1);
        break;
    case 5:
        http_respond_ex(c, 200, "X: a\r\nbad\n", "text/plain", "x", 1);
        break;
    default:
        http_respond_ex(c, 204, "X-A: 1\r\n", NULL, NULL, 0);
        break;
    }
}

static size_t drain(int fd, char *first, size_t *have)
{
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        if (*have < 9) {
            size_t k = (size_t)n < 9 - *have ? (size_t)n : 9 - *have;
            memcpy(first + *have, buf, k);
            *have += k;
        }
        total += (size_t)n;
    }
    return total;
}

static void spin(int client, char *first, size_t *have, int turns)
{
    for (int i = 0; i < turns; i++) {
        evloop_run_once(loop, 0);
        drain(client, first, have);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!loop) {
        loop = evloop_new();
        /* The handler's deliberate mistakes are logged on every run: silence all levels. */
        log_set_level((enum log_level)(LOG_ERROR + 1));
    }
    http_limits lim;
    http_limits_default(&lim);
    if (data[0] & 1) {
        lim.max_header_bytes = 64 + (size_t)(data[0] >> 1) * 8;
        lim.max_body_bytes = (size_t)(data[0] >> 2) * 16;
        lim.max_output_bytes = 256 + (size_t)data[0] * 64;
    }
    nmodes = 1 + data[1] % 8;
    next_mode = 0;
    size_t pos = 2;
    for (size_t i = 0; i < nmodes; i++)
        modes[i] = pos < size ? data[pos++] : 0;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    http_server *srv = http_server_new(loop, &lim, handler, NULL);
    if (!srv || http_server_adopt(srv, sv[0], "fuzz") < 0)
        abort();
    int client = sv[1];
    char first[9];
    size_t have = 0;
    while (pos < size) {
        size_t len = data[pos++];
        if (len > size - pos)
            len = size - pos;
        if (len == 0) {
            spin(client, first, &have, 4);
            continue;
        }
        size_t off = 0;
        for (int tries = 0; off < len && tries < 8; tries++) {
            ssize_t n = send(client, data + pos + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            spin(client, first, &have, 1);
        }
        pos += len;
    }
    shutdown(client, SHUT_WR);
    spin(client, first, &have, 8);
    if (have > 0 && memcmp(first, "HTTP/1.1 ", have < 9 ? have : 9) != 0)
        abort();
    http_server_free(srv);
    spin(client, first, &have, 1);
    close(client);
    return 0;
}
