"""Check that Hugging Face ``datasets`` reads rgbify's PNG export, in a separate virtual environment.

Recent ``datasets`` needs numpy 2 while bpy (rgbify's render extra) pins numpy 1.26, so the two are not installed
side by side: this script makes a venv with ``datasets`` (once; ``--venv``, default ~/.cache/rgbify/hf-datasets)
and runs tests/test_export_hf.py with RGBIFY_HF_PYTHON pointing at it, which exports a small dataset and loads it
with ``load_dataset("imagefolder", data_dir=EXPORT)`` there.

    python benchmarks/hf_export_check.py [--venv DIR] [--datasets-version SPEC]

Prints the ``datasets`` version and the test's result; exits with pytest's status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ensure_venv(path: Path, spec: str) -> Path:
    """The venv's python, with ``datasets`` (``spec``) and Pillow installed."""
    python = path / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    probe = subprocess.run(
        [python, "-c", "import datasets, PIL; print(datasets.__version__)"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", spec, "pillow"], check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "rgbify" / "hf-datasets")
    ap.add_argument("--datasets-version", default="datasets", help="pip requirement, e.g. 'datasets==5.2.0'")
    args = ap.parse_args(argv)
    python = ensure_venv(args.venv, args.datasets_version)
    version = subprocess.run(
        [python, "-c", "import datasets; print(datasets.__version__)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"datasets {version} in {args.venv}")
    env = {**os.environ, "RGBIFY_HF_PYTHON": str(python)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/test_export_hf.py"], cwd=ROOT, env=env
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
