/* The shared reading of router state that every stats format uses. */
#include "router/stats.h"

const char *stats_proxy_name(int lsn)
{
    return lsn == LSN_PRIMARY ? "primary" : "replicas";
}

int stats_server_up(const router *r, int lsn, const backend *b)
{
    if (b->removed)
        return 0;
    if (lsn == LSN_PRIMARY)
        return r->write_target == b;
    return b->replica_chk.up && !b->conf.noloadbalance;
}

const char *stats_role(const router *r, const backend *b)
{
    if (r->write_target == b)
        return "primary";
    if (b->replica_chk.up)
        return "replica";
    return "none";
}
