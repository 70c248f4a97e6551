#!/usr/bin/env python3
"""diffusers (PyTorch, SDPA attention) timed the way tests/gpu/bench_gpu times the engine.

    python3 tools/bench_diffusers_gpu.py --model DIR [--dtype fp16] [--size 512]
        [--repeat 10] [--steps 20] [--batches 1,4,8,16] [--budget 150] [--json FILE]
        [--device cuda]

Parts, as bench_gpu's: unet_step (one U-Net call on 2 rows, latent size/8, 77 tokens,
t=999), vae_decode (one latent to a size×size image), txt2img (images/s of
StableDiffusionPipeline calls of B prompts, Euler, CFG 7.5, output_type "np").
Medians of --repeat runs after warm-up, with torch.cuda.synchronize around each; the
attention processor is diffusers' default (AttnProcessor2_0: torch SDPA).  A part
past --budget seconds is skipped.  --device cpu (f32) checks this script without a GPU.
"""
import argparse
import json
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default="fp16")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batches", default="1,4,8,16")
    ap.add_argument("--budget", type=float, default=150)
    ap.add_argument("--json")
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    t_start = time.time()
    out = {"stack": "diffusers", "results": [], "ok": False}

    def save():
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)

    try:
        import os
        import torch
        import diffusers
        from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline,
                               UNet2DConditionModel)

        dev = a.device
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
        if dev == "cpu":
            dtype = torch.float32
        out.update(torch=torch.__version__, diffusers=diffusers.__version__,
                   dtype=str(dtype).replace("torch.", ""), size=a.size,
                   device=torch.cuda.get_device_name(0) if dev == "cuda" else "cpu")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = False
        t0 = time.time()
        # U-Net and VAE alone first: their figures do not depend on the text side
        unet = UNet2DConditionModel.from_pretrained(os.path.join(a.model, "unet"),
                                                    torch_dtype=dtype).to(dev)
        vae = AutoencoderKL.from_pretrained(os.path.join(a.model, "vae"),
                                            torch_dtype=dtype).to(dev)
        out["attention_processor"] = type(next(iter(unet.attn_processors.values()))).__name__
        print(f"diffusers {diffusers.__version__}, torch {torch.__version__}, {out['device']}, "
              f"{out['attention_processor']}; loaded in {time.time() - t0:.1f} s", flush=True)

        def sync():
            if dev == "cuda":
                torch.cuda.synchronize()

        def timed(fn, warm, repeat):
            for _ in range(warm):
                fn()
            sync()
            ts = []
            for _ in range(repeat):
                t = time.perf_counter()
                fn()
                sync()
                ts.append(time.perf_counter() - t)
                if time.time() - t_start > a.budget and len(ts) >= 1:
                    break
            return statistics.median(ts), min(ts)

        h = a.size // 8
        g = torch.Generator(device="cpu").manual_seed(0)
        x = torch.randn(2, 4, h, h, generator=g).to(dev, dtype)
        ctx = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g).to(dev, dtype)
        t = torch.tensor([999, 999], device=dev)
        with torch.inference_mode():
            med, best = timed(lambda: unet(x, t, encoder_hidden_states=ctx).sample, 3, a.repeat)
        print(f"unet_step  batch 2 (CFG), latent {h}x{h}: median {med * 1e3:.2f} ms, "
              f"best {best * 1e3:.2f} ms", flush=True)
        out["results"].append({"part": "unet_step", "rows": 2, "latent": h,
                               "median_ms": med * 1e3, "best_ms": best * 1e3})
        save()

        z = torch.randn(1, 4, h, h, generator=g).to(dev, dtype)
        sf = vae.config.scaling_factor
        with torch.inference_mode():
            med, best = timed(lambda: vae.decode(z / sf).sample, 2, a.repeat)
        print(f"vae_decode 1 image {a.size}x{a.size}: median {med * 1e3:.2f} ms, "
              f"best {best * 1e3:.2f} ms", flush=True)
        out["results"].append({"part": "vae_decode", "size": a.size, "median_ms": med * 1e3,
                               "best_ms": best * 1e3})
        save()

        pipe = StableDiffusionPipeline.from_pretrained(
            a.model, unet=unet, vae=vae, torch_dtype=dtype, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        pipe = pipe.to(dev)
        pipe.set_progress_bar_config(disable=True)
        prompt = "a photograph of an astronaut riding a horse"
        for b in [int(v) for v in a.batches.split(",") if v]:
            if time.time() - t_start > a.budget:
                print(f"txt2img    batch {b} skipped: the {a.budget:.0f} s budget is spent")
                continue

            def run():
                pipe(prompt=[prompt] * b, height=a.size, width=a.size,
                     num_inference_steps=a.steps, guidance_scale=7.5, output_type="np")

            with torch.inference_mode():
                med, best = timed(run, 1, min(a.repeat, 3))
            print(f"txt2img    batch {b:2d}, {a.steps} Euler steps, CFG: {b / med:.2f} images/s "
                  f"(median {med:.3f} s per batch)", flush=True)
            out["results"].append({"part": "txt2img", "batch": b, "steps": a.steps,
                                   "images_per_s": b / med, "median_s": med})
            save()
        out["ok"] = True
    except Exception as e:  # the log and the JSON say what broke; the run goes on
        out["error"] = f"{type(e).__name__}: {e}"
        print("diffusers bench failed:", out["error"], file=sys.stderr, flush=True)
    save()
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
