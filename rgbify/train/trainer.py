"""The trainer, top to bottom: build_model, build_data, train_step, sample (inference), evaluate, save/resume, train.

One file on purpose (house style): a reader follows a run from the parts it builds to the loop that trains them.
Three paradigms share it (see docs/training.md):

- ``marigold``: the UNet sees [noisy target latent, image latent] (conv_in doubled, weights copied and halved),
  learns epsilon or v, and is sampled with multi-step DDIM (trailing spacing).
- ``lotus``: the same input at t = T-1 (pure noise, or zeros for Lotus-D), the UNet predicts the clean target
  latent in one step; a task switch (class embedding of [sin, cos] of a one-hot) also trains RGB
  reconstruction (the detail preserver).
- ``instruct``: InstructPix2Pix-style: the image latent enters through extra conv_in channels initialised to
  zero, the prompt chooses task, codec and colours, generation items (image latent zero, target = the RGB)
  are mixed in, and prompt/image are dropped at random for classifier-free guidance.

All modes condition on the item's prompt (the original Marigold/Lotus use an empty prompt and one task per
model; rgbify's prompts carry the codec and the segmentation colours, so they are kept). The VAE and text
encoder are frozen; only the UNet trains. Randomness (data order, noise, timesteps, dropout) comes from
generators seeded by (seed, step), so a resumed run reproduces the uninterrupted one exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rgbify.datasets import collate
from rgbify.errors import UserError
from rgbify.train.config import PRESETS, TrainConfig, config_toml

LATENT_SCALE_DOWN = 8  # every SD VAE halves the side three times

# --------------------------------------------------------------------------------------------------------------
# build_model
# --------------------------------------------------------------------------------------------------------------


def tiny_tokenizer(max_length: int = 77):
    """A byte-level CLIP tokenizer that needs no files: the 256 byte symbols (and their end-of-word forms) of
    CLIP's byte-to-unicode table, no merges, CLIP's two special tokens. 514 ids; text is spelled out byte by
    byte, so long prompts are encoded in several 77-token chunks (see ``encode_prompts``)."""
    from transformers import CLIPTokenizer

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    symbols = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def _preset_configs(name: str) -> dict[str, dict[str, Any]]:
    """Configs of the UNet, VAE and text encoder for the random-weight presets."""
    if name == "tiny":  # ~1 M parameters in all; 64 px trains in a fraction of a second per step on a CPU
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
            # scaling_factor: this random VAE's latents have a std of about 0.2 on rendered images (SD's VAE:
            # about 5.5, hence SD's 0.18215); 5.0 brings them to about unit variance, as the noise schedule expects
            "vae": dict(block_out_channels=(8, 16, 32, 32), layers_per_block=1, norm_num_groups=8, scaling_factor=5.0),
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
        "vae": dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2),
        "text": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                     hidden_act="gelu"),
    }


@dataclass
class Parts:
    """The model parts of a run. ``unet`` is the only trained part."""

    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    noise_scheduler: Any


def _build_preset(name: str, resolution: int) -> Parts:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    cfgs = _preset_configs(name)
    tokenizer = tiny_tokenizer()
    text_cfg = CLIPTextConfig(
        vocab_size=len(tokenizer), max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **cfgs["text"],
    )
    text_encoder = CLIPTextModel(text_cfg)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=resolution,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, **cfgs["vae"],
    )
    unet = UNet2DConditionModel(
        sample_size=resolution // LATENT_SCALE_DOWN, in_channels=4, out_channels=4, **cfgs["unet"]
    )
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        steps_offset=1, clip_sample=False,
    )
    return Parts(tokenizer, text_encoder, vae, unet, noise_scheduler)


def _load_pretrained(path: str) -> Parts:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    root = Path(path)
    missing = [d for d in ("unet", "vae", "text_encoder", "tokenizer", "scheduler") if not (root / d).is_dir()]
    if missing:
        raise UserError(
            f"--base-model {path}: no {', '.join(missing)} folder; give a local diffusers Stable Diffusion 1.x/2.x "
            "folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) or 'tiny'"
        )
    try:
        return Parts(
            tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer"),
            text_encoder=CLIPTextModel.from_pretrained(root / "text_encoder"),
            vae=AutoencoderKL.from_pretrained(root / "vae"),
            unet=UNet2DConditionModel.from_pretrained(root / "unet"),
            noise_scheduler=DDPMScheduler.from_pretrained(root / "scheduler"),
        )
    except (OSError, ValueError) as e:
        raise UserError(f"--base-model {path}: cannot load it ({e})") from e


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
    """Lotus's switch: a projection class embedding of the 4-vector [sin, cos] of a one-hot (task, rgb).
    Its last layer starts at zero, so the pretrained UNet's behaviour is unchanged at step 0."""
    from diffusers.models.embeddings import TimestepEmbedding

    time_dim = unet.time_embedding.linear_2.out_features
    unet.class_embedding = TimestepEmbedding(4, time_dim)
    with torch.no_grad():
        unet.class_embedding.linear_2.weight.zero_()
        unet.class_embedding.linear_2.bias.zero_()
    unet.register_to_config(class_embed_type="projection", projection_class_embeddings_input_dim=4)


