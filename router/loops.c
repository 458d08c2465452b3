/* Extra proxying event loops: routing tables out, counter snapshots back (see loops.h). */
#include "router/loops.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "router/core.h"
#include "router/proxy.h"

enum { SNAP_PERIOD_MS = 100, MAX_ALL = ROUTER_MAX_BACKENDS * 2 };

/* What the main loop decided, as one immutable value. */
typedef struct route_entry {
    router_backend_conf conf;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint8_t primary_up, replica_up;
    backend_load *load;
} route_entry;

typedef struct route_table {
    router_config cfg;
    size_t n;
    int write_idx; /* -1: no write target */
    route_entry e[ROUTER_MAX_BACKENDS];
} route_table;

/* A loop's counters, as the main loop's 8404 adds them up. */
typedef struct loop_snapshot {
    size_t n;
    char name[MAX_ALL][ROUTER_NAME_MAX];
    server_stats st[MAX_ALL][LSN_COUNT];
    frontend_stats fe[LSN_COUNT];
    uint64_t sessions_cur;
    size_t buffers;
} loop_snapshot;

typedef struct loop_worker {
    router_loops *L;
    unsigned idx;
    pthread_t th;
    int started;
    evloop *loop;
    router r;
    int efd;
    _Atomic(route_table *) next; /* the newest table not yet applied (owned by whoever holds it) */
    atomic_int stop;
    ev_timer *snap_timer;
    pthread_mutex_t mu; /* guards snap */
    loop_snapshot snap;
} loop_worker;

struct router_loops {
    router *main;
    unsigned n;
    loop_worker *w;
    int main_efd; /* the loops ask the main loop for checks through it */
};

/* Shared 5001 counts, one slot per backend name. Static: sessions hold pointers into it
 * until they end, whenever that is; a removed backend's slot is reused once its count is 0
 * and no backend of that name is left. Only the main loop assigns slots. */
static backend_load loads[MAX_ALL];
/* Client fds of every loop (limits.max_connections counts them all). Static like loads:
 * sessions decrement it whenever they end. */
static _Atomic uint64_t all_sessions;

unsigned router_loops_wanted(const router_config *cfg)
{
    long n = cfg->loops ? (long)cfg->loops : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > ROUTER_MAX_LOOPS)
        n = ROUTER_MAX_LOOPS;
    return (unsigned)n;
}

/* ---- main loop side: shared counts and publishing ---- */

static int name_in_use(const router *r, const char *name)
{
    for (size_t i = 0; i < r->n_all; i++)
        if (strcmp(r->backends[i]->conf.name, name) == 0)
            return 1;
    return 0;
}

static backend_load *load_slot(router_loops *L, const char *name)
{
    backend_load *free_slot = NULL;
    for (size_t i = 0; i < MAX_ALL; i++) {
        backend_load *l = &loads[i];
        if (strcmp(l->name, name) == 0)
            return l;
        if (!free_slot &&
            (!l->name[0] || (!name_in_use(L->main, l->name) && atomic_load(&l->replicas_cur) == 0)))
            free_slot = l;
    }
    if (free_slot)
        snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
    return free_slot; /* NULL: all taken; that backend balances per loop */
}

static void fill_table(router_loops *L, route_table *t)
{
    router *r = L->main;
    memset(t, 0, sizeof(*t));
    t->cfg = r->cfg;
    t->write_idx = -1;
    for (size_t i = 0; i < r->n_backends && i < ROUTER_MAX_BACKENDS; i++) {
        backend *b = r->backends[i];
        if (!b->load)
            b->load = load_slot(L, b->conf.name);
        route_entry *e = &t->e[t->n++];
        e->conf = b->conf;
        e->addr = b->addr;
        e->addrlen = b->addrlen;
        e->primary_up = (uint8_t)(b->primary_chk.up != 0);
        e->replica_up = (uint8_t)(b->replica_chk.up != 0);
        e->load = b->load;
        if (b == r->write_target)
            t->write_idx = (int)i;
    }
}

