"""Run the dpt student's tests (timm backbones) in a separate virtual environment where timm imports.

timm needs a torchvision built for the installed torch. rgbify's main environment has a CPU-only torch, and PyPI's
torchvision wheels are CUDA builds that fail to import beside it (docs/distillation.md), so the dpt tests skip
there. This script makes a venv (once; ``--venv``, default ~/.cache/rgbify/timm) with a matching torch and
torchvision from PyPI (``--torch``; CUDA builds on x86_64, about 5.5 GB, which run on a CPU), timm, onnx,
onnxruntime and rgbify's train and dev extras (no bpy: these tests render nothing), then runs
``tests/test_distill.py -k dpt`` there with RGBIFY_REQUIRE_TIMM=1, so a timm that does not import fails the run
instead of skipping it.

    python benchmarks/dpt_timm_check.py [--venv DIR] [--torch "torch==2.14.1 torchvision==0.29.1"]

Prints torch, torchvision and timm versions and the tests' result; exits with pytest's status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import torch, torchvision, timm, onnxruntime, diffusers, rgbify; print(torch.__version__, " \
    "torchvision.__version__, timm.__version__)"


def ensure_venv(path: Path, torch_spec: str) -> Path:
    """The venv's python, with torch/torchvision (``torch_spec``), timm, onnx(runtime) and rgbify installed."""
    python = path / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    if subprocess.run([python, "-c", PROBE], capture_output=True).returncode != 0:
        pip = [python, "-m", "pip", "install", "-q"]
        subprocess.run([*pip, *torch_spec.split()], check=True)  # first, so the extras keep this torch
        subprocess.run([*pip, "timm>=1.0", "onnx>=1.16", "onnxruntime>=1.18", "-e", f"{ROOT}[train,dev]"], check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "rgbify" / "timm")
    ap.add_argument("--torch", default="torch==2.14.1 torchvision==0.29.1",
                    help="pip requirements of a torch and the torchvision built for it")
    args = ap.parse_args(argv)
    python = ensure_venv(args.venv, args.torch)
    versions = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    print(f"torch {versions[0]}, torchvision {versions[1]}, timm {versions[2]} in {args.venv}", flush=True)
    env = {**os.environ, "RGBIFY_REQUIRE_TIMM": "1"}
    tests = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_distill.py", "-k", "dpt"]
    return subprocess.run(tests, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