def build_model(cfg: TrainConfig) -> Parts:
    """The parts for ``cfg.base_model`` (preset or folder), adapted to ``cfg.mode``. A folder exported by an
    earlier rgbify run (8 input channels already) is used as it is, so a trained run can be fine-tuned further."""
    parts = _build_preset(cfg.base_model, cfg.resolution) if cfg.base_model in PRESETS else (
        _load_pretrained(cfg.base_model)
    )
    unet = parts.unet
    if unet.config.in_channels == 4:
        _expand_conv_in(unet, cfg.mode)
    elif unet.config.in_channels != 8:
        raise UserError(
            f"--base-model {cfg.base_model}: UNet has {unet.config.in_channels} input channels; need 4 (SD) or 8"
        )
    if cfg.mode == "lotus" and unet.config.class_embed_type is None:
        _add_task_switch(unet)
    if cfg.mode != "lotus":
        parts.noise_scheduler.register_to_config(prediction_type=cfg.prediction_type)
    parts.vae.requires_grad_(False)
    parts.text_encoder.requires_grad_(False)
    return parts


# --------------------------------------------------------------------------------------------------------------
# build_data
# --------------------------------------------------------------------------------------------------------------


class StepSampler(torch.utils.data.Sampler):
    """Endless (epoch, item) pairs: epoch e visits the items in a permutation drawn from (seed, e). Starting at
    ``start`` (items already consumed) resumes the stream exactly where a checkpoint left it."""

    def __init__(self, n: int, seed: int, start: int = 0):
        self.n, self.seed, self.start = n, seed, start

    def __iter__(self):
        i = self.start
        while True:
            epoch, pos = divmod(i, self.n)
            if pos == 0 or i == self.start:
                perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            yield epoch, int(perm[pos])
            i += 1


_EPOCH_LOCK = threading.Lock()


