"""One config mechanism for recipes, scene specs, builds and training runs.

A config is a frozen standard-library dataclass with a docstring under each field. That docstring is the field's
documentation everywhere: the ``--help`` text of its command-line flag (:func:`add_arguments`) and the
``description`` of its JSON schema. Code constructs configs directly, at no validation cost; plain data from files
and flags goes through :func:`parse`, which pydantic validates strictly: a list becomes a tuple and an integer a
float, and nothing else is coerced (``1.5`` is not an int, ``true`` not a number, ``"7"`` not a number, a
non-finite number is refused, an unknown key is refused). The first problem is reported in one line naming the
key, the value and what was expected. :func:`to_data` gives the JSON-ready form, :func:`to_toml` TOML (tomli-w).

A config class opts in with ``__pydantic_config__ = STRICT`` (a plain dict, so importing a config module does not
import pydantic). A field may carry command-line details with ``Annotated[type, Flag(...)]``.

Importing this module imports neither pydantic nor tomli-w; they load on first use.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rgbify.errors import UserError

STRICT: dict[str, Any] = {"extra": "forbid", "strict": True, "use_attribute_docstrings": True,
                          "allow_inf_nan": False}
"""The pydantic settings every config and spec dataclass carries as ``__pydantic_config__``."""


class ConfigError(UserError, ValueError):
    """Plain data does not fit a config: the one-line message names the key, the value and what is expected."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """Command-line details of a config field, given as ``Annotated[type, Flag(...)]``.

    ``parse`` turns the flag's text into the field's value (default: by the field's type); ``metavar`` names the
    value in ``--help``; ``flag`` is False for fields that are no command-line option; ``nargs="?"`` with ``const``
    lets the flag be given without a value (it then means ``const``)."""

    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    flag: bool = True
    nargs: str | None = None
    const: Any = None


@functools.cache
def _adapter(cls: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


def parse(cls: type, data: Any, where: str = "config", error: type[Exception] = ConfigError,
          flags: bool = False) -> Any:
    """``data`` (a dict of plain values, as read from TOML or JSON) as an instance of ``cls``, validated strictly;
    raises ``error`` with a one-line message that starts with ``where`` and names the key (as ``--flag-name`` if
    ``flags``: for configs whose fields are command-line options)."""
    from pydantic import ValidationError

    try:
        text = json.dumps(to_data(data), allow_nan=True)
    except (TypeError, ValueError) as e:
        raise error(f"{where}: not plain data ({e})") from None
    try:
        return _adapter(cls).validate_json(text)
    except ValidationError as e:
        raise error(describe(e, cls, where, flags)) from None


def parse_json(cls: type, text: str | bytes, where: str = "config", error: type[Exception] = ConfigError) -> Any:
    """:func:`parse` of JSON text, validated straight from the text (no intermediate Python objects: a scene spec
    with inline meshes parses about 3x faster this way)."""
    from pydantic import ValidationError

    try:
        return _adapter(cls).validate_json(text)
    except ValidationError as e:
        raise error(describe(e, cls, where)) from None


def dump(obj: Any) -> Any:
    """:func:`to_data` of a config dataclass, by pydantic's serializer (faster on large configs such as specs)."""
    return _adapter(type(obj)).dump_python(obj, mode="json")


def describe(e: Any, cls: type, where: str, flags: bool = False) -> str:
    """One line for the first error of a pydantic ValidationError of ``cls``."""
    errors = e.errors()
    err = errors[0]
    loc = _plain_loc(cls, err["loc"])
    key = ".".join(loc)
    if flags and loc:
        key = "--" + loc[0].replace("_", "-") + "".join(f"[{x}]" for x in loc[1:])
    at = f"{where}: {key}" if key else where
    kind, value = err["type"], err.get("input")
    if kind == "unexpected_keyword_argument":
        known = sorted(field_names(_type_at(cls, loc[:-1])))
        return f"{at}: unknown key; known keys are {known}"
    if kind == "missing":
        return f"{at}: missing"
    if kind == "literal_error":  # a union of dataclasses tagged by a literal field: name every tag
        tags = [x["ctx"]["expected"] for x in errors if x["type"] == "literal_error" and
                _plain_loc(cls, x["loc"]) == loc and "ctx" in x]
        return f"{at}: got {_short(value)}, expected {' or '.join(tags)}"
    msg = err["msg"]
    if kind == "value_error":
        return f"{at}: {msg.removeprefix('Value error, ')}"
    return f"{at}: {msg[:1].lower() + msg[1:]}, got {_short(value)}"


def _short(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 80 else s[:77] + "..."


def _plain_loc(cls: type, loc: tuple) -> list[str]:
    """A pydantic error location without the names of union members it tried (``geometry.Primitive.size``
    -> ``geometry.size``)."""
    out, hint = [], cls
    for part in loc:
        members = {getattr(t, "__name__", None): t for t in _flat(hint)}
        if isinstance(part, str) and part in members and dataclasses.is_dataclass(members[part]):
            hint = members[part]
            continue
        out.append(str(part))
        hint = _step(hint, str(part))
    return out


def _step(hint: Any, part: str) -> Any:
    """The type one location step below ``hint``: a field of a dataclass, an item of a tuple or list."""
    for t in _flat(hint):
        if dataclasses.is_dataclass(t) and part in _hints(t):
            return _hints(t)[part]
        if part.isdigit() and typing.get_origin(t) in (tuple, list):
            args = [a for a in typing.get_args(t) if a is not Ellipsis]
            if args:
                return args[0] if typing.get_args(t)[-1] is Ellipsis else args[min(int(part), len(args) - 1)]
    return None


def _type_at(cls: Any, loc: list[str]) -> Any:
    """The dataclass at a location of ``cls``'s fields (unions pick their first dataclass)."""
    hint = cls
    for part in loc:
        hint = _step(hint, part)
    return next((t for t in _flat(hint) if dataclasses.is_dataclass(t)), None)


def _flat(hint: Any) -> list[Any]:
    """The types a hint may take: Annotated and unions unwrapped."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _flat(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(hint) for t in _flat(a)]
    return [hint]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def field_names(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []


def to_data(obj: Any) -> Any:
    """JSON-ready plain data: dataclasses become dicts, tuples lists, paths strings (recursively)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [to_data(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_toml(obj: Any) -> str:
    """A config as TOML text; fields whose value is None are left out (TOML has no null: reading the file back
    gives those fields their defaults)."""
    import tomli_w

    def drop_none(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: drop_none(v) for k, v in d.items() if v is not None}
        return d

    return tomli_w.dumps(drop_none(to_data(obj)))


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """Each field's docstring: the string literal right under it in the class body (the text pydantic reads into
    the JSON schema's descriptions; read here from the source, so that building ``--help`` costs no pydantic)."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            out[node.target.id] = " ".join(nxt.value.value.split())
    return out


def _flag_meta(hint: Any) -> Flag:
    if typing.get_origin(hint) is typing.Annotated:
        for a in typing.get_args(hint)[1:]:
            if isinstance(a, Flag):
                return a
    return Flag()


def _parser_of(hint: Any) -> tuple[Callable[[str], Any] | None, list[Any] | None, bool]:
    """(text -> value, choices, is_bool) for a field type."""
    options = [t for t in _flat(hint) if t is not type(None)]
    t = options[0] if options else str
    if t is bool:
        return None, None, True
    if typing.get_origin(t) is typing.Literal:
        return str, list(typing.get_args(t)), False
    if typing.get_origin(t) is tuple:
        args = [a for a in typing.get_args(t) if a is not Ellipsis]
        item = args[0] if args else str

        def split(text: str) -> tuple:
            return tuple(item(v.strip()) for v in text.split(",") if v.strip())

        return split, None, False
    if t in (int, float):
        return t, None, False
    return str, None, False


def _metavar(hint: Any, choices: list[Any] | None) -> str:
    if choices:
        return "{" + ",".join(map(str, choices)) + "}"
    t = next((t for t in _flat(hint) if t is not type(None)), str)
    if typing.get_origin(t) is tuple:
        return "A,B,..."
    return {int: "N", float: "X", Path: "PATH"}.get(t, "TEXT")


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def add_arguments(parser: argparse.ArgumentParser | Any, cls: type, skip: Iterable[str] = (),
                  defaults: Any = None, only: Iterable[str] | None = None) -> None:
    """One ``--field-name`` option per field of ``cls`` (not those in ``skip`` or with ``Flag(flag=False)``): its
    help is the field's docstring plus the default (from ``defaults``, an instance, or the class's own), its
    value is parsed by the field's type (comma-separated for tuples, ``--x/--no-x`` for booleans). ``only``: just
    these fields (e.g. into an argument group). Options that are not given are None in the parsed namespace (see
    :func:`values_from`)."""
    helps = field_help(cls)
    defaults = defaults if defaults is not None else cls()
    skip = set(skip)
    only = None if only is None else set(only)
    for f in dataclasses.fields(cls):
        hint = _hints(cls)[f.name]
        meta = _flag_meta(hint)
        if f.name in skip or not meta.flag or (only is not None and f.name not in only):
            continue
        conv, choices, is_bool = _parser_of(hint)
        default = getattr(defaults, f.name)
        shown = _shown(default)
        text = helps.get(f.name, "") + (f" (default: {shown})" if shown not in ("", "None") else "")
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": text.replace("%", "%%")}
        if is_bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = meta.parse or conv
            kw["metavar"] = meta.metavar or _metavar(hint, choices)
            if choices:
                kw["choices"] = choices
            if meta.nargs:
                kw["nargs"], kw["const"] = meta.nargs, meta.const
        parser.add_argument("--" + f.name.replace("_", "-"), **kw)


def values_from(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` that were given as options (not None) in a namespace parsed with add_arguments."""
    return {n: getattr(args, n) for n in field_names(cls) if getattr(args, n, None) is not None}


def read_toml(path: str | Path, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """A TOML file as a dict; ``error`` names the file when it cannot be read or parsed."""
    import tomllib

    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise error(f"cannot read config file {str(path)!r}: {e}") from None
