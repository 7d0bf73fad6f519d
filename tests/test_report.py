"""``mammo-edge report``: the page's content, its files, and how it renders in Chromium.

The rendering tests drive Debian's ``chromium`` headless through the DevTools protocol
(tests/browser.py): no console errors, one row per input, every image loaded, sorting and
filtering work. ``.ci/run`` installs chromium when missing; without it they skip.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser import Browser, find_chromium
from conftest import EXAMPLES_DIR
from explain_fixtures import build_heatmap_model, synthetic_breast

from mammo_edge.cli import main

ROWS = "document.querySelectorAll('#results tbody tr')"


class _Page(HTMLParser):
    """Collects what the checks need from index.html: images, rows, links, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.rows: list[dict] = []
        self.links: list[str] = []
        self.scripts: list[dict] = []
        self.header_cells: list[dict] = []
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "img":
            self.images.append(values)
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and "data-index" in values:
            self.rows.append(values)
        elif tag in ("a", "link"):
            self.links.append(values.get("href", ""))
        elif tag == "script":
            self.scripts.append(values)
        elif tag == "th":
            self.header_cells.append(values)

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, list[str]]:
    """Four scorable breasts, a text file named .png, an empty file and a blank frame."""
    folder = tmp_path_factory.mktemp("report_inputs")
    names = []
    for index, (side, blob) in enumerate(
        [("left", (120, 330)), ("right", (299, 300)), ("left", (90, 250)), ("right", (330, 400))]
    ):
        name = f"scan_{index}.png"
        image = synthetic_breast(side=side, blob=blob, seed=index)
        if index % 2:  # dimmer blobs: lower probabilities, so both calls appear
            image = (image * 0.75).astype(np.uint8)
        cv2.imwrite(str(folder / name), image)
        names.append(name)
    (folder / "notes.png").write_text("not an image", encoding="utf-8")
    (folder / "empty.png").write_bytes(b"")
    cv2.imwrite(str(folder / "blank.png"), np.zeros((300, 200), dtype=np.uint8))
    names += ["notes.png", "empty.png", "blank.png"]
    return folder, names


@pytest.fixture(scope="module")
def heatmap_model(tmp_path_factory) -> Path:
    return build_heatmap_model(tmp_path_factory.mktemp("report_model") / "heatmap.onnx")


@pytest.fixture(scope="module")
def labelled_report(tmp_path_factory, inputs, heatmap_model) -> Path:
    folder, names = inputs
    labels = folder.parent / "labels.csv"
    truth = ["abnormal", "abnormal", "normal", "normal", "normal", "abnormal", "normal"]
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "label"])
        writer.writerows(zip(names, truth, strict=True))
    out = tmp_path_factory.mktemp("report") / "out"
    arguments = [str(folder / name) for name in names]
    code = main(
        ["report", *arguments, "--out", str(out), "--model", str(heatmap_model)]
        + ["--labels", str(labels), "-q"]
    )
    assert code == 2  # three inputs failed; the rest are in the report
    return out


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        pytest.skip(
            "chromium is not installed: .ci/run installs it (apt-get install chromium, as "
            "root); elsewhere install it or set $CHROMIUM"
        )
    with Browser(executable) as running:
        yield running


def test_report_files_and_rows(labelled_report, inputs):
    _, names = inputs
    out = labelled_report
    for name in ("index.html", "explain.jsonl", "metrics.json", "predictions.csv", "roc.svg"):
        assert (out / name).is_file(), name
    page = _parse(out / "index.html")
    assert [row["data-index"] for row in page.rows] == [str(i) for i in range(len(names))]
    statuses = [row["data-status"] for row in page.rows]
    assert statuses == ["ok"] * 4 + ["error"] * 3
    # Every image is a file beside the page, with a text alternative.
    for image in page.images:
        assert image.get("alt"), image
        assert not re.match(r"^[a-z]+:", image["src"]), image["src"]  # relative: offline
        assert (out / image["src"]).is_file(), image["src"]
    # thumbnail + heatmap per scored input, and the ROC
    assert len(page.images) == 4 * 2 + 1
    assert all(not link.startswith(("http:", "https:", "//")) for link in page.links)
    assert all("src" not in script for script in page.scripts)  # inline only, no CDN
    assert page.header_cells and all(cell.get("scope") for cell in page.header_cells)


