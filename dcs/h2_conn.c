/* HTTP/2 server connection on lib/evloop with libnghttp2 (see h2_conn.h). */
#include "dcs/h2_conn.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define H2_READ_CHUNK   16384
#define H2_READS_A_TURN 8           /* share the loop with other clients */
#define H2_WBUF_HIGH    (64u << 10) /* stop pulling frames from nghttp2 above this */
#define H2_CONN_WINDOW  (16u << 20) /* connection-level receive window we announce */
#define H2_MAX_TRAILERS 4
#define H2_TRAILER_LEN  512

struct h2_stream {
    h2_stream *prev, *next;
    h2_conn *c;
    int32_t id;
    void *user;
    char method[16], path[256], ctype[64];
    uint8_t *out;
    size_t out_len, out_off;
    bool begun, ending, deferred, trailers_sent;
    size_t ntrail;
    char tname[H2_MAX_TRAILERS][32];
    char tvalue[H2_MAX_TRAILERS][H2_TRAILER_LEN];
};

struct h2_conn {
    evloop *loop;
    int fd;
    nghttp2_session *sess;
    h2_limits lim;
    h2_handler h;
    void *arg;
    void (*on_gone)(h2_conn *c, void *arg);
    h2_stream *streams;
    size_t nstreams;
    size_t queued; /* bytes in every stream's queue */
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    int depth; /* >0 while inside our callbacks: frees are deferred */
    bool dead, want_out;
    ev_timer *flush_timer, *idle_timer;
    uint64_t last_activity;
};

void h2_limits_default(h2_limits *lim)
{
    lim->max_streams = 128;
    lim->max_header_bytes = 16384;
    lim->max_stream_out_bytes = 4u << 20;
    lim->max_conn_out_bytes = 16u << 20;
    lim->idle_timeout_ms = 300000;
    lim->window_bytes = 1u << 20;
}

void h2_stream_set_user(h2_stream *st, void *user)
{
    st->user = user;
}

void *h2_stream_user(const h2_stream *st)
{
    return st->user;
}

size_t h2_stream_queued(const h2_stream *st)
{
    return st->out_len - st->out_off;
}

static void conn_free(h2_conn *c)
{
    /* every stream's owner hears about it before the memory goes */
    while (c->streams) {
        h2_stream *st = c->streams;
        c->streams = st->next;
        if (c->h.on_close)
            c->h.on_close(st, c->arg);
        free(st->out);
        free(st);
    }
    if (c->flush_timer)
        evloop_timer_cancel(c->loop, c->flush_timer);
    if (c->idle_timer)
        evloop_timer_cancel(c->loop, c->idle_timer);
    evloop_del_fd(c->loop, c->fd);
    close(c->fd);
    nghttp2_session_del(c->sess);
    free(c->wbuf);
    if (c->on_gone)
        c->on_gone(c, c->arg);
    free(c);
}

static int flush(h2_conn *c);

void h2_conn_close(h2_conn *c)
{
    c->dead = true;
    if (c->depth == 0)
        conn_free(c);
}

void h2_conn_shutdown(h2_conn *c)
{
    /* GOAWAY first (best effort, one write): clients move to another member at once
     * instead of reading a reset connection as a network failure */
    if (!c->dead && nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR) == 0) {
        c->depth++;
        (void)flush(c);
        c->depth--;
    }
    h2_conn_close(c);
}

/* ---- output ---- */
static int wbuf_append(h2_conn *c, const uint8_t *d, size_t n)
{
    if (c->woff && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + n > c->wcap) {
        if (c->woff) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wlen + n > c->wcap) {
            size_t ncap = c->wcap ? c->wcap : 16384;
            while (ncap < c->wlen + n)
                ncap *= 2;
            uint8_t *nb = realloc(c->wbuf, ncap);
            if (!nb)
                return -1;
            c->wbuf = nb;
            c->wcap = ncap;
        }
    }
    memcpy(c->wbuf + c->wlen, d, n);
    c->wlen += n;
    return 0;
}

