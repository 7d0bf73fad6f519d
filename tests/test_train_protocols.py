"""Splits: patients never straddle folds; the seed split's leak is counted correctly."""

import numpy as np
import pytest
from mias_fixtures import INFO_HEADER, info_rows

from train.mias import group_by_image, parse_info, patient_of
from train.protocols import (
    class_weights,
    count_leak,
    patient_folds,
    seed_angles,
    seed_rows,
    seed_samples,
    seed_split,
    validation_patients,
)


def records(patients: int):
    return group_by_image(parse_info(INFO_HEADER + info_rows(patients)))


def test_no_patient_in_two_folds_and_every_image_tested_once():
    data = records(30)
    folds = patient_folds(data, 5, seed=3)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(data)))
    for train, test in folds:
        train_patients = {data[i].patient_id for i in train}
        test_patients = {data[i].patient_id for i in test}
        assert not train_patients & test_patients
        assert {data[i].label for i in test} == {0, 1}  # stratified


def test_validation_is_drawn_from_training_patients_only():
    data = records(30)
    train, test = patient_folds(data, 5, seed=0)[0]
    fit, validation = validation_patients(data, train, 0.2, seed=0)
    assert set(fit) | set(validation) == set(train.tolist())
    assert not {data[i].patient_id for i in fit} & {data[i].patient_id for i in validation}
    assert not set(validation) & set(test.tolist())


def test_seed_rows_drop_the_first_84_norm_rows():
    rows = parse_info(INFO_HEADER + info_rows(60))
    kept, dropped = seed_rows(rows)
    assert len(dropped) == 84 and all(row.abnormality_class == "NORM" for row in dropped)
    norm_rows = [row for row in rows if row.abnormality_class == "NORM"]
    assert dropped == norm_rows[:84]
    assert len(kept) == len(rows) - 84


def test_seed_angles_match_the_study_at_full_scale():
    assert seed_angles(180).tolist() == list(range(0, 360, 2))
    assert seed_angles(4).tolist() == [0, 90, 180, 270]
    with pytest.raises(ValueError):
        seed_angles(0)


def test_leak_counter_on_a_known_split():
    train = ["mdb001", "mdb001", "mdb003"]
    test = ["mdb001", "mdb002", "mdb004", "mdb009"]
    report, unseen = count_leak(train, test)
    assert report.test_with_same_image_in_train == 1  # mdb001
    assert report.test_with_same_patient_in_train == 3  # mdb001, mdb002 (pat 1), mdb004 (pat 2)
    assert report.test_images_absent_from_train == 3
    assert unseen.tolist() == [False, True, True, True]


def test_seed_split_leaks_almost_everything_at_many_rotations():
    rows = parse_info(INFO_HEADER + info_rows(20))
    samples = seed_samples(rows, rotations=36)
    train, test = seed_split(samples)
    references = [sample.reference for sample in samples]
    report, _ = count_leak([references[i] for i in train], [references[i] for i in test])
    assert report.test_with_same_image_in_train == report.test_samples
    assert {samples[i].patient_id for i in test} <= {patient_of(r) for r in references}


def test_class_weights_balance():
    weights = class_weights(np.array([0, 0, 0, 1]))
    assert weights[0] * 3 == pytest.approx(weights[1] * 1)
