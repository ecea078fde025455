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
# EGL for the pyrender raster backend (headless OpenGL); harmless where already present.
if command -v apt-get >/dev/null && ! ldconfig -p | grep -q libEGL.so.1; then
  (apt-get update -qq && apt-get install -y -qq libegl1 libgl1 >/dev/null) || echo "setup: could not install libegl1; the raster backend will be unavailable" >&2
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
