"""Distillation: a fast discriminative student trained on a generator teacher's pseudo-labels (docs/distillation.md).

One job per module, in the order ``rgbify distill`` uses them:

- ``config``: ``DistillConfig`` (flags and TOML keys; no torch) and ``is_student_run``;
- ``pseudo``: the teacher labels an image folder into a resumable pseudo-label dataset (rgbify HDF5 shards,
  ``dataset.json`` marked ``pseudo_labels`` with the teacher's run, step and settings);
- ``students``: the student networks (``small``, from scratch; ``dpt``, a DPT-style head on a timm backbone);
- ``data``: batches drawn from the pseudo-labels and rendered ground truth at ``gt_ratio``, a pure function of
  (seed, step);
- ``losses``: scale-invariant log loss (depth), angular loss (normals), cross-entropy (semantic logits);
- ``trainer``: the loop, checkpoints and resume; ``predict``: ``rgbify predict`` / ``eval`` on a student run;
- ``export``: ONNX export and the onnxruntime parity check; ``cli``: ``rgbify distill``, ``rgbify export-student``.
"""
