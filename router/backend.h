/* Backend life cycle: creation from config, address resolution (names are resolved at run
 * time and again after failures, for compose DNS), removal on reload, reclamation. */
#ifndef APPLIANCE_ROUTER_BACKEND_H
#define APPLIANCE_ROUTER_BACKEND_H

#include "router/resolver.h"
#include "router/router.h"

backend *backend_new(router *r, const router_backend_conf *conf);
void backend_free(backend *b);

/* Resolves conf.host:port into b->addr. Numeric addresses never touch the resolver; names
 * are looked up at most once a second per backend, through r->resolver when there is one
 * (then -1 now and the address later). 0, or -1 (address left as it was). */
int backend_resolve(router *r, backend *b);

/* A lookup filed by backend_resolve finished (resolver callback; arg: the router). */
void backend_resolved(const resolver_result *res, void *arg);

/* Files lookups again for live backends whose name did not resolve (called every second). */
void backend_retry_unresolved(router *r);

/* A connect to b failed: schedule re-resolution and ask for an immediate health check. */
void backend_note_connect_failure(router *r, backend *b);

/* Frees backends dropped by a reload once their last session is gone. */
void backend_gc(router *r);

#endif
