/* The router's view of the DCS leader key /<namespace>/<scope>/leader through the etcd v3
 * JSON gateway (real etcd or appliance-dcs): a range read for the value and revision, then
 * a watch from revision + 1; on any failure a new range read on the next endpoint with
 * backoff. A periodic range read (dcs.resync_ms) catches a stream that died silently. */
#ifndef APPLIANCE_ROUTER_DCS_WATCH_H
#define APPLIANCE_ROUTER_DCS_WATCH_H

#include "http_client.h"
#include "router/router.h"

typedef struct dcs_watch dcs_watch;

/* Starts at once when r->cfg has endpoints; idle otherwise. */
dcs_watch *dcs_watch_new(router *r, http_client *http);
void dcs_watch_free(dcs_watch *w);
/* After a reload: restarts if endpoints, scope or namespace changed. */
void dcs_watch_reconfigure(dcs_watch *w);

/* Applies a leader value ("" = key absent) to the router: logs, asks for checks of the old
 * and new leader, reselects targets. Exposed for tests. */
void dcs_apply_leader(router *r, const char *leader, size_t len, int64_t revision);

#endif
