#!/usr/bin/env bash
# test-timeout: 150
# fake_cluster.t with two proxying event loops (data_path.loops: 2, SO_REUSEPORT): the same
# behaviour must hold in the loop that is not the main one (write target moves, sessions of
# a demoted primary closed, held clients dispatched, least-conn balance, merged 8404 stats).
exec env ROUTER_IT_LOOPS=2 "$(dirname "$0")/fake_cluster.t"