class EpochItems(torch.utils.data.Dataset):
    """Indexes ``dataset`` by (epoch, item): sets the dataset's epoch (TaskDataset.set_epoch: per-item draws of
    crop, codec, colours and prompt depend on it) before reading, in whichever worker process reads it."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, item = key
        if hasattr(self.dataset, "get"):  # TaskDataset: thread-safe
            return self.dataset.get(item, epoch)
        if not hasattr(self.dataset, "set_epoch"):
            return self.dataset[item]
        with _EPOCH_LOCK:  # loader threads share the dataset: its epoch and the read go together
            self.dataset.set_epoch(epoch)
            return self.dataset[item]


def build_data(cfg: TrainConfig, split: str = "train", generation_ratio: float | None = None, **kw):
    """The rgbify.datasets.TaskDataset of ``cfg.data`` for ``split`` at ``cfg.resolution`` (crop/flip augmentation
    on for the train split only, unless ``augment=`` is given in ``kw``)."""
    from rgbify.datasets import TaskDataset

    if generation_ratio is None:
        generation_ratio = cfg.generation_ratio if (cfg.mode == "instruct" and split == "train") else 0.0
    return TaskDataset(
        cfg.data,
        tasks=tuple(cfg.tasks),
        weights=list(cfg.task_weights) or None,
        split=split,
        resolution=cfg.resolution,
        generation_ratio=generation_ratio,
        seed=cfg.seed,
        **kw,
    )


def make_loader(dataset, cfg: TrainConfig, start_item: int, shard: tuple[int, int] = (0, 1)):
    """The endless batch stream from item ``start_item`` on, this rank's batches of ``shard`` (every world-th, as
    accelerate shards a DataLoader): a ThreadLoader (``cfg.loader == "threads"``, or no workers) or a ProcessLoader
    with ``cfg.num_workers`` worker processes."""
    from rgbify.datasets import ProcessLoader, ThreadLoader

    keys = StepSampler(len(dataset), cfg.seed, start_item)
    if cfg.loader == "threads" or cfg.num_workers == 0:
        return ThreadLoader(EpochItems(dataset), cfg.batch_size, keys=keys, threads=cfg.num_workers, collate=collate,
                            drop_last=True, shard=shard)
    return ProcessLoader(EpochItems(dataset), cfg.batch_size, keys=keys, workers=cfg.num_workers, collate=collate,
                         drop_last=True, shard=shard)


# --------------------------------------------------------------------------------------------------------------
# train_step
# --------------------------------------------------------------------------------------------------------------


class PromptEncoder:
    """Prompt -> CLIP hidden states, cached (the text encoder is frozen). A prompt longer than the tokenizer's
    window is cut into windows of ``model_max_length - 2`` tokens, each wrapped in start/end and encoded
    separately, and the hidden states are concatenated (cross-attention takes any length). A batch is padded
    to its longest prompt with zeros that the attention mask hides, so a prompt's conditioning does not depend
    on the other prompts in its batch."""

    def __init__(self, tokenizer, text_encoder, max_cache: int = 8192):
        self.tok, self.enc, self.cache, self.max_cache = tokenizer, text_encoder, {}, max_cache

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


@torch.no_grad()
def vae_encode(vae, x: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) uint8, or float in [-1,1] -> scaled latent mean (B,4,H/8,W/8) (the mean, not a sample:
    deterministic). uint8 batches (TaskDataset's) are scaled on the VAE's device."""
    from rgbify.datasets import to_unit

    x = to_unit(x.to(device=vae.device)).to(dtype=vae.dtype)
    return vae.encode(x).latent_dist.mode() * vae.config.scaling_factor


@torch.no_grad()
def vae_decode(vae, z: torch.Tensor) -> torch.Tensor:
    """Scaled latent -> (B,3,H,W) float in [-1,1]."""
    return vae.decode(z.to(vae.dtype) / vae.config.scaling_factor).sample.clamp(-1, 1)


def step_generator(seed: int, step: int, device, salt: int = 0) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, step, salt]).generate_state(1, np.uint64)[0]) & (2**63 - 1))
    return g


def lotus_switch(n: int, rgb: bool, device) -> torch.Tensor:
    """Lotus's class label for n items: [sin, cos] of one-hot (task = [1,0], reconstruct rgb = [0,1])."""
    onehot = torch.tensor([0.0, 1.0] if rgb else [1.0, 0.0], device=device)
    return torch.cat([torch.sin(onehot), torch.cos(onehot)]).expand(n, 4)


