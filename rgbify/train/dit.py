"""The transformer family: Stable Diffusion 3 (MMDiT) generators trained with flow matching, in rgbify's three modes.

``rgbify.train.model.build_model`` hands a config here when ``--base-model`` is a transformer preset (``tiny-dit``,
``sd3-random``) or a local diffusers folder whose model_index.json names ``StableDiffusion3Pipeline`` (or whose
transformer/config.json names ``SD3Transformer2DModel``). The components are SD3's: two CLIP text encoders with
projection (CLIP-L, CLIP-G), an AutoencoderKL, an ``SD3Transformer2DModel`` and a ``FlowMatchEulerDiscreteScheduler``.
T5 is dropped by default: its tokens are zeros, which is what ``StableDiffusion3Pipeline`` feeds with
``text_encoder_3=None``; ``--sd3-t5`` keeps it (text_encoder_3/, tokenizer_3/) as the stock pipeline uses it.

The objective (``flow_step``) is the one of diffusers' SD3 training scripts (train_dreambooth_sd3.py): latents
x0 = (VAE mean - shift_factor) x scaling_factor; u drawn logit-normal (``--timestep-sampling``), t the training
scheduler's (shifted) timestep at index u x T, sigma its sigma; x_t = (1 - sigma) x0 + sigma noise; the transformer
predicts the velocity noise - x0; the squared error is weighted by ``compute_loss_weighting_for_sd3``
(``--loss-weighting``, default none: the logit-normal draw is the weighting). Modes:

- instruct and marigold: the image latent enters as extra latent channels: the patch embedding's convolution takes
  2C channels, [x_t, image] (marigold [image, x_t]), the image half zero-initialised in instruct mode (InstructPix2Pix)
  and the pretrained kernel copied into both halves and halved in marigold mode (Marigold). Sampling is Euler on
  ``FlowMatchEulerDiscreteScheduler`` from noise, ``--inference-steps`` steps. Instruct also drops prompt / image /
  both with ``--cond-dropout`` and guides three ways at inference (as the UNet's instruct mode).
- lotus: one step at the end of the schedule (sigma = 1, t = T), from noise (or zeros, Lotus-D), the transformer
  predicts the clean target latent x0; the task switch is 4 extra inputs of the pooled text projection (zero-
  initialised columns of ``time_text_embed.text_embedder.linear_1``: the pretrained model is unchanged at step 0),
  the detail preserver reconstructs the image latent with the switch on.

Why channels, not tokens: concatenating the image's patches as extra tokens doubles the image sequence, so
attention costs about 4x and every linear layer 2x per sample; channels cost one wider patch-embedding kernel
(C x p^2 x D more weights) and keep the token count. The dense tasks are pixel-aligned with the image, which is
what channel concatenation expresses; tokens would let the model attend across positions, at that price.

A run's RUN/model (``export``) is a ``StableDiffusion3Pipeline`` folder whose transformer/ is the C-channel text-to-
image model (the trained weights with the image half of the patch embedding, and the task-switch columns, removed:
for instruct runs exactly the trained model on generation items, whose image latent is zero), so
``StableDiffusion3Pipeline.from_pretrained(RUN/model, text_encoder_3=None, tokenizer_3=None)`` generates (diffusers'
own way to load SD3 without T5); conditioned/ holds the full trained transformer
(``SD3Transformer2DModel.from_pretrained(RUN/model, subfolder="conditioned")``), which rgbify predicts with.


FLUX.1 (``--base-model tiny-flux`` or a local folder whose model_index.json names ``FluxPipeline``) is the same
recipe on ``FluxTransformer2DModel``: CLIP-L's pooled output and T5's 512 token states (T5 is needed: it is FLUX's
only sequence conditioning), 2x2 latents packed per token (``FluxPipeline._pack_latents``) with x_t and the image
latent packed separately and concatenated per token (the token embedding ``x_embedder`` widened from 4C to 8C
features, as SD3's patch embedding), the guidance embedding fed ``FLUX_GUIDANCE``, timestep / 1000, the training
scheduler's unshifted sigmas (FLUX's scheduler shifts by resolution at inference: FluxPipeline's ``mu``), and a
``FluxPipeline`` folder as RUN/model.

PixArt-Sigma (``tiny-pixart``, ``PixArtSigmaPipeline`` folders) is a diffusion model: DDPM epsilon / v objective,
the learned-sigma half of the output ignored, DPM-Solver++ sampling, T5 states with their mask. SANA
(``tiny-sana``, ``SanaPipeline`` folders) is a flow model with Gemma-2 states and mask and a DC-AE, sampled with
DPM-Solver++ on flow sigmas. Both widen the patch embedding; neither has a pooled or class input for the lotus
switch, so in lotus mode the embedding takes SWITCH_DIM more channels, the switch broadcast as constant planes after
[x_t, image] (zero-initialised kernel columns: the stock classes load and run it; PixArt's lotus timestep is DDPM's
last, T-1).
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

from rgbify.datasets import to_unit
from rgbify.errors import UserError
from rgbify.train.config import TrainConfig
from rgbify.train.parts import (
    IMAGE_FIRST,
    Components,
    conventions_of,
    load_tiny_vae,
    lotus_switch,
    multi_res_noise,
    tiny_tokenizer,
    unet_input,
    vae_scale_down,
)

SD3_PIPELINES = ("StableDiffusion3Pipeline",)
"""model_index.json classes of the SD3 family."""
SWITCH_DIM = 4
"""Inputs of the lotus task switch (``lotus_switch``'s [sin, cos] of a one-hot pair): columns added to the pooled
projection (SD3, FLUX) or input channels of the patch embedding (PixArt, SANA: ``CHANNEL_SWITCH``)."""
T5_TOKENS = 256
"""Zero T5 tokens after the 77 CLIP tokens: StableDiffusion3Pipeline's default max_sequence_length."""
CONDITIONED = "conditioned"
"""RUN/model's subfolder with the full trained transformer (image channels, task switch)."""


FLUX_PIPELINES = ("FluxPipeline",)
"""model_index.json classes of the FLUX family."""
FLUX_T5_TOKENS = 512
"""T5 tokens of a FLUX prompt: FluxPipeline's default max_sequence_length."""
FLUX_GUIDANCE = 3.5
"""The guidance embedding's value in training and sampling (FLUX.1-dev's guidance-distilled input; diffusers' FLUX
training scripts' and FluxPipeline's default 3.5)."""
PIXART_PIPELINES = ("PixArtSigmaPipeline",)
"""model_index.json classes of the PixArt family."""
PIXART_T5_TOKENS = 300
SANA_PIPELINES = ("SanaPipeline",)
"""model_index.json classes of the SANA family."""
SANA_TOKENS = 300
"""Gemma tokens of a SANA prompt: SanaPipeline's default max_sequence_length (without its complex human
instruction, which rgbify does not prepend: pass complex_human_instruction=None to the stock pipeline)."""
CHANNEL_SWITCH = ("pixart", "sana")
"""Families whose lotus switch is SWITCH_DIM constant input channels (they have no pooled or class input)."""
PATCH_EMBED = {"sd3": "pos_embed.proj", "pixart": "pos_embed.proj", "sana": "patch_embed.proj", "flux": "x_embedder"}
"""The module that embeds latents as tokens, which a conditioned mode widens."""
"""T5 tokens of a PixArt-Sigma prompt: PixArtSigmaPipeline's default max_sequence_length."""
TRANSFORMER_CLASSES = {
    "SD3Transformer2DModel": "sd3",
    "FluxTransformer2DModel": "flux",
    "PixArtTransformer2DModel": "pixart",
    "SanaTransformer2DModel": "sana",
}


def folder_family(path: str | Path) -> str | None:
    """ "sd3" or "flux" for a local diffusers folder of that family (model_index.json's pipeline, or
    transformer/config.json's class), else None."""
    root = Path(path)
    index = root / "model_index.json"
    try:
        if index.is_file():
            name = json.loads(index.read_text()).get("_class_name")
            families = {
                **dict.fromkeys(SD3_PIPELINES, "sd3"),
                **dict.fromkeys(FLUX_PIPELINES, "flux"),
                **dict.fromkeys(PIXART_PIPELINES, "pixart"),
                **dict.fromkeys(SANA_PIPELINES, "sana"),
            }
            return families.get(name)
        cfg = root / "transformer" / "config.json"
        return TRANSFORMER_CLASSES.get(json.loads(cfg.read_text()).get("_class_name")) if cfg.is_file() else None
    except ValueError:
        return None


def is_sd3_folder(path: str | Path) -> bool:
    return folder_family(path) == "sd3"


# ---------------------------------------------------------------------------------------------------------- presets


def vae16(scaling_factor: float, shift_factor: float) -> dict[str, Any]:
    """The 16-channel AutoencoderKL config SD3 and FLUX.1 share; they differ only in the latent normalisation."""
    return dict(
        in_channels=3,
        out_channels=3,
        latent_channels=16,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


FLUX_DEV = {
    "transformer": dict(
        patch_size=1,
        in_channels=64,
        num_layers=19,
        num_single_layers=38,
        attention_head_dim=128,
        num_attention_heads=24,
        joint_attention_dim=4096,
        pooled_projection_dim=768,
        guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    ),
    "clip": dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        vocab_size=49408,
    ),
    "t5": dict(
        vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, feed_forward_proj="gated-gelu"
    ),
    "vae": vae16(scaling_factor=0.3611, shift_factor=0.1159),
    "text_tokens": 512,  # FluxPipeline's max_sequence_length for FLUX.1-dev (T5)
}
"""FLUX.1-dev's shapes (black-forest-labs/FLUX.1-dev: transformer, CLIP-L, T5-XXL encoder, VAE): 16 latent
channels packed 2x2 into 64 per token, 19 double-stream and 38 single-stream blocks of width 3072, guidance
embedding. The flux-random preset (benchmarks, memory planning on large GPUs) and rgbify.train.plan's tables."""


def preset_configs(name: str) -> dict[str, Any]:
    """Configs of the transformer presets' parts. sd3-random: the shapes of stabilityai/stable-diffusion-3-medium-
    diffusers (transformer, VAE, CLIP-L, CLIP-G; T5 dropped), random weights. tiny-dit: a 2-layer MMDiT of width 32
    on the tiny preset's trained VAE (4 latent channels, 4x down) and two 2-layer CLIP encoders of width 32."""
    if name == "tiny-dit":
        return {
            "transformer": dict(
                patch_size=2,
                in_channels=4,
                out_channels=4,
                num_layers=2,
                attention_head_dim=8,
                num_attention_heads=4,
                joint_attention_dim=64,
                caption_projection_dim=32,
                pooled_projection_dim=64,
                pos_embed_max_size=64,
            ),
            "text": dict(
                hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, projection_dim=32
            ),
            "text_2": dict(
                hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, projection_dim=32
            ),
            "vae": None,  # the tiny preset's trained VAE
            "shift": 3.0,
        }
    if name == "sd3-random":
        return {
            "transformer": dict(
                patch_size=2,
                in_channels=16,
                out_channels=16,
                num_layers=24,
                attention_head_dim=64,
                num_attention_heads=24,
                joint_attention_dim=4096,
                caption_projection_dim=1536,
                pooled_projection_dim=2048,
                pos_embed_max_size=192,
            ),
            "text": dict(
                vocab_size=49408,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                projection_dim=768,
                hidden_act="quick_gelu",
            ),
            "text_2": dict(
                vocab_size=49408,
                hidden_size=1280,
                intermediate_size=5120,
                num_hidden_layers=32,
                num_attention_heads=20,
                projection_dim=1280,
                hidden_act="gelu",
            ),
            "vae": vae16(scaling_factor=1.5305, shift_factor=0.0609),
            "shift": 3.0,
        }
    if name == "flux-random":  # FLUX.1-dev's shapes, random weights (T5-XXL: 4.8 B frozen parameters)
        return {
            "transformer": dict(FLUX_DEV["transformer"], out_channels=64),
            "text": FLUX_DEV["clip"],
            "t5": FLUX_DEV["t5"],
            "vae": FLUX_DEV["vae"],
        }
    if name == "tiny-flux":  # FLUX's layout at tiny-dit's scale: 1 double + 1 single block, width 32, T5 + CLIP
        return {
            "transformer": dict(
                patch_size=1,
                in_channels=16,
                out_channels=16,
                num_layers=1,
                num_single_layers=1,
                attention_head_dim=8,
                num_attention_heads=4,
                joint_attention_dim=32,
                pooled_projection_dim=32,
                guidance_embeds=True,
                axes_dims_rope=(2, 2, 4),
            ),
            "text": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
            "t5": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4),
            "vae": None,
        }
    if name == "tiny-sana":  # SANA's layout: linear-attention DiT, Gemma-2 text encoder, a DC-AE (random)
        return {
            "transformer": dict(
                in_channels=8,
                out_channels=8,
                num_attention_heads=4,
                attention_head_dim=8,
                num_layers=2,
                num_cross_attention_heads=4,
                cross_attention_head_dim=8,
                cross_attention_dim=32,
                caption_channels=32,
                mlp_ratio=2.5,
                patch_size=1,
            ),
            "text": dict(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=8,
            ),
            "vae": dict(
                latent_channels=8,
                attention_head_dim=8,
                encoder_block_types="ResBlock",
                decoder_block_types="ResBlock",
                encoder_block_out_channels=(16, 32, 32),
                decoder_block_out_channels=(16, 32, 32),
                encoder_layers_per_block=(1, 1, 1),
                decoder_layers_per_block=(1, 1, 1),
                encoder_qkv_multiscales=((), (), ()),
                decoder_qkv_multiscales=((), (), ()),
            ),
        }
    if name == "tiny-pixart":  # PixArt-Sigma's layout: a 2-layer DiT of width 32, cross-attention to T5, learned sigma
        return {
            "transformer": dict(
                num_attention_heads=4,
                attention_head_dim=8,
                in_channels=4,
                out_channels=8,
                num_layers=2,
                norm_num_groups=8,
                cross_attention_dim=32,
                caption_channels=32,
                patch_size=2,
                norm_type="ada_norm_single",
                use_additional_conditions=False,
            ),
            "t5": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4),
            "vae": None,
        }
    raise ValueError(f"not a transformer preset: {name}")


