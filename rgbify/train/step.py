"""The training objective of the three modes: ``train_step`` turns a micro-batch into its loss (docs/training.md).

All modes encode image and target with the frozen VAE (latent mean), feed the UNet the noisy or starting target
latent and the image latent (in the mode's order and scale: rgbify.train.model) and the prompt's states (marigold:
the bare empty prompt), and take the MSE in latent space:

- marigold / instruct: t uniform in [0, T), the UNet predicts epsilon or v; instruct also drops the prompt, the
  image, or both, each with probability ``cond_dropout`` (classifier-free guidance at inference). The noise is
  Gaussian, or Marigold's multi-resolution noise (``multi_res_noise``) with ``--multi-res-noise``.
- lotus: t = T-1, the UNet predicts the clean target latent (x0); the detail preserver adds the same batch again
  with the task switch on "reconstruct the image".

Generation items (task ``generate``) have their image latent set to zero. Every random draw comes from the
generator passed in, which the loop seeds by (seed, global micro-batch index): a resumed run draws the same.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rgbify.train.config import TrainConfig
from rgbify.train.model import SCALED_IMAGE_LATENT, Components, PromptEncoder, lotus_switch, unet_input, vae_encode
from rgbify.train.parts import multi_res_noise  # noqa: F401 (re-exported)


def step_generator(seed: int, step: int, device, salt: int = 0) -> torch.Generator:
    """A torch generator on ``device`` seeded from (seed, step, salt) through numpy's SeedSequence."""
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, step, salt]).generate_state(1, np.uint64)[0]) & (2**63 - 1))
    return g


def train_step(components: Components, prompts: PromptEncoder, cfg: TrainConfig, batch: dict,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of one micro-batch and its per-item losses (for per-task logging), both on the device. Uses only
    ``gen`` for noise, timesteps and dropout."""
    if components.family != "unet":
        from rgbify.train.dit import flow_step

        return flow_step(components, prompts, cfg, batch, gen)
    unet, sched = components.unet, components.noise_scheduler
    device = components.vae.device
    scale = components.vae.config.scaling_factor
    target, image = vae_encode(components.vae, torch.cat([batch["target"], batch["image"]]), scaled=False).chunk(2)
    target, image = (target * scale).float(), (image * scale if SCALED_IMAGE_LATENT[cfg.mode] else image).float()
    for i, task in enumerate(batch["task"]):  # zeroed in place, not masked: no host-to-device copy (a CUDA sync)
        if task == "generate":
            image[i].zero_()
    text, mask = prompts.conditioning(cfg.mode, batch["prompt"])
    b = target.shape[0]
    noise = torch.randn(target.shape, generator=gen, device=device)
    if cfg.mode == "lotus":
        t = torch.full((b,), sched.config.num_train_timesteps - 1, device=device, dtype=torch.long)
        start = torch.zeros_like(noise) if cfg.lotus_deterministic else sched.add_noise(target, noise, t)
        inp = unet_input(cfg.mode, start, image)
        label, goal = lotus_switch(b, False, device), target
        if cfg.detail_preserver:
            noise2 = torch.randn(target.shape, generator=gen, device=device)
            start2 = torch.zeros_like(noise2) if cfg.lotus_deterministic else sched.add_noise(image, noise2, t)
            inp = torch.cat([inp, unet_input(cfg.mode, start2, image)])
            label = torch.cat([label, lotus_switch(b, True, device)])
            goal = torch.cat([goal, image])
            t, text, mask = torch.cat([t, t]), torch.cat([text, text]), torch.cat([mask, mask])
        pred = unet(inp, t, encoder_hidden_states=text, encoder_attention_mask=mask, class_labels=label).sample
    else:
        t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=gen, device=device)
        if cfg.multi_res_noise:
            strength = torch.full((b,), cfg.multi_res_noise, device=device)
            if cfg.multi_res_noise_annealed:
                strength = strength * t / sched.config.num_train_timesteps
            noise = multi_res_noise(noise, strength, gen)
        noisy = sched.add_noise(target, noise, t)
        if cfg.mode == "instruct" and cfg.cond_dropout > 0:
            r = torch.rand(b, generator=gen, device=device)
            p = cfg.cond_dropout
            drop_text = r < 2 * p  # [0, p): text only; [p, 2p): both
            drop_image = (r >= p) & (r < 3 * p)  # [2p, 3p): image only
            empty, empty_mask = prompts([""] * b, text.shape[1])
            text = torch.where(drop_text[:, None, None], empty, text)
            mask = torch.where(drop_text[:, None], empty_mask, mask)
            image = torch.where(drop_image[:, None, None, None], torch.zeros_like(image), image)
        goal = noise if sched.config.prediction_type == "epsilon" else sched.get_velocity(target, noise, t)
        pred = unet(unet_input(cfg.mode, noisy, image), t, encoder_hidden_states=text,
                    encoder_attention_mask=mask).sample
    per_item = F.mse_loss(pred.float(), goal.float(), reduction="none").mean(dim=(1, 2, 3))
    return per_item.mean(), per_item[:b].detach()
