"""``python -m train manifest``: MIAS and CBIS-DDSM into the dataset manifest, and MIAS read
through it giving the archive path's images, folds, lesions and model inputs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import write_dicom
from mias_fixtures import MIAS_ARCHIVE, REAL_ROWS, info_rows, write_mias_archive, write_mias_folder

pytest.importorskip("sklearn", reason="needs the train extra")

from mammo_edge.evaluation.dataset_manifest import read_dataset  # noqa: E402
from mammo_edge.images.preprocess import PreprocessConfig, prepare  # noqa: E402
from train.cli import main as train_main  # noqa: E402
from train.dataset import DatasetError, mias_training_set, open_training_set  # noqa: E402
from train.images import mias_batch  # noqa: E402
from train.mias import open_mias  # noqa: E402
from train.protocols import dataset_folds, patient_folds  # noqa: E402


def small_rows(patients: int) -> str:
    """``info_rows`` with circles inside 64-pixel images (MIAS y counts up from 1023)."""
    return info_rows(patients).replace("500 500 30", "20 1000 5")


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_mias_manifest_turns_the_origin_to_the_top_left_and_keeps_every_row(tmp_path):
    folder = write_mias_folder(tmp_path / "mias", REAL_ROWS)
    archive = write_mias_archive(folder, tmp_path / "all-mias.tar.gz")
    assert train_main(["manifest", "--mias", str(archive), "--out", str(tmp_path / "out")]) == 0
    rows = rows_of(tmp_path / "out" / "manifest.csv")
    mdb005 = [row for row in rows if row["image"] == "mdb005.pgm"]
    assert [(row["x"], row["y"], row["radius"]) for row in mdb005] == [
        ("477", str(1023 - 133), "30"),
        ("500", str(1023 - 168), "26"),
    ]
    by_image = {row["image"]: row for row in rows}
    assert (
        by_image["mdb003.pgm"]["laterality"] == "L" and by_image["mdb004.pgm"]["laterality"] == "R"
    )
    assert by_image["mdb003.pgm"]["finding"] == "NORM" and by_image["mdb003.pgm"]["label"] == "0"
    assert by_image["mdb216.pgm"]["x"] == "" and by_image["mdb216.pgm"]["severity"] == "M"
    assert by_image["mdb005.pgm"]["group"] == "fatty" and by_image["mdb005.pgm"]["view"] == "MLO"
    assert len(rows) == 8  # one per Info.txt row
    for reference in ("mdb003", "mdb216"):  # the archive's bytes
        written = (tmp_path / "out" / f"{reference}.pgm").read_bytes()
        assert written == (folder / f"{reference}.pgm").read_bytes()


def test_mias_from_its_manifest_equals_the_archive_path(tmp_path):
    folder = write_mias_folder(tmp_path / "mias", small_rows(12), size=64)
    assert train_main(["manifest", "--mias", str(folder), "--out", str(tmp_path / "out")]) == 0
    mias = open_mias(folder)
    manifest = open_training_set(tmp_path / "out" / "manifest.csv")
    archive = mias_training_set(mias)
    for training_set in (manifest, archive):
        assert [(r.reference, r.patient_id, r.label) for r in training_set.records] == [
            (r.reference, r.patient_id, r.label) for r in mias.records
        ]
    for seed in (0, 1, 2):
        expected = patient_folds(mias.records, 4, seed)
        found = dataset_folds(manifest.records, 4, seed)
        for (train_a, test_a), (train_b, test_b) in zip(expected, found, strict=True):
            assert np.array_equal(train_a, train_b) and np.array_equal(test_a, test_b)
    config = PreprocessConfig(input_size=32)
    references = [record.reference for record in mias.records]
    assert np.array_equal(
        mias_batch(manifest, references, config), mias_batch(mias, references, config)
    )
    circles = [
        (c.x, c.y, c.radius) for r in manifest.records for c in manifest.lesion_circles(r, (64, 64))
    ]
    expected_circles = [
        (float(row.x), float(row.row_from_top), float(row.radius))
        for record in mias.records
        for row in record.rows
        if row.x is not None
    ]
    assert circles == expected_circles and circles


def test_the_split_column_fixes_the_folds(tmp_path):
    folder = write_mias_folder(tmp_path / "mias", small_rows(6), size=64)
    assert train_main(["manifest", "--mias", str(folder), "--out", str(tmp_path / "out")]) == 0
    path = tmp_path / "out" / "manifest.csv"
    rows = rows_of(path)
    for row in rows:
        row["split"] = "b" if int(row["patient"]) % 2 else "a"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    records = open_training_set(path).records
    (train_a, test_a), (train_b, test_b) = dataset_folds(records, 5, 0)
    assert {records[i].split for i in test_a} == {"a"} and {records[i].split for i in test_b} == {
        "b"
    }
    assert sorted(np.concatenate([test_a, test_b]).tolist()) == list(range(len(records)))


def test_a_training_set_with_too_few_patients_of_a_class_is_refused_with_counts(tmp_path):
    folder = write_mias_folder(tmp_path / "mias", small_rows(12), size=64)
    with pytest.raises(DatasetError, match=r"4 with an abnormal image, 12 with a normal image"):
        mias_training_set(open_mias(folder)).check_enough()


def test_fit_on_a_thin_manifest_says_so_and_lists_its_rejected_rows(tmp_path, capsys):
    folder = write_mias_folder(tmp_path / "mias", small_rows(6), size=64)
    assert train_main(["manifest", "--mias", str(folder), "--out", str(tmp_path / "out")]) == 0
    path = tmp_path / "out" / "manifest.csv"
    path.write_text(path.read_text() + "missing.pgm,1,99,,,,,,,,,,\n")
    code = train_main(["--arch", "lite0", "--data", str(path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "too little data" in err and "2 with an abnormal image" in err
    assert "missing file" in err and "1 row(s) not used" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.mias
def test_real_mias_through_its_manifest_gives_the_archive_splits_and_inputs(tmp_path):
    if not MIAS_ARCHIVE.is_file():
        pytest.skip(f"needs the MIAS archive at {MIAS_ARCHIVE}")
    pytest.importorskip("keras")
    from train.architectures import lite0
    from train.lesion_data import prepare_dataset

    assert train_main(["manifest", "--mias", str(MIAS_ARCHIVE), "--out", str(tmp_path)]) == 0
    mias = open_mias(MIAS_ARCHIVE)
    manifest = open_training_set(tmp_path / "manifest.csv")
    assert manifest.dataset.rejected == () and len(manifest) == 258
    assert [(r.reference, r.patient_id, r.label) for r in manifest.records] == [
        (r.reference, r.patient_id, r.label) for r in mias.records
    ]
    for seed in (0, 1, 2):
        for (train_a, test_a), (train_b, test_b) in zip(
            patient_folds(mias.records, 5, seed),
            dataset_folds(manifest.records, 5, seed),
            strict=True,
        ):
            assert np.array_equal(train_a, train_b) and np.array_equal(test_a, test_b)
    config = lite0.default_preprocess()
    prepared = prepare_dataset(manifest, config)
    # The archive path as it was: the runtime's PGM decoder, prepare, Info.txt circles.
    lesions = []
    for index, record in enumerate(mias.records):
        original = prepare(mias.read_image(record.reference), config)
        assert np.array_equal(original.model_input, prepared.inputs[index]), record.reference
        for row in record.rows:
            if row.x is not None:
                x, y = original.geometry.to_input(row.x, row.row_from_top)
                lesions.append((index, x, y, row.radius / original.geometry.scale))
    assert [(e.image_index, e.x, e.y, e.radius) for e in prepared.lesions] == lesions
    assert len(lesions) == 96


# --- CBIS-DDSM ---------------------------------------------------------------------------

MASS_HEADER = (
    "patient_id,breast_density,left or right breast,image view,abnormality id,"
    "abnormality type,mass shape,mass margins,assessment,pathology,subtlety,"
    "image file path,cropped image file path,ROI mask file path\n"
)
CALC_HEADER = (
    "patient_id,breast density,left or right breast,image view,abnormality id,"
    "abnormality type,calc type,calc distribution,assessment,pathology,subtlety,"
    "image file path,cropped image file path,ROI mask file path\n"
)


def _dicom(path: Path, shape=(96, 64), value: int = 0, description: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = np.full(shape, value, np.uint16)
    if value:
        stored[shape[0] // 3 : shape[0] // 2, shape[1] // 3 : shape[1] // 2] = 65535
    write_dicom(path, stored, extra={"SeriesDescription": description} if description else None)


@pytest.fixture
def cbis(tmp_path: Path) -> Path:
    """Two description CSVs in CBIS-DDSM's layout and a download of its images."""
    pytest.importorskip("pydicom")
    root = tmp_path / "CBIS-DDSM"
    # P_00001 LEFT CC: the CSV's own path layout (UID folders, 000000.dcm / 000001.dcm).
    full = "Mass-Training_P_00001_LEFT_CC/1.3.6.1.1/1.3.6.1.2/000000.dcm"
    cropped = "Mass-Training_P_00001_LEFT_CC_1/1.3.6.1.3/1.3.6.1.4/000000.dcm"
    roi = "Mass-Training_P_00001_LEFT_CC_1/1.3.6.1.3/1.3.6.1.5/000001.dcm"
    _dicom(root / full, value=1000)
    _dicom(root / cropped, shape=(20, 20), value=3000)  # the crop: small
    _dicom(root / roi, value=255)  # the mask: full size
    # P_00002 RIGHT MLO: a newer NBIA download, descriptive folder names, 1-1.dcm files.
    nbia = root / "Mass-Training_P_00002_RIGHT_MLO" / "07-20-2016-DDSM-1" / "1.000000-full-2"
    _dicom(nbia / "1-1.dcm", value=1000)
    roi_case = root / "Mass-Training_P_00002_RIGHT_MLO_1" / "07-21-2016-DDSM-2"
    _dicom(
        roi_case / "1.000000-cropped images-3" / "1-1.dcm",
        shape=(20, 20),
        value=9,
        description="cropped images",
    )
    _dicom(
        roi_case / "1.000000-ROI mask images-4" / "1-1.dcm",
        value=255,
        description="ROI mask images",
    )
    # P_00001 LEFT CC is also in the calc CSV under another series name: one mammogram.
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    roi_nbia = "Mass-Training_P_00002_RIGHT_MLO_1/1.3.6.1.9/1.3.6.1.10/000000.dcm"
    (csv_dir / "mass_case_description_train_set.csv").write_text(
        MASS_HEADER
        # Path cells end in a newline inside their quotes, as in CBIS-DDSM's own files.
        + f'P_00001,3,LEFT,CC,1,mass,OVAL,CIRCUMSCRIBED,4,MALIGNANT,4,"{full}\n","{cropped}\n",'
        + f'"{roi}\n"\n'
        + "P_00002,2,RIGHT,MLO,1,mass,ROUND,OBSCURED,3,BENIGN,3,"
        + "Mass-Training_P_00002_RIGHT_MLO/1.3.6.1.6/1.3.6.1.7/000000.dcm,"
        + f"{roi_nbia},{roi_nbia}\n"
        + "P_00003,2,LEFT,MLO,1,mass,ROUND,OBSCURED,3,BENIGN,3,"
        + "Mass-Training_P_00003_LEFT_MLO/1.3/1.4/000000.dcm,x/1/2/000000.dcm,x/1/3/000001.dcm\n"
    )
    calc = "Calc-Test_P_00001_LEFT_CC/1.3.6.2.1/1.3.6.2.2/000000.dcm"
    (csv_dir / "calc_case_description_test_set.csv").write_text(
        CALC_HEADER
        + "P_00001,3,LEFT,CC,1,calcification,PLEOMORPHIC,CLUSTERED,4,BENIGN,3,"
        + f"{calc},{cropped},{roi}\n"
    )
    return tmp_path


