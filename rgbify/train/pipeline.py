"""Sampling (inference): a run's components draw the RGB answer for images and prompts, as the stock pipelines do.

- lotus: one UNet call at t = T-1 on noise (zeros for Lotus-D) predicts the clean target latent.
- marigold / instruct: ``sampling_scheduler`` (diffusers' DDIMScheduler with trailing spacing; the scheduler a run
  saves in RUN/model/scheduler), ``steps`` steps from noise drawn by ``torch.Generator().manual_seed(seed)``. In
  instruct mode guidance scales other than 1 run InstructPix2Pix's three-way classifier-free guidance: the UNet sees
  (prompt, image), (no prompt, image) and (no prompt, no image), and
  ``e = e_none + text_guidance * (e_full - e_image) + image_guidance * (e_image - e_none)``.

Each mode follows the conventions of the stock diffusers pipeline that loads its runs (rgbify.train.model), so that
``stock_pipeline(...)``, or ``from_pretrained(RUN/model)`` of the class RUN/model/model_index.json names, draws what
``sample`` draws for the same image, seed, steps and scheduler (tests/test_train_stock.py: equal bytes on a CPU):

- instruct: ``StableDiffusionInstructPix2PixPipeline(prompt=P, image=I, num_inference_steps=S,
  guidance_scale=text_guidance, image_guidance_scale=image_guidance, generator=torch.Generator().manual_seed(seed))``.
  The stock pipeline guides only when ``guidance_scale > 1`` and ``image_guidance_scale >= 1`` (rgbify whenever a
  scale is not 1), and it truncates a prompt longer than the text encoder's window (77 tokens for CLIP), which
  rgbify encodes window by window (``PromptEncoder``): the two agree on prompts that fit the window, as rgbify's
  compact and depth/normals prompts do (docs/conventions.md, section 4).
- marigold: ``MarigoldDepthPipeline`` / ``MarigoldNormalsPipeline(image=I, num_inference_steps=S,
  processing_resolution=0 or the run's resolution, generator=...)``, whose prediction is the drawn target as
  Marigold reads it: depth the mean of the three (equal) channels in [0, 1], i.e. f(d) of the grey codec; normals
  the unit vector (2 RGB / 255 - 1, normalised) in the target frame (+x right, +y up, +z toward the viewer).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from rgbify.train.config import TrainConfig
from rgbify.train.model import Components, PromptEncoder, image_latent, lotus_switch, unet_input, vae_decode


def sampling_scheduler(components: Components) -> DDIMScheduler:
    """The scheduler marigold and instruct modes sample with, and the one a run saves for stock pipelines: DDIM on
    the training schedule (betas, prediction type) with trailing spacing, so that few steps start at t = T-1.

    The prediction type is passed explicitly: ``from_config`` leaves out the keys a config was built with by
    default (its ``_use_default_values``), and a preset's DDPMScheduler gets its prediction type registered after
    construction, so ``from_config`` alone gave DDIM "epsilon" for a v-prediction run (rgbify sampled so until
    run format 2)."""
    config = components.noise_scheduler.config
    return DDIMScheduler.from_config(config, timestep_spacing="trailing", prediction_type=config.prediction_type)


def stock_pipeline(components: Components, cfg: TrainConfig, unet=None):
    """The stock diffusers pipeline that runs this mode's model as ``sample`` does (None for lotus: diffusers has no
    Lotus pipeline). ``unet``: the UNet to put in it (default the components')."""
    parts = dict(unet=unet or components.unet, vae=components.vae, text_encoder=components.text_encoder,
                 tokenizer=components.tokenizer, scheduler=sampling_scheduler(components))
    if cfg.mode == "instruct":
        from diffusers import StableDiffusionInstructPix2PixPipeline

        return StableDiffusionInstructPix2PixPipeline(**parts, safety_checker=None, feature_extractor=None,
                                                      requires_safety_checker=False)
    if cfg.mode == "marigold":
        from diffusers import MarigoldDepthPipeline, MarigoldNormalsPipeline

        common = dict(default_denoising_steps=cfg.inference_steps, default_processing_resolution=cfg.resolution)
        if cfg.tasks == ("depth",):  # f(d) of MARIGOLD_DEPTH_CODEC: metric, neither scale- nor shift-invariant
            return MarigoldDepthPipeline(**parts, prediction_type="depth", scale_invariant=False,
                                         shift_invariant=False, **common)
        return MarigoldNormalsPipeline(**parts, prediction_type="normals", use_full_z_range=True, **common)
    return None


def _unet(unet, mode: str, x: torch.Tensor, image: torch.Tensor, t, text: torch.Tensor, mask, **kw):
    """One UNet call on the mode's [x, image latent] (cast to the UNet's dtype)."""
    return unet(unet_input(mode, x, image).to(unet.dtype), t, encoder_hidden_states=text, encoder_attention_mask=mask,
                **kw).sample


def _guided(unet, x, image, t, text, mask, empty, empty_mask, text_guidance: float, image_guidance: float):
    """InstructPix2Pix's three-way classifier-free guidance, the three conditions in one UNet batch, summed in the
    stock pipeline's order."""
    e_full, e_img, e_none = _unet(
        unet, "instruct", torch.cat([x, x, x]), torch.cat([image, image, torch.zeros_like(image)]), t,
        torch.cat([text, empty.to(text.dtype), empty.to(text.dtype)]), torch.cat([mask, empty_mask, empty_mask]),
    ).chunk(3)
    return e_none + text_guidance * (e_full - e_img) + image_guidance * (e_img - e_none)


def _ddim(components: Components, mode: str, x, image, text, mask, steps: int, guidance: tuple | None
          ) -> torch.Tensor:
    """DDIM (``sampling_scheduler``) from ``x``; ``guidance``: None, or (empty states, empty mask, text, image
    scales)."""
    ddim = sampling_scheduler(components)
    ddim.set_timesteps(steps, device=x.device)
    for t in ddim.timesteps:
        if guidance is None:
            out = _unet(components.unet, mode, x, image, t, text, mask)
        else:
            out = _guided(components.unet, x, image, t, text, mask, *guidance)
        x = ddim.step(out.float(), t, x).prev_sample
    return x


@torch.no_grad()
def sample(
    components: Components,
    cfg: TrainConfig,
    image: torch.Tensor,
    prompt_list: list[str],
    *,
    prompts: PromptEncoder | None = None,
    steps: int | None = None,
    seed: int = 0,
    text_guidance: float = 1.0,
    image_guidance: float = 1.0,
) -> torch.Tensor:
    """Predict target RGBs. image: (B,3,H,W) uint8 or float in [-1,1]; returns uint8 (B,H,W,3) on the CPU.

    lotus: one x0 step at t = T-1. marigold/instruct: DDIM, trailing spacing, ``steps`` (default
    ``cfg.inference_steps``) steps from noise drawn by ``torch.Generator(device).manual_seed(seed)`` (what a stock
    pipeline draws given that generator); in instruct mode guidance scales other than 1 run three-way
    classifier-free guidance. Marigold mode conditions on the empty prompt whatever ``prompt_list`` says."""
    if components.family != "unet":
        from rgbify.train import dit

        return dit.sample(components, cfg, image, prompt_list, prompts=prompts, steps=steps, seed=seed,
                          text_guidance=text_guidance, image_guidance=image_guidance)
    unet = components.unet
    device = components.vae.device
    prompts = prompts or PromptEncoder(components.tokenizer, components.text_encoder)
    img = image_latent(components.vae, cfg.mode, image)  # latents and the DDIM state stay float32 under bf16/fp16
    gen = torch.Generator(device=device).manual_seed(seed)
    text, mask = prompts.conditioning(cfg.mode, prompt_list)
    text = text.to(unet.dtype)
    x = torch.randn(img.shape, generator=gen, device=device)
    if cfg.mode == "lotus":
        t = torch.full((img.shape[0],), components.noise_scheduler.config.num_train_timesteps - 1, device=device,
                       dtype=torch.long)
        if cfg.lotus_deterministic:
            x = torch.zeros_like(x)
        label = lotus_switch(img.shape[0], False, device).to(unet.dtype)
        z = _unet(unet, cfg.mode, x, img, t, text, mask, class_labels=label)
    else:
        guidance = None
        if cfg.mode == "instruct" and (text_guidance != 1.0 or image_guidance != 1.0):
            guidance = (*prompts([""] * img.shape[0], text.shape[1]), text_guidance, image_guidance)
        z = _ddim(components, cfg.mode, x, img, text, mask, steps or cfg.inference_steps, guidance)
    rgb = vae_decode(components.vae, z).float()
    return ((rgb.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()