static void wake(int efd)
{
    uint64_t one = 1;
    if (write(efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("router: waking a loop: %s", strerror(errno));
}

static void publish(router *r, void *arg)
{
    router_loops *L = arg;
    (void)r;
    for (unsigned i = 0; i < L->n; i++) {
        route_table *t = malloc(sizeof(*t));
        if (!t) {
            log_error("router: out of memory publishing the routing table to loop %u", i + 1);
            continue;
        }
        fill_table(L, t);
        /* A table the loop has not picked up yet is superseded: it never saw it. */
        free(atomic_exchange(&L->w[i].next, t));
        wake(L->w[i].efd);
    }
}

/* A loop failed to connect to a backend: check those now, as after a failure of our own. */
static void on_check_requests(evloop *loop, int fd, uint32_t events, void *arg)
{
    router_loops *L = arg;
    router *r = L->main;
    uint64_t v;
    (void)loop;
    (void)events;
    while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
    }
    for (size_t i = 0; i < r->n_backends; i++) {
        backend *b = r->backends[i];
        if (b->load && atomic_exchange(&b->load->check_wanted, 0) && r->check_now)
            r->check_now(r, b, r->check_now_arg);
    }
}

/* ---- main loop side: merged counters for 8404 ---- */

static void add_server(server_stats *a, const server_stats *b)
{
    a->scur += b->scur;
    a->smax += b->smax; /* an upper bound: the loops' peaks need not coincide */
    a->stot += b->stot;
    a->bin += b->bin;
    a->bout += b->bout;
    a->econ += b->econ;
    a->eresp += b->eresp;
    a->cli_abrt += b->cli_abrt;
    a->srv_abrt += b->srv_abrt;
    a->killed += b->killed;
    if (b->lastsess_ms > a->lastsess_ms)
        a->lastsess_ms = b->lastsess_ms;
}

static void add_frontend(frontend_stats *a, const frontend_stats *b)
{
    a->scur += b->scur;
    a->smax += b->smax;
    a->stot += b->stot;
    a->bin += b->bin;
    a->bout += b->bout;
    a->denied += b->denied;
    a->qcur += b->qcur;
    a->qmax += b->qmax;
    a->held_total += b->held_total;
    a->rate_last += b->rate_last;
    a->rate_max += b->rate_max;
    a->rate_count += b->rate_count;
}

typedef struct merged_view {
    router r;
    backend b[MAX_ALL];
} merged_view;

static router *stats_view(const router *r, void *arg)
{
    router_loops *L = arg;
    merged_view *v = malloc(sizeof(*v));
    if (!v)
        return NULL;
    v->r = *r;
    for (size_t i = 0; i < r->n_all; i++) {
        v->b[i] = *r->backends[i];
        v->r.backends[i] = &v->b[i];
        if (r->backends[i] == r->write_target)
            v->r.write_target = &v->b[i];
    }
    v->r.n_loops = L->n + 1;
    v->r.loop_stot[0] = r->lsn[LSN_PRIMARY].fe.stot + r->lsn[LSN_REPLICAS].fe.stot;
    for (unsigned w = 0; w < L->n; w++) {
        loop_worker *lw = &L->w[w];
        pthread_mutex_lock(&lw->mu);
        const loop_snapshot *s = &lw->snap;
        for (size_t k = 0; k < s->n; k++)
            for (size_t i = 0; i < r->n_all; i++)
                if (strcmp(v->b[i].conf.name, s->name[k]) == 0) {
                    for (int l = 0; l < LSN_COUNT; l++)
                        add_server(&v->b[i].st[l], &s->st[k][l]);
                    break;
                }
        for (int l = 0; l < LSN_COUNT; l++)
            add_frontend(&v->r.lsn[l].fe, &s->fe[l]);
        v->r.sessions_total_cur += s->sessions_cur;
        v->r.pool.n_used_bufs += s->buffers;
        v->r.loop_stot[w + 1] = s->fe[LSN_PRIMARY].stot + s->fe[LSN_REPLICAS].stot;
        pthread_mutex_unlock(&lw->mu);
    }
    return &v->r;
}

/* ---- loop side ---- */

static backend *mirror_backend(router *r, const route_entry *e)
{
    backend *b = router_find_backend(r, e->conf.name);
    if (!b) {
        b = calloc(1, sizeof(*b));
        if (!b)
            return NULL;
        uint64_t now = evloop_now_ms(r->loop);
        check_state_init(&b->primary_chk, now);
        check_state_init(&b->replica_chk, now);
    }
    b->conf = e->conf;
    b->addr = e->addr;
    b->addrlen = e->addrlen;
    b->primary_chk.up = e->primary_up;
    b->replica_chk.up = e->replica_up;
    b->load = e->load;
    return b;
}

static void apply_table(loop_worker *w, const route_table *t)
{
    router *r = &w->r;
    char err[ROUTER_ERR_MAX];
    r->cfg = t->cfg;
    for (int l = 0; l < LSN_COUNT; l++) {
        const char *want = l == LSN_PRIMARY ? t->cfg.listen_primary : t->cfg.listen_replicas;
        if (proxy_listen(r, l, want, err, sizeof(err)) < 0)
            log_error("router: loop %u: %s (old listener kept)", w->idx, err);
    }
    buffer_pool_resize(&r->pool, t->cfg.buffer_size);
    backend *live[ROUTER_MAX_BACKENDS];
    size_t nlive = 0;
    r->mirror_write = NULL;
    for (size_t i = 0; i < t->n; i++) {
        backend *b = mirror_backend(r, &t->e[i]);
        if (!b) {
            log_error("router: loop %u: out of memory for backend %s", w->idx, t->e[i].conf.name);
            continue;
        }
        live[nlive++] = b;
        if ((int)i == t->write_idx)
            r->mirror_write = b;
    }
    router_set_backends(r, live, nlive);
    proxy_targets_changed(r);
}

static void take_snapshot(loop_worker *w)
{
    router *r = &w->r;
    pthread_mutex_lock(&w->mu);
    loop_snapshot *s = &w->snap;
    s->n = 0;
    for (size_t i = 0; i < r->n_all && s->n < MAX_ALL; i++) {
        snprintf(s->name[s->n], ROUTER_NAME_MAX, "%s", r->backends[i]->conf.name);
        memcpy(s->st[s->n], r->backends[i]->st, sizeof(s->st[s->n]));
        s->n++;
    }
    for (int l = 0; l < LSN_COUNT; l++)
        s->fe[l] = r->lsn[l].fe;
    s->sessions_cur = r->sessions_total_cur;
    s->buffers = proxy_buffers_in_use(r);
    pthread_mutex_unlock(&w->mu);
}

static void on_snap_timer(evloop *loop, void *arg)
{
    loop_worker *w = arg;
    take_snapshot(w);
    w->snap_timer = evloop_timer_start(loop, SNAP_PERIOD_MS, on_snap_timer, w);
}

static void on_wake(evloop *loop, int fd, uint32_t events, void *arg)
{
    loop_worker *w = arg;
    uint64_t v;
    (void)events;
    while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
    }
    if (atomic_load(&w->stop)) {
        evloop_stop(loop);
        return;
    }
    route_table *t = atomic_exchange(&w->next, NULL);
    if (t) {
        apply_table(w, t);
        free(t);
        take_snapshot(w);
    }
}

