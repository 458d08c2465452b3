/* Prometheus text exposition (version 0.0.4) of the router's figures. Label values are
 * backend names (validated to [A-Za-z0-9._:-] by the config) and fixed words, so they
 * need no escaping. */
#include <inttypes.h>

#include "router/stats.h"

static void help(strbuf *o, const char *name, const char *type, const char *text)
{
    strbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

void stats_render_prometheus(const router *r, uint64_t now, strbuf *o)
{
    help(o, "router_up", "gauge", "Always 1 while the router answers.");
    strbuf_puts(o, "router_up 1\n");
    help(o, "router_uptime_seconds", "gauge", "Seconds since the router started.");
    strbuf_printf(o, "router_uptime_seconds %" PRIu64 "\n", (now - r->started_ms) / 1000);
    help(o, "router_dcs_state", "gauge", "DCS view: 0 off, 1 unknown, 2 ok.");
    strbuf_printf(o, "router_dcs_state %d\n", (int)r->dcs);
    help(o, "router_dcs_leader_changes_total", "counter", "Leader key changes seen.");
    strbuf_printf(o, "router_dcs_leader_changes_total %" PRIu64 "\n", r->dcs_leader_changes);
    help(o, "router_write_target_changes_total", "counter", "Write target changes.");
    strbuf_printf(o, "router_write_target_changes_total %" PRIu64 "\n", r->write_changes);
    help(o, "router_buffers_in_use", "gauge", "Transfer buffers and pipes lent to sessions.");
    strbuf_printf(o, "router_buffers_in_use %zu\n", r->pool.n_used_bufs + r->pool.n_used_pipes);

    static const struct {
        const char *name, *type, *help;
    } fe_metrics[] = {
        {"router_frontend_current_sessions", "gauge", "Client sessions open now."},
        {"router_frontend_sessions_total", "counter", "Client sessions accepted."},
        {"router_frontend_held_sessions", "gauge", "Clients waiting for a target."},
        {"router_frontend_held_sessions_total", "counter", "Clients that had to wait."},
        {"router_frontend_refused_total", "counter", "Clients refused (limit, queue, timeout)."},
        {"router_frontend_bytes_in_total", "counter", "Bytes from clients."},
        {"router_frontend_bytes_out_total", "counter", "Bytes to clients."},
    };
    for (size_t m = 0; m < sizeof(fe_metrics) / sizeof(fe_metrics[0]); m++) {
        help(o, fe_metrics[m].name, fe_metrics[m].type, fe_metrics[m].help);
        for (int l = 0; l < LSN_COUNT; l++) {
            const frontend_stats *fe = &r->lsn[l].fe;
            const uint64_t v[] = {fe->scur,   fe->stot, fe->qcur, fe->held_total,
                                  fe->denied, fe->bin,  fe->bout};
            strbuf_printf(o, "%s{frontend=\"%s\"} %" PRIu64 "\n", fe_metrics[m].name,
                          stats_proxy_name(l), v[m]);
        }
    }

    static const struct {
        const char *name, *type, *help;
    } be_metrics[] = {
        {"router_server_up", "gauge", "1 when the server takes new sessions on this listener."},
        {"router_server_current_sessions", "gauge", "Sessions open now."},
        {"router_server_max_sessions", "gauge", "Most sessions open at once."},
        {"router_server_sessions_total", "counter", "Sessions sent to the server."},
        {"router_server_bytes_in_total", "counter", "Bytes from clients to the server."},
        {"router_server_bytes_out_total", "counter", "Bytes from the server to clients."},
        {"router_server_connection_errors_total", "counter", "Failed connects."},
        {"router_server_killed_sessions_total", "counter",
         "Sessions closed because the target was withdrawn."},
    };
    for (size_t m = 0; m < sizeof(be_metrics) / sizeof(be_metrics[0]); m++) {
        help(o, be_metrics[m].name, be_metrics[m].type, be_metrics[m].help);
        for (int l = 0; l < LSN_COUNT; l++) {
            for (size_t i = 0; i < r->n_backends; i++) {
                const backend *b = r->backends[i];
                const server_stats *st = &b->st[l];
                const uint64_t v[] = {(uint64_t)stats_server_up(r, l, b),
                                      st->scur,
                                      st->smax,
                                      st->stot,
                                      st->bin,
                                      st->bout,
                                      st->econ,
                                      st->killed};
                strbuf_printf(o, "%s{frontend=\"%s\",server=\"%s\"} %" PRIu64 "\n",
                              be_metrics[m].name, stats_proxy_name(l), b->conf.name, v[m]);
            }
        }
    }

    help(o, "router_check_up", "gauge", "Health check verdict per backend and check.");
    help(o, "router_check_duration_seconds", "gauge", "Duration of the last check.");
    help(o, "router_check_failures_total", "counter", "Failed checks.");
    for (size_t i = 0; i < r->n_backends; i++) {
        const backend *b = r->backends[i];
        for (int k = 0; k < 2; k++) {
            const check_state *c = k == 0 ? &b->primary_chk : &b->replica_chk;
            const char *kind = k == 0 ? "primary" : "replica";
            strbuf_printf(o, "router_check_up{server=\"%s\",check=\"%s\"} %d\n", b->conf.name, kind,
                          c->up);
            strbuf_printf(o, "router_check_duration_seconds{server=\"%s\",check=\"%s\"} %.3f\n",
                          b->conf.name, kind, c->last_duration_ms / 1000.0);
            strbuf_printf(o,
                          "router_check_failures_total{server=\"%s\",check=\"%s\"} %" PRIu64 "\n",
                          b->conf.name, kind, c->chkfail);
        }
    }
    help(o, "router_server_is_primary", "gauge", "1 for the current write target.");
    for (size_t i = 0; i < r->n_backends; i++)
        strbuf_printf(o, "router_server_is_primary{server=\"%s\"} %d\n", r->backends[i]->conf.name,
                      r->write_target == r->backends[i]);
}
