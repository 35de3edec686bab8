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
  testpmd       dpdk-testpmd with two net_vhost ports, io forwarding:
                no learning, no VLAN, the ceiling on this machine

Placement is explicit: the switch (all its threads) on --switch-cpu, the
generator (all its threads) on --gen-cpu; vswitchd runs `--pmd-cores
<switch-cpu> --idle busy`. The CPU time each side's forwarding thread
really got during the measured window is read from
/proc/<pid>/task/<tid>/schedstat, and the other load on both CPUs from
/proc/stat; a run where a side got less than --min-cpu of its core is
flagged and left out of the summary (unless every run was).

Rates: the generator's received frames (both ports summed: both
directions) over a timed window, after a warm-up. Frame sizes are
Ethernet frame sizes including the 4-byte FCS (RFC 2544); virtio carries
size - 4 bytes, and Gbit/s = Mpps * size * 8 (no preamble or gap).

Run through benches/packet-rate.sh (it builds vswitchd in release).
Needs root (DPDK EAL), dpdk-testpmd (scripts/install-deps.sh), taskset
and stdbuf; no hugepages (--no-huge).
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

MAC0 = "02:00:00:00:00:01"
MAC1 = "02:00:00:00:00:02"
SWITCHES = ("vswitch", "vswitch-vlan", "testpmd")
# The name of DPDK's forwarding lcore thread (22.11: rte-worker-N).
DPDK_WORKER = r"rte-worker-\d+|lcore-worker-\d+"
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

