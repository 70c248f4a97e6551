#!/usr/bin/env python3
"""Make tests/fixtures/unet/: tiny diffusers UNet2DConditionModels with configs unlike
the SD ones, to prove the C U-Net reads everything from config.json.

The sd1-tiny / sd2-tiny pipelines (tools/make_fixtures.py) cover the SD structures;
these two cover what they do not:

  exotic2  2 blocks, in_channels 9 (inpainting-like), out_channels 3, per-block
           layers_per_block [1, 2] and transformer_layers_per_block [1, 2], heads [2, 3]
           (attention_head_dim), use_linear_projection, conv_in_kernel 5,
           conv_out_kernel 1, flip_sin_to_cos false, freq_shift 1, norm_eps 1e-6,
           cross_attention_dim 20
  exotic4  4 blocks starting with DownBlock2D (cross-attention only in the middle),
           heads that do not divide the channels (3 and 5 heads on 16 channels: inner
           width 15), 3 transformer layers per attention, GroupNorm 8, per-block
           cross_attention_dim list

Weights: the library's init plus seeded noise on every parameter, rounded to fp16 and
saved as F16 (the reference is computed from exactly those values in float32).
References: batch 3, non-square 8×16 latent, per-row float timesteps
[999, 3.25, 500], context [3, 77, Cctx]; NCHW as diffusers has them.  reference_odd:
batch 2 at latent sizes that are not multiples of the downscale (5×7, 9×13).

    /tmp/fxvenv/bin/python tools/make_unet_fixtures.py      # see docs/fixtures.md

Versions the committed files were made with: diffusers 0.39.0, torch 2.15.0 (CPU),
safetensors 0.8.0, Python 3.11.  Deterministic: fixed seeds, 2 threads.
"""
import json
import os

import torch
import diffusers
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "unet")

CASES = {
    "exotic2": dict(
        sample_size=8, in_channels=9, out_channels=3, block_out_channels=(8, 12),
        layers_per_block=(1, 2),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(2, 3), cross_attention_dim=20, transformer_layers_per_block=(1, 2),
        norm_num_groups=4, norm_eps=1e-6, flip_sin_to_cos=False, freq_shift=1,
        conv_in_kernel=5, conv_out_kernel=1, use_linear_projection=True),
    "exotic4": dict(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                          "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(1, 3, 5, 2), cross_attention_dim=(12, 12, 12, 12),
        transformer_layers_per_block=3, norm_num_groups=8),
}


def make(name, cfg, seed):
    torch.manual_seed(seed)
    m = UNet2DConditionModel(**cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
            p.copy_(p.half().float())  # fp16-exact
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    m.half().save_pretrained(d, safe_serialization=True)
    m.float()
    b, h, w = 3, 8, 16
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(b, cfg["in_channels"], h, w, generator=g)
    t = torch.tensor([999.0, 3.25, 500.0])
    cd = cfg["cross_attention_dim"]
    cd = cd if isinstance(cd, int) else cd[0]
    ctx = torch.randn(b, 77, cd, generator=g)
    with torch.no_grad():
        out = m(x, t, ctx).sample
    save_file({"sample": x.contiguous(), "timestep": t, "encoder_hidden_states": ctx,
               "out": out.contiguous()}, os.path.join(d, "reference.safetensors"),
              metadata={"diffusers": diffusers.__version__, "torch": torch.__version__})
    print(f"{name}: out {tuple(out.shape)} std {out.std().item():.4f}")
    make_odd(m, d, cfg, seed, cd)


# Latent sizes that are not multiples of the total downscale: diffusers' stride-2
# convs round up and each upsampler resizes to its skip's size.  A separate generator,
# so the reference above stays as it was.
ODD_SIZES = {"exotic2": (5, 7), "exotic4": (9, 13)}


def make_odd(m, d, cfg, seed, cd):
    name = os.path.basename(d)
    h, w = ODD_SIZES[name]
    g = torch.Generator().manual_seed(seed + 2)
    x = torch.randn(2, cfg["in_channels"], h, w, generator=g)
    t = torch.tensor([801.0, 42.5])
    ctx = torch.randn(2, 77, cd, generator=g)
    with torch.no_grad():
        out = m(x, t, ctx).sample
    save_file({"sample": x.contiguous(), "timestep": t, "encoder_hidden_states": ctx,
               "out": out.contiguous()}, os.path.join(d, "reference_odd.safetensors"),
              metadata={"diffusers": diffusers.__version__, "torch": torch.__version__})
    print(f"{name} odd {h}x{w}: out {tuple(out.shape)} std {out.std().item():.4f}")


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for i, (name, cfg) in enumerate(CASES.items()):
        make(name, cfg, 4242 + 17 * i)


if __name__ == "__main__":
    main()
