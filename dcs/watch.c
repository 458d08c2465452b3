/* Watch hub: watchers, per-stream bounded response queues, live dispatch from the store
 * hook, history replay for unsynced watchers, progress notifications, fragmentation. */
#include "dcs/watch.h"

#include <stdlib.h>
#include <string.h>

#include "dcs/mvcc_tree.h"

typedef struct watch_item watch_item;
struct watch_item {
    watch_item *next;
    v3_watch_resp resp;
    int64_t header_rev;
    size_t bytes;
    /* events and their key/value bytes follow in the same allocation */
};

typedef struct watcher watcher;
struct watcher {
    watcher *next;
    int64_t id;
    uint8_t *key, *end;
    size_t key_len, end_len;
    bool prev_kv, noput, nodelete, progress_notify, fragment;
    bool synced;
    int64_t next_rev;     /* unsynced: next revision to replay; synced: first wanted */
    int64_t last_sent_ms; /* for progress notify */
};

struct watch_stream {
    watch_hub *hub;
    watch_stream *next;
    watcher *watchers;
    size_t nwatchers;
    int64_t next_id;
    watch_item *head, *tail, *last;
    size_t qbytes, qlen;
    void (*notify)(void *arg);
    void *arg;
};

struct watch_hub {
    mvcc *s;
    watch_limits lim;
    watch_stream *streams;
    int64_t now_ms;
};

void watch_limits_default(watch_limits *lim)
{
    lim->max_queue_bytes = (size_t)4 << 20;
    lim->max_queue_items = 1024;
    lim->max_watchers = 1024;
    lim->replay_batch = 256;
    lim->fragment_bytes = (size_t)1536 * 1024;
    lim->progress_interval_ms = 600000;
}

/* ---- items ---- */

static size_t kv_bytes(const mvcc_kv *kv)
{
    return kv->key_len + kv->value_len;
}

static size_t ev_bytes(const mvcc_event *e, bool prev)
{
    return sizeof(mvcc_event) + kv_bytes(&e->kv) +
           (prev && e->has_prev ? kv_bytes(&e->prev_kv) : 0);
}

static uint8_t *copy_kv(mvcc_kv *kv, uint8_t *p)
{
    if (kv->key_len) {
        memcpy(p, kv->key, kv->key_len);
        kv->key = p;
        p += kv->key_len;
    }
    if (kv->value_len) {
        memcpy(p, kv->value, kv->value_len);
        kv->value = p;
        p += kv->value_len;
    } else {
        kv->value = NULL;
    }
    return p;
}

/* A response item holding copies of the events (the store may compact them away). */
static watch_item *item_new(const mvcc_event *const *evs, size_t n, bool prev)
{
    size_t bytes = sizeof(watch_item);
    for (size_t i = 0; i < n; i++)
        bytes += ev_bytes(evs[i], prev);
    watch_item *it = calloc(1, bytes);
    if (!it)
        return NULL;
    it->bytes = bytes;
    mvcc_event *out = (mvcc_event *)(it + 1);
    uint8_t *p = (uint8_t *)(out + n);
    for (size_t i = 0; i < n; i++) {
        out[i] = *evs[i];
        if (!prev)
            out[i].has_prev = false;
        p = copy_kv(&out[i].kv, p);
        if (out[i].has_prev)
            p = copy_kv(&out[i].prev_kv, p);
        else
            memset(&out[i].prev_kv, 0, sizeof(out[i].prev_kv));
    }
    it->resp.events = n ? out : NULL;
    it->resp.nevents = n;
    return it;
}

static void push(watch_stream *st, watch_item *it)
{
    if (st->tail)
        st->tail->next = it;
    else
        st->head = it;
    st->tail = it;
    st->qbytes += it->bytes;
    st->qlen++;
}

static bool room(const watch_stream *st, size_t bytes)
{
    const watch_limits *l = &st->hub->lim;
    return st->qlen < l->max_queue_items && st->qbytes + bytes <= l->max_queue_bytes;
}

/* Control responses (created/canceled/progress) are always queued: their number is
 * bounded by the client's own requests and the watcher limit. */
