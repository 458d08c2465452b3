/* Seccomp allowlists as data: one file per role (seccomp_allow_ROLE.c), each a
 * NULL-terminated array of syscall names resolved by libseccomp when the filter is built
 * (an unknown name is a startup error, and unit-tested). A role's filter allows
 * seccomp_allow_bootstrap + seccomp_allow_base + its own list; everything else gets the
 * default action (EPERM and a log line, or KILL with SECCOMP_ACTION=kill). */
#ifndef APPLIANCE_SECCOMP_ALLOW_H
#define APPLIANCE_SECCOMP_ALLOW_H

#include <stddef.h>

/* What the child itself does between loading the filter and exec. */
extern const char *const seccomp_allow_bootstrap[];
/* What our static musl daemons need (event loop, signalfd, sockets, files, processes). */
extern const char *const seccomp_allow_base[];
/* Per role. */
extern const char *const seccomp_allow_pg[];
extern const char *const seccomp_allow_etcd[];
extern const char *const seccomp_allow_router[];
extern const char *const seccomp_allow_init[];

#endif
