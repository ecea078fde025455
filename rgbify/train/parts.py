"""What the UNet and transformer families share (rgbify.train.model, rgbify.train.dit): the ``Components`` of a run,
the tiny tokenizer and the tiny preset's VAE, the order and scale of the conditioned model's two latents per mode,
Lotus's task switch, the conventions a saved folder declares, Marigold's multi-resolution noise. The modules above
import these from here (model.py re-exports them under their old names)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from transformers import CLIPTokenizer

from rgbify.errors import UserError

WEIGHTS = "diffusion_pytorch_model.safetensors"
"""The file name of a diffusers model's weights (safetensors)."""


RUN_FORMAT = 2
"""Version of the conventions a run's RUN/model follows (run.json ``run_format``). 2: instruct's image latent
unscaled and marigold's image latent first, on the empty prompt (the stock pipelines' conventions); 1 (no
``run_format``): both modes scaled the image latent and put it second. Lotus is the same in both."""


IMAGE_FIRST = {"instruct": False, "lotus": False, "marigold": True}
"""Whether the mode's UNet input is [image latent, target latent] (Marigold) or [target latent, image latent]."""


SCALED_IMAGE_LATENT = {"instruct": False, "lotus": True, "marigold": True}
"""Whether the mode multiplies the image latent by the VAE's scaling factor (Marigold, Lotus) or not
(InstructPix2Pix). The target latent is always scaled: it is what the noise schedule is made for."""


STOCK_PIPELINES = {
    "StableDiffusionInstructPix2PixPipeline": "instruct",
    "MarigoldDepthPipeline": "marigold",
    "MarigoldNormalsPipeline": "marigold",
}
"""model_index.json classes whose 8-channel UNet follows one of rgbify's modes' conventions."""


@dataclass
class Components:
    """The diffusers components of a run. ``unet`` is the only trained one: the denoiser, a UNet2DConditionModel
    (family "unet", SD 1.x/2.x) or a transformer (family "sd3", "flux", "pixart" or "sana": rgbify.train.dit; SD3
    and FLUX have a second text encoder and tokenizer)."""

    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    noise_scheduler: Any
    family: str = "unet"
    text_encoder_2: Any = None
    tokenizer_2: Any = None
    text_encoder_3: Any = None
    tokenizer_3: Any = None

    def frozen(self) -> list:
        """The frozen modules: VAE and text encoder(s)."""
        return [m for m in (self.vae, self.text_encoder, self.text_encoder_2, self.text_encoder_3) if m is not None]


def tiny_tokenizer(max_length: int = 77) -> CLIPTokenizer:
    """A byte-level CLIP tokenizer that needs no files: the 256 byte symbols (and their end-of-word forms) of
    CLIP's byte-to-unicode table, no merges, CLIP's two special tokens. 514 ids; text is spelled out byte by
    byte, so long prompts are encoded in several 77-token windows (see ``PromptEncoder``)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    symbols = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def vae_scale_down(vae) -> int:
    """Pixels per latent along a side: 2 ** (levels - 1) (what diffusers pipelines call vae_scale_factor)."""
    levels = vae.config.get("block_out_channels") or vae.config["encoder_block_out_channels"]  # KL or DC-AE
    return 2 ** (len(levels) - 1)


def tiny_vae_dir() -> Path:
    """The tiny preset's trained VAE: package data rgbify/data/tiny_vae (config, weights, provenance.json)."""
    return Path(str(resources.files("rgbify").joinpath("data/tiny_vae")))


def load_tiny_vae() -> AutoencoderKL:
    """The tiny preset's trained AutoencoderKL (docs/training.md: how it was made, how to make it again)."""
    path = tiny_vae_dir()
    if not (path / WEIGHTS).is_file():
        raise UserError(
            f"the tiny preset's VAE is missing ({path / WEIGHTS}); reinstall rgbify, or use --base-model tiny-random"
        )
    return AutoencoderKL.from_pretrained(path)


def lotus_switch(n: int, rgb: bool, device) -> torch.Tensor:
    """Lotus's class label for n items: [sin, cos] of one-hot (task = [1,0], reconstruct rgb = [0,1])."""
    onehot = torch.eye(2, device=device)[int(rgb)]  # made on the device: no host-to-device copy (a CUDA sync)
    return torch.cat([torch.sin(onehot), torch.cos(onehot)]).expand(n, 4)


