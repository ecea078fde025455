"""The Sweet Home 3D furniture catalogues as an asset library: real furniture and objects at their true size, with
their own materials, textures and UVs.

Debian's ``sweethome3d-furniture`` package installs five catalogues (``/usr/share/sweethome3d/furniture/*.sh3f``):
zip files holding ``PluginFurnitureCatalog.properties`` (per model: id, name, category, width/depth/height in cm,
elevation, dropOnTopElevation, modelRotation, light sources, doorOrWindow, creator) and an OBJ+MTL+textures folder
per model. Their licences (the properties' ``license`` header and the package's copyright file): Blend Swap CC-0
is CC0, Blend Swap CC-BY and Scopia are CC BY 3.0, Kator Legaz and Reallusion CC BY 3.0 United States. A catalogue
with any other licence is not imported.

:func:`import_catalog` extracts a catalogue once into the asset cache (rgbify.scenes.geometry.asset_cache_dir) and
converts every model: the model's rotation applied, turned from Sweet Home 3D's frame (y up, front +z) to
rgbify's model frame (z up, front +y), scaled to the catalogue's width x depth x height (the size Sweet Home 3D
shows it at), centred on its footprint with its base at z = 0, written as an rgbify ``.npz`` mesh (triangles,
material slots, UVs, the MTL materials with their texture paths); its collision boxes and support surfaces
(rgbify.scenes.meshinfo) and its class go to a JSON record beside it. Everything is deterministic (same catalogue,
same files), atomic (the source is extracted to a temporary folder and renamed; each model's files are published
whole; the index last) and resumable (a stopped import continues with the models it lacks). A model that cannot
be read, has non-finite vertices or a texture its MTL names but the catalogue lacks is skipped with one line
naming it (``strict``: the first raises CatalogError).

:func:`load_catalog` gives the library of every installed catalogue, importing what the cache lacks; specs name its
meshes and textures as ``cache:sh3d/...`` paths, the same on every machine.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rgbify.fileio import publishing
from rgbify.scenes.builder import Model, Surface
from rgbify.scenes.geometry import (
    CACHE_PREFIX,
    FileMaterial,
    GeometryError,
    TriMesh,
    asset_cache_dir,
    file_image,
    mesh_file_materials,
    read_mesh_file,
    rot_x,
    rot_z,
    write_mesh_npz,
)
from rgbify.scenes.meshinfo import collision_boxes, support_surfaces
from rgbify.scenes.spec import MeshFile

SYSTEM_DIRS = ("/usr/share/sweethome3d/furniture",)
"""Where Debian's sweethome3d-furniture package puts its .sh3f files."""
ENV_DIRS = "RGBIFY_SH3D_DIR"
"""Environment variable: folders of .sh3f files (os.pathsep-separated) instead of SYSTEM_DIRS."""
FORMAT = 1
"""Version of the conversion (bumped when what the importer writes changes: old cache entries are not reused)."""
SIZE_JITTER = 0.03
"""A placed catalogue model is scaled by 1 +- this (uniformly): true size, not every copy identical."""

LICENCES = {
    "CC0-1.0": ("Creative Commons Zero 1.0 (public domain)", "https://creativecommons.org/publicdomain/zero/1.0/"),
    "CC-BY-3.0": ("Creative Commons Attribution 3.0 Unported", "https://creativecommons.org/licenses/by/3.0/"),
    "CC-BY-3.0-US": ("Creative Commons Attribution 3.0 United States",
                     "https://creativecommons.org/licenses/by/3.0/us/"),
}
"""The licences a catalogue may carry to be imported (SPDX id -> name, URL)."""
SOURCE = "Sweet Home 3D furniture library (Debian package sweethome3d-furniture)"


class CatalogError(ValueError):
    """A catalogue or one of its models cannot be imported (raised with ``strict``; else a CatalogWarning)."""


class CatalogWarning(UserWarning):
    """A catalogue or model was skipped; the message names it and says why."""


# --- what a model is: class, role, rooms -------------------------------------------------------------------------

