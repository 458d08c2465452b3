/* The supervisor: starts child specs in dependency order, restarts them with backoff,
 * multiplexes their output (logmux), forwards signals, reaps everything (including
 * re-parented orphans) and runs the one shutdown algorithm:
 *
 *   1. STOPPING: each running service gets its stop signal once every service that
 *      depends on it has ended (dependents first); wait up to stop_timeout, returning as
 *      soon as all services are gone;
 *   2. TERMINATING: SIGTERM to every remaining process (orphans, setsid escapees, services
 *      that ignored their stop signal); wait up to kill_grace, returning as soon as no
 *      child is left;
 *   3. KILLING: SIGKILL to every remaining process, repeated until waitpid says ECHILD;
 *   4. DONE: pipes drained, the caller exits with supervisor_exit_status().
 * When every service has ended on its own (no restart left), the same algorithm runs from
 * step 2. The supervisor never finishes while a child exists. */
#ifndef APPLIANCE_SUPERVISOR_H
#define APPLIANCE_SUPERVISOR_H

#include "backoff.h"
#include "evloop.h"
#include "logmux.h"
#include "spec.h"

struct sv_hooks {
    /* In the child after fork, stdio already redirected, before exec. sock is a socket
     * the child may hand one fd back through (fdpass_send), or -1 when pass_fd is 0.
     * Returns 0, or an errno value (the child then exits 126 and the error is logged). */
    int (*child_setup)(void *arg, int sock);
    /* In the parent: the fd the child handed back (seccomp listener), with the child's
     * name and pid. The callee owns fd. */
    void (*child_fd)(void *arg, const char *child, int pid, int fd);
    int pass_fd;
    void *arg;
};

struct sv_config {
    struct svc_spec *specs; /* borrowed; must outlive the supervisor */
    size_t nspecs;
    uint64_t stop_timeout_ms;
    uint64_t kill_grace_ms;
    struct backoff_policy backoff; /* healthy_ms is taken from each spec */
    struct logmux *mux;
    struct sv_hooks hooks;
    int pid1; /* running as PID 1: kill(-1) reaches every other process */
};

struct supervisor;

struct supervisor *supervisor_new(evloop *loop, const struct sv_config *cfg);
void supervisor_free(struct supervisor *sv);

/* Starts every service whose dependencies are met. */
void supervisor_start(struct supervisor *sv);
/* SIGCHLD arrived: reap every exited child. */
void supervisor_reap(struct supervisor *sv);
/* A signal init received: SIGTERM/SIGINT request the stop (SIGTERM becomes each service's
 * stop signal, SIGINT is passed as is); others are forwarded to every running service. */
void supervisor_signal(struct supervisor *sv, int sig);
int supervisor_finished(const struct supervisor *sv);
/* 0 when a stop was requested and the services ended because of it; otherwise the exit
 * code (or 128+signal) of the first service that ended for good with a non-zero status. */
int supervisor_exit_status(const struct supervisor *sv);

#endif