def tiny_gemma_tokenizer():
    """A Gemma (BPE) tokenizer that needs no files: printable ASCII characters, alone and word-initial, no merges,
    Gemma's special tokens (194 ids)."""
    from transformers import GemmaTokenizerFast

    chars = [chr(c) for c in range(33, 127)]
    pieces = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "\u2581", *chars, *("\u2581" + c for c in chars)]
    return GemmaTokenizerFast(vocab={t: i for i, t in enumerate(pieces)}, merges=[])


def _build_sana(cfgs: dict, resolution: int) -> Components:
    from diffusers import AutoencoderDC, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    tok = tiny_gemma_tokenizer()
    gemma = Gemma2Model(
        Gemma2Config(
            vocab_size=len(tok),
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            bos_token_id=tok.bos_token_id,
            **cfgs["text"],
        )
    )
    vae = AutoencoderDC(**cfgs["vae"])
    transformer = SanaTransformer2DModel(sample_size=resolution // vae_scale_down(vae), **cfgs["transformer"])
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)  # SANA's flow_shift 3
    return Components(tok, gemma, vae, transformer, scheduler, family="sana")


def _build_pixart(cfgs: dict, resolution: int) -> Components:
    from diffusers import DDPMScheduler, PixArtTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    tok = tiny_t5_tokenizer()
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(tok),
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            decoder_start_token_id=0,
            **cfgs["t5"],
        )
    )
    vae = load_tiny_vae()
    transformer = PixArtTransformer2DModel(sample_size=resolution // vae_scale_down(vae), **cfgs["transformer"])
    # PixArt-Sigma's schedule: linear betas 1e-4 .. 2e-2 over 1000 steps, epsilon prediction
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
    return Components(tok, t5, vae, transformer, scheduler, family="pixart")


def tiny_t5_tokenizer():
    """A T5 (unigram) tokenizer that needs no files: printable ASCII characters, alone and word-initial, T5's
    pad, end and unknown tokens (192 ids)."""
    from transformers import T5TokenizerFast

    chars = [chr(c) for c in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -1.0) for c in chars] + [("\u2581" + c, -1.5) for c in chars]
    return T5TokenizerFast(vocab=vocab, extra_ids=0)


