"""A heatmap's peak lies on the breast, also on a full-field film with labels, a ruler and a
scanner border, and also when the network's heat is highest off the breast."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from explain_fixtures import CROP_CONFIG, build_heatmap_model, heatmap_metadata, synthetic_breast

from mammo_edge.explain.heatmaps import HeatmapGrid, find_peak
from mammo_edge.images.breast import breast_mask
from mammo_edge.images.preprocess import Geometry


def film_with_marks() -> tuple[np.ndarray, dict[str, tuple[slice, slice]]]:
    """A 2000 x 1500 "digitised film": a breast on the left edge, a bright patient label
    with text strokes, a ruler with ticks and a scanner border; the marks' regions."""
    image = synthetic_breast(2000, 1500, side="left", blob=(500.0, 1100.0), blob_sigma=25.0)
    marks = {
        "label": (slice(80, 330), slice(1050, 1420)),
        "ruler": (slice(400, 1900), slice(1400, 1460)),
    }
    rows, columns = marks["label"]
    image[rows, columns] = 235
    for line in range(6):  # dark "text" on the label
        image[rows.start + 30 + 35 * line : rows.start + 45 + 35 * line, 1090:1380] = 40
    rows, columns = marks["ruler"]
    image[rows, columns] = 200
    image[rows.start : rows.stop : 40, columns.start - 30 : columns.stop] = 255  # ticks
    image[:14, :] = image[-14:, :] = 250  # the scanner's bright border
    image[:, :14] = image[:, -14:] = 250
    return image, marks


@pytest.fixture()
def off_breast_model(tmp_path):
    """A model whose heat is highest on the darkest windows: off the breast."""
    metadata = heatmap_metadata(CROP_CONFIG)
    return build_heatmap_model(tmp_path / "dark.onnx", metadata, scale=-0.05)


def test_the_peak_is_the_highest_cell_on_the_breast():
    grid = HeatmapGrid(
        values=np.array([[0.9, 0.2], [0.4, 0.1]]),
        origin_x=1.0,
        origin_y=1.0,
        step_x=2.0,
        step_y=2.0,
        method="heatmap",
    )
    geometry = Geometry(4, 4, False, (0, 0, 4, 4), 4, 4)
    on_breast = np.zeros((4, 4), dtype=bool)
    on_breast[2:, :] = True  # the bottom row of cells
    assert (find_peak(grid, geometry).input_x, find_peak(grid, geometry).input_y) == (1.0, 1.0)
    peak = find_peak(grid, geometry, on_breast)
    assert (peak.input_x, peak.input_y, peak.value) == (1.0, 3.0, 0.4)
    nowhere = find_peak(grid, geometry, np.zeros((4, 4), dtype=bool))
    assert nowhere.value == 0.9  # no cell on the breast: the maximum anywhere


def test_peak_on_a_film_with_labels_ruler_and_border(tmp_path, off_breast_model):
    from mammo_edge import Predictor
    from mammo_edge.explain.explainer import Explainer

    image, marks = film_with_marks()
    path = tmp_path / "film.png"
    assert cv2.imwrite(str(path), image)
    explainer = Explainer(Predictor(off_breast_model, threads=1))
    explained = next(explainer.iter_explain([str(path)]))
    assert explained.record.ok, explained.record.error_message
    mask = breast_mask(image)
    x, y = round(explained.peak.x), round(explained.peak.y)
    assert mask[y, x], f"peak ({x}, {y}) is off the breast"
    for name, (rows, columns) in marks.items():
        assert not (rows.start <= y < rows.stop and columns.start <= x < columns.stop), name
    assert 14 <= x < image.shape[1] - 14 and 14 <= y < image.shape[0] - 14
    # Without the breast restriction this model's peak would be off the breast.
    anywhere = find_peak(explained.grid, explained.item.geometry)
    assert not mask[round(anywhere.y), round(anywhere.x)]
