#!/usr/bin/env python3
"""Make the schedule/sampler reference fixtures under tests/fixtures/samplers/.

Reference: diffusers' scheduler classes, driven the way StableDiffusionPipeline drives
them (set_timesteps, latents × init_noise_sigma, then per step scale_model_input →
"U-Net" → step).  The U-Net is a deterministic fake that C can compute identically:

    model_output[i] = f32( 0.1 · x_in[i] + 0.5 · sin(0.01 · t + 0.37 · i) )

evaluated in double precision (x_in = the scaled model input, t = the timestep the
U-Net receives, i = the flat element index), rounded once to float32.

Stochastic samplers (Euler ancestral, DDIM with eta > 0, DDPM, LCM) draw their noise
through diffusers' randn_tensor; this script replaces it (in each scheduler module)
with a wrapper that draws from a seeded torch.Generator and records what it returned,
so the C test can feed the very same noise through sampler_step_with_noise.

The step index starts at 0 (set_begin_index(0), as diffusers' SDXL pipeline does).
StableDiffusionPipeline leaves it unset, and the schedulers then look the first
timestep up in their timesteps; where a schedule repeats its first timestep (DPM++
Karras on a zero-terminal-SNR or cosine schedule) that lookup picks the second
occurrence and the run ends in an IndexError.  Everywhere else both agree.

Versions the committed files were made with: diffusers 0.42.1, torch 2.15.0 (CPU),
numpy 2.4.6, safetensors 0.8.0, Python 3.11.

    python3 -m venv --system-site-packages /tmp/sfvenv   # torch from the system
    /tmp/sfvenv/bin/pip install 'diffusers==0.42.1' 'safetensors==0.8.0'
    /tmp/sfvenv/bin/python tools/make_sampler_fixtures.py

What it writes (committed; CI never runs this script):

  cases.json          configs (the scheduler_config.json objects the C side parses),
                      every sampler × n_steps in {1, 4, 20, 25} for the first five, the
                      samplers that read them for the two "extras" configs,
                      and per case: sampler, config, n_steps, eta, timesteps, sigmas
                      (Euler and DPM families; null otherwise), init_noise_sigma,
                      c_in per step (scale_model_input's factor), whether each step
                      drew noise
  tensors.safetensors latent0 [2,4,4,4] (the initial noise, before init_noise_sigma),
                      "<config>/alphas_cumprod" [T] (DDIMScheduler's, float32),
                      "<case>/trajectory" [n_steps, 128] (latent after every step),
                      "<case>/noise" [n_steps, 128] (stochastic cases; zero rows where
                      a step drew none)
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import diffusers
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler,
                       EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       LCMScheduler)
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "samplers")
SHAPE = (2, 4, 4, 4)
N_ELEMS = 128
STEPS = (1, 4, 20, 25)

# The scheduler_config.json objects.  sd1 and sd2v are the files that ship with
# stable-diffusion-v1-5 and stable-diffusion-2-1 (no timestep_spacing key: each class
# uses its own default, linspace for Euler/DPM, leading for DDIM/DDPM); the others
# cover the remaining β schedules, spacings and options.
CONFIGS = {
    "sd1": {
        "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0",
        "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
        "steps_offset": 1, "trained_betas": None, "clip_sample": False,
    },
    "sd2v": {
        "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0",
        "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "clip_sample": False, "num_train_timesteps": 1000,
        "prediction_type": "v_prediction", "set_alpha_to_one": False,
        "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
    },
    "sd2v_trailing": {
        "_class_name": "EulerDiscreteScheduler",
        "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "clip_sample": False, "num_train_timesteps": 1000,
        "prediction_type": "v_prediction", "set_alpha_to_one": False,
        "steps_offset": 1, "timestep_spacing": "trailing",
        "rescale_betas_zero_snr": True,
    },
    "cosine": {
        "_class_name": "DDIMScheduler",
        "beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 1000,
        "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1,
        "clip_sample": False, "set_alpha_to_one": True,
        "final_sigmas_type": "sigma_min",
    },
    "linear": {
        "_class_name": "DDPMScheduler",
        "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
        "num_train_timesteps": 1000, "prediction_type": "epsilon",
        "timestep_spacing": "linspace", "clip_sample": True, "clip_sample_range": 1.5,
        "use_karras_sigmas": True,
    },
    # the remaining options, for the samplers that read them
    "extras_v": {
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
        "prediction_type": "v_prediction", "timestep_type": "continuous",
        "use_karras_sigmas": True, "sigma_min": 0.1, "sigma_max": 10.0,
        "final_sigmas_type": "sigma_min", "solver_type": "heun",
        "variance_type": "fixed_small_log", "set_alpha_to_one": False,
        "timestep_spacing": "trailing", "clip_sample": False,
    },
    "extras_eps": {
        "beta_schedule": "linear", "prediction_type": "epsilon",
        "interpolation_type": "log_linear", "solver_type": "heun",
        "lambda_min_clipped": -4.5, "euler_at_final": True,
        "final_sigmas_type": "sigma_min", "variance_type": "fixed_large",
        "timestep_spacing": "leading", "steps_offset": 1, "clip_sample": False,
    },
}

# name -> (class, from_config overrides, step kwargs)
SAMPLERS = {
    "euler": (EulerDiscreteScheduler, {}, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}, {}),
    "ddim": (DDIMScheduler, {}, {"eta": 0.0}),
    "ddim_eta": (DDIMScheduler, {}, {"eta": 0.7}),
    "dpmpp_2m": (DPMSolverMultistepScheduler,
                 {"algorithm_type": "dpmsolver++", "solver_order": 2}, {}),
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler,
                        {"algorithm_type": "dpmsolver++", "solver_order": 2,
                         "use_karras_sigmas": True}, {}),
    "ddpm": (DDPMScheduler, {}, {}),
    "lcm": (LCMScheduler, {}, {}),
}
# config -> (samplers, step counts); every sampler and STEPS where not listed
RUNS = {
    "extras_v": (("euler", "dpmpp_2m", "ddpm", "lcm"), (1, 4, 20)),
    "extras_eps": (("euler", "dpmpp_2m", "ddpm"), (1, 4, 20)),
}
SIGMA_FAMILY = ("euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras")
EULER_FAMILY = ("euler", "euler_a")


class NoiseRecorder:
    """Stands in for randn_tensor in the scheduler modules; remembers each draw."""

    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.draws = []

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        del generator, device, layout
        x = torch.randn(shape, generator=self.gen, dtype=torch.float32)
        x = x.to(dtype if dtype is not None else torch.float32)
        self.draws.append(x.clone())
        return x


def patch_randn(recorder):
    import diffusers.schedulers.scheduling_ddim as m_ddim
    import diffusers.schedulers.scheduling_ddpm as m_ddpm
    import diffusers.schedulers.scheduling_euler_ancestral_discrete as m_ea
    import diffusers.schedulers.scheduling_lcm as m_lcm
    for m in (m_ddim, m_ddpm, m_ea, m_lcm):
        m.randn_tensor = recorder


def fake_model(x_in, t):
    """The fake U-Net; tests/unit/test_sampler.c has the same function."""
    x = x_in.detach().numpy().reshape(-1).astype(np.float64)
    out = np.empty(N_ELEMS, dtype=np.float32)
    for i in range(N_ELEMS):
        out[i] = np.float32(0.1 * x[i] + 0.5 * math.sin(0.01 * t + 0.37 * i))
    return torch.from_numpy(out.reshape(SHAPE))


def run_case(config, sampler, n_steps, latent0, seed):
    cls, overrides, step_kw = SAMPLERS[sampler]
    sched = cls.from_config(config, **overrides)
    sched.set_timesteps(n_steps)
    if hasattr(sched, "set_begin_index"):
        sched.set_begin_index(0)  # as the SDXL pipeline does; see the note at the top
    recorder = NoiseRecorder(seed)
    patch_randn(recorder)
    init_sigma = float(sched.init_noise_sigma)
    latents = latent0 * sched.init_noise_sigma
    traj, noise, c_in, drew = [], [], [], []
    for t in sched.timesteps:
        n_before = len(recorder.draws)
        x_in = sched.scale_model_input(latents, t)
        if sampler in EULER_FAMILY:
            sigma = sched.sigmas[sched.step_index]
            c_in.append(1.0 / math.sqrt(float(sigma) ** 2 + 1.0))
        else:
            c_in.append(1.0)
        mo = fake_model(x_in, float(t))
        latents = sched.step(mo, t, latents, **step_kw).prev_sample
        traj.append(latents.reshape(-1).numpy().astype(np.float32).copy())
        if len(recorder.draws) > n_before:
            assert len(recorder.draws) == n_before + 1
            noise.append(recorder.draws[-1].reshape(-1).numpy().astype(np.float32))
            drew.append(True)
        else:
            noise.append(np.zeros(N_ELEMS, dtype=np.float32))
            drew.append(False)
    meta = {
        "sampler": sampler,
        "n_steps": n_steps,
        "eta": step_kw.get("eta", 0.0),
        "timesteps": [float(t) for t in sched.timesteps],
        "sigmas": ([float(s) for s in sched.sigmas] if sampler in SIGMA_FAMILY else None),
        "init_noise_sigma": init_sigma,
        "c_in": c_in,
        "drew_noise": drew,
    }
    tensors = {"trajectory": np.stack(traj)}
    if any(drew):
        tensors["noise"] = np.stack(noise)
    return meta, tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    latent0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1234))
    tensors = {"latent0": latent0.numpy().astype(np.float32)}
    cases = []
    seed = 100
    for cname, config in CONFIGS.items():
        ref = DDIMScheduler.from_config(config)
        tensors[f"{cname}/alphas_cumprod"] = ref.alphas_cumprod.numpy().astype(np.float32)
        samplers, steps = RUNS.get(cname, (tuple(SAMPLERS), STEPS))
        for sampler in samplers:
            for n in steps:
                seed += 1
                meta, ts = run_case(config, sampler, n, latent0, seed)
                name = f"{cname}/{sampler}/{n}"
                meta["name"] = name
                meta["config"] = cname
                cases.append(meta)
                for k, v in ts.items():
                    tensors[f"{name}/{k}"] = np.ascontiguousarray(v)
    doc = {
        "generator": "tools/make_sampler_fixtures.py",
        "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0]},
        "shape": list(SHAPE),
        "model": "f32(0.1*x_in[i] + 0.5*sin(0.01*t + 0.37*i))",
        "configs": CONFIGS,
        "cases": cases,
    }
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    save_file(tensors, os.path.join(args.out, "tensors.safetensors"))
    print(f"{len(cases)} cases, {len(tensors)} tensors -> {args.out}")


if __name__ == "__main__":
    main()
