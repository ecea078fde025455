"""Entry point for tests/test_fsdp_train.py: `rgbify train` under FSDP on CPUs (gloo), which accelerate refuses.

accelerate 1.15 builds the FSDP plugin from the launcher's FSDP_* variables but sets DistributedType.FSDP only in
the GPU/accelerator branch of AcceleratorState.__init__ (accelerate/state.py); for processes on CPUs it keeps
MULTI_CPU, and rgbify.train.trainer refuses the run in one line. torch's FSDP2 (fully_shard) itself runs on CPUs
with gloo, so to test rgbify's FSDP code paths (accelerate's FSDP prepare, clipping, sharded save_state,
get_state_dict gathering, the export) this script lets the Accelerator through that one gate, after it is
built: the shared state gets DistributedType.FSDP and the plugin accelerate built from the environment. Nothing
else is changed; run as `python -m torch.distributed.run --nproc_per_node 2 tests/fsdp_on_cpu.py train ...`.
"""

from __future__ import annotations

import sys

from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

from rgbify.cli import main
from rgbify.train import trainer

_build = trainer._accelerator


def _fsdp_accelerator(cfg):
    accelerator = _build(cfg)
    assert accelerator.distributed_type == DistributedType.MULTI_CPU, accelerator.distributed_type
    AcceleratorState().fsdp_plugin = FullyShardedDataParallelPlugin()  # from FSDP_* as accelerate would
    PartialState().distributed_type = AcceleratorState().distributed_type = DistributedType.FSDP
    return accelerator


trainer._accelerator = _fsdp_accelerator

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
