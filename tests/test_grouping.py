"""Exams: which images belong together, and the per-breast/per-exam values."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_edge.grouping import EXAM, SINGLE_VIEW, dicom_view, group_records, mias_view
from mammo_edge.records import STATUS_ERROR, STATUS_OK, PredictionResult


def record(path, probability=0.5, exam=None, laterality=None, ok=True):
    return PredictionResult(
        path=path,
        status=STATUS_OK if ok else STATUS_ERROR,
        probability=probability if ok else None,
        label=None,
        threshold=0.5,
        model_name="m",
        model_version="1",
        model_sha256="0" * 64,
        provider="CPUExecutionProvider",
        error_code=None if ok else "CORRUPT",
        exam=exam,
        laterality=laterality,
    )


@pytest.mark.parametrize(
    "name, exam, side",
    [
        ("mdb001.pgm", "mias patient 1", "L"),
        ("study/mdb002.pgm", "mias patient 1", "R"),
        ("MDB003.PNG", "mias patient 2", "L"),
        ("mdb322", "mias patient 161", "R"),
    ],
)
def test_mias_names_pair_odd_left_with_the_next_even_right(name, exam, side):
    view = mias_view(name)
    assert (view.exam, view.laterality) == (exam, side)


@pytest.mark.parametrize("name", ["scan.png", "mdb01.pgm", "mdb000.pgm", "xmdb001.pgm"])
def test_other_names_have_no_exam(name):
    assert mias_view(name) is None


def test_dicom_exam_needs_patient_and_study():
    assert dicom_view("P1", "1.2.3", "L").exam == "P1/1.2.3"
    assert dicom_view("P1", "1.2.3", "B").laterality is None
    assert dicom_view(None, "1.2.3", "L") is None
    assert dicom_view("P1", "", "L") is None


def test_both_breasts_carry_breast_and_exam_probability_and_each_other():
    records = [
        record("mdb003.pgm", 0.8, "mias patient 2", "L"),
        record("mdb004.pgm", 0.3, "mias patient 2", "R"),
    ]
    left, right = list(group_records(records))
    assert (left.view_group, right.view_group) == (EXAM, EXAM)
    assert (left.partner, right.partner) == ("mdb004.pgm", "mdb003.pgm")
    assert (left.breast_probability, right.breast_probability) == (0.8, 0.3)
    assert left.exam_probability == right.exam_probability == 0.8
    assert (left.probability, right.probability) == (0.8, 0.3)  # own score unchanged


def test_a_missing_partner_is_a_single_view_with_no_exam_values():
    (alone,) = group_records([record("mdb005.pgm", 0.9, "mias patient 3", "L")])
    assert alone.view_group == SINGLE_VIEW
    assert alone.partner is None and alone.exam_probability is None


def test_a_dicom_study_takes_the_max_over_the_views_of_each_breast():
    exam = "P/1.2"
    records = [
        record("lcc.dcm", 0.2, exam, "L"),
        record("lmlo.dcm", 0.6, exam, "L"),
        record("rcc.dcm", 0.1, exam, "R"),
        record("other.dcm", 0.9, "Q/9.9", "L"),
    ]
    out = list(group_records(records))
    assert [r.path for r in out] == [r.path for r in records]
    assert [r.breast_probability for r in out[:3]] == [0.6, 0.6, 0.1]
    assert {r.exam_probability for r in out[:3]} == {0.6}
    assert out[0].partner == "lmlo.dcm;rcc.dcm"
    assert out[3].view_group == SINGLE_VIEW


def test_error_records_pass_unchanged_and_are_no_partner():
    records = [
        record("mdb003.pgm", 0.8, "mias patient 2", "L"),
        record("mdb004.pgm", ok=False, exam="mias patient 2", laterality="R"),
    ]
    left, broken = list(group_records(records))
    assert left.view_group == SINGLE_VIEW
    assert broken == records[1]


def test_records_wait_at_most_a_window_and_keep_their_order():
    exam = "P/1"
    records = [record("a.dcm", 0.4, exam, "L")]
    records += [record(f"x{i}.png", 0.1) for i in range(5)]
    records += [record("b.dcm", 0.7, exam, "R")]
    released = []
    stream = group_records(iter(records), window=3)
    for item in stream:
        released.append(item)
    assert [r.path for r in released] == [r.path for r in records]
    # a.dcm left after 3 more inputs without its exam: it could not see b.dcm.
    assert released[0].view_group == SINGLE_VIEW
    assert released[-1].partner == "a.dcm"


def test_an_exam_is_released_as_soon_as_both_mias_breasts_are_in():
    def source():
        yield record("mdb003.pgm", 0.8, "mias patient 2", "L")
        yield record("mdb004.pgm", 0.3, "mias patient 2", "R")
        raise AssertionError("grouping read past a complete exam")

    stream = group_records(source())
    assert [next(stream).path, next(stream).path] == ["mdb003.pgm", "mdb004.pgm"]


def test_predictor_groups_the_bundled_examples():
    from pathlib import Path

    from mammo_edge import Predictor

    folder = Path(__file__).resolve().parent.parent / "examples"
    # lite0 has no pair head: grouping adds fields and changes no probability.
    model = "lite0"
    grouped = {r.path: r for r in Predictor(model, threads=1).iter_predict_paths([str(folder)])}
    alone = {
        r.path: r
        for r in Predictor(model, threads=1, group_by="none").iter_predict_paths([str(folder)])
    }
    pair = [grouped[str(folder / name)] for name in ("mdb005.pgm", "mdb006.pgm")]
    assert pair[0].partner == str(folder / "mdb006.pgm")
    assert pair[0].exam_probability == pytest.approx(max(p.probability for p in pair))
    assert grouped[str(folder / "mdb028.pgm")].view_group == SINGLE_VIEW
    for path, result in alone.items():
        assert result.view_group is None and result.exam_probability is None
        assert np.isclose(result.probability, grouped[path].probability)


def test_the_default_model_weighs_each_breast_against_the_other():
    from pathlib import Path

    from mammo_edge import Predictor

    folder = Path(__file__).resolve().parent.parent / "examples"
    predictor = Predictor(threads=1)
    if not (predictor.head is not None and predictor.head.reads_other_breast):
        pytest.skip("the default model has no pair head")
    grouped = {r.path: r for r in predictor.iter_predict_paths([str(folder)])}
    left, right = (grouped[str(folder / name)] for name in ("mdb005.pgm", "mdb006.pgm"))
    # mdb005 (abnormal) against a normal twin scores higher than alone, and mdb006 lower.
    alone = {
        path: Predictor(threads=1, group_by="none").predict(path)
        for path in (str(folder / "mdb005.pgm"), str(folder / "mdb006.pgm"))
    }
    assert left.probability > alone[left.path].probability
    assert right.probability < alone[right.path].probability
    assert left.network_probability == pytest.approx(alone[left.path].network_probability)
