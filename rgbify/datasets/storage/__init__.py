"""Storage: a built dataset on disk, and everything that reads or rewrites it without rendering (no torch).

- ``folder``: the dataset folder's layout (shards/, .work/, the lock) and making a folder ready to write into;
- ``manifest``: ``dataset.json``, what the dataset is and which shards it has;
- ``shards``: HDF5 shard files (write, read, the one header check), finished-sample work files, checksums;
- ``reader``: ``DatasetReader``, every published sample by its global index;
- ``verify``: ``rgbify verify``; ``repack``: ``rgbify repack``;
- ``kernels``: the numba un-shuffle the shard reader uses.

It imports neither rgbify.datasets.build nor rgbify.datasets.loading.
"""
