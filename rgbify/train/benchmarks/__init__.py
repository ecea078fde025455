"""Standard benchmarks for ``rgbify eval --benchmark NAME --root PATH`` (docs/evaluation.md).

- ``catalog``: what each benchmark is (files, split, depth range, crops, normals frame, classes, comparable tables);
- ``archive``: the files of a root, a folder or a tar; ``readers``: its items and samples as arrays;
- ``protocol``: valid masks, least-squares alignment in depth or disparity, range clipping, the accumulators;
- ``classmaps``: ``--class-map published``, rgbify's classes through the vocabulary's tables to NYU40 / Cityscapes;
- ``evaluate``: the evaluation of a run or a predictions folder, and its report.

Importing this package imports NumPy only; predicting with a run (rgbify.train.infer) imports torch when it runs.
"""

from rgbify.train.benchmarks.catalog import BENCHMARKS, Benchmark, get_benchmark

__all__ = ["BENCHMARKS", "Benchmark", "get_benchmark"]
