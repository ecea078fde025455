"""The rooms of rgbify and their arrows (docs/architecture.md), held by walking the import graph of the package.

Every ``import rgbify...`` and ``from rgbify... import ...`` counts, at the top of a module or inside a function:
an import inside a function is still an arrow between rooms. The test fails on an import cycle between modules,
on an upward import (a lower stage importing a higher one), and on an import between two rooms of the same level
(scenes and encode; the build and loading rooms of datasets).
"""

from __future__ import annotations

import ast
from pathlib import Path

import rgbify

PACKAGE = Path(rgbify.__file__).resolve().parent

ROOMS: list[tuple[str, str, int]] = [
    # (module prefix, room, level): a module belongs to the room of its longest matching prefix
    ("rgbify", "base", 0),
    ("rgbify.scenes", "scenes", 1),
    ("rgbify.encode", "encode", 1),
    ("rgbify.render", "render", 2),
    ("rgbify.datasets.storage", "datasets.storage", 3),
    ("rgbify.datasets.build", "datasets.build", 4),
    ("rgbify.datasets.loading", "datasets.loading", 4),
    ("rgbify.datasets", "datasets", 5),
    ("rgbify.train", "train", 6),
    ("rgbify.cli", "cli", 7),
    ("rgbify.__main__", "cli", 7),
]


def room_of(module: str) -> tuple[str, int]:
    best = max((p for p in ROOMS if module == p[0] or module.startswith(p[0] + ".")), key=lambda p: len(p[0]))
    return best[1], best[2]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """rgbify modules that ``path`` imports (a name imported from a package resolves to its submodule if it is
    one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "rgbify")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rgbify":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(p, known) - {m} for m, p in known.items()}


def test_no_upward_or_sideways_imports():
    bad = []
    for mod, deps in graph().items():
        room, level = room_of(mod)
        for dep in deps:
            droom, dlevel = room_of(dep)
            if droom == room or dlevel < level:
                continue
            if room == "datasets" and droom.startswith("datasets."):  # the package level uses its rooms
                continue
            if room == "cli":  # rgbify.cli adds every stage's subcommands
                continue
            bad.append(f"{mod} ({room}) imports {dep} ({droom})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_walk_sees_the_arrows():
    """The graph is not empty by accident: known arrows are found."""
    g = graph()
    assert "rgbify.scenes.spec" in g["rgbify.render.cycles"]
    assert "rgbify.config" in g["rgbify.scenes.recipe"]
    assert room_of("rgbify.datasets.storage.shards") == ("datasets.storage", 3)
    assert room_of("rgbify.scenes") == ("scenes", 1) and room_of("rgbify.errors") == ("base", 0)
