/* etcd role (appliance-dcs): a raft member with a WAL and snapshots and HTTP on 2379/2380.
 * Everything it needs is in the base list (files with fsync/fdatasync, sockets, epoll).
 * PROVISIONAL until appliance-dcs exists: derive under its workload then. */
#include "seccomp_allow.h"

const char *const seccomp_allow_etcd[] = {
    NULL,
};
