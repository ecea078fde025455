"""Semantic and instance targets: labels <-> colours named in the prompt (docs/codecs.md).

- semantic: each class the prompt asks for gets a palette colour; other pixels are black. Decode: nearest prompt
  colour (or black) within ``threshold``, else unlabeled (0).
- instance, variant "shades" (summary): the instances of one class, largest first, get distinct shades of the
  class colour (the colour itself, then darker and lighter ones, at least ``SHADE_SPACING`` apart).
  Decode: nearest shade. When a class has more instances than shades, shades repeat and decoding then splits
  each shade into connected regions (``split_regions``).
- instance, variant "distinct" (paper): each instance gets its own palette colour. Decode: cluster the image's
  colours greedily with ``threshold`` (no prompt colours needed), then give a cluster the id of the known
  instance colour nearest to it, if any lies within ``threshold``.

Label arrays are int32 (H, W); 0 = nothing / unlabeled. Colours are (r, g, b) ints in 0..255.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rgbify.encode.codecs import check_rgb
from rgbify.encode.errors import CodecInputError

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class NamedColor:
    name: str
    rgb: RGB

    @property
    def hex(self) -> str:
        return "#{:02X}{:02X}{:02X}".format(*self.rgb)


PALETTE: tuple[NamedColor, ...] = tuple(
    NamedColor(n, c)
    for n, c in [
        ("red", (255, 0, 0)),
        ("lime", (0, 255, 0)),
        ("blue", (0, 0, 255)),
        ("yellow", (255, 255, 0)),
        ("cyan", (0, 255, 255)),
        ("magenta", (255, 0, 255)),
        ("white", (255, 255, 255)),
        ("gray", (128, 128, 128)),
        ("maroon", (128, 0, 0)),
        ("green", (0, 128, 0)),
        ("navy", (0, 0, 128)),
        ("olive", (128, 128, 0)),
        ("teal", (0, 128, 128)),
        ("purple", (128, 0, 128)),
        ("orange", (255, 128, 0)),
        ("rose", (255, 0, 128)),
        ("chartreuse", (128, 255, 0)),
        ("spring green", (0, 255, 128)),
        ("azure", (0, 128, 255)),
        ("violet", (128, 0, 255)),
        ("salmon", (255, 128, 128)),
        ("light green", (128, 255, 128)),
        ("periwinkle", (128, 128, 255)),
        ("light yellow", (255, 255, 128)),
        ("light magenta", (255, 128, 255)),
        ("electric blue", (128, 255, 255)),
    ]
)
"""26 named colours: the non-black points of the {0, 128, 255}^3 grid, pairwise at least 127 apart (and from
black), so noise of several levels never moves a pixel to another colour."""

SEMANTIC_THRESHOLD = 100.0
"""Decode radius (RGB Euclidean) of a prompt colour in semantic targets."""
SHADE_SPACING = 80.0
"""Distance between consecutive shades of one class colour, and from the darkest shade to black."""
MIN_SHADE_SPACING = 40.0
"""A class with more instances than fit at SHADE_SPACING gets shades closer together, down to this."""
INSTANCE_THRESHOLD = 60.0
"""Decode radius of a shade / a colour cluster in instance targets."""


def color_name(rgb: RGB) -> str:
    """The palette name of ``rgb``, or its hex code when it is not a palette colour."""
    for c in PALETTE:
        if c.rgb == tuple(rgb):
            return c.name
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def _check_labels(labels: Any, what: str) -> np.ndarray:
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype.kind not in "iu":
        got = f"{labels.dtype} of shape {labels.shape}" if isinstance(labels, np.ndarray) else type(labels).__name__
        raise CodecInputError(f"{what} must be an int32 array of shape (H, W), got {got}")
    return labels


def _as_colors(colors: Any, what: str) -> np.ndarray:
    c = np.asarray(colors, dtype=np.int64).reshape(-1, 3) if len(colors) else np.zeros((0, 3), np.int64)
    if ((c < 0) | (c > 255)).any():
        raise CodecInputError(f"{what} must be RGB triples in 0..255, got {colors!r}")
    return c


_LUT_LIMIT = 1 << 22
"""Labels in [0, _LUT_LIMIT) are painted and counted through flat tables; others through sorting."""


def label_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels present, pixel counts), ascending, without sorting the image when the labels are small ints."""
    flat = labels.ravel()
    if flat.size and 0 <= int(flat.min()) and int(flat.max()) < _LUT_LIMIT:
        counts = np.bincount(flat)
        present = np.flatnonzero(counts)
        return present, counts[present]
    return np.unique(flat, return_counts=True)


