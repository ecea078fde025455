"""The geometry of the ``outdoor`` street (no bpy): a road centreline that is straight or a constant-curvature arc,
a ground plane that rises along x (the road's grade), and uneven ground (a height field) beyond the sidewalks.

Road coordinates (s, t): ``s`` the arc length along the centreline (s = 0 at the world origin, heading +x there),
``t`` the signed distance to its left (+) or right (-). The centreline of curvature k (1/m; 0: straight, > 0 turns
left) is C(s) = (sin(ks)/k, (1 - cos(ks))/k), heading ks; a point is C(s) + t N(s), N the left normal.

Heights: every road-side surface (road, sidewalks, the ground under and next to them, building plots) lies on the
plane z = grade * x, so a thing placed on it and tilted with the plane's normal rests on it exactly. Farther out
the ground is a height field, the plane plus a gentle undulation faded in with the distance from the road, the
cross road and the buildings; things stand on its triangles (:meth:`Terrain.height`, :meth:`Terrain.fits`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rgbify.scenes import portable
from rgbify.scenes.geometry import rot_z, translate


def tilt(normal: np.ndarray) -> np.ndarray:
    """4x4 rotation carrying +z onto the unit ``normal`` by the shortest turn (identity for +z)."""
    n = np.asarray(normal, dtype=np.float64) / np.linalg.norm(normal)
    m = np.eye(4)
    axis = np.cross([0.0, 0.0, 1.0], n)
    s, c = float(np.linalg.norm(axis)), float(n[2])
    if s < 1e-12:
        return m
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    m[:3, :3] = np.eye(3) + s * kx + (1 - c) * (kx @ kx)
    return m


@dataclass
class Road:
    """Centreline and ground plane (see the module docstring)."""

    curvature: float = 0.0
    grade: float = 0.0

    def xy(self, s: np.ndarray | float, t: np.ndarray | float) -> np.ndarray:
        """World (x, y) of road coordinates (s, t), shape (..., 2)."""
        s, t, k = np.asarray(s, dtype=np.float64), np.asarray(t, dtype=np.float64), self.curvature
        if k == 0.0:
            x, y = s + 0 * t, t + 0 * s
        else:
            a = k * s
            x = np.sin(a) / k - t * np.sin(a)
            y = (1 - np.cos(a)) / k + t * np.cos(a)
        return np.stack([x, y], axis=-1)

    def heading(self, s: float) -> float:
        """Direction of increasing s at s, radians from +x."""
        return self.curvature * float(s)

    def tangent(self, s: float) -> np.ndarray:
        a = self.heading(s)
        return np.array([math.cos(a), math.sin(a)])

    def st(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Road coordinates of world points (the nearest centreline point within half a turn)."""
        x, y, k = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), self.curvature
        if k == 0.0:
            return x, y
        vx, vy = x, y - 1.0 / k
        r = math.copysign(1.0, k) * np.hypot(vx, vy)
        r = np.where(np.abs(r) < 1e-9, 1e-9, r)
        a = portable.arctan2(vx / r, -vy / r)
        return a / k, 1.0 / k - r

    def z(self, x: np.ndarray | float, y: np.ndarray | float = 0.0) -> np.ndarray:
        """Height of the road-side plane at world (x, y)."""
        return self.grade * np.asarray(x, dtype=np.float64)

    @property
    def up(self) -> np.ndarray:
        n = np.array([-self.grade, 0.0, 1.0])
        return n / np.linalg.norm(n)

    def point(self, s: float, t: float, lift: float = 0.0) -> np.ndarray:
        x, y = self.xy(s, t)
        return np.array([float(x), float(y), float(self.z(x)) + lift])

    def frame(self, s: float, t: float, lift: float = 0.0, yaw_deg: float = 0.0) -> np.ndarray:
        """world_from_model of a thing standing on the plane ``lift`` above it (road, kerb) at (s, t), turned by
        ``yaw_deg`` from the road's heading there and leaning with the plane."""
        p = self.point(s, t, lift)
        return translate(*p) @ tilt(self.up) @ rot_z(math.degrees(self.heading(s)) + yaw_deg)

    def slope_along(self, yaw: float) -> float:
        """Rise per metre of the plane along the horizontal direction ``yaw`` (radians from +x)."""
        return self.grade * math.cos(yaw)

    def ribbon(self, s_in: tuple[float, float], s_out: tuple[float, float], t0: float, t1: float, h0: float,
               h1: float, step: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A closed slab bent along the road: from t0 (ends at s_in) to t1 (ends at s_out), h0 to h1 above the
        plane; split into pieces short enough that the chords stay within 5 mm of the arc."""
        if step is None:
            step = self.step()
        n = max(1, int(math.ceil(max(abs(s_in[1] - s_in[0]), abs(s_out[1] - s_out[0])) / step)))
        if self.curvature == 0.0:
            n = 1
        u = np.linspace(0.0, 1.0, n + 1)
        sa = s_in[0] + u * (s_in[1] - s_in[0])
        sb = s_out[0] + u * (s_out[1] - s_out[0])
        ea, eb = self.xy(sa, np.full_like(sa, t0)), self.xy(sb, np.full_like(sb, t1))
        verts = []
        for e in (ea, eb):
            for h in (h0, h1):
                verts.append(np.column_stack([e, self.z(e[:, 0]) + h]))
        v = np.concatenate(verts)  # rings: 0 a-bottom, 1 a-top, 2 b-bottom, 3 b-top; n + 1 points each
        m = n + 1

        def q(r0: int, r1: int, flip: bool) -> list[list[int]]:
            out = []
            for i in range(n):
                a, b, c, d = r0 * m + i, r0 * m + i + 1, r1 * m + i + 1, r1 * m + i
                out += [[a, b, c], [a, c, d]] if not flip else [[a, c, b], [a, d, c]]
            return out

        flip = (t1 - t0) < 0  # keeps the winding outward whichever side t1 is on
        f = q(1, 3, flip) + q(0, 2, not flip) + q(0, 1, flip) + q(2, 3, not flip)
        for i, sgn in ((0, 1), (n, -1)):  # the two end caps
            a, b, c, d = 0 * m + i, 1 * m + i, 3 * m + i, 2 * m + i
            cap = [[a, b, c], [a, c, d]]
            f += cap if (sgn > 0) != flip else [[a, c, b], [a, d, c]]
        return v, np.asarray(f, dtype=np.int64)

    def step(self) -> float:
        k = abs(self.curvature)
        return 1e9 if k == 0.0 else max(1.0, math.sqrt(8.0 * 0.005 / k))


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class Terrain:
    """The ground: a height field on a rectilinear grid (5 m cells near the street, coarse beyond), each cell two
    triangles split along its (i, j)-(i + 1, j + 1) diagonal, heights the road plane plus ``undulation``."""

    road: Road
    xs: np.ndarray
    ys: np.ndarray
    h: np.ndarray
    """(len(xs), len(ys)) heights at the grid points."""
    relief: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(len(xs), len(ys)) the undulation alone (height above the plane)."""

    @classmethod
    def make(cls, road: Road, rng: np.random.Generator, size: float, amplitude: float,
             keep_flat: list[np.ndarray]) -> Terrain:
        """Ground of ``size`` metres square: the plane, plus (``amplitude`` > 0) three sine waves 25-90 m long whose
        sum is scaled to ``amplitude`` metres at most, times each mask of ``keep_flat`` (functions of the grid points'
        x and y, 0 where the ground must keep to the plane) and faded out near the border."""
        fine, half = 5.0, size / 2
        near = min(220.0, half - 20.0)
        inner = np.arange(-near, near + 1e-9, fine)
        outer = np.array([x for x in (-half, -(near + half) / 2) if x < -near])
        xs = np.concatenate([outer, inner, -outer[::-1]])
        ys = xs.copy()
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        relief = np.zeros_like(gx)
        if amplitude > 0:
            for _ in range(3):
                lam, a = float(rng.uniform(25.0, 90.0)), float(rng.uniform(0, 2 * math.pi))
                ph = float(rng.uniform(0, 2 * math.pi))
                w = float(rng.uniform(0.4, 1.0)) * lam / 90.0  # longer waves may be taller: slopes stay gentle
                relief += w * np.sin(2 * math.pi / lam * (gx * math.cos(a) + gy * math.sin(a)) + ph)
            relief *= amplitude / max(float(np.abs(relief).max()), 1e-9)
            mask = 1.0 - smoothstep((np.maximum(np.abs(gx), np.abs(gy)) - (near - 50.0)) / 40.0)
            for fn in keep_flat:
                mask = mask * fn(gx, gy)
            relief = relief * mask
        return cls(road, xs, ys, road.z(gx) + relief, relief)

    def _cell(self, x: float, y: float) -> tuple[int, int, float, float]:
        i = int(np.clip(np.searchsorted(self.xs, x, side="right") - 1, 0, len(self.xs) - 2))
        j = int(np.clip(np.searchsorted(self.ys, y, side="right") - 1, 0, len(self.ys) - 2))
        u = (x - self.xs[i]) / (self.xs[i + 1] - self.xs[i])
        v = (y - self.ys[j]) / (self.ys[j + 1] - self.ys[j])
        return i, j, float(u), float(v)

    def height(self, x: float, y: float) -> float:
        """Height of the ground's triangles at world (x, y)."""
        i, j, u, v = self._cell(x, y)
        h = self.h
        if u >= v:
            return float(h[i, j] + u * (h[i + 1, j] - h[i, j]) + v * (h[i + 1, j + 1] - h[i + 1, j]))
        return float(h[i, j] + v * (h[i, j + 1] - h[i, j]) + u * (h[i + 1, j + 1] - h[i, j + 1]))

    def normal(self, x: float, y: float) -> np.ndarray:
        """Unit normal of the ground's triangle under world (x, y)."""
        i, j, u, v = self._cell(x, y)
        h, dx, dy = self.h, self.xs[i + 1] - self.xs[i], self.ys[j + 1] - self.ys[j]
        if u >= v:
            gx, gy = (h[i + 1, j] - h[i, j]) / dx, (h[i + 1, j + 1] - h[i + 1, j]) / dy
        else:
            gx, gy = (h[i + 1, j + 1] - h[i, j + 1]) / dx, (h[i, j + 1] - h[i, j]) / dy
        n = np.array([-gx, -gy, 1.0])
        return n / np.linalg.norm(n)

    def frame(self, x: float, y: float, yaw_deg: float) -> np.ndarray:
        """world_from_model of a thing standing on the ground's triangle at (x, y), leaning with it."""
        return translate(x, y, self.height(x, y)) @ tilt(self.normal(x, y)) @ rot_z(yaw_deg)

    def fits(self, boxes: list[tuple[np.ndarray, np.ndarray]], world_from_model: np.ndarray, tol: float = 0.002
             ) -> bool:
        """Whether a thing placed by ``world_from_model`` stands on the ground: the bottom corners of each of its
        boxes that reach down to its base (model z < 2 cm) lie within ``tol`` of the ground's triangles (nothing
        sinks in, nothing hangs in the air)."""
        for c, hf in boxes:
            if c[2] - hf[2] > 0.02:
                continue
            for sx in (-1, 1):
                for sy in (-1, 1):
                    p = world_from_model @ np.array([c[0] + sx * hf[0], c[1] + sy * hf[1], c[2] - hf[2], 1.0])
                    if abs(self.height(p[0], p[1]) - p[2]) > tol:
                        return False
        return True

    def mesh(self, depth: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """A closed mesh: the height field on top, a skin ``depth`` below it, walls around the border."""
        nx, ny = len(self.xs), len(self.ys)
        gx, gy = np.meshgrid(self.xs, self.ys, indexing="ij")
        top = np.column_stack([gx.ravel(), gy.ravel(), self.h.ravel()])
        bottom = top - np.array([0.0, 0.0, depth])
        v = np.concatenate([top, bottom])
        idx = np.arange(nx * ny).reshape(nx, ny)
        a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
        up = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
        faces = [up, up[:, ::-1] + nx * ny]
        ring = np.concatenate([idx[:, 0], idx[-1, 1:], idx[-2::-1, -1], idx[0, -2:0:-1]])  # counter-clockwise
        r0, r1 = ring, np.roll(ring, -1)
        faces += [np.column_stack([r0, r0 + nx * ny, r1 + nx * ny]), np.column_stack([r0, r1 + nx * ny, r1])]
        return v, np.concatenate(faces).astype(np.int64)