RULES: tuple[tuple[str, str, str], ...] = (
    # (regular expression on the lower-case English name, category ("" any), class): first match wins
    (r"car model|toy train|biplane|rocking horse|teddy|puzzle|wood toy|xylophone|rubik|chessboard|^doll$|doll house|"
     r"card game|dart game|skateboard|table tennis bat|tennis racket", "", "toy"),
    (r"fork lift|truck", "Vehicles", "truck"),
    (r"city bus|^bus$", "Vehicles", "bus"),
    (r"motorbike|yamaha|scooter", "Vehicles", "motorcycle"),
    (r"bicycle|\bbike\b|tricycle", "Vehicles", "bicycle"),
    (r"sedan|ford|seat leon|peugeot|renault|chevrolet|smart car|suv|beetle|^van$", "Vehicles", "car"),
    (r"^scooter$", "", "toy"),
    (r"roasted chicken|butter|^bread$|hot dog|cup cake|hamburger|steak|french fries|birthday cake", "", "food"),
    (r"bowl with", "", "bowl"),
    (r"^apples$", "", "fruit"),
    (r"table tennis|pool table|football table|flipper|treadmill|fitness|abdominal|indoor bike|punching|workbench|"
     r"piano$|wheelchair|clothes rack|clothes horse|^screen$|aquarium|rowboat|stroller|umbrella|camping tent|"
     r"hammock|barnum|pallet|barrel|wheelbarrow|wood logs|garden hut|dog house", "", "other_furniture"),
    (r"staircase|escalator|elevator$|fireplace|chimney|porch column|swimming pool|jacuzzi|fountain|"
     r"child swing|children game|child hut|seesaw|sandpit|trampoline|basketball net|football goal|"
     r"rail crossing|^rails$|shipping container|^cone$|mailbox|letters box|fire hydrant|diving board", "",
     "other_structure"),
    (r"desk lamp", "", "lamp"),
    (r"convertible sofa", "", "sofa"),
    (r"opened convertible", "", "bed"),
    (r"bedside|nightstand", "", "nightstand"),
    (r"\bbed\b|^crib$|futon$|air mattress", "", "bed"),
    (r"armchair", "Office", "chair"),
    (r"futon couch|sofa|couch|armchair|^puff$|ottoman", "", "sofa"),
    (r"dressing table|dresser|^chest$|changing table", "", "dresser"),
    (r"^desk|technical table|wooden (alder |teak )?(desk|table)", "Office", "desk"),
    (r"\bdesk\b", "", "desk"),
    (r"^island|lower cabinet|lower corner|drawers cabinet", "Kitchen", "counter"),
    (r"sink|washbasin|^basin$|lavatory|vanity", "", "sink"),
    (r"fridge|refrigerator|freezer", "", "refrigerator"),
    (r"stove|cooktop|oven|cooker", "", "stove"),
    (r"washing machine|dryer|water heater|boiler|furnace|air conditioning|radiator|hood$|^hood|water cooler|"
     r"ceiling fan", "", "appliance"),
    (r"microwave|toaster|blender|mixer|coffee (brewer|maker|machine)|deep fryer|sandwich maker|scale$|fan$|"
     r"stone grill", "", "small_appliance"),
    (r"knife|fork|spoon|chopping|pan$|utensils|kitchen tools|spice|paper towel|teapot|coffee press|espresso|"
     r"squeezer|^tool$|plate, glass", "", "kitchenware"),
    (r"toilets? unit|^toilet$|bidet|urinal|potty", "", "toilet"),
    (r"\bbath\b|bathtub", "", "bathtub"),
    (r"shower curtain", "", "shower_curtain"),
    (r"shower", "", "shower"),
    (r"towel", "", "towel"),
    (r"curtain", "", "curtain"),
    (r"blind|shutter", "", "blinds"),
    (r"tv stand|television cabinet", "", "cabinet"),
    (r"remote control", "", "electronics"),
    (r"\btv\b|television", "", "television"),
    (r"imac|ibook|laptop", "", "computer"),
    (r"^socket$", "Bedroom", "clothes"),
    (r"speaker|headphone|phone|radio|mp3|stereo|dvd|playstation|joystick|projector|camera|cctv|"
     r"printer|intercom|smoke detector|plug|switch|socket$|entry bell|entry speech|tablet|keyboard", "",
     "electronics"),
    (r"white board|whiteboard", "", "whiteboard"),
    (r"clothes|dress|trousers|jacket|suit$|skirt|short$|^cap$|^hat$|helmet|glove|sneakers|shoes|mocassin|"
     r"slippers|bootie", "", "clothes"),
    (r"backpack|handbag|briefcase|suitcase", "", "bag"),
    (r"newspaper|letter tray|calendar|^bill", "", "paper"),
    (r"^book$", "", "book"),
    (r"bookcase|shelves", "", "shelf"),
    (r"wardrobe|cupboard|cabinet|locker|^safe$|contemporary living room", "", "cabinet"),
    (r"^box$", "Living room", "cabinet"),
    (r"^box$", "Office", "cabinet"),
    (r"acacia|pine|coconut|copper beech|cypress|maple|poplar|palm tree|peach blossom|^ficus$|^bamboo$", "Exterior",
     "tree"),
    (r"hedge|bush", "", "bush"),
    (r"plant|yucca|orchid|cactus|bamboo|tulips|lily|flowers|spathiphyllum|ficus|bonsai|flower box|"
     r"christmas tree", "", "plant"),
    (r"box|crate|gift|trunck|shopping basket|trashcan|trash can|recycling bin|dustbin", "", "box"),
    (r"street lamp|street light|lamppost|park light", "", "pole"),
    (r"lamp|light|lantern|chandelier", "", "lamp"),
    (r"candle|clock|deer|frame|snowman|thermometer|emergency sign|mannequin|electric guitar|wall hanger", "",
     "decoration"),
    (r"scissors|ruler|marker|pencil|penbox|stapler|tape|hammer|saw$|drill|screwdriver|grinder|pliers|shovel|"
     r"broom|ladder|mower|hose|faucet|extinguisher|flashlight", "", "tool"),
    (r"vase|pottery|jar$", "", "vase"),
    (r"\bbowl\b|sugar", "", "bowl"),
    (r"cup$|mug|glass$|creamer", "", "cup"),
    (r"plate|tray", "", "plate"),
    (r"bottle|milk|oil servers|flacon|salt shaker", "", "bottle"),
    (r"basketball|soccer ball", "", "ball"),
    (r"\bchair|stool|class seat", "", "chair"),
    (r"bench|\bbank\b", "", "bench"),
    (r"table", "", "table"),
    (r"rug|carpet|doormat|tatami|bathmat", "", "rug"),
    (r"railing|fence", "", "fence"),
    (r"^rock$", "", "rock"),
    (r"sidewalk", "", "sidewalk"),
    (r"pedestrian crossing|arrow|parking slot", "", "road"),
    (r"^(fe)?male$|^boy$|^girl$|holding|sitting|lying", "Characters", "person"),
    (r"chicken|horse|bulldog|cat$|^dog$|rabbit", "", "animal"),
    (r"door", "", "door"),
    (r"window", "", "window"),
)
"""Class of a catalogue model from its name (and category). A name matching no rule: ``other_furniture`` if it is
larger than SMALL_M, else ``clutter``."""

