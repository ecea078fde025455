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

def class_table(extra: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The built-in classes followed by any extra (user asset) class names not already in it, sorted."""
    return CLASSES + tuple(sorted(set(extra) - set(CLASSES)))