STARTED = []  # every Proc, for cleanup by PID


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
    for proc in STARTED:
        if proc.p.poll() is None:
            try:
                os.kill(proc.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.p.wait()


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
        time.sleep(1.0)
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


def side_cpu(before, after, window_ns, pattern):
    """CPU share of a side's forwarding thread (named by `pattern`) and of
    the whole process over the window."""
    fwd = None
    proc_run = 0
    for tid, (comm, run, wait) in after.items():
        b = before.get(tid, (comm, 0, 0))
        d_run, d_wait = run - b[1], wait - b[2]
        proc_run += d_run
        if re.fullmatch(pattern, comm) and (fwd is None or d_run > fwd["run_ns"]):
            fwd = {"thread": comm, "tid": tid, "run_ns": d_run, "wait_ns": d_wait}
    if fwd is None:
        raise HarnessError(f"no thread named {pattern!r} among {sorted(c for c, _, _ in after.values())}")
    fwd["share"] = fwd["run_ns"] / window_ns
    fwd["runqueue_wait_share"] = fwd["wait_ns"] / window_ns
    fwd["process_share"] = proc_run / window_ns
    return fwd


def start_switch(kind, args, rundir, tag):
    sock0 = os.path.join(rundir, "vhost0.sock")
    sock1 = os.path.join(rundir, "vhost1.sock")
    cpu = args.switch_cpu
    if kind.startswith("vswitch"):
        argv = ["taskset", "-c", str(cpu), args.vswitchd, "--runtime-dir", rundir,
                "--pmd-cores", str(cpu), "--idle", "busy"]
        if kind == "vswitch-vlan":
            cfg = os.path.join(rundir, "vlan100.yaml")
            with open(cfg, "w") as f:
                f.write(VLAN_CONFIG)
            argv += ["--config", cfg]
        env = dict(os.environ, VSWITCH_LOG=os.environ.get("VSWITCH_LOG", "warn"))
        sw = Proc("vswitchd", argv, stdin=False, env=env)
        sw.expect(lambda l: "vswitchd: running" in l, 30, "vswitchd to start")
        sw.thread_pattern = r"pmd\d+"
    else:
        sw = Testpmd("testpmd-switch", cpu, f"pr-sw-{os.getpid()}-{tag}",
                     [f"net_vhost0,iface={sock0},queues=1", f"net_vhost1,iface={sock1},queues=1"],
                     ["--forward-mode=io"], args.mbufs)
        sw.expect(lambda l: "Checking link statuses" in l, 60, "testpmd switch ports")
        if args.retry:
            sw.run("set fwd io retry")
        sw.run("start", done="io packet forwarding")
        sw.thread_pattern = DPDK_WORKER
    deadline = time.monotonic() + 20
    while not (os.path.exists(sock0) and os.path.exists(sock1)):
        if time.monotonic() > deadline:
            raise HarnessError(f"{kind}: sockets never appeared:\n" + sw.tail())
        time.sleep(0.05)
    return sw


def stop_switch(kind, sw):
    """Stops the switch; returns what it reports (drops) as a dict."""
    if kind.startswith("vswitch"):
        rc = sw.stop(signal.SIGTERM)
        sw.drain()
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
                      [f"net_virtio_user0,path={rundir}/vhost0.sock,mac={MAC0}",
                       f"net_virtio_user1,path={rundir}/vhost1.sock,mac={MAC1}"],
                      ["--forward-mode=io", f"--txpkts={size - 4}",
                       f"--eth-peer=0,{MAC1}", f"--eth-peer=1,{MAC0}"], args.mbufs)
        gen.expect(lambda l: "Checking link statuses" in l, 60, "generator ports")
        gen.expect(lambda l: l.strip() == "Done", 60, "generator links")
        if args.retry:
            gen.run("set fwd io retry")
        load_before = os.getloadavg()
        gen.run(f"start tx_first {args.bursts}", done="io packet forwarding")
        time.sleep(args.warmup)

        is_vswitch = kind.startswith("vswitch")
        pmd0 = vswitchctl_pmd(args, rundir) if is_vswitch else None
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
        ta = time.monotonic()
        s1 = gen.port_stats()
        t1 = (ta + time.monotonic()) / 2
        pmd1 = vswitchctl_pmd(args, rundir) if is_vswitch else None
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
        window = t1 - t0
        window_ns = (c1 - c0) * 1e9  # the CPU accounting window

        rx = sum(b["RX-packets"] - a["RX-packets"] for a, b in zip(s0, s1))
        tx = sum(b["TX-packets"] - a["TX-packets"] for a, b in zip(s0, s1))
        fwd = gen.forward_stats()
        gen.quit()
        gen_end = s1
        gen = None
        sw_pattern = sw.thread_pattern
        switch_report = stop_switch(kind, sw)
        sw = None

        sw_cpu = side_cpu(sw_th0, sw_th1, window_ns, sw_pattern)
        gen_cpu = side_cpu(gen_th0, gen_th1, window_ns, DPDK_WORKER)
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
        in_flight = sum(s["TX-packets"] - s["RX-packets"] for s in gen_end)
        mpps = rx / window / 1e6
        return {
            "switch": kind,
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
            if isinstance(sw, Testpmd):
                sw.quit()
            else:
                sw.stop(signal.SIGKILL)


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
                "switch_cpu_share_min": min(r["switch_thread"]["share"] for r in use),
                "generator_cpu_share_min": min(r["generator_thread"]["share"] for r in use),
                "drops_max": max(r["switch_report"]["dropped"] for r in use),
            })
    ceiling = {r["frame_bytes"]: r for r in rows if r["switch"] == "testpmd"}
    for r in rows:
        c = ceiling.get(r["frame_bytes"])
        r["ratio_to_testpmd"] = round(r["mpps_median"] / c["mpps_median"], 3) if c else None
        # Best run against best run: less sensitive to a bimodal machine.
        r["best_ratio_to_testpmd"] = round(r["mpps_max"] / c["mpps_max"], 3) if c else None
        # A ratio built on runs where a side lacked its CPU means little.
        r["ratio_unreliable"] = bool(r["all_flagged"] or (c and c["all_flagged"]))
    return rows