def train_step(parts: Parts, prompts: PromptEncoder, cfg: TrainConfig, batch: dict, gen: torch.Generator):
    """The loss of one micro-batch and its per-item losses (for per-task logging). Uses only ``gen`` for noise."""
    unet, sched = parts.unet, parts.noise_scheduler
    device = parts.vae.device
    target, image = vae_encode(parts.vae, torch.cat([batch["target"], batch["image"]])).float().chunk(2)
    is_gen = torch.tensor([t == "generate" for t in batch["task"]], device=device)
    image = torch.where(is_gen[:, None, None, None], torch.zeros_like(image), image)
    text, mask = prompts(batch["prompt"])
    b = target.shape[0]
    noise = torch.randn(target.shape, generator=gen, device=device)
    if cfg.mode == "lotus":
        t = torch.full((b,), sched.config.num_train_timesteps - 1, device=device, dtype=torch.long)
        start = torch.zeros_like(noise) if cfg.lotus_deterministic else sched.add_noise(target, noise, t)
        inp = torch.cat([start, image], dim=1)
        label, goal = lotus_switch(b, False, device), target
        if cfg.detail_preserver:
            noise2 = torch.randn(target.shape, generator=gen, device=device)
            start2 = torch.zeros_like(noise2) if cfg.lotus_deterministic else sched.add_noise(image, noise2, t)
            inp = torch.cat([inp, torch.cat([start2, image], dim=1)])
            label = torch.cat([label, lotus_switch(b, True, device)])
            goal = torch.cat([goal, image])
            t, text, mask = torch.cat([t, t]), torch.cat([text, text]), torch.cat([mask, mask])
        pred = unet(inp, t, encoder_hidden_states=text, encoder_attention_mask=mask, class_labels=label).sample
    else:
        t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=gen, device=device)
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
        pred = unet(torch.cat([noisy, image], dim=1), t, encoder_hidden_states=text, encoder_attention_mask=mask).sample
    per_item = F.mse_loss(pred.float(), goal.float(), reduction="none").mean(dim=(1, 2, 3))
    return per_item.mean(), per_item[:b].detach()


