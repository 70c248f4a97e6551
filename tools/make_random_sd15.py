#!/usr/bin/env python3
"""Writes a random-weight Stable Diffusion 1.5-shaped diffusers folder for benchmarks.

The U-Net, VAE and CLIP text encoder have SD1.5's exact configurations (859.5M U-Net
parameters, the 83.7M-parameter VAE, CLIP ViT-L/14's text tower) with PyTorch's default
random initialisation (seeded), stored as safetensors in --dtype; the tokenizer is the
bundled CLIP BPE (models/data/clip-bpe/sd1); the scheduler is Euler with SD1.5's betas.
Timing does not depend on the weights' values, so the engine (tests/gpu/bench_gpu) and
diffusers (tools/bench_diffusers_gpu.py) are timed on the same folder.

    python3 tools/make_random_sd15.py OUT_DIR [--dtype fp16] [--small]

--small shrinks every width (a quick check of this script on a CPU machine).
Needs torch, diffusers and transformers (no network).
"""
import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

UNET = dict(
    act_fn="silu", attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280],
    center_input_sample=False, cross_attention_dim=768,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                      "DownBlock2D"],
    downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=2,
    mid_block_scale_factor=1, norm_eps=1e-5, norm_num_groups=32, out_channels=4, sample_size=64,
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                    "CrossAttnUpBlock2D"])
VAE = dict(
    act_fn="silu", block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, in_channels=3, latent_channels=4,
    layers_per_block=2, norm_num_groups=32, out_channels=3, sample_size=512,
    up_block_types=["UpDecoderBlock2D"] * 4, scaling_factor=0.18215)
CLIP = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
    projection_dim=768, layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, pad_token_id=1)
SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
    beta_schedule="scaled_linear", prediction_type="epsilon", steps_offset=1,
    timestep_spacing="leading")


def small(unet, vae, clip):
    unet.update(block_out_channels=[32, 64, 64, 64], attention_head_dim=2, norm_num_groups=8,
                cross_attention_dim=64)
    vae.update(block_out_channels=[16, 32, 32, 32], norm_num_groups=8)
    clip.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, projection_dim=64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default="fp16")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    unet_cfg, vae_cfg, clip_cfg = dict(UNET), dict(VAE), dict(CLIP)
    if a.small:
        small(unet_cfg, vae_cfg, clip_cfg)
    torch.manual_seed(a.seed)
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)

    unet = UNet2DConditionModel(**unet_cfg).to(dtype)
    unet.save_pretrained(os.path.join(a.out, "unet"))
    n_unet = sum(p.numel() for p in unet.parameters())
    del unet
    vae = AutoencoderKL(**vae_cfg).to(dtype)
    vae.save_pretrained(os.path.join(a.out, "vae"))
    del vae
    te = CLIPTextModel(CLIPTextConfig(**clip_cfg)).to(dtype)
    # the state dict under transformers' usual names (text_model.*), whatever this
    # transformers version's save_pretrained writes (5.x drops the prefix)
    ted = os.path.join(a.out, "text_encoder")
    os.makedirs(ted, exist_ok=True)
    te.config.save_pretrained(ted)
    from safetensors.torch import save_file
    sd = {(k if k.startswith("text_model.") else "text_model." + k): v.contiguous()
          for k, v in te.state_dict().items()}
    save_file(sd, os.path.join(ted, "model.safetensors"), metadata={"format": "pt"})
    del te
    EulerDiscreteScheduler(**SCHEDULER).save_pretrained(os.path.join(a.out, "scheduler"))

    tok_src = os.path.join(ROOT, "models", "data", "clip-bpe", "sd1")
    tok_dst = os.path.join(a.out, "tokenizer")
    os.makedirs(tok_dst, exist_ok=True)
    for name in os.listdir(tok_src):  # copies through the symlinks to the shared vocab
        shutil.copyfile(os.path.join(tok_src, name), os.path.join(tok_dst, name))

    index = {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.39.0",
        "feature_extractor": [None, None], "image_encoder": [None, None],
        "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    with open(os.path.join(a.out, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
    print(f"wrote {a.out}: U-Net {n_unet / 1e6:.1f}M parameters, {a.dtype}, "
          f"{time.time() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
