#!/usr/bin/env python3
"""diffusiond against diffusers on PyTorch, CPU fp32, side by side in one run.

    python3 tools/bench_cpu_vs_torch.py [--model DIR] [--threads N] [--repeat N]
                                        [--rounds N] [--size 512] [--json FILE]

Times, on the same weights and the same number of threads:

  unet  one U-Net step with classifier-free guidance: batch 2 (the cond and uncond
        rows of one image), latent size/8, 77 context tokens, t = 999;
        diffusers: UNet2DConditionModel(sample, t, encoder_hidden_states).sample
  vae   one VAE decode of one latent to a size x size image;
        diffusers: AutoencoderKL.decode(z).sample

Every measurement is a fresh process that loads only that component, runs it once
to warm up and then --repeat timed runs: ours is `diffusiond bench model --only
PART` (server/bench_model.c), PyTorch's is this script in --torch-worker mode
(torch.set_num_threads(N), torch.inference_mode(), fp32, diffusers' default
attention processor).  The processes run one at a time, alternating ours/PyTorch
and swapping the order every round (--rounds), so that a burst of load from other
processes does not fall on one side only.  The figure is the median of all timed
runs of a side; the ratio is PyTorch's median over ours (> 1: we are faster).

Memory, per process (the same definitions both sides, from /proc/self/status):
  RSS after load   VmRSS with the component loaded (ours: checkpoint closed);
  peak in runs     VmHWM over the warm-up and timed runs, the high-water mark having
                   been reset (clear_refs 5) after loading;
  process peak     the larger of that and the peak while loading.
PyTorch's figures include the interpreter and the torch/diffusers libraries
(reported as `baseline`: VmRSS after the imports, before loading).

The model is the SD1.5-size random-weight diffusers folder of
`tools/make_fixtures.py --full` (docs/fixtures.md); when it is absent this script
makes it (--only sd15-full; takes a while and ~8 GB of disk).
"""
import argparse
import datetime
import glob
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FULL = "/tmp/diffusiond-full"
PARTS = ("unet", "vae")


# --- memory and time helpers (both modes) ------------------------------------------

def proc_kib(field):
    """A /proc/self/status field in KiB ("VmRSS", "VmHWM"), or -1."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# --- the PyTorch worker ------------------------------------------------------------

def torch_worker(args):
    """Runs one part with diffusers in this process; prints one JSON line."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    torch.set_num_threads(args.threads)
    import diffusers
    baseline = proc_kib("VmRSS")
    h = args.size // 8
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    if args.torch_worker == "unet":
        model = diffusers.UNet2DConditionModel.from_pretrained(
            os.path.join(args.model, "unet"), torch_dtype=torch.float32).eval()
        cfg = model.config
        x = torch.randn(args.batch, cfg.in_channels, h, h, generator=gen)
        ctx = torch.randn(args.batch, 77, cfg.cross_attention_dim, generator=gen)
        t = torch.full((args.batch,), 999, dtype=torch.int64)
        what = f"unet step, batch {args.batch}, latent {h}x{h}"
        attn = sorted({type(p).__name__ for p in model.attn_processors.values()})

        def run():
            return model(x, t, encoder_hidden_states=ctx).sample
    else:
        model = diffusers.AutoencoderKL.from_pretrained(
            os.path.join(args.model, "vae"), torch_dtype=torch.float32).eval()
        z = torch.randn(1, model.config.latent_channels, h, h, generator=gen)
        what = f"vae decode, 1 image {args.size}x{args.size}"
        attn = sorted({type(p).__name__ for p in model.attn_processors.values()})

        def run():
            return model.decode(z).sample
    load_s = time.perf_counter() - t0
    rss_load, peak_load = proc_kib("VmRSS"), proc_kib("VmHWM")
    reset = reset_peak_rss()
    runs, cpus = [], []
    with torch.inference_mode():
        t0 = time.perf_counter()
        run()
        warmup = time.perf_counter() - t0
        for _ in range(args.repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            run()
            runs.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
    peak_run = proc_kib("VmHWM") if reset else -1
    print(json.dumps({
        "what": what, "seconds": statistics.median(runs), "best_seconds": min(runs),
        "worst_seconds": max(runs), "cpu_seconds": statistics.median(cpus),
        "warmup_seconds": warmup, "load_seconds": load_s, "runs_seconds": runs,
        "baseline_rss_kib": baseline, "rss_after_load_kib": rss_load,
        "peak_rss_load_kib": peak_load, "peak_rss_runs_kib": peak_run,
        "peak_rss_part_kib": max(peak_run, peak_load),
        "torch": torch.__version__, "diffusers": diffusers.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "attn_processors": attn,
    }))


# --- the driver --------------------------------------------------------------------

def find_binary(path):
    """--diffusiond, else build/server/diffusiond, else the newest build*/server/diffusiond."""
    if path:
        return path
    main = os.path.join(ROOT, "build", "server", "diffusiond")
    if os.access(main, os.X_OK):
        return main
    cands = [p for p in glob.glob(os.path.join(ROOT, "build*", "server", "diffusiond"))
             if os.access(p, os.X_OK) and "san" not in p]
    if not cands:
        sys.exit("no diffusiond binary under build*/server/: build it or pass --diffusiond")
    return max(cands, key=os.path.getmtime)


def ensure_model(args):
    if os.path.isfile(os.path.join(args.model, "model_index.json")):
        return
    if args.model != os.path.join(DEFAULT_FULL, "sd15-full", "diffusers"):
        sys.exit(f"{args.model}: not a diffusers folder")
    print(f"{args.model} absent: making it with tools/make_fixtures.py --full --only sd15-full",
          flush=True)
    t0 = time.time()
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_fixtures.py"), "--full",
                    "--only", "sd15-full", "--out", DEFAULT_FULL], check=True, cwd=ROOT)
    print(f"made in {time.time() - t0:.0f} s", flush=True)


