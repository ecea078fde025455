"""The student networks: an image in, every task's dense answer out in one forward pass.

Input (B, 3, H, W) float in [-1, 1], H and W multiples of 32. Output: a tuple in the order of ``tasks``:
depth (B, 1, H, W) log metres, normals (B, 3, H, W) unit vectors (OpenCV camera frame), semantic (B, C + 1, H, W)
logits (0 = none of the classes, i + 1 = classes[i]). A tuple, not a dict, so the same module exports to ONNX.

- ``small``: a from-scratch U-Net (four stages, BatchNorm + ReLU), for CPUs and tests.
- ``dpt``: a DPT-style head (Ranftl et al. 2021: reassemble four backbone stages to strides 4, 8, 16, 32, fuse them
  coarse to fine with residual conv units, upsample) on a timm backbone. A ViT's four stages share one stride
  (the patch size) and are resampled to the four strides as in DPT; a CNN's stages (ConvNeXt, ResNet) already
  have them. Weights come from a local checkpoint through timm, or are random (``backbone_weights="random"``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rgbify.errors import UserError


def out_channels(tasks: tuple[str, ...], num_classes: int) -> list[int]:
    return [{"depth": 1, "normals": 3, "semantic": num_classes + 1}[t] for t in tasks]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Heads(nn.Module):
    """One 1x1 conv per task on the decoder's full-resolution features; normals normalised."""

    def __init__(self, width: int, tasks: tuple[str, ...], num_classes: int):
        super().__init__()
        self.tasks = tuple(tasks)
        self.heads = nn.ModuleList(nn.Conv2d(width, c, 1) for c in out_channels(self.tasks, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = []
        for task, head in zip(self.tasks, self.heads, strict=True):
            y = head(x)
            if task == "normals":
                y = y / torch.sqrt((y * y).sum(1, keepdim=True) + 1e-12)
            outs.append(y)
        return tuple(outs)


class SmallStudent(nn.Module):
    """A U-Net: stages of ``width * (1, 2, 4, 8)`` channels at strides 2 to 16, skip connections, heads at full
    resolution."""

    def __init__(self, tasks: tuple[str, ...], num_classes: int, width: int = 32):
        super().__init__()
        w = [width, width * 2, width * 4, width * 8]
        self.down = nn.ModuleList(
            [
                nn.Sequential(_conv(3, w[0], 2), _conv(w[0], w[0])),
                *(nn.Sequential(_conv(w[i], w[i + 1], 2), _conv(w[i + 1], w[i + 1])) for i in range(3)),
            ]
        )
        self.up = nn.ModuleList(_conv(w[i + 1] + w[i], w[i]) for i in reversed(range(3)))
        self.final = _conv(w[0] + 3, w[0])
        self.heads = Heads(w[0], tasks, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats, h = [], x
        for stage in self.down:
            h = stage(h)
            feats.append(h)
        h = feats[-1]
        for up, skip in zip(self.up, reversed(feats[:-1]), strict=True):
            h = up(torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        h = F.interpolate(h, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.heads(self.final(torch.cat([h, x], 1)))


class _ResidualConv(nn.Module):
    """DPT's residual conv unit: x + conv(relu(conv(relu(x))))."""

    def __init__(self, c: int):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(c, c, 3, 1, 1), nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.relu(self.c1(F.relu(x))))


class _Fusion(nn.Module):
    """DPT's fusion block: add the skip (through a residual unit), a residual unit, upsample 2x, 1x1 conv."""

    def __init__(self, c: int):
        super().__init__()
        self.skip, self.res, self.proj = _ResidualConv(c), _ResidualConv(c), nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.skip(skip)
        x = F.interpolate(self.res(x), scale_factor=2, mode="bilinear", align_corners=False)
        return self.proj(x)


def _resample(cin: int, cout: int, factor: float) -> nn.Module:
    """DPT's reassemble: 1x1 projection, then a transposed conv (upsample) or a strided conv (downsample) by
    ``factor`` (the stage's stride over the target stride)."""
    proj = nn.Conv2d(cin, cout, 1)
    if factor > 1:
        f = int(round(factor))
        return nn.Sequential(proj, nn.ConvTranspose2d(cout, cout, f, f))
    if factor < 1:
        f = int(round(1 / factor))
        return nn.Sequential(proj, nn.Conv2d(cout, cout, 3, f, 1))
    return proj


def import_timm():
    """``import timm``, or a UserError saying how to get it."""
    try:
        import timm
    except ImportError:
        raise UserError(
            "--student dpt needs timm (and a torchvision built for this torch): pip install 'rgbify[distill]'"
        ) from None
    except RuntimeError as e:  # a CUDA torchvision wheel next to a CPU-only torch: its compiled ops cannot load
        raise UserError(
            f"--student dpt: timm cannot import torchvision ({' '.join(str(e).split())[:120]}); install "
            "the torchvision built for this torch (CPU torch: pip install torchvision --index-url "
            "https://download.pytorch.org/whl/cpu)"
        ) from None
    return timm


class DPTStudent(nn.Module):
    """A DPT-style dense head on a timm backbone (``features_only``: four stages)."""

    def __init__(
        self,
        tasks: tuple[str, ...],
        num_classes: int,
        backbone: str,
        weights: str = "random",
        backbone_args: dict | None = None,
        width: int = 64,
        resolution: int = 64,
    ):
        super().__init__()
        timm = import_timm()
        kw = dict(backbone_args or {})
        if backbone.startswith(("vit", "deit", "eva", "beit")):  # one stride: the last four blocks, at this size
            kw.setdefault("img_size", resolution)
            kw.setdefault("out_indices", 4)
        pretrained = weights not in ("", "random")
        if pretrained:
            if not Path(weights).is_file():
                raise UserError(
                    f"--backbone-weights {weights}: no such file; give a local checkpoint of {backbone} "
                    "(.safetensors/.pth/.bin) or 'random'"
                )
            kw["pretrained_cfg_overlay"] = {"file": str(Path(weights).resolve())}
        try:
            self.backbone = timm.create_model(backbone, pretrained=pretrained, features_only=True, **kw)
        except RuntimeError as e:  # a checkpoint of another model: missing / unexpected keys, other shapes
            why = " ".join(str(e).split())[:200]
            raise UserError(
                f"--backbone-weights {weights} does not fit {backbone} ({why}); give a checkpoint of "
                "that model, or the --backbone-args of the model it was made for"
            ) from None
        except (TypeError, ValueError) as e:
            raise UserError(f"--backbone {backbone} / --backbone-args {json.dumps(backbone_args)}: {e}") from None
        except Exception as e:  # noqa: BLE001 - timm raises RuntimeError('Unknown model ...') and others
            raise UserError(f"--backbone {backbone}: timm cannot build it ({type(e).__name__}: {e})") from None
        info = self.backbone.feature_info
        if len(info.channels()) < 4:
            raise UserError(f"--backbone {backbone} gives {len(info.channels())} feature stages; the DPT head needs 4")
        self.take = len(info.channels()) - 4
        self.head = DPTHead(info.channels()[-4:], info.reduction()[-4:], width, tasks, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.head(self.backbone(x)[self.take :], x.shape[-2:])


class DPTHead(nn.Module):
    """DPT's decoder on four feature maps of ``channels`` at strides ``reductions``: reassembled to ``width``
    channels at strides 4, 8, 16, 32, fused coarse to fine, upsampled to ``size``, one 1x1 head per task."""

    def __init__(self, channels, reductions, width: int, tasks: tuple[str, ...], num_classes: int):
        super().__init__()
        self.reassemble = nn.ModuleList(
            _resample(c, width, r / (4 * 2**i)) for i, (c, r) in enumerate(zip(channels, reductions, strict=True))
        )
        self.fuse = nn.ModuleList(_Fusion(width) for _ in range(4))
        self.out = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(inplace=True))
        self.heads = Heads(width, tasks, num_classes)

    def forward(self, feats, size) -> tuple[torch.Tensor, ...]:
        f = [r(t) for r, t in zip(self.reassemble, feats, strict=True)]
        h = self.fuse[3](f[3])
        for i in (2, 1, 0):
            h = self.fuse[i](h, f[i])  # stride 4 * 2**i in, half that out
        h = F.interpolate(h, size=size, mode="bilinear", align_corners=False)
        return self.heads(self.out(h))


def build_student(meta: dict) -> nn.Module:
    """The student of a run's metadata (student.json's ``arch``: student, tasks, classes, width, backbone...)."""
    tasks, n = tuple(meta["tasks"]), len(meta["classes"])
    if meta["student"] == "small":
        return SmallStudent(tasks, n, meta["width"])
    args = json.loads(meta["backbone_args"]) if meta.get("backbone_args") else {}
    return DPTStudent(
        tasks, n, meta["backbone"], meta.get("backbone_weights", "random"), args, meta["width"], meta["resolution"]
    )


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
