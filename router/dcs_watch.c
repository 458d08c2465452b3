/* Leader key range + watch on lib/etcd_client. */
#include "router/dcs_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_client.h"
#include "log.h"
#include "router/core.h"
#include "router/proxy.h"

enum { RANGE_TIMEOUT_MS = 2000 };

struct dcs_watch {
    router *r;
    http_client *http;
    etcd_client *etcd;
    etcd_watch *watch;
    ev_timer *timer;   /* retry or resync */
    int range_pending; /* a range call is in flight (its callback must run) */
    int resync;        /* the pending range is a resync (watch stays) */
    uint32_t backoff_ms;
    char key[ROUTER_PATH_MAX + ROUTER_NAME_MAX + 16];
    char endpoints_sig[ROUTER_URL_MAX * ROUTER_MAX_DCS + ROUTER_PATH_MAX * 2];
};

static void start_cycle(dcs_watch *w);

void dcs_apply_leader(router *r, const char *leader, size_t len, int64_t revision)
{
    char name[ROUTER_NAME_MAX];
    if (len >= sizeof(name))
        len = sizeof(name) - 1; /* longer than any backend name: matches none */
    memcpy(name, leader, len);
    name[len] = '\0';
    if (revision > 0 && (uint64_t)revision > r->dcs_revision)
        r->dcs_revision = (uint64_t)revision;
    if (strcmp(name, r->dcs_leader) == 0)
        return;
    char old[ROUTER_NAME_MAX];
    memcpy(old, r->dcs_leader, sizeof(old));
    memcpy(r->dcs_leader, name, sizeof(name));
    r->dcs_leader_changes++;
    log_info("router: DCS leader %s -> %s (revision %lld)", old[0] ? old : "(none)",
             name[0] ? name : "(none)", (long long)revision);
    /* Both the old and the new leader get checked now: the old one's sessions are closed
     * by the reselection below already (the DCS no longer agrees); the new one becomes
     * the write target as soon as its /primary passes. */
    if (r->check_now) {
        backend *b = name[0] ? router_find_backend(r, name) : NULL;
        if (b)
            r->check_now(r, b, r->check_now_arg);
        b = old[0] ? router_find_backend(r, old) : NULL;
        if (b)
            r->check_now(r, b, r->check_now_arg);
    }
    proxy_targets_changed(r);
}

static void set_state(dcs_watch *w, enum dcs_state st)
{
    router *r = w->r;
    if (r->dcs == st)
        return;
    r->dcs = st;
    log_info("router: DCS view %s", st == DCS_OK ? "ok" : st == DCS_UNKNOWN ? "lost" : "off");
    proxy_targets_changed(r);
}

static void on_timer(evloop *loop, void *arg)
{
    dcs_watch *w = arg;
    w->timer = NULL;
    (void)loop;
    if (w->range_pending)
        return;
    start_cycle(w);
}

static void schedule(dcs_watch *w, uint32_t ms)
{
    if (w->timer)
        evloop_timer_cancel(w->r->loop, w->timer);
    w->timer = evloop_timer_start(w->r->loop, ms, on_timer, w);
}

static void retry_later(dcs_watch *w, const char *why)
{
    router *r = w->r;
    if (w->watch) {
        etcd_watch_cancel(w->watch);
        w->watch = NULL;
    }
    log_warn("router: DCS: %s; retrying in %u ms", why, w->backoff_ms);
    set_state(w, DCS_UNKNOWN);
    schedule(w, w->backoff_ms);
    w->backoff_ms *= 2;
    if (w->backoff_ms > r->cfg.dcs_retry_max_ms)
        w->backoff_ms = r->cfg.dcs_retry_max_ms;
}

static void on_watch_event(int type, const etcd_kv *kv, int64_t revision, void *arg)
{
    dcs_watch *w = arg;
    router *r = w->r;
    r->dcs_last_ok_ms = evloop_now_ms(r->loop);
    if (type == 1)
        dcs_apply_leader(r, "", 0, revision);
    else
        dcs_apply_leader(r, kv->value ? kv->value : "", kv->value ? kv->value_len : 0, revision);
}

static void on_watch_end(const char *why, void *arg)
{
    dcs_watch *w = arg;
    w->watch = NULL;
    /* Not yet "lost": re-read shortly (the range fails over to the next endpoint if this
     * one is gone). The short pause keeps a server that ends every watch at once from
     * turning this into a busy loop. */
    log_info("router: DCS watch ended (%s); re-reading the leader key", why);
    schedule(w, w->r->cfg.dcs_retry_min_ms);
}