def _build_flux(cfgs: dict, resolution: int) -> Components:
    from diffusers import FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    tokenizer, t5_tok = tiny_tokenizer(), tiny_t5_tokenizer()
    clip = CLIPTextModel(
        CLIPTextConfig(
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **{"vocab_size": len(tokenizer), **cfgs["text"]},  # the real vocabulary size where the preset gives one
        )
    )
    t5 = T5EncoderModel(
        T5Config(
            pad_token_id=t5_tok.pad_token_id,
            eos_token_id=t5_tok.eos_token_id,
            decoder_start_token_id=0,
            **{"vocab_size": len(t5_tok), **cfgs["t5"]},
        )
    )
    vae = load_tiny_vae() if cfgs["vae"] is None else AutoencoderKL(sample_size=resolution, **cfgs["vae"])
    if vae.config.shift_factor is None:
        vae.register_to_config(shift_factor=0.0)
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return Components(
        tokenizer,
        clip,
        vae,
        FluxTransformer2DModel(**cfgs["transformer"]),
        scheduler,
        family="flux",
        text_encoder_2=t5,
        tokenizer_2=t5_tok,
    )


def _t5_for(joint_dim: int):
    """A tiny random T5 encoder whose width is the transformer's joint_attention_dim (SD3 concatenates T5's states
    after the padded CLIP states, unprojected), and the T5 tokenizer built in code."""
    from transformers import T5Config, T5EncoderModel

    tok = tiny_t5_tokenizer()
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(tok),
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            decoder_start_token_id=0,
            d_model=joint_dim,
            d_kv=8,
            d_ff=2 * joint_dim,
            num_layers=2,
            num_heads=joint_dim // 8,
        )
    )
    return t5, tok


def build_preset(name: str, resolution: int, t5: bool = False) -> Any:
    """The components of a transformer preset; ``t5``: SD3 presets also get a T5 encoder (tiny-dit's: 2 layers)."""
    cfgs = preset_configs(name)
    if name in ("tiny-flux", "flux-random"):
        return _build_flux(cfgs, resolution)
    if name == "tiny-pixart":
        return _build_pixart(cfgs, resolution)
    if name == "tiny-sana":
        return _build_sana(cfgs, resolution)
    tokenizer = tiny_tokenizer()

    def clip(kw):
        return CLIPTextModelWithProjection(
            CLIPTextConfig(
                max_position_embeddings=77,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                **{"vocab_size": len(tokenizer), **kw},
            )
        )

    text_encoder, text_encoder_2 = clip(cfgs["text"]), clip(cfgs["text_2"])
    vae = load_tiny_vae() if cfgs["vae"] is None else AutoencoderKL(sample_size=resolution, **cfgs["vae"])
    if vae.config.shift_factor is None:  # SD3's pipeline adds it back when decoding
        vae.register_to_config(shift_factor=0.0)
    transformer = SD3Transformer2DModel(sample_size=resolution // vae_scale_down(vae), **cfgs["transformer"])
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=cfgs["shift"])
    t5_model, t5_tok = _t5_for(transformer.config.joint_attention_dim) if t5 else (None, None)
    return Components(
        tokenizer,
        text_encoder,
        vae,
        transformer,
        scheduler,
        family="sd3",
        text_encoder_2=text_encoder_2,
        tokenizer_2=copy.deepcopy(tokenizer),
        text_encoder_3=t5_model,
        tokenizer_3=t5_tok,
    )


