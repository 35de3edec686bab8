#!/usr/bin/env python3
"""Interleaved A/B rounds of the packet-rate harness: two vswitchd builds
and testpmd's own io forwarding (the ceiling), one short run of each per
round, in the order A, B, testpmd (rotated every round so no build always
goes first). Prints each round's Mpps and ratio to testpmd, then the
medians of the per-round ratios and how many rounds B won.

    benches/ab_rounds.py --a OLD/vswitchd --b NEW/vswitchd --rounds 8 --sizes 64,1518

Needs what benches/packet_rate.py needs (root, dpdk-testpmd). Each run is
a separate packet_rate.py call; its JSON lands under --out.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def one(binary, switch, size, out, args):
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, os.path.join(HERE, "packet_rate.py"), "--vswitchd", binary,
           "--switches", switch, "--sizes", str(size), "--runs", "1",
           "--warmup", str(args.warmup), "--window", str(args.window), "--out", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    path = max(glob.glob(os.path.join(out, "packet-rate-*.json")), key=os.path.getmtime)
    with open(path) as f:
        runs = json.load(f)["runs"]
    r = runs[-1]
    share = (r["switch_thread"]["share"], r["generator_thread"]["share"])
    return r["mpps"], share


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="vswitchd binary A (before)")
    p.add_argument("--b", required=True, help="vswitchd binary B (after)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--sizes", default="64,1518")
    p.add_argument("--switch", default="vswitch-vlan")
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--window", type=float, default=3)
    p.add_argument("--out", default="target/ab-rounds")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    ratios = {s: {"a": [], "b": []} for s in sizes}
    rates = {s: {"a": [], "b": [], "t": []} for s in sizes}
    wins = {s: 0 for s in sizes}
    for rnd in range(args.rounds):
        for size in sizes:
            order = [("a", args.a, args.switch), ("b", args.b, args.switch), ("t", args.a, "testpmd")]
            k = rnd % 3
            order = order[k:] + order[:k]
            got, cpu = {}, {}
            for tag, binary, switch in order:
                got[tag], cpu[tag] = one(binary, switch, size, os.path.join(args.out, f"r{rnd}-{size}-{tag}"), args)
            for tag in "abt":
                rates[size][tag].append(got[tag])
            if got["t"] > 0:
                ratios[size]["a"].append(got["a"] / got["t"])
                ratios[size]["b"].append(got["b"] / got["t"])
            wins[size] += got["b"] > got["a"]
            print(f"round {rnd + 1} {size:>4} B: A {got['a']:.2f}  B {got['b']:.2f}  testpmd {got['t']:.2f} Mpps"
                  f"  (A {got['a'] / got['t']:.2f}x, B {got['b'] / got['t']:.2f}x)"
                  f"  CPU share switch/generator: A {cpu['a'][0]:.2f}/{cpu['a'][1]:.2f},"
                  f" B {cpu['b'][0]:.2f}/{cpu['b'][1]:.2f}, testpmd {cpu['t'][0]:.2f}/{cpu['t'][1]:.2f}",
                  flush=True)
    print()
    for size in sizes:
        ra, rb = ratios[size]["a"], ratios[size]["b"]
        print(f"{size:>4} B over {len(ra)} rounds: median ratio to testpmd A {statistics.median(ra):.2f}x,"
              f" B {statistics.median(rb):.2f}x; median Mpps A {statistics.median(rates[size]['a']):.2f},"
              f" B {statistics.median(rates[size]['b']):.2f}, testpmd {statistics.median(rates[size]['t']):.2f};"
              f" B beat A in {wins[size]} of {len(ra)}")


if __name__ == "__main__":
    main()
