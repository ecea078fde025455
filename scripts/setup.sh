#!/usr/bin/env bash
# Set-up on a fresh machine with Python 3.11: a virtual environment in .venv with rgbify and every extra that
# runs on a CPU machine. torch is pinned to a CPU build first, so that no multi-GB CUDA build is pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if ! command -v "$PY" >/dev/null; then
  echo "setup: $PY not found; install Python 3.11 (bpy 4.5 supports only 3.11) or set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[render,train,dev,dist]"
# CLIP's BPE vocabulary, to measure prompts in CLIP tokens (rgbify.train.tokens, tests/test_prompt_tokens.py);
# --no-deps: the wheel's own code (which needs torchvision) is never imported, only its vocabulary file is read.
python -m pip install -q --no-deps "clip-anytorch==2.6.0"
# System packages where apt exists: EGL for the pyrender raster backend (headless OpenGL), and hdf5-tools for
# h5dump (reading a shard's self-description: docs/datasets.md); harmless where already present.
APT=()
ldconfig -p | grep -q libEGL.so.1 || APT+=(libegl1 libgl1)
command -v h5dump >/dev/null || APT+=(hdf5-tools)
if command -v apt-get >/dev/null && [ ${#APT[@]} -gt 0 ]; then
  (apt-get update -qq && apt-get install -y -qq "${APT[@]}" >/dev/null) || echo "setup: could not install ${APT[*]}; without libegl1 the raster backend is unavailable, without hdf5-tools there is no h5dump" >&2
fi
echo "setup: done. Activate with: . .venv/bin/activate"
