#!/usr/bin/env python3
"""netperf harness: real QEMU guests through the switch under test.

Boots 2 x G guests (Debian kernel + busybox + netperf, scripts/build-guest.sh)
once, as vhost-user *servers* (QEMU listens, the switch connects), so the
same guests stay up while switches and topologies change under them:

  one-host   one switch, G pairs a_i -> b_i (netperf from a_i to b_i)
  two-host   two vswitchd instances in network namespaces "A" and "B", each
             with a team of two veth uplinks into a "physical switch"
             namespace (a Linux bridge; the members of each side are
             bonded there when the kernel has the bonding module); the a_i
             guests on A, the b_i on B; netperf a_i -> b_i and b_i -> a_i at
             the same time; once per teaming policy (--policies), with the
             bytes each uplink of A carried

Switches: `vswitch` (vswitchd) and `ovs` (Open vSwitch with DPDK, netdev
datapath, NORMAL action; one-host only); with both, the summary prints
ovs / vswitch ratios from the same run and the same guests.

Tests: TCP_STREAM, TCP_RR (transactions/s, mean/p50/p90/p99 latency),
UDP_STREAM (sent and received Mbit/s); all pairs of a test start together
(commands go out over the guests' serial consoles at once).
--confidence/--iterations pass netperf's -I/-i through.

Output: a table on stdout; results.json, results.txt and chart.svg in
--out. A progress line on stderr says which step runs and the time left.
Ctrl-C (or SIGTERM) tears everything down: guests, switches, namespaces.

Run through benches/netperf.sh (builds vswitchd in release and the guest).
Needs root, qemu-system-x86_64, ip, ethtool; ovs needs
openvswitch-switch-dpdk and hugepages (scripts/install-deps.sh has all).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from svg_chart import hbar_panels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = ("TCP_STREAM", "TCP_RR", "UDP_STREAM")
SELECTORS = {
    "TCP_STREAM": ["THROUGHPUT"],
    "UDP_STREAM": ["LOCAL_SEND_THROUGHPUT", "REMOTE_RECV_THROUGHPUT"],
    "TCP_RR": ["THROUGHPUT", "MEAN_LATENCY", "P50_LATENCY", "P90_LATENCY", "P99_LATENCY"],
}
CONFIDENCE = ["CONFIDENCE_LEVEL", "CONFIDENCE_INTERVAL", "CONFIDENCE_ITERATION"]
# The headline number of each test and its unit.
HEADLINE = {
    "TCP_STREAM": ("THROUGHPUT", "Mbit/s"),
    "UDP_STREAM": ("REMOTE_RECV_THROUGHPUT", "Mbit/s"),
    "TCP_RR": ("THROUGHPUT", "trans/s"),
}
OVS_DIR = "/usr/lib/openvswitch-switch-dpdk"


class Prereq(Exception):
    """A missing prerequisite, with how to get it."""


# ---------------------------------------------------------------- progress


class Progress:
    """One status line on stderr: step, detail, time left."""

    def __init__(self, quiet=False):
        self.tty = sys.stderr.isatty() and not quiet
        self.quiet = quiet
        self.lock = threading.Lock()
        self.step = ""
        self.detail = ""
        self.deadline = None
        self.started = time.monotonic()
        self.last_plain = 0.0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)
        self.thread.start()

    def set(self, step, detail="", seconds=None):
        with self.lock:
            self.step, self.detail = step, detail
            self.deadline = time.monotonic() + seconds if seconds else None
        self._draw(force=True)

    def log(self, msg):
        with self.lock:
            if self.tty:
                sys.stderr.write("\r\033[K")
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()
        self._draw(force=True)

    def _line(self):
        el = time.monotonic() - self.started
        left = ""
        if self.deadline:
            left = f", ~{max(0, self.deadline - time.monotonic()):.0f} s left"
        return f"[{el:5.0f} s] {self.step}: {self.detail}{left}"

    def _draw(self, force=False):
        if self.quiet:
            return
        with self.lock:
            line = self._line()
            if self.tty:
                sys.stderr.write("\r\033[K" + line[:200])
                sys.stderr.flush()
            elif force or time.monotonic() - self.last_plain > 15:
                self.last_plain = time.monotonic()
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def _tick(self):
        while not self.stop_ev.wait(1.0):
            if self.tty:
                self._draw()

    def close(self):
        self.stop_ev.set()
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


# ---------------------------------------------------------------- helpers


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[:400]}")
    return r


def ns_exec(ns, cmd):
    return (["ip", "netns", "exec", ns] if ns else []) + cmd


def read_int(path, ns=None):
    r = run(ns_exec(ns, ["cat", path]), check=False)
    try:
        return int(r.stdout.strip())
    except ValueError:
        return 0


def check_prereqs(args):
    if os.geteuid() != 0:
        raise Prereq("run as root (network namespaces, veths, hugepages)")
    need = {
        "qemu-system-x86_64": "qemu-system-x86 (from bookworm-backports)",
        "ip": "iproute2",
        "ethtool": "ethtool",
        "netperf": "netperf (Debian non-free; copied into the guest image)",
    }
    if "ovs" in args.switches:
        need.update({"ovsdb-server": "openvswitch-switch-dpdk", "ovs-vsctl": "openvswitch-switch-dpdk",
                     "ovsdb-tool": "openvswitch-switch-dpdk"})
    missing = [f"{c} (package {p})" for c, p in need.items() if not shutil.which(c)]
    if "ovs" in args.switches and not os.access(f"{OVS_DIR}/ovs-vswitchd-dpdk", os.X_OK):
        missing.append(f"{OVS_DIR}/ovs-vswitchd-dpdk (package openvswitch-switch-dpdk)")
    if "vswitch" in args.switches and not (args.vswitchd and os.access(args.vswitchd, os.X_OK)):
        missing.append(f"vswitchd binary {args.vswitchd!r} (cargo build --release -p vswitch)")
    if not os.path.exists("/usr/share/qemu/qboot.rom"):
        missing.append("/usr/share/qemu/qboot.rom (package qemu-system-data)")
    if missing:
        raise Prereq("missing: " + "; ".join(missing) + ". Install with: sudo scripts/install-deps.sh")


# ---------------------------------------------------------------- guests


class Guest:
    """A QEMU guest running guest/init in agent mode, driven over its
    serial console (a Unix socket; everything it prints also goes to a log)."""

    def __init__(self, lab, name, mac, ip, mem_mb):
        self.lab, self.name, self.mac, self.ip = lab, name, mac, ip
        self.addr = ip.split("/")[0]
        self.mem_mb = mem_mb
        self.vhost = os.path.join(lab.dir, f"{name}.vhost.sock")
        self.serial = os.path.join(lab.dir, f"{name}.serial.sock")
        self.log = os.path.join(lab.dir, f"{name}.console.log")
        self.proc = None
        self.sock = None
        self.ready = threading.Event()
        self.cond = threading.Condition()
        self.out = {}
        self.done = {}
        self.next_id = 1

    def start(self, image, accel):
        cmdline = f"console=ttyS0 panic=-1 quiet vs.ip={self.ip} vs.agent=1"
        cmd = [
            "qemu-system-x86_64", "-accel", accel, "-smp", "1", "-m", f"{self.mem_mb}M",
            "-display", "none", "-no-reboot", "-nodefaults",
            "-chardev", f"socket,id=ser0,path={self.serial},server=on,wait=off,logfile={self.log}",
            "-serial", "chardev:ser0",
            "-bios", "/usr/share/qemu/qboot.rom",
            "-object", f"memory-backend-memfd,id=mem,size={self.mem_mb}M,share=on",
            "-machine", "pc,memory-backend=mem",
            "-kernel", os.path.join(image, "vmlinux"),
            "-initrd", os.path.join(image, "initramfs.cpio.gz"),
            "-append", cmdline,
            "-chardev", f"socket,id=c0,path={self.vhost},server=on,wait=off",
            "-netdev", "vhost-user,id=n0,chardev=c0",
            "-device", f"virtio-net-pci,netdev=n0,mac={self.mac}",
        ]
        err = open(os.path.join(self.lab.dir, f"{self.name}.qemu-stderr"), "w")
        self.proc = self.lab.spawn(cmd, stderr=err)
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.serial)
                self.sock = s
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    return
                time.sleep(0.05)
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                self._line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _line(self, line):
        i = line.find("VSG ")
        if i < 0:
            return
        words = line[i + 4:].split(" ", 2)
        if words[0] == "agent-ready":
            self.ready.set()
        elif words[0] == "out" and len(words) >= 2:
            with self.cond:
                self.out.setdefault(words[1], []).append(words[2] if len(words) > 2 else "")
        elif words[0] == "done" and len(words) >= 3:
            m = re.match(r"rc=(\d+)", words[2])
            with self.cond:
                self.done[words[1]] = int(m.group(1)) if m else -1
                self.cond.notify_all()

    def console_tail(self, n=15):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def submit(self, command):
        if "\n" in command:
            raise ValueError("one line per command")
        if self.sock is None:
            raise RuntimeError(f"guest {self.name}: no serial console connection:\n{self.console_tail()}")
        cid = str(self.next_id)
        self.next_id += 1
        try:
            self.sock.sendall(f"{cid} {command}\n".encode())
        except OSError as e:
            raise RuntimeError(f"guest {self.name}: serial console: {e}") from e
        return cid

    def wait(self, cid, timeout, alive=None):
        """The exit status and output lines of command `cid`; `alive`
        (checked every second) raises when the switch died meanwhile."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while cid not in self.done:
                if alive:
                    alive()
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"guest {self.name}: command {cid} got no answer in {timeout:.0f} s; "
                                       f"console:\n{self.console_tail()}")
                self.cond.wait(min(left, 1.0))
            return self.done[cid], self.out.get(cid, [])