static void on_range(const etcd_result *res, void *arg)
{
    dcs_watch *w = arg;
    router *r = w->r;
    w->range_pending = 0;
    int resync = w->resync;
    w->resync = 0;
    if (!res->ok) {
        char why[ROUTER_ERR_MAX + ROUTER_PATH_MAX];
        snprintf(why, sizeof(why), "range of %s failed: %s", w->key,
                 res->error ? res->error : "error");
        retry_later(w, why);
        return;
    }
    r->dcs_last_ok_ms = evloop_now_ms(r->loop);
    snprintf(r->dcs_endpoint, sizeof(r->dcs_endpoint), "%s", etcd_client_current_endpoint(w->etcd));
    w->backoff_ms = r->cfg.dcs_retry_min_ms;
    set_state(w, DCS_OK);
    if (res->nkvs > 0)
        dcs_apply_leader(r, res->kvs[0].value, res->kvs[0].value_len, res->revision);
    else
        dcs_apply_leader(r, "", 0, res->revision);
    if (!resync || !w->watch) {
        if (w->watch)
            etcd_watch_cancel(w->watch);
        w->watch = etcd_watch_start(w->etcd, w->key, strlen(w->key), NULL, 0, res->revision + 1,
                                    on_watch_event, on_watch_end, w);
        if (!w->watch) {
            retry_later(w, "cannot start the watch");
            return;
        }
    }
    schedule(w, r->cfg.dcs_resync_ms);
}

static void start_cycle(dcs_watch *w)
{
    router *r = w->r;
    if (!w->etcd || w->range_pending)
        return;
    w->resync = w->watch != NULL;
    w->range_pending = 1;
    /* serializable = 0: a linearizable read, so a partitioned member cannot feed us an
     * old leader. */
    if (etcd_range(w->etcd, w->key, strlen(w->key), NULL, 0, 0, RANGE_TIMEOUT_MS, on_range, w) !=
        0) {
        w->range_pending = 0;
        retry_later(w, "cannot start a range request");
    }
    (void)r;
}

static void make_sig(const router *r, char *out, size_t n)
{
    size_t off = (size_t)snprintf(out, n, "%s|%s|", r->cfg.namespace_, r->cfg.scope);
    for (size_t i = 0; i < r->cfg.n_dcs && off < n; i++)
        off += (size_t)snprintf(out + off, n - off, "%s,", r->cfg.dcs_endpoints[i]);
}

static void setup(dcs_watch *w)
{
    router *r = w->r;
    make_sig(r, w->endpoints_sig, sizeof(w->endpoints_sig));
    const char *ns = r->cfg.namespace_;
    size_t nl = strlen(ns);
    snprintf(w->key, sizeof(w->key), "%.*s/%s/leader", (int)(nl && ns[nl - 1] == '/' ? nl - 1 : nl),
             ns, r->cfg.scope);
    w->backoff_ms = r->cfg.dcs_retry_min_ms;
    if (r->cfg.n_dcs == 0)
        return;
    const char *eps[ROUTER_MAX_DCS];
    for (size_t i = 0; i < r->cfg.n_dcs; i++)
        eps[i] = r->cfg.dcs_endpoints[i];
    w->etcd = etcd_client_new(r->loop, w->http, eps, r->cfg.n_dcs);
    if (!w->etcd) {
        log_error("router: DCS: cannot create the etcd client");
        return;
    }
    start_cycle(w);
}

static void teardown(dcs_watch *w)
{
    if (w->watch) {
        etcd_watch_cancel(w->watch);
        w->watch = NULL;
    }
    if (w->timer) {
        evloop_timer_cancel(w->r->loop, w->timer);
        w->timer = NULL;
    }
    if (w->etcd) {
        /* Frees pending calls without running their callbacks. */
        etcd_client_free(w->etcd);
        w->etcd = NULL;
    }
    w->range_pending = 0;
}

dcs_watch *dcs_watch_new(router *r, http_client *http)
{
    dcs_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->r = r;
    w->http = http;
    setup(w);
    return w;
}

void dcs_watch_reconfigure(dcs_watch *w)
{
    char sig[sizeof(w->endpoints_sig)];
    make_sig(w->r, sig, sizeof(sig));
    if (strcmp(sig, w->endpoints_sig) == 0)
        return;
    log_info("router: DCS settings changed; restarting the leader watch");
    teardown(w);
    w->r->dcs_leader[0] = '\0';
    setup(w);
    if (w->r->cfg.n_dcs == 0)
        w->r->dcs = DCS_OFF;
    proxy_targets_changed(w->r);
}

void dcs_watch_free(dcs_watch *w)
{
    if (!w)
        return;
    teardown(w);
    free(w);
}
