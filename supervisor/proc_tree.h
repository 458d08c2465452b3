/* The processes below a given pid, from /proc. Used to signal every remaining process at
 * shutdown when appliance-init is not PID 1 (as PID 1, kill(-1) reaches them all; as a
 * sub-reaper, kill(-1) would hit the whole host, so the tree is walked instead). */
#ifndef APPLIANCE_PROC_TREE_H
#define APPLIANCE_PROC_TREE_H

#include <sys/types.h>

/* Sends sig to every descendant of root (not root itself); returns how many were found
 * (signalled or not), or -1 if /proc cannot be read. With sig 0 it only counts. */
int proc_signal_descendants(pid_t root, int sig);

#endif
