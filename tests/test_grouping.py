"""Exams: which images belong together, and the per-breast/per-exam values."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_edge.exams import EXAM, SINGLE_VIEW, dicom_view, group_records, mias_view
from mammo_edge.records.record import STATUS_ERROR, STATUS_OK, PredictionResult


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
        assert result.view_group == SINGLE_VIEW and result.exam_probability is None
        assert np.isclose(result.probability, grouped[path].probability)


def test_the_default_model_weighs_each_breast_against_the_other():
    from pathlib import Path

    from mammo_edge import Predictor

    folder = Path(__file__).resolve().parent.parent / "examples"
    predictor = Predictor(threads=1)
    if predictor.pair_head is None:
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


# --- view-matched pairing (docs/runtime.md's table) ---------------------------------------

from mammo_edge.exams import (  # noqa: E402
    ExamScoring,
    counterparts,
    exam_fields,
    partner_network_probabilities,
)
from mammo_edge.model.heads import Head, logit  # noqa: E402

PAIR = Head(("cnn_logit", "cnn_logit_minus_other"), (0.0, 0.0), (1.0, 1.0), (1.0, 0.7), 0.1)
SINGLE = Head(("cnn_logit",), (0.0,), (1.0,), (1.3,), 0.4)
SCORING = ExamScoring(PAIR, SINGLE, 0.5, "balanced", 0.6, "balanced")


def view(path, network, laterality, view_name, exam="P/1"):
    from dataclasses import replace

    return replace(record(path, 0.5, exam, laterality), network_probability=network, view=view_name)


def paired_with(own, other):
    own_logit = logit(own)
    return PAIR.probability(
        {"cnn_logit": own_logit, "cnn_logit_minus_other": own_logit - logit(other)}
    )


def test_four_views_pair_cc_with_cc_and_mlo_with_mlo():
    exam = [
        view("lcc", 0.7, "L", "CC"),
        view("lmlo", 0.2, "L", "MLO"),
        view("rcc", 0.3, "R", "CC"),
        view("rmlo", 0.9, "R", "MLO"),
    ]
    lcc, lmlo, rcc, rmlo = exam_fields(exam, SCORING)
    assert lcc.probability == pytest.approx(paired_with(0.7, 0.3))
    assert lmlo.probability == pytest.approx(paired_with(0.2, 0.9))
    assert rcc.probability == pytest.approx(paired_with(0.3, 0.7))
    assert rmlo.probability == pytest.approx(paired_with(0.9, 0.2))
    assert {r.view_group for r in (lcc, lmlo, rcc, rmlo)} == {EXAM}
    assert lcc.breast_probability == pytest.approx(max(lcc.probability, lmlo.probability))
    assert rcc.exam_probability == pytest.approx(max(r.probability for r in (lcc, lmlo, rcc, rmlo)))
    assert lcc.threshold == 0.5


def test_a_view_without_its_counterpart_takes_the_other_breasts_highest():
    exam = [
        view("lcc", 0.7, "L", "CC"),
        view("lmlo", 0.4, "L", "MLO"),
        view("rcc", 0.3, "R", "CC"),
        view("rml", 0.8, "R", "ML"),
    ]
    assert [c.path for c in counterparts(exam[1], exam)] == ["rcc", "rml"]
    lmlo = exam_fields(exam, SCORING)[1]
    assert lmlo.probability == pytest.approx(paired_with(0.4, 0.8))
    unknown = view("l", 0.4, "L", None)
    assert [c.path for c in counterparts(unknown, [*exam, unknown])] == ["rcc", "rml"]


def test_an_exam_of_one_breast_or_unknown_laterality_is_scored_alone():
    alone = SINGLE.probability({"cnn_logit": logit(0.7)})
    one_breast = exam_fields([view("lcc", 0.7, "L", "CC"), view("lmlo", 0.2, "L", "MLO")], SCORING)
    assert one_breast[0].view_group == SINGLE_VIEW
    assert one_breast[0].probability == pytest.approx(alone)
    assert one_breast[0].threshold == 0.6
    assert one_breast[0].partner == "lmlo" and one_breast[0].breast_probability is not None
    no_side = exam_fields([view("a", 0.7, None, "CC"), view("b", 0.2, "R", "CC")], SCORING)
    assert [r.view_group for r in no_side] == [SINGLE_VIEW, SINGLE_VIEW]


def test_a_prior_study_of_the_same_patient_is_never_the_partner():
    records = [
        view("now-l", 0.7, "L", "MLO", exam="P/2"),
        view("prior-r", 0.1, "R", "MLO", exam="P/1"),
    ]
    first, second = group_records(records, SCORING)
    assert first.view_group == second.view_group == SINGLE_VIEW
    assert partner_network_probabilities(records) == [None, None]


def test_exam_fields_are_idempotent_and_order_free():
    exam = [
        view("lcc", 0.7, "L", "CC"),
        view("rcc", 0.3, "R", "CC"),
        view("lmlo", 0.2, "L", "MLO"),
    ]
    once = exam_fields(exam, SCORING)
    assert exam_fields(once, SCORING) == once
    reordered = exam_fields(exam[::-1], SCORING)[::-1]
    assert [r.probability for r in reordered] == [r.probability for r in once]


def test_partner_network_probabilities_follow_the_pairing_rule():
    exam = [
        view("lcc", 0.7, "L", "CC"),
        view("lmlo", 0.2, "L", "MLO"),
        view("rcc", 0.3, "R", "CC"),
        view("x", 0.5, None, None, exam=None),
    ]
    assert partner_network_probabilities(exam) == [0.3, 0.3, 0.7, None]
