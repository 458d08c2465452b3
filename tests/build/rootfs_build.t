#!/usr/bin/env bash
# rootfs/build.sh without Docker: with only appliance-init built it still makes an image
# and names the missing programs (stderr, contents.txt, image label); without
# appliance-init (the ENTRYPOINT) it refuses. The base layer's library closure is checked
# by running the shipped binaries in a chroot of the layer tree (root; the CI runs as root).
# test-timeout: 180
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
T=$(mktemp -d /tmp/rootfs-build.XXXXXX)
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
show() { sed 's/^/#   /' "$1" | tail -"${2:-15}"; }
cleanup() { if [ "$failed" -eq 0 ]; then rm -rf "$T"; else echo "# files kept in $T"; fi; }
trap cleanup EXIT

[ -x build/bin/appliance-init ] || { echo "not ok 1 - build/bin/appliance-init missing (run make)"; exit 1; }
mkdir -p "$T/bin-none" "$T/bin-init"
cp build/bin/appliance-init "$T/bin-init/"

rootfs/build.sh "$T/none" "$T/bin-none" >"$T/none.log" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q 'appliance-init missing: it is the ENTRYPOINT' "$T/none.log"; then
  ok "no appliance-init: exit 2 naming it"
else
  nok "no appliance-init: exit $rc"; show "$T/none.log"
fi

if rootfs/build.sh "$T/img" "$T/bin-init" test/rootfs:1 >"$T/img.log" 2>&1; then
  ok "only appliance-init built: the image is still written"
else
  nok "build.sh failed"; show "$T/img.log"; exit 1
fi
want="appliance-agent appliance-router appliance-dcs appliancectl"
if grep -q "not in the image: $want" "$T/img.log" && grep -qx "missing: $want" "$T/img/contents.txt" &&
  grep -qx "shipped: appliance-init" "$T/img/contents.txt"; then
  ok "missing programs listed on stderr and in contents.txt"
else
  nok "missing programs not listed"; show "$T/img.log"; show "$T/img/contents.txt"
fi
label=$(python3 - "$T/img/pg-appliance.tar" <<'EOF'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    m = json.load(t.extractfile("manifest.json"))[0]
    print(json.load(t.extractfile(m["Config"]))["config"]["Labels"]["org.pg-appliance.missing"])
EOF
)
if [ "$label" = "$want" ]; then ok "image label org.pg-appliance.missing lists them"
else nok "label is '$label'"; fi

B=$T/img/layers/base
if [ -L "$B/bin/sh" ] && [ "$(readlink "$B/bin/sh")" = dash ] && [ -x "$B/usr/lib64/ld-linux-x86-64.so.2" ] &&
  [ ! -e "$B/usr/lib/postgresql/15/lib/llvmjit.so" ] && [ ! -e "$B/usr/lib/postgresql/15/lib/bitcode" ] &&
  [ -d "$B/usr/lib/locale/C.utf8" ] && [ "$(stat -c %a "$B/tmp")" = 1777 ] &&
  grep -q '^postgres:x:101:101:' "$B/etc/passwd"; then
  ok "base layer: /bin/sh -> dash, executable ELF interpreter, no llvmjit, C.utf8, /tmp 1777, postgres 101"
else
  nok "base layer layout"; ls -la "$B" "$B/bin" | sed 's/^/#   /'
fi

# Every shipped ELF runs in a chroot of the base layer: its whole library closure is there.
if [ "$(id -u)" = 0 ]; then
  bad=
  for b in postgres initdb pg_ctl psql pg_basebackup pg_rewind pg_controldata pgbench; do
    out=$(chroot "$B" "/usr/lib/postgresql/15/bin/$b" --version 2>&1) || bad="$bad $b($out)"
  done
  for t in /bin/sh /bin/rm /usr/bin/locale; do
    chroot "$B" "$t" --help >/dev/null 2>&1 </dev/null
    [ $? -eq 127 ] && bad="$bad $t"
  done
  out=$(chroot "$B" /usr/bin/locale -a 2>&1)
  grep -qx 'C.utf8' <<<"$out" || bad="$bad locale-a($out)"
  # every module PostgreSQL may load: its libraries resolve inside the chroot
  for so in "$B"/usr/lib/postgresql/15/lib/*.so; do
    r=$(chroot "$B" /usr/lib64/ld-linux-x86-64.so.2 --list "${so#"$B"}" 2>&1) || bad="$bad $(basename "$so")"
    grep -q 'not found' <<<"$r" && bad="$bad $(basename "$so")(not found)"
  done
  if [ -z "$bad" ]; then ok "PostgreSQL binaries, modules, sh, rm, locale run/resolve in a chroot of the base layer"
  else nok "in the chroot:$bad"; fi
else
  nok "not root: cannot chroot to check the library closure (CI runs as root)"
fi
echo "1..$n"
exit "$failed"
