"""Labels files (CSV and MIAS Info.txt) and their matching to inputs."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from mias_fixtures import INFO_HEADER, MIAS_ARCHIVE, REAL_ROWS

from mammo_edge.evaluation.labels import LabelsError, match_labels, read_labels

REPO_ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "labels.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_csv_with_every_label_spelling_and_optional_columns(tmp_path):
    labels = read_labels(
        write(
            tmp_path,
            "Image,Label,Patient,Group,notes\n"
            "a.png,0,p1,dense,\nb,1,p1,dense,x\nc.dcm,normal,,fatty,\nd,ABNORMAL,p2,,\n",
            encoding="utf-8-sig",  # a spreadsheet's byte-order mark is fine
        )
    )
    assert labels.file_format == "csv"
    assert [(r.image, r.label, r.patient, r.group, r.line) for r in labels.records] == [
        ("a.png", 0, "p1", "dense", 2),
        ("b", 1, "p1", "dense", 3),
        ("c.dcm", 0, None, "fatty", 4),
        ("d", 1, "p2", None, 5),
    ]


def test_semicolon_csv_from_a_european_spreadsheet(tmp_path):
    labels = read_labels(write(tmp_path, "image;label\nx.png;1\ny.png;0\n"))
    assert [(r.image, r.label) for r in labels.records] == [("x.png", 1), ("y.png", 0)]


def test_the_bundled_examples_labels_agree_with_their_readme():
    labels = read_labels(REPO_ROOT / "examples" / "labels.csv")
    truth = {record.image: record.label for record in labels.records}
    assert truth == {
        "mdb003.pgm": 0,
        "mdb004.pgm": 0,
        "mdb005.pgm": 1,
        "mdb006.pgm": 0,
        "mdb028.pgm": 1,
        "mdb178.pgm": 1,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,label\na.png,1\nb.png,maybe\n", r"line 3: label 'maybe' for 'b.png' must be 0, 1"),
        ("image,label\na.png,1\nb.png\n", r"line 3: expected 2 cells, found 1"),
        ("image,label\n,1\n", r"line 2: the image cell is empty"),
        ("image,diagnosis\na.png,1\n", r"line 1: header lacks column\(s\) label"),
        ("image,label\n\n", r"a header but no label rows"),
        ("", r"empty"),
        ("just some text\nnothing else\n", r"not a labels file.*line 1"),
        ("image,label\na.png,1\nb.png,0\na.png,0\n", r"line 4: 'a.png' is labelled again.*line 2"),
    ],
)
def test_malformed_csv_is_a_clear_error_naming_the_line(tmp_path, text, message):
    with pytest.raises(LabelsError, match=message):
        read_labels(write(tmp_path, text))


def test_missing_labels_file(tmp_path):
    with pytest.raises(LabelsError, match="no such labels file"):
        read_labels(tmp_path / "nope.csv")


def test_mias_info_is_recognised_by_content_whatever_its_name(tmp_path):
    labels = read_labels(write(tmp_path, INFO_HEADER + REAL_ROWS, name="truth.dat"))
    assert labels.file_format == "mias-info"
    by_image = {record.image: record for record in labels.records}
    # mdb005 has two CIRC rows: one image, abnormal; left/right pairs share a patient.
    assert by_image["mdb005"].label == 1 and by_image["mdb005"].finding == "CIRC"
    assert by_image["mdb003"].label == 0 and by_image["mdb003"].finding == "NORM"
    assert by_image["mdb003"].patient == by_image["mdb004"].patient == "2"
    assert by_image["mdb005"].patient == by_image["mdb006"].patient == "3"
    assert by_image["mdb003"].group == "dense-glandular"
    assert by_image["mdb059"].label == 1  # no coordinates
    assert by_image["mdb005"].line == INFO_HEADER.count("\n") + 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("mdb007 F XXXX B 1 2 3", r"line 6: unknown abnormality class 'XXXX'"),
        ("mdb007 Q NORM", r"line 6: unknown background tissue 'Q'"),
        ("mdb7 F NORM", r"line 6: bad reference 'mdb7'"),
        ("mdb007 F", r"line 6: expected 'mdbNNN TISSUE CLASS"),
        # One Info.txt parser for training and evaluate: its checks hold for both.
        ("mdb007 F CIRC Q 1 2 3", r"line 6: unknown severity 'Q'"),
        ("mdb007 F CIRC B 10 2000 3", r"line 6: coordinates out of range"),
    ],
)
def test_malformed_mias_row_names_its_line(tmp_path, row, message):
    text = INFO_HEADER + row + "\n"
    with pytest.raises(LabelsError, match=message):
        read_labels(write(tmp_path, text, name="Info.txt"))


def test_mias_image_both_normal_and_abnormal_is_an_error(tmp_path):
    text = "mdb001 F NORM\nmdb001 F CIRC B 1 2 3\n"
    with pytest.raises(LabelsError, match="line 2: mdb001 is listed both NORM and abnormal"):
        read_labels(write(tmp_path, text, name="Info.txt"))


def test_runtime_and_training_readers_agree_on_the_fixture(tmp_path):
    mias = pytest.importorskip("train.mias")
    labels = read_labels(write(tmp_path, INFO_HEADER + REAL_ROWS, name="Info.txt"))
    records = mias.group_by_image(mias.parse_info(INFO_HEADER + REAL_ROWS))
    assert {r.image: (r.label, r.patient) for r in labels.records} == {
        r.reference: (r.label, str(r.patient_id)) for r in records
    }


@pytest.mark.mias
def test_runtime_and_training_readers_agree_on_the_real_info_txt(tmp_path):
    if not MIAS_ARCHIVE.is_file():
        pytest.skip(f"needs the MIAS archive at {MIAS_ARCHIVE}")
    mias = pytest.importorskip("train.mias")
    dataset = mias.open_mias(MIAS_ARCHIVE)
    with tarfile.open(MIAS_ARCHIVE) as archive:
        member = next(m for m in archive if Path(m.name).name == "Info.txt")
        data = archive.extractfile(member).read()  # type: ignore[union-attr]
    path = tmp_path / "Info.txt"
    path.write_bytes(data)
    labels = read_labels(path)
    ours = {r.image: (r.label, r.patient) for r in labels.records}
    theirs = {r.reference: (r.label, str(r.patient_id)) for r in dataset.records}
    assert ours == theirs and len(ours) == len(dataset)


# --- matching ---------------------------------------------------------------------------


def labels_from(tmp_path: Path, rows: str):
    return read_labels(write(tmp_path, "image,label\n" + rows))


def test_matches_by_name_stem_and_path(tmp_path):
    inputs = ["scans/a.png", "scans/left/b.dcm", "/data/site/c.pgm", "d.jpg"]
    labels = labels_from(tmp_path, "a.png,1\nb,0\nsite/c.pgm,1\n/abs/elsewhere/d.jpg,0\n")
    match = match_labels(inputs, labels)
    assert [(path, record.image) for path, record in match.matched] == [
        ("scans/a.png", "a.png"),
        ("scans/left/b.dcm", "b"),
        ("/data/site/c.pgm", "site/c.pgm"),
    ]
    # A path label names a path: /abs/elsewhere/d.jpg is not this d.jpg.
    assert match.inputs_without_label == ("d.jpg",)
    assert [record.image for record in match.labels_without_input] == ["/abs/elsewhere/d.jpg"]


def test_path_labels_resolve_relative_to_the_labels_file(tmp_path, monkeypatch):
    (tmp_path / "study").mkdir()
    monkeypatch.chdir(tmp_path / "study")
    labels = read_labels(write(tmp_path, "image,label\n./study/x.png,1\n"))
    match = match_labels([str(tmp_path / "study" / "x.png")], labels)
    assert len(match.matched) == 1


def test_unmatched_both_ways_are_returned_not_dropped(tmp_path):
    labels = labels_from(tmp_path, "a,1\nghost,0\nb,0\n")
    match = match_labels(["a.png", "b.png", "stray.png"], labels)
    assert [path for path, _ in match.matched] == ["a.png", "b.png"]
    assert match.inputs_without_label == ("stray.png",)
    assert [(r.image, r.line) for r in match.labels_without_input] == [("ghost", 3)]


def test_two_inputs_with_one_stem_is_ambiguous(tmp_path):
    labels = labels_from(tmp_path, "x,1\n")
    with pytest.raises(LabelsError, match=r"line 2: 'x' matches 2 inputs \(a/x.png, b/x.dcm\)"):
        match_labels(["a/x.png", "b/x.dcm"], labels)


def test_a_longer_path_settles_the_ambiguity(tmp_path):
    labels = labels_from(tmp_path, "a/x.png,1\nb/x.png,0\n")
    match = match_labels(["site/a/x.png", "site/b/x.png"], labels)
    assert [(path, record.label) for path, record in match.matched] == [
        ("site/a/x.png", 1),
        ("site/b/x.png", 0),
    ]


def test_two_label_rows_for_one_input_is_an_error(tmp_path):
    labels = labels_from(tmp_path, "mdb003,0\nmdb003.pgm,1\n")
    with pytest.raises(LabelsError, match=r"line 3: 'mdb003.pgm' labels .* line 2"):
        match_labels(["examples/mdb003.pgm"], labels)


def test_name_match_wins_over_stem(tmp_path):
    labels = labels_from(tmp_path, "scan,1\n")
    match = match_labels(["scan", "scan.png"], labels)
    assert [path for path, _ in match.matched] == ["scan"]
    assert match.inputs_without_label == ("scan.png",)


def test_info_txt_matches_mias_file_names(tmp_path):
    labels = read_labels(write(tmp_path, INFO_HEADER + REAL_ROWS, name="Info.txt"))
    inputs = [str(path) for path in sorted((REPO_ROOT / "examples").glob("*.pgm"))]
    match = match_labels(inputs, labels)
    matched = {Path(path).name: record.label for path, record in match.matched}
    assert matched == {"mdb003.pgm": 0, "mdb004.pgm": 0, "mdb005.pgm": 1, "mdb006.pgm": 0}
    assert sorted(Path(path).name for path in match.inputs_without_label) == [
        "mdb028.pgm",
        "mdb178.pgm",
    ]
    assert "mdb059" in {record.image for record in match.labels_without_input}
