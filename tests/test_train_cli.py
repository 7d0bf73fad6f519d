"""`python -m train` on bad data: a clear message, exit code, and no traceback."""

import subprocess
import sys

import pytest
from mias_fixtures import REPO_ROOT, info_rows, write_mias_folder


def run_train(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "train", *arguments],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "mdb003.pgm: listed in Info.txt but missing"),
        ("truncated", "truncated"),
        ("bad_row", "Info.txt line"),
        ("no_info", "no Info.txt"),
    ],
)
def test_bad_data_gives_one_clear_error(tmp_path, damage, message):
    folder = write_mias_folder(tmp_path / "mias", info_rows(3))
    if damage == "missing":
        (folder / "mdb003.pgm").unlink()
    elif damage == "truncated":
        data = (folder / "mdb004.pgm").read_bytes()
        (folder / "mdb004.pgm").write_bytes(data[:100])
    elif damage == "bad_row":
        with (folder / "Info.txt").open("a") as handle:
            handle.write("mdb099 Z NORM\n")
    elif damage == "no_info":
        (folder / "Info.txt").unlink()
    result = run_train("--data", str(folder), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_options_are_refused(tmp_path):
    result = run_train("--data", str(tmp_path), "--out", str(tmp_path / "o"), "--folds", "1")
    assert result.returncode == 2 and "--folds must be at least 2" in result.stderr
    result = run_train("--data", str(tmp_path), "--out", "x", "--protocol", "random")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_arch_names_the_architecture_and_unknown_ones_are_refused(tmp_path):
    from train import architectures
    from train.fit_command import build_parser

    arguments = build_parser().parse_args(["--data", "d", "--out", "o"])
    assert arguments.arch == architectures.DEFAULT_ARCHITECTURE and arguments.image_size is None
    result = run_train("--data", str(tmp_path), "--out", "x", "--arch", "no-such-net")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_fit_is_the_default_command(tmp_path):
    folder = write_mias_folder(tmp_path / "mias", info_rows(3))
    (folder / "mdb003.pgm").unlink()
    result = run_train("fit", "--data", str(folder), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "mdb003.pgm: listed in Info.txt but missing" in result.stderr


@pytest.fixture
def recorded(monkeypatch):
    """Every (command, argv) ``python -m train`` dispatches, instead of running it."""
    from train import cli

    calls = []

    def fake_command_main(command):
        def run(argv):
            calls.append((command, list(argv)))
            return 0

        return run

    monkeypatch.setattr(cli, "command_main", fake_command_main)
    return calls


def test_the_first_argument_names_the_command_else_fit_gets_them_all(recorded):
    from train.cli import main

    main(["repeated", "--data", "d", "--run", "r", "--out", "o"])
    main(["--arch", "lite0", "--data", "d", "--out", "o"])
    main(["reproduce-published", "--data", "d"])
    assert recorded == [
        ("repeated", ["--data", "d", "--run", "r", "--out", "o"]),
        ("fit", ["--arch", "lite0", "--data", "d", "--out", "o"]),
        ("reproduce-published", ["--data", "d"]),
    ]


def test_every_command_runs_its_modules_main():
    import importlib

    from train.cli import COMMANDS, command_main

    for command in COMMANDS:
        module = "fit_command" if command == "fit" else command.replace("-", "_")
        assert command_main(command) is importlib.import_module(f"train.{module}").main
    with pytest.raises(KeyError, match="no command 'train'"):
        command_main("train")


def test_train_has_one_entry():
    """No module of train/ runs as a program but ``__main__`` (the weights' one-off
    converter under train/weights/ runs by path, in a throwaway environment)."""
    import ast

    programs = []
    for path in sorted((REPO_ROOT / "train").rglob("*.py")):
        if path.name == "__main__.py" or path.parent.name == "weights":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            test = getattr(node, "test", None)
            if isinstance(test, ast.Compare) and getattr(test.left, "id", "") == "__name__":
                programs.append(path.relative_to(REPO_ROOT).as_posix())
    assert programs == []


def test_repeated_runs_runs_fit_once_per_seed(recorded):
    from train.cli import main

    main(["repeated-runs", "--data", "d", "--out", "o", "--seeds", "0", "1", "--epochs", "1"])
    assert recorded == [
        ("repeated-runs", ["--data", "d", "--out", "o", "--seeds", "0", "1", "--epochs", "1"])
    ]


def test_repeated_runs_gives_each_seed_its_own_folder(monkeypatch):
    from train import fit_command, repeated_runs

    calls = []
    monkeypatch.setattr(fit_command, "main", lambda argv: calls.append(argv) or 0)
    assert repeated_runs.main(["--data", "d.tar.gz", "--out", "runs/r", "--epochs", "1"]) == 0
    assert [call[call.index("--out") + 1] for call in calls] == [
        "runs/r/seed_0",
        "runs/r/seed_1",
        "runs/r/seed_2",
    ]
    assert all("--no-final-model" in call and call[-2:] == ["--epochs", "1"] for call in calls)
    assert [call[call.index("--seed") + 1] for call in calls] == ["0", "1", "2"]
    monkeypatch.setattr(fit_command, "main", lambda argv: calls.append(argv) or 1)
    calls.clear()
    assert repeated_runs.main(["--data", "d", "--out", "o"]) == 1 and len(calls) == 1
