/* appliance-router: 5000 to the primary, 5001 to replicas, 8404 stats.
 *
 *   appliance-router [-c FILE]     run (FILE, else $ROUTER_CONFIG, else env only)
 *   appliance-router -t [-c FILE]  check the configuration and print the effective one
 *
 * SIGHUP re-reads the configuration (a bad one is reported and the running one kept);
 * SIGTERM/SIGINT stop. One event loop runs everything. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "evloop.h"
#include "http_client.h"
#include "log.h"
#include "router/config.h"
#include "router/core.h"
#include "router/dcs_watch.h"
#include "router/health_check.h"
#include "router/loops.h"
#include "router/nat_path.h"
#include "router/backend.h"
#include "router/resolver.h"
#include "router/sockmap.h"
#include "router/proxy.h"
#include "router/stats_server.h"

struct app {
    evloop *loop;
    router r;
    http_client *http;
    health_checker *hc;
    dcs_watch *dcs;
    stats_server *stats;
    router_loops *loops;
    unsigned n_loops;
    const char *config_path;
    int sigfd;
};

static void print_config(const router_config *c)
{
    printf("scope: %s\nnamespace: %s\n", c->scope, c->namespace_);
    printf("listen: {primary: '%s', replicas: '%s', stats: '%s', reuseport: %s}\n",
           c->listen_primary, c->listen_replicas, c->listen_stats, c->reuseport ? "true" : "false");
    printf("dcs:\n  endpoints: [");
    for (size_t i = 0; i < c->n_dcs; i++)
        printf("%s%s", i ? ", " : "", c->dcs_endpoints[i]);
    printf("]\n  retry_min_ms: %u\n  retry_max_ms: %u\n  resync_ms: %u\n  grace_ms: %u\n",
           c->dcs_retry_min_ms, c->dcs_retry_max_ms, c->dcs_resync_ms, c->dcs_grace_ms);
    printf("checks: {interval_ms: %u, fast_interval_ms: %u, timeout_ms: %u, rise: %u, fall: %u, "
           "primary_path: '%s', primary_role: %s, replica_path: '%s'}\n",
           c->check_interval_ms, c->check_fast_interval_ms, c->check_timeout_ms, c->check_rise,
           c->check_fall, c->primary_check_path, c->primary_check_role ? "true" : "false",
           c->replica_check_path);
    printf("limits: {max_connections: %u, connect_timeout_ms: %u, idle_timeout_ms: %u, "
           "connect_on_first_byte: %s, "
           "hold_ms: %u, hold_max: %u, buffer_size: %u, retries: %u}\n",
           c->max_connections, c->connect_timeout_ms, c->idle_timeout_ms,
           c->connect_on_first_byte ? "true" : "false", c->hold_ms, c->hold_max, c->buffer_size,
           c->retries);
    printf("replicas: {fallback_to_primary: %s}\ndata_path: {splice: %s, forward: %s, loops: "
           "%u}\nbackends:\n",
           c->replicas_fallback_to_primary ? "true" : "false", router_splice_name(c->splice),
           router_forward_name(c->forward), c->loops);
    for (size_t i = 0; i < c->n_backends; i++) {
        const router_backend_conf *b = &c->backends[i];
        printf("  - {name: %s, host: %s, port: %u, check_host: %s, check_port: %u, "
               "noloadbalance: %s}\n",
               b->name, b->host, (unsigned)b->port, b->check_host[0] ? b->check_host : b->host,
               (unsigned)b->check_port, b->noloadbalance ? "true" : "false");
    }
}

static void raise_nofile(uint32_t want)
{
    /* Each session holds two descriptors; ask for enough, capped by the hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t need = (rlim_t)want * 2 + 256;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
        log_warn("router: open-file limit %llu is below the %llu that %u connections need",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need, want);
}

static void reload(struct app *a)
{
    router_config cfg;
    char err[ROUTER_ERR_MAX];
    if (router_config_load(&cfg, a->config_path, NULL, err, sizeof(err)) < 0) {
        log_error("router: reload rejected, keeping the running configuration: %s", err);
        return;
    }
    if (a->n_loops > 1)
        cfg.reuseport = 1; /* every loop binds the proxy ports */
    if (router_loops_wanted(&cfg) != a->n_loops)
        log_warn("router: reload: data_path.loops applies at start only (running %u loops)",
                 a->n_loops);
    if (cfg.splice != a->r.cfg.splice) { /* sessions are paired (or not) as they open */
        log_warn("router: reload: data_path.splice applies at start only (running %s)",
                 a->r.sockmap                            ? "sockmap"
                 : a->r.cfg.splice == ROUTER_SPLICE_PIPE ? "pipe"
                                                         : "userspace");
        cfg.splice = a->r.cfg.splice;
    }
    if (cfg.forward != a->r.cfg.forward) {
        log_warn("router: reload: data_path.forward applies at start only (running %s)",
                 a->r.nat ? "nat" : "proxy");
        cfg.forward = a->r.cfg.forward;
    }
    char old_stats[ROUTER_ADDR_MAX];
    snprintf(old_stats, sizeof(old_stats), "%s", a->r.cfg.listen_stats);
    raise_nofile(cfg.max_connections);
    err[0] = '\0';
    if (router_reload(&a->r, &cfg, err, sizeof(err)) < 0)
        log_error("router: reload: %s (old listener kept)", err);
    health_checker_sync(a->hc);
    dcs_watch_reconfigure(a->dcs);
    if (strcmp(old_stats, cfg.listen_stats) != 0) {
        stats_server *ns = stats_server_new(&a->r, cfg.listen_stats, err, sizeof(err));
        if (ns) {
            stats_server_free(a->stats);
            a->stats = ns;
        } else {
            log_error("router: reload: %s (old stats listener kept)", err);
            snprintf(a->r.cfg.listen_stats, sizeof(a->r.cfg.listen_stats), "%s", old_stats);
        }
    }
    log_info("router: configuration reloaded (%zu backends)", a->r.n_backends);
}

