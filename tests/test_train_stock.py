"""Runs as stock diffusers pipelines: RUN/model loads with the class its model_index.json names, and that pipeline,
given the same image, seed, steps and scheduler, draws what `rgbify predict` draws (docs/training.md, "Stock
pipelines"). Also: 8-channel base models are used in their own conventions or refused in one line; Marigold's
multi-resolution noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from test_train import RES, MemoryTaskDataset, cfg_for  # noqa: E402

from rgbify.errors import UserError  # noqa: E402
from rgbify.train.checkpoint import export_model  # noqa: E402
from rgbify.train.config import make_config  # noqa: E402
from rgbify.train.model import build_model, vae_decode  # noqa: E402
from rgbify.train.pipeline import sample, stock_pipeline  # noqa: E402
from rgbify.train.predict import load_image, load_run, predict_files, run_prompt  # noqa: E402
from rgbify.train.step import multi_res_noise, step_generator, train_step  # noqa: E402
from rgbify.train.trainer import train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEPS, SEED = 3, 7


def _perturbed(cfg):
    """The tiny model with every UNet weight moved by seeded noise, so that the image channels of conv_in (zero at
    initialisation in instruct mode) take part."""
    torch.manual_seed(0)
    components = build_model(cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in components.unet.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return components


def _exported(tmp_path, mode, **kw):
    cfg = cfg_for(tmp_path, mode, inference_steps=STEPS, **kw)
    components = _perturbed(cfg)
    export_model(components, components.unet, tmp_path / f"run-{mode}", cfg, step=1)
    return cfg


def _images(folder, n=2):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray((np.random.default_rng(i).random((RES, RES, 3)) * 255).astype(np.uint8)).save(p)
        paths.append(p)
    return paths


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tensor(paths):
    """Images as a contiguous (B,3,H,W) float tensor in [0, 1], which stock pipelines take as they are."""
    return torch.stack(
        [torch.from_numpy(np.asarray(Image.open(p), np.float32) / 255).permute(2, 0, 1) for p in paths]
    ).contiguous()


def _within_one_level(a, b):
    off = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    return off.max() <= 1 and (off > 0).mean() < 0.01


def test_instruct_run_is_a_stock_instructpix2pix_pipeline(tmp_path):
    """StableDiffusionInstructPix2PixPipeline.from_pretrained(RUN/model), with `rgbify predict`'s seed and steps,
    draws `rgbify predict`'s answer (each of two images), with and without three-way guidance: the same bytes
    from a contiguous image tensor, within one level from PIL images (the pipeline's image processor hands the VAE
    a channels-last tensor, whose convolution rounds differently: about 1e-6 in the image latent)."""
    from diffusers import DDIMScheduler, StableDiffusionInstructPix2PixPipeline

    cfg = _exported(tmp_path, "instruct")
    model = tmp_path / "run-instruct" / "model"
    assert (
        json.loads((model / "model_index.json").read_text())["_class_name"] == "StableDiffusionInstructPix2PixPipeline"
    )
    saved = DDIMScheduler.from_pretrained(model / "scheduler").config  # the scheduler rgbify samples with
    assert saved.timestep_spacing == "trailing" and saved.prediction_type == cfg.prediction_type == "v_prediction"
    pipe = _quiet(StableDiffusionInstructPix2PixPipeline.from_pretrained(model))

    run = load_run(cfg.out, "cpu")
    paths = _images(tmp_path / "in")
    prompt = "Draw the metric depth."  # fits the tiny byte-level tokenizer's 77-token window, as stock needs
    assert len(run.components.tokenizer(prompt).input_ids) <= run.components.tokenizer.model_max_length
    _, decode = run_prompt(run, "depth")
    predict_files(run, "depth", [str(p) for p in paths], tmp_path / "pred", seed=SEED, prompt=prompt, decode=decode)
    ours = [np.asarray(Image.open(tmp_path / "pred" / f"{p.stem}.depth.rgb.png")) for p in paths]
    assert np.abs(ours[0].astype(int) - ours[1].astype(int)).max() > 0  # the images matter

    def stock(images, n, text_guidance=1.0, image_guidance=1.0):
        return pipe(
            [prompt] * n,
            image=images,
            num_inference_steps=STEPS,
            guidance_scale=text_guidance,
            image_guidance_scale=image_guidance,
            generator=torch.Generator().manual_seed(SEED),
        ).images

    for a, p in zip(ours, paths, strict=True):  # rgbify predict draws each image from the seed, as a stock call does
        assert np.array_equal(a, np.asarray(stock(_tensor([p]), 1)[0]))
        assert _within_one_level(a, stock([Image.open(p)], 1)[0])

    image = load_image(paths[0], RES)[0][None]
    guided = sample(
        run.components,
        run.cfg,
        image,
        [prompt],
        prompts=run.prompts,
        steps=STEPS,
        seed=SEED,
        text_guidance=2.0,
        image_guidance=1.5,
    )[0].numpy()
    assert not _within_one_level(guided, ours[0])  # guidance changes the answer
    assert np.array_equal(guided, np.asarray(stock(_tensor(paths[:1]), 1, 2.0, 1.5)[0]))
    assert _within_one_level(guided, stock([Image.open(paths[0])], 1, 2.0, 1.5)[0])


def test_a_trained_run_loads_from_its_folder(tmp_path):
    """A run trained by `train` (tiny preset, instruct, EMA on, lr high enough to move the zero-initialised image
    channels) loads with StableDiffusionInstructPix2PixPipeline.from_pretrained(RUN/model) and draws predict's
    bytes."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    cfg = cfg_for(tmp_path, "instruct", steps=2, lr=1e-2, ema_decay=0.5, inference_steps=STEPS)
    assert train(cfg, MemoryTaskDataset())["step"] == 2
    pipe = _quiet(StableDiffusionInstructPix2PixPipeline.from_pretrained(tmp_path / "run-instruct" / "model"))
    assert pipe.unet.conv_in.weight[:, 4:].abs().max() > 0  # the image channels were trained
    run = load_run(cfg.out, "cpu")
    paths = _images(tmp_path / "in", n=1)
    prompt = "Draw the metric depth."
    predict_files(
        run, "depth", [str(paths[0])], tmp_path / "pred", seed=SEED, prompt=prompt, decode=run_prompt(run, "depth")[1]
    )
    ours = np.asarray(Image.open(tmp_path / "pred" / "img0.depth.rgb.png"))
    stock = pipe(
        prompt,
        image=_tensor(paths),
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        image_guidance_scale=1.0,
        generator=torch.Generator().manual_seed(SEED),
    ).images[0]
    assert np.array_equal(ours, np.asarray(stock))


