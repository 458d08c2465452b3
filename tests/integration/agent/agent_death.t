#!/usr/bin/env bash
# test-timeout: 180
# The agent dies alone (kill -9 of the agent process, as a crash or the OOM killer would):
# the postgres it ran must not go on unmanaged -- a primary nobody fences would take writes
# beside the member promoted once the lease expires, and a restarted agent could not even
# start postgres over the running one. A replica's postgres ends with its agent and is back
# when the agent is restarted; a primary's ends too, another member takes over, the
# restarted former leader rejoins as a replica, and there is never a second primary.
. "$(dirname "$0")/lib.sh"
require_env
cluster_up 3
L=$(node_of "$LEADER"); R=$(( (L + 1) % 3 ))
pm_gone() { ! kill -0 "$1" 2>/dev/null || ps -o stat= -p "$1" | grep -q Z; }

pm=$(node_pm_pid "$R")
kill -KILL "$(node_agent_pid "$R")"
check "replica pg-$R: its postmaster (pid $pm) ends with its agent" wait_until 10 pm_gone "$pm"
node_start "$R"
check "replica pg-$R: the restarted agent has it streaming again" wait_until 60 streaming "$R"

pm=$(node_pm_pid "$L")
kill -KILL "$(node_agent_pid "$L")"
check "leader pg-$L: its postmaster (pid $pm) ends with its agent" wait_until 10 pm_gone "$pm"
new_leader() { has_leader && ! leader_is "pg-$L"; }
check "another member takes the leader key" wait_until 30 new_leader
N=$(node_of "$(dcs_leader)")
check "pg-$N runs as primary" wait_until 30 is_primary "$N"
node_start "$L"
check "the former leader pg-$L rejoins as a replica" wait_until 90 streaming "$L"
one_primary() { local n p=0; for n in 0 1 2; do is_primary "$n" && p=$((p + 1)); done; [ "$p" = 1 ]; }
check "exactly one primary" one_primary
echo "1..$_tap_n"
