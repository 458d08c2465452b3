/* Backend objects and their addresses.
 *
 * Resolution uses getaddrinfo, which blocks. Numeric hosts (the local cluster, tests) skip
 * it entirely; names (compose) are resolved at start, after a connect failure and when a
 * check succeeds on an unresolved backend, at most once per second each. Docker's
 * resolver answers locally in well under a millisecond; a slow resolver would stall the
 * loop for its timeout, which is why lookups are rate-limited rather than retried. */
#include "router/backend.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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

int backend_resolve(router *r, backend *b)
{
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
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(b->conf.host, port, &hints, &res);
        evloop_update_now(r->loop);
    }
    if (rc != 0 || !res) {
        if (!b->resolve_failed)
            log_warn("router: backend %s: cannot resolve '%s': %s", b->conf.name, b->conf.host,
                     gai_strerror(rc));
        b->resolve_failed = 1;
        return -1;
    }
    if (res->ai_addrlen <= sizeof(b->addr)) {
        memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
        b->addrlen = res->ai_addrlen;
    }
    if (b->resolve_failed)
        log_info("router: backend %s: '%s' resolves again", b->conf.name, b->conf.host);
    b->resolve_failed = 0;
    freeaddrinfo(res);
    return 0;
}

void backend_note_connect_failure(router *r, backend *b)
{
    if (r->mirror)
        return; /* the main loop resolves and checks; its next check sees the failure too */
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
