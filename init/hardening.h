/* Per-role hardening of the children: the user to drop to, the data dir, and the
 * seccomp policy, all resolved and checked in PID 1 before anything starts, then applied
 * in each forked child before exec (NO_NEW_PRIVS, groups/gid/uid, seccomp). */
#ifndef APPLIANCE_HARDENING_H
#define APPLIANCE_HARDENING_H

#include "seccomp_policy.h"
#include "settings.h"

#include <stddef.h>
#include <sys/types.h>

#define HARDENING_MAX_GROUPS 64

struct hardening {
    int drop; /* root and a user: drop privileges in the child */
    uid_t uid;
    gid_t gid;
    gid_t groups[HARDENING_MAX_GROUPS];
    int ngroups;
    char user[33];
    char home[256];
    struct seccomp_policy *seccomp; /* NULL: no role, no filter */
    uint64_t keep_caps;             /* ambient after the drop: the role's, if we have them */
};

/* Resolves the user, prepares the data dir (created if missing, owner = the user, mode
 * 0700, never deletes anything), builds the seccomp policy. notes receives one line to log
 * (e.g. "not root: no privilege drop"), or "". Returns 0, or -1 with err set. */
int hardening_prepare(struct hardening *h, const struct init_settings *s, char *notes,
                      size_t noteslen, char *err, size_t errlen);
/* The supervisor's child_setup hook (arg: struct hardening *). */
int hardening_child_setup(void *arg, int sock);
void hardening_free(struct hardening *h);

#endif
