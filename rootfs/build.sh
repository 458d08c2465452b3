#!/usr/bin/env bash
# Assembles the image's root filesystem from this build host and writes the docker-save
# tarball (see rootfs/README.md for what is inside and why).
#
# Usage: rootfs/build.sh OUTDIR BINDIR [TAG]
#   OUTDIR  e.g. build/image: gets layers/{base,appliance}/, pg-appliance.tar, contents.txt
#   BINDIR  e.g. build/bin: whichever appliance programs exist there are shipped; the
#           missing ones are listed (stderr, contents.txt and an image label)
#   TAG     default pg-appliance:latest (compose.yaml's image name)
#
# Two layers: "base" (PostgreSQL + its libraries, /bin/sh, users, locale, zoneinfo:
# changes only with the host's Debian packages) and "appliance" (our static programs and
# the configs: changes every commit), so a new appliance build shares the big layer.
set -euo pipefail
umask 022 # directory and file modes in the layers come from the tree: make them fixed

OUT=${1:?usage: rootfs/build.sh OUTDIR BINDIR [TAG]}
BINDIR=${2:?usage: rootfs/build.sh OUTDIR BINDIR [TAG]}
TAG=${3:-pg-appliance:latest}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PGVER=15
PGLIB=/usr/lib/postgresql/$PGVER
PGSHARE=/usr/share/postgresql/$PGVER
# uid/gid of postgres in the image: 101, as in Spilo, so data directories (bind mounts)
# created by a Spilo deployment keep working without a chown. Also in rootfs/owners.txt.
PG_UID=101
PG_GID=101
PROGRAMS="appliance-init appliance-agent appliance-router appliance-dcs appliancectl"

die() { echo "rootfs: error: $*" >&2; exit 2; }
for f in "$PGLIB/bin/postgres" "$PGSHARE/postgres.bki" /bin/dash /bin/rm /usr/bin/locale \
  /usr/lib/locale/C.utf8 /usr/share/zoneinfo/UTC; do
  [ -e "$f" ] || die "$f missing on the build host (mk/packages.sh test installs it)"
done
[ -x "$BINDIR/appliance-init" ] || die "$BINDIR/appliance-init missing: it is the ENTRYPOINT (run make)"

L=$OUT/layers
rm -rf "$L"
B=$L/base A=$L/appliance
mkdir -p "$B" "$A"

# ---------------- base layer ----------------
# Merged-/usr layout like Debian 12: /lib and /lib64 point into /usr, so the ELF
# interpreter path /lib64/ld-linux-x86-64.so.2 and ldd's /lib/x86_64-linux-gnu paths
# resolve. /bin stays a real directory holding only sh (dash) and rm.
mkdir -p "$B"/{bin,dev,proc,sys,etc,root,run/postgresql,var,usr/lib/x86_64-linux-gnu,usr/lib64}
mkdir -p "$B"/usr/lib/locale "$B"/usr/local/bin "$B"/usr/share "$B"/home/postgres/pgdata "$B"/etcd-data
ln -s usr/lib "$B/lib"
ln -s usr/lib64 "$B/lib64"
ln -s ../run "$B/var/run" # Debian's libpq default socket dir is /var/run/postgresql
mkdir -p "$B/tmp" "$B/var/tmp"
chmod 1777 "$B/tmp" "$B/var/tmp"
chmod 0700 "$B/root" "$B/home/postgres/pgdata" "$B/etcd-data"
chmod 2775 "$B/run/postgresql"