static void *worker_main(void *arg)
{
    loop_worker *w = arg;
    if (evloop_run(w->loop) < 0)
        log_error("router: loop %u: epoll: %s", w->idx, strerror(errno));
    return NULL;
}

static void worker_free(loop_worker *w)
{
    if (!w->loop)
        return;
    if (w->snap_timer)
        evloop_timer_cancel(w->loop, w->snap_timer);
    w->snap_timer = NULL;
    router_destroy(&w->r);
    if (w->efd >= 0) {
        evloop_del_fd(w->loop, w->efd);
        close(w->efd);
    }
    free(atomic_exchange(&w->next, NULL));
    evloop_free(w->loop);
    w->loop = NULL;
    pthread_mutex_destroy(&w->mu);
}

/* Everything but the thread: built on the caller's thread so a bind error is reported at
 * start; the thread takes over the loop when it is created. */
static int worker_init(router_loops *L, loop_worker *w, unsigned idx, char *err, size_t errsz)
{
    w->L = L;
    w->idx = idx;
    w->efd = -1;
    pthread_mutex_init(&w->mu, NULL);
    w->loop = evloop_new();
    if (!w->loop) {
        snprintf(err, errsz, "loop %u: cannot create the event loop: %s", idx, strerror(errno));
        pthread_mutex_destroy(&w->mu);
        return -1;
    }
    w->r.sockmap = L->main->sockmap;
    if (router_init_mirror(&w->r, w->loop, &L->main->cfg) < 0) {
        snprintf(err, errsz, "loop %u: out of memory", idx);
        goto fail;
    }
    w->r.all_sessions = &all_sessions;
    w->r.main_wake_fd = L->main_efd;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0 || evloop_add_fd(w->loop, w->efd, EPOLLIN, on_wake, w) < 0) {
        snprintf(err, errsz, "loop %u: eventfd: %s", idx, strerror(errno));
        goto fail;
    }
    route_table *t = malloc(sizeof(*t));
    if (!t) {
        snprintf(err, errsz, "loop %u: out of memory", idx);
        goto fail;
    }
    fill_table(L, t);
    apply_table(w, t);
    free(t);
    for (int l = 0; l < LSN_COUNT; l++) {
        const char *want =
            l == LSN_PRIMARY ? L->main->cfg.listen_primary : L->main->cfg.listen_replicas;
        if (want[0] && w->r.lsn[l].fd < 0) {
            snprintf(err, errsz, "loop %u: cannot listen on '%s' (SO_REUSEPORT)", idx, want);
            goto fail;
        }
    }
    take_snapshot(w);
    w->snap_timer = evloop_timer_start(w->loop, SNAP_PERIOD_MS, on_snap_timer, w);
    if (!w->snap_timer) {
        snprintf(err, errsz, "loop %u: out of memory", idx);
        goto fail;
    }
    return 0;
