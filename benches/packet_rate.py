#!/usr/bin/env python3
"""Packet-rate harness: frames circulate generator -> switch -> generator.

The generator is `dpdk-testpmd` with two virtio-user ports on the switch's
vhost-user sockets, io forwarding in the default paired topology, primed
with `start tx_first N`: port 0 sends to MAC1, port 1 to MAC0, and whatever
the switch delivers on one port goes out of the other unchanged, so a
learning switch always sees the same source MAC on the same port.

Switches under test:
  vswitch       vswitchd, built-in default (L2 learning, access VLAN 1)
  vswitch-vlan  vswitchd, both ports in access VLAN 100 (a YAML file)
  vswitch-team  one vswitchd, two switches: sw-a has generator port 0 and
                team ta, sw-b has generator port 1 and team tb; ta's two
                members are veths whose peers are tb's members (in a
                network namespace of the harness, offloads off). Every
                frame crosses the kernel's veth path on its way
                (vhost -> sw-a -> ta -> veth -> tb -> sw-b -> vhost), so
                expect it far below the others: it shows what a team of
                kernel uplinks costs, not the vhost-user path. Policy
                --team-policy (port-id), uplinks --team-driver (af-xdp;
                the row says AF_PACKET if vswitchd had to fall back).
                Two PMD threads (one per switch) share the switch CPU:
                its "forwarding thread" CPU is their sum.
  ovs           Open vSwitch with DPDK (openvswitch-switch-dpdk's
                ovs-vswitchd-dpdk, called by path): a private ovsdb-server
                and ovs-vswitchd with their database and run directory in
                the harness's temp dir, dpdk-init, pmd-cpu-mask and
                dpdk-lcore-mask = the switch CPU, a netdev bridge with two
                dpdkvhostuser ports (OVS is the server), the default
                NORMAL flow (learning). DPDK needs hugepages here (OVS 3.1
                always passes --in-memory, which refuses --no-huge): the
                harness mounts hugetlbfs if needed, reserves
                --ovs-hugepages 2 MiB pages on top of what is there, caps
                OVS with dpdk-socket-mem/-limit, and gives them back.
  testpmd       dpdk-testpmd with two net_vhost ports, io forwarding:
                no learning, no VLAN, the ceiling on this machine

Placement is explicit: the switch (all its threads) on --switch-cpu, the
generator (all its threads) on --gen-cpu; vswitchd runs `--pmd-cores
<switch-cpu> --idle busy`, OVS runs under taskset with both masks on the
switch CPU. The CPU time each side's forwarding thread (vswitchd pmdN,
OVS pmd-cNN/id:N, testpmd rte-worker-N) really got during the measured
window is read from /proc/<pid>/task/<tid>/schedstat, the CPU it last ran
on and every thread's allowed CPUs from /proc (printed per run: which
core ran which side), and the other load on both CPUs from /proc/stat; a
run where a side got less than --min-cpu of its core is flagged and left
out of the summary (unless every run was).

The summary gives each switch's median as a ratio to testpmd's (the
ceiling) and to Open vSwitch's ("vs OVS") at the same frame size.

Rates: the generator's received frames (both ports summed: both
directions) over a timed window, after a warm-up. Frame sizes are
Ethernet frame sizes including the 4-byte FCS (RFC 2544); virtio carries
size - 4 bytes, and Gbit/s = Mpps * size * 8 (no preamble or gap).

Output: the table on stdout, and in --out packet-rate-<UTC time>.txt (the
table), packet-rate-<UTC time>.json (meta, summary rows and every run) and
chart.svg (the summary as grouped bars: frame size on x, median Mpps per
switch on the bars; overwritten by each run, like netperf.py's).

Run through benches/packet-rate.sh (it builds vswitchd in release).
Needs root (DPDK EAL), dpdk-testpmd, taskset and stdbuf; ovs needs
openvswitch-switch-dpdk, vswitch-team needs ip and ethtool (all from
scripts/install-deps.sh). testpmd and vswitchd need no hugepages
(--no-huge). Everything started is stopped by PID, and namespaces,
veths and hugepages are given back, also on Ctrl-C and on errors.
"""

import argparse
import datetime
import json
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from svg_chart import COLORS, grouped_bars

MAC0 = "02:00:00:00:00:01"
MAC1 = "02:00:00:00:00:02"
SWITCHES = ("vswitch", "vswitch-vlan", "vswitch-team", "ovs", "testpmd")
# The name of DPDK's forwarding lcore thread (22.11: rte-worker-N).
DPDK_WORKER = r"rte-worker-\d+|lcore-worker-\d+"
VSWITCH_PMD = r"pmd\d+"
# Open vSwitch's PMD thread: pmd-c<core>/id:<n> (comm is cut at 15 bytes).
OVS_PMD = r"pmd-c\d+/id:\d*"
OVS_DIR = "/usr/lib/openvswitch-switch-dpdk"
OVS_VSWITCHD = f"{OVS_DIR}/ovs-vswitchd-dpdk"
OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
HUGEPAGES_NR = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
HUGEPAGES_FREE = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
VLAN_CONFIG = """\
# packet-rate harness: both ports in access VLAN 100, so every frame is
# classified into VLAN 100, learned and looked up under it.
switches:
  - name: sw0
    port-groups:
      - name: vlan100
        vlan: 100
    ports:
      - name: vhost0
        port-group: vlan100
      - name: vhost1
        port-group: vlan100
"""

# The plain row with --queues above 1 (without it, vswitchd's built-in
# default: the same two ports, one queue pair each).
PLAIN_CONFIG = """\
switches:
  - name: sw0
    ports:
      - name: vhost0
      - name: vhost1
"""


def with_queues(config, queues):
    """`config` with `queues: N` on every port (none for 1)."""
    if queues <= 1:
        return config
    out = []
    for line in config.splitlines(keepends=True):
        out.append(line)
        if line.strip().startswith("- name: vhost"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}  queues: {queues}\n")
    return "".join(out)


def queue_args(queues):
    """testpmd's rx/tx queue counts (each queue is a stream of the one core)."""
    return [f"--rxq={queues}", f"--txq={queues}"] if queues > 1 else []


# The team row: two switches in one vswitchd joined by two veth pairs.
TEAM_CONFIG = """\
# packet-rate harness: generator port 0 -> sw-a -> team ta ={{veths}}= team tb
# -> sw-b -> generator port 1, and back.
switches:
  - name: sw-a
    ports:
      - name: vhost0
    uplinks:
      - {{ name: ta0, driver: {driver} }}
      - {{ name: ta1, driver: {driver} }}
    teams:
      - name: ta
        policy: {policy}
        active: [ta0, ta1]
  - name: sw-b
    ports:
      - name: vhost1
    uplinks:
      - {{ name: tb0, driver: {driver} }}
      - {{ name: tb1, driver: {driver} }}
    teams:
      - name: tb
        policy: {policy}
        active: [tb0, tb1]
"""

