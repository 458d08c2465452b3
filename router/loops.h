/* One event loop per core: the main loop (checks, DCS, 8404, signals, and its own share of
 * the proxying) plus N-1 threads that only proxy, each with its own epoll set, buffer pool
 * and SO_REUSEPORT listeners on 5000/5001, so the kernel spreads new clients over them.
 *
 * The main loop stays the only one that decides: after every selection change it publishes
 * an immutable routing table (config, backends with addresses and check verdicts, the write
 * target) to each loop by swapping one atomic pointer and waking it through an eventfd; the
 * loop applies it to its mirror router, which closes its sessions to a withdrawn target and
 * dispatches its held clients exactly as the main loop does. Counters flow back as
 * snapshots (taken every 100 ms under a mutex) that 8404 adds up; 5001's least-connections
 * counts are shared atomics, so balance holds across loops. */
#ifndef APPLIANCE_ROUTER_LOOPS_H
#define APPLIANCE_ROUTER_LOOPS_H

#include <stddef.h>

#include "router/router.h"

typedef struct router_loops router_loops;

/* Number of proxying loops a config asks for (data_path.loops; 0: online CPUs), 1..64. */
unsigned router_loops_wanted(const router_config *cfg);

/* Starts `extra` proxying threads besides main's loop (main must already be initialised with
 * listen.reuseport on). NULL with err on failure (nothing left running). */
router_loops *router_loops_start(router *main_r, unsigned extra, char *err, size_t errsz);

/* Stops and joins the threads; their sessions are closed. NULL is fine. */
void router_loops_stop(router_loops *L);

#endif