def probe_kvm(image, workdir):
    """True when a guest really boots under KVM here (some hosts expose a
    /dev/kvm that hangs ordinary kernels)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    log = os.path.join(workdir, "kvm-probe.log")
    p = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "kvm", "-m", "256M", "-display", "none", "-nodefaults",
         "-serial", f"file:{log}", "-bios", "/usr/share/qemu/qboot.rom",
         "-kernel", os.path.join(image, "vmlinux"), "-initrd", os.path.join(image, "initramfs.cpio.gz"),
         "-append", "console=ttyS0 quiet panic=-1", "-no-reboot"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and p.poll() is None:
        try:
            if "VSG booted" in open(log, errors="replace").read():
                ok = True
                break
        except OSError:
            pass
        time.sleep(0.2)
    p.kill()
    p.wait()
    return ok


# ---------------------------------------------------------------- the lab


class Lab:
    """Everything a run creates, torn down in reverse order."""

    def __init__(self, workdir):
        self.dir = workdir
        self.procs = []
        self.namespaces = []
        self.cleanups = []

    def spawn(self, cmd, stderr=None, stdout=None, env=None):
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout or subprocess.DEVNULL,
                             stderr=stderr or subprocess.DEVNULL, start_new_session=True, env=env)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=10):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def netns(self, name):
        run(["ip", "netns", "del", name], check=False)
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(ns_exec(name, ["ip", "link", "set", "lo", "up"]))
        return name

    def teardown(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # keep tearing down
                print(f"teardown: {e}", file=sys.stderr)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        self.namespaces.clear()


def quiet_veth(ns, dev):
    # Offloads on a veth produce super-frames and partial checksums no
    # physical wire carries.
    run(ns_exec(ns, ["ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]),
        check=False)


# ---------------------------------------------------------------- switches


def vswitch_yaml(ports, uplinks=(), policy=None, driver="af-xdp"):
    y = ["switches:", "  - name: sw0", "    ports:"]
    for name, sock in ports:
        y += [f"      - name: {name}", "        mode: client", f"        socket: {sock}"]
    if uplinks:
        y.append("    uplinks:")
        y += [f"      - {{ name: {u}, driver: {driver} }}" for u in uplinks]
        y += ["    teams:", "      - name: team0", f"        policy: {policy}",
              f"        active: [{', '.join(uplinks)}]", "        failback: true",
              "        notify-switches: true"]
    return "\n".join(y) + "\n"


class Vswitchd:
    def __init__(self, lab, args, name, guests, ns=None, uplinks=(), policy=None):
        self.lab, self.name, self.ns = lab, name, ns
        self.rundir = os.path.join(lab.dir, f"run-{name}")
        os.makedirs(self.rundir, exist_ok=True)
        cfg = os.path.join(lab.dir, f"{name}.yaml")
        with open(cfg, "w") as f:
            f.write(vswitch_yaml([(g.name, g.vhost) for g in guests], uplinks, policy, args.uplink_driver))
        self.log = os.path.join(lab.dir, f"{name}.log")
        logf = open(self.log, "a")
        cpu = args.switch_cpu_b if name.startswith("B-") else args.switch_cpu
        cmd = ns_exec(ns, [args.vswitchd, "--config", cfg, "--runtime-dir", self.rundir,
                           "--pmd-cores", str(cpu), "--idle", args.idle])
        self.proc = lab.spawn(cmd, stdout=logf, stderr=logf)
        self.uplinks = list(uplinks)

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"vswitchd {self.name} exited ({self.proc.returncode}):\n{tail(self.log)}")

    def stop(self):
        self.lab.stop(self.proc)


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Ovs:
    """A private Open vSwitch with DPDK: its own ovsdb and run directory,
    hugepages for DPDK, one netdev bridge with a dpdkvhostuserclient port
    per guest (the guests are the vhost-user servers), NORMAL action."""

    def __init__(self, lab, args, guests):
        self.lab = lab
        d = os.path.join(lab.dir, "ovs")
        os.makedirs(d, exist_ok=True)
        self.env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d, OVS_SYSCONFDIR=d)
        self.db_sock = f"unix:{d}/db.sock"
        self.dir = d
        hugepages(lab, args.ovs_hugepages)
        db = os.path.join(d, "conf.db")
        run(["ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"])
        cpu = str(args.switch_cpu)
        self.dbp = lab.spawn(["taskset", "-c", cpu, "ovsdb-server", db, f"--remote=punix:{d}/db.sock",
                              "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                              f"--pidfile={d}/ovsdb-server.pid", f"--log-file={d}/ovsdb-server.log"],
                             # OVS_RUNDIR: its control socket goes here, not to
                             # /run/openvswitch (absent where the system OVS
                             # never started).
                             env=self.env)
        wait_for(lambda: os.path.exists(f"{d}/db.sock"), 10, "ovsdb-server socket")
        mem = str(args.ovs_hugepages * 2)
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                   "other_config:dpdk-init=true",
                   f"other_config:dpdk-lcore-mask={1 << args.switch_cpu:#x}",
                   f"other_config:pmd-cpu-mask={1 << args.switch_cpu:#x}",
                   f"other_config:dpdk-socket-mem={mem}", f"other_config:dpdk-socket-limit={mem}",
                   "other_config:dpdk-extra=--no-pci",
                   # OVS's own idle mode (3.1+): the PMD sleeps up to this
                   # long per empty iteration; 0 busy-polls.
                   f"other_config:pmd-maxsleep={args.ovs_pmd_maxsleep}")
        self.log = os.path.join(d, "ovs-vswitchd.log")
        self.vsp = lab.spawn(["taskset", "-c", cpu, f"{OVS_DIR}/ovs-vswitchd-dpdk", self.db_sock,
                              f"--pidfile={d}/ovs-vswitchd.pid", f"--log-file={self.log}"],
                             stderr=open(os.path.join(d, "ovs-vswitchd.stderr"), "w"), env=self.env)
        self.vsctl("--timeout=60", "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
        for g in guests:
            self.vsctl("--timeout=30", "add-port", "br0", g.name, "--", "set", "Interface", g.name,
                       "type=dpdkvhostuserclient", f"options:vhost-server-path={g.vhost}")

    def vsctl(self, *a):
        r = run(["ovs-vsctl", f"--db={self.db_sock}", *a], check=False, env=self.env)
        if r.returncode != 0:
            raise RuntimeError(f"ovs-vsctl {' '.join(a)}: {r.stderr.strip()}\n{tail(self.log)}")
        return r.stdout

    def check_alive(self):
        if self.vsp.poll() is not None:
            raise RuntimeError(f"ovs-vswitchd exited ({self.vsp.returncode}):\n{tail(self.log)}")

    def stop(self):
        self.lab.stop(self.vsp, 20)
        self.lab.stop(self.dbp)


def hugepages(lab, pages):
    """Reserves `pages` more 2 MiB pages (and mounts hugetlbfs) for DPDK;
    gives them back at teardown."""
    nr = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
    if not os.path.ismount("/dev/hugepages"):
        os.makedirs("/dev/hugepages", exist_ok=True)
        run(["mount", "-t", "hugetlbfs", "nodev", "/dev/hugepages"])
        lab.cleanups.append(lambda: run(["umount", "/dev/hugepages"], check=False))
    before = int(open(nr).read())
    with open(nr, "w") as f:
        f.write(str(before + pages))
    got = int(open(nr).read())
    if got < before + pages:
        raise Prereq(f"asked for {pages} hugepages of 2 MiB, the kernel gave {got - before}")

    def give_back():
        with open(nr, "w") as f:
            f.write(str(before))
    lab.cleanups.append(give_back)


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


# ---------------------------------------------------------------- netperf


def netperf_cmd(test, peer, args):
    sel = SELECTORS[test] + (CONFIDENCE if args.confidence else [])
    cmd = ["netperf", "-H", peer, "-t", test, "-l", str(args.len), "-P", "0"]
    if args.confidence:
        cmd += ["-I", args.confidence, "-i", args.iterations]
    cmd += ["--", "-o", ",".join(sel)]
    if test == "UDP_STREAM":
        cmd += ["-m", str(args.udp_size)]
    return " ".join(cmd), sel


def parse_netperf(lines, sel):
    for line in reversed(lines):
        parts = line.strip().split(",")
        if len(parts) == len(sel):
            try:
                return {k: float(v) for k, v in zip(sel, parts)}
            except ValueError:
                continue
    return None


def run_streams(progress, label, streams, tests, args, alive, counters=None):
    """Runs each test on every (client, server) stream at once."""
    out = []
    for test in tests:
        iters = int(args.iterations.split(",")[0]) if args.confidence else 1
        budget = args.len * iters + 60
        progress.set(label, f"{test}, {len(streams)} streams", args.len * iters + 3)
        before = counters() if counters else None
        sel = None
        cids = []
        for c, s in streams:
            cmd, sel = netperf_cmd(test, s.addr, args)
            cids.append(c.submit(cmd))
        results = []
        for (c, s), cid in zip(streams, cids):
            rc, lines = c.wait(cid, budget, alive)
            vals = parse_netperf(lines, sel)
            if rc != 0 or vals is None:
                raise RuntimeError(f"{label} {test} {c.name} -> {s.name}: netperf rc={rc}: "
                                   f"{' | '.join(lines)[:300]}")
            results.append({"client": c.name, "server": s.name, **vals})
        key, unit = HEADLINE[test]
        entry = {"test": test, "unit": unit, "headline": key, "streams": results,
                 "aggregate": sum(r[key] for r in results)}
        if counters:
            after = counters()
            entry["uplinks"] = {m: {k: after[m][k] - before[m][k] for k in after[m]} for m in after}
        out.append(entry)
        progress.log(f"  {label:32} {test:10} aggregate {entry['aggregate']:10.1f} {unit}")
    return out


def wait_reachable(progress, label, streams, timeout, alive):
    progress.set(label, "waiting for every pair to answer ping", timeout)
    cids = []
    for c, s in streams:
        cids.append(c.submit(
            f"n=0; while [ $n -lt {int(timeout)} ]; do ping -c1 -W1 {s.addr} >/dev/null 2>&1 && "
            f"{{ echo reachable; break; }}; n=$((n+1)); done"))
    for (c, s), cid in zip(streams, cids):
        _, lines = c.wait(cid, timeout + 30, alive)
        if "reachable" not in lines:
            raise RuntimeError(f"{label}: {c.name} cannot reach {s.name} ({s.addr}) within {timeout} s")


# ---------------------------------------------------------------- topologies


def one_host(lab, args, progress, switch, a, b):
    guests = a + b
    label = f"{switch} one-host"
    progress.set(label, "starting the switch")
    sw = Vswitchd(lab, args, "one-host", guests) if switch == "vswitch" else Ovs(lab, args, guests)
    try:
        streams = list(zip(a, b))
        wait_reachable(progress, label, streams, args.reach_timeout, sw.check_alive)
        tests = run_streams(progress, label, streams, args.tests, args, sw.check_alive)
        sw.check_alive()
    finally:
        sw.stop()
    return {"switch": switch, "topology": "one-host", "policy": None, "tests": tests}


def two_host_net(lab):
    """Namespaces A, B (the hosts) and phys (a bridge as the physical
    switch); each host's uplinks u0/u1 are veths into phys (pa0.., pb0..)."""
    tag = f"np{os.getpid() % 100000}"
    A, B, P = lab.netns(f"{tag}-A"), lab.netns(f"{tag}-B"), lab.netns(f"{tag}-phys")
    run(ns_exec(P, ["ip", "link", "add", "br0", "type", "bridge"]))
    bonded = run(["modprobe", "bonding"], check=False).returncode == 0
    for ns, side in ((A, "a"), (B, "b")):
        for i in range(2):
            dev, peer = f"u{i}", f"p{side}{i}"
            run(["ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", peer, "netns", P])
            quiet_veth(ns, dev)
            quiet_veth(P, peer)
            run(ns_exec(ns, ["ip", "link", "set", dev, "up"]))
    for side in ("a", "b"):
        members = [f"p{side}0", f"p{side}1"]
        if bonded:
            # A static EtherChannel (what ip-hash needs from the physical
            # switch; port-id is happy with it too).
            bond = f"bond{side}"
            r = run(ns_exec(P, ["ip", "link", "add", bond, "type", "bond", "mode", "balance-xor",
                                "xmit_hash_policy", "layer2+3"]), check=False)
            if r.returncode == 0:
                for m in members:
                    run(ns_exec(P, ["ip", "link", "set", m, "master", bond]))
                members = [bond]
            else:
                bonded = False
        for m in members:
            run(ns_exec(P, ["ip", "link", "set", m, "master", "br0"]))
            run(ns_exec(P, ["ip", "link", "set", m, "up"]))
        for m in (f"p{side}0", f"p{side}1"):
            run(ns_exec(P, ["ip", "link", "set", m, "up"]))
    run(ns_exec(P, ["ip", "link", "set", "br0", "up"]))
    return A, B, P, bonded


