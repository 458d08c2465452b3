#!/usr/bin/env bash
# test-timeout: 300
# The simulator must be able to fail: each line below plants one classic Raft or
# durability bug in a copy of the sources (build/sim/mutants/), and the simulator has to
# report a violation within 20,000 seeds. A mutant that survives means the invariant
# checks went blind. A pattern that no longer exists in the source fails too (update it).
set -uo pipefail
cd "$(dirname "$0")/../.."
work=build/sim/mutants
n=0
mutant() { # file 'old' 'new' description
  n=$((n + 1))
  rm -rf "$work" && mkdir -p "$work/dcs" "$work/tests/sim"
  cp dcs/raft*.[ch] dcs/wal*.[ch] dcs/snap.[ch] dcs/crc32c.[ch] dcs/le_bytes.h "$work/dcs/"
  cp tests/sim/*.[ch] "$work/tests/sim/"
  if ! python3 - "$work/$1" "$2" "$3" <<'PY'
import sys
p, old, new = sys.argv[1:4]
s = open(p).read()
if old not in s:
    sys.exit(1)
open(p, "w").write(s.replace(old, new, 1))
PY
  then
    echo "not ok $n - $4: pattern not found in $1"
    return
  fi
  if ! (cd "$work" && gcc -std=c11 -D_GNU_SOURCE -I. -O1 -w -o sim tests/sim/sim.c \
        tests/sim/sim_disk.c dcs/raft.c dcs/raft_conf.c dcs/raft_msg.c dcs/wal.c \
        dcs/wal_fs_posix.c dcs/snap.c dcs/crc32c.c); then
    echo "not ok $n - $4: mutant does not compile"
    return
  fi
  local out
  out=$("$work/sim" --seeds 1 20000 | grep -m1 '^FAIL')
  if [ -n "$out" ]; then
    echo "ok $n - caught: $4"
    echo "#   $out"
  else
    echo "not ok $n - survived 20000 seeds: $4"
  fi
}
mutant dcs/raft.c 'if (idx > r->commit && term_at(r, idx) == r->term) {' 'if (idx > r->commit) {' \
  "leader commits a prior-term entry by counting replicas (Figure 8)"
mutant dcs/raft.c 'if (can && up_to_date(r, m->index, m->log_term)) {' 'if (can) {' \
  "vote granted without the up-to-date log check"
mutant dcs/raft.c '            if (term_at(r, idx) == e->term)
                continue;' '            continue;' \
  "follower keeps entries that conflict with the leader"
mutant dcs/raft.c '    uint64_t ok = confirmed_round(r);' '    uint64_t ok = r->hb_round;' \
  "ReadIndex answered without a quorum heartbeat round"
mutant dcs/raft.c '    return r->ticks + 1 < r->round_tick[c % ROUND_RING] + r->cfg.election_ticks;' \
  '    return true;' "leader lease that never expires"
mutant dcs/raft.c '    if (r->pending_conf_index > r->commit || !committed_in_term(r))' '    if (0)' \
  "membership changes without the one-at-a-time rule"
mutant dcs/wal.c '        rc = w->fs->fdatasync(w->fs->ctx, w->fd);
    w->syncs++;' '        rc = 0;
    w->syncs++;' "WAL batch acknowledged without fdatasync"
mutant dcs/wal.c '    if (!rc)
        rc = fs->sync_dir(fs->ctx, w->dir);' '' "new WAL segment without directory fsync"
mutant dcs/snap.c '    if (!rc)
        rc = fs->fdatasync(fs->ctx, fd);' '' "snapshot renamed into place before fdatasync"
rm -rf "$work"
echo "1..$n"
