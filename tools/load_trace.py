#!/usr/bin/env python3
"""Where the tail of a `diffusiond bench load --trace FILE` run is made.

For each mode and rate: the slowdown quantiles, and the worst requests with the
server's own account of their time (queue, text encode, denoise, VAE decode, and what
none of those covers: the wait between admission and the first step, between the last
step and the decode, or HTTP and image encoding outside the server's total).

    python3 tools/load_trace.py TRACE.csv [--worst N] [--mode step|request|none]
"""
import argparse
import csv
import sys
from collections import defaultdict


def quantile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 1)) - 1))
    return sorted_values[i]


def number(row, key):
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--worst", type=int, default=5, help="requests listed per mode and rate")
    ap.add_argument("--mode", help="only this mode")
    a = ap.parse_args()
    with open(a.trace, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        print(f"{a.trace}: no requests")
        return 1
    groups = defaultdict(list)
    for r in rows:
        if a.mode and r["mode"] != a.mode:
            continue
        groups[(r["mode"], float(r["rate"]))].append(r)
    for (mode, rate), reqs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        ok = [r for r in reqs if r["outcome"] == "ok"]
        slow = sorted(number(r, "slowdown") for r in ok)
        bad = len(reqs) - len(ok)
        print(f"{mode} at {rate:.2f}/s: {len(reqs)} requests ({bad} not ok); slowdown "
              f"p50 {quantile(slow, 0.5):.2f} p95 {quantile(slow, 0.95):.2f} "
              f"max {slow[-1] if slow else float('nan'):.2f}")
        worst = sorted(ok, key=lambda r: -number(r, "slowdown"))[: a.worst]
        for r in worst:
            q, enc, den, dec, tot = (number(r, k) for k in
                                     ("queue_s", "encode_s", "denoise_s", "decode_s", "total_s"))
            lat = number(r, "latency_s")
            between = tot - (q + enc + den + dec)  # admitted but not stepping or decoding
            outside = lat - tot                    # HTTP, PNG, the client
            print(f"  t {number(r, 'arrival_s'):7.2f}  {r['size']:>4}² {r['steps']:>2} steps "
                  f"{r['sampler']:<9} slowdown {number(r, 'slowdown'):5.2f}  latency "
                  f"{lat:.3f} (alone {number(r, 'alone_s'):.3f}): queue {q:.3f} encode "
                  f"{enc:.3f} denoise {den:.3f} decode {dec:.3f} waiting {between:.3f} "
                  f"outside {outside:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
