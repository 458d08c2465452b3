/* HTTP health checks of each backend's REST API, like the Patroni HAProxy template:
 * OPTIONS <checks.primary_path> for the write side and <checks.replica_path> for reads,
 * every checks.interval_ms; a backend the DCS names leader but whose /primary does not
 * pass yet is polled every checks.fast_interval_ms so writes move the moment it promotes. */
#ifndef APPLIANCE_ROUTER_HEALTH_CHECK_H
#define APPLIANCE_ROUTER_HEALTH_CHECK_H

#include "http_client.h"
#include "router/router.h"

typedef struct health_checker health_checker;

health_checker *health_checker_new(router *r, http_client *http);
void health_checker_free(health_checker *hc);

/* After router_init/router_reload: start checks for new backends, stop them for removed. */
void health_checker_sync(health_checker *hc);

/* Runs both checks of b now (or right after the one in flight). Installed as r->check_now. */
void health_check_now(router *r, backend *b, void *hc);

#endif
