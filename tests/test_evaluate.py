"""``mammo-edge evaluate``: end to end on the bundled examples, predict outputs, errors."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import EXAMPLES_DIR, synthetic_mammogram
from mias_fixtures import INFO_HEADER, REAL_ROWS

from mammo_edge.cli import main
from mammo_edge.evaluation import metrics

EXAMPLE_TRUTH = {
    "mdb003": 0,
    "mdb004": 0,
    "mdb005": 1,
    "mdb006": 0,
    "mdb028": 1,
    "mdb178": 1,
}


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_joined(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # opens in a spreadsheet with accents intact
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


@pytest.fixture
def labelled_study(tmp_path: Path) -> tuple[Path, Path]:
    """Eight synthetic images, four labelled abnormal, two per patient, plus labels.csv."""
    folder = tmp_path / "study"
    folder.mkdir()
    rows = ["image,label,patient,group"]
    for index in range(8):
        name = f"case{index}.png"
        assert cv2.imwrite(str(folder / name), synthetic_mammogram(96, 80, index))
        rows.append(f"{name},{index % 2},p{index // 2},{'dense' if index < 4 else 'fatty'}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return folder, labels


def test_end_to_end_on_the_bundled_examples_with_the_shipped_model(capsys, tmp_path):
    out = tmp_path / "evaluation"
    code, stdout, stderr = run(
        capsys, "evaluate", EXAMPLES_DIR, "--labels", EXAMPLES_DIR / "labels.csv", "--out", out
    )
    assert code == 0, stderr
    document = json.loads((out / "metrics.json").read_text())
    for key in (
        "auc",
        "auc_ci95",
        "n",
        "n_abnormal",
        "threshold",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "balanced_accuracy",
        "confusion_matrix",
        "always_normal_accuracy",
        "sensitivity_at_90_specificity",
        "per_group",
        "n_errors",
        "errors_by_code",
        "inputs_without_label",
        "labels_without_input",
    ):
        assert key in document, key
    assert document["n"] == 6 and document["n_abnormal"] == 3 and document["n_patients"] == 4
    assert document["always_normal_accuracy"] == 0.5
    assert document["n_errors"] == 0 and document["errors_by_code"] == {}
    assert len(document["model"]["sha256"]) == 64 and document["model"]["sha256_verified"]
    low, high = document["auc_ci95"]
    assert low <= document["auc"] <= high
    assert "over patients" in document["auc_ci_method"]
    assert set(document["per_group"]) == {"dense-glandular", "fatty", "fatty-glandular"}
    (tn, fp), (fn, tp) = document["confusion_matrix"]
    assert tn + fp == 3 and fn + tp == 3

    # The joined table carries each input's truth, and the metrics are those of its rows.
    rows = read_joined(out / "predictions.csv")
    assert len(rows) == 6
    truth = [EXAMPLE_TRUTH[Path(row["path"]).stem] for row in rows]
    assert [row["truth"] for row in rows] == ["abnormal" if t else "normal" for t in truth]
    probabilities = [float(row["probability"]) for row in rows]
    assert document["auc"] == pytest.approx(metrics.roc_auc(truth, probabilities))
    called = np.asarray(probabilities) >= document["threshold"]
    assert tp == int((called & (np.asarray(truth) == 1)).sum())

    ElementTree.parse(out / "roc.svg")  # well-formed SVG
    if importlib.util.find_spec("matplotlib") is not None:  # the plot extra
        assert (out / "roc.png").read_bytes().startswith(b"\x89PNG")
    assert "AUC" in stdout and "95% CI" in stdout and "always-normal baseline" in stdout
    assert "sensitivity at 90% specificity" in stdout and "prevalence 50.0%" in stdout


def test_mias_info_txt_as_labels_lists_what_did_not_match(capsys, tmp_path):
    info = tmp_path / "Info.txt"
    info.write_text(INFO_HEADER + REAL_ROWS)
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "evaluate", EXAMPLES_DIR, "--labels", info, "-o", out)
    assert code == 0, stderr
    document = json.loads((out / "metrics.json").read_text())
    assert document["labels_format"] == "mias-info" and document["n"] == 4
    assert sorted(Path(p).name for p in document["inputs_without_label"]) == [
        "mdb028.pgm",
        "mdb178.pgm",
    ]
    assert "mdb059" in {entry["image"] for entry in document["labels_without_input"]}
    assert "2 input(s) without a label" in stderr and "mdb028.pgm" in stderr
    assert "label(s) without an input" in stderr and "mdb059" in stderr
    rows = read_joined(out / "predictions.csv")
    assert {row["truth"] for row in rows if "mdb028" in row["path"]} == {"(no label)"}
    assert any(row["status"] == "no input" and row["labels_image"] == "mdb059" for row in rows)


def test_error_records_are_counted_and_the_rest_evaluated(
    capsys, labelled_study, tiny_models_dir, tmp_path
):
    folder, labels = labelled_study
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (folder / "empty.png").write_bytes(b"")
    with labels.open("a") as handle:
        handle.write("broken.png,1,p9,fatty\n")
    out = tmp_path / "out"
    code, stdout, _ = run(
        capsys, "evaluate", folder, "--labels", labels, "-m", tiny_models_dir, "-o", out
    )
    assert code == 2  # as predict: some inputs failed, the rest still evaluated
    document = json.loads((out / "metrics.json").read_text())
    assert document["n"] == 8 and document["n_errors"] == 2
    assert sum(document["errors_by_code"].values()) == 2
    assert {Path(e["path"]).name for e in document["errors"]} == {"broken.png", "empty.png"}
    assert "2 failed to score" in stdout


@pytest.mark.parametrize("output_format", ["jsonl", "csv"])
def test_predictions_file_gives_the_same_metrics_as_scoring(
    capsys, labelled_study, tiny_models_dir, tmp_path, output_format
):
    folder, labels = labelled_study
    (folder / "empty.png").write_bytes(b"")
    results = tmp_path / f"results.{output_format}"
    code, _, _ = run(
        capsys, "predict", folder, "-m", tiny_models_dir, "-f", output_format, "-o", results
    )
    assert code == 2
    direct, reused = tmp_path / "direct", tmp_path / "reused"
    run(capsys, "evaluate", folder, "--labels", labels, "-m", tiny_models_dir, "-o", direct)
    code, _, stderr = run(
        capsys, "evaluate", "--predictions", results, "--labels", labels, "-o", reused
    )
    assert code == 2, stderr
    first = json.loads((direct / "metrics.json").read_text())
    second = json.loads((reused / "metrics.json").read_text())
    for key in ("auc", "auc_ci95", "threshold", "confusion_matrix", "n", "n_errors", "per_group"):
        assert first[key] == second[key], key
    assert second["model"]["sha256"] == first["model"]["sha256"]
    assert second["predictions_file"] == str(results)


def test_predictions_csv_with_formula_like_names_is_read_back(
    capsys, tmp_path, tiny_models_dir, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    for index, name in enumerate(["=1+1.png", "-a.png", "plain.png", "@b.png"]):
        assert cv2.imwrite(name, synthetic_mammogram(96, 80, index))
    Path("labels.csv").write_text('image,label\n"=1+1.png",1\n-a.png,0\nplain.png,1\n@b.png,0\n')
    run(capsys, "predict", ".", "-m", tiny_models_dir, "-f", "csv", "-o", "results.csv")
    assert "'=1+1.png" in Path("results.csv").read_text(encoding="utf-8-sig")
    code, _, stderr = run(
        capsys, "evaluate", "--predictions", "results.csv", "--labels", "labels.csv", "-o", "ev"
    )
    assert code == 0, stderr
    document = json.loads(Path("ev/metrics.json").read_text())
    assert document["n"] == 4 and document["inputs_without_label"] == []


def test_threshold_option_moves_the_operating_point(
    capsys, labelled_study, tiny_models_dir, tmp_path
):
    folder, labels = labelled_study
    out = tmp_path / "out"
    code, _, _ = run(
        capsys, "evaluate", folder, "-l", labels, "-m", tiny_models_dir, "-o", out,
        "--threshold", "0",
    )  # fmt: skip
    assert code == 0
    document = json.loads((out / "metrics.json").read_text())
    assert document["threshold"] == 0.0
    assert document["sensitivity"] == 1.0 and document["specificity"] == 0.0
    assert document["confusion_matrix"] == [[0, 4], [0, 4]]


def test_all_one_class_says_auc_is_undefined_without_crashing(
    capsys, labelled_study, tiny_models_dir, tmp_path
):
    folder, _ = labelled_study
    labels = tmp_path / "all_abnormal.csv"
    labels.write_text("image,label\n" + "".join(f"case{i}.png,1\n" for i in range(8)))
    out = tmp_path / "out"
    (out).mkdir()
    (out / "roc.svg").write_text("<svg/>")  # an earlier run's picture must not survive
    code, stdout, _ = run(
        capsys, "evaluate", folder, "-l", labels, "-m", tiny_models_dir, "-o", out
    )
    assert code == 0
    document = json.loads((out / "metrics.json").read_text())
    assert document["auc"] is None and document["auc_ci95"] is None
    assert "undefined" in document["auc_note"] and document["specificity"] is None
    assert document["sensitivity"] is not None and document["n_abnormal"] == 8
    assert "AUC is undefined: all 8 labelled, scored images are abnormal" in stdout
    assert not (out / "roc.svg").exists()


def test_nothing_labelled_is_an_error(capsys, labelled_study, tiny_models_dir, tmp_path):
    folder, _ = labelled_study
    labels = tmp_path / "other.csv"
    labels.write_text("image,label\nsomeone_else.png,1\n")
    code, _, stderr = run(
        capsys, "evaluate", folder, "-l", labels, "-m", tiny_models_dir, "-o", tmp_path / "o"
    )
    assert code == 1
    assert "no input is both labelled and scored" in stderr
    assert "8 input(s) without a label" in stderr and "someone_else.png" in stderr


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda tmp, study, labels: [study, "-l", tmp / "missing.csv"], "no such labels file"),
        (
            lambda tmp, study, labels: [study, "-l", _write(tmp / "bad.csv", "image,label\na,7\n")],
            "line 2",
        ),
        (lambda tmp, study, labels: ["-l", labels], "give image PATHS"),
        (
            lambda tmp, study, labels: [study, "-l", labels, "--predictions", labels],
            "not both",
        ),
        (lambda tmp, study, labels: [tmp / "empty_dir", "-l", labels], "no image files"),
        (
            lambda tmp, study, labels: ["--predictions", labels, "-l", labels],
            "not a predict output",
        ),
        (lambda tmp, study, labels: [study], "--labels"),
    ],
)
def test_usage_and_labels_errors_exit_1(
    capsys, labelled_study, tiny_models_dir, tmp_path, make_args, message
):
    folder, labels = labelled_study
    (tmp_path / "empty_dir").mkdir()
    args = make_args(tmp_path, folder, labels)
    code, _, stderr = run(capsys, "evaluate", *args, "-m", tiny_models_dir, "-o", tmp_path / "o")
    assert code == 1
    assert message in stderr
    assert "Traceback" not in stderr


def test_ambiguous_label_is_an_error_naming_the_line(capsys, tmp_path, tiny_models_dir):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        assert cv2.imwrite(str(tmp_path / sub / "x.png"), synthetic_mammogram())
    labels = _write(tmp_path / "labels.csv", "image,label\nx,1\n")
    code, _, stderr = run(
        capsys, "evaluate", tmp_path / "a", tmp_path / "b", "-l", labels, "-m", tiny_models_dir
    )
    assert code == 1 and "line 2: 'x' matches 2 inputs" in stderr


def test_roc_svg_without_matplotlib(capsys, labelled_study, tiny_models_dir, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("matplotlib hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    folder, labels = labelled_study
    out = tmp_path / "out"
    code, stdout, _ = run(
        capsys, "evaluate", folder, "-l", labels, "-m", tiny_models_dir, "-o", out
    )
    assert code == 0
    assert (out / "roc.svg").is_file() and not (out / "roc.png").exists()
    svg = ElementTree.parse(out / "roc.svg").getroot()
    circles = [element for element in svg.iter() if element.tag.endswith("circle")]
    assert len(circles) == 1  # the operating point
    assert "roc.png" not in stdout


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_examples_are_the_files_the_labels_name():
    # examples/labels.csv is derived from Info.txt rows of these six files.
    names = sorted(path.stem for path in EXAMPLES_DIR.glob("*.pgm"))
    assert names == sorted(EXAMPLE_TRUTH)


def test_threshold_override_on_a_predictions_file_recomputes_the_calls(
    capsys, labelled_study, tiny_models_dir, tmp_path
):
    folder, labels = labelled_study
    results = tmp_path / "results.jsonl"
    run(capsys, "predict", folder, "-m", tiny_models_dir, "-f", "jsonl", "-o", results)
    out = tmp_path / "out"
    code, _, _ = run(
        capsys, "evaluate", "--predictions", results, "-l", labels, "--threshold", "1", "-o", out
    )
    assert code == 0
    rows = read_joined(out / "predictions.csv")
    assert {row["predicted"] for row in rows} == {"normal"}
    assert {row["correct"] for row in rows if row["truth"] == "abnormal"} == {"no"}
    assert json.loads((out / "metrics.json").read_text())["sensitivity"] == 0.0


def test_quiet_hides_the_model_line_not_the_summary(
    capsys, labelled_study, tiny_models_dir, tmp_path
):
    folder, labels = labelled_study
    args = ["evaluate", folder, "-l", labels, "-m", tiny_models_dir, "-o", tmp_path / "out"]
    code, stdout, stderr = run(capsys, *args)
    assert code == 0 and "model tiny-test-model" in stderr
    code, quiet_stdout, quiet_stderr = run(capsys, *args, "--quiet")
    assert code == 0 and "tiny-test-model" not in quiet_stderr
    assert quiet_stdout == stdout and "AUC" in quiet_stdout  # the summary is the verb's output


def test_class_names_come_from_the_model_metadata(capsys, labelled_study, tmp_path):
    from conftest import build_tiny_models_dir, tiny_metadata

    models = build_tiny_models_dir(
        tmp_path / "models", tiny_metadata(class_names=("clear", "recall"))
    )
    folder, labels = labelled_study
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "evaluate", folder, "-l", labels, "-m", models, "-o", out)
    assert code == 0
    assert "4 recall, 4 clear" in stdout and "truth recall" in stdout
    rows = read_joined(out / "predictions.csv")
    assert {row["truth"] for row in rows} == {"clear", "recall"}
    assert {row["predicted"] for row in rows} <= {"clear", "recall"}
    # metrics.json keys are the file's schema, whatever the classes are called.
    assert json.loads((out / "metrics.json").read_text())["n_abnormal"] == 4
