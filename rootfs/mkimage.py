#!/usr/bin/env python3
"""Deterministic docker-save image writer.

    mkimage.py --out FILE --tag REPO:TAG [--owners FILE] [--label K=V]... \
               [--entrypoint JSON] [--env K=V]... [--port N]... LAYERDIR...

Each LAYERDIR becomes one layer (first = bottom). The result loads with `docker load -i`
(docker 20.10+ reads manifest.json; `repositories` is written too for older readers).

Why our own writer instead of `docker build`/`docker import`: no base image can be pulled
here, `docker import` stamps the current time (a new image ID every build), and the build
must not need a running daemon. Determinism rules, so the same input tree gives the same
image ID byte for byte:
  * entries in sorted order, directories before their contents;
  * mtime = SOURCE_DATE_EPOCH (default 0) for every entry, layer and outer archive;
  * owner root:root (numeric, no names) except the paths listed in --owners;
  * mode taken from the tree (permission + setuid/setgid/sticky bits only);
  * hard links are stored as separate regular files (no inode-order dependence);
  * JSON with sorted keys and fixed separators; layers uncompressed (gzip headers carry
    timestamps and compression level differences; the bundle gzips the whole thing).
The image ID is sha256 of the config JSON, whose rootfs.diff_ids are the sha256 of each
uncompressed layer tar.

Only regular files, directories and symlinks are accepted: anything else (device nodes,
sockets, fifos) in a layer dir is an error naming the path, because Docker creates /dev
itself and a stray socket would be a build bug.
"""
import argparse
import datetime
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import tempfile

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
CHUNK = 1 << 20


def die(msg):
    print(f"mkimage: error: {msg}", file=sys.stderr)
    sys.exit(2)


def load_owners(path):
    """OWNERS file: 'relative/path UID:GID' per line, '#' comments."""
    owners = {}
    if not path:
        return owners
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or ":" not in parts[1]:
                die(f"{path}:{lineno}: expected 'PATH UID:GID', got '{line}'")
            uid, gid = parts[1].split(":", 1)
            if not (uid.isdigit() and gid.isdigit()):
                die(f"{path}:{lineno}: UID:GID must be numeric, got '{parts[1]}'")
            owners[parts[0].strip("/")] = (int(uid), int(gid))
    return owners


def walk_sorted(root):
    """Relative paths under root, parents first, siblings in byte order."""
    out = []

    def rec(rel):
        full = os.path.join(root, rel) if rel else root
        names = sorted(os.listdir(full), key=lambda s: s.encode())
        for name in names:
            r = f"{rel}/{name}" if rel else name
            out.append(r)
            st = os.lstat(os.path.join(root, r))
            if stat.S_ISDIR(st.st_mode):
                rec(r)

    rec("")
    return out


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes through it."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def writable(self):
        return True

    def write(self, b):
        self.f.write(b)
        self.h.update(b)
        self.n += len(b)
        return len(b)


def tarinfo(name, mode, uid, gid):
    ti = tarfile.TarInfo(name)
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.uname = ti.gname = ""
    ti.mtime = EPOCH
    return ti


