/* Kernel NAT write path: rule follows the write target; flow counters into the stats. */
#include "router/nat_path.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router/ct_worker.h"
#include "router/kernel_nat.h"

enum {
    NAT_SLOTS = 256,
    /* Flow figures are read from conntrack (a dump walks the whole conntrack hash) at most
     * this often, when events say flows changed; at least every IDLE_DUMP_MS (bytes of
     * long sessions). New sessions are counted from their events at once. */
    STATS_INTERVAL_MS = 1000,
    IDLE_DUMP_MS = 10000,
    RETRY_INTERVAL_MS = 1000,
};

/* What has been added to the counters for the kernel's flows of one slot, so the next
 * reading adds only the difference (the proxy keeps counting its own sessions in the same
 * fields). Process-wide figures (5000's frontend, the session count that
 * limits.max_connections reads) and the backend's are tracked apart: a reload may give
 * the backend a new object. */
typedef struct nat_slot {
    char name[ROUTER_NAME_MAX];       /* "" = free */
    uint64_t live, bin, bout;         /* in the frontend and session counters */
    const backend *applied_to;        /* the backend object b_* went into */
    uint64_t b_live, b_bin, b_bout;   /* in that backend's counters */
    uint64_t closed_bin, closed_bout; /* final bytes of flows conntrack has destroyed */
} nat_slot;

struct nat_path {
    kernel_nat *k;
    router *r;
    int installed;         /* a rule is in the kernel */
    kernel_nat_target cur; /* ... this one */
    int failed;            /* the last set failed: retried by the timer */
    ev_timer *timer;
    /* Dumps and flushes walk the kernel's whole conntrack hash: on a thread of their own
     * (router/ct_worker.h), never on the loop. */
    ct_worker *w;
    uint64_t total; /* sessions the kernel forwarded (NEW events) */
    int dirty;      /* an event of ours since the last dump */
    uint64_t last_dump_ms;
    nat_slot slot[NAT_SLOTS];
};

static backend *backend_named(const router *r, const char *name)
{
    for (size_t i = 0; i < r->n_all; i++)
        if (strcmp(r->backends[i]->conf.name, name) == 0)
            return r->backends[i];
    return NULL;
}

/* A backend's slot, stable for the process (the ct mark of its flows). When all 256 are
 * taken, a slot whose backend is gone and which is not installed is reused. */
static int slot_of(struct nat_path *n, const char *name)
{
    int free_slot = -1;
    for (int i = 0; i < NAT_SLOTS; i++) {
        if (strcmp(n->slot[i].name, name) == 0)
            return i;
        if (free_slot < 0 && !n->slot[i].name[0])
            free_slot = i;
    }
    if (free_slot < 0)
        for (int i = 0; i < NAT_SLOTS && free_slot < 0; i++)
            if (!backend_named(n->r, n->slot[i].name) && !(n->installed && n->cur.slot == i))
                free_slot = i;
    if (free_slot < 0)
        return -1;
    memset(&n->slot[free_slot], 0, sizeof(n->slot[free_slot]));
    snprintf(n->slot[free_slot].name, sizeof(n->slot[free_slot].name), "%s", name);
    return free_slot;
}

