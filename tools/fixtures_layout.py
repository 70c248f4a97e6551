"""Diffusers ⇄ original (CompVis/Stability "ldm") single-file name mapping, used by
tools/make_fixtures.py to write the single-file checkpoints and to check them.

Written for this project from the known layouts (the original `ldm` module tree as
the SD1/SD2 checkpoints store it; OpenCLIP's text tower for SD2).  The mapping is
driven by the diffusers configs (layers_per_block, which blocks have attention), so
it works for the tiny fixture models and for the real SD1.5/SD2.1 sizes alike.

    to_original(unet, vae, text_encoder, family, ...)  -> {original name: tensor}
    from_original(sd, unet_cfg, vae_cfg, text_cfg, family, names...) ->
        ({"unet": {...}, "vae": {...}, "text_encoder": {...}}, original names read)
"""

import re

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."   # SD1: HF CLIPTextModel names below it
OPENCLIP_PREFIX = "cond_stage_model.model."     # SD2: OpenCLIP text tower


# --- U-Net ------------------------------------------------------------------------

_RESNET = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."),
           ("time_emb_proj.", "emb_layers.1."), ("norm2.", "out_layers.0."),
           ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]


def _unet_block_prefixes(cfg):
    """[(diffusers module prefix, original module prefix, kind)] for every block
    of a UNet2DConditionModel config; kind is 'resnet', 'attn' or 'plain'."""
    out = []
    L = cfg["layers_per_block"]
    if isinstance(L, (list, tuple)):
        raise ValueError("per-block layers_per_block is not a Stable Diffusion layout")
    n = len(cfg["block_out_channels"])
    out.append(("conv_in.", "input_blocks.0.0.", "plain"))
    out.append(("time_embedding.linear_1.", "time_embed.0.", "plain"))
    out.append(("time_embedding.linear_2.", "time_embed.2.", "plain"))
    for i, btype in enumerate(cfg["down_block_types"]):
        for j in range(L):
            ob = 1 + i * (L + 1) + j
            out.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{ob}.0.", "resnet"))
            if btype.startswith("CrossAttn"):
                out.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{ob}.1.", "plain"))
        if i < n - 1:
            out.append((f"down_blocks.{i}.downsamplers.0.conv.",
                        f"input_blocks.{(i + 1) * (L + 1)}.0.op.", "plain"))
    out.append(("mid_block.resnets.0.", "middle_block.0.", "resnet"))
    out.append(("mid_block.attentions.0.", "middle_block.1.", "plain"))
    out.append(("mid_block.resnets.1.", "middle_block.2.", "resnet"))
    for i, btype in enumerate(cfg["up_block_types"]):
        attn = btype.startswith("CrossAttn")
        for j in range(L + 1):
            ob = i * (L + 1) + j
            out.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{ob}.0.", "resnet"))
            if attn:
                out.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{ob}.1.", "plain"))
        if i < n - 1:
            ob = i * (L + 1) + L
            out.append((f"up_blocks.{i}.upsamplers.0.conv.",
                        f"output_blocks.{ob}.{2 if attn else 1}.conv.", "plain"))
    out.append(("conv_norm_out.", "out.0.", "plain"))
    out.append(("conv_out.", "out.2.", "plain"))
    return out


def unet_name_map(cfg, names):
    """{diffusers name: original name (without prefix)} for the given diffusers names."""
    blocks = _unet_block_prefixes(cfg)
    result = {}
    for name in names:
        hit = None
        for dp, op, kind in blocks:
            if name.startswith(dp):
                rest = name[len(dp):]
                if kind == "resnet":
                    for a, b in _RESNET:
                        if rest.startswith(a):
                            rest = b + rest[len(a):]
                            break
                    else:
                        raise KeyError(f"unmapped resnet tensor {name}")
                hit = op + rest   # transformer internals keep their names
                break
        if hit is None:
            raise KeyError(f"unmapped U-Net tensor {name}")
        result[name] = hit
    return result


# --- VAE --------------------------------------------------------------------------

_VAE_ATTN = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."),
             ("to_v.", "v."), ("to_out.0.", "proj_out.")]


