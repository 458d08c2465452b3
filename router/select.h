/* Target selection, pure over the router's state: which backend takes writes (5000) and
 * which takes the next read session (5001). */
#ifndef APPLIANCE_ROUTER_SELECT_H
#define APPLIANCE_ROUTER_SELECT_H

#include "router/router.h"

/* The write target: with a usable DCS view, the backend named by the leader key, and only
 * while its /primary check is up (both must agree). Without a DCS view (none configured,
 * or unreachable beyond dcs.grace_ms), the single backend whose /primary check is up; two
 * such backends is a split view and yields none. NULL: no write target now. */
backend *select_write_target(const router *r);

/* Least-connections over backends whose /replica check is up and that are not tagged
 * noloadbalance; ties go to the first after *rr (round-robin cursor, advanced). When none
 * qualifies and fallback is on, the write target. *as_fallback tells which it was. */
backend *select_replica(const router *r, size_t *rr, int *as_fallback);

/* Sessions on 5001 to b: across every loop when loops share counts, else this loop's. */
uint64_t select_replica_load(const backend *b);

/* Whether the DCS view is usable for the write decision at now_ms. */
int select_dcs_usable(const router *r, uint64_t now_ms);

#endif
