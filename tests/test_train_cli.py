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
    from train.cli import build_parser

    arguments = build_parser().parse_args(["--data", "d", "--out", "o"])
    assert arguments.arch == architectures.DEFAULT_ARCHITECTURE and arguments.image_size is None
    result = run_train("--data", str(tmp_path), "--out", "x", "--arch", "no-such-net")
    assert result.returncode == 2 and "invalid choice" in result.stderr
