#!/usr/bin/env bash
# test-timeout: 150
# fake_cluster.t with the user-space data path (data_path.splice: userspace): fake_cluster.t
# itself runs auto, which as root is the in-kernel sockmap path; both must behave
# the same (write target moves, demoted-primary sessions closed, held clients, balance,
# 8404 stats, reload, limits).
exec env ROUTER_IT_SPLICE=userspace "$(dirname "$0")/fake_cluster.t"