static void push_ctrl(watch_stream *st, int64_t id, bool created, bool canceled,
                      int64_t compact_rev, const char *reason, int64_t header_rev)
{
    watch_item *it = item_new(NULL, 0, false);
    if (!it)
        return;
    it->resp.watch_id = id;
    it->resp.created = created;
    it->resp.canceled = canceled;
    it->resp.compact_revision = compact_rev;
    it->resp.cancel_reason = reason;
    it->header_rev = header_rev;
    push(st, it);
}

/* Queues events for a watcher, split into fragments when asked and too large. Returns
 * false (nothing queued) when the stream has no room. */
static bool push_events(watch_stream *st, watcher *w, const mvcc_event *const *evs, size_t n,
                        int64_t header_rev)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += ev_bytes(evs[i], w->prev_kv);
    if (!room(st, total + sizeof(watch_item)))
        return false;
    size_t start = 0;
    while (start < n) {
        size_t end = n, acc = 0;
        if (w->fragment) {
            end = start;
            while (end < n && (end == start || acc + ev_bytes(evs[end], w->prev_kv) <=
                                                   st->hub->lim.fragment_bytes)) {
                acc += ev_bytes(evs[end], w->prev_kv);
                end++;
            }
        }
        watch_item *it = item_new(evs + start, end - start, w->prev_kv);
        if (!it)
            return start > 0;
        it->resp.watch_id = w->id;
        it->resp.fragment = end < n;
        it->header_rev = header_rev;
        push(st, it);
        start = end;
    }
    w->last_sent_ms = st->hub->now_ms;
    return true;
}

/* ---- matching ---- */

static bool in_watch_range(const watcher *w, const mvcc_kv *kv)
{
    int c = mvcc_key_cmp(kv->key, kv->key_len, w->key, w->key_len);
    if (w->end_len == 0)
        return c == 0;
    if (c < 0)
        return false;
    if (w->end_len == 1 && w->end[0] == 0)
        return true;
    return mvcc_key_cmp(kv->key, kv->key_len, w->end, w->end_len) < 0;
}

static bool wanted(const watcher *w, const mvcc_event *e)
{
    if (e->type == MVCC_EVENT_PUT && w->noput)
        return false;
    if (e->type == MVCC_EVENT_DELETE && w->nodelete)
        return false;
    return e->kv.mod_revision >= w->next_rev && in_watch_range(w, &e->kv);
}

/* ---- live dispatch (store hook) ---- */

static void on_events(void *arg, int64_t rev, const mvcc_event *evs, size_t n)
{
    watch_hub *h = arg;
    const mvcc_event **sel = malloc(n * sizeof(const mvcc_event *));
    if (!sel) {
        /* no memory to dispatch: every synced watcher replays this revision from
         * history later instead of missing it */
        for (watch_stream *st = h->streams; st; st = st->next)
            for (watcher *w = st->watchers; w; w = w->next)
                if (w->synced) {
                    w->synced = false;
                    w->next_rev = rev > w->next_rev ? rev : w->next_rev;
                }
        return;
    }
    for (watch_stream *st = h->streams; st; st = st->next) {
        bool queued = false;
        for (watcher *w = st->watchers; w; w = w->next) {
            if (!w->synced)
                continue;
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (wanted(w, &evs[i]))
                    sel[k++] = &evs[i];
            if (!k)
                continue;
            if (push_events(st, w, sel, k, rev)) {
                queued = true;
            } else {
                /* slow consumer: fall back to replay from history once there is room */
                w->synced = false;
                w->next_rev = rev;
            }
        }
        if (queued && st->notify)
            st->notify(st->arg);
    }
    free(sel);
}

/* ---- hub ---- */

static void stream_destroy(watch_stream *st);

watch_hub *watch_hub_new(mvcc *s, const watch_limits *lim)
{
    watch_hub *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->s = s;
    if (lim)
        h->lim = *lim;
    else
        watch_limits_default(&h->lim);
    mvcc_set_watch_hook(s, on_events, h);
    return h;
}

void watch_hub_free(watch_hub *h)
{
    if (!h)
        return;
    while (h->streams) {
        watch_stream *st = h->streams;
        h->streams = st->next;
        stream_destroy(st);
    }
    mvcc_set_watch_hook(h->s, NULL, NULL);
    free(h);
}

