/* The HTTP/2 + gRPC front (dcs/h2_conn.h, dcs/grpc_call.h) driven by an in-process nghttp2
 * client over a socketpair: unary framing and trailers, etcd/grpc-go error shapes
 * (unknown service/method, 415, compression, oversized message), flow control (the server
 * never sends past the client's window; the rest follows WINDOW_UPDATEs), the per-stream
 * output bound (a client that stops reading is reset, memory stays bounded), and the
 * SETTINGS we announce. */
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "dcs/grpc_call.h"
#include "dcs/h2_conn.h"
#include "dcs/pb_etcd.h"
#include "evloop.h"
#include "log.h"

/* ---- server side: a stub service ---- */
static size_t stream_bytes; /* size of each response a Watch call streams */
static int stream_msgs = 1; /* how many */
static int sent_fail;       /* grpc_call_send returned -1 */

static void on_message(grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    pb_buf b;
    pb_buf_init(&b, 64u << 20);
    if (grpc_call_method(call) == GM_WATCH) {
        uint8_t *blob = calloc(1, stream_bytes);
        pb_bytes(&b, 1, blob, stream_bytes);
        free(blob);
        for (int i = 0; i < stream_msgs; i++)
            if (grpc_call_send(call, &b) != 0)
                sent_fail++;
    } else {
        v3_header h = {1, 2, 3, 4};
        pb_enc_header_only(&b, &h);
        if (grpc_call_send(call, &b) == 0)
            grpc_call_finish(call, GRPC_OK, NULL);
    }
    pb_buf_free(&b);
    (void)msg;
    (void)len;
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

/* ---- client side ---- */
typedef struct client {
    nghttp2_session *s;
    int fd;
    int status;         /* :status */
    char ctype[64];     /* content-type */
    char gstatus[8];    /* grpc-status */
    char gmessage[256]; /* grpc-message */
    size_t data;        /* DATA bytes received */
    uint8_t first[64];  /* the first DATA bytes */
    int closed;         /* stream closed */
    uint32_t rst;       /* RST_STREAM error code, or 0 */
} client;

static int c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    client *c = ud;
    char v[256];
    size_t n = vl < sizeof(v) - 1 ? vl : sizeof(v) - 1;
    memcpy(v, value, n);
    v[n] = 0;
    if (nl == 7 && memcmp(name, ":status", 7) == 0)
        c->status = (int)strtol(v, NULL, 10);
    else if (nl == 12 && memcmp(name, "content-type", 12) == 0)
        snprintf(c->ctype, sizeof(c->ctype), "%.63s", v);
    else if (nl == 11 && memcmp(name, "grpc-status", 11) == 0)
        snprintf(c->gstatus, sizeof(c->gstatus), "%.7s", v);
    else if (nl == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(c->gmessage, sizeof(c->gmessage), "%s", v);
    (void)s;
    (void)f;
    (void)flags;
    return 0;
}

static int c_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
                  void *ud)
{
    client *c = ud;
    if (c->data < sizeof(c->first)) {
        size_t k = sizeof(c->first) - c->data < len ? sizeof(c->first) - c->data : len;
        memcpy(c->first + c->data, d, k);
    }
    c->data += len;
    (void)s;
    (void)flags;
    (void)id;
    return 0;
}

static int c_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    client *c = ud;
    c->closed = 1;
    c->rst = code;
    (void)s;
    (void)id;
    return 0;
}

static evloop *loop;
static h2_conn *server;
static h2_limits lim;
static grpc_service svc = {on_message, on_half_close, on_gone};
static grpc_ctx ctx = {&svc, NULL};

static void gone(h2_conn *c, void *arg)
{
    server = NULL;
    (void)c;
    (void)arg;
}