def table(rows, meta):
    lines = []
    lines.append(f"packet rate, {meta['date']}, {meta['host']}: switch on CPU {meta['switch_cpu']}, "
                 f"generator on CPU {meta['gen_cpu']}; {meta['runs']} runs x {meta['window_s']} s "
                 f"after {meta['warmup_s']} s warm-up; tx_first {meta['bursts']} "
                 f"({meta['bursts'] * 32} frames per direction); io retry {'on' if meta['retry'] else 'off'}")
    lines.append(f"load average before: {meta['loadavg_before']}, after: {meta['loadavg_after']}; "
                 f"commit {meta.get('git_commit', '?')}"
                 + (f" with local changes to {', '.join(meta['git_modified'])}" if meta.get("git_modified") else ""))
    hdr = ("switch", "frame B", "Mpps med", "min", "max", "Gbit/s", "x testpmd", "best x",
           "sw CPU", "gen CPU", "drops", "runs")
    fmt = "{:<13} {:>7} {:>8} {:>6} {:>6} {:>7} {:>9} {:>6} {:>6} {:>7} {:>6} {:>7}"
    lines.append(fmt.format(*hdr))

    def ratio(v, unreliable):
        return "-" if v is None else f"{v:.2f}" + ("?" if unreliable else "")

    for r in rows:
        runs = f"{r['runs']}" + (f" ({r['flagged']}!)" if r["flagged"] else "")
        lines.append(fmt.format(
            r["switch"], r["frame_bytes"], f"{r['mpps_median']:.2f}", f"{r['mpps_min']:.2f}",
            f"{r['mpps_max']:.2f}", f"{r['gbps_median']:.1f}",
            ratio(r["ratio_to_testpmd"], r["ratio_unreliable"]),
            ratio(r["best_ratio_to_testpmd"], r["ratio_unreliable"]), f"{r['switch_cpu_share_min']:.0%}",
            f"{r['generator_cpu_share_min']:.0%}", r["drops_max"], runs))
    lines.append("Mpps: generator receive rate, both directions summed; Gbit/s: median, at the frame "
                 "size incl. FCS; x testpmd: median / testpmd's median; best x: best run / testpmd's "
                 "best run; sw/gen CPU: lowest share of its CPU the forwarding thread got; drops: most "
                 "frames a switch dropped in one run; (n!): runs flagged (a side below the CPU "
                 "threshold), left out unless all were; ?: a ratio resting on flagged runs only.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vswitchd", help="the vswitchd binary (release build; required unless --from-json)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="64,512,1518", help="frame sizes incl. FCS, comma-separated")
    ap.add_argument("--switches", default=",".join(SWITCHES), help="subset of " + ",".join(SWITCHES))
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    ap.add_argument("--window", type=float, default=5.0, help="measured seconds")
    ap.add_argument("--bursts", type=int, default=8, help="tx_first bursts of 32 per port")
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
    ap.add_argument("--out", default="target/packet-rate", help="directory for the table and JSON")
    ap.add_argument("--from-json", metavar="FILE",
                    help="only print the table of a results file written earlier")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        args.switches = list(dict.fromkeys(r["switch"] for r in saved["runs"]))
        args.sizes = list(dict.fromkeys(r["frame_bytes"] for r in saved["runs"]))
        print(table(summarize(saved["runs"], args), saved["meta"]))
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
    for tool in ("dpdk-testpmd", "taskset", "stdbuf"):
        if shutil.which(tool) is None:
            sys.exit(f"packet-rate: {tool} not found: run scripts/install-deps.sh")
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
        "min_cpu": args.min_cpu, "wait_quiet_s": args.wait_quiet, "vswitchd": args.vswitchd,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        # What was measured: the commit, and files of the build that differed from it.
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_modified": [l[3:] for l in git("status", "--porcelain", "--untracked-files=no",
                                            "dataplane", "vswitch", "config", "Cargo.toml",
                                            "Cargo.lock").splitlines()],
    }
    print(f"packet-rate: switch on CPU {args.switch_cpu} (vswitchd --pmd-cores {args.switch_cpu} "
          f"--idle busy; testpmd --lcores 0@{args.switch_cpu},1@{args.switch_cpu}), generator on CPU "
          f"{args.gen_cpu} (testpmd --lcores 0@{args.gen_cpu},1@{args.gen_cpu}); load average "
          f"{meta['loadavg_before']}", flush=True)
    results = []
    workdir = tempfile.mkdtemp(prefix="packet-rate-")
    try:
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
                          + (f"; vswitchd PMD {r['switch_pmd_load']['frames_per_busy_iteration']:.0f} "
                             "frames per busy turn" if r["switch_pmd_load"] else "")
                          + (f"; FLAGGED: {', '.join(r['flags'])}" if r["flags"] else ""), flush=True)
    finally:
        kill_all()
        shutil.rmtree(workdir, ignore_errors=True)
    meta["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    rows = summarize(results, args)
    text = table(rows, meta)
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
    print(f"\nwrote {txt_path} and {json_path}")


if __name__ == "__main__":
    try:
        main()
    except HarnessError as e:
        kill_all()
        sys.exit(f"packet-rate: {e}")
