"""rgbify.datasets is three rooms: storage imports neither build nor loading, build and loading import storage but
not each other, and no module of the package takes part in an import cycle (imports inside functions count)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rgbify

PACKAGE = Path(rgbify.__file__).parent / "datasets"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["rgbify", *path.relative_to(PACKAGE.parent).with_suffix("").parts]
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The rgbify.datasets modules that ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        found |= {n for n in names if n in modules and n.startswith("rgbify.datasets")}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[2] in ("storage", "build", "loading") else None


def test_rooms_import_only_what_their_layer_allows():
    allowed = {"storage": {"storage"}, "build": {"build", "storage"}, "loading": {"loading", "storage"}}
    wrong = [f"{m} imports {i}" for m, deps in _graph().items() if _room(m)
             for i in deps if _room(i) and _room(i) not in allowed[_room(m)]]
    assert not wrong


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(graph[m]):
            assert state.get(dep) != 1, f"import cycle: {' -> '.join([*path, m, dep])}"
            if dep not in state:
                visit(dep, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_the_cli_imports_neither_numpy_nor_h5py():
    """Every `rgbify` run builds the datasets commands' parsers: that must not load numpy or h5py."""
    code = ("import argparse, sys, rgbify.datasets.cli as c; c.add_commands(argparse.ArgumentParser()"
            ".add_subparsers()); print(sorted(m for m in ('numpy', 'h5py', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