def two_host(lab, args, progress, net, policy, a, b):
    A, B, _, _ = net
    label = f"vswitch two-host {policy}"
    progress.set(label, "starting switches A and B")
    swa = Vswitchd(lab, args, f"A-{policy}", a, ns=A, uplinks=("u0", "u1"), policy=policy)
    swb = Vswitchd(lab, args, f"B-{policy}", b, ns=B, uplinks=("u0", "u1"), policy=policy)

    def alive():
        swa.check_alive()
        swb.check_alive()

    def counters():
        return {m: {k: read_int(f"/sys/class/net/{m}/statistics/{k}", A) for k in ("tx_bytes", "rx_bytes")}
                for m in ("u0", "u1")}
    try:
        streams = list(zip(a, b)) + list(zip(b, a))
        wait_reachable(progress, label, streams, args.reach_timeout, alive)
        tests = run_streams(progress, label, streams, args.tests, args, alive, counters)
        alive()
        # vswitchd says so when an interface refuses XDP.
        driver = args.uplink_driver
        if "af-xdp refused" in tail(swa.log, 200):
            driver = "af-packet (af-xdp refused)"
    finally:
        swa.stop()
        swb.stop()
    return {"switch": "vswitch", "topology": "two-host", "policy": policy, "uplinks": driver,
            "tests": tests}


