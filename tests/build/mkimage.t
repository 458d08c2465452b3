#!/usr/bin/env python3
# rootfs/mkimage.py without a Docker engine: the docker-save structure docker load needs
# (manifest Config/Layers, diff_ids = sha256 of each uncompressed layer tar), determinism
# against things that must not matter (creation order, mtimes, the builder's uid), owners
# from the owners file, and clear errors for bad input.
# test-timeout: 60
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MKIMAGE = os.path.join(ROOT, "rootfs", "mkimage.py")
n = 0
failed = False


def check(cond, what, detail=""):
    global n, failed
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {what}")
    if not cond:
        failed = True
        for line in str(detail).splitlines()[-15:]:
            print(f"#   {line}")


def run(*args):
    return subprocess.run([sys.executable, MKIMAGE, *args], capture_output=True, text=True)


def make_tree(root, order, mtime, uid):
    """Same content, different creation order / mtimes / owner."""
    files = {"etc/passwd": b"root:x:0:0::/:/bin/sh\n", "usr/bin/tool": b"\x7fELF...",
             "home/postgres/a.yml": b"scope: x\n", "tmp/.keep": b""}
    items = sorted(files) if order else sorted(files, reverse=True)
    for rel in items:
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(files[rel])
        os.chmod(p, 0o755 if rel.startswith("usr/bin") else 0o644)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    os.symlink("tool", os.path.join(root, "usr/bin/sh"))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            os.utime(p, (mtime, mtime), follow_symlinks=False)
            os.lchown(p, uid, uid) if os.geteuid() == 0 else None


with tempfile.TemporaryDirectory() as t:
    owners = os.path.join(t, "owners.txt")
    with open(owners, "w") as f:
        f.write("# test\nhome/postgres 101:101\n")
    a1, a2, b1 = (os.path.join(t, x) for x in ("a1", "a2", "b1"))
    make_tree(a1, True, 1000, 0)
    make_tree(a2, False, 2_000_000_000, 4242)
    os.makedirs(os.path.join(b1, "usr/local/bin"))
    with open(os.path.join(b1, "usr/local/bin/prog"), "wb") as f:
        f.write(b"static")
    os.chmod(os.path.join(b1, "usr/local/bin/prog"), 0o755)

    common = ["--tag", "test/img:1", "--owners", owners, "--entrypoint", '["/usr/local/bin/prog"]',
              "--env", "PATH=/usr/bin", "--label", "k=v", "--port", "5432"]
    out1, out2 = os.path.join(t, "1.tar"), os.path.join(t, "2.tar")
    r1 = run("--out", out1, *common, a1, b1)
    r2 = run("--out", out2, *common, a2, b1)
    check(r1.returncode == 0 and r2.returncode == 0, "writes two images", r1.stderr + r2.stderr)
    id1, id2 = r1.stdout.strip(), r2.stdout.strip()
    check(id1 == id2 and id1.startswith("sha256:"),
          "same ID whatever the creation order, mtimes or file owners", f"{id1} vs {id2}")
    check(open(out1, "rb").read() == open(out2, "rb").read(), "byte-identical tarballs")

    with tarfile.open(out1) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
        m = manifest[0]
        cfg_bytes = tar.extractfile(m["Config"]).read()
        cfg = json.loads(cfg_bytes)
        check(m["RepoTags"] == ["test/img:1"] and len(m["Layers"]) == 2, "manifest: tag and two layers",
              manifest)
        check(id1 == "sha256:" + hashlib.sha256(cfg_bytes).hexdigest() and m["Config"] == id1[7:] + ".json",
              "image ID is sha256 of the config")
        diffs = ["sha256:" + hashlib.sha256(tar.extractfile(p).read()).hexdigest() for p in m["Layers"]]
        check(cfg["rootfs"] == {"type": "layers", "diff_ids": diffs},
              "config diff_ids are the sha256 of the uncompressed layers, in order", cfg["rootfs"])
        check(cfg["os"] == "linux" and cfg["architecture"] == "amd64"
              and cfg["config"]["Entrypoint"] == ["/usr/local/bin/prog"]
              and cfg["config"]["ExposedPorts"] == {"5432/tcp": {}} and cfg["config"]["Labels"] == {"k": "v"},
              "config: os/arch, entrypoint, ports, labels", cfg)
        check("repositories" in names, "repositories file written")
        with tarfile.open(fileobj=tar.extractfile(m["Layers"][0])) as layer:
            members = {x.name.rstrip("/"): x for x in layer.getmembers()}
            order = [x.name for x in layer.getmembers()]
    check(order == sorted(order, key=lambda s: s.rstrip("/").encode()) and order[0] == "etc",
          "layer entries sorted, parents first", order)
    hp, pw, sh, tmp = (members.get(x) for x in ("home/postgres", "etc/passwd", "usr/bin/sh", "tmp"))
    check(hp is not None and (hp.uid, hp.gid) == (101, 101) and (pw.uid, pw.gid) == (0, 0),
          "owners file applied, everything else root", (hp and (hp.uid, hp.gid), pw.uid))
    check(all(x.mtime == 0 for x in members.values()), "every mtime 0")
    check(sh.issym() and sh.linkname == "tool" and tmp.mode == 0o1777
          and members["usr/bin/tool"].mode == 0o755, "symlinks and modes (sticky bit) kept")

    # bad input: errors name the thing, exit 2
    os.mkfifo(os.path.join(b1, "fifo"))
    r = run("--out", os.path.join(t, "3.tar"), *common, a1, b1)
    check(r.returncode == 2 and "fifo: not a regular file" in r.stderr, "a fifo in a layer: exit 2 naming it",
          r.stderr)
    os.unlink(os.path.join(b1, "fifo"))
    with open(owners, "a") as f:
        f.write("etc postgres\n")
    r = run("--out", os.path.join(t, "3.tar"), *common, a1)
    check(r.returncode == 2 and "owners.txt:3" in r.stderr, "bad owners line: exit 2 naming file:line", r.stderr)
    r = run("--out", os.path.join(t, "3.tar"), "--tag", "notag", a1)
    check(r.returncode == 2 and "--tag" in r.stderr, "tag without ':TAG' refused", r.stderr)
    r = run("--out", os.path.join(t, "3.tar"), "--tag", "a:b", "--entrypoint", "{", a1)
    check(r.returncode == 2 and "--entrypoint" in r.stderr, "entrypoint that is not JSON refused", r.stderr)
    r = run("--out", os.path.join(t, "3.tar"), "--tag", "a:b", os.path.join(t, "nope"))
    check(r.returncode == 2 and "nope" in r.stderr, "missing layer dir named", r.stderr)
    check(not os.path.exists(os.path.join(t, "3.tar")), "no output file after a failure")

print(f"1..{n}")
sys.exit(1 if failed else 0)
