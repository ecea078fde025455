"""The `rgbify` command itself: help, unknown commands, and that the dispatcher imports nothing heavy."""

import subprocess
import sys
from pathlib import Path

import pytest

from rgbify.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2


def test_unknown_command_exits_2():
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2


def test_cli_import_loads_neither_torch_nor_bpy():
    code = ("import sys, rgbify.cli; rgbify.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'bpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_build_progress_off_a_terminal_prints_whole_lines(monkeypatch):
    """Off a terminal (a log file, a batch job) the build's progress is plain lines: one at the start, one per
    interval, one at the end, with done/total, rate, elapsed, ETA, rejects, retries and restarts, never cut."""
    import io
    import types

    from rgbify.datasets.build import progress

    clock = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    out = io.StringIO()
    stats = types.SimpleNamespace(total=16, done=4, rendered=0, rejects=0, retried=0, restarts=0)
    p = progress.RichProgress(interval=30.0, stream=out)
    p.start(stats)
    for t, done in ((10, 6), (40, 8), (50, 9)):
        clock[0] = 100.0 + t
        stats.done, stats.rendered, stats.rejects = done, done - 4, 3
        p.update(stats)
    clock[0] = 180.0
    stats.done, stats.rendered, stats.restarts = 16, 12, 1
    p.stop(stats)
    lines = out.getvalue().splitlines()
    assert lines == [
        "rendering 4/16  0.00 samples/s  0:00:00  ETA ?  rejects 0  retries 0  restarts 0",
        "rendering 8/16  0.10 samples/s  0:00:40  ETA 0:01:20  rejects 3  retries 0  restarts 0",
        "rendering 16/16  0.15 samples/s  0:01:20  ETA 0:00:00  rejects 3  retries 0  restarts 1",
    ]


def test_the_cli_imports_neither_numpy_nor_h5py():
    """Every `rgbify` run builds the datasets commands' parsers: that must not load numpy or h5py."""
    code = ("import argparse, sys, rgbify.datasets.cli as c; c.add_commands(argparse.ArgumentParser()"
            ".add_subparsers()); print(sorted(m for m in ('numpy', 'h5py', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
