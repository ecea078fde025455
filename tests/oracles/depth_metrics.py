"""The depth metrics of REFERENCES.md in plain NumPy on already-scored pixels: the independent twin of
rgbify.train.metrics that the benchmark tests and benchmarks/bench_eval_reference.py compare against."""

from __future__ import annotations

import numpy as np


def depth_formulas(p: np.ndarray, g: np.ndarray) -> dict[str, float]:
    """Metrics of prediction ``p`` against ground truth ``g`` (1-D arrays of the scored pixels, metres)."""
    e = np.log(p) - np.log(g)
    r = np.maximum(p / g, g / p)
    return {
        "abs_rel": np.mean(np.abs(p - g) / g),
        "sq_rel": np.mean((p - g) ** 2 / g),
        "rmse": np.sqrt(np.mean((p - g) ** 2)),
        "rmse_log": np.sqrt(np.mean(e**2)),
        "log10": np.mean(np.abs(np.log10(p) - np.log10(g))),
        "delta1": np.mean(r < 1.25),
        "delta2": np.mean(r < 1.25**2),
        "delta3": np.mean(r < 1.25**3),
        "i_rmse": np.sqrt(np.mean((1 / p - 1 / g) ** 2)),
        "silog": 100 * np.sqrt(np.mean(e**2) - np.mean(e) ** 2),
    }