def _bytes(z: torch.Tensor) -> np.ndarray:
    return ((z[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.mark.parametrize("task", ["depth", "normals"])
def test_marigold_run_is_a_stock_marigold_pipeline(tmp_path, task):
    """MarigoldDepthPipeline / MarigoldNormalsPipeline.from_pretrained(RUN/model) draws `rgbify predict`'s latent:
    exactly from a contiguous image tensor, within one level from a PIL image (Marigold's image processor hands the
    VAE a channels-last tensor, whose convolution rounds differently: about 6e-6 in the image latent). Its
    prediction is the drawn target as Marigold reads it: depth the mean of the channels (f(d) of the grey codec),
    normals the normalised vector (2 RGB / 255 - 1), on pixels no channel of which is clipped."""
    from diffusers import MarigoldDepthPipeline, MarigoldNormalsPipeline

    cls = MarigoldDepthPipeline if task == "depth" else MarigoldNormalsPipeline
    cfg = _exported(tmp_path, "marigold", tasks=(task,))
    model = tmp_path / "run-marigold" / "model"
    assert json.loads((model / "model_index.json").read_text())["_class_name"] == cls.__name__
    pipe = _quiet(cls.from_pretrained(model))
    assert pipe.default_denoising_steps == STEPS and pipe.default_processing_resolution == RES

    run = load_run(cfg.out, "cpu")
    (path,) = _images(tmp_path / "in", n=1)
    predict_files(run, task, [str(path)], tmp_path / "pred", seed=SEED)
    ours = np.asarray(Image.open(tmp_path / "pred" / f"img0.{task}.rgb.png"))
    decoded = np.load(tmp_path / "pred" / f"img0.{task}.npy")
    with pytest.raises(UserError, match="predicts .* only"):
        predict_files(run, "normals" if task == "depth" else "depth", [str(path)], tmp_path / "pred")

    def stock(image):
        return pipe(
            image,
            num_inference_steps=STEPS,
            processing_resolution=0,
            output_type="np",
            output_latent=True,
            generator=torch.Generator().manual_seed(SEED),
        )

    pixels = np.asarray(Image.open(path), np.float32) / 255
    exact = stock(torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous())
    assert np.array_equal(_bytes(vae_decode(run.components.vae, exact.latent)), ours)
    out = stock(Image.open(path))
    off = np.abs(_bytes(vae_decode(run.components.vae, out.latent)).astype(int) - ours)
    assert off.max() <= 1 and (off > 0).mean() < 0.01

    inside = ((ours > 0) & (ours < 255)).all(-1)  # no channel clipped: the mean and the norm see what we see
    assert inside.mean() > 0.5
    raw = ours.astype(np.float64)
    if task == "depth":
        f = out.prediction[0, ..., 0]  # in [0, 1]: f(d) = 1 - (1 + d/10)^-2 of the grey codec
        assert np.abs(f * 255 - raw.mean(-1))[inside].max() <= 1.5  # rounding (0.5) + one level
        f_ours = 1 - (1 + decoded / 10.0) ** -2  # our decode: the nearest grey (the projection: the mean)
        assert np.abs(f_ours - f)[inside].max() <= 2.5 / 255
    else:
        n = out.prediction[0]  # unit, target frame (+x right, +y up, +z toward the viewer): ours (x, -y, -z)
        v = raw / 127.5 - 1
        norm = np.linalg.norm(v, axis=-1)
        eps = np.sqrt(3) * 1.5 / 127.5  # rounding + one level, each channel
        ok = inside & (norm > 2 * eps)
        angle = np.arccos(np.clip((v / norm[..., None] * n).sum(-1), -1, 1))
        assert (angle[ok] <= np.arcsin(eps / (norm[ok] - eps)) + 1e-6).all()
        ours_target_frame = decoded * np.array([1.0, -1.0, -1.0])
        hit = ok & (np.linalg.norm(decoded, axis=-1) > 0)
        assert hit.mean() > 0.3
        cos = (ours_target_frame * n).sum(-1)[hit]
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 2 * np.degrees(np.arcsin(eps / 0.25))


def test_eight_channel_base_models_keep_their_conventions_or_are_refused(tmp_path):
    """An InstructPix2Pix checkpoint (8 input channels, model_index.json naming its pipeline) fine-tunes in instruct
    mode with its conv_in as it is; any other mode, a folder that does not say whose conventions its 8-channel UNet
    follows, and an instruct run of an earlier rgbify are refused in one line."""
    cfg = cfg_for(tmp_path, "instruct")
    components = _perturbed(cfg)
    ip2p = tmp_path / "ip2p"
    stock_pipeline(components, cfg).save_pretrained(ip2p)
    base = build_model(cfg_for(tmp_path, "instruct", base_model=str(ip2p)))
    assert torch.equal(base.unet.conv_in.weight, components.unet.conv_in.weight)
    assert train(cfg_for(tmp_path, "instruct", base_model=str(ip2p), steps=1), MemoryTaskDataset())["step"] == 1
    for mode in ("marigold", "lotus"):
        with pytest.raises(
            UserError,
            match="StableDiffusionInstructPix2PixPipeline checkpoint, whose 8-channel UNet "
            "takes instruct-mode inputs; train it with --mode instruct",
        ) as e:
            build_model(cfg_for(tmp_path, mode, base_model=str(ip2p)))
        assert "\n" not in str(e.value)
    run = tmp_path / "run-instruct" / "model"  # the one-step run above: its own run.json
    with pytest.raises(UserError, match="an rgbify instruct-mode run, whose 8-channel UNet takes instruct-mode"):
        build_model(cfg_for(tmp_path, "lotus", base_model=str(run)))
    meta = json.loads((run / "run.json").read_text())
    del meta["run_format"]  # as written before run format 2
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="exported by an earlier rgbify whose instruct mode"):
        load_run(tmp_path / "run-instruct", "cpu")
    (ip2p / "model_index.json").unlink()
    with pytest.raises(UserError, match="input conventions are unknown"):
        build_model(cfg_for(tmp_path, "instruct", base_model=str(ip2p)))


def test_multi_res_noise_is_marigolds_pyramid(tmp_path):
    """Unit variance, spatially correlated at full strength, white at strength 0 (annealed at t = 0), drawn from
    the generator only; the flag trains, and 0 leaves a step as it was."""

    def lag1(x):  # correlation of horizontally neighbouring values
        return float(torch.corrcoef(torch.stack([x[..., :-1].flatten(), x[..., 1:].flatten()]))[0, 1])

    white = torch.randn((4, 4, 32, 32), generator=torch.Generator().manual_seed(0))
    full = multi_res_noise(white, torch.full((4,), 0.9), torch.Generator().manual_seed(1))
    none = multi_res_noise(white, torch.zeros(4), torch.Generator().manual_seed(1))
    assert abs(float(full.std()) - 1) < 1e-5 and full.shape == white.shape
    assert lag1(full) > 0.3 and abs(lag1(none)) < 0.05 and abs(lag1(white)) < 0.05
    assert torch.equal(full, multi_res_noise(white, torch.full((4,), 0.9), torch.Generator().manual_seed(1)))

    items = [MemoryTaskDataset()[i] for i in range(2)]
    batch = {k: [it[k] for it in items] for k in ("prompt", "task")}
    batch.update({k: torch.stack([it[k] for it in items]) for k in ("image", "target")})
    losses = {}
    for strength in (0.0, 0.9):
        cfg = cfg_for(tmp_path, "instruct", multi_res_noise=strength)
        components = _perturbed(cfg)
        from rgbify.train.model import PromptEncoder

        prompts = PromptEncoder(components.tokenizer, components.text_encoder)
        with torch.no_grad():
            losses[strength] = float(train_step(components, prompts, cfg, batch, step_generator(0, 0, "cpu"))[0])
    assert losses[0.0] != losses[0.9]
    cfg = cfg_for(tmp_path, "marigold", steps=1, multi_res_noise=0.9)
    assert train(cfg, MemoryTaskDataset(tasks=("depth",)))["step"] == 1
    assert np.isfinite(json.loads(open(f"{cfg.out}/log.jsonl").readline())["loss"])
    assert make_config({}, f"{cfg.out}/config.toml").multi_res_noise == 0.9
