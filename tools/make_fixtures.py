#!/usr/bin/env python3
"""Make the Stable Diffusion parity fixtures: random-weight pipelines of the real
diffusers/transformers classes, saved in both checkpoint layouts, with the inputs and
outputs of every component and of whole txt2img runs, so the C engine can be proven
equal to diffusers.  See docs/fixtures.md for the contents and the C-side rules.

    # tiny SD1-style and SD2-style pipelines → tests/fixtures/sd/ (committed, ≤ 20 MB)
    python tools/make_fixtures.py

    # SD1.5-size and SD2.1-size random-weight checkpoints + references (not committed)
    python tools/make_fixtures.py --full [--out /tmp/diffusiond-full]

Remaking sd1-tiny removes its img2img references: run tools/make_img2img_fixtures.py
after it.

Environment: see tools/requirements-fixtures.txt (torch CPU, diffusers, transformers
4.57.x — the slow CLIPTokenizer — safetensors, accelerate; ftfy must NOT be
installed, as for tools/make_tokenizer_fixtures.py).  No hub access is needed: every
model is built from a config with seeded random weights; the tokenizer is the real
CLIP BPE vocabulary committed in tests/fixtures/tokenizer/.
"""

import argparse
import copy
import datetime
import hashlib
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import fixtures_layout as layout  # noqa: E402

TOKENIZER_DIR = os.path.join(REPO, "tests", "fixtures", "tokenizer")
TINY_OUT = os.path.join(REPO, "tests", "fixtures", "sd")

# --- configurations -----------------------------------------------------------------

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json (as on the hub:
# no timestep_spacing key, so every scheduler class built from it uses its own
# default spacing — "linspace" for the Euler ones, "leading" for DDIM/DPM/PNDM).
SD1_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None, "clip_sample": False,
}
# stabilityai/stable-diffusion-2-1 (768-v) scheduler config.
SD2_SCHEDULER = {
    "_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
    "prediction_type": "v_prediction", "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None,
}

# Text encoders.  vocab 49408 and 77 positions are CLIP's; the legacy bos/eos/pad ids
# (0/2/1) are what the real SD text_encoder/config.json files say.
CLIP_COMMON = dict(vocab_size=49408, max_position_embeddings=77, layer_norm_eps=1e-5,
                   bos_token_id=0, eos_token_id=2, pad_token_id=1, initializer_factor=1.0,
                   initializer_range=0.02, attention_dropout=0.0, dropout=0.0)
VAE_COMMON = dict(in_channels=3, out_channels=3, latent_channels=4, act_fn="silu",
                  down_block_types=["DownEncoderBlock2D"] * 4,
                  up_block_types=["UpDecoderBlock2D"] * 4, scaling_factor=0.18215)
UNET_SD = dict(in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True,
               freq_shift=0, downsample_padding=1, mid_block_scale_factor=1, act_fn="silu",
               norm_eps=1e-5)


def _unet_blocks(n):
    return dict(down_block_types=["CrossAttnDownBlock2D"] * (n - 1) + ["DownBlock2D"],
                up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n - 1))


SPECS = {
    # ---- committed tiny pipelines ----
    "sd1-tiny": dict(
        family="sd1", seed=1001, size=(64, 64),
        text=dict(CLIP_COMMON, hidden_size=12, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=2, hidden_act="quick_gelu", projection_dim=12),
        unet=dict(UNET_SD, sample_size=8, block_out_channels=[8, 16, 32], layers_per_block=2,
                  norm_num_groups=4, cross_attention_dim=12, attention_head_dim=2,
                  **_unet_blocks(3)),
        vae=dict(VAE_COMMON, block_out_channels=[8, 16, 16, 16], layers_per_block=2,
                 norm_num_groups=4, sample_size=64),
        scheduler=SD1_SCHEDULER,
        fp16_variant=["unet", "vae"], single_file_dtype="float16",
    ),
    "sd2-tiny": dict(
        family="sd2", seed=2002, size=(64, 64),
        # num_hidden_layers counts the layers diffusers keeps (SD2.1: 23 of OpenCLIP's
        # 24); the single file carries one more, unused, like the real one.
        text=dict(CLIP_COMMON, hidden_size=12, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=3, hidden_act="gelu", projection_dim=12),
        unet=dict(UNET_SD, sample_size=8, block_out_channels=[8, 16, 32], layers_per_block=1,
                  norm_num_groups=4, cross_attention_dim=12, attention_head_dim=[1, 2, 4],
                  use_linear_projection=True, upcast_attention=True, **_unet_blocks(3)),
        vae=dict(VAE_COMMON, block_out_channels=[8, 16, 16, 16], layers_per_block=2,
                 norm_num_groups=4, sample_size=64),
        scheduler=SD2_SCHEDULER,
        fp16_variant=[], single_file_dtype="float16",
    ),
    # ---- --full: real sizes (random weights) ----
    "sd15-full": dict(
        family="sd1", seed=1501, size=(512, 512),
        text=dict(CLIP_COMMON, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, hidden_act="quick_gelu", projection_dim=768),
        unet=dict(UNET_SD, sample_size=64, block_out_channels=[320, 640, 1280, 1280],
                  layers_per_block=2, norm_num_groups=32, cross_attention_dim=768,
                  attention_head_dim=8, **_unet_blocks(4)),
        vae=dict(VAE_COMMON, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
                 norm_num_groups=32, sample_size=512),
        scheduler=SD1_SCHEDULER,
        fp16_variant=[], single_file_dtype="float32",
    ),
    "sd21-full": dict(
        family="sd2", seed=2101, size=(768, 768),
        text=dict(CLIP_COMMON, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                  num_attention_heads=16, hidden_act="gelu", projection_dim=512),
        unet=dict(UNET_SD, sample_size=96, block_out_channels=[320, 640, 1280, 1280],
                  layers_per_block=2, norm_num_groups=32, cross_attention_dim=1024,
                  attention_head_dim=[5, 10, 20, 20], use_linear_projection=True,
                  upcast_attention=True, **_unet_blocks(4)),
        vae=dict(VAE_COMMON, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
                 norm_num_groups=32, sample_size=768),
        scheduler=SD2_SCHEDULER,
        fp16_variant=[], single_file_dtype="float16",
    ),
}

