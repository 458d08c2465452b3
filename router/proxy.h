/* The TCP data path: listeners on 5000/5001, client sessions spliced to a backend,
 * hold queue while there is no target, session kill when a target is withdrawn. */
#ifndef APPLIANCE_ROUTER_PROXY_H
#define APPLIANCE_ROUTER_PROXY_H

#include <stddef.h>

#include "router/router.h"

/* Binds lsn (LSN_PRIMARY/LSN_REPLICAS) on addr ("host:port"; "" disables). Replaces a
 * listener bound to another address; established sessions are not touched. */
int proxy_listen(router *r, int lsn, const char *addr, char *err, size_t errsz);

/* Starts the idle sweep. */
int proxy_start(router *r);

/* Call after any input of the selection changed (a check flipped, the DCS leader moved,
 * backends were reloaded). Recomputes the write target; closes sessions whose target was
 * withdrawn (HAProxy's on-marked-down shutdown-sessions); dispatches held clients. */
void proxy_targets_changed(router *r);

/* Closes every session of backend b on listener lsn. Returns how many. */
size_t proxy_kill_sessions(router *r, backend *b, int lsn);

/* Closes listeners, held clients and sessions. */
void proxy_shutdown(router *r);

/* Counters for /metrics and tests. */
size_t proxy_buffers_in_use(const router *r);

#endif
