"""`import rgbify.encode` must not pull in torch or bpy (checked in a fresh interpreter)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import rgbify

ROOT = str(Path(rgbify.__file__).resolve().parent.parent)


def _modules_after(stmt: str) -> set[str]:
    code = f"import json, sys\n{stmt}\nprint(json.dumps(sorted(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_encode_loads_neither_torch_nor_bpy():
    mods = _modules_after("import rgbify.encode")
    assert "rgbify.encode" in mods
    assert not {"torch", "bpy"} & mods
    assert "numba" not in mods  # kernels load on first use


def test_using_the_codecs_loads_neither_torch_nor_bpy():
    mods = _modules_after(
        "import numpy as np, rgbify.encode as e\n"
        "d = np.ones((3, 4), np.float32)\n"
        "e.decode_depth(e.encode_depth(d, 'hilbert24'), 'hilbert24')"
    )
    assert "numba" in mods
    assert not {"torch", "bpy"} & mods
