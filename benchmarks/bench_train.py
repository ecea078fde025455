"""Training throughput of one model, resolution and batch: samples/s, peak memory, model FLOP utilisation.

    python benchmarks/bench_train.py --model tiny --resolution 64 --batch-size 4            # CPU
    python benchmarks/bench_train.py --model sd2-random --resolution 512 --batch-size 16 \\
        --mixed-precision bf16 --device cuda                                                  # one GPU
    python benchmarks/bench_train.py --model sd3-random --resolution 1024 --flops-only --memory-plan  # anywhere
    python benchmarks/bench_train.py --model tiny-dit --resolution 64 --batch-size 4          # CPU, transformer
    python benchmarks/bench_train.py --model flux-random --resolution 1024 --batch-size 1 --mixed-precision bf16 \\
        --gradient-checkpointing --optimizer adafactor --device cuda                          # one H200

Measures ``rgbify.train.step.train_step`` + backward + AdamW step on synthetic batches that already sit on
the device (the data pipeline is measured by the dataset's own benchmark): both VAE encodes (image and
target), the text encoder (cached per prompt, as in training), the UNet forward and backward. FLOPs per
optimizer step are counted once with torch.utils.flop_counter (matmuls and convolutions); MFU divides the
achieved FLOP/s by --peak-tflops (default: 989 for H100/H200 bf16 dense, else not reported).
Never loads weights: 'tiny' and 'sd2-random' are built from configs with random weights; a PATH must be on disk.

Transformers (tiny-dit, sd3-random, flux-random; rgbify.train.plan): FLOPs per sample are the transformer's
forward and backward counted on the meta device (attention included: on a CPU tensor pass torch's flop counter
misses the CPU flash kernel) plus the two VAE encodes; the timed run uses that count for MFU. ``--memory-plan``
prints the computed peak memory per GPU of each training option.
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
from rgbify.train.model import build_model, make_prompts, place_frozen, vae_scale_down  # noqa: E402
from rgbify.train.parts import add_lora  # noqa: E402
from rgbify.train.step import step_generator, train_step  # noqa: E402
from rgbify.train.trainer import _optimizer  # noqa: E402

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


TRANSFORMERS = ("tiny-dit", "sd3-random", "flux-random")


def transformer_flops(args: argparse.Namespace) -> dict:
    """FLOPs of one training sample of a transformer preset (forward + backward, two VAE encodes), counted on the
    meta device (rgbify.train.plan); lotus runs the transformer on the reconstruction copy too."""
    from rgbify.train import plan

    parts = plan.meta_parts(args.model, args.resolution)
    t = plan.transformer_flops(parts)["train"] * (2 if args.mode == "lotus" else 1)
    vae = plan.vae_encode_flops(parts, args.resolution)
    result = {"model": args.model, "mode": args.mode, "resolution": args.resolution,
              "transformer_params_B": round(plan.n_params(parts.transformer) / 1e9, 4),
              "image_tokens": parts.image_tokens, "text_tokens": parts.text_tokens,
              "tflop_transformer_fwd_bwd": round(t / 1e12, 6), "tflop_vae_encode_x2": round(vae / 1e12, 6),
              "tflop_per_sample": round((t + vae) / 1e12, 6)}
    print(json.dumps(result))
    return result


def memory_plan(args: argparse.Namespace) -> list[dict]:
    """The computed peak memory per GPU of each training option (rgbify.train.plan.memory_plan), as JSON lines."""
    from rgbify.train import plan

    parts = plan.meta_parts(args.model, args.resolution)
    rows = plan.memory_plan(parts, args.batch_size)
    for row in rows:
        print(json.dumps({"model": args.model, "resolution": args.resolution, "batch_per_gpu": args.batch_size,
                          **{k: round(v / 2**30, 2) if isinstance(v, int) else v for k, v in row.items()}}))
    return rows


def count_flops(args: argparse.Namespace) -> dict:
    """FLOPs of one training sample (UNet forward + backward, two VAE encodes) counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    if args.model in TRANSFORMERS:
        return transformer_flops(args)
    if args.model.startswith("tiny-"):  # tiny-flux, tiny-pixart, tiny-sana: no meta shapes in rgbify.train.plan
        raise SystemExit(f"--flops-only: meta-device counts are for {', '.join(TRANSFORMERS)}; a timed run of "
                         f"{args.model} counts FLOPs on its own pass (attention uncounted on CPU)")

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
    ap.add_argument("--optimizer", default="adamw", choices=("adamw", "adafactor", "adamw8bit"),
                    help="as rgbify train --optimizer (adafactor: FLUX-sized full fine-tuning on one 141 GB GPU)")
    ap.add_argument("--lora-rank", type=int, default=0, help="as rgbify train --lora-rank (peft adapters)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default by GPU name)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads on CPU (default: torch's)")
    ap.add_argument("--flops-only", action="store_true",
                    help="count FLOPs per sample on the meta device (no weights, no compute) and exit")
    ap.add_argument("--memory-plan", action="store_true",
                    help="transformers: print the computed peak memory per GPU of each training option and exit")
    args = ap.parse_args(argv)
    if args.memory_plan or args.flops_only:
        out = count_flops(args) if args.flops_only else {}
        if args.memory_plan:
            if args.model not in TRANSFORMERS:
                ap.error(f"--memory-plan is for {', '.join(TRANSFORMERS)}")
            out["memory_plan"] = memory_plan(args)
        return out

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
    if args.lora_rank:
        add_lora(components.unet, components.family, args.lora_rank, args.mixed_precision)
    components.unet.to(device).train()
    if args.gradient_checkpointing:
        components.unet.enable_gradient_checkpointing()
    n_params = sum(p.numel() for p in components.unet.parameters())
    unet_eager = components.unet
    if args.compile:
        components.unet = torch.compile(components.unet)
    opt = _optimizer(make_config({"optimizer": args.optimizer, "lr": 1e-5}),
                     [p for p in unet_eager.parameters() if p.requires_grad])
    prompts = make_prompts(components)
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
    if args.model in TRANSFORMERS:  # the CPU flash-attention kernel has no FLOP formula: count on the meta device
        flops_per_step = transformer_flops(args)["tflop_per_sample"] * 1e12 * args.batch_size
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
        "gradient_checkpointing": args.gradient_checkpointing, "optimizer": args.optimizer, "lora_rank": args.lora_rank,
        "unet_params_M": round(n_params / 1e6, 2),
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