SMALL_M = 0.6
"""A model whose largest side is at most this (and stands on the floor level) may go on tables and shelves."""

ROOMS = {"Kitchen": "kitchen", "Bathroom": "bathroom", "Bedroom": "bedroom", "Living room": "living",
         "Office": "office", "Exterior": "outdoor", "Vehicles": "outdoor", "Characters": "people",
         "Lights": "any", "Miscellaneous": "any", "Doors and windows": "opening", "Staircases": "structure"}
"""Sweet Home 3D category -> the room a model belongs in (``any``: every room)."""


def classify(name: str, category: str, size_m: tuple[float, float, float]) -> str:
    """The class of a catalogue model (see RULES)."""
    low = name.lower().strip()
    for pattern, cat, cls in RULES:
        if (not cat or cat == category) and re.search(pattern, low):
            return "toy" if cls == "motorcycle" and max(size_m) < 1.2 else cls  # a kick scooter
    return "other_furniture" if max(size_m) > SMALL_M else "clutter"


ON_SURFACES = {"bottle", "bowl", "book", "cup", "plate", "can", "vase", "fruit", "clutter", "box", "lamp",
               "decoration", "food", "toy", "tool", "kitchenware", "small_appliance", "electronics", "computer",
               "television", "plant", "paper", "clothes", "bag", "ball", "towel"}
"""Classes whose small members (at most SMALL_M) stand on tables, counters and shelves."""


def role_of(cls: str, size_m: tuple[float, float, float], elevation_m: float, door_or_window: bool,
            category: str, name: str = "") -> tuple[str, float]:
    """How a model is placed, and at what elevation: ``floor`` (furniture standing on the floor), ``surface``
    (small things on tables and shelves), ``wall`` (hung on a wall at its elevation: upper cabinets, wall lights,
    towel rails, range hoods), ``ceiling`` (hanging lights, fans), ``flat`` (rugs, road markings), ``opening``
    (doors and windows), ``seated`` (people sitting or lying: they need a seat; not placed)."""
    w, d, h = size_m
    low = name.lower()
    if door_or_window or cls in ("door", "window"):
        return "opening", elevation_m
    if cls == "person" and h < 1.5:
        return "seated", elevation_m
    if h < 0.02 or cls in ("rug", "road"):
        return "flat", elevation_m
    if "hood" in low and elevation_m < 1.0:
        return "wall", 1.55  # range hoods hang over the stove
    if cls in ("lamp", "appliance") and "wall" not in low and elevation_m >= 1.0 and \
            (elevation_m + h >= 2.2 or elevation_m >= 1.6) and ("fan" in low or cls == "lamp"):
        return "ceiling", elevation_m
    if elevation_m > 0.05:
        return "wall", elevation_m
    if max(w, d, h) <= SMALL_M and cls in ON_SURFACES and category not in ("Exterior", "Vehicles", "Characters"):
        return "surface", elevation_m
    return "floor", elevation_m


SURFACE_KIND = {"shelf": "shelf", "bed": "bed", "sofa": "seat", "chair": "seat", "counter": "counter",
                "desk": "table", "table": "table", "nightstand": "cabinet", "dresser": "cabinet", "cabinet": "cabinet",
                "sink": "counter", "stove": "counter", "box": "box", "other_furniture": "table", "bench": "seat",
                "refrigerator": "cabinet", "appliance": "cabinet"}
"""What kind of support a class offers (placement menus use it); other classes offer none."""