PROMPTS = [
    "a photograph of an astronaut riding a horse",
    "",
    "A café in Zürich — naïve façade, 3 dogs & 2 cats!!! 🐶🐱",
    "blurry, low quality, jpeg artifacts",
    # over-long: more than 75 tokens, truncated to 77 with EOS last
    "an intricate oil painting of a lighthouse on a rocky coast at dusk, dramatic clouds, "
    "crashing waves, seagulls, warm light from the windows, a small boat in the harbour, "
    "fishermen unloading nets, cobblestone streets, lanterns, a cat on a wall, moss on the "
    "stones, distant mountains, stars appearing in a violet sky, highly detailed, trending, "
    "masterpiece, best quality, 8k, sharp focus, by a famous painter of the nineteenth century",
]
PROMPT = PROMPTS[0]
NEG = PROMPTS[3]

# txt2img cases: (name, scheduler class, scheduler overrides, call kwargs, capture noise?)
TINY_CASES = {
    "sd1": [
        ("euler", "EulerDiscreteScheduler", {}, dict(steps=3, cfg=7.5)),
        ("euler_nocfg", "EulerDiscreteScheduler", {}, dict(steps=3, cfg=1.0, neg=None)),
        ("euler_karras", "EulerDiscreteScheduler", {"use_karras_sigmas": True}, dict(steps=3, cfg=7.5)),
        ("euler_a", "EulerAncestralDiscreteScheduler", {}, dict(steps=3, cfg=7.5, gen_seed=42)),
        ("ddim", "DDIMScheduler", {}, dict(steps=3, cfg=7.5, eta=0.0)),
        ("ddim_eta1", "DDIMScheduler", {}, dict(steps=3, cfg=7.5, eta=1.0, gen_seed=43)),
        ("dpmpp2m", "DPMSolverMultistepScheduler", {}, dict(steps=4, cfg=7.5)),
        ("dpmpp2m_karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True},
         dict(steps=4, cfg=7.5)),
        ("euler_clipskip1_96x64", "EulerDiscreteScheduler", {},
         dict(steps=3, cfg=7.5, clip_skip=1, width=96, height=64)),
    ],
    "sd2": [
        ("euler_v", "EulerDiscreteScheduler", {}, dict(steps=3, cfg=7.5)),
        ("euler_a_v", "EulerAncestralDiscreteScheduler", {}, dict(steps=3, cfg=7.5, gen_seed=44)),
        ("ddim_v_trailing", "DDIMScheduler", {"timestep_spacing": "trailing"},
         dict(steps=3, cfg=7.5, eta=0.0)),
        ("dpmpp2m_karras_v", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True},
         dict(steps=4, cfg=7.5)),
        ("euler_eps_nocfg", "EulerDiscreteScheduler", {"prediction_type": "epsilon"},
         dict(steps=3, cfg=1.0, neg=None)),
    ],
}
FULL_CASES = {
    "sd1": [
        ("euler", "EulerDiscreteScheduler", {}, dict(steps=2, cfg=7.5)),
        ("dpmpp2m_karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True},
         dict(steps=2, cfg=7.5)),
    ],
    "sd2": [
        ("euler_v", "EulerDiscreteScheduler", {}, dict(steps=2, cfg=7.5)),
        ("dpmpp2m_karras_v", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True},
         dict(steps=2, cfg=7.5)),
    ],
}

NO_DIFFUSERS_CHECK = False

COMPARE = {
    "tokens": {"metric": "exact"},
    "component": {"metric": "max_abs_err <= tol * std(reference)", "tol": 1e-4},
    "image": {"metric": "psnr_db over the [0,1] image (peak 1.0)", "min": 40.0},
}


# --- helpers ------------------------------------------------------------------------