def load_folder(path: str, t5: bool = False) -> Any:
    """The components of a local transformer folder: the full trained transformer of an rgbify run (conditioned/)
    when there is one, else transformer/. SD3's T5 (text_encoder_3/) is loaded only with ``t5``."""
    root = Path(path)
    if folder_family(path) == "flux":
        return _load_flux(root, path)
    if folder_family(path) == "pixart":
        return _load_pixart(root, path)
    if folder_family(path) == "sana":
        return _load_sana(root, path)
    need = ["transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"]
    need += ["text_encoder_3", "tokenizer_3"] if t5 else []
    sub = _transformer_dir(root, path, "Stable Diffusion 3", need)
    with _loading(path, "Stable Diffusion 3"):
        return Components(
            tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer"),
            text_encoder=CLIPTextModelWithProjection.from_pretrained(root / "text_encoder"),
            vae=_kl_vae(root),
            unet=SD3Transformer2DModel.from_pretrained(root / sub),
            noise_scheduler=FlowMatchEulerDiscreteScheduler.from_pretrained(root / "scheduler"),
            family="sd3",
            text_encoder_2=CLIPTextModelWithProjection.from_pretrained(root / "text_encoder_2"),
            tokenizer_2=CLIPTokenizer.from_pretrained(root / "tokenizer_2"),
            **(_load_t5(root) if t5 else {}),
        )


def _transformer_dir(root: Path, path: str, family: str, need: list[str]) -> str:
    """The subfolder holding the transformer to train (conditioned/ when there is one, else transformer/); a one-line
    UserError naming what the folder lacks and the layout a ``family`` folder has."""
    missing = [d for d in need if not (root / d).is_dir()]
    if missing:
        layout = ", ".join(f"{d}/ ({LAYOUT_NOTES[family][d]})" if d in LAYOUT_NOTES[family] else f"{d}/" for d in need)
        raise UserError(f"--base-model {path}: a {family} folder without {', '.join(missing)}; give a local diffusers "
                        f"{family} folder ({layout})")
    return CONDITIONED if (root / CONDITIONED).is_dir() else "transformer"


@contextlib.contextmanager
def _loading(path: str, family: str):
    try:
        yield
    except (OSError, ValueError) as e:
        raise UserError(f"--base-model {path}: cannot load it as {family} ({e})") from e


def _kl_vae(root: Path) -> AutoencoderKL:
    vae = AutoencoderKL.from_pretrained(root / "vae")
    if vae.config.shift_factor is None:
        vae.register_to_config(shift_factor=0.0)
    return vae


LAYOUT_NOTES = {
    "Stable Diffusion 3": {"text_encoder": "CLIP-L", "text_encoder_2": "CLIP-G", "text_encoder_3": "T5, with --sd3-t5"},
    "FLUX.1": {"text_encoder": "CLIP", "text_encoder_2": "T5"},
    "SANA": {"vae": "DC-AE", "text_encoder": "Gemma-2"},
    "PixArt-Sigma": {"text_encoder": "T5"},
}


def _load_t5(root: Path) -> dict:
    from transformers import T5EncoderModel, T5TokenizerFast

    return {
        "text_encoder_3": T5EncoderModel.from_pretrained(root / "text_encoder_3"),
        "tokenizer_3": T5TokenizerFast.from_pretrained(root / "tokenizer_3"),
    }


def _load_sana(root: Path, path: str) -> Components:
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaTransformer2DModel
    from transformers import AutoTokenizer, Gemma2Model

    sub = _transformer_dir(root, path, "SANA", ["transformer", "vae", "text_encoder", "tokenizer", "scheduler"])
    with _loading(path, "SANA"):
        saved = DPMSolverMultistepScheduler.from_pretrained(root / "scheduler").config
        return Components(
            tokenizer=AutoTokenizer.from_pretrained(root / "tokenizer"),
            text_encoder=Gemma2Model.from_pretrained(root / "text_encoder"),
            vae=AutoencoderDC.from_pretrained(root / "vae"),
            unet=SanaTransformer2DModel.from_pretrained(root / sub),
            # training: flow matching on SANA's shift (its saved scheduler is DPM-Solver with flow sigmas)
            noise_scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=saved.flow_shift),
            family="sana",
        )


def _load_pixart(root: Path, path: str) -> Components:
    from diffusers import DDPMScheduler, PixArtTransformer2DModel
    from transformers import T5EncoderModel, T5TokenizerFast

    sub = _transformer_dir(root, path, "PixArt-Sigma", ["transformer", "vae", "text_encoder", "tokenizer", "scheduler"])
    with _loading(path, "PixArt-Sigma"):
        return Components(
            tokenizer=T5TokenizerFast.from_pretrained(root / "tokenizer"),
            text_encoder=T5EncoderModel.from_pretrained(root / "text_encoder"),
            vae=AutoencoderKL.from_pretrained(root / "vae"),
            unet=PixArtTransformer2DModel.from_pretrained(root / sub),
            noise_scheduler=DDPMScheduler.from_pretrained(root / "scheduler"),  # the training schedule of any scheduler
            family="pixart",
        )


def _load_flux(root: Path, path: str) -> Components:
    from diffusers import FluxTransformer2DModel
    from transformers import CLIPTextModel, T5EncoderModel, T5TokenizerFast

    need = ["transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"]
    sub = _transformer_dir(root, path, "FLUX.1", need)
    with _loading(path, "FLUX.1"):
        return Components(
            tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer"),
            text_encoder=CLIPTextModel.from_pretrained(root / "text_encoder"),
            vae=_kl_vae(root),
            unet=FluxTransformer2DModel.from_pretrained(root / sub),
            noise_scheduler=FlowMatchEulerDiscreteScheduler.from_pretrained(root / "scheduler"),
            family="flux",
            text_encoder_2=T5EncoderModel.from_pretrained(root / "text_encoder_2"),
            tokenizer_2=T5TokenizerFast.from_pretrained(root / "tokenizer_2"),
        )


# ------------------------------------------------------------------------------------------------- mode adaptation


def text_pooled_dim(components) -> int:
    if components.family == "flux":  # CLIP's pooled output
        return components.text_encoder.config.hidden_size
    return components.text_encoder.config.projection_dim + components.text_encoder_2.config.projection_dim


def latent_inputs(components) -> int:
    """The transformer's input features of one latent (SD3: C channels; FLUX: 4C, 2x2 latents packed per token)."""
    c = components.vae.config.latent_channels
    return 4 * c if components.family == "flux" else c


