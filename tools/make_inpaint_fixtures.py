#!/usr/bin/env python3
"""Make the inpainting parity fixtures: diffusers' StableDiffusionInpaintPipeline with the
committed tiny SD1 model (tests/fixtures/sd/sd1-tiny/diffusers: a 4-channel U-Net, so
the pipeline resets the unmasked latent pixels after every step), with every random
draw captured, so tests/unit/test_img2img.c can run the C pipeline on the same noise
and compare.  See docs/fixtures.md ("inpainting") for the contents.

    python tools/make_inpaint_fixtures.py   # → tests/fixtures/sd/sd1-tiny/reference/inpaint_*.safetensors

Run it after tools/make_fixtures.py (which rewrites tests/fixtures/sd/ and its
manifest); it adds its files and an `inpaint` entry to pipelines.sd1-tiny in
tests/fixtures/sd/manifest.json.  Same environment as tools/make_fixtures.py
(tools/requirements-fixtures.txt).
"""

import argparse
import importlib.util
import inspect
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_fixtures as mf  # noqa: E402
from make_img2img_fixtures import capture_draws, init_image, write_cases  # noqa: E402

PIPE = "sd1-tiny"

# (name, scheduler class, scheduler overrides, call kwargs); CFG 7.5 with make_fixtures'
# PROMPT / NEG.  strength 1.0 is diffusers' inpainting default: the start is pure noise.
CASES = [
    ("euler", "EulerDiscreteScheduler", {}, dict(sampler="euler", steps=8, strength=1.0)),
    ("euler_a", "EulerAncestralDiscreteScheduler", {}, dict(sampler="euler_a", steps=8, strength=0.75)),
    ("dpmpp_2m", "DPMSolverMultistepScheduler", {}, dict(sampler="dpmpp_2m", steps=10, strength=0.6)),
    ("ddim", "DDIMScheduler", {}, dict(sampler="ddim", steps=10, strength=1.0, eta=0.0)),
    ("euler_96x64", "EulerDiscreteScheduler", {},
     dict(sampler="euler", steps=8, strength=0.8, width=96, height=64)),
    ("lcm", "LCMScheduler", {}, dict(sampler="lcm", steps=4, strength=1.0)),
]
CFG = 7.5