def run_ours(args, binary, part):
    out = f"/tmp/diffusiond-bench-ours-{os.getpid()}-{part}.json"
    cmd = [binary, "bench", "model", "--model", args.model, "--threads", str(args.threads),
           "--repeat", str(args.repeat), "--size", str(args.size), "--batch", str(args.batch),
           "--only", part, "--json", out]
    p = subprocess.run(args.prefix + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{shlex.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    with open(out) as f:
        res = json.load(f)
    os.unlink(out)
    r = res["parts"][part]
    r["openblas_coretype"], r["openblas_core"] = res["openblas_coretype"], res["openblas_core"]
    r["avx512_gemm"] = res["avx512_gemm"]
    return r


def run_torch(args, part):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", part, "--model",
           args.model, "--threads", str(args.threads), "--repeat", str(args.repeat),
           "--size", str(args.size), "--batch", str(args.batch)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1")
    p = subprocess.run(args.prefix + cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{shlex.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure(args, binary, side, part):
    la0 = loadavg()
    t0 = time.time()
    r = run_ours(args, binary, part) if side == "ours" else run_torch(args, part)
    r["wall_of_process"] = time.time() - t0
    r["loadavg_before"], r["loadavg_after"] = la0, loadavg()
    s = " ".join(f"{x:.2f}" for x in r["runs_seconds"])
    la = f"{la0[0]:.2f}" if la0 else "?"
    print(f"  {side:5s} {part:4s}: runs {s} s (median {r['seconds']:.2f}, CPU "
          f"{r['cpu_seconds']:.2f} s/run), peak RSS {r['peak_rss_part_kib'] / 1024:.0f} MiB, "
          f"load avg {la}", flush=True)
    return r


def summarise(part, rows):
    out = {}
    for side in ("ours", "torch"):
        rs = rows[side]
        runs = [x for r in rs for x in r["runs_seconds"]]
        out[side] = {
            "median_seconds": statistics.median(runs), "best_seconds": min(runs),
            "runs_seconds": runs,
            "cpu_seconds_per_run": statistics.median([r["cpu_seconds"] for r in rs]),
            "rss_after_load_mib": max(r["rss_after_load_kib"] for r in rs) / 1024,
            "peak_rss_runs_mib": max(r["peak_rss_runs_kib"] for r in rs) / 1024,
            "peak_rss_process_mib": max(r["peak_rss_part_kib"] for r in rs) / 1024,
            "load_seconds": statistics.median([r["load_seconds"] for r in rs]),
            "what": rs[0]["what"],
        }
        if side == "torch":
            out[side]["baseline_rss_mib"] = max(r["baseline_rss_kib"] for r in rs) / 1024
    out["ratio_torch_over_ours"] = out["torch"]["median_seconds"] / out["ours"]["median_seconds"]
    out["ratio_best"] = out["torch"]["best_seconds"] / out["ours"]["best_seconds"]
    # CPU seconds a run took: insensitive to other processes taking turns on the cores
    out["ratio_cpu_seconds"] = (out["torch"]["cpu_seconds_per_run"] /
                                out["ours"]["cpu_seconds_per_run"])
    return out


def machine_info(args, torch_row, ours_row):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu, "cpus_online": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)), "memory_gib": round(mem, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "torch": torch_row["torch"], "diffusers": torch_row["diffusers"],
        "torch_threads": torch_row["torch_threads"],
        "torch_interop_threads": torch_row["torch_interop_threads"],
        "torch_mkldnn": torch_row["mkldnn"],
        "torch_attn_processors": torch_row["attn_processors"],
        "openblas_coretype": ours_row["openblas_coretype"],
        "openblas_core": ours_row["openblas_core"], "avx512_gemm": ours_row["avx512_gemm"],
        "threads": args.threads, "repeat": args.repeat, "rounds": args.rounds,
        "cpus": args.cpus or "all",
    }


def print_table(summary, info, la):
    print(f"\n{info['date_utc']} UTC, {info['cpu']}, {info['cpus_allowed']} CPUs, "
          f"{info['memory_gib']} GiB; {info['threads']} threads both sides; torch "
          f"{info['torch']} (diffusers {info['diffusers']}, {info['torch_threads']} threads, "
          f"{'/'.join(info['torch_attn_processors'])}); OPENBLAS_CORETYPE="
          f"{info['openblas_coretype']}; load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
          "at start")
    print(f"\n{'part':34s} {'ours s':>8s} {'torch s':>8s} {'torch/ours':>10s} "
          f"{'ours peak MiB':>14s} {'torch peak MiB':>15s} {'ours CPU s':>10s} {'torch CPU s':>11s} "
          f"{'CPU ratio':>9s}")
    for part, s in summary.items():
        o, t = s["ours"], s["torch"]
        print(f"{o['what']:34s} {o['median_seconds']:8.2f} {t['median_seconds']:8.2f} "
              f"{s['ratio_torch_over_ours']:10.2f} "
              f"{o['peak_rss_process_mib']:14.0f} {t['peak_rss_process_mib']:15.0f} "
              f"{o['cpu_seconds_per_run']:10.2f} {t['cpu_seconds_per_run']:11.2f} "
              f"{s['ratio_cpu_seconds']:9.2f}")
    print("\nseconds: median of every timed run of a side; CPU s: median CPU seconds of a run "
          "(all threads), whose ratio does not move when other processes share the cores")
    print("peak = process peak RSS (load included); in the runs / after load:")
    for part, s in summary.items():
        o, t = s["ours"], s["torch"]
        print(f"  {part}: ours {o['peak_rss_runs_mib']:.0f} / {o['rss_after_load_mib']:.0f} MiB,"
              f" torch {t['peak_rss_runs_mib']:.0f} / {t['rss_after_load_mib']:.0f} MiB "
              f"(torch baseline after imports {t['baseline_rss_mib']:.0f} MiB)")


def driver(args):
    binary = find_binary(args.diffusiond)
    ensure_model(args)
    la_start = loadavg()
    print(f"diffusiond: {binary}\nmodel: {args.model}\n{args.rounds} round(s) x "
          f"{args.repeat} timed runs per process, {args.threads} threads", flush=True)
    rows = {p: {"ours": [], "torch": []} for p in args.parts}
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}/{args.rounds}", flush=True)
        for part in args.parts:
            order = ("ours", "torch") if rnd % 2 == 0 else ("torch", "ours")
            for side in order:
                rows[part][side].append(measure(args, binary, side, part))
    summary = {p: summarise(p, rows[p]) for p in args.parts}
    first = args.parts[0]
    info = machine_info(args, rows[first]["torch"][0], rows[first]["ours"][0])
    la_end = loadavg()
    info["loadavg_start"], info["loadavg_end"] = la_start, la_end
    print_table(summary, info, la_start)
    print(f"load average at the end: {la_end[0]:.2f} {la_end[1]:.2f} {la_end[2]:.2f}")
    result = {"command": shlex.join([sys.argv[0]] + sys.argv[1:]), "machine": info,
              "summary": summary, "processes": rows}
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nwritten {args.json}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(DEFAULT_FULL, "sd15-full", "diffusers"),
                    help="diffusers folder (default: the --full SD1.5-size set)")
    ap.add_argument("--diffusiond", help="the binary (default: newest build*/server/diffusiond)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per process")
    ap.add_argument("--rounds", type=int, default=2,
                    help="processes per side and part, alternating the order")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=2, help="U-Net rows (2 = CFG pair)")
    ap.add_argument("--parts", default="unet,vae")
    ap.add_argument("--cpus", help="run both sides under `taskset -c CPUS`")
    ap.add_argument("--json", default="/tmp/diffusiond-bench-cpu-vs-torch.json")
    ap.add_argument("--torch-worker", choices=PARTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args)
        return
    args.parts = [p for p in args.parts.split(",") if p]
    if not args.parts or any(p not in PARTS for p in args.parts):
        ap.error("--parts: unet and/or vae")
    args.prefix = ["taskset", "-c", args.cpus] if args.cpus else []
    driver(args)


if __name__ == "__main__":
    main()
