"""Workers inside a standalone Blender binary (`--blender PATH`, rgbify.render.blender_boot).

- With a real Blender >= 4.2 on PATH (`blender`, or RGBIFY_TEST_BLENDER=/path/to/blender): a 2-sample build with
  --blender equals the bpy-module build sample by sample. Skipped otherwise (no such binary on the machine these
  tests were written on; see docs/scaling.md).
- Always (with the bpy module): the same through a stand-in "blender" executable that behaves as Blender does
  on the command line: it prints a banner on stdout, ignores PYTHONPATH (python -I), answers --version, and runs
  --python-expr in a Python that has bpy. This checks the boot code, the reply pipe and the version gate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from render_scenes import tiny_scene

import rgbify
from rgbify.datasets.storage.reader import DatasetReader
from rgbify.render.blender_boot import MIN_VERSION, blender_version, boot_code
from rgbify.render.worker import RenderWorker

pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

ROOT = Path(rgbify.__file__).resolve().parents[1]
TINY = ["--resolution", "16x12", "--samples", "2", "--shard-size", "2", "--quiet", "--no-preview", "--workers", "1"]
FIELDS = ("rgb", "depth", "normals", "instance", "semantic", "edge", "K", "world_from_camera", "spec", "instances")


def fake_blender(folder: Path, version: str = "4.5.0") -> Path:
    """An executable that acts like `blender` on the command line, running Python with the bpy module."""
    path = folder / f"blender-{version}"
    path.write_text(textwrap.dedent(f"""\
        #!{sys.executable} -I
        import sys
        print("Blender {version} (stand-in for tests)")
        print("Read prefs: (factory startup)")
        sys.stdout.flush()
        args = sys.argv[1:]
        if "--version" in args:
            sys.exit(0)
        assert "--background" in args and "--factory-startup" in args and "--python-exit-code" in args, args
        code = args[args.index("--python-expr") + 1]
        exec(compile(code, "<python-expr>", "exec"), {{"__name__": "__main__"}})
        """))
    path.chmod(0o755)
    return path


def real_blender() -> str | None:
    path = os.environ.get("RGBIFY_TEST_BLENDER") or shutil.which("blender")
    if not path:
        return None
    version = blender_version(path)
    return path if version and version[:2] >= MIN_VERSION else None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def rgbify_run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "rgbify", *args], env=_env(), cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"rgbify {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr[-3000:]}")
    return p


def samples(d: Path) -> dict[int, dict]:
    r = DatasetReader(d)
    out = {i: r.read(i) for i in r.indices}
    r.close()
    return out


def test_boot_code_puts_rgbify_first():
    code = boot_code("/opt/rgbify-src", ["/venv/site-packages"])
    assert "sys.path.insert(0, '/opt/rgbify-src')" in code and "'/venv/site-packages'" in code
    assert f"{tuple(sys.version_info[:2])!r}" in code  # other Python versions do not get our site-packages
    compile(code, "<python-expr>", "exec")


def test_worker_in_stand_in_blender_equals_bpy_module(tmp_path):
    """The banner on stdout does not disturb the replies; rgbify comes from this worktree; results are equal."""
    spec = tiny_scene()
    with RenderWorker(timeout_s=300) as w:
        ref = w.render(spec)
    with RenderWorker(timeout_s=300, blender=str(fake_blender(tmp_path))) as w:
        got = w.render(spec)
        info = w.child_info
    assert Path(info["rgbify"]).resolve() == Path(rgbify.__file__).resolve()
    assert info["blender_version"][:2] >= MIN_VERSION
    for name in ("rgb", "depth", "normals", "instance", "semantic", "edge", "K", "world_from_camera"):
        assert np.array_equal(getattr(ref, name), getattr(got, name)), name
    assert ref.instances == got.instances


def test_old_blender_is_refused(tmp_path):
    old = fake_blender(tmp_path, "3.4.1")
    p = rgbify_run("build", "--out", str(tmp_path / "o"), "--count", "1", *TINY, "--blender", str(old), check=False)
    assert p.returncode == 2 and "Blender 3.4.1" in p.stderr and "4.2" in p.stderr
    p = rgbify_run("build", "--out", str(tmp_path / "o"), "--count", "1", *TINY, "--blender", str(tmp_path / "none"),
                   check=False)
    assert p.returncode == 2 and "no such executable" in p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("which", ["real", "stand-in"])
def test_build_with_blender_binary_equals_bpy_build(tmp_path_factory, which):
    tmp = tmp_path_factory.mktemp("blender")
    binary = real_blender() if which == "real" else str(fake_blender(tmp))
    if binary is None:
        pytest.skip("no Blender >= 4.2 binary on PATH (set RGBIFY_TEST_BLENDER=/path/to/blender to run this)")
    ref, got = tmp / "bpy", tmp / "bin"
    rgbify_run("build", "--out", str(ref), "--count", "2", *TINY)
    rgbify_run("build", "--out", str(got), "--count", "2", *TINY, "--blender", binary)
    a, b = samples(ref), samples(got)
    assert sorted(a) == sorted(b) == [0, 1]
    for i in a:
        for name in FIELDS:
            v, w = a[i][name], b[i][name]
            assert (v == w) if isinstance(v, str) else np.array_equal(v, w), f"sample {i}: {name} differs"
    assert "OK" in rgbify_run("verify", str(got)).stdout
