"""``rgbify train --num-processes N``: the same run as N data-parallel processes (DDP through accelerate).

rgbify starts ``python -m torch.distributed.run --standalone --nproc_per_node N -m rgbify train ...`` with the
same flags; each process builds the same Accelerator, which reads the launcher's RANK/WORLD_SIZE/LOCAL_RANK
(NCCL on GPUs, one GPU per process; gloo on CPUs). ``accelerate launch -m rgbify train ...`` and ``torchrun``
work too (multi-node: run them on every node, see docs/scaling.md).

What the trainer guarantees (rgbify.train.trainer.train): optimizer step s consumes the global micro-batches
[s*A*N, (s+1)*A*N) of the data stream (A = --grad-accum), process p taking every N-th, and a micro-batch's noise
is drawn from (seed, its global index); gradients are averaged. So N processes with accumulation A train like
one process with accumulation A*N (the same batches, noise and averaged gradient, up to float summation order),
and a run may be resumed with another process count as long as N*A stays the same.

Importing this module does not import torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys

from rgbify.errors import UserError

LAUNCH_ENV = ("LOCAL_RANK", "TORCHELASTIC_RUN_ID")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-processes", type=int, default=1, metavar="N",
                   help="data-parallel processes on this machine (DDP: one per GPU, or gloo on CPUs); the "
                   "effective batch is batch-size x grad-accum x N (default 1)")


def under_launcher() -> bool:
    """True inside a process started by torchrun / accelerate launch."""
    return any(k in os.environ for k in LAUNCH_ENV)


def use_cpu_if_no_gpu() -> None:
    """Under a launcher on a machine without CUDA, make accelerate run DDP over gloo on CPUs (ACCELERATE_USE_CPU,
    what ``accelerate launch --cpu`` sets): without it each process would train alone, racing on the files."""
    if under_launcher() and "ACCELERATE_USE_CPU" not in os.environ:
        import torch

        if not torch.cuda.is_available():
            os.environ["ACCELERATE_USE_CPU"] = "true"


def train_argv(args: argparse.Namespace) -> list[str]:
    """The ``rgbify train`` flags that reproduce ``args`` (TrainConfig fields and --config; not --num-processes)."""
    from rgbify.train.config import TrainConfig

    argv: list[str] = []
    if getattr(args, "config", None):
        argv += ["--config", str(args.config)]
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(v, bool):
            argv.append(flag if v else "--no-" + f.name.replace("_", "-"))
        elif isinstance(v, tuple):
            argv += [flag, ",".join(map(str, v))]
        else:
            argv += [flag, str(v)]
    return argv


def launch_command(args: argparse.Namespace, n: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
            "-m", "rgbify", "train", *train_argv(args)]


def maybe_relaunch(args: argparse.Namespace) -> int | None:
    """Run ``rgbify train`` as ``--num-processes`` processes and return their exit code; None when this process
    should train itself (N = 1, or already started by a launcher)."""
    n = getattr(args, "num_processes", None)
    n = 1 if n is None else n
    if n < 1:
        raise UserError(f"--num-processes {n} must be at least 1")
    if n == 1 or under_launcher():
        return None
    import rgbify
    from rgbify.datasets.build.pools import visible_gpus

    env = dict(os.environ)
    gpus = visible_gpus()
    if gpus and n > len(gpus):
        raise UserError(f"--num-processes {n}: only {len(gpus)} GPU(s) visible ({','.join(gpus)}); use at most "
                        f"{len(gpus)} (one process per GPU), or CUDA_VISIBLE_DEVICES= to train on CPUs")
    if not gpus:
        env["ACCELERATE_USE_CPU"] = "true"
    root = os.path.dirname(os.path.dirname(os.path.abspath(rgbify.__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.call(launch_command(args, n), env=env)