STARTED = []  # every Proc, for cleanup by PID
CLEANUPS = []  # (what, callable): namespaces, hugepages, mounts; run last first


class HarnessError(Exception):
    pass


class Proc:
    """A child process with its output collected line by line."""

    def __init__(self, name, argv, stdin=True, env=None):
        self.name = name
        self.argv = argv
        self.lines = queue.Queue()
        self.transcript = []
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
        )
        STARTED.append(self)
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def pid(self):
        return self.p.pid

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip())
        self.lines.put(None)

    def next_line(self, until):
        left = until - time.monotonic()
        if left <= 0:
            return False
        try:
            line = self.lines.get(timeout=left)
        except queue.Empty:
            return False
        if line is None:
            self.lines.put(None)
            raise HarnessError(f"{self.name} exited (rc {self.p.wait()}):\n" + self.tail())
        self.transcript.append(line)
        return line

    def expect(self, pred, timeout, what):
        until = time.monotonic() + timeout
        while True:
            line = self.next_line(until)
            if line is False:
                raise HarnessError(f"{self.name}: timed out waiting for {what}:\n" + self.tail())
            if pred(line):
                return line

    def drain(self):
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self.lines.put(None)
                return
            self.transcript.append(line)

    def tail(self, n=40):
        self.drain()
        return "\n".join(self.transcript[-n:])

    def send(self, cmd):
        self.transcript.append("> " + cmd)
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the process (by PID) and waits; SIGKILL if it lingers."""
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        return self.p.returncode


def kill_all():
    """Kills every process started (by PID), then undoes the cleanups
    (namespaces, hugepages, mounts), newest first. Idempotent."""
    for proc in STARTED:
        if proc.p.poll() is None:
            try:
                os.kill(proc.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.p.wait()
    while CLEANUPS:
        what, fn = CLEANUPS.pop()
        try:
            fn()
        except Exception as e:  # keep undoing the rest
            print(f"packet-rate: cleanup `{what}` failed: {e}", file=sys.stderr)


def cleanup_now(entry):
    """Runs one registered cleanup early (and forgets it)."""
    if entry in CLEANUPS:
        CLEANUPS.remove(entry)
        entry[1]()


def register_cleanup(what, fn):
    entry = (what, fn)
    CLEANUPS.append(entry)
    return entry


def sh(argv, check=True, env=None, timeout=60):
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if check and r.returncode != 0:
        raise HarnessError(f"`{' '.join(argv)}` failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


class Testpmd(Proc):
    """Interactive dpdk-testpmd, pinned, with its EAL prefix cleaned up."""

    def __init__(self, name, cpu, prefix, vdevs, app_args, mbufs):
        self.prefix = prefix
        argv = ["taskset", "-c", str(cpu), "stdbuf", "-oL", "-eL", "dpdk-testpmd",
                # main lcore 0 and forwarding lcore 1 both on `cpu`: the main
                # one only waits for commands.
                "--lcores", f"0@{cpu},1@{cpu}", "--main-lcore", "0",
                "--no-pci", "--no-huge", "-m", "1024", "--file-prefix", prefix]
        for v in vdevs:
            argv += ["--vdev", v]
        argv += ["--", "-i", "--nb-cores=1", f"--total-num-mbufs={mbufs}"] + app_args
        super().__init__(name, argv)

    def run(self, cmd, done=None, timeout=30):
        self.send(cmd)
        self.expect(lambda l: l.startswith("testpmd>") and l.endswith(cmd), timeout,
                    f"the echo of `{cmd}`")
        if done:
            self.expect(lambda l: done in l, timeout, f"`{done}` after `{cmd}`")

    def port_stats(self, nports=2, timeout=30):
        """`show port stats all` -> [{rx, rx_bytes, rx_missed, tx, tx_bytes, ...}]."""
        self.send("show port stats all")
        out = []
        for port in range(nports):
            self.expect(lambda l: f"NIC statistics for port {port} " in l, timeout, "port stats")
            s = {}
            for key in ("RX-packets", "RX-errors", "RX-nombuf", "TX-packets"):
                line = self.expect(lambda l: key + ":" in l, timeout, key)
                for k, v in re.findall(r"([A-Za-z-]+):\s+(\d+)", line):
                    s[k] = int(v)
            out.append(s)
        return out

    def forward_stats(self, timeout=30):
        """`stop` -> accumulated forward stats {RX-packets, RX-dropped, TX-packets, TX-dropped}."""
        self.send("stop")
        self.expect(lambda l: "Accumulated forward statistics" in l, timeout, "forward stats")
        acc = {}
        for _ in range(2):
            line = self.expect(lambda l: "-packets:" in l, timeout, "accumulated stats")
            for k, v in re.findall(r"([A-Za-z-]+):\s+(\d+)", line):
                acc[k] = int(v)
        self.expect(lambda l: l.strip() == "Done.", timeout, "end of stop")
        return acc

    def quit(self, timeout=30):
        if self.p.poll() is None:
            try:
                self.send("quit")
                self.p.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                pass
        self.stop(signal.SIGKILL)
        shutil.rmtree(os.path.join("/var/run/dpdk", self.prefix), ignore_errors=True)


def threads(pid):
    """{tid: (comm, on-cpu ns, runqueue-wait ns)} for every thread of pid."""
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"{base}/{tid}/schedstat") as f:
                run, wait, _ = (int(x) for x in f.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        out[int(tid)] = (comm, run, wait)
    return out


def cpu_ticks():
    """{cpu: (busy ticks, total ticks, steal ticks)} from /proc/stat. Steal:
    time the hypervisor ran something else on this virtual CPU."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+)\s+(.*)", line)
            if not m:
                continue
            v = [int(x) for x in m.group(2).split()]
            idle = v[3] + v[4]  # idle + iowait
            steal = v[7]
            total = sum(v[:8])  # guest time is already in user
            out[int(m.group(1))] = (total - idle - steal, total, steal)
    return out


def wait_quiet(cpus, limit_s, busy_max=0.15):
    """Waits (up to limit_s) for a second in which each of `cpus` was at most
    busy_max busy; returns (seconds waited, the last second's busy shares)."""
    start = time.monotonic()
    while True:
        a = cpu_ticks()
        # --wait-quiet 0: only a short sample of the load, no waiting.
        time.sleep(1.0 if limit_s > 0 else 0.2)
        b = cpu_ticks()
        busy = {c: round((b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]), 3) for c in cpus}
        waited = time.monotonic() - start
        if all(v <= busy_max for v in busy.values()) or waited >= limit_s:
            return round(waited, 1), busy


