/* Backend objects and their addresses.
 *
 * Numeric hosts (the local cluster, tests) are parsed in place and never touch the name
 * service. Names (compose) go to the resolver thread (router/resolver.c): at start, after
 * a connect failure, when a check succeeds on an unresolved backend, and every second while
 * a lookup fails; at most once per second each. The old address stays in use until a new
 * one arrives. Without a resolver (unit tests) the lookup runs inline. */
#include "router/backend.h"

#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "router/proxy.h"

backend *backend_new(router *r, const router_backend_conf *conf)
{
    backend *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->conf = *conf;
    uint64_t now = evloop_now_ms(r->loop);
    check_state_init(&b->primary_chk, now);
    check_state_init(&b->replica_chk, now);
    backend_resolve(r, b);
    return b;
}

void backend_free(backend *b)
{
    free(b);
}

static int apply_lookup(backend *b, int rc, const struct sockaddr *addr, socklen_t addrlen)
{
    if (rc != 0 || !addrlen || addrlen > sizeof(b->addr)) {
        if (!b->resolve_failed)
            log_warn("router: backend %s: cannot resolve '%s': %s", b->conf.name, b->conf.host,
                     rc ? gai_strerror(rc) : "no usable address");
        b->resolve_failed = 1;
        return -1;
    }
    memcpy(&b->addr, addr, addrlen);
    b->addrlen = addrlen;
    if (b->resolve_failed)
        log_info("router: backend %s: '%s' resolves again", b->conf.name, b->conf.host);
    b->resolve_failed = 0;
    return 0;
}

int backend_resolve(router *r, backend *b)
{
    if (r->mirror) /* addresses come with the main loop's routing table */
        return b->addrlen ? 0 : -1;
    uint64_t now = evloop_now_ms(r->loop);
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)b->conf.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(b->conf.host, port, &hints, &res);
    if (rc != 0) {
        if (now < b->resolve_not_before_ms)
            return -1;
        b->resolve_not_before_ms = now + 1000;
        if (r->resolver) {
            if (resolver_submit(r->resolver, b->conf.name, b->conf.host, b->conf.port) < 0)
                log_warn("router: backend %s: resolver busy, lookup of '%s' deferred", b->conf.name,
                         b->conf.host);
            return -1; /* the answer arrives through backend_resolved() */
        }
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(b->conf.host, port, &hints, &res);
        evloop_update_now(r->loop);
    }
    int ok = apply_lookup(b, rc, res ? res->ai_addr : NULL, res ? res->ai_addrlen : 0);
    if (res)
        freeaddrinfo(res);
    return ok;
}

void backend_resolved(const resolver_result *res, void *arg)
{
    router *r = arg;
    backend *b = NULL;
    for (size_t i = 0; i < r->n_all && !b; i++)
        if (strcmp(r->backends[i]->conf.name, res->key) == 0)
            b = r->backends[i];
    /* Gone, or its host changed meanwhile (a reload filed a newer lookup): stale. */
    if (!b || strcmp(b->conf.host, res->host) != 0 || b->conf.port != res->port)
        return;
    if (apply_lookup(b, res->gai_rc, (const struct sockaddr *)&res->addr, res->addrlen) == 0)
        proxy_targets_changed(r); /* a write target needs an address */
}

void backend_retry_unresolved(router *r)
{
    for (size_t i = 0; i < r->n_backends; i++)
        if (r->backends[i]->resolve_failed || !r->backends[i]->addrlen)
            backend_resolve(r, r->backends[i]);
}

void backend_note_connect_failure(router *r, backend *b)
{
    if (r->mirror) {
        /* The main loop resolves and checks: ask it for an immediate check, as it would
         * after a failure of its own. */
        if (b->load && r->main_wake_fd >= 0) {
            uint64_t one = 1;
            atomic_store(&b->load->check_wanted, 1);
            if (write(r->main_wake_fd, &one, sizeof(one)) < 0)
                log_debug("router: waking the main loop: %s", strerror(errno));
        }
        return;
    }
    backend_resolve(r, b);
    if (r->check_now)
        r->check_now(r, b, r->check_now_arg);
}

void backend_gc(router *r)
{
    size_t j = r->n_backends;
    for (size_t i = r->n_backends; i < r->n_all; i++) {
        backend *b = r->backends[i];
        if (b->sessions[LSN_PRIMARY].count == 0 && b->sessions[LSN_REPLICAS].count == 0 &&
            !b->checker[0] && !b->checker[1]) {
            backend_free(b);
            continue;
        }
        r->backends[j++] = b;
    }
    r->n_all = j;
}