# --- the library -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogModel:
    """One model of a catalogue, as its properties describe it (class, role, room, size, licence: what the sampler
    chooses by, known before anything is converted); its mesh, collision boxes and support surfaces are converted
    into the asset cache on first use (:meth:`converted`), so what a scene gets never depends on what the cache
    held before."""

    key: str
    """Catalogue and model: ``CATALOG/NNN-slug``."""
    id: str
    """The catalogue's own id of the model."""
    name: str
    category: str
    catalog: str
    """The catalogue's name (e.g. 'Scopia catalog')."""
    class_name: str
    role: str
    room: str
    mesh: str
    """``cache:`` reference of the .npz mesh (there once converted)."""
    size_m: tuple[float, float, float]
    """Width (x), depth (y), height (z), metres."""
    elevation_m: float
    lights: tuple[tuple[float, float, float, float], ...]
    """(x, y, z, diameter) of each light source, model frame, metres."""
    licence: str
    """SPDX id of the licence."""
    creator: str
    holder: str
    """Copyright holder named by the catalogue's licence."""
    source: tuple[str, str, str, int, str, str] = ("", "", "", 0, "", "")
    """Where to convert it from: (cache folder, its ``cache:`` relative name, catalogue file stem, entry index,
    model file in the archive, modelRotation)."""

    def credit(self) -> dict[str, str]:
        """What spec.meta records of this model (and what an attribution names)."""
        return {"id": self.key, "name": self.name, "creator": self.creator, "holder": self.holder,
                "licence": self.licence, "source": f"{SOURCE}: {self.catalog}"}

    def converted(self) -> dict[str, Any]:
        """The import record (boxes, surfaces, triangles), converting the model now if the cache lacks it;
        CatalogError (or GeometryError) says why it cannot be."""
        return _converted(self)

    @property
    def boxes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.asarray(c, dtype=np.float64), np.asarray(h, dtype=np.float64))
                for c, h in self.converted()["boxes"]]

    @property
    def surfaces(self) -> list[tuple[float, ...]]:
        """(z, cx, cy, hx, hy, clear_m) of each support surface."""
        return [tuple(x) for x in self.converted()["surfaces"]]

    def model(self, rng: np.random.Generator, jitter: float = SIZE_JITTER) -> Model:
        """A builder Model of this catalogue model, scaled by 1 +- ``jitter`` (drawn from ``rng``); converts the
        model first if needed (CatalogError / GeometryError when it cannot be)."""
        s = round(float(1.0 + rng.uniform(-jitter, jitter)), 4) if jitter else 1.0
        boxes = [(c * s, h * s) for c, h in self.boxes]
        kind = SURFACE_KIND.get(self.class_name, "")
        surfaces = [Surface(z * s, cx * s, cy * s, hx * s, hy * s, kind, clear * s)
                    for z, cx, cy, hx, hy, clear in self.surfaces] if kind else []
        m = Model(self.class_name, f"sh3d:{self.key}", MeshFile(self.mesh, s), np.eye(4), boxes, surfaces, "smooth",
                  self.class_name, file_materials=mesh_file_materials(self.mesh), credit=self.credit())
        for x, y, z, _d in self.lights:
            m.lights.append((np.array([x, y, z]) * s, "point"))
        return m


@dataclass
class Catalog:
    """Every model of the installed catalogues, in a fixed order, and what was skipped."""

    models: list[CatalogModel] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """'CATALOG model NAME: reason' for every model or catalogue that could not be imported (as far as known:
    models are converted when first used, or all at once by `rgbify scenes catalog import`)."""
    sources: list[str] = field(default_factory=list)
    """The .sh3f files it was read from."""

    @functools.cached_property
    def by_class(self) -> dict[str, list[CatalogModel]]:
        out: dict[str, list[CatalogModel]] = {}
        for m in self.models:
            out.setdefault(m.class_name, []).append(m)
        return out

    def select(self, classes: Iterable[str] | str | None = None, roles: Iterable[str] | str | None = None,
               rooms: Iterable[str] | str | None = None, max_size_m: float | None = None,
               min_size_m: float | None = None) -> list[CatalogModel]:
        """The models of the given classes, roles and rooms (None: any; a model of room ``any`` fits every room),
        whose largest side is within the bounds, in catalogue order."""
        def norm(x: Iterable[str] | str | None) -> set[str] | None:
            return None if x is None else {x} if isinstance(x, str) else set(x)

        cs, rs, ms = norm(classes), norm(roles), norm(rooms)
        pool = [m for c in sorted(cs) for m in self.by_class.get(c, [])] if cs is not None else self.models
        return [m for m in pool if (rs is None or m.role in rs) and (ms is None or m.room in ms or m.room == "any")
                and (max_size_m is None or max(m.size_m) <= max_size_m)
                and (min_size_m is None or max(m.size_m) >= min_size_m)]


