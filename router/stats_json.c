/* JSON stats: one object with the routing decision, the DCS view, and per listener the
 * frontend counters and each backend's state and counters. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "router/stats.h"
#include "router/nat_path.h"

static json_t *check_json(const check_state *c, uint64_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "up", json_boolean(c->up));
    json_object_set_new(o, "status", json_string(check_state_status_name(c)));
    json_object_set_new(o, "code", json_integer(c->last_code));
    json_object_set_new(o, "duration_ms", json_integer(c->last_duration_ms));
    json_object_set_new(o, "last_check_ms_ago",
                        c->checked ? json_integer((json_int_t)(now - c->last_check_ms))
                                   : json_null());
    json_object_set_new(o, "last_change_ms_ago",
                        json_integer((json_int_t)(now - c->last_change_ms)));
    json_object_set_new(o, "failures", json_integer((json_int_t)c->chkfail));
    json_object_set_new(o, "downs", json_integer((json_int_t)c->chkdown));
    return o;
}

void stats_render_json(const router *r, uint64_t now, strbuf *out)
{
    json_t *root = json_object();
    static const char *const dcs_names[] = {"off", "unknown", "ok"};
    json_t *dcs = json_object();
    json_object_set_new(dcs, "state", json_string(dcs_names[r->dcs]));
    json_object_set_new(dcs, "leader", r->dcs_leader[0] ? json_string(r->dcs_leader) : json_null());
    json_object_set_new(dcs, "revision", json_integer((json_int_t)r->dcs_revision));
    json_object_set_new(dcs, "endpoint", json_string(r->dcs_endpoint));
    json_object_set_new(dcs, "leader_changes", json_integer((json_int_t)r->dcs_leader_changes));
    json_object_set_new(root, "dcs", dcs);
    json_object_set_new(root, "write_target",
                        r->write_target ? json_string(r->write_target->conf.name) : json_null());
    json_object_set_new(root, "write_target_changes", json_integer((json_int_t)r->write_changes));
    /* 5000 by kernel NAT: "off" (the proxy carries it), "installed", "idle" (no target:
     * the proxy holds or refuses), "failed" (the kernel refused the rule). */
    json_t *nat = json_object();
    json_object_set_new(nat, "state", json_string(nat_path_state(r)));
    json_object_set_new(nat, "sessions_total",
                        json_integer((json_int_t)nat_path_sessions_total(r)));
    json_object_set_new(root, "kernel_nat", nat);
    json_object_set_new(root, "uptime_ms", json_integer((json_int_t)(now - r->started_ms)));
    json_object_set_new(root, "sessions", json_integer((json_int_t)r->sessions_total_cur));
    /* Sessions accepted by each proxying loop (SO_REUSEPORT spreads them). */
    json_t *loops = json_array();
    for (unsigned i = 0; i < r->n_loops && i < ROUTER_MAX_LOOPS; i++)
        json_array_append_new(loops, json_integer((json_int_t)r->loop_stot[i]));
    if (!r->n_loops) {
        uint64_t one_loop = r->lsn[LSN_PRIMARY].fe.stot + r->lsn[LSN_REPLICAS].fe.stot;
        json_array_append_new(loops, json_integer((json_int_t)one_loop));
    }
    json_object_set_new(root, "loop_sessions_total", loops);
    json_t *backends = json_array();
    for (size_t i = 0; i < r->n_backends; i++) {
        const backend *b = r->backends[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(b->conf.name));
        json_object_set_new(o, "host", json_string(b->conf.host));
        json_object_set_new(o, "port", json_integer(b->conf.port));
        json_object_set_new(o, "check_port", json_integer(b->conf.check_port));
        json_object_set_new(o, "role", json_string(stats_role(r, b)));
        json_object_set_new(o, "noloadbalance", json_boolean(b->conf.noloadbalance));
        json_object_set_new(o, "primary_check", check_json(&b->primary_chk, now));
        json_object_set_new(o, "replica_check", check_json(&b->replica_chk, now));
        for (int l = 0; l < LSN_COUNT; l++) {
            const server_stats *st = &b->st[l];
            json_t *s = json_object();
            json_object_set_new(s, "up", json_boolean(stats_server_up(r, l, b)));
            json_object_set_new(s, "current", json_integer((json_int_t)st->scur));
            json_object_set_new(s, "max", json_integer((json_int_t)st->smax));
            json_object_set_new(s, "total", json_integer((json_int_t)st->stot));
            json_object_set_new(s, "bytes_in", json_integer((json_int_t)st->bin));
            json_object_set_new(s, "bytes_out", json_integer((json_int_t)st->bout));
            json_object_set_new(s, "connect_errors", json_integer((json_int_t)st->econ));
            json_object_set_new(s, "killed", json_integer((json_int_t)st->killed));
            json_object_set_new(o, stats_proxy_name(l), s);
        }
        json_array_append_new(backends, o);
    }
    json_object_set_new(root, "backends", backends);
    json_t *lsns = json_object();
    for (int l = 0; l < LSN_COUNT; l++) {
        const proxy_listener *pl = &r->lsn[l];
        json_t *o = json_object();
        json_object_set_new(o, "address", json_string(pl->addr));
        json_object_set_new(o, "open", json_boolean(pl->fd >= 0));
        json_object_set_new(o, "current", json_integer((json_int_t)pl->fe.scur));
        json_object_set_new(o, "total", json_integer((json_int_t)pl->fe.stot));
        json_object_set_new(o, "held", json_integer((json_int_t)pl->fe.qcur));
        json_object_set_new(o, "held_max", json_integer((json_int_t)pl->fe.qmax));
        json_object_set_new(o, "held_total", json_integer((json_int_t)pl->fe.held_total));
        json_object_set_new(o, "refused", json_integer((json_int_t)pl->fe.denied));
        json_object_set_new(o, "bytes_in", json_integer((json_int_t)pl->fe.bin));
        json_object_set_new(o, "bytes_out", json_integer((json_int_t)pl->fe.bout));
        json_object_set_new(lsns, stats_proxy_name(l), o);
    }
    json_object_set_new(root, "listeners", lsns);
    char *txt = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!txt) {
        out->overflow = 1;
        return;
    }
    strbuf_puts(out, txt);
    strbuf_append(out, "\n", 1);
    free(txt);
}
