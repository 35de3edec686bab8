#!/usr/bin/env python3
"""Paired-slice A/B from one vswitchd run (see docs/benchmark-history.md,
"Paired slices", under "Forward tail copies"). Input: lines `on frames ns`, one per 100 ms slice, written by a
build with the A/B toggle patched in. Drops the first 20 slices (warm-up)
and slices below 30% of the busiest; pairs each slice with the next (one
is A, the other B) and prints both rates and the median B/A ratio.
usage: ab_slices.py FILE"""
import sys, statistics
rows=[tuple(int(x) for x in l.split()) for l in open(sys.argv[1]) if l.strip()]
# drop slices with few frames (startup/shutdown) and first 20 (warm-up)
mx=max(r[1] for r in rows)
rows=[r for r in rows if r[1] > 0.3*mx][20:-2]
ratios=[]; rates={0:[],1:[]}
for a,b in zip(rows, rows[1:]):
    ra=a[1]/a[2]*1e3; rb=b[1]/b[2]*1e3
    rates[a[0]].append(ra)
    if a[0]==0 and b[0]==1: ratios.append(rb/ra)
    if a[0]==1 and b[0]==0: ratios.append(ra/rb)
print(f"slices {len(rows)} pairs {len(ratios)}  off {statistics.median(rates[0]):.3f} Mpps  on {statistics.median(rates[1]):.3f} Mpps  on/off median {statistics.median(ratios):.4f} mean {statistics.mean(ratios):.4f} wins {sum(r>1 for r in ratios)}/{len(ratios)}")
