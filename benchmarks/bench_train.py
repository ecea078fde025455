"""Training throughput of one model, resolution and batch: samples/s, peak memory, model FLOP utilisation.

    python benchmarks/bench_train.py --model tiny --resolution 64 --batch-size 4            # CPU
    python benchmarks/bench_train.py --model sd2-random --resolution 512 --batch-size 16 \\
        --mixed-precision bf16 --device cuda                                                  # one GPU

Measures ``rgbify.train.step.train_step`` + backward + AdamW step on synthetic batches that already sit on
the device (the data pipeline is measured by the dataset's own benchmark): both VAE encodes (image and
target), the text encoder (cached per prompt, as in training), the UNet forward and backward. FLOPs per
optimizer step are counted once with torch.utils.flop_counter (matmuls and convolutions); MFU divides the
achieved FLOP/s by --peak-tflops (default: 989 for H100/H200 bf16 dense, else not reported).
Never loads weights: 'tiny' and 'sd2-random' are built from configs with random weights; a PATH must be on disk.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rgbify.train.config import make_config  # noqa: E402
from rgbify.train.model import PromptEncoder, build_model, place_frozen, vae_scale_down  # noqa: E402
from rgbify.train.step import step_generator, train_step  # noqa: E402

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
MODE_TASKS = {"instruct": ("depth", "normals", "semantic", "instance"), "lotus": ("depth", "normals", "semantic",
              "instance"), "marigold": ("depth",)}  # marigold mode trains one task


def fake_batch(n: int, res: int, device, tasks=("depth", "normals", "semantic", "instance")) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randint(0, 256, (n, 3, res, res), generator=g, dtype=torch.uint8).to(device),  # as the
        "target": torch.randint(0, 256, (n, 3, res, res), generator=g, dtype=torch.uint8).to(device),  # loader
        "prompt": [f"{tasks[i % len(tasks)]}: encode the answer as colours (item {i % 4})" for i in range(n)],
        "task": [tasks[i % len(tasks)] for i in range(n)],
    }


def count_flops(args: argparse.Namespace) -> dict:
    """FLOPs of one training sample (UNet forward + backward, two VAE encodes) counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = make_config({"base_model": args.model, "mode": args.mode, "resolution": args.resolution, "out": "unused",
                       "tasks": MODE_TASKS[args.mode]})
    with torch.device("meta"):
        components = build_model(cfg)
    components.vae.to("meta")  # the tiny preset loads its trained VAE's weights: onto the CPU
    r, lat = args.resolution, args.resolution // vae_scale_down(components.vae)
    counts = {}
    for name, fn in (
        ("vae_encode_x2", lambda: components.vae.encode(torch.randn(2, 3, r, r, device="meta")).latent_dist.mode()),
        ("unet_fwd_bwd", lambda: components.unet(
            torch.randn(1, 8, lat, lat, device="meta"), torch.tensor([1], device="meta"),
            encoder_hidden_states=torch.randn(1, 77, components.unet.config.cross_attention_dim, device="meta"),
            class_labels=torch.randn(1, 4, device="meta") if args.mode == "lotus" else None,
        ).sample.sum().backward()),
    ):
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        counts[name] = counter.get_total_flops() / 1e12
    if args.mode == "lotus":  # the detail preserver runs the UNet on a second (reconstruction) copy of the batch
        counts["unet_fwd_bwd"] *= 2
    total = sum(counts.values())
    result = {"model": args.model, "mode": args.mode, "resolution": r,
              **{f"tflop_{k}": round(v, 6) for k, v in counts.items()}, "tflop_per_sample": round(total, 6)}
    print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny", help="tiny, sd2-random or a local diffusers SD folder")
    ap.add_argument("--mode", default="instruct", choices=("instruct", "lotus", "marigold"))
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--mixed-precision", default="no", choices=("no", "bf16", "fp16"))
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default by GPU name)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads on CPU (default: torch's)")
    ap.add_argument("--flops-only", action="store_true",
                    help="count FLOPs per sample on the meta device (no weights, no compute) and exit")
    args = ap.parse_args(argv)
    if args.flops_only:
        return count_flops(args)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = make_config({"base_model": args.model, "mode": args.mode, "resolution": args.resolution,
                       "tasks": MODE_TASKS[args.mode], "batch_size": args.batch_size,
                       "mixed_precision": args.mixed_precision, "out": "unused"})
    torch.manual_seed(0)
    components = build_model(cfg)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.mixed_precision, torch.float32)
    place_frozen(components, device, args.mixed_precision)
    components.unet.to(device).train()
    if args.gradient_checkpointing:
        components.unet.enable_gradient_checkpointing()
    n_params = sum(p.numel() for p in components.unet.parameters())
    unet_eager = components.unet
    if args.compile:
        components.unet = torch.compile(components.unet)
    opt = torch.optim.AdamW(unet_eager.parameters(), lr=1e-5)
    prompts = PromptEncoder(components.tokenizer, components.text_encoder)
    batch = fake_batch(args.batch_size, args.resolution, device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step(i: int) -> float:
        with autocast:
            loss, _ = train_step(components, prompts, cfg, batch, step_generator(0, i, device))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for i in range(args.warmup):
        step(i)
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step(args.warmup)
    flops_per_step = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(args.steps):
        loss = step(args.warmup + 1 + i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    samples_per_s = args.batch_size * args.steps / dt
    peak_mem = (torch.cuda.max_memory_allocated() if device.type == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    peak = args.peak_tflops
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if peak is None and device.type == "cuda":
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    achieved = flops_per_step * args.steps / dt
    result = {
        "device": name, "model": args.model, "mode": args.mode, "resolution": args.resolution,
        "batch_size": args.batch_size, "mixed_precision": args.mixed_precision, "compile": args.compile,
        "gradient_checkpointing": args.gradient_checkpointing, "unet_params_M": round(n_params / 1e6, 2),
        "samples_per_s": round(samples_per_s, 2), "step_s": round(dt / args.steps, 4),
        "peak_memory_GiB": round(peak_mem / 2**30, 3),
        "tflop_per_sample": float(f"{flops_per_step / args.batch_size / 1e12:.4g}"), "threads": torch.get_num_threads(),
        "achieved_tflops": float(f"{achieved / 1e12:.4g}"),
        "mfu_percent": round(100 * achieved / (peak * 1e12), 2) if peak else None, "last_loss": round(loss, 5),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
