/* Conntrack walks off the event loop, for the kernel NAT path (router/nat_path.c).
 *
 * Every dump or filtered flush makes the kernel walk its whole conntrack hash, which is
 * sized for the host (262,144 buckets here: 10-15 ms per walk even when nearly empty) and
 * shared by every network namespace. Done on the loop, the per-second stats dump would
 * stall 5001's sessions and 8404 for that long, and ending a demoted primary's flows would
 * delay the held clients that the new primary's arrival releases. So one thread with its
 * own netlink socket does them and hands results back through an eventfd. */
#ifndef APPLIANCE_ROUTER_CT_WORKER_H
#define APPLIANCE_ROUTER_CT_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "router/kernel_nat.h"

typedef struct ct_worker ct_worker;

enum { CT_WORKER_ENDED_MAX = 64 };

/* What the thread did since the last hand-over. */
typedef struct ct_worker_result {
    int dumped; /* flows holds a dump taken after every flush listed below */
    kernel_nat_flows flows[256];
    size_t n_ended;
    struct {
        uint8_t slot;
        int count; /* flows ended, -1: failed (err says why) */
        double ms; /* how long the kernel took */
    } ended[CT_WORKER_ENDED_MAX];
    char err[256]; /* the last failure, "" if none */
} ct_worker_result;

typedef void (*ct_worker_cb)(void *arg, const ct_worker_result *res);

/* Opens the thread's conntrack socket and starts it; cb runs on loop's thread. NULL with
 * err on failure. */
ct_worker *ct_worker_start(evloop *loop, ct_worker_cb cb, void *arg, char *err, size_t errsz);

/* Requests, coalesced until the thread takes them: end the flows of slot; dump. */
void ct_worker_end_flows(ct_worker *w, uint8_t slot);
void ct_worker_dump(ct_worker *w);

/* Carries out what was requested, stops and joins the thread. NULL is fine. */
void ct_worker_stop(ct_worker *w);

#endif
