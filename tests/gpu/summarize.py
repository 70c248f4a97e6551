#!/usr/bin/env python3
"""Merges tests/gpu/check.sh's outputs in $OUT into $OUT/summary.json and prints it.

Reads ops.json and pipeline.json (one JSON object per line), bench.json (bench_gpu)
and diffusers.json (tools/bench_diffusers_gpu.py), and $STAGES_JSON (the stages' exit
codes and times).  Adds the engine/diffusers ratios and the issue's goals on an H100:
U-Net step ≤ 6 ms (batch 1 with CFG), ≥ 10 images/s at 20 steps, VAE decode ≤ 10 ms,
≥ 2× diffusers.  Missing files are reported as missing, never invented.
"""
import json
import os
import sys


def lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError) as e:
        return {"missing": f"{path}: {e}"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"missing": f"{path}: {e}"}


def part(res, name, **kw):
    for r in res.get("results", []) if isinstance(res, dict) else []:
        if r.get("part") == name and all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def main():
    out = os.environ.get("OUT")
    if not out:  # check.sh always sets it; by hand, name the folder
        sys.exit("summarize.py: set OUT to check.sh's output folder")
    s = {"stages": json.loads(os.environ.get("STAGES_JSON", "[]"))}
    ops = lines(os.path.join(out, "ops.json"))
    if isinstance(ops, list):
        # reports, no verdict; conv_fused_case: whether cuDNN fused each [convfuse] case
        info = {o["info"]: o.get("count") for o in ops
                if "info" in o and o["info"] != "conv_fused_case"}
        cases = [o for o in ops if o.get("info") == "conv_fused_case"]
        if cases:
            info["conv_fused_cases"] = sum(1 for o in cases if o.get("count"))
            info["conv_unfused_cases"] = [o.get("case") for o in cases if not o.get("count")]
        ops = [o for o in ops if "info" not in o]
        s["ops"] = {"passed": sum(1 for o in ops if o.get("ok")),
                    "failed": [f"{o.get('op')}/{o.get('dtype', '')}" for o in ops if not o.get("ok")],
                    **info}
    else:
        s["ops"] = ops
    pipe = lines(os.path.join(out, "pipeline.json"))
    s["pipeline"] = pipe
    ours, theirs = load(os.path.join(out, "bench.json")), load(os.path.join(out, "diffusers.json"))
    s["bench"], s["diffusers"] = ours, theirs
    ratios, goals = {}, {}
    u, du = part(ours, "unet_step", rows=2), part(theirs, "unet_step")
    v, dv = part(ours, "vae_decode"), part(theirs, "vae_decode")
    ug = part(ours, "unet_step_graph")
    # the plan bench_gpu ran its later parts with; when it adopted a combination of the
    # faster choices, that combination's step ("unet_step_best") is the step figure
    plan = part(ours, "plan")
    s["plan"] = plan["plan"] if plan else None
    ub, ubg = part(ours, "unet_step_best", rows=2), part(ours, "unet_step_best_graph")
    adopted = plan.get("adopted") if plan else None  # bench_gpu's own decision
    if adopted is None:  # a bench.json from before it wrote one
        adopted = bool(ub and u and ub["median_ms"] < u["median_ms"])
    if adopted and ub:
        s["plan_adopted"] = True
        u, ug = ub, ubg
    if u:
        s["unet_step_ms"] = {"eager": u["median_ms"], "graph": ug["median_ms"] if ug else None}
        goals["unet_step_le_6ms"] = min(u["median_ms"], ug["median_ms"] if ug else 1e9) <= 6.0
    if v:
        goals["vae_decode_le_10ms"] = v["median_ms"] <= 10.0
    if u and du:
        ratios["unet_step_speedup"] = du["median_ms"] / u["median_ms"]
    if v and dv:
        ratios["vae_decode_speedup"] = dv["median_ms"] / v["median_ms"]
    best_ips = 0.0
    for b in (1, 4, 8, 16):  # ours through the scheduler; diffusers: one pipeline call of b
        # ours: the faster of eager and recorded U-Net graphs (serve replays graphs by
        # default, --unet-graphs)
        runs = [r for r in (part(ours, "scheduler", batch=b),
                            part(ours, "scheduler_graphs", batch=b)) if r]
        t = max(runs, key=lambda r: r["images_per_s"]) if runs else None
        dt = part(theirs, "txt2img", batch=b)
        if t:
            best_ips = max(best_ips, t["images_per_s"])
        if t and dt:
            ratios[f"images_per_s_b{b}_speedup"] = t["images_per_s"] / dt["images_per_s"]
    # the scheduler with recorded U-Net graphs (scheduler_config.unet_graphs, off by default)
    s["graphs"] = {}
    for b in (1, 4, 8, 16):
        t, tg = part(ours, "scheduler", batch=b), part(ours, "scheduler_graphs", batch=b)
        if t and tg:
            s["graphs"][str(b)] = {"images_per_s": t["images_per_s"],
                                   "with_graphs": tg["images_per_s"],
                                   "replays": tg.get("graph_replays")}
    if best_ips:
        goals["ge_10_images_per_s"] = best_ips >= 10.0
        s["best_images_per_s"] = best_ips
    if ratios:
        goals["ge_2x_diffusers"] = all(r >= 2.0 for r in ratios.values())
    s["ratios"], s["goals"] = ratios, goals
    # where a U-Net step's time goes (bench_gpu --profile): ms per op kind at 2 and 16 rows,
    # and a VAE decode's ("vae")
    s["profile"] = {(str(r["rows"]) if r["part"] == "profile_unet" else "vae"):
                    {k: r[k] for k in r if k.endswith("_ms")}
                    for r in (ours.get("results", []) if isinstance(ours, dict) else [])
                    if r.get("part") in ("profile_unet", "profile_vae")}
    # the plan table: each alternative's U-Net step at 2 and 16 rows against the base
    # (bench_gpu's unet_step_<trial>), the decision input for the defaults
    # and replayed from CUDA graphs ("<part>_graph" at 2 rows, "<part>_16_graph" at 16:
    # what bench_gpu decides on since run 8)
    base2, base16 = part(ours, "unet_step", rows=2), part(ours, "unet_step", rows=16)
    gbase2, gbase16 = part(ours, "unet_step_graph"), part(ours, "unet_step_16_graph")
    table = {}
    for r in (ours.get("results", []) if isinstance(ours, dict) else []):
        name = r.get("part", "")
        if not name.startswith("unet_step_"):
            continue
        if "rows" in r and not name.endswith("_graph"):
            rows, kind, key = r["rows"], "", name[len("unet_step_"):]
            base = base2 if rows == 2 else base16
        elif name.endswith("_graph") and name not in ("unet_step_graph", "unet_step_16_graph"):
            key = name[len("unet_step_"):-len("_graph")]
            rows = 16 if key.endswith("_16") else 2
            key = key[:-len("_16")] if rows == 16 else key
            kind, base = "graph_", gbase2 if rows == 2 else gbase16
        else:
            continue
        entry = table.setdefault(key, {})
        entry[f"{rows}_rows_{kind}ms"] = r["median_ms"]
        if base:
            entry[f"{rows}_rows_{kind}vs_base"] = round(r["median_ms"] / base["median_ms"], 3)
    if table:
        s["plan_table"] = table
    # the attention kernels' TFLOP/s per shape and variant (bench_gpu's attention table)
    att = {}
    for r in (ours.get("results", []) if isinstance(ours, dict) else []):
        if r.get("part") == "attention":
            shape = f"{r['batch']}x{r['tokens']}x{r['channels']}/{r['heads']}"
            att.setdefault(shape, {})[r["variant"]] = r["tflops"]
    if att:
        s["attention_tflops"] = att
    # GroupNorm+SiLU µs a call per shape and kernel (bench_gpu's GroupNorm table)
    gn = {}
    for r in (ours.get("results", []) if isinstance(ours, dict) else []):
        if r.get("part") == "group_norm":
            gn.setdefault(r["shape"], {})[r["variant"]] = r["us"]
    if gn:
        s["group_norm_us"] = gn
    lanes = part(ours, "scheduler_lanes")  # two sizes, 1 lane against 2 (bench_gpu)
    if lanes:
        s["scheduler_lanes"] = {k: lanes.get(k) for k in (
            "batch", "size2", "images_per_s_1_lane", "images_per_s_2_lanes", "ratio",
            "side_by_side_calls")}
    # the scheduler's goodput per mode on the GPU (diffusiond bench load --in-process)
    sched = load(os.path.join(out, "load.json"))
    if isinstance(sched, dict) and "goodput" in sched:
        s["load"] = {k: sched.get(k) for k in ("target", "device", "model",
                                                "mean_single_request_s", "goodput", "ratios",
                                                "capacity_per_s", "capacity_graph_replayed",
                                                "capacity_unet_call_ms", "capacity_unet_call_p50_ms",
                                                "capacity_unet_call_p99_ms", "capacity_worker_busy",
                                                "capacity_decoding", "capacity_graphs_recorded",
                                                "capacity_concurrent_calls",
                                                "unbracketed", "complete")}
        r = sched.get("ratios", {})
        open_ended = any((sched.get("unbracketed") or {}).values())  # --budget ran out
        if open_ended:
            goals["sched_goodput_bracketed"] = False
        elif "step_request" in r and "step_none" in r:
            goals["sched_step_ge_2x_request"] = r["step_request"] >= 2.0
            goals["sched_step_ge_3x_none"] = r["step_none"] >= 3.0
    # step mode again with one lane (check.sh's load1 stage): what lanes change
    one = load(os.path.join(out, "load-lanes1.json"))
    if isinstance(one, dict) and "goodput" in one:
        s["load_lanes1"] = {k: one.get(k) for k in ("goodput", "capacity_per_s",
                                                     "capacity_unet_call_ms", "unbracketed")}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(s, f, indent=1)
    print(json.dumps({k: s[k] for k in ("stages", "ops", "plan", "unet_step_ms", "plan_table",
                                         "attention_tflops", "group_norm_us", "ratios", "goals", "profile",
                                         "graphs", "scheduler_lanes", "load", "load_lanes1")
                      if k in s}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
