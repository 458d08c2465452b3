/* The human page on 8404: one table per listener with each backend's role, state,
 * sessions, bytes, last check and last change. */
#include <inttypes.h>

#include "router/stats.h"

static void ago(strbuf *o, uint64_t now, uint64_t then)
{
    uint64_t ms = now > then ? now - then : 0;
    if (ms < 10000)
        strbuf_printf(o, "%" PRIu64 " ms ago", ms);
    else
        strbuf_printf(o, "%" PRIu64 " s ago", ms / 1000);
}

void stats_render_html(const router *r, uint64_t now, strbuf *o)
{
    static const char *const dcs_names[] = {"off", "unknown", "ok"};
    strbuf_puts(o, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                   "<title>appliance-router</title><style>"
                   "body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}"
                   "td,th{border:1px solid #999;padding:2px 6px}.UP{background:#cfc}"
                   ".DOWN{background:#fcc}</style></head><body>\n");
    strbuf_puts(o, "<h1>appliance-router</h1>\n<p>write target: <b>");
    strbuf_html(o, r->write_target ? r->write_target->conf.name : "(none)");
    strbuf_puts(o, "</b>; DCS ");
    strbuf_puts(o, dcs_names[r->dcs]);
    strbuf_puts(o, ", leader key: ");
    strbuf_html(o, r->dcs_leader[0] ? r->dcs_leader : "(none)");
    strbuf_printf(o, ", revision %" PRIu64 "; sessions %" PRIu64 "; up %" PRIu64 " s</p>\n",
                  r->dcs_revision, r->sessions_total_cur, (now - r->started_ms) / 1000);
    for (int l = 0; l < LSN_COUNT; l++) {
        const proxy_listener *pl = &r->lsn[l];
        strbuf_printf(o, "<h2>%s</h2>\n<p>", stats_proxy_name(l));
        strbuf_html(o, pl->addr[0] ? pl->addr : "(disabled)");
        strbuf_printf(o,
                      ": %" PRIu64 " current, %" PRIu64 " total, %" PRIu64 " held now, %" PRIu64
                      " refused, %" PRIu64 " B in, %" PRIu64 " B out</p>\n",
                      pl->fe.scur, pl->fe.stot, pl->fe.qcur, pl->fe.denied, pl->fe.bin,
                      pl->fe.bout);
        strbuf_puts(o, "<table><tr><th>backend</th><th>address</th><th>role</th><th>state</th>"
                       "<th>current</th><th>total</th><th>bytes in</th><th>bytes out</th>"
                       "<th>last check</th><th>last change</th></tr>\n");
        for (size_t i = 0; i < r->n_backends; i++) {
            const backend *b = r->backends[i];
            const server_stats *st = &b->st[l];
            const check_state *c = l == LSN_PRIMARY ? &b->primary_chk : &b->replica_chk;
            const char *state = stats_server_up(r, l, b) ? "UP" : "DOWN";
            strbuf_printf(o, "<tr class=\"%s\"><td>", state);
            strbuf_html(o, b->conf.name);
            strbuf_puts(o, "</td><td>");
            strbuf_html(o, b->conf.host);
            strbuf_printf(o, ":%u</td><td>%s</td><td>%s</td>", (unsigned)b->conf.port,
                          stats_role(r, b), state);
            strbuf_printf(o,
                          "<td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
                          "</td><td>",
                          st->scur, st->stot, st->bin, st->bout);
            if (c->checked) {
                strbuf_printf(o, "%s %d, %u ms, ", check_state_status_name(c), c->last_code,
                              c->last_duration_ms);
                ago(o, now, c->last_check_ms);
            } else {
                strbuf_puts(o, "not yet");
            }
            strbuf_puts(o, "</td><td>");
            ago(o, now, c->last_change_ms);
            strbuf_puts(o, "</td></tr>\n");
        }
        strbuf_puts(o, "</table>\n");
    }
    strbuf_puts(o, "<p><a href=\"/;csv\">CSV</a> · <a href=\"/;json\">JSON</a> · "
                   "<a href=\"/metrics\">metrics</a></p></body></html>\n");
}
