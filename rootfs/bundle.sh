#!/usr/bin/env bash
# Writes the air-gapped install bundle: one .tar.gz holding the image tarball,
# compose.yaml, configs/ (compose bind-mounts ./configs/init_users_dbs.sql), README.md
# (rootfs/INSTALL.md), IMAGE-ID and SHA256SUMS. Deterministic like the image: sorted
# names, fixed mtime/owner, gzip without name/timestamp.
#
# Usage: rootfs/bundle.sh IMAGE_TAR OUT.tar.gz
#   BUNDLE_GZIP_LEVEL (1-9, default 6): 6 is 36 MB in ~11 s here, 1 is 39 MB in ~4 s (the
#   test uses 1: it checks contents, and CPU is shared).
set -euo pipefail
umask 022
IMG=${1:?usage: rootfs/bundle.sh IMAGE_TAR OUT.tar.gz}
OUT=${2:?usage: rootfs/bundle.sh IMAGE_TAR OUT.tar.gz}
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$IMG" ] || { echo "bundle: error: image tarball '$IMG' missing (make image)" >&2; exit 2; }
EPOCH=${SOURCE_DATE_EPOCH:-0}
LEVEL=${BUNDLE_GZIP_LEVEL:-6}
[[ $LEVEL =~ ^[1-9]$ ]] || { echo "bundle: error: BUNDLE_GZIP_LEVEL='$LEVEL' is not 1-9" >&2; exit 2; }

stage=$(dirname "$OUT")/bundle-stage
rm -rf "$stage"
d=$stage/pg-appliance-bundle
mkdir -p "$d/configs"
# A hard link when possible: the image is ~90 MB and only read from here.
ln "$IMG" "$d/pg-appliance.tar" 2>/dev/null || cp "$IMG" "$d/pg-appliance.tar"
install -m 0644 "$REPO/compose.yaml" "$d/compose.yaml"
install -m 0644 "$REPO/rootfs/INSTALL.md" "$d/README.md"
for f in "$REPO"/configs/*; do install -m 0644 "$f" "$d/configs/"; done
chmod 0644 "$d/pg-appliance.tar"
# The image ID docker will show after `docker load` (sha256 of the config named in the
# manifest), so the install can be checked against it.
python3 - "$d/pg-appliance.tar" >"$d/IMAGE-ID" <<'PY' || { echo "bundle: error: cannot read the image manifest" >&2; exit 2; }
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    print("sha256:" + json.load(t.extractfile("manifest.json"))[0]["Config"].removesuffix(".json"))
PY
(cd "$d" && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | sed 's|^\./||' |
  xargs sha256sum >SHA256SUMS)
tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner --format=gnu \
  -C "$stage" -cf - pg-appliance-bundle | gzip -n "-$LEVEL" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
rm -rf "$stage"
echo "bundle: $OUT ($(du -m "$OUT" | cut -f1) MB)" >&2
