/* Periodic /primary and /replica checks with lib/http_client. */
#include "router/health_check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router/backend.h"
#include "router/proxy.h"
#include "router/select.h"

enum { KIND_PRIMARY, KIND_REPLICA };

typedef struct check_job {
    health_checker *hc;
    backend *b;
    int kind;
    http_client_req *req;
    ev_timer *timer;
    int again; /* a check was asked for while one was in flight */
} check_job;

struct health_checker {
    router *r;
    http_client *http;
    uint32_t spread; /* staggers first checks */
};

static void job_run(evloop *loop, void *arg);

static void job_schedule(check_job *j, uint32_t delay_ms)
{
    evloop *loop = j->hc->r->loop;
    if (j->timer)
        evloop_timer_cancel(loop, j->timer);
    j->timer = evloop_timer_start(loop, delay_ms, job_run, j);
}

static int is_dcs_leader(const router *r, const backend *b)
{
    return r->dcs != DCS_OFF && select_dcs_usable(r, evloop_now_ms(r->loop)) &&
           strcmp(r->dcs_leader, b->conf.name) == 0;
}

static uint32_t next_delay(const check_job *j)
{
    router *r = j->hc->r;
    /* The DCS names this node leader but its /primary does not pass yet: it is promoting.
     * Poll fast so writes follow within a few tens of ms of the promotion. */
    if (j->kind == KIND_PRIMARY && is_dcs_leader(r, j->b) && !j->b->primary_chk.up)
        return r->cfg.check_fast_interval_ms;
    return r->cfg.check_interval_ms;
}

/* The status document's "role" (Patroni 3: "master", 4 and ours: "primary"). A body that
 * is not a JSON object with a role (a bare health endpoint) does not veto a 200. */
static int role_is_primary(const char *body, size_t len)
{
    if (!body || len == 0)
        return 1;
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *role = json_object_get(doc, "role");
    int ok = 1;
    if (json_is_string(role)) {
        const char *v = json_string_value(role);
        ok = strcmp(v, "primary") == 0 || strcmp(v, "master") == 0;
    }
    json_decref(doc);
    return ok;
}

static void job_done(const http_client_result *res, void *arg)
{
    check_job *j = arg;
    router *r = j->hc->r;
    backend *b = j->b;
    j->req = NULL;
    uint64_t now = evloop_update_now(r->loop);
    enum check_outcome o;
    if (res->status == 200)
        o = CHECK_PASS;
    else if (res->status != 0)
        o = CHECK_STATUS;
    else if (res->error && strstr(res->error, "imeout"))
        o = CHECK_TIMEOUT;
    else
        o = CHECK_CONNECT;
    if (o == CHECK_PASS && j->kind == KIND_PRIMARY && r->cfg.primary_check_role &&
        !role_is_primary(res->body, res->body_len))
        o = CHECK_STATUS; /* holds the leader key, PostgreSQL not promoted yet */
    check_state *cs = j->kind == KIND_PRIMARY ? &b->primary_chk : &b->replica_chk;
    /* With the DCS naming this node leader, one passing /primary is agreement enough; the
     * DCS is the first opinion. Otherwise HAProxy's rise applies. */
    uint32_t rise = j->kind == KIND_PRIMARY && is_dcs_leader(r, b) ? 1 : r->cfg.check_rise;
    uint32_t ms = (uint32_t)(res->total_seconds * 1000.0);
    int flipped = check_state_apply(cs, o, res->status, ms, now, rise, r->cfg.check_fall,
                                    j->kind == KIND_PRIMARY);
    if (flipped) {
        log_info("router: %s check of %s: %s (%s %d%s%s)",
                 j->kind == KIND_PRIMARY ? "primary" : "replica", b->conf.name,
                 cs->up ? "UP" : "DOWN", check_state_status_name(cs), res->status,
                 res->error ? ", " : "", res->error ? res->error : "");
    }
    if (o == CHECK_PASS && !b->addrlen)
        backend_resolve(r, b);
    if (flipped)
        proxy_targets_changed(r);
    if (j->again) {
        j->again = 0;
        job_schedule(j, 0);
        return;
    }
    job_schedule(j, next_delay(j));
}

static void job_run(evloop *loop, void *arg)
{
    check_job *j = arg;
    router *r = j->hc->r;
    backend *b = j->b;
    j->timer = NULL;
    if (j->req) {
        j->again = 1;
        return;
    }
    const char *host = b->conf.check_host[0] ? b->conf.check_host : b->conf.host;
    const char *path =
        j->kind == KIND_PRIMARY ? r->cfg.primary_check_path : r->cfg.replica_check_path;
    char url[ROUTER_HOST_MAX + ROUTER_PATH_MAX + 32];
    int v6 = strchr(host, ':') != NULL;
    snprintf(url, sizeof(url), "http://%s%s%s:%u%s", v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)b->conf.check_port, path);
    http_client_opts o;
    memset(&o, 0, sizeof(o));
    /* HAProxy's template sends OPTIONS (status line only). The primary check GETs the
     * status document instead when it must confirm the role (see role_is_primary). */
    o.method = j->kind == KIND_PRIMARY && r->cfg.primary_check_role ? "GET" : "OPTIONS";
    o.timeout_ms = r->cfg.check_timeout_ms;
    o.connect_timeout_ms = r->cfg.check_timeout_ms;
    o.max_body_bytes = (size_t)64 * 1024;
    j->req = http_client_request(j->hc->http, url, &o, job_done, j);
    if (!j->req) {
        log_warn("router: cannot start a check of %s", b->conf.name);
        job_schedule(j, r->cfg.check_interval_ms);
    }
    (void)loop;
}

static void job_stop(health_checker *hc, check_job *j)
{
    if (j->req)
        http_client_cancel(hc->http, j->req);
    if (j->timer)
        evloop_timer_cancel(hc->r->loop, j->timer);
    j->b->checker[j->kind] = NULL;
    free(j);
}

health_checker *health_checker_new(router *r, http_client *http)
{
    health_checker *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return NULL;
    hc->r = r;
    hc->http = http;
    r->check_now = health_check_now;
    r->check_now_arg = hc;
    health_checker_sync(hc);
    return hc;
}

void health_checker_sync(health_checker *hc)
{
    router *r = hc->r;
    for (size_t i = 0; i < r->n_all; i++) {
        backend *b = r->backends[i];
        for (int k = 0; k < 2; k++) {
            check_job *j = b->checker[k];
            if (b->removed) {
                if (j)
                    job_stop(hc, j);
                continue;
            }
            if (j)
                continue;
            j = calloc(1, sizeof(*j));
            if (!j)
                continue;
            j->hc = hc;
            j->b = b;
            j->kind = k;
            b->checker[k] = j;
            job_schedule(j, (hc->spread++ * 7) % 50);
        }
    }
}

void health_checker_free(health_checker *hc)
{
    if (!hc)
        return;
    router *r = hc->r;
    for (size_t i = 0; i < r->n_all; i++)
        for (int k = 0; k < 2; k++)
            if (r->backends[i]->checker[k])
                job_stop(hc, r->backends[i]->checker[k]);
    if (r->check_now_arg == hc) {
        r->check_now = NULL;
        r->check_now_arg = NULL;
    }
    free(hc);
}

void health_check_now(router *r, backend *b, void *arg)
{
    (void)r;
    (void)arg;
    for (int k = 0; k < 2; k++) {
        check_job *j = b->checker[k];
        if (!j)
            continue;
        if (j->req)
            j->again = 1;
        else
            job_schedule(j, 0);
    }
}
