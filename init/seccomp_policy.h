/* The role's seccomp filter and the denial log.
 *
 * Design (why notify): default action SCMP_ACT_NOTIFY. The forked child loads the filter
 * (after dropping privileges, with NO_NEW_PRIVS), hands the listener fd to PID 1 over a
 * socketpair (supervisor/fdpass) and execs. PID 1 watches the listener in its event loop;
 * for each call outside the allowlist it logs "seccomp: denied <syscall> in <comm>[pid]"
 * in the normal log stream and answers -EPERM (SECCOMP_ACTION=log: lets the call proceed
 * instead). SECCOMP_FILTER_FLAG_LOG would put denials in the kernel log, which a container
 * cannot read. SECCOMP_ACTION=kill uses SCMP_ACT_KILL_PROCESS (SIGSYS, exit 159; the
 * supervisor logs "killed by SIGSYS"). If the kernel lacks user notification, the filter
 * falls back to ERRNO(EPERM) and says once that denials are not logged. */
#ifndef APPLIANCE_SECCOMP_POLICY_H
#define APPLIANCE_SECCOMP_POLICY_H

#include "evloop.h"
#include "supervisor/logmux.h"
#include "settings.h"

#include <stddef.h>

struct seccomp_policy;

/* Builds the filter for role's allowlist (bootstrap + base + role). Returns NULL with a
 * message in err (an unknown syscall name is a bug in the list and named). */
struct seccomp_policy *seccomp_policy_new(const struct role *role, enum seccomp_mode mode,
                                          char *err, size_t errlen);
void seccomp_policy_free(struct seccomp_policy *p);
/* Number of distinct syscalls allowed; whether denials reach the log. */
int seccomp_policy_count(const struct seccomp_policy *p);
int seccomp_policy_notifies(const struct seccomp_policy *p);
/* In the child: loads the filter and, in notify mode, sends the listener fd through sock.
 * Returns 0 or an errno value. */
int seccomp_policy_load_child(struct seccomp_policy *p, int sock);

/* In PID 1: watch a listener fd from a child named child[pid]. */
void seccomp_monitor_add(struct seccomp_policy *p, evloop *loop, struct logmux *mux,
                         const char *child, int pid, int fd);

#endif