/* Pulls frames from nghttp2 and writes them; 0, or -1 when the connection must close. */
static int flush(h2_conn *c)
{
    for (;;) {
        while (c->wlen - c->woff < H2_WBUF_HIGH) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->sess, &data);
            if (n < 0)
                return -1;
            if (n == 0)
                break;
            if (wbuf_append(c, data, (size_t)n) != 0)
                return -1;
        }
        if (c->wlen == c->woff)
            break;
        ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->want_out) {
                    c->want_out = true;
                    evloop_mod_fd(c->loop, c->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
                }
                return 0;
            }
            return -1;
        }
        c->woff += (size_t)w;
    }
    c->woff = c->wlen = 0;
    if (c->want_out) {
        c->want_out = false;
        evloop_mod_fd(c->loop, c->fd, EPOLLIN | EPOLLRDHUP);
    }
    if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess))
        return -1; /* GOAWAY exchanged, or a fatal protocol error answered */
    return 0;
}

static void flush_cb(evloop *loop, void *arg)
{
    h2_conn *c = arg;
    c->flush_timer = NULL;
    c->depth++;
    int rc = flush(c);
    c->depth--;
    if (rc != 0 || c->dead)
        h2_conn_close(c);
}

/* Output produced outside the connection's own callbacks goes out on the next turn. */
static void schedule_flush(h2_conn *c)
{
    if (c->depth == 0 && !c->flush_timer && !c->dead)
        c->flush_timer = evloop_timer_start(c->loop, 0, flush_cb, c);
}

static ssize_t read_cb(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    h2_stream *st = src->ptr;
    size_t avail = st->out_len - st->out_off;
    if (avail == 0) {
        if (!st->ending) {
            st->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->ntrail && !st->trailers_sent) {
            nghttp2_nv nv[H2_MAX_TRAILERS];
            for (size_t i = 0; i < st->ntrail; i++) {
                nv[i].name = (uint8_t *)st->tname[i];
                nv[i].namelen = strlen(st->tname[i]);
                nv[i].value = (uint8_t *)st->tvalue[i];
                nv[i].valuelen = strlen(st->tvalue[i]);
                nv[i].flags = NGHTTP2_NV_FLAG_NONE;
            }
            if (nghttp2_submit_trailer(sess, id, nv, st->ntrail) == 0) {
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                st->trailers_sent = true;
            }
        }
        return 0;
    }
    size_t n = avail < length ? avail : length;
    memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    st->c->queued -= n;
    if (st->out_off == st->out_len) { /* drained: a burst's buffer is not kept */
        free(st->out);
        st->out = NULL;
        st->out_off = st->out_len = 0;
    }
    return (ssize_t)n;
}

static void resume(h2_stream *st)
{
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(st->c->sess, st->id);
    }
    schedule_flush(st->c);
}

static int submit_headers(h2_stream *st, int status, const h2_header *hdrs, size_t n,
                          bool with_body)
{
    nghttp2_nv nv[16];
    char code[8];
    if (n + 1 > sizeof(nv) / sizeof(nv[0]))
        return -1;
    snprintf(code, sizeof(code), "%d", status);
    nv[0] =
        (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, strlen(code), NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < n; i++)
        nv[i + 1] = (nghttp2_nv){(uint8_t *)hdrs[i].name, (uint8_t *)hdrs[i].value,
                                 strlen(hdrs[i].name), strlen(hdrs[i].value), NGHTTP2_NV_FLAG_NONE};
    nghttp2_data_provider prd;
    prd.source.ptr = st;
    prd.read_callback = read_cb;
    return nghttp2_submit_response(st->c->sess, st->id, nv, n + 1, with_body ? &prd : NULL) == 0
               ? 0
               : -1;
}

