/* router role (appliance-router): TCP proxy 5000/5001, stats on 8404, HTTP health checks.
 * splice/tee let it move bytes between sockets through a pipe without copying; bpf lets it
 * hand sessions to the kernel (BPF sockhash); without CAP_BPF the call fails and the
 * router falls back to user space.
 * PROVISIONAL until appliance-router exists: derive under its workload then. */
#include "seccomp_allow.h"

const char *const seccomp_allow_router[] = {
    "splice",
    "tee",
    "bpf", /* data_path.splice sockmap: map, program, attach, map updates (router/sockmap.c) */
    NULL,
};
