/* The 8404 stats endpoint on lib/http: "/" HTML, "/;csv" (also "/?csv", "/csv") HAProxy
 * CSV, "/;json" (also "/json") JSON, "/metrics" Prometheus, "/health" liveness. */
#ifndef APPLIANCE_ROUTER_STATS_SERVER_H
#define APPLIANCE_ROUTER_STATS_SERVER_H

#include "http.h"
#include "router/router.h"
#include "router/strbuf.h"

typedef struct stats_server stats_server;

/* addr "host:port"; NULL return with err filled on failure. "" disables (returns a valid
 * object that listens nowhere). */
stats_server *stats_server_new(router *r, const char *addr, char *err, size_t errsz);
void stats_server_free(stats_server *s);

/* The request router, exposed for tests: fills status, content type and body. */
int stats_dispatch(const router *r, const char *method, const char *path, const char *query,
                   strbuf *body, const char **content_type);

#endif
