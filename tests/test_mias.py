"""The MIAS reader: Info.txt quirks, folder and archive input, errors naming file and line."""

import numpy as np
import pytest
from mias_fixtures import (
    INFO_HEADER,
    MIAS_ARCHIVE,
    REAL_ROWS,
    info_rows,
    write_mias_archive,
    write_mias_folder,
)

from train.mias import MiasError, open_mias, parse_info, patient_of


def test_parser_keeps_every_row_of_real_quirks():
    rows = parse_info(INFO_HEADER + REAL_ROWS)
    assert [row.reference for row in rows] == [
        "mdb003",
        "mdb004",
        "mdb005",
        "mdb005",
        "mdb006",
        "mdb059",
        "mdb060",
        "mdb216",
    ]
    first, second = rows[2], rows[3]
    assert (first.x, first.y, first.radius) == (477, 133, 30)
    assert (second.x, second.y, second.radius) == (500, 168, 26)
    assert first.row_from_top == 1023 - 133  # origin bottom-left
    no_coordinates = rows[5]
    assert no_coordinates.severity == "B" and no_coordinates.x is None
    note_3 = rows[7]
    assert note_3.abnormality_class == "CALC" and note_3.severity == "M" and note_3.x is None
    assert rows[0].severity is None and rows[0].radius is None


def test_one_record_per_image_abnormal_if_any_row_is(tmp_path):
    dataset = open_mias(write_mias_folder(tmp_path / "mias", REAL_ROWS))
    by_reference = {record.reference: record for record in dataset.records}
    assert len(dataset.rows) == 8 and len(dataset) == 7
    assert len(by_reference["mdb005"].rows) == 2 and by_reference["mdb005"].label == 1
    assert by_reference["mdb003"].label == 0 and by_reference["mdb216"].label == 1


def test_patients_are_left_right_pairs():
    assert patient_of("mdb001") == patient_of("mdb002") == 1
    assert patient_of("mdb003") == patient_of("mdb004") == 2
    assert patient_of("mdb321") == patient_of("mdb322") == 161


def test_archive_and_folder_give_the_same_records_and_pixels(tmp_path):
    folder = write_mias_folder(tmp_path / "mias", info_rows(3))
    from_folder = open_mias(folder)
    from_archive = open_mias(write_mias_archive(folder, tmp_path / "all-mias.tar.gz"))
    assert from_folder.records == from_archive.records
    assert (from_folder.read_image("mdb006") == from_archive.read_image("mdb006")).all()
    assert len(from_archive.sha256()) == 64 and from_archive.sha256() != from_folder.sha256()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("mdb007 X NORM", "unknown background tissue 'X'"),
        ("mdb007 F BLOB B 1 2 3", "unknown abnormality class 'BLOB'"),
        ("mdb007 F CIRC Q 1 2 3", "unknown severity 'Q'"),
        ("mdb007 F CIRC B 1 2", "expected x y radius"),
        ("mdb007 F CIRC B one 2 3", "coordinates must be integers"),
        ("mdb007 F CIRC B 10 2000 3", "out of range"),
        ("mdb7 F NORM", "bad reference"),
        ("mdb007 F NORM 1 2 3", "NORM row has extra columns"),
    ],
)
def test_malformed_rows_name_the_line(row, message):
    with pytest.raises(MiasError, match=message) as error:
        parse_info(INFO_HEADER + "mdb003 D NORM \n" + row + "\n", source="Info.txt")
    assert "Info.txt line 7" in str(error.value)


def test_missing_and_truncated_images_are_named(tmp_path):
    folder = write_mias_folder(tmp_path / "mias", info_rows(2))
    (folder / "mdb002.pgm").unlink()
    data = (folder / "mdb003.pgm").read_bytes()
    (folder / "mdb003.pgm").write_bytes(data[: len(data) // 2])
    (folder / "mdb004.pgm").write_bytes(b"")
    with pytest.raises(MiasError) as error:
        open_mias(folder).verify_images()
    message = str(error.value)
    assert "3 unusable image(s)" in message
    assert "mdb002.pgm: listed in Info.txt but missing" in message
    assert "mdb003.pgm" in message and "truncated" in message
    assert "mdb004.pgm: file is empty" in message


def test_not_mias_is_refused(tmp_path):
    with pytest.raises(MiasError, match="no such file"):
        open_mias(tmp_path / "absent")
    with pytest.raises(MiasError, match="no Info.txt"):
        open_mias(tmp_path)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(MiasError, match="not a readable tar archive"):
        open_mias(junk)


@pytest.mark.mias
@pytest.mark.skipif(not MIAS_ARCHIVE.exists(), reason="needs ../shared/mias/all-mias.tar.gz")
def test_real_archive_counts():
    dataset = open_mias(MIAS_ARCHIVE)
    assert len(dataset.rows) == 265 and len(dataset) == 258
    assert len({record.patient_id for record in dataset.records}) == 129
    assert sum(record.label for record in dataset.records) == 93
    image = dataset.read_image(dataset.records[0].reference)
    assert image.shape == (1024, 1024) and image.dtype.name == "uint8"


def test_one_batch_helper_feeds_training_export_and_benchmarks_the_runtime_pixels(tmp_path):
    from export.images import load_mias_batch
    from mammo_edge.images.decode import load_image
    from mammo_edge.images.preprocess import PreprocessConfig, to_model_input
    from train.images import load_model_inputs, mias_batch

    folder = write_mias_folder(tmp_path / "mias", info_rows(3))
    config = PreprocessConfig(input_size=32)
    dataset = open_mias(folder)
    references = ["mdb004", "mdb001", "mdb004"]
    batch = mias_batch(dataset, references, config)
    # What `mammo-edge predict` would feed the model for the same files.
    expected = np.stack(
        [to_model_input(load_image(folder / f"{r}.pgm").pixels, config) for r in references]
    )
    assert batch.shape == (3, 32, 32, 1) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, expected)
    by_reference = load_model_inputs(dataset, references, config)
    assert list(by_reference) == ["mdb004", "mdb001"]
    np.testing.assert_array_equal(by_reference["mdb001"], expected[1])
    labelled = load_mias_batch(folder, config)
    assert labelled.references == tuple(record.reference for record in dataset.records)
    np.testing.assert_array_equal(labelled.subset(("mdb004", "mdb001")).batch, expected[:2])