# --------------------------------------------------------------------------------------------------------------
# sample (inference) and evaluate
# --------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def sample(
    parts: Parts,
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
    """Predict target RGBs. image: (B,3,H,W) uint8 or float in [-1,1]; returns uint8 (B,H,W,3).

    lotus: one x0 step at t = T-1. marigold/instruct: DDIM, trailing spacing, ``steps`` steps from noise; in
    instruct mode guidance scales other than 1 run InstructPix2Pix's three-way classifier-free guidance."""
    from diffusers import DDIMScheduler

    unet = parts.unet
    device = parts.vae.device
    prompts = prompts or PromptEncoder(parts.tokenizer, parts.text_encoder)
    img = vae_encode(parts.vae, image).float()  # latents and the DDIM state stay float32 under bf16/fp16 parts
    gen = step_generator(seed, 0, device, salt=1)
    text, mask = prompts(prompt_list)
    text = text.to(unet.dtype)
    x = torch.randn(img.shape, generator=gen, device=device)
    T = parts.noise_scheduler.config.num_train_timesteps
    if cfg.mode == "lotus":
        t = torch.full((img.shape[0],), T - 1, device=device, dtype=torch.long)
        if cfg.lotus_deterministic:
            x = torch.zeros_like(x)
        z = unet(torch.cat([x, img], 1).to(unet.dtype), t, encoder_hidden_states=text, encoder_attention_mask=mask,
                 class_labels=lotus_switch(img.shape[0], False, device).to(unet.dtype)).sample
    else:
        ddim = DDIMScheduler.from_config(parts.noise_scheduler.config, timestep_spacing="trailing")
        ddim.set_timesteps(steps or cfg.inference_steps, device=device)
        cfg_guided = cfg.mode == "instruct" and (text_guidance != 1.0 or image_guidance != 1.0)
        if cfg_guided:
            empty, empty_mask = prompts([""] * img.shape[0], text.shape[1])
        for t in ddim.timesteps:
            if cfg_guided:
                xs = torch.cat([x, x, x])
                imgs = torch.cat([img, img, torch.zeros_like(img)])
                texts = torch.cat([text, empty.to(text.dtype), empty.to(text.dtype)])
                masks = torch.cat([mask, empty_mask, empty_mask])
                e_full, e_img, e_none = unet(torch.cat([xs, imgs], 1).to(unet.dtype), t, encoder_hidden_states=texts,
                                             encoder_attention_mask=masks).sample.chunk(3)
                out = e_none + image_guidance * (e_img - e_none) + text_guidance * (e_full - e_img)
            else:
                out = unet(torch.cat([x, img], 1).to(unet.dtype), t, encoder_hidden_states=text,
                           encoder_attention_mask=mask).sample
            x = ddim.step(out.float(), t, x).prev_sample
        z = x
    rgb = vae_decode(parts.vae, z).float()
    return ((rgb.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


class MetricAccumulator:
    """Collects decoded predictions against ground truth per task and reduces them to one dict of metrics."""

    def __init__(self):
        self.depth: list[dict] = []
        self.normal_err: list[np.ndarray] = []
        self.cm = np.zeros((2, 2), np.int64)
        self.pq = {"iou_sum": 0.0, "tp": 0, "fp": 0, "fn": 0}
        self.images = {"semantic": 0, "instance": 0}

    def add(self, task: str, pred, item_gt: dict, reference=None) -> None:
        """pred: the decoded prediction; item_gt: gt_depth/gt_normals/valid; reference: the decoded clean target
        (semantic/instance: what the prompt asked for, with the codec's own labels)."""
        from rgbify.train import metrics as M

        valid = np.asarray(item_gt["valid"], bool)
        if task == "depth":
            self.depth.append(M.depth_metrics(pred, item_gt["gt_depth"], valid))
        elif task == "normals":
            gt = np.asarray(item_gt["gt_normals"])
            mask = valid & (np.linalg.norm(gt, axis=-1) > 0)
            self.normal_err.append(M.angular_error_deg(np.asarray(pred)[mask], gt[mask]).astype(np.float32))
        elif task == "semantic":
            self.images["semantic"] += 1
            k = int(max(np.max(pred), np.max(reference))) + 2
            if k > self.cm.shape[0]:
                self.cm = np.pad(self.cm, ((0, k - self.cm.shape[0]), (0, k - self.cm.shape[0])))
            g = np.where(valid, np.asarray(reference) + 1, 0)  # shift: 0 = invalid pixel, 1 = nothing asked for
            self.cm += M.confusion_matrix(np.asarray(pred) + 1, g, self.cm.shape[0], ignore_index=0)
        elif task == "instance":
            self.images["instance"] += 1
            q = M.panoptic_quality(np.where(valid, pred, 0), np.where(valid, reference, 0))
            self.pq["iou_sum"] += q["sq"] * q["tp"]
            for k in ("tp", "fp", "fn"):
                self.pq[k] += q[k]

    def result(self) -> dict[str, dict[str, float]]:
        from rgbify.train import metrics as M

        out: dict[str, dict[str, float]] = {}
        if self.depth:
            out["depth"] = {**M.mean_depth(self.depth), "images": len(self.depth)}
        if self.normal_err:
            err = np.concatenate(self.normal_err).astype(np.float64)
            out["normals"] = {**M.normal_stats(err), "images": len(self.normal_err)} if err.size else {}
        if self.cm.sum():
            _, iou = M.miou_from_confusion(self.cm, ignore_index=0)
            named = iou[2:]  # index 1 is "not asked for" (black)
            out["semantic"] = {"miou": float(np.nanmean(named)) if np.isfinite(named).any() else float("nan"),
                               "pixel_acc": float(np.trace(self.cm[1:, 1:]) / self.cm[1:, 1:].sum()),
                               "images": self.images["semantic"]}
        if self.pq["tp"] + self.pq["fp"] + self.pq["fn"]:
            tp, fp, fn = self.pq["tp"], self.pq["fp"], self.pq["fn"]
            out["instance"] = {"pq": self.pq["iou_sum"] / (tp + fp / 2 + fn / 2),
                               "sq": self.pq["iou_sum"] / tp if tp else 0.0,
                               "rq": tp / (tp + fp / 2 + fn / 2), "tp": tp, "fp": fp, "fn": fn,
                               "images": self.images["instance"]}
        return out


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3,H,W) uint8, or float in [-1,1] -> uint8 (H,W,3)."""
    if x.dtype == torch.uint8:
        return x.permute(1, 2, 0).cpu().numpy()
    return ((x.float().permute(1, 2, 0).cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


@torch.no_grad()
def evaluate(parts: Parts, cfg: TrainConfig, dataset, max_items: int | None = None, batch_size: int = 4,
             grid: list | None = None, prompts: PromptEncoder | None = None, **sample_kw) -> dict:
    """Predict, decode (rgbify.encode.decode_target with the item's decode params) and score items 0..max_items-1
    of ``dataset`` (generation items are skipped). If ``grid`` is a list, (task, image, target, prediction)
    uint8 triples of the first items are appended to it."""
    from rgbify.encode import decode_target

    parts.unet.eval()
    acc = MetricAccumulator()
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        items = [it for it in items if it["task"] != "generate"]
        if not items:
            continue
        batch = collate(items)
        pred = sample(parts, cfg, batch["image"], batch["prompt"], prompts=prompts, **sample_kw).numpy()
        for it, rgb in zip(items, pred, strict=True):
            params = json.loads(it["decode"])
            target = to_uint8(it["target"])
            gt = {k: np.asarray(it[k]) for k in ("gt_depth", "gt_normals", "valid") if k in it}
            ref = decode_target(target, params) if it["task"] in ("semantic", "instance") else None
            acc.add(it["task"], decode_target(rgb, params), gt, ref)
            if grid is not None and len(grid) < 8:
                grid.append((it["task"], to_uint8(it["image"]), target, rgb))
    parts.unet.train()
    return acc.result()


# --------------------------------------------------------------------------------------------------------------
# save / resume / export
# --------------------------------------------------------------------------------------------------------------


def checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints"


def latest_checkpoint(out: Path) -> Path | None:
    link = checkpoint_dir(out) / "latest"
    return link.resolve() if link.exists() else None


def save_checkpoint(accelerator, out: Path, step: int, keep: int) -> Path:
    """accelerate state (UNet, optimizer, LR scheduler, EMA, RNG) under checkpoints/step-NNNNNNN, published by
    rename, then ``latest`` is pointed at it (symlink replaced atomically); older ones beyond ``keep`` go."""
    ckdir = checkpoint_dir(out)
    final = ckdir / f"step-{step:07d}"
    if accelerator.is_main_process:
        ckdir.mkdir(parents=True, exist_ok=True)
    tmp = ckdir / f".tmp-step-{step:07d}"
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every rank's random_states_R.pkl is in tmp before it is renamed
    if accelerator.is_main_process:
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        link_tmp = ckdir / ".latest-tmp"
        if link_tmp.is_symlink():
            link_tmp.unlink()
        os.symlink(final.name, link_tmp)
        os.replace(link_tmp, ckdir / "latest")
        steps = sorted(p for p in ckdir.glob("step-*") if p.is_dir())
        for old in steps[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def export_model(parts: Parts, unet, out: Path, cfg: TrainConfig, step: int) -> Path:
    """A diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) at OUT/model plus run.json, written
    to a temporary folder and renamed; loadable as ``--base-model OUT/model`` and by ``rgbify predict``."""
    tmp = out / ".model-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    unet.save_pretrained(tmp / "unet")
    parts.vae.save_pretrained(tmp / "vae")
    parts.text_encoder.save_pretrained(tmp / "text_encoder")
    parts.tokenizer.save_pretrained(tmp / "tokenizer")
    parts.noise_scheduler.save_pretrained(tmp / "scheduler")
    (tmp / "run.json").write_text(json.dumps({"step": step, "config": cfg.to_dict()}, indent=1))
    final = out / "model"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


# --------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------


def _log_row(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _trim_log(path: Path, step: int) -> None:
    """Drop log rows after ``step`` (written after the checkpoint a run resumes from)."""
    if path.exists():
        rows = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


def _image_grid(grid: list) -> np.ndarray:
    """Rows of [image | target | prediction], uint8 (H*rows, W*3, 3)."""
    return np.concatenate([np.concatenate(row[1:], axis=1) for row in grid], axis=0)


def _open_data(cfg: TrainConfig, train_data, val_data):
    if train_data is None:
        train_data = build_data(cfg, "train", return_gt=False)  # training reads image, target, prompt, task
    if val_data is None and cfg.data:
        try:
            val_data = build_data(cfg, "val")
        except (ValueError, UserError):
            val_data = None
        val_data = val_data if val_data is not None and len(val_data) else None
    if len(train_data) < cfg.batch_size:
        raise UserError(f"--batch-size {cfg.batch_size} exceeds the {len(train_data)} training items; lower it")
    return train_data, val_data


def _resume(accelerator, cfg: TrainConfig, out: Path) -> int:
    """Load OUT/checkpoints/latest if there is one (and --resume); returns the step to continue from."""
    log_path = out / "log.jsonl"
    ck = latest_checkpoint(out) if cfg.resume else None
    step = 0
    if ck is not None:
        accelerator.load_state(str(ck))
        step = json.loads((ck / "trainer_state.json").read_text())["step"]
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        _trim_log(log_path, step)
        (out / "config.toml").write_text(config_toml(cfg))
    return step


def _log_step(writer, out: Path, cfg: TrainConfig, step: int, row: dict) -> None:
    _log_row(out / "log.jsonl", row)
    if step % cfg.log_every == 0 or step == 1:
        writer.add_scalar("loss/total", row["loss"], step)
        for k, v in row["loss_per_task"].items():
            writer.add_scalar(f"loss/{k}", v, step)
        writer.add_scalar("lr", row["lr"], step)
        writer.add_scalar("samples_per_s", row["samples_per_s"], step)


def _place_frozen(parts: Parts, device, mixed_precision: str) -> None:
    """The frozen VAE and text encoder go to the device, in bf16/fp16 under mixed precision."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
    for frozen in (parts.vae, parts.text_encoder):
        frozen.to(device)
        if dtype is not None:
            frozen.to(dtype=dtype)


def _make_ema(accelerator, unet, cfg: TrainConfig):
    if cfg.ema_decay <= 0:
        return None
    from diffusers.training_utils import EMAModel

    base = accelerator.unwrap_model(unet)
    ema = EMAModel(base.parameters(), decay=cfg.ema_decay, model_cls=type(base), model_config=base.config)
    ema.to(accelerator.device)
    accelerator.register_for_checkpointing(ema)
    return ema


@contextlib.contextmanager
def _ema_weights(ema, module):
    """Swap the EMA weights into ``module`` for the duration (no-op without EMA)."""
    if ema is None:
        yield
        return
    ema.store(module.parameters())
    ema.copy_to(module.parameters())
    try:
        yield
    finally:
        ema.restore(module.parameters())


def train(cfg: TrainConfig, train_data=None, val_data=None) -> dict:
    """Train (or resume) the run ``cfg.out``. ``train_data``/``val_data`` default to ``build_data(cfg, ...)``;
    tests pass their own datasets with the same item format. Returns {"step", "stopped_early", "metrics"}."""
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler

    if not cfg.out:
        raise UserError("--out is required: the run folder to write")
    out = Path(cfg.out)
    started = time.monotonic()
    from rgbify.train.launch import use_cpu_if_no_gpu

    use_cpu_if_no_gpu()  # DDP over gloo when torchrun/accelerate launch started us on a machine without CUDA
    if not torch.distributed.is_initialized():  # a fresh accelerate state per run (tests train several in a process)
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum)
    train_data, val_data = _open_data(cfg, train_data, val_data)

    # model, optimizer, schedule, EMA
    torch.manual_seed(cfg.seed)  # initial weights of the random presets
    parts = build_model(cfg)
    _place_frozen(parts, accelerator.device, cfg.mixed_precision)
    unet = parts.unet
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = "constant_with_warmup" if cfg.lr_schedule == "constant" and cfg.warmup_steps else cfg.lr_schedule
    lr_scheduler = get_scheduler(
        schedule, optimizer, num_warmup_steps=cfg.warmup_steps * accelerator.num_processes,
        num_training_steps=cfg.steps * accelerator.num_processes,
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    parts.unet = unet
    ema = _make_ema(accelerator, unet, cfg)

    # resume, data stream, logs
    step = _resume(accelerator, cfg, out)
    per_step = cfg.batch_size * cfg.grad_accum * accelerator.num_processes
    loader = make_loader(train_data, cfg, step * per_step,  # per_step: all ranks
                         shard=(accelerator.process_index, accelerator.num_processes))
    batches = iter(loader)
    prompts = PromptEncoder(parts.tokenizer, parts.text_encoder)
    writer = None
    if accelerator.is_main_process:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "logs"))

    # the loop: one optimizer step per iteration, grad_accum micro-batches each
    metrics: dict = {}
    stopped_early = False
    while step < cfg.steps:
        t0 = time.perf_counter()
        losses, item_losses, tasks = [], [], []
        for micro in range(cfg.grad_accum):
            batch = next(batches)
            # noise keyed by the global micro-batch index: N processes x accumulation A = one process x A*N
            gen = step_generator(cfg.seed, (step * cfg.grad_accum + micro) * accelerator.num_processes
                                 + accelerator.process_index, accelerator.device)
            with accelerator.accumulate(unet):
                loss, per_item = train_step(parts, prompts, cfg, batch, gen)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(unet.parameters(), cfg.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach().float())  # kept on the device: one host sync per step, below
            item_losses.append(per_item.detach().float())
            tasks += batch["task"]
        loss_t = torch.stack(losses)
        losses = (accelerator.reduce(loss_t, reduction="mean") if accelerator.num_processes > 1 else loss_t).tolist()
        per_task: dict[str, list[float]] = {}
        for task, v in zip(tasks, torch.cat(item_losses).cpu().tolist(), strict=True):
            per_task.setdefault(task, []).append(v)
        if ema is not None:
            ema.step(accelerator.unwrap_model(unet).parameters())
        step += 1
        if accelerator.is_main_process:
            row = {"step": step, "loss": float(np.mean(losses)), "lr": lr_scheduler.get_last_lr()[0],
                   "samples_per_s": per_step / (time.perf_counter() - t0),
                   "loss_per_task": {k: float(np.mean(v)) for k, v in sorted(per_task.items())}}
            _log_step(writer, out, cfg, step, row)
        time_up = cfg.exit_after > 0 and (time.monotonic() - started) / 60 >= cfg.exit_after
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or time_up:
            save_checkpoint(accelerator, out, step, cfg.keep_checkpoints)
        if val_data is not None and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps):
            metrics = _validate(parts, cfg, val_data, ema, accelerator, writer, step, prompts)
        if time_up and step < cfg.steps:
            stopped_early = True
            break

    if accelerator.is_main_process:  # export the (EMA) weights as a diffusers folder
        base = accelerator.unwrap_model(unet)
        with _ema_weights(ema, base):
            export_model(parts, base, out, cfg, step)
        writer.close()
    accelerator.wait_for_everyone()
    return {"step": step, "stopped_early": stopped_early, "metrics": metrics}


def _validate(parts, cfg, val_data, ema, accelerator, writer, step, prompts) -> dict:
    if not accelerator.is_main_process:
        return {}
    base = accelerator.unwrap_model(parts.unet)
    grid: list = []
    wrapped, parts.unet = parts.unet, base  # sample with the plain module (no DDP collectives on one rank)
    try:
        with _ema_weights(ema, base):
            metrics = evaluate(parts, cfg, val_data, max_items=cfg.eval_samples, grid=grid, prompts=prompts)
    finally:
        parts.unet = wrapped
    for task, vals in metrics.items():
        for k, v in vals.items():
            if isinstance(v, float) and math.isfinite(v):
                writer.add_scalar(f"val/{task}/{k}", v, step)
    if grid:
        writer.add_image("val/image_target_prediction", _image_grid(grid), step, dataformats="HWC")
    _log_row(Path(cfg.out) / "val.jsonl", {"step": step, "metrics": metrics})
    return metrics
