#!/usr/bin/env python3
"""Make the img2img parity fixtures: diffusers' StableDiffusionImg2ImgPipeline on the
committed tiny SD1 model (tests/fixtures/sd/sd1-tiny/diffusers), with every random
draw captured, so tests/unit/test_img2img.c can run the C pipeline on the same noise
and compare.  See docs/fixtures.md ("img2img") for the contents.

    python tools/make_img2img_fixtures.py      # → tests/fixtures/sd/sd1-tiny/reference/img2img_*.safetensors

Run it after tools/make_fixtures.py (which rewrites tests/fixtures/sd/ and its
manifest): it reads the diffusers folder that script wrote and adds its files and an
`img2img` entry to pipelines.sd1-tiny in tests/fixtures/sd/manifest.json.  Same
environment as tools/make_fixtures.py (tools/requirements-fixtures.txt).
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

PIPE = "sd1-tiny"

# (name, scheduler class, scheduler overrides, call kwargs).  Every case: CFG 7.5 with
# make_fixtures' PROMPT / NEG; `sampler` is the C sampler name (models/sampler.c).
CASES = [
    ("euler", "EulerDiscreteScheduler", {}, dict(sampler="euler", steps=10, strength=0.6)),
    ("euler_a", "EulerAncestralDiscreteScheduler", {}, dict(sampler="euler_a", steps=8, strength=0.75)),
    ("dpmpp_2m", "DPMSolverMultistepScheduler", {}, dict(sampler="dpmpp_2m", steps=10, strength=0.5)),
    ("ddim", "DDIMScheduler", {}, dict(sampler="ddim", steps=10, strength=0.8, eta=0.0)),
    ("euler_96x64", "EulerDiscreteScheduler", {},
     dict(sampler="euler", steps=10, strength=0.3, width=96, height=64)),
    ("euler_karras", "EulerDiscreteScheduler", {"use_karras_sigmas": True},
     dict(sampler="euler", steps=8, strength=0.55)),
    ("dpmpp_2m_karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True},
     dict(sampler="dpmpp_2m_karras", steps=10, strength=0.7)),
    ("ddpm", "DDPMScheduler", {}, dict(sampler="ddpm", steps=10, strength=0.6)),
    ("lcm", "LCMScheduler", {}, dict(sampler="lcm", steps=4, strength=0.75)),
]
CFG = 7.5


def init_image(h, w):
    """A deterministic RGB8 picture with structure at several scales: smooth
    gradients, a soft sinusoidal pattern, a disc, a rectangle, a checkerboard patch."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, 3), np.float64)
    img[..., 0] = 255 * x / (w - 1)
    img[..., 1] = 255 * y / (h - 1)
    img[..., 2] = 128 + 90 * np.sin(2 * np.pi * (x / w + 0.5 * y / h) * 1.5)
    disc = (x - 0.32 * w) ** 2 + (y - 0.38 * h) ** 2 <= (0.2 * min(h, w)) ** 2
    img[disc] = (235, 205, 40)
    img[int(0.6 * h):int(0.88 * h), int(0.55 * w):int(0.9 * w)] = (30, 60, 200)
    y0, x0 = int(0.08 * h), int(0.62 * w)
    cb = ((np.arange(16)[:, None] // 4 + np.arange(16)[None, :] // 4) % 2) * 255
    img[y0:y0 + 16, x0:x0 + 16] = cb[..., None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def load_pipe(folder):
    from diffusers import StableDiffusionImg2ImgPipeline
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
        folder, local_files_only=True, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def capture_draws(m_pipe):
    """Wraps randn_tensor where diffusers draws an image-to-image pipeline's noise: the
    VAE's posterior sample ("vae"), the pipeline module m_pipe ("pipe") and the
    schedulers that draw step noise ("sched").  Returns (draws, install, restore):
    draws[kind] lists the tensors drawn, in order, between install() and restore()."""
    import diffusers.schedulers.scheduling_ddim as m_ddim
    import diffusers.schedulers.scheduling_ddpm as m_ddpm
    import diffusers.schedulers.scheduling_euler_ancestral_discrete as m_ea
    import diffusers.schedulers.scheduling_lcm as m_lcm
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
    m_vae = inspect.getmodule(DiagonalGaussianDistribution)
    draws = {"vae": [], "pipe": [], "sched": []}
    mods = {"vae": [m_vae], "pipe": [m_pipe], "sched": [m_ea, m_ddim, m_ddpm, m_lcm]}
    orig = {m: m.randn_tensor for ms in mods.values() for m in ms}

    def capture(kind, fn):
        def wrapped(*a, **k):
            t = fn(*a, **k)
            draws[kind].append(t.clone())
            return t
        return wrapped

    def install():
        for kind, ms in mods.items():
            for m in ms:
                m.randn_tensor = capture(kind, orig[m])

    def restore():
        for m, fn in orig.items():
            m.randn_tensor = fn
    return draws, install, restore


def run_case(pipe, spec, case, rec, gen_seed):
    """One StableDiffusionImg2ImgPipeline call with its three kinds of random draws
    captured (where each randn_tensor is called from: the VAE's posterior sample, the
    pipeline's add_noise noise, the scheduler's step noise)."""
    import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img as m_pipe

    cname, cls_name, overrides, kw = case
    sched = mf.make_scheduler(spec, cls_name, overrides)
    pipe.scheduler = sched
    H = kw.get("height", spec["size"][0])
    W = kw.get("width", spec["size"][1])
    f = pipe.vae_scale_factor
    rgb = init_image(H, W)
    rec.put("init_image", torch.from_numpy(rgb), "uint8 RGB, HWC: the C test's gen_params.init_image")
    # NCHW in [0, 1]: the image processor normalises it to 2x − 1 (a same-size resize is
    # the identity); checked below against what vae.encode received
    image_in = torch.from_numpy(rgb.astype(np.float32) / np.float32(255)).permute(2, 0, 1)[None].contiguous()

    draws, install, restore = capture_draws(m_pipe)

    enc = {}
    orig_encode = pipe.vae.encode

    def encode_rec(x, *a, **k):
        enc["x"] = x.clone()
        r = orig_encode(x, *a, **k)
        d = r.latent_dist
        enc["mean"], enc["std"] = d.mean.clone(), d.std.clone()
        return r

    added = {}
    orig_add = sched.add_noise

    def add_rec(original, noise, timesteps):
        out = orig_add(original, noise, timesteps)
        added.update(x=original.clone(), noise=noise.clone(), t=timesteps.clone(), out=out.clone())
        return out

    steps = []

    def on_step(p, i, t, kws):
        steps.append(kws["latents"].clone())
        return kws

    decoded = {}
    orig_decode = pipe.vae.decode

    def decode_rec(z, *a, **k):
        decoded["z"] = z.clone()
        return orig_decode(z, *a, **k)

    unet_calls, unhook = mf.record_unet(pipe)
    install()
    pipe.vae.encode = encode_rec
    pipe.vae.decode = decode_rec
    sched.add_noise = add_rec
    try:
        call = dict(prompt=mf.PROMPT, negative_prompt=mf.NEG, image=image_in, strength=kw["strength"],
                    num_inference_steps=kw["steps"], guidance_scale=CFG, output_type="np",
                    generator=torch.Generator().manual_seed(gen_seed),
                    callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"])
        if "eta" in kw:
            call["eta"] = kw["eta"]
        with torch.no_grad():
            image = pipe(**call).images
    finally:
        unhook()
        restore()
        del pipe.vae.encode
        del pipe.vae.decode
        del sched.add_noise

    steps_total = kw["steps"]
    run = int(steps_total * kw["strength"])        # diffusers' get_timesteps
    t_start = steps_total - run
    assert len(unet_calls) == run == len(steps), (len(unet_calls), run, len(steps))
    assert len(draws["vae"]) == 1 and len(draws["pipe"]) == 1, {k: len(v) for k, v in draws.items()}
    eps, noise = draws["vae"][0], draws["pipe"][0]
    lat = (H // f, W // f)
    assert eps.shape == noise.shape == (1, 4) + lat

    # what the pipeline did, recomputed: the preprocessed image, the posterior sample
    # scaled, add_noise's inputs
    x_want = image_in * 2 - 1
    assert torch.equal(enc["x"], x_want), float((enc["x"] - x_want).abs().max())
    sf = pipe.vae.config.scaling_factor
    z_want = (enc["mean"] + enc["std"] * eps) * sf
    assert torch.allclose(added["x"], z_want, rtol=0, atol=1e-6), float((added["x"] - z_want).abs().max())
    assert torch.equal(added["noise"], noise)
    full_ts = sched.timesteps
    assert float(added["t"].reshape(-1)[0]) == float(full_ts[t_start]), (added["t"], full_ts, t_start)

    ts = torch.stack([c["t"].reshape(()) for c in unet_calls])
    assert torch.equal(ts.to(full_ts.dtype), full_ts[t_start:]), (ts, full_ts)
    rec.put("encode_mean", enc["mean"], "latent_dist.mean of vae.encode(2·rgb/255 − 1)")
    rec.put("encode_std", enc["std"], "latent_dist.std")
    rec.put("encode_noise", eps, "ε of latent_dist.sample(generator): gen_params.encode_noise")
    rec.put("image_latents", added["x"], "(mean + std·ε)·scaling_factor: add_noise's original_samples")
    rec.put("init_noise", noise, "the noise add_noise mixes in: gen_params.init_noise (not × init_noise_sigma)")
    rec.put("add_noise_timestep", added["t"], "timesteps[t_start], add_noise's timestep")
    rec.put("latents_init", added["out"], "add_noise's output = prepare_latents' output, the first step's x_t")
    rec.put("t_start", torch.tensor(t_start, dtype=torch.int64), "steps − int(steps·strength)")
    rec.put("timesteps", ts, "the t passed to the U-Net at each step that ran (dtype as diffusers passes it)")
    rec.put("timesteps_f32", ts.float())
    rec.put("schedule_timesteps", full_ts.float(), "scheduler.timesteps of the whole `steps` schedule")
    if hasattr(sched, "sigmas"):
        rec.put("sigmas", sched.sigmas.float(), "scheduler.sigmas of the whole schedule (n+1, last 0)")
    rec.put("prompt_embeds", unet_calls[0]["ctx"], "encoder_hidden_states of the U-Net batch: [uncond; cond]")
    for i, c in enumerate(unet_calls):
        rec.put(f"step.{i}.model_input", c["sample"], "U-Net input after scale_model_input (i counts the steps "
                "that ran: schedule step t_start + i)")
        rec.put(f"step.{i}.unet_out", c["out"])
        rec.put(f"step.{i}.latents", steps[i], "latents after scheduler.step")
    for i, d in enumerate(draws["sched"]):
        rec.put(f"noise.{i}", d, "i-th randn_tensor the scheduler drew: step_noise[t_start + i]")
    rec.put("vae_input", decoded["z"], "latents / scaling_factor")
    rec.put("image", torch.from_numpy(image), "output_type='np': NHWC float32 in [0,1]")

    sat = float(((image <= 0) | (image >= 1)).mean())
    src = rgb.astype(np.float32) / 255
    info = {
        "sampler": kw["sampler"],
        "scheduler": {"class": cls_name, "config": {k: v for k, v in dict(sched.config).items()
                                                   if not k.startswith("_")}},
        "prompt": mf.PROMPT, "negative_prompt": mf.NEG, "height": H, "width": W,
        "steps": steps_total, "strength": kw["strength"], "guidance_scale": CFG,
        "eta": kw.get("eta"), "generator_seed": gen_seed,
        "t_start": t_start, "steps_run": run, "noise_draws": len(draws["sched"]),
        "timesteps": [float(x) for x in ts], "timestep_dtype": str(ts.dtype).replace("torch.", ""),
        "add_noise_timestep": float(added["t"].reshape(-1)[0]),
        "image_saturated_fraction": sat,
        "image_psnr_vs_init_db": float(10 * np.log10(1 / np.mean((image[0] - src) ** 2))),
    }
    mf.log(f"  {cname}: {W}x{H} steps {steps_total} strength {kw['strength']} → t_start {t_start}, "
           f"t={info['timesteps']}, noise draws {len(draws['sched'])}, image mean {image.mean():.3f} "
           f"std {image.std():.3f} saturated {sat:.3f}, PSNR vs init {info['image_psnr_vs_init_db']:.1f} dB")
    return info


def write_cases(kind, cases, load_pipe, run_case, seed_base, compare, entry, description):
    """The generators' common driver: parses --root/--threads, runs every case of `cases`
    through run_case(pipe, spec, case, rec, gen_seed=seed_base + i) on sd1-tiny, writes
    sd1-tiny/reference/<kind>_<case>.safetensors (replacing the earlier <kind>_ files)
    and pipelines.sd1-tiny.<kind> = entry + the cases in the manifest."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=mf.TINY_OUT, help="fixture root holding manifest.json and sd1-tiny/")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if importlib.util.find_spec("ftfy") is not None:
        sys.exit("ftfy is installed: the tokenizer would use ftfy.fix_text; uninstall it (see docs/fixtures.md)")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    root = args.root
    man_path = os.path.join(root, "manifest.json")
    with open(man_path) as fp:
        manifest = json.load(fp)
    spec = mf.SPECS[PIPE]
    folder = os.path.join(root, PIPE, "diffusers")
    refdir = os.path.join(root, PIPE, "reference")
    t0 = time.time()
    pipe = load_pipe(folder)
    files = manifest["files"]
    prefix = f"{PIPE}/reference/{kind}_"
    for k in [k for k in files if k.startswith(prefix)]:
        del files[k]
    generator = entry["generator"]
    done = {}
    for i, case in enumerate(cases):
        t = time.time()
        rec = mf.Recorder()
        info = run_case(pipe, spec, case, rec, gen_seed=spec["seed"] + seed_base + i)
        p = os.path.join(refdir, f"{kind}_{case[0]}.safetensors")
        rec.save(p, files, root, f"{kind} {case[0]}", compare=compare, generator=generator)
        info["file"] = os.path.relpath(p, root)
        info["seconds"] = round(time.time() - t, 2)
        done[case[0]] = info
    manifest["pipelines"][PIPE][kind] = {
        "generator": generator, "versions": mf.versions(), "threads": args.threads,
        **{k: v for k, v in entry.items() if k != "generator"}, "cases": done,
    }
    manifest["files"] = dict(sorted(files.items()))
    with open(man_path, "w") as fp:
        json.dump(mf.json_safe(manifest), fp, indent=1, ensure_ascii=False, allow_nan=False)
        fp.write("\n")
    total = sum(files[k]["bytes"] for k in files if k.startswith(prefix))
    mf.log(f"done: {len(done)} {kind} cases, {total / 1e3:.0f} kB, {time.time() - t0:.1f}s")


def main():
    write_cases("img2img", CASES, load_pipe, run_case, seed_base=3000,
                compare={"image": "image", "latents_init": "component"},
                entry={"generator": "tools/make_img2img_fixtures.py",
                       "pipeline_class": "StableDiffusionImg2ImgPipeline",
                       "init_image": "tools/make_img2img_fixtures.py init_image(h, w): gradients, a "
                                     "sinusoid, a disc, a rectangle, a checkerboard patch (uint8 RGB, "
                                     "stored in each file)"},
                description=__doc__)


if __name__ == "__main__":
    main()
