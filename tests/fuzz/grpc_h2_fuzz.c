/* Fuzzes the HTTP/2 + gRPC front (dcs/h2_conn.h, dcs/grpc_call.h) as a client would reach
 * it: the client preface, then fuzzed bytes, split at fuzzed points, go through a
 * socketpair into an h2_conn whose gRPC calls are served by a stub service (decodes the
 * request with pb_decode_request, answers unary calls at once or on the next loop turn,
 * streams one response per message). The client end is drained so output never stalls.
 * Checks: no crash, leak or sanitizer report; the server's first bytes are a SETTINGS
 * frame (the HTTP/2 server preface).
 *
 * Input: segments of [length byte][bytes]; a zero length runs the loop a while. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dcs/grpc_call.h"
#include "dcs/h2_conn.h"
#include "dcs/pb_etcd.h"
#include "evloop.h"
#include "log.h"

static evloop *loop;
static int gone;

static void answer(grpc_call *call)
{
    pb_buf b;
    pb_buf_init(&b, 1024);
    v3_header h = {1, 2, 3, 4};
    pb_enc_header_only(&b, &h);
    if (grpc_call_send(call, &b) == 0 && !grpc_method_streams(grpc_call_method(call)))
        grpc_call_finish(call, GRPC_OK, NULL);
    pb_buf_free(&b);
}

static void late(evloop *l, void *arg)
{
    grpc_call *call = arg;
    answer(call);
    grpc_call_unref(call);
    (void)l;
}

static const int eps[GM_COUNT] = {
    [GM_RANGE] = V3_KV_RANGE,
    [GM_PUT] = V3_KV_PUT,
    [GM_DELETE_RANGE] = V3_KV_DELETE_RANGE,
    [GM_TXN] = V3_KV_TXN,
    [GM_COMPACT] = V3_KV_COMPACTION,
    [GM_LEASE_GRANT] = V3_LEASE_GRANT,
    [GM_LEASE_REVOKE] = V3_LEASE_REVOKE,
    [GM_LEASE_KEEPALIVE] = V3_LEASE_KEEPALIVE,
    [GM_LEASE_TIMETOLIVE] = V3_LEASE_TIMETOLIVE,
    [GM_LEASE_LEASES] = V3_LEASE_LEASES,
    [GM_WATCH] = V3_WATCH,
};

static void on_message(grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    int m = grpc_call_method(call);
    if (eps[m]) {
        mvcc_arena a;
        mvcc_arena_init(&a, 1u << 20);
        v3_request req;
        v3_error err;
        int rc = pb_decode_request(eps[m], msg, len, &a, &req, &err);
        mvcc_arena_free(&a);
        if (rc != 0) {
            grpc_call_finish(call, err.grpc_code, err.message);
            return;
        }
    }
    if (len % 2 && !grpc_method_streams(m)) { /* answer later: the client may be gone */
        grpc_call_ref(call);
        if (!evloop_timer_start(loop, 0, late, call))
            grpc_call_unref(call);
        return;
    }
    answer(call);
    (void)arg;
}

static void on_half_close(grpc_call *call, void *arg)
{
    if (grpc_method_streams(grpc_call_method(call)))
        grpc_call_finish(call, GRPC_OK, NULL);
    (void)arg;
}

static void on_gone(grpc_call *call, void *arg)
{
    (void)call;
    (void)arg;
}

static void conn_gone(h2_conn *c, void *arg)
{
    gone = 1;
    (void)c;
    (void)arg;
}

static void drain(int fd, size_t *total, uint8_t *first, size_t *nfirst)
{
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (*nfirst < 9) {
            size_t k = 9 - *nfirst < (size_t)n ? 9 - *nfirst : (size_t)n;
            memcpy(first + *nfirst, buf, k);
            *nfirst += k;
        }
        *total += (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        log_set_level(LOG_ERROR);
        init = 1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    loop = evloop_new();
    grpc_service svc = {on_message, on_half_close, on_gone};
    grpc_ctx ctx = {&svc, NULL};
    h2_handler h;
    grpc_h2_handler(&h);
    h2_limits lim;
    h2_limits_default(&lim);
    lim.max_stream_out_bytes = 4096; /* small: exercise the slow-reader path */
    gone = 0;
    h2_conn *c = h2_conn_new(loop, sv[0], &lim, &h, &ctx, conn_gone);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (write(sv[1], preface, 24) != 24)
        abort();
    size_t total = 0, nfirst = 0;
    uint8_t first[9];
    size_t i = 0;
    while (i < size && !gone) {
        size_t n = data[i++];
        if (n > size - i)
            n = size - i;
        if (n == 0) {
            for (int k = 0; k < 4; k++)
                evloop_run_once(loop, 0);
        } else if (write(sv[1], data + i, n) < 0) {
            break;
        }
        i += n;
        evloop_run_once(loop, 0);
        drain(sv[1], &total, first, &nfirst);
    }
    for (int k = 0; k < 8 && !gone; k++) {
        evloop_run_once(loop, 0);
        drain(sv[1], &total, first, &nfirst);
    }
    /* server preface: a SETTINGS frame (type 4) on stream 0 */
    if (nfirst == 9 && (first[3] != 4 || first[5] | first[6] | first[7] | first[8]))
        abort();
    if (!gone)
        h2_conn_close(c);
    close(sv[1]);
    for (int k = 0; k < 4; k++)
        evloop_run_once(loop, 0); /* pending 'late' timers fire on a dead call */
    evloop_free(loop);
    return 0;
}
