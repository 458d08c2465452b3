/* Syscalls the forked child makes after its filter is loaded and before (or instead of)
 * exec: hand the seccomp listener to PID 1 (sendmsg), close it, exec, or report an exec
 * failure and exit. Without them the child would wait on a listener nobody holds yet. */
#include "seccomp_allow.h"

const char *const seccomp_allow_bootstrap[] = {
    "sendmsg", "close", "execve", "write", "exit_group", "exit", NULL,
};