fail:
    worker_free(w);
    return -1;
}

router_loops *router_loops_start(router *main_r, unsigned extra, char *err, size_t errsz)
{
    router_loops *L = calloc(1, sizeof(*L));
    if (!L || !(L->w = calloc(extra ? extra : 1, sizeof(*L->w)))) {
        free(L);
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    L->main = main_r;
    L->main_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (L->main_efd < 0 ||
        evloop_add_fd(main_r->loop, L->main_efd, EPOLLIN, on_check_requests, L) < 0) {
        snprintf(err, errsz, "eventfd: %s", strerror(errno));
        if (L->main_efd >= 0)
            close(L->main_efd);
        free(L->w);
        free(L);
        return NULL;
    }
    atomic_fetch_add(&all_sessions, main_r->sessions_total_cur);
    main_r->all_sessions = &all_sessions;
    for (size_t i = 0; i < main_r->n_all; i++)
        main_r->backends[i]->load = load_slot(L, main_r->backends[i]->conf.name);
    for (unsigned i = 0; i < extra; i++) {
        if (worker_init(L, &L->w[i], i + 1, err, errsz) < 0) {
            router_loops_stop(L);
            return NULL;
        }
        L->n = i + 1;
        if (pthread_create(&L->w[i].th, NULL, worker_main, &L->w[i]) != 0) {
            snprintf(err, errsz, "loop %u: cannot start its thread", i + 1);
            router_loops_stop(L);
            return NULL;
        }
        L->w[i].started = 1;
    }
    main_r->on_targets = publish;
    main_r->on_targets_arg = L;
    main_r->stats_view = stats_view;
    main_r->stats_view_arg = L;
    return L;
}

void router_loops_stop(router_loops *L)
{
    if (!L)
        return;
    router *m = L->main;
    if (m->on_targets_arg == L) {
        m->on_targets = NULL;
        m->stats_view = NULL;
    }
    if (m->all_sessions == &all_sessions) {
        atomic_fetch_sub(&all_sessions, m->sessions_total_cur);
        m->all_sessions = NULL;
    }
    for (unsigned i = 0; i < L->n; i++) {
        loop_worker *w = &L->w[i];
        if (w->started) {
            atomic_store(&w->stop, 1);
            wake(w->efd);
            pthread_join(w->th, NULL);
        }
        worker_free(w);
    }
    /* New sessions of the main loop count locally again; live ones still release their
     * slot (static) when they end. */
    for (size_t i = 0; i < m->n_all; i++)
        m->backends[i]->load = NULL;
    evloop_del_fd(m->loop, L->main_efd);
    close(L->main_efd);
    free(L->w);
    free(L);
}
