"""`rgbify scenes list | sample | stats`: the recipes, one sampled spec as JSON, and a recipe's statistics."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rgbify.errors import UserError
from rgbify.fileio import check_writable_parent, publishing


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenes", help="scene recipes: list them, sample a spec, measure a recipe",
                       description="Scene recipes (TOML files in scenes/): list them, print a sampled scene spec, "
                       "or measure what a recipe makes (bpy-free, ray-cast probes).")
    ss = p.add_subparsers(dest="scenes_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    lp = ss.add_parser("list", help="list the shipped recipes")
    lp.set_defaults(func=cmd_list)

    sp = ss.add_parser("sample", help="print the scene spec JSON for (recipe, seed, index)")
    _common(sp)
    sp.add_argument("--index", type=int, default=0, help="sample index (default 0)")
    sp.add_argument("--out", help="write the JSON to this file instead of stdout")
    sp.set_defaults(func=cmd_sample)

    tp = ss.add_parser("stats", help="sample N scenes and report depth range, classes, instances and rejects")
    _common(tp)
    tp.add_argument("--n", type=int, default=200, help="number of scenes (indices 0..n-1, default 200)")
    tp.add_argument("--json", dest="json_out", help="also write the statistics as JSON to this file")
    tp.add_argument("--jobs", type=int, default=1, help="worker processes (default 1; results do not depend on it)")
    tp.set_defaults(func=cmd_stats)

    rp = ss.add_parser("credits", help="the attributions owed for the third-party models of scenes or a dataset",
                       description="List the third-party 3-D models (Sweet Home 3D catalogues, --assets) that scene "
                       "specs use, with the attributions their CC BY licences require. PATH: a scene spec JSON "
                       "(`rgbify scenes sample --out`), a render directory's scene.json or the directory, or a "
                       "dataset directory (its credits.json, written by `rgbify build`).")
    rp.add_argument("paths", nargs="+", metavar="PATH", help="spec files, render directories or dataset directories")
    rp.add_argument("--json", dest="as_json", action="store_true", help="print the entries as JSON")
    rp.set_defaults(func=cmd_credits)

    cp = ss.add_parser("catalog", help="import the Sweet Home 3D furniture catalogues into the asset cache, list "
                       "them", description="The Sweet Home 3D furniture catalogues (Debian: apt install "
                       "sweethome3d-furniture): `import` converts every model into the asset cache "
                       "($RGBIFY_ASSET_CACHE, else $XDG_CACHE_HOME/rgbify/assets) once; `list` prints what the "
                       "library holds per catalogue and class, and what was skipped.")
    cp.add_argument("action", choices=["import", "list"], help="import (or finish importing) the catalogues; list "
                    "them")
    cp.add_argument("--dir", dest="dirs", action="append", default=None, metavar="DIR",
                    help="a folder of .sh3f files or one .sh3f file (repeatable; default $RGBIFY_SH3D_DIR, else "
                    "/usr/share/sweethome3d/furniture)")
    cp.add_argument("--strict", action="store_true", help="fail on a model that cannot be imported instead of "
                    "skipping it")
    cp.set_defaults(func=cmd_catalog)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe name (see `rgbify scenes list`) or path to a recipe .toml")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--assets", help="folder with one sub-folder of mesh files (.obj .glb .gltf .ply .stl) per class")
    p.add_argument("--strict", action="store_true", help="fail on an unreadable asset file instead of skipping it")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set samples=16 --set camera.fov_deg=[40,60] (TOML values)")


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    import tomllib
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set samples=16")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value  # a bare string
    return out


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    import warnings

    from rgbify.scenes.assets import AssetError, AssetWarning, load_assets
    from rgbify.scenes.recipe import RecipeError, load_recipe
    try:
        config = load_recipe(args.recipe, **_parse_overrides(args.overrides))
    except RecipeError as e:
        raise UserError(str(e)) from None
    assets = None
    if args.assets:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AssetWarning)
            try:
                assets = load_assets(args.assets, strict=args.strict)
            except AssetError as e:
                raise UserError(str(e)) from None
        for w in caught:
            print(f"rgbify: warning: {w.message}", file=sys.stderr)
        print(f"rgbify: {len(assets.assets)} asset file(s) in {len(assets.classes)} class(es) from {args.assets}"
              f" ({len(assets.skipped)} skipped)", file=sys.stderr)
    if args.seed < 0:
        raise UserError(f"--seed {args.seed}: must be a non-negative integer")
    return config, assets


def _check_out(path: str, flag: str) -> None:
    """Before the work: the output file can be written (not a folder; its folder exists or can be made)."""
    from pathlib import Path

    if Path(path).is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name")
    check_writable_parent(path, flag)


def cmd_list(args: argparse.Namespace) -> int:
    from rgbify.scenes.recipe import list_recipes, load_recipe, recipe_path
    for name in list_recipes():
        cfg = load_recipe(name)
        print(f"{name:<10} {cfg.description}  [{recipe_path(name)}]")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from rgbify.scenes.recipe import RecipeError
    from rgbify.scenes.sample import SceneSamplingError, sample_scene
    from rgbify.scenes.spec import spec_to_json
    config, assets = _load(args)
    if args.index < 0:
        raise UserError(f"--index {args.index}: must be a non-negative integer")
    if args.out:
        _check_out(args.out, "--out")
    try:
        spec = sample_scene(config, args.seed, args.index, assets)
    except (SceneSamplingError, RecipeError) as e:
        raise UserError(str(e)) from None
    text = spec_to_json(spec, indent=1)
    if args.out:
        with publishing(args.out) as tmp:
            tmp.write_text(text + "\n")
    else:
        print(text)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from rgbify.scenes.recipe import RecipeError
    from rgbify.scenes.sample import SceneSamplingError
    from rgbify.scenes.stats import format_stats, recipe_stats
    config, assets = _load(args)
    if args.n < 1:
        raise UserError(f"--n {args.n}: must be at least 1")
    if args.json_out:
        _check_out(args.json_out, "--json")
    try:
        s = recipe_stats(config, args.n, args.seed, assets, jobs=max(1, args.jobs))
    except (SceneSamplingError, RecipeError) as e:
        raise UserError(str(e)) from None
    print(format_stats(s))
    if args.json_out:
        with publishing(args.json_out) as tmp:
            tmp.write_text(json.dumps(s, indent=1) + "\n")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    import warnings
    from collections import Counter

    from rgbify.scenes.catalog import CatalogError, CatalogWarning, find_catalogs, import_catalog, load_catalog
    from rgbify.scenes.geometry import asset_cache_dir

    paths = find_catalogs(args.dirs)
    if not paths:
        where = ", ".join(args.dirs) if args.dirs else "$RGBIFY_SH3D_DIR or /usr/share/sweethome3d/furniture"
        raise UserError(f"no .sh3f catalogues in {where}; install them (Debian/Ubuntu: apt install "
                        "sweethome3d-furniture) or pass --dir FOLDER")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CatalogWarning)
        try:
            if args.action == "import":
                for path in paths:
                    part = import_catalog(path, strict=args.strict)
                    for line in part.skipped:
                        print(f"rgbify: warning: skipping {line}", file=sys.stderr)
            lib = load_catalog(args.dirs, strict=args.strict)
            if args.action == "import":
                from rgbify.scenes.rider import pose_all

                print(f"{pose_all(lib)} riders posed (people of the catalogue on its bicycles)")
        except CatalogError as e:
            raise UserError(str(e)) from None
    if args.action == "list":
        for w in caught:
            print(f"rgbify: warning: {w.message}", file=sys.stderr)
    by_catalog = Counter(m.catalog for m in lib.models)
    print(f"{len(lib.models) - len(lib.skipped)} models from {len(paths)} catalogue(s) in {asset_cache_dir()} "
          f"({len(lib.skipped)} skipped{'' if args.action == 'import' else ' by the last import'})")
    for name, n in sorted(by_catalog.items()):
        licence = next(m.licence for m in lib.models if m.catalog == name)
        print(f"  {name:<24} {n:>4} models  {licence}")
    if args.action == "list":
        classes = Counter(m.class_name for m in lib.models)
        roles = Counter(m.role for m in lib.models)
        print(f"{len(classes)} classes: " + ", ".join(f"{c} {n}" for c, n in classes.most_common()))
        print("placement: " + ", ".join(f"{r} {n}" for r, n in roles.most_common()))
    return 0


def _metas(path: str) -> list:
    """The spec metas a credits PATH holds (see `scenes credits --help`)."""
    from pathlib import Path

    from rgbify.scenes.credits import CREDITS_JSON

    p = Path(path)
    if p.is_dir():
        if (p / CREDITS_JSON).is_file():  # a dataset (the build wrote it)
            entries = json.loads((p / CREDITS_JSON).read_text())
            return [{"assets": [e]} for e in entries for _ in range(int(e.get("samples", 1)))]
        if (p / "dataset.json").is_file():
            return []  # a dataset whose scenes use no third-party models
        p = p / "scene.json"
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a scene spec, render directory or dataset ({e})") from None
    spec = d.get("spec", d) if isinstance(d, dict) else None
    if not isinstance(spec, dict) or "meta" not in spec:
        raise UserError(f"{path}: not a scene spec, render directory or dataset (no spec meta)")
    return [dict((k, v) for k, v in spec["meta"])]


def cmd_credits(args: argparse.Namespace) -> int:
    from rgbify.scenes.credits import collect, credits_text

    entries = collect(m for path in args.paths for m in _metas(path))
    if args.as_json:
        print(json.dumps(entries, indent=1, sort_keys=True))
    elif not entries:
        print("no third-party models: nothing to credit")
    else:
        print(credits_text(entries), end="")
    return 0