# /bin/sh is Debian's dash, NOT busybox-static (the first plan). Measured: busybox sh
# calls setgid(getgid())/setuid(getuid()) at every start (its applet privilege drop); the
# pg seccomp allowlist (init/seccomp_allow_pg.c) was derived with Debian's /bin/sh = dash
# and has neither, so every initdb/pg_ctl/archive_command shell logged two seccomp
# denials. glibc is in the image anyway (PostgreSQL), so a static shell saves nothing:
# dash is 125 KB against busybox's 2 MB, and no busybox applet set becomes reachable.
# Also shipped, each because a shipped program executes it:
#   /bin/rm          appliance-agent runs "/bin/rm -rf" on a data dir moved aside (reinit)
#   /usr/bin/locale  initdb runs "locale -a" to import the OS collations (C.utf8);
#                    without it: "no usable system locales were found"
# Nothing else: no package manager, no coreutils beyond rm.
HOST_TOOLS="/bin/dash /bin/rm /usr/bin/locale"
install -m 0755 /bin/dash "$B/bin/dash"
ln -s dash "$B/bin/sh"
install -m 0755 /bin/rm "$B/bin/rm"
mkdir -p "$B/usr/bin"
install -m 0755 /usr/bin/locale "$B/usr/bin/locale"

cat >"$B/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
postgres:x:$PG_UID:$PG_GID:PostgreSQL administrator:/home/postgres:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$B/etc/group" <<EOF
root:x:0:
postgres:x:$PG_GID:
nogroup:x:65534:
EOF
# glibc (PostgreSQL's getpwuid, libpq's host lookups): files first, then DNS (Docker's
# embedded resolver via /etc/resolv.conf, which Docker bind-mounts at run time).
cat >"$B/etc/nsswitch.conf" <<EOF
passwd: files
group: files
shadow: files
hosts: files dns
EOF
cat >"$B/etc/os-release" <<EOF
NAME="pg-appliance"
ID=pg-appliance
PRETTY_NAME="pg-appliance (PostgreSQL $PGVER from Debian 12)"
EOF
chmod 0644 "$B"/etc/*

# PostgreSQL: Debian's binaries and modules. No llvmjit (JIT pulls 100+ MB of LLVM and is
# off for OLTP anyway), no bitcode, no man pages. pg_config stays: tiny, used by tooling.
mkdir -p "$B$PGLIB" "$B/usr/share/postgresql"
cp -a "$PGLIB/bin" "$B$PGLIB/bin"
mkdir -p "$B$PGLIB/lib"
for f in "$PGLIB"/lib/*; do
  case $(basename "$f") in llvmjit* | bitcode) continue ;; esac
  cp -a "$f" "$B$PGLIB/lib/"
done
cp -a "$PGSHARE" "$B/usr/share/postgresql/"
rm -rf "$B$PGSHARE/man"
# Only the files of Debian's postgresql-15 / postgresql-client-15 packages: an extension
# package installed on the build host must not slip into the image (it would make the
# image depend on the host, and its libraries are not in the seccomp-derived set).
if command -v dpkg >/dev/null; then
  owned=$(dpkg -L "postgresql-$PGVER" "postgresql-client-$PGVER" 2>/dev/null | sort -u)
  (cd "$B" && find ".$PGLIB" ".$PGSHARE" \( -type f -o -type l \) | sed 's|^\.||' | sort) |
    comm -23 - <(echo "$owned") | while IFS= read -r extra; do
      echo "rootfs: WARNING: $extra is not from postgresql-$PGVER packages: left out" >&2
      rm -f "$B$extra"
    done
fi
# Debian builds with --with-system-tzdata: timezone names resolve in /usr/share/zoneinfo.
# "right/" (leap-second variants, 2 MB) is not a valid PostgreSQL timezone source anyway.
cp -a /usr/share/zoneinfo "$B/usr/share/zoneinfo"
rm -rf "$B/usr/share/zoneinfo/right"
# initdb --locale=C.UTF-8 (configs/postgres*.yml) needs the compiled C.utf8 locale.
cp -a /usr/lib/locale/C.utf8 "$B/usr/lib/locale/C.utf8"

# The shared-library closure of every shipped ELF file, from ldd. Each library is copied
# to its real path; the name ldd resolved (the soname, possibly under /lib) becomes a
# symlink to it, mapped into /usr because /lib -> usr/lib in the image.
to_usr() { case $1 in /lib/* | /lib64/*) echo "/usr$1" ;; *) echo "$1" ;; esac; }
libs=$(
  {
    find "$B$PGLIB" -type f \( -perm -u+x -o -name '*.so' \) -print0
    for t in $HOST_TOOLS; do printf '%s\0' "$B$t"; done
  } | while IFS= read -r -d '' f; do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    ldd "${f#"$B"}" 2>/dev/null | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'
  done | sort -u
)
[ -n "$libs" ] || die "ldd found no libraries for $PGLIB (is ldd working?)"
for p in $libs; do
  case $p in *"not found"*) die "library of PostgreSQL not found: $p" ;; esac
  real=$(readlink -f "$p")
  [ -f "$real" ] || die "library $p -> $real is not a file"
  dst=$(to_usr "$real")
  mkdir -p "$B$(dirname "$dst")"
  # Modes as on the host: the ELF interpreter must stay executable (exec of every
  # dynamically linked binary needs it).
  [ -e "$B$dst" ] || cp --preserve=mode "$real" "$B$dst"
  name=$(to_usr "$p")
  if [ "$name" != "$dst" ] && [ ! -e "$B$name" ] && [ ! -L "$B$name" ]; then
    mkdir -p "$B$(dirname "$name")"
    ln -s "$(realpath -m --relative-to="$(dirname "$name")" "$dst")" "$B$name"
  fi
done
[ -e "$B/usr/lib64/ld-linux-x86-64.so.2" ] || die "ELF interpreter not in the closure"

# ---------------- appliance layer ----------------
# Parent directories repeat the base layer's modes (an upper layer's directory entry
# replaces the lower one's metadata).
mkdir -p "$A/usr/local/bin" "$A/etc/appliance" "$A/home/postgres"
shipped=() missing=()
for p in $PROGRAMS; do
  if [ -x "$BINDIR/$p" ]; then
    install -m 0755 "$BINDIR/$p" "$A/usr/local/bin/$p"
    shipped+=("$p")
  else
    missing+=("$p")
  fi
done
for i in 0 1 2; do install -m 0644 "$REPO/configs/postgres$i.yml" "$A/home/postgres/"; done
install -m 0644 "$REPO/configs/router.yml" "$A/etc/appliance/router.yml"
install -m 0644 "$REPO/configs/init_users_dbs.sql" "$A/etc/appliance/init_users_dbs.sql"

{
  echo "shipped: ${shipped[*]}"
  echo "missing: ${missing[*]:-}"
} >"$OUT/contents.txt"
if [ ${#missing[@]} -gt 0 ]; then
  echo "rootfs: WARNING: not built yet, not in the image: ${missing[*]}" >&2
fi

# ---------------- image ----------------
# "created" in the config: SOURCE_DATE_EPOCH, else 0 (docker shows "56 years ago").
# Not the last commit's time: that changes whenever anyone commits in a shared checkout,
# with no change to the image's contents (seen: a concurrent commit between two builds
# gave two IDs). A release sets SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) itself.
# Layer file mtimes stay 0 either way, so the base layer keeps its diff_id.
created=${SOURCE_DATE_EPOCH:-0}
id=$(SOURCE_DATE_EPOCH=0 python3 "$HERE/mkimage.py" --created "$created" \
  --out "$OUT/pg-appliance.tar" --tag "$TAG" \
  --owners "$HERE/owners.txt" \
  --entrypoint '["/usr/local/bin/appliance-init"]' \
  --env PATH=/usr/local/bin:/usr/lib/postgresql/$PGVER/bin:/usr/bin:/bin \
  --env LANG=C.UTF-8 \
  --label "org.pg-appliance.programs=${shipped[*]}" \
  --label "org.pg-appliance.missing=${missing[*]:-}" \
  --label "org.pg-appliance.postgresql=$("$PGLIB/bin/postgres" --version | awk '{print $3}')" \
  --port 2379 --port 2380 --port 5000 --port 5001 --port 5432 --port 8008 --port 8404 \
  --layer-comment "base: PostgreSQL $PGVER (Debian) + library closure, dash, users" \
  --layer-comment "appliance: static programs and configs" \
  "$B" "$A")
echo "image: $id" >>"$OUT/contents.txt"
echo "$id" >"$OUT/image-id"
echo "rootfs: $OUT/pg-appliance.tar $TAG $id ($(du -m "$OUT/pg-appliance.tar" | cut -f1) MB)" >&2
