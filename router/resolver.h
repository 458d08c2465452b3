/* Backend name resolution off the event loop. musl has no getaddrinfo_a, so one thread runs
 * getaddrinfo for a bounded set of requests and hands each result back through an eventfd:
 * a name server that never answers delays only the lookups queued behind it, never the
 * proxying. (Health checks and the DCS watch resolve through libcurl's own threaded
 * resolver.) */
#ifndef APPLIANCE_ROUTER_RESOLVER_H
#define APPLIANCE_ROUTER_RESOLVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "evloop.h"
#include "router/config.h"

typedef struct resolver resolver;

/* One finished lookup, delivered on the loop's thread. key: what the request was filed
 * under (the backend name); gai_rc: getaddrinfo's result (0: addr/addrlen valid). */
typedef struct resolver_result {
    char key[ROUTER_NAME_MAX];
    char host[ROUTER_HOST_MAX];
    uint16_t port;
    int gai_rc;
    struct sockaddr_storage addr;
    socklen_t addrlen;
} resolver_result;

typedef void (*resolver_cb)(const resolver_result *res, void *arg);

enum { RESOLVER_MAX_PENDING = 32 };

resolver *resolver_new(evloop *loop, resolver_cb cb, void *arg);

/* Files a lookup of host:port under key. 1: filed; 0: one for that key is already queued
 * or running (its result will come); -1: all RESOLVER_MAX_PENDING slots busy. */
int resolver_submit(resolver *rs, const char *key, const char *host, uint16_t port);

/* Lookups queued or running now (tests, /metrics). */
unsigned resolver_pending(resolver *rs);

/* Stops delivering results and lets the thread go: one stuck in a lookup finishes it and
 * exits on its own (the process need not wait for a silent name server). */
void resolver_free(resolver *rs);

#endif