def _convert(cbis: Path, *extra: str) -> Path:
    out = cbis / "manifest"
    csvs = sorted(str(path) for path in (cbis / "csv").glob("*.csv"))
    arguments = ["manifest", "--cbis-ddsm", *csvs, "--images", str(cbis / "CBIS-DDSM")]
    assert train_main([*arguments, "--out", str(out), *extra]) == 0
    return out / "manifest.csv"


def test_cbis_ddsm_converter_reads_its_columns_and_finds_its_files(cbis):
    dataset = read_dataset(_convert(cbis))
    by_patient = {image.patient: image for image in dataset.images}
    assert set(by_patient) == {"P_00001", "P_00002"}
    left = by_patient["P_00001"]
    assert (left.laterality, left.view, left.label, left.group) == ("L", "CC", 1, "density 3")
    assert left.path.resolve() == (
        cbis / "CBIS-DDSM" / "Mass-Training_P_00001_LEFT_CC/1.3.6.1.1/1.3.6.1.2/000000.dcm"
    )
    # The mass and the calcification of one mammogram: one image, two lesions, two findings.
    assert set(left.finding.split("+")) == {"mass malignant", "calcification benign"}
    assert [lesion.mask.name for lesion in left.lesions] == ["000001.dcm", "000001.dcm"]
    right = by_patient["P_00002"]
    assert (right.laterality, right.view) == ("R", "MLO")
    assert right.path.name == "1-1.dcm" and "full" in right.path.parent.name
    (mask,) = right.lesions
    assert "ROI mask" in mask.mask.parent.name  # not the crop the CSV's cell also names
    # The image that is nowhere under ROOT is listed, not dropped.
    (missing,) = dataset.rejected
    assert "missing file" in missing.reason and "P_00003" in missing.image