SMALL_BY_KIND: dict[str, tuple[str, ...]] = {
    "table": ("cup", "plate", "bowl", "bottle", "vase", "plant", "book", "food", "fruit", "decoration", "electronics",
              "paper", "kitchenware", "lamp", "toy", "box", "clutter", "small_appliance"),
    "counter": ("kitchenware", "small_appliance", "bottle", "cup", "bowl", "plate", "food", "fruit", "vase", "plant",
                "box"),
    "shelf": ("book", "vase", "decoration", "box", "plant", "toy", "electronics", "bottle", "clothes"),
    "cabinet": ("lamp", "decoration", "plant", "vase", "book", "electronics", "clothes", "bag", "toy", "box",
                "television"),
    "bed": ("clothes", "bag", "toy", "book", "electronics"),
    "seat": ("clothes", "bag", "toy", "book"),
    "box": ("book", "toy", "clutter", "decoration"),
    "roof": (),
}
"""Classes of catalogue objects that go on each kind of support surface."""
BATHROOM_SMALL = ("bottle", "clutter", "towel", "decoration", "plant", "box", "cup")
"""On a bathroom's counters and basins."""


def small_model(catalog: Catalog, rng: np.random.Generator, kind: str, room: str, clear_m: float,
                half_m: float) -> Model | None:
    """A small catalogue object for a support surface of ``kind`` in a room of type ``room``: at most ``clear_m``
    high, at most ``half_m`` from its centre to its side. None when nothing fits or it cannot be converted."""
    classes = BATHROOM_SMALL if room == "bathroom" and kind in ("counter", "table", "cabinet") else \
        SMALL_BY_KIND.get(kind, SMALL_BY_KIND["table"])
    pool = [m for m in catalog.select(classes, ("surface",)) if m.size_m[2] <= clear_m - 0.01 and
            max(m.size_m[0], m.size_m[1]) / 2 <= half_m and (m.room != "bathroom" or room == "bathroom")]
    if not pool:
        return None
    m = pool[int(rng.integers(len(pool)))]
    try:
        return m.model(rng)
    except (CatalogError, GeometryError):
        return None


def pick(catalog: Catalog, rng: np.random.Generator, classes: tuple[str, ...], roles: tuple[str, ...] = ("floor",),
         rooms: tuple[str, ...] | None = None, name: Callable[[str], bool] | None = None,
         max_size: float | None = None, max_height: float | None = None, min_height: float = 0.0) -> Model | None:
    """A model of one of ``classes`` (of ``roles`` and ``rooms``, its lower-case name passing ``name``, its largest
    side at most ``max_size`` and its height within the bounds), drawn uniformly; None when none fits or the drawn
    one cannot be converted."""
    pool = catalog.select(classes, roles, rooms, max_size_m=max_size)
    pool = [m for m in pool if (name is None or name(m.name.lower())) and m.size_m[2] >= min_height and
            (max_height is None or m.size_m[2] <= max_height)]
    if not pool:
        return None
    m = pool[int(rng.integers(len(pool)))]
    try:
        return m.model(rng)
    except (CatalogError, GeometryError):
        return None


def find_catalogs(dirs: Iterable[str] | None = None) -> list[Path]:
    """The .sh3f files of ``dirs`` (default: $RGBIFY_SH3D_DIR, else the Debian package's folder), sorted."""
    if dirs is None:
        env = os.environ.get(ENV_DIRS)
        dirs = env.split(os.pathsep) if env else SYSTEM_DIRS
    out: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_file() and p.suffix == ".sh3f":
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(p.glob("*.sh3f")))
    return out


def _signature(paths: list[Path]) -> tuple:
    return tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)


def load_catalog(dirs: Iterable[str] | None = None, strict: bool = False) -> Catalog:
    """The library of every catalogue in ``dirs`` (see :func:`find_catalogs`): each extracted into the asset cache
    once, its models known from its properties and converted when first used (:func:`import_catalog` converts them
    all). Read once per process while the catalogue files and the cache location stay the same. A catalogue that
    cannot be read gives a CatalogWarning (``strict``: CatalogError), as do the models a finished import skipped."""
    paths = find_catalogs(dirs)
    return _load_cached(_signature(paths), asset_cache_dir(), strict)


@functools.lru_cache(maxsize=4)
def _load_cached(signature: tuple, cache: str, strict: bool) -> Catalog:
    lib = Catalog()
    for path, _size, _mtime in signature:
        part = open_catalog(path, Path(cache), strict=strict)
        lib.models.extend(part.models)
        lib.skipped.extend(part.skipped)
        lib.sources.append(path)
    for line in lib.skipped:
        warnings.warn(f"skipping {line}", CatalogWarning, stacklevel=3)
    return lib


# --- importing a catalogue ----------------------------------------------------------------------------------------


