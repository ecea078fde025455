"""Prompt lengths in CLIP tokens (CLIP's BPE vocabulary, rgbify.train.tokens) for each class colour format.

Semantic prompts of a dataset's samples (``--data DIR``: every class each sample shows, as make_task_target asks),
or of ``--n`` random scenes showing 1 to 26 classes of rgbify's vocabulary; the compact format as rgbify export
writes it (more than 14 classes split into several prompts). Prints, per format, the median and largest length and
the share of prompts over 77 tokens (the part a stock pipeline cuts off).

    python benchmarks/bench_prompt_tokens.py [--data DIR] [--n 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rgbify.encode import COMPACT_MAX_CLASSES, PALETTE, PROMPT_FORMAT_CHOICES  # noqa: E402
from rgbify.encode.prompts import semantic_prompt  # noqa: E402
from rgbify.scenes import CLASSES  # noqa: E402
from rgbify.train.tokens import CLIP_WINDOW, clip_tokenizer, token_count  # noqa: E402


def scenes(args) -> list[list[str]]:
    """The class names each scene shows."""
    if args.data:
        from rgbify.datasets.storage.reader import DatasetReader

        reader = DatasetReader(args.data)
        try:
            return [
                [reader.classes[c - 1] for c in np.unique(reader.read(i)["semantic"]) if c > 0] for i in reader.indices
            ]
        finally:
            reader.close()
    rng = np.random.default_rng(args.seed)
    return [list(rng.choice(CLASSES, int(rng.integers(1, len(PALETTE) + 1)), replace=False)) for _ in range(args.n)]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    tok = clip_tokenizer()
    rng = np.random.default_rng(args.seed)
    counts: dict[str, list[int]] = {f: [] for f in PROMPT_FORMAT_CHOICES}
    shown = scenes(args)
    for names in shown:
        names = names[: len(PALETTE)]
        parts = -(-len(names) // COMPACT_MAX_CLASSES)  # compact prompts the export writes for the scene
        for fmt in PROMPT_FORMAT_CHOICES:
            groups = [names[k::parts] for k in range(parts)] if fmt == "compact" else [names]
            for group in groups:
                cls = list(enumerate(group, start=1))
                colors = [PALETTE[i].rgb for i in rng.choice(len(PALETTE), len(group), replace=False)]
                counts[fmt].append(token_count(tok, semantic_prompt(cls, colors, rng, fmt)[0]))
    result = {
        "scenes": len(shown),
        "median_classes": float(np.median([len(s) for s in shown])),
        "formats": {
            f: {
                "prompts": len(c),
                "median_tokens": float(np.median(c)),
                "max_tokens": int(max(c)),
                "over_77": round(float(np.mean(np.array(c) > CLIP_WINDOW)), 3),
            }
            for f, c in counts.items()
        },
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
