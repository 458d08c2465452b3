/* Router construction, reload and teardown. */
#include "router/core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "router/backend.h"
#include "router/proxy.h"

enum { POOL_KEEP = 256 };

backend *router_find_backend(const router *r, const char *name)
{
    for (size_t i = 0; i < r->n_backends; i++)
        if (strcmp(r->backends[i]->conf.name, name) == 0)
            return r->backends[i];
    return NULL;
}

static int bind_listeners(router *r, const router_config *cfg, char *err, size_t errsz)
{
    int rc = 0;
    char e[ROUTER_ERR_MAX];
    if (proxy_listen(r, LSN_PRIMARY, cfg->listen_primary, e, sizeof(e)) < 0) {
        snprintf(err, errsz, "listen.primary: %s", e);
        rc = -1;
    }
    if (proxy_listen(r, LSN_REPLICAS, cfg->listen_replicas, e, sizeof(e)) < 0 && rc == 0) {
        snprintf(err, errsz, "listen.replicas: %s", e);
        rc = -1;
    }
    return rc;
}

static void init_common(router *r, evloop *loop, const router_config *cfg)
{
    struct resolver *rs = r->resolver; /* set by the caller before init, if any */
    const struct sockmap *sm = r->sockmap;
    memset(r, 0, sizeof(*r));
    r->resolver = rs;
    r->sockmap = sm;
    r->loop = loop;
    r->cfg = *cfg;
    r->started_ms = evloop_now_ms(loop);
    r->started_wall = (uint64_t)time(NULL);
    r->dcs = cfg->n_dcs ? DCS_UNKNOWN : DCS_OFF;
    buffer_pool_init(&r->pool, cfg->buffer_size, POOL_KEEP);
    for (int l = 0; l < LSN_COUNT; l++) {
        r->lsn[l].fd = -1;
        r->lsn[l].r = r;
        r->lsn[l].idx = l;
    }
}

int router_init_mirror(router *r, evloop *loop, const router_config *cfg)
{
    init_common(r, loop, cfg);
    r->mirror = 1;
    r->main_wake_fd = -1;
    r->dcs = DCS_OFF;
    return proxy_start(r);
}

int router_init(router *r, evloop *loop, const router_config *cfg, char *err, size_t errsz)
{
    init_common(r, loop, cfg);
    for (size_t i = 0; i < cfg->n_backends; i++) {
        backend *b = backend_new(r, &cfg->backends[i]);
        if (!b) {
            snprintf(err, errsz, "out of memory");
            router_destroy(r);
            return -1;
        }
        r->backends[r->n_backends++] = b;
    }
    r->n_all = r->n_backends;
    if (bind_listeners(r, cfg, err, errsz) < 0 || proxy_start(r) < 0) {
        if (!err[0])
            snprintf(err, errsz, "out of memory");
        router_destroy(r);
        return -1;
    }
    return 0;
}

void router_set_backends(router *r, backend *const *live, size_t nlive)
{
    backend *gone[ROUTER_MAX_BACKENDS * 2] = {0};
    size_t ngone = 0;
    for (size_t i = 0; i < r->n_all; i++) {
        backend *b = r->backends[i];
        int kept = 0;
        for (size_t j = 0; j < nlive; j++)
            kept |= live[j] == b;
        if (kept)
            continue;
        if (!b->removed && !r->mirror)
            log_info("router: reload: backend %s removed", b->conf.name);
        b->removed = 1;
        uint64_t now = evloop_now_ms(r->loop);
        check_state_force_down(&b->primary_chk, now);
        check_state_force_down(&b->replica_chk, now);
        gone[ngone++] = b;
    }
    r->n_backends = 0;
    for (size_t i = 0; i < nlive; i++)
        r->backends[r->n_backends++] = live[i];
    r->n_all = r->n_backends;
    for (size_t i = 0; i < ngone; i++)
        r->backends[r->n_all++] = gone[i];
}

int router_reload(router *r, const router_config *cfg, char *err, size_t errsz)
{
    backend *live[ROUTER_MAX_BACKENDS] = {0};
    size_t nlive = 0;
    int rc = 0;

    for (size_t i = 0; i < cfg->n_backends; i++) {
        const router_backend_conf *nc = &cfg->backends[i];
        backend *b = router_find_backend(r, nc->name);
        if (b) {
            int addr_changed = strcmp(b->conf.host, nc->host) != 0 || b->conf.port != nc->port;
            b->conf = *nc;
            if (addr_changed) {
                b->addrlen = 0;
                b->resolve_not_before_ms = 0;
                backend_resolve(r, b);
            }
        } else {
            b = backend_new(r, nc);
            if (!b) {
                snprintf(err, errsz, "out of memory");
                return -1;
            }
            log_info("router: reload: new backend %s", nc->name);
        }
        live[nlive++] = b;
    }
    router_set_backends(r, live, nlive);

    router_config old = r->cfg;
    r->cfg = *cfg;
    if (bind_listeners(r, cfg, err, errsz) < 0) {
        /* Keep the old address on record for the listener that failed to move. */
        snprintf(r->cfg.listen_primary, sizeof(r->cfg.listen_primary), "%s",
                 r->lsn[LSN_PRIMARY].addr);
        snprintf(r->cfg.listen_replicas, sizeof(r->cfg.listen_replicas), "%s",
                 r->lsn[LSN_REPLICAS].addr);
        rc = -1;
    }
    (void)old;
    buffer_pool_resize(&r->pool, cfg->buffer_size);
    if (cfg->n_dcs == 0)
        r->dcs = DCS_OFF;
    else if (r->dcs == DCS_OFF)
        r->dcs = DCS_UNKNOWN;
    proxy_targets_changed(r);
    return rc;
}

void router_destroy(router *r)
{
    proxy_shutdown(r);
    for (size_t i = 0; i < r->n_all; i++)
        backend_free(r->backends[i]);
    r->n_all = r->n_backends = 0;
    buffer_pool_destroy(&r->pool);
}