# ---------------------------------------------------------------- report


def fmt_row(cols, widths):
    return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))


def report(results, meta):
    ovs = ""
    if meta["ovs_pmd_maxsleep_us"] is not None:
        ovs = f"; OVS pmd-maxsleep {meta['ovs_pmd_maxsleep_us']} us"
    lines = [f"netperf harness, {meta['date']}, commit {meta['commit']}, {meta['machine']}; guests: "
             f"-accel {meta['accel']}, {meta['guest_mem_mb']} MiB, 1 vCPU each, unpinned; "
             f"switch PMD on CPU {meta['switch_cpu']} (two-host: A on {meta['switch_cpu']}, B on "
             f"{meta['switch_cpu_b']}; vswitchd --idle {meta['idle']}{ovs}); "
             f"{meta['len_s']} s per test", ""]
    for r in results:
        title = f"{r['switch']} {r['topology']}" + (f" ({r['policy']})" if r["policy"] else "")
        lines.append(f"== {title}")
        for t in r["tests"]:
            key, unit = HEADLINE[t["test"]]
            if t["test"] == "TCP_RR":
                hdr = ["stream", "trans/s", "mean us", "p50 us", "p90 us", "p99 us"]
                rows = [[f"{s['client']}->{s['server']}", f"{s['THROUGHPUT']:.0f}", f"{s['MEAN_LATENCY']:.0f}",
                         f"{s['P50_LATENCY']:.0f}", f"{s['P90_LATENCY']:.0f}", f"{s['P99_LATENCY']:.0f}"]
                        for s in t["streams"]]
                rows.append(["aggregate", f"{t['aggregate']:.0f}", "", "", "", ""])
            elif t["test"] == "UDP_STREAM":
                hdr = ["stream", "sent Mbit/s", "received Mbit/s"]
                rows = [[f"{s['client']}->{s['server']}", f"{s['LOCAL_SEND_THROUGHPUT']:.1f}",
                         f"{s['REMOTE_RECV_THROUGHPUT']:.1f}"] for s in t["streams"]]
                rows.append(["aggregate", f"{sum(s['LOCAL_SEND_THROUGHPUT'] for s in t['streams']):.1f}",
                             f"{t['aggregate']:.1f}"])
            else:
                hdr = ["stream", "Mbit/s"]
                rows = [[f"{s['client']}->{s['server']}", f"{s['THROUGHPUT']:.1f}"] for s in t["streams"]]
                rows.append(["aggregate", f"{t['aggregate']:.1f}"])
            if args_confidence(t):
                hdr.append("CI +-%")
                for row, s in zip(rows, t["streams"]):
                    row.append(f"{s.get('CONFIDENCE_INTERVAL', 0):.1f}")
                rows[-1].append("")
            widths = [max(len(str(x[i])) for x in [hdr] + rows) for i in range(len(hdr))]
            lines.append(f"-- {t['test']}")
            lines.append(fmt_row(hdr, widths))
            lines += [fmt_row(row, widths) for row in rows]
            if "uplinks" in t:
                parts = [f"{m}: tx {v['tx_bytes'] / 1e6:.1f} MB, rx {v['rx_bytes'] / 1e6:.1f} MB"
                         for m, v in sorted(t["uplinks"].items())]
                lines.append("   uplinks of A: " + "; ".join(parts))
        lines.append("")
    # ovs / vswitch ratios where both ran the same topology.
    by = {(r["switch"], r["topology"], r["policy"]): r for r in results}
    for (sw, topo, pol), r in by.items():
        if sw != "ovs" or ("vswitch", topo, pol) not in by:
            continue
        v = by[("vswitch", topo, pol)]
        lines.append(f"== vswitch / ovs, {topo} (aggregate)")
        for tv, to in zip(v["tests"], r["tests"]):
            ratio = tv["aggregate"] / to["aggregate"] if to["aggregate"] else float("nan")
            lines.append(f"   {tv['test']:10} vswitch {tv['aggregate']:10.1f}  ovs {to['aggregate']:10.1f}  "
                         f"{tv['unit']:8} ratio {ratio:.2f}")
        lines.append("")
    return "\n".join(lines)


