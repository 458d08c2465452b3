#!/usr/bin/env bash
# Builds the private static musl prefix (libpq, libcurl HTTP-only, jansson, libyaml,
# libseccomp, libnghttp2) from Debian source packages, so every binary links statically
# and reads nothing from the build host at run time.
#
# The prefix is cached outside the repository, keyed by this script's content, the pinned
# source versions and the musl toolchain version: CI runs in a fresh clone, and a warm
# cache must not rebuild anything.
#
# Usage: mk/deps.sh            build if needed, print the prefix path on stdout
#        mk/deps.sh --key      print the cache key only
set -euo pipefail

# Pinned source versions (Debian 12). PostgreSQL 15.20's source answers 404 on the mirror.
JANSSON_V=2.14-2
LIBYAML_V=0.2.5-1
LIBSECCOMP_V=2.5.4-1+deb12u1
CURL_V=7.88.1-10+deb12u15
POSTGRES_V=15.18-0+deb12u1
NGHTTP2_V=1.52.0-1+deb12u3

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${APPLIANCE_DEPS_CACHE:-/var/cache/pg-appliance}
log() { printf 'deps: %s\n' "$*" >&2; }

musl_v=$(dpkg-query -W -f='${Version}' musl-dev 2>/dev/null || echo none)
key=$( { cat "$0"; echo "$musl_v"; } | sha256sum | cut -c1-16)
if [ "${1:-}" = --key ]; then echo "$key"; exit 0; fi
prefix="$cache_root/deps-$key"
if [ -f "$prefix/.complete" ]; then echo "$prefix"; exit 0; fi

"$here/packages.sh" build >&2

# deb-src entries: copy the deb stanzas of Debian's sources file as deb-src.
if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  if [ "$(id -u)" != 0 ]; then
    log "need deb-src entries in /etc/apt/sources.list.d (run as root once)"; exit 1
  fi
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
    > /etc/apt/sources.list.d/debian-src.sources
  apt-get update -qq >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/appliance-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage="$prefix.tmp.$$"
rm -rf "$stage"; mkdir -p "$stage/include" "$stage/lib"
jobs=$(nproc)

# musl-dev ships no Linux UAPI headers; seccomp.h needs asm/unistd.h. Copy them in rather
# than pointing at /usr/include/x86_64-linux-gnu, which would drag in glibc headers.
cp -a /usr/include/linux /usr/include/asm-generic "$stage/include/"
cp -a /usr/include/x86_64-linux-gnu/asm "$stage/include/asm"
# Some configure scripts need a compiler name they can probe for cross-host builds.
export CC=musl-gcc
export CFLAGS="-O2 -fPIC -isystem $stage/include"
export CPPFLAGS="-isystem $stage/include"

fetch() { # package version -> unpacked dir name on stdout
  (cd "$work" && apt-get source -qq "$1=$2" >/dev/null 2>&1) || {
    log "apt-get source $1=$2 failed"; exit 1; }
  find "$work" -maxdepth 1 -mindepth 1 -type d -name "$3*" | head -1
}

log "jansson $JANSSON_V"
src=$(fetch jansson "$JANSSON_V" jansson-)
cmake -S "$src" -B "$work/b-jansson" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=musl-gcc \
  -DCMAKE_INSTALL_PREFIX="$stage" -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DJANSSON_BUILD_SHARED_LIBS=OFF -DJANSSON_BUILD_DOCS=OFF -DJANSSON_EXAMPLES=OFF \
  -DJANSSON_WITHOUT_TESTS=ON >/dev/null
cmake --build "$work/b-jansson" -j "$jobs" >/dev/null
cmake --install "$work/b-jansson" >/dev/null

log "libyaml $LIBYAML_V"
src=$(fetch libyaml "$LIBYAML_V" libyaml-)
cmake -S "$src" -B "$work/b-yaml" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=musl-gcc \
  -DCMAKE_INSTALL_PREFIX="$stage" -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTING=OFF >/dev/null