int h2_stream_begin(h2_stream *st, int status, const h2_header *hdrs, size_t n)
{
    if (st->begun || st->c->dead)
        return -1;
    if (submit_headers(st, status, hdrs, n, true) != 0)
        return -1;
    st->begun = true;
    schedule_flush(st->c);
    return 0;
}

/* The bounds apply to backlog: one message is always taken when nothing waits (a unary
 * answer may be large: it exists in memory anyway), more only while the stream's and the
 * connection's queues stay under their limits (a client that stops reading a watch). */
static bool over_limit(size_t queued, size_t add, size_t max)
{
    return queued > 0 && (queued > max || add > max - queued);
}

int h2_stream_write2(h2_stream *st, const void *a, size_t alen, const void *b, size_t blen)
{
    h2_conn *c = st->c;
    if (!st->begun || st->ending || c->dead)
        return -1;
    size_t queued = st->out_len - st->out_off, len = alen + blen;
    if (over_limit(queued, len, c->lim.max_stream_out_bytes) ||
        over_limit(c->queued, len, c->lim.max_conn_out_bytes))
        return -1;
    if (st->out_off) { /* keep the live bytes at the front */
        memmove(st->out, st->out + st->out_off, queued);
        st->out_len = queued;
        st->out_off = 0;
    }
    uint8_t *nb = realloc(st->out, st->out_len + len);
    if (!nb)
        return -1;
    st->out = nb;
    if (alen)
        memcpy(st->out + st->out_len, a, alen);
    if (blen)
        memcpy(st->out + st->out_len + alen, b, blen);
    st->out_len += len;
    c->queued += len;
    resume(st);
    return 0;
}

int h2_stream_write(h2_stream *st, const void *data, size_t len)
{
    return h2_stream_write2(st, data, len, NULL, 0);
}

int h2_stream_end(h2_stream *st, const h2_header *trailers, size_t n)
{
    if (st->ending || st->c->dead || n > H2_MAX_TRAILERS)
        return -1;
    st->ending = true;
    if (!st->begun) {
        st->begun = true;
        int rc = submit_headers(st, 200, trailers, n, false);
        schedule_flush(st->c);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(st->tname[i], sizeof(st->tname[i]), "%s", trailers[i].name);
        snprintf(st->tvalue[i], sizeof(st->tvalue[i]), "%s", trailers[i].value);
    }
    st->ntrail = n;
    st->deferred = true; /* the data callback may be parked: wake it either way */
    resume(st);
    return 0;
}

void h2_stream_reset(h2_stream *st, uint32_t error_code)
{
    if (st->c->dead)
        return;
    nghttp2_submit_rst_stream(st->c->sess, NGHTTP2_FLAG_NONE, st->id, error_code);
    schedule_flush(st->c);
}

/* ---- input ---- */
static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *ud)
{
    h2_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->c = c;
    st->id = frame->hd.stream_id;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    c->nstreams++;
    nghttp2_session_set_stream_user_data(sess, st->id, st);
    return 0;
}