def has_switch(components) -> bool:
    """Whether the transformer has lotus's task-switch inputs (SD3, FLUX: in the pooled projection; PixArt, SANA:
    SWITCH_DIM constant input channels after [x_t, image])."""
    if components.family in CHANNEL_SWITCH:
        return inner(components.unet).config.in_channels == 2 * latent_inputs(components) + SWITCH_DIM
    return inner(components.unet).config.pooled_projection_dim == text_pooled_dim(components) + SWITCH_DIM


def _expand_patch_embed(transformer, mode: str, extra: int = 0) -> None:
    """Give the patch embedding 2C input channels ([x_t, image], marigold [image, x_t]) and ``extra`` more (lotus on
    PixArt / SANA: the task switch's planes), zero-initialised: instruct keeps the kernel on x_t and zeros the image
    half; marigold and lotus copy it into both halves and halve it."""
    owner = transformer.patch_embed if hasattr(transformer, "patch_embed") else transformer.pos_embed  # SANA's
    old = owner.proj
    c = old.in_channels
    n = 2 * c + extra
    new = torch.nn.Conv2d(n, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
    with torch.no_grad():
        new.weight.zero_()
        if mode == "instruct":
            new.weight[:, :c] = old.weight  # instruct: [x_t, image]
        else:
            new.weight[:, : 2 * c] = torch.cat([old.weight, old.weight], dim=1) * 0.5
        if old.bias is not None:
            new.bias.copy_(old.bias)
    owner.proj = new
    if transformer.config.get("out_channels") is None:  # the stock classes default out_channels to in_channels
        transformer.register_to_config(out_channels=c)
    transformer.register_to_config(in_channels=n)


def _expand_x_embedder(transformer, mode: str) -> None:
    """FLUX: the token embedding takes [packed x_t, packed image] (marigold: image first), 2 x 4C features, as
    ``_expand_patch_embed`` does for SD3's convolution."""
    old = transformer.x_embedder
    n = old.in_features
    new = torch.nn.Linear(2 * n, old.out_features)
    with torch.no_grad():
        if mode == "instruct":
            new.weight.zero_()
            new.weight[:, :n] = old.weight
        else:
            new.weight.copy_(torch.cat([old.weight, old.weight], dim=1) * 0.5)
        new.bias.copy_(old.bias)
    transformer.x_embedder = new
    transformer.register_to_config(in_channels=2 * n)


def _add_switch(transformer) -> None:
    """Lotus's task switch: SWITCH_DIM more inputs of the pooled projection, zero-initialised."""
    old = transformer.time_text_embed.text_embedder.linear_1
    new = torch.nn.Linear(old.in_features + SWITCH_DIM, old.out_features)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_features] = old.weight
        new.bias.copy_(old.bias)
    transformer.time_text_embed.text_embedder.linear_1 = new
    transformer.register_to_config(pooled_projection_dim=old.in_features + SWITCH_DIM)


def adapt(components, cfg: TrainConfig) -> None:
    """Adapt the transformer to ``cfg.mode`` (image channels; lotus: the switch). A transformer with 2C channels
    already is used as it is only if it is an rgbify run of the same mode."""
    t = components.unet
    c = latent_inputs(components)
    n = t.config.in_channels
    extra = SWITCH_DIM if components.family in CHANNEL_SWITCH and cfg.mode == "lotus" else 0
    if n == c:
        if components.family == "flux":
            _expand_x_embedder(t, cfg.mode)
        else:
            _expand_patch_embed(t, cfg.mode, extra)
    elif n == 2 * c or (n == 2 * c + SWITCH_DIM and components.family in CHANNEL_SWITCH):
        mode, whose = conventions_of(cfg.base_model)
        if mode != cfg.mode:
            raise UserError(
                f"--base-model {cfg.base_model}: its transformer takes {n} input channels and it is "
                f"{whose}; train it with --mode {mode}"
                if mode
                else f"--base-model {cfg.base_model}: its transformer takes {n} input channels but it is "
                f"{whose}, so its conventions are unknown; give a {c}-channel folder"
            )
    else:
        raise UserError(
            f"--base-model {cfg.base_model}: the transformer takes {n} input "
            f"channels; the VAE gives {c} (need {c}, or {2 * c} for an rgbify run)"
        )
    if cfg.mode == "lotus" and not has_switch(components):
        if components.family in CHANNEL_SWITCH:  # cannot happen: conventions_of refused the 2C folder above
            raise UserError(f"--base-model {cfg.base_model}: --mode lotus needs its task-switch channels")
        _add_switch(t)
    if components.family == "pixart":
        components.noise_scheduler.register_to_config(prediction_type=cfg.prediction_type)


# ------------------------------------------------------------------------------------------------------- latents


