"""The model of a run: diffusers components built from a preset or loaded from a folder, adapted to the mode.

- ``build_model(cfg)`` -> ``Components`` (tokenizer, text encoder, VAE, UNet, noise scheduler; only the UNet trains).
  The UNet gets 8 input channels, the noisy (or starting) target latent and the image latent in the order of the
  mode's stock pipeline (``unet_input``); in lotus mode also the task switch (a class embedding of ``lotus_switch``).
  A folder whose UNet has 8 channels already (a run's RUN/model, an InstructPix2Pix or Marigold checkpoint) is used
  as it is when its conventions are the mode's, and refused in one line otherwise.
- The frozen components as functions: ``vae_encode`` / ``vae_decode`` (images <-> latents), ``image_latent`` (the
  image latent as the mode feeds it) and ``PromptEncoder`` (prompts of any length -> cross-attention states and mask;
  Marigold's empty prompt).

The conventions of each mode are those of the stock diffusers pipeline that loads its runs (docs/training.md):

| mode | UNet input | image latent | prompt | stock pipeline |
|---|---|---|---|---|
| instruct | [noisy target, image] | VAE mean, unscaled | the item's | StableDiffusionInstructPix2PixPipeline |
| marigold | [image, noisy target] | VAE mean x scaling_factor | empty: start, end | MarigoldDepth/NormalsPipeline |
| lotus | [start target, image] | VAE mean x scaling_factor | the item's | none in diffusers |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.models.embeddings import TimestepEmbedding
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from rgbify.datasets import to_unit
from rgbify.errors import UserError
from rgbify.train.config import PRESETS, TRANSFORMER_PRESETS, TrainConfig
from rgbify.train.parts import (  # noqa: F401 (re-exported: callers import them from here)
    IMAGE_FIRST,
    RUN_FORMAT,
    SCALED_IMAGE_LATENT,
    STOCK_PIPELINES,
    WEIGHTS,
    Components,
    conventions_of,
    load_tiny_vae,
    lotus_switch,
    tiny_tokenizer,
    tiny_vae_dir,
    unet_input,
    vae_scale_down,
)


def make_prompts(components: Components):
    """The family's prompt encoder (cached): ``PromptEncoder`` for UNets, ``rgbify.train.dit.SD3Prompts``."""
    if components.family != "unet":
        from rgbify.train.dit import SD3Prompts

        return SD3Prompts(components)
    return PromptEncoder(components.tokenizer, components.text_encoder)


def vae_config(channels: tuple[int, ...] = (16, 32, 64), resolution: int = 64) -> dict[str, Any]:
    """AutoencoderKL arguments of the tiny VAE (rgbify.train.vae trains it): len(channels) levels (the side halves
    len - 1 times), one ResNet block per level, 4 latent channels (SD's, so the UNet's conv_in adaptation applies),
    no attention in the middle block (at 16x16 latents its convolutions already see most of a 64 px crop)."""
    n = len(channels)
    return dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=resolution,
                down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                block_out_channels=tuple(channels), layers_per_block=1, norm_num_groups=8,
                mid_block_add_attention=False)


def _preset_configs(name: str) -> dict[str, dict[str, Any]]:
    """Configs of the UNet, VAE and text encoder of the presets (the tiny preset's VAE is loaded instead: its
    trained weights ship with rgbify)."""
    if name in ("tiny", "tiny-random"):  # ~1 M parameters in all; 64 px trains in a fraction of a second per step
        return {
            "unet": dict(
                block_out_channels=(32, 64),
                layers_per_block=1,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                cross_attention_dim=32,
                attention_head_dim=8,
                norm_num_groups=8,
            ),
            # tiny-random's VAE. scaling_factor: this random VAE's latents have a std of about 0.2 on rendered
            # images (SD's VAE: about 5.5, hence SD's 0.18215); 5.0 brings them to about unit variance, as the
            # noise schedule expects
            "vae": dict(in_channels=3, out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 16, 32, 32),
                        layers_per_block=1, norm_num_groups=8, scaling_factor=5.0),
            "text": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
        }
    # sd2-random: the shapes of stabilityai/stable-diffusion-2(-base), random weights (benchmarks, smoke tests)
    return {
        "unet": dict(
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=1024,
            attention_head_dim=(5, 10, 20, 20),
            use_linear_projection=True,
        ),
        "vae": dict(in_channels=3, out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                    layers_per_block=2),
        "text": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                     hidden_act="gelu"),
    }


def _build_preset(name: str, resolution: int) -> Components:
    cfgs = _preset_configs(name)
    tokenizer = tiny_tokenizer()
    text_cfg = CLIPTextConfig(
        vocab_size=len(tokenizer), max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **cfgs["text"],
    )
    text_encoder = CLIPTextModel(text_cfg)
    vae = load_tiny_vae() if name == "tiny" else AutoencoderKL(sample_size=resolution, **cfgs["vae"])
    unet = UNet2DConditionModel(
        sample_size=resolution // vae_scale_down(vae), in_channels=4, out_channels=4, **cfgs["unet"]
    )
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        steps_offset=1, clip_sample=False,
    )
    return Components(tokenizer, text_encoder, vae, unet, noise_scheduler)