def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fp16_exact_(model):
    """Round every floating parameter to a value fp16 represents exactly, so the fp32
    files, the fp16 variants and fp16 single files all hold the same numbers and one
    set of reference outputs serves them all."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def perturb_1d_(model, gen, scale=0.1):
    """Default inits leave norm weights at 1 and many biases at 0, which would hide a
    loader that swaps or drops them: add seeded noise to every 1-D parameter."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(scale * torch.randn(p.shape, generator=gen))


class Recorder:
    """Collects tensors to save: name → f32/int contiguous CPU tensor."""

    def __init__(self):
        self.t = {}
        self.desc = {}

    def put(self, name, tensor, desc=""):
        if name in self.t:
            raise KeyError(f"duplicate reference tensor {name}")
        t = tensor.detach().cpu().clone().contiguous()
        if t.is_floating_point():
            t = t.float()
        self.t[name] = t
        if desc:
            self.desc[name] = desc

    def save(self, path, manifest_files, root, content, compare=None, generator="tools/make_fixtures.py"):
        """compare: {tensor name or glob: "tokens"|"component"|"image"} — what a C
        test checks (see COMPARE); the other tensors are inputs or diagnostics."""
        from safetensors.torch import save_file
        save_file(self.t, path, metadata={"generator": generator})
        rel = os.path.relpath(path, root)
        manifest_files[rel] = {
            "content": content, "bytes": os.path.getsize(path), "sha256": sha256(path),
            "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                            **({"desc": self.desc[k]} if k in self.desc else {})}
                        for k, v in self.t.items()},
        }
        if compare:
            manifest_files[rel]["compare"] = compare


