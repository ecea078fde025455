"""Loading: a built dataset as torch training items, read by rgbify.datasets.storage (nothing here renders).

- ``task_dataset``: ``TaskDataset`` (items of image, prompt and RGB target, augmented and encoded on the fly),
  ``collate``, ``to_unit``;
- ``loader``: ``ThreadLoader`` and ``ProcessLoader``, batches made by threads or worker processes;
- ``kernels``: the numba gathers and fused target encoders of an item;
- ``captions``: captions of a scene spec for generation-retention items;
- ``split``: the train/val split by sample index;
- ``clip_items``: ``ClipItems``, clip and frame-pair items from clip shards (NumPy only).

Importing this package imports nothing; torch loads with ``task_dataset``. It does not import rgbify.datasets.build.
"""