size_t watch_hub_watchers(const watch_hub *h)
{
    size_t n = 0;
    for (const watch_stream *st = h->streams; st; st = st->next)
        n += st->nwatchers;
    return n;
}

void watch_hub_tick(watch_hub *h, int64_t now_ms)
{
    h->now_ms = now_ms;
    int64_t rev = mvcc_current_revision(h->s);
    for (watch_stream *st = h->streams; st; st = st->next) {
        bool any = false;
        for (watcher *w = st->watchers; w; w = w->next) {
            if (!w->progress_notify || !w->synced ||
                now_ms - w->last_sent_ms < h->lim.progress_interval_ms)
                continue;
            push_ctrl(st, w->id, false, false, 0, NULL, rev);
            w->last_sent_ms = now_ms;
            any = true;
        }
        if (any && st->notify)
            st->notify(st->arg);
    }
}

/* ---- streams ---- */

watch_stream *watch_stream_new(watch_hub *h, void (*notify)(void *arg), void *arg)
{
    watch_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->hub = h;
    st->notify = notify;
    st->arg = arg;
    st->next = h->streams;
    h->streams = st;
    return st;
}

static void watcher_free(watcher *w)
{
    free(w->key);
    free(w->end);
    free(w);
}

static void stream_destroy(watch_stream *st)
{
    while (st->watchers) {
        watcher *w = st->watchers;
        st->watchers = w->next;
        watcher_free(w);
    }
    while (st->head) {
        watch_item *it = st->head;
        st->head = it->next;
        free(it);
    }
    free(st->last);
    free(st);
}

void watch_stream_free(watch_stream *st)
{
    if (!st)
        return;
    watch_stream **pp = &st->hub->streams;
    while (*pp && *pp != st)
        pp = &(*pp)->next;
    if (*pp)
        *pp = st->next;
    stream_destroy(st);
}

size_t watch_stream_queued_bytes(const watch_stream *st)
{
    return st->qbytes;
}

