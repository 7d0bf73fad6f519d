"""The lesion-aware recipe: circles from Info.txt land on lesions; test folds stay untouched."""

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("keras")
pytestmark = pytest.mark.tensorflow

from train.lesion_data import ImageBatches, PatchBatches, cut_patch, prepare_dataset  # noqa: E402
from train.lesion_settings import LesionSettings  # noqa: E402
from train.lesion_stages import heatmap_peak  # noqa: E402
from train.mias import open_mias  # noqa: E402

SIZE = 1024
#: (reference, Info.txt row); lesion x, y with the origin at the bottom-left, as MIAS has it.
ROWS = {
    "mdb001": "mdb001 G CIRC B 700 700 40",
    "mdb002": "mdb002 G NORM",
    "mdb003": "mdb003 F SPIC M 760 250 30",
    "mdb004": "mdb004 F NORM",
}


def breast_image(chest_wall: str, lesion: tuple[int, int, int] | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 8, (SIZE, SIZE)).astype(np.uint8)
    ellipse = np.zeros((SIZE, SIZE), np.uint8)
    centre_x = 0 if chest_wall == "left" else SIZE - 1
    cv2.ellipse(ellipse, (centre_x, SIZE // 2), (700, 460), 0, 0, 360, 1, -1)
    image = np.where(ellipse == 1, rng.integers(80, 120, (SIZE, SIZE)), image).astype(np.uint8)
    if lesion is not None:
        x, y_from_bottom, radius = lesion
        cv2.circle(image, (x, SIZE - 1 - y_from_bottom), radius, 255, -1)
    return image


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mias")
    (folder / "Info.txt").write_text("\n".join(ROWS.values()) + "\n")
    for number, (reference, row) in enumerate(ROWS.items(), start=1):
        fields = row.split()
        lesion = tuple(int(value) for value in fields[4:7]) if len(fields) > 3 else None
        # Odd MIAS images have the chest wall on the right (flipped by preprocessing).
        image = breast_image("right" if number % 2 else "left", lesion, number)
        header = f"P5\n{SIZE} {SIZE}\n255\n".encode()
        (folder / f"{reference}.pgm").write_bytes(header + image.tobytes())
    return open_mias(folder)


@pytest.fixture(scope="module")
def prepared(dataset):
    return prepare_dataset(dataset, LesionSettings().preprocess())


def test_lesion_circles_map_onto_the_bright_lesions(prepared):
    assert len(prepared.lesions) == 2
    for lesion in prepared.lesions:
        plane = prepared.inputs[lesion.image_index, :, :, 0]
        assert plane[int(round(lesion.y)), int(round(lesion.x))] > 0.9  # 255 -> +1.0
        assert 10 < lesion.radius < 40  # 30-40 px at ~2 px per input pixel


def test_positive_patches_are_centred_on_lesions_and_negatives_away(prepared):
    settings = LesionSettings(patches_per_epoch=64, patch_batch=32)
    batches = PatchBatches(prepared, [0, 1, 2, 3], settings, seed=0)
    patches, labels = batches[0]
    centre = patches[:, 60:68, 60:68, 0].mean(axis=(1, 2))
    assert labels.sum() == 16
    # Jitter keeps a lesion patch's centre on the lesion; a normal patch is centred at least
    # radius + 32 px away (its edge may still graze a lesion).
    assert (centre[labels == 1] > 0.6).all()
    assert (centre[labels == 0] < 0.5).all()


def test_patches_come_from_training_images_only(prepared):
    train_indices = [0, 1]  # patient 1; patient 2 (images 2, 3) is the test fold
    batches = PatchBatches(prepared, train_indices, LesionSettings(patches_per_epoch=128), seed=0)
    for step in range(len(batches)):
        batches[step]
    assert batches.touched and batches.touched <= set(train_indices)
    assert all(lesion.image_index in train_indices for lesion in batches.lesions)


def test_image_batches_use_training_images_only(prepared):
    batches = ImageBatches(prepared, [2, 3], LesionSettings(image_batch=2), seed=0)
    seen = set()
    for step in range(len(batches)):
        images, labels, weights = batches[step]
        for image in images:
            matches = [
                index
                for index in range(4)
                if np.array_equal(image, prepared.inputs[index])
                or np.array_equal(image, prepared.inputs[index, ::-1])
            ]
            seen.update(matches)
    assert seen == {2, 3}


def test_cut_patch_pads_with_background():
    image = np.zeros((20, 10, 1), np.float32)
    patch = cut_patch(image, 0, 0, 8)
    assert patch.shape == (8, 8, 1)
    assert (patch[:4, :4] == -1).all() and (patch[4:, 4:] == 0).all()


def test_heatmap_peak_returns_original_coordinates(prepared):
    lesion = prepared.lesions[0]
    geometry = prepared.geometries[lesion.image_index]
    heatmap = np.zeros((13, 5))
    # The window whose centre (32 j + 63.5, 32 i + 63.5) is nearest the lesion.
    row = int(round((lesion.y - 63.5) / 32))
    column = int(round((lesion.x - 63.5) / 32))
    heatmap[row, column] = 1.0
    x, y = heatmap_peak(heatmap, geometry)
    reference = ["mdb001", "mdb002", "mdb003", "mdb004"][lesion.image_index]
    fields = ROWS[reference].split()
    true_x, true_y = int(fields[4]), SIZE - 1 - int(fields[5])
    # Within half a window stride (16 input px) of the truth, in original pixels.
    assert abs(x - true_x) <= 16 * geometry.scale + 1 and abs(y - true_y) <= 16 * geometry.scale + 1


def test_settings_ablations_change_the_contract():
    assert LesionSettings().preprocess().breast_crop
    assert not LesionSettings(breast_crop=False).preprocess().breast_crop
    assert LesionSettings(half_resolution=True).preprocess().height == 256
    assert LesionSettings(lesions=False).schedule_image_epochs() > LesionSettings().image_epochs


def test_lite0_matches_the_torch_reference_features():
    """The Keras Lite0 equals the converted PyTorch network on the stored reference input."""
    from train.architectures import lite0

    state = np.load(lite0.WEIGHTS)
    model = lite0.backbone()
    gray = state["reference/input_nchw"][:, :1].transpose(0, 2, 3, 1)
    features = np.asarray(model(gray, training=False)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(features, state["reference/head_features_nchw"], atol=1e-4)


def test_weights_file_is_the_converted_package():
    from train.architectures import lite0

    digest = bytes(np.load(lite0.WEIGHTS)["source/sha256"]).hex()
    assert digest == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    assert Path(lite0.WEIGHTS).stat().st_size < 20e6
