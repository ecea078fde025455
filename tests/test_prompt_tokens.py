"""Prompts within CLIP's 77-token window, measured with CLIP's real BPE vocabulary (the clip-anytorch wheel's
bpe_simple_vocab_16e6.txt.gz through rgbify.train.tokens): every depth and normals prompt, every compact semantic
prompt of up to COMPACT_MAX_CLASSES classes of rgbify's vocabulary in any palette colours, every compact instance
prompt; a scene with more classes is split (rgbify export)."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest

pytest.importorskip("transformers")

from rgbify.encode import COMPACT_MAX_CLASSES, PALETTE, decode_target, make_task_target  # noqa: E402
from rgbify.encode.codecs import COLORMAPS  # noqa: E402
from rgbify.encode.errors import CodecInputError  # noqa: E402
from rgbify.encode.labels import color_name  # noqa: E402
from rgbify.encode.prompts import (  # noqa: E402
    COMPACT_SEMANTIC_TEMPLATES,
    DEPTH_TEMPLATES,
    INSTANCE_TEMPLATES,
    NORMALS_TEMPLATES,
    PROMPT_FORMATS,
    format_mapping,
    instance_prompt,
    semantic_prompt,
)
from rgbify.encode.tasks import task_prompt  # noqa: E402
from rgbify.scenes import CLASSES  # noqa: E402
from rgbify.train.tokens import CLIP_WINDOW, clip_tokenizer, token_count  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return clip_tokenizer()


def test_the_tokenizer_is_clips(tok):
    """CLIP's ids (the reference encoding of OpenAI's CLIP README example, and its vocabulary size)."""
    assert len(tok) == 49408
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok("a diagram").input_ids == [49406, 320, 22697, 49407]
    assert token_count(tok, "traffic_sign chartreuse") == 2 + 3 + 3  # words split at "_", "chartreuse" 3 pieces


def test_depth_and_normals_prompts_fit(tok):
    texts = [
        t.format(d_max=1000.0, gamma=0.5, cmap=c, near="dark purple", far="pale yellow")
        for templates in DEPTH_TEMPLATES.values()
        for t in templates
        for c in COLORMAPS
    ]
    texts += [t.format(x="= facing left", xdir="left", xname="left") for t in NORMALS_TEMPLATES]
    counts = [token_count(tok, t) for t in texts]
    assert max(counts) <= CLIP_WINDOW, max(zip(counts, texts, strict=True))


def _cost(tok, text):
    return len(tok(text, add_special_tokens=False).input_ids)


def test_compact_semantic_prompts_fit_for_any_classes_and_colours(tok):
    """CLIP splits words and punctuation before BPE, so a compact prompt's length is the sum of its parts: the
    costliest COMPACT_MAX_CLASSES class names in the costliest palette colours are its worst case (checked against
    direct counts of random prompts). The worst case fits; the drawn formats overflow with as many classes."""
    names = sorted(CLASSES, key=lambda n: _cost(tok, n), reverse=True)[:COMPACT_MAX_CLASSES]
    colors = sorted((c.rgb for c in PALETTE), key=lambda c: _cost(tok, color_name(c)), reverse=True)
    colors = colors[:COMPACT_MAX_CLASSES]
    worst = [
        token_count(tok, t.format(mapping=format_mapping(names, colors, "compact"))) for t in COMPACT_SEMANTIC_TEMPLATES
    ]
    assert max(worst) <= CLIP_WINDOW and max(worst) > CLIP_WINDOW - 15  # tight: one class more would not fit

    rng = np.random.default_rng(0)
    for _ in range(100):
        k = int(rng.integers(1, COMPACT_MAX_CLASSES + 1))
        cls = [(int(i) + 1, CLASSES[i]) for i in rng.choice(len(CLASSES), k, replace=False)]
        cols = [PALETTE[i].rgb for i in rng.choice(len(PALETTE), k, replace=False)]
        text, params = semantic_prompt(cls, cols, rng, "compact")
        n = token_count(tok, text)
        template = next(t for t in COMPACT_SEMANTIC_TEMPLATES if text.startswith(t.split("{")[0]))
        parts = 2 + _cost(tok, template.replace("{mapping}", ""))
        parts += sum(_cost(tok, name) + _cost(tok, color_name(c)) for (_, name), c in zip(cls, cols, strict=True))
        assert n == parts + (k - 1)  # the k - 1 commas
        assert n <= max(worst)
        assert params["format"] == "compact" and [c["name"] for c in params["classes"]] == [c for _, c in cls]

    cls = [(CLASSES.index(n) + 1, n) for n in names]  # the worst case above, in every drawn format
    cols = list(colors)
    drawn = {
        fmt: token_count(tok, semantic_prompt(cls, cols, np.random.default_rng(0), fmt)[0]) for fmt in PROMPT_FORMATS
    }
    assert min(drawn.values()) > CLIP_WINDOW, drawn  # why the compact format exists
    with pytest.raises(CodecInputError, match=f"at most {COMPACT_MAX_CLASSES} classes .*several prompts"):
        semantic_prompt([*cls, (17, "rock")], [*cols, PALETTE[16].rgb], None, "compact")


def test_compact_instance_prompts_fit(tok):
    longest = max(CLASSES, key=lambda n: _cost(tok, n))
    counts = []
    for variant, color in itertools.product(INSTANCE_TEMPLATES, PALETTE):
        for seed in range(6):  # the templates
            text, _ = instance_prompt(
                1, longest, variant, {1: color.rgb}, color.rgb, False, np.random.default_rng(seed), "compact"
            )
            counts.append(token_count(tok, text))
    assert max(counts) <= CLIP_WINDOW
    text, _ = task_prompt("instance", np.random.default_rng(0), ["chair"], prompt_format="compact")
    assert token_count(tok, text) <= CLIP_WINDOW and not re.search(r"\(\d|#|\[\d", text)  # a colour by name


def test_a_compact_target_asks_for_a_subset_that_fits_and_decodes(tok):
    """A scene showing 30 classes: make_task_target with the compact format asks for 14 of them (the rest black),
    in a prompt within 77 tokens, and the target decodes back to those classes; ``semantic_classes`` picks them."""
    semantic = np.tile(np.arange(1, 31, dtype=np.int32), (12, 1))
    gt = {"semantic": semantic, "class_names": list(CLASSES)}
    target, prompt, params = make_task_target("semantic", gt, np.random.default_rng(1), prompt_format="compact")
    asked = sorted(c["index"] for c in params["classes"])
    assert len(asked) == COMPACT_MAX_CLASSES and token_count(tok, prompt) <= CLIP_WINDOW
    decoded = decode_target(target, params)
    assert np.array_equal(decoded, np.where(np.isin(semantic, asked), semantic, 0))
    group = [3, 7, 29]
    _, _, params = make_task_target(
        "semantic", gt, np.random.default_rng(1), prompt_format="compact", semantic_classes=group
    )
    assert sorted(c["index"] for c in params["classes"]) == group
    with pytest.raises(CodecInputError, match="prompt_format 'tiny'"):
        make_task_target("semantic", gt, np.random.default_rng(1), prompt_format="tiny")


def test_a_run_can_train_on_compact_prompts(tmp_path, tok):
    """--prompt-format compact: the run's items (TaskDataset through build_data) ask in compact prompts that fit,
    a scene of 21 classes for 14 of them; predict's prompt for more than 14 classes is one line asking to split."""
    from types import SimpleNamespace

    from rgbify.errors import UserError
    from rgbify.train.config import make_config
    from rgbify.train.data import build_data
    from rgbify.train.predict import run_prompt
    from tests.dataset_fakes import fake_dataset
    from tests.test_export_hf import N_CLASSES, _sample

    ds = fake_dataset(tmp_path, n=2, shard_size=2, h=8, w=2 * N_CLASSES, classes=CLASSES, make_sample=_sample)
    cfg = make_config(
        {
            "data": str(ds),
            "out": str(tmp_path / "run"),
            "resolution": 16,
            "tasks": ("semantic",),
            "prompt_format": "compact",
        }
    )
    assert cfg.target_options() == {"prompt_format": "compact"}
    data = build_data(cfg, split="all", generation_ratio=0.0)
    items = [data[i] for i in range(len(data))]
    assert len(items) == 2
    for it in items:
        assert token_count(tok, it["prompt"]) <= CLIP_WINDOW
        assert json.loads(it["decode"])["format"] == "compact"
    assert max(len(json.loads(it["decode"])["classes"]) for it in items) == COMPACT_MAX_CLASSES  # 14 of 21
    prompt, _ = run_prompt(SimpleNamespace(cfg=cfg), "semantic", list(CLASSES[:COMPACT_MAX_CLASSES]))
    assert token_count(tok, prompt) <= CLIP_WINDOW
    with pytest.raises(UserError, match=f"at most {COMPACT_MAX_CLASSES} classes") as e:
        run_prompt(SimpleNamespace(cfg=cfg), "semantic", list(CLASSES[: COMPACT_MAX_CLASSES + 1]))
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="prompt.format"):
        make_config({"prompt_format": "tiny"})


def test_flow_prompts_fit(tok):
    from rgbify.encode.prompts import FLOW_TEMPLATES

    # the longest numbers the codec accepts (max_flow and scale up to 1e5 px, 16 folds; %g keeps 6 digits)
    texts = [t.format(max_flow=99999.5, scale=12345.6, fine=16) for t in FLOW_TEMPLATES]
    counts = [token_count(tok, t) for t in texts]
    assert max(counts) <= CLIP_WINDOW, max(zip(counts, texts, strict=True))