def conventions_of(folder: str | Path) -> tuple[str | None, str]:
    """(mode, whose) of the 8-channel UNet in a diffusers folder: the mode whose conventions it follows (None if the
    folder does not say) and what says so. An rgbify run's run.json names its mode ("old-<mode>" for instruct and
    marigold runs of run format 1, whose conventions were others); a stock pipeline's model_index.json its class."""
    root = Path(folder)
    if (root / "run.json").exists():
        meta = json.loads((root / "run.json").read_text())
        mode = meta["config"]["mode"]
        old = meta.get("run_format", 1) < RUN_FORMAT and mode != "lotus"
        return ("old-" if old else "") + mode, f"an rgbify {mode}-mode run"
    if (root / "model_index.json").exists():
        name = json.loads((root / "model_index.json").read_text()).get("_class_name", "")
        return STOCK_PIPELINES.get(name), f"a {name} checkpoint"
    return None, "a folder that names no pipeline"


def unet_input(mode: str, target: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The UNet's 8 input channels: [target latent, image latent], or [image, target] in marigold mode."""
    return torch.cat([image, target] if IMAGE_FIRST[mode] else [target, image], dim=1)


def multi_res_noise(noise: torch.Tensor, strength: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Marigold's multi-resolution noise (its ``multi_res_noise_like``, "original" strategy): to the white noise
    (B,C,H,W) add up to 10 coarser Gaussian fields, each drawn at the previous size divided by r^i (r uniform in
    [2, 4), i the level) and upsampled bilinearly, weighted strength^i (``strength`` per item, (B,)), then divide by
    the standard deviation. Fields from ``gen``; the sizes from a host generator seeded by ``gen``'s seed (Marigold
    draws r on the device and reads it back: a host sync per level)."""
    b, c, h, w = noise.shape
    s = strength.reshape(-1, 1, 1, 1).to(noise)
    sizes = np.random.default_rng([gen.initial_seed(), 0x6D72]).random(10) * 2 + 2
    out = noise.clone()
    hh, ww = h, w
    for i, r in enumerate(sizes):
        hh, ww = max(1, int(hh / r**i)), max(1, int(ww / r**i))
        field = torch.randn((b, c, hh, ww), generator=gen, device=noise.device)
        out += F.interpolate(field, size=(h, w), mode="bilinear", align_corners=False) * s**i
        if hh == 1 or ww == 1:
            break
    return out / out.std()


LORA_TARGETS = {"unet": ("to_q", "to_k", "to_v", "to_out.0"),
                "sd3": ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"),
                "flux": ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"),
                "pixart": ("to_q", "to_k", "to_v", "to_out.0"),
                "sana": ("to_q", "to_k", "to_v", "to_out.0")}
"""Modules that get LoRA adapters: the attention projections (the SD3 transformer's context stream too)."""
FULLY_TRAINED = {"unet": ("conv_in", "class_embedding"),
                 "sd3": ("pos_embed.proj", "time_text_embed.text_embedder.linear_1"),
                 "flux": ("x_embedder", "time_text_embed.text_embedder.linear_1"),
                 "pixart": ("pos_embed.proj",),
                 "sana": ("patch_embed.proj",)}
"""Modules a LoRA run still trains in full: those the mode widens or adds (image channels, the lotus switch)."""


def add_lora(model, family: str, rank: int, mixed_precision: str = "no") -> int:
    """Put rank-``rank`` LoRA adapters (peft, alpha = rank, Gaussian A and zero B: the model is unchanged at step 0)
    on ``model``'s attention projections and freeze every other weight except FULLY_TRAINED's. Under bf16 / fp16
    mixed precision the frozen weights are stored in that precision (2 bytes per parameter instead of 4, as
    diffusers' LoRA scripts do) and the trained ones stay float32. Returns the number of trained parameters."""
    try:
        from peft import LoraConfig
    except ImportError:
        raise UserError(f"--lora-rank {rank} needs peft: pip install peft (rgbify's train extra has it)") from None
    if not hasattr(model, "add_adapter"):  # diffusers gives PixArtTransformer2DModel no PeftAdapterMixin
        raise UserError(f"--lora-rank {rank}: diffusers has no LoRA adapters for {type(model).__name__}; train it "
                        "in full (drop --lora-rank)")
    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                 target_modules=list(LORA_TARGETS[family])))
    for name, module in model.named_modules():
        if name in FULLY_TRAINED[family]:
            module.requires_grad_(True)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
    if dtype is not None:
        for p in model.parameters():
            if not p.requires_grad:
                p.data = p.data.to(dtype)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merged(model):
    """``model`` itself, or, when it has LoRA adapters, a copy with them merged into the weights and removed (a
    plain diffusers model, what a run exports)."""
    if not getattr(model, "_hf_peft_config_loaded", False):
        return model
    import copy

    out = torch.nn.Module.to(copy.deepcopy(model), torch.float32)  # a bf16 frozen base is exported as float32
    out.fuse_lora(lora_scale=1.0)
    out.unload_lora()
    return out
