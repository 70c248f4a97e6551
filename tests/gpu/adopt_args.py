#!/usr/bin/env python3
"""bench_gpu's adoption arguments from test_gpu_ops's results (ops.json, argv[1]).

bench_gpu adopts the planning choices its plan table measures faster.  A choice whose
own conformance cases failed must not be adopted, and when the default path itself
failed (or the suite did not finish) nothing is: prints `--exclude a,b` (the plan-table
names whose variant failed), `--no-adopt`, or nothing.
"""
import json
import sys

# test_gpu_ops's variant tag → bench_gpu's plan-table names (unet_step_<name>)
TAG_PLAN = {"[lean]": "lean", "[lean mma]": "lean_mma,lean_mma_t1", "[lean mma 2 tiles]": "lean_mma",
            "[exact2]": "exact2", "[gn fused]": "gn_fused", "[gn split]": "gn_split", "[gn cluster]": "gn_cluster,gn_cluster4,gn_cluster2", "[gn tile]": "gn_tile", "[pdl]": "pdl",
            "[stacked gemm]": "stacked", "[unstacked]": "unstacked", "[autotuned]": "autotune",
            "[heuristic]": "heuristic", "[im2col]": "im2col,im2col_2k,im2col_512",
            "[cudnn]": "cudnn", "[convfuse]": "convfuse"}
# variants that are no plan-table entry: their failure blocks nothing adopted (any
# unlisted tag's failure, as the default path's, adopts nothing)
OTHER_TAGS = ("[scalar]", "[padded]", "[3 stages]", "[bk 128]", "[1 sync]")
# whole-backend checks of no op's plan: the scheduler's lanes (their failure is the
# load stage's concern, not the plan table's), a buffer growing while recording
OTHER_CHECKS = ("cuda_lanes", "cuda_graph_grow")


def main():
    try:
        with open(sys.argv[1]) as f:
            ops = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError, IndexError):
        print("--no-adopt")
        return 0
    excluded = set()
    for o in ops:
        if o.get("ok") or "info" in o or o.get("op") in OTHER_CHECKS:
            continue  # passed, a report (no verdict), or no plan's concern
        name = o.get("op", "")
        tag = name[name.find("["):] if "[" in name else ""
        if tag in TAG_PLAN:
            excluded.update(TAG_PLAN[tag].split(","))
        elif tag not in OTHER_TAGS:
            print("--no-adopt")  # the default path (or a whole-backend check) failed
            return 0
    if excluded:
        print("--exclude " + ",".join(sorted(excluded)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
