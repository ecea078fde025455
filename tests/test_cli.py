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