def vswitchctl_pmd(args, rundir):
    """vswitchd's own PMD counters through vswitchctl (None if unavailable)."""
    ctl = os.path.join(os.path.dirname(args.vswitchd), "vswitchctl")
    if not os.path.exists(ctl):
        return None
    try:
        out = subprocess.run([ctl, "--runtime-dir", rundir, "--json", "stats"], capture_output=True,
                             text=True, timeout=10)
        sw = json.loads(out.stdout)["switches"][0]
    except (subprocess.SubprocessError, ValueError, KeyError, IndexError):
        return None
    pmd = sw["pmds"][0]
    return {"iterations": pmd["iterations"], "busy_iterations": pmd["busy_iterations"],
            "rx_packets": sum(p["rx_packets"] for p in sw["ports"])}


def placement(pid):
    """{tid: (comm, CPU it last ran on, allowed CPUs)} for every thread of pid."""
    out = {}
    base = f"/proc/{pid}/task"
    try:
        tids = os.listdir(base)
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"{base}/{tid}/stat") as f:
                stat = f.read()
            with open(f"{base}/{tid}/status") as f:
                allowed = next(l.split(":", 1)[1].strip() for l in f if l.startswith("Cpus_allowed_list"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        last_cpu = int(stat[stat.rindex(")") + 2:].split()[36])  # field 39, `processor`
        out[int(tid)] = (comm, last_cpu, allowed)
    return out


def side_cpu(before, after, window_ns, pattern, where, total=False):
    """CPU share of a side's forwarding thread (named by `pattern`; with
    `total`, of all such threads together) and of the whole process over
    the window, with where the thread ran (`where`: placement())."""
    fwd = None
    matched = []
    proc_run = 0
    for tid, (comm, run, wait) in after.items():
        b = before.get(tid, (comm, 0, 0))
        d_run, d_wait = run - b[1], wait - b[2]
        proc_run += d_run
        if re.fullmatch(pattern, comm):
            matched.append({"thread": comm, "tid": tid, "run_ns": d_run, "wait_ns": d_wait})
            if fwd is None or d_run > fwd["run_ns"]:
                fwd = dict(matched[-1])
    if fwd is None:
        raise HarnessError(f"no thread named {pattern!r} among {sorted(c for c, _, _ in after.values())}")
    if total and len(matched) > 1:
        fwd["thread"] = "+".join(m["thread"] for m in matched)
        fwd["run_ns"] = sum(m["run_ns"] for m in matched)
        fwd["wait_ns"] = sum(m["wait_ns"] for m in matched)
    fwd["threads"] = len(matched)
    fwd["share"] = fwd["run_ns"] / window_ns
    fwd["runqueue_wait_share"] = fwd["wait_ns"] / window_ns
    fwd["process_share"] = proc_run / window_ns
    fwd["ran_on_cpus"] = sorted({where[m["tid"]][1] for m in matched if m["tid"] in where})
    fwd["allowed_cpus"] = sorted({where[m["tid"]][2] for m in matched if m["tid"] in where})
    # Every thread of the process, not only the forwarding one.
    fwd["process_allowed_cpus"] = sorted({a for _, _, a in where.values()})
    return fwd


def vswitchctl_json(args, rundir, *cmd):
    ctl = os.path.join(os.path.dirname(args.vswitchd), "vswitchctl")
    if not os.path.exists(ctl):
        return None
    try:
        out = subprocess.run([ctl, "--runtime-dir", rundir, "--json", *cmd], capture_output=True,
                             text=True, timeout=10)
        return json.loads(out.stdout)
    except (subprocess.SubprocessError, ValueError):
        return None


def team_members(args, rundir):
    """{team: [{name, link_up, tx_packets, rx_packets}]} from `team show`."""
    v = vswitchctl_json(args, rundir, "team", "show")
    if not v:
        return None
    try:
        return {t["name"]: [{k: m[k] for k in ("name", "link_up", "tx_packets", "rx_packets")}
                            for m in t["members"]] for t in v["teams"]}
    except (KeyError, TypeError):
        return None


class TeamLab:
    """A network namespace with two veth pairs ta0-tb0 and ta1-tb1 (offloads
    off, IPv6 off so nothing but the generator's frames crosses them)."""

    def __init__(self, tag):
        self.ns = f"pr{os.getpid()}-{tag}"[:60]
        sh(["ip", "netns", "add", self.ns])
        ns = self.ns
        self.cleanup = register_cleanup(f"ip netns del {ns}",
                                        lambda: sh(["ip", "netns", "del", ns], check=False))
        for key in ("default", "all"):
            sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"])
        for i in (0, 1):
            sh(["ip", "-n", ns, "link", "add", f"ta{i}", "type", "veth", "peer", "name", f"tb{i}"])
        for dev in ("ta0", "ta1", "tb0", "tb1"):
            # A veth should behave like a wire: full checksums, no super-frames.
            sh(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off",
                "gro", "off"])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])

    def xdp_attached(self, dev):
        out = sh(["ip", "-n", self.ns, "-d", "link", "show", dev], check=False).stdout
        return "xdp" in out

    def delete(self):
        cleanup_now(self.cleanup)


