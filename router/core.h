/* Router life cycle: build the state from a validated config, apply a new config on
 * SIGHUP without dropping established sessions, tear down. */
#ifndef APPLIANCE_ROUTER_CORE_H
#define APPLIANCE_ROUTER_CORE_H

#include <stddef.h>

#include "router/router.h"

int router_init(router *r, evloop *loop, const router_config *cfg, char *err, size_t errsz);

/* Applies cfg (already validated). Backends are matched by name: kept ones keep their
 * sessions, health and counters (a changed address applies to new sessions); dropped ones
 * stop taking sessions and their sessions are closed; new ones start unchecked.
 * Listeners move only if their address changed. On a listener error the old listener
 * stays and -1 is returned with the reason (everything else is applied). */
int router_reload(router *r, const router_config *cfg, char *err, size_t errsz);

void router_destroy(router *r);

/* A router for an extra event loop: no backends and no listeners until the main loop's
 * routing table is applied (router/loops.c). 0, or -1 (out of memory). */
int router_init_mirror(router *r, evloop *loop, const router_config *cfg);

/* Makes live the backend list (in that order); any other backend is marked removed, forced
 * down and kept until its last session ends (backend_gc). */
void router_set_backends(router *r, backend *const *live, size_t nlive);

/* Backend by name among the live ones, or NULL. */
backend *router_find_backend(const router *r, const char *name);

#endif
