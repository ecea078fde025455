"""Sizes, counted FLOPs and computed peak memory of the transformer presets, for planning runs without a GPU.

Everything here is built on the meta device (shapes, no memory, no weights): ``meta_parts(name)`` gives the
transformer (with the 2C-channel patch embedding a conditioned mode trains), the frozen text encoders and the VAE
of ``sd3-random`` (SD3-medium's shapes), ``flux-random`` (FLUX.1-dev's) or ``tiny-dit``.

- ``transformer_flops``: FLOPs of one training sample of the transformer, forward and backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` on a meta pass (matmuls, convolutions; attention through
  scaled_dot_product_attention's math path, which the meta device takes: QK^T and AV as bmm). On a CPU tensor
  pass the counter misses attention (the CPU flash kernel has no formula), hence meta. ``analytic_sd3_flops`` is
  the same count from the config (2 x in x out per token of every linear layer on the stream it runs on, 4 N^2 d
  per head for attention) and tests/test_train_plan.py checks the two agree.
- ``activation_bytes``: the bytes autograd saves for backward in a bf16 forward of the transformer, summed from
  ``saved_tensors_hooks`` on the meta pass, with attention saving what a flash / memory-efficient kernel saves
  (q, k, v, out and the log-sum-exp), not the N x N matrix of the math path; with gradient checkpointing per block
  (what ``enable_gradient_checkpointing`` does in diffusers) the saved set is every block's inputs plus the largest
  block's own activations (recomputed one block at a time in backward).
- ``memory_plan``: peak memory per GPU of the training options (bf16 autocast, gradient checkpointing, 8-bit Adam,
  Adafactor, LoRA, FSDP over 8 GPUs) from the parameter counts and those activation bytes: computed, not measured;
  the CUDA context, allocator fragmentation and temporary buffers (a few GB in practice) are not in it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import AutoencoderKL, FluxTransformer2DModel, SD3Transformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

from rgbify.train.dit import FLUX_DEV, T5_TOKENS, preset_configs

SHAPE_PRESETS = ("tiny-dit", "sd3-random", "flux-random")


@dataclass
class Parts:
    """Meta-device modules of a preset and the token counts of a sample at ``resolution``."""

    name: str
    transformer: Any
    frozen: dict[str, Any]
    image_tokens: int
    text_tokens: int
    latent_channels: int
    latent_side: int


def meta_parts(name: str, resolution: int, conditioned: bool = True) -> Parts:
    """The preset's modules on the meta device; ``conditioned``: the transformer takes 2C latent channels (the
    image latent concatenated, as instruct and marigold modes train it)."""
    if name not in SHAPE_PRESETS:
        raise ValueError(f"no shapes for {name!r}; use one of {', '.join(SHAPE_PRESETS)}")
    with torch.device("meta"):
        if name == "flux-random":
            cfg = dict(FLUX_DEV["transformer"])
            if conditioned:
                cfg["in_channels"] *= 2
            transformer = FluxTransformer2DModel(out_channels=64, **cfg)
            frozen = {
                "clip_l": CLIPTextModel(CLIPTextConfig(**FLUX_DEV["clip"])),
                "t5_xxl": T5EncoderModel(T5Config(**FLUX_DEV["t5"])),
                "vae": AutoencoderKL(**FLUX_DEV["vae"]),
            }
            side = resolution // 8
            return Parts(name, transformer, frozen, (side // 2) ** 2, FLUX_DEV["text_tokens"], 16, side)
        cfgs = preset_configs(name)
        vae_cfg = cfgs["vae"] or dict(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(16, 32, 64),
            down_block_types=("DownEncoderBlock2D",) * 3,
            layers_per_block=1,
            up_block_types=("UpDecoderBlock2D",) * 3,
            norm_num_groups=8,
            mid_block_add_attention=False,
        )
        vae = AutoencoderKL(**vae_cfg)
        down = 2 ** (len(vae.config.block_out_channels) - 1)
        tcfg = dict(cfgs["transformer"])
        if conditioned:
            tcfg["in_channels"] *= 2
        side = resolution // down
        transformer = SD3Transformer2DModel(sample_size=side, **tcfg)
        frozen = {
            "clip_l": CLIPTextModelWithProjection(CLIPTextConfig(**{"vocab_size": 49408, **cfgs["text"]})),
            "clip_g": CLIPTextModelWithProjection(CLIPTextConfig(**{"vocab_size": 49408, **cfgs["text_2"]})),
            "vae": vae,
        }
        p = tcfg["patch_size"]
        return Parts(name, transformer, frozen, (side // p) ** 2, 77 + T5_TOKENS, vae.config.latent_channels, side)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _inputs(parts: Parts, batch: int, dtype=torch.float32) -> dict:
    t = parts.transformer
    with torch.device("meta"):
        if isinstance(t, FluxTransformer2DModel):
            return dict(
                hidden_states=torch.empty(batch, parts.image_tokens, t.config.in_channels, dtype=dtype),
                encoder_hidden_states=torch.empty(batch, parts.text_tokens, t.config.joint_attention_dim, dtype=dtype),
                pooled_projections=torch.empty(batch, t.config.pooled_projection_dim, dtype=dtype),
                timestep=torch.empty(batch),
                guidance=torch.empty(batch),
                img_ids=torch.empty(parts.image_tokens, 3),
                txt_ids=torch.empty(parts.text_tokens, 3),
            )
        s = parts.latent_side
        return dict(
            hidden_states=torch.empty(batch, t.config.in_channels, s, s, dtype=dtype),
            encoder_hidden_states=torch.empty(batch, parts.text_tokens, t.config.joint_attention_dim, dtype=dtype),
            pooled_projections=torch.empty(batch, t.config.pooled_projection_dim, dtype=dtype),
            timestep=torch.empty(batch),
        )


def transformer_flops(parts: Parts, batch: int = 1) -> dict[str, int]:
    """{"forward", "train"}: FLOPs of the transformer on ``batch`` samples, forward alone and forward + backward,
    counted by FlopCounterMode on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    out: dict[str, int] = {}
    for key, backward in (("forward", False), ("train", True)):
        with FlopCounterMode(display=False) as counter:
            y = parts.transformer(**_inputs(parts, batch), return_dict=False)[0]
            if backward:
                y.sum().backward()
        out[key] = int(counter.get_total_flops())
    parts.transformer.zero_grad(set_to_none=True)
    return out