def read_properties(text: str) -> dict[str, str]:
    """A Java .properties file as a dict: ``key=value`` or ``key: value`` lines, ``#``/``!`` comments, backslash
    line continuations and ``\\uXXXX`` escapes."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].lstrip()
        i += 1
        if not line or line[0] in "#!":
            continue
        while line.endswith("\\") and not line.endswith("\\\\") and i < len(lines):
            line = line[:-1] + lines[i].lstrip()
            i += 1
        m = re.match(r"((?:[^=:\s\\]|\\.)+)\s*[=:\s]\s*(.*)$", line)
        if not m:
            continue
        out[_unescape(m.group(1))] = _unescape(m.group(2))
    return out


def _unescape(s: str) -> str:
    s = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), s)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), s)


def licence_of(header: str) -> str | None:
    """The SPDX id of a catalogue's ``license`` text, None unless CC0 or CC BY 3.0."""
    low = header.lower()
    if "public domain" in low or "cc0" in low or "cc-0" in low or "zero" in low:
        return "CC0-1.0"
    if "attribution 3.0" in low:
        return "CC-BY-3.0-US" if "united states" in low else "CC-BY-3.0"
    return None


def _holder(header: str, catalog: str) -> str:
    """Who a catalogue's licence names as the copyright holder."""
    m = re.search(r"(?:copyright|©|\(c\))\s*(?:©\s*)?[\d\s\-]*(.+)$", header, re.IGNORECASE)
    if m:
        return m.group(1).strip()
    return catalog


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns
    return _sha256(Path(path))


@dataclass
class _Entry:
    index: int
    props: dict[str, str]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.props.get(f"{key}#{self.index}", default)

    def number(self, key: str, default: float | None = None) -> float:
        v = self.get(key)
        if v is None:
            if default is None:
                raise ValueError(f"no {key}")
            return default
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"{key} {v!r} is not a finite number")
        return x


def open_catalog(sh3f: str | Path, cache: str | Path | None = None, strict: bool = False) -> Catalog:
    """One .sh3f catalogue's models (extracted into the cache once; nothing converted); the skipped list holds
    what a finished import (:func:`import_catalog`) skipped, or why the catalogue itself cannot be used."""
    sh3f = Path(sh3f)
    cache = Path(cache) if cache is not None else Path(asset_cache_dir())
    lib = Catalog()
    try:
        entries, info = _open(sh3f, cache)
    except CatalogError as e:
        return _skip_catalog(lib, sh3f, str(e), strict)
    lib.models = entries
    index = cache / info["rel"] / "catalog.json"
    if index.is_file():
        lib.skipped = list(json.loads(index.read_text())["skipped"])
    return lib


def import_catalog(sh3f: str | Path, cache: str | Path | None = None, strict: bool = False,
                   only: Iterable[str] | None = None) -> Catalog:
    """Import one .sh3f catalogue into the asset cache (see the module docstring): convert every model (``only``:
    just those whose catalogue id or name is listed), writing the index when all were tried. Returns the models
    that converted; the skipped list names the others (``strict``: the first raises CatalogError)."""
    sh3f = Path(sh3f)
    cache = Path(cache) if cache is not None else Path(asset_cache_dir())
    lib = Catalog()
    try:
        entries, info = _open(sh3f, cache)
    except CatalogError as e:
        return _skip_catalog(lib, sh3f, str(e), strict)
    wanted = None if only is None else set(only)
    for m in entries:
        if wanted is not None and m.id not in wanted and m.name not in wanted:
            continue
        try:
            m.converted()
            lib.models.append(m)
        except (CatalogError, GeometryError) as err:
            line = _skip_line(sh3f, m, err)
            if strict:
                raise CatalogError(f"{line} (fix the catalogue or run without --strict to skip it)") from None
            lib.skipped.append(line)
    if only is None:
        index = cache / info["rel"] / "catalog.json"
        with publishing(index) as tmp:
            tmp.write_text(json.dumps({**{k: v for k, v in info.items() if k != "rel"}, "models": len(lib.models),
                                       "skipped": lib.skipped}, indent=0, sort_keys=True))
    return lib


def _skip_line(sh3f: Path, m: CatalogModel, err: Exception) -> str:
    src = str((Path(m.source[0]) / "src").resolve()) + os.sep
    return f"{sh3f.name} model {m.name!r} ({m.source[4]}): {str(err).replace(src, '')}"  # no cache paths


def _skip_catalog(lib: Catalog, sh3f: Path, why: str, strict: bool) -> Catalog:
    line = f"catalogue {str(sh3f)!r}: {why}"
    if strict:
        raise CatalogError(f"{line} (remove it, or run without --strict to skip it)")
    lib.skipped.append(line)
    return lib


