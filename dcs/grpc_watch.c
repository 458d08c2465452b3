/* etcd's Watch service (bidi stream) on the watch hub the JSON gateway uses: one
 * watch_stream per gRPC call, its responses sent as WatchResponse messages. Output is
 * paced by the connection: while more than WATCH_HIGH bytes wait in the call's HTTP/2
 * queue nothing more is taken from the watch stream (whose own bounds then apply, as for
 * a slow gateway client). */
#include <stdlib.h>

#include "dcs/grpc_internal.h"
#include "dcs/pb_etcd.h"

#define WATCH_HIGH     (1u << 20)
#define WATCH_BATCH    256 /* responses per turn: share the loop */
#define WATCH_RESP_MAX (64u << 20)

struct gwatch {
    gwatch *prev, *next;
    grpc_front *g;
    grpc_call *call;
    watch_stream *ws;
    ev_timer *timer;
};

static void flush_cb(evloop *loop, void *arg);

static void schedule(gwatch *w, int delay_ms)
{
    if (!w->timer)
        w->timer = evloop_timer_start(w->g->s->loop, (uint64_t)delay_ms, flush_cb, w);
}

static void notify(void *arg)
{
    schedule(arg, 0);
}

static void unlink_free(gwatch *w)
{
    grpc_front *g = w->g;
    if (w->prev)
        w->prev->next = w->next;
    else
        g->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->timer)
        evloop_timer_cancel(g->s->loop, w->timer);
    if (w->ws)
        watch_stream_free(w->ws);
    grpc_call_set_user(w->call, NULL);
    grpc_call_unref(w->call);
    free(w);
}

static void flush_cb(evloop *loop, void *arg)
{
    gwatch *w = arg;
    w->timer = NULL;
    dcs_server *s = w->g->s;
    for (int n = 0; n < WATCH_BATCH; n++) {
        if (!grpc_call_alive(w->call))
            return;
        if (grpc_call_queued(w->call) > WATCH_HIGH) {
            schedule(w, 5); /* the client reads slowly: wait for the connection */
            return;
        }
        v3_watch_resp r;
        int64_t hrev;
        if (!watch_stream_next(w->ws, &r, &hrev)) {
            if (watch_stream_busy(w->ws))
                schedule(w, 1);
            return;
        }
        v3_header h;
        dcs_header(s, &h);
        h.revision = hrev;
        pb_buf b;
        pb_buf_init(&b, WATCH_RESP_MAX);
        pb_enc_watch(&b, &h, &r);
        int rc = b.failed ? -1 : grpc_call_send(w->call, &b);
        pb_buf_free(&b);
        if (rc != 0) {
            grpc_call_finish(w->call, GRPC_RESOURCE_EXHAUSTED, "watch response too large");
            return;
        }
    }
    schedule(w, 0);
}

void grpc_watch_message(grpc_front *g, grpc_call *call, const uint8_t *msg, size_t len)
{
    dcs_server *s = g->s;
    gwatch *w = grpc_call_user(call);
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w) {
            grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        w->g = g;
        w->call = call;
        w->ws = watch_stream_new(s->hub, notify, w);
        if (!w->ws) {
            free(w);
            grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        grpc_call_ref(call);
        grpc_call_set_user(call, w);
        w->next = g->watches;
        if (g->watches)
            g->watches->prev = w;
        g->watches = w;
    }
    mvcc_arena a;
    mvcc_arena_init(&a, 4u << 20);
    v3_request req;
    v3_error err;
    if (pb_decode_request(V3_WATCH, msg, len, &a, &req, &err) != 0) {
        grpc_call_finish(call, err.grpc_code, err.message);
    } else if (req.watch_kind) { /* a request with no member set is ignored, as etcd */
        watch_stream_request(w->ws, &req, dcs_now_ms(s));
        schedule(w, 0);
    }
    mvcc_arena_free(&a);
}

void grpc_watch_gone(grpc_front *g, grpc_call *call)
{
    gwatch *w = grpc_call_user(call);
    if (w)
        unlink_free(w);
}

void grpc_watch_reset_all(grpc_front *g)
{
    while (g->watches) {
        gwatch *w = g->watches;
        grpc_call *call = w->call; // NOLINT(clang-analyzer-unix.Malloc): unlink_free unlinks w
        grpc_call_ref(call);
        unlink_free(w); /* its watch stream points into the old store */
        grpc_call_finish(call, GRPC_UNAVAILABLE, "etcdserver: server reloaded its store");
        grpc_call_unref(call);
    }
}
