"""Every input accounted for, nothing silent: the mammogram guard (mammo_edge.images.guard) for
every shipped model, high-bit data, multi-page TIFF, transparency, unreadable folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import EXAMPLES_DIR, MIAS_ARCHIVE, REPO_ROOT, synthetic_mammogram, write_dicom

from mammo_edge.cli import main
from mammo_edge.errors import ErrorCode, InputError
from mammo_edge.images.decode import load_image
from mammo_edge.images.guard import MAX_COLOURFULNESS, check_mammogram, colourfulness
from mammo_edge.model.registry import installed_model_names
from mammo_edge.predictor import Predictor

EXAMPLE_IMAGES = sorted(EXAMPLES_DIR.glob("mdb*.pgm"))


def text_page(height: int = 1100, width: int = 850) -> np.ndarray:
    """Black lines of text on white paper, as a scanned letter."""
    page = np.full((height, width), 255, np.uint8)
    for line in range(height // 30):
        cv2.putText(
            page, "Patient letter: results enclosed, please call", (40, 40 + 28 * line),
            cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2,
        )  # fmt: skip
    return page


def photograph(height: int = 480, width: int = 640) -> np.ndarray:
    """A colourful BGR picture with a dark half (a gray test alone would let it through)."""
    rows, columns = np.mgrid[0:height, 0:width]
    picture = np.stack(
        [
            60 + 0.2 * columns,
            140 + 60 * np.cos(rows / 70),
            100 + 80 * np.sin(columns / 90),
        ],
        axis=-1,
    )
    picture[:, : width // 3] *= 0.05  # night sky on the left
    return np.clip(picture, 0, 255).astype(np.uint8)


NOT_MAMMOGRAMS = {
    "black frame": np.zeros((512, 400), np.uint8),
    "uniform gray": np.full((512, 400), 128, np.uint8),
    "page of text": text_page(),
    "white text on black": 255 - text_page(),
    "colour photograph": photograph(),
}


@pytest.fixture(scope="module", params=installed_model_names())
def shipped_predictor(request) -> Predictor:
    return Predictor(request.param, device="cpu", threads=1)


def test_every_shipped_model_refuses_what_is_not_a_mammogram(shipped_predictor):
    """The guard is the runtime's: no shipped model ever scores these (the seed models
    called a black frame and a page of text abnormal, 0.97 and 0.99)."""
    results = shipped_predictor.predict(list(NOT_MAMMOGRAMS.values()))
    for name, result in zip(NOT_MAMMOGRAMS, results, strict=True):
        assert result.error_code == ErrorCode.NO_BREAST_FOUND.value, (name, result)
        assert result.probability is None and "not a mammogram" in result.error_message


@pytest.mark.parametrize("example", EXAMPLE_IMAGES, ids=lambda path: path.name)
def test_every_example_mammogram_passes_the_guard(example):
    check_mammogram(load_image(example).pixels)


@pytest.mark.mias
def test_every_mias_image_passes_the_guard():
    if not MIAS_ARCHIVE.is_file():
        pytest.skip(f"needs the MIAS archive at {MIAS_ARCHIVE}")
    from train.mias import open_mias

    dataset = open_mias(MIAS_ARCHIVE)
    refused = []
    for record in dataset.records:
        try:
            check_mammogram(dataset.read_image(record.reference))
        except InputError as error:
            refused.append(f"{record.reference}: {error.message}")
    assert len(dataset.records) == 258
    assert refused == []


def test_colourfulness_tells_a_photograph_from_gray():
    gray = cv2.cvtColor(load_image(EXAMPLE_IMAGES[0]).pixels, cv2.COLOR_GRAY2BGR)
    assert colourfulness(gray) == 0.0
    assert colourfulness(photograph()) > MAX_COLOURFULNESS
    tinted = np.clip(gray.astype(np.int16) + np.array([-8, 0, 10]), 0, 255).astype(np.uint8)
    assert colourfulness(tinted) < MAX_COLOURFULNESS  # a warm viewer export is still gray
    check_mammogram(cv2.cvtColor(tinted, cv2.COLOR_BGR2GRAY), colourfulness(tinted))


def test_a_text_file_page_through_the_cli_is_a_record(capsys, tmp_path):
    page = tmp_path / "letter.png"
    assert cv2.imwrite(str(page), text_page())
    code = main(["predict", str(page), "-m", "seed", "-f", "jsonl", "-q"])
    record = json.loads(capsys.readouterr().out)
    assert code == 2 and record["error_code"] == "NO_BREAST_FOUND"


def to_high_bit(pixels: np.ndarray, bits: int) -> np.ndarray:
    return np.round(pixels.astype(np.float64) * (2**bits - 1) / 255).astype(np.uint16)


@pytest.mark.parametrize("model", ["lite0", "seed"])
def test_a_real_mammogram_scaled_to_12_bits_scores_like_its_8_bit_original(tmp_path, model):
    original = EXAMPLES_DIR / "mdb003.pgm"
    twelve_bit = tmp_path / "mdb003-12bit.png"
    assert cv2.imwrite(str(twelve_bit), to_high_bit(load_image(original).pixels, 12))
    predictor = Predictor(model, device="cpu", threads=1)
    eight, twelve = predictor.predict([str(original), str(twelve_bit)])
    assert eight.ok and twelve.ok, twelve
    assert abs(twelve.probability - eight.probability) < 0.05
    assert any("fit in 12 bits" in warning for warning in twelve.warnings)


def test_warnings_survive_on_error_records(tiny_predictor, tmp_path):
    """A frame refused by the guard still says how it was read (here: as 12-bit data)."""
    flat = tmp_path / "flat-12bit.png"
    assert cv2.imwrite(str(flat), np.full((256, 200), 2000, np.uint16))
    result = tiny_predictor.predict(str(flat))
    assert result.error_code == "NO_BREAST_FOUND" and result.image_format == "png"
    assert any("fit in 12 bits" in warning for warning in result.warnings)


def test_dicom_bits_stored_16_holding_12_bit_values_is_read_as_12_bit(tmp_path):
    pixels = synthetic_mammogram(96, 80)
    path = write_dicom(tmp_path / "a.dcm", to_high_bit(pixels, 12), bits_stored=16)
    image = load_image(path)
    assert np.array_equal(image.pixels, pixels)
    assert any("fit in 12 bits" in warning for warning in image.warnings)


def test_a_declared_12_bit_dicom_needs_no_guess(tmp_path):
    pixels = synthetic_mammogram(96, 80)
    image = load_image(write_dicom(tmp_path / "a.dcm", to_high_bit(pixels, 12), bits_stored=12))
    assert np.array_equal(image.pixels, pixels) and image.warnings == ()


def test_multi_page_tiff_is_refused_with_its_page_count(tiny_predictor, tmp_path):
    pages = [synthetic_mammogram(96, 80, seed) for seed in range(3)]
    path = tmp_path / "stack.tiff"
    assert cv2.imwritemulti(str(path), pages)
    result = tiny_predictor.predict(str(path))
    assert result.error_code == ErrorCode.TIFF_MULTIPAGE.value
    assert "3 full-resolution pages (pages 0 to 2)" in result.error_message
    single = tmp_path / "one.tiff"
    assert cv2.imwrite(str(single), pages[0])
    assert tiny_predictor.predict(str(single)).ok


def test_fully_transparent_image_is_refused_and_partial_alpha_is_noted(tiny_predictor, tmp_path):
    gray = synthetic_mammogram(96, 80)
    rgba = np.dstack([gray, gray, gray, np.zeros_like(gray)])
    assert cv2.imwrite(str(tmp_path / "clear.png"), rgba)
    clear = tiny_predictor.predict(str(tmp_path / "clear.png"))
    assert clear.error_code == ErrorCode.FULLY_TRANSPARENT.value
    rgba[:, :, 3] = 255
    rgba[:10, :, 3] = 0
    assert cv2.imwrite(str(tmp_path / "part.png"), rgba)
    part = tiny_predictor.predict(str(tmp_path / "part.png"))
    assert part.ok and any("alpha channel ignored" in warning for warning in part.warnings)


#: Root without the capabilities that override file permissions: it stays the owner of the
#: checkout (a fresh clone in a 0700 temporary folder still imports), but a mode-000 file
#: or folder stops it as it would stop any user.
WITHOUT_READ_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _setpriv_works() -> bool:
    if shutil.which("setpriv") is None or os.name != "posix" or os.geteuid() != 0:
        return False
    probe = subprocess.run([*WITHOUT_READ_OVERRIDE, "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _setpriv_works(),
    reason="needs root and setpriv to run the CLI without root's read override (as plain "
    "root, permissions do not stop reading, so a chmod alone proves nothing)",
)
def test_unreadable_subfolder_is_an_error_record_not_a_silent_skip():
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="mammo-edge-unreadable-"))
    try:
        top.chmod(0o755)
        study = top / "study"
        (study / "locked").mkdir(parents=True)
        shutil.copy(EXAMPLE_IMAGES[0], study / "a.pgm")
        shutil.copy(EXAMPLE_IMAGES[2], study / "c.pgm")
        shutil.copy(EXAMPLE_IMAGES[1], study / "locked" / "b.pgm")
        study.chmod(0o755)
        (study / "a.pgm").chmod(0o644)
        (study / "c.pgm").chmod(0o000)  # a file that cannot be opened
        (study / "locked").chmod(0o000)
        completed = subprocess.run(
            WITHOUT_READ_OVERRIDE
            + [sys.executable, "-m", "mammo_edge.cli", "predict", str(study)]
            + ["-m", "seed", "-f", "jsonl", "-q"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "HOME": str(top)},
        )
        records = [json.loads(line) for line in completed.stdout.splitlines()]
        assert completed.returncode == 2, completed.stderr
        assert [record["path"] for record in records] == [
            str(study / "a.pgm"),
            str(study / "c.pgm"),
            str(study / "locked"),
        ]
        assert records[0]["status"] == "ok"
        assert records[1]["error_code"] == "UNREADABLE"
        assert "cannot read the file: Permission denied" in records[1]["error_message"]
        assert records[2]["error_code"] == "UNREADABLE"
        assert "cannot list the folder: Permission denied" in records[2]["error_message"]
    finally:
        (top / "study" / "locked").chmod(0o755)
        shutil.rmtree(top)