/* Moves bytes both ways and runs the server loop a few turns. */
static void pump(client *c, int turns)
{
    for (int t = 0; t < turns; t++) {
        const uint8_t *d;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c->s, &d)) > 0)
            if (write(c->fd, d, (size_t)n) != n)
                abort();
        evloop_run_once(loop, 1);
        uint8_t buf[65536];
        while ((n = read(c->fd, buf, sizeof(buf))) > 0)
            if (nghttp2_session_mem_recv(c->s, buf, (size_t)n) != n)
                abort();
    }
}

static void client_open(client *c, uint32_t window, int auto_window)
{
    memset(c, 0, sizeof(*c));
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        abort();
    h2_handler h;
    grpc_h2_handler(&h);
    server = h2_conn_new(loop, sv[0], &lim, &h, &ctx, gone);
    c->fd = sv[1];
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    if (!auto_window)
        nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_client_new2(&c->s, cb, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1);
    pump(c, 3);
}

static void client_close(client *c)
{
    nghttp2_session_del(c->s);
    close(c->fd);
    for (int i = 0; i < 5 && server; i++)
        evloop_run_once(loop, 1);
    CHECK(server == NULL); /* the server noticed the close and freed the connection */
}

typedef struct body {
    const uint8_t *p;
    size_t len, off;
} body;

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    body *b = src->ptr;
    size_t n = b->len - b->off < len ? b->len - b->off : len;
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    if (b->off == b->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    (void)s;
    (void)id;
    (void)ud;
    return (ssize_t)n;
}

static int32_t call(client *c, const char *path, const char *ctype, body *b)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"127.0.0.1:2379", 10, 14, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)"content-type", (uint8_t *)ctype, 12, strlen(ctype), 0},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
    };
    nghttp2_data_provider prd = {.source.ptr = b, .read_callback = body_read};
    return nghttp2_submit_request(c->s, NULL, nv, 6, &prd, NULL);
}

static const uint8_t empty_msg[5] = {0, 0, 0, 0, 0};

TEST(unary_call_framing_and_trailers)
{
    client c;
    client_open(&c, 65535, 1);
    body b = {empty_msg, 5, 0};
    CHECK(call(&c, "/etcdserverpb.KV/Range", "application/grpc", &b) > 0);
    pump(&c, 10);
    CHECK(c.closed);
    CHECK_EQ_INT(c.rst, 0);
    CHECK_EQ_INT(c.status, 200);
    CHECK_STR(c.ctype, "application/grpc");
    CHECK_STR(c.gstatus, "0");
    /* 5-byte prefix (uncompressed, length) + ResponseHeader{1:1 2:2 3:4 4:3} in field 1 */
    static const uint8_t want[] = {0, 0, 0, 0, 10, 0x0a, 8, 8, 1, 0x10, 2, 0x18, 4, 0x20, 3};
    CHECK_EQ_INT(c.data, sizeof(want));
    CHECK(memcmp(c.first, want, sizeof(want)) == 0);
    client_close(&c);
}

