#!/usr/bin/python3
# test-timeout: 120
"""vip-manager (Debian's 1.0.2) against appliance-dcs, in a network namespace this test
creates (loopback + a dummy interface, or a veth pair where the kernel has no dummy
module; nothing touches the host's interfaces).

vip-manager 1.0.2's --dcs-type=etcd speaks etcd's v2 keys API (its binary holds the v2
client and no etcdserverpb), so the trigger key is Patroni's leader key as Patroni's
`etcd:` (v2) section writes it: /service/<scope>/leader = <member name>. A 3-member
appliance-dcs cluster with --enable-v2 runs inside the namespace on 127.0.100.1..3. The VIP
must appear on the interface while the key holds this node's name and disappear when it
names another node (each transition waited for with a deadline, never a fixed sleep)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpclib import dcs_binary, done, ok, serialize, wait_for  # noqa: E402

NS = "dcsgrpc-vip-%d" % os.getpid()
VIP = "10.0.100.10"
KEY = "/service/batman/leader"


def sh(*args, check=False):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def nsx(*args):
    return ["ip", "netns", "exec", NS] + list(args)


def vip_present():
    r = sh("ip", "-n", NS, "-o", "addr", "show", "dev", "vip0")
    return (" %s/" % VIP) in r.stdout


def put_leader(host, value):
    r = sh(*nsx("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                "http://%s:2379/v2/keys%s" % (host, KEY), "-d", "value=" + value))
    return r.stdout.strip() in ("200", "201")


def main():
    serialize()
    if os.geteuid() != 0 or not shutil.which("vip-manager") or not shutil.which("ip"):
        print("ok 1 - vip-manager test # SKIP needs root, ip and vip-manager")
        done()
        return 0
    binary = dcs_binary()
    tmp = tempfile.mkdtemp(prefix="dcs-grpc-vip-")
    procs = []
    try:
        made = sh("ip", "netns", "add", NS).returncode == 0
        made = made and sh("ip", "-n", NS, "link", "set", "lo", "up").returncode == 0
        # a dummy interface; kernels without the dummy module get a veth pair instead
        if made and sh("ip", "-n", NS, "link", "add", "vip0", "type", "dummy").returncode != 0:
            made = sh("ip", "-n", NS, "link", "add", "vip0", "type", "veth", "peer", "name",
                      "vip0p").returncode == 0
            made = made and sh("ip", "-n", NS, "link", "set", "vip0p", "up").returncode == 0
        made = made and sh("ip", "-n", NS, "link", "set", "vip0", "up").returncode == 0
        # the node's own address (vip-manager's ARP announcer needs one on the interface)
        made = made and sh("ip", "-n", NS, "addr", "add", "10.0.100.2/24", "dev",
                           "vip0").returncode == 0
        if not ok(made, "network namespace with an interface for the VIP"):
            return 1
        hosts = ["127.0.100.%d" % i for i in (1, 2, 3)]
        initial = ",".join("v%d=http://%s:2380" % (i + 1, h) for i, h in enumerate(hosts))
        for i, h in enumerate(hosts):
            log = open(os.path.join(tmp, "v%d.log" % (i + 1)), "w")
            procs.append(subprocess.Popen(nsx(
                binary, "--name", "v%d" % (i + 1), "--data-dir", os.path.join(tmp, "v%d" % i),
                "--listen-client-urls", "http://%s:2379" % h,
                "--advertise-client-urls", "http://%s:2379" % h,
                "--listen-peer-urls", "http://%s:2380" % h,
                "--initial-advertise-peer-urls", "http://%s:2380" % h,
                "--initial-cluster", initial, "--heartbeat-interval", "50",
                "--election-timeout", "500", "--enable-v2"), stdout=log,
                stderr=subprocess.STDOUT))
            log.close()
        ok(wait_for(lambda: put_leader(hosts[0], "pg-1"), 30, 0.2),
           "appliance-dcs cluster in the namespace accepts Patroni's v2 leader key")
        vlog = open(os.path.join(tmp, "vip-manager.log"), "w")
        vm = subprocess.Popen(nsx(
            "vip-manager", "--ip", VIP, "--netmask", "24", "--interface", "vip0",
            "--trigger-key", KEY, "--trigger-value", "pg-0", "--dcs-type", "etcd",
            "--dcs-endpoints", ",".join("http://%s:2379" % h for h in hosts),
            "--interval", "200"), stdout=vlog, stderr=subprocess.STDOUT)
        vlog.close()
        procs.append(vm)

        def vmlog():
            with open(os.path.join(tmp, "vip-manager.log")) as f:
                return f.read()[-3000:]
        # vip-manager has read the key (pg-1: not us) before we hand over
        ok(wait_for(lambda: "desired false" in vmlog() or vm.poll() is not None, 15) and
           vm.poll() is None and not vip_present(),
           "vip-manager runs, reads the key naming another node, holds no VIP", vmlog())
        ok(put_leader(hosts[1], "pg-0"), "leader key set to this node (via another member)")
        ok(wait_for(vip_present, 15), "VIP appears on the interface", vmlog())
        ok(put_leader(hosts[2], "pg-2"), "leader key changed to another node")
        ok(wait_for(lambda: not vip_present(), 15), "VIP disappears from the interface",
           vmlog())
        ok(put_leader(hosts[0], "pg-0"), "leader key back to this node")
        ok(wait_for(vip_present, 15), "VIP appears again", vmlog())
        ok(all(p.poll() is None for p in procs), "DCS members and vip-manager still running")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        sh("ip", "netns", "del", NS)
        shutil.rmtree(tmp, ignore_errors=True)
    done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