def json_safe(x):
    """Strict JSON (jansson rejects NaN/Infinity): non-finite floats become strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def stats(t):
    t = t.float()
    return f"mean {t.mean().item():+.4f} std {t.std().item():.4f} min {t.min().item():+.3f} max {t.max().item():+.3f}"


# --- building ------------------------------------------------------------------------

def make_tokenizer_folder(dest, family, link):
    """tokenizer/ for a diffusers folder from the committed CLIP vocabulary.  In the
    committed fixtures vocab.json and merges.txt are relative symlinks to
    tests/fixtures/tokenizer/ (saves 1.4 MB per pipeline); --full copies them."""
    os.makedirs(dest, exist_ok=True)
    cfgdir = TOKENIZER_DIR if family == "sd1" else os.path.join(TOKENIZER_DIR, "sd2")
    for f in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(os.path.join(cfgdir, f), os.path.join(dest, f))
    for f in ("vocab.json", "merges.txt"):
        p = os.path.join(dest, f)
        if os.path.lexists(p):
            os.remove(p)
        if link:
            os.symlink(os.path.relpath(os.path.join(TOKENIZER_DIR, f), dest), p)
        else:
            shutil.copyfile(os.path.join(TOKENIZER_DIR, f), p)


def build(name, spec, workdir):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.schedulers import DDIMScheduler, PNDMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    seed = spec["seed"]
    gen = torch.Generator().manual_seed(seed + 7)

    torch.manual_seed(seed)
    text_cfg = CLIPTextConfig(**spec["text"])
    text_encoder = CLIPTextModel(text_cfg).eval()
    dropped = None
    if spec["family"] == "sd2":
        # one more layer, as the real OpenCLIP tower has (SD2 skips it)
        cfg_plus = CLIPTextConfig(**dict(spec["text"], num_hidden_layers=spec["text"]["num_hidden_layers"] + 1))
        torch.manual_seed(seed + 1)
        plus = CLIPTextModel(cfg_plus)
        perturb_1d_(plus, gen)
        fp16_exact_(plus)
        last = spec["text"]["num_hidden_layers"]
        pre = f"text_model.encoder.layers.{last}."
        dropped = {k: v.clone() for k, v in plus.state_dict().items() if k.startswith(pre)}
        del plus
    torch.manual_seed(seed + 2)
    unet = UNet2DConditionModel(**spec["unet"]).eval()
    torch.manual_seed(seed + 3)
    vae = AutoencoderKL(**spec["vae"]).eval()
    for m in (text_encoder, unet, vae):
        perturb_1d_(m, gen)
        fp16_exact_(m)

    tokdir = os.path.join(workdir, "tokenizer_src")
    make_tokenizer_folder(tokdir, spec["family"], link=False)
    tokenizer = CLIPTokenizer.from_pretrained(tokdir)
    sched_cls = PNDMScheduler if spec["scheduler"]["_class_name"] == "PNDMScheduler" else DDIMScheduler
    scheduler = sched_cls.from_config({k: v for k, v in spec["scheduler"].items() if k != "_class_name"})
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    text_projection = None
    if spec["family"] == "sd2":
        D = spec["text"]["hidden_size"]
        text_projection = (torch.randn(D, D, generator=gen) * D ** -0.5).half().float()
    return pipe, dropped, text_projection


# --- saving ---------------------------------------------------------------------------

def save_diffusers(pipe, spec, folder, link_tokenizer):
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    for comp in spec["fp16_variant"]:
        m16 = copy.deepcopy(getattr(pipe, comp)).to(torch.float16)
        m16.save_pretrained(os.path.join(folder, comp), variant="fp16",
                                              safe_serialization=True)
    # tokenizer: the committed vocabulary files byte for byte (save_pretrained rewrote them)
    tokdir = os.path.join(folder, "tokenizer")
    with open(os.path.join(tokdir, "vocab.json"), encoding="utf-8") as f:
        written = json.load(f)
    with open(os.path.join(TOKENIZER_DIR, "vocab.json"), encoding="utf-8") as f:
        assert json.load(f) == written, "tokenizer vocab changed on save"
    for f in os.listdir(tokdir):
        os.remove(os.path.join(tokdir, f))
    make_tokenizer_folder(tokdir, spec["family"], link=link_tokenizer)


def save_single_file(pipe, spec, path, dropped, text_projection):
    from safetensors.torch import save_file
    dtype = getattr(torch, spec["single_file_dtype"])
    sd = layout.to_original(pipe.unet.state_dict(), dict(pipe.unet.config), pipe.vae.state_dict(),
                            dict(pipe.vae.config), pipe.text_encoder.state_dict(),
                            pipe.text_encoder.config.to_dict(), spec["family"],
                            dropped_layer_sd=dropped, text_projection=text_projection, dtype=dtype)
    save_file(sd, path, metadata={"format": "pt"})  # one key: the writer orders keys at random
    return sd


def verify_folder(pipe, spec, folder, case_info, case_file, rerun=True):
    """The saved diffusers folder, loaded back by diffusers itself (tokenizer symlinks
    included), holds the same weights (fp16 variants too) and reproduces the first
    txt2img case bit for bit."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file
    report = {}
    loaded = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, safety_checker=None,
                                                     requires_safety_checker=False)
    for comp in ("unet", "vae", "text_encoder"):
        ref = getattr(pipe, comp).state_dict()
        got = getattr(loaded, comp).state_dict()
        assert all(torch.equal(got[k], v) for k, v in ref.items()), f"folder mismatch in {comp}"
    for comp in spec["fp16_variant"]:
        cls = type(getattr(pipe, comp))
        m16 = cls.from_pretrained(folder, subfolder=comp, variant="fp16", torch_dtype=torch.float16,
                                  local_files_only=True)
        ref = getattr(pipe, comp).state_dict()
        got = m16.state_dict()
        assert all(got[k].dtype == torch.float16 and torch.equal(got[k].float(), v) for k, v in ref.items()), \
            f"fp16 variant mismatch in {comp}"
    report["weights_equal"] = True
    report["fp16_variants_equal_to_fp32"] = list(spec["fp16_variant"])
    if not rerun:
        del loaded
        log("  folder reload: weights equal")
        return report
    # rerun the first case from the loaded folder
    cname = next(iter(case_info))
    info = case_info[cname]
    ref = load_file(case_file)
    import diffusers
    loaded.scheduler = getattr(diffusers, info["scheduler"]["class"]).from_config(info["scheduler"]["config"])
    loaded.set_progress_bar_config(disable=True)
    with torch.no_grad():
        img = loaded(prompt=info["prompt"], negative_prompt=info["negative_prompt"], height=info["height"],
                     width=info["width"], num_inference_steps=info["steps"], guidance_scale=info["guidance_scale"],
                     latents=ref["init_noise"].clone(), output_type="np").images
    diff = float(np.abs(img - ref["image"].numpy()).max())
    report["rerun_from_folder"] = {"case": cname, "max_abs_diff": diff}
    log(f"  folder reload: weights equal; case {cname} rerun max |diff| {diff:.3g}")
    assert diff < 1e-5, "the saved folder does not reproduce its reference"
    return report