class OvsSwitch:
    """A private Open vSwitch with DPDK in `rundir`/ovs: ovsdb-server and
    ovs-vswitchd-dpdk pinned to the switch CPU, a netdev bridge br0 with
    dpdkvhostuser ports vhost0 and vhost1 (sockets in the run directory),
    the default NORMAL flow."""

    thread_pattern = OVS_PMD
    sum_threads = False

    def __init__(self, args, rundir):
        d = os.path.join(rundir, "ovs")
        os.makedirs(d)
        self.dir = d
        # OVS_RUNDIR is also where dpdkvhostuser sockets go (vhost-sock-dir).
        self.env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d, OVS_SYSCONFDIR=d)
        self.db_sock = f"unix:{d}/db.sock"
        self.log = os.path.join(d, "ovs-vswitchd.log")
        self.vs = None
        cpu = str(args.switch_cpu)
        sh(["ovsdb-tool", "create", f"{d}/conf.db", OVS_SCHEMA])
        self.db = Proc("ovsdb-server", ["taskset", "-c", cpu, "ovsdb-server", f"{d}/conf.db",
                                        f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb-server.pid",
                                        f"--log-file={d}/ovsdb-server.log", "--no-chdir", "-vconsole:warn"],
                       stdin=False, env=self.env)
        deadline = time.monotonic() + 15
        while not os.path.exists(f"{d}/db.sock"):
            if time.monotonic() > deadline or self.db.p.poll() is not None:
                raise HarnessError("ovsdb-server did not come up:\n" + self.db.tail())
            time.sleep(0.05)
        mask = f"{1 << args.switch_cpu:#x}"
        mem = str(args.ovs_hugepages * 2)
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                   f"other_config:dpdk-lcore-mask={mask}", f"other_config:pmd-cpu-mask={mask}",
                   f"other_config:dpdk-socket-mem={mem}", f"other_config:dpdk-socket-limit={mem}",
                   "other_config:dpdk-extra=--no-pci")
        self.vs = Proc("ovs-vswitchd", ["taskset", "-c", cpu, OVS_VSWITCHD, self.db_sock,
                                        f"--pidfile={d}/ovs-vswitchd.pid", f"--log-file={self.log}",
                                        "--no-chdir", "-vconsole:warn"], stdin=False, env=self.env)
        self.vsctl("--timeout=90", "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
        if self.vsctl("get", "Open_vSwitch", ".", "dpdk_initialized").strip() != "true":
            raise HarnessError("ovs-vswitchd: DPDK not initialized:\n" + self.log_tail())
        self.version = self.vsctl("get", "Open_vSwitch", ".", "dpdk_version").strip().strip('"')
        for i in (0, 1):
            self.vsctl("--timeout=30", "add-port", "br0", f"vhost{i}", "--", "set", "Interface",
                       f"vhost{i}", "type=dpdkvhostuser")
        self.socks = (f"{d}/vhost0", f"{d}/vhost1")
        self.setup = "NORMAL, dpdkvhostuser"

    @property
    def pid(self):
        return self.vs.pid

    def log_tail(self, n=30):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return self.vs.tail() if self.vs else ""

    def tail(self, n=40):
        return self.log_tail(n)

    def vsctl(self, *a):
        r = sh(["ovs-vsctl", f"--db={self.db_sock}", *a], check=False, env=self.env, timeout=120)
        if r.returncode != 0:
            dead = self.vs is not None and self.vs.p.poll() is not None
            raise HarnessError(f"ovs-vsctl {' '.join(a)}: {r.stderr.strip()}"
                               + (f" (ovs-vswitchd exited, rc {self.vs.p.returncode})" if dead else "")
                               + "\n" + self.log_tail())
        return r.stdout

    def appctl(self, *a):
        # The control socket is named after the program: ovs-vswitchd-dpdk.
        r = sh(["ovs-appctl", "-t", f"{self.dir}/ovs-vswitchd-dpdk.{self.pid}.ctl", *a], check=False,
               env=self.env, timeout=20)
        return r.stdout if r.returncode == 0 else None

    def pmd_stats(self):
        """`dpif-netdev/pmd-stats-show` as {key: number}, for the PMD thread."""
        out = self.appctl("dpif-netdev/pmd-stats-show")
        if out is None:
            return None
        stats = {}
        in_pmd = False
        for line in out.splitlines():
            if not line.startswith(" "):
                in_pmd = line.startswith("pmd thread")  # not the "main thread" section
                continue
            m = re.match(r"\s*([a-zA-Z][\w .()/-]*?):\s+([\d.]+)(?: \(([\d.]+)%\))?", line)
            if in_pmd and m:
                key = m.group(1).strip().replace(" ", "_").replace(".", "")
                stats[key] = float(m.group(2))
                if m.group(3):
                    stats[key + "_percent"] = float(m.group(3))
        return stats

    def port_stats(self):
        """Per port: OpenFlow port counters (live; the database's copy is
        refreshed only every 5 s) and the database's custom drop counters."""
        out = {}
        for i in (0, 1):
            name = f"vhost{i}"
            r = sh(["ovs-ofctl", "dump-ports", "br0", name], check=False, env=self.env)
            st = {}
            for direction, body in re.findall(r"(rx|tx) (pkts=.*)", r.stdout):
                for k, v in re.findall(r"(\w+)=(\d+)", body):
                    st[f"{direction}_{k}"] = int(v)
            text = self.vsctl("get", "Interface", name, "statistics")
            st.update({k: int(v) for k, v in re.findall(r"(ovs_\w+)=(\d+)", text)})
            out[name] = st
        return out

    def stop(self):
        """Stops ovs-vswitchd, then ovsdb-server (SIGTERM by PID)."""
        rc = self.vs.stop(signal.SIGTERM) if self.vs else None
        self.db.stop(signal.SIGTERM)
        return rc

    def kill(self):
        if self.vs:
            self.vs.stop(signal.SIGKILL)
        self.db.stop(signal.SIGKILL)


def reserve_hugepages(pages):
    """Mounts hugetlbfs at /dev/hugepages if nothing is mounted there and
    reserves `pages` 2 MiB pages on top of those already reserved; both
    are undone by kill_all() (only the pages this harness added)."""
    if not os.path.ismount("/dev/hugepages"):
        os.makedirs("/dev/hugepages", exist_ok=True)
        sh(["mount", "-t", "hugetlbfs", "nodev", "/dev/hugepages"])
        register_cleanup("umount /dev/hugepages", lambda: sh(["umount", "/dev/hugepages"], check=False))

    def nr():
        with open(HUGEPAGES_NR) as f:
            return int(f.read())

    before = nr()
    with open(HUGEPAGES_NR, "w") as f:
        f.write(str(before + pages))
    mine = max(0, nr() - before)

    def give_back():
        # Relative, not back to `before`: others may have reserved pages
        # meanwhile. The kernel frees only pages nobody uses.
        with open(HUGEPAGES_NR, "w") as f:
            f.write(str(max(0, nr() - mine)))

    register_cleanup(f"give back {mine} hugepages", give_back)
    if mine < pages:
        raise HarnessError(f"asked the kernel for {pages} more 2 MiB hugepages, got {mine} "
                           f"(free memory?); try --ovs-hugepages")
    return {"reserved": mine, "before": before}


def start_switch(kind, args, rundir, tag):
    sock0 = os.path.join(rundir, "vhost0.sock")
    sock1 = os.path.join(rundir, "vhost1.sock")
    cpu = args.switch_cpu
    if kind == "ovs":
        sw = OvsSwitch(args, rundir)
    elif kind.startswith("vswitch"):
        lab = None
        # The team row runs two switches, each with its own PMD thread, on
        # one CPU: busy polling would hand the CPU from one to the other
        # only at scheduler ticks (measured: 0.08 Mpps busy, 0.29 adaptive),
        # so they sleep when idle.
        idle = "adaptive" if kind == "vswitch-team" else "busy"
        argv = [args.vswitchd, "--runtime-dir", rundir, "--pmd-cores", str(cpu), "--idle", idle]
        if kind == "vswitch-vlan":
            cfg = os.path.join(rundir, "vlan100.yaml")
            with open(cfg, "w") as f:
                f.write(with_queues(VLAN_CONFIG, args.queues))
            argv += ["--config", cfg]
        elif kind == "vswitch" and args.queues > 1:
            cfg = os.path.join(rundir, "vlan1.yaml")
            with open(cfg, "w") as f:
                f.write(with_queues(PLAIN_CONFIG, args.queues))
            argv += ["--config", cfg]
        elif kind == "vswitch-team":
            cfg = os.path.join(rundir, "team.yaml")
            with open(cfg, "w") as f:
                f.write(TEAM_CONFIG.format(policy=args.team_policy, driver=args.team_driver))
            argv += ["--config", cfg]
            lab = TeamLab(tag)
        argv = ["taskset", "-c", str(cpu)] + argv
        if lab:
            # `ip netns exec` execs: the PID stays vswitchd's.
            argv = ["ip", "netns", "exec", lab.ns] + argv
        env = dict(os.environ, VSWITCH_LOG=os.environ.get("VSWITCH_LOG", "warn"))
        try:
            sw = Proc("vswitchd", argv, stdin=False, env=env)
            sw.lab = lab
            sw.expect(lambda l: "vswitchd: running" in l, 30, "vswitchd to start")
        except BaseException:
            if lab:
                lab.delete()
            raise
        sw.thread_pattern = VSWITCH_PMD
        sw.sum_threads = lab is not None
        sw.setup = {"vswitch": "VLAN 1", "vswitch-vlan": "access VLAN 100"}.get(kind)
        if lab:
            # Which uplink kind vswitchd really used: it warns when XDP is
            # refused and falls back to AF_PACKET; an attached XDP program
            # on the members confirms AF_XDP.
            sw.drain()
            refused = [l for l in sw.transcript if "af-xdp refused" in l]
            xdp = all(lab.xdp_attached(d) for d in ("ta0", "ta1", "tb0", "tb1"))
            if args.team_driver == "af-xdp" and not refused and xdp:
                sw.uplinks = "AF_XDP"
            elif args.team_driver == "af-xdp" and not refused:
                sw.uplinks = "AF_XDP?"  # no fallback reported, but no XDP program seen
            else:
                sw.uplinks = "AF_PACKET"
            sw.setup = f"team {args.team_policy}, {sw.uplinks} veths"
            sw.fallback_notes = refused
            deadline = time.monotonic() + 10
            while True:
                teams = team_members(args, rundir)
                if teams is None or all(m["link_up"] for ms in teams.values() for m in ms):
                    break
                if time.monotonic() > deadline:
                    raise HarnessError(f"team members not up: {teams}\n" + sw.tail())
                time.sleep(0.05)
        sw.socks = (sock0, sock1)
    else:
        sw = Testpmd("testpmd-switch", cpu, f"pr-sw-{os.getpid()}-{tag}",
                     [f"net_vhost0,iface={sock0},queues={args.queues}",
                      f"net_vhost1,iface={sock1},queues={args.queues}"],
                     ["--forward-mode=io"] + queue_args(args.queues), args.mbufs)
        sw.expect(lambda l: "Checking link statuses" in l, 60, "testpmd switch ports")
        if args.retry:
            sw.run("set fwd io retry")
        sw.run("start", done="io packet forwarding")
        sw.thread_pattern = DPDK_WORKER
        sw.sum_threads = False
        sw.socks = (sock0, sock1)
        sw.setup = "io forwarding"
    deadline = time.monotonic() + 20
    while not all(os.path.exists(s) for s in sw.socks):
        if time.monotonic() > deadline:
            raise HarnessError(f"{kind}: sockets never appeared:\n" + sw.tail())
        time.sleep(0.05)
    return sw


def stop_switch(kind, sw):
    """Stops the switch; returns what it reports (drops) as a dict."""
    if kind == "ovs":
        ports = sw.port_stats()
        rc = sw.stop()
        try:
            with open(sw.log) as f:
                errors = [l.rstrip() for l in f if "|ERR|" in l or "|EMER|" in l]
        except OSError:
            errors = []
        return {"rc": rc, "ports": ports, "log_errors": errors[-10:],
                "dropped": sum(p.get("rx_drop", 0) + p.get("tx_drop", 0) for p in ports.values())}
    if kind.startswith("vswitch"):
        rc = sw.stop(signal.SIGTERM)
        sw.drain()
        if getattr(sw, "lab", None):
            sw.lab.delete()
        ports = {}
        for line in sw.transcript:
            m = re.match(r"port (\S+): rx (\d+) frames, tx (\d+) frames, tx dropped (\d+), "
                         r"dropped on ingress (\d+)", line)
            if m:
                ports[m.group(1)] = dict(zip(("rx", "tx", "tx_dropped", "ingress_dropped"),
                                             map(int, m.groups()[1:])))
        return {"rc": rc, "ports": ports,
                "dropped": sum(p["tx_dropped"] + p["ingress_dropped"] for p in ports.values())}
    acc = sw.forward_stats()
    sw.quit()
    return {"forward": acc, "dropped": acc.get("RX-dropped", 0) + acc.get("TX-dropped", 0)}


def abort_switch(sw):
    """Stops a switch after an error (by PID), with its namespace."""
    if isinstance(sw, Testpmd):
        sw.quit()
    elif isinstance(sw, OvsSwitch):
        sw.kill()
    else:
        sw.stop(signal.SIGKILL)
        if getattr(sw, "lab", None):
            sw.lab.delete()


def one_run(kind, size, run_idx, args, workdir):
    tag = f"{kind}-{size}-{run_idx}"
    rundir = os.path.join(workdir, tag)
    os.makedirs(rundir)
    sw = gen = None
    waited, busy_before = wait_quiet([args.switch_cpu, args.gen_cpu], args.wait_quiet)
    if waited >= 2:
        print(f"  (waited {waited} s for the CPUs to go quiet; busy in the last second: {busy_before})",
              flush=True)
    try:
        sw = start_switch(kind, args, rundir, tag)
        gen = Testpmd("generator", args.gen_cpu, f"pr-gen-{os.getpid()}-{tag}",
                      [f"net_virtio_user0,path={sw.socks[0]},mac={MAC0},queues={args.queues}",
                       f"net_virtio_user1,path={sw.socks[1]},mac={MAC1},queues={args.queues}"],
                      ["--forward-mode=io", f"--txpkts={size - 4}"] + queue_args(args.queues) + [
                       f"--eth-peer=0,{MAC1}", f"--eth-peer=1,{MAC0}"], args.mbufs)
        gen.expect(lambda l: "Checking link statuses" in l, 60, "generator ports")
        gen.expect(lambda l: l.strip() == "Done", 60, "generator links")
        if args.retry:
            gen.run("set fwd io retry")
        load_before = os.getloadavg()
        gen.run(f"start tx_first {args.bursts}", done="io packet forwarding")
        time.sleep(args.warmup)

        # vswitchd's own PMD counters (one switch; the team row's two
        # switches have their per-member counters instead); OVS's
        # pmd-stats, cleared at the start of the window.
        is_vswitch = kind in ("vswitch", "vswitch-vlan")
        pmd0 = vswitchctl_pmd(args, rundir) if is_vswitch else None
        members0 = team_members(args, rundir) if kind == "vswitch-team" else None
        if kind == "ovs":
            sw.appctl("dpif-netdev/pmd-stats-clear")
        # Counters are read while a stats command is in flight: time each
        # read at the middle of its request and reply (a few ms apart).
        ta = time.monotonic()
        s0 = gen.port_stats()
        t0 = (ta + time.monotonic()) / 2
        sw_th0, gen_th0, cpu0 = threads(sw.pid), threads(gen.pid), cpu_ticks()
        c0 = time.monotonic()
        time.sleep(args.window)
        sw_th1, gen_th1, cpu1 = threads(sw.pid), threads(gen.pid), cpu_ticks()
        c1 = time.monotonic()
        sw_where, gen_where = placement(sw.pid), placement(gen.pid)
        ta = time.monotonic()
        s1 = gen.port_stats()
        t1 = (ta + time.monotonic()) / 2
        pmd1 = vswitchctl_pmd(args, rundir) if is_vswitch else None
        members1 = team_members(args, rundir) if kind == "vswitch-team" else None
        ovs_pmd = sw.pmd_stats() if kind == "ovs" else None
        # How hard the switch's PMD worked: the share of its loop turns that
        # found frames, and frames per such turn (64 = full bursts on both
        # ports: the switch is the bottleneck).
        pmd_load = None
        if pmd0 and pmd1:
            it = pmd1["iterations"] - pmd0["iterations"]
            busy = pmd1["busy_iterations"] - pmd0["busy_iterations"]
            frames = pmd1["rx_packets"] - pmd0["rx_packets"]
            pmd_load = {"iterations": it, "busy_iterations": busy, "rx_frames": frames,
                        "busy_iteration_share": round(busy / max(1, it), 4),
                        "frames_per_busy_iteration": round(frames / max(1, busy), 2)}
        elif ovs_pmd:
            pmd_load = {"ovs_pmd_stats": ovs_pmd}
        # Frames each team member sent during the window (port-id pins
        # each generator port to one member per team).
        team_tx = None
        if members0 and members1:
            team_tx = {t: {m["name"]: m["tx_packets"] - a["tx_packets"] for a, m in zip(members0[t], ms)}
                       for t, ms in members1.items() if t in members0}
        window = t1 - t0
        window_ns = (c1 - c0) * 1e9  # the CPU accounting window

        rx = sum(b["RX-packets"] - a["RX-packets"] for a, b in zip(s0, s1))
        tx = sum(b["TX-packets"] - a["TX-packets"] for a, b in zip(s0, s1))
        fwd = gen.forward_stats()
        gen.quit()
        gen_end = s1
        gen = None
        sw_pattern, sw_sum, setup = sw.thread_pattern, sw.sum_threads, sw.setup
        switch_report = stop_switch(kind, sw)
        sw = None

        sw_cpu = side_cpu(sw_th0, sw_th1, window_ns, sw_pattern, sw_where, total=sw_sum)
        gen_cpu = side_cpu(gen_th0, gen_th1, window_ns, DPDK_WORKER, gen_where)
        cores, steal = {}, {}
        for c in sorted(cpu1):
            total = max(1, cpu1[c][1] - cpu0[c][1])
            cores[str(c)] = round((cpu1[c][0] - cpu0[c][0]) / total, 4)
            steal[str(c)] = round((cpu1[c][2] - cpu0[c][2]) / total, 4)
        # Other work on our CPUs: the core's busy share beyond what our
        # processes used there.
        other = {
            "switch_cpu": round(cores.get(str(args.switch_cpu), 0) - sw_cpu["process_share"], 4),
            "gen_cpu": round(cores.get(str(args.gen_cpu), 0) - gen_cpu["process_share"], 4),
        }
        flags = []
        if sw_cpu["share"] < args.min_cpu:
            flags.append(f"switch thread got {sw_cpu['share']:.0%} of its CPU")
        if gen_cpu["share"] < args.min_cpu:
            flags.append(f"generator thread got {gen_cpu['share']:.0%} of its CPU")
        for c, role in ((args.switch_cpu, "switch"), (args.gen_cpu, "generator")):
            if steal.get(str(c), 0) > 1 - args.min_cpu:
                flags.append(f"hypervisor stole {steal[str(c)]:.0%} of the {role} CPU")
        if rx == 0:
            errors = switch_report.get("log_errors") or []
            flags.append("no frames came back" + (f" (switch log: {errors[-1]})" if errors else ""))
        in_flight = sum(s["TX-packets"] - s["RX-packets"] for s in gen_end)
        mpps = rx / window / 1e6
        return {
            "switch": kind,
            "setup": setup,
            "frame_bytes": size,
            "virtio_bytes": size - 4,
            "run": run_idx,
            "window_s": round(window, 4),
            "rx_frames": rx,
            "tx_frames": tx,
            "mpps": round(mpps, 4),
            "gbps": round(mpps * size * 8 / 1000, 3),
            "generator_rx_dropped": fwd.get("RX-dropped", 0),
            "generator_tx_dropped": fwd.get("TX-dropped", 0),
            "generator_in_flight_at_end": in_flight,
            "switch_report": switch_report,
            "switch_pmd_load": pmd_load,
            "team_member_tx": team_tx,
            "switch_thread": sw_cpu,
            "generator_thread": gen_cpu,
            "cpu_busy": cores,
            "cpu_steal": steal,
            "other_load_on_our_cpus": other,
            "waited_for_quiet_s": waited,
            "cpu_busy_before": {str(k): v for k, v in busy_before.items()},
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "flags": flags,
        }
    finally:
        if gen is not None:
            gen.quit()
        if sw is not None:
            abort_switch(sw)


def summarize(results, args):
    rows = []
    for kind in args.switches:
        for size in args.sizes:
            runs = [r for r in results if r["switch"] == kind and r["frame_bytes"] == size]
            good = [r for r in runs if not r["flags"]]
            use = good or runs
            if not use:
                continue
            mpps = [r["mpps"] for r in use]
            rows.append({
                "switch": kind, "frame_bytes": size, "runs": len(runs), "flagged": len(runs) - len(good),
                "all_flagged": not good,
                "mpps_median": statistics.median(mpps), "mpps_min": min(mpps), "mpps_max": max(mpps),
                "gbps_median": statistics.median(r["gbps"] for r in use),
                "steal_max": max(max(r.get("cpu_steal", {}).values(), default=0) for r in use),
                "setup": ", ".join(dict.fromkeys(r.get("setup") or "" for r in runs)),
                "switch_cpu_share_min": min(r["switch_thread"]["share"] for r in use),
                "generator_cpu_share_min": min(r["generator_thread"]["share"] for r in use),
                "drops_max": max(r["switch_report"]["dropped"] for r in use),
            })
    ceiling = {r["frame_bytes"]: r for r in rows if r["switch"] == "testpmd"}
    ovs = {r["frame_bytes"]: r for r in rows if r["switch"] == "ovs"}
    for r in rows:
        c = ceiling.get(r["frame_bytes"])
        r["ratio_to_testpmd"] = round(r["mpps_median"] / c["mpps_median"], 4) if c else None
        # Best run against best run: less sensitive to a bimodal machine.
        r["best_ratio_to_testpmd"] = round(r["mpps_max"] / c["mpps_max"], 3) if c else None
        # A ratio built on runs where a side lacked its CPU means little.
        r["ratio_unreliable"] = bool(r["all_flagged"] or (c and c["all_flagged"]))
        o = ovs.get(r["frame_bytes"])
        r["ratio_to_ovs"] = round(r["mpps_median"] / o["mpps_median"], 4) if o and o["mpps_median"] else None
        r["ratio_to_ovs_unreliable"] = bool(r["all_flagged"] or (o and o["all_flagged"]))
    return rows


def placements(results, switches):
    """Per switch: which CPUs its forwarding thread(s) and the generator's
    ran on, and the CPUs every thread of each process was allowed on."""
    lines = []
    for kind in switches:
        runs = [r for r in results if r["switch"] == kind]
        if not runs or "ran_on_cpus" not in runs[0]["switch_thread"]:
            continue

        def cpus(side, key):
            return ",".join(dict.fromkeys(str(c) for r in runs for c in r[side][key]))

        sw, gen = runs[0]["switch_thread"], runs[0]["generator_thread"]
        lines.append(f"  {kind:<13} switch {sw['thread']} ({sw['threads']} thread"
                     f"{'s' if sw['threads'] > 1 else ''}) ran on CPU {cpus('switch_thread', 'ran_on_cpus')}, "
                     f"all its threads allowed on {cpus('switch_thread', 'process_allowed_cpus')}; "
                     f"generator {gen['thread']} on CPU {cpus('generator_thread', 'ran_on_cpus')}, "
                     f"allowed on {cpus('generator_thread', 'process_allowed_cpus')}")
    return lines


def table(rows, meta, results=()):
    lines = []
    lines.append(f"packet rate, {meta['date']}, {meta['host']}: switch on CPU {meta['switch_cpu']}, "
                 f"generator on CPU {meta['gen_cpu']}; {meta['runs']} runs x {meta['window_s']} s "
                 f"after {meta['warmup_s']} s warm-up; tx_first {meta['bursts']} "
                 f"({meta['bursts'] * 32} frames per direction); io retry {'on' if meta['retry'] else 'off'}"
                 + (f"; {meta['queues']} queue pairs per port" if meta.get("queues", 1) > 1 else ""))
    lines.append(f"load average before: {meta['loadavg_before']}, after: {meta['loadavg_after']}; "
                 f"commit {meta.get('git_commit', '?')}"
                 + (f" with local changes to {', '.join(meta['git_modified'])}" if meta.get("git_modified") else ""))
    hdr = ("switch", "frame B", "Mpps med", "min", "max", "Gbit/s", "x testpmd", "best x", "vs OVS",
           "sw CPU", "gen CPU", "drops", "runs", "setup")
    fmt = "{:<13} {:>7} {:>8} {:>6} {:>6} {:>7} {:>9} {:>6} {:>6} {:>6} {:>7} {:>6} {:>7}  {}"
    lines.append(fmt.format(*hdr))

    def ratio(v, unreliable):
        if v is None:
            return "-"
        return (f"{v:.2f}" if v >= 0.095 else f"{v:.3f}") + ("?" if unreliable else "")

    for r in rows:
        runs = f"{r['runs']}" + (f" ({r['flagged']}!)" if r["flagged"] else "")
        lines.append(fmt.format(
            r["switch"], r["frame_bytes"], f"{r['mpps_median']:.2f}", f"{r['mpps_min']:.2f}",
            f"{r['mpps_max']:.2f}", f"{r['gbps_median']:.1f}",
            ratio(r["ratio_to_testpmd"], r["ratio_unreliable"]),
            ratio(r["best_ratio_to_testpmd"], r["ratio_unreliable"]),
            ratio(r.get("ratio_to_ovs"), r.get("ratio_to_ovs_unreliable")), f"{r['switch_cpu_share_min']:.0%}",
            f"{r['generator_cpu_share_min']:.0%}", r["drops_max"], runs, r.get("setup", "")))
    lines.append("Mpps: generator receive rate, both directions summed; Gbit/s: median, at the frame "
                 "size incl. FCS; x testpmd: median / testpmd's median; best x: best run / testpmd's "
                 "best run; vs OVS: median / Open vSwitch's median; sw/gen CPU: lowest share of its CPU "
                 "the forwarding thread got (vswitch-team: its two PMDs together); drops: most "
                 "frames a switch dropped in one run; (n!): runs flagged (a side below the CPU "
                 "threshold), left out unless all were; ?: a ratio resting on flagged runs only.")
    where = placements(results, list(dict.fromkeys(r["switch"] for r in rows)))
    if where:
        lines.append("CPU placement (forwarding threads, from /proc/<pid>/task/<tid>/stat and status):")
        lines.extend(where)
    return "\n".join(lines)


def chart(rows, meta):
    """The summary as an SVG: frame size on x, one bar per switch (its
    median Mpps, printed on the bar; a line from the slowest to the fastest
    run kept in the summary)."""
    sizes = list(dict.fromkeys(r["frame_bytes"] for r in rows))
    switches = list(dict.fromkeys(r["switch"] for r in rows))
    values, ranges, marks = {}, {}, {}
    for r in rows:
        key = (r["switch"], f"{r['frame_bytes']} B")
        values[key] = r["mpps_median"]
        if r["mpps_max"] > r["mpps_min"]:
            ranges[key] = (r["mpps_min"], r["mpps_max"])
        if r["all_flagged"]:
            marks[key] = "?"
    commit = meta.get("git_commit", "?") + (" + local changes" if meta.get("git_modified") else "")
    subtitle = (f"{meta['date']}, commit {commit}, {meta['host']}; median of {meta['runs']} run(s) x "
                f"{meta['window_s']} s, line: slowest to fastest run")
    if marks:
        subtitle += "; ?: every run flagged"
    return grouped_bars("Packet rate through the switch (generator receive rate, both directions)", "Mpps",
                        [f"{s} B" for s in sizes], switches, values, ranges=ranges, subtitle=subtitle,
                        notes=marks, colors=dict(zip(SWITCHES, COLORS)),
                        fmt=lambda v: f"{v:.2f}" if v >= 0.095 else f"{v:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vswitchd", help="the vswitchd binary (release build; required unless --from-json)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="64,512,1518", help="frame sizes incl. FCS, comma-separated")
    ap.add_argument("--switches", default=",".join(SWITCHES), help="subset of " + ",".join(SWITCHES))
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    ap.add_argument("--window", type=float, default=5.0, help="measured seconds")
    ap.add_argument("--bursts", type=int, default=8, help="tx_first bursts of 32 per port")
    ap.add_argument("--queues", type=int, default=1,
                    help="queue pairs per port (vswitch, vswitch-vlan and testpmd rows; the generator "
                         "sends on all of them from its one core, the switch serves them from its one)")
    ap.add_argument("--mbufs", type=int, default=32768)
    ap.add_argument("--switch-cpu", type=int, default=1)
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--min-cpu", type=float, default=0.95,
                    help="flag runs where a forwarding thread got less of its CPU")
    ap.add_argument("--wait-quiet", type=float, default=120,
                    help="before each run, wait up to this many seconds for both CPUs to be idle")
    ap.add_argument("--retry", action=argparse.BooleanOptionalAction, default=True,
                    help="`set fwd io retry` in the testpmd instances (generator and testpmd switch): "
                    "a full TX ring is retried briefly instead of dropping, so the circulating "
                    "frames do not leak away (default on)")
    ap.add_argument("--ovs-hugepages", type=int, default=512,
                    help="2 MiB hugepages reserved for Open vSwitch's DPDK (its socket-mem and -limit)")
    ap.add_argument("--team-policy", default="port-id",
                    choices=("port-id", "ip-hash", "src-mac", "explicit-failover", "l4-hash"),
                    help="vswitch-team: the teams' policy")
    ap.add_argument("--team-driver", default="af-xdp", choices=("af-xdp", "af-packet"),
                    help="vswitch-team: the uplinks' driver (vswitchd falls back to af-packet if XDP is refused)")
    ap.add_argument("--out", default="target/packet-rate", help="directory for the table and JSON")
    ap.add_argument("--from-json", metavar="FILE",
                    help="only print the table of a results file written earlier")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        args.switches = list(dict.fromkeys(r["switch"] for r in saved["runs"]))
        args.sizes = list(dict.fromkeys(r["frame_bytes"] for r in saved["runs"]))
        print(table(summarize(saved["runs"], args), saved["meta"], saved["runs"]))
        return
    if not args.vswitchd:
        ap.error("--vswitchd is required")
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.switches = [s for s in args.switches.split(",") if s]
    for s in args.switches:
        if s not in SWITCHES:
            ap.error(f"unknown switch {s!r}; one of {', '.join(SWITCHES)}")
    for s in args.sizes:
        if not 64 <= s <= 1518:
            ap.error(f"frame size {s} out of 64-1518")
    if args.switch_cpu == args.gen_cpu:
        ap.error("--switch-cpu and --gen-cpu must differ")
    tools = ["dpdk-testpmd", "taskset", "stdbuf"]
    if "ovs" in args.switches:
        tools += ["ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-appctl", OVS_VSWITCHD]
    if "vswitch-team" in args.switches:
        tools += ["ip", "ethtool"]
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(f"packet-rate: {tool} not found: run scripts/install-deps.sh")
    if not os.path.exists(args.vswitchd):
        sys.exit(f"packet-rate: {args.vswitchd} not found")
    if os.geteuid() != 0:
        sys.exit("packet-rate: needs root (DPDK EAL)")

    def on_signal(signum, _frame):
        kill_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def git(*a):
        try:
            return subprocess.run(["git", *a], capture_output=True, text=True, timeout=10).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return "?"

    now = datetime.datetime.now(datetime.timezone.utc)
    meta = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.release()}",
        "cpu_model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                           if l.startswith("model name")), "?"),
        "switch_cpu": args.switch_cpu, "gen_cpu": args.gen_cpu,
        "runs": args.runs, "warmup_s": args.warmup, "window_s": args.window,
        "bursts": args.bursts, "retry": args.retry, "mbufs": args.mbufs,
        "queues": args.queues,
        "min_cpu": args.min_cpu, "wait_quiet_s": args.wait_quiet, "vswitchd": args.vswitchd,
        "team_policy": args.team_policy, "team_driver": args.team_driver,
        "ovs_hugepages": args.ovs_hugepages,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        # What was measured: the commit, and files of the build that differed from it.
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_modified": [l[3:] for l in git("status", "--porcelain", "--untracked-files=no",
                                            "dataplane", "vswitch", "config", "Cargo.toml",
                                            "Cargo.lock").splitlines()],
    }
    mask = f"{1 << args.switch_cpu:#x}"
    print(f"packet-rate: switch on CPU {args.switch_cpu} (vswitchd --pmd-cores {args.switch_cpu} "
          f"--idle busy; testpmd --lcores 0@{args.switch_cpu},1@{args.switch_cpu}; OVS pmd-cpu-mask and "
          f"dpdk-lcore-mask {mask}; every process under taskset -c {args.switch_cpu}), generator on CPU "
          f"{args.gen_cpu} (testpmd --lcores 0@{args.gen_cpu},1@{args.gen_cpu}); load average "
          f"{meta['loadavg_before']}", flush=True)
    results = []
    workdir = tempfile.mkdtemp(prefix="packet-rate-")
    try:
        if "ovs" in args.switches:
            meta["hugepages"] = reserve_hugepages(args.ovs_hugepages)
        for run_idx in range(args.runs):
            for size in args.sizes:
                for kind in args.switches:
                    r = one_run(kind, size, run_idx, args, workdir)
                    results.append(r)
                    print(f"  run {run_idx + 1}/{args.runs} {kind:<12} {size:>4} B: {r['mpps']:6.2f} Mpps "
                          f"{r['gbps']:6.1f} Gbit/s; CPU switch {r['switch_thread']['share']:.0%} "
                          f"generator {r['generator_thread']['share']:.0%}; other load on CPUs "
                          f"{r['other_load_on_our_cpus']}; switch drops {r['switch_report']['dropped']}"
                          + f"; steal {r['cpu_steal']}"
                          + f"; switch {r['switch_thread']['thread']} on CPU "
                          f"{','.join(map(str, r['switch_thread']['ran_on_cpus']))}, generator "
                          f"{r['generator_thread']['thread']} on CPU "
                          f"{','.join(map(str, r['generator_thread']['ran_on_cpus']))}"
                          + (f"; {r['setup']}" if r.get("setup") else "")
                          + (f"; vswitchd PMD {r['switch_pmd_load']['frames_per_busy_iteration']:.0f} "
                             "frames per busy turn" if (r["switch_pmd_load"] or {}).get(
                                 "frames_per_busy_iteration") is not None else "")
                          + (f"; team members tx {r['team_member_tx']}" if r.get("team_member_tx") else "")
                          + (f"; FLAGGED: {', '.join(r['flags'])}" if r["flags"] else ""), flush=True)
    finally:
        kill_all()
        shutil.rmtree(workdir, ignore_errors=True)
    meta["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    rows = summarize(results, args)
    text = table(rows, meta, results)
    print()
    print(text)
    os.makedirs(args.out, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    txt_path = os.path.join(args.out, f"packet-rate-{stamp}.txt")
    json_path = os.path.join(args.out, f"packet-rate-{stamp}.json")
    with open(txt_path, "w") as f:
        f.write(text + "\n")
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "summary": rows, "runs": results}, f, indent=2)
    svg_path = os.path.join(args.out, "chart.svg")
    with open(svg_path, "w") as f:
        f.write(chart(rows, meta))
    print(f"\nwrote {txt_path}, {json_path} and {svg_path} (this run's chart)")


if __name__ == "__main__":
    try:
        main()
    except HarnessError as e:
        kill_all()
        sys.exit(f"packet-rate: {e}")
