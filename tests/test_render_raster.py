"""The pyrender (EGL) raster backend against Cycles, and GPU Cycles where a GPU exists."""

from __future__ import annotations

import numpy as np
import pytest
from render_scenes import oracle_scene, tiny_scene

from rgbify.render import render


def _egl_available() -> bool:
    import os

    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        import pyrender

        r = pyrender.OffscreenRenderer(4, 4)
        r.delete()
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def scene():
    return oracle_scene(96, 72, samples=1)


@pytest.mark.slow
def test_raster_agrees_with_cycles(scene):
    if not _egl_available():
        pytest.skip("pyrender cannot open an EGL context here")
    pytest.importorskip("bpy")
    raster = render(scene, backend="raster")
    cycles = render(scene)
    assert raster.backend == "raster" and raster.rgb.shape == cycles.rgb.shape
    assert (raster.instance == cycles.instance).mean() >= 0.999
    valid = ~raster.edge & ~cycles.edge & np.isfinite(cycles.depth)
    assert valid.sum() > 0.5 * np.isfinite(cycles.depth).sum()
    rel = np.abs(raster.depth[valid].astype(np.float64) - cycles.depth[valid]) / cycles.depth[valid]
    assert (rel <= 1e-4).mean() >= 0.999, np.quantile(rel, [0.5, 0.999, 1.0])
    assert np.array_equal(np.isfinite(raster.depth), raster.instance > 0)
    ang = np.degrees(np.arccos(np.clip(np.sum(raster.normals * cycles.normals, axis=-1), -1, 1)))[valid]
    assert np.quantile(ang, 0.99) < 2.0
    assert [d["pixel_count"] for d in raster.instances] == [int((raster.instance == d["id"]).sum())
                                                            for d in raster.instances]


@pytest.mark.gpu
def test_gpu_cycles_matches_cpu():
    pytest.importorskip("bpy")
    from rgbify.render.cycles import gpu_devices

    if gpu_devices() is None:
        pytest.skip("Blender finds no CUDA/OptiX GPU")
    spec = tiny_scene(width=32, height=24)
    gpu = render(spec, device="gpu")
    cpu = render(spec)
    assert (gpu.instance == cpu.instance).mean() >= 0.99
    both = np.isfinite(cpu.depth) & (gpu.instance == cpu.instance)
    np.testing.assert_allclose(gpu.depth[both], cpu.depth[both], rtol=1e-4)


def test_gpu_without_a_gpu_is_a_clear_error():
    pytest.importorskip("bpy")
    from rgbify.render import SceneError
    from rgbify.render.cycles import gpu_devices

    if gpu_devices():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SceneError, match="no CUDA or OptiX"):
        render(tiny_scene(), device="gpu")
