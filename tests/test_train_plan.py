"""rgbify.train.plan: parameter counts of the real shapes, FLOPs counted on the meta device (checked against an
analytic count and against a CPU pass), saved-activation bytes (checked against a CPU pass), the memory table."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rgbify.train import plan  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_real_shapes_have_the_published_sizes():
    """SD3-medium's MMDiT: 2.03 B parameters (2.028 B with the 2C-channel patch embedding), CLIP-L 124 M, CLIP-G
    695 M; FLUX.1-dev's transformer 11.9 B, T5-XXL's encoder 4.76 B."""
    sd3 = plan.meta_parts("sd3-random", 1024, conditioned=False)
    assert plan.n_params(sd3.transformer) == pytest.approx(2.028e9, rel=2e-3)
    assert plan.n_params(sd3.frozen["clip_l"]) == pytest.approx(123.7e6, rel=1e-2)
    assert plan.n_params(sd3.frozen["clip_g"]) == pytest.approx(694.7e6, rel=1e-2)
    assert sd3.image_tokens == 4096 and sd3.text_tokens == 333
    flux = plan.meta_parts("flux-random", 1024, conditioned=False)
    assert plan.n_params(flux.transformer) == pytest.approx(11.90e9, rel=2e-3)
    assert plan.n_params(flux.frozen["t5_xxl"]) == pytest.approx(4.762e9, rel=2e-3)
    assert flux.image_tokens == 4096 and flux.text_tokens == 512


@pytest.mark.parametrize("name,res", [("tiny-dit", 64), ("sd3-random", 256)])
def test_meta_flops_equal_the_analytic_count(name, res):
    parts = plan.meta_parts(name, res)
    counted = plan.transformer_flops(parts, batch=2)
    assert counted["forward"] == plan.analytic_sd3_flops(parts.transformer, parts.image_tokens, parts.text_tokens, 2)
    # backward: two matmuls per forward one, less the input gradient of the first layer
    assert 2.95 * counted["forward"] < counted["train"] <= 3 * counted["forward"]


def test_flux_meta_flops_equal_the_analytic_count():
    """FLUX's count on the meta device (a 2 + 2-block FLUX of FLUX.1-dev's widths at 256 px) equals the analytic
    one: double-stream weights on their own tokens, single-stream weights on the joined sequence."""
    import dataclasses

    from diffusers import FluxTransformer2DModel

    parts = plan.meta_parts("flux-random", 256)
    with torch.device("meta"):
        small = FluxTransformer2DModel(
            **{
                **{k: v for k, v in parts.transformer.config.items() if not k.startswith("_")},
                "num_layers": 2,
                "num_single_layers": 2,
            }
        )
    parts = dataclasses.replace(parts, transformer=small)
    counted = plan.transformer_flops(parts, batch=2)["forward"]
    assert counted == plan.analytic_flux_flops(small, parts.image_tokens, parts.text_tokens, 2)


def _tiny_cpu(parts):
    from diffusers import SD3Transformer2DModel

    torch.manual_seed(0)
    return SD3Transformer2DModel(**{k: v for k, v in parts.transformer.config.items() if not k.startswith("_")})


def test_meta_count_is_what_a_cpu_pass_counts_plus_attention():
    """On CPU tensors the flop counter sees every matmul and convolution but not the CPU flash-attention kernel;
    the meta pass counts the same plus attention (4 N^2 d per head and layer, forward)."""
    from torch.utils.flop_counter import FlopCounterMode

    parts = plan.meta_parts("tiny-dit", 64)
    t = _tiny_cpu(parts)
    inputs = {k: torch.randn(v.shape, dtype=v.dtype) for k, v in plan._inputs(parts, 2).items()}
    with FlopCounterMode(display=False) as counter:
        t(**inputs, return_dict=False)
    cfg = t.config
    n = parts.image_tokens + parts.text_tokens
    attention = 2 * 4 * n * n * cfg.attention_head_dim * cfg.num_attention_heads * cfg.num_layers
    assert plan.transformer_flops(parts, batch=2)["forward"] == counter.get_total_flops() + attention


def test_activation_bytes_of_the_meta_pass_equal_a_cpu_pass():
    """The bytes autograd saves in a bf16 forward on the meta device are those of the same forward on CPU tensors
    (flash-like attention in both) but for the layer norms' statistics, which the meta kernel keeps in float32
    (as CUDA does) and the CPU kernel in bf16: 0.5 % here. Checkpointing keeps less."""
    parts = plan.meta_parts("tiny-dit", 64)
    meta = plan.activation_bytes(parts, batch=2)
    t = torch.nn.Module.to(_tiny_cpu(parts), torch.bfloat16)
    inputs = {
        k: torch.randn(v.shape).to(torch.bfloat16 if v.is_floating_point() and v.dim() > 1 else v.dtype)
        for k, v in plan._inputs(parts, 2, torch.bfloat16).items()
    }
    saved, seen = [0], set()

    def pack(x):
        if not isinstance(x, torch.nn.Parameter) and id(x) not in seen:
            seen.add(id(x))
            saved[0] += x.numel() * x.element_size()
        return x

    with plan._flash_attention(), torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        t(**inputs, return_dict=False)
    assert saved[0] < meta["full"] < 1.01 * saved[0]
    assert 0 < meta["checkpointed"] < meta["full"]


def test_memory_plan_orders_the_options():
    rows = {r["option"].split(" (")[0].split(",")[0]: r for r in plan.memory_plan(plan.meta_parts("tiny-dit", 64), 1)}
    peaks = [r["peak"] for r in rows.values()]
    assert peaks[1] < peaks[0] and peaks[2] < peaks[1] and peaks[3] < peaks[2]  # ckpt, 8-bit Adam, Adafactor
    assert all(r["peak"] == r["states"] + r["activations"] + r["frozen"] for r in rows.values())