def test_cbis_ddsm_malignant_labels_and_the_official_split(cbis):
    dataset = read_dataset(_convert(cbis, "--label", "malignant", "--official-split"))
    by_patient = {image.patient: image for image in dataset.images}
    benign = by_patient["P_00002"]
    assert benign.label == 0 and benign.lesions == () and benign.finding == "mass benign"
    malignant = by_patient["P_00001"]
    assert malignant.label == 1 and len(malignant.lesions) == 1
    assert malignant.finding == "mass malignant+calcification benign"
    assert malignant.split == "train" and benign.split == "train"


def test_a_mask_becomes_the_circle_of_its_region():
    from train.dataset import mask_circles

    mask = np.zeros((100, 50), np.uint8)
    mask[20:40, 10:30] = 255
    ((x, y, radius),) = mask_circles(mask, (200, 100))  # the image is twice the mask's size
    assert (x, y) == pytest.approx((39.0, 59.0)) and radius == pytest.approx(np.sqrt(1600 / np.pi))


def test_not_a_cbis_csv_is_refused_with_the_columns_found(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("image,label\na.png,1\n")
    (tmp_path / "root").mkdir()
    arguments = [
        "manifest",
        "--cbis-ddsm",
        str(tmp_path / "x.csv"),
        "--images",
        str(tmp_path / "root"),
    ]
    assert train_main([*arguments, "--out", str(tmp_path / "out")]) == 1
    assert "not a CBIS-DDSM description CSV" in capsys.readouterr().err
