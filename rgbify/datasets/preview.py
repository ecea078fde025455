"""``rgbify preview DIR``: a captioned contact sheet, one row per sample, one column per view of it; and a clip's
filmstrip and animated GIF (:func:`clip_preview`, from a clip shard).

Columns: RGB, depth as a depth/cubewalk target, depth as a depth/hilbert24 target, the normals target,
semantic (a fixed colour per class), instance (a colour per id) and edge (white = mixed pixel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rgbify.datasets.loading.captions import caption
from rgbify.datasets.storage.reader import DatasetReader
from rgbify.encode import encode_depth, encode_normals, flow_to_color
from rgbify.errors import UserError
from rgbify.fileio import publishing
from rgbify.scenes.spec import spec_from_json


class PreviewError(UserError, ValueError):
    """Nothing to show: the dataset has no published sample."""


COLUMNS = ("RGB", "depth: cubewalk", "depth: hilbert24", "normals", "semantic", "instance", "edge")


def label_colors(ids: np.ndarray, salt: int = 0) -> np.ndarray:
    """uint8 (H,W,3): a distinct, stable colour per non-zero id (golden-ratio hues), black for 0."""
    ids = np.asarray(ids, dtype=np.int64)
    hue = ((ids + salt) * 0.61803398875) % 1.0
    sat = 0.55 + 0.45 * ((ids * 7 + salt) % 3) / 2
    val = 0.95 - 0.3 * ((ids * 5 + salt) % 2)
    i = np.floor(hue * 6).astype(np.int64) % 6
    f = hue * 6 - np.floor(hue * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    r = np.choose(i, [val, q, p, p, t, val])
    g = np.choose(i, [t, val, val, q, p, p])
    b = np.choose(i, [p, p, t, val, val, q])
    rgb = np.stack([r, g, b], axis=-1) * 255
    rgb[ids == 0] = 0
    return rgb.round().astype(np.uint8)


def sample_views(s: dict) -> list[np.ndarray]:
    """The contact sheet's columns for one stored sample, each uint8 (H,W,3)."""
    depth = s["depth"]
    edge = np.repeat(s["edge"][..., None].astype(np.uint8) * 255, 3, axis=-1)
    return [s["rgb"], encode_depth(depth, "cubewalk"), encode_depth(depth, "hilbert24"),
            encode_normals(s["normals"]), label_colors(s["semantic"], salt=3), label_colors(s["instance"]), edge]


