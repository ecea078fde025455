"""The class vocabulary shared by every recipe, and its published mappings to NYU40 and Cityscapes.

Semantic index ``i + 1`` names ``CLASSES[i]``; index 0 is "nothing hit / unlabeled" (sky is not a class: a ray
that hits nothing is 0). User asset classes (``--assets DIR``) are appended after these, in sorted order. New
built-in classes are only ever appended (indices 1-40 are those of sampler versions 1-3), so a stored semantic
index keeps its meaning.

``NYU40`` maps every class to one of the 40 classes of NYU Depth v2 as grouped by Gupta et al. (CVPR 2013,
"Perceptual organization and recognition of indoor scenes from RGB-D images"; ids 1-40, ``NYU40_NAMES``), and
``CITYSCAPES`` maps every class to a Cityscapes label (Cordts et al., CVPR 2016; ``CITYSCAPES_LABELS``: name, id,
train id, 255 = ignored in evaluation) or to None where the class has no place in a street scene (indoor things).
"""

from __future__ import annotations

STRUCTURE = ("wall", "floor", "ceiling", "door", "window")
FURNITURE = ("table", "chair", "shelf", "cabinet", "bed", "sofa", "lamp", "rug", "picture", "pillow")
CLUTTER = ("box", "bottle", "bowl", "book", "ball", "cup", "plate", "can", "vase", "fruit", "clutter")
OUTDOOR = ("ground", "road", "sidewalk", "building", "pole", "traffic_sign", "car", "truck", "bus", "tree",
           "bush", "fence", "bench", "rock")
KITCHEN_BATH = ("counter", "sink", "refrigerator", "stove", "appliance", "small_appliance", "kitchenware", "toilet",
                "bathtub", "shower", "towel", "shower_curtain", "mirror")
ROOMS = ("desk", "nightstand", "dresser", "curtain", "blinds", "television", "computer", "electronics",
         "whiteboard", "clothes", "bag", "paper", "plant", "decoration", "food", "toy", "tool", "other_furniture",
         "other_structure")
PEOPLE_STREET = ("person", "animal", "bicycle", "motorcycle", "traffic_light", "rider")

CLASSES: tuple[str, ...] = STRUCTURE + FURNITURE + CLUTTER + OUTDOOR + KITCHEN_BATH + ROOMS + PEOPLE_STREET
"""All built-in class names, in table order (indices 1-40 as in sampler versions 1-3, then the classes the Sweet
Home 3D catalogues and the room types brought)."""

