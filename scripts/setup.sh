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
# distill extra: ONNX export and its check always; timm (the dpt student's backbones) needs a torchvision built for
# this torch. PyPI's torchvision wheels are CUDA builds: next to a CPU-only torch they fail to import, and break
# transformers' import with them. So a CPU torch gets it from PyTorch's CPU index, or goes without timm (the dpt
# student and its tests are then skipped; the small student needs none of it).
python -m pip install -q "onnx>=1.16" "onnxruntime>=1.18"
if python -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)"; then
  python -m pip install -q "torchvision==0.28.0" "timm>=1.0"
elif python -m pip install -q "torchvision==0.28.0" --index-url https://download.pytorch.org/whl/cpu 2>/dev/null; then
  python -m pip install -q "timm>=1.0"
else
  echo "setup: no CPU build of torchvision reachable; timm left out (rgbify distill --student dpt unavailable)" >&2
fi
# EGL for the pyrender raster backend (headless OpenGL); harmless where already present.
if command -v apt-get >/dev/null && ! ldconfig -p | grep -q libEGL.so.1; then
  (apt-get update -qq && apt-get install -y -qq libegl1 libgl1 >/dev/null) || echo "setup: could not install libegl1; the raster backend will be unavailable" >&2
fi
echo "setup: done. Activate with: . .venv/bin/activate"
