#!/usr/bin/env bash
# `pip install rgbify` with no extras samples scenes and encodes targets: a fresh venv with the base dependencies
# only (no bpy, torch or ray) runs `rgbify scenes sample` and `rgbify encode`/`decode`. Part of CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --upgrade pip
"$WORK/venv/bin/python" -m pip install -q .
cd "$WORK"
for module in bpy torch ray; do
  if "$WORK/venv/bin/python" -c "import $module" 2>/dev/null; then
    echo "check_base_install: $module is installed by the base dependencies" >&2; exit 1
  fi
done
"$WORK/venv/bin/rgbify" scenes sample tabletop --index 1 --out scene.json
"$WORK/venv/bin/python" -c "import numpy as np; np.save('d.npy', np.linspace(0.5, 80, 60, dtype=np.float32).reshape(6, 10))"
"$WORK/venv/bin/rgbify" encode depth d.npy t.png --codec hilbert24
"$WORK/venv/bin/rgbify" decode depth t.png back.npy --codec hilbert24
"$WORK/venv/bin/python" - <<'PY'
import json
import numpy as np
spec = json.load(open("scene.json"))
assert spec["objects"] and spec["meta"], "empty scene"
d, back = np.load("d.npy"), np.load("back.npy")
assert np.allclose(d, back, rtol=1e-4), "hilbert24 round trip"
print(f"check_base_install: ok ({len(spec['objects'])} objects sampled, depth round trip exact to 1e-4)")
PY
