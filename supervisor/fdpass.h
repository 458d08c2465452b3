/* Handing one file descriptor from a freshly forked child to the supervisor over a
 * socketpair (SCM_RIGHTS): how a seccomp listener created in the child reaches PID 1. */
#ifndef APPLIANCE_FDPASS_H
#define APPLIANCE_FDPASS_H

/* Returns 0 or -1 with errno. Only sendmsg(2) is called (the child's seccomp filter may
 * already be active, and init's filters always allow sendmsg for this reason). */
int fdpass_send(int sock, int fd);
/* Non-blocking receive; returns the fd, or -1 with errno (EAGAIN: nothing was sent). */
int fdpass_recv(int sock);

#endif
