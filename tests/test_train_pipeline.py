"""Sampling pinned to its reference: the DDIM / three-way guidance / one-step loop as it was written in trainer.py
before the trainer was split (kept here, self-contained, as the oracle), changed where run format 2 adopted the
stock pipelines' conventions (instruct: unscaled image latent, the stock guidance sum; marigold: image latent
first, the bare empty prompt; both: DDIM with the run's prediction type, noise from manual_seed(seed)). For the
same weights, images, prompts and seed, ``sample`` must give the same bytes in every mode. The stock pipelines
themselves are the oracle of tests/test_train_stock.py."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from test_train import RES, MemoryTaskDataset  # noqa: E402

from rgbify.train.config import make_config  # noqa: E402
from rgbify.train.model import PromptEncoder, build_model  # noqa: E402
from rgbify.train.pipeline import sample  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@torch.no_grad()
def oracle_sample(components, cfg, image, prompt_list, *, prompts, steps=None, seed=0, text_guidance=1.0,
                  image_guidance=1.0):
    """The sampling loop as of commit 01885fe (rgbify.train.trainer.sample), with its helpers inlined and run format
    2's conventions."""
    from diffusers import DDIMScheduler

    unet, vae = components.unet, components.vae
    device = vae.device
    x_in = image.to(device=device)
    x_in = x_in.float() / 127.5 - 1.0 if x_in.dtype == torch.uint8 else x_in
    img = vae.encode(x_in.to(dtype=vae.dtype)).latent_dist.mode()
    img = (img if cfg.mode == "instruct" else img * vae.config.scaling_factor).float()
    gen = torch.Generator(device=device).manual_seed(seed)
    if cfg.mode == "marigold":
        bare = components.tokenizer("", padding="do_not_pad", max_length=77, truncation=True).input_ids
        text, mask = components.text_encoder(torch.tensor([bare]))[0].repeat(img.shape[0], 1, 1), None
    else:
        text, mask = prompts(prompt_list)
    text = text.to(unet.dtype)
    order = (lambda a, b: torch.cat([b, a], 1)) if cfg.mode == "marigold" else (lambda a, b: torch.cat([a, b], 1))
    x = torch.randn(img.shape, generator=gen, device=device)
    T = components.noise_scheduler.config.num_train_timesteps
    if cfg.mode == "lotus":
        t = torch.full((img.shape[0],), T - 1, device=device, dtype=torch.long)
        if cfg.lotus_deterministic:
            x = torch.zeros_like(x)
        onehot = torch.tensor([1.0, 0.0], device=device)
        label = torch.cat([torch.sin(onehot), torch.cos(onehot)]).expand(img.shape[0], 4)
        z = unet(torch.cat([x, img], 1).to(unet.dtype), t, encoder_hidden_states=text, encoder_attention_mask=mask,
                 class_labels=label.to(unet.dtype)).sample
    else:
        ddim = DDIMScheduler.from_config(components.noise_scheduler.config, timestep_spacing="trailing",
                                         prediction_type=cfg.prediction_type)
        ddim.set_timesteps(steps or cfg.inference_steps, device=device)
        guided = cfg.mode == "instruct" and (text_guidance != 1.0 or image_guidance != 1.0)
        if guided:
            empty, empty_mask = prompts([""] * img.shape[0], text.shape[1])
        for t in ddim.timesteps:
            if guided:
                xs = torch.cat([x, x, x])
                imgs = torch.cat([img, img, torch.zeros_like(img)])
                texts = torch.cat([text, empty.to(text.dtype), empty.to(text.dtype)])
                masks = torch.cat([mask, empty_mask, empty_mask])
                e_full, e_img, e_none = unet(torch.cat([xs, imgs], 1).to(unet.dtype), t, encoder_hidden_states=texts,
                                             encoder_attention_mask=masks).sample.chunk(3)
                out = e_none + text_guidance * (e_full - e_img) + image_guidance * (e_img - e_none)
            else:
                out = unet(order(x, img).to(unet.dtype), t, encoder_hidden_states=text,
                           encoder_attention_mask=mask).sample
            x = ddim.step(out.float(), t, x).prev_sample
        z = x
    rgb = vae.decode(z.to(vae.dtype) / vae.config.scaling_factor).sample.clamp(-1, 1).float()
    return ((rgb.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def perturbed_model(cfg):
    """The tiny model with every weight moved by seeded noise, so that the image channels of conv_in and Lotus's
    task switch (zero at initialisation) take part."""
    torch.manual_seed(0)
    components = build_model(cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in components.unet.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return components


CASES = [
    ("marigold", {}, {}),
    ("marigold", {"prediction_type": "epsilon", "tasks": ("normals",)}, {"steps": 3}),
    ("lotus", {}, {}),
    ("lotus", {"lotus_deterministic": True}, {}),
    ("instruct", {}, {}),
    ("instruct", {}, {"text_guidance": 2.0, "image_guidance": 1.5, "steps": 4}),
]


@pytest.mark.parametrize(("mode", "options", "sample_kw"), CASES)
def test_sample_matches_the_reference_loop(mode, options, sample_kw):
    tasks = ("depth",) if mode == "marigold" else ("depth", "normals")
    cfg = make_config({"mode": mode, "resolution": RES, "inference_steps": 2, "tasks": tasks, **options})
    components = perturbed_model(cfg)
    data = MemoryTaskDataset()
    images = torch.stack([data[i]["image"] for i in range(2)])
    texts = ["depth as colours", "table = red (255,0,0); " * 8]  # the second prompt spans two windows
    prompts = PromptEncoder(components.tokenizer, components.text_encoder)
    for seed in (0, 5):
        want = oracle_sample(components, cfg, images, texts, prompts=prompts, seed=seed, **sample_kw)
        got = sample(components, cfg, images, texts, prompts=prompts, seed=seed, **sample_kw)
        assert got.dtype == torch.uint8 and got.shape == (2, RES, RES, 3)
        assert torch.equal(got, want), f"{mode} {options} {sample_kw} seed {seed}"
    uint8 = ((images + 1) * 127.5).round().to(torch.uint8)  # the loader's batches are uint8
    assert torch.equal(sample(components, cfg, uint8, texts, prompts=prompts),
                       oracle_sample(components, cfg, uint8, texts, prompts=prompts))
