"""The class vocabulary shared by every recipe.

Semantic index ``i + 1`` names ``CLASSES[i]``; index 0 is "nothing hit / unlabeled" (sky is not a class: a ray
that hits nothing is 0). User asset classes (``--assets DIR``) are appended after these, in sorted order.
"""

from __future__ import annotations

STRUCTURE = ("wall", "floor", "ceiling", "door", "window")
FURNITURE = ("table", "chair", "shelf", "cabinet", "bed", "sofa", "lamp", "rug", "picture", "pillow")
CLUTTER = ("box", "bottle", "bowl", "book", "ball", "cup", "plate", "can", "vase", "fruit", "clutter")
OUTDOOR = ("ground", "road", "sidewalk", "building", "pole", "traffic_sign", "car", "truck", "bus", "tree",
           "bush", "fence", "bench", "rock")

CLASSES: tuple[str, ...] = STRUCTURE + FURNITURE + CLUTTER + OUTDOOR
"""All built-in class names, in table order (40 names)."""

DESCRIPTIONS: dict[str, str] = {
    "wall": "room walls (with their door and window frames)",
    "floor": "room floors",
    "ceiling": "room ceilings",
    "door": "door panels with handles",
    "window": "glass window panes (transmissive)",
    "table": "dining tables, desks, coffee tables, side tables, work tables",
    "chair": "chairs and stools",
    "shelf": "open bookshelves and wall shelves",
    "cabinet": "closed cabinets, dressers, sideboards",
    "bed": "beds (frame and mattress)",
    "sofa": "sofas and armchairs",
    "lamp": "floor and table lamps, glowing ceiling light panels",
    "rug": "rugs on the floor",
    "picture": "framed pictures on walls",
    "pillow": "pillows and cushions on beds and sofas",
    "box": "boxes and cartons",
    "bottle": "bottles (some glass)",
    "bowl": "bowls",
    "book": "books, upright or stacked",
    "ball": "balls",
    "cup": "cups, mugs and glasses",
    "plate": "plates",
    "can": "cans and tins",
    "vase": "vases (some glass)",
    "fruit": "round fruit-like objects",
    "clutter": "random convex shapes",
    "ground": "outdoor ground (grass, dirt)",
    "road": "road surface",
    "sidewalk": "sidewalks and kerbs",
    "building": "buildings",
    "pole": "street lamps and poles",
    "traffic_sign": "traffic signs",
    "car": "cars",
    "truck": "trucks and vans",
    "bus": "buses",
    "tree": "trees (trunk and crown)",
    "bush": "bushes and hedges",
    "fence": "fences and barriers",
    "bench": "benches",
    "rock": "rocks and boulders",
}


def class_table(extra: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The built-in classes followed by any extra (user asset) class names not already in it, sorted."""
    return CLASSES + tuple(sorted(set(extra) - set(CLASSES)))
