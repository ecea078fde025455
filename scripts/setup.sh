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
python -m pip install -q "onnx>=1.16" "onnxruntime>=1.18" "numpy<2"  # bpy 4.5 pins numpy 1.x: never let pip upgrade it
if python -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)"; then
  TV=("torchvision==0.28.0" "numpy<2")
else
  TV=("torchvision==0.28.0" "numpy<2" --index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1)
fi
if python -m pip install -q "${TV[@]}" 2>/dev/null && python -c "import torchvision" 2>/dev/null; then
  python -m pip install -q "timm>=1.0" "numpy<2"
else  # none, or a CUDA build from another index (the import fails): keep none
  python -m pip uninstall -q -y torchvision timm 2>/dev/null || true
  echo "setup: no torchvision built for this torch; timm left out (rgbify distill --student dpt unavailable)" >&2
fi
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
# The Sweet Home 3D furniture catalogues (CC0 and CC BY 3.0 models) for the catalogue recipes (docs/scenes.md).
if [ -d /usr/share/sweethome3d/furniture ]; then
  :
elif command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq sweethome3d-furniture >/dev/null) || echo "setup: could not install sweethome3d-furniture; the catalogue recipes will be unavailable" >&2
else
  echo "setup: skipping the Sweet Home 3D furniture catalogues (needs apt as root: apt-get install sweethome3d-furniture); the catalogue recipes will be unavailable" >&2
fi
echo "setup: done. Activate with: . .venv/bin/activate"
