#!/usr/bin/env python3
"""Train diffusiond's bundled default model from scratch on procedural shapes.

    python tools/train/train.py --out models/default            # the full recipe
    python tools/train/train.py --preset tiny --out /tmp/tiny    # a few minutes, smoke test

Stages (all seeded; see tools/train/README.md and docs/models.md):
  1. VAE (AutoencoderKL, factor 8, 4 latent channels): reconstruction MSE + small KL.
  2. Encode a pool of procedural images once with the frozen VAE encoder (mean, std).
  3. Text encoder (CLIPTextModel, from scratch) + U-Net (UNet2DConditionModel with
     cross-attention) jointly: cosine (squaredcos_cap_v2) betas, epsilon prediction,
     simple MSE, caption dropout for classifier-free guidance, EMA of the weights.
  4. Save a diffusers folder (fp16 safetensors, EMA weights, the real CLIP BPE files,
     a DPMSolverMultistep scheduler config) that diffusiond loads.
"""
import argparse
import copy
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import dataset  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TOKENIZER_SRC = os.path.join(REPO, "models", "data", "clip-bpe", "sd1")

PRESETS = {
    # name: stage sizes.  "full" is the committed model's recipe (<= 2 h on 2 cores).
    "full": dict(vae_steps=3000, vae_batch=16, pool=24000, unet_steps=8000, batch=64),
    "short": dict(vae_steps=600, vae_batch=16, pool=8000, unet_steps=2500, batch=64),
    "tiny": dict(vae_steps=60, vae_batch=8, pool=512, unet_steps=60, batch=16),
}

VAE_CFG = dict(in_channels=3, out_channels=3, latent_channels=4, act_fn="silu",
               down_block_types=["DownEncoderBlock2D"] * 4,
               up_block_types=["UpDecoderBlock2D"] * 4,
               block_out_channels=[16, 32, 64, 64], layers_per_block=1,
               norm_num_groups=8, sample_size=64, scaling_factor=1.0)
TEXT_CFG = dict(vocab_size=49408, max_position_embeddings=77, hidden_size=64,
                intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
                hidden_act="quick_gelu", projection_dim=64, layer_norm_eps=1e-5,
                bos_token_id=0, eos_token_id=2, pad_token_id=1, attention_dropout=0.0,
                dropout=0.0, initializer_factor=1.0, initializer_range=0.02)
UNET_CFG = dict(sample_size=8, in_channels=4, out_channels=4, center_input_sample=False,
                flip_sin_to_cos=True, freq_shift=0, downsample_padding=1,
                mid_block_scale_factor=1, act_fn="silu", norm_eps=1e-5,
                down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                block_out_channels=[64, 128, 128], layers_per_block=1, norm_num_groups=16,
                cross_attention_dim=64, attention_head_dim=4)
SCHED_TRAIN = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                   prediction_type="epsilon")
# What the service samples with (the C code supports this class): DPM++ 2M with
# "leading" spacing.  The cosine schedule's last steps have alpha ~ 0 (sigma ~ 2e4 at
# t = 999), where an epsilon model's x0 estimate is useless; "leading" + offset 1
# starts at t = 951 (alpha_bar ~ 0.006, about SD's terminal value), see docs/models.md.
SCHED_SAMPLE = dict(_class_name="DPMSolverMultistepScheduler", num_train_timesteps=1000,
                    beta_schedule="squaredcos_cap_v2", beta_start=0.0001, beta_end=0.02,
                    prediction_type="epsilon", algorithm_type="dpmsolver++", solver_order=2,
                    timestep_spacing="leading", steps_offset=1, lower_order_final=True,
                    use_karras_sigmas=False, set_alpha_to_one=False, clip_sample=False,
                    trained_betas=None)
# What diffusiond applies when a request gives no steps / guidance (diffusiond.json in
# the folder; models/sd_model.h).  DPM++ 2M converges in ~20 steps on this model.
DIFFUSIOND_DEFAULTS = dict(default_steps=20, default_guidance=5.0)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def to_tensor(imgs):
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def lr_at(step, total, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self.n = 0

    @torch.no_grad()
    def update(self, model):
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.lerp_(p.detach(), 1 - d)


def autocast(enabled):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(enabled))