def vae_name_map(cfg, names):
    n = len(cfg["block_out_channels"])
    result = {}
    for name in names:
        m = name
        m = re.sub(r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2.", m)
        m = re.sub(r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", m)
        mm = re.match(r"^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(.*)$", m)
        if mm:
            i = n - 1 - int(mm.group(1))
            if mm.group(2) == "resnets":
                m = f"decoder.up.{i}.block.{mm.group(3)}.{mm.group(4)}"
            else:
                m = f"decoder.up.{i}.upsample.{mm.group(4)}"
        m = re.sub(r"^(encoder|decoder)\.mid_block\.resnets\.0\.", r"\1.mid.block_1.", m)
        m = re.sub(r"^(encoder|decoder)\.mid_block\.resnets\.1\.", r"\1.mid.block_2.", m)
        mm = re.match(r"^(encoder|decoder)\.mid_block\.attentions\.0\.(.*)$", m)
        if mm:
            rest = mm.group(2)
            for a, b in _VAE_ATTN:
                if rest.startswith(a):
                    rest = b + rest[len(a):]
                    break
            else:
                raise KeyError(f"unmapped VAE attention tensor {name}")
            m = f"{mm.group(1)}.mid.attn_1.{rest}"
        m = re.sub(r"^(encoder|decoder)\.conv_norm_out\.", r"\1.norm_out.", m)
        m = m.replace(".conv_shortcut.", ".nin_shortcut.")
        result[name] = m
    return result


def _is_vae_attn_matrix(orig_name):
    return re.search(r"\.mid\.attn_1\.(q|k|v|proj_out)\.weight$", orig_name) is not None


# --- text encoders ----------------------------------------------------------------

def openclip_name_map(names):
    """HF CLIPTextModel names → OpenCLIP names, for all but the fused q/k/v."""
    result = {}
    for name in names:
        if name == "text_model.embeddings.token_embedding.weight":
            result[name] = "token_embedding.weight"
        elif name == "text_model.embeddings.position_embedding.weight":
            result[name] = "positional_embedding"
        elif name.startswith("text_model.final_layer_norm."):
            result[name] = "ln_final." + name.rsplit(".", 1)[1]
        else:
            m = re.match(r"^text_model\.encoder\.layers\.(\d+)\.(.*)$", name)
            if not m:
                raise KeyError(f"unmapped text-encoder tensor {name}")
            i, rest = m.group(1), m.group(2)
            if re.match(r"^self_attn\.(q|k|v)_proj\.", rest):
                continue   # fused below
            rest = (rest.replace("self_attn.out_proj.", "attn.out_proj.")
                        .replace("layer_norm1.", "ln_1.").replace("layer_norm2.", "ln_2.")
                        .replace("mlp.fc1.", "mlp.c_fc.").replace("mlp.fc2.", "mlp.c_proj."))
            result[name] = f"transformer.resblocks.{i}.{rest}"
    return result


def ldm_schedule_buffers(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012):
    """The DDPM buffers LatentDiffusion.register_schedule stores in every original
    checkpoint (the 'linear' ldm schedule = diffusers' scaled_linear), computed in
    float64 and stored as float32 like the real files.  Loaders must ignore them."""
    import numpy as np
    betas = np.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    bufs = {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    }
    return {k: torch.from_numpy(v.astype(np.float32)) for k, v in bufs.items()}


# --- whole checkpoint -------------------------------------------------------------

def to_original(unet_sd, unet_cfg, vae_sd, vae_cfg, text_sd, text_cfg, family,
                dropped_layer_sd=None, text_projection=None, dtype=torch.float16,
                extras=True):
    """Original single-file state dict.

    family "sd1": text encoder under cond_stage_model.transformer.<HF names> (+ the
    int64 position_ids buffer the real SD1 files carry).
    family "sd2": OpenCLIP names under cond_stage_model.model.; q/k/v fused into
    attn.in_proj_weight/in_proj_bias ([q;k;v] along dim 0); dropped_layer_sd is the
    HF state dict of one more layer (named text_model.encoder.layers.<n>.*) that the
    original checkpoint carries and SD2 does not use (its text conditioning is the
    penultimate layer); text_projection [width, width] and logit_scale are stored like
    OpenCLIP's, unused by SD.
    Floating tensors are cast to `dtype`; the DDPM schedule buffers stay float32.
    """
    out = {}
    for d, o in unet_name_map(unet_cfg, unet_sd.keys()).items():
        out[UNET_PREFIX + o] = unet_sd[d]
    for d, o in vae_name_map(vae_cfg, vae_sd.keys()).items():
        t = vae_sd[d]
        if _is_vae_attn_matrix(o):
            t = t.reshape(t.shape[0], t.shape[1], 1, 1)   # ldm uses 1x1 convs here
        out[VAE_PREFIX + o] = t
    if family == "sd1":
        for k, v in text_sd.items():
            out[CLIP_PREFIX + k] = v
        out[CLIP_PREFIX + "text_model.embeddings.position_ids"] = \
            torch.arange(text_cfg["max_position_embeddings"], dtype=torch.int64)[None, :]
    elif family == "sd2":
        full = dict(text_sd)
        n_layers = text_cfg["num_hidden_layers"]
        if dropped_layer_sd is not None:
            full.update(dropped_layer_sd)
        for d, o in openclip_name_map(full.keys()).items():
            out[OPENCLIP_PREFIX + o] = full[d]
        n_total = n_layers + (1 if dropped_layer_sd is not None else 0)
        for i in range(n_total):
            p = f"text_model.encoder.layers.{i}.self_attn."
            for kind in ("weight", "bias"):
                out[OPENCLIP_PREFIX + f"transformer.resblocks.{i}.attn.in_proj_{kind}"] = torch.cat(
                    [full[p + f"{x}_proj.{kind}"] for x in ("q", "k", "v")], dim=0)
        if text_projection is not None:
            out[OPENCLIP_PREFIX + "text_projection"] = text_projection
        out[OPENCLIP_PREFIX + "logit_scale"] = torch.tensor(4.6052, dtype=torch.float32)
    else:
        raise ValueError(family)
    res = {}
    for k, v in out.items():
        v = v.detach().contiguous()
        if v.is_floating_point() and v.ndim > 0:
            v = v.to(dtype)
        res[k] = v
    if extras:
        for k, v in ldm_schedule_buffers().items():
            res[k] = v
        res["model_ema.decay"] = torch.tensor(0.9999, dtype=torch.float32)
        res["model_ema.num_updates"] = torch.tensor(0, dtype=torch.int32)
    return res


class LazyFile:
    """Read-only mapping over a safetensors file that loads a tensor when asked."""

    def __init__(self, path):
        from safetensors import safe_open
        self._f = safe_open(path, "pt")
        self._keys = list(self._f.keys())

    def keys(self):
        return self._keys

    def __contains__(self, k):
        return k in self._keys

    def __getitem__(self, k):
        return self._f.get_tensor(k)


def from_original(sd, unet_cfg, vae_cfg, text_cfg, family, unet_names, vae_names, text_names,
                  which=("unet", "vae", "text_encoder")):
    """Inverse of to_original for the given diffusers names (f32 out), for the
    components in `which`.  Raises on a missing tensor; returns (dicts, the original
    names it read)."""
    used = set()

    def get(k):
        used.add(k)
        return sd[k].float()

    out = {}
    if "unet" in which:
        out["unet"] = {d: get(UNET_PREFIX + o) for d, o in unet_name_map(unet_cfg, unet_names).items()}
    if "vae" in which:
        vae = {}
        for d, o in vae_name_map(vae_cfg, vae_names).items():
            t = get(VAE_PREFIX + o)
            if _is_vae_attn_matrix(o):
                t = t.reshape(t.shape[0], t.shape[1])
            vae[d] = t
        out["vae"] = vae
    if "text_encoder" in which:
        text = {}
        if family == "sd1":
            for d in text_names:
                text[d] = get(CLIP_PREFIX + d)
            used.add(CLIP_PREFIX + "text_model.embeddings.position_ids")
        else:
            D = text_cfg["hidden_size"]
            for d, o in openclip_name_map(text_names).items():
                text[d] = get(OPENCLIP_PREFIX + o)
            for i in range(text_cfg["num_hidden_layers"]):
                for kind in ("weight", "bias"):
                    t = get(OPENCLIP_PREFIX + f"transformer.resblocks.{i}.attn.in_proj_{kind}")
                    for j, x in enumerate(("q", "k", "v")):
                        text[f"text_model.encoder.layers.{i}.self_attn.{x}_proj.{kind}"] = t[j * D:(j + 1) * D]
        out["text_encoder"] = text
    return out, used
