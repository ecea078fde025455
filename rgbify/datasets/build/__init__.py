"""Building: ``rgbify build`` renders a recipe into a dataset, through rgbify.datasets.storage (no torch here).

- ``config``: ``BuildConfig`` (every flag of ``rgbify build``) and its checks; standard library only;
- ``planner``: ``build()`` and ``Planner``: what the dataset lacks, the jobs, checking and publishing shards;
- ``pools``: the pool interface and ``LocalPool`` (Blender worker processes here), the worker factory, GPU slots;
- ``ray_pool``: ``RayPool``, one Ray task per shard;
- ``work``: a shard job, rendering one sample into its work file, writing a shard part, the reports;
- ``progress``: ``RichProgress``, the progress bar.

Importing this package imports nothing. It does not import rgbify.datasets.loading.
"""
