/* Child processes on the event loop: fork/exec (optionally as another user), output passed
 * through to our log line by line (and kept, bounded, for callers that parse it, like
 * pg_controldata), exit noticed through a pidfd in epoll: the loop never blocks in wait. */
#ifndef AGENT_PROC_H
#define AGENT_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "evloop.h"

typedef struct proc proc;
/* status as from waitpid (use WIFEXITED...). output: captured text (bounded), NUL-ended.
 * The proc is freed after the callback. */
typedef void (*proc_exit_cb)(proc *p, int status, const char *output, void *arg);

typedef struct proc_opts {
    const char *log_prefix; /* e.g. "postgres" */
    uid_t uid;              /* run as this user when the agent is root (0 = no change) */
    gid_t gid;
    const char *stdin_path; /* NULL: /dev/null */
    const char *cwd;        /* NULL: unchanged */
    int quiet;              /* capture output without logging it */
    char *const *extra_env; /* NULL-terminated "K=V" added to a minimal environment */
} proc_opts;

proc *proc_spawn(evloop *loop, char *const argv[], const proc_opts *o, proc_exit_cb cb, void *arg);
pid_t proc_pid(const proc *p);
int proc_signal(proc *p, int sig);
/* Forget the callback (the child keeps running and is reaped silently). */
void proc_detach(proc *p);

#endif