def write_layer(root, owners, dest):
    """Writes root as a layer tar to dest; returns (sha256 hex, size, entry count)."""
    hw = HashingWriter(dest)
    count = 0
    with tarfile.open(fileobj=hw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in walk_sorted(root):
            full = os.path.join(root, rel)
            st = os.lstat(full)
            uid, gid = owners.get(rel, (0, 0))
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                ti = tarinfo(rel + "/", mode, uid, gid)
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            elif stat.S_ISLNK(st.st_mode):
                ti = tarinfo(rel, 0o777, uid, gid)
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(full)
                tar.addfile(ti)
            elif stat.S_ISREG(st.st_mode):
                ti = tarinfo(rel, mode, uid, gid)
                ti.size = st.st_size
                with open(full, "rb") as f:
                    tar.addfile(ti, f)
            else:
                die(f"{full}: not a regular file, directory or symlink")
            count += 1
    return hw.h.hexdigest(), hw.n, count


def add_bytes(tar, name, data, mode=0o644):
    ti = tarinfo(name, mode, 0, 0)
    ti.size = len(data)
    tar.addfile(ti, io.BytesIO(data))


def add_dir(tar, name):
    ti = tarinfo(name.rstrip("/") + "/", 0o755, 0, 0)
    ti.type = tarfile.DIRTYPE
    tar.addfile(ti)


def canon_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", required=True, help="REPO:TAG written into manifest.json")
    ap.add_argument("--owners")
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--port", action="append", default=[])
    ap.add_argument("--entrypoint", default="[]", help="JSON list")
    ap.add_argument("--stop-signal", default="SIGTERM")
    ap.add_argument("--created", type=int, default=EPOCH,
                    help="config 'created' time (Unix s); layer mtimes stay SOURCE_DATE_EPOCH "
                         "so an unchanged layer keeps its diff_id across releases")
    ap.add_argument("--layer-comment", action="append", default=[],
                    help="history comment per layer, in layer order")
    ap.add_argument("layers", nargs="+")
    a = ap.parse_args()

    if ":" not in a.tag or a.tag.startswith(":") or a.tag.endswith(":"):
        die(f"--tag: expected REPO:TAG, got '{a.tag}'")
    repo, tag = a.tag.rsplit(":", 1)
    try:
        entrypoint = json.loads(a.entrypoint)
    except json.JSONDecodeError as e:
        die(f"--entrypoint: not JSON: {e}")
    if not isinstance(entrypoint, list) or not all(isinstance(x, str) for x in entrypoint):
        die("--entrypoint: expected a JSON list of strings")
    labels = {}
    for kv in a.label:
        if "=" not in kv:
            die(f"--label: expected K=V, got '{kv}'")
        k, v = kv.split("=", 1)
        labels[k] = v
    for kv in a.env:
        if "=" not in kv:
            die(f"--env: expected K=V, got '{kv}'")
    for p in a.port:
        if not p.isdigit() or not 0 < int(p) < 65536:
            die(f"--port: expected a port number, got '{p}'")
    for d in a.layers:
        if not os.path.isdir(d):
            die(f"layer dir '{d}' does not exist")
    owners = load_owners(a.owners)

    outdir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(outdir, exist_ok=True)
    tmps, diff_ids, history = [], [], []
    if a.created < 0:
        die(f"--created: expected Unix seconds >= 0, got {a.created}")
    created = datetime.datetime.fromtimestamp(a.created, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    try:
        for i, d in enumerate(a.layers):
            t = tempfile.NamedTemporaryFile(dir=outdir, prefix=".layer-", delete=False)
            tmps.append(t.name)
            digest, size, count = write_layer(d, owners, t)
            t.close()
            diff_ids.append("sha256:" + digest)
            # Not the dir name by default: where the tree was staged must not change the ID.
            comment = a.layer_comment[i] if i < len(a.layer_comment) else f"layer {i}"
            history.append({"created": created, "created_by": "rootfs/mkimage.py",
                            "comment": comment})
            print(f"mkimage: layer {i} {os.path.basename(d)}: {count} entries, "
                  f"{size / 1e6:.1f} MB, sha256:{digest[:12]}", file=sys.stderr)

        cfg = {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "Entrypoint": entrypoint,
                "Env": a.env,
                "Labels": labels,
                "StopSignal": a.stop_signal,
                "WorkingDir": "/",
                "ExposedPorts": {f"{p}/tcp": {} for p in a.port},
            },
            "history": history,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        cfg_bytes = canon_json(cfg)
        image_id = hashlib.sha256(cfg_bytes).hexdigest()
        layer_paths = [f"{x[7:]}/layer.tar" for x in diff_ids]
        manifest = [{"Config": f"{image_id}.json", "RepoTags": [a.tag], "Layers": layer_paths}]
        repositories = {repo: {tag: diff_ids[-1][7:]}}

        tmp_out = a.out + ".tmp"
        with open(tmp_out, "wb") as f, \
                tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            add_bytes(tar, f"{image_id}.json", cfg_bytes)
            # The same layer twice (identical dirs) is stored once.
            seen = set()
            for p, tmp in sorted(zip(layer_paths, tmps)):
                if p in seen:
                    continue
                seen.add(p)
                add_dir(tar, os.path.dirname(p))
                ti = tarinfo(p, 0o644, 0, 0)
                ti.size = os.path.getsize(tmp)
                with open(tmp, "rb") as lf:
                    tar.addfile(ti, lf)
            add_bytes(tar, "manifest.json", canon_json(manifest))
            add_bytes(tar, "repositories", canon_json(repositories))
        os.replace(tmp_out, a.out)
    finally:
        if os.path.exists(a.out + ".tmp"):  # a failure mid-write leaves no partial image
            os.unlink(a.out + ".tmp")
        for t in tmps:
            try:
                os.unlink(t)
            except FileNotFoundError:
                pass
    print(f"sha256:{image_id}")


if __name__ == "__main__":
    main()
