"""Elementwise maths whose results do not depend on the CPU.

numpy 1.26 computes exp, log, log2, tan, arccos, arcsin, arctan, arctan2, power and the hyperbolic functions with
AVX-512 kernels where the CPU has them, and those round a few ulp differently from its AVX2 and baseline kernels
(sqrt, sin, cos, hypot and arithmetic agree). One ulp in a drawn size or angle changes a scene's spec hash and can
flip a placement, so the same (recipe, seed, index) gave a different scene on an AVX-512 machine. The sampler
calls the C library's functions instead: ``math.*`` on scalars, these on arrays (one element at a time, which is
fine at the sizes the sampler uses). tests/test_scenes.py checks that specs are the same with numpy's AVX-512 and
AVX2 kernels switched off."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def _elementwise(f: Callable[..., float], nin: int) -> Callable[..., np.ndarray]:
    ufunc = np.frompyfunc(f, nin, 1)

    def call(*args: np.ndarray | float) -> np.ndarray:
        return np.asarray(ufunc(*(np.asarray(a, dtype=np.float64) for a in args)), dtype=np.float64)

    call.__doc__ = f"``math.{f.__name__}`` on float64 arrays (same result on every CPU)."
    return call


arctan2 = _elementwise(math.atan2, 2)
exp = _elementwise(math.exp, 1)
log2 = _elementwise(math.log2, 1)
power = _elementwise(math.pow, 2)