def _load_pretrained(path: str) -> Components:
    root = Path(path)
    missing = [d for d in ("unet", "vae", "text_encoder", "tokenizer", "scheduler") if not (root / d).is_dir()]
    if missing:
        raise UserError(
            f"--base-model {path}: no {', '.join(missing)} folder; give a local diffusers Stable Diffusion 1.x/2.x "
            "folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) or 'tiny'"
        )
    try:
        return Components(
            tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer"),
            text_encoder=CLIPTextModel.from_pretrained(root / "text_encoder"),
            vae=AutoencoderKL.from_pretrained(root / "vae"),
            unet=UNet2DConditionModel.from_pretrained(root / "unet"),
            noise_scheduler=DDPMScheduler.from_pretrained(root / "scheduler"),
        )
    except (OSError, ValueError) as e:
        raise UserError(f"--base-model {path}: cannot load it ({e})") from e


def _is_sd3(path: str) -> bool:
    """Whether ``path`` is a transformer-family folder (SD3 or FLUX: rgbify.train.dit)."""
    from rgbify.train.dit import folder_family

    return folder_family(path) is not None


def _expand_conv_in(unet, mode: str) -> None:
    """Give the UNet 8 input channels: [noisy target latent (4), image latent (4)].

    marigold/lotus copy the pretrained kernel into both halves and halve it (the output is unchanged for equal
    inputs); instruct keeps the kernel on the noisy half and zeros the image half (InstructPix2Pix)."""
    old = unet.conv_in
    new = torch.nn.Conv2d(8, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        if mode == "instruct":
            new.weight.zero_()
            new.weight[:, :4] = old.weight
        else:
            new.weight.copy_(torch.cat([old.weight, old.weight], dim=1) * 0.5)
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=8)


def _add_task_switch(unet) -> None:
    """Lotus's switch: a projection class embedding of ``lotus_switch``'s 4-vector. Its last layer starts at zero,
    so the pretrained UNet's behaviour is unchanged at step 0."""
    time_dim = unet.time_embedding.linear_2.out_features
    unet.class_embedding = TimestepEmbedding(4, time_dim)
    with torch.no_grad():
        unet.class_embedding.linear_2.weight.zero_()
        unet.class_embedding.linear_2.bias.zero_()
    unet.register_to_config(class_embed_type="projection", projection_class_embeddings_input_dim=4)


def _check_conventions(cfg: TrainConfig) -> None:
    """An 8-channel base model is used as it is only in the mode whose conventions it was trained with."""
    mode, whose = conventions_of(cfg.base_model)
    if mode is not None and mode.startswith("old-"):
        raise UserError(f"--base-model {cfg.base_model}: exported by an earlier rgbify whose {mode[4:]} mode fed the "
                        "UNet another image latent (scaled, or second); retrain it with this rgbify")
    if mode is None:
        raise UserError(f"--base-model {cfg.base_model}: its UNet has 8 input channels, but it is {whose} (no rgbify "
                        "run.json, no model_index.json of StableDiffusionInstructPix2PixPipeline or a Marigold "
                        "pipeline), so its input conventions are unknown; give a 4-channel Stable Diffusion folder")
    if mode != cfg.mode:
        raise UserError(f"--base-model {cfg.base_model}: {whose}, whose 8-channel UNet takes {mode}-mode inputs; "
                        f"train it with --mode {mode}")


def build_model(cfg: TrainConfig) -> Components:
    """The components for ``cfg.base_model`` (preset or folder), adapted to ``cfg.mode``. A folder whose UNet has 8
    input channels already (an rgbify run, so that a trained run can be fine-tuned further; an InstructPix2Pix or
    Marigold checkpoint) is used as it is in the mode whose conventions it follows, and refused in any other."""
    if cfg.base_model in TRANSFORMER_PRESETS or (cfg.base_model not in PRESETS and _is_sd3(cfg.base_model)):
        from rgbify.train import dit

        if cfg.base_model in TRANSFORMER_PRESETS:
            components = dit.build_preset(cfg.base_model, cfg.resolution, t5=cfg.sd3_t5)
        else:
            components = dit.load_folder(cfg.base_model, t5=cfg.sd3_t5)
        if cfg.sd3_t5 and components.family != "sd3":
            raise UserError(f"--sd3-t5 is for Stable Diffusion 3 models; --base-model {cfg.base_model} is "
                            f"{components.family} (FLUX and PixArt always use T5); leave the flag off")
        dit.adapt(components, cfg)
        for frozen in components.frozen():
            frozen.requires_grad_(False)
        return components
    if cfg.base_model in PRESETS:
        components = _build_preset(cfg.base_model, cfg.resolution)
    else:
        components = _load_pretrained(cfg.base_model)
    unet = components.unet
    if unet.config.in_channels == 4:
        _expand_conv_in(unet, cfg.mode)
    elif unet.config.in_channels == 8:
        _check_conventions(cfg)
    else:
        raise UserError(
            f"--base-model {cfg.base_model}: UNet has {unet.config.in_channels} input channels; need 4 (SD) or 8"
        )
    if cfg.mode == "lotus" and unet.config.class_embed_type is None:
        _add_task_switch(unet)
    if cfg.mode != "lotus":
        components.noise_scheduler.register_to_config(prediction_type=cfg.prediction_type)
    components.vae.requires_grad_(False)
    components.text_encoder.requires_grad_(False)
    return components


