"""Small Sweet Home 3D catalogues (.sh3f zip files) written by tests: a chair made of boxes, with two materials
(one textured, with UVs), and the kinds of broken model the importer must skip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def _box(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    v = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], dtype=np.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return v, np.array(quads)


def chair_obj(name: str = "chair", nan: bool = False) -> str:
    """An OBJ chair in Sweet Home 3D's frame (y up, front toward +z), 2 x 4 x 2 units: a seat at y 1.6-2.0 on four
    legs, a back at the -z side; the seat and back use material `wood_seat` (textured), the legs `metal_legs`."""
    parts = [("wood_seat", (-1, 1.6, -1), (1, 2.0, 1)), ("wood_seat", (-1, 2.0, -1), (1, 4.0, -0.8))]
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * 0.9, sz * 0.9
            parts.append(("metal_legs", (x - 0.1, 0.0, z - 0.1), (x + 0.1, 1.6, z + 0.1)))
    lines = [f"mtllib {name}.mtl", "vt 0 0", "vt 1 0", "vt 1 1", "vt 0 1"]
    offset = 0
    for mat, lo, hi in parts:
        v, quads = _box(lo, hi)
        lines.append(f"usemtl {mat}")
        for p in v:
            lines.append("v " + " ".join("nan" if nan and k == 0 and offset == 0 else f"{c:.4f}"
                                         for k, c in enumerate(p)))
        for q in quads:
            a, b, c, d = (offset + int(i) + 1 for i in q)
            lines.append(f"f {a}/1 {b}/2 {c}/3 {d}/4")
        offset += len(v)
    return "\n".join(lines) + "\n"


def mtl(texture: str | None = "seat.png") -> str:
    tex = f"map_Kd {texture}\n" if texture else ""
    return (f"newmtl wood_seat\nNs 50\nKd 0.8 0.6 0.4\nd 1\n{tex}\n"
            "newmtl metal_legs\nNs 400\nKd 0.6 0.6 0.6\nd 1\n")


def png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.indices((8, 8)).sum(0) % 2 * 200 + 30).astype(np.uint8)).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def write_sh3f(path: Path, licence: str = "Creative Commons Attribution 3.0 license  © Test Makers",
               broken: bool = True) -> Path:
    """A catalogue with a good chair (Office, 45 x 45 x 90 cm, seat at 40 cm) and, if ``broken``, a model whose
    texture is missing, one with a NaN vertex and one whose OBJ is garbage."""
    models = [("chair", "Test chair", "Office", chair_obj("chair"), mtl(), True)]
    if broken:
        models += [("notex", "No texture chair", "Office", chair_obj("notex"), mtl("gone.png"), False),
                   ("nanchair", "NaN chair", "Office", chair_obj("nanchair", nan=True), mtl(), True),
                   ("junk", "Junk", "Office", "\x00\x01garbage\nf 1 2 3\n", mtl(None), False)]
    props = ["# test catalogue", "id=Test#Models", "name=Test catalog", f"license={licence}", "provider=tests", ""]
    for k, (key, name, cat, _obj, _mtl, _tex) in enumerate(models, start=1):
        props += [f"id#{k}=Test#{key}", f"name#{k}={name}", f"category#{k}={cat}", f"model#{k}=/test/{key}/{key}.obj",
                  f"width#{k}=45", f"depth#{k}=45", f"height#{k}=90", f"creator#{k}=Maker {k}",
                  f"doorOrWindow#{k}=false", ""]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("PluginFurnitureCatalog.properties", "\n".join(props).encode("latin-1"))
        z.writestr("LICENSE.TXT", licence)
        for key, _name, _cat, obj, m, tex in models:
            z.writestr(f"test/{key}/{key}.obj", obj)
            z.writestr(f"test/{key}/{key}.mtl", m)
            if tex:
                z.writestr(f"test/{key}/seat.png", png())
    return path