@functools.lru_cache(maxsize=16)
def _open_cached(sh3f: str, size: int, mtime_ns: int, cache: str) -> tuple[list[CatalogModel], dict[str, str]]:
    import filelock

    path = Path(sh3f)
    digest = _digest(sh3f, size, mtime_ns)
    rel = f"sh3d/{path.stem}-{digest[:12]}-v{FORMAT}"
    root = Path(cache) / rel
    (Path(cache) / "sh3d").mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(root) + ".lock"):
        props, header = _extract(path, root)
    licence = licence_of(header.get("license", ""))
    catalog = header.get("name", path.stem)
    if licence is None:
        raise CatalogError(f"licence {header.get('license', 'unknown')!r} is neither CC0 nor CC BY 3.0")
    holder = _holder(header.get("license", ""), catalog)
    indices = sorted({int(k.split("#")[1]) for k in props if re.match(r"^id#\d+$", k)})
    entries = []
    for i in indices:
        e = _Entry(i, props)
        m = _entry_model(e, str(root), rel, path.stem, catalog, licence, holder)
        if m is not None:
            entries.append(m)
    info = {"format": FORMAT, "catalog": catalog, "sha256": digest, "licence": licence, "holder": holder,
            "source": sh3f, "rel": rel}
    return entries, info


def _open(sh3f: Path, cache: Path) -> tuple[list[CatalogModel], dict[str, str]]:
    try:
        st = sh3f.stat()
    except OSError as e:
        raise CatalogError(f"cannot be read ({e.strerror})") from None
    return _open_cached(str(sh3f.resolve()), st.st_size, st.st_mtime_ns, str(cache.resolve()))


def _entry_model(e: _Entry, root: str, rel: str, stem: str, catalog: str, licence: str, holder: str
                 ) -> CatalogModel | None:
    """A model as the properties describe it (None: an entry without a usable model file or size; converting
    it would fail the same way, so it is left out)."""
    model_ref = e.get("model")
    mid = e.get("id") or f"{stem}#{e.index}"
    try:
        w, d, h = (e.number(k) / 100.0 for k in ("width", "depth", "height"))
        elevation = e.number("elevation", 0.0) / 100.0
        lights = tuple(_lights(e, (w, d, h)))
    except ValueError:
        return None
    if not model_ref or min(w, d, h) <= 0:
        return None
    key = f"{e.index:03d}-{_slug(mid.split('#')[-1])}"
    name = e.get("name") or mid
    category = e.get("category") or "Miscellaneous"
    cls = classify(name, category, (w, d, h))
    door_or_window = (e.get("doorOrWindow") or "false").strip().lower() == "true"
    role, elevation = role_of(cls, (w, d, h), elevation, door_or_window, category, name)
    return CatalogModel(key=f"{stem}/{key}", id=mid, name=name, category=category, catalog=catalog, class_name=cls,
                        role=role, room=ROOMS.get(category, "any"), mesh=f"{CACHE_PREFIX}{rel}/models/{key}.npz",
                        size_m=(round(w, 5), round(d, 5), round(h, 5)), elevation_m=round(elevation, 5),
                        lights=tuple(tuple(round(float(x), 5) for x in li) for li in lights), licence=licence,
                        creator=(e.get("creator") or holder).strip(), holder=holder,
                        source=(root, rel, stem, e.index, model_ref, e.get("modelRotation") or ""))


_RECORDS: dict[str, dict[str, Any]] = {}
"""Import records read in this process, by record file (kept while the model's mesh file is there)."""


def _converted(m: CatalogModel) -> dict[str, Any]:
    import filelock

    root = Path(m.source[0])
    key = m.key.split("/", 1)[1]
    record_path = root / "models" / f"{key}.json"
    failed_path = root / "models" / f"{key}.failed"
    known = _RECORDS.get(str(record_path))
    if known is not None and (root / "models" / f"{key}.npz").is_file():
        return known
    if record_path.is_file():
        _RECORDS[str(record_path)] = json.loads(record_path.read_text())
        return _RECORDS[str(record_path)]
    if failed_path.is_file():
        raise CatalogError(failed_path.read_text().strip())
    (root / "models").mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(root / "models" / f"{key}.lock")):
        if record_path.is_file():
            return json.loads(record_path.read_text())
        try:
            record = _convert_model(m, root, key)
        except (CatalogError, GeometryError, ValueError, OSError) as e:
            why = str(e).replace(str((root / "src").resolve()) + os.sep, "")
            with publishing(failed_path) as tmp:
                tmp.write_text(why + "\n")
            raise CatalogError(why) from None
        with publishing(record_path) as tmp:
            tmp.write_text(json.dumps(record, sort_keys=True))
    _RECORDS[str(record_path)] = record
    return record


