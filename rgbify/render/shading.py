"""Blender node graphs of the spec's materials (imports bpy; used by rgbify.render.cycles).

Every material is one Principled BSDF. A procedural ``pattern`` drives its colour (a mix of ``base_color`` and
``color2``), its roughness (``roughness`` moved by up to ``roughness_variation``) and a bump map of height
``bump_m`` metres. Patterns are laid out in the object's own frame, in metres: the texture coordinate is the
object-space position, offset by ``pattern_seed`` and divided by ``pattern_scale_m``, so a plank, a tile or a weave
cell has a real size whatever the object (no UVs needed). A pattern is a small graph of Blender's procedural
textures (noise, wave, voronoi, brick); ``PATTERN_RECIPES`` says which. An image texture is laid out the same way
(box projection at ``image_scale_m`` metres a repeat) or by the mesh file's UVs.

Ground truth never sees any of this: the data render overrides every material (rgbify.render.cycles).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import bpy

from rgbify.scenes.spec import Material

PATTERN_RECIPES = {
    "none": "flat colour",
    "noise": "Noise texture (the classic pattern)",
    "voronoi": "Voronoi distance",
    "checker": "Checker",
    "wave": "Wave bands",
    "brick": "Brick (mortar = color2)",
    "wood": "flat-sawn grain along the face: wavy bands of late wood (color2), long pores; a grain bump",
    "planks": "floorboards pattern_scale_m wide and 6x as long, staggered, a tone and grain each, dark seams",
    "plaster": "multi-octave noise: slight colour drift, a fine bump",
    "fabric": "two crossed wave bands (warp and weft), a weave bump",
    "leather": "Voronoi creases (distance to the cell edge), a crease bump",
    "tiles": "Brick with square tiles, grout = color2, recessed grout bump, rougher grout",
    "stone": "Voronoi cells mixed with noise, a rough bump",
    "marble": "distorted wave veins (color2) on the base, glossy",
    "concrete": "noise blotches and fine speckle, a pitted bump",
    "asphalt": "fine Voronoi aggregate (color2 stones) in noise, a rough bump",
    "brushed_metal": "noise stretched along x: streaks in roughness and a faint bump",
    "plastic": "faint noise in roughness",
    "ceramic": "faint noise in colour, glossy",
    "paper": "fine noise fibres",
    "cardboard": "corrugation bands under fine fibres",
    "rubber": "fine noise, matte",
    "foliage": "Voronoi leaves of two greens, a bump",
    "bark": "vertical wave furrows distorted by noise, a deep bump",
    "skin": "smooth noise blotches",
    "carpet": "fine high-detail noise pile, a bump",
    "grass": "fine Voronoi blades over noise patches",
}
"""What each pattern is made of (docs/rendering.md renders a swatch of each)."""


def _set(node: Any, name: str, value: Any) -> None:
    sock = node.inputs.get(name)
    if sock is not None:
        sock.default_value = value


def _socket(sockets: Any, identifier: str) -> Any:
    for s in sockets:
        if s.identifier == identifier:
            return s
    raise KeyError(identifier)


class _Graph:
    """Helpers to add nodes to one material's node tree."""

    def __init__(self, nt: Any) -> None:
        self.nt = nt

    def node(self, kind: str, **inputs: Any) -> Any:
        n = self.nt.nodes.new(kind)
        for k, v in inputs.items():
            if k in ("wave_type", "bands_direction", "rings_direction", "wave_profile", "feature", "distance",
                     "operation", "data_type", "noise_dimensions", "voronoi_dimensions", "projection", "offset",
                     "squash", "offset_frequency", "squash_frequency", "interpolation", "clamp", "normalize"):
                setattr(n, k, v)
            elif isinstance(v, tuple | float | int) and not isinstance(v, bool):
                _set(n, k.replace("_", " "), v)
        return n

    def link(self, out: Any, inp: Any) -> None:
        self.nt.links.new(out, inp)

    def math(self, op: str, a: Any, b: Any = None) -> Any:
        n = self.nt.nodes.new("ShaderNodeMath")
        n.operation = op
        for k, v in enumerate((a, b)):
            if v is None:
                continue
            if isinstance(v, float | int):
                n.inputs[k].default_value = float(v)
            else:
                self.link(v, n.inputs[k])
        return n.outputs[0]

    def mix_color(self, fac: Any, a: tuple, b: tuple) -> Any:
        n = self.nt.nodes.new("ShaderNodeMix")
        n.data_type = "RGBA"
        self.link(fac, _socket(n.inputs, "Factor_Float"))
        _socket(n.inputs, "A_Color").default_value = (*a, 1.0)
        _socket(n.inputs, "B_Color").default_value = (*b, 1.0)
        return _socket(n.outputs, "Result_Color")

    def coords(self, m: Material, stretch: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Any:
        """Object-space position in pattern units: (p + seed) / pattern_scale_m, times ``stretch`` per axis."""
        tc = self.nt.nodes.new("ShaderNodeTexCoord")
        mp = self.nt.nodes.new("ShaderNodeMapping")
        inv = 1.0 / max(float(m.pattern_scale_m), 1e-6)
        seed = float(m.pattern_seed)
        mp.inputs["Location"].default_value = (seed * 1.37 * inv, seed * 2.11 * inv, seed * 0.73 * inv)
        mp.inputs["Scale"].default_value = tuple(inv * s for s in stretch)
        self.link(tc.outputs["Object"], mp.inputs["Vector"])
        return mp.outputs["Vector"]

    def box2d(self, m: Material, stretch: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Any:
        """:meth:`coords` turned so that (x, y) of the result lie in the face: box projection on the axis the
        object-space normal leans on most. A floor's face gives (x, y), a wall's (along the wall, up), so 2-D
        patterns (bricks, tiles, planks, weaves, grain) stand the right way on every face of a box."""
        p = self.nt.nodes.new("ShaderNodeSeparateXYZ")
        self.link(self.coords(m, stretch), p.inputs["Vector"])
        tc = self.nt.nodes.new("ShaderNodeTexCoord")
        n = self.nt.nodes.new("ShaderNodeSeparateXYZ")
        self.link(tc.outputs["Normal"], n.inputs["Vector"])
        ax, ay, az = (self.math("ABSOLUTE", n.outputs[k]) for k in range(3))
        wz = self.math("GREATER_THAN", az, self.math("MAXIMUM", ax, ay))  # 1 on faces that look up or down
        wx = self.math("MULTIPLY", self.math("SUBTRACT", 1.0, wz), self.math("GREATER_THAN", ax, ay))
        wy = self.math("SUBTRACT", self.math("SUBTRACT", 1.0, wz), wx)
        x, y, z = (p.outputs[k] for k in range(3))

        def pick(a: Any, b: Any, c: Any) -> Any:  # a on z faces, b on x faces, c on y faces
            return self.math("ADD", self.math("ADD", self.math("MULTIPLY", a, wz), self.math("MULTIPLY", b, wx)),
                             self.math("MULTIPLY", c, wy))

        out = self.nt.nodes.new("ShaderNodeCombineXYZ")
        self.link(pick(x, y, x), out.inputs[0])
        self.link(pick(y, z, z), out.inputs[1])
        self.link(pick(z, x, y), out.inputs[2])
        return out.outputs["Vector"]


# Each pattern builder returns (factor socket in [0, 1]: 0 = base_color, 1 = color2; height socket for the bump)
PatternBuilder = Callable[[_Graph, Material], tuple[Any, Any]]


def _classic(kind: str) -> PatternBuilder:
    node_type, out = {"noise": ("ShaderNodeTexNoise", "Fac"), "voronoi": ("ShaderNodeTexVoronoi", "Distance"),
                      "checker": ("ShaderNodeTexChecker", "Fac"), "wave": ("ShaderNodeTexWave", "Fac"),
                      "brick": ("ShaderNodeTexBrick", "Fac")}[kind]

    def build(g: _Graph, m: Material) -> tuple[Any, Any]:
        # the version-1 textures: Scale = 1 / pattern_scale_m on the object position (seed 0 keeps them identical)
        tc = g.nt.nodes.new("ShaderNodeTexCoord")
        tex = g.nt.nodes.new(node_type)
        src = tc.outputs["Object"]
        if m.pattern_seed:
            src = g.box2d(m) if kind in ("brick", "checker", "wave") else g.coords(m)
            _set(tex, "Scale", 1.0)
        else:
            _set(tex, "Scale", 1.0 / max(float(m.pattern_scale_m), 1e-6))
        g.link(src, tex.inputs["Vector"])
        _set(tex, "Detail", float(m.pattern_detail))
        return tex.outputs[out], tex.outputs[out]

    return build


def _grain(g: _Graph, m: Material, v: Any, offset: Any = None) -> tuple[Any, Any]:
    """Flat-sawn grain running along x of ``v`` (box2d coordinates, one unit = one pattern_scale_m): bands of
    late wood across y, wavy from a low noise, with fine pores; ``offset`` (a socket) shifts the bands per board."""
    sep = g.nt.nodes.new("ShaderNodeSeparateXYZ")
    g.link(v, sep.inputs["Vector"])
    y = sep.outputs[1] if offset is None else g.math("ADD", sep.outputs[1], g.math("MULTIPLY", offset, 17.0))
    warp = g.node("ShaderNodeTexNoise", Scale=0.15, Detail=2.0)
    g.link(v, warp.inputs["Vector"])
    phase = g.math("ADD", y, g.math("MULTIPLY", warp.outputs["Fac"], 2.5))
    bands = g.math("POWER", g.math("ABSOLUTE", g.math("SINE", g.math("MULTIPLY", phase, math.pi))), 6.0)
    pores = g.node("ShaderNodeTexNoise", Scale=8.0, Detail=float(m.pattern_detail) + 2.0)
    stretch = g.nt.nodes.new("ShaderNodeCombineXYZ")  # pores long along the grain
    g.link(g.math("MULTIPLY", sep.outputs[0], 0.05), stretch.inputs[0])
    g.link(y, stretch.inputs[1])
    g.link(sep.outputs[2], stretch.inputs[2])
    g.link(stretch.outputs["Vector"], pores.inputs["Vector"])
    fac = g.math("ADD", g.math("MULTIPLY", bands, 0.9), g.math("MULTIPLY", pores.outputs["Fac"], 0.4))
    return g.math("MINIMUM", fac, 1.0), g.math("ADD", bands, g.math("MULTIPLY", pores.outputs["Fac"], 0.5))


def _wood(g: _Graph, m: Material) -> tuple[Any, Any]:
    return _grain(g, m, g.box2d(m))


def _planks(g: _Graph, m: Material) -> tuple[Any, Any]:
    """Floorboards: pattern_scale_m wide, 6x as long, staggered, each its own tone and grain, dark seams."""
    v = g.box2d(m, (0.25, 1.0, 1.0))  # in board widths; x scaled so a unit brick of width 1.5 is 6 widths long
    boards = g.node("ShaderNodeTexBrick", offset=0.37, offset_frequency=1, squash=1.0, squash_frequency=1,
                    Scale=1.0, Mortar_Size=0.02, Mortar_Smooth=0.0, Bias=0.0, Brick_Width=1.5, Row_Height=1.0,
                    Color1=(0.0, 0.0, 0.0, 1.0), Color2=(1.0, 1.0, 1.0, 1.0))
    g.link(v, boards.inputs["Vector"])
    tone = g.nt.nodes.new("ShaderNodeRGBToBW")
    g.link(boards.outputs["Color"], tone.inputs["Color"])
    grain, relief = _grain(g, m, g.box2d(m, (1.0, 4.0, 1.0)), tone.outputs["Val"])
    seam = boards.outputs["Fac"]
    fac = g.math("ADD", g.math("MULTIPLY", grain, 0.55), g.math("MULTIPLY", tone.outputs["Val"], 0.6))
    fac = g.math("MAXIMUM", g.math("MINIMUM", fac, 1.0), seam)
    return fac, g.math("SUBTRACT", g.math("MULTIPLY", relief, 0.2), seam)


def _noise_pattern(scale: float, detail_add: float, weight: float) -> PatternBuilder:
    def build(g: _Graph, m: Material) -> tuple[Any, Any]:
        v = g.coords(m)
        n = g.node("ShaderNodeTexNoise", Scale=scale, Detail=float(m.pattern_detail) + detail_add, Roughness=0.6)
        g.link(v, n.inputs["Vector"])
        fac = g.math("MULTIPLY", n.outputs["Fac"], weight)
        return fac, n.outputs["Fac"]

    return build


def _fabric(g: _Graph, m: Material) -> tuple[Any, Any]:
    v = g.box2d(m)
    warp = g.node("ShaderNodeTexWave", wave_type="BANDS", bands_direction="X", Scale=1.0, Distortion=0.5)
    weft = g.node("ShaderNodeTexWave", wave_type="BANDS", bands_direction="Y", Scale=1.0, Distortion=0.5)
    g.link(v, warp.inputs["Vector"])
    g.link(v, weft.inputs["Vector"])
    weave = g.math("MULTIPLY", warp.outputs["Fac"], weft.outputs["Fac"])
    n = g.node("ShaderNodeTexNoise", Scale=0.3, Detail=float(m.pattern_detail))
    g.link(v, n.inputs["Vector"])
    fac = g.math("ADD", g.math("MULTIPLY", weave, 0.6), g.math("MULTIPLY", n.outputs["Fac"], 0.4))
    return fac, weave


def _voronoi_edges(scale: float) -> PatternBuilder:
    def build(g: _Graph, m: Material) -> tuple[Any, Any]:
        v = g.coords(m)
        vo = g.node("ShaderNodeTexVoronoi", feature="DISTANCE_TO_EDGE", Scale=scale)
        g.link(v, vo.inputs["Vector"])
        crease = g.math("SUBTRACT", 1.0, g.math("MINIMUM", g.math("MULTIPLY", vo.outputs["Distance"], 8.0), 1.0))
        n = g.node("ShaderNodeTexNoise", Scale=scale * 0.3, Detail=float(m.pattern_detail))
        g.link(v, n.inputs["Vector"])
        fac = g.math("ADD", g.math("MULTIPLY", crease, 0.5), g.math("MULTIPLY", n.outputs["Fac"], 0.3))
        return fac, g.math("SUBTRACT", 1.0, crease)

    return build


def _tiles(g: _Graph, m: Material) -> tuple[Any, Any]:
    v = g.box2d(m)
    b = g.node("ShaderNodeTexBrick", offset=0.0, offset_frequency=1, squash=1.0, squash_frequency=1, Scale=1.0,
               Mortar_Size=0.04, Mortar_Smooth=0.1, Bias=0.0, Brick_Width=1.0, Row_Height=1.0)
    g.link(v, b.inputs["Vector"])
    grout = b.outputs["Fac"]
    return grout, g.math("SUBTRACT", 1.0, grout)


def _stone(g: _Graph, m: Material) -> tuple[Any, Any]:
    v = g.coords(m)
    vo = g.node("ShaderNodeTexVoronoi", Scale=1.0)
    n = g.node("ShaderNodeTexNoise", Scale=3.0, Detail=float(m.pattern_detail) + 4.0)
    g.link(v, vo.inputs["Vector"])
    g.link(v, n.inputs["Vector"])
    fac = g.math("ADD", g.math("MULTIPLY", vo.outputs["Distance"], 0.5), g.math("MULTIPLY", n.outputs["Fac"], 0.5))
    return fac, n.outputs["Fac"]


def _marble(g: _Graph, m: Material) -> tuple[Any, Any]:
    v = g.coords(m)
    w = g.node("ShaderNodeTexWave", wave_type="BANDS", bands_direction="DIAGONAL", Scale=0.5, Distortion=12.0,
               Detail=float(m.pattern_detail) + 6.0, Detail_Scale=2.0)
    g.link(v, w.inputs["Vector"])
    veins = g.math("POWER", g.math("SUBTRACT", 1.0, w.outputs["Fac"]), 8.0)
    return veins, veins


def _speckle(big: float, small: float) -> PatternBuilder:
    def build(g: _Graph, m: Material) -> tuple[Any, Any]:
        v = g.coords(m)
        blot = g.node("ShaderNodeTexNoise", Scale=big, Detail=float(m.pattern_detail))
        vo = g.node("ShaderNodeTexVoronoi", Scale=small)
        g.link(v, blot.inputs["Vector"])
        g.link(v, vo.inputs["Vector"])
        stones = g.math("LESS_THAN", vo.outputs["Distance"], 0.25)
        fac = g.math("ADD", g.math("MULTIPLY", blot.outputs["Fac"], 0.5), g.math("MULTIPLY", stones, 0.5))
        return fac, g.math("ADD", stones, vo.outputs["Distance"])

    return build


def _brushed(g: _Graph, m: Material) -> tuple[Any, Any]:
    v = g.coords(m, (1.0, 40.0, 40.0))  # streaks along x
    n = g.node("ShaderNodeTexNoise", Scale=1.0, Detail=float(m.pattern_detail) + 4.0)
    g.link(v, n.inputs["Vector"])
    return n.outputs["Fac"], n.outputs["Fac"]


def _cardboard(g: _Graph, m: Material) -> tuple[Any, Any]:
    v = g.box2d(m)
    w = g.node("ShaderNodeTexWave", wave_type="BANDS", bands_direction="X", Scale=4.0)
    n = g.node("ShaderNodeTexNoise", Scale=30.0, Detail=float(m.pattern_detail) + 4.0)
    g.link(v, w.inputs["Vector"])
    g.link(v, n.inputs["Vector"])
    return g.math("MULTIPLY", n.outputs["Fac"], 0.6), g.math("ADD", w.outputs["Fac"], n.outputs["Fac"])


def _bark(g: _Graph, m: Material) -> tuple[Any, Any]:
    v = g.coords(m, (1.0, 1.0, 0.2))  # furrows run along z
    w = g.node("ShaderNodeTexWave", wave_type="BANDS", bands_direction="X", Scale=2.0, Distortion=10.0,
               Detail=float(m.pattern_detail) + 4.0)
    g.link(v, w.inputs["Vector"])
    return w.outputs["Fac"], w.outputs["Fac"]


def _grass(g: _Graph, m: Material) -> tuple[Any, Any]:
    v = g.coords(m)
    patches = g.node("ShaderNodeTexNoise", Scale=0.2, Detail=float(m.pattern_detail))
    blades = g.node("ShaderNodeTexVoronoi", Scale=8.0)
    g.link(v, patches.inputs["Vector"])
    g.link(v, blades.inputs["Vector"])
    fac = g.math("ADD", g.math("MULTIPLY", patches.outputs["Fac"], 0.6),
                 g.math("MULTIPLY", blades.outputs["Distance"], 0.4))
    return fac, blades.outputs["Distance"]


PATTERNS: dict[str, PatternBuilder] = {
    **{k: _classic(k) for k in ("noise", "voronoi", "checker", "wave", "brick")},
    "wood": _wood,
    "planks": _planks,
    "plaster": _noise_pattern(1.0, 8.0, 0.25),
    "fabric": _fabric,
    "leather": _voronoi_edges(1.0),
    "tiles": _tiles,
    "stone": _stone,
    "marble": _marble,
    "concrete": _speckle(0.4, 12.0),
    "asphalt": _speckle(0.3, 1.0),
    "brushed_metal": _brushed,
    "plastic": _noise_pattern(2.0, 2.0, 0.05),
    "ceramic": _noise_pattern(1.0, 2.0, 0.08),
    "paper": _noise_pattern(20.0, 6.0, 0.25),
    "cardboard": _cardboard,
    "rubber": _noise_pattern(8.0, 4.0, 0.1),
    "foliage": _voronoi_edges(1.0),
    "bark": _bark,
    "skin": _noise_pattern(0.6, 2.0, 0.3),
    "carpet": _noise_pattern(40.0, 8.0, 0.35),
    "grass": _grass,
}


CAMERA_ONLY_DETAIL = True
"""Bump and roughness variation for camera rays only (``make_material``); benchmarks switch it off to compare."""


def _principled(g: _Graph, m: Material, bsdf: Any = None) -> Any:
    """A Principled BSDF (``bsdf`` if given, else a new one) set to ``m``'s constant inputs."""
    bsdf = bsdf if bsdf is not None else g.nt.nodes.new("ShaderNodeBsdfPrincipled")
    color = (*m.base_color, 1.0)
    _set(bsdf, "Base Color", color)
    _set(bsdf, "Roughness", float(m.roughness))
    _set(bsdf, "Metallic", float(m.metallic))
    _set(bsdf, "Transmission Weight", float(m.transmission))
    _set(bsdf, "IOR", float(m.ior))
    _set(bsdf, "Alpha", float(m.alpha))
    if m.emission_strength > 0:
        _set(bsdf, "Emission Color", color)
        _set(bsdf, "Emission Strength", float(m.emission_strength))
    return bsdf


def make_material(m: Material, name: str, image_loader: Callable[[str], Any], emission_is_light: bool = True) -> Any:
    """A Blender material of ``m``. ``image_loader(ref)`` returns the bpy image of an ``image_texture`` reference.

    Two savings that leave the picture as it is (docs/performance.md measures them):
    - the bump and the roughness variation of a pattern are seen by camera rays only: rays after a bounce (in
      colour bleeding, reflections, the view through glass) see the same pattern colour on a smooth surface at
      the base roughness, while their blur hides that detail anyway;
    - ``emission_is_light`` False (the scene has lamps of its own: a recipe's glowing shades and ceiling panels
      sit on a point or area light that does the lighting): the glow is seen and bounced but not sampled as a
      light, so it does not crowd the light tree. The image's mean is unchanged (unbiased); only the noise of
      the glow's own small share of the light moves.
    """
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    g = _Graph(nt)
    bsdf = _principled(g, m, nt.nodes.get("Principled BSDF"))
    if m.emission_strength > 0 and not emission_is_light:
        mat.cycles.emission_sampling = "NONE"
    if m.image_texture is not None:
        _image(g, m, bsdf, image_loader(m.image_texture))
    elif m.pattern != "none":
        fac, height = PATTERNS[m.pattern](g, m)
        col = g.mix_color(fac, tuple(m.base_color), tuple(m.color2))
        g.link(col, bsdf.inputs["Base Color"])
        if m.roughness_variation > 0:
            r = g.math("ADD", float(m.roughness), g.math("MULTIPLY", g.math("SUBTRACT", fac, 0.5),
                                                            2.0 * float(m.roughness_variation)))
            g.link(g.math("MINIMUM", g.math("MAXIMUM", r, 0.0), 1.0), bsdf.inputs["Roughness"])
        if m.bump_m > 0:
            bump = g.node("ShaderNodeBump", Strength=1.0, Distance=float(m.bump_m))
            g.link(height, bump.inputs["Height"])
            g.link(bump.outputs["Normal"], bsdf.inputs["Normal"])
        if CAMERA_ONLY_DETAIL and (m.roughness_variation > 0 or m.bump_m > 0) and not m.thin:
            _camera_only_detail(g, m, bsdf, col)
    if m.thin and m.transmission > 0:
        _thin_sheet(g, m)
    return mat


def _camera_only_detail(g: _Graph, m: Material, bsdf: Any, col: Any) -> None:
    """The surface becomes a Mix Shader on Is Camera Ray of the detailed BSDF and a plain copy (same pattern
    colour, base roughness, no bump). Cycles compiles a Mix Shader into a jump, so the nodes only the detailed
    branch uses (the bump's three evaluations of the height graph, the roughness variation) run for camera rays
    only. The pattern colour is shared by both branches and computed once."""
    plain = _principled(g, m)
    g.link(col, plain.inputs["Base Color"])
    path = g.nt.nodes.new("ShaderNodeLightPath")
    mix = g.nt.nodes.new("ShaderNodeMixShader")
    g.link(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
    g.link(plain.outputs["BSDF"], mix.inputs[1])
    g.link(bsdf.outputs["BSDF"], mix.inputs[2])
    g.link(mix.outputs["Shader"], g.nt.nodes.get("Material Output").inputs["Surface"])


def _thin_sheet(g: _Graph, m: Material) -> None:
    """A thin pane: a Fresnel-weighted mix of a mirror-like reflection (Glossy BSDF at ``roughness``) and a
    Transparent BSDF tinted by the base colour. A thin parallel slab displaces rays without bending them, so the
    view through it is unrefracted; shadow rays pass a Transparent BSDF, so lamps and the sun light what is behind
    the pane by next-event estimation instead of by caustic paths (noisy, and off in cheap settings)."""
    through = g.node("ShaderNodeBsdfTransparent", Color=(*m.base_color, 1.0))
    mirror = g.node("ShaderNodeBsdfGlossy", Color=(1.0, 1.0, 1.0, 1.0), Roughness=float(m.roughness))
    fresnel = g.node("ShaderNodeFresnel", IOR=float(m.ior))
    mix = g.node("ShaderNodeMixShader")
    g.link(fresnel.outputs["Fac"], mix.inputs["Fac"])
    g.link(through.outputs["BSDF"], mix.inputs[1])
    g.link(mirror.outputs["BSDF"], mix.inputs[2])
    g.link(mix.outputs["Shader"], g.nt.nodes.get("Material Output").inputs["Surface"])


def _image(g: _Graph, m: Material, bsdf: Any, image: Any) -> None:
    tex = g.nt.nodes.new("ShaderNodeTexImage")
    tex.image = image
    if m.image_mapping == "uv":
        uv = g.nt.nodes.new("ShaderNodeUVMap")
        g.link(uv.outputs["UV"], tex.inputs["Vector"])
    else:
        tex.projection = "BOX"
        tex.projection_blend = 0.2
        tc = g.nt.nodes.new("ShaderNodeTexCoord")
        mp = g.nt.nodes.new("ShaderNodeMapping")
        s = 1.0 / max(float(m.image_scale_m), 1e-6)
        mp.inputs["Scale"].default_value = (s, s, s)
        g.link(tc.outputs["Object"], mp.inputs["Vector"])
        g.link(mp.outputs["Vector"], tex.inputs["Vector"])
    # the image's colour times base_color (white base: the image as it is)
    mul = g.nt.nodes.new("ShaderNodeMix")
    mul.data_type = "RGBA"
    mul.blend_type = "MULTIPLY"
    _socket(mul.inputs, "Factor_Float").default_value = 1.0
    g.link(tex.outputs["Color"], _socket(mul.inputs, "A_Color"))
    _socket(mul.inputs, "B_Color").default_value = (*m.base_color, 1.0)
    g.link(_socket(mul.outputs, "Result_Color"), bsdf.inputs["Base Color"])
    if image is not None and image.alpha_mode != "NONE" and image.channels == 4:
        g.link(tex.outputs["Alpha"], bsdf.inputs["Alpha"])


def sun_direction(elevation_deg: float, azimuth_deg: float) -> tuple[float, float, float]:
    """Unit vector toward the sun, world frame (+z up; azimuth counter-clockwise from +x)."""
    el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
    return (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
