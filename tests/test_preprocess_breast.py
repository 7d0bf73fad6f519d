"""The breast-aware preprocessing: segmentation, chest-wall side, crop, geometry, no-breast."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from mammo_edge.images.decode import load_image
from mammo_edge.images.preprocess import (
    NoBreastFoundError,
    PreprocessConfig,
    breast_mask,
    chest_wall_side,
    prepare,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MIAS_ARCHIVE = Path(__file__).resolve().parent.parent.parent / "shared" / "mias" / "all-mias.tar.gz"


def _shipped_lite0_contract() -> PreprocessConfig:
    """The breast-aware contract as the shipped lite0 model carries it (its metadata)."""
    import onnxruntime

    from mammo_edge.model.metadata import ModelMetadata
    from mammo_edge.model.registry import MODELS_DIR

    session = onnxruntime.InferenceSession(
        str(MODELS_DIR / "lite0.onnx"), providers=["CPUExecutionProvider"]
    )
    props = session.get_modelmeta().custom_metadata_map
    return ModelMetadata.from_props(props, "lite0.onnx").preprocess


BREAST = _shipped_lite0_contract()


def synthetic_breast(chest_wall: str, blob: tuple[int, int], size=(600, 500)) -> np.ndarray:
    """A bright half-ellipse anchored to one side, textured, with a bright blob at (x, y)."""
    height, width = size
    rng = np.random.default_rng(1)
    image = rng.integers(0, 8, size).astype(np.uint8)  # film noise
    centre_x = 0 if chest_wall == "left" else width - 1
    ellipse = np.zeros(size, np.uint8)
    cv2.ellipse(
        ellipse, (centre_x, height // 2), (int(width * 0.7), int(height * 0.45)), 0, 0, 360, 1, -1
    )
    tissue = rng.integers(90, 140, size).astype(np.uint8)
    image = np.where(ellipse == 1, tissue, image)
    cv2.circle(image, blob, 12, 250, -1)
    return image


def blob_in_input(prepared) -> tuple[float, float]:
    plane = prepared.model_input[:, :, 0]
    bright = plane > plane.max() - 0.05
    ys, xs = np.nonzero(bright)
    return float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize(("chest_wall", "blob"), [("left", (120, 260)), ("right", (380, 330))])
def test_blob_maps_back_to_its_original_place(chest_wall, blob):
    image = synthetic_breast(chest_wall, blob)
    prepared = prepare(image, BREAST)
    assert prepared.chest_wall_side == chest_wall
    assert prepared.geometry.flipped == (chest_wall == "right")
    x, y = prepared.geometry.to_original(*blob_in_input(prepared))
    tolerance = 1.5 * prepared.geometry.scale
    assert abs(x - blob[0]) <= tolerance and abs(y - blob[1]) <= tolerance


def test_flipped_image_puts_the_chest_wall_left_and_matches_its_mirror():
    left = synthetic_breast("left", (120, 260))
    right = left[:, ::-1].copy()
    from_left, from_right = prepare(left, BREAST), prepare(right, BREAST)
    assert from_right.geometry.flipped and not from_left.geometry.flipped

    # Equal up to resampling at the mask's edge (a mirrored image resamples differently).
    # The tissue texture is pixel noise, so compare the blurred inputs.
    def blurred(prepared):
        return cv2.GaussianBlur(prepared.model_input[:, :, 0], (15, 15), 0)

    difference = np.abs(blurred(from_left) - blurred(from_right))
    assert (difference < 0.05).mean() > 0.95
    # Chest wall on the input's left edge: the left column holds tissue, the right is blank.
    plane = from_left.model_input[:, :, 0]
    assert (plane[:, 0] > -1).mean() > 0.5


def test_to_input_inverts_to_original():
    prepared = prepare(synthetic_breast("right", (380, 330)), BREAST)
    for point in [(10.0, 20.0), (250.5, 300.0), (480.0, 590.0)]:
        back = prepared.geometry.to_original(*prepared.geometry.to_input(*point))
        assert back == pytest.approx(point, abs=1e-6)


def test_film_label_touching_nothing_is_blanked():
    image = synthetic_breast("left", (120, 260))
    image[20:60, 420:480] = 255  # a film label in the far corner
    prepared = prepare(image, BREAST)
    mask = breast_mask(image)
    assert not mask[20:60, 420:480].any()
    assert prepared.model_input.max() <= (250 / 127.5 - 1) + 1e-6  # only the blob is that bright


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((100, 100), np.uint8),
        np.full((300, 300), 128, np.uint8),
        np.full((300, 300), 255, np.uint8),
    ],
    ids=["blank", "uniform-gray", "white"],
)
def test_no_breast_is_an_error(image):
    with pytest.raises(NoBreastFoundError):
        prepare(image, BREAST)


def test_text_like_specks_are_no_breast():
    image = np.zeros((400, 400), np.uint8)
    cv2.putText(image, "NOT A MAMMOGRAM", (10, 200), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    with pytest.raises(NoBreastFoundError):
        prepare(image, BREAST)


def test_seed_config_needs_no_breast():
    # The seed recipe only resizes: a blank frame still gets an input (as it always did).
    seed = PreprocessConfig()
    assert prepare(np.zeros((100, 100), np.uint8), seed).model_input.shape == (128, 128, 1)


def test_explicit_chest_wall_overrides_the_pixels():
    image = synthetic_breast("left", (120, 260))
    assert prepare(image, BREAST, chest_wall="right").geometry.flipped
    with pytest.raises(ValueError, match="chest_wall"):
        prepare(image, BREAST, chest_wall="top")


def test_config_round_trips_and_rejects_unknown_fields():
    assert PreprocessConfig.from_dict(BREAST.as_dict()) == BREAST
    with pytest.raises(ValueError, match="unknown"):
        PreprocessConfig.from_dict({**BREAST.as_dict(), "gamma": 2})
    with pytest.raises(ValueError, match="orientation"):
        PreprocessConfig(orientation="upside-down")


@pytest.mark.parametrize("name", sorted(path.name for path in EXAMPLES.glob("mdb*.pgm")))
def test_side_detector_follows_the_odd_even_rule_on_examples(name):
    # mini-MIAS: odd-numbered images are left breasts with the chest wall on the right.
    number = int(name[3:6])
    mask = breast_mask(load_image(EXAMPLES / name).pixels)
    assert chest_wall_side(mask) == ("right" if number % 2 else "left")


@pytest.mark.mias
def test_side_detector_on_every_mias_image():
    if not MIAS_ARCHIVE.is_file():
        pytest.skip(f"needs the MIAS archive at {MIAS_ARCHIVE}")
    from train.mias import open_mias

    dataset = open_mias(MIAS_ARCHIVE)
    disagree = []
    for record in dataset.records:
        side = chest_wall_side(breast_mask(dataset.read_image(record.reference)))
        if side != ("right" if record.number % 2 else "left"):
            disagree.append(record.reference)
    # Measured: 256 of 258 agree; mdb151/mdb152 (a breast filling the frame) are read the
    # other way round.
    assert len(disagree) <= 3, disagree


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", ["mdb005.pgm", "mdb028.pgm"])  # odd: flipped; even: not
def test_training_and_runtime_prepare_identical_inputs(name, tmp_path):
    """train/ reads MIAS through its own archive reader; the runtime through imageio."""
    pytest.importorskip("keras")
    import tarfile

    from train.lesion_data import prepare_dataset
    from train.mias import open_mias

    info = "\n".join(["mdb005 F CIRC B 477 133 30", "mdb028 F CIRC M 338 314 56"])
    folder = tmp_path / "mias"
    folder.mkdir()
    (folder / "Info.txt").write_text(info + "\n")
    for example in ("mdb005.pgm", "mdb028.pgm"):
        (folder / example).write_bytes((EXAMPLES / example).read_bytes())
    archive = tmp_path / "mias.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(folder, arcname="mias")
    dataset = open_mias(archive)
    training = prepare_dataset(dataset, BREAST)
    index = [record.reference for record in dataset.records].index(name[:-4])
    runtime = prepare(load_image(EXAMPLES / name).pixels, BREAST)
    np.testing.assert_array_equal(training.inputs[index], runtime.model_input)
    assert training.geometries[index] == runtime.geometry
    assert runtime.geometry.flipped == (name == "mdb005.pgm")


@pytest.mark.parametrize(
    ("orientation", "expected"), [(["A", "R"], "left"), (["P", "L"], "right"), (None, None)]
)
def test_dicom_patient_orientation_sets_the_chest_wall(tmp_path, orientation, expected):
    pytest.importorskip("pydicom")
    from conftest import write_dicom

    # Drawn with the chest wall on the left; a file saying "P" (chest wall right) wins.
    image = synthetic_breast("left", (120, 260))
    extra = {"ImageLaterality": "L"}
    if orientation is not None:
        extra["PatientOrientation"] = orientation
    path = write_dicom(tmp_path / "view.dcm", image, extra=extra)
    decoded = load_image(path)
    assert decoded.chest_wall == expected
    prepared = prepare(decoded.pixels, BREAST, chest_wall=decoded.chest_wall)
    assert prepared.chest_wall_side == (expected or "left")
    assert prepared.geometry.flipped == (expected == "right")


def test_default_model_gives_no_breast_found_for_a_blank_frame():
    """Through the runtime: the shipped default (lite0) refuses a frame without a breast."""
    from mammo_edge.model.registry import installed_model_names
    from mammo_edge.predictor import Predictor

    if "lite0" not in installed_model_names():
        pytest.skip("lite0 is not shipped in this install")
    predictor = Predictor("lite0", device="cpu", threads=1)
    blank, example = predictor.predict([np.zeros((300, 200), np.uint8), EXAMPLES / "mdb028.pgm"])
    assert not blank.ok and blank.error_code == "NO_BREAST_FOUND"
    assert "breast" in blank.error_message
    assert example.ok and 0.0 <= example.probability <= 1.0