def mask_image(h, w):
    """A deterministic 8-bit mask (255 = repaint): a disc and a bar at 255, a soft
    edge around the disc, and latent sample points (every 8th pixel, the top-left of
    each latent pixel) at 127 and 128 along one row, on both sides of diffusers'
    binarisation threshold (value/255 ≥ 0.5)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.sqrt((x - 0.62 * w) ** 2 + (y - 0.55 * h) ** 2)
    r0 = 0.22 * min(h, w)
    m = np.clip((r0 + 6 - r) / 12, 0, 1) * 255          # a disc with a 12-pixel ramp
    m[int(0.1 * h):int(0.25 * h), int(0.05 * w):int(0.5 * w)] = 255  # a bar
    m = np.clip(np.rint(m), 0, 255).astype(np.uint8)
    row = 8 * (h // 8 - 2)                                # a latent row near the bottom
    for i, xx in enumerate(range(0, w, 8)):
        m[row, xx] = 127 if i % 2 == 0 else 128
    return m


def load_pipe(folder):
    from diffusers import StableDiffusionInpaintPipeline
    pipe = StableDiffusionInpaintPipeline.from_pretrained(
        folder, local_files_only=True, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_case(pipe, spec, case, rec, gen_seed):
    """One StableDiffusionInpaintPipeline call with its random draws captured: the
    VAE's posterior samples (the start image's, then the masked image's, which a
    4-channel U-Net never reads), the start noise, the scheduler's step noise."""
    from PIL import Image
    import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint as m_pipe

    cname, cls_name, overrides, kw = case
    sched = mf.make_scheduler(spec, cls_name, overrides)
    pipe.scheduler = sched
    H = kw.get("height", spec["size"][0])
    W = kw.get("width", spec["size"][1])
    f = pipe.vae_scale_factor
    rgb = init_image(H, W)
    mask = mask_image(H, W)
    rec.put("init_image", torch.from_numpy(rgb), "uint8 RGB, HWC: gen_params.init_image")
    rec.put("init_mask", torch.from_numpy(mask), "uint8, HW, 255 = repaint: gen_params.init_mask")
    image_in = torch.from_numpy(rgb.astype(np.float32) / np.float32(255)).permute(2, 0, 1)[None].contiguous()
    mask_in = Image.fromarray(mask, mode="L")

    draws, install, restore = capture_draws(m_pipe)

    steps, masks = [], []

    def on_step(p, i, t, kws):
        steps.append(kws["latents"].clone())
        masks.append(kws["mask"].clone())
        return kws

    decoded = {}
    orig_decode = pipe.vae.decode

    def decode_rec(z, *a, **k):
        decoded["z"] = z.clone()
        return orig_decode(z, *a, **k)

    unet_calls, unhook = mf.record_unet(pipe)
    install()
    pipe.vae.decode = decode_rec
    try:
        call = dict(prompt=mf.PROMPT, negative_prompt=mf.NEG, image=image_in, mask_image=mask_in,
                    strength=kw["strength"], num_inference_steps=kw["steps"], guidance_scale=CFG,
                    height=H, width=W, output_type="np",
                    generator=torch.Generator().manual_seed(gen_seed),
                    callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents", "mask"])
        if "eta" in kw:
            call["eta"] = kw["eta"]
        with torch.no_grad():
            image = pipe(**call).images
    finally:
        unhook()
        restore()
        del pipe.vae.decode

    steps_total = kw["steps"]
    run = int(steps_total * kw["strength"])
    t_start = steps_total - run
    assert len(unet_calls) == run == len(steps), (len(unet_calls), run, len(steps))
    assert len(draws["vae"]) == 2 and len(draws["pipe"]) == 1, {k: len(v) for k, v in draws.items()}
    eps, noise = draws["vae"][0], draws["pipe"][0]
    lat = (H // f, W // f)
    assert eps.shape == noise.shape == (1, 4) + lat
    lm = masks[0]
    assert lm.shape[2:] == lat, lm.shape
    # the latent mask is the binarised image mask at every 8th pixel (nearest)
    want = torch.from_numpy((mask[::f, ::f] >= 128).astype(np.float32))
    assert torch.equal(lm[0, 0], want), "latent mask differs from mask[::8, ::8] >= 128"

    ts = torch.stack([c["t"].reshape(()) for c in unet_calls])
    rec.put("encode_noise", eps, "ε of the start image's latent_dist.sample(generator): gen_params.encode_noise")
    rec.put("init_noise", noise, "the start noise (strength 1: × init_noise_sigma; else add_noise's): gen_params.init_noise")
    rec.put("latent_mask", lm[:1], "the mask at latent size {1,1,h,w} (binarised, nearest)")
    rec.put("t_start", torch.tensor(t_start, dtype=torch.int64), "steps − int(steps·strength)")
    rec.put("timesteps", ts, "the t passed to the U-Net at each step that ran")
    rec.put("timesteps_f32", ts.float())
    rec.put("prompt_embeds", unet_calls[0]["ctx"], "encoder_hidden_states of the U-Net batch: [uncond; cond]")
    for i, c in enumerate(unet_calls):
        rec.put(f"step.{i}.model_input", c["sample"], "U-Net input after scale_model_input")
        rec.put(f"step.{i}.unet_out", c["out"])
        rec.put(f"step.{i}.latents", steps[i], "latents after scheduler.step and the mask's reset")
    for i, d in enumerate(draws["sched"]):
        rec.put(f"noise.{i}", d, "i-th randn_tensor the scheduler drew: step_noise[t_start + i]")
    rec.put("vae_input", decoded["z"], "latents / scaling_factor")
    rec.put("image", torch.from_numpy(image), "output_type='np': NHWC float32 in [0,1] (no overlay)")

    info = {
        "sampler": kw["sampler"],
        "scheduler": {"class": cls_name, "config": {k: v for k, v in dict(sched.config).items()
                                                   if not k.startswith("_")}},
        "prompt": mf.PROMPT, "negative_prompt": mf.NEG, "height": H, "width": W,
        "steps": steps_total, "strength": kw["strength"], "guidance_scale": CFG,
        "eta": kw.get("eta"), "generator_seed": gen_seed,
        "t_start": t_start, "steps_run": run, "noise_draws": len(draws["sched"]),
        "timesteps": [float(x) for x in ts], "timestep_dtype": str(ts.dtype).replace("torch.", ""),
        "mask_repaint_fraction": float(lm.mean()),
    }
    mf.log(f"  {cname}: {W}x{H} steps {steps_total} strength {kw['strength']} → t_start {t_start}, "
           f"noise draws {len(draws['sched'])}, repainted {info['mask_repaint_fraction']:.2f} of the latent")
    return info


def main():
    write_cases("inpaint", CASES, load_pipe, run_case, seed_base=4000, compare={"image": "image"},
                entry={"generator": "tools/make_inpaint_fixtures.py",
                       "pipeline_class": "StableDiffusionInpaintPipeline (4-channel U-Net)",
                       "init_image": "tools/make_img2img_fixtures.py init_image(h, w)",
                       "init_mask": "tools/make_inpaint_fixtures.py mask_image(h, w): a disc with a soft "
                                    "edge, a bar, latent sample points at 127/128 (uint8, stored in each "
                                    "file)"},
                description=__doc__)


if __name__ == "__main__":
    main()
