"""Sampling (inference): a run's components draw the RGB answer for images and prompts.

- lotus: one UNet call at t = T-1 on noise (zeros for Lotus-D) predicts the clean target latent.
- marigold / instruct: diffusers' DDIMScheduler with trailing spacing, ``steps`` steps from noise. In instruct mode
  guidance scales other than 1 run InstructPix2Pix's three-way classifier-free guidance: the UNet sees (prompt,
  image), (no prompt, image) and (no prompt, no image), and
  ``e = e_none + image_guidance * (e_image - e_none) + text_guidance * (e_full - e_image)``.

Why not diffusers' StableDiffusionInstructPix2PixPipeline, which has the same guidance formula: rgbify's model
differs from what it runs, so its results would change. rgbify scales the image latent by the VAE's scaling factor
(the pipeline does not), encodes prompts longer than the text encoder's window window by window with a masked pad
(the pipeline truncates them at 77 tokens and passes no mask), guides whenever a scale is not 1 (the pipeline only
when text guidance > 1 and image guidance >= 1), and draws its starting noise from ``step_generator``. Diffusers'
Marigold pipelines put the image latent first and take no prompt; Lotus has no stock pipeline. The model's
numerics stay as they are until runs are exported for stock pipelines (a later issue).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from rgbify.train.config import TrainConfig
from rgbify.train.model import Components, PromptEncoder, lotus_switch, vae_decode, vae_encode
from rgbify.train.step import step_generator


def _unet(unet, x: torch.Tensor, image: torch.Tensor, t, text: torch.Tensor, mask: torch.Tensor, **kw):
    """One UNet call on [x, image latent] (cast to the UNet's dtype)."""
    return unet(torch.cat([x, image], 1).to(unet.dtype), t, encoder_hidden_states=text, encoder_attention_mask=mask,
                **kw).sample


def _guided(unet, x, image, t, text, mask, empty, empty_mask, text_guidance: float, image_guidance: float):
    """InstructPix2Pix's three-way classifier-free guidance, the three conditions in one UNet batch."""
    e_full, e_img, e_none = _unet(
        unet, torch.cat([x, x, x]), torch.cat([image, image, torch.zeros_like(image)]), t,
        torch.cat([text, empty.to(text.dtype), empty.to(text.dtype)]), torch.cat([mask, empty_mask, empty_mask]),
    ).chunk(3)
    return e_none + image_guidance * (e_img - e_none) + text_guidance * (e_full - e_img)


def _ddim(components: Components, x, image, text, mask, steps: int, guidance: tuple | None) -> torch.Tensor:
    """DDIM (trailing spacing) from ``x``; ``guidance``: None, or (empty states, empty mask, text, image scales)."""
    ddim = DDIMScheduler.from_config(components.noise_scheduler.config, timestep_spacing="trailing")
    ddim.set_timesteps(steps, device=x.device)
    for t in ddim.timesteps:
        if guidance is None:
            out = _unet(components.unet, x, image, t, text, mask)
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
    ``cfg.inference_steps``) steps from noise drawn from ``seed``; in instruct mode guidance scales other than 1
    run three-way classifier-free guidance."""
    unet = components.unet
    device = components.vae.device
    prompts = prompts or PromptEncoder(components.tokenizer, components.text_encoder)
    img = vae_encode(components.vae, image).float()  # latents and the DDIM state stay float32 under bf16/fp16
    gen = step_generator(seed, 0, device, salt=1)
    text, mask = prompts(prompt_list)
    text = text.to(unet.dtype)
    x = torch.randn(img.shape, generator=gen, device=device)
    if cfg.mode == "lotus":
        t = torch.full((img.shape[0],), components.noise_scheduler.config.num_train_timesteps - 1, device=device,
                       dtype=torch.long)
        if cfg.lotus_deterministic:
            x = torch.zeros_like(x)
        label = lotus_switch(img.shape[0], False, device).to(unet.dtype)
        z = _unet(unet, x, img, t, text, mask, class_labels=label)
    else:
        guidance = None
        if cfg.mode == "instruct" and (text_guidance != 1.0 or image_guidance != 1.0):
            guidance = (*prompts([""] * img.shape[0], text.shape[1]), text_guidance, image_guidance)
        z = _ddim(components, x, img, text, mask, steps or cfg.inference_steps, guidance)
    rgb = vae_decode(components.vae, z).float()
    return ((rgb.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()