def _extract(sh3f: Path, root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Extract the catalogue into ``root/src`` (once: a temporary folder renamed whole); its properties (model
    entries) and header (catalogue entries)."""
    src = root / "src"
    if not src.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".src-", dir=root))
        try:
            with zipfile.ZipFile(sh3f) as z:
                for info in z.infolist():
                    name = info.filename
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise CatalogError(f"unsafe path {name!r} in the archive")
                    z.extract(info, tmp)
            os.replace(tmp, src)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CatalogError(f"not a readable .sh3f (zip) file: {type(e).__name__}: {e}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    prop = src / "PluginFurnitureCatalog.properties"
    if not prop.is_file():
        raise CatalogError("no PluginFurnitureCatalog.properties in the archive")
    props = read_properties(prop.read_text(encoding="latin-1"))
    header = {k: v for k, v in props.items() if "#" not in k}
    return props, header


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "model"


def _convert_model(m: CatalogModel, root: Path, key: str) -> dict[str, Any]:
    """Convert one model into ``root/models``: its .npz mesh (published whole) and its import record."""
    _root, rel, _stem, _index, model_ref, rotation = m.source
    obj = (root / "src" / model_ref.lstrip("/")).resolve()
    if not obj.is_relative_to((root / "src").resolve()) or not obj.is_file():
        raise CatalogError(f"model file {model_ref!r} is not in the archive")
    w, d, h = m.size_m
    mesh, materials = _convert(obj, rotation or None, (w, d, h))
    for k, fm in enumerate(materials):
        if fm.image is not None and "#" in fm.image and fm.image.rpartition("#")[2].isdigit():
            materials[k] = dataclasses.replace(fm, image=_embedded_image(fm.image, root / "models" / f"{key}-{k}.png"))
        elif fm.image is not None and not os.path.isfile(fm.image):
            raise CatalogError(f"texture {os.path.relpath(fm.image, root / 'src')!r} of material {fm.name!r} is "
                               "missing from the archive")
    src_root = str((root / "src").resolve())
    materials = [dataclasses.replace(fm, image=None if fm.image is None else
                                     f"{CACHE_PREFIX}{rel}/{os.path.relpath(fm.image, src_root.rsplit(os.sep, 1)[0])}")
                 for fm in materials]
    boxes = collision_boxes(mesh)
    surfaces = support_surfaces(mesh, "") if max(w, d) >= 0.15 and h >= 0.05 else []
    npz = root / "models" / f"{key}.npz"
    with publishing(npz, ".tmp.npz") as tmp:
        write_mesh_npz(str(tmp), mesh, materials)
    return {"key": m.key, "triangles": int(len(mesh.faces)),
            "boxes": [[[round(float(x), 5) for x in c], [round(float(x), 5) for x in hh]] for c, hh in boxes],
            "surfaces": [[round(float(x), 5) for x in (s.z, s.cx, s.cy, s.hx, s.hy, s.clear_m)] for s in surfaces]}


def _embedded_image(ref: str, png: Path) -> str:
    """An image trimesh found for a material (``PATH#K``) written as a PNG file; its path."""
    if not png.is_file():
        image = file_image(ref)
        with publishing(png, ".tmp.png") as tmp:
            image.save(tmp, format="PNG")
    return str(png.resolve())


def _convert(obj: Path, rotation: str | None, size: tuple[float, float, float]
             ) -> tuple[TriMesh, list[FileMaterial]]:
    """The OBJ as a TriMesh in rgbify's model frame at the catalogue's size, and its materials."""
    mesh, materials = read_mesh_file(str(obj))
    v = np.asarray(mesh.vertices, dtype=np.float64)
    if rotation:
        r = np.array([float(x) for x in rotation.split()], dtype=np.float64)
        if r.size != 9 or not np.all(np.isfinite(r)):
            raise CatalogError(f"modelRotation {rotation!r} is not 9 numbers")
        v = v @ r.reshape(3, 3).T
    # Sweet Home 3D: y up, front toward +z; rgbify: z up, front toward +y (a proper rotation, no mirror)
    turn = (rot_z(180.0) @ rot_x(90.0))[:3, :3]
    v = v @ turn.T
    lo, hi = v.min(0), v.max(0)
    ext = hi - lo
    if np.any(ext <= 1e-9):
        raise CatalogError(f"degenerate extent {ext.tolist()}")
    scale = np.asarray(size, dtype=np.float64) / ext  # Sweet Home 3D stretches the model to its box
    centre = np.array([(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0, lo[2]])
    v = np.round((v - centre) * scale, 6)
    return TriMesh(v, np.asarray(mesh.faces, dtype=np.int64), mesh.face_material, mesh.uv), list(materials)


def _lights(e: _Entry, size: tuple[float, float, float]) -> list[tuple[float, float, float, float]]:
    """Light sources (catalogue cm from the left, back and bottom of the piece) in the model frame, metres."""
    xs, ys, zs = (e.get(k) for k in ("lightSourceX", "lightSourceY", "lightSourceZ"))
    if not (xs and ys and zs):
        return []
    ds = (e.get("lightSourceDiameter") or "").split()
    w, d, _h = size
    out = []
    for k, (x, y, z) in enumerate(zip(xs.split(), ys.split(), zs.split(), strict=False)):
        dia = float(ds[k]) / 100.0 if k < len(ds) else 0.05
        out.append((w / 2.0 - float(x) / 100.0, float(y) / 100.0 - d / 2.0, float(z) / 100.0, dia))
    return out
