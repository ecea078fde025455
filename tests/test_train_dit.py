"""The transformer family (rgbify.train.dit) on the tiny-dit preset at 64 px, CPU: the model in each mode, runs that
load in stock diffusers (StableDiffusion3Pipeline for text-to-image, SD3Transformer2DModel for the conditioned
transformer), `rgbify predict` / `rgbify eval`, gradient checkpointing, and an overfit test (loss ratio)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from test_train import RES, MemoryTaskDataset, cfg_for, log_rows  # noqa: E402
from test_train_predict import _write_images, fake_codec  # noqa: E402, F401 (a fixture)

from rgbify.cli import main as rgbify_main  # noqa: E402
from rgbify.errors import UserError  # noqa: E402
from rgbify.train import dit  # noqa: E402
from rgbify.train.model import build_model  # noqa: E402
from rgbify.train.predict import load_image, load_run, predict_files, run_prompt  # noqa: E402
from rgbify.train.trainer import train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEPS, SEED = 3, 7
PROMPT = "Draw the metric depth."


def dit_cfg(tmp_path, mode, **kw):
    return cfg_for(tmp_path, mode, **{"base_model": "tiny-dit", "inference_steps": STEPS, **kw})


def test_tiny_dit_is_small_and_adapted_per_mode():
    """SD3Transformer2DModel with 2C = 8 input channels: instruct's image half zero, marigold's the halved kernel
    twice; lotus has the 4 switch inputs of the pooled projection, zero-initialised."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel

    for mode in ("instruct", "marigold", "lotus"):
        torch.manual_seed(0)
        c = build_model(dit_cfg(__import__("pathlib").Path("/nonexistent"), mode))
        assert isinstance(c.unet, SD3Transformer2DModel) and c.family == "sd3"
        assert isinstance(c.noise_scheduler, FlowMatchEulerDiscreteScheduler) and c.noise_scheduler.config.shift == 3
        n = sum(p.numel() for m in (c.unet, *c.frozen()) for p in m.parameters())
        assert n < 3e6
        w = c.unet.pos_embed.proj.weight
        assert c.unet.config.in_channels == w.shape[1] == 8
        if mode == "instruct":
            assert torch.count_nonzero(w[:, 4:]) == 0 and torch.count_nonzero(w[:, :4]) > 0
        if mode == "marigold":
            assert torch.equal(w[:, :4], w[:, 4:])
        lin = c.unet.time_text_embed.text_embedder.linear_1
        assert lin.in_features == (68 if mode == "lotus" else 64) == c.unet.config.pooled_projection_dim
        if mode == "lotus":
            assert torch.count_nonzero(lin.weight[:, 64:]) == 0


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_instruct_run_generates_in_stock_sd3_pipeline(tmp_path):
    """A trained instruct run: StableDiffusion3Pipeline.from_pretrained(RUN/model) (T5 dropped as diffusers drops
    it: text_encoder_3=None, tokenizer_3=None) draws, for a prompt and seed, the
    image rgbify draws for a generation item (image latent zero) with the trained conditioned transformer: the
    text-to-image transformer is the trained one without its image channels (generation retention)."""
    from diffusers import StableDiffusion3Pipeline

    cfg = dit_cfg(tmp_path, "instruct", steps=2, lr=1e-2, ema_decay=0.5)
    assert train(cfg, MemoryTaskDataset(generation_ratio=0.5))["step"] == 2
    model = tmp_path / "run-instruct" / "model"
    assert json.loads((model / "model_index.json").read_text())["_class_name"] == "StableDiffusion3Pipeline"
    pipe = _quiet(StableDiffusion3Pipeline.from_pretrained(model, text_encoder_3=None, tokenizer_3=None))
    assert pipe.text_encoder_3 is None and pipe.transformer.config.in_channels == 4
    stock = pipe(
        PROMPT,
        height=RES,
        width=RES,
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(SEED),
        output_type="np",
    ).images[0]

    run = load_run(cfg.out, "cpu")
    assert run.components.unet.pos_embed.proj.weight[:, 4:].abs().max() > 0  # the image channels were trained
    states, pooled = run.prompts([PROMPT])
    zero = torch.zeros(1, 4, RES // 4, RES // 4)
    z = dit.sample_latent(run.components, run.cfg, zero, states, pooled, torch.Generator().manual_seed(SEED), STEPS)
    ours = ((dit.decode(run.components.vae, z)[0].permute(1, 2, 0) + 1) / 2).numpy()
    assert np.abs(ours - stock).max() < 1e-4, np.abs(ours - stock).max()
    assert np.std(stock) > 0.01


@pytest.mark.usefixtures("fake_codec")
@pytest.mark.parametrize("mode", ["marigold", "lotus"])
def test_conditioned_transformer_loads_stock_and_draws_predicts_answer(tmp_path, mode):
    """SD3Transformer2DModel.from_pretrained(RUN/model, subfolder="conditioned") with the stock pipeline's VAE,
    text encoders and FlowMatchEulerDiscreteScheduler, in the loop docs/training.md gives (Euler over
    [image, x_t] on the empty prompt; lotus: one x0 call at t = T with the switch), draws `rgbify predict`'s
    bytes."""
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    cfg = dit_cfg(tmp_path, mode, steps=2, lr=1e-2, tasks=("depth",))
    train(cfg, MemoryTaskDataset(tasks=("depth",)))
    model = tmp_path / f"run-{mode}" / "model"
    pipe = _quiet(StableDiffusion3Pipeline.from_pretrained(model, text_encoder_3=None, tokenizer_3=None))
    transformer = SD3Transformer2DModel.from_pretrained(model, subfolder="conditioned")
    path = _write_images(tmp_path / "in", n=1, size=(RES, RES))[0]
    run = load_run(cfg.out, "cpu")
    prompt, decode = run_prompt(run, "depth")
    predict_files(run, "depth", [path], tmp_path / "pred", seed=SEED, decode=decode, prompt=prompt)
    ours = np.asarray(Image.open(tmp_path / "pred" / "img0.depth.rgb.png"))

    with torch.no_grad():
        image = load_image(path, RES)[0][None]  # in [-1, 1]
        vae = pipe.vae
        img = (vae.encode(image).latent_dist.mode() - vae.config.shift_factor) * vae.config.scaling_factor
        text = "" if mode == "marigold" else prompt
        states, _, pooled, _ = pipe.encode_prompt(text, None, None, do_classifier_free_guidance=False)
        x = torch.randn(img.shape, generator=torch.Generator().manual_seed(SEED))
        if mode == "lotus":  # the switch: [sin, cos] of the one-hot "task" = (1, 0)
            pooled = torch.cat(
                [pooled, torch.sin(torch.tensor([[1.0, 0.0]])), torch.cos(torch.tensor([[1.0, 0.0]]))], 1
            )
            x = transformer(torch.cat([x, img], 1), states, pooled, torch.tensor([1000.0]), return_dict=False)[0]
        else:
            pipe.scheduler.set_timesteps(STEPS)
            for t in pipe.scheduler.timesteps:
                v = transformer(torch.cat([img, x], 1), states, pooled, t.expand(1), return_dict=False)[0]
                x = pipe.scheduler.step(v, t, x).prev_sample
        rgb = vae.decode(x / vae.config.scaling_factor + vae.config.shift_factor).sample.clamp(-1, 1)
        stock = ((rgb[0].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    assert np.array_equal(ours, stock)


@pytest.mark.usefixtures("fake_codec")
def test_predict_and_eval_cli_on_a_tiny_dit_run(tmp_path):
    """`rgbify predict` and `rgbify eval` on a tiny-dit instruct run: any aspect ratio (padded to the VAE x patch
    stride of 8), answers at the input's size, metrics written."""
    cfg = dit_cfg(tmp_path, "instruct", steps=1)
    train(cfg, MemoryTaskDataset())
    images = _write_images(tmp_path / "imgs", n=1)  # 40 x 30
    assert (
        rgbify_main(
            [
                "predict",
                "--run",
                cfg.out,
                "--task",
                "depth",
                *images,
                "--out",
                str(tmp_path / "p"),
                "--steps",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "p" / "img0.depth.npy").shape == (30, 40)
    assert np.asarray(Image.open(tmp_path / "p" / "img0.depth.rgb.png")).shape == (48, 64, 3)
    gt = tmp_path / "gt"
    gt.mkdir()
    np.save(gt / "img0.npy", np.full((30, 40), 2.0, np.float32))
    out = tmp_path / "e" / "m.json"
    assert (
        rgbify_main(
            [
                "eval",
                "--run",
                cfg.out,
                "--images",
                str(tmp_path / "imgs"),
                "--depth-gt",
                str(gt),
                "--out",
                str(out),
                "--steps",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert np.isfinite(json.loads(out.read_text())["depth"]["abs_rel"])


def test_gradient_checkpointing_gives_the_same_run(tmp_path):
    """--gradient-checkpointing on the transformer recomputes activations: the same losses and weights."""
    from safetensors.torch import load_file

    a = dit_cfg(tmp_path / "a", "lotus", steps=2)
    b = dit_cfg(tmp_path / "b", "lotus", steps=2, gradient_checkpointing=True)
    for cfg in (a, b):
        train(cfg, MemoryTaskDataset())
    assert [r["loss"] for r in log_rows(a)] == pytest.approx([r["loss"] for r in log_rows(b)], rel=1e-6)
    wa = load_file(f"{a.out}/model/conditioned/diffusion_pytorch_model.safetensors")
    wb = load_file(f"{b.out}/model/conditioned/diffusion_pytorch_model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_refuses_a_conditioned_transformer_of_another_mode(tmp_path):
    cfg = dit_cfg(tmp_path, "marigold", steps=1)
    train(cfg, MemoryTaskDataset(tasks=("depth",)))
    with pytest.raises(UserError, match="--mode marigold"):
        build_model(dit_cfg(tmp_path, "instruct", base_model=f"{cfg.out}/model"))


def test_overfit_flow_matching_loss_falls(tmp_path):
    """Two depth samples, marigold mode (velocity target, logit-normal timesteps), 100 steps: the loss (mean of the
    last 10 steps against the first 10) falls well below where it starts."""
    data = MemoryTaskDataset(n=2, tasks=("depth",))
    cfg = dit_cfg(
        tmp_path,
        "marigold",
        steps=100,
        lr=3e-3,
        warmup_steps=0,
        lr_schedule="constant",
        checkpoint_every=1000,
        tasks=("depth",),
    )
    train(cfg, data)
    losses = [r["loss"] for r in log_rows(cfg)]
    start, end = np.mean(losses[:10]), np.mean(losses[-10:])
    assert end < 0.35 * start, (start, end)  # measured: 1.54 -> 0.31 (ratio 0.20), 8.6 s on one loaded core


def test_base_model_sd3_folder_trains_and_resumes_exactly(tmp_path):
    """A stock-layout SD3 folder (StableDiffusion3Pipeline.save_pretrained of the tiny-dit parts, 4-channel
    transformer, no T5) is a --base-model; a run stopped at step 2 and resumed to 4 equals the straight run, and
    validation scores the transformer."""
    from diffusers import StableDiffusion3Pipeline

    torch.manual_seed(0)
    parts = dit.build_preset("tiny-dit", RES)
    StableDiffusion3Pipeline(
        transformer=parts.unet,
        scheduler=parts.noise_scheduler,
        vae=parts.vae,
        text_encoder=parts.text_encoder,
        tokenizer=parts.tokenizer,
        text_encoder_2=parts.text_encoder_2,
        tokenizer_2=parts.tokenizer_2,
        text_encoder_3=None,
        tokenizer_3=None,
    ).save_pretrained(tmp_path / "sd3")
    base = str(tmp_path / "sd3")
    straight = dit_cfg(tmp_path / "a", "instruct", base_model=base, steps=4, lr_schedule="constant")
    result = train(straight, MemoryTaskDataset(), MemoryTaskDataset(n=2))
    assert set(result["metrics"]) >= {"depth", "normals"}
    split = dit_cfg(tmp_path / "b", "instruct", base_model=base, steps=2, lr_schedule="constant")
    train(split, MemoryTaskDataset())
    train(dit_cfg(tmp_path / "b", "instruct", base_model=base, steps=4, lr_schedule="constant"), MemoryTaskDataset())
    assert [r["loss"] for r in log_rows(straight)] == [r["loss"] for r in log_rows(split)]


def test_lora_trains_adapters_and_exports_them_merged(tmp_path):
    """--lora-rank 4 (peft): the attention projections change through their adapters, the feed-forward weights
    stay those of the base model, the widened patch embedding trains in full; RUN/model holds a plain
    SD3Transformer2DModel (adapters merged, no LoRA keys) that predict loads."""
    pytest.importorskip("peft")
    from diffusers import SD3Transformer2DModel

    cfg = dit_cfg(tmp_path, "instruct", steps=2, lr=1e-2, lora_rank=4)
    train(cfg, MemoryTaskDataset())
    out = SD3Transformer2DModel.from_pretrained(f"{cfg.out}/model", subfolder="conditioned").state_dict()
    assert not any("lora" in k for k in out)
    torch.manual_seed(cfg.seed)
    base = build_model(cfg).unet.state_dict()
    assert set(out) == set(base)
    for key in (
        "transformer_blocks.0.attn.to_q.weight",
        "transformer_blocks.0.attn.add_k_proj.weight",
        "pos_embed.proj.weight",
    ):
        assert not torch.allclose(out[key], base[key]), key
    for key in ("transformer_blocks.0.ff.net.0.proj.weight", "proj_out.weight", "context_embedder.weight"):
        assert torch.equal(out[key], base[key]), key
    run = load_run(cfg.out, "cpu")
    assert run.components.unet.pos_embed.proj.weight[:, 4:].abs().max() > 0


def test_adafactor_optimizer_trains(tmp_path):
    """--optimizer adafactor (transformers' Adafactor at the given lr): the run trains and the loss is finite."""
    cfg = dit_cfg(tmp_path, "marigold", steps=2, optimizer="adafactor", tasks=("depth",))
    train(cfg, MemoryTaskDataset(tasks=("depth",)))
    assert all(np.isfinite(r["loss"]) for r in log_rows(cfg))


def test_tiny_flux_instruct_run_generates_in_stock_flux_pipeline(tmp_path):
    """The FLUX family (tiny-flux: FluxTransformer2DModel with packed latents, guidance embedding, CLIP + T5): a
    trained instruct run's RUN/model loads with FluxPipeline.from_pretrained and draws, for a prompt and seed,
    what rgbify draws for a generation item with the trained conditioned transformer; predict works."""
    from diffusers import FluxPipeline, FluxTransformer2DModel

    cfg = dit_cfg(tmp_path, "instruct", base_model="tiny-flux", steps=2, lr=1e-2)
    train(cfg, MemoryTaskDataset(generation_ratio=0.5))
    model = tmp_path / "run-instruct" / "model"
    assert json.loads((model / "model_index.json").read_text())["_class_name"] == "FluxPipeline"
    pipe = _quiet(FluxPipeline.from_pretrained(model))
    assert pipe.transformer.config.in_channels == 16 and pipe.transformer.config.guidance_embeds
    stock = pipe(
        PROMPT,
        height=RES,
        width=RES,
        num_inference_steps=STEPS,
        guidance_scale=dit.FLUX_GUIDANCE,
        generator=torch.Generator().manual_seed(SEED),
        output_type="np",
    ).images[0]
    run = load_run(cfg.out, "cpu")
    assert isinstance(run.components.unet, FluxTransformer2DModel)
    assert run.components.unet.x_embedder.weight[:, 16:].abs().max() > 0  # the image features were trained
    states, pooled = run.prompts([PROMPT])
    zero = torch.zeros(1, 4, RES // 4, RES // 4)
    z = dit.sample_latent(run.components, run.cfg, zero, states, pooled, torch.Generator().manual_seed(SEED), STEPS)
    ours = ((dit.decode(run.components.vae, z)[0].permute(1, 2, 0) + 1) / 2).numpy()
    assert np.abs(ours - stock).max() < 1e-4, np.abs(ours - stock).max()
    path = _write_images(tmp_path / "in", n=1)[0]  # 40 x 30: padded to the stride 4 x 2
    predict_files(run, "depth", [path], tmp_path / "pred", seed=SEED, prompt=PROMPT, decode=run_prompt(run, "depth")[1])
    assert np.asarray(Image.open(tmp_path / "pred" / "img0.depth.rgb.png")).shape == (48, 64, 3)


def test_tiny_flux_overfits_and_loads_as_base_model(tmp_path):
    """tiny-flux in lotus mode (x0 at the end of the schedule, the switch in the pooled projection) overfits two
    items; its run is a --base-model of the same mode (FLUX folder with conditioned/)."""
    data = MemoryTaskDataset(n=2, tasks=("depth",))
    cfg = dit_cfg(
        tmp_path,
        "lotus",
        base_model="tiny-flux",
        steps=40,
        lr=3e-3,
        warmup_steps=0,
        lr_schedule="constant",
        checkpoint_every=1000,
        tasks=("depth",),
        detail_preserver=False,
    )
    train(cfg, data)
    losses = [r["loss"] for r in log_rows(cfg)]
    start, end = np.mean(losses[:5]), np.mean(losses[-5:])
    assert end < 0.15 * start, (start, end)  # measured: 0.75 -> 0.020 (ratio 0.027), 5.6 s
    again = build_model(dit_cfg(tmp_path, "lotus", base_model=f"{cfg.out}/model", tasks=("depth",)))
    assert again.family == "flux" and dit.has_switch(again)


def test_tiny_pixart_instruct_run_generates_in_stock_pixart_sigma_pipeline(tmp_path):
    """The PixArt family (tiny-pixart: PixArtTransformer2DModel, T5 cross-attention, learned sigma, DDPM epsilon
    objective, DPM-Solver++ sampling): PixArtSigmaPipeline.from_pretrained(RUN/model) draws what rgbify draws for
    a generation item."""
    from diffusers import PixArtSigmaPipeline

    cfg = dit_cfg(tmp_path, "instruct", base_model="tiny-pixart", steps=2, lr=1e-2)
    train(cfg, MemoryTaskDataset(generation_ratio=0.5))
    model = tmp_path / "run-instruct" / "model"
    assert json.loads((model / "model_index.json").read_text())["_class_name"] == "PixArtSigmaPipeline"
    pipe = _quiet(PixArtSigmaPipeline.from_pretrained(model))
    stock = pipe(
        PROMPT,
        height=RES,
        width=RES,
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        use_resolution_binning=False,
        generator=torch.Generator().manual_seed(SEED),
        output_type="np",
    ).images[0]
    run = load_run(cfg.out, "cpu")
    assert run.components.unet.pos_embed.proj.weight[:, 4:].abs().max() > 0
    states, mask = run.prompts([PROMPT])
    zero = torch.zeros(1, 4, RES // 4, RES // 4)
    z = dit.sample_latent(run.components, run.cfg, zero, states, mask, torch.Generator().manual_seed(SEED), STEPS)
    ours = ((dit.decode(run.components.vae, z)[0].permute(1, 2, 0) + 1) / 2).numpy()
    assert np.abs(ours - stock).max() < 1e-4, np.abs(ours - stock).max()


def test_tiny_pixart_overfits(tmp_path):
    """Two depth items, marigold mode, epsilon objective, 60 steps: the loss falls well below where it starts."""
    data = MemoryTaskDataset(n=2, tasks=("depth",))
    cfg = dit_cfg(
        tmp_path,
        "marigold",
        base_model="tiny-pixart",
        steps=60,
        lr=3e-3,
        warmup_steps=0,
        lr_schedule="constant",
        checkpoint_every=1000,
        tasks=("depth",),
        prediction_type="epsilon",
    )
    train(cfg, data)
    losses = [r["loss"] for r in log_rows(cfg)]
    start, end = np.mean(losses[:10]), np.mean(losses[-10:])
    assert end < 0.35 * start, (start, end)  # measured: 1.04 -> 0.23 (ratio 0.22), 1.4 s


def test_tiny_sana_instruct_run_generates_in_stock_sana_pipeline_and_overfits(tmp_path):
    """The SANA family (tiny-sana: SanaTransformer2DModel with linear attention, a Gemma-2 encoder, a DC-AE, flow
    matching, DPM-Solver++ with flow sigmas at sampling): SanaPipeline.from_pretrained(RUN/model) draws what
    rgbify draws for a generation item (without SANA's complex human instruction, which rgbify does not prepend);
    marigold mode overfits two items."""
    from diffusers import SanaPipeline

    cfg = dit_cfg(tmp_path, "instruct", base_model="tiny-sana", steps=2, lr=1e-2)
    train(cfg, MemoryTaskDataset(generation_ratio=0.5))
    model = tmp_path / "run-instruct" / "model"
    assert json.loads((model / "model_index.json").read_text())["_class_name"] == "SanaPipeline"
    pipe = _quiet(SanaPipeline.from_pretrained(model))
    stock = pipe(
        PROMPT,
        height=RES,
        width=RES,
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        use_resolution_binning=False,
        complex_human_instruction=None,
        generator=torch.Generator().manual_seed(SEED),
        output_type="np",
    ).images[0]
    run = load_run(cfg.out, "cpu")
    assert run.components.unet.patch_embed.proj.weight[:, 8:].abs().max() > 0
    states, mask = run.prompts([PROMPT])
    zero = torch.zeros(1, 8, RES // 4, RES // 4)
    z = dit.sample_latent(run.components, run.cfg, zero, states, mask, torch.Generator().manual_seed(SEED), STEPS)
    ours = ((dit.decode(run.components.vae, z)[0].permute(1, 2, 0) + 1) / 2).numpy()
    assert np.abs(ours - stock).max() < 1e-4, np.abs(ours - stock).max()
    fit = dit_cfg(
        tmp_path,
        "marigold",
        base_model="tiny-sana",
        steps=60,
        lr=3e-3,
        warmup_steps=0,
        lr_schedule="constant",
        checkpoint_every=1000,
        tasks=("depth",),
    )
    train(fit, MemoryTaskDataset(n=2, tasks=("depth",)))
    losses = [r["loss"] for r in log_rows(fit)]
    start, end = np.mean(losses[:10]), np.mean(losses[-10:])
    assert end < 0.35 * start, (start, end)  # measured: 4.26 -> 0.93 (ratio 0.22)


@pytest.mark.usefixtures("fake_codec")
@pytest.mark.parametrize("base", ["tiny-pixart", "tiny-sana"])
def test_lotus_on_pixart_and_sana_overfits_and_loads_stock(tmp_path, base):
    """Lotus on the families without a pooled input: the task switch is SWITCH_DIM constant input planes after
    [x_t, image] (zero-initialised kernel columns). Two depth items with the detail preserver overfit (loss ratio);
    the stock class loads RUN/model/conditioned and, in the loop docs/training.md gives (one x0 call at the end of
    the schedule on [noise, image, switch planes]), draws `rgbify predict`'s bytes; the run is a --base-model of
    lotus mode only."""
    import diffusers

    data = MemoryTaskDataset(n=2, tasks=("depth",))
    fresh = build_model(dit_cfg(tmp_path, "lotus", base_model=base, tasks=("depth",)))
    c = fresh.vae.config.latent_channels
    proj = (fresh.unet.patch_embed if base == "tiny-sana" else fresh.unet.pos_embed).proj
    assert proj.in_channels == 2 * c + dit.SWITCH_DIM == fresh.unet.config.in_channels and dit.has_switch(fresh)
    assert torch.count_nonzero(proj.weight[:, 2 * c :]) == 0  # the switch starts at zero: the model is unchanged
    cfg = dit_cfg(
        tmp_path,
        "lotus",
        base_model=base,
        steps=40,
        lr=3e-3,
        warmup_steps=0,
        lr_schedule="constant",
        checkpoint_every=1000,
        tasks=("depth",),
    )
    train(cfg, data)
    losses = [r["loss"] for r in log_rows(cfg)]
    start, end = np.mean(losses[:5]), np.mean(losses[-5:])
    assert end < 0.3 * start, (start, end)  # measured: pixart 0.91 -> 0.087 (0.095), sana 3.77 -> 0.63 (0.17)
    model = Path(cfg.out) / "model"
    family = {
        "tiny-pixart": ("PixArtSigmaPipeline", "PixArtTransformer2DModel"),
        "tiny-sana": ("SanaPipeline", "SanaTransformer2DModel"),
    }[base]
    pipe = _quiet(getattr(diffusers, family[0]).from_pretrained(model))
    transformer = getattr(diffusers, family[1]).from_pretrained(model, subfolder="conditioned")
    assert pipe.transformer.config.in_channels == c and transformer.config.in_channels == 2 * c + 4
    path = _write_images(tmp_path / "in", n=1, size=(RES, RES))[0]
    run = load_run(cfg.out, "cpu")
    prompt, decode = run_prompt(run, "depth")
    predict_files(run, "depth", [path], tmp_path / "pred", seed=SEED, decode=decode, prompt=prompt)
    ours = np.asarray(Image.open(tmp_path / "pred" / "img0.depth.rgb.png"))

    with torch.no_grad():
        image = load_image(path, RES)[0][None]  # in [-1, 1]
        vae = pipe.vae
        if base == "tiny-sana":
            img = vae.encode(image).latent * vae.config.scaling_factor
            states, mask, _, _ = pipe.encode_prompt(
                prompt, do_classifier_free_guidance=False, max_sequence_length=300, complex_human_instruction=None
            )
            extra, t = {}, torch.tensor([1000.0 * transformer.config.timestep_scale])
        else:
            img = vae.encode(image).latent_dist.mode() * vae.config.scaling_factor
            states, mask, _, _ = pipe.encode_prompt(prompt, do_classifier_free_guidance=False, max_sequence_length=300)
            extra = {"added_cond_kwargs": {"resolution": None, "aspect_ratio": None}}
            t = torch.tensor([999.0])  # PixArt's DDPM: its last timestep
        x = torch.randn(img.shape, generator=torch.Generator().manual_seed(SEED))
        onehot = torch.tensor([1.0, 0.0])  # the switch: [sin, cos] of the one-hot "task" = (1, 0), as planes
        planes = torch.cat([torch.sin(onehot), torch.cos(onehot)])[None, :, None, None].expand(1, 4, *img.shape[2:])
        out = transformer(
            torch.cat([x, img, planes], 1),
            encoder_hidden_states=states,
            encoder_attention_mask=mask,
            timestep=t,
            return_dict=False,
            **extra,
        )[0][:, :c]  # PixArt: the learned-sigma half dropped
        rgb = vae.decode(out / vae.config.scaling_factor).sample.clamp(-1, 1)
        stock = ((rgb[0].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    assert np.array_equal(ours, stock)
    again = build_model(dit_cfg(tmp_path, "lotus", base_model=str(model), tasks=("depth",)))
    assert again.family == fresh.family and dit.has_switch(again)
    with pytest.raises(UserError, match="train it with --mode lotus"):
        build_model(dit_cfg(tmp_path, "marigold", base_model=str(model)))
    if base == "tiny-pixart":  # diffusers' PixArtTransformer2DModel has no PeftAdapterMixin
        with pytest.raises(UserError, match="no LoRA adapters for PixArtTransformer2DModel"):
            train(dit_cfg(tmp_path / "lora", "lotus", base_model=base, lora_rank=4), data)


def test_sd3_with_t5_loads_in_the_stock_pipeline_as_saved(tmp_path):
    """--sd3-t5: tiny-dit with a (tiny) T5 encoder as SD3's third text encoder; the run's folder holds it and
    StableDiffusion3Pipeline.from_pretrained(RUN/model) (no components left out) draws rgbify's generation; the T5
    tokens are not zeros."""
    from diffusers import StableDiffusion3Pipeline

    cfg = dit_cfg(tmp_path, "instruct", steps=1, sd3_t5=True)
    train(cfg, MemoryTaskDataset(generation_ratio=0.5))
    pipe = _quiet(StableDiffusion3Pipeline.from_pretrained(tmp_path / "run-instruct" / "model"))
    assert pipe.text_encoder_3 is not None
    stock = pipe(
        PROMPT,
        height=RES,
        width=RES,
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(SEED),
        output_type="np",
    ).images[0]
    run = load_run(cfg.out, "cpu")
    states, pooled = run.prompts([PROMPT])
    assert states[0, 77:].abs().max() > 0  # T5's states follow CLIP's 77
    zero = torch.zeros(1, 4, RES // 4, RES // 4)
    z = dit.sample_latent(run.components, run.cfg, zero, states, pooled, torch.Generator().manual_seed(SEED), STEPS)
    ours = ((dit.decode(run.components.vae, z)[0].permute(1, 2, 0) + 1) / 2).numpy()
    assert np.abs(ours - stock).max() < 1e-4
    with pytest.raises(UserError, match="--sd3-t5 is for Stable Diffusion 3"):
        build_model(dit_cfg(tmp_path, "instruct", base_model="tiny-flux", sd3_t5=True))


BF16_RUNS = """
import sys
from pathlib import Path
from test_train import MemoryTaskDataset, cfg_for
from rgbify.train.trainer import train
out = Path(sys.argv[1])
for base, mode, kw in (("tiny-dit", "lotus", dict(gradient_checkpointing=True, ema_decay=0.9, lora_rank=4)),
                       ("tiny-flux", "instruct", dict(gradient_checkpointing=True)),
                       ("tiny-sana", "marigold", dict(tasks=("depth",)))):
    cfg = cfg_for(out / base, mode, base_model=base, steps=1, mixed_precision="bf16", **kw)
    train(cfg, MemoryTaskDataset(tasks=cfg.tasks))
"""


def test_bf16_runs_of_the_transformer_families(tmp_path):
    """In a process of its own (accelerate sets the precision once per process): bf16 autocast trains tiny-dit
    (lotus, gradient checkpointing, EMA, LoRA with its frozen base stored in bf16), tiny-flux (instruct) and
    tiny-sana (marigold); the losses are finite and the exported runs load."""
    here = Path(__file__).resolve().parent
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]),
    )
    p = subprocess.run(
        [sys.executable, "-c", BF16_RUNS, str(tmp_path)], env=env, capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, p.stderr[-4000:]
    for base, mode in (("tiny-dit", "lotus"), ("tiny-flux", "instruct"), ("tiny-sana", "marigold")):
        rows = log_rows(dit_cfg(tmp_path / base, mode, base_model=base))
        assert [r["step"] for r in rows] == [1] and np.isfinite(rows[0]["loss"])
        assert load_run(tmp_path / base / f"run-{mode}", "cpu").components.family == base.split("-")[1].replace(
            "dit", "sd3"
        )


@pytest.mark.parametrize(
    "pipeline, family, lacks",
    [
        ("StableDiffusion3Pipeline", "Stable Diffusion 3", "text_encoder_2"),
        ("FluxPipeline", "FLUX.1", "text_encoder_2"),
        ("PixArtSigmaPipeline", "PixArt-Sigma", "text_encoder"),
        ("SanaPipeline", "SANA", "text_encoder"),
    ],
)
def test_an_incomplete_or_unreadable_family_folder_is_one_line(tmp_path, pipeline, family, lacks):
    from rgbify.train.dit import folder_family, load_folder

    root = tmp_path / "m"
    (root / "transformer").mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps({"_class_name": pipeline}))
    assert folder_family(root) is not None
    with pytest.raises(UserError, match=f"a {family} folder without .*{lacks}") as e:
        load_folder(str(root))
    assert len(str(e.value).splitlines()) == 1
    for d in ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"):
        (root / d).mkdir(exist_ok=True)  # every part there, none readable
    with pytest.raises(UserError, match=f"cannot load it as {family}"):
        load_folder(str(root))
