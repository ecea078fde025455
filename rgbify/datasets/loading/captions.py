"""Captions built from a scene spec, for generation-retention items ("a bedroom with a green bed and two lamps")."""

from __future__ import annotations

import colorsys
from collections import Counter
from typing import Any

STRUCTURAL = frozenset({"wall", "floor", "ceiling", "door", "window", "ground", "sky", "terrain", "road", "sidewalk",
                        "background", "room"})
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
ROOM_BY_CLASS = (("bed", "bedroom"), ("sofa", "living room"), ("couch", "living room"), ("tv", "living room"),
                 ("desk", "study"), ("refrigerator", "kitchen"), ("oven", "kitchen"), ("bathtub", "bathroom"),
                 ("toilet", "bathroom"), ("dining_table", "dining room"))
SETTING_BY_RECIPE = {"indoor": "a room", "tabletop": "a table top", "outdoor": "an outdoor scene"}


def color_name(linear_rgb: Any) -> str:
    """A plain English name of a linear-RGB colour in [0, 1] (judged in sRGB, by hue, saturation and value)."""
    srgb = [min(1.0, max(0.0, c)) for c in linear_rgb]
    srgb = [12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055 for c in srgb]
    h, s, v = colorsys.rgb_to_hsv(*srgb)
    if v < 0.18:
        return "black"
    if s < 0.18:
        return "white" if v > 0.85 else ("gray" if v > 0.35 else "dark gray")
    deg = h * 360
    if (deg < 45 or deg >= 345) and v < 0.6 and deg >= 10:
        return "brown"
    for limit, name in ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (195, "teal"),
                        (255, "blue"), (290, "purple"), (345, "pink"), (361, "red")):
        if deg < limit:
            if name == "orange" and v < 0.6:
                return "brown"
            if name == "yellow" and s < 0.45:
                return "beige"
            return name
    return "colorful"  # unreachable


def plural(noun: str) -> str:
    if noun.endswith("f") and not noun.endswith("ff"):
        return noun[:-1] + "ves"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def caption(spec: Any, visible: Any = None, max_classes: int = 4) -> str:
    """A one-sentence caption of a SceneSpec: the setting, then up to ``max_classes`` object classes in class-table
    order (furniture before clutter), one object with its colour ("a green bed"), several with their number
    ("two lamps"). ``visible``: instance ids seen in the image (others are left out); None = all objects."""
    meta = dict(spec.meta)
    objects = [o for o in spec.objects if o.class_name not in STRUCTURAL and o.class_name != "clutter"
               and (visible is None or o.instance_id in visible)]
    counts = Counter(o.class_name for o in objects)
    setting = next((meta[k] for k in ("room_type", "room", "scene_type", "setting") if isinstance(meta.get(k), str)),
                   None)
    if setting is None and meta.get("kind", meta.get("recipe")) == "indoor":
        setting = next((room for cls, room in ROOM_BY_CLASS if cls in counts), None)
    setting = f"{_article(setting)} {setting.replace('_', ' ')}" if setting else \
        SETTING_BY_RECIPE.get(str(meta.get("kind", meta.get("recipe", ""))), "a scene")
    parts = []
    order = {c: i for i, c in enumerate(spec.classes)}
    for cls, n in sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))[:max_classes]:
        noun = cls.replace("_", " ")
        if n == 1:
            obj = next(o for o in objects if o.class_name == cls)
            colour = color_name(obj.material.base_color)
            parts.append(f"{_article(colour)} {colour} {noun}")
        else:
            parts.append(f"{NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else 'many'} {plural(noun)}")
    if not parts:
        return setting
    things = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{setting} with {things}"