static void on_signal(evloop *loop, int fd, uint32_t events, void *arg)
{
    struct app *a = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            log_info("router: SIGHUP: reloading %s", a->config_path ? a->config_path : "(env)");
            reload(a);
        } else {
            log_info("router: signal %u: stopping", si.ssi_signo);
            evloop_stop(loop);
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: appliance-router [-t] [-c config.yml]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct app a;
    memset(&a, 0, sizeof(a));
    int check_only = 0;
    int opt;
    while ((opt = getopt(argc, argv, "c:th")) != -1) {
        if (opt == 'c')
            a.config_path = optarg;
        else if (opt == 't')
            check_only = 1;
        else
            return usage();
    }
    if (optind != argc)
        return usage();
    if (!a.config_path)
        a.config_path = getenv("ROUTER_CONFIG");
    const char *lvl = getenv("LOG_LEVEL");
    if (lvl && log_level_parse(lvl) >= 0)
        log_set_level((enum log_level)log_level_parse(lvl));

    router_config cfg;
    char err[ROUTER_ERR_MAX] = "";
    if (router_config_load(&cfg, a.config_path, NULL, err, sizeof(err)) < 0) {
        log_error("router: bad configuration: %s", err);
        return 2;
    }
    if (check_only) {
        print_config(&cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(cfg.max_connections);
    a.n_loops = router_loops_wanted(&cfg);
    if (a.n_loops > 1)
        cfg.reuseport = 1; /* every loop binds the proxy ports; the kernel spreads clients */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);

    a.loop = evloop_new();
    if (!a.loop) {
        log_error("router: cannot create the event loop: %s", strerror(errno));
        return 1;
    }
    a.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a.sigfd < 0 || evloop_add_fd(a.loop, a.sigfd, EPOLLIN, on_signal, &a) < 0) {
        log_error("router: signalfd: %s", strerror(errno));
        return 1;
    }
    /* Names are looked up on a thread of their own from the start: a slow name server
     * must delay neither the start nor, later, the proxying. */
    a.r.resolver = resolver_new(a.loop, backend_resolved, &a.r);
    if (!a.r.resolver) {
        log_error("router: cannot start the resolver thread: %s", strerror(errno));
        return 1;
    }
    /* The data path is chosen once, at start (a reload keeps it, like the loop count). */
    static sockmap sm = {-1, -1};
    if (cfg.splice == ROUTER_SPLICE_SOCKMAP || cfg.splice == ROUTER_SPLICE_AUTO) {
        char why[ROUTER_ERR_MAX] = "";
        if (sockmap_open(&sm, cfg.max_connections, why, sizeof(why)) == 0) {
            a.r.sockmap = &sm;
        } else if (cfg.splice == ROUTER_SPLICE_SOCKMAP) {
            log_error("router: data_path.splice is sockmap, but %s", why);
            return 1;
        } else {
            log_info("router: data_path.splice auto: user space moves the bytes, in-kernel "
                     "splicing is unavailable (%s)",
                     why);
        }
    }
    if (router_init(&a.r, a.loop, &cfg, err, sizeof(err)) < 0) {
        log_error("router: %s", err);
        return 1;
    }
    /* 5000 by kernel NAT: after init (the rule follows the router's target from the
     * first selection on), before any check or DCS answer can pick a target. */
    if (cfg.forward != ROUTER_FORWARD_PROXY && nat_path_start(&a.r, err, sizeof(err)) < 0) {
        if (cfg.forward == ROUTER_FORWARD_NAT) {
            log_error("router: data_path.forward is nat, but %s", err);
            return 1;
        }
        log_info("router: data_path.forward auto: the proxy carries 5000, kernel NAT is "
                 "unavailable (%s)",
                 err);
        err[0] = '\0';
    }
    a.http = http_client_new(a.loop);
    a.stats = stats_server_new(&a.r, cfg.listen_stats, err, sizeof(err));
    if (!a.http || !a.stats) {
        log_error("router: %s", a.http ? err : "cannot create the HTTP client");
        return 1;
    }
    /* Extra loops start from the main router's current view and follow its changes. The
     * signal mask above is inherited: only the main thread reads signals. */
    if (a.n_loops > 1 && !(a.loops = router_loops_start(&a.r, a.n_loops - 1, err, sizeof(err)))) {
        log_error("router: %s", err);
        return 1;
    }
    a.hc = health_checker_new(&a.r, a.http);
    a.dcs = dcs_watch_new(&a.r, a.http);
    if (!a.hc || !a.dcs) {
        log_error("router: out of memory");
        return 1;
    }
    log_info("router: listening primary '%s', replicas '%s', stats '%s'; %zu backends; DCS %s; "
             "%u proxy loop%s; data path %s%s",
             cfg.listen_primary, cfg.listen_replicas, cfg.listen_stats, cfg.n_backends,
             cfg.n_dcs ? cfg.dcs_endpoints[0] : "(none: health checks only)", a.n_loops,
             a.n_loops == 1 ? "" : "s",
             a.r.sockmap
                 ? "sockmap (in-kernel)"
                 : router_splice_name(cfg.splice == ROUTER_SPLICE_PIPE ? ROUTER_SPLICE_PIPE
                                                                       : ROUTER_SPLICE_USERSPACE),
             a.r.nat ? "; 5000 forwarded by kernel NAT" : "");
    int rc = evloop_run(a.loop);
    router_loops_stop(a.loops);
    dcs_watch_free(a.dcs);
    health_checker_free(a.hc);
    stats_server_free(a.stats);
    nat_path_stop(&a.r);
    router_destroy(&a.r);
    resolver_free(a.r.resolver);
    sockmap_close(&sm);
    http_client_free(a.http);
    evloop_del_fd(a.loop, a.sigfd);
    close(a.sigfd);
    evloop_free(a.loop);
    return rc < 0 ? 1 : 0;
}