def contact_sheet(directory: str | Path, out: str | Path, n: int = 8, tile_width: int = 160) -> Path:
    """Write the contact sheet of ``n`` samples spread evenly over the dataset to ``out`` (PNG); return its path. A
    clip dataset (``rgbify build --clip-frames``) gets its first clip's filmstrip (:func:`clip_preview`) at ``out``
    and the clip's animated GIF beside it (``out`` with the suffix .gif)."""
    from rgbify.datasets.storage.manifest import load_manifest

    m = load_manifest(directory)
    if "clip" in m:
        shards = sorted(m["shards"], key=lambda e: e["first_index"])
        if not shards:
            raise PreviewError(f"{directory}: the dataset has no published clips yet; run `rgbify build` first")
        return clip_preview(Path(directory) / shards[0]["file"], 0, out, Path(out).with_suffix(".gif"),
                            tile_width=tile_width)[0]
    reader = DatasetReader(directory)
    indices = reader.indices
    if not indices:
        reader.close()
        raise PreviewError(f"{directory}: the dataset has no published samples yet; run `rgbify build` first (or "
                           "let the running one publish its first shard)")
    picks = sorted({indices[round(j * (len(indices) - 1) / max(1, n - 1))] for j in range(min(n, len(indices)))})
    h0, w0 = reader.manifest["height"], reader.manifest["width"]
    tw = max(tile_width, 96)
    th = max(1, round(h0 * tw / w0))
    font = _font(12)
    head, left, gap, cap = 20, 48, 2, 16
    row_h = th + cap + gap
    sheet = Image.new("RGB", (left + len(COLUMNS) * (tw + gap), head + len(picks) * row_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(COLUMNS):
        draw.text((left + c * (tw + gap) + 3, 4), name, fill=(230, 230, 230), font=font)
    for r, index in enumerate(picks):
        s = reader.read(index)
        y = head + r * row_h
        draw.text((4, y + th // 2 - 6), f"#{index}", fill=(230, 230, 230), font=font)
        draw.text((left + 3, y + th + 1), _row_caption(s), fill=(190, 190, 190), font=font)
        for c, view in enumerate(sample_views(s)):
            resample = Image.BILINEAR if c == 0 else Image.NEAREST
            sheet.paste(Image.fromarray(view).resize((tw, th), resample), (left + c * (tw + gap), y))
    reader.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with publishing(out, ".tmp.png") as tmp:
        sheet.save(tmp)
    return out


def _row_caption(s: dict) -> str:
    """Scene caption, instance count and depth range of one sample."""
    depth = s["depth"][np.isfinite(s["depth"])]
    rng = f"depth {depth.min():.2f}-{depth.max():.2f} m" if depth.size else "no surface hit"
    ids = set(np.unique(s["instance"][s["instance"] > 0]).tolist())
    return f"{caption(spec_from_json(s['spec']), visible=ids)}  |  {len(ids)} instances visible  |  {rng}"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


# --- clips ---------------------------------------------------------------------------------------------------

CLIP_ROWS = ("RGB", "depth: cubewalk", "flow t -> t+1", "instance")


def clip_frame_views(f: dict, max_flow: float) -> list[np.ndarray]:
    """The filmstrip's rows for one stored clip frame (rgbify.datasets.storage.clips), each uint8 (H,W,3): RGB,
    depth as a cubewalk target, forward flow in the Middlebury colours (black where invalid; one ``max_flow`` for
    the whole clip, so colours compare across frames) and instances."""
    return [f["rgb"], encode_depth(f["depth"], "cubewalk"), flow_to_color(f["flow_fwd"], max_flow, f["valid_fwd"]),
            label_colors(f["instance"])]


def clip_preview(shard: str | Path, clip: int, png: str | Path, gif: str | Path | None = None,
                 tile_width: int = 160, fps: float | None = None) -> tuple[Path, Path | None]:
    """Write a clip's filmstrip (``png``: one column per frame, one row per view: CLIP_ROWS) and, with ``gif``, an
    animated GIF playing the four views side by side at the clip's frame rate (or ``fps``). Returns the paths."""
    from rgbify.datasets.storage.clips import ClipShardReader

    with ClipShardReader(shard) as reader:
        if not 0 <= clip < len(reader):
            raise PreviewError(f"{shard}: clip {clip} is not in this shard (it holds {len(reader)}: 0-"
                               f"{len(reader) - 1})")
        frames = [reader.frame(clip, t) for t in range(reader.frames)]
        rate = float(fps or reader.file.attrs["fps"])
    speeds = [np.hypot(*np.moveaxis(f["flow_fwd"][f["valid_fwd"]], -1, 0)) for f in frames]
    max_flow = max([float(s.max()) for s in speeds if s.size] or [1.0])
    h0, w0 = frames[0]["depth"].shape
    tw = max(tile_width, 32)
    th = max(1, round(h0 * tw / w0))
    font = _font(12)
    left, head, gap = 110, 20, 2
    strip = Image.new("RGB", (left + len(frames) * (tw + gap), head + len(CLIP_ROWS) * (th + gap)), (24, 24, 24))
    draw = ImageDraw.Draw(strip)
    tiles = []
    for t, f in enumerate(frames):
        views = [Image.fromarray(v).resize((tw, th), Image.BILINEAR if r == 0 else Image.NEAREST)
                 for r, v in enumerate(clip_frame_views(f, max_flow))]
        draw.text((left + t * (tw + gap) + 3, 4), f"t = {t}", fill=(230, 230, 230), font=font)
        for r, view in enumerate(views):
            strip.paste(view, (left + t * (tw + gap), head + r * (th + gap)))
        tile = Image.new("RGB", (len(views) * (tw + gap) - gap, th), (24, 24, 24))
        for r, view in enumerate(views):
            tile.paste(view, (r * (tw + gap), 0))
        tiles.append(tile)
    for r, name in enumerate(CLIP_ROWS):
        draw.text((4, head + r * (th + gap) + th // 2 - 6), name, fill=(230, 230, 230), font=font)
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with publishing(png, ".tmp.png") as tmp:
        strip.save(tmp)
    if gif is None:
        return png, None
    gif = Path(gif)
    gif.parent.mkdir(parents=True, exist_ok=True)
    with publishing(gif, ".tmp.gif") as tmp:
        tiles[0].save(tmp, format="GIF", save_all=True, append_images=tiles[1:], duration=round(1000 / rate), loop=0)
    return png, gif