def place_frozen(components: Components, device, mixed_precision: str) -> None:
    """The frozen VAE and text encoder go to the device, in bf16/fp16 under mixed precision."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
    for frozen in components.frozen():
        frozen.to(device)
        if dtype is not None:
            frozen.to(dtype=dtype)


@torch.no_grad()
def vae_encode(vae, x: torch.Tensor, scaled: bool = True) -> torch.Tensor:
    """(B,3,H,W) uint8, or float in [-1,1] -> latent mean (B,4,H/s,W/s), s = vae_scale_down(vae) (the mean, not a
    sample: deterministic), times the VAE's scaling factor if ``scaled``. uint8 batches (TaskDataset's) are scaled
    on the VAE's device."""
    x = to_unit(x.to(device=vae.device)).to(dtype=vae.dtype)
    z = vae.encode(x).latent_dist.mode()
    return z * vae.config.scaling_factor if scaled else z


def image_latent(vae, mode: str, image: torch.Tensor) -> torch.Tensor:
    """The image latent as ``mode`` feeds it to the UNet (float32): scaled or not (``SCALED_IMAGE_LATENT``)."""
    return vae_encode(vae, image, scaled=SCALED_IMAGE_LATENT[mode]).float()


@torch.no_grad()
def vae_decode(vae, z: torch.Tensor) -> torch.Tensor:
    """Scaled latent -> (B,3,H,W) float in [-1,1]."""
    return vae.decode(z.to(vae.dtype) / vae.config.scaling_factor).sample.clamp(-1, 1)


class PromptEncoder:
    """Prompt -> CLIP hidden states, cached (the text encoder is frozen). A prompt longer than the tokenizer's
    window is cut into windows of ``model_max_length - 2`` tokens, each wrapped in start/end and encoded
    separately, and the hidden states are concatenated (cross-attention takes any length). A batch is padded
    to its longest prompt with zeros that the attention mask hides, so a prompt's conditioning does not depend
    on the other prompts in its batch."""

    def __init__(self, tokenizer, text_encoder, max_cache: int = 8192):
        self.tok, self.enc, self.cache, self.max_cache = tokenizer, text_encoder, {}, max_cache
        self._bare_empty: torch.Tensor | None = None

    @torch.no_grad()
    def bare_empty(self, n: int) -> torch.Tensor:
        """(n, 2, D): the empty prompt as Marigold encodes it (start and end token, no padding; what diffusers'
        Marigold pipelines condition on), for marigold mode."""
        if self._bare_empty is None:
            device = next(self.enc.parameters()).device
            ids = self.tok("", padding="do_not_pad", max_length=self.tok.model_max_length, truncation=True).input_ids
            self._bare_empty = self.enc(torch.tensor([ids], device=device))[0]
        return self._bare_empty.expand(n, -1, -1)

    def conditioning(self, mode: str, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(states, mask) the UNet is conditioned on in ``mode``: the prompts' (``__call__``), or in marigold mode
        the bare empty prompt for every item, without a mask."""
        if mode == "marigold":
            return self.bare_empty(len(prompts)), None
        return self(prompts)

    @torch.no_grad()
    def one(self, prompt: str) -> torch.Tensor:
        """(windows * model_max_length, D) hidden states of one prompt."""
        if prompt in self.cache:
            return self.cache[prompt]
        win = self.tok.model_max_length
        ids = self.tok(prompt, add_special_tokens=False, truncation=False, verbose=False).input_ids or []
        chunks = [ids[i : i + win - 2] for i in range(0, max(len(ids), 1), win - 2)]
        rows = [[self.tok.bos_token_id, *c, self.tok.eos_token_id] for c in chunks]
        rows = [r + [self.tok.pad_token_id] * (win - len(r)) for r in rows]
        device = next(self.enc.parameters()).device
        hidden = self.enc(torch.tensor(rows, device=device))[0]  # (windows, win, D)
        out = hidden.reshape(-1, hidden.shape[-1])
        if len(self.cache) < self.max_cache:
            self.cache[prompt] = out
        return out

    def __call__(self, prompts: list[str], length: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(states (B, L, D), mask bool (B, L)); L is the longest prompt's length, or ``length`` if larger."""
        outs = [self.one(p) for p in prompts]
        n = max(max(o.shape[0] for o in outs), length)
        states = torch.stack([F.pad(o, (0, 0, 0, n - o.shape[0])) for o in outs])
        mask = torch.zeros(states.shape[:2], dtype=torch.bool, device=states.device)
        for i, o in enumerate(outs):
            mask[i, : o.shape[0]] = True
        return states, mask
