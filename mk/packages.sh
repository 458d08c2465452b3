#!/usr/bin/env bash
# Installs the Debian packages a group of targets needs, only those missing.
# As non-root it prints the exact apt-get line and fails, changing nothing.
#
# Usage: mk/packages.sh build|test|all
set -euo pipefail

build_pkgs="build-essential musl-tools musl-dev dpkg-dev gperf cmake pkg-config clang
  libclang-rt-14-dev libseccomp-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libpq-dev
  libnghttp2-dev
  clang-format clang-tidy cppcheck"
# Real peers the tests talk to or run under: PostgreSQL, etcd 3.4, Patroni, python-etcd,
# HAProxy; and the tools the process tests use (unshare, ip, strace).
test_pkgs="postgresql-15 postgresql-client-15 etcd-server etcd-client patroni python3-etcd
  haproxy util-linux iproute2 iptables procps strace curl docker-compose tini wrk catatonit
  vip-manager nghttp2-client
  docker.io prometheus-haproxy-exporter"

case "${1:-}" in
  build) want=$build_pkgs ;;
  test) want=$test_pkgs ;;
  all) want="$build_pkgs $test_pkgs" ;;
  *) echo "usage: $0 build|test|all" >&2; exit 2 ;;
esac

missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "packages: missing ${missing[*]}; run as root: $line" >&2
  exit 1
fi
echo "packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have stale or empty package lists.
apt-get update -qq >&2 || true
$line >&2
