"""``python -m export VERB``: one entry, each verb its module's ``main``, onnx the default."""

import importlib
import subprocess
import sys

import pytest
from mias_fixtures import REPO_ROOT


@pytest.fixture
def recorded(monkeypatch):
    """Every (command, argv) ``python -m export`` dispatches, instead of running it."""
    from export import cli

    calls = []

    def fake_command_main(command):
        def run(argv):
            calls.append((command, list(argv)))
            return 0

        return run

    monkeypatch.setattr(cli, "command_main", fake_command_main)
    return calls


def test_the_first_argument_names_the_verb_else_onnx_gets_them_all(recorded):
    from export.cli import main

    main(["int8", "--onnx", "m.onnx"])
    main(["--model", "m.keras", "--out", "m.onnx"])
    main(["card", "lite0"])
    main(["single-view", "lite0-pair"])
    main(["onnx", "--model", "m.keras"])
    assert recorded == [
        ("int8", ["--onnx", "m.onnx"]),
        ("onnx", ["--model", "m.keras", "--out", "m.onnx"]),
        ("card", ["lite0"]),
        ("single-view", ["lite0-pair"]),
        ("onnx", ["--model", "m.keras"]),
    ]


def test_an_unknown_verb_is_refused_with_the_list(recorded, capsys):
    from export.cli import main

    assert main(["quantise", "--onnx", "m.onnx"]) == 2
    assert recorded == []
    error = capsys.readouterr().err
    assert "no command 'quantise'" in error and "single-view" in error


def test_every_verb_runs_its_modules_main():
    from export.cli import COMMANDS, command_main

    modules = {"onnx": "onnx_command", "int8": "int8", "card": "card", "single-view": "single_view"}
    assert set(COMMANDS) == set(modules)
    for command, module in modules.items():
        assert command_main(command) is importlib.import_module(f"export.{module}").main
    with pytest.raises(KeyError, match="no command 'export'"):
        command_main("export")


def test_help_lists_the_verbs_then_onnx_options():
    result = subprocess.run(
        [sys.executable, "-m", "export", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0
    assert "usage: python -m export [COMMAND] [OPTIONS]" in result.stdout
    assert all(verb in result.stdout for verb in ("onnx", "int8", "card", "single-view"))
    assert "usage: python -m export onnx" in result.stdout and "--model" in result.stdout


def test_no_export_module_runs_as_a_program_but_main():
    import ast

    programs = []
    for path in sorted((REPO_ROOT / "export").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            test = getattr(node, "test", None)
            if isinstance(test, ast.Compare) and getattr(test.left, "id", "") == "__name__":
                programs.append(path.name)
    assert programs == []