# ---------------------------------------------------------------------------- VAE

def shape_weight(x, fg_weight):
    """Per-pixel loss weight [N,1,H,W]: 1 + fg_weight on the shape and a pixel around it.

    A small shape is ~5 % of the pixels; unweighted, the VAE learns the background and
    rounds small triangles and squares into blobs (decoded kind accuracy 74 % at 2500
    steps, against 92 % with this weight at 1200).  The background is the corner pixel:
    shapes never reach the corners."""
    corner = x[:, :, :1, :1]
    fg = ((x - corner).abs().amax(1, keepdim=True) > 0.05).float()
    fg = F.max_pool2d(fg, 3, 1, 1)  # both sides of the edge
    return 1 + fg_weight * fg


def train_vae(args, p):
    from diffusers import AutoencoderKL
    torch.manual_seed(args.seed + 1)
    vae = AutoencoderKL(**VAE_CFG)
    log(f"VAE: {sum(x.numel() for x in vae.parameters()):,} parameters")
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    data = dataset.ShapeSampler(args.seed + 100)
    t0 = time.time()
    for step in range(p["vae_steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, p["vae_steps"], args.vae_lr, 50)
        x = to_tensor(data.batch(p["vae_batch"])[0])
        with autocast(args.bf16):
            post = vae.encode(x).latent_dist
            z = post.sample()
            rec = vae.decode(z).sample
        rec = rec.float()
        err = rec - x
        w = shape_weight(x, args.fg_weight)
        mse = (w * err.square()).mean() / w.mean()
        kl = post.kl().mean() / z[0].numel()  # per latent element
        # L1 keeps the flat shapes' edges sharper than MSE alone
        loss = mse + args.l1_weight * (w * err.abs()).mean() / w.mean() + args.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == p["vae_steps"] - 1:
            log(f"vae step {step}/{p['vae_steps']} mse {mse.item():.5f} kl {kl.item():.3f} "
                f"({(time.time() - t0) / (step + 1):.3f} s/step)")
    vae.eval().requires_grad_(False)
    return vae, time.time() - t0


@torch.no_grad()
def encode_pool(args, vae, n):
    """n procedural images (seeded) -> latent means/stds and their attributes."""
    data = dataset.ShapeSampler(args.seed + 200)
    means, stds, attrs, mse = [], [], [], 0.0
    t0 = time.time()
    for i in range(0, n, 64):
        imgs, a = data.batch(min(64, n - i))
        x = to_tensor(imgs)
        post = vae.encode(x).latent_dist
        means.append(post.mean)
        stds.append(post.std)
        attrs += a
        if i == 0:
            mse = F.mse_loss(vae.decode(post.mean).sample.clamp(-1, 1), x).item()
    mean, std = torch.cat(means), torch.cat(stds)
    scale = 1.0 / mean.std().item()
    log(f"pool: {n} latents in {time.time() - t0:.1f} s; latent std {1 / scale:.4f} -> "
        f"scaling_factor {scale:.5f}; decode(mean) mse {mse:.5f} (first 64)")
    return mean, std, attrs, scale, time.time() - t0


# ----------------------------------------------------------------- text + U-Net

class Captions:
    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.cache = {}

    def ids(self, texts):
        out = []
        for t in texts:
            if t not in self.cache:
                self.cache[t] = self.tok(t, padding="max_length", max_length=77,
                                         truncation=True, return_tensors="pt").input_ids[0]
            out.append(self.cache[t])
        return torch.stack(out)


def train_unet(args, p, mean, std, attrs, scale, tokenizer):
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(args.seed + 2)
    text = CLIPTextModel(CLIPTextConfig(**TEXT_CFG))
    torch.manual_seed(args.seed + 3)
    unet = UNet2DConditionModel(**UNET_CFG)
    log(f"text encoder: {sum(x.numel() for x in text.parameters()):,} parameters; "
        f"U-Net: {sum(x.numel() for x in unet.parameters()):,}")
    sched = DDPMScheduler(**SCHED_TRAIN)
    acp = sched.alphas_cumprod.float()
    params = list(text.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    ema_t, ema_u = EMA(text, args.ema), EMA(unet, args.ema)
    caps = Captions(tokenizer)
    rng = np.random.default_rng(args.seed + 300)
    gen = torch.Generator().manual_seed(args.seed + 301)
    sampler = dataset.ShapeSampler(args.seed + 302)  # for caption variants only
    n, B = mean.shape[0], p["batch"]
    t0, run = time.time(), 0.0
    for step in range(p["unet_steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, p["unet_steps"], args.lr, 200)
        idx = torch.from_numpy(rng.integers(0, n, B))
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)) * scale
        texts = [sampler.caption(attrs[i]) if rng.random() >= args.cond_drop else ""
                 for i in idx.tolist()]
        ids = caps.ids(texts)
        t = torch.randint(0, 1000, (B,), generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        a = acp[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * eps
        with autocast(args.bf16):
            ctx = text(ids)[0]
            pred = unet(zt, t, encoder_hidden_states=ctx).sample
        loss = F.mse_loss(pred.float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_t.update(text)
        ema_u.update(unet)
        run = loss.item() if step == 0 else 0.98 * run + 0.02 * loss.item()
        if step % 100 == 0 or step == p["unet_steps"] - 1:
            el = time.time() - t0
            log(f"unet step {step}/{p['unet_steps']} loss {loss.item():.4f} (avg {run:.4f}) "
                f"{el / (step + 1):.3f} s/step, eta {el / (step + 1) * (p['unet_steps'] - step - 1) / 60:.1f} min")
        if args.checkpoint_every and step and step % args.checkpoint_every == 0:
            yield "checkpoint", ema_t.shadow, ema_u.shadow
    yield "final", ema_t.shadow, ema_u.shadow, time.time() - t0


# ---------------------------------------------------------------------------- save

def save_folder(out, vae, text, unet, scale, meta):
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer
    tmp = out + ".tmp"
    if os.path.isdir(tmp):
        shutil.rmtree(tmp)
    tok = CLIPTokenizer.from_pretrained(TOKENIZER_SRC)
    cfg = {k: v for k, v in SCHED_SAMPLE.items() if k != "_class_name"}
    sch = DPMSolverMultistepScheduler.from_config(cfg)
    vae = copy.deepcopy(vae)
    vae.register_to_config(scaling_factor=float(round(scale, 5)))
    pipe = StableDiffusionPipeline(vae=vae.half(), text_encoder=copy.deepcopy(text).half(),
                                   tokenizer=tok, unet=copy.deepcopy(unet).half(), scheduler=sch,
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(tmp, safe_serialization=True)
    # the committed BPE files byte for byte (save_pretrained rewrites them)
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(os.path.join(TOKENIZER_SRC, f), os.path.join(tmp, "tokenizer", f))
    for f in os.listdir(os.path.join(tmp, "tokenizer")):
        if f not in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
            os.remove(os.path.join(tmp, "tokenizer", f))
    # diffusers writes lambda_min_clipped = -Infinity, which is not JSON (jansson, and so
    # diffusiond, refuses it); a missing key takes the class default (-inf) in diffusers.
    sc_path = os.path.join(tmp, "scheduler", "scheduler_config.json")
    with open(sc_path) as f:
        sc = json.load(f)
    sc = {k: v for k, v in sc.items() if not (isinstance(v, float) and not math.isfinite(v))}
    with open(sc_path, "w") as f:
        json.dump(sc, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
    # the recommended settings, which diffusiond reads as the model's defaults
    with open(os.path.join(tmp, "diffusiond.json"), "w") as f:
        json.dump(DIFFUSIOND_DEFAULTS, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(tmp, "training.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs
                if f.endswith(".safetensors"))
    log(f"saved {out} ({total / 1e6:.2f} MB of safetensors)")


def bench(args):
    """Seconds per training step, fp32 vs bf16 autocast, for both stages."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    vae = AutoencoderKL(**VAE_CFG)
    text, unet = CLIPTextModel(CLIPTextConfig(**TEXT_CFG)), UNet2DConditionModel(**UNET_CFG)
    x = torch.randn(16, 3, 64, 64)
    z = torch.randn(64, 4, 8, 8)
    ids = torch.randint(0, 49407, (64, 77))
    t = torch.randint(0, 1000, (64,))
    for bf in (False, True):
        for name, fn, ps in (
            ("vae b16", lambda: vae(x).sample.float().square().mean(), vae.parameters()),
            ("unet+text b64", lambda: unet(z, t, encoder_hidden_states=text(ids)[0]).sample.float().square().mean(),
             list(unet.parameters()) + list(text.parameters()))):
            ts = []
            for i in range(4):
                t0 = time.time()
                with autocast(bf):
                    loss = fn()
                loss.backward()
                ts.append(time.time() - t0)
            log(f"bench {name} bf16={bf}: {min(ts[1:]):.3f} s/step (median {sorted(ts[1:])[1]:.3f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "models", "default"))
    ap.add_argument("--preset", default="full", choices=list(PRESETS))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", type=int, default=0, help="bf16 autocast (1) or fp32 (0)")
    ap.add_argument("--vae-steps", type=int)
    ap.add_argument("--unet-steps", type=int)
    ap.add_argument("--pool", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--kl-weight", type=float, default=1e-5)
    ap.add_argument("--l1-weight", type=float, default=0.5)
    ap.add_argument("--fg-weight", type=float, default=9.0,
                    help="VAE loss weight added on shape pixels (0: unweighted)")
    ap.add_argument("--vae-batch", type=int)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--cond-drop", type=float, default=0.1)
    ap.add_argument("--checkpoint-every", type=int, default=0,
                    help="also save the EMA model to OUT.ckpt every N U-Net steps")
    ap.add_argument("--vae-from", help="reuse the VAE of this diffusers folder (skips stage 1)")
    ap.add_argument("--bench", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    if args.bench:
        return bench(args)
    p = dict(PRESETS[args.preset])
    for k in ("vae_steps", "vae_batch", "unet_steps", "pool", "batch"):
        if getattr(args, k) is not None:
            p[k] = getattr(args, k)
    from transformers import CLIPTokenizer
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER_SRC)
    T0 = time.time()
    log(f"preset {args.preset} {p}; threads {args.threads}; bf16 {bool(args.bf16)}; seed {args.seed}")
    if args.vae_from:
        from diffusers import AutoencoderKL
        vae = AutoencoderKL.from_pretrained(os.path.join(args.vae_from, "vae")).float().eval()
        vae.requires_grad_(False)
        t_vae = 0.0
    else:
        vae, t_vae = train_vae(args, p)
    mean, std, attrs, scale, t_pool = encode_pool(args, vae, p["pool"])
    meta = dict(preset=args.preset, stages=p, seed=args.seed, threads=args.threads,
                bf16=bool(args.bf16), lr=args.lr, vae_lr=args.vae_lr, kl_weight=args.kl_weight,
                l1_weight=args.l1_weight, fg_weight=args.fg_weight, ema=args.ema, cond_drop=args.cond_drop, scaling_factor=scale,
                versions=dict(torch=torch.__version__,
                              diffusers=__import__("diffusers").__version__,
                              transformers=__import__("transformers").__version__))
    for item in train_unet(args, p, mean, std, attrs, scale, tokenizer):
        if item[0] == "checkpoint":
            save_folder(args.out + ".ckpt", vae, item[1], item[2], scale, meta)
        else:
            _, text, unet, t_unet = item
            meta["seconds"] = dict(vae=round(t_vae), pool=round(t_pool), unet=round(t_unet),
                                   total=round(time.time() - T0))
            save_folder(args.out, vae, text, unet, scale, meta)
    log(f"done in {(time.time() - T0) / 60:.1f} min (vae {t_vae / 60:.1f}, pool {t_pool / 60:.1f}, "
        f"unet {t_unet / 60:.1f})")


if __name__ == "__main__":
    main()