def test_error_rows_carry_code_and_message(labelled_report):
    html = (labelled_report / "index.html").read_text(encoding="utf-8")
    for code in ("NOT_AN_IMAGE", "EMPTY_FILE", "NO_BREAST_FOUND"):
        assert f"<strong>{code}</strong>" in html
    records = [
        json.loads(line)
        for line in (labelled_report / "explain.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [r["error_code"] for r in records[4:]] == [
        "NOT_AN_IMAGE",
        "EMPTY_FILE",
        "NO_BREAST_FOUND",
    ]
    assert "Errors by code</dt><dd>EMPTY_FILE: 1, NOT_AN_IMAGE: 1, NO_BREAST_FOUND: 1" in html


def test_rows_marked_against_the_labels(labelled_report):
    page = _parse(labelled_report / "index.html")
    metrics = json.loads((labelled_report / "metrics.json").read_text(encoding="utf-8"))
    truth = ["abnormal", "abnormal", "normal", "normal"]
    counts = {"TP": 0, "FP": 0, "FN": 0, "TN": 0}
    for row, label in zip(page.rows[:4], truth, strict=True):
        called = float(row["data-probability"]) >= metrics["threshold"]
        expected = ("T" if called == (label == "abnormal") else "F") + ("P" if called else "N")
        assert row["data-outcome"] == expected
        counts[expected] += 1
    assert [row["data-outcome"] for row in page.rows[4:]] == ["", "", ""]
    # The page's confusion matrix is evaluate's, and both match the rows.
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    assert (tn, fp, fn, tp) == (counts["TN"], counts["FP"], counts["FN"], counts["TP"])
    html = (labelled_report / "index.html").read_text(encoding="utf-8")
    assert f"TN {tn}</td>" in html and f"TP {tp}</td>" in html
    assert len({row["data-call"] for row in page.rows[:4]}) == 2  # both calls present


def test_report_without_labels_has_no_evaluation(tmp_path, inputs, heatmap_model):
    folder, names = inputs
    out = tmp_path / "plain"
    code = main(
        ["report", str(folder / names[0]), "--out", str(out), "--model", str(heatmap_model)]
        + ["-q"]
    )
    assert code == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "Against the labels" not in html and "Outcome" not in html
    assert not (out / "metrics.json").exists()
    assert len(_parse(out / "index.html").rows) == 1


def test_page_renders_in_chromium(browser, labelled_report, inputs):
    _, names = inputs
    browser.open((labelled_report / "index.html").as_uri())
    assert browser.errors == []
    assert browser.evaluate(f"{ROWS}.length") == len(names)
    images = browser.evaluate(
        "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
    )
    assert len(images) == 9
    assert [src for src, complete, width in images if not (complete and width > 0)] == []
    assert browser.evaluate("document.getElementById('controls').hidden") is False


def test_sorting_and_filtering_in_chromium(browser, labelled_report):
    browser.open((labelled_report / "index.html").as_uri())

    def choose(select_id: str, value: str) -> None:
        browser.evaluate(
            f"(() => {{ const s = document.getElementById('{select_id}'); s.value = '{value}';"
            " s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()"
        )

    visible = f"Array.from({ROWS}).filter(r => !r.hidden)"
    choose("sort", "probability-desc")
    probabilities = browser.evaluate(f"{visible}.map(r => r.dataset.probability)")
    scored = [float(value) for value in probabilities if value]
    assert scored == sorted(scored, reverse=True) and len(scored) == 4
    assert probabilities[4:] == ["", "", ""]  # errors last
    choose("sort", "input")
    assert browser.evaluate(f"{visible}.map(r => r.dataset.index)") == [str(i) for i in range(7)]
    choose("filter-status", "error")
    assert browser.evaluate(f"{visible}.map(r => r.dataset.status)") == ["error"] * 3
    assert "Showing 3 of 7" in browser.evaluate("document.getElementById('shown').textContent")
    choose("filter-status", "")
    choose("filter-call", "abnormal")
    calls = browser.evaluate(f"{visible}.map(r => r.dataset.call)")
    assert calls and set(calls) == {"abnormal"}
    choose("filter-call", "")
    choose("filter-outcome", "FP")
    outcomes = browser.evaluate(f"{visible}.map(r => r.dataset.outcome)")
    assert set(outcomes) <= {"FP"}
    assert browser.errors == []


def test_bundled_examples_report_renders(browser, tmp_path, tiny_model_path):
    if not EXAMPLES_DIR.is_dir():
        pytest.skip("the bundled examples are missing")
    out = tmp_path / "examples"
    code = main(
        ["report", str(EXAMPLES_DIR), "--out", str(out), "--model", str(tiny_model_path)]
        + ["--labels", str(EXAMPLES_DIR / "labels.csv"), "-q"]
    )
    assert code == 0
    browser.open((out / "index.html").as_uri())
    assert browser.errors == []
    examples = len(list(EXAMPLES_DIR.glob("*.pgm")))
    assert browser.evaluate(f"{ROWS}.length") == examples
    assert browser.evaluate(
        "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    )


def test_a_missing_image_is_caught_by_the_browser_check(browser, labelled_report, tmp_path):
    """The rendering check can fail: a page whose image file is gone reports it."""
    copy = tmp_path / "broken"
    shutil.copytree(labelled_report, copy)
    next((copy / "images").glob("*.heatmap.thumb.png")).unlink()
    browser.open((copy / "index.html").as_uri())
    broken = browser.evaluate(
        "Array.from(document.images).filter(i => i.naturalWidth === 0).length"
    )
    assert broken == 1
    assert any("ERR_FILE_NOT_FOUND" in error for error in browser.errors)
    browser.errors.clear()


def test_print_layout_hides_controls_and_prints_what_is_shown(browser, labelled_report):
    browser.open((labelled_report / "index.html").as_uri())
    browser.evaluate(
        "(() => { const s = document.getElementById('filter-status'); s.value = 'error';"
        " s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()"
    )
    browser.send("Emulation.setEmulatedMedia", {"media": "print"}, session=True)
    try:
        display = browser.evaluate(
            "['controls', 'shown'].map(id => getComputedStyle(document.getElementById(id)).display)"
        )
        shown = browser.evaluate(
            f"Array.from({ROWS}).filter(r => getComputedStyle(r).display !== 'none').length"
        )
    finally:
        browser.send("Emulation.setEmulatedMedia", {"media": ""}, session=True)
    assert display[0] == "none" and display[1] != "none"
    assert shown == 3  # the filtered view prints as seen, its "Showing 3 of 7" line included


@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("verb", ["explain", "report"])
def test_long_verbs_show_progress_on_a_terminal(tmp_path, tiny_models_dir, verb):
    """Like predict: a progress bar on standard error when it is a terminal."""
    import pty
    import subprocess
    import sys

    from conftest import REPO_ROOT, synthetic_mammogram

    study = tmp_path / "study"
    study.mkdir()
    for index in range(3):
        assert cv2.imwrite(str(study / f"{index}.png"), synthetic_mammogram(96, 80, index))
    primary, secondary = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "mammo_edge.cli", verb, str(study), "--out", str(tmp_path / "o")]
        + ["-m", str(tiny_models_dir), "--method", "occlusion"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert child.wait(timeout=120) == 0, shown
    text = shown.decode(errors="replace")
    assert "explaining" in text and "100%" in text


def test_an_error_row_keeps_its_message_apart_from_the_truth_and_warnings():
    from mammo_edge.explain.report_html import EvaluationView, ReportPage, ReportRow, render_report

    row = ReportRow(
        index=0,
        path="a.png",
        status="error",
        truth="abnormal",
        error_code="NO_BREAST_FOUND",
        error_message="not a mammogram: the whole frame is bright",
        warnings=("16-bit PNG whose values all fit in 12 bits",),
    )
    evaluation = EvaluationView("labels.csv", [], (0, 0, 0, 0))
    page = render_report(
        ReportPage("t", "now", [], {"NO_BREAST_FOUND": 1}, [row], "note", evaluation=evaluation)
    )
    assert (
        "the whole frame is bright.<br>Warning: 16-bit PNG whose values all fit in 12 bits"
        "<br>Truth: abnormal.</td>"
    ) in page
