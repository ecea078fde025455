"""Marigold's test-time ensembling (rgbify.train.ensemble) against an independent NumPy version of its cost, and
the inference path (rgbify.train.infer): aspect ratio kept, padding to the model's stride, answer resized back."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

torch = pytest.importorskip("torch")

import rgbify.encode  # noqa: E402
import rgbify.train.infer as infer  # noqa: E402
from rgbify.train.ensemble import align_members, ensemble_cost, ensemble_depth, ensemble_normals  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lower_median(x: np.ndarray) -> np.ndarray:
    return np.sort(x, axis=0)[(len(x) - 1) // 2]


def reference_cost(a: np.ndarray, p: np.ndarray) -> float:
    """Marigold's ensembling cost written from its description (a loop over pairs, as its code)."""
    n = len(a)
    x = a * p[:n, None] + p[n:, None]
    pairs = sum(np.sqrt(np.mean((x[i] - x[j]) ** 2)) for i in range(n) for j in range(i + 1, n))
    m = _lower_median(x)
    return pairs + 0.02 * (abs(m.min()) + abs(1 - m.max()))


def reference_affine_ensemble(members: np.ndarray) -> np.ndarray:
    """Marigold's affine ensemble: per-member scale and shift by BFGS on the cost, median, normalised to [0, 1]."""
    n = len(members)
    a = members.reshape(n, -1).astype(np.float64)

    def aligned(p):
        return a * p[:n, None] + p[n:, None]

    def cost(p):
        return reference_cost(a, p)

    s = 1 / (a.max(1) - a.min(1))
    res = scipy.optimize.minimize(
        cost, np.concatenate([s, -s * a.min(1)]), method="BFGS", tol=1e-6, options={"maxiter": 50}
    )
    out = _lower_median(aligned(res.x))
    return ((out - out.min()) / (out.max() - out.min())).reshape(members.shape[1:])


def _members(n=4, seed=0, noise=0.02):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:20, 0:30] / 30
    base = 1 + 3 * xx + np.sin(6 * yy)
    scales, shifts = rng.uniform(0.5, 2, n), rng.uniform(-1, 1, n)
    return base, np.stack(
        [s * base + t + noise * rng.standard_normal(base.shape) for s, t in zip(scales, shifts, strict=True)]
    )


def _affine_residual(x: np.ndarray, base: np.ndarray) -> float:
    s, t = np.polyfit(x.ravel(), base.ravel(), 1)
    return float(np.sqrt(np.mean((s * x + t - base) ** 2)) / np.ptp(base))


def test_ensemble_cost_is_marigolds():
    _, members = _members(n=5)
    a = members.reshape(5, -1)
    for seed in range(3):
        p = np.random.default_rng(seed).normal(size=10)
        ours = ensemble_cost(align_members(torch.from_numpy(a), torch.from_numpy(p), affine=True))
        assert ours == pytest.approx(reference_cost(a, p), rel=1e-12)


def test_affine_ensemble_matches_an_independent_implementation():
    base, members = _members(noise=0.002)
    ours = ensemble_depth(torch.from_numpy(members), "affine").numpy()  # float64 in, float64 out
    ref = reference_affine_ensemble(members)
    assert ours.min() == pytest.approx(0.0) and ours.max() == pytest.approx(1.0)
    assert np.abs(ours - ref).max() < 1e-3
    assert _affine_residual(ours, base) < 0.01  # the members' scale and shift are undone
    as_float32 = ensemble_depth(torch.from_numpy(members).float(), "affine").numpy()
    assert _affine_residual(as_float32, base) < 0.01


def test_median_ensemble_shrugs_off_an_outlier_member():
    base, members = _members(n=5, noise=0.0)
    members[2] = np.random.default_rng(1).random(base.shape) * 10  # one draw gone wrong
    median = ensemble_depth(torch.from_numpy(members).float(), "affine").numpy()
    mean = ensemble_depth(torch.from_numpy(members).float(), "affine", reduction="mean").numpy()
    assert _affine_residual(median, base) < 0.02 < _affine_residual(mean, base)


def test_metric_ensemble_is_the_median_in_metres_and_keeps_nan():
    members = np.array([[[1.0, 2.0]], [[3.0, np.nan]], [[2.0, 5.0]], [[10.0, 1.0]]])
    out = ensemble_depth(torch.from_numpy(members), "none").numpy()
    assert out[0, 0] == 2.0  # torch's median of 1, 2, 3, 10: the lower middle value, as Marigold
    assert np.isnan(out[0, 1])  # one member without a number: no number
    single = ensemble_depth(torch.from_numpy(members[:1]), "affine").numpy()
    np.testing.assert_array_equal(single, members[0])  # one draw: unchanged, as Marigold


def test_normals_ensemble_picks_the_member_closest_to_the_mean():
    up, right, tilt = np.array([0, -1.0, 0]), np.array([1.0, 0, 0]), np.array([0.3, -1.0, 0])
    tilt /= np.linalg.norm(tilt)
    members = np.stack([up, up, right, tilt])[:, None, None, :]
    out = ensemble_normals(torch.from_numpy(members)).numpy()
    mean = (2 * up + right + tilt) / np.linalg.norm(2 * up + right + tilt)
    want = members[np.argmax([m[0, 0] @ mean for m in members]), 0, 0]
    np.testing.assert_allclose(out[0, 0], want)


@pytest.mark.parametrize("hw", [(30, 80), (90, 40), (48, 64)])
def test_images_keep_their_aspect_ratio_and_answers_come_back_at_their_size(monkeypatch, hw):
    seen = []

    def fake_sample(components, cfg, image, prompt_list, **kw):  # the model draws its input back
        seen.append(tuple(image.shape))
        return image.permute(0, 2, 3, 1).contiguous()

    monkeypatch.setattr(infer, "sample", fake_sample)
    monkeypatch.setattr(rgbify.encode, "decode_target", lambda rgb, p: rgb[..., 0].astype(np.float32) + 1)
    run = type("Run", (), {"components": None, "cfg": None, "prompts": None})()
    monkeypatch.setattr(infer, "model_stride", lambda components: 16)
    h, w = hw
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 200, w).astype(np.uint8)[None, :]  # a left-to-right ramp
    out = infer.predict_measurement(run, "depth", rgb, "p", {}, processing_res=64, out_hw=(h, w), ensemble=2)
    ph, pw = infer.processing_size((h, w), 64)
    short, exact = (pw, w * 64 / h) if h >= w else (ph, h * 64 / w)
    assert max(ph, pw) == 64 and abs(short - exact) < 1  # the long side at 64, the aspect ratio kept
    assert seen == [(2, 3, ph + (-ph % 16), pw + (-pw % 16))]  # padded to the stride, not squashed
    assert out.shape == (h, w)
    np.testing.assert_allclose(out[h // 2], rgb[h // 2, :, 0] + 1.0, atol=6)  # the ramp comes back in place
