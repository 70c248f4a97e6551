#!/usr/bin/env python3
"""The engine's GEMM-class ops against oneDNN (what PyTorch uses on CPUs), side by side
in one run: `diffusiond bench ops --only conv,sgemm` and tools/onednn_bench alternate
for --rounds rounds on the same cores and thread count; per shape, the median of the
rounds' medians and the ratio ours/oneDNN.

    python3 tools/bench_ops_vs_onednn.py [--build build] [--rounds 3] [--repeat 3] [--threads 2]

Needs a build with oneDNN found (Debian's libdnnl-dev: the onednn_conv_bench target).
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile


def ours(build, threads, repeat):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([os.path.join(build, "server", "diffusiond"), "bench", "ops", "--only",
                        "conv,sgemm", "--threads", str(threads), "--repeat", str(repeat),
                        "--json", f.name], check=True, stdout=subprocess.DEVNULL)
        rows = json.load(open(f.name))["rows"]
    return {r["op"]: r["value"] for r in rows if r["path"] == "avx512"}


def onednn(build, threads, repeat):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([os.path.join(build, "tools", "onednn_bench", "onednn_conv_bench"),
                          "--repeat", str(repeat)], check=True, env=env, text=True,
                         capture_output=True).stdout
    res = {}
    for line in out.splitlines():
        if line.startswith("#") or line.startswith("shape"):
            continue
        parts = line.rsplit(None, 2)
        res[parts[0].strip()] = float(parts[2])
    return res, out.splitlines()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    a_rounds, b_rounds, header = [], [], ""
    for r in range(a.rounds):
        if r % 2 == 0:
            a_rounds.append(ours(a.build, a.threads, a.repeat))
            res, header = onednn(a.build, a.threads, a.repeat)
            b_rounds.append(res)
        else:
            res, header = onednn(a.build, a.threads, a.repeat)
            b_rounds.append(res)
            a_rounds.append(ours(a.build, a.threads, a.repeat))
    print(f"{header}; {a.threads} threads, {a.rounds} rounds alternating, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'shape':32} {'ours GFLOP/s':>13} {'oneDNN':>10} {'ours/oneDNN':>12}")
    for op in a_rounds[0]:
        if op not in b_rounds[0]:
            continue
        x = statistics.median(r[op] for r in a_rounds)
        y = statistics.median(r[op] for r in b_rounds)
        print(f"{op:32} {x:13.1f} {y:10.1f} {x / y:12.2f}")


if __name__ == "__main__":
    main()