def paint(labels: np.ndarray, label_colors: dict[int, RGB], what: str = "labels") -> np.ndarray:
    """int (H, W) labels -> uint8 (H, W, 3): label l gets label_colors[l], every other label black."""
    labels = _check_labels(labels, what)
    if not label_colors or labels.size == 0:
        return np.zeros(labels.shape + (3,), dtype=np.uint8)
    keys = np.array(sorted(label_colors), dtype=np.int64)
    cols = _as_colors([label_colors[k] for k in keys], "colours").astype(np.uint8)
    lo, hi = int(labels.min()), int(labels.max())
    if 0 <= lo and hi < _LUT_LIMIT:
        lut = np.zeros((hi + 1, 3), dtype=np.uint8)
        inside = (keys >= 0) & (keys <= hi)
        lut[keys[inside]] = cols[inside]
        return lut[labels]
    out = np.zeros(labels.shape + (3,), dtype=np.uint8)
    pos = np.minimum(np.searchsorted(keys, labels), len(keys) - 1)
    hit = keys[pos] == labels
    out[hit] = cols[pos[hit]]
    return out


def nearest_label(rgb: np.ndarray, label_colors: dict[int, RGB], threshold: float) -> np.ndarray:
    """uint8 (H, W, 3) -> int32 (H, W): the label of the nearest colour among label_colors and black (label 0)
    if within ``threshold`` (RGB Euclidean), else 0. Never raises on pixel values."""
    from rgbify.encode import kernels

    rgb = check_rgb(rgb)
    labels = np.array([0] + [int(k) for k in label_colors], dtype=np.int32)
    colors = np.concatenate([np.zeros((1, 3), np.int64), _as_colors(list(label_colors.values()), "colours")])
    out = np.empty(rgb.shape[:2], dtype=np.int32)
    kernels.nearest_label(rgb, colors, labels, int(np.floor(float(threshold) ** 2)), out)
    return out


# ----------------------------------------------------------------------------------------------- semantic
def encode_semantic(semantic: np.ndarray, class_colors: dict[int, RGB]) -> np.ndarray:
    """int (H, W) class indices -> uint8 (H, W, 3): classes in ``class_colors`` get their colour, others black."""
    return paint(semantic, {int(k): tuple(v) for k, v in class_colors.items() if int(k) != 0}, "semantic")


def decode_semantic(rgb: np.ndarray, class_colors: dict[int, RGB], threshold: float = SEMANTIC_THRESHOLD
                    ) -> np.ndarray:
    """uint8 (H, W, 3) -> int32 (H, W) class indices: the nearest prompt colour within ``threshold``, else 0."""
    return nearest_label(rgb, {int(k): tuple(v) for k, v in class_colors.items()}, threshold)


# ----------------------------------------------------------------------------------------------- instance
def instance_shades(color: RGB, spacing: float = SHADE_SPACING) -> list[RGB]:
    """Distinct shades of ``color``, in the order instances get them: the colour itself, then alternately darker
    and lighter points on the path black -> colour -> white, ``spacing`` apart along it (none nearer to black
    than ``spacing``)."""
    c = np.asarray(color, dtype=np.float64)
    l1 = float(np.linalg.norm(c))
    l2 = float(np.linalg.norm(255.0 - c))

    def at(s: float) -> RGB:
        p = c * (s / l1) if s <= l1 else c + (255.0 - c) * ((s - l1) / l2)
        return tuple(int(v) for v in np.floor(p + 0.5))  # type: ignore[return-value]

    darker = [l1 - k * spacing for k in range(1, 64) if l1 - k * spacing >= spacing - 1e-9]
    lighter = [l1 + k * spacing for k in range(1, 64) if l1 + k * spacing <= l1 + l2 + 1e-9]
    out = [tuple(int(v) for v in c)]
    for k in range(max(len(darker), len(lighter))):
        if k < len(darker):
            out.append(at(darker[k]))
        if k < len(lighter):
            out.append(at(lighter[k]))
    return out  # type: ignore[return-value]


def instance_colors(instance_ids: list[int], variant: str, class_color: RGB | None = None,
                    rng: np.random.Generator | None = None) -> tuple[dict[int, RGB], bool]:
    """Colours for the instances ``instance_ids`` (ordered largest first). Returns (id -> colour, split_regions).

    "shades": shades of ``class_color``, SHADE_SPACING apart, or closer (down to MIN_SHADE_SPACING, in steps of
    8) when the class has more instances; "distinct": palette colours drawn by ``rng``. When there are still more
    instances than colours, colours repeat and ``split_regions`` is True."""
    if variant == "shades":
        if class_color is None:
            raise CodecInputError("instance variant 'shades' needs class_color")
        spacing = SHADE_SPACING
        pool = instance_shades(class_color, spacing)
        while len(pool) < len(instance_ids) and spacing - 8.0 >= MIN_SHADE_SPACING:
            spacing -= 8.0
            pool = instance_shades(class_color, spacing)
    elif variant == "distinct":
        order = rng.permutation(len(PALETTE)) if rng is not None else np.arange(len(PALETTE))
        pool = [PALETTE[i].rgb for i in order]
    else:
        raise CodecInputError(f"unknown instance variant {variant!r}; use 'shades' or 'distinct'")
    colors = {int(i): pool[k % len(pool)] for k, i in enumerate(instance_ids)}
    return colors, len(instance_ids) > len(pool)