DESCRIPTIONS: dict[str, str] = {
    "wall": "room walls (with their door and window frames and window sills); free-standing walls",
    "floor": "room floors", "ceiling": "room ceilings", "door": "doors (panels, frames and handles)",
    "window": "windows (panes and their frames)",
    "table": "dining tables, coffee tables, side tables, round tables", "chair": "chairs, stools, office chairs",
    "shelf": "open bookshelves and shelving units", "cabinet": "closed cabinets, sideboards, wardrobes, wall units",
    "bed": "beds, cribs, futons", "sofa": "sofas, couches and armchairs", "lamp": "floor, table, wall and ceiling "
    "lamps, glowing light panels", "rug": "rugs, carpets and mats on the floor", "picture": "framed pictures",
    "pillow": "pillows and cushions", "box": "boxes and cartons", "bottle": "bottles", "bowl": "bowls",
    "book": "books", "ball": "balls", "cup": "cups, mugs and glasses", "plate": "plates and trays",
    "can": "cans and tins", "vase": "vases and jars", "fruit": "fruit", "clutter": "small things of no other class",
    "ground": "outdoor ground (grass, dirt)", "road": "road surface and its markings", "sidewalk": "sidewalks and "
    "kerbs", "building": "buildings (walls, roofs, facade windows and doors are their own classes)",
    "pole": "street lamps and poles", "traffic_sign": "traffic signs (with their post)", "car": "cars and vans",
    "truck": "trucks", "bus": "buses", "tree": "trees", "bush": "bushes and hedges", "fence": "fences, railings "
    "and barriers", "bench": "benches", "rock": "rocks and boulders",
    "counter": "kitchen base units and islands with a worktop", "sink": "sinks, washbasins and vanity units",
    "refrigerator": "fridges and freezers", "stove": "stoves, cooktops, ovens and cookers",
    "appliance": "large appliances: washing machines, dryers, water heaters, radiators, range hoods",
    "small_appliance": "small appliances: microwaves, toasters, kettles, coffee makers, blenders",
    "kitchenware": "pots, pans, knives, cutlery, chopping boards, utensils", "toilet": "toilets, bidets, urinals",
    "bathtub": "bathtubs and jacuzzis", "shower": "shower stalls, doors and heads", "towel": "towels and towel "
    "racks", "shower_curtain": "shower curtains", "mirror": "mirrors", "desk": "desks and work tables",
    "nightstand": "bedside tables", "dresser": "dressers, chests of drawers, dressing tables",
    "curtain": "curtains", "blinds": "window blinds and shutters", "television": "televisions",
    "computer": "computers, laptops, monitors, keyboards", "electronics": "phones, radios, speakers, cameras, "
    "game consoles, printers", "whiteboard": "whiteboards", "clothes": "clothes, shoes and hats",
    "bag": "bags, backpacks and suitcases", "paper": "newspapers, letters, paper trays", "plant": "potted plants "
    "and flowers", "decoration": "clocks, candles, frames, figurines, ornaments", "food": "food",
    "toy": "toys and games", "tool": "hand tools and household tools", "other_furniture": "large furniture of no "
    "other class: pianos, pool tables, treadmills, workbenches", "other_structure": "stairs, columns, fireplaces",
    "person": "people", "animal": "animals", "bicycle": "bicycles and tricycles", "motorcycle": "motorcycles and "
    "scooters", "traffic_light": "traffic lights (with their post)",
    "rider": "people riding a bicycle (the bicycle is its own instance, class bicycle)",
}
"""What each class holds (docs/scenes.md prints this table)."""

NYU40_NAMES: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter",
    "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes", "ceiling",
    "books", "refridgerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard", "person",
    "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop")
"""The NYU40 classes, id k + 1 is ``NYU40_NAMES[k]`` (spelled as in the NYUv2 40-class release)."""

NYU40: dict[str, str | None] = {
    "wall": "wall", "floor": "floor", "ceiling": "ceiling", "door": "door", "window": "window", "table": "table",
    "chair": "chair", "shelf": "bookshelf", "cabinet": "cabinet", "bed": "bed", "sofa": "sofa", "lamp": "lamp",
    "rug": "floor mat", "picture": "picture", "pillow": "pillow", "box": "box", "bottle": "otherprop",
    "bowl": "otherprop", "book": "books", "ball": "otherprop", "cup": "otherprop", "plate": "otherprop",
    "can": "otherprop", "vase": "otherprop", "fruit": "otherprop", "clutter": "otherprop",
    "ground": None, "road": None, "sidewalk": None, "building": None, "pole": "otherstructure",
    "traffic_sign": None, "car": None, "truck": None, "bus": None, "tree": None, "bush": None,
    "fence": "otherstructure", "bench": "otherfurniture", "rock": None,
    "counter": "counter", "sink": "sink", "refrigerator": "refridgerator", "stove": "otherfurniture",
    "appliance": "otherfurniture", "small_appliance": "otherprop", "kitchenware": "otherprop", "toilet": "toilet",
    "bathtub": "bathtub", "shower": "otherstructure", "towel": "towel", "shower_curtain": "shower curtain",
    "mirror": "mirror", "desk": "desk", "nightstand": "night stand", "dresser": "dresser", "curtain": "curtain",
    "blinds": "blinds", "television": "television", "computer": "otherprop", "electronics": "otherprop",
    "whiteboard": "whiteboard", "clothes": "clothes", "bag": "bag", "paper": "paper", "plant": "otherprop",
    "decoration": "otherprop", "food": "otherprop", "toy": "otherprop", "tool": "otherprop",
    "other_furniture": "otherfurniture", "other_structure": "otherstructure", "person": "person",
    "animal": "otherprop", "bicycle": "otherprop", "motorcycle": None, "traffic_light": None, "rider": "person",
}
"""Our class -> NYU40 class name (None: an outdoor class NYUv2's indoor scenes never show; evaluate it as 0)."""

