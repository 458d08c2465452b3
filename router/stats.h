/* Stats rendering for the 8404 page: pure functions from the router's state to text.
 * CSV follows HAProxy 2.6's column order exactly (so haproxy_exporter and existing
 * dashboards read it); JSON and Prometheus carry the same figures under our own names. */
#ifndef APPLIANCE_ROUTER_STATS_H
#define APPLIANCE_ROUTER_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "router/router.h"
#include "router/strbuf.h"

/* HAProxy 2.6 "show stat" columns, in order. */
extern const char *const stats_csv_fields[];
extern const size_t stats_csv_nfields;

/* Proxy names as in the Patroni HAProxy template: "primary", "replicas". */
const char *stats_proxy_name(int lsn);

/* Whether backend b currently takes new sessions on listener lsn (the server's UP/DOWN). */
int stats_server_up(const router *r, int lsn, const backend *b);
/* "primary" (the write target), "replica" (passes the replica check), or "none". */
const char *stats_role(const router *r, const backend *b);

void stats_render_csv(const router *r, uint64_t now_ms, strbuf *out);
void stats_render_json(const router *r, uint64_t now_ms, strbuf *out);
void stats_render_prometheus(const router *r, uint64_t now_ms, strbuf *out);
void stats_render_html(const router *r, uint64_t now_ms, strbuf *out);

#endif