static watcher *find_watcher(watch_stream *st, int64_t id, watcher ***link)
{
    watcher **pp = &st->watchers;
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    if (link)
        *link = pp;
    return *pp;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static void create(watch_stream *st, const v3_watch_create *c, int64_t now_ms)
{
    int64_t rev = mvcc_current_revision(st->hub->s);
    int64_t id = c->watch_id;
    if (id != 0 && find_watcher(st, id, NULL)) {
        push_ctrl(st, -1, true, true, 0, "mvcc: duplicate watch ID provided on the WatchStream",
                  rev);
        return;
    }
    if (st->nwatchers >= st->hub->lim.max_watchers) {
        push_ctrl(st, -1, true, true, 0, "etcdserver: too many watchers on this stream", rev);
        return;
    }
    if (id == 0) {
        /* automatic IDs count up from 0, skipping IDs the client chose */
        while (find_watcher(st, st->next_id, NULL))
            st->next_id++;
        id = st->next_id++;
    }
    watcher *w = calloc(1, sizeof(*w));
    if (!w)
        return;
    w->id = id;
    w->key = dup_bytes(c->key, c->key_len);
    w->end = dup_bytes(c->range_end, c->range_end_len);
    if (!w->key || !w->end) {
        watcher_free(w);
        return;
    }
    w->key_len = c->key_len;
    w->end_len = c->range_end_len;
    w->prev_kv = c->prev_kv;
    w->noput = c->filter_noput;
    w->nodelete = c->filter_nodelete;
    w->progress_notify = c->progress_notify;
    w->fragment = c->fragment;
    w->last_sent_ms = now_ms;
    push_ctrl(st, id, true, false, 0, NULL, rev);
    int64_t crev = mvcc_compact_revision(st->hub->s);
    if (c->start_revision > 0 && c->start_revision < crev) {
        /* etcd: created, then canceled with the compact revision (header without
         * revision) */
        push_ctrl(st, id, false, true, crev, NULL, 0);
        watcher_free(w);
        return;
    }
    if (c->start_revision > 0 && c->start_revision <= rev) {
        w->synced = false;
        w->next_rev = c->start_revision;
    } else {
        w->synced = true;
        w->next_rev = c->start_revision > rev ? c->start_revision : rev + 1;
    }
    /* appended: live events reach a stream's watchers in creation order */
    watcher **tail = &st->watchers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    st->nwatchers++;
}

void watch_stream_request(watch_stream *st, const v3_request *req, int64_t now_ms)
{
    st->hub->now_ms = now_ms;
    switch (req->watch_kind) {
    case V3_WATCH_CREATE:
        create(st, &req->watch, now_ms);
        break;
    case V3_WATCH_CANCEL: {
        watcher **link;
        watcher *w = find_watcher(st, req->watch_id, &link);
        if (w) { /* etcd answers nothing for an unknown ID */
            *link = w->next;
            st->nwatchers--;
            watcher_free(w);
            push_ctrl(st, req->watch_id, false, true, 0, NULL, mvcc_current_revision(st->hub->s));
        }
        break;
    }
    case V3_WATCH_PROGRESS: {
        /* etcd 3.4: answered (watch_id -1) only when every watcher is in sync */
        bool all = true;
        for (watcher *w = st->watchers; w; w = w->next)
            all = all && w->synced;
        if (all)
            push_ctrl(st, -1, false, false, 0, NULL, mvcc_current_revision(st->hub->s));
        break;
    }
    default:
        break;
    }
    if (st->head && st->notify)
        st->notify(st->arg);
}

/* Replays one bounded window for an unsynced watcher: 1 queued something (or canceled
 * it), 0 advanced without output, -1 blocked (no room or no memory). */
static int replay(watch_stream *st, watcher *w)
{
    mvcc *s = st->hub->s;
    int64_t rev = mvcc_current_revision(s);
    mvcc_arena a;
    mvcc_arena_init(&a, 0);
    mvcc_event *evs;
    size_t n;
    int64_t next;
    /* a window of revisions bounds the scan; the event count bounds the batch */
    int64_t to = w->next_rev + (int64_t)st->hub->lim.replay_batch;
    if (to > rev || to < w->next_rev)
        to = rev;
    int e = mvcc_history(s, w->key, w->key_len, w->end, w->end_len, w->next_rev, to,
                         st->hub->lim.replay_batch, w->prev_kv, &a, &evs, &n, &next);
    int rc = -1;
    if (e == MVCC_ERR_COMPACTED) {
        push_ctrl(st, w->id, false, true, mvcc_compact_revision(s), NULL, 0);
        watcher **link;
        find_watcher(st, w->id, &link);
        *link = w->next;
        st->nwatchers--;
        watcher_free(w);
        rc = 1;
    } else if (e == MVCC_OK) {
        const mvcc_event **sel = n ? malloc(n * sizeof(const mvcc_event *)) : NULL;
        size_t k = 0;
        if (!n || sel) {
            for (size_t i = 0; i < n; i++)
                if (wanted(w, &evs[i]))
                    sel[k++] = &evs[i];
            if (k == 0 || push_events(st, w, sel, k, rev)) {
                rc = k > 0;
                w->next_rev = next;
                if (next > rev)
                    w->synced = true;
            }
        }
        free(sel);
    }
    mvcc_arena_free(&a);
    return rc;
}

bool watch_stream_busy(const watch_stream *st)
{
    for (const watcher *w = st->watchers; w; w = w->next)
        if (!w->synced)
            return true;
    return false;
}

bool watch_stream_next(watch_stream *st, v3_watch_resp *resp, int64_t *header_revision)
{
    free(st->last);
    st->last = NULL;
    /* Fill from history while there is room, one window per unsynced watcher per round;
     * the rounds are capped so one call does bounded work (see watch_stream_busy). */
    for (int rounds = 0; rounds < 256 && !st->head; rounds++) {
        bool advanced = false;
        for (watcher *w = st->watchers, *nx; w; w = nx) {
            nx = w->next;
            if (!w->synced && room(st, sizeof(watch_item)) && replay(st, w) >= 0)
                advanced = true;
        }
        if (!advanced)
            break;
    }
    watch_item *it = st->head;
    if (!it)
        return false;
    st->head = it->next;
    if (!st->head)
        st->tail = NULL;
    st->qbytes -= it->bytes;
    st->qlen--;
    st->last = it;
    *resp = it->resp;
    *header_revision = it->header_rev;
    return true;
}
