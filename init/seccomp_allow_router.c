/* router role (appliance-router): TCP proxy 5000/5001, stats on 8404, HTTP health checks.
 * splice/tee let it move bytes between sockets through a pipe without copying.
 * PROVISIONAL until appliance-router exists: derive under its workload then. */
#include "seccomp_allow.h"

const char *const seccomp_allow_router[] = {
    "splice",
    "tee",
    NULL,
};