static void copy_hv(char *dst, size_t cap, const uint8_t *v, size_t n)
{
    if (n >= cap)
        n = cap - 1; /* a longer path matches no method and is answered as unknown */
    memcpy(dst, v, n);
    dst[n] = 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
    if (!st)
        return 0;
    if (namelen == 5 && memcmp(name, ":path", 5) == 0)
        copy_hv(st->path, sizeof(st->path), value, valuelen);
    else if (namelen == 7 && memcmp(name, ":method", 7) == 0)
        copy_hv(st->method, sizeof(st->method), value, valuelen);
    else if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        copy_hv(st->ctype, sizeof(st->ctype), value, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *ud)
{
    h2_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
    if (!st)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        c->h.on_request)
        c->h.on_request(st, st->method, st->path, st->ctype, c->arg);
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && c->h.on_end && !c->dead)
        c->h.on_end(st, c->arg);
    return 0;
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    h2_conn *c = ud;
    h2_stream *st = nghttp2_session_get_stream_user_data(sess, id);
    if (st && c->h.on_data && !c->dead)
        c->h.on_data(st, data, len, c->arg);
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t error_code, void *ud)
{
    h2_conn *c = ud;
    h2_stream *st = nghttp2_session_get_stream_user_data(sess, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(sess, id, NULL);
    c->queued -= st->out_len - st->out_off;
    if (c->h.on_close)
        c->h.on_close(st, c->arg);
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    c->nstreams--;
    free(st->out);
    free(st);
    return 0;
}

static int on_error(nghttp2_session *sess, int code, const char *msg, size_t len, void *ud)
{
    log_debug("h2: %.*s", (int)len, msg);
    return 0;
}

static void io_cb(evloop *loop, int fd, uint32_t events, void *arg)
{
    h2_conn *c = arg;
    c->depth++;
    bool fail = false;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        uint8_t buf[H2_READ_CHUNK];
        for (int i = 0; i < H2_READS_A_TURN && !fail && !c->dead; i++) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n <= 0) {
                fail = true; /* peer closed or error */
                break;
            }
            c->last_activity = evloop_now_ms(loop);
            ssize_t rv = nghttp2_session_mem_recv(c->sess, buf, (size_t)n);
            if (rv < 0) {
                log_debug("h2: %s: closing", nghttp2_strerror((int)rv));
                fail = true;
            }
            if ((size_t)n < sizeof(buf))
                break;
        }
    }
    if (!fail && !c->dead && flush(c) != 0)
        fail = true;
    c->depth--;
    if (fail || c->dead)
        h2_conn_close(c);
}

static void idle_cb(evloop *loop, void *arg)
{
    h2_conn *c = arg;
    c->idle_timer = NULL;
    uint64_t now = evloop_now_ms(loop);
    if (c->nstreams == 0 && now - c->last_activity >= c->lim.idle_timeout_ms) {
        h2_conn_close(c);
        return;
    }
    c->idle_timer = evloop_timer_start(loop, c->lim.idle_timeout_ms / 4 + 1, idle_cb, c);
}

h2_conn *h2_conn_new(evloop *loop, int fd, const h2_limits *lim, const h2_handler *h, void *arg,
                     void (*on_gone)(h2_conn *c, void *arg))
{
    h2_conn *c = calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (!c || nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    c->loop = loop;
    c->fd = fd;
    c->lim = *lim;
    c->h = *h;
    c->arg = arg;
    c->on_gone = on_gone;
    c->last_activity = evloop_now_ms(loop);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    nghttp2_option_set_max_send_header_block_length(opt, 65536);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    /* etcdctl's endpoint commands send ":authority: http://host:port" (a URL, which RFC
     * 9113 forbids and nghttp2's HTTP messaging checks reset; grpc-go accepts it). Those
     * checks are off: framing, HPACK and flow control stay nghttp2's, and the gRPC layer
     * accepts only POST to a known :path with a gRPC content-type. */
    nghttp2_option_set_no_http_messaging(opt, 1);
    if (nghttp2_session_server_new2(&c->sess, cbs, c, opt) != 0)
        goto fail;
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    cbs = NULL;
    opt = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim->window_bytes},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim->max_header_bytes},
    };
    if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
        goto fail;
    if (evloop_add_fd(loop, fd, EPOLLIN | EPOLLRDHUP, io_cb, c) != 0)
        goto fail;
    c->idle_timer = evloop_timer_start(loop, lim->idle_timeout_ms / 4 + 1, idle_cb, c);
    schedule_flush(c); /* our SETTINGS go out at once: clients wait for them */
    return c;
fail:
    if (cbs)
        nghttp2_session_callbacks_del(cbs);
    if (opt)
        nghttp2_option_del(opt);
    if (c && c->sess)
        nghttp2_session_del(c->sess);
    free(c);
    close(fd);
    return NULL;
}
