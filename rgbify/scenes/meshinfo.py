"""What placement needs to know of a mesh (an imported catalogue model, a user asset): collision boxes that enclose
its parts and the support surfaces other things may stand on, found from its own triangles.

The mesh is in a model frame (rgbify.scenes.builder): z = 0 is the plane it stands on, x and y centred on its
footprint. NumPy and SciPy only (plus trimesh's Embree ray casts for the openness test); the same mesh always gives
the same boxes and surfaces.

Collision boxes: the mesh's surface is sampled densely (every triangle on a barycentric grid no coarser than half
a cell), cut into horizontal slabs, and each slab's points are rasterised on a grid of ``cell`` metres; every
8-connected group of occupied cells gives a box (its points' extents padded by half the sample spacing); boxes of
neighbouring slabs with the same footprint merge. A table gets a box for its top and one per leg, so chairs can be
pulled under it; a chair gets its seat, back and legs.

Support surfaces: faces whose normal points up (within ``UP_DEG``), grouped by height; per height their
footprint is rasterised on a fine grid, and each connected region's largest axis-aligned rectangle of occupied
cells is a surface (at least ``MIN_SIDE_M`` on its short side). Its clear height is the distance to the lowest
triangle above it. A surface that is neither open above nor reachable from the front (a horizontal ray from the
model's front, +y, reaches it: no closed door in the way) is dropped: nothing is put inside closed cupboards.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from rgbify.scenes.builder import Surface
from rgbify.scenes.geometry import TriMesh, face_normals

UP_DEG = 12.0
"""A face is up-facing when its normal is within this angle of +z."""
MIN_SIDE_M = 0.08
"""A support surface is at least this long on its short side."""
MIN_CLEAR_M = 0.05
"""A support surface has at least this much free height above it."""
OPEN_CLEAR_M = 1.0
"""Clear height recorded for a surface with nothing above it."""
MAX_BOXES = 40


def surface_points(mesh: TriMesh, spacing: float) -> np.ndarray:
    """Points on every triangle, no farther apart than ``spacing`` along its edges (the corners included)."""
    tris = mesh.vertices[mesh.faces]
    edges = np.stack([np.linalg.norm(tris[:, 1] - tris[:, 0], axis=1), np.linalg.norm(tris[:, 2] - tris[:, 1], axis=1),
                      np.linalg.norm(tris[:, 0] - tris[:, 2], axis=1)], 1).max(1)
    k = np.clip(np.ceil(edges / spacing), 1, 400).astype(np.int64)
    out = [mesh.vertices]
    for n in np.unique(k[k > 1]):
        sel = tris[k == n]
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = (i + j) <= n
        a, b = i[keep] / n, j[keep] / n
        w = np.stack([1 - a - b, a, b], 1)  # (P, 3) barycentric weights
        out.append(np.einsum("pk,tkd->tpd", w, sel).reshape(-1, 3))
    return np.concatenate(out)


def collision_boxes(mesh: TriMesh, cell: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(centre, half extents) boxes, model frame, that enclose the mesh's triangles (see the module docstring)."""
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    ext = hi - lo
    cell = cell or float(np.clip(ext.max() / 24.0, 0.02, 0.25))
    for _ in range(4):
        boxes = _boxes(mesh, lo, hi, cell)
        if len(boxes) <= MAX_BOXES:
            return boxes
        cell *= 1.6
    c, h = (lo + hi) / 2.0, ext / 2.0
    return [(c, h)]


def _boxes(mesh: TriMesh, lo: np.ndarray, hi: np.ndarray, cell: float) -> list[tuple[np.ndarray, np.ndarray]]:
    spacing = cell / 2.0
    pts = surface_points(mesh, spacing)
    slab = max(cell * 2.0, (hi[2] - lo[2]) / 12.0)
    nz = max(1, int(math.ceil((hi[2] - lo[2]) / slab)))
    zi = np.minimum(((pts[:, 2] - lo[2]) / slab).astype(np.int64), nz - 1)
    ij = np.floor((pts[:, :2] - lo[:2]) / cell).astype(np.int64)
    shape = tuple(int(x) for x in ij.max(0) + 1)
    pad = spacing / 2.0
    rows: list[list[float]] = []  # lo xyz, hi xyz
    for z in range(nz):
        sel = zi == z
        if not sel.any():
            continue
        grid = np.zeros(shape, bool)
        grid[ij[sel, 0], ij[sel, 1]] = True
        labels, n = ndimage.label(grid, structure=np.ones((3, 3), bool))
        lab = labels[ij[sel, 0], ij[sel, 1]]
        p = pts[sel]
        order = np.argsort(lab, kind="stable")
        lab, p = lab[order], p[order]
        starts = np.searchsorted(lab, np.arange(1, n + 1))
        ends = np.searchsorted(lab, np.arange(1, n + 1), side="right")
        for s, e in zip(starts, ends, strict=True):
            q = p[s:e]
            rows.append([*(q.min(0) - pad), *(q.max(0) + pad)])
    merged: list[list[float]] = []
    for r in sorted(rows, key=lambda r: (round(r[2], 6), r[0], r[1])):
        for m in merged:  # the same footprint, stacked: one taller box
            if all(abs(m[k] - r[k]) <= cell for k in (0, 1, 3, 4)) and r[2] <= m[5] + cell:
                m[0], m[1], m[3], m[4] = min(m[0], r[0]), min(m[1], r[1]), max(m[3], r[3]), max(m[4], r[4])
                m[5] = max(m[5], r[5])
                break
        else:
            merged.append(list(r))
    boxes = []
    for m in merged:
        a, b = np.array(m[:3]), np.array(m[3:])
        a[2] = max(a[2], lo[2])
        boxes.append(((a + b) / 2.0, (b - a) / 2.0))
    return boxes