@torch.no_grad()
def encode(vae, x: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) uint8 or float in [-1,1] -> (latent mean - shift_factor) x scaling_factor, float32 (SD3's)."""
    x = to_unit(x.to(device=vae.device)).to(dtype=vae.dtype)
    out = vae.encode(x)
    z = out.latent if hasattr(out, "latent") else out.latent_dist.mode()  # DC-AE (SANA) is deterministic
    return ((z - (vae.config.get("shift_factor") or 0.0)) * vae.config.scaling_factor).float()


@torch.no_grad()
def decode(vae, z: torch.Tensor) -> torch.Tensor:
    """Normalised latent -> (B,3,H,W) float in [-1,1] (StableDiffusion3Pipeline's inverse)."""
    z = z / vae.config.scaling_factor + (vae.config.get("shift_factor") or 0.0)
    return vae.decode(z.to(vae.dtype)).sample.clamp(-1, 1)


# -------------------------------------------------------------------------------------------------------- prompts


class SD3Prompts:
    """Prompt -> (states, second) as the family's stock pipeline's ``encode_prompt`` makes them (it is called),
    cached per prompt (the text encoders are frozen). second: the pooled vector (SD3: CLIP-L + CLIP-G projections;
    FLUX: CLIP-L's pooled output) or the states' attention mask (PixArt: T5; SANA: Gemma-2, without its complex
    human instruction). SD3 states: 77 CLIP tokens (penultimate layers, zero-padded to the joint width) then 256 T5
    tokens (zeros without T5). Prompts longer than an encoder's window are cut, as the stock pipeline cuts them."""

    def __init__(self, components, max_cache: int = 8192):
        from diffusers import StableDiffusion3Pipeline

        self.family = components.family
        self.cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.max_cache = max_cache
        if self.family == "sd3":
            self.pipe = StableDiffusion3Pipeline(
                transformer=inner(components.unet),  # the pipeline only encodes prompts (trainer: DDP-wrapped)
                scheduler=components.noise_scheduler,
                vae=components.vae,
                text_encoder=components.text_encoder,
                tokenizer=components.tokenizer,
                text_encoder_2=components.text_encoder_2,
                tokenizer_2=components.tokenizer_2,
                text_encoder_3=components.text_encoder_3,
                tokenizer_3=components.tokenizer_3,
            )
        else:
            make = {"flux": _flux_pipeline, "pixart": _pixart_pipeline, "sana": _sana_pipeline}[self.family]
            self.pipe = make(components, inner(components.unet))

    def _encode(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.pipe.text_encoder.device
        if self.family == "flux":  # T5 states, CLIP's pooled output
            states, second, _ = self.pipe.encode_prompt(
                prompt=[prompt], prompt_2=None, device=device, max_sequence_length=FLUX_T5_TOKENS
            )
        elif self.family == "pixart":  # T5 states and their mask
            states, second, _, _ = self.pipe.encode_prompt(
                prompt=[prompt], do_classifier_free_guidance=False, device=device, max_sequence_length=PIXART_T5_TOKENS
            )
        elif self.family == "sana":  # Gemma-2 states and their mask
            states, second, _, _ = self.pipe.encode_prompt(
                prompt=[prompt],
                do_classifier_free_guidance=False,
                device=device,
                max_sequence_length=SANA_TOKENS,
                complex_human_instruction=None,
            )
        else:  # CLIP-L, CLIP-G (and T5) states, the two pooled projections
            states, _, second, _ = self.pipe.encode_prompt(
                prompt=[prompt],
                prompt_2=None,
                prompt_3=None,
                device=device,
                do_classifier_free_guidance=False,
                max_sequence_length=T5_TOKENS,
            )
        return states[0], second[0]

    @torch.no_grad()
    def one(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        if prompt in self.cache:
            return self.cache[prompt]
        out = self._encode(prompt)
        if len(self.cache) < self.max_cache:
            self.cache[prompt] = out
        return out

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [self.one(p) for p in prompts]
        return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])

    def conditioning(self, mode: str, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """marigold mode: the empty prompt for every item (Marigold's); otherwise the items' prompts."""
        return self([""] * len(prompts) if mode == "marigold" else prompts)


# ----------------------------------------------------------------------------------------------------- objective


def sample_sigmas(sched, cfg: TrainConfig, b: int, gen: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(timesteps, sigmas) of a batch, as diffusers' SD3 training scripts draw them: u from
    ``compute_density_for_timestep_sampling`` (logit-normal, mode or uniform), the index u x T into the training
    scheduler's shifted schedule."""
    from diffusers.training_utils import compute_density_for_timestep_sampling

    u = compute_density_for_timestep_sampling(
        cfg.timestep_sampling,
        b,
        logit_mean=cfg.logit_mean,
        logit_std=cfg.logit_std,
        mode_scale=cfg.mode_scale,
        device=device,
        generator=gen,
    )
    n = sched.config.num_train_timesteps
    idx = (u * n).long().clamp(0, n - 1)
    return sched.timesteps.to(device)[idx], sched.sigmas.to(device)[idx]


def _flux_pipeline(components, transformer):
    from diffusers import FluxPipeline

    return FluxPipeline(
        scheduler=components.noise_scheduler,
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        text_encoder_2=components.text_encoder_2,
        tokenizer_2=components.tokenizer_2,
        transformer=transformer,
    )


def _pixart_pipeline(components, transformer):
    from diffusers import PixArtSigmaPipeline

    return PixArtSigmaPipeline(
        tokenizer=components.tokenizer,
        text_encoder=components.text_encoder,
        vae=components.vae,
        transformer=transformer,
        scheduler=pixart_scheduler(components),
    )


def _sana_pipeline(components, transformer):
    from diffusers import SanaPipeline

    return SanaPipeline(
        tokenizer=components.tokenizer,
        text_encoder=components.text_encoder,
        vae=components.vae,
        transformer=transformer,
        scheduler=sana_scheduler(components),
    )


def sana_scheduler(components):
    """The scheduler SANA runs sample with and save (SANA's): DPM-Solver++ with flow sigmas, the training shift."""
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(
        num_train_timesteps=1000,
        use_flow_sigmas=True,
        prediction_type="flow_prediction",
        flow_shift=components.noise_scheduler.config.shift,
    )


def latent_input(mode: str, x, image, switch=None) -> torch.Tensor:
    """[x_t, image] (marigold [image, x_t]), then the lotus switch (B, SWITCH_DIM) as constant planes if given."""
    z = unet_input(mode, x, image)
    if switch is None:
        return z
    planes = switch.to(z.dtype)[:, :, None, None].expand(-1, -1, *z.shape[2:])
    return torch.cat([z, planes], dim=1)


def inner(transformer):
    """The diffusers model itself: a DDP wrapper's ``.module`` (it has no ``config`` or ``dtype``); FSDP2's
    fully_shard keeps the model object (its class becomes a subclass named FSDP<class>)."""
    return getattr(transformer, "module", transformer)


def model_class(transformer) -> str:
    """The diffusers class name of ``transformer``, under DDP or FSDP2 too."""
    return next(c.__name__ for c in type(inner(transformer)).__mro__ if c.__module__.startswith("diffusers"))


def _call_sana(transformer, mode: str, x, image, t, states, mask, switch=None):
    """SANA on [x_t, image(, switch)] with the Gemma states and their mask; timestep x timestep_scale
    (SanaPipeline's)."""
    m = inner(transformer)
    out = transformer(
        latent_input(mode, x, image, switch).to(m.dtype),
        encoder_hidden_states=states.to(m.dtype),
        encoder_attention_mask=mask,
        timestep=t * m.config.timestep_scale,
        return_dict=False,
    )[0]
    return out.float().chunk(2, dim=1)[0] if out.shape[1] == 2 * x.shape[1] else out.float()


def pixart_scheduler(components):
    """The scheduler PixArt runs sample with and save (PixArt-Sigma's): DPM-Solver++ on the training schedule."""
    from diffusers import DPMSolverMultistepScheduler

    config = components.noise_scheduler.config
    return DPMSolverMultistepScheduler.from_config(config, prediction_type=config.prediction_type)


def _call_pixart(transformer, mode: str, x, image, t, states, mask, switch=None):
    """PixArt on [x_t, image(, switch)] with the T5 states and their mask; the learned-sigma half of the output
    dropped (as PixArtSigmaPipeline drops it)."""
    dtype = inner(transformer).dtype
    out = transformer(
        latent_input(mode, x, image, switch).to(dtype),
        encoder_hidden_states=states.to(dtype),
        encoder_attention_mask=mask,
        timestep=t,
        added_cond_kwargs={"resolution": None, "aspect_ratio": None},
        return_dict=False,
    )[0]
    return out.chunk(2, dim=1)[0] if out.shape[1] == 2 * x.shape[1] else out


def _call_flux(transformer, mode: str, x, image, t, states, pooled):
    """FLUX on (B,C,H,W) latents: x_t and the image latent packed 2x2 per token (FluxPipeline's packing) and
    concatenated per token, position ids, the guidance input, timestep / 1000 (FluxPipeline's scale); the
    prediction unpacked to (B,C,H,W)."""
    from diffusers import FluxPipeline

    b, c, h, w = x.shape
    dtype = inner(transformer).dtype
    packed = [FluxPipeline._pack_latents(z.to(dtype), b, c, h, w) for z in (x, image)]
    tokens = torch.cat(packed[::-1] if IMAGE_FIRST[mode] else packed, dim=2)
    ids = FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, x.device, dtype)
    guidance = torch.full((b,), FLUX_GUIDANCE, device=x.device) if inner(transformer).config.guidance_embeds else None
    out = transformer(
        hidden_states=tokens,
        timestep=t / 1000,
        guidance=guidance,
        pooled_projections=pooled.to(dtype),
        encoder_hidden_states=states.to(dtype),
        txt_ids=torch.zeros(states.shape[1], 3, device=x.device),
        img_ids=ids,
        return_dict=False,
    )[0]
    return out.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def _call(transformer, mode: str, x, image, t, states, pooled, switch=None):
    """The transformer's prediction for x_t; ``switch``: lotus's (B, SWITCH_DIM) task switch or None (PixArt,
    SANA: input planes; SD3, FLUX: appended to the pooled vector)."""
    name = model_class(transformer)
    if name == "PixArtTransformer2DModel":
        return _call_pixart(transformer, mode, x, image, t, states, pooled, switch)
    if name == "SanaTransformer2DModel":
        return _call_sana(transformer, mode, x, image, t, states, pooled, switch)
    if switch is not None:
        pooled = torch.cat([pooled, switch.to(pooled.dtype)], dim=1)
    if name == "FluxTransformer2DModel":
        return _call_flux(transformer, mode, x, image, t, states, pooled)
    dtype = inner(transformer).dtype
    return transformer(
        hidden_states=unet_input(mode, x, image).to(dtype),
        timestep=t,
        encoder_hidden_states=states.to(dtype),
        pooled_projections=pooled.to(dtype),
        return_dict=False,
    )[0]


def switch_off(components, b: int, device) -> torch.Tensor | None:
    """The task switch set to "task" for a transformer that has one (lotus runs), else None."""
    return lotus_switch(b, False, device) if has_switch(components) else None


def lotus_timestep(components) -> float:
    """Lotus's one timestep, the end of the schedule: T for the flow families (sigma = 1), T-1 for PixArt's DDPM
    (its last timestep, the UNet's)."""
    n = float(components.noise_scheduler.config.num_train_timesteps)
    return n - 1 if components.family == "pixart" else n


def flow_step(
    components, prompts: SD3Prompts, cfg: TrainConfig, batch: dict, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of one micro-batch (mean, and per item on the device), as ``rgbify.train.step.train_step``."""
    from diffusers.training_utils import compute_loss_weighting_for_sd3

    t_model, sched, vae = components.unet, components.noise_scheduler, components.vae
    device = vae.device
    target, image = encode(vae, torch.cat([batch["target"], batch["image"]])).chunk(2)
    for i, task in enumerate(batch["task"]):
        if task == "generate":
            image[i].zero_()
    states, pooled = prompts.conditioning(cfg.mode, batch["prompt"])
    b = target.shape[0]
    noise = torch.randn(target.shape, generator=gen, device=device)
    weight = torch.ones(b, device=device)
    if cfg.mode == "lotus":
        t = torch.full((b,), lotus_timestep(components), device=device)
        start = torch.zeros_like(noise) if cfg.lotus_deterministic else noise
        x, img, goal, switch = start, image, target, lotus_switch(b, False, device)
        if cfg.detail_preserver:
            noise2 = torch.randn(target.shape, generator=gen, device=device)
            start2 = torch.zeros_like(noise2) if cfg.lotus_deterministic else noise2
            x, img, goal = torch.cat([x, start2]), torch.cat([image, image]), torch.cat([target, image])
            switch = torch.cat([switch, lotus_switch(b, True, device)])
            t, states, weight = torch.cat([t, t]), torch.cat([states, states]), torch.cat([weight, weight])
            pooled = torch.cat([pooled, pooled])
        pred = _call(t_model, cfg.mode, x, img, t, states, pooled, switch)
    else:
        if components.family == "pixart":  # diffusion (DDPM): t uniform, epsilon or v (PixArt-Sigma's epsilon)
            t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=gen, device=device)
            sigma = t.float() / sched.config.num_train_timesteps  # the noise level, for the annealed noise only
        else:
            t, sigma = sample_sigmas(sched, cfg, b, gen, device)
        if cfg.multi_res_noise:
            strength = torch.full((b,), cfg.multi_res_noise, device=device)
            if cfg.multi_res_noise_annealed:
                strength = strength * sigma
            noise = multi_res_noise(noise, strength, gen)
        s = sigma.view(-1, 1, 1, 1)
        noisy = sched.add_noise(target, noise, t) if components.family == "pixart" else (1.0 - s) * target + s * noise
        if cfg.mode == "instruct" and cfg.cond_dropout > 0:
            r = torch.rand(b, generator=gen, device=device)
            p = cfg.cond_dropout
            drop_text, drop_image = r < 2 * p, (r >= p) & (r < 3 * p)  # as the UNet's instruct mode
            empty, empty_pooled = prompts([""] * b)
            states = torch.where(drop_text[:, None, None], empty, states)
            pooled = torch.where(drop_text[:, None], empty_pooled, pooled)
            image = torch.where(drop_image[:, None, None, None], torch.zeros_like(image), image)
        if components.family == "pixart":
            goal = noise if sched.config.prediction_type == "epsilon" else sched.get_velocity(target, noise, t)
        else:
            goal = noise - target
            weight = compute_loss_weighting_for_sd3(cfg.loss_weighting, sigma).float()
        switch = switch_off(components, b, device)  # a lotus-adapted transformer in another mode: switch off
        pred = _call(t_model, cfg.mode, noisy, image, t, states, pooled, switch)
    per_item = F.mse_loss(pred.float(), goal.float(), reduction="none").mean(dim=(1, 2, 3)) * weight
    return per_item.mean(), per_item[:b].detach()


# ------------------------------------------------------------------------------------------------------ sampling


def sampling_scheduler(components) -> FlowMatchEulerDiscreteScheduler:
    """A fresh copy of the run's flow-matching Euler scheduler (set_timesteps changes a scheduler's state)."""
    return FlowMatchEulerDiscreteScheduler.from_config(components.noise_scheduler.config)


@torch.no_grad()
def sample_latent(
    components,
    cfg: TrainConfig,
    img: torch.Tensor,
    states,
    pooled,
    gen: torch.Generator,
    steps: int,
    guidance: tuple | None = None,
) -> torch.Tensor:
    """The drawn target latent. lotus: one x0 call at t = T. marigold/instruct: Euler from noise over ``steps``
    steps of the flow scheduler (StableDiffusion3Pipeline's loop); ``guidance``: None or (empty states, empty
    pooled, text scale, image scale), InstructPix2Pix's three-way guidance."""
    t_model = components.unet
    device = img.device
    x = torch.randn(img.shape, generator=gen, device=device)
    b = img.shape[0]
    switch = switch_off(components, b, device)
    if cfg.mode == "lotus":
        if cfg.lotus_deterministic:
            x = torch.zeros_like(x)
        t = torch.full((b,), lotus_timestep(components), device=device)
        return _call(t_model, cfg.mode, x, img, t, states, pooled, switch).float()
    sched = {"pixart": pixart_scheduler, "sana": sana_scheduler}.get(components.family, sampling_scheduler)(components)
    if components.family in ("pixart", "sana"):  # PixArtSigmaPipeline's / SanaPipeline's DPM-Solver++ loop
        sched.set_timesteps(steps, device=device)
        x = x * sched.init_noise_sigma
    elif sched.config.use_dynamic_shifting:  # FLUX: FluxPipeline's sigmas and resolution-dependent shift
        import numpy as np
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        c = sched.config
        mu = calculate_shift(
            (img.shape[2] // 2) * (img.shape[3] // 2),
            c.base_image_seq_len,
            c.max_image_seq_len,
            c.base_shift,
            c.max_shift,
        )
        sched.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), device=device, mu=mu)
    else:
        sched.set_timesteps(steps, device=device)
    for t in sched.timesteps:
        if guidance is None:
            v = _call(t_model, cfg.mode, x, img, t.expand(b), states, pooled, switch)
        else:
            empty, empty_pooled, tg, ig = guidance
            full, only_img, none = _call(
                t_model,
                cfg.mode,
                torch.cat([x, x, x]),
                torch.cat([img, img, torch.zeros_like(img)]),
                t.expand(3 * b),
                torch.cat([states, empty, empty]),
                torch.cat([pooled, empty_pooled, empty_pooled]),
                None if switch is None else torch.cat([switch, switch, switch]),
            ).chunk(3)
            v = none + tg * (full - only_img) + ig * (only_img - none)
        x = sched.step(v.float(), t, x).prev_sample
    return x


@torch.no_grad()
def sample(
    components,
    cfg: TrainConfig,
    image: torch.Tensor,
    prompt_list: list[str],
    *,
    prompts=None,
    steps: int | None = None,
    seed: int = 0,
    text_guidance: float = 1.0,
    image_guidance: float = 1.0,
) -> torch.Tensor:
    """As ``rgbify.train.pipeline.sample`` for the transformer family: uint8 (B,H,W,3) on the CPU."""
    device = components.vae.device
    prompts = prompts or SD3Prompts(components)
    img = encode(components.vae, image)
    gen = torch.Generator(device=device).manual_seed(seed)
    states, pooled = prompts.conditioning(cfg.mode, prompt_list)
    guidance = None
    if cfg.mode == "instruct" and (text_guidance != 1.0 or image_guidance != 1.0):
        guidance = (*prompts([""] * img.shape[0]), text_guidance, image_guidance)
    z = sample_latent(components, cfg, img, states, pooled, gen, steps or cfg.inference_steps, guidance)
    rgb = decode(components.vae, z).float()
    return ((rgb.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


# ------------------------------------------------------------------------------------------------------- export


def text_to_image(components, transformer, mode: str):
    """The C-channel text-to-image transformer in ``transformer``: the x_t half of the patch embedding, the image
    half dropped. For an instruct run this is the trained model on generation items (their image latent is zero).
    Marigold and lotus runs train no generation: theirs is the same slice (lotus: without the switch's columns),
    loadable but not a text-to-image model they were trained to be."""
    c = latent_inputs(components)
    config = dict(transformer.config)
    config["in_channels"] = c
    switch = has_switch(components) and components.family not in CHANNEL_SWITCH  # the pooled projection's
    if switch:
        config["pooled_projection_dim"] -= SWITCH_DIM
    out = type(transformer).from_config({k: v for k, v in config.items() if not k.startswith("_")})
    state = {k: v.detach().clone() for k, v in transformer.state_dict().items()}
    key = PATCH_EMBED[components.family] + ".weight"
    w = state[key]
    state[key] = w[:, c : 2 * c] if IMAGE_FIRST[mode] else w[:, :c]  # without the switch's channels (PixArt, SANA)
    if switch:
        k = "time_text_embed.text_embedder.linear_1.weight"
        state[k] = state[k][:, : config["pooled_projection_dim"]]
    out.load_state_dict(state)
    return out if out.dtype == transformer.dtype else out.to(transformer.dtype)


def export(components, transformer, folder: Path, cfg: TrainConfig) -> None:
    """Write a StableDiffusion3Pipeline folder (transformer/: ``text_to_image``) plus conditioned/ into ``folder``."""
    from diffusers import StableDiffusion3Pipeline

    if components.family in ("flux", "pixart", "sana"):  # a FluxPipeline / PixArtSigmaPipeline / SanaPipeline folder
        make = {"flux": _flux_pipeline, "pixart": _pixart_pipeline, "sana": _sana_pipeline}[components.family]
        make(components, text_to_image(components, transformer, cfg.mode)).save_pretrained(folder)
        transformer.save_pretrained(folder / CONDITIONED)
        return
    pipe = StableDiffusion3Pipeline(
        transformer=text_to_image(components, transformer, cfg.mode),
        scheduler=components.noise_scheduler,
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        text_encoder_2=components.text_encoder_2,
        tokenizer_2=components.tokenizer_2,
        text_encoder_3=components.text_encoder_3,
        tokenizer_3=components.tokenizer_3,
    )
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity_error()  # T5 dropped: diffusers warns that None components "cannot be saved" (loading passes
    try:  # text_encoder_3=None, tokenizer_3=None; docs/training.md)
        pipe.save_pretrained(folder)
    finally:
        dlog.set_verbosity(level)
    transformer.save_pretrained(folder / CONDITIONED)