def verify_single_file(pipe, spec, single_path, folder, sd, workdir, use_diffusers_loader=True):
    """Two checks of the original-layout file: (1) our inverse mapping gives back every
    diffusers tensor bit for bit and leaves only the known extras unused; (2) diffusers'
    own single-file loader (StableDiffusionPipeline.from_single_file with the saved
    diffusers folder as config, offline) gives back every tensor bit for bit.
    Tensors are read lazily, one component at a time (the full sizes are GBs)."""
    from safetensors.torch import save_file
    report = {}
    lazy = layout.LazyFile(single_path)
    used = set()
    n = 0
    for comp in ("unet", "vae", "text_encoder"):
        ref = {k: v for k, v in getattr(pipe, comp).state_dict().items() if not k.endswith("position_ids")}
        names = {c: [] for c in ("unet", "vae", "text_encoder")}
        names[comp] = list(ref.keys())
        back, u = layout.from_original(
            lazy, dict(pipe.unet.config), dict(pipe.vae.config), pipe.text_encoder.config.to_dict(),
            spec["family"], names["unet"], names["vae"], names["text_encoder"], which=(comp,))
        used |= u
        for k, v in ref.items():
            assert torch.equal(back[comp][k], v.float()), f"inverse mapping mismatch {comp}.{k}"
            n += 1
        del back
    unused = sorted(set(lazy.keys()) - used)
    report["inverse_mapping"] = {"tensors_equal": n, "unused_original_tensors": unused}
    log(f"  inverse mapping: {n} tensors equal; unused: {len(unused)}")

    if not use_diffusers_loader:
        return report
    from diffusers import StableDiffusionPipeline
    path = single_path
    note = "as written"
    if spec["family"] == "sd2" and spec["text"]["num_hidden_layers"] != 23:
        # diffusers drops exactly 'resblocks.23' (SD2's unused last layer) by name; a
        # tiny tower's unused last layer has another index, so hand diffusers a copy
        # without it (the mapping of everything else is what is being checked).
        last = spec["text"]["num_hidden_layers"]
        pre = f"{layout.OPENCLIP_PREFIX}transformer.resblocks.{last}."
        path = os.path.join(workdir, "sd2_for_diffusers.safetensors")
        save_file({k: v for k, v in sd.items() if not k.startswith(pre)}, path)
        note = f"copy without {pre}* (diffusers hard-codes resblocks.23 as the dropped layer)"
    loaded = StableDiffusionPipeline.from_single_file(path, config=folder, local_files_only=True,
                                                      safety_checker=None, requires_safety_checker=False)
    n = 0
    for comp in ("unet", "vae", "text_encoder"):
        got = getattr(loaded, comp).state_dict()
        for k, v in getattr(pipe, comp).state_dict().items():
            if k.endswith("position_ids"):
                continue
            assert k in got, f"diffusers loader lost {comp}.{k}"
            assert torch.equal(got[k].float(), v.float()), f"diffusers loader mismatch {comp}.{k}"
            n += 1
    report["diffusers_from_single_file"] = {"tensors_equal": n, "file": note}
    log(f"  diffusers from_single_file: {n} tensors equal ({note})")
    del loaded
    return report


# --- references -----------------------------------------------------------------------

def tokenize(tok, prompts):
    enc = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt")
    full = tok(prompts, padding=False, truncation=False)["input_ids"]
    return enc.input_ids, [len(x) > tok.model_max_length for x in full]


@torch.no_grad()
def ref_text(pipe, rec, prompts, files, root, refdir):
    ids, truncated = tokenize(pipe.tokenizer, prompts)
    rec_t = Recorder()
    rec_t.put("input_ids", ids.to(torch.int32), "[P,77] ids as the pipeline's tokenizer gives them")
    rec_t.save(os.path.join(refdir, "tokens.safetensors"), files, root, "token ids for `prompts`",
               compare={"input_ids": "tokens"})
    out = pipe.text_encoder(ids, output_hidden_states=True)
    rec.put("input_ids", ids.to(torch.int32))
    rec.put("last_hidden_state", out.last_hidden_state,
            "final_layer_norm(last layer): what diffusers feeds the U-Net (clip_skip=None)")
    for i, h in enumerate(out.hidden_states):
        rec.put(f"hidden_states.{i}", h, "0 = embeddings, i = after layer i, no final norm")
    pen = pipe.text_encoder.text_model.final_layer_norm(out.hidden_states[-2])
    rec.put("clip_skip1", pen, "final_layer_norm(hidden_states[-2]): diffusers clip_skip=1 (A1111 'clip skip 2')")
    log(f"  text encoder: last_hidden_state {stats(out.last_hidden_state)}")
    return ids, truncated, out.last_hidden_state


