/* Write and read target selection. */
#include "router/select.h"

#include <stdatomic.h>
#include <string.h>

int select_dcs_usable(const router *r, uint64_t now_ms)
{
    if (r->dcs == DCS_OK)
        return 1;
    /* UNKNOWN after having been OK: keep trusting the last view for dcs.grace_ms. The
     * /primary check still vetoes (a demoted node answers 503 at once). */
    if (r->dcs == DCS_UNKNOWN && r->dcs_last_ok_ms &&
        now_ms - r->dcs_last_ok_ms < r->cfg.dcs_grace_ms)
        return 1;
    return 0;
}

backend *select_write_target(const router *r)
{
    if (r->mirror)
        return r->mirror_write; /* decided by the main loop, which sees checks and DCS */
    uint64_t now = r->loop ? evloop_now_ms(r->loop) : 0;
    if (r->dcs != DCS_OFF && select_dcs_usable(r, now)) {
        if (!r->dcs_leader[0])
            return NULL;
        for (size_t i = 0; i < r->n_backends; i++) {
            backend *b = r->backends[i];
            if (strcmp(b->conf.name, r->dcs_leader) == 0)
                return b->primary_chk.up && b->addrlen ? b : NULL;
        }
        return NULL; /* the leader is not one of our backends */
    }
    backend *found = NULL;
    for (size_t i = 0; i < r->n_backends; i++) {
        backend *b = r->backends[i];
        if (!b->primary_chk.up || !b->addrlen)
            continue;
        if (found)
            return NULL;
        found = b;
    }
    return found;
}

uint64_t select_replica_load(const backend *b)
{
    return b->load ? atomic_load_explicit(&b->load->replicas_cur, memory_order_relaxed)
                   : b->sessions[LSN_REPLICAS].count;
}

backend *select_replica(const router *r, size_t *rr, int *as_fallback)
{
    backend *best = NULL;
    size_t n = r->n_backends;
    *as_fallback = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (*rr + k) % n;
        backend *b = r->backends[i];
        if (!b->replica_chk.up || b->conf.noloadbalance || !b->addrlen)
            continue;
        if (!best || select_replica_load(b) < select_replica_load(best))
            best = b;
    }
    if (best) {
        *rr = (*rr + 1) % (n ? n : 1);
        return best;
    }
    if (r->cfg.replicas_fallback_to_primary && r->write_target) {
        *as_fallback = 1;
        return r->write_target;
    }
    return NULL;
}