cmake --build "$work/b-yaml" -j "$jobs" >/dev/null
cmake --install "$work/b-yaml" >/dev/null

log "libseccomp $LIBSECCOMP_V"
src=$(fetch libseccomp "$LIBSECCOMP_V" libseccomp-)
(cd "$src" && ./configure -q --prefix="$stage" --enable-static --disable-shared \
   --disable-python >/dev/null && make -s -j "$jobs" >/dev/null && make -s install >/dev/null)

log "curl $CURL_V (HTTP only)"
src=$(fetch curl "$CURL_V" curl-)
(cd "$src" && ./configure -q --prefix="$stage" --enable-static --disable-shared \
   --without-ssl --without-zlib --without-brotli --without-zstd --without-libidn2 \
   --without-libpsl --without-nghttp2 --without-libssh2 --without-librtmp \
   --without-libgsasl --without-ca-bundle --without-ca-path --disable-ldap --disable-ldaps \
   --disable-rtsp --disable-dict --disable-telnet --disable-tftp --disable-pop3 \
   --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt \
   --disable-ftp --disable-file --disable-manual --disable-ntlm --disable-alt-svc \
   --disable-cookies --disable-netrc >/dev/null \
 && make -s -j "$jobs" -C lib >/dev/null && make -s -C lib install >/dev/null \
 && make -s -C include install >/dev/null && install -m644 libcurl.pc "$stage/lib/pkgconfig/")

log "libnghttp2 $NGHTTP2_V (library only)"
src=$(fetch nghttp2 "$NGHTTP2_V" nghttp2-)
cmake -S "$src" -B "$work/b-nghttp2" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=musl-gcc \
  -DCMAKE_INSTALL_PREFIX="$stage" -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DENABLE_LIB_ONLY=ON \
  -DENABLE_STATIC_LIB=ON -DENABLE_SHARED_LIB=OFF -DENABLE_DOC=OFF -DENABLE_FAILMALLOC=OFF >/dev/null
cmake --build "$work/b-nghttp2" -j "$jobs" >/dev/null
cmake --install "$work/b-nghttp2" >/dev/null

log "libpq from postgresql-15 $POSTGRES_V"
src=$(fetch postgresql-15 "$POSTGRES_V" postgresql-15)
# Every optional feature off; only src/interfaces/libpq and the two helper libraries it
# needs are built and copied by hand (no 'make install': Debian's patches point pkglibdir
# at the host's PostgreSQL directory).
(cd "$src" && ./configure -q --prefix=/opt/pgsql --without-readline --without-zlib \
   --without-icu --without-openssl --without-gssapi --without-ldap --without-lz4 \
   --without-zstd --without-libxml --without-llvm --without-perl --without-python \
   --without-tcl --without-pam --without-selinux --without-systemd --disable-nls >/dev/null \
 && make -s -j "$jobs" -C src/interfaces/libpq all-static-lib >/dev/null)
install -m644 "$src/src/interfaces/libpq/libpq.a" "$src/src/common/libpgcommon_shlib.a" \
  "$src/src/port/libpgport_shlib.a" "$stage/lib/"
install -m644 "$src/src/interfaces/libpq/libpq-fe.h" "$src/src/interfaces/libpq/libpq-events.h" \
  "$src/src/include/postgres_ext.h" "$src/src/include/pg_config_ext.h" "$stage/include/"

printf 'jansson=%s\nlibyaml=%s\nlibseccomp=%s\ncurl=%s\nnghttp2=%s\npostgresql=%s\nmusl=%s\n' \
  "$JANSSON_V" "$LIBYAML_V" "$LIBSECCOMP_V" "$CURL_V" "$NGHTTP2_V" "$POSTGRES_V" "$musl_v" > "$stage/VERSIONS"
touch "$stage/.complete"
rm -rf "$prefix"; mv "$stage" "$prefix"
log "prefix ready: $prefix"
echo "$prefix"