def vae_encode_flops(parts: Parts, resolution: int, batch: int = 1) -> int:
    """FLOPs of the two VAE encodes a training sample takes (image and target), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    vae = parts.frozen["vae"]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        vae.encode(torch.empty(2 * batch, 3, resolution, resolution, device="meta"))
    return int(counter.get_total_flops())


def analytic_sd3_flops(transformer: SD3Transformer2DModel, image_tokens: int, text_tokens: int, batch: int = 1) -> int:
    """Forward FLOPs of an SD3 MMDiT from its modules: 2 in x out per token of each linear layer on the stream it
    runs on (image tokens; context tokens for the context stream; once per sample for the timestep / pooled
    embedding and the adaLN modulations), the patch embedding's convolution, and joint attention, 4 N^2 d per head
    and layer (QK^T and AV over N = image + text tokens)."""
    total = 0
    for name, m in transformer.named_modules():
        if isinstance(m, torch.nn.Linear):
            if "time_text_embed" in name or name.endswith(("norm1.linear", "norm1_context.linear", "norm_out.linear")):
                tokens = 1
            elif "context" in name or ".add_" in name or "to_add_out" in name:
                tokens = text_tokens
            else:
                tokens = image_tokens
            total += 2 * m.in_features * m.out_features * tokens
        elif isinstance(m, torch.nn.Conv2d):
            total += 2 * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] * image_tokens
    cfg = transformer.config
    n = image_tokens + text_tokens
    total += 4 * n * n * cfg.attention_head_dim * cfg.num_attention_heads * cfg.num_layers
    return total * batch


def analytic_flux_flops(transformer, image_tokens: int, text_tokens: int, batch: int = 1) -> int:
    """Forward FLOPs of a FLUX transformer from its modules, as ``analytic_sd3_flops``: double-stream blocks run
    their image and context weights on their own tokens, single-stream blocks run every weight on the joined
    sequence; adaLN modulations and the timestep / guidance / pooled embeddings once per sample; attention
    4 N^2 d per head in all 19 + 38 blocks."""
    total = 0
    for name, m in transformer.named_modules():
        if not isinstance(m, torch.nn.Linear):
            continue
        if "time_text_embed" in name or name.endswith(
            ("norm1.linear", "norm1_context.linear", "norm.linear", "norm_out.linear")
        ):
            tokens = 1
        elif name.startswith("single_transformer_blocks"):
            tokens = image_tokens + text_tokens
        elif "context" in name or ".add_" in name or "to_add_out" in name:
            tokens = text_tokens
        else:
            tokens = image_tokens
        total += 2 * m.in_features * m.out_features * tokens
    cfg = transformer.config
    n = image_tokens + text_tokens
    total += 4 * n * n * cfg.attention_head_dim * cfg.num_attention_heads * (cfg.num_layers + cfg.num_single_layers)
    return total * batch


class _FlashLikeAttention(torch.autograd.Function):
    """scaled_dot_product_attention for the meta pass that saves what flash / memory-efficient kernels save."""

    @staticmethod
    def forward(ctx, q, k, v):
        out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
        lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, _, _ = ctx.saved_tensors
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


@contextlib.contextmanager
def _flash_attention():
    original = torch.nn.functional.scaled_dot_product_attention

    def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        return _FlashLikeAttention.apply(query, key, value)

    torch.nn.functional.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        torch.nn.functional.scaled_dot_product_attention = original


def _blocks(transformer) -> list:
    blocks = list(transformer.transformer_blocks)
    return blocks + list(getattr(transformer, "single_transformer_blocks", []))


def activation_bytes(parts: Parts, batch: int = 1) -> dict[str, int]:
    """{"full", "checkpointed"}: bytes saved for backward by a bf16 forward of ``batch`` samples (meta pass,
    flash-like attention), without and with per-block gradient checkpointing."""
    t = torch.nn.Module.to(parts.transformer, torch.bfloat16)  # nn.Module.to: no diffusers dtype warning
    state = {"bytes": 0, "inputs": 0, "per_block": []}
    seen: set[int] = set()

    def pack(x):
        if not isinstance(x, torch.nn.Parameter) and id(x) not in seen:
            seen.add(id(x))
            state["bytes"] += x.numel() * x.element_size()
        return x

    def pre(module, args, kwargs):
        state["start"] = state["bytes"]
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        state["inputs"] += sum(a.numel() * a.element_size() for a in tensors)

    def post(module, args, kwargs, output):
        state["per_block"].append(state["bytes"] - state["start"])

    hooks = [b.register_forward_pre_hook(pre, with_kwargs=True) for b in _blocks(t)]
    hooks += [b.register_forward_hook(post, with_kwargs=True) for b in _blocks(t)]
    try:
        with _flash_attention(), torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            t(**_inputs(parts, batch, torch.bfloat16), return_dict=False)
    finally:
        for h in hooks:
            h.remove()
        torch.nn.Module.to(parts.transformer, torch.float32)
    full = state["bytes"]
    outside = full - sum(state["per_block"])
    return {"full": full, "checkpointed": outside + state["inputs"] + max(state["per_block"])}


def lora_params(transformer, rank: int) -> int:
    """Parameters of rank-``rank`` LoRA on every attention projection (to_q/k/v/out, add_q/k/v_proj, to_add_out)."""
    keys = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
    return sum(
        rank * (m.in_features + m.out_features)
        for name, m in transformer.named_modules()
        if isinstance(m, torch.nn.Linear) and name.endswith(keys)
    )


def memory_plan(parts: Parts, batch: int, gpus: int = 8, lora_rank: int = 16) -> list[dict[str, Any]]:
    """Peak memory per GPU (bytes) of training options, computed: trained weights and their states, frozen
    encoders in bf16, saved activations for ``batch`` samples per GPU."""
    p = n_params(parts.transformer)
    frozen = 2 * sum(n_params(m) for m in parts.frozen.values())
    act = activation_bytes(parts, batch)
    largest_block = max(n_params(b) for b in _blocks(parts.transformer))
    lora = lora_params(parts.transformer, lora_rank)
    cast = 2 * p  # autocast's bf16 copies of the fp32 weights, alive through the forward
    rows = [
        (
            "fp32 weights, AdamW, bf16 autocast",
            16 * p + cast,
            act["full"],
            "fp32 weights 4P + grads 4P + Adam moments 8P, bf16 weight copies 2P",
        ),
        ("+ gradient checkpointing", 16 * p + cast, act["checkpointed"], "activations: block inputs + one block"),
        ("+ 8-bit Adam (bitsandbytes)", 10 * p + cast, act["checkpointed"], "moments 2P instead of 8P"),
        ("+ Adafactor instead (factored, no momentum)", 8 * p + cast, act["checkpointed"], "second moment ~0"),
        (
            f"LoRA r={lora_rank} (bf16 frozen base), AdamW, ckpt",
            2 * p + 16 * lora,
            act["checkpointed"],
            f"{lora / 1e6:.1f} M trained parameters",
        ),
        (
            f"FSDP full shard over {gpus}, AdamW, bf16, ckpt",
            (16 * p + cast) // gpus + 2 * 2 * largest_block,
            act["checkpointed"],
            "states / N + two gathered bf16 blocks",
        ),
    ]
    return [
        {
            "option": name,
            "states": states,
            "activations": a,
            "frozen": frozen,
            "peak": states + a + frozen,
            "note": note,
        }
        for name, states, a, note in rows
    ]
