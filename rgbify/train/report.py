"""Metric reports: a dict of metric groups written as JSON and as Markdown tables. Imports no torch."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rgbify.fileio import publishing


def markdown_table(metrics: dict) -> str:
    """One Markdown table per task: metric names as columns."""
    lines = []
    for task, vals in metrics.items():
        keys = list(vals)
        lines += [f"### {task}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        cells = [f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v) for v in vals.values()]
        lines += ["| " + " | ".join(cells) + " |", ""]
    return "\n".join(lines)


def write_report(metrics: dict, out_json: Path, header: str = "") -> tuple[Path, Path]:
    """Write metrics as JSON and a Markdown table next to it (same stem, .md); atomic renames."""
    out_json.parent.mkdir(parents=True, exist_ok=True)
    md = out_json.with_suffix(".md")
    for path, text in ((out_json, json.dumps(metrics, indent=1)), (md, header + markdown_table(metrics))):
        with publishing(path) as tmp:
            tmp.write_text(text)
    return out_json, md
