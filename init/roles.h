/* The role table, in one place: what each ROLE runs and its per-role defaults. */
#ifndef APPLIANCE_ROLES_H
#define APPLIANCE_ROLES_H

#include "supervisor/spec.h"

#include <stdint.h>

struct role {
    const char *name;
    const char *program;          /* looked up beside appliance-init's own executable */
    const char *const *args;      /* extra arguments, NULL-terminated */
    const char *user;             /* default user to drop to (APPLIANCE_USER overrides) */
    const char *data_dir;         /* default data dir (DATA_DIR overrides); NULL: none */
    uint64_t stop_timeout_ms;     /* STOP_TIMEOUT default */
    int stop_signal;              /* sent to the main process on stop */
    enum restart_policy restart;  /* RESTART default for the main process */
    const char *const *allowlist; /* the role's own seccomp list (plus base, bootstrap) */
    /* Capabilities (bit n = CAP n) the role's program keeps after the drop to the user, as
     * ambient capabilities; only those the container grants are kept (see hardening.c). */
    uint64_t ambient_caps;
};

/* NULL if name is not a role. */
const struct role *role_find(const char *name);
/* "etcd, pg, router, init": for error messages. */
const char *role_names(void);
/* The directory holding appliance-init's executable (/proc/self/exe), so programs are
 * found beside it both in build/bin and in the image's /usr/local/bin. Returns 0 or -1. */
int role_exe_dir(char *buf, size_t len);

#endif