/* The listener's address for the rule: numeric IPv4 only ("0.0.0.0": any local one). */
static int listen_addr(const router *r, struct sockaddr_in *out)
{
    char host[ROUTER_HOST_MAX];
    uint16_t port;
    if (router_split_hostport(r->cfg.listen_primary, host, sizeof(host), &port) < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons(port);
    if (!host[0] || strcmp(host, "*") == 0)
        return 0;
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static int same_target(const kernel_nat_target *a, const kernel_nat_target *b)
{
    return a->listen.sin_addr.s_addr == b->listen.sin_addr.s_addr &&
           a->listen.sin_port == b->listen.sin_port &&
           a->target.sin_addr.s_addr == b->target.sin_addr.s_addr &&
           a->target.sin_port == b->target.sin_port && a->slot == b->slot &&
           a->max_connections == b->max_connections && a->idle_timeout_s == b->idle_timeout_s;
}

void nat_path_sync(router *r)
{
    struct nat_path *n = r->nat;
    if (!n)
        return;
    const backend *b = r->write_target;
    kernel_nat_target t;
    memset(&t, 0, sizeof(t));
    int want = b && b->addrlen && b->addr.ss_family == AF_INET && listen_addr(r, &t.listen) == 0;
    if (want) {
        int s = slot_of(n, b->conf.name);
        if (s < 0) {
            want = 0;
        } else {
            memcpy(&t.target, &b->addr, sizeof(t.target));
            t.slot = (uint8_t)s;
            t.max_connections = r->cfg.max_connections;
            t.idle_timeout_s = (r->cfg.idle_timeout_ms + 999) / 1000;
        }
    }
    if (!n->failed && want == n->installed && (!want || same_target(&t, &n->cur)))
        return;
    char err[ROUTER_ERR_MAX] = "";
    int old_installed = n->installed;
    int old_slot = n->cur.slot;
    if (kernel_nat_set(n->k, want ? &t : NULL, err, sizeof(err)) == 0) {
        if (n->failed)
            log_info("router: kernel NAT: rules accepted again");
        n->failed = 0;
        n->installed = want;
        if (want)
            n->cur = t;
    } else {
        /* Whatever is in the kernel still points at the previous target: take it out so
         * 5000 falls back to the proxy, which follows the router's choice. */
        if (!n->failed)
            log_error("router: kernel NAT: %s; 5000 goes through the proxy until the "
                      "kernel takes the rule (retried every %d ms)",
                      err, RETRY_INTERVAL_MS);
        n->failed = 1;
        char e2[ROUTER_ERR_MAX];
        if (kernel_nat_set(n->k, NULL, e2, sizeof(e2)) == 0)
            n->installed = 0;
        else
            log_error("router: kernel NAT: cannot remove the old rule either: %s", e2);
    }
    if (old_installed && (!n->installed || n->cur.slot != old_slot))
        ct_worker_end_flows(n->w, (uint8_t)old_slot); /* off the loop: see ct_worker.h */
    if (want && n->installed)
        log_info("router: kernel NAT: %s now forwarded to %s", r->cfg.listen_primary, b->conf.name);
}

/* ---- counters ---- */

/* *field moves by (now - before), down as well as up, never below 0. */
static void shift(uint64_t *field, uint64_t before, uint64_t now)
{
    if (now >= before)
        *field += now - before;
    else
        *field = *field >= before - now ? *field - (before - now) : 0;
}

/* *field += now - *applied (or -= when it shrank), *applied = now. */
static void follow(uint64_t *field, uint64_t *applied, uint64_t now)
{
    shift(field, *applied, now);
    *applied = now;
}

/* Byte counters only grow: a smaller reading (events lost, a flow's bytes gone with it)
 * is taken as the new base without taking anything back. */
static void follow_up(uint64_t *field, uint64_t *applied, uint64_t now)
{
    if (now > *applied)
        *field += now - *applied;
    *applied = now;
}

static void slot_set(struct nat_path *n, int i, uint64_t live, uint64_t bin, uint64_t bout)
{
    nat_slot *s = &n->slot[i];
    router *r = n->r;
    frontend_stats *fe = &r->lsn[LSN_PRIMARY].fe;
    uint64_t before = s->live;
    s->live = live;
    shift(&fe->scur, before, live);
    if (fe->scur > fe->smax)
        fe->smax = fe->scur;
    shift(&r->sessions_total_cur, before, live);
    if (r->all_sessions) { /* several loops: the limit reads the shared count */
        if (live >= before)
            atomic_fetch_add_explicit(r->all_sessions, live - before, memory_order_relaxed);
        else
            atomic_fetch_sub_explicit(r->all_sessions, before - live, memory_order_relaxed);
    }
    uint64_t b0 = s->bin, o0 = s->bout;
    follow_up(&fe->bin, &s->bin, bin);
    follow_up(&fe->bout, &s->bout, bout);
    backend *b = backend_named(r, s->name);
    if (b != s->applied_to) { /* a new object (reload): its counters start from here */
        s->applied_to = b;
        s->b_live = 0;
        s->b_bin = b0;
        s->b_bout = o0;
    }
    if (!b)
        return;
    server_stats *st = &b->st[LSN_PRIMARY];
    follow(&st->scur, &s->b_live, live);
    if (st->scur > st->smax)
        st->smax = st->scur;
    follow_up(&st->bin, &s->b_bin, bin);
    follow_up(&st->bout, &s->b_bout, bout);
}

static void on_event(void *arg, uint8_t slot, int kind, uint64_t bytes_in, uint64_t bytes_out)
{
    struct nat_path *n = arg;
    nat_slot *s = &n->slot[slot];
    if (!s->name[0])
        return;   /* not one of ours (a mark left by an older run) */
    n->dirty = 1; /* something changed: the next tick dumps */
    if (kind == KNAT_EV_UPDATE)
        return;
    if (kind == KNAT_EV_DESTROY) {
        s->closed_bin += bytes_in;
        s->closed_bout += bytes_out;
        return;
    }
    /* Counted live at once, so limits.max_connections sees it before the next dump. */
    router *r = n->r;
    slot_set(n, slot, s->live + 1, s->bin, s->bout);
    n->total++;
    backend *b = backend_named(r, s->name);
    if (b) {
        b->st[LSN_PRIMARY].stot++;
        b->st[LSN_PRIMARY].lastsess_ms = evloop_now_ms(r->loop);
    }
    r->lsn[LSN_PRIMARY].fe.stot++;
}

/* The conntrack thread's hand-over: flushes to log, a dump to fold into the counters. */
static void on_worker(void *arg, const ct_worker_result *res)
{
    struct nat_path *n = arg;
    for (size_t i = 0; i < res->n_ended; i++) {
        const char *name = n->slot[res->ended[i].slot].name;
        if (res->ended[i].count > 0)
            log_info("router: ended %d kernel-forwarded write sessions to %s (%.1f ms)",
                     res->ended[i].count, name, res->ended[i].ms);
        else if (res->ended[i].count < 0)
            log_error("router: kernel NAT: cannot end the flows to %s", name);
    }
    if (res->err[0])
        log_warn("router: kernel NAT: %s", res->err);
    if (!res->dumped)
        return;
    /* Events first: a DESTROY counted before the dump that no longer lists its flow. */
    if (kernel_nat_events_drain(n->k, on_event, n) < 0)
        log_warn("router: kernel NAT: reading conntrack events failed");
    for (int i = 0; i < NAT_SLOTS; i++)
        if (n->slot[i].name[0])
            slot_set(n, i, res->flows[i].live, n->slot[i].closed_bin + res->flows[i].bytes_in,
                     n->slot[i].closed_bout + res->flows[i].bytes_out);
}

void nat_path_count_new(router *r)
{
    if (r->nat && kernel_nat_events_drain(r->nat->k, on_event, r->nat) == 1)
        ct_worker_dump(r->nat->w); /* events were lost: the dump has the truth */
}

static void on_events_readable(evloop *loop, int fd, uint32_t events, void *arg)
{
    struct nat_path *n = arg;
    (void)loop;
    (void)fd;
    (void)events;
    if (kernel_nat_events_drain(n->k, on_event, n) == 1)
        ct_worker_dump(n->w); /* events were lost: the dump has the truth for live flows */
}

static void on_timer(evloop *loop, void *arg)
{
    struct nat_path *n = arg;
    n->timer = evloop_timer_start(loop, STATS_INTERVAL_MS, on_timer, n);
    if (n->failed)
        nat_path_sync(n->r);
    /* A dump walks the whole conntrack hash (see ct_worker.h): every second while flows
     * change (events say so), else every IDLE_DUMP_MS for the bytes of long sessions. */
    uint64_t now = evloop_now_ms(loop);
    if (n->dirty || now - n->last_dump_ms >= IDLE_DUMP_MS) {
        n->dirty = 0;
        n->last_dump_ms = now;
        ct_worker_dump(n->w);
    }
}

/* ---- life cycle ---- */

int nat_path_start(router *r, char *err, size_t errsz)
{
    struct sockaddr_in la;
    if (listen_addr(r, &la) < 0) {
        snprintf(err, errsz,
                 "listen.primary '%s' is not a numeric IPv4 address (kernel NAT rules match "
                 "an address)",
                 r->cfg.listen_primary);
        return -1;
    }
    /* Clients from other hosts or containers are DNAT'ed in prerouting and must then be
     * forwarded; with forwarding off their SYNs would be dropped and they would time out.
     * Only a loopback listener (clients on this host only) can do without. */
    int loopback = (ntohl(la.sin_addr.s_addr) >> 24) == 127;
    if (!loopback && kernel_nat_forwarding() != 1) {
        snprintf(err, errsz,
                 "net.ipv4.ip_forward is not 1 in this network namespace, so clients from other "
                 "hosts or containers could not be forwarded to the primary (compose: sysctls "
                 "net.ipv4.ip_forward: 1)");
        return -1;
    }
    struct nat_path *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    /* One table per listener address, so routers sharing a network namespace (tests,
     * benches) do not meet; the kernel deletes it with the process that owns it. */
    char table[96], ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &la.sin_addr, ip, sizeof(ip));
    for (char *p = ip; *p; p++)
        if (*p == '.')
            *p = '_';
    snprintf(table, sizeof(table), "appliance_router_%s_%u", ip, (unsigned)ntohs(la.sin_port));
    n->k = kernel_nat_open(table, err, errsz);
    if (!n->k) {
        free(n);
        return -1;
    }
    n->r = r;
    if (!(n->w = ct_worker_start(r->loop, on_worker, n, err, errsz))) {
        kernel_nat_close(n->k);
        free(n);
        return -1;
    }
    if (evloop_add_fd(r->loop, kernel_nat_events_fd(n->k), EPOLLIN, on_events_readable, n) < 0 ||
        !(n->timer = evloop_timer_start(r->loop, STATS_INTERVAL_MS, on_timer, n))) {
        snprintf(err, errsz, "cannot watch conntrack events");
        ct_worker_stop(n->w);
        kernel_nat_close(n->k);
        free(n);
        return -1;
    }
    /* Flows a previous router left marked would be counted as ours (their translation
     * died with its table: those clients are reset on their next segment anyway). */
    char e2[ROUTER_ERR_MAX] = "";
    int stale = kernel_nat_end_all_flows(n->k, e2, sizeof(e2));
    if (stale < 0)
        log_warn("router: kernel NAT: cannot clear a previous router's flows: %s", e2);
    else if (stale > 0)
        log_info("router: kernel NAT: cleared %d flows a previous router left", stale);
    if (!kernel_nat_bytes_known(n->k))
        log_warn("router: kernel NAT: conntrack byte accounting is off "
                 "(net.netfilter.nf_conntrack_acct): 8404 shows no bytes for 5000");
    r->nat = n;
    nat_path_sync(r);
    return 0;
}

void nat_path_stop(router *r)
{
    struct nat_path *n = r->nat;
    if (!n)
        return;
    char err[ROUTER_ERR_MAX];
    if (n->installed && kernel_nat_set(n->k, NULL, err, sizeof(err)) == 0) {
        n->installed = 0;
        /* stopping ends sessions, as the proxy's close does */
        ct_worker_end_flows(n->w, n->cur.slot);
    }
    if (n->timer)
        evloop_timer_cancel(r->loop, n->timer);
    ct_worker_stop(n->w); /* carries out that flush first */
    evloop_del_fd(r->loop, kernel_nat_events_fd(n->k));
    kernel_nat_close(n->k);
    free(n);
    r->nat = NULL;
}

uint64_t nat_path_sessions_total(const router *r)
{
    return r->nat ? r->nat->total : 0;
}

const char *nat_path_state(const router *r)
{
    const struct nat_path *n = r->nat;
    if (!n)
        return "off";
    if (n->failed)
        return "failed";
    return n->installed ? "installed" : "idle";
}
