/* gRPC framing and method routing over h2_conn streams (see grpc_call.h). */
#include "dcs/grpc_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct grpc_call {
    h2_stream *st; /* NULL once the stream is gone */
    const grpc_ctx *ctx;
    int method;
    int refs;
    void *user;
    uint8_t *in; /* partial request message(s) */
    size_t in_len;
    size_t nmsgs; /* request messages delivered */
    bool begun, finished, failed, half_closed;
};

static const struct {
    const char *path;
    int method;
} methods[] = {
    {"/etcdserverpb.KV/Range", GM_RANGE},
    {"/etcdserverpb.KV/Put", GM_PUT},
    {"/etcdserverpb.KV/DeleteRange", GM_DELETE_RANGE},
    {"/etcdserverpb.KV/Txn", GM_TXN},
    {"/etcdserverpb.KV/Compact", GM_COMPACT},
    {"/etcdserverpb.Lease/LeaseGrant", GM_LEASE_GRANT},
    {"/etcdserverpb.Lease/LeaseRevoke", GM_LEASE_REVOKE},
    {"/etcdserverpb.Lease/LeaseKeepAlive", GM_LEASE_KEEPALIVE},
    {"/etcdserverpb.Lease/LeaseTimeToLive", GM_LEASE_TIMETOLIVE},
    {"/etcdserverpb.Lease/LeaseLeases", GM_LEASE_LEASES},
    {"/etcdserverpb.Watch/Watch", GM_WATCH},
    {"/etcdserverpb.Maintenance/Status", GM_STATUS},
    {"/etcdserverpb.Maintenance/Alarm", GM_ALARM},
    {"/etcdserverpb.Cluster/MemberList", GM_MEMBER_LIST},
    {"/etcdserverpb.Cluster/MemberAdd", GM_MEMBER_ADD},
    {"/etcdserverpb.Cluster/MemberRemove", GM_MEMBER_REMOVE},
    {"/etcdserverpb.Cluster/MemberUpdate", GM_MEMBER_UPDATE},
    {"/etcdserverpb.Cluster/MemberPromote", GM_MEMBER_PROMOTE},
    {"/etcdserverpb.Maintenance/Defragment", GM_DEFRAGMENT},
    {"/etcdserverpb.Maintenance/HashKV", GM_HASHKV},
    {"/etcdserverpb.Maintenance/MoveLeader", GM_MOVE_LEADER},
    {"/grpc.health.v1.Health/Check", GM_HEALTH_CHECK},
    {"/etcdserverpb.Auth/Authenticate", GM_AUTHENTICATE},
    {"/etcdserverpb.Auth/AuthEnable", GM_AUTH_ENABLE},
    {"/etcdserverpb.Auth/AuthDisable", GM_AUTH_DISABLE},
    {"/etcdserverpb.Auth/UserList", GM_USER_LIST},
    {"/etcdserverpb.Auth/RoleList", GM_ROLE_LIST},
    {"/etcdserverpb.Auth/UserGet", GM_USER_GET},
    {"/etcdserverpb.Auth/RoleGet", GM_ROLE_GET},
};

int grpc_method_of(const char *path)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(path, methods[i].path) == 0)
            return methods[i].method;
    return GM_NONE;
}

bool grpc_method_streams(int m)
{
    return m == GM_LEASE_KEEPALIVE || m == GM_WATCH;
}

int grpc_call_method(const grpc_call *call)
{
    return call->method;
}

bool grpc_call_alive(const grpc_call *call)
{
    return call->st && !call->finished;
}

void grpc_call_set_user(grpc_call *call, void *user)
{
    call->user = user;
}

void *grpc_call_user(const grpc_call *call)
{
    return call->user;
}

void grpc_call_ref(grpc_call *call)
{
    call->refs++;
}

void grpc_call_unref(grpc_call *call)
{
    if (--call->refs == 0) {
        free(call->in);
        free(call);
    }
}

void grpc_percent_encode(const char *in, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < outsz; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%') {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = 0;
}

static const h2_header resp_headers[] = {{"content-type", "application/grpc"}};

int grpc_call_send(grpc_call *call, const pb_buf *b)
{
    if (!grpc_call_alive(call) || b->failed)
        return -1;
    uint8_t pre[5] = {0, (uint8_t)(b->len >> 24), (uint8_t)(b->len >> 16), (uint8_t)(b->len >> 8),
                      (uint8_t)b->len};
    /* the first message opens the response */
    if (!call->begun) {
        if (h2_stream_begin(call->st, 200, resp_headers, 1) != 0)
            return -1;
        call->begun = true;
    }
    if (h2_stream_write2(call->st, pre, 5, b->data, b->len) != 0) {
        call->failed = true;
        h2_stream_reset(call->st, 0x8 /* CANCEL */);
        return -1;
    }
    return 0;
}

size_t grpc_call_queued(const grpc_call *call)
{
    return call->st ? h2_stream_queued(call->st) : 0;
}

void grpc_call_finish(grpc_call *call, int code, const char *message)
{
    if (!grpc_call_alive(call))
        return;
    call->finished = true;
    char status[12], msg[600];
    snprintf(status, sizeof(status), "%d", code);
    grpc_percent_encode(message ? message : "", msg, sizeof(msg));
    h2_header t[3];
    size_t n = 0;
    /* a trailers-only response (no message sent) is one HEADERS frame: content-type too */
    if (!call->begun)
        t[n++] = (h2_header){"content-type", "application/grpc"};
    t[n++] = (h2_header){"grpc-status", status};
    if (msg[0])
        t[n++] = (h2_header){"grpc-message", msg};
    if (h2_stream_end(call->st, t, n) != 0)
        h2_stream_reset(call->st, 0x2 /* INTERNAL_ERROR */);
}