def support_surfaces(mesh: TriMesh, kind: str, cell: float = 0.02) -> list[Surface]:
    """Rectangles other things may stand on (model frame), largest first; ``kind`` names them (table, shelf, ...)."""
    n = face_normals(mesh)
    tris = mesh.vertices[mesh.faces]
    up = n[:, 2] >= math.cos(math.radians(UP_DEG))
    area = 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    up &= area > 0
    if not up.any():
        return []
    zc = tris[up, :, 2].mean(1)
    order = np.argsort(zc, kind="stable")
    idx = np.flatnonzero(up)[order]
    zs = zc[order]
    groups = np.split(idx, np.flatnonzero(np.diff(zs) > 0.01) + 1)
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    out: list[Surface] = []
    for g in groups:
        if area[g].sum() < MIN_SIDE_M ** 2:
            continue
        z = float(tris[g, :, 2].max())
        if z < lo[2] + 0.03:  # the base the model stands on
            continue
        for rect in _rectangles(tris[g], cell):
            x0, y0, x1, y1 = rect
            clear = _clear_above(tris, z, rect, hi[2])
            if clear < MIN_CLEAR_M:
                continue
            s = Surface(z, (x0 + x1) / 2.0, (y0 + y1) / 2.0, (x1 - x0) / 2.0, (y1 - y0) / 2.0, kind,
                        min(clear, OPEN_CLEAR_M))
            if clear >= OPEN_CLEAR_M or _open_in_front(mesh, s):
                out.append(s)
    out.sort(key=lambda s: (-s.hx * s.hy, s.z))
    return out[:8]


def _rectangles(tris: np.ndarray, cell: float) -> list[tuple[float, float, float, float]]:
    """The largest axis-aligned rectangle of each connected region the triangles ``tris`` (T, 3, 3) cover, seen
    from above: cells their points touch, the rectangle then shrunk by a cell on every side (so it lies on them)."""
    sub = TriMesh(tris.reshape(-1, 3), np.arange(len(tris) * 3).reshape(-1, 3))
    pts = surface_points(sub, cell / 2.0)[:, :2]
    lo, hi = pts.min(0), pts.max(0)
    shape = tuple(int(x) for x in np.floor((hi - lo) / cell).astype(np.int64) + 1)
    if shape[0] * shape[1] > 4_000_000:
        return []
    grid = np.zeros(shape, bool)
    ij = np.floor((pts - lo) / cell).astype(np.int64)
    grid[ij[:, 0], ij[:, 1]] = True
    grid = ndimage.binary_closing(grid, np.ones((3, 3), bool)) & ndimage.binary_dilation(grid)  # fill pin holes
    labels, n = ndimage.label(grid)
    out = []
    for k in range(1, n + 1):
        r = _max_rectangle(labels == k)
        if r is None:
            continue
        i0, j0, i1, j1 = r  # inclusive cell indices, then one cell in from each side
        x0, y0 = lo[0] + (i0 + 1) * cell, lo[1] + (j0 + 1) * cell
        x1, y1 = lo[0] + i1 * cell, lo[1] + j1 * cell
        if min(x1 - x0, y1 - y0) >= MIN_SIDE_M:
            out.append((float(x0), float(y0), float(x1), float(y1)))
    return out


def _max_rectangle(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(i0, j0, i1, j1) of the largest all-True rectangle of a 2-D mask (histogram method), or None."""
    rows, cols = mask.shape
    heights = np.zeros(cols, np.int64)
    best, best_area = None, 0
    for i in range(rows):
        heights = np.where(mask[i], heights + 1, 0)
        stack: list[int] = []
        for j in range(cols + 1):
            h = int(heights[j]) if j < cols else 0
            while stack and int(heights[stack[-1]]) >= h:
                top = stack.pop()
                height = int(heights[top])
                left = stack[-1] + 1 if stack else 0
                a = height * (j - left)
                if height and a > best_area:
                    best_area, best = a, (i - height + 1, left, i, j - 1)
            stack.append(j)
    return best


def _clear_above(tris: np.ndarray, z: float, rect: tuple[float, float, float, float], top: float) -> float:
    """Free height above the rectangle at ``z``: up to the lowest triangle above it (OPEN_CLEAR_M if none)."""
    x0, y0, x1, y1 = rect
    lo, hi = tris.min(1), tris.max(1)
    over = (hi[:, 0] > x0 + 1e-4) & (lo[:, 0] < x1 - 1e-4) & (hi[:, 1] > y0 + 1e-4) & (lo[:, 1] < y1 - 1e-4) & \
        (lo[:, 2] > z + 0.005)
    if not over.any():
        return OPEN_CLEAR_M
    return float(lo[over, 2].min() - z)


def _open_in_front(mesh: TriMesh, s: Surface) -> bool:
    """A horizontal ray from in front of the model (+y) reaches the surface's front edge at most sample points."""
    import trimesh

    m = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False, validate=False)
    y_front = float(mesh.vertices[:, 1].max()) + 0.05
    xs = np.linspace(s.cx - s.hx * 0.8, s.cx + s.hx * 0.8, 5)
    z = s.z + min(s.clear_m, 0.3) * 0.5
    origins = np.stack([xs, np.full(5, y_front), np.full(5, z)], 1)
    dirs = np.tile([0.0, -1.0, 0.0], (5, 1))
    locs, ray_idx, _ = m.ray.intersects_location(origins, dirs, multiple_hits=False)
    reach = s.cy + s.hy - 0.01
    blocked = np.zeros(5, bool)
    blocked[ray_idx[locs[:, 1] > reach]] = True
    return int((~blocked).sum()) >= 3
