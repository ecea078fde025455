"""Run the render worker inside a standalone Blender binary (``RenderWorker(blender=PATH)``, ``--blender PATH``).

Render farms ship Blender binaries rather than the bpy wheel. The worker protocol is the same; only the process
differs: ``PATH --background --factory-startup --python-exit-code 1 --python-expr BOOT`` where BOOT puts the
folder above the ``rgbify`` package first on ``sys.path``, keeps Blender's bundled Python packages (its NumPy
above all) ahead of anything else, and, when Blender's Python has the same minor version as the Python that
started it (Blender 4.2-4.5 bundle Python 3.11, as rgbify uses), appends this environment's site-packages for
the pure-Python and compiled helpers the render code imports (OpenEXR, Pillow, trimesh). Then it calls
``rgbify.render.worker_child.main()``.

Blender prints a banner on stdout before it runs BOOT, so the replies travel on a pipe of their own whose file
descriptor is passed in ``RGBIFY_WORKER_REPLY_FD``; stdout and stderr go to the worker's log.

Importing this module does not import bpy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Any

from rgbify.render.result import SceneError
from rgbify.render.worker_protocol import ENV_REPLY_FD

MIN_VERSION = (4, 2)


def site_dirs() -> list[str]:
    """This interpreter's site-packages folders (appended to a same-version Blender Python's sys.path)."""
    return [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]


def boot_code(root: str, extra: list[str] | None = None) -> str:
    """The ``--python-expr`` text that turns a Blender process into a render worker."""
    extra = site_dirs() if extra is None else extra
    return "\n".join([
        "import os, sys",
        f"sys.path.insert(0, {root!r})",
        f"if tuple(sys.version_info[:2]) == {tuple(sys.version_info[:2])!r}:",
        f"    sys.path.extend(p for p in {extra!r} if p not in sys.path)",
        "from rgbify.render.worker_child import main",
        "code = main()",
        "sys.stderr.flush()",
        "os._exit(code)",
    ])


def blender_command(blender: str, code: str) -> list[str]:
    return [blender, "--background", "--factory-startup", "-noaudio", "--python-exit-code", "1",
            "--python-expr", code]


def popen_blender(blender: str, root: str, env: dict[str, str], log: Any) -> subprocess.Popen:
    """Start ``blender`` as a worker; the returned Popen's ``stdout`` is the reply pipe (not Blender's stdout)."""
    r, w = os.pipe()
    env = dict(env)
    env[ENV_REPLY_FD] = str(w)
    try:
        proc = subprocess.Popen(blender_command(blender, boot_code(root)), stdin=subprocess.PIPE, stdout=log,
                                stderr=log, env=env, close_fds=True, pass_fds=(w,))
    except OSError as e:
        os.close(r)
        raise SceneError(f"cannot start Blender {blender!r}: {e.strerror}; give the path of a Blender 4.2+ "
                         "binary") from None
    finally:
        os.close(w)
    proc.stdout = os.fdopen(r, "rb")  # the worker reads replies from proc.stdout
    return proc


def check_ready(blender: str, msg: dict) -> None:
    """Refuse a Blender older than 4.2 (its ready message carries bpy.app.version)."""
    version = tuple(msg.get("blender_version") or ())
    if version and version[:2] < MIN_VERSION:
        raise SceneError(f"--blender {blender} is Blender {'.'.join(map(str, version))}; rgbify needs Blender "
                         f"{'.'.join(map(str, MIN_VERSION))} or newer (or the bpy module: leave --blender out)")


def blender_version(blender: str, timeout: float = 60.0) -> tuple[int, ...] | None:
    """``(major, minor, patch)`` from ``blender --version``, or None if it is not a runnable Blender."""
    path = shutil.which(blender) or blender
    try:
        out = subprocess.run([path, "--background", "--factory-startup", "--version"], capture_output=True,
                             text=True, timeout=timeout).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Blender (\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def check_blender(blender: str) -> str:
    """The resolved path of a usable Blender binary, or ValueError naming the problem and the fix."""
    path = shutil.which(blender)
    if path is None:
        raise ValueError(f"--blender {blender}: no such executable; give the path of a Blender 4.2+ binary")
    version = blender_version(path)
    if version is None:
        raise ValueError(f"--blender {blender}: `{path} --version` does not report a Blender version")
    if version[:2] < MIN_VERSION:
        raise ValueError(f"--blender {blender} is Blender {'.'.join(map(str, version))}; rgbify needs 4.2 or "
                         "newer (or leave --blender out to use the bpy module)")
    return path