def args_confidence(t):
    return any("CONFIDENCE_INTERVAL" in s for s in t["streams"])


def svg_chart(results):
    """Horizontal bars per test: every stream and the aggregate of each run."""
    panels = []
    for test in TESTS:
        rows = []
        for r in results:
            title = f"{r['switch']} {r['topology']}" + (f" {r['policy']}" if r["policy"] else "")
            for t in r["tests"]:
                if t["test"] != test:
                    continue
                key = t["headline"]
                for s in t["streams"]:
                    rows.append((f"{title}: {s['client']}->{s['server']}", s[key], False))
                rows.append((f"{title}: aggregate", t["aggregate"], True))
        if rows:
            panels.append((f"{test} ({HEADLINE[test][1]})", rows))
    return hbar_panels(panels)


# ---------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vswitchd", help="the vswitchd binary")
    ap.add_argument("--switches", default="vswitch", help="vswitch,ovs (ovs: one-host only)")
    ap.add_argument("--topologies", default="one-host,two-host")
    ap.add_argument("--policies", default="port-id,ip-hash", help="teaming policies for two-host")
    ap.add_argument("--guests-per-host", type=int, default=4,
                    help="G: one-host runs G pairs, two-host G guests per host")
    ap.add_argument("--tests", default=",".join(TESTS))
    ap.add_argument("--len", type=int, default=10, help="seconds per netperf test (-l)")
    ap.add_argument("--confidence", metavar="LEVEL,WIDTH",
                    help="netperf -I (e.g. 99,5): confidence level and interval width in %%")
    ap.add_argument("--iterations", default="10,3", metavar="MAX,MIN", help="netperf -i with --confidence")
    ap.add_argument("--udp-size", type=int, default=1472, help="UDP_STREAM message size (-m)")
    ap.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    ap.add_argument("--guest-mem", type=int, default=256, help="MiB per guest")
    ap.add_argument("--switch-cpu", type=int, default=1, help="CPU of the switch's PMD thread(s)")
    ap.add_argument("--switch-cpu-b", type=int,
                    help="two-host: CPU of server B's PMD (default: another CPU than A's if there is one)")
    ap.add_argument("--idle", default="adaptive", choices=("adaptive", "busy"),
                    help="vswitchd idle policy (busy starves emulated guests on small machines)")
    ap.add_argument("--uplink-driver", default="af-xdp", choices=("af-xdp", "af-packet"),
                    help="two-host: how vswitchd drives its veth uplinks")
    ap.add_argument("--ovs-pmd-maxsleep", type=int, metavar="US",
                    help="OVS pmd-maxsleep; default 0 with --idle busy, 500 with adaptive")
    ap.add_argument("--ovs-hugepages", type=int, default=512, help="2 MiB pages for OVS/DPDK")
    ap.add_argument("--reach-timeout", type=int, default=90, help="seconds for every pair to ping")
    ap.add_argument("--boot-timeout", type=int, default=300)
    ap.add_argument("--guest-dir", default=os.environ.get("VSWITCH_GUEST_DIR", os.path.join(REPO, "target/guest")))
    ap.add_argument("--out", default=os.path.join(REPO, "target/netperf"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    a = ap.parse_args(argv)
    a.switches = [s for s in a.switches.split(",") if s]
    a.topologies = [s for s in a.topologies.split(",") if s]
    a.policies = [s for s in a.policies.split(",") if s]
    a.tests = [s for s in a.tests.split(",") if s]
    if a.switch_cpu_b is None:
        a.switch_cpu_b = (a.switch_cpu + 1) % (os.cpu_count() or 1)
    if a.ovs_pmd_maxsleep is None:
        a.ovs_pmd_maxsleep = 0 if a.idle == "busy" else 500
    for s in a.switches:
        if s not in ("vswitch", "ovs"):
            ap.error(f"unknown switch {s!r}: vswitch or ovs")
    for t in a.topologies:
        if t not in ("one-host", "two-host"):
            ap.error(f"unknown topology {t!r}: one-host or two-host")
    for t in a.tests:
        if t not in TESTS:
            ap.error(f"unknown test {t!r}: one of {', '.join(TESTS)}")
    if a.guests_per_host < 1:
        ap.error("--guests-per-host must be at least 1")
    return a


def main(argv):
    args = parse_args(argv)
    try:
        check_prereqs(args)
    except Prereq as e:
        print(f"netperf harness: {e}", file=sys.stderr)
        return 2
    progress = Progress(quiet=args.quiet)
    progress.set("guest image", "scripts/build-guest.sh")
    r = run(["bash", os.path.join(REPO, "scripts/build-guest.sh")], check=False,
            env=dict(os.environ, VSWITCH_GUEST_DIR=args.guest_dir))
    if r.returncode != 0:
        progress.close()
        print(f"netperf harness: building the guest failed:\n{r.stdout}{r.stderr}", file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="netperf-")
    lab = Lab(workdir)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    results = []
    rc = 0
    accel = args.accel
    try:
        if accel == "auto":
            progress.set("accelerator", "does a guest boot under KVM here?", 15)
            accel = "kvm" if probe_kvm(args.guest_dir, workdir) else "tcg"
        progress.log(f"guests: -accel {accel}; switch PMD on CPU {args.switch_cpu} ({args.idle}); "
                     f"guests unpinned; work dir {workdir}")
        g = args.guests_per_host
        a = [Guest(lab, f"a{i + 1}", f"52:54:00:0a:00:{i + 1:02x}", f"10.78.1.{i + 1}/16", args.guest_mem)
             for i in range(g)]
        b = [Guest(lab, f"b{i + 1}", f"52:54:00:0b:00:{i + 1:02x}", f"10.78.2.{i + 1}/16", args.guest_mem)
             for i in range(g)]
        guests = a + b
        # QEMU waits for a vhost-user backend before it boots the guest:
        # a first switch (one-host layout) holds every port while they boot.
        boot_sw = Vswitchd(lab, args, "boot", guests) if "vswitch" in args.switches else Ovs(lab, args, guests)
        for gst in guests:
            gst.start(args.guest_dir, accel)
        progress.set("booting guests", f"{len(guests)} guests", args.boot_timeout)
        deadline = time.monotonic() + args.boot_timeout
        for gst in guests:
            while not gst.ready.wait(1.0):
                if gst.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"guest {gst.name} did not come up:\n{gst.console_tail()}")
        progress.log(f"{len(guests)} guests up after {time.monotonic() - progress.started:.0f} s")
        boot_sw.stop()
        net = None
        for switch in args.switches:
            if "one-host" in args.topologies:
                results.append(one_host(lab, args, progress, switch, a, b))
            if "two-host" in args.topologies and switch == "vswitch":
                net = net or two_host_net(lab)
                if not net[3]:
                    progress.log("no bonding module here: the physical switch's ports are not bonded "
                                 "(ip-hash then moves guest MACs between its ports)")
                for policy in args.policies:
                    results.append(two_host(lab, args, progress, net, policy, a, b))
    except KeyboardInterrupt:
        progress.log("interrupted: tearing down")
        rc = 130
    except (RuntimeError, Prereq) as e:
        progress.log(f"netperf harness: {e}")
        rc = 1
    finally:
        progress.set("teardown", "guests, switches, namespaces")
        lab.teardown()
        progress.close()
    if results:
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.node()} {os.cpu_count()} CPUs {platform.release()}",
            "commit": run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.strip(),
            "accel": accel, "guest_mem_mb": args.guest_mem, "switch_cpu": args.switch_cpu, "switch_cpu_b": args.switch_cpu_b, "idle": args.idle,
            "ovs_pmd_maxsleep_us": args.ovs_pmd_maxsleep if "ovs" in args.switches else None,
            "len_s": args.len, "confidence": args.confidence, "guests_per_host": args.guests_per_host,
            "complete": rc == 0,
        }
        text = report(results, meta)
        print(text)
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"meta": meta, "runs": results}, f, indent=1)
        with open(os.path.join(args.out, "results.txt"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(args.out, "chart.svg"), "w") as f:
            f.write(svg_chart(results))
        print(f"written: {args.out}/results.json, results.txt, chart.svg", file=sys.stderr)
    if args.keep or rc != 0:
        print(f"logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