CITYSCAPES_LABELS: tuple[tuple[str, int, int], ...] = (
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255), ("out of roi", 3, 255),
    ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255), ("road", 7, 0), ("sidewalk", 8, 1),
    ("parking", 9, 255), ("rail track", 10, 255), ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4),
    ("guard rail", 14, 255), ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8), ("terrain", 22, 9), ("sky", 23, 10),
    ("person", 24, 11), ("rider", 25, 12), ("car", 26, 13), ("truck", 27, 14), ("bus", 28, 15),
    ("caravan", 29, 255), ("trailer", 30, 255), ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18))
"""Cityscapes labels: (name, id, train id); train id 255 is ignored by the benchmark."""

CITYSCAPES: dict[str, str | None] = {
    "wall": "wall", "door": "building", "window": "building", "ground": "terrain", "road": "road",
    "sidewalk": "sidewalk", "building": "building", "pole": "pole", "traffic_sign": "traffic sign", "car": "car",
    "truck": "truck", "bus": "bus", "tree": "vegetation", "bush": "vegetation", "plant": "vegetation",
    "fence": "fence", "bench": "static", "rock": "static", "person": "person", "animal": "dynamic",
    "bicycle": "bicycle", "motorcycle": "motorcycle", "traffic_light": "traffic light", "rider": "rider",
    "box": "static",
    "bag": "dynamic", "lamp": "static", "other_structure": "static", "table": "static", "chair": "static",
    "clutter": "static",
}
"""Our class -> Cityscapes label name, for the classes a street scene may show (every other class: None)."""


def class_table(extra: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The built-in classes followed by any extra (user asset) class names not already in it, sorted."""
    return CLASSES + tuple(sorted(set(extra) - set(CLASSES)))


def nyu40_id(class_name: str) -> int:
    """The NYU40 id (1-40) of one of our classes, 0 where it has none (an unknown class: ValueError)."""
    if class_name not in NYU40:
        raise ValueError(f"class {class_name!r} is not in the vocabulary (rgbify.scenes.classes.CLASSES)")
    name = NYU40[class_name]
    return 0 if name is None else NYU40_NAMES.index(name) + 1


def cityscapes_ids(class_name: str) -> tuple[int, int]:
    """(Cityscapes label id, train id) of one of our classes: (0, 255) "unlabeled" where it has none."""
    if class_name not in NYU40:
        raise ValueError(f"class {class_name!r} is not in the vocabulary (rgbify.scenes.classes.CLASSES)")
    name = CITYSCAPES.get(class_name)
    if name is None:
        return 0, 255
    return next((i, t) for n, i, t in CITYSCAPES_LABELS if n == name)


def lookup_table(target: str, classes: tuple[str, ...] | list[str] = CLASSES, nothing_is_sky: bool = False
                 ) -> list[int]:
    """A table ``t`` with ``t[semantic index]`` the NYU40 id (``target="nyu40"``) or Cityscapes label id
    (``"cityscapes"``; ``"cityscapes_train"`` for train ids) of a scene's class table; index 0 (nothing hit) and
    classes not in the vocabulary (user assets) map to 0 (train ids: 255), index 0 to Cityscapes "sky" with
    ``nothing_is_sky`` (outdoor scenes: a ray that hits nothing sees the sky)."""
    if target not in ("nyu40", "cityscapes", "cityscapes_train"):
        raise ValueError(f"target {target!r}: use nyu40, cityscapes or cityscapes_train")
    none = 255 if target == "cityscapes_train" else 0
    sky = next((i, t) for n, i, t in CITYSCAPES_LABELS if n == "sky")
    out = [sky[1 if target == "cityscapes_train" else 0] if nothing_is_sky and target != "nyu40" else none]
    for c in classes:
        if c not in NYU40:
            out.append(none)
        elif target == "nyu40":
            out.append(nyu40_id(c))
        else:
            out.append(cityscapes_ids(c)[1 if target == "cityscapes_train" else 0])
    return out
