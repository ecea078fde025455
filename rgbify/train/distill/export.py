"""ONNX export of a student run, and the check that onnxruntime answers as torch does.

``export_onnx`` traces the student (torch's TorchScript-based exporter, opset 17; the dynamo exporter could not
export these models in torch 2.13) with a dynamic batch axis: input ``image`` (B, 3, R, R) float32 in [-1, 1],
outputs named after the tasks (depth: log metres; normals: unit vectors; semantic: logits), as
``students.py`` describes. ``check_onnx`` runs both on the same random images and returns the largest absolute
difference per output.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from rgbify.errors import UserError
from rgbify.fileio import publishing
from rgbify.train.distill.predict import StudentRun

OPSET = 17


def export_onnx(run: StudentRun, path: str | Path) -> Path:
    """Write the student as an ONNX file at ``path`` (atomically); returns the path."""
    path = Path(path)
    model = run.model.to("cpu").eval()
    x = torch.zeros(1, 3, run.resolution, run.resolution)
    names = list(run.tasks)
    try:
        with publishing(path, ".tmp.onnx") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notices
            torch.onnx.export(
                model,
                (x,),
                str(tmp),
                input_names=["image"],
                output_names=names,
                dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in names}},
                opset_version=OPSET,
                dynamo=False,
            )
    except OSError as e:
        raise UserError(f"--out {path}: cannot write it ({e.strerror or e}); choose a writable place") from None
    return path


def check_onnx(run: StudentRun, path: str | Path, batch: int = 2, seed: int = 0) -> dict[str, float]:
    """Largest |onnxruntime - torch| per output on ``batch`` random images."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("checking the export needs onnxruntime: pip install 'rgbify[distill]'") from None
    x = np.random.default_rng(seed).uniform(-1, 1, (batch, 3, run.resolution, run.resolution)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x})
    with torch.no_grad():
        want = run.model.to("cpu").eval()(torch.from_numpy(x))
    return {t: float(np.abs(g - w.numpy()).max()) for t, g, w in zip(run.tasks, got, want, strict=True)}
