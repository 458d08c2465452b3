/* Whether the agent stamps its own log lines with the time (lib/log timestamps).
 *
 * Decision: appliance-init already stamps every line of its children (ISO-8601 UTC, with
 * the container/role prefix), so a second stamp would only add noise; anywhere else (run by
 * hand, by a test harness, by systemd, under another init) the agent's lines would carry no
 * time at all. Detection: the parent process' name (/proc/<ppid>/comm, readable by every
 * user, unlike /proc/<ppid>/exe once the agent has dropped to postgres and init stays root)
 * is "appliance-init" -- the supervisor forks and execs the role's program directly, so the
 * agent is always init's direct child there. LOG_TIMESTAMPS=1|0 (also true/false, on/off)
 * overrides the detection, e.g. for a wrapper script between init and the agent. */
#ifndef AGENT_LOG_STAMP_H
#define AGENT_LOG_STAMP_H

/* Pure decision: env_value is $LOG_TIMESTAMPS or NULL, parent_comm the parent's name or
 * NULL when unknown. Returns 1 to stamp, 0 not to, -1 for an invalid env_value. */
int log_stamp_decide(const char *env_value, const char *parent_comm);

/* Reads the environment and /proc, applies the decision to lib/log. Returns 0, or -1 with
 * a message in err when LOG_TIMESTAMPS is invalid (timestamps are then on). */
int log_stamp_setup(char *err, unsigned errsz);

#endif
