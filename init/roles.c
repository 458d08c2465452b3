/* Role table (see roles.h). Decisions recorded here:
 * - Users: every role drops to "postgres" for now. pg and init must (PostgreSQL refuses to
 *   run as root and owns its data dir); etcd and router use APPLIANCE_USER too, whose
 *   default is "postgres" until the image adds dedicated users.
 * - Stop: pg's main process is the agent and gets SIGTERM; the agent decides how postgres
 *   stops (fast/smart), hence its 60 s timeout. Others get SIGTERM and 10 s.
 * - Capabilities: only the router keeps any: CAP_NET_ADMIN (nf_tables NAT rules for 5000,
 *   conntrack) and CAP_BPF (sockmap), and only when the container grants them (compose's
 *   cap_add); without them it proxies in user space.
 * - Restart: the long-running roles are restarted on failure with backoff; the one-shot
 *   provisioning role is not (its exit status is the container's). */
#include "roles.h"

#include "seccomp_allow.h"

#include <linux/capability.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const char *const no_args[] = {NULL};
static const char *const provision_args[] = {"provision", NULL};

static const struct role roles[] = {
    {"etcd", "appliance-dcs", no_args, "postgres", "/etcd-data", 10000, SIGTERM, RESTART_ON_FAILURE,
     seccomp_allow_etcd, 0},
    {"pg", "appliance-agent", no_args, "postgres", "/home/postgres/pgdata", 60000, SIGTERM,
     RESTART_ON_FAILURE, seccomp_allow_pg, 0},
    {"router", "appliance-router", no_args, "postgres", NULL, 10000, SIGTERM, RESTART_ON_FAILURE,
     seccomp_allow_router, (1ULL << CAP_NET_ADMIN) | (1ULL << CAP_BPF)},
    {"init", "appliancectl", provision_args, "postgres", NULL, 10000, SIGTERM, RESTART_NEVER,
     seccomp_allow_init, 0},
};

const struct role *role_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof(roles) / sizeof(roles[0]); i++)
        if (!strcmp(roles[i].name, name))
            return &roles[i];
    return NULL;
}

const char *role_names(void)
{
    return "etcd, pg, router, init";
}

int role_exe_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0 || (size_t)n >= len - 1)
        return -1;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    if (slash == buf)
        slash[1] = '\0';
    else
        *slash = '\0';
    return 0;
}