@torch.no_grad()
def ref_unet(pipe, rec, ctx, lat_hw, gen, full=False):
    B = 2
    h, w = lat_hw
    unet = pipe.unet
    context = torch.stack([ctx[0], ctx[3]])   # prompt 0 and the negative prompt
    cases = [
        ("int", torch.tensor([999, 1], dtype=torch.int64)),
        ("float", torch.tensor([999.0, 10.5], dtype=torch.float32)),
        ("scalar", torch.tensor(499.5, dtype=torch.float32)),
    ][:2 if full else 3]
    for cname, ts in cases:
        x = torch.randn(B, 4, h, w, generator=gen)
        y = unet(x, ts, encoder_hidden_states=context).sample
        rec.put(f"{cname}.sample", x)
        rec.put(f"{cname}.timestep", ts, "int64/f32 as passed; 0-dim = one timestep for the batch")
        rec.put(f"{cname}.encoder_hidden_states", context)
        rec.put(f"{cname}.out", y)
        log(f"  unet[{cname}] out {stats(y)}")
    if full:
        return
    # non-square latent
    x = torch.randn(B, 4, h, w + w // 2, generator=gen)
    ts = torch.tensor([700, 300], dtype=torch.int64)
    y = unet(x, ts, encoder_hidden_states=context).sample
    rec.put("wide.sample", x)
    rec.put("wide.timestep", ts)
    rec.put("wide.encoder_hidden_states", context)
    rec.put("wide.out", y)


@torch.no_grad()
def ref_vae(pipe, rec, lat_hw, gen):
    vae = pipe.vae
    h, w = lat_hw
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    z = torch.randn(1, 4, h, w, generator=gen) / vae.config.scaling_factor * 0.5
    img = vae.decode(z).sample
    rec.put("decode.latents", z, "input of vae.decode (already divided by scaling_factor)")
    rec.put("decode.out", img, "raw decoder output, NCHW, about [-1,1], not clamped")
    log(f"  vae decode out {stats(img)}")
    z2 = torch.randn(1, 4, h // 2, w, generator=gen) / vae.config.scaling_factor * 0.5
    rec.put("decode_wide.latents", z2)
    rec.put("decode_wide.out", vae.decode(z2).sample)
    x = (torch.rand(1, 3, h * f, w * f, generator=gen) * 2 - 1)
    enc = vae.encode(x)
    moments = vae.quant_conv(vae.encoder(x))
    dist = enc.latent_dist
    rec.put("encode.image", x, "NCHW in [-1,1]")
    rec.put("encode.moments", moments, "quant_conv(encoder(x)): [mean; logvar] along C")
    rec.put("encode.mean", dist.mean)
    rec.put("encode.logvar", dist.logvar, "clamped to [-30, 20]")
    rec.put("encode.std", dist.std)
    log(f"  vae encode mean {stats(dist.mean)}")


def make_scheduler(spec, cls_name, overrides):
    """A scheduler built as users build one: cls.from_config(<the model's scheduler
    config>, **overrides); keys the config lacks take the class's defaults."""
    import diffusers
    cls = getattr(diffusers, cls_name)
    base = {k: v for k, v in spec["scheduler"].items() if k != "_class_name"}
    return cls.from_config(base, **overrides)


def record_unet(pipe):
    """Hooks on pipe.unet recording every call: its sample (after scale_model_input), t,
    encoder_hidden_states and output.  Returns (calls, remove)."""
    calls = []

    def pre_hook(mod, args, kwargs):
        calls.append({"sample": args[0].clone(), "t": args[1].clone() if torch.is_tensor(args[1])
                      else torch.tensor(args[1]), "ctx": kwargs["encoder_hidden_states"].clone()})

    def post_hook(mod, args, kwargs, out):
        calls[-1]["out"] = (out[0] if isinstance(out, tuple) else out.sample).clone()

    h1 = pipe.unet.register_forward_pre_hook(pre_hook, with_kwargs=True)
    h2 = pipe.unet.register_forward_hook(post_hook, with_kwargs=True)

    def remove():
        h1.remove()
        h2.remove()
    return calls, remove


def run_case(pipe, spec, case, rec, gen_noise):
    import diffusers.schedulers.scheduling_ddim as m_ddim
    import diffusers.schedulers.scheduling_euler_ancestral_discrete as m_ea
    cname, cls_name, overrides, kw = case
    sched = make_scheduler(spec, cls_name, overrides)
    pipe.scheduler = sched
    H = kw.get("height", spec["size"][0])
    W = kw.get("width", spec["size"][1])
    f = pipe.vae_scale_factor
    noise = torch.randn(1, 4, H // f, W // f, generator=gen_noise)
    rec.put("init_noise", noise, "passed as latents=; the pipeline multiplies it by init_noise_sigma")

    steps = []
    drawn = []
    orig = {m: m.randn_tensor for m in (m_ea, m_ddim)}

    def capture(*a, **k):
        t = orig[m_ea](*a, **k)
        drawn.append(t.clone())
        return t

    def on_step(p, i, t, kws):
        steps.append(kws["latents"].clone())
        return kws

    decoded = {}
    orig_decode = pipe.vae.decode

    def decode_rec(z, *a, **k):
        decoded["z"] = z.clone()
        r = orig_decode(z, *a, **k)
        decoded["out"] = (r[0] if isinstance(r, tuple) else r.sample).clone()
        return r

    unet_calls, unhook = record_unet(pipe)
    for m in orig:
        m.randn_tensor = capture
    pipe.vae.decode = decode_rec
    try:
        call = dict(prompt=PROMPT, height=H, width=W, num_inference_steps=kw["steps"],
                    guidance_scale=kw["cfg"], latents=noise.clone(), output_type="np",
                    callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"])
        neg = kw.get("neg", NEG)
        if neg is not None:
            call["negative_prompt"] = neg
        if "eta" in kw:
            call["eta"] = kw["eta"]
        if "clip_skip" in kw:
            call["clip_skip"] = kw["clip_skip"]
        if "gen_seed" in kw:
            call["generator"] = torch.Generator().manual_seed(kw["gen_seed"])
        with torch.no_grad():
            image = pipe(**call).images
    finally:
        unhook()
        for m, fn in orig.items():
            m.randn_tensor = fn
        del pipe.vae.decode
    assert len(unet_calls) == kw["steps"] == len(steps)
    ts = torch.stack([c["t"].reshape(()) for c in unet_calls])
    rec.put("timesteps", ts, "the t passed to the U-Net at each step (dtype as diffusers passes it)")
    rec.put("timesteps_f32", ts.float())
    if hasattr(sched, "sigmas"):
        rec.put("sigmas", sched.sigmas.float(), "scheduler.sigmas after set_timesteps (n+1, last 0)")
    rec.put("init_noise_sigma", torch.tensor(float(sched.init_noise_sigma)))
    rec.put("prompt_embeds", unet_calls[0]["ctx"], "encoder_hidden_states of the U-Net batch: [uncond; cond] with CFG")
    for i, c in enumerate(unet_calls):
        rec.put(f"step.{i}.model_input", c["sample"], "U-Net input after scale_model_input (CFG: 2 rows, same latents)")
        rec.put(f"step.{i}.unet_out", c["out"])
        rec.put(f"step.{i}.latents", steps[i], "latents after scheduler.step")
    if drawn:
        for i, d in enumerate(drawn):
            rec.put(f"noise.{i}", d, "i-th randn_tensor the scheduler drew (order of steps)")
    rec.put("vae_input", decoded["z"], "latents / scaling_factor")
    rec.put("image", torch.from_numpy(image), "output_type='np': NHWC float32 in [0,1]")
    info = {
        "scheduler": {"class": cls_name, "config": {k: v for k, v in dict(sched.config).items()
                                                   if not k.startswith("_")}},
        "prompt": PROMPT, "negative_prompt": kw.get("neg", NEG) if kw["cfg"] > 1 else None,
        "height": H, "width": W, "steps": kw["steps"], "guidance_scale": kw["cfg"],
        "eta": kw.get("eta"), "clip_skip": kw.get("clip_skip"), "generator_seed": kw.get("gen_seed"),
        "noise_draws": len(drawn),
        "timesteps": [float(x) for x in ts], "timestep_dtype": str(ts.dtype).replace("torch.", ""),
    }
    sat = float(((image <= 0) | (image >= 1)).mean())
    info["image_saturated_fraction"] = sat
    log(f"  case {cname}: t={info['timesteps']} ({info['timestep_dtype']}), noise draws {len(drawn)}, "
        f"image mean {image.mean():.3f} std {image.std():.3f} saturated {sat:.3f}")
    return info


# --- main -------------------------------------------------------------------------------

def versions():
    import diffusers
    import safetensors
    import transformers
    return {"python": sys.version.split()[0], "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__}


def make_one(name, root, full, workdir, manifest):
    spec = SPECS[name]
    t0 = time.time()
    log(f"{name}: building")
    pipe, dropped, text_projection = build(name, spec, workdir)
    n_params = {c: sum(p.numel() for p in getattr(pipe, c).parameters()) for c in ("text_encoder", "unet", "vae")}
    log(f"  params {n_params} ({time.time() - t0:.1f}s)")
    base = os.path.join(root, name)
    refdir = os.path.join(base, "reference")
    os.makedirs(refdir, exist_ok=True)
    files = manifest["files"]

    t = time.time()
    folder = os.path.join(base, "diffusers")
    save_diffusers(pipe, spec, folder, link_tokenizer=not full)
    for dp, _, fs in os.walk(folder):
        for fn in sorted(fs):
            p = os.path.join(dp, fn)
            rel = os.path.relpath(p, root)
            entry = {"content": f"diffusers folder of {name}", "bytes": os.path.getsize(p)}
            if os.path.islink(p):
                entry["symlink_to"] = os.readlink(p)
            else:
                entry["sha256"] = sha256(p)
            files[rel] = entry
    single = os.path.join(base, f"{name}.safetensors")
    sd = save_single_file(pipe, spec, single, dropped, text_projection)
    files[os.path.relpath(single, root)] = {
        "content": f"single-file original layout of {name} ({spec['single_file_dtype']} weights; "
                   "DDPM schedule buffers f32; model_ema.* scalars)",
        "bytes": os.path.getsize(single), "sha256": sha256(single)}
    log(f"  saved both layouts ({time.time() - t:.1f}s)")
    t = time.time()
    if full:
        del sd   # the SD2.1 file has the real 24 resblocks: no trimmed copy needed
        sd = None
    verification = verify_single_file(pipe, spec, single, folder, sd, workdir,
                                      use_diffusers_loader=not NO_DIFFUSERS_CHECK)
    del sd
    log(f"  verified ({time.time() - t:.1f}s)")

    gen = torch.Generator().manual_seed(spec["seed"] + 100)
    H, W = spec["size"]
    f = pipe.vae_scale_factor
    lat_hw = (H // f, W // f)
    entry = {
        "family": spec["family"], "seed": spec["seed"], "parameters": n_params,
        "diffusers_folder": os.path.relpath(folder, root),
        "single_file": os.path.relpath(single, root),
        "single_file_dtype": spec["single_file_dtype"],
        "fp16_variant_components": spec["fp16_variant"],
        "single_file_verification": verification,
        "text_encoder_config": {k: v for k, v in spec["text"].items()},
        "prompts": PROMPTS,
        "size": {"height": H, "width": W, "latent": list(lat_hw)},
    }
    if spec["family"] == "sd2":
        entry["single_file_text_layers"] = spec["text"]["num_hidden_layers"] + 1
        entry["single_file_text_note"] = (
            "the OpenCLIP tower in the single file has num_hidden_layers+1 resblocks; SD2 uses the "
            "penultimate one: load resblocks 0..n-2, ignore the last, then apply ln_final")

    t = time.time()
    rec = Recorder()
    ids, truncated, ctx = ref_text(pipe, rec, PROMPTS, files, root, refdir)
    entry["token_ids"] = ids.tolist()
    entry["truncated"] = truncated
    rec.save(os.path.join(refdir, "text_encoder.safetensors"), files, root,
             "text encoder inputs/outputs for `prompts`",
             compare={"last_hidden_state": "component", "clip_skip1": "component",
                      "hidden_states.*": "component"})
    rec = Recorder()
    ref_unet(pipe, rec, ctx, lat_hw, gen, full)
    rec.save(os.path.join(refdir, "unet.safetensors"), files, root,
             "U-Net cases: <case>.sample/.timestep/.encoder_hidden_states → <case>.out",
             compare={"*.out": "component"})
    rec = Recorder()
    ref_vae(pipe, rec, lat_hw, gen)
    rec.save(os.path.join(refdir, "vae.safetensors"), files, root, "VAE decode and encode",
             compare={"decode.out": "component", "decode_wide.out": "component",
                      "encode.moments": "component", "encode.mean": "component",
                      "encode.logvar": "component"})
    log(f"  components ({time.time() - t:.1f}s)")

    entry["cases"] = {}
    cases = (FULL_CASES if full else TINY_CASES)[spec["family"]]
    for case in cases:
        t = time.time()
        rec = Recorder()
        gen_noise = torch.Generator().manual_seed(spec["seed"] + 1000 + len(entry["cases"]))
        info = run_case(pipe, spec, case, rec, gen_noise)
        p = os.path.join(refdir, f"pipe_{case[0]}.safetensors")
        rec.save(p, files, root, f"txt2img {case[0]}",
                 compare={"image": "image", "prompt_embeds": "component"})
        info["file"] = os.path.relpath(p, root)
        info["seconds"] = round(time.time() - t, 2)
        entry["cases"][case[0]] = info
        log(f"  ({info['seconds']}s)")
    first = next(iter(entry["cases"].values()))
    entry["folder_verification"] = verify_folder(pipe, spec, folder, entry["cases"],
                                                 os.path.join(root, first["file"]), rerun=not full)
    entry["seconds_total"] = round(time.time() - t0, 1)
    import resource
    entry["peak_rss_gib_so_far"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
    log(f"{name}: {entry['seconds_total']}s, peak RSS so far {entry['peak_rss_gib_so_far']} GiB")
    manifest["pipelines"][name] = entry
    del pipe


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="SD1.5-size and SD2.1-size (not committed)")
    ap.add_argument("--out", default=None, help="output folder (default tests/fixtures/sd, "
                    "or /tmp/diffusiond-full with --full)")
    ap.add_argument("--only", action="append", help="pipeline name(s) to make (default: all of the mode)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sd21-size", type=int, default=768, help="--full: SD2.1 image size (768 or 512)")
    ap.add_argument("--no-diffusers-check", action="store_true",
                    help="skip loading the single file with diffusers' from_single_file (memory)")
    args = ap.parse_args()

    if importlib.util.find_spec("ftfy") is not None:
        sys.exit("ftfy is installed: the tokenizer would use ftfy.fix_text; uninstall it (see docs/fixtures.md)")
    global NO_DIFFUSERS_CHECK
    NO_DIFFUSERS_CHECK = args.no_diffusers_check
    SPECS["sd21-full"]["size"] = (args.sd21_size, args.sd21_size)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    root = args.out or ("/tmp/diffusiond-full" if args.full else TINY_OUT)
    names = args.only or (["sd15-full", "sd21-full"] if args.full else ["sd1-tiny", "sd2-tiny"])
    os.makedirs(root, exist_ok=True)
    man_path = os.path.join(root, "manifest.json")
    manifest = {"generator": "tools/make_fixtures.py" + (" --full" if args.full else ""),
                "generated": datetime.date.today().isoformat(), "versions": versions(),
                "threads": args.threads, "compare": COMPARE, "files": {}, "pipelines": {}}
    if args.only and os.path.exists(man_path):
        with open(man_path) as f:
            old = json.load(f)
        manifest["files"] = {k: v for k, v in old.get("files", {}).items()
                             if k.split("/")[0] not in names}
        manifest["pipelines"] = {k: v for k, v in old.get("pipelines", {}).items() if k not in names}
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            if os.path.isdir(os.path.join(root, name)):
                shutil.rmtree(os.path.join(root, name))
            make_one(name, root, args.full, workdir, manifest)
    manifest["files"] = dict(sorted(manifest["files"].items()))
    with open(man_path, "w") as f:
        json.dump(json_safe(manifest), f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")
    total = sum(v["bytes"] for v in manifest["files"].values() if "symlink_to" not in v)
    log(f"done: {len(manifest['files'])} files, {total / 1e6:.2f} MB in {root}")


if __name__ == "__main__":
    main()
