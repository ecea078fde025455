"""Which third-party models a scene uses, and the attributions a user owes for them.

Every sampled spec lists the models it placed from the Sweet Home 3D catalogues and from ``--assets`` folders in
``spec.meta["assets"]``: one entry per model (``id``, ``name``, ``creator``, ``holder``, ``licence`` (SPDX id),
``source``). :func:`collect` gathers them over many specs (a dataset), :func:`credits_text` writes the
attribution list: CC BY models by name, creator, copyright holder, licence and its URL, marked as modified (the
importer converted them: rescaled to metres, turned, re-materialled); CC0 models counted (no attribution is
required); user assets with the licence and credit their class.toml declares. ``rgbify build`` writes
``CREDITS.md`` and ``credits.json`` into a dataset whose scenes use such models; ``rgbify scenes credits`` prints
the list for scene files or a dataset folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rgbify.fileio import publishing

LICENCES = {
    "CC0-1.0": ("CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/"),
    "CC-BY-3.0": ("CC BY 3.0", "https://creativecommons.org/licenses/by/3.0/"),
    "CC-BY-3.0-US": ("CC BY 3.0 US", "https://creativecommons.org/licenses/by/3.0/us/"),
    "CC-BY-4.0": ("CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/"),
}
CREDITS_JSON = "credits.json"
CREDITS_MD = "CREDITS.md"


def scene_credits(placed_credits: Iterable[dict[str, str] | None]) -> list[dict[str, str]]:
    """The ``assets`` entry of a spec's meta: each model once, sorted by id."""
    unique = {c["id"]: c for c in placed_credits if c}
    return [unique[k] for k in sorted(unique)]


def collect(metas: Iterable[Any]) -> list[dict[str, Any]]:
    """Every model the given spec metas (dicts, or (key, value) pairs as in a spec) list, once, with ``samples``:
    how many of them use it; sorted by licence, then id."""
    found: dict[str, dict[str, Any]] = {}
    for meta in metas:
        d = dict(meta) if not isinstance(meta, dict) else meta
        for c in d.get("assets", ()) or ():
            c = dict(c)
            entry = found.setdefault(c["id"], {**c, "samples": 0})
            entry["samples"] += 1
    return sorted(found.values(), key=lambda c: (c.get("licence", ""), c["id"]))


def owes_attribution(entry: dict[str, Any]) -> bool:
    return entry.get("licence", "") != "CC0-1.0"


def credits_text(entries: list[dict[str, Any]]) -> str:
    """The attribution list (Markdown) of :func:`collect`'s entries."""
    by = [e for e in entries if owes_attribution(e)]
    cc0 = [e for e in entries if not owes_attribution(e)]
    lines = ["# Credits", "", f"These scenes use {len(entries)} third-party 3-D models.", ""]
    if by:
        lines += ["## Models that require attribution", "",
                  "Each was converted by rgbify (rescaled to metres, turned, given new materials); the originals "
                  "are named below.", ""]
        for e in by:
            name, url = LICENCES.get(e.get("licence", ""), (e.get("licence", "unknown licence"), ""))
            who = e.get("creator") or e.get("holder") or "unknown author"
            holder = f", (c) {e['holder']}" if e.get("holder") and e.get("holder") != who else ""
            lic = f"{name} ({url})" if url else name
            lines.append(f"- \"{e.get('name', e['id'])}\" by {who}{holder}; {lic}; from {e.get('source', '?')} "
                         f"[{e['id']}, {e['samples']} sample(s)]")
        lines.append("")
    if cc0:
        lines += ["## Public-domain models (CC0: no attribution required)", ""]
        sources: dict[str, int] = {}
        for e in cc0:
            sources[e.get("source", "?")] = sources.get(e.get("source", "?"), 0) + 1
        lines += [f"- {n} model(s) from {s}" for s, n in sorted(sources.items())]
        lines.append("")
    return "\n".join(lines)


def write_credits(folder: str | Path, metas: Iterable[Any]) -> bool:
    """Publish ``credits.json`` and ``CREDITS.md`` into ``folder`` when the metas list any model; False (nothing
    written) when they list none."""
    entries = collect(metas)
    if not entries:
        return False
    folder = Path(folder)
    with publishing(folder / CREDITS_JSON) as tmp:
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    with publishing(folder / CREDITS_MD) as tmp:
        tmp.write_text(credits_text(entries))
    return True