def encode_instance(instance: np.ndarray, instance_colors: dict[int, RGB]) -> np.ndarray:
    """int (H, W) instance ids -> uint8 (H, W, 3): ids in ``instance_colors`` get their colour, others black."""
    return paint(instance, {int(k): tuple(v) for k, v in instance_colors.items() if int(k) != 0}, "instance")


def _split_regions(labels: np.ndarray, first_new: int) -> np.ndarray:
    """Give every 4-connected region of each non-zero label its own id (the largest region keeps the label)."""
    from scipy import ndimage

    out = labels.copy()
    nxt = first_new
    for lab in np.unique(labels):
        if lab == 0:
            continue
        regions, n = ndimage.label(labels == lab)
        if n <= 1:
            continue
        sizes = np.bincount(regions.ravel())[1:]
        keep = int(np.argmax(sizes)) + 1
        for r in range(1, n + 1):
            if r != keep:
                out[regions == r] = nxt
                nxt += 1
    return out


def cluster_colors(rgb: np.ndarray, threshold: float = INSTANCE_THRESHOLD, background_threshold: float | None = None,
                   max_clusters: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Greedy colour clustering of a target image. Returns (labels int32 (H, W), 0 = black background and
    labels 1..K; centres float64 (K, 3)), clusters numbered by size, largest first.

    Pixels within ``background_threshold`` (default ``threshold``) of black are background. Then, repeatedly: the
    densest 32-level colour bin of the unassigned colours seeds a cluster at its mean colour; the cluster takes all
    unassigned colours within ``threshold`` of it, its centre moves to their mean, and it takes them again."""
    rgb = check_rgb(rgb)
    bg2 = (threshold if background_threshold is None else background_threshold) ** 2
    t2 = threshold**2
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    uniq, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    cols = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.float64)
    assign = np.zeros(len(uniq), dtype=np.int64)
    free = (cols**2).sum(1) > bg2
    bins = ((cols[:, 0].astype(np.int64) >> 5) << 6) | ((cols[:, 1].astype(np.int64) >> 5) << 3) | (
        cols[:, 2].astype(np.int64) >> 5)
    centres: list[np.ndarray] = []
    sizes: list[int] = []
    while free.any() and len(centres) < max_clusters:
        dens = np.bincount(bins[free], weights=counts[free], minlength=512)
        b = int(np.argmax(dens))
        sel = free & (bins == b)
        centre = (cols[sel] * counts[sel, None]).sum(0) / counts[sel].sum()
        for _ in range(2):
            member = free & (((cols - centre) ** 2).sum(1) <= t2)
            if not member.any():
                member = sel
            centre = (cols[member] * counts[member, None]).sum(0) / counts[member].sum()
        assign[member] = len(centres) + 1
        free &= ~member
        centres.append(centre)
        sizes.append(int(counts[member].sum()))
    # renumber by size, largest first
    order = np.argsort(-np.array(sizes, dtype=np.int64), kind="stable")
    remap = np.zeros(len(centres) + 1, dtype=np.int32)
    remap[order + 1] = np.arange(1, len(centres) + 1, dtype=np.int32)
    labels = remap[assign][inverse].reshape(rgb.shape[:2]).astype(np.int32)
    return labels, np.array(centres, dtype=np.float64).reshape(-1, 3)[order]


def decode_instance(rgb: np.ndarray, instance_colors: dict[int, RGB] | None = None, variant: str = "shades",
                    threshold: float = INSTANCE_THRESHOLD, split_regions: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) -> int32 (H, W) instance ids (0 = none).

    "shades": nearest of ``instance_colors`` (and black) within ``threshold``. "distinct": colour clusters (see
    :func:`cluster_colors`); a cluster takes the id of the nearest of ``instance_colors`` within ``threshold``,
    other clusters get new ids above every known id. With ``split_regions`` every connected region of an id
    becomes its own instance (new ids, except the largest region)."""
    colors = {int(k): tuple(v) for k, v in (instance_colors or {}).items()}
    known = np.array(sorted(colors), dtype=np.int64)
    next_id = int(known.max()) + 1 if len(known) else 1
    if variant == "shades":
        ids = nearest_label(rgb, colors, threshold)  # no colours (class absent): all 0
    elif variant == "distinct":
        clusters, centres = cluster_colors(rgb, threshold)
        lut = np.zeros(len(centres) + 1, dtype=np.int32)
        kc = _as_colors([colors[k] for k in known], "colours").astype(np.float64)
        taken: set[int] = set()
        for c, centre in enumerate(centres, start=1):
            if len(kc):
                d2 = ((kc - centre) ** 2).sum(1)
                k = int(np.argmin(d2))
                if d2[k] <= threshold**2 and int(known[k]) not in taken:
                    lut[c] = int(known[k])
                    taken.add(int(known[k]))
                    continue
            lut[c] = next_id
            next_id += 1
        ids = lut[clusters]
    else:
        raise CodecInputError(f"unknown instance variant {variant!r}; use 'shades' or 'distinct'")
    if split_regions:
        ids = _split_regions(ids, max(next_id, int(ids.max()) + 1))
    return ids.astype(np.int32)