/* ---- h2 handler ---- */
static void on_request(h2_stream *st, const char *method, const char *path, const char *ctype,
                       void *arg)
{
    const grpc_ctx *ctx = arg;
    grpc_call *call = calloc(1, sizeof(*call));
    if (!call) {
        h2_stream_reset(st, 0xb /* ENHANCE_YOUR_CALM */);
        return;
    }
    call->st = st;
    call->ctx = ctx;
    call->refs = 1; /* the stream's */
    call->method = grpc_method_of(path);
    h2_stream_set_user(st, call);
    if (strcmp(method, "POST") != 0 || strncmp(ctype, "application/grpc", 16) != 0 ||
        (ctype[16] && ctype[16] != '+' && ctype[16] != ';')) {
        /* grpc-go answers a non-gRPC request with HTTP 415 */
        static const h2_header h[] = {{"content-type", "text/plain; charset=utf-8"}};
        call->finished = true;
        if (h2_stream_begin(st, 415, h, 1) == 0)
            h2_stream_end(st, NULL, 0);
        return;
    }
    if (call->method == GM_NONE) {
        char msg[400];
        const char *slash = strrchr(path, '/');
        const char *svc = path[0] == '/' ? path + 1 : path;
        int svclen = slash && slash > svc ? (int)(slash - svc) : (int)strlen(svc);
        bool known = strncmp(svc, "etcdserverpb.KV/", 16) == 0 ||
                     strncmp(svc, "etcdserverpb.Lease/", 19) == 0 ||
                     strncmp(svc, "etcdserverpb.Watch/", 19) == 0 ||
                     strncmp(svc, "etcdserverpb.Maintenance/", 25) == 0 ||
                     strncmp(svc, "etcdserverpb.Cluster/", 21) == 0 ||
                     strncmp(svc, "grpc.health.v1.Health/", 22) == 0 ||
                     strncmp(svc, "etcdserverpb.Auth/", 18) == 0;
        if (known && slash)
            snprintf(msg, sizeof(msg), "unknown method %s for service %.*s", slash + 1, svclen,
                     svc);
        else
            snprintf(msg, sizeof(msg), "unknown service %.*s", svclen, svc);
        grpc_call_finish(call, GRPC_UNIMPLEMENTED, msg);
    }
}

static void deliver(grpc_call *call)
{
    const grpc_ctx *ctx = call->ctx;
    size_t off = 0;
    while (call->in_len - off >= 5 && grpc_call_alive(call)) {
        const uint8_t *p = call->in + off;
        uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        if (p[0] != 0) {
            grpc_call_finish(call, GRPC_UNIMPLEMENTED,
                             "grpc: Decompressor is not installed for grpc-encoding \"\"");
            return;
        }
        if (len > GRPC_MAX_MSG) {
            char m[160];
            snprintf(m, sizeof(m), "grpc: received message larger than max (%u vs. %u)", len,
                     GRPC_MAX_MSG);
            grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, m);
            return;
        }
        if (call->in_len - off - 5 < len)
            break;
        off += 5 + len;
        call->nmsgs++;
        /* on_data holds a reference: call stays valid even if the stream closes here */
        ctx->svc->on_message(call, p + 5, len, ctx->arg);
        if (!call->st)
            return;
        if (!grpc_method_streams(call->method))
            break; /* unary: one request message */
    }
    if (!call->st)
        return;
    if (off) {
        memmove(call->in, call->in + off, call->in_len - off);
        call->in_len -= off;
    }
}

static void on_data(h2_stream *st, const uint8_t *data, size_t len, void *arg)
{
    grpc_call *call = h2_stream_user(st);
    if (!call || !grpc_call_alive(call))
        return; /* answered already (error): the rest of the body is dropped */
    if (len > GRPC_MAX_MSG + 5 - call->in_len) {
        char m[160];
        snprintf(m, sizeof(m), "grpc: received message larger than max (%zu vs. %u)",
                 call->in_len + len, GRPC_MAX_MSG);
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, m);
        return;
    }
    uint8_t *nb = realloc(call->in, call->in_len + len);
    if (!nb) {
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    call->in = nb;
    memcpy(call->in + call->in_len, data, len);
    call->in_len += len;
    grpc_call_ref(call);
    deliver(call);
    grpc_call_unref(call); // NOLINT(clang-analyzer-unix.Malloc): the stream's ref remains
}

static void on_end(h2_stream *st, void *arg)
{
    const grpc_ctx *ctx = arg;
    grpc_call *call = h2_stream_user(st);
    if (!call || !grpc_call_alive(call) || call->half_closed)
        return;
    call->half_closed = true;
    if (!grpc_method_streams(call->method) && call->nmsgs == 0) {
        /* a unary call whose (empty) message never came: grpc-go reads EOF as an error */
        grpc_call_finish(call, GRPC_INTERNAL, "grpc: error while reading request: EOF");
        return;
    }
    if (call->in_len) {
        grpc_call_finish(call, GRPC_INTERNAL, "grpc: unexpected EOF");
        return;
    }
    ctx->svc->on_half_close(call, ctx->arg);
}

static void on_close(h2_stream *st, void *arg)
{
    const grpc_ctx *ctx = arg;
    grpc_call *call = h2_stream_user(st);
    if (!call)
        return;
    h2_stream_set_user(st, NULL);
    call->st = NULL;
    if (call->method != GM_NONE)
        ctx->svc->on_gone(call, ctx->arg);
    grpc_call_unref(call);
}

void grpc_h2_handler(h2_handler *h)
{
    h->on_request = on_request;
    h->on_data = on_data;
    h->on_end = on_end;
    h->on_close = on_close;
}