TEST(errors_as_grpc_go_sends_them)
{
    struct {
        const char *path, *ctype;
        const uint8_t *msg;
        size_t len;
        int status;
        const char *gstatus, *gmessage;
    } cases[] = {
        {"/etcdserverpb.KV/Nope", "application/grpc", empty_msg, 5, 200, "12",
         "unknown method Nope for service etcdserverpb.KV"},
        {"/etcdserverpb.Nope/Get", "application/grpc", empty_msg, 5, 200, "12",
         "unknown service etcdserverpb.Nope"},
        {"/etcdserverpb.Auth/UserAdd", "application/grpc", empty_msg, 5, 200, "12",
         "unknown method UserAdd for service etcdserverpb.Auth"},
        {"/etcdserverpb.KV/Range", "application/json", empty_msg, 5, 415, "", ""},
        {"/etcdserverpb.KV/Range", "application/grpc", (const uint8_t *)"\1\0\0\0\0", 5, 200, "12",
         "grpc: Decompressor is not installed for grpc-encoding \"\""},
        {"/etcdserverpb.KV/Put", "application/grpc", (const uint8_t *)"\0\0\x30\0\0", 5, 200, "8",
         "grpc: received message larger than max (3145728 vs. 2097152)"},
        {"/etcdserverpb.KV/Put", "application/grpc+proto", empty_msg, 0, 200, "13",
         "grpc: error while reading request: EOF"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        client c;
        client_open(&c, 65535, 1);
        body b = {cases[i].msg, cases[i].len, 0};
        CHECK(call(&c, cases[i].path, cases[i].ctype, &b) > 0);
        pump(&c, 10);
        printf("# case %zu: status %d grpc-status '%s' message '%s'\n", i, c.status, c.gstatus,
               c.gmessage);
        CHECK(c.closed);
        CHECK_EQ_INT(c.status, cases[i].status);
        CHECK_STR(c.gstatus, cases[i].gstatus);
        /* grpc-message is percent-encoded: '"' stays, these texts have no '%' */
        CHECK_STR(c.gmessage, cases[i].gmessage);
        if (cases[i].status == 200)
            CHECK_EQ_INT(c.data, 0); /* trailers-only */
        client_close(&c);
    }
}

TEST(flow_control_respected)
{
    client c;
    client_open(&c, 16384, 0); /* a 16 KiB stream window the client opens by hand */
    stream_bytes = lim.max_stream_out_bytes + 50000; /* one message may pass the bound */
    stream_msgs = 1;
    body b = {empty_msg, 5, 0};
    int32_t id = call(&c, "/etcdserverpb.Watch/Watch", "application/grpc", &b);
    CHECK(id > 0);
    pump(&c, 20);
    CHECK_EQ_INT(c.data, 16384);         /* exactly the window, not a byte more */
    size_t total = 5 + 4 + stream_bytes; /* prefix + tag/length + blob */
    for (int i = 0; i < 200 && c.data < total; i++) {
        nghttp2_session_consume(c.s, id, c.data); /* WINDOW_UPDATE for what we read */
        size_t before = c.data;
        pump(&c, 3);
        CHECK(c.data - before <= before + 16384); /* never past what we opened */
    }
    CHECK_EQ_INT(c.data, total);
    pump(&c, 3);
    CHECK(c.closed); /* the stub ends a stream on half-close: trailers follow the data */
    CHECK_EQ_INT(c.rst, 0);
    CHECK_STR(c.gstatus, "0");
    client_close(&c);
}

TEST(slow_reader_is_reset_and_bounded)
{
    client c;
    client_open(&c, 16384, 0);
    stream_bytes = lim.max_stream_out_bytes / 3 * 2; /* the second one is too much */
    stream_msgs = 2;
    sent_fail = 0;
    body b = {empty_msg, 5, 0};
    CHECK(call(&c, "/etcdserverpb.Watch/Watch", "application/grpc", &b) > 0);
    pump(&c, 20);
    CHECK_EQ_INT(sent_fail, 1);
    CHECK(c.closed);
    CHECK_EQ_INT(c.rst, NGHTTP2_CANCEL);
    CHECK(c.data <= 16384);
    client_close(&c);
}

TEST(settings_announced)
{
    client c;
    client_open(&c, 65535, 1);
    CHECK_EQ_INT(nghttp2_session_get_remote_settings(c.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
                 lim.max_streams);
    CHECK_EQ_INT(nghttp2_session_get_remote_settings(c.s, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE),
                 lim.max_header_bytes);
    client_close(&c);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    loop = evloop_new();
    h2_limits_default(&lim);
    lim.max_stream_out_bytes = 256u << 10;
    RUN(unary_call_framing_and_trailers);
    RUN(errors_as_grpc_go_sends_them);
    RUN(flow_control_respected);
    RUN(slow_reader_is_reset_and_bounded);
    RUN(settings_announced);
    evloop_free(loop);
    return check_done();
}
